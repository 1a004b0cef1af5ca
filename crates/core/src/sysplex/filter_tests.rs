//! Dynamic filters across the sysplex (patent Fig. 6 block 118, Fig. 7
//! block 122, Fig. 9 block 152, Fig. 10 block 160): the routing stack
//! anchors a pair in its filter table and sends the filter with the SAs;
//! targets place it, filter with it, drop it with the pair; a takeover
//! re-creates it from the new owner's table. figure4's policies.

use std::net::{IpAddr, Ipv4Addr};

use rand_core::SeedableRng;

use super::routing::RoutingStack;
use super::takeover::{Adopter, SaAdoption, SaRecord};
use super::target::{InstallError, OutboundPlan, TargetDrop, TargetStack, Upstream, Verdict};
use super::test_support::{figure4_filter_table, Figure4};
use super::xcf::{SaInstall, XcfMessage};
use crate::ipsec::filter::{FilterTable, Verdict as FilterVerdict};
use crate::ipsec::policy::FilterAction;
use crate::ipsec::sa::tests::config;
use crate::ipsec::sa::{EncAlg, IntegAlg, Mode, PortRange, Sa, SaConfig, Spi, TrafficSelector};
use crate::ipsec::sad::OutboundSa;
use crate::time::Instant;
use crate::wire::{IpProtocol, TcpFlags};

const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// `config`'s client.
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);

/// `image`'s filter table in figure4.
fn table(image: &str) -> FilterTable {
    figure4_filter_table(image, false)
}

fn routing(image: &str, table: Option<FilterTable>) -> RoutingStack {
    let mut r = RoutingStack::new(image, Ipv4Addr::new(198, 19, 0, 1), Default::default(), &[]);
    if let Some(t) = table {
        r.set_filter(t);
    }
    r
}

/// A pair between `CLIENT` and DVA1 whose selectors are TCP to DVA1:80
/// from `ports`, or host to host with `None`.
fn pair(spi_in: u32, spi_out: u32, ports: Option<(u16, u16)>) -> SaInstall {
    let mut inbound = config(EncAlg::AesCbc128, IntegAlg::HmacSha1_96, Mode::Tunnel);
    inbound.spi = Spi(spi_in);
    inbound.selector = TrafficSelector::hosts(IpAddr::V4(CLIENT), IpAddr::V4(DVA1));
    if let Some((first, last)) = ports {
        inbound.selector.protocol = Some(IpProtocol::Tcp);
        inbound.selector.src_ports = PortRange {
            start: first,
            end: last,
        };
        inbound.selector.dst_ports = PortRange::single(80);
    }
    let mut outbound = inbound.clone();
    outbound.spi = Spi(spi_out);
    std::mem::swap(&mut outbound.src, &mut outbound.dst);
    let s = inbound.selector;
    outbound.selector = TrafficSelector {
        src: s.dst,
        dst: s.src,
        protocol: s.protocol,
        src_ports: s.dst_ports,
        dst_ports: s.src_ports,
    };
    SaInstall::pair(DVA1, inbound, outbound)
}

/// The client's ESP packet of a TCP segment `sport` → DVA1:80 on `sa`.
fn esp(sa: &SaConfig, seq: u64, sport: u16, flags: TcpFlags) -> Vec<u8> {
    let inner = crate::wire::build::tcp_packet(CLIENT, sport, DVA1, 80, 1, 0, flags, b"");
    let mut out = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seq);
    OutboundSa::new(Sa::new(sa.clone()).expect("SA"), Instant::ZERO)
        .seal(Instant::ZERO, seq, &mut rng, &inner, &mut out)
        .expect("sealed");
    out
}

fn reply(cport: u16) -> Vec<u8> {
    crate::wire::build::tcp_packet(DVA1, 80, CLIENT, cport, 1, 2, TcpFlags::ACK, b"ok")
}

