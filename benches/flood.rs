//! `make bench-flood` (root): figure4 (as `benchflood`, with `[limits]
//! dct_max_entries = 4096`) under a spoofed SYN flood and under forged
//! ESP, from a namespace of its own (`plxflood-atk`, a veth into `net` on
//! 198.18.9.0/24; the spoofed sources are 198.18.128.0/17, routed back to
//! it by `net`, so the targets' SYN-ACKs die there). Writes
//! `target/bench/flood.json`.
//!
//! Three phases of `PLEXNET_BENCH_FLOOD_SECONDS` (default 10) each, the
//! sender a raw socket (IP_HDRINCL) in the attacker's namespace sending
//! as fast as it can:
//! 1. `syn-filtered`: SYNs to DVA1:80, which figure4's policy admits only
//!    under IPsec: MVS1's IP filter denies them before the DCT (what this
//!    measures is the filter's cost);
//! 2. `syn-dct`: SYNs to DVA1:60, which the policy permits in clear (a
//!    plain Sysplex Distributor port; iperf3 listens there on MVS1, MVS2,
//!    MVS4): every SYN reaches the DCT, which stays within its bound by
//!    evicting half-open entries;
//! 3. `forged-esp`: ESP in UDP 4500 from the clients' addresses with the
//!    SPIs of MVS1's inbound SAs (from `plexnet ipsec MVS1 --json`), random
//!    sequence numbers and random contents.
//!
//! During 1 and 2, curl loops run from client1 (strongSwan) and client2
//! (plexnet client) to DVA1:80; pass: no failed curl, and MVS1's RSS
//! (the routing stack's daemon) stays under its bound: its RSS before the
//! flood, plus 1 KiB per DCT entry allowed (an entry, its indexes and its
//! journal record take well under that), plus 16 MiB for buffers. During
//! 3: no replay window moves (every inbound SA's `replay_top` at MVS1,
//! MVS2, MVS4 is unchanged), the forged packets are counted as drops with
//! a reason, and every daemon still answers; curls run after it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use plexnet::lab::netns;
use plexnet::wire::build::tcp_packet;
use plexnet::wire::{ipv4, IpProtocol, TcpFlags};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{json, Value};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

#[path = "../tests/common/mod.rs"]
mod lab;

const PREFIX: &str = "plxflood-";
const NAME: &str = "benchflood";
const ATTACKER: &str = "plxflood-atk";
const NET: &str = "plxflood-net";
const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The attacker's LAN: `net` is .1, the attacker .2.
const ATTACK_LAN: &str = "198.18.9";
/// Where spoofed sources come from (routed to the attacker by `net`).
const SPOOFED: (Ipv4Addr, u32) = (Ipv4Addr::new(198, 18, 128, 0), 1 << 15);
const DCT_MAX: u64 = 4096;
/// RSS allowed per DCT entry, and for buffers.
const RSS_PER_ENTRY: u64 = 1024;
const RSS_SLACK: u64 = 16 << 20;

/// What the attacker sends.
#[derive(Clone)]
enum Load {
    /// SYNs from random spoofed sources and ports to DVA1:`port`.
    Syn { port: u16 },
    /// ESP in UDP 4500 under these (SPI, client address) pairs.
    Esp { sas: Vec<(u32, Ipv4Addr)> },
}

fn ok(args: &[&str]) -> String {
    lab::ok(PREFIX, args)
}

fn json_of(args: &[&str]) -> Value {
    lab::json(PREFIX, args)
}

fn sh(cmd: &[&str]) {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes the lab and the attacker's namespace, also on a panic.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = lab::plexnet(PREFIX, &["down", "--all"]);
        if netns::exists(ATTACKER) {
            let _ = netns::delete(ATTACKER);
        }
    }
}

/// figure4 under its own name, with the DCT bound this bench fills.
fn topology(dir: &Path) -> String {
    let text = std::fs::read_to_string("topologies/figure4.toml").expect("figure4.toml");
    let text = text.replace("name = \"figure4\"", &format!("name = \"{NAME}\""));
    let text = format!("{text}\n[limits]\ndct_max_entries = {DCT_MAX}\n");
    let path = dir.join(format!("{NAME}.toml"));
    std::fs::write(&path, text).expect("write topology");
    path.display().to_string()
}

