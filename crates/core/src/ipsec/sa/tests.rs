//! SA tests, and the SA configuration other modules' tests build on
//! ([`config`]).

use super::*;

pub(crate) fn config(enc: EncAlg, integ: IntegAlg, mode: Mode) -> SaConfig {
    SaConfig {
        spi: Spi(0x1000_0001),
        protocol: Protocol::Esp,
        mode,
        src: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
        enc,
        enc_key: Key((0..enc.key_len() as u8).collect()),
        integ,
        integ_key: Key((0..integ.key_len() as u8).map(|b| b ^ 0x5a).collect()),
        esn: false,
        replay_window: 1024,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: TrafficSelector::ANY_V4,
    }
}

#[test]
fn validates_combinations_and_keys() {
    assert!(Sa::new(config(
        EncAlg::AesCbc128,
        IntegAlg::HmacSha1_96,
        Mode::Tunnel
    ))
    .is_ok());
    assert!(Sa::new(config(
        EncAlg::AesGcm16_256,
        IntegAlg::None,
        Mode::Transport
    ))
    .is_ok());
    assert_eq!(
        Sa::new(config(
            EncAlg::AesGcm16_128,
            IntegAlg::HmacSha1_96,
            Mode::Tunnel
        ))
        .unwrap_err(),
        SaError::Combination("AES-GCM carries its own ICV")
    );
    assert_eq!(
        Sa::new(config(EncAlg::Null, IntegAlg::None, Mode::Tunnel)).unwrap_err(),
        SaError::Combination("ESP with NULL encryption needs integrity")
    );
    let mut short = config(EncAlg::AesCbc256, IntegAlg::HmacSha256_128, Mode::Tunnel);
    short.enc_key.0.pop();
    assert!(matches!(
        Sa::new(short),
        Err(SaError::KeyLength {
            want: 32,
            got: 31,
            ..
        })
    ));
    let mut ah = config(EncAlg::AesCbc128, IntegAlg::HmacSha1_96, Mode::Tunnel);
    ah.protocol = Protocol::Ah;
    assert_eq!(
        Sa::new(ah).unwrap_err(),
        SaError::Combination("AH does not encrypt")
    );
}

#[test]
fn serde_round_trip_rebuilds_the_sa() {
    let sa = Sa::new(config(
        EncAlg::AesCbc192,
        IntegAlg::HmacSha384_192,
        Mode::Tunnel,
    ))
    .unwrap();
    let json = serde_json::to_string(&sa).unwrap();
    assert!(json.contains("\"enc\":\"aes-cbc192\""), "{json}");
    let back: Sa = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sa);
    let bad = json.replace("\"spi\":268435457", "\"spi\":0");
    assert!(serde_json::from_str::<Sa>(&bad).is_err());
}

#[test]
fn key_hex_and_debug() {
    let key = Key(vec![0x00, 0xab, 0x10]);
    assert_eq!(key.to_hex(), "00ab10");
    assert_eq!(Key::from_hex("0x00AB10"), Some(key.clone()));
    assert_eq!(Key::from_hex("abc"), None);
    assert_eq!(format!("{key:?}"), "Key(<3 bytes>)");
}

#[test]
fn selectors() {
    let a = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 10));
    let b = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100));
    let mut ts = TrafficSelector::hosts(a, b);
    assert!(ts.matches(a, b, IpProtocol::Tcp, Some((1, 80))));
    assert!(!ts.matches(b, a, IpProtocol::Tcp, Some((1, 80))));
    ts.protocol = Some(IpProtocol::Tcp);
    ts.dst_ports = PortRange::single(80);
    assert!(!ts.matches(a, b, IpProtocol::Udp, Some((1, 80))));
    assert!(!ts.matches(a, b, IpProtocol::Tcp, Some((1, 81))));
    assert!(!ts.matches(a, b, IpProtocol::Tcp, None));
}

#[test]
fn lifetimes() {
    let l = Lifetime {
        seconds: Some(10),
        bytes: Some(1000),
        packets: None,
    };
    assert!(!l.reached(9, 999, u64::MAX));
    assert!(l.reached(10, 0, 0));
    assert!(l.reached(0, 1000, 0));
    assert!(!Lifetime::UNLIMITED.reached(u64::MAX, u64::MAX, u64::MAX));
}
