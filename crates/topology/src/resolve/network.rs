//! The nodes of the plan and their addresses, one validator per table:
//! `[router]` and `[external_lan]`, `[[image]]`, `[cf]`, the images' XCF
//! addresses, and `[hosts]`.

use super::super::error::{ErrorKind, NameKind};
use super::super::file::{CfDef, ImageDef, TopologyFile};
use super::super::model::*;
use super::resolver::{host_fits, Resolver, DEFAULT_CF, DEFAULT_EXT, EXT_HOST_OFFSET, XCF_BASE};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use toml::Spanned;

/// `[router]` and `[external_lan]`: the router's name and the external LAN
/// with its gateway, the router's address on it.
pub(super) fn router_and_external_lan(r: &mut Resolver<'_>, file: &TopologyFile) -> (String, Lan) {
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
    let gateway = ext_def.and_then(|d| d.gateway.as_ref());
    if let Some(g) = gateway {
        if let Some((a, at)) = r.addr(g) {
            if r.on_lan("gateway", a, &external_lan, at) {
                external_lan.gateway = a;
            }
        }
    }
    r.add_lan(external_lan.clone(), 0);
    let gw_what = format!("router {router_name} on the external LAN");
    match gateway {
        Some(g) => r.claim(external_lan.gateway, gw_what, g.span().start),
        None => r.claim_auto(external_lan.gateway, gw_what, 0),
    }
    (router_name, external_lan)
}

/// Every `[[image]]`: its name and external address. The XCF address is
/// the automatic one until [`xcf_addrs`] has seen the LANs.
pub(super) fn images(r: &mut Resolver<'_>, defs: &[ImageDef], ext: &Lan) -> Vec<Image> {
    if defs.is_empty() {
        r.err(0, ErrorKind::NoImages);
    }
    let mut images = Vec::with_capacity(defs.len());
    for (k, def) in defs.iter().enumerate() {
        let k = k as u32 + 1;
        let name = r.name(NameKind::Image, &def.name);
        let ext_addr = image_ext_addr(r, def, k, &name, ext);
        images.push(Image {
            name,
            ext_addr,
            xcf_addr: Ipv4Addr::from(u32::from(XCF_BASE) + k),
            ike: def.ike,
            inbound_filter: def.inbound_filter,
            distribute_crypto: def.distribute_crypto,
            vipa: VipaDynamic::default(),
            ip_security: None,
            limits: Default::default(),
        });
    }
    images
}

/// Image k's `ext_addr`, or host `.10+k` of the external LAN.
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

/// `[cf]`'s name, or `CF`.
pub(super) fn cf_name(r: &mut Resolver<'_>, def: Option<&CfDef>) -> String {
    match def.and_then(|d| d.name.as_ref()) {
        Some(n) => r.name(NameKind::CouplingFacility, n),
        None => r.name_at(NameKind::CouplingFacility, "CF", 0),
    }
}

/// The images' XCF addresses: after the LANs, which they must avoid.
pub(super) fn xcf_addrs(r: &mut Resolver<'_>, defs: &[ImageDef], images: &mut [Image]) {
    for (image, def) in images.iter_mut().zip(defs) {
        let (xcf, at, auto) = match &def.xcf_addr {
            Some(v) => match r.addr(v) {
                Some((a, at)) => (a, at, false),
                None => continue,
            },
            None => (image.xcf_addr, def.name.span().start, true),
        };
        image.xcf_addr = xcf;
        let what = format!("XCF address of {}", image.name);
        r.off_lans(&what, xcf, at);
        r.claim_either(xcf, what, at, auto);
    }
}

/// `[cf]`'s address, or 198.19.255.254; like an XCF address, off the LANs.
pub(super) fn cf_addr(r: &mut Resolver<'_>, def: Option<&CfDef>, cf_name: &str) -> Ipv4Addr {
    let given = def.and_then(|d| d.addr.as_ref());
    let placed = match given {
        Some(v) => r.addr(v),
        None => Some((
            DEFAULT_CF,
            def.and_then(|d| d.name.as_ref())
                .map_or(0, |n| n.span().start),
        )),
    };
    let Some((a, at)) = placed else {
        return DEFAULT_CF;
    };
    let what = format!("coupling facility {cf_name}");
    r.off_lans(&what, a, at);
    r.claim_either(a, what, at, given.is_none());
    a
}

/// The names every /etc/hosts gets: the router, the CF, the images and the
/// clients, then `[hosts]`, whose names must each be a DVIPA. A DVIPA left
/// undefined by a statement that did not parse is not reported
/// (`vipa_syntax_ok` false): that would only repeat the statement's error.
pub(super) fn hosts(
    r: &mut Resolver<'_>,
    named: &BTreeMap<String, Spanned<String>>,
    fixed: Vec<HostName>,
    images: &[Image],
    vipa_syntax_ok: bool,
) -> Vec<HostName> {
    let mut hosts = fixed;
    let mut named: Vec<(&String, &Spanned<String>)> = named.iter().collect();
    named.sort_by_key(|(_, v)| v.span().start);
    for (name, value) in named {
        let at = value.span().start;
        let name = r.name_at(NameKind::Host, name, at);
        let Some((addr, at)) = r.addr(value) else {
            continue;
        };
        if !is_dvipa(images, addr) {
            if vipa_syntax_ok {
                r.err(at, ErrorKind::HostNotDvipa { name, addr });
            }
            continue;
        }
        hosts.push(HostName { name, addr });
    }
    hosts
}

/// Whether some image defines or backs up `addr`.
fn is_dvipa(images: &[Image], addr: Ipv4Addr) -> bool {
    images.iter().any(|i| {
        i.vipa.defines.iter().any(|d| d.addr == addr)
            || i.vipa.backups.iter().any(|b| b.addr == addr)
    })
}
