//! `faults.json` in a lab's run directory: the links `plexnet link` took
//! down and the qdiscs `plexnet netem` installed, for `plexnet status`.
//! `down` removes it with the run directory.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A link taken down with `plexnet link NODE PEER down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDown {
    /// The link's kind: `xcf`, `ext`, `lan` or `cf`.
    pub kind: String,
    pub node: String,
    pub node_if: String,
    pub peer: String,
    pub peer_if: String,
    /// Seconds since the Unix epoch when it went down.
    pub since: u64,
}

impl LinkDown {
    /// Whether this is the link between `a` and `b` (either order).
    pub fn joins(&self, a: &str, b: &str) -> bool {
        let eq = |x: &str, y: &str| x.eq_ignore_ascii_case(y);
        (eq(&self.node, a) && eq(&self.peer, b)) || (eq(&self.node, b) && eq(&self.peer, a))
    }
}

/// A qdisc `plexnet netem` installed on a node's interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shaped {
    pub node: String,
    pub iface: String,
    /// The qdisc as `tc` was given it, e.g. `netem delay 20ms loss 1%`.
    pub qdisc: String,
}

/// Everything a lab's faults left in place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    pub links_down: Vec<LinkDown>,
    pub shaped: Vec<Shaped>,
}

impl Faults {
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join("faults.json")
    }

    /// The lab's record; none yet is an empty one.
    pub fn load(run_dir: &Path) -> Result<Faults> {
        let p = Self::path(run_dir);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("parsing {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Faults::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Written to a temporary file and renamed, as `state.json` is.
    pub fn save(&self, run_dir: &Path) -> Result<()> {
        let p = Self::path(run_dir);
        let tmp = run_dir.join("faults.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
    }

    /// Loads, changes and saves the record.
    pub fn update(run_dir: &Path, change: impl FnOnce(&mut Faults)) -> Result<()> {
        let mut f = Self::load(run_dir)?;
        change(&mut f);
        f.save(run_dir)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
