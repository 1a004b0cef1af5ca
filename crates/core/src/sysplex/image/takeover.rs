//! The protocol steps of a VIPA takeover at the image that takes a DVIPA
//! over (its VIPABACKUP), once the shell's watch decided it
//! ([`Image::start_takeover`]): the claim in the CF (the owner record read,
//! then swapped, [`tk::claim_request`]); the image becomes the DVIPA's
//! routing stack with its own VIPADISTRIBUTE statements for it and keeps a
//! DCT journal from then on (what the CF holds for the next takeover);
//! the SA pairs and connections are read from the CF and adopted
//! ([`tk::Adopter`]); the image owns the DVIPA and, once the shell plumbed it
//! ([`Image::handle_dvipa_plumbed`]), announces its VIPA list and SAs to
//! the targets. The CF requests leave through
//! [`Image::poll_cf_request`] ([`CfAsk::Kv`]) one at a time, each answer
//! ([`Image::handle_cf_response`]) letting the next step go; what only
//! the shell can do (the kernel plumbing, the gratuitous ARP, IKE) is
//! [`ImageEvent::PlumbDvipa`].

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::{CfAskId, Image, ImageEvent, SeqAsk};
use crate::sysplex::config::VipaDistribute;
use crate::sysplex::dct::ConnKey;
use crate::sysplex::routing::RoutingStack;
use crate::sysplex::spec::SysplexSpec;
use crate::sysplex::takeover::{self as tk, ConnRecord, OwnerRecord, SaRecord};
use crate::sysplex::xcf::{CfError, CfRequest, CfResponse};
use crate::time::Instant;

/// A request of the image for the CF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CfAsk {
    /// Sequence numbers (Fig. 10): answer with [`Image::handle_cf_reply`].
    Numbers(SeqAsk),
    /// A step of a takeover: answer with [`Image::handle_cf_response`].
    Kv { id: CfAskId, req: CfRequest },
}

/// What a takeover decided by the shell's watch needs.
#[derive(Debug)]
pub struct TakeoverPlan {
    pub dvipa: Ipv4Addr,
    /// The holder that is gone (`None`: nobody held it).
    pub previous: Option<String>,
    /// This image's VIPADISTRIBUTE statements for the DVIPA.
    pub dists: Vec<VipaDistribute>,
    /// The routing stack to start from when this image has none.
    pub fresh: Option<RoutingStack>,
    /// The sysplex, for where recorded connections continue.
    pub sysplex: Arc<SysplexSpec>,
    /// A giveback (`super::giveback`): `previous` did not fail, so its
    /// connections continue on it too.
    pub giveback: bool,
}

/// Where a takeover is: the request it waits for the answer to.
#[derive(Debug)]
enum Step {
    Owner,
    Claim,
    ListSas,
    Sa(VecDeque<String>),
    ListConns,
    Conn(VecDeque<(ConnKey, String)>),
}

#[derive(Debug)]
struct Running {
    plan: TakeoverPlan,
    step: Step,
    sas: Vec<SaRecord>,
    conns: Vec<(ConnKey, ConnRecord)>,
}

/// Takeovers under way, each waiting for one CF answer.
#[derive(Debug, Default)]
pub(super) struct Takeovers {
    next_id: u64,
    asks: VecDeque<(CfAskId, CfRequest)>,
    in_flight: BTreeMap<CfAskId, Running>,
}

/// Takeover requests are numbered apart from sequence-number requests.
const KV_IDS: u64 = 1 << 63;

impl Takeovers {
    fn ask(&mut self, run: Running, req: CfRequest) {
        let id = CfAskId(KV_IDS | self.next_id);
        self.next_id += 1;
        self.asks.push_back((id, req));
        self.in_flight.insert(id, run);
    }

    /// A CF write whose answer changes nothing (it is not waited for).
    fn write(&mut self, req: CfRequest) {
        let id = CfAskId(KV_IDS | self.next_id);
        self.next_id += 1;
        self.asks.push_back((id, req));
    }

    /// Whether a takeover of `dvipa` waits for a CF answer.
    pub(super) fn running_for(&self, dvipa: Ipv4Addr) -> bool {
        self.in_flight.values().any(|r| r.plan.dvipa == dvipa)
    }

    pub(super) fn poll_request(&mut self) -> Option<CfAsk> {
        let (id, req) = self.asks.pop_front()?;
        Some(CfAsk::Kv { id, req })
    }
}

/// What the CF answered to one step.
enum Answer {
    Value(Option<Vec<u8>>),
    Keys(Vec<String>),
    Done,
    Conflict,
    Failed(String),
}

