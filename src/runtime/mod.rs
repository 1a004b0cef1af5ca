//! The real I/O shell: the daemons of images, the CF and clients (TUN,
//! sockets, signals), their control socket, and the XCF mesh.

pub mod arp;
pub mod cf;
pub mod client;
pub mod client_ike;
pub mod control;
pub mod daemon;
pub mod display;
pub mod ike;
pub mod image;
pub mod listeners;
pub mod sockets;
pub mod takeover;
pub mod tunio;
pub mod udp_gso;
pub mod xcf;
pub mod xcf_data;

/// Resolves on SIGTERM or SIGINT: how `down` (and a user's Ctrl-C) stops
/// every daemon, image, CF and client alike.
pub async fn sigterm() -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Logs of a daemon (`PLEXNET_LOG` filters, `info` by default) to its
/// stderr, which `up` points at the node's log file.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLEXNET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .try_init();
}
