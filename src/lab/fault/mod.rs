//! Faults on demand, as containerlab's `tools netem` and Mininet's `link`
//! give them: `plexnet link NODE PEER down|up` ([`link`]), `plexnet netem
//! NODE IF` ([`netem`]), `plexnet kill NODE` and `plexnet restart NODE`
//! (here). What each fault does to the sysplex is in docs/FAULTS.md.
//!
//! Every command finds its node among the running labs of a prefix the
//! way `plexnet exec` does ([`find`]); what a fault leaves in place (a link
//! down, a qdisc) is recorded in the run directory ([`record`]) so that
//! `plexnet status` can show it.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::state::{self, LabState, NodeKind, NodeState};
use super::{process, strongswan};
use crate::runtime::control;
use crate::topology::{ClientIpsec, Topology};

pub mod link;
pub mod loss;
pub mod netem;
pub mod record;

/// How long a restarted daemon may take to answer ready. Longer than
/// `up`'s 10 s: a restarted image resyncs with every peer first, and the
/// helpers that restart nodes do so while other labs load the machine.
pub const RESTART_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a killed process may take to disappear.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// SIGTERM to SIGKILL, when `restart` stops a running node first.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A node of a running lab, with what a fault needs to know about it.
#[derive(Debug, Clone)]
pub struct Found {
    pub run_dir: PathBuf,
    pub lab: LabState,
    pub node: NodeState,
}

impl Found {
    /// The topology `up` resolved for this lab (every address assigned).
    pub fn topology(&self) -> Result<Topology> {
        let p = state::resolved_topology(&self.run_dir);
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", p.display()))
    }

    /// What process this node runs, if any.
    pub fn process(&self) -> Result<NodeProcess> {
        let n = &self.node;
        if n.runs_daemon() {
            return Ok(NodeProcess::Daemon);
        }
        match n.kind {
            NodeKind::Client if charon_configured(&self.run_dir, &n.name) => {
                Ok(NodeProcess::Charon)
            }
            NodeKind::Router => bail!(
                "{} is the router: it runs no process of its own; take one of its links down instead (`plexnet link {} PEER down`)",
                n.name, n.name
            ),
            _ => bail!(
                "{} is a {} with no process of its own (no daemon, no strongSwan): nothing to kill or restart",
                n.name,
                n.kind.as_str()
            ),
        }
    }

    /// The pid of the node's process, as far as the lab knows it.
    pub fn pid(&self) -> Option<u32> {
        match self.process().ok()? {
            NodeProcess::Daemon => self.node.pid,
            NodeProcess::Charon => charon_pid(&self.run_dir, &self.node.name),
        }
    }
}

/// Which process of a node `kill` and `restart` act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeProcess {
    /// `plexnet daemon`: an image, the CF, or a client with `ipsec = "plexnet"`.
    Daemon,
    /// strongSwan's charon in a client with `ipsec = "strongswan"`.
    Charon,
}

impl NodeProcess {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeProcess::Daemon => "plexnet daemon",
            NodeProcess::Charon => "charon",
        }
    }
}

/// Whether `up` set up charon for `client` (its state directory exists).
pub fn charon_configured(run_dir: &Path, client: &str) -> bool {
    strongswan::state_dir(run_dir, client).is_dir()
}

