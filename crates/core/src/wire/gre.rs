//! GRE header (RFC 2784 §2.1, with the Key and Sequence Number extensions of
//! RFC 2890 §2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Checksum (optional)      |       Reserved1 (Optional)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Key (optional)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Sequence Number (Optional)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! plexnet forwards datagrams from the routing stack to a target over XCF
//! links in GRE (DESIGN.md); the optional key can carry a link identifier.

use super::{checksum, read_u16, read_u32, write_u16, write_u32, EtherType, Result, WireError};

/// The UDP port of GRE-in-UDP (RFC 8086 §3): a UDP datagram to it carries
/// a GRE header and its payload, as IPv4 protocol 47 would.
pub const UDP_PORT: u16 = 4754;

/// Length of the mandatory GRE header (RFC 2784 §2.1).
pub const BASE_LEN: usize = 4;

/// Checksum Present (RFC 2784 §2.2).
const FLAG_C: u16 = 0x8000;
/// Routing Present, RFC 1701 only: RFC 2784 §2.3 receivers discard it.
const FLAG_R: u16 = 0x4000;
/// Key Present (RFC 2890 §2).
const FLAG_K: u16 = 0x2000;
/// Sequence Number Present (RFC 2890 §2).
const FLAG_S: u16 = 0x1000;
/// Strict source route and recursion control, RFC 1701 only (RFC 2784 §2.3).
const FLAGS_RFC1701: u16 = 0x0800 | 0x0700;
const VERSION_MASK: u16 = 0x0007;

mod field {
    use core::ops::Range;
    pub const FLAGS_VER: Range<usize> = 0..2;
    pub const PROTOCOL: Range<usize> = 2..4;
}

/// A read/write view of a GRE packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The usual name outside this module.
pub type GrePacket<T> = Packet<T>;

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking anything; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks that the header its flags describe fits.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the base header and the optional fields fit.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < BASE_LEN || len < self.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn flags_ver(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS_VER.start)
    }

    /// Whether the Checksum field is present.
    #[inline]
    pub fn checksum_present(&self) -> bool {
        self.flags_ver() & FLAG_C != 0
    }

    /// Whether the Key field is present.
    #[inline]
    pub fn key_present(&self) -> bool {
        self.flags_ver() & FLAG_K != 0
    }

    /// Whether the Sequence Number field is present.
    #[inline]
    pub fn seq_present(&self) -> bool {
        self.flags_ver() & FLAG_S != 0
    }

    /// The Version field (0 for RFC 2784).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags_ver() & VERSION_MASK) as u8
    }

    /// The Protocol Type field (an EtherType, RFC 2784 §2.4).
    #[inline]
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::PROTOCOL.start))
    }

    /// The header length implied by the flags.
    #[inline]
    pub fn header_len(&self) -> usize {
        BASE_LEN
            + 4 * usize::from(self.checksum_present())
            + 4 * usize::from(self.key_present())
            + 4 * usize::from(self.seq_present())
    }

    fn key_offset(&self) -> usize {
        BASE_LEN + 4 * usize::from(self.checksum_present())
    }

    /// The Checksum field, if present.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        self.checksum_present()
            .then(|| read_u16(self.buffer.as_ref(), BASE_LEN))
    }

    /// The Key field, if present.
    #[inline]
    pub fn key(&self) -> Option<u32> {
        self.key_present()
            .then(|| read_u32(self.buffer.as_ref(), self.key_offset()))
    }

    /// The Sequence Number field, if present.
    #[inline]
    pub fn seq_number(&self) -> Option<u32> {
        let at = self.key_offset() + 4 * usize::from(self.key_present());
        self.seq_present()
            .then(|| read_u32(self.buffer.as_ref(), at))
    }

    /// The encapsulated packet.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Whether the checksum over header and payload verifies (true when
    /// there is none), RFC 2784 §2.5.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        !self.checksum_present() || checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The encapsulated packet, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// A parsed GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Protocol of the payload.
    pub protocol_type: EtherType,
    /// Whether to carry a checksum.
    pub checksum: bool,
    /// Optional key (RFC 2890 §2.1).
    pub key: Option<u32>,
    /// Optional sequence number (RFC 2890 §2.2).
    pub seq_number: Option<u32>,
}

/// The usual name outside this module.
pub type GreRepr = Repr;

