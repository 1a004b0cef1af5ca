//! `plexnet daemon`: the process of one image, of the coupling facility, or
//! of a client with `ipsec = "plexnet"` (then it is `plexnet client`, see
//! [`super::client`]), started by `plexnet up` inside the node's namespace.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

use super::control::{self, Request};
use super::image::{ImageNode, XcfOut};
use super::sigterm;
use super::xcf::XcfMesh;
use crate::lab::netns;
use crate::lab::plan::TUN_NAME;
use crate::lab::state;
use crate::sysplex::xcf::XCF_PORT;
use crate::topology::Topology;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct DaemonArgs {
    pub run_dir: PathBuf,
    pub node: String,
    pub netns: String,
}

/// Enters the namespace on the only thread there is, then starts the runtime
/// (its threads inherit the namespace; docs/ARCHITECTURE.md: `setns` is per thread).
pub fn run(args: DaemonArgs) -> Result<()> {
    netns::enter(&args.netns)?;
    super::init_logging();
    let resolved = state::resolved_topology(&args.run_dir);
    let topo: Topology = serde_json::from_slice(
        &std::fs::read(&resolved).with_context(|| format!("reading {}", resolved.display()))?,
    )
    .with_context(|| format!("parsing {}", resolved.display()))?;
    // One thread: the data path is a chain of short steps, and waking
    // another worker for each packet cost more than it gave (perf: a fifth
    // of the routing stack's time in task switches).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = rt.block_on(async {
        if topo.cf.name.eq_ignore_ascii_case(&args.node) {
            run_cf(&args, &topo).await
        } else if let Some(image) = topo.image(&args.node) {
            run_image(&args, &topo, &image.name).await
        } else if topo.client(&args.node).is_some() {
            // A client with ipsec = "plexnet": the client runtime does it all.
            let setup = super::client::ClientSetup::client(&topo, &args.node)?;
            let socket = state::socket_path(&args.run_dir, &args.node);
            super::client::serve(setup, &args.node, Some(&socket), sigterm()).await
        } else {
            bail!(
                "node {} is neither an image, the CF nor a client of topology {}",
                args.node,
                topo.name
            )
        }
    });
    if let Err(e) = &result {
        tracing::error!("{} stopped: {e:#}", args.node);
    }
    let _ = std::fs::remove_file(state::socket_path(&args.run_dir, &args.node));
    result
}

async fn run_image(args: &DaemonArgs, topo: &Topology, name: &str) -> Result<()> {
    let me = topo.image(name).context("not an image")?;
    let peers = topo
        .images
        .iter()
        .map(|i| (i.name.clone(), i.xcf_addr))
        .collect();
    let mut xcf = super::xcf::XcfConfig::new(name, me.xcf_addr, peers, XCF_PORT);
    xcf.max_message = usize::try_from(topo.limits.xcf_max_message_bytes).unwrap_or(usize::MAX);
    let (mesh, mut inbox) = XcfMesh::start_with(xcf)
        .await
        .context("starting the XCF mesh")?;
    let mesh = Arc::new(mesh);
    // Before plumbing: a DVIPA another stack took over stays with it.
    let (takeover, deferred) = super::takeover::startup(topo, name).await?;
    let node = ImageNode::new(
        topo,
        name,
        &args.netns,
        Arc::clone(&mesh) as Arc<dyn XcfOut>,
        &deferred,
    )
    .await?;
    if let Some(t) = &takeover {
        let _ = node.takeover.set(Arc::clone(t));
    }
    node.start();
    let ike = super::ike::IkeRuntime::start(&node, topo).context("starting IKE")?;
    if let Some(t) = &takeover {
        if let Some(ike) = &ike {
            t.set_ike(Arc::clone(ike));
        }
        t.start(&node);
    }
    let rx_node = Arc::clone(&node);
    tokio::spawn(async move {
        while let Some((from, msg)) = inbox.recv().await {
            rx_node.on_xcf(&from, msg).await;
        }
    });
    tokio::spawn(track_peers(Arc::clone(&node), mesh.connected()));
    let status_node = Arc::clone(&node);
    let status_mesh = Arc::clone(&mesh);
    control::serve(
        &state::socket_path(&args.run_dir, name),
        move |req| match req {
            Request::Status => {
                let mut st = status_node.status();
                st["xcf"] = serde_json::to_value(status_mesh.status()).unwrap_or_default();
                if let Some(ike) = &ike {
                    st["ike"] = ike.status();
                }
                if let Some(t) = &takeover {
                    st["takeover"] = t.status();
                }
                st
            }
            Request::Netstat { report } => {
                serde_json::to_value(status_node.netstat(report)).unwrap_or_default()
            }
            Request::Ipsec => {
                let mut d = status_node.ipsec();
                if let Some(ike) = &ike {
                    d.ike_wireshark_keys = ike.wireshark_keys();
                    d.ike_tunnels = super::display::ike_tunnels(&ike.status());
                }
                serde_json::to_value(d).unwrap_or_default()
            }
        },
    )
    .await?;
    tracing::info!("{name} ready: TUN {TUN_NAME}");
    sigterm().await?;
    tracing::info!("{name} stopping on SIGTERM");
    Ok(())
}

