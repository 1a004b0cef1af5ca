//! Every timer of one IKE SA in one table, with one next-deadline query
//! and one dispatch on expiry: retransmission (RFC 7296 §2.1, §2.4), the
//! half-open limit (§2.6), the wait of a superseded SA for its DELETE
//! (§2.18), IKE SA and child SA rekeys and expiry (§2.8), and liveness
//! checks (§2.4).

use std::collections::BTreeMap;

use crate::ike::api::{ChildSaId, DeleteReason, Direction};
use crate::time::Instant;

use super::{ChildState, Ctx, IkeSa, State, Task};

/// What a child SA's timer does when it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ChildTimer {
    /// The hard lifetime: the child is deleted (§2.8).
    Expire,
    /// The soft lifetime: the child is rekeyed (§2.8).
    Rekey,
}

/// One timer of an IKE SA. The declaration order is the dispatch order
/// when several are due at once: what may end the SA first, then what
/// queues exchanges, the liveness check last (it is only queued when no
/// other exchange is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Our outstanding request is sent again, or the peer is given up
    /// (§2.1, §2.4).
    Retransmit,
    /// A responder's half-open SA that got no IKE_AUTH is dropped (§2.6).
    HalfOpen,
    /// An SA superseded by a rekey that got no DELETE is dropped (§2.18).
    Linger,
    /// The IKE SA is rekeyed (§1.3.2, §2.8).
    RekeyIke,
    /// A child SA is deleted or rekeyed (§1.3.3, §2.8).
    Child(ChildSaId, ChildTimer),
    /// An empty INFORMATIONAL checks that the peer is alive (§2.4).
    Liveness,
}

impl Timer {
    /// Timers that only run while the SA is established; the others run
    /// in every state.
    fn needs_established(self) -> bool {
        matches!(self, Timer::RekeyIke | Timer::Child(..) | Timer::Liveness)
    }
}

/// The deadlines of one IKE SA's timers; a timer is set or absent.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    deadlines: BTreeMap<Timer, Instant>,
}

impl Timers {
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines.insert(timer, at);
    }

    /// Sets the timer to `at`, or cancels it when `at` is `None`.
    pub fn set_or_cancel(&mut self, timer: Timer, at: Option<Instant>) {
        match at {
            Some(at) => self.set(timer, at),
            None => self.cancel(timer),
        }
    }

    pub fn cancel(&mut self, timer: Timer) {
        self.deadlines.remove(&timer);
    }

    /// Cancels both timers of a child SA.
    pub fn cancel_child(&mut self, id: ChildSaId) {
        self.cancel(Timer::Child(id, ChildTimer::Expire));
        self.cancel(Timer::Child(id, ChildTimer::Rekey));
    }

    /// Removes every child SA timer, for the SA that takes the children
    /// over (§2.18).
    pub fn take_children(&mut self) -> Timers {
        let (children, own) = std::mem::take(&mut self.deadlines)
            .into_iter()
            .partition(|(t, _)| matches!(t, Timer::Child(..)));
        self.deadlines = own;
        Timers {
            deadlines: children,
        }
    }

    /// The earliest deadline of a timer that runs in the SA's state.
    pub fn next_deadline(&self, established: bool) -> Option<Instant> {
        self.deadlines
            .iter()
            .filter(|(t, _)| established || !t.needs_established())
            .map(|(_, at)| *at)
            .min()
    }

    fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.deadlines.get(&timer).is_some_and(|at| now >= *at)
    }

    /// The timers due at `now`, in dispatch order.
    fn due(&self, now: Instant) -> Vec<Timer> {
        self.deadlines
            .iter()
            .filter(|(_, at)| now >= **at)
            .map(|(t, _)| *t)
            .collect()
    }
}

impl IkeSa {
    /// The earliest time this SA needs [`IkeSa::on_timeout`].
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline(self.is_established())
    }

    /// Runs every timer that is due, then starts the exchanges they
    /// queued.
    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        for timer in self.timers.due(ctx.now) {
            if timer.needs_established() && !self.is_established() {
                return;
            }
            // An earlier timer of this round may have cancelled it.
            if !self.timers.is_due(timer, ctx.now) {
                continue;
            }
            if !self.on_timer(ctx, timer) {
                return;
            }
        }
        if self.is_established() {
            self.kick(ctx);
        }
    }

    /// Runs one due timer; `false` when the SA ends.
    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: Timer) -> bool {
        match timer {
            Timer::Retransmit => return self.retransmit(ctx),
            Timer::HalfOpen | Timer::Linger => {
                self.finish(None);
                return false;
            }
            Timer::RekeyIke => {
                self.timers.cancel(timer);
                self.enqueue(Task::RekeyIke);
            }
            Timer::Child(id, ChildTimer::Expire) => {
                self.timers.cancel_child(id);
                self.enqueue(Task::DeleteChild(id));
            }
            Timer::Child(id, ChildTimer::Rekey) => {
                // A child being rekeyed or deleted keeps its timer.
                if self.children.get(&id).map(|c| c.state) == Some(ChildState::Installed) {
                    self.timers.cancel(timer);
                    self.enqueue(Task::RekeyChild(id));
                }
            }
            Timer::Liveness => self.liveness_due(ctx),
        }
        true
    }

    /// Sends the outstanding request again with exponential backoff, or
    /// gives the peer up after the configured tries (§2.4); `false` when
    /// the SA ends.
    fn retransmit(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(p) = &mut self.pending else {
            self.timers.cancel(Timer::Retransmit);
            return true;
        };
        if p.tries >= ctx.config.retransmit_tries {
            self.peer_gone(ctx);
            return false;
        }
        p.tries += 1;
        let backoff = ctx
            .config
            .retransmit_timeout
            .saturating_mul(1 << p.tries.min(16));
        let (bytes, id) = (p.datagram.clone(), p.msg_id);
        self.timers.set(Timer::Retransmit, ctx.now + backoff);
        self.trace(
            ctx,
            Direction::Sent,
            self.remote,
            format!("retransmit request {id}"),
        );
        self.transmit(ctx, self.remote, self.local_port, &bytes);
        true
    }

    /// The peer did not answer (§2.4): the SA and its children go.
    fn peer_gone(&mut self, ctx: &mut Ctx<'_>) {
        let reason = match self.state {
            State::Rekeyed => None,
            _ => Some(DeleteReason::Timeout),
        };
        let ids: Vec<ChildSaId> = self.children.keys().copied().collect();
        for id in ids {
            self.remove_child(ctx, id);
        }
        self.finish(reason);
    }

    /// Queues a liveness check unless other exchanges will show the peer
    /// alive anyway, and sets the next one.
    fn liveness_due(&mut self, ctx: &mut Ctx<'_>) {
        let Some(interval) = ctx.config.dpd_interval else {
            self.timers.cancel(Timer::Liveness);
            return;
        };
        self.timers.set(Timer::Liveness, ctx.now + interval);
        if self.pending.is_none() && self.queue.is_empty() {
            self.enqueue(Task::Dpd);
        }
    }
}
