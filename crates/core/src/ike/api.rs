//! What an [`Ike`](crate::ike::Ike) endpoint hands out: handles, datagrams
//! to send, events, trace records and errors.

use core::fmt;
use core::net::SocketAddrV4;

use thiserror::Error;

use crate::ike::ident::Identity;
use crate::ike::sk::OpenError;
use crate::ipsec::sa::{SaConfig, Spi, UdpEncap};
use crate::time::Instant;
use crate::wire::ike::{Error as WireError, NotifyType, TrafficSelector};

/// A handle on an IKE SA, stable across IKE SA rekeying (RFC 7296 §2.18:
/// the children move to the new IKE SA; so does the handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u32);

/// A handle on a child SA pair. A rekeyed pair gets a new handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildSaId(pub u32);

impl fmt::Display for IkeSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ike#{}", self.0)
    }
}

impl fmt::Display for ChildSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "child#{}", self.0)
    }
}

/// Our role in an exchange (RFC 7296 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Initiator,
    Responder,
}

/// A UDP datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub remote: SocketAddrV4,
    /// Our source port: 500, or 4500 after NAT detection (§2.23).
    pub local_port: u16,
    /// The UDP payload, with the non-ESP marker on port 4500 (RFC 3948 §2.2).
    pub payload: Vec<u8>,
}

/// The SPIs of a child SA pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildSpis {
    /// The SPI we chose; ESP arriving with it is ours to decrypt.
    pub inbound: Spi,
    /// The peer's SPI; we send with it.
    pub outbound: Spi,
}

/// A negotiated child SA pair, ready for the data path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaInfo {
    pub ike_sa: IkeSaId,
    pub child: ChildSaId,
    /// Our role in the exchange that created the pair (whose Ni/Nr keyed it).
    pub role: Role,
    pub inbound: SaConfig,
    pub outbound: SaConfig,
    /// Narrowed selectors of our side and of the peer's side (§2.9).
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    /// The UDP encapsulation of outbound ESP (RFC 3948), when a NAT was
    /// detected or faked.
    pub udp_encap: Option<UdpEncap>,
}

impl ChildSaInfo {
    pub fn spis(&self) -> ChildSpis {
        ChildSpis {
            inbound: self.inbound.spi,
            outbound: self.outbound.spi,
        }
    }
}

/// Why an IKE SA went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// We deleted it (command).
    Local,
    /// The peer sent a Delete (§1.4.1).
    Peer,
    /// Requests went unanswered (§2.4).
    Timeout,
    /// Authentication failed on either side (§2.21.2).
    AuthFailed,
    /// The peer refused IKE_SA_INIT or the exchange failed with this error.
    Refused(NotifyType),
    /// The peer's answer broke the protocol (bad proposal, bad KE, ...).
    ProtocolError,
}

/// What happened, for the routing stack to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IkeEvent {
    IkeSaEstablished {
        ike_sa: IkeSaId,
        role: Role,
        remote: SocketAddrV4,
        remote_id: Identity,
        spi_i: u64,
        spi_r: u64,
    },
    /// The IKE SA was rekeyed; the handle stays, SPIs and keys change.
    IkeSaRekeyed {
        ike_sa: IkeSaId,
        spi_i: u64,
        spi_r: u64,
    },
    IkeSaDeleted {
        ike_sa: IkeSaId,
        reason: DeleteReason,
    },
    ChildSaEstablished(ChildSaInfo),
    /// A rekeyed pair: install `new` everywhere; the old pair follows as
    /// [`IkeEvent::ChildSaDeleted`] when the DELETE exchange is done.
    ChildSaRekeyed {
        old: ChildSaId,
        old_spis: ChildSpis,
        new: ChildSaInfo,
    },
    ChildSaDeleted {
        ike_sa: IkeSaId,
        child: ChildSaId,
        spis: ChildSpis,
    },
    /// A child SA could not be created or rekeyed; the peer or we answered
    /// with this notify (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE, ...).
    ChildSaFailed {
        ike_sa: IkeSaId,
        notify: NotifyType,
    },
    /// AUTHENTICATION_FAILED: `local` if we rejected the peer's AUTH, else
    /// the peer rejected ours. No SA remains.
    AuthFailed {
        remote: SocketAddrV4,
        id: Option<Identity>,
        local: bool,
    },
}

/// Why a received datagram was dropped without effect.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DropReason {
    /// The peer sent bytes that are not an IKEv2 message.
    #[error("malformed: {0}")]
    Malformed(#[from] WireError),
    /// ESP in UDP on port 4500: route it with `natt::classify_4500` first.
    #[error("ESP, not IKE")]
    NotIke,
    /// No IKE SA has this SPI (§2.21.4; we do not answer).
    #[error("unknown IKE SPI")]
    UnknownSpi,
    /// A request outside the window or a response to nothing (§2.3).
    #[error("message ID {got} unexpected")]
    MessageId { got: u32 },
    /// Integrity check or decryption failed, or a bad SK layout (§2.21.2).
    #[error("SK payload: {0}")]
    Sk(OpenError),
    /// An exchange type or flags the state does not allow.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
    /// Too many half-open IKE SAs, even with a valid cookie (§2.6).
    #[error("half-open limit reached")]
    HalfOpenLimit,
}

