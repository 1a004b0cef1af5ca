//! The frame that carries XCF messages between images and requests and
//! responses between images and the coupling facility, over TCP.
//!
//! Every frame is a fixed 16-byte header followed by a body, the postcard
//! encoding of one typed value of `sysplex::xcf`:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      'X'      |      'C'      |    Version    |    Channel    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Type code            |     Reserved (sent as 0)      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Request id                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Body length                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Body (postcard) ...                       |
//! ```
//!
//! All integers are big-endian. The request id matches a CF response to its
//! request (the CF answers each connection's requests in order, but a client
//! with many outstanding requests matches by id); XCF messages carry 0. The
//! reserved field is ignored on receipt, so a version can grow flags later.
//!
//! The type code repeats, in the header, which variant the body holds, so a
//! trace can name a frame without decoding its body; a body that decodes to
//! another variant than its type code is refused ([`FrameError::TypeMismatch`]).
//! The codes are stable: new variants get new codes, codes are never reused.
//! New variants are appended at the end of their enum, because postcard
//! encodes the variant by its index (changing an index needs a new version).
//!
//! | channel        | code     | body                                  | patent                  |
//! |----------------|----------|---------------------------------------|-------------------------|
//! | 1 XCF          | `0x0001` | `XcfMessage::Hello`                   |                         |
//! | 1 XCF          | `0x0002` | `XcfMessage::Heartbeat`               |                         |
//! | 1 XCF          | `0x0010` | `XcfMessage::VipaList`                | Fig. 11 block 170       |
//! | 1 XCF          | `0x0011` | `XcfMessage::RegisterListener`        |                         |
//! | 1 XCF          | `0x0012` | `XcfMessage::DeregisterListener`      |                         |
//! | 1 XCF          | `0x0020` | `XcfMessage::SaInstall`               | Fig. 6 block 118, Fig. 7|
//! | 1 XCF          | `0x0021` | `XcfMessage::SaDelete`                |                         |
//! | 1 XCF          | `0x0022` | `XcfMessage::BundleInstall`           | Fig. 6 block 118, Fig. 7 (AH+ESP) |
//! | 1 XCF          | `0x0023` | `XcfMessage::BundleDelete`            |                         |
//! | 1 XCF          | `0x0030` | `XcfMessage::NewConn`                 | Fig. 11 block 174       |
//! | 1 XCF          | `0x0031` | `XcfMessage::ConnEnded`               |                         |
//! | 1 XCF          | `0x0032` | `XcfMessage::ConnReport`              | z/OS takeover: targets report connections |
//! | 1 XCF          | `0x0040` | `XcfMessage::Lifesize`                | Fig. 9 b. 158, Fig. 10 b. 168 |
//! | 1 XCF          | `0x0041` | `XcfMessage::RekeyTiming`             |                         |
//! | 1 XCF          | `0x0050` | `XcfMessage::Giveback`                | z/OS MOVEABLE IMMEDIATE / WHENIDLE |
//! | 2 CF request   | `0x0101` | `CfRequest::CreateSeq`                | Fig. 6 block 116        |
//! | 2 CF request   | `0x0102` | `CfRequest::FetchAdd`                 | Fig. 10 block 162 (LISTKEYINC) |
//! | 2 CF request   | `0x0103` | `CfRequest::DeleteSeq`                |                         |
//! | 2 CF request   | `0x0104` | `CfRequest::CreateSeqLimit`           | Fig. 6 block 116        |
//! | 2 CF request   | `0x0110` | `CfRequest::Put`                      |                         |
//! | 2 CF request   | `0x0111` | `CfRequest::Get`                      |                         |
//! | 2 CF request   | `0x0112` | `CfRequest::Delete`                   |                         |
//! | 2 CF request   | `0x0113` | `CfRequest::List`                     |                         |
//! | 2 CF request   | `0x0114` | `CfRequest::CompareAndSwap`           | VIPA takeover           |
//! | 3 CF response  | `0x0201` | `CfResponse::Done`                    |                         |
//! | 3 CF response  | `0x0202` | `CfResponse::SeqRange`                |                         |
//! | 3 CF response  | `0x0203` | `CfResponse::Value`                   |                         |
//! | 3 CF response  | `0x0204` | `CfResponse::Keys`                    |                         |
//! | 3 CF response  | `0x02ff` | `CfResponse::Error`                   |                         |
//!
//! Bodies longer than [`MAX_BODY_LEN`] are refused from the header alone,
//! before anything is allocated for them. Errors say whether the stream can
//! go on ([`FrameError::is_fatal`]): after a bad magic, version or length
//! the frame boundaries are lost and the connection must be reset; after a
//! bad body the frame is skipped and its request id is still known.
//!
//! This module is the frame and its header, generic over the body
//! ([`FrameBody`]); the typed values, their type codes and the stream
//! decoder live beside them in `sysplex::xcf::codec`, so `wire` imports
//! nothing from `sysplex`.

