//! One IKE SA and its child SAs: the exchanges after the responder's
//! IKE_SA_INIT (which [`Ike`](crate::ike::Ike) handles statelessly until it
//! commits to state), driven by messages, timers and commands.
//!
//! States are named by what they expect next and taken by value
//! (`mem::replace` with [`State::Dead`]) when a message moves them on.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_core::CryptoRngCore;

use crate::ike::api::{
    ChildSaId, ChildSaInfo, DeleteReason, Direction, DropReason, IkeEvent, IkeSaId, Role,
    TraceRecord, Transmit,
};
use crate::ike::config::{enc_alg, IkeConfig, PeerConfig};
use crate::ike::dh::{DhGroup, DhPrivate, Zeroizing};
use crate::ike::ident::Identity;
use crate::ike::keys::{
    child_keys, ike_keys, psk_auth, signed_octets, skeyseed, skeyseed_rekey, verify_psk_auth,
    ChildKeys, IkeKeys, IkeSuite, Integ,
};
use crate::ike::natt::{nat_detection_hash, udp_payload, NATT_PORT};
use crate::ike::proposal::{select, KeMode, ProposalConfig, SelectError, SelectOptions, Selected};
use crate::ike::sk::{OpenError, SkKeys};
use crate::ike::trace::describe;
use crate::ike::ts;
use crate::ipsec::sa::{
    IntegAlg, Key, Lifetime, Lifetimes, Mode, Protocol as SaProtocol, SaConfig, Spi,
    TrafficSelector as SaSelector, UdpEncap,
};
use crate::wire::ike::{
    Auth, AuthMethod, Delete, DhId, ExchangeType, Flags, Header, IkeMessage, KeyExchange, Notify,
    NotifyType, Payload, Proposal, ProtocolId, Sa, TrafficSelector, Transform, TransformId,
};

/// Nonce length we send: 32 octets, at least half the PRF key size of
/// every PRF we have (RFC 7296 §2.10).
pub(crate) const NONCE_LEN: usize = 32;
/// Nonce lengths we accept (RFC 7296 §3.9: 16 to 256 octets).
pub(crate) const NONCE_RANGE: core::ops::RangeInclusive<usize> = 16..=256;
/// How long an IKE SA that was rekeyed waits for the DELETE of the peer
/// before it is dropped anyway.
const REKEYED_LINGER: Duration = Duration::from_secs(30);

/// What the per-SA code writes to, owned by the endpoint.
#[derive(Default)]
pub(crate) struct Outputs {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<IkeEvent>,
    pub trace: Option<VecDeque<TraceRecord>>,
    /// IKE SAs created by rekeying, for the endpoint to insert.
    pub spawned: Vec<IkeSa>,
    pub next_child: u32,
    /// Inbound child SPIs in use on this endpoint.
    pub child_spis: BTreeSet<u32>,
    /// Local IKE SPIs in use on this endpoint.
    pub ike_spis: BTreeSet<u64>,
}

impl core::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Outputs")
            .field("transmits", &self.transmits.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Outputs {
    pub fn trace(&mut self, rec: impl FnOnce() -> TraceRecord) {
        if let Some(t) = &mut self.trace {
            t.push_back(rec());
        }
    }
}

/// Everything a handler needs besides its SA.
pub(crate) struct Ctx<'a> {
    pub config: &'a IkeConfig,
    pub out: &'a mut Outputs,
    pub rng: &'a mut dyn CryptoRngCore,
    pub now: Duration,
    pub local_ip: Ipv4Addr,
}

impl Ctx<'_> {
    pub fn nonce(&mut self) -> Vec<u8> {
        let mut n = vec![0; NONCE_LEN];
        self.rng.fill_bytes(&mut n);
        n
    }

    /// A fresh inbound ESP SPI: above the reserved 1–255 (RFC 4303 §2.1),
    /// unique on this endpoint.
    pub fn child_spi(&mut self) -> u32 {
        loop {
            let spi = self.rng.next_u32();
            if spi > 255 && self.out.child_spis.insert(spi) {
                return spi;
            }
        }
    }

    /// A fresh local IKE SPI: non-zero (§3.1), unique on this endpoint.
    pub fn ike_spi(&mut self) -> u64 {
        loop {
            let spi = self.rng.next_u64();
            if spi != 0 && self.out.ike_spis.insert(spi) {
                return spi;
            }
        }
    }

    pub fn dh(&mut self, group: DhGroup) -> DhPrivate {
        DhPrivate::generate(group, &mut self.rng)
    }

    /// A random duration in `[0, max]` taken off rekey times.
    pub fn jitter(&mut self, max: Duration) -> Duration {
        let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(self.rng.next_u64() % (ms + 1))
    }
}

/// The negotiated IKE SA transforms and keys (RFC 7296 §2.14).
pub(crate) struct IkeCrypto {
    pub suite: IkeSuite,
    pub group: DhGroup,
    pub keys: IkeKeys,
    pub send: SkKeys,
    pub recv: SkKeys,
}

impl IkeCrypto {
    pub fn new(suite: IkeSuite, group: DhGroup, keys: IkeKeys, initiator: bool) -> IkeCrypto {
        let i = SkKeys {
            encr: suite.encr,
            integ: suite.integ,
            sk_e: keys.sk_ei.clone(),
            sk_a: keys.sk_ai.clone(),
        };
        let r = SkKeys {
            encr: suite.encr,
            integ: suite.integ,
            sk_e: keys.sk_er.clone(),
            sk_a: keys.sk_ar.clone(),
        };
        let (send, recv) = if initiator { (i, r) } else { (r, i) };
        IkeCrypto {
            suite,
            group,
            keys,
            send,
            recv,
        }
    }
}

/// Initiator, IKE_SA_INIT sent.
pub(crate) struct ExpectInitResponse {
    pub dh: DhPrivate,
    pub ni: Vec<u8>,
    pub cookie: Option<Vec<u8>>,
    /// The request as last sent: RealMessage1 of the AUTH (§2.15).
    pub request: Vec<u8>,
}

/// Responder, IKE_SA_INIT answered: the half-open state (§2.6).
pub(crate) struct ExpectAuth {
    pub request: Vec<u8>,
    pub response: Vec<u8>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
}

/// Initiator, IKE_AUTH sent.
pub(crate) struct ExpectAuthResponse {
    /// RealMessage2, which the responder's AUTH signs.
    pub response: Vec<u8>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub spi_in: u32,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
}

pub(crate) enum State {
    ExpectInitResponse(Box<ExpectInitResponse>),
    ExpectAuth(Box<ExpectAuth>),
    ExpectAuthResponse(Box<ExpectAuthResponse>),
    Established,
    /// Superseded by a rekeyed IKE SA; waits for the DELETE exchange.
    Rekeyed,
    /// Gone, or transiently taken.
    Dead,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::ExpectInitResponse(_) => "ExpectInitResponse",
            State::ExpectAuth(_) => "ExpectAuth",
            State::ExpectAuthResponse(_) => "ExpectAuthResponse",
            State::Established => "Established",
            State::Rekeyed => "Rekeyed",
            State::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildState {
    Installed,
    Rekeying,
    /// Replaced by a rekey; waits for the DELETE (ours or the peer's).
    Rekeyed,
    Deleting,
}

pub(crate) struct Child {
    pub info: ChildSaInfo,
    /// The PFS group it was made with, reused when it is rekeyed.
    pub pfs: Option<DhGroup>,
    pub state: ChildState,
    pub rekey_at: Option<Duration>,
    pub expire_at: Option<Duration>,
    pub bytes: u64,
    pub packets: u64,
}

/// A CREATE_CHILD_SA request for a child SA in flight.
pub(crate) struct ChildRequest {
    pub rekey: Option<ChildSaId>,
    pub spi_in: u32,
    pub ni: Vec<u8>,
    pub dh: Option<DhPrivate>,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
}

/// A CREATE_CHILD_SA request rekeying the IKE SA in flight (§1.3.2).
pub(crate) struct IkeRekeyRequest {
    pub spi: u64,
    pub ni: Vec<u8>,
    pub dh: DhPrivate,
}

pub(crate) enum Request {
    Init,
    Auth,
    CreateChild(Box<ChildRequest>),
    RekeyIke(Box<IkeRekeyRequest>),
    DeleteChildren(Vec<ChildSaId>),
    DeleteIke,
    Dpd,
}

/// Our outstanding request: window size 1 (§2.3).
pub(crate) struct Pending {
    pub msg_id: u32,
    pub datagram: Vec<u8>,
    pub tries: u32,
    pub retransmit_at: Duration,
    pub what: Request,
}

/// Exchanges waiting for the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    RekeyChild(ChildSaId),
    RekeyIke,
    DeleteChild(ChildSaId),
    DeleteIke,
    Dpd,
}

