//! The frame that carries XCF messages between images and requests and
//! responses between images and the coupling facility, over TCP.
//!
//! Every frame is a fixed 16-byte header followed by a body, the postcard
//! encoding of one typed value of [`crate::sysplex::xcf`]:
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
//! | 1 XCF          | `0x0040` | `XcfMessage::Lifesize`                | Fig. 9 b. 158, Fig. 10 b. 168 |
//! | 1 XCF          | `0x0041` | `XcfMessage::RekeyTiming`             |                         |
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
//! (The typed values live in `sysplex::xcf`, so this module, unlike the
//! other `wire` modules, uses a `sysplex` type; neither does I/O.)

use serde::{de::DeserializeOwned, Serialize};

use super::{read_u16, read_u32, write_u16, write_u32};
use crate::sysplex::xcf::{CfRequest, CfResponse, XcfMessage};

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
    /// An [`XcfMessage`] between images.
    Xcf,
    /// A [`CfRequest`], image → coupling facility.
    CfRequest,
    /// A [`CfResponse`], coupling facility → image.
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

impl FrameBody for XcfMessage {
    const CHANNEL: Channel = Channel::Xcf;
    fn type_code(&self) -> u16 {
        match self {
            XcfMessage::Hello { .. } => 0x0001,
            XcfMessage::Heartbeat { .. } => 0x0002,
            XcfMessage::VipaList { .. } => 0x0010,
            XcfMessage::RegisterListener { .. } => 0x0011,
            XcfMessage::DeregisterListener { .. } => 0x0012,
            XcfMessage::SaInstall(_) => 0x0020,
            XcfMessage::SaDelete { .. } => 0x0021,
            XcfMessage::NewConn { .. } => 0x0030,
            XcfMessage::ConnEnded { .. } => 0x0031,
            XcfMessage::Lifesize { .. } => 0x0040,
            XcfMessage::RekeyTiming { .. } => 0x0041,
            XcfMessage::BundleInstall(_) => 0x0022,
            XcfMessage::BundleDelete { .. } => 0x0023,
        }
    }
}

impl FrameBody for CfRequest {
    const CHANNEL: Channel = Channel::CfRequest;
    fn type_code(&self) -> u16 {
        match self {
            CfRequest::CreateSeq { .. } => 0x0101,
            CfRequest::FetchAdd { .. } => 0x0102,
            CfRequest::DeleteSeq { .. } => 0x0103,
            CfRequest::CreateSeqLimit { .. } => 0x0104,
            CfRequest::Put { .. } => 0x0110,
            CfRequest::Get { .. } => 0x0111,
            CfRequest::Delete { .. } => 0x0112,
            CfRequest::List { .. } => 0x0113,
            CfRequest::CompareAndSwap { .. } => 0x0114,
        }
    }
}

