//! The z/OS PROFILE.TCPIP `VIPADYNAMIC` block, as written in an image's
//! `vipadynamic` string.
//!
//! # Syntax accepted
//!
//! ```text
//! VIPADYNamic
//!   VIPADEFine     [MOVEable IMMEDiate | MOVEable WHENIDLE] mask addr...
//!   VIPABackup     [rank] [MOVEable IMMEDiate | MOVEable WHENIDLE] [mask] addr...
//!   VIPADISTribute [DEFINE] [DISTMethod BASEWLM|ROUNDROBIN|WEIGHTEDActive|HOTSTANDBY]
//!                  addr PORT port... DESTIP ALL | DESTIP dest [WEIGHT w | PREFerred | BACKup rank]...
//!   VIPARange      [DEFINE] [MOVEable NONDISRUPTive | MOVEable DISRUPTive] mask addr
//! ENDVIPADYNamic
//! ```
//!
//! * Keywords are case-insensitive and may be abbreviated the way z/OS
//!   documents them: the upper-case part of the mixed-case spelling above is
//!   the shortest accepted form, and any longer prefix of the full keyword is
//!   accepted too (`VIPADEF`, `VIPADEFIN`, `VIPADEFINE`). The table:
//!
//!   | keyword        | shortest  |   | keyword        | shortest   |
//!   |----------------|-----------|---|----------------|------------|
//!   | VIPADYNAMIC    | VIPADYN   |   | DISTMETHOD     | DISTM      |
//!   | ENDVIPADYNAMIC | ENDVIPADYN|   | BASEWLM        | BASEWLM    |
//!   | VIPADEFINE     | VIPADEF   |   | ROUNDROBIN     | ROUNDROBIN |
//!   | VIPABACKUP     | VIPAB     |   | WEIGHTEDACTIVE | WEIGHTEDA  |
//!   | VIPADISTRIBUTE | VIPADIST  |   | HOTSTANDBY     | HOTSTANDBY |
//!   | VIPARANGE      | VIPAR     |   | PORT, DESTIP, ALL, WEIGHT, DEFINE | in full |
//!   | MOVEABLE       | MOVE      |   | PREFERRED      | PREF       |
//!   | IMMEDIATE      | IMMED     |   | BACKUP         | BACK       |
//!   | WHENIDLE       | WHENIDLE  |   | NONDISRUPTIVE / DISRUPTIVE | NONDISRUPT / DISRUPT |
//!
//! * A statement ends where the next statement keyword starts, so statements
//!   continue over as many lines as they need. `;` starts a comment that runs
//!   to the end of the line. Commas separate words like blanks do, so the
//!   patent's `DESTIP XCF1, XCF2, XCF4` reads as written.
//! * Defaults follow z/OS: `VIPADEFINE` without `MOVEABLE` is `MOVEABLE
//!   IMMEDIATE`; `VIPABACKUP` rank defaults to 1; `VIPADISTRIBUTE` without
//!   `DISTMETHOD` is `BASEWLM`. `VIPABACKUP` takes a mask after `MOVEABLE`
//!   (as z/OS requires); without `MOVEABLE` a leading netmask (such as
//!   255.255.255.0) is read as the mask, and a missing one is taken from the
//!   owner's `VIPADEFINE` when the topology is resolved.
//! * plexnet restrictions: `PORT` is required (plexnet distributes listed
//!   ports only); IPv6, `DELETE`, `TIER1`/`TIER2`, `CPCSCOPE`, `SERVICEMGR`,
//!   `SERVERWLM` and the other workload options are reported as unsupported.
//! * `DESTIP` entries name an image (`MVS2`) or its XCF address; they are
//!   resolved against the topology's images afterwards, in `resolve`.
//!
//! This module only parses; ownership, destinations and addresses are checked
//! when the whole topology is resolved. Offsets are byte offsets into the
//! string given to `parse`. It is public for this documentation only; its
//! items are internal, and the results reach the rest of plexnet as
//! [`VipaDynamic`](super::VipaDynamic).

use super::error::ErrorKind;
use super::model::{DestRole, DistMethod, Moveable};
use super::statement::{self, parse_ipv4, parse_number, tokenize, Cursor, Keyword, RawError, Tok};
use std::net::Ipv4Addr;

pub(crate) const VIPADYNAMIC: Keyword = Keyword::new("VIPADYNAMIC", 7);
pub(crate) const ENDVIPADYNAMIC: Keyword = Keyword::new("ENDVIPADYNAMIC", 10);
pub(crate) const VIPADEFINE: Keyword = Keyword::new("VIPADEFINE", 7);
pub(crate) const VIPABACKUP: Keyword = Keyword::new("VIPABACKUP", 5);
pub(crate) const VIPADISTRIBUTE: Keyword = Keyword::new("VIPADISTRIBUTE", 8);
pub(crate) const VIPARANGE: Keyword = Keyword::new("VIPARANGE", 5);
const MOVEABLE: Keyword = Keyword::new("MOVEABLE", 4);
const IMMEDIATE: Keyword = Keyword::new("IMMEDIATE", 5);
const WHENIDLE: Keyword = Keyword::new("WHENIDLE", 8);
const NONDISRUPTIVE: Keyword = Keyword::new("NONDISRUPTIVE", 10);
const DISRUPTIVE: Keyword = Keyword::new("DISRUPTIVE", 7);
const DEFINE: Keyword = Keyword::new("DEFINE", 6);
const DELETE: Keyword = Keyword::new("DELETE", 4);
const DISTMETHOD: Keyword = Keyword::new("DISTMETHOD", 5);
const BASEWLM: Keyword = Keyword::new("BASEWLM", 7);
const ROUNDROBIN: Keyword = Keyword::new("ROUNDROBIN", 10);
const WEIGHTEDACTIVE: Keyword = Keyword::new("WEIGHTEDACTIVE", 9);
const HOTSTANDBY: Keyword = Keyword::new("HOTSTANDBY", 10);
const PORT: Keyword = Keyword::new("PORT", 4);
const TIMEDAFFINITY: Keyword = Keyword::new("TIMEDAFFINITY", 8);
const DESTIP: Keyword = Keyword::new("DESTIP", 6);
const ALL: Keyword = Keyword::new("ALL", 3);
const WEIGHT: Keyword = Keyword::new("WEIGHT", 6);
const PREFERRED: Keyword = Keyword::new("PREFERRED", 4);
const BACKUP: Keyword = Keyword::new("BACKUP", 4);

