//! The target stack's XCF data input (Figs. 7 and 9) in figure4: GRE
//! (RFC 2784) and GRE-in-UDP (RFC 8086) datagrams on MVS2's data link from
//! MVS1 go through `Image::handle_xcf_datagram` (the link check, the GRE
//! header, the shadow SA's open, the inbound filter, lifesize), with the
//! ESP SA pair installed in every shadow cache. No input may panic.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use plexnet::sysplex::config::XcfForwarding;
use plexnet::sysplex::image::XcfDatagram;
use plexnet::time::Instant;

mod world;

/// Records: kind % 4 picks
/// 0: the bytes as a GRE-in-IPv4 datagram on MVS2's link from MVS1,
/// 1: the bytes as a GRE-in-UDP body, from MVS1 (or, kind bit 4, from the
///    address in its first four bytes: a spoof),
/// 2: the bytes as the inner packet of a well-formed GRE datagram from
///    MVS1 (kind bit 4: GRE in UDP), the SA's SPI put in front when kind
///    bit 5 is set, so ESP reaches the shadow SA,
/// 3: a real sealed packet of the client's (a SYN to port 80), its bytes
///    overwritten by the record from offset 20 on, inside well-formed GRE.
fn run(data: &[u8]) {
    let mut w = world::world();
    let mvs1 = w.images["MVS1"].xcf;
    for r in world::records(data, 16) {
        let now = Instant::from_millis(w.now_ms);
        match r.kind % 4 {
            0 => target(&mut w).handle_xcf_datagram(now, mvs1, XcfDatagram::Gre(r.bytes)),
            1 => {
                let (src, body) = match r.bytes {
                    [a, b, c, d, rest @ ..] if r.kind & 16 != 0 => {
                        (Ipv4Addr::new(*a, *b, *c, *d), rest)
                    }
                    _ => (mvs1, r.bytes),
                };
                let d = XcfDatagram::GreInUdp { src, body };
                target(&mut w).handle_xcf_datagram(now, mvs1, d);
            }
            2 => {
                w.xcf_forwarding = forwarding(r.kind);
                let mut inner = Vec::new();
                if r.kind & 32 != 0 {
                    inner.extend_from_slice(&world::SPI_IN.to_be_bytes());
                }
                inner.extend_from_slice(r.bytes);
                w.inject_gre("MVS1", mvs1, "MVS2", &inner);
            }
            _ => {
                w.xcf_forwarding = forwarding(r.kind);
                let sealed = sealed_syn(&mut w, r.bytes);
                w.inject_gre("MVS1", mvs1, "MVS2", &sealed);
            }
        }
        drain(&mut w);
    }
}

fn target(w: &mut plexnet::sim::World) -> &mut plexnet::sysplex::image::Image {
    &mut w.images.get_mut("MVS2").expect("figure4 has MVS2").image
}

fn forwarding(kind: u8) -> XcfForwarding {
    if kind & 16 != 0 {
        XcfForwarding::GreInUdp
    } else {
        XcfForwarding::Gre
    }
}

/// A SYN the client sealed (its SA, its next sequence number), with
/// `patch` written over it from the end of the outer IPv4 header.
fn sealed_syn(w: &mut plexnet::sim::World, patch: &[u8]) -> Vec<u8> {
    // The routing stack forwards the SYN itself too; the patched copy
    // comes after it, so an unchanged one is a replay at MVS2.
    w.client_tcp(65000, 1, 0, plexnet::wire::TcpFlags::SYN, &[]);
    let mut sealed = w.client.last_sent.clone().unwrap_or_default();
    for (b, p) in sealed.iter_mut().skip(20).zip(patch) {
        *b = *p;
    }
    sealed
}

/// Takes what MVS2 produced out of its queues (the simulator collects
/// only after its own events).
fn drain(w: &mut plexnet::sim::World) {
    let image = target(w);
    while image.poll_transmit().is_some() {}
    while image.poll_tun_write().is_some() {}
    while image.poll_event().is_some() {}
}

fuzz_target!(|data: &[u8]| run(data));
