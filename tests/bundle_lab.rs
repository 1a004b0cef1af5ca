//! The patent's "Combined AH,ESP / Tunnel" row in real namespaces
//! (topologies/bundle-manual.toml): client1 runs `plexnet client` with a
//! manually keyed AH+ESP bundle to DVA1 (AH outside ESP, RFC 4301 §4.3).
//! MVS1, DVA1's routing stack, only peeks (Fig. 8 block 132) and forwards;
//! MVS2 and MVS3 open AH and ESP with their shadow bundle (Fig. 9) and seal
//! the replies with both, numbered from two CF structures (Fig. 10).

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

const TOPOLOGY: &str = "topologies/bundle-manual.toml";
const PREFIX: &str = "plxab-";
const TARGETS: [&str; 2] = ["MVS2", "MVS3"];

/// `plexnet ipsec IMAGE --json` rows of `table` ("owned" or "shadow").
fn rows(prefix: &str, image: &str, table: &str) -> Vec<serde_json::Value> {
    json(prefix, &["ipsec", image, "--json"])[table]
        .as_array()
        .unwrap_or_else(|| panic!("{image}: no {table} SAs"))
        .clone()
}

/// The packets of the row with `protocol` and `direction`, which must be
/// bundled with another SA.
fn bundled_packets(rows: &[serde_json::Value], protocol: &str, direction: &str) -> u64 {
    let row = rows
        .iter()
        .find(|r| r["protocol"] == protocol && r["direction"] == direction)
        .unwrap_or_else(|| panic!("no {protocol} {direction} row in {rows:?}"));
    assert!(
        row["bundled_with"].is_string(),
        "not shown as a bundle: {row}"
    );
    row["packets"].as_u64().expect("packets")
}

