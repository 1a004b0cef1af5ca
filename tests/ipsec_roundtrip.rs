//! Seal/open round trips over every algorithm and mode, peek against full
//! open, typed drops, and arbitrary bytes (the CI stand-in for cargo-fuzz).

use core::net::{IpAddr, Ipv4Addr};

use hmac::{Hmac, Mac};
use plexnet::ipsec::{
    locate, open_ah, open_bundle, open_esp, peek, seal_ah, seal_bundle, seal_esp, seal_esp_with_iv,
    DropReason, EncAlg, Expiry, InboundSa, InboundSad, IntegAlg, Key, Lifetime, Lifetimes, Mode,
    OpenError, OutboundSa, PeekError, PortRange, Protocol, ReplayWindow, Sa, SaConfig, Spi,
    TrafficSelector, UdpEncap,
};
use plexnet::time::Instant;
use plexnet::wire::{
    ipv4, tcp, udp, IpProtocol, Ipv4Packet, Ipv4Repr, PseudoHeader, TcpFlags, TcpPacket, TcpRepr,
    UdpPacket, UdpRepr,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// Every ESP suite: AEADs alone, CBC and NULL with each integrity
/// algorithm, and CBC confidentiality-only.
fn esp_suites() -> Vec<(EncAlg, IntegAlg)> {
    let mut v = Vec::new();
    for enc in EncAlg::ALL {
        if enc.is_aead() {
            v.push((enc, IntegAlg::None));
        } else {
            for integ in IntegAlg::ALL {
                v.push((enc, integ));
            }
        }
    }
    v.push((EncAlg::AesCbc192, IntegAlg::None));
    v
}

fn config(protocol: Protocol, enc: EncAlg, integ: IntegAlg, mode: Mode, spi: u32) -> SaConfig {
    SaConfig {
        spi: Spi(spi),
        protocol,
        mode,
        src: IpAddr::V4(CLIENT),
        dst: IpAddr::V4(DVIPA),
        enc,
        enc_key: Key((0..enc.key_len())
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(spi as u8))
            .collect()),
        integ,
        integ_key: Key((0..integ.key_len()).map(|i| (i as u8) ^ 0xa5).collect()),
        esn: false,
        replay_window: 1024,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: TrafficSelector::ANY_V4,
    }
}

fn esp_sa(enc: EncAlg, integ: IntegAlg, mode: Mode, esn: bool, encap: bool) -> Sa {
    let mut c = config(Protocol::Esp, enc, integ, mode, 0x0100_0001);
    c.esn = esn;
    if encap {
        c.udp_encap = Some(UdpEncap {
            src_port: 4500,
            dst_port: 4500,
        });
    }
    Sa::new(c).expect("valid SA")
}

fn ah_sa(integ: IntegAlg, mode: Mode, esn: bool) -> Sa {
    let mut c = config(Protocol::Ah, EncAlg::Null, integ, mode, 0x0200_0002);
    c.esn = esn;
    Sa::new(c).expect("valid SA")
}

