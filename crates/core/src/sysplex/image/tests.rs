//! The image state machine driven by hand: Fig. 11's hold queue and
//! Fig. 10's CF number blocks.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng as StdRng;

use super::*;
use crate::ipsec::sa::{
    EncAlg, IntegAlg, Key, Lifetimes, Mode, Protocol, SaConfig, Spi, TrafficSelector,
};
use crate::sysplex::takeover as tk;
use crate::sysplex::xcf::{CfRequest, CfResponse, SaInstall};
use crate::wire::{ipv4, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket};

const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

fn sa(spi: u32, src: Ipv4Addr, dst: Ipv4Addr) -> SaConfig {
    SaConfig {
        spi: Spi(spi),
        protocol: Protocol::Esp,
        mode: Mode::Tunnel,
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        enc: EncAlg::AesCbc128,
        enc_key: Key(vec![1; 16]),
        integ: IntegAlg::HmacSha1_96,
        integ_key: Key(vec![2; 20]),
        esn: false,
        replay_window: 128,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: TrafficSelector::hosts(IpAddr::V4(src), IpAddr::V4(dst)),
    }
}

fn install() -> XcfMessage {
    let pair = SaInstall::pair(DVA1, sa(0x1001, CLIENT, DVA1), sa(0x2001, DVA1, CLIENT));
    XcfMessage::SaInstall(Box::new(pair))
}

/// A TCP segment from DVA1:80 to the client.
fn segment(sport: u16, flags: TcpFlags) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    ipv4::Repr::new(DVA1, CLIENT, IpProtocol::Tcp, 20)
        .emit(&mut Ipv4Packet::new_unchecked(&mut p[..20]));
    let mut t = TcpPacket::new_unchecked(&mut p[20..]);
    t.set_src_port(sport);
    t.set_dst_port(40000);
    t.set_header_len_and_flags(20, flags);
    p
}

/// MVS2, a target of DVA1 (owned by MVS1), whose IKE negotiates on
/// demand with the client.
fn mvs2() -> Image {
    let newconn = NewConnPolicy {
        on_demand: true,
        peers: BTreeMap::from([(DVA1, vec![CLIENT])]),
        owners: BTreeMap::from([(DVA1, ImageId::new("MVS1"))]),
        ..NewConnPolicy::default()
    };
    let config = ImageConfig {
        id: ImageId::new("MVS2"),
        xcf_addr: Ipv4Addr::new(198, 19, 0, 2),
        owned: Vec::new(),
        newconn,
        limits: Default::default(),
        hash_seed: 0,
    };
    Image::new(config, None, Instant::ZERO)
}

fn transmits(image: &mut Image) -> Vec<Transmit> {
    std::iter::from_fn(|| image.poll_transmit()).collect()
}

fn mvs1() -> ImageId {
    ImageId::new("MVS1")
}

