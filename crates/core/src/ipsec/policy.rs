//! The IP filter policy model: what a z/OS stack with `IPCONFIG IPSECURITY`
//! filters on and what it does with a match (z/OS Communications Server:
//! IP Configuration Guide, "IP filter policy"; IP Configuration Reference,
//! "IPSEC statement", "IpFilterRule", "IpDynVpnAction", "IpDataOffer").
//!
//! Two parsers produce these types: the profile's `IPSEC ... IPSECRULE ...
//! ENDIPSEC` block (the default rules, used until policy is installed) and
//! the Policy Agent's `IpFilterRule` / `IpDynVpnAction` / `IpDataOffer`
//! statements. The filter engine (`super::filter`) evaluates them. The
//! types are plain data, serializable, and IPv4 only (`IPSEC6RULE` is not
//! modelled yet).
//!
//! ## Which side is "source"
//! An IP filter rule is written for outbound traffic: in IBM's sample
//! `IpFilterRule InternalNetWeb` (IpSourceAddr 9.1.1.1, IpDestAddrSet
//! 9.1.1.0/24, SourcePortRange 80, DestinationPortRange 1024 65535,
//! Direction bidirectional), "bidirectional" permits outbound traffic from
//! the local 9.1.1.1 port 80 to ephemeral ports in 9.1.1.0/24 *and* the
//! inbound traffic from those ports to 9.1.1.1 port 80 (IP Configuration
//! Guide, "IP filter policy"). So for [`Direction::Bidirectional`] the
//! conditions are compared as written with outbound packets and mirrored
//! (source ↔ destination, source port ↔ destination port) for inbound
//! packets. A one-way rule ([`Direction::Inbound`] or
//! [`Direction::Outbound`]) is compared as written with the packet's own
//! source and destination (our reading: the pages checked describe only the
//! bidirectional case).

use core::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::sa::{EncAlg, IntegAlg, Mode, Protocol};

mod render;
mod validate;

pub use validate::{PolicyError, RuleSetError};

/// An address condition: `*`, `addr/prefix_length` (a host is `/32`) or
/// `first-last`, as the IPSECRULE `src_ipaddr`/`dest_ipaddr` and the
/// IpFilterRule `IpSourceAddr`/`IpSourceAddrRange`/`IpSourceAddrSet`
/// parameters allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddrSpec {
    /// `*`: every address.
    Any,
    /// `addr/len`; bits of `addr` past `len` are ignored.
    Prefix {
        /// The network (or host) address.
        addr: Ipv4Addr,
        /// Prefix length, 0–32.
        len: u8,
    },
    /// `first-last`, inclusive.
    Range {
        /// First address.
        first: Ipv4Addr,
        /// Last address.
        last: Ipv4Addr,
    },
}

impl AddrSpec {
    /// One host: a `/32` prefix.
    pub const fn host(addr: Ipv4Addr) -> AddrSpec {
        AddrSpec::Prefix { addr, len: 32 }
    }

    /// Whether `a` satisfies the condition. A prefix longer than 32 (which
    /// [`FilterRule::validate`] rejects) matches nothing.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        match *self {
            AddrSpec::Any => true,
            AddrSpec::Prefix { addr, len } => match prefix_mask(len) {
                Some(mask) => u32::from(a) & mask == u32::from(addr) & mask,
                None => false,
            },
            AddrSpec::Range { first, last } => first <= a && a <= last,
        }
    }
}

/// The netmask of a prefix length, `None` past 32.
fn prefix_mask(len: u8) -> Option<u32> {
    match len {
        0 => Some(0),
        1..=32 => Some(u32::MAX << (32 - u32::from(len))),
        _ => None,
    }
}

/// A port condition: `SRCPORT *` or `SRCPORT n [m]` (IPSECRULE),
/// `SourcePortRange n [m]` (IpService).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortSpec {
    /// Every port.
    Any,
    /// `first` to `last`, inclusive (one port: `first == last`).
    Range {
        /// First port.
        first: u16,
        /// Last port.
        last: u16,
    },
}

impl PortSpec {
    /// Exactly one port.
    pub const fn single(port: u16) -> PortSpec {
        PortSpec::Range {
            first: port,
            last: port,
        }
    }

    /// Whether `port` satisfies the condition.
    pub fn contains(&self, port: u16) -> bool {
        match *self {
            PortSpec::Any => true,
            PortSpec::Range { first, last } => first <= port && port <= last,
        }
    }
}

