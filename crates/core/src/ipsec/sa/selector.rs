//! SA selectors (RFC 4301 §4.4.1.1; RFC 7296 §3.13.1 traffic selectors):
//! the addresses, protocol and ports an SA may carry, checked on inbound
//! packets after decryption (RFC 4301 §5.2).

use super::*;

/// An inclusive address range (RFC 4301 §4.4.1.1 selectors, RFC 7296
/// §3.13.1 traffic selectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddrRange {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
}

impl AddrRange {
    /// Every IPv4 address.
    pub const ANY_V4: AddrRange = AddrRange {
        start: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        end: IpAddr::V4(Ipv4Addr::BROADCAST),
    };

    /// Exactly one address.
    pub const fn single(addr: IpAddr) -> AddrRange {
        AddrRange {
            start: addr,
            end: addr,
        }
    }

    /// Whether `addr` is in the range (same family only).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.start, self.end, addr) {
            (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
            (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
            _ => false,
        }
    }
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port.
    pub end: u16,
}

impl PortRange {
    /// Every port.
    pub const ANY: PortRange = PortRange {
        start: 0,
        end: u16::MAX,
    };

    /// Exactly one port.
    pub const fn single(port: u16) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        self.start <= port && port <= self.end
    }

    /// Whether the range is every port (then protocols without ports match).
    pub fn is_any(&self) -> bool {
        *self == PortRange::ANY
    }
}

/// The traffic an SA may carry, in the direction the SA carries it
/// (RFC 4301 §4.4.1.1; checked on inbound packets after decryption,
/// RFC 4301 §5.2 step 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrafficSelector {
    /// Source addresses of the (inner) packets.
    pub src: AddrRange,
    /// Destination addresses of the (inner) packets.
    pub dst: AddrRange,
    /// Protocol; `None` for any.
    pub protocol: Option<IpProtocol>,
    /// Source ports (TCP and UDP).
    pub src_ports: PortRange,
    /// Destination ports (TCP and UDP).
    pub dst_ports: PortRange,
}

impl TrafficSelector {
    /// Any IPv4 traffic.
    pub const ANY_V4: TrafficSelector = TrafficSelector {
        src: AddrRange::ANY_V4,
        dst: AddrRange::ANY_V4,
        protocol: None,
        src_ports: PortRange::ANY,
        dst_ports: PortRange::ANY,
    };

    /// Host-to-host traffic between two addresses, any protocol.
    pub fn hosts(src: IpAddr, dst: IpAddr) -> TrafficSelector {
        TrafficSelector {
            src: AddrRange::single(src),
            dst: AddrRange::single(dst),
            protocol: None,
            src_ports: PortRange::ANY,
            dst_ports: PortRange::ANY,
        }
    }

    /// Whether a packet matches. `ports` is `None` for protocols without
    /// ports, which then match only selectors with any port.
    pub fn matches(
        &self,
        src: IpAddr,
        dst: IpAddr,
        protocol: IpProtocol,
        ports: Option<(u16, u16)>,
    ) -> bool {
        if !self.src.contains(src) || !self.dst.contains(dst) {
            return false;
        }
        if self.protocol.is_some_and(|p| p != protocol) {
            return false;
        }
        match ports {
            Some((sp, dp)) => self.src_ports.contains(sp) && self.dst_ports.contains(dp),
            None => self.src_ports.is_any() && self.dst_ports.is_any(),
        }
    }
}
