//! The 5-tuple of an IPv4 packet: what SA selectors (RFC 4301 §4.4.1.1),
//! the filter table and the routing stack's connection table look at:
//! addresses, protocol, and the ports at the start of a TCP (RFC 9293
//! §3.1) or UDP (RFC 768) header. The one reader of those fields; the
//! layers above add what they need (TCP flags, ICMP type and code).

use core::net::{IpAddr, Ipv4Addr};

use super::{IpProtocol, Ipv4Packet, WireError};

/// What SA selectors match on (RFC 4301 §4.4.1.1): source, destination,
/// protocol, and the ports when there are any.
pub type SelectorFields = (IpAddr, IpAddr, IpProtocol, Option<(u16, u16)>);

/// Addresses, protocol and (TCP, UDP) ports of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    /// Source and destination port: TCP or UDP, in a first fragment (a
    /// later one carries no header), when the header's first four bytes
    /// are there.
    pub ports: Option<(u16, u16)>,
}

impl FiveTuple {
    /// The 5-tuple of `packet` (an IPv4 header whose lengths check out).
    pub fn parse(packet: &[u8]) -> Result<FiveTuple, WireError> {
        let ip = Ipv4Packet::new_checked(packet)?;
        let protocol = ip.next_header();
        let ports = match protocol {
            IpProtocol::Tcp | IpProtocol::Udp if ip.frag_offset() == 0 => {
                packet.get(usize::from(ip.header_len())..).and_then(ports)
            }
            _ => None,
        };
        Ok(FiveTuple {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            protocol,
            ports,
        })
    }

    /// The fields as SA selectors take them (RFC 4301 §4.4.1.1).
    pub fn selector_fields(&self) -> SelectorFields {
        (
            IpAddr::V4(self.src),
            IpAddr::V4(self.dst),
            self.protocol,
            self.ports,
        )
    }
}

/// The source and destination ports at the start of a TCP or UDP header
/// `l4`; `None` when it is shorter than four bytes.
pub fn ports(l4: &[u8]) -> Option<(u16, u16)> {
    match l4 {
        [s0, s1, d0, d1, ..] => Some((
            u16::from_be_bytes([*s0, *s1]),
            u16::from_be_bytes([*d0, *d1]),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build::tcp_packet;
    use crate::wire::TcpFlags;

    /// Ports of a first fragment; none of a later one, nor of a header
    /// cut short.
    #[test]
    fn ports_of_first_fragments_only() {
        let a = Ipv4Addr::new(198, 18, 1, 10);
        let b = Ipv4Addr::new(198, 18, 0, 100);
        let mut p = tcp_packet(a, 40000, b, 80, 1, 0, TcpFlags::SYN, b"");
        let t = FiveTuple::parse(&p).unwrap();
        assert_eq!((t.src, t.dst, t.protocol), (a, b, IpProtocol::Tcp));
        assert_eq!(t.ports, Some((40000, 80)));
        p[6..8].copy_from_slice(&185u16.to_be_bytes());
        assert_eq!(FiveTuple::parse(&p).unwrap().ports, None);
        assert_eq!(ports(&[0, 53, 0]), None);
        assert_eq!(FiveTuple::parse(&p[..10]), Err(WireError::Truncated));
    }
}
