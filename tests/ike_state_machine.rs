//! The IKEv2 state machine in process: an initiator and a responder `Ike`
//! joined by an in-memory network (optionally with a NAT between them),
//! for every proposal set of the issue, failures, rekeys, deletes,
//! liveness checks, NAT-T, cookies and bad input.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use plexnet::ike::proposal::{parse_proposals, Protocol};
use plexnet::ike::sk::SkKeys;
use plexnet::ike::{
    ChildSaId, ChildSaInfo, DeleteReason, DropReason, Identity, Ike, IkeConfig, IkeEvent, IkeSaId,
    PeerConfig, Role, TsConfig,
};
use plexnet::ipsec::{open_esp, seal_esp, ReplayWindow, Sa};
use plexnet::time::Instant;
use plexnet::wire::ike::{
    ExchangeType, Flags, Header, IkeMessage, NotifyType, Payload, TrafficSelector, UnknownPayload,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const PSK: &[u8] = b"plexnet-test-psk";

fn client_id() -> Identity {
    Identity::Fqdn("client1.plex".into())
}

fn dvipa_id() -> Identity {
    Identity::Ipv4(DVIPA)
}

fn config(local: Identity, ike: &str, esp: &str) -> IkeConfig {
    let mut c = IkeConfig::new(local, ike, esp).expect("config");
    c.rekey_jitter = Duration::ZERO;
    c
}

/// Initiator A (client) and responder B (DVIPA).
struct Net {
    a: Ike,
    b: Ike,
    now: Instant,
    rng: ChaCha20Rng,
    a_events: Vec<IkeEvent>,
    b_events: Vec<IkeEvent>,
    /// A NAT in front of A: source ports shifted by this much.
    nat: Option<u16>,
    /// Drop the next n datagrams from B to A.
    drop_b_to_a: usize,
    /// Drop everything from B.
    b_dead: bool,
    /// Everything delivered, (from A?, local_port at the receiver, payload).
    wire: Vec<(bool, u16, Vec<u8>)>,
}

impl Net {
    fn new(a: IkeConfig, b: IkeConfig) -> Net {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let a = Ike::new(a, CLIENT, &mut rng);
        let b = Ike::new(b, DVIPA, &mut rng);
        Net {
            a,
            b,
            now: Instant::from_secs(1000),
            rng,
            a_events: Vec::new(),
            b_events: Vec::new(),
            nat: None,
            drop_b_to_a: 0,
            b_dead: false,
            wire: Vec::new(),
        }
    }

    /// Standard pair: both sides with the same proposals, B knows A's PSK.
    fn pair(ike: &str, esp: &str) -> Net {
        let a = config(client_id(), ike, esp);
        let mut b = config(dvipa_id(), ike, esp);
        b.peers.push(PeerConfig::new(client_id(), PSK));
        Net::new(a, b)
    }

    fn peer_b() -> PeerConfig {
        PeerConfig::new(dvipa_id(), PSK)
    }

    fn initiate(&mut self) -> IkeSaId {
        let id = self.a.initiate(
            self.now,
            SocketAddrV4::new(DVIPA, 500),
            Net::peer_b(),
            &mut self.rng,
        );
        self.pump();
        id
    }

    /// Delivers datagrams both ways until none is left.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                assert_eq!(t.remote.ip(), &DVIPA);
                let src_port = t.local_port + self.nat.unwrap_or(0);
                self.wire.push((true, t.remote.port(), t.payload.clone()));
                let _ = self.b.handle_datagram(
                    self.now,
                    SocketAddrV4::new(CLIENT, src_port),
                    t.remote.port(),
                    &t.payload,
                    &mut self.rng,
                );
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                assert_eq!(t.remote.ip(), &CLIENT);
                if self.b_dead {
                    continue;
                }
                if self.drop_b_to_a > 0 {
                    self.drop_b_to_a -= 1;
                    continue;
                }
                let dst_port = t.remote.port() - self.nat.unwrap_or(0);
                self.wire.push((false, dst_port, t.payload.clone()));
                let _ = self.a.handle_datagram(
                    self.now,
                    SocketAddrV4::new(DVIPA, t.local_port),
                    dst_port,
                    &t.payload,
                    &mut self.rng,
                );
            }
            while let Some(e) = self.a.poll_event() {
                self.a_events.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                self.b_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("the two endpoints never go quiet");
    }

    /// Advances time to the next timer of either side and fires it.
    fn tick(&mut self) {
        let next = [self.a.next_timeout(), self.b.next_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("a timer");
        self.now = self.now.max(next);
        self.a.handle_timeout(self.now, &mut self.rng);
        self.b.handle_timeout(self.now, &mut self.rng);
        self.pump();
    }

    fn children(events: &[IkeEvent]) -> Vec<ChildSaInfo> {
        events
            .iter()
            .filter_map(|e| match e {
                IkeEvent::ChildSaEstablished(c) => Some(c.clone()),
                IkeEvent::ChildSaRekeyed { new, .. } => Some(new.clone()),
                _ => None,
            })
            .collect()
    }

    fn deleted(events: &[IkeEvent]) -> Vec<ChildSaId> {
        events
            .iter()
            .filter_map(|e| match e {
                IkeEvent::ChildSaDeleted { child, .. } => Some(*child),
                _ => None,
            })
            .collect()
    }

    fn established(events: &[IkeEvent]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, IkeEvent::IkeSaEstablished { .. }))
            .count()
    }
}

