//! The routing stack's inbound path (Fig. 8) in figure4: whole packets from
//! the client's LAN to DVA1 reach MVS1's `Image::handle_tun_burst` (IP
//! filter, peek, DCT, distribution, GRE to a target, the target's open),
//! with an ESP SA installed so a packet with its SPI reaches the crypto.
//! No input may panic, and no packet that did not authenticate at a target
//! may move its replay window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plexnet::wire::Ipv4Packet;

mod world;

/// Records: kind % 5 picks
/// 0: the bytes as a whole packet,
/// 1: ESP to DVA1 under the SA's SPI (sequence number, IV, ciphertext, ICV
///    from the input),
/// 2: the same behind UDP 4500 (NAT-T),
/// 3: the bytes as the inner packet, sealed with the client's SA,
/// 4: time passes (the first byte in 100 ms steps): DCT entries age.
fn run(data: &[u8]) {
    let mut w = world::world();
    let client = w.client.addr;
    for r in world::records(data, 16) {
        match r.kind % 5 {
            0 => w.client_raw("fuzz", r.bytes.to_vec()),
            1 => {
                let p = world::ipv4_to_dva1(client, 50, Some(world::SPI_IN), r.bytes);
                w.client_raw("fuzz esp", p);
            }
            2 => {
                let mut udp = Vec::with_capacity(r.bytes.len() + 12);
                let len = (8 + 4 + r.bytes.len()).min(usize::from(u16::MAX)) as u16;
                udp.extend_from_slice(&[0x11, 0x94, 0x11, 0x94]);
                udp.extend_from_slice(&len.to_be_bytes());
                udp.extend_from_slice(&[0, 0]);
                udp.extend_from_slice(&world::SPI_IN.to_be_bytes());
                udp.extend_from_slice(r.bytes);
                w.client_raw("fuzz nat-t", world::ipv4_to_dva1(client, 17, None, &udp));
            }
            3 if sealable(r.bytes) => w.client_inner(r.bytes),
            3 => {}
            _ => {
                let step = u64::from(r.bytes.first().copied().unwrap_or(1)) * 100;
                let until = w.now_ms + step;
                w.advance_to(until);
            }
        }
    }
}

/// What `esp::seal` takes as an inner packet: IPv4 whose header and
/// lengths hold (the simulator's client `expect`s its seal to work).
fn sealable(bytes: &[u8]) -> bool {
    bytes.len() <= 2000
        && bytes.first().map(|b| b >> 4) == Some(4)
        && Ipv4Packet::new_checked(bytes).is_ok()
}

fuzz_target!(|data: &[u8]| run(data));