impl FrameBody for CfResponse {
    const CHANNEL: Channel = Channel::CfResponse;
    fn type_code(&self) -> u16 {
        match self {
            CfResponse::Done => 0x0201,
            CfResponse::SeqRange { .. } => 0x0202,
            CfResponse::Value(_) => 0x0203,
            CfResponse::Keys(_) => 0x0204,
            CfResponse::Error(_) => 0x02ff,
        }
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

/// A decoded frame body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Xcf(XcfMessage),
    CfRequest(CfRequest),
    CfResponse(CfResponse),
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The request id (0 for XCF messages).
    pub request_id: u32,
    /// The value.
    pub body: Body,
}

impl Decoded {
    /// The channel the frame came on.
    pub fn channel(&self) -> Channel {
        match self.body {
            Body::Xcf(_) => Channel::Xcf,
            Body::CfRequest(_) => Channel::CfRequest,
            Body::CfResponse(_) => Channel::CfResponse,
        }
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

/// Appends the frame of an XCF message (request id 0) to `out`.
pub fn encode_xcf(msg: &XcfMessage, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode(0, msg, out)
}

/// Appends the frame of a CF request to `out`.
pub fn encode_cf_request(
    request_id: u32,
    req: &CfRequest,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode(request_id, req, out)
}

/// Appends the frame of a CF response to `out`.
pub fn encode_cf_response(
    request_id: u32,
    resp: &CfResponse,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode(request_id, resp, out)
}

fn decode_value<B: FrameBody>(header: &Header, body: &[u8]) -> Result<B, FrameError> {
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

fn decode_body(header: &Header, body: &[u8]) -> Result<Body, FrameError> {
    Ok(match header.channel {
        Channel::Xcf => Body::Xcf(decode_value(header, body)?),
        Channel::CfRequest => Body::CfRequest(decode_value(header, body)?),
        Channel::CfResponse => Body::CfResponse(decode_value(header, body)?),
    })
}

/// Decodes the frame at the start of `bytes`: the value and the number of
/// bytes it took. Incomplete input is [`FrameError::Truncated`].
pub fn decode(bytes: &[u8]) -> Result<(Decoded, usize), FrameError> {
    let header = Header::parse(bytes)?;
    let frame = Frame::new_checked(bytes)?;
    let body = decode_body(&header, frame.body())?;
    Ok((
        Decoded {
            request_id: header.request_id,
            body,
        },
        frame.total_len(),
    ))
}

/// A frame the [`FrameDecoder`] refused.
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

/// Reassembles frames from a byte stream (a TCP connection): push bytes as
/// they arrive, then take complete frames out. Handles frames split across
/// reads and many frames in one read. Never holds more than one frame plus
/// what was pushed after it; a body over the limit is refused from its
/// header. After a fatal error it yields nothing more (the caller closes).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    poisoned: bool,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.poisoned {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet a complete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether a fatal error was seen.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The next complete frame: `None` if more bytes are needed (or after a
    /// fatal error), `Some(Err)` for a refused frame.
    pub fn next_frame(&mut self) -> Option<Result<Decoded, Refused>> {
        if self.poisoned {
            return None;
        }
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return None;
        }
        let header = match Header::parse(avail) {
            Ok(h) => h,
            Err(error) if error.is_fatal() => {
                self.poisoned = true;
                self.buf = Vec::new();
                self.start = 0;
                return Some(Err(Refused {
                    error,
                    request_id: None,
                    channel: None,
                }));
            }
            Err(error) => {
                // Magic, version and length are sound, only the channel or
                // type code is unknown: the frame can be skipped whole.
                let frame = Frame::new_unchecked(avail);
                let total = frame.total_len();
                if avail.len() < total {
                    return None;
                }
                let refused = Refused {
                    error,
                    request_id: Some(frame.request_id()),
                    channel: Channel::from_code(frame.channel_code()),
                };
                self.consume(total);
                return Some(Err(refused));
            }
        };
        let total = HEADER_LEN + header.body_len as usize;
        if avail.len() < total {
            return None;
        }
        let result = decode_body(&header, &avail[HEADER_LEN..total]);
        self.consume(total);
        Some(match result {
            Ok(body) => Ok(Decoded {
                request_id: header.request_id,
                body,
            }),
            Err(error) => Err(Refused {
                error,
                request_id: Some(header.request_id),
                channel: Some(header.channel),
            }),
        })
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipsec::sa::{Protocol, Spi};
    use crate::sysplex::xcf::SeqKey;
    use std::net::Ipv4Addr;

    // Heartbeat { seq: 5 }: postcard = variant index 1, varint 5.
    static HEARTBEAT: [u8; 18] = [
        b'X', b'C', 2, 1, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x01, 0x05,
    ];
    // FetchAdd { key: 198.18.0.100 ESP SPI 0x1000, n: 300 }, request id 7:
    // variant 1, four address bytes, protocol index 0, varint 0x1000, varint 300.
    static FETCH_ADD: [u8; 26] = [
        b'X', b'C', 2, 2, 0x01, 0x02, 0, 0, 0, 0, 0, 7, 0, 0, 0, 10, 0x01, 198, 18, 0, 100, 0x00,
        0x80, 0x20, 0xac, 0x02,
    ];

    fn fetch_add() -> CfRequest {
        CfRequest::FetchAdd {
            key: SeqKey {
                dvipa: Ipv4Addr::new(198, 18, 0, 100),
                protocol: Protocol::Esp,
                spi: Spi(0x1000),
            },
            n: 300,
        }
    }

    #[test]
    fn deconstruct_heartbeat() {
        let frame = Frame::new_checked(&HEARTBEAT[..]).unwrap();
        assert_eq!(frame.magic(), MAGIC);
        assert_eq!(frame.version(), 2);
        assert_eq!(frame.channel_code(), 1);
        assert_eq!(frame.type_code(), 0x0002);
        assert_eq!(frame.request_id(), 0);
        assert_eq!(frame.body(), &[0x01, 0x05]);
        let (decoded, used) = decode(&HEARTBEAT).unwrap();
        assert_eq!(used, 18);
        assert_eq!(decoded.body, Body::Xcf(XcfMessage::Heartbeat { seq: 5 }));
    }

    #[test]
    fn construct_fetch_add() {
        let mut out = vec![0xee];
        encode_cf_request(7, &fetch_add(), &mut out).unwrap();
        assert_eq!(out[0], 0xee, "appends, keeps what was there");
        assert_eq!(&out[1..], &FETCH_ADD[..]);
        let header = Header::parse(&FETCH_ADD).unwrap();
        assert_eq!(header.type_name(), "FetchAdd");
        assert_eq!(header.request_id, 7);
        let (decoded, _) = decode(&FETCH_ADD).unwrap();
        assert_eq!(decoded.body, Body::CfRequest(fetch_add()));
    }

    #[test]
    fn truncated() {
        assert_eq!(
            decode(&HEARTBEAT[..15]).unwrap_err(),
            FrameError::Truncated { have: 15, need: 16 }
        );
        assert_eq!(
            decode(&HEARTBEAT[..17]).unwrap_err(),
            FrameError::Truncated { have: 17, need: 18 }
        );
    }

    #[test]
    fn header_errors() {
        let mut f = HEARTBEAT;
        f[0] = b'Y';
        assert_eq!(decode(&f).unwrap_err(), FrameError::BadMagic(*b"YC"));
        let mut f = HEARTBEAT;
        // Version 1 (an `SaInstall` without the dynamic filter and its
        // anchor) is no longer spoken.
        f[2] = 1;
        assert_eq!(decode(&f).unwrap_err(), FrameError::UnsupportedVersion(1));
        let mut f = HEARTBEAT;
        f[3] = 9;
        assert_eq!(decode(&f).unwrap_err(), FrameError::UnknownChannel(9));
        let mut f = HEARTBEAT;
        f[5] = 0x03;
        assert_eq!(
            decode(&f).unwrap_err(),
            FrameError::UnknownType {
                channel: Channel::Xcf,
                code: 3
            }
        );
        let mut f = HEARTBEAT;
        f[12..16].copy_from_slice(&(MAX_BODY_LEN as u32 + 1).to_be_bytes());
        let err = decode(&f).unwrap_err();
        assert!(err.is_fatal());
        assert!(matches!(err, FrameError::TooLong { .. }));
    }

    #[test]
    fn body_errors() {
        // Type code says Hello, body is a Heartbeat.
        let mut f = HEARTBEAT;
        f[5] = 0x01;
        assert_eq!(
            decode(&f).unwrap_err(),
            FrameError::TypeMismatch {
                header: 0x0001,
                body: 0x0002
            }
        );
        // Variant index 99 does not exist.
        let mut f = HEARTBEAT;
        f[16] = 99;
        assert!(matches!(
            decode(&f).unwrap_err(),
            FrameError::BadBody { .. }
        ));
        // A trailing byte after the value.
        let mut f = HEARTBEAT.to_vec();
        f[15] = 3;
        f.push(0);
        let err = decode(&f).unwrap_err();
        assert!(matches!(err, FrameError::BadBody { .. }));
        assert!(!err.is_fatal());
    }

    #[test]
    fn stream_split_and_joined() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&HEARTBEAT);
        stream.extend_from_slice(&FETCH_ADD);
        stream.extend_from_slice(&HEARTBEAT);
        // Byte by byte.
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        for b in &stream {
            dec.push(core::slice::from_ref(b));
            while let Some(frame) = dec.next_frame() {
                got.push(frame.unwrap());
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].request_id, 7);
        assert_eq!(dec.buffered(), 0);
        // All at once.
        let mut dec = FrameDecoder::new();
        dec.push(&stream);
        assert_eq!(dec.next_frame().unwrap().unwrap(), got[0]);
        assert_eq!(dec.next_frame().unwrap().unwrap(), got[1]);
        assert_eq!(dec.next_frame().unwrap().unwrap(), got[2]);
        assert!(dec.next_frame().is_none());
    }

