//! RFC 3602 §4 test cases 5–8: whole ESP packets with AES-128-CBC, in
//! transport mode (5, 6) and tunnel mode (7, 8), sealed and opened by
//! plexnet. The RFC cases carry no ICV (confidentiality-only ESP); each
//! case is also run with HMAC-SHA1-96 appended, which must verify.

use core::net::{IpAddr, Ipv4Addr};

use plexnet::ipsec::{
    open_esp, seal_esp_with_iv, EncAlg, IntegAlg, Key, Lifetimes, Mode, OpenError, Protocol,
    ReplayWindow, Sa, SaConfig, Spi, TrafficSelector,
};
use plexnet::wire::{ipv4, IpProtocol, Ipv4Packet, Ipv4Repr};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    Key::from_hex(&s).expect("hex").0
}

struct Case {
    key: &'static str,
    spi: u32,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seq: u64,
    iv: &'static str,
    mode: Mode,
    /// Transport: the original packet's IP header; tunnel: unused.
    ip_header: Option<&'static str>,
    /// Transport: the ICMP message; tunnel: the whole inner packet.
    payload: &'static str,
    /// SPI, sequence number, IV and ciphertext as RFC 3602 prints them.
    esp: &'static str,
    /// The IP header after encryption, where the RFC gives it.
    sealed_header: Option<&'static str>,
}

const CASES: [Case; 4] = [
    // Case #5: transport-mode ESP, ping 192.168.123.3 -> 192.168.123.100.
    Case {
        key: "90d382b410eeba7ad938c46cec1a82bf",
        spi: 0x4321,
        src: Ipv4Addr::new(192, 168, 123, 3),
        dst: Ipv4Addr::new(192, 168, 123, 100),
        seq: 1,
        iv: "e96e8c08ab465763fd098d45dd3ff893",
        mode: Mode::Transport,
        ip_header: Some("45000054 08f20000 4001f9fe c0a87b03 c0a87b64"),
        payload: "08000ebd a70a0000 8e9c083d b95b0700 08090a0b 0c0d0e0f 10111213 14151617
                  18191a1b 1c1d1e1f 20212223 24252627 28292a2b 2c2d2e2f 30313233 34353637",
        esp: "00004321 00000001 e96e8c08 ab465763 fd098d45 dd3ff893
              f663c25d 325c18c6 a9453e19 4e120849 a4870b66 cc6b9965 330013b4 898dc856
              a4699e52 3a55db08 0b59ec3a 8e4b7e52 775b07d1 db34ed9c 538ab50c 551b874a
              a269add0 47ad2d59 13ac19b7 cfbad4a6",
        sealed_header: Some("4500007c 08f20000 4032f9a5 c0a87b03 c0a87b64"),
    },
    // Case #6: transport-mode ESP, ping reply 192.168.123.100 -> .3.
    Case {
        key: "90d382b410eeba7ad938c46cec1a82bf",
        spi: 0x4321,
        src: Ipv4Addr::new(192, 168, 123, 100),
        dst: Ipv4Addr::new(192, 168, 123, 3),
        seq: 8,
        iv: "69d08df7d203329db093fc4924e5bd80",
        mode: Mode::Transport,
        ip_header: None,
        payload: "0800b5e8 a80a0500 a69c083d 0b660e00 77777777 77777777 77777777",
        esp: "00004321 00000008 69d08df7 d203329d b093fc49 24e5bd80
              f5199588 1ec4e0c4 488987ce 742e8109 689bb379 d2d750c0 d915dca3 46a89f75",
        sealed_header: None,
    },
    // Case #7: tunnel-mode ESP, ping 192.168.123.3 -> 192.168.123.200 inside.
    Case {
        key: "0123456789abcdef0123456789abcdef",
        spi: 0x8765,
        src: Ipv4Addr::new(192, 168, 123, 3),
        dst: Ipv4Addr::new(192, 168, 123, 100),
        seq: 2,
        iv: "f4e765244f6407adf13dc1380f673f37",
        mode: Mode::Tunnel,
        ip_header: None,
        payload: "45000054 09040000 4001f988 c0a87b03 c0a87bc8 08009f76 a90a0100 b49c083d
                  02a20400 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f 20212223
                  24252627 28292a2b 2c2d2e2f 30313233 34353637",
        esp: "00008765 00000002 f4e76524 4f6407ad f13dc138 0f673f37
              773b5241 a4c44922 5e4f3ce5 ed611b0c 237ca96c f74a9301 3c1b0ea1 a0cf70f8
              e4ecaec7 8ac53aad 7a0f022b 859243c6 47752e94 a859352b 8a4d4d2d ecd136e5
              c177f132 ad3fbfb2 201ac990 4c74ee0a 109e0ca1 e4dfe9d5 a100b842 f1c22f0d",
        sealed_header: None,
    },
    // Case #8: tunnel-mode ESP, a second ping inside the same tunnel.
    Case {
        key: "0123456789abcdef0123456789abcdef",
        spi: 0x8765,
        src: Ipv4Addr::new(192, 168, 123, 3),
        dst: Ipv4Addr::new(192, 168, 123, 100),
        seq: 5,
        iv: "85d47224b5f3dd5d2101d4ea8dffab22",
        mode: Mode::Tunnel,
        ip_header: None,
        payload: "45000044 090c0000 4001f990 c0a87b03 c0a87bc8 0800d63c aa0a0200 c69c083d
                  a3de0300 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff
                  ffffffff",
        esp: "00008765 00000005 85d47224 b5f3dd5d 2101d4ea 8dffab22
              15b92683 819596a8 047232cc 00f7048f e45318e1 1f8a0f62 ede3c3fc 61203bb5
              0f980a08 c9843fd3 a1b06d5c 07ff9639 b7eb7dfb 3512e5de 435e7207 ed971ef3
              d2726d9b 5ef6affc 6d17a0de cbb13892",
        sealed_header: None,
    },
];

