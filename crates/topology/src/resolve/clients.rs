//! The client side of the plan: `[[client_lan]]` (declared LANs) and
//! `[[client]]`, each on a declared LAN, on one named in its `lan` that
//! no table declares, or on its own LAN.

use super::super::error::{line_col, ErrorKind, NameKind};
use super::super::file::{ClientDef, ClientLanDef, TopologyFile};
use super::super::model::*;
use super::resolver::{host_fits, lan_label, Placed, Resolver, BENCHMARK};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// A client LAN before its subnet is settled.
struct LanPlan {
    name: String,
    at: usize,
    subnet: Option<Subnet>,
    gateway: Option<Placed<Ipv4Addr>>,
}

/// A client before its address is settled: its name and its LAN's index.
struct ClientPlan {
    name: String,
    lan: usize,
}

/// Client LANs (declared ones, then one per client that names none or an
/// undeclared one) and clients with their addresses.
pub(super) fn client_side(r: &mut Resolver<'_>, file: &TopologyFile) -> (Vec<Lan>, Vec<Client>) {
    let mut plans = declared_lans(r, &file.client_lans);
    let clients: Vec<ClientPlan> = file
        .clients
        .iter()
        .map(|def| client_plan(r, def, &mut plans))
        .collect();
    let mut lans = lan_subnets(r, &plans);
    lan_gateways(r, &plans, &mut lans);
    let addrs = client_addrs(r, &file.clients, &clients, &lans);
    let ipsec: Vec<ClientIpsec> = file
        .clients
        .iter()
        .map(|def| super::super::manual::client_ipsec(r, def.ipsec.as_ref()))
        .collect();
    let clients = clients
        .into_iter()
        .enumerate()
        .filter_map(|(c, plan)| {
            let lan = lans[plan.lan].as_ref()?;
            Some(Client {
                name: plan.name,
                lan: lan.name.clone(),
                addr: addrs[c]?,
                ipsec: ipsec[c],
                ike: Vec::new(),
            })
        })
        .collect();
    (lans.into_iter().flatten().collect(), clients)
}

/// Every `[[client_lan]]`: a name of its own (not `ext`, not twice).
fn declared_lans(r: &mut Resolver<'_>, defs: &[ClientLanDef]) -> Vec<LanPlan> {
    let mut plans: Vec<LanPlan> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for def in defs {
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
    plans
}

/// One `[[client]]`'s name and LAN, adding an implicit LAN when it names
/// none (its own, named after it) or one that no `[[client_lan]]` declares.
fn client_plan(r: &mut Resolver<'_>, def: &ClientDef, plans: &mut Vec<LanPlan>) -> ClientPlan {
    let name = r.name(NameKind::Client, &def.name);
    let (lan_name, at) = match &def.lan {
        Some(l) => (l.get_ref().clone(), l.span().start),
        None => (name.clone(), def.name.span().start),
    };
    let known = plans
        .iter()
        .position(|p| p.name.eq_ignore_ascii_case(&lan_name));
    let lan = match known {
        Some(idx) => idx,
        None => {
            // An implicit LAN; a named one is validated like a declared one.
            let lan_name = if def.lan.is_some() {
                r.name_at(NameKind::Lan, &lan_name, at)
            } else {
                lan_name
            };
            plans.push(LanPlan {
                name: lan_name,
                at,
                subnet: None,
                gateway: None,
            });
            plans.len() - 1
        }
    };
    ClientPlan { name, lan }
}

/// Subnets: given ones first (so automatic ones avoid them), then automatic.
fn lan_subnets(r: &mut Resolver<'_>, plans: &[LanPlan]) -> Vec<Option<Lan>> {
    let mut lans: Vec<Option<Lan>> = plans
        .iter()
        .map(|p| p.subnet.map(|subnet| lan_on(&p.name, subnet)))
        .collect();
    for (p, lan) in plans.iter().zip(&lans) {
        if let Some(lan) = lan {
            r.add_lan(lan.clone(), p.at);
        }
    }
    let mut next_third = 1u32;
    for (p, slot) in plans.iter().zip(lans.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        match next_free_subnet(r, &mut next_third) {
            Some(subnet) => {
                let lan = lan_on(&p.name, subnet);
                r.add_lan(lan.clone(), p.at);
                *slot = Some(lan);
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
    lans
}

/// A LAN with the router at `.1`.
fn lan_on(name: &str, subnet: Subnet) -> Lan {
    Lan {
        name: name.to_owned(),
        subnet,
        gateway: subnet.host(1),
    }
}

/// The next `198.18.j.0/24`, from `j = *next_third` on, that overlaps no LAN.
fn next_free_subnet(r: &Resolver<'_>, next_third: &mut u32) -> Option<Subnet> {
    while *next_third <= 255 {
        let candidate = Subnet {
            addr: Ipv4Addr::new(198, 18, *next_third as u8, 0),
            prefix_len: 24,
        };
        *next_third += 1;
        if !r.overlaps_a_lan(candidate) {
            return Some(candidate);
        }
    }
    None
}

/// Each LAN's router address: the given gateway, or `.1`.
fn lan_gateways(r: &mut Resolver<'_>, plans: &[LanPlan], lans: &mut [Option<Lan>]) {
    for (p, lan) in plans.iter().zip(lans.iter_mut()) {
        let Some(lan) = lan.as_mut() else {
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
            r.claim_either(gw, what, at, p.gateway.is_none());
        }
    }
}

/// Client addresses: given ones first, then automatic from `.2`.
fn client_addrs(
    r: &mut Resolver<'_>,
    defs: &[ClientDef],
    clients: &[ClientPlan],
    lans: &[Option<Lan>],
) -> Vec<Option<Ipv4Addr>> {
    let mut addrs: Vec<Option<Ipv4Addr>> = vec![None; defs.len()];
    for ((def, plan), addr) in defs.iter().zip(clients).zip(addrs.iter_mut()) {
        let (Some(v), Some(lan)) = (&def.addr, &lans[plan.lan]) else {
            continue;
        };
        if let Some((a, at)) = r.addr(v) {
            let what = format!("client {}", plan.name);
            if r.on_lan(&what, a, lan, at) {
                r.claim(a, what, at);
                *addr = Some(a);
            }
        }
    }
    let mut next_host: Vec<u32> = vec![2; lans.len()];
    for ((def, plan), addr) in defs.iter().zip(clients).zip(addrs.iter_mut()) {
        let Some(lan) = lans[plan.lan].as_ref().filter(|_| def.addr.is_none()) else {
            continue;
        };
        let at = def.name.span().start;
        *addr = automatic_client_addr(r, lan, &plan.name, &mut next_host[plan.lan], at);
    }
    addrs
}

/// The first free host of `lan` from `*next` on, for a client that gives no
/// address; moves `*next` past it.
fn automatic_client_addr(
    r: &mut Resolver<'_>,
    lan: &Lan,
    client: &str,
    next: &mut u32,
    at: usize,
) -> Option<Ipv4Addr> {
    let mut n = *next;
    while host_fits(lan.subnet, n) && r.is_claimed(lan.subnet.host(n)) {
        n += 1;
    }
    if !host_fits(lan.subnet, n) {
        r.err(
            at,
            ErrorKind::NoRoom {
                what: format!("address for client {client}"),
                subnet: lan.subnet,
                field: "addr",
            },
        );
        return None;
    }
    *next = n + 1;
    let a = lan.subnet.host(n);
    r.claim_auto(a, format!("client {client}"), at);
    Some(a)
}
