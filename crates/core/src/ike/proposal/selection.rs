//! Selecting proposals (RFC 7296 §2.7, §3.3.6), and offering ours (§3.3).
//!
//! RFC 7296 §2.7 lets the responder pick any acceptable proposal. We walk
//! proposal pairs in the order of [`Preference`] (our configured order by
//! default, as strongSwan 5.9 does with `prefer_configured_proposals = yes`)
//! and within a pair pick each transform by the same preference. Two rules
//! follow strongSwan's `proposal.c`: every transform type the peer proposes
//! must be matched (a type we do not know rejects the proposal, §3.3.6), and
//! an AEAD cipher takes no integrity transform (RFC 5282 §8).
//!
//! The Diffie-Hellman group differs from strongSwan on purpose: if the group
//! of the peer's KE payload is acceptable in some proposal pair, we select
//! that pair with that group, so the exchange needs no INVALID_KE_PAYLOAD
//! round trip (strongSwan 5.9.8 picks its own preferred group and asks for
//! it). Only when no pair accepts the KE group do we answer
//! [`SelectError::InvalidKe`] with the group of the best pair otherwise
//! acceptable (§1.2, §1.3).

use thiserror::Error;

use crate::ike::dh::DhGroup;
use crate::ike::keys::{ChildSuite, Encr, IkeSuite, Integ};
use crate::ike::prf::Prf;
use crate::wire::ike::{
    Attribute, DhId, EsnId, IntegId, Notify, NotifyType, Proposal, Sa, Transform, TransformId,
};

use super::{ProposalConfig, Protocol};

/// Whose order decides between acceptable choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// Our configured order (strongSwan's default).
    #[default]
    Configured,
    /// The peer's order.
    Peer,
}

/// How the key exchange takes part in the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeMode {
    /// A KE payload of this group came with the SA payload (IKE_SA_INIT, or
    /// CREATE_CHILD_SA with PFS).
    Offered(DhId),
    /// No KE payload: CREATE_CHILD_SA for a child SA without PFS. Proposals
    /// must not require a group (the peer may list NONE).
    NoKe,
    /// The child SA created by IKE_AUTH: DH transforms are ignored, the keys
    /// come from the IKE SA (RFC 7296 §1.2, as strongSwan's
    /// PROPOSAL_SKIP_KE).
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SelectOptions {
    pub preference: Preference,
}

/// The chosen proposal: one transform of each type, the peer's proposal
/// number and SPI (to be echoed in the response, §3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub protocol: Protocol,
    pub number: u8,
    /// The peer's SPI from the proposal (empty in an initial IKE_SA_INIT).
    pub spi: Vec<u8>,
    pub encr: Encr,
    pub prf: Option<Prf>,
    pub integ: Option<Integ>,
    pub dh: Option<DhGroup>,
    pub esn: Option<EsnId>,
}

impl Selected {
    /// The proposal for our SA payload: the selected transforms, the peer's
    /// proposal number and `our_spi` (§2.7: "the responder MUST return the
    /// same Proposal Num", with its own SPI). Transforms come in the order
    /// strongSwan 5.9 emits them: ENCR, INTEG, PRF, DH, ESN.
    pub fn to_proposal(&self, our_spi: Vec<u8>) -> Proposal {
        let mut transforms = vec![Transform::encr(self.encr.id(), Some(self.encr.key_bits()))];
        transforms.extend(
            self.integ
                .map(|i| Transform::new(TransformId::Integ(i.id()))),
        );
        transforms.extend(self.prf.map(|p| Transform::new(TransformId::Prf(p.id()))));
        transforms.extend(self.dh.map(|g| Transform::new(TransformId::Dh(g.id()))));
        transforms.extend(self.esn.map(|e| Transform::new(TransformId::Esn(e))));
        Proposal {
            number: self.number,
            protocol: self.protocol.id(),
            spi: our_spi,
            transforms,
        }
    }

    /// The IKE SA's transforms for key derivation.
    pub fn ike_suite(&self) -> Option<IkeSuite> {
        Some(IkeSuite {
            encr: self.encr,
            prf: self.prf?,
            integ: self.integ,
        })
    }

    /// The child SA's transforms for key derivation.
    pub fn child_suite(&self) -> ChildSuite {
        ChildSuite {
            encr: self.encr,
            integ: self.integ,
        }
    }
}

/// Why no proposal was selected; each maps to the notify to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SelectError {
    /// Answer NO_PROPOSAL_CHOSEN (§3.10.1).
    #[error("no acceptable proposal")]
    NoProposalChosen,
    /// A proposal is acceptable, but not with the group of the KE payload:
    /// answer INVALID_KE_PAYLOAD carrying `wanted` (§1.3, §3.10.1).
    #[error("KE payload group not acceptable; {wanted:?} is")]
    InvalidKe { wanted: DhGroup },
}

