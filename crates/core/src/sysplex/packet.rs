//! What a packet arriving for a DVIPA is, read from its headers only: IPsec
//! (ESP, AH, ESP in UDP 4500), IKE (UDP 500, or 4500 with the non-ESP
//! marker, RFC 3948 §2.2), or a plain flow with its ports and TCP flags.

use std::net::Ipv4Addr;

use crate::ipsec::OuterView;
use crate::wire::udp_encap::{NAT_T_PORT, NON_ESP_MARKER};
use crate::wire::{ipv4, tcp, udp, IpProtocol, TcpFlags};

/// UDP port of IKE (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;

/// The 5-tuple (and TCP flags) of an unencrypted IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: IpProtocol,
    pub src_port: u16,
    pub dst_port: u16,
    pub flags: Option<TcpFlags>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ESP, AH, or ESP in UDP: look the SA up by SPI. The outer view is
    /// parsed here once and passed down (locate, peek).
    Ipsec(OuterView),
    /// IKE for the DVIPA's IKE daemon.
    Ike,
    /// A one-byte NAT keepalive (RFC 3948 §2.3): nothing to do.
    NatKeepalive,
    /// Anything else, with its flow.
    Plain(Flow),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("not a well-formed IPv4 packet")]
    Malformed,
    #[error("IP fragment")]
    Fragment,
}

pub fn classify(packet: &[u8]) -> Result<Kind, PacketError> {
    let ip = ipv4::Packet::new_checked(packet).map_err(|_| PacketError::Malformed)?;
    let repr = ipv4::Repr::parse(&ip).map_err(|_| PacketError::Malformed)?;
    if repr.more_frags || repr.frag_offset != 0 {
        return Err(PacketError::Fragment);
    }
    let payload = ip.payload();
    match repr.next_header {
        IpProtocol::Esp | IpProtocol::Ah => ipsec(packet),
        IpProtocol::Udp => {
            let u = udp::Packet::new_checked(payload).map_err(|_| PacketError::Malformed)?;
            match u.dst_port() {
                IKE_PORT => Ok(Kind::Ike),
                NAT_T_PORT => Ok(match u.payload() {
                    [0xff] => Kind::NatKeepalive,
                    p if p.starts_with(&NON_ESP_MARKER) => Kind::Ike,
                    _ => ipsec(packet)?,
                }),
                _ => Ok(Kind::Plain(flow(&repr, payload)?)),
            }
        }
        _ => Ok(Kind::Plain(flow(&repr, payload)?)),
    }
}

/// The outer view of an IPsec packet whose IPv4 header [`classify`] has
/// checked. A packet it cannot make one of (an ESP-in-UDP datagram too
/// short for the SPI) is malformed: nothing could look its SA up.
fn ipsec(packet: &[u8]) -> Result<Kind, PacketError> {
    OuterView::after_ipv4(packet)
        .map(Kind::Ipsec)
        .map_err(|_| PacketError::Malformed)
}

/// The flow of an unencrypted packet (ports for TCP and UDP, flags for TCP).
pub fn flow_of(packet: &[u8]) -> Result<Flow, PacketError> {
    let ip = ipv4::Packet::new_checked(packet).map_err(|_| PacketError::Malformed)?;
    let repr = ipv4::Repr::parse(&ip).map_err(|_| PacketError::Malformed)?;
    flow(&repr, ip.payload())
}

fn flow(repr: &ipv4::Repr, payload: &[u8]) -> Result<Flow, PacketError> {
    let (src_port, dst_port, flags) = match repr.next_header {
        IpProtocol::Tcp => {
            let t = tcp::Packet::new_checked(payload).map_err(|_| PacketError::Malformed)?;
            (t.src_port(), t.dst_port(), Some(t.flags()))
        }
        IpProtocol::Udp => {
            let u = udp::Packet::new_checked(payload).map_err(|_| PacketError::Malformed)?;
            (u.src_port(), u.dst_port(), None)
        }
        _ => (0, 0, None),
    };
    Ok(Flow {
        src: repr.src_addr,
        dst: repr.dst_addr,
        proto: repr.next_header,
        src_port,
        dst_port,
        flags,
    })
}
