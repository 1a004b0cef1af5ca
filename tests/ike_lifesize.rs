//! Byte-lifesize rekeying, live (issue 5, "rekeys a child SA before its
//! soft lifesize in bytes, counting the bytes that targets report"; patent
//! Fig. 9 blocks 154–158, Fig. 10 blocks 166–168).
//!
//! figure4 with a RefreshLifesizeProposed of a few megabytes
//! (prefix `plxil-`): strongSwan in client1 sends 24 MB with iperf3 to
//! DVA1. The targets decrypt, count and report in batches; MVS1's IKE
//! rekeys each time the reported bytes reach the soft limit, the new pair
//! reaches every shadow cache before the old one is deleted, and iperf3
//! never notices.
//!
//! Needs root, TUN, strongSwan and iperf3; see `tests/common/mod.rs`.

mod common;

use common::*;

const PREFIX: &str = "plxil-";
const REKEY_BYTES: u64 = 3_000_000;
const SEND_MB: u64 = 24;

fn images() -> serde_json::Value {
    let st = json(PREFIX, &["status", "--json"]);
    let inst = st
        .as_array()
        .and_then(|a| a.iter().find(|i| i["prefix"] == PREFIX))
        .cloned()
        .expect("our instance");
    let mut by_name = serde_json::Map::new();
    for n in inst["nodes"].as_array().expect("nodes") {
        if n["kind"] == "image" {
            let name = n["name"].as_str().unwrap_or_default().to_owned();
            by_name.insert(name, n["daemon"].clone());
        }
    }
    serde_json::Value::Object(by_name)
}

fn ike_counter(name: &str) -> u64 {
    images()["MVS1"]["ike"]["counters"][name]
        .as_u64()
        .unwrap_or(0)
}

fn shadow_sas(image: &str) -> u64 {
    images()[image]["target"]["shadow_sas"]
        .as_u64()
        .unwrap_or(99)
}

fn swanctl_ok(args: &[&str]) -> String {
    let mut a = vec!["exec", "client1", "--", "swanctl"];
    a.extend_from_slice(args);
    ok(PREFIX, &a)
}

/// figure4 with byte lifesizes on every child SA: each IpDataOffer of the
/// Policy Agent policy gets `RefreshLifesizeProposed` (in KB, z/OS's unit);
/// the hard lifesize is the soft one + 10 % (strongSwan's margin).
fn topology(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string("topologies/figure4.toml").expect("figure4.toml");
    let offer = "  HowToAuth                ESP ";
    assert!(text.contains(offer), "figure4.toml has IpDataOffers");
    let text = text.replace(
        offer,
        &format!("  RefreshLifesizeProposed  {}\n{offer}", REKEY_BYTES / 1024),
    );
    let path = dir.join("figure4-lifesize.toml");
    std::fs::write(&path, text).expect("write topology");
    path
}

#[test]
fn byte_lifesize_rekeys_from_target_reports_under_iperf3() {
    if !can_use_namespaces("byte_lifesize_rekeys_from_target_reports_under_iperf3") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    let dir = std::env::temp_dir().join(format!("plexnet-ike-lifesize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let topo = topology(&dir);
    ok(PREFIX, &["up", &topo.display().to_string()]);
    // client2's own IKE SA is in the caches from the start.
    wait_until("client2's pair in MVS2's cache", 10, || {
        shadow_sas("MVS2") == 1
    });

    let init = swanctl_ok(&["--initiate", "--child", "dva1"]);
    assert!(init.contains("initiate completed successfully"), "{init}");
    iperf3_servers(PREFIX, &["MVS1", "MVS2", "MVS4"], &["5201"]);
    wait_ready_targets(PREFIX, "MVS1", 5201, 3, 20);
    let rekeyed_before = ike_counter("child_sas_rekeyed");
    let bytes = (SEND_MB << 20).to_string();
    let out = plexnet(
        PREFIX,
        &[
            "exec",
            "client1",
            "--",
            "timeout",
            "90",
            "iperf3",
            "-c",
            "198.18.0.100",
            "-p",
            "5201",
            "-n",
            &bytes,
            "-J",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 -J output");
    assert!(
        out.status.success() && report.get("error").is_none(),
        "iperf3 failed: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server's count ends at its last interval, a little short of
    // what was sent.
    let received = report["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(
        received >= (SEND_MB << 20) * 9 / 10,
        "received {received} bytes"
    );

    // Every soft limit's worth of reported bytes made a rekey, started by
    // MVS1 (strongSwan has no byte limits here).
    let rekeys = ike_counter("child_sas_rekeyed") - rekeyed_before;
    let soft_limits = (SEND_MB << 20) / REKEY_BYTES;
    assert!(
        rekeys >= soft_limits / 2 && rekeys <= soft_limits + 2,
        "{rekeys} rekeys for {SEND_MB} MB with rekey_bytes {REKEY_BYTES}"
    );
    assert!(ike_counter("lifesize_reports") >= soft_limits);
    eprintln!(
        "{SEND_MB} MB: {rekeys} rekeys, {} late, {} lifesize reports",
        ike_counter("rekeys_late"),
        ike_counter("lifesize_reports")
    );
    // The old pairs went everywhere once their successors were in place:
    // client1's one pair and client2's one pair in each cache.
    wait_until("old pairs deleted from every cache", 10, || {
        ["MVS1", "MVS2", "MVS4"]
            .iter()
            .all(|img| shadow_sas(img) == 2)
    });
    let sas = swanctl_ok(&["--list-sas"]);
    assert!(
        sas.contains("dva1: #") && sas.contains("INSTALLED"),
        "{sas}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
