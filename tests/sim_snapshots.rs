//! The simulator's traces of issue 4's scenarios, kept as insta snapshots.
//! Each trace shows every packet and decision: peeks, DCT hits and misses,
//! chosen targets, GRE hops, shadow SAs, CF sequence numbers.

use plexnet::ipsec::sa::{EncAlg, IntegAlg, Mode, Protocol};
use plexnet::sim::{tcp_packet, SaSpec, World};
use plexnet::sysplex::cf::CouplingFacility;
use plexnet::sysplex::routing::RoutingConfig;
use plexnet::topology::XcfForwarding;
use plexnet::wire::TcpFlags;
use std::net::Ipv4Addr;

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;

fn psh_ack() -> TcpFlags {
    TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0)
}
fn fin_ack() -> TcpFlags {
    TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0)
}

fn world(targets: &[&str]) -> World {
    world_with(targets, RoutingConfig::default())
}

fn world_with(targets: &[&str], config: RoutingConfig) -> World {
    World::new(
        7,
        "MVS1",
        targets,
        config,
        Box::new(CouplingFacility::new()),
    )
}

/// SYN, ACK, request, FIN: one whole HTTP connection from client1.
fn connection(w: &mut World, sport: u16) {
    w.client_tcp(sport, 100, 0, SYN, &[]);
    w.client_tcp(sport, 101, 1001, ACK, &[]);
    w.client_tcp(sport, 101, 1001, psh_ack(), b"GET / HTTP/1.0\r\n\r\n");
    w.client_tcp(sport, 119, 1039, fin_ack(), &[]);
}

#[test]
fn new_connection_with_request_and_response() {
    let mut w = world(&["MVS1", "MVS2", "MVS4"]);
    w.install_sa(SaSpec::esp_cbc_sha1());
    // Round robin starts at MVS1 (the owner is a target too); take the
    // first connection there, the second to MVS2.
    connection(&mut w, 40000);
    connection(&mut w, 40001);
    let r = w.routing_stack().counters();
    assert_eq!(r.new_connections, 2);
    assert_eq!(
        w.images["MVS2"].image.target().counters().opened,
        4,
        "MVS2 decrypted its connection"
    );
    insta::assert_snapshot!(w.trace());
}

#[test]
fn two_connections_land_on_two_targets() {
    let mut w = world(&["MVS2", "MVS4"]);
    w.install_sa(SaSpec::esp_cbc_sha1());
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40001, 500, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, psh_ack(), b"GET /a HTTP/1.0\r\n\r\n");
    w.client_tcp(40001, 501, 1001, psh_ack(), b"GET /b HTTP/1.0\r\n\r\n");
    let f = &w.routing_stack().counters().forwarded;
    assert_eq!((f["MVS2"], f["MVS4"]), (2, 2), "{f:?}");
    assert_eq!(w.routing_stack().counters().peeks, 4);
    assert_eq!(
        w.images["MVS1"].image.target().counters().opened,
        0,
        "the routing stack decrypts nothing"
    );
    insta::assert_snapshot!(w.trace());
}

#[test]
fn esp_null_needs_no_decryption_to_distribute() {
    let mut w = world(&["MVS2"]);
    let spec = SaSpec {
        enc: EncAlg::Null,
        ..SaSpec::esp_cbc_sha1()
    };
    w.install_sa(spec);
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, psh_ack(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(
        w.routing_stack().counters().peek_blocks,
        0,
        "ESP-NULL: nothing to decrypt"
    );
    insta::assert_snapshot!(w.trace());
}

#[test]
fn non_distributable_combination_is_handled_at_the_routing_stack() {
    let mut w = world(&["MVS2", "MVS4"]);
    w.install_sa(SaSpec::esp_cbc_sha1());
    // ICMP inside the tunnel is not TCP: the table's "Sysplex Dist? N".
    let echo = icmp_echo(w.dvipa, 7, b"plexnet");
    w.client_inner(&echo);
    assert_eq!(w.routing_stack().counters().local, 1);
    assert_eq!(w.images["MVS1"].image.stack().counters().echo_replies, 1);
    insta::assert_snapshot!(w.trace());
}

#[test]
fn replayed_packet_is_dropped_at_the_routing_stack() {
    let mut w = world(&["MVS2"]);
    w.install_sa(SaSpec::esp_cbc_sha1());
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, psh_ack(), b"GET / HTTP/1.0\r\n\r\n");
    // MVS2 reports what it authenticated; only now may the pre-check move.
    flush_lifesize(&mut w, "MVS2");
    let again = w.client.last_sent.clone().expect("a sent packet");
    w.client_raw("the same ESP packet again", again);
    assert_eq!(w.routing_stack().counters().drops.get("replay"), Some(&1));
    insta::assert_snapshot!(w.trace());
}