#[test]
fn a_syn_without_sa_waits_for_its_newconn_and_leaves_sealed() {
    let mut image = mvs2();
    let syn = segment(80, TcpFlags::SYN);
    image.handle_tun_burst(Instant::from_millis(10), [&syn[..]]);
    let sent = transmits(&mut image);
    assert!(
        matches!(&sent[..], [Transmit::Xcf { to, msg: XcfMessage::NewConn { peer, .. } }]
            if *to == "MVS1" && *peer == CLIENT),
        "{sent:?}"
    );
    assert_eq!(image.counters().newconn_held, 1);
    assert!(image.poll_cf_request(Instant::from_millis(10)).is_none());
    // The SA arrives: the SYN asks the CF for one number, then leaves.
    image.handle_xcf(Instant::from_millis(20), &mvs1(), install());
    let ask = image
        .poll_cf_request(Instant::from_millis(20))
        .and_then(numbers)
        .expect("a CF request");
    assert_eq!((ask.key.spi, ask.n), (Spi(0x2001), 1));
    let mut rng = StdRng::seed_from_u64(1);
    image.handle_cf_reply(Instant::from_millis(21), ask.id, Ok((7, 1)), &mut rng);
    let sealed: Vec<_> = transmits(&mut image)
        .into_iter()
        .filter_map(|t| match t {
            Transmit::Sealed(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(sealed.len(), 1);
    assert_eq!((sealed[0].first.esp, sealed[0].packets.len()), (7, 1));
    assert_eq!(image.counters().newconn_released, 1);
}

#[test]
fn the_hold_queue_is_bounded_and_counts_what_it_refuses() {
    let mut image = mvs2();
    let mut policy = image_policy_with_hold_max(2);
    policy.on_demand = true;
    image.set_newconn_policy(policy);
    for port in 0..5 {
        let syn = segment(1000 + port, TcpFlags::SYN);
        image.handle_tun_burst(Instant::from_millis(10), [&syn[..]]);
    }
    let c = image.counters();
    assert_eq!((c.newconn_held, c.newconn_overflow), (2, 3));
}

fn image_policy_with_hold_max(hold_max: usize) -> NewConnPolicy {
    NewConnPolicy {
        peers: BTreeMap::from([(DVA1, vec![CLIENT])]),
        owners: BTreeMap::from([(DVA1, ImageId::new("MVS1"))]),
        hold_max,
        ..NewConnPolicy::default()
    }
}

#[test]
fn a_held_syn_expires_when_no_sa_comes() {
    let mut image = mvs2();
    image.handle_timeout(Instant::ZERO);
    let syn = segment(80, TcpFlags::SYN);
    image.handle_tun_burst(Instant::from_millis(100), [&syn[..]]);
    image.handle_timeout(Instant::from_secs(1));
    assert_eq!(image.counters().newconn_expired, 0);
    for s in 2..=6 {
        image.handle_timeout(Instant::from_secs(s));
    }
    assert_eq!(image.counters().newconn_expired, 1);
    // A SYN-ACK (not an initial SYN) is sent as it is.
    let synack = segment(80, TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0));
    image.handle_tun_burst(Instant::from_secs(7), [&synack[..]]);
    let sent = transmits(&mut image);
    assert!(sent
        .iter()
        .any(|t| matches!(t, Transmit::Ext(p) if *p == synack)));
}

/// MVS2 with its shadow SA, and a burst of `n` segments to seal.
fn burst(n: usize) -> (Image, Vec<Vec<u8>>) {
    let mut image = mvs2();
    image.handle_xcf(Instant::ZERO, &mvs1(), install());
    let _ = transmits(&mut image);
    let packets = (0..n).map(|_| segment(80, TcpFlags::ACK)).collect();
    (image, packets)
}

#[test]
fn numbers_come_in_blocks_and_packets_wait_for_them() {
    let (mut image, packets) = burst(10);
    let now = Instant::from_millis(5);
    image.handle_tun_burst(now, packets.iter().map(Vec::as_slice));
    assert!(transmits(&mut image).is_empty(), "nothing leaves unsealed");
    let ask = image
        .poll_cf_request(now)
        .and_then(numbers)
        .expect("first block");
    assert_eq!(ask.n, SEQ_CHUNK as u32);
    assert!(image.poll_cf_request(now).is_none(), "one block at a time");
    let mut rng = StdRng::seed_from_u64(2);
    image.handle_cf_reply(now, ask.id, Ok((1, 8)), &mut rng);
    let Some(Transmit::Sealed(chunk)) = image.poll_transmit() else {
        panic!("a sealed chunk");
    };
    assert_eq!(chunk.packets.len(), 8);
    assert_eq!(chunk.deadline, now + SEQ_DEADLINE);
    // Only 3 left before the deadline: 5 numbers are stale, and those
    // packets go again with the last 2 under fresh numbers.
    image.handle_sealed_sent(chunk.id, 3);
    assert_eq!(image.counters().seq_stale, 5);
    let ask = image
        .poll_cf_request(now)
        .and_then(numbers)
        .expect("fresh numbers");
    assert_eq!(ask.n, 7);
    image.handle_cf_reply(now, ask.id, Ok((9, 7)), &mut rng);
    let Some(Transmit::Sealed(chunk)) = image.poll_transmit() else {
        panic!("the rest, sealed");
    };
    assert_eq!((chunk.first.esp, chunk.packets.len()), (9, 7));
    image.handle_sealed_sent(chunk.id, 7);
    assert!(!image.numbers_pending());
    assert_eq!(image.counters().cf_numbers, 15);
}

/// Three packets of a burst waiting for the CF's block of numbers, and
/// the image's request for it.
fn three_waiting() -> (Image, SeqAsk) {
    let (mut image, packets) = burst(3);
    image.handle_tun_burst(Instant::ZERO, packets.iter().map(Vec::as_slice));
    let ask = image
        .poll_cf_request(Instant::ZERO)
        .and_then(numbers)
        .expect("a block");
    (image, ask)
}

#[test]
fn a_refused_block_drops_its_group() {
    let (mut image, ask) = three_waiting();
    let mut rng = StdRng::seed_from_u64(3);
    image.handle_cf_reply(Instant::ZERO, ask.id, Err(CfFailure::Unreachable), &mut rng);
    assert_eq!(image.counters().cf_errors, 1);
    assert_eq!(
        image.counters().cf_dropped.unreachable,
        3,
        "every packet counted"
    );
    assert!(transmits(&mut image).is_empty());
    assert!(!image.numbers_pending());
}

/// Found while fixing what fuzz/fuzz_targets/cf_answers.rs (a CF that
/// answers with lies) crashed in the simulator: a grant that starts at 0
/// or runs past the end of the 64-bit space is refused and its packets
/// counted, instead of sealing under numbers that overflow (a panic with
/// overflow checks) or wrap to numbers already used.
#[test]
fn a_grant_past_the_end_of_the_numbers_is_refused() {
    for first in [u64::MAX - 1, 0] {
        let (mut image, ask) = three_waiting();
        let mut rng = StdRng::seed_from_u64(4);
        image.handle_cf_reply(Instant::ZERO, ask.id, Ok((first, ask.n)), &mut rng);
        assert_eq!(image.counters().cf_dropped.refused, 3, "first {first}");
        assert!(transmits(&mut image).is_empty());
        assert!(!image.numbers_pending());
    }
}

/// Asks `cf` what the image asks for, and hands the answer back.
fn answer_from(cf: &mut crate::sysplex::cf::CouplingFacility, image: &mut Image, now: Instant) {
    let mut rng = StdRng::seed_from_u64(4);
    while let Some(ask) = image.poll_cf_request(now).and_then(numbers) {
        let r = cf.handle(CfRequest::FetchAdd {
            key: ask.key,
            n: ask.n,
        });
        let reply = match r {
            CfResponse::SeqRange { first, n } => Ok((first, n)),
            other => Err(CfFailure::of_response(&other)),
        };
        image.handle_cf_reply(now, ask.id, reply, &mut rng);
    }
}

/// Answers the image's requests from `cf` until nothing waits; the ESP
/// sequence numbers of every packet it sealed and sent.
fn sealed_numbers(
    cf: &mut crate::sysplex::cf::CouplingFacility,
    image: &mut Image,
    now: Instant,
) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        answer_from(cf, image, now);
        let before = out.len();
        for t in transmits(image) {
            if let Transmit::Sealed(c) = t {
                out.extend((0..c.packets.len() as u64).map(|i| c.first.esp + i));
                image.handle_sealed_sent(c.id, c.packets.len());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// docs/FAULTS.md, "The CF is killed, then restarted": a restarted CF
/// starts empty, so the SA's structure is gone. The target never seals
/// under a number the CF did not grant: its packets are dropped and
/// counted as `seq_lost`, none reuses a number sent before.
#[test]
fn a_restarted_cf_never_makes_a_target_reuse_a_number() {
    use crate::sysplex::cf::CouplingFacility;
    let (mut image, packets) = burst(10);
    let InstallKey(key) = install_key();
    let mut cf = CouplingFacility::new();
    assert!(matches!(
        cf.handle(CfRequest::CreateSeq { key, start: 1 }),
        CfResponse::Done
    ));
    let now = Instant::from_millis(1);
    image.handle_tun_burst(now, packets.iter().map(Vec::as_slice));
    let before = sealed_numbers(&mut cf, &mut image, now);
    assert_eq!(before, (1..=10).collect::<Vec<u64>>());
    let mut cf = CouplingFacility::new();
    let later = Instant::from_millis(2);
    image.handle_tun_burst(later, packets.iter().map(Vec::as_slice));
    let after = sealed_numbers(&mut cf, &mut image, later);
    assert!(after.is_empty(), "sealed without numbers: {after:?}");
    let c = image.counters();
    assert_eq!((c.cf_errors, c.cf_dropped.seq_lost), (1, 10), "{c:?}");
    assert!(!image.numbers_pending(), "nothing left waiting");
}

/// The outbound SA's sequence structure of [`install`].
struct InstallKey(crate::sysplex::xcf::SeqKey);

fn install_key() -> InstallKey {
    let XcfMessage::SaInstall(i) = install() else {
        unreachable!("install() is an SaInstall")
    };
    InstallKey(i.seq_key)
}

/// The GRE datagram MVS1's link carries to MVS2 for `inner`.
fn gre_from_mvs1(inner: &[u8]) -> (Ipv4Addr, Vec<u8>) {
    let mvs1_xcf = Ipv4Addr::new(198, 19, 0, 1);
    let mut g = Vec::new();
    crate::sysplex::target::encap(
        mvs1_xcf,
        Ipv4Addr::new(198, 19, 0, 2),
        inner,
        crate::sysplex::target::Upstream::Nothing,
        &mut g,
    );
    (mvs1_xcf, g)
}

fn inbound_notes(image: &mut Image) -> Vec<InboundNote> {
    std::iter::from_fn(|| image.poll_event())
        .filter_map(|e| match e {
            ImageEvent::Inbound(n) => Some(n),
            _ => None,
        })
        .collect()
}

#[test]
fn inbound_notes_are_recorded_only_for_a_shell_that_traces() {
    let (link, gre) = gre_from_mvs1(&segment(80, TcpFlags::SYN));
    let mut image = mvs2();
    image.handle_xcf_datagram(Instant::ZERO, link, XcfDatagram::Gre(&gre));
    assert!(inbound_notes(&mut image).is_empty());

    image.set_trace(true);
    image.handle_xcf_datagram(Instant::ZERO, link, XcfDatagram::Gre(&gre));
    let notes = inbound_notes(&mut image);
    assert!(
        matches!(&notes[..], [InboundNote::Target(t)] if t.via == TargetVia::Gre),
        "{notes:?}"
    );
}

/// A request for sequence numbers, the only kind these tests expect.
fn numbers(ask: CfAsk) -> Option<SeqAsk> {
    match ask {
        CfAsk::Numbers(a) => Some(a),
        CfAsk::Kv { .. } => None,
    }
}

/// The takeover's CF request of `image`, answered with `r`.
fn answer_kv(image: &mut Image, r: CfResponse) -> CfRequest {
    let Some(CfAsk::Kv { id, req }) = image.poll_cf_request(Instant::ZERO) else {
        panic!("a takeover step");
    };
    image.handle_cf_response(Instant::ZERO, id, r);
    req
}

fn takeover_plan(previous: &str) -> TakeoverPlan {
    let xcf = Ipv4Addr::new(198, 19, 0, 2);
    TakeoverPlan {
        dvipa: DVA1,
        previous: Some(previous.to_string()),
        dists: Vec::new(),
        fresh: Some(RoutingStack::new("MVS2", xcf, Default::default(), &[])),
        sysplex: Default::default(),
        giveback: false,
    }
}

fn owner_record(image: &str) -> CfResponse {
    let rec = tk::OwnerRecord {
        image: image.to_string(),
        takeover: false,
        previous: None,
    };
    CfResponse::Value(Some(tk::encode(&rec)))
}

#[test]
fn a_takeover_claims_reads_and_adopts_in_order() {
    let mut image = mvs2();
    image.start_takeover(takeover_plan("MVS1"));
    let get = answer_kv(&mut image, owner_record("MVS1"));
    assert!(matches!(get, CfRequest::Get { .. }), "{get:?}");
    let cas = answer_kv(&mut image, CfResponse::Done);
    assert!(matches!(cas, CfRequest::CompareAndSwap { .. }), "{cas:?}");
    let sa_key = tk::sa_key(DVA1, Protocol::Esp, Spi(0x1001)).to_string();
    let list = answer_kv(&mut image, CfResponse::Keys(vec![sa_key]));
    assert!(matches!(list, CfRequest::List { .. }), "{list:?}");
    let XcfMessage::SaInstall(pair) = install() else {
        unreachable!()
    };
    let rec = tk::encode(&tk::SaRecord::Pair(pair));
    answer_kv(&mut image, CfResponse::Value(Some(rec)));
    answer_kv(&mut image, CfResponse::Keys(Vec::new()));
    assert!(image.poll_cf_request(Instant::ZERO).is_none());
    let events: Vec<_> = std::iter::from_fn(|| image.poll_event()).collect();
    assert!(matches!(events[0], ImageEvent::RoutingStackOf { .. }));
    assert!(matches!(events[1], ImageEvent::Adopted { .. }));
    let ImageEvent::PlumbDvipa { sas_adopted, .. } = events[2] else {
        panic!("{events:?}");
    };
    assert_eq!(sas_adopted, 1);
    assert!(image.owned().contains(&DVA1));
}

#[test]
fn a_takeover_stops_when_another_stack_holds_the_dvipa() {
    let mut image = mvs2();
    image.start_takeover(takeover_plan("MVS1"));
    answer_kv(&mut image, owner_record("MVS3"));
    assert!(image.poll_cf_request(Instant::ZERO).is_none());
    let Some(ImageEvent::TakeoverNotClaimed { holder, .. }) = image.poll_event() else {
        panic!("not claimed");
    };
    assert_eq!(holder.as_deref(), Some("MVS3"));
    assert!(image.routing().is_none());
}

#[test]
fn a_takeover_says_which_cf_record_it_could_not_read_and_goes_on() {
    let mut image = mvs2();
    image.start_takeover(takeover_plan("MVS1"));
    answer_kv(&mut image, owner_record("MVS1"));
    answer_kv(&mut image, CfResponse::Done);
    let sa_key = tk::sa_key(DVA1, Protocol::Esp, Spi(0x1001)).to_string();
    answer_kv(&mut image, CfResponse::Keys(vec![sa_key.clone()]));
    answer_kv(&mut image, CfResponse::Value(Some(vec![0xff; 3])));
    answer_kv(&mut image, CfResponse::Keys(Vec::new()));
    let events: Vec<_> = std::iter::from_fn(|| image.poll_event()).collect();
    let unreadable: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            ImageEvent::TakeoverRecordUnreadable { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(unreadable, [&sa_key], "{events:?}");
    let plumbed = events.iter().find_map(|e| match e {
        ImageEvent::PlumbDvipa { sas_adopted, .. } => Some(*sas_adopted),
        _ => None,
    });
    assert_eq!(plumbed, Some(0), "the takeover completes without it");
}