/// A's outbound SA equals B's inbound one and vice versa; both are valid
/// engine SAs, and a packet sealed by one side opens on the other.
fn check_pair(a: &ChildSaInfo, b: &ChildSaInfo) {
    // Lifetimes are each side's policy, and behind a NAT the ports each
    // side sees differ; everything else must be identical.
    let same = |x: &plexnet::ipsec::SaConfig| plexnet::ipsec::SaConfig {
        lifetimes: Default::default(),
        udp_encap: None,
        ..x.clone()
    };
    assert_eq!(same(&a.outbound), same(&b.inbound), "A->B SA");
    assert_eq!(same(&a.inbound), same(&b.outbound), "B->A SA");
    assert_eq!(a.udp_encap.is_some(), b.udp_encap.is_some());
    assert_ne!(a.inbound.spi, a.outbound.spi);
    let packet = ipv4_udp(CLIENT, DVIPA, b"hello DVIPA");
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let out_sa = Sa::new(a.outbound.clone()).expect("valid outbound SA");
    let in_sa = Sa::new(b.inbound.clone()).expect("valid inbound SA");
    let mut sealed = Vec::new();
    seal_esp(&out_sa, 1, &mut rng, &packet, &mut sealed).expect("seal");
    let mut window = ReplayWindow::new(128, false);
    let mut opened = Vec::new();
    open_esp(&in_sa, &mut window, &sealed, &mut opened).expect("open");
    assert_eq!(opened, packet);
}

/// A minimal IPv4/UDP packet with a correct header checksum.
fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, data: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + data.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
    ];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    p[10..12].copy_from_slice(&ck.to_be_bytes());
    let ulen = 8 + data.len();
    p.extend_from_slice(&[0x13, 0x88, 0x13, 0x89, (ulen >> 8) as u8, ulen as u8, 0, 0]);
    p.extend_from_slice(data);
    p
}

fn established_pair(net: &mut Net) -> (IkeSaId, ChildSaInfo, ChildSaInfo) {
    let id = net.initiate();
    assert_eq!(Net::established(&net.a_events), 1, "A: {:?}", net.a_events);
    assert_eq!(Net::established(&net.b_events), 1, "B: {:?}", net.b_events);
    let a = Net::children(&net.a_events);
    let b = Net::children(&net.b_events);
    assert_eq!(
        (a.len(), b.len()),
        (1, 1),
        "{:?} / {:?}",
        net.a_events,
        net.b_events
    );
    check_pair(&a[0], &b[0]);
    assert_eq!(a[0].role, Role::Initiator);
    assert_eq!(b[0].role, Role::Responder);
    (id, a[0].clone(), b[0].clone())
}

#[test]
fn every_proposal_set_of_the_issue() {
    for (ike, esp) in [
        ("aes128-sha256-x25519", "aes128-sha1"),
        ("aes256-sha256-modp2048", "aes256-sha256"),
        ("aes128-sha256-ecp256", "aes128gcm16"),
        ("default", "default"),
    ] {
        let mut net = Net::pair(ike, esp);
        let (_, a, _) = established_pair(&mut net);
        let want = parse_proposals(Protocol::Esp, esp).unwrap();
        assert_eq!(
            a.outbound.enc.as_str(),
            match want[0].encr[0] {
                plexnet::ike::keys::Encr::AesCbc { key_bits: 128 } => "aes128",
                plexnet::ike::keys::Encr::AesCbc { key_bits: 256 } => "aes256",
                _ => "aes128gcm16",
            },
            "{ike} / {esp}"
        );
        assert_eq!(a.outbound.replay_window, 128);
        assert!(a.udp_encap.is_none(), "no NAT here");
        assert_eq!(
            a.local_ts,
            vec![TrafficSelector::ipv4_host(CLIENT.octets())]
        );
        assert_eq!(
            a.remote_ts,
            vec![TrafficSelector::ipv4_host(DVIPA.octets())]
        );
    }
}

#[test]
fn every_transform_combination_against_defaults() {
    // The responder runs strongSwan's defaults; the initiator proposes one
    // transform set at a time.
    let mut n = 0;
    for encr in ["aes128", "aes192", "aes256", "aes128gcm16", "aes256gcm16"] {
        for integ in ["sha1", "sha256", "sha384", "sha512"] {
            let group = ["x25519", "ecp256", "ecp384", "modp2048"][n % 4];
            n += 1;
            let ike = if encr.contains("gcm") {
                format!("{encr}-prf{integ}-{group}")
            } else {
                format!("{encr}-{integ}-{group}")
            };
            let esp = if encr.contains("gcm") {
                encr.to_string()
            } else {
                format!("{encr}-{integ}")
            };
            let a = config(client_id(), &ike, &esp);
            let mut b = config(dvipa_id(), "default", "default");
            b.peers.push(PeerConfig::new(client_id(), PSK));
            let mut net = Net::new(a, b);
            let (_, a, _) = established_pair(&mut net);
            assert_eq!(a.outbound.enc.as_str(), encr, "{ike} {esp}");
        }
    }
    // MODP 3072 and 4096 once each (slow in debug builds).
    for group in ["modp3072", "modp4096"] {
        let mut net = Net::pair(&format!("aes128-sha256-{group}"), "aes128-sha256");
        established_pair(&mut net);
    }
}

