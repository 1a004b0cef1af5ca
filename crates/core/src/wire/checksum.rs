//! The Internet checksum (RFC 1071), shared by IPv4, ICMP, TCP, UDP and GRE.
//!
//! The checksum is the 16-bit ones' complement of the ones' complement sum of
//! the data taken as big-endian 16-bit words (RFC 791 §3.1, RFC 1071 §1); an
//! odd trailing byte is padded with a zero byte on the right (RFC 1071 §4.1).

use core::net::Ipv4Addr;

use super::IpProtocol;

/// Adds `data` to a running ones' complement sum, unfolded (RFC 1071 §4.1).
///
/// The accumulator is 64 bits wide, so it cannot overflow for any buffer an
/// IP packet can hold; [`fold`] reduces it to 16 bits.
#[inline]
pub fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(8);
    for chunk in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = u64::from_be_bytes(w);
        // Four 16-bit words per u64: add the halves so no carry is lost.
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    let mut pairs = words.remainder().chunks_exact(2);
    for pair in &mut pairs {
        acc += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a 64-bit accumulator into a 16-bit ones' complement sum (RFC 1071 §4.1).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop guarantees the value fits.
    acc as u16
}

/// The ones' complement sum of `data`, not yet complemented.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// The Internet checksum of `data`: the complement of [`sum`].
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// The sum of the IPv4 pseudo-header used by TCP and UDP (RFC 793 §3.1,
/// RFC 768): source, destination, zero, protocol, upper-layer length.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u64 {
    let mut acc = accumulate(0, &src.octets());
    acc = accumulate(acc, &dst.octets());
    acc += u64::from(u8::from(protocol));
    acc += u64::from(length);
    acc
}

/// The pseudo-header an upper-layer checksum covers (TCP, UDP). Only IPv4
/// for now; an IPv6 variant (RFC 8200 §8.1) slots in here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PseudoHeader {
    /// RFC 793 §3.1 / RFC 768 pseudo-header.
    V4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
    },
}

impl PseudoHeader {
    /// The unfolded sum of this pseudo-header for `protocol` and an
    /// upper-layer length of `length` bytes.
    #[inline]
    pub fn sum(&self, protocol: IpProtocol, length: u16) -> u64 {
        match *self {
            PseudoHeader::V4 { src, dst } => pseudo_header_v4(src, dst, protocol, length),
        }
    }

    /// The checksum of an upper-layer message `data` (checksum field zeroed
    /// or, when verifying, included) under this pseudo-header.
    pub fn checksum(&self, protocol: IpProtocol, data: &[u8]) -> u16 {
        finish(accumulate(self.sum(protocol, data.len() as u16), data))
    }
}

/// Combines partial sums and complements the result.
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn wide_accumulator_matches_word_sum() {
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut acc = 0u32;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |b| u32::from(*b));
            acc += hi | lo;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        assert_eq!(u32::from(sum(&data)), acc);
    }

    #[test]
    fn checksum_of_data_with_checksum_is_zero() {
        let mut data = vec![0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0, 0, 0x11, 0x22];
        let c = checksum(&data);
        data.extend_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }
}
