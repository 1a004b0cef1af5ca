//! AH+ESP bundles at an image (the patent's "Combined AH,ESP" rows; AH
//! outside ESP, RFC 4301 §4.3 transport adjacency): distributed exactly as
//! single SAs are, with an AH pair beside the ESP pair everywhere. Fig. 6:
//! one CF sequence structure per outbound SA (block 116), both pairs in one
//! [`XcfMessage::BundleInstall`] (block 118). Fig. 10: each bundle packet
//! takes one number from each structure (block 162) and is sealed ESP
//! first, then AH (block 164), under the same deadline policy as single
//! SAs (see [`super::SEQ_DEADLINE`]).

use anyhow::{Context, Result};
use std::net::Ipv4Addr;

use super::ImageNode;
use crate::ipsec::sa::Protocol;
use crate::sysplex::routing::OwnedPair;
use crate::sysplex::xcf::{AhBundle, BundleInstall, SaInstall, SeqKey, XcfMessage};
use crate::topology::ManualSa;

impl ImageNode {
    /// Fig. 6 for an AH+ESP bundle of an owned DVIPA: both pairs into the
    /// owned cache (block 112), a sequence structure per outbound SA in the
    /// CF (block 116), the bundle to every target's shadow cache (block
    /// 118), this image's own included.
    pub async fn install_bundle(&self, bundle: BundleInstall) -> Result<()> {
        let cf = self.cf.get().context("the CF is not connected yet")?;
        for key in [bundle.esp.seq_key, bundle.ah.seq_key] {
            cf.create_seq(key, 1)
                .await
                .with_context(|| format!("CF CreateSeq {key:?}"))?;
        }
        let now = self.now_ms();
        let (bundle, targets) = {
            let mut core = self.core();
            let r = core.routing.as_mut().context("this image owns no DVIPA")?;
            // As the targets get it: with the dynamic filter and its anchor.
            let bundle = r.install_bundle(&bundle).context("bundle refused")?;
            let targets = r.targets_of(bundle.esp.dvipa);
            core.target
                .install_bundle(now, &self.name, &bundle)
                .context("shadow bundle refused")?;
            (bundle, targets)
        };
        tracing::info!(
            "AH+ESP bundle esp in={:#010x} out={:#010x} ah in={:#010x} out={:#010x} for {} installed and sent to {} targets",
            bundle.esp.inbound.spi.0,
            bundle.esp.outbound.spi.0,
            bundle.ah.inbound.spi.0,
            bundle.ah.outbound.spi.0,
            bundle.esp.dvipa,
            targets.len()
        );
        if let Some(t) = self.takeover.get() {
            t.bundle_installed(&bundle);
        }
        let msg = XcfMessage::BundleInstall(Box::new(bundle));
        for (t, _) in targets.iter().filter(|(t, _)| *t != self.name) {
            self.xcf_out.send(t, msg.clone());
        }
        Ok(())
    }
}

/// The DVIPA side of a manual `protocol = "ah+esp"` SA as a bundle install;
/// `None` for any other protocol (see [`super::manual_install`]).
pub fn manual_bundle(ms: &ManualSa) -> Option<BundleInstall> {
    let side = ms.dvipa_side();
    let (inb, out) = (side.inbound, side.outbound);
    let esp = SaInstall::pair(ms.dvipa, inb.esp.clone()?, out.esp.clone()?);
    let (inbound, outbound) = (inb.ah.clone()?, out.ah.clone()?);
    let seq_key = SeqKey {
        dvipa: ms.dvipa,
        protocol: Protocol::Ah,
        spi: outbound.spi,
    };
    Some(BundleInstall {
        esp,
        ah: AhBundle {
            inbound,
            outbound,
            seq_key,
        },
    })
}

/// What removes an owned pair from the targets' shadow caches.
pub(super) fn delete_msg(dvipa: Ipv4Addr, pair: &OwnedPair) -> XcfMessage {
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
pub(super) fn seq_keys(pair: &OwnedPair) -> Vec<SeqKey> {
    std::iter::once(pair.install.seq_key)
        .chain(pair.ah.as_ref().map(|a| a.bundle.seq_key))
        .collect()
}
