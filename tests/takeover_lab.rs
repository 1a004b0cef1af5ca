//! VIPA takeover in real namespaces (DESIGN.md: "If the routing stack dies,
//! a backup takes the DVIPA over and rebuilds the shadow SAs"): figure4's
//! MVS1 owns DVA1 and MVS5 backs it up (VIPABACKUP 100, DESTIP MVS2 MVS3
//! MVS4). MVS1's daemon is killed with SIGKILL; MVS5 must hold DVA1 within
//! a bounded time, continue connections MVS1 had sent to MVS2 and MVS4
//! over the same SAs (read from the CF), and answer IKE for DVA1.

mod common;

use common::*;
use std::time::{Duration, Instant};

const PREFIX: &str = "plxto-";
const DVA1: &str = "198.18.0.100";

fn json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    if !a.contains(&"--json") {
        a.push("--json");
    }
    serde_json::from_str(&ok(PREFIX, &a)).expect("JSON")
}

/// A node of `status --json` (which exits non-zero once MVS1 is dead).
fn node(name: &str) -> serde_json::Value {
    status_node(PREFIX, name)
}

/// DVA1's row in `netstat NODE vipadcfg`'s VIPA status.
fn dva1_status(image: &str) -> serde_json::Value {
    vipa_status(PREFIX, image, DVA1)
}

/// Kills MVS1's daemon with SIGKILL (its pid from `status --json`) and
/// waits until MVS5 holds DVA1; returns how long that took.
fn kill_mvs1_and_wait_for_mvs5() -> Duration {
    kill_and_wait_for_mvs5(mvs1_pid())
}

fn mvs1_pid() -> i32 {
    node("MVS1")["pid"].as_i64().expect("MVS1's pid") as i32
}

/// [`kill_mvs1_and_wait_for_mvs5`] with MVS1's `pid` looked up before.
fn kill_and_wait_for_mvs5(pid: i32) -> Duration {
    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 MVS1");
    wait_until("MVS5 holding DVA1", 10, || {
        let r = dva1_status("MVS5");
        r["state"] == "Active" && r["holder"] == "MVS5"
    });
    t0.elapsed()
}

/// Every curl is answered by one of MVS5's DESTIP images for DVA1.
fn curls_answered_by_the_backups_targets(n: usize) -> Vec<String> {
    let mut by = Vec::new();
    for _ in 0..n {
        let a = curl_dva1(PREFIX, "client1").expect("curl DVA1 after the takeover");
        assert!(
            ["served by MVS2", "served by MVS3", "served by MVS4"].contains(&a.as_str()),
            "{a}"
        );
        by.push(a);
    }
    by
}

/// Both scenarios share the prefix, so they run one after the other in one
/// test (cargo runs the tests of a file in parallel).
#[test]
fn takeover_with_manual_sas_then_with_strongswan() {
    if !can_use_namespaces("takeover_with_manual_sas_then_with_strongswan") {
        return;
    }
    backup_takes_dva1_over_and_continues_connections_with_manual_sas();
    backup_answers_ike_for_dva1_after_the_takeover();
}

