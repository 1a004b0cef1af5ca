//! INFORMATIONAL, responder (RFC 7296 §1.4): deletes and liveness checks.

use core::net::SocketAddrV4;

use crate::ike::api::{ChildSaId, DeleteReason, IkeEvent};
use crate::wire::ike::{Delete, NotifyType, Payload, ProtocolId};

use super::payloads::{find_notify, spi32};
use super::{Ctx, IkeSa, Response, State};

impl IkeSa {
    pub(super) fn on_informational_request(
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
}
