//! NAT traversal: the NAT_DETECTION_*_IP hashes (RFC 7296 §2.23) and the
//! demultiplexing of UDP port 4500 (RFC 3948 §2): IKE behind the 4-octet
//! non-ESP marker, ESP in UDP, and NAT-keepalives.

use core::net::SocketAddrV4;

use sha1::{Digest, Sha1};

/// The IKE port (RFC 7296 §2).
pub const IKE_PORT: u16 = 500;
/// The NAT-T port: IKE with the non-ESP marker and ESP in UDP (RFC 3948 §2,
/// RFC 7296 §2.23).
pub const NATT_PORT: u16 = 4500;
/// The non-ESP marker: four zero octets where ESP has its SPI (RFC 3948 §2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// The NAT-keepalive payload (RFC 3948 §2.3).
pub const KEEPALIVE: u8 = 0xff;

/// The Notification Data of NAT_DETECTION_SOURCE_IP and
/// NAT_DETECTION_DESTINATION_IP: SHA-1(SPIi | SPIr | IP | port) with the
/// SPIs of the message's IKE header (SPIr is zero in the first IKE_SA_INIT
/// request) and the source or destination address (RFC 7296 §2.23).
pub fn nat_detection_hash(spi_i: u64, spi_r: u64, addr: SocketAddrV4) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(spi_i.to_be_bytes());
    h.update(spi_r.to_be_bytes());
    h.update(addr.ip().octets());
    h.update(addr.port().to_be_bytes());
    h.finalize().into()
}

/// What a UDP datagram received on port 4500 carries (RFC 3948 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Udp4500<'a> {
    /// An IKE message, the non-ESP marker removed.
    Ike(&'a [u8]),
    /// An ESP packet (starts with a non-zero SPI): for the data path.
    Esp(&'a [u8]),
    /// A NAT-keepalive, to be ignored.
    Keepalive,
    /// Too short to be any of them.
    Invalid,
}

/// Classifies the payload of a UDP datagram on port 4500.
pub fn classify_4500(payload: &[u8]) -> Udp4500<'_> {
    match payload {
        [KEEPALIVE] => Udp4500::Keepalive,
        [0, 0, 0, 0, rest @ ..] => Udp4500::Ike(rest),
        p if p.len() >= 8 => Udp4500::Esp(p),
        _ => Udp4500::Invalid,
    }
}

/// The UDP payload that carries `ike` from `local_port`: with the non-ESP
/// marker on any port but 500 (RFC 3948 §2.2, RFC 7296 §2.23).
pub fn udp_payload(local_port: u16, ike: &[u8]) -> Vec<u8> {
    if local_port == IKE_PORT {
        return ike.to_vec();
    }
    let mut out = Vec::with_capacity(ike.len() + 4);
    out.extend_from_slice(&NON_ESP_MARKER);
    out.extend_from_slice(ike);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// The NAT_DETECTION_DESTINATION_IP of the captured strongSwan
    /// IKE_SA_INIT request (tests/ike_strongswan_interop.rs): SPIi
    /// 1df012344443797b, SPIr 0, destination 198.18.200.2:500.
    #[test]
    fn matches_strongswan_destination_hash() {
        let h = nat_detection_hash(
            0x1df0_1234_4443_797b,
            0,
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 200, 2), 500),
        );
        assert_eq!(
            h.to_vec(),
            crate::ike::prf::tests::hex("80acaa8ea48d55ff63e65162b71a2d3b8e148de9")
        );
    }

    #[test]
    fn demultiplexes_port_4500() {
        assert_eq!(classify_4500(&[0xff]), Udp4500::Keepalive);
        assert_eq!(classify_4500(&[0, 0, 0, 0, 1, 2]), Udp4500::Ike(&[1, 2]));
        let esp = [0, 0, 1, 0, 0, 0, 0, 1, 9];
        assert_eq!(classify_4500(&esp), Udp4500::Esp(&esp));
        assert_eq!(classify_4500(&[0, 0, 1]), Udp4500::Invalid);
        assert_eq!(classify_4500(&[]), Udp4500::Invalid);
        assert_eq!(udp_payload(500, &[7]), vec![7]);
        assert_eq!(udp_payload(4500, &[7]), vec![0, 0, 0, 0, 7]);
    }
}
