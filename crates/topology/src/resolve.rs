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
use super::statement::parse_ipv4;
use super::vipa::{self, RawDests, Statement};
use super::{policy, profile};
use std::collections::{HashMap, HashSet};
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

pub(super) struct Resolver<'s> {
    pub(super) src: &'s str,
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
type Placed<T> = (T, usize);

impl<'s> Resolver<'s> {
    /// How many problems were found so far.
    pub(super) fn diag_count(&self) -> usize {
        self.diags.len()
    }

    pub(super) fn err(&mut self, at: usize, kind: ErrorKind) {
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

    /// Records that `what` uses `addr` (written at `at`).
    fn claim(&mut self, addr: Ipv4Addr, what: String, at: usize) {
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
    fn claim_auto(&mut self, addr: Ipv4Addr, what: String, at: usize) {
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
    let gw_what = format!("router {router_name} on the external LAN");
    match ext_def.and_then(|d| d.gateway.as_ref()) {
        Some(g) => r.claim(external_lan.gateway, gw_what, g.span().start),
        None => r.claim_auto(external_lan.gateway, gw_what, 0),
    }

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
            inbound_filter: def.inbound_filter,
            distribute_crypto: def.distribute_crypto,
            vipa: VipaDynamic::default(),
            ip_security: None,
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
                Some((a, at)) => (a, at, false),
                None => continue,
            },
            None => (auto, image_at[i], true),
        };
        images[i].xcf_addr = xcf;
        let what = format!("XCF address of {}", images[i].name);
        r.off_lans(&what, xcf, at);
        if how {
            r.claim_auto(xcf, what, at);
        } else {
            r.claim(xcf, what, at);
        }
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
    let cf_auto = cf_def.and_then(|d| d.addr.as_ref()).is_none();
    let cf_addr = match cf_addr {
        Some((a, at)) => {
            let what = format!("coupling facility {cf_name}");
            r.off_lans(&what, a, at);
            if cf_auto {
                r.claim_auto(a, what, at);
            } else {
                r.claim(a, what, at);
            }
            a
        }
        None => DEFAULT_CF,
    };

    // ---- VIPADYNAMIC ----
    let before_vipa = r.diags.len();
    let parsed: Vec<ImageVipa> = file
        .images
        .iter()
        .map(|def| parse_image_vipa(&mut r, def))
        .collect();
    // A statement that did not parse defines nothing, so checks that need
    // every DVIPA (the [hosts] one) would only report its consequences.
    let vipa_syntax_ok = r.diags.len() == before_vipa;
    vipa_semantics(&mut r, &mut images, &parsed, &external_lan);

    // ---- IP security: profile and Policy Agent policy ----
    for (image, def) in images.iter_mut().zip(&file.images) {
        image.ip_security = parse_image_security(&mut r, def);
    }

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
            if vipa_syntax_ok {
                r.err(at, ErrorKind::HostNotDvipa { name, addr });
            }
            continue;
        }
        hosts.push(HostName { name, addr });
    }

    // ---- manual SAs: need clients, DVIPAs and host names ----
    let manual_sas = super::manual::resolve(&mut r, &file.manual_sas, &clients, &images, &hosts);
    let mut clients = clients;
    let ike = super::ike::resolve(
        &mut r,
        file.ike.as_ref(),
        &file.clients,
        &mut clients,
        &images,
        &hosts,
        &manual_sas,
    );

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
        manual_sas,
        ike,
        xcf_forwarding: file.xcf.map(|x| x.forwarding).unwrap_or_default(),
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
            r.claim_auto(a, what, name_at);
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
            let what = format!("router on {}", lan_label(&lan.name));
            if p.gateway.is_some() {
                r.claim(gw, what, at);
            } else {
                r.claim_auto(gw, what, at);
            }
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
        r.claim_auto(a, format!("client {}", client_names[c]), at);
        addrs[c] = Some(a);
    }

    let ipsec: Vec<ClientIpsec> = file
        .clients
        .iter()
        .map(|def| super::manual::client_ipsec(r, def.ipsec.as_ref()))
        .collect();
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
                ipsec: ipsec[c],
                ike: Vec::new(),
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

