//! The TOML file as written, before addresses are assigned and statements are
//! checked. Every table denies unknown keys, so a misspelt key is an error
//! with its line and column rather than a silently ignored setting.
//!
//! Values that can be wrong are kept as `Spanned<String>` and parsed in
//! `resolve`, so that their errors point at them and say what is allowed.
//! To add a setting later, add an `Option` (or `#[serde(default)]`) field here
//! and read it in `resolve`.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopologyFile {
    /// Names the run directory; defaults to the file stem.
    pub(crate) name: Option<Spanned<String>>,
    /// Free text for people.
    #[allow(dead_code)]
    pub(crate) description: Option<String>,
    pub(crate) external_lan: Option<ExternalLanDef>,
    pub(crate) router: Option<RouterDef>,
    pub(crate) cf: Option<CfDef>,
    /// Host names for DVIPAs: `DVA1 = "198.18.0.100"`.
    #[serde(default)]
    pub(crate) hosts: BTreeMap<String, Spanned<String>>,
    #[serde(default, rename = "image")]
    pub(crate) images: Vec<ImageDef>,
    #[serde(default, rename = "client_lan")]
    pub(crate) client_lans: Vec<ClientLanDef>,
    #[serde(default, rename = "client")]
    pub(crate) clients: Vec<ClientDef>,
    #[serde(default, rename = "manual_sa")]
    pub(crate) manual_sas: Vec<ManualSaDef>,
    pub(crate) ike: Option<IkeDef>,
    pub(crate) xcf: Option<XcfDef>,
    /// `[limits]`: bounds of the tables unauthenticated peers can grow,
    /// `key = integer` (the keys and ranges are `super::limits`').
    pub(crate) limits: Option<BTreeMap<String, Spanned<i64>>>,
}

/// `[xcf]`: settings of the XCF links between images.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XcfDef {
    /// `"gre"` (default) or `"gre-in-udp"`.
    #[serde(default)]
    pub(crate) forwarding: crate::XcfForwarding,
}

/// `[ike]`: the old way to configure IKE, now refused with the equivalent
/// Policy Agent policy (`super::ike_policy`). Defaults and
/// meanings are in `super::ike`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IkeDef {
    pub(crate) psk: Spanned<String>,
    pub(crate) proposals: Option<Spanned<String>>,
    pub(crate) esp_proposals: Option<Spanned<String>>,
    pub(crate) rekey_time: Option<Spanned<i64>>,
    pub(crate) life_time: Option<Spanned<i64>>,
    pub(crate) rekey_bytes: Option<Spanned<i64>>,
    pub(crate) life_bytes: Option<Spanned<i64>>,
    pub(crate) ike_rekey_time: Option<Spanned<i64>>,
    pub(crate) cookie_threshold: Option<Spanned<i64>>,
    pub(crate) on_demand: Option<bool>,
}

/// `[external_lan]`: where the images' `ext` links and the DVIPAs live.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExternalLanDef {
    /// Default `198.18.0.0/24`.
    pub(crate) subnet: Option<Spanned<String>>,
    /// `net`'s address on it; default the first host address (`.1`).
    pub(crate) gateway: Option<Spanned<String>>,
}

/// `[router]`: the `net` namespace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouterDef {
    /// Default `net`.
    pub(crate) name: Option<Spanned<String>>,
}

/// `[cf]`: the coupling facility.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CfDef {
    /// Default `CF`.
    pub(crate) name: Option<Spanned<String>>,
    /// Default `198.19.255.254`.
    pub(crate) addr: Option<Spanned<String>>,
}

