//! The IKE of a routing stack (issue 5, patent Figs. 5–7, 9–11): one
//! sans-IO [`Ike`] endpoint per DVIPA the image owns, inside the image's
//! own process, fed with the IKE datagrams the routing stack classifies as
//! [`Decision::Ike`](crate::sysplex::routing::Decision::Ike).
//!
//! - A negotiated child SA pair becomes an owned SA of the routing stack
//!   and is copied to every target's shadow cache, its starting sequence
//!   number going to the coupling facility ([`ImageNode::install_pair`],
//!   Fig. 6 blocks 112–118, Fig. 7).
//! - Rekeying (RFC 7296 §1.3.3, §2.8), started by either side: the new
//!   pair is installed everywhere before the old pair's deletion is
//!   carried out ([`IkeEvent::ChildSaRekeyed`] comes before the old pair's
//!   [`IkeEvent::ChildSaDeleted`], and both are carried out in order).
//!   Soft lifetimes in seconds are the endpoint's timers; in bytes, the
//!   targets' lifesize reports (Fig. 9 block 158, Fig. 10 block 168) are
//!   fed to [`Ike::child_bytes_processed`].
//! - A DELETE from the peer (§1.4.1) removes the pair from the owned cache,
//!   every shadow cache and the CF ([`ImageNode::delete_pair`]).
//! - NEWCONN (Fig. 11 block 174): a target opening a connection from the
//!   DVIPA to an IKE peer without an SA makes this endpoint initiate.
//!
//! Everything that needs I/O or awaiting runs in one worker task, in the
//! order the endpoint produced it; the endpoints sit behind one mutex that
//! is never held across an await.

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use super::image::{IkeHook, ImageNode};
use crate::ike::natt::{IKE_PORT, NATT_PORT};
use crate::ike::{
    ChildLifetime, ChildSaId, ChildSaInfo, Identity, Ike, IkeConfig, IkeEvent, IkeLifetime,
    PeerConfig, Transmit,
};
use crate::sysplex::xcf::{SaInstall, XcfMessage};
use crate::time;
use crate::topology::{IkeSettings, Topology};
use crate::wire::{ipv4, udp, IpProtocol, Ipv4Packet, PseudoHeader, UdpPacket, UdpRepr};

/// A NEWCONN for a peer we are already negotiating with is ignored for
/// this long (the target holds its SYN until the SA arrives).
const NEWCONN_HOLDOFF: Duration = Duration::from_secs(5);
/// The timer task wakes at least this often.
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// The endpoint configuration of `local` (a DVIPA, or a client's address)
/// from the IKE settings of the owners' Policy Agent policy
/// (`topology::ike_policy`): identities are addresses; every peer in
/// `peers` shares the one PSK; host-to-host selectors.
pub fn ike_config(
    settings: &IkeSettings,
    local: Ipv4Addr,
    peers: impl IntoIterator<Item = Ipv4Addr>,
) -> Result<IkeConfig> {
    let mut c = IkeConfig::new(
        Identity::Ipv4(local),
        &settings.proposals,
        &settings.esp_proposals,
    )
    .context("the policy's IKE proposals")?;
    let secs = |s: Option<u64>| s.map(Duration::from_secs);
    c.ike_lifetime = IkeLifetime {
        rekey_time: secs(settings.ike_rekey_time),
    };
    c.child_lifetime = ChildLifetime {
        rekey_time: secs(settings.rekey_time),
        life_time: secs(settings.life_time),
        rekey_bytes: settings.rekey_bytes,
        life_bytes: settings.life_bytes,
        rekey_packets: None,
        life_packets: None,
    };
    // strongSwan's rand_time: 10 % of the rekey time.
    c.rekey_jitter = settings
        .rekey_time
        .map_or(Duration::ZERO, |t| Duration::from_secs(t) / 10);
    c.cookie_threshold = settings.cookie_threshold;
    c.peers = peers
        .into_iter()
        .map(|p| PeerConfig::new(Identity::Ipv4(p), settings.psk.as_bytes()))
        .collect();
    Ok(c)
}

