//! Timers.

use core::time::Duration;

use crate::ike::api::{ChildSaId, DeleteReason, Direction};

use super::{ChildState, Ctx, IkeSa, State, Task};

impl IkeSa {
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
}
