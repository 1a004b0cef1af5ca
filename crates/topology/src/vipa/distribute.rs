//! `VIPADISTRIBUTE`: the options before the DVIPA, the address, `PORT`
//! and `DESTIP`, one function each.
//!
//! ```text
//! VIPADISTribute [DEFINE] [DISTMethod BASEWLM|ROUNDROBIN|WEIGHTEDActive|HOTSTANDBY]
//!                [TIMEDAFFinity seconds]
//!                addr PORT port... DESTIP ALL | DESTIP dest [WEIGHT w | PREFerred | BACKup rank]...
//! ```

use super::super::error::ErrorKind;
use super::super::model::{DestRole, DistMethod};
use super::super::statement::{parse_ipv4, parse_number, Cursor, RawError, Tok};
use super::{
    parse_rank, At, RawDest, RawDests, RawDistribute, ALL, BACKUP, BASEWLM, DEFINE, DELETE, DESTIP,
    DISTMETHOD, HOTSTANDBY, PORT, PREFERRED, ROUNDROBIN, TIMEDAFFINITY, WEIGHT, WEIGHTEDACTIVE,
};

const DISTRIBUTE_SYNTAX: &str = "VIPADISTRIBUTE [DEFINE] [DISTMETHOD BASEWLM|ROUNDROBIN|WEIGHTEDACTIVE|HOTSTANDBY] [TIMEDAFFINITY seconds] address PORT port... DESTIP ALL|dest [WEIGHT w|PREFERRED|BACKUP rank]...";

/// What comes before the DVIPA address, in any order.
#[derive(Default)]
struct Options {
    method: Option<DistMethod>,
    timed_affinity: Option<u32>,
}

/// One VIPADISTRIBUTE statement, keyword first.
pub(super) fn parse_distribute(toks: &[Tok<'_>]) -> Result<RawDistribute, RawError> {
    let mut c = Cursor::new(toks, "VIPADISTRIBUTE", DISTRIBUTE_SYNTAX);
    let options = options(&mut c)?;
    let method = options.method.unwrap_or(DistMethod::BaseWlm);
    let addr = c.addr("the DVIPA address")?;
    let ports = ports(&mut c)?;
    let destip = c.next().ok_or_else(|| c.missing("DESTIP"))?;
    let dests = if c.at_keyword(ALL) {
        c.next();
        if method == DistMethod::HotStandby {
            return Err((destip.at, ErrorKind::HotStandbyAll));
        }
        c.finish("nothing after DESTIP ALL")?;
        RawDests::All
    } else {
        let dests = dest_list(&mut c, method)?;
        if method == DistMethod::HotStandby {
            hotstandby_roles(&dests, destip)?;
        }
        RawDests::List(dests)
    };
    Ok(RawDistribute {
        timed_affinity: options.timed_affinity,
        method,
        addr,
        ports,
        dests,
    })
}

/// `DEFINE`, `DISTMETHOD` and `TIMEDAFFINITY` up to the DVIPA address.
fn options(c: &mut Cursor<'_, '_>) -> Result<Options, RawError> {
    let mut options = Options::default();
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
            if options.method.is_some() {
                return Err((t.at, ErrorKind::DuplicateDistMethod));
            }
            options.method = Some(distmethod(c)?);
        } else if TIMEDAFFINITY.matches(t.text) {
            c.next();
            options.timed_affinity = Some(timed_affinity(c)?);
        } else if parse_ipv4(t.text).is_some() {
            return Ok(options);
        } else {
            return Err(c.unexpected(t, "DEFINE, DISTMETHOD, TIMEDAFFINITY, or the DVIPA address"));
        }
    }
}

/// The method after `DISTMETHOD`.
fn distmethod(c: &mut Cursor<'_, '_>) -> Result<DistMethod, RawError> {
    let m = c
        .next()
        .ok_or_else(|| c.missing("the method after DISTMETHOD"))?;
    if BASEWLM.matches(m.text) {
        Ok(DistMethod::BaseWlm)
    } else if ROUNDROBIN.matches(m.text) {
        Ok(DistMethod::RoundRobin)
    } else if WEIGHTEDACTIVE.matches(m.text) {
        Ok(DistMethod::WeightedActive)
    } else if HOTSTANDBY.matches(m.text) {
        Ok(DistMethod::HotStandby)
    } else {
        Err(c.unexpected(
            m,
            "BASEWLM, ROUNDROBIN, WEIGHTEDACTIVE or HOTSTANDBY after DISTMETHOD",
        ))
    }
}