/// `[[image]]`: a z/OS image with its TCP/IP stack.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageDef {
    pub(crate) name: Spanned<String>,
    /// Default: external LAN host `.10 + k` for image `k` (1-based, file order).
    pub(crate) ext_addr: Option<Spanned<String>>,
    /// Default `198.19.0.k`.
    pub(crate) xcf_addr: Option<Spanned<String>>,
    /// Whether IKE runs on this image for the DVIPAs it owns.
    #[serde(default)]
    pub(crate) ike: bool,
    /// `target` (default) or `routing` (claim 7).
    #[serde(default)]
    pub(crate) inbound_filter: crate::InboundFilter,
    /// Default `true`; `false` makes the routing stack decrypt everything.
    #[serde(default = "yes")]
    pub(crate) distribute_crypto: bool,
    /// The VIPADYNAMIC block in PROFILE.TCPIP syntax; none for a pure target.
    pub(crate) vipadynamic: Option<Spanned<String>>,
    /// Further PROFILE.TCPIP statements: `IPCONFIG IPSECURITY` and the
    /// `IPSEC ... ENDIPSEC` block (`super::profile`).
    pub(crate) profile: Option<Spanned<String>>,
    /// The Policy Agent's IPSec policy for this stack (`super::policy`).
    pub(crate) ipsec_policy: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

/// `[[client_lan]]`: a LAN behind `net` that clients can share.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientLanDef {
    pub(crate) name: Spanned<String>,
    /// Default: the next free `198.18.j.0/24`.
    pub(crate) subnet: Option<Spanned<String>>,
    /// Default: the first host address (`.1`).
    pub(crate) gateway: Option<Spanned<String>>,
}

/// `[[client]]`: a client host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientDef {
    pub(crate) name: Spanned<String>,
    /// The `[[client_lan]]` it sits on; default a LAN of its own, named
    /// after the client.
    pub(crate) lan: Option<Spanned<String>>,
    /// Default: the LAN's next free host address from `.2`.
    pub(crate) addr: Option<Spanned<String>>,
    /// `none` (default), `plexnet` or `strongswan`.
    pub(crate) ipsec: Option<Spanned<String>>,
    /// DVIPAs ([hosts] names or addresses) this client negotiates with by IKE.
    pub(crate) ike: Option<Vec<Spanned<String>>>,
}

/// `[[manual_sa]]`: a manually keyed SA pair between a client and a DVIPA.
/// `*_to_dvipa` is the direction client to DVIPA, `*_to_client` the other.
/// Defaults and meanings are in `super::manual`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManualSaDef {
    pub(crate) client: Spanned<String>,
    /// A `[hosts]` name or an address.
    pub(crate) dvipa: Spanned<String>,
    pub(crate) protocol: Option<Spanned<String>>,
    pub(crate) mode: Option<Spanned<String>>,
    pub(crate) encryption: Option<Spanned<String>>,
    pub(crate) integrity: Option<Spanned<String>>,
    pub(crate) udp_encap: Option<Spanned<bool>>,
    pub(crate) spi_to_dvipa: Option<Spanned<i64>>,
    pub(crate) spi_to_client: Option<Spanned<i64>>,
    pub(crate) ah_spi_to_dvipa: Option<Spanned<i64>>,
    pub(crate) ah_spi_to_client: Option<Spanned<i64>>,
    pub(crate) secret: Option<Spanned<String>>,
    pub(crate) enc_key_to_dvipa: Option<Spanned<String>>,
    pub(crate) integ_key_to_dvipa: Option<Spanned<String>>,
    pub(crate) enc_key_to_client: Option<Spanned<String>>,
    pub(crate) integ_key_to_client: Option<Spanned<String>>,
    pub(crate) replay_window: Option<Spanned<i64>>,
    pub(crate) lifetime: Option<LifetimeDef>,
}

/// `lifetime = { ... }` of a manual SA; every value optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifetimeDef {
    pub(crate) soft_seconds: Option<Spanned<i64>>,
    pub(crate) hard_seconds: Option<Spanned<i64>>,
    pub(crate) soft_bytes: Option<Spanned<i64>>,
    pub(crate) hard_bytes: Option<Spanned<i64>>,
    pub(crate) soft_packets: Option<Spanned<i64>>,
    pub(crate) hard_packets: Option<Spanned<i64>>,
}
