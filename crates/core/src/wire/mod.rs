//! The `wire` layer: packet views and `Repr`s (see the layer map in `lib.rs`).
//!
//! Each protocol follows the smoltcp pattern:
//!
//! - a `Packet<T: AsRef<[u8]>>` view over a buffer, built with `new_unchecked`
//!   (no checks) or `new_checked` (checks every length an accessor relies on,
//!   so accessors never panic afterwards), field getters, and setters when
//!   `T: AsMut<[u8]>`; byte ranges live in a private `mod field`;
//! - a `Repr`, the parsed high-level form, with `parse`, `buffer_len` and
//!   `emit`.
//!
//! Protocol numbers and message types that plexnet does not know are kept
//! (`IpProtocol::Unknown(n)`), never rejected. Nothing here does I/O.

pub mod ah;
pub mod arp;
pub mod build;
pub mod checksum;
pub mod esp;
pub mod flow;
pub mod gre;
pub mod icmp;
pub mod ike;
pub mod ipv4;
pub mod tcp;
pub mod udp;
pub mod udp_encap;
pub mod xcf;

pub use ah::{AhPacket, AhRepr};
pub use checksum::PseudoHeader;
pub use esp::{EspPacket, EspRepr};
pub use gre::{GrePacket, GreRepr};
pub use icmp::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use tcp::{TcpFlags, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};
pub use udp_encap::UdpEncapRepr;

/// Why a buffer could not be viewed or parsed as a packet.
///
/// The variants say who is at fault: `Truncated` and `Malformed` are the
/// sender's, `Checksum` is corruption on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than a header or a length field claims.
    #[error("packet truncated")]
    Truncated,
    /// A field holds a value the protocol forbids (bad version, a header
    /// length smaller than the fixed header, ...).
    #[error("malformed packet")]
    Malformed,
    /// The checksum does not verify.
    #[error("bad checksum")]
    Checksum,
}

/// The result type of `wire` parsing.
pub type Result<T> = core::result::Result<T, WireError>;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"; the IPv4
/// Protocol field of RFC 791 §3.1 and the IPv6 Next Header of RFC 8200 §3).
///
/// Numbers plexnet does not know are kept in [`IpProtocol::Unknown`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(from = "u8", into = "u8")]
pub enum IpProtocol {
    /// ICMP, RFC 792.
    Icmp,
    /// IGMP, RFC 1112.
    Igmp,
    /// IPv4 in IP (the ESP Next Header of a tunnel-mode IPv4 packet), RFC 2003.
    IpIp,
    /// TCP, RFC 793.
    Tcp,
    /// UDP, RFC 768.
    Udp,
    /// IPv6 in IP (a tunnel-mode IPv6 packet), RFC 2473.
    Ipv6,
    /// GRE, RFC 2784.
    Gre,
    /// ESP, RFC 4303.
    Esp,
    /// AH, RFC 4302.
    Ah,
    /// ICMPv6, RFC 4443.
    Icmpv6,
    /// "No next header" (RFC 8200 §4.7), used by ESP dummy packets (RFC 4303 §2.6).
    NoNextHeader,
    /// Any other protocol number, kept as is.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    #[inline]
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Icmp,
            2 => Self::Igmp,
            4 => Self::IpIp,
            6 => Self::Tcp,
            17 => Self::Udp,
            41 => Self::Ipv6,
            47 => Self::Gre,
            50 => Self::Esp,
            51 => Self::Ah,
            58 => Self::Icmpv6,
            59 => Self::NoNextHeader,
            other => Self::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    #[inline]
    fn from(value: IpProtocol) -> Self {
        match value {
            IpProtocol::Icmp => 1,
            IpProtocol::Igmp => 2,
            IpProtocol::IpIp => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6 => 41,
            IpProtocol::Gre => 47,
            IpProtocol::Esp => 50,
            IpProtocol::Ah => 51,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::NoNextHeader => 59,
            IpProtocol::Unknown(other) => other,
        }
    }
}

impl core::fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Icmp => f.write_str("ICMP"),
            Self::Igmp => f.write_str("IGMP"),
            Self::IpIp => f.write_str("IPIP"),
            Self::Tcp => f.write_str("TCP"),
            Self::Udp => f.write_str("UDP"),
            Self::Ipv6 => f.write_str("IPv6"),
            Self::Gre => f.write_str("GRE"),
            Self::Esp => f.write_str("ESP"),
            Self::Ah => f.write_str("AH"),
            Self::Icmpv6 => f.write_str("ICMPv6"),
            Self::NoNextHeader => f.write_str("NoNxt"),
            Self::Unknown(n) => write!(f, "proto-{n}"),
        }
    }
}

/// EtherTypes (IEEE 802 numbers, IANA "ieee-802-numbers"), as GRE's
/// Protocol Type (RFC 2784 §2.4). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EtherType {
    /// IPv4, 0x0800.
    Ipv4,
    /// ARP, 0x0806.
    Arp,
    /// IPv6, 0x86DD.
    Ipv6,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => Self::Ipv4,
            0x0806 => Self::Arp,
            0x86dd => Self::Ipv6,
            other => Self::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> Self {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

#[inline]
pub(crate) fn read_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

#[inline]
pub(crate) fn write_u16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[inline]
pub(crate) fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[inline]
pub(crate) fn write_u32(data: &mut [u8], at: usize, value: u32) {
    data[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::IpProtocol;

    #[test]
    fn every_protocol_number_round_trips() {
        for n in 0..=u8::MAX {
            assert_eq!(u8::from(IpProtocol::from(n)), n);
        }
        assert_eq!(IpProtocol::from(50), IpProtocol::Esp);
        assert_eq!(IpProtocol::from(253), IpProtocol::Unknown(253));
    }
}
