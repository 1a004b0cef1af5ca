//! The IKEv2 pseudorandom functions and prf+ (RFC 7296 §2.13), as pure
//! functions over byte slices.
//!
//! Only the HMAC PRFs are implemented (RFC 2104 with SHA-1, RFC 4868 with
//! SHA-2). Their key may have any length; the "preferred key length" that
//! sizes SK_d, SK_pi and SK_pr is the output length (RFC 4868 §2.1.2,
//! RFC 7296 §2.14).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use thiserror::Error;

use crate::ike::dh::Zeroizing;
use crate::wire::ike::PrfId;

/// An implemented PRF transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prf {
    /// PRF_HMAC_SHA1 (2), RFC 2104.
    HmacSha1,
    /// PRF_HMAC_SHA2_256 (5), RFC 4868.
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (6), RFC 4868.
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (7), RFC 4868.
    HmacSha512,
}

/// prf+ produces at most 255 blocks: the counter is one octet (RFC 7296 §2.13).
pub const PRF_PLUS_MAX_BLOCKS: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PrfError {
    #[error("prf+ can produce at most {max} octets with this PRF, {requested} requested")]
    TooLong { requested: usize, max: usize },
}

macro_rules! hmac_parts {
    ($digest:ty, $key:expr, $parts:expr) => {{
        let mut mac =
            <Hmac<$digest> as Mac>::new_from_slice($key).expect("HMAC accepts keys of any length");
        for part in $parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }};
}

impl Prf {
    pub const ALL: [Prf; 4] = [
        Prf::HmacSha1,
        Prf::HmacSha256,
        Prf::HmacSha384,
        Prf::HmacSha512,
    ];

    pub fn id(self) -> PrfId {
        match self {
            Prf::HmacSha1 => PrfId::HmacSha1,
            Prf::HmacSha256 => PrfId::HmacSha256,
            Prf::HmacSha384 => PrfId::HmacSha384,
            Prf::HmacSha512 => PrfId::HmacSha512,
        }
    }

    pub fn from_id(id: PrfId) -> Option<Prf> {
        Prf::ALL.into_iter().find(|p| p.id() == id)
    }

