//! VIPADYNAMIC across images, one validator per statement: VIPADEFINE
//! (owners), VIPABACKUP, VIPARANGE and VIPADISTRIBUTE. The [`vipa`] module
//! parses each image's block; this one checks what the images say
//! together: one owner per DVIPA, a backup only for an owned DVIPA, a
//! distribution only from an image that defines or backs up the DVIPA, and
//! destinations that are images.
//!
//! [`vipa`]: super::super::vipa

use super::super::error::ErrorKind;
use super::super::file::ImageDef;
use super::super::model::*;
use super::super::source::StrMap;
use super::super::statement::parse_ipv4;
use super::super::vipa::{
    self, At, RawBackup, RawDefine, RawDest, RawDests, RawDistribute, RawRange, Statement,
};
use super::resolver::Resolver;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

/// Per-image parse results, in file offsets.
pub(super) struct ImageVipa {
    statements: Vec<At<Statement>>,
    map: Option<StrMap>,
}

impl ImageVipa {
    fn at(&self, i: usize) -> usize {
        self.map.as_ref().map_or(0, |m| m.file_offset(i))
    }
}

/// Parses an image's `vipadynamic`, its errors located in the file.
pub(super) fn parse_image_vipa(r: &mut Resolver<'_>, def: &ImageDef) -> ImageVipa {
    let Some(text) = &def.vipadynamic else {
        return ImageVipa {
            statements: Vec::new(),
            map: None,
        };
    };
    let map = StrMap::new(r.src, text.span(), text.get_ref());
    let (statements, errors) = vipa::parse(text.get_ref());
    for (at, kind) in errors {
        r.err(map.file_offset(at), kind);
    }
    ImageVipa {
        statements,
        map: Some(map),
    }
}

/// What the images have said about DVIPAs so far.
struct Dvipas<'a> {
    ext: &'a Lan,
    /// The image that defines each DVIPA.
    owner: HashMap<Ipv4Addr, usize>,
    /// What each image defines or backs up, for duplicate and distribute checks.
    local: Vec<HashSet<Ipv4Addr>>,
}

/// Owners, backups, distributions and ranges across all images.
pub(super) fn vipa_semantics(
    r: &mut Resolver<'_>,
    images: &mut [Image],
    parsed: &[ImageVipa],
    ext: &Lan,
) {
    let mut dvipas = Dvipas {
        ext,
        owner: HashMap::new(),
        local: vec![HashSet::new(); images.len()],
    };
    // Owners first: a backup or a distribution may come before the owner's
    // VIPADEFINE in file order.
    for (i, pv) in parsed.iter().enumerate() {
        for s in &pv.statements {
            if let Statement::Define(d) = &s.value {
                dvipas.define(r, images, i, pv, d);
            }
        }
    }
    for (i, pv) in parsed.iter().enumerate() {
        for s in &pv.statements {
            match &s.value {
                Statement::Backup(b) => dvipas.backup(r, images, i, pv, b),
                Statement::Range(g) => range(r, &mut images[i], pv, g, ext),
                Statement::Define(_) | Statement::Distribute(_) => {}
            }
        }
    }
    // Distributions last: destinations need every image's name and XCF address.
    let names: Vec<(String, Ipv4Addr)> = images
        .iter()
        .map(|i| (i.name.clone(), i.xcf_addr))
        .collect();
    for (i, pv) in parsed.iter().enumerate() {
        let image = images[i].name.clone();
        let mut distributions = Distributions {
            image: &image,
            local: &dvipas.local[i],
            pv,
            ext,
            names: &names,
            ports_seen: HashSet::new(),
        };
        for s in &pv.statements {
            if let Statement::Distribute(d) = &s.value {
                if let Some(dist) = distributions.check(r, d) {
                    images[i].vipa.distributes.push(dist);
                }
            }
        }
    }
}

