//! GRE between the routing stack and a target over XCF (patent Fig. 8 block
//! 140, RFC 2784, RFC 2890 keys, GRE-in-UDP of RFC 8086): the forwarding
//! format, its decapsulation and the keys that mark what the routing stack
//! already did.

use super::*;

/// GRE key that marks a datagram the routing stack already decrypted and
/// filtered (`distribute_crypto = false`): the target accepts its plaintext.
pub const GRE_KEY_DECRYPTED: u32 = 0x504c_5831; // "PLX1"

/// GRE key that marks a datagram the routing stack already inbound-filtered
/// (claim 7, `inbound_filter = "routing"`): the target decrypts it and skips
/// its own filter. The XCF link check vouches for the mark.
pub const GRE_KEY_FILTERED: u32 = 0x504c_5832; // "PLX2"

impl Upstream {
    pub fn gre_key(self) -> Option<u32> {
        match self {
            Upstream::Nothing => None,
            Upstream::Filtered => Some(GRE_KEY_FILTERED),
            Upstream::Decrypted => Some(GRE_KEY_DECRYPTED),
        }
    }
    /// Unknown keys mean nothing was done upstream.
    pub fn from_gre_key(key: Option<u32>) -> Self {
        match key {
            Some(GRE_KEY_FILTERED) => Upstream::Filtered,
            Some(GRE_KEY_DECRYPTED) => Upstream::Decrypted,
            _ => Upstream::Nothing,
        }
    }
}

/// A decapsulated GRE datagram.
#[derive(Debug)]
pub struct Decapped<'a> {
    pub outer_src: Ipv4Addr,
    pub inner: &'a [u8],
    pub upstream: Upstream,
}

/// Outer IPv4 (protocol 47, to `me`) + GRE carrying IPv4 (RFC 2784).
pub fn decap(packet: &[u8], me: Ipv4Addr) -> Result<Decapped<'_>, TargetDrop> {
    let ip = ipv4::Packet::new_checked(packet).map_err(|_| TargetDrop::BadGre)?;
    let repr = ipv4::Repr::parse(&ip).map_err(|_| TargetDrop::BadGre)?;
    if repr.next_header != IpProtocol::Gre || repr.dst_addr != me {
        return Err(TargetDrop::BadGre);
    }
    let hl = usize::from(ip.header_len());
    let end = usize::from(ip.total_len());
    decap_gre(repr.src_addr, &packet[hl..end])
}

/// A GRE header carrying IPv4 and what follows it, sent by `outer_src`:
/// the payload of an IPv4 protocol 47 packet, or of a UDP datagram to port
/// 4754 (GRE-in-UDP, RFC 8086 §3).
pub fn decap_gre(outer_src: Ipv4Addr, body: &[u8]) -> Result<Decapped<'_>, TargetDrop> {
    let g = gre::Packet::new_checked(body).map_err(|_| TargetDrop::BadGre)?;
    let g_repr = gre::Repr::parse(&g).map_err(|_| TargetDrop::BadGre)?;
    if g_repr.protocol_type != crate::wire::EtherType::Ipv4 {
        return Err(TargetDrop::BadGre);
    }
    Ok(Decapped {
        outer_src,
        inner: &body[g.header_len()..],
        upstream: Upstream::from_gre_key(g_repr.key),
    })
}

/// A GRE header (RFC 2784) for a forwarded IPv4 packet: at most 8 bytes
/// (the base header and the RFC 2890 key, which marks plaintext the
/// routing stack already decrypted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreHeader {
    bytes: [u8; 8],
    len: usize,
}

impl GreHeader {
    pub fn new(upstream: Upstream) -> Self {
        let g = gre::Repr {
            protocol_type: crate::wire::EtherType::Ipv4,
            checksum: false,
            key: upstream.gre_key(),
            seq_number: None,
        };
        let mut bytes = [0u8; 8];
        let len = g.buffer_len();
        g.emit(&mut gre::Packet::new_unchecked(&mut bytes[..len]));
        Self { bytes, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The GRE header and `inner` (RFC 2784), without the outer IPv4 header:
/// what a raw GRE socket sends (the kernel adds the header).
pub fn gre_payload(inner: &[u8], upstream: Upstream, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(GreHeader::new(upstream).as_bytes());
    out.extend_from_slice(inner);
}

/// Wraps `inner` in GRE from `src` to `dst` (XCF addresses), the routing
/// stack's forwarding format (Fig. 8 block 140), outer IPv4 header
/// included, into `out`.
pub fn encap(src: Ipv4Addr, dst: Ipv4Addr, inner: &[u8], upstream: Upstream, out: &mut Vec<u8>) {
    let mut g = Vec::new();
    gre_payload(inner, upstream, &mut g);
    let ip = ipv4::Repr::new(src, dst, IpProtocol::Gre, g.len());
    out.clear();
    out.resize(ip.buffer_len() + g.len(), 0);
    let mut p = ipv4::Packet::new_unchecked(&mut out[..]);
    ip.emit(&mut p);
    p.payload_mut().copy_from_slice(&g);
}
