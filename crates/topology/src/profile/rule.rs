//! IPSECRULE, a default filter rule of the IPSEC block (IBM: IPSEC
//! statement, IPSECRULE): addresses, then NOLOG|LOG, PROTOCOL, ROUTING,
//! SECCLASS and DIRECTION in that order, one function each.

use super::*;

/// The parameters of IPSECRULE after the addresses, with their place in
/// IBM's order.
const RULE_PARAMS: [(Keyword, usize); 6] = [
    (NOLOG, 0),
    (LOG, 0),
    (PROTOCOL, 1),
    (ROUTING, 2),
    (SECCLASS, 3),
    (DIRECTION, 4),
];
const STAGE_NAMES: [&str; 5] = ["NOLOG, LOG", "PROTOCOL", "ROUTING", "SECCLASS", "DIRECTION"];

/// One IPSECRULE; `n` numbers it for its name, as z/OS does.
pub(super) fn parse_rule(group: &[Tok<'_>], n: usize) -> Result<FilterRule, RawError> {
    let mut c = Cursor::new(group, "IPSECRULE", RULE_SYNTAX);
    let source = c.addr_spec("the source address (*, a.b.c.d, a.b.c.d/len or a range)")?;
    let destination =
        c.addr_spec("the destination address (*, a.b.c.d, a.b.c.d/len or a range)")?;
    let mut conditions = Conditions {
        source,
        destination,
        protocol: ProtocolSpec::Any,
        routing: Routing::Local,
        direction: Direction::Bidirectional,
        connect: None,
        security_class: 0,
    };
    let mut log = false;
    let mut done: Option<(usize, Tok<'_>)> = None;
    while let Some(t) = c.next() {
        let (k, stage) = rule_param(&c, t, done)?;
        done = Some((stage, t));
        match k.full {
            "NOLOG" => log = false,
            "LOG" => log = true,
            "PROTOCOL" => conditions.protocol = rule_protocol(&mut c)?,
            "ROUTING" => conditions.routing = rule_routing(&mut c)?,
            "SECCLASS" => conditions.security_class = rule_secclass(&mut c)?,
            _ => (conditions.direction, conditions.connect) = rule_direction(&mut c)?,
        }
    }
    Ok(FilterRule {
        name: format!("SYSDEFAULTRULE.{n}"),
        conditions,
        action: FilterAction::Permit,
        log,
    })
}

/// The parameter keyword `t` and its stage, in order after `done` (the
/// stage and word of the parameter before it).
fn rule_param(
    c: &Cursor<'_, '_>,
    t: Tok<'_>,
    done: Option<(usize, Tok<'_>)>,
) -> Result<(Keyword, usize), RawError> {
    let next_stage = done.map_or(0, |(s, _)| s + 1);
    let allowed = STAGE_NAMES[next_stage.min(STAGE_NAMES.len())..].join(", ");
    let Some(&(k, stage)) = RULE_PARAMS.iter().find(|(k, _)| k.matches(t.text)) else {
        let allowed = if allowed.is_empty() {
            "nothing after DIRECTION".to_owned()
        } else {
            allowed
        };
        return Err(c.unknown(t, &allowed));
    };
    let last = done.map(|(s, prev)| (s, prev.text));
    in_order("IPSECRULE", RULE_SYNTAX, t, stage, last)?;
    Ok((k, stage))
}

/// What follows ROUTING.
fn rule_routing(c: &mut Cursor<'_, '_>) -> Result<Routing, RawError> {
    let v = c
        .next()
        .ok_or_else(|| c.missing("LOCAL, ROUTED or EITHER after ROUTING"))?;
    if LOCAL.matches(v.text) {
        Ok(Routing::Local)
    } else if ROUTED.matches(v.text) {
        if let Some(f) = c.peek().filter(|f| FRAGMENTSONLY.matches(f.text)) {
            return Err((
                f.at,
                ErrorKind::Unsupported {
                    statement: "IPSECRULE",
                    keyword: "ROUTING ROUTED FRAGMENTSONLY".to_owned(),
                    allowed: "ROUTING LOCAL, ROUTING ROUTED or ROUTING EITHER",
                },
            ));
        }
        Ok(Routing::Routed)
    } else if EITHER.matches(v.text) {
        Ok(Routing::Either)
    } else {
        Err(c.unknown(v, "LOCAL, ROUTED or EITHER after ROUTING"))
    }
}

/// What follows SECCLASS.
fn rule_secclass(c: &mut Cursor<'_, '_>) -> Result<u8, RawError> {
    let v = c
        .next()
        .ok_or_else(|| c.missing("the security class after SECCLASS"))?;
    Ok(number_in(
        v,
        "SECCLASS",
        0,
        255,
        "0 (every interface) or a security class 1 to 255",
    )? as u8)
}

/// What follows DIRECTION.
fn rule_direction(c: &mut Cursor<'_, '_>) -> Result<(Direction, Option<TcpConnect>), RawError> {
    let v = c
        .next()
        .ok_or_else(|| c.missing("BIDIRECTIONAL, INBOUND or OUTBOUND after DIRECTION"))?;
    if BIDIRECTIONAL.matches(v.text) {
        let connect = if c.eat(INBCONNECT) {
            Some(TcpConnect::Inbound)
        } else if c.eat(OUTBCONNECT) {
            Some(TcpConnect::Outbound)
        } else {
            None
        };
        Ok((Direction::Bidirectional, connect))
    } else if INBOUND.matches(v.text) {
        Ok((Direction::Inbound, None))
    } else if OUTBOUND.matches(v.text) {
        Ok((Direction::Outbound, None))
    } else {
        Err(c.unknown(
            v,
            "BIDIRECTIONAL [INBCONNECT|OUTBCONNECT], INBOUND or OUTBOUND after DIRECTION",
        ))
    }
}

/// What follows PROTOCOL.
fn rule_protocol(c: &mut Cursor<'_, '_>) -> Result<ProtocolSpec, RawError> {
    const WHAT: &str = "*, TCP, UDP, ICMP, OSPF or a protocol number after PROTOCOL";
    let v = c.next().ok_or_else(|| c.missing(WHAT))?;
    let number = if is_digits(v.text) {
        Some(number_in(
            v,
            "protocol",
            0,
            255,
            "0 to 255, or *, TCP, UDP, ICMP, OSPF",
        )? as u8)
    } else {
        None
    };
    let is = |k: Keyword, n: u8| k.matches(v.text) || number == Some(n);
    if v.text == "*" {
        Ok(ProtocolSpec::Any)
    } else if is(TCP, 6) || is(UDP, 17) {
        let (src, dst) = rule_ports(c)?;
        Ok(if is(TCP, 6) {
            ProtocolSpec::Tcp { src, dst }
        } else {
            ProtocolSpec::Udp { src, dst }
        })
    } else if is(ICMP, 1) {
        let (icmp_type, code) = rule_icmp(c)?;
        Ok(ProtocolSpec::Icmp { icmp_type, code })
    } else if is(OSPF, 89) {
        let mut ospf_type = None;
        if c.eat(TYPE) {
            ospf_type = c.type_or_code("TYPE")?;
        }
        Ok(ProtocolSpec::Ospf { ospf_type })
    } else if let Some(n) = number {
        Ok(ProtocolSpec::Number(n))
    } else {
        Err(c.unknown(v, WHAT))
    }
}

/// TCP's or UDP's SRCPORT and DESTPORT, in that order.
fn rule_ports(c: &mut Cursor<'_, '_>) -> Result<(PortSpec, PortSpec), RawError> {
    let mut src = PortSpec::Any;
    let mut dst = PortSpec::Any;
    if c.eat(SRCPORT) {
        src = c.ports("*, a port or a range n m after SRCPORT")?;
    }
    if c.eat(DESTPORT) {
        dst = c.ports("*, a port or a range n m after DESTPORT")?;
    }
    if let Some(t) = c.peek().filter(|t| SRCPORT.matches(t.text)) {
        return Err((
            t.at,
            ErrorKind::OutOfOrder {
                statement: "IPSECRULE",
                word: t.text.to_owned(),
                after: "DESTPORT".to_owned(),
                syntax: RULE_SYNTAX,
            },
        ));
    }
    Ok((src, dst))
}

/// ICMP's TYPE and CODE: a code only after a type that is not `*`.
fn rule_icmp(c: &mut Cursor<'_, '_>) -> Result<(Option<u8>, Option<u8>), RawError> {
    let mut icmp_type = None;
    let mut code = None;
    if c.eat(TYPE) {
        icmp_type = c.type_or_code("TYPE")?;
        if let Some(t) = c.peek().filter(|t| CODE.matches(t.text)) {
            c.next();
            code = c.type_or_code("CODE")?;
            if icmp_type.is_none() && code.is_some() {
                return Err((
                    t.at,
                    ErrorKind::Combination {
                        problem: "CODE with TYPE *".to_owned(),
                        allowed: "CODE n only after TYPE n (a code belongs to one ICMP type)",
                    },
                ));
            }
        }
    } else if let Some(t) = c.peek().filter(|t| CODE.matches(t.text)) {
        return Err((
            t.at,
            ErrorKind::Combination {
                problem: "CODE without TYPE".to_owned(),
                allowed: "ICMP TYPE n CODE n (a code belongs to one ICMP type)",
            },
        ));
    }
    Ok((icmp_type, code))
}

/// IPSECRULE's values.
impl Cursor<'_, '_> {
    /// An address specification; `a.b.c.d - a.b.c.d` spans three words.
    fn addr_spec(&mut self, what: &'static str) -> Result<AddrSpec, RawError> {
        let t = self.next().ok_or_else(|| self.missing(what))?;
        if let (Some(a), Some(dash)) = (parse_ipv4(t.text), self.peek()) {
            if dash.text == "-" {
                self.next();
                let l = self
                    .next()
                    .ok_or_else(|| self.missing("the last address of the range"))?;
                let last = parse_ipv4(l.text).ok_or_else(|| bad_addr(l))?;
                if last < a {
                    return Err((
                        t.at,
                        ErrorKind::BadAddrSpec {
                            text: format!("{} - {}", t.text, l.text),
                        },
                    ));
                }
                return Ok(AddrSpec::Range { first: a, last });
            }
        }
        parse_addr_spec(t.text).ok_or_else(|| bad_addr(t))
    }
    /// `* | n | n m` after SRCPORT or DESTPORT.
    fn ports(&mut self, what: &'static str) -> Result<PortSpec, RawError> {
        let t = self.next().ok_or_else(|| self.missing(what))?;
        if t.text == "*" {
            return Ok(PortSpec::Any);
        }
        let first = number_in(t, "port", 1, 65535, PORT_ALLOWED)? as u16;
        let last = match self.peek() {
            Some(m) if is_digits(m.text) => {
                self.next();
                let last = number_in(m, "port", 1, 65535, PORT_ALLOWED)? as u16;
                if last < first {
                    return Err((
                        m.at,
                        ErrorKind::OutOfRange {
                            what: "last port",
                            value: m.text.to_owned(),
                            allowed: "a last port at or above the first (SRCPORT n m)",
                        },
                    ));
                }
                last
            }
            _ => first,
        };
        Ok(PortSpec::Range { first, last })
    }
    /// `* | n` after TYPE or CODE: `None` for `*`.
    fn type_or_code(&mut self, what: &'static str) -> Result<Option<u8>, RawError> {
        let t = self.next().ok_or_else(|| self.missing(what))?;
        if t.text == "*" {
            return Ok(None);
        }
        Ok(Some(number_in(t, what, 0, 255, "*, or 0 to 255")? as u8))
    }
}

const PORT_ALLOWED: &str = "*, a port 1 to 65535, or two ports n m (a range)";

fn bad_addr(t: Tok<'_>) -> RawError {
    (
        t.at,
        ErrorKind::BadAddrSpec {
            text: t.text.to_owned(),
        },
    )
}
