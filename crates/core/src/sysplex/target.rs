//! A target stack (patent Figs. 7, 9, 10): the shadow SA caches of the
//! DVIPAs it serves, filled by the routing stack over XCF; GRE from the
//! routing stack is checked against the XCF link it came in on, opened with
//! the shadow SA, inbound-filtered and delivered; replies are sealed with
//! the shadow SA under sequence numbers taken from the coupling facility
//! and sent straight out of this image's own external link. Lifesize is
//! counted and reported to the routing stack in batches.
//!
//! **Filters** (Fig. 7 block 122, Fig. 9 block 152, Fig. 10 block 160):
//! an SA pair comes with its dynamic filter and the anchor rule it sits in
//! front of in the routing stack's filter table. The target keeps one
//! filter table per DVIPA made of those: decrypted packets pass only as
//! their own SA's (`wrong-sa`, `outside-sa` otherwise), replies are sealed
//! with the SA whose dynamic filter matches them, and a reply an anchor
//! covers when no SA does is refused (`needs-sa`), never sent in clear.
//! Dynamic filters leave with their pairs; anchors stay. A target's own
//! IPSECURITY profile is not consulted (figure4's targets have none); the
//! tables hold only what the routing stacks sent.
//!
//! **Sequence numbers** (Fig. 10 block 162): the caller drains what is
//! ready to send, groups it by SA, and takes numbers for those packets only
//! (at most 8 per fetch-and-add), right before sealing them. No target
//! holds unused numbers, and a number whose packet has not left within a
//! deadline (500 µs) of asking the CF is dropped unused and the packet
//! resealed with a fresh one: several targets sending on one SA reach the
//! client out of order only by what they seal at the same moment, far
//! inside a replay window of 128, even when one of them was descheduled.
//! No number is ever used twice; gaps are legal (RFC 4303 §3.3.3).
//!
//! Sans-IO like the routing stack: packets and time in, verdicts and XCF
//! messages (in [`TargetStack::take_outbox`]) out.

use rand_core::RngCore;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::dct::{ConnKey, DctLimits};
use super::packet::{self, Flow, Kind};
use super::xcf::{
    AhBundle, BundleInstall, ConnEndReason, Direction, SaFilter, SaInstall, SeqKey, VipaEntry,
    XcfMessage,
};
use crate::ipsec::counters::DropReason;
use crate::ipsec::esp::OpenError;
use crate::ipsec::filter::{
    self, DenyReason, FilterOptions, FilterPacket, FilterTable, PacketDirection, PacketRouting,
    RuleName,
};
use crate::ipsec::peek::{locate_in, peek};
use crate::ipsec::policy::{RuleSet, RuleSetError};
use crate::ipsec::sa::{Protocol, Sa, SaConfig, SaError, Spi, TrafficSelector};
use crate::ipsec::sad::SaId;
use crate::ipsec::sad::{open_bundle_counted, seal_bundle_counted, InboundSa, OutboundSa};
use crate::ipsec::OuterView;
use crate::time::Instant;
use crate::wire::{gre, ipv4, IpProtocol, TcpFlags};

mod forward;
mod inbound;
mod install;
mod lifesize;
mod outbound;
mod served;

pub use forward::{
    decap, decap_gre, encap, gre_payload, Decapped, GreHeader, GRE_KEY_DECRYPTED, GRE_KEY_FILTERED,
};
use lifesize::{ah_lifesize_msg, lifesize_for, lifesize_msg, queue_reports};
pub use lifesize::{
    Lifesize, REPORT_DEFAULT_BP, REPORT_MAX_BP, REPORT_MIN_BP, REPORT_UNLIMITED_BYTES,
};
pub use served::{Served, ServedCounters};

/// What the routing stack already did to a datagram it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    Nothing,
    /// Tunnel-checked and filtered at the routing stack (claim 7).
    Filtered,
    /// Decrypted and filtered at the routing stack: plaintext follows.
    Decrypted,
}