/// The protocol condition of IPSECRULE's `PROTOCOL` (`*`, `TCP|6 SRCPORT
/// DESTPORT`, `UDP|17 SRCPORT DESTPORT`, `ICMP|1 TYPE CODE`, `OSPF|89
/// TYPE`, `protocol_number`) and of IpService's `Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolSpec {
    /// `PROTOCOL *`: every protocol.
    Any,
    /// TCP (6) with source and destination port conditions.
    Tcp {
        /// Source port condition (local port of outbound traffic).
        src: PortSpec,
        /// Destination port condition.
        dst: PortSpec,
    },
    /// UDP (17) with source and destination port conditions.
    Udp {
        /// Source port condition.
        src: PortSpec,
        /// Destination port condition.
        dst: PortSpec,
    },
    /// ICMP (1), `TYPE` and `CODE`; `None` is `*`.
    Icmp {
        /// ICMP type (RFC 792).
        icmp_type: Option<u8>,
        /// ICMP code.
        code: Option<u8>,
    },
    /// OSPF (89), `TYPE`; `None` is `*`.
    Ospf {
        /// OSPF packet type (RFC 2328 §A.3.1).
        ospf_type: Option<u8>,
    },
    /// Any other IP protocol number, with no further condition.
    Number(u8),
}

/// IPSECRULE `ROUTING LOCAL|ROUTED|EITHER`, IpService `Routing`: whether
/// the rule applies to traffic that starts or ends in this stack, to
/// traffic the stack forwards, or to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// Traffic sent or received by this stack (the default).
    Local,
    /// Traffic this stack forwards.
    Routed,
    /// Both.
    Either,
}

/// IPSECRULE `DIRECTION INBOUND|OUTBOUND|BIDIRECTIONAL`, IpService
/// `Direction`. See the module documentation for how a bidirectional rule
/// is mirrored for inbound packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Only inbound packets, compared as written.
    Inbound,
    /// Only outbound packets, compared as written.
    Outbound,
    /// Outbound packets as written, inbound packets mirrored (the default).
    Bidirectional,
}

/// IPSECRULE `DIRECTION BIDIRECTIONAL INBCONNECT|OUTBCONNECT`, IpService
/// `Direction Bidirectional InboundConnect|OutboundConnect`: which side may
/// open the TCP connections the rule covers. The rule does not match a
/// connection request (a TCP segment with SYN and without ACK) travelling
/// the other way, so such a SYN falls through to later rules and, in the
/// end, to the default deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpConnect {
    /// `INBCONNECT`: only the remote side opens connections.
    Inbound,
    /// `OUTBCONNECT`: only this side opens connections.
    Outbound,
}

/// What a packet must look like for a rule to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conditions {
    /// IPSECRULE `src_ipaddr`, IpFilterRule `IpSourceAddr*`: the local side
    /// of outbound traffic (see the module documentation).
    pub source: AddrSpec,
    /// IPSECRULE `dest_ipaddr`, IpFilterRule `IpDestAddr*`.
    pub destination: AddrSpec,
    /// Protocol, ports, ICMP type and code.
    pub protocol: ProtocolSpec,
    /// Local, routed or either.
    pub routing: Routing,
    /// Inbound, outbound or both.
    pub direction: Direction,
    /// `INBCONNECT`/`OUTBCONNECT`; `None` lets either side connect. Only
    /// TCP connection requests are affected.
    pub connect: Option<TcpConnect>,
    /// IPSECRULE `SECCLASS`, IpService `SecurityClass`: 1–255 restricts the
    /// rule to packets over interfaces of that security class; 0 (the
    /// default) is every interface.
    pub security_class: u8,
}

impl Conditions {
    /// Local traffic of `protocol` between `source` and `destination`,
    /// bidirectional, any interface, either side may connect.
    pub const fn local(
        source: AddrSpec,
        destination: AddrSpec,
        protocol: ProtocolSpec,
    ) -> Conditions {
        Conditions {
            source,
            destination,
            protocol,
            routing: Routing::Local,
            direction: Direction::Bidirectional,
            connect: None,
            security_class: 0,
        }
    }
}