/// Keywords z/OS has on these statements that plexnet does not model.
const UNSUPPORTED: &[Keyword] = &[
    Keyword::new("TIER1", 5),
    Keyword::new("TIER2", 5),
    Keyword::new("CPCSCOPE", 8),
    Keyword::new("SERVICEMGR", 10),
    Keyword::new("SERVERWLM", 9),
    Keyword::new("TARGCONTROLLED", 14),
    Keyword::new("OPTLOCAL", 8),
    Keyword::new("NOOPTLOCAL", 10),
    Keyword::new("SYSPLEXPORTS", 8),
    Keyword::new("PROCTYPE", 8),
    Keyword::new("CONTROLPORT", 11),
    Keyword::new("GRE", 3),
    Keyword::new("ENCAPSULATION", 13),
    Keyword::new("AUTOSWITCHBACK", 14),
    Keyword::new("NOAUTOSWITCHBACK", 16),
    Keyword::new("HEALTHSWITCH", 12),
    Keyword::new("NOHEALTHSWITCH", 14),
];

const STATEMENTS: [Keyword; 6] = [
    VIPADYNAMIC,
    ENDVIPADYNAMIC,
    VIPADEFINE,
    VIPABACKUP,
    VIPADISTRIBUTE,
    VIPARANGE,
];

/// An address (or a name, for DESTIP) and where it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct At<T> {
    pub(crate) value: T,
    pub(crate) at: usize,
}

/// `VIPADEFINE`: one entry per address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDefine {
    pub(crate) moveable: Moveable,
    pub(crate) mask: Ipv4Addr,
    pub(crate) addrs: Vec<At<Ipv4Addr>>,
}

