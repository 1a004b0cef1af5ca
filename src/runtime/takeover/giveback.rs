//! VIPA giveback in the I/O shell (the protocol steps are the image's,
//! see [`crate::sysplex::image`]'s giveback module): the holder's CF
//! writes run on the image's CF task, the owner takes the DVIPA back with
//! the takeover's shell part ([`Takeover::start_acquire`]) and tells the
//! holder once its gratuitous ARP went out; the holder then stops
//! advertising the DVIPA (its `ext` rule and, unless it serves it as a
//! target, its `lo` address), its IKE stops answering for it, and the
//! giveback is counted and kept for `status --json`.

use serde::Serialize;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use super::{bump, lock, Takeover};
use crate::runtime::image::ImageNode;
use crate::sysplex::config::Moveable;
use crate::sysplex::image::{GivebackState, ImageEvent};

/// One giveback this image (the holder) carried out, for `status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct GivebackEvent {
    pub dvipa: Ipv4Addr,
    /// The owner it went back to.
    pub to: String,
    /// SA pairs and connections the holder's routing stack let go of (the
    /// owner continues them).
    pub sa_pairs: usize,
    pub connections: usize,
    /// From the start (MOVING) to the owner's `Taken`.
    pub took_ms: u64,
    /// Since this daemon started.
    pub at_ms: u64,
}

impl Takeover {
    /// What the image tells of a giveback it carries out as the holder.
    pub(super) fn on_giveback_event(self: &Arc<Self>, ev: ImageEvent) {
        match ev {
            ImageEvent::GivebackDecided {
                dvipa,
                to,
                moveable,
                connections,
            } => {
                let waits = moveable == Moveable::WhenIdle && connections > 0;
                if waits {
                    tracing::warn!(
                        "{}: {dvipa}: owner {to} is back; MOVEABLE WHENIDLE: waiting for {connections} connections to end",
                        self.me
                    );
                } else {
                    tracing::warn!(
                        "{}: {dvipa}: owner {to} is back; giving it back (MOVING, {connections} connections)",
                        self.me
                    );
                    lock(&self.giving).insert(dvipa, Instant::now());
                }
            }
            ImageEvent::GivebackStopped { dvipa, why } => {
                lock(&self.giving).remove(&dvipa);
                bump(&self.counters.givebacks_stopped, 1);
                tracing::error!("{}: {dvipa}: giveback stopped, keeping it: {why}", self.me);
            }
            ImageEvent::GaveBack {
                dvipa,
                to,
                released,
            } => {
                let t0 = lock(&self.giving).remove(&dvipa);
                let event = GivebackEvent {
                    dvipa,
                    to,
                    sa_pairs: released.pairs,
                    connections: released.connections,
                    took_ms: t0.map_or(0, |t| t.elapsed().as_millis() as u64),
                    at_ms: self.started.elapsed().as_millis() as u64,
                };
                let (t, node) = (Arc::clone(self), self.node.get().cloned());
                tokio::spawn(async move {
                    if let Some(node) = node {
                        t.release(&node, event).await;
                    }
                });
            }
            other => tracing::debug!("{other:?}"),
        }
    }

    /// The holder's shell part of step 3: stop advertising `event.dvipa`.
    async fn release(&self, node: &ImageNode, event: GivebackEvent) {
        let dvipa = event.dvipa;
        node.remove_owned(dvipa);
        let served = node.serves(dvipa);
        if let Err(e) = crate::runtime::image::unplumb_owned(&node.links, dvipa, served).await {
            tracing::error!("{}: {dvipa}: unplumbing after the giveback: {e:#}", self.me);
        }
        if let Some(ike) = self.ike.get() {
            ike.remove_dvipa(dvipa);
        }
        lock(&self.adopted).retain(|(d, _, _)| *d != dvipa);
        bump(&self.counters.givebacks, 1);
        tracing::warn!(
            "{}: {dvipa} given back to {} in {} ms: {} SA pairs and {} connections continue there",
            self.me,
            event.to,
            event.took_ms,
            event.sa_pairs,
            event.connections
        );
        lock(&self.gave).push(event);
    }

    /// The givebacks for `status --json`.
    pub(super) fn givebacks(&self) -> Vec<GivebackEvent> {
        lock(&self.gave).clone()
    }
}

/// How `netstat vipadcfg` tells a giveback under way.
pub(super) fn describe(state: &GivebackState) -> String {
    match state {
        GivebackState::WaitingIdle { to, connections } => {
            format!("to {to} when idle ({connections} connections)")
        }
        GivebackState::Flushing { to } => format!("to {to}: SAs and DCT into the CF"),
        GivebackState::Offered { to } => format!("to {to}: offered"),
        GivebackState::Taking { from } => format!("from {from}: taking back"),
    }
}