fn sa(case: &Case, integ: IntegAlg) -> Sa {
    Sa::new(SaConfig {
        spi: Spi(case.spi),
        protocol: Protocol::Esp,
        mode: case.mode,
        src: IpAddr::V4(case.src),
        dst: IpAddr::V4(case.dst),
        enc: EncAlg::AesCbc128,
        enc_key: Key(hex(case.key)),
        integ,
        integ_key: Key(vec![0x42; integ.key_len()]),
        esn: false,
        replay_window: 64,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: TrafficSelector::ANY_V4,
    })
    .expect("valid SA")
}

/// The packet the RFC case protects.
fn original(case: &Case) -> Vec<u8> {
    let payload = hex(case.payload);
    match (case.mode, case.ip_header) {
        (Mode::Tunnel, _) => payload,
        (Mode::Transport, Some(h)) => [hex(h), payload].concat(),
        (Mode::Transport, None) => {
            let repr = Ipv4Repr {
                ident: 0x08fe,
                dont_frag: false,
                ..Ipv4Repr::new(case.src, case.dst, IpProtocol::Icmp, payload.len())
            };
            let mut packet = vec![0u8; ipv4::HEADER_LEN + payload.len()];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]));
            packet[ipv4::HEADER_LEN..].copy_from_slice(&payload);
            packet
        }
    }
}

fn outer_header_len(packet: &[u8]) -> usize {
    usize::from(Ipv4Packet::new_checked(packet).expect("ipv4").header_len())
}

#[test]
fn rfc3602_cases_5_to_8_seal_bit_exact() {
    for (n, case) in CASES.iter().enumerate() {
        let sa = sa(case, IntegAlg::None);
        let mut out = Vec::new();
        seal_esp_with_iv(&sa, case.seq, &hex(case.iv), &original(case), &mut out).expect("seal");
        let hl = outer_header_len(&out);
        assert_eq!(out[hl..], hex(case.esp)[..], "case #{}", n + 5);
        if let Some(h) = case.sealed_header {
            assert_eq!(out[..hl], hex(h)[..], "case #{} outer header", n + 5);
        }
    }
}

#[test]
fn rfc3602_cases_5_to_8_open() {
    for (n, case) in CASES.iter().enumerate() {
        let sa = sa(case, IntegAlg::None);
        // The RFC's ESP bytes behind an outer header we build.
        let esp = hex(case.esp);
        let repr = Ipv4Repr::new(case.src, case.dst, IpProtocol::Esp, esp.len());
        let mut packet = vec![0u8; ipv4::HEADER_LEN];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]));
        packet.extend_from_slice(&esp);
        let mut window = ReplayWindow::new(64, false);
        let mut out = Vec::new();
        let opened = open_esp(&sa, &mut window, &packet, &mut out).expect("open");
        assert_eq!(opened.seq, case.seq);
        let payload = hex(case.payload);
        match case.mode {
            Mode::Tunnel => assert_eq!(out, payload, "case #{}", n + 5),
            Mode::Transport => {
                assert_eq!(out[ipv4::HEADER_LEN..], payload[..], "case #{}", n + 5);
                assert_eq!(
                    Ipv4Packet::new_checked(&out[..]).unwrap().next_header(),
                    IpProtocol::Icmp
                );
            }
        }
        // Confidentiality-only ESP has no anti-replay service (RFC 4303
        // §3.4.3): the window stays put and the same packet opens again.
        assert_eq!(window.top(), 0);
        assert!(open_esp(&sa, &mut window, &packet, &mut out).is_ok());
    }
}

#[test]
fn rfc3602_cases_with_hmac_sha1_96() {
    for case in &CASES {
        let sa = sa(case, IntegAlg::HmacSha1_96);
        let mut out = Vec::new();
        seal_esp_with_iv(&sa, case.seq, &hex(case.iv), &original(case), &mut out).expect("seal");
        let hl = outer_header_len(&out);
        // Same ciphertext as the RFC, then a 12-byte ICV.
        let esp = hex(case.esp);
        assert_eq!(out[hl..hl + esp.len()], esp[..]);
        assert_eq!(out.len(), hl + esp.len() + 12);
        let mut window = ReplayWindow::new(64, false);
        let mut back = Vec::new();
        open_esp(&sa, &mut window, &out, &mut back).expect("open");
        assert_eq!(
            open_esp(&sa, &mut window, &out, &mut back),
            Err(OpenError::Replayed)
        );
        let last = out.len() - 1;
        out[last] ^= 1;
        let mut window = ReplayWindow::new(64, false);
        assert_eq!(
            open_esp(&sa, &mut window, &out, &mut back),
            Err(OpenError::IcvMismatch)
        );
        assert_eq!(window.top(), 0, "a forged packet must not move the window");
    }
}
