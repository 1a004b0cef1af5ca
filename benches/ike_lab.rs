//! `make bench-ike` (root): the routing stack's IKE in a running figure4.
//!
//! 1. IKE SA + child SA setups per second at MVS1 (DVA1's routing stack)
//!    for the Diffie-Hellman groups x25519, ecp256 and modp2048 (proposals
//!    `aes128-sha256-<group>` / `aes128-sha1`), initiated by `plexnet
//!    client`'s IKE initiator ([`ike_setups`]), several instances at once in
//!    client2's namespace, each with a few exchanges in flight; each IKE SA
//!    is deleted once its child SA is up, so the routing stack installs and
//!    removes one SA pair per setup (CF structure, every shadow cache).
//!    Writes `target/bench/ike.json`.
//! 2. iperf3 from strongSwan in client1 to DVA1 (through the sysplex:
//!    MVS1 peeks and forwards, MVS2 decrypts and seals), next to iperf3
//!    over a strongSwan↔strongSwan tunnel between two namespaces of its own,
//!    in the same run, with the same proposals (`aes128-sha256-x25519` /
//!    `aes128-sha1`, DESIGN.md's reference). Writes `target/bench/iperf.json`
//!    with both rates and their ratio.
//!
//! Environment: `PLEXNET_BENCH_SETUPS` (setups per group, default 400),
//! `PLEXNET_BENCH_IPERF_SECONDS` (default 10).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use plexnet::lab::{netns, strongswan};
use plexnet::runtime::client_ike::{ike_setups, ClientIke, SetupReport};

const PREFIX: &str = "plxb-";
const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const CLIENT2: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
const GROUPS: [(&str, &str); 3] = [
    ("x25519", "aes128-sha256-x25519"),
    ("ecp256", "aes128-sha256-ecp256"),
    ("modp2048", "aes128-sha256-modp2048"),
];
const ESP: &str = "aes128-sha1";
const INSTANCES: u64 = 2;
const IN_FLIGHT: u64 = 4;

fn plexnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plexnet"))
        .arg("--prefix")
        .arg(PREFIX)
        .args(args)
        .output()
        .expect("running plexnet")
}

fn ok(args: &[&str]) -> String {
    let out = plexnet(args);
    assert!(
        out.status.success(),
        "plexnet {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = plexnet(&["down", "--all"]);
    }
}

/// A topology file: figure4 under its own name. Its Policy Agent policy
/// offers the z/OS groups 14, 19 and 20 (modp2048, ecp256, ecp384); the
/// setups below configure the IKE endpoint directly, x25519 included.
fn bench_topology(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string("topologies/figure4.toml").expect("figure4.toml");
    let text = text.replace("name = \"figure4\"", "name = \"benchike\"");
    let path = dir.join("benchike.toml");
    std::fs::write(&path, text).expect("write topology");
    path
}