/// The SA pair a negotiated child SA becomes at the routing stack, as
/// [`super::image::manual_install`] builds one for a manual SA: the CF
/// sequence structure keyed by the outbound SPI (Fig. 6 block 116), a
/// lifesize report threshold of 5 % of the byte lifetime (Fig. 9 block
/// 156; 0 lets the target choose); the routing stack's install adds the
/// dynamic filter (block 118).
pub fn child_install(dvipa: Ipv4Addr, info: &ChildSaInfo) -> SaInstall {
    let mut install = SaInstall::pair(dvipa, info.inbound.clone(), info.outbound.clone());
    install.report_bytes = info.outbound.lifetimes.hard.bytes.map_or(0, |b| b / 20);
    install
}

/// A UDP datagram from `src` to `dst` in an IPv4 packet, checksums filled.
pub fn udp_packet(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = udp::HEADER_LEN + payload.len();
    let mut buf = vec![0u8; ipv4::HEADER_LEN + udp_len];
    ipv4::Repr::new(*src.ip(), *dst.ip(), IpProtocol::Udp, udp_len)
        .emit(&mut Ipv4Packet::new_unchecked(&mut buf[..ipv4::HEADER_LEN]));
    buf[ipv4::HEADER_LEN + udp::HEADER_LEN..].copy_from_slice(payload);
    UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut buf[ipv4::HEADER_LEN..]),
        payload.len(),
        Some(&PseudoHeader::V4 {
            src: *src.ip(),
            dst: *dst.ip(),
        }),
    );
    buf
}

/// Source, destination and UDP payload of an IPv4/UDP packet; `None` for
/// anything else (malformed input from the LAN is dropped, never trusted).
pub fn parse_udp(packet: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    let repr = ipv4::Repr::parse(&ip).ok()?;
    if repr.next_header != IpProtocol::Udp || repr.more_frags || repr.frag_offset != 0 {
        return None;
    }
    let hl = usize::from(ip.header_len());
    let total = usize::from(ip.total_len());
    let u = UdpPacket::new_checked(packet.get(hl..total)?).ok()?;
    let len = usize::from(u.len());
    let payload = packet.get(hl + udp::HEADER_LEN..hl + len)?;
    Some((
        SocketAddrV4::new(repr.src_addr, u.src_port()),
        SocketAddrV4::new(repr.dst_addr, u.dst_port()),
        payload,
    ))
}

