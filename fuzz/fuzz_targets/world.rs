//! Shared by the sysplex fuzz targets: figure4's sysplex in the simulator
//! (`plexnet::sim::World`, which drives the real `Image` state machines),
//! with an ESP SA pair installed, and a way to cut fuzz bytes into records.

// Each target uses part of it.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::OnceLock;

use plexnet::sim::{SaSpec, World};
use plexnet::sysplex::cf::CouplingFacility;
use plexnet::sysplex::spec::SysplexSpec;

/// DVA1: MVS1 owns it and distributes it to MVS1, MVS2 and MVS4; MVS5
/// backs it up.
pub const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The SPI of the client's SA to DVA1 (`SaSpec::esp_cbc_sha1`).
pub const SPI_IN: u32 = 0x1001;

/// figure4's sysplex, loaded once per process from the repository.
pub fn figure4() -> &'static SysplexSpec {
    static SPEC: OnceLock<SysplexSpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies/figure4.toml");
        plexnet::topology::load(&path)
            .expect("topologies/figure4.toml loads")
            .sysplex_spec()
    })
}

/// figure4's DVA1 in the simulator as the daemons run it: the routing
/// stack filters with MVS1's IP security policy, and the client's ESP SA
/// pair (tunnel, AES-CBC-128, HMAC-SHA1-96, SPI 0x1001 in) is in MVS1's
/// IKE, every target's shadow cache and the client.
pub fn world() -> World {
    let mut w = World::from_sysplex(7, figure4(), DVA1, Box::new(CouplingFacility::new()));
    w.enforce_ip_security();
    w.install_sa(SaSpec::esp_cbc_sha1());
    w
}

/// One record of a fuzz input: what to do (`kind`) and with what bytes.
#[derive(Debug)]
pub struct Record<'a> {
    pub kind: u8,
    pub bytes: &'a [u8],
}

/// Cuts `data` into records `[kind][len: u16 big-endian][len bytes]`; a
/// length past the end takes what is left. At most `max` records, so an
/// input's cost stays bounded.
pub fn records(mut data: &[u8], max: usize) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while out.len() < max {
        let [kind, hi, lo, rest @ ..] = data else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        out.push(Record {
            kind: *kind,
            bytes: &rest[..len],
        });
        data = &rest[len..];
    }
    out
}

/// `body` behind a valid IPv4 header from the client to DVA1 with
/// protocol `proto`: `spi` first when given, so ESP reaches the SA.
pub fn ipv4_to_dva1(client: Ipv4Addr, proto: u8, spi: Option<u32>, body: &[u8]) -> Vec<u8> {
    use plexnet::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};
    let mut payload = Vec::with_capacity(body.len() + 4);
    if let Some(spi) = spi {
        payload.extend_from_slice(&spi.to_be_bytes());
    }
    payload.extend_from_slice(body);
    payload.truncate(65_000);
    let repr = Ipv4Repr::new(client, DVA1, IpProtocol::from(proto), payload.len());
    let mut packet = vec![0u8; 20];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]));
    packet.extend_from_slice(&payload);
    packet
}