/// The peer's transforms of one proposal, sorted by type and reduced to the
/// ones we implement. `None` if the proposal has a transform type, or an
/// attribute, we do not understand (§3.3.6: reject the proposal).
struct Offer {
    encr: Vec<Encr>,
    prf: Vec<Prf>,
    /// Whether any PRF was proposed (implemented or not).
    has_prf: bool,
    integ: Vec<Integ>,
    dh: Vec<DhGroup>,
    has_dh: bool,
    dh_none: bool,
    esn: Vec<EsnId>,
    has_esn: bool,
}

impl Offer {
    fn new(p: &Proposal) -> Option<Offer> {
        let mut o = Offer {
            encr: Vec::new(),
            prf: Vec::new(),
            has_prf: false,
            integ: Vec::new(),
            dh: Vec::new(),
            has_dh: false,
            dh_none: false,
            esn: Vec::new(),
            has_esn: false,
        };
        for t in &p.transforms {
            let only_key_length = t
                .attributes
                .iter()
                .all(|a| matches!(a, Attribute::KeyLength(_)));
            match t.id {
                TransformId::Encr(id) => {
                    // An unknown attribute rejects only this transform.
                    if only_key_length {
                        o.encr.extend(Encr::from_transform(id, t.key_length()));
                    }
                }
                TransformId::Prf(id) => {
                    o.has_prf = true;
                    o.prf.extend(Prf::from_id(id).filter(|_| only_key_length));
                }
                TransformId::Integ(IntegId::None) => {}
                TransformId::Integ(id) => {
                    o.integ
                        .extend(Integ::from_id(id).filter(|_| only_key_length));
                }
                TransformId::Dh(DhId::None) => o.dh_none = true,
                TransformId::Dh(id) => {
                    o.has_dh = true;
                    o.dh.extend(DhGroup::from_id(id).filter(|_| only_key_length));
                }
                TransformId::Esn(id) => {
                    o.has_esn = true;
                    if only_key_length {
                        o.esn.push(id);
                    }
                }
                TransformId::Other { .. } => return None,
            }
        }
        Some(o)
    }
}

/// The items both sides accept, in the preferred side's order.
fn common<T: Copy + PartialEq>(ours: &[T], theirs: &[T], preference: Preference) -> Vec<T> {
    let (first, other) = match preference {
        Preference::Configured => (ours, theirs),
        Preference::Peer => (theirs, ours),
    };
    first
        .iter()
        .filter(|x| other.contains(x))
        .copied()
        .collect()
}

/// The most preferred item both sides accept.
fn pick<T: Copy + PartialEq>(ours: &[T], theirs: &[T], preference: Preference) -> Option<T> {
    common(ours, theirs, preference).first().copied()
}

/// Matches one configured proposal against one of the peer's. `Ok` with
/// the DH group as chosen ignoring the KE payload; the caller checks the KE.
fn match_pair(
    ours: &ProposalConfig,
    theirs: &Proposal,
    ke: KeMode,
    preference: Preference,
) -> Option<(Selected, Vec<DhGroup>)> {
    if theirs.protocol != ours.protocol.id() {
        return None;
    }
    let spi_ok = match ours.protocol {
        // Empty in IKE_SA_INIT, the new SA's SPI when rekeying (§3.3.1).
        Protocol::Ike => theirs.spi.is_empty() || theirs.spi.len() == 8,
        Protocol::Esp => theirs.spi.len() == 4,
    };
    if !spi_ok {
        return None;
    }
    let o = Offer::new(theirs)?;
    let encr = pick(&ours.encr, &o.encr, preference)?;
    let integ = if encr.is_aead() {
        None
    } else {
        Some(pick(&ours.integ, &o.integ, preference)?)
    };
    let (prf, esn) = match ours.protocol {
        Protocol::Ike => {
            if o.has_esn {
                return None;
            }
            (Some(pick(&ours.prf, &o.prf, preference)?), None)
        }
        Protocol::Esp => {
            if o.has_prf {
                return None;
            }
            (None, Some(pick(&ours.esn, &o.esn, preference)?))
        }
    };
    // Groups both sides accept, in preference order.
    let common = common(&ours.dh, &o.dh, preference);
    let dh_ok = match (ours.protocol, ke) {
        (_, KeMode::Ignore) => true,
        (Protocol::Ike, _) => !common.is_empty(),
        // PFS offered: like IKE.
        (Protocol::Esp, KeMode::Offered(_)) => !common.is_empty(),
        // No KE: neither side may require a group.
        (Protocol::Esp, KeMode::NoKe) => ours.dh.is_empty() && (!o.has_dh || o.dh_none),
    };
    if !dh_ok {
        return None;
    }
    let selected = Selected {
        protocol: ours.protocol,
        number: theirs.number,
        spi: theirs.spi.clone(),
        encr,
        prf,
        integ,
        dh: None,
        esn,
    };
    Some((selected, common))
}

