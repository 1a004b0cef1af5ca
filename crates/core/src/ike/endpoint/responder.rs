//! The responder's IKE_SA_INIT (RFC 7296 §1.2): refused without state
//! (UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_SYNTAX, COOKIE, NO_PROPOSAL_CHOSEN,
//! INVALID_KE_PAYLOAD; §2.5, §2.6, §1.3), or answered by committing to a
//! half-open IKE SA.

use core::net::{Ipv4Addr, SocketAddrV4};

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Ike;
use crate::ike::api::{Direction, DropReason, IkeSaId, TraceRecord};
use crate::ike::dh::DhGroup;
use crate::ike::keys::{ike_keys, skeyseed, IkeSuite};
use crate::ike::natt::nat_detection_hash;
use crate::ike::proposal::{select_or_notify, KeMode, Selected};
use crate::ike::sa::{
    find_ke, find_nonce, find_notifies, find_sa, stateless_init_response, unknown_critical,
    ExpectAuth, IkeCrypto, IkeSa, State, Timer,
};
use crate::ike::trace::describe;
use crate::time::Instant;
use crate::wire::ike::{Flags, Header, IkeMessage, KeyExchange, Notify, NotifyType, Payload, Sa};

/// Version octet of our cookies, so the secret could be rotated (§2.6).
const COOKIE_VERSION: u8 = 1;

/// An IKE_SA_INIT request as it arrived.
pub(super) struct InitRequest<'a> {
    pub now: Instant,
    pub remote: SocketAddrV4,
    pub local_port: u16,
    pub header: Header,
    pub raw: &'a [u8],
}

/// Why a request gets no IKE SA: a stateless answer, or a drop.
enum Refusal {
    Answer(Notify),
    Drop(DropReason),
}

/// What a request that passed the checks agreed on.
struct Accepted<'p> {
    chosen: Selected,
    suite: IkeSuite,
    group: DhGroup,
    ke: &'p KeyExchange,
    ni: &'p Vec<u8>,
}

/// What the responder commits to: SPIr, Nr, our KE public value and the
/// IKE SA keys.
struct Committed {
    spi_r: u64,
    nr: Vec<u8>,
    public: Vec<u8>,
    crypto: IkeCrypto,
}

/// What NAT detection found (§2.23). SPIr is zero in the request's hashes.
struct NatSeen {
    /// The request had NAT_DETECTION_SOURCE_IP payloads.
    sources: bool,
    /// The request had a NAT_DETECTION_DESTINATION_IP payload.
    destination: bool,
    /// We are behind a NAT: the peer saw another address of ours.
    local: bool,
    /// The peer is behind a NAT.
    remote: bool,
}

impl NatSeen {
    fn of(req: &InitRequest<'_>, local: SocketAddrV4, p: &[Payload]) -> NatSeen {
        let srcs = find_notifies(p, NotifyType::NatDetectionSourceIp);
        let dst = find_notifies(p, NotifyType::NatDetectionDestinationIp);
        let spi_i = req.header.spi_i;
        let remote = !srcs.is_empty() && {
            let h = nat_detection_hash(spi_i, 0, req.remote);
            !srcs.iter().any(|n| n.data == h)
        };
        let local = dst
            .first()
            .is_some_and(|d| d.data != nat_detection_hash(spi_i, 0, local));
        NatSeen {
            sources: !srcs.is_empty(),
            destination: !dst.is_empty(),
            local,
            remote,
        }
    }
}

impl Ike {
    /// A responder's IKE_SA_INIT (§1.2): refuse without state, or commit to
    /// a half-open IKE SA and answer.
    pub(super) fn on_init_request<R: RngCore + CryptoRng>(
        &mut self,
        req: InitRequest<'_>,
        rng: &mut R,
    ) -> Result<(), DropReason> {
        let header = req.header;
        if !header.flags.initiator() || header.message_id != 0 {
            return Err(DropReason::Unexpected("IKE_SA_INIT header"));
        }
        if let Some(&spi) = self.init_index.get(&(req.remote, header.spi_i)) {
            return self.init_retransmitted(&req, spi);
        }
        let msg = IkeMessage::parse(req.raw)?;
        self.trace_init(&req, Direction::Received, &header, &msg.payloads);
        let accepted = match self.screen(&req, &msg.payloads) {
            Ok(a) => a,
            Err(Refusal::Answer(n)) => {
                self.send_stateless(&req, n);
                return Ok(());
            }
            Err(Refusal::Drop(e)) => return Err(e),
        };
        self.commit(&req, accepted, &msg.payloads, rng)
    }

