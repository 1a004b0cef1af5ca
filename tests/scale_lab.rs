//! A generated sysplex of 32 images (`plexnet generate --images 32`:
//! figure4's layout, SYS1 distributing DVA1 to ALL over IPsec) in
//! namespaces: every image serves both clients (strongSwan in client1,
//! the plexnet client in client2), no drop is counted along the path, the
//! host's neighbour table dropped nothing, and `down` leaves nothing.
//!
//! 32 images is where issue 16 found the silent loss: the XCF full mesh
//! resolved by ARP filled the host-wide neighbour table (992 entries), and
//! the kernel dropped IKE, CF requests and SYN-ACKs without a counter of
//! ours. `make bench-lab` times 5 to 64 images.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

const PREFIX: &str = "plxscale-";
const IMAGES: usize = 32;

/// Runs `curl` to DVA1 `n` times in one shell inside `client`; the
/// answers, one per curl ("served by SYSk" or "FAILED").
fn curls(client: &str, n: usize) -> Vec<String> {
    let script = format!("for i in $(seq {n}); do curl -s -m 5 http://DVA1/ || echo FAILED; done");
    let out = ok(PREFIX, &["exec", client, "--", "sh", "-c", &script]);
    let answers: Vec<String> = out
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(answers.len(), n, "{client}: one answer per curl:\n{out}");
    answers
}

/// Which image answered how often.
fn served_by(answers: &[String]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for a in answers {
        let who = a.strip_prefix("served by ").unwrap_or("FAILED");
        *by.entry(who.to_string()).or_default() += 1;
    }
    by
}

fn instance() -> Value {
    let st = json(PREFIX, &["status", "--json"]);
    st.as_array()
        .and_then(|a| a.iter().find(|i| i["prefix"] == PREFIX))
        .cloned()
        .unwrap_or_else(|| panic!("no {PREFIX} lab in status: {st}"))
}

fn table_fulls(inst: &Value) -> u64 {
    inst["kernel_neighbours"]["table_fulls"]
        .as_u64()
        .expect("the kernel's neighbour table counters in status")
}

/// Every counter of a drop along the path that must be zero, by where.
fn path_drops(inst: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut nonzero = |what: String, v: &Value| match v {
        Value::Number(n) if n.as_u64() != Some(0) => found.push(format!("{what} = {n}")),
        Value::Object(m) => {
            for (k, c) in m {
                if c.as_u64() != Some(0) {
                    found.push(format!("{what}.{k} = {c}"));
                }
            }
        }
        _ => {}
    };
    for node in inst["nodes"].as_array().expect("nodes") {
        let (name, d) = (node["name"].as_str().unwrap_or("?"), &node["daemon"]);
        if d["role"] == "image" {
            for key in [
                "cf_errors",
                "cf_dropped",
                "send_errors",
                "recv_errors",
                "tun_reads_refused",
                "newconn_overflow",
                "newconn_expired",
            ] {
                nonzero(format!("{name} shell.{key}"), &d["shell"][key]);
            }
            nonzero(
                format!("{name} target.drops"),
                &d["target"]["counters"]["drops"],
            );
            for key in ["timeouts", "connections_lost", "cf_errors"] {
                nonzero(format!("{name} cf_client.{key}"), &d["cf_client"][key]);
            }
            for (peer, c) in d["xcf"]["peers"].as_object().into_iter().flatten() {
                for key in ["queue_overflow", "inbound_dropped", "silent"] {
                    nonzero(format!("{name} xcf {peer}.{key}"), &c[key]);
                }
            }
        }
        if name == "SYS1" {
            nonzero(
                "SYS1 routing.drops".into(),
                &d["routing"]["counters"]["drops"],
            );
        }
        if name == "client2" {
            for key in ["replay_drops", "inbound_drops", "outbound_drops"] {
                nonzero(format!("client2 {key}"), &d[key]);
            }
        }
    }
    found
}

#[test]
fn a_32_image_sysplex_serves_both_clients_from_every_image() {
    if !can_use_namespaces("a_32_image_sysplex_serves_both_clients_from_every_image") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("gen32.toml");
    std::fs::write(&file, ok(PREFIX, &["generate", "--images", "32"])).expect("writing");
    let file = file.to_str().expect("UTF-8 path");
    ok(PREFIX, &["check", file]);

    let started = std::time::Instant::now();
    ok(PREFIX, &["up", file]);
    let up_time = started.elapsed();
    let before = instance();
    let fulls_before = table_fulls(&before);
    let pids: Vec<u32> = before["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["pid"].as_u64().map(|p| p as u32))
        .collect();
    assert_eq!(
        pids.len(),
        IMAGES + 3,
        "images, CF, the plexnet client and client1's charon"
    );

    let init = swanctl_ok(PREFIX, &["--initiate", "--child", "dva1"]);
    assert!(init.contains("initiate completed successfully"), "{init}");
    // Round robin over every image: IMAGES connections in a row from one
    // client reach every image once (a second round from the other).
    for client in ["client1", "client2"] {
        let by = served_by(&curls(client, IMAGES));
        assert!(!by.contains_key("FAILED"), "{client}: failed curls: {by:?}");
        assert_eq!(by.len(), IMAGES, "{client}: every image serves: {by:?}");
    }

    let after = instance();
    assert_eq!(
        path_drops(&after),
        Vec::<String>::new(),
        "drops along the path"
    );
    assert_eq!(
        table_fulls(&after),
        fulls_before,
        "the host's neighbour table overflowed (its packets were dropped)"
    );

    let down = ok(PREFIX, &["down", "--all"]);
    assert!(namespaces(PREFIX).is_empty(), "namespaces left: {down}");
    let left: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&p| plexnet::lab::process::alive(p))
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    let run_dirs: Vec<_> = plexnet::lab::state::instances()
        .into_iter()
        .filter(|(_, lab)| lab.prefix == PREFIX)
        .collect();
    assert!(run_dirs.is_empty(), "run dirs left: {run_dirs:?}");
    eprintln!(
        "scale_lab: {IMAGES} images up in {} ms; {} curls answered by every image",
        up_time.as_millis(),
        2 * IMAGES
    );
}