/// The seconds after `TIMEDAFFINITY`: 1 to 99999.
fn timed_affinity(c: &mut Cursor<'_, '_>) -> Result<u32, RawError> {
    let v = c
        .next()
        .ok_or_else(|| c.missing("the seconds after TIMEDAFFINITY"))?;
    match parse_number(v.text) {
        Some(n @ 1..=99_999) => Ok(n as u32),
        _ => Err((
            v.at,
            ErrorKind::AffinityOutOfRange {
                value: v.text.to_owned(),
            },
        )),
    }
}

/// `PORT` and its ports (or `lo-hi` ranges) up to `DESTIP`.
fn ports(c: &mut Cursor<'_, '_>) -> Result<Vec<At<u16>>, RawError> {
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
            Some((lo, hi)) => ports.extend(port_range(t, lo, hi)?),
            None => ports.push(At {
                value: parse_port(t.text, t.at)?,
                at: t.at,
            }),
        }
    }
    if ports.is_empty() {
        return Err(c.missing("a port number after PORT"));
    }
    Ok(ports)
}

/// `lo-hi`: every port from `lo` to `hi`, each placed at the range.
fn port_range(t: Tok<'_>, lo: &str, hi: &str) -> Result<impl Iterator<Item = At<u16>>, RawError> {
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
    let at = t.at;
    Ok((lo_n..=hi_n).map(move |p| At { value: p, at }))
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

/// The destinations after `DESTIP` (not `ALL`), each with its role.
fn dest_list(c: &mut Cursor<'_, '_>, method: DistMethod) -> Result<Vec<RawDest>, RawError> {
    let mut dests = Vec::new();
    while let Some(t) = c.next() {
        if ALL.matches(t.text)
            || [WEIGHT, PREFERRED, BACKUP, PORT, DESTIP]
                .iter()
                .any(|k| k.matches(t.text))
        {
            return Err(c.unexpected(t, "an image name or XCF address; ALL only alone"));
        }
        let role = match c.peek() {
            Some(k) => dest_role(c, k, method)?,
            None => DestRole::Plain,
        };
        dests.push(RawDest {
            text: t.text.to_owned(),
            at: t.at,
            role,
        });
    }
    if dests.is_empty() {
        return Err(c.missing("the destinations after DESTIP (image names, XCF addresses or ALL)"));
    }
    Ok(dests)
}

/// A destination's `WEIGHT w` (WEIGHTEDACTIVE only), `PREFERRED` or
/// `BACKUP rank` (HOTSTANDBY only), if `k` is one of them.
fn dest_role(c: &mut Cursor<'_, '_>, k: Tok<'_>, method: DistMethod) -> Result<DestRole, RawError> {
    if WEIGHT.matches(k.text) {
        c.next();
        if method != DistMethod::WeightedActive {
            return Err((k.at, ErrorKind::WeightWithoutWeightedActive { method }));
        }
        let w = c
            .next()
            .ok_or_else(|| c.missing("the weight after WEIGHT"))?;
        return match parse_number(w.text) {
            Some(n @ 1..=99) => Ok(DestRole::Weight(n as u16)),
            _ => Err((
                w.at,
                ErrorKind::WeightOutOfRange {
                    value: w.text.to_owned(),
                },
            )),
        };
    }
    if !(PREFERRED.matches(k.text) || BACKUP.matches(k.text)) {
        return Ok(DestRole::Plain);
    }
    c.next();
    let keyword = if PREFERRED.matches(k.text) {
        "PREFERRED"
    } else {
        "BACKUP"
    };
    if method != DistMethod::HotStandby {
        return Err((k.at, ErrorKind::RoleWithoutHotStandby { keyword, method }));
    }
    if keyword == "PREFERRED" {
        return Ok(DestRole::Preferred);
    }
    let r = c.next().ok_or_else(|| c.missing("the rank after BACKUP"))?;
    Ok(DestRole::Backup(parse_rank(r)?))
}

/// HOTSTANDBY: exactly one PREFERRED, at least one BACKUP, nothing unmarked.
fn hotstandby_roles(dests: &[RawDest], destip: Tok<'_>) -> Result<(), RawError> {
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
    Ok(())
}
