//! The process of one z/OS image: the I/O shell around the sans-IO
//! [`Image`] state machine (`sysplex::image`). Tasks read the TUN, the XCF
//! data links and the XCF mesh and hand what they read to the image; they
//! then carry out what it polls out: TUN writes, GRE datagrams, XCF
//! messages, CF requests for sequence numbers, sealed packets out of
//! `ext`, IKE events. A timer task sleeps until the image's next deadline.
//! Beside it: the kernel plumbing and the HTTP server a target runs on
//! DVIPA:80 (and :60) in `kernel.rs`, the control socket's displays in
//! `status.rs`, AH+ESP bundles in `bundle.rs`.
//!
//! Kernel plumbing (docs/ARCHITECTURE.md): every DVIPA the image owns or serves is on
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
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::UdpSocket;

use super::sockets;
use super::tunio;
use super::xcf_data::{DataLink, DataRx, Datagram};
use crate::ipsec::filter::FilterLog;
use crate::lab::netlink::NsLinks;
use crate::lab::plan::TUN_NAME;
use crate::sysplex::image::{
    CfAsk, CfFailure, Image, ImageConfig, ImageEvent, ImageId, NewConnPolicy, Payload, SealedChunk,
    SeqAsk, Transmit, XcfDatagram,
};
use crate::sysplex::routing::{RoutingConfig, RoutingStack};
use crate::sysplex::target::{GreHeader, Upstream};
use crate::sysplex::xcf::{CfResponse, SaInstall, SeqKey, XcfMessage};
use crate::time::Instant;
use crate::topology::{ManualSa, Topology};

mod bundle;
mod cf_watch;
mod kernel;
mod status;

pub use bundle::manual_bundle;
pub use cf_watch::CfWatchStatus;
pub use kernel::PROTECTED_MTU;
use kernel::{http_server, listening_ports, SERVER_PORTS};
pub(super) use kernel::{plumb, unplumb_owned};

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
    /// The CF lost its state (it restarted): the sequence counters of
    /// every SA this image owns are gone; rekey them (docs/FAULTS.md).
    fn cf_lost(&self) {}
}

/// Counters of the I/O shell (the image counts its own decisions, see
/// [`ImageCounters`](crate::sysplex::image::ImageCounters); `status` shows both under `shell`).
#[derive(Debug, Default, Serialize)]
pub struct ShellCounters {
    pub tun_in: AtomicU64,
    /// TUN reads left out because they would not split into packets.
    pub tun_reads_refused: AtomicU64,
    pub tun_out: AtomicU64,
    pub gre_in: AtomicU64,
    pub gre_out: AtomicU64,
    pub ext_out: AtomicU64,
    pub send_errors: AtomicU64,
    /// Reads from a GRE socket that failed (other than "nothing queued").
    pub recv_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// GRE datagrams by target image, gathered over a burst: each a header
/// and the packet, borrowed from the burst's buffers when it is forwarded
/// as it came (the kernel joins the two when it sends), or the plaintext
/// this stack decrypted.
type GreBatch<'a> = BTreeMap<ImageId, Vec<(GreHeader, Cow<'a, [u8]>)>>;

/// What the image polled out after one `handle_*` call, to carry out
/// once its lock is released.
#[derive(Default)]
struct Outputs {
    ext: Vec<Vec<u8>>,
    sealed: Vec<SealedChunk>,
    data: Vec<(ImageId, Upstream, Payload)>,
    xcf: Vec<(ImageId, XcfMessage)>,
    tun: Vec<Vec<u8>>,
    events: Vec<ImageEvent>,
}

impl Outputs {
    /// Everything the image has queued; a message to itself goes back in
    /// at once (its routing stack and target stack need no network hop).
    fn drain(image: &mut Image, now: Instant) -> Self {
        let mut out = Outputs::default();
        while let Some(t) = image.poll_transmit() {
            match t {
                Transmit::Xcf { to, msg } if to == *image.id() => image.handle_xcf(now, &to, msg),
                Transmit::Ext(p) => out.ext.push(p),
                Transmit::Sealed(c) => out.sealed.push(c),
                Transmit::XcfData {
                    to,
                    upstream,
                    payload,
                } => out.data.push((to, upstream, payload)),
                Transmit::Xcf { to, msg } => out.xcf.push((to, msg)),
            }
        }
        out.tun
            .extend(std::iter::from_fn(|| image.poll_tun_write()));
        out.events.extend(std::iter::from_fn(|| image.poll_event()));
        out
    }
}

