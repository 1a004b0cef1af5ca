//! Gratuitous ARP on the external LAN after a VIPA takeover (DESIGN.md:
//! "on takeover the new owner does the same and sends a gratuitous ARP, as
//! a real VIPA takeover does on a LAN"). Linux updates an existing
//! neighbour entry on an RFC 5227 announcement at once (`arp_is_garp`),
//! so the router `net` stops sending the DVIPA to the dead owner's link.
//!
//! An `AF_PACKET` socket needs a `sockaddr_ll`, which neither socket2 nor
//! nix builds safely: that one conversion is the only `unsafe` here.

use anyhow::{Context, Result};
use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};
use std::net::Ipv4Addr;

use crate::wire::arp::{ArpRepr, ETHERTYPE_ARP};

/// `sockaddr_ll` for sending a broadcast frame out of link `ifindex`.
#[allow(unsafe_code)]
fn link_addr(ifindex: u32) -> Result<SockAddr> {
    use nix::libc::{sockaddr_ll, AF_PACKET};
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of the platform's sockaddr types, and
    // SockAddrStorage is a zeroed sockaddr_storage, large enough for it.
    let ll = unsafe { storage.view_as::<sockaddr_ll>() };
    ll.sll_family = AF_PACKET as u16;
    ll.sll_protocol = ETHERTYPE_ARP.to_be();
    ll.sll_ifindex = i32::try_from(ifindex).context("interface index out of range")?;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    let len = std::mem::size_of::<sockaddr_ll>() as socket2::socklen_t;
    // SAFETY: the storage holds an initialised sockaddr_ll of `len` bytes.
    Ok(unsafe { SockAddr::new(storage, len) })
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
    let sock = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(socket2::Protocol::from(i32::from(ETHERTYPE_ARP.to_be()))),
    )
    .context("opening an AF_PACKET socket for gratuitous ARP (needs CAP_NET_RAW)")?;
    let to = link_addr(ifindex)?;
    let frame = ArpRepr::announcement(mac, ip).broadcast_frame();
    for i in 0..count {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        sock.send_to(&frame, &to)
            .with_context(|| format!("sending the gratuitous ARP for {ip}"))?;
    }
    Ok(())
}
