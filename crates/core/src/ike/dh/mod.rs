//! Diffie-Hellman groups for IKEv2 (RFC 7296 §2.14, §3.4), sans-IO.
//!
//! Randomness comes in as an argument; nothing here reads a clock or a
//! global RNG. Supported: MODP 2048/3072/4096 (RFC 3526), ECP 256/384
//! (RFC 5903) and Curve25519 (RFC 8031).
//!
//! Wire encodings of the KE payload's public value and of the shared secret
//! g^ir that goes into SKEYSEED:
//! - MODP: big-endian, left-padded with zeros to the length of the prime
//!   (RFC 7296 §3.4 for the public value, §2.14 for g^ir).
//! - ECP: `x | y` without the SEC1 0x04 prefix; the shared secret is the x
//!   coordinate alone (RFC 5903 §7).
//! - Curve25519: the 32-octet u-coordinate (RFC 8031 §2).
//!
//! Secrets are wiped on drop (`Zeroizing`, the EC and X25519 key types);
//! the MODP exponent is wiped too, but `num-bigint`'s temporaries are not,
//! and its `modpow` is not constant-time.

use std::fmt;
use std::sync::OnceLock;

use num_bigint::BigUint;
use p256::elliptic_curve::sec1::ToEncodedPoint;
pub use p256::elliptic_curve::zeroize::Zeroizing;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;

use crate::wire::ike::DhId;

/// The Diffie-Hellman groups this implementation offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 14, RFC 3526 §3.
    Modp2048,
    /// Group 15, RFC 3526 §4.
    Modp3072,
    /// Group 16, RFC 3526 §5.
    Modp4096,
    /// Group 19, RFC 5903 §3.1 (NIST P-256).
    Ecp256,
    /// Group 20, RFC 5903 §3.2 (NIST P-384).
    Ecp384,
    /// Group 31, RFC 8031.
    Curve25519,
}

impl DhGroup {
    pub const ALL: [DhGroup; 6] = [
        DhGroup::Modp2048,
        DhGroup::Modp3072,
        DhGroup::Modp4096,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Curve25519,
    ];

    /// The IANA transform ID.
    pub fn id(self) -> DhId {
        match self {
            DhGroup::Modp2048 => DhId::Modp2048,
            DhGroup::Modp3072 => DhId::Modp3072,
            DhGroup::Modp4096 => DhId::Modp4096,
            DhGroup::Ecp256 => DhId::Ecp256,
            DhGroup::Ecp384 => DhId::Ecp384,
            DhGroup::Curve25519 => DhId::Curve25519,
        }
    }

    /// The group for a transform ID, if implemented.
    pub fn from_id(id: DhId) -> Option<DhGroup> {
        DhGroup::ALL.into_iter().find(|g| g.id() == id)
    }

    /// Length of the KE payload's public value in octets.
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Modp2048 => 256,
            DhGroup::Modp3072 => 384,
            DhGroup::Modp4096 => 512,
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
            DhGroup::Curve25519 => 32,
        }
    }

    /// Length of the shared secret g^ir in octets.
    pub fn shared_len(self) -> usize {
        match self {
            DhGroup::Ecp256 => 32,
            DhGroup::Ecp384 => 48,
            other => other.public_len(),
        }
    }

    /// Bits of a MODP private exponent: at least twice the group's strength
    /// (RFC 3526 §8, "exponent size" column of the second estimate: 320, 420,
    /// 480), rounded up to whole 64-bit words; 2048 and 4096 match the
    /// strongSwan exponent lengths (48 and 64 octets).
    fn modp_exponent_bits(self) -> Option<usize> {
        match self {
            DhGroup::Modp2048 => Some(384),
            DhGroup::Modp3072 => Some(448),
            DhGroup::Modp4096 => Some(512),
            _ => None,
        }
    }

    /// The prime of a MODP group; the generator is 2 for all of them.
    fn modp_prime(self) -> Option<&'static BigUint> {
        static P2048: OnceLock<BigUint> = OnceLock::new();
        static P3072: OnceLock<BigUint> = OnceLock::new();
        static P4096: OnceLock<BigUint> = OnceLock::new();
        let (cell, hex) = match self {
            DhGroup::Modp2048 => (&P2048, MODP2048_HEX),
            DhGroup::Modp3072 => (&P3072, MODP3072_HEX),
            DhGroup::Modp4096 => (&P4096, MODP4096_HEX),
            _ => return None,
        };
        Some(cell.get_or_init(|| {
            BigUint::parse_bytes(hex.as_bytes(), 16).expect("RFC 3526 primes are valid hex")
        }))
    }
}

