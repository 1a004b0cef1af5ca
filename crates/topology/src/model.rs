//! The resolved topology: every node, link and address decided, ready for the
//! lab to build and for the sysplex roles to read their VIPADYNAMIC
//! configuration. Produced by [`super::load`]; nothing here is optional any
//! more (addresses that the file left out were assigned automatically).

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use plexnet_core::ike::proposal::{ProposalConfig, ProposalParseError, Protocol as IkeProtocol};
use plexnet_core::ipsec::filter::{FilterOptions, FilterTable};
use plexnet_core::ipsec::policy::{RuleSet, RuleSetError};
use plexnet_core::ipsec::{AddrSpec, FilterRule, Mode, SaConfig};
pub use plexnet_core::sysplex::config::{
    Dest, DestRole, DistMethod, InboundFilter, VipaDistribute, XcfForwarding,
};

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
}

/// An image's IP security, z/OS style (see [`super::profile`] and
/// [`super::policy`]): whether the stack filters at all, the profile's
/// default rules, and the Policy Agent's policy that replaces them once
/// installed. Nothing enforces it yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSecurity {
    /// `IPCONFIG IPSECURITY`: the stack filters every packet; what no rule
    /// permits is denied (z/OS's SYSDEFAULTDENYRULE).
    pub ipsecurity: bool,
    /// IPSEC `DVIPSEC`: IPsec tunnels of a distributed DVIPA are
    /// distributed, and move with it on takeover and giveback.
    pub dvipsec: bool,
    /// IPSEC `DVLOCALFLTR`.
    pub dvlocalfltr: bool,
    /// IPSEC `LOGENABLE` (default `LOGDISABLE`).
    pub log_enable: bool,
    /// IPSEC `LOGIMPLICIT` (default `NOLOGIMPLICIT`): log packets the
    /// implicit deny drops.
    pub log_implicit: bool,
    /// The IPSECRULEs, in profile order, named `SYSDEFAULTRULE.1`, ...:
    /// in force while no policy is installed.
    pub default_rules: Vec<FilterRule>,
    /// The Policy Agent's IPSec policy (`ipsec_policy`), if any.
    pub policy: Option<IpSecPolicy>,
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

impl IpSecurity {
    /// The stack's IP filter table: the IPSECRULEs, replaced by the Policy
    /// Agent's IpFilterRules when the image has a policy (z/OS uses the
    /// default rules only until the policy is installed), SYSDEFAULTDENYRULE
    /// last. `None` without `IPCONFIG IPSECURITY`: no IP filtering.
    pub fn filter_table(&self) -> Result<Option<FilterTable>, RuleSetError> {
        if !self.ipsecurity {
            return Ok(None);
        }
        let options = FilterOptions {
            logging: self.log_enable,
            log_implicit: self.log_implicit,
            ..FilterOptions::default()
        };
        let mut table = FilterTable::new(RuleSet::new(self.default_rules.clone()), options)?;
        if let Some(p) = &self.policy {
            table.install_policy(RuleSet::new(p.filter_rules.clone()))?;
        }
        Ok(Some(table))
    }
}

/// The Policy Agent's IPSec policy of one image, resolved: every reference
/// followed, every algorithm one plexnet implements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSecPolicy {
    /// The IpFilterRules in force, in filter-table order (the
    /// IpFilterPolicy's IpFilterRuleRef order, or file order without one).
    pub filter_rules: Vec<FilterRule>,
    /// The KeyExchangeRules in force, in search order (the
    /// KeyExchangePolicy's order, or file order without one).
    pub key_exchange_rules: Vec<KeyExchangeRule>,
}

/// A KeyExchangeRule: how the IKE of this stack negotiates with the
/// remote security endpoints the rule covers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExchangeRule {
    /// The rule's name.
    pub name: String,
    /// This stack's side (`LocalSecurityEndpoint`).
    pub local: SecurityEndpoint,
    /// The peers the rule applies to (`RemoteSecurityEndpoint`).
    pub remote: SecurityEndpoint,
    /// `KeyExchangeActionRef`.
    pub action: KeyExchangeAction,
    /// `SharedKey`: the pre-shared key's bytes (RFC 7296 §2.15).
    pub shared_key: Vec<u8>,
}

impl std::fmt::Debug for KeyExchangeRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyExchangeRule")
            .field("name", &self.name)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("action", &self.action)
            .field("shared_key", &"<secret>")
            .finish()
    }
}

/// A LocalSecurityEndpoint or RemoteSecurityEndpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEndpoint {
    /// The statement's name; `None` when written inline.
    pub name: Option<String>,
    /// `Identity IpAddr`: the IKE identity (ID_IPV4_ADDR); one address for
    /// the local endpoint, possibly a prefix or range (or any) for the
    /// remote one.
    pub identity: AddrSpec,
    /// `Location`: the IKE peer's (or this stack's) address.
    pub location: AddrSpec,
}

