//! Whether a packet satisfies a rule's conditions or a dynamic filter's
//! selectors. Pure functions, no allocation.

use core::net::IpAddr;

use super::packet::{FilterPacket, PacketDirection, PacketRouting, Transport};
use super::DynamicFilter;
use crate::ipsec::policy::{Conditions, Direction, PortSpec, ProtocolSpec, Routing, TcpConnect};
use crate::wire::IpProtocol;

/// Whether `p` satisfies `c`. A bidirectional rule is written for outbound
/// traffic and mirrored for inbound packets (source ↔ destination, source
/// port ↔ destination port), as IBM's `IpFilterRule InternalNetWeb`
/// sample explains (IP Configuration Guide, "IP filter policy"); a one-way
/// rule is compared as written.
pub(super) fn rule_matches(c: &Conditions, p: &FilterPacket) -> bool {
    if c.security_class != 0 && c.security_class != p.security_class {
        return false;
    }
    if !routing_matches(c.routing, p.routing) {
        return false;
    }
    let mirrored = match (c.direction, p.direction) {
        (Direction::Outbound | Direction::Bidirectional, PacketDirection::Outbound) => false,
        (Direction::Inbound, PacketDirection::Inbound) => false,
        (Direction::Bidirectional, PacketDirection::Inbound) => true,
        _ => return false,
    };
    let (src, dst) = if mirrored {
        (p.dst, p.src)
    } else {
        (p.src, p.dst)
    };
    c.source.contains(src)
        && c.destination.contains(dst)
        && protocol_matches(&c.protocol, p, mirrored)
        && connect_allowed(c.connect, p)
}

/// IPSECRULE `ROUTING`: LOCAL, ROUTED or EITHER.
fn routing_matches(rule: Routing, packet: PacketRouting) -> bool {
    match rule {
        Routing::Either => true,
        Routing::Local => packet == PacketRouting::Local,
        Routing::Routed => packet == PacketRouting::Routed,
    }
}

/// The protocol, port, ICMP and OSPF conditions.
fn protocol_matches(spec: &ProtocolSpec, p: &FilterPacket, mirrored: bool) -> bool {
    match *spec {
        ProtocolSpec::Any => true,
        ProtocolSpec::Tcp { src, dst } => {
            p.protocol == IpProtocol::Tcp && ports_match(src, dst, p.transport, mirrored)
        }
        ProtocolSpec::Udp { src, dst } => {
            p.protocol == IpProtocol::Udp && ports_match(src, dst, p.transport, mirrored)
        }
        ProtocolSpec::Icmp { icmp_type, code } => {
            p.protocol == IpProtocol::Icmp
                && match p.transport {
                    Transport::Icmp {
                        icmp_type: t,
                        code: k,
                    } => icmp_type.is_none_or(|x| x == t) && code.is_none_or(|x| x == k),
                    _ => icmp_type.is_none() && code.is_none(),
                }
        }
        ProtocolSpec::Ospf { ospf_type } => {
            p.protocol == IpProtocol::Unknown(89)
                && match p.transport {
                    Transport::Ospf { ospf_type: t } => ospf_type.is_none_or(|x| x == t),
                    _ => ospf_type.is_none(),
                }
        }
        ProtocolSpec::Number(n) => u8::from(p.protocol) == n,
    }
}

/// Port conditions; a packet without ports (a non-first fragment) matches
/// only `*`.
fn ports_match(src: PortSpec, dst: PortSpec, t: Transport, mirrored: bool) -> bool {
    match t {
        Transport::Ports { src: s, dst: d } => {
            let (s, d) = if mirrored { (d, s) } else { (s, d) };
            src.contains(s) && dst.contains(d)
        }
        _ => src == PortSpec::Any && dst == PortSpec::Any,
    }
}

/// `INBCONNECT` / `OUTBCONNECT`: a TCP connection request travelling the
/// other way does not match the rule.
fn connect_allowed(connect: Option<TcpConnect>, p: &FilterPacket) -> bool {
    if !p.tcp_connect {
        return true;
    }
    match connect {
        None => true,
        Some(TcpConnect::Inbound) => p.direction == PacketDirection::Inbound,
        Some(TcpConnect::Outbound) => p.direction == PacketDirection::Outbound,
    }
}