pub(crate) struct IkeSa {
    pub id: IkeSaId,
    /// Whether we are the original initiator (the I flag, §3.1).
    pub initiator: bool,
    pub spi_i: u64,
    pub spi_r: u64,
    pub local_port: u16,
    pub remote: SocketAddrV4,
    pub nat_local: bool,
    pub nat_remote: bool,
    pub peer: Option<PeerConfig>,
    pub remote_id: Option<Identity>,
    pub state: State,
    pub crypto: Option<IkeCrypto>,
    pub next_send_id: u32,
    pub next_recv_id: u32,
    /// Our last response, for retransmitted requests (§2.1).
    pub cached: Option<(u32, Vec<u8>)>,
    pub pending: Option<Pending>,
    pub queue: VecDeque<Task>,
    pub children: BTreeMap<ChildSaId, Child>,
    pub rekey_at: Option<Duration>,
    pub delete_at: Option<Duration>,
    pub dpd_at: Option<Duration>,
    /// Set when the endpoint must remove this SA; the reason is `None` for
    /// a silent removal (half-open, superseded).
    pub remove: Option<Option<DeleteReason>>,
    /// The IKE_SA_INIT request index key (responder).
    pub init_key: Option<(SocketAddrV4, u64)>,
}

/// Outcome of processing a request: the payloads of the response.
type Response = Vec<Payload>;

fn notify(t: NotifyType) -> Payload {
    Payload::Notify(Notify::new(t, Vec::new()))
}

fn find_notify(payloads: &[Payload], t: NotifyType) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == t => Some(n),
        _ => None,
    })
}

/// The first error notify (§3.10.1: types below 16384).
pub(crate) fn first_error(payloads: &[Payload]) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type.is_error() => Some(n),
        _ => None,
    })
}

pub(crate) fn find_sa(payloads: &[Payload]) -> Option<&Sa> {
    payloads.iter().find_map(|p| match p {
        Payload::Sa(s) => Some(s),
        _ => None,
    })
}

pub(crate) fn find_ke(payloads: &[Payload]) -> Option<&KeyExchange> {
    payloads.iter().find_map(|p| match p {
        Payload::Ke(k) => Some(k),
        _ => None,
    })
}

pub(crate) fn find_nonce(payloads: &[Payload]) -> Option<&Vec<u8>> {
    payloads.iter().find_map(|p| match p {
        Payload::Nonce(n) if NONCE_RANGE.contains(&n.len()) => Some(n),
        _ => None,
    })
}

fn find_ts(payloads: &[Payload]) -> Option<(&Vec<TrafficSelector>, &Vec<TrafficSelector>)> {
    let i = payloads.iter().find_map(|p| match p {
        Payload::TsI(t) => Some(t),
        _ => None,
    })?;
    let r = payloads.iter().find_map(|p| match p {
        Payload::TsR(t) => Some(t),
        _ => None,
    })?;
    Some((i, r))
}

/// The first unknown payload with the critical bit (§2.5).
pub(crate) fn unknown_critical(payloads: &[Payload]) -> Option<u8> {
    payloads.iter().find_map(|p| match p {
        Payload::Unknown(u) if u.critical => Some(u.payload_type),
        _ => None,
    })
}

/// Our proposals as an SA payload (§3.3), each with every transform
/// configured and our SPI. `with_dh` is false for the child SA of
/// IKE_AUTH, which has no KE (§1.2).
pub(crate) fn offer(configs: &[ProposalConfig], spi: &[u8], with_dh: bool) -> Sa {
    let proposals = configs
        .iter()
        .zip(1u8..)
        .map(|(c, number)| {
            let mut t: Vec<Transform> = c
                .encr
                .iter()
                .map(|e| Transform::encr(e.id(), Some(e.key_bits())))
                .collect();
            t.extend(
                c.integ
                    .iter()
                    .map(|x| Transform::new(TransformId::Integ(x.id()))),
            );
            t.extend(
                c.prf
                    .iter()
                    .map(|x| Transform::new(TransformId::Prf(x.id()))),
            );
            if with_dh {
                t.extend(c.dh.iter().map(|x| Transform::new(TransformId::Dh(x.id()))));
            }
            t.extend(c.esn.iter().map(|x| Transform::new(TransformId::Esn(*x))));
            Proposal {
                number,
                protocol: c.protocol.id(),
                spi: spi.to_vec(),
                transforms: t,
            }
        })
        .collect();
    Sa { proposals }
}

/// The PFS group for rekeying a child made in IKE_AUTH, where we were the
/// responder: the first group of our ESP proposals that the peer listed
/// in the proposal we chose; `None` if it listed none.
fn pfs_hint(configs: &[ProposalConfig], peer: &Sa, number: u8) -> Option<DhGroup> {
    let theirs: Vec<DhId> = peer
        .proposals
        .iter()
        .filter(|p| p.number == number)
        .flat_map(|p| &p.transforms)
        .filter_map(|t| match t.id {
            TransformId::Dh(id) => Some(id),
            _ => None,
        })
        .collect();
    configs
        .iter()
        .flat_map(|c| c.dh.iter().copied())
        .find(|g| theirs.contains(&g.id()))
}

/// The ESP proposals consistent with the KE payload we send: those with
/// the group when there is one, those without groups when there is none
/// (§1.3.1), so the peer cannot pick a proposal our KE contradicts.
fn pfs_proposals(configs: &[ProposalConfig], pfs: Option<DhGroup>) -> Vec<ProposalConfig> {
    let fits: Vec<ProposalConfig> = configs
        .iter()
        .filter(|p| match pfs {
            Some(g) => p.dh.contains(&g),
            None => p.dh.is_empty(),
        })
        .cloned()
        .collect();
    if fits.is_empty() {
        configs.to_vec()
    } else {
        fits
    }
}

/// Checks that the responder's SA payload holds exactly one proposal that
/// our configuration accepts (§2.7) and returns it.
fn check_chosen(configs: &[ProposalConfig], sa: &Sa, ke: KeMode) -> Option<Selected> {
    if sa.proposals.len() != 1 {
        return None;
    }
    select(configs, sa, ke, SelectOptions::default()).ok()
}

fn integ_alg(i: Option<Integ>) -> IntegAlg {
    match i {
        None => IntegAlg::None,
        Some(Integ::HmacSha1_96) => IntegAlg::HmacSha1_96,
        Some(Integ::HmacSha256_128) => IntegAlg::HmacSha256_128,
        Some(Integ::HmacSha384_192) => IntegAlg::HmacSha384_192,
        Some(Integ::HmacSha512_256) => IntegAlg::HmacSha512_256,
    }
}

fn spi32(spi: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(spi.try_into().ok()?))
}

fn spi64(spi: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(spi.try_into().ok()?))
}

impl IkeSa {
    /// A new SA with nothing negotiated.
    pub fn new(
        id: IkeSaId,
        initiator: bool,
        spi_i: u64,
        remote: SocketAddrV4,
        local_port: u16,
        state: State,
    ) -> IkeSa {
        IkeSa {
            id,
            initiator,
            spi_i,
            spi_r: 0,
            local_port,
            remote,
            nat_local: false,
            nat_remote: false,
            peer: None,
            remote_id: None,
            state,
            crypto: None,
            next_send_id: 0,
            next_recv_id: 0,
            cached: None,
            pending: None,
            queue: VecDeque::new(),
            children: BTreeMap::new(),
            rekey_at: None,
            delete_at: None,
            dpd_at: None,
            remove: None,
            init_key: None,
        }
    }

    /// Our SPI: the one incoming messages are looked up by.
    pub fn local_spi(&self) -> u64 {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    fn local_addr(&self, ctx: &Ctx<'_>) -> SocketAddrV4 {
        SocketAddrV4::new(ctx.local_ip, self.local_port)
    }

    fn header(&self, exchange: ExchangeType, response: bool, message_id: u32) -> Header {
        let mut flags = 0;
        if self.initiator {
            flags |= Flags::INITIATOR;
        }
        if response {
            flags |= Flags::RESPONSE;
        }
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            major_version: 2,
            minor_version: 0,
            exchange_type: exchange,
            flags: Flags(flags),
            message_id,
        }
    }

    /// Removes the SA when the current call returns.
    fn finish(&mut self, reason: Option<DeleteReason>) {
        self.state = State::Dead;
        self.pending = None;
        self.queue.clear();
        self.remove = Some(reason);
    }

    fn transmit(&self, ctx: &mut Ctx<'_>, to: SocketAddrV4, local_port: u16, ike: &[u8]) {
        ctx.out.transmits.push_back(Transmit {
            remote: to,
            local_port,
            payload: udp_payload(local_port, ike),
        });
    }

    fn trace(&self, ctx: &mut Ctx<'_>, dir: Direction, remote: SocketAddrV4, summary: String) {
        let (at, local) = (ctx.now, self.local_addr(ctx));
        ctx.out.trace(|| TraceRecord {
            at,
            direction: dir,
            local,
            remote,
            summary,
        });
    }

