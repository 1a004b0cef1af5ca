//! The messages images exchange over XCF links and with the coupling
//! facility, as typed values. Their framing on the wire (typed, versioned,
//! length-prefixed) is in [`crate::wire::xcf`], their codec in [`codec`].

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

use crate::ipsec::filter::DynamicFilter;
use crate::ipsec::policy::FilterRule;
use crate::ipsec::sa::{Protocol, SaConfig, Spi};
use crate::ipsec::sad::SaId;

pub mod codec;

/// The TCP port images listen on for XCF connections, on their XCF address.
pub const XCF_PORT: u16 = 5400;
/// The TCP port the coupling facility listens on.
pub const CF_PORT: u16 = 5401;

/// Which way an SA carries traffic, seen from the sysplex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// A distributed port of a DVIPA, as the VIPA list announces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipaEntry {
    pub dvipa: Ipv4Addr,
    pub ports: Vec<u16>,
}

/// The dynamic filter that goes with a distributed SA pair (Fig. 6 block
/// 118, Fig. 7 block 122), and the IpFilterRule that anchors it in the
/// routing stack's filter table: a target with no IP security policy of
/// its own places the dynamic filter in front of this rule in its table
/// for the DVIPA, and the rule stays there after the pair is gone, so a
/// reply the rule requires IPsec for is refused rather than sent in clear
/// (Fig. 10 block 160).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaFilter {
    /// The anchor: an IpFilterRule with an IpDynVpnAction, as the routing
    /// stack's active rules have it.
    pub anchor: FilterRule,
    /// The pair's dynamic filter (its SAs' selectors), anchored to
    /// `anchor` by name.
    pub dynamic: DynamicFilter,
}

/// The key of a sequence-number structure in the coupling facility: one per
/// outbound SA of a DVIPA (Fig. 6 block 116).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeqKey {
    pub dvipa: Ipv4Addr,
    pub protocol: Protocol,
    pub spi: Spi,
}

/// Fig. 6 block 118: an SA pair negotiated (or manually keyed) by the
/// routing stack, copied to a target's shadow SA cache with its filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaInstall {
    pub dvipa: Ipv4Addr,
    pub inbound: SaConfig,
    pub outbound: SaConfig,
    /// The dynamic filter and its anchor, set by the routing stack's
    /// install when it filters (IPCONFIG IPSECURITY) and an IPsec rule
    /// of its policy anchors the pair. `None`: no IP filtering of the
    /// pair's traffic beyond its selectors (no filter table, or a manual SA
    /// no IPsec rule has in common), as before dynamic filters travelled.
    pub filter: Option<SaFilter>,
    /// Where the outbound SA's sequence numbers come from.
    pub seq_key: SeqKey,
    /// Lifesize report threshold the target starts with, in bytes (Fig. 9
    /// block 156: 5 % of the SA's byte lifetime by default).
    pub report_bytes: u64,
}

/// The AH half of an AH+ESP bundle (RFC 4301 §4.3 transport adjacency,
/// the patent's "Combined AH,ESP" rows): the AH SAs that sit outside the
/// ESP pair of a [`BundleInstall`], and the coupling-facility structure the
/// outbound AH SA takes its own sequence numbers from (Fig. 6 block 116:
/// one structure per outbound SA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AhBundle {
    pub inbound: SaConfig,
    pub outbound: SaConfig,
    pub seq_key: SeqKey,
}

/// Fig. 6 block 118 for an AH+ESP bundle: the ESP pair exactly as an
/// [`SaInstall`] carries it, plus the AH pair outside it. A separate
/// message (not a field of `SaInstall`) so that the `SaInstall` body did
/// not change for bundles (see [`crate::wire::xcf`]); its dynamic filter
/// is the ESP pair's, in `esp.filter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInstall {
    pub esp: SaInstall,
    pub ah: AhBundle,
}

/// Why a [`BundleInstall`] does not describe a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("the ESP half of the bundle is not ESP")]
    EspNotEsp,
    #[error("the AH half of the bundle is not AH")]
    AhNotAh,
    #[error("AH and ESP SAs of the bundle have different endpoints")]
    Endpoints,
    #[error("the AH sequence structure is not the outbound AH SA's")]
    SeqKey,
}

