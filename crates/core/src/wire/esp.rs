//! ESP packet format (RFC 4303 §2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//! |               Security Parameters Index (SPI)                 | ^Int.
//! |                      Sequence Number                          | |Cov-
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |ered
//! |                    Payload Data* (variable)                   | |   ^
//! ~                                                               ~ |   |
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Conf.
//! |               |     Padding (0-255 bytes)                     | |Cov-
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |ered*
//! |                               |  Pad Length   | Next Header   | v   v
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ------
//! |         Integrity Check Value-ICV   (variable)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Where the IV ends and the ICV begins depends on the SA's algorithms, so
//! this view only splits off the 8-byte header; [`Trailer`] parses the two
//! trailer bytes once the payload is decrypted.

use super::{read_u32, write_u32, IpProtocol, Result, WireError};

/// Length of the ESP header: SPI and Sequence Number (RFC 4303 §2).
pub const HEADER_LEN: usize = 8;
/// Length of the fixed trailer: Pad Length and Next Header (RFC 4303 §2.4, §2.6).
pub const TRAILER_LEN: usize = 2;
/// Largest Pad Length (RFC 4303 §2.5: 0–255).
pub const MAX_PAD_LEN: usize = 255;

mod field {
    use core::ops::Range;
    pub const SPI: Range<usize> = 0..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
}

/// A read/write view of an ESP packet (everything after the IP header, or
/// after the UDP header for RFC 3948 encapsulation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The usual name outside this module.
pub type EspPacket<T> = Packet<T>;

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking anything; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the 8-byte header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The SPI field (RFC 4303 §2.1).
    #[inline]
    pub fn spi(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SPI.start)
    }

    /// The Sequence Number field: the low 32 bits of the sequence number
    /// (RFC 4303 §2.2).
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    /// Everything after the header: IV, ciphertext, trailer and ICV.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
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

    /// Everything after the header, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// A parsed ESP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Security Parameters Index.
    pub spi: u32,
    /// Low 32 bits of the sequence number.
    pub seq_number: u32,
}

/// The usual name outside this module.
pub type EspRepr = Repr;

impl Repr {
    /// Parses the header. SPI 0 is reserved (RFC 4303 §2.1) and malformed.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.spi() == 0 {
            return Err(WireError::Malformed);
        }
        Ok(Repr {
            spi: packet.spi(),
            seq_number: packet.seq_number(),
        })
    }

    /// The length of the header.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first 8 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_spi(self.spi);
        packet.set_seq_number(self.seq_number);
    }
}

/// The ESP trailer of a decrypted payload: Pad Length and Next Header
/// (RFC 4303 §2.4–§2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trailer {
    /// Number of padding bytes before the trailer.
    pub pad_len: u8,
    /// Protocol of the payload; [`IpProtocol::NoNextHeader`] marks a dummy
    /// packet (RFC 4303 §2.6).
    pub next_header: IpProtocol,
}

impl Trailer {
    /// Reads the trailer at the end of `plaintext` (payload, padding, pad
    /// length, next header) and returns it with the payload length. The
    /// padding must fit in front of the trailer.
    pub fn parse(plaintext: &[u8]) -> Result<(Trailer, usize)> {
        let n = plaintext.len();
        if n < TRAILER_LEN {
            return Err(WireError::Truncated);
        }
        let pad_len = plaintext[n - 2];
        let next_header = IpProtocol::from(plaintext[n - 1]);
        let payload_len = (n - TRAILER_LEN)
            .checked_sub(usize::from(pad_len))
            .ok_or(WireError::Malformed)?;
        Ok((
            Trailer {
                pad_len,
                next_header,
            },
            payload_len,
        ))
    }

    /// Whether the padding before the trailer holds the default pattern
    /// 1, 2, 3, … (RFC 4303 §2.4). `plaintext` is the same as for
    /// [`Trailer::parse`].
    #[inline]
    pub fn padding_is_default(&self, plaintext: &[u8]) -> bool {
        let end = plaintext.len().saturating_sub(TRAILER_LEN);
        let start = end.saturating_sub(usize::from(self.pad_len));
        plaintext[start..end]
            .iter()
            .zip(1u8..)
            .all(|(byte, expected)| *byte == expected)
    }

    /// Writes the default padding (1, 2, 3, …) and the trailer into the
    /// last `pad_len + 2` bytes of `buf`.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let n = buf.len();
        let pad = usize::from(self.pad_len);
        for (byte, value) in buf[n - TRAILER_LEN - pad..n - TRAILER_LEN]
            .iter_mut()
            .zip(1u8..)
        {
            *byte = value;
        }
        buf[n - 2] = self.pad_len;
        buf[n - 1] = self.next_header.into();
    }

    /// The number of bytes [`Trailer::emit`] writes.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        usize::from(self.pad_len) + TRAILER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ESP header SPI 0x00001234, seq 5, then 4 payload bytes.
    static PACKET_BYTES: [u8; 12] = [0x00, 0x00, 0x12, 0x34, 0x00, 0x00, 0x00, 0x05, 1, 2, 3, 4];
    // Plaintext: "ab", default padding of 4, pad length 4, next header TCP.
    static PLAINTEXT: [u8; 8] = [b'a', b'b', 1, 2, 3, 4, 4, 6];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.spi(), 0x1234);
        assert_eq!(packet.seq_number(), 5);
        assert_eq!(packet.payload(), &[1, 2, 3, 4]);
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr {
                spi: 0x1234,
                seq_number: 5
            }
        );
    }

    #[test]
    fn construct() {
        let mut buffer = [0u8; 12];
        let mut packet = Packet::new_unchecked(&mut buffer[..]);
        Repr {
            spi: 0x1234,
            seq_number: 5,
        }
        .emit(&mut packet);
        packet.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(buffer, PACKET_BYTES);
    }

    #[test]
    fn header_checks() {
        assert_eq!(
            Packet::new_checked(&PACKET_BYTES[..7]).unwrap_err(),
            WireError::Truncated
        );
        let zero_spi = [0u8; 8];
        let packet = Packet::new_checked(&zero_spi[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(WireError::Malformed));
    }

    #[test]
    fn trailer_parse() {
        let (trailer, payload_len) = Trailer::parse(&PLAINTEXT).unwrap();
        assert_eq!(
            trailer,
            Trailer {
                pad_len: 4,
                next_header: IpProtocol::Tcp
            }
        );
        assert_eq!(payload_len, 2);
        assert!(trailer.padding_is_default(&PLAINTEXT));
        let mut bad = PLAINTEXT;
        bad[3] = 9;
        assert!(!trailer.padding_is_default(&bad));
    }

    #[test]
    fn trailer_errors() {
        assert_eq!(Trailer::parse(&[6]), Err(WireError::Truncated));
        // Pad length 7 but only 6 bytes in front of the trailer.
        assert_eq!(
            Trailer::parse(&[0, 0, 0, 0, 0, 0, 7, 6]),
            Err(WireError::Malformed)
        );
        // Unknown next header kept.
        let (trailer, len) = Trailer::parse(&[0, 200]).unwrap();
        assert_eq!((trailer.next_header, len), (IpProtocol::Unknown(200), 0));
    }

    #[test]
    fn trailer_emit() {
        let mut buf = [b'a', b'b', 0, 0, 0, 0, 0, 0];
        let trailer = Trailer {
            pad_len: 4,
            next_header: IpProtocol::Tcp,
        };
        assert_eq!(trailer.buffer_len(), 6);
        trailer.emit(&mut buf);
        assert_eq!(buf, PLAINTEXT);
    }
}