/// Counters of the routing stack's IKE, for `status`.
#[derive(Debug, Default, serde::Serialize)]
pub struct IkeCounters {
    pub datagrams: AtomicU64,
    pub dropped: AtomicU64,
    pub sent: AtomicU64,
    pub ike_sas_established: AtomicU64,
    pub child_sas_installed: AtomicU64,
    pub child_sas_rekeyed: AtomicU64,
    /// Rekeys whose old pair had reached its hard byte lifetime (the
    /// targets were told to report sooner).
    pub rekeys_late: AtomicU64,
    pub child_sas_deleted: AtomicU64,
    pub install_errors: AtomicU64,
    pub auth_failed: AtomicU64,
    pub child_failed: AtomicU64,
    pub lifesize_reports: AtomicU64,
    pub newconn: AtomicU64,
    /// IKE initiations to peers whose IKE SA died with the DVIPA's
    /// previous holder (after a takeover).
    pub renegotiated: AtomicU64,
    /// Pairs dropped because their peer negotiated a new IKE SA from
    /// scratch (it restarted).
    pub stale_children_dropped: AtomicU64,
    /// Child SAs rekeyed because the CF lost their sequence counters.
    pub rekeys_cf_lost: AtomicU64,
    /// Rekeys that could not start (the child or its IKE SA was gone).
    pub rekey_errors: AtomicU64,
    pub initiated: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Work for the worker task, in arrival order.
#[derive(Debug)]
enum Job {
    Datagram(Vec<u8>),
    Lifesize {
        spi: u32,
        bytes: u64,
        packets: u64,
    },
    NewConn {
        dvipa: Ipv4Addr,
        peer: Ipv4Addr,
    },
    Renegotiate {
        dvipa: Ipv4Addr,
        peer: Ipv4Addr,
    },
    /// The CF lost its state: rekey every installed child SA.
    RekeyAll,
    Tick,
}

/// A child SA pair installed in the sysplex.
#[derive(Debug, Clone)]
struct Child {
    dvipa: Ipv4Addr,
    id: ChildSaId,
    info: ChildSaInfo,
    bytes: u64,
}

struct Inner {
    endpoints: BTreeMap<Ipv4Addr, Ike>,
    rng: StdRng,
    /// Installed pairs by inbound SPI; `by_spi` maps both SPIs to it.
    children: HashMap<u32, Child>,
    by_spi: HashMap<u32, u32>,
    /// NEWCONN initiations under way: (DVIPA, peer) → when.
    pending: HashMap<(Ipv4Addr, Ipv4Addr), Instant>,
}

/// What one call into the endpoints produced, to carry out in order.
#[derive(Debug, Default)]
struct Outputs {
    events: Vec<(Ipv4Addr, IkeEvent)>,
    transmits: Vec<(Ipv4Addr, Transmit)>,
}

/// The IKE of one image's owned DVIPAs.
pub struct IkeRuntime {
    node: Weak<ImageNode>,
    settings: IkeSettings,
    inner: Mutex<Inner>,
    jobs: mpsc::UnboundedSender<Job>,
    epoch: Instant,
    wake: tokio::sync::Notify,
    pub counters: IkeCounters,
}

impl std::fmt::Debug for IkeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeRuntime")
            .field("dvipas", &self.lock().endpoints.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl IkeRuntime {
    /// The IKE of `node` when its image has `ike = true`, owns a DVIPA and
    /// the topology has IKE settings (a KeyExchangeRule in a policy); installs itself as the node's IKE hook and
    /// starts its worker and timer tasks.
    pub fn start(node: &Arc<ImageNode>, topo: &Topology) -> Result<Option<Arc<IkeRuntime>>> {
        let Some(settings) = topo.ike.clone() else {
            return Ok(None);
        };
        let Some(image) = topo.image(&node.name) else {
            return Ok(None);
        };
        if !image.ike {
            return Ok(None);
        }
        // A backup runs IKE too: it answers for a DVIPA once it took it over.
        if image.vipa.defines.is_empty() && image.vipa.backups.is_empty() {
            return Ok(None);
        }
        let mut rng = StdRng::from_entropy();
        let mut endpoints = BTreeMap::new();
        for dvipa in node.owned_now().iter().copied() {
            let peers = topo.ike_clients_of(dvipa).map(|c| c.addr);
            let config = ike_config(&settings, dvipa, peers)?;
            endpoints.insert(dvipa, Ike::new(config, dvipa, &mut rng));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let rt = Arc::new(IkeRuntime {
            node: Arc::downgrade(node),
            settings,
            inner: Mutex::new(Inner {
                endpoints,
                rng,
                children: HashMap::new(),
                by_spi: HashMap::new(),
                pending: HashMap::new(),
            }),
            jobs: tx,
            epoch: Instant::now(),
            wake: tokio::sync::Notify::new(),
            counters: IkeCounters::default(),
        });
        node.set_ike_hook(Arc::clone(&rt) as Arc<dyn IkeHook>);
        tokio::spawn(Arc::clone(&rt).worker(rx));
        tokio::spawn(Arc::clone(&rt).timer());
        tracing::info!(
            "{}: IKE for {:?}",
            node.name,
            rt.lock().endpoints.keys().collect::<Vec<_>>()
        );
        Ok(Some(rt))
    }

    /// VIPA takeover: this image now owns `dvipa` and answers its IKE peers
    /// (a new IKE_SA_INIT; the old owner's IKE SAs died with it).
    pub fn add_dvipa(&self, topo: &Topology, dvipa: Ipv4Addr) -> Result<()> {
        let peers = topo.ike_clients_of(dvipa).map(|c| c.addr);
        let config = ike_config(&self.settings, dvipa, peers)?;
        let mut guard = self.lock();
        let inner = &mut *guard;
        if !inner.endpoints.contains_key(&dvipa) {
            let ike = Ike::new(config, dvipa, &mut inner.rng);
            inner.endpoints.insert(dvipa, ike);
            tracing::info!("IKE for {dvipa} started (takeover)");
        }
        Ok(())
    }

    /// Giveback: the owner has `dvipa` again; this image's IKE stops
    /// answering for it and forgets its IKE and child SAs without a DELETE
    /// (the child SAs go on under the owner until its IKE replaces them;
    /// z/OS: the old SA on the client "remains active until it is deleted
    /// by liveness checking", IP Configuration Guide, SWSA "DVIPA
    /// takeover").
    pub fn remove_dvipa(&self, dvipa: Ipv4Addr) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.endpoints.remove(&dvipa);
        let gone: Vec<u32> = inner
            .children
            .iter()
            .filter(|(_, c)| c.dvipa == dvipa)
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            inner.children.remove(k);
        }
        inner.by_spi.retain(|_, v| !gone.contains(v));
        inner.pending.retain(|(d, _), _| *d != dvipa);
        tracing::info!(
            "IKE for {dvipa} stopped (given back), {} child SAs forgotten",
            gone.len()
        );
    }

    /// After a takeover of `dvipa`: negotiates anew with `peer`, whose IKE
    /// SA died with the previous holder (IKE SAs are not in the CF), so the
    /// peer need not notice; the new child SA supersedes the pair adopted
    /// from the CF.
    pub fn renegotiate(&self, dvipa: Ipv4Addr, peer: Ipv4Addr) {
        let _ = self.jobs.send(Job::Renegotiate { dvipa, peer });
    }

    /// Initiates an IKE SA from `dvipa` to `peer` (Fig. 11 block 174, and
    /// after a takeover) unless a child SA with it exists or an initiation
    /// is under way.
    fn initiate_to(
        &self,
        inner: &mut Inner,
        now: time::Instant,
        dvipa: Ipv4Addr,
        peer: Ipv4Addr,
        why: &str,
    ) {
        let has_sa = inner
            .children
            .values()
            .any(|c| c.dvipa == dvipa && c.info.outbound.dst == std::net::IpAddr::V4(peer));
        let wall = Instant::now();
        let recent = inner
            .pending
            .get(&(dvipa, peer))
            .is_some_and(|t| wall.duration_since(*t) < NEWCONN_HOLDOFF);
        if has_sa || recent {
            return;
        }
        let Some(ike) = inner.endpoints.get_mut(&dvipa) else {
            return;
        };
        let known = ike
            .config()
            .peers
            .iter()
            .find(|p| p.id == Identity::Ipv4(peer))
            .cloned();
        let Some(pc) = known else {
            tracing::info!("{why} {dvipa} -> {peer}: not an IKE peer");
            return;
        };
        let id = ike.initiate(now, SocketAddrV4::new(peer, IKE_PORT), pc, &mut inner.rng);
        bump(&self.counters.initiated);
        inner.pending.insert((dvipa, peer), wall);
        tracing::info!("{why} {dvipa} -> {peer}: initiating {id}");
    }

    /// Rekeys every installed child SA (RFC 7296 §1.3.3): the CF lost
    /// their sequence counters (it restarted), and a counter started anew
    /// would hand out numbers already used; a new SA starts its own
    /// (docs/FAULTS.md). Each new pair is installed, with its structure
    /// in the CF, before the old one is deleted.
    fn rekey_all(&self, inner: &mut Inner, now: time::Instant) {
        let mut children: Vec<(Ipv4Addr, ChildSaId)> =
            inner.children.values().map(|c| (c.dvipa, c.id)).collect();
        children.sort();
        for (dvipa, id) in children {
            let Some(ike) = inner.endpoints.get_mut(&dvipa) else {
                continue;
            };
            match ike.rekey_child(now, id, &mut inner.rng) {
                Ok(()) => bump(&self.counters.rekeys_cf_lost),
                Err(e) => {
                    bump(&self.counters.rekey_errors);
                    tracing::warn!(
                        "{dvipa}: rekeying child SA {id:?} after the CF lost its state: {e:?}"
                    );
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> time::Instant {
        time::Instant::from_elapsed(self.epoch.elapsed())
    }

    /// Drains every endpoint's datagrams and events.
    fn drain(inner: &mut Inner) -> Outputs {
        let mut out = Outputs::default();
        for (dvipa, ike) in inner.endpoints.iter_mut() {
            while let Some(e) = ike.poll_event() {
                out.events.push((*dvipa, e));
            }
            while let Some(t) = ike.poll_transmit() {
                out.transmits.push((*dvipa, t));
            }
        }
        out
    }

    /// Runs one job against the endpoints (no awaiting).
    fn step(&self, job: Job) -> Outputs {
        let now = self.now();
        let mut guard = self.lock();
        let inner = &mut *guard;
        match job {
            Job::Datagram(packet) => {
                bump(&self.counters.datagrams);
                let Some((src, dst, payload)) = parse_udp(&packet) else {
                    bump(&self.counters.dropped);
                    return Outputs::default();
                };
                let port = dst.port();
                if port != IKE_PORT && port != NATT_PORT {
                    bump(&self.counters.dropped);
                    return Outputs::default();
                }
                let Some(ike) = inner.endpoints.get_mut(dst.ip()) else {
                    bump(&self.counters.dropped);
                    return Outputs::default();
                };
                if let Err(e) = ike.handle_datagram(now, src, port, payload, &mut inner.rng) {
                    bump(&self.counters.dropped);
                    tracing::debug!("IKE from {src} to {dst} dropped: {e}");
                }
            }
            Job::Lifesize {
                spi,
                bytes,
                packets,
            } => {
                bump(&self.counters.lifesize_reports);
                let Some(key) = inner.by_spi.get(&spi).copied() else {
                    return Outputs::default();
                };
                let Some(child) = inner.children.get_mut(&key) else {
                    return Outputs::default();
                };
                child.bytes += bytes;
                let (dvipa, id) = (child.dvipa, child.id);
                if let Some(ike) = inner.endpoints.get_mut(&dvipa) {
                    let _ = ike.child_bytes_processed(now, id, bytes, packets, &mut inner.rng);
                }
            }
            Job::NewConn { dvipa, peer } => {
                bump(&self.counters.newconn);
                self.initiate_to(inner, now, dvipa, peer, "NEWCONN");
            }
            Job::Renegotiate { dvipa, peer } => {
                bump(&self.counters.renegotiated);
                self.initiate_to(inner, now, dvipa, peer, "takeover");
            }
            Job::RekeyAll => self.rekey_all(inner, now),
            Job::Tick => {
                for ike in inner.endpoints.values_mut() {
                    if ike.next_timeout().is_some_and(|t| t <= now) {
                        ike.handle_timeout(now, &mut inner.rng);
                    }
                }
                let wall = Instant::now();
                inner
                    .pending
                    .retain(|_, t| wall.duration_since(*t) < NEWCONN_HOLDOFF);
            }
        }
        Self::drain(inner)
    }

    /// Carries out the events (installs before deletes, in order), then
    /// sends the datagrams: a rekey's new pair is in every shadow cache
    /// before the peer hears the answer that lets it use it.
    async fn carry_out(&self, node: &ImageNode, out: Outputs) {
        for (dvipa, event) in out.events {
            tracing::info!("{}: {dvipa}: {event}", node.name);
            match event {
                IkeEvent::IkeSaEstablished { .. } => bump(&self.counters.ike_sas_established),
                IkeEvent::ChildSaEstablished(info) => {
                    let peer = info.outbound.dst;
                    let stale = self.older_ike_sas_children(dvipa, &info);
                    self.install(node, dvipa, info).await;
                    self.drop_superseded(node, dvipa, peer).await;
                    self.drop_stale(node, dvipa, stale).await;
                }
                IkeEvent::ChildSaRekeyed { new, old_spis, .. } => {
                    bump(&self.counters.child_sas_rekeyed);
                    self.install(node, dvipa, new).await;
                    if let Some(late) = self.rekey_was_late(old_spis.inbound.0) {
                        if late {
                            bump(&self.counters.rekeys_late);
                        }
                        node.rekey_timing(dvipa, old_spis.inbound, late);
                    }
                }
                IkeEvent::ChildSaDeleted { spis, .. } => {
                    bump(&self.counters.child_sas_deleted);
                    {
                        let mut inner = self.lock();
                        inner.children.remove(&spis.inbound.0);
                        inner.by_spi.retain(|_, v| *v != spis.inbound.0);
                    }
                    node.delete_pair(dvipa, spis.inbound).await;
                }
                IkeEvent::AuthFailed { .. } => bump(&self.counters.auth_failed),
                IkeEvent::ChildSaFailed { .. } => bump(&self.counters.child_failed),
                IkeEvent::IkeSaRekeyed { .. } | IkeEvent::IkeSaDeleted { .. } => {}
            }
        }
        for (dvipa, t) in out.transmits {
            let packet = udp_packet(SocketAddrV4::new(dvipa, t.local_port), t.remote, &t.payload);
            node.send_ip(&packet).await;
            bump(&self.counters.sent);
        }
    }

    /// Whether the rekey of the pair with inbound SPI `spi` came late: the
    /// bytes the targets reported under it reached its hard byte lifetime
    /// before its successor was in place. `None` for a pair without a byte
    /// lifetime (its report threshold does not matter).
    fn rekey_was_late(&self, spi: u32) -> Option<bool> {
        let inner = self.lock();
        let child = inner.children.get(&spi)?;
        let hard = child.info.outbound.lifetimes.hard.bytes?;
        Some(child.bytes >= hard)
    }

    /// After a takeover: pairs adopted from the CF for a peer that has
    /// now negotiated a new child SA are removed everywhere, so targets
    /// stop sealing with an SA the peer no longer has.
    async fn drop_superseded(&self, node: &ImageNode, dvipa: Ipv4Addr, peer: std::net::IpAddr) {
        let Some(t) = node.takeover.get() else {
            return;
        };
        for spi in t.superseded(dvipa, peer) {
            tracing::info!("{dvipa}: adopted pair in={spi} superseded by a new child SA");
            node.delete_pair(dvipa, spi).await;
        }
    }

    /// The installed pairs with `info`'s peer that another IKE SA made: a
    /// peer that negotiates a new IKE SA from scratch has lost the old
    /// one (it restarted: `plexnet kill` and `restart` of a client; RFC
    /// 7296 §2.4, INITIAL_CONTACT; strongSwan's `uniqueids`), and the
    /// targets must not seal for it under SAs it no longer knows.
    fn older_ike_sas_children(&self, dvipa: Ipv4Addr, info: &ChildSaInfo) -> Vec<u32> {
        let inner = self.lock();
        inner
            .children
            .iter()
            .filter(|(_, c)| c.dvipa == dvipa && c.info.outbound.dst == info.outbound.dst)
            .filter(|(_, c)| c.info.ike_sa != info.ike_sa)
            .map(|(spi, _)| *spi)
            .collect()
    }

    /// Deletes the stale pairs [`Self::older_ike_sas_children`] found,
    /// once the new one is installed.
    async fn drop_stale(&self, node: &ImageNode, dvipa: Ipv4Addr, stale: Vec<u32>) {
        for spi in stale {
            {
                let mut inner = self.lock();
                inner.children.remove(&spi);
                inner.by_spi.retain(|_, v| *v != spi);
            }
            bump(&self.counters.stale_children_dropped);
            tracing::info!(
                "{dvipa}: pair in={spi:#010x} of an older IKE SA with the same peer dropped"
            );
            node.delete_pair(dvipa, crate::ipsec::sa::Spi(spi)).await;
        }
    }

    async fn install(&self, node: &ImageNode, dvipa: Ipv4Addr, info: ChildSaInfo) {
        let install = child_install(dvipa, &info);
        match node.install_pair(install).await {
            Ok(()) => {
                bump(&self.counters.child_sas_installed);
                let mut inner = self.lock();
                let key = info.inbound.spi.0;
                inner.by_spi.insert(key, key);
                inner.by_spi.insert(info.outbound.spi.0, key);
                if let std::net::IpAddr::V4(peer) = info.outbound.dst {
                    inner.pending.remove(&(dvipa, peer));
                }
                inner.children.insert(
                    key,
                    Child {
                        dvipa,
                        id: info.child,
                        info,
                        bytes: 0,
                    },
                );
            }
            Err(e) => {
                bump(&self.counters.install_errors);
                tracing::error!("installing {}: {e:#}", info.child);
            }
        }
    }

    async fn worker(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = rx.recv().await {
            let out = self.step(job);
            let Some(node) = self.node.upgrade() else {
                return;
            };
            self.carry_out(&node, out).await;
            self.wake.notify_one();
        }
    }

    /// Drives [`Ike::handle_timeout`] at [`Ike::next_timeout`].
    async fn timer(self: Arc<Self>) {
        loop {
            let now = self.now();
            let next = self
                .lock()
                .endpoints
                .values()
                .filter_map(Ike::next_timeout)
                .min();
            let sleep = next.map_or(MAX_SLEEP, |t| {
                t.saturating_duration_since(now).min(MAX_SLEEP)
            });
            if sleep.is_zero() {
                if self.jobs.send(Job::Tick).is_err() {
                    return;
                }
                // Let the worker run the tick before looking again.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Every IKE SA's keys as a tshark `ikev2_decryption_table` UAT line.
    pub fn wireshark_keys(&self) -> Vec<String> {
        let inner = self.lock();
        inner
            .endpoints
            .values()
            .flat_map(|ike| {
                ike.status()
                    .into_iter()
                    .filter_map(|s| ike.wireshark_ike_keys(s.id))
            })
            .collect()
    }

    /// `status["ike"]`: every IKE SA with its children, the IKE SA keys in
    /// Wireshark's `ikev2_decryption_table` format, counters.
    pub fn status(&self) -> serde_json::Value {
        let inner = self.lock();
        let mut sas = Vec::new();
        let mut keys = Vec::new();
        for (dvipa, ike) in &inner.endpoints {
            for s in ike.status() {
                let children: Vec<serde_json::Value> = inner
                    .children
                    .values()
                    .filter(|c| c.dvipa == *dvipa && s.children.contains(&c.id))
                    .map(|c| {
                        serde_json::json!({
                            "id": c.id.to_string(),
                            "inbound_spi": c.info.inbound.spi.to_string(),
                            "outbound_spi": c.info.outbound.spi.to_string(),
                            "summary": c.info.to_string(),
                            "bytes_reported": c.bytes,
                        })
                    })
                    .collect();
                if let Some(line) = ike.wireshark_ike_keys(s.id) {
                    keys.push(line);
                }
                sas.push(serde_json::json!({
                    "dvipa": dvipa.to_string(),
                    "id": s.id.to_string(),
                    "state": s.state,
                    "remote": s.remote.to_string(),
                    "local_port": s.local_port,
                    "spi_i": format!("{:016x}", s.spi_i),
                    "spi_r": format!("{:016x}", s.spi_r),
                    "initiator": s.initiator,
                    "nat": s.nat,
                    "children": children,
                }));
            }
        }
        serde_json::json!({
            "dvipas": inner.endpoints.keys().map(|d| d.to_string()).collect::<Vec<_>>(),
            "proposals": self.settings.proposals,
            "esp_proposals": self.settings.esp_proposals,
            "sas": sas,
            "child_sas": inner.children.len(),
            "wireshark_keys": keys,
            "counters": &self.counters,
        })
    }
}

impl IkeHook for IkeRuntime {
    fn datagram(&self, packet: Vec<u8>) {
        let _ = self.jobs.send(Job::Datagram(packet));
    }

    fn lifesize(&self, _from: &str, report: &XcfMessage) {
        if let XcfMessage::Lifesize {
            spi,
            bytes,
            packets,
            ..
        } = report
        {
            let _ = self.jobs.send(Job::Lifesize {
                spi: spi.0,
                bytes: *bytes,
                packets: *packets,
            });
        }
    }

    fn cf_lost(&self) {
        let _ = self.jobs.send(Job::RekeyAll);
    }

    fn newconn(&self, from: &str, request: &XcfMessage) {
        if let XcfMessage::NewConn { dvipa, peer, .. } = request {
            tracing::debug!("NEWCONN from {from}: {dvipa} -> {peer}");
            let _ = self.jobs.send(Job::NewConn {
                dvipa: *dvipa,
                peer: *peer,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_packet_round_trips_with_valid_checksums() {
        let src = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 100), 4500);
        let dst = SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 2), 4500);
        let p = udp_packet(src, dst, &[0, 0, 0, 0, 1, 2, 3]);
        let (s, d, payload) = parse_udp(&p).expect("parses");
        assert_eq!((s, d), (src, dst));
        assert_eq!(payload, [0, 0, 0, 0, 1, 2, 3]);
        let ip = Ipv4Packet::new_checked(&p[..]).expect("ip");
        assert!(ip.verify_checksum());
        let u = UdpPacket::new_checked(&p[20..]).expect("udp");
        assert!(u.verify_checksum(&PseudoHeader::V4 {
            src: *src.ip(),
            dst: *dst.ip()
        }));
        // Truncated or not UDP: refused.
        assert!(parse_udp(&p[..20]).is_none());
        assert!(parse_udp(&p[..25]).is_none());
        let mut icmp = p.clone();
        icmp[9] = 1;
        assert!(parse_udp(&icmp).is_none());
    }
}

#[cfg(test)]
mod newconn_tests {
    use super::*;
    use crate::runtime::image::newconn_policy;
    use crate::wire::{TcpFlags, TcpPacket};

    fn syn(src: Ipv4Addr, dst: Ipv4Addr, flags: TcpFlags) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        ipv4::Repr::new(src, dst, IpProtocol::Tcp, 20)
            .emit(&mut Ipv4Packet::new_unchecked(&mut p[..20]));
        let mut t = TcpPacket::new_unchecked(&mut p[20..]);
        t.set_src_port(40000);
        t.set_dst_port(8080);
        t.set_header_len_and_flags(20, flags);
        p
    }

    #[test]
    fn only_initial_syns_from_a_dvipa_to_its_ike_peers() {
        let topo = crate::topology::load(std::path::Path::new("topologies/figure4.toml"))
            .expect("figure4");
        let dva1 = Ipv4Addr::new(198, 18, 0, 100);
        let dvb1 = Ipv4Addr::new(198, 18, 0, 101);
        let client1 = Ipv4Addr::new(198, 18, 1, 2);
        let lists = BTreeMap::new();
        let (owner, msg) = newconn_policy(&topo)
            .request(&lists, &syn(dva1, client1, TcpFlags::SYN))
            .expect("NEWCONN");
        assert_eq!(owner, "MVS1");
        assert_eq!(
            msg,
            XcfMessage::NewConn {
                dvipa: dva1,
                local_port: 40000,
                peer: client1,
                peer_port: 8080,
                protocol: 6
            }
        );
        // A SYN-ACK, another DVIPA, a non-peer: sent as they are.
        let synack = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
        assert!(newconn_policy(&topo)
            .request(&lists, &syn(dva1, client1, synack))
            .is_none());
        assert!(newconn_policy(&topo)
            .request(&lists, &syn(dvb1, client1, TcpFlags::SYN))
            .is_none());
        let other = Ipv4Addr::new(198, 18, 1, 9);
        assert!(newconn_policy(&topo)
            .request(&lists, &syn(dva1, other, TcpFlags::SYN))
            .is_none());
        // After a takeover the VIPA lists name the new owner.
        let lists = BTreeMap::from([(
            "MVS5".to_owned(),
            vec![crate::sysplex::xcf::VipaEntry {
                dvipa: dva1,
                ports: vec![80],
            }],
        )]);
        let (owner, _) = newconn_policy(&topo)
            .request(&lists, &syn(dva1, client1, TcpFlags::SYN))
            .expect("NEWCONN");
        assert_eq!(owner, "MVS5");
    }
}
