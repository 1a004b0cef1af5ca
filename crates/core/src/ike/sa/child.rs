//! Child SAs: negotiated as responder in IKE_AUTH or CREATE_CHILD_SA
//! (RFC 7296 §1.3.1), installed, counted and removed.

use crate::ike::api::{ChildSaId, ChildSaInfo, IkeEvent, Role};
use crate::ike::dh::{DhError, DhGroup, Zeroizing};
use crate::ike::proposal::{select_or_notify, KeMode};
use crate::ike::ts;
use crate::wire::ike::{KeyExchange, Notify, NotifyType, Payload, ProtocolId, Sa, TrafficSelector};

use super::payloads::{
    find_ke, find_nonce, find_notify, find_sa, find_ts, notify, pfs_hint, spi32,
};
use super::{ChildState, Ctx, IkeSa, Negotiated, Response, Task};

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
        let (narrowed_i, narrowed_r) = match self.narrow_selectors(ctx, tsi, tsr) {
            Ok(n) => n,
            Err(t) => return vec![notify(t)],
        };
        let Ok((ke_out, g_ir)) = pfs_respond(ctx, ke.flatten(), chosen.dh) else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let Some(crypto) = &self.crypto else {
            return vec![notify(NotifyType::InvalidSyntax)];
        };
        let g_ir = g_ir.as_ref().map(|g| g.as_slice());
        let Ok(keys) = crypto.child_keys(g_ir, ni, nr, &chosen) else {
            return vec![notify(NotifyType::NoProposalChosen)];
        };
        let spi_in = ctx.child_spi();
        let proposal = chosen.to_proposal(spi_in.to_be_bytes().to_vec());
        let negotiated = Negotiated {
            chosen,
            spi_in,
            spi_out,
            keys,
        };
        let (local_ts, remote_ts) = (narrowed_r.clone(), narrowed_i.clone());
        let Some(info) = self.install_child(ctx, Role::Responder, negotiated, local_ts, remote_ts)
        else {
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
        self.announce_child(ctx, info, rekey);
        let mut out = vec![Payload::Sa(Sa {
            proposals: vec![proposal],
        })];
        // CREATE_CHILD_SA has Nr and, with PFS, KEr; IKE_AUTH neither.
        if ke.is_some() {
            out.push(Payload::Nonce(nr.to_vec()));
        }
        out.extend(ke_out.map(Payload::Ke));
        out.extend([Payload::TsI(narrowed_i), Payload::TsR(narrowed_r)]);
        out
    }

    /// The initiator's selectors narrowed to the peer's configuration
    /// (§2.9), or the notify when nothing is left.
    fn narrow_selectors(
        &mut self,
        ctx: &mut Ctx<'_>,
        tsi: &[TrafficSelector],
        tsr: &[TrafficSelector],
    ) -> Result<(Vec<TrafficSelector>, Vec<TrafficSelector>), NotifyType> {
        let Some(peer) = &self.peer else {
            return Err(NotifyType::InvalidSyntax);
        };
        let narrowed_i = ts::narrow(tsi, &peer.remote_ts.resolve(*self.remote.ip()));
        let narrowed_r = ts::narrow(tsr, &peer.local_ts.resolve(ctx.local_ip));
        if narrowed_i.is_empty() || narrowed_r.is_empty() {
            self.child_failed(ctx, NotifyType::TsUnacceptable);
            return Err(NotifyType::TsUnacceptable);
        }
        Ok((narrowed_i, narrowed_r))
    }

    /// Reports a new child SA, or one that replaces `rekey` (§2.8);
    /// returns the replaced child.
    pub(super) fn announce_child(
        &mut self,
        ctx: &mut Ctx<'_>,
        info: ChildSaInfo,
        rekey: Option<ChildSaId>,
    ) -> Option<ChildSaId> {
        match rekey.and_then(|old| self.children.get_mut(&old).map(|c| (old, c))) {
            Some((old, c)) => {
                c.state = ChildState::Rekeyed;
                let old_spis = c.info.spis();
                ctx.out.events.push_back(IkeEvent::ChildSaRekeyed {
                    old,
                    old_spis,
                    new: info,
                });
                Some(old)
            }
            None => {
                ctx.out.events.push_back(IkeEvent::ChildSaEstablished(info));
                None
            }
        }
    }

    pub(super) fn child_failed(&mut self, ctx: &mut Ctx<'_>, notify: NotifyType) {
        ctx.out.events.push_back(IkeEvent::ChildSaFailed {
            ike_sa: self.id,
            notify,
        });
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

/// Our KE payload and g^ir (new), both `None` without PFS.
type PfsResponse = (Option<KeyExchange>, Option<Zeroizing<Vec<u8>>>);

/// PFS as responder (§1.3.1, §2.17): our KE payload and g^ir (new) when
/// the peer sent a KE and the chosen proposal has a group.
fn pfs_respond(
    ctx: &mut Ctx<'_>,
    ke: Option<&KeyExchange>,
    group: Option<DhGroup>,
) -> Result<PfsResponse, DhError> {
    let (Some(k), Some(group)) = (ke, group) else {
        return Ok((None, None));
    };
    let dh = ctx.dh(group);
    let g_ir = dh.shared_secret(&k.data)?;
    let ours = KeyExchange {
        group: group.id(),
        data: dh.public_value().to_vec(),
    };
    Ok((Some(ours), Some(g_ir)))
}
