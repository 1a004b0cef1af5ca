//! VIPA giveback in real namespaces (z/OS VIPADEFINE MOVEABLE IMMEDIATE):
//! figure4, strongSwan in client1 and `plexnet client` in client2, a curl
//! loop from both to DVA1 all along. MVS1 (DVA1's owner) is killed, MVS5
//! (VIPABACKUP 100) takes DVA1 over; connections are opened while MVS5
//! holds it; MVS1 restarts and MVS5 gives DVA1 back through the CF. No
//! curl fails, the connections opened under MVS5 keep working (MVS1 routes
//! them to MVS5's targets), and MVS1 owns DVA1 again with the SAs adopted
//! from the CF carrying the traffic until its IKE renegotiates (as z/OS
//! reestablishes SWSAs after a DVIPA moves).
//!
//! Needs root, TUN and strongSwan; see `tests/common/mod.rs`.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PREFIX: &str = "plxgive-";
const DVA1: &str = "198.18.0.100";

/// A node of `status --json`.
fn node(name: &str) -> serde_json::Value {
    status_node(PREFIX, name)
}

/// DVA1's row in `netstat NODE vipadcfg --json`'s VIPA status.
fn dva1_status(image: &str) -> serde_json::Value {
    vipa_status(PREFIX, image, DVA1)
}

/// A curl loop in `client` until `stop` exists: one line per request,
/// `200 <seconds> <local port> <start time>` or `fail <curl's exit code>
/// <http code> <seconds> <local port> <start time>`.
fn curl_loop(client: &str, stop: &Path) -> Child {
    let script = format!(
        "while [ ! -e {} ]; do \
           t=$(date +%s.%N); \
           out=$(curl -s -m 20 -o /dev/null -w '%{{http_code}} %{{time_total}} %{{local_port}}' http://{DVA1}/); rc=$?; \
           if [ $rc -eq 0 ]; then echo \"$out $t\"; else echo \"fail $rc $out $t\"; fi; \
           sleep 0.1; \
         done",
        stop.display()
    );
    Command::new(env!("CARGO_BIN_EXE_plexnet"))
        .args(["--prefix", PREFIX, "exec", client, "--", "sh", "-c"])
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl loop")
}

/// `plexnet kill MVS1` (SIGKILL) and waits until MVS5 holds DVA1.
fn kill_mvs1() -> Duration {
    let t0 = Instant::now();
    ok(PREFIX, &["kill", "MVS1"]);
    wait_until("MVS5 holding DVA1", 20, || {
        let r = dva1_status("MVS5");
        r["state"] == "Active" && r["holder"] == "MVS5"
    });
    t0.elapsed()
}

/// `plexnet restart MVS1`: its daemon starts again as `up` started it;
/// returns how long until it answered ready.
fn restart_mvs1() -> u64 {
    let r = json(PREFIX, &["restart", "MVS1", "--json"]);
    r["ready_after_ms"].as_u64().expect("ready_after_ms")
}

/// The curl loops' lines, per client.
fn stop_loops(stop: &Path, loops: Vec<(String, Child)>) -> Vec<(String, Vec<String>)> {
    std::fs::write(stop, b"").expect("stop file");
    loops
        .into_iter()
        .map(|(client, mut c)| {
            let out = c.stdout.take().expect("stdout");
            let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
            let _ = c.wait();
            (client, lines)
        })
        .collect()
}

/// Seconds since the epoch (the curl loops' `date +%s.%N` clock).
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A curl loop's line: whether it was answered, its duration, its start.
fn parse_curl(line: &str) -> (bool, f64, f64) {
    let f: Vec<&str> = line.split(' ').collect();
    let num = |i: usize| f.get(i).and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
    match f.first() {
        Some(&"200") => (true, num(1), num(3)),
        _ => (false, num(3), num(5)),
    }
}

