//! Which IpFilterRule anchors a negotiated SA pair: the rule whose
//! IpDynVpnAction the pair's traffic falls under, so that its dynamic
//! filter goes in front of that rule (IP Configuration Guide, page
//! `ipsecurity_verify_anchor_dyn_filters`) here and, sent with the SAs, at
//! every target (patent Fig. 6 block 118, Fig. 7 block 122).
//!
//! z/OS's IKE narrows a child SA to the filter rule it negotiates for, so
//! the anchor always *covers* the SA's selectors. plexnet's IKE narrows to
//! the `[ike]` selectors of the topology (host to host by default), which
//! can be wider than the policy's per-service rules (figure4 protects
//! ports 80 and 5201-5204 with two rules). So the anchor is the first
//! IPsec rule that covers the SA's traffic, else the first whose traffic
//! the SA's overlaps; the dynamic filter keeps the negotiated selectors
//! either way (RFC 4301 §4.4.2: an SA's selectors are what it may carry).

use core::net::IpAddr;

use crate::ipsec::policy::{AddrSpec, Conditions, Direction, PortSpec, ProtocolSpec, Routing};
use crate::ipsec::sa::{AddrRange, PortRange, TrafficSelector};
use crate::wire::IpProtocol;

/// How much of an SA's traffic a rule's conditions take in. Ordered: the
/// weaker of two parts is the whole's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Coverage {
    /// No packet of the SA matches the rule.
    Disjoint,
    /// Some do, some may not.
    Overlaps,
    /// Every packet the SA may carry matches the rule.
    Covers,
}

/// How much of the traffic of an SA pair `c` takes in: a bidirectional or
/// outbound rule (written for outbound traffic, source = the local side)
/// compared with the outbound SA's selector as written, an inbound-only
/// rule with the inbound SA's. A rule for routed traffic only never
/// anchors a DVIPA's tunnel (its traffic is local), and a rule restricted
/// to a security class at best overlaps (interfaces are not in selectors).
pub fn coverage(c: &Conditions, outbound: &TrafficSelector, inbound: &TrafficSelector) -> Coverage {
    if c.routing == Routing::Routed {
        return Coverage::Disjoint;
    }
    let sel = match c.direction {
        Direction::Bidirectional | Direction::Outbound => outbound,
        Direction::Inbound => inbound,
    };
    let class = if c.security_class == 0 {
        Coverage::Covers
    } else {
        Coverage::Overlaps
    };
    class
        .min(addr_coverage(c.source, &sel.src))
        .min(addr_coverage(c.destination, &sel.dst))
        .min(protocol_coverage(&c.protocol, sel))
}

/// An inclusive interval of IPv4 addresses as numbers; `None` if empty.
fn spec_interval(a: AddrSpec) -> Option<(u32, u32)> {
    match a {
        AddrSpec::Any => Some((0, u32::MAX)),
        AddrSpec::Prefix { addr, len } if len <= 32 => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            let lo = u32::from(addr) & mask;
            Some((lo, lo | !mask))
        }
        AddrSpec::Prefix { .. } => None,
        AddrSpec::Range { first, last } => {
            (first <= last).then(|| (u32::from(first), u32::from(last)))
        }
    }
}

