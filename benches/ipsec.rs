//! `cargo bench --bench ipsec` (also `make bench-ipsec`): seal, open and
//! peek throughput on one core against OpenSSL's own speed for the same
//! work measured in the same run. Writes `target/bench/ipsec.json` and
//! prints the same rows as a table.
//!
//! OpenSSL's figure for a CBC+HMAC suite is its cipher speed (`openssl
//! speed -evp aes-N-cbc [-decrypt]`) combined with its HMAC speed
//! (`openssl speed -hmac shaN`) as encrypt-then-MAC, 1/(1/a + 1/b); for
//! GCM it is `openssl speed -evp aes-128-gcm [-decrypt]`. Our figure is
//! the median of several timed batches of whole-packet operations on a
//! tunnel-mode SA (`bytes` is the size of the inner IPv4 packet). Both
//! sides are timed in CPU time, as `openssl speed` does by default.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use plexnet::ipsec::{
    open_esp, peek, seal_esp, EncAlg, IntegAlg, Key, Lifetimes, Mode, Protocol, ReplayWindow, Sa,
    SaConfig, Spi, TrafficSelector,
};
use plexnet::wire::{
    ipv4, IpProtocol, Ipv4Packet, Ipv4Repr, PseudoHeader, TcpFlags, TcpPacket, TcpRepr,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

const SIZES: [usize; 3] = [64, 512, 1400];
/// Timed batches per measurement; the median is reported.
const BATCHES: usize = 7;
/// Target duration of one batch.
const BATCH_TIME: Duration = Duration::from_millis(60);
/// Distinct sealed packets cycled through by `open` (fits in L2).
const RING: usize = 128;

struct Suite {
    name: &'static str,
    enc: EncAlg,
    integ: IntegAlg,
    openssl_cipher: &'static str,
    openssl_hmac: Option<&'static str>,
}

const SUITES: [Suite; 3] = [
    Suite {
        name: "aes128-cbc-hmac-sha1-96",
        enc: EncAlg::AesCbc128,
        integ: IntegAlg::HmacSha1_96,
        openssl_cipher: "aes-128-cbc",
        openssl_hmac: Some("sha1"),
    },
    Suite {
        name: "aes256-cbc-hmac-sha256-128",
        enc: EncAlg::AesCbc256,
        integ: IntegAlg::HmacSha256_128,
        openssl_cipher: "aes-256-cbc",
        openssl_hmac: Some("sha256"),
    },
    Suite {
        name: "aes128-gcm16",
        enc: EncAlg::AesGcm16_128,
        integ: IntegAlg::None,
        openssl_cipher: "aes-128-gcm",
        openssl_hmac: None,
    },
];

#[derive(Debug, Serialize)]
struct Row {
    op: &'static str,
    suite: &'static str,
    bytes: usize,
    gbps: f64,
    openssl_gbps: f64,
    ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_to_open: Option<f64>,
}

fn sa(suite: &Suite) -> Sa {
    Sa::new(SaConfig {
        spi: Spi(0x0b0b_0001),
        protocol: Protocol::Esp,
        mode: Mode::Tunnel,
        src: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
        enc: suite.enc,
        enc_key: Key((0..suite.enc.key_len() as u8).collect()),
        integ: suite.integ,
        integ_key: Key((0..suite.integ.key_len() as u8).rev().collect()),
        esn: false,
        replay_window: 1024,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: TrafficSelector::ANY_V4,
    })
    .expect("valid SA")
}

/// A TCP/IPv4 packet of exactly `size` bytes.
fn inner_packet(size: usize) -> Vec<u8> {
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

/// CPU time this thread has used. `openssl speed` divides by user CPU
/// time too (unless `-elapsed`), so time spent descheduled while others
/// use the core counts on neither side.
fn cpu_now() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

/// Nanoseconds of CPU time per call of `op`: the median over `BATCHES`
/// batches.
fn measure(mut op: impl FnMut()) -> f64 {
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

fn gbps(bytes: usize, ns: f64) -> f64 {
    bytes as f64 * 8.0 / ns
}

/// `openssl speed ... -bytes N -seconds 1`, in bytes per second.
fn openssl_speed(args: &[&str], bytes: usize) -> Result<f64, String> {
    let n = bytes.to_string();
    let output = Command::new("openssl")
        .arg("speed")
        .args(args)
        .args(["-bytes", &n, "-seconds", "1"])
        .output()
        .map_err(|e| format!("running openssl speed {args:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The result line: "<name>  <1000s of bytes per second>k".
    stdout
        .lines()
        .rev()
        .filter_map(|l| l.split_whitespace().last())
        .find_map(|v| v.strip_suffix('k').and_then(|k| k.parse::<f64>().ok()))
        .map(|k| k * 1000.0)
        .ok_or_else(|| format!("no result in `openssl speed {args:?}` output: {stdout}"))
}

/// OpenSSL's Gbit/s for sealing (`decrypt` false) or opening.
fn openssl_gbps(suite: &Suite, bytes: usize, decrypt: bool) -> Result<f64, String> {
    let mut args = vec!["-evp", suite.openssl_cipher];
    if decrypt {
        args.push("-decrypt");
    }
    let cipher = openssl_speed(&args, bytes)?;
    let combined = match suite.openssl_hmac {
        Some(h) => {
            let mac = openssl_speed(&["-hmac", h], bytes)?;
            1.0 / (1.0 / cipher + 1.0 / mac)
        }
        None => cipher,
    };
    Ok(combined * 8.0 / 1e9)
}

/// Runs this process, and the `openssl` it starts, on the CPU it is on.
fn pin_to_one_core() -> Option<usize> {
    use nix::sched::{sched_getcpu, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let cpu = sched_getcpu().ok()?;
    let mut set = CpuSet::new();
    set.set(cpu).ok()?;
    sched_setaffinity(Pid::from_raw(0), &set).ok()?;
    Some(cpu)
}

fn output_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench").join("ipsec.json")
}

fn main() {
    // `cargo bench` passes `--bench`; a further argument is a substring
    // filter on "op suite bytes", for profiling one case: only matching
    // rows are measured, OpenSSL is not run, and ipsec.json is not written.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let started = Instant::now();
    match pin_to_one_core() {
        Some(cpu) => println!("pinned to CPU {cpu}; OpenSSL runs on the same CPU"),
        None => println!("could not pin to one CPU; numbers may wander"),
    }
    let mut rows = Vec::new();
    let mut openssl_cache = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(1);
    for suite in &SUITES {
        let sa = sa(suite);
        for size in SIZES {
            let wanted = |op: &str| format!("{op} {} {size}", suite.name).contains(&filter);
            if !["seal", "open", "peek"].iter().any(|op| wanted(op)) {
                continue;
            }
            let inner = inner_packet(size);
            // seal
            let mut out = Vec::with_capacity(2048);
            let mut seq = 0u64;
            let seal_ns = if !wanted("seal") {
                f64::NAN
            } else {
                measure(|| {
                    seq = seq % u64::from(u32::MAX) + 1;
                    black_box(
                        seal_esp(&sa, seq, &mut rng, black_box(&inner), &mut out).expect("seal"),
                    );
                })
            };
            // open: a ring of distinct packets, a fresh window per lap
            let ring: Vec<Vec<u8>> = (1..=RING as u64)
                .map(|s| {
                    let mut p = Vec::new();
                    seal_esp(&sa, s, &mut rng, &inner, &mut p).expect("seal");
                    p
                })
                .collect();
            let mut window = ReplayWindow::new(1024, false);
            let mut i = 0;
            let mut plain = Vec::with_capacity(2048);
            let open_ns = measure(|| {
                if i == RING {
                    i = 0;
                    window = ReplayWindow::new(1024, false);
                }
                black_box(
                    open_esp(&sa, &mut window, black_box(&ring[i]), &mut plain).expect("open"),
                );
                i += 1;
            });
            let peek_ns = if !wanted("peek") {
                f64::NAN
            } else {
                measure(|| {
                    black_box(peek(black_box(&ring[7]), &sa).expect("peek"));
                })
            };
            let key = (suite.name, size);
            let (o_seal, o_open) = match openssl_cache.get(&key) {
                Some(v) => *v,
                None if !filter.is_empty() => (f64::NAN, f64::NAN),
                None => {
                    let v = (
                        openssl_gbps(suite, size, false).unwrap_or(f64::NAN),
                        openssl_gbps(suite, size, true).unwrap_or(f64::NAN),
                    );
                    openssl_cache.insert(key, v);
                    v
                }
            };
            let (g_seal, g_open, g_peek) = (
                gbps(size, seal_ns),
                gbps(size, open_ns),
                gbps(size, peek_ns),
            );
            rows.push(Row {
                op: "seal",
                suite: suite.name,
                bytes: size,
                gbps: g_seal,
                openssl_gbps: o_seal,
                ratio: g_seal / o_seal,
                ratio_to_open: None,
            });
            rows.push(Row {
                op: "open",
                suite: suite.name,
                bytes: size,
                gbps: g_open,
                openssl_gbps: o_open,
                ratio: g_open / o_open,
                ratio_to_open: None,
            });
            rows.push(Row {
                op: "peek",
                suite: suite.name,
                bytes: size,
                gbps: g_peek,
                openssl_gbps: o_open,
                ratio: g_peek / o_open,
                ratio_to_open: Some(peek_ns / open_ns),
            });
        }
    }

    rows.retain(|r| format!("{} {} {}", r.op, r.suite, r.bytes).contains(&filter));
    println!(
        "{:<5} {:<27} {:>5} {:>9} {:>12} {:>7} {:>13}",
        "op", "suite", "bytes", "gbps", "openssl_gbps", "ratio", "ratio_to_open"
    );
    for r in &rows {
        let rto = r
            .ratio_to_open
            .map(|v| format!("{:.2} %", v * 100.0))
            .unwrap_or_default();
        println!(
            "{:<5} {:<27} {:>5} {:>9.3} {:>12.3} {:>7.3} {:>13}",
            r.op, r.suite, r.bytes, r.gbps, r.openssl_gbps, r.ratio, rto
        );
    }
    if !filter.is_empty() {
        return;
    }
    let path = output_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create target/bench");
    }
    let json = serde_json::to_string_pretty(&rows).expect("serialize rows");
    std::fs::write(&path, json + "\n").expect("write ipsec.json");
    println!(
        "wrote {} in {:.0} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
}
