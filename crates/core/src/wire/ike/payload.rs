//! The payload chain (RFC 7296 §3.2): the typed [`Payload`], its parser
//! and emitter, and the payloads kept as received (SK, SKF, CP, unknown).

use super::*;

/// A payload of the chain (RFC 7296 §3.2–§3.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// SA (§3.3).
    Sa(Sa),
    /// KE (§3.4).
    Ke(KeyExchange),
    /// IDi (§3.5).
    IdI(Identification),
    /// IDr (§3.5).
    IdR(Identification),
    /// CERT (§3.6), kept raw.
    Cert(Certificate),
    /// CERTREQ (§3.7), kept raw.
    CertReq(Certificate),
    /// AUTH (§3.8).
    Auth(Auth),
    /// Ni / Nr (§3.9): the nonce data.
    Nonce(Vec<u8>),
    /// N (§3.10).
    Notify(Notify),
    /// D (§3.11).
    Delete(Delete),
    /// V (§3.12): the vendor ID.
    VendorId(Vec<u8>),
    /// TSi (§3.13).
    TsI(Vec<TrafficSelector>),
    /// TSr (§3.13).
    TsR(Vec<TrafficSelector>),
    /// SK (§3.14), the raw container.
    Encrypted(Encrypted),
    /// SKF (RFC 7383 §2.5), the raw container.
    EncryptedFragment(EncryptedFragment),
    /// CP (§3.15), kept raw.
    Config(Config),
    /// Any other type (EAP included), kept raw with its critical bit.
    Unknown(UnknownPayload),
}

