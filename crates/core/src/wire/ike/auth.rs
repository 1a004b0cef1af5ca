//! The payloads of IKE_SA_INIT and IKE_AUTH besides SA: Key Exchange
//! (RFC 7296 §3.4), Identification (§3.5), Certificate (§3.6) and
//! Authentication (§3.8).

use super::*;

/// Key Exchange payload (RFC 7296 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    pub group: DhId,
    /// The public value; its length is checked against the group by the
    /// Diffie-Hellman code, not here.
    pub data: Vec<u8>,
}

/// Identification payload contents (RFC 7296 §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identification {
    Ipv4Addr([u8; 4]),
    Fqdn(Vec<u8>),
    Rfc822Addr(Vec<u8>),
    Ipv6Addr([u8; 16]),
    DerAsn1Dn(Vec<u8>),
    DerAsn1Gn(Vec<u8>),
    KeyId(Vec<u8>),
    /// An ID type this module does not name; `id_type` must not be one of
    /// the named ones.
    Other {
        id_type: u8,
        data: Vec<u8>,
    },
}

impl Identification {
    pub fn id_type(&self) -> IdType {
        match self {
            Identification::Ipv4Addr(_) => IdType::Ipv4Addr,
            Identification::Fqdn(_) => IdType::Fqdn,
            Identification::Rfc822Addr(_) => IdType::Rfc822Addr,
            Identification::Ipv6Addr(_) => IdType::Ipv6Addr,
            Identification::DerAsn1Dn(_) => IdType::DerAsn1Dn,
            Identification::DerAsn1Gn(_) => IdType::DerAsn1Gn,
            Identification::KeyId(_) => IdType::KeyId,
            Identification::Other { id_type, .. } => IdType::from(*id_type),
        }
    }

    /// The Identification Data field.
    pub fn data(&self) -> &[u8] {
        match self {
            Identification::Ipv4Addr(a) => a,
            Identification::Ipv6Addr(a) => a,
            Identification::Fqdn(d)
            | Identification::Rfc822Addr(d)
            | Identification::DerAsn1Dn(d)
            | Identification::DerAsn1Gn(d)
            | Identification::KeyId(d)
            | Identification::Other { data: d, .. } => d,
        }
    }

    /// The payload body without the generic header — "RestOfInitIDPayload" /
    /// "RestOfRespIDPayload" of the AUTH computation (RFC 7296 §2.15): ID
    /// Type, three zero RESERVED octets, Identification Data. (As strongSwan
    /// does, the octets are rebuilt from the parsed ID with RESERVED = 0.)
    pub fn rest_of_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data().len());
        self.emit(&mut out);
        out
    }

    pub(super) fn parse(body: &[u8]) -> Result<Identification, Malformed> {
        let mut r = Reader::new(body);
        let id_type = IdType::from(r.u8("ID header")?);
        r.skip(3, "ID header")?;
        let data = r.rest();
        Ok(match id_type {
            IdType::Ipv4Addr => Identification::Ipv4Addr(
                data.try_into()
                    .map_err(|_| Malformed::BadLength("ID_IPV4_ADDR"))?,
            ),
            IdType::Ipv6Addr => Identification::Ipv6Addr(
                data.try_into()
                    .map_err(|_| Malformed::BadLength("ID_IPV6_ADDR"))?,
            ),
            IdType::Fqdn => Identification::Fqdn(data.to_vec()),
            IdType::Rfc822Addr => Identification::Rfc822Addr(data.to_vec()),
            IdType::DerAsn1Dn => Identification::DerAsn1Dn(data.to_vec()),
            IdType::DerAsn1Gn => Identification::DerAsn1Gn(data.to_vec()),
            IdType::KeyId => Identification::KeyId(data.to_vec()),
            IdType::Unknown(id_type) => Identification::Other {
                id_type,
                data: data.to_vec(),
            },
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.id_type().into());
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(self.data());
    }
}

/// Certificate and Certificate Request payloads (RFC 7296 §3.6, §3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub encoding: u8,
    pub data: Vec<u8>,
}

/// Authentication payload (RFC 7296 §3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub method: AuthMethod,
    pub data: Vec<u8>,
}
