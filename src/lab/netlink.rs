//! Links, addresses and routes of one namespace over rtnetlink.

use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkInfo};
use netlink_packet_route::route::{RouteAttribute, RouteMetric};
use netlink_packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::Handle;
use rtnetlink::IpVersion;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use super::netns;

/// The kernel's `local` routing table (RT_TABLE_LOCAL).
pub const RT_TABLE_LOCAL: u32 = 255;
/// The kernel's `main` routing table (RT_TABLE_MAIN).
pub const RT_TABLE_MAIN: u32 = 254;

/// Options of a route in a policy table.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableRoute {
    /// Preferred source address (`src`).
    pub src: Option<Ipv4Addr>,
    /// Path MTU (`mtu`).
    pub mtu: Option<u32>,
}

/// `Ok` for "already exists": idempotent adds.
fn ignore_exists(r: Result<(), rtnetlink::Error>) -> Result<(), rtnetlink::Error> {
    match r {
        Err(rtnetlink::Error::NetlinkError(e))
            if e.to_io().kind() == std::io::ErrorKind::AlreadyExists =>
        {
            Ok(())
        }
        other => other,
    }
}

/// What both ends of a new veth pair get at creation.
#[derive(Debug, Clone, Copy, Default)]
pub struct VethEnds {
    /// Both ends' MTU (the kernel's default 1500 when `None`).
    pub mtu: Option<u32>,
    /// The Ethernet address of the end created here, and of the peer's.
    pub mac: Option<[u8; 6]>,
    pub peer_mac: Option<[u8; 6]>,
}

impl VethEnds {
    fn attributes(&self, mac: Option<[u8; 6]>) -> Vec<LinkAttribute> {
        let mut a = Vec::new();
        a.extend(self.mtu.map(LinkAttribute::Mtu));
        a.extend(mac.map(|m| LinkAttribute::Address(m.to_vec())));
        a
    }
}

/// A policy routing rule (`ip rule`).
#[derive(Debug, Clone, Default)]
pub struct Rule<'a> {
    pub pref: u32,
    pub table: u32,
    pub iif: Option<&'a str>,
    pub fwmark: Option<u32>,
    pub from: Option<Ipv4Addr>,
    pub to: Option<Ipv4Addr>,
}

/// An rtnetlink handle bound to one namespace (the socket was opened inside it).
#[derive(Debug, Clone)]
pub struct NsLinks {
    pub ns: String,
    handle: Handle,
}

impl NsLinks {
    /// Opens a netlink socket inside namespace `ns`. Must run on a
    /// current-thread runtime: the connection task is spawned here.
    pub fn open(ns: &str) -> Result<Self> {
        let _inside = netns::Inside::enter(ns)?;
        let (conn, handle, _) =
            rtnetlink::new_connection().with_context(|| format!("netlink socket in {ns}"))?;
        tokio::spawn(conn);
        Ok(Self {
            ns: ns.to_string(),
            handle,
        })
    }

