//! UDP encapsulation of ESP and IKE on one port (RFC 3948 §2).
//!
//! On the NAT-T port a UDP payload is one of:
//!
//! - a NAT-keepalive: exactly one byte 0xFF (RFC 3948 §2.3);
//! - IKE: a 4-byte zero non-ESP marker, then the IKE header (RFC 3948 §2.2);
//! - ESP: the ESP header starts right away; its SPI is never zero, which is
//!   what tells it apart from the marker (RFC 3948 §2.2).

use super::{esp, Result, WireError};

/// The UDP port of IKE and ESP after NAT traversal (RFC 3947 §4, RFC 7296 §2.23).
pub const NAT_T_PORT: u16 = 4500;
/// The non-ESP marker: four zero bytes where an ESP SPI would be (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The one byte of a NAT-keepalive packet (RFC 3948 §2.3).
pub const KEEPALIVE: u8 = 0xff;

/// What a UDP payload on the NAT-T port carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr<'a> {
    /// A NAT-keepalive (RFC 3948 §2.3).
    Keepalive,
    /// An IKE message after the non-ESP marker (RFC 3948 §2.2).
    Ike(&'a [u8]),
    /// An ESP packet, header included (RFC 3948 §2.1).
    Esp(&'a [u8]),
}

/// The usual name outside this module.
pub type UdpEncapRepr<'a> = Repr<'a>;

impl<'a> Repr<'a> {
    /// Classifies a UDP payload. Anything that is neither a keepalive, nor a
    /// marker, nor long enough for an ESP header is truncated.
    pub fn parse(payload: &'a [u8]) -> Result<Repr<'a>> {
        match payload {
            [KEEPALIVE] => Ok(Repr::Keepalive),
            [0, 0, 0, 0, ike @ ..] => Ok(Repr::Ike(ike)),
            esp if esp.len() >= esp::HEADER_LEN => Ok(Repr::Esp(esp)),
            _ => Err(WireError::Truncated),
        }
    }

    /// The UDP payload length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::Keepalive => 1,
            Repr::Ike(ike) => NON_ESP_MARKER.len() + ike.len(),
            Repr::Esp(esp) => esp.len(),
        }
    }

    /// Writes the UDP payload into a buffer of exactly [`Repr::buffer_len`]
    /// bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        match self {
            Repr::Keepalive => buf[0] = KEEPALIVE,
            Repr::Ike(ike) => {
                buf[..4].copy_from_slice(&NON_ESP_MARKER);
                buf[4..4 + ike.len()].copy_from_slice(ike);
            }
            Repr::Esp(esp) => buf[..esp.len()].copy_from_slice(esp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static IKE: [u8; 8] = [0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44];
    static ESP: [u8; 10] = [0, 0, 0x12, 0x34, 0, 0, 0, 1, 0xaa, 0xbb];

    #[test]
    fn keepalive() {
        assert_eq!(Repr::parse(&[0xff]).unwrap(), Repr::Keepalive);
        let mut buf = [0u8; 1];
        Repr::Keepalive.emit(&mut buf);
        assert_eq!(buf, [0xff]);
    }

    #[test]
    fn ike_after_marker() {
        assert_eq!(Repr::parse(&IKE).unwrap(), Repr::Ike(&IKE[4..]));
    }

    #[test]
    fn esp_without_marker() {
        assert_eq!(Repr::parse(&ESP).unwrap(), Repr::Esp(&ESP[..]));
    }

    #[test]
    fn round_trip() {
        for repr in [Repr::Keepalive, Repr::Ike(&IKE[4..]), Repr::Esp(&ESP[..])] {
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut buf);
            assert_eq!(Repr::parse(&buf).unwrap(), repr);
        }
    }

    #[test]
    fn short_payloads_are_truncated() {
        assert_eq!(Repr::parse(&[]), Err(WireError::Truncated));
        assert_eq!(Repr::parse(&[0xfe]), Err(WireError::Truncated));
        assert_eq!(Repr::parse(&[0, 0, 0]), Err(WireError::Truncated));
        assert_eq!(Repr::parse(&ESP[..7]), Err(WireError::Truncated));
    }

    #[test]
    fn a_single_ff_inside_longer_data_is_not_keepalive() {
        let esp = [0xff, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(Repr::parse(&esp).unwrap(), Repr::Esp(&esp[..]));
    }
}
