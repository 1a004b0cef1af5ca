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
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use super::dct::ConnKey;
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
use crate::wire::{gre, ipv4, IpProtocol, TcpFlags};

/// GRE key that marks a datagram the routing stack already decrypted and
/// filtered (`distribute_crypto = false`): the target accepts its plaintext.
pub const GRE_KEY_DECRYPTED: u32 = 0x504c_5831; // "PLX1"
/// GRE key that marks a datagram the routing stack already inbound-filtered
/// (claim 7, `inbound_filter = "routing"`): the target decrypts it and skips
/// its own filter. The XCF link check vouches for the mark.
pub const GRE_KEY_FILTERED: u32 = 0x504c_5832; // "PLX2"

/// What the routing stack already did to a datagram it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    Nothing,
    /// Tunnel-checked and filtered at the routing stack (claim 7).
    Filtered,
    /// Decrypted and filtered at the routing stack: plaintext follows.
    Decrypted,
}

impl Upstream {
    pub fn gre_key(self) -> Option<u32> {
        match self {
            Upstream::Nothing => None,
            Upstream::Filtered => Some(GRE_KEY_FILTERED),
            Upstream::Decrypted => Some(GRE_KEY_DECRYPTED),
        }
    }
    /// Unknown keys mean nothing was done upstream.
    pub fn from_gre_key(key: Option<u32>) -> Self {
        match key {
            Some(GRE_KEY_FILTERED) => Upstream::Filtered,
            Some(GRE_KEY_DECRYPTED) => Upstream::Decrypted,
            _ => Upstream::Nothing,
        }
    }
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

/// Batched lifesize reporting for one SA direction (Fig. 9 blocks 156–158,
/// Fig. 10 blocks 166–168): report when the unreported bytes reach the
/// threshold, a share of the SA's byte lifesize that adapts to how timely
/// the last rekey was.
#[derive(Debug, Clone, Serialize)]
pub struct Lifesize {
    /// Current threshold as a share of the lifesize, in basis points.
    pub threshold_bp: u32,
    pub lifesize_bytes: u64,
    pub pending_bytes: u64,
    pub pending_packets: u64,
    pub highest_seq: u64,
    pub total_bytes: u64,
}

/// 5 % by default (the patent's example), adapting between 1 % and 10 %.
pub const REPORT_DEFAULT_BP: u32 = 500;
pub const REPORT_MIN_BP: u32 = 100;
pub const REPORT_MAX_BP: u32 = 1000;
/// Without a byte lifesize, report every this many bytes.
pub const REPORT_UNLIMITED_BYTES: u64 = 1 << 20;

impl Lifesize {
    fn new(lifesize_bytes: u64, initial_bytes: u64) -> Self {
        let threshold_bp = if lifesize_bytes > 0 && initial_bytes > 0 {
            ((initial_bytes.saturating_mul(10_000) / lifesize_bytes) as u32)
                .clamp(REPORT_MIN_BP, REPORT_MAX_BP)
        } else {
            REPORT_DEFAULT_BP
        };
        Self {
            threshold_bp,
            lifesize_bytes,
            pending_bytes: 0,
            pending_packets: 0,
            highest_seq: 0,
            total_bytes: 0,
        }
    }
    pub fn threshold_bytes(&self) -> u64 {
        if self.lifesize_bytes == 0 {
            REPORT_UNLIMITED_BYTES
        } else {
            (self.lifesize_bytes / 10_000 * u64::from(self.threshold_bp)).max(1)
        }
    }
    fn add(&mut self, bytes: u64, seq: u64) -> bool {
        self.pending_bytes += bytes;
        self.pending_packets += 1;
        self.total_bytes += bytes;
        self.highest_seq = self.highest_seq.max(seq);
        self.pending_bytes >= self.threshold_bytes()
    }
    /// A late rekey halves the threshold; a timely one raises it by a quarter.
    fn adapt(&mut self, late: bool) {
        self.threshold_bp = if late {
            (self.threshold_bp / 2).max(REPORT_MIN_BP)
        } else {
            (self.threshold_bp + self.threshold_bp / 4).min(REPORT_MAX_BP)
        };
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
    /// Connections with at least one authenticated packet here: a failed
    /// packet of such a connection must not end it (a forger could).
    authenticated: HashMap<ConnKey, u64>,
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
            authenticated: HashMap::new(),
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
    /// XCF messages to send, with the image to send each to.
    pub fn take_outbox(&mut self) -> Vec<(String, XcfMessage)> {
        std::mem::take(&mut self.outbox)
    }

    /// Messages from routing stacks (Fig. 7 blocks 120–122, Fig. 11 block 170).
    pub fn on_xcf(
        &mut self,
        now_ms: u64,
        from: &str,
        msg: &XcfMessage,
    ) -> Result<(), InstallError> {
        match msg {
            XcfMessage::VipaList { owner, vipas } => {
                // A DVIPA has one routing stack: after a takeover the new
                // one's list replaces what the old one announced.
                for (_, list) in self.vipa_lists.iter_mut().filter(|(o, _)| *o != owner) {
                    list.retain(|e| !vipas.iter().any(|v| v.dvipa == e.dvipa));
                }
                self.vipa_lists.retain(|_, l| !l.is_empty());
                self.vipa_lists.insert(owner.clone(), vipas.clone());
            }
            XcfMessage::SaInstall(install) => self.install(now_ms, from, install)?,
            XcfMessage::BundleInstall(bundle) => self.install_bundle(now_ms, from, bundle)?,
            XcfMessage::BundleDelete {
                dvipa,
                esp_inbound_spi,
                ah_inbound_spi,
                ..
            } => self.remove_pairs(|p| {
                let ah_spi = p.ah.as_ref().map(|a| a.bundle.inbound.spi);
                p.install.dvipa == *dvipa
                    && p.install.inbound.spi == *esp_inbound_spi
                    && ah_spi == Some(*ah_inbound_spi)
            }),
            XcfMessage::SaDelete {
                dvipa, inbound_spi, ..
            } => self.remove_pairs(|p| {
                p.install.dvipa == *dvipa && p.install.inbound.spi == *inbound_spi
            }),
            XcfMessage::RekeyTiming { dvipa, spi, late } => self.rekey_timing(*dvipa, *spi, *late),
            _ => {}
        }
        Ok(())
    }

    /// Removes the shadow pairs `gone` selects (deleted, expired or
    /// superseded at the routing stack) with their dynamic filters; the
    /// anchor rules stay, so what they require IPsec for is not sent in
    /// clear once no pair covers it (Fig. 10 block 160).
    fn remove_pairs(&mut self, gone: impl Fn(&ShadowPair) -> bool) {
        let filters = &mut self.filters;
        self.shadow.retain(|p| {
            if !gone(p) {
                return true;
            }
            if let Some(t) = filters.get_mut(&p.install.dvipa) {
                t.remove_dynamic(&p.install.inbound_id());
            }
            false
        });
    }

    /// The IKE's verdict on the rekey of the pair with `spi`: its report
    /// thresholds adapt (Fig. 9 block 156, Fig. 10 block 166), and the
    /// pairs of the same DVIPA and peer, its successor among them (installed
    /// before the old pair is deleted), continue from the adapted values,
    /// so the threshold keeps falling after late rekeys and rising after
    /// timely ones, within bounds.
    fn rekey_timing(&mut self, dvipa: Ipv4Addr, spi: Spi, late: bool) {
        let Some(old) = self
            .shadow
            .iter_mut()
            .find(|p| p.install.dvipa == dvipa && p.has_spi(spi))
        else {
            return;
        };
        let adapted: Vec<u32> = old
            .lifes_mut()
            .map(|l| {
                l.adapt(late);
                l.threshold_bp
            })
            .collect();
        let peer = old.install.outbound.dst;
        for p in self
            .shadow
            .iter_mut()
            .filter(|p| p.install.dvipa == dvipa && p.install.outbound.dst == peer)
        {
            for (l, bp) in p.lifes_mut().zip(&adapted) {
                l.threshold_bp = *bp;
            }
        }
    }

    /// Fig. 7 block 122: the pair goes into the shadow cache of its DVIPA.
    pub fn install(
        &mut self,
        now_ms: u64,
        owner: &str,
        install: &SaInstall,
    ) -> Result<(), InstallError> {
        self.insert(now_ms, owner, install, None)
    }

    /// Fig. 7 block 122 for an AH+ESP bundle: the ESP pair and the AH pair
    /// outside it go into the shadow cache together.
    pub fn install_bundle(
        &mut self,
        now_ms: u64,
        owner: &str,
        bundle: &BundleInstall,
    ) -> Result<(), InstallError> {
        bundle.check().map_err(SaError::from)?;
        let now_s = now_ms / 1000;
        let (ah, report) = (&bundle.ah, bundle.esp.report_bytes);
        let ah = ShadowAh {
            inbound: InboundSa::new(Sa::new(ah.inbound.clone())?, now_s),
            outbound: OutboundSa::new(Sa::new(ah.outbound.clone())?, now_s),
            inbound_life: lifesize_for(&ah.inbound, report),
            outbound_life: lifesize_for(&ah.outbound, report),
            bundle: ah.clone(),
        };
        self.insert(now_ms, owner, &bundle.esp, Some(ah))
    }

    fn insert(
        &mut self,
        now_ms: u64,
        owner: &str,
        install: &SaInstall,
        ah: Option<ShadowAh>,
    ) -> Result<(), InstallError> {
        // The same pair again from another routing stack (a takeover): the
        // shadow SA keeps its replay window and counters, only its owner
        // (where lifesize reports and ConnEnded go) and its filter (the new
        // owner's) change.
        if let Some(i) = self.shadow.iter().position(|p| p.install.same_sas(install)) {
            self.place_filter(install)?;
            let p = &mut self.shadow[i];
            p.inbound.set_selector(opening_selector(install))?;
            p.owner = owner.to_string();
            p.install.filter = install.filter.clone();
            return Ok(());
        }
        let now_s = now_ms / 1000;
        let mut opening = install.inbound.clone();
        opening.selector = opening_selector(install);
        let inbound = InboundSa::new(Sa::new(opening)?, now_s);
        let outbound = OutboundSa::new(Sa::new(install.outbound.clone())?, now_s);
        self.place_filter(install)?;
        let pair = ShadowPair {
            owner: owner.to_string(),
            inbound_life: lifesize_for(&install.inbound, install.report_bytes),
            outbound_life: lifesize_for(&install.outbound, install.report_bytes),
            install: install.clone(),
            inbound,
            outbound,
            ah,
        };
        self.shadow
            .retain(|p| p.install.inbound.spi != install.inbound.spi);
        self.shadow.push(pair);
        Ok(())
    }

    /// Fig. 7 block 122: the pair's dynamic filter goes into the filter
    /// table of its DVIPA, in front of the anchor rule that came with it
    /// (added to the table, or replaced when the routing stack's version
    /// changed). Whatever filter the same inbound SA had before goes. All
    /// or nothing: on an error the table is as it was.
    fn place_filter(&mut self, install: &SaInstall) -> Result<(), InstallError> {
        let Some(f) = &install.filter else {
            if let Some(t) = self.filters.get_mut(&install.dvipa) {
                t.remove_dynamic(&install.inbound_id());
            }
            return Ok(());
        };
        let mut table = match self.filters.get(&install.dvipa) {
            Some(t) => t.clone(),
            None => anchors_table()?,
        };
        place_anchor(&mut table, f)?;
        table.remove_dynamic(&install.inbound_id());
        table.install_dynamic(f.dynamic.clone())?;
        self.filters.insert(install.dvipa, table);
        Ok(())
    }

    /// GRE from a routing stack over the XCF link whose peer has XCF
    /// address `link_peer`.
    pub fn from_gre(&mut self, now_ms: u64, link_peer: Ipv4Addr, packet: &[u8]) -> Verdict {
        let decapped = decap(packet, self.xcf);
        self.link_checked(now_ms, link_peer, decapped)
    }

    /// The same for GRE-in-UDP (RFC 8086): `body` is a UDP payload to
    /// this image's XCF address, port 4754, sent from `udp_src`.
    pub fn from_gre_in_udp(
        &mut self,
        now_ms: u64,
        link_peer: Ipv4Addr,
        udp_src: Ipv4Addr,
        body: &[u8],
    ) -> Verdict {
        let decapped = decap_gre(udp_src, body);
        self.link_checked(now_ms, link_peer, decapped)
    }

    /// Figs. 7 and 9 after decapsulation: the link check, then opening.
    fn link_checked(
        &mut self,
        now_ms: u64,
        link_peer: Ipv4Addr,
        decapped: Result<Decapped<'_>, TargetDrop>,
    ) -> Verdict {
        self.counters.gre_in += 1;
        let verdict = match decapped {
            Err(drop) => Verdict::Drop(drop),
            Ok(g) if g.outer_src != link_peer => Verdict::Drop(TargetDrop::LinkCheck),
            Ok(g) => self.inbound(now_ms, g.inner, g.upstream),
        };
        self.count_drop(&verdict);
        verdict
    }

    /// A packet for a DVIPA this image serves, without GRE (this image is
    /// its own routing stack), with what the routing stack already did.
    pub fn inbound(&mut self, now_ms: u64, packet: &[u8], upstream: Upstream) -> Verdict {
        self.last_filter = None;
        match packet::classify(packet) {
            Err(_) => Verdict::Drop(TargetDrop::BadGre),
            Ok(Kind::Ipsec(outer)) => {
                self.open(now_ms, packet, &outer, upstream == Upstream::Filtered)
            }
            Ok(_) if upstream == Upstream::Decrypted => self.deliver_plain(packet),
            Ok(Kind::Plain(flow)) if self.clear_denied(now_ms, packet, flow.dst) => {
                Verdict::Drop(TargetDrop::Unprotected)
            }
            Ok(Kind::Plain(flow))
                if self.protected(flow.src, flow.dst, flow.proto, flow.src_port, flow.dst_port) =>
            {
                Verdict::Drop(TargetDrop::Unprotected)
            }
            Ok(_) => self.deliver_plain(packet),
        }
    }

    /// A clear packet to `dvipa` whose first match in the DVIPA's table is
    /// an anchor or a dynamic filter: IPsec is required (counted as
    /// `RULE clear-text`). The table holds only what the routing stack
    /// sent, none of its permit and deny rules: its default deny means
    /// "no anchor's business", and the routing stack, which has the whole
    /// policy, filtered the packet before forwarding it.
    fn clear_denied(&mut self, now_ms: u64, packet: &[u8], dvipa: Ipv4Addr) -> bool {
        let Some(table) = self.filters.get_mut(&dvipa) else {
            return false;
        };
        let dir = PacketDirection::Inbound;
        let Ok(p) = FilterPacket::from_ipv4(packet, dir, PacketRouting::Local, None) else {
            return false;
        };
        let (v, log) = table.evaluate_logged(&p, core::time::Duration::from_millis(now_ms));
        self.filter_logs.extend(log);
        let denied = matches!(
            &v,
            filter::Verdict::Deny {
                reason: filter::DenyReason::ClearText,
                ..
            }
        );
        if denied {
            *self
                .counters
                .filter_denied
                .entry(v.tunnel_denial())
                .or_default() += 1;
        }
        self.last_filter = Some((v, None));
        denied
    }

    fn deliver_plain(&mut self, packet: &[u8]) -> Verdict {
        self.counters.plain_delivered += 1;
        Verdict::Deliver(packet.to_vec())
    }

    /// Whether some shadow filter says this inbound flow must be protected.
    fn protected(&self, src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, sp: u16, dp: u16) -> bool {
        self.shadow.iter().any(|p| {
            p.install.inbound.selector.matches(
                IpAddr::V4(src),
                IpAddr::V4(dst),
                proto,
                Some((sp, dp)),
            )
        })
    }

    /// Fig. 9 blocks 150–158; `filtered`: the routing stack filtered (claim 7).
    fn open(&mut self, now_ms: u64, packet: &[u8], outer: &OuterView, filtered: bool) -> Verdict {
        let Ok(loc) = locate_in(packet, outer) else {
            return Verdict::Drop(TargetDrop::BadGre);
        };
        let Some(i) = self
            .shadow
            .iter()
            .position(|p| loc.names(&p.install.inbound, p.ah.as_ref().map(|a| &a.bundle.inbound)))
        else {
            return Verdict::Drop(TargetDrop::NoShadowSa);
        };
        let mut out = std::mem::take(&mut self.scratch);
        let pair = &mut self.shadow[i];
        let now_s = now_ms / 1000;
        // Block 150: ESP or AH alone, or the bundle (AH first, RFC 4301 §5.2).
        let opened = match pair.ah.as_mut() {
            None => pair.inbound.open(now_s, packet, &mut out),
            Some(ah) => {
                open_bundle_counted(&mut ah.inbound, &mut pair.inbound, now_s, packet, &mut out)
            }
        };
        let verdict = match opened {
            Err(e) => {
                self.reject_if_new(now_ms, i, packet, e);
                Verdict::Drop(TargetDrop::Ipsec(e.reason()))
            }
            Ok(o) => {
                self.counters.opened += 1;
                self.counters.opened_bytes += o.protected_bytes as u64;
                match self.after_open(now_ms, i, &out, o.protected_bytes as u64, o.seq, filtered) {
                    // The plaintext buffer goes to the caller as it is.
                    Ok(()) => return Verdict::Deliver(out),
                    Err(d) => Verdict::Drop(d),
                }
            }
        };
        out.clear();
        self.scratch = out;
        verdict
    }

    /// Block 152 (inbound filter, unless the routing stack did it) and
    /// 154–158 (lifesize). The engine's own selector check after
    /// decryption (RFC 4301 §5.2) ran while opening, unless the pair has a
    /// dynamic filter, which makes that check here ([`opening_selector`]).
    fn after_open(
        &mut self,
        now_ms: u64,
        i: usize,
        plain: &[u8],
        bytes: u64,
        seq: u64,
        filtered: bool,
    ) -> Result<(), TargetDrop> {
        let Ok(flow) = packet::flow_of(plain) else {
            return Err(TargetDrop::Filter);
        };
        let key = (flow.proto == IpProtocol::Tcp).then_some(ConnKey {
            client: flow.src,
            client_port: flow.src_port,
            dvipa: flow.dst,
            port: flow.dst_port,
        });
        if filtered {
            self.counters.filter_skipped += 1;
        } else if let Err(d) = self.inbound_filter(now_ms, i, plain, &flow) {
            self.reject_unadmitted(i, key);
            return Err(d);
        }
        self.count_inbound(i, bytes, seq);
        if let Some(key) = key {
            self.authenticated.insert(key, now_ms);
            if flow.flags.is_some_and(|f| f.contains(TcpFlags::RST)) {
                let owner = self.shadow[i].owner.clone();
                self.outbox
                    .push((owner, conn_ended(key, ConnEndReason::Reset)));
                self.authenticated.remove(&key);
            }
        }
        Ok(())
    }

    /// Block 152: the decrypted packet of shadow pair `i`. With a dynamic
    /// filter, the DVIPA's table decides with the packet marked as having
    /// arrived under the pair's inbound SA X: only a first match on a
    /// dynamic filter of X passes; another SA's (wrong-sa), the anchor
    /// itself or nothing at all (outside-sa, default-deny) is refused and
    /// counted by rule and reason. Without one, the pair's inbound
    /// selector decides, as before dynamic filters travelled.
    fn inbound_filter(
        &mut self,
        now_ms: u64,
        i: usize,
        plain: &[u8],
        flow: &Flow,
    ) -> Result<(), TargetDrop> {
        let install = &self.shadow[i].install;
        let table = match (&install.filter, self.filters.get_mut(&install.dvipa)) {
            (Some(_), Some(t)) => t,
            _ => {
                let ports = matches!(flow.proto, IpProtocol::Tcp | IpProtocol::Udp)
                    .then_some((flow.src_port, flow.dst_port));
                let (src, dst) = (IpAddr::V4(flow.src), IpAddr::V4(flow.dst));
                let sel = &install.inbound.selector;
                let admitted = sel.matches(src, dst, flow.proto, ports);
                return admitted.then_some(()).ok_or(TargetDrop::Filter);
            }
        };
        let under = install.inbound_id();
        let dir = PacketDirection::Inbound;
        let Ok(p) = FilterPacket::from_ipv4(plain, dir, PacketRouting::Local, Some(under)) else {
            return Err(TargetDrop::Filter);
        };
        let (v, log) = table.evaluate_logged(&p, core::time::Duration::from_millis(now_ms));
        self.filter_logs.extend(log);
        let admitted = matches!(&v, filter::Verdict::PermitProtected { sa, .. } if *sa == under);
        if !admitted {
            *self
                .counters
                .filter_denied
                .entry(v.tunnel_denial())
                .or_default() += 1;
        }
        self.last_filter = Some((v, Some(under)));
        admitted.then_some(()).ok_or(TargetDrop::Filter)
    }

    /// A filtered packet of a TCP connection none of whose packets this
    /// target admitted: the routing stack's DCT entry (made from a peek,
    /// with `FilterAt::Target`) serves nothing, so it is ended as for a
    /// packet that failed authentication.
    fn reject_unadmitted(&mut self, i: usize, key: Option<ConnKey>) {
        let Some(key) = key.filter(|k| !self.authenticated.contains_key(k)) else {
            return;
        };
        let owner = self.shadow[i].owner.clone();
        self.outbox
            .push((owner, conn_ended(key, ConnEndReason::Rejected)));
    }

    /// Blocks 154–158: inbound lifesize, on the ESP (or single) SA and on
    /// a bundle's AH SA, each reported when its threshold is reached.
    fn count_inbound(&mut self, i: usize, bytes: u64, seq: u64) {
        let pair = &mut self.shadow[i];
        let mut reports = Vec::new();
        if pair.inbound_life.add(bytes, seq) {
            reports.push(lifesize_msg(pair, Direction::Inbound));
        }
        if let Some(ah) = pair.ah.as_mut() {
            // The AH window's top: the highest AH number authenticated.
            if ah.inbound_life.add(bytes, ah.inbound.replay().top()) {
                reports.push(ah_lifesize_msg(pair.install.dvipa, ah, Direction::Inbound));
            }
        }
        queue_reports(&mut self.counters, &mut self.outbox, &pair.owner, reports);
    }

    /// A packet that failed authentication may be the forged SYN that made
    /// the routing stack's DCT entry: unless this connection has had an
    /// authenticated packet here, tell the routing stack to drop the entry.
    fn reject_if_new(&mut self, _now_ms: u64, i: usize, packet: &[u8], e: OpenError) {
        if !matches!(e.reason(), DropReason::IcvMismatch) {
            return;
        }
        let Ok(p) = peek(packet, self.shadow[i].inbound.sa()) else {
            return;
        };
        let (IpAddr::V4(client), IpAddr::V4(dvipa)) = (p.src, p.dst) else {
            return;
        };
        let key = ConnKey {
            client,
            client_port: p.src_port,
            dvipa,
            port: p.dst_port,
        };
        if p.proto == IpProtocol::Tcp && !self.authenticated.contains_key(&key) {
            let owner = self.shadow[i].owner.clone();
            self.outbox
                .push((owner, conn_ended(key, ConnEndReason::Rejected)));
        }
    }

    /// Fig. 10 block 160: is the outbound packet for a connection with
    /// distributed IPsec? With a filter table for its DVIPA, the table
    /// decides: a dynamic filter's SA seals it ([`OutboundPlan::Protect`]
    /// or [`OutboundPlan::Bundle`]); an anchor with no dynamic filter for
    /// it means IPsec is required and no SA exists
    /// ([`OutboundPlan::NeedsSa`]: never sent in clear). Otherwise a shadow
    /// pair without a dynamic filter whose selector covers the packet seals
    /// it, as before dynamic filters travelled, and the rest is plain.
    pub fn outbound_plan(&mut self, packet: &[u8]) -> OutboundPlan {
        self.last_filter = None;
        let Ok(flow) = packet::flow_of(packet) else {
            return OutboundPlan::Plain;
        };
        if let Some(plan) = self.filtered_plan(packet, flow.src) {
            return plan;
        }
        let ports = matches!(flow.proto, IpProtocol::Tcp | IpProtocol::Udp)
            .then_some((flow.src_port, flow.dst_port));
        self.shadow
            .iter()
            .find(|p| {
                p.install.filter.is_none()
                    && p.install.outbound.selector.matches(
                        IpAddr::V4(flow.src),
                        IpAddr::V4(flow.dst),
                        flow.proto,
                        ports,
                    )
            })
            .map_or(OutboundPlan::Plain, plan_of)
    }

    /// The filter table's plan for an outbound packet from `dvipa`; `None`
    /// when no anchor or dynamic filter of the table matches it.
    fn filtered_plan(&mut self, packet: &[u8], dvipa: Ipv4Addr) -> Option<OutboundPlan> {
        let table = self.filters.get_mut(&dvipa)?;
        let dir = PacketDirection::Outbound;
        let p = FilterPacket::from_ipv4(packet, dir, PacketRouting::Local, None).ok()?;
        let v = table.evaluate(&p);
        let plan = match &v {
            filter::Verdict::Protect { rule, sa } => Some(
                self.sealing_pair(sa)
                    .map_or_else(|| OutboundPlan::NeedsSa { rule: rule.clone() }, plan_of),
            ),
            filter::Verdict::NeedsSa { rule, .. } => {
                Some(OutboundPlan::NeedsSa { rule: rule.clone() })
            }
            // An IpManVpnAction anchor: no manual SA covers the packet,
            // or the tunnel is inactive (Active No); never sent in clear.
            // The table counts the reason, the caller `needs-sa`.
            filter::Verdict::Deny {
                rule,
                reason: DenyReason::NoManualSa | DenyReason::ManualInactive,
                ..
            } => Some(OutboundPlan::NeedsSa { rule: rule.clone() }),
            _ => None,
        };
        self.last_filter = Some((v, None));
        plan
    }

    /// The shadow pair that seals for the dynamic filter of outbound SA
    /// `sa`. The pairs of a rekey have the same anchor and selectors, and
    /// the table lists the newest first (z/OS); the oldest still installed
    /// seals, as before dynamic filters travelled: when the client starts
    /// the rekey it installs the new SAs only once our CREATE_CHILD_SA
    /// response arrives, so, like strongSwan as a rekey responder, the
    /// sysplex keeps sending on the old SA until it is deleted (RFC 7296
    /// §2.8 leaves the moment to the implementation).
    fn sealing_pair(&self, sa: &SaId) -> Option<&ShadowPair> {
        let chosen = self
            .shadow
            .iter()
            .find(|p| p.install.outbound_id() == *sa)?;
        let Some(f) = &chosen.install.filter else {
            return Some(chosen);
        };
        let rekey_of = |p: &ShadowPair| {
            p.install.filter.as_ref().is_some_and(|g| {
                g.anchor.name == f.anchor.name
                    && g.dynamic.outbound == f.dynamic.outbound
                    && g.dynamic.inbound == f.dynamic.inbound
            }) && p.install.outbound.dst == chosen.install.outbound.dst
        };
        // Shadow pairs are kept in the order they were installed.
        self.shadow.iter().find(|p| rekey_of(p))
    }

    /// The filter-log records since the last call (LOG anchors).
    pub fn take_filter_logs(&mut self) -> Vec<filter::FilterLog> {
        std::mem::take(&mut self.filter_logs)
    }

    /// Fig. 10 block 160's "no": an anchor rule requires IPsec for an
    /// outbound packet no SA covers; it is dropped, counted as
    /// `needs-sa` and by `RULE needs-sa`, never sent in clear.
    pub fn refuse_needs_sa(&mut self, rule: &str) {
        self.note(TargetDrop::NeedsSa);
        *self
            .counters
            .filter_denied
            .entry(format!("{rule} needs-sa"))
            .or_default() += 1;
    }

    /// Fig. 10 blocks 164–168: seal into `out`, ready to leave on this
    /// image's own external link, with the numbers the CF gave: the single
    /// (or ESP) SA's, and for an AH+ESP bundle the AH SA's too (ESP first,
    /// then AH over it). Lifesize is counted on every outbound SA used. A
    /// bundle's ESP SA never leaves without its AH (Fig. 10 plans it as
    /// [`OutboundPlan::Bundle`]), nor a single SA with an AH number.
    pub fn seal(
        &mut self,
        now_ms: u64,
        spi: Spi,
        seq: SeqNumbers,
        rng: &mut impl RngCore,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TargetDrop> {
        let Some(i) = self.outbound_pair(spi) else {
            return Err(TargetDrop::NoShadowSa);
        };
        let pair = &mut self.shadow[i];
        let now_s = now_ms / 1000;
        let sealed = match (pair.ah.as_mut(), seq.ah) {
            (None, None) => pair.outbound.seal(now_s, seq.esp, rng, packet, out).is_ok(),
            (Some(ah), Some(ah_seq)) => seal_bundle_counted(
                &mut ah.outbound,
                ah_seq,
                &mut pair.outbound,
                seq.esp,
                now_s,
                rng,
                packet,
                out,
            )
            .is_ok(),
            _ => false,
        };
        if !sealed {
            self.note(TargetDrop::Seal);
            return Err(TargetDrop::Seal);
        }
        self.count_outbound(i, packet.len() as u64, seq.esp, seq.ah);
        Ok(())
    }

    /// The shadow pair whose outbound (ESP or single) SA is `spi`.
    fn outbound_pair(&mut self, spi: Spi) -> Option<usize> {
        let i = self
            .shadow
            .iter()
            .position(|p| p.install.outbound.spi == spi);
        if i.is_none() {
            self.note(TargetDrop::NoShadowSa);
        }
        i
    }

    /// Blocks 166–168: outbound lifesize, on the ESP (or single) SA and,
    /// with `ah_seq`, on the bundle's AH SA.
    fn count_outbound(&mut self, i: usize, bytes: u64, seq: u64, ah_seq: Option<u64>) {
        self.counters.sealed += 1;
        self.counters.sealed_bytes += bytes;
        let pair = &mut self.shadow[i];
        let mut reports = Vec::new();
        if pair.outbound_life.add(bytes, seq) {
            reports.push(lifesize_msg(pair, Direction::Outbound));
        }
        if let (Some(ah), Some(ah_seq)) = (pair.ah.as_mut(), ah_seq) {
            if ah.outbound_life.add(bytes, ah_seq) {
                reports.push(ah_lifesize_msg(pair.install.dvipa, ah, Direction::Outbound));
            }
        }
        queue_reports(&mut self.counters, &mut self.outbox, &pair.owner, reports);
    }

    pub fn count_plain_out(&mut self) {
        self.counters.plain_out += 1;
    }

    fn count_drop(&mut self, v: &Verdict) {
        if let Verdict::Drop(d) = v {
            self.note(*d);
        }
    }

    fn note(&mut self, d: TargetDrop) {
        *self.counters.drops.entry(d.name()).or_default() += 1;
    }

    /// Sends what lifesize is pending (at a timer, so small counts reach
    /// the routing stack too).
    pub fn flush_lifesize(&mut self) {
        for p in &mut self.shadow {
            for dir in [Direction::Inbound, Direction::Outbound] {
                let mut reports = Vec::new();
                if p.life(dir).pending_packets > 0 {
                    reports.push(lifesize_msg(p, dir));
                }
                let dvipa = p.install.dvipa;
                if let Some(ah) = p.ah.as_mut().filter(|a| a.life(dir).pending_packets > 0) {
                    reports.push(ah_lifesize_msg(dvipa, ah, dir));
                }
                queue_reports(&mut self.counters, &mut self.outbox, &p.owner, reports);
            }
        }
    }
}

/// How a shadow pair seals: alone, or as an AH+ESP bundle.
fn plan_of(p: &ShadowPair) -> OutboundPlan {
    match &p.ah {
        None => OutboundPlan::Protect {
            spi: p.install.outbound.spi,
            seq_key: p.install.seq_key,
        },
        Some(ah) => OutboundPlan::Bundle {
            spi: p.install.outbound.spi,
            seq_key: p.install.seq_key,
            ah_seq_key: ah.bundle.seq_key,
        },
    }
}

/// The selectors a shadow pair's inbound SA checks decrypted packets
/// against while opening them (RFC 4301 §5.2). With a dynamic filter,
/// every IPv4 packet: block 152's lookup in the DVIPA's filter table is
/// that check, and it can name the rule and reason (a packet outside the
/// SA's selectors is outside its dynamic filter, `outside-sa`, or inside
/// another SA's, `wrong-sa`); with `FilterAt::Routing` the routing stack
/// made it on the peeked headers, the very bytes the ICV then
/// authenticates (claim 7). Without one, the SA's own selectors.
fn opening_selector(install: &SaInstall) -> TrafficSelector {
    match install.filter {
        Some(_) => TrafficSelector::ANY_V4,
        None => install.inbound.selector,
    }
}

/// An empty table for the anchors a routing stack sends: no rules, the
/// default deny after them. An anchor with LOG logs what this target
/// denies under it; the implicit default deny does not (the routing
/// stack, which has the whole policy, logs the rest).
fn anchors_table() -> Result<FilterTable, RuleSetError> {
    let options = FilterOptions {
        logging: true,
        log_implicit: false,
        ..FilterOptions::default()
    };
    FilterTable::new(RuleSet::default(), options)
}

/// The anchor of `f` among the table's rules: appended when new, replaced
/// when the routing stack's rule changed (its dynamic filters stay in
/// front of it).
fn place_anchor(table: &mut FilterTable, f: &SaFilter) -> Result<(), RuleSetError> {
    let mut rules = table.active_rules().clone();
    match rules.rules.iter_mut().find(|r| r.name == f.anchor.name) {
        Some(r) if *r == f.anchor => return Ok(()),
        Some(r) => *r = f.anchor.clone(),
        None => rules.rules.push(f.anchor.clone()),
    }
    table.install_policy(rules).map(|_| ())
}

/// Blocks 158 and 168: lifesize reports go to the routing stack that
/// installed the pair (counted).
fn queue_reports(
    counters: &mut TargetCounters,
    outbox: &mut Vec<(String, XcfMessage)>,
    owner: &str,
    reports: Vec<XcfMessage>,
) {
    counters.lifesize_reports += reports.len() as u64;
    outbox.extend(reports.into_iter().map(|m| (owner.to_string(), m)));
}

impl ShadowPair {
    /// Whether `spi` is one of this pair's SAs (a bundle's AH SAs included).
    /// Every lifesize count of the pair: ESP inbound and outbound, then,
    /// in a bundle, AH inbound and outbound.
    fn lifes_mut(&mut self) -> impl Iterator<Item = &mut Lifesize> {
        let ah = self
            .ah
            .as_mut()
            .map(|a| [&mut a.inbound_life, &mut a.outbound_life]);
        [&mut self.inbound_life, &mut self.outbound_life]
            .into_iter()
            .chain(ah.into_iter().flatten())
    }

    fn has_spi(&self, spi: Spi) -> bool {
        let ah = self.ah.as_ref().map(|a| &a.bundle);
        [Some(&self.install.inbound), Some(&self.install.outbound)]
            .into_iter()
            .chain([ah.map(|a| &a.inbound), ah.map(|a| &a.outbound)])
            .flatten()
            .any(|c| c.spi == spi)
    }

    fn life(&self, dir: Direction) -> &Lifesize {
        match dir {
            Direction::Inbound => &self.inbound_life,
            Direction::Outbound => &self.outbound_life,
        }
    }
}

impl ShadowAh {
    fn life(&self, dir: Direction) -> &Lifesize {
        match dir {
            Direction::Inbound => &self.inbound_life,
            Direction::Outbound => &self.outbound_life,
        }
    }
}

/// The lifesize counter of an SA: its byte lifetime and the starting
/// report threshold (Fig. 9 block 156).
fn lifesize_for(cfg: &SaConfig, report_bytes: u64) -> Lifesize {
    Lifesize::new(cfg.lifetimes.hard.bytes.unwrap_or(0), report_bytes)
}

/// Builds the report of a pair's ESP (or single) SA and resets its
/// pending counts.
fn lifesize_msg(pair: &mut ShadowPair, dir: Direction) -> XcfMessage {
    let (cfg, life) = match dir {
        Direction::Inbound => (&pair.install.inbound, &mut pair.inbound_life),
        Direction::Outbound => (&pair.install.outbound, &mut pair.outbound_life),
    };
    report(pair.install.dvipa, cfg, life, dir)
}

/// The same for a bundle's AH SA.
fn ah_lifesize_msg(dvipa: Ipv4Addr, ah: &mut ShadowAh, dir: Direction) -> XcfMessage {
    let (cfg, life) = match dir {
        Direction::Inbound => (&ah.bundle.inbound, &mut ah.inbound_life),
        Direction::Outbound => (&ah.bundle.outbound, &mut ah.outbound_life),
    };
    report(dvipa, cfg, life, dir)
}

/// Fig. 9 block 158, Fig. 10 block 168: one SA's report.
fn report(dvipa: Ipv4Addr, cfg: &SaConfig, life: &mut Lifesize, dir: Direction) -> XcfMessage {
    let msg = XcfMessage::Lifesize {
        dvipa,
        protocol: cfg.protocol,
        spi: cfg.spi,
        direction: dir,
        bytes: life.pending_bytes,
        packets: life.pending_packets,
        highest_seq: life.highest_seq,
    };
    life.pending_bytes = 0;
    life.pending_packets = 0;
    msg
}

fn conn_ended(key: ConnKey, reason: ConnEndReason) -> XcfMessage {
    XcfMessage::ConnEnded {
        dvipa: key.dvipa,
        port: key.port,
        client: key.client,
        client_port: key.client_port,
        reason,
    }
}

/// A decapsulated GRE datagram.
#[derive(Debug)]
pub struct Decapped<'a> {
    pub outer_src: Ipv4Addr,
    pub inner: &'a [u8],
    pub upstream: Upstream,
}

/// Outer IPv4 (protocol 47, to `me`) + GRE carrying IPv4 (RFC 2784).
pub fn decap(packet: &[u8], me: Ipv4Addr) -> Result<Decapped<'_>, TargetDrop> {
    let ip = ipv4::Packet::new_checked(packet).map_err(|_| TargetDrop::BadGre)?;
    let repr = ipv4::Repr::parse(&ip).map_err(|_| TargetDrop::BadGre)?;
    if repr.next_header != IpProtocol::Gre || repr.dst_addr != me {
        return Err(TargetDrop::BadGre);
    }
    let hl = usize::from(ip.header_len());
    let end = usize::from(ip.total_len());
    decap_gre(repr.src_addr, &packet[hl..end])
}

/// A GRE header carrying IPv4 and what follows it, sent by `outer_src`:
/// the payload of an IPv4 protocol 47 packet, or of a UDP datagram to port
/// 4754 (GRE-in-UDP, RFC 8086 §3).
pub fn decap_gre(outer_src: Ipv4Addr, body: &[u8]) -> Result<Decapped<'_>, TargetDrop> {
    let g = gre::Packet::new_checked(body).map_err(|_| TargetDrop::BadGre)?;
    let g_repr = gre::Repr::parse(&g).map_err(|_| TargetDrop::BadGre)?;
    if g_repr.protocol_type != crate::wire::EtherType::Ipv4 {
        return Err(TargetDrop::BadGre);
    }
    Ok(Decapped {
        outer_src,
        inner: &body[g.header_len()..],
        upstream: Upstream::from_gre_key(g_repr.key),
    })
}

