//! One z/OS image as a sans-IO state machine: its own IP stack, its
//! routing stack (for the DVIPAs it owns), its target stack (for the
//! DVIPAs it serves), and what ties them to the rest of the sysplex: XCF
//! dispatch and resync, the Fig. 11 SYN hold queue with its NEWCONN
//! decisions, and the CF sequence-number batching of Fig. 10.
//!
//! Driven the way quinn-proto drives a connection: the shell (the daemon
//! in `runtime`, or the simulator in `sim`) feeds it with `handle_*` calls
//! (a burst from the TUN, a datagram from an XCF data link, an XCF message,
//! a CF reply, a timer) and drains its `poll_*` outputs (transmits, CF
//! requests, TUN writes, events, the next deadline). It never does I/O,
//! never reads a clock (`now` comes in) and takes its randomness from the
//! caller. See `docs/ARCHITECTURE.md`.

mod cf_numbers;
mod datapath;
mod giveback;
mod hold;
mod notes;
mod takeover;
mod watch;
mod xcf;

#[cfg(test)]
mod giveback_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::Serialize;

use crate::ipsec::filter::FilterLog;
use crate::ipsec::sa::Spi;
use crate::sysplex::config::Moveable;
use crate::sysplex::config::VipaDistribute;
use crate::sysplex::limits::SysplexLimits;
use crate::sysplex::routing::{Released, RoutingStack};
use crate::sysplex::stack::ImageStack;
use crate::sysplex::takeover::Adoption;
use crate::sysplex::target::{TargetStack, Upstream};
use crate::sysplex::xcf::{SeqKey, XcfMessage};
use crate::time::Instant;

pub use cf_numbers::{
    CfAskId, CfDrops, CfFailure, CfReply, SealKeys, SealedChunk, SeqAsk, SEQ_CHUNK, SEQ_DEADLINE,
};
pub use giveback::GivebackState;
pub use hold::{NewConnPolicy, HELD_FOR, HELD_MAX};
pub use notes::{InboundNote, TargetNote, TargetVia};
pub use takeover::{CfAsk, TakeoverPlan};
pub use xcf::{delete_msg, seq_keys, SaInstallError};

/// The name of a z/OS image (`MVS1`), as XCF and the stacks know it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageId(Arc<str>);

impl ImageId {
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl From<&str> for ImageId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for ImageId {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<Arc<str>> for ImageId {
    fn from(s: Arc<str>) -> Self {
        Self(s)
    }
}

/// An image name reads as the string it is (`&id` where a `&str` is
/// expected), as `Arc<str>` does.
impl std::ops::Deref for ImageId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ImageId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ImageId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ImageId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// What an image is, as the shell read it from the topology.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub id: ImageId,
    /// Its XCF address (the GRE source of what it forwards).
    pub xcf_addr: Ipv4Addr,
    /// The DVIPAs it owns now (VIPADEFINE, less those another stack holds).
    pub owned: Vec<Ipv4Addr>,
    /// When its target stack asks for an SA (Fig. 11).
    pub newconn: NewConnPolicy,
    /// The sysplex's `[limits]`: its target stack's table of served
    /// connections has the DCT's bounds and half-open timeout.
    pub limits: SysplexLimits,
    /// Keys the hasher of that table: the I/O shell passes a random one
    /// (chosen connection keys cannot flood one bucket), the simulator
    /// and tests a fixed one.
    pub hash_seed: u64,
}

/// A datagram's payload on an XCF data link: the `i`-th packet of the
/// burst just handed to [`Image::handle_tun_burst`] (forwarded as it came,
/// without a copy), or a packet the image made (the plaintext it
/// decrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Input(usize),
    Owned(Vec<u8>),
}

/// What the image sends.
#[derive(Debug)]
pub enum Transmit {
    /// A whole IPv4 packet out of this image's own external link.
    Ext(Vec<u8>),
    /// Packets sealed under sequence numbers from the CF (Fig. 10 block
    /// 164): send them in order while `now` is not past the chunk's
    /// deadline, then say how many left ([`Image::handle_sealed_sent`]).
    Sealed(SealedChunk),
    /// A datagram for `to`'s XCF data link behind a GRE header saying
    /// what this image already did (Fig. 8 block 140, claim 7).
    XcfData {
        to: ImageId,
        upstream: Upstream,
        payload: Payload,
    },
    /// An XCF message to another image.
    Xcf { to: ImageId, msg: XcfMessage },
}

