//! Bad input never panics the IKE endpoint and never moves an SA it should
//! not: arbitrary datagrams on 500 and 4500, mutations of a real exchange,
//! and authentic (correctly encrypted) requests with arbitrary payloads.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use plexnet::ike::keys::{Encr, Integ};
use plexnet::ike::sk::SkKeys;
use plexnet::ike::{Identity, Ike, IkeConfig, IkeEvent, IkeSaId, PeerConfig};
use plexnet::time::Instant;
use plexnet::wire::ike::{
    Delete, DhId, ExchangeType, Flags, Header, KeyExchange, Notify, NotifyType, Payload, Proposal,
    ProtocolId, Sa, TrafficSelector, Transform, TransformId, UnknownPayload,
};
use proptest::collection::vec;
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const NOW: Instant = Instant::from_secs(10);

/// A (initiator) and B (responder), each with its own RNG so B can be
/// replayed alone: (A, B, A's RNG, B's RNG).
fn endpoints() -> (Ike, Ike, ChaCha20Rng, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let mut rng_b = ChaCha20Rng::seed_from_u64(12);
    let a = IkeConfig::new(
        Identity::Fqdn("c".into()),
        "aes128-sha256-x25519",
        "aes128-sha1",
    )
    .unwrap();
    let mut b = IkeConfig::new(Identity::Ipv4(DVIPA), "default", "default").unwrap();
    b.peers
        .push(PeerConfig::new(Identity::Fqdn("c".into()), &b"k"[..]));
    let a = Ike::new(a, CLIENT, &mut rng);
    let b = Ike::new(b, DVIPA, &mut rng_b);
    (a, b, rng, rng_b)
}

/// Runs a deterministic exchange and returns what A sent (port, bytes).
fn recorded_exchange() -> Vec<(u16, Vec<u8>)> {
    let (mut a, mut b, mut rng, mut rng_b) = endpoints();
    let id = a.initiate(
        NOW,
        SocketAddrV4::new(DVIPA, 500),
        PeerConfig::new(Identity::Ipv4(DVIPA), &b"k"[..]),
        &mut rng,
    );
    let mut sent = Vec::new();
    let mut step = |a: &mut Ike, b: &mut Ike, rng: &mut ChaCha20Rng| {
        for _ in 0..20 {
            while let Some(t) = a.poll_transmit() {
                sent.push((t.remote.port(), t.payload.clone()));
                let from = SocketAddrV4::new(CLIENT, t.local_port);
                let _ = b.handle_datagram(NOW, from, t.remote.port(), &t.payload, &mut rng_b);
            }
            while let Some(t) = b.poll_transmit() {
                let from = SocketAddrV4::new(DVIPA, t.local_port);
                let _ = a.handle_datagram(NOW, from, t.remote.port(), &t.payload, rng);
            }
        }
    };
    step(&mut a, &mut b, &mut rng);
    let child = std::iter::from_fn(|| a.poll_event())
        .find_map(|e| match e {
            IkeEvent::ChildSaEstablished(c) => Some(c.child),
            _ => None,
        })
        .unwrap();
    a.rekey_child(NOW, child, &mut rng).unwrap();
    step(&mut a, &mut b, &mut rng);
    a.rekey_ike(NOW, id, &mut rng).unwrap();
    step(&mut a, &mut b, &mut rng);
    a.dpd(NOW, id, &mut rng).unwrap();
    step(&mut a, &mut b, &mut rng);
    a.delete_ike(NOW, id, &mut rng).unwrap();
    step(&mut a, &mut b, &mut rng);
    assert!(sent.len() >= 8, "{}", sent.len());
    sent
}

