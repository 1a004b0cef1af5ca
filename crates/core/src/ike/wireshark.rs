//! Key tables for Wireshark/tshark, so captures of our exchanges decrypt.
//!
//! `ikev2_decryption_table` (Wireshark's IKEv2 UAT, packet-isakmp.c): one
//! line per IKE SA,
//!
//! ```text
//! SPIi,SPIr,SK_ei,SK_er,"Encryption algorithm",SK_ai,SK_ar,"Integrity algorithm"
//! ```
//!
//! SPIs as 16 hex digits, keys as hex (SK_e with the GCM salt, SK_a empty
//! with an AEAD), algorithm names exactly as Wireshark's
//! `ikev2_encr_algs`/`ikev2_integ_algs` tables spell them (the same strings
//! strongSwan's save-keys plugin writes; `tests/ike_wireshark_keys.rs`
//! checks that tshark decrypts our exchanges with them). Use with
//! `tshark -o "uat:ikev2_decryption_table:<line>"` or the file of that name
//! in the Wireshark profile.

use crate::ike::keys::{Encr, IkeKeys, IkeSuite, Integ};

/// Wireshark's name of an IKE encryption algorithm.
pub fn ikev2_encr_name(encr: Encr) -> &'static str {
    match encr {
        Encr::AesCbc { key_bits: 128 } => "AES-CBC-128 [RFC3602]",
        Encr::AesCbc { key_bits: 192 } => "AES-CBC-192 [RFC3602]",
        Encr::AesCbc { .. } => "AES-CBC-256 [RFC3602]",
        Encr::AesGcm16 { key_bits: 128 } => "AES-GCM-128 with 16 octet ICV [RFC5282]",
        Encr::AesGcm16 { key_bits: 192 } => "AES-GCM-192 with 16 octet ICV [RFC5282]",
        Encr::AesGcm16 { .. } => "AES-GCM-256 with 16 octet ICV [RFC5282]",
    }
}

/// Wireshark's name of an IKE integrity algorithm (`None` with an AEAD).
pub fn ikev2_integ_name(integ: Option<Integ>) -> &'static str {
    match integ {
        None => "NONE [RFC4306]",
        Some(Integ::HmacSha1_96) => "HMAC_SHA1_96 [RFC2404]",
        Some(Integ::HmacSha256_128) => "HMAC_SHA2_256_128 [RFC4868]",
        Some(Integ::HmacSha384_192) => "HMAC_SHA2_384_192 [RFC4868]",
        Some(Integ::HmacSha512_256) => "HMAC_SHA2_512_256 [RFC4868]",
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One `ikev2_decryption_table` line (no trailing newline).
pub fn ikev2_line(spi_i: u64, spi_r: u64, suite: IkeSuite, keys: &IkeKeys) -> String {
    format!(
        "{spi_i:016x},{spi_r:016x},{},{},\"{}\",{},{},\"{}\"",
        hex(&keys.sk_ei),
        hex(&keys.sk_er),
        ikev2_encr_name(suite.encr),
        hex(&keys.sk_ai),
        hex(&keys.sk_ar),
        ikev2_integ_name(suite.integ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::dh::Zeroizing;
    use crate::ike::prf::Prf;

    #[test]
    fn renders_uat_line() {
        let z = |b: &[u8]| Zeroizing::new(b.to_vec());
        let keys = IkeKeys {
            sk_d: z(&[0; 4]),
            sk_ai: z(&[0xa1, 0x01]),
            sk_ar: z(&[0xa2]),
            sk_ei: z(&[0xe1]),
            sk_er: z(&[0xe2, 0xff]),
            sk_pi: z(&[]),
            sk_pr: z(&[]),
        };
        let suite = IkeSuite {
            encr: Encr::AesCbc { key_bits: 128 },
            prf: Prf::HmacSha256,
            integ: Some(Integ::HmacSha256_128),
        };
        assert_eq!(
            ikev2_line(0x1df0_1234_4443_797b, 0xd3, suite, &keys),
            "1df012344443797b,00000000000000d3,e1,e2ff,\"AES-CBC-128 [RFC3602]\",a101,a2,\
             \"HMAC_SHA2_256_128 [RFC4868]\""
        );
        assert_eq!(
            ikev2_encr_name(Encr::AesGcm16 { key_bits: 256 }),
            "AES-GCM-256 with 16 octet ICV [RFC5282]"
        );
        assert_eq!(ikev2_integ_name(None), "NONE [RFC4306]");
    }
}
