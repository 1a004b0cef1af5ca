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
use std::process::Command;
use std::time::Instant;

use plexnet::ipsec::{peek, seal_esp, EncAlg, IntegAlg, Sa};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

mod common;

use common::{inner_packet, measure};

const SIZES: [usize; 3] = [64, 512, 1400];

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
    common::tunnel_sa(suite.enc, suite.integ)
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
            let ring = common::sealed_ring(&sa, &inner, &mut rng);
            let open_ns = common::open_ns(&sa, &ring);
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
    let path = common::output_path("ipsec.json");
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
