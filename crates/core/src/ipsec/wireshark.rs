//! Wireshark's ESP SA table ("esp_sa" UAT, preference `uat:esp_sa`), so
//! captures of plexnet traffic decrypt in Wireshark and tshark. The
//! algorithm labels are those of Wireshark's ESP dissector
//! (`esp_encryption_type_vals`, `esp_authentication_type_vals`).

use core::net::IpAddr;

use super::sa::{EncAlg, IntegAlg, Key, Protocol, Sa};

/// Wireshark's label for an encryption algorithm.
pub const fn encryption_label(enc: EncAlg) -> &'static str {
    match enc {
        EncAlg::Null => "NULL",
        EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => "AES-CBC [RFC3602]",
        EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => "AES-GCM with 16 octet ICV [RFC4106]",
    }
}

/// Wireshark's label for an integrity algorithm.
pub const fn authentication_label(integ: IntegAlg) -> &'static str {
    match integ {
        IntegAlg::None => "NULL",
        IntegAlg::HmacSha1_96 => "HMAC-SHA-1-96 [RFC2404]",
        IntegAlg::HmacSha256_128 => "HMAC-SHA-256-128 [RFC4868]",
        IntegAlg::HmacSha384_192 => "HMAC-SHA-384-192 [RFC4868]",
        IntegAlg::HmacSha512_256 => "HMAC-SHA-512-256 [RFC4868]",
    }
}

fn key_field(key: &Key) -> String {
    if key.as_bytes().is_empty() {
        String::new()
    } else {
        format!("0x{}", key.to_hex())
    }
}

/// One `esp_sa` record for an ESP SA, e.g.
/// `"IPv4","198.18.1.10","198.18.0.100","0x01000001","AES-CBC [RFC3602]","0x…","HMAC-SHA-1-96 [RFC2404]","0x…"`.
/// Pass it as `tshark -o 'uat:esp_sa:<record>'`. The GCM key field holds
/// the key with its 4-byte salt, as Wireshark expects. AH SAs have no
/// record (Wireshark does not verify AH): `None`.
pub fn esp_sa_uat(sa: &Sa) -> Option<String> {
    let c = sa.config();
    if c.protocol != Protocol::Esp {
        return None;
    }
    let family = match c.src {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    };
    Some(format!(
        "\"{family}\",\"{}\",\"{}\",\"0x{:08x}\",\"{}\",\"{}\",\"{}\",\"{}\"",
        c.src,
        c.dst,
        c.spi.0,
        encryption_label(c.enc),
        key_field(&c.enc_key),
        authentication_label(c.integ),
        key_field(&c.integ_key),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipsec::sa::tests::config;
    use crate::ipsec::sa::Mode;

    #[test]
    fn cbc_sha1_record() {
        let sa = Sa::new(config(
            EncAlg::AesCbc128,
            IntegAlg::HmacSha1_96,
            Mode::Tunnel,
        ))
        .unwrap();
        let line = esp_sa_uat(&sa).unwrap();
        assert!(line.starts_with(
            "\"IPv4\",\"198.18.1.10\",\"198.18.0.100\",\"0x10000001\",\"AES-CBC [RFC3602]\",\"0x000102030405060708090a0b0c0d0e0f\",\"HMAC-SHA-1-96 [RFC2404]\",\"0x5a5b"
        ), "{line}");
        assert_eq!(line.matches("\",\"").count(), 7);
    }

    #[test]
    fn gcm_record_has_salt_and_null_auth() {
        let sa = Sa::new(config(
            EncAlg::AesGcm16_256,
            IntegAlg::None,
            Mode::Transport,
        ))
        .unwrap();
        let line = esp_sa_uat(&sa).unwrap();
        assert!(line.ends_with("\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223\",\"NULL\",\"\""), "{line}");
    }

    #[test]
    fn ah_has_no_record() {
        let mut c = config(EncAlg::Null, IntegAlg::HmacSha256_128, Mode::Transport);
        c.protocol = Protocol::Ah;
        assert_eq!(esp_sa_uat(&Sa::new(c).unwrap()), None);
    }
}