fn backup_takes_dva1_over_and_continues_connections_with_manual_sas() {
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", "topologies/figure4-manual.toml"]);
    wait_ready_targets(PREFIX, "MVS1", 80, 3, 20);
    curl_dva1(PREFIX, "client1").expect("curl DVA1 before the takeover");
    assert_eq!(dva1_status("MVS1")["state"], "Active");
    assert_eq!(dva1_status("MVS5")["state"], "Backup");

    // Three connections half way through their request: round robin puts
    // them on MVS1, MVS2 and MVS4. MVS1 dies right after they are open,
    // most likely before its DCT journal (written every 50 ms) took them:
    // MVS5 learns them from the CF or from MVS2's and MVS4's reports.
    let pid = mvs1_pid();
    let half_open = HalfOpen::start(PREFIX, "client1", 5, 3);
    let took = kill_and_wait_for_mvs5(pid);
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    let answers = half_open.finish();

    // The connections on MVS2 and MVS4 continued through MVS5: their
    // second half reached the server, which answered at once.
    let continued: Vec<&String> = answers
        .iter()
        .filter(|a| a.ends_with("served_by_MVS2") || a.ends_with("served_by_MVS4"))
        .collect();
    assert_eq!(
        continued.len(),
        2,
        "answers after the takeover: {answers:?}"
    );
    let vcrt = json(&["netstat", "MVS5", "vcrt"]);
    for a in &continued {
        let port: u64 = a
            .split(' ')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        let row = vcrt["vcrt"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["client_port"] == port))
            .unwrap_or_else(|| panic!("connection {port} not in MVS5's VCRT: {vcrt}"));
        assert!(row["packets"].as_u64() > Some(0), "{row}");
    }

    // New connections: MVS5's distribution, over the SA MVS1 installed
    // (adopted from the CF, its sequence numbers still from the CF).
    let by = curls_answered_by_the_backups_targets(6);
    assert!(by.contains(&"served by MVS3".to_string()), "{by:?}");
    let mvs5 = node("MVS5");
    let t = &mvs5["daemon"]["takeover"];
    assert_eq!(t["events"][0]["previous"], "MVS1", "{t}");
    assert!(t["counters"]["sas_adopted"].as_u64() >= Some(1), "{t}");
    // Each continued connection came from the CF's copy or, when MVS1
    // died before its journal write, from its target's report.
    let reports = &mvs5["daemon"]["routing"]["counters"]["reports"];
    let restored = t["counters"]["connections_restored"].as_u64().unwrap_or(0);
    let recovered = reports["recovered"].as_u64().unwrap_or(0);
    eprintln!("MVS5: {restored} connections from the CF, {recovered} from target reports");
    assert!(restored + recovered >= 2, "{t} {reports}");
    assert!(
        reports["recovered"]
            .as_u64()
            .zip(reports["known"].as_u64())
            .map(|(r, k)| r + k)
            >= Some(2),
        "MVS2 and MVS4 reported their connections: {reports}"
    );
    assert!(
        mvs5["daemon"]["owned_dvipas"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d == DVA1)),
        "{mvs5}"
    );
    let cf = node("CF");
    let seq = &cf["daemon"]["cf"]["cf"]["counters"]["errors"];
    assert_eq!(
        seq["seq_exists"], 0,
        "a sequence structure was created twice: {seq}"
    );
}

fn swanctl_ok(args: &[&str]) -> String {
    let mut a = vec!["exec", "client1", "--", "swanctl"];
    a.extend_from_slice(args);
    ok(PREFIX, &a)
}

fn backup_answers_ike_for_dva1_after_the_takeover() {
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", "topologies/figure4.toml"]);
    swanctl_ok(&["--initiate", "--child", "dva1"]);
    wait_ready_targets(PREFIX, "MVS1", 80, 3, 20);
    curl_dva1(PREFIX, "client1").expect("curl DVA1 before the takeover");

    kill_mvs1_and_wait_for_mvs5();
    // The old IKE SA died with MVS1 (its state is not in the CF): MVS5's
    // IKE negotiates anew with client1 by itself, and the new child SA
    // replaces the pair adopted from the CF, without the client doing
    // anything.
    wait_until("MVS5's own IKE SA with client1", 15, || {
        let ike = &node("MVS5")["daemon"]["ike"];
        ike["counters"]["renegotiated"].as_u64() >= Some(1)
            && ike["counters"]["child_sas_installed"].as_u64() >= Some(1)
            && ike["sas"]
                .as_array()
                .is_some_and(|s| s.iter().any(|sa| sa["dvipa"] == DVA1))
    });
    let sas = swanctl_ok(&["--list-sas"]);
    assert!(
        sas.contains("dva1: #") && sas.contains("INSTALLED"),
        "{sas}"
    );
    wait_ready_targets(PREFIX, "MVS5", 80, 3, 20);
    curls_answered_by_the_backups_targets(6);
}
