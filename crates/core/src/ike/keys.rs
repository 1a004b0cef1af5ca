//! IKEv2 key derivation and shared-key authentication, as pure functions:
//! SKEYSEED and the IKE SA keys (RFC 7296 §2.14), SKEYSEED of a rekeyed IKE
//! SA (§2.18), child SA KEYMAT (§2.17) and the AUTH payload of the "Shared
//! Key Message Integrity Code" method (§2.15).

use std::fmt;

use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::ike::dh::Zeroizing;
use crate::ike::prf::{Prf, PrfError};
use crate::wire::ike::{EncrId, IntegId};

/// An implemented encryption transform with its key size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encr {
    /// ENCR_AES_CBC (12), RFC 3602 / RFC 7296 §3.3.2; 128, 192 or 256 bits.
    AesCbc { key_bits: u16 },
    /// ENCR_AES_GCM_16 (20), 16-octet ICV, RFC 4106 (ESP) / RFC 5282 (IKE).
    AesGcm16 { key_bits: u16 },
}

impl Encr {
    /// The transform for an encryption ID and its Key Length attribute;
    /// `None` if not implemented. AES needs the attribute (RFC 7296 §3.3.5
    /// leaves no default for variable-length ciphers).
    pub fn from_transform(id: EncrId, key_bits: Option<u16>) -> Option<Encr> {
        let key_bits = key_bits.filter(|b| matches!(b, 128 | 192 | 256))?;
        match id {
            EncrId::AesCbc => Some(Encr::AesCbc { key_bits }),
            EncrId::AesGcm16 => Some(Encr::AesGcm16 { key_bits }),
            _ => None,
        }
    }

    pub fn id(self) -> EncrId {
        match self {
            Encr::AesCbc { .. } => EncrId::AesCbc,
            Encr::AesGcm16 { .. } => EncrId::AesGcm16,
        }
    }

    pub fn key_bits(self) -> u16 {
        match self {
            Encr::AesCbc { key_bits } | Encr::AesGcm16 { key_bits } => key_bits,
        }
    }

    pub fn is_aead(self) -> bool {
        matches!(self, Encr::AesGcm16 { .. })
    }

    /// Octets of keying material taken for one direction: the AES key, and
    /// for GCM also the 4-octet salt that follows it (RFC 4106 §8.1 for
    /// ESP, RFC 5282 §7.1 for the IKE SA).
    pub fn keymat_len(self) -> usize {
        let key = usize::from(self.key_bits()) / 8;
        match self {
            Encr::AesCbc { .. } => key,
            Encr::AesGcm16 { .. } => key + GCM_SALT_LEN,
        }
    }
}

/// Length of the implicit-nonce salt of AES-GCM (RFC 4106 §8.1).
pub const GCM_SALT_LEN: usize = 4;

/// An implemented integrity transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integ {
    /// AUTH_HMAC_SHA1_96 (2), RFC 2404.
    HmacSha1_96,
    /// AUTH_HMAC_SHA2_256_128 (12), RFC 4868.
    HmacSha256_128,
    /// AUTH_HMAC_SHA2_384_192 (13), RFC 4868.
    HmacSha384_192,
    /// AUTH_HMAC_SHA2_512_256 (14), RFC 4868.
    HmacSha512_256,
}

impl Integ {
    pub const ALL: [Integ; 4] = [
        Integ::HmacSha1_96,
        Integ::HmacSha256_128,
        Integ::HmacSha384_192,
        Integ::HmacSha512_256,
    ];

    pub fn id(self) -> IntegId {
        match self {
            Integ::HmacSha1_96 => IntegId::HmacSha1_96,
            Integ::HmacSha256_128 => IntegId::HmacSha256_128,
            Integ::HmacSha384_192 => IntegId::HmacSha384_192,
            Integ::HmacSha512_256 => IntegId::HmacSha512_256,
        }
    }

    pub fn from_id(id: IntegId) -> Option<Integ> {
        Integ::ALL.into_iter().find(|i| i.id() == id)
    }

    /// Key length in octets: the hash output (RFC 2404 §3, RFC 4868 §2.1.1).
    pub fn key_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 20,
            Integ::HmacSha256_128 => 32,
            Integ::HmacSha384_192 => 48,
            Integ::HmacSha512_256 => 64,
        }
    }

    /// Length of the truncated ICV in octets.
    pub fn icv_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 12,
            Integ::HmacSha256_128 => 16,
            Integ::HmacSha384_192 => 24,
            Integ::HmacSha512_256 => 32,
        }
    }
}

