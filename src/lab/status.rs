//! `plexnet status [--json]`: every node of every running topology, with
//! what its daemon says about itself.

use serde::Serialize;
use std::path::Path;
use std::time::Duration;

use super::fault::{self, record::Faults};
use super::neighbours::NeighbourTable;
use super::state::{self, LabState, NodeKind};
use super::{netns, process};
use crate::runtime::control;

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub kind: NodeKind,
    pub namespace: String,
    pub namespace_exists: bool,
    pub pid: Option<u32>,
    /// `charon` for a strongSwan client (its pid is charon's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<&'static str>,
    pub process_alive: bool,
    /// `true` when the daemon answered ready; routers and clients have no
    /// daemon and are ready when their namespace exists.
    pub ready: bool,
    /// The daemon's own status reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub topology: String,
    pub prefix: String,
    pub source: String,
    pub run_dir: String,
    pub nodes: Vec<NodeStatus>,
    /// The host's neighbour table, which every namespace shares: packets
    /// dropped because it was full are counted there only.
    pub kernel_neighbours: Option<NeighbourTable>,
    /// Links `plexnet link` took down and qdiscs `plexnet netem` set.
    pub faults: Faults,
}

pub fn instance_status(run_dir: &Path, lab: &LabState) -> InstanceStatus {
    let nodes = lab
        .nodes
        .iter()
        .map(|n| {
            let namespace_exists = netns::exists(&n.namespace);
            // A strongSwan client's process is its charon.
            let charon = (n.kind == NodeKind::Client && !n.runs_daemon())
                .then(|| fault::charon_configured(run_dir, &n.name))
                .filter(|c| *c)
                .map(|_| fault::charon_pid(run_dir, &n.name));
            let pid = charon.flatten().or(n.pid);
            let process_alive = pid.is_some_and(process::alive);
            let (daemon, error) = if n.runs_daemon() {
                let sock = state::socket_path(run_dir, &n.name);
                match control::query(&sock, &control::Request::Status, Duration::from_secs(2)) {
                    Ok(v) => (Some(v), None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                }
            } else {
                (None, None)
            };
            let ready = if n.runs_daemon() {
                daemon
                    .as_ref()
                    .and_then(|d| d.get("ready"))
                    .and_then(|r| r.as_bool())
                    .unwrap_or(false)
            } else if charon.is_some() {
                namespace_exists && process_alive
            } else {
                namespace_exists
            };
            NodeStatus {
                name: n.name.clone(),
                kind: n.kind,
                namespace: n.namespace.clone(),
                namespace_exists,
                pid,
                process: charon.map(|_| "charon"),
                process_alive,
                ready,
                daemon,
                error,
            }
        })
        .collect();
    InstanceStatus {
        topology: lab.topology.clone(),
        prefix: lab.prefix.clone(),
        source: lab.source.display().to_string(),
        run_dir: run_dir.display().to_string(),
        nodes,
        kernel_neighbours: NeighbourTable::read(),
        faults: Faults::load(run_dir).unwrap_or_default(),
    }
}

/// Every running instance whose namespaces carry `prefix`.
pub fn all(prefix: &str) -> Vec<InstanceStatus> {
    state::instances()
        .iter()
        .filter(|(_, lab)| lab.prefix == prefix)
        .map(|(dir, lab)| instance_status(dir, lab))
        .collect()
}

/// The table `plexnet status` prints.
pub fn render(instances: &[InstanceStatus]) -> String {
    if instances.is_empty() {
        return "no topology is up (start one with `sudo plexnet up` or `sudo make topology`)\n"
            .to_string();
    }
    let mut s = String::new();
    for inst in instances {
        s.push_str(&format!(
            "topology {} ({}), run dir {}\n",
            inst.topology, inst.source, inst.run_dir
        ));
        s.push_str(&format!(
            "  {:<8} {:<7} {:<14} {:<8} {:<6} {}\n",
            "NODE", "KIND", "NAMESPACE", "PID", "READY", "DETAIL"
        ));
        for n in &inst.nodes {
            s.push_str(&format!(
                "  {:<8} {:<7} {:<14} {:<8} {:<6} {}\n",
                n.name,
                n.kind.as_str(),
                n.namespace,
                n.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                if n.ready { "yes" } else { "NO" },
                detail(n)
            ));
        }
        if let Some(t) = &inst.kernel_neighbours {
            s.push_str(&format!(
                "  kernel neighbour table (all namespaces): {} entries (permanent ones included), gc_thresh3 {}; dropped: {} table full, {} unresolved\n",
                t.entries, t.gc_thresh3, t.table_fulls, t.unresolved_discards
            ));
        }
        s.push_str(&render_faults(&inst.faults));
    }
    s
}

/// The links down and the shaped interfaces, one line each.
fn render_faults(f: &Faults) -> String {
    let mut s = String::new();
    for l in &f.links_down {
        s.push_str(&format!(
            "  link DOWN  {} {} ({}) <-> {} ({})  (`plexnet link {} {} up`)\n",
            l.kind, l.node, l.node_if, l.peer, l.peer_if, l.node, l.peer
        ));
    }
    for q in &f.shaped {
        s.push_str(&format!(
            "  shaped     {} {}: {}  (`plexnet netem {} {} --clear`)\n",
            q.node, q.iface, q.qdisc, q.node, q.iface
        ));
    }
    s
}

fn detail(n: &NodeStatus) -> String {
    if !n.namespace_exists {
        return "namespace missing".into();
    }
    if let (Some(pid), false) = (n.pid, n.process_alive) {
        return format!(
            "not running: {} pid {pid} is gone (`plexnet restart {}` starts it)",
            n.process.unwrap_or("daemon"),
            n.name
        );
    }
    if let Some(e) = &n.error {
        return format!("daemon not answering: {e}");
    }
    if !n.namespace_exists {
        return "namespace missing".into();
    }
    n.daemon
        .as_ref()
        .and_then(|d| d.get("summary"))
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .to_string()
}
