//! Shared by the fuzz targets: SAs for every ESP suite and mode, and a way
//! to turn fuzz bytes into packets that reach deep into open and peek.

use std::net::{IpAddr, Ipv4Addr};

use plexnet::ipsec::{
    EncAlg, IntegAlg, Key, Lifetimes, Mode, Protocol, Sa, SaConfig, Spi, TrafficSelector, UdpEncap,
};
use plexnet::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};

pub const SPI: u32 = 0x0f0f_0001;
pub const AH_SPI: u32 = 0x0f0f_0002;

/// One SA per (control byte): suite, mode, ESN, UDP encapsulation.
pub fn esp_sa(control: u8) -> Sa {
    let suites = [
        (EncAlg::Null, IntegAlg::HmacSha1_96),
        (EncAlg::AesCbc128, IntegAlg::HmacSha1_96),
        (EncAlg::AesCbc256, IntegAlg::HmacSha256_128),
        (EncAlg::AesCbc192, IntegAlg::None),
        (EncAlg::AesGcm16_128, IntegAlg::None),
        (EncAlg::AesGcm16_256, IntegAlg::None),
        (EncAlg::AesCbc128, IntegAlg::HmacSha512_256),
        (EncAlg::Null, IntegAlg::HmacSha384_192),
    ];
    let (enc, integ) = suites[usize::from(control & 7)];
    Sa::new(SaConfig {
        spi: Spi(SPI),
        protocol: Protocol::Esp,
        mode: if control & 8 != 0 {
            Mode::Tunnel
        } else {
            Mode::Transport
        },
        src: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
        enc,
        enc_key: Key(vec![7; enc.key_len()]),
        integ,
        integ_key: Key(vec![9; integ.key_len()]),
        esn: control & 16 != 0,
        replay_window: 64,
        lifetimes: Lifetimes::default(),
        udp_encap: (control & 32 != 0).then_some(UdpEncap {
            src_port: 4500,
            dst_port: 4500,
        }),
        selector: TrafficSelector::ANY_V4,
    })
    .expect("valid SA")
}

/// An AH SA.
pub fn ah_sa(control: u8) -> Sa {
    Sa::new(SaConfig {
        spi: Spi(AH_SPI),
        protocol: Protocol::Ah,
        mode: if control & 8 != 0 {
            Mode::Tunnel
        } else {
            Mode::Transport
        },
        src: IpAddr::V4(Ipv4Addr::new(198, 18, 1, 10)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
        enc: EncAlg::Null,
        enc_key: Key(Vec::new()),
        integ: IntegAlg::HmacSha1_96,
        integ_key: Key(vec![3; 20]),
        esn: false,
        replay_window: 64,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: TrafficSelector::ANY_V4,
    })
    .expect("valid SA")
}

/// The packets to try: the raw bytes, and the bytes behind a valid outer
/// header whose protocol (ESP, UDP 4500, AH) the control byte picks, with
/// the SA's SPI in front so the deep paths are reached.
pub fn packets(control: u8, body: &[u8]) -> [Vec<u8>; 2] {
    let mut ipsec = Vec::new();
    let proto = match control >> 6 {
        0 => IpProtocol::Esp,
        1 => {
            let len = (8 + 4 + body.len()) as u16;
            ipsec.extend_from_slice(&[0x11, 0x94, 0x11, 0x94]);
            ipsec.extend_from_slice(&len.to_be_bytes());
            ipsec.extend_from_slice(&[0, 0]);
            IpProtocol::Udp
        }
        2 => {
            ipsec.extend_from_slice(&[50, 4, 0, 0]);
            ipsec.extend_from_slice(&AH_SPI.to_be_bytes());
            ipsec.extend_from_slice(&[0, 0, 0, 1]);
            ipsec.extend_from_slice(&[0; 12]);
            IpProtocol::Ah
        }
        _ => IpProtocol::Unknown(control),
    };
    ipsec.extend_from_slice(&SPI.to_be_bytes());
    ipsec.extend_from_slice(body);
    let mut packet = vec![0u8; 20];
    let repr = Ipv4Repr::new(
        Ipv4Addr::new(198, 18, 1, 10),
        Ipv4Addr::new(198, 18, 0, 100),
        proto,
        ipsec.len().min(65000),
    );
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]));
    packet.extend_from_slice(&ipsec);
    [body.to_vec(), packet]
}
