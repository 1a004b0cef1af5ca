//! Manual SAs that load: defaults, bundles, keys, SPIs; and the policy
//! a secured owner must have for them.

use super::*;

#[test]
fn manual_sa_needs_a_manual_tunnel_rule_on_a_secured_owner() {
    let t = load(&secured(&policy("198.18.1.2", "ipsec"))).expect("covered");
    assert_eq!(only(&t).dvipa, "198.18.0.100".parse::<Ipv4Addr>().unwrap());
    const ALLOWED: &str = "allowed: in its ipsec_policy, an IpFilterRule that covers the SA's traffic (the first IPsec rule that does) with IpGenericFilterActionRef of an IpSec action and IpManVpnActionRef of an IpManVpnAction with LocalSecurityEndpointAddr 198.18.0.100 and RemoteSecurityEndpointAddr 198.18.1.2";
    let at = |text: String| text.replacen("client = \"client1\"", "client = ‸\"client1\"", 1);
    check(
        &at(secured(&policy("198.18.1.9", "ipsec"))),
        &format!("manual SA between client1 (198.18.1.2) and 198.18.0.100: MVS1 has IPCONFIG IPSECURITY and the IpManVpnAction man of IpFilterRule r, which covers it, has endpoints 198.18.0.100 and 198.18.1.9; {ALLOWED}"),
    );
    check(
        &at(secured(&policy("198.18.1.2", "permit"))),
        &format!("manual SA between client1 (198.18.1.2) and 198.18.0.100: MVS1 has IPCONFIG IPSECURITY and no IPsec IpFilterRule covers its traffic; {ALLOWED}"),
    );
}

#[test]
fn defaults_esp_tunnel_aes128_sha1() {
    let t = load(BASE).expect("BASE loads");
    let m = only(&t);
    assert_eq!(m.client, "client1");
    assert_eq!(m.client_addr, Ipv4Addr::new(198, 18, 1, 2));
    assert_eq!(m.dvipa, Ipv4Addr::new(198, 18, 0, 100));
    assert_eq!(
        (m.protocol, m.mode, m.udp_encap),
        (ManualProtocol::Esp, Mode::Tunnel, false)
    );
    let out = m.to_dvipa.esp.as_ref().expect("ESP to the DVIPA");
    let back = m.to_client.esp.as_ref().expect("ESP to the client");
    assert!(m.to_dvipa.ah.is_none() && m.to_client.ah.is_none());
    assert_eq!((out.spi, back.spi), (Spi(0x5000_0011), Spi(0x5000_0012)));
    assert_eq!(
        (out.enc, out.integ),
        (EncAlg::AesCbc128, IntegAlg::HmacSha1_96)
    );
    assert_eq!(out.src, IpAddr::V4(m.client_addr));
    assert_eq!(out.dst, IpAddr::V4(m.dvipa));
    assert_eq!((back.src, back.dst), (out.dst, out.src));
    assert_eq!(
        out.selector,
        TrafficSelector::hosts(IpAddr::V4(m.client_addr), IpAddr::V4(m.dvipa))
    );
    assert_eq!(back.selector.src, out.selector.dst);
    assert_eq!(out.replay_window, DEFAULT_REPLAY_WINDOW);
    assert_eq!(out.lifetimes.hard.packets, Some(u64::from(u32::MAX)));
    assert_eq!(out.lifetimes.hard.seconds, None);
    assert!(out.lifetimes.soft.packets < out.lifetimes.hard.packets);
    // Keys differ per SA and per use, and follow the documented formula.
    assert_eq!(
        out.enc_key,
        derive_key("s3cret", out.spi, KeyUsage::Enc, 16)
    );
    assert_eq!(out.integ_key.0.len(), 20);
    assert_ne!(out.enc_key, back.enc_key);
    assert_ne!(out.integ_key, back.integ_key);
    assert_ne!(out.enc_key.0[..], out.integ_key.0[..16]);
    // The two views mirror each other.
    let (c, d) = (m.client_side(), m.dvipa_side());
    assert_eq!((c.local, c.peer), (d.peer, d.local));
    assert_eq!(c.outbound, d.inbound);
    assert_eq!(c.inbound, d.outbound);
    assert_eq!(t.manual_sas_to(m.dvipa).count(), 1);
    assert_eq!(t.manual_sas_of_client("CLIENT1").count(), 1);
    for sa in m.to_dvipa.sas().chain(m.to_client.sas()) {
        Sa::new(sa.clone()).expect("the engine accepts it");
    }
}

