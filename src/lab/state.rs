//! Where a running lab keeps its state: `/run/plexnet/<instance>/` holds
//! `state.json` (what `up` created, so `down` can undo it after any crash),
//! a copy of the topology file, each daemon's control socket and log.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const RUN_ROOT: &str = "/run/plexnet";
/// The namespace prefix (`plx-<node>`, docs/ARCHITECTURE.md); tests pass their own so they never
/// collide with a user's lab or with each other.
pub const DEFAULT_PREFIX: &str = "plx-";

/// What a node of the lab is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Image,
    Cf,
    Router,
    Client,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Image => "image",
            NodeKind::Cf => "cf",
            NodeKind::Router => "router",
            NodeKind::Client => "client",
        }
    }
    /// Images and the CF run a `plexnet` daemon (clients only with
    /// `ipsec = "plexnet"`: see [`NodeState::runs_daemon`]).
    pub fn has_daemon(self) -> bool {
        matches!(self, NodeKind::Image | NodeKind::Cf)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub kind: NodeKind,
    pub namespace: String,
    /// The daemon's pid once started.
    pub pid: Option<u32>,
    /// A client that runs `plexnet client` as its daemon (`ipsec =
    /// "plexnet"`). Absent in older state files.
    #[serde(default)]
    pub client_daemon: bool,
}

impl NodeState {
    /// Whether `up` starts a daemon for this node and `status` asks it.
    pub fn runs_daemon(&self) -> bool {
        self.kind.has_daemon() || self.client_daemon
    }
}

/// `state.json`: rewritten after every step of `up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub topology: String,
    pub prefix: String,
    pub source: PathBuf,
    pub nodes: Vec<NodeState>,
    /// Namespaces actually created so far (a failed `up` may stop halfway).
    pub namespaces: Vec<String>,
}

/// The run directory of a topology instance: `/run/plexnet/<name>` with the
/// default prefix, `/run/plexnet/<prefix><name>` with another one.
pub fn run_dir(topology: &str, prefix: &str) -> PathBuf {
    let dir = if prefix == DEFAULT_PREFIX {
        topology.to_string()
    } else {
        format!("{prefix}{topology}")
    };
    Path::new(RUN_ROOT).join(dir)
}

pub fn socket_path(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join(format!("{}.sock", node.to_lowercase()))
}

pub fn log_path(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join(format!("{}.log", node.to_lowercase()))
}

/// The topology file as the user gave it.
pub fn topology_copy(run_dir: &Path) -> PathBuf {
    run_dir.join("topology.toml")
}

/// The resolved topology `up` built, which the daemons read: they see
/// exactly what was validated, with every address assigned.
pub fn resolved_topology(run_dir: &Path) -> PathBuf {
    run_dir.join("topology.json")
}

impl LabState {
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join("state.json")
    }

    pub fn load(run_dir: &Path) -> Result<Self> {
        let p = Self::path(run_dir);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }

    /// Written to a temporary file and renamed, so a crash never leaves a
    /// half-written state behind.
    pub fn save(&self, run_dir: &Path) -> Result<()> {
        let p = Self::path(run_dir);
        let tmp = run_dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
    }

    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name) || n.namespace.eq_ignore_ascii_case(name))
    }
}

/// Every lab instance that has a state file, sorted by run directory.
pub fn instances() -> Vec<(PathBuf, LabState)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(RUN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .filter_map(|d| LabState::load(&d).ok().map(|s| (d, s)))
        .collect()
}
