//! IpService (IBM: ipservicestatement.htm): the protocol, ports, ICMP
//! and OSPF types, direction and routing a filter rule matches.

use super::filters::combination;
use super::values::{port_range, service_direction, service_protocol};
use super::*;

impl Cx<'_> {
    /// IpService (IBM: ipservicestatement.htm).
    pub(super) fn service(&mut self, body: &[Node<'_>]) -> Option<Service> {
        let (attrs, mut ok) = self.attrs_of(&SERVICE, body);
        let mut written = ServiceAttrs::new();
        for a in &attrs {
            let r = written.set(a);
            if self.ok(r).is_none() {
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let checked = written.protocol().and_then(|p| written.fits(p).map(|()| p));
        let protocol = self.ok(checked)?;
        Some(Service {
            protocol,
            routing: written.routing,
            direction: written.direction,
            connect: written.connect,
            security_class: written.security_class,
        })
    }
}

const SERVICE: Grammar = Grammar {
    statement: "IpService",
    specs: &[
        attr("Protocol"),
        attr("SourcePortRange"),
        attr("DestinationPortRange"),
        attr("IcmpType"),
        attr("IcmpCode"),
        attr("OspfType"),
        attr("Direction"),
        attr("Routing"),
        attr("SecurityClass"),
    ],
    unsupported: &[
        "SourcePortGranularity",
        "DestinationPortGranularity",
        "ProtocolGranularity",
        "IcmpTypeGranularity",
        "IcmpCodeGranularity",
        "OspfTypeGranularity",
        "MIPv6Type",
        "MIPv6TypeGranularity",
        "FragmentsOnly",
    ],
    allowed: "Protocol, SourcePortRange, DestinationPortRange, IcmpType, IcmpCode, OspfType, Direction, Routing, SecurityClass",
};

/// IpService's attributes as written, before they are checked together.
struct ServiceAttrs {
    protocol: ProtocolSpec,
    src: PortSpec,
    dst: PortSpec,
    icmp_type: Option<u8>,
    icmp_code: Option<(u8, usize)>,
    ospf_type: Option<u8>,
    routing: Routing,
    direction: Direction,
    connect: Option<TcpConnect>,
    security_class: u8,
    // Attributes that need a protocol, with where they were written.
    ports_at: Option<usize>,
    icmp_at: Option<usize>,
    ospf_at: Option<usize>,
}

impl ServiceAttrs {
    /// IBM's defaults: every protocol and port, local, both directions.
    fn new() -> Self {
        ServiceAttrs {
            protocol: ProtocolSpec::Any,
            src: PortSpec::Any,
            dst: PortSpec::Any,
            icmp_type: None,
            icmp_code: None,
            ospf_type: None,
            routing: Routing::Local,
            direction: Direction::Bidirectional,
            connect: None,
            security_class: 0,
            ports_at: None,
            icmp_at: None,
            ospf_at: None,
        }
    }

    /// Takes one attribute.
    fn set(&mut self, a: &Attr<'_, '_>) -> Result<(), RawError> {
        match a.name {
            "Protocol" => self.protocol = service_protocol(a)?,
            "SourcePortRange" => {
                self.src = port_range(a)?;
                self.ports_at.get_or_insert(a.at());
            }
            "DestinationPortRange" => {
                self.dst = port_range(a)?;
                self.ports_at.get_or_insert(a.at());
            }
            "IcmpType" => {
                let v = a.one("IcmpType n (0 to 255)")?;
                self.icmp_type = Some(number_in(v, "IcmpType", 0, 255, "0 to 255")? as u8);
                self.icmp_at.get_or_insert(a.at());
            }
            "IcmpCode" => {
                let v = a.one("IcmpCode n (0 to 255), after IcmpType")?;
                let code = number_in(v, "IcmpCode", 0, 255, "0 to 255")? as u8;
                self.icmp_code = Some((code, a.at()));
                self.icmp_at.get_or_insert(a.at());
            }
            "OspfType" => {
                let v = a.one("OspfType n (0 to 255)")?;
                self.ospf_type = Some(number_in(v, "OspfType", 0, 255, "0 to 255")? as u8);
                self.ospf_at = Some(a.at());
            }
            "Direction" => (self.direction, self.connect) = service_direction(a)?,
            "Routing" => {
                self.routing = a.choice(
                    &[
                        ("Local", Routing::Local),
                        ("Routed", Routing::Routed),
                        ("Either", Routing::Either),
                    ],
                    "Routing Local|Routed|Either",
                    "Local, Routed or Either",
                )?;
            }
            _ => {
                let v = a.one("SecurityClass n (0 to 255)")?;
                self.security_class = number_in(
                    v,
                    "SecurityClass",
                    0,
                    255,
                    "0 (every interface) or a security class 1 to 255",
                )? as u8;
            }
        }
        Ok(())
    }

    /// The protocol with the ports, ICMP type and code or OSPF type given
    /// for it; an ICMP code needs its type.
    fn protocol(&self) -> Result<ProtocolSpec, RawError> {
        let (src, dst) = (self.src, self.dst);
        Ok(match self.protocol {
            ProtocolSpec::Tcp { .. } => ProtocolSpec::Tcp { src, dst },
            ProtocolSpec::Udp { .. } => ProtocolSpec::Udp { src, dst },
            ProtocolSpec::Icmp { .. } => {
                if let Some((_, at)) = self.icmp_code.filter(|_| self.icmp_type.is_none()) {
                    return Err(combination(
                        at,
                        "IcmpCode without IcmpType".to_owned(),
                        "IcmpType n, then IcmpCode n (a code belongs to one ICMP type)",
                    ));
                }
                ProtocolSpec::Icmp {
                    icmp_type: self.icmp_type,
                    code: self.icmp_code.map(|(c, _)| c),
                }
            }
            ProtocolSpec::Ospf { .. } => ProtocolSpec::Ospf {
                ospf_type: self.ospf_type,
            },
            other => other,
        })
    }

    /// Errors at ports, ICMP or OSPF types given for a protocol without them.
    fn fits(&self, protocol: ProtocolSpec) -> Result<(), RawError> {
        let tcp_udp = matches!(
            protocol,
            ProtocolSpec::Tcp { .. } | ProtocolSpec::Udp { .. }
        );
        let checks = [
            (
                self.ports_at,
                tcp_udp,
                "port ranges",
                "SourcePortRange and DestinationPortRange with Protocol Tcp or Udp",
            ),
            (
                self.icmp_at,
                matches!(protocol, ProtocolSpec::Icmp { .. }),
                "IcmpType and IcmpCode",
                "IcmpType and IcmpCode with Protocol Icmp",
            ),
            (
                self.ospf_at,
                matches!(protocol, ProtocolSpec::Ospf { .. }),
                "OspfType",
                "OspfType with Protocol Ospf",
            ),
        ];
        for (at, fits, what, allowed) in checks {
            if let (Some(at), false) = (at, fits) {
                let problem = format!("{what} without a protocol that has them");
                return Err(combination(at, problem, allowed));
            }
        }
        Ok(())
    }
}
