//! The requests we start: queued tasks that go out while the window of
//! one outstanding request is free (RFC 7296 §2.3).

use crate::wire::ike::{Delete, ExchangeType, Payload, ProtocolId};

use super::{ChildState, Ctx, IkeSa, Request, State, Task};

impl IkeSa {
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
}
