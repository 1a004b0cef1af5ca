//! The Encrypted and Authenticated payload, SK (RFC 7296 §3.14): sealing a
//! payload chain into a whole IKE message and opening one.
//!
//! Two kinds of transforms:
//! - AES-CBC with an HMAC integrity transform: a 16-octet random IV, the
//!   plaintext padded to the block size, and an ICV computed over the whole
//!   message up to the ICV and truncated to the transform's length (§3.14).
//! - AES-GCM with a 16-octet ICV (RFC 5282): an 8-octet explicit IV, the
//!   nonce `salt | IV` with the 4-octet salt that ends SK_e, and the
//!   associated data "IKE header through the SK generic payload header"
//!   (RFC 5282 §5.1). Padding is not needed; one Pad Length octet is still
//!   sent (§3.14 / RFC 5282 §3).
//!
//! Fragmentation (SKF, RFC 7383) is not implemented: we never send
//! IKEV2_FRAGMENTATION_SUPPORTED, so a peer never fragments, and our own
//! messages (PSK, no certificates) stay far below 1280 octets.

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInPlace, AesGcm, KeyInit};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::ike::dh::Zeroizing;
use crate::ike::keys::{Encr, Integ, GCM_SALT_LEN};
use crate::ike::prf::Prf;
use crate::wire::ike::{
    emit_chain, parse_chain, EmitError, Encrypted, Error as WireError, Header, IkeMessage, Payload,
    GENERIC_HEADER_LEN, HEADER_LEN,
};

/// AES block size; the CBC IV length (RFC 3602 §2).
const AES_BLOCK: usize = 16;
/// Explicit IV of AES-GCM in IKE (RFC 5282 §3.1).
const GCM_IV_LEN: usize = 8;
/// The ICV of AES-GCM-16.
const GCM_ICV_LEN: usize = 16;

/// The keys protecting one direction of an IKE SA: SK_ei/SK_ai for
/// messages the original initiator sends, SK_er/SK_ar for the others.
#[derive(Clone)]
pub struct SkKeys {
    pub encr: Encr,
    pub integ: Option<Integ>,
    /// SK_e, with the GCM salt at the end.
    pub sk_e: Zeroizing<Vec<u8>>,
    /// SK_a; empty with GCM.
    pub sk_a: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for SkKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkKeys")
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}

