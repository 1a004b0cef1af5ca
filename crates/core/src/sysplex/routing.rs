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

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use super::config::VipaDistribute;
use super::dct::{ConnEntry, ConnKey, ConnState, Dct, DctTimeouts, Distribution, Listeners};
use super::packet::{self, Flow, Kind};
use super::target::Upstream;
use super::xcf::{
    AhBundle, BundleInstall, ConnEndReason, SaFilter, SaInstall, VipaEntry, XcfMessage,
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
    /// IPCONFIG IPSECURITY: the IP filter table denied it (the rule and the
    /// reason are counted in [`RoutingCounters::filter_denied`]).
    Filtered,
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
            RouteDrop::Filtered => "filtered",
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
    pub drops: BTreeMap<&'static str, u64>,
    /// Packets the IP filter table denied before they could reach the DCT,
    /// the CF or IKE, by `RULE reason` (e.g. `web-client1 clear-text`).
    pub filter_denied: BTreeMap<String, u64>,
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
    now_ms: u64,
    /// DCT entries made or ended since the last [`RoutingStack::take_journal`],
    /// when a backup must be able to continue them (takeover); `None`: not kept.
    journal: Option<Vec<DctChange>>,
    /// IPCONFIG IPSECURITY: the image's IP filter table, which every clear
    /// packet for an owned DVIPA passes before anything else; `None`: the
    /// stack does no IP filtering (z/OS without IPSECURITY).
    filter: Option<FilterTable>,
    /// LOG rules' filter-log records, for the caller to write.
    filter_logs: Vec<FilterLog>,
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
        let distributions = distributes.iter().cloned().map(Distribution::new).collect();
        Self {
            image: image.to_string(),
            xcf,
            config,
            distributions,
            listeners: Listeners::default(),
            dct: Dct::with_seed(config.dct_seed),
            pairs: Vec::new(),
            counters: RoutingCounters::default(),
            note: RouteNote::EMPTY,
            now_ms: 0,
            journal: None,
            filter: None,
            filter_logs: Vec::new(),
        }
    }

    /// IPCONFIG IPSECURITY: from now on every clear packet for an owned
    /// DVIPA is filtered by `table` first.
    pub fn set_filter(&mut self, table: FilterTable) {
        self.filter = Some(table);
    }

    /// The IP filter table, if the stack filters.
    pub fn filter(&self) -> Option<&FilterTable> {
        self.filter.as_ref()
    }

    /// The filter-log records of LOG rules since the last call.
    pub fn take_filter_logs(&mut self) -> Vec<FilterLog> {
        std::mem::take(&mut self.filter_logs)
    }

    /// The IP filter check of a packet that arrived in clear (IKE, NAT-T,
    /// plain TCP, UDP, ICMP), before it can make a DCT entry, a CF write or
    /// a NEWCONN: with IPSECURITY, z/OS filters every packet, and clear text
    /// that a rule requires IPsec for is denied. `None`: it passes.
    fn filter_clear(&mut self, now_ms: u64, packet: &[u8]) -> Option<RouteDrop> {
        let table = self.filter.as_mut()?;
        let Ok(p) =
            FilterPacket::from_ipv4(packet, PacketDirection::Inbound, PacketRouting::Local, None)
        else {
            return Some(RouteDrop::Malformed);
        };
        let (verdict, log) = table.evaluate_logged(&p, Duration::from_millis(now_ms));
        self.filter_logs.extend(log);
        let denied = match &verdict {
            Verdict::Deny { rule, reason, .. } => Some(format!("{rule} {}", reason.as_str())),
            Verdict::NeedsSa { rule, .. } => Some(format!("{rule} clear-text")),
            _ => None,
        };
        self.note.filter = Some(verdict);
        let key = denied?;
        *self.counters.filter_denied.entry(key).or_default() += 1;
        Some(RouteDrop::Filtered)
    }

    /// Block 136, the tunnel check of a peeked packet of pair `i` for a
    /// distributed connection, when this stack filters inbound IPsec
    /// (`FilterAt::Routing`, claims 7-8). With a filter table and a pair
    /// that has a dynamic filter, it is the table's lookup of the inner
    /// packet as if decrypted under the pair's inbound SA: only a first
    /// match on that SA's dynamic filter passes; another SA's dynamic
    /// filter (wrong-sa), the anchor itself (outside-sa), a deny rule or
    /// the default deny reject it, counted by rule and reason. A pair with
    /// no dynamic filter (no table, or no IPsec rule anchors it) is checked
    /// against its inbound selector, as before dynamic filters existed.
    /// `true`: it passes.
    fn tunnel_check(&mut self, now_ms: u64, i: usize, p: &PeekResult) -> bool {
        let pair = &self.pairs[i];
        let (Some(table), Some(_)) = (self.filter.as_mut(), pair.install.filter.as_ref()) else {
            return selector_check(pair, p);
        };
        let Some(packet) = peeked_packet(p, pair.install.inbound_id()) else {
            return false;
        };
        let (verdict, log) = table.evaluate_logged(&packet, Duration::from_millis(now_ms));
        self.filter_logs.extend(log);
        let passes = matches!(verdict, Verdict::PermitProtected { .. });
        if !passes {
            let key = verdict.tunnel_denial();
            *self.counters.filter_denied.entry(key).or_default() += 1;
        }
        self.note.filter = Some(verdict);
        passes
    }

    /// From now on, DCT changes are kept for [`RoutingStack::take_journal`].
    pub fn keep_journal(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The DCT changes since the last call (empty unless kept).
    pub fn take_journal(&mut self) -> Vec<DctChange> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// A new DCT entry, in the journal when one is kept.
    fn add_entry(&mut self, key: ConnKey, e: ConnEntry) {
        if let Some(j) = self.journal.as_mut() {
            j.push(DctChange::Made {
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
            j.push(DctChange::Ended(key));
        }
    }

    /// Takeover: the VIPADISTRIBUTE statements of a DVIPA this stack now
    /// owns (from its VIPABACKUP) join the ones in force.
    pub fn add_distributions(&mut self, distributes: &[VipaDistribute]) {
        for d in distributes {
            self.distributions.push(Distribution::new(d.clone()));
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
        let entry = ConnEntry {
            target: target.into(),
            target_xcf,
            state: ConnState::Established,
            created_ms: self.now_ms,
            last_seen_ms: self.now_ms,
            packets: 0,
            bytes: 0,
            ipsec,
        };
        self.add_entry(key, entry);
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

    /// Fig. 6 block 112: an SA pair for a DVIPA is installed in the owned
    /// cache, with its dynamic filter in front of its anchor in this
    /// stack's filter table when it has one (see
    /// [`FilterTable::anchor_for`]). Returns the pair as the
    /// targets must get it: the caller stores the starting sequence number
    /// in the CF (block 116) and sends it as [`XcfMessage::SaInstall`],
    /// dynamic filter and anchor included, to every target (block 118),
    /// this image's own target stack included.
    pub fn install(&mut self, install: SaInstall) -> Result<SaInstall, SaError> {
        self.insert(install, None)
    }

    /// Fig. 6 block 112 for an AH+ESP bundle: the ESP pair and the AH pair
    /// outside it go into the owned cache together, the dynamic filter
    /// made from the ESP pair. The caller creates two sequence structures
    /// in the CF (one per outbound SA, block 116) and sends the returned
    /// [`XcfMessage::BundleInstall`] to every target (block 118).
    pub fn install_bundle(&mut self, bundle: &BundleInstall) -> Result<BundleInstall, SaError> {
        bundle.check()?;
        let ah = OwnedAh {
            inbound: Sa::new(bundle.ah.inbound.clone())?,
            precheck: precheck_window(&bundle.ah.inbound),
            bundle: bundle.ah.clone(),
        };
        let esp = self.insert(bundle.esp.clone(), Some(ah))?;
        Ok(BundleInstall {
            esp,
            ah: bundle.ah.clone(),
        })
    }

    fn insert(
        &mut self,
        mut install: SaInstall,
        ah: Option<OwnedAh>,
    ) -> Result<SaInstall, SaError> {
        let inbound = Sa::new(install.inbound.clone())?;
        let precheck = precheck_window(&install.inbound);
        // A pair with the same inbound SPI is superseded; its dynamic
        // filter goes with it.
        self.delete(install.inbound.spi);
        install.filter = self.place_filter(&install);
        self.pairs.push(OwnedPair {
            install: install.clone(),
            ah,
            inbound,
            precheck,
            peeks: 0,
            forwarded: 0,
        });
        Ok(install)
    }

    /// Fig. 6 block 118's filter half: with a filter table, the pair's
    /// dynamic filter (its SAs' selectors) goes in front of the IPsec rule
    /// that anchors it ([`FilterTable::anchor_for`]), and the anchor rule
    /// travels with it to the targets. Whatever filter `install` came with
    /// (a CF record of the previous owner, after a takeover) is replaced
    /// by this stack's own. `None` without a table or an anchor: the pair
    /// is filtered by its selectors only, as before.
    fn place_filter(&mut self, install: &SaInstall) -> Option<SaFilter> {
        let table = self.filter.as_mut()?;
        let anchor = table
            .anchor_for(&install.outbound.selector, &install.inbound.selector)?
            .clone();
        let dynamic = DynamicFilter::from_sas(&anchor.name, &install.inbound, &install.outbound);
        table.remove_dynamic(&dynamic.sas.inbound);
        // The anchor was found in this table, and the old filter of these
        // SAs was just removed: the install cannot fail.
        table.install_dynamic(dynamic.clone()).ok()?;
        Some(SaFilter { anchor, dynamic })
    }

    /// Removes an owned pair, and its dynamic filter from the filter
    /// table; returns it so the caller can tell the targets.
    pub fn delete(&mut self, inbound_spi: Spi) -> Option<OwnedPair> {
        let i = self
            .pairs
            .iter()
            .position(|p| p.install.inbound.spi == inbound_spi)?;
        let pair = self.pairs.remove(i);
        if let Some(table) = self.filter.as_mut() {
            table.remove_dynamic(&pair.install.inbound_id());
        }
        Some(pair)
    }

    /// Messages from targets that concern the routing stack.
    pub fn on_xcf(&mut self, from: &str, msg: &XcfMessage) {
        match msg {
            XcfMessage::RegisterListener { dvipa, port } => {
                self.listeners.register(from, *dvipa, *port);
            }
            XcfMessage::DeregisterListener { dvipa, port } => {
                self.listeners.deregister(from, *dvipa, *port);
            }
            // Authenticated at the target: now the pre-check may move (the
            // ESP window, or a bundle's AH window).
            XcfMessage::Lifesize {
                spi,
                highest_seq,
                direction: super::xcf::Direction::Inbound,
                ..
            } if *highest_seq > 0 => {
                if let Some(w) = self.precheck_of(*spi) {
                    w.update(*highest_seq);
                }
            }
            // Fig. 11: a target opens a connection from the DVIPA; its
            // inbound packets must go to that target, whatever the port.
            XcfMessage::NewConn {
                dvipa,
                local_port,
                peer,
                peer_port,
                protocol: 6,
            } => {
                let Some(xcf) = self
                    .targets_of(*dvipa)
                    .into_iter()
                    .find(|(t, _)| t == from)
                    .map(|(_, x)| x)
                else {
                    return;
                };
                let key = ConnKey {
                    client: *peer,
                    client_port: *peer_port,
                    dvipa: *dvipa,
                    port: *local_port,
                };
                let entry = ConnEntry {
                    target: from.into(),
                    target_xcf: xcf,
                    state: ConnState::SynSeen,
                    created_ms: self.now_ms,
                    last_seen_ms: self.now_ms,
                    packets: 0,
                    bytes: 0,
                    ipsec: true,
                };
                self.add_entry(key, entry);
            }
            XcfMessage::ConnEnded {
                dvipa,
                port,
                client,
                client_port,
                reason,
            } => {
                let key = ConnKey {
                    client: *client,
                    client_port: *client_port,
                    dvipa: *dvipa,
                    port: *port,
                };
                match reason {
                    ConnEndReason::Rejected | ConnEndReason::Reset | ConnEndReason::Closed => {
                        if self.dct.remove(&key).is_some() {
                            self.note_ended(key);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The pre-check window of the owned inbound SA `spi` (ESP, AH, or the
    /// AH of a bundle).
    fn precheck_of(&mut self, spi: Spi) -> Option<&mut ReplayWindow> {
        self.pairs.iter_mut().find_map(|p| {
            if p.install.inbound.spi == spi {
                Some(&mut p.precheck)
            } else {
                p.ah.as_mut()
                    .filter(|a| a.bundle.inbound.spi == spi)
                    .map(|a| &mut a.precheck)
            }
        })
    }

    /// A target went down: its listeners no longer count.
    pub fn target_down(&mut self, image: &str) {
        self.listeners.forget(image);
    }

    /// Expires DCT entries; returns how many went.
    pub fn on_timeout(&mut self, now_ms: u64) -> usize {
        self.now_ms = now_ms;
        let gone = self.dct.expire(now_ms, &self.config.timeouts);
        for (key, _) in &gone {
            self.note_ended(*key);
        }
        gone.len()
    }

    pub fn next_timeout(&self) -> Option<u64> {
        self.dct.next_expiry(&self.config.timeouts)
    }

    /// Fig. 8: one inbound packet for an owned DVIPA.
    pub fn inbound(&mut self, now_ms: u64, packet: &[u8]) -> Decision {
        self.counters.packets_in += 1;
        self.now_ms = now_ms;
        self.note = RouteNote::EMPTY;
        let decision = match packet::classify(packet) {
            Err(packet::PacketError::Malformed) => Decision::Drop(RouteDrop::Malformed),
            Err(packet::PacketError::Fragment) => Decision::Drop(RouteDrop::Fragment),
            Ok(kind @ (Kind::Ike | Kind::Plain(_))) => match self.filter_clear(now_ms, packet) {
                Some(drop) => Decision::Drop(drop),
                None => match kind {
                    Kind::Plain(flow) => self.plain(now_ms, packet.len(), &flow),
                    _ => Decision::Ike,
                },
            },
            Ok(Kind::NatKeepalive) => Decision::Drop(RouteDrop::NatKeepalive),
            Ok(Kind::Ipsec(outer)) => self.ipsec(now_ms, packet, &outer),
        };
        self.count(&decision, packet.len());
        decision
    }

    fn count(&mut self, d: &Decision, bytes: usize) {
        let c = &mut self.counters;
        match d {
            Decision::Forward { target, .. } => {
                count_target(&mut c.forwarded, target);
                c.forwarded_bytes += bytes as u64;
            }
            Decision::DecryptAndForward { target, .. } => {
                count_target(&mut c.forwarded, target);
                c.forwarded_bytes += bytes as u64;
                c.decrypted_here_and_forwarded += 1;
            }
            Decision::Local => c.local += 1,
            Decision::Ike => c.ike += 1,
            Decision::Drop(r) => *c.drops.entry(r.as_str()).or_default() += 1,
        }
    }

    /// Plain TCP to a distributed port is distributed the same way (the
    /// Sysplex Distributor without IPsec); everything else is local.
    fn plain(&mut self, now_ms: u64, bytes: usize, flow: &Flow) -> Decision {
        if flow.proto != IpProtocol::Tcp || !self.is_distributed(flow.dst, flow.dst_port) {
            return Decision::Local;
        }
        let key = ConnKey {
            client: flow.src,
            client_port: flow.src_port,
            dvipa: flow.dst,
            port: flow.dst_port,
        };
        match self.route_connection(now_ms, key, flow.flags.unwrap_or(TcpFlags(0)), bytes, false) {
            Ok((target, target_xcf)) => Decision::Forward {
                target,
                target_xcf,
                upstream: Upstream::Nothing,
            },
            Err(drop) => Decision::Drop(drop),
        }
    }

    fn is_distributed(&self, dvipa: Ipv4Addr, port: u16) -> bool {
        self.distributions
            .iter()
            .any(|d| d.config.addr == dvipa && d.distributes(port))
    }

    fn ipsec(&mut self, now_ms: u64, packet: &[u8], outer: &OuterView) -> Decision {
        let Ok(loc) = locate_in(packet, outer) else {
            return Decision::Drop(RouteDrop::Malformed);
        };
        let Some(i) = self.pairs.iter().position(|p| p.named_by(&loc)) else {
            return Decision::Drop(RouteDrop::UnknownSpi);
        };
        // Block 132: peek, never a full decryption.
        let (peeked, ah_seq) = match self.peek_pair(i, packet, outer) {
            Ok(p) => p,
            // An IPv6 inner packet: not the DVIPA's TCP, so the table's
            // "processed by the routing stack".
            Err(PeekError::Unsupported) => return Decision::Local,
            Err(_) => return Decision::Drop(RouteDrop::PeekFailed),
        };
        self.counters.peeks += 1;
        self.counters.peek_blocks += u64::from(peeked.blocks_decrypted);
        self.note.peek = Some(peeked);
        self.note.ah = self.pairs[i]
            .ah
            .as_ref()
            .zip(ah_seq)
            .map(|(a, seq)| (a.bundle.inbound.spi, seq));
        self.pairs[i].peeks += 1;
        let Some(key) = self.distributable(&self.pairs[i], &peeked) else {
            return Decision::Local;
        };
        // Block 136: the tunnel check, when this stack filters (claim 7);
        // otherwise the target does it after decryption (Fig. 9 block 152).
        if self.config.filter_at == FilterAt::Routing && !self.tunnel_check(now_ms, i, &peeked) {
            return Decision::Drop(RouteDrop::TunnelCheck);
        }
        // Block 138: the replay pre-check, of ESP and of a bundle's AH.
        // Check only: the windows move on authenticated sequence numbers
        // (reported by targets), never on a packet nobody has
        // authenticated yet.
        let pair = &self.pairs[i];
        let ah_fresh = match (&pair.ah, ah_seq) {
            (Some(ah), Some(seq)) => fresh(&ah.precheck, seq),
            _ => true,
        };
        if !ah_fresh || !fresh(&pair.precheck, peeked.seq) {
            return Decision::Drop(RouteDrop::Replay);
        }
        let flags = peeked.tcp_flags.unwrap_or(TcpFlags(0));
        match self.route_connection(now_ms, key, flags, packet.len(), true) {
            Ok((target, target_xcf)) => {
                self.pairs[i].forwarded += 1;
                if self.config.distribute_crypto {
                    let upstream = match self.config.filter_at {
                        FilterAt::Routing => Upstream::Filtered,
                        FilterAt::Target => Upstream::Nothing,
                    };
                    Decision::Forward {
                        target,
                        target_xcf,
                        upstream,
                    }
                } else {
                    Decision::DecryptAndForward { target, target_xcf }
                }
            }
            Err(drop) => Decision::Drop(drop),
        }
    }

    /// Block 132 with the pair's SA: ESP or AH alone, or through a bundle's
    /// AH into its ESP (then also the AH sequence number, for block 138).
    fn peek_pair(
        &self,
        i: usize,
        packet: &[u8],
        outer: &OuterView,
    ) -> Result<(PeekResult, Option<u32>), PeekError> {
        let pair = &self.pairs[i];
        match &pair.ah {
            None => peek_in(packet, outer, &pair.inbound).map(|p| (p, None)),
            Some(ah) => peek_bundle_in(packet, outer, &ah.inbound, &pair.inbound)
                .map(|b| (b.esp, Some(b.ah_seq))),
        }
    }

    /// The IPsec combination table: distributable when the inner packet is
    /// TCP to a distributed port of the DVIPA, and, in tunnel mode, the
    /// inner destination is the DVIPA (rows with ^DVIPA inside: "N").
    fn distributable(&self, pair: &OwnedPair, p: &PeekResult) -> Option<ConnKey> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (p.src, p.dst) else {
            return None;
        };
        if p.proto != IpProtocol::Tcp {
            return None;
        }
        if pair.inbound.mode() == Mode::Tunnel && dst != pair.install.dvipa {
            return None;
        }
        let key = ConnKey {
            client: src,
            client_port: p.src_port,
            dvipa: dst,
            port: p.dst_port,
        };
        // A distributed port, or a connection a target opened (Fig. 11).
        if !self.is_distributed(dst, p.dst_port) && self.dct.get(&key).is_none() {
            return None;
        }
        Some(key)
    }

    /// Blocks 134 and 142–144: find the connection's target, or pick one for a SYN.
    fn route_connection(
        &mut self,
        now_ms: u64,
        key: ConnKey,
        flags: TcpFlags,
        bytes: usize,
        ipsec: bool,
    ) -> Result<(Arc<str>, Ipv4Addr), RouteDrop> {
        if let Some(e) = self.dct.get_mut(&key) {
            if let Some(d) = distribution_for(&mut self.distributions, key.dvipa, key.port) {
                d.touch(now_ms, key.client, key.port);
            }
            e.last_seen_ms = now_ms;
            e.packets += 1;
            e.bytes += bytes as u64;
            if flags.contains(TcpFlags::FIN) || flags.contains(TcpFlags::RST) {
                e.state = ConnState::Closing;
            } else if e.state == ConnState::SynSeen && flags.contains(TcpFlags::ACK) {
                e.state = ConnState::Established;
            }
            self.note.dct = DctOutcome::Hit;
            return Ok((e.target.clone(), e.target_xcf));
        }
        self.note.dct = DctOutcome::Miss;
        if !flags.is_initial_syn() {
            return Err(RouteDrop::NoConnection);
        }
        let active = self.dct.active_by_target(key.dvipa);
        let dist = distribution_for(&mut self.distributions, key.dvipa, key.port)
            .ok_or(RouteDrop::NoTarget)?;
        let (target, target_xcf) = dist
            .choose_for(now_ms, key.client, key.port, &self.listeners, &active)
            .ok_or(RouteDrop::NoTarget)?;
        let target: Arc<str> = target.into();
        let entry = ConnEntry {
            target: Arc::clone(&target),
            target_xcf,
            state: ConnState::SynSeen,
            created_ms: now_ms,
            last_seen_ms: now_ms,
            packets: 1,
            bytes: bytes as u64,
            ipsec,
        };
        self.add_entry(key, entry);
        self.counters.new_connections += 1;
        *self
            .counters
            .connections
            .entry(connection_key(key.dvipa, key.port, &target))
            .or_default() += 1;
        self.note.dct = DctOutcome::New;
        Ok((target, target_xcf))
    }

    /// Routing-stack (pre-)filter state per SA for displays.
    pub fn sa_summary(&self) -> Vec<BTreeMap<&'static str, String>> {
        self.pairs
            .iter()
            .map(|p| {
                let mut m = BTreeMap::from([
                    ("dvipa", p.install.dvipa.to_string()),
                    ("inbound_spi", format!("{:#010x}", p.install.inbound.spi.0)),
                    (
                        "outbound_spi",
                        format!("{:#010x}", p.install.outbound.spi.0),
                    ),
                    ("protocol", format!("{:?}", p.install.inbound.protocol)),
                    ("peeks", p.peeks.to_string()),
                    ("forwarded", p.forwarded.to_string()),
                ]);
                if let Some(ah) = &p.ah {
                    m.insert("protocol", "AhEsp".into());
                    m.insert(
                        "ah_inbound_spi",
                        format!("{:#010x}", ah.bundle.inbound.spi.0),
                    );
                    m.insert(
                        "ah_outbound_spi",
                        format!("{:#010x}", ah.bundle.outbound.spi.0),
                    );
                }
                m
            })
            .collect()
    }
}

/// One more for `target`, without a `String` per packet once it is known.
fn count_target(map: &mut BTreeMap<String, u64>, target: &str) {
    match map.get_mut(target) {
        Some(n) => *n += 1,
        None => {
            map.insert(target.to_string(), 1);
        }
    }
}

/// The VIPADISTRIBUTE in force for DVIPA:port.
fn distribution_for(
    dists: &mut [Distribution],
    dvipa: Ipv4Addr,
    port: u16,
) -> Option<&mut Distribution> {
    dists
        .iter_mut()
        .find(|d| d.config.addr == dvipa && d.distributes(port))
}

/// The key of [`RoutingCounters::connections`].
pub fn connection_key(dvipa: Ipv4Addr, port: u16, target: &str) -> String {
    format!("{dvipa}:{port} {target}")
}

/// Block 136 without a dynamic filter: the inner packet must be traffic
/// the SA was negotiated for (the SA's selector seen from the client:
/// source = client side).
fn selector_check(pair: &OwnedPair, p: &PeekResult) -> bool {
    let sel = &pair.install.inbound.selector;
    sel.matches(p.src, p.dst, p.proto, Some((p.src_port, p.dst_port)))
}

/// The filter's view of a peeked inner packet, as if decrypted under
/// `under`: local, inbound, with the ports and TCP flags the peek read
/// (blocks 132-136). `None` for an IPv6 inner packet (no IPv6 rules).
fn peeked_packet(p: &PeekResult, under: SaId) -> Option<FilterPacket> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (p.src, p.dst) else {
        return None;
    };
    let transport = match p.proto {
        IpProtocol::Tcp | IpProtocol::Udp => Transport::Ports {
            src: p.src_port,
            dst: p.dst_port,
        },
        _ => Transport::None,
    };
    let mut packet =
        FilterPacket::new(PacketDirection::Inbound, src, dst, p.proto, transport).under(under);
    packet.tcp_connect = p.tcp_flags.is_some_and(|f| f.is_initial_syn());
    Some(packet)
}

/// A protocol name for traces.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Esp => "ESP",
        Protocol::Ah => "AH",
    }
}
