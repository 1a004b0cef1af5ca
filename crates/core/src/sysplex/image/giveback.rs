//! VIPA giveback: the stack that holds a DVIPA (a VIPABACKUP that took it
//! over) gives it back to its VIPADEFINE owner once the owner is active
//! again, as the owner's VIPADEFINE says ([`Moveable`]): MOVEABLE
//! IMMEDIATE at once, MOVEABLE WHENIDLE once the holder has no connection
//! of the DVIPA left (until then new connections stay with the holder).
//! z/OS Communications Server: "causes the backup stack to relinquish
//! ownership of the DVIPA and return to being a backup stack" (IP
//! Configuration Guide, "Manually initiating takeover for an individual
//! dynamic VIPA"); "Any existing connections on this stack will be
//! maintained by the new owning stack until the connections are closed.
//! All new connection requests will be directed to the new owning stack"
//! (the MIB's `ibmMvsDVIPAMoveable`, immediate(2)); the stack that still
//! routes a DVIPA's connections while it moves shows it MOVING (IP
//! Configuration Reference, VIPAROUTE).
//!
//! The state moves through the CF as at a takeover (`super::takeover`):
//!
//! 1. **Holder** (its watch sees the owner live, [`Image::evaluate_givebacks`]):
//!    the DVIPA is MOVING (its routing stack makes no new connection:
//!    [`crate::sysplex::routing::RouteDrop::Moving`], the client's next SYN
//!    reaches the owner); every SA pair and DCT entry of the DVIPA is
//!    written to the CF (what the checkpoint journal may not have written
//!    yet), then [`GivebackStep::Offer`] goes to the owner.
//! 2. **Owner** (on the offer): claims the DVIPA by compare-and-swap on the
//!    owner record (which must still name the holder), reads and adopts the
//!    SA pairs and the connections (every one continues on its target, the
//!    holder's included: the holder did not fail), and the shell plumbs the
//!    DVIPA and announces it by gratuitous ARP ([`ImageEvent::PlumbDvipa`]);
//!    then ([`Image::handle_dvipa_announced`]) [`GivebackStep::Taken`] goes
//!    to the holder.
//! 3. **Holder** (on `Taken`): its routing stack lets go of the DVIPA's
//!    distributions, connections and SA pairs (no CF delete: the records
//!    are the owner's now), it owns it no more, its watch names the owner,
//!    and the shell stops advertising it ([`ImageEvent::GaveBack`]).
//!
//! The sequence-number structures stay in the CF throughout, so every
//! sender keeps drawing from the same counters (RFC 4303 §3.3.3). The IKE
//! SA is not moved: as at a takeover, the owner's IKE renegotiates with
//! the peers (z/OS: "When a DVIPA is moved during a DVIPA takeover
//! (planned or unplanned), new Sysplex-Wide Security Associations are
//! automatically reestablished", IP Configuration Guide, "DVIPA takeover"
//! under Sysplex-Wide Security Associations); the adopted child SAs carry
//! the traffic until then.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;

use serde::Serialize;

use super::{CfAsk, CfAskId, Image, ImageEvent, ImageId};
use crate::sysplex::config::Moveable;
use crate::sysplex::routing::DctChange;
use crate::sysplex::takeover::{self as tk, SaRecord};
use crate::sysplex::xcf::{BundleInstall, CfRequest, CfResponse, GivebackStep, XcfMessage};
use crate::time::Instant;

/// Giveback requests are numbered apart from takeover and sequence-number
/// requests.
const GIVEBACK_IDS: u64 = (1 << 63) | (1 << 62);

/// Where a giveback is, as `netstat vipadcfg` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum GivebackState {
    /// Holder, MOVEABLE WHENIDLE: the owner is back, `connections` remain.
    WaitingIdle { to: String, connections: usize },
    /// Holder: MOVING, the DVIPA's state is being written to the CF.
    Flushing { to: String },
    /// Holder: MOVING, the owner was offered the DVIPA.
    Offered { to: String },
    /// Owner: taking the DVIPA back from `from`.
    Taking { from: String },
}

