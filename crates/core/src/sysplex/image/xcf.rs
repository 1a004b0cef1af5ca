//! The image on XCF: messages from other images dispatched to its routing
//! and target stacks (Fig. 7 blocks 120–122, Fig. 9 block 158, Fig. 11
//! blocks 170–174), the resync of a peer that (re)connects, the periodic
//! work, and Fig. 6's distribution of the SAs its routing stack installs.

use std::net::Ipv4Addr;

use super::{registrations, Image, ImageEvent, ImageId, Transmit, TICK};
use crate::ipsec::sa::Spi;
use crate::sysplex::routing::OwnedPair;
use crate::sysplex::target::InstallError;
use crate::sysplex::xcf::{BundleInstall, SaInstall, SeqKey, XcfMessage};
use crate::time::Instant;

/// Why an SA pair of an owned DVIPA could not be installed (Fig. 6).
#[derive(Debug, thiserror::Error)]
pub enum SaInstallError {
    #[error("this image owns no DVIPA")]
    NotRouting,
    #[error("SA refused: {0}")]
    Refused(#[from] crate::ipsec::sa::SaError),
    #[error("shadow SA refused: {0}")]
    Shadow(#[from] InstallError),
}

impl Image {
    /// A message from another image over XCF (or from this image's own
    /// routing stack to its own target stack).
    pub fn handle_xcf(&mut self, now: Instant, from: &ImageId, msg: XcfMessage) {
        self.counters.xcf_in += 1;
        let first_contact = self.heard.insert(from.clone());
        match &msg {
            XcfMessage::Lifesize { .. } => self.events.push_back(ImageEvent::Lifesize {
                from: from.clone(),
                report: msg.clone(),
            }),
            XcfMessage::NewConn { .. } => self.events.push_back(ImageEvent::NewConn {
                from: from.clone(),
                request: msg.clone(),
            }),
            XcfMessage::Giveback { dvipa, step } => self.on_giveback(now, from, *dvipa, *step),
            _ => {}
        }
        if let Some(r) = self.routing.as_mut() {
            r.on_xcf(from.as_str(), &msg);
        }
        match self.target.on_xcf(now, from.as_str(), &msg) {
            Err(e) => self.events.push_back(ImageEvent::SaRefused {
                from: from.clone(),
                reason: e.to_string(),
            }),
            Ok(()) if matches!(msg, XcfMessage::SaInstall(_)) => self.release_held(now),
            Ok(()) => {}
        }
        if let XcfMessage::VipaList { .. } = msg {
            // Answer with our listeners on the ports it announced.
            for (owner, dvipa, port) in registrations(&self.target, &self.listeners) {
                if owner == *from {
                    let msg = XcfMessage::RegisterListener { dvipa, port };
                    self.send_xcf(owner, msg);
                }
            }
        }
        // Lifesize reports, ConnEnded, and a new routing stack's
        // connection reports.
        self.collect_target_outbox();
        if first_contact {
            self.announce_to(from);
        }
    }

    /// A peer's XCF connection came up: it gets the VIPA list and every SA
    /// of a DVIPA distributed to it.
    pub fn handle_peer_up(&mut self, peer: &ImageId) {
        self.watch_peer_up(peer.as_str());
        self.announce_to(peer);
    }

    /// A peer's XCF connection went down: forget what it registered, and
    /// resync it when it comes back.
    pub fn handle_peer_down(&mut self, peer: &ImageId) {
        self.watch_peer_down(peer.as_str());
        self.heard.remove(peer);
        if let Some(r) = self.routing.as_mut() {
            r.target_down(peer.as_str());
        }
    }

    /// `peer` already has what this image would announce to it (the
    /// simulator's links are up before its trace starts, and its scenarios
    /// announce explicitly): no resync at first contact.
    pub fn assume_synced(&mut self, peer: &ImageId) {
        self.watch_peer_up(peer.as_str());
        self.heard.insert(peer.clone());
    }

    /// The VIPA list and every owned SA to every target (on start, after a
    /// takeover).
    pub fn announce_all(&mut self) {
        for t in self.distribution_targets() {
            self.announce_to(&t);
        }
    }

    /// The VIPA list and the owned SAs `target` serves, over XCF. This
    /// image's own target stack needs no resync (and XCF has no link to
    /// the image itself).
    fn announce_to(&mut self, target: &ImageId) {
        if *target == self.id {
            return;
        }
        let Some(r) = self.routing.as_ref() else {
            return;
        };
        let mut msgs = vec![r.vipa_list()];
        msgs.extend(
            r.pairs()
                .iter()
                .filter(|p| {
                    r.targets_of(p.install.dvipa)
                        .iter()
                        .any(|(n, _)| *n == *target.as_str())
                })
                .map(OwnedPair::install_msg),
        );
        for msg in msgs {
            self.transmits.push_back(Transmit::Xcf {
                to: target.clone(),
                msg,
            });
        }
    }

    /// The periodic work, when [`Image::poll_timeout`] is due: DCT
    /// timeouts, pending lifesize counts, the target's filter logs, the
    /// listener registrations, the VIPA list to every target, and the
    /// held SYNs' expiry (Fig. 11 block 178).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.evaluate_watches(now);
        if now < self.next_tick {
            return;
        }
        self.next_tick += TICK;
        if self.next_tick <= now {
            self.next_tick = now + TICK;
        }
        if let Some(r) = self.routing.as_mut() {
            r.on_timeout(now);
        }
        if self.watches_evaluated() {
            // WHENIDLE: the last connection may have ended.
            self.evaluate_givebacks();
        }
        self.target.flush_lifesize();
        self.target.expire_served(now);
        let logs = self.target.take_filter_logs();
        self.push_filter_logs(logs);
        self.collect_target_outbox();
        for (owner, dvipa, port) in registrations(&self.target, &self.listeners) {
            self.send_xcf(owner, XcfMessage::RegisterListener { dvipa, port });
        }
        if let Some(list) = self.routing.as_ref().map(|r| r.vipa_list()) {
            for t in self.distribution_targets() {
                self.send_xcf(t, list.clone());
            }
        }
        self.release_held(now);
    }

    /// Fig. 6 blocks 112 and 118 for one SA pair of an owned DVIPA (its
    /// CF sequence structure, block 116, is the shell's to create first):
    /// into the owned cache, then with its filter to every target's shadow
    /// cache, this image's own included. Returns the pair as the targets
    /// got it (with its dynamic filter and anchor).
    pub fn install_pair(
        &mut self,
        now: Instant,
        install: SaInstall,
    ) -> Result<SaInstall, SaInstallError> {
        let r = self.routing.as_mut().ok_or(SaInstallError::NotRouting)?;
        let install = r.install(install)?;
        self.target.install(now, self.id.as_str(), &install)?;
        for t in self.other_targets_of(install.dvipa) {
            let msg = XcfMessage::SaInstall(Box::new(install.clone()));
            self.transmits.push_back(Transmit::Xcf { to: t, msg });
        }
        self.release_held(now);
        Ok(install)
    }

    /// Fig. 6 for an AH+ESP bundle: both pairs into the owned cache, the
    /// bundle to every target's shadow cache, this image's own included.
    pub fn install_bundle(
        &mut self,
        now: Instant,
        bundle: &BundleInstall,
    ) -> Result<BundleInstall, SaInstallError> {
        let r = self.routing.as_mut().ok_or(SaInstallError::NotRouting)?;
        let bundle = r.install_bundle(bundle)?;
        self.target.install_bundle(now, self.id.as_str(), &bundle)?;
        for t in self.other_targets_of(bundle.esp.dvipa) {
            let msg = XcfMessage::BundleInstall(Box::new(bundle.clone()));
            self.transmits.push_back(Transmit::Xcf { to: t, msg });
        }
        Ok(bundle)
    }

    /// Removes an SA pair from the owned cache and every shadow cache (a
    /// DELETE from the peer, or the old pair after a rekey once the new one
    /// is everywhere); returns it, so the shell removes its CF sequence
    /// structures ([`seq_keys`]).
    pub fn delete_pair(
        &mut self,
        now: Instant,
        dvipa: Ipv4Addr,
        inbound_spi: Spi,
    ) -> Option<OwnedPair> {
        let pair = self.routing.as_mut()?.delete(inbound_spi)?;
        let msg = delete_msg(dvipa, &pair);
        let _ = self.target.on_xcf(now, self.id.as_str(), &msg);
        for t in self.other_targets_of(dvipa) {
            self.transmits.push_back(Transmit::Xcf {
                to: t,
                msg: msg.clone(),
            });
        }
        Some(pair)
    }

    /// Tells every target of `dvipa` (this image too) whether the rekey of
    /// the pair with `spi` came late, so they adapt their lifesize report
    /// thresholds (Fig. 9 block 156, Fig. 10 block 166: "decreased if the
    /// IKE was not successful in refreshing the SA before its expiration").
    pub fn rekey_timing(&mut self, now: Instant, dvipa: Ipv4Addr, spi: Spi, late: bool) {
        if self.routing.is_none() {
            return;
        }
        let msg = XcfMessage::RekeyTiming { dvipa, spi, late };
        let _ = self.target.on_xcf(now, self.id.as_str(), &msg);
        for t in self.other_targets_of(dvipa) {
            self.transmits.push_back(Transmit::Xcf {
                to: t,
                msg: msg.clone(),
            });
        }
    }

    /// Whether the routing stack owns the pair with this inbound SPI.
    pub fn owns_pair(&self, inbound_spi: Spi) -> bool {
        self.routing.as_ref().is_some_and(|r| {
            r.pairs()
                .iter()
                .any(|p| p.install.inbound.spi == inbound_spi)
        })
    }
}

/// What removes an owned pair from the targets' shadow caches.
pub fn delete_msg(dvipa: Ipv4Addr, pair: &OwnedPair) -> XcfMessage {
    let (inb, out) = (&pair.install.inbound, &pair.install.outbound);
    match &pair.ah {
        None => XcfMessage::SaDelete {
            dvipa,
            protocol: inb.protocol,
            inbound_spi: inb.spi,
            outbound_spi: out.spi,
        },
        Some(ah) => XcfMessage::BundleDelete {
            dvipa,
            esp_inbound_spi: inb.spi,
            esp_outbound_spi: out.spi,
            ah_inbound_spi: ah.bundle.inbound.spi,
            ah_outbound_spi: ah.bundle.outbound.spi,
        },
    }
}

/// The CF sequence structures of an owned pair: one per outbound SA.
pub fn seq_keys(pair: &OwnedPair) -> Vec<SeqKey> {
    std::iter::once(pair.install.seq_key)
        .chain(pair.ah.as_ref().map(|a| a.bundle.seq_key))
        .collect()
}
