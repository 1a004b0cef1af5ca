//! AH+ESP bundles at an image (the patent's "Combined AH,ESP" rows; AH
//! outside ESP, RFC 4301 §4.3 transport adjacency): distributed exactly as
//! single SAs are, with an AH pair beside the ESP pair everywhere. Fig. 6:
//! one CF sequence structure per outbound SA (block 116), both pairs in one
//! `XcfMessage::BundleInstall` (block 118). Fig. 10: each bundle packet
//! takes one number from each structure (block 162) and is sealed ESP
//! first, then AH (block 164), under the same deadline policy as single
//! SAs (see [`crate::sysplex::image::SEQ_DEADLINE`]).

use super::{ImageNode, Outputs};
use crate::ipsec::sa::Protocol;
use crate::sysplex::xcf::{AhBundle, BundleInstall, SaInstall, SeqKey};
use crate::topology::ManualSa;
use anyhow::{Context, Result};

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
        let now = self.now();
        let (bundle, out) = {
            let mut core = self.core();
            let bundle = core.image.install_bundle(now, &bundle)?;
            (bundle, Outputs::drain(&mut core.image, now))
        };
        tracing::info!(
            "AH+ESP bundle esp in={:#010x} out={:#010x} ah in={:#010x} out={:#010x} for {} installed and sent to {} targets",
            bundle.esp.inbound.spi.0,
            bundle.esp.outbound.spi.0,
            bundle.ah.inbound.spi.0,
            bundle.ah.outbound.spi.0,
            bundle.esp.dvipa,
            self.targets_of(bundle.esp.dvipa)
        );
        if let Some(t) = self.takeover.get() {
            t.bundle_installed(&bundle);
        }
        self.send_messages(out.xcf);
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
