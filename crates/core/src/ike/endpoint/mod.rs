//! [`Ike`]: the IKEv2 endpoint of one local address, sans-IO (RFC 7296).
//!
//! The caller feeds it UDP payloads received on ports 500 and 4500
//! ([`Ike::handle_datagram`]), the time ([`Ike::handle_timeout`] when
//! [`Ike::next_timeout`] is due) and commands ([`Ike::initiate`],
//! [`Ike::rekey_child`], ...), and polls datagrams to send
//! ([`Ike::poll_transmit`]) and events ([`Ike::poll_event`]). Time is the
//! core's [`Instant`], the time since start; randomness (SPIs, nonces,
//! Diffie-Hellman, IVs) comes in as an argument, so a seeded RNG makes a
//! run reproducible.
//!
//! The responder keeps no state for an IKE_SA_INIT it refuses
//! (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, COOKIE); once more than
//! [`IkeConfig::cookie_threshold`] IKE SAs are half-open, a request must
//! return the COOKIE we computed from its nonce, address and SPI (§2.6), so
//! a flood from spoofed or many source ports costs no memory, and
//! [`IkeConfig::half_open_limit`] caps what a non-spoofing flood can make.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rand_core::{CryptoRng, RngCore};

mod commands;
mod responder;

use crate::ike::api::{ChildSaId, Direction, DropReason, IkeEvent, IkeSaId, TraceRecord, Transmit};
use crate::ike::config::{IkeConfig, PeerConfig};
use crate::ike::natt::{classify_4500, Udp4500, IKE_PORT};
use crate::ike::sa::{Ctx, IkeSa, Outputs, State};
use crate::ike::wireshark;
use crate::time::Instant;
use crate::wire::ike::{
    ExchangeType, Flags, Header, IkeMessage, Notify, NotifyType, Packet, Payload,
};
use responder::InitRequest;

/// The IKEv2 endpoint of one local IPv4 address.
pub struct Ike {
    config: IkeConfig,
    local_ip: Ipv4Addr,
    /// IKE SAs by our SPI.
    sas: BTreeMap<u64, IkeSa>,
    /// IKE_SA_INIT requests we answered: (peer, SPIi) → our SPI, to spot
    /// retransmissions.
    init_index: HashMap<(SocketAddrV4, u64), u64>,
    /// Our SPIs of half-open (responder, before IKE_AUTH) SAs.
    half_open: BTreeSet<u64>,
    cookie_secret: [u8; 32],
    out: Outputs,
    next_ike: u32,
}

impl core::fmt::Debug for Ike {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ike")
            .field("local_ip", &self.local_ip)
            .field("ike_sas", &self.sas.len())
            .field("half_open", &self.half_open.len())
            .finish_non_exhaustive()
    }
}

/// A summary of one IKE SA, for displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaStatus {
    pub id: IkeSaId,
    pub state: &'static str,
    pub remote: SocketAddrV4,
    pub local_port: u16,
    pub spi_i: u64,
    pub spi_r: u64,
    pub initiator: bool,
    pub nat: bool,
    pub children: Vec<ChildSaId>,
}

impl Ike {
    /// An endpoint for `local_ip`; `rng` draws the cookie secret.
    pub fn new<R: RngCore + CryptoRng>(config: IkeConfig, local_ip: Ipv4Addr, rng: &mut R) -> Ike {
        let mut cookie_secret = [0u8; 32];
        rng.fill_bytes(&mut cookie_secret);
        Ike {
            config,
            local_ip,
            sas: BTreeMap::new(),
            init_index: HashMap::new(),
            half_open: BTreeSet::new(),
            cookie_secret,
            out: Outputs::default(),
            next_ike: 1,
        }
    }

    pub fn config(&self) -> &IkeConfig {
        &self.config
    }

    /// Adds a peer (its PSK and selectors) after construction.
    pub fn add_peer(&mut self, peer: PeerConfig) {
        self.config.peers.push(peer);
    }

    pub fn local_ip(&self) -> Ipv4Addr {
        self.local_ip
    }

    /// Records a [`TraceRecord`] per message from now on.
    pub fn enable_trace(&mut self) {
        self.out.trace.get_or_insert_with(VecDeque::new);
    }

