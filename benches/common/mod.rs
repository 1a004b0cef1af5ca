//! What the benches share: a tunnel-mode ESP SA and inner packets as
//! figure4's clients send them, and CPU-time measurement.

#![allow(dead_code)] // each bench uses its own part

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use std::hint::black_box;

use plexnet::ipsec::{
    open_esp, seal_esp, EncAlg, IntegAlg, Key, Lifetimes, Mode, Protocol, ReplayWindow, Sa,
    SaConfig, Spi, TrafficSelector,
};
use plexnet::wire::{
    ipv4, IpProtocol, Ipv4Packet, Ipv4Repr, PseudoHeader, TcpFlags, TcpPacket, TcpRepr,
};
use rand::rngs::StdRng;

/// Distinct sealed packets cycled through by `open` (fits in L2).
pub const RING: usize = 128;
/// Timed batches per measurement; the median is reported.
pub const BATCHES: usize = 7;
/// Target duration of one batch.
pub const BATCH_TIME: Duration = Duration::from_millis(60);

/// An ESP tunnel-mode SA from client1 to DVA1 with fixed keys.
pub fn tunnel_sa(enc: EncAlg, integ: IntegAlg) -> Sa {
    Sa::new(SaConfig {
        spi: Spi(0x0b0b_0001),
        protocol: Protocol::Esp,
        mode: Mode::Tunnel,
        src: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
        enc,
        enc_key: Key((0..enc.key_len() as u8).collect()),
        integ,
        integ_key: Key((0..integ.key_len() as u8).rev().collect()),
        esn: false,
        replay_window: 1024,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: TrafficSelector::ANY_V4,
    })
    .expect("valid SA")
}

/// A TCP/IPv4 packet of exactly `size` bytes.
pub fn inner_packet(size: usize) -> Vec<u8> {
    let (src, dst) = (
        Ipv4Addr::new(198, 18, 1, 10),
        Ipv4Addr::new(198, 18, 0, 100),
    );
    let payload = vec![0x5au8; size - 40];
    let seg = TcpRepr {
        src_port: 40000,
        dst_port: 5201,
        seq_number: 1,
        ack_number: 1,
        flags: TcpFlags::ACK,
        window_len: 65535,
        urgent_at: 0,
        options: &[],
        payload: &payload,
    };
    let mut buf = vec![0u8; size];
    Ipv4Repr::new(src, dst, IpProtocol::Tcp, seg.buffer_len())
        .emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
    seg.emit(
        &mut TcpPacket::new_unchecked(&mut buf[ipv4::HEADER_LEN..]),
        &PseudoHeader::V4 { src, dst },
    );
    buf
}

/// [`RING`] packets of `inner` sealed under `sa` with sequence numbers
/// 1, 2, ...
pub fn sealed_ring(sa: &Sa, inner: &[u8], rng: &mut StdRng) -> Vec<Vec<u8>> {
    (1..=RING as u64)
        .map(|s| {
            let mut p = Vec::new();
            seal_esp(sa, s, rng, inner, &mut p).expect("seal");
            p
        })
        .collect()
}

/// CPU nanoseconds to open (verify and decrypt) one packet of `ring`:
/// the ring over and over, a fresh replay window per lap.
pub fn open_ns(sa: &Sa, ring: &[Vec<u8>]) -> f64 {
    let mut window = ReplayWindow::new(1024, false);
    let mut i = 0;
    let mut plain = Vec::with_capacity(2048);
    measure(|| {
        if i == ring.len() {
            i = 0;
            window = ReplayWindow::new(1024, false);
        }
        black_box(open_esp(sa, &mut window, black_box(&ring[i]), &mut plain).expect("open"));
        i += 1;
    })
}

/// CPU time this thread has used. `openssl speed` divides by user CPU
/// time too (unless `-elapsed`), so time spent descheduled while others
/// use the core counts on neither side.
pub fn cpu_now() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Nanoseconds of CPU time per call of `op`: the median over `BATCHES`
/// batches.
pub fn measure(mut op: impl FnMut()) -> f64 {
    // Calibrate the batch length, warming up on the way.
    let mut n = 16u64;
    loop {
        let t = cpu_now();
        for _ in 0..n {
            op();
        }
        let el = cpu_now() - t;
        if el >= BATCH_TIME / 4 {
            n = (n as f64 * BATCH_TIME.as_secs_f64() / el.as_secs_f64()).max(1.0) as u64;
            break;
        }
        n *= 4;
    }
    let mut per_op: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let t = cpu_now();
            for _ in 0..n {
                op();
            }
            (cpu_now() - t).as_nanos() as f64 / n as f64
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    per_op[BATCHES / 2]
}

/// `target/bench/<name>` (or under `CARGO_TARGET_DIR`).
pub fn output_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench").join(name)
}
