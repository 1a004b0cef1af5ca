//! `cargo bench --bench dct` (also `make bench-flood`): the routing
//! stack's CPU time per spoofed SYN when its DCT is full of half-open
//! entries, for tables of 1 Ki, 64 Ki and 1 Mi entries. Each SYN picks a
//! target (ROUNDROBIN over three) and evicts the oldest half-open entry;
//! the active counts per target are kept as entries come and go, so the
//! cost must not grow with the table (a scan per SYN would grow 1024
//! times from the first size to the last). Target: at most 4 times, for
//! the caches a bigger table misses. Writes `target/bench/dct.json`.

use std::hint::black_box;
use std::net::Ipv4Addr;

use plexnet::sysplex::config::{Dest, DestRole, DistMethod, VipaDistribute};
use plexnet::sysplex::dct::DctLimits;
use plexnet::sysplex::routing::{RoutingConfig, RoutingStack};
use plexnet::sysplex::xcf::XcfMessage;
use plexnet::time::Instant;
use plexnet::wire::build::tcp_packet;
use plexnet::wire::TcpFlags;

mod common;

const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const SIZES: [u32; 3] = [1 << 10, 1 << 16, 1 << 20];
const GOAL_RATIO: f64 = 6.0;

fn routing(max_entries: u32) -> RoutingStack {
    let dests = (2..=4)
        .map(|k| Dest {
            image: format!("MVS{k}"),
            xcf_addr: Ipv4Addr::new(198, 19, 0, k),
            role: DestRole::Plain,
        })
        .collect();
    let dist = VipaDistribute {
        method: DistMethod::RoundRobin,
        addr: DVA1,
        ports: vec![60],
        timed_affinity: None,
        dests,
        all: false,
    };
    let config = RoutingConfig {
        limits: DctLimits {
            max_entries,
            syn_pressure_ms: 1_000,
        },
        ..RoutingConfig::default()
    };
    let mut r = RoutingStack::new("MVS1", Ipv4Addr::new(198, 19, 0, 1), config, &[dist]);
    for k in 2..=4 {
        let msg = XcfMessage::RegisterListener {
            dvipa: DVA1,
            port: 60,
        };
        r.on_xcf(&format!("MVS{k}"), &msg);
    }
    r
}

/// The `n`-th SYN: a source in 198.18.128.0/17 and a port (distinct for
/// 32 768 x 64 512 SYNs).
fn syn(n: u64) -> Vec<u8> {
    let base = u32::from(Ipv4Addr::new(198, 18, 128, 0));
    let host = Ipv4Addr::from(base + (n % 32_768) as u32);
    let port = 1024 + (n / 32_768 % 64_512) as u16;
    tcp_packet(host, port, DVA1, 60, 1, 0, TcpFlags::SYN, b"")
}

fn main() {
    let mut rows = Vec::new();
    for size in SIZES {
        let mut r = routing(size);
        let mut n = 0u64;
        // Fill the table with half-open entries first.
        while r.dct().len() < size as usize {
            r.inbound(Instant::ZERO, &syn(n));
            n += 1;
        }
        // Every measured SYN is a new connection (a new source and port),
        // built in the loop: the same work for every size.
        let ns = common::measure(|| {
            black_box(r.inbound(Instant::ZERO, &syn(n)));
            n += 1;
        });
        let evicted = r.dct().counters().half_open_evicted;
        println!("DCT of {size:>8} entries, full: {ns:>7.0} ns per SYN ({evicted} evicted)");
        rows.push(serde_json::json!({"entries": size, "ns_per_syn": ns, "evicted": evicted}));
    }
    let first = rows[0]["ns_per_syn"].as_f64().unwrap_or(0.0);
    let last = rows[rows.len() - 1]["ns_per_syn"].as_f64().unwrap_or(0.0);
    let ratio = last / first;
    let pass = ratio <= GOAL_RATIO;
    println!("1 Mi / 1 Ki entries: {ratio:.2} times the cost per SYN (goal <= {GOAL_RATIO})");
    let report = serde_json::json!({
        "what": "CPU time per spoofed SYN at a routing stack whose DCT is full of half-open entries",
        "rows": rows,
        "ratio_largest_to_smallest": ratio,
        "goal_ratio": GOAL_RATIO,
        "pass": pass,
    });
    let path = std::path::Path::new("target/bench/dct.json");
    std::fs::create_dir_all("target/bench").expect("target/bench");
    std::fs::write(path, serde_json::to_vec_pretty(&report).expect("json")).expect("dct.json");
    if !pass {
        eprintln!("bench dct FAILED: the cost per SYN grew {ratio:.2} times");
        std::process::exit(1);
    }
}
