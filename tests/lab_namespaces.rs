//! The lab in real namespaces: `up`, the DVIPA answering ping from user
//! space, status, refusals, `kill -9` then `down`, nothing left behind.

mod common;

use common::*;
use plexnet::topology;
use std::path::Path;

/// Brings `file` up under `prefix`, checks every node, pings the first
/// DVIPA from the first client and checks the owner counted the replies.
fn up_and_check(file: &str, prefix: &'static str) -> serde_json::Value {
    let topo = topology::load(Path::new(file)).expect("topology loads");
    let out = ok(prefix, &["up", file]);
    assert!(out.contains("is up in"), "up output: {out}");

    // Every namespace exists, every image has its daemon and its TUN.
    let ns = namespaces(prefix);
    let expected = topo.images.len() + topo.clients.len() + 2;
    assert_eq!(ns.len(), expected, "namespaces: {ns:?}");
    for image in &topo.images {
        let links = ok(
            prefix,
            &["exec", &image.name, "--", "ip", "-o", "link", "show"],
        );
        for want in ["plx0", "ext", "cf"] {
            assert!(
                links.contains(&format!(": {want}")),
                "{}: no {want} in {links}",
                image.name
            );
        }
        let addrs = ok(
            prefix,
            &["exec", &image.name, "--", "ip", "-o", "-4", "addr", "show"],
        );
        assert!(addrs.contains(&image.ext_addr.to_string()), "{addrs}");
        assert!(addrs.contains(&image.xcf_addr.to_string()), "{addrs}");
    }

    // ping the DVIPA by name from the client: /etc/hosts comes from the topology.
    let client = &topo.clients[0].name;
    let dvipa = topo.dvipas()[0];
    let name = topo
        .hosts
        .iter()
        .find(|h| h.addr == dvipa)
        .map(|h| h.name.clone())
        .unwrap_or(dvipa.to_string());
    let ping = ok(
        prefix,
        &[
            "exec", client, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", &name,
        ],
    );
    assert!(ping.contains("3 received"), "{ping}");

    let status: serde_json::Value =
        serde_json::from_str(&ok(prefix, &["status", "--json"])).expect("status is JSON");
    let inst = status
        .as_array()
        .and_then(|a| a.iter().find(|i| i["prefix"] == prefix))
        .expect("our instance in status")
        .clone();
    for node in inst["nodes"].as_array().expect("nodes") {
        assert_eq!(node["ready"], true, "not ready: {node}");
    }
    let owner = topo.owner_of(dvipa).expect("owner").name.clone();
    let owner_status = inst["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == owner.as_str()))
        .expect("owner in status");
    let replies = owner_status["daemon"]["counters"]["echo_replies"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        replies >= 3,
        "owner {owner} counted {replies} echo replies: {owner_status}"
    );
    inst
}

fn assert_all_gone(prefix: &str) {
    assert!(
        namespaces(prefix).is_empty(),
        "left: {:?}",
        namespaces(prefix)
    );
    let ps = std::process::Command::new("pgrep")
        .args(["-f", &format!("--netns {prefix}")])
        .output()
        .expect("pgrep");
    assert!(
        ps.stdout.is_empty(),
        "daemons left: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

#[test]
fn minimal_up_ping_refuse_kill9_down() {
    const PREFIX: &str = "plxm-";
    if !can_use_namespaces("minimal_up_ping_refuse_kill9_down") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    let inst = up_and_check("topologies/minimal.toml", PREFIX);

    // A second up is refused and changes nothing.
    let again = plexnet(PREFIX, &["up", "topologies/minimal.toml"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already up"), "{err}");
    assert!(!namespaces(PREFIX).is_empty());

    // kill -9 one image's daemon; down still removes everything.
    let pid = inst["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["kind"] == "image"))
        .and_then(|n| n["pid"].as_u64())
        .expect("an image pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    ok(PREFIX, &["down", "topologies/minimal.toml"]);
    assert_all_gone(PREFIX);
    // down is idempotent.
    let out = ok(PREFIX, &["down", "topologies/minimal.toml"]);
    assert!(out.contains("nothing to remove"), "{out}");
}

#[test]
fn figure4_up_ping_down() {
    const PREFIX: &str = "plxf-";
    if !can_use_namespaces("figure4_up_ping_down") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    let inst = up_and_check("topologies/figure4.toml", PREFIX);
    let names: Vec<&str> = inst["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["namespace"].as_str())
        .collect();
    for want in [
        "plxf-mvs1",
        "plxf-mvs5",
        "plxf-cf",
        "plxf-net",
        "plxf-client1",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    ok(PREFIX, &["down", "--all"]);
    assert_all_gone(PREFIX);
}

#[test]
fn bad_topology_creates_nothing() {
    const PREFIX: &str = "plxbad-";
    if !can_use_namespaces("bad_topology_creates_nothing") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string("topologies/minimal.toml").expect("minimal.toml");
    // An unknown statement inside VIPADYNAMIC.
    let bad = good.replacen("VIPADYNAMIC", "VIPADYNAMIC\n  VIPAFROBNICATE 1.2.3.4", 1);
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, bad).expect("write");
    let out = plexnet(PREFIX, &["up", path.to_str().expect("utf8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:"),
        "error does not name the file: {err}"
    );
    assert!(err.to_uppercase().contains("VIPAFROBNICATE"), "{err}");
    assert!(namespaces(PREFIX).is_empty());
    assert!(!Path::new("/run/plexnet")
        .join(format!("{PREFIX}minimal"))
        .exists());
}