#[test]
fn wrong_psk_fails_and_leaves_no_sa() {
    let a = config(client_id(), "aes128-sha256-x25519", "aes128-sha1");
    let mut b = config(dvipa_id(), "aes128-sha256-x25519", "aes128-sha1");
    b.peers
        .push(PeerConfig::new(client_id(), &b"not-the-psk"[..]));
    let mut net = Net::new(a, b);
    let id = net.initiate();
    assert!(net.b_events.iter().any(|e| matches!(
        e,
        IkeEvent::AuthFailed { local: true, id: Some(i), .. } if *i == client_id()
    )));
    assert!(net
        .a_events
        .iter()
        .any(|e| matches!(e, IkeEvent::AuthFailed { local: false, .. })));
    assert!(net.a_events.contains(&IkeEvent::IkeSaDeleted {
        ike_sa: id,
        reason: DeleteReason::AuthFailed
    }));
    assert_eq!(Net::established(&net.a_events), 0);
    assert_eq!(Net::established(&net.b_events), 0);
    assert!(Net::children(&net.a_events).is_empty() && Net::children(&net.b_events).is_empty());
    assert_eq!((net.a.ike_sa_count(), net.b.ike_sa_count()), (0, 0));
    assert_eq!(net.b.half_open(), 0);

    // An unknown identity fails the same way.
    let a = config(Identity::Fqdn("stranger".into()), "default", "default");
    let mut b = config(dvipa_id(), "default", "default");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    net.initiate();
    assert_eq!((net.a.ike_sa_count(), net.b.ike_sa_count()), (0, 0));

    // The responder's AUTH fails at the initiator: it says so and both go.
    let a = config(client_id(), "default", "default");
    let mut b = config(dvipa_id(), "default", "default");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    let mut wrong = Net::peer_b();
    wrong.psk = b"other".to_vec();
    net.a
        .initiate(net.now, SocketAddrV4::new(DVIPA, 500), wrong, &mut net.rng);
    net.pump();
    // B authenticated A (A's AUTH used "other", B knows PSK): B refuses.
    assert_eq!((net.a.ike_sa_count(), net.b.ike_sa_count()), (0, 0));
}

#[test]
fn initiator_rejects_bad_responder_auth() {
    // Both sides know A by the same PSK, but B's identity at A differs:
    // A rejects the IDr/AUTH, sends AUTHENTICATION_FAILED, and B removes
    // its established SA again.
    let a = config(client_id(), "default", "default");
    let mut b = config(dvipa_id(), "default", "default");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    let mut expect = Net::peer_b();
    expect.id = Identity::Fqdn("someone-else".into());
    net.a
        .initiate(net.now, SocketAddrV4::new(DVIPA, 500), expect, &mut net.rng);
    net.pump();
    // B answers IKE_AUTH only if IDr matches it; A sent IDr someone-else.
    assert_eq!((net.a.ike_sa_count(), net.b.ike_sa_count()), (0, 0));
    assert!(net
        .a_events
        .iter()
        .any(|e| matches!(e, IkeEvent::AuthFailed { .. })));
}

#[test]
fn invalid_ke_round_trip() {
    // A sends KE for Curve25519 first; B only accepts MODP 2048.
    let a = config(client_id(), "aes128-sha256-x25519-modp2048", "aes128-sha1");
    let mut b = config(dvipa_id(), "aes128-sha256-modp2048", "aes128-sha1");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    net.b.enable_trace();
    established_pair(&mut net);
    let trace: Vec<String> = std::iter::from_fn(|| net.b.poll_trace())
        .map(|t| t.summary)
        .collect();
    assert_eq!(
        trace[1], "IKE_SA_INIT response 0 [ N(INVAL_KE) ]",
        "{trace:#?}"
    );
    assert!(trace[2].starts_with("IKE_SA_INIT request 0 [ SA KE No"));
}

#[test]
fn no_proposal_chosen() {
    let a = config(client_id(), "aes128-sha1-modp2048", "aes128-sha1");
    let mut b = config(dvipa_id(), "aes256-sha384-ecp384", "aes128-sha1");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    let id = net.initiate();
    assert_eq!(
        net.a_events,
        vec![IkeEvent::IkeSaDeleted {
            ike_sa: id,
            reason: DeleteReason::Refused(NotifyType::NoProposalChosen)
        }]
    );
    assert_eq!((net.a.ike_sa_count(), net.b.ike_sa_count()), (0, 0));

    // The IKE SA is fine but no ESP proposal matches: the IKE SA stands,
    // the child fails on both sides.
    let a = config(client_id(), "default", "aes256-sha512");
    let mut b = config(dvipa_id(), "default", "aes128-sha1");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    net.initiate();
    assert_eq!(Net::established(&net.a_events), 1);
    for events in [&net.a_events, &net.b_events] {
        assert!(events.contains(&IkeEvent::ChildSaFailed {
            ike_sa: IkeSaId(1),
            notify: NotifyType::NoProposalChosen
        }));
        assert!(Net::children(events).is_empty());
    }
}