/// A GRE header (RFC 2784) for a forwarded IPv4 packet: at most 8 bytes
/// (the base header and the RFC 2890 key, which marks plaintext the
/// routing stack already decrypted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreHeader {
    bytes: [u8; 8],
    len: usize,
}

impl GreHeader {
    pub fn new(upstream: Upstream) -> Self {
        let g = gre::Repr {
            protocol_type: crate::wire::EtherType::Ipv4,
            checksum: false,
            key: upstream.gre_key(),
            seq_number: None,
        };
        let mut bytes = [0u8; 8];
        let len = g.buffer_len();
        g.emit(&mut gre::Packet::new_unchecked(&mut bytes[..len]));
        Self { bytes, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The GRE header and `inner` (RFC 2784), without the outer IPv4 header:
/// what a raw GRE socket sends (the kernel adds the header).
pub fn gre_payload(inner: &[u8], upstream: Upstream, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(GreHeader::new(upstream).as_bytes());
    out.extend_from_slice(inner);
}

/// Wraps `inner` in GRE from `src` to `dst` (XCF addresses), the routing
/// stack's forwarding format (Fig. 8 block 140), outer IPv4 header
/// included, into `out`.
pub fn encap(src: Ipv4Addr, dst: Ipv4Addr, inner: &[u8], upstream: Upstream, out: &mut Vec<u8>) {
    let mut g = Vec::new();
    gre_payload(inner, upstream, &mut g);
    let ip = ipv4::Repr::new(src, dst, IpProtocol::Gre, g.len());
    out.clear();
    out.resize(ip.buffer_len() + g.len(), 0);
    let mut p = ipv4::Packet::new_unchecked(&mut out[..]);
    ip.emit(&mut p);
    p.payload_mut().copy_from_slice(&g);
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
mod tests {
    use super::*;
    use crate::ipsec::sa::tests::config;
    use crate::ipsec::sa::{EncAlg, IntegAlg, Mode};

    const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

    /// A manually keyed pair with a 1 MB byte lifetime between the client
    /// of `config` and the DVIPA.
    fn pair(inbound_spi: u32, outbound_spi: u32) -> SaInstall {
        let mut inbound = config(EncAlg::AesCbc128, IntegAlg::HmacSha1_96, Mode::Tunnel);
        inbound.spi = Spi(inbound_spi);
        inbound.lifetimes.hard.bytes = Some(1_000_000);
        let mut outbound = inbound.clone();
        outbound.spi = Spi(outbound_spi);
        std::mem::swap(&mut outbound.src, &mut outbound.dst);
        SaInstall::pair(DVIPA, inbound, outbound)
    }

    fn thresholds(t: &TargetStack) -> Vec<(u32, u32)> {
        t.shadow()
            .iter()
            .map(|p| (p.inbound_life.threshold_bp, p.outbound_life.threshold_bp))
            .collect()
    }

    fn timing(t: &mut TargetStack, spi: u32, late: bool) {
        let msg = XcfMessage::RekeyTiming {
            dvipa: DVIPA,
            spi: Spi(spi),
            late,
        };
        t.on_xcf(0, "MVS1", &msg).expect("RekeyTiming");
    }

    #[test]
    fn rekey_timing_adapts_the_old_pair_and_its_successor_within_bounds() {
        let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
        t.install(0, "MVS1", &pair(0x100, 0x200)).expect("old pair");
        // The successor is installed before the old pair's verdict comes.
        t.install(0, "MVS1", &pair(0x101, 0x201)).expect("new pair");
        let d = REPORT_DEFAULT_BP;
        assert_eq!(thresholds(&t), vec![(d, d); 2]);

        timing(&mut t, 0x100, true);
        assert_eq!(thresholds(&t), vec![(d / 2, d / 2); 2]);
        // Late again (about the successor, by its outbound SPI): it falls
        // on from where it was, down to the floor.
        for _ in 0..4 {
            timing(&mut t, 0x201, true);
        }
        let min = REPORT_MIN_BP;
        assert_eq!(thresholds(&t), vec![(min, min); 2]);
        // Timely rekeys raise it by a quarter each, up to the ceiling.
        timing(&mut t, 0x101, false);
        assert_eq!(thresholds(&t), vec![(min + min / 4, min + min / 4); 2]);
        for _ in 0..20 {
            timing(&mut t, 0x101, false);
        }
        assert_eq!(thresholds(&t), vec![(REPORT_MAX_BP, REPORT_MAX_BP); 2]);
        // A verdict about an SPI nobody has changes nothing.
        timing(&mut t, 0x999, true);
        assert_eq!(thresholds(&t), vec![(REPORT_MAX_BP, REPORT_MAX_BP); 2]);
    }

    /// GRE-in-UDP (RFC 8086) is the same GRE after a different outer
    /// header: the same packet is delivered as from protocol 47, and the
    /// link check applies to the UDP sender.
    #[test]
    fn gre_in_udp_delivers_like_gre_and_checks_the_sender() {
        let (me, mvs1) = (Ipv4Addr::new(198, 19, 0, 2), Ipv4Addr::new(198, 19, 0, 1));
        let client = Ipv4Addr::new(198, 18, 1, 2);
        let inner =
            crate::wire::build::tcp_packet(client, 40000, DVIPA, 80, 1, 0, TcpFlags::SYN, b"");
        let mut t = TargetStack::new("MVS2", me);
        let mut body = Vec::new();
        gre_payload(&inner, Upstream::Nothing, &mut body);
        let mut ip = Vec::new();
        encap(mvs1, me, &inner, Upstream::Nothing, &mut ip);

        let delivered = Verdict::Deliver(inner.clone());
        assert_eq!(t.from_gre(0, mvs1, &ip), delivered);
        assert_eq!(t.from_gre_in_udp(0, mvs1, mvs1, &body), delivered);
        let spoofed = Ipv4Addr::new(198, 19, 0, 3);
        assert_eq!(
            t.from_gre_in_udp(0, mvs1, spoofed, &body),
            Verdict::Drop(TargetDrop::LinkCheck)
        );
        assert_eq!(
            t.from_gre_in_udp(0, mvs1, mvs1, &body[..3]),
            Verdict::Drop(TargetDrop::BadGre)
        );
        let c = t.counters();
        assert_eq!(c.gre_in, 4);
        assert_eq!(c.drops.get("link-check"), Some(&1));
        assert_eq!(c.drops.get("bad-gre"), Some(&1));
    }

    use crate::sysplex::xcf::tests::bundle;
    use rand_core::SeedableRng;

    fn target_with_bundle() -> TargetStack {
        let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
        let msg = XcfMessage::BundleInstall(Box::new(bundle()));
        t.on_xcf(0, "MVS1", &msg).unwrap();
        t
    }

    /// Fig. 10 block 160 plans a bundle with both CF structures, and its
    /// ESP SA never seals alone (that packet would lack the AH its policy
    /// requires); the bundle seals and counts on both SAs.
    #[test]
    fn bundle_plans_two_structures_and_never_seals_esp_alone() {
        let mut t = target_with_bundle();
        let b = bundle();
        let pkt = crate::wire::build::tcp_packet(
            b.esp.dvipa,
            80,
            Ipv4Addr::new(198, 18, 1, 2),
            40000,
            1,
            1,
            TcpFlags::ACK,
            b"hello",
        );
        assert_eq!(
            t.outbound_plan(&pkt),
            OutboundPlan::Bundle {
                spi: b.esp.outbound.spi,
                seq_key: b.esp.seq_key,
                ah_seq_key: b.ah.seq_key,
            }
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut out = Vec::new();
        let spi = b.esp.outbound.spi;
        assert_eq!(
            t.seal(0, spi, SeqNumbers::single(1), &mut rng, &pkt, &mut out),
            Err(TargetDrop::Seal)
        );
        let both = SeqNumbers {
            esp: 9,
            ah: Some(7),
        };
        t.seal(0, spi, both, &mut rng, &pkt, &mut out).unwrap();
        assert_eq!(out[9], 51, "AH outermost");
        let pair = &t.shadow()[0];
        let ah = pair.ah.as_ref().unwrap();
        assert_eq!(
            (
                ah.outbound.counters().packets,
                pair.outbound.counters().packets
            ),
            (1, 1)
        );
        assert_eq!(
            (ah.outbound_life.highest_seq, pair.outbound_life.highest_seq),
            (7, 9)
        );
        t.flush_lifesize();
        let spis: Vec<Spi> = t
            .take_outbox()
            .into_iter()
            .filter_map(|(_, m)| match m {
                XcfMessage::Lifesize { spi, .. } => Some(spi),
                _ => None,
            })
            .collect();
        assert_eq!(spis, vec![b.esp.outbound.spi, b.ah.outbound.spi]);
    }

    /// A BundleDelete removes the bundle only when its AH SPIs match too.
    #[test]
    fn bundle_delete_needs_the_bundle_spis() {
        let mut t = target_with_bundle();
        let b = bundle();
        let delete = |ah_inbound_spi| XcfMessage::BundleDelete {
            dvipa: b.esp.dvipa,
            esp_inbound_spi: b.esp.inbound.spi,
            esp_outbound_spi: b.esp.outbound.spi,
            ah_inbound_spi,
            ah_outbound_spi: b.ah.outbound.spi,
        };
        t.on_xcf(0, "MVS1", &delete(Spi(0x99))).unwrap();
        assert_eq!(t.shadow().len(), 1);
        t.on_xcf(0, "MVS1", &delete(b.ah.inbound.spi)).unwrap();
        assert!(t.shadow().is_empty());
    }

    /// A bundle whose halves do not fit is refused, not half-installed.
    #[test]
    fn inconsistent_bundle_is_refused() {
        let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
        let mut b = bundle();
        b.ah.inbound.protocol = Protocol::Esp;
        let msg = XcfMessage::BundleInstall(Box::new(b));
        assert!(t.on_xcf(0, "MVS1", &msg).is_err());
        assert!(t.shadow().is_empty());
    }
}