use serde::{de::DeserializeOwned, Serialize};

use super::{read_u16, read_u32, write_u16, write_u32};

/// The first two bytes of every frame.
pub const MAGIC: [u8; 2] = *b"XC";
/// The only version this code speaks. Version 2: the body of
/// `XcfMessage::SaInstall` (and the ESP half of `BundleInstall`) carries
/// the pair's dynamic filter and its anchor rule (patent Fig. 6 block 118)
/// where version 1 had a selector copy nothing read; the other bodies are
/// as in version 1.
pub const VERSION: u8 = 2;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 16;
/// The longest body accepted (1 MiB). An `SaInstall` is a few hundred bytes.
pub const MAX_BODY_LEN: usize = 1 << 20;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..2;
    pub const VERSION: usize = 2;
    pub const CHANNEL: usize = 3;
    pub const TYPE_CODE: Range<usize> = 4..6;
    pub const RESERVED: Range<usize> = 6..8;
    pub const REQUEST_ID: Range<usize> = 8..12;
    pub const BODY_LEN: Range<usize> = 12..16;
    pub const BODY: usize = 16;
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Channel {
    /// An XCF message between images (`sysplex::xcf::XcfMessage`).
    Xcf,
    /// A CF request, image → coupling facility.
    CfRequest,
    /// A CF response, coupling facility → image.
    CfResponse,
}

impl Channel {
    /// The channel byte.
    pub const fn code(self) -> u8 {
        match self {
            Channel::Xcf => 1,
            Channel::CfRequest => 2,
            Channel::CfResponse => 3,
        }
    }

    /// The channel of a channel byte, if known.
    pub const fn from_code(code: u8) -> Option<Channel> {
        match code {
            1 => Some(Channel::Xcf),
            2 => Some(Channel::CfRequest),
            3 => Some(Channel::CfResponse),
            _ => None,
        }
    }
}

/// The type-code table of the module documentation: (channel, code, name).
const TYPES: &[(Channel, u16, &str)] = &[
    (Channel::Xcf, 0x0001, "Hello"),
    (Channel::Xcf, 0x0002, "Heartbeat"),
    (Channel::Xcf, 0x0010, "VipaList"),
    (Channel::Xcf, 0x0011, "RegisterListener"),
    (Channel::Xcf, 0x0012, "DeregisterListener"),
    (Channel::Xcf, 0x0020, "SaInstall"),
    (Channel::Xcf, 0x0021, "SaDelete"),
    (Channel::Xcf, 0x0030, "NewConn"),
    (Channel::Xcf, 0x0031, "ConnEnded"),
    (Channel::Xcf, 0x0040, "Lifesize"),
    (Channel::Xcf, 0x0041, "RekeyTiming"),
    (Channel::Xcf, 0x0022, "BundleInstall"),
    (Channel::Xcf, 0x0023, "BundleDelete"),
    (Channel::Xcf, 0x0050, "Giveback"),
    (Channel::Xcf, 0x0032, "ConnReport"),
    (Channel::CfRequest, 0x0101, "CreateSeq"),
    (Channel::CfRequest, 0x0102, "FetchAdd"),
    (Channel::CfRequest, 0x0103, "DeleteSeq"),
    (Channel::CfRequest, 0x0104, "CreateSeqLimit"),
    (Channel::CfRequest, 0x0110, "Put"),
    (Channel::CfRequest, 0x0111, "Get"),
    (Channel::CfRequest, 0x0112, "Delete"),
    (Channel::CfRequest, 0x0113, "List"),
    (Channel::CfRequest, 0x0114, "CompareAndSwap"),
    (Channel::CfResponse, 0x0201, "Done"),
    (Channel::CfResponse, 0x0202, "SeqRange"),
    (Channel::CfResponse, 0x0203, "Value"),
    (Channel::CfResponse, 0x0204, "Keys"),
    (Channel::CfResponse, 0x02ff, "Error"),
];

/// The name of a type code on a channel (for traces), if it is known.
pub fn type_name(channel: Channel, code: u16) -> Option<&'static str> {
    TYPES
        .iter()
        .find(|(c, t, _)| *c == channel && *t == code)
        .map(|(_, _, name)| *name)
}

