//! The resolved topology: every node, link and address decided, ready for the
//! lab to build and for the sysplex roles to read their VIPADYNAMIC
//! configuration. Produced by [`super::load`]; nothing here is optional any
//! more (addresses that the file left out were assigned automatically).

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use plexnet_core::sysplex::limits::SysplexLimits;

pub use plexnet_core::sysplex::config::{
    Dest, DestRole, DistMethod, InboundFilter, VipaDistribute, XcfForwarding,
};

mod manual_sa;
mod security;

pub use manual_sa::*;
pub use security::*;

/// An IPv4 subnet, e.g. `198.18.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl Subnet {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.prefix_len);
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
    /// The `n`th host address of the subnet (`n = 1` is the first usable one).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from((u32::from(self.addr) & prefix_mask(self.prefix_len)) + n)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// The netmask for a prefix length, as a host-order `u32`.
pub fn prefix_mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    }
}

/// A whole topology after loading and validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Topology {
    /// `name` from the file, or the file stem; names the run directory
    /// `/run/plexnet/<name>/`.
    pub name: String,
    pub source: PathBuf,
    /// The LAN the images' `ext` links and the DVIPAs live on (a bridge in `net`).
    pub external_lan: Lan,
    /// The `net` router: a plain Linux router namespace.
    pub router: Router,
    pub cf: CouplingFacility,
    /// The sysplex images (MVS1..), in file order.
    pub images: Vec<Image>,
    /// The client LANs behind `net`, in file order (one per client unless the
    /// file puts several clients on one LAN).
    pub client_lans: Vec<Lan>,
    /// Client hosts, each on a client LAN.
    pub clients: Vec<Client>,
    /// Host names written to every namespace's `/etc/hosts` (DVIPA names such
    /// as `DVA1` and every node's name), in file order.
    pub hosts: Vec<HostName>,
    /// Manually keyed SAs between a client and a DVIPA (`[[manual_sa]]`),
    /// in file order: the DVIPA side is installed by the DVIPA's routing
    /// stack, the client side by `plexnet client`.
    #[serde(default)]
    pub manual_sas: Vec<ManualSa>,
    /// How the routing stacks with `ike = true` negotiate the SAs of their
    /// DVIPAs, from their Policy Agent policies (`super::ike_policy`);
    /// `None` when no such image has a KeyExchangeRule.
    #[serde(default)]
    pub ike: Option<IkeSettings>,
    /// `[xcf] forwarding`: how routing stacks carry datagrams to targets
    /// over the XCF links (Fig. 8 block 140).
    #[serde(default)]
    pub xcf_forwarding: XcfForwarding,
    /// `[limits]`: the bounds of the DCT, the NEWCONN hold queue, the CF's
    /// storage per image and XCF messages (`super::limits`).
    #[serde(default)]
    pub limits: SysplexLimits,
}

/// The IKE settings of the sysplex, from the policies (see
/// `super::ike_policy`): one pre-shared key and
/// one set of proposals for every IKE peer of every DVIPA; identities are
/// IP addresses (the DVIPA, the client's address).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSettings {
    /// The pre-shared key (RFC 7296 §2.15).
    pub psk: String,
    /// IKE proposals in strongSwan syntax, e.g. `aes128-sha256-x25519` or
    /// `default`.
    pub proposals: String,
    /// ESP proposals in strongSwan syntax, e.g. `aes128-sha1` or `default`.
    pub esp_proposals: String,
    /// Child SA soft lifetime (rekey) in seconds; `None`: never.
    pub rekey_time: Option<u64>,
    /// Child SA hard lifetime in seconds; `None`: never.
    pub life_time: Option<u64>,
    /// Child SA soft lifesize (rekey) in bytes, both directions counted.
    pub rekey_bytes: Option<u64>,
    /// Child SA hard lifesize in bytes.
    pub life_bytes: Option<u64>,
    /// IKE SA rekey time in seconds; `None`: never.
    pub ike_rekey_time: Option<u64>,
    /// Half-open IKE SAs above which a COOKIE is demanded (RFC 7296 §2.6).
    pub cookie_threshold: usize,
    /// Fig. 11 NEWCONN: a target that sees a SYN from a DVIPA to an IKE
    /// peer without an SA asks the routing stack to negotiate one.
    pub on_demand: bool,
}

impl std::fmt::Debug for IkeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeSettings")
            .field("psk", &"<secret>")
            .field("proposals", &self.proposals)
            .field("esp_proposals", &self.esp_proposals)
            .field("rekey_time", &self.rekey_time)
            .field("life_time", &self.life_time)
            .field("rekey_bytes", &self.rekey_bytes)
            .field("life_bytes", &self.life_bytes)
            .field("ike_rekey_time", &self.ike_rekey_time)
            .field("cookie_threshold", &self.cookie_threshold)
            .field("on_demand", &self.on_demand)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostName {
    pub name: String,
    pub addr: Ipv4Addr,
}