#[test]
fn retransmitted_request_gets_cached_response() {
    let mut net = Net::pair("aes128-sha256-x25519", "aes128-sha1");
    net.b.enable_trace();
    // Lose B's IKE_AUTH response (the 2nd datagram B sends).
    net.a.initiate(
        net.now,
        SocketAddrV4::new(DVIPA, 500),
        Net::peer_b(),
        &mut net.rng,
    );
    // IKE_SA_INIT both ways.
    let t = net.a.poll_transmit().unwrap();
    net.b
        .handle_datagram(
            net.now,
            SocketAddrV4::new(CLIENT, 500),
            500,
            &t.payload,
            &mut net.rng,
        )
        .unwrap();
    let init_resp = net.b.poll_transmit().unwrap();
    // B gets the same IKE_SA_INIT again: same response, no new state.
    net.b
        .handle_datagram(
            net.now,
            SocketAddrV4::new(CLIENT, 500),
            500,
            &t.payload,
            &mut net.rng,
        )
        .unwrap();
    assert_eq!(net.b.poll_transmit().unwrap().payload, init_resp.payload);
    assert_eq!(net.b.ike_sa_count(), 1);
    net.a
        .handle_datagram(
            net.now,
            SocketAddrV4::new(DVIPA, 500),
            500,
            &init_resp.payload,
            &mut net.rng,
        )
        .unwrap();
    net.drop_b_to_a = 1;
    net.pump();
    assert_eq!(Net::established(&net.b_events), 1);
    assert_eq!(Net::established(&net.a_events), 0);
    // A retransmits IKE_AUTH; B answers from its cache.
    net.tick();
    assert_eq!(Net::established(&net.a_events), 1);
    assert_eq!(Net::children(&net.b_events).len(), 1, "processed once");
    let trace: Vec<String> = std::iter::from_fn(|| net.b.poll_trace())
        .map(|t| t.summary)
        .collect();
    assert!(
        trace.iter().any(|t| t == "retransmit response 1"),
        "{trace:#?}"
    );
    // B sent IKE_AUTH responses twice (one lost), keyed once.
    assert_eq!(
        trace
            .iter()
            .filter(|t| t.starts_with("IKE_AUTH response 1"))
            .count(),
        1
    );
    check_pair(
        &Net::children(&net.a_events)[0],
        &Net::children(&net.b_events)[0],
    );
}

#[test]
fn peer_gone_after_retransmissions() {
    let mut net = Net::pair("aes128-sha256-x25519", "aes128-sha1");
    let (id, child, _) = established_pair(&mut net);
    net.b_dead = true;
    net.a.dpd(net.now, id, &mut net.rng).unwrap();
    net.pump();
    let start = net.now;
    while !net
        .a_events
        .iter()
        .any(|e| matches!(e, IkeEvent::IkeSaDeleted { .. }))
    {
        net.tick();
        assert!(net.now - start < Duration::from_secs(200));
    }
    // 2+4+8+16+32+64 s of backoff.
    assert_eq!(net.now - start, Duration::from_secs(126));
    assert!(net.a_events.contains(&IkeEvent::IkeSaDeleted {
        ike_sa: id,
        reason: DeleteReason::Timeout
    }));
    assert_eq!(Net::deleted(&net.a_events), vec![child.child]);
    assert_eq!(net.a.ike_sa_count(), 0);
}

#[test]
fn cookies_bound_a_flood() {
    let a = config(client_id(), "aes128-sha256-x25519", "aes128-sha1");
    let mut b = config(dvipa_id(), "aes128-sha256-x25519", "aes128-sha1");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    b.cookie_threshold = 4;
    b.half_open_limit = 8;
    let mut net = Net::new(a, b);
    // A flood of IKE_SA_INIT from 2000 source ports of a spoofed address:
    // nobody returns the cookies.
    let mut flooder = Ike::new(
        config(client_id(), "aes128-sha256-x25519", "aes128-sha1"),
        CLIENT,
        &mut net.rng,
    );
    let mut cookies = 0;
    for port in 0..2000u16 {
        flooder.initiate(
            net.now,
            SocketAddrV4::new(DVIPA, 500),
            Net::peer_b(),
            &mut net.rng,
        );
        let t = flooder.poll_transmit().unwrap();
        let _ = net.b.handle_datagram(
            net.now,
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 7, 7), 10000 + port),
            500,
            &t.payload,
            &mut net.rng,
        );
        while let Some(r) = net.b.poll_transmit() {
            let m = IkeMessage::parse(&r.payload).unwrap();
            if m.notifies().any(|n| n.notify_type == NotifyType::Cookie) {
                cookies += 1;
            }
        }
    }
    assert_eq!(net.b.half_open(), 4);
    assert_eq!(net.b.ike_sa_count(), 4, "state only below the threshold");
    assert_eq!(cookies, 1996);
    // A real initiator returns the cookie and gets through.
    net.b.enable_trace();
    established_pair(&mut net);
    let trace: Vec<String> = std::iter::from_fn(|| net.b.poll_trace())
        .map(|t| t.summary)
        .collect();
    assert_eq!(trace[1], "IKE_SA_INIT response 0 [ N(COOKIE) ]");
    assert!(trace[2].starts_with("IKE_SA_INIT request 0 [ N(COOKIE) SA KE No"));
    // Half-open SAs expire.
    net.now += Duration::from_secs(31);
    net.b.handle_timeout(net.now, &mut net.rng);
    assert_eq!(net.b.half_open(), 0);
    assert_eq!(net.b.ike_sa_count(), 1);
}

