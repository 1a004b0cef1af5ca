//! UDP header (RFC 768).
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |     Source      |   Destination   |
//! |      Port       |      Port       |
//! +--------+--------+--------+--------+
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! ```
//!
//! A zero checksum means "not computed" over IPv4 (RFC 768); UDP-encapsulated
//! ESP sends zero (RFC 3948 §2.1).

use super::checksum::PseudoHeader;
use super::{read_u16, write_u16, IpProtocol, Result, WireError};

/// Length of the UDP header (RFC 768).
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The usual name outside this module.
pub type UdpPacket<T> = Packet<T>;

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking anything; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks its lengths (see [`Packet::check_len`]).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the header fits and that Length covers the header and
    /// fits in the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if field_len > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Source Port field.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// The Destination Port field.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The Length field: header and payload.
    #[inline]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Whether the Length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The payload, up to Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum verifies; a zero checksum ("none", RFC 768)
    /// verifies.
    #[inline]
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        pseudo.checksum(IpProtocol::Udp, data) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Source Port field.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT.start, value);
    }

    /// Sets the Destination Port field.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT.start, value);
    }

    /// Sets the Length field.
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }

    /// Sets the Checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Computes the checksum over pseudo-header, header and payload. A
    /// computed 0 is sent as 0xFFFF (RFC 768).
    #[inline]
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let end = usize::from(self.len());
        let value = pseudo.checksum(IpProtocol::Udp, &self.buffer.as_ref()[..end]);
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }
}

/// A parsed UDP header; the payload stays in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// The usual name outside this module.
pub type UdpRepr = Repr;

impl Repr {
    /// Parses a datagram. With `pseudo`, a non-zero checksum must verify.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        pseudo: Option<&PseudoHeader>,
    ) -> Result<Repr> {
        packet.check_len()?;
        if let Some(pseudo) = pseudo {
            if !packet.verify_checksum(pseudo) {
                return Err(WireError::Checksum);
            }
        }
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// The length of the header.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of a datagram carrying `payload_len` bytes.
    #[inline]
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes the header for a payload of `payload_len` bytes. The payload
    /// must already be in place when `pseudo` is given (the checksum covers
    /// it); with `None` the checksum is zero ("not computed", RFC 768, the
    /// RFC 3948 §2.1 choice for ESP in UDP).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        payload_len: usize,
        pseudo: Option<&PseudoHeader>,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len((HEADER_LEN + payload_len) as u16);
        match pseudo {
            Some(pseudo) => packet.fill_checksum(pseudo),
            None => packet.set_checksum(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;

    const PSEUDO: PseudoHeader = PseudoHeader::V4 {
        src: Ipv4Addr::new(198, 18, 1, 10),
        dst: Ipv4Addr::new(198, 18, 0, 100),
    };

    // 4500 -> 4500, 4 payload bytes (a non-ESP marker), checksum by hand:
    // pseudo c612+010a+c612+0064+0011+000c = 0x1_8DAF; header
    // 1194+1194+000c = 0x2334; payload 0. Sum 0x1_B0E3 -> 0xB0E4,
    // complement 0x4F1B.
    static PACKET_BYTES: [u8; 12] = [0x11, 0x94, 0x11, 0x94, 0x00, 0x0c, 0x4f, 0x1b, 0, 0, 0, 0];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.src_port(), 4500);
        assert_eq!(packet.dst_port(), 4500);
        assert_eq!(packet.len(), 12);
        assert_eq!(packet.checksum(), 0x4f1b);
        assert_eq!(packet.payload(), &[0, 0, 0, 0]);
        assert!(packet.verify_checksum(&PSEUDO));
    }

    #[test]
    fn construct() {
        let mut buffer = [0u8; 12];
        let mut packet = Packet::new_unchecked(&mut buffer[..]);
        let repr = Repr {
            src_port: 4500,
            dst_port: 4500,
        };
        repr.emit(&mut packet, 4, Some(&PSEUDO));
        assert_eq!(buffer, PACKET_BYTES);
    }

    #[test]
    fn zero_checksum_is_not_computed() {
        let mut buffer = [0u8; 12];
        let mut packet = Packet::new_unchecked(&mut buffer[..]);
        Repr {
            src_port: 4500,
            dst_port: 4500,
        }
        .emit(&mut packet, 4, None);
        assert_eq!(packet.checksum(), 0);
        assert!(packet.verify_checksum(&PSEUDO));
    }

    #[test]
    fn bad_checksum() {
        let mut bytes = PACKET_BYTES;
        bytes[11] = 1;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet, Some(&PSEUDO)),
            Err(WireError::Checksum)
        );
        assert!(Repr::parse(&packet, None).is_ok());
    }

    #[test]
    fn length_checks() {
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..7]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..11]).unwrap_err(),
            WireError::Truncated
        );
        let mut short = PACKET_BYTES;
        short[5] = 7;
        assert_eq!(
            Packet::new_checked(&short[..]).unwrap_err(),
            WireError::Malformed
        );
    }

    #[test]
    fn trailing_bytes_are_not_payload() {
        let mut long = [0xeeu8; 16];
        long[..12].copy_from_slice(&PACKET_BYTES);
        let packet = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(packet.payload().len(), 4);
        assert!(packet.verify_checksum(&PSEUDO));
    }
}
