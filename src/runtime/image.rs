//! The process of one z/OS image: its TUN, its routing stack (for the
//! DVIPAs it owns), its target stack (for the DVIPAs it serves), GRE over
//! its XCF links, sequence numbers from the coupling facility, and the
//! HTTP server a target runs on DVIPA:80 (and :60).
//!
//! Kernel plumbing (DESIGN.md): every DVIPA the image owns or serves is on
//! `lo`, so local servers can bind it. Policy rules send what arrives on
//! `ext` for an owned DVIPA into the TUN first (the `local` rule is moved
//! behind them), and what the kernel sends *from* a DVIPA into the TUN too,
//! where the target stack seals it. Our own raw sockets mark their packets
//! so they leave by the main table.

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

use super::sockets::{self, FWMARK};
use super::tunio;
use super::xcf_data::{DataLink, DataRx, Datagram};
use crate::ipsec::filter::FilterLog;
use crate::lab::netlink::{NsLinks, Rule, TableRoute, RT_TABLE_MAIN};
use crate::lab::plan::{EXT_NAME, TUN_NAME};
use crate::sysplex::routing::{Decision, OwnedPair, RoutingConfig, RoutingStack};
use crate::sysplex::stack::{self, ImageStack};
use crate::sysplex::target::{GreHeader, OutboundPlan, SeqNumbers, TargetStack, Upstream, Verdict};
use crate::sysplex::xcf::{SaInstall, SeqKey, XcfMessage};
use crate::topology::{ManualSa, Topology};

mod bundle;
pub use bundle::manual_bundle;

/// Table of the routes that capture packets sent from a DVIPA.
const TABLE_FROM_DVIPA: u32 = 100;
/// Table of the routes that send owned DVIPAs arriving on `ext` into the TUN.
const TABLE_TO_DVIPA: u32 = 101;
/// Room for ESP/UDP/tunnel headers under the external LAN's 1500 bytes:
/// the kernel's own packets from a DVIPA use this path MTU (TCP MSS 1360).
pub const PROTECTED_MTU: u32 = 1400;
/// How long a SYN waits for the SA its NEWCONN asked for (Fig. 11 block
/// 178); TCP's own retransmission takes over after that.
const HELD_FOR: Duration = Duration::from_secs(5);
/// SYNs held at most at once; more are dropped (TCP retransmits them).
const HELD_MAX: usize = 64;
/// Sequence numbers taken from the CF per request, at most.
const SEQ_CHUNK: usize = 8;
/// A sequence number not on the wire this long after it was asked for is
/// not used: another target may meanwhile have sent far past it. Measured
/// with 4 iperf3 streams over two targets: 2 ms still let a few dozen
/// packets per run fall out of strongSwan's 128-packet window, 500 µs none.
const SEQ_DEADLINE: Duration = Duration::from_micros(500);
/// Fresh numbers tried per SA and burst before its rest is dropped.
const SEQ_MAX_REFETCH: usize = 8;

/// Packets of one burst to seal under one SA's sequence numbers.
type SealBatch = Vec<(crate::ipsec::sa::Spi, Vec<u8>)>;

/// Sends XCF messages to other images (the XCF mesh).
pub trait XcfOut: Send + Sync {
    fn send(&self, to: &str, msg: XcfMessage);
}

/// The IKE of the DVIPAs this image owns (issue 5): IKE datagrams for an
/// owned DVIPA, and the lifesize targets report for its SAs.
pub trait IkeHook: Send + Sync {
    /// A whole IPv4 packet (UDP 500, or 4500 with the non-ESP marker) for
    /// an owned DVIPA, as it arrived from the external LAN.
    fn datagram(&self, packet: Vec<u8>);
    /// Fig. 9 block 158 / Fig. 10 block 168: a target's batched report.
    fn lifesize(&self, from: &str, report: &XcfMessage);
    /// Fig. 11 block 174: a target opens a connection from an owned DVIPA
    /// to a peer without an SA ([`XcfMessage::NewConn`]).
    fn newconn(&self, _from: &str, _request: &XcfMessage) {}
}

/// Counters of the I/O shell (the stacks count their own decisions).
#[derive(Debug, Default, Serialize)]
pub struct ShellCounters {
    pub tun_in: AtomicU64,
    /// TUN reads left out because they would not split into packets.
    pub tun_reads_refused: AtomicU64,
    pub tun_out: AtomicU64,
    pub gre_in: AtomicU64,
    pub gre_out: AtomicU64,
    pub ext_out: AtomicU64,
    pub cf_batches: AtomicU64,
    pub cf_numbers: AtomicU64,
    pub cf_errors: AtomicU64,
    /// Sequence numbers dropped unused because their deadline passed.
    pub seq_stale: AtomicU64,
    pub send_errors: AtomicU64,
    /// Reads from a GRE socket that failed (other than "nothing queued").
    pub recv_errors: AtomicU64,
    pub xcf_in: AtomicU64,
    /// Fig. 11: SYNs held while their NEWCONN is negotiated, sent once the
    /// SA arrived, or dropped when it did not arrive in [`HELD_FOR`], or
    /// not held because [`HELD_MAX`] were waiting already.
    pub newconn_held: AtomicU64,
    pub newconn_released: AtomicU64,
    pub newconn_expired: AtomicU64,
    pub newconn_overflow: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The CF structures a group of outbound packets takes numbers from (Fig.
/// 10 block 162): one SA's, or an AH+ESP bundle's two (ESP, AH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SealKeys {
    Single(SeqKey),
    Bundle(SeqKey, SeqKey),
}

impl SealKeys {
    /// Numbers one packet uses.
    fn structures(self) -> u64 {
        match self {
            SealKeys::Single(_) => 1,
            SealKeys::Bundle(..) => 2,
        }
    }
}

/// The first numbers granted for a chunk: ESP (or the single SA's), and a
/// bundle's AH.
type Firsts = (u64, Option<u64>);

/// GRE datagrams by target image, gathered over a burst: each a header
/// and the packet, borrowed from the burst's buffers when it is forwarded
/// as it came (the kernel joins the two when it sends), or the plaintext
/// this stack decrypted.
type GreBatch<'a> = BTreeMap<Arc<str>, Vec<(GreHeader, Cow<'a, [u8]>)>>;