/// The negotiated transforms of an IKE SA that size its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSuite {
    pub encr: Encr,
    pub prf: Prf,
    /// `None` exactly when `encr` is an AEAD.
    pub integ: Option<Integ>,
}

/// The negotiated transforms of a child (ESP) SA that size its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildSuite {
    pub encr: Encr,
    /// `None` exactly when `encr` is an AEAD.
    pub integ: Option<Integ>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error(transparent)]
    Prf(#[from] PrfError),
}

/// The seven secrets of an IKE SA (RFC 7296 §2.14). SK_ai and SK_ar are
/// empty with an AEAD cipher; SK_ei and SK_er then end with the salt.
pub struct IkeKeys {
    pub sk_d: Zeroizing<Vec<u8>>,
    pub sk_ai: Zeroizing<Vec<u8>>,
    pub sk_ar: Zeroizing<Vec<u8>>,
    pub sk_ei: Zeroizing<Vec<u8>>,
    pub sk_er: Zeroizing<Vec<u8>>,
    pub sk_pi: Zeroizing<Vec<u8>>,
    pub sk_pr: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IkeKeys { .. }")
    }
}

/// prf+(key, seed) split into consecutive keys of the given lengths.
fn derive<const N: usize>(
    prf: Prf,
    key: &[u8],
    seed: &[&[u8]],
    lens: [usize; N],
) -> Result<[Zeroizing<Vec<u8>>; N], KeyError> {
    let keymat = prf.prf_plus(key, seed, lens.iter().sum())?;
    let mut at = 0;
    Ok(std::array::from_fn(|i| {
        let key = Zeroizing::new(keymat[at..at + lens[i]].to_vec());
        at += lens[i];
        key
    }))
}

/// SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 §2.14). `ni` and `nr` are the
/// nonce data without payload headers; for the HMAC PRFs the whole nonces
/// form the key.
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    Zeroizing::new(prf.compute(&key, &[g_ir]))
}

/// SKEYSEED of an IKE SA made by rekeying (RFC 7296 §2.18):
/// prf(SK_d (old), g^ir (new) | Ni | Nr), with the *old* IKE SA's PRF and
/// the nonces of the CREATE_CHILD_SA exchange.
pub fn skeyseed_rekey(
    old_prf: Prf,
    old_sk_d: &[u8],
    g_ir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(old_prf.compute(old_sk_d, &[g_ir_new, ni, nr]))
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
///   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) (RFC 7296 §2.14).
///
/// For a rekeyed IKE SA, `spi_i`/`spi_r` are the new SA's SPIs (§2.18).
pub fn ike_keys(
    suite: IkeSuite,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> Result<IkeKeys, KeyError> {
    let prf_len = suite.prf.key_len();
    let integ_len = suite.integ.map_or(0, Integ::key_len);
    let encr_len = suite.encr.keymat_len();
    let [sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr] = derive(
        suite.prf,
        skeyseed,
        &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()],
        [
            prf_len, integ_len, integ_len, encr_len, encr_len, prf_len, prf_len,
        ],
    )?;
    Ok(IkeKeys {
        sk_d,
        sk_ai,
        sk_ar,
        sk_ei,
        sk_er,
        sk_pi,
        sk_pr,
    })
}

/// The keys of one child SA pair (RFC 7296 §2.17). `*_i` protect traffic
/// from the initiator to the responder (the responder's inbound SA), `*_r`
/// the reverse. Encryption keys of AES-GCM end with the 4-octet salt;
/// integrity keys are empty with an AEAD.
pub struct ChildKeys {
    pub encr_i: Zeroizing<Vec<u8>>,
    pub integ_i: Zeroizing<Vec<u8>>,
    pub encr_r: Zeroizing<Vec<u8>>,
    pub integ_r: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ChildKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChildKeys { .. }")
    }
}

/// KEYMAT = prf+(SK_d, Ni | Nr), or prf+(SK_d, g^ir (new) | Ni | Nr) with
/// PFS in CREATE_CHILD_SA (RFC 7296 §2.17), split as §2.17 orders it: all
/// keys of the initiator-to-responder SA first, and within an SA the
/// encryption key before the integrity key.
///
/// The nonces are those of the exchange that creates the child SA: the IKE
/// SA's Ni and Nr for the child made by IKE_AUTH, the CREATE_CHILD_SA
/// nonces otherwise.
pub fn child_keys(
    prf: Prf,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    suite: ChildSuite,
) -> Result<ChildKeys, KeyError> {
    let encr_len = suite.encr.keymat_len();
    let integ_len = suite.integ.map_or(0, Integ::key_len);
    let mut seed: Vec<&[u8]> = Vec::with_capacity(3);
    seed.extend(g_ir_new);
    seed.push(ni);
    seed.push(nr);
    let [encr_i, integ_i, encr_r, integ_r] =
        derive(prf, sk_d, &seed, [encr_len, integ_len, encr_len, integ_len])?;
    Ok(ChildKeys {
        encr_i,
        integ_i,
        encr_r,
        integ_r,
    })
}