/// Every request of a curl loop was answered, except one in flight when
/// MVS1 was killed (the connection may have been MVS1's own: z/OS
/// "Connections on the terminated stack will be disrupted", IP
/// Configuration Guide, "Moving a VIPA"); the kill is not what this test
/// is about, the giveback is: every request around it must be answered.
fn check_curls(client: &str, lines: &[String], killed_at: f64) {
    let parsed: Vec<(bool, f64, f64)> = lines.iter().map(|l| parse_curl(l)).collect();
    let in_flight_at_kill =
        |(_, took, start): &(bool, f64, f64)| *start <= killed_at && killed_at <= start + took;
    let failed: Vec<&String> = lines
        .iter()
        .zip(&parsed)
        .filter(|(_, p)| !p.0)
        .map(|(l, _)| l)
        .collect();
    let unexplained: Vec<&String> = lines
        .iter()
        .zip(&parsed)
        .filter(|(_, p)| !p.0 && !in_flight_at_kill(p))
        .map(|(l, _)| l)
        .collect();
    let slowest = parsed
        .iter()
        .filter(|p| p.0)
        .map(|p| p.1)
        .fold(0.0, f64::max);
    let slow: Vec<&String> = lines
        .iter()
        .zip(&parsed)
        .filter(|(_, p)| !p.0 || p.1 > 0.5)
        .map(|(l, _)| l)
        .collect();
    eprintln!(
        "{client}: {} requests, {} failed ({} in flight when MVS1 was killed), slowest answered {slowest:.3} s; slow or failed: {slow:?}",
        lines.len(),
        failed.len(),
        failed.len() - unexplained.len()
    );
    if !unexplained.is_empty() {
        diagnose();
    }
    assert!(lines.len() >= 20, "{client}: {lines:?}");
    assert!(failed.len() <= 1, "{client}: failed requests {failed:?}");
    assert!(
        unexplained.is_empty(),
        "{client}: failed requests {unexplained:?}"
    );
}

/// What the logs and charon say, for a failed run.
fn diagnose() {
    eprintln!(
        "{}",
        String::from_utf8_lossy(&swanctl(PREFIX, &["--list-sas"]).stdout)
    );
    let run_dir = plexnet::lab::state::run_dir("figure4", PREFIX);
    for n in ["MVS1", "MVS5", "client1"] {
        let log = plexnet::lab::state::log_path(&run_dir, n);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        eprintln!("--- {n} ({})", log.display());
        for l in tail.iter().rev() {
            eprintln!("{l}");
        }
    }
}

