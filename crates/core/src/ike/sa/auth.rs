//! IKE_AUTH, both sides (RFC 7296 §1.2, §2.15).

use core::net::SocketAddrV4;

use crate::ike::api::{DeleteReason, IkeEvent, Role};
use crate::ike::ident::Identity;
use crate::ike::keys::{child_keys, psk_auth, signed_octets, verify_psk_auth};
use crate::ike::proposal::{check_chosen, offer, KeMode};
use crate::ike::ts;
use crate::wire::ike::{Auth, AuthMethod, ExchangeType, NotifyType, Payload};

use super::payloads::{
    find_auth, find_id_i, find_id_r, find_notify, find_sa, find_ts, first_error, notify, spi32,
};
use super::{
    Ctx, ExpectAuthResponse, ExpectInitResponse, IkeSa, Negotiated, Request, Response, State, Timer,
};

impl IkeSa {
    pub(super) fn send_auth_request(
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

    /// The responder's IKE_AUTH (§1.2): its AUTH checked (§2.15), the IKE
    /// SA established, and the first child SA installed.
    pub(super) fn on_auth_response(&mut self, ctx: &mut Ctx<'_>, p: &[Payload]) {
        let State::ExpectAuthResponse(st) = std::mem::replace(&mut self.state, State::Dead) else {
            return;
        };
        if find_notify(p, NotifyType::AuthenticationFailed).is_some() {
            return self.auth_failed(ctx, st.spi_in, false);
        }
        let Some(ok) = self.responder_auth_ok(&st, p) else {
            return;
        };
        if !ok {
            // §2.21.2: tell the responder in an INFORMATIONAL, then go.
            let payloads = [notify(NotifyType::AuthenticationFailed)];
            self.send_request(ctx, ExchangeType::Informational, &payloads, Request::Dpd);
            return self.auth_failed(ctx, st.spi_in, true);
        }
        self.remote_id = self.peer.as_ref().map(|peer| peer.id.clone());
        self.establish(ctx, Role::Initiator);
        self.first_child(ctx, &st, p);
    }

    /// Whether the responder's IDr and AUTH are those of the peer we
    /// meant (§2.15); `None` without keys or peer.
    fn responder_auth_ok(&self, st: &ExpectAuthResponse, p: &[Payload]) -> Option<bool> {
        let (Some(crypto), Some(peer)) = (&self.crypto, &self.peer) else {
            return None;
        };
        let prf = crypto.suite.prf;
        let (Some(idr), Some(auth)) = (find_id_r(p), find_auth(p)) else {
            return Some(false);
        };
        let octets = signed_octets(
            prf,
            &st.response,
            &st.ni,
            &crypto.keys.sk_pr,
            &idr.rest_of_payload(),
        );
        Some(
            peer.id.matches(idr)
                && auth.method == AuthMethod::SharedKeyMic
                && verify_psk_auth(prf, &peer.psk, &octets, &auth.data),
        )
    }

    /// Authentication failed, on our side (`local`) or the peer's: the
    /// SA goes, and the child SPI we reserved with it.
    fn auth_failed(&mut self, ctx: &mut Ctx<'_>, spi_in: u32, local: bool) {
        ctx.out.child_spis.remove(&spi_in);
        ctx.out.events.push_back(IkeEvent::AuthFailed {
            remote: self.remote,
            id: self.peer.as_ref().map(|x| x.id.clone()),
            local,
        });
        self.finish(Some(DeleteReason::AuthFailed));
    }

    /// The child SA that came with IKE_AUTH (§1.2), or why it did not.
    fn first_child(&mut self, ctx: &mut Ctx<'_>, st: &ExpectAuthResponse, p: &[Payload]) {
        if let Some(n) = first_error(p) {
            return self.first_child_failed(ctx, st.spi_in, n.notify_type);
        }
        let child = find_sa(p)
            .and_then(|sa| check_chosen(&ctx.config.esp_proposals, sa, KeMode::Ignore))
            .zip(find_ts(p));
        let Some((chosen, (tsi, tsr))) = child else {
            return self.first_child_failed(ctx, st.spi_in, NotifyType::NoProposalChosen);
        };
        if !ts::all_within(tsi, &st.local_ts) || !ts::all_within(tsr, &st.remote_ts) {
            return self.first_child_failed(ctx, st.spi_in, NotifyType::TsUnacceptable);
        }
        let (Some(spi_out), Some(crypto)) = (spi32(&chosen.spi), &self.crypto) else {
            return;
        };
        let (prf, sk_d) = (crypto.suite.prf, &crypto.keys.sk_d);
        let Ok(keys) = child_keys(prf, sk_d, None, &st.ni, &st.nr, chosen.child_suite()) else {
            return;
        };
        let (tsi, tsr) = (tsi.clone(), tsr.clone());
        let negotiated = Negotiated {
            chosen,
            spi_in: st.spi_in,
            spi_out,
            keys,
        };
        if let Some(info) = self.install_child(ctx, Role::Initiator, negotiated, tsi, tsr) {
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

    /// The IKE SA is up, its first child SA is not.
    fn first_child_failed(&mut self, ctx: &mut Ctx<'_>, spi_in: u32, notify: NotifyType) {
        ctx.out.child_spis.remove(&spi_in);
        self.child_failed(ctx, notify);
    }

    /// The IKE SA is up: event, timers.
    fn establish(&mut self, ctx: &mut Ctx<'_>, role: Role) {
        self.state = State::Established;
        self.timers.cancel(Timer::HalfOpen);
        self.timers.cancel(Timer::Linger);
        let rekey_at = ctx.config.ike_lifetime.rekey_time.map(|t| {
            let j = ctx.jitter(ctx.config.rekey_jitter.min(t));
            ctx.now + t - j
        });
        self.timers.set_or_cancel(Timer::RekeyIke, rekey_at);
        if let Some(i) = ctx.config.dpd_interval {
            self.timers.set(Timer::Liveness, ctx.now + i);
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

    pub(super) fn on_auth_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        p: &[Payload],
    ) -> Response {
        let State::ExpectAuth(st) = std::mem::replace(&mut self.state, State::Dead) else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let (idi, idr, auth) = (find_id_i(p), find_id_r(p), find_auth(p));
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
}
