//! Shared packet plumbing for seal, open and peek: finding the IPsec header
//! behind an IPv4 header (directly, or in UDP per RFC 3948), rebuilding
//! headers, and extracting what selectors look at.

use core::net::{IpAddr, Ipv4Addr};

use super::peek::PeekError;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::udp_encap::UdpEncapRepr;
use crate::wire::{udp, IpProtocol, UdpPacket, WireError};

/// The outer view of a received IPsec packet: where the ESP or AH header
/// sits behind the IPv4 header (directly, or in UDP per RFC 3948), and the
/// outer addresses. Parsed once per packet ([`OuterView::parse`], or from
/// an IPv4 header already checked, [`OuterView::after_ipv4`]) and passed
/// down: the routing stack classifies, locates the SA and peeks with the
/// same view (patent Fig. 8 blocks 130-132).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterView {
    /// IPv4 header length (with options).
    pub(crate) header_len: usize,
    /// Offset of the ESP or AH header.
    pub(crate) ipsec_at: usize,
    /// End of the IPsec packet: Total Length, or the UDP datagram's end.
    pub(crate) end: usize,
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    /// ESP or AH.
    pub(crate) protocol: IpProtocol,
    /// UDP ports when ESP came in UDP (RFC 3948).
    pub(crate) udp: Option<(u16, u16)>,
}

impl OuterView {
    /// Parses the outer IPv4 header of `packet` (checksum verified, a
    /// fragment refused, RFC 4303 §3.4.1) and locates the ESP or AH header.
    pub fn parse(packet: &[u8]) -> Result<OuterView, PeekError> {
        Ok(parse_outer(packet)?)
    }

    /// The view of `packet`, whose IPv4 header the caller has already
    /// checked (version, lengths, checksum, not a fragment: as
    /// `ipv4::Repr::parse` and [`OuterView::parse`] do): only where the ESP
    /// or AH header sits is left to find.
    pub fn after_ipv4(packet: &[u8]) -> Result<OuterView, PeekError> {
        Ok(locate_ipsec(packet)?)
    }

    /// The outer source address.
    pub fn src(&self) -> Ipv4Addr {
        self.src
    }

    /// The outer destination address.
    pub fn dst(&self) -> Ipv4Addr {
        self.dst
    }

    /// The ESP or AH packet: from its header to the end of the datagram.
    pub(crate) fn ipsec<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        &packet[self.ipsec_at..self.end]
    }
}

/// Why the outer packet cannot carry IPsec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OuterError {
    Truncated,
    Malformed,
    Fragment,
    Unsupported,
    NotIpsec,
}

impl From<WireError> for OuterError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => OuterError::Truncated,
            WireError::Malformed | WireError::Checksum => OuterError::Malformed,
        }
    }
}

/// Parses the outer IPv4 header (checksum verified; a fragment is refused,
/// RFC 4303 §3.4.1) and locates the ESP or AH header.
pub(crate) fn parse_outer(packet: &[u8]) -> Result<OuterView, OuterError> {
    parse_outer_with(packet, true)
}

/// [`parse_outer`], optionally without the header checksum: peek trusts
/// nothing it reads anyway, and the receiving IP stack has already
/// checked it (RFC 1122 §3.2.1.2).
pub(crate) fn parse_outer_with(
    packet: &[u8],
    verify_checksum: bool,
) -> Result<OuterView, OuterError> {
    match packet.first().map(|b| b >> 4) {
        None => return Err(OuterError::Truncated),
        Some(6) => return Err(OuterError::Unsupported),
        Some(4) => {}
        Some(_) => return Err(OuterError::Malformed),
    }
    let ip = Ipv4Packet::new_checked(packet)?;
    if verify_checksum && !ip.verify_checksum() {
        return Err(OuterError::Malformed);
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(OuterError::Fragment);
    }
    locate_ipsec(packet)
}

/// Where the ESP or AH header sits behind the (checked) IPv4 header of
/// `packet`.
fn locate_ipsec(packet: &[u8]) -> Result<OuterView, OuterError> {
    let ip = Ipv4Packet::new_unchecked(packet);
    let header_len = usize::from(ip.header_len());
    let end = usize::from(ip.total_len());
    let (protocol, ipsec_at, udp) = match ip.next_header() {
        p @ (IpProtocol::Esp | IpProtocol::Ah) => (p, header_len, None),
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(&packet[header_len..end])?;
            match UdpEncapRepr::parse(u.payload())? {
                UdpEncapRepr::Esp(_) => (
                    IpProtocol::Esp,
                    header_len + udp::HEADER_LEN,
                    Some((u.src_port(), u.dst_port())),
                ),
                UdpEncapRepr::Ike(_) | UdpEncapRepr::Keepalive => return Err(OuterError::NotIpsec),
            }
        }
        _ => return Err(OuterError::NotIpsec),
    };
    let u_end = match udp {
        // The ESP packet ends where the UDP datagram ends.
        Some(_) => {
            header_len + usize::from(UdpPacket::new_unchecked(&packet[header_len..end]).len())
        }
        None => end,
    };
    Ok(OuterView {
        header_len,
        ipsec_at,
        end: u_end,
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        protocol,
        udp,
    })
}

/// Sets Protocol and Total Length of the IPv4 header at the start of `buf`
/// and refreshes its checksum.
pub(crate) fn fix_ipv4_header(buf: &mut [u8], protocol: IpProtocol, total_len: usize) {
    let mut ip = Ipv4Packet::new_unchecked(buf);
    ip.set_next_header(protocol);
    ip.set_total_len(total_len as u16);
    ip.fill_checksum();
}

/// The tunnel-mode outer header (RFC 4301 §5.1.2.1): new addresses, TTL
/// 64, DSCP and ECN copied (RFC 4301 §5.1.2.1, RFC 6040 normal mode), DF
/// copied (RFC 4301 §8.1 default). The Identification is taken from the
/// low bits of the sequence number: sans-IO code keeps no IP-ID counter,
/// and the sequence number is unique per packet of the SA.
pub(crate) fn tunnel_header(
    inner: &Ipv4Packet<&[u8]>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seq: u64,
) -> ipv4::Repr {
    ipv4::Repr {
        tos: inner.tos(),
        ident: seq as u16,
        dont_frag: inner.dont_frag(),
        ..ipv4::Repr::new(src, dst, IpProtocol::Esp, 0)
    }
}

/// The IPv4 address of an SA endpoint; IPv6 SAs are not wired up yet.
pub(crate) fn v4(addr: IpAddr) -> Option<Ipv4Addr> {
    match addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}
