//! The fuzz corpora's seeds, made deterministically from the real encoders
//! and a real IKE exchange: `make fuzz-seed` (`cargo run --example seed --
//! fuzz/corpus`) writes them into `<dir>/<target>/seed-<name>`. libFuzzer
//! then grows each corpus from them, and `cargo fuzz cmin` keeps it small.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use plexnet::ike::{Identity, Ike, IkeConfig, PeerConfig};
use plexnet::ipsec::TrafficSelector;
use plexnet::ipsec::{EncAlg, IntegAlg, Key, Lifetimes, Mode, Protocol, SaConfig, Spi};
use plexnet::sysplex::xcf::codec::{encode_cf_request, encode_cf_response, encode_xcf};
use plexnet::sysplex::dct::ConnState;
use plexnet::sysplex::xcf::{
    CfError, CfRequest, CfResponse, ConnEndReason, Direction, ReportedConn, SaInstall, SeqKey,
    VipaEntry, XcfMessage,
};
use plexnet::time::Instant;
use plexnet::wire::build::tcp_packet;
use plexnet::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// figure4's client1, the simulator's client.
const CLIENT1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// The IKE target's client.
const IKE_CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const SPI_IN: u32 = 0x1001;

/// `[kind][len: u16 BE][bytes]`, as `fuzz_targets/world.rs` cuts inputs.
fn record(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn sa(spi: u32, src: Ipv4Addr, dst: Ipv4Addr) -> SaConfig {
    SaConfig {
        spi: Spi(spi),
        protocol: Protocol::Esp,
        mode: Mode::Tunnel,
        src: src.into(),
        dst: dst.into(),
        enc: EncAlg::AesCbc128,
        enc_key: Key(vec![7; 16]),
        integ: IntegAlg::HmacSha1_96,
        integ_key: Key(vec![9; 20]),
        esn: false,
        replay_window: 1024,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: TrafficSelector::ANY_V4,
    }
}

fn seq_key() -> SeqKey {
    SeqKey {
        dvipa: DVA1,
        protocol: Protocol::Esp,
        spi: Spi(0x2001),
    }
}

/// One of each XCF message, framed.
fn xcf_frames() -> Vec<(String, Vec<u8>)> {
    let install = SaInstall::pair(DVA1, sa(SPI_IN, CLIENT1, DVA1), sa(0x2001, DVA1, CLIENT1));
    let msgs = vec![
        XcfMessage::Hello {
            image: "MVS2".into(),
            xcf_addr: Ipv4Addr::new(198, 19, 0, 2),
        },
        XcfMessage::Heartbeat { seq: 7 },
        XcfMessage::VipaList {
            owner: "MVS1".into(),
            vipas: vec![VipaEntry {
                dvipa: DVA1,
                ports: vec![60, 80, 5201],
            }],
        },
        XcfMessage::RegisterListener {
            dvipa: DVA1,
            port: 80,
        },
        XcfMessage::DeregisterListener {
            dvipa: DVA1,
            port: 80,
        },
        XcfMessage::SaInstall(Box::new(install)),
        XcfMessage::SaDelete {
            dvipa: DVA1,
            protocol: Protocol::Esp,
            inbound_spi: Spi(SPI_IN),
            outbound_spi: Spi(0x2001),
        },
        XcfMessage::NewConn {
            dvipa: DVA1,
            local_port: 80,
            peer: CLIENT1,
            peer_port: 40000,
            protocol: 6,
        },
        XcfMessage::Lifesize {
            dvipa: DVA1,
            protocol: Protocol::Esp,
            spi: Spi(SPI_IN),
            direction: Direction::Inbound,
            bytes: 150_000,
            packets: 100,
            highest_seq: 100,
        },
        XcfMessage::RekeyTiming {
            dvipa: DVA1,
            spi: Spi(SPI_IN),
            late: true,
        },
        XcfMessage::ConnEnded {
            dvipa: DVA1,
            port: 80,
            client: CLIENT1,
            client_port: 40000,
            reason: ConnEndReason::Closed,
        },
        XcfMessage::BundleDelete {
            dvipa: DVA1,
            esp_inbound_spi: Spi(0x11),
            esp_outbound_spi: Spi(0x12),
            ah_inbound_spi: Spi(0x13),
            ah_outbound_spi: Spi(0x14),
        },
        XcfMessage::ConnReport {
            dvipa: DVA1,
            target_xcf: Ipv4Addr::new(198, 19, 0, 2),
            conns: vec![ReportedConn {
                client: CLIENT1,
                client_port: 40000,
                port: 80,
                state: ConnState::Established,
                ipsec: true,
            }],
        },
    ];
    msgs.iter()
        .enumerate()
        .map(|(i, m)| {
            let mut out = Vec::new();
            encode_xcf(m, &mut out).expect("encodes");
            (format!("xcf-{i:02}"), out)
        })
        .collect()
}

/// What a target and a takeover ask the CF, in a plausible order.
fn cf_requests() -> Vec<CfRequest> {
    vec![
        CfRequest::CreateSeq {
            key: seq_key(),
            start: 1,
        },
        CfRequest::FetchAdd {
            key: seq_key(),
            n: 8,
        },
        CfRequest::FetchAdd {
            key: seq_key(),
            n: 300,
        },
        CfRequest::Put {
            key: "owner/198.18.0.100".into(),
            value: b"MVS1".to_vec(),
        },
        CfRequest::CompareAndSwap {
            key: "owner/198.18.0.100".into(),
            expected: Some(b"MVS1".to_vec()),
            value: b"MVS5".to_vec(),
        },
        CfRequest::CompareAndSwap {
            key: "owner/198.18.0.100".into(),
            expected: None,
            value: b"MVS2".to_vec(),
        },
        CfRequest::Get {
            key: "owner/198.18.0.100".into(),
        },
        CfRequest::List {
            prefix: "owner/".into(),
        },
        CfRequest::Delete {
            key: "owner/198.18.0.100".into(),
        },
        CfRequest::DeleteSeq { key: seq_key() },
        CfRequest::CreateSeqLimit {
            key: seq_key(),
            start: u64::from(u32::MAX) - 2,
            last: u64::from(u32::MAX),
        },
        CfRequest::FetchAdd {
            key: seq_key(),
            n: 8,
        },
    ]
}

fn cf_responses() -> Vec<CfResponse> {
    vec![
        CfResponse::Done,
        CfResponse::SeqRange { first: 9, n: 8 },
        CfResponse::Value(Some(b"MVS1".to_vec())),
        CfResponse::Value(None),
        CfResponse::Keys(vec!["conn/198.18.1.2:40000/80".into()]),
        CfResponse::Error(CfError::SeqExhausted(seq_key())),
        CfResponse::Error(CfError::Conflict(Some(b"MVS5".to_vec()))),
    ]
}

fn cf_stream() -> Vec<u8> {
    let mut out = vec![7]; // the piece size byte
    for (i, r) in cf_requests().iter().enumerate() {
        encode_cf_request(i as u32 + 1, r, &mut out).expect("encodes");
    }
    out
}

/// Every message an initiator sends DVA1's responder (seeded as the IKE
/// target's) in an exchange: IKE_SA_INIT, IKE_AUTH, a child rekey, an IKE
/// rekey, DPD and the delete, each as a record for port 500 (kind 0) or
/// 4500 (kind 1).
fn ike_exchange() -> Vec<Vec<u8>> {
    let now = Instant::from_secs(10);
    let mut rng_a = ChaCha20Rng::seed_from_u64(11);
    let mut rng_b = ChaCha20Rng::seed_from_u64(12);
    let a_config = IkeConfig::new(
        Identity::Fqdn("c".into()),
        "aes128-sha256-x25519",
        "aes128-sha1",
    )
    .expect("proposals");
    let mut b_config =
        IkeConfig::new(Identity::Ipv4(DVA1), "default", "default").expect("proposals");
    b_config
        .peers
        .push(PeerConfig::new(Identity::Fqdn("c".into()), &b"k"[..]));
    let mut a = Ike::new(a_config, IKE_CLIENT, &mut rng_a);
    let mut b = Ike::new(b_config, DVA1, &mut rng_b);
    let peer = PeerConfig::new(Identity::Ipv4(DVA1), &b"k"[..]);
    let id = a.initiate(now, SocketAddrV4::new(DVA1, 500), peer, &mut rng_a);
    let mut sent = Vec::new();
    let mut step = |a: &mut Ike, b: &mut Ike, rng_a: &mut ChaCha20Rng| {
        for _ in 0..20 {
            while let Some(t) = a.poll_transmit() {
                sent.push((t.remote.port(), t.payload.clone()));
                let from = SocketAddrV4::new(IKE_CLIENT, t.local_port);
                let _ = b.handle_datagram(now, from, t.remote.port(), &t.payload, &mut rng_b);
            }
            while let Some(t) = b.poll_transmit() {
                let from = SocketAddrV4::new(DVA1, t.local_port);
                let _ = a.handle_datagram(now, from, t.remote.port(), &t.payload, rng_a);
            }
        }
    };
    step(&mut a, &mut b, &mut rng_a);
    let child = std::iter::from_fn(|| a.poll_event()).find_map(|e| match e {
        plexnet::ike::IkeEvent::ChildSaEstablished(c) => Some(c.child),
        _ => None,
    });
    if let Some(child) = child {
        let _ = a.rekey_child(now, child, &mut rng_a);
        step(&mut a, &mut b, &mut rng_a);
    }
    let _ = a.rekey_ike(now, id, &mut rng_a);
    step(&mut a, &mut b, &mut rng_a);
    let _ = a.dpd(now, id, &mut rng_a);
    step(&mut a, &mut b, &mut rng_a);
    let _ = a.delete_ike(now, id, &mut rng_a);
    step(&mut a, &mut b, &mut rng_a);
    assert!(sent.len() >= 8, "a whole exchange: {} messages", sent.len());
    let mut whole = Vec::new();
    let mut first_two = Vec::new();
    for (i, (port, payload)) in sent.iter().enumerate() {
        let kind = u8::from(*port == 4500);
        record(&mut whole, kind, payload);
        if i < 2 {
            record(&mut first_two, kind, payload);
        }
    }
    let mut init = Vec::new();
    record(&mut init, 0, &sent[0].1);
    vec![init, first_two, whole]
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr::new(src, dst, IpProtocol::from(proto), payload.len());
    let mut p = vec![0u8; 20];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut p[..]));
    p.extend_from_slice(payload);
    p
}

