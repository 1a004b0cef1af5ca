//! Manual SAs in the shipped topologies: the SA pairs the routing stacks
//! install (DVIPA side) and `plexnet client` uses (client side), and their
//! way through the resolved JSON the daemons read.

use plexnet::ipsec::{EncAlg, IntegAlg, Mode, Protocol, Sa, Spi, TrafficSelector};
use plexnet::topology::manual::{derive_key, KeyUsage};
use plexnet::topology::{self, ClientIpsec, ManualProtocol, Topology};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

fn load(rel: &str) -> Topology {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    topology::load(&path).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

#[test]
fn figure4_client1_has_an_esp_tunnel_to_dva1() {
    let t = load("topologies/figure4-manual.toml");
    let client = t.client("client1").expect("client1");
    assert_eq!(client.ipsec, ClientIpsec::Plexnet);
    assert_eq!(t.manual_sas.len(), 1);
    let m = &t.manual_sas[0];
    let (client1, dva1) = (ip("198.18.1.2"), ip("198.18.0.100"));
    assert_eq!(
        (m.client.as_str(), m.client_addr, m.dvipa),
        ("client1", client1, dva1)
    );
    assert_eq!(
        (m.protocol, m.mode, m.udp_encap),
        (ManualProtocol::Esp, Mode::Tunnel, false)
    );
    // DVB1 has none; DVA1's routing stack finds its pair by address.
    assert_eq!(t.manual_sas_to(ip("198.18.0.101")).count(), 0);
    let at_dva1: Vec<_> = t.manual_sas_to(dva1).collect();
    assert_eq!(at_dva1.len(), 1);

    let side = m.dvipa_side();
    assert_eq!((side.local, side.peer), (dva1, client1));
    let inbound = side.inbound.esp.as_ref().expect("DVA1 receives with ESP");
    let outbound = side.outbound.esp.as_ref().expect("DVA1 sends with ESP");
    assert!(side.inbound.ah.is_none() && side.outbound.ah.is_none());
    for (sa, src, dst, spi) in [
        (inbound, client1, dva1, Spi(0x5000_0011)),
        (outbound, dva1, client1, Spi(0x5000_0012)),
    ] {
        assert_eq!(sa.spi, spi);
        assert_eq!((sa.protocol, sa.mode), (Protocol::Esp, Mode::Tunnel));
        assert_eq!(
            (sa.enc, sa.integ),
            (EncAlg::AesCbc128, IntegAlg::HmacSha1_96)
        );
        assert_eq!((sa.src, sa.dst), (IpAddr::V4(src), IpAddr::V4(dst)));
        assert_eq!(
            sa.selector,
            TrafficSelector::hosts(IpAddr::V4(src), IpAddr::V4(dst))
        );
        let secret = "figure4 manual tunnel: not for production";
        assert_eq!(sa.enc_key, derive_key(secret, spi, KeyUsage::Enc, 16));
        assert_eq!(sa.integ_key, derive_key(secret, spi, KeyUsage::Integ, 20));
        assert!(!sa.esn);
        assert_eq!(sa.udp_encap, None);
        Sa::new(sa.clone()).expect("the IPsec engine accepts the SA");
    }
    // The client's view is the mirror image.
    let c = m.client_side();
    assert_eq!(c.outbound, side.inbound);
    assert_eq!(c.inbound, side.outbound);
}

#[test]
fn minimal_client1_has_an_esp_tunnel_to_dva1() {
    let t = load("topologies/minimal.toml");
    let m = t
        .manual_sas_of_client("client1")
        .next()
        .expect("a manual SA");
    assert_eq!(m.dvipa, ip("198.18.0.100"));
    assert_eq!((m.protocol, m.mode), (ManualProtocol::Esp, Mode::Tunnel));
    let f4 = load("topologies/figure4-manual.toml");
    assert_ne!(
        m.to_dvipa.esp.as_ref().map(|s| &s.enc_key),
        f4.manual_sas[0].to_dvipa.esp.as_ref().map(|s| &s.enc_key),
        "another secret, other keys"
    );
}

#[test]
fn manual_sas_survive_the_resolved_json() {
    let t = load("topologies/figure4-manual.toml");
    let json = serde_json::to_vec(&t).expect("serializes");
    let back: Topology = serde_json::from_slice(&json).expect("deserializes");
    assert_eq!(back.manual_sas, t.manual_sas);
    assert_eq!(back.clients[0].ipsec, ClientIpsec::Plexnet);
}

/// topologies/bundle-manual.toml: an AH+ESP bundle (ESP encrypts alone, AH
/// authenticates), which DVA1's routing stack installs as one bundle with
/// a CF structure per outbound SA.
#[test]
fn bundle_manual_client1_has_an_ah_esp_bundle_to_dva1() {
    use plexnet::runtime::image::{manual_bundle, manual_install};
    let t = load("topologies/bundle-manual.toml");
    let m = &t.manual_sas[0];
    assert_eq!((m.protocol, m.mode), (ManualProtocol::AhEsp, Mode::Tunnel));
    let (esp, ah) = (
        m.to_dvipa.esp.as_ref().expect("ESP to DVA1"),
        m.to_dvipa.ah.as_ref().expect("AH to DVA1"),
    );
    assert_eq!((esp.spi, ah.spi), (Spi(0x5000_0011), Spi(0x5000_0013)));
    assert_eq!((esp.enc, esp.integ), (EncAlg::AesCbc128, IntegAlg::None));
    assert_eq!(
        (ah.protocol, ah.integ),
        (Protocol::Ah, IntegAlg::HmacSha256_128)
    );
    assert!(manual_install(m).is_none(), "a bundle is not a single pair");
    let b = manual_bundle(m).expect("a bundle install");
    assert_eq!(b.check(), Ok(()));
    assert_eq!(
        (
            b.esp.inbound.spi,
            b.esp.outbound.spi,
            b.ah.inbound.spi,
            b.ah.outbound.spi
        ),
        (
            Spi(0x5000_0011),
            Spi(0x5000_0012),
            Spi(0x5000_0013),
            Spi(0x5000_0014)
        )
    );
    assert_eq!(
        (b.ah.seq_key.protocol, b.ah.seq_key.spi),
        (Protocol::Ah, Spi(0x5000_0014))
    );
    assert_ne!(
        b.esp.seq_key, b.ah.seq_key,
        "one CF structure per outbound SA"
    );
    let f4 = load("topologies/figure4-manual.toml");
    assert!(
        manual_bundle(&f4.manual_sas[0]).is_none(),
        "ESP alone is no bundle"
    );
}
