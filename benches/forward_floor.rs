//! `make bench-floor` (root): what forwarding alone costs a routing stack
//! in user space on this machine, next to what decrypting costs it: the
//! yardstick for issue 4's CPU goal (the routing stack's CPU per
//! forwarded MB with distributed crypto at most 1/10 of one that decrypts
//! everything, `make bench-sysplex`).
//!
//! Three namespaces of its own, `plxff-client` → `plxff-relay` →
//! `plxff-target`, wired like client1 → MVS1 → MVS2 in figure4 (`ext` on
//! one veth, the XCF link `x` on another with MTU 9000). A paced sender in
//! the client sends ESP-in-UDP-sized datagrams (1424-byte payloads, 45 per
//! `UDP_SEGMENT` send, as `plexnet client` sends its bursts); the relay
//! forwards every one to the target, which reads them. The figure is the
//! relay thread's CPU time, user + system as bench-sysplex counts MVS1's,
//! per forwarded MB. Relays:
//!
//! - `mvs1_io`: MVS1's own I/O and nothing else. The DVIPA is routed into
//!   a TUN, read in bursts by the same `tunio::RxBurst` (our ESP-in-UDP
//!   split), and every packet leaves behind a GRE header through the same
//!   `xcf_data::DataLink` (GRE-in-UDP, `UDP_SEGMENT`). No peek, no table.
//! - `bare_udp`: about the least a socket forwarder can do. Bursts are read
//!   whole from a UDP socket with `UDP_GRO` and sent on with `UDP_SEGMENT`
//!   (the same `DataLink`s); nothing parsed, nothing copied in user space,
//!   no header added.
//! - `send_only`: no receive at all: the relay sends `mvs1_io`'s bursts
//!   from memory at the same pace. What a routing stack whose receive cost
//!   it nothing (a packet ring, AF_XDP) would still pay to send.
//!
//! Next to them, `decrypt`: the CPU time our ESP engine takes to open
//! (verify and decrypt) one MB of such packets on one thread,
//! aes128-cbc + hmac-sha1-96 as client1 uses in figure4.
//!
//! A routing stack that decrypts everything still forwards what it
//! decrypted, so with a given I/O it costs at least floor + decrypt per
//! MB, and the least ratio a design with that I/O can reach is floor /
//! (floor + decrypt). Writes `target/bench/floor.json`.
//!
//! Environment: `PLEXNET_BENCH_FLOOR_SECONDS` (measured window per relay,
//! default 8), `PLEXNET_BENCH_FLOOR_MBIT` (the sender's pace, default
//! 2400, about what MVS1 forwards in bench-sysplex).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::socket::{setsockopt, sockopt};
use plexnet::ipsec::{EncAlg, IntegAlg};
use plexnet::lab::netlink::NsLinks;
use plexnet::lab::netns;
use plexnet::runtime::sockets::TUN_TX_QUEUE_LEN;
use plexnet::runtime::tunio::{self, RxBurst};
use plexnet::runtime::xcf_data::{DataLink, DataRx, Datagram};
use plexnet::sysplex::target::{GreHeader, Upstream};
use plexnet::topology::XcfForwarding;
use rand::rngs::StdRng;
use rand::SeedableRng;

mod common;

const CLIENT: &str = "plxff-client";
const RELAY: &str = "plxff-relay";
const TARGET: &str = "plxff-target";
const CLIENT_EXT: Ipv4Addr = Ipv4Addr::new(198, 18, 250, 2);
const RELAY_EXT: Ipv4Addr = Ipv4Addr::new(198, 18, 250, 1);
/// The address the `mvs1_io` relay routes into its TUN, as MVS1 does DVA1.
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 251, 100);
const RELAY_XCF: Ipv4Addr = Ipv4Addr::new(198, 19, 250, 1);
const TARGET_XCF: Ipv4Addr = Ipv4Addr::new(198, 19, 250, 2);
const XCF_MTU: u32 = 9000;
/// UDP payload of one datagram: an aes128-cbc/hmac-sha1-96 ESP packet
/// carrying a full-sized 1400-byte inner packet.
const SEGMENT: usize = 1424;
/// Datagrams per `UDP_SEGMENT` send: a 64 KiB burst.
const SEGMENTS_PER_SEND: usize = 45;
/// Traffic before the window opens, so every queue is in its steady state.
const WARMUP: Duration = Duration::from_secs(1);
/// How long a reader waits before it looks at the clock again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    Mvs1Io,
    BareUdp,
    SendOnly,
}