/// Queues `inner` for `target` behind a GRE header (claim 7: `upstream`
/// says what this stack already did).
fn gre_queue<'a>(
    gre: &mut GreBatch<'a>,
    target: Arc<str>,
    inner: Cow<'a, [u8]>,
    upstream: Upstream,
) {
    gre.entry(target)
        .or_default()
        .push((GreHeader::new(upstream), inner));
}

/// Adds a packet to the group of its CF structures.
fn group_by_keys(
    groups: &mut Vec<(SealKeys, SealBatch)>,
    keys: SealKeys,
    spi: crate::ipsec::sa::Spi,
    packet: Vec<u8>,
) {
    match groups.iter_mut().find(|(k, _)| *k == keys) {
        Some((_, v)) => v.push((spi, packet)),
        None => groups.push((keys, vec![(spi, packet)])),
    }
}

/// The protocol state of an image, behind one lock: the core is sans-IO
/// and each call is short.
#[derive(Debug)]
pub struct Core {
    pub stack: ImageStack,
    pub routing: Option<RoutingStack>,
    pub target: TargetStack,
    rng: StdRng,
}

pub struct ImageNode {
    pub name: String,
    pub xcf: Ipv4Addr,
    pub(super) topo: Topology,
    core: Mutex<Core>,
    tun: tun_rs::AsyncDevice,
    ext_out: UdpSocket,
    /// The datagram side of each XCF link (GRE or GRE-in-UDP), by peer image.
    gre: HashMap<String, DataLink>,
    pub(super) cf: tokio::sync::OnceCell<super::cf::CfClient>,
    pub(super) xcf_out: Arc<dyn XcfOut>,
    pub counters: ShellCounters,
    started: Instant,
    /// Images we have heard from since they last connected: a new one gets
    /// the VIPA list and every SA again.
    heard: Mutex<BTreeSet<String>>,
    ike: std::sync::OnceLock<Arc<dyn IkeHook>>,
    /// The DVIPAs this image owns (looked up for every burst; a takeover
    /// adds one).
    owned: Mutex<Arc<Vec<Ipv4Addr>>>,
    /// rtnetlink in this namespace, for plumbing a DVIPA taken over.
    pub(super) links: NsLinks,
    /// VIPA takeover: the CF copy of SAs and connections, the backup watch.
    pub(super) takeover: std::sync::OnceLock<Arc<super::takeover::Takeover>>,
    /// Fig. 11: SYNs waiting for the SA their NEWCONN asked for, and a
    /// wakeup for when an SA arrived.
    held: Mutex<Vec<(Instant, Vec<u8>)>>,
    sa_arrived: tokio::sync::Notify,
}

impl std::fmt::Debug for ImageNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageNode")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The DVIPAs an image owns (VIPADEFINE) and those it serves (owned, or a
/// destination of an owner's VIPADISTRIBUTE).
pub fn dvipas_of(topo: &Topology, name: &str) -> (Vec<Ipv4Addr>, Vec<Ipv4Addr>) {
    let owned: Vec<Ipv4Addr> = topo
        .image(name)
        .map(|i| i.vipa.defines.iter().map(|d| d.addr).collect())
        .unwrap_or_default();
    let mut served = owned.clone();
    for d in target_of(topo, name) {
        if !served.contains(&d) {
            served.push(d);
        }
    }
    (owned, served)
}

/// The DVIPAs an image is a target of: those its owners distribute to it,
/// and, from the start, those its backups would distribute to it after a
/// takeover (so that a takeover needs no plumbing at the targets).
fn target_of(topo: &Topology, name: &str) -> Vec<Ipv4Addr> {
    let mut dvipas = topo.distributed_to(name);
    dvipas.extend(topo.backup_distributed_to(name));
    dvipas.sort();
    dvipas.dedup();
    dvipas
}