/// One acceptable way to protect data on a dynamic tunnel: the
/// IpDataOffer statement. IBM's keywords map as follows.
/// - `HowToEncap Tunnel|Transport` → [`DataOffer::mode`].
/// - `HowToAuth AH|ESP alg` → [`DataOffer::protocol`] and
///   [`DataOffer::integrity`] (`Null` → [`IntegAlg::None`], as with
///   `AES_GCM_16`).
/// - `HowToEncrypt AES_CBC|AES_GCM_16 KeyLength n|DoNot` →
///   [`DataOffer::encryption`]: `None` for AH, `Some(EncAlg::Null)` for ESP
///   with `DoNot`.
/// - `RefreshLifetimeProposed` (minutes) → [`DataOffer::lifetime_secs`]
///   (seconds, the parser multiplies by 60).
/// - `RefreshLifesizeProposed` (kilobytes, or `None`) →
///   [`DataOffer::lifesize_bytes`] (bytes, the parser multiplies by 1024).
///
/// The PFS group is not an IpDataOffer parameter in z/OS but an
/// IpDynVpnAction one ([`DynVpnAction::pfs_group`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataOffer {
    /// ESP or AH.
    pub protocol: Protocol,
    /// Tunnel or transport.
    pub mode: Mode,
    /// The ESP cipher; `None` for AH.
    pub encryption: Option<EncAlg>,
    /// The integrity algorithm; [`IntegAlg::None`] with an AEAD cipher.
    pub integrity: IntegAlg,
    /// The SA lifetime to propose, seconds.
    pub lifetime_secs: u64,
    /// The SA lifesize to propose, bytes; `None` for no limit.
    pub lifesize_bytes: Option<u64>,
}

/// IpDynVpnAction `Initiation LocalOnly|RemoteOnly|Either`: who may start
/// the IKE negotiation of a tunnel for traffic of this action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Initiation {
    /// Only this stack's IKE starts negotiations.
    LocalOnly,
    /// Only the peer does.
    RemoteOnly,
    /// Either side (the default).
    Either,
}

impl Initiation {
    /// Whether this stack may start IKE for traffic of this action (an
    /// on-demand activation from an outbound packet, patent Fig. 11).
    pub const fn may_initiate(self) -> bool {
        matches!(self, Initiation::LocalOnly | Initiation::Either)
    }

    /// Whether a peer may start IKE for it.
    pub const fn may_accept(self) -> bool {
        matches!(self, Initiation::RemoteOnly | Initiation::Either)
    }
}

/// The IpDynVpnAction statement: traffic of the rule must travel in a
/// dynamic tunnel negotiated by IKE with one of these offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DynVpnAction {
    /// The action's name.
    pub name: String,
    /// The IpDataOffer statements, most preferred first.
    pub offers: Vec<DataOffer>,
    /// Who may start the negotiation.
    pub initiation: Initiation,
    /// `Pfs` / `InitiateWithPfs`: the IKE Diffie-Hellman group for perfect
    /// forward secrecy of the child SA (RFC 7296 §1.3.1), `None` without.
    pub pfs_group: Option<u16>,
}

/// The IpManVpnAction statement (IP Configuration Reference, page
/// `ipmanvpnactionstatement`): traffic of the rule must travel in a
/// manual tunnel, whose SAs are installed, never negotiated. Its SAs
/// anchor at the rule exactly as IKE's do at an IpDynVpnAction rule
/// ([`super::filter::FilterTable::anchor_for`]); an outbound packet that
/// matches the rule with no SA is dropped and never starts IKE.
///
/// z/OS keeps the manual SAs' SPIs and keys in the IpManVpnAction; in
/// plexnet they come from the topology's `[[manual_sa]]` tables (the
/// testbed's key source, `crates/topology/src/manual/mod.rs`), which the topology
/// links to this action by its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ManVpnAction {
    /// The action's name.
    pub name: String,
    /// `Active Yes|No` (default Yes). IBM: with `Active No`, "IP packets
    /// matching on the associated IpFilterRule are dropped until the
    /// IpManVpnAction statement is activated".
    pub active: bool,
    /// `LocalSecurityEndpointAddr`: this side's tunnel endpoint (the DVIPA).
    pub local: Ipv4Addr,
    /// `RemoteSecurityEndpointAddr`: the peer's tunnel endpoint.
    pub remote: Ipv4Addr,
}