    /// rtnetlink in the namespace the calling thread is in (a daemon that
    /// entered its namespace at start).
    pub fn open_here() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
        tokio::spawn(conn);
        Ok(Self {
            ns: "(this namespace)".to_string(),
            handle,
        })
    }

    /// The link called `name`, as the kernel describes it.
    async fn link(&self, name: &str) -> Result<netlink_packet_route::link::LinkMessage> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        links
            .try_next()
            .await
            .with_context(|| format!("{}: looking up link {name}", self.ns))?
            .ok_or_else(|| anyhow!("{}: no link {name}", self.ns))
    }

    pub async fn index(&self, name: &str) -> Result<u32> {
        Ok(self.link(name).await?.header.index)
    }

    pub async fn up(&self, name: &str) -> Result<()> {
        let index = self.index(name).await?;
        self.handle
            .link()
            .set(index)
            .up()
            .execute()
            .await
            .with_context(|| format!("{}: setting {name} up", self.ns))
    }

    /// `ip link set NAME down` (`plexnet link ... down`).
    pub async fn down(&self, name: &str) -> Result<()> {
        let index = self.index(name).await?;
        self.handle
            .link()
            .set(index)
            .down()
            .execute()
            .await
            .with_context(|| format!("{}: setting {name} down", self.ns))
    }

    /// Whether the link is administratively up (IFF_UP).
    pub async fn is_up(&self, name: &str) -> Result<bool> {
        use netlink_packet_route::link::LinkFlag;
        Ok(self.link(name).await?.header.flags.contains(&LinkFlag::Up))
    }

    /// [`NsLinks::add_route`], keeping a route that is already there (the
    /// routes of a link set up again: the kernel removed them when it went
    /// down, except those it still had).
    pub async fn ensure_route(
        &self,
        dest: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        dev: Option<&str>,
    ) -> Result<()> {
        match self.add_route(dest, prefix_len, gateway, dev).await {
            Err(e)
                if e.chain().any(|c| {
                    c.downcast_ref::<rtnetlink::Error>().is_some_and(|r| {
                        matches!(r, rtnetlink::Error::NetlinkError(m)
                            if m.to_io().kind() == std::io::ErrorKind::AlreadyExists)
                    })
                }) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    pub async fn add_bridge(&self, name: &str) -> Result<()> {
        self.handle
            .link()
            .add()
            .bridge(name.to_string())
            .execute()
            .await
            .with_context(|| format!("{}: creating bridge {name}", self.ns))?;
        self.up(name).await
    }

    pub async fn set_master(&self, name: &str, bridge: &str) -> Result<()> {
        let (index, master) = (self.index(name).await?, self.index(bridge).await?);
        self.handle
            .link()
            .set(index)
            .controller(master)
            .execute()
            .await
            .with_context(|| format!("{}: attaching {name} to {bridge}", self.ns))
    }

    /// Creates a veth pair: `name` here, `peer_name` directly inside
    /// `peer`'s namespace (as `ip link add ... peer name P netns NS`),
    /// with the kernel's defaults. `name` is up, `peer_name` down.
    pub async fn add_veth(&self, name: &str, peer: &NsLinks, peer_name: &str) -> Result<()> {
        self.add_veth_with(name, peer, peer_name, &VethEnds::default())
            .await
    }

    /// Creates a veth pair: `name` here, `peer_name` directly inside
    /// `peer`'s namespace (as `ip link add NAME [mtu M] [address A] type
    /// veth peer name P netns NS [mtu M] [address B]`), in one request:
    /// `ends` gives both ends' MTU and Ethernet address. `name` is up;
    /// `peer_name` is left down.
    pub async fn add_veth_with(
        &self,
        name: &str,
        peer: &NsLinks,
        peer_name: &str,
        ends: &VethEnds,
    ) -> Result<()> {
        let peer_ns = netns::open(&peer.ns)?;
        // rtnetlink's veth(a, b) names the *peer* a and the main link b.
        let mut req = self
            .handle
            .link()
            .add()
            .veth(peer_name.to_string(), name.to_string());
        let main = &mut req.message_mut().attributes;
        main.extend(ends.attributes(ends.mac));
        let peer_msg = main
            .iter_mut()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter_mut().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => Some(p),
                    _ => None,
                }),
                _ => None,
            })
            .ok_or_else(|| anyhow!("rtnetlink veth request has no peer message"))?;
        peer_msg.attributes.extend(ends.attributes(ends.peer_mac));
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        req.execute().await.with_context(|| {
            format!(
                "creating veth {}:{name} <-> {}:{peer_name}",
                self.ns, peer.ns
            )
        })
    }

    /// `ip link set dev INDEX up` (a link looked up already).
    pub async fn up_index(&self, index: u32, name: &str) -> Result<()> {
        self.handle
            .link()
            .set(index)
            .up()
            .execute()
            .await
            .with_context(|| format!("{}: setting {name} up", self.ns))
    }

    /// `ip neigh add ADDR lladdr MAC dev INDEX nud permanent`: a
    /// point-to-point link's peer, known from the plan, so the kernel
    /// never resolves it by ARP. Permanent entries are exempt from the
    /// neighbour table's garbage collection and do not count against
    /// `gc_thresh3`, a limit shared by every namespace of the host
    /// (Documentation/networking/ip-sysctl.rst, `neigh/default/gc_thresh3`).
    /// An entry already there is replaced (`ip neigh replace`).
    pub async fn add_permanent_neighbour(
        &self,
        index: u32,
        name: &str,
        addr: Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<()> {
        self.handle
            .neighbours()
            .add(index, IpAddr::V4(addr))
            .link_local_address(&mac)
            .replace()
            .execute()
            .await
            .with_context(|| format!("{}: adding neighbour {addr} on {name}", self.ns))
    }

    /// `ip addr add ADDR/LEN dev INDEX` (a link looked up already).
    pub async fn add_addr_index(
        &self,
        index: u32,
        name: &str,
        addr: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<()> {
        self.handle
            .address()
            .add(index, IpAddr::V4(addr), prefix_len)
            .execute()
            .await
            .with_context(|| format!("{}: adding {addr}/{prefix_len} to {name}", self.ns))
    }

    /// `ip route add DEST/LEN [via GW] dev INDEX` (a link looked up already).
    pub async fn add_route_index(
        &self,
        dest: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        index: u32,
        name: &str,
    ) -> Result<()> {
        let mut req = self
            .handle
            .route()
            .add()
            .v4()
            .destination_prefix(dest, prefix_len)
            .output_interface(index);
        if let Some(gw) = gateway {
            req = req.gateway(gw);
        }
        req.execute().await.with_context(|| {
            format!(
                "{}: adding route {dest}/{prefix_len}{} dev {name}",
                self.ns,
                gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
            )
        })
    }

    /// `ip link set dev INDEX master BRIDGE` (a link looked up already).
    pub async fn set_master_index(&self, index: u32, name: &str, bridge: &str) -> Result<()> {
        let master = self.index(bridge).await?;
        self.handle
            .link()
            .set(index)
            .controller(master)
            .execute()
            .await
            .with_context(|| format!("{}: attaching {name} to {bridge}", self.ns))
    }

    pub async fn add_addr(&self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        self.add_addr_if(name, addr, prefix_len, |r| r).await
    }

    /// Like [`NsLinks::add_addr`], keeping an address that is already there
    /// (a DVIPA a backup serves as a target, plumbed again as its owner
    /// after a takeover).
    pub async fn ensure_addr(&self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        self.add_addr_if(name, addr, prefix_len, ignore_exists)
            .await
    }

    async fn add_addr_if(
        &self,
        name: &str,
        addr: Ipv4Addr,
        prefix_len: u8,
        accept: fn(Result<(), rtnetlink::Error>) -> Result<(), rtnetlink::Error>,
    ) -> Result<()> {
        let index = self.index(name).await?;
        let added = self
            .handle
            .address()
            .add(index, IpAddr::V4(addr), prefix_len)
            .execute()
            .await;
        accept(added).with_context(|| format!("{}: adding {addr}/{prefix_len} to {name}", self.ns))
    }

    /// The link-layer (MAC) address of a link.
    pub async fn mac(&self, name: &str) -> Result<[u8; 6]> {
        let link = self.link(name).await?;
        link.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| anyhow!("{}: link {name} has no Ethernet address", self.ns))
    }

    /// `ip route add dest/prefix [via gateway] [dev name]`.
    pub async fn add_route(
        &self,
        dest: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        dev: Option<&str>,
    ) -> Result<()> {
        let mut req = self
            .handle
            .route()
            .add()
            .v4()
            .destination_prefix(dest, prefix_len);
        if let Some(gw) = gateway {
            req = req.gateway(gw);
        }
        if let Some(dev) = dev {
            req = req.output_interface(self.index(dev).await?);
        }
        req.execute().await.with_context(|| {
            format!(
                "{}: adding route {dest}/{prefix_len}{}{}",
                self.ns,
                gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
                dev.map(|d| format!(" dev {d}")).unwrap_or_default()
            )
        })
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let index = self.index(name).await?;
        self.handle
            .link()
            .set(index)
            .mtu(mtu)
            .execute()
            .await
            .with_context(|| format!("{}: setting the MTU of {name} to {mtu}", self.ns))
    }

    /// `ip route replace dest/len dev DEV table TABLE [src SRC] [mtu MTU]`.
    pub async fn add_table_route(
        &self,
        dest: Ipv4Addr,
        prefix_len: u8,
        dev: &str,
        table: u32,
        route: TableRoute,
    ) -> Result<()> {
        let mut req = self
            .handle
            .route()
            .add()
            .table_id(table)
            .v4()
            .destination_prefix(dest, prefix_len)
            .output_interface(self.index(dev).await?)
            .replace();
        if let Some(src) = route.src {
            req = req.pref_source(src);
        }
        let mtu = route.mtu;
        if let Some(mtu) = mtu {
            req.message_mut()
                .attributes
                .push(RouteAttribute::Metrics(vec![RouteMetric::Mtu(mtu)]));
        }
        req.execute().await.with_context(|| {
            format!(
                "{}: adding route {dest}/{prefix_len} dev {dev} table {table}",
                self.ns
            )
        })
    }

    /// `ip rule add pref PREF [iif IIF] [fwmark MARK] [from SRC/32] [to
    /// DST/32] lookup TABLE`; a rule that is already there (a daemon
    /// restarted in its namespace) is kept.
    pub async fn add_rule(&self, rule: &Rule<'_>) -> Result<()> {
        let mut req = self
            .handle
            .rule()
            .add()
            .priority(rule.pref)
            .table_id(rule.table)
            .action(RuleAction::ToTable)
            .v4();
        if let Some(iif) = rule.iif {
            req = req.input_interface(iif.to_string());
        }
        if let Some(mark) = rule.fwmark {
            req = req.fw_mark(mark);
        }
        if let Some(src) = rule.from {
            req = req.source_prefix(src, 32);
        }
        if let Some(dst) = rule.to {
            req = req.destination_prefix(dst, 32);
        }
        ignore_exists(req.execute().await)
            .with_context(|| format!("{}: adding rule {rule:?}", self.ns))
    }

    /// Moves the `lookup local` rule from preference 0 to `pref`, so rules
    /// placed before it can send packets for a local address elsewhere
    /// (an owner that is also a target: its DVIPA is local, yet what
    /// arrives on `ext` must go through the TUN first; docs/ARCHITECTURE.md).
    pub async fn move_local_rule(&self, pref: u32) -> Result<()> {
        self.add_rule(&Rule {
            pref,
            table: RT_TABLE_LOCAL,
            ..Rule::default()
        })
        .await?;
        let mut rules = self.handle.rule().get(IpVersion::V4).execute();
        while let Some(r) = rules.try_next().await? {
            let prio = r.attributes.iter().find_map(|a| match a {
                RuleAttribute::Priority(p) => Some(*p),
                _ => None,
            });
            if prio.unwrap_or(0) == 0 && r.header.table == RT_TABLE_LOCAL as u8 {
                self.handle
                    .rule()
                    .del(r)
                    .execute()
                    .await
                    .with_context(|| format!("{}: deleting the pref 0 local rule", self.ns))?;
                break;
            }
        }
        Ok(())
    }

    /// `ip rule del pref PREF to DST/32` for every such rule (a DVIPA
    /// given back: what arrives for it on `ext` no longer goes into the
    /// TUN, and proxy ARP stops answering for it).
    pub async fn del_rules_to(&self, pref: u32, dst: Ipv4Addr) -> Result<usize> {
        let mut found = Vec::new();
        let mut rules = self.handle.rule().get(IpVersion::V4).execute();
        while let Some(r) = rules.try_next().await? {
            let prio = r.attributes.iter().find_map(|a| match a {
                RuleAttribute::Priority(p) => Some(*p),
                _ => None,
            });
            let to = r.attributes.iter().find_map(|a| match a {
                RuleAttribute::Destination(IpAddr::V4(d)) => Some(*d),
                _ => None,
            });
            if prio == Some(pref) && to == Some(dst) {
                found.push(r);
            }
        }
        let n = found.len();
        for r in found {
            self.handle
                .rule()
                .del(r)
                .execute()
                .await
                .with_context(|| format!("{}: deleting rule pref {pref} to {dst}", self.ns))?;
        }
        Ok(n)
    }

    /// `ip addr del ADDR dev NAME`, when it is there.
    pub async fn del_addr(&self, name: &str, addr: Ipv4Addr) -> Result<bool> {
        let index = self.index(name).await?;
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(IpAddr::V4(addr))
            .execute();
        let Some(msg) = addrs.try_next().await? else {
            return Ok(false);
        };
        self.handle
            .address()
            .del(msg)
            .execute()
            .await
            .with_context(|| format!("{}: deleting {addr} from {name}", self.ns))?;
        Ok(true)
    }

    /// Names of every link in the namespace (for status and tests).
    pub async fn link_names(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(link) = links.try_next().await? {
            out.extend(link.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }));
        }
        Ok(out)
    }
}