/// Whether `p` matches the dynamic filter of its direction: the outbound
/// SA's selectors for outbound packets, the inbound SA's for inbound ones
/// (RFC 4301 §5.2 step 4 checks inbound packets against the SA's
/// selectors after decryption; in z/OS each phase 2 SA has an inbound and
/// an outbound dynamic filter, IP Configuration Guide, page
/// `ipsecurity_ipsec_map_sa_filters`). The anchor's routing applies too.
pub(super) fn dynamic_matches(f: &DynamicFilter, routing: Routing, p: &FilterPacket) -> bool {
    if !routing_matches(routing, p.routing) {
        return false;
    }
    let ts = match p.direction {
        PacketDirection::Outbound => &f.outbound,
        PacketDirection::Inbound => &f.inbound,
    };
    ts.matches(IpAddr::V4(p.src), IpAddr::V4(p.dst), p.protocol, p.ports())
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;
    use crate::ipsec::policy::AddrSpec;

    const ZOS: Ipv4Addr = Ipv4Addr::new(9, 1, 1, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(9, 1, 1, 7);

    /// IBM's InternalNetWeb sample: 9.1.1.1 port 80 to 9.1.1.0/24 ports
    /// 1024-65535, bidirectional.
    fn web(connect: Option<TcpConnect>) -> Conditions {
        let mut c = Conditions::local(
            AddrSpec::host(ZOS),
            AddrSpec::Prefix {
                addr: Ipv4Addr::new(9, 1, 1, 0),
                len: 24,
            },
            ProtocolSpec::Tcp {
                src: PortSpec::single(80),
                dst: PortSpec::Range {
                    first: 1024,
                    last: 65535,
                },
            },
        );
        c.connect = connect;
        c
    }

    #[test]
    fn bidirectional_rules_mirror_for_inbound() {
        let c = web(None);
        let out = FilterPacket::tcp(PacketDirection::Outbound, (ZOS, 80), (PEER, 40000));
        let inb = FilterPacket::tcp(PacketDirection::Inbound, (PEER, 40000), (ZOS, 80));
        assert!(rule_matches(&c, &out));
        assert!(rule_matches(&c, &inb));
        // The same inbound packet compared as written does not match.
        let literal = FilterPacket::tcp(PacketDirection::Inbound, (ZOS, 80), (PEER, 40000));
        assert!(!rule_matches(&c, &literal));
        // A client port below 1024 is outside the rule.
        let low = FilterPacket::tcp(PacketDirection::Inbound, (PEER, 1023), (ZOS, 80));
        assert!(!rule_matches(&c, &low));
    }

    #[test]
    fn one_way_rules_and_routing() {
        let mut c = web(None);
        c.direction = Direction::Outbound;
        let out = FilterPacket::tcp(PacketDirection::Outbound, (ZOS, 80), (PEER, 40000));
        let inb = FilterPacket::tcp(PacketDirection::Inbound, (PEER, 40000), (ZOS, 80));
        assert!(rule_matches(&c, &out) && !rule_matches(&c, &inb));
        c.direction = Direction::Inbound;
        let literal = FilterPacket::tcp(PacketDirection::Inbound, (ZOS, 80), (PEER, 40000));
        assert!(rule_matches(&c, &literal) && !rule_matches(&c, &inb));
        let mut routed = literal;
        routed.routing = PacketRouting::Routed;
        assert!(!rule_matches(&c, &routed));
        c.routing = Routing::Either;
        assert!(rule_matches(&c, &routed));
        c.security_class = 5;
        assert!(!rule_matches(&c, &routed));
        routed.security_class = 5;
        assert!(rule_matches(&c, &routed));
    }

    #[test]
    fn connect_direction() {
        let inb_syn =
            FilterPacket::tcp(PacketDirection::Inbound, (PEER, 40000), (ZOS, 80)).connect();
        let out_syn =
            FilterPacket::tcp(PacketDirection::Outbound, (ZOS, 80), (PEER, 40000)).connect();
        let c = web(Some(TcpConnect::Inbound));
        assert!(rule_matches(&c, &inb_syn));
        assert!(!rule_matches(&c, &out_syn));
        let c = web(Some(TcpConnect::Outbound));
        assert!(!rule_matches(&c, &inb_syn));
        assert!(rule_matches(&c, &out_syn));
        // Segments after the SYN are not affected.
        let ack = FilterPacket::tcp(PacketDirection::Inbound, (PEER, 40000), (ZOS, 80));
        assert!(rule_matches(&c, &ack));
    }

    #[test]
    fn icmp_ospf_numbers_and_fragments() {
        let icmp = |t, k| {
            Conditions::local(
                AddrSpec::Any,
                AddrSpec::Any,
                ProtocolSpec::Icmp {
                    icmp_type: t,
                    code: k,
                },
            )
        };
        let echo = FilterPacket::icmp(PacketDirection::Outbound, ZOS, PEER, 8, 0);
        assert!(rule_matches(&icmp(Some(8), None), &echo));
        assert!(!rule_matches(&icmp(Some(0), None), &echo));
        assert!(!rule_matches(&icmp(Some(8), Some(1)), &echo));
        let tcp = Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Number(6));
        let seg = FilterPacket::tcp(PacketDirection::Outbound, (ZOS, 80), (PEER, 40000));
        assert!(rule_matches(&tcp, &seg) && !rule_matches(&tcp, &echo));
        let mut frag = seg;
        frag.transport = Transport::None;
        assert!(!rule_matches(&web(None), &frag));
        let any_port = Conditions::local(
            AddrSpec::Any,
            AddrSpec::Any,
            ProtocolSpec::Tcp {
                src: PortSpec::Any,
                dst: PortSpec::Any,
            },
        );
        assert!(rule_matches(&any_port, &frag));
        let ospf = Conditions::local(
            AddrSpec::Any,
            AddrSpec::Any,
            ProtocolSpec::Ospf { ospf_type: Some(1) },
        );
        let hello = FilterPacket::new(
            PacketDirection::Outbound,
            ZOS,
            Ipv4Addr::new(224, 0, 0, 5),
            IpProtocol::Unknown(89),
            Transport::Ospf { ospf_type: 1 },
        );
        assert!(rule_matches(&ospf, &hello));
    }
}
