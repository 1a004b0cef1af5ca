//! ICMPv4 (RFC 792).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! |   Identifier (echo)           |   Sequence Number (echo)      |
//! |     Data ...
//! ```
//!
//! The checksum covers the whole ICMP message (RFC 792, "Echo or Echo Reply
//! Message").

use super::{checksum, read_u16, write_u16, Result, WireError};

/// Length of the ICMP header: type, code, checksum and the 4-byte
/// rest-of-header (RFC 792).
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
}

/// ICMPv4 message types (RFC 792, IANA "ICMP Type Numbers"); unknown types
/// are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// Echo Reply, type 0.
    EchoReply,
    /// Destination Unreachable, type 3.
    DstUnreachable,
    /// Redirect, type 5.
    Redirect,
    /// Echo Request, type 8.
    EchoRequest,
    /// Time Exceeded, type 11.
    TimeExceeded,
    /// Parameter Problem, type 12.
    ParamProblem,
    /// Any other type.
    Unknown(u8),
}

/// The usual name outside this module.
pub type Icmpv4Message = Message;

impl From<u8> for Message {
    fn from(value: u8) -> Self {
        match value {
            0 => Self::EchoReply,
            3 => Self::DstUnreachable,
            5 => Self::Redirect,
            8 => Self::EchoRequest,
            11 => Self::TimeExceeded,
            12 => Self::ParamProblem,
            other => Self::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    fn from(value: Message) -> Self {
        match value {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::Redirect => 5,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::ParamProblem => 12,
            Message::Unknown(other) => other,
        }
    }
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// The usual name outside this module.
pub type Icmpv4Packet<T> = Packet<T>;

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

    /// Checks that the buffer holds the 8-byte header. The whole buffer is
    /// the message (IPv4 Total Length already delimits it).
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

    /// The Type field.
    #[inline]
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The Code field.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The Identifier of an echo message.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// The Sequence Number of an echo message.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// The 4 bytes after the checksum, whatever the type.
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        let d = &self.buffer.as_ref()[field::REST];
        [d[0], d[1], d[2], d[3]]
    }

    /// The data after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum over the whole message verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Type field.
    #[inline]
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into();
    }

    /// Sets the Code field.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the Checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, value);
    }

    /// Sets the Identifier of an echo message.
    #[inline]
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT.start, value);
    }

    /// Sets the Sequence Number of an echo message.
    #[inline]
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQNO.start, value);
    }

    /// Sets the 4 bytes after the checksum.
    #[inline]
    pub fn set_rest_of_header(&mut self, value: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value);
    }

    /// The data after the header, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes the checksum over the whole message and stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(value);
    }
}

/// A parsed ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr<'a> {
    /// Echo Request (type 8, code 0).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence Number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Echo Reply (type 0, code 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence Number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Any other message, kept as is.
    Other {
        /// Type.
        msg_type: Message,
        /// Code.
        code: u8,
        /// The 4 bytes after the checksum.
        rest_of_header: [u8; 4],
        /// The data after the header.
        data: &'a [u8],
    },
}

/// The usual name outside this module.
pub type Icmpv4Repr<'a> = Repr<'a>;

impl<'a> Repr<'a> {
    /// Parses a message whose checksum must verify. Echo messages with a
    /// non-zero code are malformed (RFC 792: "Code 0").
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(WireError::Checksum);
        }
        let data = &packet.buffer.as_ref()[HEADER_LEN..];
        match (packet.msg_type(), packet.msg_code()) {
            (Message::EchoRequest, 0) => Ok(Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (Message::EchoReply, 0) => Ok(Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (Message::EchoRequest | Message::EchoReply, _) => Err(WireError::Malformed),
            (msg_type, code) => Ok(Repr::Other {
                msg_type,
                code,
                rest_of_header: packet.rest_of_header(),
                data,
            }),
        }
    }

    /// The length of the whole message.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::Other { data, .. } => HEADER_LEN + data.len(),
        }
    }

    /// Writes the message with its checksum; `packet` must be exactly
    /// [`Repr::buffer_len`] bytes long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => {
                packet.set_msg_type(Message::EchoRequest);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
            Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                packet.set_msg_type(Message::EchoReply);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
            Repr::Other {
                msg_type,
                code,
                rest_of_header,
                data,
            } => {
                packet.set_msg_type(msg_type);
                packet.set_msg_code(code);
                packet.set_rest_of_header(rest_of_header);
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
        }
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request, ident 0x1234, seq 1, data "ping"; checksum by hand:
    // 0800+0000+1234+0001+7069+6e67 = 0xF905, complement 0x06FA.
    static ECHO_BYTES: [u8; 12] = [
        0x08, 0x00, 0x06, 0xfa, 0x12, 0x34, 0x00, 0x01, 0x70, 0x69, 0x6e, 0x67,
    ];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x06fa);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.data(), b"ping");
        assert!(packet.verify_checksum());
    }

    #[test]
    fn construct() {
        let mut buffer = [0u8; 12];
        let repr = Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"ping",
        };
        assert_eq!(repr.buffer_len(), 12);
        repr.emit(&mut Packet::new_unchecked(&mut buffer[..]));
        assert_eq!(buffer, ECHO_BYTES);
    }

    #[test]
    fn parse_echo_request() {
        let packet = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"ping"
            }
        );
    }

    #[test]
    fn reply_round_trip() {
        let repr = Repr::EchoReply {
            ident: 7,
            seq_no: 0xfffe,
            data: b"odd",
        };
        let mut buffer = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buffer[..]));
        assert_eq!(buffer[0], 0);
        let packet = Packet::new_checked(&buffer[..]).unwrap();
        assert!(packet.verify_checksum());
        assert_eq!(Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Packet::new_checked(&ECHO_BYTES[..7]).unwrap_err(),
            WireError::Truncated
        );
        let mut corrupt = ECHO_BYTES;
        corrupt[9] ^= 0x01;
        let packet = Packet::new_checked(&corrupt[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(WireError::Checksum));
        let mut bad_code = ECHO_BYTES;
        bad_code[1] = 1;
        let mut packet = Packet::new_checked(&mut bad_code[..]).unwrap();
        packet.fill_checksum();
        let packet = Packet::new_checked(&bad_code[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(WireError::Malformed));
    }

    #[test]
    fn unknown_type_is_kept() {
        let mut bytes = [42u8, 3, 0, 0, 1, 2, 3, 4, 9, 9];
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        match Repr::parse(&packet).unwrap() {
            Repr::Other {
                msg_type,
                code,
                rest_of_header,
                data,
            } => {
                assert_eq!(msg_type, Message::Unknown(42));
                assert_eq!(code, 3);
                assert_eq!(rest_of_header, [1, 2, 3, 4]);
                assert_eq!(data, &[9, 9]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