/// XCF peers coming and going: a new one gets this image's VIPA list and
/// SAs; a lost one's listeners stop counting.
async fn track_peers(
    node: Arc<ImageNode>,
    mut connected: tokio::sync::watch::Receiver<BTreeSet<String>>,
) {
    let mut known: BTreeSet<String> = BTreeSet::new();
    loop {
        let now = connected.borrow_and_update().clone();
        for gone in known.difference(&now) {
            tracing::info!("XCF peer {gone} down");
            node.peer_down(gone);
        }
        for new in now.difference(&known) {
            tracing::info!("XCF peer {new} up");
            node.peer_up(new);
        }
        known = now;
        if connected.changed().await.is_err() {
            return;
        }
    }
}

impl XcfOut for XcfMesh {
    fn send(&self, to: &str, msg: crate::sysplex::xcf::XcfMessage) {
        if let Err(e) = XcfMesh::send(self, to, msg) {
            tracing::debug!("XCF to {to}: {e}");
        }
    }
}

async fn run_cf(args: &DaemonArgs, topo: &Topology) -> Result<()> {
    use super::cf::{serve_cf, CfService};
    use crate::sysplex::cf::CouplingFacility;
    let node = topo.cf.name.clone();
    let addr = topo.cf.addr;
    let port = crate::sysplex::xcf::CF_PORT;
    let listener = tokio::net::TcpListener::bind((addr, port))
        .await
        .with_context(|| format!("binding the CF to {addr}:{port}"))?;
    // [limits]: each image's share of the CF, charged by its XCF address
    // (the address it reaches the CF from).
    let names = topo
        .images
        .iter()
        .map(|i| (std::net::IpAddr::V4(i.xcf_addr), i.name.clone()))
        .collect();
    let limits = crate::sysplex::cf::CfLimits::from(&topo.limits);
    let service = CfService::with_names(CouplingFacility::with_limits(limits), names);
    tokio::spawn(serve_cf(listener, Arc::clone(&service)));
    control::serve(
        &state::socket_path(&args.run_dir, &node),
        move |req| match req {
            Request::Status => {
                let st = service.status();
                serde_json::json!({
                    "node": node,
                    "role": "cf",
                    "ready": true,
                    "pid": std::process::id(),
                    "address": format!("{addr}:{port}"),
                    "cf": st,
                    "summary": format!("coupling facility at {addr}:{port}"),
                })
            }
            other => control::not_served(&node, &other),
        },
    )
    .await?;
    tracing::info!("CF ready at {addr}:{port}");
    sigterm().await?;
    tracing::info!("CF stopping on SIGTERM");
    Ok(())
}