/// Why a received SK message was not accepted. Every variant means the
/// message is dropped without a response (§2.21.2: "If the integrity check
/// fails, the message MUST be silently discarded").
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpenError {
    /// The outer message does not parse (malformed).
    #[error("malformed message: {0}")]
    Malformed(#[from] WireError),
    /// The message has no SK payload where one is required.
    #[error("no Encrypted payload")]
    NotEncrypted,
    /// IV, ciphertext and ICV do not fit the SK payload, or the padding is
    /// inconsistent (malformed).
    #[error("SK payload of {0} octets does not fit the cipher")]
    BadLength(usize),
    /// The ICV or the GCM tag does not verify (forged or corrupted).
    #[error("integrity check failed")]
    Integrity,
    /// The decrypted chain does not parse. The message *is* authentic: a
    /// request gets INVALID_SYNTAX (§2.21.2).
    #[error("malformed inner payloads: {0}")]
    Inner(WireError),
}

/// Why a message could not be sealed (a local bug, never peer input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SealError {
    #[error(transparent)]
    Emit(#[from] EmitError),
    #[error("key of {0} octets does not fit the cipher")]
    Key(usize),
}

/// The HMAC of an integrity transform as a PRF of the same hash.
fn integ_prf(integ: Integ) -> Prf {
    match integ {
        Integ::HmacSha1_96 => Prf::HmacSha1,
        Integ::HmacSha256_128 => Prf::HmacSha256,
        Integ::HmacSha384_192 => Prf::HmacSha384,
        Integ::HmacSha512_256 => Prf::HmacSha512,
    }
}

impl SkKeys {
    fn iv_len(&self) -> usize {
        if self.encr.is_aead() {
            GCM_IV_LEN
        } else {
            AES_BLOCK
        }
    }

    fn icv_len(&self) -> usize {
        match self.integ {
            _ if self.encr.is_aead() => GCM_ICV_LEN,
            Some(i) => i.icv_len(),
            None => 0,
        }
    }

    /// Padded plaintext length for `n` octets of payloads (+1 Pad Length).
    fn padded_len(&self, n: usize) -> usize {
        if self.encr.is_aead() {
            n + 1
        } else {
            (n + 1).div_ceil(AES_BLOCK) * AES_BLOCK
        }
    }

    /// Builds a whole IKE message: `header` (the Length is computed), and
    /// an SK payload carrying `inner` (RFC 7296 §3.14).
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        header: &Header,
        inner: &[Payload],
        rng: &mut R,
    ) -> Result<Vec<u8>, SealError> {
        let mut plain = Zeroizing::new(Vec::new());
        let first_payload = emit_chain(inner, &mut plain)?;
        let payload_len = plain.len();
        let total = self.padded_len(payload_len);
        let pad = total - payload_len - 1;
        plain.resize(payload_len + pad, 0);
        plain.push(u8::try_from(pad).map_err(|_| SealError::Key(pad))?);
        let (iv_len, icv_len) = (self.iv_len(), self.icv_len());
        let data_len = iv_len + plain.len() + icv_len;
        let msg = IkeMessage {
            header: *header,
            payloads: vec![Payload::Encrypted(Encrypted {
                first_payload,
                data: vec![0; data_len],
            })],
        };
        let mut out = msg.to_bytes()?;
        let data_at = out.len() - data_len;
        let (iv_at, ct_at, icv_at) = (data_at, data_at + iv_len, data_at + iv_len + plain.len());
        rng.fill_bytes(&mut out[iv_at..ct_at]);
        out[ct_at..icv_at].copy_from_slice(&plain);
        let key_err = SealError::Key(self.sk_e.len());
        match self.encr {
            Encr::AesCbc { .. } => {
                let iv = out[iv_at..ct_at].to_vec();
                let buf = &mut out[ct_at..icv_at];
                let len = buf.len();
                let done = match self.sk_e.len() {
                    16 => cbc::Encryptor::<Aes128>::new_from_slices(&self.sk_e, &iv)
                        .map_err(|_| key_err)?
                        .encrypt_padded_mut::<NoPadding>(buf, len)
                        .is_ok(),
                    24 => cbc::Encryptor::<Aes192>::new_from_slices(&self.sk_e, &iv)
                        .map_err(|_| key_err)?
                        .encrypt_padded_mut::<NoPadding>(buf, len)
                        .is_ok(),
                    32 => cbc::Encryptor::<Aes256>::new_from_slices(&self.sk_e, &iv)
                        .map_err(|_| key_err)?
                        .encrypt_padded_mut::<NoPadding>(buf, len)
                        .is_ok(),
                    _ => false,
                };
                if !done {
                    return Err(key_err);
                }
                let integ = self.integ.ok_or(key_err)?;
                let mac = integ_prf(integ).compute(&self.sk_a, &[&out[..icv_at]]);
                out[icv_at..].copy_from_slice(&mac[..icv_len]);
            }
            Encr::AesGcm16 { .. } => {
                let (aad, rest) = out.split_at_mut(iv_at);
                let (iv, rest) = rest.split_at_mut(iv_len);
                let (ct, icv) = rest.split_at_mut(plain.len());
                let tag = gcm(&self.sk_e, |g| g.seal(iv, aad, ct))
                    .flatten()
                    .ok_or(key_err)?;
                icv.copy_from_slice(&tag);
            }
        }
        Ok(out)
    }

    /// Checks and decrypts a whole IKE message whose last payload is SK.
    /// Returns the header and the inner payloads.
    pub fn open(&self, raw: &[u8]) -> Result<(Header, Vec<Payload>), OpenError> {
        let msg = IkeMessage::parse(raw)?;
        let Some(Payload::Encrypted(sk)) = msg.payloads.last() else {
            return Err(OpenError::NotEncrypted);
        };
        let (iv_len, icv_len) = (self.iv_len(), self.icv_len());
        let data_len = sk.data.len();
        let bad = OpenError::BadLength(data_len);
        let ct_len = data_len.checked_sub(iv_len + icv_len).ok_or(bad.clone())?;
        if ct_len == 0 || (!self.encr.is_aead() && ct_len % AES_BLOCK != 0) {
            return Err(bad);
        }
        let data_at = raw.len() - data_len;
        if data_at < HEADER_LEN + GENERIC_HEADER_LEN {
            return Err(bad);
        }
        let iv = &raw[data_at..data_at + iv_len];
        let icv_at = raw.len() - icv_len;
        let mut plain = Zeroizing::new(raw[data_at + iv_len..icv_at].to_vec());
        match self.encr {
            Encr::AesCbc { .. } => {
                let integ = self.integ.ok_or(OpenError::Integrity)?;
                let mac = integ_prf(integ).compute(&self.sk_a, &[&raw[..icv_at]]);
                if !bool::from(mac[..icv_len].ct_eq(&raw[icv_at..])) {
                    return Err(OpenError::Integrity);
                }
                let ok = match self.sk_e.len() {
                    16 => cbc::Decryptor::<Aes128>::new_from_slices(&self.sk_e, iv)
                        .ok()
                        .and_then(|c| c.decrypt_padded_mut::<NoPadding>(&mut plain).ok())
                        .is_some(),
                    24 => cbc::Decryptor::<Aes192>::new_from_slices(&self.sk_e, iv)
                        .ok()
                        .and_then(|c| c.decrypt_padded_mut::<NoPadding>(&mut plain).ok())
                        .is_some(),
                    32 => cbc::Decryptor::<Aes256>::new_from_slices(&self.sk_e, iv)
                        .ok()
                        .and_then(|c| c.decrypt_padded_mut::<NoPadding>(&mut plain).ok())
                        .is_some(),
                    _ => false,
                };
                if !ok {
                    return Err(OpenError::Integrity);
                }
            }
            Encr::AesGcm16 { .. } => {
                let aad = &raw[..data_at];
                let tag = &raw[icv_at..];
                if gcm(&self.sk_e, |g| g.open(iv, aad, &mut plain, tag)) != Some(true) {
                    return Err(OpenError::Integrity);
                }
            }
        }
        let pad = usize::from(*plain.last().ok_or(bad.clone())?);
        let payload_len = plain.len().checked_sub(pad + 1).ok_or(bad)?;
        let payloads =
            parse_chain(sk.first_payload, &plain[..payload_len]).map_err(OpenError::Inner)?;
        Ok((msg.header, payloads))
    }
}

