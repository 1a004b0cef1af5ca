//! The packet as the filter sees it: addresses, protocol, ports or ICMP
//! type and code, direction, routing, interface security class, and the SA
//! an inbound packet was decrypted under.
//!
//! ARP never gets here: it is not IP, and z/OS filters IP packets only
//! ("The IP security policy enables a z/OS system to classify any IP
//! packet that comes across a network interface", IP Configuration Guide,
//! "Filter rules and actions").

use core::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::ipsec::sad::SaId;
use crate::wire::{flow, IpProtocol, Ipv4Packet, TcpFlags};

/// Which way a packet crosses the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PacketDirection {
    /// Arriving at the stack (z/OS log: `I`).
    Inbound,
    /// Leaving the stack (z/OS log: `O`).
    Outbound,
}

impl PacketDirection {
    /// The letter z/OS filter logs use.
    pub const fn letter(self) -> char {
        match self {
            PacketDirection::Inbound => 'I',
            PacketDirection::Outbound => 'O',
        }
    }
}

/// Whether the stack itself is an end of the packet or forwards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PacketRouting {
    /// Sent or received by this stack (z/OS log: `dest= local`).
    Local,
    /// Forwarded by this stack (z/OS log: `dest= routed`).
    Routed,
}

/// The transport fields a filter rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// TCP or UDP ports.
    Ports {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
    },
    /// ICMP type and code (RFC 792).
    Icmp {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
    },
    /// OSPF packet type (RFC 2328 §A.3.1).
    Ospf {
        /// Type.
        ospf_type: u8,
    },
    /// No header the filter reads: a non-first fragment (z/OS logs its
    /// ports as `Unknown`) or another protocol. Only `*` port, type and
    /// code conditions match it.
    None,
}

/// One packet to filter. Plain data, built per packet without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FilterPacket {
    /// Inbound or outbound.
    pub direction: PacketDirection,
    /// Local or routed.
    pub routing: PacketRouting,
    /// Source address (of the inner packet after decryption).
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol.
    pub protocol: IpProtocol,
    /// Ports, ICMP type and code, or nothing.
    pub transport: Transport,
    /// A TCP connection request: SYN without ACK. `INBCONNECT` and
    /// `OUTBCONNECT` rules test it.
    pub tcp_connect: bool,
    /// Whether the packet is a fragment (z/OS log: `fragment= Y`).
    pub fragment: bool,
    /// Total length, for the log.
    pub len: u16,
    /// The security class of the interface (`SECCLASS` on the interface
    /// definition), 0 if none.
    pub security_class: u8,
    /// Inbound only: the SA that decrypted the packet, `None` if it
    /// arrived in clear.
    pub arrived_under: Option<SaId>,
}

/// ICMP types the stack needs even when no rule permits them: the error
/// messages of RFC 1122 §3.2.2.1, §3.2.2.4 and §3.2.2.5 that TCP and UDP
/// act on (Destination Unreachable, which also carries "fragmentation
/// needed" for path MTU discovery, RFC 1191 §4; Time Exceeded; Parameter
/// Problem). IBM says only that the default policy "denies all network
/// traffic, with the exception of some select ICMP ... messages that are
/// necessary for internal stack function" (IP Configuration Guide,
/// "Default IP filter policy and IP security policy") without listing them;
/// this list is our reading of "necessary".
pub const STACK_ICMP_TYPES: [u8; 3] = [3, 11, 12];

impl FilterPacket {
    /// A local TCP segment that is not a connection request.
    pub fn tcp(
        direction: PacketDirection,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
    ) -> FilterPacket {
        FilterPacket::new(
            direction,
            src.0,
            dst.0,
            IpProtocol::Tcp,
            Transport::Ports {
                src: src.1,
                dst: dst.1,
            },
        )
    }

    /// A local UDP datagram.
    pub fn udp(
        direction: PacketDirection,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
    ) -> FilterPacket {
        let transport = Transport::Ports {
            src: src.1,
            dst: dst.1,
        };
        FilterPacket::new(direction, src.0, dst.0, IpProtocol::Udp, transport)
    }

