//! The IKEv2 message parser (`wire::ike`, RFC 7296 §3) and the responder
//! behind it (`ike::Ike::handle_datagram`, as an owner's IKE runs it for
//! DVA1): a parsed message emits again and parses to itself; a sequence of
//! datagrams on 500 and 4500 never panics the responder. The responder's
//! RNG has a fixed seed, so the corpus's recorded exchange (made against
//! the same seed) gets past IKE_SA_INIT into the encrypted exchanges.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use plexnet::ike::{Identity, Ike, IkeConfig, PeerConfig};
use plexnet::time::Instant;
use plexnet::wire::ike::IkeMessage;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod world;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// DVA1's responder: the default proposals, a pre-shared key for the
/// client `c` (the seeding step's initiator uses the same).
pub fn responder() -> (Ike, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let mut config =
        IkeConfig::new(Identity::Ipv4(DVIPA), "default", "default").expect("the default proposals");
    config
        .peers
        .push(PeerConfig::new(Identity::Fqdn("c".into()), &b"k"[..]));
    (Ike::new(config, DVIPA, &mut rng), rng)
}

/// Parses `datagram` (without a non-ESP marker) and checks the round trip.
fn parse_round_trip(datagram: &[u8]) {
    let Ok(msg) = IkeMessage::parse(datagram) else {
        return;
    };
    let Ok(bytes) = msg.to_bytes() else {
        return;
    };
    let again = IkeMessage::parse(&bytes).expect("an emitted message parses");
    assert_eq!(again, msg, "parse(emit(x)) != x");
}

/// Records: bit 0 of the kind picks the port (500, or 4500 with the
/// non-ESP marker expected in front), bits 1..3 the time in seconds.
fn run(data: &[u8]) {
    let (mut ike, mut rng) = responder();
    let mut now = Instant::from_secs(10);
    for r in world::records(data, 16) {
        let port = if r.kind & 1 == 0 { 500 } else { 4500 };
        let datagram = match r.bytes {
            [0, 0, 0, 0, rest @ ..] if port == 4500 => rest,
            other => other,
        };
        parse_round_trip(datagram);
        now = Instant::from_secs(now.as_secs() + u64::from((r.kind >> 1) & 7));
        let from = SocketAddrV4::new(CLIENT, port);
        let _ = ike.handle_datagram(now, from, port, r.bytes, &mut rng);
        while ike.poll_transmit().is_some() {}
        while ike.poll_event().is_some() {}
        if ike.next_timeout().is_some_and(|t| t <= now) {
            ike.handle_timeout(now, &mut rng);
        }
    }
    let _ = ike.status();
}

fuzz_target!(|data: &[u8]| run(data));
