//! The routing stack of a DVIPA (patent Fig. 8): every inbound packet for a
//! DVIPA it owns comes here first. IPsec packets are only *peeked* at (the
//! few AES blocks holding the inner IP and TCP headers, Fig. 8 block 132),
//! looked up in the distributed connection table (block 134), tunnel- and
//! replay-checked (blocks 136, 138) and forwarded still encrypted to their
//! target (block 140); a SYN for a distributed port picks a target by the
//! DISTMETHOD (blocks 142, 144). Whatever the patent's IPsec combination
//! table marks not distributable is processed by this image itself.
//!
//! Sans-IO: the caller passes packets and the time in, and carries out the
//! returned [`Decision`] (GRE to a target over XCF, hand to this image's own
//! target stack, give to IKE, drop).

use crate::time::Instant;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::config::VipaDistribute;
use super::dct::{
    ConnEntry, ConnKey, ConnState, Dct, DctLimits, DctTimeouts, Distribution, Listeners,
};
use super::packet::{self, Flow, Kind};
use super::target::Upstream;
use super::xcf::{
    AhBundle, BundleInstall, ConnEndReason, ReportedConn, SaFilter, SaInstall, VipaEntry,
    XcfMessage,
};
use crate::ipsec::filter::{
    DynamicFilter, FilterLog, FilterPacket, FilterTable, PacketDirection, PacketRouting, Transport,
    Verdict,
};
use crate::ipsec::peek::{locate_in, peek_bundle_in, peek_in, PeekError, PeekResult, SaLocator};
use crate::ipsec::replay::ReplayWindow;
use crate::ipsec::sa::{Mode, Protocol, Sa, SaError, Spi};
use crate::ipsec::sad::SaId;
use crate::ipsec::OuterView;
use crate::wire::{IpProtocol, TcpFlags};

mod control;
mod filtering;
#[cfg(test)]
mod flood_tests;
mod giveback;
mod inbound;
mod journal;
#[cfg(test)]
mod report_tests;

pub use giveback::Released;
pub use inbound::connection_key;

/// Where inbound filtering of IPsec traffic happens (claim 7): at the
/// target (default), or here, in which case targets skip it for GRE from
/// an XCF link.
///
/// With `Routing`, block 136's tunnel check runs here on the peeked inner
/// packet (claim 8): a packet outside its SA's dynamic filter is rejected
/// before it can make a DCT entry. With `Target`, this stack does not look
/// at the filters of IPsec packets at all ("if the routing communication
/// protocol stack is not performing inbound filtering, the tunnel check may
/// be performed by the target communication protocol stack", Fig. 8): a
/// SYN outside its SA's filter makes a DCT entry and is forwarded, the
/// target refuses it after decryption (Fig. 9 block 152) and, since none
/// of the connection's packets was admitted, ends the entry (ConnEnded
/// Rejected), as for a packet that failed authentication. Clear packets
/// are filtered here in both modes (IPCONFIG IPSECURITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterAt {
    Target,
    Routing,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RoutingConfig {
    pub filter_at: FilterAt,
    /// `false` is OS/390 V2R10's way: the routing stack decrypts everything
    /// and forwards plaintext over XCF (the baseline of the benchmark).
    pub distribute_crypto: bool,
    pub timeouts: DctTimeouts,
    /// The DCT's bounds (the topology's `[limits]`); TIMEDAFFINITY
    /// bindings are bounded by the same entry count.
    pub limits: DctLimits,
    /// The DCT's hasher seed ([`Dct::with_seed`]): random in the I/O shell,
    /// fixed (0) in the simulator and tests. Not shown: it says nothing
    /// about the configuration.
    #[serde(skip)]
    pub dct_seed: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            filter_at: FilterAt::Target,
            distribute_crypto: true,
            timeouts: DctTimeouts::default(),
            limits: DctLimits::default(),
            dct_seed: 0,
        }
    }
}

