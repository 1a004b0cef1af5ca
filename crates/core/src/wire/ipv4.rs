//! IPv4 header (RFC 791 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! |         Identification        |Flags|      Fragment Offset    |
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! |                       Source Address                          |
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::net::Ipv4Addr;

use super::{checksum, read_u16, write_u16, IpProtocol, Result, WireError};

/// Length of an IPv4 header without options (RFC 791 §3.1, IHL = 5).
pub const HEADER_LEN: usize = 20;
/// The IP version number of IPv4 (RFC 791 §3.1).
pub const VERSION: u8 = 4;
/// Default Time to Live for packets plexnet originates (RFC 1700 "IP TTL" 64).
pub const DEFAULT_TTL: u8 = 64;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Flag bits in the Flags/Fragment Offset word (RFC 791 §3.1).
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The usual name outside this module.
pub type Ipv4Packet<T> = Packet<T>;

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

    /// Checks that the buffer holds the fixed header, that the header length
    /// is at least 20 and fits, and that the total length covers the header
    /// and fits in the buffer. Bytes past the total length (link padding) are
    /// allowed and ignored by [`Packet::payload`].
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(WireError::Malformed);
        }
        if header_len > len || total_len > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Version field.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The Type of Service byte (DSCP and ECN, RFC 2474 and RFC 3168).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// The Total Length field: header and payload in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// The Identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    /// The Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & FLAG_DF != 0
    }

    /// The More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & FLAG_MF != 0
    }

    /// The fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & OFFSET_MASK) << 3
    }

    /// The Time to Live field.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The Protocol field; unknown numbers are kept.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The Header Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The Source Address field.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        read_addr(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// The Destination Address field.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        read_addr(self.buffer.as_ref(), field::DST_ADDR.start)
    }

    /// Whether the header checksum verifies (RFC 791 §3.1: the sum over the
    /// header, checksum included, is all ones).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let header_len = usize::from(self.header_len());
        checksum::sum(&self.buffer.as_ref()[..header_len]) == 0xffff
    }

    /// The options bytes between the fixed header and the payload.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// The payload: from the end of the header to Total Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[usize::from(self.header_len())..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets Version to 4 and IHL to `header_len / 4`.
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: u8) {
        self.buffer.as_mut()[field::VER_IHL] = (VERSION << 4) | ((header_len / 4) & 0x0f);
    }

    /// Sets the Type of Service byte.
    #[inline]
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::TOS] = value;
    }

    /// Sets the Total Length field.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, value);
    }

    /// Sets the Identification field.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT.start, value);
    }

    /// Sets the flags and fragment offset (`offset` in bytes, a multiple of 8).
    #[inline]
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut word = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            word |= FLAG_DF;
        }
        if more_frags {
            word |= FLAG_MF;
        }
        write_u16(self.buffer.as_mut(), field::FLG_OFF.start, word);
    }

    /// Sets the Time to Live field.
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the Protocol field.
    #[inline]
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }

    /// Sets the Header Checksum field to `value`.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the Source Address field.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the Destination Address field.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes the header checksum and stores it (RFC 791 §3.1).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = usize::from(self.header_len());
        let value = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(value);
    }

    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed IPv4 header. Options are not represented: [`Repr::parse`] skips
/// them and [`Repr::emit`] writes a 20-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub next_header: IpProtocol,
    /// Length of the payload in bytes (Total Length minus the header).
    pub payload_len: usize,
    /// Time to Live.
    pub hop_limit: u8,
    /// Type of Service byte (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
}

/// The usual name outside this module.
pub type Ipv4Repr = Repr;