fn flush_lifesize(w: &mut World, image: &str) {
    w.images
        .get_mut(image)
        .expect("image")
        .image
        .target_mut()
        .flush_lifesize();
    w.log(format!(
        "{image} target   lifesize timer: pending counts reported"
    ));
    // Deliver the reports.
    w.client_raw("a NAT keepalive to move the clock", keepalive(w.dvipa));
}

fn keepalive(dvipa: Ipv4Addr) -> Vec<u8> {
    use plexnet::wire::{ipv4, udp, IpProtocol, PseudoHeader};
    let src = Ipv4Addr::new(198, 18, 1, 2);
    let u = udp::Repr {
        src_port: 4500,
        dst_port: 4500,
    };
    let ip = ipv4::Repr::new(src, dvipa, IpProtocol::Udp, udp::HEADER_LEN + 1);
    let mut out = vec![0u8; ip.buffer_len() + udp::HEADER_LEN + 1];
    let mut p = ipv4::Packet::new_unchecked(&mut out[..]);
    ip.emit(&mut p);
    // The one-byte payload first: emit's checksum covers it.
    p.payload_mut()[udp::HEADER_LEN] = 0xff;
    u.emit(
        &mut udp::Packet::new_unchecked(p.payload_mut()),
        1,
        Some(&PseudoHeader::V4 { src, dst: dvipa }),
    );
    out
}

#[test]
fn gre_with_a_spoofed_xcf_source_is_dropped() {
    let mut w = world(&["MVS2", "MVS4"]);
    w.install_sa(SaSpec::esp_cbc_sha1());
    spoofed_syn_is_dropped(&mut w, 40000);
    insta::assert_snapshot!(w.trace());
}

/// On MVS4's link to MVS2, a SYN from client port `sport` claiming to
/// come from MVS1: MVS2's link check drops it.
fn spoofed_syn_is_dropped(w: &mut World, sport: u16) {
    let inner = tcp_packet(
        Ipv4Addr::new(198, 18, 1, 2),
        sport,
        w.dvipa,
        80,
        1,
        0,
        SYN,
        &[],
    );
    let mvs1 = w.images["MVS1"].xcf;
    w.inject_gre("MVS4", mvs1, "MVS2", &inner);
    assert_eq!(
        w.images["MVS2"]
            .image
            .target()
            .counters()
            .drops
            .get("link-check"),
        Some(&1)
    );
}

/// `[xcf] forwarding = "gre-in-udp"` (figure4's): the same connection,
/// its XCF hops GRE in UDP to port 4754 (RFC 8086), and the link check
/// applied to the UDP sender.
#[test]
fn gre_in_udp_carries_the_xcf_hop_and_checks_its_sender() {
    let mut w = world(&["MVS2", "MVS4"]);
    w.xcf_forwarding = XcfForwarding::GreInUdp;
    w.install_sa(SaSpec::esp_cbc_sha1());
    connection(&mut w, 40000);
    assert_eq!(w.routing_stack().counters().forwarded["MVS2"], 4);
    spoofed_syn_is_dropped(&mut w, 40001);
    insta::assert_snapshot!(w.trace());
}

