//! VIPA giveback in the simulator, kept as insta snapshots: figure4's
//! MVS1 owns DVA1 (VIPADEFINE MOVEABLE IMMEDIATE), MVS5 backs it up
//! (VIPABACKUP 100, DESTIP MVS2 MVS3 MVS4). MVS1 fails, MVS5 takes DVA1
//! over, connections are opened under MVS5, MVS1 restarts and MVS5 gives
//! DVA1 back through the CF: the connections opened under MVS5 keep going
//! to their targets through MVS1's DCT, on the same SAs and CF sequence
//! numbers, and new connections follow MVS1's VIPADISTRIBUTE.

use plexnet::sim::{SaSpec, World};
use plexnet::sysplex::cf::CouplingFacility;
use plexnet::sysplex::dct::ConnKey;
use plexnet::wire::TcpFlags;
use std::net::Ipv4Addr;

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const REQ: &[u8] = b"GET /a HTTP/1.1\r\nHost: DVA1\r\n\r\n";

fn psh_ack() -> TcpFlags {
    TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0)
}
fn fin_ack() -> TcpFlags {
    TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0)
}

/// figure4, with MVS1's VIPADEFINE of DVA1 MOVEABLE WHENIDLE when asked.
fn world(when_idle: bool) -> World {
    let topo =
        plexnet::topology::load(std::path::Path::new("topologies/figure4.toml")).expect("figure4");
    let mut spec = topo.sysplex_spec();
    if when_idle {
        let mvs1 = spec.images.iter_mut().find(|i| i.name == "MVS1").unwrap();
        mvs1.when_idle.push(DVA1);
    }
    let mut w = World::from_sysplex(7, &spec, DVA1, Box::new(CouplingFacility::new()));
    w.install_sa(SaSpec::esp_cbc_sha1());
    w
}

/// An HTTP/1.1 connection from `sport` that stays open after its first
/// request; returns where the routing stack sent it.
fn open(w: &mut World, sport: u16) -> String {
    w.client_tcp(sport, 500, 0, SYN, &[]);
    w.client_tcp(sport, 501, 1001, ACK, &[]);
    w.client_tcp(sport, 501, 1001, psh_ack(), REQ);
    target_of(w, sport).expect("in the DCT")
}

/// The open connection's next request (the answer's length is the same
/// for every target: "served by MVSk").
fn again(w: &mut World, sport: u16) {
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nserved by MVS2\n".len() as u32;
    w.client_tcp(sport, 501 + REQ.len() as u32, 1001 + answer, psh_ack(), REQ);
}

/// The open connection's FIN (and the server's answer to it).
fn close(w: &mut World, sport: u16) {
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nserved by MVS2\n".len() as u32;
    w.client_tcp(sport, 501 + REQ.len() as u32, 1001 + answer, fin_ack(), &[]);
}

fn key(sport: u16) -> ConnKey {
    ConnKey {
        client: CLIENT,
        client_port: sport,
        dvipa: DVA1,
        port: 80,
    }
}

/// Where the DVIPA's routing stack (whoever the LAN delivers it to) sends
/// the connection from `sport`.
fn target_of(w: &World, sport: u16) -> Option<String> {
    let e = w.routing_stack().dct().get(&key(sport))?;
    Some(e.target.to_string())
}

/// MVS1 fails at 6 s and MVS5 holds DVA1 from about 9 s.
fn take_over(w: &mut World) {
    w.advance_to(6000);
    w.fail("MVS1");
    w.advance_to(9500);
    assert_eq!(w.owner, "MVS5");
}

fn forwarded(w: &World, to: &str) -> u64 {
    w.routing_stack()
        .counters()
        .forwarded
        .get(to)
        .copied()
        .unwrap_or(0)
}