impl TryFrom<DhId> for DhGroup {
    type Error = DhId;
    fn try_from(id: DhId) -> Result<DhGroup, DhId> {
        DhGroup::from_id(id).ok_or(id)
    }
}

/// Why a Diffie-Hellman computation failed. All but `InvalidPrivate` mean
/// the peer sent a bad KE payload (answer with INVALID_SYNTAX or, as
/// strongSwan does, NO_PROPOSAL_CHOSEN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DhError {
    #[error("{group:?} public value of {got} octets, expected {expected}")]
    BadLength {
        group: DhGroup,
        got: usize,
        expected: usize,
    },
    #[error("{0:?} public value is not a valid group element")]
    InvalidPublic(DhGroup),
    #[error("{0:?} shared secret is all zero (small-order peer value)")]
    ZeroSharedSecret(DhGroup),
    #[error("private value is not valid for {0:?}")]
    InvalidPrivate(DhGroup),
}

enum Secret {
    /// Big-endian exponent.
    Modp(Zeroizing<Vec<u8>>),
    Ecp256(p256::SecretKey),
    Ecp384(p384::SecretKey),
    X25519(x25519_dalek::StaticSecret),
}

/// One side's Diffie-Hellman private value and the public value it sends.
pub struct DhPrivate {
    group: DhGroup,
    secret: Secret,
    public: Vec<u8>,
}

impl fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhPrivate")
            .field("group", &self.group)
            .field("public_len", &self.public.len())
            .finish_non_exhaustive()
    }
}

impl DhPrivate {
    /// Draws a fresh private value for `group`.
    pub fn generate<R: RngCore + CryptoRng>(group: DhGroup, rng: &mut R) -> DhPrivate {
        match group {
            DhGroup::Modp2048 | DhGroup::Modp3072 | DhGroup::Modp4096 => {
                let bits = group.modp_exponent_bits().unwrap_or(512);
                loop {
                    let mut x = Zeroizing::new(vec![0u8; bits / 8]);
                    rng.fill_bytes(&mut x);
                    // Only x = 0 and x = 1 are refused; with 384+ random bits
                    // the loop runs once.
                    if let Ok(private) = DhPrivate::from_private_bytes(group, &x) {
                        return private;
                    }
                }
            }
            DhGroup::Ecp256 => DhPrivate::ecp256(p256::SecretKey::random(rng)),
            DhGroup::Ecp384 => DhPrivate::ecp384(p384::SecretKey::random(rng)),
            DhGroup::Curve25519 => {
                DhPrivate::x25519(x25519_dalek::StaticSecret::random_from_rng(rng))
            }
        }
    }

    /// A private value given as octets: the big-endian exponent for MODP, the
    /// big-endian scalar for ECP (exactly the field length), the 32-octet
    /// scalar for Curve25519. For known-answer tests and deterministic
    /// simulations; live exchanges use [`DhPrivate::generate`].
    pub fn from_private_bytes(group: DhGroup, bytes: &[u8]) -> Result<DhPrivate, DhError> {
        let invalid = DhError::InvalidPrivate(group);
        match group {
            DhGroup::Modp2048 | DhGroup::Modp3072 | DhGroup::Modp4096 => {
                let p = group.modp_prime().ok_or(invalid)?;
                let x = Zeroizing::new(bytes.to_vec());
                let xv = BigUint::from_bytes_be(&x);
                if xv < BigUint::from(2u8) || &xv >= p {
                    return Err(invalid);
                }
                let y = BigUint::from(2u8).modpow(&xv, p);
                Ok(DhPrivate {
                    group,
                    public: pad_be(&y, group.public_len()),
                    secret: Secret::Modp(x),
                })
            }
            DhGroup::Ecp256 => {
                if bytes.len() != 32 {
                    return Err(invalid);
                }
                p256::SecretKey::from_slice(bytes)
                    .map(DhPrivate::ecp256)
                    .map_err(|_| invalid)
            }
            DhGroup::Ecp384 => {
                if bytes.len() != 48 {
                    return Err(invalid);
                }
                p384::SecretKey::from_slice(bytes)
                    .map(DhPrivate::ecp384)
                    .map_err(|_| invalid)
            }
            DhGroup::Curve25519 => {
                let k: [u8; 32] = bytes.try_into().map_err(|_| invalid)?;
                Ok(DhPrivate::x25519(x25519_dalek::StaticSecret::from(k)))
            }
        }
    }

