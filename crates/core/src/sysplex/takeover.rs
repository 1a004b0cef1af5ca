//! VIPA takeover (docs/ARCHITECTURE.md, "SA distribution and takeover";
//! the inbound patent incorporates the VIPA takeover applications): what the owning routing stack keeps in
//! the coupling facility's key/value store so that a backup can continue,
//! and which image takes a DVIPA over when its owner is gone.
//!
//! # What the owner writes (asynchronously, off the packet path)
//!
//! | key                                         | value          | written when                     |
//! |---------------------------------------------|----------------|----------------------------------|
//! | `dvipa/<DVIPA>/owner`                       | [`OwnerRecord`]| the image takes (or starts with) the DVIPA |
//! | `dvipa/<DVIPA>/sa/<esp\|ah>/<inbound SPI>`  | [`SaRecord`]   | an SA pair or AH+ESP bundle is installed (IKE, rekey, manual); deleted with it |
//! | `dvipa/<DVIPA>/conn/<client>:<port>/<port>` | [`ConnRecord`] | a DCT (VCRT) entry is made; deleted when it ends or expires |
//!
//! The [`SaInstall`](super::xcf::SaInstall) holds what a target needs (keys, selectors,
//! the owner's dynamic filter and its anchor) and the CF sequence key of
//! the outbound SA (a bundle's record also its AH pair and the AH SA's
//! sequence key); the sequence structure itself stays in the CF, so every
//! sender keeps taking numbers from the same counter across a takeover and
//! no number is used twice (RFC 4303 §3.3.3). The adopter does not trust
//! the record's filter: its own filter table anchors the pair again
//! ([`Adopter::adopt`]).
//!
//! # Who takes a DVIPA over
//!
//! z/OS: the VIPABACKUP with the highest rank among the live stacks; the
//! VIPADEFINE owner ranks above every backup. The original owner, when it
//! restarts while another stack holds its DVIPA, does not claim it by
//! itself: the CF's owner record names the holder, the restarted stack
//! waits as a backup (see [`Watch`]), and the holder gives the DVIPA back
//! as the owner's VIPADEFINE says (MOVEABLE IMMEDIATE: at once; MOVEABLE
//! WHENIDLE: once it has no connections left), through the CF like a
//! takeover (`image::giveback`). A backup claims
//! the DVIPA with a CF compare-and-swap on the owner record before it does
//! anything else ([`claim_request`]), so two backups never both hold it.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

use super::cf_key::{CfKey, CfPrefix};
use super::config::{Moveable, SysplexImages};
use super::dct::ConnKey;
use super::routing::{DctChange, RoutingStack};
use super::target::TargetStack;
use super::xcf::{BundleInstall, CfRequest, SaInstall};
use crate::ipsec::sa::{Protocol, Spi};
use crate::time::Instant;

/// The rank of the VIPADEFINE owner: above every VIPABACKUP rank (1..=254).
pub const OWNER_RANK: u16 = 255;

/// Everything the CF holds for one DVIPA.
pub fn dvipa_prefix(dvipa: Ipv4Addr) -> CfPrefix {
    CfPrefix::Dvipa(dvipa)
}

/// Who holds the DVIPA now.
pub fn owner_key(dvipa: Ipv4Addr) -> CfKey {
    CfKey::Owner(dvipa)
}

/// The SA pairs of a DVIPA.
pub fn sa_prefix(dvipa: Ipv4Addr) -> CfPrefix {
    CfPrefix::Sas(dvipa)
}

/// One SA pair, by protocol and inbound SPI.
pub fn sa_key(dvipa: Ipv4Addr, protocol: Protocol, inbound_spi: Spi) -> CfKey {
    CfKey::Sa {
        dvipa,
        protocol,
        inbound_spi,
    }
}

/// One SA record: a single pair, or an AH+ESP bundle (keyed by its ESP
/// pair, whose inbound SPI no other ESP pair of the DVIPA has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaRecord {
    Pair(Box<SaInstall>),
    Bundle(Box<BundleInstall>),
}

impl SaRecord {
    /// The single pair, or the bundle's ESP pair.
    pub fn pair(&self) -> &SaInstall {
        match self {
            SaRecord::Pair(p) => p,
            SaRecord::Bundle(b) => &b.esp,
        }
    }

