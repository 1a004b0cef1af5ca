//! What `plexnet up` creates for a topology, decided before anything is
//! created: namespaces, bridges, veth pairs with their addresses, routes and
//! sysctls. A pure function of the topology, so it is unit-tested without root.

use std::net::Ipv4Addr;

use super::state::NodeKind;
use crate::topology::Topology;

/// The TUN each image reads and writes IP packets through.
pub const TUN_NAME: &str = "plx0";
/// An image's link to the external LAN.
pub const EXT_NAME: &str = "ext";
/// An image's link to the coupling facility.
pub const CF_LINK_NAME: &str = "cf";
/// A client's link to its LAN.
pub const CLIENT_LINK_NAME: &str = "lan";
/// The external LAN's bridge in `net`.
pub const EXT_BRIDGE: &str = "br-ext";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dest: Ipv4Addr,
    pub prefix_len: u8,
    pub via: Option<Ipv4Addr>,
}

/// One end of a veth pair.
#[derive(Debug, Clone)]
pub struct End {
    pub ns: String,
    pub ifname: String,
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// Routes out of this end.
    pub routes: Vec<Route>,
    /// The bridge this end is enslaved to.
    pub bridge: Option<String>,
    /// Per-interface sysctls: paths under `/proc/sys` with `IF` standing
    /// for the interface name.
    pub if_sysctls: Vec<(&'static str, &'static str)>,
    /// This end's Ethernet address, when the plan fixes it.
    pub mac: Option<[u8; 6]>,
    /// Permanent neighbour entries (address, Ethernet address) of the
    /// point-to-point links: see [`static_neighbours`].
    pub neighbours: Vec<(Ipv4Addr, [u8; 6])>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    ExternalLan,
    ClientLan,
    Xcf,
    Cf,
}

#[derive(Debug, Clone)]
pub struct Veth {
    pub kind: LinkKind,
    pub a: End,
    pub b: End,
    /// Both ends' MTU when not the default 1500.
    pub mtu: Option<u32>,
}

/// XCF links carry GRE around packets that are already 1500 bytes on the
/// external LAN: room for the 24 bytes more and then some, as real XCF
/// links have large frames.
pub const XCF_MTU: u32 = 9000;