    fn ecp256(secret: p256::SecretKey) -> DhPrivate {
        let point = secret.public_key().to_encoded_point(false);
        DhPrivate {
            group: DhGroup::Ecp256,
            // Uncompressed SEC1 is 0x04 | x | y; RFC 5903 §7 sends x | y.
            public: point.as_bytes()[1..].to_vec(),
            secret: Secret::Ecp256(secret),
        }
    }

    fn ecp384(secret: p384::SecretKey) -> DhPrivate {
        let point = secret.public_key().to_encoded_point(false);
        DhPrivate {
            group: DhGroup::Ecp384,
            public: point.as_bytes()[1..].to_vec(),
            secret: Secret::Ecp384(secret),
        }
    }

    fn x25519(secret: x25519_dalek::StaticSecret) -> DhPrivate {
        DhPrivate {
            group: DhGroup::Curve25519,
            public: x25519_dalek::PublicKey::from(&secret).as_bytes().to_vec(),
            secret: Secret::X25519(secret),
        }
    }

    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The Key Exchange Data of our KE payload.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// g^ir from the peer's Key Exchange Data, after checking that the value
    /// has the group's length and is a valid element: 1 < y < p-1 for MODP
    /// (NIST SP 800-56A §5.6.2.3.1), a point on the curve other than the
    /// identity for ECP, a non-zero result for Curve25519 (RFC 8031 §2.3).
    pub fn shared_secret(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, DhError> {
        let group = self.group;
        if peer.len() != group.public_len() {
            return Err(DhError::BadLength {
                group,
                got: peer.len(),
                expected: group.public_len(),
            });
        }
        let invalid = DhError::InvalidPublic(group);
        match &self.secret {
            Secret::Modp(x) => {
                let p = group.modp_prime().ok_or(invalid)?;
                let y = BigUint::from_bytes_be(peer);
                let one = BigUint::from(1u8);
                if y <= one || y >= p - &one {
                    return Err(invalid);
                }
                let s = y.modpow(&BigUint::from_bytes_be(x), p);
                Ok(Zeroizing::new(pad_be(&s, group.shared_len())))
            }
            Secret::Ecp256(secret) => {
                let public = p256::PublicKey::from_sec1_bytes(&sec1_uncompressed(peer))
                    .map_err(|_| invalid)?;
                let shared =
                    p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            Secret::Ecp384(secret) => {
                let public = p384::PublicKey::from_sec1_bytes(&sec1_uncompressed(peer))
                    .map_err(|_| invalid)?;
                let shared =
                    p384::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            Secret::X25519(secret) => {
                let mut u = [0u8; 32];
                u.copy_from_slice(peer);
                let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(u));
                if !shared.was_contributory() {
                    return Err(DhError::ZeroSharedSecret(group));
                }
                Ok(Zeroizing::new(shared.as_bytes().to_vec()))
            }
        }
    }
}

/// 0x04 | x | y, the SEC1 uncompressed encoding of an RFC 5903 value.
fn sec1_uncompressed(xy: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + xy.len());
    v.push(0x04);
    v.extend_from_slice(xy);
    v
}

/// `n` big-endian, left-padded with zeros to `len` octets (`n` < 2^(8 len)).
fn pad_be(n: &BigUint, len: usize) -> Vec<u8> {
    let bytes = n.to_bytes_be();
    let mut out = vec![0u8; len.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes);
    out
}

/// The 2048-bit MODP prime, RFC 3526 §3 (group 14):
/// 2^2048 - 2^1984 - 1 + 2^64 * ( [2^1918 pi] + 124476 ).
const MODP2048_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// The 3072-bit MODP prime, RFC 3526 §4 (group 15):
/// 2^3072 - 2^3008 - 1 + 2^64 * ( [2^2942 pi] + 1690314 ).
const MODP3072_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// The 4096-bit MODP prime, RFC 3526 §5 (group 16):
/// 2^4096 - 2^4032 - 1 + 2^64 * ( [2^3966 pi] + 240904 ).
const MODP4096_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
);

#[cfg(test)]
mod tests;
