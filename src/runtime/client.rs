//! `plexnet client`: the project's own user-space IPsec client for a client
//! namespace, and the same data plane as a reference peer (`--as-peer`, the
//! DVIPA end of a client's manual SAs).
//!
//! # Data path
//! The kernel routes the traffic to protect (each peer's /32) into the TUN
//! `plx0`. The client reads plaintext IPv4 packets from it, finds the tunnel
//! by traffic selector, seals them with its own sequence counters (ESP,
//! RFC 4303; AH, RFC 4302; AH outside ESP, RFC 4301 §4.3; in tunnel or
//! transport mode; ESP in UDP 4500 when configured, RFC 3948) and sends the
//! result as a complete IPv4 packet on a raw `IPPROTO_RAW` socket. It
//! receives ESP and AH on raw sockets for IP protocols 50 and 51 and ESP in
//! UDP on port 4500, opens them (ICV first, then the replay window: see
//! [`crate::ipsec::esp::open_esp`]) and writes the inner packet into the TUN.
//!
//! # Routing: why a mark
//! In tunnel mode the inner and the outer destination are the same address
//! (host-to-host: client to DVIPA). The route that sends the inner packets
//! into the TUN must not catch the client's own outer packets. So the /32
//! into the TUN lives in its own table [`TUN_TABLE`], consulted by every
//! unmarked packet (rule [`RULE_PREF_TUN`]); the client's send socket
//! carries `SO_MARK` [`FWMARK`], and marked packets look up `main` first
//! (rule [`RULE_PREF_MARKED`]), which routes them out of the LAN link. This
//! is the strongSwan host-to-host arrangement of docs/ARCHITECTURE.md with the
//! same mark (0x42).
//!
//! # What is sans-IO here
//! [`Sealer`] and [`Opener`] hold the SAs and do all per-packet decisions
//! without I/O (unit-tested below); [`serve`] is the shell around them.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use tokio::net::UdpSocket;

use super::control::{self, Request};
use super::sigterm;
use crate::ipsec::{
    seal_bundle_counted, DropCounters, DropReason, Expiry, InboundSa, InboundSad, Mode, OpenError,
    Opened, OutboundSa, Protocol, Sa, SaConfig, SaCounters, SaError, SealError, TrafficSelector,
};
use crate::lab::netns;
use crate::lab::plan::TUN_NAME;
use crate::time;
use crate::topology::manual::NAT_T_PORT;
use crate::topology::{ClientIpsec, ManualProtocol, ManualSa, SaBundle, SaSide, Topology};
use crate::wire::flow::{FiveTuple, SelectorFields};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::{udp, IpProtocol, UdpPacket, UdpRepr};

/// The mark on the client's outer packets (`SO_MARK`), as strongSwan's
/// `socket-default.fwmark = 0x42` in docs/ARCHITECTURE.md.
pub use super::sockets::FWMARK;
use super::sockets::{self, SOCKET_BUFFER};
use super::tunio::{self, TxBurst};
use super::udp_gso;
use crate::lab::netlink::{NsLinks, Rule, TableRoute, RT_TABLE_MAIN};
/// The routing table holding the routes into the TUN.
pub const TUN_TABLE: u32 = 0x42;
/// `ip rule` preference of `fwmark 0x42 lookup main`.
pub const RULE_PREF_MARKED: u32 = 100;
/// `ip rule` preference of `lookup 0x42` (every other packet).
pub const RULE_PREF_TUN: u32 = 101;
/// The TUN's MTU: 1500 minus room for the largest overhead plexnet seals
/// (outer IPv4 20, UDP 8, AH with a 32-byte ICV 44, ESP header, a 16-byte
/// IV, up to 17 bytes of padding and trailer, a 16-byte ICV), so sealed
/// packets never exceed the LAN's 1500 bytes.
pub const TUN_MTU: u16 = 1400;
pub use super::sockets::TUN_TX_QUEUE_LEN;
/// The largest IPv4 packet, and so every buffer.
pub(super) const MAX_PACKET: usize = 65535;
/// Packets read from a socket per wakeup, written to the TUN in one
/// coalesced burst (one coalescing call's worth).
const RX_BURST: usize = tunio::PACKETS_PER_WRITE;
/// Room in front of a UDP payload for the IPv4 and UDP headers we rebuild.
pub(super) const UDP_PREFIX: usize = ipv4::HEADER_LEN + udp::HEADER_LEN;

/// Which end of the manual SAs this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The client: seals with the SAs to the DVIPA.
    Client,
    /// The DVIPA end (`--as-peer`): a reference peer for tests and users.
    Peer,
}

/// One tunnel from this end's view.
#[derive(Debug, Clone)]
pub struct Tunnel {
    /// This end's address.
    pub local: Ipv4Addr,
    /// The other end, routed into the TUN.
    pub peer: Ipv4Addr,
    pub protocol: ManualProtocol,
    pub mode: Mode,
    pub udp_encap: bool,
    /// SAs this end seals with.
    pub outbound: SaBundle,
    /// SAs this end opens with.
    pub inbound: SaBundle,
}

impl Tunnel {
    fn from_side(m: &ManualSa, side: SaSide<'_>) -> Tunnel {
        Tunnel {
            local: side.local,
            peer: side.peer,
            protocol: m.protocol,
            mode: m.mode,
            udp_encap: m.udp_encap,
            outbound: side.outbound.clone(),
            inbound: side.inbound.clone(),
        }
    }
}

/// What a `plexnet client` process runs: its tunnels.
#[derive(Debug, Clone)]
pub struct ClientSetup {
    /// The client's name in the topology.
    pub client: String,
    pub role: Role,
    pub tunnels: Vec<Tunnel>,
    /// IKE towards the client's `ike = [...]` DVIPAs (client role only).
    pub ike: Option<super::client_ike::ClientIke>,
}