/// The tests of this file share their prefix: one lab at a time.
static ONE_LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn owner_restarts_and_takes_dva1_back_under_curl_loops() {
    if !can_use_namespaces("owner_restarts_and_takes_dva1_back_under_curl_loops") {
        return;
    }
    let _serial = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", "topologies/figure4.toml"]);
    swanctl_ok(PREFIX, &["--initiate", "--child", "dva1"]);
    wait_ready_targets(PREFIX, "MVS1", 80, 3, 30);
    for c in ["client1", "client2"] {
        wait_until(&format!("a first answer to {c}"), 30, || {
            curl_dva1(PREFIX, c).is_ok()
        });
    }
    assert_eq!(dva1_status("MVS1")["state"], "Active");
    assert_eq!(dva1_status("MVS1")["moveable"], "Immediate");
    assert_eq!(dva1_status("MVS5")["state"], "Backup");

    let dir = tempfile::tempdir().expect("temp dir");
    let stop = dir.path().join("stop");
    let loops: Vec<(String, Child)> = ["client1", "client2"]
        .iter()
        .map(|c| (c.to_string(), curl_loop(c, &stop)))
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    let killed_at = unix_now();
    let took_over = kill_mvs1();
    eprintln!("takeover by MVS5: {took_over:?}");
    // Connections opened while MVS5 holds DVA1 (its ROUNDROBIN over MVS2,
    // MVS3, MVS4), half way through their request.
    std::thread::sleep(Duration::from_secs(3));
    let held: Vec<HalfOpen> = ["client1", "client2"]
        .iter()
        .map(|c| HalfOpen::start(PREFIX, c, 10, 10))
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    eprintln!("restart at {:?}", std::time::SystemTime::now());
    let t0 = Instant::now();
    let ready_ms = restart_mvs1();
    wait_until("MVS1 holding DVA1 again", 30, || {
        let r = dva1_status("MVS1");
        r["state"] == "Active" && r["holder"] == "MVS1"
    });
    let gave_back = t0.elapsed();
    wait_until("MVS5 a backup again", 10, || {
        let r = dva1_status("MVS5");
        r["state"] == "Backup" && r["holder"] == "MVS1"
    });
    eprintln!(
        "giveback: MVS1 ready {ready_ms} ms after `plexnet restart`, holding DVA1 again after {gave_back:?}"
    );

    // The connections opened under MVS5 keep working through MVS1.
    for h in held {
        let answers = h.finish();
        assert_eq!(answers.len(), 3, "{answers:?}");
        for a in &answers {
            assert!(
                ["served_by_MVS2", "served_by_MVS3", "served_by_MVS4"]
                    .iter()
                    .any(|s| a.ends_with(s)),
                "a connection opened under MVS5 after the giveback: {answers:?}"
            );
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    let results = stop_loops(&stop, loops);

    for (client, lines) in &results {
        check_curls(client, lines, killed_at);
    }

    // MVS1 took DVA1 back from MVS5 (no takeover of its own): the SAs
    // and connections came from the CF; MVS5 counts the giveback.
    let mvs1 = node("MVS1");
    let t1 = &mvs1["daemon"]["takeover"];
    assert_eq!(t1["counters"]["takebacks"], 1, "{t1}");
    assert_eq!(t1["events"][0]["previous"], "MVS5", "{t1}");
    assert_eq!(t1["events"][0]["giveback"], true, "{t1}");
    assert!(t1["counters"]["sas_adopted"].as_u64() >= Some(1), "{t1}");
    assert!(
        t1["counters"]["connections_restored"].as_u64() >= Some(6),
        "{t1}"
    );
    let t5 = &node("MVS5")["daemon"]["takeover"];
    assert_eq!(t5["counters"]["givebacks"], 1, "{t5}");
    assert_eq!(t5["counters"]["givebacks_stopped"], 0, "{t5}");
    eprintln!("MVS5's giveback: {}", t5["givebacks"]);
    eprintln!(
        "MVS5's routing drops: {}",
        node("MVS5")["daemon"]["routing"]["counters"]["drops"]
    );
    eprintln!("MVS1's takeback: {}", t1["events"]);
    eprintln!("MVS1's IKE: {}", mvs1["daemon"]["ike"]["counters"]);
    let client2 = node("client2");
    eprintln!(
        "client2: {} replay drops {}",
        client2["daemon"]["summary"], client2["daemon"]["replay_drops"]
    );
    // The LAN, IKE and the DCT follow: new connections are MVS1's
    // (ROUNDROBIN over MVS1, MVS2, MVS4), from both clients.
    for c in ["client1", "client2"] {
        let mut by = std::collections::BTreeSet::new();
        for _ in 0..6 {
            by.insert(curl_dva1(PREFIX, c).expect("curl after the giveback"));
        }
        assert!(
            by.iter()
                .all(|a| ["served by MVS1", "served by MVS2", "served by MVS4"]
                    .contains(&a.as_str())),
            "{c}: {by:?}"
        );
    }
    let row = dva1_status("MVS5");
    assert_eq!(row["givebacks"], 1, "{row}");
    assert_eq!(row["giveback"], serde_json::Value::Null, "{row}");
    eprintln!("{}", ok(PREFIX, &["netstat", "MVS5", "vipadcfg"]));
    eprintln!("{}", ok(PREFIX, &["netstat", "MVS1", "vipadcfg"]));
    let owned = &node("MVS5")["daemon"]["owned_dvipas"];
    assert!(
        !owned
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d == DVA1)),
        "MVS5 still owns DVA1: {owned}"
    );
}