#[derive(Debug, Clone)]
pub struct Bridge {
    pub name: String,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

#[derive(Debug, Clone)]
pub struct NsPlan {
    pub node: String,
    pub kind: NodeKind,
    pub ns: String,
    /// Namespace-wide sysctls (paths under `/proc/sys`), set before any link
    /// exists so `conf/default` reaches the new links.
    pub sysctls: Vec<(&'static str, &'static str)>,
    pub bridges: Vec<Bridge>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub namespaces: Vec<NsPlan>,
    pub veths: Vec<Veth>,
    /// `/etc/hosts` for every namespace.
    pub hosts: String,
}

/// The namespace of a node: `<prefix><node in lower case>`.
pub fn ns_name(prefix: &str, node: &str) -> String {
    format!("{prefix}{}", node.to_lowercase())
}

const NO_IPV6: [(&str, &str); 2] = [
    // No IPv6 noise (DAD, router solicitations) in users' captures.
    ("net/ipv6/conf/all/disable_ipv6", "1"),
    ("net/ipv6/conf/default/disable_ipv6", "1"),
];

fn ns_sysctls(kind: NodeKind) -> Vec<(&'static str, &'static str)> {
    let mut s = NO_IPV6.to_vec();
    match kind {
        NodeKind::Image => {
            s.push(("net/ipv4/ip_forward", "1"));
            // Images receive GRE from XCF links and write packets with DVIPA
            // sources into their TUN: strict reverse-path checks would drop them.
            s.push(("net/ipv4/conf/all/rp_filter", "0"));
            s.push(("net/ipv4/conf/default/rp_filter", "0"));
            // Early demux hands a segment of a known connection straight to
            // its socket, skipping the policy rules that must route
            // everything for an owned DVIPA through the TUN first.
            s.push(("net/ipv4/ip_early_demux", "0"));
            s.push(("net/ipv4/tcp_early_demux", "0"));
            s.push(("net/ipv4/udp_early_demux", "0"));
        }
        NodeKind::Router => {
            s.push(("net/ipv4/ip_forward", "1"));
            s.push(("net/ipv4/conf/all/rp_filter", "0"));
            s.push(("net/ipv4/conf/default/rp_filter", "0"));
        }
        // strongSwan's host-to-host tunnels need loose mode (docs/ARCHITECTURE.md).
        NodeKind::Client => {
            s.push(("net/ipv4/conf/all/rp_filter", "2"));
            s.push(("net/ipv4/conf/default/rp_filter", "2"));
        }
        NodeKind::Cf => {}
    }
    s
}

/// Only the DVIPA's owner may answer ARP for it (proxy ARP, the DVIPA routed
/// into its TUN); targets must never answer for the DVIPA they hold on `lo`
/// (the LVS direct-routing rule of docs/ARCHITECTURE.md).
const IMAGE_EXT_SYSCTLS: [(&str, &str); 4] = [
    ("net/ipv4/conf/IF/proxy_arp", "1"),
    // Linux delays proxy ARP replies by up to proxy_delay (0.8 s by
    // default): a first ping would look like a slow cluster.
    ("net/ipv4/neigh/IF/proxy_delay", "0"),
    ("net/ipv4/conf/IF/arp_ignore", "1"),
    ("net/ipv4/conf/IF/arp_announce", "2"),
];

fn host(addr: Ipv4Addr) -> (Ipv4Addr, u8) {
    (addr, 32)
}

fn route_host(dest: Ipv4Addr) -> Route {
    Route {
        dest,
        prefix_len: 32,
        via: None,
    }
}

fn default_via(gw: Ipv4Addr) -> Route {
    Route {
        dest: Ipv4Addr::UNSPECIFIED,
        prefix_len: 0,
        via: Some(gw),
    }
}

fn end(ns: &str, ifname: String) -> End {
    End {
        ns: ns.to_string(),
        ifname,
        addrs: Vec::new(),
        routes: Vec::new(),
        bridge: None,
        if_sysctls: Vec::new(),
        mac: None,
        neighbours: Vec::new(),
    }
}

/// A locally administered unicast Ethernet address (IEEE 802 bit 1 of
/// the first octet set) for end `side` (0 or 1) of the plan's veth number
/// `veth`: unique within a lab, and the same on every `up`.
pub fn veth_mac(veth: usize, side: u8) -> [u8; 6] {
    let v = veth as u32;
    [0x02, 0x70, (v >> 16) as u8, (v >> 8) as u8, v as u8, side]
}

/// XCF and CF links are point-to-point, as a real XCF signalling path or
/// CF link is: each end knows the other's address from the plan, so both
/// get a permanent neighbour entry and nothing on them runs ARP.
///
/// Why it matters: the kernel's IPv4 neighbour table is one table for
/// every namespace of the host, and its `gc_thresh3` (1024 by default)
/// bounds all of them together. The XCF full mesh needs N(N-1) entries
/// (992 at 32 images): resolved by ARP, a 32-image sysplex filled the
/// table, and the kernel then dropped, without a counter of ours, what
/// needed a new entry: the client's IKE_SA_INIT at `net`, a target's CF
/// request, a SYN-ACK. Permanent entries are exempt from that limit.
fn static_neighbours(veth: &mut Veth, index: usize) {
    let (mac_a, mac_b) = (veth_mac(index, 0), veth_mac(index, 1));
    let addr = |e: &End| e.addrs.first().map(|(a, _)| *a);
    let (addr_a, addr_b) = (addr(&veth.a), addr(&veth.b));
    veth.a.mac = Some(mac_a);
    veth.b.mac = Some(mac_b);
    veth.a.neighbours.extend(addr_b.map(|b| (b, mac_b)));
    veth.b.neighbours.extend(addr_a.map(|a| (a, mac_a)));
}

pub fn plan(topo: &Topology, prefix: &str) -> Plan {
    let ns = |node: &str| ns_name(prefix, node);
    let net_ns = ns(&topo.router.name);
    let cf_ns = ns(&topo.cf.name);
    let ext = &topo.external_lan;

    let mut namespaces = vec![NsPlan {
        node: topo.router.name.clone(),
        kind: NodeKind::Router,
        ns: net_ns.clone(),
        sysctls: ns_sysctls(NodeKind::Router),
        bridges: topo
            .lans()
            .map(|lan| Bridge {
                name: bridge_name(&lan.name),
                addr: lan.gateway,
                prefix_len: lan.subnet.prefix_len,
            })
            .collect(),
    }];
    let node = |name: &str, kind| NsPlan {
        node: name.to_string(),
        kind,
        ns: ns(name),
        sysctls: ns_sysctls(kind),
        bridges: Vec::new(),
    };
    namespaces.push(node(&topo.cf.name, NodeKind::Cf));
    namespaces.extend(topo.images.iter().map(|i| node(&i.name, NodeKind::Image)));
    namespaces.extend(topo.clients.iter().map(|c| node(&c.name, NodeKind::Client)));

    let mut veths = Vec::new();
    for image in &topo.images {
        let ins = ns(&image.name);
        let mut a = end(&ins, EXT_NAME.into());
        a.addrs.push((image.ext_addr, ext.subnet.prefix_len));
        a.routes.push(default_via(ext.gateway));
        a.if_sysctls = IMAGE_EXT_SYSCTLS.to_vec();
        let mut b = end(&net_ns, format!("e-{}", image.name.to_lowercase()));
        b.bridge = Some(EXT_BRIDGE.into());
        veths.push(Veth {
            kind: LinkKind::ExternalLan,
            a,
            b,
            mtu: None,
        });
    }
    for client in &topo.clients {
        let Some(lan) = topo.client_lan(&client.lan) else {
            continue;
        };
        let mut a = end(&ns(&client.name), CLIENT_LINK_NAME.into());
        a.addrs.push((client.addr, lan.subnet.prefix_len));
        a.routes.push(default_via(lan.gateway));
        let mut b = end(&net_ns, format!("c-{}", client.name.to_lowercase()));
        b.bridge = Some(bridge_name(&lan.name));
        veths.push(Veth {
            kind: LinkKind::ClientLan,
            a,
            b,
            mtu: None,
        });
    }
    // XCF: a full mesh of point-to-point links, the image's one XCF address
    // on each, as z/OS dynamic XCF gives every stack one address.
    for (i, x) in topo.images.iter().enumerate() {
        for y in &topo.images[i + 1..] {
            let mut a = end(&ns(&x.name), format!("x-{}", y.name.to_lowercase()));
            a.addrs.push(host(x.xcf_addr));
            a.routes.push(route_host(y.xcf_addr));
            let mut b = end(&ns(&y.name), format!("x-{}", x.name.to_lowercase()));
            b.addrs.push(host(y.xcf_addr));
            b.routes.push(route_host(x.xcf_addr));
            veths.push(Veth {
                kind: LinkKind::Xcf,
                a,
                b,
                mtu: Some(XCF_MTU),
            });
        }
    }
    for image in &topo.images {
        let mut a = end(&ns(&image.name), CF_LINK_NAME.into());
        a.addrs.push(host(image.xcf_addr));
        a.routes.push(route_host(topo.cf.addr));
        let mut b = end(&cf_ns, format!("i-{}", image.name.to_lowercase()));
        b.addrs.push(host(topo.cf.addr));
        b.routes.push(route_host(image.xcf_addr));
        veths.push(Veth {
            kind: LinkKind::Cf,
            a,
            b,
            mtu: None,
        });
    }
    for (i, v) in veths.iter_mut().enumerate() {
        if matches!(v.kind, LinkKind::Xcf | LinkKind::Cf) {
            static_neighbours(v, i);
        }
    }
    Plan {
        namespaces,
        veths,
        hosts: hosts_file(topo),
    }
}

pub fn bridge_name(lan: &str) -> String {
    format!("br-{}", lan.to_lowercase())
}

fn hosts_file(topo: &Topology) -> String {
    let mut s = format!(
        "# written by plexnet up for topology {}\n127.0.0.1\tlocalhost\n",
        topo.name
    );
    for h in &topo.hosts {
        s.push_str(&format!("{}\t{}\n", h.addr, h.name));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology;
    use std::path::Path;

    fn figure4() -> Plan {
        let topo = topology::load(Path::new("topologies/figure4.toml")).expect("figure4 loads");
        plan(&topo, "plx-")
    }

    #[test]
    fn figure4_has_every_node_and_link() {
        let p = figure4();
        let ns: Vec<&str> = p.namespaces.iter().map(|n| n.ns.as_str()).collect();
        assert_eq!(
            ns,
            [
                "plx-net",
                "plx-cf",
                "plx-mvs1",
                "plx-mvs2",
                "plx-mvs3",
                "plx-mvs4",
                "plx-mvs5",
                "plx-client1",
                "plx-client2"
            ]
        );
        let count = |k| p.veths.iter().filter(|v| v.kind == k).count();
        assert_eq!(count(LinkKind::ExternalLan), 5);
        assert_eq!(count(LinkKind::ClientLan), 2);
        assert_eq!(count(LinkKind::Xcf), 10, "a full mesh of 5 images");
        assert_eq!(count(LinkKind::Cf), 5);
    }

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        let topo = topology::load_str(
            &topology::generate(32).expect("32 in range"),
            Path::new("gen.toml"),
        )
        .expect("loads");
        let p = plan(&topo, "plx-");
        for v in &p.veths {
            for e in [&v.a, &v.b] {
                assert!(e.ifname.len() <= 15, "{} too long", e.ifname);
            }
        }
        assert_eq!(
            p.veths.iter().filter(|v| v.kind == LinkKind::Xcf).count(),
            32 * 31 / 2
        );
    }

    #[test]
    fn xcf_link_carries_both_xcf_addresses_and_host_routes() {
        let p = figure4();
        let v = p
            .veths
            .iter()
            .find(|v| v.kind == LinkKind::Xcf && v.a.ns == "plx-mvs1" && v.b.ns == "plx-mvs2")
            .expect("MVS1-MVS2 XCF link");
        assert_eq!(
            (v.a.ifname.as_str(), v.b.ifname.as_str()),
            ("x-mvs2", "x-mvs1")
        );
        assert_eq!(v.a.addrs, [(Ipv4Addr::new(198, 19, 0, 1), 32)]);
        assert_eq!(v.a.routes, [route_host(Ipv4Addr::new(198, 19, 0, 2))]);
        assert_eq!(v.b.routes, [route_host(Ipv4Addr::new(198, 19, 0, 1))]);
    }

    #[test]
    fn images_proxy_arp_on_ext_and_clients_use_loose_rp_filter() {
        let p = figure4();
        let ext = p
            .veths
            .iter()
            .find(|v| v.kind == LinkKind::ExternalLan && v.a.ns == "plx-mvs1")
            .expect("MVS1 ext");
        assert!(ext
            .a
            .if_sysctls
            .contains(&("net/ipv4/conf/IF/proxy_arp", "1")));
        assert!(ext
            .a
            .if_sysctls
            .contains(&("net/ipv4/conf/IF/arp_ignore", "1")));
        assert_eq!(ext.b.bridge.as_deref(), Some(EXT_BRIDGE));
        assert_eq!(ext.a.routes, [default_via(Ipv4Addr::new(198, 18, 0, 1))]);
        let client = p
            .namespaces
            .iter()
            .find(|n| n.kind == NodeKind::Client)
            .expect("client");
        assert!(client
            .sysctls
            .contains(&("net/ipv4/conf/all/rp_filter", "2")));
    }

    #[test]
    fn point_to_point_links_know_their_peer_without_arp() {
        let p = figure4();
        let v = p
            .veths
            .iter()
            .find(|v| v.kind == LinkKind::Xcf && v.a.ns == "plx-mvs1" && v.b.ns == "plx-mvs2")
            .expect("MVS1-MVS2 XCF link");
        let (a, b) = (v.a.mac.expect("a's MAC"), v.b.mac.expect("b's MAC"));
        assert_ne!(a, b);
        assert_eq!(a[0] & 0x03, 0x02, "locally administered unicast");
        assert_eq!(v.a.neighbours, [(Ipv4Addr::new(198, 19, 0, 2), b)]);
        assert_eq!(v.b.neighbours, [(Ipv4Addr::new(198, 19, 0, 1), a)]);
        let cf = p
            .veths
            .iter()
            .find(|v| v.kind == LinkKind::Cf && v.a.ns == "plx-mvs1")
            .expect("MVS1's CF link");
        assert_eq!(cf.a.neighbours[0].0, Ipv4Addr::new(198, 19, 255, 254));
        assert_eq!(cf.b.neighbours[0].0, Ipv4Addr::new(198, 19, 0, 1));
        let macs: std::collections::BTreeSet<_> = p
            .veths
            .iter()
            .flat_map(|v| [v.a.mac, v.b.mac])
            .flatten()
            .collect();
        let ends = p.veths.iter().filter(|v| v.a.mac.is_some()).count() * 2;
        assert_eq!(macs.len(), ends, "every MAC once");
        let ext = p.veths.iter().find(|v| v.kind == LinkKind::ExternalLan);
        assert!(
            ext.is_some_and(|v| v.a.neighbours.is_empty()),
            "the LANs keep ARP"
        );
    }

    #[test]
    fn hosts_file_names_the_dvipas() {
        let hosts = figure4().hosts;
        assert!(hosts.contains("198.18.0.100\tDVA1\n"), "{hosts}");
        assert!(hosts.contains("198.18.0.101\tDVB1\n"), "{hosts}");
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
    }
}
