//! Why a message could not be parsed or emitted (RFC 7296 §2.21).

use thiserror::Error;

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
