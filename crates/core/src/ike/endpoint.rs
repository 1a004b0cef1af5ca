//! [`Ike`]: the IKEv2 endpoint of one local address, sans-IO (RFC 7296).
//!
//! The caller feeds it UDP payloads received on ports 500 and 4500
//! ([`Ike::handle_datagram`]), the time ([`Ike::handle_timeout`] when
//! [`Ike::next_timeout`] is due) and commands ([`Ike::initiate`],
//! [`Ike::rekey_child`], ...), and polls datagrams to send
//! ([`Ike::poll_transmit`]) and events ([`Ike::poll_event`]). Time is a
//! [`Duration`] since any epoch the caller picks; randomness (SPIs, nonces,
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
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ike::api::{
    ChildSaId, CommandError, Direction, DropReason, IkeEvent, IkeSaId, TraceRecord, Transmit,
};
use crate::ike::config::{IkeConfig, PeerConfig};
use crate::ike::dh::DhGroup;
use crate::ike::keys::{ike_keys, skeyseed};
use crate::ike::natt::{classify_4500, nat_detection_hash, Udp4500, IKE_PORT};
use crate::ike::proposal::{select, KeMode, SelectError, SelectOptions};
use crate::ike::sa::{
    find_ke, find_nonce, find_sa, stateless_init_response, unknown_critical, Ctx, ExpectAuth,
    ExpectInitResponse, IkeCrypto, IkeSa, Outputs, State, Task, NONCE_LEN,
};
use crate::ike::trace::describe;
use crate::ike::wireshark;
use crate::wire::ike::{
    ExchangeType, Flags, Header, IkeMessage, KeyExchange, Notify, NotifyType, Packet, Payload,
};