impl Relay {
    fn name(self) -> &'static str {
        match self {
            Relay::Mvs1Io => "mvs1_io",
            Relay::BareUdp => "bare_udp",
            Relay::SendOnly => "send_only",
        }
    }

    /// Where the client sends: the DVIPA behind the TUN, or the relay's
    /// own socket; nowhere when the relay makes its own traffic.
    fn destination(self) -> Option<SocketAddrV4> {
        match self {
            Relay::Mvs1Io => Some(SocketAddrV4::new(DVIPA, 4500)),
            Relay::BareUdp => Some(SocketAddrV4::new(RELAY_EXT, plexnet::wire::gre::UDP_PORT)),
            Relay::SendOnly => None,
        }
    }
}

/// What the relay did in the measured window.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    seconds: f64,
    bytes: u64,
    datagrams: u64,
    user_ms: f64,
    system_ms: f64,
}

impl Window {
    fn mb(&self) -> f64 {
        self.bytes as f64 / 1e6
    }
    fn ms_per_mb(&self) -> f64 {
        (self.user_ms + self.system_ms) / self.mb()
    }
    fn system_ms_per_mb(&self) -> f64 {
        self.system_ms / self.mb()
    }
    fn mbit(&self) -> f64 {
        self.bytes as f64 * 8.0 / 1e6 / self.seconds
    }
}

/// This thread's user and system CPU time so far, in ms.
fn thread_cpu_ms() -> (f64, f64) {
    let u = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage(RUSAGE_THREAD)");
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
    (ms(u.user_time()), ms(u.system_time()))
}

/// The relay's measuring clock: traffic flows through `WARMUP`, then the
/// window is open for `seconds`; it counts only inside the window.
#[derive(Debug)]
struct Meter {
    seconds: Duration,
    started: Instant,
    first: Option<Instant>,
    opened: Option<(Instant, (f64, f64))>,
    window: Window,
}

impl Meter {
    fn new(seconds: Duration) -> Self {
        Self {
            seconds,
            started: Instant::now(),
            first: None,
            opened: None,
            window: Window::default(),
        }
    }

    /// Counts what was just forwarded; false once the window has closed.
    fn forwarded(&mut self, datagrams: usize, bytes: usize) -> bool {
        let now = Instant::now();
        let first = *self.first.get_or_insert(now);
        match self.opened {
            None if now - first >= WARMUP => self.opened = Some((now, thread_cpu_ms())),
            None => {}
            Some((at, (user0, system0))) => {
                self.window.datagrams += datagrams as u64;
                self.window.bytes += bytes as u64;
                if now - at >= self.seconds {
                    let (user1, system1) = thread_cpu_ms();
                    self.window.seconds = (now - at).as_secs_f64();
                    self.window.user_ms = user1 - user0;
                    self.window.system_ms = system1 - system0;
                    return false;
                }
            }
        }
        true
    }

    /// After one wait for a burst (`datagrams` and `bytes` forwarded,
    /// none when nothing came): the window once it has closed, an error
    /// when nothing came for the whole warm-up and window.
    fn after_wait(
        &mut self,
        datagrams: usize,
        bytes: usize,
        relay: &str,
    ) -> Result<Option<Window>> {
        if datagrams > 0 && !self.forwarded(datagrams, bytes) {
            return Ok(Some(self.window));
        }
        if self.first.is_none() && self.started.elapsed() > WARMUP + self.seconds {
            bail!("the {relay} relay forwarded nothing in its warm-up and window");
        }
        Ok(None)
    }
}

/// Removes the bench's namespaces when dropped, also after a panic.
struct Lab;

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [CLIENT, RELAY, TARGET] {
            if let Err(e) = netns::delete(ns) {
                eprintln!("removing namespace {ns}: {e:#}");
            }
        }
    }
}