/// An IPv4 TCP segment CLIENT:sport -> DVIPA:80 with `len` payload bytes.
fn tcp_packet(sport: u16, flags: TcpFlags, len: usize, ttl: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
    let seg = TcpRepr {
        src_port: sport,
        dst_port: 80,
        seq_number: 0x1234_5678,
        ack_number: 0,
        flags,
        window_len: 64240,
        urgent_at: 0,
        options: &[],
        payload: &payload,
    };
    let ip = Ipv4Repr {
        hop_limit: ttl,
        ident: sport,
        ..Ipv4Repr::new(CLIENT, DVIPA, IpProtocol::Tcp, seg.buffer_len())
    };
    let mut buf = vec![0u8; ipv4::HEADER_LEN + seg.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
    let pseudo = PseudoHeader::V4 {
        src: CLIENT,
        dst: DVIPA,
    };
    seg.emit(
        &mut TcpPacket::new_unchecked(&mut buf[ipv4::HEADER_LEN..]),
        &pseudo,
    );
    buf
}

/// An IPv4 UDP datagram CLIENT:sport -> DVIPA:53.
fn udp_packet(sport: u16, len: usize) -> Vec<u8> {
    let total = udp::HEADER_LEN + len;
    let ip = Ipv4Repr::new(CLIENT, DVIPA, IpProtocol::Udp, total);
    let mut buf = vec![0u8; ipv4::HEADER_LEN + total];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
    for (i, b) in buf[ipv4::HEADER_LEN + udp::HEADER_LEN..]
        .iter_mut()
        .enumerate()
    {
        *b = i as u8;
    }
    let pseudo = PseudoHeader::V4 {
        src: CLIENT,
        dst: DVIPA,
    };
    UdpRepr {
        src_port: sport,
        dst_port: 53,
    }
    .emit(
        &mut UdpPacket::new_unchecked(&mut buf[ipv4::HEADER_LEN..]),
        len,
        Some(&pseudo),
    );
    buf
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn check_peek(sealed: &[u8], sa: &Sa, original: &[u8]) {
    let loc = locate(sealed).expect("locate");
    assert_eq!(loc.spi, sa.spi());
    let p = peek(sealed, sa).expect("peek");
    let ip = Ipv4Packet::new_checked(original).unwrap();
    assert_eq!(p.src, IpAddr::V4(ip.src_addr()));
    assert_eq!(p.dst, IpAddr::V4(ip.dst_addr()));
    assert_eq!(p.proto, ip.next_header());
    let l4 = &original[usize::from(ip.header_len())..];
    match ip.next_header() {
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(l4).unwrap();
            assert_eq!(
                (p.src_port, p.dst_port, p.tcp_flags),
                (t.src_port(), t.dst_port(), Some(t.flags()))
            );
        }
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(l4).unwrap();
            assert_eq!(
                (p.src_port, p.dst_port, p.tcp_flags),
                (u.src_port(), u.dst_port(), None)
            );
        }
        _ => assert_eq!((p.src_port, p.dst_port), (0, 0)),
    }
    // Constant cost: at most the trailer block plus 5 header blocks.
    assert!(p.blocks_decrypted <= 6, "{}", p.blocks_decrypted);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn esp_round_trip_and_peek(
        suite in 0usize..17,
        tunnel in any::<bool>(),
        esn in any::<bool>(),
        encap in any::<bool>(),
        len in 0usize..1500,
        seq in 1u64..(1 << 40),
        kind in 0u8..3,
        sport in 1024u16..,
        flags in any::<u8>(),
    ) {
        let (enc, integ) = esp_suites()[suite % esp_suites().len()];
        let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
        let sa = esp_sa(enc, integ, mode, esn, encap);
        let seq = if esn { seq } else { seq & 0xffff_ffff | 1 };
        let original = match kind {
            0 => tcp_packet(sport, TcpFlags(flags), len, 64),
            1 => udp_packet(sport, len),
            _ => {
                let mut p = tcp_packet(sport, TcpFlags(flags), len, 64);
                Ipv4Packet::new_unchecked(&mut p[..]).set_next_header(IpProtocol::Unknown(253));
                Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
                p
            }
        };
        let mut sealed = Vec::new();
        let protected = seal_esp(&sa, seq, &mut rng(), &original, &mut sealed).unwrap();
        prop_assert_eq!(protected, if tunnel { original.len() } else { original.len() - 20 });
        // The window must already be near `seq` for ESN inference.
        let mut window = ReplayWindow::new(1024, esn);
        window.update(seq.saturating_sub(3).max(1));
        if seq <= 3 { window = ReplayWindow::new(1024, esn); }
        let mut out = Vec::new();
        let opened = open_esp(&sa, &mut window, &sealed, &mut out).unwrap();
        prop_assert_eq!(opened.seq, seq);
        prop_assert_eq!(&out, &original);
        check_peek(&sealed, &sa, &original);
        // Anti-replay needs integrity (RFC 4303 §3.4.3).
        if integ != IntegAlg::None || enc.is_aead() {
            prop_assert_eq!(window.top(), seq);
            prop_assert_eq!(open_esp(&sa, &mut window, &sealed, &mut out), Err(OpenError::Replayed));
        }
    }

    #[test]
    fn any_flipped_esp_bit_is_an_icv_mismatch(
        suite in 0usize..16,
        tunnel in any::<bool>(),
        encap in any::<bool>(),
        len in 0usize..600,
        bit in any::<prop::sample::Index>(),
    ) {
        // Suite 16 is confidentiality-only: no ICV to mismatch.
        let (enc, integ) = esp_suites()[suite];
        let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
        let sa = esp_sa(enc, integ, mode, false, encap);
        let original = tcp_packet(40000, TcpFlags::ACK, len, 64);
        let mut sealed = Vec::new();
        seal_esp(&sa, 9, &mut rng(), &original, &mut sealed).unwrap();
        let esp_at = 20 + if encap { 8 } else { 0 };
        let bit = bit.index((sealed.len() - esp_at) * 8);
        sealed[esp_at + bit / 8] ^= 1 << (bit % 8);
        let mut window = ReplayWindow::new(64, false);
        let mut out = Vec::new();
        let err = open_esp(&sa, &mut window, &sealed, &mut out).unwrap_err();
        if bit < 32 {
            prop_assert_eq!(err, OpenError::UnknownSpi);
        } else {
            prop_assert_eq!(err, OpenError::IcvMismatch);
        }
        prop_assert_eq!(window.top(), 0);
        prop_assert!(out.is_empty());
    }

    #[test]
    fn ah_round_trip(integ in 0usize..4, tunnel in any::<bool>(), esn in any::<bool>(), len in 0usize..1500, ttl in 1u8..) {
        let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
        let sa = ah_sa(IntegAlg::ALL[integ], mode, esn);
        let original = tcp_packet(5555, TcpFlags::SYN, len, 64);
        let mut sealed = Vec::new();
        seal_ah(&sa, 77, &original, &mut sealed).unwrap();
        // Mutable fields may change in transit without breaking the ICV
        // (RFC 4302 §3.3.3.1.1.1).
        let mut routed = sealed.clone();
        let mut ip = Ipv4Packet::new_unchecked(&mut routed[..]);
        ip.set_ttl(ttl);
        ip.set_tos(0x2e);
        ip.fill_checksum();
        let mut window = ReplayWindow::new(64, esn);
        let mut out = Vec::new();
        open_ah(&sa, &mut window, &routed, &mut out).unwrap();
        let mut expected = original.clone();
        if !tunnel {
            // Transport mode keeps the outer header, as routed.
            let mut ip = Ipv4Packet::new_unchecked(&mut expected[..]);
            ip.set_ttl(ttl);
            ip.set_tos(0x2e);
            ip.fill_checksum();
        }
        prop_assert_eq!(&out, &expected);
        check_peek(&sealed, &sa, &original);
        // An immutable field may not.
        let mut forged = sealed.clone();
        let mut ip = Ipv4Packet::new_unchecked(&mut forged[..]);
        ip.set_src_addr(Ipv4Addr::new(198, 18, 1, 99));
        ip.fill_checksum();
        let mut window = ReplayWindow::new(64, esn);
        prop_assert_eq!(open_ah(&sa, &mut window, &forged, &mut out), Err(OpenError::IcvMismatch));
    }

    #[test]
    fn bundle_round_trip(suite in 0usize..17, integ in 0usize..4, tunnel in any::<bool>(), len in 0usize..1500) {
        let (enc, esp_integ) = esp_suites()[suite];
        let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
        let esp = esp_sa(enc, esp_integ, mode, false, false);
        let ah = ah_sa(IntegAlg::ALL[integ], mode, false);
        let original = tcp_packet(6000, TcpFlags::SYN, len, 64);
        let mut sealed = Vec::new();
        let iv = vec![0x11; enc.iv_len()];
        seal_bundle(&ah, 3, &esp, 4, &iv, &original, &mut sealed).unwrap();
        prop_assert_eq!(Ipv4Packet::new_checked(&sealed[..]).unwrap().next_header(), IpProtocol::Ah);
        let (mut wa, mut we) = (ReplayWindow::new(64, false), ReplayWindow::new(64, false));
        let mut out = Vec::new();
        let opened = open_bundle(&ah, &mut wa, &esp, &mut we, &sealed, &mut out).unwrap();
        prop_assert_eq!(opened.seq, 4);
        prop_assert_eq!(&out, &original);
        prop_assert_eq!((wa.top(), we.top()), (3, 4));
        let loc = locate(&sealed).unwrap();
        prop_assert_eq!((loc.protocol, loc.spi), (Protocol::Esp, esp.spi()));
        check_peek(&sealed, &esp, &original);
        prop_assert_eq!(peek(&sealed, &ah), Err(PeekError::WrongSa));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), suite in 0usize..17, tunnel in any::<bool>()) {
        let (enc, integ) = esp_suites()[suite];
        let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
        let esp = esp_sa(enc, integ, mode, true, false);
        let ah = ah_sa(IntegAlg::HmacSha1_96, mode, false);
        let mut w = ReplayWindow::new(64, true);
        let mut w2 = ReplayWindow::new(64, false);
        let mut out = Vec::new();
        let _ = open_esp(&esp, &mut w, &bytes, &mut out);
        let _ = open_ah(&ah, &mut w2, &bytes, &mut out);
        let _ = open_bundle(&ah, &mut w2, &esp, &mut w, &bytes, &mut out);
        let _ = peek(&bytes, &esp);
        let _ = peek(&bytes, &ah);
        let _ = locate(&bytes);
        prop_assert_eq!(w.top(), 0);
    }

    #[test]
    fn plausible_garbage_never_panics(
        suite in 0usize..17,
        tunnel in any::<bool>(),
        encap in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..120),
        ah_in_front in any::<bool>(),
    ) {
        // A valid outer header and the right SPI, then junk: reaches the
        // deep paths (lengths, trailer, inner header) of open and peek.
        let (enc, integ) = esp_suites()[suite];
        let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
        let esp = esp_sa(enc, integ, mode, false, encap);
        let mut ipsec = Vec::new();
        if ah_in_front {
            ipsec.extend_from_slice(&[50, 4, 0, 0, 2, 0, 0, 2, 0, 0, 0, 1]);
            ipsec.extend_from_slice(&[0; 12]);
        } else if encap {
            ipsec.extend_from_slice(&[0x11, 0x94, 0x11, 0x94, 0, 0, 0, 0]);
        }
        ipsec.extend_from_slice(&esp.spi().0.to_be_bytes());
        ipsec.extend_from_slice(&body);
        if encap && !ah_in_front {
            let len = ipsec.len() as u16;
            ipsec[4..6].copy_from_slice(&len.to_be_bytes());
        }
        let proto = if ah_in_front { IpProtocol::Ah } else if encap { IpProtocol::Udp } else { IpProtocol::Esp };
        let mut packet = vec![0u8; 20];
        Ipv4Repr::new(CLIENT, DVIPA, proto, ipsec.len()).emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]));
        packet.extend_from_slice(&ipsec);
        let mut w = ReplayWindow::new(64, false);
        let mut out = Vec::new();
        if open_esp(&esp, &mut w, &packet, &mut out).is_err() {
            // Rejected means never authenticated: the window did not move.
            prop_assert_eq!(w.top(), 0);
        }
        let _ = peek(&packet, &esp);
        let _ = locate(&packet);
        let mut sad = InboundSad::new();
        sad.insert(InboundSa::new(esp, Instant::ZERO));
        let _ = sad.open(Instant::ZERO, &packet, &mut out);
    }
}

