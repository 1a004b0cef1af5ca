//! Links, addresses and routes of one namespace over rtnetlink.

use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkInfo};
use rtnetlink::Handle;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use super::netns;

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

    pub async fn index(&self, name: &str) -> Result<u32> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let link = links
            .try_next()
            .await
            .with_context(|| format!("{}: looking up link {name}", self.ns))?
            .ok_or_else(|| anyhow!("{}: no link {name}", self.ns))?;
        Ok(link.header.index)
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
    /// `peer`'s namespace (as `ip link add ... peer name P netns NS`). Both
    /// ends are left down.
    pub async fn add_veth(&self, name: &str, peer: &NsLinks, peer_name: &str) -> Result<()> {
        let peer_ns = netns::open(&peer.ns)?;
        // rtnetlink's veth(a, b) names the *peer* a and the main link b.
        let mut req = self
            .handle
            .link()
            .add()
            .veth(peer_name.to_string(), name.to_string());
        let peer_msg = req
            .message_mut()
            .attributes
            .iter_mut()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter_mut().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => Some(p),
                    _ => None,
                }),
                _ => None,
            })
            .ok_or_else(|| anyhow!("rtnetlink veth request has no peer message"))?;
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

    pub async fn add_addr(&self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let index = self.index(name).await?;
        self.handle
            .address()
            .add(index, IpAddr::V4(addr), prefix_len)
            .execute()
            .await
            .with_context(|| format!("{}: adding {addr}/{prefix_len} to {name}", self.ns))
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