#[test]
fn forged_icv_is_dropped_at_the_target() {
    let mut w = world(&["MVS2"]);
    let spec = SaSpec {
        mode: Mode::Tunnel,
        protocol: Protocol::Esp,
        enc: EncAlg::AesCbc128,
        integ: IntegAlg::HmacSha256_128,
        ..SaSpec::esp_cbc_sha1()
    };
    w.install_sa(spec);
    w.client_tcp(40000, 100, 0, SYN, &[]);
    let mut forged = w.client.last_sent.clone().expect("sent");
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    // A fresh connection's SYN with a broken ICV: peeked and forwarded...
    let mut w2 = world(&["MVS2"]);
    w2.install_sa(spec);
    w2.client_raw("a SYN whose ICV was altered", forged);
    // ...and rejected at the target, which removes the DCT entry.
    assert_eq!(
        w2.images["MVS2"]
            .image
            .target()
            .counters()
            .drops
            .get("ipsec-icv-mismatch"),
        Some(&1)
    );
    assert_eq!(
        w2.routing_stack().dct().len(),
        0,
        "a forged SYN leaves no DCT entry"
    );
    insta::assert_snapshot!(w2.trace());
}

/// A world whose routing stack does the inbound filtering (claim 7,
/// `inbound_filter = "routing"`), with `targets`.
fn world_filtering_at_the_routing_stack(targets: &[&str]) -> World {
    let config = RoutingConfig {
        filter_at: plexnet::sysplex::routing::FilterAt::Routing,
        ..RoutingConfig::default()
    };
    world_with(targets, config)
}

#[test]
fn claim7_the_routing_stack_filters_and_targets_skip_it() {
    let mut w = world_filtering_at_the_routing_stack(&["MVS2"]);
    w.install_sa(SaSpec::esp_cbc_sha1());
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, psh_ack(), b"GET / HTTP/1.0\r\n\r\n");
    let t = w.images["MVS2"].image.target().counters();
    assert_eq!(t.filter_skipped, 2, "both datagrams came filtered over XCF");
    assert_eq!(t.opened, 2, "the target still decrypts");
    insta::assert_snapshot!(w.trace());
}

#[test]
fn without_distributed_crypto_the_routing_stack_decrypts_everything() {
    let config = RoutingConfig {
        distribute_crypto: false,
        ..RoutingConfig::default()
    };
    let mut w = world_with(&["MVS2"], config);
    w.install_sa(SaSpec::esp_cbc_sha1());
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, psh_ack(), b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(
        w.images["MVS1"].image.target().counters().opened,
        2,
        "the routing stack decrypted both"
    );
    assert_eq!(
        w.images["MVS2"].image.target().counters().opened,
        0,
        "the target got plaintext"
    );
    assert_eq!(
        w.images["MVS2"].image.target().counters().plain_delivered,
        2
    );
    insta::assert_snapshot!(w.trace());
}

/// The AH and ESP packet counters of a target's shadow bundle:
/// (AH in, ESP in, AH out, ESP out).
fn bundle_packets(w: &World, image: &str) -> (u64, u64, u64, u64) {
    let pair = &w.images[image].image.target().shadow()[0];
    let ah = pair.ah.as_ref().expect("a shadow bundle");
    (
        ah.inbound.counters().packets,
        pair.inbound.counters().packets,
        ah.outbound.counters().packets,
        pair.outbound.counters().packets,
    )
}

/// The patent's "Combined AH,ESP / Tunnel: Sysplex Dist Y, Crypto Dist Y,
/// peek required": the routing stack finds the bundle by its AH SPI, peeks
/// through AH into ESP, and forwards; the target opens AH and ESP and
/// answers sealed with both, a CF number for each outbound SA.
#[test]
fn ah_esp_bundle_connection_is_distributed_with_request_and_response() {
    let mut w = world(&["MVS2", "MVS4"]);
    w.install_sa(SaSpec::ah_esp_bundle(Mode::Tunnel));
    connection(&mut w, 40000);
    let r = w.routing_stack().counters();
    assert_eq!((r.peeks, r.local, r.new_connections), (4, 0, 1), "{r:?}");
    assert_eq!(r.forwarded["MVS2"], 4);
    assert_eq!(w.images["MVS1"].image.target().counters().opened, 0);
    let (ah_in, esp_in, ah_out, esp_out) = bundle_packets(&w, "MVS2");
    assert_eq!((ah_in, esp_in), (4, 4), "MVS2 opened AH and ESP");
    assert!(ah_out >= 3 && ah_out == esp_out, "{ah_out} {esp_out}");
    let trace = w.trace();
    assert!(!trace.contains("DROP"), "{trace}");
    assert_eq!(
        trace
            .matches("client1 ← MVS2  AH spi=0x00004001 + ESP spi=0x00002001")
            .count() as u64,
        ah_out,
        "every reply reached the client as AH+ESP and opened: {trace}"
    );
    insta::assert_snapshot!(trace);
}