#[test]
fn peek_cost_is_flat() {
    for (enc, integ) in esp_suites() {
        for mode in [Mode::Transport, Mode::Tunnel] {
            let sa = esp_sa(enc, integ, mode, false, false);
            let mut costs = Vec::new();
            for len in [0, 24, 472, 1360] {
                let original = tcp_packet(1234, TcpFlags::SYN, len, 64);
                let mut sealed = Vec::new();
                seal_esp(&sa, 1, &mut rng(), &original, &mut sealed).unwrap();
                costs.push(peek(&sealed, &sa).unwrap().blocks_decrypted);
            }
            let expected = match (enc, mode) {
                (EncAlg::Null, _) => 0,
                // Block 0 (ports, flags) and the trailer block.
                (_, Mode::Transport) => 2,
                // Inner IPv4 header and TCP ports/flags: bytes 0..34.
                (_, Mode::Tunnel) => 3,
            };
            assert!(
                costs.iter().all(|c| *c <= expected),
                "{enc:?} {mode:?} {costs:?}"
            );
            assert_eq!(
                costs[3], costs[2],
                "{enc:?} {mode:?}: cost must not grow with size"
            );
        }
    }
}

/// Builds an ESP-NULL packet with HMAC-SHA-256-128 by hand, so the
/// plaintext can be anything, then authentic.
fn handmade_null(sa_cfg: &SaConfig, seq: u32, plaintext: &[u8]) -> Vec<u8> {
    let mut esp = Vec::new();
    esp.extend_from_slice(&sa_cfg.spi.0.to_be_bytes());
    esp.extend_from_slice(&seq.to_be_bytes());
    esp.extend_from_slice(plaintext);
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(sa_cfg.integ_key.as_bytes()).unwrap();
    mac.update(&esp);
    esp.extend_from_slice(&mac.finalize().into_bytes()[..16]);
    let mut packet = vec![0u8; 20];
    Ipv4Repr::new(CLIENT, DVIPA, IpProtocol::Esp, esp.len())
        .emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]));
    packet.extend_from_slice(&esp);
    packet
}