/// The three namespaces and their two veths.
fn lab_up() -> Result<Lab> {
    for ns in [CLIENT, RELAY, TARGET] {
        netns::delete(ns)?;
    }
    let lab = Lab;
    for ns in [CLIENT, RELAY, TARGET] {
        netns::create(ns)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (client, relay, target) = (
            NsLinks::open(CLIENT)?,
            NsLinks::open(RELAY)?,
            NsLinks::open(TARGET)?,
        );
        client.add_veth("ext", &relay, "ext").await?;
        relay.add_veth("x", &target, "x").await?;
        client.add_addr("ext", CLIENT_EXT, 24).await?;
        relay.add_addr("ext", RELAY_EXT, 24).await?;
        relay.add_addr("x", RELAY_XCF, 24).await?;
        target.add_addr("x", TARGET_XCF, 24).await?;
        relay.set_mtu("x", XCF_MTU).await?;
        target.set_mtu("x", XCF_MTU).await?;
        for (links, dev) in [
            (&client, "ext"),
            (&relay, "ext"),
            (&relay, "x"),
            (&target, "x"),
        ] {
            links.up(dev).await?;
            links.up("lo").await?;
        }
        client.add_route(DVIPA, 32, Some(RELAY_EXT), None).await
    })?;
    let _inside = netns::Inside::enter(RELAY)?;
    netns::sysctl("net/ipv4/ip_forward", "1")?;
    Ok(lab)
}

/// Sends 64 KiB bursts of `SEGMENT`-byte datagrams to `to` at `mbit`
/// Mbit/s until `stop` (or the time limit); returns the bytes sent.
fn send_paced(to: SocketAddrV4, mbit: u64, stop: &AtomicBool, limit: Duration) -> Result<u64> {
    netns::enter(CLIENT)?;
    let sock = std::net::UdpSocket::bind((CLIENT_EXT, 0)).context("client socket")?;
    sock.connect(to)?;
    setsockopt(&sock, sockopt::UdpGsoSegment, &(SEGMENT as i32)).context("UDP_SEGMENT")?;
    sock.set_write_timeout(Some(POLL))?;
    let burst: Vec<u8> = (0..SEGMENT * SEGMENTS_PER_SEND)
        .map(|i| (i * 131 % 251) as u8)
        .collect();
    let every = Duration::from_secs_f64(burst.len() as f64 * 8.0 / (mbit as f64 * 1e6));
    let (started, mut next, mut sent) = (Instant::now(), Instant::now(), 0u64);
    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
            continue;
        }
        // A full queue downstream drops, as a real link would: keep pace.
        if sock.send(&burst).is_ok() {
            sent += burst.len() as u64;
        }
        // Catch up after an oversleep, but never by more than 8 bursts.
        next = (next + every).max(now.checked_sub(8 * every).unwrap_or(now));
    }
    Ok(sent)
}

/// Reads what the relay forwards until `stop`; counts the datagrams.
fn sink(ready: mpsc::Sender<()>, stop: &AtomicBool, got: &AtomicU64) -> Result<()> {
    netns::enter(TARGET)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let link = DataLink::open(XcfForwarding::GreInUdp, TARGET_XCF, RELAY_XCF, "x")?;
        let _ = ready.send(());
        let mut rx = DataRx::default();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(r) = tokio::time::timeout(POLL, link.recv(&mut rx)).await {
                r?;
                got.fetch_add(rx.datagrams().count() as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    })
}

/// The relay thread: sets its I/O up in its namespace, says so on
/// `ready`, forwards until its window closes.
fn relay(kind: Relay, seconds: Duration, mbit: u64, ready: mpsc::Sender<()>) -> Result<Window> {
    netns::enter(RELAY)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let out = DataLink::open(XcfForwarding::GreInUdp, RELAY_XCF, TARGET_XCF, "x")?;
        match kind {
            Relay::Mvs1Io => {
                let tun = tunio::create("plx0", 1500, TUN_TX_QUEUE_LEN)?;
                let links = NsLinks::open_here()?;
                links.up("plx0").await?;
                links.add_route(DVIPA, 32, None, Some("plx0")).await?;
                let _ = ready.send(());
                relay_tun(&tun, &out, Meter::new(seconds)).await
            }
            Relay::BareUdp => {
                let inbound =
                    DataLink::open(XcfForwarding::GreInUdp, RELAY_EXT, CLIENT_EXT, "ext")?;
                let _ = ready.send(());
                relay_udp(&inbound, &out, Meter::new(seconds)).await
            }
            Relay::SendOnly => {
                let _ = ready.send(());
                send_only(&out, mbit, Meter::new(seconds)).await
            }
        }
    })
}