    /// Where the record is kept.
    pub fn key(&self) -> CfKey {
        let p = self.pair();
        sa_key(p.dvipa, p.inbound.protocol, p.inbound.spi)
    }
}

/// The connection table of a DVIPA.
pub fn conn_prefix(dvipa: Ipv4Addr) -> CfPrefix {
    CfPrefix::Conns(dvipa)
}

/// One connection of a DVIPA's table.
pub fn conn_key(key: &ConnKey) -> CfKey {
    CfKey::Conn(*key)
}

/// The connection a [`conn_key`]'s text names; `None` for anything else.
pub fn parse_conn_key(key: &str) -> Option<ConnKey> {
    CfKey::parse(key).and_then(CfKey::conn)
}

/// The CF's record of who holds a DVIPA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub image: String,
    /// Whether the holder took it over from another stack.
    pub takeover: bool,
    /// The stack that held it before, for a takeover.
    pub previous: Option<String>,
}

/// One DCT entry as the CF keeps it: enough to keep routing the
/// connection's packets to the same target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnRecord {
    pub target: String,
    pub target_xcf: Ipv4Addr,
    pub ipsec: bool,
}

/// The compare-and-swap by which `me` claims `dvipa` after `previous`
/// failed, given the owner record the CF holds now (`current`): the record
/// must still name `previous`, or `me`, or be absent. `None` when it names
/// another stack, which took the DVIPA already. Of two backups that both
/// saw the owner go, the CF lets exactly one swap succeed.
pub fn claim_request(
    dvipa: Ipv4Addr,
    me: &str,
    previous: Option<&str>,
    current: Option<Vec<u8>>,
) -> Option<CfRequest> {
    if let Some(rec) = current
        .as_deref()
        .and_then(|b| decode::<OwnerRecord>(b).ok())
    {
        if Some(rec.image.as_str()) != previous && rec.image != me {
            return None;
        }
    }
    let mine = OwnerRecord {
        image: me.to_string(),
        takeover: previous.is_some(),
        previous: previous.map(str::to_string),
    };
    Some(CfRequest::CompareAndSwap {
        key: owner_key(dvipa).into(),
        expected: current,
        value: encode(&mine),
    })
}

/// The CF request that keeps the connection table's copy in step with one
/// DCT change: the connection's record put under its key, or the key
/// deleted when the entry ended.
pub fn conn_request(change: &DctChange) -> CfRequest {
    match change {
        DctChange::Made {
            key,
            target,
            target_xcf,
            ipsec,
        } => CfRequest::Put {
            key: conn_key(key).into(),
            value: encode(&ConnRecord {
                target: target.clone(),
                target_xcf: *target_xcf,
                ipsec: *ipsec,
            }),
        },
        DctChange::Ended(key) => CfRequest::Delete {
            key: conn_key(key).into(),
        },
    }
}

/// Why a recorded connection is not continued after a takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotRestored {
    #[error("its target is not an image of the topology")]
    NotAnImage,
    /// The connection's server died with the stack that failed.
    #[error("its target is the stack that failed")]
    TargetFailed,
}

/// The image a recorded connection continues on after a takeover from
/// `failed`: its name and its XCF address as the configuration has them now.
pub fn restore_target<'a>(
    images: &'a impl SysplexImages,
    rec: &ConnRecord,
    failed: Option<&str>,
) -> Result<(&'a str, Ipv4Addr), NotRestored> {
    if failed == Some(rec.target.as_str()) {
        return Err(NotRestored::TargetFailed);
    }
    images.image_xcf(&rec.target).ok_or(NotRestored::NotAnImage)
}

/// What adopting one SA record from the CF did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaAdoption {
    /// The pair (or the bundle, by its ESP pair) is owned by the new
    /// routing stack and in its image's own shadow cache.
    Adopted {
        inbound: Spi,
        outbound: Spi,
        /// Where the outbound SA sends: the IKE peer of a negotiated pair.
        peer: std::net::IpAddr,
        bundle: bool,
    },
    /// The routing stack or the image's shadow cache would not take it
    /// (the error's text).
    Refused { inbound: Spi, why: String },
}

/// What became of one connection read from the CF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnAdoption {
    /// In the new routing stack's DCT, towards `target` at `target_xcf`.
    Restored {
        key: ConnKey,
        target: String,
        target_xcf: Ipv4Addr,
    },
    NotRestored {
        key: ConnKey,
        target: String,
        why: NotRestored,
    },
}