/// The givebacks of one image.
#[derive(Debug, Default)]
pub(super) struct Givebacks {
    next_id: u64,
    asks: VecDeque<(CfAskId, CfRequest)>,
    /// CF writes in flight, by the DVIPA they are for.
    in_flight: BTreeMap<CfAskId, Ipv4Addr>,
    state: BTreeMap<Ipv4Addr, GivebackState>,
    /// Owner: images that serve connections the adoption restored but are
    /// no targets of the owner's VIPADISTRIBUTE; they get the DVIPA's SAs
    /// (and their deletes) too, so those connections keep going.
    pub(super) extra_targets: BTreeMap<Ipv4Addr, BTreeSet<ImageId>>,
}

impl Givebacks {
    fn ask(&mut self, dvipa: Ipv4Addr, req: CfRequest) {
        let id = CfAskId(GIVEBACK_IDS | self.next_id);
        self.next_id += 1;
        self.asks.push_back((id, req));
        self.in_flight.insert(id, dvipa);
    }

    pub(super) fn poll_request(&mut self) -> Option<CfAsk> {
        let (id, req) = self.asks.pop_front()?;
        Some(CfAsk::Kv { id, req })
    }

    pub(super) fn owns(&self, id: CfAskId) -> bool {
        self.in_flight.contains_key(&id)
    }

    fn pending_for(&self, dvipa: Ipv4Addr) -> usize {
        self.in_flight.values().filter(|d| **d == dvipa).count()
    }
}

impl Image {
    /// Where the giveback of `dvipa` is, if one is under way.
    pub fn giveback_state(&self, dvipa: Ipv4Addr) -> Option<&GivebackState> {
        self.givebacks.state.get(&dvipa)
    }

    /// Holder: for every DVIPA it holds whose owner is live, starts the
    /// giveback its MOVEABLE asks for (run on peer changes and every tick:
    /// WHENIDLE waits for the last connection to end); a giveback whose
    /// owner went away again stops.
    pub fn evaluate_givebacks(&mut self) {
        let live = &self.watches.live;
        let mut decisions = Vec::new();
        for (dvipa, w) in &self.watches.dvipas {
            let owner = w.watch.owner_is_back(|n| live.contains(n));
            decisions.push((*dvipa, owner.map(str::to_string), w.watch.moveable));
        }
        for (dvipa, owner, moveable) in decisions {
            match owner {
                Some(to) => self.owner_is_back(dvipa, to, moveable),
                None => self.owner_not_back(dvipa),
            }
        }
    }

    fn owner_is_back(&mut self, dvipa: Ipv4Addr, to: String, moveable: Moveable) {
        let state = self.givebacks.state.get(&dvipa);
        let moving = matches!(
            state,
            Some(GivebackState::Flushing { .. } | GivebackState::Offered { .. })
        );
        if moving {
            return;
        }
        let connections = self.routing.as_ref().map_or(0, |r| r.connections_of(dvipa));
        if moveable == Moveable::WhenIdle && connections > 0 {
            let waiting = GivebackState::WaitingIdle {
                to: to.clone(),
                connections,
            };
            if state.is_none() {
                self.events.push_back(ImageEvent::GivebackDecided {
                    dvipa,
                    to,
                    moveable,
                    connections,
                });
            }
            self.givebacks.state.insert(dvipa, waiting);
            return;
        }
        self.events.push_back(ImageEvent::GivebackDecided {
            dvipa,
            to: to.clone(),
            moveable,
            connections,
        });
        self.start_giveback(dvipa, to);
    }

    fn owner_not_back(&mut self, dvipa: Ipv4Addr) {
        let giving = matches!(
            self.givebacks.state.get(&dvipa),
            Some(
                GivebackState::WaitingIdle { .. }
                    | GivebackState::Flushing { .. }
                    | GivebackState::Offered { .. }
            )
        );
        if giving {
            self.giveback_stopped(dvipa, "its owner is gone again".into());
        }
    }

