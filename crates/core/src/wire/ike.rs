//! IKEv2 messages (RFC 7296 §3).
//!
//! Two levels, as in smoltcp:
//! - [`Packet`] is a zero-copy view of the fixed 28-octet IKE header (§3.1),
//!   enough to look at SPIs, the exchange type and the message ID of a
//!   datagram before (or without) parsing the rest — e.g. to spot a
//!   retransmission or to answer INVALID_MAJOR_VERSION.
//! - [`IkeMessage`] is the owned representation: a [`Header`] and a chain of
//!   typed [`Payload`]s. [`IkeMessage::parse`] checks every length field and
//!   never panics; [`IkeMessage::emit`] computes the Next Payload fields, the
//!   payload and substructure lengths and the message length.
//!
//! The Encrypted payload (SK, §3.14) is kept as the raw `IV | ciphertext |
//! ICV` container: decrypting it is the IKE layer's job, which then parses
//! the plaintext with [`parse_chain`] starting at [`Encrypted::first_payload`].
//!
//! Values this module does not know (payload types, transform IDs, notify
//! types, ID types, traffic selector types) are kept, not rejected: the state
//! machine decides what to do with them (§2.5: an unknown payload with the
//! critical bit set is answered with UNSUPPORTED_CRITICAL_PAYLOAD).
//!
//! What the representation does not keep: RESERVED fields (sent as zero,
//! ignored on receipt, §3.2) and the critical bit of payload types this
//! module knows (§2.5: "The critical bit applies only to the payload type it
//! describes"; a recipient that understands the type ignores it).

use thiserror::Error;

/// Declares a C-like enum over an integer that keeps unknown values, the way
/// smoltcp's `enum_with_unknown!` does. `From` converts both ways.
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $( $( #[$variant_attr:meta] )* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $( #[$enum_attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $( #[$variant_attr] )* $variant ),*,
            /// A value this module has no name for, kept as received.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant ),*,
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value ),*,
                    $name::Unknown(other) => other,
                }
            }
        }
    }
}

/// Length of the fixed IKE header (RFC 7296 §3.1).
pub const HEADER_LEN: usize = 28;
/// Length of the generic payload header (RFC 7296 §3.2).
pub const GENERIC_HEADER_LEN: usize = 4;
/// The Version field of IKEv2: major version 2, minor version 0 (RFC 7296 §3.1).
pub const IKEV2_VERSION: u8 = 0x20;
/// Attribute type of the Key Length transform attribute, always in TV format
/// (RFC 7296 §3.3.5).
pub const ATTR_KEY_LENGTH: u16 = 14;

/// Byte ranges of the IKE header (RFC 7296 §3.1).
mod field {
    pub type Field = core::ops::Range<usize>;
    pub const SPI_I: Field = 0..8;
    pub const SPI_R: Field = 8..16;
    pub const NEXT_PAYLOAD: usize = 16;
    pub const VERSION: usize = 17;
    pub const EXCHANGE_TYPE: usize = 18;
    pub const FLAGS: usize = 19;
    pub const MESSAGE_ID: Field = 20..24;
    pub const LENGTH: Field = 24..28;
}

enum_with_unknown! {
    /// Exchange types (RFC 7296 §3.1).
    pub enum ExchangeType(u8) {
        IkeSaInit = 34,
        IkeAuth = 35,
        CreateChildSa = 36,
        Informational = 37,
    }
}

enum_with_unknown! {
    /// Payload types (RFC 7296 §3.2; Encrypted Fragment: RFC 7383 §2.5).
    pub enum PayloadType(u8) {
        /// "No Next Payload": ends a chain.
        NoNext = 0,
        SecurityAssociation = 33,
        KeyExchange = 34,
        IdInitiator = 35,
        IdResponder = 36,
        Certificate = 37,
        CertificateRequest = 38,
        Authentication = 39,
        Nonce = 40,
        Notify = 41,
        Delete = 42,
        VendorId = 43,
        TsInitiator = 44,
        TsResponder = 45,
        Encrypted = 46,
        Configuration = 47,
        Eap = 48,
        EncryptedFragment = 53,
    }
}

enum_with_unknown! {
    /// Protocol IDs of proposals, notifies and deletes (RFC 7296 §3.3.1).
    pub enum ProtocolId(u8) {
        /// Sent when no SPI is carried (Notify, §3.10).
        Unspecified = 0,
        Ike = 1,
        Ah = 2,
        Esp = 3,
    }
}

enum_with_unknown! {
    /// Transform type 1, encryption algorithm (RFC 7296 §3.3.2, IANA
    /// "Transform Type 1"; AES-GCM: RFC 4106/5282).
    pub enum EncrId(u16) {
        TripleDes = 3,
        Null = 11,
        AesCbc = 12,
        AesCtr = 13,
        AesCcm8 = 14,
        AesCcm12 = 15,
        AesCcm16 = 16,
        AesGcm8 = 18,
        AesGcm12 = 19,
        AesGcm16 = 20,
        ChaCha20Poly1305 = 28,
    }
}

impl EncrId {
    /// Whether this is a combined-mode (AEAD) cipher, which takes no
    /// integrity transform (RFC 5282 §8).
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            EncrId::AesCcm8
                | EncrId::AesCcm12
                | EncrId::AesCcm16
                | EncrId::AesGcm8
                | EncrId::AesGcm12
                | EncrId::AesGcm16
                | EncrId::ChaCha20Poly1305
        )
    }
}

enum_with_unknown! {
    /// Transform type 2, pseudorandom function (RFC 7296 §3.3.2; SHA-2: RFC 4868).
    pub enum PrfId(u16) {
        HmacMd5 = 1,
        HmacSha1 = 2,
        Aes128Xcbc = 4,
        HmacSha256 = 5,
        HmacSha384 = 6,
        HmacSha512 = 7,
        Aes128Cmac = 8,
    }
}

enum_with_unknown! {
    /// Transform type 3, integrity algorithm (RFC 7296 §3.3.2; SHA-2: RFC 4868).
    pub enum IntegId(u16) {
        None = 0,
        HmacMd5_96 = 1,
        HmacSha1_96 = 2,
        AesXcbc96 = 5,
        AesCmac96 = 8,
        HmacSha256_128 = 12,
        HmacSha384_192 = 13,
        HmacSha512_256 = 14,
    }
}

