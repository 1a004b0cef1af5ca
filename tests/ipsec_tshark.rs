//! The independent check: packets plexnet sealed (every ESP suite, both
//! modes, plain and UDP-encapsulated) go into a pcap, and tshark, given
//! the keys through `uat:esp_sa`, must decrypt each one and find its ICV
//! good; a copy with one flipped bit must be `icv_bad` in tshark and be
//! rejected by plexnet.
//!
//! Needs `tshark`. Missing in CI (env `CI` set) is a failure; elsewhere
//! the test says what is missing and returns.

use core::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;
use plexnet::ipsec::{
    esp_sa_uat, open_esp, seal_esp, EncAlg, IntegAlg, Key, Lifetimes, Mode, OpenError, Protocol,
    ReplayWindow, Sa, SaConfig, Spi, TrafficSelector, UdpEncap,
};
use plexnet::wire::{
    ipv4, IpProtocol, Ipv4Packet, Ipv4Repr, PseudoHeader, TcpFlags, TcpPacket, TcpRepr,
};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

fn tshark_available() -> bool {
    match Command::new("tshark").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("tshark is missing, and CI is set: the independent ESP check cannot be skipped in CI");
            }
            eprintln!("SKIPPED ipsec_tshark: `tshark` (package tshark) is not installed; install it to run the independent ESP check");
            false
        }
    }
}

fn tcp_packet(sport: u16, len: usize) -> Vec<u8> {
    let payload = vec![0x61u8; len];
    let seg = TcpRepr {
        src_port: sport,
        dst_port: 80,
        seq_number: 1,
        ack_number: 1,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window_len: 1000,
        urgent_at: 0,
        options: &[],
        payload: &payload,
    };
    let mut buf = vec![0u8; ipv4::HEADER_LEN + seg.buffer_len()];
    Ipv4Repr::new(CLIENT, DVIPA, IpProtocol::Tcp, seg.buffer_len())
        .emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
    seg.emit(
        &mut TcpPacket::new_unchecked(&mut buf[ipv4::HEADER_LEN..]),
        &PseudoHeader::V4 {
            src: CLIENT,
            dst: DVIPA,
        },
    );
    buf
}

struct Case {
    sa: Sa,
    sport: u16,
}

fn cases(rng: &mut StdRng) -> Vec<Case> {
    let mut suites = Vec::new();
    for enc in EncAlg::ALL {
        if enc.is_aead() {
            suites.push((enc, IntegAlg::None));
        } else {
            for integ in IntegAlg::ALL {
                suites.push((enc, integ));
            }
        }
    }
    let mut out = Vec::new();
    for (enc, integ) in suites {
        for mode in [Mode::Transport, Mode::Tunnel] {
            for encap in [false, true] {
                let n = out.len() as u32;
                let mut enc_key = vec![0u8; enc.key_len()];
                rng.fill_bytes(&mut enc_key);
                let mut integ_key = vec![0u8; integ.key_len()];
                rng.fill_bytes(&mut integ_key);
                let sa = Sa::new(SaConfig {
                    spi: Spi(0xc000_0100 + n),
                    protocol: Protocol::Esp,
                    mode,
                    src: IpAddr::V4(CLIENT),
                    dst: IpAddr::V4(DVIPA),
                    enc,
                    enc_key: Key(enc_key),
                    integ,
                    integ_key: Key(integ_key),
                    esn: false,
                    replay_window: 64,
                    lifetimes: Lifetimes::default(),
                    udp_encap: encap.then_some(UdpEncap {
                        src_port: 4500,
                        dst_port: 4500,
                    }),
                    selector: TrafficSelector::ANY_V4,
                })
                .expect("valid SA");
                out.push(Case {
                    sa,
                    sport: 20000 + n as u16,
                });
            }
        }
    }
    out
}

#[test]
fn tshark_decrypts_and_verifies_every_sealed_packet() {
    if !tshark_available() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(3948);
    let cases = cases(&mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plexnet-esp.pcap");
    let file = std::fs::File::create(&path).expect("create pcap");
    let header = PcapHeader {
        datalink: DataLink::RAW,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(file, header).expect("pcap header");

    // Frame 2k+1: the sealed packet of case k; frame 2k+2: one bit flipped.
    let mut out = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let inner = tcp_packet(case.sport, 100 + 37 * k);
        let mut sealed = Vec::new();
        seal_esp(&case.sa, 1 + k as u64, &mut rng, &inner, &mut sealed).expect("seal");
        let mut flipped = sealed.clone();
        let at = flipped.len() - case.sa.icv_len() - 5;
        flipped[at] ^= 0x10;
        // plexnet's own verdicts on the same bytes.
        let mut w = ReplayWindow::new(64, false);
        assert!(open_esp(&case.sa, &mut w, &sealed, &mut out).is_ok());
        let mut w = ReplayWindow::new(64, false);
        assert_eq!(
            open_esp(&case.sa, &mut w, &flipped, &mut out),
            Err(OpenError::IcvMismatch)
        );
        for (i, p) in [sealed, flipped].iter().enumerate() {
            let ts = Duration::from_millis(2 * k as u64 + i as u64);
            writer
                .write_packet(&PcapPacket::new(ts, p.len() as u32, p))
                .expect("write packet");
        }
    }
    drop(writer);

    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(&path);
    cmd.args([
        "-o",
        "esp.enable_encryption_decode:TRUE",
        "-o",
        "esp.enable_authentication_check:TRUE",
    ]);
    for case in &cases {
        cmd.arg("-o").arg(format!(
            "uat:esp_sa:{}",
            esp_sa_uat(&case.sa).expect("ESP SA")
        ));
    }
    cmd.args([
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-e",
        "frame.number",
        "-e",
        "esp.spi",
    ]);
    cmd.args([
        "-e",
        "esp.icv_good",
        "-e",
        "esp.icv_bad",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.dstport",
    ]);
    let output = cmd.output().expect("run tshark");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tshark failed: {stderr}");
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(';').collect()).collect();
    assert_eq!(rows.len(), 2 * cases.len(), "{stdout}\n{stderr}");

    let mut failures = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let name = format!(
            "{} {:?}{}",
            case.sa.suite_name(),
            case.sa.mode(),
            if case.sa.config().udp_encap.is_some() {
                " udp-encap"
            } else {
                ""
            }
        );
        let good = &rows[2 * k];
        let bad = &rows[2 * k + 1];
        let spi = format!("0x{:08x}", case.sa.spi().0);
        let decrypted = good[4] == case.sport.to_string() && good[5] == "80";
        let icv_good = matches!(good[2], "1" | "True");
        let icv_bad = matches!(bad[3], "1" | "True");
        if good[1] != spi || !decrypted || !icv_good || !icv_bad {
            failures.push(format!("{name}: sealed {good:?}, flipped {bad:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "tshark disagrees on {} of {} SAs:\n{}\n{stderr}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "tshark decrypted and verified {} sealed packets and flagged {} flipped ones",
        cases.len(),
        cases.len()
    );
}
