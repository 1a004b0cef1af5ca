//! The IKE initiator of `plexnet client` (issue 5): for a client with
//! `ike = ["DVA1", ...]`, one sans-IO [`Ike`] endpoint on the client's
//! address initiates an IKE SA with each DVIPA's routing stack (RFC 7296
//! §1.2, PSK authentication, identities equal to the addresses), keeps it
//! up (initiates again when it goes away), and puts the negotiated child
//! SAs into the client's data plane ([`Sealer`](super::client::Sealer),
//! [`Opener`](super::client::Opener)). NAT-T is forced, as strongSwan's
//! kernel-libipsec does: IKE moves to UDP 4500 and ESP is UDP-encapsulated
//! (RFC 3948), so one socket on 4500 carries both.
//!
//! [`ike_setups`] is the same initiator without a data plane, for the
//! benchmark of IKE SA + child SA setups at the routing stack.

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

use super::client::{open_into, rebuild_udp_headers, Shared, MAX_PACKET, UDP_PREFIX};
use super::sockets::FWMARK;
use super::tunio::TxBurst;
use crate::ike::natt::{classify_4500, Udp4500, IKE_PORT, NATT_PORT};
use crate::ike::{Identity, Ike, IkeConfig, IkeEvent, IkeSaId, PeerConfig};
use crate::time;
use crate::topology::IkeSettings;

/// A client's IKE: its address, the DVIPAs, the topology's IKE settings
/// (from the owners' Policy Agent policy).
#[derive(Debug, Clone)]
pub struct ClientIke {
    pub local: Ipv4Addr,
    pub dvipas: Vec<Ipv4Addr>,
    pub settings: IkeSettings,
}

/// A DVIPA without an IKE SA is tried again after this long.
const RETRY: Duration = Duration::from_secs(3);
/// The loop wakes at least this often.
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// The initiator's configuration: the topology's IKE settings, forced NAT-T.
pub fn initiator_config(ike: &ClientIke) -> Result<IkeConfig> {
    let mut c = super::ike::ike_config(&ike.settings, ike.local, ike.dvipas.iter().copied())?;
    c.force_encap = true;
    Ok(c)
}

/// A UDP socket on `addr` whose packets carry the mark that routes them
/// past the TUN (`fwmark 0x42 lookup main`).
fn marked_udp(addr: SocketAddrV4) -> Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}"))?;
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Mark, &FWMARK)
        .context("SO_MARK on the IKE socket")?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s).context("registering the IKE socket")
}