enum_with_unknown! {
    /// Transform type 4, Diffie-Hellman group (RFC 7296 §3.3.2; MODP: RFC 3526;
    /// ECP: RFC 5903; Curve25519/448: RFC 8031).
    pub enum DhId(u16) {
        None = 0,
        Modp768 = 1,
        Modp1024 = 2,
        Modp1536 = 5,
        Modp2048 = 14,
        Modp3072 = 15,
        Modp4096 = 16,
        Modp6144 = 17,
        Modp8192 = 18,
        Ecp256 = 19,
        Ecp384 = 20,
        Ecp521 = 21,
        Curve25519 = 31,
        Curve448 = 32,
    }
}

enum_with_unknown! {
    /// Transform type 5, extended sequence numbers (RFC 7296 §3.3.2).
    pub enum EsnId(u16) {
        NoEsn = 0,
        Esn = 1,
    }
}

enum_with_unknown! {
    /// Identification types (RFC 7296 §3.5).
    pub enum IdType(u8) {
        Ipv4Addr = 1,
        Fqdn = 2,
        Rfc822Addr = 3,
        Ipv6Addr = 5,
        DerAsn1Dn = 9,
        DerAsn1Gn = 10,
        KeyId = 11,
    }
}

enum_with_unknown! {
    /// Authentication methods (RFC 7296 §3.8; 14: RFC 7427).
    pub enum AuthMethod(u8) {
        RsaSignature = 1,
        SharedKeyMic = 2,
        DssSignature = 3,
        EcdsaSha256P256 = 9,
        EcdsaSha384P384 = 10,
        EcdsaSha512P521 = 11,
        DigitalSignature = 14,
    }
}

enum_with_unknown! {
    /// Notify message types (RFC 7296 §3.10.1; others as cited).
    ///
    /// Values below 16384 are errors, the rest status types.
    pub enum NotifyType(u16) {
        UnsupportedCriticalPayload = 1,
        InvalidIkeSpi = 4,
        InvalidMajorVersion = 5,
        InvalidSyntax = 7,
        InvalidMessageId = 9,
        InvalidSpi = 11,
        NoProposalChosen = 14,
        InvalidKePayload = 17,
        AuthenticationFailed = 24,
        SinglePairRequired = 34,
        NoAdditionalSas = 35,
        InternalAddressFailure = 36,
        FailedCpRequired = 37,
        TsUnacceptable = 38,
        InvalidSelectors = 39,
        TemporaryFailure = 43,
        ChildSaNotFound = 44,
        InitialContact = 16384,
        SetWindowSize = 16385,
        AdditionalTsPossible = 16386,
        IpcompSupported = 16387,
        NatDetectionSourceIp = 16388,
        NatDetectionDestinationIp = 16389,
        Cookie = 16390,
        UseTransportMode = 16391,
        HttpCertLookupSupported = 16392,
        RekeySa = 16393,
        EspTfcPaddingNotSupported = 16394,
        NonFirstFragmentsAlso = 16395,
        /// RFC 4555 §4.
        MobikeSupported = 16396,
        /// RFC 4555 §4.
        AdditionalIp4Address = 16397,
        /// RFC 4555 §4.
        AdditionalIp6Address = 16398,
        /// RFC 4555 §4.
        NoAdditionalAddresses = 16399,
        /// RFC 4555 §4.
        UpdateSaAddresses = 16400,
        /// RFC 4555 §4.
        Cookie2 = 16401,
        /// RFC 4555 §4.
        NoNatsAllowed = 16402,
        /// RFC 4478.
        AuthLifetime = 16403,
        /// RFC 4739.
        MultipleAuthSupported = 16404,
        /// RFC 4739.
        AnotherAuthFollows = 16405,
        /// RFC 5685.
        RedirectSupported = 16406,
        /// RFC 5685.
        Redirect = 16407,
        /// RFC 5685.
        RedirectedFrom = 16408,
        /// RFC 5998.
        EapOnlyAuthentication = 16417,
        /// RFC 6023.
        ChildlessIkev2Supported = 16418,
        /// RFC 7383.
        Ikev2FragmentationSupported = 16430,
        /// RFC 7427.
        SignatureHashAlgorithms = 16431,
    }
}

impl NotifyType {
    /// Error types are 0..=16383 (RFC 7296 §3.10.1).
    pub fn is_error(self) -> bool {
        u16::from(self) < 16384
    }
}

enum_with_unknown! {
    /// Traffic selector types (RFC 7296 §3.13.1).
    pub enum TsType(u8) {
        Ipv4AddrRange = 7,
        Ipv6AddrRange = 8,
    }
}

/// Why a message could not be parsed. Every variant means the *peer* sent
/// malformed data (RFC 7296 §2.21: answer INVALID_SYNTAX where a response is
/// due, after the message was authenticated).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error("datagram of {0} octets is shorter than the 28-octet IKE header")]
    Truncated(usize),
    #[error("IKE header says {header} octets but the datagram has {datagram}")]
    LengthMismatch { header: u32, datagram: usize },
    #[error("IKE major version {0} is not 2")]
    UnsupportedVersion(u8),
    #[error("payload of type {payload_type} at offset {offset}: {reason}")]
    Payload {
        payload_type: u8,
        /// Offset of the payload's generic header from the start of the chain.
        offset: usize,
        reason: Malformed,
    },
    #[error("{0} octets follow the last payload of the chain")]
    TrailingData(usize),
}