/// `VIPABACKUP`: `moveable` and `mask` as written (`None` when left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawBackup {
    pub(crate) rank: u8,
    pub(crate) moveable: Option<Moveable>,
    pub(crate) mask: Option<Ipv4Addr>,
    pub(crate) addrs: Vec<At<Ipv4Addr>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDistribute {
    pub(crate) method: DistMethod,
    /// TIMEDAFFINITY seconds: a client's connections to a port stay on one
    /// target while it has any, and that long after the last one.
    pub(crate) timed_affinity: Option<u32>,
    pub(crate) addr: At<Ipv4Addr>,
    /// Each port with where it (or its range) was written.
    pub(crate) ports: Vec<At<u16>>,
    pub(crate) dests: RawDests,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawDests {
    All,
    List(Vec<RawDest>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDest {
    /// As written: an image name or an XCF address.
    pub(crate) text: String,
    pub(crate) at: usize,
    pub(crate) role: DestRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRange {
    pub(crate) mask: Ipv4Addr,
    pub(crate) addr: At<Ipv4Addr>,
}

/// One parsed statement and where its keyword is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Statement {
    Define(RawDefine),
    Backup(RawBackup),
    Distribute(RawDistribute),
    Range(RawRange),
}

/// Parses a whole `vipadynamic` text. Returns every statement that parsed and
/// every error; a bad statement is skipped up to the next statement keyword,
/// so one mistake gives one error.
pub(crate) fn parse(text: &str) -> (Vec<At<Statement>>, Vec<RawError>) {
    let toks = tokenize(text);
    let mut statements = Vec::new();
    let mut errors = Vec::new();
    let mut open_at: Option<usize> = None;
    for group in statement::statements(&toks, starts_statement) {
        let head = group[0];
        if VIPADYNAMIC.matches(head.text) {
            if open_at.is_some() {
                errors.push((head.at, ErrorKind::NestedBlock));
            }
            open_at = Some(head.at);
            if let Some(extra) = group.get(1) {
                errors.push(unknown_statement(extra));
            }
            continue;
        }
        if open_at.is_none() {
            errors.push((
                head.at,
                ErrorKind::OutsideBlock {
                    found: head.text.to_owned(),
                },
            ));
            continue;
        }
        if ENDVIPADYNAMIC.matches(head.text) {
            open_at = None;
            if let Some(extra) = group.get(1) {
                errors.push(unknown_statement(extra));
            }
            continue;
        }
        let parsed = if VIPADEFINE.matches(head.text) {
            parse_define(group).map(Statement::Define)
        } else if VIPABACKUP.matches(head.text) {
            parse_backup(group).map(Statement::Backup)
        } else if VIPADISTRIBUTE.matches(head.text) {
            parse_distribute(group).map(Statement::Distribute)
        } else if VIPARANGE.matches(head.text) {
            parse_range(group).map(Statement::Range)
        } else {
            Err(unknown_statement(&head))
        };
        match parsed {
            Ok(s) => statements.push(At {
                value: s,
                at: head.at,
            }),
            Err(e) => errors.push(e),
        }
    }
    if let Some(at) = open_at {
        errors.push((at, ErrorKind::UnclosedBlock));
    }
    (statements, errors)
}

fn unknown_statement(tok: &Tok<'_>) -> RawError {
    (
        tok.at,
        ErrorKind::UnknownStatement {
            word: tok.text.to_owned(),
        },
    )
}

/// Whether a word begins a new statement: a statement keyword, or a word that
/// looks like one (`VIPA...`, `ENDVIPA...`) so that a misspelt statement is
/// reported as an unknown statement rather than as part of the previous one.
fn starts_statement(word: &str) -> bool {
    let upper = word.to_ascii_uppercase();
    STATEMENTS.iter().any(|k| k.matches(word))
        || ((upper.starts_with("VIPA") || upper.starts_with("ENDVIPA"))
            && !UNSUPPORTED.iter().any(|k| k.matches(word)))
}

/// The VIPADYNAMIC statements' values.
impl Cursor<'_, '_> {
    /// The error for a word that is not allowed here.
    fn unexpected(&self, tok: Tok<'_>, allowed: &str) -> RawError {
        if let Some(k) = UNSUPPORTED.iter().find(|k| k.matches(tok.text)) {
            return (
                tok.at,
                ErrorKind::Unsupported {
                    statement: self.statement,
                    keyword: k.full.to_owned(),
                    allowed: self.syntax,
                },
            );
        }
        self.unknown(tok, allowed)
    }
    /// Errors if words are left over.
    fn finish(&self, allowed: &str) -> Result<(), RawError> {
        match self.peek() {
            Some(t) => Err(self.unexpected(t, allowed)),
            None => Ok(()),
        }
    }
    /// `MOVEable IMMEDiate|WHENIDLE`, if present.
    fn moveable(&mut self) -> Result<Option<Moveable>, RawError> {
        if !self.eat(MOVEABLE) {
            return Ok(None);
        }
        match self.next() {
            Some(t) if IMMEDIATE.matches(t.text) => Ok(Some(Moveable::Immediate)),
            Some(t) if WHENIDLE.matches(t.text) => Ok(Some(Moveable::WhenIdle)),
            Some(t) => Err(self.unexpected(t, "IMMEDIATE or WHENIDLE after MOVEABLE")),
            None => Err(self.missing("IMMEDIATE or WHENIDLE after MOVEABLE")),
        }
    }
    fn mask(&mut self) -> Result<Ipv4Addr, RawError> {
        let t = self
            .next()
            .ok_or_else(|| self.missing("the address mask"))?;
        if self.is_unsupported(t) {
            return Err(self.unexpected(t, ""));
        }
        parse_mask(t.text).ok_or_else(|| {
            (
                t.at,
                ErrorKind::BadMask {
                    text: t.text.to_owned(),
                },
            )
        })
    }
    fn addr(&mut self, what: &'static str) -> Result<At<Ipv4Addr>, RawError> {
        let t = self.next().ok_or_else(|| self.missing(what))?;
        if self.is_unsupported(t) {
            return Err(self.unexpected(t, ""));
        }
        parse_addr(t)
    }
    fn is_unsupported(&self, t: Tok<'_>) -> bool {
        UNSUPPORTED.iter().any(|k| k.matches(t.text))
    }
    /// One or more addresses up to the end of the statement.
    fn addrs(&mut self, what: &'static str) -> Result<Vec<At<Ipv4Addr>>, RawError> {
        let mut v = vec![self.addr(what)?];
        while self.peek().is_some() {
            v.push(self.addr(what)?);
        }
        Ok(v)
    }
}

fn parse_addr(t: Tok<'_>) -> Result<At<Ipv4Addr>, RawError> {
    parse_ipv4(t.text)
        .map(|value| At { value, at: t.at })
        .ok_or_else(|| {
            (
                t.at,
                ErrorKind::BadAddress {
                    text: t.text.to_owned(),
                },
            )
        })
}

/// A contiguous, non-zero netmask.
pub(crate) fn parse_mask(text: &str) -> Option<Ipv4Addr> {
    let m = u32::from(parse_ipv4(text)?);
    (m != 0 && m.leading_ones() + m.trailing_zeros() == 32).then(|| Ipv4Addr::from(m))
}

const DEFINE_SYNTAX: &str = "VIPADEFINE [MOVEABLE IMMEDIATE|MOVEABLE WHENIDLE] mask address...";
const BACKUP_SYNTAX: &str =
    "VIPABACKUP [rank] [MOVEABLE IMMEDIATE|MOVEABLE WHENIDLE mask] address...";
const DISTRIBUTE_SYNTAX: &str = "VIPADISTRIBUTE [DEFINE] [DISTMETHOD BASEWLM|ROUNDROBIN|WEIGHTEDACTIVE|HOTSTANDBY] [TIMEDAFFINITY seconds] address PORT port... DESTIP ALL|dest [WEIGHT w|PREFERRED|BACKUP rank]...";
const RANGE_SYNTAX: &str =
    "VIPARANGE [DEFINE] [MOVEABLE NONDISRUPTIVE|MOVEABLE DISRUPTIVE] mask address";

fn parse_define(toks: &[Tok<'_>]) -> Result<RawDefine, RawError> {
    let mut c = Cursor::new(toks, "VIPADEFINE", DEFINE_SYNTAX);
    if let Some(t) = c.peek() {
        if !MOVEABLE.matches(t.text) && parse_ipv4(t.text).is_none() {
            return Err(c.unexpected(t, "MOVEABLE or the address mask"));
        }
    }
    let moveable = c.moveable()?.unwrap_or(Moveable::Immediate);
    let mask = c.mask()?;
    let addrs = c.addrs("the DVIPA address")?;
    Ok(RawDefine {
        moveable,
        mask,
        addrs,
    })
}

fn parse_backup(toks: &[Tok<'_>]) -> Result<RawBackup, RawError> {
    let mut c = Cursor::new(toks, "VIPABACKUP", BACKUP_SYNTAX);
    let mut rank = 1;
    if let Some(t) = c.peek() {
        if t.text.bytes().all(|b| b.is_ascii_digit()) {
            c.next();
            rank = parse_rank(t)?;
        } else if !MOVEABLE.matches(t.text) && parse_ipv4(t.text).is_none() {
            return Err(c.unexpected(t, "a rank 1 to 254, MOVEABLE, or an address"));
        }
    }
    let moveable = c.moveable()?;
    let mask = if moveable.is_some() {
        Some(c.mask()?)
    } else {
        // Without MOVEABLE z/OS takes no mask; accept one anyway when the
        // first word is a netmask followed by an address (255.x.x.x is
        // never a DVIPA in 198.18.0.0/15).
        match (c.peek(), c.toks.get(c.i + 1)) {
            (Some(t), Some(_)) => match parse_mask(t.text) {
                Some(m) if m.octets()[0] == 255 => {
                    c.next();
                    Some(m)
                }
                _ => None,
            },
            _ => None,
        }
    };
    let addrs = c.addrs("the DVIPA address")?;
    Ok(RawBackup {
        rank,
        moveable,
        mask,
        addrs,
    })
}

fn parse_rank(t: Tok<'_>) -> Result<u8, RawError> {
    match parse_number(t.text) {
        Some(n @ 1..=254) => Ok(n as u8),
        _ => Err((
            t.at,
            ErrorKind::RankOutOfRange {
                value: t.text.to_owned(),
            },
        )),
    }
}

fn parse_port(text: &str, at: usize) -> Result<u16, RawError> {
    match parse_number(text) {
        Some(n @ 1..=65535) => Ok(n as u16),
        _ => Err((
            at,
            ErrorKind::PortOutOfRange {
                value: text.to_owned(),
            },
        )),
    }
}

fn parse_distribute(toks: &[Tok<'_>]) -> Result<RawDistribute, RawError> {
    let mut c = Cursor::new(toks, "VIPADISTRIBUTE", DISTRIBUTE_SYNTAX);
    let mut method: Option<DistMethod> = None;
    let mut timed_affinity: Option<u32> = None;
    // Options before the address, in any order.
    loop {
        let Some(t) = c.peek() else {
            return Err(c.missing("the DVIPA address"));
        };
        if DEFINE.matches(t.text) {
            c.next();
        } else if DELETE.matches(t.text) {
            return Err((
                t.at,
                ErrorKind::Unsupported {
                    statement: "VIPADISTRIBUTE",
                    keyword: "DELETE".to_owned(),
                    allowed: DISTRIBUTE_SYNTAX,
                },
            ));
        } else if DISTMETHOD.matches(t.text) {
            c.next();
            if method.is_some() {
                return Err((t.at, ErrorKind::DuplicateDistMethod));
            }
            let m = c
                .next()
                .ok_or_else(|| c.missing("the method after DISTMETHOD"))?;
            method = Some(if BASEWLM.matches(m.text) {
                DistMethod::BaseWlm
            } else if ROUNDROBIN.matches(m.text) {
                DistMethod::RoundRobin
            } else if WEIGHTEDACTIVE.matches(m.text) {
                DistMethod::WeightedActive
            } else if HOTSTANDBY.matches(m.text) {
                DistMethod::HotStandby
            } else {
                return Err(c.unexpected(
                    m,
                    "BASEWLM, ROUNDROBIN, WEIGHTEDACTIVE or HOTSTANDBY after DISTMETHOD",
                ));
            });
        } else if TIMEDAFFINITY.matches(t.text) {
            c.next();
            let v = c
                .next()
                .ok_or_else(|| c.missing("the seconds after TIMEDAFFINITY"))?;
            match parse_number(v.text) {
                Some(n @ 1..=99_999) => timed_affinity = Some(n as u32),
                _ => {
                    return Err((
                        v.at,
                        ErrorKind::AffinityOutOfRange {
                            value: v.text.to_owned(),
                        },
                    ))
                }
            }
        } else if parse_ipv4(t.text).is_some() {
            break;
        } else {
            return Err(c.unexpected(t, "DEFINE, DISTMETHOD, TIMEDAFFINITY, or the DVIPA address"));
        }
    }
    let method = method.unwrap_or(DistMethod::BaseWlm);
    let addr = c.addr("the DVIPA address")?;

    if !c.eat(PORT) {
        return match c.peek() {
            Some(t) if !DESTIP.matches(t.text) => Err(c.unexpected(t, "PORT")),
            _ => Err(c.missing("PORT (plexnet distributes listed ports only)")),
        };
    }
    let mut ports = Vec::new();
    while let Some(t) = c.peek() {
        if DESTIP.matches(t.text) {
            break;
        }
        c.next();
        match t.text.split_once('-') {
            Some((lo, hi)) => {
                let lo_n = parse_port(lo, t.at)?;
                let hi_n = parse_port(hi, t.at + lo.len() + 1)?;
                if hi_n < lo_n {
                    return Err((
                        t.at,
                        ErrorKind::PortOutOfRange {
                            value: t.text.to_owned(),
                        },
                    ));
                }
                ports.extend((lo_n..=hi_n).map(|p| At { value: p, at: t.at }));
            }
            None => ports.push(At {
                value: parse_port(t.text, t.at)?,
                at: t.at,
            }),
        }
    }
    if ports.is_empty() {
        return Err(c.missing("a port number after PORT"));
    }

    let destip = c.next().ok_or_else(|| c.missing("DESTIP"))?;
    if c.at_keyword(ALL) {
        c.next();
        if method == DistMethod::HotStandby {
            return Err((destip.at, ErrorKind::HotStandbyAll));
        }
        c.finish("nothing after DESTIP ALL")?;
        return Ok(RawDistribute {
            timed_affinity,
            method,
            addr,
            ports,
            dests: RawDests::All,
        });
    }
    let mut dests = Vec::new();
    while let Some(t) = c.next() {
        if ALL.matches(t.text)
            || [WEIGHT, PREFERRED, BACKUP, PORT, DESTIP]
                .iter()
                .any(|k| k.matches(t.text))
        {
            return Err(c.unexpected(t, "an image name or XCF address; ALL only alone"));
        }
        let mut role = DestRole::Plain;
        if let Some(k) = c.peek() {
            if WEIGHT.matches(k.text) {
                c.next();
                if method != DistMethod::WeightedActive {
                    return Err((k.at, ErrorKind::WeightWithoutWeightedActive { method }));
                }
                let w = c
                    .next()
                    .ok_or_else(|| c.missing("the weight after WEIGHT"))?;
                role = match parse_number(w.text) {
                    Some(n @ 1..=99) => DestRole::Weight(n as u16),
                    _ => {
                        return Err((
                            w.at,
                            ErrorKind::WeightOutOfRange {
                                value: w.text.to_owned(),
                            },
                        ))
                    }
                };
            } else if PREFERRED.matches(k.text) || BACKUP.matches(k.text) {
                c.next();
                let keyword = if PREFERRED.matches(k.text) {
                    "PREFERRED"
                } else {
                    "BACKUP"
                };
                if method != DistMethod::HotStandby {
                    return Err((k.at, ErrorKind::RoleWithoutHotStandby { keyword, method }));
                }
                role = if keyword == "PREFERRED" {
                    DestRole::Preferred
                } else {
                    let r = c.next().ok_or_else(|| c.missing("the rank after BACKUP"))?;
                    DestRole::Backup(parse_rank(r)?)
                };
            }
        }
        dests.push(RawDest {
            text: t.text.to_owned(),
            at: t.at,
            role,
        });
    }
    if dests.is_empty() {
        return Err(c.missing("the destinations after DESTIP (image names, XCF addresses or ALL)"));
    }
    if method == DistMethod::HotStandby {
        let preferred = dests
            .iter()
            .filter(|d| d.role == DestRole::Preferred)
            .count();
        let backups = dests
            .iter()
            .filter(|d| matches!(d.role, DestRole::Backup(_)))
            .count();
        let unmarked = dests.len() - preferred - backups;
        if preferred != 1 || backups == 0 || unmarked != 0 {
            let kind = ErrorKind::HotStandbyRoles {
                preferred,
                backups,
                unmarked,
            };
            return Err((destip.at, kind));
        }
    }
    Ok(RawDistribute {
        timed_affinity,
        method,
        addr,
        ports,
        dests: RawDests::List(dests),
    })
}

fn parse_range(toks: &[Tok<'_>]) -> Result<RawRange, RawError> {
    let mut c = Cursor::new(toks, "VIPARANGE", RANGE_SYNTAX);
    if let Some(t) = c.peek() {
        if DELETE.matches(t.text) {
            return Err((
                t.at,
                ErrorKind::Unsupported {
                    statement: "VIPARANGE",
                    keyword: "DELETE".to_owned(),
                    allowed: RANGE_SYNTAX,
                },
            ));
        }
    }
    c.eat(DEFINE);
    if c.eat(MOVEABLE) {
        match c.next() {
            Some(t) if NONDISRUPTIVE.matches(t.text) || DISRUPTIVE.matches(t.text) => {}
            Some(t) => return Err(c.unexpected(t, "NONDISRUPTIVE or DISRUPTIVE after MOVEABLE")),
            None => return Err(c.missing("NONDISRUPTIVE or DISRUPTIVE after MOVEABLE")),
        }
    } else if let Some(t) = c.peek() {
        if parse_ipv4(t.text).is_none() {
            return Err(c.unexpected(t, "DEFINE, MOVEABLE, or the address mask"));
        }
    }
    let mask = c.mask()?;
    let addr = c.addr("the range's address")?;
    c.finish("nothing after the range's address")?;
    Ok(RawRange { mask, addr })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::the_error;
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    /// Parses a block holding `body` and returns its statements, failing on errors.
    fn ok(body: &str) -> Vec<Statement> {
        let text = format!("VIPADYNAMIC\n{body}\nENDVIPADYNAMIC\n");
        let (s, e) = parse(&text);
        assert!(e.is_empty(), "unexpected errors {e:?}");
        s.into_iter().map(|s| s.value).collect()
    }

    /// Parses `text` and returns its single error with the offending word.
    fn err(text: &str) -> (String, ErrorKind) {
        the_error(text, parse(text).1)
    }

    fn block_err(body: &str) -> (String, ErrorKind) {
        err(&format!("VIPADYNAMIC\n{body}\nENDVIPADYNAMIC\n"))
    }

    #[test]
    fn keyword_abbreviations() {
        assert!(VIPADEFINE.matches("vipadef"));
        assert!(VIPADEFINE.matches("VipaDefin"));
        assert!(!VIPADEFINE.matches("VIPADE"));
        assert!(!VIPADEFINE.matches("VIPADEFINES"));
        assert!(VIPABACKUP.matches("VIPAB"));
        assert!(VIPADISTRIBUTE.matches("vipadist"));
        assert!(!VIPADISTRIBUTE.matches("VIPADIS"));
        assert!(VIPARANGE.matches("VIPAR"));
        assert!(!VIPARANGE.matches("VIPAROUTE"));
        assert!(DISTMETHOD.matches("DISTM"));
        assert!(MOVEABLE.matches("move"));
        assert!(IMMEDIATE.matches("IMMED"));
        assert!(!IMMEDIATE.matches("IMME"));
        assert!(WEIGHTEDACTIVE.matches("WEIGHTEDA"));
        assert!(!WEIGHTEDACTIVE.matches("WEIGHTED"));
        assert!(PREFERRED.matches("PREF"));
        assert!(BACKUP.matches("BACK"));
        assert!(VIPADYNAMIC.matches("VipaDyn"));
        assert!(ENDVIPADYNAMIC.matches("ENDVIPADYN"));
    }

    #[test]
    fn tokenizer_comments_commas_lines() {
        let t: Vec<&str> = tokenize("A B,C ; comment D\n  E,,F;x\nG")
            .iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(t, ["A", "B", "C", "E", "F", "G"]);
        assert_eq!(tokenize("  xy")[0].at, 2);
    }

    #[test]
    fn vipadefine_forms() {
        let s = ok("VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100");
        assert_eq!(
            s,
            [Statement::Define(RawDefine {
                moveable: Moveable::Immediate,
                mask: ip("255.255.255.0"),
                addrs: vec![At {
                    value: ip("198.18.0.100"),
                    at: 56
                }],
            })]
        );
        let s = ok("vipadef move whenidle 255.255.255.0 198.18.0.100 198.18.0.101");
        let Statement::Define(d) = &s[0] else {
            panic!("not a define: {s:?}")
        };
        assert_eq!(d.moveable, Moveable::WhenIdle);
        assert_eq!(d.addrs.len(), 2);
        // MOVEABLE left out: z/OS default MOVEABLE IMMEDIATE.
        let s = ok("VIPADEFine 255.255.255.0 198.18.0.100");
        assert!(matches!(&s[0], Statement::Define(d) if d.moveable == Moveable::Immediate));
    }

    #[test]
    fn vipabackup_forms() {
        let s = ok("VIPABACKUP 100 MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100");
        assert_eq!(
            s[0],
            Statement::Backup(RawBackup {
                rank: 100,
                moveable: Some(Moveable::Immediate),
                mask: Some(ip("255.255.255.0")),
                addrs: vec![At {
                    value: ip("198.18.0.100"),
                    at: 60
                }],
            })
        );
        let s = ok("VIPAB 198.18.0.100 198.18.0.101");
        assert!(matches!(&s[0], Statement::Backup(b)
            if b.rank == 1 && b.moveable.is_none() && b.mask.is_none() && b.addrs.len() == 2));
        let s = ok("vipaback 7 255.255.255.0 198.18.0.100");
        assert!(matches!(&s[0], Statement::Backup(b)
            if b.rank == 7 && b.mask == Some(ip("255.255.255.0")) && b.addrs.len() == 1));
        let s = ok("VIPABACKUP 254 MOVE WHENIDLE 255.255.255.0 198.18.0.100");
        assert!(matches!(&s[0], Statement::Backup(b) if b.moveable == Some(Moveable::WhenIdle)));
    }

    #[test]
    fn vipadistribute_forms() {
        let s = ok("VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN 198.18.0.100\n   PORT 60 80 DESTIP MVS1 MVS2 198.19.0.4");
        let Statement::Distribute(d) = &s[0] else {
            panic!("not a distribute: {s:?}")
        };
        assert_eq!(d.method, DistMethod::RoundRobin);
        assert_eq!(d.addr.value, ip("198.18.0.100"));
        assert_eq!(
            d.ports.iter().map(|p| p.value).collect::<Vec<_>>(),
            [60, 80]
        );
        let RawDests::List(l) = &d.dests else {
            panic!("not a list")
        };
        let names: Vec<&str> = l.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(names, ["MVS1", "MVS2", "198.19.0.4"]);
        assert!(l.iter().all(|d| d.role == DestRole::Plain));

        // The patent's own wording: no DISTMETHOD (BASEWLM), commas.
        let s = ok("VIPADISTribute 198.18.0.100 PORT 60 DESTIP XCF1, XCF2, XCF4");
        let Statement::Distribute(d) = &s[0] else {
            panic!("not a distribute")
        };
        assert_eq!(d.method, DistMethod::BaseWlm);
        assert!(matches!(&d.dests, RawDests::List(l) if l.len() == 3));

        let s = ok("vipadist distm roundrobin define 198.18.0.100 port 80 destip all");
        assert!(matches!(&s[0], Statement::Distribute(d)
            if d.dests == RawDests::All && d.method == DistMethod::RoundRobin));

        let s = ok("VIPADIST DISTM WEIGHTEDA 198.18.0.100 PORT 80 DESTIP MVS1 WEIGHT 5 MVS2 MVS3 WEIGHT 99");
        let Statement::Distribute(d) = &s[0] else {
            panic!("not a distribute")
        };
        let RawDests::List(l) = &d.dests else {
            panic!("not a list")
        };
        let roles: Vec<DestRole> = l.iter().map(|d| d.role).collect();
        assert_eq!(
            roles,
            [DestRole::Weight(5), DestRole::Plain, DestRole::Weight(99)]
        );

        let s = ok("VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2 BACK 10 MVS3 BACKUP 200");
        let Statement::Distribute(d) = &s[0] else {
            panic!("not a distribute")
        };
        let RawDests::List(l) = &d.dests else {
            panic!("not a list")
        };
        let roles: Vec<DestRole> = l.iter().map(|d| d.role).collect();
        assert_eq!(
            roles,
            [
                DestRole::Preferred,
                DestRole::Backup(10),
                DestRole::Backup(200)
            ]
        );

        let s = ok("VIPADIST TIMEDAFF 60 DISTM ROUNDROBIN 198.18.0.100 PORT 5201-5204 DESTIP ALL");
        assert!(matches!(&s[0], Statement::Distribute(d) if d.timed_affinity == Some(60)));

        let s = ok("VIPADIST DISTM BASEWLM 198.18.0.100 PORT 8000-8002 80 DESTIP ALL");
        assert!(matches!(&s[0], Statement::Distribute(d)
            if d.ports.iter().map(|p| p.value).collect::<Vec<_>>() == [8000, 8001, 8002, 80]));
    }

    #[test]
    fn viparange_forms() {
        let s = ok("VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 255.255.255.240 198.18.0.192");
        assert_eq!(
            s[0],
            Statement::Range(RawRange {
                mask: ip("255.255.255.240"),
                addr: At {
                    value: ip("198.18.0.192"),
                    at: 68
                },
            })
        );
        let s = ok(
            "VIPAR MOVE DISRUPT 255.255.255.240 198.18.0.192\nviparange 255.255.255.0 198.18.0.0",
        );
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn statements_continue_over_lines_with_comments() {
        let s = ok("VIPADEFINE        ; owner\n   MOVEABLE IMMEDIATE ; moves at once\n 255.255.255.0\n 198.18.0.100 ; DVA1\nVIPADISTRIBUTE 198.18.0.100\n PORT 80\n DESTIP\n MVS1 ; me\n MVS2\n");
        assert_eq!(s.len(), 2);
        assert!(
            matches!(&s[1], Statement::Distribute(d) if matches!(&d.dests, RawDests::List(l) if l.len() == 2))
        );
    }

    #[test]
    fn several_blocks_and_empty_text() {
        let (s, e) = parse("VIPADYN VIPADEF 255.255.255.0 198.18.0.100 ENDVIPADYN\nVIPADYNAMIC VIPAR 255.255.255.0 198.18.0.0 ENDVIPADYNAMIC");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(s.len(), 2);
        let (s, e) = parse("  ; nothing but a comment\n");
        assert!(s.is_empty() && e.is_empty());
    }

    #[test]
    fn block_errors() {
        let (w, k) = err("VIPADEFINE 255.255.255.0 198.18.0.100");
        assert_eq!(w, "VIPADEFINE");
        assert!(matches!(k, ErrorKind::OutsideBlock { .. }));
        let (w, k) = err("VIPADYNAMIC\nVIPADEFINE 255.255.255.0 198.18.0.100\n");
        assert_eq!(w, "VIPADYNAMIC");
        assert_eq!(k, ErrorKind::UnclosedBlock);
        let (w, k) = err("VIPADYNAMIC VIPADYNAMIC ENDVIPADYNAMIC");
        assert_eq!(w, "VIPADYNAMIC");
        assert_eq!(k, ErrorKind::NestedBlock);
        let (w, k) = err("VIPADYNAMIC FOO ENDVIPADYNAMIC");
        assert_eq!(w, "FOO");
        assert!(matches!(k, ErrorKind::UnknownStatement { .. }));
    }

    #[test]
    fn unknown_statement_is_one_error() {
        let (w, k) = block_err("VIPADEFINEX MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100");
        assert_eq!(w, "VIPADEFINEX");
        assert_eq!(
            k.to_string(),
            "unknown statement `VIPADEFINEX`; allowed: VIPADEFine, VIPABackup, VIPADISTribute, VIPARange, ENDVIPADYNamic (the upper-case part is the shortest abbreviation)"
        );
        let (w, _) = block_err("VIPADELETE 198.18.0.100");
        assert_eq!(w, "VIPADELETE");
        let (w, _) = block_err("VIPAD 255.255.255.0 198.18.0.100");
        assert_eq!(w, "VIPAD");
    }

    #[test]
    fn unknown_keyword() {
        let (w, k) = block_err("VIPADEFINE MOVEABLE SOMETIMES 255.255.255.0 198.18.0.100");
        assert_eq!(w, "SOMETIMES");
        assert_eq!(
            k.to_string(),
            "unknown keyword `SOMETIMES` in VIPADEFINE; allowed here: IMMEDIATE or WHENIDLE after MOVEABLE"
        );
        let (w, k) = block_err("VIPADIST DISTM FASTEST 198.18.0.100 PORT 80 DESTIP ALL");
        assert_eq!(w, "FASTEST");
        assert!(matches!(k, ErrorKind::UnknownKeyword { .. }));
        let (w, _) = block_err("VIPADIST 198.18.0.100 PORTS 80 DESTIP ALL");
        assert_eq!(w, "PORTS");
        let (w, _) = block_err("VIPADIST 198.18.0.100 PORT 80 DESTIP ALL MVS1");
        assert_eq!(w, "MVS1");
        let (w, _) = block_err("VIPAB 10 NOW 198.18.0.100");
        assert_eq!(w, "NOW");
        let (w, _) = block_err("VIPARANGE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.0");
        assert_eq!(w, "IMMEDIATE");
    }

    #[test]
    fn unsupported_keywords() {
        let (w, k) = block_err("VIPADEFINE TIER1 255.255.255.0 198.18.0.100");
        assert_eq!(w, "TIER1");
        assert!(k.to_string().starts_with(
            "VIPADEFINE TIER1 is not supported by plexnet; allowed: VIPADEFINE [MOVEABLE"
        ));
        let (w, k) = block_err("VIPADIST DELETE 198.18.0.100 PORT 80 DESTIP ALL");
        assert_eq!(w, "DELETE");
        assert!(matches!(k, ErrorKind::Unsupported { .. }));
        let (w, _) = block_err("VIPADIST DISTM SERVERWLM 198.18.0.100 PORT 80 DESTIP ALL");
        assert_eq!(w, "SERVERWLM");
        let (w, _) = block_err("VIPARANGE DELETE 255.255.255.0 198.18.0.0");
        assert_eq!(w, "DELETE");
    }

    #[test]
    fn real_zos_statements_plexnet_lacks_start_their_own_statement() {
        let text = "VIPADYNAMIC\nVIPADEFINE 255.255.255.0 198.18.0.100\nVIPAROUTE 198.19.0.2 198.18.0.12\nENDVIPADYNAMIC";
        let (s, e) = parse(text);
        assert_eq!(s.len(), 1, "the VIPADEFINE before it still parses");
        assert_eq!(e.len(), 1);
        assert_eq!(&text[e[0].0..e[0].0 + 9], "VIPAROUTE");
        assert!(matches!(e[0].1, ErrorKind::UnknownStatement { .. }));
    }

    #[test]
    fn unsupported_keyword_where_an_address_is_expected() {
        let (w, k) = block_err("VIPADEFINE 255.255.255.0 198.18.0.100 SERVICEMGR");
        assert_eq!(w, "SERVICEMGR");
        assert!(matches!(k, ErrorKind::Unsupported { .. }), "{k}");
        let (w, k) =
            block_err("VIPADEFINE MOVEABLE IMMEDIATE SERVICEMGR 255.255.255.0 198.18.0.100");
        assert_eq!(w, "SERVICEMGR");
        assert!(matches!(k, ErrorKind::Unsupported { .. }), "{k}");
    }

    #[test]
    fn missing_operands() {
        let (w, k) = block_err("VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0");
        assert_eq!(w, "");
        assert_eq!(
            k.to_string(),
            "VIPADEFINE ends early, the DVIPA address is missing; allowed: VIPADEFINE [MOVEABLE IMMEDIATE|MOVEABLE WHENIDLE] mask address..."
        );
        let (_, k) = block_err("VIPADIST 198.18.0.100 DESTIP ALL");
        assert!(
            k.to_string()
                .contains("PORT (plexnet distributes listed ports only) is missing"),
            "{k}"
        );
        let (_, k) = block_err("VIPADIST 198.18.0.100 PORT 80");
        assert!(k.to_string().contains("DESTIP is missing"), "{k}");
        let (_, k) = block_err("VIPADIST 198.18.0.100 PORT DESTIP ALL");
        assert!(
            k.to_string()
                .contains("a port number after PORT is missing"),
            "{k}"
        );
        let (_, k) = block_err("VIPADIST 198.18.0.100 PORT 80 DESTIP");
        assert!(
            k.to_string().contains("the destinations after DESTIP"),
            "{k}"
        );
        let (_, k) = block_err("VIPADIST DISTM");
        assert!(matches!(k, ErrorKind::Missing { .. }), "{k}");
    }

    #[test]
    fn malformed_address_and_mask() {
        let (w, k) = block_err("VIPADEFINE 255.255.255.0 198.18.0.300");
        assert_eq!(w, "198.18.0.300");
        assert_eq!(
            k.to_string(),
            "`198.18.0.300` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)"
        );
        let (w, _) = block_err("VIPADEFINE 255.255.255.0 DVA1");
        assert_eq!(w, "DVA1");
        let (w, k) = block_err("VIPADEFINE 255.0.255.0 198.18.0.100");
        assert_eq!(w, "255.0.255.0");
        assert_eq!(
            k.to_string(),
            "`255.0.255.0` is not an address mask; allowed: a contiguous netmask such as 255.255.255.0"
        );
        let (w, k) = block_err("VIPARANGE 0.0.0.0 198.18.0.0");
        assert_eq!(w, "0.0.0.0");
        assert!(matches!(k, ErrorKind::BadMask { .. }));
        let (w, k) = block_err("VIPABACKUP 1 MOVE IMMED 198.18.0.100");
        assert_eq!(w, "198.18.0.100");
        assert!(matches!(k, ErrorKind::BadMask { .. }));
    }

    #[test]
    fn rank_out_of_range() {
        let (w, k) = block_err("VIPABACKUP 255 198.18.0.100");
        assert_eq!(w, "255");
        assert_eq!(
            k.to_string(),
            "rank `255` is out of range; allowed: 1 to 254 (a higher rank takes over first)"
        );
        let (w, _) = block_err("VIPABACKUP 0 198.18.0.100");
        assert_eq!(w, "0");
        let (w, k) = block_err(
            "VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2 BACKUP 999",
        );
        assert_eq!(w, "999");
        assert!(matches!(k, ErrorKind::RankOutOfRange { .. }));
    }

    #[test]
    fn port_out_of_range() {
        let (w, k) = block_err("VIPADIST 198.18.0.100 PORT 80 65536 DESTIP ALL");
        assert_eq!(w, "65536");
        assert_eq!(
            k.to_string(),
            "port `65536` is out of range; allowed: 1 to 65535, or a range low-high such as 8000-8009"
        );
        let (w, _) = block_err("VIPADIST 198.18.0.100 PORT 0 DESTIP ALL");
        assert_eq!(w, "0");
        let (w, _) = block_err("VIPADIST 198.18.0.100 PORT http DESTIP ALL");
        assert_eq!(w, "http");
        let (w, _) = block_err("VIPADIST 198.18.0.100 PORT 90-80 DESTIP ALL");
        assert_eq!(w, "90-80");
        let (w, _) = block_err("VIPADIST 198.18.0.100 PORT 80-0 DESTIP ALL");
        assert_eq!(w, "0");
    }

    #[test]
    fn weight_rules() {
        let (w, k) =
            block_err("VIPADIST DISTM WEIGHTEDACTIVE 198.18.0.100 PORT 80 DESTIP MVS1 WEIGHT 100");
        assert_eq!(w, "100");
        assert_eq!(
            k.to_string(),
            "weight `100` is out of range; allowed: 1 to 99"
        );
        let (w, k) =
            block_err("VIPADIST DISTM ROUNDROBIN 198.18.0.100 PORT 80 DESTIP MVS1 WEIGHT 5");
        assert_eq!(w, "WEIGHT");
        assert_eq!(
            k.to_string(),
            "WEIGHT with DISTMETHOD RoundRobin; allowed: WEIGHT only with DISTMETHOD WEIGHTEDACTIVE"
        );
    }

    #[test]
    fn hotstandby_rules() {
        let (w, k) =
            block_err("VIPADIST DISTM ROUNDROBIN 198.18.0.100 PORT 80 DESTIP MVS1 PREFERRED");
        assert_eq!(w, "PREFERRED");
        assert!(matches!(
            k,
            ErrorKind::RoleWithoutHotStandby {
                keyword: "PREFERRED",
                ..
            }
        ));
        let (w, k) = block_err("VIPADIST 198.18.0.100 PORT 80 DESTIP MVS1 BACKUP 3");
        assert_eq!(w, "BACKUP");
        assert!(matches!(
            k,
            ErrorKind::RoleWithoutHotStandby {
                keyword: "BACKUP",
                ..
            }
        ));
        let (w, k) =
            block_err("VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2 PREF");
        assert_eq!(w, "DESTIP");
        assert_eq!(
            k.to_string(),
            "DISTMETHOD HOTSTANDBY with 2 PREFERRED, 0 BACKUP and 0 unmarked destinations; allowed: exactly one PREFERRED and every other destination BACKUP rank"
        );
        let (_, k) =
            block_err("VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2");
        assert_eq!(
            k,
            ErrorKind::HotStandbyRoles {
                preferred: 1,
                backups: 0,
                unmarked: 1
            }
        );
        let (_, k) = block_err(
            "VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2 BACK 5 MVS3",
        );
        assert_eq!(
            k.to_string(),
            "DISTMETHOD HOTSTANDBY with 1 PREFERRED, 1 BACKUP and 1 unmarked destinations; allowed: exactly one PREFERRED and every other destination BACKUP rank"
        );
        let (w, k) = block_err("VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP ALL");
        assert_eq!(w, "DESTIP");
        assert_eq!(k, ErrorKind::HotStandbyAll);
        let (w, k) =
            block_err("VIPADIST DISTM ROUNDROBIN DISTM BASEWLM 198.18.0.100 PORT 80 DESTIP ALL");
        assert_eq!(w, "DISTM");
        assert_eq!(k, ErrorKind::DuplicateDistMethod);
    }

    #[test]
    fn bad_statement_does_not_hide_the_next() {
        let text = "VIPADYNAMIC\nVIPADEFINE 255.255.255.0 1.2.3\nVIPABACKUP 300 198.18.0.1\nVIPAR 255.255.255.0 198.18.0.0\nENDVIPADYNAMIC";
        let (s, e) = parse(text);
        assert_eq!(s.len(), 1);
        assert_eq!(e.len(), 2);
        assert!(matches!(e[0].1, ErrorKind::BadAddress { .. }));
        assert!(matches!(e[1].1, ErrorKind::RankOutOfRange { .. }));
    }
}
