//! When this image takes a DVIPA over: the [`Watch`] of every DVIPA it
//! defines or backs up, the peers it sees live, and (for a restarted
//! daemon) a grace period for the holders it knows of to connect. The
//! shell tells peers going down and up ([`Image::handle_peer_down`],
//! [`Image::handle_peer_up`]); [`Image::evaluate_watches`] (also run by
//! [`Image::handle_timeout`]) then decides, tells
//! [`ImageEvent::WatchDecided`] and starts the takeover itself
//! ([`Image::start_takeover`]) with the statements the shell gave once
//! ([`Image::watch_dvipa`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::{Image, ImageEvent, TakeoverPlan};
use crate::sysplex::config::VipaDistribute;
use crate::sysplex::routing::RoutingStack;
use crate::sysplex::spec::SysplexSpec;
use crate::sysplex::takeover::{self as tk, Watch, WatchAction};
use crate::time::Instant;

/// One watched DVIPA with this image's VIPADISTRIBUTE statements for it.
#[derive(Debug)]
pub(super) struct Watched {
    pub(super) watch: Watch,
    dists: Vec<VipaDistribute>,
}

/// The image's watches and what they are evaluated with.
#[derive(Debug, Default)]
pub(super) struct Watches {
    pub(super) dvipas: BTreeMap<Ipv4Addr, Watched>,
    /// The peers this image sees live.
    pub(super) live: BTreeSet<String>,
    /// Until when the holders it knows of may still connect (`None`: no
    /// grace, or it is over).
    grace_until: Option<Instant>,
    /// Peers changed since the last evaluation.
    pending: bool,
    sysplex: Option<Arc<SysplexSpec>>,
    /// The routing stack to start from when this image has none.
    fresh: Option<RoutingStack>,
}

impl Watches {
    /// Whether every holder this image knows of is live (or itself).
    fn all_seen(&self, me: &str) -> bool {
        self.dvipas.values().all(|w| {
            w.watch
                .holder
                .as_deref()
                .is_none_or(|h| h == me || self.live.contains(h))
        })
    }
}

impl Image {
    /// The sysplex (for where recorded connections continue) and the
    /// routing stack to start from when this image has none, for the
    /// takeovers its watches start.
    pub fn set_watch_context(&mut self, sysplex: Arc<SysplexSpec>, fresh: Option<RoutingStack>) {
        self.watches.sysplex = Some(sysplex);
        self.watches.fresh = fresh;
    }

    /// Watches `watch.dvipa`, with this image's statements `dists` for it.
    pub fn watch_dvipa(&mut self, watch: Watch, dists: Vec<VipaDistribute>) {
        self.watches
            .dvipas
            .insert(watch.dvipa, Watched { watch, dists });
    }

    /// No evaluation until every holder this image knows of is live, or
    /// `until` has passed (a holder that never came is gone).
    pub fn set_watch_grace(&mut self, until: Instant) {
        self.watches.grace_until = Some(until);
        self.watches.pending = true;
    }

    /// The watch of `dvipa`.
    pub fn watch(&self, dvipa: Ipv4Addr) -> Option<&Watch> {
        self.watches.dvipas.get(&dvipa).map(|w| &w.watch)
    }

    /// Every watch, by DVIPA.
    pub fn watches(&self) -> impl Iterator<Item = &Watch> {
        self.watches.dvipas.values().map(|w| &w.watch)
    }

    /// The peer `peer` is live (connected, or heard from).
    pub(super) fn watch_peer_up(&mut self, peer: &str) {
        self.watches.live.insert(peer.to_string());
        self.watches.pending = true;
    }

    /// The peer `peer` is gone (disconnected, or silent too long).
    pub(super) fn watch_peer_down(&mut self, peer: &str) {
        self.watches.live.remove(peer);
        self.watches.pending = true;
    }

    /// Whether the watches are evaluated (no start-up grace to wait for).
    pub(super) fn watches_evaluated(&self) -> bool {
        self.watches.grace_until.is_none()
    }

    /// When the grace period ends, if evaluations wait for it.
    pub(super) fn watch_deadline(&self) -> Option<Instant> {
        self.watches.grace_until.filter(|_| self.watches.pending)
    }

    /// Evaluates every watch when peers changed (and the grace period is
    /// over): tells each decision, and starts the takeovers they ask for.
    pub fn evaluate_watches(&mut self, now: Instant) {
        if !self.watches.pending {
            return;
        }
        if let Some(until) = self.watches.grace_until {
            if now < until && !self.watches.all_seen(self.id.as_str()) {
                return;
            }
            self.watches.grace_until = None;
        }
        self.watches.pending = false;
        let me = self.id.as_str().to_string();
        let dvipas: Vec<Ipv4Addr> = self.watches.dvipas.keys().copied().collect();
        for dvipa in dvipas {
            let Some(w) = self.watches.dvipas.get_mut(&dvipa) else {
                continue;
            };
            let live = &self.watches.live;
            let holder = w.watch.holder.clone();
            let successor = tk::successor(w.watch.candidates(), |n| n == me || live.contains(n))
                .map(str::to_string);
            let action = w.watch.evaluate(|n| live.contains(n));
            self.events.push_back(ImageEvent::WatchDecided {
                dvipa,
                holder,
                successor,
                action: action.clone(),
            });
            if let WatchAction::Acquire { previous } = action {
                self.start_watched_takeover(dvipa, previous);
            }
        }
        self.evaluate_givebacks();
    }

    fn start_watched_takeover(&mut self, dvipa: Ipv4Addr, previous: Option<String>) {
        if let Some(plan) = self.takeover_plan(dvipa, previous, false) {
            self.start_takeover(plan);
        }
    }

    /// A restarted image takes the DVIPA it held before over again from
    /// what the CF holds (the takeover's steps from nobody: the claim
    /// finds its own owner record); `false` without its watch, or when a
    /// takeover of the DVIPA is under way already: a holder that offered
    /// it back before this image reached the CF (the giveback's takeover
    /// holds it, and a second claim would lose to it and leave the
    /// address unplumbed).
    pub fn take_over_held(&mut self, dvipa: Ipv4Addr) -> bool {
        if self.takeovers.running_for(dvipa) || self.giveback_under_way(dvipa) {
            return false;
        }
        match self.takeover_plan(dvipa, None, false) {
            Some(plan) => {
                self.start_takeover(plan);
                true
            }
            None => false,
        }
    }

    /// The plan of a takeover (or a giveback's, `giveback`) of the watched
    /// `dvipa` from `previous`; `None` without the watch's context.
    pub(super) fn takeover_plan(
        &mut self,
        dvipa: Ipv4Addr,
        previous: Option<String>,
        giveback: bool,
    ) -> Option<TakeoverPlan> {
        let sysplex = self.watches.sysplex.clone()?;
        let dists = self.watches.dvipas.get(&dvipa)?.dists.clone();
        let fresh = if self.routing.is_none() {
            self.watches.fresh.take()
        } else {
            None
        };
        Some(TakeoverPlan {
            dvipa,
            previous,
            dists,
            fresh,
            sysplex,
            giveback,
        })
    }
}