/// The selector's IPv4 range as numbers; `None` for IPv6 or a backwards
/// range (no IPv4 rule matches it).
fn range_interval(r: &AddrRange) -> Option<(u32, u32)> {
    match (r.start, r.end) {
        (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => Some((u32::from(s), u32::from(e))),
        _ => None,
    }
}

/// Inclusive intervals: containment, overlap or neither.
fn interval_coverage(rule: (u32, u32), sel: (u32, u32)) -> Coverage {
    if rule.0 <= sel.0 && sel.1 <= rule.1 {
        Coverage::Covers
    } else if rule.0 <= sel.1 && sel.0 <= rule.1 {
        Coverage::Overlaps
    } else {
        Coverage::Disjoint
    }
}

fn addr_coverage(rule: AddrSpec, sel: &AddrRange) -> Coverage {
    match (spec_interval(rule), range_interval(sel)) {
        (Some(r), Some(s)) => interval_coverage(r, s),
        _ => Coverage::Disjoint,
    }
}

fn port_coverage(rule: PortSpec, sel: &PortRange) -> Coverage {
    let r = match rule {
        PortSpec::Any => (0, u32::from(u16::MAX)),
        PortSpec::Range { first, last } => (u32::from(first), u32::from(last)),
    };
    if sel.start > sel.end || r.0 > r.1 {
        return Coverage::Disjoint;
    }
    interval_coverage(r, (u32::from(sel.start), u32::from(sel.end)))
}

/// The protocol, ports, ICMP and OSPF conditions. A selector for any
/// protocol only overlaps a rule for one; a rule's ICMP type or OSPF type
/// only overlaps a selector (selectors do not carry them here).
fn protocol_coverage(spec: &ProtocolSpec, sel: &TrafficSelector) -> Coverage {
    let one = |p: IpProtocol| match sel.protocol {
        None => Coverage::Overlaps,
        Some(q) if q == p => Coverage::Covers,
        Some(_) => Coverage::Disjoint,
    };
    match *spec {
        ProtocolSpec::Any => Coverage::Covers,
        ProtocolSpec::Tcp { src, dst } | ProtocolSpec::Udp { src, dst } => {
            let p = if matches!(spec, ProtocolSpec::Tcp { .. }) {
                IpProtocol::Tcp
            } else {
                IpProtocol::Udp
            };
            one(p)
                .min(port_coverage(src, &sel.src_ports))
                .min(port_coverage(dst, &sel.dst_ports))
        }
        ProtocolSpec::Icmp { icmp_type, code } => {
            let exact = icmp_type.is_none() && code.is_none();
            one(IpProtocol::Icmp).min(if exact {
                Coverage::Covers
            } else {
                Coverage::Overlaps
            })
        }
        ProtocolSpec::Ospf { ospf_type } => {
            one(IpProtocol::Unknown(89)).min(if ospf_type.is_none() {
                Coverage::Covers
            } else {
                Coverage::Overlaps
            })
        }
        ProtocolSpec::Number(n) => one(IpProtocol::from(n)),
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;

    const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

    /// figure4's dva1-web: DVA1 port 80 to the clients' LANs, ports
    /// 1024-65535.
    fn web() -> Conditions {
        Conditions::local(
            AddrSpec::host(DVIPA),
            AddrSpec::Range {
                first: Ipv4Addr::new(198, 18, 1, 0),
                last: Ipv4Addr::new(198, 18, 2, 255),
            },
            ProtocolSpec::Tcp {
                src: PortSpec::single(80),
                dst: PortSpec::Range {
                    first: 1024,
                    last: 65535,
                },
            },
        )
    }

    fn pair(out: TrafficSelector) -> (TrafficSelector, TrafficSelector) {
        let inb = TrafficSelector {
            src: out.dst,
            dst: out.src,
            protocol: out.protocol,
            src_ports: out.dst_ports,
            dst_ports: out.src_ports,
        };
        (out, inb)
    }

    fn tcp80(client_ports: PortRange) -> TrafficSelector {
        TrafficSelector {
            src: AddrRange::single(IpAddr::V4(DVIPA)),
            dst: AddrRange::single(IpAddr::V4(CLIENT)),
            protocol: Some(IpProtocol::Tcp),
            src_ports: PortRange::single(80),
            dst_ports: client_ports,
        }
    }

    #[test]
    fn a_narrowed_sa_is_covered_a_host_to_host_one_overlaps() {
        let (o, i) = pair(tcp80(PortRange {
            start: 40000,
            end: 40009,
        }));
        assert_eq!(coverage(&web(), &o, &i), Coverage::Covers);
        let (o, i) = pair(tcp80(PortRange::ANY));
        assert_eq!(coverage(&web(), &o, &i), Coverage::Overlaps);
        let (o, i) = pair(TrafficSelector::hosts(
            IpAddr::V4(DVIPA),
            IpAddr::V4(CLIENT),
        ));
        assert_eq!(coverage(&web(), &o, &i), Coverage::Overlaps);
        // The other DVIPA, another port, UDP: nothing in common.
        let mut other = tcp80(PortRange::ANY);
        other.src = AddrRange::single(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 101)));
        let (o, i) = pair(other);
        assert_eq!(coverage(&web(), &o, &i), Coverage::Disjoint);
        let mut p81 = tcp80(PortRange::ANY);
        p81.src_ports = PortRange::single(81);
        let (o, i) = pair(p81);
        assert_eq!(coverage(&web(), &o, &i), Coverage::Disjoint);
        let mut udp = tcp80(PortRange::ANY);
        udp.protocol = Some(IpProtocol::Udp);
        let (o, i) = pair(udp);
        assert_eq!(coverage(&web(), &o, &i), Coverage::Disjoint);
    }

    #[test]
    fn direction_routing_class_and_other_protocols() {
        let (o, i) = pair(tcp80(PortRange::ANY));
        // Inbound-only rules are written as the packets travel in.
        let mut c = web();
        c.direction = Direction::Inbound;
        assert_eq!(coverage(&c, &o, &i), Coverage::Disjoint);
        c.source = AddrSpec::Any;
        c.destination = AddrSpec::host(DVIPA);
        c.protocol = ProtocolSpec::Tcp {
            src: PortSpec::Any,
            dst: PortSpec::single(80),
        };
        assert_eq!(coverage(&c, &o, &i), Coverage::Covers);
        c.routing = Routing::Routed;
        assert_eq!(coverage(&c, &o, &i), Coverage::Disjoint);
        c.routing = Routing::Either;
        c.security_class = 3;
        assert_eq!(coverage(&c, &o, &i), Coverage::Overlaps);
        let any = Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Any);
        assert_eq!(coverage(&any, &o, &i), Coverage::Covers);
        let icmp = Conditions::local(
            AddrSpec::Any,
            AddrSpec::Any,
            ProtocolSpec::Icmp {
                icmp_type: None,
                code: None,
            },
        );
        assert_eq!(coverage(&icmp, &o, &i), Coverage::Disjoint);
        let tcp = Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Number(6));
        assert_eq!(coverage(&tcp, &o, &i), Coverage::Covers);
    }
}