/// AES-GCM-16 over one of the three key sizes, with the salt split off.
enum AnyGcm {
    A128(Box<AesGcm<Aes128, U12>>),
    A192(Box<AesGcm<Aes192, U12>>),
    A256(Box<AesGcm<Aes256, U12>>),
}

struct Gcm {
    aead: AnyGcm,
    salt: [u8; GCM_SALT_LEN],
}

/// Runs `f` with the GCM state for `sk_e` (key | salt); `None` on a key of
/// a wrong length.
fn gcm<T>(sk_e: &[u8], f: impl FnOnce(&Gcm) -> T) -> Option<T> {
    let key_len = sk_e.len().checked_sub(GCM_SALT_LEN)?;
    let (key, salt) = sk_e.split_at(key_len);
    let aead = match key_len {
        16 => AnyGcm::A128(Box::new(AesGcm::new_from_slice(key).ok()?)),
        24 => AnyGcm::A192(Box::new(AesGcm::new_from_slice(key).ok()?)),
        32 => AnyGcm::A256(Box::new(AesGcm::new_from_slice(key).ok()?)),
        _ => return None,
    };
    let mut s = [0u8; GCM_SALT_LEN];
    s.copy_from_slice(salt);
    Some(f(&Gcm { aead, salt: s }))
}