impl Repr {
    /// A header for an unfragmented packet with default TTL, TOS 0, ident 0
    /// and DF set.
    pub fn new(
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        next_header: IpProtocol,
        payload_len: usize,
    ) -> Self {
        Repr {
            src_addr,
            dst_addr,
            next_header,
            payload_len,
            hop_limit: DEFAULT_TTL,
            tos: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    /// Parses a checked view: the version must be 4 and the header checksum
    /// must verify.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != VERSION {
            return Err(WireError::Malformed);
        }
        if !packet.verify_checksum() {
            return Err(WireError::Checksum);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.total_len()) - usize::from(packet.header_len()),
            hop_limit: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// The length of the header [`Repr::emit`] writes.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header, with its checksum, into the first 20 bytes of
    /// `packet`. Total Length becomes 20 + `payload_len` (the caller keeps
    /// `payload_len` ≤ 65515).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version_and_header_len(HEADER_LEN as u8);
        packet.set_tos(self.tos);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.set_flags_and_offset(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.hop_limit);
        packet.set_next_header(self.next_header);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[inline]
fn read_addr(data: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3])
}

#[cfg(test)]
mod tests {
    use super::*;

    // A UDP datagram 198.18.1.10 -> 198.18.0.100 with 4 payload bytes, TTL 64,
    // ident 0x1234, DF; checksum computed by hand (RFC 1071).
    static PACKET_BYTES: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc6, 0x12, 0x01,
        0x0a, 0xc6, 0x12, 0x00, 0x64, 0xaa, 0xbb, 0xcc, 0xdd,
    ];

    fn packet_bytes() -> [u8; 24] {
        let mut bytes = PACKET_BYTES;
        let c = checksum::checksum(&bytes[..HEADER_LEN]);
        bytes[10..12].copy_from_slice(&c.to_be_bytes());
        bytes
    }

    #[test]
    fn known_checksum() {
        // Hand computation: 4500+0018+1234+4000+4011+c612+010a+c612+0064 =
        // 0x2_64EF -> 0x64F1, complement 0x9B0E.
        assert_eq!(checksum::checksum(&PACKET_BYTES[..HEADER_LEN]), 0x9b0e);
    }

    #[test]
    fn deconstruct() {
        let bytes = packet_bytes();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 24);
        assert_eq!(packet.ident(), 0x1234);
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.next_header(), IpProtocol::Udp);
        assert_eq!(packet.src_addr(), Ipv4Addr::new(198, 18, 1, 10));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(198, 18, 0, 100));
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn construct_matches_bytes() {
        let mut buffer = [0u8; 24];
        let repr = Repr {
            ident: 0x1234,
            ..Repr::new(
                Ipv4Addr::new(198, 18, 1, 10),
                Ipv4Addr::new(198, 18, 0, 100),
                IpProtocol::Udp,
                4,
            )
        };
        let mut packet = Packet::new_unchecked(&mut buffer[..]);
        repr.emit(&mut packet);
        packet
            .payload_mut()
            .copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(buffer, packet_bytes());
    }

    #[test]
    fn parse_round_trip_and_checksum_error() {
        let mut bytes = packet_bytes();
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.payload_len, 4);
        assert_eq!(repr.next_header, IpProtocol::Udp);
        bytes[8] = 63; // TTL changed, checksum not updated
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(WireError::Checksum));
    }

    #[test]
    fn length_checks() {
        let bytes = packet_bytes();
        assert_eq!(
            Packet::new_checked(&bytes[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&bytes[..23]).unwrap_err(),
            WireError::Truncated
        );
        let mut short_ihl = bytes;
        short_ihl[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&short_ihl[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut short_total = bytes;
        short_total[3] = 19;
        assert_eq!(
            Packet::new_checked(&short_total[..]).unwrap_err(),
            WireError::Malformed
        );
        // Link-layer padding after Total Length is fine and ignored.
        let mut padded = [0u8; 30];
        padded[..24].copy_from_slice(&bytes);
        assert_eq!(Packet::new_checked(&padded[..]).unwrap().payload().len(), 4);
    }

    #[test]
    fn unknown_protocol_is_kept_and_version_checked() {
        let mut bytes = packet_bytes();
        bytes[9] = 253;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.next_header, IpProtocol::Unknown(253));
        let mut v6 = packet_bytes();
        v6[0] = 0x65;
        let packet = Packet::new_checked(&v6[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(WireError::Malformed));
    }
}