/// What to do with an inbound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Block 140: send the packet as it came to `target` (GRE over XCF, or
    /// this image's own target stack when the target is this image).
    Forward {
        target: Arc<str>,
        target_xcf: Ipv4Addr,
        /// What this stack already did (claim 7: the filtering).
        upstream: Upstream,
    },
    /// `distribute_crypto = false`: decrypt here, then forward plaintext.
    DecryptAndForward {
        target: Arc<str>,
        target_xcf: Ipv4Addr,
    },
    /// Not distributed: this image's own stack processes it (its target
    /// stack opens IPsec with the same SAs; plain packets go to its IP layer).
    Local,
    /// For the DVIPA's IKE.
    Ike,
    Drop(RouteDrop),
}

/// Why the routing stack dropped a packet; stable names for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteDrop {
    Malformed,
    Fragment,
    /// No owned SA with this SPI, protocol and source.
    UnknownSpi,
    /// The peek could not read the inner headers.
    PeekFailed,
    /// Block 136: the inner packet is not the SA's traffic (with a filter
    /// table: its first match is not the pair's dynamic filter; the rule
    /// and reason are counted in [`RoutingCounters::filter_denied`]).
    TunnelCheck,
    /// Block 138: sequence number already seen or left of the window.
    Replay,
    /// A SYN for a distributed port with no target listening.
    NoTarget,
    /// A non-SYN segment for a distributed port and no DCT entry.
    NoConnection,
    /// A NAT keepalive (RFC 3948 §2.3): consumed, counted.
    NatKeepalive,
    /// A SYN found the DCT full of established entries (`[limits]
    /// dct_max_entries`): refused, the client's TCP retries.
    DctFull,
    /// IPCONFIG IPSECURITY: the IP filter table denied it (the rule and the
    /// reason are counted in [`RoutingCounters::filter_denied`]).
    Filtered,
    /// A SYN for a DVIPA this stack is giving back (MOVING): new
    /// connections are the new owner's, and the client's retransmitted SYN
    /// reaches it once the LAN delivers the DVIPA there.
    Moving,
}

impl RouteDrop {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteDrop::Malformed => "malformed",
            RouteDrop::Fragment => "fragment",
            RouteDrop::UnknownSpi => "unknown-spi",
            RouteDrop::PeekFailed => "peek-failed",
            RouteDrop::TunnelCheck => "tunnel-check",
            RouteDrop::Replay => "replay",
            RouteDrop::NoTarget => "no-target",
            RouteDrop::NoConnection => "no-connection",
            RouteDrop::NatKeepalive => "nat-keepalive",
            RouteDrop::DctFull => "dct-full",
            RouteDrop::Filtered => "filtered",
            RouteDrop::Moving => "dvipa-moving",
        }
    }
}

/// What the DCT lookup of the last packet found (for traces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DctOutcome {
    NotLookedUp,
    Hit,
    /// A SYN made a new entry.
    New,
    Miss,
}

/// What the routing stack saw of its last packet: the peeked inner headers,
/// the filter table's verdict and the DCT outcome. Traces render it;
/// nothing decides on it.
#[derive(Debug, Clone)]
pub struct RouteNote {
    pub peek: Option<PeekResult>,
    /// The AH SPI and sequence number of a peeked AH+ESP bundle.
    pub ah: Option<(Spi, u32)>,
    /// The IP filter's verdict: on a clear packet, or on a peeked one in
    /// the tunnel check (block 136); `None` when the table was not asked.
    pub filter: Option<Verdict>,
    pub dct: DctOutcome,
}

