//! Issue 4 in real namespaces: the Sysplex Distributor with distributed
//! IPsec, driven by curl and iperf3 from client1 (plexnet client, manual
//! ESP tunnel AES-CBC + HMAC-SHA1 to DVA1) against figure4.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

const FIGURE4: &str = "topologies/figure4-manual.toml";

fn shadow_in_packets(prefix: &str, image: &str) -> u64 {
    let v = json(prefix, &["ipsec", image, "--json"]);
    v["shadow"]
        .as_array()
        .expect("shadow SAs")
        .iter()
        .filter(|r| r["direction"] == "in")
        .map(|r| r["packets"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn curl_through_the_tunnel_is_distributed_and_decrypted_only_by_targets() {
    const PREFIX: &str = "plxs-";
    if !can_use_namespaces("curl_through_the_tunnel_is_distributed_and_decrypted_only_by_targets") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", FIGURE4]);
    wait_ready_targets(PREFIX, "MVS1", 80, 3, 20);

    let mut lan = Capture::start(PREFIX, "client1", "lan", "host 198.18.0.100");
    let mut mvs2_ext = Capture::start(PREFIX, "MVS2", "ext", "esp");
    let answers: Vec<String> = (0..20)
        .map(|_| curl_dva1(PREFIX, "client1").expect("curl DVA1"))
        .collect();
    let vcrt = json(PREFIX, &["netstat", "MVS1", "vcrt", "--json"]);
    lan.stop();
    mvs2_ext.stop();

    // 20 answers, from at least two images.
    assert!(
        answers.iter().all(|a| a.starts_with("served by MVS")),
        "{answers:?}"
    );
    let servers: BTreeSet<&str> = answers.iter().map(|a| a.trim()).collect();
    assert!(servers.len() >= 2, "all answered by {servers:?}");

    // The VCRT lists the connections on their targets.
    let rows = vcrt["vcrt"].as_array().expect("vcrt rows");
    let targets: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r["dest_image"].as_str())
        .collect();
    assert!(rows.len() >= 2 && targets.len() >= 2, "VCRT: {vcrt}");
    assert!(rows.iter().all(|r| r["ipsec"] == true), "VCRT: {vcrt}");

    // The routing stack only peeked; each packet was decrypted once, by
    // the target of its connection.
    let mvs1 = json(PREFIX, &["ipsec", "MVS1", "--json"]);
    let peeks = mvs1["owned"][0]["peeks"].as_u64().expect("peeks");
    let opened: Vec<u64> = ["MVS1", "MVS2", "MVS4"]
        .iter()
        .map(|i| shadow_in_packets(PREFIX, i))
        .collect();
    assert_eq!(
        opened.iter().sum::<u64>(),
        peeks,
        "opened per target {opened:?}, peeks {peeks}"
    );
    assert!(
        opened[0] < peeks,
        "MVS1 decrypted only its own connections: {opened:?} of {peeks}"
    );
    assert!(opened[1] > 0 && opened[2] > 0, "{opened:?}");

    // Targets' replies leave by their own external link.
    let from_mvs2 = mvs2_ext.read("src host 198.18.0.100 and esp");
    assert!(!from_mvs2.is_empty(), "no ESP from the DVIPA on MVS2's ext");

    // No plaintext to or from the DVIPA on client1's wire...
    let clear = lan.read("host 198.18.0.100 and not esp");
    assert!(
        clear.is_empty(),
        "plaintext on client1's wire:\n{}",
        clear.join("\n")
    );
    // ...and tshark, with the keys `plexnet ipsec --wireshark-keys` prints,
    // decrypts and authenticates every ESP packet there.
    let keys = ok(PREFIX, &["ipsec", "MVS1", "--wireshark-keys"]);
    let mut tshark = Command::new("tshark");
    tshark.arg("-n").arg("-r").arg(&lan.path);
    tshark.args([
        "-o",
        "esp.enable_encryption_decode:TRUE",
        "-o",
        "esp.enable_authentication_check:TRUE",
    ]);
    for line in keys.lines().filter(|l| l.starts_with("\"IPv4\"")) {
        tshark.arg("-o").arg(format!("uat:esp_sa:{line}"));
    }
    tshark.args(["-Y", "esp", "-T", "fields", "-E", "separator=;"]);
    tshark.args([
        "-e",
        "esp.spi",
        "-e",
        "esp.icv_good",
        "-e",
        "tcp.dstport",
        "-e",
        "tcp.srcport",
    ]);
    let out = tshark.output().expect("tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() >= 20 * 5,
        "too few ESP packets: {}",
        lines.len()
    );
    for l in &lines {
        let f: Vec<&str> = l.split(';').collect();
        assert_eq!(f.get(1), Some(&"1"), "ICV not good: {l}");
        assert!(
            f.get(2).is_some_and(|p| !p.is_empty()),
            "not decrypted: {l}"
        );
    }
    eprintln!(
        "20 curls answered by {servers:?}; {peeks} peeks at MVS1, opened {opened:?}; tshark verified {} ESP packets",
        lines.len()
    );
    ok(PREFIX, &["down", "--all"]);
    assert!(namespaces(PREFIX).is_empty());
}

#[test]
fn iperf3_over_three_targets_has_no_replay_drops() {
    const PREFIX: &str = "plxp-";
    if !can_use_namespaces("iperf3_over_three_targets_has_no_replay_drops") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", FIGURE4]);
    let ports = ["5201", "5202", "5203", "5204"];
    iperf3_servers(PREFIX, &["MVS1", "MVS2", "MVS4"], &ports);
    for p in [5201u16, 5202, 5203, 5204] {
        wait_ready_targets(PREFIX, "MVS1", p, 3, 20);
    }
    // Four iperf3 clients at once, one connection each (plus control);
    // TIMEDAFFINITY keeps each on one target, round robin spreads them.
    let clients: Vec<_> = ports
        .iter()
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_plexnet"))
                .args([
                    "--prefix", PREFIX, "exec", "client1", "--", "iperf3", "-c", "DVA1", "-p", p,
                    "-t", "10", "-J",
                ])
                .output_later()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let vcrt = json(PREFIX, &["netstat", "MVS1", "vcrt", "--json"]);
    let mut mbits = 0.0;
    for c in clients {
        let out = c.wait_with_output().expect("iperf3");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 -J output");
        assert!(v.get("error").is_none(), "iperf3 failed: {}", v["error"]);
        mbits += v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or(0.0)
            / 1e6;
    }
    let targets: BTreeSet<&str> = vcrt["vcrt"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| {
            r["port"]
                .as_u64()
                .is_some_and(|p| (5201..=5204).contains(&p))
        })
        .filter_map(|r| r["dest_image"].as_str())
        .collect();
    assert!(targets.len() >= 2, "iperf3 connections on {targets:?}");
    let client = json(PREFIX, &["status", "--json"]);
    let c1 = client[0]["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == "client1"))
        .expect("client1")["daemon"]
        .clone();
    assert_eq!(c1["replay_drops"], 0, "client replay drops: {c1}");
    eprintln!(
        "4 iperf3 streams over {targets:?}: {mbits:.0} Mbit/s in total, 0 replay drops at client1"
    );
    ok(PREFIX, &["down", "--all"]);
    assert!(namespaces(PREFIX).is_empty());
}

trait OutputLater {
    fn output_later(&mut self) -> std::process::Child;
}

impl OutputLater for Command {
    fn output_later(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn")
    }
}