/// A connection to DVA1:80 through the client's SA (kind 3), ESP under
/// the SA's SPI that does not authenticate (kind 1), clear packets to a
/// permitted and a protected port (kind 0), time passing (kind 4).
fn routing_inputs() -> Vec<(String, Vec<u8>)> {
    let tcp = |port, seq, ack, flags, data: &[u8]| {
        tcp_packet(CLIENT1, 40000, DVA1, port, seq, ack, flags, data)
    };
    let ack = TcpFlags::ACK;
    let psh_ack = TcpFlags(TcpFlags::ACK.0 | TcpFlags::PSH.0);
    let fin_ack = TcpFlags(TcpFlags::ACK.0 | TcpFlags::FIN.0);
    let mut conn = Vec::new();
    record(&mut conn, 3, &tcp(80, 100, 0, TcpFlags::SYN, &[]));
    record(&mut conn, 3, &tcp(80, 101, 1001, ack, &[]));
    record(
        &mut conn,
        3,
        &tcp(80, 101, 1001, psh_ack, b"GET / HTTP/1.1\r\n\r\n"),
    );
    record(&mut conn, 4, &[20]);
    record(&mut conn, 3, &tcp(80, 119, 1100, fin_ack, &[]));
    record(&mut conn, 4, &[60]);
    let mut forged = Vec::new();
    let mut esp = vec![0, 0, 0, 5];
    esp.extend((0u8..64).map(|i| i.wrapping_mul(37)));
    record(&mut forged, 1, &esp);
    record(&mut forged, 2, &esp);
    let mut clear = Vec::new();
    record(&mut clear, 0, &tcp(60, 1, 0, TcpFlags::SYN, &[]));
    record(&mut clear, 0, &tcp(80, 1, 0, TcpFlags::SYN, &[]));
    let ike = ike_exchange();
    let mut udp = vec![0x01, 0xf4, 0x01, 0xf4, 0, 0, 0, 0];
    let init = &ike[0][3..];
    udp[4..6].copy_from_slice(&((8 + init.len()) as u16).to_be_bytes());
    udp.extend_from_slice(init);
    record(&mut clear, 0, &ipv4(CLIENT1, DVA1, 17, &udp));
    vec![
        ("conn".into(), conn),
        ("forged-esp".into(), forged),
        ("clear".into(), clear),
    ]
}