/// A and B with an established IKE SA, and A's SK keys (to B, from B).
fn established() -> (Ike, Ike, ChaCha20Rng, IkeSaId, SkKeys, SkKeys) {
    let (mut a, mut b, mut rng, _) = endpoints();
    let id = a.initiate(
        NOW,
        SocketAddrV4::new(DVIPA, 500),
        PeerConfig::new(Identity::Ipv4(DVIPA), &b"k"[..]),
        &mut rng,
    );
    for _ in 0..4 {
        while let Some(t) = a.poll_transmit() {
            let from = SocketAddrV4::new(CLIENT, t.local_port);
            let _ = b.handle_datagram(NOW, from, t.remote.port(), &t.payload, &mut rng);
        }
        while let Some(t) = b.poll_transmit() {
            let from = SocketAddrV4::new(DVIPA, t.local_port);
            let _ = a.handle_datagram(NOW, from, t.remote.port(), &t.payload, &mut rng);
        }
    }
    let line = a.wireshark_ike_keys(id).unwrap();
    let f: Vec<&str> = line.split(',').collect();
    let hex = |s: &str| plexnet::ipsec::Key::from_hex(s).unwrap().0;
    let k = |e: &str, i: &str| SkKeys {
        encr: Encr::AesCbc { key_bits: 128 },
        integ: Some(Integ::HmacSha256_128),
        sk_e: hex(e).into(),
        sk_a: hex(i).into(),
    };
    let (to_b, from_b) = (k(f[2], f[5]), k(f[3], f[6]));
    (a, b, rng, id, to_b, from_b)
}

fn any_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (
            any::<u16>(),
            vec(any::<u8>(), 0..40),
            vec(any::<u8>(), 0..6),
            0u8..5
        )
            .prop_map(|(t, data, spi, proto)| Payload::Notify(Notify {
                protocol: ProtocolId::from(proto),
                spi,
                notify_type: NotifyType::from(t),
                data,
            })),
        (0u8..5, vec(vec(any::<u8>(), 4), 0..4)).prop_map(|(p, spis)| {
            let protocol = ProtocolId::from(p);
            let spi_size = if protocol == ProtocolId::Ike { 0 } else { 4 };
            Payload::Delete(Delete {
                protocol,
                spi_size,
                spis: if spi_size == 0 { vec![] } else { spis },
            })
        }),
        vec(any::<u8>(), 0..300).prop_map(Payload::Nonce),
        (any::<u16>(), vec(any::<u8>(), 0..100)).prop_map(|(g, data)| Payload::Ke(KeyExchange {
            group: DhId::from(g),
            data
        })),
        (
            1u8..4,
            vec(any::<u8>(), 0..9),
            vec((1u8..6, any::<u16>()), 0..6)
        )
            .prop_map(|(proto, spi, ts)| Payload::Sa(Sa {
                proposals: vec![Proposal {
                    number: 1,
                    protocol: ProtocolId::from(proto),
                    spi,
                    transforms: ts
                        .into_iter()
                        .map(|(t, id)| Transform::new(match t {
                            1 => TransformId::Encr(id.into()),
                            2 => TransformId::Prf(id.into()),
                            3 => TransformId::Integ(id.into()),
                            4 => TransformId::Dh(id.into()),
                            _ => TransformId::Esn(id.into()),
                        }))
                        .collect(),
                }]
            })),
        (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u8>()).prop_map(|(s, e, p)| {
            Payload::TsI(vec![TrafficSelector::Ipv4 {
                ip_protocol: p,
                start_port: 0,
                end_port: 65535,
                start: s,
                end: e,
            }])
        }),
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, e)| {
            Payload::TsR(vec![TrafficSelector::Ipv4 {
                ip_protocol: 0,
                start_port: 0,
                end_port: 65535,
                start: s,
                end: e,
            }])
        }),
        (200u8..250, any::<bool>(), vec(any::<u8>(), 0..8)).prop_map(|(t, c, body)| {
            Payload::Unknown(UnknownPayload {
                payload_type: t,
                critical: c,
                body,
            })
        }),
    ]
}