/// An image's `profile` and `ipsec_policy`, with their errors located in
/// the file. `None` without a `profile`.
fn parse_image_security(r: &mut Resolver<'_>, def: &ImageDef) -> Option<IpSecurity> {
    let profile = def.profile.as_ref().map(|text| {
        let map = StrMap::new(r.src, text.span(), text.get_ref());
        let src = r.src;
        let (p, errors) =
            profile::parse(text.get_ref(), &|at| line_col(src, map.file_offset(at)).0);
        for (at, kind) in errors {
            r.err(map.file_offset(at), kind);
        }
        p
    });
    let policy = def.ipsec_policy.as_ref().map(|text| {
        let map = StrMap::new(r.src, text.span(), text.get_ref());
        let src = r.src;
        let (p, errors) = policy::parse(text.get_ref(), &|at| line_col(src, map.file_offset(at)).0);
        for (at, kind) in errors {
            r.err(map.file_offset(at), kind);
        }
        if !profile.as_ref().is_some_and(|p| p.ipsecurity) {
            r.err(text.span().start, ErrorKind::PolicyWithoutIpsecurity);
        }
        IpSecPolicy {
            filter_rules: p.filter_rules,
            key_exchange_rules: p.key_exchange_rules,
        }
    });
    let profile = profile?;
    let block = profile.ipsec.unwrap_or_default();
    Some(IpSecurity {
        ipsecurity: profile.ipsecurity,
        dvipsec: block.dvipsec,
        dvlocalfltr: block.dvlocalfltr,
        log_enable: block.log_enable,
        log_implicit: block.log_implicit,
        default_rules: block.rules,
        policy,
    })
}

