//! A manually keyed SA pair between a client and a DVIPA, as resolved from
//! `[[manual_sa]]`.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

use plexnet_core::ipsec::{Mode, SaConfig};

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