impl Gcm {
    fn nonce(&self, iv: &[u8]) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..GCM_SALT_LEN].copy_from_slice(&self.salt);
        n[GCM_SALT_LEN..].copy_from_slice(iv);
        n
    }

    fn seal(&self, iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Option<[u8; GCM_ICV_LEN]> {
        let nonce = self.nonce(iv);
        let nonce = aes_gcm::Nonce::from_slice(&nonce);
        let tag = match &self.aead {
            AnyGcm::A128(g) => g.encrypt_in_place_detached(nonce, aad, buf),
            AnyGcm::A192(g) => g.encrypt_in_place_detached(nonce, aad, buf),
            AnyGcm::A256(g) => g.encrypt_in_place_detached(nonce, aad, buf),
        }
        .ok()?;
        let mut t = [0u8; GCM_ICV_LEN];
        t.copy_from_slice(&tag);
        Some(t)
    }

    fn open(&self, iv: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        if tag.len() != GCM_ICV_LEN {
            return false;
        }
        let nonce = self.nonce(iv);
        let nonce = aes_gcm::Nonce::from_slice(&nonce);
        let tag = aes_gcm::Tag::from_slice(tag);
        match &self.aead {
            AnyGcm::A128(g) => g.decrypt_in_place_detached(nonce, aad, buf, tag),
            AnyGcm::A192(g) => g.decrypt_in_place_detached(nonce, aad, buf, tag),
            AnyGcm::A256(g) => g.decrypt_in_place_detached(nonce, aad, buf, tag),
        }
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ike::{ExchangeType, Flags, Notify, NotifyType};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn header() -> Header {
        Header {
            spi_i: 1,
            spi_r: 2,
            major_version: 2,
            minor_version: 0,
            exchange_type: ExchangeType::Informational,
            flags: Flags(Flags::INITIATOR),
            message_id: 7,
        }
    }

    fn keys(encr: Encr, integ: Option<Integ>) -> SkKeys {
        SkKeys {
            encr,
            integ,
            sk_e: Zeroizing::new((0..encr.keymat_len() as u8).collect()),
            sk_a: Zeroizing::new(vec![0x5a; integ.map_or(0, Integ::key_len)]),
        }
    }

    #[test]
    fn seal_open_every_suite() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let inner = vec![
            Payload::Notify(Notify::new(NotifyType::Cookie2, vec![9; 21])),
            Payload::Nonce(vec![3; 32]),
        ];
        for bits in [128, 192, 256] {
            for (encr, integ) in [
                (Encr::AesCbc { key_bits: bits }, Some(Integ::HmacSha1_96)),
                (Encr::AesCbc { key_bits: bits }, Some(Integ::HmacSha256_128)),
                (Encr::AesCbc { key_bits: bits }, Some(Integ::HmacSha384_192)),
                (Encr::AesCbc { key_bits: bits }, Some(Integ::HmacSha512_256)),
                (Encr::AesGcm16 { key_bits: bits }, None),
            ] {
                let k = keys(encr, integ);
                let raw = k.seal(&header(), &inner, &mut rng).unwrap();
                let (h, p) = k.open(&raw).unwrap();
                assert_eq!((h, &p), (header(), &inner), "{encr:?}");
                // Any flipped bit, header included, fails the check.
                for at in [0, 20, HEADER_LEN + 2, raw.len() / 2, raw.len() - 1] {
                    let mut bad = raw.clone();
                    bad[at] ^= 0x01;
                    assert!(k.open(&bad).is_err(), "{encr:?} bit at {at}");
                }
                // A peer with another key cannot read it.
                let mut other = k.clone();
                other.sk_e[0] ^= 1;
                other.sk_a = Zeroizing::new(vec![0x5b; integ.map_or(0, Integ::key_len)]);
                assert_eq!(other.open(&raw), Err(OpenError::Integrity));
            }
        }
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let k = keys(Encr::AesCbc { key_bits: 128 }, Some(Integ::HmacSha256_128));
        let raw = k.seal(&header(), &[], &mut rng).unwrap();
        // IV + one block + ICV.
        assert_eq!(raw.len(), HEADER_LEN + 4 + 16 + 16 + 16);
        // Cut the SK payload to 20 octets: not IV + blocks + ICV.
        let mut short = raw[..HEADER_LEN + 4 + 20].to_vec();
        short[HEADER_LEN + 3] = 24;
        let len = short.len() as u32;
        short[24..28].copy_from_slice(&len.to_be_bytes());
        assert_eq!(k.open(&short), Err(OpenError::BadLength(20)));
        let plain = IkeMessage {
            header: header(),
            payloads: vec![Payload::Nonce(vec![1; 16])],
        }
        .to_bytes()
        .unwrap();
        assert_eq!(k.open(&plain), Err(OpenError::NotEncrypted));
        assert!(matches!(
            k.open(&raw[..10]),
            Err(OpenError::Malformed(WireError::Truncated(10)))
        ));
    }

    /// The captured strongSwan IKE_AUTH response of the interop test,
    /// opened with SK_er/SK_ar: checks our layout against a real peer.
    #[test]
    fn opens_strongswan_message() {
        let hex = crate::ike::prf::tests::hex;
        let raw = hex(concat!(
            "1df012344443797bd3bba3f58054e2022e20232000000001000000e0240000c440d8e9c8f5ac3d3f0220063675ec702c",
            "1f18761f8c328a8f9a5f61248de66c153621d1f89824c870bf84b816ebc108919666976f657773d8fd8f328684f66aae",
            "99d00640dc4d72c866957381b906392e20a7fca46253d5cc3e7767063d63de72368b767d18742d46667d451880c03dbe",
            "e47c27cb27523afabd15b0a9e02bb5aafeb86f43fb6e690dd52dd7b4fad72a5268a268623b060cea161a2ba32cc2ec98",
            "973039d5a34e55512b02c0d0bfac70db54994c9dac17d6d79b47c4609ffbe612",
        ));
        let k = SkKeys {
            encr: Encr::AesCbc { key_bits: 128 },
            integ: Some(Integ::HmacSha256_128),
            sk_e: Zeroizing::new(hex("d0e333f61daa963cf2f77ee1977b0353")),
            sk_a: Zeroizing::new(hex(
                "bc248279531791447aca1524054a43b96e9383c9e080532192f364cf9dfc096d",
            )),
        };
        let (h, p) = k.open(&raw).unwrap();
        assert_eq!(h.exchange_type, ExchangeType::IkeAuth);
        assert!(matches!(p[0], Payload::IdR(_)));
        assert!(p.iter().any(|p| matches!(p, Payload::Auth(_))));
        assert!(p.iter().any(|p| matches!(p, Payload::TsR(_))));
    }
}
