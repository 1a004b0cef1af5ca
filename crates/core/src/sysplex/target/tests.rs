//! The target stack's tests: rekey timing, GRE-in-UDP, AH+ESP bundles.

use super::*;
use crate::ipsec::sa::tests::config;
use crate::ipsec::sa::{EncAlg, IntegAlg, Mode};
use crate::time::Instant;

const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// A manually keyed pair with a 1 MB byte lifetime between the client
/// of `config` and the DVIPA.
fn pair(inbound_spi: u32, outbound_spi: u32) -> SaInstall {
    let mut inbound = config(EncAlg::AesCbc128, IntegAlg::HmacSha1_96, Mode::Tunnel);
    inbound.spi = Spi(inbound_spi);
    inbound.lifetimes.hard.bytes = Some(1_000_000);
    let mut outbound = inbound.clone();
    outbound.spi = Spi(outbound_spi);
    std::mem::swap(&mut outbound.src, &mut outbound.dst);
    SaInstall::pair(DVIPA, inbound, outbound)
}

fn thresholds(t: &TargetStack) -> Vec<(u32, u32)> {
    t.shadow()
        .iter()
        .map(|p| (p.inbound_life.threshold_bp, p.outbound_life.threshold_bp))
        .collect()
}

fn timing(t: &mut TargetStack, spi: u32, late: bool) {
    let msg = XcfMessage::RekeyTiming {
        dvipa: DVIPA,
        spi: Spi(spi),
        late,
    };
    t.on_xcf(Instant::ZERO, "MVS1", &msg).expect("RekeyTiming");
}

#[test]
fn rekey_timing_adapts_the_old_pair_and_its_successor_within_bounds() {
    let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
    t.install(Instant::ZERO, "MVS1", &pair(0x100, 0x200))
        .expect("old pair");
    // The successor is installed before the old pair's verdict comes.
    t.install(Instant::ZERO, "MVS1", &pair(0x101, 0x201))
        .expect("new pair");
    let d = REPORT_DEFAULT_BP;
    assert_eq!(thresholds(&t), vec![(d, d); 2]);

    timing(&mut t, 0x100, true);
    assert_eq!(thresholds(&t), vec![(d / 2, d / 2); 2]);
    // Late again (about the successor, by its outbound SPI): it falls
    // on from where it was, down to the floor.
    for _ in 0..4 {
        timing(&mut t, 0x201, true);
    }
    let min = REPORT_MIN_BP;
    assert_eq!(thresholds(&t), vec![(min, min); 2]);
    // Timely rekeys raise it by a quarter each, up to the ceiling.
    timing(&mut t, 0x101, false);
    assert_eq!(thresholds(&t), vec![(min + min / 4, min + min / 4); 2]);
    for _ in 0..20 {
        timing(&mut t, 0x101, false);
    }
    assert_eq!(thresholds(&t), vec![(REPORT_MAX_BP, REPORT_MAX_BP); 2]);
    // A verdict about an SPI nobody has changes nothing.
    timing(&mut t, 0x999, true);
    assert_eq!(thresholds(&t), vec![(REPORT_MAX_BP, REPORT_MAX_BP); 2]);
}

/// GRE-in-UDP (RFC 8086) is the same GRE after a different outer
/// header: the same packet is delivered as from protocol 47, and the
/// link check applies to the UDP sender.
#[test]
fn gre_in_udp_delivers_like_gre_and_checks_the_sender() {
    let (me, mvs1) = (Ipv4Addr::new(198, 19, 0, 2), Ipv4Addr::new(198, 19, 0, 1));
    let client = Ipv4Addr::new(198, 18, 1, 2);
    let inner = crate::wire::build::tcp_packet(client, 40000, DVIPA, 80, 1, 0, TcpFlags::SYN, b"");
    let mut t = TargetStack::new("MVS2", me);
    let mut body = Vec::new();
    gre_payload(&inner, Upstream::Nothing, &mut body);
    let mut ip = Vec::new();
    encap(mvs1, me, &inner, Upstream::Nothing, &mut ip);

    let delivered = Verdict::Deliver(inner.clone());
    assert_eq!(t.from_gre(Instant::ZERO, mvs1, &ip), delivered);
    assert_eq!(
        t.from_gre_in_udp(Instant::ZERO, mvs1, mvs1, &body),
        delivered
    );
    let spoofed = Ipv4Addr::new(198, 19, 0, 3);
    assert_eq!(
        t.from_gre_in_udp(Instant::ZERO, mvs1, spoofed, &body),
        Verdict::Drop(TargetDrop::LinkCheck)
    );
    assert_eq!(
        t.from_gre_in_udp(Instant::ZERO, mvs1, mvs1, &body[..3]),
        Verdict::Drop(TargetDrop::BadGre)
    );
    let c = t.counters();
    assert_eq!(c.gre_in, 4);
    assert_eq!(c.drops.get("link-check"), Some(&1));
    assert_eq!(c.drops.get("bad-gre"), Some(&1));
}