impl BundleInstall {
    /// Checks that the halves fit together: ESP inside, AH outside, on the
    /// same endpoints both ways (one outer header carries both, RFC 4301
    /// §4.3), and the AH numbers coming from the AH SA's own structure.
    pub fn check(&self) -> Result<(), BundleError> {
        let (esp, ah) = (&self.esp, &self.ah);
        if esp.inbound.protocol != Protocol::Esp || esp.outbound.protocol != Protocol::Esp {
            return Err(BundleError::EspNotEsp);
        }
        if ah.inbound.protocol != Protocol::Ah || ah.outbound.protocol != Protocol::Ah {
            return Err(BundleError::AhNotAh);
        }
        let ends = |c: &SaConfig| (c.src, c.dst);
        if ends(&esp.inbound) != ends(&ah.inbound) || ends(&esp.outbound) != ends(&ah.outbound) {
            return Err(BundleError::Endpoints);
        }
        let key = SeqKey {
            dvipa: esp.dvipa,
            protocol: Protocol::Ah,
            spi: ah.outbound.spi,
        };
        if ah.seq_key != key {
            return Err(BundleError::SeqKey);
        }
        Ok(())
    }
}

impl From<BundleError> for crate::ipsec::sa::SaError {
    fn from(e: BundleError) -> Self {
        crate::ipsec::sa::SaError::Combination(match e {
            BundleError::EspNotEsp => "the ESP half of the bundle is not ESP",
            BundleError::AhNotAh => "the AH half of the bundle is not AH",
            BundleError::Endpoints => "AH and ESP SAs of the bundle have different endpoints",
            BundleError::SeqKey => "the AH sequence structure is not the outbound AH SA's",
        })
    }
}

impl SaInstall {
    /// An SA pair of `dvipa` before a routing stack installs it (Fig. 6
    /// blocks 112–118): no filter yet (the routing stack's install adds the
    /// dynamic filter from its own table), the CF sequence structure keyed
    /// by the outbound SPI, the targets' report threshold left to them
    /// (`report_bytes` 0).
    pub fn pair(dvipa: Ipv4Addr, inbound: SaConfig, outbound: SaConfig) -> Self {
        Self {
            dvipa,
            filter: None,
            seq_key: SeqKey {
                dvipa,
                protocol: outbound.protocol,
                spi: outbound.spi,
            },
            report_bytes: 0,
            inbound,
            outbound,
        }
    }

    /// The identity of the inbound SA, as dynamic filters and
    /// [`FilterPacket::arrived_under`](crate::ipsec::filter::FilterPacket::arrived_under)
    /// name it.
    pub fn inbound_id(&self) -> SaId {
        sa_id(&self.inbound)
    }

    /// The identity of the outbound SA, as a
    /// [`Verdict::Protect`](crate::ipsec::filter::Verdict::Protect) names it.
    pub fn outbound_id(&self) -> SaId {
        sa_id(&self.outbound)
    }

    /// Whether `other` installs the same SAs (keys, selectors, sequence
    /// structure), whatever filter each carries: after a takeover the new
    /// routing stack sends the pairs again with the dynamic filters of its
    /// own table.
    pub fn same_sas(&self, other: &SaInstall) -> bool {
        self.dvipa == other.dvipa
            && self.inbound == other.inbound
            && self.outbound == other.outbound
            && self.seq_key == other.seq_key
    }
}

fn sa_id(c: &SaConfig) -> SaId {
    SaId {
        dst: c.dst,
        protocol: c.protocol,
        spi: c.spi,
    }
}

