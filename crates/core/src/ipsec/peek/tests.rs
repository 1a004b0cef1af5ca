//! Peek's tests: bundles through AH, and the fast path agreeing with the
//! general one on every packet.

use super::*;
use crate::ipsec::outer::parse_outer_with;
use crate::ipsec::sa::tests::config;
use crate::ipsec::sa::{IntegAlg, UdpEncap};
use crate::ipsec::seal_esp_with_iv;
use proptest::prelude::*;

/// The general path alone, with its own outer view (no checksum check,
/// as [`peek`]).
fn general(packet: &[u8], sa: &Sa) -> Result<PeekResult, PeekError> {
    peek_general(packet, &parse_outer_with(packet, false)?, sa)
}

fn suites() -> Vec<(EncAlg, IntegAlg)> {
    vec![
        (EncAlg::AesCbc128, IntegAlg::HmacSha1_96),
        (EncAlg::AesCbc256, IntegAlg::HmacSha256_128),
        (EncAlg::AesCbc192, IntegAlg::None),
        (EncAlg::AesGcm16_128, IntegAlg::None),
        (EncAlg::AesGcm16_256, IntegAlg::None),
        (EncAlg::Null, IntegAlg::HmacSha1_96),
    ]
}

/// An IPv4 packet: `options` words of IP options, protocol `proto`,
/// `l4` bytes after the header (checksums left zero: peek reads none).
fn inner(proto: u8, options: usize, l4: usize, frag: u16, fill: u8) -> Vec<u8> {
    let hl = 20 + options * 4;
    let mut p = vec![fill; hl + l4];
    p[0] = 0x40 | (hl / 4) as u8;
    p[1] = 0;
    p[2..4].copy_from_slice(&((hl + l4) as u16).to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&[198, 18, 1, 10]);
    p[16..20].copy_from_slice(&[198, 18, 0, 100]);
    p
}

fn bundle_sas(enc: EncAlg, mode: Mode) -> (Sa, Sa) {
    let mut ah = config(EncAlg::Null, IntegAlg::HmacSha256_128, mode);
    ah.protocol = Protocol::Ah;
    ah.spi = Spi(0x2000_0002);
    let esp = config(enc, IntegAlg::None, mode);
    (Sa::new(ah).unwrap(), Sa::new(esp).unwrap())
}

/// The "Combined AH,ESP" rows, transport and tunnel, every cipher:
/// peek reads the AH header in the clear and the TCP header behind ESP.
#[test]
fn bundles_peek_through_ah_in_both_modes() {
    let ciphers = [EncAlg::AesCbc128, EncAlg::AesCbc256, EncAlg::AesGcm16_128];
    for (enc, mode) in ciphers
        .into_iter()
        .flat_map(|e| [(e, Mode::Transport), (e, Mode::Tunnel)])
    {
        let (ah, esp) = bundle_sas(enc, mode);
        let mut sealed = Vec::new();
        let iv = vec![0x3c; enc.iv_len()];
        let pkt = inner(6, 0, 40, 0, 0x22);
        crate::ipsec::seal_bundle(&ah, 7, &esp, 9, &iv, &pkt, &mut sealed).unwrap();
        let loc = locate(&sealed).unwrap();
        assert_eq!((loc.spi, loc.ah_spi), (esp.spi(), Some(ah.spi())));
        assert!(loc.names(esp.config(), Some(ah.config())));
        assert!(
            !loc.names(esp.config(), None),
            "a bundle is named by its AH"
        );
        let b = peek_bundle(&sealed, &ah, &esp).unwrap();
        assert_eq!((b.ah_spi, b.ah_seq, b.esp.seq), (ah.spi(), 7, 9));
        assert_eq!(b.esp.proto, IpProtocol::Tcp, "{enc:?} {mode:?}");
        assert_eq!((b.esp.src_port, b.esp.dst_port), (0x2222, 0x2222));
        assert_eq!(
            b.esp.src,
            IpAddr::V4(core::net::Ipv4Addr::new(198, 18, 1, 10))
        );
        assert_eq!(peek_bundle(&sealed, &esp, &esp), Err(PeekError::WrongSa));
        let (other_ah, _) = bundle_sas(enc, mode);
        let mut c = other_ah.config().clone();
        c.spi = Spi(0x2000_0003);
        let other_ah = Sa::new(c).unwrap();
        assert_eq!(
            peek_bundle(&sealed, &other_ah, &esp),
            Err(PeekError::WrongSa)
        );
        // ESP alone is no bundle, and names no bundle's ESP SA.
        let mut bare = Vec::new();
        seal_esp_with_iv(&esp, 9, &iv, &pkt, &mut bare).unwrap();
        assert_eq!(peek_bundle(&bare, &ah, &esp), Err(PeekError::WrongSa));
        let loc = locate(&bare).unwrap();
        assert!(!loc.names(esp.config(), Some(ah.config())));
        assert!(loc.names(esp.config(), None));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// The fast path answers only what the general path answers, and
    /// answers the ordinary tunnel-mode packet.
    #[test]
    fn fast_path_agrees_with_general(
        suite in 0usize..6,
        tunnel in any::<bool>(),
        encap in any::<bool>(),
        proto in prop::sample::select(vec![6u8, 17, 1, 41, 4]),
        options in prop::sample::select(vec![0usize, 0, 0, 1, 10]),
        l4 in 0usize..120,
        frag in prop::sample::select(vec![0u16, 0, 0x4000, 0x2000, 0x0001]),
        fill in any::<u8>(),
        mutations in proptest::collection::vec((0usize..64, 1u8..), 0..3),
    ) {
        let (enc, integ) = suites()[suite];
        let mut c = config(enc, integ, if tunnel { Mode::Tunnel } else { Mode::Transport });
        if encap {
            c.udp_encap = Some(UdpEncap { src_port: 4500, dst_port: 4500 });
        }
        let sa = Sa::new(c).unwrap();
        let pkt = inner(proto, options, l4, if tunnel { frag } else { 0 }, fill);
        let iv = vec![0x3c; enc.iv_len()];
        let mut sealed = Vec::new();
        seal_esp_with_iv(&sa, 5, &iv, &pkt, &mut sealed).unwrap();
        let ordinary = tunnel && options == 0 && pkt.len() + 2 >= 48 && mutations.is_empty();
        if ordinary {
            prop_assert!(peek_fast(&sealed, &sa).is_some());
        }
        for (at, x) in mutations {
            let n = sealed.len();
            sealed[at % n] ^= x;
        }
        for cut in [sealed.len(), sealed.len().saturating_sub(20)] {
            let p = &sealed[..cut];
            if let Some(fast) = peek_fast(p, &sa) {
                prop_assert_eq!(general(p, &sa), Ok(fast));
            }
            let expected = general(p, &sa);
            prop_assert_eq!(peek(p, &sa), expected);
            // The routing stack's way: the outer view parsed once.
            if let Ok(outer) = OuterView::parse(p) {
                prop_assert_eq!(peek_in(p, &outer, &sa), expected);
            }
        }
    }
}
