//! The IKE header (RFC 7296 §3.1): a zero-copy [`Packet`] view, the
//! owned [`Header`], and the whole [`IkeMessage`].

use super::*;

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

    pub(super) fn emit(&self, next_payload: u8, length: u32, out: &mut Vec<u8>) {
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