/// Messages between images over XCF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum XcfMessage {
    /// First message on a connection: who is speaking.
    Hello { image: String, xcf_addr: Ipv4Addr },
    /// Liveness: each end of an XCF connection sends one every second with
    /// its own increasing `seq` (not answered); a peer from which nothing
    /// arrives for three seconds is down (`runtime::xcf`).
    Heartbeat { seq: u64 },
    /// Routing stack → targets (Fig. 11 block 170): the DVIPAs it owns and
    /// their distributed ports. Replaces what the sender announced before.
    VipaList {
        owner: String,
        vipas: Vec<VipaEntry>,
    },
    /// Target → routing stack: a server listens on DVIPA:port.
    RegisterListener { dvipa: Ipv4Addr, port: u16 },
    /// Target → routing stack: that listener is gone.
    DeregisterListener { dvipa: Ipv4Addr, port: u16 },
    /// Routing stack → targets: install an SA pair in the shadow cache.
    SaInstall(Box<SaInstall>),
    /// Routing stack → targets: remove an SA pair from the shadow cache.
    SaDelete {
        dvipa: Ipv4Addr,
        protocol: Protocol,
        inbound_spi: Spi,
        outbound_spi: Spi,
    },
    /// Target → routing stack (Fig. 11 block 174): an application opens a
    /// connection from the DVIPA to a peer that has no SA yet.
    NewConn {
        dvipa: Ipv4Addr,
        local_port: u16,
        peer: Ipv4Addr,
        peer_port: u16,
        protocol: u8,
    },
    /// Target → routing stack (Fig. 9 block 158, Fig. 10 block 168): bytes
    /// and packets processed under an SA since the last report.
    Lifesize {
        dvipa: Ipv4Addr,
        protocol: Protocol,
        spi: Spi,
        direction: Direction,
        bytes: u64,
        packets: u64,
        /// Inbound: the highest sequence number the target authenticated,
        /// so the routing stack's replay pre-check advances only on
        /// authenticated packets (never on a forged one it merely peeked).
        highest_seq: u64,
    },
    /// Routing stack → target: a rekey of this SA came late (the target
    /// lowers its report threshold) or in time (it may raise it).
    RekeyTiming {
        dvipa: Ipv4Addr,
        spi: Spi,
        late: bool,
    },
    /// Target → routing stack: a distributed connection ended, or its
    /// first packet failed authentication, so the DCT entry must go.
    ConnEnded {
        dvipa: Ipv4Addr,
        port: u16,
        client: Ipv4Addr,
        client_port: u16,
        reason: ConnEndReason,
    },
    /// Routing stack → targets: install an AH+ESP bundle in the shadow
    /// cache (Fig. 6 block 118, Fig. 7 block 122).
    BundleInstall(Box<BundleInstall>),
    /// Routing stack → targets: remove a bundle from the shadow cache; the
    /// ESP SPIs name it, the AH SPIs must match.
    BundleDelete {
        dvipa: Ipv4Addr,
        esp_inbound_spi: Spi,
        esp_outbound_spi: Spi,
        ah_inbound_spi: Spi,
        ah_outbound_spi: Spi,
    },
    /// VIPA giveback between the stack that holds a DVIPA and its
    /// VIPADEFINE owner (z/OS MOVEABLE IMMEDIATE / WHENIDLE): one step of
    /// `image::giveback`'s exchange.
    Giveback { dvipa: Ipv4Addr, step: GivebackStep },
    /// Target → a DVIPA's new routing stack (after a takeover or a
    /// giveback, when the target first hears its VIPA list): the
    /// connections to the DVIPA this target serves, so the new routing
    /// stack's DCT holds every one of them, also those the previous one
    /// made after its last CF journal write (z/OS: the target stacks
    /// tell the new distributing stack about their connections, and
    /// existing connections are not disrupted). Long lists come in
    /// several messages of at most [`MAX_REPORTED_CONNS`].
    ConnReport {
        dvipa: Ipv4Addr,
        /// The reporting target's XCF address (where its connections are
        /// forwarded; it need not be a destination of the new routing
        /// stack's VIPADISTRIBUTE: a connection keeps its target).
        target_xcf: Ipv4Addr,
        conns: Vec<ReportedConn>,
    },
}

/// The most connections one [`XcfMessage::ConnReport`] carries (about
/// 12 bytes each: well under `xcf_max_message_bytes`' smallest value).
pub const MAX_REPORTED_CONNS: usize = 256;

/// One connection of an [`XcfMessage::ConnReport`], to the report's DVIPA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedConn {
    pub client: Ipv4Addr,
    pub client_port: u16,
    /// The DVIPA's port.
    pub port: u16,
    /// What the target has seen of it.
    pub state: crate::sysplex::dct::ConnState,
    /// Whether its packets arrive under an SA of the DVIPA.
    pub ipsec: bool,
}

/// The steps of a giveback over XCF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GivebackStep {
    /// Holder → owner: the DVIPA's SAs and connections are in the CF and
    /// the holder makes no new connections (MOVING): claim it.
    Offer,
    /// Owner → holder: it owns the DVIPA now (claimed, adopted, plumbed,
    /// announced on the LAN): the holder lets go of it.
    Taken,
    /// Owner → holder: it will not take the DVIPA (it does not define it,
    /// or its claim failed): the holder keeps it.
    Declined,
}

/// Why a target ended a distributed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnEndReason {
    /// FIN seen in both directions, or the server closed.
    Closed,
    /// RST seen after decryption.
    Reset,
    /// The connection's packets failed authentication at the target: the
    /// routing stack's entry came from a packet it could only peek at.
    Rejected,
}

/// Requests to the coupling facility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CfRequest {
    /// Fig. 6 block 116: create the sequence structure of an outbound SA,
    /// the next number to hand out being `start`.
    CreateSeq {
        key: SeqKey,
        start: u64,
    },
    /// The patent's IXLLIST LISTKEYINC: atomically take `n` numbers.
    FetchAdd {
        key: SeqKey,
        n: u32,
    },
    DeleteSeq {
        key: SeqKey,
    },
    /// Key/value storage for the connection table and SA state (takeover).
    Put {
        key: String,
        value: Vec<u8>,
    },
    Get {
        key: String,
    },
    Delete {
        key: String,
    },
    List {
        prefix: String,
    },
    /// Like `CreateSeq`, with the last number that may ever be handed out
    /// given explicitly: `u64::MAX` for an SA with extended sequence numbers
    /// (RFC 4303 §2.2.1). `CreateSeq` means `last = u32::MAX`, the 32-bit
    /// counter that must not cycle (RFC 4303 §3.3.3). Appended last so the
    /// postcard indices of the other variants stay as they were.
    CreateSeqLimit {
        key: SeqKey,
        start: u64,
        last: u64,
    },
    /// Puts `value` under `key` only if the key holds `expected` now
    /// (`None`: absent), atomically; otherwise answers
    /// [`CfError::Conflict`] with what it holds. The serialization a VIPA
    /// takeover needs: of two backups that both think the owner is gone,
    /// one claims the DVIPA. Appended last (postcard indices).
    CompareAndSwap {
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    },
}

