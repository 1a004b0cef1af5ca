//! What the topology hands the sysplex state machines: each image's
//! routing stack configuration and VIPADISTRIBUTE statements, and the
//! sysplex as a `SysplexSpec` (what the takeover steps look images up in).
//! sysplex defines the types
//! (`plexnet_core::sysplex::config`) and never reads the topology itself.

use std::net::Ipv4Addr;

use super::{Image, Topology};
use plexnet_core::sysplex::config::{InboundFilter, VipaDistribute};
use plexnet_core::sysplex::dct::DctTimeouts;
use plexnet_core::sysplex::routing::{FilterAt, RoutingConfig};
use plexnet_core::sysplex::spec::{ImageSpec, SysplexSpec};

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
            // [limits]: the DCT's bound and its half-open timeouts.
            timeouts: DctTimeouts {
                syn_ms: self.limits.half_open_timeout_ms,
                ..DctTimeouts::default()
            },
            limits: self.limits.dct(),
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

impl Topology {
    /// The sysplex as the state machines' drivers (the simulator) take it:
    /// every image's XCF address, routing configuration, VIPADYNAMIC
    /// statements and filter table, and the clients' addresses.
    pub fn sysplex_spec(&self) -> SysplexSpec {
        SysplexSpec {
            images: self.images.iter().map(Image::spec).collect(),
            xcf_forwarding: self.xcf_forwarding,
            clients: self.clients.iter().map(|c| c.addr).collect(),
        }
    }
}

impl Image {
    fn spec(&self) -> ImageSpec {
        ImageSpec {
            name: self.name.clone(),
            xcf_addr: self.xcf_addr,
            routing: self.routing_config(),
            defines: self.vipa.defines.iter().map(|d| d.addr).collect(),
            when_idle: self
                .vipa
                .defines
                .iter()
                .filter(|d| d.moveable == crate::model::Moveable::WhenIdle)
                .map(|d| d.addr)
                .collect(),
            backups: self.vipa.backups.iter().map(|b| (b.addr, b.rank)).collect(),
            distributes: self.vipa.distributes.clone(),
            // A policy the loader accepted makes a table (or none, without
            // IPSECURITY).
            filter_table: self
                .ip_security
                .as_ref()
                .and_then(|sec| sec.filter_table().ok().flatten()),
        }
    }
}