/// Why a topology gives no client setup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("topology {topology} has no client {client}")]
    UnknownClient { topology: String, client: String },
    #[error("client {client} has ipsec = \"{ipsec}\"; plexnet client runs clients with ipsec = \"plexnet\"")]
    NotPlexnet { client: String, ipsec: &'static str },
    #[error("client {client} has no [[manual_sa]]: there is nothing to be the peer of")]
    NothingToPeer { client: String },
}

impl ClientSetup {
    /// The client `client` of `topo`: its manual SAs from its own view.
    pub fn client(topo: &Topology, client: &str) -> Result<ClientSetup, SetupError> {
        let c = topo
            .client(client)
            .ok_or_else(|| SetupError::UnknownClient {
                topology: topo.name.clone(),
                client: client.to_owned(),
            })?;
        if c.ipsec != ClientIpsec::Plexnet {
            return Err(SetupError::NotPlexnet {
                client: c.name.clone(),
                ipsec: c.ipsec.as_str(),
            });
        }
        let ike = match (&topo.ike, c.ike.is_empty()) {
            (Some(settings), false) => Some(super::client_ike::ClientIke {
                local: c.addr,
                dvipas: c.ike.clone(),
                settings: settings.clone(),
            }),
            _ => None,
        };
        Ok(ClientSetup {
            client: c.name.clone(),
            role: Role::Client,
            tunnels: topo
                .manual_sas_of_client(&c.name)
                .map(|m| Tunnel::from_side(m, m.client_side()))
                .collect(),
            ike,
        })
    }

    /// The DVIPA end of `client`'s manual SAs (`--as-peer`).
    pub fn peer(topo: &Topology, client: &str) -> Result<ClientSetup, SetupError> {
        let c = topo
            .client(client)
            .ok_or_else(|| SetupError::UnknownClient {
                topology: topo.name.clone(),
                client: client.to_owned(),
            })?;
        let tunnels: Vec<Tunnel> = topo
            .manual_sas_of_client(&c.name)
            .map(|m| Tunnel::from_side(m, m.dvipa_side()))
            .collect();
        if tunnels.is_empty() {
            return Err(SetupError::NothingToPeer {
                client: c.name.clone(),
            });
        }
        Ok(ClientSetup {
            client: c.name.clone(),
            role: Role::Peer,
            tunnels,
            ike: None,
        })
    }
}

// ---------------------------------------------------------------------------
// The sans-IO core: sealing and opening.

/// Why a packet from the TUN was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutboundDrop {
    /// No tunnel's selector matches (never sent in the clear).
    NoSa,
    /// Not IPv4 (IPv6 is off in the lab).
    Unsupported,
    /// Not a valid IPv4 packet.
    Malformed,
    /// A fragment in transport mode (RFC 4303 §3.1.1).
    Fragment,
    /// The sealed packet would exceed 65535 bytes.
    TooLarge,
    /// The 32-bit sequence space is used up: a manual SA cannot be rekeyed
    /// (RFC 4303 §3.3.3).
    SequenceExhausted,
    /// Past the SA's hard lifetime.
    Expired,
    /// The kernel refused the sealed packet (e.g. no route).
    SendFailed,
}

impl OutboundDrop {
    /// Every reason, in display order.
    pub const ALL: [OutboundDrop; 8] = [
        OutboundDrop::NoSa,
        OutboundDrop::Unsupported,
        OutboundDrop::Malformed,
        OutboundDrop::Fragment,
        OutboundDrop::TooLarge,
        OutboundDrop::SequenceExhausted,
        OutboundDrop::Expired,
        OutboundDrop::SendFailed,
    ];

    /// The stable name used in status JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutboundDrop::NoSa => "no-sa",
            OutboundDrop::Unsupported => "unsupported",
            OutboundDrop::Malformed => "malformed",
            OutboundDrop::Fragment => "fragment",
            OutboundDrop::TooLarge => "too-large",
            OutboundDrop::SequenceExhausted => "sequence-exhausted",
            OutboundDrop::Expired => "expired",
            OutboundDrop::SendFailed => "send-failed",
        }
    }

    fn from_seal(e: SealError) -> OutboundDrop {
        match e {
            SealError::Sequence => OutboundDrop::SequenceExhausted,
            SealError::Expired => OutboundDrop::Expired,
            SealError::Fragment => OutboundDrop::Fragment,
            SealError::TooLarge => OutboundDrop::TooLarge,
            SealError::Unsupported => OutboundDrop::Unsupported,
            SealError::Malformed(_) | SealError::WrongProtocol | SealError::IvLength { .. } => {
                OutboundDrop::Malformed
            }
        }
    }
}

/// Counts per [`OutboundDrop`]; serializes as a map from the stable names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboundDrops {
    counts: [u64; OutboundDrop::ALL.len()],
}

impl OutboundDrops {
    pub fn record(&mut self, reason: OutboundDrop) {
        self.counts[reason as usize] += 1;
    }
    pub fn get(&self, reason: OutboundDrop) -> u64 {
        self.counts[reason as usize]
    }
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Serialize for OutboundDrops {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.counts.len()))?;
        for r in OutboundDrop::ALL {
            map.serialize_entry(r.as_str(), &self.get(r))?;
        }
        map.end()
    }
}

/// An outbound SA with this end's own sequence counter.
#[derive(Debug)]
struct OutSa {
    sa: OutboundSa,
    /// The next sequence number to send (RFC 4303 §3.3.3: the first is 1).
    next_seq: u64,
}

/// The outbound SAs of one tunnel.
#[derive(Debug)]
struct OutPath {
    peer: Ipv4Addr,
    selector: TrafficSelector,
    esp: Option<OutSa>,
    ah: Option<OutSa>,
}

