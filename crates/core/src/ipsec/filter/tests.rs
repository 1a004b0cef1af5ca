//! Filter table tests: a DVIPA serving HTTP under IPsec to one client.

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use crate::time::Instant;

use super::*;
use crate::ipsec::policy::{
    AddrSpec, DataOffer, FilterRule, Initiation, ManVpnAction, PortSpec, ProtocolSpec,
};
use crate::ipsec::sa::{AddrRange, EncAlg, IntegAlg, Mode, PortRange, Protocol, Spi};
use crate::wire::IpProtocol;

const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const IN: PacketDirection = PacketDirection::Inbound;
const OUT: PacketDirection = PacketDirection::Outbound;

fn rule(name: &str, protocol: ProtocolSpec, action: FilterAction) -> FilterRule {
    FilterRule {
        name: name.into(),
        conditions: Conditions::local(AddrSpec::host(DVIPA), AddrSpec::Any, protocol),
        action,
        log: false,
    }
}

fn tcp_from(port: u16) -> ProtocolSpec {
    ProtocolSpec::Tcp {
        src: PortSpec::single(port),
        dst: PortSpec::Any,
    }
}

fn vpn(initiation: Initiation) -> FilterAction {
    FilterAction::Ipsec(DynVpnAction {
        name: "dva1-esp".into(),
        offers: vec![DataOffer {
            protocol: Protocol::Esp,
            mode: Mode::Tunnel,
            encryption: Some(EncAlg::AesCbc128),
            integrity: IntegAlg::HmacSha1_96,
            lifetime_secs: 14_400,
            lifesize_bytes: None,
        }],
        initiation,
        pfs_group: None,
    })
}

/// ssh denied, web under IPsec, everything from the DVIPA on UDP 500
/// permitted (IKE), the rest to SYSDEFAULTDENYRULE.
fn policy() -> RuleSet {
    RuleSet::new(vec![
        rule("ssh", tcp_from(22), FilterAction::Deny),
        rule("web", tcp_from(80), vpn(Initiation::Either)),
        rule(
            "ike",
            ProtocolSpec::Udp {
                src: PortSpec::single(500),
                dst: PortSpec::Any,
            },
            FilterAction::Permit,
        ),
    ])
}

fn table() -> FilterTable {
    let mut t = FilterTable::new(RuleSet::default(), FilterOptions::default()).unwrap();
    assert_eq!(t.install_policy(policy()), Ok(vec![]));
    t
}

fn sa(dst: Ipv4Addr, spi: u32) -> SaId {
    SaId {
        dst: IpAddr::V4(dst),
        protocol: Protocol::Esp,
        spi: Spi(spi),
    }
}

/// The dynamic filter of SA pair `n`: web traffic of client port range
/// `ports` (IKEv2 narrowed to a port range).
fn dynamic(n: u32, ports: PortRange) -> DynamicFilter {
    let outbound = TrafficSelector {
        src: AddrRange::single(IpAddr::V4(DVIPA)),
        dst: AddrRange::single(IpAddr::V4(CLIENT)),
        protocol: Some(IpProtocol::Tcp),
        src_ports: PortRange::single(80),
        dst_ports: ports,
    };
    let inbound = TrafficSelector {
        src: outbound.dst,
        dst: outbound.src,
        protocol: outbound.protocol,
        src_ports: outbound.dst_ports,
        dst_ports: outbound.src_ports,
    };
    DynamicFilter {
        anchor: "web".into(),
        sas: SaPair {
            inbound: sa(DVIPA, 0x1000 + n),
            outbound: sa(CLIENT, 0xc000 + n),
        },
        inbound,
        outbound,
    }
}

fn request(port: u16) -> FilterPacket {
    FilterPacket::tcp(IN, (CLIENT, port), (DVIPA, 80))
}

/// To the DVIPA's port 23, which no rule mentions.
fn telnet() -> FilterPacket {
    FilterPacket::tcp(IN, (CLIENT, 5000), (DVIPA, 23))
}

