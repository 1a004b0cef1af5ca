//! From the file as written to the resolved [`Topology`]: assigns the
//! addresses the file left out, parses every image's VIPADYNAMIC block and
//! checks the whole: names, addresses, owners, backups, destinations.
//!
//! # Address plan
//!
//! | what                         | default                                |
//! |------------------------------|----------------------------------------|
//! | external LAN                 | `198.18.0.0/24`, `net` at `.1`          |
//! | image k (1-based, file order)| external LAN host `.10+k`              |
//! | image k's XCF address        | `198.19.0.0 + k` (`198.19.0.k`)        |
//! | coupling facility            | `198.19.255.254`                       |
//! | client LAN j                 | next free `198.18.j.0/24`, `net` at `.1`|
//! | clients on a LAN             | `.2`, `.3`, ... skipping given ones     |
//!
//! Any of them may be given in the file. Everything must lie in
//! 198.18.0.0/15 and be used once; LAN subnets must be disjoint; XCF and CF
//! addresses must lie outside every LAN.
//!
//! Problems are collected, not stopped at: the caller gets all of them,
//! sorted by position.

use super::error::{line_col, Diagnostic, ErrorKind, NameKind, TopologyError};
use super::file::{ClientDef, ImageDef, TopologyFile};
use super::model::*;
use super::source::StrMap;
use super::vipa::{self, parse_ipv4, RawDests, Statement};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use toml::Spanned;

/// 198.18.0.0/15, RFC 2544 section C.2.2: the benchmark test address block.
pub(crate) const BENCHMARK: Subnet = Subnet {
    addr: Ipv4Addr::new(198, 18, 0, 0),
    prefix_len: 15,
};
const DEFAULT_EXT: Subnet = Subnet {
    addr: Ipv4Addr::new(198, 18, 0, 0),
    prefix_len: 24,
};
const XCF_BASE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
const DEFAULT_CF: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 254);
/// Image k's external address is host `EXT_HOST_OFFSET + k`.
const EXT_HOST_OFFSET: u32 = 10;

struct Resolver<'s> {
    src: &'s str,
    path: &'s Path,
    diags: Vec<Diagnostic>,
    /// Node and host names, lower case, with where they were first given.
    names: HashMap<String, usize>,
    /// Every address in use, what uses it, where.
    addrs: HashMap<Ipv4Addr, String>,
    /// Every LAN so far, for overlap checks.
    lans: Vec<Lan>,
}

/// A value from the file with the offset of where it was written (or of the
/// nearest thing that was written, for defaults).
type Placed<T> = (T, usize);

impl<'s> Resolver<'s> {
    fn err(&mut self, at: usize, kind: ErrorKind) {
        let (line, col) = line_col(self.src, at);
        self.diags.push(Diagnostic {
            path: self.path.to_path_buf(),
            line,
            col,
            kind,
        });
    }

    fn name(&mut self, kind: NameKind, name: &Spanned<String>) -> String {
        let at = name.span().start;
        self.name_at(kind, name.get_ref(), at)
    }