    /// A local ICMP message.
    pub fn icmp(
        direction: PacketDirection,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp_type: u8,
        code: u8,
    ) -> FilterPacket {
        let transport = Transport::Icmp { icmp_type, code };
        FilterPacket::new(direction, src, dst, IpProtocol::Icmp, transport)
    }

    /// A local packet with the given fields, in clear, not a fragment.
    pub const fn new(
        direction: PacketDirection,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        transport: Transport,
    ) -> FilterPacket {
        FilterPacket {
            direction,
            routing: PacketRouting::Local,
            src,
            dst,
            protocol,
            transport,
            tcp_connect: false,
            fragment: false,
            len: 0,
            security_class: 0,
            arrived_under: None,
        }
    }

    /// The same packet, decrypted under `sa`.
    pub const fn under(mut self, sa: SaId) -> FilterPacket {
        self.arrived_under = Some(sa);
        self
    }

    /// The same packet as a TCP connection request (SYN without ACK).
    pub const fn connect(mut self) -> FilterPacket {
        self.tcp_connect = true;
        self
    }

    /// Reads the fields from an IPv4 packet (the inner packet, after
    /// decryption, for inbound IPsec traffic). A non-first fragment has no
    /// transport header ([`Transport::None`]).
    pub fn from_ipv4(
        bytes: &[u8],
        direction: PacketDirection,
        routing: PacketRouting,
        arrived_under: Option<SaId>,
    ) -> Result<FilterPacket, PacketError> {
        let ip = Ipv4Packet::new_checked(bytes).map_err(|_| PacketError::Malformed)?;
        let protocol = ip.next_header();
        let first = ip.frag_offset() == 0;
        let (transport, tcp_connect) = if first {
            read_transport(protocol, ip.payload())?
        } else {
            (Transport::None, false)
        };
        Ok(FilterPacket {
            direction,
            routing,
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            protocol,
            transport,
            tcp_connect,
            fragment: !first || ip.more_frags(),
            len: ip.total_len(),
            security_class: 0,
            arrived_under,
        })
    }

    /// Whether this is one of the ICMP messages the stack lets through
    /// when nothing else permits them ([`STACK_ICMP_TYPES`]).
    pub fn is_stack_icmp(&self) -> bool {
        self.routing == PacketRouting::Local
            && matches!(self.transport, Transport::Icmp { icmp_type, .. }
                if self.protocol == IpProtocol::Icmp && STACK_ICMP_TYPES.contains(&icmp_type))
    }

    /// The ports, if the packet has them.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Transport::Ports { src, dst } => Some((src, dst)),
            _ => None,
        }
    }
}

/// Reads ports, ICMP type and code or the OSPF type from the first
/// fragment's payload, and whether a TCP segment opens a connection.
fn read_transport(protocol: IpProtocol, l4: &[u8]) -> Result<(Transport, bool), PacketError> {
    let need = match protocol {
        IpProtocol::Tcp => 14,
        IpProtocol::Udp => 4,
        IpProtocol::Icmp => 2,
        IpProtocol::Unknown(89) => 2,
        _ => return Ok((Transport::None, false)),
    };
    if l4.len() < need {
        return Err(PacketError::Truncated(protocol));
    }
    // TCP and UDP: the ports every 5-tuple reader takes (wire::flow).
    let ports = || {
        let (src, dst) = flow::ports(l4).unwrap_or_default();
        Transport::Ports { src, dst }
    };
    Ok(match protocol {
        IpProtocol::Tcp => (ports(), TcpFlags(l4[13]).is_initial_syn()),
        IpProtocol::Udp => (ports(), false),
        IpProtocol::Icmp => (
            Transport::Icmp {
                icmp_type: l4[0],
                code: l4[1],
            },
            false,
        ),
        _ => (Transport::Ospf { ospf_type: l4[1] }, false),
    })
}