/// What is wrong inside one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Malformed {
    #[error("the generic payload header is truncated")]
    TruncatedHeader,
    #[error("payload length {0} is smaller than the generic header")]
    LengthTooSmall(u16),
    #[error("payload length {length} overruns the {available} octets left")]
    Overrun { length: u16, available: usize },
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("{0} has an invalid length")]
    BadLength(&'static str),
    #[error("inconsistent {0}")]
    Inconsistent(&'static str),
    #[error("a payload follows the Encrypted payload, which must be last")]
    AfterEncrypted,
}

/// Why a representation could not be emitted (a field does not fit its
/// length on the wire, or the representation is self-contradictory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EmitError {
    #[error("{0} is too long for its length field")]
    TooLong(&'static str),
    #[error("too many {0} for the count field")]
    TooMany(&'static str),
    #[error("an SPI of the Delete payload differs from its SPI size")]
    SpiSizeMismatch,
    #[error("the Encrypted payload must be the last of its chain")]
    EncryptedNotLast,
}

/// A read-only view of the IKE header of a datagram (RFC 7296 §3.1).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short one.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer that holds at least the fixed header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated(len));
        }
        Ok(Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u64_at(&self, range: field::Field) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buffer.as_ref()[range]);
        u64::from_be_bytes(b)
    }

    fn u32_at(&self, range: field::Field) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.buffer.as_ref()[range]);
        u32::from_be_bytes(b)
    }

    /// IKE SA Initiator's SPI.
    pub fn spi_i(&self) -> u64 {
        self.u64_at(field::SPI_I)
    }
    /// IKE SA Responder's SPI (zero in the first IKE_SA_INIT request).
    pub fn spi_r(&self) -> u64 {
        self.u64_at(field::SPI_R)
    }
    pub fn next_payload(&self) -> PayloadType {
        PayloadType::from(self.buffer.as_ref()[field::NEXT_PAYLOAD])
    }
    pub fn major_version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] >> 4
    }
    pub fn minor_version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] & 0x0f
    }
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType::from(self.buffer.as_ref()[field::EXCHANGE_TYPE])
    }
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }
    pub fn message_id(&self) -> u32 {
        self.u32_at(field::MESSAGE_ID)
    }
    /// Length of the whole message, header included, as the header says.
    pub fn length(&self) -> u32 {
        self.u32_at(field::LENGTH)
    }
}

/// The Flags octet of the IKE header (RFC 7296 §3.1). Bits other than I, V
/// and R are kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// I(nitiator): set by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// V(ersion): the sender can speak a higher major version.
    pub const VERSION: u8 = 0x10;
    /// R(esponse): this message is a response.
    pub const RESPONSE: u8 = 0x20;

    pub fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }
    pub fn version(self) -> bool {
        self.0 & Self::VERSION != 0
    }
    pub fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }
}

/// The IKE header without the fields emit computes (Next Payload, Length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub spi_i: u64,
    pub spi_r: u64,
    pub major_version: u8,
    pub minor_version: u8,
    pub exchange_type: ExchangeType,
    pub flags: Flags,
    pub message_id: u32,
}

impl Header {
    /// Reads the header fields out of a checked view, whatever the version.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Header {
        Header {
            spi_i: packet.spi_i(),
            spi_r: packet.spi_r(),
            major_version: packet.major_version(),
            minor_version: packet.minor_version(),
            exchange_type: packet.exchange_type(),
            flags: packet.flags(),
            message_id: packet.message_id(),
        }
    }

    fn emit(&self, next_payload: u8, length: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.to_be_bytes());
        out.extend_from_slice(&self.spi_r.to_be_bytes());
        out.push(next_payload);
        out.push((self.major_version << 4) | (self.minor_version & 0x0f));
        out.push(self.exchange_type.into());
        out.push(self.flags.0);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
    }
}

/// An IKEv2 message: header and payload chain (RFC 7296 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeMessage {
    pub header: Header,
    pub payloads: Vec<Payload>,
}

impl IkeMessage {
    /// Parses a whole datagram (without the RFC 3948 non-ESP marker).
    ///
    /// The Length field must equal the datagram length; the major version
    /// must be 2 (use [`Packet`] to answer INVALID_MAJOR_VERSION otherwise).
    pub fn parse(datagram: &[u8]) -> Result<IkeMessage, Error> {
        let packet = Packet::new_checked(datagram)?;
        let header = Header::parse(&packet);
        if header.major_version != 2 {
            return Err(Error::UnsupportedVersion(header.major_version));
        }
        let length = packet.length();
        if usize::try_from(length).ok() != Some(datagram.len()) {
            return Err(Error::LengthMismatch {
                header: length,
                datagram: datagram.len(),
            });
        }
        let payloads = parse_chain(packet.next_payload(), &datagram[HEADER_LEN..])?;
        Ok(IkeMessage { header, payloads })
    }