fn reply(port: u16) -> FilterPacket {
    FilterPacket::tcp(OUT, (DVIPA, 80), (CLIENT, port))
}

fn reason(v: &Verdict) -> Option<(DenyReason, &str)> {
    match v {
        Verdict::Deny { rule, reason, .. } => Some((*reason, rule)),
        _ => None,
    }
}

fn hits(t: &FilterTable, name: &str) -> u64 {
    t.snapshot()
        .iter()
        .filter(|r| r.name == name && r.filter_type != FilterType::Dynamic)
        .map(|r| r.hits)
        .sum()
}

#[test]
fn first_match_decides() {
    let mut t = table();
    // Port 22 is denied by "ssh" even though a later rule could match.
    let mut t2 = FilterTable::new(RuleSet::default(), FilterOptions::default()).unwrap();
    let mut rules = policy();
    rules
        .rules
        .insert(0, rule("all", ProtocolSpec::Any, FilterAction::Permit));
    t2.install_policy(rules).unwrap();
    let ssh = FilterPacket::tcp(OUT, (DVIPA, 22), (CLIENT, 5000));
    assert_eq!(
        reason(&t.evaluate(&ssh)),
        Some((DenyReason::DenyRule, "ssh"))
    );
    assert_eq!(t2.evaluate(&ssh), Verdict::Permit { rule: "all".into() });
    assert_eq!(hits(&t2, "ssh"), 0);
    assert_eq!(hits(&t2, "all"), 1);
}

#[test]
fn default_deny_counts_and_stack_icmp_passes() {
    let mut t = table();
    assert_eq!(
        reason(&t.evaluate(&telnet())),
        Some((DenyReason::DefaultDeny, SYSDEFAULTDENYRULE))
    );
    let echo = FilterPacket::icmp(IN, CLIENT, DVIPA, 8, 0);
    assert!(!t.evaluate(&echo).passes());
    let frag_needed = FilterPacket::icmp(IN, CLIENT, DVIPA, 3, 4);
    assert_eq!(t.evaluate(&frag_needed), Verdict::PermitStackIcmp);
    assert_eq!(hits(&t, SYSDEFAULTDENYRULE), 2);
    assert_eq!(t.stack_icmp_permits(), 1);
    let denied: u64 = t
        .denials()
        .filter(|(r, _)| *r == DenyReason::DefaultDeny)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(denied, 2);
    // A rule that denies ICMP wins over the exception: it only applies
    // when nothing matched.
    let mut rules = policy();
    rules.rules.push(FilterRule {
        conditions: Conditions::local(
            AddrSpec::Any,
            AddrSpec::Any,
            ProtocolSpec::Icmp {
                icmp_type: None,
                code: None,
            },
        ),
        ..rule("no-icmp", ProtocolSpec::Any, FilterAction::Deny)
    });
    t.install_policy(rules).unwrap();
    assert_eq!(
        reason(&t.evaluate(&frag_needed)),
        Some((DenyReason::DenyRule, "no-icmp"))
    );
}

#[test]
fn clear_text_where_ipsec_is_required_is_denied() {
    let mut t = table();
    assert_eq!(
        reason(&t.evaluate(&request(40000))),
        Some((DenyReason::ClearText, "web"))
    );
    t.install_dynamic(dynamic(1, PortRange::ANY)).unwrap();
    // Matching the dynamic filter in clear is no better.
    let v = t.evaluate(&request(40000));
    assert_eq!(reason(&v), Some((DenyReason::ClearText, "web")));
    assert!(matches!(v, Verdict::Deny { filter_sa: Some(s), .. } if s == sa(DVIPA, 0x1001)));
}