impl Repr {
    /// Parses the header. Version must be 0 and the RFC 1701 routing bits
    /// clear (RFC 2784 §2.3, §2.3.1); a present checksum must verify.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        let flags = packet.flags_ver();
        if flags & (FLAG_R | FLAGS_RFC1701) != 0 || packet.version() != 0 {
            return Err(WireError::Malformed);
        }
        if !packet.verify_checksum() {
            return Err(WireError::Checksum);
        }
        Ok(Repr {
            protocol_type: packet.protocol_type(),
            checksum: packet.checksum_present(),
            key: packet.key(),
            seq_number: packet.seq_number(),
        })
    }

    /// The header length.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        BASE_LEN
            + 4 * usize::from(self.checksum)
            + 4 * usize::from(self.key.is_some())
            + 4 * usize::from(self.seq_number.is_some())
    }

    /// Writes the header. With a checksum, the payload must already be in
    /// place and the buffer must end where the payload ends.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let mut flags = 0u16;
        if self.checksum {
            flags |= FLAG_C;
        }
        if self.key.is_some() {
            flags |= FLAG_K;
        }
        if self.seq_number.is_some() {
            flags |= FLAG_S;
        }
        let data = packet.buffer.as_mut();
        write_u16(data, field::FLAGS_VER.start, flags);
        write_u16(data, field::PROTOCOL.start, self.protocol_type.into());
        let mut at = BASE_LEN;
        if self.checksum {
            write_u32(data, at, 0);
            at += 4;
        }
        if let Some(key) = self.key {
            write_u32(data, at, key);
            at += 4;
        }
        if let Some(seq) = self.seq_number {
            write_u32(data, at, seq);
        }
        if self.checksum {
            let value = checksum::checksum(data);
            write_u16(data, BASE_LEN, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // GRE with key 0x0a0b0c0d carrying IPv4, then 4 payload bytes.
    static KEYED: [u8; 12] = [
        0x20, 0x00, 0x08, 0x00, 0x0a, 0x0b, 0x0c, 0x0d, 0x45, 0x00, 0x00, 0x00,
    ];
    // GRE with checksum, no key: checksum over 8000 0800 [cksum] 0000 4500 0000:
    // 8000+0800+0000+4500 = 0xCD00; complement 0x32FF.
    static CHECKSUMMED: [u8; 12] = [
        0x80, 0x00, 0x08, 0x00, 0x32, 0xff, 0x00, 0x00, 0x45, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn deconstruct_keyed() {
        let packet = Packet::new_checked(&KEYED[..]).unwrap();
        assert!(!packet.checksum_present());
        assert_eq!(packet.key(), Some(0x0a0b_0c0d));
        assert_eq!(packet.seq_number(), None);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.header_len(), 8);
        assert_eq!(packet.payload(), &[0x45, 0, 0, 0]);
    }

    #[test]
    fn construct_keyed() {
        let mut buffer = [0u8; 12];
        buffer[8] = 0x45;
        let repr = Repr {
            protocol_type: EtherType::Ipv4,
            checksum: false,
            key: Some(0x0a0b_0c0d),
            seq_number: None,
        };
        assert_eq!(repr.buffer_len(), 8);
        repr.emit(&mut Packet::new_unchecked(&mut buffer[..]));
        assert_eq!(buffer, KEYED);
    }

    #[test]
    fn checksum_round_trip() {
        let packet = Packet::new_checked(&CHECKSUMMED[..]).unwrap();
        assert_eq!(packet.checksum(), Some(0x32ff));
        assert!(packet.verify_checksum());
        let mut buffer = [0u8; 12];
        buffer[8] = 0x45;
        let repr = Repr::parse(&packet).unwrap();
        repr.emit(&mut Packet::new_unchecked(&mut buffer[..]));
        assert_eq!(buffer, CHECKSUMMED);
        let mut corrupt = CHECKSUMMED;
        corrupt[9] = 1;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&corrupt[..]).unwrap()),
            Err(WireError::Checksum)
        );
    }

    #[test]
    fn all_options() {
        let repr = Repr {
            protocol_type: EtherType::Unknown(0x88b5),
            checksum: true,
            key: Some(7),
            seq_number: Some(9),
        };
        let mut buffer = [0u8; 20];
        repr.emit(&mut Packet::new_unchecked(&mut buffer[..]));
        let packet = Packet::new_checked(&buffer[..]).unwrap();
        assert_eq!(packet.header_len(), 16);
        assert_eq!(Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn length_checks() {
        assert_eq!(
            Packet::new_checked(&KEYED[..3]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&KEYED[..7]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn version_and_routing_rejected() {
        let mut v1 = KEYED;
        v1[1] = 0x01;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&v1[..]).unwrap()),
            Err(WireError::Malformed)
        );
        let mut routing = KEYED;
        routing[0] |= 0x40;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&routing[..]).unwrap()),
            Err(WireError::Malformed)
        );
    }
}