    #[test]
    fn stream_skips_bad_body_and_stops_at_bad_magic() {
        let mut bad = FETCH_ADD;
        bad[16] = 77; // no such variant
        let mut dec = FrameDecoder::new();
        dec.push(&bad);
        dec.push(&HEARTBEAT);
        let refused = dec.next_frame().unwrap().unwrap_err();
        assert!(!refused.is_fatal());
        assert_eq!(refused.request_id, Some(7));
        assert!(dec.next_frame().unwrap().is_ok());
        dec.push(b"GET / HTTP/1.1\r\n\r\n");
        dec.push(&HEARTBEAT);
        let refused = dec.next_frame().unwrap().unwrap_err();
        assert!(refused.is_fatal());
        assert!(refused.request_id.is_none());
        assert!(dec.next_frame().is_none());
        assert!(dec.is_poisoned());
    }

    #[test]
    fn unknown_type_is_skipped_with_its_id() {
        let mut f = FETCH_ADD;
        f[4..6].copy_from_slice(&0x01ffu16.to_be_bytes());
        let mut dec = FrameDecoder::new();
        dec.push(&f[..20]);
        assert!(dec.next_frame().is_none(), "waits for the whole frame");
        dec.push(&f[20..]);
        let refused = dec.next_frame().unwrap().unwrap_err();
        assert_eq!(
            refused.error,
            FrameError::UnknownType {
                channel: Channel::CfRequest,
                code: 0x01ff
            }
        );
        assert_eq!(refused.request_id, Some(7));
        assert_eq!(dec.buffered(), 0);
    }

