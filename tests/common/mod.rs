//! Helpers shared by the integration tests that need namespaces.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// True when the test may create namespaces. Root always runs them (CI and
/// `sudo make test` are root); outside CI a non-root run skips with a message
/// naming what is missing; in CI a missing requirement fails the test.
pub fn can_use_namespaces(test: &str) -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root (run `sudo make test`)")
    } else if !Path::new("/dev/net/tun").exists() {
        Some("/dev/net/tun")
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var_os("CI").is_some() => {
            panic!("{test}: needs {what}, and CI must run it")
        }
        Some(what) => {
            eprintln!("SKIPPED {test}: needs {what}");
            false
        }
    }
}

pub fn plexnet(prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plexnet"))
        .arg("--prefix")
        .arg(prefix)
        .args(args)
        .output()
        .expect("running plexnet")
}

pub fn ok(prefix: &str, args: &[&str]) -> String {
    let out = plexnet(prefix, args);
    assert!(
        out.status.success(),
        "plexnet {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Brings the lab down when dropped, also when the test panics.
pub struct LabGuard {
    pub prefix: &'static str,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = plexnet(self.prefix, &["down", "--all"]);
    }
}

/// Namespaces in /run/netns starting with `prefix`.
pub fn namespaces(prefix: &str) -> Vec<String> {
    plexnet::lab::netns::list_with_prefix(prefix)
}

/// A tcpdump running in a node's namespace, writing a pcap; stopped (and
/// its last packets flushed) by [`Capture::stop`] or on drop.
pub struct Capture {
    child: std::process::Child,
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Capture {
    /// Starts capturing `iface` in `node` with a BPF `filter`, and waits
    /// until tcpdump has written its file header (it is capturing then).
    pub fn start(prefix: &str, node: &str, iface: &str, filter: &str) -> Capture {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(format!("{node}-{iface}.pcap"));
        // tcpdump drops to its own user: let it write there.
        let _ = std::process::Command::new("chmod")
            .arg("777")
            .arg(dir.path())
            .status();
        let child = Command::new(env!("CARGO_BIN_EXE_plexnet"))
            .args([
                "--prefix", prefix, "exec", node, "--", "tcpdump", "-i", iface, "-n", "-U",
            ])
            .args(["--immediate-mode", "-s", "0", "-w"])
            .arg(&path)
            .arg(filter)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tcpdump");
        let start = std::time::Instant::now();
        while std::fs::metadata(&path).map_or(0, |m| m.len()) < 24 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "tcpdump did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Capture {
            child,
            path,
            _dir: dir,
        }
    }

    pub fn stop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }

    /// `tcpdump -r` of the capture with a read filter, one line per packet.
    pub fn read(&self, filter: &str) -> Vec<String> {
        tcpdump_read(&self.path, filter)
    }
}

