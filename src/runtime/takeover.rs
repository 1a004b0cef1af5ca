//! VIPA takeover in the I/O shell (see [`crate::sysplex::takeover`] for
//! the CF layout and who takes a DVIPA over).
//!
//! - **Checkpoint** (owner): SA pairs installed or deleted and DCT changes
//!   go into a bounded queue that one task writes to the CF over its own
//!   connection, so the packet path never waits for the CF and the
//!   sequence-number requests never queue behind a checkpoint.
//! - **Watch** (owner and backups): kept by the image
//!   ([`crate::sysplex::image::Image::evaluate_watches`]), fed with the XCF
//!   mesh's peers going up and down (a peer is gone when its connection
//!   closes or it misses three seconds of heartbeats, [`super::xcf`]);
//!   after a start-up grace period, the highest-ranked live candidate of a
//!   DVIPA whose holder is gone takes it: the image starts the takeover
//!   and tells [`ImageEvent::WatchDecided`], on which this shell waits for
//!   its outcome.
//! - **Acquire**: the VIPABACKUP's VIPADISTRIBUTE goes into the routing
//!   stack; the SA pairs and connections are read from the CF and adopted
//!   (the CF sequence structures go on, nothing is created again); the
//!   DVIPA is plumbed like an owner's and announced by gratuitous ARP; the
//!   VIPA list and SAs go to the targets (a target that already holds a
//!   pair keeps its replay window, see `TargetStack::install`); IKE answers
//!   for the DVIPA.
//! - **Restart**: a DVIPA the CF says another stack holds is not plumbed
//!   ([`startup`] returns it as deferred): the image waits as a backup and
//!   the holder gives it back as the VIPADEFINE's MOVEABLE says
//!   (`giveback`); a DVIPA it still holds is taken over again from what
//!   the CF holds, with the takeover's steps from nobody
//!   ([`Takeover::adopt_held`]), before manual SAs are installed again.

use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use super::cf::CfClient;
use super::image::ImageNode;
use crate::lab::netlink::NsLinks;
use crate::lab::plan::EXT_NAME;
use crate::sysplex::image::{GivebackState, ImageEvent};
use crate::sysplex::routing::DctChange;
use crate::sysplex::spec::SysplexSpec;
use crate::sysplex::takeover::SaRecord;
use crate::sysplex::takeover::{self as tk, OwnerRecord, Watch, WatchAction};
use crate::sysplex::xcf::{BundleInstall, CfRequest, SaInstall, CF_PORT};
use crate::topology::Topology;

mod giveback;

/// A watch and the giveback of its DVIPA under way at this image.
pub type WatchRow = (Watch, Option<GivebackState>);

/// The image's watches with their givebacks.
pub fn watch_rows(image: &crate::sysplex::image::Image) -> Vec<WatchRow> {
    image
        .watches()
        .map(|w| (w.clone(), image.giveback_state(w.dvipa).cloned()))
        .collect()
}

/// How long a starting image waits for the CF to read owner records.
const STARTUP_CF_WAIT: Duration = Duration::from_secs(3);
/// Peers get this long after start to connect before a missing holder
/// counts as gone (XCF's `dead_after` is 3 s).
const GRACE: Duration = Duration::from_secs(6);
/// DCT changes are handed to the CF writer this often.
const JOURNAL_EVERY: Duration = Duration::from_millis(50);
/// CF writes queued at most; more are dropped and counted.
const QUEUE: usize = 16 * 1024;
/// Gratuitous ARPs per takeover, and their spacing.
const GARP_COUNT: usize = 3;
const GARP_GAP: Duration = Duration::from_millis(200);

