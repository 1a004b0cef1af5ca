//! `plexnet down`: stop every process inside a topology's namespaces, remove
//! the namespaces (their veths and bridges go with them) and the run
//! directory. Works from whatever is left: a state file, a topology file, or
//! just namespace names; idempotent.

use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

use super::state::{self, LabState};
use super::{netns, plan, process};
use crate::topology::Topology;

const GRACE: Duration = Duration::from_secs(3);

/// What `down` removed, for its output and for tests.
#[derive(Debug, Default, Clone)]
pub struct DownReport {
    pub namespaces: Vec<String>,
    pub stopped: usize,
    pub killed: usize,
}

/// Stops and removes one instance, known by its run directory and, when it
/// could be read, its state.
pub fn down_instance(run_dir: &Path, lab: Option<&LabState>) -> Result<DownReport> {
    let mut names: Vec<String> = Vec::new();
    let mut pids: Vec<u32> = Vec::new();
    if let Some(lab) = lab {
        names.extend(lab.namespaces.iter().cloned());
        names.extend(lab.nodes.iter().map(|n| n.namespace.clone()));
        pids.extend(lab.nodes.iter().filter_map(|n| n.pid));
    }
    names.sort();
    names.dedup();
    let report = remove_namespaces(&names, pids)?;
    if run_dir.exists() {
        std::fs::remove_dir_all(run_dir)
            .with_context(|| format!("removing {}", run_dir.display()))?;
    }
    Ok(report)
}

/// `down FILE`: the instance of this topology, and any of its namespaces
/// even when the state file is gone.
pub fn down_topology(topo: &Topology, prefix: &str) -> Result<DownReport> {
    let run_dir = state::run_dir(&topo.name, prefix);
    let lab = LabState::load(&run_dir).ok();
    let mut report = down_instance(&run_dir, lab.as_ref())?;
    let names: Vec<String> = plan::plan(topo, prefix)
        .namespaces
        .into_iter()
        .map(|n| n.ns)
        .filter(|n| netns::exists(n))
        .collect();
    merge(&mut report, remove_namespaces(&names, Vec::new())?);
    Ok(report)
}

/// `down --all`: every instance with a state file, then every namespace
/// with the prefix.
pub fn down_all(prefix: &str) -> Result<DownReport> {
    let mut report = DownReport::default();
    for (dir, lab) in state::instances() {
        if lab.prefix.starts_with(prefix) {
            merge(&mut report, down_instance(&dir, Some(&lab))?);
        }
    }
    let names = netns::list_with_prefix(prefix);
    merge(&mut report, remove_namespaces(&names, Vec::new())?);
    Ok(report)
}

fn merge(into: &mut DownReport, from: DownReport) {
    into.namespaces.extend(from.namespaces);
    into.stopped += from.stopped;
    into.killed += from.killed;
}

fn remove_namespaces(names: &[String], mut pids: Vec<u32>) -> Result<DownReport> {
    for name in names {
        pids.extend(process::pids_in_namespace(name));
    }
    pids.sort_unstable();
    pids.dedup();
    pids.retain(|&p| process::alive(p));
    let killed = process::stop(&pids, GRACE);
    let mut removed = Vec::new();
    for name in names {
        if netns::exists(name) {
            netns::delete(name)?;
            removed.push(name.clone());
        }
    }
    Ok(DownReport {
        namespaces: removed,
        stopped: pids.len(),
        killed: killed.len(),
    })
}