#[test]
fn typed_drops_after_authentication() {
    let cfg = config(
        Protocol::Esp,
        EncAlg::Null,
        IntegAlg::HmacSha256_128,
        Mode::Transport,
        0x300,
    );
    let sa = Sa::new(cfg.clone()).unwrap();
    let tcp_payload = &tcp_packet(1000, TcpFlags::ACK, 4, 64)[20..];
    let mut out = Vec::new();
    // Control: a correct handmade packet opens.
    let good = [tcp_payload, &[1, 2, 2, 6]].concat();
    let mut w = ReplayWindow::new(64, false);
    open_esp(&sa, &mut w, &handmade_null(&cfg, 1, &good), &mut out).unwrap();
    // Padding 1, 3 instead of 1, 2.
    let bad_pad = [tcp_payload, &[1, 3, 2, 6]].concat();
    assert_eq!(
        open_esp(&sa, &mut w, &handmade_null(&cfg, 2, &bad_pad), &mut out),
        Err(OpenError::BadPadding)
    );
    // Pad length larger than what precedes it.
    let huge_pad = [&[0u8; 2][..], &[200, 6]].concat();
    assert_eq!(
        open_esp(&sa, &mut w, &handmade_null(&cfg, 3, &huge_pad), &mut out),
        Err(OpenError::Malformed)
    );
    // Dummy packet (Next Header 59, RFC 4303 §2.6).
    let dummy = [&[9u8; 6][..], &[0, 59]].concat();
    assert_eq!(
        open_esp(&sa, &mut w, &handmade_null(&cfg, 4, &dummy), &mut out),
        Err(OpenError::Dummy)
    );
    // Tunnel SA, but Next Header says TCP.
    let mut tcfg = cfg.clone();
    tcfg.mode = Mode::Tunnel;
    let tsa = Sa::new(tcfg.clone()).unwrap();
    let mut tw = ReplayWindow::new(64, false);
    assert_eq!(
        open_esp(&tsa, &mut tw, &handmade_null(&tcfg, 1, &good), &mut out),
        Err(OpenError::NextHeaderMismatch)
    );
    // Too old: far behind the window.
    let mut w = ReplayWindow::new(64, false);
    w.update(1000);
    assert_eq!(
        open_esp(&sa, &mut w, &handmade_null(&cfg, 900, &good), &mut out),
        Err(OpenError::TooOld)
    );
    // ICV mismatch wins over replay: a forged replay says ICV.
    let mut forged = handmade_null(&cfg, 1000, &good);
    let n = forged.len();
    forged[n - 1] ^= 1;
    assert_eq!(
        open_esp(&sa, &mut w, &forged, &mut out),
        Err(OpenError::IcvMismatch)
    );
}