/// The protocol state of an image, behind one lock (each call is short),
/// with the generator the image's sealing draws its IVs from.
#[derive(Debug)]
pub struct Core {
    pub image: Image,
    rng: StdRng,
}

/// What the XCF links' datagrams pass through on their way into the TUN:
/// a burst read from a link and the coalescing write of its packets. One
/// per image, taken by one link's task at a time, not one per link.
///
/// Why: a set per link kept one for every routing stack that ever
/// forwarded to the image, about 4 MiB each once used (a GRO read burst,
/// the write's buffers, tun-rs's GRO table): the soak saw a target step
/// from 10.9 to 19.4 MiB at the takeover and the giveback, a step per new
/// forwarder. The TUN is one device, and one routing stack at a time
/// forwards a DVIPA's connections, so one set delays nothing.
#[derive(Default)]
struct XcfInbound {
    rx: DataRx,
    tx: tunio::TxBurst,
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
    /// The buffers every link's datagrams pass through into the TUN.
    xcf_in: tokio::sync::Mutex<XcfInbound>,
    pub(super) cf: tokio::sync::OnceCell<super::cf::CfClient>,
    pub(super) xcf_out: Arc<dyn XcfOut>,
    pub counters: ShellCounters,
    /// The shell's start: the image's clock counts from here.
    started: std::time::Instant,
    ike: std::sync::OnceLock<Arc<dyn IkeHook>>,
    /// The DVIPAs this image owns (looked up for every burst; a takeover
    /// adds one).
    owned: Mutex<Arc<Vec<Ipv4Addr>>>,
    /// rtnetlink in this namespace, for plumbing a DVIPA taken over.
    pub(super) links: NsLinks,
    /// VIPA takeover: the CF copy of SAs and connections, the backup watch.
    pub(super) takeover: std::sync::OnceLock<Arc<super::takeover::Takeover>>,
    /// Wakes the task that carries out CF requests the image queued
    /// outside a TUN burst (a held SYN whose SA arrived, Fig. 11).
    numbers_wanted: tokio::sync::Notify,
    /// What the CF watch saw ([`cf_watch`]).
    pub(super) cf_watch: Mutex<CfWatchStatus>,
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

/// Fig. 11's NEWCONN policy from the topology: whether IKE negotiates on
/// demand, each DVIPA's IKE peers, and the image that defines it.
pub fn newconn_policy(topo: &Topology) -> NewConnPolicy {
    let mut policy = NewConnPolicy {
        on_demand: topo.ike.as_ref().is_some_and(|s| s.on_demand),
        hold_max: usize::try_from(topo.limits.newconn_hold_max).unwrap_or(usize::MAX),
        ..NewConnPolicy::default()
    };
    for c in &topo.clients {
        for dvipa in &c.ike {
            policy.peers.entry(*dvipa).or_default().push(c.addr);
        }
    }
    for dvipa in topo.dvipas() {
        if let Some(owner) = topo.owner_of(dvipa) {
            policy
                .owners
                .entry(dvipa)
                .or_insert_with(|| ImageId::from(owner.name.as_str()));
        }
    }
    policy
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
        let config = ImageConfig {
            id: ImageId::new(name),
            xcf_addr: image.xcf_addr,
            owned: owned.clone(),
            newconn: newconn_policy(topo),
            limits: topo.limits,
            hash_seed: rand::random(),
        };
        let core = Core {
            image: Image::new(config, routing, Instant::ZERO),
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
            xcf_in: tokio::sync::Mutex::default(),
            cf: tokio::sync::OnceCell::new(),
            xcf_out,
            counters: ShellCounters::default(),
            started: std::time::Instant::now(),
            ike: std::sync::OnceLock::new(),
            owned: Mutex::new(Arc::new(owned)),
            links,
            takeover: std::sync::OnceLock::new(),
            numbers_wanted: tokio::sync::Notify::new(),
            cf_watch: Mutex::default(),
        }))
    }

    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The DVIPAs this image owns now.
    pub fn owned_now(&self) -> Arc<Vec<Ipv4Addr>> {
        Arc::clone(&self.owned.lock().unwrap_or_else(|p| p.into_inner()))
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

    /// The image queued CF requests outside a TUN burst or timer tick.
    pub(super) fn cf_work_queued(&self) {
        self.numbers_wanted.notify_one();
    }

    /// A DVIPA given back leaves the owned ones.
    pub(super) fn remove_owned(&self, dvipa: Ipv4Addr) {
        let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        if owned.contains(&dvipa) {
            let v: Vec<Ipv4Addr> = owned.iter().copied().filter(|d| *d != dvipa).collect();
            *owned = Arc::new(v);
        }
    }

    /// Whether this image serves `dvipa` as a target (it stays on `lo`).
    pub(super) fn serves(&self, dvipa: Ipv4Addr) -> bool {
        target_of(&self.topo, &self.name).contains(&dvipa)
    }

    /// The DVIPA taken over (or back) is announced on the LAN: a giveback's
    /// holder hears it may let go ([`Image::handle_dvipa_announced`]).
    pub(super) fn dvipa_announced(&self, dvipa: Ipv4Addr) {
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.handle_dvipa_announced(dvipa);
            Outputs::drain(&mut core.image, now)
        };
        self.send_messages(out.xcf);
        self.on_events(out.events);
    }

    /// The image's clock: the time since this shell started.
    pub(super) fn now(&self) -> Instant {
        Instant::from_elapsed(self.started.elapsed())
    }

    /// Starts the tasks: TUN reader, GRE readers, timers, HTTP servers.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(Arc::clone(self).tun_loop());
        for peer in self.gre.keys() {
            tokio::spawn(Arc::clone(self).gre_loop(peer.clone()));
        }
        tokio::spawn(Arc::clone(self).timer_loop());
        tokio::spawn(Arc::clone(self).numbers_loop());
        tokio::spawn(Arc::clone(self).connect_cf());
        tokio::spawn(Arc::clone(self).cf_watch());
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
                        Arc::clone(t).adopt_held(&self).await;
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
            if inbound_spi.is_some_and(|spi| self.core().image.owns_pair(spi)) {
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
    /// (manual or IKE): starting sequence number in the CF (block 116),
    /// then the image installs it in the owned cache (block 112) and
    /// copies it with its filter to every target's shadow cache (block
    /// 118), this image's own included.
    pub async fn install_pair(&self, install: SaInstall) -> Result<()> {
        let cf = self.cf.get().context("the CF is not connected yet")?;
        cf.create_seq(install.seq_key, 1)
            .await
            .with_context(|| format!("CF CreateSeq {:?}", install.seq_key))?;
        let now = self.now();
        let (install, out) = {
            let mut core = self.core();
            let install = core.image.install_pair(now, install)?;
            (install, Outputs::drain(&mut core.image, now))
        };
        let targets = self.targets_of(install.dvipa);
        self.carry_out(out, &[], None).await;
        self.numbers_wanted.notify_one();
        if let Some(t) = self.takeover.get() {
            t.sa_installed(&install);
        }
        tracing::info!(
            "SA pair in={:#010x} out={:#010x} for {} installed and sent to {} targets",
            install.inbound.spi.0,
            install.outbound.spi.0,
            install.dvipa,
            targets
        );
        Ok(())
    }

    /// How many images `dvipa` is distributed to (this one included).
    fn targets_of(&self, dvipa: Ipv4Addr) -> usize {
        let core = self.core();
        core.image
            .routing()
            .map_or(0, |r| r.targets_of(dvipa).len())
    }

    /// Removes an SA pair from the owned cache and every shadow cache, and
    /// its sequence structure from the CF (a DELETE from the peer, or the
    /// old pair after a rekey once the new one is everywhere).
    pub async fn delete_pair(&self, dvipa: Ipv4Addr, inbound_spi: crate::ipsec::sa::Spi) {
        let now = self.now();
        let (removed, out) = {
            let mut core = self.core();
            let removed = core.image.delete_pair(now, dvipa, inbound_spi);
            (removed, Outputs::drain(&mut core.image, now))
        };
        let Some(pair) = removed else { return };
        if let Some(t) = self.takeover.get() {
            t.sa_deleted(&pair.install);
        }
        self.carry_out(out, &[], None).await;
        if let Some(cf) = self.cf.get() {
            for key in crate::sysplex::image::seq_keys(&pair) {
                let _ = cf.delete_seq(key).await;
            }
        }
    }

    /// Tells every target of `dvipa` (this image too) whether the rekey of
    /// the pair with `spi` came late (Fig. 9 block 156, Fig. 10 block 166).
    pub fn rekey_timing(&self, dvipa: Ipv4Addr, spi: crate::ipsec::sa::Spi, late: bool) {
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.rekey_timing(now, dvipa, spi, late);
            Outputs::drain(&mut core.image, now)
        };
        self.send_messages(out.xcf);
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

    /// The VIPA list and every owned SA to every target (on start).
    pub(super) fn announce_all(&self) {
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.announce_all();
            Outputs::drain(&mut core.image, now)
        };
        self.send_messages(out.xcf);
    }

    /// `dvipa`, taken over, is plumbed: the image announces it.
    pub(super) fn dvipa_plumbed(&self, dvipa: Ipv4Addr) {
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.handle_dvipa_plumbed(dvipa);
            Outputs::drain(&mut core.image, now)
        };
        self.send_messages(out.xcf);
    }

    /// A peer's XCF connection came up: it gets the VIPA list and SAs.
    pub fn peer_up(&self, peer: &str) {
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.handle_peer_up(&ImageId::new(peer));
            core.image.evaluate_watches(now);
            Outputs::drain(&mut core.image, now)
        };
        self.send_messages(out.xcf);
        self.on_events(out.events);
        // A giveback the watches started writes to the CF.
        self.numbers_wanted.notify_one();
    }

    /// The image's watches evaluated now (a takeover they decide starts).
    pub(super) fn evaluate_watches(&self) {
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.evaluate_watches(now);
            Outputs::drain(&mut core.image, now)
        };
        self.send_messages(out.xcf);
        self.on_events(out.events);
        // A giveback the watches started writes to the CF.
        self.numbers_wanted.notify_one();
    }

    /// A message from another image over XCF.
    pub async fn on_xcf(&self, from: &str, msg: XcfMessage) {
        if matches!(msg, XcfMessage::VipaList { .. }) {
            // Answered with the listeners this image has right now.
            let listening = listening_ports();
            self.core().image.set_listeners(listening);
        }
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.handle_xcf(now, &ImageId::new(from), msg);
            Outputs::drain(&mut core.image, now)
        };
        self.carry_out(out, &[], None).await;
        self.numbers_wanted.notify_one();
    }

    /// A peer's XCF connection went down: forget what it registered.
    pub fn peer_down(&self, peer: &str) {
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.handle_peer_down(&ImageId::new(peer));
            core.image.evaluate_watches(now);
            Outputs::drain(&mut core.image, now)
        };
        self.send_messages(out.xcf);
        self.on_events(out.events);
        // A giveback the watches started writes to the CF.
        self.numbers_wanted.notify_one();
    }

    fn send_messages(&self, msgs: Vec<(ImageId, XcfMessage)>) {
        for (to, m) in msgs {
            self.xcf_out.send(to.as_str(), m);
        }
    }

    /// Acts on the image's events (IKE, logs).
    fn on_events(&self, events: Vec<ImageEvent>) {
        for e in events {
            match e {
                ImageEvent::IkeDatagram(p) => match self.ike.get() {
                    Some(ike) => ike.datagram(p),
                    None => tracing::debug!("IKE for a DVIPA: no IKE configured on this image"),
                },
                ImageEvent::Lifesize { from, report } => {
                    if let Some(ike) = self.ike.get() {
                        ike.lifesize(from.as_str(), &report);
                    }
                }
                ImageEvent::NewConn { from, request } => {
                    if let Some(ike) = self.ike.get() {
                        ike.newconn(from.as_str(), &request);
                    }
                }
                ImageEvent::NewConnSent { owner, request } => {
                    tracing::debug!("NEWCONN to {owner}: {request:?}");
                }
                ImageEvent::FilterLogs(logs) => self.write_filter_logs(logs),
                ImageEvent::SaRefused { from, reason } => {
                    tracing::warn!("SA from {from} refused: {reason}");
                }
                // Only recorded for a shell that traces (the simulator).
                ImageEvent::Inbound(_) => {}
                // A takeover's steps ([`super::takeover`]).
                other => match self.takeover.get() {
                    Some(t) => t.on_image_event(other),
                    None => tracing::debug!("{other:?}"),
                },
            }
        }
    }

    /// Carries out what the image polled out: XCF messages and events at
    /// once, TUN writes into `tx` (when given), GRE datagrams one
    /// `sendmmsg` per link (their `Payload::Input` index into `burst`),
    /// plain packets out of `ext`, sealed chunks in time.
    async fn carry_out(&self, out: Outputs, burst: &[&[u8]], tx: Option<&mut tunio::TxBurst>) {
        self.send_messages(out.xcf);
        self.on_events(out.events);
        if let Some(tx) = tx {
            for p in &out.tun {
                tx.push(p);
                if tx.is_full() {
                    self.flush_tun(tx).await;
                }
            }
        }
        let mut gre = GreBatch::new();
        for (to, upstream, payload) in out.data {
            let inner = match payload {
                Payload::Input(i) => match burst.get(i) {
                    Some(p) => Cow::Borrowed(*p),
                    None => continue,
                },
                Payload::Owned(p) => Cow::Owned(p),
            };
            gre.entry(to)
                .or_default()
                .push((GreHeader::new(upstream), inner));
        }
        self.flush_gre(gre).await;
        for p in out.ext {
            self.ext_send(&p).await;
        }
        for chunk in out.sealed {
            self.send_sealed(chunk).await;
        }
    }

    /// Fig. 10 block 164: a sealed chunk leaves in order while its numbers
    /// are young enough; the image hears how many left.
    async fn send_sealed(&self, chunk: SealedChunk) {
        let mut sent = 0;
        for p in &chunk.packets {
            if self.now() > chunk.deadline {
                break;
            }
            self.ext_send(p).await;
            sent += 1;
        }
        self.core().image.handle_sealed_sent(chunk.id, sent);
    }

    /// Fig. 10 block 162: carries out the image's CF requests, one at a
    /// time, each answer letting it seal a chunk that leaves at once.
    async fn run_cf_numbers(&self) {
        self.run_cf(None).await;
    }

    /// A takeover the image's watch started: its CF requests answered
    /// over `kv` (the takeover's CF connection).
    pub(super) async fn take_over(&self, kv: &super::cf::CfClient) {
        self.run_cf(Some(kv)).await;
    }

    /// The image's CF requests, one at a time: sequence numbers over this
    /// image's CF connection, a takeover's steps over `kv` when given.
    async fn run_cf(&self, kv: Option<&super::cf::CfClient>) {
        loop {
            let ask = self.core().image.poll_cf_request(self.now());
            let Some(ask) = ask else { return };
            let out = match ask {
                CfAsk::Numbers(ask) => {
                    let reply = self.take_numbers(ask).await;
                    let now = self.now();
                    let mut core = self.core();
                    let Core { image, rng } = &mut *core;
                    image.handle_cf_reply(now, ask.id, reply, rng);
                    Outputs::drain(image, now)
                }
                CfAsk::Kv { id, req } => {
                    let kv = match (kv, self.takeover.get()) {
                        (Some(kv), _) => Some(kv),
                        (None, Some(t)) => Some(t.cf().await),
                        (None, None) => self.cf.get(),
                    };
                    let r = match kv {
                        Some(cf) => cf.request(req).await.map_err(|e| e.to_string()),
                        None => Err("no CF connection".to_string()),
                    };
                    let now = self.now();
                    let mut core = self.core();
                    match r {
                        Ok(r) => core.image.handle_cf_response(now, id, r),
                        Err(why) => core.image.handle_cf_failure(id, why),
                    }
                    Outputs::drain(&mut core.image, now)
                }
            };
            self.carry_out(out, &[], None).await;
        }
    }

    /// CF requests queued outside a TUN burst (released SYNs, Fig. 11).
    async fn numbers_loop(self: Arc<Self>) {
        loop {
            self.numbers_wanted.notified().await;
            self.run_cf_numbers().await;
        }
    }

    /// `ask.n` sequence numbers from the CF (LISTKEYINC), or why none
    /// came: the image counts it and drops the packets like a full queue.
    /// The packets wait for the answer at most as long as the CF client's
    /// bounds (connect 2 s, request 5 s; docs/FAULTS.md).
    async fn take_numbers(&self, ask: SeqAsk) -> Result<(u64, u32), CfFailure> {
        use super::cf::CfClientError;
        let cf = self.cf.get().ok_or(CfFailure::Unreachable)?;
        let key: SeqKey = ask.key;
        cf.fetch_add(key, ask.n).await.map_err(|e| match e {
            CfClientError::Cf(err) => CfFailure::of_response(&CfResponse::Error(err)),
            CfClientError::Unexpected(r) => CfFailure::of_response(&r),
            CfClientError::Encode(_) => CfFailure::Refused,
            CfClientError::Connect { .. }
            | CfClientError::ConnectionLost { .. }
            | CfClientError::Timeout { .. } => CfFailure::Unreachable,
        })
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

    /// Sleeps until the image's next deadline, then hands it the time
    /// (with the local listeners it registers with the routing stacks).
    async fn timer_loop(self: Arc<Self>) {
        loop {
            let due = self.core().image.poll_timeout();
            let at = self.started + due.elapsed();
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            let listening = listening_ports();
            let now = self.now();
            let out = {
                let mut core = self.core();
                core.image.set_listeners(listening);
                core.image.handle_timeout(now);
                Outputs::drain(&mut core.image, now)
            };
            self.carry_out(out, &[], None).await;
            self.run_cf_numbers().await;
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
        let burst: Vec<&[u8]> = rx.packets().collect();
        // One clock reading per burst.
        let now = self.now();
        let out = {
            let mut core = self.core();
            core.image.handle_tun_burst(now, burst.iter().copied());
            Outputs::drain(&mut core.image, now)
        };
        self.carry_out(out, &burst, Some(tx)).await;
        self.run_cf_numbers().await;
    }

    /// Sends the GRE packets of a burst, one `sendmmsg` per XCF link
    /// (Fig. 8 block 140).
    async fn flush_gre(&self, gre: GreBatch<'_>) {
        for (target, datagrams) in gre {
            let n = datagrams.len() as u64;
            let Some(link) = self.gre.get(target.as_str()) else {
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

    /// Datagrams from the XCF link of `peer`, into the TUN: waits for the
    /// link, then takes the image's [`XcfInbound`] for one burst.
    async fn gre_loop(self: Arc<Self>, peer: String) {
        let Some(link) = self.gre.get(&peer) else {
            return;
        };
        loop {
            if let Err(e) = self.gre_burst(link).await {
                bump(&self.counters.recv_errors);
                tracing::debug!("GRE from {peer}: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Every datagram already queued on `link`, up to a burst; their inner
    /// packets reach the kernel in one coalesced write.
    async fn gre_burst(&self, link: &DataLink) -> std::io::Result<()> {
        link.readable().await?;
        let mut xcf_in = self.xcf_in.lock().await;
        let XcfInbound { rx, tx } = &mut *xcf_in;
        link.read_queued(rx)?;
        let mut datagrams = 0;
        for datagram in rx.datagrams() {
            datagrams += 1;
            self.gre_in(link.peer, datagram, tx);
            if tx.is_full() {
                self.flush_tun(tx).await;
            }
        }
        self.counters.gre_in.fetch_add(datagrams, Ordering::Relaxed);
        self.flush_tun(tx).await;
        Ok(())
    }

    /// Figs. 7 and 9 for one datagram from the XCF link of `peer_xcf`:
    /// the plaintext into `tx`, the target's reports over XCF.
    fn gre_in(&self, peer_xcf: Ipv4Addr, datagram: Datagram<'_>, tx: &mut tunio::TxBurst) {
        let now = self.now();
        let datagram = match datagram {
            Datagram::Ip(packet) => XcfDatagram::Gre(packet),
            Datagram::Udp { src, body } => XcfDatagram::GreInUdp { src, body },
        };
        let out = {
            let mut core = self.core();
            core.image.handle_xcf_datagram(now, peer_xcf, datagram);
            while let Some(plain) = core.image.poll_tun_write() {
                tx.push(&plain);
            }
            Outputs::drain(&mut core.image, now)
        };
        // The target's reports (rare on this path): no TUN writes or data
        // left to carry out.
        self.send_messages(out.xcf);
        self.on_events(out.events);
    }
}

/// The DVIPA side of a manual SA as an SA install (ESP or AH alone; an
/// AH+ESP bundle is [`manual_bundle`]'s).
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