/// tshark's view of the captured bundle packets with the ESP keys
/// `plexnet ipsec --wireshark-keys` prints: one `ah.spi;esp.spi;tcp.srcport`
/// line per packet.
fn tshark_fields(pcap: &std::path::Path, keys: &str) -> Vec<String> {
    let mut tshark = Command::new("tshark");
    tshark.arg("-n").arg("-r").arg(pcap);
    tshark.args(["-o", "esp.enable_encryption_decode:TRUE"]);
    for line in keys.lines().filter(|l| l.starts_with("\"IPv4\"")) {
        tshark.arg("-o").arg(format!("uat:esp_sa:{line}"));
    }
    tshark.args(["-Y", "ah", "-T", "fields", "-E", "separator=;"]);
    tshark.args(["-e", "ah.spi", "-e", "esp.spi", "-e", "tcp.srcport"]);
    let out = tshark.output().expect("tshark");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn ah_esp_bundle_is_peeked_at_the_routing_stack_and_opened_by_targets() {
    if !can_use_namespaces("ah_esp_bundle_is_peeked_at_the_routing_stack_and_opened_by_targets") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", TOPOLOGY]);
    // Both DESTIPs (MVS2, MVS3) registered on DVA1:80.
    wait_ready_targets(PREFIX, "MVS1", 80, 2, 15);

    let mut lan = Capture::start(PREFIX, "client1", "lan", "host 198.18.0.100");
    let answers: Vec<String> = (0..12)
        .map(|_| curl_dva1(PREFIX, "client1").expect("curl DVA1"))
        .collect();
    lan.stop();

    // Answered, by both targets.
    assert!(
        answers.iter().all(|a| a.starts_with("served by MVS")),
        "{answers:?}"
    );
    let servers: BTreeSet<&str> = answers.iter().map(|a| a.trim()).collect();
    assert!(servers.len() >= 2, "all answered by {servers:?}");

    // MVS1 peeked every packet through AH into ESP and decrypted none.
    let mvs1 = json(PREFIX, &["ipsec", "MVS1", "--json"]);
    let peeks = mvs1["peeks"].as_u64().expect("peeks");
    assert!(peeks >= 12 * 4, "{mvs1}");
    assert_eq!(mvs1["opened"], 0, "the routing stack decrypted: {mvs1}");
    let owned = rows(PREFIX, "MVS1", "owned");
    let owned_ah = owned
        .iter()
        .find(|r| r["protocol"] == "AH" && r["direction"] == "in")
        .unwrap_or_else(|| panic!("no owned AH SA: {owned:?}"));
    assert_eq!(owned_ah["peeks"], peeks, "{owned_ah}");
    assert_eq!(owned_ah["forwarded"], peeks, "{owned_ah}");

    // Each forwarded packet was opened once, by its target, with AH and
    // ESP; replies were sealed with both there.
    let mut opened = 0;
    for t in TARGETS {
        let shadow = rows(PREFIX, t, "shadow");
        let (ah_in, esp_in) = (
            bundled_packets(&shadow, "AH", "in"),
            bundled_packets(&shadow, "ESP", "in"),
        );
        let (ah_out, esp_out) = (
            bundled_packets(&shadow, "AH", "out"),
            bundled_packets(&shadow, "ESP", "out"),
        );
        assert!(ah_in > 0 && ah_in == esp_in, "{t}: AH {ah_in} ESP {esp_in}");
        assert!(
            ah_out > 0 && ah_out == esp_out,
            "{t}: AH {ah_out} ESP {esp_out}"
        );
        opened += esp_in;
    }
    assert_eq!(opened, peeks, "opened at targets vs peeked at MVS1");

    // The client's inbound bundle: everything opened, nothing replayed.
    let status = json(PREFIX, &["status", "--json"]);
    let client = status
        .as_array()
        .and_then(|a| a.iter().find(|i| i["prefix"] == PREFIX))
        .and_then(|i| i["nodes"].as_array())
        .and_then(|n| n.iter().find(|n| n["name"] == "client1"))
        .unwrap_or_else(|| panic!("client1 not in {status}"))
        .clone();
    let inbound = client["daemon"]["inbound"].as_array().expect("inbound SAs");
    assert_eq!(inbound.len(), 2, "{inbound:?}");
    for sa in inbound {
        assert!(sa["packets"].as_u64().unwrap_or(0) > 0, "{sa}");
        assert_eq!(sa["replay_drops"], 0, "{sa}");
    }

    // On client1's wire, every packet to or from DVA1 is AH over ESP...
    let not_ah = lan.read("host 198.18.0.100 and not ip proto 51");
    assert!(not_ah.is_empty(), "not AH:\n{}", not_ah.join("\n"));
    // ...and with the ESP keys (no AH keys: tshark has none), tshark finds
    // the TCP of port 80 inside every one of them.
    let keys = ok(PREFIX, &["ipsec", "MVS1", "--wireshark-keys"]);
    assert_eq!(keys.lines().filter(|l| l.contains("0x5000001")).count(), 2);
    assert!(!keys.contains("0x50000013") && !keys.contains("0x50000014"));
    let packets = tshark_fields(&lan.path, &keys);
    assert!(packets.len() >= 12 * 8, "too few: {}", packets.len());
    for p in &packets {
        let f: Vec<&str> = p.split(';').collect();
        assert!(
            f.len() == 3 && f.iter().all(|x| !x.is_empty()),
            "not AH+ESP with TCP inside: {p}"
        );
    }
    eprintln!(
        "12 curls answered by {servers:?}; {peeks} peeks at MVS1, 0 opened there, {opened} at the targets; tshark read {} bundles",
        packets.len()
    );
    backup_adopts_the_bundle();
    ok(PREFIX, &["down", "--all"]);
    assert!(namespaces(PREFIX).is_empty());
}

/// MVS1 is killed: MVS2 (VIPABACKUP) takes DVA1 over with the bundle from
/// the CF, and the client's same bundle keeps being answered.
fn backup_adopts_the_bundle() {
    let status = json(PREFIX, &["status", "--json"]);
    let pid = status
        .as_array()
        .and_then(|a| a.iter().find(|i| i["prefix"] == PREFIX))
        .and_then(|i| i["nodes"].as_array())
        .and_then(|n| n.iter().find(|n| n["name"] == "MVS1"))
        .and_then(|n| n["pid"].as_i64())
        .unwrap_or_else(|| panic!("MVS1's pid in {status}"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 MVS1");
    // Active (not Moving): the takeover is complete, SAs adopted.
    wait_until("MVS2 holding DVA1", 10, || {
        let v = json(PREFIX, &["netstat", "MVS2", "vipadcfg", "--json"]);
        v["vipadcfg"]["status"].as_array().is_some_and(|rows| {
            rows.iter().any(|r| {
                r["dvipa"] == "198.18.0.100" && r["holder"] == "MVS2" && r["state"] == "Active"
            })
        })
    });
    let owned = rows(PREFIX, "MVS2", "owned");
    assert!(
        owned
            .iter()
            .any(|r| r["protocol"] == "AH" && r["direction"] == "in"),
        "MVS2 did not adopt the bundle: {owned:?}"
    );
    // MVS2 and MVS3 registered with MVS2.
    wait_ready_targets(PREFIX, "MVS2", 80, 2, 10);
    let answers: Vec<String> = (0..6)
        .map(|_| curl_dva1(PREFIX, "client1").expect("curl DVA1"))
        .collect();
    assert!(
        answers.iter().all(|a| a.starts_with("served by MVS")),
        "after the takeover: {answers:?}"
    );
    let servers: BTreeSet<&str> = answers.iter().map(|a| a.trim()).collect();
    assert_eq!(servers.len(), 2, "after the takeover: {servers:?}");
    let mvs2 = json(PREFIX, &["ipsec", "MVS2", "--json"]);
    assert!(mvs2["peeks"].as_u64().unwrap_or(0) >= 6 * 4, "{mvs2}");
    eprintln!("after MVS1's death, MVS2 holds DVA1 with the bundle: {answers:?}");
}
