//! What the image did with an inbound packet, told to a shell that traces
//! (the simulator): the routing stack's note and decision (Fig. 8) and
//! the target stack's verdict (Figs. 7 and 9). Only recorded after
//! [`Image::set_trace`]; the daemon never asks, and pays nothing for it.

use super::{Image, ImageEvent};
use crate::sysplex::routing::{Decision, RouteNote};
use crate::sysplex::target::{TargetCounters, Verdict};

/// One step of an inbound packet, as [`ImageEvent::Inbound`].
#[derive(Debug, Clone)]
pub enum InboundNote {
    /// Fig. 8 at the routing stack: what it saw and what it decided.
    Routed { note: RouteNote, decision: Decision },
    /// Figs. 7 and 9 at this image's target stack.
    Target(TargetNote),
    /// The image's own IP layer answered an ICMP echo for an owned DVIPA.
    EchoAnswered,
}

/// How a packet reached the target stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetVia {
    /// From this image's own routing stack.
    Direct,
    /// GRE from an XCF data link, the link check passed.
    Gre,
    /// GRE-in-UDP from an XCF data link, the link check passed.
    GreInUdp,
}

/// The target stack's verdict on one packet.
#[derive(Debug, Clone)]
pub struct TargetNote {
    pub via: TargetVia,
    pub verdict: Verdict,
    /// The filter's verdict on it (`trace::verdict` rendering), if one ran.
    pub filter: Option<String>,
    /// The opens so far, when this packet was opened with a shadow SA.
    pub opened: Option<u64>,
    /// The inbound filter was skipped because the routing stack filtered.
    pub filter_skipped: bool,
}

/// The target counters a [`TargetNote`] compares (no allocation).
#[derive(Debug, Clone, Copy)]
pub(super) struct Before {
    opened: u64,
    filter_skipped: u64,
}

impl Before {
    pub(super) fn of(c: &TargetCounters) -> Self {
        Self {
            opened: c.opened,
            filter_skipped: c.filter_skipped,
        }
    }
}

impl Image {
    /// Records [`ImageEvent::Inbound`] notes from now on (`true`), or not.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// Queues `note` when tracing.
    pub(super) fn note(&mut self, note: impl FnOnce() -> InboundNote) {
        if self.trace {
            self.events.push_back(ImageEvent::Inbound(note()));
        }
    }

    /// Queues the target's verdict when tracing.
    pub(super) fn note_target(&mut self, via: TargetVia, before: Before, verdict: &Verdict) {
        if !self.trace {
            return;
        }
        let after = self.target.counters();
        let opened = (after.opened > before.opened).then_some(after.opened);
        let filter_skipped = after.filter_skipped > before.filter_skipped;
        let filter = self
            .target
            .last_filter()
            .map(|(f, under)| crate::trace::verdict(f, under.map(|u| u.spi)));
        let note = TargetNote {
            via,
            verdict: verdict.clone(),
            filter,
            opened,
            filter_skipped,
        };
        self.events
            .push_back(ImageEvent::Inbound(InboundNote::Target(note)));
    }
}