/// What a takeover adopted from the CF, in the order read, for the caller
/// to count (runtime) or render (simulator).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adoption {
    pub sas: Vec<SaAdoption>,
    pub conns: Vec<ConnAdoption>,
}

impl Adoption {
    pub fn sas_adopted(&self) -> usize {
        self.sas
            .iter()
            .filter(|a| matches!(a, SaAdoption::Adopted { .. }))
            .count()
    }

    pub fn conns_restored(&self) -> usize {
        self.conns
            .iter()
            .filter(|a| matches!(a, ConnAdoption::Restored { .. }))
            .count()
    }
}

/// The stacks a takeover puts the CF's state into: the new routing
/// stack, and the target stack of the same image.
#[derive(Debug)]
pub struct Adopter<'a> {
    pub routing: &'a mut RoutingStack,
    pub target: &'a mut TargetStack,
    /// This image: the owner its shadow copies are installed under.
    pub me: &'a str,
    pub now: Instant,
}

impl Adopter<'_> {
    /// A takeover of `dvipa` from `failed`, after the claim: every SA
    /// record of the DVIPA becomes an owned pair (or bundle) of the
    /// routing stack, with this image's own shadow copy as any install
    /// makes; every connection continues on its target, unless that
    /// target is not an image or is the stack that failed
    /// ([`restore_target`]). Records of other DVIPAs are left alone.
    pub fn adopt(
        mut self,
        images: &impl SysplexImages,
        dvipa: Ipv4Addr,
        sas: Vec<SaRecord>,
        conns: Vec<(ConnKey, ConnRecord)>,
        failed: Option<&str>,
    ) -> Adoption {
        let mut out = Adoption::default();
        for rec in sas.iter().filter(|s| s.pair().dvipa == dvipa) {
            out.sas.push(self.adopt_sa(rec));
        }
        for (key, rec) in conns {
            out.conns.push(match restore_target(images, &rec, failed) {
                Ok((target, target_xcf)) => {
                    self.routing.restore(key, target, target_xcf, rec.ipsec);
                    ConnAdoption::Restored {
                        key,
                        target: target.to_string(),
                        target_xcf,
                    }
                }
                Err(why) => ConnAdoption::NotRestored {
                    key,
                    target: rec.target,
                    why,
                },
            });
        }
        out
    }

    /// One SA record: an owned pair (or bundle) of the routing stack, whose
    /// install re-creates the dynamic filter from this stack's own filter
    /// table (the record's filter was the previous owner's), then this
    /// image's own shadow copy, as the targets will get it (Fig. 6 block
    /// 118). A record only one of the two caches took is not adopted: the
    /// routing stack lets go of it again.
    fn adopt_sa(&mut self, rec: &SaRecord) -> SaAdoption {
        let sa = rec.pair();
        let owned = match rec {
            SaRecord::Pair(p) => self
                .routing
                .install(SaInstall::clone(p))
                .map(|p| SaRecord::Pair(Box::new(p))),
            SaRecord::Bundle(b) => self
                .routing
                .install_bundle(b)
                .map(|b| SaRecord::Bundle(Box::new(b))),
        };
        let adopted = owned.map_err(|e| e.to_string()).and_then(|rec| {
            let shadowed = match &rec {
                SaRecord::Pair(p) => self.target.install(self.now, self.me, p),
                SaRecord::Bundle(b) => self.target.install_bundle(self.now, self.me, b),
            };
            shadowed.map_err(|e| {
                self.routing.delete(sa.inbound.spi);
                e.to_string()
            })
        });
        match adopted {
            Ok(()) => SaAdoption::Adopted {
                inbound: sa.inbound.spi,
                outbound: sa.outbound.spi,
                peer: sa.outbound.dst,
                bundle: matches!(rec, SaRecord::Bundle(_)),
            },
            Err(why) => SaAdoption::Refused {
                inbound: sa.inbound.spi,
                why,
            },
        }
    }
}

/// Encodes a record for the CF.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Decodes a record read from the CF.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The stacks that may hold `dvipa`, with their rank: the VIPADEFINE
/// owner at [`OWNER_RANK`], then every VIPABACKUP with its rank.
pub fn candidates(images: &impl SysplexImages, dvipa: Ipv4Addr) -> Vec<(String, u16)> {
    images
        .dvipa_holders(dvipa)
        .into_iter()
        .map(|(name, rank)| (name.to_string(), rank.map_or(OWNER_RANK, u16::from)))
        .collect()
}

