//! `plexnet daemon`: the process of one image, of the coupling facility, or
//! of a client with `ipsec = "plexnet"` (then it is `plexnet client`, see
//! [`super::client`]), started by `plexnet up` inside the node's namespace.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::signal::unix::{signal, SignalKind};

use super::control::{self, Request};
use crate::lab::netlink::NsLinks;
use crate::lab::netns;
use crate::lab::plan::TUN_NAME;
use crate::lab::state;
use crate::sysplex::stack::{ImageStack, Verdict};
use crate::topology::Topology;

#[derive(Debug, Clone)]
pub struct DaemonArgs {
    pub run_dir: PathBuf,
    pub node: String,
    pub netns: String,
}

/// Enters the namespace on the only thread there is, then starts the runtime
/// (its threads inherit the namespace; DESIGN.md: `setns` is per thread).
pub fn run(args: DaemonArgs) -> Result<()> {
    netns::enter(&args.netns)?;
    init_logging(&state::log_path(&args.run_dir, &args.node));
    let resolved = state::resolved_topology(&args.run_dir);
    let topo: Topology = serde_json::from_slice(
        &std::fs::read(&resolved).with_context(|| format!("reading {}", resolved.display()))?,
    )
    .with_context(|| format!("parsing {}", resolved.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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

fn init_logging(log: &Path) {
    // stdout/stderr already go to the log (up opened it for us).
    let _ = log;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLEXNET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .try_init();
}

async fn sigterm() -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

async fn run_image(args: &DaemonArgs, topo: &Topology, name: &str) -> Result<()> {
    let owned: Vec<_> = topo
        .images
        .iter()
        .find(|i| i.name == name)
        .map(|i| i.vipa.defines.iter().map(|d| d.addr).collect())
        .unwrap_or_default();
    let tun = tun_rs::DeviceBuilder::new()
        .name(TUN_NAME)
        .mtu(1500)
        .build_async()
        .with_context(|| format!("creating TUN {TUN_NAME}"))?;
    let links = NsLinks::open(&args.netns)?;
    links.up(TUN_NAME).await?;
    // The owner routes its DVIPAs into the TUN; proxy ARP on `ext` then
    // answers for them on the external LAN.
    for dvipa in &owned {
        links.add_route(*dvipa, 32, None, Some(TUN_NAME)).await?;
    }
    let stack = Arc::new(Mutex::new(ImageStack::new(name, owned.clone())));
    let status_stack = Arc::clone(&stack);
    let node = name.to_string();
    let role_summary = image_roles(topo, name);
    control::serve(
        &state::socket_path(&args.run_dir, name),
        move |req| match req {
            Request::Status => {
                let stack = status_stack.lock().unwrap_or_else(|p| p.into_inner());
                let owned: Vec<String> = stack.owned().iter().map(|a| a.to_string()).collect();
                serde_json::json!({
                    "node": node,
                    "role": "image",
                    "ready": true,
                    "pid": std::process::id(),
                    "tun": TUN_NAME,
                    "owned_dvipas": owned,
                    "counters": stack.counters(),
                    "summary": format!("{role_summary}; {} echo replies", stack.counters().echo_replies),
                })
            }
        },
    )
    .await?;
    tracing::info!("{name} ready: TUN {TUN_NAME}, owns {owned:?}");
    let mut buf = vec![0u8; 65536];
    let stop = sigterm();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = &mut stop => { r?; break; }
            n = tun.recv(&mut buf) => {
                let n = n.context("reading the TUN")?;
                let verdict = stack.lock().unwrap_or_else(|p| p.into_inner()).inbound(&buf[..n]);
                if let Verdict::Reply(out) = verdict {
                    tun.send(&out).await.context("writing the TUN")?;
                }
            }
        }
    }
    tracing::info!("{name} stopping on SIGTERM");
    Ok(())
}

/// `owns DVA1 (198.18.0.100), target of DVB1 (198.18.0.101)`.
fn image_roles(topo: &Topology, name: &str) -> String {
    let owned = topo
        .image(name)
        .map(|i| {
            i.vipa
                .defines
                .iter()
                .map(|d| topo.label(d.addr))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let serves: Vec<String> = topo
        .distributed_to(name)
        .iter()
        .map(|a| topo.label(*a))
        .collect();
    let mut parts = Vec::new();
    if !owned.is_empty() {
        parts.push(format!("owns {}", owned.join(", ")));
    }
    if !serves.is_empty() {
        parts.push(format!("target of {}", serves.join(", ")));
    }
    if parts.is_empty() {
        parts.push("no DVIPA role".to_string());
    }
    parts.join(", ")
}

async fn run_cf(args: &DaemonArgs, topo: &Topology) -> Result<()> {
    let node = topo.cf.name.clone();
    let addr = topo.cf.addr;
    control::serve(
        &state::socket_path(&args.run_dir, &node),
        move |req| match req {
            Request::Status => serde_json::json!({
                "node": node,
                "role": "cf",
                "ready": true,
                "pid": std::process::id(),
                "address": addr.to_string(),
                "summary": format!("coupling facility at {addr}"),
            }),
        },
    )
    .await?;
    tracing::info!("CF ready at {addr}");
    sigterm().await?;
    tracing::info!("CF stopping on SIGTERM");
    Ok(())
}
