//! Gratuitous ARP on the external LAN after a VIPA takeover (docs/ARCHITECTURE.md:
//! "on takeover the new owner does the same and sends a gratuitous ARP, as
//! a real VIPA takeover does on a LAN"). Linux updates an existing
//! neighbour entry on an RFC 5227 announcement at once (`arp_is_garp`),
//! so the router `net` stops sending the DVIPA to the dead owner's link.
//!
//! The frames leave on an `AF_PACKET` socket, addressed with the link's
//! own `sockaddr_ll` as `getifaddrs(3)` reports it (for a raw packet
//! socket only its interface index matters), so no address is built by
//! hand and nothing here is `unsafe`.

use anyhow::{Context, Result};
use nix::sys::socket::{self, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType};
use std::net::Ipv4Addr;

use crate::wire::arp::ArpRepr;

/// The link-layer address of link `ifindex`, from `getifaddrs(3)`.
fn link_addr(ifindex: u32) -> Result<LinkAddr> {
    nix::ifaddrs::getifaddrs()
        .context("listing interfaces (getifaddrs)")?
        .filter_map(|i| i.address.and_then(|a| a.as_link_addr().copied()))
        .find(|l| l.ifindex() == ifindex as usize)
        .with_context(|| format!("no link with index {ifindex}"))
}

/// Sends `count` RFC 5227 announcements of `ip` at `mac` out of link
/// `ifindex`, `gap` apart (a lost frame must not leave the LAN pointing at
/// the old owner).
pub async fn announce(
    ifindex: u32,
    mac: [u8; 6],
    ip: Ipv4Addr,
    count: usize,
    gap: std::time::Duration,
) -> Result<()> {
    // Protocol 0: this socket only sends, it receives nothing.
    let sock = socket::socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("opening an AF_PACKET socket for gratuitous ARP (needs CAP_NET_RAW)")?;
    let to = link_addr(ifindex)?;
    let frame = ArpRepr::announcement(mac, ip).broadcast_frame();
    for i in 0..count {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        socket::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            &frame,
            &to,
            MsgFlags::empty(),
        )
        .with_context(|| format!("sending the gratuitous ARP for {ip}"))?;
    }
    Ok(())
}