/// The IKE task of `plexnet client`: runs until an I/O error.
pub(super) async fn ike_loop(
    shared: Arc<Shared>,
    tun: Arc<tun_rs::AsyncDevice>,
    ike: ClientIke,
) -> Result<()> {
    let s500 = marked_udp(SocketAddrV4::new(ike.local, IKE_PORT))?;
    let s4500 = marked_udp(SocketAddrV4::new(ike.local, NATT_PORT))?;
    let mut rng = StdRng::from_entropy();
    let config = initiator_config(&ike)?;
    let peers: HashMap<Ipv4Addr, PeerConfig> = config
        .peers
        .iter()
        .filter_map(|p| match p.id {
            Identity::Ipv4(a) => Some((a, p.clone())),
            _ => None,
        })
        .collect();
    let mut endpoint = Ike::new(config, ike.local, &mut rng);
    let epoch = Instant::now();
    // DVIPA → (IKE SA, when initiated); children by inbound SPI.
    let mut sas: HashMap<Ipv4Addr, (IkeSaId, Instant)> = HashMap::new();
    let mut children: HashMap<u32, (Ipv4Addr, crate::ike::ChildSaInfo)> = HashMap::new();
    let mut established = 0u64;
    let mut failures = 0u64;
    let mut buf500 = vec![0u8; MAX_PACKET];
    let mut buf4500 = vec![0u8; MAX_PACKET];
    let mut out = Vec::with_capacity(MAX_PACKET);
    let mut tx = TxBurst::default();
    loop {
        let now = time::Instant::from_elapsed(epoch.elapsed());
        // Keep an IKE SA up with every DVIPA.
        let alive: Vec<IkeSaId> = endpoint.status().iter().map(|s| s.id).collect();
        for d in &ike.dvipas {
            let up = sas.get(d).is_some_and(|(id, _)| alive.contains(id));
            let recent = sas.get(d).is_some_and(|(_, at)| at.elapsed() < RETRY);
            if !up && !recent {
                if let Some(peer) = peers.get(d) {
                    let id = endpoint.initiate(
                        now,
                        SocketAddrV4::new(*d, IKE_PORT),
                        peer.clone(),
                        &mut rng,
                    );
                    tracing::info!("IKE: initiating {id} to {d}");
                    sas.insert(*d, (id, Instant::now()));
                }
            }
        }
        let sleep = endpoint.next_timeout().map_or(MAX_SLEEP, |t| {
            t.saturating_duration_since(now).min(MAX_SLEEP)
        });
        tokio::select! {
            r = s500.recv_from(&mut buf500) => {
                if let (n, SocketAddr::V4(from)) = r.context("receiving on UDP 500")? {
                    let _ = endpoint.handle_datagram(time::Instant::from_elapsed(epoch.elapsed()), from, IKE_PORT, &buf500[..n], &mut rng);
                }
            }
            r = s4500.recv_from(&mut buf4500[UDP_PREFIX..]) => {
                if let (n, SocketAddr::V4(from)) = r.context("receiving on UDP 4500")? {
                    let payload = &buf4500[UDP_PREFIX..UDP_PREFIX + n];
                    if matches!(classify_4500(payload), Udp4500::Esp(_)) {
                        let len = rebuild_udp_headers(&mut buf4500, n, from, ike.local);
                        open_into(&shared, &buf4500[..len], &mut out, &mut tx);
                        tx.flush(&tun).await.context("writing the TUN")?;
                    } else {
                        let _ = endpoint.handle_datagram(time::Instant::from_elapsed(epoch.elapsed()), from, NATT_PORT, payload, &mut rng);
                    }
                }
            }
            _ = tokio::time::sleep(sleep) => {}
        }
        let now = time::Instant::from_elapsed(epoch.elapsed());
        if endpoint.next_timeout().is_some_and(|t| t <= now) {
            endpoint.handle_timeout(now, &mut rng);
        }
        let mut changed = false;
        while let Some(e) = endpoint.poll_event() {
            changed = true;
            tracing::info!("IKE: {e}");
            let t = shared.now();
            match e {
                IkeEvent::ChildSaEstablished(info) | IkeEvent::ChildSaRekeyed { new: info, .. } => {
                    let std::net::IpAddr::V4(d) = info.outbound.dst else {
                        continue;
                    };
                    let added = shared
                        .opener
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .add(&info.inbound, t)
                        .and_then(|()| {
                            shared
                                .sealer
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .add_esp(d, &info.outbound, t)
                        });
                    match added {
                        Ok(()) => {
                            established += 1;
                            children.insert(info.inbound.spi.0, (d, info));
                        }
                        Err(e) => tracing::error!("IKE child SA refused by the data plane: {e}"),
                    }
                }
                IkeEvent::ChildSaDeleted { spis, .. } => {
                    if let Some((_, info)) = children.remove(&spis.inbound.0) {
                        shared
                            .opener
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&info.inbound);
                    }
                    shared
                        .sealer
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove_esp(spis.outbound);
                }
                IkeEvent::AuthFailed { .. } | IkeEvent::ChildSaFailed { .. } => failures += 1,
                IkeEvent::IkeSaDeleted { .. }
                | IkeEvent::IkeSaEstablished { .. }
                | IkeEvent::IkeSaRekeyed { .. } => {}
            }
        }
        send_transmits(&mut endpoint, &s500, &s4500).await;
        if changed {
            let status = endpoint.status();
            let summary: Vec<String> = ike
                .dvipas
                .iter()
                .map(|d| {
                    let state = sas
                        .get(d)
                        .and_then(|(id, _)| status.iter().find(|s| s.id == *id))
                        .map_or("none", |s| s.state);
                    let child = children
                        .values()
                        .filter(|(cd, _)| cd == d)
                        .map(|(_, c)| format!(" child in {} out {}", c.inbound.spi, c.outbound.spi))
                        .last()
                        .unwrap_or_default();
                    format!("IKE to {d} {state}{child}")
                })
                .collect();
            *shared.ike_status.lock().unwrap_or_else(|p| p.into_inner()) = serde_json::json!({
                "summary": summary.join(", "),
                "sas": status.iter().map(|s| serde_json::json!({
                    "id": s.id.to_string(),
                    "state": s.state,
                    "remote": s.remote.to_string(),
                    "spi_i": format!("{:016x}", s.spi_i),
                    "spi_r": format!("{:016x}", s.spi_r),
                    "children": s.children.len(),
                })).collect::<Vec<_>>(),
                "child_sas": children.values().map(|(_, c)| c.to_string()).collect::<Vec<_>>(),
                "children_established": established,
                "failures": failures,
            });
        }
    }
}

