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
//!
//! One validator per table or statement, called from [`resolve`] in an
//! order that matters: names and addresses are claimed first come, first
//! served, and some checks need what earlier ones settled.
//!
//! | what                                   | where              |
//! |----------------------------------------|--------------------|
//! | `[router]`, `[external_lan]`, `[[image]]`, `[cf]`, XCF addresses, `[hosts]` | [`network`] |
//! | `[[client_lan]]`, `[[client]]`         | [`clients`]        |
//! | VIPADEFINE, VIPABACKUP, VIPARANGE, VIPADISTRIBUTE across images | [`dvipa`] |
//! | `profile` (IPCONFIG, IPSEC), `ipsec_policy` | [`security`]  |
//! | `[[manual_sa]]`                        | [`manual`](super::manual) |
//! | `[ike]`, a client's `ike`              | [`ike`](super::ike) |

mod clients;
mod dvipa;
mod network;
mod resolver;
mod security;
#[cfg(test)]
mod tests;

pub(crate) use resolver::Resolver;

use super::error::{NameKind, TopologyError};
use super::file::TopologyFile;
use super::model::*;
use std::path::Path;

/// Resolves a deserialized file. `src` is the file text the spans refer to.
pub(crate) fn resolve(
    src: &str,
    path: &Path,
    file: TopologyFile,
) -> Result<Topology, TopologyError> {
    let mut r = Resolver::new(src, path);
    let name = topology_name(&mut r, &file, path);
    let (router_name, external_lan) = network::router_and_external_lan(&mut r, &file);
    let mut images = network::images(&mut r, &file.images, &external_lan);
    let cf_name = network::cf_name(&mut r, file.cf.as_ref());
    let (client_lans, mut clients) = clients::client_side(&mut r, &file);
    network::xcf_addrs(&mut r, &file.images, &mut images);
    let cf_addr = network::cf_addr(&mut r, file.cf.as_ref(), &cf_name);

    let before_vipa = r.diag_count();
    let parsed: Vec<dvipa::ImageVipa> = file
        .images
        .iter()
        .map(|def| dvipa::parse_image_vipa(&mut r, def))
        .collect();
    // A statement that did not parse defines nothing, so checks that need
    // every DVIPA (the [hosts] one) would only report its consequences.
    let vipa_syntax_ok = r.diag_count() == before_vipa;
    dvipa::vipa_semantics(&mut r, &mut images, &parsed, &external_lan);
    for (image, def) in images.iter_mut().zip(&file.images) {
        image.ip_security = security::parse_image_security(&mut r, def);
    }

    let fixed = fixed_hosts(
        &router_name,
        &external_lan,
        &cf_name,
        cf_addr,
        &images,
        &clients,
    );
    let hosts = network::hosts(&mut r, &file.hosts, fixed, &images, vipa_syntax_ok);
    // Manual SAs need clients, DVIPAs and host names.
    let manual_sas = super::manual::resolve(&mut r, &file.manual_sas, &clients, &images, &hosts);
    let ike = super::ike::resolve(
        &mut r,
        file.ike.as_ref(),
        &file.clients,
        &mut clients,
        &images,
        &hosts,
        &manual_sas,
    );

    let limits = super::limits::resolve(&mut r, file.limits.as_ref());
    for image in &mut images {
        image.limits = limits;
    }

    if let Some(e) = r.finish() {
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
        limits,
    })
}

/// `name`, or the file's stem.
fn topology_name(r: &mut Resolver<'_>, file: &TopologyFile, path: &Path) -> String {
    match &file.name {
        Some(n) => r.name(NameKind::Topology, n),
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            r.name_at(NameKind::Topology, &stem, 0)
        }
    }
}

/// The names of the nodes, which every /etc/hosts gets before `[hosts]`.
fn fixed_hosts(
    router_name: &str,
    external_lan: &Lan,
    cf_name: &str,
    cf_addr: std::net::Ipv4Addr,
    images: &[Image],
    clients: &[Client],
) -> Vec<HostName> {
    let mut hosts = vec![
        HostName {
            name: router_name.to_owned(),
            addr: external_lan.gateway,
        },
        HostName {
            name: cf_name.to_owned(),
            addr: cf_addr,
        },
    ];
    hosts.extend(images.iter().map(|i| HostName {
        name: i.name.clone(),
        addr: i.ext_addr,
    }));
    hosts.extend(clients.iter().map(|c| HostName {
        name: c.name.clone(),
        addr: c.addr,
    }));
    hosts
}
