//! `plexnet client` against itself in real namespaces: two namespaces joined
//! by a veth, the client in one and `plexnet client --as-peer` (the DVIPA
//! end of the same manual SAs) in the other. For every protection the
//! topology offers, ping and a TCP transfer must go through, both ends must
//! count packets both ways and no drop, and a capture on the veth must show
//! only ESP, AH or ESP in UDP 4500.
//!
//! Each case uses its own namespaces `plxc-<case>-a`/`-b`, removed at the
//! end also when the test fails; cases run one at a time (two shared cores).

mod common;

use plexnet::lab::netlink::NsLinks;
use plexnet::lab::netns;
use plexnet::runtime::control::{self, Request};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// One case at a time: they share two cores with the rest of the machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// The test topology: client1 (198.18.1.2) and DVA1 (198.18.0.100), with
/// `sa` added to the manual SA.
fn topology(sa: &str) -> String {
    format!(
        r#"name = "clienttest"
[hosts]
DVA1 = "198.18.0.100"
[[image]]
name = "MVS1"
vipadynamic = "VIPADYNAMIC VIPADEFINE 255.255.255.0 198.18.0.100 ENDVIPADYNAMIC"
[[client]]
name = "client1"
ipsec = "plexnet"
[[manual_sa]]
client = "client1"
dvipa = "DVA1"
secret = "client tunnel test"
{sa}
"#
    )
}

/// Everything a case started: removed on drop, also after a panic.
struct Case {
    ns_a: String,
    ns_b: String,
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Drop for Case {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.ns_a, &self.ns_b] {
            for pid in plexnet::lab::process::pids_in_namespace(ns) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = netns::delete(ns);
        }
    }
}

impl Case {
    fn socket(&self, side: &str) -> PathBuf {
        self.dir.path().join(format!("{side}.sock"))
    }

    /// A command inside namespace `ns`.
    fn cmd(ns: &str, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]).args(args);
        c
    }

    /// Starts a helper, its output appended to `<dir>/helpers.log`.
    fn spawn(&mut self, mut cmd: Command) -> usize {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("helpers.log"))
            .expect("the helpers' log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning a helper");
        self.children.push(child);
        self.children.len() - 1
    }

    fn status(&self, side: &str) -> serde_json::Value {
        control::query(&self.socket(side), &Request::Status, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("status of {side}: {e:#}"))
    }
}

/// Two namespaces, a veth `va`/`vb` between them, the client address on
/// `va` and the DVIPA on `vb`, each routing the other's LAN to the veth.
fn namespaces(case: &str) -> Case {
    let (ns_a, ns_b) = (format!("plxc-{case}-a"), format!("plxc-{case}-b"));
    for ns in [&ns_a, &ns_b] {
        let _ = netns::delete(ns);
    }
    let c = Case {
        ns_a,
        ns_b,
        dir: tempfile::tempdir().expect("a temporary directory"),
        children: Vec::new(),
    };
    for ns in [&c.ns_a, &c.ns_b] {
        netns::create(ns).expect("creating a namespace");
        let _inside = netns::Inside::enter(ns).expect("entering it");
        for (k, v) in [
            ("net/ipv6/conf/all/disable_ipv6", "1"),
            ("net/ipv6/conf/default/disable_ipv6", "1"),
            ("net/ipv4/conf/all/rp_filter", "2"),
            ("net/ipv4/conf/default/rp_filter", "2"),
        ] {
            netns::sysctl(k, v).expect("sysctl");
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let a = NsLinks::open(&c.ns_a)?;
        let b = NsLinks::open(&c.ns_b)?;
        a.up("lo").await?;
        b.up("lo").await?;
        a.add_veth("va", &b, "vb").await?;
        a.add_addr("va", CLIENT, 24).await?;
        b.add_addr("vb", DVIPA, 24).await?;
        a.up("va").await?;
        b.up("vb").await?;
        a.add_route(Ipv4Addr::new(198, 18, 0, 0), 24, None, Some("va"))
            .await?;
        b.add_route(Ipv4Addr::new(198, 18, 1, 0), 24, None, Some("vb"))
            .await?;
        anyhow::Ok(())
    })
    .expect("building the veth");
    c
}

/// Waits until `f` holds, or panics with `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn output(mut cmd: Command) -> String {
    let out = cmd.output().expect("running a helper");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every SA of one end counted packets and nothing was dropped anywhere.
fn check_counters(side: &str, status: &serde_json::Value) {
    for dir in ["outbound", "inbound"] {
        let sas = status[dir].as_array().expect("SA list");
        assert!(!sas.is_empty(), "{side}: no {dir} SA: {status}");
        for sa in sas {
            assert!(
                sa["packets"].as_u64().unwrap_or(0) > 0,
                "{side}: {dir} SA counted no packet: {sa}"
            );
            let drops: u64 = sa["drops"]
                .as_object()
                .expect("drops")
                .values()
                .filter_map(|v| v.as_u64())
                .sum();
            assert_eq!(drops, 0, "{side}: {dir} SA drops: {sa}");
        }
    }
    for key in ["outbound_drops", "inbound_drops"] {
        let total: u64 = status[key]
            .as_object()
            .expect("drop map")
            .values()
            .filter_map(|v| v.as_u64())
            .sum();
        assert_eq!(total, 0, "{side}: {key}: {status}");
    }
    assert_eq!(status["replay_drops"], 0, "{side}: {status}");
}