/// The pad that keys the shared-secret PRF (RFC 7296 §2.15).
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// The octets an AUTH payload signs (RFC 7296 §2.15):
///
/// ```text
/// InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
///   MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
/// ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
///   MACedIDForR = prf(SK_pr, RestOfRespIDPayload)
/// ```
///
/// `real_message` is the signer's IKE_SA_INIT message exactly as sent (the
/// initiator's request or the responder's response), `peer_nonce` the nonce
/// data of the *other* side, `sk_p` the signer's SK_pi/SK_pr, and
/// `rest_of_id_payload` the signer's ID payload body
/// ([`Identification::rest_of_payload`](crate::wire::ike::Identification::rest_of_payload)).
pub fn signed_octets(
    prf: Prf,
    real_message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    rest_of_id_payload: &[u8],
) -> Vec<u8> {
    let maced_id = prf.compute(sk_p, &[rest_of_id_payload]);
    let mut octets = Vec::with_capacity(real_message.len() + peer_nonce.len() + maced_id.len());
    octets.extend_from_slice(real_message);
    octets.extend_from_slice(peer_nonce);
    octets.extend_from_slice(&maced_id);
    octets
}

/// `AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)`
/// (RFC 7296 §2.15, method 2, shared key message integrity code).
pub fn psk_auth(prf: Prf, shared_secret: &[u8], signed_octets: &[u8]) -> Vec<u8> {
    let key = Zeroizing::new(prf.compute(shared_secret, &[KEY_PAD]));
    prf.compute(&key, &[signed_octets])
}