/// Owners, backups, distributions and ranges across all images.
fn vipa_semantics(r: &mut Resolver<'_>, images: &mut [Image], parsed: &[ImageVipa], ext: &Lan) {
    // Owners first: a backup or a distribution may come before the owner's
    // VIPADEFINE in file order.
    let mut owner: HashMap<Ipv4Addr, usize> = HashMap::new();
    // What each image defines or backs up, for duplicate and distribute checks.
    let mut local: Vec<HashSet<Ipv4Addr>> = vec![HashSet::new(); images.len()];
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
                if local[i].contains(&a.value) {
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
                local[i].insert(a.value);
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
                        if local[i].contains(&a.value) {
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
                        local[i].insert(a.value);
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
                        prefix_len: u32::from(g.mask).leading_ones() as u8,
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
        let mut ports_seen: HashSet<(Ipv4Addr, u16)> = HashSet::new();
        for s in &pv.statements {
            let Statement::Distribute(d) = &s.value else {
                continue;
            };
            let image = images[i].name.clone();
            let addr_at = pv.at(d.addr.at);
            if !local[i].contains(&d.addr.value) {
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
                if !ports_seen.insert((d.addr.value, p.value)) {
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
                    timed_affinity: d.timed_affinity,
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

#[cfg(test)]
mod tests {
    use crate::{load_str, Topology, TopologyError};
    use std::path::Path;

    /// Marks where the first error must point; removed before loading.
    const MARK: char = '‸';

    /// Two images around `body` parts: MVS1 owns DVA1 198.18.0.100 and
    /// distributes port 80 to MVS1 MVS2; tests replace pieces of it.
    const BASE: &str = r#"name = "t"
[hosts]
DVA1 = "198.18.0.100"
[[image]]
name = "MVS1"
vipadynamic = """
VIPADYNAMIC
  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100
  VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN 198.18.0.100 PORT 80 DESTIP MVS1 MVS2
ENDVIPADYNAMIC
"""
[[image]]
name = "MVS2"
[[client]]
name = "client1"
"#;

    fn load(text: &str) -> Result<Topology, TopologyError> {
        load_str(text, Path::new("t.toml"))
    }

    /// Loads `marked` (with one MARK) and checks the first error is exactly
    /// `t.toml:LINE:COL: message` at the mark.
    fn check(marked: &str, message: &str) {
        let at = marked.find(MARK).expect("a mark in the test text");
        let text = marked.replacen(MARK, "", 1);
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        match load(&text) {
            Ok(_) => panic!("loaded, expected t.toml:{line}:{col}: {message}"),
            Err(e) => assert_eq!(e.to_string(), format!("t.toml:{line}:{col}: {message}")),
        }
    }

    /// BASE with `from` replaced by `to` (which carries the mark).
    fn base_with(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "{from} not in BASE");
        BASE.replacen(from, to, 1)
    }

    #[test]
    fn base_loads() {
        let t = load(BASE).expect("BASE loads");
        assert_eq!(t.images.len(), 2);
    }

    #[test]
    fn toml_syntax_error() {
        // toml reports an unterminated string where the line ends.
        check(
            "name = \"t\"\n[[image]]\nname = \"MVS1‸\n",
            "invalid basic string; allowed: TOML laid out as in topologies/figure4.toml",
        );
    }

    #[test]
    fn unknown_toml_key() {
        let text = base_with("name = \"MVS2\"", "name = \"MVS2\"\n‸iek = true");
        check(
            &text,
            "unknown field `iek`, expected one of `name`, `ext_addr`, `xcf_addr`, `ike`, `inbound_filter`, `distribute_crypto`, `vipadynamic`, `profile`, `ipsec_policy`",
        );
    }

    #[test]
    fn xcf_forwarding_defaults_to_gre_and_names_its_choices() {
        use crate::XcfForwarding;
        assert_eq!(load(BASE).unwrap().xcf_forwarding, XcfForwarding::Gre);
        let text = format!("{BASE}\n[xcf]\nforwarding = \"gre-in-udp\"\n");
        assert_eq!(load(&text).unwrap().xcf_forwarding, XcfForwarding::GreInUdp);
        let text = format!("{BASE}\n[xcf]\nforwarding = ‸\"udp\"\n");
        check(
            &text,
            "unknown variant `udp`, expected `gre` or `gre-in-udp`",
        );
    }

    #[test]
    fn wrong_toml_type_and_missing_key() {
        let text = base_with("name = \"MVS2\"", "name = \"MVS2\"\nike = ‸\"yes\"");
        check(&text, "invalid type: string \"yes\", expected a boolean");
        let text = base_with(
            "[[client]]\nname = \"client1\"\n",
            "‸[[client]]\nlan = \"x\"\n",
        );
        check(
            &text,
            "missing field `name`; allowed: TOML laid out as in topologies/figure4.toml",
        );
    }

    #[test]
    fn no_images() {
        check(
            "‸name = \"t\"\n",
            "the topology has no image; allowed: at least one [[image]] table",
        );
    }

    #[test]
    fn bad_names() {
        let text = base_with("name = \"MVS2\"", "name = ‸\"MVS2TOOLONG\"").replacen(
            "DESTIP MVS1 MVS2",
            "DESTIP MVS1",
            1,
        );
        check(
            &text,
            "image name `MVS2TOOLONG` is not valid; allowed: 1 to 8 characters A-Z a-z 0-9 (a z/OS system name), not ALL",
        );
        let text = base_with("name = \"client1\"", "name = ‸\"client_1\"");
        check(
            &text,
            "client name `client_1` is not valid; allowed: 1 to 12 characters A-Z a-z 0-9",
        );
        let text = base_with(
            "name = \"t\"",
            "name = \"t\"\n[router]\nname = ‸\"the-router\"",
        );
        check(
            &text,
            "router name `the-router` is not valid; allowed: 1 to 12 characters A-Z a-z 0-9",
        );
        let text = base_with("name = \"t\"", "name = \"t\"\n[cf]\nname = ‸\"\"");
        check(
            &text,
            "coupling facility name `` is not valid; allowed: 1 to 12 characters A-Z a-z 0-9",
        );
        let text = base_with("name = \"t\"", "name = ‸\"t/../x\"");
        check(
            &text,
            "topology name `t/../x` is not valid; allowed: 1 to 32 characters A-Z a-z 0-9 '-' '_'",
        );
        let text = base_with("DVA1 = \"198.18.0.100\"", "\"DVA_1\" = ‸\"198.18.0.100\"");
        check(
            &text,
            "host name `DVA_1` is not valid; allowed: 1 to 63 characters A-Z a-z 0-9 and '-', starting with a letter or digit",
        );
        let text = base_with("name = \"client1\"", "name = \"client1\"\nlan = ‸\"lan 1\"");
        check(
            &text,
            "LAN name `lan 1` is not valid; allowed: 1 to 12 characters A-Z a-z 0-9",
        );
    }

    #[test]
    fn duplicate_names() {
        let text = base_with("name = \"MVS2\"", "name = ‸\"mvs1\"").replacen(
            "DESTIP MVS1 MVS2",
            "DESTIP MVS1",
            1,
        );
        check(
            &text,
            "name `mvs1` is used twice (first at line 5); allowed: names unique, ignoring case, across images, clients, the router, the CF and [hosts]",
        );
        let text = base_with("name = \"client1\"", "name = ‸\"NET\"");
        check(
            &text,
            "name `NET` is used twice (first at line 1); allowed: names unique, ignoring case, across images, clients, the router, the CF and [hosts]",
        );
        let text = base_with("DVA1 = \"198.18.0.100\"", "MVS2 = ‸\"198.18.0.100\"");
        assert!(load(&text).is_err());
    }

    #[test]
    fn duplicate_lan() {
        let text =
            format!("{BASE}[[client_lan]]\nname = \"lan1\"\n[[client_lan]]\nname = ‸\"LAN1\"\n");
        check(&text, "LAN name `LAN1` is used twice (first at line 17); allowed: one [[client_lan]] per name");
    }

    #[test]
    fn bad_address_subnet() {
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\next_addr = ‸\"198.18.0\"",
        );
        check(
            &text,
            "`198.18.0` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)",
        );
        let text = base_with(
            "name = \"t\"",
            "name = \"t\"\n[external_lan]\nsubnet = ‸\"198.18.0.1/24\"",
        );
        check(
            &text,
            "`198.18.0.1/24` is not a subnet; allowed: address/prefix with zero host bits and a prefix of 8 to 30, such as 198.18.0.0/24",
        );
        let text = base_with("DVA1 = \"198.18.0.100\"", "DVA1 = ‸\"DVA1\"");
        check(
            &text,
            "`DVA1` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)",
        );
    }

    #[test]
    fn outside_benchmark() {
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\nxcf_addr = ‸\"10.0.0.2\"",
        );
        check(
            &text,
            "10.0.0.2 is outside 198.18.0.0/15; allowed: addresses in 198.18.0.0/15 only (RFC 2544 benchmark space, never routed outside the testbed)",
        );
        let text = base_with(
            "name = \"t\"",
            "name = \"t\"\n[external_lan]\nsubnet = ‸\"192.168.0.0/24\"",
        );
        check(
            &text,
            "192.168.0.0 is outside 198.18.0.0/15; allowed: addresses in 198.18.0.0/15 only (RFC 2544 benchmark space, never routed outside the testbed)",
        );
    }

    #[test]
    fn duplicate_addresses() {
        // An explicit address equal to an earlier automatic one.
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\next_addr = ‸\"198.18.0.11\"",
        );
        check(
            &text,
            "external address of MVS2 198.18.0.11 is also used by external address of MVS1 (automatic); allowed: every address used once",
        );
        // A DVIPA equal to an image's address: reported inside the string.
        let text = base_with(
            "IMMEDIATE 255.255.255.0 198.18.0.100",
            "IMMEDIATE 255.255.255.0 198.18.0.100 ‸198.18.0.12",
        );
        check(
            &text,
            "DVIPA of MVS1 198.18.0.12 is also used by external address of MVS2 (automatic); allowed: every address used once",
        );
        let text = base_with(
            "name = \"client1\"",
            "name = \"client1\"\naddr = ‸\"198.18.1.1\"",
        );
        check(
            &text,
            "client client1 198.18.1.1 is also used by router on client LAN client1 (automatic); allowed: every address used once",
        );
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\nxcf_addr = ‸\"198.19.0.1\"",
        );
        check(
            &text,
            "XCF address of MVS2 198.19.0.1 is also used by XCF address of MVS1 (automatic); allowed: every address used once",
        );
    }

    #[test]
    fn not_in_subnet() {
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\next_addr = ‸\"198.18.2.12\"",
        );
        check(
            &text,
            "external address of MVS2 198.18.2.12 is not a host address of the external LAN 198.18.0.0/24; allowed: an address inside 198.18.0.0/24 other than its network and broadcast addresses",
        );
        let text = base_with(
            "name = \"client1\"",
            "name = \"client1\"\naddr = ‸\"198.18.1.255\"",
        );
        check(
            &text,
            "client client1 198.18.1.255 is not a host address of client LAN client1 198.18.1.0/24; allowed: an address inside 198.18.1.0/24 other than its network and broadcast addresses",
        );
    }

    #[test]
    fn xcf_and_cf_outside_lans() {
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\nxcf_addr = ‸\"198.18.0.200\"",
        );
        check(
            &text,
            "XCF address of MVS2 198.18.0.200 lies inside the external LAN 198.18.0.0/24; allowed: XCF and CF addresses outside every LAN subnet",
        );
        let text = base_with("name = \"t\"", "name = \"t\"\n[cf]\naddr = ‸\"198.18.1.9\"");
        check(
            &text,
            "coupling facility CF 198.18.1.9 lies inside client LAN client1 198.18.1.0/24; allowed: XCF and CF addresses outside every LAN subnet",
        );
    }

    #[test]
    fn subnet_overlap() {
        let text =
            format!("{BASE}[[client_lan]]\nname = \"lan1\"\nsubnet = ‸\"198.18.0.128/25\"\n");
        check(
            &text,
            "LAN client LAN lan1 198.18.0.128/25 overlaps the external LAN 198.18.0.0/24; allowed: disjoint LAN subnets",
        );
    }

    #[test]
    fn automatic_lans_avoid_given_ones() {
        let text = format!(
            "{BASE}[[client]]\nname = \"client2\"\nlan = \"lan9\"\n[[client_lan]]\nname = \"lan9\"\nsubnet = \"198.18.1.0/24\"\n"
        );
        let t = load(&text).expect("loads");
        let c1 = t
            .clients
            .iter()
            .find(|c| c.name == "client1")
            .expect("client1");
        assert_eq!(
            t.client_lan(&c1.lan).expect("lan").subnet.to_string(),
            "198.18.2.0/24"
        );
        let c2 = t
            .clients
            .iter()
            .find(|c| c.name == "client2")
            .expect("client2");
        assert_eq!(
            (c2.lan.as_str(), c2.addr.to_string().as_str()),
            ("lan9", "198.18.1.2")
        );
    }

    #[test]
    fn shared_lan_numbers_clients() {
        let text = format!(
            "{BASE}[[client]]\nname = \"client2\"\nlan = \"client1\"\n[[client]]\nname = \"client3\"\nlan = \"client1\"\naddr = \"198.18.1.3\"\n"
        );
        let t = load(&text).expect("loads");
        let addrs: Vec<String> = t.clients.iter().map(|c| c.addr.to_string()).collect();
        assert_eq!(addrs, ["198.18.1.2", "198.18.1.4", "198.18.1.3"]);
        assert_eq!(t.client_lans.len(), 1);
    }

    #[test]
    fn no_room() {
        // A /29 has hosts .1 to .6: MVS1 is placed by hand, MVS2 (.12) does not fit.
        let text = base_with(
            "name = \"t\"",
            "name = \"t\"\n[external_lan]\nsubnet = \"198.18.0.0/29\"",
        )
        .replace("198.18.0.100", "198.18.0.5")
        .replacen("255.255.255.0", "255.255.255.248", 1)
        .replacen(
            "name = \"MVS1\"",
            "name = \"MVS1\"\next_addr = \"198.18.0.2\"",
            1,
        )
        .replacen("name = \"MVS2\"", "name = ‸\"MVS2\"", 1);
        check(
            &text,
            "no room for an automatic external address of MVS2 in 198.18.0.0/29; allowed: give `ext_addr` explicitly, or a larger subnet",
        );
    }

    #[test]
    fn dvipa_outside_lan() {
        let text = base_with(
            "IMMEDIATE 255.255.255.0 198.18.0.100",
            "IMMEDIATE 255.255.255.0 198.18.0.100 ‸198.18.5.1",
        );
        check(
            &text,
            "DVIPA 198.18.5.1 is outside the external LAN 198.18.0.0/24; allowed: DVIPAs inside 198.18.0.0/24, where their owner answers ARP for them",
        );
        let text = base_with(
            "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100\n",
            "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100\n  VIPARANGE 255.255.255.0 ‸198.18.7.0\n",
        );
        check(
            &text,
            "DVIPA 198.18.7.0 is outside the external LAN 198.18.0.0/24; allowed: DVIPAs inside 198.18.0.0/24, where their owner answers ARP for them",
        );
        let text = base_with(
            "IMMEDIATE 255.255.255.0 198.18.0.100",
            "IMMEDIATE 255.255.255.0 198.18.0.100 ‸198.18.0.255",
        );
        check(
            &text,
            "DVIPA 198.18.0.255 is not a host address of the external LAN 198.18.0.0/24; allowed: an address inside 198.18.0.0/24 other than its network and broadcast addresses",
        );
    }

    #[test]
    fn host_not_dvipa() {
        let text = base_with(
            "DVA1 = \"198.18.0.100\"",
            "DVA1 = \"198.18.0.100\"\nDVA2 = ‸\"198.18.0.102\"",
        );
        check(
            &text,
            "[hosts] DVA2 = 198.18.0.102 is not a DVIPA of this topology; allowed: an address some image's VIPADEFINE or VIPABACKUP names (node names are added to the hosts table automatically)",
        );
    }

    #[test]
    fn unknown_dest() {
        let text = base_with("DESTIP MVS1 MVS2", "DESTIP MVS1 ‸MVS7");
        check(
            &text,
            "DESTIP `MVS7` is neither an image nor an image's XCF address; allowed: an image name or its XCF address: MVS1 (198.19.0.1), MVS2 (198.19.0.2), or ALL",
        );
        let text = base_with("DESTIP MVS1 MVS2", "DESTIP MVS1 ‸198.19.0.9");
        check(
            &text,
            "DESTIP `198.19.0.9` is neither an image nor an image's XCF address; allowed: an image name or its XCF address: MVS1 (198.19.0.1), MVS2 (198.19.0.2), or ALL",
        );
    }

    #[test]
    fn dest_by_xcf_address_and_any_case() {
        let text = base_with("DESTIP MVS1 MVS2", "DESTIP mvs1 198.19.0.2");
        let t = load(&text).expect("loads");
        let d = &t.images[0].vipa.distributes[0];
        let names: Vec<&str> = d.dests.iter().map(|d| d.image.as_str()).collect();
        assert_eq!(names, ["MVS1", "MVS2"]);
    }

    #[test]
    fn duplicate_dest() {
        let text = base_with("DESTIP MVS1 MVS2", "DESTIP MVS1 MVS2 ‸198.19.0.1");
        check(
            &text,
            "DESTIP MVS1 is listed twice; allowed: each image once per VIPADISTRIBUTE",
        );
    }

    #[test]
    fn two_owners() {
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\nvipadynamic = \"VIPADYNAMIC VIPADEFINE 255.255.255.0 ‸198.18.0.100 ENDVIPADYNAMIC\"",
        );
        check(
            &text,
            "DVIPA 198.18.0.100 is VIPADEFINEd by MVS1 and by MVS2; allowed: one owner per DVIPA, other images take it over with VIPABACKUP",
        );
    }

    #[test]
    fn defined_twice() {
        let text = base_with(
            "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100\n",
            "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100\n  VIPABACKUP 10 ‸198.18.0.100\n",
        );
        check(
            &text,
            "DVIPA 198.18.0.100 is defined twice in MVS1; allowed: one VIPADEFINE or one VIPABACKUP per DVIPA in an image",
        );
    }

    #[test]
    fn backup_without_owner() {
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\nvipadynamic = '''\nVIPADYNAMIC\n VIPABACKUP 10 ‸198.18.0.101\nENDVIPADYNAMIC\n'''",
        );
        check(
            &text,
            "VIPABACKUP of 198.18.0.101 in MVS2, but no image VIPADEFINEs it; allowed: back up a DVIPA that some image owns with VIPADEFINE",
        );
    }

    #[test]
    fn backup_takes_owner_mask_and_defaults() {
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\nvipadynamic = 'VIPADYN VIPAB 198.18.0.100 ENDVIPADYN'",
        );
        let t = load(&text).expect("loads");
        let b = &t.images[1].vipa.backups[0];
        assert_eq!((b.rank, b.mask.to_string().as_str()), (1, "255.255.255.0"));
        assert_eq!(b.moveable, crate::Moveable::Immediate);
    }

    #[test]
    fn distribute_undefined() {
        let text = base_with(
            "name = \"MVS2\"",
            "name = \"MVS2\"\nvipadynamic = '''\nVIPADYNAMIC\n VIPADIST ‸198.18.0.100 PORT 80 DESTIP ALL\nENDVIPADYNAMIC\n'''",
        );
        check(
            &text,
            "VIPADISTRIBUTE of 198.18.0.100 in MVS2, which neither VIPADEFINEs nor VIPABACKUPs it; allowed: distribute a DVIPA defined or backed up in the same image",
        );
    }

    #[test]
    fn duplicate_distribute() {
        let text = base_with(
            "PORT 80 DESTIP MVS1 MVS2\n",
            "PORT 80 DESTIP MVS1 MVS2\n  VIPADIST 198.18.0.100 PORT 443 ‸80 DESTIP MVS2\n",
        );
        check(
            &text,
            "port 80 of 198.18.0.100 is distributed twice in MVS1; allowed: each DVIPA port in one VIPADISTRIBUTE of an image",
        );
    }

    #[test]
    fn statement_errors_are_located_in_the_file() {
        // Syntax errors inside the vipadynamic string point into the file,
        // past the `"""` and the newline it trims.
        let text = base_with(
            "ENDVIPADYNAMIC",
            "  ‸VIPADELETE 198.18.0.100\nENDVIPADYNAMIC",
        );
        check(
            &text,
            "unknown statement `VIPADELETE`; allowed: VIPADEFine, VIPABackup, VIPADISTribute, VIPARange, ENDVIPADYNamic (the upper-case part is the shortest abbreviation)",
        );
        let text = base_with(
            "DISTMETHOD ROUNDROBIN",
            "DISTMETHOD ROUNDROBIN TIMEDAFFINITY ‸0",
        );
        check(
            &text,
            "TIMEDAFFINITY `0` is out of range; allowed: 1 to 99999 seconds",
        );
        let text = base_with("PORT 80 DESTIP", "PORT 80 ‸70000 DESTIP");
        check(
            &text,
            "port `70000` is out of range; allowed: 1 to 65535, or a range low-high such as 8000-8009",
        );
        let text = base_with(
            "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0",
            "VIPADEFINE MOVEABLE ‸SOON 255.255.255.0",
        );
        check(
            &text,
            "unknown keyword `SOON` in VIPADEFINE; allowed here: IMMEDIATE or WHENIDLE after MOVEABLE",
        );
        let text = base_with(
            "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0",
            "VIPADEFINE MOVEABLE IMMEDIATE ‸255.255.0.255",
        );
        check(
            &text,
            "`255.255.0.255` is not an address mask; allowed: a contiguous netmask such as 255.255.255.0",
        );
        let text = base_with("VIPADYNAMIC\n  VIPADEFINE", "‸VIPADEFINE");
        check(
            &text,
            "expected VIPADYNAMIC, found `VIPADEFINE`; allowed: statements inside a VIPADYNAMIC ... ENDVIPADYNAMIC block",
        );
        let text = base_with("\nENDVIPADYNAMIC\n", "\n");
        let text = text.replacen("VIPADYNAMIC\n  VIPADEFINE", "‸VIPADYNAMIC\n  VIPADEFINE", 1);
        check(
            &text,
            "the VIPADYNAMIC block is not closed; allowed: ENDVIPADYNAMIC after the last statement",
        );
    }

    /// BASE with IP security on MVS1: a profile and a policy (as a literal
    /// string, so that both TOML string kinds are mapped).
    fn secured() -> String {
        base_with(
            "ENDVIPADYNAMIC\n\"\"\"\n",
            concat!(
                "ENDVIPADYNAMIC\n\"\"\"\n",
                "profile = \"\"\"\n",
                "IPCONFIG IPSECURITY\n",
                "IPSEC DVIPSEC\n",
                "  IPSECRULE * * PROTOCOL UDP SRCPORT 500\n",
                "ENDIPSEC\n",
                "\"\"\"\n",
                "ipsec_policy = '''\n",
                "IpFilterRule all\n",
                "{\n",
                "  IpService\n",
                "  {\n",
                "    Protocol All\n",
                "  }\n",
                "  IpGenericFilterActionRef permit\n",
                "}\n",
                "IpGenericFilterAction permit\n",
                "{\n",
                "  IpFilterAction Permit\n",
                "}\n",
                "'''\n",
            ),
        )
    }

    #[test]
    fn ip_security_loads() {
        let t = load(&secured()).expect("loads");
        let sec = t.images[0]
            .ip_security
            .as_ref()
            .expect("MVS1 has IP security");
        assert!(sec.ipsecurity && sec.dvipsec);
        assert_eq!(sec.default_rules.len(), 1);
        let policy = sec.policy.as_ref().expect("a policy");
        assert_eq!(policy.filter_rules[0].name, "all");
        assert!(t.images[1].ip_security.is_none());
    }

    #[test]
    fn ip_security_errors_are_located_in_the_file() {
        let secured = secured();
        // Profile errors point into the profile string.
        check(
            &secured.replacen("SRCPORT 500", "SRCPORT ‸0", 1),
            "port `0` is out of range; allowed: *, a port 1 to 65535, or two ports n m (a range)",
        );
        check(
            &secured
                .replacen("IPCONFIG IPSECURITY\n", "", 1)
                .replacen("IPSEC DVIPSEC", "‸IPSEC DVIPSEC", 1),
            "IPSEC block without IPCONFIG IPSECURITY: z/OS ignores the IPSEC statement then, and the stack does no IP filtering at all; allowed: IPCONFIG IPSECURITY in the same profile, or no IPSEC block",
        );
        // Policy errors point into the policy string.
        check(
            &secured.replacen("IpFilterAction Permit", "IpFilterAction ‸Allow", 1),
            "IpFilterAction `Allow` is not known; allowed: Permit, Deny or IpSec",
        );
        check(
            &secured.replacen("ActionRef permit", "ActionRef ‸permitted", 1),
            "IpGenericFilterActionRef `permitted` names no IpGenericFilterAction statement; allowed: the name of a IpGenericFilterAction statement: permit",
        );
        // A policy with no IPCONFIG IPSECURITY in the image's profile.
        let start = secured.find("profile = ").expect("a profile");
        let end = secured.find("ipsec_policy").expect("a policy");
        let mut no_profile = secured.clone();
        no_profile.replace_range(start..end, "");
        check(
            &no_profile.replacen("ipsec_policy = '''", "ipsec_policy = ‸'''", 1),
            "ipsec_policy without IPCONFIG IPSECURITY in this image's profile: the Policy Agent does not install IPSec policy in such a stack (EZD1579I); allowed: IPCONFIG IPSECURITY in `profile`, or no `ipsec_policy`",
        );
    }

    #[test]
    fn escapes_in_basic_strings_keep_positions() {
        let text = base_with(
            "VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN 198.18.0.100 PORT 80",
            "VIPADISTRIBUTE\\tDEFINE DISTMETHOD ROUNDROBIN 198.18.0.100 PORT ‸0",
        );
        check(
            &text,
            "port `0` is out of range; allowed: 1 to 65535, or a range low-high such as 8000-8009",
        );
    }

    #[test]
    fn all_errors_are_collected_in_file_order() {
        let text = base_with("DESTIP MVS1 MVS2", "DESTIP MVS1 MVS9")
            .replacen(
                "name = \"MVS2\"",
                "name = \"MVS2\"\next_addr = \"1.2.3.4\"",
                1,
            )
            .replacen("name = \"client1\"", "name = \"client_1\"", 1);
        let e = load(&text).expect_err("three problems");
        let lines: Vec<usize> = e.errors().iter().map(|d| d.line).collect();
        assert_eq!(lines, [9, 14, 16]);
        assert_eq!(e.to_string(), e.errors()[0].to_string());
    }
}