impl RouteNote {
    const EMPTY: RouteNote = RouteNote {
        peek: None,
        ah: None,
        filter: None,
        dct: DctOutcome::NotLookedUp,
    };
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RoutingCounters {
    pub packets_in: u64,
    /// Peeks done and AES blocks they decrypted (never a whole packet).
    pub peeks: u64,
    pub peek_blocks: u64,
    pub forwarded: BTreeMap<String, u64>,
    /// Connections distributed, by `DVIPA:port target` (TotalConn of
    /// NETSTAT VDPT).
    pub connections: BTreeMap<String, u64>,
    pub forwarded_bytes: u64,
    pub decrypted_here_and_forwarded: u64,
    pub local: u64,
    pub ike: u64,
    pub new_connections: u64,
    /// Connections ended in the DCT because their target's XCF
    /// connection went down ([`RoutingStack::target_down`]).
    pub ended_target_down: u64,
    /// What the targets' connection reports did (after a takeover or a
    /// giveback, [`XcfMessage::ConnReport`]).
    pub reports: ReportCounters,
    pub drops: BTreeMap<&'static str, u64>,
    /// Packets the IP filter table denied before they could reach the DCT,
    /// the CF or IKE, by `RULE reason` (e.g. `web-client1 clear-text`).
    pub filter_denied: BTreeMap<String, u64>,
}

/// The connections targets reported to this routing stack, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReportCounters {
    /// Connections reported.
    pub received: u64,
    /// Not in the DCT (made after the previous routing stack's last CF
    /// journal write): added, towards the reporting target.
    pub recovered: u64,
    /// Already in the DCT towards the reporting target (from the CF).
    pub known: u64,
    /// In the DCT towards another target: the reporting target, which
    /// holds the connection, wins.
    pub moved: u64,
    /// Not added: the DCT was full of entries that are not half-open, or
    /// this stack does not distribute the DVIPA.
    pub refused: u64,
}

/// An SA pair the routing stack owns for a DVIPA, with the replay
/// pre-check window (advanced only by authenticated sequence numbers).
#[derive(Debug, Clone)]
pub struct OwnedPair {
    pub install: SaInstall,
    /// The AH SAs outside the ESP pair, when the pair is an AH+ESP bundle
    /// (the table's "Combined AH,ESP" rows).
    pub ah: Option<OwnedAh>,
    inbound: Sa,
    precheck: ReplayWindow,
    pub peeks: u64,
    pub forwarded: u64,
}

impl OwnedPair {
    /// What copies the pair to a target's shadow cache (Fig. 6 block 118):
    /// an [`XcfMessage::SaInstall`], or a [`XcfMessage::BundleInstall`]
    /// for an AH+ESP bundle.
    pub fn install_msg(&self) -> XcfMessage {
        match &self.ah {
            None => XcfMessage::SaInstall(Box::new(self.install.clone())),
            Some(ah) => XcfMessage::BundleInstall(Box::new(BundleInstall {
                esp: self.install.clone(),
                ah: ah.bundle.clone(),
            })),
        }
    }

    pub fn inbound(&self) -> &Sa {
        &self.inbound
    }
    pub fn precheck_top(&self) -> u64 {
        self.precheck.top()
    }

    /// Whether `loc` names this pair (by its AH SA for a bundle).
    fn named_by(&self, loc: &SaLocator) -> bool {
        loc.names(
            &self.install.inbound,
            self.ah.as_ref().map(|a| &a.bundle.inbound),
        )
    }
}

/// The AH half of an owned AH+ESP bundle: the SA a bundle is looked up by
/// and its own replay pre-check window (RFC 4302 §3.4.3: AH has its own
/// sequence numbers, checked before ESP's).
#[derive(Debug, Clone)]
pub struct OwnedAh {
    pub bundle: AhBundle,
    inbound: Sa,
    precheck: ReplayWindow,
}

impl OwnedAh {
    pub fn inbound(&self) -> &Sa {
        &self.inbound
    }
    pub fn precheck_top(&self) -> u64 {
        self.precheck.top()
    }
}

/// A window that only authenticated sequence numbers move.
fn precheck_window(c: &crate::ipsec::sa::SaConfig) -> ReplayWindow {
    ReplayWindow::new(c.replay_window, c.esn)
}

/// Block 138 without moving anything: is `seq` (as sent) still fresh?
fn fresh(window: &ReplayWindow, seq: u32) -> bool {
    window.check(window.infer_seq(seq)).is_ok()
}

