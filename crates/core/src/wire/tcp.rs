//! TCP header (RFC 9293 §3.1, formerly RFC 793 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! |                        Sequence Number                        |
//! |                    Acknowledgment Number                      |
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |           Checksum            |         Urgent Pointer        |
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::checksum::PseudoHeader;
use super::{read_u16, read_u32, write_u16, write_u32, IpProtocol, Result, WireError};

/// Length of a TCP header without options (RFC 9293 §3.1, Data Offset 5).
pub const HEADER_LEN: usize = 20;
/// Longest TCP header: Data Offset 15 (RFC 9293 §3.1).
pub const MAX_HEADER_LEN: usize = 60;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const OFF_FLAGS: Range<usize> = 12..14;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// The TCP control bits (RFC 9293 §3.1; CWR and ECE from RFC 3168 §6.1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: no more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN: synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH: push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK: acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG: urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE: ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR: congestion window reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// A SYN without ACK: the first segment of a connection, the one the
    /// distributor balances (patent Figure 8 block 142).
    pub const fn is_initial_syn(self) -> bool {
        self.contains(Self::SYN) && !self.contains(Self::ACK)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(TcpFlags, char); 8] = [
            (TcpFlags::CWR, 'W'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ACK, 'A'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::FIN, 'F'),
        ];
        for (flag, c) in NAMES {
            if self.contains(flag) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The usual name outside this module.
pub type TcpPacket<T> = Packet<T>;

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

    /// Checks that the fixed header fits, that Data Offset is at least 5 and
    /// that the header it describes fits in the buffer.
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
        if header_len > len {
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

    /// The Sequence Number field.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    /// The Acknowledgment Number field.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// The header length in bytes (Data Offset × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::OFF_FLAGS.start] >> 4) * 4
    }

    /// The control bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::OFF_FLAGS.start + 1])
    }

    /// The Window field.
    #[inline]
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WIN_SIZE.start)
    }

    /// The Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The Urgent Pointer field.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The options bytes, padding included.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// The segment data after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }

    /// Whether the checksum over pseudo-header and segment verifies.
    #[inline]
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        pseudo.checksum(IpProtocol::Tcp, self.buffer.as_ref()) == 0
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

    /// Sets the Sequence Number field.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM.start, value);
    }

    /// Sets the Acknowledgment Number field.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM.start, value);
    }

    /// Sets Data Offset from a header length in bytes (a multiple of 4) and
    /// the control bits.
    #[inline]
    pub fn set_header_len_and_flags(&mut self, header_len: u8, flags: TcpFlags) {
        let data = self.buffer.as_mut();
        data[field::OFF_FLAGS.start] = (header_len / 4) << 4;
        data[field::OFF_FLAGS.start + 1] = flags.0;
    }

    /// Sets the Window field.
    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WIN_SIZE.start, value);
    }

    /// Sets the Checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the Urgent Pointer field.
    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT.start, value);
    }

    /// Computes the checksum over pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let value = pseudo.checksum(IpProtocol::Tcp, self.buffer.as_ref());
        self.set_checksum(value);
    }
}

/// A parsed TCP segment; options are kept as raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number (meaningful with ACK).
    pub ack_number: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Options with padding; a multiple of 4 bytes, at most 40.
    pub options: &'a [u8],
    /// Segment data.
    pub payload: &'a [u8],
}

/// The usual name outside this module.
pub type TcpRepr<'a> = Repr<'a>;