/// The outbound half: finds the tunnel for a plaintext packet and seals it.
#[derive(Debug)]
pub struct Sealer {
    paths: Vec<OutPath>,
    rng: StdRng,
    drops: OutboundDrops,
}

fn new_sa(config: &SaConfig) -> Result<Sa, SaError> {
    Sa::new(config.clone())
}

impl Sealer {
    /// The outbound SAs of `tunnels`; `rng` makes the CBC IVs.
    pub fn new(tunnels: &[Tunnel], rng: StdRng) -> Result<Sealer, SaError> {
        let mut paths = Vec::new();
        for t in tunnels {
            let out = |c: &Option<SaConfig>| -> Result<Option<OutSa>, SaError> {
                c.as_ref()
                    .map(|c| {
                        Ok(OutSa {
                            sa: OutboundSa::new(new_sa(c)?, time::Instant::ZERO),
                            next_seq: 1,
                        })
                    })
                    .transpose()
            };
            let esp = out(&t.outbound.esp)?;
            let ah = out(&t.outbound.ah)?;
            let Some(selector) = t.outbound.sas().next().map(|c| c.selector) else {
                continue;
            };
            paths.push(OutPath {
                peer: t.peer,
                selector,
                esp,
                ah,
            });
        }
        Ok(Sealer {
            paths,
            rng,
            drops: OutboundDrops::default(),
        })
    }

