//! ARP for IPv4 over Ethernet (RFC 826), and the gratuitous ARP a stack
//! sends when it takes a VIPA over (RFC 5227 §3 "ARP Announcement": a
//! request whose sender and target protocol addresses are both the
//! address, target hardware address zero), so the LAN's neighbours point
//! the address at the new owner's link at once.
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Hardware type (1)      |     Protocol type (0x0800)    |
//! |  HLEN (6)     |  PLEN (4)     |          Operation            |
//! |   sender hardware address (6) ... sender protocol address (4) |
//! |   target hardware address (6) ... target protocol address (4) |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use super::{read_u16, write_u16, Result, WireError};

/// Length of an ARP packet for IPv4 over Ethernet.
pub const PACKET_LEN: usize = 28;
/// Length of an Ethernet II header.
pub const ETHERNET_LEN: usize = 14;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// RFC 826 `ar$hrd` for Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// RFC 826 `ar$pro` for IPv4.
const PTYPE_IPV4: u16 = 0x0800;

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// RFC 826 `ar$op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            n => Operation::Unknown(n),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(n) => n,
        }
    }
}

/// An IPv4-over-Ethernet ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: Operation,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// The RFC 5227 announcement of `ip` at `mac`.
    pub fn announcement(mac: [u8; 6], ip: Ipv4Addr) -> Self {
        ArpRepr {
            operation: Operation::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: [0; 6],
            target_ip: ip,
        }
    }

    /// Parses an ARP packet; anything but Ethernet/IPv4 is malformed here.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let b = b.get(..PACKET_LEN).ok_or(WireError::Truncated)?;
        if read_u16(b, field::HTYPE.start) != HTYPE_ETHERNET
            || read_u16(b, field::PTYPE.start) != PTYPE_IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(WireError::Malformed);
        }
        let ip = |r: core::ops::Range<usize>| {
            Ipv4Addr::from(<[u8; 4]>::try_from(&b[r]).unwrap_or_default())
        };
        let mac = |r: core::ops::Range<usize>| <[u8; 6]>::try_from(&b[r]).unwrap_or_default();
        Ok(ArpRepr {
            operation: read_u16(b, field::OPER.start).into(),
            sender_mac: mac(field::SHA),
            sender_ip: ip(field::SPA),
            target_mac: mac(field::THA),
            target_ip: ip(field::TPA),
        })
    }

    /// Writes the packet into the first [`PACKET_LEN`] bytes of `b`.
    pub fn emit(&self, b: &mut [u8]) {
        write_u16(b, field::HTYPE.start, HTYPE_ETHERNET);
        write_u16(b, field::PTYPE.start, PTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        write_u16(b, field::OPER.start, self.operation.into());
        b[field::SHA].copy_from_slice(&self.sender_mac);
        b[field::SPA].copy_from_slice(&self.sender_ip.octets());
        b[field::THA].copy_from_slice(&self.target_mac);
        b[field::TPA].copy_from_slice(&self.target_ip.octets());
    }

    /// The packet in a broadcast Ethernet II frame from `sender_mac`.
    pub fn broadcast_frame(&self) -> Vec<u8> {
        let mut f = vec![0u8; ETHERNET_LEN + PACKET_LEN];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&self.sender_mac);
        write_u16(&mut f, 12, ETHERTYPE_ARP);
        self.emit(&mut f[ETHERNET_LEN..]);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x15];
    const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

    /// An RFC 5227 announcement of 198.18.0.100 at 02:00:00:00:00:15.
    static ANNOUNCE: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet, IPv4, request
        0x02, 0, 0, 0, 0, 0x15, 198, 18, 0, 100, // sender
        0, 0, 0, 0, 0, 0, 198, 18, 0, 100, // target
    ];

    #[test]
    fn emits_an_announcement() {
        let mut b = [0u8; PACKET_LEN];
        ArpRepr::announcement(MAC, DVA1).emit(&mut b);
        assert_eq!(b, ANNOUNCE);
    }

    #[test]
    fn parses_an_announcement() {
        let r = ArpRepr::parse(&ANNOUNCE).expect("parses");
        assert_eq!(r, ArpRepr::announcement(MAC, DVA1));
    }

    #[test]
    fn broadcast_frame_has_the_ethernet_header() {
        let f = ArpRepr::announcement(MAC, DVA1).broadcast_frame();
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[ETHERNET_LEN..], &ANNOUNCE);
    }

    #[test]
    fn truncated_and_foreign_packets_are_refused() {
        assert_eq!(ArpRepr::parse(&ANNOUNCE[..27]), Err(WireError::Truncated));
        let mut ipv6 = ANNOUNCE;
        ipv6[2..4].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(ArpRepr::parse(&ipv6), Err(WireError::Malformed));
    }

    #[test]
    fn unknown_operations_are_kept() {
        let mut b = ANNOUNCE;
        b[7] = 9;
        assert_eq!(
            ArpRepr::parse(&b).expect("parses").operation,
            Operation::Unknown(9)
        );
    }
}