#[test]
fn selector_mismatch_after_decryption() {
    let mut cfg = config(
        Protocol::Esp,
        EncAlg::AesCbc128,
        IntegAlg::HmacSha1_96,
        Mode::Tunnel,
        0x400,
    );
    let seal_sa = Sa::new(cfg.clone()).unwrap();
    cfg.selector = TrafficSelector {
        protocol: Some(IpProtocol::Tcp),
        dst_ports: PortRange::single(443),
        ..TrafficSelector::hosts(IpAddr::V4(CLIENT), IpAddr::V4(DVIPA))
    };
    let open_sa = Sa::new(cfg).unwrap();
    let mut sealed = Vec::new();
    seal_esp(
        &seal_sa,
        1,
        &mut rng(),
        &tcp_packet(1000, TcpFlags::SYN, 10, 64),
        &mut sealed,
    )
    .unwrap();
    let mut w = ReplayWindow::new(64, false);
    let mut out = Vec::new();
    assert_eq!(
        open_esp(&open_sa, &mut w, &sealed, &mut out),
        Err(OpenError::SelectorMismatch)
    );
}

#[test]
fn counters_lifetimes_and_the_database() {
    let mut cfg = config(
        Protocol::Esp,
        EncAlg::AesGcm16_128,
        IntegAlg::None,
        Mode::Tunnel,
        0x500,
    );
    cfg.lifetimes = Lifetimes {
        soft: Lifetime {
            packets: Some(2),
            ..Lifetime::UNLIMITED
        },
        hard: Lifetime {
            packets: Some(3),
            seconds: Some(100),
            bytes: None,
        },
    };
    let sa = Sa::new(cfg).unwrap();
    let mut outbound = OutboundSa::new(sa.clone(), Instant::from_secs(10));
    let mut sad = InboundSad::new();
    sad.insert(InboundSa::new(sa.clone(), Instant::from_secs(10)));
    let packet = tcp_packet(1000, TcpFlags::SYN, 100, 64);
    let mut sealed = Vec::new();
    let mut out = Vec::new();
    assert_eq!(
        outbound.seal(Instant::from_secs(11), 1, &mut rng(), &packet, &mut sealed),
        Ok(Expiry::Alive)
    );
    sad.open(Instant::from_secs(11), &sealed, &mut out).unwrap();
    assert_eq!(
        sad.open(Instant::from_secs(11), &sealed, &mut out),
        Err(OpenError::Replayed)
    );
    assert_eq!(
        outbound.seal(Instant::from_secs(11), 2, &mut rng(), &packet, &mut sealed),
        Ok(Expiry::Soft)
    );
    assert_eq!(
        outbound.seal(Instant::from_secs(11), 3, &mut rng(), &packet, &mut sealed),
        Ok(Expiry::Hard)
    );
    assert!(outbound
        .seal(Instant::from_secs(11), 4, &mut rng(), &packet, &mut sealed)
        .is_err());
    // Unknown SPI is counted by the database, not by an SA.
    let mut other = sealed.clone();
    other[20] ^= 0x80;
    assert_eq!(
        sad.open(Instant::from_secs(11), &other, &mut out),
        Err(OpenError::UnknownSpi)
    );
    assert_eq!(sad.drops().get(DropReason::UnknownSpi), 1);
    let (_, inbound) = sad.iter().next().unwrap();
    assert_eq!(inbound.counters().packets, 1);
    assert_eq!(inbound.counters().bytes, packet.len() as u64);
    assert_eq!(inbound.counters().drops.get(DropReason::Replayed), 1);
    let json = serde_json::to_value(inbound.counters()).unwrap();
    assert_eq!(json["drops"]["replayed"], 1);
    // Past the hard lifetime in seconds, inbound drops too.
    let mut fresh = Vec::new();
    let mut ob2 = OutboundSa::new(sa.clone(), Instant::from_secs(10));
    ob2.seal(Instant::from_secs(11), 9, &mut rng(), &packet, &mut fresh)
        .unwrap();
    assert_eq!(
        sad.open(Instant::from_secs(110), &fresh, &mut out),
        Err(OpenError::SaExpired)
    );
}

