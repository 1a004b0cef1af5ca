//! The routing stack's IKE against strongSwan in figure4 (issue 5): MVS1
//! owns DVA1 and runs IKE in its own process; client1 runs charon with
//! kernel-libipsec, started by `plexnet up`.
//!
//! One lab (prefix `plxi-`), several cases in order:
//! - for each proposal set of the issue (loaded into the running charon as
//!   connection `dva1`): `swanctl --initiate`, 20 curls to DVA1 answered by
//!   at least two images, `swanctl --rekey --child` in the middle with no
//!   failed curl, the new pair alone in every shadow cache afterwards, and
//!   `swanctl --terminate` empties every shadow cache and the owned cache;
//! - a wrong PSK: charon gets AUTHENTICATION_FAILED, nothing is installed;
//! - NEWCONN (Fig. 11): curl on MVS2 from DVA1 to an HTTP server in
//!   client1 with no SA: MVS1's IKE initiates, charon responds, the SYN
//!   and everything after it leave MVS2 sealed;
//! - `plexnet client` in client2 as an IKE initiator to DVA1.
//!
//! Needs root, TUN and strongSwan; see `tests/common/mod.rs`.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PREFIX: &str = "plxi-";
const DVA1: &str = "198.18.0.100";
const CLIENT1: &str = "198.18.1.2";

/// The proposal sets of the issue: (IKE, ESP) in strongSwan syntax.
const CASES: [(&str, &str); 4] = [
    ("aes128-sha1-modp2048", "aes128-sha1"),
    ("aes256-sha256-modp2048", "aes256-sha256"),
    ("aes128-sha256-ecp256", "aes128gcm16"),
    ("default", "default"),
];

fn status() -> serde_json::Value {
    serde_json::from_str(&ok(PREFIX, &["status", "--json"])).expect("status is JSON")
}

/// Each image's daemon status, by name.
fn images() -> BTreeMap<String, serde_json::Value> {
    let st = status();
    let inst = st
        .as_array()
        .and_then(|a| a.iter().find(|i| i["prefix"] == PREFIX))
        .cloned()
        .expect("our instance");
    inst["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["kind"] == "image")
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_owned(),
                n["daemon"].clone(),
            )
        })
        .collect()
}

fn shadow_counts() -> BTreeMap<String, u64> {
    images()
        .into_iter()
        .map(|(n, d)| (n, d["target"]["shadow_sas"].as_u64().unwrap_or(99)))
        .collect()
}

fn mvs1_ike() -> serde_json::Value {
    images()["MVS1"]["ike"].clone()
}