    // BundleDelete of 198.18.0.100, ESP SPIs 0x11 in / 0x12 out, AH SPIs
    // 0x13 in / 0x14 out: variant 12, four address bytes, four varints.
    static BUNDLE_DELETE: [u8; 25] = [
        b'X', b'C', 2, 1, 0x00, 0x23, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0x0c, 198, 18, 0, 100, 0x11,
        0x12, 0x13, 0x14,
    ];

    fn bundle_delete() -> XcfMessage {
        XcfMessage::BundleDelete {
            dvipa: Ipv4Addr::new(198, 18, 0, 100),
            esp_inbound_spi: Spi(0x11),
            esp_outbound_spi: Spi(0x12),
            ah_inbound_spi: Spi(0x13),
            ah_outbound_spi: Spi(0x14),
        }
    }

    #[test]
    fn bundle_delete_bytes() {
        let mut out = Vec::new();
        encode_xcf(&bundle_delete(), &mut out).unwrap();
        assert_eq!(out, BUNDLE_DELETE);
        let header = Header::parse(&BUNDLE_DELETE).unwrap();
        assert_eq!(header.type_name(), "BundleDelete");
        let (decoded, used) = decode(&BUNDLE_DELETE).unwrap();
        assert_eq!((decoded.body, used), (Body::Xcf(bundle_delete()), 25));
    }

    #[test]
    fn bundle_delete_malformed() {
        // One SPI short: the body ends inside the value.
        let mut f = BUNDLE_DELETE[..24].to_vec();
        f[15] = 8;
        assert!(matches!(
            decode(&f).unwrap_err(),
            FrameError::BadBody { code: 0x0023, .. }
        ));
        // The header claims a byte the slice does not hold.
        assert_eq!(
            decode(&BUNDLE_DELETE[..24]).unwrap_err(),
            FrameError::Truncated { have: 24, need: 25 }
        );
        // Labelled SaDelete, holding a BundleDelete.
        let mut f = BUNDLE_DELETE;
        f[5] = 0x21;
        assert_eq!(
            decode(&f).unwrap_err(),
            FrameError::TypeMismatch {
                header: 0x0021,
                body: 0x0023
            }
        );
    }

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
