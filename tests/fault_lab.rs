//! Faults on demand in figure4's namespaces (docs/FAULTS.md): `plexnet
//! link`, `plexnet kill`, `plexnet restart` and what the sysplex does
//! then. MVS1 routes DVA1 port 80 to MVS1, MVS2 and MVS4; client2 runs
//! the plexnet client (IKE with MVS1), whose curls are the traffic.
//!
//! - An XCF link goes down: the target behind it is not ready in MVS1's
//!   VDPT and new connections avoid it; its DCT entries end.
//! - A target is killed: its connections end in MVS1's DCT, new
//!   connections avoid it; `restart` brings it back into the rotation.
//! - The CF is killed and restarted: no crash, refused numbers counted
//!   with their reason, the pair rekeyed, curls answered again.
//!
//! The routing stack killed is tests/takeover_lab.rs.

mod common;

use common::*;
use std::sync::Mutex;
use std::time::Instant;

const DVA1: &str = "198.18.0.100";

/// One figure4 at a time: two would load the shared machine twice over.
static ONE_LAB: Mutex<()> = Mutex::new(());

fn lab(prefix: &'static str) -> (std::sync::MutexGuard<'static, ()>, LabGuard) {
    let serial = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let guard = LabGuard { prefix };
    let _ = plexnet(prefix, &["down", "--all"]);
    ok(prefix, &["up", "topologies/figure4.toml"]);
    wait_ready_targets(prefix, "MVS1", 80, 3, 30);
    (serial, guard)
}

