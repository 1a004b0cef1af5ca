//! The PROFILE.TCPIP statements of IP security, as written in an image's
//! `profile` string: `IPCONFIG IPSECURITY` and the `IPSEC ... ENDIPSEC`
//! block with its default filter rules.
//!
//! # Syntax accepted
//!
//! ```text
//! IPCONFIG IPSECURITY
//! IPSEC [DVIPsec] [DVLOCALFLTR] [LOGDISable|LOGENable] [NOLOGImplicit|LOGImplicit]
//!   IPSECRule src dest [NOLOG|LOG]
//!             [PROTOcol * | TCP|6  [SRCPort *|n|n m] [DESTport *|n|n m]
//!                         | UDP|17 [SRCPort *|n|n m] [DESTport *|n|n m]
//!                         | ICMP|1 [TYPE *|n [CODE *|n]]
//!                         | OSPF|89 [TYPE *|n]
//!                         | number]
//!             [ROUTING LOCAL|ROUTED|EITHER] [SECCLASS n]
//!             [DIRECtion BIDIrectional [INBConnect|OUTBConnect] | INBound | OUTBound]
//!   ...
//! ENDIPSEC
//! ```
//!
//! This follows IBM's syntax diagram of the IPSEC statement, z/OS
//! Communications Server: IP Configuration Reference, "IPSEC statement"
//! (<https://www.ibm.com/docs/SSLTBW_2.4.0/com.ibm.zos.v2r4.halz001/ipsecstatement.htm>),
//! IPv4 filter rules only:
//!
//! * `src` and `dest` are `*`, `a.b.c.d`, `a.b.c.d/prefix_length` or
//!   `a.b.c.d-a.b.c.d` (also written `a.b.c.d - a.b.c.d`).
//! * Keywords are case-insensitive and may be abbreviated down to their
//!   upper-case part above (`PROTO`, `SRCP`, `DEST`, `DIREC`, `BIDI`,
//!   `INB`, `OUTB`, `INBC`, `OUTBC`, `DVIP`, `LOGEN`, `LOGDIS`, `LOGI`,
//!   `NOLOGI`, `IPSECR`); the others (`IPCONFIG`, `IPSECURITY`, `IPSEC`,
//!   `ENDIPSEC`, `DVLOCALFLTR`, `NOLOG`, `LOG`, `TCP`, `UDP`, `ICMP`,
//!   `OSPF`, `TYPE`, `CODE`, `ROUTING`, `LOCAL`, `ROUTED`, `EITHER`,
//!   `SECCLASS`) are written in full.
//! * "Specify the parameters in the order shown here" (IBM): the options
//!   of IPSEC and the parameters of IPSECRULE must come in the order above;
//!   a parameter out of order is an error that names the order.
//! * Defaults follow z/OS: `LOGDISABLE`, `NOLOGIMPLICIT`, `NOLOG`,
//!   `PROTOCOL *`, ports and types `*`, `ROUTING LOCAL`, `SECCLASS 0` (every
//!   interface), `DIRECTION BIDIRECTIONAL`.
//! * Every IPSECRULE permits (a default rule has no action); what no rule
//!   permits is denied. The rules are named as `ipsec -f display` names
//!   them: `SYSDEFAULTRULE.1`, `SYSDEFAULTRULE.2`, ... in profile order.
//! * `;` starts a comment to the end of the line; commas separate like
//!   blanks; a statement runs to the next statement keyword.
//!
//! Stricter than z/OS, on purpose: an IPSEC block without `IPCONFIG
//! IPSECURITY` (z/OS ignores the block) and a second IPSEC block (z/OS
//! ignores it with EZZ0757I) are errors, so that no rule written in the file
//! is silently without effect. Not supported, each with its own error:
//! other IPCONFIG parameters, `IPCONFIG6`, `IPSEC6RULE` (plexnet's stacks
//! are IPv4 only) and `ROUTING ROUTED FRAGMENTSONLY`.
//!
//! Offsets are byte offsets into the string given to `parse`.

use super::error::ErrorKind;
use super::statement::{
    self, is_digits, number_in, parse_ipv4, tokenize, Cursor, Keyword, RawError, Tok,
};
use plexnet_core::ipsec::policy::{
    AddrSpec, Conditions, Direction, FilterAction, FilterRule, PortSpec, ProtocolSpec, Routing,
    TcpConnect,
};

const IPCONFIG: Keyword = Keyword::new("IPCONFIG", 8);
const IPCONFIG6: Keyword = Keyword::new("IPCONFIG6", 9);
const IPSECURITY: Keyword = Keyword::new("IPSECURITY", 10);
const IPSEC: Keyword = Keyword::new("IPSEC", 5);
const ENDIPSEC: Keyword = Keyword::new("ENDIPSEC", 8);
const IPSECRULE: Keyword = Keyword::new("IPSECRULE", 6);
const IPSEC6RULE: Keyword = Keyword::new("IPSEC6RULE", 7);

