//! What the topology hands the sysplex state machines: each image's
//! routing stack configuration and VIPADISTRIBUTE statements, and the
//! images a takeover looks up (patent Fig. 12). sysplex defines the types
//! (`plexnet_core::sysplex::config`) and never reads the topology itself.

use std::net::Ipv4Addr;

use super::{Image, Topology};
use plexnet_core::sysplex::config::{InboundFilter, SysplexImages, VipaDistribute};
use plexnet_core::sysplex::routing::{FilterAt, RoutingConfig};

impl Image {
    /// The configuration this image's definition gives its routing stack:
    /// where inbound filtering happens (claim 7) and whether crypto is
    /// distributed.
    pub fn routing_config(&self) -> RoutingConfig {
        RoutingConfig {
            filter_at: match self.inbound_filter {
                InboundFilter::Target => FilterAt::Target,
                InboundFilter::Routing => FilterAt::Routing,
            },
            // IPSEC DVIPSEC: with IPSECURITY, a DVIPA's IPsec is distributed
            // only when the owner says so; without it the routing stack
            // does the crypto itself (z/OS IPSEC statement).
            distribute_crypto: self.distribute_crypto && self.dvipsec_allows_distribution(),
            ..RoutingConfig::default()
        }
    }

    /// The VIPADISTRIBUTE statements this image has for `dvipa`: its
    /// owner's, or those a backup distributes it with after a takeover.
    pub fn distributions_of(&self, dvipa: Ipv4Addr) -> Vec<VipaDistribute> {
        self.vipa
            .distributes
            .iter()
            .filter(|d| d.addr == dvipa)
            .cloned()
            .collect()
    }
}

impl SysplexImages for Topology {
    fn image_xcf(&self, name: &str) -> Option<(&str, Ipv4Addr)> {
        self.image(name).map(|i| (i.name.as_str(), i.xcf_addr))
    }

    fn dvipa_owner(&self, dvipa: Ipv4Addr) -> Option<&str> {
        self.owner_of(dvipa).map(|i| i.name.as_str())
    }

    fn dvipa_holders(&self, dvipa: Ipv4Addr) -> Vec<(&str, Option<u8>)> {
        let mut out = Vec::new();
        for image in &self.images {
            if image.vipa.defines.iter().any(|d| d.addr == dvipa) {
                out.push((image.name.as_str(), None));
            }
            for b in image.vipa.backups.iter().filter(|b| b.addr == dvipa) {
                out.push((image.name.as_str(), Some(b.rank)));
            }
        }
        out
    }
}
