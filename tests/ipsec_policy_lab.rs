//! IP security policy in real namespaces (issue "IP security policy, z/OS
//! style"): figure4 with MVS1's IPCONFIG IPSECURITY and Policy Agent
//! policy, stock strongSwan in client1 (prefix `plxpol-`).
//! - Before any IKE, curl to DVA1:80 fails: MVS1's routing stack drops the
//!   clear SYN (rule `dva1-web`, reason `clear-text`), no DCT entry.
//! - Port 60 answers in clear (rule `dva1-app60` permits it).
//! - A strongSwan client proposing only ESP algorithms outside the
//!   policy's IpDataOffers gets NO_PROPOSAL_CHOSEN, and its curl fails.
//! - A wrong pre-shared key leaves no SA and no plaintext answer.
//! - After a good `--initiate`, curl works over ESP.
//! - `plexnet ipsec MVS1 -f --json` shows the rules with their hits; `-k`,
//!   `-y` and `-y -s` show the IKE SA, the tunnel and its shadows.

mod common;

use common::*;
use std::collections::BTreeMap;

const PREFIX: &str = "plxpol-";

/// MVS1's filter display (`ipsec -f`), as JSON.
fn filters() -> serde_json::Value {
    json(PREFIX, &["ipsec", "MVS1", "-f", "--json"])
}

/// Hits per rule name in table order.
fn hits(f: &serde_json::Value) -> BTreeMap<String, u64> {
    f["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let name = r["name"].as_str().unwrap_or_default().to_owned();
            (name, r["hits"].as_u64().unwrap_or(0))
        })
        .collect()
}

fn denied(f: &serde_json::Value, key: &str) -> u64 {
    f["denied"][key].as_u64().unwrap_or(0)
}

/// MVS1's DCT entries (`netstat vcrt`).
fn connections() -> usize {
    json(PREFIX, &["netstat", "MVS1", "vcrt", "--json"])["vcrt"]
        .as_array()
        .map_or(0, Vec::len)
}

fn curl(url: &str) -> Result<String, String> {
    let out = plexnet(
        PREFIX,
        &["exec", "client1", "--", "curl", "-s", "-m", "3", url],
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!("curl {url}: exit {:?}", out.status.code()))
    }
}

/// MVS1's owned SAs (routing stack) with client1 (198.18.1.2) at either
/// end; client2's plexnet client has its own.
fn owned_sas() -> usize {
    json(PREFIX, &["ipsec", "MVS1", "--json"])["owned"]
        .as_array()
        .map_or(0, |rows| {
            rows.iter()
                .filter(|r| r["src"] == "198.18.1.2" || r["dst"] == "198.18.1.2")
                .count()
        })
}

fn refused_without_ike() {
    let before = denied(&filters(), "dva1-web clear-text");
    assert!(
        curl("http://DVA1/").is_err(),
        "plaintext to DVA1:80 was answered"
    );
    let f = filters();
    assert!(
        denied(&f, "dva1-web clear-text") > before,
        "the drop names the rule: {}",
        f["denied"]
    );
    assert_eq!(connections(), 0, "a refused SYN made a DCT entry");
    let by = curl("http://DVA1:60/").expect("port 60 in clear");
    assert!(by.starts_with("served by MVS"), "{by}");
}

fn initiate_fails(child: &str, needle: &str) {
    let out = swanctl(PREFIX, &["--initiate", "--child", child]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{child}: {text}");
    assert!(text.contains(needle), "{child}: no {needle} in:\n{text}");
    assert!(curl("http://DVA1/").is_err(), "{child}: answered in clear");
    assert_eq!(owned_sas(), 0, "{child}: an SA was installed");
    // An IKE SA may be up without a child (NO_PROPOSAL_CHOSEN is the
    // child's): close it, or the next connection reuses it.
    let _ = swanctl(PREFIX, &["--terminate", "--ike", child]);
}

#[test]
fn plaintext_is_refused_until_the_policy_s_tunnel_is_up() {
    if !can_use_namespaces("ipsec_policy_lab") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    ok(PREFIX, &["up", "topologies/figure4.toml"]);

    refused_without_ike();
    // aes192 is outside the IpDataOffers (z/OS offers AES 128 and 256).
    load_conn(PREFIX, "alg", "default", "aes192-sha384", "plexnet-figure4");
    initiate_fails("alg", "NO_PROPOSAL_CHOSEN");
    load_conn(PREFIX, "key", "default", "default", "not-the-figure4-key");
    initiate_fails("key", "AUTHENTICATION_FAILED");

    // Back to the swanctl.conf `plexnet up` generated from the policy.
    swanctl_ok(PREFIX, &["--load-all", "--noprompt"]);
    swanctl_ok(PREFIX, &["--initiate", "--child", "dva1"]);
    let mut by = std::collections::BTreeSet::new();
    for _ in 0..6 {
        by.insert(curl("http://DVA1/").expect("curl over ESP"));
    }
    assert!(by.len() >= 2, "answered by {by:?}");

    // ipsec -k, -y and -y -s: client1's IKE SA, its child at MVS1 and the
    // shadow copies at the targets; no manual tunnels in figure4.
    let rows = |args: &[&str]| json(PREFIX, args).as_array().map_or(0, Vec::len);
    assert!(rows(&["ipsec", "MVS1", "-k", "--json"]) >= 1);
    assert!(rows(&["ipsec", "MVS1", "-y", "--json"]) >= 2);
    assert!(rows(&["ipsec", "MVS2", "-y", "-s", "--json"]) >= 2);
    assert_eq!(rows(&["ipsec", "MVS1", "-m", "--json"]), 0);
    let f = filters();
    let h = hits(&f);
    assert!(
        h["dva1-web"] > 0 && h["dva1-app60"] > 0 && h["dva1-ike"] > 0,
        "{h:?}"
    );
    assert_eq!(f["dvipsec"], true);
    eprintln!(
        "ipsec_policy_lab: answered by {by:?}; MVS1 ipsec -f: hits {h:?}; denied {}",
        f["denied"]
    );
}
