//! The resolved topology: every node, link and address decided, ready for the
//! lab to build and for the sysplex roles to read their VIPADYNAMIC
//! configuration. Produced by [`super::load`]; nothing here is optional any
//! more (addresses that the file left out were assigned automatically).

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;

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
    /// The parsed VIPADYNAMIC block of its PROFILE.TCPIP.
    pub vipa: VipaDynamic,
}

/// A client host on a client LAN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    pub name: String,
    /// The name of its LAN in [`Topology::client_lans`].
    pub lan: String,
    pub addr: Ipv4Addr,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DistMethod {
    RoundRobin,
    WeightedActive,
    HotStandby,
    BaseWlm,
}

/// `VIPADISTRIBUTE [DEFINE] [DISTMETHOD m] addr PORT p... DESTIP dest...|ALL`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VipaDistribute {
    pub method: DistMethod,
    pub addr: Ipv4Addr,
    pub ports: Vec<u16>,
    /// Resolved destinations; `DESTIP ALL` is expanded to every image, in
    /// file order, with `all = true` kept for display.
    pub dests: Vec<Dest>,
    pub all: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dest {
    /// The image's name as in [`Image::name`].
    pub image: String,
    pub xcf_addr: Ipv4Addr,
    pub role: DestRole,
}

/// What follows a DESTIP entry (WEIGHTEDACTIVE weights, HOTSTANDBY roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DestRole {
    /// No keyword: weight 1 for WEIGHTEDACTIVE, a plain target otherwise.
    Plain,
    Weight(u16),
    Preferred,
    Backup(u8),
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

    /// `DVA1 (198.18.0.100)` when the file names the address, else the address.
    pub fn label(&self, addr: Ipv4Addr) -> String {
        match self.hosts.iter().find(|h| h.addr == addr) {
            Some(h) => format!("{} ({addr})", h.name),
            None => addr.to_string(),
        }
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