/// Runs one protection end to end. `iperf` adds a 4-stream iperf3 run.
fn run_case(case: &str, sa: &str, iperf: bool) {
    if !common::can_use_namespaces(case) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = namespaces(case);
    let topo = c.dir.path().join("t.toml");
    std::fs::write(&topo, topology(sa)).expect("writing the topology");
    let exe = env!("CARGO_BIN_EXE_plexnet");
    let topo_arg = topo.to_str().expect("a UTF-8 path").to_owned();
    for (side, ns, peer) in [("a", c.ns_a.clone(), false), ("b", c.ns_b.clone(), true)] {
        let mut cmd = Command::new(exe);
        cmd.args(["client", "--topology", &topo_arg, "--client", "client1"])
            .args(["--netns", &ns, "--control"])
            .arg(c.socket(side));
        if peer {
            cmd.arg("--as-peer");
        }
        c.spawn(cmd);
    }
    for side in ["a", "b"] {
        let sock = c.socket(side);
        wait_for(
            &format!("plexnet client {side}"),
            Duration::from_secs(10),
            || {
                control::query(&sock, &Request::Status, Duration::from_millis(300))
                    .is_ok_and(|s| s["ready"] == true)
            },
        );
    }

    // Capture the wire on the peer's end of the veth.
    let pcap = c.dir.path().join("wire.pcap");
    let pcap_arg = pcap.to_str().expect("UTF-8").to_owned();
    let dump = c.spawn(Case::cmd(
        &c.ns_b,
        "tcpdump",
        &["-i", "vb", "-n", "-U", "-w", &pcap_arg],
    ));
    wait_for("tcpdump", Duration::from_secs(10), || {
        std::fs::metadata(&pcap).is_ok_and(|m| m.len() >= 24)
    });

    let ping = output(Case::cmd(
        &c.ns_a,
        "ping",
        &["-c", "3", "-i", "0.2", "-W", "2", &DVIPA.to_string()],
    ));
    assert!(ping.contains("3 received"), "{case}: {ping}");

    // TCP: an HTTP download of a 1 MiB file bound to the DVIPA.
    let www = c.dir.path().join("www");
    std::fs::create_dir(&www).expect("www");
    let blob: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join("blob"), &blob).expect("blob");
    let www_arg = www.to_str().expect("UTF-8").to_owned();
    c.spawn(Case::cmd(
        &c.ns_b,
        "python3",
        &[
            "-m",
            "http.server",
            "8080",
            "--bind",
            &DVIPA.to_string(),
            "--directory",
            &www_arg,
        ],
    ));
    let got = c.dir.path().join("got");
    let got_arg = got.to_str().expect("UTF-8").to_owned();
    let url = format!("http://{DVIPA}:8080/blob");
    wait_for("the HTTP download", Duration::from_secs(30), || {
        Case::cmd(
            &c.ns_a,
            "curl",
            &["-sf", "--max-time", "20", "-o", &got_arg, &url],
        )
        .status()
        .is_ok_and(|s| s.success())
    });
    assert!(
        std::fs::read(&got).expect("downloaded") == blob,
        "{case}: the download differs from the file"
    );

    if iperf {
        c.spawn(Case::cmd(
            &c.ns_b,
            "iperf3",
            &["-s", "-1", "-B", &DVIPA.to_string()],
        ));
        std::thread::sleep(Duration::from_millis(300));
        let out = output(Case::cmd(
            &c.ns_a,
            "iperf3",
            &["-c", &DVIPA.to_string(), "-t", "2", "-P", "4"],
        ));
        assert!(out.contains("receiver"), "{case}: {out}");
    }

    // Counters on both ends.
    let (sa_a, sa_b) = (c.status("a"), c.status("b"));
    check_counters("client", &sa_a);
    check_counters("peer", &sa_b);
    assert_eq!(sa_a["as_peer"], false);
    assert_eq!(sa_b["as_peer"], true);

    // The wire: only ESP, AH, ESP in UDP 4500 (and ARP) crossed it.
    std::thread::sleep(Duration::from_millis(200));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.children[dump].id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = c.children[dump].wait();
    let read = |filter: &str| common::tcpdump_read(&pcap, filter);
    let protected = read("ip proto 50 or ip proto 51 or udp port 4500");
    let other = read("not (ip proto 50 or ip proto 51 or udp port 4500 or arp)");
    assert!(
        protected.len() > 100,
        "{case}: {} protected packets",
        protected.len()
    );
    assert!(
        other.is_empty(),
        "{case}: unprotected packets on the wire:\n{}",
        other.join("\n")
    );
    let want = if sa.contains("udp_encap = true") {
        "UDP-encap"
    } else if sa.contains("\"ah") {
        "AH("
    } else {
        "ESP("
    };
    assert!(
        protected.iter().all(|l| l.contains(want)),
        "{case}: not all {want}: {}",
        protected.first().map_or("", |s| s.as_str())
    );
}

#[test]
fn client_esp_tunnel_aes_cbc_sha1() {
    run_case(
        "cbc",
        "protocol = \"esp\"\nmode = \"tunnel\"\nencryption = \"aes128-cbc\"\nintegrity = \"hmac-sha1-96\"",
        true,
    );
}

#[test]
fn client_esp_tunnel_aes_gcm() {
    run_case("gcm", "encryption = \"aes256-gcm16\"", false);
}

#[test]
fn client_esp_transport() {
    run_case(
        "esptr",
        "mode = \"transport\"\nencryption = \"aes256-cbc\"\nintegrity = \"hmac-sha256-128\"",
        false,
    );
}

#[test]
fn client_ah_transport() {
    run_case(
        "ahtr",
        "protocol = \"ah\"\nmode = \"transport\"\nintegrity = \"hmac-sha384-192\"",
        false,
    );
}

#[test]
fn client_ah_esp_tunnel() {
    run_case(
        "ahesp",
        "protocol = \"ah+esp\"\nencryption = \"aes128-cbc\"\nintegrity = \"hmac-sha512-256\"",
        false,
    );
}

#[test]
fn client_esp_in_udp() {
    run_case("udp", "udp_encap = true", true);
}