/// Version octet of our cookies, so the secret could be rotated (§2.6).
const COOKIE_VERSION: u8 = 1;

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
        now: Duration,
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
        now: Duration,
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
        now: Duration,
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
            return self.on_init_request(now, remote, local_port, ike, header, rng);
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

    fn send_stateless(
        &mut self,
        now: Duration,
        remote: SocketAddrV4,
        local_port: u16,
        header: &Header,
        n: Notify,
    ) {
        let summary = describe(
            &Header {
                flags: Flags(Flags::RESPONSE),
                ..*header
            },
            &[Payload::Notify(n.clone())],
        );
        if let Some(bytes) = stateless_init_response(header, n) {
            let local = SocketAddrV4::new(self.local_ip, local_port);
            self.out.trace(|| TraceRecord {
                at: now,
                direction: Direction::Sent,
                local,
                remote,
                summary,
            });
            self.send_raw(remote, local_port, &bytes);
        }
    }

    /// The COOKIE for a request: `<VersionIDofSecret> | SHA-256(Ni | IPi |
    /// SPIi | <secret>)` (RFC 7296 §2.6).
    fn cookie(&self, ni: &[u8], ip: Ipv4Addr, spi_i: u64) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(ni);
        h.update(ip.octets());
        h.update(spi_i.to_be_bytes());
        h.update(self.cookie_secret);
        let mut c = vec![COOKIE_VERSION];
        c.extend_from_slice(&h.finalize());
        c
    }

    /// A responder's IKE_SA_INIT (§1.2): refuse without state, or commit to
    /// a half-open IKE SA and answer.
    fn on_init_request<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        remote: SocketAddrV4,
        local_port: u16,
        raw: &[u8],
        header: Header,
        rng: &mut R,
    ) -> Result<(), DropReason> {
        if !header.flags.initiator() || header.message_id != 0 {
            return Err(DropReason::Unexpected("IKE_SA_INIT header"));
        }
        if let Some(&spi) = self.init_index.get(&(remote, header.spi_i)) {
            // A retransmission: the same response again (§2.1).
            if let Some(State::ExpectAuth(st)) = self.sas.get(&spi).map(|s| &s.state) {
                if st.request == raw {
                    let bytes = st.response.clone();
                    self.send_raw(remote, local_port, &bytes);
                    return Ok(());
                }
            }
            return Err(DropReason::Unexpected("IKE_SA_INIT for an existing IKE SA"));
        }
        let msg = IkeMessage::parse(raw)?;
        let local = SocketAddrV4::new(self.local_ip, local_port);
        let summary = describe(&header, &msg.payloads);
        self.out.trace(|| TraceRecord {
            at: now,
            direction: Direction::Received,
            local,
            remote,
            summary,
        });
        let p = &msg.payloads;
        if let Some(t) = unknown_critical(p) {
            let n = Notify::new(NotifyType::UnsupportedCriticalPayload, vec![t]);
            self.send_stateless(now, remote, local_port, &header, n);
            return Ok(());
        }
        let (Some(sa), Some(ke), Some(ni)) = (find_sa(p), find_ke(p), find_nonce(p)) else {
            let n = Notify::new(NotifyType::InvalidSyntax, Vec::new());
            self.send_stateless(now, remote, local_port, &header, n);
            return Ok(());
        };
        if self.half_open.len() >= self.config.cookie_threshold {
            let expected = self.cookie(ni, *remote.ip(), header.spi_i);
            let valid = matches!(p.first(), Some(Payload::Notify(n))
                if n.notify_type == NotifyType::Cookie
                    && n.data.len() == expected.len()
                    && bool::from(n.data.ct_eq(&expected)));
            if !valid {
                let n = Notify::new(NotifyType::Cookie, expected);
                self.send_stateless(now, remote, local_port, &header, n);
                return Ok(());
            }
        }
        if self.half_open.len() >= self.config.half_open_limit {
            return Err(DropReason::HalfOpenLimit);
        }
        let chosen = match select(
            &self.config.ike_proposals,
            sa,
            KeMode::Offered(ke.group),
            SelectOptions::default(),
        ) {
            Ok(c) => c,
            Err(SelectError::NoProposalChosen) => {
                let n = Notify::new(NotifyType::NoProposalChosen, Vec::new());
                self.send_stateless(now, remote, local_port, &header, n);
                return Ok(());
            }
            Err(SelectError::InvalidKe { wanted }) => {
                self.send_stateless(
                    now,
                    remote,
                    local_port,
                    &header,
                    Notify::invalid_ke(wanted.id()),
                );
                return Ok(());
            }
        };
        let (Some(suite), Some(group)) = (chosen.ike_suite(), chosen.dh) else {
            let n = Notify::new(NotifyType::NoProposalChosen, Vec::new());
            self.send_stateless(now, remote, local_port, &header, n);
            return Ok(());
        };
        let config = &self.config;
        let mut ctx = Self::ctx(config, &mut self.out, rng, now, self.local_ip);
        let dh = ctx.dh(group);
        let Ok(g_ir) = dh.shared_secret(&ke.data) else {
            let n = Notify::new(NotifyType::InvalidSyntax, Vec::new());
            self.send_stateless(now, remote, local_port, &header, n);
            return Ok(());
        };
        let spi_r = ctx.ike_spi();
        let mut nr = vec![0; NONCE_LEN];
        ctx.rng.fill_bytes(&mut nr);
        let seed = skeyseed(suite.prf, ni, &nr, &g_ir);
        let Ok(keys) = ike_keys(suite, &seed, ni, &nr, header.spi_i, spi_r) else {
            self.out.ike_spis.remove(&spi_r);
            return Err(DropReason::Unexpected("key derivation"));
        };
        // NAT detection (§2.23): SPIr is zero in the request's hashes.
        let srcs: Vec<&Notify> = p
            .iter()
            .filter_map(|x| match x {
                Payload::Notify(n) if n.notify_type == NotifyType::NatDetectionSourceIp => Some(n),
                _ => None,
            })
            .collect();
        let dst = p.iter().find_map(|x| match x {
            Payload::Notify(n) if n.notify_type == NotifyType::NatDetectionDestinationIp => Some(n),
            _ => None,
        });
        let nat_remote = !srcs.is_empty() && {
            let h = nat_detection_hash(header.spi_i, 0, remote);
            !srcs.iter().any(|n| n.data == h)
        };
        let nat_local = dst.is_some_and(|d| d.data != nat_detection_hash(header.spi_i, 0, local));
        let mut payloads = vec![
            Payload::Sa(crate::wire::ike::Sa {
                proposals: vec![chosen.to_proposal(Vec::new())],
            }),
            Payload::Ke(KeyExchange {
                group: group.id(),
                data: dh.public_value().to_vec(),
            }),
            Payload::Nonce(nr.clone()),
        ];
        if !srcs.is_empty() || dst.is_some() {
            let ours = if self.config.force_encap {
                nat_detection_hash(
                    header.spi_i,
                    spi_r,
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                )
            } else {
                nat_detection_hash(header.spi_i, spi_r, local)
            };
            payloads.push(Payload::Notify(Notify::new(
                NotifyType::NatDetectionSourceIp,
                ours.to_vec(),
            )));
            payloads.push(Payload::Notify(Notify::new(
                NotifyType::NatDetectionDestinationIp,
                nat_detection_hash(header.spi_i, spi_r, remote).to_vec(),
            )));
        }
        let resp_header = Header {
            spi_r,
            flags: Flags(Flags::RESPONSE),
            ..header
        };
        let response = IkeMessage {
            header: resp_header,
            payloads,
        };
        let Ok(bytes) = response.to_bytes() else {
            self.out.ike_spis.remove(&spi_r);
            return Err(DropReason::Unexpected("emit"));
        };
        let id = IkeSaId(self.next_ike);
        self.next_ike = self.next_ike.wrapping_add(1);
        let mut sa = IkeSa::new(
            id,
            false,
            header.spi_i,
            remote,
            local_port,
            State::ExpectAuth(Box::new(ExpectAuth {
                request: raw.to_vec(),
                response: bytes.clone(),
                ni: ni.clone(),
                nr,
            })),
        );
        sa.spi_r = spi_r;
        sa.nat_local = nat_local || (self.config.force_encap && !srcs.is_empty());
        sa.nat_remote = nat_remote;
        sa.crypto = Some(IkeCrypto::new(suite, group, keys, false));
        sa.next_recv_id = 1;
        sa.delete_at = Some(now + self.config.half_open_timeout);
        sa.init_key = Some((remote, header.spi_i));
        let summary = describe(&resp_header, &response.payloads);
        self.out.trace(|| TraceRecord {
            at: now,
            direction: Direction::Sent,
            local,
            remote,
            summary,
        });
        self.send_raw(remote, local_port, &bytes);
        self.init_index.insert((remote, header.spi_i), spi_r);
        self.half_open.insert(spi_r);
        self.sas.insert(spi_r, sa);
        Ok(())
    }

    // -------------------------------------------------------------------
    // Time
    // -------------------------------------------------------------------

    /// When [`Ike::handle_timeout`] must be called next.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.sas.values().filter_map(IkeSa::next_timeout).min()
    }

    /// Retransmits, expires half-open SAs, starts rekeys, deletes and
    /// liveness checks that are due. Takes `rng` for the exchanges it may
    /// start (nonces, SPIs, Diffie-Hellman).
    pub fn handle_timeout<R: RngCore + CryptoRng>(&mut self, now: Duration, rng: &mut R) {
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

    // -------------------------------------------------------------------
    // Commands
    // -------------------------------------------------------------------

    /// Starts an IKE SA with `remote` (port 500) for `peer` (§1.2); its
    /// first child SA comes with IKE_AUTH.
    pub fn initiate<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        remote: SocketAddrV4,
        peer: PeerConfig,
        rng: &mut R,
    ) -> IkeSaId {
        let id = IkeSaId(self.next_ike);
        self.next_ike = self.next_ike.wrapping_add(1);
        let config = &self.config;
        let mut ctx = Self::ctx(config, &mut self.out, rng, now, self.local_ip);
        let spi = ctx.ike_spi();
        let group = config
            .ike_proposals
            .iter()
            .find_map(|p| p.dh.first().copied())
            .unwrap_or(DhGroup::Curve25519);
        let init = Box::new(ExpectInitResponse {
            dh: ctx.dh(group),
            ni: ctx.nonce(),
            cookie: None,
            request: Vec::new(),
        });
        let mut sa = IkeSa::new(id, true, spi, remote, remote.port(), State::Dead);
        sa.local_port = IKE_PORT;
        sa.peer = Some(peer);
        sa.send_init_request(&mut ctx, init);
        self.sas.insert(spi, sa);
        self.settle(spi);
        id
    }

    fn command<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        spi: u64,
        rng: &mut R,
        f: impl FnOnce(&mut IkeSa, &mut Ctx<'_>),
    ) {
        let config = &self.config;
        if let Some(sa) = self.sas.get_mut(&spi) {
            let mut ctx = Self::ctx(config, &mut self.out, rng, now, self.local_ip);
            f(sa, &mut ctx);
            sa.kick(&mut ctx);
        }
        self.settle(spi);
    }

    /// Queues `task` on the IKE SA `spi` and lets it start (the commands
    /// below).
    fn enqueue<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        spi: u64,
        task: Task,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        self.command(now, spi, rng, |sa, _| sa.enqueue(task));
        Ok(())
    }

    fn established_spi(&self, id: IkeSaId) -> Result<u64, CommandError> {
        let spi = self.current_spi(id).ok_or(CommandError::UnknownIkeSa)?;
        match self.sas.get(&spi) {
            Some(sa) if sa.is_established() => Ok(spi),
            _ => Err(CommandError::NotEstablished),
        }
    }

    /// Rekeys a child SA (CREATE_CHILD_SA with REKEY_SA, §1.3.3).
    pub fn rekey_child<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        child: ChildSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self
            .child_spi_owner(child)
            .ok_or(CommandError::UnknownChildSa)?;
        self.enqueue(now, spi, Task::RekeyChild(child), rng)
    }

    /// Deletes a child SA (INFORMATIONAL with Delete, §1.4.1).
    pub fn delete_child<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        child: ChildSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self
            .child_spi_owner(child)
            .ok_or(CommandError::UnknownChildSa)?;
        self.enqueue(now, spi, Task::DeleteChild(child), rng)
    }

    /// Rekeys the IKE SA (§1.3.2); the handle stays.
    pub fn rekey_ike<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        id: IkeSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self.established_spi(id)?;
        self.enqueue(now, spi, Task::RekeyIke, rng)
    }

    /// Deletes the IKE SA and with it its children (§1.4.1).
    pub fn delete_ike<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        id: IkeSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self.established_spi(id)?;
        self.enqueue(now, spi, Task::DeleteIke, rng)
    }

    /// A liveness check: an empty INFORMATIONAL request (§1.4).
    pub fn dpd<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        id: IkeSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self.established_spi(id)?;
        self.enqueue(now, spi, Task::Dpd, rng)
    }

    /// Bytes and packets a child SA carried (both directions, as targets
    /// report them); rekeys or deletes it at its lifesize limits.
    pub fn child_bytes_processed<R: RngCore + CryptoRng>(
        &mut self,
        now: Duration,
        child: ChildSaId,
        bytes: u64,
        packets: u64,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self
            .child_spi_owner(child)
            .ok_or(CommandError::UnknownChildSa)?;
        self.command(now, spi, rng, |sa, ctx| {
            sa.child_traffic(ctx, child, bytes, packets);
        });
        Ok(())
    }
}
