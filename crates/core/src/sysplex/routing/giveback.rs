//! What a routing stack does when its DVIPA goes back to the VIPADEFINE
//! owner (z/OS MOVEABLE IMMEDIATE / WHENIDLE, see
//! [`crate::sysplex::config::Moveable`]): it stops making connections for
//! the DVIPA (MOVING), hands its DCT and SA pairs over (through the CF, by
//! the image), and lets go of them once the owner routes the DVIPA.

use super::*;

/// What a routing stack let go of when its DVIPA went back to its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    pub pairs: usize,
    pub connections: usize,
}

impl RoutingStack {
    /// MOVING (`true`): SYNs for `dvipa` make no DCT entry here any more
    /// ([`RouteDrop::Moving`]); existing connections are still routed.
    pub fn set_moving(&mut self, dvipa: Ipv4Addr, moving: bool) {
        if moving {
            self.moving.insert(dvipa);
        } else {
            self.moving.remove(&dvipa);
        }
    }

    /// Whether `dvipa` is MOVING here.
    pub fn is_moving(&self, dvipa: Ipv4Addr) -> bool {
        self.moving.contains(&dvipa)
    }

    /// The connections of `dvipa` in the DCT (WHENIDLE waits for none).
    pub fn connections_of(&self, dvipa: Ipv4Addr) -> usize {
        self.dct
            .sorted()
            .iter()
            .filter(|(k, _)| k.dvipa == dvipa)
            .count()
    }

    /// Every DCT entry of `dvipa` as the CF's copy keeps it, in key order
    /// (what the owner restores when the DVIPA moves back).
    pub fn connection_records(&self, dvipa: Ipv4Addr) -> Vec<DctChange> {
        self.dct
            .sorted()
            .into_iter()
            .filter(|(k, _)| k.dvipa == dvipa)
            .map(|(key, e)| DctChange::Made {
                key,
                target: e.target.to_string(),
                target_xcf: e.target_xcf,
                ipsec: e.ipsec,
            })
            .collect()
    }

    /// The owner routes `dvipa` now: its distributions, DCT entries and SA
    /// pairs leave this stack. Nothing goes into the journal (the CF's
    /// copy is the owner's to keep from now on), and the pairs' dynamic
    /// filters leave this stack's filter table.
    pub fn release(&mut self, dvipa: Ipv4Addr) -> Released {
        self.distributions.retain(|d| d.config.addr != dvipa);
        let keys: Vec<ConnKey> = self
            .dct
            .sorted()
            .into_iter()
            .filter(|(k, _)| k.dvipa == dvipa)
            .map(|(k, _)| k)
            .collect();
        for k in &keys {
            self.dct.remove(k);
        }
        let spis: Vec<Spi> = self
            .pairs
            .iter()
            .filter(|p| p.install.dvipa == dvipa)
            .map(|p| p.install.inbound.spi)
            .collect();
        for spi in &spis {
            self.delete(*spi);
        }
        self.moving.remove(&dvipa);
        Released {
            pairs: spis.len(),
            connections: keys.len(),
        }
    }
}