/// A value that travels as a frame body: one of the three message enums.
pub trait FrameBody: Serialize + DeserializeOwned {
    /// The channel these values travel on.
    const CHANNEL: Channel;
    /// The stable type code of this value's variant (module table).
    fn type_code(&self) -> u16;
    /// The variant's name, as in the module table.
    fn type_name(&self) -> &'static str {
        type_name(Self::CHANNEL, self.type_code()).unwrap_or("?")
    }
}

/// Why bytes are not a frame. [`FrameError::is_fatal`] says whether the
/// stream they came from can still be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the header or the body length needs (only from
    /// [`decode`] on a slice; the streaming decoder waits for more).
    #[error("frame truncated: have {have} bytes, need {need}")]
    Truncated { have: usize, need: usize },
    /// The first two bytes are not `XC`: not our protocol, or the stream
    /// lost its frame boundaries.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 2]),
    /// A version this code does not speak.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// The body length exceeds [`MAX_BODY_LEN`].
    #[error("body of {len} bytes exceeds the limit of {max}")]
    TooLong { len: u32, max: usize },
    /// The channel byte is not 1, 2 or 3.
    #[error("unknown channel {0}")]
    UnknownChannel(u8),
    /// The type code is not in the table for its channel.
    #[error("unknown type code {code:#06x} on channel {channel:?}")]
    UnknownType { channel: Channel, code: u16 },
    /// The frame is well formed but on another channel than the reader
    /// expects (a CF response sent to the CF, say).
    #[error("{got:?} frame where {want:?} was expected")]
    WrongChannel { want: Channel, got: Channel },
    /// The body does not decode as a value of the channel's type, or bytes
    /// are left over after it.
    #[error("body of type {code:#06x} does not decode: {reason}")]
    BadBody { code: u16, reason: String },
    /// The body decodes, but to another variant than the header's type code.
    #[error("header says type {header:#06x}, body holds type {body:#06x}")]
    TypeMismatch { header: u16, body: u16 },
}

impl FrameError {
    /// Whether frame boundaries are lost, so the stream must be closed.
    /// Otherwise the frame was skipped as a whole and its request id is known.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            FrameError::BadMagic(_)
                | FrameError::UnsupportedVersion(_)
                | FrameError::TooLong { .. }
        )
    }
}

/// Why a value could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Its encoding exceeds [`MAX_BODY_LEN`]; nothing was appended.
    #[error("body of {0} bytes exceeds the frame limit")]
    TooLong(usize),
    /// postcard could not serialize it.
    #[error("cannot serialize: {0}")]
    Serialize(String),
}

/// A read/write view of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

