//! A target stack (patent Figs. 7, 9, 10): the shadow SA caches of the
//! DVIPAs it serves, filled by the routing stack over XCF; GRE from the
//! routing stack is checked against the XCF link it came in on, opened with
//! the shadow SA, inbound-filtered and delivered; replies are sealed with
//! the shadow SA under sequence numbers taken from the coupling facility
//! and sent straight out of this image's own external link. Lifesize is
//! counted and reported to the routing stack in batches.
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
use super::packet::{self, Kind};
use super::xcf::{ConnEndReason, Direction, SaInstall, SeqKey, VipaEntry, XcfMessage};
use crate::ipsec::counters::DropReason;
use crate::ipsec::esp::OpenError;
use crate::ipsec::peek::{locate, peek};
use crate::ipsec::sa::{Protocol, Sa, SaError, Spi};
use crate::ipsec::sad::{InboundSa, OutboundSa};
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
    /// Decrypted, but the dynamic filter does not admit the flow.
    Filter,
    /// Plaintext for a flow the filter says must be protected.
    Unprotected,
    /// Sealing failed (SA past its hard lifetime, packet too big...).
    Seal,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundPlan {
    /// Seal with the shadow SA `spi` under numbers from `seq_key`.
    Protect { spi: Spi, seq_key: SeqKey },
    /// No SA covers it: send as it is.
    Plain,
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
        }
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
    pub fn on_xcf(&mut self, now_ms: u64, from: &str, msg: &XcfMessage) -> Result<(), SaError> {
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
            XcfMessage::SaDelete {
                dvipa, inbound_spi, ..
            } => {
                self.shadow.retain(|p| {
                    !(p.install.dvipa == *dvipa && p.install.inbound.spi == *inbound_spi)
                });
            }
            XcfMessage::RekeyTiming { spi, late, .. } => {
                for p in self
                    .shadow
                    .iter_mut()
                    .filter(|p| p.install.inbound.spi == *spi || p.install.outbound.spi == *spi)
                {
                    p.inbound_life.adapt(*late);
                    p.outbound_life.adapt(*late);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Fig. 7 block 122: the pair goes into the shadow cache of its DVIPA.
    pub fn install(
        &mut self,
        now_ms: u64,
        owner: &str,
        install: &SaInstall,
    ) -> Result<(), SaError> {
        // The same pair again from another routing stack (a takeover): the
        // shadow SA keeps its replay window and counters, only its owner
        // (where lifesize reports and ConnEnded go) changes.
        if let Some(p) = self.shadow.iter_mut().find(|p| p.install == *install) {
            p.owner = owner.to_string();
            return Ok(());
        }
        let now_s = now_ms / 1000;
        let inbound = InboundSa::new(Sa::new(install.inbound.clone())?, now_s);
        let outbound = OutboundSa::new(Sa::new(install.outbound.clone())?, now_s);
        let life = |cfg: &crate::ipsec::sa::SaConfig| {
            Lifesize::new(cfg.lifetimes.hard.bytes.unwrap_or(0), install.report_bytes)
        };
        let pair = ShadowPair {
            owner: owner.to_string(),
            inbound_life: life(&install.inbound),
            outbound_life: life(&install.outbound),
            install: install.clone(),
            inbound,
            outbound,
        };
        self.shadow
            .retain(|p| p.install.inbound.spi != install.inbound.spi);
        self.shadow.push(pair);
        Ok(())
    }

    /// GRE from a routing stack over the XCF link whose peer has XCF
    /// address `link_peer`.
    pub fn from_gre(&mut self, now_ms: u64, link_peer: Ipv4Addr, packet: &[u8]) -> Verdict {
        self.counters.gre_in += 1;
        let verdict = match decap(packet, self.xcf) {
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
        match packet::classify(packet) {
            Err(_) => Verdict::Drop(TargetDrop::BadGre),
            Ok(Kind::Ipsec) => self.open(now_ms, packet, upstream == Upstream::Filtered),
            Ok(_) if upstream == Upstream::Decrypted => self.deliver_plain(packet),
            Ok(Kind::Plain(flow))
                if self.protected(flow.src, flow.dst, flow.proto, flow.src_port, flow.dst_port) =>
            {
                Verdict::Drop(TargetDrop::Unprotected)
            }
            Ok(_) => self.deliver_plain(packet),
        }
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
    fn open(&mut self, now_ms: u64, packet: &[u8], filtered: bool) -> Verdict {
        let Ok(loc) = locate(packet) else {
            return Verdict::Drop(TargetDrop::BadGre);
        };
        let Some(i) = self.shadow.iter().position(|p| {
            p.install.inbound.spi == loc.spi
                && p.install.inbound.protocol == loc.protocol
                && p.install.inbound.src == loc.src
        }) else {
            return Verdict::Drop(TargetDrop::NoShadowSa);
        };
        let mut out = std::mem::take(&mut self.scratch);
        let pair = &mut self.shadow[i];
        let opened = pair.inbound.open(now_ms / 1000, packet, &mut out);
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
    /// decryption (RFC 4301 §5.2) runs either way: it is part of opening.
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
        let sel = &self.shadow[i].install.inbound.selector;
        let ports = matches!(flow.proto, IpProtocol::Tcp | IpProtocol::Udp)
            .then_some((flow.src_port, flow.dst_port));
        if filtered {
            self.counters.filter_skipped += 1;
        } else if !sel.matches(
            IpAddr::V4(flow.src),
            IpAddr::V4(flow.dst),
            flow.proto,
            ports,
        ) {
            return Err(TargetDrop::Filter);
        }
        let pair = &mut self.shadow[i];
        if pair.inbound_life.add(bytes, seq) {
            let msg = lifesize_msg(pair, Direction::Inbound);
            let owner = pair.owner.clone();
            self.outbox.push((owner, msg));
            self.counters.lifesize_reports += 1;
        }
        if flow.proto == IpProtocol::Tcp {
            let key = ConnKey {
                client: flow.src,
                client_port: flow.src_port,
                dvipa: flow.dst,
                port: flow.dst_port,
            };
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

    /// Fig. 10 block 160: does a shadow SA's filter cover this outbound packet?
    pub fn outbound_plan(&self, packet: &[u8]) -> OutboundPlan {
        let Ok(flow) = packet::flow_of(packet) else {
            return OutboundPlan::Plain;
        };
        let ports = matches!(flow.proto, IpProtocol::Tcp | IpProtocol::Udp)
            .then_some((flow.src_port, flow.dst_port));
        self.shadow
            .iter()
            .find(|p| {
                p.install.outbound.selector.matches(
                    IpAddr::V4(flow.src),
                    IpAddr::V4(flow.dst),
                    flow.proto,
                    ports,
                )
            })
            .map_or(OutboundPlan::Plain, |p| OutboundPlan::Protect {
                spi: p.install.outbound.spi,
                seq_key: p.install.seq_key,
            })
    }

    /// Fig. 10 blocks 164–168: seal with sequence number `seq` (from the
    /// CF) into `out`, ready to leave on this image's own external link.
    pub fn seal(
        &mut self,
        now_ms: u64,
        spi: Spi,
        seq: u64,
        rng: &mut impl RngCore,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TargetDrop> {
        let Some(pair) = self
            .shadow
            .iter_mut()
            .find(|p| p.install.outbound.spi == spi)
        else {
            self.note(TargetDrop::NoShadowSa);
            return Err(TargetDrop::NoShadowSa);
        };
        if pair
            .outbound
            .seal(now_ms / 1000, seq, rng, packet, out)
            .is_err()
        {
            self.note(TargetDrop::Seal);
            return Err(TargetDrop::Seal);
        }
        self.counters.sealed += 1;
        self.counters.sealed_bytes += packet.len() as u64;
        if pair.outbound_life.add(packet.len() as u64, seq) {
            let msg = lifesize_msg(pair, Direction::Outbound);
            self.outbox.push((pair.owner.clone(), msg));
            self.counters.lifesize_reports += 1;
        }
        Ok(())
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
                let life = match dir {
                    Direction::Inbound => &p.inbound_life,
                    Direction::Outbound => &p.outbound_life,
                };
                if life.pending_packets > 0 {
                    let msg = lifesize_msg(p, dir);
                    self.outbox.push((p.owner.clone(), msg));
                    self.counters.lifesize_reports += 1;
                }
            }
        }
    }
}

/// Builds the report and resets the pending counts.
fn lifesize_msg(pair: &mut ShadowPair, dir: Direction) -> XcfMessage {
    let (cfg, life) = match dir {
        Direction::Inbound => (&pair.install.inbound, &mut pair.inbound_life),
        Direction::Outbound => (&pair.install.outbound, &mut pair.outbound_life),
    };
    let msg = XcfMessage::Lifesize {
        dvipa: pair.install.dvipa,
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
    let g = gre::Packet::new_checked(&packet[hl..end]).map_err(|_| TargetDrop::BadGre)?;
    let g_repr = gre::Repr::parse(&g).map_err(|_| TargetDrop::BadGre)?;
    if g_repr.protocol_type != crate::wire::EtherType::Ipv4 {
        return Err(TargetDrop::BadGre);
    }
    let key = g_repr.key;
    let inner_at = hl + g.header_len();
    Ok(Decapped {
        outer_src: repr.src_addr,
        inner: &packet[inner_at..end],
        upstream: Upstream::from_gre_key(key),
    })
}

/// The GRE header and `inner` (RFC 2784), without the outer IPv4 header:
/// what a raw GRE socket sends (the kernel adds the header). The key marks
/// plaintext the routing stack already decrypted.
pub fn gre_payload(inner: &[u8], upstream: Upstream, out: &mut Vec<u8>) {
    let g = gre::Repr {
        protocol_type: crate::wire::EtherType::Ipv4,
        checksum: false,
        key: upstream.gre_key(),
        seq_number: None,
    };
    out.clear();
    out.resize(g.buffer_len() + inner.len(), 0);
    g.emit(&mut gre::Packet::new_unchecked(&mut out[..]));
    out[g.buffer_len()..].copy_from_slice(inner);
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
