//! Authentication Header (RFC 4302 §2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Header   |  Payload Len  |          RESERVED             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Security Parameters Index (SPI)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Sequence Number Field                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                Integrity Check Value-ICV (variable)           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Payload Len is the AH length in 32-bit words minus 2 (RFC 4302 §2.2).

use super::{read_u32, write_u32, IpProtocol, Result, WireError};

/// Length of the AH fields before the ICV (RFC 4302 §2).
pub const FIXED_LEN: usize = 12;

mod field {
    use core::ops::Range;
    pub const NEXT_HEADER: usize = 0;
    pub const PAYLOAD_LEN: usize = 1;
    pub const RESERVED: Range<usize> = 2..4;
    pub const SPI: Range<usize> = 4..8;
    pub const SEQ_NUM: Range<usize> = 8..12;
}

/// A read/write view of an AH header followed by its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The usual name outside this module.
pub type AhPacket<T> = Packet<T>;

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

    /// Checks that the fixed fields fit, that Payload Len describes at least
    /// the fixed fields, and that the whole header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < FIXED_LEN {
            return Err(WireError::Malformed);
        }
        if header_len > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Next Header field; unknown numbers are kept.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    /// The raw Payload Len field.
    #[inline]
    pub fn payload_len_field(&self) -> u8 {
        self.buffer.as_ref()[field::PAYLOAD_LEN]
    }

    /// The AH header length in bytes: (Payload Len + 2) × 4.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.payload_len_field()) + 2) * 4
    }

    /// The RESERVED field.
    #[inline]
    pub fn reserved(&self) -> u16 {
        super::read_u16(self.buffer.as_ref(), field::RESERVED.start)
    }

    /// The SPI field (RFC 4302 §2.4).
    #[inline]
    pub fn spi(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SPI.start)
    }

    /// The Sequence Number field (RFC 4302 §2.5).
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    /// The ICV field with any padding (RFC 4302 §2.6).
    #[inline]
    pub fn icv(&self) -> &[u8] {
        &self.buffer.as_ref()[FIXED_LEN..self.header_len()]
    }

    /// What AH protects after its header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Next Header field.
    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = value.into();
    }

    /// Sets Payload Len from a header length in bytes (a multiple of 4, ≥ 12).
    #[inline]
    pub fn set_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::PAYLOAD_LEN] = (header_len / 4 - 2) as u8;
    }

    /// Sets the RESERVED field.
    #[inline]
    pub fn set_reserved(&mut self, value: u16) {
        super::write_u16(self.buffer.as_mut(), field::RESERVED.start, value);
    }

    /// Sets the SPI field.
    #[inline]
    pub fn set_spi(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SPI.start, value);
    }

    /// Sets the Sequence Number field.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM.start, value);
    }

    /// The ICV field, mutable.
    #[inline]
    pub fn icv_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[FIXED_LEN..end]
    }
}

/// A parsed AH header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Protocol after AH.
    pub next_header: IpProtocol,
    /// Security Parameters Index.
    pub spi: u32,
    /// Low 32 bits of the sequence number.
    pub seq_number: u32,
    /// Length of the ICV field with its padding, in bytes; the header must
    /// be a multiple of 4 bytes for IPv4 (8 for IPv6), RFC 4302 §2.2.
    pub icv_len: usize,
}

/// The usual name outside this module.
pub type AhRepr = Repr;

impl Repr {
    /// Parses the header. SPI 0 is reserved (RFC 4302 §2.4) and malformed.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.spi() == 0 {
            return Err(WireError::Malformed);
        }
        Ok(Repr {
            next_header: packet.next_header(),
            spi: packet.spi(),
            seq_number: packet.seq_number(),
            icv_len: packet.header_len() - FIXED_LEN,
        })
    }

    /// The AH header length.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        FIXED_LEN + self.icv_len
    }

    /// Writes the header with a zero ICV (the value the ICV computation
    /// uses, RFC 4302 §3.3.3.1); RESERVED is zero (RFC 4302 §2.3).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_next_header(self.next_header);
        packet.set_header_len(self.buffer_len());
        packet.set_reserved(0);
        packet.set_spi(self.spi);
        packet.set_seq_number(self.seq_number);
        packet.icv_mut().fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // AH over TCP, SPI 0x100, seq 1, a 12-byte ICV (HMAC-SHA1-96): Payload
    // Len (24 / 4) - 2 = 4. Then two payload bytes.
    static PACKET_BYTES: [u8; 26] = [
        0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0xa0, 0xa1, 0xa2,
        0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xee, 0xff,
    ];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.next_header(), IpProtocol::Tcp);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.reserved(), 0);
        assert_eq!(packet.spi(), 0x100);
        assert_eq!(packet.seq_number(), 1);
        assert_eq!(packet.icv().len(), 12);
        assert_eq!(packet.icv()[0], 0xa0);
        assert_eq!(packet.payload(), &[0xee, 0xff]);
    }

    #[test]
    fn parse() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            Repr {
                next_header: IpProtocol::Tcp,
                spi: 0x100,
                seq_number: 1,
                icv_len: 12
            }
        );
        assert_eq!(repr.buffer_len(), 24);
    }

    #[test]
    fn construct_zeroes_icv() {
        let mut buffer = PACKET_BYTES;
        let repr = Repr {
            next_header: IpProtocol::Tcp,
            spi: 0x100,
            seq_number: 1,
            icv_len: 12,
        };
        repr.emit(&mut Packet::new_unchecked(&mut buffer[..]));
        assert_eq!(buffer[..12], PACKET_BYTES[..12]);
        assert_eq!(buffer[12..24], [0u8; 12]);
        assert_eq!(buffer[24..], PACKET_BYTES[24..]);
    }

    #[test]
    fn length_checks() {
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..11]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..23]).unwrap_err(),
            WireError::Truncated
        );
        let mut tiny = PACKET_BYTES;
        tiny[1] = 0; // 8 bytes: shorter than the fixed fields
        assert_eq!(
            Packet::new_checked(&tiny[..]).unwrap_err(),
            WireError::Malformed
        );
    }

    #[test]
    fn zero_spi_is_malformed() {
        let mut bytes = PACKET_BYTES;
        bytes[6] = 0;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(WireError::Malformed));
    }

    #[test]
    fn unknown_next_header_is_kept() {
        let mut bytes = PACKET_BYTES;
        bytes[0] = 143;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet).unwrap().next_header,
            IpProtocol::Unknown(143)
        );
    }
}