/// Why a command could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("no such IKE SA")]
    UnknownIkeSa,
    #[error("no such child SA")]
    UnknownChildSa,
    #[error("the IKE SA is not established")]
    NotEstablished,
}

/// Direction of a traced message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
    Dropped,
}

/// One line of the IKE trace: a message sent or received (decrypted
/// contents in strongSwan's notation), or a drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRecord {
    pub at: Instant,
    pub direction: Direction,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub summary: String,
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.at.as_millis();
        let (arrow, a, b) = match self.direction {
            Direction::Sent => ("->", self.local, self.remote),
            Direction::Received => ("<-", self.local, self.remote),
            Direction::Dropped => ("x-", self.local, self.remote),
        };
        write!(f, "{ms:>8} ms {a} {arrow} {b} {}", self.summary)
    }
}

fn ts_list(ts: &[TrafficSelector]) -> String {
    let one = |t: &TrafficSelector| match t {
        TrafficSelector::Ipv4 {
            ip_protocol,
            start_port,
            end_port,
            start,
            end,
        } => {
            let (s, e) = (
                core::net::Ipv4Addr::from(*start),
                core::net::Ipv4Addr::from(*end),
            );
            let mut out = if s == e {
                format!("{s}")
            } else {
                format!("{s}-{e}")
            };
            if *ip_protocol != 0 || (*start_port, *end_port) != (0, u16::MAX) {
                out.push_str(&format!("[{ip_protocol}/{start_port}-{end_port}]"));
            }
            out
        }
        other => format!("{:?}", other.ts_type()),
    };
    ts.iter().map(one).collect::<Vec<_>>().join(",")
}

impl fmt::Display for ChildSaInfo {
    /// `child#2 of ike#1 (responder) in 0x.. out 0x.. aes128-sha1
    /// 198.18.0.100 === 198.18.1.10 udp 4500->4500`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suite = if self.outbound.enc.is_aead() {
            self.outbound.enc.as_str().to_string()
        } else {
            format!(
                "{}-{}",
                self.outbound.enc.as_str(),
                self.outbound.integ.as_str()
            )
        };
        let role = match self.role {
            Role::Initiator => "initiator",
            Role::Responder => "responder",
        };
        write!(
            f,
            "{} of {} ({role}) in {} out {} {suite} {} === {}",
            self.child,
            self.ike_sa,
            self.inbound.spi,
            self.outbound.spi,
            ts_list(&self.local_ts),
            ts_list(&self.remote_ts)
        )?;
        if let Some(u) = self.udp_encap {
            write!(f, " udp {}->{}", u.src_port, u.dst_port)?;
        }
        Ok(())
    }
}

impl fmt::Display for IkeEvent {
    /// One stable line per event, for traces and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IkeEvent::IkeSaEstablished {
                ike_sa,
                role,
                remote,
                remote_id,
                spi_i,
                spi_r,
            } => write!(
                f,
                "IKE_SA {ike_sa} established ({role:?}) with {remote_id} at {remote}, \
                 SPIs {spi_i:016x}_i {spi_r:016x}_r"
            ),
            IkeEvent::IkeSaRekeyed {
                ike_sa,
                spi_i,
                spi_r,
            } => write!(
                f,
                "IKE_SA {ike_sa} rekeyed, SPIs {spi_i:016x}_i {spi_r:016x}_r"
            ),
            IkeEvent::IkeSaDeleted { ike_sa, reason } => {
                write!(f, "IKE_SA {ike_sa} deleted ({reason:?})")
            }
            IkeEvent::ChildSaEstablished(c) => write!(f, "CHILD_SA {c} established"),
            IkeEvent::ChildSaRekeyed { old, old_spis, new } => write!(
                f,
                "CHILD_SA {old} (in {} out {}) rekeyed: {new}",
                old_spis.inbound, old_spis.outbound
            ),
            IkeEvent::ChildSaDeleted {
                ike_sa,
                child,
                spis,
            } => write!(
                f,
                "CHILD_SA {child} of {ike_sa} deleted (in {} out {})",
                spis.inbound, spis.outbound
            ),
            IkeEvent::ChildSaFailed { ike_sa, notify } => write!(
                f,
                "CHILD_SA of {ike_sa} failed: {}",
                crate::ike::trace::notify_name(*notify)
            ),
            IkeEvent::AuthFailed { remote, id, local } => {
                let who = if *local { "peer's" } else { "our" };
                match id {
                    Some(id) => write!(f, "{who} AUTH failed: {id} at {remote}"),
                    None => write!(f, "{who} AUTH failed: {remote}"),
                }
            }
        }
    }
}