/// MVS1's IKE SAs with client1 (client2, `plexnet client`, keeps its own
/// IKE SA with DVA1 up all along).
fn client1_sas(ike: &serde_json::Value) -> Vec<serde_json::Value> {
    ike["sas"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| {
                    s["remote"]
                        .as_str()
                        .is_some_and(|r| r.starts_with(&format!("{CLIENT1}:")))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn counter(ike: &serde_json::Value, name: &str) -> u64 {
    ike["counters"][name].as_u64().unwrap_or(0)
}

fn client2_daemon() -> serde_json::Value {
    let st = status();
    st.as_array()
        .and_then(|a| a.iter().find(|i| i["prefix"] == PREFIX))
        .and_then(|i| i["nodes"].as_array())
        .and_then(|n| n.iter().find(|n| n["name"] == "client2"))
        .map(|n| n["daemon"].clone())
        .expect("client2 in status")
}

fn swanctl(args: &[&str]) -> std::process::Output {
    common::swanctl(PREFIX, args)
}

fn swanctl_ok(args: &[&str]) -> String {
    common::swanctl_ok(PREFIX, args)
}

fn load_conn(name: &str, ike: &str, esp: &str, psk: &str) {
    common::load_conn(PREFIX, name, ike, esp, psk);
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One proposal set: initiate, 20 curls with a child rekey in the middle,
/// terminate.
/// `base`: the shadow SA counts without client1's pair.
fn proposal_case(ike: &str, esp: &str, base: &BTreeMap<String, u64>) {
    load_conn("dva1", ike, esp, "plexnet-figure4");
    let before = mvs1_ike();
    let out = swanctl_ok(&["--initiate", "--child", "dva1"]);
    assert!(out.contains("CHILD_SA dva1{"), "{out}");
    // Every target of DVA1 (MVS1, MVS2, MVS4) has the pair; MVS3 and MVS5 not.
    let one_more = |s: &BTreeMap<String, u64>| {
        ["MVS1", "MVS2", "MVS4"]
            .iter()
            .all(|n| s[*n] == base[*n] + 1)
    };
    wait_until("the shadow SAs", Duration::from_secs(5), || {
        one_more(&shadow_counts())
    });
    let s = shadow_counts();
    assert_eq!(
        (s["MVS3"], s["MVS5"]),
        (base["MVS3"], base["MVS5"]),
        "{s:?}"
    );

    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let curls = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut results = Vec::new();
            for _ in 0..20 {
                results.push(curl_dva1(PREFIX, "client1"));
                done.fetch_add(1, Ordering::SeqCst);
            }
            results
        })
    };
    wait_until("10 curls", Duration::from_secs(60), || {
        done.load(Ordering::SeqCst) >= 10
    });
    let rekey = swanctl_ok(&["--rekey", "--child", "dva1"]);
    assert!(rekey.contains("rekey completed successfully"), "{rekey}");
    let results = curls.join().expect("curl thread");
    stop.store(true, Ordering::SeqCst);
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{ike}/{esp}: failed curls: {failed:?}");
    let by: std::collections::BTreeSet<&String> =
        results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert!(by.len() >= 2, "{ike}/{esp}: answered by {by:?} only");

    // The rekey: a new pair replaced the old one everywhere.
    let after = mvs1_ike();
    assert!(
        counter(&after, "child_sas_rekeyed") > counter(&before, "child_sas_rekeyed"),
        "{after}"
    );
    wait_until("the old pair's deletion", Duration::from_secs(5), || {
        one_more(&shadow_counts())
    });
    let sas = swanctl_ok(&["--list-sas"]);
    let mine = client1_sas(&mvs1_ike());
    assert_eq!(mine.len(), 1, "{mine:?}");
    let child = &mine[0]["children"][0];
    let ours_in = child["inbound_spi"]
        .as_str()
        .expect("inbound SPI")
        .trim_start_matches("0x")
        .to_owned();
    assert!(
        sas.contains(&format!("out {ours_in}")),
        "charon does not send with our inbound SPI {ours_in}:\n{sas}"
    );

    // DELETE from the peer: every cache empty.
    swanctl_ok(&["--terminate", "--ike", "dva1"]);
    wait_until(
        "client1's pair gone from every cache",
        Duration::from_secs(5),
        || shadow_counts() == *base,
    );
    let mvs1 = images()["MVS1"].clone();
    assert_eq!(
        mvs1["routing"]["owned_sas"].as_array().map(Vec::len),
        Some(base["MVS1"] as usize),
        "{mvs1}"
    );
    assert!(client1_sas(&mvs1["ike"]).is_empty(), "{mvs1}");
}

/// An HTTP server on client1:8080 that names the address it was reached
/// from; runs on a thread inside client1's namespace.
fn http_server_in_client1() -> Arc<AtomicUsize> {
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    let ns = format!("{PREFIX}client1");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        plexnet::lab::netns::enter(&ns).expect("enter client1");
        let l = std::net::TcpListener::bind((CLIENT1, 8080)).expect("bind 8080");
        tx.send(()).expect("ready");
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let peer = s
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let mut buf = [0u8; 2048];
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = s.read(&mut buf);
            let body = format!("client1 saw {peer}\n");
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("HTTP server started");
    served
}

#[test]
fn figure4_ike_with_strongswan() {
    if !can_use_namespaces("figure4_ike_with_strongswan") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", "topologies/figure4.toml"]);
    let t0 = Instant::now();

    // The generated configuration is loaded: a stock connection `dva1`.
    let conns = swanctl_ok(&["--list-conns"]);
    assert!(conns.contains("dva1: IKEv2"), "{conns}");

    // client2 (`plexnet client`) initiates by itself: its pair reaches
    // DVA1's targets, and its traffic goes through the sysplex.
    wait_until("client2's IKE SA", Duration::from_secs(10), || {
        let s = shadow_counts();
        s["MVS1"] == 1 && s["MVS2"] == 1 && s["MVS4"] == 1
    });
    let mut by = std::collections::BTreeSet::new();
    for _ in 0..6 {
        by.insert(curl_dva1(PREFIX, "client2").expect("curl from client2"));
    }
    assert!(by.len() >= 2, "client2 answered by {by:?} only");
    let client2 = client2_daemon();
    assert!(
        client2["summary"]
            .as_str()
            .is_some_and(|s| s.contains("IKE to 198.18.0.100 Established")),
        "{client2}"
    );
    assert_eq!(client2["replay_drops"], 0, "{client2}");
    assert!(client2["inbound"][0]["packets"].as_u64().unwrap_or(0) >= 6);
    let base = shadow_counts();

    for (ike, esp) in CASES {
        let t = Instant::now();
        proposal_case(ike, esp, &base);
        eprintln!("{ike}/{esp}: {} ms", t.elapsed().as_millis());
    }

    // A wrong PSK: refused by MVS1, nothing installed.
    load_conn("bad", "default", "default", "not-the-figure4-psk");
    let before = counter(&mvs1_ike(), "auth_failed");
    let out = swanctl(&["--initiate", "--child", "bad"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("AUTHENTICATION_FAILED"), "{text}");
    assert!(counter(&mvs1_ike(), "auth_failed") > before);
    assert_eq!(shadow_counts(), base);
    assert!(client1_sas(&mvs1_ike()).is_empty());

    // NEWCONN: MVS2 opens a connection from DVA1 to client1, no SA yet.
    load_conn("dva1", "default", "default", "plexnet-figure4");
    let served = http_server_in_client1();
    let mvs2_before = images()["MVS2"]["target"]["counters"].clone();
    let out = ok(
        PREFIX,
        &[
            "exec",
            "mvs2",
            "--",
            "curl",
            "-s",
            "-m",
            "10",
            "--interface",
            DVA1,
            "http://198.18.1.2:8080/",
        ],
    );
    assert_eq!(out.trim(), format!("client1 saw {DVA1}"));
    assert_eq!(served.load(Ordering::SeqCst), 1);
    let ike = mvs1_ike();
    assert!(counter(&ike, "newconn") >= 1, "{ike}");
    // Fig. 11 block 178: the SYN waited for the SA and left with it
    // (not dropped and retransmitted by TCP a second later).
    let shell = images()["MVS2"]["shell"].clone();
    assert!(shell["newconn_held"].as_u64() >= Some(1), "{shell}");
    assert!(shell["newconn_released"].as_u64() >= Some(1), "{shell}");
    assert_eq!(shell["newconn_expired"], 0, "{shell}");
    assert_eq!(counter(&ike, "initiated"), 1, "{ike}");
    let mine = client1_sas(&ike);
    assert_eq!(mine.len(), 1, "{ike}");
    assert_eq!(mine[0]["initiator"], true, "{ike}");
    let sas = swanctl_ok(&["--list-sas"]);
    assert!(
        sas.contains("dva1: #") && sas.contains("INSTALLED"),
        "{sas}"
    );
    let mvs2 = images()["MVS2"]["target"]["counters"].clone();
    let sealed = mvs2["sealed"].as_u64().unwrap_or(0) - mvs2_before["sealed"].as_u64().unwrap_or(0);
    let plain =
        mvs2["plain_out"].as_u64().unwrap_or(0) - mvs2_before["plain_out"].as_u64().unwrap_or(0);
    assert!(sealed >= 3, "the SYN and the request leave sealed: {mvs2}");
    assert_eq!(plain, 0, "nothing left MVS2 in the clear: {mvs2}");
    swanctl_ok(&["--terminate", "--ike", "dva1"]);
    wait_until("client1's pair gone", Duration::from_secs(5), || {
        shadow_counts() == base
    });

    eprintln!("total {} ms", t0.elapsed().as_millis());
    ok(PREFIX, &["down", "--all"]);
    assert!(namespaces(PREFIX).is_empty());
}
