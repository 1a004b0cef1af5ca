//! A sysplex as a driver of the state machines needs it: every image's
//! XCF address, routing stack configuration, VIPADEFINE/VIPABACKUP/
//! VIPADISTRIBUTE statements and IP filter table, and the clients. The
//! topology crate builds one from a topology file
//! (`Topology::sysplex_spec`); the simulator runs one, so it depends on
//! the core alone (docs/ARCHITECTURE.md, the layer map).

use std::net::Ipv4Addr;

use super::config::{Moveable, SysplexImages, VipaDistribute, XcfForwarding};
use super::routing::RoutingConfig;
use crate::ipsec::filter::FilterTable;

/// One image of a [`SysplexSpec`].
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The image's name as the configuration spells it.
    pub name: String,
    pub xcf_addr: Ipv4Addr,
    /// Its routing stack's configuration (claim 7's inbound filter place,
    /// DVIPSEC).
    pub routing: RoutingConfig,
    /// The DVIPAs it VIPADEFINEs.
    pub defines: Vec<Ipv4Addr>,
    /// The DVIPAs it VIPADEFINEs with MOVEABLE WHENIDLE (the others are
    /// MOVEABLE IMMEDIATE).
    pub when_idle: Vec<Ipv4Addr>,
    /// The DVIPAs it VIPABACKUPs, with their rank.
    pub backups: Vec<(Ipv4Addr, u8)>,
    /// Its VIPADISTRIBUTE statements.
    pub distributes: Vec<VipaDistribute>,
    /// The filter table its profile and policy make, when it has
    /// IPCONFIG IPSECURITY.
    pub filter_table: Option<FilterTable>,
}

impl ImageSpec {
    /// The VIPADISTRIBUTE statements this image has for `dvipa`: its
    /// owner's, or those a backup distributes it with after a takeover.
    pub fn distributions_of(&self, dvipa: Ipv4Addr) -> Vec<VipaDistribute> {
        self.distributes
            .iter()
            .filter(|d| d.addr == dvipa)
            .cloned()
            .collect()
    }
}

/// The images of a sysplex, how XCF forwards datagrams, and its clients'
/// addresses.
#[derive(Debug, Clone, Default)]
pub struct SysplexSpec {
    pub images: Vec<ImageSpec>,
    pub xcf_forwarding: XcfForwarding,
    pub clients: Vec<Ipv4Addr>,
}

impl SysplexSpec {
    /// The image called `name` (case-insensitively, as z/OS names are).
    pub fn image(&self, name: &str) -> Option<&ImageSpec> {
        self.images
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(name))
    }

    /// The image that VIPADEFINEs `dvipa`.
    pub fn owner_of(&self, dvipa: Ipv4Addr) -> Option<&ImageSpec> {
        self.images.iter().find(|i| i.defines.contains(&dvipa))
    }
}

impl SysplexImages for SysplexSpec {
    fn image_xcf(&self, name: &str) -> Option<(&str, Ipv4Addr)> {
        self.image(name).map(|i| (i.name.as_str(), i.xcf_addr))
    }

    fn dvipa_owner(&self, dvipa: Ipv4Addr) -> Option<&str> {
        self.owner_of(dvipa).map(|i| i.name.as_str())
    }

    fn dvipa_moveable(&self, dvipa: Ipv4Addr) -> Moveable {
        match self.owner_of(dvipa) {
            Some(o) if o.when_idle.contains(&dvipa) => Moveable::WhenIdle,
            _ => Moveable::Immediate,
        }
    }

    fn dvipa_holders(&self, dvipa: Ipv4Addr) -> Vec<(&str, Option<u8>)> {
        let mut out = Vec::new();
        for image in &self.images {
            if image.defines.contains(&dvipa) {
                out.push((image.name.as_str(), None));
            }
            for (_, rank) in image.backups.iter().filter(|(a, _)| *a == dvipa) {
                out.push((image.name.as_str(), Some(*rank)));
            }
        }
        out
    }
}