    /// Checks a node or host name's syntax and uniqueness (ignoring case).
    fn name_at(&mut self, kind: NameKind, name: &str, at: usize) -> String {
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
    fn addr(&mut self, v: &Spanned<String>) -> Option<Placed<Ipv4Addr>> {
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

    fn benchmark(&mut self, a: Ipv4Addr, at: usize) -> bool {
        let ok = BENCHMARK.contains(a);
        if !ok {
            self.err(at, ErrorKind::OutsideBenchmark { addr: a });
        }
        ok
    }

    fn subnet(&mut self, v: &Spanned<String>) -> Option<Placed<Subnet>> {
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

    /// Records that `what` uses `addr`; errors if something else already does.
    fn claim(&mut self, addr: Ipv4Addr, what: String, at: usize) {
        if let Some(other) = self.addrs.get(&addr) {
            let other = other.clone();
            self.err(at, ErrorKind::DuplicateAddress { addr, what, other });
        } else {
            self.addrs.insert(addr, what);
        }
    }

    /// Checks that `addr` is a host address (not network, not broadcast) of `lan`.
    fn on_lan(&mut self, what: &str, addr: Ipv4Addr, lan: &Lan, at: usize) -> bool {
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
    fn add_lan(&mut self, lan: Lan, at: usize) {
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
    fn off_lans(&mut self, what: &str, addr: Ipv4Addr, at: usize) {
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

fn lan_label(name: &str) -> String {
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
fn host_fits(s: Subnet, n: u32) -> bool {
    n >= 1 && u64::from(n) < subnet_size(s) - 1
}

fn is_host_of(s: Subnet, a: Ipv4Addr) -> bool {
    s.contains(a) && host_fits(s, u32::from(a) & !prefix_mask(s.prefix_len))
}

fn overlaps(a: Subnet, b: Subnet) -> bool {
    a.contains(b.addr) || b.contains(a.addr)
}

/// Per-image parse results, in file offsets.
struct ImageVipa {
    statements: Vec<vipa::At<Statement>>,
    map: Option<StrMap>,
}

impl ImageVipa {
    fn at(&self, i: usize) -> usize {
        self.map.as_ref().map_or(0, |m| m.file_offset(i))
    }
}

/// Resolves a deserialized file. `src` is the file text the spans refer to.
pub(crate) fn resolve(
    src: &str,
    path: &Path,
    file: TopologyFile,
) -> Result<Topology, TopologyError> {
    let mut r = Resolver {
        src,
        path,
        diags: Vec::new(),
        names: HashMap::new(),
        addrs: HashMap::new(),
        lans: Vec::new(),
    };

    let name = match &file.name {
        Some(n) => r.name(NameKind::Topology, n),
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            r.name_at(NameKind::Topology, &stem, 0)
        }
    };

    // ---- router and external LAN ----
    let router_name = match file.router.as_ref().and_then(|d| d.name.as_ref()) {
        Some(n) => r.name(NameKind::Router, n),
        None => r.name_at(NameKind::Router, "net", 0),
    };
    let ext_def = file.external_lan.as_ref();
    let ext_subnet = match ext_def.and_then(|d| d.subnet.as_ref()) {
        Some(s) => r.subnet(s).map_or(DEFAULT_EXT, |(s, _)| s),
        None => DEFAULT_EXT,
    };
    let mut external_lan = Lan {
        name: "ext".to_owned(),
        subnet: ext_subnet,
        gateway: ext_subnet.host(1),
    };
    if let Some(g) = ext_def.and_then(|d| d.gateway.as_ref()) {
        if let Some((a, at)) = r.addr(g) {
            if r.on_lan("gateway", a, &external_lan, at) {
                external_lan.gateway = a;
            }
        }
    }
    r.add_lan(external_lan.clone(), 0);
    let gw_at = ext_def
        .and_then(|d| d.gateway.as_ref())
        .map_or(0, |g| g.span().start);
    r.claim(
        external_lan.gateway,
        format!("router {router_name} on the external LAN"),
        gw_at,
    );

    // ---- images: names and addresses ----
    if file.images.is_empty() {
        r.err(0, ErrorKind::NoImages);
    }
    let mut images: Vec<Image> = Vec::new();
    let mut image_at: Vec<usize> = Vec::new();
    for (k, def) in file.images.iter().enumerate() {
        let k = k as u32 + 1;
        let name = r.name(NameKind::Image, &def.name);
        let name_at = def.name.span().start;
        let ext_addr = image_ext_addr(&mut r, def, k, &name, &external_lan);
        images.push(Image {
            name,
            ext_addr,
            xcf_addr: Ipv4Addr::from(u32::from(XCF_BASE) + k),
            ike: def.ike,
            vipa: VipaDynamic::default(),
        });
        image_at.push(name_at);
    }

    // ---- the CF ----
    let cf_def = file.cf.as_ref();
    let cf_name = match cf_def.and_then(|d| d.name.as_ref()) {
        Some(n) => r.name(NameKind::CouplingFacility, n),
        None => r.name_at(NameKind::CouplingFacility, "CF", 0),
    };

    // ---- client LANs and clients ----
    let (client_lans, clients) = client_side(&mut r, &file);

    // ---- XCF and CF addresses: after the LANs, which they must avoid ----
    for (i, def) in file.images.iter().enumerate() {
        let auto = images[i].xcf_addr;
        let (xcf, at, how) = match &def.xcf_addr {
            Some(v) => match r.addr(v) {
                Some((a, at)) => (a, at, ""),
                None => continue,
            },
            None => (auto, image_at[i], " (automatic)"),
        };
        images[i].xcf_addr = xcf;
        let what = format!("XCF address of {}{how}", images[i].name);
        r.off_lans(&what, xcf, at);
        r.claim(xcf, what, at);
    }
    let cf_addr = match cf_def.and_then(|d| d.addr.as_ref()) {
        Some(v) => r.addr(v),
        None => Some((
            DEFAULT_CF,
            cf_def
                .and_then(|d| d.name.as_ref())
                .map_or(0, |n| n.span().start),
        )),
    };
    let cf_addr = match cf_addr {
        Some((a, at)) => {
            let what = format!("coupling facility {cf_name}");
            r.off_lans(&what, a, at);
            r.claim(a, what, at);
            a
        }
        None => DEFAULT_CF,
    };

    // ---- VIPADYNAMIC ----
    let parsed: Vec<ImageVipa> = file
        .images
        .iter()
        .map(|def| parse_image_vipa(&mut r, def))
        .collect();
    vipa_semantics(&mut r, &mut images, &parsed, &external_lan);

    // ---- hosts ----
    let mut hosts: Vec<HostName> = Vec::new();
    hosts.push(HostName {
        name: router_name.clone(),
        addr: external_lan.gateway,
    });
    hosts.push(HostName {
        name: cf_name.clone(),
        addr: cf_addr,
    });
    hosts.extend(images.iter().map(|i| HostName {
        name: i.name.clone(),
        addr: i.ext_addr,
    }));
    hosts.extend(clients.iter().map(|c| HostName {
        name: c.name.clone(),
        addr: c.addr,
    }));
    let mut named: Vec<(&String, &Spanned<String>)> = file.hosts.iter().collect();
    named.sort_by_key(|(_, v)| v.span().start);
    for (name, value) in named {
        let at = value.span().start;
        let name = r.name_at(NameKind::Host, name, at);
        let Some((addr, at)) = r.addr(value) else {
            continue;
        };
        let is_dvipa = images.iter().any(|i| {
            i.vipa.defines.iter().any(|d| d.addr == addr)
                || i.vipa.backups.iter().any(|b| b.addr == addr)
        });
        if !is_dvipa {
            r.err(at, ErrorKind::HostNotDvipa { name, addr });
            continue;
        }
        hosts.push(HostName { name, addr });
    }

    if let Some(e) = TopologyError::from_diagnostics(std::mem::take(&mut r.diags)) {
        return Err(e);
    }
    Ok(Topology {
        name,
        source: path.to_path_buf(),
        external_lan,
        router: Router { name: router_name },
        cf: CouplingFacility {
            name: cf_name,
            addr: cf_addr,
        },
        images,
        client_lans,
        clients,
        hosts,
    })
}

fn image_ext_addr(r: &mut Resolver<'_>, def: &ImageDef, k: u32, name: &str, ext: &Lan) -> Ipv4Addr {
    let name_at = def.name.span().start;
    let fallback = Ipv4Addr::UNSPECIFIED;
    let what = format!("external address of {name}");
    match &def.ext_addr {
        Some(v) => {
            let Some((a, at)) = r.addr(v) else {
                return fallback;
            };
            if r.on_lan(&what, a, ext, at) {
                r.claim(a, what, at);
            }
            a
        }
        None => {
            let n = EXT_HOST_OFFSET + k;
            if !host_fits(ext.subnet, n) {
                r.err(
                    name_at,
                    ErrorKind::NoRoom {
                        what,
                        subnet: ext.subnet,
                        field: "ext_addr",
                    },
                );
                return fallback;
            }
            let a = ext.subnet.host(n);
            r.claim(a, format!("{what} (automatic)"), name_at);
            a
        }
    }
}

/// Client LANs (declared ones, then one per client that names none or an
/// undeclared one) and clients with their addresses.
fn client_side(r: &mut Resolver<'_>, file: &TopologyFile) -> (Vec<Lan>, Vec<Client>) {
    // Which LAN each client is on, creating implicit LANs as needed.
    struct LanPlan {
        name: String,
        at: usize,
        subnet: Option<Subnet>,
        gateway: Option<Placed<Ipv4Addr>>,
    }
    let mut plans: Vec<LanPlan> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for def in &file.client_lans {
        let at = def.name.span().start;
        let name = r.name(NameKind::Lan, &def.name);
        let key = name.to_ascii_lowercase();
        if key == "ext" {
            r.err(
                at,
                ErrorKind::BadName {
                    kind: NameKind::Lan,
                    name: name.clone(),
                },
            );
        }
        if let Some(&first) = seen.get(&key) {
            let first_line = line_col(r.src, first).0;
            r.err(at, ErrorKind::DuplicateLan { name, first_line });
            continue;
        }
        seen.insert(key, at);
        let subnet = def
            .subnet
            .as_ref()
            .and_then(|s| r.subnet(s))
            .map(|(s, _)| s);
        let gateway = def.gateway.as_ref().and_then(|g| r.addr(g));
        plans.push(LanPlan {
            name,
            at: def.subnet.as_ref().map_or(at, |s| s.span().start),
            subnet,
            gateway,
        });
    }
    let mut client_names = Vec::new();
    let mut lan_of_client = Vec::new();
    for def in &file.clients {
        let name = r.name(NameKind::Client, &def.name);
        let (lan_name, at) = match &def.lan {
            Some(l) => (l.get_ref().clone(), l.span().start),
            None => (name.clone(), def.name.span().start),
        };
        let key = lan_name.to_ascii_lowercase();
        let known = plans
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(&lan_name));
        let idx = match known {
            Some(idx) => idx,
            None => {
                // An implicit LAN; a named one is validated like a declared one.
                let lan_name = if def.lan.is_some() {
                    r.name_at(NameKind::Lan, &lan_name, at)
                } else {
                    lan_name
                };
                seen.insert(key, at);
                plans.push(LanPlan {
                    name: lan_name,
                    at,
                    subnet: None,
                    gateway: None,
                });
                plans.len() - 1
            }
        };
        client_names.push(name);
        lan_of_client.push(idx);
    }

    // Subnets: given ones first (so automatic ones avoid them), then automatic.
    let mut lans: Vec<Option<Lan>> = Vec::with_capacity(plans.len());
    for p in &plans {
        lans.push(p.subnet.map(|subnet| Lan {
            name: p.name.clone(),
            subnet,
            gateway: subnet.host(1),
        }));
    }
    for (i, p) in plans.iter().enumerate() {
        if let Some(lan) = &lans[i] {
            r.add_lan(lan.clone(), p.at);
        }
    }
    let mut next_third = 1u32;
    for (i, p) in plans.iter().enumerate() {
        if lans[i].is_some() {
            continue;
        }
        let found = loop {
            if next_third > 255 {
                break None;
            }
            let candidate = Subnet {
                addr: Ipv4Addr::new(198, 18, next_third as u8, 0),
                prefix_len: 24,
            };
            next_third += 1;
            if !r.lans.iter().any(|l| overlaps(l.subnet, candidate)) {
                break Some(candidate);
            }
        };
        match found {
            Some(subnet) => {
                let lan = Lan {
                    name: p.name.clone(),
                    subnet,
                    gateway: subnet.host(1),
                };
                r.add_lan(lan.clone(), p.at);
                lans[i] = Some(lan);
            }
            None => r.err(
                p.at,
                ErrorKind::NoRoom {
                    what: format!("subnet for {}", lan_label(&p.name)),
                    subnet: BENCHMARK,
                    field: "subnet",
                },
            ),
        }
    }
    // Gateways.
    for (i, p) in plans.iter().enumerate() {
        let Some(lan) = lans[i].as_mut() else {
            continue;
        };
        let (gw, at) = match p.gateway {
            Some((a, at)) => (a, at),
            None => (lan.gateway, p.at),
        };
        let probe = lan.clone();
        if r.on_lan("gateway", gw, &probe, at) {
            lan.gateway = gw;
            r.claim(gw, format!("router on {}", lan_label(&lan.name)), at);
        }
    }

    // Client addresses: given ones first, then automatic from .2.
    let mut addrs: Vec<Option<Ipv4Addr>> = vec![None; file.clients.len()];
    for (c, def) in file.clients.iter().enumerate() {
        let (Some(v), Some(lan)) = (&def.addr, &lans[lan_of_client[c]]) else {
            continue;
        };
        let lan = lan.clone();
        if let Some((a, at)) = r.addr(v) {
            let what = format!("client {}", client_names[c]);
            if r.on_lan(&what, a, &lan, at) {
                r.claim(a, what, at);
                addrs[c] = Some(a);
            }
        }
    }
    let mut next_host: Vec<u32> = vec![2; plans.len()];
    for (c, def) in file.clients.iter().enumerate() {
        if def.addr.is_some() {
            continue;
        }
        let l = lan_of_client[c];
        let Some(lan) = lans[l].clone() else {
            continue;
        };
        let at = def.name.span().start;
        let mut n = next_host[l];
        while host_fits(lan.subnet, n) && r.addrs.contains_key(&lan.subnet.host(n)) {
            n += 1;
        }
        if !host_fits(lan.subnet, n) {
            r.err(
                at,
                ErrorKind::NoRoom {
                    what: format!("address for client {}", client_names[c]),
                    subnet: lan.subnet,
                    field: "addr",
                },
            );
            continue;
        }
        next_host[l] = n + 1;
        let a = lan.subnet.host(n);
        r.claim(a, format!("client {} (automatic)", client_names[c]), at);
        addrs[c] = Some(a);
    }

    let clients = file
        .clients
        .iter()
        .enumerate()
        .filter_map(|(c, _): (usize, &ClientDef)| {
            let lan = lans[lan_of_client[c]].as_ref()?;
            Some(Client {
                name: client_names[c].clone(),
                lan: lan.name.clone(),
                addr: addrs[c]?,
            })
        })
        .collect();
    (lans.into_iter().flatten().collect(), clients)
}

fn parse_image_vipa(r: &mut Resolver<'_>, def: &ImageDef) -> ImageVipa {
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

/// Owners, backups, distributions and ranges across all images.
fn vipa_semantics(r: &mut Resolver<'_>, images: &mut [Image], parsed: &[ImageVipa], ext: &Lan) {
    // Owners first: a backup or a distribution may come before the owner's
    // VIPADEFINE in file order.
    let mut owner: HashMap<Ipv4Addr, usize> = HashMap::new();
    // What each image defines or backs up, for duplicate and distribute checks.
    let mut local: Vec<HashMap<Ipv4Addr, ()>> = vec![HashMap::new(); images.len()];
    for (i, pv) in parsed.iter().enumerate() {
        for s in &pv.statements {
            let Statement::Define(d) = &s.value else {
                continue;
            };
            for a in &d.addrs {
                let at = pv.at(a.at);
                if !dvipa_on_ext(r, a.value, ext, at) {
                    continue;
                }
                if local[i].contains_key(&a.value) {
                    let image = images[i].name.clone();
                    r.err(
                        at,
                        ErrorKind::DefinedTwice {
                            addr: a.value,
                            image,
                        },
                    );
                    continue;
                }
                if let Some(&o) = owner.get(&a.value) {
                    let kind = ErrorKind::TwoOwners {
                        addr: a.value,
                        first: images[o].name.clone(),
                        second: images[i].name.clone(),
                    };
                    r.err(at, kind);
                    continue;
                }
                owner.insert(a.value, i);
                local[i].insert(a.value, ());
                r.claim(a.value, format!("DVIPA of {}", images[i].name), at);
                images[i].vipa.defines.push(VipaDefine {
                    moveable: d.moveable,
                    mask: d.mask,
                    addr: a.value,
                });
            }
        }
    }
    for (i, pv) in parsed.iter().enumerate() {
        for s in &pv.statements {
            match &s.value {
                Statement::Define(_) => {}
                Statement::Backup(b) => {
                    for a in &b.addrs {
                        let at = pv.at(a.at);
                        if !dvipa_on_ext(r, a.value, ext, at) {
                            continue;
                        }
                        let image = images[i].name.clone();
                        if local[i].contains_key(&a.value) {
                            r.err(
                                at,
                                ErrorKind::DefinedTwice {
                                    addr: a.value,
                                    image,
                                },
                            );
                            continue;
                        }
                        let Some(&o) = owner.get(&a.value) else {
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
                            .unwrap_or(Ipv4Addr::from(prefix_mask(ext.subnet.prefix_len)));
                        local[i].insert(a.value, ());
                        images[i].vipa.backups.push(VipaBackup {
                            rank: b.rank,
                            moveable: b.moveable.unwrap_or(Moveable::Immediate),
                            mask,
                            addr: a.value,
                        });
                    }
                }
                Statement::Range(g) => {
                    let at = pv.at(g.addr.at);
                    let range = Subnet {
                        addr: g.addr.value,
                        prefix_len: g.mask.leading_ones_len(),
                    };
                    if !(ext.subnet.contains(range.addr)
                        && range.prefix_len >= ext.subnet.prefix_len)
                    {
                        r.err(
                            at,
                            ErrorKind::DvipaOutsideLan {
                                addr: g.addr.value,
                                subnet: ext.subnet,
                            },
                        );
                        continue;
                    }
                    images[i].vipa.ranges.push(VipaRange {
                        mask: g.mask,
                        addr: g.addr.value,
                    });
                }
                Statement::Distribute(_) => {}
            }
        }
    }
    // Distributions last: destinations need every image's name and XCF address.
    let names: Vec<(String, Ipv4Addr)> = images
        .iter()
        .map(|i| (i.name.clone(), i.xcf_addr))
        .collect();
    for (i, pv) in parsed.iter().enumerate() {
        let mut ports_seen: HashMap<(Ipv4Addr, u16), ()> = HashMap::new();
        for s in &pv.statements {
            let Statement::Distribute(d) = &s.value else {
                continue;
            };
            let image = images[i].name.clone();
            let addr_at = pv.at(d.addr.at);
            if !local[i].contains_key(&d.addr.value) {
                // Only report it if the address itself was acceptable.
                if ext.subnet.contains(d.addr.value) {
                    r.err(
                        addr_at,
                        ErrorKind::DistributeUndefined {
                            addr: d.addr.value,
                            image,
                        },
                    );
                } else {
                    r.err(
                        addr_at,
                        ErrorKind::DvipaOutsideLan {
                            addr: d.addr.value,
                            subnet: ext.subnet,
                        },
                    );
                }
                continue;
            }
            let mut ok = true;
            for p in &d.ports {
                if ports_seen.insert((d.addr.value, p.value), ()).is_some() {
                    let kind = ErrorKind::DuplicateDistribute {
                        addr: d.addr.value,
                        port: p.value,
                        image: image.clone(),
                    };
                    r.err(pv.at(p.at), kind);
                    ok = false;
                    break;
                }
            }
            let (dests, all) = match &d.dests {
                RawDests::All => (
                    names
                        .iter()
                        .map(|(n, x)| Dest {
                            image: n.clone(),
                            xcf_addr: *x,
                            role: DestRole::Plain,
                        })
                        .collect(),
                    true,
                ),
                RawDests::List(list) => {
                    let mut dests: Vec<Dest> = Vec::new();
                    for raw in list {
                        let at = pv.at(raw.at);
                        let found = names.iter().find(|(n, x)| {
                            n.eq_ignore_ascii_case(&raw.text) || parse_ipv4(&raw.text) == Some(*x)
                        });
                        let Some((n, x)) = found else {
                            let allowed = allowed_dests(&names);
                            r.err(
                                at,
                                ErrorKind::UnknownDest {
                                    dest: raw.text.clone(),
                                    allowed,
                                },
                            );
                            ok = false;
                            continue;
                        };
                        if dests.iter().any(|d| &d.image == n) {
                            r.err(at, ErrorKind::DuplicateDest { image: n.clone() });
                            ok = false;
                            continue;
                        }
                        dests.push(Dest {
                            image: n.clone(),
                            xcf_addr: *x,
                            role: raw.role,
                        });
                    }
                    (dests, false)
                }
            };
            if ok {
                images[i].vipa.distributes.push(VipaDistribute {
                    method: d.method,
                    addr: d.addr.value,
                    ports: d.ports.iter().map(|p| p.value).collect(),
                    dests,
                    all,
                });
            }
        }
    }
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

/// Prefix length of a contiguous netmask.
trait MaskLen {
    fn leading_ones_len(&self) -> u8;
}

impl MaskLen for Ipv4Addr {
    fn leading_ones_len(&self) -> u8 {
        u32::from(*self).leading_ones() as u8
    }
}