/// MOVEABLE IMMEDIATE: MVS5 gives DVA1 back as soon as MVS1 is back.
#[test]
fn giveback_immediate_moves_the_dct_and_sas_back_to_the_restarted_owner() {
    let mut w = world(false);
    // Under MVS1: one connection to MVS1 (it dies with MVS1) and one to
    // MVS2 (it survives both moves).
    assert_eq!(open(&mut w, 40000), "MVS1");
    assert_eq!(open(&mut w, 40001), "MVS2");
    take_over(&mut w);
    // Under MVS5: its ROUNDROBIN over MVS2, MVS3, MVS4.
    let under_backup: Vec<(u16, String)> = (40002..40005).map(|p| (p, open(&mut w, p))).collect();
    assert!(
        under_backup.iter().any(|(_, t)| t == "MVS3"),
        "{under_backup:?}"
    );
    w.advance_to(12000);
    w.restart("MVS1");
    // The giveback ran at once: MVS1 owns and routes DVA1 again.
    assert_eq!(w.owner, "MVS1");
    assert!(w.owns("MVS1", DVA1));
    assert!(!w.owns("MVS5", DVA1));
    assert_eq!(w.cf_owner().as_deref(), Some("MVS1"));
    assert_eq!(w.holder_seen_by("MVS5").as_deref(), Some("MVS1"));
    assert_eq!(w.holder_seen_by("MVS1").as_deref(), Some("MVS1"));
    assert_eq!(w.giveback_seen_by("MVS5"), None);
    // MVS5 is no target of MVS1's VIPADISTRIBUTE: its own shadow copies went.
    assert!(w.images["MVS5"].image.target().shadow().is_empty());
    assert!(w.images["MVS5"]
        .image
        .routing()
        .is_some_and(|r| !r.dvipas().contains(&DVA1)));
    // Every connection opened under MVS5 is in MVS1's DCT, towards the
    // target MVS5 chose, MVS3 (no target of MVS1's VIPADISTRIBUTE) too.
    for (p, t) in &under_backup {
        assert_eq!(target_of(&w, *p).as_deref(), Some(t.as_str()), "{p}");
    }
    assert_eq!(target_of(&w, 40001).as_deref(), Some("MVS2"));
    // They keep working: the next request of each reaches its target.
    let before: u64 = ["MVS2", "MVS3", "MVS4"]
        .iter()
        .map(|t| forwarded(&w, t))
        .sum();
    for (p, _) in &under_backup {
        again(&mut w, *p);
    }
    again(&mut w, 40001);
    let after: u64 = ["MVS2", "MVS3", "MVS4"]
        .iter()
        .map(|t| forwarded(&w, t))
        .sum();
    assert_eq!(after - before, 4);
    assert!(forwarded(&w, "MVS3") >= 1);
    // A new connection follows MVS1's ROUNDROBIN (MVS1, MVS2, MVS4).
    let t = open(&mut w, 40010);
    assert!(["MVS1", "MVS2", "MVS4"].contains(&t.as_str()), "{t}");
    let trace = w.trace();
    assert!(!trace.contains("stopped"), "{trace}");
    insta::assert_snapshot!(trace);
}

/// MOVEABLE WHENIDLE: MVS5 keeps DVA1, and takes new connections, while
/// connections to it remain; when the last one has ended, it gives DVA1
/// back at once.
#[test]
fn giveback_when_idle_waits_for_the_last_connection() {
    let mut w = world(true);
    assert_eq!(open(&mut w, 40000), "MVS1");
    take_over(&mut w);
    let t = open(&mut w, 40002);
    w.advance_to(12000);
    w.restart("MVS1");
    // One connection remains at MVS5: it keeps DVA1 and new connections.
    assert_eq!(w.owner, "MVS5");
    assert!(w
        .giveback_seen_by("MVS5")
        .is_some_and(|s| s.contains("WaitingIdle")));
    let t2 = open(&mut w, 40003);
    assert_eq!(target_of(&w, 40003).as_deref(), Some(t2.as_str()));
    w.advance_to(14000);
    assert_eq!(w.owner, "MVS5");
    // Both connections end; their DCT entries expire (closing: 5 s).
    close(&mut w, 40002);
    close(&mut w, 40003);
    w.advance_to(16000);
    assert_eq!(w.owner, "MVS5", "entries still closing");
    w.advance_to(22000);
    assert_eq!(w.owner, "MVS1");
    assert_eq!(w.cf_owner().as_deref(), Some("MVS1"));
    assert_eq!(w.holder_seen_by("MVS5").as_deref(), Some("MVS1"));
    assert_eq!(target_of(&w, 40002), None, "{t} ended before the giveback");
    let n = open(&mut w, 40010);
    assert!(["MVS1", "MVS2", "MVS4"].contains(&n.as_str()), "{n}");
    insta::assert_snapshot!(w.trace());
}