/// What a matching rule does: IpGenericFilterAction `IpFilterAction
/// Permit|Deny`, IpDynVpnAction, or IpManVpnAction. The profile's IPSECRULE has no action
/// keyword: every default rule permits (IP Configuration Reference, "IPSEC
/// statement"), and what none permits falls to the default deny.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterAction {
    /// Let the packet through in clear.
    Permit,
    /// Drop it.
    Deny,
    /// Require a dynamic tunnel.
    Ipsec(DynVpnAction),
    /// Require a manual tunnel.
    Manual(ManVpnAction),
}

impl FilterAction {
    /// Whether the rule requires IPsec (dynamic or manual): an anchor of
    /// dynamic filters.
    pub const fn is_ipsec(&self) -> bool {
        matches!(self, FilterAction::Ipsec(_) | FilterAction::Manual(_))
    }
}

/// One filter rule: an IPSECRULE of the profile or an IpFilterRule of
/// the Policy Agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FilterRule {
    /// The rule's name, as `ipsec -f display` shows it.
    pub name: String,
    /// What the packet must look like.
    pub conditions: Conditions,
    /// What happens to it.
    pub action: FilterAction,
    /// IPSECRULE `LOG`, IpGenericFilterAction `IpFilterLogging Yes`: log
    /// packets this rule decides.
    pub log: bool,
}

/// An ordered list of filter rules: the first rule that matches decides.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RuleSet {
    /// The rules in table order.
    pub rules: Vec<FilterRule>,
}

impl RuleSet {
    /// A rule set of `rules`, in order.
    pub fn new(rules: Vec<FilterRule>) -> RuleSet {
        RuleSet { rules }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    pub(super) fn esp_offer(enc: EncAlg, integ: IntegAlg) -> DataOffer {
        DataOffer {
            protocol: Protocol::Esp,
            mode: Mode::Tunnel,
            encryption: Some(enc),
            integrity: integ,
            lifetime_secs: 240 * 60,
            lifesize_bytes: None,
        }
    }

    pub(super) fn ipsec_rule(offers: Vec<DataOffer>) -> FilterRule {
        FilterRule {
            name: "web".into(),
            conditions: Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Any),
            action: FilterAction::Ipsec(DynVpnAction {
                name: "vpn".into(),
                offers,
                initiation: Initiation::Either,
                pfs_group: Some(14),
            }),
            log: false,
        }
    }

    #[test]
    fn addresses() {
        let net = AddrSpec::Prefix {
            addr: ip("198.18.0.77"),
            len: 24,
        };
        assert!(net.contains(ip("198.18.0.1")));
        assert!(!net.contains(ip("198.18.1.1")));
        assert!(AddrSpec::host(ip("198.18.0.100")).contains(ip("198.18.0.100")));
        assert!(!AddrSpec::host(ip("198.18.0.100")).contains(ip("198.18.0.101")));
        let zero = AddrSpec::Prefix {
            addr: ip("10.0.0.0"),
            len: 0,
        };
        assert!(zero.contains(ip("198.18.0.1")));
        let bad = AddrSpec::Prefix {
            addr: ip("10.0.0.0"),
            len: 33,
        };
        assert!(!bad.contains(ip("10.0.0.0")));
        let range = AddrSpec::Range {
            first: ip("198.18.0.10"),
            last: ip("198.18.0.20"),
        };
        assert!(range.contains(ip("198.18.0.10")) && range.contains(ip("198.18.0.20")));
        assert!(!range.contains(ip("198.18.0.21")) && !range.contains(ip("198.18.0.9")));
    }

    #[test]
    fn ports_and_initiation() {
        let p = PortSpec::Range {
            first: 1024,
            last: 65535,
        };
        assert!(p.contains(1024) && p.contains(65535) && !p.contains(1023));
        assert!(PortSpec::single(80).contains(80) && !PortSpec::single(80).contains(81));
        assert!(PortSpec::Any.contains(0));
        assert!(Initiation::LocalOnly.may_initiate() && !Initiation::LocalOnly.may_accept());
        assert!(!Initiation::RemoteOnly.may_initiate() && Initiation::RemoteOnly.may_accept());
        assert!(Initiation::Either.may_initiate() && Initiation::Either.may_accept());
    }

    #[test]
    fn serde_round_trip() {
        let rule = ipsec_rule(vec![esp_offer(EncAlg::AesCbc256, IntegAlg::HmacSha256_128)]);
        let set = RuleSet::new(vec![rule]);
        let json = serde_json::to_string(&set).unwrap();
        assert!(json.contains("\"initiation\":\"either\""), "{json}");
        let back: RuleSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
    }
}