/// The attacker's namespace, a veth into `net`, and `net`'s route back to
/// the spoofed block; `net` stops filtering by reverse path on it (the
/// forged ESP comes from the clients' addresses).
fn attach_attacker() {
    netns::create(ATTACKER).expect("attacker namespace");
    sh(&[
        "ip", "link", "add", "flood0", "netns", ATTACKER, "type", "veth", "peer", "name", "atk",
        "netns", NET,
    ]);
    let (mine, gw) = (format!("{ATTACK_LAN}.2/24"), format!("{ATTACK_LAN}.1"));
    sh(&["ip", "-n", ATTACKER, "addr", "add", &mine, "dev", "flood0"]);
    sh(&["ip", "-n", ATTACKER, "link", "set", "flood0", "up"]);
    sh(&["ip", "-n", ATTACKER, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", ATTACKER, "route", "add", "default", "via", &gw]);
    sh(&[
        "ip",
        "-n",
        NET,
        "addr",
        "add",
        &format!("{gw}/24"),
        "dev",
        "atk",
    ]);
    sh(&["ip", "-n", NET, "link", "set", "atk", "up"]);
    let block = format!("{}/17", SPOOFED.0);
    let via = format!("{ATTACK_LAN}.2");
    sh(&["ip", "-n", NET, "route", "add", &block, "via", &via]);
    for key in ["all", "atk"] {
        let k = format!("net.ipv4.conf.{key}.rp_filter=0");
        sh(&["ip", "netns", "exec", NET, "sysctl", "-qw", &k]);
    }
}

fn spoofed_source(rng: &mut StdRng) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(SPOOFED.0) + rng.gen_range(1..SPOOFED.1 - 1))
}

/// An IPv4/UDP 4500/ESP packet: `spi`, a random sequence number, random
/// IV, ciphertext and ICV (96 bytes, a multiple of the AES block).
fn forged_esp(rng: &mut StdRng, spi: u32, src: Ipv4Addr) -> Vec<u8> {
    let mut esp = vec![0u8; 8 + 96];
    esp[..4].copy_from_slice(&spi.to_be_bytes());
    esp[4..8].copy_from_slice(&rng.gen_range(1..=u32::MAX).to_be_bytes());
    rng.fill_bytes(&mut esp[8..]);
    let udp_len = 8 + esp.len();
    let ip = ipv4::Repr::new(src, DVA1, IpProtocol::Udp, udp_len);
    let mut out = vec![0u8; ip.buffer_len() + udp_len];
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    let udp = &mut out[ip.buffer_len()..];
    udp[0..2].copy_from_slice(&4500u16.to_be_bytes());
    udp[2..4].copy_from_slice(&4500u16.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    // Checksum 0: none (RFC 768), as NAT-T senders may do.
    udp[8..].copy_from_slice(&esp);
    out
}

fn packet(load: &Load, rng: &mut StdRng) -> Vec<u8> {
    match load {
        Load::Syn { port } => {
            let (src, sport) = (spoofed_source(rng), rng.gen_range(1024..=u16::MAX));
            tcp_packet(src, sport, DVA1, *port, rng.gen(), 0, TcpFlags::SYN, b"")
        }
        Load::Esp { sas } => {
            let (spi, src) = sas[rng.gen_range(0..sas.len())];
            forged_esp(rng, spi, src)
        }
    }
}

/// Sends `load` from the attacker's namespace for `seconds`, as fast as a
/// raw socket takes it: (packets sent, send errors, seconds).
fn flood(load: Load, seconds: u64) -> JoinHandle<(u64, u64, f64)> {
    std::thread::spawn(move || {
        netns::enter(ATTACKER).expect("entering the attacker's namespace");
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))
            .expect("raw socket (IPPROTO_RAW)");
        let to = SockAddr::from(SocketAddrV4::new(DVA1, 0));
        let mut rng = StdRng::from_entropy();
        let (mut sent, mut errors) = (0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(seconds) {
            for _ in 0..64 {
                match sock.send_to(&packet(&load, &mut rng), &to) {
                    Ok(_) => sent += 1,
                    Err(_) => errors += 1,
                }
            }
        }
        (sent, errors, start.elapsed().as_secs_f64())
    })
}

