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
mod rule;
#[cfg(test)]
mod tests;

use rule::parse_rule;

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
    let mut p = ProfileParser {
        line_of,
        out: RawProfile::default(),
        errors: Vec::new(),
        open: None,
        first_block: None,
        block: IpsecBlock::default(),
        rule_count: 0,
    };
    for group in statement::statements(&toks, starts_statement) {
        p.statement(group);
    }
    p.finish()
}

/// A `profile` text read so far.
struct ProfileParser<'l> {
    line_of: &'l dyn Fn(usize) -> usize,
    out: RawProfile,
    errors: Vec<RawError>,
    /// The open block: where its IPSEC is, and whether it is the first one.
    open: Option<(usize, bool)>,
    first_block: Option<usize>,
    /// The first block's options and rules.
    block: IpsecBlock,
    rule_count: usize,
}

impl ProfileParser<'_> {
    /// One statement, by its keyword.
    fn statement(&mut self, group: &[Tok<'_>]) {
        let head = group[0];
        if IPCONFIG.matches(head.text) {
            match parse_ipconfig(group) {
                Ok(()) => self.out.ipsecurity = true,
                Err(e) => self.errors.push(e),
            }
        } else if IPSEC.matches(head.text) {
            self.ipsec(group);
        } else if ENDIPSEC.matches(head.text) {
            self.endipsec(group);
        } else if IPSECRULE.matches(head.text) {
            self.ipsecrule(group);
        } else if IPCONFIG6.matches(head.text) {
            self.errors.push((
                head.at,
                ErrorKind::ProfileUnsupportedStatement {
                    statement: "IPCONFIG6",
                    allowed: "IPCONFIG IPSECURITY (plexnet's stacks are IPv4 only)",
                },
            ));
        } else if IPSEC6RULE.matches(head.text) {
            self.errors.push((
                head.at,
                ErrorKind::ProfileUnsupportedStatement {
                    statement: "IPSEC6RULE",
                    allowed: "IPSECRULE (plexnet's stacks are IPv4 only)",
                },
            ));
        } else {
            self.errors.push(unknown_statement(&head));
        }
    }

    /// IPSEC opens the block; only the first block counts, and blocks do
    /// not nest.
    fn ipsec(&mut self, group: &[Tok<'_>]) {
        let head = group[0];
        if self.open.is_some() {
            self.errors.push((head.at, ErrorKind::NestedIpsecBlock));
            return;
        }
        let first = self.first_block.is_none();
        if let Some(at) = self.first_block {
            let first_line = (self.line_of)(at);
            self.errors
                .push((head.at, ErrorKind::SecondIpsecBlock { first_line }));
        } else {
            self.first_block = Some(head.at);
        }
        self.open = Some((head.at, first));
        match parse_ipsec_options(group) {
            Ok(b) if first => self.block = b,
            Ok(_) => {}
            Err(e) => self.errors.push(e),
        }
    }

    /// ENDIPSEC closes the open block.
    fn endipsec(&mut self, group: &[Tok<'_>]) {
        let head = group[0];
        match self.open.take() {
            None => self.errors.push((
                head.at,
                ErrorKind::OutsideIpsecBlock {
                    statement: "ENDIPSEC",
                },
            )),
            Some((_, first)) => {
                if first {
                    self.out.ipsec = Some(std::mem::take(&mut self.block));
                }
            }
        }
        if let Some(extra) = group.get(1) {
            self.errors.push(unknown_statement(extra));
        }
    }

    /// IPSECRULE, inside a block: rules are numbered in profile order.
    fn ipsecrule(&mut self, group: &[Tok<'_>]) {
        if self.open.is_none() {
            self.errors.push((
                group[0].at,
                ErrorKind::OutsideIpsecBlock {
                    statement: "IPSECRULE",
                },
            ));
            return;
        }
        self.rule_count += 1;
        match parse_rule(group, self.rule_count) {
            Ok(r) => self.block.rules.push(r),
            Err(e) => self.errors.push(e),
        }
    }

    /// What the text says, and the errors of a block left open or of IPSEC
    /// without `IPCONFIG IPSECURITY`.
    fn finish(mut self) -> (RawProfile, Vec<RawError>) {
        if let Some((at, _)) = self.open {
            self.errors.push((at, ErrorKind::UnclosedIpsecBlock));
        }
        if !self.out.ipsecurity {
            if let Some(at) = self.first_block {
                self.errors.push((at, ErrorKind::IpsecWithoutIpsecurity));
            }
        }
        (self.out, self.errors)
    }
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
        in_order("IPSEC", IPSEC_SYNTAX, *t, stage, last)?;
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

/// IBM fixes the order of a statement's parameters: errors if `t`, at
/// `stage` of that order, comes at or before `last`, the stage and word of
/// the parameter before it.
fn in_order(
    statement: &'static str,
    syntax: &'static str,
    t: Tok<'_>,
    stage: usize,
    last: Option<(usize, &str)>,
) -> Result<(), RawError> {
    match last {
        Some((done, after)) if stage <= done => Err((
            t.at,
            ErrorKind::OutOfOrder {
                statement,
                word: t.text.to_owned(),
                after: after.to_owned(),
                syntax,
            },
        )),
        _ => Ok(()),
    }
}