/// MVS1's loop without its routing stack: a TUN burst, every packet
/// behind a GRE header, one `DataLink::send`.
async fn relay_tun(tun: &tun_rs::AsyncDevice, out: &DataLink, mut meter: Meter) -> Result<Window> {
    let (mut rx, header) = (RxBurst::default(), GreHeader::new(Upstream::Nothing));
    loop {
        let mut sent = (0, 0);
        if let Ok(r) = tokio::time::timeout(POLL, rx.recv(tun)).await {
            r?;
            let bodies: Vec<[&[u8]; 2]> = rx.packets().map(|p| [header.as_bytes(), p]).collect();
            sent = send_bodies(out, &bodies).await?;
        }
        if let Some(w) = meter.after_wait(sent.0, sent.1, "mvs1_io")? {
            return Ok(w);
        }
    }
}

/// A GRO read from `inbound` goes out on `out` as it came.
async fn relay_udp(inbound: &DataLink, out: &DataLink, mut meter: Meter) -> Result<Window> {
    let mut rx = DataRx::default();
    loop {
        let mut sent = (0, 0);
        if let Ok(r) = tokio::time::timeout(POLL, inbound.recv(&mut rx)).await {
            r?;
            let bodies: Vec<[&[u8]; 2]> = rx
                .datagrams()
                .map(|d| match d {
                    Datagram::Udp { body, .. } => [&[][..], body],
                    Datagram::Ip(p) => [&[][..], p],
                })
                .collect();
            sent = send_bodies(out, &bodies).await?;
        }
        if let Some(w) = meter.after_wait(sent.0, sent.1, "bare_udp")? {
            return Ok(w);
        }
    }
}

/// Sends GRE bodies on `out`; returns the datagrams that left and the
/// bytes of the packets they carry (GRE headers not counted, as MVS1's
/// `forwarded_bytes` does not count them).
async fn send_bodies(out: &DataLink, bodies: &[[&[u8]; 2]]) -> Result<(usize, usize)> {
    let bytes = bodies.iter().map(|[_, p]| p.len()).sum();
    Ok((out.send(bodies).await?.0, bytes))
}

/// The XCF send alone, at the sender's pace: bursts of the packets
/// `mvs1_io` forwards, behind GRE headers, with nothing read at all; what
/// a routing stack whose receive cost it nothing (a packet ring, AF_XDP)
/// would still pay to send through the kernel.
async fn send_only(out: &DataLink, mbit: u64, mut meter: Meter) -> Result<Window> {
    let header = GreHeader::new(Upstream::Nothing);
    let packet_len = SEGMENT + plexnet::wire::ipv4::HEADER_LEN + plexnet::wire::udp::HEADER_LEN;
    let burst: Vec<u8> = (0..packet_len * SEGMENTS_PER_SEND)
        .map(|i| (i * 131 % 251) as u8)
        .collect();
    let bodies: Vec<[&[u8]; 2]> = burst
        .chunks(packet_len)
        .map(|p| [header.as_bytes(), p])
        .collect();
    let every = Duration::from_secs_f64(burst.len() as f64 * 8.0 / (mbit as f64 * 1e6));
    let mut next = tokio::time::Instant::now();
    loop {
        // The timer ticks in milliseconds: a late wake sends the bursts
        // it owes at once, so the pace holds over each millisecond.
        tokio::time::sleep_until(next).await;
        next += every;
        let (sent, bytes) = send_bodies(out, &bodies).await?;
        if let Some(w) = meter.after_wait(sent, bytes, "send_only")? {
            return Ok(w);
        }
    }
}