/// The first IPsec rule covering the pair anchors it; a host-to-host pair,
/// wider than any rule, at the first it overlaps; no table or no IPsec
/// rule in common: no dynamic filter. Delete and supersede take it away.
#[test]
fn the_routing_stack_anchors_installs_and_removes_dynamic_filters() {
    let mut r = routing("MVS1", Some(table("MVS1")));
    let narrowed = r.install(pair(0x11, 0x12, Some((40000, 40009)))).unwrap();
    let f = narrowed.filter.as_ref().expect("anchored");
    assert_eq!(f.anchor.name, "dva1-web");
    assert!(matches!(f.anchor.action, FilterAction::Ipsec(_)));
    assert_eq!(f.dynamic.sas.inbound, narrowed.inbound_id());
    let hosts = r.install(pair(0x21, 0x22, None)).unwrap();
    assert_eq!(hosts.filter.map(|f| f.anchor.name), Some("dva1-web".into()));
    let dynamic = |r: &RoutingStack| r.filter().map(|t| t.dynamic_filters().count());
    assert_eq!(dynamic(&r), Some(2));
    // The same inbound SPI again (superseded): still one filter for it.
    r.install(pair(0x21, 0x23, None)).unwrap();
    assert_eq!(dynamic(&r), Some(2));
    r.delete(Spi(0x11));
    r.delete(Spi(0x21));
    assert_eq!(dynamic(&r), Some(0));
    // UDP to DNS: no IPsec rule has any of it.
    let mut dns = pair(0x31, 0x32, None);
    dns.inbound.selector.protocol = Some(IpProtocol::Udp);
    dns.outbound.selector.protocol = Some(IpProtocol::Udp);
    dns.outbound.selector.src_ports = PortRange::single(53);
    assert!(r.install(dns).unwrap().filter.is_none());
    let mut plain = routing("MVS1", None);
    assert!(plain
        .install(pair(0x11, 0x12, None))
        .unwrap()
        .filter
        .is_none());
}

/// MVS1 (with figure4's policy, `log_ipsec` as in
/// [`figure4_filter_table`]) installs a pair for TCP from ports
/// 40000-40009 to DVA1:80 (inbound SPI `spi`, outbound `spi + 1`) and
/// sends it to MVS2, whose target stack admits a SYN from port 40000
/// under it and refuses one from port 50000 (block 152).
fn mvs2_admits_40000_refuses_50000(log_ipsec: bool, spi: u32) -> (SaInstall, TargetStack) {
    let mut r = routing("MVS1", Some(figure4_filter_table("MVS1", log_ipsec)));
    let install = r.install(pair(spi, spi + 1, Some((40000, 40009)))).unwrap();
    let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
    t.on_xcf(
        Instant::ZERO,
        "MVS1",
        &XcfMessage::SaInstall(Box::new(install.clone())),
    )
    .unwrap();
    let inside = esp(&install.inbound, 1, 40000, TcpFlags::SYN);
    assert!(matches!(
        t.inbound(Instant::ZERO, &inside, Upstream::Nothing),
        Verdict::Deliver(_)
    ));
    let outside = esp(&install.inbound, 2, 50000, TcpFlags::SYN);
    assert_eq!(
        t.inbound(Instant::from_millis(5), &outside, Upstream::Nothing),
        Verdict::Drop(TargetDrop::Filter)
    );
    (install, t)
}

/// Block 152 at a target without a policy of its own: a packet under the
/// SA from a port outside its filter reaches the filter (not the engine's
/// selector check) and is counted by rule and reason; inside, it passes.
#[test]
fn a_target_filters_decrypted_packets_with_the_dynamic_filter_it_received() {
    let (install, mut t) = mvs2_admits_40000_refuses_50000(false, 0x11);
    let c = t.counters();
    assert_eq!(c.filter_denied.get("dva1-web outside-sa"), Some(&1));
    assert_eq!(c.drops.get("ipsec-selector-mismatch"), None);
    // A SYN nobody admitted: the routing stack's entry for it must go.
    let ended: Vec<_> = t.take_outbox();
    assert!(
        matches!(&ended[..], [(to, XcfMessage::ConnEnded { client_port: 50000, .. })] if to == "MVS1"),
        "{ended:?}"
    );
    // The claim 7 bypass: filtered upstream, the target does not filter.
    let again = esp(&install.inbound, 3, 50000, TcpFlags::SYN);
    assert!(matches!(
        t.inbound(Instant::ZERO, &again, Upstream::Filtered),
        Verdict::Deliver(_)
    ));
}