    /// Appends the message to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        let start = out.len();
        self.header.emit(0, 0, out);
        let first = emit_chain(&self.payloads, out)?;
        out[start + field::NEXT_PAYLOAD] = first.into();
        let length = u32::try_from(out.len() - start).map_err(|_| EmitError::TooLong("message"))?;
        out[start + field::LENGTH.start..start + field::LENGTH.end]
            .copy_from_slice(&length.to_be_bytes());
        Ok(())
    }

    /// The message as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EmitError> {
        let mut out = Vec::new();
        self.emit(&mut out)?;
        Ok(out)
    }

    /// The first payload of the given type.
    pub fn find(&self, payload_type: PayloadType) -> Option<&Payload> {
        self.payloads
            .iter()
            .find(|p| p.payload_type() == payload_type)
    }

    /// All Notify payloads.
    pub fn notifies(&self) -> impl Iterator<Item = &Notify> {
        self.payloads.iter().filter_map(|p| match p {
            Payload::Notify(n) => Some(n),
            _ => None,
        })
    }
}

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
fn patch_len16(out: &mut [u8], start: usize, what: &'static str) -> Result<(), EmitError> {
    let len = u16::try_from(out.len() - start).map_err(|_| EmitError::TooLong(what))?;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A bounds-checked cursor over a payload body.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(Malformed::Truncated(what))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), Malformed> {
        self.take(n, what).map(|_| ())
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Security Association payload (RFC 7296 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sa {
    pub proposals: Vec<Proposal>,
}

/// "Last Substruc" values (RFC 7296 §3.3.1, §3.3.2).
const LAST: u8 = 0;
const MORE_PROPOSALS: u8 = 2;
const MORE_TRANSFORMS: u8 = 3;

impl Sa {
    fn parse(body: &[u8]) -> Result<Sa, Malformed> {
        let mut r = Reader::new(body);
        let mut proposals = Vec::new();
        while !r.is_empty() {
            let last = r.u8("proposal header")?;
            r.skip(1, "proposal header")?;
            let length = usize::from(r.u16("proposal header")?);
            let inner = length
                .checked_sub(4)
                .ok_or(Malformed::BadLength("proposal"))?;
            let p = r.take(inner, "proposal")?;
            proposals.push(Proposal::parse(p)?);
            let expect = if r.is_empty() { LAST } else { MORE_PROPOSALS };
            if last != expect {
                return Err(Malformed::Inconsistent("proposal Last Substruc field"));
            }
        }
        Ok(Sa { proposals })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        for (i, p) in self.proposals.iter().enumerate() {
            let start = out.len();
            out.push(if i + 1 == self.proposals.len() {
                LAST
            } else {
                MORE_PROPOSALS
            });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            p.emit(out)?;
            patch_len16(out, start, "proposal")?;
        }
        Ok(())
    }
}

/// A proposal substructure (RFC 7296 §3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal Num: 1 for the first, one more for each next (§3.3.1).
    pub number: u8,
    pub protocol: ProtocolId,
    /// The sender's SPI: empty in an initial IKE_SA_INIT, 8 octets when
    /// rekeying an IKE SA, 4 octets for ESP and AH.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

impl Proposal {
    /// `body` is the proposal after Last Substruc, RESERVED and Proposal Length.
    fn parse(body: &[u8]) -> Result<Proposal, Malformed> {
        let mut r = Reader::new(body);
        let number = r.u8("proposal header")?;
        let protocol = ProtocolId::from(r.u8("proposal header")?);
        let spi_size = r.u8("proposal header")?;
        let count = r.u8("proposal header")?;
        let spi = r.take(usize::from(spi_size), "proposal SPI")?.to_vec();
        let mut transforms = Vec::with_capacity(usize::from(count));
        while !r.is_empty() {
            let last = r.u8("transform header")?;
            r.skip(1, "transform header")?;
            let length = usize::from(r.u16("transform header")?);
            let inner = length
                .checked_sub(4)
                .ok_or(Malformed::BadLength("transform"))?;
            transforms.push(Transform::parse(r.take(inner, "transform")?)?);
            let expect = if r.is_empty() { LAST } else { MORE_TRANSFORMS };
            if last != expect {
                return Err(Malformed::Inconsistent("transform Last Substruc field"));
            }
        }
        if transforms.len() != usize::from(count) {
            return Err(Malformed::Inconsistent("number of transforms"));
        }
        Ok(Proposal {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.push(self.number);
        out.push(self.protocol.into());
        out.push(u8::try_from(self.spi.len()).map_err(|_| EmitError::TooLong("proposal SPI"))?);
        out.push(
            u8::try_from(self.transforms.len()).map_err(|_| EmitError::TooMany("transforms"))?,
        );
        out.extend_from_slice(&self.spi);
        for (i, t) in self.transforms.iter().enumerate() {
            let start = out.len();
            out.push(if i + 1 == self.transforms.len() {
                LAST
            } else {
                MORE_TRANSFORMS
            });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            t.emit(out)?;
            patch_len16(out, start, "transform")?;
        }
        Ok(())
    }
}

/// A transform type and ID (RFC 7296 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransformId {
    /// Type 1.
    Encr(EncrId),
    /// Type 2.
    Prf(PrfId),
    /// Type 3.
    Integ(IntegId),
    /// Type 4.
    Dh(DhId),
    /// Type 5.
    Esn(EsnId),
    /// Any other transform type, kept as received.
    Other { transform_type: u8, id: u16 },
}

impl TransformId {
    fn from_wire(transform_type: u8, id: u16) -> TransformId {
        match transform_type {
            1 => TransformId::Encr(id.into()),
            2 => TransformId::Prf(id.into()),
            3 => TransformId::Integ(id.into()),
            4 => TransformId::Dh(id.into()),
            5 => TransformId::Esn(id.into()),
            _ => TransformId::Other { transform_type, id },
        }
    }

    /// The (Transform Type, Transform ID) pair on the wire.
    pub fn to_wire(self) -> (u8, u16) {
        match self {
            TransformId::Encr(id) => (1, id.into()),
            TransformId::Prf(id) => (2, id.into()),
            TransformId::Integ(id) => (3, id.into()),
            TransformId::Dh(id) => (4, id.into()),
            TransformId::Esn(id) => (5, id.into()),
            TransformId::Other { transform_type, id } => (transform_type, id),
        }
    }
}

/// A transform substructure (RFC 7296 §3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub id: TransformId,
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(id: TransformId) -> Transform {
        Transform {
            id,
            attributes: Vec::new(),
        }
    }

    /// An encryption transform with a Key Length attribute (in bits).
    pub fn encr(id: EncrId, key_bits: Option<u16>) -> Transform {
        Transform {
            id: TransformId::Encr(id),
            attributes: key_bits.map(Attribute::KeyLength).into_iter().collect(),
        }
    }

    /// The Key Length attribute, in bits (§3.3.5).
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::KeyLength(bits) => Some(*bits),
            _ => None,
        })
    }

    fn parse(body: &[u8]) -> Result<Transform, Malformed> {
        let mut r = Reader::new(body);
        let transform_type = r.u8("transform header")?;
        r.skip(1, "transform header")?;
        let id = TransformId::from_wire(transform_type, r.u16("transform header")?);
        let mut attributes = Vec::new();
        while !r.is_empty() {
            attributes.push(Attribute::parse(&mut r)?);
        }
        Ok(Transform { id, attributes })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        let (transform_type, id) = self.id.to_wire();
        out.push(transform_type);
        out.push(0);
        out.extend_from_slice(&id.to_be_bytes());
        for a in &self.attributes {
            a.emit(out)?;
        }
        Ok(())
    }
}

/// A transform attribute (RFC 7296 §3.3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// Key Length in bits (type 14, TV format).
    KeyLength(u16),
    /// Another attribute in Type/Value format (AF = 1).
    Tv { attr_type: u16, value: u16 },
    /// An attribute in Type/Length/Value format (AF = 0).
    Tlv { attr_type: u16, value: Vec<u8> },
}

const ATTR_FORMAT_TV: u16 = 0x8000;