/// figure4 with MVS1's `VIPADEFINE MOVEABLE WHENIDLE` for DVA1, written
/// under the test's temporary directory.
fn figure4_when_idle() -> std::path::PathBuf {
    let text = std::fs::read_to_string("topologies/figure4.toml").expect("figure4");
    let define = "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100";
    assert!(text.contains(define));
    let text = text.replacen(
        define,
        "VIPADEFINE MOVEABLE WHENIDLE 255.255.255.0 198.18.0.100",
        1,
    );
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("figure4-whenidle.toml");
    std::fs::write(&path, text).expect("writing the topology");
    path
}

/// MOVEABLE WHENIDLE: while curl loops keep connections to DVA1 at MVS5,
/// MVS5 keeps DVA1 after MVS1 is back, and new connections still go to
/// MVS5's targets; once the loops stop and the last DCT entry ended, MVS5
/// gives DVA1 back.
#[test]
fn when_idle_the_backup_keeps_dva1_until_its_connections_ended() {
    if !can_use_namespaces("when_idle_the_backup_keeps_dva1_until_its_connections_ended") {
        return;
    }
    let _serial = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    let topo = figure4_when_idle();
    ok(PREFIX, &["up", topo.to_str().expect("path")]);
    wait_ready_targets(PREFIX, "MVS1", 80, 3, 30);
    wait_until("a first answer to client2", 30, || {
        curl_dva1(PREFIX, "client2").is_ok()
    });
    assert_eq!(dva1_status("MVS1")["moveable"], "WhenIdle");

    let killed_at = unix_now();
    kill_mvs1();
    wait_ready_targets(PREFIX, "MVS5", 80, 3, 30);
    let dir = tempfile::tempdir().expect("temp dir");
    let stop = dir.path().join("stop");
    let looping = curl_loop("client2", &stop);
    std::thread::sleep(Duration::from_secs(2));
    restart_mvs1();
    // MVS1 is back, but connections remain at MVS5: it waits.
    wait_until("MVS5 waiting for idle", 20, || {
        dva1_status("MVS5")["giveback"]
            .as_str()
            .is_some_and(|g| g.starts_with("to MVS1 when idle"))
    });
    std::thread::sleep(Duration::from_secs(3));
    let row = dva1_status("MVS5");
    assert_eq!(
        (row["state"].as_str(), row["holder"].as_str()),
        (Some("Active"), Some("MVS5")),
        "{row}"
    );
    assert_eq!(dva1_status("MVS1")["state"], "Backup");
    let summary = node("MVS5")["daemon"]["summary"].clone();
    assert!(
        summary.as_str().is_some_and(|s| s.contains("when idle")),
        "{summary}"
    );
    eprintln!("{}", ok(PREFIX, &["netstat", "MVS5", "vipadcfg"]));
    // New connections still go to MVS5's targets.
    for _ in 0..6 {
        let a = curl_dva1(PREFIX, "client2").expect("curl while MVS5 waits");
        assert!(
            ["served by MVS2", "served by MVS3", "served by MVS4"].contains(&a.as_str()),
            "{a}"
        );
    }
    // The loop stops; the entries end (closing: 5 s) and MVS5 gives DVA1 back.
    let results = stop_loops(&stop, vec![("client2".into(), looping)]);
    let stopped = Instant::now();
    wait_until("MVS1 holding DVA1 after the last connection", 30, || {
        let r = dva1_status("MVS1");
        r["state"] == "Active" && r["holder"] == "MVS1"
    });
    eprintln!(
        "WHENIDLE: given back {:?} after the last curl",
        stopped.elapsed()
    );
    wait_until("MVS5 a backup again", 10, || {
        dva1_status("MVS5")["state"] == "Backup"
    });
    for (client, lines) in &results {
        check_curls(client, lines, killed_at);
    }
    let t5 = &node("MVS5")["daemon"]["takeover"];
    assert_eq!(t5["counters"]["givebacks"], 1, "{t5}");
    for _ in 0..3 {
        let a = curl_dva1(PREFIX, "client2").expect("curl after the giveback");
        assert!(
            ["served by MVS1", "served by MVS2", "served by MVS4"].contains(&a.as_str()),
            "{a}"
        );
    }
}
