//! The Security Association payload (RFC 7296 §3.3): proposals,
//! transforms and their attributes.

use super::*;

/// Security Association payload (RFC 7296 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sa {
    pub proposals: Vec<Proposal>,
}

/// "Last Substruc" values (RFC 7296 §3.3.1, §3.3.2).
pub(super) const LAST: u8 = 0;
pub(super) const MORE_PROPOSALS: u8 = 2;
pub(super) const MORE_TRANSFORMS: u8 = 3;

impl Sa {
    pub(super) fn parse(body: &[u8]) -> Result<Sa, Malformed> {
        let mut r = Reader::new(body);
        let mut proposals = Vec::new();
        while !r.is_empty() {
            let last = r.u8("proposal header")?;
            r.skip(1, "proposal header")?;
            let length = usize::from(r.u16("proposal header")?);
            let inner = length
                .checked_sub(4)
                .ok_or(Malformed::BadLength("proposal"))?;
            let p = r.take(inner, "proposal")?;
            proposals.push(Proposal::parse(p)?);
            let expect = if r.is_empty() { LAST } else { MORE_PROPOSALS };
            if last != expect {
                return Err(Malformed::Inconsistent("proposal Last Substruc field"));
            }
        }
        Ok(Sa { proposals })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        for (i, p) in self.proposals.iter().enumerate() {
            let start = out.len();
            out.push(if i + 1 == self.proposals.len() {
                LAST
            } else {
                MORE_PROPOSALS
            });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            p.emit(out)?;
            patch_len16(out, start, "proposal")?;
        }
        Ok(())
    }
}

/// A proposal substructure (RFC 7296 §3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal Num: 1 for the first, one more for each next (§3.3.1).
    pub number: u8,
    pub protocol: ProtocolId,
    /// The sender's SPI: empty in an initial IKE_SA_INIT, 8 octets when
    /// rekeying an IKE SA, 4 octets for ESP and AH.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

impl Proposal {
    /// `body` is the proposal after Last Substruc, RESERVED and Proposal Length.
    pub(super) fn parse(body: &[u8]) -> Result<Proposal, Malformed> {
        let mut r = Reader::new(body);
        let number = r.u8("proposal header")?;
        let protocol = ProtocolId::from(r.u8("proposal header")?);
        let spi_size = r.u8("proposal header")?;
        let count = r.u8("proposal header")?;
        let spi = r.take(usize::from(spi_size), "proposal SPI")?.to_vec();
        let mut transforms = Vec::with_capacity(usize::from(count));
        while !r.is_empty() {
            let last = r.u8("transform header")?;
            r.skip(1, "transform header")?;
            let length = usize::from(r.u16("transform header")?);
            let inner = length
                .checked_sub(4)
                .ok_or(Malformed::BadLength("transform"))?;
            transforms.push(Transform::parse(r.take(inner, "transform")?)?);
            let expect = if r.is_empty() { LAST } else { MORE_TRANSFORMS };
            if last != expect {
                return Err(Malformed::Inconsistent("transform Last Substruc field"));
            }
        }
        if transforms.len() != usize::from(count) {
            return Err(Malformed::Inconsistent("number of transforms"));
        }
        Ok(Proposal {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.push(self.number);
        out.push(self.protocol.into());
        out.push(u8::try_from(self.spi.len()).map_err(|_| EmitError::TooLong("proposal SPI"))?);
        out.push(
            u8::try_from(self.transforms.len()).map_err(|_| EmitError::TooMany("transforms"))?,
        );
        out.extend_from_slice(&self.spi);
        for (i, t) in self.transforms.iter().enumerate() {
            let start = out.len();
            out.push(if i + 1 == self.transforms.len() {
                LAST
            } else {
                MORE_TRANSFORMS
            });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            t.emit(out)?;
            patch_len16(out, start, "transform")?;
        }
        Ok(())
    }
}

/// A transform type and ID (RFC 7296 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransformId {
    /// Type 1.
    Encr(EncrId),
    /// Type 2.
    Prf(PrfId),
    /// Type 3.
    Integ(IntegId),
    /// Type 4.
    Dh(DhId),
    /// Type 5.
    Esn(EsnId),
    /// Any other transform type, kept as received.
    Other { transform_type: u8, id: u16 },
}

impl TransformId {
    fn from_wire(transform_type: u8, id: u16) -> TransformId {
        match transform_type {
            1 => TransformId::Encr(id.into()),
            2 => TransformId::Prf(id.into()),
            3 => TransformId::Integ(id.into()),
            4 => TransformId::Dh(id.into()),
            5 => TransformId::Esn(id.into()),
            _ => TransformId::Other { transform_type, id },
        }
    }