fn setups(proposal: &str, n: u64) -> SetupReport {
    let mut settings = plexnet::topology::load(Path::new("topologies/figure4.toml"))
        .expect("figure4")
        .ike
        .expect("[ike]");
    settings.proposals = proposal.to_owned();
    settings.esp_proposals = ESP.to_owned();
    let ike = ClientIke {
        local: CLIENT2,
        dvipas: vec![DVA1],
        settings,
    };
    let per = n / INSTANCES;
    let threads: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let ike = ike.clone();
            std::thread::spawn(move || {
                netns::enter(&format!("{PREFIX}client2")).expect("enter client2");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(ike_setups(&ike, per, IN_FLIGHT))
                    .expect("setups")
            })
        })
        .collect();
    let start = Instant::now();
    let reports: Vec<SetupReport> = threads
        .into_iter()
        .map(|t| t.join().expect("initiator"))
        .collect();
    SetupReport {
        established: reports.iter().map(|r| r.established).sum(),
        failed: reports.iter().map(|r| r.failed).sum(),
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn iperf_bps(json: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(json).expect("iperf3 -J output");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no rate in iperf3 output: {json}"))
}

/// iperf3 client1 → DVA1 through the sysplex, strongSwan in client1.
fn iperf_cluster(seconds: u64) -> f64 {
    let run_dir = plexnet::lab::state::run_dir("benchike", PREFIX);
    let conf = strongswan::swanctl_conn(
        "dva1",
        Ipv4Addr::new(198, 18, 1, 2),
        DVA1,
        "aes128-sha256-ecp256",
        ESP,
        "plexnet-figure4",
    );
    let file = run_dir.join("iperf.conf");
    std::fs::write(&file, conf).expect("conf");
    let f = file.display().to_string();
    ok(&[
        "exec",
        "client1",
        "--",
        "swanctl",
        "--load-all",
        "--noprompt",
        "--file",
        &f,
    ]);
    ok(&[
        "exec",
        "client1",
        "--",
        "swanctl",
        "--initiate",
        "--child",
        "dva1",
    ]);
    // One iperf3 server, on MVS2: DVA1 port 60 has no other listener, so
    // the distributor sends the control and the data connection there.
    let mut server = Command::new(env!("CARGO_BIN_EXE_plexnet"))
        .args(["--prefix", PREFIX, "exec", "mvs2", "--"])
        .args(["iperf3", "-s", "-1", "-p", "60", "-B", "198.18.0.100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 server");
    // Listeners reach the routing stack within a second.
    std::thread::sleep(Duration::from_millis(2500));
    let t = seconds.to_string();
    let out = ok(&[
        "exec",
        "client1",
        "--",
        "iperf3",
        "-c",
        "198.18.0.100",
        "-p",
        "60",
        "-t",
        &t,
        "-J",
    ]);
    let _ = server.wait();
    iperf_bps(&out)
}

/// strongSwan <-> strongSwan (kernel-libipsec) between two namespaces of
/// its own, aes128-sha256-x25519 / aes128-sha1, one stream: the baseline,
/// from `scripts/strongswan-pair.sh` (shared with `make bench-sysplex`), in
/// bits per second.
fn iperf_reference(seconds: u64) -> f64 {
    let out = Command::new("scripts/strongswan-pair.sh")
        .arg(seconds.to_string())
        .arg("1")
        .env("IKE_PROPOSALS", "aes128-sha256-x25519")
        .env("ESP_PROPOSALS", ESP)
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/strongswan-pair.sh");
    assert!(out.status.success(), "strongswan-pair.sh failed");
    let mbit: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("strongswan-pair.sh prints Mbit/s");
    mbit * 1e6
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("bench-ike needs root (namespaces): run `sudo make bench-ike`");
        return;
    }
    let n = env_u64("PLEXNET_BENCH_SETUPS", 400);
    let seconds = env_u64("PLEXNET_BENCH_IPERF_SECONDS", 10);
    let out_dir = Path::new("target/bench");
    std::fs::create_dir_all(out_dir).expect("target/bench");
    let work = std::env::temp_dir().join(format!("plexnet-bench-ike-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let _cleanup = Cleanup;
    let _ = plexnet(&["down", "--all"]);
    let topo = bench_topology(&work);
    ok(&["up", &topo.display().to_string()]);

    let mut groups = serde_json::Map::new();
    for (name, proposal) in GROUPS {
        let r = setups(proposal, n);
        let rate = r.established as f64 / r.seconds;
        println!(
            "IKE SA + child SA setups, {name:>8}: {:>4} in {:.2} s = {rate:.1}/s ({} failed)",
            r.established, r.seconds, r.failed
        );
        groups.insert(
            name.to_owned(),
            serde_json::json!({
                "proposal": proposal,
                "esp": ESP,
                "established": r.established,
                "failed": r.failed,
                "seconds": r.seconds,
                "setups_per_second": rate,
            }),
        );
    }
    let ike = serde_json::json!({
        "what": "IKE SA + child SA setups per second at MVS1 (DVA1's routing stack), initiated by plexnet client's IKE initiator in client2; each setup installs an SA pair in the CF and 3 shadow caches, then deletes it",
        "instances": INSTANCES,
        "in_flight_per_instance": IN_FLIGHT,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "groups": groups,
    });
    std::fs::write(
        out_dir.join("ike.json"),
        serde_json::to_vec_pretty(&ike).expect("json"),
    )
    .expect("ike.json");

    let cluster = iperf_cluster(seconds);
    ok(&["down", "--all"]);
    let reference = iperf_reference(seconds);
    let ratio = cluster / reference;
    println!(
        "iperf3 strongSwan client1 -> DVA1: {:.0} Mbit/s; strongSwan <-> strongSwan: {:.0} Mbit/s; ratio {ratio:.2}",
        cluster / 1e6,
        reference / 1e6
    );
    let iperf = serde_json::json!({
        "proposals": {"ike": "aes128-sha256-x25519", "esp": ESP},
        "seconds": seconds,
        "cluster_bits_per_second": cluster,
        "strongswan_pair_bits_per_second": reference,
        "ratio": ratio,
        "goal": 1.0,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    std::fs::write(
        out_dir.join("iperf.json"),
        serde_json::to_vec_pretty(&iperf).expect("json"),
    )
    .expect("iperf.json");
    let _ = std::fs::remove_dir_all(&work);
}
