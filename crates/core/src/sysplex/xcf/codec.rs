//! The XCF and CF messages of [`super`] in the frames of
//! [`crate::wire::xcf`] (see its module documentation for the layout and
//! the type-code table): each message enum's stable type codes, encoding,
//! and the decoders of a frame and of a byte stream (TCP).

use super::{CfRequest, CfResponse, XcfMessage};
use crate::wire::xcf::{
    decode_value, encode, Channel, EncodeError, Frame, FrameBody, FrameError, Header, Refused,
    HEADER_LEN,
};

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
            XcfMessage::Giveback { .. } => 0x0050,
            XcfMessage::ConnReport { .. } => 0x0032,
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
    /// The longest body accepted, at most [`crate::wire::xcf::MAX_BODY_LEN`]
    /// (0: that limit).
    max_body: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty decoder that refuses bodies longer than `max_body` bytes
    /// (`[limits] xcf_max_message_bytes`), from the header alone; the
    /// frame format's own limit still applies.
    pub fn with_max_body(max_body: usize) -> Self {
        Self {
            max_body,
            ..Self::default()
        }
    }

    fn max_body(&self) -> usize {
        match self.max_body {
            0 => crate::wire::xcf::MAX_BODY_LEN,
            n => n.min(crate::wire::xcf::MAX_BODY_LEN),
        }
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

    /// A fatal error: nothing more is decoded (the caller closes).
    fn poison(&mut self, error: FrameError) -> Refused {
        self.poisoned = true;
        self.buf = Vec::new();
        self.start = 0;
        Refused {
            error,
            request_id: None,
            channel: None,
        }
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
            Err(error) if error.is_fatal() => return Some(Err(self.poison(error))),
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
        if header.body_len as usize > self.max_body() {
            return Some(Err(self.poison(FrameError::TooLong {
                len: header.body_len,
                max: self.max_body(),
            })));
        }
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
    use crate::wire::xcf::{MAGIC, MAX_BODY_LEN};
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
    fn a_decoder_refuses_a_body_over_its_limit_from_the_header() {
        let msg = XcfMessage::Heartbeat { seq: 7 };
        let mut frame = Vec::new();
        encode_xcf(&msg, &mut frame).expect("encodes");
        let body = frame.len() - HEADER_LEN;
        let mut fits = FrameDecoder::with_max_body(body);
        fits.push(&frame);
        assert!(matches!(fits.next_frame(), Some(Ok(_))));
        let mut small = FrameDecoder::with_max_body(body - 1);
        small.push(&frame[..HEADER_LEN]);
        let refused = small.next_frame().expect("refused").expect_err("too long");
        assert!(
            matches!(refused.error, FrameError::TooLong { .. }),
            "{refused:?}"
        );
        assert!(refused.is_fatal() && small.is_poisoned());
    }
}