/// `tcpdump -r` of the capture file `pcap` with a read filter, one line
/// per packet.
pub fn tcpdump_read(pcap: &Path, filter: &str) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(pcap)
        .arg(filter)
        .output()
        .expect("tcpdump -r");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `f` every 100 ms until it is true or `secs` pass.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Node `name` of the lab `prefix` in `status --json` (read also when
/// `status` exits non-zero because a node is dead).
pub fn status_node(prefix: &str, name: &str) -> serde_json::Value {
    let out = plexnet(prefix, &["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    st.as_array()
        .and_then(|a| a.iter().find(|t| t["prefix"] == prefix))
        .and_then(|t| t["nodes"].as_array())
        .and_then(|n| n.iter().find(|n| n["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("{name} in status: {st}"))
}

/// `dvipa`'s row in `netstat IMAGE vipadcfg --json`'s VIPA status (null
/// while the image does not answer).
pub fn vipa_status(prefix: &str, image: &str, dvipa: &str) -> serde_json::Value {
    let out = plexnet(prefix, &["netstat", image, "vipadcfg", "--json"]);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return serde_json::Value::Null;
    };
    v["vipadcfg"]["status"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["dvipa"] == dvipa))
        .cloned()
        .unwrap_or_default()
}

pub fn json(prefix: &str, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(prefix, args))
        .unwrap_or_else(|e| panic!("plexnet {args:?}: not JSON: {e}"))
}

/// `curl -s -m 5 http://DVA1/` from `client`: the answer when an image
/// served it (`served by ...`), else what went wrong.
pub fn curl_dva1(prefix: &str, client: &str) -> Result<String, String> {
    let out = plexnet(
        prefix,
        &[
            "exec",
            client,
            "--",
            "curl",
            "-s",
            "-m",
            "5",
            "http://DVA1/",
        ],
    );
    let body = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && body.starts_with("served by ") {
        Ok(body)
    } else {
        Err(format!(
            "{body}{}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Waits up to `secs` until routing stack `routing` sees at least `n`
/// targets ready on DVA1:`port` (its `netstat vdpt`).
pub fn wait_ready_targets(prefix: &str, routing: &str, port: u16, n: usize, secs: u64) {
    wait_until("targets registered on the distributed port", secs, || {
        let v = json(prefix, &["netstat", routing, "vdpt", "--json"]);
        v["vdpt"].as_array().is_some_and(|rows| {
            rows.iter()
                .filter(|r| r["dvipa"] == "198.18.0.100" && r["port"] == port && r["ready"] == true)
                .count()
                >= n
        })
    });
}

/// Starts an iperf3 server on DVA1:`port` in each image, for each port.
pub fn iperf3_servers(prefix: &str, images: &[&str], ports: &[&str]) {
    for image in images {
        for port in ports {
            ok(
                prefix,
                &[
                    "exec",
                    image,
                    "--",
                    "iperf3",
                    "-s",
                    "-D",
                    "-B",
                    "198.18.0.100",
                    "-p",
                    port,
                ],
            );
        }
    }
}

/// `swanctl ARGS` in client1 of the lab under `prefix`.
pub fn swanctl(prefix: &str, args: &[&str]) -> Output {
    let mut a = vec!["exec", "client1", "--", "swanctl"];
    a.extend_from_slice(args);
    plexnet(prefix, &a)
}

/// `swanctl ARGS` in client1, which must succeed; its stdout and stderr.
pub fn swanctl_ok(prefix: &str, args: &[&str]) -> String {
    let out = swanctl(prefix, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "swanctl {args:?} failed:\n{text}");
    text
}

/// Loads one connection `name` (child `name`) from client1 (198.18.1.2)
/// to DVA1 into client1's charon of figure4 under `prefix`, with these
/// proposals and key, replacing whatever had that name.
pub fn load_conn(prefix: &str, name: &str, ike: &str, esp: &str, psk: &str) {
    let conf = plexnet::lab::strongswan::swanctl_conn(
        name,
        std::net::Ipv4Addr::new(198, 18, 1, 2),
        std::net::Ipv4Addr::new(198, 18, 0, 100),
        ike,
        esp,
        psk,
    );
    let path = plexnet::lab::state::run_dir("figure4", prefix).join(format!("case-{name}.conf"));
    std::fs::write(&path, conf).expect("write conf");
    let p = path.display().to_string();
    swanctl_ok(prefix, &["--load-all", "--noprompt", "--file", &p]);
}

/// Opens three connections to DVA1:80 and sends half a request on each;
/// the other half goes when a line arrives on stdin; then prints `port
/// answer` per connection (or `port error`). `{CONNECT}` and `{REPLY}`
/// are the connect and answer timeouts in seconds.
const HALF_OPEN: &str = r#"
import socket, sys
conns = []
for _ in range(3):
    s = socket.create_connection(("198.18.0.100", 80), timeout={CONNECT})
    s.sendall(b"GET / HTTP/1.0\r\n")
    conns.append(s)
print("open", flush=True)
sys.stdin.readline()
for s in conns:
    port = s.getsockname()[1]
    try:
        s.settimeout({REPLY})
        s.sendall(b"\r\n")
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        body = data.split(b"\r\n\r\n", 1)[-1].decode().strip()
        print(port, body.replace(" ", "_"), flush=True)
    except Exception as e:
        print(port, "error", flush=True)
"#;

/// Three connections from `client` to DVA1:80 half way through their
/// request (a python3 script in the client's namespace), to carry over a
/// takeover or a giveback.
pub struct HalfOpen {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl HalfOpen {
    /// Opens them; returns once all three are connected and half sent.
    pub fn start(prefix: &str, client: &str, connect_secs: u32, reply_secs: u32) -> HalfOpen {
        use std::io::BufRead;
        let script = HALF_OPEN
            .replace("{CONNECT}", &connect_secs.to_string())
            .replace("{REPLY}", &reply_secs.to_string());
        let mut child = Command::new(env!("CARGO_BIN_EXE_plexnet"))
            .args(["--prefix", prefix, "exec", client, "--", "python3", "-c"])
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(out).lines();
        assert_eq!(
            lines.next().and_then(Result::ok).as_deref(),
            Some("open"),
            "{client}: connections opened"
        );
        HalfOpen { child, lines }
    }

    /// Sends the second halves; returns the `port answer` lines.
    pub fn finish(mut self) -> Vec<String> {
        use std::io::Write;
        writeln!(self.child.stdin.as_mut().expect("stdin")).expect("second half");
        let answers: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        let _ = self.child.wait();
        answers
    }
}