    /// The (Transform Type, Transform ID) pair on the wire.
    pub fn to_wire(self) -> (u8, u16) {
        match self {
            TransformId::Encr(id) => (1, id.into()),
            TransformId::Prf(id) => (2, id.into()),
            TransformId::Integ(id) => (3, id.into()),
            TransformId::Dh(id) => (4, id.into()),
            TransformId::Esn(id) => (5, id.into()),
            TransformId::Other { transform_type, id } => (transform_type, id),
        }
    }
}

/// A transform substructure (RFC 7296 §3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub id: TransformId,
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(id: TransformId) -> Transform {
        Transform {
            id,
            attributes: Vec::new(),
        }
    }

    /// An encryption transform with a Key Length attribute (in bits).
    pub fn encr(id: EncrId, key_bits: Option<u16>) -> Transform {
        Transform {
            id: TransformId::Encr(id),
            attributes: key_bits.map(Attribute::KeyLength).into_iter().collect(),
        }
    }

    /// The Key Length attribute, in bits (§3.3.5).
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::KeyLength(bits) => Some(*bits),
            _ => None,
        })
    }

    pub(super) fn parse(body: &[u8]) -> Result<Transform, Malformed> {
        let mut r = Reader::new(body);
        let transform_type = r.u8("transform header")?;
        r.skip(1, "transform header")?;
        let id = TransformId::from_wire(transform_type, r.u16("transform header")?);
        let mut attributes = Vec::new();
        while !r.is_empty() {
            attributes.push(Attribute::parse(&mut r)?);
        }
        Ok(Transform { id, attributes })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        let (transform_type, id) = self.id.to_wire();
        out.push(transform_type);
        out.push(0);
        out.extend_from_slice(&id.to_be_bytes());
        for a in &self.attributes {
            a.emit(out)?;
        }
        Ok(())
    }
}

/// A transform attribute (RFC 7296 §3.3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// Key Length in bits (type 14, TV format).
    KeyLength(u16),
    /// Another attribute in Type/Value format (AF = 1).
    Tv { attr_type: u16, value: u16 },
    /// An attribute in Type/Length/Value format (AF = 0).
    Tlv { attr_type: u16, value: Vec<u8> },
}

pub(super) const ATTR_FORMAT_TV: u16 = 0x8000;

impl Attribute {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Attribute, Malformed> {
        let af_type = r.u16("transform attribute")?;
        let attr_type = af_type & !ATTR_FORMAT_TV;
        let value = r.u16("transform attribute")?;
        if af_type & ATTR_FORMAT_TV != 0 {
            Ok(if attr_type == ATTR_KEY_LENGTH {
                Attribute::KeyLength(value)
            } else {
                Attribute::Tv { attr_type, value }
            })
        } else {
            let value = r.take(usize::from(value), "transform attribute value")?;
            Ok(Attribute::Tlv {
                attr_type,
                value: value.to_vec(),
            })
        }
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        match self {
            Attribute::KeyLength(bits) => {
                out.extend_from_slice(&(ATTR_FORMAT_TV | ATTR_KEY_LENGTH).to_be_bytes());
                out.extend_from_slice(&bits.to_be_bytes());
            }
            Attribute::Tv { attr_type, value } => {
                out.extend_from_slice(&(ATTR_FORMAT_TV | attr_type).to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            Attribute::Tlv { attr_type, value } => {
                out.extend_from_slice(&(attr_type & !ATTR_FORMAT_TV).to_be_bytes());
                let len = u16::try_from(value.len())
                    .map_err(|_| EmitError::TooLong("transform attribute"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(value);
            }
        }
        Ok(())
    }
}