const DVIPSEC: Keyword = Keyword::new("DVIPSEC", 4);
const DVLOCALFLTR: Keyword = Keyword::new("DVLOCALFLTR", 11);
const LOGDISABLE: Keyword = Keyword::new("LOGDISABLE", 6);
const LOGENABLE: Keyword = Keyword::new("LOGENABLE", 5);
const NOLOGIMPLICIT: Keyword = Keyword::new("NOLOGIMPLICIT", 6);
const LOGIMPLICIT: Keyword = Keyword::new("LOGIMPLICIT", 4);

const NOLOG: Keyword = Keyword::new("NOLOG", 5);
const LOG: Keyword = Keyword::new("LOG", 3);
const PROTOCOL: Keyword = Keyword::new("PROTOCOL", 5);
const TCP: Keyword = Keyword::new("TCP", 3);
const UDP: Keyword = Keyword::new("UDP", 3);
const ICMP: Keyword = Keyword::new("ICMP", 4);
const OSPF: Keyword = Keyword::new("OSPF", 4);
const SRCPORT: Keyword = Keyword::new("SRCPORT", 4);
const DESTPORT: Keyword = Keyword::new("DESTPORT", 4);
const TYPE: Keyword = Keyword::new("TYPE", 4);
const CODE: Keyword = Keyword::new("CODE", 4);
const ROUTING: Keyword = Keyword::new("ROUTING", 7);
const LOCAL: Keyword = Keyword::new("LOCAL", 5);
const ROUTED: Keyword = Keyword::new("ROUTED", 6);
const EITHER: Keyword = Keyword::new("EITHER", 6);
const FRAGMENTSONLY: Keyword = Keyword::new("FRAGMENTSONLY", 9);
const SECCLASS: Keyword = Keyword::new("SECCLASS", 8);
const DIRECTION: Keyword = Keyword::new("DIRECTION", 5);
const BIDIRECTIONAL: Keyword = Keyword::new("BIDIRECTIONAL", 4);
const INBOUND: Keyword = Keyword::new("INBOUND", 3);
const OUTBOUND: Keyword = Keyword::new("OUTBOUND", 4);
const INBCONNECT: Keyword = Keyword::new("INBCONNECT", 4);
const OUTBCONNECT: Keyword = Keyword::new("OUTBCONNECT", 5);

/// Statements of this file, and other PROFILE.TCPIP statements that are
/// recognised only to be reported as not belonging here.
const STATEMENTS: [Keyword; 6] = [IPCONFIG, IPCONFIG6, IPSEC, ENDIPSEC, IPSECRULE, IPSEC6RULE];
const OTHER_STATEMENTS: &[&str] = &[
    "TCPCONFIG",
    "UDPCONFIG",
    "GLOBALCONFIG",
    "PORT",
    "PORTRANGE",
    "HOME",
    "DEVICE",
    "LINK",
    "INTERFACE",
    "BEGINROUTES",
    "ENDROUTES",
    "GATEWAY",
    "START",
    "STOP",
    "AUTOLOG",
    "ENDAUTOLOG",
    "NETACCESS",
    "ENDNETACCESS",
    "SACONFIG",
    "SMFCONFIG",
    "INCLUDE",
    "PRIMARYINTERFACE",
    "SOMAXCONN",
];

const IPCONFIG_ALLOWED: &str = "IPCONFIG IPSECURITY";
const IPSEC_SYNTAX: &str =
    "IPSEC [DVIPSEC] [DVLOCALFLTR] [LOGDISABLE|LOGENABLE] [NOLOGIMPLICIT|LOGIMPLICIT]";
const RULE_SYNTAX: &str = "IPSECRULE src dest [NOLOG|LOG] [PROTOCOL *|TCP|6|UDP|17 [SRCPORT *|n|n m] [DESTPORT *|n|n m]|ICMP|1 [TYPE *|n [CODE *|n]]|OSPF|89 [TYPE *|n]|number] [ROUTING LOCAL|ROUTED|EITHER] [SECCLASS n] [DIRECTION BIDIRECTIONAL [INBCONNECT|OUTBCONNECT]|INBOUND|OUTBOUND]";

/// The IPSEC block: its options and its default rules, in profile order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct IpsecBlock {
    pub(crate) dvipsec: bool,
    pub(crate) dvlocalfltr: bool,
    pub(crate) log_enable: bool,
    pub(crate) log_implicit: bool,
    pub(crate) rules: Vec<FilterRule>,
}