/// Why [`FilterPacket::from_ipv4`] cannot read a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Not a well-formed IPv4 packet.
    #[error("not a well-formed IPv4 packet")]
    Malformed,
    /// The first fragment is too short for its transport header.
    #[error("{0} header truncated")]
    Truncated(IpProtocol),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(protocol: IpProtocol, payload: &[u8], frag_offset: u16) -> Vec<u8> {
        let mut buf = vec![0u8; 20 + payload.len()];
        buf[0] = 0x45;
        buf[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        buf[6..8].copy_from_slice(&frag_offset.to_be_bytes());
        buf[8] = 64;
        buf[9] = protocol.into();
        buf[12..16].copy_from_slice(&[198, 18, 1, 10]);
        buf[16..20].copy_from_slice(&[198, 18, 0, 100]);
        buf[20..].copy_from_slice(payload);
        buf
    }

    #[test]
    fn reads_a_tcp_syn() {
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = TcpFlags::SYN.0;
        let bytes = ipv4(IpProtocol::Tcp, &tcp, 0);
        let p =
            FilterPacket::from_ipv4(&bytes, PacketDirection::Inbound, PacketRouting::Local, None)
                .unwrap();
        assert_eq!(p.ports(), Some((40000, 80)));
        assert!(p.tcp_connect && !p.fragment);
        assert_eq!(p.src, Ipv4Addr::new(198, 18, 1, 10));
        assert_eq!(p.len, 40);
        let mut ack = tcp;
        ack[13] = (TcpFlags::SYN | TcpFlags::ACK).0;
        let bytes = ipv4(IpProtocol::Tcp, &ack, 0);
        let p =
            FilterPacket::from_ipv4(&bytes, PacketDirection::Inbound, PacketRouting::Local, None);
        assert!(!p.unwrap().tcp_connect);
    }

    #[test]
    fn fragments_icmp_and_truncation() {
        // A non-first fragment (offset 185 × 8 bytes): no ports.
        let bytes = ipv4(IpProtocol::Tcp, &[0u8; 8], 185);
        let p =
            FilterPacket::from_ipv4(&bytes, PacketDirection::Inbound, PacketRouting::Local, None)
                .unwrap();
        assert_eq!(p.transport, Transport::None);
        assert!(p.fragment);
        let bytes = ipv4(IpProtocol::Icmp, &[3, 4, 0, 0, 0, 0, 0, 0], 0);
        let p =
            FilterPacket::from_ipv4(&bytes, PacketDirection::Inbound, PacketRouting::Local, None)
                .unwrap();
        assert_eq!(
            p.transport,
            Transport::Icmp {
                icmp_type: 3,
                code: 4
            }
        );
        assert!(p.is_stack_icmp());
        let bytes = ipv4(IpProtocol::Udp, &[0, 53], 0);
        assert_eq!(
            FilterPacket::from_ipv4(&bytes, PacketDirection::Inbound, PacketRouting::Local, None),
            Err(PacketError::Truncated(IpProtocol::Udp))
        );
        assert_eq!(
            FilterPacket::from_ipv4(
                &[0x45; 10],
                PacketDirection::Inbound,
                PacketRouting::Local,
                None
            ),
            Err(PacketError::Malformed)
        );
    }

    #[test]
    fn stack_icmp_is_only_errors_of_local_traffic() {
        let a = Ipv4Addr::new(198, 18, 1, 10);
        let b = Ipv4Addr::new(198, 18, 0, 100);
        let echo = FilterPacket::icmp(PacketDirection::Inbound, a, b, 8, 0);
        assert!(!echo.is_stack_icmp());
        let exceeded = FilterPacket::icmp(PacketDirection::Outbound, b, a, 11, 0);
        assert!(exceeded.is_stack_icmp());
        let mut routed = exceeded;
        routed.routing = PacketRouting::Routed;
        assert!(!routed.is_stack_icmp());
    }
}