#[test]
fn outbound_needs_an_sa_then_is_protected() {
    let mut t = table();
    match t.evaluate(&reply(40000)) {
        Verdict::NeedsSa { rule, action } => {
            assert_eq!(&*rule, "web");
            assert!(action.initiation.may_initiate());
        }
        other => panic!("{other:?}"),
    }
    t.install_dynamic(dynamic(1, PortRange::ANY)).unwrap();
    assert_eq!(
        t.evaluate(&reply(40000)),
        Verdict::Protect {
            rule: "web".into(),
            sa: sa(CLIENT, 0xc001)
        }
    );
    assert_eq!(
        t.evaluate(&request(40000).under(sa(DVIPA, 0x1001))),
        Verdict::PermitProtected {
            rule: "web".into(),
            sa: sa(DVIPA, 0x1001)
        }
    );
}

#[test]
fn decrypted_under_the_wrong_sa_or_outside_it_is_denied() {
    let mut t = table();
    // SA 1 carries client ports 40000-40999, SA 2 ports 41000-41999.
    t.install_dynamic(dynamic(
        1,
        PortRange {
            start: 40000,
            end: 40999,
        },
    ))
    .unwrap();
    t.install_dynamic(dynamic(
        2,
        PortRange {
            start: 41000,
            end: 41999,
        },
    ))
    .unwrap();
    let a = sa(DVIPA, 0x1001);
    let b = sa(DVIPA, 0x1002);
    assert!(t.evaluate(&request(40001).under(a)).passes());
    assert!(t.evaluate(&request(41001).under(b)).passes());
    // Decrypted under A but it is B's traffic.
    let v = t.evaluate(&request(41001).under(a));
    assert_eq!(reason(&v), Some((DenyReason::WrongSa, "web")));
    assert!(matches!(v, Verdict::Deny { filter_sa: Some(s), .. } if s == b));
    // Decrypted under A, outside every dynamic filter of "web".
    let v = t.evaluate(&request(50000).under(a));
    assert_eq!(reason(&v), Some((DenyReason::OutsideSa, "web")));
    // Decrypted under A but the first match is a clear-text permit rule.
    let ike = FilterPacket::udp(IN, (CLIENT, 500), (DVIPA, 500)).under(a);
    assert_eq!(
        reason(&t.evaluate(&ike)),
        Some((DenyReason::ProtectedPermit, "ike"))
    );
    // ... or a deny rule, or nothing.
    let ssh = FilterPacket::tcp(IN, (CLIENT, 5000), (DVIPA, 22)).under(a);
    assert_eq!(
        reason(&t.evaluate(&ssh)),
        Some((DenyReason::DenyRule, "ssh"))
    );
    assert_eq!(
        reason(&t.evaluate(&telnet().under(a))),
        Some((DenyReason::DefaultDeny, SYSDEFAULTDENYRULE))
    );
}

#[test]
fn rekeyed_sas_share_selectors() {
    let mut t = table();
    t.install_dynamic(dynamic(1, PortRange::ANY)).unwrap();
    t.install_dynamic(dynamic(2, PortRange::ANY)).unwrap();
    // Outbound uses the newest SA; inbound accepts both until the old one
    // is deleted.
    assert!(
        matches!(t.evaluate(&reply(40000)), Verdict::Protect { sa: s, .. } if s == sa(CLIENT, 0xc002))
    );
    let old = request(40000).under(sa(DVIPA, 0x1001));
    assert!(t.evaluate(&old).passes());
    assert!(t.remove_dynamic(&sa(CLIENT, 0xc001)).is_some());
    assert_eq!(
        reason(&t.evaluate(&old)),
        Some((DenyReason::WrongSa, "web"))
    );
}