/// charon's pid from its pid file (`/run/charon.pid` in its own `/run`).
pub fn charon_pid(run_dir: &Path, client: &str) -> Option<u32> {
    let p = strongswan::state_dir(run_dir, client).join("charon.pid");
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// `node` among the running labs of `prefix` (in `topology` when given):
/// an unknown node is an error that names the labs' nodes.
pub fn find(node: &str, topology: Option<&str>, prefix: &str) -> Result<Found> {
    let labs: Vec<(PathBuf, LabState)> = state::instances()
        .into_iter()
        .filter(|(_, lab)| lab.prefix == prefix)
        .filter(|(_, lab)| topology.is_none_or(|t| lab.topology == t))
        .collect();
    if labs.is_empty() {
        bail!(
            "no topology{} is up with prefix {prefix} (see `plexnet status`)",
            topology.map(|t| format!(" {t}")).unwrap_or_default()
        );
    }
    let mut hits: Vec<Found> = labs
        .iter()
        .filter_map(|(dir, lab)| {
            lab.node(node).map(|n| Found {
                run_dir: dir.clone(),
                lab: lab.clone(),
                node: n.clone(),
            })
        })
        .collect();
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => {
            let names: Vec<&str> = labs
                .iter()
                .flat_map(|(_, l)| l.nodes.iter().map(|n| n.name.as_str()))
                .collect();
            bail!(
                "no node {node} in the running lab: its nodes are {}",
                names.join(", ")
            )
        }
        _ => bail!(
            "node {node} exists in several running topologies ({}): choose one with --topology",
            hits.iter()
                .map(|f| f.lab.topology.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What `plexnet kill` did.
#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    pub node: String,
    pub kind: NodeKind,
    pub process: NodeProcess,
    pub pid: u32,
    pub signal: &'static str,
    /// From the signal until the process was gone.
    pub gone_after_ms: u128,
}

/// `plexnet kill NODE`: SIGKILL to the node's daemon (an image, the CF, a
/// plexnet client) or to a strongSwan client's charon, as a crash would
/// end it: no goodbye to its peers, nothing cleaned up. A node that is not
/// running is an error.
pub fn kill(found: &Found) -> Result<KillReport> {
    let what = found.process()?;
    let name = &found.node.name;
    let pid = found
        .pid()
        .with_context(|| format!("{name} has no {} pid recorded", what.as_str()))?;
    if !process::alive(pid) {
        bail!(
            "{name} is not running: its {} (pid {pid}) is gone; `plexnet restart {name}` starts it",
            what.as_str()
        );
    }
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("sending SIGKILL to {name}'s {} (pid {pid})", what.as_str()))?;
    while process::alive(pid) {
        if t.elapsed() > KILL_WAIT {
            bail!(
                "{name}'s {} (pid {pid}) still runs {} s after SIGKILL",
                what.as_str(),
                KILL_WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(KillReport {
        node: name.clone(),
        kind: found.node.kind,
        process: what,
        pid,
        signal: "SIGKILL",
        gone_after_ms: t.elapsed().as_millis(),
    })
}

/// What `plexnet restart` did.
#[derive(Debug, Clone, Serialize)]
pub struct RestartReport {
    pub node: String,
    pub kind: NodeKind,
    pub process: NodeProcess,
    /// The process that was still running and was stopped first.
    pub stopped_pid: Option<u32>,
    pub pid: u32,
    /// From the start until the node answered ready.
    pub ready_after_ms: u128,
}

/// `plexnet restart NODE`: starts the node's process again as `up` does
/// (a running one is stopped first: SIGTERM, then SIGKILL after 3 s) and
/// waits until it answers ready. `progress` gets a line while it waits.
pub fn restart(found: &Found, progress: &dyn Fn(&str)) -> Result<RestartReport> {
    let what = found.process()?;
    let name = found.node.name.clone();
    let stopped_pid = found.pid().filter(|&p| process::alive(p));
    if let Some(pid) = stopped_pid {
        progress(&format!(
            "  stopping {name}'s {} (pid {pid})",
            what.as_str()
        ));
        process::stop(&[pid], STOP_GRACE);
    }
    let t = Instant::now();
    let pid = match what {
        NodeProcess::Daemon => restart_daemon(found, progress)?,
        NodeProcess::Charon => restart_charon(found)?,
    };
    Ok(RestartReport {
        node: name,
        kind: found.node.kind,
        process: what,
        stopped_pid,
        pid,
        ready_after_ms: t.elapsed().as_millis(),
    })
}

fn restart_daemon(found: &Found, progress: &dyn Fn(&str)) -> Result<u32> {
    let (dir, n) = (&found.run_dir, &found.node);
    let socket = state::socket_path(dir, &n.name);
    // A killed daemon leaves its socket file: a status query must not
    // mistake it for the new daemon's.
    let _ = std::fs::remove_file(&socket);
    let log = state::log_path(dir, &n.name);
    let pid = process::spawn_daemon(dir, &n.name, &n.namespace, &log)?;
    save_pid(dir, &n.name, pid)?;
    progress(&format!(
        "  {} started, pid {pid}; waiting until it answers ready",
        n.name
    ));
    wait_ready(dir, &n.name, pid)?;
    Ok(pid)
}

/// Records the new pid in `state.json` (read again just before: another
/// command may have changed another node meanwhile).
fn save_pid(run_dir: &Path, node: &str, pid: u32) -> Result<()> {
    let mut lab = LabState::load(run_dir)?;
    if let Some(n) = lab
        .nodes
        .iter_mut()
        .find(|n| n.name.eq_ignore_ascii_case(node))
    {
        n.pid = Some(pid);
    }
    lab.save(run_dir)
}

/// Polls the daemon's control socket until it answers ready; a daemon
/// that dies or stays silent past [`RESTART_READY_TIMEOUT`] is an error
/// with the end of its log.
pub fn wait_ready(run_dir: &Path, node: &str, pid: u32) -> Result<()> {
    let start = Instant::now();
    let sock = state::socket_path(run_dir, node);
    let log = state::log_path(run_dir, node);
    loop {
        let reply = control::query(&sock, &control::Request::Status, Duration::from_secs(1));
        if reply.is_ok_and(|r| r.get("ready").and_then(|v| v.as_bool()) == Some(true)) {
            return Ok(());
        }
        if !process::alive(pid) {
            bail!(
                "{node} (pid {pid}) exited while starting; its log {} ends with:\n{}",
                log.display(),
                super::up::log_tail(&log, 10)
            );
        }
        if start.elapsed() > RESTART_READY_TIMEOUT {
            bail!(
                "{node} (pid {pid}) did not answer ready within {} s; its log {} ends with:\n{}",
                RESTART_READY_TIMEOUT.as_secs(),
                log.display(),
                super::up::log_tail(&log, 10)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// charon again, as `up` starts it: configuration, `swanctl --stats`
/// until it answers, every plugin loaded, connections loaded.
fn restart_charon(found: &Found) -> Result<u32> {
    let topo = found.topology()?;
    let name = &found.node.name;
    let client = topo
        .client(name)
        .filter(|c| c.ipsec == ClientIpsec::Strongswan)
        .with_context(|| format!("{name} is not a strongSwan client of {}", topo.name))?;
    // A killed charon leaves its pid file and vici socket behind.
    let dir = strongswan::state_dir(&found.run_dir, name);
    let _ = std::fs::remove_file(dir.join("charon.pid"));
    let _ = std::fs::remove_file(dir.join("charon.vici"));
    strongswan::start(&found.run_dir, &topo, client, &found.node.namespace)
}
