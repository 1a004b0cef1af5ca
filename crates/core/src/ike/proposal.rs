//! Proposal configuration and responder-side selection (RFC 7296 §2.7,
//! §3.3, §3.3.6).
//!
//! Configured proposals are written the way strongSwan's `proposals` /
//! `esp_proposals` are (`aes128-sha256-x25519`, `aes128gcm16-prfsha256-ecp256`,
//! `default`), restricted to the algorithms this implementation has.
//!
//! # Selection
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
    Attribute, DhId, EsnId, IntegId, Proposal, ProtocolId, Sa, Transform, TransformId,
};

/// The protocol a proposal negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Ike,
    Esp,
}

impl Protocol {
    pub fn id(self) -> ProtocolId {
        match self {
            Protocol::Ike => ProtocolId::Ike,
            Protocol::Esp => ProtocolId::Esp,
        }
    }
}

/// One configured proposal: acceptable transforms per type, most preferred
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalConfig {
    pub protocol: Protocol,
    pub encr: Vec<Encr>,
    /// IKE only.
    pub prf: Vec<Prf>,
    /// Empty with AEAD ciphers.
    pub integ: Vec<Integ>,
    /// IKE: the key exchange groups. ESP: the PFS groups of CREATE_CHILD_SA,
    /// empty for no PFS.
    pub dh: Vec<DhGroup>,
    /// ESP only: `NoEsn` and/or `Esn`.
    pub esn: Vec<EsnId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProposalParseError {
    #[error("empty proposal")]
    Empty,
    #[error("unknown or unimplemented algorithm {0:?}")]
    UnknownAlgorithm(String),
    #[error("{0:?}: an encryption algorithm is mandatory")]
    NoEncryption(String),
    #[error("{0:?}: AEAD and non-AEAD encryption cannot share a proposal")]
    MixedAead(String),
    #[error("{0:?}: an integrity algorithm is mandatory with non-AEAD encryption")]
    NoIntegrity(String),
    #[error("{0:?}: a PRF is mandatory in IKE proposals")]
    NoPrf(String),
    #[error("{0:?}: a DH group is mandatory in IKE proposals")]
    NoDhGroup(String),
    #[error("{0:?}: ESN applies to ESP proposals only")]
    EsnInIke(String),
}

/// A parsed keyword (strongSwan `proposal_keywords_static.txt`, the subset
/// this implementation has).
enum Keyword {
    Encr(Encr),
    Integ(Integ),
    Prf(Prf),
    Dh(DhGroup),
    Esn(EsnId),
}

fn keyword(token: &str) -> Option<Keyword> {
    use Keyword as K;
    let cbc = |key_bits| Some(K::Encr(Encr::AesCbc { key_bits }));
    let gcm = |key_bits| Some(K::Encr(Encr::AesGcm16 { key_bits }));
    match token {
        "aes" | "aes128" => cbc(128),
        "aes192" => cbc(192),
        "aes256" => cbc(256),
        "aes128gcm16" | "aes128gcm128" | "aes128gcm" => gcm(128),
        "aes192gcm16" | "aes192gcm128" | "aes192gcm" => gcm(192),
        "aes256gcm16" | "aes256gcm128" | "aes256gcm" => gcm(256),
        "sha" | "sha1" => Some(K::Integ(Integ::HmacSha1_96)),
        "sha256" | "sha2_256" => Some(K::Integ(Integ::HmacSha256_128)),
        "sha384" | "sha2_384" => Some(K::Integ(Integ::HmacSha384_192)),
        "sha512" | "sha2_512" => Some(K::Integ(Integ::HmacSha512_256)),
        "prfsha1" => Some(K::Prf(Prf::HmacSha1)),
        "prfsha256" => Some(K::Prf(Prf::HmacSha256)),
        "prfsha384" => Some(K::Prf(Prf::HmacSha384)),
        "prfsha512" => Some(K::Prf(Prf::HmacSha512)),
        "modp2048" => Some(K::Dh(DhGroup::Modp2048)),
        "modp3072" => Some(K::Dh(DhGroup::Modp3072)),
        "modp4096" => Some(K::Dh(DhGroup::Modp4096)),
        "ecp256" => Some(K::Dh(DhGroup::Ecp256)),
        "ecp384" => Some(K::Dh(DhGroup::Ecp384)),
        "curve25519" | "x25519" => Some(K::Dh(DhGroup::Curve25519)),
        "esn" => Some(K::Esn(EsnId::Esn)),
        "noesn" => Some(K::Esn(EsnId::NoEsn)),
        _ => None,
    }
}

/// The PRF strongSwan adds to an IKE proposal that names none: the one of
/// the same hash as each integrity algorithm (`integ_prf_map`).
fn prf_for(integ: Integ) -> Prf {
    match integ {
        Integ::HmacSha1_96 => Prf::HmacSha1,
        Integ::HmacSha256_128 => Prf::HmacSha256,
        Integ::HmacSha384_192 => Prf::HmacSha384,
        Integ::HmacSha512_256 => Prf::HmacSha512,
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

impl ProposalConfig {
    /// Parses one dash-separated proposal (`aes128-sha256-x25519`), with the
    /// checks and completions of strongSwan's `check_proposal`: an IKE
    /// proposal without PRF takes the PRFs of its integrity algorithms; an
    /// ESP proposal drops PRFs and gets `noesn` unless ESN is named. Unlike
    /// strongSwan, ESP without integrity needs an AEAD cipher.
    pub fn parse(protocol: Protocol, s: &str) -> Result<ProposalConfig, ProposalParseError> {
        let mut p = ProposalConfig {
            protocol,
            encr: Vec::new(),
            prf: Vec::new(),
            integ: Vec::new(),
            dh: Vec::new(),
            esn: Vec::new(),
        };
        if s.trim().is_empty() {
            return Err(ProposalParseError::Empty);
        }
        for token in s.split('-').map(str::trim) {
            match keyword(&token.to_ascii_lowercase()) {
                Some(Keyword::Encr(e)) => push_unique(&mut p.encr, e),
                Some(Keyword::Integ(i)) => push_unique(&mut p.integ, i),
                Some(Keyword::Prf(f)) => push_unique(&mut p.prf, f),
                Some(Keyword::Dh(g)) => push_unique(&mut p.dh, g),
                Some(Keyword::Esn(e)) => push_unique(&mut p.esn, e),
                None => return Err(ProposalParseError::UnknownAlgorithm(token.to_string())),
            }
        }
        let named = || s.to_string();
        if p.encr.is_empty() {
            return Err(ProposalParseError::NoEncryption(named()));
        }
        let aead = p.encr.iter().filter(|e| e.is_aead()).count();
        if aead != 0 && aead != p.encr.len() {
            return Err(ProposalParseError::MixedAead(named()));
        }
        if aead != 0 {
            p.integ.clear();
        } else if p.integ.is_empty() {
            return Err(ProposalParseError::NoIntegrity(named()));
        }
        match protocol {
            Protocol::Ike => {
                if p.prf.is_empty() {
                    for &i in &p.integ {
                        push_unique(&mut p.prf, prf_for(i));
                    }
                }
                if p.prf.is_empty() {
                    return Err(ProposalParseError::NoPrf(named()));
                }
                if p.dh.is_empty() {
                    return Err(ProposalParseError::NoDhGroup(named()));
                }
                if !p.esn.is_empty() {
                    return Err(ProposalParseError::EsnInIke(named()));
                }
            }
            Protocol::Esp => {
                p.prf.clear();
                if p.esn.is_empty() {
                    p.esn.push(EsnId::NoEsn);
                }
            }
        }
        Ok(p)
    }
}

/// Parses a comma-separated proposal list; `default` stands for
/// [`default_ike`] or [`default_esp`].
pub fn parse_proposals(
    protocol: Protocol,
    s: &str,
) -> Result<Vec<ProposalConfig>, ProposalParseError> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.eq_ignore_ascii_case("default") {
            out.extend(match protocol {
                Protocol::Ike => default_ike(),
                Protocol::Esp => default_esp(),
            });
        } else {
            out.push(ProposalConfig::parse(protocol, item)?);
        }
    }
    Ok(out)
}

const AES_BITS: [u16; 3] = [128, 192, 256];

/// Groups in the order strongSwan 5.9.8 proposes them by default with the
/// openssl plugin loaded first (the reference client's `load` list):
/// ECC/Curve groups of 128+ bit strength in plugin registration order
/// (Curve25519 is registered before the ECP groups), then MODP 3072/4096,
/// then MODP 2048 (`proposal_add_supported_ike`, rounds 1–3).
const DEFAULT_IKE_DH: [DhGroup; 6] = [
    DhGroup::Curve25519,
    DhGroup::Ecp256,
    DhGroup::Ecp384,
    DhGroup::Modp3072,
    DhGroup::Modp4096,
    DhGroup::Modp2048,
];

/// PRFs of strongSwan's default IKE proposals: SHA-2 first, SHA-1 last.
const DEFAULT_PRF: [Prf; 4] = [
    Prf::HmacSha256,
    Prf::HmacSha384,
    Prf::HmacSha512,
    Prf::HmacSha1,
];

/// Integrity algorithms of strongSwan's defaults: SHA-2 first, SHA-1 last.
const DEFAULT_INTEG: [Integ; 4] = [
    Integ::HmacSha256_128,
    Integ::HmacSha384_192,
    Integ::HmacSha512_256,
    Integ::HmacSha1_96,
];

/// strongSwan 5.9.8's default IKE proposals (`proposal_create_default` and
/// `proposal_create_default_aead` for PROTO_IKE, in that order, as vici adds
/// them for `proposals = default`), limited to what we implement: AES-CBC
/// with HMAC-SHA2/SHA1, then AES-GCM-16; both with the same PRFs and groups.
pub fn default_ike() -> Vec<ProposalConfig> {
    vec![
        ProposalConfig {
            protocol: Protocol::Ike,
            encr: AES_BITS.map(|key_bits| Encr::AesCbc { key_bits }).to_vec(),
            prf: DEFAULT_PRF.to_vec(),
            integ: DEFAULT_INTEG.to_vec(),
            dh: DEFAULT_IKE_DH.to_vec(),
            esn: Vec::new(),
        },
        ProposalConfig {
            protocol: Protocol::Ike,
            encr: AES_BITS
                .map(|key_bits| Encr::AesGcm16 { key_bits })
                .to_vec(),
            prf: DEFAULT_PRF.to_vec(),
            integ: Vec::new(),
            dh: DEFAULT_IKE_DH.to_vec(),
            esn: Vec::new(),
        },
    ]
}

/// strongSwan 5.9.8's default ESP proposals (vici adds
/// `proposal_create_default_aead` then `proposal_create_default` for
/// PROTO_ESP): AES-GCM-16 128/192/256, then AES-CBC 128/192/256 with
/// HMAC-SHA2-256/384/512 and SHA1 (AES-XCBC omitted: not implemented); no
/// ESN, no PFS.
pub fn default_esp() -> Vec<ProposalConfig> {
    vec![
        ProposalConfig {
            protocol: Protocol::Esp,
            encr: AES_BITS
                .map(|key_bits| Encr::AesGcm16 { key_bits })
                .to_vec(),
            prf: Vec::new(),
            integ: Vec::new(),
            dh: Vec::new(),
            esn: vec![EsnId::NoEsn],
        },
        ProposalConfig {
            protocol: Protocol::Esp,
            encr: AES_BITS.map(|key_bits| Encr::AesCbc { key_bits }).to_vec(),
            prf: Vec::new(),
            integ: DEFAULT_INTEG.to_vec(),
            dh: Vec::new(),
            esn: vec![EsnId::NoEsn],
        },
    ]
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ike(s: &str) -> Vec<ProposalConfig> {
        parse_proposals(Protocol::Ike, s).unwrap()
    }

    fn esp(s: &str) -> Vec<ProposalConfig> {
        parse_proposals(Protocol::Esp, s).unwrap()
    }

    /// The peer's SA payload as strongSwan would send it for these proposal
    /// strings: each configured proposal becomes a wire proposal with every
    /// transform listed.
    fn offer(configs: &[ProposalConfig], spi: &[u8]) -> Sa {
        let proposals = configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut transforms: Vec<Transform> = c
                    .encr
                    .iter()
                    .map(|e| Transform::encr(e.id(), Some(e.key_bits())))
                    .collect();
                transforms.extend(
                    c.integ
                        .iter()
                        .map(|x| Transform::new(TransformId::Integ(x.id()))),
                );
                transforms.extend(
                    c.prf
                        .iter()
                        .map(|x| Transform::new(TransformId::Prf(x.id()))),
                );
                transforms.extend(c.dh.iter().map(|x| Transform::new(TransformId::Dh(x.id()))));
                transforms.extend(c.esn.iter().map(|x| Transform::new(TransformId::Esn(*x))));
                Proposal {
                    number: u8::try_from(i + 1).unwrap(),
                    protocol: c.protocol.id(),
                    spi: spi.to_vec(),
                    transforms,
                }
            })
            .collect();
        Sa { proposals }
    }

    const PREFER_OURS: SelectOptions = SelectOptions {
        preference: Preference::Configured,
    };

    #[test]
    fn parses_strongswan_strings() {
        let p = &ike("aes128-sha256-x25519")[0];
        assert_eq!(p.encr, vec![Encr::AesCbc { key_bits: 128 }]);
        assert_eq!(p.integ, vec![Integ::HmacSha256_128]);
        assert_eq!(
            p.prf,
            vec![Prf::HmacSha256],
            "PRF derived from the integrity algorithm"
        );
        assert_eq!(p.dh, vec![DhGroup::Curve25519]);

        let p = &ike("aes256-sha256-modp2048")[0];
        assert_eq!(
            (p.encr[0], p.dh[0]),
            (Encr::AesCbc { key_bits: 256 }, DhGroup::Modp2048)
        );

        let p = &ike("aes128gcm16-prfsha256-ecp256")[0];
        assert_eq!(p.encr, vec![Encr::AesGcm16 { key_bits: 128 }]);
        assert!(p.integ.is_empty());
        assert_eq!((p.prf[0], p.dh[0]), (Prf::HmacSha256, DhGroup::Ecp256));

        let p = &esp("aes128-sha1")[0];
        assert_eq!(p.integ, vec![Integ::HmacSha1_96]);
        assert!(p.prf.is_empty() && p.dh.is_empty());
        assert_eq!(p.esn, vec![EsnId::NoEsn]);

        let p = &esp("aes128gcm16")[0];
        assert_eq!(p.encr, vec![Encr::AesGcm16 { key_bits: 128 }]);
        assert!(p.integ.is_empty());

        // Several proposals, several algorithms of a type, PFS, ESN.
        let ps = esp("aes256gcm16-aes128gcm16-modp3072-esn-noesn, aes128-sha256");
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].encr.len(), 2);
        assert_eq!(ps[0].dh, vec![DhGroup::Modp3072]);
        assert_eq!(ps[0].esn, vec![EsnId::Esn, EsnId::NoEsn]);

        assert_eq!(ike("default"), default_ike());
        assert_eq!(esp("default"), default_esp());
        assert_eq!(ike("aes128-sha1-modp2048,default").len(), 3);
    }

    #[test]
    fn rejects_bad_strings() {
        use ProposalParseError as E;
        let e = |proto, s| ProposalConfig::parse(proto, s).unwrap_err();
        assert_eq!(
            e(Protocol::Ike, "3des-sha1-modp2048"),
            E::UnknownAlgorithm("3des".into())
        );
        assert_eq!(
            e(Protocol::Ike, "aes128-sha1"),
            E::NoDhGroup("aes128-sha1".into())
        );
        assert_eq!(
            e(Protocol::Ike, "aes128gcm16-ecp256"),
            E::NoPrf("aes128gcm16-ecp256".into())
        );
        assert_eq!(
            e(Protocol::Ike, "sha256-ecp256"),
            E::NoEncryption("sha256-ecp256".into())
        );
        assert!(matches!(
            e(Protocol::Esp, "aes128-aes128gcm16-sha1"),
            E::MixedAead(_)
        ));
        assert!(matches!(e(Protocol::Esp, "aes128"), E::NoIntegrity(_)));
        assert!(matches!(
            e(Protocol::Ike, "aes128-sha1-ecp256-esn"),
            E::EsnInIke(_)
        ));
        assert_eq!(e(Protocol::Esp, " "), E::Empty);
        assert_eq!(
            e(Protocol::Esp, "aes128--sha1"),
            E::UnknownAlgorithm("".into())
        );
        assert!(parse_proposals(Protocol::Ike, "default,").is_err());
    }

    #[test]
    fn defaults_follow_strongswan_5_9() {
        let d = default_ike();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].encr[0], Encr::AesCbc { key_bits: 128 });
        assert_eq!(d[0].integ[0], Integ::HmacSha256_128);
        assert_eq!(d[0].prf.last(), Some(&Prf::HmacSha1));
        assert_eq!(d[0].dh[0], DhGroup::Curve25519);
        assert_eq!(d[0].dh.last(), Some(&DhGroup::Modp2048));
        assert!(d[1].encr.iter().all(|e| e.is_aead()) && d[1].integ.is_empty());
        let e = default_esp();
        assert!(e[0].encr.iter().all(|e| e.is_aead()));
        assert_eq!(e[1].integ.last(), Some(&Integ::HmacSha1_96));
        assert!(e
            .iter()
            .all(|p| p.esn == vec![EsnId::NoEsn] && p.dh.is_empty()));
    }

    #[test]
    fn selects_matching_ike_proposal_with_ke_group() {
        // Client: strongSwan default. Us: aes256-sha256-modp2048.
        let peer = offer(&default_ike(), &[]);
        let ours = ike("aes256-sha256-modp2048");
        let s = select(&ours, &peer, KeMode::Offered(DhId::Modp2048), PREFER_OURS).unwrap();
        assert_eq!(s.number, 1);
        assert_eq!(s.encr, Encr::AesCbc { key_bits: 256 });
        assert_eq!(s.prf, Some(Prf::HmacSha256));
        assert_eq!(s.integ, Some(Integ::HmacSha256_128));
        assert_eq!(s.dh, Some(DhGroup::Modp2048));
        // The response proposal: one transform per type, key length kept.
        let p = s.to_proposal(vec![]);
        assert_eq!(p.number, 1);
        assert_eq!(p.transforms.len(), 4);
        assert_eq!(p.transforms[0].attributes, vec![Attribute::KeyLength(256)]);
        assert_eq!(
            s.ike_suite(),
            Some(IkeSuite {
                encr: Encr::AesCbc { key_bits: 256 },
                prf: Prf::HmacSha256,
                integ: Some(Integ::HmacSha256_128)
            })
        );
    }

    #[test]
    fn accepts_peer_ke_group_when_acceptable() {
        // The client sends KE for its first default group, Curve25519. Our
        // default list accepts it: no INVALID_KE round trip.
        let peer = offer(&default_ike(), &[]);
        let s = select(
            &default_ike(),
            &peer,
            KeMode::Offered(DhId::Curve25519),
            PREFER_OURS,
        )
        .unwrap();
        assert_eq!(s.dh, Some(DhGroup::Curve25519));
        assert_eq!(s.encr, Encr::AesCbc { key_bits: 128 });
        assert_eq!(s.integ, Some(Integ::HmacSha256_128));
        // A KE group acceptable only in the second (AEAD) pair still wins
        // over asking for another group.
        let ours = ike("aes128-sha256-ecp384,aes128gcm16-prfsha256-ecp256");
        let peer = offer(
            &ike("aes128-sha256-ecp384-ecp256,aes128gcm16-prfsha256-ecp256"),
            &[],
        );
        let s = select(&ours, &peer, KeMode::Offered(DhId::Ecp256), PREFER_OURS).unwrap();
        assert_eq!(
            (s.number, s.encr, s.dh),
            (2, Encr::AesGcm16 { key_bits: 128 }, Some(DhGroup::Ecp256))
        );
    }

    #[test]
    fn asks_for_another_group_with_invalid_ke() {
        let peer = offer(&ike("aes128-sha256-x25519-modp2048"), &[]);
        let ours = ike("aes128-sha256-modp2048");
        assert_eq!(
            select(&ours, &peer, KeMode::Offered(DhId::Curve25519), PREFER_OURS),
            Err(SelectError::InvalidKe {
                wanted: DhGroup::Modp2048
            })
        );
        // A KE payload for a group nobody proposed changes nothing.
        assert_eq!(
            select(&ours, &peer, KeMode::Offered(DhId::Modp1024), PREFER_OURS),
            Err(SelectError::InvalidKe {
                wanted: DhGroup::Modp2048
            })
        );
    }

    #[test]
    fn no_proposal_chosen() {
        let ours = ike("aes256-sha384-ecp384");
        for peer in [
            offer(&ike("aes128-sha384-ecp384"), &[]), // cipher key size differs
            offer(&ike("aes256-sha256-ecp384"), &[]), // integrity and PRF differ
            offer(&ike("aes256-sha384-modp2048"), &[]), // group differs
            offer(&esp("aes256-sha384"), &[1, 2, 3, 4]), // wrong protocol
            offer(&ike("aes256-sha384-ecp384"), &[1, 2]), // bad SPI size
            Sa::default(),
        ] {
            assert_eq!(
                select(&ours, &peer, KeMode::Offered(DhId::Ecp384), PREFER_OURS),
                Err(SelectError::NoProposalChosen)
            );
        }
        // A transform type we do not know rejects the proposal (§3.3.6).
        let mut peer = offer(&ike("aes256-sha384-ecp384"), &[]);
        peer.proposals[0]
            .transforms
            .push(Transform::new(TransformId::Other {
                transform_type: 6,
                id: 1,
            }));
        assert_eq!(
            select(&ours, &peer, KeMode::Offered(DhId::Ecp384), PREFER_OURS),
            Err(SelectError::NoProposalChosen)
        );
        // AES without a Key Length attribute is not acceptable.
        let mut peer = offer(&ike("aes256-sha384-ecp384"), &[]);
        peer.proposals[0].transforms[0].attributes.clear();
        assert_eq!(
            select(&ours, &peer, KeMode::Offered(DhId::Ecp384), PREFER_OURS),
            Err(SelectError::NoProposalChosen)
        );
    }

    #[test]
    fn preference_decides_order() {
        let ours = ike("aes128-sha256-ecp256,aes256-sha512-ecp256");
        let peer = offer(&ike("aes256-sha512-ecp256,aes128-sha256-ecp256"), &[]);
        let ke = KeMode::Offered(DhId::Ecp256);
        let s = select(&ours, &peer, ke, PREFER_OURS).unwrap();
        assert_eq!((s.number, s.encr), (2, Encr::AesCbc { key_bits: 128 }));
        let s = select(
            &ours,
            &peer,
            ke,
            SelectOptions {
                preference: Preference::Peer,
            },
        )
        .unwrap();
        assert_eq!((s.number, s.encr), (1, Encr::AesCbc { key_bits: 256 }));
        // Within one proposal too.
        let ours = ike("aes128-aes256-sha256-ecp256");
        let peer = offer(&ike("aes256-aes128-sha256-ecp256"), &[]);
        assert_eq!(
            select(&ours, &peer, ke, PREFER_OURS).unwrap().encr,
            Encr::AesCbc { key_bits: 128 }
        );
        let s = select(
            &ours,
            &peer,
            ke,
            SelectOptions {
                preference: Preference::Peer,
            },
        )
        .unwrap();
        assert_eq!(s.encr, Encr::AesCbc { key_bits: 256 });
    }

    #[test]
    fn esp_in_ike_auth_ignores_dh_and_echoes_spi() {
        // strongSwan lists its PFS groups in the IKE_AUTH child proposal
        // too; IKE_AUTH creates the child without a KE.
        let peer = offer(
            &esp("aes128gcm16-ecp256,aes128-sha1"),
            &[0xc0, 0xff, 0xee, 0x01],
        );
        let s = select(&default_esp(), &peer, KeMode::Ignore, PREFER_OURS).unwrap();
        assert_eq!((s.number, s.encr), (1, Encr::AesGcm16 { key_bits: 128 }));
        assert_eq!((s.integ, s.dh, s.esn), (None, None, Some(EsnId::NoEsn)));
        assert_eq!(s.spi, vec![0xc0, 0xff, 0xee, 0x01]);
        assert_eq!(
            s.child_suite(),
            ChildSuite {
                encr: Encr::AesGcm16 { key_bits: 128 },
                integ: None
            }
        );
        let p = s.to_proposal(vec![9, 9, 9, 9]);
        assert_eq!(p.spi, vec![9, 9, 9, 9]);
        assert_eq!(p.transforms.len(), 2); // ENCR and ESN

        // Only aes128-sha1 configured, as in the reference client.
        let s = select(&esp("aes128-sha1"), &peer, KeMode::Ignore, PREFER_OURS).unwrap();
        assert_eq!((s.number, s.integ), (2, Some(Integ::HmacSha1_96)));

        // CREATE_CHILD_SA without KE: a proposal requiring PFS is refused...
        assert_eq!(
            select(&esp("aes128gcm16-ecp256"), &peer, KeMode::NoKe, PREFER_OURS),
            Err(SelectError::NoProposalChosen)
        );
        // ...and with a KE, the group is negotiated like in IKE_SA_INIT.
        let s = select(
            &esp("aes128gcm16-ecp256"),
            &peer,
            KeMode::Offered(DhId::Ecp256),
            PREFER_OURS,
        )
        .unwrap();
        assert_eq!(s.dh, Some(DhGroup::Ecp256));
        assert_eq!(s.to_proposal(vec![0; 4]).transforms.len(), 3);

        // ESN must match: the data plane has none, so an ESN-only peer fails.
        let peer = offer(&esp("aes128-sha1-esn"), &[0, 0, 0, 1]);
        assert_eq!(
            select(&esp("aes128-sha1"), &peer, KeMode::Ignore, PREFER_OURS),
            Err(SelectError::NoProposalChosen)
        );
    }
}
