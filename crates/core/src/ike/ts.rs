//! Traffic selectors: configuration, narrowing (RFC 7296 §2.9) and the
//! conversion of a negotiated pair into the IPsec engine's selector.
//!
//! Only TS_IPV4_ADDR_RANGE is negotiated (the testbed is IPv4); other types
//! in a peer's payload never intersect anything and are dropped by
//! narrowing.

use core::net::{IpAddr, Ipv4Addr};

use crate::ipsec::sa::{AddrRange, PortRange, TrafficSelector as SaSelector};
use crate::wire::ike::TrafficSelector;
use crate::wire::IpProtocol;

/// The traffic selectors of one side, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TsConfig {
    /// That side's IKE address, all protocols and ports (strongSwan's
    /// `dynamic`): host-to-host, the DVIPA case.
    #[default]
    Dynamic,
    /// Explicit selectors.
    Selectors(Vec<TrafficSelector>),
}

impl TsConfig {
    /// The selectors, with `Dynamic` resolved to `host`.
    pub fn resolve(&self, host: Ipv4Addr) -> Vec<TrafficSelector> {
        match self {
            TsConfig::Dynamic => vec![TrafficSelector::ipv4_host(host.octets())],
            TsConfig::Selectors(s) => s.clone(),
        }
    }
}

/// An IPv4 selector from a CIDR prefix, all protocols and ports.
pub fn ipv4_subnet(addr: Ipv4Addr, prefix_len: u8) -> TrafficSelector {
    let bits = u32::from(addr);
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    };
    TrafficSelector::Ipv4 {
        ip_protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
        start: (bits & mask).to_be_bytes(),
        end: (bits | !mask).to_be_bytes(),
    }
}

/// The intersection of two IPv4 selectors, if not empty. Protocol 0 is
/// "any" (§3.13.1); ports intersect as ranges.
pub fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    let (
        TrafficSelector::Ipv4 {
            ip_protocol: pa,
            start_port: sa,
            end_port: ea,
            start: a0,
            end: a1,
        },
        TrafficSelector::Ipv4 {
            ip_protocol: pb,
            start_port: sb,
            end_port: eb,
            start: b0,
            end: b1,
        },
    ) = (a, b)
    else {
        return None;
    };
    let ip_protocol = match (*pa, *pb) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let (start_port, end_port) = ((*sa).max(*sb), (*ea).min(*eb));
    let start = u32::from_be_bytes(*a0).max(u32::from_be_bytes(*b0));
    let end = u32::from_be_bytes(*a1).min(u32::from_be_bytes(*b1));
    if start_port > end_port || start > end {
        return None;
    }
    Some(TrafficSelector::Ipv4 {
        ip_protocol,
        start_port,
        end_port,
        start: start.to_be_bytes(),
        end: end.to_be_bytes(),
    })
}

/// Whether `inner` is contained in `outer`.
pub fn is_subset(inner: &TrafficSelector, outer: &TrafficSelector) -> bool {
    intersect(inner, outer).as_ref() == Some(inner)
}

/// Narrows what the peer proposed to what we allow (RFC 7296 §2.9): every
/// non-empty intersection of a proposed selector with an allowed one, in
/// the peer's order, without duplicates. Empty means TS_UNACCEPTABLE.
pub fn narrow(proposed: &[TrafficSelector], allowed: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for p in proposed {
        for a in allowed {
            if let Some(ts) = intersect(p, a) {
                if !out.contains(&ts) {
                    out.push(ts);
                }
            }
        }
    }
    out
}

/// Whether every selector the responder returned lies within what we
/// proposed (§2.9: the responder may only narrow).
pub fn all_within(returned: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !returned.is_empty()
        && returned
            .iter()
            .all(|r| proposed.iter().any(|p| is_subset(r, p)))
}