/// "Combined AH,ESP / Transport": distributed the same way; ICMP in the
/// bundle is not TCP ("Sysplex Dist N") and stays at the routing stack,
/// whose own target stack opens the bundle.
#[test]
fn ah_esp_bundle_in_transport_mode_is_distributed_and_icmp_stays_local() {
    let mut w = world(&["MVS2", "MVS4"]);
    w.install_sa(SaSpec::ah_esp_bundle(Mode::Transport));
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, psh_ack(), b"GET / HTTP/1.0\r\n\r\n");
    let echo = icmp_echo(w.dvipa, 9, b"bundle");
    w.client_inner(&echo);
    let r = w.routing_stack().counters();
    assert_eq!((r.peeks, r.local), (3, 1), "{r:?}");
    assert_eq!(bundle_packets(&w, "MVS2").0, 2);
    assert_eq!(bundle_packets(&w, "MVS1").0, 1, "the ICMP, opened at MVS1");
    assert!(!w.trace().contains("DROP"), "{}", w.trace());
    insta::assert_snapshot!(w.trace());
}

/// An ICMP echo request from client1 to `dvipa`.
fn icmp_echo(dvipa: Ipv4Addr, ident: u16, data: &[u8]) -> Vec<u8> {
    use plexnet::wire::{icmp, ipv4, IpProtocol};
    let e = icmp::Repr::EchoRequest {
        ident,
        seq_no: 1,
        data,
    };
    let ip = ipv4::Repr::new(
        Ipv4Addr::new(198, 18, 1, 2),
        dvipa,
        IpProtocol::Icmp,
        e.buffer_len(),
    );
    let mut out = vec![0u8; ip.buffer_len() + e.buffer_len()];
    let mut p = ipv4::Packet::new_unchecked(&mut out[..]);
    ip.emit(&mut p);
    e.emit(&mut icmp::Packet::new_unchecked(p.payload_mut()));
    out
}

/// Block 138 for a bundle: the routing stack pre-checks the AH and the ESP
/// sequence numbers, each against its own window, which move only on what
/// the target reports as authenticated.
#[test]
fn bundle_replay_precheck_covers_ah_and_esp() {
    use plexnet::ipsec::{seal_bundle, Sa};
    let mut w = world(&["MVS2"]);
    w.install_sa(SaSpec::ah_esp_bundle(Mode::Tunnel));
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, psh_ack(), b"GET / HTTP/1.0\r\n\r\n");
    flush_lifesize(&mut w, "MVS2");
    let pair = &w.routing_stack().pairs()[0];
    let ah_owned = pair.ah.as_ref().expect("an owned bundle");
    assert_eq!((ah_owned.precheck_top(), pair.precheck_top()), (2, 2));
    let ah = Sa::new(ah_owned.bundle.inbound.clone()).unwrap();
    let esp = Sa::new(pair.install.inbound.clone()).unwrap();
    let inner = tcp_packet(w.client.addr, 40000, w.dvipa, 80, 119, 1039, ACK, &[]);
    let sealed = |ah_seq: u64, esp_seq: u64| {
        let mut out = Vec::new();
        seal_bundle(&ah, ah_seq, &esp, esp_seq, &[9; 16], &inner, &mut out).unwrap();
        out
    };
    let replay = |w: &World| w.routing_stack().counters().drops.get("replay").copied();
    w.client_raw("AH number replayed, ESP fresh", sealed(2, 50));
    assert_eq!(replay(&w), Some(1));
    w.client_raw("ESP number replayed, AH fresh", sealed(50, 2));
    assert_eq!(replay(&w), Some(2));
    w.client_raw("both fresh", sealed(51, 51));
    assert_eq!(replay(&w), Some(2));
    assert_eq!(w.routing_stack().counters().forwarded["MVS2"], 3);
}