    /// Step 1 (see the module doc): MOVING, the DVIPA's SA pairs and
    /// connections into the CF.
    fn start_giveback(&mut self, dvipa: Ipv4Addr, to: String) {
        let Some(r) = self.routing.as_mut() else {
            return;
        };
        r.set_moving(dvipa, true);
        let mut writes: Vec<CfRequest> = r
            .pairs()
            .iter()
            .filter(|p| p.install.dvipa == dvipa)
            .map(|p| {
                let rec = match &p.ah {
                    None => SaRecord::Pair(Box::new(p.install.clone())),
                    Some(ah) => SaRecord::Bundle(Box::new(BundleInstall {
                        esp: p.install.clone(),
                        ah: ah.bundle.clone(),
                    })),
                };
                CfRequest::Put {
                    key: rec.key().into(),
                    value: tk::encode(&rec),
                }
            })
            .collect();
        let conns: Vec<DctChange> = r.connection_records(dvipa);
        writes.extend(conns.iter().map(tk::conn_request));
        self.givebacks
            .state
            .insert(dvipa, GivebackState::Flushing { to: to.clone() });
        if writes.is_empty() {
            return self.offer(dvipa, to);
        }
        for w in writes {
            self.givebacks.ask(dvipa, w);
        }
    }

    fn offer(&mut self, dvipa: Ipv4Addr, to: String) {
        self.givebacks
            .state
            .insert(dvipa, GivebackState::Offered { to: to.clone() });
        let msg = XcfMessage::Giveback {
            dvipa,
            step: GivebackStep::Offer,
        };
        self.send_xcf(ImageId::from(to), msg);
    }

    /// The CF's answer to a giveback write.
    pub(super) fn giveback_cf_response(&mut self, id: CfAskId, response: CfResponse) {
        let Some(dvipa) = self.givebacks.in_flight.remove(&id) else {
            return;
        };
        if !matches!(response, CfResponse::Done) {
            let why = format!("the CF answered {response:?}");
            return self.giveback_stopped(dvipa, why);
        }
        if self.givebacks.pending_for(dvipa) > 0 {
            return;
        }
        if let Some(GivebackState::Flushing { to }) = self.givebacks.state.get(&dvipa) {
            let to = to.clone();
            self.offer(dvipa, to);
        }
    }

    /// A giveback write did not reach the CF.
    pub(super) fn giveback_cf_failure(&mut self, id: CfAskId, why: String) {
        if let Some(dvipa) = self.givebacks.in_flight.remove(&id) {
            self.giveback_stopped(dvipa, why);
        }
    }

    /// The holder keeps the DVIPA (and makes connections for it again).
    fn giveback_stopped(&mut self, dvipa: Ipv4Addr, why: String) {
        self.givebacks.state.remove(&dvipa);
        self.givebacks.in_flight.retain(|_, d| *d != dvipa);
        if let Some(r) = self.routing.as_mut() {
            r.set_moving(dvipa, false);
        }
        self.events
            .push_back(ImageEvent::GivebackStopped { dvipa, why });
    }

    /// A giveback step from `from` over XCF.
    pub(super) fn on_giveback(
        &mut self,
        now: Instant,
        from: &ImageId,
        dvipa: Ipv4Addr,
        step: GivebackStep,
    ) {
        match step {
            GivebackStep::Offer => self.take_back(now, from, dvipa),
            GivebackStep::Taken => self.gave_back(from, dvipa),
            GivebackStep::Declined => {
                if self.offered_to(dvipa, from) {
                    self.giveback_stopped(dvipa, format!("{from} declined it"));
                }
            }
        }
    }

    /// Whether a giveback of `dvipa` is under way here (as its holder or
    /// as the owner taking it back).
    pub(super) fn giveback_under_way(&self, dvipa: Ipv4Addr) -> bool {
        self.givebacks.state.contains_key(&dvipa)
    }

    fn offered_to(&self, dvipa: Ipv4Addr, to: &ImageId) -> bool {
        matches!(self.givebacks.state.get(&dvipa),
            Some(GivebackState::Offered { to: t }) if *t == *to.as_str())
    }

    /// Step 2 at the owner: claim, adopt, plumb (the takeover's steps,
    /// with nothing failed).
    fn take_back(&mut self, _now: Instant, from: &ImageId, dvipa: Ipv4Addr) {
        let owner = self
            .watches
            .dvipas
            .get(&dvipa)
            .is_some_and(|w| w.watch.is_owner());
        let plan = owner
            .then(|| self.takeover_plan(dvipa, Some(from.to_string()), true))
            .flatten();
        let Some(plan) = plan else {
            let msg = XcfMessage::Giveback {
                dvipa,
                step: GivebackStep::Declined,
            };
            return self.send_xcf(from.clone(), msg);
        };
        if let Some(w) = self.watches.dvipas.get_mut(&dvipa) {
            w.watch.holder = Some(self.id.to_string());
            w.watch.took_from = Some(from.to_string());
        }
        let state = GivebackState::Taking {
            from: from.to_string(),
        };
        self.givebacks.state.insert(dvipa, state);
        self.events.push_back(ImageEvent::TakingBack {
            dvipa,
            from: from.to_string(),
        });
        self.start_takeover(plan);
    }