/// Replaying A's datagrams into a fresh B reproduces the whole exchange,
/// so `mutated_exchange` attacks real states, not a stale IKE_SA_INIT.
#[test]
fn replay_is_faithful() {
    let sent = recorded_exchange();
    let (_, mut b, _, mut rng) = endpoints();
    for (port, bytes) in &sent {
        let from = SocketAddrV4::new(CLIENT, *port);
        b.handle_datagram(NOW, from, *port, bytes, &mut rng)
            .expect("replayed message accepted");
    }
    let events: Vec<IkeEvent> = std::iter::from_fn(|| b.poll_event()).collect();
    for want in [
        "IkeSaEstablished",
        "ChildSaRekeyed",
        "IkeSaRekeyed",
        "IkeSaDeleted",
    ] {
        assert!(
            events.iter().any(|e| format!("{e:?}").starts_with(want)),
            "{want} missing: {events:#?}"
        );
    }
    assert_eq!(b.ike_sa_count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary datagrams: handled or dropped, never a panic, never state.
    #[test]
    fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..700), port in prop_oneof![Just(500u16), Just(4500u16)]) {
        let (_, mut b, _, mut rng) = endpoints();
        let from = SocketAddrV4::new(CLIENT, port);
        let _ = b.handle_datagram(NOW, from, port, &bytes, &mut rng);
        // With an IKE header that has a plausible length field.
        let mut fixed = bytes.clone();
        if fixed.len() >= 28 {
            let len = fixed.len() as u32;
            fixed[17] = 0x20;
            fixed[24..28].copy_from_slice(&len.to_be_bytes());
            let _ = b.handle_datagram(NOW, from, 500, &fixed, &mut rng);
        }
        b.handle_timeout(NOW + Duration::from_secs(3600), &mut rng);
        prop_assert!(b.poll_event().is_none());
    }

    /// A real exchange with one message mutated (bytes overwritten, cut,
    /// or extended): no panic, and no event from the mutated message but
    /// what the unmutated prefix gives.
    #[test]
    fn mutated_exchange(
        which in 0usize..8,
        edits in vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let sent = recorded_exchange();
        let which = which % sent.len();
        let (_, mut b, _, mut rng) = endpoints();
        // Replay B's input up to `which`; B's RNG is consumed the same way.
        for (port, bytes) in &sent[..which] {
            let _ = b.handle_datagram(NOW, SocketAddrV4::new(CLIENT, *port), *port, bytes, &mut rng);
        }
        let (port, mut bytes) = sent[which].clone();
        for (at, v) in edits {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = v;
            }
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        let _ = b.handle_datagram(NOW, SocketAddrV4::new(CLIENT, port), port, &bytes, &mut rng);
        for t in [1u64, 40, 4000, 40000] {
            b.handle_timeout(NOW + Duration::from_secs(t), &mut rng);
        }
        while b.poll_event().is_some() {}
        prop_assert!(b.ike_sa_count() <= 2);
    }

    /// Authentic requests with arbitrary payloads, exchange types and
    /// message IDs against an established SA: no panic; the SA survives
    /// unless the request deleted it, and answers a DPD afterwards.
    #[test]
    fn authentic_garbage(
        payloads in vec(any_payload(), 0..6),
        exchange in prop_oneof![Just(34u8), Just(35u8), Just(36u8), Just(37u8), any::<u8>()],
        msg_id in prop_oneof![Just(2u32), 0u32..5, any::<u32>()],
    ) {
        let (mut a, mut b, mut rng, id, to_b, _from_b) = established();
        let st = a.status()[0].clone();
        let header = Header {
            spi_i: st.spi_i,
            spi_r: st.spi_r,
            major_version: 2,
            minor_version: 0,
            exchange_type: ExchangeType::from(exchange),
            flags: Flags(Flags::INITIATOR),
            message_id: msg_id,
        };
        let Ok(raw) = to_b.seal(&header, &payloads, &mut rng) else {
            return Ok(());
        };
        let from = SocketAddrV4::new(CLIENT, 500);
        let _ = b.handle_datagram(NOW, from, 500, &raw, &mut rng);
        let deleted = std::iter::from_fn(|| b.poll_event())
            .any(|e| matches!(e, IkeEvent::IkeSaDeleted { .. } | IkeEvent::AuthFailed { .. }));
        while let Some(t) = b.poll_transmit() {
            let _ = a.handle_datagram(NOW, SocketAddrV4::new(DVIPA, 500), 500, &t.payload, &mut rng);
        }
        prop_assert!(b.ike_sa_count() <= 2);
        if !deleted && b.ike_sa_count() == 1 {
            // If B consumed ID 2, A's next request would be out of step;
            // a fresh DPD from A must still not panic anything.
            let _ = a.dpd(NOW, id, &mut rng);
            while let Some(t) = a.poll_transmit() {
                let _ = b.handle_datagram(NOW, from, 500, &t.payload, &mut rng);
            }
        }
    }
}