impl Dvipas<'_> {
    /// VIPADEFINE on image `i`: each address gets its one owner.
    fn define(
        &mut self,
        r: &mut Resolver<'_>,
        images: &mut [Image],
        i: usize,
        pv: &ImageVipa,
        d: &RawDefine,
    ) {
        for a in &d.addrs {
            let at = pv.at(a.at);
            if !dvipa_on_ext(r, a.value, self.ext, at)
                || self.defined_twice(r, images, i, a.value, at)
            {
                continue;
            }
            if let Some(&o) = self.owner.get(&a.value) {
                let kind = ErrorKind::TwoOwners {
                    addr: a.value,
                    first: images[o].name.clone(),
                    second: images[i].name.clone(),
                };
                r.err(at, kind);
                continue;
            }
            self.owner.insert(a.value, i);
            self.local[i].insert(a.value);
            r.claim(a.value, format!("DVIPA of {}", images[i].name), at);
            images[i].vipa.defines.push(VipaDefine {
                moveable: d.moveable,
                mask: d.mask,
                addr: a.value,
            });
        }
    }

    /// VIPABACKUP on image `i`: each address must have an owner; the mask
    /// defaults to the owner's, MOVEABLE to IMMEDIATE.
    fn backup(
        &mut self,
        r: &mut Resolver<'_>,
        images: &mut [Image],
        i: usize,
        pv: &ImageVipa,
        b: &RawBackup,
    ) {
        for a in &b.addrs {
            let at = pv.at(a.at);
            if !dvipa_on_ext(r, a.value, self.ext, at)
                || self.defined_twice(r, images, i, a.value, at)
            {
                continue;
            }
            let Some(&o) = self.owner.get(&a.value) else {
                let image = images[i].name.clone();
                r.err(
                    at,
                    ErrorKind::BackupWithoutOwner {
                        addr: a.value,
                        image,
                    },
                );
                continue;
            };
            let owner_def = images[o].vipa.defines.iter().find(|d| d.addr == a.value);
            let mask = b
                .mask
                .or(owner_def.map(|d| d.mask))
                .unwrap_or(Ipv4Addr::from(prefix_mask(self.ext.subnet.prefix_len)));
            self.local[i].insert(a.value);
            images[i].vipa.backups.push(VipaBackup {
                rank: b.rank,
                moveable: b.moveable.unwrap_or(Moveable::Immediate),
                mask,
                addr: a.value,
            });
        }
    }

    /// Errors, and says so, if image `i` already defines or backs up `addr`.
    fn defined_twice(
        &self,
        r: &mut Resolver<'_>,
        images: &[Image],
        i: usize,
        addr: Ipv4Addr,
        at: usize,
    ) -> bool {
        let twice = self.local[i].contains(&addr);
        if twice {
            let image = images[i].name.clone();
            r.err(at, ErrorKind::DefinedTwice { addr, image });
        }
        twice
    }
}

/// VIPARANGE: the range must lie inside the external LAN.
fn range(r: &mut Resolver<'_>, image: &mut Image, pv: &ImageVipa, g: &RawRange, ext: &Lan) {
    let at = pv.at(g.addr.at);
    let range = Subnet {
        addr: g.addr.value,
        prefix_len: u32::from(g.mask).leading_ones() as u8,
    };
    if !(ext.subnet.contains(range.addr) && range.prefix_len >= ext.subnet.prefix_len) {
        let kind = ErrorKind::DvipaOutsideLan {
            addr: g.addr.value,
            subnet: ext.subnet,
        };
        r.err(at, kind);
        return;
    }
    image.vipa.ranges.push(VipaRange {
        mask: g.mask,
        addr: g.addr.value,
    });
}

/// One image's VIPADISTRIBUTE statements and what checking them needs.
struct Distributions<'a> {
    image: &'a str,
    /// What the image defines or backs up.
    local: &'a HashSet<Ipv4Addr>,
    pv: &'a ImageVipa,
    ext: &'a Lan,
    /// Every image's name and XCF address: the possible destinations.
    names: &'a [(String, Ipv4Addr)],
    /// Each DVIPA and port distributed so far.
    ports_seen: HashSet<(Ipv4Addr, u16)>,
}