/// What a `profile` text says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RawProfile {
    /// `IPCONFIG IPSECURITY` was given.
    pub(crate) ipsecurity: bool,
    /// The IPSEC block, if there is one.
    pub(crate) ipsec: Option<IpsecBlock>,
}

/// Parses a whole `profile` text. A bad statement is skipped up to the next
/// statement keyword, so one mistake gives one error. `line_of` gives the
/// file line of an offset, for messages that name another line.
pub(crate) fn parse(text: &str, line_of: &dyn Fn(usize) -> usize) -> (RawProfile, Vec<RawError>) {
    let toks = tokenize(text);
    let mut out = RawProfile::default();
    let mut errors = Vec::new();
    // The open block: where its IPSEC is, and whether it is the first one.
    let mut open: Option<(usize, bool)> = None;
    let mut first_block: Option<usize> = None;
    let mut block = IpsecBlock::default();
    let mut rule_count = 0usize;
    for group in statement::statements(&toks, starts_statement) {
        let head = group[0];
        if IPCONFIG.matches(head.text) {
            if let Err(e) = parse_ipconfig(group) {
                errors.push(e);
            } else {
                out.ipsecurity = true;
            }
        } else if IPSEC.matches(head.text) {
            if open.is_some() {
                errors.push((head.at, ErrorKind::NestedIpsecBlock));
                continue;
            }
            let first = first_block.is_none();
            if let Some(at) = first_block {
                let first_line = line_of(at);
                errors.push((head.at, ErrorKind::SecondIpsecBlock { first_line }));
            } else {
                first_block = Some(head.at);
            }
            open = Some((head.at, first));
            match parse_ipsec_options(group) {
                Ok(b) if first => block = b,
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        } else if ENDIPSEC.matches(head.text) {
            match open.take() {
                None => errors.push((
                    head.at,
                    ErrorKind::OutsideIpsecBlock {
                        statement: "ENDIPSEC",
                    },
                )),
                Some((_, first)) => {
                    if first {
                        out.ipsec = Some(std::mem::take(&mut block));
                    }
                }
            }
            if let Some(extra) = group.get(1) {
                errors.push(unknown_statement(extra));
            }
        } else if IPSECRULE.matches(head.text) {
            if open.is_none() {
                errors.push((
                    head.at,
                    ErrorKind::OutsideIpsecBlock {
                        statement: "IPSECRULE",
                    },
                ));
                continue;
            }
            rule_count += 1;
            match parse_rule(group, rule_count) {
                Ok(r) => block.rules.push(r),
                Err(e) => errors.push(e),
            }
        } else if IPCONFIG6.matches(head.text) {
            errors.push((
                head.at,
                ErrorKind::ProfileUnsupportedStatement {
                    statement: "IPCONFIG6",
                    allowed: "IPCONFIG IPSECURITY (plexnet's stacks are IPv4 only)",
                },
            ));
        } else if IPSEC6RULE.matches(head.text) {
            errors.push((
                head.at,
                ErrorKind::ProfileUnsupportedStatement {
                    statement: "IPSEC6RULE",
                    allowed: "IPSECRULE (plexnet's stacks are IPv4 only)",
                },
            ));
        } else {
            errors.push(unknown_statement(&head));
        }
    }
    if let Some((at, _)) = open {
        errors.push((at, ErrorKind::UnclosedIpsecBlock));
    }
    if !out.ipsecurity {
        if let Some(at) = first_block {
            errors.push((at, ErrorKind::IpsecWithoutIpsecurity));
        }
    }
    (out, errors)
}

fn unknown_statement(tok: &Tok<'_>) -> RawError {
    (
        tok.at,
        ErrorKind::ProfileUnknownStatement {
            word: tok.text.to_owned(),
        },
    )
}

/// Whether a word begins a new statement: one of this file's, another
/// PROFILE.TCPIP statement (reported as not belonging here), or a word that
/// looks like one (`IPSEC...`, `VIPA...`), so that a misspelt statement is
/// reported as such rather than as a parameter of the previous one.
fn starts_statement(word: &str) -> bool {
    let upper = word.to_ascii_uppercase();
    STATEMENTS.iter().any(|k| k.matches(word))
        || OTHER_STATEMENTS.contains(&upper.as_str())
        || upper.starts_with("VIPA")
        || upper.starts_with("ENDVIPA")
        || (upper.starts_with("IPSEC") && !IPSECURITY.matches(word))
}

fn parse_ipconfig(group: &[Tok<'_>]) -> Result<(), RawError> {
    if group.len() == 1 {
        return Err(Cursor::new(group, "IPCONFIG", IPCONFIG_ALLOWED).missing("its parameter"));
    }
    for t in &group[1..] {
        if !IPSECURITY.matches(t.text) {
            return Err((
                t.at,
                ErrorKind::Unsupported {
                    statement: "IPCONFIG",
                    keyword: t.text.to_ascii_uppercase(),
                    allowed: IPCONFIG_ALLOWED,
                },
            ));
        }
    }
    Ok(())
}

/// The options after IPSEC, in IBM's order.
fn parse_ipsec_options(group: &[Tok<'_>]) -> Result<IpsecBlock, RawError> {
    let mut b = IpsecBlock::default();
    // Each option and its place in the order.
    let options: [(Keyword, usize); 6] = [
        (DVIPSEC, 0),
        (DVLOCALFLTR, 1),
        (LOGDISABLE, 2),
        (LOGENABLE, 2),
        (NOLOGIMPLICIT, 3),
        (LOGIMPLICIT, 3),
    ];
    let mut last: Option<(usize, &str)> = None;
    for t in &group[1..] {
        let Some(&(k, stage)) = options.iter().find(|(k, _)| k.matches(t.text)) else {
            return Err((
                t.at,
                ErrorKind::UnknownKeyword {
                    statement: "IPSEC",
                    word: t.text.to_owned(),
                    allowed: "DVIPSEC, DVLOCALFLTR, LOGDISABLE, LOGENABLE, NOLOGIMPLICIT, LOGIMPLICIT, then IPSECRULE statements and ENDIPSEC".to_owned(),
                },
            ));
        };
        if let Some((done, after)) = last {
            if stage <= done {
                return Err((
                    t.at,
                    ErrorKind::OutOfOrder {
                        statement: "IPSEC",
                        word: t.text.to_owned(),
                        after: after.to_owned(),
                        syntax: IPSEC_SYNTAX,
                    },
                ));
            }
        }
        last = Some((stage, k.full));
        match k.full {
            "DVIPSEC" => b.dvipsec = true,
            "DVLOCALFLTR" => b.dvlocalfltr = true,
            "LOGENABLE" => b.log_enable = true,
            "LOGIMPLICIT" => b.log_implicit = true,
            _ => {}
        }
    }
    Ok(b)
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

/// `*`, `a.b.c.d`, `a.b.c.d/len` or `a.b.c.d-a.b.c.d`. Shared with the
/// Policy Agent parser, which also takes `All` for `*` itself.
pub(crate) fn parse_addr_spec(text: &str) -> Option<AddrSpec> {
    if text == "*" {
        return Some(AddrSpec::Any);
    }
    if let Some((a, len)) = text.split_once('/') {
        let addr = parse_ipv4(a)?;
        if !is_digits(len) || len.len() > 2 {
            return None;
        }
        let len: u8 = len.parse().ok()?;
        return (len <= 32).then_some(AddrSpec::Prefix { addr, len });
    }
    if let Some((a, b)) = text.split_once('-') {
        let (first, last) = (parse_ipv4(a)?, parse_ipv4(b)?);
        return (first <= last).then_some(AddrSpec::Range { first, last });
    }
    parse_ipv4(text).map(AddrSpec::host)
}

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

fn parse_rule(group: &[Tok<'_>], n: usize) -> Result<FilterRule, RawError> {
    let mut c = Cursor::new(group, "IPSECRULE", RULE_SYNTAX);
    let source = c.addr_spec("the source address (*, a.b.c.d, a.b.c.d/len or a range)")?;
    let destination =
        c.addr_spec("the destination address (*, a.b.c.d, a.b.c.d/len or a range)")?;
    let mut log = false;
    let mut protocol = ProtocolSpec::Any;
    let mut routing = Routing::Local;
    let mut security_class = 0u8;
    let mut direction = Direction::Bidirectional;
    let mut connect = None;
    let mut done: Option<(usize, Tok<'_>)> = None;
    while let Some(t) = c.next() {
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
        if let Some((s, prev)) = done {
            if stage <= s {
                return Err((
                    t.at,
                    ErrorKind::OutOfOrder {
                        statement: "IPSECRULE",
                        word: t.text.to_owned(),
                        after: prev.text.to_owned(),
                        syntax: RULE_SYNTAX,
                    },
                ));
            }
        }
        done = Some((stage, t));
        match k.full {
            "NOLOG" => log = false,
            "LOG" => log = true,
            "PROTOCOL" => protocol = rule_protocol(&mut c)?,
            "ROUTING" => {
                let v = c
                    .next()
                    .ok_or_else(|| c.missing("LOCAL, ROUTED or EITHER after ROUTING"))?;
                routing = if LOCAL.matches(v.text) {
                    Routing::Local
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
                    Routing::Routed
                } else if EITHER.matches(v.text) {
                    Routing::Either
                } else {
                    return Err(c.unknown(v, "LOCAL, ROUTED or EITHER after ROUTING"));
                };
            }
            "SECCLASS" => {
                let v = c
                    .next()
                    .ok_or_else(|| c.missing("the security class after SECCLASS"))?;
                security_class = number_in(
                    v,
                    "SECCLASS",
                    0,
                    255,
                    "0 (every interface) or a security class 1 to 255",
                )? as u8;
            }
            _ => {
                let v = c.next().ok_or_else(|| {
                    c.missing("BIDIRECTIONAL, INBOUND or OUTBOUND after DIRECTION")
                })?;
                if BIDIRECTIONAL.matches(v.text) {
                    direction = Direction::Bidirectional;
                    if c.eat(INBCONNECT) {
                        connect = Some(TcpConnect::Inbound);
                    } else if c.eat(OUTBCONNECT) {
                        connect = Some(TcpConnect::Outbound);
                    }
                } else if INBOUND.matches(v.text) {
                    direction = Direction::Inbound;
                } else if OUTBOUND.matches(v.text) {
                    direction = Direction::Outbound;
                } else {
                    return Err(c.unknown(
                        v,
                        "BIDIRECTIONAL [INBCONNECT|OUTBCONNECT], INBOUND or OUTBOUND after DIRECTION",
                    ));
                }
            }
        }
    }
    Ok(FilterRule {
        name: format!("SYSDEFAULTRULE.{n}"),
        conditions: Conditions {
            source,
            destination,
            protocol,
            routing,
            direction,
            connect,
            security_class,
        },
        action: FilterAction::Permit,
        log,
    })
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
        Ok(if is(TCP, 6) {
            ProtocolSpec::Tcp { src, dst }
        } else {
            ProtocolSpec::Udp { src, dst }
        })
    } else if is(ICMP, 1) {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::the_error;
    use super::*;
    use std::net::Ipv4Addr;

    /// Parses `text` with lines counted in `text` itself.
    fn parse(text: &str) -> (RawProfile, Vec<RawError>) {
        super::parse(text, &|at| super::super::error::line_col(text, at).0)
    }

    /// Parses `text`, failing on errors.
    fn ok(text: &str) -> RawProfile {
        let (p, e) = parse(text);
        assert!(e.is_empty(), "unexpected errors {e:?}");
        p
    }

    /// The rules of `IPCONFIG IPSECURITY IPSEC <body> ENDIPSEC`.
    fn rules(body: &str) -> Vec<FilterRule> {
        let p = ok(&format!("IPCONFIG IPSECURITY\nIPSEC\n{body}\nENDIPSEC\n"));
        p.ipsec.expect("an IPSEC block").rules
    }

    /// The single error of `text`, with the word it points at.
    fn err(text: &str) -> (String, ErrorKind) {
        the_error(text, parse(text).1)
    }

    fn rule_err(body: &str) -> (String, ErrorKind) {
        err(&format!("IPCONFIG IPSECURITY\nIPSEC\n{body}\nENDIPSEC\n"))
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn host(s: &str) -> AddrSpec {
        AddrSpec::host(ip(s))
    }

    #[test]
    fn ipconfig_and_empty_block() {
        let p = ok("IPCONFIG IPSECURITY\n");
        assert!(p.ipsecurity && p.ipsec.is_none());
        let p = ok("ipconfig ipsecurity ; filter everything\nIPSEC DVIPSEC\nENDIPSEC");
        let b = p.ipsec.expect("block");
        assert!(b.dvipsec && !b.dvlocalfltr && !b.log_enable && !b.log_implicit);
        assert!(b.rules.is_empty());
        let p = ok("IPCONFIG IPSECURITY\nIPSEC DVIP DVLOCALFLTR LOGEN LOGI\nENDIPSEC");
        let b = p.ipsec.expect("block");
        assert!(b.dvipsec && b.dvlocalfltr && b.log_enable && b.log_implicit);
        let p = ok("IPCONFIG IPSECURITY\nIPSEC LOGDISABLE NOLOGIMPLICIT\nENDIPSEC");
        let b = p.ipsec.expect("block");
        assert!(!b.log_enable && !b.log_implicit);
        let p = ok("");
        assert_eq!(p, RawProfile::default());
    }

    #[test]
    fn rule_defaults_and_names() {
        let r = rules("IPSECRULE * *\nIPSECR 198.18.1.0/24 198.18.0.100");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "SYSDEFAULTRULE.1");
        assert_eq!(r[1].name, "SYSDEFAULTRULE.2");
        assert_eq!(
            r[0].conditions,
            Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Any)
        );
        assert_eq!(r[0].action, FilterAction::Permit);
        assert!(!r[0].log);
        assert_eq!(
            r[1].conditions.source,
            AddrSpec::Prefix {
                addr: ip("198.18.1.0"),
                len: 24
            }
        );
        assert_eq!(r[1].conditions.destination, host("198.18.0.100"));
    }

    #[test]
    fn rule_address_forms() {
        let r = rules(
            "IPSECRULE 198.18.1.2-198.18.1.9 198.18.0.100 ; dash inside\n\
             IPSECRULE 198.18.1.2 - 198.18.1.9 * ; dash alone, as IBM draws it",
        );
        let range = AddrSpec::Range {
            first: ip("198.18.1.2"),
            last: ip("198.18.1.9"),
        };
        assert_eq!(r[0].conditions.source, range);
        assert_eq!(r[1].conditions.source, range);
        assert_eq!(r[1].conditions.destination, AddrSpec::Any);
    }

    #[test]
    fn rule_full_form_with_abbreviations() {
        let r = rules(
            "IPSECRULE * 198.18.0.100 LOG PROTOCOL TCP SRCPORT 1024 65535 DESTPORT 80\n\
             ROUTING EITHER SECCLASS 7 DIRECTION BIDIRECTIONAL INBCONNECT\n\
             ipsecr * * log proto 17 srcp * destp 500 routing routed direc inb\n\
             IPSECRULE * * PROTOcol ICMP TYPE 8 CODE 0 DIRECtion OUTBound\n\
             IPSECRULE * * PROTOCOL OSPF TYPE 1 DIRECTION BIDI OUTBC\n\
             IPSECRULE * * PROTOCOL 50\n\
             IPSECRULE * * PROTOCOL 6",
        );
        let c = &r[0].conditions;
        assert!(r[0].log);
        assert_eq!(
            c.protocol,
            ProtocolSpec::Tcp {
                src: PortSpec::Range {
                    first: 1024,
                    last: 65535
                },
                dst: PortSpec::single(80)
            }
        );
        assert_eq!(
            (c.routing, c.security_class, c.direction, c.connect),
            (
                Routing::Either,
                7,
                Direction::Bidirectional,
                Some(TcpConnect::Inbound)
            )
        );
        let c = &r[1].conditions;
        assert_eq!(
            c.protocol,
            ProtocolSpec::Udp {
                src: PortSpec::Any,
                dst: PortSpec::single(500)
            }
        );
        assert_eq!(
            (c.routing, c.direction),
            (Routing::Routed, Direction::Inbound)
        );
        assert_eq!(
            r[2].conditions.protocol,
            ProtocolSpec::Icmp {
                icmp_type: Some(8),
                code: Some(0)
            }
        );
        assert_eq!(r[2].conditions.direction, Direction::Outbound);
        assert_eq!(
            r[3].conditions.protocol,
            ProtocolSpec::Ospf { ospf_type: Some(1) }
        );
        assert_eq!(r[3].conditions.connect, Some(TcpConnect::Outbound));
        assert_eq!(r[4].conditions.protocol, ProtocolSpec::Number(50));
        assert_eq!(
            r[5].conditions.protocol,
            ProtocolSpec::Tcp {
                src: PortSpec::Any,
                dst: PortSpec::Any
            }
        );
        assert!(r.iter().all(|r| r.validate().is_ok()));
    }

    #[test]
    fn ipsec_without_ipsecurity_is_refused() {
        let (w, k) = err("IPSEC\nIPSECRULE * *\nENDIPSEC");
        assert_eq!(w, "IPSEC");
        assert_eq!(k, ErrorKind::IpsecWithoutIpsecurity);
        assert!(k.to_string().contains("z/OS ignores the IPSEC statement"));
    }

    #[test]
    fn second_block_is_refused() {
        let text = "IPCONFIG IPSECURITY\nIPSEC\nENDIPSEC\nIPSEC\nIPSECRULE * *\nENDIPSEC";
        let (w, k) = err(text);
        assert_eq!(w, "IPSEC");
        assert_eq!(k, ErrorKind::SecondIpsecBlock { first_line: 2 });
        let (_, e) = parse(text);
        assert_eq!(e[0].0, text.find("\nIPSEC\nIPSECRULE").expect("second") + 1);
        assert!(k.to_string().contains("EZZ0757I"));
    }

    #[test]
    fn block_structure_errors() {
        let (w, k) = err("IPCONFIG IPSECURITY\nIPSEC\nIPSECRULE * *\n");
        assert_eq!(w, "IPSEC");
        assert_eq!(k, ErrorKind::UnclosedIpsecBlock);
        let (w, k) = err("IPCONFIG IPSECURITY\nIPSECRULE * *\n");
        assert_eq!(w, "IPSECRULE");
        assert_eq!(
            k.to_string(),
            "IPSECRULE outside an IPSEC block; allowed: IPSECRULE between IPSEC and ENDIPSEC"
        );
        let (w, k) = err("IPCONFIG IPSECURITY\nIPSEC\nIPSEC\nENDIPSEC");
        assert_eq!((w.as_str(), k), ("IPSEC", ErrorKind::NestedIpsecBlock));
        let (w, k) = err("IPCONFIG IPSECURITY\nENDIPSEC");
        assert_eq!(w, "ENDIPSEC");
        assert!(matches!(k, ErrorKind::OutsideIpsecBlock { .. }));
    }

    #[test]
    fn unknown_and_unsupported_statements() {
        let (w, k) = err("TCPCONFIG RESTRICTLOWPORTS\nIPCONFIG IPSECURITY");
        assert_eq!(w, "TCPCONFIG");
        assert_eq!(
            k.to_string(),
            "unknown statement `TCPCONFIG` in the profile; allowed: IPCONFIG IPSECURITY, IPSEC ... ENDIPSEC (VIPADYNAMIC goes in `vipadynamic`)"
        );
        let (w, _) = err("VIPADYNAMIC\nIPCONFIG IPSECURITY");
        assert_eq!(w, "VIPADYNAMIC");
        let (w, k) = rule_err("IPSEC6RULE * *");
        assert_eq!(w, "IPSEC6RULE");
        assert_eq!(
            k.to_string(),
            "IPSEC6RULE is not supported by plexnet; allowed: IPSECRULE (plexnet's stacks are IPv4 only)"
        );
        let (w, k) = err("IPCONFIG6 IPSECURITY\nIPCONFIG IPSECURITY");
        assert_eq!(w, "IPCONFIG6");
        assert!(matches!(k, ErrorKind::ProfileUnsupportedStatement { .. }));
        let (w, _) = rule_err("IPSECRULES * *");
        assert_eq!(w, "IPSECRULES");
    }

    #[test]
    fn ipconfig_parameters() {
        let (w, k) = err("IPCONFIG DATAGRAMFWD");
        assert_eq!(w, "DATAGRAMFWD");
        assert_eq!(
            k.to_string(),
            "IPCONFIG DATAGRAMFWD is not supported by plexnet; allowed: IPCONFIG IPSECURITY"
        );
        let (w, k) = err("IPCONFIG IPSECURITY SYSPLEXROUTING");
        assert_eq!(w, "SYSPLEXROUTING");
        assert!(matches!(k, ErrorKind::Unsupported { .. }));
        let (_, k) = err("IPCONFIG");
        assert!(matches!(k, ErrorKind::Missing { .. }));
    }

    #[test]
    fn ipsec_options_in_order() {
        let (w, k) = err("IPCONFIG IPSECURITY\nIPSEC LOGENABLE DVIPSEC\nENDIPSEC");
        assert_eq!(w, "DVIPSEC");
        assert_eq!(
            k.to_string(),
            "`DVIPSEC` comes after LOGENABLE in IPSEC; allowed: the parameters in IBM's order: IPSEC [DVIPSEC] [DVLOCALFLTR] [LOGDISABLE|LOGENABLE] [NOLOGIMPLICIT|LOGIMPLICIT]"
        );
        let (w, _) = err("IPCONFIG IPSECURITY\nIPSEC LOGENABLE LOGDISABLE\nENDIPSEC");
        assert_eq!(w, "LOGDISABLE");
        let (w, k) = err("IPCONFIG IPSECURITY\nIPSEC DVIPSECURE\nENDIPSEC");
        assert_eq!(w, "DVIPSECURE");
        assert!(matches!(k, ErrorKind::UnknownKeyword { .. }));
    }

    #[test]
    fn rule_parameters_in_order() {
        let (w, k) = rule_err("IPSECRULE * * ROUTING LOCAL PROTOCOL TCP");
        assert_eq!(w, "PROTOCOL");
        assert!(
            k.to_string()
                .starts_with("`PROTOCOL` comes after ROUTING in IPSECRULE; allowed: the parameters in IBM's order: IPSECRULE src dest [NOLOG|LOG]"),
            "{k}"
        );
        let (w, _) = rule_err("IPSECRULE * * LOG NOLOG");
        assert_eq!(w, "NOLOG");
        let (w, _) = rule_err("IPSECRULE * * PROTOCOL TCP DESTPORT 80 SRCPORT 1024");
        assert_eq!(w, "SRCPORT");
    }

    #[test]
    fn rule_unknown_words() {
        let (w, k) = rule_err("IPSECRULE * * PROTOCOL TCP PORTS 80");
        assert_eq!(w, "PORTS");
        assert_eq!(
            k.to_string(),
            "unknown keyword `PORTS` in IPSECRULE; allowed here: ROUTING, SECCLASS, DIRECTION"
        );
        let (w, k) = rule_err("IPSECRULE * * PROTOCOL SCTP");
        assert_eq!(w, "SCTP");
        assert!(k.to_string().contains("*, TCP, UDP, ICMP, OSPF"), "{k}");
        let (w, _) = rule_err("IPSECRULE * * ROUTING NOWHERE");
        assert_eq!(w, "NOWHERE");
        let (w, _) = rule_err("IPSECRULE * * DIRECTION SIDEWAYS");
        assert_eq!(w, "SIDEWAYS");
        let (w, k) = rule_err("IPSECRULE * * DIRECTION INBOUND LOG");
        assert_eq!(w, "LOG");
        assert!(matches!(k, ErrorKind::OutOfOrder { .. }));
        let (w, k) = rule_err("IPSECRULE * * ROUTING ROUTED FRAGMENTSONLY");
        assert_eq!(w, "FRAGMENTSONLY");
        assert!(matches!(k, ErrorKind::Unsupported { .. }));
    }

    #[test]
    fn rule_bad_values() {
        let (w, k) = rule_err("IPSECRULE 198.18.1.0/33 *");
        assert_eq!(w, "198.18.1.0/33");
        assert_eq!(
            k.to_string(),
            "`198.18.1.0/33` is not an address specification; allowed: * (every address), a.b.c.d, a.b.c.d/len (len 0 to 32), or a.b.c.d-a.b.c.d (first not above last)"
        );
        let (w, _) = rule_err("IPSECRULE * client1");
        assert_eq!(w, "client1");
        let (w, _) = rule_err("IPSECRULE 198.18.1.9-198.18.1.2 *");
        assert_eq!(w, "198.18.1.9-198.18.1.2");
        let (w, _) = rule_err("IPSECRULE 198.18.1.9 - 198.18.1.2 *");
        assert_eq!(w, "198.18.1.9");
        let (w, k) = rule_err("IPSECRULE * * PROTOCOL TCP DESTPORT 65536");
        assert_eq!(w, "65536");
        assert_eq!(
            k.to_string(),
            "port `65536` is out of range; allowed: *, a port 1 to 65535, or two ports n m (a range)"
        );
        let (w, _) = rule_err("IPSECRULE * * PROTOCOL TCP DESTPORT 90 80");
        assert_eq!(w, "80");
        let (w, _) = rule_err("IPSECRULE * * PROTOCOL 256");
        assert_eq!(w, "256");
        let (w, _) = rule_err("IPSECRULE * * SECCLASS 256");
        assert_eq!(w, "256");
        let (w, _) = rule_err("IPSECRULE * * PROTOCOL ICMP TYPE 300");
        assert_eq!(w, "300");
        let (w, k) = rule_err("IPSECRULE * * PROTOCOL ICMP CODE 3");
        assert_eq!(w, "CODE");
        assert!(matches!(k, ErrorKind::Combination { .. }));
    }

    #[test]
    fn rule_missing_operands() {
        let (w, k) = rule_err("IPSECRULE *");
        assert_eq!(w, "");
        assert!(
            k.to_string()
                .starts_with("IPSECRULE ends early, the destination address"),
            "{k}"
        );
        let (_, k) = rule_err("IPSECRULE * * PROTOCOL");
        assert!(matches!(k, ErrorKind::Missing { .. }));
        let (_, k) = rule_err("IPSECRULE * * PROTOCOL TCP SRCPORT");
        assert!(k.to_string().contains("after SRCPORT is missing"), "{k}");
        let (_, k) = rule_err("IPSECRULE * * DIRECTION");
        assert!(matches!(k, ErrorKind::Missing { .. }));
    }

    #[test]
    fn bad_rule_does_not_hide_the_next() {
        let text = "IPCONFIG IPSECURITY\nIPSEC\nIPSECRULE * * PROTOCOL XTP\nIPSECRULE * 198.18.0.300\nIPSECRULE * *\nENDIPSEC";
        let (p, e) = parse(text);
        assert_eq!(e.len(), 2);
        let rules = p.ipsec.expect("block").rules;
        assert_eq!(rules.len(), 1);
        // Numbering follows the profile, bad rules included.
        assert_eq!(rules[0].name, "SYSDEFAULTRULE.3");
    }
}
