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

mod distribute;
#[cfg(test)]
mod tests;

use distribute::parse_distribute;

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

/// A VIPABACKUP or DESTIP BACKUP rank: 1 to 254.
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