/// Selects a proposal from the peer's SA payload (module docs explain the
/// order). With [`KeMode::Offered`], the returned proposal's group is the
/// KE payload's group.
pub fn select(
    configured: &[ProposalConfig],
    peer: &Sa,
    ke: KeMode,
    options: SelectOptions,
) -> Result<Selected, SelectError> {
    let preference = options.preference;
    let mut pairs: Vec<(&ProposalConfig, &Proposal)> = Vec::new();
    match preference {
        Preference::Configured => {
            for ours in configured {
                pairs.extend(peer.proposals.iter().map(|theirs| (ours, theirs)));
            }
        }
        Preference::Peer => {
            for theirs in &peer.proposals {
                pairs.extend(configured.iter().map(|ours| (ours, theirs)));
            }
        }
    }
    let offered = match ke {
        KeMode::Offered(id) => Some(id),
        KeMode::NoKe | KeMode::Ignore => None,
    };
    let mut fallback: Option<DhGroup> = None;
    for (ours, theirs) in pairs {
        let Some((mut selected, common)) = match_pair(ours, theirs, ke, preference) else {
            continue;
        };
        match offered {
            None => {
                if ours.protocol == Protocol::Ike {
                    selected.dh = common.first().copied();
                }
                return Ok(selected);
            }
            Some(id) => {
                if let Some(g) = common.iter().copied().find(|g| g.id() == id) {
                    selected.dh = Some(g);
                    return Ok(selected);
                }
                fallback = fallback.or(common.first().copied());
            }
        }
    }
    Err(match fallback {
        Some(wanted) => SelectError::InvalidKe { wanted },
        None => SelectError::NoProposalChosen,
    })
}

impl SelectError {
    /// The notify a responder refuses with (§1.2, §1.3, §3.10.1).
    pub fn notify(self) -> Notify {
        match self {
            SelectError::NoProposalChosen => Notify::new(NotifyType::NoProposalChosen, Vec::new()),
            SelectError::InvalidKe { wanted } => Notify::invalid_ke(wanted.id()),
        }
    }
}

/// The responder's selection from the peer's SA payload, in IKE_SA_INIT,
/// IKE_AUTH and CREATE_CHILD_SA alike: the chosen proposal, or the notify
/// to refuse with (§2.7).
pub fn select_or_notify(
    configured: &[ProposalConfig],
    peer: &Sa,
    ke: KeMode,
) -> Result<Selected, Notify> {
    select(configured, peer, ke, SelectOptions::default()).map_err(SelectError::notify)
}

/// The initiator's check of the responder's SA payload: it holds exactly
/// one proposal, and one that our configuration accepts (§2.7).
pub fn check_chosen(configs: &[ProposalConfig], sa: &Sa, ke: KeMode) -> Option<Selected> {
    if sa.proposals.len() != 1 {
        return None;
    }
    select(configs, sa, ke, SelectOptions::default()).ok()
}

/// Our proposals as an SA payload (§3.3), each with every transform
/// configured and our SPI. `with_dh` is false for the child SA of
/// IKE_AUTH, which has no KE (§1.2).
pub fn offer(configs: &[ProposalConfig], spi: &[u8], with_dh: bool) -> Sa {
    let proposals = configs
        .iter()
        .zip(1u8..)
        .map(|(c, number)| {
            let mut t: Vec<Transform> = c
                .encr
                .iter()
                .map(|e| Transform::encr(e.id(), Some(e.key_bits())))
                .collect();
            t.extend(
                c.integ
                    .iter()
                    .map(|x| Transform::new(TransformId::Integ(x.id()))),
            );
            t.extend(
                c.prf
                    .iter()
                    .map(|x| Transform::new(TransformId::Prf(x.id()))),
            );
            if with_dh {
                t.extend(c.dh.iter().map(|x| Transform::new(TransformId::Dh(x.id()))));
            }
            t.extend(c.esn.iter().map(|x| Transform::new(TransformId::Esn(*x))));
            Proposal {
                number,
                protocol: c.protocol.id(),
                spi: spi.to_vec(),
                transforms: t,
            }
        })
        .collect();
    Sa { proposals }
}