impl ImageNode {
    /// Creates the TUN, the kernel plumbing and the sockets; starts nothing.
    /// `deferred`: DVIPAs this image defines that another stack holds now
    /// (after a takeover; [`super::takeover`]): not plumbed, not routed.
    pub async fn new(
        topo: &Topology,
        name: &str,
        netns: &str,
        xcf_out: Arc<dyn XcfOut>,
        deferred: &[Ipv4Addr],
    ) -> Result<Arc<Self>> {
        let image = topo
            .image(name)
            .context("not an image of the topology")?
            .clone();
        let (mut owned, served) = dvipas_of(topo, name);
        owned.retain(|d| !deferred.contains(d));
        let tun = tunio::create(TUN_NAME, 1500, sockets::TUN_TX_QUEUE_LEN)?;
        let links = NsLinks::open(netns)?;
        links.up(TUN_NAME).await?;
        plumb(&links, &owned, &served).await?;
        let routing = if owned.is_empty() {
            None
        } else {
            let dists: Vec<_> = image
                .vipa
                .distributes
                .iter()
                .filter(|d| owned.contains(&d.addr))
                .cloned()
                .collect();
            Some(routing_stack(&image, &dists)?)
        };
        let mut gre = HashMap::new();
        for peer in topo.images.iter().filter(|i| i.name != name) {
            let dev = format!("x-{}", peer.name.to_lowercase());
            let link = DataLink::open(topo.xcf_forwarding, image.xcf_addr, peer.xcf_addr, &dev)?;
            gre.insert(peer.name.clone(), link);
        }
        let core = Core {
            stack: ImageStack::new(name, owned.clone()),
            routing,
            target: TargetStack::new(name, image.xcf_addr),
            rng: StdRng::from_entropy(),
        };
        Ok(Arc::new(ImageNode {
            name: name.to_string(),
            xcf: image.xcf_addr,
            topo: topo.clone(),
            core: Mutex::new(core),
            tun,
            ext_out: sockets::raw_sender()?,
            gre,
            cf: tokio::sync::OnceCell::new(),
            xcf_out,
            counters: ShellCounters::default(),
            started: Instant::now(),
            heard: Mutex::new(BTreeSet::new()),
            ike: std::sync::OnceLock::new(),
            owned: Mutex::new(Arc::new(owned)),
            links,
            takeover: std::sync::OnceLock::new(),
            held: Mutex::new(Vec::new()),
            sa_arrived: tokio::sync::Notify::new(),
        }))
    }

    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The DVIPAs this image owns now.
    pub fn owned_now(&self) -> Arc<Vec<Ipv4Addr>> {
        Arc::clone(&self.owned.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether the routing stack owns the pair with this inbound SPI.
    fn owns_pair(&self, inbound_spi: crate::ipsec::sa::Spi) -> bool {
        self.core().routing.as_ref().is_some_and(|r| {
            r.pairs()
                .iter()
                .any(|p| p.install.inbound.spi == inbound_spi)
        })
    }

    /// A DVIPA taken over joins the owned ones.
    pub(super) fn add_owned(&self, dvipa: Ipv4Addr) {
        let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        if !owned.contains(&dvipa) {
            let mut v = owned.as_ref().clone();
            v.push(dvipa);
            *owned = Arc::new(v);
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Starts the tasks: TUN reader, GRE readers, timers, HTTP servers.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(Arc::clone(self).tun_loop());
        for peer in self.gre.keys() {
            tokio::spawn(Arc::clone(self).gre_loop(peer.clone()));
        }
        tokio::spawn(Arc::clone(self).timer_loop());
        tokio::spawn(Arc::clone(self).held_loop());
        tokio::spawn(Arc::clone(self).connect_cf());
        for dvipa in target_of(&self.topo, &self.name) {
            for port in SERVER_PORTS {
                tokio::spawn(http_server(self.name.clone(), dvipa, port));
            }
        }
    }

    async fn connect_cf(self: Arc<Self>) {
        let addr = SocketAddr::from((self.topo.cf.addr, crate::sysplex::xcf::CF_PORT));
        loop {
            match super::cf::CfClient::connect(addr).await {
                Ok(c) => {
                    let _ = self.cf.set(c);
                    tracing::info!("connected to the CF at {addr}");
                    if let Some(t) = self.takeover.get() {
                        // A restarted owner continues what the CF holds.
                        t.adopt_held(&self).await;
                    }
                    self.install_manual_sas().await;
                    return;
                }
                Err(e) => {
                    tracing::debug!("CF at {addr} not reachable yet: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Fig. 6 for the manually keyed SAs of the DVIPAs this image owns.
    async fn install_manual_sas(&self) {
        let owned = self.owned_now();
        for ms in self
            .topo
            .manual_sas
            .iter()
            .filter(|m| owned.contains(&m.dvipa))
        {
            let (single, bundle) = (manual_install(ms), manual_bundle(ms));
            let inbound_spi = single
                .as_ref()
                .map(|i| i.inbound.spi)
                .or_else(|| bundle.as_ref().map(|b| b.esp.inbound.spi));
            if inbound_spi.is_some_and(|spi| self.owns_pair(spi)) {
                // Adopted from the CF (a restart): its sequence numbers go on.
                continue;
            }
            let installed = match (single, bundle) {
                (Some(install), _) => self.install_pair(install).await,
                (None, Some(bundle)) => self.install_bundle(bundle).await,
                (None, None) => Err(anyhow::anyhow!("no SA to install")),
            };
            if let Err(e) = installed {
                tracing::error!("manual SA for {}: {e:#}", ms.client);
            }
        }
        self.announce_all();
    }

    /// Fig. 6 for one SA pair of an owned DVIPA, however it was made
    /// (manual or IKE): install in the owned cache (block 112), starting
    /// sequence number in the CF (block 116), copy with its filter to every
    /// target's shadow cache (block 118), this image's own included.
    pub async fn install_pair(&self, install: SaInstall) -> Result<()> {
        let cf = self.cf.get().context("the CF is not connected yet")?;
        cf.create_seq(install.seq_key, 1)
            .await
            .with_context(|| format!("CF CreateSeq {:?}", install.seq_key))?;
        let now = self.now_ms();
        let (install, targets) = {
            let mut core = self.core();
            let r = core.routing.as_mut().context("this image owns no DVIPA")?;
            // As the targets get it: with the dynamic filter and its anchor.
            let install = r.install(install).context("SA refused")?;
            let targets = r.targets_of(install.dvipa);
            core.target
                .install(now, &self.name, &install)
                .context("shadow SA refused")?;
            (install, targets)
        };
        for (t, _) in targets.iter().filter(|(t, _)| *t != self.name) {
            self.xcf_out
                .send(t, XcfMessage::SaInstall(Box::new(install.clone())));
        }
        if let Some(t) = self.takeover.get() {
            t.sa_installed(&install);
        }
        tracing::info!(
            "SA pair in={:#010x} out={:#010x} for {} installed and sent to {} targets",
            install.inbound.spi.0,
            install.outbound.spi.0,
            install.dvipa,
            targets.len()
        );
        Ok(())
    }

    /// Removes an SA pair from the owned cache and every shadow cache, and
    /// its sequence structure from the CF (a DELETE from the peer, or the
    /// old pair after a rekey once the new one is everywhere).
    pub async fn delete_pair(&self, dvipa: Ipv4Addr, inbound_spi: crate::ipsec::sa::Spi) {
        let now = self.now_ms();
        let (removed, targets) = {
            let mut core = self.core();
            let Some(r) = core.routing.as_mut() else {
                return;
            };
            let removed = r.delete(inbound_spi);
            let targets = r.targets_of(dvipa);
            (removed, targets)
        };
        let Some(pair) = removed else { return };
        if let Some(t) = self.takeover.get() {
            t.sa_deleted(&pair.install);
        }
        let msg = bundle::delete_msg(dvipa, &pair);
        let _ = self.core().target.on_xcf(now, &self.name, &msg);
        for (t, _) in targets.iter().filter(|(t, _)| *t != self.name) {
            self.xcf_out.send(t, msg.clone());
        }
        if let Some(cf) = self.cf.get() {
            for key in bundle::seq_keys(&pair) {
                let _ = cf.delete_seq(key).await;
            }
        }
    }

    /// Tells every target of `dvipa` (this image too) whether the rekey of
    /// the pair with `spi` came late, so they adapt their lifesize report
    /// thresholds (Fig. 9 block 156, Fig. 10 block 166: "decreased if the
    /// IKE was not successful in refreshing the SA before its expiration").
    pub fn rekey_timing(&self, dvipa: Ipv4Addr, spi: crate::ipsec::sa::Spi, late: bool) {
        let targets = match self.core().routing.as_ref() {
            Some(r) => r.targets_of(dvipa),
            None => return,
        };
        let msg = XcfMessage::RekeyTiming { dvipa, spi, late };
        let _ = self.core().target.on_xcf(self.now_ms(), &self.name, &msg);
        for (t, _) in targets.iter().filter(|(t, _)| *t != self.name) {
            self.xcf_out.send(t, msg.clone());
        }
    }

    /// Installs the IKE of this image's DVIPAs; only the first call counts.
    pub fn set_ike_hook(&self, hook: Arc<dyn IkeHook>) {
        let _ = self.ike.set(hook);
    }

    /// Sends a whole IPv4 packet we built (e.g. an IKE message from the
    /// DVIPA) out of this image's external link.
    pub async fn send_ip(&self, packet: &[u8]) {
        self.ext_send(packet).await;
    }

    /// The VIPA list and every owned SA to every target (on start, and to
    /// a target heard from for the first time).
    pub(super) fn announce_all(&self) {
        for t in self.distribution_targets() {
            if t != self.name {
                self.announce_to(&t);
            }
        }
    }

    /// Every image a DVIPA this image owns is distributed to (itself too,
    /// when it is one of them).
    fn distribution_targets(&self) -> BTreeSet<String> {
        let core = self.core();
        core.routing
            .as_ref()
            .map(|r| {
                r.distributions()
                    .flat_map(|d| d.config.dests.iter().map(|t| t.image.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn announce_to(&self, target: &str) {
        let msgs: Vec<XcfMessage> = {
            let core = self.core();
            let Some(r) = core.routing.as_ref() else {
                return;
            };
            let mut v = vec![r.vipa_list()];
            v.extend(
                r.pairs()
                    .iter()
                    .filter(|p| {
                        r.targets_of(p.install.dvipa)
                            .iter()
                            .any(|(n, _)| n == target)
                    })
                    .map(OwnedPair::install_msg),
            );
            v
        };
        for m in msgs {
            self.xcf_out.send(target, m);
        }
    }

    /// A message from another image over XCF.
    pub fn on_xcf(&self, from: &str, msg: XcfMessage) {
        bump(&self.counters.xcf_in);
        let first_contact = self
            .heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(from.to_string());
        let now = self.now_ms();
        match (&msg, self.ike.get()) {
            (XcfMessage::Lifesize { .. }, Some(ike)) => ike.lifesize(from, &msg),
            (XcfMessage::NewConn { .. }, Some(ike)) => ike.newconn(from, &msg),
            _ => {}
        }
        let outbox = {
            let mut core = self.core();
            if let Some(r) = core.routing.as_mut() {
                r.on_xcf(from, &msg);
            }
            match core.target.on_xcf(now, from, &msg) {
                Err(e) => tracing::warn!("SA from {from} refused: {e}"),
                Ok(()) if matches!(msg, XcfMessage::SaInstall(_)) => self.sa_arrived.notify_one(),
                Ok(()) => {}
            }
            if let XcfMessage::VipaList { .. } = msg {
                // Answer with our listeners on the ports it announced.
                registrations(&core.target)
                    .into_iter()
                    .filter(|(owner, _, _)| owner == from)
                    .map(|(owner, dvipa, port)| {
                        (owner, XcfMessage::RegisterListener { dvipa, port })
                    })
                    .collect()
            } else {
                core.target.take_outbox()
            }
        };
        for (to, m) in outbox {
            self.send_xcf(&to, m);
        }
        if first_contact {
            self.announce_to(from);
        }
    }

    /// A peer's XCF connection went down: forget what it registered.
    pub fn peer_down(&self, peer: &str) {
        self.heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
        if let Some(r) = self.core().routing.as_mut() {
            r.target_down(peer);
        }
    }

    /// To another image, or to ourselves without a network hop.
    fn send_xcf(&self, to: &str, msg: XcfMessage) {
        if to == self.name {
            self.on_xcf(to, msg);
        } else {
            self.xcf_out.send(to, msg);
        }
    }

    async fn tun_loop(self: Arc<Self>) {
        let mut rx = tunio::RxBurst::default();
        let mut tx = tunio::TxBurst::default();
        loop {
            if let Err(e) = rx.recv(&self.tun).await {
                tracing::error!("reading the TUN: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            self.counters
                .tun_in
                .fetch_add(rx.len() as u64, Ordering::Relaxed);
            self.counters
                .tun_reads_refused
                .fetch_add(rx.take_refused(), Ordering::Relaxed);
            self.tun_burst(&rx, &mut tx).await;
            self.flush_tun(&mut tx).await;
        }
    }

    /// One burst from the TUN: packets for an owned DVIPA (inbound, Fig. 8)
    /// and packets the kernel sends from a DVIPA (outbound, Fig. 10).
    async fn tun_burst(&self, rx: &tunio::RxBurst, tx: &mut tunio::TxBurst) {
        let owned = self.owned_now();
        // One clock reading per burst: the core counts in milliseconds.
        let now = self.now_ms();
        let mut outbound: Vec<Vec<u8>> = Vec::new();
        let mut gre = GreBatch::new();
        for p in rx.packets() {
            let dst = sockets::ipv4_dst(p);
            if dst.is_some_and(|d| owned.contains(&d)) {
                let replies = self.inbound_at_owner(now, p, tx, &mut gre);
                outbound.extend(replies);
                if tx.is_full() {
                    self.flush_tun(tx).await;
                }
            } else {
                outbound.push(p.to_vec());
            }
        }
        self.flush_gre(gre).await;
        self.send_outbound(outbound).await;
    }

    /// Sends the GRE packets of a burst, one `sendmmsg` per XCF link
    /// (Fig. 8 block 140).
    async fn flush_gre(&self, gre: GreBatch<'_>) {
        for (target, datagrams) in gre {
            let n = datagrams.len() as u64;
            let Some(link) = self.gre.get(&*target) else {
                self.counters.send_errors.fetch_add(n, Ordering::Relaxed);
                continue;
            };
            let bodies: Vec<[&[u8]; 2]> = datagrams
                .iter()
                .map(|(header, inner)| [header.as_bytes(), &inner[..]])
                .collect();
            match link.send(&bodies).await {
                Ok((sent, refused)) => {
                    self.counters
                        .gre_out
                        .fetch_add(sent as u64, Ordering::Relaxed);
                    self.counters
                        .send_errors
                        .fetch_add(refused as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    self.counters.send_errors.fetch_add(n, Ordering::Relaxed);
                    tracing::debug!("GRE to {target}: {e}");
                }
            }
        }
    }

    /// Writes the packets delivered during a burst to the kernel, coalesced.
    async fn flush_tun(&self, tx: &mut tunio::TxBurst) {
        match tx.flush(&self.tun).await {
            Ok(n) => {
                self.counters.tun_out.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                bump(&self.counters.send_errors);
                tracing::debug!("writing the TUN: {e}");
            }
        }
    }

    /// LOG rules' filter-log lines (z/OS's syslogd EZD08xxI messages) into
    /// the image's log: the routing stack's for packets that arrived on
    /// `ext`, the target stack's for what it denied under a LOG anchor.
    fn write_filter_logs(&self, logs: Vec<FilterLog>) {
        if logs.is_empty() {
            return;
        }
        let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let ext = self
            .topo
            .image(&self.name)
            .map_or(Ipv4Addr::UNSPECIFIED, |i| i.ext_addr);
        for log in logs {
            tracing::info!("{}", log.render(&when, ext, "ext"));
        }
    }

    /// Fig. 8 at the routing stack; returns packets this image answers
    /// itself (ICMP echo), which leave like any outbound packet.
    fn inbound_at_owner<'a>(
        &self,
        now: u64,
        packet: &'a [u8],
        tx: &mut tunio::TxBurst,
        gre: &mut GreBatch<'a>,
    ) -> Vec<Vec<u8>> {
        let decision = match self.core().routing.as_mut() {
            Some(r) => {
                let d = r.inbound(now, packet);
                self.write_filter_logs(r.take_filter_logs());
                d
            }
            None => Decision::Local,
        };
        match decision {
            Decision::Forward {
                target, upstream, ..
            } if *target == *self.name => self.deliver_here(now, packet, upstream, tx),
            Decision::Forward {
                target, upstream, ..
            } => {
                gre_queue(gre, target, Cow::Borrowed(packet), upstream);
                Vec::new()
            }
            Decision::DecryptAndForward { target, .. } => {
                let v = self.core().target.inbound(now, packet, Upstream::Nothing);
                if let Verdict::Deliver(plain) = v {
                    gre_queue(gre, target, Cow::Owned(plain), Upstream::Decrypted);
                }
                Vec::new()
            }
            Decision::Local => self.deliver_here(now, packet, Upstream::Nothing, tx),
            Decision::Ike => {
                match self.ike.get() {
                    Some(ike) => ike.datagram(packet.to_vec()),
                    None => tracing::debug!("IKE for a DVIPA: no IKE configured on this image"),
                }
                Vec::new()
            }
            Decision::Drop(_) => Vec::new(),
        }
    }

    /// This image's own target stack, then its IP layer: echo for an owned
    /// DVIPA answered here, the rest into the TUN for the kernel.
    fn deliver_here(
        &self,
        now: u64,
        packet: &[u8],
        upstream: Upstream,
        tx: &mut tunio::TxBurst,
    ) -> Vec<Vec<u8>> {
        let (verdict, outbox) = {
            let mut core = self.core();
            let v = core.target.inbound(now, packet, upstream);
            (v, core.target.take_outbox())
        };
        for (to, m) in outbox {
            self.send_xcf(&to, m);
        }
        let Verdict::Deliver(plain) = verdict else {
            return Vec::new();
        };
        if let stack::Verdict::Reply(reply) = self.core().stack.inbound(&plain) {
            return vec![reply];
        }
        tx.push(&plain);
        Vec::new()
    }

    async fn gre_loop(self: Arc<Self>, peer: String) {
        let Some(link) = self.gre.get(&peer) else {
            return;
        };
        let mut rx = DataRx::default();
        let mut tx = tunio::TxBurst::default();
        loop {
            // Every datagram already queued, up to a burst; their inner
            // packets reach the kernel in one coalesced write.
            if let Err(e) = link.recv(&mut rx).await {
                bump(&self.counters.recv_errors);
                tracing::debug!("GRE from {peer}: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            let mut datagrams = 0;
            for datagram in rx.datagrams() {
                datagrams += 1;
                self.gre_in(link.peer, datagram, &mut tx);
                if tx.is_full() {
                    self.flush_tun(&mut tx).await;
                }
            }
            self.counters.gre_in.fetch_add(datagrams, Ordering::Relaxed);
            self.flush_tun(&mut tx).await;
        }
    }

    /// Figs. 7 and 9 for one datagram from the XCF link of `peer_xcf`.
    fn gre_in(&self, peer_xcf: Ipv4Addr, datagram: Datagram<'_>, tx: &mut tunio::TxBurst) {
        let now = self.now_ms();
        let (verdict, outbox) = {
            let mut core = self.core();
            let v = match datagram {
                Datagram::Ip(packet) => core.target.from_gre(now, peer_xcf, packet),
                Datagram::Udp { src, body } => {
                    core.target.from_gre_in_udp(now, peer_xcf, src, body)
                }
            };
            (v, core.target.take_outbox())
        };
        for (to, m) in outbox {
            self.send_xcf(&to, m);
        }
        if let Verdict::Deliver(plain) = verdict {
            tx.push(&plain);
        }
    }

    /// Fig. 11 block 174: a SYN that made a NEWCONN waits for its SA.
    fn hold(&self, syn: Vec<u8>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() >= HELD_MAX {
            bump(&self.counters.newconn_overflow);
            return;
        }
        bump(&self.counters.newconn_held);
        held.push((Instant::now(), syn));
    }

    /// Fig. 11 blocks 176–178: when an SA arrived, the held SYNs it
    /// protects are sealed and sent; the others wait until [`HELD_FOR`].
    async fn held_loop(self: Arc<Self>) {
        loop {
            // An SA install, or a periodic look to expire what waits.
            let _ = tokio::time::timeout(Duration::from_secs(1), self.sa_arrived.notified()).await;
            let ready = self.take_ready_syns();
            if !ready.is_empty() {
                self.counters
                    .newconn_released
                    .fetch_add(ready.len() as u64, Ordering::Relaxed);
                self.send_outbound(ready).await;
            }
        }
    }

    /// The held SYNs that now have an SA; expired ones are counted and
    /// dropped.
    fn take_ready_syns(&self) -> Vec<Vec<u8>> {
        let waiting = std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()));
        if waiting.is_empty() {
            return Vec::new();
        }
        let mut core = self.core();
        let mut ready = Vec::new();
        let mut still = Vec::new();
        for (since, syn) in waiting {
            if matches!(
                core.target.outbound_plan(&syn),
                OutboundPlan::Protect { .. }
            ) {
                ready.push(syn);
            } else if since.elapsed() < HELD_FOR {
                still.push((since, syn));
            } else {
                bump(&self.counters.newconn_expired);
            }
        }
        drop(core);
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(still);
        ready
    }

    /// Fig. 10: filter → shadow SA; one CF fetch-and-add per SA for the
    /// whole burst (block 162); seal; out of this image's own `ext` (164).
    async fn send_outbound(&self, packets: Vec<Vec<u8>>) {
        if packets.is_empty() {
            return;
        }
        let mut plain = Vec::new();
        let mut protect: Vec<(SealKeys, SealBatch)> = Vec::new();
        let mut newconns = Vec::new();
        {
            let mut core = self.core();
            for p in packets {
                match core.target.outbound_plan(&p) {
                    OutboundPlan::Plain => {
                        // Fig. 11: a SYN to an IKE peer without an SA.
                        match super::ike::newconn_request(&self.topo, core.target.vipa_lists(), &p)
                        {
                            Some(req) => {
                                newconns.push(req);
                                self.hold(p);
                            }
                            None => plain.push(p),
                        }
                    }
                    // Fig. 10 block 160: policy requires IPsec and no SA
                    // covers it. A SYN to an IKE peer waits for one (Fig.
                    // 11); anything else is dropped, never sent in clear.
                    OutboundPlan::NeedsSa { rule } => {
                        match super::ike::newconn_request(&self.topo, core.target.vipa_lists(), &p)
                        {
                            Some(req) => {
                                newconns.push(req);
                                self.hold(p);
                            }
                            None => core.target.refuse_needs_sa(&rule),
                        }
                    }
                    OutboundPlan::Protect { spi, seq_key } => {
                        group_by_keys(&mut protect, SealKeys::Single(seq_key), spi, p);
                    }
                    OutboundPlan::Bundle {
                        spi,
                        seq_key,
                        ah_seq_key,
                    } => {
                        let keys = SealKeys::Bundle(seq_key, ah_seq_key);
                        group_by_keys(&mut protect, keys, spi, p);
                    }
                }
            }
        }
        for (owner, msg) in newconns {
            tracing::debug!("NEWCONN to {owner}: {msg:?}");
            self.send_xcf(&owner, msg);
        }
        for p in plain {
            self.core().target.count_plain_out();
            self.ext_send(&p).await;
        }
        let mut reports = Vec::new();
        for (keys, group) in protect {
            self.seal_and_send(keys, &group, &mut reports).await;
        }
        for (to, m) in reports {
            self.send_xcf(&to, m);
        }
    }

    /// Fig. 10 blocks 162–164 for one SA's packets of a burst, under the
    /// sequence-number policy of the module doc: at most [`SEQ_CHUNK`]
    /// numbers per CF request, taken right before sealing; a number whose
    /// packet cannot leave within [`SEQ_DEADLINE`] of asking the CF is
    /// dropped (a gap, which ESP allows) and the packet resealed with a
    /// fresh one, so a target that was descheduled never sends packets that
    /// trail the others' by more than the client's replay window.
    async fn seal_and_send(
        &self,
        keys: SealKeys,
        group: &SealBatch,
        reports: &mut Vec<(String, XcfMessage)>,
    ) {
        let mut next = 0;
        let mut refetches = 0;
        while next < group.len() {
            let chunk = &group[next..group.len().min(next + SEQ_CHUNK)];
            // The numbers were granted after this instant: measuring their
            // age from here also covers a target descheduled while the
            // CF's answer was on its way.
            let asked = Instant::now();
            let Some(firsts) = self.take_firsts(keys, chunk.len() as u32).await else {
                return;
            };
            let sealed = self.seal_chunk(chunk, firsts, reports);
            let sent = self.send_in_time(asked, &sealed).await;
            if sent == sealed.len() {
                // All out (a packet that failed to seal is counted by the
                // target stack and dropped).
                next += chunk.len();
                continue;
            }
            let stale = (sealed.len() - sent) as u64 * keys.structures();
            self.counters.seq_stale.fetch_add(stale, Ordering::Relaxed);
            refetches += 1;
            if refetches > SEQ_MAX_REFETCH {
                // Descheduled again and again: drop the rest of the burst
                // rather than loop (TCP resends what matters).
                return;
            }
            // Reseal what did not leave, under fresh numbers.
            next += sent;
        }
    }

    /// The first of `n` numbers from each structure of `keys`: the ESP (or
    /// single) SA's, then a bundle's AH.
    async fn take_firsts(&self, keys: SealKeys, n: u32) -> Option<Firsts> {
        match keys {
            SealKeys::Single(key) => Some((self.take_numbers(key, n).await?, None)),
            SealKeys::Bundle(esp, ah) => {
                let esp_first = self.take_numbers(esp, n).await?;
                Some((esp_first, Some(self.take_numbers(ah, n).await?)))
            }
        }
    }

    /// Seals a chunk with consecutive numbers from `firsts` (a packet that
    /// fails is counted by the target stack and left out).
    fn seal_chunk(
        &self,
        chunk: &[(crate::ipsec::sa::Spi, Vec<u8>)],
        (esp_first, ah_first): Firsts,
        reports: &mut Vec<(String, XcfMessage)>,
    ) -> Vec<Vec<u8>> {
        let now = self.now_ms();
        let mut core = self.core();
        let Core { target, rng, .. } = &mut *core;
        let sealed = chunk
            .iter()
            .zip(0u64..)
            .filter_map(|((spi, p), i)| {
                let mut out = Vec::with_capacity(p.len() + 128);
                let seq = SeqNumbers {
                    esp: esp_first + i,
                    ah: ah_first.map(|a| a + i),
                };
                target
                    .seal(now, *spi, seq, rng, p, &mut out)
                    .ok()
                    .map(|()| out)
            })
            .collect();
        reports.extend(target.take_outbox());
        sealed
    }

    /// Sends `sealed` in order while the numbers asked at `asked` are
    /// younger than [`SEQ_DEADLINE`]; returns how many left.
    async fn send_in_time(&self, asked: Instant, sealed: &[Vec<u8>]) -> usize {
        for (sent, s) in sealed.iter().enumerate() {
            if asked.elapsed() > SEQ_DEADLINE {
                return sent;
            }
            self.ext_send(s).await;
        }
        sealed.len()
    }

    /// `n` sequence numbers from the CF (LISTKEYINC), or none when the CF
    /// is unreachable (counted; the packets are dropped like a full queue).
    async fn take_numbers(&self, key: SeqKey, n: u32) -> Option<u64> {
        let Some(cf) = self.cf.get() else {
            bump(&self.counters.cf_errors);
            return None;
        };
        match cf.fetch_add(key, n).await {
            Ok((first, got)) if got == n => {
                bump(&self.counters.cf_batches);
                self.counters
                    .cf_numbers
                    .fetch_add(u64::from(n), Ordering::Relaxed);
                Some(first)
            }
            Ok(_) | Err(_) => {
                bump(&self.counters.cf_errors);
                None
            }
        }
    }

    async fn ext_send(&self, packet: &[u8]) {
        let Some(dst) = sockets::ipv4_dst(packet) else {
            return;
        };
        let to = sockets::raw_dest(dst);
        // Straight to the kernel when the socket can take it: an `.await`
        // may yield to other tasks (tokio's budget), and a sealed packet
        // must leave right after its sequence number's deadline check.
        let sent = match self.ext_out.try_send_to(packet, to) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.ext_out.send_to(packet, to).await
            }
            other => other,
        };
        match sent {
            Ok(_) => bump(&self.counters.ext_out),
            Err(e) => {
                bump(&self.counters.send_errors);
                tracing::debug!("sending to {dst}: {e}");
            }
        }
    }

    /// Every second: DCT timeouts, the VIPA list, pending lifesize counts.
    async fn timer_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = self.now_ms();
            let (outbox, logs) = {
                let mut core = self.core();
                if let Some(r) = core.routing.as_mut() {
                    r.on_timeout(now);
                }
                core.target.flush_lifesize();
                (core.target.take_outbox(), core.target.take_filter_logs())
            };
            // The target's LOG anchors (rate-limited per rule), once a second.
            self.write_filter_logs(logs);
            for (to, m) in outbox {
                self.send_xcf(&to, m);
            }
            self.refresh_listeners();
            let list = self.core().routing.as_ref().map(|r| r.vipa_list());
            if let Some(list) = list {
                for t in self.distribution_targets() {
                    self.send_xcf(&t, list.clone());
                }
            }
        }
    }

    /// Registers the listeners this image has on distributed ports with
    /// the routing stacks that announced them (z/OS stacks tell the
    /// distributor when a server binds).
    fn refresh_listeners(&self) {
        let regs = registrations(&self.core().target);
        for (owner, dvipa, port) in regs {
            self.send_xcf(&owner, XcfMessage::RegisterListener { dvipa, port });
        }
    }

    /// `plexnet netstat NODE REPORT`.
    pub fn netstat(&self, report: super::display::Report) -> super::display::Netstat {
        use super::display::{self, Report};
        let core = self.core();
        let routing = core.routing.as_ref();
        let mut n = display::Netstat {
            image: self.name.clone(),
            report,
            routing: routing.is_some_and(|r| r.distributions().next().is_some()),
            vipadcfg: None,
            vdpt: Vec::new(),
            vcrt: Vec::new(),
            conn: Vec::new(),
        };
        match report {
            Report::Vipadcfg => {
                let mut cfg = display::vipadcfg(&self.topo, &self.name);
                if let Some(t) = self.takeover.get() {
                    cfg.status = t.status_rows();
                }
                n.vipadcfg = Some(cfg);
            }
            Report::Vdpt => n.vdpt = routing.map(display::vdpt).unwrap_or_default(),
            Report::Vcrt => n.vcrt = routing.map(display::vcrt).unwrap_or_default(),
            Report::Conn => n.conn = display::conn(),
        }
        n
    }

    /// `plexnet ipsec NODE`.
    pub fn ipsec(&self) -> super::display::IpsecDisplay {
        let core = self.core();
        let mut d = super::display::ipsec(&self.name, core.routing.as_ref(), &core.target);
        let sec = self
            .topo
            .image(&self.name)
            .and_then(|i| i.ip_security.as_ref());
        d.filters = super::display::filters(sec, core.routing.as_ref(), &core.target);
        super::display::mark_origins(&mut d, &manual_spis(&self.topo));
        d
    }

    /// The status the control socket answers.
    pub fn status(&self) -> serde_json::Value {
        let (_, served) = dvipas_of(&self.topo, &self.name);
        let owned = self.owned_now();
        let core = self.core();
        let label = |a: &Ipv4Addr| self.topo.label(*a);
        let mut roles = Vec::new();
        if !owned.is_empty() {
            roles.push(format!(
                "owns {}",
                owned.iter().map(label).collect::<Vec<_>>().join(", ")
            ));
        }
        let targets: Vec<String> = self
            .topo
            .distributed_to(&self.name)
            .iter()
            .map(label)
            .collect();
        if !targets.is_empty() {
            roles.push(format!("target of {}", targets.join(", ")));
        }
        let summary = format!(
            "{}; {} echo replies, {} shadow SAs, {} opened, {} sealed",
            if roles.is_empty() {
                "no DVIPA role".to_string()
            } else {
                roles.join(", ")
            },
            core.stack.counters().echo_replies,
            core.target.shadow().len(),
            core.target.counters().opened,
            core.target.counters().sealed,
        );
        serde_json::json!({
            "node": self.name,
            "role": "image",
            "ready": true,
            "pid": std::process::id(),
            "tun": TUN_NAME,
            "xcf": self.xcf.to_string(),
            "xcf_forwarding": self.topo.xcf_forwarding,
            "owned_dvipas": owned.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "served_dvipas": served.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "counters": core.stack.counters(),
            "routing": core.routing.as_ref().map(routing_status),
            "target": {
                "counters": core.target.counters(),
                "shadow_sas": core.target.shadow().len(),
            },
            "shell": &self.counters,
            "summary": summary,
        })
    }
}

fn routing_status(r: &RoutingStack) -> serde_json::Value {
    serde_json::json!({
        "counters": r.counters(),
        "dct_entries": r.dct().len(),
        "owned_sas": r.sa_summary(),
        "listeners": r.listeners(),
    })
}

/// The kernel side of DESIGN.md's DVIPA rules, in this namespace.
/// Also what a takeover does for the DVIPA it takes (as its only owned and
/// served one), so every step keeps what is already there.
pub(super) async fn plumb(links: &NsLinks, owned: &[Ipv4Addr], served: &[Ipv4Addr]) -> Result<()> {
    if served.is_empty() {
        return Ok(());
    }
    for d in served {
        links.ensure_addr("lo", *d, 32).await?;
    }
    links.move_local_rule(100).await?;
    for d in owned {
        links
            .add_rule(&Rule {
                pref: 10,
                table: TABLE_TO_DVIPA,
                iif: Some(EXT_NAME),
                to: Some(*d),
                ..Rule::default()
            })
            .await?;
        links
            .add_table_route(*d, 32, TUN_NAME, TABLE_TO_DVIPA, TableRoute::default())
            .await?;
    }
    links
        .add_rule(&Rule {
            pref: 50,
            table: RT_TABLE_MAIN,
            fwmark: Some(FWMARK),
            ..Rule::default()
        })
        .await?;
    for d in served {
        links
            .add_rule(&Rule {
                pref: 110,
                table: TABLE_FROM_DVIPA,
                from: Some(*d),
                ..Rule::default()
            })
            .await?;
    }
    links
        .add_table_route(
            Ipv4Addr::UNSPECIFIED,
            0,
            TUN_NAME,
            TABLE_FROM_DVIPA,
            TableRoute {
                mtu: Some(PROTECTED_MTU),
                ..TableRoute::default()
            },
        )
        .await
}

/// The DVIPA side of a manual SA as an SA install (ESP or AH alone; an
/// AH+ESP bundle is [`manual_bundle`]'s).
/// The SPIs of the topology's manually keyed SAs (ESP and AH, both
/// directions), as the displays write them.
fn manual_spis(topo: &Topology) -> Vec<String> {
    let mut out = Vec::new();
    for ms in &topo.manual_sas {
        let pairs = manual_install(ms)
            .map(|i| vec![i.inbound.spi, i.outbound.spi])
            .into_iter()
            .chain(manual_bundle(ms).map(|b| {
                vec![
                    b.esp.inbound.spi,
                    b.esp.outbound.spi,
                    b.ah.inbound.spi,
                    b.ah.outbound.spi,
                ]
            }));
        out.extend(pairs.flatten().map(|spi| format!("{:#010x}", spi.0)));
    }
    out
}

pub fn manual_install(ms: &ManualSa) -> Option<SaInstall> {
    let side = ms.dvipa_side();
    let one = |b: &crate::topology::SaBundle| match (&b.esp, &b.ah) {
        (Some(e), None) => Some(e.clone()),
        (None, Some(a)) => Some(a.clone()),
        _ => None,
    };
    Some(SaInstall::pair(
        ms.dvipa,
        one(side.inbound)?,
        one(side.outbound)?,
    ))
}

/// Local TCP listeners: (address, port) of the LISTEN sockets.
fn listening_ports() -> Vec<(Ipv4Addr, u16)> {
    match super::listeners::tcp_listeners() {
        Ok(l) => l.into_iter().map(|a| (*a.ip(), a.port())).collect(),
        Err(e) => {
            tracing::warn!("listing TCP listeners (sock_diag): {e}");
            Vec::new()
        }
    }
}

/// The listeners this image has on the ports routing stacks announced in
/// their VIPA lists, as (owner, DVIPA, port) registrations.
fn registrations(target: &TargetStack) -> Vec<(String, Ipv4Addr, u16)> {
    let listening = listening_ports();
    let mut regs = Vec::new();
    for (owner, vipas) in target.vipa_lists() {
        for v in vipas {
            for p in &v.ports {
                if listening
                    .iter()
                    .any(|(a, lp)| lp == p && (a.is_unspecified() || *a == v.dvipa))
                {
                    regs.push((owner.clone(), v.dvipa, *p));
                }
            }
        }
    }
    regs
}

/// The ports a target serves on each DVIPA it is a target of: HTTP's 80,
/// and the patent's port 60 (APP A of Figure 4), which figure4's policy
/// permits in clear for a plain Sysplex Distributor demonstration.
const SERVER_PORTS: [u16; 2] = [80, 60];

/// The target's server on DVIPA:port: every answer names the image, so a
/// user sees where the distributor sent each connection.
async fn http_server(image: String, dvipa: Ipv4Addr, port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = loop {
        match tokio::net::TcpListener::bind((dvipa, port)).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!("binding {dvipa}:{port}: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tracing::info!("HTTP server on {dvipa}:{port}");
    loop {
        let Ok((mut s, peer)) = listener.accept().await else {
            continue;
        };
        let image = image.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut got = 0;
            // Read the request head (bounded), then answer and close.
            while got < buf.len() {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf[got..])).await {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        got += n;
                        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let body = format!("served by {image}\n");
            let resp = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
            tracing::debug!("HTTP answered {peer}");
        });
    }
}

/// The routing stack of `image` for the VIPADISTRIBUTE statements
/// `dists`, with the image's IP filter table when its profile has `IPCONFIG
/// IPSECURITY` (every clear packet for its DVIPAs is filtered first).
pub(crate) fn routing_stack(
    image: &crate::topology::Image,
    dists: &[crate::topology::VipaDistribute],
) -> Result<RoutingStack> {
    // A random DCT hasher seed: chosen connection keys cannot flood one
    // bucket (the simulator passes a fixed one).
    let config = RoutingConfig {
        dct_seed: rand::random(),
        ..image.routing_config()
    };
    let mut r = RoutingStack::new(&image.name, image.xcf_addr, config, dists);
    if let Some(sec) = &image.ip_security {
        let table = sec
            .filter_table()
            .with_context(|| format!("the IP filter policy of {}", image.name))?;
        if let Some(table) = table {
            r.set_filter(table);
        }
    }
    Ok(r)
}
