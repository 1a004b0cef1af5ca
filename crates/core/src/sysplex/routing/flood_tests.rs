//! A spoofed SYN flood against a bounded DCT (`[limits]`): established
//! connections keep being routed, half-open entries make room oldest
//! first, a table full of established entries refuses SYNs and counts
//! them, and the CF journal does not carry what was made and evicted
//! between two takes.

use std::net::Ipv4Addr;

use super::{Decision, RouteDrop, RoutingConfig, RoutingStack};
use crate::sysplex::config::{Dest, DestRole, DistMethod, VipaDistribute};
use crate::sysplex::dct::{ConnKey, DctLimits};
use crate::sysplex::xcf::XcfMessage;
use crate::time::Instant;
use crate::wire::build::tcp_packet;
use crate::wire::TcpFlags;

const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

/// `name` (XCF address `xcf`) distributing DVA1:80 round robin to
/// `dests` (image, XCF address), its DCT bounded at `max` entries and
/// journalled.
pub(super) fn distributor(
    name: &str,
    xcf: Ipv4Addr,
    dests: &[(&str, Ipv4Addr)],
    max: u32,
) -> RoutingStack {
    let dests = dests
        .iter()
        .map(|(n, x)| Dest {
            image: n.to_string(),
            xcf_addr: *x,
            role: DestRole::Plain,
        })
        .collect();
    let dist = VipaDistribute {
        method: DistMethod::RoundRobin,
        addr: DVA1,
        ports: vec![80],
        timed_affinity: None,
        dests,
        all: false,
    };
    let config = RoutingConfig {
        limits: DctLimits {
            max_entries: max,
            syn_pressure_ms: 500,
        },
        ..RoutingConfig::default()
    };
    let mut r = RoutingStack::new(name, xcf, config, &[dist]);
    r.keep_journal();
    r
}

/// MVS1 distributing DVA1:80 round robin to MVS2 and MVS3 (both
/// listening), its DCT bounded at `max` entries.
fn routing(max: u32) -> RoutingStack {
    let dests = [
        ("MVS2", Ipv4Addr::new(198, 19, 0, 2)),
        ("MVS3", Ipv4Addr::new(198, 19, 0, 3)),
    ];
    let mut r = distributor("MVS1", Ipv4Addr::new(198, 19, 0, 1), &dests, max);
    for t in ["MVS2", "MVS3"] {
        r.on_xcf(
            t,
            &XcfMessage::RegisterListener {
                dvipa: DVA1,
                port: 80,
            },
        );
    }
    r
}

fn segment(src: Ipv4Addr, sport: u16, flags: TcpFlags) -> Vec<u8> {
    tcp_packet(src, sport, DVA1, 80, 1, 1, flags, b"")
}

/// The `n`-th spoofed source: 198.18.200.0/21 and a port.
fn spoofed(n: u32) -> (Ipv4Addr, u16) {
    let host = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 200, 0)) + (n % 2048));
    (host, 1024 + (n / 2048) as u16)
}

fn forwarded(d: &Decision) -> bool {
    matches!(d, Decision::Forward { .. })
}

#[test]
fn a_syn_flood_evicts_half_open_entries_and_never_an_established_one() {
    let mut r = routing(64);
    let ms = Instant::from_millis;
    for port in [40000, 40001] {
        assert!(forwarded(
            &r.inbound(ms(0), &segment(CLIENT, port, TcpFlags::SYN))
        ));
        assert!(forwarded(
            &r.inbound(ms(1), &segment(CLIENT, port, TcpFlags::ACK))
        ));
    }
    for n in 0..10_000u32 {
        let (src, sport) = spoofed(n);
        let now = ms(2 + u64::from(n) / 10);
        assert!(forwarded(
            &r.inbound(now, &segment(src, sport, TcpFlags::SYN))
        ));
        if n % 1000 == 0 {
            let ack = segment(CLIENT, 40000, TcpFlags::ACK);
            assert!(forwarded(&r.inbound(now, &ack)), "established flows");
        }
    }
    let c = r.dct().counters();
    assert_eq!(r.dct().len(), 64);
    assert_eq!(c.half_open_evicted, 10_000 - 62);
    assert_eq!((c.full, c.peak), (0, 64));
    for port in [40000, 40001] {
        let key = ConnKey {
            client: CLIENT,
            client_port: port,
            dvipa: DVA1,
            port: 80,
        };
        assert!(r.dct().get(&key).is_some(), "established {port} kept");
    }
    // Only the SYNs still in the table reach the CF journal.
    let made = r.take_journal().len();
    assert_eq!(made, 64, "2 established + 62 half-open left");
    // Full: the half-open timeout is the pressure one.
    assert_eq!(r.dct().syn_limit(&r.config().timeouts).as_millis(), 500);
    r.on_timeout(ms(10_000));
    assert_eq!(r.dct().len(), 2, "half-open aged out; established stay");
}

#[test]
fn a_table_full_of_established_connections_refuses_the_syn_and_counts_it() {
    let mut r = routing(16);
    let ms = Instant::from_millis;
    for port in 0..16 {
        r.inbound(ms(0), &segment(CLIENT, 40000 + port, TcpFlags::SYN));
        r.inbound(ms(1), &segment(CLIENT, 40000 + port, TcpFlags::ACK));
    }
    let (src, sport) = spoofed(1);
    let d = r.inbound(ms(2), &segment(src, sport, TcpFlags::SYN));
    assert_eq!(d, Decision::Drop(RouteDrop::DctFull));
    assert_eq!(r.counters().drops.get("dct-full"), Some(&1));
    assert_eq!(r.dct().counters().full, 1);
    assert_eq!(r.dct().len(), 16);
    let ack = segment(CLIENT, 40003, TcpFlags::ACK);
    assert!(forwarded(&r.inbound(ms(3), &ack)));
}
