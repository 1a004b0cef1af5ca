//! Starting daemons inside namespaces and stopping every process in one.

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::netns;

/// Starts `plexnet daemon` for `node` in its own session, detached from the
/// terminal, stdout and stderr appended to its log. The daemon enters the
/// namespace itself, before it starts any thread.
pub fn spawn_daemon(run_dir: &Path, node: &str, namespace: &str, log: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let exe = plexnet_exe()?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let child = Command::new(exe)
        .arg("daemon")
        .arg("--run-dir")
        .arg(run_dir)
        .arg("--node")
        .arg(node)
        .arg("--netns")
        .arg(namespace)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting the daemon of {node}"))?;
    Ok(child.id())
}

/// The `plexnet` binary to run daemons with: `PLEXNET_BIN` when set (a
/// library caller such as a test harness), else this very executable.
pub fn plexnet_exe() -> Result<std::path::PathBuf> {
    match std::env::var_os("PLEXNET_BIN") {
        Some(p) => Ok(p.into()),
        None => std::env::current_exe().context("finding the plexnet executable"),
    }
}

/// A command run inside `namespace` by `plexnet ns-exec` (as `ip netns
/// exec` would, with `/etc/netns/<ns>/*` over `/etc`).
pub fn in_namespace(namespace: &str, argv: &[&str]) -> Result<Command> {
    let mut cmd = Command::new(plexnet_exe()?);
    cmd.arg("ns-exec").arg(namespace).arg("--").args(argv);
    Ok(cmd)
}

/// Every process whose network namespace is `namespace`.
pub fn pids_in_namespace(namespace: &str) -> Vec<u32> {
    let Some(target) = netns::inode(&netns::path(namespace)) else {
        return Vec::new();
    };
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            netns::inode(&Path::new("/proc").join(pid.to_string()).join("ns/net")) == Some(target)
        })
        .collect()
}

pub fn alive(pid: u32) -> bool {
    // A zombie still answers kill(0); treat it as gone.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// SIGTERM, a grace period, then SIGKILL for whatever is left. Returns the
/// pids that had to be killed.
pub fn stop(pids: &[u32], grace: Duration) -> Vec<u32> {
    let signal = |pids: &[u32], sig| {
        for &pid in pids {
            let _ = kill(Pid::from_raw(pid as i32), sig);
        }
    };
    signal(pids, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pids.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    signal(&left, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && left.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    left
}