/// The live candidate with the highest rank (ties: the first in the
/// topology), as z/OS picks the backup stack that takes a VIPA over.
pub fn successor(candidates: &[(String, u16)], live: impl Fn(&str) -> bool) -> Option<&str> {
    candidates
        .iter()
        .filter(|(n, _)| live(n))
        .fold(None::<&(String, u16)>, |best, c| match best {
            Some(b) if b.1 >= c.1 => Some(b),
            _ => Some(c),
        })
        .map(|(n, _)| n.as_str())
}

/// What a [`Watch`] asks the I/O shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchAction {
    Nothing,
    /// Take the DVIPA: plumb it, read its SAs and connections from the CF,
    /// become its routing stack.
    Acquire {
        previous: Option<String>,
    },
}

/// One image's view of one DVIPA it defines or backs up: who holds it, and
/// whether this image should take it.
#[derive(Debug, Clone, Serialize)]
pub struct Watch {
    pub dvipa: Ipv4Addr,
    me: String,
    candidates: Vec<(String, u16)>,
    /// Who holds it, as far as this image knows.
    pub holder: Option<String>,
    /// Takeovers this image carried out for the DVIPA.
    pub takeovers: u32,
    /// Who held it before this image took it over, for the last takeover.
    pub took_from: Option<String>,
    /// How the owner's VIPADEFINE lets it move back (giveback).
    pub moveable: Moveable,
    /// Givebacks this image carried out for the DVIPA (as the holder).
    pub givebacks: u32,
}

impl Watch {
    /// `holder`: whom the CF's owner record names, else the VIPADEFINE owner.
    pub fn new(
        images: &impl SysplexImages,
        me: &str,
        dvipa: Ipv4Addr,
        holder: Option<String>,
    ) -> Self {
        let holder = holder.or_else(|| images.dvipa_owner(dvipa).map(str::to_string));
        Watch {
            dvipa,
            me: me.to_string(),
            candidates: candidates(images, dvipa),
            holder,
            takeovers: 0,
            took_from: None,
            moveable: images.dvipa_moveable(dvipa),
            givebacks: 0,
        }
    }

    /// The VIPADEFINE owner (the candidate of [`OWNER_RANK`]).
    pub fn owner(&self) -> Option<&str> {
        self.candidates
            .iter()
            .find(|(_, rank)| *rank == OWNER_RANK)
            .map(|(n, _)| n.as_str())
    }

    /// Whether this image is the DVIPA's VIPADEFINE owner.
    pub fn is_owner(&self) -> bool {
        self.owner() == Some(self.me.as_str())
    }

    /// This image holds the DVIPA and is not its owner, and the owner is
    /// live: the DVIPA goes back to it (as its MOVEABLE says).
    pub fn owner_is_back(&self, live: impl Fn(&str) -> bool) -> Option<&str> {
        let owner = self.owner()?;
        (self.held() && owner != self.me && live(owner)).then_some(owner)
    }

    /// Whether this image holds the DVIPA.
    pub fn held(&self) -> bool {
        self.holder.as_deref() == Some(self.me.as_str())
    }

    /// The candidates, with their ranks.
    pub fn candidates(&self) -> &[(String, u16)] {
        &self.candidates
    }

    /// Re-evaluates with the set of live images (this one counts as live):
    /// when the holder is gone and this image is the highest-ranked live
    /// candidate, it takes the DVIPA.
    pub fn evaluate(&mut self, live: impl Fn(&str) -> bool) -> WatchAction {
        let holder_live = self
            .holder
            .as_deref()
            .is_some_and(|h| h == self.me || live(h));
        if holder_live {
            return WatchAction::Nothing;
        }
        let me = self.me.clone();
        let next = successor(&self.candidates, |n| n == me || live(n));
        if next != Some(me.as_str()) {
            return WatchAction::Nothing;
        }
        let previous = self.holder.replace(me);
        self.takeovers += 1;
        self.took_from = previous.clone();
        WatchAction::Acquire { previous }
    }

    /// Another stack announced the DVIPA in its VIPA list: it holds it.
    pub fn announced_by(&mut self, image: &str) {
        if !self.held() {
            self.holder = Some(image.to_string());
        }
    }
}

#[cfg(test)]
mod tests;