impl From<CfResponse> for Answer {
    fn from(r: CfResponse) -> Self {
        match r {
            CfResponse::Value(v) => Answer::Value(v),
            CfResponse::Keys(k) => Answer::Keys(k),
            CfResponse::Done => Answer::Done,
            CfResponse::Error(CfError::Conflict(_)) => Answer::Conflict,
            other => Answer::Failed(format!("the CF answered {other:?}")),
        }
    }
}

impl Image {
    /// Becomes the routing stack of `dvipa` with the statements `dists`;
    /// `fresh` is the routing stack to start from when this image had
    /// none (a pure target until now).
    pub fn become_routing_stack(
        &mut self,
        dvipa: Ipv4Addr,
        dists: &[VipaDistribute],
        fresh: Option<RoutingStack>,
    ) {
        if self.routing.is_none() {
            self.routing = fresh;
        }
        if let Some(r) = self.routing.as_mut() {
            if !r.dvipas().contains(&dvipa) {
                r.add_distributions(dists);
            }
            r.keep_journal();
        }
        self.stack.add_owned(dvipa);
    }

    /// Takes `plan.dvipa` over (see the module doc): its first CF request
    /// (the owner record) is ready to poll.
    pub fn start_takeover(&mut self, plan: TakeoverPlan) {
        let key = tk::owner_key(plan.dvipa).to_string();
        let run = Running {
            plan,
            step: Step::Owner,
            sas: Vec::new(),
            conns: Vec::new(),
        };
        self.takeovers.ask(run, CfRequest::Get { key });
    }

    /// The CF's answer to the takeover request `id`.
    pub fn handle_cf_response(&mut self, now: Instant, id: CfAskId, response: CfResponse) {
        if self.givebacks.owns(id) {
            return self.giveback_cf_response(id, response);
        }
        let Some(run) = self.takeovers.in_flight.remove(&id) else {
            return;
        };
        self.takeover_step(now, run, response.into());
    }

    /// The takeover request `id` did not reach the CF: the takeover stops.
    pub fn handle_cf_failure(&mut self, id: CfAskId, why: String) {
        if self.givebacks.owns(id) {
            return self.giveback_cf_failure(id, why);
        }
        if let Some(run) = self.takeovers.in_flight.remove(&id) {
            self.takeover_failed(run.plan.dvipa, why);
        }
    }

    fn takeover_step(&mut self, now: Instant, mut run: Running, answer: Answer) {
        let dvipa = run.plan.dvipa;
        let step = std::mem::replace(&mut run.step, Step::Owner);
        match (step, answer) {
            (_, Answer::Failed(why)) => self.takeover_failed(dvipa, why),
            (Step::Owner, Answer::Value(current)) => self.claim(run, current),
            (Step::Claim, Answer::Done) => self.claimed(run),
            (Step::Claim, Answer::Conflict) => {
                let ev = ImageEvent::TakeoverNotClaimed {
                    dvipa,
                    holder: None,
                };
                self.events.push_back(ev);
                self.take_back_failed(dvipa);
            }
            (Step::ListSas, Answer::Keys(keys)) => self.next_sa(run, keys.into()),
            (Step::Sa(mut keys), Answer::Value(v)) => {
                let key = keys.pop_front().unwrap_or_default();
                if let Some(rec) = self.record::<SaRecord>(dvipa, key, v) {
                    run.sas.push(rec);
                }
                self.next_sa(run, keys);
            }
            (Step::ListConns, Answer::Keys(keys)) => {
                let keys = keys
                    .into_iter()
                    .filter_map(|k| Some((tk::parse_conn_key(&k)?, k)))
                    .collect();
                self.next_conn(now, run, keys);
            }
            (Step::Conn(mut keys), Answer::Value(v)) => {
                if let Some((conn, key)) = keys.pop_front() {
                    if let Some(rec) = self.record::<ConnRecord>(dvipa, key, v) {
                        run.conns.push((conn, rec));
                    }
                }
                self.next_conn(now, run, keys);
            }
            (_, _) => self.takeover_failed(dvipa, "an unexpected answer from the CF".into()),
        }
    }

    /// The record the CF holds under `key`, if it is there and decodes; one
    /// that does not is skipped, and said (never silently).
    fn record<T: serde::de::DeserializeOwned>(
        &mut self,
        dvipa: Ipv4Addr,
        key: String,
        value: Option<Vec<u8>>,
    ) -> Option<T> {
        match tk::decode::<T>(&value?) {
            Ok(rec) => Some(rec),
            Err(e) => {
                let why = e.to_string();
                let ev = ImageEvent::TakeoverRecordUnreadable { dvipa, key, why };
                self.events.push_back(ev);
                None
            }
        }
    }