/// Counters for `status`.
#[derive(Debug, Default, Serialize)]
pub struct TakeoverCounters {
    pub cf_writes: AtomicU64,
    pub cf_write_errors: AtomicU64,
    /// Writes dropped because the queue was full (the CF is slow or gone).
    pub cf_writes_dropped: AtomicU64,
    /// Times this image wrote its records again into a CF that had lost
    /// its state.
    pub cf_repopulated: AtomicU64,
    pub takeovers: AtomicU64,
    /// Takeovers not done because another stack claimed the DVIPA in the
    /// CF first.
    pub claims_lost: AtomicU64,
    pub sas_adopted: AtomicU64,
    pub connections_restored: AtomicU64,
    /// Recorded connections not continued (their server died with the
    /// stack that failed, or the topology no longer has it).
    pub connections_not_restored: AtomicU64,
    /// CF records a takeover skipped because they do not decode.
    pub records_unreadable: AtomicU64,
    pub gratuitous_arps: AtomicU64,
    /// DVIPAs this image gave back to their restarted owner (holder).
    pub givebacks: AtomicU64,
    /// DVIPAs this image took back from their holder (owner).
    pub takebacks: AtomicU64,
    /// Givebacks that stopped (the CF failed, the owner declined or left).
    pub givebacks_stopped: AtomicU64,
    /// DVIPAs this image held when it started (its VIPADEFINE, or the
    /// CF's owner record), taken over again from what the CF holds.
    pub held_at_start: AtomicU64,
}

/// One takeover, for `status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct TakeoverEvent {
    pub dvipa: Ipv4Addr,
    pub previous: Option<String>,
    pub sas_adopted: usize,
    pub connections_restored: usize,
    /// From the decision to the DVIPA being plumbed and announced.
    pub took_ms: u64,
    /// Since this daemon started.
    pub at_ms: u64,
    /// Taken back from `previous` (a giveback), not taken over.
    pub giveback: bool,
    pub kind: Kind,
}

/// What made this image take a DVIPA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Its holder failed (VIPABACKUP).
    Takeover,
    /// Its holder gave it back (the VIPADEFINE owner).
    Giveback,
    /// This image held it before it restarted.
    Restart,
}

/// How the image's steps of a takeover ended.
#[derive(Debug)]
enum Outcome {
    NotClaimed,
    Failed(String),
    Plumb { sas: usize, conns: usize },
}

/// A takeover the image carries out: the holder that is gone, and where
/// to say how it ended.
type Waiting = (Option<String>, oneshot::Sender<Outcome>);

