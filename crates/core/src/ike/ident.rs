//! IKE identities (RFC 7296 §3.5) as configured and compared: IPv4
//! address, FQDN, user FQDN (RFC 822 address) and key ID — the four kinds a
//! pre-shared key can be looked up by.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use thiserror::Error;

use crate::wire::ike::Identification;

/// A configured or received identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_FQDN, e.g. `dva1.plex`.
    Fqdn(String),
    /// ID_RFC822_ADDR, e.g. `alice@plex`.
    UserFqdn(String),
    /// ID_KEY_ID: opaque octets.
    KeyId(Vec<u8>),
}

/// Why an identity string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityParseError {
    #[error("empty identity")]
    Empty,
    #[error("key ID `{0}` is not hex")]
    BadKeyId(String),
}

impl FromStr for Identity {
    type Err = IdentityParseError;

    /// strongSwan's spelling (`identification_create_from_string`): an IPv4
    /// address; `@#hex` a key ID; `@name` an FQDN; `user@host` an RFC 822
    /// address; anything else an FQDN.
    fn from_str(s: &str) -> Result<Identity, IdentityParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(IdentityParseError::Empty);
        }
        if let Ok(ip) = s.parse::<Ipv4Addr>() {
            return Ok(Identity::Ipv4(ip));
        }
        if let Some(hex) = s.strip_prefix("@#") {
            return decode_hex(hex)
                .map(Identity::KeyId)
                .ok_or_else(|| IdentityParseError::BadKeyId(s.to_string()));
        }
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() {
                return Err(IdentityParseError::Empty);
            }
            return Ok(Identity::Fqdn(name.to_string()));
        }
        if s.contains('@') {
            return Ok(Identity::UserFqdn(s.to_string()));
        }
        Ok(Identity::Fqdn(s.to_string()))
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Ipv4(ip) => write!(f, "{ip}"),
            Identity::Fqdn(name) => write!(f, "{name}"),
            Identity::UserFqdn(name) => write!(f, "{name}"),
            Identity::KeyId(id) => {
                f.write_str("@#")?;
                id.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl Identity {
    /// The Identification payload contents (RFC 7296 §3.5).
    pub fn to_wire(&self) -> Identification {
        match self {
            Identity::Ipv4(ip) => Identification::Ipv4Addr(ip.octets()),
            Identity::Fqdn(name) => Identification::Fqdn(name.as_bytes().to_vec()),
            Identity::UserFqdn(name) => Identification::Rfc822Addr(name.as_bytes().to_vec()),
            Identity::KeyId(id) => Identification::KeyId(id.clone()),
        }
    }

    /// The identity a received Identification payload names; `None` for ID
    /// types we do not look keys up by (IPv6, DNs, unknown) or names that
    /// are not UTF-8.
    pub fn from_wire(id: &Identification) -> Option<Identity> {
        Some(match id {
            Identification::Ipv4Addr(a) => Identity::Ipv4(Ipv4Addr::from(*a)),
            Identification::Fqdn(d) => Identity::Fqdn(String::from_utf8(d.clone()).ok()?),
            Identification::Rfc822Addr(d) => Identity::UserFqdn(String::from_utf8(d.clone()).ok()?),
            Identification::KeyId(d) => Identity::KeyId(d.clone()),
            _ => return None,
        })
    }

    /// Whether a received identification names this identity. FQDNs and
    /// user FQDNs compare case-insensitively (DNS names are, RFC 4343).
    pub fn matches(&self, id: &Identification) -> bool {
        match (self, Identity::from_wire(id)) {
            (Identity::Fqdn(a), Some(Identity::Fqdn(b)))
            | (Identity::UserFqdn(a), Some(Identity::UserFqdn(b))) => a.eq_ignore_ascii_case(&b),
            (a, Some(b)) => *a == b,
            (_, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strongswan_spellings() {
        assert_eq!(
            "198.18.0.100".parse(),
            Ok(Identity::Ipv4(Ipv4Addr::new(198, 18, 0, 100)))
        );
        assert_eq!("@dva1.plex".parse(), Ok(Identity::Fqdn("dva1.plex".into())));
        assert_eq!("dva1.plex".parse(), Ok(Identity::Fqdn("dva1.plex".into())));
        assert_eq!(
            "alice@plex".parse(),
            Ok(Identity::UserFqdn("alice@plex".into()))
        );
        assert_eq!(
            "@#c0ffee".parse(),
            Ok(Identity::KeyId(vec![0xc0, 0xff, 0xee]))
        );
        assert!("@#c0ffe".parse::<Identity>().is_err());
        assert!(" ".parse::<Identity>().is_err());
        for s in ["198.18.0.100", "dva1.plex", "alice@plex", "@#c0ffee"] {
            assert_eq!(s.parse::<Identity>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn wire_round_trip_and_match() {
        for id in [
            Identity::Ipv4(Ipv4Addr::new(198, 18, 1, 10)),
            Identity::Fqdn("client1.plex".into()),
            Identity::UserFqdn("a@b".into()),
            Identity::KeyId(vec![1, 2]),
        ] {
            assert_eq!(Identity::from_wire(&id.to_wire()), Some(id.clone()));
            assert!(id.matches(&id.to_wire()));
        }
        let f = Identity::Fqdn("Client1.PLEX".into());
        assert!(f.matches(&Identification::Fqdn(b"client1.plex".to_vec())));
        assert!(!f.matches(&Identification::Rfc822Addr(b"client1.plex".to_vec())));
        assert!(!f.matches(&Identification::Ipv6Addr([0; 16])));
        assert_eq!(Identity::from_wire(&Identification::Fqdn(vec![0xff])), None);
    }
}
