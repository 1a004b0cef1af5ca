//! Sending sealed ESP-in-UDP packets (RFC 3948) in bursts with UDP
//! segmentation offload (`UDP_SEGMENT`, "GSO"): one `sendmsg` carries up to
//! [`MAX_SEGMENTS`] ESP payloads of one size to one peer, and the kernel
//! passes the burst through its stack, the router and the veths as one
//! buffer, cutting it into datagrams only where it has to (a TUN with USO
//! takes it whole). A TCP super-segment read from the TUN (TSO) becomes
//! equal-sized segments, so their sealed packets are equal-sized too and go
//! out in one call instead of one per packet.
//!
//! [`gso_runs`] decides which sealed packets can share a call; it does no
//! I/O. [`send_run`] does the call.

use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::os::fd::AsRawFd;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn};
use tokio::net::UdpSocket;

use crate::wire::{ipv4, udp};

/// The kernel accepts at most 64 segments per `UDP_SEGMENT` send
/// (`UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;
/// Nor more than a UDP datagram's worth of payload in all.
const MAX_BYTES: usize = 65_507;
/// IPv4 without options, then UDP: where the ESP payload starts.
const HEADERS: usize = ipv4::HEADER_LEN + udp::HEADER_LEN;

/// A run of sealed packets that leave in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// Packets `start..end` are ESP in UDP from `src:sport` to
    /// `dst:dport`, all of `segment` payload bytes but the last, which
    /// may be shorter.
    Gso {
        start: usize,
        end: usize,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        segment: usize,
    },
    /// Packet `index` goes alone, as it is (raw ESP or AH, IP options, a
    /// size that fits no run).
    Single(usize),
}

/// The UDP endpoints and payload of an IPv4/UDP packet without IP options.
fn udp_parts(packet: &[u8]) -> Option<(SocketAddrV4, SocketAddrV4, &[u8])> {
    let ihl_ok = packet.first()? & 0x0f == 5;
    if !ihl_ok || *packet.get(9)? != 17 || packet.len() <= HEADERS {
        return None;
    }
    let addr =
        |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    let port = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]);
    let src = SocketAddrV4::new(addr(12), port(20));
    let dst = SocketAddrV4::new(addr(16), port(22));
    Some((src, dst, &packet[HEADERS..]))
}

/// Groups sealed packets, in order, into runs that can share one call:
/// ESP in UDP between the same endpoints, cut by [`size_runs`].
pub fn gso_runs(packets: &[Vec<u8>]) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < packets.len() {
        let Some((src, dst, _)) = udp_parts(&packets[i]) else {
            runs.push(Run::Single(i));
            i += 1;
            continue;
        };
        // The packets from `i` on with the same endpoints...
        let mut sizes = Vec::new();
        for p in &packets[i..] {
            match udp_parts(p) {
                Some((s, d, payload)) if s == src && d == dst => sizes.push(payload.len()),
                _ => break,
            }
        }
        // ...in as few calls as their sizes allow.
        for run in size_runs(&sizes) {
            runs.push(Run::Gso {
                start: i + run.start,
                end: i + run.end,
                src,
                dst,
                segment: sizes[run.start],
            });
        }
        i += sizes.len();
    }
    runs
}

/// Cuts payloads of `sizes` (in order) into runs that one `UDP_SEGMENT`
/// send can carry: every payload of the first's size but the last, which
/// may be shorter; at most [`MAX_SEGMENTS`] and [`MAX_BYTES`] in all.
pub fn size_runs(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let segment = sizes[start];
        let (mut end, mut bytes) = (start + 1, segment);
        while end < sizes.len() && end - start < MAX_SEGMENTS {
            let size = sizes[end];
            if size > segment || bytes + size > MAX_BYTES {
                break;
            }
            bytes += size;
            end += 1;
            if size < segment {
                // A shorter segment can only be the last of a run.
                break;
            }
        }
        runs.push(start..end);
        start = end;
    }
    runs
}

/// Sends the payloads of `packets` (a [`Run::Gso`]'s) to `dst` on `sock`
/// in one `sendmsg` with `UDP_SEGMENT`, waiting while the socket's buffer
/// is full.
pub async fn send_run(
    sock: &UdpSocket,
    dst: SocketAddrV4,
    segment: usize,
    packets: &[Vec<u8>],
) -> io::Result<()> {
    let payloads: Vec<IoSlice<'_>> = packets
        .iter()
        .map(|p| IoSlice::new(&p[HEADERS..]))
        .collect();
    send_segments(sock, dst, segment, &payloads).await
}