#[derive(Debug)]
pub struct RoutingStack {
    pub image: String,
    pub xcf: Ipv4Addr,
    config: RoutingConfig,
    /// The VIPADISTRIBUTE statements of owned DVIPAs (several per DVIPA,
    /// for different ports).
    distributions: Vec<Distribution>,
    listeners: Listeners,
    dct: Dct,
    pairs: Vec<OwnedPair>,
    counters: RoutingCounters,
    note: RouteNote,
    /// The latest time seen (inbound packets, timeouts), for entries that
    /// XCF messages create.
    now: Instant,
    /// DCT entries made or ended since the last [`RoutingStack::take_journal`],
    /// when a backup must be able to continue them (takeover); `None`: not kept.
    journal: Option<journal::Journal>,
    /// IPCONFIG IPSECURITY: the image's IP filter table, which every clear
    /// packet for an owned DVIPA passes before anything else; `None`: the
    /// stack does no IP filtering (z/OS without IPSECURITY).
    filter: Option<FilterTable>,
    /// LOG rules' filter-log records, for the caller to write.
    filter_logs: Vec<FilterLog>,
    /// DVIPAs this stack is giving back to their owner (z/OS MOVING): their
    /// connections are still routed, new ones are not made here.
    moving: BTreeSet<Ipv4Addr>,
}

/// A change of the DCT, for the takeover copy in the coupling facility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DctChange {
    /// A connection was assigned to a target.
    Made {
        key: ConnKey,
        target: String,
        target_xcf: Ipv4Addr,
        ipsec: bool,
    },
    Ended(ConnKey),
}

impl RoutingStack {
    /// A routing stack with the VIPADISTRIBUTE statements of the DVIPAs
    /// this image owns.
    pub fn new(
        image: &str,
        xcf: Ipv4Addr,
        config: RoutingConfig,
        distributes: &[VipaDistribute],
    ) -> Self {
        let affinity_max = config.limits.max_entries as usize;
        let distributions = distributes
            .iter()
            .map(|d| Distribution::new(d.clone()).with_affinity_max(affinity_max))
            .collect();
        Self {
            image: image.to_string(),
            xcf,
            config,
            distributions,
            listeners: Listeners::default(),
            dct: Dct::with_limits(config.dct_seed, config.limits),
            pairs: Vec::new(),
            counters: RoutingCounters::default(),
            note: RouteNote::EMPTY,
            now: Instant::ZERO,
            journal: None,
            filter: None,
            filter_logs: Vec::new(),
            moving: BTreeSet::new(),
        }
    }

    /// From now on, DCT changes are kept for [`RoutingStack::take_journal`].
    pub fn keep_journal(&mut self) {
        self.journal.get_or_insert_with(journal::Journal::default);
    }

    /// The DCT changes since the last call (empty unless kept).
    pub fn take_journal(&mut self) -> Vec<DctChange> {
        self.journal
            .as_mut()
            .map(journal::Journal::take)
            .unwrap_or_default()
    }

    /// A new DCT entry, in the journal when one is kept.
    fn add_entry(&mut self, key: ConnKey, e: ConnEntry) {
        if let Some(j) = self.journal.as_mut() {
            j.made(DctChange::Made {
                key,
                target: e.target.to_string(),
                target_xcf: e.target_xcf,
                ipsec: e.ipsec,
            });
        }
        self.dct.insert(key, e);
    }

    fn note_ended(&mut self, key: ConnKey) {
        if let Some(j) = self.journal.as_mut() {
            j.ended(key);
        }
    }

    /// Takeover: the VIPADISTRIBUTE statements of a DVIPA this stack now
    /// owns (from its VIPABACKUP) join the ones in force.
    pub fn add_distributions(&mut self, distributes: &[VipaDistribute]) {
        let affinity_max = self.config.limits.max_entries as usize;
        for d in distributes {
            self.distributions
                .push(Distribution::new(d.clone()).with_affinity_max(affinity_max));
        }
    }

