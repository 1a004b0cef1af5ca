//! Notify (RFC 7296 §3.10) and Delete (§3.11) payloads.

use super::*;

/// Notify payload (RFC 7296 §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub protocol: ProtocolId,
    /// Empty for notifies about the IKE SA (§3.10).
    pub spi: Vec<u8>,
    pub notify_type: NotifyType,
    pub data: Vec<u8>,
}

impl Notify {
    /// A notify about the IKE SA itself: no protocol, no SPI.
    pub fn new(notify_type: NotifyType, data: Vec<u8>) -> Notify {
        Notify {
            protocol: ProtocolId::Unspecified,
            spi: Vec::new(),
            notify_type,
            data,
        }
    }

    /// INVALID_KE_PAYLOAD with the accepted group (§1.3, §3.10.1).
    pub fn invalid_ke(group: DhId) -> Notify {
        Notify::new(
            NotifyType::InvalidKePayload,
            u16::from(group).to_be_bytes().to_vec(),
        )
    }

    /// The group an INVALID_KE_PAYLOAD asks for, if this is one and its
    /// data is the 2-octet group number.
    pub fn requested_group(&self) -> Option<DhId> {
        match (self.notify_type, self.data.as_slice()) {
            (NotifyType::InvalidKePayload, [hi, lo]) => {
                Some(DhId::from(u16::from_be_bytes([*hi, *lo])))
            }
            _ => None,
        }
    }

    pub(super) fn parse(body: &[u8]) -> Result<Notify, Malformed> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId::from(r.u8("notify header")?);
        let spi_size = r.u8("notify header")?;
        let notify_type = NotifyType::from(r.u16("notify header")?);
        let spi = r.take(usize::from(spi_size), "notify SPI")?.to_vec();
        Ok(Notify {
            protocol,
            spi,
            notify_type,
            data: r.rest().to_vec(),
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.push(self.protocol.into());
        out.push(u8::try_from(self.spi.len()).map_err(|_| EmitError::TooLong("notify SPI"))?);
        out.extend_from_slice(&u16::from(self.notify_type).to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// Delete payload (RFC 7296 §3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub protocol: ProtocolId,
    /// 0 for IKE (the SA is the one the message travels on), 4 for ESP/AH.
    pub spi_size: u8,
    /// Each exactly `spi_size` octets.
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    pub(super) fn parse(body: &[u8]) -> Result<Delete, Malformed> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId::from(r.u8("delete header")?);
        let spi_size = r.u8("delete header")?;
        let count = r.u16("delete header")?;
        let rest = r.rest();
        if rest.len() != usize::from(spi_size) * usize::from(count) {
            return Err(Malformed::Inconsistent("number and size of SPIs"));
        }
        let spis = if spi_size == 0 {
            vec![Vec::new(); usize::from(count)]
        } else {
            rest.chunks(usize::from(spi_size))
                .map(<[u8]>::to_vec)
                .collect()
        };
        Ok(Delete {
            protocol,
            spi_size,
            spis,
        })
    }

    pub(super) fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        if self
            .spis
            .iter()
            .any(|s| s.len() != usize::from(self.spi_size))
        {
            return Err(EmitError::SpiSizeMismatch);
        }
        out.push(self.protocol.into());
        out.push(self.spi_size);
        let count = u16::try_from(self.spis.len()).map_err(|_| EmitError::TooMany("SPIs"))?;
        out.extend_from_slice(&count.to_be_bytes());
        for spi in &self.spis {
            out.extend_from_slice(spi);
        }
        Ok(())
    }
}