    fn takeover_failed(&mut self, dvipa: Ipv4Addr, why: String) {
        self.events
            .push_back(ImageEvent::TakeoverFailed { dvipa, why });
        self.take_back_failed(dvipa);
    }

    /// The owner record the CF holds is `current`: swap it for this
    /// image's, unless it names another stack already.
    fn claim(&mut self, mut run: Running, current: Option<Vec<u8>>) {
        let dvipa = run.plan.dvipa;
        let holder = current
            .as_deref()
            .and_then(|b| tk::decode::<OwnerRecord>(b).ok())
            .map(|r| r.image);
        let previous = run.plan.previous.as_deref();
        match tk::claim_request(dvipa, &self.id, previous, current) {
            Some(req) => {
                run.step = Step::Claim;
                self.takeovers.ask(run, req);
            }
            None => {
                let ev = ImageEvent::TakeoverNotClaimed { dvipa, holder };
                self.events.push_back(ev);
                self.take_back_failed(dvipa);
            }
        }
    }

    /// The DVIPA is this image's in the CF: become its routing stack, then
    /// read what the CF holds for it.
    fn claimed(&mut self, mut run: Running) {
        let plan = &mut run.plan;
        let dvipa = plan.dvipa;
        let dists = std::mem::take(&mut plan.dists);
        self.become_routing_stack(dvipa, &dists, plan.fresh.take());
        self.events
            .push_back(ImageEvent::RoutingStackOf { dvipa, dists });
        run.step = Step::ListSas;
        let prefix = tk::sa_prefix(dvipa).to_string();
        self.takeovers.ask(run, CfRequest::List { prefix });
    }

    /// Reads the first of `keys` (the step keeps it until the answer).
    fn next_sa(&mut self, mut run: Running, keys: VecDeque<String>) {
        if let Some(key) = keys.front().cloned() {
            run.step = Step::Sa(keys);
            self.takeovers.ask(run, CfRequest::Get { key });
            return;
        }
        run.step = Step::ListConns;
        let prefix = tk::conn_prefix(run.plan.dvipa).to_string();
        self.takeovers.ask(run, CfRequest::List { prefix });
    }

    fn next_conn(&mut self, now: Instant, mut run: Running, keys: VecDeque<(ConnKey, String)>) {
        if let Some((_, key)) = keys.front() {
            let key = key.clone();
            run.step = Step::Conn(keys);
            self.takeovers.ask(run, CfRequest::Get { key });
            return;
        }
        self.adopt(now, run);
    }

    /// Everything is read: adopt it, own the DVIPA, and let the shell
    /// plumb it.
    fn adopt(&mut self, now: Instant, run: Running) {
        let Running {
            plan, sas, conns, ..
        } = run;
        let dvipa = plan.dvipa;
        let (Some(routing), target) = (self.routing.as_mut(), &mut self.target) else {
            return;
        };
        let adopter = tk::Adopter {
            routing,
            target,
            me: &self.id,
            now,
        };
        // A giveback's previous holder did not fail: its connections go on.
        let failed = plan.previous.as_deref().filter(|_| !plan.giveback);
        let adoption = adopter.adopt(&*plan.sysplex, dvipa, sas, conns, failed);
        // A connection not continued is gone: so is its record, or a later
        // move of the DVIPA (a giveback) would restore it.
        for c in &adoption.conns {
            if let tk::ConnAdoption::NotRestored { key, .. } = c {
                let key = tk::conn_key(key).into();
                self.takeovers.write(CfRequest::Delete { key });
            }
        }
        let (sas_adopted, conns_restored) = (adoption.sas_adopted(), adoption.conns_restored());
        self.events
            .push_back(ImageEvent::Adopted { dvipa, adoption });
        self.stack.add_owned(dvipa);
        self.events.push_back(ImageEvent::PlumbDvipa {
            dvipa,
            previous: plan.previous,
            sas_adopted,
            conns_restored,
        });
    }

    /// The shell plumbed `dvipa` after [`ImageEvent::PlumbDvipa`]: the
    /// VIPA list and the SAs go to the targets.
    pub fn handle_dvipa_plumbed(&mut self, dvipa: Ipv4Addr) {
        if self.stack.owned().contains(&dvipa) {
            self.announce_all();
            self.shadow_restored_targets(dvipa);
        }
    }
}