/// Sends `payloads`, all of `segment` bytes but the last, to `dst` on
/// `sock` as one buffer with `UDP_SEGMENT` (a single payload goes without
/// it), waiting while the socket's buffer is full.
pub async fn send_segments(
    sock: &UdpSocket,
    dst: SocketAddrV4,
    segment: usize,
    payloads: &[IoSlice<'_>],
) -> io::Result<()> {
    let to = SockaddrIn::from(dst);
    let gso = u16::try_from(segment).map_err(|_| io::Error::other("segment too large"))?;
    loop {
        sock.writable().await?;
        let cmsgs = [ControlMessage::UdpGsoSegments(&gso)];
        let cmsgs: &[ControlMessage<'_>] = if payloads.len() > 1 { &cmsgs } else { &[] };
        let sent = sock.try_io(tokio::io::Interest::WRITABLE, || {
            sendmsg(
                sock.as_raw_fd(),
                payloads,
                cmsgs,
                MsgFlags::empty(),
                Some(&to),
            )
            .map_err(io::Error::from)
        });
        match sent {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The payload of an IPv4/UDP packet (no IP options) to or from port
/// 4500: ESP in UDP (RFC 3948), or IKE there.
fn nat_t_payload(packet: &[u8]) -> Option<&[u8]> {
    let (src, dst, payload) = udp_parts(packet)?;
    let nat_t = crate::wire::udp_encap::NAT_T_PORT;
    (src.port() == nat_t || dst.port() == nat_t).then_some(payload)
}

/// Whether `packet` is IPv4/UDP (no IP options) to or from port 4500,
/// whose UDP checksum RFC 3948 §2.1 lets be zero.
pub fn is_nat_t(packet: &[u8]) -> bool {
    nat_t_payload(packet).is_some()
}

/// Cuts an ESP-in-UDP super-datagram that a TUN with USO handed over in
/// one read (virtio-net `GSO_UDP_L4`: one IPv4/UDP header, then payloads
/// of `gso_size` bytes, the last maybe shorter) into the datagrams the
/// sender meant, as the kernel's own USO split would: each gets the
/// header with its own lengths, the next IP identification and a fresh
/// IP header checksum. Datagram `i` goes into `out[i]`, its length into
/// `sizes[i]` (each buffer must hold its datagram); returns how many.
///
/// Only UDP to or from port 4500 (ESP in UDP and IKE there), whose UDP
/// checksum is left zero: RFC 3948 §2.1 says it "SHOULD be transmitted as
/// a zero value", so no payload byte is summed, where a generic split
/// (tun-rs's) checksums every byte. `None`: not such a datagram (IP
/// options, another port, too short), or more pieces than `out` holds;
/// the caller splits it the generic way.
pub fn split_esp_in_udp(
    input: &[u8],
    gso_size: usize,
    out: &mut [impl AsMut<[u8]>],
    sizes: &mut [usize],
) -> Option<usize> {
    let payload = nat_t_payload(input)?;
    if gso_size == 0 {
        return None;
    }
    let pieces = payload.len().div_ceil(gso_size);
    if pieces > out.len().min(sizes.len()) {
        return None;
    }
    let first_ident = u16::from_be_bytes([input[4], input[5]]);
    for (i, chunk) in payload.chunks(gso_size).enumerate() {
        let len = HEADERS + chunk.len();
        let buf = out[i].as_mut().get_mut(..len)?;
        buf[..HEADERS].copy_from_slice(&input[..HEADERS]);
        buf[HEADERS..].copy_from_slice(chunk);
        let total = u16::try_from(len).ok()?;
        let mut ip = ipv4::Packet::new_unchecked(&mut buf[..]);
        ip.set_total_len(total);
        ip.set_ident(first_ident.wrapping_add(i as u16));
        ip.fill_checksum();
        let mut u = udp::Packet::new_unchecked(&mut buf[ipv4::HEADER_LEN..]);
        u.set_len(total - ipv4::HEADER_LEN as u16);
        u.set_checksum(0);
        sizes[i] = usize::from(total);
    }
    Some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/UDP packet of `payload` bytes from `sport` to 4500.
    fn udp_packet(src: [u8; 4], dst: [u8; 4], sport: u16, payload: usize) -> Vec<u8> {
        let mut p = vec![0u8; HEADERS + payload];
        p[0] = 0x45;
        p[9] = 17;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&4500u16.to_be_bytes());
        p
    }

    const C: [u8; 4] = [198, 18, 1, 2];
    const D: [u8; 4] = [198, 18, 0, 100];

    fn gso(start: usize, end: usize, segment: usize) -> Run {
        Run::Gso {
            start,
            end,
            src: SocketAddrV4::new(C.into(), 4500),
            dst: SocketAddrV4::new(D.into(), 4500),
            segment,
        }
    }

    #[test]
    fn equal_segments_share_a_run_and_a_shorter_one_ends_it() {
        let mut ps: Vec<Vec<u8>> = (0..5).map(|_| udp_packet(C, D, 4500, 1400)).collect();
        ps.push(udp_packet(C, D, 4500, 600));
        ps.push(udp_packet(C, D, 4500, 1400));
        assert_eq!(gso_runs(&ps), vec![gso(0, 6, 1400), gso(6, 7, 1400)]);
    }

    #[test]
    fn a_longer_segment_another_peer_or_raw_esp_starts_anew() {
        let mut raw = udp_packet(C, D, 4500, 100);
        raw[9] = 50;
        let ps = vec![
            udp_packet(C, D, 4500, 100),
            udp_packet(C, D, 4500, 200),
            udp_packet(C, D, 4501, 200),
            raw,
            udp_packet(C, D, 4500, 100),
        ];
        let other_port = Run::Gso {
            start: 2,
            end: 3,
            src: SocketAddrV4::new(C.into(), 4501),
            dst: SocketAddrV4::new(D.into(), 4500),
            segment: 200,
        };
        assert_eq!(
            gso_runs(&ps),
            vec![
                gso(0, 1, 100),
                gso(1, 2, 200),
                other_port,
                Run::Single(3),
                gso(4, 5, 100)
            ]
        );
    }

    #[test]
    fn runs_stop_at_the_segment_and_byte_limits() {
        let ps: Vec<Vec<u8>> = (0..70).map(|_| udp_packet(C, D, 4500, 100)).collect();
        assert_eq!(gso_runs(&ps), vec![gso(0, 64, 100), gso(64, 70, 100)]);
        let big: Vec<Vec<u8>> = (0..50).map(|_| udp_packet(C, D, 4500, 1400)).collect();
        // 46 * 1400 = 64400 fits, 47 would not.
        assert_eq!(gso_runs(&big), vec![gso(0, 46, 1400), gso(46, 50, 1400)]);
    }

    /// A super-datagram as a TUN with USO hands it over: one header, the
    /// payloads back to back (each filled with its index), lengths of the
    /// whole, UDP checksum still partial.
    fn super_datagram(sport: u16, dport: u16, payloads: &[usize]) -> Vec<u8> {
        let total: usize = payloads.iter().sum();
        let mut p = udp_packet(C, D, sport, 0);
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        for (i, n) in payloads.iter().enumerate() {
            p.extend(std::iter::repeat_n(i as u8, *n));
        }
        p[2..4].copy_from_slice(&((HEADERS + total) as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0xfffeu16.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + total) as u16).to_be_bytes());
        p[26..28].copy_from_slice(&0x1234u16.to_be_bytes());
        p
    }

    #[test]
    fn esp_in_udp_splits_like_the_kernel_with_zero_udp_checksums() {
        let input = super_datagram(4500, 4500, &[1400, 1400, 200]);
        let mut out = vec![vec![0u8; 2048]; 4];
        let mut sizes = vec![0; 4];
        assert_eq!(
            split_esp_in_udp(&input, 1400, &mut out, &mut sizes),
            Some(3)
        );
        for (i, want) in [1400usize, 1400, 200].into_iter().enumerate() {
            let d = &out[i][..sizes[i]];
            assert_eq!(d.len(), HEADERS + want);
            let ip = ipv4::Packet::new_checked(d).unwrap();
            assert!(ip.verify_checksum(), "datagram {i}: IP header checksum");
            assert_eq!(usize::from(ip.total_len()), d.len());
            // The identification goes on from the first, wrapping.
            assert_eq!(ip.ident(), 0xfffeu16.wrapping_add(i as u16));
            assert_eq!(&d[12..24], &input[12..24], "addresses and ports kept");
            assert_eq!(usize::from(u16::from_be_bytes([d[24], d[25]])), 8 + want);
            assert_eq!(&d[26..28], &[0, 0], "RFC 3948: UDP checksum zero");
            assert!(d[HEADERS..].iter().all(|b| *b == i as u8), "payload {i}");
        }
    }

    #[test]
    fn only_esp_in_udp_that_fits_is_split_here() {
        let mut out = vec![vec![0u8; 2048]; 2];
        let mut sizes = vec![0; 2];
        let dns = super_datagram(5353, 53, &[100, 100]);
        assert_eq!(split_esp_in_udp(&dns, 100, &mut out, &mut sizes), None);
        let three = super_datagram(4500, 4500, &[100, 100, 100]);
        assert_eq!(split_esp_in_udp(&three, 100, &mut out, &mut sizes), None);
        let mut options = super_datagram(4500, 4500, &[100]);
        options[0] = 0x46;
        assert_eq!(split_esp_in_udp(&options, 100, &mut out, &mut sizes), None);
        let ike_reply = super_datagram(4500, 1024, &[100, 50]);
        assert_eq!(
            split_esp_in_udp(&ike_reply, 100, &mut out, &mut sizes),
            Some(2)
        );
        let mut small = vec![vec![0u8; 64]; 2];
        assert_eq!(
            split_esp_in_udp(&ike_reply, 100, &mut small, &mut sizes),
            None
        );
    }
}