/// The takeover state of one image.
#[derive(Debug)]
pub struct Takeover {
    me: String,
    topo: Topology,
    /// The images as the core's takeover steps look them up (built once).
    sysplex: Arc<SysplexSpec>,
    cf: tokio::sync::OnceCell<CfClient>,
    writes: mpsc::Sender<CfRequest>,
    writes_rx: Mutex<Option<mpsc::Receiver<CfRequest>>>,
    /// The watches until [`Takeover::start`] hands them to the image.
    watches: Mutex<BTreeMap<Ipv4Addr, Watch>>,
    node: OnceLock<Arc<ImageNode>>,
    events: Mutex<Vec<TakeoverEvent>>,
    ike: OnceLock<Arc<super::ike::IkeRuntime>>,
    /// SA pairs adopted from the CF whose IKE SA died with the previous
    /// owner: (DVIPA, inbound SPI, peer). A new child SA with the same peer
    /// supersedes them (RFC 7296 §2.8: the peer deleted or abandoned them).
    adopted: Mutex<Vec<(Ipv4Addr, crate::ipsec::sa::Spi, std::net::IpAddr)>>,
    /// DVIPAs this image has claimed in the CF and is still taking over
    /// (reading and adopting SAs and connections, plumbing): `netstat
    /// vipadcfg` shows them Moving, as z/OS shows a VIPA in transit, and
    /// Active only once the takeover is complete.
    moving: Mutex<BTreeSet<Ipv4Addr>>,
    /// Takeovers the image carries out: the holder that is gone, and
    /// where to say how it ended.
    waiting: Mutex<BTreeMap<Ipv4Addr, Waiting>>,
    /// Givebacks this image (the holder) started, and when.
    giving: Mutex<BTreeMap<Ipv4Addr, Instant>>,
    /// Givebacks this image carried out, for `status --json`.
    gave: Mutex<Vec<giveback::GivebackEvent>>,
    started: Instant,
    pub counters: TakeoverCounters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Before the image is built: the takeover state of image `me` (`None`
/// when it neither defines nor backs up a DVIPA), and the DVIPAs it
/// defines that the CF says another stack holds (not to be plumbed).
pub async fn startup(topo: &Topology, me: &str) -> Result<(Option<Arc<Takeover>>, Vec<Ipv4Addr>)> {
    let image = topo.image(me).context("not an image")?;
    let defined: Vec<Ipv4Addr> = image.vipa.defines.iter().map(|d| d.addr).collect();
    let backed: Vec<Ipv4Addr> = image.vipa.backups.iter().map(|b| b.addr).collect();
    if defined.is_empty() && backed.is_empty() {
        return Ok((None, Vec::new()));
    }
    let addr = SocketAddr::from((topo.cf.addr, CF_PORT));
    let cf = connect_within(addr, STARTUP_CF_WAIT).await;
    let sysplex = Arc::new(topo.sysplex_spec());
    let mut watches = BTreeMap::new();
    let mut deferred = Vec::new();
    for d in defined.iter().chain(&backed) {
        let holder = match &cf {
            Some(cf) => read_owner(cf, *d).await,
            None => None,
        };
        let holder = holder.map(|r| r.image);
        let mut w = Watch::new(&*sysplex, me, *d, holder.clone());
        if defined.contains(d) {
            match holder {
                Some(h) if h != me => {
                    tracing::warn!("{d} is held by {h} (CF): {me} waits as its backup");
                    deferred.push(*d);
                }
                _ => w.holder = Some(me.to_string()),
            }
        }
        watches.insert(*d, w);
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    let t = Takeover {
        me: me.to_string(),
        topo: topo.clone(),
        sysplex,
        cf: tokio::sync::OnceCell::new(),
        writes: tx,
        writes_rx: Mutex::new(Some(rx)),
        watches: Mutex::new(watches),
        node: OnceLock::new(),
        events: Mutex::new(Vec::new()),
        ike: OnceLock::new(),
        adopted: Mutex::new(Vec::new()),
        moving: Mutex::new(BTreeSet::new()),
        waiting: Mutex::new(BTreeMap::new()),
        giving: Mutex::new(BTreeMap::new()),
        gave: Mutex::new(Vec::new()),
        started: Instant::now(),
        counters: TakeoverCounters::default(),
    };
    if let Some(cf) = cf {
        let _ = t.cf.set(cf);
    }
    Ok((Some(Arc::new(t)), deferred))
}

/// Connects to the CF, retrying until `within` has passed.
async fn connect_within(addr: SocketAddr, within: Duration) -> Option<CfClient> {
    let start = Instant::now();
    loop {
        match CfClient::connect(addr).await {
            Ok(c) => return Some(c),
            Err(e) if start.elapsed() >= within => {
                tracing::warn!("CF at {addr} not reachable for the owner records: {e}");
                return None;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn read_owner(cf: &CfClient, dvipa: Ipv4Addr) -> Option<OwnerRecord> {
    let bytes = cf.get(&tk::owner_key(dvipa)).await.ok()??;
    tk::decode(&bytes).ok()
}

impl Takeover {
    /// The IKE runtime that answers for DVIPAs taken over.
    pub fn set_ike(&self, ike: Arc<super::ike::IkeRuntime>) {
        let _ = self.ike.set(ike);
    }

    /// Starts the CF writer and the DCT journal, and hands the watches to
    /// the image (the XCF mesh's peers reach it through
    /// [`ImageNode::peer_up`] and [`ImageNode::peer_down`]).
    pub fn start(self: &Arc<Self>, node: &Arc<ImageNode>) {
        if let Some(r) = node.core().image.routing_mut() {
            r.keep_journal();
        }
        if let Some(rx) = lock(&self.writes_rx).take() {
            tokio::spawn(Arc::clone(self).writer(rx));
        }
        tokio::spawn(Arc::clone(self).journal(Arc::clone(node)));
        let _ = self.node.set(Arc::clone(node));
        self.hand_watches(node);
    }

    /// The image keeps the watches from now on and takes a DVIPA over
    /// when one says so, after [`GRACE`] (see [`Image::evaluate_watches`]).
    fn hand_watches(&self, node: &ImageNode) {
        let Some(image) = self.topo.image(&self.me) else {
            return;
        };
        let now = node.now();
        let mut core = node.core();
        let watches = std::mem::take(&mut *lock(&self.watches));
        let fresh = match core.image.routing() {
            None => match super::image::routing_stack(image, &[]) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!("{}: no routing stack to take over with: {e:#}", self.me);
                    None
                }
            },
            Some(_) => None,
        };
        core.image
            .set_watch_context(Arc::clone(&self.sysplex), fresh);
        for (dvipa, w) in watches {
            core.image.watch_dvipa(w, image.distributions_of(dvipa));
        }
        core.image.set_watch_grace(now + GRACE);
        drop(core);
        node.evaluate_watches();
    }

    pub(super) async fn cf(&self) -> &CfClient {
        let addr = SocketAddr::from((self.topo.cf.addr, CF_PORT));
        self.cf
            .get_or_init(|| async move {
                loop {
                    if let Ok(c) = CfClient::connect(addr).await {
                        return c;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
            .await
    }

    /// Queues a key/value write for the CF (a checkpoint).
    fn queue(&self, w: CfRequest) {
        if self.writes.try_send(w).is_err() {
            bump(&self.counters.cf_writes_dropped, 1);
        }
    }

    /// An SA pair of an owned DVIPA was installed (IKE, rekey, manual).
    pub fn sa_installed(&self, install: &SaInstall) {
        self.record(SaRecord::Pair(Box::new(install.clone())));
    }

    /// An AH+ESP bundle of an owned DVIPA was installed (manual).
    pub fn bundle_installed(&self, bundle: &BundleInstall) {
        self.record(SaRecord::Bundle(Box::new(bundle.clone())));
    }

    fn record(&self, rec: SaRecord) {
        self.queue(CfRequest::Put {
            key: rec.key().into(),
            value: tk::encode(&rec),
        });
    }

    /// An SA pair (or the ESP pair of a bundle) was deleted (DELETE, or the
    /// old pair after a rekey).
    pub fn sa_deleted(&self, install: &SaInstall) {
        let key = tk::sa_key(install.dvipa, install.inbound.protocol, install.inbound.spi);
        self.queue(CfRequest::Delete { key: key.into() });
    }

    async fn writer(self: Arc<Self>, mut rx: mpsc::Receiver<CfRequest>) {
        while let Some(w) = rx.recv().await {
            let cf = self.cf().await;
            match cf.expect_done(w.clone()).await {
                Ok(()) => bump(&self.counters.cf_writes, 1),
                Err(e) => {
                    bump(&self.counters.cf_write_errors, 1);
                    tracing::debug!("CF checkpoint {w:?}: {e}");
                }
            }
        }
    }

    /// Hands the routing stack's DCT changes to the writer.
    async fn journal(self: Arc<Self>, node: Arc<ImageNode>) {
        let mut tick = tokio::time::interval(JOURNAL_EVERY);
        loop {
            tick.tick().await;
            let changes = match node.core().image.routing_mut() {
                Some(r) => r.take_journal(),
                None => continue,
            };
            for c in &changes {
                self.queue(tk::conn_request(c));
            }
        }
    }

    /// The CF lost its state (it restarted; `image::cf_watch`): writes
    /// again what it held for this image's DVIPAs, its owner records, SA
    /// pairs and connections, as a z/OS stack repopulates the EZBDVIPA
    /// structure after VTAM reconnected to it. The sequence counters are
    /// not written: the owner's IKE rekeys instead (docs/FAULTS.md).
    pub async fn repopulate(&self, node: &ImageNode) {
        let held = self.held_dvipas();
        for dvipa in held {
            self.write_owner(dvipa, None).await;
        }
        let (pairs, conns) = match node.core().image.routing() {
            Some(r) => (r.pairs().to_vec(), r.dct().sorted()),
            None => return,
        };
        for p in &pairs {
            match &p.ah {
                None => self.sa_installed(&p.install),
                Some(ah) => self.bundle_installed(&BundleInstall {
                    esp: p.install.clone(),
                    ah: ah.bundle.clone(),
                }),
            }
        }
        for (key, e) in conns {
            self.queue(tk::conn_request(&DctChange::Made {
                key,
                target: e.target.to_string(),
                target_xcf: e.target_xcf,
                ipsec: e.ipsec,
            }));
        }
        bump(&self.counters.cf_repopulated, 1);
    }

    /// A restarted holder (no takeover in between): the image takes its
    /// DVIPAs over from its previous incarnation, with the takeover's steps
    /// from nobody ([`crate::sysplex::image::Image::take_over_held`]: the
    /// owner record is claimed again, the SA pairs and connections the CF
    /// holds are adopted); this shell plumbs (what is there already is
    /// kept), announces by gratuitous ARP, and IKE renegotiates with the
    /// peers whose IKE SAs died with the previous incarnation. Returns
    /// once every DVIPA is done.
    pub async fn adopt_held(self: &Arc<Self>, node: &Arc<ImageNode>) {
        let held = self.held_dvipas();
        for dvipa in held {
            // A giveback that reached this image before the CF did holds
            // the DVIPA's waiter, or took it (back) already: the watch
            // names whom from. Only what the previous incarnation held is
            // adopted.
            let taken_back = node
                .core()
                .image
                .watch(dvipa)
                .is_some_and(|w| w.took_from.is_some());
            if taken_back || lock(&self.waiting).contains_key(&dvipa) {
                tracing::info!(
                    "{}: {dvipa}: taken back already, not adopted again",
                    self.me
                );
                continue;
            }
            let done = self.start_acquire(dvipa, None, Kind::Restart);
            let started = node.core().image.take_over_held(dvipa);
            if !started {
                tracing::warn!(
                    "{}: {dvipa}: not adopted (no watch, or a takeover of it under way)",
                    self.me
                );
                lock(&self.waiting).remove(&dvipa);
            }
            node.cf_work_queued();
            let _ = done.await;
        }
    }

    async fn write_owner(&self, dvipa: Ipv4Addr, previous: Option<String>) {
        let rec = OwnerRecord {
            image: self.me.clone(),
            takeover: previous.is_some(),
            previous,
        };
        if let Err(e) = self
            .cf()
            .await
            .put(&tk::owner_key(dvipa), tk::encode(&rec))
            .await
        {
            tracing::error!("{dvipa}: recording the owner in the CF: {e}");
        }
    }

    /// The IKE peers of the pairs adopted for `dvipa`: their IKE SAs died
    /// with the previous holder, so this image's IKE negotiates anew.
    fn ike_peers_adopted(&self, dvipa: Ipv4Addr) -> BTreeSet<Ipv4Addr> {
        let ike_peers: BTreeSet<Ipv4Addr> =
            self.topo.ike_clients_of(dvipa).map(|c| c.addr).collect();
        lock(&self.adopted)
            .iter()
            .filter(|(d, _, _)| *d == dvipa)
            .filter_map(|(_, _, peer)| match peer {
                std::net::IpAddr::V4(p) if ike_peers.contains(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    /// Keeps the adopted pairs (for [`Takeover::superseded`]), logs what
    /// was refused or not restored, counts; returns how many of each.
    fn adopted(&self, dvipa: Ipv4Addr, adoption: &tk::Adoption) -> (usize, usize) {
        for sa in &adoption.sas {
            match sa {
                tk::SaAdoption::Adopted {
                    inbound,
                    peer,
                    bundle: false,
                    ..
                } => {
                    // Only negotiated pairs are superseded by a new child
                    // SA (bundles are manual).
                    lock(&self.adopted).push((dvipa, *inbound, *peer));
                }
                tk::SaAdoption::Adopted { .. } => {}
                tk::SaAdoption::Refused { inbound, why } => {
                    tracing::warn!("{dvipa}: SA {:#010x} from the CF refused: {why}", inbound.0);
                }
            }
        }
        for c in &adoption.conns {
            if let tk::ConnAdoption::NotRestored { key, why, .. } = c {
                bump(&self.counters.connections_not_restored, 1);
                tracing::info!("{dvipa}: {key:?} not restored: {why}");
            }
        }
        let (n_sas, n_conns) = (adoption.sas_adopted(), adoption.conns_restored());
        bump(&self.counters.sas_adopted, n_sas as u64);
        bump(&self.counters.connections_restored, n_conns as u64);
        (n_sas, n_conns)
    }

    /// What the image tells of a takeover it carries out.
    pub(super) fn on_image_event(self: &Arc<Self>, ev: ImageEvent) {
        let (dvipa, outcome) = match ev {
            ImageEvent::WatchDecided {
                dvipa,
                action: WatchAction::Acquire { previous },
                ..
            } => {
                self.start_acquire(dvipa, previous, Kind::Takeover);
                return;
            }
            ImageEvent::TakingBack { dvipa, from } => {
                tracing::warn!("{}: {from} gives {dvipa} back", self.me);
                self.start_acquire(dvipa, Some(from), Kind::Giveback);
                return;
            }
            ev @ (ImageEvent::GivebackDecided { .. }
            | ImageEvent::GivebackStopped { .. }
            | ImageEvent::GaveBack { .. }) => return self.on_giveback_event(ev),
            ImageEvent::TakeoverNotClaimed { dvipa, .. } => {
                bump(&self.counters.claims_lost, 1);
                tracing::warn!(
                    "{}: {dvipa}: another stack claimed it in the CF first; not taking it over",
                    self.me
                );
                (dvipa, Outcome::NotClaimed)
            }
            ImageEvent::TakeoverFailed { dvipa, why } => (dvipa, Outcome::Failed(why)),
            ImageEvent::RoutingStackOf { dvipa, .. } => {
                let previous = lock(&self.waiting).get(&dvipa).map(|w| w.0.clone());
                let previous = previous.flatten();
                tracing::warn!("{}: taking {dvipa} over from {previous:?}", self.me);
                lock(&self.moving).insert(dvipa);
                return;
            }
            ImageEvent::Adopted { dvipa, adoption } => {
                self.adopted(dvipa, &adoption);
                return;
            }
            ImageEvent::PlumbDvipa {
                dvipa,
                sas_adopted,
                conns_restored,
                ..
            } => (
                dvipa,
                Outcome::Plumb {
                    sas: sas_adopted,
                    conns: conns_restored,
                },
            ),
            ImageEvent::TakeoverRecordUnreadable { dvipa, key, why } => {
                bump(&self.counters.records_unreadable, 1);
                return tracing::warn!("{}: {dvipa}: CF record {key} skipped: {why}", self.me);
            }
            other => return tracing::debug!("{other:?}"),
        };
        if let Some((_, tx)) = lock(&self.waiting).remove(&dvipa) {
            let _ = tx.send(outcome);
        }
    }

    /// Waits for the outcome of the takeover (or taking back, or restart
    /// adoption) of `dvipa` the image started, and carries out its shell
    /// part; the task ends when it is done.
    fn start_acquire(
        self: &Arc<Self>,
        dvipa: Ipv4Addr,
        previous: Option<String>,
        kind: Kind,
    ) -> tokio::task::JoinHandle<()> {
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(dvipa, (previous.clone(), tx));
        let (t, node) = (Arc::clone(self), self.node.get().cloned());
        tokio::spawn(async move {
            let Some(node) = node else { return };
            let acquired = t.acquire(&node, dvipa, previous, rx, kind).await;
            if kind == Kind::Giveback {
                // The holder lets go once the LAN was told (or stays MOVING
                // no longer than the owner lives, if the plumbing failed).
                node.dvipa_announced(dvipa);
            }
            if let Err(e) = acquired {
                tracing::error!("taking {dvipa} over: {e:#}");
            }
        })
    }

    /// Takes `dvipa` over (see the module documentation): the image
    /// carries out the protocol steps, this shell the plumbing, IKE and
    /// the gratuitous ARP.
    async fn acquire(
        &self,
        node: &Arc<ImageNode>,
        dvipa: Ipv4Addr,
        previous: Option<String>,
        rx: oneshot::Receiver<Outcome>,
        kind: Kind,
    ) -> Result<()> {
        let t0 = Instant::now();
        node.take_over(self.cf().await).await;
        let outcome = rx.await;
        let (n_sas, n_conns) = match outcome {
            Ok(Outcome::Plumb { sas, conns }) => (sas, conns),
            Ok(Outcome::NotClaimed) => return Ok(()),
            Ok(Outcome::Failed(why)) => {
                lock(&self.moving).remove(&dvipa);
                anyhow::bail!("{why}");
            }
            Err(_) => {
                lock(&self.moving).remove(&dvipa);
                anyhow::bail!("the image dropped the takeover");
            }
        };
        let plumbed = self.plumb(node, dvipa).await;
        lock(&self.moving).remove(&dvipa);
        plumbed?;
        let took_ms = t0.elapsed().as_millis() as u64;
        bump(
            match kind {
                Kind::Takeover => &self.counters.takeovers,
                Kind::Giveback => &self.counters.takebacks,
                Kind::Restart => &self.counters.held_at_start,
            },
            1,
        );
        if kind == Kind::Restart {
            // Its own DVIPA again after a restart: one announcement.
            tracing::info!(
                "{}: {dvipa} held again in {took_ms} ms: {n_sas} SA pairs, {n_conns} connections from the CF",
                self.me
            );
            return self.gratuitous_arp(&node.links, dvipa, 1).await;
        }
        lock(&self.events).push(TakeoverEvent {
            dvipa,
            previous,
            sas_adopted: n_sas,
            connections_restored: n_conns,
            took_ms,
            at_ms: self.started.elapsed().as_millis() as u64,
            giveback: kind == Kind::Giveback,
            kind,
        });
        tracing::warn!(
            "{}: {dvipa} {} in {took_ms} ms: {n_sas} SA pairs, {n_conns} connections",
            self.me,
            if kind == Kind::Giveback {
                "taken back"
            } else {
                "taken over"
            }
        );
        self.gratuitous_arp(&node.links, dvipa, GARP_COUNT).await
    }

    /// The image took `dvipa` over: plumb it like an owner's, announce
    /// it to the targets, IKE answers for it.
    async fn plumb(&self, node: &Arc<ImageNode>, dvipa: Ipv4Addr) -> Result<()> {
        node.add_owned(dvipa);
        super::image::plumb(&node.links, &[dvipa], &[dvipa]).await?;
        node.dvipa_plumbed(dvipa);
        if let Some(ike) = self.ike.get() {
            ike.add_dvipa(&self.topo, dvipa)?;
            for peer in self.ike_peers_adopted(dvipa) {
                ike.renegotiate(dvipa, peer);
            }
        }
        Ok(())
    }

    async fn gratuitous_arp(&self, links: &NsLinks, dvipa: Ipv4Addr, count: usize) -> Result<()> {
        let ifindex = links.index(EXT_NAME).await?;
        let mac = links.mac(EXT_NAME).await?;
        super::arp::announce(ifindex, mac, dvipa, count, GARP_GAP).await?;
        bump(&self.counters.gratuitous_arps, count as u64);
        Ok(())
    }

    /// A child SA was negotiated for `dvipa` with `peer`: the adopted pairs
    /// with that peer are superseded (their IKE SA is gone; the peer's
    /// DELETE for them named an IKE SA this image never had). Returns their
    /// inbound SPIs, for `ImageNode::delete_pair`.
    pub fn superseded(
        &self,
        dvipa: Ipv4Addr,
        peer: std::net::IpAddr,
    ) -> Vec<crate::ipsec::sa::Spi> {
        let mut adopted = lock(&self.adopted);
        let (gone, keep): (Vec<_>, Vec<_>) = adopted
            .drain(..)
            .partition(|(d, _, p)| *d == dvipa && *p == peer);
        *adopted = keep;
        gone.into_iter().map(|(_, spi, _)| spi).collect()
    }

    /// The watches (with the giveback under way): this shell's until
    /// [`Takeover::start`], the image's from then on.
    /// The DVIPAs this image holds (as owner or after a takeover).
    fn held_dvipas(&self) -> Vec<Ipv4Addr> {
        self.watch_list()
            .iter()
            .filter(|(w, _)| w.held())
            .map(|(w, _)| w.dvipa)
            .collect()
    }

    fn watch_list(&self) -> Vec<WatchRow> {
        let before = self.unhanded();
        match self.node.get() {
            Some(n) if before.is_empty() => watch_rows(&n.core().image),
            _ => before.into_iter().map(|w| (w, None)).collect(),
        }
    }

    /// The watches not handed to the image yet (before [`Takeover::start`]).
    pub fn unhanded(&self) -> Vec<Watch> {
        lock(&self.watches).values().cloned().collect()
    }

    /// The VIPA status rows of `netstat vipadcfg`.
    pub fn status_rows(&self) -> Vec<super::display::VipaStatusRow> {
        self.status_rows_of(&self.watch_list())
    }

    /// The rows for `watches` (the image's, when the caller holds its
    /// lock): z/OS's NETSTAT VIPADYN status, ACTIVE, BACKUP or MOVING (a
    /// DVIPA taken over or back until it is plumbed and announced, and
    /// at the holder while it gives the DVIPA back).
    pub fn status_rows_of(&self, watches: &[WatchRow]) -> Vec<super::display::VipaStatusRow> {
        watches
            .iter()
            .map(|(w, gb)| {
                let moving = lock(&self.moving).contains(&w.dvipa)
                    || matches!(
                        gb,
                        Some(GivebackState::Flushing { .. } | GivebackState::Offered { .. })
                    );
                super::display::VipaStatusRow {
                    dvipa: w.dvipa,
                    holder: w.holder.clone(),
                    state: match (w.held(), moving) {
                        (true, true) => "Moving",
                        (true, false) => "Active",
                        (false, _) => "Backup",
                    }
                    .into(),
                    takeovers: w.takeovers,
                    took_from: w.took_from.clone(),
                    moveable: format!("{:?}", w.moveable),
                    givebacks: w.givebacks,
                    giveback: gb.as_ref().map(giveback::describe),
                }
            })
            .collect()
    }

    /// `status["takeover"]`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "dvipas": self.status_rows(),
            "events": *lock(&self.events),
            "givebacks": self.givebacks(),
            "counters": &self.counters,
        })
    }
}
