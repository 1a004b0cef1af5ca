//! The image's kernel side: the DVIPA plumbing of docs/ARCHITECTURE.md (addresses
//! on `lo`, policy rules and tables into and out of the TUN), the local
//! TCP listeners the image registers with routing stacks, and the HTTP
//! server a target runs on DVIPA:80 (and :60).

use anyhow::Result;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::lab::netlink::{NsLinks, Rule, TableRoute, RT_TABLE_MAIN};
use crate::lab::plan::{EXT_NAME, TUN_NAME};
use crate::runtime::sockets::FWMARK;

/// Table of the routes that capture packets sent from a DVIPA.
const TABLE_FROM_DVIPA: u32 = 100;
/// Table of the routes that send owned DVIPAs arriving on `ext` into the TUN.
const TABLE_TO_DVIPA: u32 = 101;
/// Room for ESP/UDP/tunnel headers under the external LAN's 1500 bytes:
/// the kernel's own packets from a DVIPA use this path MTU (TCP MSS 1360).
pub const PROTECTED_MTU: u32 = 1400;

/// The kernel side of docs/ARCHITECTURE.md's DVIPA rules, in this namespace.
/// Also what a takeover does for the DVIPA it takes (as its only owned and
/// served one), so every step keeps what is already there.
pub(in crate::runtime) async fn plumb(
    links: &NsLinks,
    owned: &[Ipv4Addr],
    served: &[Ipv4Addr],
) -> Result<()> {
    if served.is_empty() {
        return Ok(());
    }
    for d in served {
        links.ensure_addr("lo", *d, 32).await?;
    }
    links.move_local_rule(100).await?;
    for d in owned {
        links
            .add_rule(&Rule {
                pref: 10,
                table: TABLE_TO_DVIPA,
                iif: Some(EXT_NAME),
                to: Some(*d),
                ..Rule::default()
            })
            .await?;
        links
            .add_table_route(*d, 32, TUN_NAME, TABLE_TO_DVIPA, TableRoute::default())
            .await?;
    }
    links
        .add_rule(&Rule {
            pref: 50,
            table: RT_TABLE_MAIN,
            fwmark: Some(FWMARK),
            ..Rule::default()
        })
        .await?;
    for d in served {
        links
            .add_rule(&Rule {
                pref: 110,
                table: TABLE_FROM_DVIPA,
                from: Some(*d),
                ..Rule::default()
            })
            .await?;
    }
    links
        .add_table_route(
            Ipv4Addr::UNSPECIFIED,
            0,
            TUN_NAME,
            TABLE_FROM_DVIPA,
            TableRoute {
                mtu: Some(PROTECTED_MTU),
                ..TableRoute::default()
            },
        )
        .await
}

/// The kernel side of a DVIPA given back to its owner (undoing what
/// [`plumb`] did for it as owned): what arrives for it on `ext` no longer
/// goes into the TUN (and proxy ARP stops answering for it); unless this
/// image serves it as a target, it leaves `lo` too, so a packet a stale
/// ARP cache still sends here is dropped (the client's TCP sends it again,
/// to the owner) instead of answered with a reset by this kernel.
pub(in crate::runtime) async fn unplumb_owned(
    links: &NsLinks,
    dvipa: Ipv4Addr,
    served: bool,
) -> Result<()> {
    links.del_rules_to(10, dvipa).await?;
    if !served {
        links.del_addr("lo", dvipa).await?;
    }
    Ok(())
}

/// Local TCP listeners: (address, port) of the LISTEN sockets.
pub(super) fn listening_ports() -> Vec<(Ipv4Addr, u16)> {
    match crate::runtime::listeners::tcp_listeners() {
        Ok(l) => l.into_iter().map(|a| (*a.ip(), a.port())).collect(),
        Err(e) => {
            tracing::warn!("listing TCP listeners (sock_diag): {e}");
            Vec::new()
        }
    }
}

/// The ports a target serves on each DVIPA it is a target of: HTTP's 80,
/// and the patent's port 60 (APP A of Figure 4), which figure4's policy
/// permits in clear for a plain Sysplex Distributor demonstration.
pub(super) const SERVER_PORTS: [u16; 2] = [80, 60];

/// The target's server on DVIPA:port: every answer names the image, so a
/// user sees where the distributor sent each connection.
pub(super) async fn http_server(image: String, dvipa: Ipv4Addr, port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = loop {
        match tokio::net::TcpListener::bind((dvipa, port)).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!("binding {dvipa}:{port}: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tracing::info!("HTTP server on {dvipa}:{port}");
    loop {
        let Ok((mut s, peer)) = listener.accept().await else {
            continue;
        };
        let image = image.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut got = 0;
            // Read the request head (bounded), then answer and close.
            while got < buf.len() {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf[got..])).await {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        got += n;
                        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let body = format!("served by {image}\n");
            let resp = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
            tracing::debug!("HTTP answered {peer}");
        });
    }
}