    /// Seals `packet` (from the TUN) into `out` and returns where to send
    /// it (the outer destination). A refused packet is counted and never
    /// sent in the clear.
    pub fn seal(
        &mut self,
        now: time::Instant,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Ipv4Addr, OutboundDrop> {
        let result = self.seal_inner(now, packet, out);
        if let Err(reason) = result {
            self.drops.record(reason);
        }
        result
    }

    fn seal_inner(
        &mut self,
        now: time::Instant,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Ipv4Addr, OutboundDrop> {
        if packet.first().map(|b| b >> 4) != Some(4) {
            return Err(OutboundDrop::Unsupported);
        }
        let (src, dst, protocol, ports) = selector_fields(packet)?;
        let path = self
            .paths
            .iter_mut()
            .find(|p| p.selector.matches(src, dst, protocol, ports))
            .ok_or(OutboundDrop::NoSa)?;
        let rng = &mut self.rng;
        let result = match (&mut path.esp, &mut path.ah) {
            (Some(e), None) => e.sa.seal(now, e.next_seq, rng, packet, out),
            (None, Some(a)) => a.sa.seal(now, a.next_seq, rng, packet, out),
            (Some(e), Some(a)) => seal_bundle_counted(
                &mut a.sa, a.next_seq, &mut e.sa, e.next_seq, now, rng, packet, out,
            ),
            (None, None) => return Err(OutboundDrop::NoSa),
        };
        result.map_err(OutboundDrop::from_seal)?;
        for s in [&mut path.esp, &mut path.ah].into_iter().flatten() {
            s.next_seq += 1;
        }
        Ok(path.peer)
    }

    /// Adds an ESP SA negotiated by IKE to `peer`, ahead of older ones
    /// with the same selector (a rekeyed SA is used at once).
    pub fn add_esp(
        &mut self,
        peer: Ipv4Addr,
        config: &SaConfig,
        now: time::Instant,
    ) -> Result<(), SaError> {
        self.paths.insert(
            0,
            OutPath {
                peer,
                selector: config.selector,
                esp: Some(OutSa {
                    sa: OutboundSa::new(new_sa(config)?, now),
                    next_seq: 1,
                }),
                ah: None,
            },
        );
        Ok(())
    }

    /// Removes the path whose ESP SA has `spi` (a deleted child SA).
    pub fn remove_esp(&mut self, spi: crate::ipsec::Spi) {
        self.paths
            .retain(|p| p.esp.as_ref().is_none_or(|e| e.sa.sa().config().spi != spi));
    }

    /// Counts a sealed packet the kernel would not send.
    pub fn record_send_failure(&mut self) {
        self.drops.record(OutboundDrop::SendFailed);
    }

    /// Drops so far.
    pub fn drops(&self) -> &OutboundDrops {
        &self.drops
    }

    /// Per-SA status, in tunnel order.
    fn status(&self, now: time::Instant) -> Vec<SaStatus> {
        self.paths
            .iter()
            .flat_map(|p| p.esp.iter().chain(p.ah.iter()))
            .map(|s| {
                SaStatus::new(
                    s.sa.sa(),
                    s.sa.counters(),
                    s.sa.expiry(now),
                    Some(s.next_seq),
                )
            })
            .collect()
    }
}

/// Addresses, protocol and TCP/UDP ports of a plaintext packet, for
/// selector matching (RFC 4301 §4.4.1.1).
fn selector_fields(packet: &[u8]) -> Result<SelectorFields, OutboundDrop> {
    FiveTuple::parse(packet)
        .map(|t| t.selector_fields())
        .map_err(|_| OutboundDrop::Malformed)
}

/// The inbound half: the SAD of this end's inbound SAs.
#[derive(Debug)]
pub struct Opener {
    sad: InboundSad,
}

impl Opener {
    pub fn new(tunnels: &[Tunnel]) -> Result<Opener, SaError> {
        let mut sad = InboundSad::new();
        for t in tunnels {
            for c in t.inbound.sas() {
                sad.insert(InboundSa::new(new_sa(c)?, time::Instant::ZERO));
            }
        }
        Ok(Opener { sad })
    }

    /// Opens an outer packet (ESP, AH, AH+ESP, or ESP in UDP with its IPv4
    /// and UDP headers) into `out`: ICV, replay window, selectors. Drops
    /// are counted on the SA, or on the SAD before an SA is found.
    pub fn open(
        &mut self,
        now: time::Instant,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Opened, OpenError> {
        self.sad.open(now, packet, out)
    }

    /// Adds an inbound SA negotiated by IKE.
    pub fn add(&mut self, config: &SaConfig, now: time::Instant) -> Result<(), SaError> {
        self.sad.insert(InboundSa::new(new_sa(config)?, now));
        Ok(())
    }

    /// Removes an inbound SA (a deleted child SA).
    pub fn remove(&mut self, config: &SaConfig) {
        self.sad.remove(&crate::ipsec::sad::SaId {
            dst: config.dst,
            protocol: config.protocol,
            spi: config.spi,
        });
    }

    /// Replayed and too-old packets on every inbound SA (RFC 4303 §3.4.3).
    pub fn replay_drops(&self) -> u64 {
        self.sad
            .iter()
            .map(|(_, s)| {
                s.counters().drops.get(DropReason::Replayed)
                    + s.counters().drops.get(DropReason::TooOld)
            })
            .sum()
    }

    /// Drops before an SA was found (unknown SPI, broken headers).
    pub fn drops(&self) -> &DropCounters {
        self.sad.drops()
    }

    fn status(&self, now: time::Instant) -> Vec<SaStatus> {
        let mut v: Vec<SaStatus> = self
            .sad
            .iter()
            .map(|(_, s)| SaStatus::new(s.sa(), s.counters(), s.expiry(now), None))
            .collect();
        v.sort_by_key(|s| s.spi_value);
        v
    }
}

/// One SA in the status reply.
#[derive(Debug, Clone, Serialize)]
struct SaStatus {
    spi: String,
    #[serde(skip)]
    spi_value: u32,
    protocol: Protocol,
    mode: Mode,
    suite: String,
    src: IpAddr,
    dst: IpAddr,
    udp_encap: bool,
    packets: u64,
    bytes: u64,
    drops: DropCounters,
    /// Replayed plus too-old drops (inbound SAs).
    replay_drops: u64,
    expiry: Expiry,
    /// Outbound SAs: the next sequence number this end sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_seq: Option<u64>,
}

impl SaStatus {
    fn new(sa: &Sa, c: &SaCounters, expiry: Expiry, next_seq: Option<u64>) -> SaStatus {
        let cfg = sa.config();
        SaStatus {
            spi: cfg.spi.to_string(),
            spi_value: cfg.spi.0,
            protocol: cfg.protocol,
            mode: cfg.mode,
            suite: sa.suite_name(),
            src: cfg.src,
            dst: cfg.dst,
            udp_encap: cfg.udp_encap.is_some(),
            packets: c.packets,
            bytes: c.bytes,
            drops: c.drops,
            replay_drops: c.drops.get(DropReason::Replayed) + c.drops.get(DropReason::TooOld),
            expiry,
            next_seq,
        }
    }
}

// ---------------------------------------------------------------------------
// The I/O shell.

/// Locks a mutex, taking the data of a poisoned one (a panicked task must
/// not stop status replies).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The state the packet tasks and the status handler share.
#[derive(Debug)]
pub(super) struct Shared {
    setup: ClientSetup,
    pub(super) sealer: Mutex<Sealer>,
    pub(super) opener: Mutex<Opener>,
    epoch: Instant,
    /// The IKE initiator's view, for status (`null` without IKE).
    pub(super) ike_status: Mutex<serde_json::Value>,
    /// TUN reads left out because they would not split into packets.
    tun_reads_refused: AtomicU64,
}

impl Shared {
    /// The client's clock for its SAs: the time since it started.
    pub(super) fn now(&self) -> time::Instant {
        time::Instant::from_elapsed(self.epoch.elapsed())
    }

    /// The status reply: SAs, counters, drops.
    fn status(&self, node: &str) -> serde_json::Value {
        let now = self.now();
        let (outbound, out_drops) = {
            let s = lock(&self.sealer);
            (s.status(now), *s.drops())
        };
        let (inbound, in_drops, replay_drops) = {
            let o = lock(&self.opener);
            (o.status(now), *o.drops(), o.replay_drops())
        };
        // Packets per tunnel, counted once for an AH+ESP bundle: on the
        // first SA of each tunnel's bundle.
        let count = |list: &[SaStatus], first: &dyn Fn(&Tunnel) -> Option<u32>| -> u64 {
            self.setup
                .tunnels
                .iter()
                .filter_map(first)
                .filter_map(|spi| list.iter().find(|s| s.spi_value == spi))
                .map(|s| s.packets)
                .sum()
        };
        let pkts_out = count(&outbound, &|t| t.outbound.sas().next().map(|c| c.spi.0));
        let pkts_in = count(&inbound, &|t| t.inbound.sas().next().map(|c| c.spi.0));
        let tunnels: Vec<String> = self
            .setup
            .tunnels
            .iter()
            .map(|t| {
                format!(
                    "{} {} {}{} to {}",
                    t.protocol.as_str().to_uppercase(),
                    match t.mode {
                        Mode::Tunnel => "tunnel",
                        Mode::Transport => "transport",
                    },
                    t.outbound
                        .sas()
                        .map(|c| new_sa(c).map(|s| s.suite_name()).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("+"),
                    if t.udp_encap { " in UDP" } else { "" },
                    t.peer
                )
            })
            .collect();
        let ike = lock(&self.ike_status).clone();
        let summary = if let Some(line) = ike["summary"].as_str() {
            // IKE child SAs come and go: count every SA's packets.
            let all_out: u64 = outbound.iter().map(|s| s.packets).sum();
            let all_in: u64 = inbound.iter().map(|s| s.packets).sum();
            format!("plexnet client: {line}; {all_out} packets out, {all_in} in, {replay_drops} replay drops")
        } else if tunnels.is_empty() {
            "plexnet client, no SA".to_owned()
        } else {
            format!(
                "plexnet {}: {}; {pkts_out} packets out, {pkts_in} in, {replay_drops} replay drops",
                match self.setup.role {
                    Role::Client => "client",
                    Role::Peer => "peer",
                },
                tunnels.join(", ")
            )
        };
        serde_json::json!({
            "node": node,
            "role": "client",
            "ipsec": "plexnet",
            "as_peer": self.setup.role == Role::Peer,
            "ready": true,
            "pid": std::process::id(),
            "tun": TUN_NAME,
            "fwmark": format!("{FWMARK:#x}"),
            "route_table": TUN_TABLE,
            "peers": self
                .setup
                .tunnels
                .iter()
                .map(|t| t.peer)
                .chain(self.setup.ike.iter().flat_map(|i| i.dvipas.iter().copied()))
                .map(|a| a.to_string())
                .collect::<Vec<_>>(),
            "outbound": outbound,
            "inbound": inbound,
            "outbound_drops": out_drops,
            "inbound_drops": in_drops,
            "replay_drops": replay_drops,
            "tun_reads_refused": self.tun_reads_refused.load(Ordering::Relaxed),
            "ike": ike,
            "summary": summary,
        })
    }
}

/// Options of `plexnet client` run by hand (not by `plexnet up`).
#[derive(Debug, Clone)]
pub struct StandaloneArgs {
    /// The topology file with the client and its `[[manual_sa]]`s.
    pub topology: PathBuf,
    /// The client's name.
    pub client: String,
    /// Be the DVIPA end of the client's SAs instead of the client.
    pub as_peer: bool,
    /// The namespace to enter first (else the current one).
    pub netns: Option<String>,
    /// The control socket (status requests); none when not given.
    pub control: Option<PathBuf>,
}

/// `plexnet client`: enters the namespace on the only thread there is, then
/// runs until SIGTERM or SIGINT.
pub fn run_standalone(args: StandaloneArgs) -> Result<()> {
    if let Some(ns) = &args.netns {
        netns::enter(ns)?;
    }
    let topo = crate::topology::load(&args.topology).map_err(|e| anyhow!("{e}"))?;
    let setup = if args.as_peer {
        ClientSetup::peer(&topo, &args.client)?
    } else {
        ClientSetup::client(&topo, &args.client)?
    };
    super::init_logging();
    // One thread: the data path is a chain of short steps, and waking
    // another worker for each packet cost more than it gave (perf: a fifth
    // of the routing stack's time in task switches).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let node = args.client.clone();
    rt.block_on(serve(setup, &node, args.control.as_deref(), sigterm()))
}

/// Runs the data plane of `setup` in the current namespace until `stop`
/// resolves: TUN, routes and rules, sockets, status on `control`.
pub async fn serve(
    setup: ClientSetup,
    node: &str,
    control: Option<&Path>,
    stop: impl Future<Output = Result<()>>,
) -> Result<()> {
    let tun = Arc::new(tunio::create(TUN_NAME, TUN_MTU, TUN_TX_QUEUE_LEN)?);
    // The outer packets (marked) leave by the main table; everything else
    // looks up the table that routes the peers into the TUN.
    let links = NsLinks::open_here()?;
    links.up(TUN_NAME).await?;
    links
        .add_rule(&Rule {
            pref: RULE_PREF_MARKED,
            table: RT_TABLE_MAIN,
            fwmark: Some(FWMARK),
            ..Rule::default()
        })
        .await?;
    links
        .add_rule(&Rule {
            pref: RULE_PREF_TUN,
            table: TUN_TABLE,
            ..Rule::default()
        })
        .await?;
    let into_tun = |local| TableRoute {
        src: Some(local),
        mtu: None,
    };
    for t in &setup.tunnels {
        links
            .add_table_route(t.peer, 32, TUN_NAME, TUN_TABLE, into_tun(t.local))
            .await?;
    }
    if let Some(ike) = &setup.ike {
        for d in &ike.dvipas {
            links
                .add_table_route(*d, 32, TUN_NAME, TUN_TABLE, into_tun(ike.local))
                .await?;
        }
    }

    let sender = Arc::new(sockets::raw_sender()?);
    let mut receivers: Vec<Receiver> = Vec::new();
    let uses = |p: Protocol| {
        setup.tunnels.iter().any(|t| {
            t.inbound
                .sas()
                .any(|c| c.protocol == p && c.udp_encap.is_none())
        })
    };
    for (proto, used) in [(50, uses(Protocol::Esp)), (51, uses(Protocol::Ah))] {
        if used {
            receivers.push(Receiver::Raw(sockets::raw_protocol(proto, None)?));
        }
    }
    let mut udp_locals: Vec<Ipv4Addr> = setup
        .tunnels
        .iter()
        .filter(|t| t.udp_encap)
        .map(|t| t.local)
        .collect();
    udp_locals.sort();
    udp_locals.dedup();
    // The IKE socket on local:4500 takes ESP in UDP there too.
    udp_locals.retain(|l| setup.ike.as_ref().is_none_or(|i| i.local != *l));
    // Each UDP 4500 socket receives, and sends the sealed bursts of its
    // address with GSO (one socket per port: a second one would take half
    // of what arrives).
    let mut gso_senders = HashMap::new();
    for local in udp_locals {
        let sock = Arc::new(udp_receiver(local)?);
        gso_senders.insert(local, Arc::clone(&sock));
        receivers.push(Receiver::Udp(sock, local));
    }

    let rng = StdRng::from_entropy();
    let shared = Arc::new(Shared {
        sealer: Mutex::new(Sealer::new(&setup.tunnels, rng).context("outbound SAs")?),
        opener: Mutex::new(Opener::new(&setup.tunnels).context("inbound SAs")?),
        setup,
        epoch: Instant::now(),
        ike_status: Mutex::new(serde_json::Value::Null),
        tun_reads_refused: Default::default(),
    });
    if let Some(sock) = control {
        let status = Arc::clone(&shared);
        let name = node.to_owned();
        control::serve(sock, move |req| match req {
            Request::Status => status.status(&name),
            other => control::not_served(&name, &other),
        })
        .await?;
    }
    tracing::info!(
        "{node} ready: TUN {TUN_NAME}, {} tunnel(s) to {:?}",
        shared.setup.tunnels.len(),
        shared
            .setup
            .tunnels
            .iter()
            .map(|t| t.peer)
            .collect::<Vec<_>>()
    );

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(outbound_loop(
        Arc::clone(&shared),
        Arc::clone(&tun),
        Arc::clone(&sender),
        gso_senders,
    ));
    for r in receivers {
        tasks.spawn(inbound_loop(Arc::clone(&shared), Arc::clone(&tun), r));
    }
    if let Some(ike) = shared.setup.ike.clone() {
        tasks.spawn(super::client_ike::ike_loop(
            Arc::clone(&shared),
            Arc::clone(&tun),
            ike,
        ));
    }
    tokio::pin!(stop);
    let result = tokio::select! {
        r = &mut stop => r,
        Some(joined) = tasks.join_next() => match joined {
            Ok(r) => r.and(Err(anyhow!("a packet task ended"))),
            Err(e) => Err(anyhow!("a packet task failed: {e}")),
        },
    };
    tasks.abort_all();
    tracing::info!("{node} stopping");
    result
}

/// TUN to wire: read plaintext, seal, send. Buffers are allocated once.
async fn outbound_loop(
    shared: Arc<Shared>,
    tun: Arc<tun_rs::AsyncDevice>,
    sender: Arc<UdpSocket>,
    gso_senders: HashMap<Ipv4Addr, Arc<UdpSocket>>,
) -> Result<()> {
    let mut rx = tunio::RxBurst::default();
    let mut sealed: Vec<Vec<u8>> = Vec::new();
    loop {
        rx.recv(&tun).await.context("reading the TUN")?;
        shared
            .tun_reads_refused
            .fetch_add(rx.take_refused(), Ordering::Relaxed);
        let mut n = 0;
        for packet in rx.packets() {
            if n == sealed.len() {
                sealed.push(Vec::with_capacity(MAX_PACKET));
            }
            let now = shared.now();
            if lock(&shared.sealer)
                .seal(now, packet, &mut sealed[n])
                .is_ok()
            {
                n += 1;
            }
        }
        send_sealed(&shared, &sender, &gso_senders, &sealed[..n]).await;
    }
}

/// Sends a burst of sealed packets: ESP in UDP from an address with a
/// UDP 4500 socket in GSO runs ([`udp_gso`]), the rest one by one on the
/// raw socket.
async fn send_sealed(
    shared: &Shared,
    raw: &UdpSocket,
    gso_senders: &HashMap<Ipv4Addr, Arc<UdpSocket>>,
    sealed: &[Vec<u8>],
) {
    for run in udp_gso::gso_runs(sealed) {
        let (start, end) = match run {
            udp_gso::Run::Gso {
                start,
                end,
                src,
                dst,
                segment,
            } => {
                let sock = gso_senders
                    .get(src.ip())
                    .filter(|_| src.port() == NAT_T_PORT);
                if let Some(sock) = sock {
                    match udp_gso::send_run(sock, dst, segment, &sealed[start..end]).await {
                        Ok(()) => continue,
                        Err(e) => tracing::debug!("GSO send to {dst}: {e}; sending one by one"),
                    }
                }
                (start, end)
            }
            udp_gso::Run::Single(i) => (i, i + 1),
        };
        for p in &sealed[start..end] {
            let Some(dst) = sockets::ipv4_dst(p) else {
                continue;
            };
            if let Err(e) = send_raw(raw, p, dst).await {
                tracing::debug!("sending {} bytes to {dst}: {e}", p.len());
                lock(&shared.sealer).record_send_failure();
            }
        }
    }
}

/// Sends a complete IPv4 packet on the raw socket (the port is ignored).
async fn send_raw(sender: &UdpSocket, packet: &[u8], dst: Ipv4Addr) -> std::io::Result<()> {
    let addr = SocketAddr::V4(SocketAddrV4::new(dst, 0));
    loop {
        sender.writable().await?;
        match sender.try_send_to(packet, addr) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => return r.map(|_| ()),
        }
    }
}

/// Where sealed packets arrive.
#[derive(Debug)]
enum Receiver {
    /// A raw socket for ESP or AH: whole IPv4 packets.
    Raw(UdpSocket),
    /// A UDP socket on `local`:4500: ESP payloads (RFC 3948), headers rebuilt.
    Udp(Arc<UdpSocket>, Ipv4Addr),
}

/// Wire to TUN: read every packet that is ready, open, write the inner one.
async fn inbound_loop(
    shared: Arc<Shared>,
    tun: Arc<tun_rs::AsyncDevice>,
    receiver: Receiver,
) -> Result<()> {
    let mut buf = vec![0u8; MAX_PACKET];
    let mut out: Vec<u8> = Vec::with_capacity(MAX_PACKET);
    let mut tx = tunio::TxBurst::default();
    loop {
        match &receiver {
            Receiver::Raw(sock) => {
                sock.readable().await.context("waiting on a raw socket")?;
                // Every packet already queued, one wakeup, one coalesced write.
                for _ in 0..RX_BURST {
                    match sock.try_recv(&mut buf) {
                        Ok(n) => open_into(&shared, &buf[..n], &mut out, &mut tx),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!("reading a raw socket: {e}");
                            break;
                        }
                    }
                }
            }
            Receiver::Udp(sock, local) => {
                sock.readable().await.context("waiting on UDP 4500")?;
                for _ in 0..RX_BURST {
                    match sock.try_recv_from(&mut buf[UDP_PREFIX..]) {
                        Ok((n, from)) => {
                            let std::net::SocketAddr::V4(from) = from else {
                                continue;
                            };
                            let len = rebuild_udp_headers(&mut buf, n, from, *local);
                            open_into(&shared, &buf[..len], &mut out, &mut tx);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!("reading UDP 4500: {e}");
                            break;
                        }
                    }
                }
            }
        }
        tx.flush(&tun).await.context("writing the TUN")?;
    }
}

/// Writes the IPv4 and UDP headers in front of the `n` payload bytes at
/// `buf[UDP_PREFIX..]`, as they were on the wire (the UDP checksum as zero,
/// RFC 3948 §2.1), so the packet opens like one from a raw socket. Returns
/// the packet length.
pub(super) fn rebuild_udp_headers(
    buf: &mut [u8],
    n: usize,
    from: SocketAddrV4,
    local: Ipv4Addr,
) -> usize {
    let udp_len = udp::HEADER_LEN + n;
    let ip = ipv4::Repr::new(*from.ip(), local, IpProtocol::Udp, udp_len);
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..ipv4::HEADER_LEN]));
    let u = UdpRepr {
        src_port: from.port(),
        dst_port: NAT_T_PORT,
    };
    u.emit(
        &mut UdpPacket::new_unchecked(&mut buf[ipv4::HEADER_LEN..UDP_PREFIX + n]),
        n,
        None,
    );
    UDP_PREFIX + n
}

