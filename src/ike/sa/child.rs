//! Child SAs: negotiated as responder in IKE_AUTH or CREATE_CHILD_SA
//! (RFC 7296 §1.3.1), installed, counted and removed.

use crate::ike::api::{ChildSaId, ChildSaInfo, IkeEvent, Role};
use crate::ike::config::enc_alg;
use crate::ike::dh::Zeroizing;
use crate::ike::keys::{child_keys, ChildKeys};
use crate::ike::proposal::{select_or_notify, KeMode, Selected};
use crate::ike::ts;
use crate::ipsec::sa::{
    Key, Lifetime, Lifetimes, Mode, Protocol as SaProtocol, SaConfig, Spi,
    TrafficSelector as SaSelector, UdpEncap,
};
use crate::wire::ike::{KeyExchange, Notify, NotifyType, Payload, ProtocolId, Sa, TrafficSelector};

use super::payloads::{
    find_ke, find_nonce, find_notify, find_sa, find_ts, integ_alg, notify, pfs_hint, spi32,
};
use super::{Child, ChildState, ChildTimer, Ctx, IkeSa, Response, Task, Timer};

impl IkeSa {
    /// Negotiates a child SA as responder (IKE_AUTH or CREATE_CHILD_SA):
    /// selects the proposal, narrows the selectors, derives the keys and
    /// returns the response payloads (SA, [Nr, KEr,] TSi, TSr) or an error
    /// notify. `ke` is `None` in IKE_AUTH; `Some(None)` in CREATE_CHILD_SA
    /// without a KE payload.
    pub(super) fn respond_child(
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
        let chosen = match select_or_notify(&ctx.config.esp_proposals, sa, mode) {
            Ok(c) => c,
            Err(n) => {
                if n.notify_type == NotifyType::NoProposalChosen {
                    self.child_failed(ctx, n.notify_type);
                }
                return vec![Payload::Notify(n)];
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

    pub(super) fn child_failed(&mut self, ctx: &mut Ctx<'_>, notify: NotifyType) {
        ctx.out.events.push_back(IkeEvent::ChildSaFailed {
            ike_sa: self.id,
            notify,
        });
    }

    /// Turns negotiated keys into the engine's SA pair and records the
    /// child. `role` is ours in the exchange that created it (§2.17: the
    /// first keys protect initiator-to-responder traffic).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install_child(
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
                bytes: 0,
                packets: 0,
            },
        );
        self.timers
            .set_or_cancel(Timer::Child(id, ChildTimer::Rekey), rekey_at);
        let expire_at = l.life_time.map(|t| ctx.now + t);
        self.timers
            .set_or_cancel(Timer::Child(id, ChildTimer::Expire), expire_at);
        Some(info)
    }

    /// Forgets a child SA and reports it.
    pub fn remove_child(&mut self, ctx: &mut Ctx<'_>, id: ChildSaId) {
        if let Some(c) = self.children.remove(&id) {
            self.timers.cancel_child(id);
            ctx.out.child_spis.remove(&c.info.inbound.spi.0);
            ctx.out.events.push_back(IkeEvent::ChildSaDeleted {
                ike_sa: self.id,
                child: id,
                spis: c.info.spis(),
            });
        }
    }

    pub(super) fn on_create_child_request(&mut self, ctx: &mut Ctx<'_>, p: &[Payload]) -> Response {
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