#[test]
fn child_rekey_without_and_with_pfs() {
    for (esp, pfs) in [("aes128-sha256", false), ("aes128-sha256-ecp256", true)] {
        let mut net = Net::pair("aes128-sha256-x25519", esp);
        net.a.enable_trace();
        let (_, a0, b0) = established_pair(&mut net);
        // A rekeys, then B rekeys the new pair.
        for initiator_is_a in [true, false] {
            let (old_a, old_b) = (
                Net::children(&net.a_events).last().unwrap().clone(),
                Net::children(&net.b_events).last().unwrap().clone(),
            );
            let (na, nb) = (net.a_events.len(), net.b_events.len());
            if initiator_is_a {
                net.a
                    .rekey_child(net.now, old_a.child, &mut net.rng)
                    .unwrap();
            } else {
                net.b
                    .rekey_child(net.now, old_b.child, &mut net.rng)
                    .unwrap();
            }
            net.pump();
            for (events, old) in [(&net.a_events[na..], &old_a), (&net.b_events[nb..], &old_b)] {
                // The new pair comes first, the old one is deleted after.
                assert!(
                    matches!(&events[0], IkeEvent::ChildSaRekeyed { old: o, old_spis, .. }
                        if *o == old.child && *old_spis == old.spis()),
                    "{events:?}"
                );
                assert!(
                    matches!(&events[1], IkeEvent::ChildSaDeleted { child, spis, .. }
                        if *child == old.child && *spis == old.spis()),
                    "{events:?}"
                );
                assert_eq!(events.len(), 2);
            }
            let (a1, b1) = (
                Net::children(&net.a_events).last().unwrap().clone(),
                Net::children(&net.b_events).last().unwrap().clone(),
            );
            check_pair(&a1, &b1);
            assert_ne!(a1.inbound.enc_key, old_a.inbound.enc_key);
            assert_ne!(a1.outbound.spi, old_a.outbound.spi);
        }
        let trace: Vec<String> = std::iter::from_fn(|| net.a.poll_trace())
            .map(|t| t.summary)
            .collect();
        let rekey = trace
            .iter()
            .find(|t| t.starts_with("CREATE_CHILD_SA request"))
            .unwrap();
        assert_eq!(rekey.contains(" KE "), pfs, "{rekey}");
        assert!(rekey.contains("N(REKEY_SA)"), "{rekey}");
        assert_ne!(a0.inbound.spi, b0.inbound.spi);
        assert_eq!(net.a.status()[0].children.len(), 1);
        assert_eq!(net.b.status()[0].children.len(), 1);
    }
}

#[test]
fn child_rekey_pfs_invalid_ke() {
    // A's PFS group is ecp256 first, B insists on modp2048: INVALID_KE in
    // CREATE_CHILD_SA, then success.
    let a = config(client_id(), "default", "aes128-sha256-ecp256-modp2048");
    let mut b = config(dvipa_id(), "default", "aes128-sha256-modp2048");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    let (_, a0, _) = established_pair(&mut net);
    net.a.enable_trace();
    net.a.rekey_child(net.now, a0.child, &mut net.rng).unwrap();
    net.pump();
    let trace: Vec<String> = std::iter::from_fn(|| net.a.poll_trace())
        .map(|t| t.summary)
        .collect();
    assert!(
        trace.iter().any(|t| t.contains("N(INVAL_KE)")),
        "{trace:#?}"
    );
    check_pair(
        Net::children(&net.a_events).last().unwrap(),
        Net::children(&net.b_events).last().unwrap(),
    );
    assert_eq!(Net::deleted(&net.a_events), vec![a0.child]);
}

#[test]
fn ike_rekey_moves_children() {
    let mut net = Net::pair("aes256-sha256-modp2048", "aes256-sha256");
    let (id, a0, _) = established_pair(&mut net);
    let before = net.a.status()[0].clone();
    let key_line = net.a.wireshark_ike_keys(id).unwrap();
    net.a.rekey_ike(net.now, id, &mut net.rng).unwrap();
    net.pump();
    for events in [&net.a_events, &net.b_events] {
        assert!(events
            .iter()
            .any(|e| matches!(e, IkeEvent::IkeSaRekeyed { ike_sa, .. } if *ike_sa == id)));
        assert!(
            Net::deleted(events).is_empty(),
            "children survive: {events:?}"
        );
        assert!(!events
            .iter()
            .any(|e| matches!(e, IkeEvent::IkeSaDeleted { .. })));
    }
    // The old IKE SA is gone on both sides after the DELETE.
    assert_eq!((net.a.ike_sa_count(), net.b.ike_sa_count()), (1, 1));
    let after = net.a.status()[0].clone();
    assert_eq!(after.id, id);
    assert_ne!((after.spi_i, after.spi_r), (before.spi_i, before.spi_r));
    assert_eq!(after.children, vec![a0.child]);
    assert_eq!(net.b.status()[0].spi_i, after.spi_i);
    assert_ne!(net.a.wireshark_ike_keys(id).unwrap(), key_line);
    assert_eq!(
        net.a.wireshark_ike_keys(id),
        net.b.wireshark_ike_keys(net.b.status()[0].id)
    );
    // The new IKE SA works: B rekeys the IKE SA again, A rekeys the child.
    let b_id = net.b.status()[0].id;
    net.b.rekey_ike(net.now, b_id, &mut net.rng).unwrap();
    net.pump();
    assert_eq!((net.a.ike_sa_count(), net.b.ike_sa_count()), (1, 1));
    net.a.rekey_child(net.now, a0.child, &mut net.rng).unwrap();
    net.pump();
    check_pair(
        Net::children(&net.a_events).last().unwrap(),
        Net::children(&net.b_events).last().unwrap(),
    );
    net.a.dpd(net.now, id, &mut net.rng).unwrap();
    net.pump();
    assert!(net.a.next_timeout().is_some());
}