/// A LAN: a bridge in the `net` namespace with `net`'s address on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lan {
    /// `ext` for the external LAN, the client's name for a client LAN.
    pub name: String,
    pub subnet: Subnet,
    /// `net`'s address on this LAN: the default gateway of its hosts.
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Router {
    /// Node name, `net` by default.
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CouplingFacility {
    /// Node name, `CF` by default.
    pub name: String,
    /// The CF's address on every CF link (one /32 on each veth).
    pub addr: Ipv4Addr,
}

/// A z/OS image: one TCP/IP stack, one `plexnet` process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// As written in the file, e.g. `MVS1` (1..=8 characters, `[A-Za-z0-9]`).
    pub name: String,
    /// The image's address on the external LAN (its `ext` veth).
    pub ext_addr: Ipv4Addr,
    /// The image's dynamic XCF address: one /32 on every XCF link.
    pub xcf_addr: Ipv4Addr,
    /// Whether this image runs IKE for the DVIPAs it owns.
    pub ike: bool,
    /// Where inbound IPsec traffic of the DVIPAs it owns is filtered.
    #[serde(default)]
    pub inbound_filter: InboundFilter,
    /// `false`: as OS/390 V2R10, the routing stack decrypts everything it
    /// distributes and forwards plaintext over XCF (a baseline to compare).
    #[serde(default = "default_true")]
    pub distribute_crypto: bool,
    /// The parsed VIPADYNAMIC block of its PROFILE.TCPIP.
    pub vipa: VipaDynamic,
    /// Its IP security configuration: `profile` (IPCONFIG IPSECURITY, the
    /// IPSEC block) and `ipsec_policy` (the Policy Agent's IPSec policy);
    /// `None` when the file gives no `profile`.
    #[serde(default)]
    pub ip_security: Option<IpSecurity>,
    /// The sysplex's `[limits]` (the same for every image).
    #[serde(default)]
    pub limits: SysplexLimits,
}

impl Image {
    /// Whether this image may distribute the IPsec of the DVIPAs it owns:
    /// always without IPCONFIG IPSECURITY, else only with IPSEC DVIPSEC (IP
    /// Configuration Reference, "IPSEC statement": DVIPSEC makes the IPsec
    /// tunnels of a distributed DVIPA eligible for distribution, and for
    /// moving on takeover and giveback).
    pub fn dvipsec_allows_distribution(&self) -> bool {
        self.ip_security
            .as_ref()
            .is_none_or(|s| !s.ipsecurity || s.dvipsec)
    }
}

fn default_true() -> bool {
    true
}

/// A client host on a client LAN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    pub name: String,
    /// The name of its LAN in [`Topology::client_lans`].
    pub lan: String,
    pub addr: Ipv4Addr,
    /// Which IPsec implementation runs on the client.
    #[serde(default)]
    pub ipsec: ClientIpsec,
    /// The DVIPAs this client negotiates SAs with by IKE (`ike = ["DVA1"]`).
    #[serde(default)]
    pub ike: Vec<Ipv4Addr>,
}

/// The IPsec implementation of a client (`[[client]] ipsec = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientIpsec {
    /// No IPsec: the client talks in the clear.
    #[default]
    None,
    /// `plexnet client`: the project's own user-space IPsec client, with the
    /// client's `[[manual_sa]]` SAs, and its IKE initiator towards the
    /// DVIPAs in `ike`. `plexnet up` starts it as the client's daemon.
    Plexnet,
    /// strongSwan's charon with kernel-libipsec: `plexnet up` starts it with
    /// a swanctl.conf for the DVIPAs in `ike` (`netns/strongswan/`).
    Strongswan,
}

impl ClientIpsec {
    /// The name as written in topology files.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientIpsec::None => "none",
            ClientIpsec::Plexnet => "plexnet",
            ClientIpsec::Strongswan => "strongswan",
        }
    }
}

/// The statements between VIPADYNAMIC and ENDVIPADYNAMIC, in file order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VipaDynamic {
    pub defines: Vec<VipaDefine>,
    pub backups: Vec<VipaBackup>,
    pub distributes: Vec<VipaDistribute>,
    pub ranges: Vec<VipaRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Moveable {
    Immediate,
    WhenIdle,
}

/// `VIPADEFINE [MOVEABLE IMMEDIATE|MOVEABLE WHENIDLE] mask addr`: this image owns `addr`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VipaDefine {
    pub moveable: Moveable,
    pub mask: Ipv4Addr,
    pub addr: Ipv4Addr,
}

