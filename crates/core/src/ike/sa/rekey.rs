//! Rekeying with CREATE_CHILD_SA: child SAs (RFC 7296 §1.3.3, §2.8) and
//! the IKE SA itself (§1.3.2, §2.18), both sides.

use core::time::Duration;

use crate::ike::api::{ChildSaId, ChildSaInfo, IkeEvent, Role};
use crate::ike::dh::DhGroup;
use crate::ike::keys::{ike_keys, skeyseed_rekey, IkeSuite};
use crate::ike::proposal::{check_chosen, offer, select_or_notify, KeMode};
use crate::ike::ts;
use crate::time::Instant;
use crate::wire::ike::{ExchangeType, KeyExchange, Notify, NotifyType, Payload, ProtocolId, Sa};

use super::payloads::{
    find_ke, find_nonce, find_sa, find_ts, first_error, notify, pfs_proposals, spi32, spi64,
};
use super::{
    ChildRequest, ChildState, ChildTimer, Ctx, IkeCrypto, IkeRekeyRequest, IkeSa, Negotiated,
    Request, Response, State, Task, Timer, REKEYED_LINGER,
};

impl IkeSa {
    pub(super) fn respond_ike_rekey(
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
        let chosen =
            match select_or_notify(&ctx.config.ike_proposals, sa, KeMode::Offered(ke.group)) {
                Ok(c) => c,
                Err(n) => return vec![Payload::Notify(n)],
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
        new.timers = self.timers.take_children();
        let rekey_at = ctx.config.ike_lifetime.rekey_time.map(|t| {
            let j = ctx.jitter(ctx.config.rekey_jitter.min(t));
            ctx.now + t - j
        });
        new.timers.set_or_cancel(Timer::RekeyIke, rekey_at);
        new.timers.set_or_cancel(
            Timer::Liveness,
            ctx.config.dpd_interval.map(|i| ctx.now + i),
        );
        self.state = State::Rekeyed;
        self.timers.cancel(Timer::RekeyIke);
        self.timers.set(Timer::Linger, ctx.now + REKEYED_LINGER);
        ctx.out.events.push_back(IkeEvent::IkeSaRekeyed {
            ike_sa: self.id,
            spi_i,
            spi_r,
        });
        Some(new)
    }

    /// Rekeys a child (§1.3.3), with PFS when our ESP proposals name a
    /// group; `group` overrides it after INVALID_KE_PAYLOAD.
    pub(super) fn start_child_rekey(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: ChildSaId,
        group: Option<DhGroup>,
    ) {
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

    /// The response to our CREATE_CHILD_SA for a child SA (§1.3.1,
    /// §1.3.3): the new child installed, or the refusal handled.
    pub(super) fn on_child_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: ChildRequest,
        p: &[Payload],
    ) {
        if let Some(n) = first_error(p) {
            return self.child_refused(ctx, &req, n);
        }
        let Some(info) = self.accept_child(ctx, &req, p) else {
            ctx.out.child_spis.remove(&req.spi_in);
            self.restore_child(req.rekey, None);
            return self.child_failed(ctx, NotifyType::NoProposalChosen);
        };
        if let Some(old) = self.announce_child(ctx, info, req.rekey) {
            // The rekey initiator deletes the old pair (§2.8).
            self.queue.push_front(Task::DeleteChild(old));
        }
    }

    /// A child SA being rekeyed is installed again, with `retry` as its
    /// next rekey time.
    fn restore_child(&mut self, rekey: Option<ChildSaId>, retry: Option<Instant>) {
        let Some(id) = rekey else {
            return;
        };
        if let Some(c) = self.children.get_mut(&id) {
            c.state = ChildState::Installed;
            self.timers
                .set_or_cancel(Timer::Child(id, ChildTimer::Rekey), retry);
        }
    }

    /// The peer refused our CREATE_CHILD_SA: another group (§1.3), a
    /// retry later (§2.25), a child it no longer has, or failure.
    fn child_refused(&mut self, ctx: &mut Ctx<'_>, req: &ChildRequest, n: &Notify) {
        ctx.out.child_spis.remove(&req.spi_in);
        let t = n.notify_type;
        match (t, n.requested_group().and_then(DhGroup::from_id)) {
            (NotifyType::InvalidKePayload, Some(g))
                if req.dh.as_ref().is_some_and(|d| d.group() != g) =>
            {
                self.restore_child(req.rekey, None);
                if let Some(id) = req.rekey {
                    self.start_child_rekey(ctx, id, Some(g));
                }
            }
            (NotifyType::TemporaryFailure, _) => {
                // Retry after a random 1–5 s (§2.25).
                let delay = Duration::from_millis(1000 + ctx.rng.next_u64() % 4000);
                self.restore_child(req.rekey, Some(ctx.now + delay));
            }
            (NotifyType::ChildSaNotFound, _) => {
                if let Some(id) = req.rekey {
                    self.remove_child(ctx, id);
                }
            }
            _ => {
                self.restore_child(req.rekey, None);
                self.child_failed(ctx, t);
            }
        }
    }

    /// Checks the responder's choice (§2.7), KE (§1.3.1) and selectors
    /// (§2.9) against our request and installs the child.
    fn accept_child(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: &ChildRequest,
        p: &[Payload],
    ) -> Option<ChildSaInfo> {
        let ke_mode = match &req.dh {
            Some(d) => KeMode::Offered(d.group().id()),
            None => KeMode::NoKe,
        };
        let chosen = check_chosen(&ctx.config.esp_proposals, find_sa(p)?, ke_mode)?;
        let (nr, (tsi, tsr)) = (find_nonce(p)?, find_ts(p)?);
        let g_ir = match (&req.dh, find_ke(p)) {
            (None, None) => None,
            (Some(dh), Some(ke)) if ke.group == dh.group().id() => {
                Some(dh.shared_secret(&ke.data).ok()?)
            }
            _ => return None,
        };
        let within = ts::all_within(tsi, &req.local_ts) && ts::all_within(tsr, &req.remote_ts);
        let (Some(spi_out), true, Some(crypto)) = (spi32(&chosen.spi), within, &self.crypto) else {
            return None;
        };
        let g_ir = g_ir.as_ref().map(|g| g.as_slice());
        let keys = crypto.child_keys(g_ir, &req.ni, nr, &chosen).ok()?;
        let negotiated = Negotiated {
            chosen,
            spi_in: req.spi_in,
            spi_out,
            keys,
        };
        let (tsi, tsr) = (tsi.clone(), tsr.clone());
        self.install_child(ctx, Role::Initiator, negotiated, tsi, tsr)
    }

    /// Rekeys the IKE SA (§1.3.2) with the group it has, or `group` after
    /// INVALID_KE_PAYLOAD.
    pub(super) fn start_ike_rekey(&mut self, ctx: &mut Ctx<'_>, group: Option<DhGroup>) {
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

    pub(super) fn on_ike_rekey_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: IkeRekeyRequest,
        p: &[Payload],
    ) {
        let retry_later = |sa: &mut IkeSa, ctx: &mut Ctx<'_>| {
            ctx.out.ike_spis.remove(&req.spi);
            let delay = Duration::from_millis(1000 + ctx.rng.next_u64() % 4000);
            sa.timers.set(Timer::RekeyIke, ctx.now + delay);
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
}