#[test]
fn rekey_on_time_and_on_bytes() {
    let mut a = config(client_id(), "aes128-sha256-x25519", "aes128-sha1");
    a.child_lifetime.rekey_time = Some(Duration::from_secs(600));
    a.child_lifetime.rekey_bytes = Some(1_000_000);
    a.ike_lifetime.rekey_time = Some(Duration::from_secs(900));
    let mut b = config(dvipa_id(), "aes128-sha256-x25519", "aes128-sha1");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    let (_, a0, _) = established_pair(&mut net);
    // Bytes first: 999_999 is not enough, one more is.
    net.a
        .child_bytes_processed(net.now, a0.child, 999_999, 700, &mut net.rng)
        .unwrap();
    net.pump();
    assert_eq!(Net::children(&net.a_events).len(), 1);
    net.a
        .child_bytes_processed(net.now, a0.child, 1, 1, &mut net.rng)
        .unwrap();
    net.pump();
    assert_eq!(Net::children(&net.a_events).len(), 2);
    assert_eq!(Net::deleted(&net.b_events), vec![a0.child]);
    // Then time: the new child rekeys 600 s later, the IKE SA at 900 s.
    let t0 = net.now;
    while Net::children(&net.a_events).len() < 3 {
        net.tick();
    }
    assert_eq!(net.now - t0, Duration::from_secs(600));
    let t1 = net.now;
    while !net
        .a_events
        .iter()
        .any(|e| matches!(e, IkeEvent::IkeSaRekeyed { .. }))
    {
        net.tick();
    }
    assert!(net.now - t1 <= Duration::from_secs(300));
    check_pair(
        Net::children(&net.a_events).last().unwrap(),
        Net::children(&net.b_events).last().unwrap(),
    );
}

#[test]
fn delete_child_and_ike() {
    let mut net = Net::pair("aes128-sha256-ecp256", "aes128gcm16");
    let (id, a0, b0) = established_pair(&mut net);
    net.a.delete_child(net.now, a0.child, &mut net.rng).unwrap();
    net.pump();
    assert!(net.a_events.contains(&IkeEvent::ChildSaDeleted {
        ike_sa: id,
        child: a0.child,
        spis: a0.spis()
    }));
    assert!(net.b_events.contains(&IkeEvent::ChildSaDeleted {
        ike_sa: b0.ike_sa,
        child: b0.child,
        spis: b0.spis()
    }));
    assert!(net.a.status()[0].children.is_empty());
    // The responder deletes the IKE SA.
    net.b.delete_ike(net.now, b0.ike_sa, &mut net.rng).unwrap();
    net.pump();
    assert!(net.a_events.contains(&IkeEvent::IkeSaDeleted {
        ike_sa: id,
        reason: DeleteReason::Peer
    }));
    assert!(net.b_events.contains(&IkeEvent::IkeSaDeleted {
        ike_sa: b0.ike_sa,
        reason: DeleteReason::Local
    }));
    assert_eq!((net.a.ike_sa_count(), net.b.ike_sa_count()), (0, 0));
    assert_eq!(
        net.a.delete_ike(net.now, id, &mut net.rng),
        Err(plexnet::ike::CommandError::UnknownIkeSa)
    );

    // Deleting an IKE SA with a child reports the child too.
    let mut net = Net::pair("aes128-sha256-ecp256", "aes128gcm16");
    let (id, a0, b0) = established_pair(&mut net);
    net.a.delete_ike(net.now, id, &mut net.rng).unwrap();
    net.pump();
    assert_eq!(Net::deleted(&net.a_events), vec![a0.child]);
    assert_eq!(Net::deleted(&net.b_events), vec![b0.child]);
}

#[test]
fn dpd_both_ways_and_periodic() {
    let mut a = config(client_id(), "aes128-sha256-x25519", "aes128-sha1");
    a.dpd_interval = Some(Duration::from_secs(30));
    let mut b = config(dvipa_id(), "aes128-sha256-x25519", "aes128-sha1");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::pair("aes128-sha256-x25519", "aes128-sha1");
    let (id, _, b0) = established_pair(&mut net);
    net.a.dpd(net.now, id, &mut net.rng).unwrap();
    net.b.dpd(net.now, b0.ike_sa, &mut net.rng).unwrap();
    let sent = net.wire.len();
    net.pump();
    assert_eq!(net.wire.len() - sent, 4, "two requests, two responses");
    // Periodic: A checks every 30 s of silence.
    let mut net = Net::new(a, b);
    net.a.enable_trace();
    established_pair(&mut net);
    let t0 = net.now;
    net.tick();
    assert_eq!(net.now - t0, Duration::from_secs(30));
    let trace: Vec<String> = std::iter::from_fn(|| net.a.poll_trace())
        .map(|t| t.summary)
        .collect();
    assert_eq!(
        &trace[trace.len() - 2..],
        &[
            "INFORMATIONAL request 2 [  ]",
            "INFORMATIONAL response 2 [  ]"
        ]
    );
}