#[test]
fn database_opens_bundles_and_ah() {
    let esp = esp_sa(
        EncAlg::AesCbc256,
        IntegAlg::HmacSha512_256,
        Mode::Transport,
        false,
        false,
    );
    let ah = ah_sa(IntegAlg::HmacSha384_192, Mode::Transport, false);
    let mut sad = InboundSad::new();
    sad.insert(InboundSa::new(esp.clone(), Instant::ZERO));
    sad.insert(InboundSa::new(ah.clone(), Instant::ZERO));
    let packet = tcp_packet(1000, TcpFlags::SYN, 300, 64);
    let mut sealed = Vec::new();
    let mut out = Vec::new();
    seal_bundle(&ah, 1, &esp, 1, &[7; 16], &packet, &mut sealed).unwrap();
    sad.open(Instant::ZERO, &sealed, &mut out).unwrap();
    assert_eq!(out, packet);
    seal_ah(&ah, 2, &packet, &mut sealed).unwrap();
    sad.open(Instant::ZERO, &sealed, &mut out).unwrap();
    assert_eq!(out, packet);
    seal_esp_with_iv(&esp, 2, &[8; 16], &packet, &mut sealed).unwrap();
    sad.open(Instant::ZERO, &sealed, &mut out).unwrap();
    assert_eq!(out, packet);
}

#[test]
fn udp_encapsulated_esp_has_zero_checksum_and_port_4500() {
    let sa = esp_sa(
        EncAlg::AesCbc128,
        IntegAlg::HmacSha1_96,
        Mode::Tunnel,
        false,
        true,
    );
    let mut sealed = Vec::new();
    seal_esp(
        &sa,
        1,
        &mut rng(),
        &tcp_packet(1, TcpFlags::SYN, 0, 64),
        &mut sealed,
    )
    .unwrap();
    let ip = Ipv4Packet::new_checked(&sealed[..]).unwrap();
    assert_eq!(ip.next_header(), IpProtocol::Udp);
    assert!(ip.verify_checksum());
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((u.src_port(), u.dst_port(), u.checksum()), (4500, 4500, 0));
    assert_eq!(usize::from(u.len()), ip.payload().len());
    assert_eq!(u.payload()[..4], sa.spi().0.to_be_bytes());
    let _ = tcp::HEADER_LEN;
}