/// `VIPABACKUP rank [MOVEABLE IMMEDIATE] mask addr`: this image takes `addr`
/// over when its owner fails; higher rank first (1..=254).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VipaBackup {
    pub rank: u8,
    pub moveable: Moveable,
    pub mask: Ipv4Addr,
    pub addr: Ipv4Addr,
}

/// `VIPARANGE [DEFINE] [MOVEABLE NONDISRUPTIVE|DISRUPTIVE] mask addr`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VipaRange {
    pub mask: Ipv4Addr,
    pub addr: Ipv4Addr,
}

impl Topology {
    /// Every LAN: the external one first, then the client LANs.
    pub fn lans(&self) -> impl Iterator<Item = &Lan> {
        std::iter::once(&self.external_lan).chain(&self.client_lans)
    }
    pub fn client_lan(&self, name: &str) -> Option<&Lan> {
        self.client_lans.iter().find(|l| l.name == name)
    }
    pub fn image(&self, name: &str) -> Option<&Image> {
        self.images
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(name))
    }
    /// The image that VIPADEFINEs `dvipa` (its primary owner).
    pub fn owner_of(&self, dvipa: Ipv4Addr) -> Option<&Image> {
        self.images
            .iter()
            .find(|i| i.vipa.defines.iter().any(|d| d.addr == dvipa))
    }
    /// Every DVIPA some image defines, in image order.
    pub fn dvipas(&self) -> Vec<Ipv4Addr> {
        self.images
            .iter()
            .flat_map(|i| i.vipa.defines.iter().map(|d| d.addr))
            .collect()
    }

    pub fn client(&self, name: &str) -> Option<&Client> {
        self.clients
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
    /// The manual SAs whose client is `client`, in file order.
    pub fn manual_sas_of_client<'a>(
        &'a self,
        client: &'a str,
    ) -> impl Iterator<Item = &'a ManualSa> {
        self.manual_sas
            .iter()
            .filter(move |m| m.client.eq_ignore_ascii_case(client))
    }
    /// The manual SAs that end at `dvipa`, in file order: what the DVIPA's
    /// routing stack installs (see [`ManualSa::dvipa_side`]).
    pub fn manual_sas_to(&self, dvipa: Ipv4Addr) -> impl Iterator<Item = &ManualSa> {
        self.manual_sas.iter().filter(move |m| m.dvipa == dvipa)
    }

    /// The clients that negotiate with `dvipa` by IKE: the IKE peers of its
    /// routing stack.
    pub fn ike_clients_of(&self, dvipa: Ipv4Addr) -> impl Iterator<Item = &Client> {
        self.clients.iter().filter(move |c| c.ike.contains(&dvipa))
    }

    /// The `[hosts]` name of an address, if the file gives one.
    pub fn host_name(&self, addr: Ipv4Addr) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| h.addr == addr)
            .map(|h| h.name.as_str())
    }

    /// `DVA1 (198.18.0.100)` when the file names the address, else the address.
    pub fn label(&self, addr: Ipv4Addr) -> String {
        match self.hosts.iter().find(|h| h.addr == addr) {
            Some(h) => format!("{} ({addr})", h.name),
            None => addr.to_string(),
        }
    }
    /// The VIPADISTRIBUTE statements `image` puts in force when it takes
    /// `dvipa` over (those following its VIPABACKUP of it).
    pub fn backup_distributes(&self, image: &str, dvipa: Ipv4Addr) -> Vec<VipaDistribute> {
        self.image(image)
            .filter(|i| i.vipa.backups.iter().any(|b| b.addr == dvipa))
            .map(|i| {
                i.vipa
                    .distributes
                    .iter()
                    .filter(|d| d.addr == dvipa)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The DVIPAs a backup's VIPADISTRIBUTE names `image` a destination of:
    /// it serves them once that backup has taken them over.
    pub fn backup_distributed_to(&self, image: &str) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = self
            .images
            .iter()
            .flat_map(|b| {
                b.vipa.distributes.iter().filter(|d| {
                    b.vipa.backups.iter().any(|v| v.addr == d.addr)
                        && d.dests.iter().any(|t| t.image.eq_ignore_ascii_case(image))
                })
            })
            .map(|d| d.addr)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The DVIPAs whose VIPADISTRIBUTE (in their owner) names `image` as a
    /// destination.
    pub fn distributed_to(&self, image: &str) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = self
            .images
            .iter()
            .flat_map(|owner| {
                // Only the owner's VIPADISTRIBUTE is in force; a backup's
                // applies after a takeover.
                owner
                    .vipa
                    .distributes
                    .iter()
                    .filter(|d| owner.vipa.defines.iter().any(|v| v.addr == d.addr))
            })
            .filter(|d| d.dests.iter().any(|t| t.image.eq_ignore_ascii_case(image)))
            .map(|d| d.addr)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