/// A LOG anchor (figure4's `ipsec` action with IpFilterLogging Yes): what
/// the target permits (EZD0814I) and denies under it is logged there,
/// rate-limited per rule.
#[test]
fn a_target_logs_what_it_denies_under_a_log_anchor() {
    let (_, mut t) = mvs2_admits_40000_refuses_50000(true, 0x21);
    // IpFilterLogging Yes logs what the rule permits and what it denies.
    let lines: Vec<String> = t
        .take_filter_logs()
        .iter()
        .map(|l| l.render("T", Ipv4Addr::new(198, 18, 0, 12), "ext"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("EZD0814I") && lines[0].contains("sport= 40000"),
        "{lines:?}"
    );
    assert!(
        !lines[1].starts_with("EZD0814I") && lines[1].contains("sport= 50000"),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.contains("rule= dva1-web")),
        "{lines:?}"
    );
    assert!(t.take_filter_logs().is_empty());
}

/// Fig. 10 block 160: the dynamic filter's SA seals a reply; once the pair
/// is deleted its filter goes, the anchor stays, and the reply needs an SA
/// it does not have. A clear packet the anchor covers is refused too.
#[test]
fn a_target_refuses_replies_the_anchor_requires_ipsec_for_once_the_pair_is_gone() {
    let mut r = routing("MVS1", Some(table("MVS1")));
    let install = r.install(pair(0x11, 0x12, None)).unwrap();
    let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
    t.install(Instant::ZERO, "MVS1", &install).unwrap();
    assert_eq!(
        t.outbound_plan(&reply(40000)),
        OutboundPlan::Protect {
            spi: Spi(0x12),
            seq_key: install.seq_key
        }
    );
    let delete = XcfMessage::SaDelete {
        dvipa: DVA1,
        protocol: install.inbound.protocol,
        inbound_spi: Spi(0x11),
        outbound_spi: Spi(0x12),
    };
    t.on_xcf(Instant::ZERO, "MVS1", &delete).unwrap();
    let table = t.filter_table(DVA1).expect("the DVIPA's table");
    assert_eq!(table.dynamic_filters().count(), 0);
    assert!(table
        .active_rules()
        .rules
        .iter()
        .any(|r| r.name == "dva1-web"));
    let plan = t.outbound_plan(&reply(40000));
    assert_eq!(
        plan,
        OutboundPlan::NeedsSa {
            rule: "dva1-web".into()
        }
    );
    assert!(matches!(
        t.last_filter(),
        Some((FilterVerdict::NeedsSa { .. }, None))
    ));
    t.refuse_needs_sa("dva1-web");
    assert_eq!(t.counters().drops.get("needs-sa"), Some(&1));
    assert_eq!(
        t.counters().filter_denied.get("dva1-web needs-sa"),
        Some(&1)
    );
    // Port 60 is no anchor's business: plain (the owner's policy permits it).
    let app60 = crate::wire::build::tcp_packet(DVA1, 60, CLIENT, 40000, 1, 2, TcpFlags::ACK, b"");
    assert_eq!(t.outbound_plan(&app60), OutboundPlan::Plain);
    let clear = crate::wire::build::tcp_packet(CLIENT, 40000, DVA1, 80, 1, 0, TcpFlags::SYN, b"");
    assert_eq!(
        t.inbound(Instant::ZERO, &clear, Upstream::Nothing),
        Verdict::Drop(TargetDrop::Unprotected)
    );
    assert_eq!(
        t.counters().filter_denied.get("dva1-web clear-text"),
        Some(&1)
    );
}

/// A takeover re-install of the same SAs takes the new owner's filter
/// (here: none) and hands the selector check back to the SA; an anchor
/// that is no IPsec rule is refused and leaves the table as it was.
#[test]
fn a_target_follows_the_owners_filter_and_refuses_a_bad_anchor() {
    let mut r = routing("MVS1", Some(table("MVS1")));
    let install = r.install(pair(0x11, 0x12, Some((40000, 40009)))).unwrap();
    let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
    t.install(Instant::ZERO, "MVS1", &install).unwrap();
    let opening = |t: &TargetStack| t.shadow()[0].inbound.sa().config().selector;
    assert_eq!(opening(&t), TrafficSelector::ANY_V4, "the filter checks");
    let mut bare = install.clone();
    bare.filter = None;
    t.install(Instant::ZERO, "MVS5", &bare).unwrap();
    assert_eq!(opening(&t), install.inbound.selector);
    assert_eq!(t.shadow()[0].owner, "MVS5");
    let dynamic = |t: &TargetStack| t.filter_table(DVA1).map(|t| t.dynamic_filters().count());
    assert_eq!(dynamic(&t), Some(0));

    let mut bad = pair(0x21, 0x22, None);
    let mut f = install.filter.clone().expect("anchored");
    f.anchor.action = FilterAction::Permit;
    f.dynamic.sas.inbound = bad.inbound_id();
    f.dynamic.sas.outbound = bad.outbound_id();
    bad.filter = Some(f);
    let mut fresh = TargetStack::new("MVS4", Ipv4Addr::new(198, 19, 0, 4));
    assert!(matches!(
        fresh.install(Instant::ZERO, "MVS1", &bad),
        Err(InstallError::Dynamic(_))
    ));
    assert!(fresh.shadow().is_empty() && fresh.filter_table(DVA1).is_none());
}