/// Checks a received shared-key AUTH in constant time.
pub fn verify_psk_auth(
    prf: Prf,
    shared_secret: &[u8],
    signed_octets: &[u8],
    received: &[u8],
) -> bool {
    let expected = psk_auth(prf, shared_secret, signed_octets);
    expected.len() == received.len() && bool::from(expected.ct_eq(received))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::prf::tests::hex;
    use crate::wire::ike::Identification;

    /// A NIST CAVP SP 800-135 IKEv2 known answer (CAVP component test
    /// vectors, 800-135testvectors/ikev2.zip, SHA-1, 8-octet nonces): Ni,
    /// Nr, g^ir, g^ir (new), SPIs, and the expected SKEYSEED, DKM (1056
    /// bits), child DKM without and with PFS, and rekey SKEYSEED. Every
    /// value was re-derived with python3 hmac/hashlib before being copied.
    struct Cavp;
    impl Cavp {
        const NI: &'static str = "3651fef5c9c35e93";
        const NR: &'static str = "c09a8b90a3f04d59";
        const G_IR: &'static str =
            "d084a30166a50fb7325c3960874a839449ef9741c2f4f947d0201dd8c1269273
            d79509f37e3ca3eb4fa2fe2a28254e289cd3f34dad4eb4df1a07685a4b8a94fa61e2491f7598b3ce65547ff1
            33b3f63d1ac4175eaa695033f3cedb026a6873a36455172a8540b8a5d23a0143bed0390ee49b168269d75fff
            ee9fb62be965993c";
        const G_IR_NEW: &'static str =
            "52f00ab174c25d5b7139ae5ff4e8e9eddee5992d2e36adf8a559ffd90dab1442
            e4fbe429d320c0f33552a17d1557fa41ea70e8fb916c4fa27ed52b5f8ebd8461afa78f1159159a64055ac5f6
            319e29c28eae58cbc6847770f32c3fed1d04750484f854790f95e9ec01bc5bc461f24966462e359511329305
            038e94deb6dd42c2";
        const SPI_I: u64 = 0x8e5c_3ae5_0722_1684;
        const SPI_R: u64 = 0xb1f2_01bb_155c_3acd;
        const SKEYSEED: &'static str = "cd2e8050137832245f1dbacc6e4f0a92f94d45d6";
        const DKM: &'static str = "6f1b12cad3cbe097b35430356d869d54cddb0198ec859174d53ceb92dddedbe2
            436db69f60977c58fa63bbb667f8d36920b109baae8f6c61a9ac49feda01843225d080ec5539d5881a25521f
            fb2a0a91874a9c0a27fcc2d717eb8963a9e3a89c7ab264757284c28cf8c3ca40576f4220b052b1fb8e9ad60b
            a3c80557323331a8cbb89f20";
        const CHILD_DKM: &'static str =
            "4727dc0ef94eb326ce131cf282fb652faa638ad0ddae3786a11bcc0309876009
            f8c485de011ad962c5b1ca8a41ff8145445749079c5686e26ffebbc342f06981f3da745e11ca0976424d1f8c
            aec623d59dc7186deb20a27b411d1dcb70a365440bf7de905088b0692e8addc094e18d1939bdb67e89798ca6
            b239e2ccb81c2409dac0106c";
        const CHILD_DKM_PFS: &'static str =
            "b109c21ad4c0797768c1cec9e63554681e48f224bca7f23c20c4ea7041983451
            e9aa1d5408656c8a975ff1b9d9a12c75ffeb64bdecb30174664cccb4e14f1c377b7f6d1525af77c7092aac3e
            47f917ebae8297fb5539d2008ce830823a09cc197361d4a289c72745f6ce9fefe812be5bf55b3200fbb82e41
            a4a40877d3fe106db909707b";
        const SKEYSEED_REKEY: &'static str = "3b03bce748c96d5e8306918d2ff89b68f0648da3";
    }

    /// 20 + 2*20 + 2*16 + 2*20 = 132 octets: exactly the CAVP DKM length.
    const CAVP_SUITE: IkeSuite = IkeSuite {
        encr: Encr::AesCbc { key_bits: 128 },
        prf: Prf::HmacSha1,
        integ: Some(Integ::HmacSha1_96),
    };

    #[test]
    fn skeyseed_and_ike_keys_cavp() {
        let (ni, nr) = (hex(Cavp::NI), hex(Cavp::NR));
        let seed = skeyseed(Prf::HmacSha1, &ni, &nr, &hex(Cavp::G_IR));
        assert_eq!(*seed, hex(Cavp::SKEYSEED));
        let keys = ike_keys(CAVP_SUITE, &seed, &ni, &nr, Cavp::SPI_I, Cavp::SPI_R).unwrap();
        let dkm = hex(Cavp::DKM);
        assert_eq!(dkm.len(), 132);
        assert_eq!(*keys.sk_d, dkm[0..20]);
        assert_eq!(*keys.sk_ai, dkm[20..40]);
        assert_eq!(*keys.sk_ar, dkm[40..60]);
        assert_eq!(*keys.sk_ei, dkm[60..76]);
        assert_eq!(*keys.sk_er, dkm[76..92]);
        assert_eq!(*keys.sk_pi, dkm[92..112]);
        assert_eq!(*keys.sk_pr, dkm[112..132]);
    }

    #[test]
    fn child_keys_and_rekey_cavp() {
        let (ni, nr) = (hex(Cavp::NI), hex(Cavp::NR));
        let sk_d = &hex(Cavp::DKM)[..20];
        let suite = ChildSuite {
            encr: Encr::AesCbc { key_bits: 128 },
            integ: Some(Integ::HmacSha1_96),
        };
        // Without PFS: encr_i | integ_i | encr_r | integ_r from the front.
        let dkm = hex(Cavp::CHILD_DKM);
        let keys = child_keys(Prf::HmacSha1, sk_d, None, &ni, &nr, suite).unwrap();
        assert_eq!(*keys.encr_i, dkm[0..16]);
        assert_eq!(*keys.integ_i, dkm[16..36]);
        assert_eq!(*keys.encr_r, dkm[36..52]);
        assert_eq!(*keys.integ_r, dkm[52..72]);
        // With PFS, g^ir (new) leads the seed.
        let g_new = hex(Cavp::G_IR_NEW);
        let dkm = hex(Cavp::CHILD_DKM_PFS);
        let keys = child_keys(Prf::HmacSha1, sk_d, Some(&g_new), &ni, &nr, suite).unwrap();
        assert_eq!(*keys.encr_i, dkm[0..16]);
        assert_eq!(*keys.integ_r, dkm[52..72]);
        // Rekeyed IKE SA.
        assert_eq!(
            *skeyseed_rekey(Prf::HmacSha1, sk_d, &g_new, &ni, &nr),
            hex(Cavp::SKEYSEED_REKEY)
        );
    }

    /// AES-GCM: the salt follows the key within each direction, and no
    /// integrity keys are taken (RFC 4106 §8.1, RFC 5282 §7.1).
    #[test]
    fn gcm_key_layout() {
        let (ni, nr) = (hex(Cavp::NI), hex(Cavp::NR));
        let sk_d = &hex(Cavp::DKM)[..20];
        let gcm = ChildSuite {
            encr: Encr::AesGcm16 { key_bits: 256 },
            integ: None,
        };
        let keys = child_keys(Prf::HmacSha1, sk_d, None, &ni, &nr, gcm).unwrap();
        let dkm = hex(Cavp::CHILD_DKM);
        assert_eq!(*keys.encr_i, dkm[0..36]);
        assert_eq!(*keys.encr_r, dkm[36..72]);
        assert!(keys.integ_i.is_empty() && keys.integ_r.is_empty());

        let suite = IkeSuite {
            encr: Encr::AesGcm16 { key_bits: 128 },
            prf: Prf::HmacSha1,
            integ: None,
        };
        let seed = hex(Cavp::SKEYSEED);
        let keys = ike_keys(suite, &seed, &ni, &nr, Cavp::SPI_I, Cavp::SPI_R).unwrap();
        let dkm = hex(Cavp::DKM);
        assert_eq!(*keys.sk_d, dkm[0..20]);
        assert!(keys.sk_ai.is_empty() && keys.sk_ar.is_empty());
        assert_eq!(*keys.sk_ei, dkm[20..40]);
        assert_eq!(*keys.sk_er, dkm[40..60]);
        assert_eq!(*keys.sk_pi, dkm[60..80]);
        assert_eq!(*keys.sk_pr, dkm[80..100]);
    }

    /// Shared-key AUTH for both sides. Expected values computed with python3:
    ///
    /// ```text
    /// H = lambda k, d: hmac.new(k, d, hashlib.sha256).digest()
    /// pad = H(b"plexnet-psk", b"Key Pad for IKEv2")
    /// H(pad, bytes(range(60)) + b"\x11"*32 + H(b"\x22"*32, bytes([1,0,0,0,198,18,1,10])))
    /// H(pad, bytes(range(100,180)) + b"\x44"*16 + H(b"\x33"*32, bytes([2,0,0,0]) + b"dva1.plex"))
    /// ```
    #[test]
    fn psk_auth_known_answer() {
        let prf = Prf::HmacSha256;
        let id_i = Identification::Ipv4Addr([198, 18, 1, 10]).rest_of_payload();
        let message1: Vec<u8> = (0..60).collect();
        let octets = signed_octets(prf, &message1, &[0x11; 32], &[0x22; 32], &id_i);
        assert_eq!(
            octets[92..],
            hex("34dceb0b9bf80334bbd87deba8f9ddf3508dc940cb101f57fc8bb5c63ce9653c")
        );
        let auth = psk_auth(prf, b"plexnet-psk", &octets);
        assert_eq!(
            auth,
            hex("07b75757e4a41d8ac3346e10ccbfa9c453a4451dbe5e0513f7d7d89ff04238e5")
        );
        assert!(verify_psk_auth(prf, b"plexnet-psk", &octets, &auth));
        assert!(!verify_psk_auth(prf, b"plexnet-psK", &octets, &auth));
        assert!(!verify_psk_auth(prf, b"plexnet-psk", &octets, &auth[..31]));

        let id_r = Identification::Fqdn(b"dva1.plex".to_vec()).rest_of_payload();
        let message2: Vec<u8> = (100..180).collect();
        let octets = signed_octets(prf, &message2, &[0x44; 16], &[0x33; 32], &id_r);
        assert_eq!(
            psk_auth(prf, b"plexnet-psk", &octets),
            hex("61c1bb1b899890fea7868c8dc5c23a3dc902e26c5492dcb23e891e9144734f87")
        );
    }

    #[test]
    fn transform_lookups() {
        assert_eq!(
            Encr::from_transform(EncrId::AesCbc, Some(192)),
            Some(Encr::AesCbc { key_bits: 192 })
        );
        assert_eq!(Encr::from_transform(EncrId::AesCbc, None), None);
        assert_eq!(Encr::from_transform(EncrId::AesCbc, Some(64)), None);
        assert_eq!(Encr::from_transform(EncrId::AesCtr, Some(128)), None);
        assert_eq!(Encr::AesGcm16 { key_bits: 128 }.keymat_len(), 20);
        for i in Integ::ALL {
            assert_eq!(Integ::from_id(i.id()), Some(i));
            assert!(i.icv_len() < i.key_len());
        }
        assert_eq!(Integ::from_id(IntegId::None), None);
    }
}