    /// Encrypts and sends a request; it becomes the pending one.
    fn send_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        exchange: ExchangeType,
        payloads: &[Payload],
        what: Request,
    ) {
        let msg_id = self.next_send_id;
        let header = self.header(exchange, false, msg_id);
        let Some(crypto) = &self.crypto else {
            return;
        };
        let Ok(bytes) = crypto.send.seal(&header, payloads, &mut ctx.rng) else {
            return;
        };
        self.trace(
            ctx,
            Direction::Sent,
            self.remote,
            describe(&header, payloads),
        );
        self.transmit(ctx, self.remote, self.local_port, &bytes);
        self.pending = Some(Pending {
            msg_id,
            datagram: bytes,
            tries: 0,
            retransmit_at: ctx.now + ctx.config.retransmit_timeout,
            what,
        });
    }

    /// Encrypts and sends a response to the request `msg_id` from `to`,
    /// and keeps it for retransmissions.
    fn send_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: SocketAddrV4,
        local_port: u16,
        exchange: ExchangeType,
        msg_id: u32,
        payloads: &[Payload],
    ) {
        let header = self.header(exchange, true, msg_id);
        let Some(crypto) = &self.crypto else {
            return;
        };
        let Ok(bytes) = crypto.send.seal(&header, payloads, &mut ctx.rng) else {
            return;
        };
        self.trace(ctx, Direction::Sent, to, describe(&header, payloads));
        self.transmit(ctx, to, local_port, &bytes);
        self.cached = Some((msg_id, bytes));
    }

    // ---------------------------------------------------------------
    // Dispatch
    // ---------------------------------------------------------------

    /// Handles a message for this SA (not a responder's IKE_SA_INIT).
    pub fn on_message(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        local_port: u16,
        raw: &[u8],
        header: Header,
    ) -> Result<(), DropReason> {
        // The I flag names the original initiator (§3.1): it must be the peer.
        if header.flags.initiator() == self.initiator {
            return Err(DropReason::Unexpected("I flag"));
        }
        let r = if header.flags.response() {
            self.on_response(ctx, from, raw, header)
        } else {
            self.on_request(ctx, from, local_port, raw, header)
        };
        self.kick(ctx);
        r
    }

    fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        raw: &[u8],
        header: Header,
    ) -> Result<(), DropReason> {
        match &self.pending {
            Some(p) if p.msg_id == header.message_id => {}
            _ => {
                return Err(DropReason::MessageId {
                    got: header.message_id,
                })
            }
        }
        if header.exchange_type == ExchangeType::IkeSaInit {
            let msg = IkeMessage::parse(raw)?;
            self.trace(
                ctx,
                Direction::Received,
                from,
                describe(&header, &msg.payloads),
            );
            return self.on_init_response(ctx, raw, msg);
        }
        let crypto = self.crypto.as_ref().ok_or(DropReason::Unexpected("SK"))?;
        let payloads = match crypto.recv.open(raw) {
            Ok((_, p)) => p,
            // An authentic response that does not parse: treat as an
            // empty one (§2.21.1 lets us give up on the exchange).
            Err(OpenError::Inner(_)) => Vec::new(),
            Err(e) => return Err(DropReason::Sk(e)),
        };
        self.trace(ctx, Direction::Received, from, describe(&header, &payloads));
        self.heard(ctx, from);
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        self.next_send_id = self.next_send_id.wrapping_add(1);
        match pending.what {
            Request::Init => {}
            Request::Auth => self.on_auth_response(ctx, &payloads),
            Request::CreateChild(req) => self.on_child_response(ctx, *req, &payloads),
            Request::RekeyIke(req) => self.on_ike_rekey_response(ctx, *req, &payloads),
            Request::DeleteChildren(ids) => {
                for id in ids {
                    self.remove_child(ctx, id);
                }
            }
            Request::DeleteIke => {
                let reason = match self.state {
                    State::Rekeyed => None,
                    _ => Some(DeleteReason::Local),
                };
                self.finish(reason);
            }
            Request::Dpd => {}
        }
        Ok(())
    }

    /// Notes an authenticated message: liveness, and the peer's address
    /// when a NAT may have changed it (§2.23).
    fn heard(&mut self, ctx: &mut Ctx<'_>, from: SocketAddrV4) {
        if let Some(i) = ctx.config.dpd_interval {
            self.dpd_at = Some(ctx.now + i);
        }
        if (self.nat_local || self.nat_remote) && from != self.remote {
            self.remote = from;
        }
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        local_port: u16,
        raw: &[u8],
        header: Header,
    ) -> Result<(), DropReason> {
        let id = header.message_id;
        if let Some((cached_id, bytes)) = &self.cached {
            if *cached_id == id && id.wrapping_add(1) == self.next_recv_id {
                // A retransmitted request: the same response again (§2.1).
                let bytes = bytes.clone();
                self.trace(
                    ctx,
                    Direction::Sent,
                    from,
                    format!("retransmit response {id}"),
                );
                self.transmit(ctx, from, local_port, &bytes);
                return Ok(());
            }
        }
        if id != self.next_recv_id {
            return Err(DropReason::MessageId { got: id });
        }
        let crypto = self.crypto.as_ref().ok_or(DropReason::Unexpected("SK"))?;
        let exchange = header.exchange_type;
        let payloads = match crypto.recv.open(raw) {
            Ok((_, p)) => p,
            Err(OpenError::Inner(_)) => {
                // Authentic but malformed inside: INVALID_SYNTAX (§2.21.2).
                self.trace(
                    ctx,
                    Direction::Received,
                    from,
                    "malformed inner payloads".into(),
                );
                self.next_recv_id = id.wrapping_add(1);
                let resp = [notify(NotifyType::InvalidSyntax)];
                self.send_response(ctx, from, local_port, exchange, id, &resp);
                if matches!(self.state, State::ExpectAuth(_)) {
                    self.finish(None);
                }
                return Ok(());
            }
            Err(e) => return Err(DropReason::Sk(e)),
        };
        if local_port != self.local_port
            && (matches!(self.state, State::ExpectAuth(_)) || self.nat_local || self.nat_remote)
        {
            // The initiator moved to 4500 after NAT detection (§2.23).
            self.local_port = local_port;
        }
        self.trace(ctx, Direction::Received, from, describe(&header, &payloads));
        self.heard(ctx, from);
        self.next_recv_id = id.wrapping_add(1);
        let response = if let Some(t) = unknown_critical(&payloads) {
            // §2.5: reject the whole message.
            if matches!(self.state, State::ExpectAuth(_)) {
                self.finish(None);
            }
            vec![Payload::Notify(Notify::new(
                NotifyType::UnsupportedCriticalPayload,
                vec![t],
            ))]
        } else {
            match (exchange, &self.state) {
                (ExchangeType::IkeAuth, State::ExpectAuth(_)) => {
                    self.on_auth_request(ctx, from, &payloads)
                }
                (ExchangeType::CreateChildSa, State::Established) => {
                    self.on_create_child_request(ctx, &payloads)
                }
                (ExchangeType::CreateChildSa, State::Rekeyed) => {
                    vec![notify(NotifyType::TemporaryFailure)]
                }
                (ExchangeType::Informational, State::Established | State::Rekeyed) => {
                    self.on_informational_request(ctx, from, &payloads)
                }
                _ => {
                    self.next_recv_id = id;
                    return Err(DropReason::Unexpected("exchange in this state"));
                }
            }
        };
        self.send_response(ctx, from, local_port, exchange, id, &response);
        Ok(())
    }

    // ---------------------------------------------------------------
    // IKE_SA_INIT and IKE_AUTH, initiator
    // ---------------------------------------------------------------

    /// Builds and sends (again) our IKE_SA_INIT request (§1.2).
    pub fn send_init_request(&mut self, ctx: &mut Ctx<'_>, mut init: Box<ExpectInitResponse>) {
        let mut payloads = Vec::new();
        if let Some(c) = &init.cookie {
            // §2.6: the COOKIE notify comes first.
            payloads.push(Payload::Notify(Notify::new(NotifyType::Cookie, c.clone())));
        }
        payloads.push(Payload::Sa(offer(&ctx.config.ike_proposals, &[], true)));
        payloads.push(Payload::Ke(KeyExchange {
            group: init.dh.group().id(),
            data: init.dh.public_value().to_vec(),
        }));
        payloads.push(Payload::Nonce(init.ni.clone()));
        let local = self.local_addr(ctx);
        let src = if ctx.config.force_encap {
            // A hash no address matches: the peer sees us behind a NAT.
            nat_detection_hash(self.spi_i, 0, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        } else {
            nat_detection_hash(self.spi_i, 0, local)
        };
        payloads.push(Payload::Notify(Notify::new(
            NotifyType::NatDetectionSourceIp,
            src.to_vec(),
        )));
        payloads.push(Payload::Notify(Notify::new(
            NotifyType::NatDetectionDestinationIp,
            nat_detection_hash(self.spi_i, 0, self.remote).to_vec(),
        )));
        let header = self.header(ExchangeType::IkeSaInit, false, 0);
        let msg = IkeMessage { header, payloads };
        let Ok(bytes) = msg.to_bytes() else {
            self.finish(Some(DeleteReason::ProtocolError));
            return;
        };
        self.trace(
            ctx,
            Direction::Sent,
            self.remote,
            describe(&header, &msg.payloads),
        );
        self.transmit(ctx, self.remote, self.local_port, &bytes);
        init.request = bytes.clone();
        self.pending = Some(Pending {
            msg_id: 0,
            datagram: bytes,
            tries: 0,
            retransmit_at: ctx.now + ctx.config.retransmit_timeout,
            what: Request::Init,
        });
        self.state = State::ExpectInitResponse(init);
    }

    fn on_init_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        raw: &[u8],
        msg: IkeMessage,
    ) -> Result<(), DropReason> {
        let State::ExpectInitResponse(mut init) = std::mem::replace(&mut self.state, State::Dead)
        else {
            return Err(DropReason::Unexpected("IKE_SA_INIT response"));
        };
        let p = &msg.payloads;
        if let Some(c) = find_notify(p, NotifyType::Cookie) {
            if c.data.is_empty() || c.data.len() > 64 {
                self.state = State::ExpectInitResponse(init);
                return Err(DropReason::Unexpected("COOKIE length"));
            }
            init.cookie = Some(c.data.clone());
            self.send_init_request(ctx, init);
            return Ok(());
        }
        if let Some(n) = first_error(p) {
            if let Some(g) = n.requested_group() {
                let ours: Vec<DhGroup> = ctx
                    .config
                    .ike_proposals
                    .iter()
                    .flat_map(|c| c.dh.iter().copied())
                    .collect();
                match DhGroup::from_id(g) {
                    Some(g) if ours.contains(&g) && g != init.dh.group() => {
                        init.dh = ctx.dh(g);
                        self.send_init_request(ctx, init);
                        return Ok(());
                    }
                    _ => {}
                }
            }
            let t = n.notify_type;
            self.finish(Some(DeleteReason::Refused(t)));
            return Ok(());
        }
        let fail = |sa: &mut IkeSa| {
            sa.finish(Some(DeleteReason::ProtocolError));
            Ok(())
        };
        let (Some(sa), Some(ke), Some(nr)) = (find_sa(p), find_ke(p), find_nonce(p)) else {
            return fail(self);
        };
        let spi_r = msg.header.spi_r;
        let Some(chosen) = check_chosen(&ctx.config.ike_proposals, sa, KeMode::Offered(ke.group))
        else {
            return fail(self);
        };
        let (Some(suite), true, true) = (
            chosen.ike_suite(),
            ke.group == init.dh.group().id(),
            spi_r != 0,
        ) else {
            return fail(self);
        };
        let Ok(g_ir) = init.dh.shared_secret(&ke.data) else {
            return fail(self);
        };
        let seed = skeyseed(suite.prf, &init.ni, nr, &g_ir);
        let Ok(keys) = ike_keys(suite, &seed, &init.ni, nr, self.spi_i, spi_r) else {
            return fail(self);
        };
        self.spi_r = spi_r;
        self.crypto = Some(IkeCrypto::new(suite, init.dh.group(), keys, true));
        // NAT detection (§2.23).
        let local = self.local_addr(ctx);
        let srcs: Vec<&Notify> = p
            .iter()
            .filter_map(|x| match x {
                Payload::Notify(n) if n.notify_type == NotifyType::NatDetectionSourceIp => Some(n),
                _ => None,
            })
            .collect();
        if !srcs.is_empty() {
            let h = nat_detection_hash(self.spi_i, spi_r, self.remote);
            self.nat_remote = !srcs.iter().any(|n| n.data == h);
        }
        if let Some(d) = find_notify(p, NotifyType::NatDetectionDestinationIp) {
            self.nat_local = d.data != nat_detection_hash(self.spi_i, spi_r, local);
        }
        if ctx.config.force_encap && !srcs.is_empty() {
            self.nat_local = true;
        }
        if self.nat_local || self.nat_remote {
            self.local_port = NATT_PORT;
            self.remote.set_port(NATT_PORT);
        }
        self.pending = None;
        self.next_send_id = 1;
        self.send_auth_request(ctx, *init, raw.to_vec(), nr.clone());
        Ok(())
    }

    fn send_auth_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        init: ExpectInitResponse,
        response: Vec<u8>,
        nr: Vec<u8>,
    ) {
        let (Some(crypto), Some(peer)) = (&self.crypto, &self.peer) else {
            self.finish(Some(DeleteReason::ProtocolError));
            return;
        };
        let prf = crypto.suite.prf;
        let idi = ctx.config.local_id.to_wire();
        let octets = signed_octets(
            prf,
            &init.request,
            &nr,
            &crypto.keys.sk_pi,
            &idi.rest_of_payload(),
        );
        let auth = psk_auth(prf, &peer.psk, &octets);
        let spi_in = ctx.child_spi();
        let local_ts = peer.local_ts.resolve(ctx.local_ip);
        let remote_ts = peer.remote_ts.resolve(*self.remote.ip());
        let payloads = vec![
            Payload::IdI(idi),
            Payload::IdR(peer.id.to_wire()),
            Payload::Auth(Auth {
                method: AuthMethod::SharedKeyMic,
                data: auth,
            }),
            Payload::Sa(offer(
                &ctx.config.esp_proposals,
                &spi_in.to_be_bytes(),
                false,
            )),
            Payload::TsI(local_ts.clone()),
            Payload::TsR(remote_ts.clone()),
        ];
        self.send_request(ctx, ExchangeType::IkeAuth, &payloads, Request::Auth);
        self.state = State::ExpectAuthResponse(Box::new(ExpectAuthResponse {
            response,
            ni: init.ni,
            nr,
            spi_in,
            local_ts,
            remote_ts,
        }));
    }

    fn on_auth_response(&mut self, ctx: &mut Ctx<'_>, p: &[Payload]) {
        let State::ExpectAuthResponse(st) = std::mem::replace(&mut self.state, State::Dead) else {
            return;
        };
        let remote = self.remote;
        let peer_id = self.peer.as_ref().map(|x| x.id.clone());
        if find_notify(p, NotifyType::AuthenticationFailed).is_some() {
            ctx.out.child_spis.remove(&st.spi_in);
            ctx.out.events.push_back(IkeEvent::AuthFailed {
                remote,
                id: peer_id,
                local: false,
            });
            self.finish(Some(DeleteReason::AuthFailed));
            return;
        }
        let (Some(crypto), Some(peer)) = (&self.crypto, &self.peer) else {
            return;
        };
        let prf = crypto.suite.prf;
        let idr = p.iter().find_map(|x| match x {
            Payload::IdR(id) => Some(id),
            _ => None,
        });
        let auth = p.iter().find_map(|x| match x {
            Payload::Auth(a) => Some(a),
            _ => None,
        });
        let ok = match (idr, auth) {
            (Some(idr), Some(auth)) => {
                let octets = signed_octets(
                    prf,
                    &st.response,
                    &st.ni,
                    &crypto.keys.sk_pr,
                    &idr.rest_of_payload(),
                );
                peer.id.matches(idr)
                    && auth.method == AuthMethod::SharedKeyMic
                    && verify_psk_auth(prf, &peer.psk, &octets, &auth.data)
            }
            _ => false,
        };
        if !ok {
            // §2.21.2: tell the responder in an INFORMATIONAL, then go.
            let payloads = [notify(NotifyType::AuthenticationFailed)];
            self.send_request(ctx, ExchangeType::Informational, &payloads, Request::Dpd);
            ctx.out.child_spis.remove(&st.spi_in);
            ctx.out.events.push_back(IkeEvent::AuthFailed {
                remote,
                id: peer_id,
                local: true,
            });
            self.finish(Some(DeleteReason::AuthFailed));
            return;
        }
        self.remote_id = Some(peer.id.clone());
        let sk_d = crypto.keys.sk_d.clone();
        self.establish(ctx, Role::Initiator);
        if let Some(n) = first_error(p) {
            ctx.out.child_spis.remove(&st.spi_in);
            ctx.out.events.push_back(IkeEvent::ChildSaFailed {
                ike_sa: self.id,
                notify: n.notify_type,
            });
            return;
        }
        let child = find_sa(p)
            .and_then(|sa| check_chosen(&ctx.config.esp_proposals, sa, KeMode::Ignore))
            .zip(find_ts(p));
        let Some((chosen, (tsi, tsr))) = child else {
            ctx.out.child_spis.remove(&st.spi_in);
            ctx.out.events.push_back(IkeEvent::ChildSaFailed {
                ike_sa: self.id,
                notify: NotifyType::NoProposalChosen,
            });
            return;
        };
        let spi_out = spi32(&chosen.spi);
        if !ts::all_within(tsi, &st.local_ts) || !ts::all_within(tsr, &st.remote_ts) {
            ctx.out.child_spis.remove(&st.spi_in);
            ctx.out.events.push_back(IkeEvent::ChildSaFailed {
                ike_sa: self.id,
                notify: NotifyType::TsUnacceptable,
            });
            return;
        }
        let Some(spi_out) = spi_out else {
            return;
        };
        let Ok(keys) = child_keys(prf, &sk_d, None, &st.ni, &st.nr, chosen.child_suite()) else {
            return;
        };
        let (tsi, tsr) = (tsi.clone(), tsr.clone());
        if let Some(info) = self.install_child(
            ctx,
            Role::Initiator,
            chosen,
            st.spi_in,
            spi_out,
            &keys,
            tsi,
            tsr,
        ) {
            // Our rekeys use the first PFS group we configured, if any.
            let pfs = ctx
                .config
                .esp_proposals
                .iter()
                .find_map(|p| p.dh.first().copied());
            if let Some(c) = self.children.get_mut(&info.child) {
                c.pfs = pfs;
            }
            ctx.out.events.push_back(IkeEvent::ChildSaEstablished(info));
        }
    }

    /// The IKE SA is up: event, timers.
    fn establish(&mut self, ctx: &mut Ctx<'_>, role: Role) {
        self.state = State::Established;
        self.delete_at = None;
        self.rekey_at = ctx.config.ike_lifetime.rekey_time.map(|t| {
            let j = ctx.jitter(ctx.config.rekey_jitter.min(t));
            ctx.now + t - j
        });
        if let Some(i) = ctx.config.dpd_interval {
            self.dpd_at = Some(ctx.now + i);
        }
        ctx.out.events.push_back(IkeEvent::IkeSaEstablished {
            ike_sa: self.id,
            role,
            remote: self.remote,
            remote_id: self
                .remote_id
                .clone()
                .unwrap_or(Identity::Ipv4(*self.remote.ip())),
            spi_i: self.spi_i,
            spi_r: self.spi_r,
        });
    }

    // ---------------------------------------------------------------
    // IKE_AUTH, responder
    // ---------------------------------------------------------------

    fn on_auth_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        p: &[Payload],
    ) -> Response {
        let State::ExpectAuth(st) = std::mem::replace(&mut self.state, State::Dead) else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let idi = p.iter().find_map(|x| match x {
            Payload::IdI(id) => Some(id),
            _ => None,
        });
        let idr = p.iter().find_map(|x| match x {
            Payload::IdR(id) => Some(id),
            _ => None,
        });
        let auth = p.iter().find_map(|x| match x {
            Payload::Auth(a) => Some(a),
            _ => None,
        });
        let Some(crypto) = &self.crypto else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let prf = crypto.suite.prf;
        let peer = idi.and_then(|id| ctx.config.peer_by_id(id)).cloned();
        let ok = match (idi, auth, &peer) {
            (Some(idi), Some(auth), Some(peer)) => {
                let octets = signed_octets(
                    prf,
                    &st.request,
                    &st.nr,
                    &crypto.keys.sk_pi,
                    &idi.rest_of_payload(),
                );
                auth.method == AuthMethod::SharedKeyMic
                    && idr.is_none_or(|idr| ctx.config.local_id.matches(idr))
                    && verify_psk_auth(prf, &peer.psk, &octets, &auth.data)
            }
            _ => false,
        };
        let Some(peer) = peer.filter(|_| ok) else {
            ctx.out.events.push_back(IkeEvent::AuthFailed {
                remote: from,
                id: idi.and_then(Identity::from_wire),
                local: true,
            });
            self.finish(None);
            return vec![notify(NotifyType::AuthenticationFailed)];
        };
        let our_id = ctx.config.local_id.to_wire();
        let octets = signed_octets(
            prf,
            &st.response,
            &st.ni,
            &crypto.keys.sk_pr,
            &our_id.rest_of_payload(),
        );
        let our_auth = psk_auth(prf, &peer.psk, &octets);
        self.remote_id = Some(peer.id.clone());
        self.peer = Some(peer);
        self.establish(ctx, Role::Responder);
        let mut response = vec![
            Payload::IdR(our_id),
            Payload::Auth(Auth {
                method: AuthMethod::SharedKeyMic,
                data: our_auth,
            }),
        ];
        if find_sa(p).is_some() {
            response.extend(self.respond_child(ctx, p, None, &st.ni, &st.nr, None));
        }
        response
    }

    /// Negotiates a child SA as responder (IKE_AUTH or CREATE_CHILD_SA):
    /// selects the proposal, narrows the selectors, derives the keys and
    /// returns the response payloads (SA, [Nr, KEr,] TSi, TSr) or an error
    /// notify. `ke` is `None` in IKE_AUTH; `Some(None)` in CREATE_CHILD_SA
    /// without a KE payload.
    fn respond_child(
        &mut self,
        ctx: &mut Ctx<'_>,
        p: &[Payload],
        ke: Option<Option<&KeyExchange>>,
        ni: &[u8],
        nr: &[u8],
        rekey: Option<ChildSaId>,
    ) -> Response {
        let (Some(sa), Some((tsi, tsr))) = (find_sa(p), find_ts(p)) else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let mode = match ke {
            None => KeMode::Ignore,
            Some(None) => KeMode::NoKe,
            Some(Some(k)) => KeMode::Offered(k.group),
        };
        let chosen = match select(
            &ctx.config.esp_proposals,
            sa,
            mode,
            SelectOptions::default(),
        ) {
            Ok(c) => c,
            Err(SelectError::NoProposalChosen) => {
                self.child_failed(ctx, NotifyType::NoProposalChosen);
                return vec![notify(NotifyType::NoProposalChosen)];
            }
            Err(SelectError::InvalidKe { wanted }) => {
                return vec![Payload::Notify(Notify::invalid_ke(wanted.id()))];
            }
        };
        let Some(spi_out) = spi32(&chosen.spi) else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let Some(peer) = self.peer.clone() else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let narrowed_i = ts::narrow(tsi, &peer.remote_ts.resolve(*self.remote.ip()));
        let narrowed_r = ts::narrow(tsr, &peer.local_ts.resolve(ctx.local_ip));
        if narrowed_i.is_empty() || narrowed_r.is_empty() {
            self.child_failed(ctx, NotifyType::TsUnacceptable);
            return vec![notify(NotifyType::TsUnacceptable)];
        }
        // PFS: our KE and g^ir (new) (§1.3.1, §2.17).
        let mut ke_out = None;
        let mut g_ir = None;
        if let (Some(Some(k)), Some(group)) = (ke, chosen.dh) {
            let dh = ctx.dh(group);
            let Ok(s) = dh.shared_secret(&k.data) else {
                return vec![notify(NotifyType::InvalidSyntax)];
            };
            g_ir = Some(s);
            ke_out = Some(KeyExchange {
                group: group.id(),
                data: dh.public_value().to_vec(),
            });
        }
        let Some(crypto) = &self.crypto else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let Ok(keys) = child_keys(
            crypto.suite.prf,
            &crypto.keys.sk_d,
            g_ir.as_ref().map(|g| g.as_slice()),
            ni,
            nr,
            chosen.child_suite(),
        ) else {
            return vec![notify(NotifyType::NoProposalChosen)];
        };
        let spi_in = ctx.child_spi();
        let proposal = chosen.to_proposal(spi_in.to_be_bytes().to_vec());
        let Some(info) = self.install_child(
            ctx,
            Role::Responder,
            chosen,
            spi_in,
            spi_out,
            &keys,
            narrowed_r.clone(),
            narrowed_i.clone(),
        ) else {
            ctx.out.child_spis.remove(&spi_in);
            return vec![notify(NotifyType::NoProposalChosen)];
        };
        if ke.is_none() {
            // IKE_AUTH: no KE, but the peer's proposal tells which PFS
            // groups it wants on rekeys (strongSwan lists them there).
            let hint = pfs_hint(&ctx.config.esp_proposals, sa, proposal.number);
            if let Some(c) = self.children.get_mut(&info.child) {
                c.pfs = hint;
            }
        }
        match rekey.and_then(|old| self.children.get_mut(&old).map(|c| (old, c))) {
            Some((old, c)) => {
                c.state = ChildState::Rekeyed;
                let old_spis = c.info.spis();
                ctx.out.events.push_back(IkeEvent::ChildSaRekeyed {
                    old,
                    old_spis,
                    new: info,
                });
            }
            None => ctx.out.events.push_back(IkeEvent::ChildSaEstablished(info)),
        }
        let mut out = vec![Payload::Sa(Sa {
            proposals: vec![proposal],
        })];
        if ke.is_some() {
            out.push(Payload::Nonce(nr.to_vec()));
        }
        out.extend(ke_out.map(Payload::Ke));
        out.push(Payload::TsI(narrowed_i));
        out.push(Payload::TsR(narrowed_r));
        out
    }

    fn child_failed(&mut self, ctx: &mut Ctx<'_>, notify: NotifyType) {
        ctx.out.events.push_back(IkeEvent::ChildSaFailed {
            ike_sa: self.id,
            notify,
        });
    }

    /// Turns negotiated keys into the engine's SA pair and records the
    /// child. `role` is ours in the exchange that created it (§2.17: the
    /// first keys protect initiator-to-responder traffic).
    #[allow(clippy::too_many_arguments)]
    fn install_child(
        &mut self,
        ctx: &mut Ctx<'_>,
        role: Role,
        chosen: Selected,
        spi_in: u32,
        spi_out: u32,
        keys: &ChildKeys,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
    ) -> Option<ChildSaInfo> {
        let enc = enc_alg(chosen.encr)?;
        let integ = integ_alg(chosen.integ);
        let (out_e, out_a, in_e, in_a) = match role {
            Role::Initiator => (&keys.encr_i, &keys.integ_i, &keys.encr_r, &keys.integ_r),
            Role::Responder => (&keys.encr_r, &keys.integ_r, &keys.encr_i, &keys.integ_i),
        };
        let l = ctx.config.child_lifetime;
        let lifetimes = Lifetimes {
            soft: Lifetime {
                seconds: l.rekey_time.map(|d| d.as_secs()),
                bytes: l.rekey_bytes,
                packets: l.rekey_packets,
            },
            hard: Lifetime {
                seconds: l.life_time.map(|d| d.as_secs()),
                bytes: l.life_bytes,
                packets: l.life_packets,
            },
        };
        let local = core::net::IpAddr::V4(ctx.local_ip);
        let remote = core::net::IpAddr::V4(*self.remote.ip());
        let encap = self.nat_local || self.nat_remote;
        let udp_out = encap.then_some(UdpEncap {
            src_port: self.local_port,
            dst_port: self.remote.port(),
        });
        let udp_in = encap.then_some(UdpEncap {
            src_port: self.remote.port(),
            dst_port: self.local_port,
        });
        let sa = |spi: u32, src, dst, e: &Zeroizing<Vec<u8>>, a: &Zeroizing<Vec<u8>>, udp, sel| {
            SaConfig {
                spi: Spi(spi),
                protocol: SaProtocol::Esp,
                mode: Mode::Tunnel,
                src,
                dst,
                enc,
                enc_key: Key(e.to_vec()),
                integ,
                integ_key: Key(a.to_vec()),
                esn: false,
                replay_window: ctx.config.replay_window,
                lifetimes,
                udp_encap: udp,
                selector: sel,
            }
        };
        let sel_in = ts::to_sa_selector(&remote_ts, &local_ts)
            .unwrap_or_else(|| SaSelector::hosts(remote, local));
        let sel_out = ts::to_sa_selector(&local_ts, &remote_ts)
            .unwrap_or_else(|| SaSelector::hosts(local, remote));
        let inbound = sa(spi_in, remote, local, in_e, in_a, udp_in, sel_in);
        let outbound = sa(spi_out, local, remote, out_e, out_a, udp_out, sel_out);
        let id = ChildSaId(ctx.out.next_child);
        ctx.out.next_child = ctx.out.next_child.wrapping_add(1);
        let info = ChildSaInfo {
            ike_sa: self.id,
            child: id,
            role,
            inbound,
            outbound,
            local_ts,
            remote_ts,
            udp_encap: udp_out,
        };
        let rekey_at = l.rekey_time.map(|t| {
            let j = ctx.jitter(ctx.config.rekey_jitter.min(t));
            ctx.now + t - j
        });
        self.children.insert(
            id,
            Child {
                info: info.clone(),
                pfs: chosen.dh,
                state: ChildState::Installed,
                rekey_at,
                expire_at: l.life_time.map(|t| ctx.now + t),
                bytes: 0,
                packets: 0,
            },
        );
        Some(info)
    }

    /// Forgets a child SA and reports it.
    pub fn remove_child(&mut self, ctx: &mut Ctx<'_>, id: ChildSaId) {
        if let Some(c) = self.children.remove(&id) {
            ctx.out.child_spis.remove(&c.info.inbound.spi.0);
            ctx.out.events.push_back(IkeEvent::ChildSaDeleted {
                ike_sa: self.id,
                child: id,
                spis: c.info.spis(),
            });
        }
    }

    // ---------------------------------------------------------------
    // CREATE_CHILD_SA, responder (§1.3)
    // ---------------------------------------------------------------

    fn on_create_child_request(&mut self, ctx: &mut Ctx<'_>, p: &[Payload]) -> Response {
        let (Some(sa), Some(ni)) = (find_sa(p), find_nonce(p)) else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let ni = ni.clone();
        let ke = find_ke(p);
        if sa.proposals.first().map(|x| x.protocol) == Some(ProtocolId::Ike) {
            return self.respond_ike_rekey(ctx, sa, &ni, ke);
        }
        let rekey = match find_notify(p, NotifyType::RekeySa) {
            Some(n) => {
                let Some(spi) = spi32(&n.spi) else {
                    return vec![notify(NotifyType::InvalidSyntax)];
                };
                // The SPI the requester receives on: our outbound (§1.3.3).
                let found = self
                    .children
                    .iter()
                    .find(|(_, c)| c.info.outbound.spi.0 == spi)
                    .map(|(id, c)| (*id, c.state));
                match found {
                    None => {
                        return vec![Payload::Notify(Notify {
                            protocol: ProtocolId::Esp,
                            spi: n.spi.clone(),
                            notify_type: NotifyType::ChildSaNotFound,
                            data: Vec::new(),
                        })]
                    }
                    Some((id, ChildState::Installed)) => Some(id),
                    // A collision with our own rekey or delete (§2.8.1,
                    // §2.25): let the peer retry later.
                    Some(_) => return vec![notify(NotifyType::TemporaryFailure)],
                }
            }
            None => None,
        };
        let nr = ctx.nonce();
        self.respond_child(ctx, p, Some(ke), &ni, &nr, rekey)
    }

    fn respond_ike_rekey(
        &mut self,
        ctx: &mut Ctx<'_>,
        sa: &Sa,
        ni: &[u8],
        ke: Option<&KeyExchange>,
    ) -> Response {
        if self.pending.is_some() {
            // A request of ours is in flight (perhaps our own rekey): the
            // peer retries later (§2.25).
            return vec![notify(NotifyType::TemporaryFailure)];
        }
        let Some(ke) = ke else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let chosen = match select(
            &ctx.config.ike_proposals,
            sa,
            KeMode::Offered(ke.group),
            SelectOptions::default(),
        ) {
            Ok(c) => c,
            Err(SelectError::NoProposalChosen) => {
                return vec![notify(NotifyType::NoProposalChosen)]
            }
            Err(SelectError::InvalidKe { wanted }) => {
                return vec![Payload::Notify(Notify::invalid_ke(wanted.id()))]
            }
        };
        let (Some(peer_spi), Some(suite), Some(group)) =
            (spi64(&chosen.spi), chosen.ike_suite(), chosen.dh)
        else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let dh = ctx.dh(group);
        let Ok(g_ir) = dh.shared_secret(&ke.data) else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let nr = ctx.nonce();
        let our_spi = ctx.ike_spi();
        let Some(new) = self.rekeyed(ctx, false, peer_spi, our_spi, suite, group, &g_ir, ni, &nr)
        else {
            ctx.out.ike_spis.remove(&our_spi);
            return vec![notify(NotifyType::NoProposalChosen)];
        };
        ctx.out.spawned.push(new);
        vec![
            Payload::Sa(Sa {
                proposals: vec![chosen.to_proposal(our_spi.to_be_bytes().to_vec())],
            }),
            Payload::Nonce(nr),
            Payload::Ke(KeyExchange {
                group: group.id(),
                data: dh.public_value().to_vec(),
            }),
        ]
    }

    /// The IKE SA that replaces this one (§2.18): keys from the old SK_d,
    /// children and pending work moved over, this one marked `Rekeyed`.
    #[allow(clippy::too_many_arguments)]
    fn rekeyed(
        &mut self,
        ctx: &mut Ctx<'_>,
        we_initiated: bool,
        spi_i: u64,
        spi_r: u64,
        suite: IkeSuite,
        group: DhGroup,
        g_ir: &[u8],
        ni: &[u8],
        nr: &[u8],
    ) -> Option<IkeSa> {
        let old = self.crypto.as_ref()?;
        let seed = skeyseed_rekey(old.suite.prf, &old.keys.sk_d, g_ir, ni, nr);
        let keys = ike_keys(suite, &seed, ni, nr, spi_i, spi_r).ok()?;
        let mut new = IkeSa::new(
            self.id,
            we_initiated,
            spi_i,
            self.remote,
            self.local_port,
            State::Established,
        );
        new.spi_r = spi_r;
        new.nat_local = self.nat_local;
        new.nat_remote = self.nat_remote;
        new.peer = self.peer.clone();
        new.remote_id = self.remote_id.clone();
        new.crypto = Some(IkeCrypto::new(suite, group, keys, we_initiated));
        new.children = std::mem::take(&mut self.children);
        for c in new.children.values_mut() {
            c.info.ike_sa = new.id;
        }
        new.queue = self
            .queue
            .drain(..)
            .filter(|t| *t != Task::RekeyIke && *t != Task::DeleteIke)
            .collect();
        new.rekey_at = ctx.config.ike_lifetime.rekey_time.map(|t| {
            let j = ctx.jitter(ctx.config.rekey_jitter.min(t));
            ctx.now + t - j
        });
        new.dpd_at = ctx.config.dpd_interval.map(|i| ctx.now + i);
        self.state = State::Rekeyed;
        self.rekey_at = None;
        self.delete_at = Some(ctx.now + REKEYED_LINGER);
        ctx.out.events.push_back(IkeEvent::IkeSaRekeyed {
            ike_sa: self.id,
            spi_i,
            spi_r,
        });
        Some(new)
    }

    // ---------------------------------------------------------------
    // INFORMATIONAL, responder (§1.4)
    // ---------------------------------------------------------------

    fn on_informational_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        p: &[Payload],
    ) -> Response {
        let mut response = Vec::new();
        if find_notify(p, NotifyType::AuthenticationFailed).is_some() {
            // The initiator rejected our AUTH (§2.21.2).
            ctx.out.events.push_back(IkeEvent::AuthFailed {
                remote: from,
                id: self.remote_id.clone(),
                local: false,
            });
            self.finish(Some(DeleteReason::AuthFailed));
            return response;
        }
        let mut ours = Vec::new();
        for d in p.iter().filter_map(|x| match x {
            Payload::Delete(d) => Some(d),
            _ => None,
        }) {
            match d.protocol {
                ProtocolId::Ike => {
                    let reason = match self.state {
                        State::Rekeyed => None,
                        _ => Some(DeleteReason::Peer),
                    };
                    let ids: Vec<ChildSaId> = self.children.keys().copied().collect();
                    for id in ids {
                        self.remove_child(ctx, id);
                    }
                    self.finish(reason);
                    return Vec::new();
                }
                ProtocolId::Esp => {
                    for spi in d.spis.iter().filter_map(|s| spi32(s)) {
                        let found = self
                            .children
                            .iter()
                            .find(|(_, c)| c.info.outbound.spi.0 == spi)
                            .map(|(id, c)| (*id, c.info.inbound.spi.0));
                        if let Some((id, spi_in)) = found {
                            ours.push(spi_in.to_be_bytes().to_vec());
                            self.remove_child(ctx, id);
                        }
                    }
                }
                _ => {}
            }
        }
        if !ours.is_empty() {
            response.push(Payload::Delete(Delete {
                protocol: ProtocolId::Esp,
                spi_size: 4,
                spis: ours,
            }));
        }
        response
    }

    // ---------------------------------------------------------------
    // Requests we start
    // ---------------------------------------------------------------

    /// Starts queued exchanges while the window is free.
    pub fn kick(&mut self, ctx: &mut Ctx<'_>) {
        while self.pending.is_none() && self.remove.is_none() {
            let allowed = match self.state {
                State::Established => true,
                State::Rekeyed => self.queue.front() == Some(&Task::DeleteIke),
                _ => false,
            };
            if !allowed {
                return;
            }
            let Some(task) = self.queue.pop_front() else {
                return;
            };
            match task {
                Task::RekeyChild(id) => self.start_child_rekey(ctx, id, None),
                Task::RekeyIke => self.start_ike_rekey(ctx, None),
                Task::DeleteChild(id) => {
                    let Some(c) = self.children.get_mut(&id) else {
                        continue;
                    };
                    c.state = ChildState::Deleting;
                    let spi = c.info.inbound.spi.0.to_be_bytes().to_vec();
                    let payloads = [Payload::Delete(Delete {
                        protocol: ProtocolId::Esp,
                        spi_size: 4,
                        spis: vec![spi],
                    })];
                    self.send_request(
                        ctx,
                        ExchangeType::Informational,
                        &payloads,
                        Request::DeleteChildren(vec![id]),
                    );
                }
                Task::DeleteIke => {
                    let payloads = [Payload::Delete(Delete {
                        protocol: ProtocolId::Ike,
                        spi_size: 0,
                        spis: vec![],
                    })];
                    self.send_request(
                        ctx,
                        ExchangeType::Informational,
                        &payloads,
                        Request::DeleteIke,
                    );
                }
                Task::Dpd => {
                    self.send_request(ctx, ExchangeType::Informational, &[], Request::Dpd);
                }
            }
        }
    }

    pub fn enqueue(&mut self, task: Task) {
        if !self.queue.contains(&task) {
            self.queue.push_back(task);
        }
    }

    /// Rekeys a child (§1.3.3), with PFS when our ESP proposals name a
    /// group; `group` overrides it after INVALID_KE_PAYLOAD.
    fn start_child_rekey(&mut self, ctx: &mut Ctx<'_>, id: ChildSaId, group: Option<DhGroup>) {
        let Some(c) = self.children.get_mut(&id) else {
            return;
        };
        if c.state != ChildState::Installed {
            return;
        }
        c.state = ChildState::Rekeying;
        let old_spi = c.info.inbound.spi.0;
        let (local_ts, remote_ts) = (c.info.local_ts.clone(), c.info.remote_ts.clone());
        // As strongSwan: the group the child was made or agreed with
        // (§1.3.1: KEi must be of a group we propose), else no PFS.
        let pfs = group.or(c.pfs);
        let spi_in = ctx.child_spi();
        let ni = ctx.nonce();
        let dh = pfs.map(|g| ctx.dh(g));
        let mut payloads = vec![
            Payload::Notify(Notify {
                protocol: ProtocolId::Esp,
                spi: old_spi.to_be_bytes().to_vec(),
                notify_type: NotifyType::RekeySa,
                data: Vec::new(),
            }),
            Payload::Sa(offer(
                &pfs_proposals(&ctx.config.esp_proposals, pfs),
                &spi_in.to_be_bytes(),
                true,
            )),
            Payload::Nonce(ni.clone()),
        ];
        if let Some(dh) = &dh {
            payloads.push(Payload::Ke(KeyExchange {
                group: dh.group().id(),
                data: dh.public_value().to_vec(),
            }));
        }
        payloads.push(Payload::TsI(local_ts.clone()));
        payloads.push(Payload::TsR(remote_ts.clone()));
        let req = ChildRequest {
            rekey: Some(id),
            spi_in,
            ni,
            dh,
            local_ts,
            remote_ts,
        };
        self.send_request(
            ctx,
            ExchangeType::CreateChildSa,
            &payloads,
            Request::CreateChild(Box::new(req)),
        );
    }

    fn on_child_response(&mut self, ctx: &mut Ctx<'_>, req: ChildRequest, p: &[Payload]) {
        let restore = |sa: &mut IkeSa, retry: Option<Duration>| {
            if let Some(c) = req.rekey.and_then(|id| sa.children.get_mut(&id)) {
                c.state = ChildState::Installed;
                c.rekey_at = retry;
            }
        };
        if let Some(n) = first_error(p) {
            ctx.out.child_spis.remove(&req.spi_in);
            let t = n.notify_type;
            match (t, n.requested_group().and_then(DhGroup::from_id)) {
                (NotifyType::InvalidKePayload, Some(g))
                    if req.dh.as_ref().is_some_and(|d| d.group() != g) =>
                {
                    restore(self, None);
                    if let Some(id) = req.rekey {
                        self.start_child_rekey(ctx, id, Some(g));
                    }
                }
                (NotifyType::TemporaryFailure, _) => {
                    // Retry after a random 1–5 s (§2.25).
                    let delay = Duration::from_millis(1000 + ctx.rng.next_u64() % 4000);
                    restore(self, Some(ctx.now + delay));
                }
                (NotifyType::ChildSaNotFound, _) => {
                    if let Some(id) = req.rekey {
                        self.remove_child(ctx, id);
                    }
                }
                _ => {
                    restore(self, None);
                    self.child_failed(ctx, t);
                }
            }
            return;
        }
        let ke_mode = match &req.dh {
            Some(d) => KeMode::Offered(d.group().id()),
            None => KeMode::NoKe,
        };
        let parsed = find_sa(p)
            .and_then(|sa| check_chosen(&ctx.config.esp_proposals, sa, ke_mode))
            .zip(find_nonce(p))
            .zip(find_ts(p));
        let fail = |sa: &mut IkeSa, ctx: &mut Ctx<'_>| {
            ctx.out.child_spis.remove(&req.spi_in);
            restore(sa, None);
            sa.child_failed(ctx, NotifyType::NoProposalChosen);
        };
        let Some(((chosen, nr), (tsi, tsr))) = parsed else {
            return fail(self, ctx);
        };
        let g_ir = match (&req.dh, find_ke(p)) {
            (None, None) => None,
            (Some(dh), Some(ke)) if ke.group == dh.group().id() => {
                match dh.shared_secret(&ke.data) {
                    Ok(s) => Some(s),
                    Err(_) => return fail(self, ctx),
                }
            }
            _ => return fail(self, ctx),
        };
        let within = ts::all_within(tsi, &req.local_ts) && ts::all_within(tsr, &req.remote_ts);
        let (Some(spi_out), true, Some(crypto)) = (spi32(&chosen.spi), within, &self.crypto) else {
            return fail(self, ctx);
        };
        let Ok(keys) = child_keys(
            crypto.suite.prf,
            &crypto.keys.sk_d,
            g_ir.as_ref().map(|g| g.as_slice()),
            &req.ni,
            nr,
            chosen.child_suite(),
        ) else {
            return fail(self, ctx);
        };
        let (tsi, tsr) = (tsi.clone(), tsr.clone());
        let Some(info) = self.install_child(
            ctx,
            Role::Initiator,
            chosen,
            req.spi_in,
            spi_out,
            &keys,
            tsi,
            tsr,
        ) else {
            return fail(self, ctx);
        };
        match req
            .rekey
            .and_then(|id| self.children.get_mut(&id).map(|c| (id, c)))
        {
            Some((old, c)) => {
                c.state = ChildState::Rekeyed;
                let old_spis = c.info.spis();
                ctx.out.events.push_back(IkeEvent::ChildSaRekeyed {
                    old,
                    old_spis,
                    new: info,
                });
                // The rekey initiator deletes the old pair (§2.8).
                self.queue.push_front(Task::DeleteChild(old));
            }
            None => ctx.out.events.push_back(IkeEvent::ChildSaEstablished(info)),
        }
    }

    /// Rekeys the IKE SA (§1.3.2) with the group it has, or `group` after
    /// INVALID_KE_PAYLOAD.
    fn start_ike_rekey(&mut self, ctx: &mut Ctx<'_>, group: Option<DhGroup>) {
        let Some(crypto) = &self.crypto else {
            return;
        };
        let group = group.unwrap_or(crypto.group);
        let spi = ctx.ike_spi();
        let ni = ctx.nonce();
        let dh = ctx.dh(group);
        let payloads = [
            Payload::Sa(offer(&ctx.config.ike_proposals, &spi.to_be_bytes(), true)),
            Payload::Nonce(ni.clone()),
            Payload::Ke(KeyExchange {
                group: group.id(),
                data: dh.public_value().to_vec(),
            }),
        ];
        self.send_request(
            ctx,
            ExchangeType::CreateChildSa,
            &payloads,
            Request::RekeyIke(Box::new(IkeRekeyRequest { spi, ni, dh })),
        );
    }

    fn on_ike_rekey_response(&mut self, ctx: &mut Ctx<'_>, req: IkeRekeyRequest, p: &[Payload]) {
        let retry_later = |sa: &mut IkeSa, ctx: &mut Ctx<'_>| {
            ctx.out.ike_spis.remove(&req.spi);
            let delay = Duration::from_millis(1000 + ctx.rng.next_u64() % 4000);
            sa.rekey_at = Some(ctx.now + delay);
        };
        if let Some(n) = first_error(p) {
            match n.requested_group().and_then(DhGroup::from_id) {
                Some(g) if g != req.dh.group() => {
                    ctx.out.ike_spis.remove(&req.spi);
                    self.start_ike_rekey(ctx, Some(g));
                }
                _ => retry_later(self, ctx),
            }
            return;
        }
        let parsed = find_ke(p).and_then(|ke| {
            let chosen = check_chosen(
                &ctx.config.ike_proposals,
                find_sa(p)?,
                KeMode::Offered(ke.group),
            )?;
            Some((chosen, ke, find_nonce(p)?))
        });
        let Some((chosen, ke, nr)) = parsed else {
            return retry_later(self, ctx);
        };
        let (Some(peer_spi), Some(suite), Some(group), true) = (
            spi64(&chosen.spi),
            chosen.ike_suite(),
            chosen.dh,
            ke.group == req.dh.group().id(),
        ) else {
            return retry_later(self, ctx);
        };
        let Ok(g_ir) = req.dh.shared_secret(&ke.data) else {
            return retry_later(self, ctx);
        };
        let Some(new) = self.rekeyed(
            ctx, true, req.spi, peer_spi, suite, group, &g_ir, &req.ni, nr,
        ) else {
            return retry_later(self, ctx);
        };
        ctx.out.spawned.push(new);
        // The rekey initiator deletes the old IKE SA (§2.18).
        self.queue.push_front(Task::DeleteIke);
    }

    // ---------------------------------------------------------------
    // Timers
    // ---------------------------------------------------------------

    /// The earliest time this SA needs [`IkeSa::on_timeout`].
    pub fn next_timeout(&self) -> Option<Duration> {
        let mut t: Option<Duration> = None;
        let mut at = |x: Option<Duration>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        at(self.pending.as_ref().map(|p| p.retransmit_at));
        at(self.delete_at);
        if self.is_established() {
            at(self.rekey_at);
            at(self.dpd_at);
            for c in self.children.values() {
                at(c.rekey_at);
                at(c.expire_at);
            }
        }
        t
    }

    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        if let Some(p) = &mut self.pending {
            if now >= p.retransmit_at {
                if p.tries >= ctx.config.retransmit_tries {
                    // The peer is gone (§2.4).
                    let reason = match self.state {
                        State::Rekeyed => None,
                        _ => Some(DeleteReason::Timeout),
                    };
                    let ids: Vec<ChildSaId> = self.children.keys().copied().collect();
                    for id in ids {
                        self.remove_child(ctx, id);
                    }
                    self.finish(reason);
                    return;
                }
                p.tries += 1;
                let backoff = ctx
                    .config
                    .retransmit_timeout
                    .saturating_mul(1 << p.tries.min(16));
                p.retransmit_at = now + backoff;
                let (bytes, id) = (p.datagram.clone(), p.msg_id);
                self.trace(
                    ctx,
                    Direction::Sent,
                    self.remote,
                    format!("retransmit request {id}"),
                );
                self.transmit(ctx, self.remote, self.local_port, &bytes);
            }
        }
        if self.delete_at.is_some_and(|t| now >= t) {
            self.finish(None);
            return;
        }
        if !self.is_established() {
            return;
        }
        if self.rekey_at.is_some_and(|t| now >= t) {
            self.rekey_at = None;
            self.enqueue(Task::RekeyIke);
        }
        let mut tasks = Vec::new();
        for (id, c) in &mut self.children {
            if c.expire_at.is_some_and(|t| now >= t) {
                c.expire_at = None;
                c.rekey_at = None;
                tasks.push(Task::DeleteChild(*id));
            } else if c.state == ChildState::Installed && c.rekey_at.is_some_and(|t| now >= t) {
                c.rekey_at = None;
                tasks.push(Task::RekeyChild(*id));
            }
        }
        for t in tasks {
            self.enqueue(t);
        }
        if let (Some(i), Some(t)) = (ctx.config.dpd_interval, self.dpd_at) {
            if now >= t {
                self.dpd_at = Some(now + i);
                if self.pending.is_none() && self.queue.is_empty() {
                    self.enqueue(Task::Dpd);
                }
            }
        }
        self.kick(ctx);
    }

    /// Counts traffic of a child SA and rekeys or expires it on its byte
    /// and packet limits.
    pub fn child_traffic(&mut self, ctx: &mut Ctx<'_>, id: ChildSaId, bytes: u64, packets: u64) {
        let l = ctx.config.child_lifetime;
        let Some(c) = self.children.get_mut(&id) else {
            return;
        };
        c.bytes = c.bytes.saturating_add(bytes);
        c.packets = c.packets.saturating_add(packets);
        let hard = l.life_bytes.is_some_and(|x| c.bytes >= x)
            || l.life_packets.is_some_and(|x| c.packets >= x);
        let soft = l.rekey_bytes.is_some_and(|x| c.bytes >= x)
            || l.rekey_packets.is_some_and(|x| c.packets >= x);
        if hard && c.state != ChildState::Deleting {
            self.enqueue(Task::DeleteChild(id));
        } else if soft && c.state == ChildState::Installed {
            self.enqueue(Task::RekeyChild(id));
        }
        self.kick(ctx);
    }
}

/// The response to an IKE_SA_INIT with no state kept: a single notify
/// (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN, ...), SPIr zero (§2.6,
/// §1.3).
pub(crate) fn stateless_init_response(request: &Header, n: Notify) -> Option<Vec<u8>> {
    IkeMessage {
        header: Header {
            spi_r: 0,
            flags: Flags(Flags::RESPONSE),
            ..*request
        },
        payloads: vec![Payload::Notify(n)],
    }
    .to_bytes()
    .ok()
}