impl Distributions<'_> {
    /// VIPADISTRIBUTE on an image that defines or backs up the DVIPA, each
    /// DVIPA and port distributed once, to known destinations.
    fn check(&mut self, r: &mut Resolver<'_>, d: &RawDistribute) -> Option<VipaDistribute> {
        let addr = d.addr.value;
        if !self.local.contains(&addr) {
            self.undefined(r, d);
            return None;
        }
        let mut ok = self.ports_once(r, d);
        let (dests, all) = match &d.dests {
            RawDests::All => (all_dests(self.names), true),
            RawDests::List(list) => (self.listed_dests(r, list, &mut ok), false),
        };
        ok.then(|| VipaDistribute {
            method: d.method,
            timed_affinity: d.timed_affinity,
            addr,
            ports: d.ports.iter().map(|p| p.value).collect(),
            dests,
            all,
        })
    }

    /// A distribution of a DVIPA the image neither defines nor backs up;
    /// only called undefined if the address itself was acceptable.
    fn undefined(&self, r: &mut Resolver<'_>, d: &RawDistribute) {
        let addr = d.addr.value;
        let kind = if self.ext.subnet.contains(addr) {
            ErrorKind::DistributeUndefined {
                addr,
                image: self.image.to_owned(),
            }
        } else {
            ErrorKind::DvipaOutsideLan {
                addr,
                subnet: self.ext.subnet,
            }
        };
        r.err(self.pv.at(d.addr.at), kind);
    }

    /// Errors at the first port this image already distributes for the DVIPA.
    fn ports_once(&mut self, r: &mut Resolver<'_>, d: &RawDistribute) -> bool {
        for p in &d.ports {
            if !self.ports_seen.insert((d.addr.value, p.value)) {
                let kind = ErrorKind::DuplicateDistribute {
                    addr: d.addr.value,
                    port: p.value,
                    image: self.image.to_owned(),
                };
                r.err(self.pv.at(p.at), kind);
                return false;
            }
        }
        true
    }

    /// DESTIP's images, by name (any case) or XCF address, each once;
    /// clears `ok` at a problem.
    fn listed_dests(&self, r: &mut Resolver<'_>, list: &[RawDest], ok: &mut bool) -> Vec<Dest> {
        let mut dests: Vec<Dest> = Vec::new();
        for raw in list {
            let at = self.pv.at(raw.at);
            let found = self.names.iter().find(|(n, x)| {
                n.eq_ignore_ascii_case(&raw.text) || parse_ipv4(&raw.text) == Some(*x)
            });
            let Some((n, x)) = found else {
                let allowed = allowed_dests(self.names);
                r.err(
                    at,
                    ErrorKind::UnknownDest {
                        dest: raw.text.clone(),
                        allowed,
                    },
                );
                *ok = false;
                continue;
            };
            if dests.iter().any(|d| &d.image == n) {
                r.err(at, ErrorKind::DuplicateDest { image: n.clone() });
                *ok = false;
                continue;
            }
            dests.push(Dest {
                image: n.clone(),
                xcf_addr: *x,
                role: raw.role,
            });
        }
        dests
    }
}

/// DESTIP ALL: every image, in file order.
fn all_dests(names: &[(String, Ipv4Addr)]) -> Vec<Dest> {
    names
        .iter()
        .map(|(n, x)| Dest {
            image: n.clone(),
            xcf_addr: *x,
            role: DestRole::Plain,
        })
        .collect()
}

/// The allowed DESTIP values, for messages: names, and XCF addresses.
fn allowed_dests(names: &[(String, Ipv4Addr)]) -> String {
    let list: Vec<String> = names.iter().map(|(n, x)| format!("{n} ({x})")).collect();
    format!("an image name or its XCF address: {}", list.join(", "))
}

/// A DVIPA must be a host address of the external LAN.
fn dvipa_on_ext(r: &mut Resolver<'_>, addr: Ipv4Addr, ext: &Lan, at: usize) -> bool {
    if !ext.subnet.contains(addr) {
        r.err(
            at,
            ErrorKind::DvipaOutsideLan {
                addr,
                subnet: ext.subnet,
            },
        );
        return false;
    }
    r.on_lan("DVIPA", addr, ext, at)
}