#[test]
fn dynamic_filters_sit_before_their_anchor_and_go() {
    let mut t = table();
    t.install_dynamic(dynamic(1, PortRange::ANY)).unwrap();
    t.install_dynamic(dynamic(2, PortRange::ANY)).unwrap();
    let rows = t.snapshot();
    let order: Vec<(&str, FilterType, Option<u32>)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.filter_type, r.sa.map(|s| s.spi.0)))
        .collect();
    use FilterType::*;
    assert_eq!(
        order,
        [
            ("ssh", Policy, None),
            ("web", Dynamic, Some(0xc002)),
            ("web", Dynamic, Some(0x1002)),
            ("web", Dynamic, Some(0xc001)),
            ("web", Dynamic, Some(0x1001)),
            ("web", Policy, None),
            ("ike", Policy, None),
            (SYSDEFAULTDENYRULE, SysDefault, None),
        ]
    );
    assert_eq!(rows[5].action, "ipsec");
    assert_eq!(rows[1].vpn_action.as_deref(), Some("dva1-esp"));
    let removed = t.remove_dynamic(&sa(DVIPA, 0x1002)).unwrap();
    assert_eq!(removed.sas.outbound, sa(CLIENT, 0xc002));
    assert!(t.remove_dynamic(&sa(DVIPA, 0x1002)).is_none());
    t.remove_dynamic(&sa(DVIPA, 0x1001)).unwrap();
    assert!(matches!(t.evaluate(&reply(1)), Verdict::NeedsSa { .. }));
    assert_eq!(t.snapshot().len(), 4);
}

#[test]
fn install_errors_and_policy_changes() {
    let mut t = table();
    let mut stray = dynamic(1, PortRange::ANY);
    stray.anchor = "nope".into();
    assert_eq!(
        t.install_dynamic(stray),
        Err(InstallError::NoAnchor("nope".into()))
    );
    let mut permit = dynamic(1, PortRange::ANY);
    permit.anchor = "ike".into();
    assert_eq!(
        t.install_dynamic(permit),
        Err(InstallError::NotIpsec("ike".into()))
    );
    t.install_dynamic(dynamic(1, PortRange::ANY)).unwrap();
    assert_eq!(
        t.install_dynamic(dynamic(1, PortRange::ANY)),
        Err(InstallError::Duplicate)
    );
    // The same policy again keeps the tunnel (and its counters).
    t.evaluate(&reply(1));
    assert_eq!(t.install_policy(policy()), Ok(vec![]));
    assert!(matches!(t.evaluate(&reply(1)), Verdict::Protect { .. }));
    assert_eq!(t.snapshot()[1].hits, 2);
    // A policy where "web" only permits drops it.
    let mut rules = policy();
    rules.rules[1].action = FilterAction::Permit;
    assert_eq!(
        t.install_policy(rules),
        Ok(vec![dynamic(1, PortRange::ANY).sas])
    );
    assert_eq!(t.dynamic_filters().count(), 0);
    assert!(t.has_policy());
    assert!(t.remove_policy().is_empty());
    assert!(!t.has_policy() && t.active_rules().rules.is_empty());
}

#[test]
fn logging_is_rate_limited_per_rule() {
    let mut rules = policy();
    rules.rules[0].log = true;
    let options = FilterOptions {
        log_limit: LogLimit {
            burst: 2,
            per_sec: 1,
        },
        ..FilterOptions::default()
    };
    let mut t = FilterTable::new(RuleSet::default(), options).unwrap();
    t.install_policy(rules).unwrap();
    let ssh = FilterPacket::tcp(IN, (CLIENT, 5000), (DVIPA, 22));
    let t0 = Instant::from_secs(10);
    let logged: Vec<bool> = (0..4)
        .map(|_| t.evaluate_logged(&ssh, t0).1.is_some())
        .collect();
    assert_eq!(logged, [true, true, false, false]);
    assert!(t
        .evaluate_logged(&ssh, t0 + Duration::from_secs(1))
        .1
        .is_some());
    let row = t.snapshot().into_iter().find(|r| r.name == "ssh").unwrap();
    assert_eq!((row.hits, row.log_suppressed), (5, 2));
    // Rules without LOG never log; the default deny only with LOGIMPLICIT.
    assert!(t.evaluate_logged(&telnet(), t0).1.is_none());
}

