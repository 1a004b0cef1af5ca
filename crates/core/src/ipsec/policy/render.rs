//! One-line renderings of filter conditions for displays (`plexnet ipsec
//! NODE -f`), in the spirit of `ipsec -f display`'s fields: addresses as
//! z/OS writes them (`*`, `a.b.c.d/len`, `first-last`), the protocol with
//! its ports or ICMP type and code, routing and direction.

use core::fmt;

use super::{AddrSpec, Conditions, Direction, PortSpec, ProtocolSpec, Routing, TcpConnect};

impl fmt::Display for AddrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrSpec::Any => f.write_str("*"),
            AddrSpec::Prefix { addr, len: 32 } => write!(f, "{addr}"),
            AddrSpec::Prefix { addr, len } => write!(f, "{addr}/{len}"),
            AddrSpec::Range { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Any => f.write_str("*"),
            PortSpec::Range { first, last } if first == last => write!(f, "{first}"),
            PortSpec::Range { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

fn opt(v: Option<u8>) -> String {
    v.map_or_else(|| "*".to_string(), |n| n.to_string())
}

impl fmt::Display for ProtocolSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolSpec::Any => f.write_str("all"),
            ProtocolSpec::Tcp { src, dst } => write!(f, "TCP {src}->{dst}"),
            ProtocolSpec::Udp { src, dst } => write!(f, "UDP {src}->{dst}"),
            ProtocolSpec::Icmp { icmp_type, code } => {
                write!(f, "ICMP type {} code {}", opt(*icmp_type), opt(*code))
            }
            ProtocolSpec::Ospf { ospf_type } => write!(f, "OSPF type {}", opt(*ospf_type)),
            ProtocolSpec::Number(n) => write!(f, "proto {n}"),
        }
    }
}

impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routing = match self.routing {
            Routing::Local => "local",
            Routing::Routed => "routed",
            Routing::Either => "either",
        };
        let direction = match (self.direction, self.connect) {
            (Direction::Inbound, _) => "inbound",
            (Direction::Outbound, _) => "outbound",
            (Direction::Bidirectional, Some(TcpConnect::Inbound)) => "bidir inbconnect",
            (Direction::Bidirectional, Some(TcpConnect::Outbound)) => "bidir outbconnect",
            (Direction::Bidirectional, None) => "bidir",
        };
        write!(
            f,
            "{} -> {} {} {routing} {direction}",
            self.source, self.destination, self.protocol
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn conditions_render_as_one_line() {
        let c = Conditions {
            source: AddrSpec::Prefix {
                addr: Ipv4Addr::new(198, 18, 0, 100),
                len: 32,
            },
            destination: AddrSpec::Prefix {
                addr: Ipv4Addr::new(198, 18, 1, 0),
                len: 24,
            },
            protocol: ProtocolSpec::Tcp {
                src: PortSpec::single(80),
                dst: PortSpec::Range {
                    first: 1024,
                    last: 65535,
                },
            },
            routing: Routing::Local,
            direction: Direction::Bidirectional,
            connect: Some(TcpConnect::Inbound),
            security_class: 0,
        };
        assert_eq!(
            c.to_string(),
            "198.18.0.100 -> 198.18.1.0/24 TCP 80->1024-65535 local bidir inbconnect"
        );
        let any = AddrSpec::Range {
            first: Ipv4Addr::new(198, 18, 1, 0),
            last: Ipv4Addr::new(198, 18, 2, 255),
        };
        assert_eq!(any.to_string(), "198.18.1.0-198.18.2.255");
        assert_eq!(
            ProtocolSpec::Icmp {
                icmp_type: Some(8),
                code: None
            }
            .to_string(),
            "ICMP type 8 code *"
        );
    }
}