/// The usual name outside this module.
pub type XcfFrame<T> = Frame<T>;

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking anything; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps a buffer and checks that the header, and the body its length
    /// field announces, fit. Checks nothing else (see [`Header::parse`]).
    pub fn new_checked(buffer: T) -> Result<Self, FrameError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the header and the announced body fit in the buffer.
    pub fn check_len(&self) -> Result<(), FrameError> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(FrameError::Truncated {
                have,
                need: HEADER_LEN,
            });
        }
        let need = self.total_len();
        if have < need {
            return Err(FrameError::Truncated { have, need });
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The magic bytes (`XC`).
    pub fn magic(&self) -> [u8; 2] {
        let d = self.buffer.as_ref();
        [d[field::MAGIC.start], d[field::MAGIC.start + 1]]
    }

    /// The version.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The raw channel byte.
    pub fn channel_code(&self) -> u8 {
        self.buffer.as_ref()[field::CHANNEL]
    }

    /// The type code.
    pub fn type_code(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TYPE_CODE.start)
    }

    /// The reserved field.
    pub fn reserved(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::RESERVED.start)
    }

    /// The request id.
    pub fn request_id(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REQUEST_ID.start)
    }

    /// The body length field.
    pub fn body_len(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::BODY_LEN.start)
    }

    /// Header plus announced body, saturating (never overflows on 32-bit).
    pub fn total_len(&self) -> usize {
        HEADER_LEN.saturating_add(usize::try_from(self.body_len()).unwrap_or(usize::MAX))
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::BODY..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// The body, mutable.
    pub fn body_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[field::BODY..end]
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub channel: Channel,
    pub type_code: u16,
    pub request_id: u32,
    pub body_len: u32,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes` (the body need not
    /// be there yet). Checks magic, version, length limit, channel and type
    /// code, in that order, so a fatal error is reported before others.
    pub fn parse(bytes: &[u8]) -> Result<Header, FrameError> {
        let Some(head) = bytes.get(..HEADER_LEN) else {
            return Err(FrameError::Truncated {
                have: bytes.len(),
                need: HEADER_LEN,
            });
        };
        let frame = Frame::new_unchecked(head);
        if frame.magic() != MAGIC {
            return Err(FrameError::BadMagic(frame.magic()));
        }
        if frame.version() != VERSION {
            return Err(FrameError::UnsupportedVersion(frame.version()));
        }
        let body_len = frame.body_len();
        if usize::try_from(body_len).map_or(true, |l| l > MAX_BODY_LEN) {
            return Err(FrameError::TooLong {
                len: body_len,
                max: MAX_BODY_LEN,
            });
        }
        let channel = Channel::from_code(frame.channel_code())
            .ok_or(FrameError::UnknownChannel(frame.channel_code()))?;
        let type_code = frame.type_code();
        if type_name(channel, type_code).is_none() {
            return Err(FrameError::UnknownType {
                channel,
                code: type_code,
            });
        }
        Ok(Header {
            channel,
            type_code,
            request_id: frame.request_id(),
            body_len,
        })
    }

    /// The header length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `frame`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        let d = frame.buffer.as_mut();
        d[field::MAGIC].copy_from_slice(&MAGIC);
        d[field::VERSION] = VERSION;
        d[field::CHANNEL] = self.channel.code();
        write_u16(d, field::TYPE_CODE.start, self.type_code);
        write_u16(d, field::RESERVED.start, 0);
        write_u32(d, field::REQUEST_ID.start, self.request_id);
        write_u32(d, field::BODY_LEN.start, self.body_len);
    }

    /// The name of the type code (for traces).
    pub fn type_name(&self) -> &'static str {
        type_name(self.channel, self.type_code).unwrap_or("?")
    }
}

/// Appends the frame of `value` with `request_id` to `out`. On error
/// nothing is appended.
pub fn encode<B: FrameBody>(
    request_id: u32,
    value: &B,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    if let Err(e) = postcard::to_extend(value, Append(out)) {
        out.truncate(start);
        return Err(EncodeError::Serialize(e.to_string()));
    }
    let body_len = out.len() - start - HEADER_LEN;
    let Some(body_len) = u32::try_from(body_len)
        .ok()
        .filter(|_| body_len <= MAX_BODY_LEN)
    else {
        out.truncate(start);
        return Err(EncodeError::TooLong(body_len));
    };
    let header = Header {
        channel: B::CHANNEL,
        type_code: value.type_code(),
        request_id,
        body_len,
    };
    header.emit(&mut Frame::new_unchecked(
        &mut out[start..start + HEADER_LEN],
    ));
    Ok(())
}

/// Lets postcard append to a borrowed `Vec`.
struct Append<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Append<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// The value of type `B` in a frame `body` under `header`: all of the
/// body, and of the variant the header's type code names.
pub fn decode_value<B: FrameBody>(header: &Header, body: &[u8]) -> Result<B, FrameError> {
    let (value, rest) = postcard::take_from_bytes::<B>(body).map_err(|e| FrameError::BadBody {
        code: header.type_code,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(FrameError::BadBody {
            code: header.type_code,
            reason: format!("{} bytes after the value", rest.len()),
        });
    }
    if value.type_code() != header.type_code {
        return Err(FrameError::TypeMismatch {
            header: header.type_code,
            body: value.type_code(),
        });
    }
    Ok(value)
}

/// A frame a stream decoder refused (`sysplex::xcf::codec::FrameDecoder`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Refused {
    /// Why.
    pub error: FrameError,
    /// The request id, when the header was sound enough to skip the frame:
    /// then the stream goes on. `None` after a fatal error.
    pub request_id: Option<u32>,
    /// The channel, when known.
    pub channel: Option<Channel>,
}

impl Refused {
    /// Whether the stream is unusable (see [`FrameError::is_fatal`]).
    pub fn is_fatal(&self) -> bool {
        self.error.is_fatal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_name() {
        for (i, (c, t, n)) in TYPES.iter().enumerate() {
            for (c2, t2, n2) in &TYPES[i + 1..] {
                assert!(t != t2, "code {t:#06x} used twice");
                assert!(!(c == c2 && n == n2), "{n} twice");
            }
            assert_eq!(type_name(*c, *t), Some(*n));
        }
    }
}
