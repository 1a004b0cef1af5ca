//! IKE_SA_INIT, initiator (RFC 7296 §1.2); the responder's side is the
//! endpoint's, which keeps no state until it commits.

use core::net::{Ipv4Addr, SocketAddrV4};

use crate::ike::api::{DeleteReason, Direction, DropReason};
use crate::ike::dh::DhGroup;
use crate::ike::keys::{ike_keys, skeyseed, IkeKeys, IkeSuite};
use crate::ike::natt::{nat_detection_hash, NATT_PORT};
use crate::ike::proposal::{check_chosen, offer, KeMode};
use crate::ike::trace::describe;
use crate::wire::ike::{
    ExchangeType, Flags, Header, IkeMessage, KeyExchange, Notify, NotifyType, Payload,
};

use super::payloads::{find_ke, find_nonce, find_notifies, find_notify, find_sa, first_error};
use super::{Ctx, ExpectInitResponse, IkeCrypto, IkeSa, Pending, Request, State};

impl IkeSa {
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
        self.await_response(
            ctx,
            Pending {
                msg_id: 0,
                datagram: bytes,
                tries: 0,
                what: Request::Init,
            },
        );
        self.state = State::ExpectInitResponse(init);
    }

    /// The responder's IKE_SA_INIT (§1.2): a COOKIE or another group to
    /// try again with (§2.6, §1.2), a refusal, or the keys and NAT
    /// detection, followed by our IKE_AUTH.
    pub(super) fn on_init_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        raw: &[u8],
        msg: IkeMessage,
    ) -> Result<(), DropReason> {
        let State::ExpectInitResponse(init) = std::mem::replace(&mut self.state, State::Dead)
        else {
            return Err(DropReason::Unexpected("IKE_SA_INIT response"));
        };
        let p = &msg.payloads;
        if find_notify(p, NotifyType::Cookie).is_some() || first_error(p).is_some() {
            return self.init_refused(ctx, init, p);
        }
        let spi_r = msg.header.spi_r;
        let Some((suite, keys, nr)) = self.init_keys(ctx, &init, spi_r, p) else {
            self.finish(Some(DeleteReason::ProtocolError));
            return Ok(());
        };
        self.spi_r = spi_r;
        self.crypto = Some(IkeCrypto::new(suite, init.dh.group(), keys, true));
        self.detect_nat(ctx, p);
        self.take_pending();
        self.next_send_id = 1;
        self.send_auth_request(ctx, *init, raw.to_vec(), nr.clone());
        Ok(())
    }

    /// A response without an SA: the COOKIE to send back (§2.6), the
    /// group to use (INVALID_KE_PAYLOAD, §1.2), or another error that ends
    /// the attempt.
    fn init_refused(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut init: Box<ExpectInitResponse>,
        p: &[Payload],
    ) -> Result<(), DropReason> {
        if let Some(c) = find_notify(p, NotifyType::Cookie) {
            if c.data.is_empty() || c.data.len() > 64 {
                self.state = State::ExpectInitResponse(init);
                return Err(DropReason::Unexpected("COOKIE length"));
            }
            init.cookie = Some(c.data.clone());
            self.send_init_request(ctx, init);
            return Ok(());
        }
        let Some(n) = first_error(p) else {
            return Ok(());
        };
        let ours = |g: &DhGroup| ctx.config.ike_proposals.iter().any(|c| c.dh.contains(g));
        match n.requested_group().and_then(DhGroup::from_id) {
            Some(g) if ours(&g) && g != init.dh.group() => {
                init.dh = ctx.dh(g);
                self.send_init_request(ctx, init);
            }
            _ => self.finish(Some(DeleteReason::Refused(n.notify_type))),
        }
        Ok(())
    }

    /// The responder's choice checked (§2.7) and the IKE SA keys derived
    /// (§2.14); `None` if anything is wrong.
    fn init_keys<'p>(
        &self,
        ctx: &Ctx<'_>,
        init: &ExpectInitResponse,
        spi_r: u64,
        p: &'p [Payload],
    ) -> Option<(IkeSuite, IkeKeys, &'p Vec<u8>)> {
        let (sa, ke, nr) = (find_sa(p)?, find_ke(p)?, find_nonce(p)?);
        let chosen = check_chosen(&ctx.config.ike_proposals, sa, KeMode::Offered(ke.group))?;
        let suite = chosen.ike_suite()?;
        if ke.group != init.dh.group().id() || spi_r == 0 {
            return None;
        }
        let g_ir = init.dh.shared_secret(&ke.data).ok()?;
        let seed = skeyseed(suite.prf, &init.ni, nr, &g_ir);
        let keys = ike_keys(suite, &seed, &init.ni, nr, self.spi_i, spi_r).ok()?;
        Some((suite, keys, nr))
    }

    /// NAT detection (§2.23): behind a NAT, either side, we move to port
    /// 4500 (§2.23, RFC 3948).
    fn detect_nat(&mut self, ctx: &Ctx<'_>, p: &[Payload]) {
        let local = self.local_addr(ctx);
        let srcs = find_notifies(p, NotifyType::NatDetectionSourceIp);
        if !srcs.is_empty() {
            let h = nat_detection_hash(self.spi_i, self.spi_r, self.remote);
            self.nat_remote = !srcs.iter().any(|n| n.data == h);
        }
        if let Some(d) = find_notify(p, NotifyType::NatDetectionDestinationIp) {
            self.nat_local = d.data != nat_detection_hash(self.spi_i, self.spi_r, local);
        }
        if ctx.config.force_encap && !srcs.is_empty() {
            self.nat_local = true;
        }
        if self.nat_local || self.nat_remote {
            self.local_port = NATT_PORT;
            self.remote.set_port(NATT_PORT);
        }
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