/// Why a target dropped a packet; stable names for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TargetDrop {
    /// The GRE's outer source is not the XCF address of the link it came
    /// in on (the patent's anti-spoofing check).
    LinkCheck,
    /// Not GRE to this image's XCF address, or a malformed GRE/IP packet.
    BadGre,
    /// No shadow SA with this SPI, protocol and source.
    NoShadowSa,
    /// Opening failed (ICV, replay, padding, selectors...).
    Ipsec(DropReason),
    /// Decrypted, but the dynamic filter does not admit the flow (Fig. 9
    /// block 152; with a filter table the rule and reason are counted in
    /// [`TargetCounters::filter_denied`]).
    Filter,
    /// Plaintext for a flow the filter says must be protected.
    Unprotected,
    /// Sealing failed (SA past its hard lifetime, packet too big...).
    Seal,
    /// Outbound (Fig. 10 block 160): an anchor rule requires IPsec for the
    /// packet and no SA's dynamic filter covers it; never sent in clear.
    NeedsSa,
}

impl TargetDrop {
    pub fn name(self) -> String {
        match self {
            TargetDrop::LinkCheck => "link-check".into(),
            TargetDrop::BadGre => "bad-gre".into(),
            TargetDrop::NoShadowSa => "no-shadow-sa".into(),
            TargetDrop::Ipsec(r) => format!("ipsec-{}", r.as_str()),
            TargetDrop::Filter => "filter".into(),
            TargetDrop::Unprotected => "unprotected".into(),
            TargetDrop::Seal => "seal".into(),
            TargetDrop::NeedsSa => "needs-sa".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Write this IP packet into the TUN: the kernel delivers it.
    Deliver(Vec<u8>),
    Drop(TargetDrop),
}

/// Fig. 10 block 160: how an outbound packet leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundPlan {
    /// Seal with the shadow SA `spi` under numbers from `seq_key`.
    Protect { spi: Spi, seq_key: SeqKey },
    /// Seal with the AH+ESP bundle whose outbound ESP SA is `spi`, under
    /// numbers from two CF structures, one per outbound SA: `seq_key`
    /// (ESP) and `ah_seq_key` (AH).
    Bundle {
        spi: Spi,
        seq_key: SeqKey,
        ah_seq_key: SeqKey,
    },
    /// No SA covers it: send as it is.
    Plain,
    /// The anchor rule `rule` requires IPsec and no SA covers the packet
    /// (the pair was deleted or expired while the connection lives): drop
    /// it ([`TargetStack::refuse_needs_sa`] counts it), or hold a SYN while
    /// IKE negotiates (Fig. 11).
    NeedsSa { rule: RuleName },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetCounters {
    pub gre_in: u64,
    /// Full decryptions done here (the work the routing stack never does).
    pub opened: u64,
    pub opened_bytes: u64,
    pub plain_delivered: u64,
    /// Decrypted datagrams whose filtering the routing stack did (claim 7).
    pub filter_skipped: u64,
    pub sealed: u64,
    pub sealed_bytes: u64,
    pub plain_out: u64,
    pub lifesize_reports: u64,
    pub drops: BTreeMap<String, u64>,
    /// Packets the filter tables of the DVIPAs denied (Fig. 9 block 152,
    /// Fig. 10 block 160), by `RULE reason` (e.g. `dva1-web wrong-sa`,
    /// `dva1-web needs-sa`).
    pub filter_denied: BTreeMap<String, u64>,
}

/// The sequence numbers one outbound packet is sealed with (Fig. 10 block
/// 162): its single (or ESP) SA's, and a bundle's AH SA's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqNumbers {
    pub esp: u64,
    pub ah: Option<u64>,
}

impl SeqNumbers {
    /// The number of a single SA.
    pub fn single(seq: u64) -> Self {
        Self { esp: seq, ah: None }
    }
}

/// One SA pair in a shadow cache.
#[derive(Debug, Clone)]
pub struct ShadowPair {
    /// The routing stack that installed it.
    pub owner: String,
    pub install: SaInstall,
    pub inbound: InboundSa,
    pub outbound: OutboundSa,
    pub inbound_life: Lifesize,
    pub outbound_life: Lifesize,
    /// The AH SAs outside the ESP pair, when the pair is an AH+ESP bundle.
    pub ah: Option<ShadowAh>,
}

/// The AH half of a shadow AH+ESP bundle (RFC 4301 §4.3): opened before
/// the ESP pair inbound, sealed over it outbound, with its own lifesize
/// counts in both directions (Figs. 9 and 10 count every SA).
#[derive(Debug, Clone)]
pub struct ShadowAh {
    pub bundle: AhBundle,
    pub inbound: InboundSa,
    pub outbound: OutboundSa,
    pub inbound_life: Lifesize,
    pub outbound_life: Lifesize,
}

#[derive(Debug)]
pub struct TargetStack {
    pub image: String,
    pub xcf: Ipv4Addr,
    vipa_lists: BTreeMap<String, Vec<VipaEntry>>,
    shadow: Vec<ShadowPair>,
    /// The connections it serves ([`served`]): reported to a DVIPA's new
    /// routing stack; one with a packet admitted here is not ended by a
    /// later packet that fails authentication (a forger could).
    served: Served,
    counters: TargetCounters,
    outbox: Vec<(String, XcfMessage)>,
    scratch: Vec<u8>,
    /// Fig. 7 block 122: per DVIPA, the filter table made of the anchor
    /// rules and dynamic filters its routing stack sent with the SAs.
    filters: BTreeMap<Ipv4Addr, FilterTable>,
    /// The verdict of the last filter lookup and the SA the packet came
    /// under (inbound), for traces.
    last_filter: Option<(filter::Verdict, Option<SaId>)>,
    /// Filter-log records of LOG anchors whose packets this target denied
    /// (the routing stack logs what it denies itself), for the caller.
    filter_logs: Vec<filter::FilterLog>,
}

/// Why a target did not take an SA pair into its shadow cache.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Sa(#[from] SaError),
    /// The anchor rule sent with the pair is not a valid rule.
    #[error("anchor rule refused: {0}")]
    Anchor(#[from] RuleSetError),
    /// The dynamic filter does not fit its anchor.
    #[error("dynamic filter refused: {0}")]
    Dynamic(#[from] filter::InstallError),
}

impl TargetStack {
    pub fn new(image: &str, xcf: Ipv4Addr) -> Self {
        Self {
            image: image.to_string(),
            xcf,
            vipa_lists: BTreeMap::new(),
            shadow: Vec::new(),
            served: Served::new(image, xcf),
            counters: TargetCounters::default(),
            outbox: Vec::new(),
            scratch: Vec::with_capacity(2048),
            filters: BTreeMap::new(),
            last_filter: None,
            filter_logs: Vec::new(),
        }
    }

    /// The filter table of `dvipa`, once an SA pair came with a dynamic
    /// filter for it.
    pub fn filter_table(&self, dvipa: Ipv4Addr) -> Option<&FilterTable> {
        self.filters.get(&dvipa)
    }

    /// The verdict of the last filter lookup (inbound after decryption,
    /// a clear packet, or an outbound plan) and the SA the packet came
    /// under, for traces.
    pub fn last_filter(&self) -> Option<(&filter::Verdict, Option<SaId>)> {
        self.last_filter.as_ref().map(|(v, under)| (v, *under))
    }

    pub fn counters(&self) -> &TargetCounters {
        &self.counters
    }
    pub fn shadow(&self) -> &[ShadowPair] {
        &self.shadow
    }
    pub fn vipa_lists(&self) -> &BTreeMap<String, Vec<VipaEntry>> {
        &self.vipa_lists
    }
    /// The connections it serves ([`served`]).
    pub fn served(&self) -> &Served {
        &self.served
    }
    /// The served table's bounds and half-open timeout (the sysplex's
    /// `[limits]`, as the DCT's); `seed` keys its hasher.
    pub fn set_served_limits(&mut self, seed: u64, limits: DctLimits, syn_ms: u64) {
        self.served.set_limits(seed, limits, syn_ms);
    }
    /// Served connections past their timeouts end (the image's tick).
    pub fn expire_served(&mut self, now: Instant) {
        self.served.expire(now);
    }
    /// XCF messages to send, with the image to send each to.
    pub fn take_outbox(&mut self) -> Vec<(String, XcfMessage)> {
        std::mem::take(&mut self.outbox)
    }

    fn count_drop(&mut self, v: &Verdict) {
        if let Verdict::Drop(d) = v {
            self.note(*d);
        }
    }

    fn note(&mut self, d: TargetDrop) {
        *self.counters.drops.entry(d.name()).or_default() += 1;
    }
}

impl Protocol {
    /// ESP or AH, for traces.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Esp => "ESP",
            Protocol::Ah => "AH",
        }
    }
}

#[cfg(test)]
mod tests;