    /// A request we answered before: the same response again (§2.1).
    fn init_retransmitted(&mut self, req: &InitRequest<'_>, spi: u64) -> Result<(), DropReason> {
        if let Some(State::ExpectAuth(st)) = self.sas.get(&spi).map(|s| &s.state) {
            if st.request == req.raw {
                let bytes = st.response.clone();
                self.send_raw(req.remote, req.local_port, &bytes);
                return Ok(());
            }
        }
        Err(DropReason::Unexpected("IKE_SA_INIT for an existing IKE SA"))
    }

    /// The checks before any state or Diffie-Hellman work: critical
    /// payloads (§2.5), the payloads present, the COOKIE once too many SAs
    /// are half-open (§2.6), the half-open limit, and the proposal (§2.7).
    fn screen<'p>(&self, req: &InitRequest<'_>, p: &'p [Payload]) -> Result<Accepted<'p>, Refusal> {
        if let Some(t) = unknown_critical(p) {
            let n = Notify::new(NotifyType::UnsupportedCriticalPayload, vec![t]);
            return Err(Refusal::Answer(n));
        }
        let (Some(sa), Some(ke), Some(ni)) = (find_sa(p), find_ke(p), find_nonce(p)) else {
            return Err(Refusal::Answer(Notify::new(
                NotifyType::InvalidSyntax,
                Vec::new(),
            )));
        };
        if self.half_open.len() >= self.config.cookie_threshold {
            let expected = self.cookie(ni, *req.remote.ip(), req.header.spi_i);
            if !returns_cookie(p, &expected) {
                return Err(Refusal::Answer(Notify::new(NotifyType::Cookie, expected)));
            }
        }
        if self.half_open.len() >= self.config.half_open_limit {
            return Err(Refusal::Drop(DropReason::HalfOpenLimit));
        }
        let chosen = select_or_notify(&self.config.ike_proposals, sa, KeMode::Offered(ke.group))
            .map_err(Refusal::Answer)?;
        let (Some(suite), Some(group)) = (chosen.ike_suite(), chosen.dh) else {
            let n = Notify::new(NotifyType::NoProposalChosen, Vec::new());
            return Err(Refusal::Answer(n));
        };
        Ok(Accepted {
            chosen,
            suite,
            group,
            ke,
            ni,
        })
    }

    /// Derives the keys (§2.14), answers, and keeps the half-open SA.
    fn commit<R: RngCore + CryptoRng>(
        &mut self,
        req: &InitRequest<'_>,
        a: Accepted<'_>,
        p: &[Payload],
        rng: &mut R,
    ) -> Result<(), DropReason> {
        let committed = match self.derive_keys(req, &a, rng) {
            Ok(c) => c,
            Err(Refusal::Answer(n)) => {
                self.send_stateless(req, n);
                return Ok(());
            }
            Err(Refusal::Drop(e)) => return Err(e),
        };
        let local = SocketAddrV4::new(self.local_ip, req.local_port);
        let nat = NatSeen::of(req, local, p);
        let resp_header = Header {
            spi_r: committed.spi_r,
            flags: Flags(Flags::RESPONSE),
            ..req.header
        };
        let payloads = self.init_response_payloads(req, &a, &committed, &nat, local);
        let response = IkeMessage {
            header: resp_header,
            payloads,
        };
        let Ok(bytes) = response.to_bytes() else {
            self.out.ike_spis.remove(&committed.spi_r);
            return Err(DropReason::Unexpected("emit"));
        };
        let spi_r = committed.spi_r;
        let sa = self.half_open_sa(req, a.ni, committed, &nat, &bytes);
        self.trace_init(req, Direction::Sent, &resp_header, &response.payloads);
        self.send_raw(req.remote, req.local_port, &bytes);
        self.init_index
            .insert((req.remote, req.header.spi_i), spi_r);
        self.half_open.insert(spi_r);
        self.sas.insert(spi_r, sa);
        Ok(())
    }

    /// Our Diffie-Hellman half, SPIr, Nr and the IKE SA keys (§2.14).
    fn derive_keys<R: RngCore + CryptoRng>(
        &mut self,
        req: &InitRequest<'_>,
        a: &Accepted<'_>,
        rng: &mut R,
    ) -> Result<Committed, Refusal> {
        let config = &self.config;
        let mut ctx = Self::ctx(config, &mut self.out, rng, req.now, self.local_ip);
        let dh = ctx.dh(a.group);
        let Ok(g_ir) = dh.shared_secret(&a.ke.data) else {
            return Err(Refusal::Answer(Notify::new(
                NotifyType::InvalidSyntax,
                Vec::new(),
            )));
        };
        let spi_r = ctx.ike_spi();
        let nr = ctx.nonce();
        let seed = skeyseed(a.suite.prf, a.ni, &nr, &g_ir);
        let Ok(keys) = ike_keys(a.suite, &seed, a.ni, &nr, req.header.spi_i, spi_r) else {
            self.out.ike_spis.remove(&spi_r);
            return Err(Refusal::Drop(DropReason::Unexpected("key derivation")));
        };
        Ok(Committed {
            spi_r,
            nr,
            public: dh.public_value().to_vec(),
            crypto: IkeCrypto::new(a.suite, a.group, keys, false),
        })
    }