    /// The DVIPAs this stack distributes.
    pub fn dvipas(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self.distributions.iter().map(|d| d.config.addr).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Takeover: a connection the previous routing stack assigned to a
    /// target keeps going there (the DCT copy read from the CF).
    pub fn restore(&mut self, key: ConnKey, target: &str, target_xcf: Ipv4Addr, ipsec: bool) {
        let entry = self.fresh_entry(target, target_xcf, ConnState::Established, ipsec);
        self.add_entry(key, entry);
    }

    /// An entry made now without a packet (a takeover's copy from the CF,
    /// a target's NEWCONN or report) towards `target`.
    fn fresh_entry(
        &self,
        target: &str,
        target_xcf: Ipv4Addr,
        state: ConnState,
        ipsec: bool,
    ) -> ConnEntry {
        ConnEntry {
            target: target.into(),
            target_xcf,
            state,
            created: self.now,
            last_seen: self.now,
            packets: 0,
            bytes: 0,
            ipsec,
        }
    }

    /// What the last [`RoutingStack::inbound`] saw.
    pub fn last_note(&self) -> &RouteNote {
        &self.note
    }

    pub fn counters(&self) -> &RoutingCounters {
        &self.counters
    }
    pub fn dct(&self) -> &Dct {
        &self.dct
    }
    pub fn listeners(&self) -> &Listeners {
        &self.listeners
    }
    pub fn pairs(&self) -> &[OwnedPair] {
        &self.pairs
    }
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }
    pub fn distributions(&self) -> impl Iterator<Item = &Distribution> {
        self.distributions.iter()
    }

    /// Fig. 11 block 170: what the targets are told this stack distributes.
    pub fn vipa_list(&self) -> XcfMessage {
        XcfMessage::VipaList {
            owner: self.image.clone(),
            vipas: self
                .distributions
                .iter()
                .map(|d| VipaEntry {
                    dvipa: d.config.addr,
                    ports: d.config.ports.clone(),
                })
                .collect(),
        }
    }

    /// The images a DVIPA's SAs must be copied to (Fig. 6 block 118): its
    /// distribution targets.
    pub fn targets_of(&self, dvipa: Ipv4Addr) -> Vec<(String, Ipv4Addr)> {
        let mut out: Vec<(String, Ipv4Addr)> = Vec::new();
        for d in self.distributions.iter().filter(|d| d.config.addr == dvipa) {
            for t in &d.config.dests {
                if !out.iter().any(|(n, _)| *n == t.image) {
                    out.push((t.image.clone(), t.xcf_addr));
                }
            }
        }
        out
    }

    /// A target's XCF connection went down (the image left the sysplex,
    /// or the XCF link to it failed): its listeners no longer count, so
    /// VDPT shows it not ready and the distributor skips it, and its
    /// connections end in the DCT. With no XCF path left, nothing this
    /// stack receives for them can reach the target (z/OS: when a target
    /// stack leaves the XCF group, the distributing stack stops routing
    /// to it and its connections are lost; docs/FAULTS.md). Returns how
    /// many connections ended.
    pub fn target_down(&mut self, image: &str) -> usize {
        self.listeners.forget(image);
        let gone: Vec<ConnKey> = self
            .dct
            .sorted()
            .into_iter()
            .filter(|(_, e)| &*e.target == image)
            .map(|(k, _)| k)
            .collect();
        for key in &gone {
            self.dct.remove(key);
            self.note_ended(*key);
        }
        self.counters.ended_target_down += gone.len() as u64;
        gone.len()
    }

    /// Expires DCT entries and lapsed TIMEDAFFINITY bindings; returns
    /// how many entries went.
    pub fn on_timeout(&mut self, now: Instant) -> usize {
        self.now = now;
        for d in &mut self.distributions {
            d.expire_affinity(now);
        }
        let gone = self.dct.expire(now, &self.config.timeouts);
        for (key, _) in &gone {
            self.note_ended(*key);
        }
        gone.len()
    }

    /// When the next DCT entry expires.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.dct.next_expiry(&self.config.timeouts)
    }
}

/// A protocol name for traces.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Esp => "ESP",
        Protocol::Ah => "AH",
    }
}