    pub fn poll_trace(&mut self) -> Option<TraceRecord> {
        self.out.trace.as_mut()?.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<IkeEvent> {
        self.out.events.pop_front()
    }

    /// Number of half-open IKE SAs (responder side, before IKE_AUTH).
    pub fn half_open(&self) -> usize {
        self.half_open.len()
    }

    /// Number of IKE SAs in any state.
    pub fn ike_sa_count(&self) -> usize {
        self.sas.len()
    }

    /// Every IKE SA, ordered by our SPI.
    pub fn status(&self) -> Vec<IkeSaStatus> {
        self.sas
            .values()
            .map(|sa| IkeSaStatus {
                id: sa.id,
                state: sa.state.name(),
                remote: sa.remote,
                local_port: sa.local_port,
                spi_i: sa.spi_i,
                spi_r: sa.spi_r,
                initiator: sa.initiator,
                nat: sa.nat_local || sa.nat_remote,
                children: sa.children.keys().copied().collect(),
            })
            .collect()
    }

    /// The IKE SA's keys as a line of Wireshark's `ikev2_decryption_table`
    /// (see [`wireshark`](crate::ike::wireshark)); `None` before its keys
    /// exist.
    pub fn wireshark_ike_keys(&self, id: IkeSaId) -> Option<String> {
        let sa = self.current(id)?;
        let c = sa.crypto.as_ref()?;
        Some(wireshark::ikev2_line(sa.spi_i, sa.spi_r, c.suite, &c.keys))
    }

    fn ctx<'a, R: RngCore + CryptoRng>(
        config: &'a IkeConfig,
        out: &'a mut Outputs,
        rng: &'a mut R,
        now: Instant,
        local_ip: Ipv4Addr,
    ) -> Ctx<'a> {
        Ctx {
            config,
            out,
            rng,
            now,
            local_ip,
        }
    }

    /// The current (not superseded) SA behind a handle.
    fn current(&self, id: IkeSaId) -> Option<&IkeSa> {
        self.sas
            .values()
            .find(|sa| sa.id == id && !matches!(sa.state, State::Rekeyed | State::Dead))
    }

    fn current_spi(&self, id: IkeSaId) -> Option<u64> {
        self.current(id).map(IkeSa::local_spi)
    }

    fn child_spi_owner(&self, child: ChildSaId) -> Option<u64> {
        self.sas
            .iter()
            .find(|(_, sa)| sa.children.contains_key(&child))
            .map(|(spi, _)| *spi)
    }

    /// Inserts SAs made by rekeying, removes finished ones, keeps the
    /// half-open set in step, after `spi` was worked on.
    fn settle(&mut self, spi: u64) {
        for new in std::mem::take(&mut self.out.spawned) {
            self.sas.insert(new.local_spi(), new);
        }
        let Some(sa) = self.sas.get(&spi) else {
            return;
        };
        if !matches!(sa.state, State::ExpectAuth(_)) {
            self.half_open.remove(&spi);
        }
        if let Some(reason) = sa.remove {
            self.remove_sa(spi, reason);
        }
    }

    fn remove_sa(&mut self, spi: u64, reason: Option<crate::ike::api::DeleteReason>) {
        let Some(sa) = self.sas.remove(&spi) else {
            return;
        };
        self.half_open.remove(&spi);
        self.out.ike_spis.remove(&spi);
        if let Some(k) = sa.init_key {
            self.init_index.remove(&k);
        }
        for (id, c) in sa.children {
            self.out.child_spis.remove(&c.info.inbound.spi.0);
            self.out.events.push_back(IkeEvent::ChildSaDeleted {
                ike_sa: sa.id,
                child: id,
                spis: c.info.spis(),
            });
        }
        if let Some(reason) = reason {
            self.out.events.push_back(IkeEvent::IkeSaDeleted {
                ike_sa: sa.id,
                reason,
            });
        }
    }

    // -------------------------------------------------------------------
    // Input
    // -------------------------------------------------------------------

    /// Handles one UDP payload that arrived from `remote` on our
    /// `local_port` (500 or 4500). On 4500 the non-ESP marker is removed
    /// here and NAT-keepalives are ignored; ESP-in-UDP is refused with
    /// [`DropReason::NotIke`] (route it with
    /// [`classify_4500`](crate::ike::natt::classify_4500) first).
    ///
    /// Never panics; every refusal is a [`DropReason`] and changes nothing.
    pub fn handle_datagram<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local_port: u16,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<(), DropReason> {
        let r = self.datagram(now, remote, local_port, payload, rng);
        if let Err(e) = &r {
            let (local, summary) = (
                SocketAddrV4::new(self.local_ip, local_port),
                format!("dropped: {e}"),
            );
            self.out.trace(|| TraceRecord {
                at: now,
                direction: Direction::Dropped,
                local,
                remote,
                summary,
            });
        }
        r
    }

    fn datagram<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local_port: u16,
        payload: &[u8],
        rng: &mut R,
    ) -> Result<(), DropReason> {
        let ike = if local_port == IKE_PORT {
            payload
        } else {
            match classify_4500(payload) {
                Udp4500::Ike(b) => b,
                Udp4500::Keepalive => return Ok(()),
                Udp4500::Esp(_) | Udp4500::Invalid => return Err(DropReason::NotIke),
            }
        };
        let packet = Packet::new_checked(ike)?;
        let header = Header::parse(&packet);
        if header.major_version != 2 {
            return self.invalid_major(remote, local_port, &header);
        }
        if usize::try_from(packet.length()).ok() != Some(ike.len()) {
            return Err(DropReason::Malformed(
                crate::wire::ike::Error::LengthMismatch {
                    header: packet.length(),
                    datagram: ike.len(),
                },
            ));
        }
        if header.exchange_type == ExchangeType::IkeSaInit
            && !header.flags.response()
            && header.spi_r == 0
        {
            let req = InitRequest {
                now,
                remote,
                local_port,
                header,
                raw: ike,
            };
            return self.on_init_request(req, rng);
        }
        // Our SPI: SPIr if the sender is the original initiator (§3.1).
        let spi = if header.flags.initiator() {
            header.spi_r
        } else {
            header.spi_i
        };
        let config = &self.config;
        let sa = self.sas.get_mut(&spi).ok_or(DropReason::UnknownSpi)?;
        let mut ctx = Self::ctx(config, &mut self.out, rng, now, self.local_ip);
        let r = sa.on_message(&mut ctx, remote, local_port, ike, header);
        self.settle(spi);
        r
    }

    /// §2.5: a higher major version gets INVALID_MAJOR_VERSION, unencrypted,
    /// for requests only.
    fn invalid_major(
        &mut self,
        remote: SocketAddrV4,
        local_port: u16,
        header: &Header,
    ) -> Result<(), DropReason> {
        let version = header.major_version;
        if version > 2 && !header.flags.response() {
            let h = Header {
                major_version: 2,
                minor_version: 0,
                ..*header
            };
            let msg = IkeMessage {
                header: Header {
                    flags: Flags(Flags::RESPONSE),
                    ..h
                },
                payloads: vec![Payload::Notify(Notify::new(
                    NotifyType::InvalidMajorVersion,
                    Vec::new(),
                ))],
            };
            if let Ok(bytes) = msg.to_bytes() {
                self.send_raw(remote, local_port, &bytes);
            }
        }
        Err(DropReason::Malformed(
            crate::wire::ike::Error::UnsupportedVersion(version),
        ))
    }

    fn send_raw(&mut self, remote: SocketAddrV4, local_port: u16, ike: &[u8]) {
        self.out.transmits.push_back(Transmit {
            remote,
            local_port,
            payload: crate::ike::natt::udp_payload(local_port, ike),
        });
    }

    // -------------------------------------------------------------------
    // Time
    // -------------------------------------------------------------------

    /// When [`Ike::handle_timeout`] must be called next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.sas.values().filter_map(IkeSa::next_timeout).min()
    }

    /// Retransmits, expires half-open SAs, starts rekeys, deletes and
    /// liveness checks that are due. Takes `rng` for the exchanges it may
    /// start (nonces, SPIs, Diffie-Hellman).
    pub fn handle_timeout<R: RngCore + CryptoRng>(&mut self, now: Instant, rng: &mut R) {
        let due: Vec<u64> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.next_timeout().is_some_and(|t| t <= now))
            .map(|(spi, _)| *spi)
            .collect();
        for spi in due {
            let config = &self.config;
            if let Some(sa) = self.sas.get_mut(&spi) {
                let mut ctx = Self::ctx(config, &mut self.out, rng, now, self.local_ip);
                sa.on_timeout(&mut ctx);
            }
            self.settle(spi);
        }
    }
}