    /// The owner's takeover of a DVIPA offered back did not happen: the
    /// holder keeps it.
    pub(super) fn take_back_failed(&mut self, dvipa: Ipv4Addr) {
        if let Some(GivebackState::Taking { from }) = self.givebacks.state.remove(&dvipa) {
            let msg = XcfMessage::Giveback {
                dvipa,
                step: GivebackStep::Declined,
            };
            self.send_xcf(ImageId::from(from), msg);
        }
    }

    /// The shell announced `dvipa` on the LAN (gratuitous ARP) after
    /// [`ImageEvent::PlumbDvipa`]: a DVIPA taken back is the owner's now,
    /// and the holder is told to let go of it.
    pub fn handle_dvipa_announced(&mut self, dvipa: Ipv4Addr) {
        if let Some(GivebackState::Taking { from }) = self.givebacks.state.remove(&dvipa) {
            let msg = XcfMessage::Giveback {
                dvipa,
                step: GivebackStep::Taken,
            };
            self.send_xcf(ImageId::from(from), msg);
        }
    }

    /// Step 3 at the holder: the owner has the DVIPA.
    fn gave_back(&mut self, to: &ImageId, dvipa: Ipv4Addr) {
        if !self.offered_to(dvipa, to) {
            return;
        }
        self.givebacks.state.remove(&dvipa);
        let old_targets = self.distribution_targets();
        let released = self
            .routing
            .as_mut()
            .map(|r| r.release(dvipa))
            .unwrap_or_default();
        self.stack.remove_owned(dvipa);
        self.givebacks.extra_targets.remove(&dvipa);
        // Its own shadow copies, unless the owner made it a target of the
        // DVIPA (then they came again from the owner, before `Taken`).
        let me = self.id.to_string();
        self.target.forget_pairs_of(dvipa, &me);
        if let Some(w) = self.watches.dvipas.get_mut(&dvipa) {
            w.watch.holder = Some(to.to_string());
            w.watch.givebacks += 1;
        }
        // The targets hear at once that this stack routes the DVIPA no more.
        if let Some(list) = self.routing.as_ref().map(|r| r.vipa_list()) {
            let me = self.id.clone();
            for t in old_targets.into_iter().filter(|t| *t != me) {
                self.send_xcf(t, list.clone());
            }
        }
        self.events.push_back(ImageEvent::GaveBack {
            dvipa,
            to: to.to_string(),
            released,
        });
    }

    /// After an adoption: the images that serve restored connections of
    /// `dvipa` outside this stack's VIPADISTRIBUTE targets get its SAs too
    /// (they hold the previous holder's copies; the new owner's IKE
    /// deletes and replaces them).
    pub(super) fn shadow_restored_targets(&mut self, dvipa: Ipv4Addr) {
        let Some(r) = self.routing.as_ref() else {
            return;
        };
        let targets: BTreeSet<String> = r.targets_of(dvipa).into_iter().map(|t| t.0).collect();
        let extra: BTreeSet<ImageId> = r
            .connection_records(dvipa)
            .into_iter()
            .filter_map(|c| match c {
                DctChange::Made { target, .. } => Some(target),
                DctChange::Ended(_) => None,
            })
            .filter(|t| !targets.contains(t) && *t != *self.id.as_str())
            .map(ImageId::from)
            .collect();
        let msgs: Vec<XcfMessage> = r
            .pairs()
            .iter()
            .filter(|p| p.install.dvipa == dvipa)
            .map(|p| p.install_msg())
            .collect();
        for t in &extra {
            for m in &msgs {
                self.send_xcf(t.clone(), m.clone());
            }
        }
        if !extra.is_empty() {
            self.givebacks.extra_targets.insert(dvipa, extra);
        }
    }
}