/// A KeyExchangeAction: whether this stack starts IKE, and its IKE offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExchangeAction {
    /// The statement's name.
    pub name: String,
    /// `HowToInitiate IKEv2` (`true`) or `DoNot`.
    pub initiate: bool,
    /// The KeyExchangeOffers, most preferred first.
    pub offers: Vec<KeyExchangeOffer>,
}

/// A KeyExchangeOffer: one acceptable protection of the IKE SA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExchangeOffer {
    /// The statement's name; `None` when written inline.
    pub name: Option<String>,
    /// The IKE proposal in strongSwan syntax with one algorithm of each
    /// kind, e.g. `aes128-sha1-prfsha1-modp2048`, as strongSwan's `proposals` is
    /// written; [`KeyExchangeOffer::proposal_config`] gives the IKE
    /// module's type.
    pub proposal: String,
    /// `RefreshLifetimeProposed`, in seconds.
    pub lifetime_secs: u64,
    /// `RefreshLifesizeProposed`, in bytes; `None` for no limit.
    pub lifesize_bytes: Option<u64>,
}

impl KeyExchangeOffer {
    /// The offer as the IKE module's proposal.
    pub fn proposal_config(&self) -> Result<ProposalConfig, ProposalParseError> {
        ProposalConfig::parse(IkeProtocol::Ike, &self.proposal)
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

/// What protects the traffic of a manual SA (`protocol = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ManualProtocol {
    /// ESP alone (RFC 4303).
    #[serde(rename = "esp")]
    Esp,
    /// AH alone (RFC 4302): integrity only.
    #[serde(rename = "ah")]
    Ah,
    /// ESP, then AH over it on the same outer header (RFC 4301 §4.3
    /// transport adjacency; the patent's "Combined AH,ESP").
    #[serde(rename = "ah+esp")]
    AhEsp,
}

impl ManualProtocol {
    /// The name as written in topology files.
    pub const fn as_str(self) -> &'static str {
        match self {
            ManualProtocol::Esp => "esp",
            ManualProtocol::Ah => "ah",
            ManualProtocol::AhEsp => "ah+esp",
        }
    }
}

/// The SAs that protect one direction of a manual SA: ESP, AH, or both
/// (AH outside ESP). Which ones are present follows
/// [`ManualSa::protocol`]; both are `SaConfig`s exactly as IKE would make
/// them, so a routing stack installs and distributes them the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaBundle {
    pub esp: Option<SaConfig>,
    pub ah: Option<SaConfig>,
}

impl SaBundle {
    /// The SAs present, ESP first.
    pub fn sas(&self) -> impl Iterator<Item = &SaConfig> {
        self.esp.iter().chain(self.ah.iter())
    }
}

/// A manually keyed SA pair between a client and a DVIPA (`[[manual_sa]]`),
/// as z/OS manual tunnels are: both directions, fully keyed, never rekeyed.
///
/// Every `SaConfig` is host to host: wire addresses (and tunnel endpoints)
/// are the client's address and the DVIPA, the traffic selector is
/// client/32 to DVIPA/32 (or the reverse), any protocol and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualSa {
    /// The client's name, as in [`Client::name`].
    pub client: String,
    /// The client's address: one end of every SA.
    pub client_addr: Ipv4Addr,
    /// The DVIPA: the other end.
    pub dvipa: Ipv4Addr,
    pub protocol: ManualProtocol,
    pub mode: Mode,
    /// ESP in UDP on port 4500 both ways (RFC 3948).
    pub udp_encap: bool,
    /// Client to DVIPA: the client's outbound, the DVIPA's inbound SAs.
    pub to_dvipa: SaBundle,
    /// DVIPA to client: the DVIPA's outbound, the client's inbound SAs.
    pub to_client: SaBundle,
}

/// One end's view of a [`ManualSa`]: what it sends with and what it
/// receives with.
#[derive(Debug, Clone, Copy)]
pub struct SaSide<'a> {
    /// This end's address (the client's, or the DVIPA).
    pub local: Ipv4Addr,
    /// The other end's address.
    pub peer: Ipv4Addr,
    /// SAs this end seals with.
    pub outbound: &'a SaBundle,
    /// SAs this end opens with.
    pub inbound: &'a SaBundle,
}

impl ManualSa {
    /// The client's view: outbound to the DVIPA, inbound from it.
    pub fn client_side(&self) -> SaSide<'_> {
        SaSide {
            local: self.client_addr,
            peer: self.dvipa,
            outbound: &self.to_dvipa,
            inbound: &self.to_client,
        }
    }

    /// The DVIPA's view (what the routing stack installs and distributes):
    /// outbound to the client, inbound from it.
    pub fn dvipa_side(&self) -> SaSide<'_> {
        SaSide {
            local: self.dvipa,
            peer: self.client_addr,
            outbound: &self.to_client,
            inbound: &self.to_dvipa,
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
