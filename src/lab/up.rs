//! `plexnet up`: build a topology's namespaces, links and daemons, or roll
//! everything back.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use super::netlink::{NsLinks, VethEnds};
use super::plan::{self, Plan, Veth};
use super::state::{self, LabState, NodeState};
use super::{down, netns, process};
use crate::runtime::control;
use crate::topology::Topology;

/// How long one daemon may take to answer ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub prefix: String,
    /// Print progress and the summary (the CLI); tests keep it quiet.
    pub verbose: bool,
}

/// What `up` brought up, for the summary and for tests.
#[derive(Debug, Clone)]
pub struct UpReport {
    pub run_dir: PathBuf,
    pub state: LabState,
    pub elapsed: Duration,
}

/// Refusals that need no topology: not root, no TUN driver.
pub fn preflight() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("plexnet up needs root (namespaces, veths and TUN devices): run it with sudo");
    }
    if !Path::new("/dev/net/tun").exists() {
        bail!("/dev/net/tun is missing: load the tun module (modprobe tun) or run where TUN devices are allowed");
    }
    Ok(())
}

pub fn up(topo: &Topology, opts: &UpOptions) -> Result<UpReport> {
    let start = Instant::now();
    preflight()?;
    let run_dir = state::run_dir(&topo.name, &opts.prefix);
    let plan = plan::plan(topo, &opts.prefix);
    refuse_if_up(topo, &run_dir, &plan)?;
    let mut lab = LabState {
        topology: topo.name.clone(),
        prefix: opts.prefix.clone(),
        source: topo.source.clone(),
        nodes: plan
            .namespaces
            .iter()
            .map(|n| NodeState {
                name: n.node.clone(),
                kind: n.kind,
                namespace: n.ns.clone(),
                pid: None,
                // Clients with ipsec = "plexnet" run `plexnet client`.
                client_daemon: n.kind == state::NodeKind::Client
                    && topo
                        .client(&n.node)
                        .is_some_and(|c| c.ipsec == crate::topology::ClientIpsec::Plexnet),
            })
            .collect(),
        namespaces: Vec::new(),
    };
    let progress = Progress::new(opts.verbose);
    progress.line(&format!(
        "plexnet up {} ({}: {} images, {}, {}, {} client{})",
        topo.source.display(),
        topo.name,
        topo.images.len(),
        topo.cf.name,
        topo.router.name,
        topo.clients.len(),
        if topo.clients.len() == 1 { "" } else { "s" }
    ));
    let result = build(topo, &plan, &run_dir, &mut lab, &progress);
    match result {
        Ok(()) => Ok(UpReport {
            run_dir,
            state: lab,
            elapsed: start.elapsed(),
        }),
        Err(e) => {
            progress.line("  failed: rolling back what was created");
            if let Err(rb) = down::down_instance(&run_dir, Some(&lab)) {
                progress.line(&format!("  rollback incomplete: {rb:#}"));
            }
            Err(e)
        }
    }
}

fn refuse_if_up(topo: &Topology, run_dir: &Path, plan: &Plan) -> Result<()> {
    if LabState::path(run_dir).exists() {
        bail!(
            "topology {} is already up ({} exists): run `plexnet down {}` first",
            topo.name,
            run_dir.display(),
            topo.source.display()
        );
    }
    if let Some(n) = plan.namespaces.iter().find(|n| netns::exists(&n.ns)) {
        bail!(
            "namespace {} already exists (another topology, or a crashed run): run `plexnet down --all` first",
            n.ns
        );
    }
    Ok(())
}