impl Attribute {
    fn parse(r: &mut Reader<'_>) -> Result<Attribute, Malformed> {
        let af_type = r.u16("transform attribute")?;
        let attr_type = af_type & !ATTR_FORMAT_TV;
        let value = r.u16("transform attribute")?;
        if af_type & ATTR_FORMAT_TV != 0 {
            Ok(if attr_type == ATTR_KEY_LENGTH {
                Attribute::KeyLength(value)
            } else {
                Attribute::Tv { attr_type, value }
            })
        } else {
            let value = r.take(usize::from(value), "transform attribute value")?;
            Ok(Attribute::Tlv {
                attr_type,
                value: value.to_vec(),
            })
        }
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        match self {
            Attribute::KeyLength(bits) => {
                out.extend_from_slice(&(ATTR_FORMAT_TV | ATTR_KEY_LENGTH).to_be_bytes());
                out.extend_from_slice(&bits.to_be_bytes());
            }
            Attribute::Tv { attr_type, value } => {
                out.extend_from_slice(&(ATTR_FORMAT_TV | attr_type).to_be_bytes());
                out.extend_from_slice(&value.to_be_bytes());
            }
            Attribute::Tlv { attr_type, value } => {
                out.extend_from_slice(&(attr_type & !ATTR_FORMAT_TV).to_be_bytes());
                let len = u16::try_from(value.len())
                    .map_err(|_| EmitError::TooLong("transform attribute"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(value);
            }
        }
        Ok(())
    }
}

/// Key Exchange payload (RFC 7296 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    pub group: DhId,
    /// The public value; its length is checked against the group by the
    /// Diffie-Hellman code, not here.
    pub data: Vec<u8>,
}

/// Identification payload contents (RFC 7296 §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identification {
    Ipv4Addr([u8; 4]),
    Fqdn(Vec<u8>),
    Rfc822Addr(Vec<u8>),
    Ipv6Addr([u8; 16]),
    DerAsn1Dn(Vec<u8>),
    DerAsn1Gn(Vec<u8>),
    KeyId(Vec<u8>),
    /// An ID type this module does not name; `id_type` must not be one of
    /// the named ones.
    Other {
        id_type: u8,
        data: Vec<u8>,
    },
}

impl Identification {
    pub fn id_type(&self) -> IdType {
        match self {
            Identification::Ipv4Addr(_) => IdType::Ipv4Addr,
            Identification::Fqdn(_) => IdType::Fqdn,
            Identification::Rfc822Addr(_) => IdType::Rfc822Addr,
            Identification::Ipv6Addr(_) => IdType::Ipv6Addr,
            Identification::DerAsn1Dn(_) => IdType::DerAsn1Dn,
            Identification::DerAsn1Gn(_) => IdType::DerAsn1Gn,
            Identification::KeyId(_) => IdType::KeyId,
            Identification::Other { id_type, .. } => IdType::from(*id_type),
        }
    }

    /// The Identification Data field.
    pub fn data(&self) -> &[u8] {
        match self {
            Identification::Ipv4Addr(a) => a,
            Identification::Ipv6Addr(a) => a,
            Identification::Fqdn(d)
            | Identification::Rfc822Addr(d)
            | Identification::DerAsn1Dn(d)
            | Identification::DerAsn1Gn(d)
            | Identification::KeyId(d)
            | Identification::Other { data: d, .. } => d,
        }
    }

    /// The payload body without the generic header — "RestOfInitIDPayload" /
    /// "RestOfRespIDPayload" of the AUTH computation (RFC 7296 §2.15): ID
    /// Type, three zero RESERVED octets, Identification Data. (As strongSwan
    /// does, the octets are rebuilt from the parsed ID with RESERVED = 0.)
    pub fn rest_of_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data().len());
        self.emit(&mut out);
        out
    }

    fn parse(body: &[u8]) -> Result<Identification, Malformed> {
        let mut r = Reader::new(body);
        let id_type = IdType::from(r.u8("ID header")?);
        r.skip(3, "ID header")?;
        let data = r.rest();
        Ok(match id_type {
            IdType::Ipv4Addr => Identification::Ipv4Addr(
                data.try_into()
                    .map_err(|_| Malformed::BadLength("ID_IPV4_ADDR"))?,
            ),
            IdType::Ipv6Addr => Identification::Ipv6Addr(
                data.try_into()
                    .map_err(|_| Malformed::BadLength("ID_IPV6_ADDR"))?,
            ),
            IdType::Fqdn => Identification::Fqdn(data.to_vec()),
            IdType::Rfc822Addr => Identification::Rfc822Addr(data.to_vec()),
            IdType::DerAsn1Dn => Identification::DerAsn1Dn(data.to_vec()),
            IdType::DerAsn1Gn => Identification::DerAsn1Gn(data.to_vec()),
            IdType::KeyId => Identification::KeyId(data.to_vec()),
            IdType::Unknown(id_type) => Identification::Other {
                id_type,
                data: data.to_vec(),
            },
        })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.id_type().into());
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(self.data());
    }
}

/// Certificate and Certificate Request payloads (RFC 7296 §3.6, §3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub encoding: u8,
    pub data: Vec<u8>,
}

/// Authentication payload (RFC 7296 §3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub method: AuthMethod,
    pub data: Vec<u8>,
}

/// Notify payload (RFC 7296 §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub protocol: ProtocolId,
    /// Empty for notifies about the IKE SA (§3.10).
    pub spi: Vec<u8>,
    pub notify_type: NotifyType,
    pub data: Vec<u8>,
}

impl Notify {
    /// A notify about the IKE SA itself: no protocol, no SPI.
    pub fn new(notify_type: NotifyType, data: Vec<u8>) -> Notify {
        Notify {
            protocol: ProtocolId::Unspecified,
            spi: Vec::new(),
            notify_type,
            data,
        }
    }

    /// INVALID_KE_PAYLOAD with the accepted group (§1.3, §3.10.1).
    pub fn invalid_ke(group: DhId) -> Notify {
        Notify::new(
            NotifyType::InvalidKePayload,
            u16::from(group).to_be_bytes().to_vec(),
        )
    }