/// figure4's sysplex in the simulator, with CF takeover, and an ESP SA
/// pair for DVA1 installed.
fn figure4_world() -> World {
    let dva1 = Ipv4Addr::new(198, 18, 0, 100);
    let mut w = World::from_sysplex(
        7,
        &figure4().sysplex_spec(),
        dva1,
        Box::new(CouplingFacility::new()),
    );
    w.install_sa(SaSpec::esp_cbc_sha1());
    w
}

/// VIPA takeover (figure4: MVS1 owns DVA1, MVS5 is its VIPABACKUP 100 with
/// DESTIP MVS2 MVS3 MVS4): MVS1 checkpoints its SA pair and DCT into the
/// CF; it fails; MVS5 hears no heartbeat from it for three seconds of
/// virtual time, takes DVA1 over from the CF's copy, continues the open
/// connection to MVS2 over the same SA with the CF's next sequence
/// numbers, and distributes new connections by its own VIPADISTRIBUTE.
#[test]
fn vipa_takeover_by_the_backup_continues_connections_from_the_cf() {
    let mut w = figure4_world();
    // Round robin over MVS1, MVS2, MVS4: a whole connection on MVS1, then
    // one to MVS2 that stays open (HTTP/1.1).
    connection(&mut w, 40000);
    let req1: &[u8] = b"GET /a HTTP/1.1\r\nHost: DVA1\r\n\r\n";
    let req2: &[u8] = b"GET /b HTTP/1.1\r\nHost: DVA1\r\n\r\n";
    let answer_len = "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nserved by MVS2\n".len() as u32;
    w.client_tcp(40001, 500, 0, SYN, &[]);
    w.client_tcp(40001, 501, 1001, ACK, &[]);
    w.client_tcp(40001, 501, 1001, psh_ack(), req1);
    let before_failure = w.client.last_sent.clone().expect("sent");
    assert_eq!(w.routing_stack().counters().forwarded["MVS2"], 3);
    // The closed connection's DCT entry expires (closing: 5 s) and leaves the CF.
    w.advance_to(6000);
    w.fail("MVS1");
    // The open connection's next request, while nobody holds DVA1: lost.
    let seq2 = 501 + req1.len() as u32;
    let ack2 = 1001 + answer_len;
    w.advance_to(7500);
    w.client_tcp(40001, seq2, ack2, psh_ack(), req2);
    w.advance_to(9500);
    assert_eq!(w.owner, "MVS5");
    assert_eq!(w.holder_seen_by("MVS5").as_deref(), Some("MVS5"));
    // A copy of the request sent before the failure: MVS5's pre-check is
    // new and lets it pass, MVS2 kept its replay window and drops it.
    w.client_raw("the pre-failure request replayed", before_failure);
    assert_eq!(
        w.images["MVS2"]
            .image
            .target()
            .counters()
            .drops
            .get("ipsec-replayed"),
        Some(&1),
        "{:?}",
        w.images["MVS2"].image.target().counters().drops
    );
    // TCP sends the request again: through MVS5 to MVS2, on the same SA.
    w.client_tcp(40001, seq2, ack2, psh_ack(), req2);
    // New connections: MVS5's ROUNDROBIN over MVS2, MVS3, MVS4.
    connection(&mut w, 40002);
    connection(&mut w, 40003);
    let r = w.routing_stack().counters();
    assert_eq!(r.forwarded["MVS2"], 6, "{r:?}");
    assert_eq!(r.new_connections, 2);
    assert!(w.images["MVS3"].image.target().counters().opened >= 4);
    let trace = w.trace();
    // Every outbound number came from the CF once, in order.
    let seqs: Vec<u64> = trace
        .lines()
        .filter_map(|l| {
            l.split(" seq ")
                .nth(1)?
                .split(" from CF")
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "{seqs:?}");
    assert_eq!(seqs.first(), Some(&1));
    assert_eq!(trace.matches("DROP").count(), 1, "{trace}");
    insta::assert_snapshot!(trace);
}

/// A takeover that the CF journal missed: MVS1 made a connection to MVS2
/// after its last journal write and failed before the next one, so the
/// CF knows nothing of it. MVS2 reports its connections when MVS5's VIPA
/// list reaches it (z/OS: the targets tell the new distributing stack
/// about their connections), MVS5's DCT takes the connection from the
/// report, and the client's retransmitted request reaches MVS2.
#[test]
fn takeover_recovers_a_connection_the_cf_journal_missed_from_the_target() {
    let mut w = figure4_world();
    // Round robin over MVS1, MVS2, MVS4: the first connection to MVS1.
    connection(&mut w, 40000);
    w.advance_to(6000);
    w.hold_journal("MVS1");
    let req: &[u8] = b"GET /a HTTP/1.1\r\nHost: DVA1\r\n\r\n";
    w.client_tcp(40001, 500, 0, SYN, &[]);
    w.client_tcp(40001, 501, 1001, ACK, &[]);
    assert_eq!(w.routing_stack().counters().forwarded["MVS2"], 2);
    w.fail("MVS1");
    w.advance_to(9500);
    assert_eq!(w.owner, "MVS5");
    let r = w.routing_stack().counters();
    assert_eq!(r.reports.recovered, 1, "{r:?}");
    assert_eq!(r.reports.refused, 0, "{r:?}");
    // The request (TCP's retransmission after the failure): through MVS5
    // to MVS2, where the connection lives, and answered.
    w.client_tcp(40001, 501, 1001, psh_ack(), req);
    let r = w.routing_stack().counters();
    assert_eq!(r.forwarded["MVS2"], 1, "{r:?}");
    assert_eq!(r.drops.get("no-connection"), None, "{r:?}");
    let trace = w.trace();
    let answer = "client1 ← MVS2  ESP spi=0x00002001 198.18.0.100 > 198.18.1.2 (152 bytes)  seq 5";
    assert!(trace.contains(answer), "{trace}");
    assert!(trace.contains("never reached the CF"), "{trace}");
    insta::assert_snapshot!(trace);
}

/// figure4's topology, whose MVS1 (DVA1's owner) and MVS5 filter with
/// IPCONFIG IPSECURITY and a Policy Agent policy.
fn figure4() -> plexnet::topology::Topology {
    plexnet::topology::load(std::path::Path::new("topologies/figure4.toml")).expect("figure4")
}

/// MVS1's filter table in figure4: IKE, NAT-T and ICMP permitted,
/// dva1-web (port 80) and dva1-iperf under IPsec from the clients' LANs,
/// port 60 in clear, the rest denied.
fn mvs1_filter() -> plexnet::ipsec::filter::FilterTable {
    figure4()
        .image("MVS1")
        .and_then(|i| i.ip_security.as_ref())
        .expect("MVS1 has IP security")
        .filter_table()
        .expect("a valid policy")
        .expect("IPCONFIG IPSECURITY")
}

fn filter_denied(w: &World) -> Vec<(String, u64)> {
    w.routing_stack()
        .counters()
        .filter_denied
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn target_denied(w: &World, image: &str) -> Vec<(String, u64)> {
    w.images[image]
        .image
        .target()
        .counters()
        .filter_denied
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// DESIGN.md's "silent plaintext": a client whose negotiation failed sends
/// its SYN to DVA1:80 in clear. MVS1's filter table (figure4's policy)
/// says dva1-web requires IPsec: the SYN is dropped at the routing stack
/// before the DCT, the CF or a target sees it, counted by rule and reason.
/// The same SYN through the SA is distributed as usual: a DCT entry, its
/// copy in the CF, a target.
#[test]
fn plaintext_syn_to_a_protected_port_is_dropped_at_the_routing_stack() {
    let topo = figure4();
    let dva1 = Ipv4Addr::new(198, 18, 0, 100);
    let mut w = World::from_sysplex(
        7,
        &topo.sysplex_spec(),
        dva1,
        Box::new(CouplingFacility::new()),
    );
    w.enforce_ip_security();
    w.install_sa(SaSpec::esp_cbc_sha1().tcp_only(80, 1024, 65535));
    let client = w.client.addr;
    let plain = tcp_packet(client, 40000, dva1, 80, 100, 0, SYN, &[]);
    w.client_raw("in clear: its IKE negotiation failed", plain);
    assert_eq!(filter_denied(&w), vec![("dva1-web clear-text".into(), 1)]);
    assert_eq!(w.routing_stack().dct().len(), 0, "no DCT entry");
    assert!(!w.trace().contains("conn/"), "no CF write: {}", w.trace());
    w.client_tcp(40000, 100, 0, SYN, &[]);
    let r = w.routing_stack().counters();
    assert_eq!((r.new_connections, r.drops.get("filtered")), (1, Some(&1)));
    assert!(
        w.trace().contains("conn/198.18.1.2:40000/80"),
        "the CF copy"
    );
    insta::assert_snapshot!(w.trace());
}

/// The claim 7 scenario both tunnel-check tests play: MVS1's filter, SA
/// 0x1001 for client ports 40000-40009 of DVA1:80, a SYN inside it and one
/// from port 50000 outside it, then SA 0x1002 for ports 50000-50009 and the
/// same SYN again under 0x1001 (where 0x1002's dynamic filter matches).
fn syns_outside_their_sa_and_under_the_wrong_one(w: &mut World) {
    w.set_routing_filter(mvs1_filter());
    w.install_sa(SaSpec::esp_cbc_sha1().tcp_only(80, 40000, 40009));
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(50000, 700, 0, SYN, &[]);
    let b = SaSpec::esp_cbc_sha1()
        .tcp_only(80, 50000, 50009)
        .spis(0x1002, 0x2002);
    w.install_sa(b);
    w.client_tcp_on(0x1001, 50000, 700, 0, SYN, &[]);
}

/// Fig. 8 block 136 with the routing stack filtering (claims 7-8): the
/// tunnel check is the filter table's lookup of the peeked inner packet as
/// if decrypted under the SA it came in. SA 0x1001 was negotiated for
/// client ports 40000-40009 of DVA1:80: a SYN from port 50000 under it is
/// outside its dynamic filter; once SA 0x1002 covers ports 50000-50009, the
/// same SYN under 0x1001 first matches 0x1002's dynamic filter. Both are
/// rejected before the DCT, counted by rule and reason.
#[test]
fn tunnel_check_at_the_routing_stack_rejects_packets_outside_their_sa() {
    let mut w = world_filtering_at_the_routing_stack(&["MVS2"]);
    syns_outside_their_sa_and_under_the_wrong_one(&mut w);
    w.client_tcp(50000, 700, 0, SYN, &[]);
    assert_eq!(
        filter_denied(&w),
        vec![
            ("dva1-web outside-sa".into(), 1),
            ("dva1-web wrong-sa".into(), 1)
        ]
    );
    let r = w.routing_stack().counters();
    assert_eq!(r.drops.get("tunnel-check"), Some(&2));
    assert_eq!((r.new_connections, w.routing_stack().dct().len()), (2, 2));
    assert_eq!(w.images["MVS2"].image.target().counters().filter_skipped, 2);
    insta::assert_snapshot!(w.trace());
}

/// Fig. 9 block 152 with the default `inbound_filter = "target"`: the
/// routing stack forwards what it peeked, and the target, after
/// decrypting, filters with the anchor and dynamic filters that came with
/// the SAs (MVS2 has no policy of its own). A SYN under SA 0x1001 from a
/// port outside its filter, then under 0x1001 where 0x1002's filter
/// matches, is dropped at MVS2, counted by rule and reason, and its DCT
/// entry at MVS1 ended (ConnEnded Rejected), so nothing sticks.
#[test]
fn decrypted_packet_outside_its_sa_filter_is_dropped_at_the_target() {
    let mut w = world(&["MVS2"]);
    syns_outside_their_sa_and_under_the_wrong_one(&mut w);
    assert_eq!(
        target_denied(&w, "MVS2"),
        vec![
            ("dva1-web outside-sa".into(), 1),
            ("dva1-web wrong-sa".into(), 1)
        ]
    );
    assert_eq!(
        w.images["MVS2"]
            .image
            .target()
            .counters()
            .drops
            .get("filter"),
        Some(&2)
    );
    assert!(
        filter_denied(&w).is_empty(),
        "the routing stack did not filter"
    );
    assert_eq!(w.routing_stack().dct().len(), 1, "only port 40000's entry");
    insta::assert_snapshot!(w.trace());
}

/// Fig. 10 block 160: the SA pair is deleted while an HTTP/1.1 connection
/// lives; the server's next segment matches dva1-web, whose dynamic filter
/// left with the SA. The target drops it and counts it rather than send it
/// in clear (without the anchor it would go out plain).
#[test]
fn reply_without_an_sa_is_dropped_not_sent_in_clear() {
    let mut w = world(&["MVS2"]);
    w.set_routing_filter(mvs1_filter());
    w.install_sa(SaSpec::esp_cbc_sha1().tcp_only(80, 1024, 65535));
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, ACK, &[]);
    let req: &[u8] = b"GET /stream HTTP/1.1\r\nHost: DVA1\r\n\r\n";
    w.client_tcp(40000, 101, 1001, psh_ack(), req);
    w.delete_sa(0x1001);
    w.server_sends("MVS2", 40000, b"more of the stream\n");
    let t = w.images["MVS2"].image.target().counters();
    assert_eq!(
        target_denied(&w, "MVS2"),
        vec![("dva1-web needs-sa".into(), 1)]
    );
    assert_eq!((t.drops.get("needs-sa"), t.plain_out), (Some(&1), 0));
    assert_eq!(t.sealed, 2, "SYN-ACK and the answer, before the delete");
    insta::assert_snapshot!(w.trace());
}

/// Fig. 11: an application on MVS2 opens a connection from DVA1 to
/// client1, with no SA yet. MVS2's target stack sends a NEWCONN to DVA1's
/// routing stack and holds the SYN (block 174); MVS1's IKE negotiates an
/// SA pair and distributes it (block 176); the SA's arrival at MVS2
/// releases the SYN, which takes its sequence number from the CF and
/// leaves sealed from MVS2's own ext (block 178).
#[test]
fn newconn_holds_the_syn_until_its_sa_arrives() {
    let mut w = world(&["MVS1", "MVS2"]);
    w.ike_on_demand(SaSpec::esp_cbc_sha1());
    let syn = tcp_packet(w.dvipa, 5000, w.client.addr, 8080, 1, 0, SYN, &[]);
    w.kernel_sends("MVS2", syn);
    let c = w.images["MVS2"].image.counters();
    assert_eq!((c.newconn_held, c.newconn_released), (1, 1));
    assert_eq!(w.images["MVS2"].image.target().counters().sealed, 1);
    insta::assert_snapshot!(w.trace());
}

/// Fig. 10 blocks 162–164 with a burst: MVS2's server answers with ten
/// segments in one TUN read. They take their sequence numbers from the CF
/// in blocks of at most eight (one FetchAdd per block, not per packet),
/// each block's packets waiting unsealed until its numbers arrive.
#[test]
fn cf_numbers_come_in_blocks_and_packets_wait_for_them() {
    let mut w = world(&["MVS2"]);
    w.install_sa(SaSpec::esp_cbc_sha1());
    w.client_tcp(40000, 100, 0, SYN, &[]);
    w.client_tcp(40000, 101, 1001, ACK, &[]);
    let chunks: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'a' + i; 100]).collect();
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    w.server_burst("MVS2", 40000, &chunks);
    let c = w.images["MVS2"].image.counters();
    assert_eq!((c.cf_batches, c.cf_numbers), (3, 11), "1 + 8 + 2 numbers");
    assert_eq!(w.images["MVS2"].image.target().counters().sealed, 11);
    insta::assert_snapshot!(w.trace());
}