#[test]
fn derive_key_is_deterministic_and_expands() {
    let a = derive_key("x", Spi(0x100), KeyUsage::Integ, 64);
    assert_eq!(a.0.len(), 64);
    assert_eq!(a, derive_key("x", Spi(0x100), KeyUsage::Integ, 64));
    assert_eq!(
        a.0[..20],
        derive_key("x", Spi(0x100), KeyUsage::Integ, 20).0[..]
    );
    assert_ne!(a.0[..32], a.0[32..]);
    assert_ne!(a, derive_key("x", Spi(0x101), KeyUsage::Integ, 64));
    assert_ne!(a, derive_key("y", Spi(0x100), KeyUsage::Integ, 64));
    // T1 by hand: HMAC-SHA256("x", label | SPI | "integ" | 1).
    let mut mac = Hmac::<Sha256>::new_from_slice(b"x").expect("any key length");
    mac.update(b"plexnet manual sa\x00\x00\x01\x00integ\x01");
    assert_eq!(a.0[..32], mac.finalize().into_bytes()[..]);
}

#[test]
fn ah_esp_bundle_transport_with_hex_keys() {
    let text = with(
        "protocol = \"ah+esp\"\nmode = \"transport\"\nencryption = \"aes256-gcm16\"\nintegrity = \"hmac-sha256-128\"\nspi_to_dvipa = 0x1001\nah_spi_to_client = 0x2002\nenc_key_to_dvipa = \"0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223\"",
    );
    let t = load(&text).expect("loads");
    let m = only(&t);
    assert_eq!(m.protocol, ManualProtocol::AhEsp);
    let esp = m.to_dvipa.esp.as_ref().expect("ESP");
    let ah = m.to_dvipa.ah.as_ref().expect("AH");
    assert_eq!((esp.spi, esp.mode), (Spi(0x1001), Mode::Transport));
    assert_eq!((esp.enc, esp.integ), (EncAlg::AesGcm16_256, IntegAlg::None));
    assert_eq!(esp.enc_key.0[35], 0x23);
    assert_eq!(
        (ah.protocol, ah.enc, ah.integ),
        (Protocol::Ah, EncAlg::Null, IntegAlg::HmacSha256_128)
    );
    assert_eq!(
        ah.integ_key,
        derive_key("s3cret", ah.spi, KeyUsage::Integ, 32)
    );
    let back_ah = m.to_client.ah.as_ref().expect("AH back");
    assert_eq!(back_ah.spi, Spi(0x2002));
    // The defaults of the other SPIs are distinct from the given ones.
    let spis: Vec<u32> = m
        .to_dvipa
        .sas()
        .chain(m.to_client.sas())
        .map(|s| s.spi.0)
        .collect();
    assert_eq!(
        spis,
        [
            0x1001,
            ah.spi.0,
            m.to_client.esp.as_ref().map_or(0, |s| s.spi.0),
            0x2002
        ]
    );
    assert_eq!(ah.spi, Spi(0x5000_0013));
}

