//! The sysplex's configuration as its state machines take it: how XCF
//! carries forwarded datagrams, where inbound filtering happens, and the
//! VIPADISTRIBUTE statements. The topology crate reads these from the z/OS
//! statements (PROFILE.TCPIP, `[xcf]`) and re-exports them; sysplex
//! depends on nothing above it (docs/ARCHITECTURE.md, the layer map).

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// The encapsulation of forwarded datagrams on XCF links. Both are GRE
/// (RFC 2784) with the same key and the same link check at the target;
/// they differ in what carries the GRE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XcfForwarding {
    /// GRE straight in IPv4 (protocol 47), one datagram per packet, as the
    /// patent draws it.
    #[default]
    Gre,
    /// GRE in UDP to port 4754 (RFC 8086). The routing stack hands a burst
    /// for one target to the kernel as one buffer (UDP segmentation
    /// offload) and the target reads it back as one (UDP GRO), so the XCF
    /// hop costs one system call and one pass through each stack per burst,
    /// not per packet. tshark decodes UDP 4754 as GRE.
    GreInUdp,
}

/// When the stack that holds a DVIPA gives it back to its VIPADEFINE
/// owner once the owner is active again (`VIPADEFINE MOVEABLE IMMEDIATE |
/// MOVEABLE WHENIDLE`, z/OS Communications Server IP Configuration
/// Reference, "VIPADYNAMIC - VIPADEFINE statement"; the MIB's
/// `ibmMvsDVIPAMoveable`): `immediate(2)` "can be moved to another stack as
/// soon as the other stack requests ownership ... Any existing connections
/// on this stack will be maintained by the new owning stack until the
/// connections are closed. All new connection requests will be directed to
/// the new owning stack"; `whenIdle(3)` "can be moved to another stack when
/// there are no connections for this dynamic VIPA on this stack. While there
/// are existing connections, any new connection requests will continue to be
/// directed to this stack."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Moveable {
    #[default]
    Immediate,
    WhenIdle,
}

/// Where inbound filtering of a DVIPA's IPsec traffic happens (claim 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundFilter {
    /// The target filters after decryption (Fig. 9 block 152).
    #[default]
    Target,
    /// The routing stack filters (tunnel check before forwarding); targets
    /// skip filtering for GRE that arrives on its XCF link.
    Routing,
}

/// `DISTMETHOD`: how the routing stack picks a target for a new
/// connection (Fig. 8 blocks 142, 144).
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
    /// TIMEDAFFINITY seconds: a client's connections to a port stay on one
    /// target while it has any and this long after its last one ended.
    #[serde(default)]
    pub timed_affinity: Option<u32>,
    pub addr: Ipv4Addr,
    pub ports: Vec<u16>,
    /// Resolved destinations; `DESTIP ALL` is expanded to every image, in
    /// file order, with `all = true` kept for display.
    pub dests: Vec<Dest>,
    pub all: bool,
}

/// One DESTIP entry: a target image of a distributed DVIPA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dest {
    /// The image's name, as the topology spells it.
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

/// The images of the sysplex as a takeover needs them (patent Fig. 12):
/// which stacks may hold a DVIPA, and where a recorded connection's
/// target is now. The topology implements it; sysplex only asks.
pub trait SysplexImages {
    /// The image called `name` (case-insensitively): its name as the
    /// configuration spells it, and its XCF address.
    fn image_xcf(&self, name: &str) -> Option<(&str, Ipv4Addr)>;
    /// The image that VIPADEFINEs `dvipa` (its primary owner).
    fn dvipa_owner(&self, dvipa: Ipv4Addr) -> Option<&str>;
    /// Every image with a VIPADEFINE (rank `None`) or a VIPABACKUP (its
    /// rank) for `dvipa`, in configuration order.
    fn dvipa_holders(&self, dvipa: Ipv4Addr) -> Vec<(&str, Option<u8>)>;
    /// How the owner's VIPADEFINE lets `dvipa` move back to it
    /// ([`Moveable`]; z/OS's default is IMMEDIATE).
    fn dvipa_moveable(&self, _dvipa: Ipv4Addr) -> Moveable {
        Moveable::Immediate
    }
}