/// `plexnet ARGS` must fail; its stderr.
fn fails(prefix: &str, args: &[&str]) -> String {
    let out = plexnet(prefix, args);
    assert!(!out.status.success(), "plexnet {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A node of `status --json` (which exits 3 while a node is down).
fn node(prefix: &str, name: &str) -> serde_json::Value {
    status_node(prefix, name)
}

fn instance(prefix: &str, st: &serde_json::Value) -> serde_json::Value {
    st.as_array()
        .and_then(|a| a.iter().find(|t| t["prefix"] == prefix))
        .cloned()
        .unwrap_or_else(|| panic!("{prefix} in status: {st}"))
}

/// MVS1's VDPT rows for DVA1 port 80 at `image`: ready or not.
fn vdpt_ready(prefix: &str, image: &str) -> bool {
    let v = json(prefix, &["netstat", "MVS1", "vdpt", "--json"]);
    v["vdpt"].as_array().is_some_and(|rows| {
        rows.iter().any(|r| {
            r["dvipa"] == DVA1 && r["port"] == 80 && r["dest_image"] == image && r["ready"] == true
        })
    })
}

/// MVS1's DCT entries (vcrt) for connections to `image`.
fn vcrt_to(prefix: &str, image: &str) -> usize {
    let v = json(prefix, &["netstat", "MVS1", "vcrt", "--json"]);
    v["vcrt"].as_array().map_or(0, |rows| {
        rows.iter().filter(|r| r["dest_image"] == image).count()
    })
}

fn routing_counter(prefix: &str, name: &str) -> u64 {
    node(prefix, "MVS1")["daemon"]["routing"]["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("MVS1 routing counter {name}"))
}

/// `n` curls from client2: who served each; every one must be answered.
fn curls(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            curl_dva1(prefix, "client2")
                .unwrap_or_else(|e| panic!("curl {i} from client2 failed: {e}"))
        })
        .collect()
}

/// Curls until `image` served one (bounded): it is back in the rotation.
fn served_again_by(prefix: &str, image: &str) {
    let want = format!("served by {image}");
    wait_until(&format!("a curl served by {image}"), 60, || {
        curl_dva1(prefix, "client2").is_ok_and(|b| b.starts_with(&want))
    });
}

/// `--loss 50` on client1's LAN (netem, or on a kernel without it the BPF
/// classifier at the router's end, which counts its drops): of 200 pings
/// to the router, between 25 % and 75 % get no answer (a request and its
/// answer each cross the link once more than the other way: the loss is
/// on the way in to the router only). Cleared, none are lost.
fn half_the_pings_are_lost_with_loss_50(prefix: &str) {
    let lost = |prefix| {
        let out = plexnet(
            prefix,
            &[
                "exec",
                "client1",
                "--",
                "ping",
                "-c",
                "200",
                "-i",
                "0.005",
                "-q",
                "198.18.1.1",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let received = text
            .split(", ")
            .find_map(|f| f.strip_suffix(" received")?.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no ping summary: {text}"));
        200 - received
    };
    pin_router_neighbour(prefix);
    let r = json(
        prefix,
        &["netem", "client1", "lan", "--loss", "50", "--json"],
    );
    assert_eq!(r["action"], "set", "{r}");
    let n = lost(prefix);
    assert!((50..=150).contains(&n), "{n} of 200 lost with --loss 50");
    let shown = json(prefix, &["netem", "client1", "lan", "--json"]);
    if shown["loss_at"].is_string() {
        // Every lost ping was dropped there; ARP and charon's own packets
        // on the same link may have been too.
        let dropped = shown["loss_dropped"].as_u64().unwrap_or(0);
        assert!(
            dropped >= u64::from(n),
            "{dropped} dropped < {n} lost: {shown}"
        );
        let e = fails(prefix, &["netem", "client1", "lan", "--delay", "10"]);
        assert!(e.contains("--delay and --jitter need it"), "{e}");
    }
    ok(prefix, &["netem", "client1", "lan", "--clear"]);
    assert_eq!(lost(prefix), 0, "pings lost after --clear");
}

/// client1's neighbour entry for its router, made permanent: with half of
/// client1's ARP requests dropped too, pings waiting for an ARP answer
/// would be lost at client1 (not by the classifier), and the count of
/// classifier drops would fall short of the pings lost.
fn pin_router_neighbour(prefix: &str) {
    ok(
        prefix,
        &["exec", "client1", "--", "ping", "-c", "1", "198.18.1.1"],
    );
    let shown = ok(
        prefix,
        &[
            "exec",
            "client1",
            "--",
            "ip",
            "-j",
            "neigh",
            "show",
            "198.18.1.1",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&shown).expect("ip -j neigh");
    let mac = v[0]["lladdr"]
        .as_str()
        .expect("the router's MAC")
        .to_string();
    ok(
        prefix,
        &[
            "exec",
            "client1",
            "--",
            "ip",
            "neigh",
            "replace",
            "198.18.1.1",
            "lladdr",
            &mac,
            "dev",
            "lan",
            "nud",
            "permanent",
        ],
    );
}

#[test]
fn errors_name_what_is_wrong_and_change_nothing() {
    if !can_use_namespaces("errors_name_what_is_wrong_and_change_nothing") {
        return;
    }
    const P: &str = "plxfault3-";
    let (_serial, _guard) = lab(P);
    let e = fails(P, &["kill", "MVS9"]);
    assert!(e.contains("no node MVS9") && e.contains("MVS1"), "{e}");
    let e = fails(P, &["link", "MVS1", "client1", "down"]);
    assert!(e.contains("no link between MVS1 and client1"), "{e}");
    assert!(
        e.contains("MVS2 (xcf, x-mvs2)") && e.contains("net (ext, ext)"),
        "{e}"
    );
    let e = fails(P, &["kill", "net"]);
    assert!(e.contains("router"), "{e}");
    let e = fails(P, &["netem", "MVS1", "eth7", "--rate", "10mbit"]);
    assert!(
        e.contains("no interface eth7") && e.contains("x-mvs2"),
        "{e}"
    );
    let e = fails(P, &["netem", "MVS1", "ext", "--loss", "120"]);
    assert!(e.contains("--loss 120"), "{e}");
    // A rate limit works with or without netem (tbf), and is shown.
    let r = json(P, &["netem", "MVS2", "ext", "--rate", "50mbit", "--json"]);
    assert_eq!(r["action"], "set", "{r}");
    let st = instance(P, &json(P, &["status", "--json"]));
    assert_eq!(st["faults"]["shaped"][0]["iface"], "ext", "{st}");
    curls(P, 3);
    let r = json(P, &["netem", "MVS2", "ext", "--clear", "--json"]);
    assert_eq!(r["action"], "cleared", "{r}");
    half_the_pings_are_lost_with_loss_50(P);
    // A client's LAN down: its requests go nowhere; up again, they are
    // answered (the router's and the client's routes come back).
    let r = json(P, &["link", "client2", "net", "down", "--json"]);
    assert_eq!(
        (r["kind"].as_str(), r["node_if"].as_str()),
        (Some("lan"), Some("lan")),
        "{r}"
    );
    assert!(
        curl_dva1(P, "client2").is_err(),
        "client2 reached DVA1 with its LAN down"
    );
    ok(P, &["link", "client2", "net", "up"]);
    curls(P, 3);
    // Killing what is dead is an error; restart brings it back.
    ok(P, &["kill", "MVS3"]);
    let e = fails(P, &["kill", "MVS3"]);
    assert!(
        e.contains("MVS3 is not running") && e.contains("plexnet restart MVS3"),
        "{e}"
    );
    let n = node(P, "MVS3");
    assert_eq!(
        (n["ready"].as_bool(), n["process_alive"].as_bool()),
        (Some(false), Some(false)),
        "{n}"
    );
    let r = json(P, &["restart", "MVS3", "--json"]);
    assert!(r["pid"].as_u64().is_some(), "{r}");
    assert_eq!(node(P, "MVS3")["ready"], true);
    // The plexnet client: its daemon, killed and restarted; it negotiates
    // anew and its curls are answered.
    let r = json(P, &["kill", "client2", "--json"]);
    assert_eq!(r["process"], "daemon", "{r}");
    assert_eq!(node(P, "client2")["ready"], false);
    ok(P, &["restart", "client2"]);
    served_again_by(P, "MVS2");
    // charon: killed and restarted like a daemon.
    let r = json(P, &["kill", "client1", "--json"]);
    assert_eq!(r["process"], "charon", "{r}");
    assert_eq!(node(P, "client1")["ready"], false);
    ok(P, &["restart", "client1"]);
    assert_eq!(node(P, "client1")["ready"], true);
}

#[test]
fn an_xcf_link_down_takes_its_target_out_of_the_rotation() {
    if !can_use_namespaces("an_xcf_link_down_takes_its_target_out_of_the_rotation") {
        return;
    }
    const P: &str = "plxfault-";
    let (_serial, _guard) = lab(P);
    curls(P, 6);
    let r = json(P, &["link", "MVS1", "MVS4", "down", "--json"]);
    assert_eq!(
        (r["kind"].as_str(), r["node_if"].as_str()),
        (Some("xcf"), Some("x-mvs4")),
        "{r}"
    );
    assert!(!vdpt_ready(P, "MVS4"), "MVS4 still ready in MVS1's VDPT");
    assert!(vdpt_ready(P, "MVS2"), "MVS2 must stay ready");
    assert_eq!(
        vcrt_to(P, "MVS4"),
        0,
        "MVS4's connections must end in the DCT"
    );
    let st = instance(P, &json(P, &["status", "--json"]));
    let down = &st["faults"]["links_down"][0];
    assert_eq!(
        (down["node"].as_str(), down["peer"].as_str()),
        (Some("MVS1"), Some("MVS4")),
        "{st}"
    );
    for who in curls(P, 9) {
        assert!(
            !who.contains("MVS4"),
            "a new connection went to MVS4: {who}"
        );
    }
    ok(P, &["link", "MVS1", "MVS4", "up"]);
    wait_ready_targets(P, "MVS1", 80, 3, 30);
    served_again_by(P, "MVS4");
    let st = instance(P, &json(P, &["status", "--json"]));
    assert_eq!(
        st["faults"]["links_down"].as_array().map(Vec::len),
        Some(0),
        "{st}"
    );
}

#[test]
fn a_killed_target_ends_its_connections_and_comes_back_on_restart() {
    if !can_use_namespaces("a_killed_target_ends_its_connections_and_comes_back_on_restart") {
        return;
    }
    const P: &str = "plxfault2-";
    let (_serial, _guard) = lab(P);
    let served = curls(P, 6);
    assert!(
        served.iter().any(|s| s.contains("MVS4")),
        "round robin reaches MVS4: {served:?}"
    );
    assert!(
        vcrt_to(P, "MVS4") > 0,
        "MVS1's DCT has MVS4's connections before the kill"
    );
    let ended_before = routing_counter(P, "ended_target_down");
    let t = Instant::now();
    let r = json(P, &["kill", "MVS4", "--json"]);
    assert_eq!(r["signal"], "SIGKILL", "{r}");
    wait_until("MVS4 not ready in MVS1's VDPT", 15, || {
        !vdpt_ready(P, "MVS4")
    });
    wait_until("MVS4's connections gone from MVS1's DCT", 15, || {
        vcrt_to(P, "MVS4") == 0
    });
    eprintln!(
        "MVS4 out of MVS1's VDPT and DCT {} ms after the kill",
        t.elapsed().as_millis()
    );
    assert!(routing_counter(P, "ended_target_down") > ended_before);
    let n = node(P, "MVS4");
    assert_eq!(n["ready"], false, "{n}");
    for who in curls(P, 9) {
        assert!(
            !who.contains("MVS4"),
            "a new connection went to the dead MVS4: {who}"
        );
    }
    let r = json(P, &["restart", "MVS4", "--json"]);
    eprintln!("MVS4 restarted, ready after {} ms", r["ready_after_ms"]);
    wait_ready_targets(P, "MVS1", 80, 3, 30);
    served_again_by(P, "MVS4");
}

/// Sums a counter over every image of `status --json`: `path` inside
/// each image's daemon status.
fn images_sum(prefix: &str, path: &[&str]) -> u64 {
    let out = plexnet(prefix, &["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    instance(prefix, &st)["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["kind"] == "image")
        .map(|n| {
            path.iter()
                .fold(&n["daemon"], |v, k| &v[*k])
                .as_u64()
                .unwrap_or(0)
        })
        .sum()
}

/// MVS1's owned dynamic SA pairs' SPIs.
fn owned_spis(prefix: &str) -> Vec<String> {
    let d = json(prefix, &["ipsec", "MVS1", "--json"]);
    d["owned"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["origin"] == "dynamic")
        .filter_map(|r| r["spi"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_cf_killed_then_restarted_drops_counted_and_the_pair_rekeyed() {
    if !can_use_namespaces("the_cf_killed_then_restarted_drops_counted_and_the_pair_rekeyed") {
        return;
    }
    const P: &str = "plxfault-";
    let (_serial, _guard) = lab(P);
    curls(P, 3);
    let spis_before = owned_spis(P);
    assert!(!spis_before.is_empty(), "client2's IKE made a pair");
    // One image's CF link down: only MVS2 loses the CF; what it sends
    // waits for numbers, then is dropped and counted as unreachable. Up
    // again, the CF kept its state: nothing to rekey.
    let mvs2 = |path: &[&str]| {
        path.iter()
            .fold(&node(P, "MVS2")["daemon"], |v, k| &v[*k])
            .clone()
    };
    ok(P, &["link", "MVS2", "CF", "down"]);
    wait_until("MVS2 sees the CF unreachable", 15, || {
        mvs2(&["cf_watch", "reachable"]) == false
    });
    wait_until(
        "a curl served by MVS2 refused for want of numbers",
        60,
        || {
            let _ = curl_dva1(P, "client2");
            mvs2(&["shell", "cf_dropped", "unreachable"]).as_u64() > Some(0)
        },
    );
    ok(P, &["link", "MVS2", "CF", "up"]);
    wait_until("MVS2 reaches the CF again", 15, || {
        mvs2(&["cf_watch", "reachable"]) == true
    });
    assert_eq!(
        mvs2(&["cf_watch", "state_lost"]),
        0,
        "the CF kept its state"
    );
    served_again_by(P, "MVS2");
    ok(P, &["kill", "CF"]);
    // Outbound packets get no numbers: dropped, counted as unreachable.
    let refused = curl_dva1(P, "client2");
    assert!(refused.is_err(), "a curl without the CF: {refused:?}");
    let unreachable = images_sum(P, &["shell", "cf_dropped", "unreachable"]);
    assert!(unreachable > 0, "drops without the CF are counted");
    assert_eq!(node(P, "CF")["ready"], false);
    let rekeyed_before = images_sum(P, &["ike", "counters", "rekeys_cf_lost"]);
    let t = Instant::now();
    ok(P, &["restart", "CF"]);
    wait_until("the images see the CF lost its state", 20, || {
        images_sum(P, &["cf_watch", "state_lost"]) >= 5
    });
    wait_until("MVS1 rekeyed client2's pair", 30, || {
        images_sum(P, &["ike", "counters", "rekeys_cf_lost"]) > rekeyed_before
            && owned_spis(P).iter().all(|s| !spis_before.contains(s))
    });
    let rekeyed_ms = t.elapsed().as_millis();
    served_again_by(P, "MVS1");
    let answered_ms = t.elapsed().as_millis();
    let seq_lost = images_sum(P, &["shell", "cf_dropped", "seq_lost"]);
    eprintln!(
        "CF restart: old pair replaced after {rekeyed_ms} ms, curls answered after {answered_ms} ms; drops: {unreachable} unreachable, {seq_lost} seq_lost"
    );
    curls(P, 6);
    // Nothing crashed: every node runs.
    let st = instance(P, &json(P, &["status", "--json"]));
    for n in st["nodes"].as_array().into_iter().flatten() {
        assert_eq!(n["ready"], true, "{n}");
    }
}