#[test]
fn traffic_selector_narrowing() {
    // A asks for its /24 to anything; B allows the DVIPA only, and A's own
    // address.
    let a = config(client_id(), "default", "default");
    let mut b = config(dvipa_id(), "default", "default");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    let mut peer = Net::peer_b();
    peer.local_ts = TsConfig::Selectors(vec![plexnet::ike::ts::ipv4_subnet(
        Ipv4Addr::new(198, 18, 1, 0),
        24,
    )]);
    peer.remote_ts = TsConfig::Selectors(vec![plexnet::ike::ts::ipv4_subnet(
        Ipv4Addr::UNSPECIFIED,
        0,
    )]);
    net.a.initiate(
        net.now,
        SocketAddrV4::new(DVIPA, 500),
        peer.clone(),
        &mut net.rng,
    );
    net.pump();
    let a0 = &Net::children(&net.a_events)[0];
    let b0 = &Net::children(&net.b_events)[0];
    check_pair(a0, b0);
    assert_eq!(
        a0.local_ts,
        vec![TrafficSelector::ipv4_host(CLIENT.octets())]
    );
    assert_eq!(
        a0.remote_ts,
        vec![TrafficSelector::ipv4_host(DVIPA.octets())]
    );
    assert_eq!(b0.remote_ts, a0.local_ts);

    // Nothing in common: TS_UNACCEPTABLE, the IKE SA stays.
    let a = config(client_id(), "default", "default");
    let mut b = config(dvipa_id(), "default", "default");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    peer.remote_ts = TsConfig::Selectors(vec![plexnet::ike::ts::ipv4_subnet(
        Ipv4Addr::new(10, 0, 0, 0),
        8,
    )]);
    net.a
        .initiate(net.now, SocketAddrV4::new(DVIPA, 500), peer, &mut net.rng);
    net.pump();
    assert_eq!(Net::established(&net.a_events), 1);
    assert!(net.a_events.contains(&IkeEvent::ChildSaFailed {
        ike_sa: IkeSaId(1),
        notify: NotifyType::TsUnacceptable
    }));
}

#[test]
fn nat_traversal_moves_to_4500() {
    let mut net = Net::pair("aes128-sha256-x25519", "aes128-sha1");
    net.nat = Some(40000);
    let (_, a0, b0) = established_pair(&mut net);
    // IKE_SA_INIT on 500, everything after on 4500 with the marker.
    assert_eq!(net.wire[0].1, 500);
    assert_eq!(net.wire[1].1, 500);
    for (_, port, payload) in &net.wire[2..] {
        assert_eq!(*port, 4500);
        assert_eq!(&payload[..4], &[0, 0, 0, 0]);
    }
    // ESP in UDP: A sends 4500 -> 4500, B answers to the NAT's port.
    let enc = a0.udp_encap.unwrap();
    assert_eq!((enc.src_port, enc.dst_port), (4500, 4500));
    let enc = b0.udp_encap.unwrap();
    assert_eq!((enc.src_port, enc.dst_port), (4500, 44500));

    // No NAT, but the initiator fakes one (strongSwan's kernel-libipsec).
    let mut a = config(client_id(), "aes128-sha256-x25519", "aes128-sha1");
    a.force_encap = true;
    let mut b = config(dvipa_id(), "aes128-sha256-x25519", "aes128-sha1");
    b.peers.push(PeerConfig::new(client_id(), PSK));
    let mut net = Net::new(a, b);
    let (_, a0, b0) = established_pair(&mut net);
    assert_eq!(
        a0.udp_encap.map(|e| (e.src_port, e.dst_port)),
        Some((4500, 4500))
    );
    assert_eq!(
        b0.udp_encap.map(|e| (e.src_port, e.dst_port)),
        Some((4500, 4500))
    );
    assert_eq!(net.b.status()[0].local_port, 4500);
    // Keepalives and ESP on 4500 are not IKE.
    let from = SocketAddrV4::new(CLIENT, 4500);
    assert_eq!(
        net.b
            .handle_datagram(net.now, from, 4500, &[0xff], &mut net.rng),
        Ok(())
    );
    assert_eq!(
        net.b.handle_datagram(
            net.now,
            from,
            4500,
            &[0, 0, 1, 0, 0, 0, 0, 1, 0],
            &mut net.rng
        ),
        Err(DropReason::NotIke)
    );
}

/// The SK keys of the initiator's direction, from the Wireshark line.
fn sk_i(line: &str) -> (SkKeys, SkKeys) {
    let f: Vec<&str> = line.split(',').collect();
    let hex = |s: &str| plexnet::ipsec::Key::from_hex(s).unwrap().0;
    let enc = match f[4] {
        "\"AES-CBC-128 [RFC3602]\"" => plexnet::ike::keys::Encr::AesCbc { key_bits: 128 },
        other => panic!("{other}"),
    };
    let integ = Some(plexnet::ike::keys::Integ::HmacSha256_128);
    let k = |e: &str, a: &str| SkKeys {
        encr: enc,
        integ,
        sk_e: hex(e).into(),
        sk_a: hex(a).into(),
    };
    (k(f[2], f[5]), k(f[3], f[6]))
}

