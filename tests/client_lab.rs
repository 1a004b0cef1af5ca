//! `plexnet up` starts `plexnet client` for client1 of figure4 (ipsec =
//! "plexnet"): its daemon answers status with its SA, traffic to DVA1
//! leaves client1 only as ESP, and DVB1, which no manual SA protects, is
//! still reached in the clear.
//!
//! Whether DVA1 answers through the tunnel depends on the sysplex side
//! (the routing stack terminating the manual SA); this test checks the
//! client end only.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Not `plxc-`: `down --all` of this test must not touch the namespaces of
/// tests/client_tunnel.rs.
const PREFIX: &str = "plxcl-";

fn client1(status: &serde_json::Value) -> serde_json::Value {
    status
        .as_array()
        .and_then(|a| a.iter().find(|i| i["prefix"] == PREFIX))
        .and_then(|i| i["nodes"].as_array())
        .and_then(|n| n.iter().find(|n| n["name"] == "client1"))
        .cloned()
        .unwrap_or_else(|| panic!("client1 not in status: {status}"))
}

fn status() -> serde_json::Value {
    serde_json::from_str(&ok(PREFIX, &["status", "--json"])).expect("status is JSON")
}

#[test]
fn up_runs_plexnet_client_for_client1() {
    if !can_use_namespaces("up_runs_plexnet_client_for_client1") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", "topologies/figure4-manual.toml"]);

    let node = client1(&status());
    assert_eq!(node["ready"], true, "{node}");
    let daemon = &node["daemon"];
    assert_eq!(daemon["role"], "client", "{daemon}");
    assert_eq!(daemon["as_peer"], false);
    assert_eq!(daemon["peers"], serde_json::json!(["198.18.0.100"]));
    assert_eq!(daemon["outbound"][0]["spi"], "0x50000011");
    assert_eq!(daemon["outbound"][0]["suite"], "aes128-sha1");
    assert_eq!(daemon["inbound"][0]["spi"], "0x50000012");
    assert!(
        daemon["summary"]
            .as_str()
            .is_some_and(|s| s.contains("ESP tunnel aes128-sha1 to 198.18.0.100")),
        "{daemon}"
    );

    // DVB1 has no manual SA: reached in the clear, answered by MVS5.
    let ping = ok(
        PREFIX,
        &[
            "exec", "client1", "--", "ping", "-c", "2", "-i", "0.2", "-W", "2", "DVB1",
        ],
    );
    assert!(ping.contains("2 received"), "{ping}");

    // DVA1: capture client1's LAN link while pinging it.
    let pcap = tempfile::NamedTempFile::new().expect("a temporary file");
    let pcap_path = pcap.path().to_str().expect("UTF-8").to_owned();
    let mut dump = Command::new(env!("CARGO_BIN_EXE_plexnet"))
        .args(["--prefix", PREFIX, "exec", "client1", "--"])
        .args([
            "tcpdump",
            "-i",
            "lan",
            "-n",
            "-U",
            "--immediate-mode",
            "-w",
            &pcap_path,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    let start = std::time::Instant::now();
    while std::fs::metadata(&pcap_path).map_or(0, |m| m.len()) < 24 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tcpdump did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The sysplex answers; what matters here is what the client sends.
    let _ = plexnet(
        PREFIX,
        &[
            "exec", "client1", "--", "ping", "-c", "3", "-i", "0.2", "-W", "1", "DVA1",
        ],
    );
    std::thread::sleep(Duration::from_millis(200));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dump.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = dump.wait();
    let out = Command::new("tcpdump")
        .args(["-n", "-r", &pcap_path, "host 198.18.0.100"])
        .output()
        .expect("tcpdump -r");
    let text = String::from_utf8_lossy(&out.stdout);
    let to_dva1: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("198.18.1.2 > 198.18.0.100"))
        .collect();
    assert!(
        to_dva1.len() >= 3,
        "client1 sent nothing to DVA1:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        to_dva1.iter().all(|l| l.contains("ESP(spi=0x50000011")),
        "client1 sent to DVA1 outside the tunnel:\n{text}"
    );

    let daemon = client1(&status())["daemon"].clone();
    let out_packets = daemon["outbound"][0]["packets"].as_u64().unwrap_or(0);
    assert!(out_packets >= 3, "{daemon}");
    let drops: u64 = daemon["outbound_drops"]
        .as_object()
        .expect("drop map")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert_eq!(drops, 0, "{daemon}");
    assert_eq!(daemon["replay_drops"], 0, "{daemon}");

    ok(PREFIX, &["down", "--all"]);
    assert!(namespaces(PREFIX).is_empty());
}