/// The engine's selector for packets from `src` to `dst` (the first
/// selector of each side; a child SA here carries one pair).
pub fn to_sa_selector(src: &[TrafficSelector], dst: &[TrafficSelector]) -> Option<SaSelector> {
    let (
        Some(TrafficSelector::Ipv4 {
            ip_protocol: ps,
            start_port: s0,
            end_port: s1,
            start: a0,
            end: a1,
        }),
        Some(TrafficSelector::Ipv4 {
            ip_protocol: pd,
            start_port: d0,
            end_port: d1,
            start: b0,
            end: b1,
        }),
    ) = (src.first(), dst.first())
    else {
        return None;
    };
    let protocol = match (*ps, *pd) {
        (0, 0) => None,
        (0, p) | (p, 0) => Some(IpProtocol::from(p)),
        (p, _) => Some(IpProtocol::from(p)),
    };
    let range = |s: &[u8; 4], e: &[u8; 4]| AddrRange {
        start: IpAddr::V4(Ipv4Addr::from(*s)),
        end: IpAddr::V4(Ipv4Addr::from(*e)),
    };
    Some(SaSelector {
        src: range(a0, a1),
        dst: range(b0, b1),
        protocol,
        src_ports: PortRange {
            start: *s0,
            end: *s1,
        },
        dst_ports: PortRange {
            start: *d0,
            end: *d1,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(a: [u8; 4]) -> TrafficSelector {
        TrafficSelector::ipv4_host(a)
    }

    #[test]
    fn narrows_to_intersection() {
        let net = ipv4_subnet(Ipv4Addr::new(198, 18, 0, 0), 24);
        assert_eq!(
            net,
            TrafficSelector::Ipv4 {
                ip_protocol: 0,
                start_port: 0,
                end_port: 65535,
                start: [198, 18, 0, 0],
                end: [198, 18, 0, 255]
            }
        );
        // The peer proposes 0.0.0.0/0; we allow the DVIPA only.
        let any = ipv4_subnet(Ipv4Addr::UNSPECIFIED, 0);
        let dvipa = host([198, 18, 0, 100]);
        assert_eq!(
            narrow(std::slice::from_ref(&any), std::slice::from_ref(&dvipa)),
            vec![dvipa.clone()]
        );
        // TCP port 80 of the subnet, narrowed by the host: TCP/80 of the host.
        let web = TrafficSelector::Ipv4 {
            ip_protocol: 6,
            start_port: 80,
            end_port: 80,
            start: [198, 18, 0, 0],
            end: [198, 18, 0, 255],
        };
        let n = narrow(std::slice::from_ref(&web), std::slice::from_ref(&dvipa));
        assert_eq!(
            n,
            vec![TrafficSelector::Ipv4 {
                ip_protocol: 6,
                start_port: 80,
                end_port: 80,
                start: [198, 18, 0, 100],
                end: [198, 18, 0, 100]
            }]
        );
        assert!(is_subset(&n[0], &web) && is_subset(&n[0], &dvipa));
        assert!(!is_subset(&web, &dvipa));
        // Disjoint addresses, protocols or ports: nothing.
        assert!(narrow(&[host([198, 18, 0, 101])], std::slice::from_ref(&dvipa)).is_empty());
        let udp = TrafficSelector::Ipv4 {
            ip_protocol: 17,
            start_port: 80,
            end_port: 80,
            start: [198, 18, 0, 0],
            end: [198, 18, 0, 255],
        };
        assert!(intersect(&udp, &web).is_none());
        let v6 = TrafficSelector::Ipv6 {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: [0; 16],
            end: [0xff; 16],
        };
        assert!(narrow(&[v6], std::slice::from_ref(&any)).is_empty());
        assert!(all_within(
            std::slice::from_ref(&dvipa),
            std::slice::from_ref(&any)
        ));
        assert!(!all_within(&[any], std::slice::from_ref(&dvipa)));
        assert!(!all_within(&[], &[dvipa]));
    }

    #[test]
    fn converts_to_engine_selector() {
        let c = host([198, 18, 1, 10]);
        let web = TrafficSelector::Ipv4 {
            ip_protocol: 6,
            start_port: 80,
            end_port: 80,
            start: [198, 18, 0, 100],
            end: [198, 18, 0, 100],
        };
        let s = to_sa_selector(std::slice::from_ref(&c), &[web]).unwrap();
        assert_eq!(s.protocol, Some(IpProtocol::Tcp));
        assert_eq!(s.dst_ports, PortRange::single(80));
        assert_eq!(s.src_ports, PortRange::ANY);
        assert!(s.matches(
            IpAddr::V4(Ipv4Addr::new(198, 18, 1, 10)),
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
            IpProtocol::Tcp,
            Some((40000, 80))
        ));
        assert_eq!(to_sa_selector(&[], &[c]), None);
        assert_eq!(
            TsConfig::Dynamic.resolve(Ipv4Addr::new(1, 2, 3, 4)),
            vec![host([1, 2, 3, 4])]
        );
    }
}
