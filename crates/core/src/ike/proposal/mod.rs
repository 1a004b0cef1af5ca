//! Proposal configuration (RFC 7296 §3.3) and selection ([`select`],
//! §2.7, §3.3.6).
//!
//! Configured proposals are written the way strongSwan's `proposals` /
//! `esp_proposals` are (`aes128-sha256-x25519`, `aes128gcm16-prfsha256-ecp256`,
//! `default`), restricted to the algorithms this implementation has.

mod selection;
#[cfg(test)]
mod tests;

use thiserror::Error;

use crate::ike::dh::DhGroup;
use crate::ike::keys::{Encr, Integ};
use crate::ike::prf::Prf;
use crate::wire::ike::{EsnId, ProtocolId};

pub use selection::{
    check_chosen, offer, select, select_or_notify, KeMode, Preference, SelectError, SelectOptions,
    Selected,
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