fn build(
    topo: &Topology,
    plan: &Plan,
    run_dir: &Path,
    lab: &mut LabState,
    progress: &Progress,
) -> Result<()> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    std::fs::copy(&topo.source, state::topology_copy(run_dir))
        .with_context(|| format!("copying {} to {}", topo.source.display(), run_dir.display()))?;
    let resolved = state::resolved_topology(run_dir);
    std::fs::write(&resolved, serde_json::to_vec_pretty(topo)?)
        .with_context(|| format!("writing {}", resolved.display()))?;
    lab.save(run_dir)?;

    let t = Instant::now();
    for ns in &plan.namespaces {
        netns::create(&ns.ns)?;
        lab.namespaces.push(ns.ns.clone());
        lab.save(run_dir)?;
        write_hosts(&ns.ns, &plan.hosts)?;
    }
    progress.phase(
        "namespaces",
        &format!("{} created", plan.namespaces.len()),
        t,
    );

    let t = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the netlink runtime")?;
    rt.block_on(build_links(plan))?;
    progress.phase("links", &link_summary(plan), t);

    let t = Instant::now();
    start_daemons(run_dir, lab)?;
    wait_ready(run_dir, lab, progress)?;
    progress.phase("daemons", "all ready", t);
    start_strongswan(topo, run_dir, lab, progress)
}

/// charon in every client with `ipsec = "strongswan"` (see
/// [`super::strongswan`]).
fn start_strongswan(
    topo: &Topology,
    run_dir: &Path,
    lab: &LabState,
    progress: &Progress,
) -> Result<()> {
    for c in topo
        .clients
        .iter()
        .filter(|c| c.ipsec == crate::topology::ClientIpsec::Strongswan)
    {
        let t = Instant::now();
        let ns = lab
            .node(&c.name)
            .map(|n| n.namespace.clone())
            .with_context(|| format!("no namespace for {}", c.name))?;
        let pid = super::strongswan::start(run_dir, topo, c, &ns)?;
        progress.phase(
            "strongswan",
            &format!("charon in {} ready, pid {pid}", c.name),
            t,
        );
    }
    Ok(())
}

fn write_hosts(ns: &str, hosts: &str) -> Result<()> {
    let dir = Path::new(netns::NETNS_ETC_DIR).join(ns);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("hosts"), hosts)
        .with_context(|| format!("writing {}/hosts", dir.display()))
}

/// Veth pairs set up at once. The kernel takes rtnetlink requests one at
/// a time (under its RTNL lock), but the round trips of different links
/// overlap: the XCF full mesh of 64 images is 2016 pairs.
const VETHS_IN_FLIGHT: usize = 32;