/// Curls DVA1 from `client` until `stop`: (answered, failed, first failures).
fn curl_loop(client: &'static str, stop: Arc<AtomicBool>) -> JoinHandle<(u64, u64, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut answered, mut failed, mut why) = (0, 0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            match lab::curl_dva1(PREFIX, client) {
                Ok(_) => answered += 1,
                Err(e) => {
                    failed += 1;
                    if why.len() < 5 {
                        why.push(e);
                    }
                }
            }
        }
        (answered, failed, why)
    })
}

fn rss_bytes(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The peak RSS of `pid`, sampled every 50 ms until `stop`.
fn rss_peak(pid: u64, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_bytes(pid));
            std::thread::sleep(Duration::from_millis(50));
        }
        peak.max(rss_bytes(pid))
    })
}

/// The daemon status of every node of the lab, by name.
fn daemons() -> BTreeMap<String, Value> {
    let st = json_of(&["status", "--json"]);
    st.as_array()
        .and_then(|a| a.iter().find(|t| t["prefix"] == PREFIX))
        .and_then(|t| t["nodes"].as_array())
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| {
                    (
                        n["name"].as_str().unwrap_or("").to_string(),
                        n["daemon"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pid_of(node: &str) -> u64 {
    daemons()[node]["pid"].as_u64().expect("a pid")
}

/// What the phases compare: drops by reason at MVS1, MVS2, MVS4, MVS1's
/// filter denials and DCT, and every inbound SA's replay window top.
fn snapshot() -> Value {
    let mut nodes = serde_json::Map::new();
    let mut replay = BTreeMap::new();
    let mut sa_drops = serde_json::Map::new();
    for node in ["MVS1", "MVS2", "MVS4"] {
        let d = json_of(&["ipsec", node, "--json"]);
        for (kind, rows) in [("owned", &d["owned"]), ("shadow", &d["shadow"])] {
            for r in rows.as_array().into_iter().flatten() {
                if let (Some(spi), Some(top)) = (r["spi"].as_str(), r["replay_top"].as_u64()) {
                    replay.insert(format!("{node} {kind} {spi}"), top);
                    for (reason, n) in r["drops"].as_object().into_iter().flatten() {
                        sa_drops.insert(format!("{node} {kind} {spi} {reason}"), n.clone());
                    }
                }
            }
        }
        nodes.insert(
            node.into(),
            json!({"routing_drops": d["routing_drops"], "target_drops": d["target_drops"]}),
        );
    }
    let mvs1 = &daemons()["MVS1"]["routing"];
    json!({
        "nodes": nodes,
        "filter_denied": mvs1["counters"]["filter_denied"],
        "packets_in": mvs1["counters"]["packets_in"],
        "dct": mvs1["dct"],
        "replay_top": replay,
        "sa_drops": sa_drops,
        "kernel": {"MVS1": kernel_drops("plxflood-mvs1"), "net": kernel_drops(NET)},
    })
}

/// What the kernel of namespace `ns` dropped before plexnet could see it:
/// each link's receive and transmit drops (a TUN's transmit drops are
/// packets its reader did not take in time) and IP's input discards.
fn kernel_drops(ns: &str) -> Value {
    let out = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show"])
        .output()
        .expect("ip link");
    let links: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut drops = serde_json::Map::new();
    for l in links.as_array().into_iter().flatten() {
        let name = l["ifname"].as_str().unwrap_or("?");
        let s = &l["stats64"];
        drops.insert(format!("{name} rx_dropped"), s["rx"]["dropped"].clone());
        drops.insert(format!("{name} tx_dropped"), s["tx"]["dropped"].clone());
    }
    let snmp = Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp"])
        .output()
        .expect("snmp");
    let text = String::from_utf8_lossy(&snmp.stdout);
    let ip: Vec<&str> = text.lines().filter(|l| l.starts_with("Ip:")).collect();
    if let [names, values] = ip[..] {
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if n.ends_with("Discards") || n == "InAddrErrors" || n == "InNoRoutes" {
                drops.insert(format!("ip {n}"), json!(v.parse::<u64>().unwrap_or(0)));
            }
        }
    }
    Value::Object(drops)
}

/// `after - before` of every counter in a `{reason: n}` map.
fn delta(before: &Value, after: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in after.as_object().into_iter().flatten() {
        let d = v.as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
        if d > 0 {
            out.insert(k.clone(), json!(d));
        }
    }
    Value::Object(out)
}

fn drops_delta(before: &Value, after: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for node in ["MVS1", "MVS2", "MVS4"] {
        let (b, a) = (&before["nodes"][node], &after["nodes"][node]);
        out.insert(
            node.into(),
            json!({
                "routing": delta(&b["routing_drops"], &a["routing_drops"]),
                "target": delta(&b["target_drops"], &a["target_drops"]),
            }),
        );
    }
    out.insert(
        "MVS1 filter_denied".into(),
        delta(&before["filter_denied"], &after["filter_denied"]),
    );
    out.insert(
        "inbound SAs".into(),
        delta(&before["sa_drops"], &after["sa_drops"]),
    );
    for node in ["MVS1", "net"] {
        let (b, a) = (&before["kernel"][node], &after["kernel"][node]);
        out.insert(format!("{node} kernel"), delta(b, a));
    }
    Value::Object(out)
}

/// One phase: the flood, curl loops if `curls`, MVS1's RSS; counters
/// before and after.
fn phase(name: &str, load: Load, seconds: u64, curls: bool, pid: u64) -> Value {
    let before = snapshot();
    let rss_before = rss_bytes(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = rss_peak(pid, Arc::clone(&stop));
    let loops: Vec<_> = if curls {
        ["client1", "client2"]
            .into_iter()
            .map(|c| (c, curl_loop(c, Arc::clone(&stop))))
            .collect()
    } else {
        Vec::new()
    };
    let (sent, errors, secs) = flood(load, seconds).join().expect("sender");
    stop.store(true, Ordering::Relaxed);
    let mut curl = serde_json::Map::new();
    for (client, h) in loops {
        let (answered, failed, why) = h.join().expect("curl loop");
        curl.insert(
            client.into(),
            json!({"ok": answered, "failed": failed, "failures": why}),
        );
    }
    let peak = peak.join().expect("rss sampler");
    // A tick of the image (1 s) to count and expire what the flood left.
    std::thread::sleep(Duration::from_millis(1500));
    let after = snapshot();
    let rate = sent as f64 / secs;
    println!("{name}: {sent} packets in {secs:.1} s = {rate:.0}/s ({errors} send errors)");
    json!({
        "phase": name,
        "sent": sent,
        "send_errors": errors,
        "seconds": secs,
        "packets_per_second": rate,
        "curl": curl,
        "rss_bytes": {"before": rss_before, "peak": peak, "after": rss_bytes(pid)},
        "mvs1_routing_packets_in": after["packets_in"].as_u64().unwrap_or(0)
            - before["packets_in"].as_u64().unwrap_or(0),
        "drops": drops_delta(&before, &after),
        "dct_after": after["dct"],
        "replay_top_before": before["replay_top"],
        "replay_top_after": after["replay_top"],
    })
}

/// The inbound SAs of MVS1 (SPI, client), from `plexnet ipsec MVS1 --json`.
fn inbound_sas() -> Vec<(u32, Ipv4Addr)> {
    let d = json_of(&["ipsec", "MVS1", "--json"]);
    d["owned"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["direction"] == "in" && r["protocol"] == "ESP")
        .filter_map(|r| {
            let spi = u32::from_str_radix(r["spi"].as_str()?.trim_start_matches("0x"), 16).ok()?;
            Some((spi, r["src"].as_str()?.parse().ok()?))
        })
        .collect()
}

/// Both clients have an SA and get answers; the targets listen on DVA1:60.
fn prepare() {
    lab::iperf3_servers(PREFIX, &["mvs1", "mvs2", "mvs4"], &["60"]);
    lab::wait_ready_targets(PREFIX, "MVS1", 60, 3, 30);
    lab::swanctl_ok(PREFIX, &["--initiate", "--child", "dva1"]);
    lab::wait_until("both clients' SAs at MVS1", 30, || inbound_sas().len() >= 2);
    for client in ["client1", "client2"] {
        lab::wait_until("an answer", 30, || lab::curl_dva1(PREFIX, client).is_ok());
    }
}

/// Failures against the pass criteria of the module doc.
fn verdict(phases: &[Value], bound: u64, after_curls: &Value, alive: bool) -> Vec<String> {
    let mut bad = Vec::new();
    for p in phases {
        let name = p["phase"].as_str().unwrap_or("");
        for (client, c) in p["curl"].as_object().into_iter().flatten() {
            if c["failed"].as_u64() != Some(0) {
                bad.push(format!("{name}: {client} had {} failed curls", c["failed"]));
            }
        }
        let peak = p["rss_bytes"]["peak"].as_u64().unwrap_or(u64::MAX);
        if peak > bound {
            bad.push(format!(
                "{name}: MVS1 RSS peak {peak} B over the bound {bound} B"
            ));
        }
    }
    if let Some(esp) = phases.iter().find(|p| p["phase"] == "forged-esp") {
        if esp["replay_top_before"] != esp["replay_top_after"] {
            bad.push("forged-esp: a replay window moved".into());
        }
    }
    if after_curls["failed"].as_u64() != Some(0) {
        bad.push(format!("curls after the floods failed: {after_curls}"));
    }
    if !alive {
        bad.push("a daemon stopped answering".into());
    }
    bad
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench-flood needs root (namespaces, raw sockets): run `sudo make bench-flood`");
        std::process::exit(1);
    }
    let seconds: u64 = std::env::var("PLEXNET_BENCH_FLOOD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let work = std::env::temp_dir().join(format!("plxflood-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let _cleanup = Cleanup;
    let _ = lab::plexnet(PREFIX, &["down", "--all"]);
    if netns::exists(ATTACKER) {
        let _ = netns::delete(ATTACKER);
    }
    ok(&["up", &topology(&work)]);
    attach_attacker();
    prepare();
    let pid = pid_of("MVS1");
    let baseline = rss_bytes(pid);
    let bound = baseline + DCT_MAX * RSS_PER_ENTRY + RSS_SLACK;
    let mut phases = vec![
        phase("syn-filtered", Load::Syn { port: 80 }, seconds, true, pid),
        phase("syn-dct", Load::Syn { port: 60 }, seconds, true, pid),
    ];
    let sas = inbound_sas();
    phases.push(phase(
        "forged-esp",
        Load::Esp { sas: sas.clone() },
        seconds,
        false,
        pid,
    ));
    let (mut answered, mut failed) = (0, 0);
    for client in ["client1", "client2"].iter().cycle().take(10) {
        match lab::curl_dva1(PREFIX, client) {
            Ok(_) => answered += 1,
            Err(_) => failed += 1,
        }
    }
    let after_curls = json!({"ok": answered, "failed": failed});
    // Every plexnet daemon still answers (net is a plain router, client1's
    // IPsec is strongSwan's).
    let nodes = daemons();
    let alive = ["MVS1", "MVS2", "MVS3", "MVS4", "MVS5", "CF", "client2"]
        .iter()
        .all(|n| nodes.get(*n).is_some_and(|d| d["pid"].as_u64().is_some()));
    let bad = verdict(&phases, bound, &after_curls, alive);
    let report = json!({
        "what": "figure4 with [limits] dct_max_entries under spoofed SYNs (to DVA1:80, denied in clear by the filter; to DVA1:60, permitted in clear, into the DCT) and forged ESP (valid SPIs, random sequence numbers and contents), from a raw socket in a namespace attached to net",
        "dct_max_entries": DCT_MAX,
        "forged_esp_sas": sas.iter().map(|(spi, src)| json!({"spi": format!("{spi:#010x}"), "src": src})).collect::<Vec<_>>(),
        "rss_bound_bytes": bound,
        "rss_bound": format!("MVS1's RSS before ({baseline} B) + {RSS_PER_ENTRY} B x {DCT_MAX} entries + {RSS_SLACK} B"),
        "phases": phases,
        "curls_after": after_curls,
        "daemons_alive": alive,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "pass": bad.is_empty(),
        "failures": bad,
    });
    let out = Path::new("target/bench");
    std::fs::create_dir_all(out).expect("target/bench");
    let text = serde_json::to_vec_pretty(&report).expect("json");
    std::fs::write(out.join("flood.json"), text).expect("flood.json");
    let _ = std::fs::remove_dir_all(&work);
    println!("target/bench/flood.json written");
    if !bad.is_empty() {
        eprintln!("bench-flood FAILED:\n  {}", bad.join("\n  "));
        drop(_cleanup);
        std::process::exit(1);
    }
}