impl Payload {
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SecurityAssociation,
            Payload::Ke(_) => PayloadType::KeyExchange,
            Payload::IdI(_) => PayloadType::IdInitiator,
            Payload::IdR(_) => PayloadType::IdResponder,
            Payload::Cert(_) => PayloadType::Certificate,
            Payload::CertReq(_) => PayloadType::CertificateRequest,
            Payload::Auth(_) => PayloadType::Authentication,
            Payload::Nonce(_) => PayloadType::Nonce,
            Payload::Notify(_) => PayloadType::Notify,
            Payload::Delete(_) => PayloadType::Delete,
            Payload::VendorId(_) => PayloadType::VendorId,
            Payload::TsI(_) => PayloadType::TsInitiator,
            Payload::TsR(_) => PayloadType::TsResponder,
            Payload::Encrypted(_) => PayloadType::Encrypted,
            Payload::EncryptedFragment(_) => PayloadType::EncryptedFragment,
            Payload::Config(_) => PayloadType::Configuration,
            Payload::Unknown(u) => PayloadType::from(u.payload_type),
        }
    }

    /// The critical bit as emitted: set only where an unknown payload had it.
    pub fn critical(&self) -> bool {
        match self {
            Payload::Unknown(u) => u.critical,
            _ => false,
        }
    }

    /// Parses one payload body. `next` is the Next Payload field of its
    /// generic header (the first inner payload type for SK and SKF).
    fn parse_body(
        payload_type: PayloadType,
        critical: bool,
        next: u8,
        body: &[u8],
    ) -> Result<Payload, Malformed> {
        let mut r = Reader::new(body);
        let payload = match payload_type {
            PayloadType::SecurityAssociation => Payload::Sa(Sa::parse(body)?),
            PayloadType::KeyExchange => {
                let group = DhId::from(r.u16("KE header")?);
                r.skip(2, "KE header")?;
                Payload::Ke(KeyExchange {
                    group,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::IdInitiator => Payload::IdI(Identification::parse(body)?),
            PayloadType::IdResponder => Payload::IdR(Identification::parse(body)?),
            PayloadType::Certificate | PayloadType::CertificateRequest => {
                let cert = Certificate {
                    encoding: r.u8("certificate encoding")?,
                    data: r.rest().to_vec(),
                };
                if payload_type == PayloadType::Certificate {
                    Payload::Cert(cert)
                } else {
                    Payload::CertReq(cert)
                }
            }
            PayloadType::Authentication => {
                let method = AuthMethod::from(r.u8("AUTH header")?);
                r.skip(3, "AUTH header")?;
                Payload::Auth(Auth {
                    method,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::Nonce => Payload::Nonce(body.to_vec()),
            PayloadType::Notify => Payload::Notify(Notify::parse(body)?),
            PayloadType::Delete => Payload::Delete(Delete::parse(body)?),
            PayloadType::VendorId => Payload::VendorId(body.to_vec()),
            PayloadType::TsInitiator => Payload::TsI(TrafficSelector::parse_payload(body)?),
            PayloadType::TsResponder => Payload::TsR(TrafficSelector::parse_payload(body)?),
            PayloadType::Encrypted => Payload::Encrypted(Encrypted {
                first_payload: PayloadType::from(next),
                data: body.to_vec(),
            }),
            PayloadType::EncryptedFragment => {
                let fragment_number = r.u16("SKF header")?;
                let total_fragments = r.u16("SKF header")?;
                Payload::EncryptedFragment(EncryptedFragment {
                    first_payload: PayloadType::from(next),
                    fragment_number,
                    total_fragments,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::Configuration => {
                let cfg_type = r.u8("CP header")?;
                r.skip(3, "CP header")?;
                Payload::Config(Config {
                    cfg_type,
                    attributes: r.rest().to_vec(),
                })
            }
            PayloadType::NoNext | PayloadType::Eap | PayloadType::Unknown(_) => {
                Payload::Unknown(UnknownPayload {
                    payload_type: payload_type.into(),
                    critical,
                    body: body.to_vec(),
                })
            }
        };
        Ok(payload)
    }

    fn emit_body(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        match self {
            Payload::Sa(sa) => sa.emit(out)?,
            Payload::Ke(ke) => {
                out.extend_from_slice(&u16::from(ke.group).to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&ke.data);
            }
            Payload::IdI(id) | Payload::IdR(id) => id.emit(out),
            Payload::Cert(c) | Payload::CertReq(c) => {
                out.push(c.encoding);
                out.extend_from_slice(&c.data);
            }
            Payload::Auth(a) => {
                out.push(a.method.into());
                out.extend_from_slice(&[0, 0, 0]);
                out.extend_from_slice(&a.data);
            }
            Payload::Nonce(data) | Payload::VendorId(data) => out.extend_from_slice(data),
            Payload::Notify(n) => n.emit(out)?,
            Payload::Delete(d) => d.emit(out)?,
            Payload::TsI(ts) | Payload::TsR(ts) => TrafficSelector::emit_payload(ts, out)?,
            Payload::Encrypted(e) => out.extend_from_slice(&e.data),
            Payload::EncryptedFragment(f) => {
                out.extend_from_slice(&f.fragment_number.to_be_bytes());
                out.extend_from_slice(&f.total_fragments.to_be_bytes());
                out.extend_from_slice(&f.data);
            }
            Payload::Config(c) => {
                out.push(c.cfg_type);
                out.extend_from_slice(&[0, 0, 0]);
                out.extend_from_slice(&c.attributes);
            }
            Payload::Unknown(u) => out.extend_from_slice(&u.body),
        }
        Ok(())
    }
}

/// Parses a payload chain that starts with a payload of type `first`: the
/// payloads after the IKE header, or the plaintext of an Encrypted payload
/// (RFC 7296 §3.14, whose padding and Pad Length the caller has removed).
///
/// The chain must fill `buf` exactly. An Encrypted or Encrypted Fragment
/// payload ends the chain: its Next Payload field names the first inner
/// payload, and nothing may follow it (§3.14).
pub fn parse_chain(first: PayloadType, buf: &[u8]) -> Result<Vec<Payload>, Error> {
    let mut payloads = Vec::new();
    let mut next = first;
    let mut offset = 0;
    while next != PayloadType::NoNext {
        let (payload_type, at) = (u8::from(next), offset);
        let fail = move |reason| Error::Payload {
            payload_type,
            offset: at,
            reason,
        };
        let rest = &buf[offset..];
        if rest.len() < GENERIC_HEADER_LEN {
            return Err(fail(Malformed::TruncatedHeader));
        }
        let this_next = rest[0];
        let critical = rest[1] & 0x80 != 0;
        let length = u16::from_be_bytes([rest[2], rest[3]]);
        if usize::from(length) < GENERIC_HEADER_LEN {
            return Err(fail(Malformed::LengthTooSmall(length)));
        }
        if usize::from(length) > rest.len() {
            return Err(fail(Malformed::Overrun {
                length,
                available: rest.len(),
            }));
        }
        let body = &rest[GENERIC_HEADER_LEN..usize::from(length)];
        let payload = Payload::parse_body(next, critical, this_next, body).map_err(fail)?;
        let ends_chain = matches!(
            payload,
            Payload::Encrypted(_) | Payload::EncryptedFragment(_)
        );
        payloads.push(payload);
        offset += usize::from(length);
        if ends_chain {
            if offset != buf.len() {
                return Err(fail(Malformed::AfterEncrypted));
            }
            return Ok(payloads);
        }
        next = PayloadType::from(this_next);
    }
    if offset != buf.len() {
        return Err(Error::TrailingData(buf.len() - offset));
    }
    Ok(payloads)
}

/// Appends a payload chain to `out` and returns the type of its first
/// payload (for the IKE header's or the SK payload's Next Payload field;
/// `NoNext` for an empty chain).
pub fn emit_chain(payloads: &[Payload], out: &mut Vec<u8>) -> Result<PayloadType, EmitError> {
    for (i, payload) in payloads.iter().enumerate() {
        let next: u8 = match payload {
            Payload::Encrypted(Encrypted { first_payload, .. })
            | Payload::EncryptedFragment(EncryptedFragment { first_payload, .. }) => {
                if i + 1 != payloads.len() {
                    return Err(EmitError::EncryptedNotLast);
                }
                (*first_payload).into()
            }
            _ => payloads
                .get(i + 1)
                .map_or(PayloadType::NoNext, Payload::payload_type)
                .into(),
        };
        let start = out.len();
        out.push(next);
        out.push(if payload.critical() { 0x80 } else { 0 });
        out.extend_from_slice(&[0, 0]);
        payload.emit_body(out)?;
        patch_len16(out, start, "payload")?;
    }
    Ok(payloads
        .first()
        .map_or(PayloadType::NoNext, Payload::payload_type))
}

/// Fills in the 16-bit length field at `start + 2` of the structure that
/// begins at `start` and ends at the end of `out` (the layout of the generic
/// payload header, proposals, transforms and traffic selectors alike).
pub(super) fn patch_len16(
    out: &mut [u8],
    start: usize,
    what: &'static str,
) -> Result<(), EmitError> {
    let len = u16::try_from(out.len() - start).map_err(|_| EmitError::TooLong(what))?;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A bounds-checked cursor over a payload body.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(Malformed::Truncated(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(super) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), Malformed> {
        self.take(n, what).map(|_| ())
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Encrypted and Authenticated payload (RFC 7296 §3.14), still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// Type of the first payload inside (the SK payload's Next Payload field).
    pub first_payload: PayloadType,
    /// Initialization Vector | encrypted payloads, padding, Pad Length |
    /// Integrity Checksum Data. Splitting needs the negotiated transforms.
    pub data: Vec<u8>,
}

/// Encrypted Fragment payload (RFC 7383 §2.5), still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFragment {
    /// Type of the first inner payload; only set in fragment 1.
    pub first_payload: PayloadType,
    pub fragment_number: u16,
    pub total_fragments: u16,
    /// IV | encrypted content | ICV.
    pub data: Vec<u8>,
}

/// Configuration payload (RFC 7296 §3.15) with its attributes kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// CFG_REQUEST = 1, CFG_REPLY = 2, CFG_SET = 3, CFG_ACK = 4.
    pub cfg_type: u8,
    pub attributes: Vec<u8>,
}

/// A payload of a type this module does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPayload {
    pub payload_type: u8,
    /// The C bit: if set, a recipient that does not understand the payload
    /// must reject the message with UNSUPPORTED_CRITICAL_PAYLOAD (§2.5).
    pub critical: bool,
    pub body: Vec<u8>,
}
