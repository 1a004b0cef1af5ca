//! The two ends of a manual SA: the `[[client]]` (which must run plexnet's
//! client) and the DVIPA, and the policy of the images that route it.

use super::super::error::ErrorKind;
use super::super::file::ManualSaDef;
use super::super::model::{Client, ClientIpsec, HostName, Image, ManualSa};
use super::super::resolve::Resolver;
use super::super::statement::parse_ipv4;
use plexnet_core::ipsec::filter::{coverage, Coverage};
use plexnet_core::ipsec::policy::FilterAction;
use std::net::Ipv4Addr;
use toml::Spanned;

/// Every address an image VIPADEFINEs or VIPABACKUPs, in image order: an
/// address defined on one image and backed up on others comes once per image.
pub(in super::super) fn image_dvipas(images: &[Image]) -> impl Iterator<Item = Ipv4Addr> + '_ {
    images.iter().flat_map(|i| {
        i.vipa
            .defines
            .iter()
            .map(|d| d.addr)
            .chain(i.vipa.backups.iter().map(|b| b.addr))
    })
}

/// Every DVIPA once, in the order [`image_dvipas`] meets them.
pub(super) fn distinct_dvipas(images: &[Image]) -> Vec<Ipv4Addr> {
    image_dvipas(images).fold(Vec::new(), |mut v, a| {
        if !v.contains(&a) {
            v.push(a);
        }
        v
    })
}

/// The `[[client]]` a manual SA names; it must run plexnet's client.
pub(super) fn find_client<'c>(
    r: &mut Resolver<'_>,
    def: &ManualSaDef,
    clients: &'c [Client],
) -> Option<&'c Client> {
    let name = def.client.get_ref();
    let at = def.client.span().start;
    let Some(c) = clients.iter().find(|c| c.name.eq_ignore_ascii_case(name)) else {
        let names: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();
        let allowed = if names.is_empty() {
            "none, the topology has no [[client]]".to_owned()
        } else {
            names.join(", ")
        };
        r.err(
            at,
            ErrorKind::UnknownClient {
                name: name.clone(),
                allowed,
            },
        );
        return None;
    };
    if c.ipsec != ClientIpsec::Plexnet {
        r.err(
            at,
            ErrorKind::ClientWithoutIpsec {
                client: c.name.clone(),
                ipsec: c.ipsec.as_str(),
            },
        );
        return None;
    }
    Some(c)
}

/// A `[hosts]` name of a DVIPA, or a DVIPA's address.
pub(in super::super) fn find_dvipa(
    r: &mut Resolver<'_>,
    v: &Spanned<String>,
    dvipas: &[Ipv4Addr],
    hosts: &[HostName],
) -> Option<Ipv4Addr> {
    let text = v.get_ref();
    let addr = parse_ipv4(text).or_else(|| {
        hosts
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(text))
            .map(|h| h.addr)
    });
    match addr {
        Some(a) if dvipas.contains(&a) => Some(a),
        _ => {
            let list: Vec<String> = dvipas
                .iter()
                .map(|d| match hosts.iter().find(|h| h.addr == *d) {
                    Some(h) => format!("{} ({d})", h.name),
                    None => d.to_string(),
                })
                .collect();
            let allowed = if list.is_empty() {
                "none, no image defines a DVIPA".to_owned()
            } else {
                format!(
                    "a DVIPA some image VIPADEFINEs or VIPABACKUPs, by [hosts] name or address: {}",
                    list.join(", ")
                )
            };
            r.err(
                v.span().start,
                ErrorKind::UnknownDvipa {
                    text: text.clone(),
                    allowed,
                },
            );
            None
        }
    }
}

/// A manual SA and the IP security of the images that route its DVIPA
/// (the owner, and the backups that take it over): a stack with `IPCONFIG
/// IPSECURITY` filters the SA's traffic, so, as in z/OS, a manual tunnel
/// needs an IpFilterRule whose action is an IpManVpnAction with the
/// tunnel's endpoints (IP Configuration Reference, page
/// `ipmanvpnactionstatement`), and that rule must be the one the filter
/// table anchors the SA pair at ([`plexnet_core::ipsec::filter::FilterTable::anchor_for`]:
/// the first IPsec rule that covers it). The keys stay in `[[manual_sa]]`.
pub(super) fn check_policy(
    r: &mut Resolver<'_>,
    def: &ManualSaDef,
    sa: &ManualSa,
    images: &[Image],
) {
    let routes = |i: &&Image| {
        i.vipa.defines.iter().any(|d| d.addr == sa.dvipa)
            || i.vipa.backups.iter().any(|b| b.addr == sa.dvipa)
    };
    for image in images.iter().filter(routes) {
        let Some(sec) = image.ip_security.as_ref().filter(|s| s.ipsecurity) else {
            continue;
        };
        let rules = sec
            .policy
            .as_ref()
            .map_or(&sec.default_rules, |p| &p.filter_rules);
        let (out, inb) = (&sa.to_client, &sa.to_dvipa);
        let (Some(out), Some(inb)) = (out.sas().next(), inb.sas().next()) else {
            continue;
        };
        let anchor = rules.iter().find(|rule| {
            rule.action.is_ipsec()
                && coverage(&rule.conditions, &out.selector, &inb.selector) == Coverage::Covers
        });
        let problem = match anchor.map(|rule| (rule, &rule.action)) {
            Some((_, FilterAction::Manual(m)))
                if m.local == sa.dvipa && m.remote == sa.client_addr =>
            {
                continue
            }
            Some((rule, FilterAction::Manual(m))) => format!(
                "the IpManVpnAction {} of IpFilterRule {}, which covers it, has endpoints {} and {}",
                m.name, rule.name, m.local, m.remote
            ),
            Some((rule, _)) => format!(
                "IpFilterRule {}, the first IPsec rule that covers it, has an IpDynVpnAction",
                rule.name
            ),
            None => "no IPsec IpFilterRule covers its traffic".to_owned(),
        };
        r.err(
            def.client.span().start,
            ErrorKind::ManualSaNotInPolicy {
                client: sa.client.clone(),
                addr: sa.client_addr,
                dvipa: sa.dvipa,
                image: image.name.clone(),
                problem,
            },
        );
    }
}
