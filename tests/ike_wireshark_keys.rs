//! Our `ikev2_decryption_table` lines work in tshark: an in-process
//! exchange is written to a pcap (raw IPv4/UDP), and tshark, given only our
//! key lines, decrypts the IKE_AUTH messages and checks their ICV. Skips
//! when tshark is missing (fails under CI).

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::process::Command;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use plexnet::ike::{Identity, Ike, IkeConfig, PeerConfig};
use plexnet::time::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

fn ipv4_udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    p.extend_from_slice(&src.ip().octets());
    p.extend_from_slice(&dst.ip().octets());
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let ulen = (8 + payload.len()) as u16;
    p.extend_from_slice(&src.port().to_be_bytes());
    p.extend_from_slice(&dst.port().to_be_bytes());
    p.extend_from_slice(&ulen.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

fn tshark_decrypts(ike: &str, esp: &str) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let c = IkeConfig::new(Identity::Fqdn("client1.plex".into()), ike, esp).unwrap();
    let mut m = IkeConfig::new(Identity::Ipv4(DVIPA), ike, esp).unwrap();
    m.peers.push(PeerConfig::new(
        Identity::Fqdn("client1.plex".into()),
        &b"psk"[..],
    ));
    let mut a = Ike::new(c, CLIENT, &mut rng);
    let mut b = Ike::new(m, DVIPA, &mut rng);
    let now = Instant::from_secs(1);
    let id = a.initiate(
        now,
        SocketAddrV4::new(DVIPA, 500),
        PeerConfig::new(Identity::Ipv4(DVIPA), &b"psk"[..]),
        &mut rng,
    );
    let mut packets = Vec::new();
    for _ in 0..4 {
        while let Some(t) = a.poll_transmit() {
            let src = SocketAddrV4::new(CLIENT, t.local_port);
            packets.push(ipv4_udp(src, t.remote, &t.payload));
            let _ = b.handle_datagram(now, src, t.remote.port(), &t.payload, &mut rng);
        }
        while let Some(t) = b.poll_transmit() {
            let src = SocketAddrV4::new(DVIPA, t.local_port);
            packets.push(ipv4_udp(src, t.remote, &t.payload));
            let _ = a.handle_datagram(now, src, t.remote.port(), &t.payload, &mut rng);
        }
    }
    assert_eq!(packets.len(), 4);
    let line = a.wireshark_ike_keys(id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("ike.pcap");
    let header = PcapHeader {
        datalink: DataLink::RAW,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(&pcap).unwrap(), header).unwrap();
    for (i, p) in packets.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i as u64),
            p.len() as u32,
            p,
        ))
        .unwrap();
    }
    drop(w);
    let tshark = |line: &str| {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .args(["-o", &format!("uat:ikev2_decryption_table:{line}")])
            .args(["-V", "-Y", "isakmp.exchangetype == 35"])
            .output()
            .expect("tshark");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{err}");
        (String::from_utf8_lossy(&out.stdout).into_owned(), err)
    };
    // Negative control: a wrong SK_ei (first key digit flipped) does not
    // decrypt, or fails the ICV check.
    let f: Vec<&str> = line.split(',').collect();
    let mut bad_key = f[2].to_string();
    let flipped = if bad_key.starts_with('0') { "1" } else { "0" };
    bad_key.replace_range(0..1, flipped);
    let bad_line = [f[0], f[1], &bad_key, f[3], f[4], f[5], f[6], f[7]].join(",");
    let (bad, _) = tshark(&bad_line);
    assert!(
        !bad.contains("client1.plex"),
        "decrypted with a wrong key:\n{bad}"
    );
    let (text, err) = tshark(&line);
    // Both IKE_AUTH messages decrypted: their inner payloads are shown.
    for want in [
        "Payload: Identification - Initiator",
        "Payload: Identification - Responder",
        "Payload: Authentication",
        "Payload: Traffic Selector - Initiator",
        "client1.plex",
    ] {
        assert!(text.contains(want), "{ike}: no {want:?} in:\n{text}\n{err}");
    }
    assert!(
        !text.contains("Integrity Checksum Data is incorrect"),
        "{text}"
    );
}

#[test]
fn tshark_decrypts_with_our_key_lines() {
    if Command::new("tshark").arg("-v").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI needs tshark");
        eprintln!("SKIPPED tshark_decrypts_with_our_key_lines: no tshark");
        return;
    }
    tshark_decrypts("aes128-sha256-x25519", "aes128-sha1");
    tshark_decrypts("aes256-sha512-ecp384", "aes256-sha256");
    tshark_decrypts("aes128gcm16-prfsha256-ecp256", "aes128gcm16");
}
