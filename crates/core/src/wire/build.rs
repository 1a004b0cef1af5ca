//! Whole packets built from their Repr structs, for the simulator's
//! scripted peers and for the protocol core's tests: one builder, so the
//! sim and the unit tests put the same bytes on the wire.

use std::net::Ipv4Addr;

use super::{ipv4, tcp, IpProtocol, PseudoHeader, TcpFlags};

/// An IPv4 (RFC 791) TCP segment (RFC 9293 §3.1) with correct checksums.
#[allow(clippy::too_many_arguments)]
pub fn tcp_packet(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    let t = tcp::Repr {
        src_port: sport,
        dst_port: dport,
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 64240,
        urgent_at: 0,
        options: &[],
        payload,
    };
    let ip = ipv4::Repr::new(src, dst, IpProtocol::Tcp, t.buffer_len());
    let mut out = vec![0u8; ip.buffer_len() + t.buffer_len()];
    let mut p = ipv4::Packet::new_unchecked(&mut out[..]);
    ip.emit(&mut p);
    t.emit(
        &mut tcp::Packet::new_unchecked(p.payload_mut()),
        &PseudoHeader::V4 { src, dst },
    );
    out
}