#[test]
fn ah_and_udp_encap_and_lifetimes() {
    let t = load(&with("protocol = \"ah\"\nintegrity = \"hmac-sha512-256\"\nreplay_window = 64\nlifetime = { hard_seconds = 800, soft_bytes = 10, hard_bytes = 20 }"))
        .expect("loads");
    let m = only(&t);
    assert!(m.to_dvipa.esp.is_none());
    let ah = m.to_dvipa.ah.as_ref().expect("AH");
    assert_eq!((ah.protocol, ah.integ_key.0.len()), (Protocol::Ah, 64));
    assert_eq!(ah.replay_window, 64);
    assert_eq!(ah.lifetimes.hard.seconds, Some(800));
    assert_eq!(ah.lifetimes.soft.seconds, Some(700));
    assert_eq!(
        (ah.lifetimes.soft.bytes, ah.lifetimes.hard.bytes),
        (Some(10), Some(20))
    );
    let t = load(&with("udp_encap = true\nencryption = \"aes128-gcm16\"")).expect("loads");
    let esp = only(&t).to_client.esp.clone().expect("ESP");
    assert_eq!(
        esp.udp_encap,
        Some(UdpEncap {
            src_port: 4500,
            dst_port: 4500
        })
    );
    assert_eq!(
        esp.enc_key.0.len(),
        20,
        "16 bytes of key and the 4-byte salt"
    );
}

#[test]
fn dvipa_by_address_and_default_spis_avoid_given_ones() {
    let text =
        with("spi_to_client = 0x50000011").replace("dvipa = \"DVA1\"", "dvipa = \"198.18.0.101\"");
    let t = load(&text).expect("loads");
    let m = only(&t);
    assert_eq!(m.dvipa, Ipv4Addr::new(198, 18, 0, 101));
    let out = m.to_dvipa.esp.as_ref().expect("ESP");
    assert_eq!(out.spi, Spi(0x5100_0011));
}

#[test]
fn unknown_choices() {
    check(
        &BASE.replace("ipsec = \"plexnet\"", "ipsec = ‸\"racoon\""),
        "ipsec `racoon` is not known; allowed: none, plexnet, strongswan",
    );
    check(
        &with("protocol = ‸\"gre\""),
        "protocol `gre` is not known; allowed: esp, ah, ah+esp",
    );
    check(
        &with("mode = ‸\"tunel\""),
        "mode `tunel` is not known; allowed: tunnel, transport",
    );
    check(
        &with("encryption = ‸\"3des\""),
        "encryption `3des` is not known; allowed: aes128-cbc, aes192-cbc, aes256-cbc, aes128-gcm16, aes256-gcm16, null",
    );
    check(
        &with("integrity = ‸\"md5\""),
        "integrity `md5` is not known; allowed: hmac-sha1-96, hmac-sha256-128, hmac-sha384-192, hmac-sha512-256, none (with AES-GCM only)",
    );
}

#[test]
fn unknown_client_and_client_without_ipsec() {
    check(
        &BASE.replace("client = \"client1\"", "client = ‸\"client9\""),
        "manual SA for `client9`, which is not a client; allowed: a [[client]] name: client1, client2",
    );
    check(
        &BASE.replace("client = \"client1\"", "client = ‸\"client2\""),
        "manual SA for client client2, which has ipsec = \"none\"; allowed: manual SAs only for clients with ipsec = \"plexnet\"",
    );
}

#[test]
fn unknown_dvipa() {
    let allowed = "allowed: a DVIPA some image VIPADEFINEs or VIPABACKUPs, by [hosts] name or address: DVA1 (198.18.0.100), 198.18.0.101";
    check(
        &BASE.replace("dvipa = \"DVA1\"", "dvipa = ‸\"DVA2\""),
        &format!("`DVA2` is not a DVIPA of this topology; {allowed}"),
    );
    check(
        &BASE.replace("dvipa = \"DVA1\"", "dvipa = ‸\"198.18.0.11\""),
        &format!("`198.18.0.11` is not a DVIPA of this topology; {allowed}"),
    );
    check(
        &BASE.replace("dvipa = \"DVA1\"", "dvipa = ‸\"MVS1\""),
        &format!("`MVS1` is not a DVIPA of this topology; {allowed}"),
    );
}

#[test]
fn duplicate_manual_sa() {
    let text = format!(
        "{BASE}[[manual_sa]]\nclient = \"client1\"\ndvipa = ‸\"198.18.0.100\"\nsecret = \"x\"\n"
    );
    check(
        &text,
        "a second manual SA between client1 and 198.18.0.100 (first at line 18); allowed: one [[manual_sa]] per client and DVIPA",
    );
}