/// GRE from MVS1 on MVS2's link: raw, in UDP, wrapped by the simulator,
/// and the client's sealed SYN.
fn gre_inputs() -> Vec<(String, Vec<u8>)> {
    let mvs1 = Ipv4Addr::new(198, 19, 0, 1);
    let mvs2 = Ipv4Addr::new(198, 19, 0, 2);
    let mut esp = SPI_IN.to_be_bytes().to_vec();
    esp.extend_from_slice(&[0, 0, 0, 1]);
    esp.extend((0u8..48).map(|i| i.wrapping_mul(13)));
    let inner = ipv4(CLIENT1, DVA1, 50, &esp);
    let mut gre = vec![0, 0, 0x08, 0];
    gre.extend_from_slice(&inner);
    let mut sealed = Vec::new();
    record(&mut sealed, 3, &[]);
    record(&mut sealed, 3 | 16, &[]);
    let mut wrapped = Vec::new();
    record(&mut wrapped, 2 | 32, &esp[4..]);
    record(&mut wrapped, 2 | 16, &inner);
    let mut raw = Vec::new();
    record(&mut raw, 0, &ipv4(mvs1, mvs2, 47, &gre));
    record(&mut raw, 1, &gre);
    vec![
        ("sealed".into(), sealed),
        ("wrapped".into(), wrapped),
        ("raw".into(), raw),
    ]
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("corpus directory");
    std::fs::write(d.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    for (name, frame) in xcf_frames() {
        let mut input = vec![0];
        input.extend_from_slice(&frame);
        write(&dir, "xcf_codec", &name, &input);
    }
    for (i, r) in cf_responses().iter().enumerate() {
        let mut input = vec![0];
        encode_cf_response(i as u32, r, &mut input).expect("encodes");
        write(&dir, "xcf_codec", &format!("cf-response-{i}"), &input);
    }
    write(&dir, "cf_codec", "requests", &cf_stream());
    for (i, input) in ike_exchange().iter().enumerate() {
        write(&dir, "ike_message", &format!("exchange-{i}"), input);
    }
    for (name, input) in routing_inputs() {
        write(&dir, "routing_inbound", &name, &input);
    }
    for (name, input) in gre_inputs() {
        write(&dir, "target_gre", &name, &input);
    }
    // The lying CF: the truth only, then answers falsified from the start.
    write(&dir, "cf_answers", "truth", &[]);
    write(&dir, "cf_answers", "lies", &(0u8..=255).collect::<Vec<_>>());
    for control in [0u8, 8, 0x48, 0x8c] {
        let mut input = vec![control, 0, 0, 0, 1];
        input.extend((0u8..64).map(|i| i.wrapping_mul(29)));
        write(&dir, "esp_open", &format!("c{control:02x}"), &input);
        write(&dir, "esp_peek", &format!("c{control:02x}"), &input);
    }
    println!("seeds written under {}", dir.display());
}