    /// The group an INVALID_KE_PAYLOAD asks for, if this is one and its
    /// data is the 2-octet group number.
    pub fn requested_group(&self) -> Option<DhId> {
        match (self.notify_type, self.data.as_slice()) {
            (NotifyType::InvalidKePayload, [hi, lo]) => {
                Some(DhId::from(u16::from_be_bytes([*hi, *lo])))
            }
            _ => None,
        }
    }

    fn parse(body: &[u8]) -> Result<Notify, Malformed> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId::from(r.u8("notify header")?);
        let spi_size = r.u8("notify header")?;
        let notify_type = NotifyType::from(r.u16("notify header")?);
        let spi = r.take(usize::from(spi_size), "notify SPI")?.to_vec();
        Ok(Notify {
            protocol,
            spi,
            notify_type,
            data: r.rest().to_vec(),
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.push(self.protocol.into());
        out.push(u8::try_from(self.spi.len()).map_err(|_| EmitError::TooLong("notify SPI"))?);
        out.extend_from_slice(&u16::from(self.notify_type).to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// Delete payload (RFC 7296 §3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub protocol: ProtocolId,
    /// 0 for IKE (the SA is the one the message travels on), 4 for ESP/AH.
    pub spi_size: u8,
    /// Each exactly `spi_size` octets.
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    fn parse(body: &[u8]) -> Result<Delete, Malformed> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId::from(r.u8("delete header")?);
        let spi_size = r.u8("delete header")?;
        let count = r.u16("delete header")?;
        let rest = r.rest();
        if rest.len() != usize::from(spi_size) * usize::from(count) {
            return Err(Malformed::Inconsistent("number and size of SPIs"));
        }
        let spis = if spi_size == 0 {
            vec![Vec::new(); usize::from(count)]
        } else {
            rest.chunks(usize::from(spi_size))
                .map(<[u8]>::to_vec)
                .collect()
        };
        Ok(Delete {
            protocol,
            spi_size,
            spis,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        if self
            .spis
            .iter()
            .any(|s| s.len() != usize::from(self.spi_size))
        {
            return Err(EmitError::SpiSizeMismatch);
        }
        out.push(self.protocol.into());
        out.push(self.spi_size);
        let count = u16::try_from(self.spis.len()).map_err(|_| EmitError::TooMany("SPIs"))?;
        out.extend_from_slice(&count.to_be_bytes());
        for spi in &self.spis {
            out.extend_from_slice(spi);
        }
        Ok(())
    }
}

/// A traffic selector (RFC 7296 §3.13.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrafficSelector {
    /// TS_IPV4_ADDR_RANGE.
    Ipv4 {
        /// IP protocol, 0 for any.
        ip_protocol: u8,
        start_port: u16,
        end_port: u16,
        start: [u8; 4],
        end: [u8; 4],
    },
    /// TS_IPV6_ADDR_RANGE.
    Ipv6 {
        ip_protocol: u8,
        start_port: u16,
        end_port: u16,
        start: [u8; 16],
        end: [u8; 16],
    },
    /// Another TS type (not 7 or 8): the octet after TS Type (IP Protocol ID
    /// for the RFC 7296 types) and everything after Selector Length.
    Other {
        ts_type: u8,
        second_octet: u8,
        data: Vec<u8>,
    },
}

const TS_IPV4_LEN: usize = 16;
const TS_IPV6_LEN: usize = 40;

impl TrafficSelector {
    /// All ports and protocols of one IPv4 address.
    pub fn ipv4_host(addr: [u8; 4]) -> TrafficSelector {
        TrafficSelector::Ipv4 {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: addr,
            end: addr,
        }
    }

    pub fn ts_type(&self) -> TsType {
        match self {
            TrafficSelector::Ipv4 { .. } => TsType::Ipv4AddrRange,
            TrafficSelector::Ipv6 { .. } => TsType::Ipv6AddrRange,
            TrafficSelector::Other { ts_type, .. } => TsType::from(*ts_type),
        }
    }

    fn parse_payload(body: &[u8]) -> Result<Vec<TrafficSelector>, Malformed> {
        let mut r = Reader::new(body);
        let count = r.u8("TS header")?;
        r.skip(3, "TS header")?;
        let mut selectors = Vec::with_capacity(usize::from(count));
        while !r.is_empty() {
            selectors.push(TrafficSelector::parse(&mut r)?);
        }
        if selectors.len() != usize::from(count) {
            return Err(Malformed::Inconsistent("number of traffic selectors"));
        }
        Ok(selectors)
    }

    fn parse(r: &mut Reader<'_>) -> Result<TrafficSelector, Malformed> {
        let ts_type = TsType::from(r.u8("traffic selector")?);
        let second_octet = r.u8("traffic selector")?;
        let length = usize::from(r.u16("traffic selector")?);
        let inner = length
            .checked_sub(4)
            .ok_or(Malformed::BadLength("traffic selector"))?;
        let mut s = Reader::new(r.take(inner, "traffic selector")?);
        let ip_protocol = second_octet;
        Ok(match ts_type {
            TsType::Ipv4AddrRange => {
                if length != TS_IPV4_LEN {
                    return Err(Malformed::BadLength("TS_IPV4_ADDR_RANGE"));
                }
                TrafficSelector::Ipv4 {
                    ip_protocol,
                    start_port: s.u16("traffic selector")?,
                    end_port: s.u16("traffic selector")?,
                    start: array(s.take(4, "traffic selector")?),
                    end: array(s.take(4, "traffic selector")?),
                }
            }
            TsType::Ipv6AddrRange => {
                if length != TS_IPV6_LEN {
                    return Err(Malformed::BadLength("TS_IPV6_ADDR_RANGE"));
                }
                TrafficSelector::Ipv6 {
                    ip_protocol,
                    start_port: s.u16("traffic selector")?,
                    end_port: s.u16("traffic selector")?,
                    start: array(s.take(16, "traffic selector")?),
                    end: array(s.take(16, "traffic selector")?),
                }
            }
            TsType::Unknown(ts_type) => TrafficSelector::Other {
                ts_type,
                second_octet,
                data: s.rest().to_vec(),
            },
        })
    }

    fn emit_payload(selectors: &[TrafficSelector], out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.push(
            u8::try_from(selectors.len()).map_err(|_| EmitError::TooMany("traffic selectors"))?,
        );
        out.extend_from_slice(&[0, 0, 0]);
        for ts in selectors {
            let start = out.len();
            out.push(ts.ts_type().into());
            match ts {
                TrafficSelector::Ipv4 {
                    ip_protocol,
                    start_port,
                    end_port,
                    ..
                }
                | TrafficSelector::Ipv6 {
                    ip_protocol,
                    start_port,
                    end_port,
                    ..
                } => {
                    out.push(*ip_protocol);
                    out.extend_from_slice(&[0, 0]);
                    out.extend_from_slice(&start_port.to_be_bytes());
                    out.extend_from_slice(&end_port.to_be_bytes());
                }
                TrafficSelector::Other { second_octet, .. } => {
                    out.push(*second_octet);
                    out.extend_from_slice(&[0, 0]);
                }
            }
            match ts {
                TrafficSelector::Ipv4 { start, end, .. } => {
                    out.extend_from_slice(start);
                    out.extend_from_slice(end);
                }
                TrafficSelector::Ipv6 { start, end, .. } => {
                    out.extend_from_slice(start);
                    out.extend_from_slice(end);
                }
                TrafficSelector::Other { data, .. } => out.extend_from_slice(data),
            }
            patch_len16(out, start, "traffic selector")?;
        }
        Ok(())
    }
}

/// Copies a slice whose length the caller has checked into an array.
fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    a
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An IKE_SA_INIT request laid out by hand from RFC 7296 §3: SA with one
    /// IKE proposal (AES-CBC-128, HMAC-SHA2-256 PRF and -128 integrity,
    /// Curve25519), KE, Nonce, NAT_DETECTION_SOURCE_IP.
    static SA_INIT: [u8; 148] = [
        // IKE header: SPIi, SPIr = 0, next = SA, version 2.0, IKE_SA_INIT, I flag, msg id 0, length 148
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 33, 0x20, 34, 0x08,
        0, 0, 0, 0, 0, 0, 0, 148, // SA payload: next = KE, length 48
        34, 0, 0, 48, // proposal: last, length 44, #1, IKE, SPI size 0, 4 transforms
        0, 0, 0, 44, 1, 1, 0, 4, // ENCR AES-CBC with key length 128 (length 12)
        3, 0, 0, 12, 1, 0, 0, 12, 0x80, 14, 0, 128, // PRF HMAC-SHA2-256
        3, 0, 0, 8, 2, 0, 0, 5, // INTEG HMAC-SHA2-256-128
        3, 0, 0, 8, 3, 0, 0, 12, // DH Curve25519, last
        0, 0, 0, 8, 4, 0, 0, 31,
        // KE payload: next = Nonce, length 40, group 31, 32 octets
        40, 0, 0, 40, 0, 31, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
        19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        // Nonce payload: next = Notify, length 20
        41, 0, 0, 20, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac,
        0xad, 0xae, 0xaf,
        // Notify payload: last, length 12: no protocol, no SPI, NAT_DETECTION_SOURCE_IP (0x4004), 4 octets
        0, 0, 0, 12, 0, 0, 0x40, 0x04, 0xde, 0xad, 0xbe, 0xef,
    ];

    fn sa_init_repr() -> IkeMessage {
        IkeMessage {
            header: Header {
                spi_i: 0x1122_3344_5566_7788,
                spi_r: 0,
                major_version: 2,
                minor_version: 0,
                exchange_type: ExchangeType::IkeSaInit,
                flags: Flags(Flags::INITIATOR),
                message_id: 0,
            },
            payloads: vec![
                Payload::Sa(Sa {
                    proposals: vec![Proposal {
                        number: 1,
                        protocol: ProtocolId::Ike,
                        spi: vec![],
                        transforms: vec![
                            Transform::encr(EncrId::AesCbc, Some(128)),
                            Transform::new(TransformId::Prf(PrfId::HmacSha256)),
                            Transform::new(TransformId::Integ(IntegId::HmacSha256_128)),
                            Transform::new(TransformId::Dh(DhId::Curve25519)),
                        ],
                    }],
                }),
                Payload::Ke(KeyExchange {
                    group: DhId::Curve25519,
                    data: (1..=32).collect(),
                }),
                Payload::Nonce((0xa0..=0xaf).collect()),
                Payload::Notify(Notify::new(
                    NotifyType::NatDetectionSourceIp,
                    vec![0xde, 0xad, 0xbe, 0xef],
                )),
            ],
        }
    }

    #[test]
    fn header_view() {
        let p = Packet::new_checked(&SA_INIT[..]).unwrap();
        assert_eq!(p.spi_i(), 0x1122_3344_5566_7788);
        assert_eq!(p.spi_r(), 0);
        assert_eq!(p.next_payload(), PayloadType::SecurityAssociation);
        assert_eq!((p.major_version(), p.minor_version()), (2, 0));
        assert_eq!(p.exchange_type(), ExchangeType::IkeSaInit);
        assert!(p.flags().initiator() && !p.flags().response());
        assert_eq!(p.length(), 148);
        assert_eq!(
            Packet::new_checked(&SA_INIT[..27]).unwrap_err(),
            Error::Truncated(27)
        );
    }

    #[test]
    fn parse_sa_init() {
        assert_eq!(IkeMessage::parse(&SA_INIT).unwrap(), sa_init_repr());
    }

    #[test]
    fn emit_sa_init() {
        assert_eq!(sa_init_repr().to_bytes().unwrap(), SA_INIT.to_vec());
    }

    #[test]
    fn rejects_bad_lengths() {
        // Header length disagrees with the datagram.
        let mut b = SA_INIT.to_vec();
        b[27] = 149;
        assert_eq!(
            IkeMessage::parse(&b).unwrap_err(),
            Error::LengthMismatch {
                header: 149,
                datagram: 148
            }
        );
        // KE payload length runs past the end of the message.
        let mut b = SA_INIT.to_vec();
        b[28 + 48 + 3] = 200;
        assert_eq!(
            IkeMessage::parse(&b).unwrap_err(),
            Error::Payload {
                payload_type: 34,
                offset: 48,
                reason: Malformed::Overrun {
                    length: 200,
                    available: 148 - 28 - 48
                },
            }
        );
        // A payload length below the generic header size.
        let mut b = SA_INIT.to_vec();
        b[28 + 3] = 3;
        assert!(matches!(
            IkeMessage::parse(&b).unwrap_err(),
            Error::Payload {
                reason: Malformed::LengthTooSmall(3),
                ..
            }
        ));
        // The proposal claims five transforms but carries four.
        let mut b = SA_INIT.to_vec();
        b[28 + 4 + 7] = 5;
        assert!(matches!(
            IkeMessage::parse(&b).unwrap_err(),
            Error::Payload {
                reason: Malformed::Inconsistent("number of transforms"),
                ..
            }
        ));
        // Truncated datagram: header length fixed up, last payload cut.
        let mut b = SA_INIT[..140].to_vec();
        b[27] = 140;
        assert!(matches!(
            IkeMessage::parse(&b).unwrap_err(),
            Error::Payload {
                payload_type: 41,
                reason: Malformed::Overrun { .. },
                ..
            }
        ));
        // IKEv1 header.
        let mut b = SA_INIT.to_vec();
        b[17] = 0x10;
        assert_eq!(
            IkeMessage::parse(&b).unwrap_err(),
            Error::UnsupportedVersion(1)
        );
    }

    #[test]
    fn unknown_critical_payload_kept() {
        // Last payload (Notify) now says another payload of type 200 follows,
        // critical, with a 2-octet body.
        let mut b = SA_INIT.to_vec();
        b[28 + 48 + 40 + 20] = 200;
        b.extend_from_slice(&[0, 0x80, 0, 6, 0xca, 0xfe]);
        b[27] = 154;
        let m = IkeMessage::parse(&b).unwrap();
        assert_eq!(
            m.payloads.last(),
            Some(&Payload::Unknown(UnknownPayload {
                payload_type: 200,
                critical: true,
                body: vec![0xca, 0xfe],
            }))
        );
        assert_eq!(m.to_bytes().unwrap(), b);
    }

    #[test]
    fn encrypted_payload_ends_chain() {
        // IKE_AUTH request: SK payload whose first inner payload is IDi.
        let m = IkeMessage {
            header: Header {
                spi_r: 0x99,
                exchange_type: ExchangeType::IkeAuth,
                message_id: 1,
                ..sa_init_repr().header
            },
            payloads: vec![Payload::Encrypted(Encrypted {
                first_payload: PayloadType::IdInitiator,
                data: vec![7; 48],
            })],
        };
        let b = m.to_bytes().unwrap();
        assert_eq!(b[16], 46); // header: next = SK
        assert_eq!(b[28], 35); // SK: next = IDi (first inner payload)
        assert_eq!(IkeMessage::parse(&b).unwrap(), m);
        // Nothing may follow SK.
        let mut bad = b.clone();
        bad.extend_from_slice(&[0, 0, 0, 4]);
        let len = bad.len() as u8;
        bad[27] = len;
        assert!(matches!(
            IkeMessage::parse(&bad).unwrap_err(),
            Error::Payload {
                reason: Malformed::AfterEncrypted,
                ..
            }
        ));
        let mut two = m.clone();
        two.payloads.push(Payload::Nonce(vec![1]));
        assert_eq!(two.to_bytes().unwrap_err(), EmitError::EncryptedNotLast);
    }

    #[test]
    fn inner_chain_ids_ts_delete() {
        let chain = vec![
            Payload::IdI(Identification::Ipv4Addr([198, 18, 1, 10])),
            Payload::IdR(Identification::Fqdn(b"dva1.plex".to_vec())),
            Payload::Auth(Auth {
                method: AuthMethod::SharedKeyMic,
                data: vec![0x55; 32],
            }),
            Payload::TsI(vec![TrafficSelector::ipv4_host([198, 18, 1, 10])]),
            Payload::TsR(vec![TrafficSelector::Ipv4 {
                ip_protocol: 6,
                start_port: 80,
                end_port: 80,
                start: [198, 18, 0, 100],
                end: [198, 18, 0, 100],
            }]),
            Payload::Delete(Delete {
                protocol: ProtocolId::Esp,
                spi_size: 4,
                spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
            }),
        ];
        let mut buf = Vec::new();
        let first = emit_chain(&chain, &mut buf).unwrap();
        assert_eq!(first, PayloadType::IdInitiator);
        // IDi body: type 1, reserved, address.
        assert_eq!(&buf[4..12], &[1, 0, 0, 0, 198, 18, 1, 10]);
        assert_eq!(parse_chain(first, &buf).unwrap(), chain);
        // ID_IPV4_ADDR with five octets is malformed.
        let bad = [0, 0, 0, 13, 1, 0, 0, 0, 1, 2, 3, 4, 5];
        assert!(matches!(
            parse_chain(PayloadType::IdInitiator, &bad).unwrap_err(),
            Error::Payload {
                reason: Malformed::BadLength("ID_IPV4_ADDR"),
                ..
            }
        ));
        // A TS_IPV4_ADDR_RANGE of selector length 20 is malformed.
        let bad = [
            0, 0, 0, 28, 1, 0, 0, 0, 7, 0, 0, 20, 0, 0, 255, 255, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0,
            0,
        ];
        assert!(matches!(
            parse_chain(PayloadType::TsInitiator, &bad).unwrap_err(),
            Error::Payload {
                reason: Malformed::BadLength("TS_IPV4_ADDR_RANGE"),
                ..
            }
        ));
    }

    #[test]
    fn invalid_ke_notify() {
        let n = Notify::invalid_ke(DhId::Modp2048);
        assert_eq!(n.data, vec![0, 14]);
        assert_eq!(n.requested_group(), Some(DhId::Modp2048));
        assert!(n.notify_type.is_error());
        assert!(!NotifyType::NatDetectionSourceIp.is_error());
        assert_eq!(
            NotifyType::from(16430),
            NotifyType::Ikev2FragmentationSupported
        );
        assert_eq!(NotifyType::from(40000), NotifyType::Unknown(40000));
    }
}