/// One relay in fresh namespaces: its window, and the datagrams the
/// target read over the whole run.
fn run(kind: Relay, seconds: Duration, mbit: u64) -> Result<(Window, u64)> {
    let _lab = lab_up()?;
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready) = mpsc::channel();
    let sink = {
        let (stop, got, ready_tx) = (stop.clone(), got.clone(), ready_tx.clone());
        std::thread::spawn(move || sink(ready_tx, &stop, &got))
    };
    let relay = std::thread::spawn(move || relay(kind, seconds, mbit, ready_tx));
    if !(0..2).all(|_| ready.recv_timeout(Duration::from_secs(10)).is_ok()) {
        // Whichever failed says why (a relay that did start gives up once
        // it has waited its warm-up and window for traffic).
        stop.store(true, Ordering::Relaxed);
        let relay = relay
            .join()
            .map_err(|_| anyhow::anyhow!("relay panicked"))?;
        let sink = sink.join().map_err(|_| anyhow::anyhow!("sink panicked"))?;
        relay?;
        sink?;
        bail!("the relay or the sink did not start");
    }
    let limit = WARMUP + seconds + Duration::from_secs(10);
    let sender = kind.destination().map(|to| {
        let stop = stop.clone();
        std::thread::spawn(move || send_paced(to, mbit, &stop, limit))
    });
    let window = relay.join().map_err(|_| anyhow::anyhow!("relay panicked"));
    stop.store(true, Ordering::Relaxed);
    let sent = match sender {
        Some(s) => s.join().map_err(|_| anyhow::anyhow!("sender panicked"))?,
        None => Ok(0),
    };
    let sunk = sink.join().map_err(|_| anyhow::anyhow!("sink panicked"))?;
    let window = window??;
    sent?;
    sunk?;
    Ok((window, got.load(Ordering::Relaxed)))
}

/// CPU ms per MB (= ns per byte) to open figure4's client1 ESP packets.
fn decrypt_ms_per_mb() -> f64 {
    let sa = common::tunnel_sa(EncAlg::AesCbc128, IntegAlg::HmacSha1_96);
    let ring = common::sealed_ring(
        &sa,
        &common::inner_packet(1400),
        &mut StdRng::seed_from_u64(1),
    );
    common::open_ns(&sa, &ring) / ring[0].len() as f64
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench-floor needs root (namespaces): run `sudo make bench-floor`");
        return Ok(());
    }
    let seconds = Duration::from_secs(env_u64("PLEXNET_BENCH_FLOOR_SECONDS", 8));
    let mbit = env_u64("PLEXNET_BENCH_FLOOR_MBIT", 2400);
    let decrypt = decrypt_ms_per_mb();
    println!("decrypt (open) aes128-cbc + hmac-sha1-96, 1400-byte inner packets: {decrypt:.3} ms per MB, one thread");
    let mut relays = serde_json::Map::new();
    for kind in [Relay::Mvs1Io, Relay::BareUdp, Relay::SendOnly] {
        println!(
            "{}: {} s at {mbit} Mbit/s offered (after {} s of warm-up)...",
            kind.name(),
            seconds.as_secs(),
            WARMUP.as_secs()
        );
        let (w, delivered) = run(kind, seconds, mbit)?;
        let floor = w.ms_per_mb();
        let best = floor / (floor + decrypt);
        println!(
            "{:>9}: {:.3} ms per MB (system {:.3}), {:.1} MB at {:.1} Mbit/s; least ratio with this I/O {best:.3}",
            kind.name(),
            floor,
            w.system_ms_per_mb(),
            w.mb(),
            w.mbit()
        );
        relays.insert(
            kind.name().to_owned(),
            serde_json::json!({
                "ms_per_mb": floor,
                "system_ms_per_mb": w.system_ms_per_mb(),
                "user_ms": w.user_ms,
                "system_ms": w.system_ms,
                "forwarded_mb": w.mb(),
                "forwarded_datagrams": w.datagrams,
                "target_read_datagrams": delivered,
                "mbit_per_s": w.mbit(),
                "seconds": w.seconds,
                "least_ratio": best,
            }),
        );
    }
    let out = serde_json::json!({
        "what": "CPU per forwarded MB of a relay thread that only forwards (mvs1_io: MVS1's TUN + GRE-in-UDP I/O; bare_udp: UDP GRO in, UDP GSO out; send_only: the GRE-in-UDP send alone), next to the CPU to decrypt a MB; least_ratio = floor / (floor + decrypt), the best issue 4's CPU ratio can be with that I/O",
        "offered_mbit": mbit,
        "segment_bytes": SEGMENT,
        "segments_per_send": SEGMENTS_PER_SEND,
        "decrypt_ms_per_mb": decrypt,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "relays": relays,
    });
    let path = common::output_path("floor.json");
    std::fs::create_dir_all(path.parent().expect("target/bench"))?;
    std::fs::write(&path, serde_json::to_string_pretty(&out)?)?;
    println!("wrote {}", path.display());
    Ok(())
}
