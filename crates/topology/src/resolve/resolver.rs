//! The [`Resolver`]: where the problems found so far are collected, and
//! the checks every table shares: names, addresses, subnets, who uses which
//! address, which LANs exist.

use super::super::error::{line_col, Diagnostic, ErrorKind, NameKind, TopologyError};
use super::super::model::*;
use super::super::statement::parse_ipv4;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use toml::Spanned;

pub(crate) const BENCHMARK: Subnet = Subnet {
    addr: Ipv4Addr::new(198, 18, 0, 0),
    prefix_len: 15,
};
pub(super) const DEFAULT_EXT: Subnet = Subnet {
    addr: Ipv4Addr::new(198, 18, 0, 0),
    prefix_len: 24,
};
pub(super) const XCF_BASE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
pub(super) const DEFAULT_CF: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 254);
/// Image k's external address is host `EXT_HOST_OFFSET + k`.
pub(super) const EXT_HOST_OFFSET: u32 = 10;

pub(crate) struct Resolver<'s> {
    pub(crate) src: &'s str,
    path: &'s Path,
    diags: Vec<Diagnostic>,
    /// Node and host names, lower case, with where they were first given.
    names: HashMap<String, usize>,
    /// Every address in use: what uses it, where, whether it was assigned
    /// automatically.
    addrs: HashMap<Ipv4Addr, Claim>,
    /// Every LAN so far, for overlap checks.
    lans: Vec<Lan>,
}

/// One use of an address.
#[derive(Debug, Clone)]
struct Claim {
    what: String,
    at: usize,
    auto: bool,
}

/// A value from the file with the offset of where it was written (or of the
/// nearest thing that was written, for defaults).
pub(super) type Placed<T> = (T, usize);

impl<'s> Resolver<'s> {
    pub(super) fn new(src: &'s str, path: &'s Path) -> Self {
        Resolver {
            src,
            path,
            diags: Vec::new(),
            names: HashMap::new(),
            addrs: HashMap::new(),
            lans: Vec::new(),
        }
    }

    /// All the problems found, sorted by position; `None` without any.
    pub(super) fn finish(&mut self) -> Option<TopologyError> {
        TopologyError::from_diagnostics(std::mem::take(&mut self.diags))
    }

    /// Whether `addr` is in use already.
    pub(super) fn is_claimed(&self, addr: Ipv4Addr) -> bool {
        self.addrs.contains_key(&addr)
    }

    /// Whether `subnet` overlaps a LAN registered so far.
    pub(super) fn overlaps_a_lan(&self, subnet: Subnet) -> bool {
        self.lans.iter().any(|l| overlaps(l.subnet, subnet))
    }

    /// How many problems were found so far.
    pub(crate) fn diag_count(&self) -> usize {
        self.diags.len()
    }

    pub(crate) fn err(&mut self, at: usize, kind: ErrorKind) {
        let (line, col) = line_col(self.src, at);
        self.diags.push(Diagnostic {
            path: self.path.to_path_buf(),
            line,
            col,
            kind,
        });
    }

    pub(super) fn name(&mut self, kind: NameKind, name: &Spanned<String>) -> String {
        let at = name.span().start;
        self.name_at(kind, name.get_ref(), at)
    }