impl<'a> Repr<'a> {
    /// Parses a segment. With `pseudo`, the checksum must verify.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        pseudo: Option<&PseudoHeader>,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if let Some(pseudo) = pseudo {
            if !packet.verify_checksum(pseudo) {
                return Err(WireError::Checksum);
            }
        }
        let data = packet.buffer.as_ref();
        let header_len = usize::from(packet.header_len());
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            options: &data[HEADER_LEN..header_len],
            payload: &data[header_len..],
        })
    }

    /// The header length: 20 plus the options.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// The length of the whole segment.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment into a buffer of exactly [`Repr::buffer_len`]
    /// bytes, with its checksum under `pseudo`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        pseudo: &PseudoHeader,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        let header_len = self.header_len();
        packet.set_header_len_and_flags(header_len as u8, self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(self.urgent_at);
        let data = packet.buffer.as_mut();
        data[HEADER_LEN..header_len].copy_from_slice(self.options);
        data[header_len..header_len + self.payload.len()].copy_from_slice(self.payload);
        packet.fill_checksum(pseudo);
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

    // SYN 198.18.1.10:49152 -> 198.18.0.100:80, seq 0x01020304, MSS 1460
    // option, window 64240, data "hi". Checksum worked out with the RFC 1071
    // sum in the test below, then written here.
    static SYN_BYTES: [u8; 26] = [
        0xc0, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x68, 0x69,
    ];

    fn syn_bytes() -> [u8; 26] {
        let mut bytes = SYN_BYTES;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum(&PSEUDO);
        bytes
    }

    #[test]
    fn checksum_by_hand() {
        // Pseudo: c612+010a+c612+0064+0006+001a = 0x1_8DB2 -> 0x8DB3.
        // Segment words: c000+0050+0102+0304+0000+0000+6002+faf0+0000+0000
        // +0204+05b4+6869 = 0x2_8F69 -> 0x8F6B. Total 0x8DB3+0x8F6B =
        // 0x1_1D1E -> 0x1D1F, complement 0xE2E0.
        assert_eq!(syn_bytes()[16..18], [0xe2, 0xe0]);
    }

    #[test]
    fn deconstruct() {
        let bytes = syn_bytes();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.src_port(), 49152);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x0102_0304);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.flags(), TcpFlags::SYN);
        assert!(packet.flags().is_initial_syn());
        assert_eq!(packet.window_len(), 64240);
        assert_eq!(packet.options(), &[2, 4, 5, 0xb4]);
        assert_eq!(packet.payload(), b"hi");
        assert!(packet.verify_checksum(&PSEUDO));
    }

    #[test]
    fn construct() {
        let repr = Repr {
            src_port: 49152,
            dst_port: 80,
            seq_number: 0x0102_0304,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window_len: 64240,
            urgent_at: 0,
            options: &[2, 4, 5, 0xb4],
            payload: b"hi",
        };
        let mut buffer = [0u8; 26];
        assert_eq!(repr.buffer_len(), 26);
        repr.emit(&mut Packet::new_unchecked(&mut buffer[..]), &PSEUDO);
        assert_eq!(buffer, syn_bytes());
        let parsed =
            Repr::parse(&Packet::new_checked(&buffer[..]).unwrap(), Some(&PSEUDO)).unwrap();
        assert_eq!(parsed, repr);
    }

    #[test]
    fn checksum_covers_addresses() {
        let bytes = syn_bytes();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let other = PseudoHeader::V4 {
            src: Ipv4Addr::new(198, 18, 1, 11),
            dst: Ipv4Addr::new(198, 18, 0, 100),
        };
        assert_eq!(Repr::parse(&packet, Some(&other)), Err(WireError::Checksum));
        assert!(Repr::parse(&packet, None).is_ok());
    }

    #[test]
    fn length_checks() {
        let bytes = syn_bytes();
        assert_eq!(
            Packet::new_checked(&bytes[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&bytes[..22]).unwrap_err(),
            WireError::Truncated
        );
        let mut bad_offset = bytes;
        bad_offset[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&bad_offset[..]).unwrap_err(),
            WireError::Malformed
        );
    }

    #[test]
    fn flags_display() {
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).to_string(), "AS");
        assert!(!(TcpFlags::SYN | TcpFlags::ACK).is_initial_syn());
        assert_eq!(TcpFlags(0xff).to_string(), "WEUAPRSF");
    }
}