/// Sends every datagram the endpoint has queued, each from the socket of
/// its local port (500, or 4500 after NAT-T).
async fn send_transmits(endpoint: &mut Ike, s500: &UdpSocket, s4500: &UdpSocket) {
    while let Some(t) = endpoint.poll_transmit() {
        let sock = if t.local_port == IKE_PORT {
            s500
        } else {
            s4500
        };
        if let Err(e) = sock.send_to(&t.payload, t.remote).await {
            tracing::debug!("IKE to {}: {e}", t.remote);
        }
    }
}

/// What [`ike_setups`] measured.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SetupReport {
    /// IKE SAs with their first child SA established.
    pub established: u64,
    pub failed: u64,
    pub seconds: f64,
}

/// Sets up `n` IKE SAs, each with its child SA (IKE_SA_INIT + IKE_AUTH),
/// from `ike.local` to `ike.dvipas[0]`, `parallel` at a time, deleting
/// each once established; ports are ephemeral (the responder sees NAT-T).
/// Runs in the current namespace.
pub async fn ike_setups(ike: &ClientIke, n: u64, parallel: u64) -> Result<SetupReport> {
    let s500 = marked_udp(SocketAddrV4::new(ike.local, 0))?;
    let s4500 = marked_udp(SocketAddrV4::new(ike.local, 0))?;
    let mut rng = StdRng::from_entropy();
    let config = initiator_config(ike)?;
    let dvipa = *ike.dvipas.first().context("no DVIPA to set up with")?;
    let peer = config.peers.first().cloned().context("no peer")?;
    let mut endpoint = Ike::new(config, ike.local, &mut rng);
    let epoch = Instant::now();
    let (mut started, mut established, mut failed) = (0u64, 0u64, 0u64);
    let mut in_flight = 0u64;
    let mut buf500 = vec![0u8; 65536];
    let mut buf4500 = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(120);
    while established + failed < n && Instant::now() < deadline {
        while in_flight < parallel && started < n {
            endpoint.initiate(
                time::Instant::from_elapsed(epoch.elapsed()),
                SocketAddrV4::new(dvipa, IKE_PORT),
                peer.clone(),
                &mut rng,
            );
            started += 1;
            in_flight += 1;
        }
        send_transmits(&mut endpoint, &s500, &s4500).await;
        let sleep = endpoint.next_timeout().map_or(MAX_SLEEP, |t| {
            t.saturating_duration_since(time::Instant::from_elapsed(epoch.elapsed()))
                .min(MAX_SLEEP)
        });
        tokio::select! {
            r = s500.recv_from(&mut buf500) => {
                if let (k, SocketAddr::V4(from)) = r? {
                    let _ = endpoint.handle_datagram(time::Instant::from_elapsed(epoch.elapsed()), from, IKE_PORT, &buf500[..k], &mut rng);
                }
            }
            r = s4500.recv_from(&mut buf4500) => {
                if let (k, SocketAddr::V4(from)) = r? {
                    let _ = endpoint.handle_datagram(time::Instant::from_elapsed(epoch.elapsed()), from, NATT_PORT, &buf4500[..k], &mut rng);
                }
            }
            _ = tokio::time::sleep(sleep) => {}
        }
        let now = time::Instant::from_elapsed(epoch.elapsed());
        if endpoint.next_timeout().is_some_and(|t| t <= now) {
            endpoint.handle_timeout(now, &mut rng);
        }
        while let Some(e) = endpoint.poll_event() {
            match e {
                IkeEvent::ChildSaEstablished(info) => {
                    established += 1;
                    in_flight = in_flight.saturating_sub(1);
                    let _ = endpoint.delete_ike(now, info.ike_sa, &mut rng);
                }
                IkeEvent::IkeSaDeleted { reason, .. }
                    if reason != crate::ike::DeleteReason::Local =>
                {
                    failed += 1;
                    in_flight = in_flight.saturating_sub(1);
                }
                _ => {}
            }
        }
    }
    // Let the last deletes go out.
    send_transmits(&mut endpoint, &s500, &s4500).await;
    Ok(SetupReport {
        established,
        failed,
        seconds: epoch.elapsed().as_secs_f64(),
    })
}
