//! `plexnet link NODE PEER down|up`: both ends of the veth between two
//! nodes set down (or up again) over rtnetlink, as Mininet's `link` does.
//! Any link of the plan ([`crate::lab::plan`]): an XCF link (image ↔
//! image), an image's `ext` (image ↔ the router), a client's LAN (client
//! ↔ the router) or an image's CF link (image ↔ CF).
//!
//! The kernel removes the routes through a link when it goes down; `up`
//! puts the plan's routes of both ends back. For an XCF link, both
//! commands wait until both images' XCF meshes saw the change (a peer is
//! down after three silent seconds, `runtime::xcf`), so what follows the
//! command meets the state it asked for.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::time::{Duration, Instant};

use super::record::{unix_now, Faults, LinkDown};
use super::Found;
use crate::lab::netlink::NsLinks;
use crate::lab::plan::{self, End, LinkKind, Veth};
use crate::lab::state::{self, LabState};
use crate::runtime::control;

/// How long `link` waits for both XCF meshes to see the change: the
/// mesh's three silent seconds and its reconnection backoff (at most 2 s),
/// with room for a loaded machine.
pub const XCF_SETTLE: Duration = Duration::from_secs(20);

/// Down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Down,
    Up,
}

/// What `plexnet link` did.
#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    pub kind: &'static str,
    pub node: String,
    pub node_if: String,
    pub peer: String,
    pub peer_if: String,
    pub state: LinkState,
    /// For an XCF link: how long until both images saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xcf_settled_ms: Option<u128>,
}

/// The name `link` and `status` give a link kind.
pub fn kind_name(k: LinkKind) -> &'static str {
    match k {
        LinkKind::Xcf => "xcf",
        LinkKind::ExternalLan => "ext",
        LinkKind::ClientLan => "lan",
        LinkKind::Cf => "cf",
    }
}

/// The node whose namespace is `ns`.
fn node_of<'a>(lab: &'a LabState, ns: &str) -> Option<&'a str> {
    lab.nodes
        .iter()
        .find(|n| n.namespace == ns)
        .map(|n| n.name.as_str())
}

/// The veth between `found`'s node and `peer`, with the node's end first;
/// none is an error that lists the node's peers.
pub fn find_link(found: &Found, peer: &str) -> Result<(Veth, End, End)> {
    let topo = found.topology()?;
    let p = plan::plan(&topo, &found.lab.prefix);
    let lab = &found.lab;
    let me = &found.node.namespace;
    let peer_ns = lab.node(peer).map(|n| n.namespace.clone());
    let mine = p.veths.iter().filter(|v| v.a.ns == *me || v.b.ns == *me);
    let mut peers = Vec::new();
    for v in mine {
        let (near, far) = if v.a.ns == *me {
            (&v.a, &v.b)
        } else {
            (&v.b, &v.a)
        };
        if peer_ns.as_deref() == Some(far.ns.as_str()) {
            return Ok((v.clone(), near.clone(), far.clone()));
        }
        let who = node_of(lab, &far.ns).unwrap_or(&far.ns);
        peers.push(format!("{who} ({}, {})", kind_name(v.kind), near.ifname));
    }
    if peer_ns.is_none() {
        bail!(
            "no node {peer} in topology {}; {}'s links go to: {}",
            lab.topology,
            found.node.name,
            peers.join(", ")
        );
    }
    bail!(
        "no link between {} and {peer}; {}'s links go to: {}",
        found.node.name,
        found.node.name,
        peers.join(", ")
    )
}

/// Sets the link between `found`'s node and `peer` down or up.
pub fn set(
    found: &Found,
    peer: &str,
    to: LinkState,
    progress: &dyn Fn(&str),
) -> Result<LinkReport> {
    let (veth, near, far) = find_link(found, peer)?;
    let peer_name = node_of(&found.lab, &far.ns).unwrap_or(peer).to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the netlink runtime")?;
    rt.block_on(set_ends(&[&near, &far], to))?;
    let node = found.node.name.clone();
    Faults::update(&found.run_dir, |f| {
        f.links_down.retain(|l| !l.joins(&node, &peer_name));
        if to == LinkState::Down {
            f.links_down.push(LinkDown {
                kind: kind_name(veth.kind).into(),
                node: node.clone(),
                node_if: near.ifname.clone(),
                peer: peer_name.clone(),
                peer_if: far.ifname.clone(),
                since: unix_now(),
            });
        }
    })?;
    let xcf_settled_ms = if veth.kind == LinkKind::Xcf {
        progress(&format!(
            "  waiting until {node} and {peer_name} see their XCF link {}",
            if to == LinkState::Down { "down" } else { "up" }
        ));
        Some(wait_xcf(found, &node, &peer_name, to == LinkState::Up)?)
    } else {
        None
    };
    Ok(LinkReport {
        kind: kind_name(veth.kind),
        node,
        node_if: near.ifname,
        peer: peer_name,
        peer_if: far.ifname,
        state: to,
        xcf_settled_ms,
    })
}

/// Both ends down, or both up with their routes back.
async fn set_ends(ends: &[&End], to: LinkState) -> Result<()> {
    for end in ends {
        let links = NsLinks::open(&end.ns)?;
        match to {
            LinkState::Down => links.down(&end.ifname).await?,
            LinkState::Up => {
                links.up(&end.ifname).await?;
                for r in &end.routes {
                    links
                        .ensure_route(r.dest, r.prefix_len, r.via, Some(&end.ifname))
                        .await?;
                }
                // Setting a link down flushed its permanent neighbour
                // entries too (the XCF and CF links': docs/ARCHITECTURE.md).
                let index = links.index(&end.ifname).await?;
                for (addr, mac) in &end.neighbours {
                    links
                        .add_permanent_neighbour(index, &end.ifname, *addr, *mac)
                        .await?;
                }
            }
        }
    }
    Ok(())
}

/// Waits until each image's XCF mesh shows the other `connected` (or
/// not); a daemon that is not running has nothing to see and is skipped.
fn wait_xcf(found: &Found, a: &str, b: &str, connected: bool) -> Result<u128> {
    let start = Instant::now();
    let sees = |me: &str, other: &str| -> Option<bool> {
        let sock = state::socket_path(&found.run_dir, me);
        let st = control::query(&sock, &control::Request::Status, Duration::from_secs(2)).ok()?;
        let peers = st.get("xcf")?.get("peers")?;
        let entry = peers
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(other))?
            .1;
        entry.get("connected")?.as_bool()
    };
    loop {
        let done = [(a, b), (b, a)]
            .iter()
            .all(|(me, other)| sees(me, other).is_none_or(|c| c == connected));
        if done {
            return Ok(start.elapsed().as_millis());
        }
        if start.elapsed() > XCF_SETTLE {
            bail!(
                "{a} and {b} still show their XCF link {} after {} s (the link itself is {}; see `plexnet status --json`, xcf.peers)",
                if connected { "down" } else { "up" },
                XCF_SETTLE.as_secs(),
                if connected { "up" } else { "down" }
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