    /// SA, KE, Nr and, when the peer detects NATs, ours (§1.2, §2.23).
    fn init_response_payloads(
        &self,
        req: &InitRequest<'_>,
        a: &Accepted<'_>,
        c: &Committed,
        nat: &NatSeen,
        local: SocketAddrV4,
    ) -> Vec<Payload> {
        let mut payloads = vec![
            Payload::Sa(Sa {
                proposals: vec![a.chosen.to_proposal(Vec::new())],
            }),
            Payload::Ke(KeyExchange {
                group: a.group.id(),
                data: c.public.clone(),
            }),
            Payload::Nonce(c.nr.clone()),
        ];
        if nat.sources || nat.destination {
            let spi_i = req.header.spi_i;
            let ours = if self.config.force_encap {
                // A hash no address matches: the peer sees us behind a NAT.
                let nowhere = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
                nat_detection_hash(spi_i, c.spi_r, nowhere)
            } else {
                nat_detection_hash(spi_i, c.spi_r, local)
            };
            let theirs = nat_detection_hash(spi_i, c.spi_r, req.remote);
            payloads.push(Payload::Notify(Notify::new(
                NotifyType::NatDetectionSourceIp,
                ours.to_vec(),
            )));
            payloads.push(Payload::Notify(Notify::new(
                NotifyType::NatDetectionDestinationIp,
                theirs.to_vec(),
            )));
        }
        payloads
    }

    /// The half-open IKE SA (§2.6), waiting for IKE_AUTH until the
    /// half-open timeout.
    fn half_open_sa(
        &mut self,
        req: &InitRequest<'_>,
        ni: &[u8],
        c: Committed,
        nat: &NatSeen,
        response: &[u8],
    ) -> IkeSa {
        let id = IkeSaId(self.next_ike);
        self.next_ike = self.next_ike.wrapping_add(1);
        let state = State::ExpectAuth(Box::new(ExpectAuth {
            request: req.raw.to_vec(),
            response: response.to_vec(),
            ni: ni.to_vec(),
            nr: c.nr,
        }));
        let spi_i = req.header.spi_i;
        let mut sa = IkeSa::new(id, false, spi_i, req.remote, req.local_port, state);
        sa.spi_r = c.spi_r;
        sa.nat_local = nat.local || (self.config.force_encap && nat.sources);
        sa.nat_remote = nat.remote;
        sa.crypto = Some(c.crypto);
        sa.next_recv_id = 1;
        sa.timers
            .set(Timer::HalfOpen, req.now + self.config.half_open_timeout);
        sa.init_key = Some((req.remote, spi_i));
        sa
    }

    /// A response with no state kept: a single notify, SPIr zero (§2.6).
    fn send_stateless(&mut self, req: &InitRequest<'_>, n: Notify) {
        let header = Header {
            flags: Flags(Flags::RESPONSE),
            ..req.header
        };
        let payloads = [Payload::Notify(n.clone())];
        if let Some(bytes) = stateless_init_response(&req.header, n) {
            self.trace_init(req, Direction::Sent, &header, &payloads);
            self.send_raw(req.remote, req.local_port, &bytes);
        }
    }

    fn trace_init(&mut self, req: &InitRequest<'_>, dir: Direction, h: &Header, p: &[Payload]) {
        let local = SocketAddrV4::new(self.local_ip, req.local_port);
        let (at, remote, summary) = (req.now, req.remote, describe(h, p));
        self.out.trace(|| TraceRecord {
            at,
            direction: dir,
            local,
            remote,
            summary,
        });
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
}

/// Whether the request starts with the COOKIE we expect (§2.6), compared
/// in constant time.
fn returns_cookie(p: &[Payload], expected: &[u8]) -> bool {
    matches!(p.first(), Some(Payload::Notify(n))
        if n.notify_type == NotifyType::Cookie
            && n.data.len() == expected.len()
            && bool::from(n.data.ct_eq(expected)))
}