#[test]
fn log_lines_follow_the_zos_messages() {
    let mut rules = policy();
    for r in &mut rules.rules {
        r.log = true;
    }
    let mut t = FilterTable::new(RuleSet::default(), FilterOptions::default()).unwrap();
    t.install_policy(rules).unwrap();
    t.install_dynamic(dynamic(1, PortRange::ANY)).unwrap();
    let now = Instant::from_secs(1);
    let ssh = FilterPacket::tcp(IN, (CLIENT, 5000), (DVIPA, 22));
    let log = t.evaluate_logged(&ssh, now).1.unwrap();
    assert_eq!(
        log.render("06/14/2025 15:04:45.42", DVIPA, "EXT"),
        "EZD0815I Packet denied by policy: 06/14/2025 15:04:45.42 filter rule= ssh ext= 1 \
         sipaddr= 198.18.1.10 dipaddr= 198.18.0.100 proto= TCP(6) sport= 5000 dport= 22 -= \
         Interface= 198.18.0.100 (I) secclass= 0 dest= local len= 0 vpnaction= N/A \
         tunnelID= N/A ifcname= EXT fragment= N"
    );
    let wrong = request(40000).under(sa(DVIPA, 0x2222));
    let log = t.evaluate_logged(&wrong, now).1.unwrap();
    assert_eq!(log.id, MessageId::Ezd0833i);
    let line = log.render("T", DVIPA, "EXT");
    assert!(
        line.contains("tunnelID= 0x00001001 decap_tunnelID= 0x00002222"),
        "{line}"
    );
    assert!(!line.contains("vpnaction"), "{line}");
    let log = t.evaluate_logged(&reply(1), now).1.unwrap();
    assert_eq!(log.id, MessageId::Ezd0814i);
    assert!(log
        .render("T", DVIPA, "EXT")
        .contains("vpnaction= dva1-esp tunnelID= 0x0000c001"));
    t.remove_dynamic(&sa(DVIPA, 0x1001));
    let log = t.evaluate_logged(&reply(1), now).1.unwrap();
    assert_eq!(log.id, MessageId::Ezd0821i);
    assert!(!log.render("T", DVIPA, "EXT").contains("tunnelID"));
}

#[test]
fn profile_rules_until_policy_arrives() {
    // An IPSECRULE permitting the client: z/OS names it SYSDEFAULTRULE.1.
    let profile = RuleSet::new(vec![FilterRule {
        name: "SYSDEFAULTRULE.1".into(),
        conditions: Conditions::local(AddrSpec::Any, AddrSpec::host(CLIENT), ProtocolSpec::Any),
        action: FilterAction::Permit,
        log: false,
    }]);
    let mut t = FilterTable::new(profile, FilterOptions::default()).unwrap();
    assert!(t.evaluate(&request(40000)).passes());
    assert_eq!(t.snapshot()[0].filter_type, FilterType::Default);
    t.install_policy(policy()).unwrap();
    assert!(!t.evaluate(&request(40000)).passes());
    t.remove_policy();
    assert!(t.evaluate(&request(40000)).passes());
}

#[test]
fn dynamic_filter_from_sas_travels_over_xcf() {
    let config = |spi, src: Ipv4Addr, dst: Ipv4Addr, selector| SaConfig {
        spi: Spi(spi),
        protocol: Protocol::Esp,
        mode: Mode::Tunnel,
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        enc: EncAlg::AesCbc128,
        enc_key: crate::ipsec::sa::Key(vec![0; 16]),
        integ: IntegAlg::HmacSha1_96,
        integ_key: crate::ipsec::sa::Key(vec![0; 20]),
        esn: false,
        replay_window: 128,
        lifetimes: Default::default(),
        udp_encap: None,
        selector,
    };
    let d = dynamic(1, PortRange::ANY);
    let inbound = config(0x1001, CLIENT, DVIPA, d.inbound);
    let outbound = config(0xc001, DVIPA, CLIENT, d.outbound);
    let f = DynamicFilter::from_sas("web", &inbound, &outbound);
    assert_eq!(f, d);
    let bytes = postcard::to_allocvec(&f).unwrap();
    assert_eq!(postcard::from_bytes::<DynamicFilter>(&bytes).unwrap(), f);
}

mod anchoring;