use crate::sysplex::xcf::tests::bundle;
use rand_core::SeedableRng;

fn target_with_bundle() -> TargetStack {
    let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
    let msg = XcfMessage::BundleInstall(Box::new(bundle()));
    t.on_xcf(Instant::ZERO, "MVS1", &msg).unwrap();
    t
}

/// Fig. 10 block 160 plans a bundle with both CF structures, and its
/// ESP SA never seals alone (that packet would lack the AH its policy
/// requires); the bundle seals and counts on both SAs.
#[test]
fn bundle_plans_two_structures_and_never_seals_esp_alone() {
    let mut t = target_with_bundle();
    let b = bundle();
    let pkt = crate::wire::build::tcp_packet(
        b.esp.dvipa,
        80,
        Ipv4Addr::new(198, 18, 1, 2),
        40000,
        1,
        1,
        TcpFlags::ACK,
        b"hello",
    );
    assert_eq!(
        t.outbound_plan(&pkt),
        OutboundPlan::Bundle {
            spi: b.esp.outbound.spi,
            seq_key: b.esp.seq_key,
            ah_seq_key: b.ah.seq_key,
        }
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut out = Vec::new();
    let spi = b.esp.outbound.spi;
    assert_eq!(
        t.seal(
            Instant::ZERO,
            spi,
            SeqNumbers::single(1),
            &mut rng,
            &pkt,
            &mut out
        ),
        Err(TargetDrop::Seal)
    );
    let both = SeqNumbers {
        esp: 9,
        ah: Some(7),
    };
    t.seal(Instant::ZERO, spi, both, &mut rng, &pkt, &mut out)
        .unwrap();
    assert_eq!(out[9], 51, "AH outermost");
    let pair = &t.shadow()[0];
    let ah = pair.ah.as_ref().unwrap();
    assert_eq!(
        (
            ah.outbound.counters().packets,
            pair.outbound.counters().packets
        ),
        (1, 1)
    );
    assert_eq!(
        (ah.outbound_life.highest_seq, pair.outbound_life.highest_seq),
        (7, 9)
    );
    t.flush_lifesize();
    let spis: Vec<Spi> = t
        .take_outbox()
        .into_iter()
        .filter_map(|(_, m)| match m {
            XcfMessage::Lifesize { spi, .. } => Some(spi),
            _ => None,
        })
        .collect();
    assert_eq!(spis, vec![b.esp.outbound.spi, b.ah.outbound.spi]);
}

/// A BundleDelete removes the bundle only when its AH SPIs match too.
#[test]
fn bundle_delete_needs_the_bundle_spis() {
    let mut t = target_with_bundle();
    let b = bundle();
    let delete = |ah_inbound_spi| XcfMessage::BundleDelete {
        dvipa: b.esp.dvipa,
        esp_inbound_spi: b.esp.inbound.spi,
        esp_outbound_spi: b.esp.outbound.spi,
        ah_inbound_spi,
        ah_outbound_spi: b.ah.outbound.spi,
    };
    t.on_xcf(Instant::ZERO, "MVS1", &delete(Spi(0x99))).unwrap();
    assert_eq!(t.shadow().len(), 1);
    t.on_xcf(Instant::ZERO, "MVS1", &delete(b.ah.inbound.spi))
        .unwrap();
    assert!(t.shadow().is_empty());
}

/// A bundle whose halves do not fit is refused, not half-installed.
#[test]
fn inconsistent_bundle_is_refused() {
    let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
    let mut b = bundle();
    b.ah.inbound.protocol = Protocol::Esp;
    let msg = XcfMessage::BundleInstall(Box::new(b));
    assert!(t.on_xcf(Instant::ZERO, "MVS1", &msg).is_err());
    assert!(t.shadow().is_empty());
}