/// Takeover adoption: the CF record carries the failed owner's filter;
/// the adopting routing stack anchors the pair in its own table (MVS5's
/// dva1-web) and its own shadow copy gets that filter.
#[test]
fn adoption_recreates_the_filters_from_the_adopters_table() {
    let mut mvs1 = routing("MVS1", Some(table("MVS1")));
    let mut rec = mvs1.install(pair(0x11, 0x12, None)).unwrap();
    if let Some(f) = rec.filter.as_mut() {
        f.anchor.name = "gone-from-the-policy".into();
        f.dynamic.anchor = "gone-from-the-policy".into();
    }
    let mut r = routing("MVS5", Some(table("MVS5")));
    let mut t = TargetStack::new("MVS5", Ipv4Addr::new(198, 19, 0, 5));
    let adoption = Adopter {
        routing: &mut r,
        target: &mut t,
        me: "MVS5",
        now: Instant::ZERO,
    }
    .adopt(
        &Figure4,
        DVA1,
        vec![SaRecord::Pair(Box::new(rec))],
        vec![],
        Some("MVS1"),
    );
    assert!(matches!(adoption.sas[..], [SaAdoption::Adopted { .. }]));
    let owned = &r.pairs()[0].install;
    assert_eq!(
        owned.filter.as_ref().map(|f| f.anchor.name.as_str()),
        Some("dva1-web")
    );
    assert_eq!(r.filter().map(|t| t.dynamic_filters().count()), Some(1));
    assert_eq!(t.shadow()[0].install.filter, owned.filter);
    let names: Vec<_> = t
        .filter_table(DVA1)
        .expect("table")
        .active_rules()
        .rules
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, vec!["dva1-web".to_string()]);
}

/// A rekey: the new pair's dynamic filter goes first in the table, but the
/// old SA keeps sealing until its pair is deleted (the client installs the
/// new SAs when our CREATE_CHILD_SA response arrives); the new one then.
#[test]
fn after_a_rekey_the_old_sa_seals_until_it_is_deleted() {
    let mut r = routing("MVS1", Some(table("MVS1")));
    let old = r.install(pair(0x11, 0x12, None)).unwrap();
    let new = r.install(pair(0x21, 0x22, None)).unwrap();
    let mut t = TargetStack::new("MVS2", Ipv4Addr::new(198, 19, 0, 2));
    t.install(Instant::ZERO, "MVS1", &old).unwrap();
    t.install(Instant::ZERO, "MVS1", &new).unwrap();
    let first = t
        .filter_table(DVA1)
        .and_then(|t| t.dynamic_filters().next().cloned());
    assert_eq!(first.map(|f| f.sas.outbound), Some(new.outbound_id()));
    let spi = |plan| match plan {
        OutboundPlan::Protect { spi, .. } => Some(spi),
        _ => None,
    };
    assert_eq!(spi(t.outbound_plan(&reply(40000))), Some(Spi(0x12)));
    let delete = XcfMessage::SaDelete {
        dvipa: DVA1,
        protocol: old.inbound.protocol,
        inbound_spi: Spi(0x11),
        outbound_spi: Spi(0x12),
    };
    t.on_xcf(Instant::ZERO, "MVS1", &delete).unwrap();
    assert_eq!(spi(t.outbound_plan(&reply(40000))), Some(Spi(0x22)));
    // Inbound, either SA is admitted meanwhile (z/OS: the sibling filter).
    let on_new = esp(&new.inbound, 1, 40000, TcpFlags::ACK);
    assert!(matches!(
        t.inbound(Instant::ZERO, &on_new, Upstream::Nothing),
        Verdict::Deliver(_)
    ));
}