/// Answers of the coupling facility, one per request, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CfResponse {
    Done,
    /// Numbers `first .. first + n` are the caller's.
    SeqRange {
        first: u64,
        n: u32,
    },
    Value(Option<Vec<u8>>),
    Keys(Vec<String>),
    /// The request named a structure that does not exist, or was malformed.
    Error(CfError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CfError {
    #[error("no sequence structure for {0:?}")]
    UnknownSeq(SeqKey),
    #[error("sequence structure {0:?} already exists")]
    SeqExists(SeqKey),
    #[error("sequence numbers of {0:?} exhausted")]
    SeqExhausted(SeqKey),
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A [`CfRequest::CompareAndSwap`] found something else: what the key
    /// holds now.
    #[error("compare-and-swap lost: the key holds {} now", .0.as_ref().map_or("nothing".to_string(), |v| format!("{} other bytes", v.len())))]
    Conflict(Option<Vec<u8>>),
    /// The write would take the connector image past its share of the CF
    /// (`[limits] cf_max_*_per_image`); nothing was written.
    #[error("CF quota exceeded: {0}")]
    QuotaExceeded(String),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ipsec::sa::{EncAlg, IntegAlg, Key, Lifetimes, Mode, TrafficSelector};
    use std::net::IpAddr;

    fn cfg(protocol: Protocol, spi: u32, src: [u8; 4], dst: [u8; 4]) -> SaConfig {
        SaConfig {
            spi: Spi(spi),
            protocol,
            mode: Mode::Transport,
            src: IpAddr::from(src),
            dst: IpAddr::from(dst),
            enc: EncAlg::Null,
            enc_key: Key::default(),
            integ: IntegAlg::HmacSha1_96,
            integ_key: Key(vec![1; 20]),
            esn: false,
            replay_window: 64,
            lifetimes: Lifetimes::default(),
            udp_encap: None,
            selector: TrafficSelector::ANY_V4,
        }
    }

    /// A valid bundle between client 198.18.1.2 and DVIPA 198.18.0.100:
    /// ESP SPIs 0x11 in / 0x12 out, AH 0x13 / 0x14 (ESP-NULL, for tests).
    pub(crate) fn bundle() -> BundleInstall {
        let (c, d) = ([198, 18, 1, 2], [198, 18, 0, 100]);
        let dvipa = Ipv4Addr::from(d);
        let (ein, eout) = (
            cfg(Protocol::Esp, 0x11, c, d),
            cfg(Protocol::Esp, 0x12, d, c),
        );
        BundleInstall {
            esp: SaInstall {
                dvipa,
                filter: None,
                seq_key: SeqKey {
                    dvipa,
                    protocol: Protocol::Esp,
                    spi: eout.spi,
                },
                inbound: ein,
                outbound: eout,
                report_bytes: 0,
            },
            ah: AhBundle {
                inbound: cfg(Protocol::Ah, 0x13, c, d),
                outbound: cfg(Protocol::Ah, 0x14, d, c),
                seq_key: SeqKey {
                    dvipa,
                    protocol: Protocol::Ah,
                    spi: Spi(0x14),
                },
            },
        }
    }

    #[test]
    fn bundle_check() {
        assert_eq!(bundle().check(), Ok(()));
        let mut b = bundle();
        b.ah.inbound.protocol = Protocol::Esp;
        assert_eq!(b.check(), Err(BundleError::AhNotAh));
        let mut b = bundle();
        b.esp.outbound.protocol = Protocol::Ah;
        assert_eq!(b.check(), Err(BundleError::EspNotEsp));
        let mut b = bundle();
        b.ah.outbound.dst = IpAddr::from([198, 18, 1, 3]);
        assert_eq!(b.check(), Err(BundleError::Endpoints));
        let mut b = bundle();
        b.ah.seq_key = b.esp.seq_key;
        assert_eq!(b.check(), Err(BundleError::SeqKey));
        let e: crate::ipsec::sa::SaError = BundleError::SeqKey.into();
        assert_eq!(
            e.to_string(),
            format!("algorithm combination not allowed: {}", BundleError::SeqKey)
        );
    }
}