async fn build_links(plan: &Plan) -> Result<()> {
    let mut handles: HashMap<&str, NsLinks> = HashMap::new();
    for ns in &plan.namespaces {
        {
            let _inside = netns::Inside::enter(&ns.ns)?;
            for (key, value) in &ns.sysctls {
                netns::sysctl(key, value).with_context(|| format!("in {}", ns.ns))?;
            }
        }
        let links = NsLinks::open(&ns.ns)?;
        links.up("lo").await?;
        for br in &ns.bridges {
            links.add_bridge(&br.name).await?;
            links.add_addr(&br.name, br.addr, br.prefix_len).await?;
        }
        handles.insert(ns.ns.as_str(), links);
    }
    futures::stream::iter(plan.veths.iter().map(|v| add_veth(&handles, v)))
        .buffer_unordered(VETHS_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// One veth pair: created with both ends' MTU and Ethernet addresses in
/// one request, then each end configured.
async fn add_veth(handles: &HashMap<&str, NsLinks>, veth: &Veth) -> Result<()> {
    let get = |ns: &str| {
        handles
            .get(ns)
            .with_context(|| format!("no netlink handle for {ns}"))
    };
    let (a, b) = (get(&veth.a.ns)?, get(&veth.b.ns)?);
    let ends = VethEnds {
        mtu: veth.mtu,
        mac: veth.a.mac,
        peer_mac: veth.b.mac,
    };
    a.add_veth_with(&veth.a.ifname, b, &veth.b.ifname, &ends)
        .await?;
    let (ra, rb) = futures::join!(
        configure_end(a, &veth.a, true),
        configure_end(b, &veth.b, false)
    );
    ra.and(rb)
}

/// A new veth end: bridge, sysctls, addresses, up, permanent neighbours,
/// routes. `is_up`: the end was created up (the request's main link).
async fn configure_end(links: &NsLinks, end: &plan::End, is_up: bool) -> Result<()> {
    let index = links.index(&end.ifname).await?;
    if let Some(bridge) = &end.bridge {
        links.set_master_index(index, &end.ifname, bridge).await?;
    }
    if !end.if_sysctls.is_empty() {
        // No await while inside: setns is per thread, and this runtime's
        // one thread runs the other links' futures too.
        let _inside = netns::Inside::enter(&end.ns)?;
        for (key, value) in &end.if_sysctls {
            netns::sysctl(&key.replace("IF", &end.ifname), value)?;
        }
    }
    for (addr, len) in &end.addrs {
        links
            .add_addr_index(index, &end.ifname, *addr, *len)
            .await?;
    }
    if !is_up {
        links.up_index(index, &end.ifname).await?;
    }
    for (addr, mac) in &end.neighbours {
        links
            .add_permanent_neighbour(index, &end.ifname, *addr, *mac)
            .await?;
    }
    for r in &end.routes {
        links
            .add_route_index(r.dest, r.prefix_len, r.via, index, &end.ifname)
            .await?;
    }
    Ok(())
}

fn link_summary(plan: &Plan) -> String {
    use plan::LinkKind::*;
    let count = |k| plan.veths.iter().filter(|v| v.kind == k).count();
    format!(
        "external LAN {} veths, client LANs {}, XCF {}, CF {}",
        count(ExternalLan),
        count(ClientLan),
        count(Xcf),
        count(Cf)
    )
}

fn start_daemons(run_dir: &Path, lab: &mut LabState) -> Result<()> {
    for i in 0..lab.nodes.len() {
        if !lab.nodes[i].runs_daemon() {
            continue;
        }
        let node = &lab.nodes[i];
        let log = state::log_path(run_dir, &node.name);
        let pid = process::spawn_daemon(run_dir, &node.name, &node.namespace, &log)?;
        lab.nodes[i].pid = Some(pid);
        lab.save(run_dir)?;
    }
    Ok(())
}

/// Polls every daemon's control socket until it answers ready; a daemon
/// that dies or stays silent fails `up` with the end of its log.
fn wait_ready(run_dir: &Path, lab: &LabState, progress: &Progress) -> Result<()> {
    let start = Instant::now();
    let mut waiting: Vec<&NodeState> = lab.nodes.iter().filter(|n| n.runs_daemon()).collect();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for node in waiting {
            let sock = state::socket_path(run_dir, &node.name);
            match control::query(&sock, &control::Request::Status, Duration::from_millis(500)) {
                Ok(reply) if reply.get("ready").and_then(|r| r.as_bool()) == Some(true) => {
                    progress.line(&format!(
                        "  {:<8} ready   {:>5} ms  pid {}",
                        node.name,
                        start.elapsed().as_millis(),
                        node.pid.unwrap_or(0)
                    ));
                }
                _ => {
                    let pid = node.pid.unwrap_or(0);
                    if !process::alive(pid) {
                        bail!(
                            "the daemon of {} (pid {pid}) exited during start-up; its log {} ends with:\n{}",
                            node.name,
                            state::log_path(run_dir, &node.name).display(),
                            log_tail(&state::log_path(run_dir, &node.name), 10)
                        );
                    }
                    if start.elapsed() > READY_TIMEOUT {
                        bail!(
                            "the daemon of {} did not answer ready within {} s; its log ends with:\n{}",
                            node.name,
                            READY_TIMEOUT.as_secs(),
                            log_tail(&state::log_path(run_dir, &node.name), 10)
                        );
                    }
                    still.push(node);
                }
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Progress lines for long work; silent in tests.
#[derive(Debug)]
struct Progress {
    verbose: bool,
}

impl Progress {
    fn new(verbose: bool) -> Self {
        Self { verbose }
    }
    fn line(&self, s: &str) {
        if self.verbose {
            println!("{s}");
        }
    }
    fn phase(&self, name: &str, what: &str, since: Instant) {
        self.line(&format!(
            "  {name:<11} {what}  ({} ms)",
            since.elapsed().as_millis()
        ));
    }
}