/// Opens a sealed packet and queues the inner one for the TUN.
pub(super) fn open_into(shared: &Shared, packet: &[u8], out: &mut Vec<u8>, tx: &mut TxBurst) {
    let now = shared.now();
    if lock(&shared.opener).open(now, packet, out).is_ok() {
        tx.push(out);
    }
}

/// The UDP socket for ESP in UDP on `local`:4500 (RFC 3948).
fn udp_receiver(local: Ipv4Addr) -> Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(SocketAddrV4::new(local, NAT_T_PORT))
        .with_context(|| format!("binding UDP {local}:{NAT_T_PORT}"))?;
    let _ =
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBufForce, &SOCKET_BUFFER);
    let _ =
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::SndBufForce, &SOCKET_BUFFER);
    // What it sends leaves by the main table, not back into the TUN.
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Mark, &FWMARK)
        .context("setting SO_MARK on UDP 4500")?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s).context("registering UDP 4500")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::load_str;
    use crate::wire::ipv4::Repr as Ipv4Repr;

    const TOPO: &str = r#"name = "t"
[hosts]
DVA1 = "198.18.0.100"
[[image]]
name = "MVS1"
vipadynamic = "VIPADYNAMIC VIPADEFINE 255.255.255.0 198.18.0.100 ENDVIPADYNAMIC"
[[client]]
name = "client1"
ipsec = "plexnet"
[[manual_sa]]
client = "client1"
dvipa = "DVA1"
secret = "unit"
"#;

    fn setups(extra: &str) -> (ClientSetup, ClientSetup) {
        let topo = load_str(&format!("{TOPO}{extra}\n"), Path::new("t.toml")).expect("loads");
        (
            ClientSetup::client(&topo, "client1").expect("client"),
            ClientSetup::peer(&topo, "client1").expect("peer"),
        )
    }

    /// A UDP packet `src` to `dst` with `len` payload bytes.
    fn packet(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; ipv4::HEADER_LEN + udp::HEADER_LEN + len];
        Ipv4Repr::new(src, dst, IpProtocol::Udp, udp::HEADER_LEN + len)
            .emit(&mut Ipv4Packet::new_unchecked(&mut p[..ipv4::HEADER_LEN]));
        UdpRepr {
            src_port: 1234,
            dst_port: 80,
        }
        .emit(
            &mut UdpPacket::new_unchecked(&mut p[ipv4::HEADER_LEN..]),
            len,
            None,
        );
        for (i, b) in p[UDP_PREFIX..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    /// Seals at one end and opens at the other, both ways, for a setup.
    fn round_trip(extra: &str, outer_protocol: IpProtocol) {
        let (client, peer) = setups(extra);
        let c_addr = client.tunnels[0].local;
        let dvipa = client.tunnels[0].peer;
        let mut cs = Sealer::new(&client.tunnels, rng()).expect("client SAs");
        let mut co = Opener::new(&client.tunnels).expect("client SAs");
        let mut ps = Sealer::new(&peer.tunnels, rng()).expect("peer SAs");
        let mut po = Opener::new(&peer.tunnels).expect("peer SAs");
        let (mut wire, mut inner) = (Vec::new(), Vec::new());
        for i in 0..5 {
            let p = packet(c_addr, dvipa, 100 + i);
            assert_eq!(
                cs.seal(time::Instant::ZERO, &p, &mut wire),
                Ok(dvipa),
                "{extra}"
            );
            let outer = Ipv4Packet::new_checked(&wire[..]).expect("outer IPv4");
            assert_eq!(outer.next_header(), outer_protocol, "{extra}");
            assert_eq!((outer.src_addr(), outer.dst_addr()), (c_addr, dvipa));
            assert!(
                !wire.windows(8).any(|w| w == &p[UDP_PREFIX..UDP_PREFIX + 8])
                    || outer_protocol == IpProtocol::Ah,
                "plaintext on the wire with {extra}"
            );
            po.open(time::Instant::ZERO, &wire, &mut inner)
                .expect("the peer opens it");
            assert_eq!(inner, p);
            // A replay of the same packet is dropped and counted.
            assert_eq!(
                po.open(time::Instant::ZERO, &wire, &mut inner),
                Err(OpenError::Replayed)
            );
            let back = packet(dvipa, c_addr, 50 + i);
            assert_eq!(ps.seal(time::Instant::ZERO, &back, &mut wire), Ok(c_addr));
            co.open(time::Instant::ZERO, &wire, &mut inner)
                .expect("the client opens it");
            assert_eq!(inner, back);
        }
        assert_eq!(po.replay_drops(), 5);
        assert_eq!(co.replay_drops(), 0);
        assert_eq!(cs.drops().total(), 0);
        let status = cs.status(time::Instant::ZERO);
        assert!(status
            .iter()
            .all(|s| s.packets == 5 && s.next_seq == Some(6)));
    }

    #[test]
    fn esp_tunnel_cbc_sha1() {
        round_trip("", IpProtocol::Esp);
    }

    #[test]
    fn esp_tunnel_gcm() {
        round_trip("encryption = \"aes256-gcm16\"", IpProtocol::Esp);
    }

    #[test]
    fn esp_transport() {
        round_trip(
            "mode = \"transport\"\nintegrity = \"hmac-sha256-128\"",
            IpProtocol::Esp,
        );
    }

    #[test]
    fn ah_transport_and_tunnel() {
        round_trip("protocol = \"ah\"\nmode = \"transport\"", IpProtocol::Ah);
        round_trip("protocol = \"ah\"", IpProtocol::Ah);
    }

    #[test]
    fn ah_esp_bundle() {
        round_trip("protocol = \"ah+esp\"", IpProtocol::Ah);
        round_trip(
            "protocol = \"ah+esp\"\nmode = \"transport\"",
            IpProtocol::Ah,
        );
    }

    #[test]
    fn esp_in_udp_through_rebuilt_headers() {
        round_trip("udp_encap = true", IpProtocol::Udp);
        // What the UDP socket hands over (the payload) opens once the
        // headers are rebuilt in front of it.
        let (client, peer) = setups("udp_encap = true");
        let t = &client.tunnels[0];
        let mut cs = Sealer::new(&client.tunnels, rng()).expect("SAs");
        let mut po = Opener::new(&peer.tunnels).expect("SAs");
        let (mut wire, mut inner) = (Vec::new(), Vec::new());
        let p = packet(t.local, t.peer, 300);
        cs.seal(time::Instant::ZERO, &p, &mut wire).expect("sealed");
        let payload = &wire[UDP_PREFIX..];
        let mut buf = vec![0u8; MAX_PACKET];
        buf[UDP_PREFIX..UDP_PREFIX + payload.len()].copy_from_slice(payload);
        let len = rebuild_udp_headers(
            &mut buf,
            payload.len(),
            SocketAddrV4::new(t.local, NAT_T_PORT),
            t.peer,
        );
        po.open(time::Instant::ZERO, &buf[..len], &mut inner)
            .expect("opens");
        assert_eq!(inner, p);
    }

    #[test]
    fn unprotected_traffic_is_dropped_not_sent() {
        let (client, _) = setups("");
        let mut cs = Sealer::new(&client.tunnels, rng()).expect("SAs");
        let mut wire = Vec::new();
        let other = packet(client.tunnels[0].local, Ipv4Addr::new(198, 18, 0, 101), 10);
        assert_eq!(
            cs.seal(time::Instant::ZERO, &other, &mut wire),
            Err(OutboundDrop::NoSa)
        );
        assert_eq!(
            cs.seal(time::Instant::ZERO, &[0x60, 0, 0, 0], &mut wire),
            Err(OutboundDrop::Unsupported)
        );
        assert_eq!(
            cs.seal(time::Instant::ZERO, &[0x45, 0, 0], &mut wire),
            Err(OutboundDrop::Malformed)
        );
        assert_eq!(cs.drops().get(OutboundDrop::NoSa), 1);
        assert_eq!(cs.drops().total(), 3);
        let json = serde_json::to_value(cs.drops()).expect("JSON");
        assert_eq!(json["no-sa"], 1);
    }

    #[test]
    fn forged_and_unknown_packets_are_counted() {
        let (client, peer) = setups("");
        let t = &client.tunnels[0];
        let mut cs = Sealer::new(&client.tunnels, rng()).expect("SAs");
        let mut po = Opener::new(&peer.tunnels).expect("SAs");
        let (mut wire, mut inner) = (Vec::new(), Vec::new());
        cs.seal(time::Instant::ZERO, &packet(t.local, t.peer, 64), &mut wire)
            .expect("sealed");
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert_eq!(
            po.open(time::Instant::ZERO, &wire, &mut inner),
            Err(OpenError::IcvMismatch)
        );
        wire[ipv4::HEADER_LEN] ^= 0xff; // the SPI
        assert_eq!(
            po.open(time::Instant::ZERO, &wire, &mut inner),
            Err(OpenError::UnknownSpi)
        );
        assert_eq!(po.drops().get(DropReason::UnknownSpi), 1);
        let status = po.status(time::Instant::ZERO);
        assert_eq!(status[0].drops.get(DropReason::IcvMismatch), 1);
        assert_eq!(po.replay_drops(), 0);
    }

    #[test]
    fn setup_errors() {
        let topo = load_str(TOPO, Path::new("t.toml")).expect("loads");
        assert!(matches!(
            ClientSetup::client(&topo, "client9"),
            Err(SetupError::UnknownClient { .. })
        ));
        let none = TOPO.replace("ipsec = \"plexnet\"", "ipsec = \"none\"");
        let none = none.split("[[manual_sa]]").next().unwrap_or_default();
        let topo = load_str(none, Path::new("t.toml")).expect("loads");
        assert!(matches!(
            ClientSetup::client(&topo, "client1"),
            Err(SetupError::NotPlexnet { .. })
        ));
        assert!(matches!(
            ClientSetup::peer(&topo, "client1"),
            Err(SetupError::NothingToPeer { .. })
        ));
    }
}
