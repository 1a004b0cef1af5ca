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

mod auth;
mod error;
mod header;
mod notify;
mod numbers;
mod payload;
mod sa;
#[cfg(test)]
mod tests;
mod ts;

pub use auth::*;
pub use error::*;
pub use header::*;
pub use notify::*;
pub use numbers::*;
pub use payload::*;
pub use sa::*;
pub use ts::*;
