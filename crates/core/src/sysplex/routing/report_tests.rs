//! Connection reports after a takeover (z/OS: the target stacks tell the
//! new distributing stack about their connections): a target reports
//! what it serves to a DVIPA's new routing stack, once per change of
//! routing stack, and the routing stack's DCT takes each connection that
//! its CF copy missed, within its bounds.

use std::net::Ipv4Addr;

use super::flood_tests::distributor;
use super::{Decision, RoutingStack};
use crate::sysplex::dct::{ConnState, DctTimeouts};
use crate::sysplex::target::{TargetStack, Upstream, Verdict};
use crate::sysplex::xcf::{ReportedConn, VipaEntry, XcfMessage};
use crate::time::Instant;
use crate::wire::build::tcp_packet;
use crate::wire::TcpFlags;

const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const MVS2_XCF: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

fn vipa_list(owner: &str) -> XcfMessage {
    XcfMessage::VipaList {
        owner: owner.into(),
        vipas: vec![VipaEntry {
            dvipa: DVA1,
            ports: vec![80],
        }],
    }
}

fn to_dva1(sport: u16, flags: TcpFlags) -> Vec<u8> {
    tcp_packet(CLIENT, sport, DVA1, 80, 1, 1, flags, &[])
}

/// MVS5 distributing DVA1:80 to MVS2 and MVS3, its DCT bounded at `max`.
fn mvs5(max: u32) -> RoutingStack {
    let dests = [("MVS2", MVS2_XCF), ("MVS3", Ipv4Addr::new(198, 19, 0, 3))];
    distributor("MVS5", Ipv4Addr::new(198, 19, 0, 5), &dests, max)
}

/// MVS2 serving a connection from port `sport` that MVS1 routed to it.
fn mvs2_serving(sport: u16) -> TargetStack {
    let mut t = TargetStack::new("MVS2", MVS2_XCF);
    t.on_xcf(Instant::ZERO, "MVS1", &vipa_list("MVS1"))
        .expect("list");
    for flags in [TcpFlags::SYN, TcpFlags::ACK] {
        let v = t.inbound(Instant::ZERO, &to_dva1(sport, flags), Upstream::Nothing);
        assert!(matches!(v, Verdict::Deliver(_)), "{v:?}");
    }
    t
}

fn reports(t: &mut TargetStack) -> Vec<(String, XcfMessage)> {
    t.take_outbox()
        .into_iter()
        .filter(|(_, m)| matches!(m, XcfMessage::ConnReport { .. }))
        .collect()
}

#[test]
fn a_target_reports_its_connections_to_a_new_routing_stack_once() {
    let mut t = mvs2_serving(40001);
    assert_eq!(reports(&mut t), vec![], "nothing to report to MVS1");
    // MVS1's list again (its tick): not a new routing stack.
    t.on_xcf(Instant::ZERO, "MVS1", &vipa_list("MVS1"))
        .expect("list");
    assert_eq!(reports(&mut t), vec![]);
    // MVS5 took DVA1 over.
    t.on_xcf(Instant::ZERO, "MVS5", &vipa_list("MVS5"))
        .expect("list");
    let sent = reports(&mut t);
    let conn = ReportedConn {
        client: CLIENT,
        client_port: 40001,
        port: 80,
        state: ConnState::Established,
        ipsec: false,
    };
    let report = XcfMessage::ConnReport {
        dvipa: DVA1,
        target_xcf: MVS2_XCF,
        conns: vec![conn],
    };
    assert_eq!(sent, vec![("MVS5".to_string(), report.clone())]);
    t.on_xcf(Instant::ZERO, "MVS5", &vipa_list("MVS5"))
        .expect("list");
    assert_eq!(reports(&mut t), vec![], "once per new routing stack");

    // MVS5's CF copy missed the connection: the report puts it in the
    // DCT, and its next packet goes to MVS2 (not `no-connection`).
    let mut r = mvs5(64);
    r.on_xcf("MVS2", &report);
    r.on_xcf("MVS2", &report);
    let c = r.counters().reports;
    assert_eq!((c.received, c.recovered, c.known), (2, 1, 1), "{c:?}");
    let d = r.inbound(Instant::ZERO, &to_dva1(40001, TcpFlags::ACK));
    assert!(
        matches!(&d, Decision::Forward { target, .. } if &**target == "MVS2"),
        "{d:?}"
    );
    let journal = r.take_journal();
    assert_eq!(journal.len(), 1, "the recovered entry goes to the CF");
}

#[test]
fn served_connections_end_on_rst_and_when_idle() {
    let mut t = mvs2_serving(40001);
    let v = t.inbound(
        Instant::ZERO,
        &to_dva1(40002, TcpFlags::SYN),
        Upstream::Nothing,
    );
    assert!(matches!(v, Verdict::Deliver(_)));
    let rst = to_dva1(40001, TcpFlags::RST);
    t.inbound(Instant::ZERO, &rst, Upstream::Nothing);
    assert_eq!(t.served().counters().connections, 2);
    let timeouts = DctTimeouts::default();
    // The reset one is closing: gone after the closing timeout; the
    // half-open one after the half-open timeout.
    t.expire_served(Instant::from_millis(timeouts.closing_ms));
    assert_eq!(t.served().counters().connections, 1);
    t.expire_served(Instant::from_millis(timeouts.syn_ms));
    assert_eq!(t.served().counters().connections, 0);
}

#[test]
fn a_full_dct_or_another_dvipa_refuses_reported_connections() {
    let mut r = mvs5(16);
    let conns: Vec<ReportedConn> = (0..17)
        .map(|i| ReportedConn {
            client: CLIENT,
            client_port: 40000 + i,
            port: 80,
            state: ConnState::Established,
            ipsec: true,
        })
        .collect();
    r.on_xcf(
        "MVS2",
        &XcfMessage::ConnReport {
            dvipa: DVA1,
            target_xcf: MVS2_XCF,
            conns: conns.clone(),
        },
    );
    let c = r.counters().reports;
    assert_eq!((c.recovered, c.refused), (16, 1), "{c:?}");
    assert_eq!(r.dct().len(), 16);
    r.on_xcf(
        "MVS2",
        &XcfMessage::ConnReport {
            dvipa: Ipv4Addr::new(198, 18, 0, 101),
            target_xcf: MVS2_XCF,
            conns,
        },
    );
    assert_eq!(r.counters().reports.refused, 18);
}