    /// Output length in octets.
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha1 => 20,
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
        }
    }

    /// Preferred key length: the length of SK_d, SK_pi and SK_pr (§2.14).
    pub fn key_len(self) -> usize {
        self.output_len()
    }

    /// `prf(key, parts[0] | parts[1] | ...)`.
    pub fn compute(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Prf::HmacSha1 => hmac_parts!(Sha1, key, parts),
            Prf::HmacSha256 => hmac_parts!(Sha256, key, parts),
            Prf::HmacSha384 => hmac_parts!(Sha384, key, parts),
            Prf::HmacSha512 => hmac_parts!(Sha512, key, parts),
        }
    }

    /// prf+(key, seed) truncated to `len` octets (RFC 7296 §2.13):
    /// T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n).
    pub fn prf_plus(
        self,
        key: &[u8],
        seed: &[&[u8]],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, PrfError> {
        let max = PRF_PLUS_MAX_BLOCKS * self.output_len();
        if len > max {
            return Err(PrfError::TooLong {
                requested: len,
                max,
            });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(len + self.output_len()));
        let mut t = Zeroizing::new(Vec::new());
        let mut counter = 1u8;
        while out.len() < len {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(seed.len() + 2);
            parts.push(&t);
            parts.extend_from_slice(seed);
            let c = [counter];
            parts.push(&c);
            *t = self.compute(key, &parts);
            out.extend_from_slice(&t);
            counter = counter.wrapping_add(1);
        }
        out.truncate(len);
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231 test cases 1, 2 and 6 (SHA-2) and RFC 2202 test cases 1, 2
    /// and 6 (SHA-1), run through the PRF; the data is split in two parts
    /// to check that `compute` concatenates.
    #[test]
    fn hmac_rfc4231_rfc2202() {
        let cases: [(&[u8], &[u8], [&str; 4]); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                [
                    "b617318655057264e28bc0b6fb378c8ef146be00",
                    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
                    "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c
                     faea9ea9076ede7f4af152e8b2fa9cb6",
                    "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
                     daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
                ],
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                [
                    "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e
                     8e2240ca5e69e2c78b3239ecfab21649",
                    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554
                     9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
                ],
            ),
            (
                // A key longer than the block size is hashed first.
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                [
                    "",
                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                    "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6
                     0c2ef6ab4030fe8296248df163f44952",
                    "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352
                     6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
                ],
            ),
        ];
        for (key, data, expected) in cases {
            for (prf, want) in Prf::ALL.into_iter().zip(expected) {
                if want.is_empty() {
                    continue; // RFC 2202's case 6 uses an 80-octet key.
                }
                let (a, b) = data.split_at(3);
                assert_eq!(prf.compute(key, &[a, b]), hex(want), "{prf:?}");
                assert_eq!(prf.output_len(), hex(want).len());
            }
        }
        // RFC 2202 test case 6: 80-octet key, SHA-1.
        assert_eq!(
            Prf::HmacSha1.compute(
                &[0xaa; 80],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            ),
            hex("aa4ae5e15272d00e95705637ce8a3b55ed402112")
        );
    }

    /// prf+ known answers from NIST CAVP SP 800-135 (IKEv2, key = SKEYSEED,
    /// seed = Ni | Nr | SPIi | SPIr) as carried in strongSwan 5.9.8's
    /// test_vectors/kdf_prf_plus.c (`prf_plus_sha256_1`, `prf_plus_sha384_1`),
    /// and that file's RFC 4868-derived vector (`prf_plus_sha256_old`).
    #[test]
    fn prf_plus_cavp() {
        let cases = [
            (
                Prf::HmacSha256,
                "37fde90b81d63692620f67367b62092e3efdc6a03509137d731004767ff35010",
                "ed80dc79912c32a935fb6d1a3feac07847c1858efc932ea4606fd05609624002",
                "63d018a08f7a29daa7d1f92cb63f45fa39bbaf5e5f1a78139613bb891e3e6bf9d0448f7c74e05b4c1a25c0b6
                 1e62c875e852f287e192d4ae536112db5197216400bd5e123470efc15f53161865fe8b19a1416518a157d651
                 ecd2caddab6a9eae6a27a55af088218d5156edaa9789f934d9836ed43edffda553822202ff9f7d4860ca72e0",
            ),
            (
                Prf::HmacSha384,
                "54436a9ea95d6ff79b967f4b07f6de976a376e8ea26aa9574709afc60243c9c141da4ca0e158e627a75ea87f6feb07ef",
                "d672b0bc852829b93509f3b7247063640f9a016d7b22223c85f710daf8b982d8",
                "10b00a654643b3b985764f86e23ef62431122fcc96de16e338a372bee49391db1f83a7358c080380abbf4af4
                 7cdb83b9530343168f7dbc9221260e1546c6b383e2235d2705a727f0b41aebf6a1b4c61cb460660152a17ba7
                 4c20d5191ba6841794945270d829587b7f3294639ea7b77149e1d07230ac16e0cd5ab236fa3212bd569ee70f",
            ),
            (
                Prf::HmacSha256,
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                "4869205468657265",
                "b9bdc08988b4c2b75aa93e596ac84205fa2ddde1bf7a2572067b00e14b237732830509981ad2f94a8c32a47d
                 aa2255b660c436347ae756a6edc023477d809590e682f61d9c04b06b4ad971a34c8147fa66792ff1434b93c7
                 22b32e12f48832ebc15ce2369ce71fe9b7b81e5704c14d0f5280a6ec626e992d7a9f",
            ),
        ];
        for (prf, key, seed, out) in cases {
            let out = hex(out);
            let seed = hex(seed);
            // The seed split in parts must not matter.
            let (s1, s2) = seed.split_at(5);
            assert_eq!(*prf.prf_plus(&hex(key), &[s1, s2], out.len()).unwrap(), out);
            // A shorter request is a prefix.
            assert_eq!(*prf.prf_plus(&hex(key), &[&seed], 7).unwrap(), out[..7]);
        }
    }

    #[test]
    fn prf_plus_is_bounded() {
        for prf in Prf::ALL {
            let max = 255 * prf.output_len();
            assert_eq!(prf.prf_plus(b"k", &[b"s"], max).unwrap().len(), max);
            assert_eq!(
                prf.prf_plus(b"k", &[b"s"], max + 1).map(|_| ()),
                Err(PrfError::TooLong {
                    requested: max + 1,
                    max
                })
            );
            assert_eq!(Prf::from_id(prf.id()), Some(prf));
        }
        assert_eq!(Prf::from_id(PrfId::Aes128Xcbc), None);
    }
}