/// An XCF datagram as it arrived on the data link of one peer.
#[derive(Debug, Clone, Copy)]
pub enum XcfDatagram<'a> {
    /// GRE in IPv4 (protocol 47), the outer header included.
    Gre(&'a [u8]),
    /// GRE in UDP (RFC 8086): the UDP body, and the outer source.
    GreInUdp { src: Ipv4Addr, body: &'a [u8] },
}

/// What the shell acts on beyond sending packets.
#[derive(Debug)]
pub enum ImageEvent {
    /// An IKE datagram (UDP 500, or 4500 with the non-ESP marker) for an
    /// owned DVIPA, whole, as it arrived from the external LAN.
    IkeDatagram(Vec<u8>),
    /// Fig. 9 block 158 / Fig. 10 block 168: a target's lifesize report
    /// for an SA this image's IKE owns.
    Lifesize { from: ImageId, report: XcfMessage },
    /// Fig. 11 block 174: a target asks this image's IKE for an SA
    /// ([`XcfMessage::NewConn`]).
    NewConn { from: ImageId, request: XcfMessage },
    /// Fig. 11: a NEWCONN this image's target stack sent (for the log).
    NewConnSent { owner: ImageId, request: XcfMessage },
    /// LOG rules' filter-log lines (z/OS's EZD08xxI), to write to the log.
    FilterLogs(Vec<FilterLog>),
    /// An SA a routing stack sent was refused by the shadow cache.
    SaRefused { from: ImageId, reason: String },
    /// What happened to an inbound packet, for a shell that traces
    /// (only after [`Image::set_trace`]).
    Inbound(InboundNote),
    /// A takeover is not done: the CF names another holder (`Some`), or
    /// another stack's claim won the compare-and-swap (`None`).
    TakeoverNotClaimed {
        dvipa: Ipv4Addr,
        holder: Option<String>,
    },
    /// A takeover stopped: the CF failed or answered what it should not.
    TakeoverFailed { dvipa: Ipv4Addr, why: String },
    /// A takeover skipped the CF record under `key`: it does not decode.
    TakeoverRecordUnreadable {
        dvipa: Ipv4Addr,
        key: String,
        why: String,
    },
    /// A watch was evaluated ([`Image::evaluate_watches`]): `holder` as
    /// it knew it, the live candidate ranked highest, and what it decided
    /// (an [`WatchAction::Acquire`] is a takeover started).
    WatchDecided {
        dvipa: Ipv4Addr,
        holder: Option<String>,
        successor: Option<String>,
        action: crate::sysplex::takeover::WatchAction,
    },
    /// The claim succeeded: this image is the routing stack of `dvipa`
    /// with its statements `dists` (the shell may set its IP security
    /// before the SAs are adopted).
    RoutingStackOf {
        dvipa: Ipv4Addr,
        dists: Vec<VipaDistribute>,
    },
    /// What a takeover adopted from the CF.
    Adopted { dvipa: Ipv4Addr, adoption: Adoption },
    /// A takeover is complete in the image: the shell plumbs the DVIPA
    /// and announces it by gratuitous ARP (the VIPA list and SAs follow
    /// as transmits).
    PlumbDvipa {
        dvipa: Ipv4Addr,
        previous: Option<String>,
        sas_adopted: usize,
        conns_restored: usize,
    },
    /// Holder: the owner of `dvipa` is live again; with MOVEABLE IMMEDIATE
    /// (or WHENIDLE and no `connections` left) the giveback starts
    /// (MOVING), else it waits for the connections to end.
    GivebackDecided {
        dvipa: Ipv4Addr,
        to: String,
        moveable: Moveable,
        connections: usize,
    },
    /// Holder: a giveback stopped (the CF failed, the owner declined or
    /// went away): it keeps the DVIPA.
    GivebackStopped { dvipa: Ipv4Addr, why: String },
    /// Owner: `from` offered `dvipa` back; the takeover steps follow
    /// ([`ImageEvent::RoutingStackOf`] ... [`ImageEvent::PlumbDvipa`]),
    /// after which the shell calls [`Image::handle_dvipa_announced`].
    TakingBack { dvipa: Ipv4Addr, from: String },
    /// Holder: the owner has `dvipa` now; this image let go of it: the
    /// shell stops advertising it and its IKE stops answering for it.
    GaveBack {
        dvipa: Ipv4Addr,
        to: String,
        released: Released,
    },
}

/// The image's own counters (the stacks count their own decisions).
#[derive(Debug, Default, Clone, Serialize)]
pub struct ImageCounters {
    pub cf_batches: u64,
    pub cf_numbers: u64,
    /// CF answers that gave no numbers.
    pub cf_errors: u64,
    /// The packets those answers dropped, by reason.
    pub cf_dropped: CfDrops,
    /// Sequence numbers dropped unused because their deadline passed.
    pub seq_stale: u64,
    pub xcf_in: u64,
    /// Fig. 11: SYNs held while their NEWCONN is negotiated, sent once the
    /// SA arrived, or dropped when it did not arrive in [`HELD_FOR`], or
    /// not held because [`HELD_MAX`] were waiting already.
    pub newconn_held: u64,
    pub newconn_released: u64,
    pub newconn_expired: u64,
    pub newconn_overflow: u64,
}

/// How often the image's periodic work runs: DCT timeouts, lifesize
/// flushes, the VIPA list, listener registrations, held SYNs' expiry.
pub const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// One z/OS image; see the module doc.
#[derive(Debug)]
pub struct Image {
    id: ImageId,
    xcf_addr: Ipv4Addr,
    stack: ImageStack,
    routing: Option<RoutingStack>,
    target: TargetStack,
    newconn: NewConnPolicy,
    /// Images heard from since they last connected: a new one gets the
    /// VIPA list and every SA again.
    heard: BTreeSet<ImageId>,
    /// The local TCP listeners (address, port), as the shell last saw them.
    listeners: Vec<(Ipv4Addr, u16)>,
    held: hold::HoldQueue,
    numbers: cf_numbers::SeqBatcher,
    takeovers: takeover::Takeovers,
    givebacks: giveback::Givebacks,
    watches: watch::Watches,
    transmits: VecDeque<Transmit>,
    tun_writes: VecDeque<Vec<u8>>,
    events: VecDeque<ImageEvent>,
    counters: ImageCounters,
    next_tick: Instant,
    /// Whether [`ImageEvent::Inbound`] notes are recorded.
    trace: bool,
}

impl Image {
    /// An image with the routing stack `routing` when it owns DVIPAs.
    pub fn new(config: ImageConfig, routing: Option<RoutingStack>, now: Instant) -> Self {
        let name = config.id.as_str();
        let mut target = TargetStack::new(name, config.xcf_addr);
        target.set_served_limits(
            config.hash_seed,
            config.limits.dct(),
            config.limits.half_open_timeout_ms,
        );
        Self {
            stack: ImageStack::new(name, config.owned.clone()),
            target,
            id: config.id,
            xcf_addr: config.xcf_addr,
            routing,
            newconn: config.newconn,
            heard: BTreeSet::new(),
            listeners: Vec::new(),
            held: hold::HoldQueue::default(),
            numbers: cf_numbers::SeqBatcher::default(),
            takeovers: takeover::Takeovers::default(),
            givebacks: giveback::Givebacks::default(),
            watches: watch::Watches::default(),
            transmits: VecDeque::new(),
            tun_writes: VecDeque::new(),
            events: VecDeque::new(),
            counters: ImageCounters::default(),
            // Due at once: the first tick announces the VIPA list.
            next_tick: now,
            trace: false,
        }
    }

    pub fn id(&self) -> &ImageId {
        &self.id
    }
    pub fn xcf_addr(&self) -> Ipv4Addr {
        self.xcf_addr
    }
    pub fn stack(&self) -> &ImageStack {
        &self.stack
    }
    pub fn stack_mut(&mut self) -> &mut ImageStack {
        &mut self.stack
    }
    pub fn routing(&self) -> Option<&RoutingStack> {
        self.routing.as_ref()
    }
    pub fn routing_mut(&mut self) -> Option<&mut RoutingStack> {
        self.routing.as_mut()
    }
    /// Both stacks at once (a takeover adopts SAs into both).
    pub fn routing_and_target_mut(&mut self) -> (Option<&mut RoutingStack>, &mut TargetStack) {
        (self.routing.as_mut(), &mut self.target)
    }
    pub fn target(&self) -> &TargetStack {
        &self.target
    }
    pub fn target_mut(&mut self) -> &mut TargetStack {
        &mut self.target
    }
    pub fn counters(&self) -> &ImageCounters {
        &self.counters
    }
    /// The DVIPAs this image owns now.
    pub fn owned(&self) -> &[Ipv4Addr] {
        self.stack.owned()
    }
    /// A DVIPA taken over joins the owned ones.
    pub fn add_owned(&mut self, dvipa: Ipv4Addr) {
        self.stack.add_owned(dvipa);
    }

    /// When its target stack asks for an SA from now on (Fig. 11).
    pub fn set_newconn_policy(&mut self, policy: NewConnPolicy) {
        self.newconn = policy;
    }

    /// The local TCP listeners, as the shell sees them now: what this
    /// image registers with the routing stacks (z/OS stacks tell the
    /// distributor when a server binds).
    pub fn set_listeners(&mut self, listeners: Vec<(Ipv4Addr, u16)>) {
        self.listeners = listeners;
    }

    /// The next thing to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next packet to write into the TUN (the kernel delivers it).
    pub fn poll_tun_write(&mut self) -> Option<Vec<u8>> {
        self.tun_writes.pop_front()
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<ImageEvent> {
        self.events.pop_front()
    }

    /// When [`Image::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Instant {
        self.watch_deadline()
            .map_or(self.next_tick, |g| g.min(self.next_tick))
    }

    /// The next request for the CF; `now` is when the shell sends it (a
    /// sequence number's age counts from there, [`SEQ_DEADLINE`]).
    pub fn poll_cf_request(&mut self, now: Instant) -> Option<CfAsk> {
        if let Some(ask) = self.takeovers.poll_request() {
            return Some(ask);
        }
        if let Some(ask) = self.givebacks.poll_request() {
            return Some(ask);
        }
        self.numbers.poll_request(now).map(CfAsk::Numbers)
    }

    /// The CF's answer to the request `id`; `rng` draws the IVs of what
    /// it lets this image seal.
    pub fn handle_cf_reply(
        &mut self,
        now: Instant,
        id: CfAskId,
        reply: CfReply,
        rng: &mut impl rand_core::RngCore,
    ) {
        let Self {
            numbers,
            target,
            counters,
            transmits,
            ..
        } = self;
        let mut seal =
            |spi: Spi, seq, p: &[u8], out: &mut Vec<u8>| target.seal(now, spi, seq, rng, p, out);
        if let Some(chunk) = numbers.on_reply(id, reply, counters, &mut seal) {
            transmits.push_back(Transmit::Sealed(chunk));
        }
        self.collect_target_outbox();
    }

    /// The shell sent the first `sent` packets of the sealed chunk `id`
    /// before its deadline passed: the rest of its group is sealed next,
    /// under fresh numbers for what did not leave.
    pub fn handle_sealed_sent(&mut self, id: CfAskId, sent: usize) {
        self.numbers.on_sent(id, sent, &mut self.counters);
    }

    /// Queues an XCF message to `to`. One to this image itself (its own
    /// routing stack and target stack talking) is the shell's to hand back
    /// through [`Image::handle_xcf`]: the daemon does so at once, the
    /// simulator after a hop it can trace.
    fn send_xcf(&mut self, to: ImageId, msg: XcfMessage) {
        self.transmits.push_back(Transmit::Xcf { to, msg });
    }

    /// Sends what the target stack queued (lifesize reports, ConnEnded...).
    fn collect_target_outbox(&mut self) {
        for (to, msg) in self.target.take_outbox() {
            self.send_xcf(ImageId::from(to), msg);
        }
    }

    /// Filter-log lines for the shell, when there are any.
    fn push_filter_logs(&mut self, logs: Vec<FilterLog>) {
        if !logs.is_empty() {
            self.events.push_back(ImageEvent::FilterLogs(logs));
        }
    }

    /// Every image a DVIPA this image owns is distributed to (itself too,
    /// when it is one of them).
    pub fn distribution_targets(&self) -> BTreeSet<ImageId> {
        self.routing
            .as_ref()
            .map(|r| {
                r.distributions()
                    .flat_map(|d| {
                        d.config
                            .dests
                            .iter()
                            .map(|t| ImageId::from(t.image.as_str()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The targets of `dvipa` other than this image (where SA installs
    /// and deletes travel over XCF; this image's own target stack gets
    /// them directly).
    fn other_targets_of(&self, dvipa: Ipv4Addr) -> Vec<ImageId> {
        self.routing
            .as_ref()
            .map(|r| r.targets_of(dvipa))
            .unwrap_or_default()
            .into_iter()
            .filter(|(t, _)| *t != *self.id.as_str())
            .map(|(t, _)| ImageId::from(t))
            .chain(
                self.givebacks
                    .extra_targets
                    .get(&dvipa)
                    .into_iter()
                    .flatten()
                    .cloned(),
            )
            .collect()
    }
}

/// `seq_key`'s structure name, for logs.
pub fn seq_key_name(k: &SeqKey) -> String {
    format!("{}/{}/{:#010x}", k.dvipa, k.protocol.name(), k.spi.0)
}

/// The listeners of `listening` on the ports the routing stacks announced
/// in their VIPA lists, as (owner, DVIPA, port) registrations.
fn registrations(
    target: &TargetStack,
    listening: &[(Ipv4Addr, u16)],
) -> Vec<(ImageId, Ipv4Addr, u16)> {
    let mut regs = Vec::new();
    for (owner, vipas) in target.vipa_lists() {
        for v in vipas {
            for p in &v.ports {
                if listening
                    .iter()
                    .any(|(a, lp)| lp == p && (a.is_unspecified() || *a == v.dvipa))
                {
                    regs.push((ImageId::from(owner.as_str()), v.dvipa, *p));
                }
            }
        }
    }
    regs
}