    /// Checks a node or host name's syntax and uniqueness (ignoring case).
    pub(super) fn name_at(&mut self, kind: NameKind, name: &str, at: usize) -> String {
        let ok = match kind {
            NameKind::Image => {
                (1..=8).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric())
                    && !name.eq_ignore_ascii_case("ALL")
            }
            NameKind::Client | NameKind::Router | NameKind::CouplingFacility | NameKind::Lan => {
                (1..=12).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric())
            }
            NameKind::Host => {
                (1..=63).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !name.starts_with('-')
            }
            NameKind::Topology => {
                (1..=32).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }
        };
        if !ok {
            self.err(
                at,
                ErrorKind::BadName {
                    kind,
                    name: name.to_owned(),
                },
            );
        } else if !matches!(kind, NameKind::Lan | NameKind::Topology) {
            let key = name.to_ascii_lowercase();
            if let Some(&first) = self.names.get(&key) {
                let first_line = line_col(self.src, first).0;
                self.err(
                    at,
                    ErrorKind::DuplicateName {
                        name: name.to_owned(),
                        first_line,
                    },
                );
            } else {
                self.names.insert(key, at);
            }
        }
        name.to_owned()
    }

    /// Parses an address written in the file; must be in 198.18.0.0/15.
    pub(super) fn addr(&mut self, v: &Spanned<String>) -> Option<Placed<Ipv4Addr>> {
        let at = v.span().start;
        let Some(a) = parse_ipv4(v.get_ref()) else {
            self.err(
                at,
                ErrorKind::BadAddress {
                    text: v.get_ref().clone(),
                },
            );
            return None;
        };
        self.benchmark(a, at).then_some((a, at))
    }

    pub(super) fn benchmark(&mut self, a: Ipv4Addr, at: usize) -> bool {
        let ok = BENCHMARK.contains(a);
        if !ok {
            self.err(at, ErrorKind::OutsideBenchmark { addr: a });
        }
        ok
    }

    pub(super) fn subnet(&mut self, v: &Spanned<String>) -> Option<Placed<Subnet>> {
        let at = v.span().start;
        let Some(s) = parse_subnet(v.get_ref()) else {
            self.err(
                at,
                ErrorKind::BadSubnet {
                    text: v.get_ref().clone(),
                },
            );
            return None;
        };
        if !(BENCHMARK.contains(s.addr) && s.prefix_len >= BENCHMARK.prefix_len) {
            self.err(at, ErrorKind::OutsideBenchmark { addr: s.addr });
            return None;
        }
        Some((s, at))
    }

    /// Records that `what` uses `addr` (written at `at`).
    pub(super) fn claim(&mut self, addr: Ipv4Addr, what: String, at: usize) {
        self.claim_as(
            addr,
            Claim {
                what,
                at,
                auto: false,
            },
        );
    }

    /// Records an automatically assigned address (`at` is its node's name).
    pub(super) fn claim_auto(&mut self, addr: Ipv4Addr, what: String, at: usize) {
        let what = format!("{what} (automatic)");
        self.claim_as(
            addr,
            Claim {
                what,
                at,
                auto: true,
            },
        );
    }

    /// [`Self::claim_auto`] for an address the file left out, else [`Self::claim`].
    pub(super) fn claim_either(&mut self, addr: Ipv4Addr, what: String, at: usize, auto: bool) {
        if auto {
            self.claim_auto(addr, what, at);
        } else {
            self.claim(addr, what, at);
        }
    }

    /// Errors if something else already uses the address. The error goes to
    /// the use the file writes out over an automatic one, else to the later
    /// one in the file, and names the other.
    fn claim_as(&mut self, addr: Ipv4Addr, new: Claim) {
        let Some(old) = self.addrs.get(&addr).cloned() else {
            self.addrs.insert(addr, new);
            return;
        };
        let blame_new = match (old.auto, new.auto) {
            (true, false) => true,
            (false, true) => false,
            _ => new.at >= old.at,
        };
        let (here, there) = if blame_new { (new, old) } else { (old, new) };
        self.err(
            here.at,
            ErrorKind::DuplicateAddress {
                addr,
                what: here.what,
                other: there.what,
            },
        );
    }

    /// Checks that `addr` is a host address (not network, not broadcast) of `lan`.
    pub(super) fn on_lan(&mut self, what: &str, addr: Ipv4Addr, lan: &Lan, at: usize) -> bool {
        let ok = is_host_of(lan.subnet, addr);
        if !ok {
            self.err(
                at,
                ErrorKind::NotInSubnet {
                    what: what.to_owned(),
                    addr,
                    lan: lan_label(&lan.name),
                    subnet: lan.subnet,
                },
            );
        }
        ok
    }

    /// Registers a LAN, checking that it does not overlap any earlier one.
    pub(super) fn add_lan(&mut self, lan: Lan, at: usize) {
        if let Some(other) = self.lans.iter().find(|o| overlaps(o.subnet, lan.subnet)) {
            let kind = ErrorKind::SubnetOverlap {
                lan: lan_label(&lan.name),
                subnet: lan.subnet,
                other: lan_label(&other.name),
                other_subnet: other.subnet,
            };
            self.err(at, kind);
        }
        self.lans.push(lan);
    }

    /// Errors if an XCF or CF address lies on a LAN.
    pub(super) fn off_lans(&mut self, what: &str, addr: Ipv4Addr, at: usize) {
        if let Some(lan) = self.lans.iter().find(|l| l.subnet.contains(addr)) {
            let kind = ErrorKind::InsideLan {
                what: what.to_owned(),
                addr,
                lan: lan_label(&lan.name),
                subnet: lan.subnet,
            };
            self.err(at, kind);
        }
    }
}

pub(super) fn lan_label(name: &str) -> String {
    if name == "ext" {
        "the external LAN".to_owned()
    } else {
        format!("client LAN {name}")
    }
}

/// `a.b.c.d/p` with p in 15..=30 and zero host bits.
pub(crate) fn parse_subnet(text: &str) -> Option<Subnet> {
    let (a, p) = text.split_once('/')?;
    let addr = parse_ipv4(a)?;
    if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix_len: u8 = p.parse().ok()?;
    if !(8..=30).contains(&prefix_len) || u32::from(addr) & !prefix_mask(prefix_len) != 0 {
        return None;
    }
    Some(Subnet { addr, prefix_len })
}

fn subnet_size(s: Subnet) -> u64 {
    1u64 << (32 - u32::from(s.prefix_len))
}

/// Whether `n` is a usable host number in `s` (not network, not broadcast).
pub(super) fn host_fits(s: Subnet, n: u32) -> bool {
    n >= 1 && u64::from(n) < subnet_size(s) - 1
}

fn is_host_of(s: Subnet, a: Ipv4Addr) -> bool {
    s.contains(a) && host_fits(s, u32::from(a) & !prefix_mask(s.prefix_len))
}

fn overlaps(a: Subnet, b: Subnet) -> bool {
    a.contains(b.addr) || b.contains(a.addr)
}