#[test]
fn unknown_critical_payload_and_bad_input() {
    let mut net = Net::pair("aes128-sha256-x25519", "aes128-sha1");
    // IKE_SA_INIT with an unknown critical payload: UNSUPPORTED_CRITICAL_PAYLOAD.
    net.a.initiate(
        net.now,
        SocketAddrV4::new(DVIPA, 500),
        Net::peer_b(),
        &mut net.rng,
    );
    let t = net.a.poll_transmit().unwrap();
    let mut m = IkeMessage::parse(&t.payload).unwrap();
    m.payloads.push(Payload::Unknown(UnknownPayload {
        payload_type: 200,
        critical: true,
        body: vec![1, 2],
    }));
    let from = SocketAddrV4::new(CLIENT, 500);
    net.b
        .handle_datagram(net.now, from, 500, &m.to_bytes().unwrap(), &mut net.rng)
        .unwrap();
    let r = IkeMessage::parse(&net.b.poll_transmit().unwrap().payload).unwrap();
    let n = r.notifies().next().unwrap();
    assert_eq!(
        (n.notify_type, n.data.clone()),
        (NotifyType::UnsupportedCriticalPayload, vec![200])
    );
    assert_eq!(net.b.ike_sa_count(), 0);
    // The same payload without the critical bit is ignored.
    m.payloads.pop();
    m.payloads.push(Payload::Unknown(UnknownPayload {
        payload_type: 200,
        critical: false,
        body: vec![1, 2],
    }));
    net.b
        .handle_datagram(net.now, from, 500, &m.to_bytes().unwrap(), &mut net.rng)
        .unwrap();
    assert_eq!(net.b.ike_sa_count(), 1);

    // In an encrypted request.
    let mut net = Net::pair("aes128-sha256-x25519", "aes128-sha1");
    let (id, _, _) = established_pair(&mut net);
    let st = net.a.status()[0].clone();
    let (to_b, from_b) = sk_i(&net.a.wireshark_ike_keys(id).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let header = Header {
        spi_i: st.spi_i,
        spi_r: st.spi_r,
        major_version: 2,
        minor_version: 0,
        exchange_type: ExchangeType::Informational,
        flags: Flags(Flags::INITIATOR),
        message_id: 2,
    };
    let bad = to_b
        .seal(
            &header,
            &[Payload::Unknown(UnknownPayload {
                payload_type: 201,
                critical: true,
                body: vec![],
            })],
            &mut rng,
        )
        .unwrap();
    net.b
        .handle_datagram(net.now, from, 500, &bad, &mut net.rng)
        .unwrap();
    let resp = net.b.poll_transmit().unwrap();
    let (h, p) = from_b.open(&resp.payload).unwrap();
    assert!(h.flags.response());
    assert!(matches!(&p[0], Payload::Notify(n)
        if n.notify_type == NotifyType::UnsupportedCriticalPayload && n.data == vec![201]));
    // Replaying it: the cached response. Message ID 7: out of window.
    net.b
        .handle_datagram(net.now, from, 500, &bad, &mut net.rng)
        .unwrap();
    assert_eq!(net.b.poll_transmit().unwrap().payload, resp.payload);
    let h7 = Header {
        message_id: 7,
        ..header
    };
    let future = to_b.seal(&h7, &[], &mut rng).unwrap();
    assert_eq!(
        net.b
            .handle_datagram(net.now, from, 500, &future, &mut net.rng),
        Err(DropReason::MessageId { got: 7 })
    );
    // A forged message (flipped ICV bit) is dropped silently.
    let h3 = Header {
        message_id: 3,
        ..header
    };
    let mut forged = to_b.seal(&h3, &[], &mut rng).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(
        net.b
            .handle_datagram(net.now, from, 500, &forged, &mut net.rng),
        Err(DropReason::Sk(_))
    ));
    assert!(net.b.poll_transmit().is_none());
    // Unknown SPI, truncated, wrong length, IKEv1.
    let mut unknown = future.clone();
    unknown[8] ^= 0xff;
    assert_eq!(
        net.b
            .handle_datagram(net.now, from, 500, &unknown, &mut net.rng),
        Err(DropReason::UnknownSpi)
    );
    assert!(matches!(
        net.b
            .handle_datagram(net.now, from, 500, &future[..20], &mut net.rng),
        Err(DropReason::Malformed(_))
    ));
    assert!(matches!(
        net.b.handle_datagram(
            net.now,
            from,
            500,
            &future[..future.len() - 1],
            &mut net.rng
        ),
        Err(DropReason::Malformed(_))
    ));
    // Nothing moved: a DPD still works with message ID 3.
    net.a.dpd(net.now, id, &mut net.rng).unwrap();
    net.pump();
    assert!(!net
        .a_events
        .iter()
        .any(|e| matches!(e, IkeEvent::IkeSaDeleted { .. })));
    assert_eq!(net.b.ike_sa_count(), 1);
}

#[test]
fn higher_major_version_gets_invalid_major_version() {
    let mut net = Net::pair("aes128-sha256-x25519", "aes128-sha1");
    net.a.initiate(
        net.now,
        SocketAddrV4::new(DVIPA, 500),
        Net::peer_b(),
        &mut net.rng,
    );
    let mut p = net.a.poll_transmit().unwrap().payload;
    p[17] = 0x30;
    assert!(net
        .b
        .handle_datagram(
            net.now,
            SocketAddrV4::new(CLIENT, 500),
            500,
            &p,
            &mut net.rng
        )
        .is_err());
    let r = net.b.poll_transmit().unwrap().payload;
    let m = IkeMessage::parse(&r).unwrap();
    assert_eq!(
        m.notifies().next().unwrap().notify_type,
        NotifyType::InvalidMajorVersion
    );
    assert_eq!(net.b.ike_sa_count(), 0);
}
