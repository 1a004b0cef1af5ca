//! Filter table tests of anchoring: which rule an SA pair's dynamic
//! filter sits in front of, and manual tunnels (IpManVpnAction).

use super::*;

/// The anchor of an SA pair: the first IPsec rule covering its selectors,
/// else the first overlapping them; permit and deny rules never anchor.
#[test]
fn anchor_is_the_first_covering_then_the_first_overlapping_ipsec_rule() {
    let narrowed = dynamic(
        1,
        PortRange {
            start: 40000,
            end: 40009,
        },
    );
    let hosts = TrafficSelector {
        protocol: None,
        src_ports: PortRange::ANY,
        dst_ports: PortRange::ANY,
        ..narrowed.outbound
    };
    let mirror = |t: &TrafficSelector| TrafficSelector {
        src: t.dst,
        dst: t.src,
        protocol: t.protocol,
        src_ports: t.dst_ports,
        dst_ports: t.src_ports,
    };
    let name =
        |t: &FilterTable, o: &TrafficSelector| t.anchor_for(o, &mirror(o)).map(|r| r.name.clone());
    // "one-port" (TCP from 80 to client port 40000 only) overlaps the
    // narrowed pair; "web" after it covers it and wins.
    let mut rules = policy();
    let one_port = FilterRule {
        conditions: Conditions::local(
            AddrSpec::host(DVIPA),
            AddrSpec::Any,
            ProtocolSpec::Tcp {
                src: PortSpec::single(80),
                dst: PortSpec::single(40000),
            },
        ),
        ..rule("one-port", ProtocolSpec::Any, vpn(Initiation::Either))
    };
    rules.rules.insert(0, one_port);
    let mut t = FilterTable::new(RuleSet::default(), FilterOptions::default()).unwrap();
    t.install_policy(rules).unwrap();
    assert_eq!(name(&t, &narrowed.outbound).as_deref(), Some("web"));
    // Host to host, any protocol: covered by none, overlapping both.
    assert_eq!(name(&t, &hosts).as_deref(), Some("one-port"));
    // UDP from 500: only the permit rule "ike" has it; no anchor.
    let ike = TrafficSelector {
        protocol: Some(IpProtocol::Udp),
        src_ports: PortRange::single(500),
        ..hosts
    };
    assert_eq!(name(&t, &ike), None);
    assert_eq!(name(&table(), &narrowed.outbound).as_deref(), Some("web"));
}

/// A manual tunnel DVIPA <-> CLIENT (IpManVpnAction), anchoring a manual
/// SA pair of host selectors; `active` is its `Active Yes|No`.
fn manual_table(active: bool) -> (FilterTable, DynamicFilter) {
    let man = FilterAction::Manual(ManVpnAction {
        name: "client-tunnel".into(),
        active,
        local: DVIPA,
        remote: CLIENT,
    });
    let mut tunnel = rule("manual", ProtocolSpec::Any, man);
    tunnel.conditions.destination = AddrSpec::host(CLIENT);
    let rules = vec![
        tunnel,
        rule(
            "icmp",
            ProtocolSpec::Icmp {
                icmp_type: None,
                code: None,
            },
            FilterAction::Permit,
        ),
    ];
    let mut t = FilterTable::new(RuleSet::default(), FilterOptions::default()).unwrap();
    assert_eq!(t.install_policy(RuleSet::new(rules)), Ok(vec![]));
    let out = TrafficSelector::hosts(IpAddr::V4(DVIPA), IpAddr::V4(CLIENT));
    let inb = TrafficSelector::hosts(IpAddr::V4(CLIENT), IpAddr::V4(DVIPA));
    let anchor = t
        .anchor_for(&out, &inb)
        .expect("the manual rule anchors")
        .name
        .clone();
    assert_eq!(anchor, "manual");
    let f = DynamicFilter {
        anchor,
        sas: SaPair {
            inbound: sa(DVIPA, 0x5000_0011),
            outbound: sa(CLIENT, 0x5000_0012),
        },
        inbound: inb,
        outbound: out,
    };
    (t, f)
}

#[test]
fn manual_tunnel_anchors_its_sas_and_refuses_clear_text() {
    let (mut t, f) = manual_table(true);
    let a = f.sas.inbound;
    // Before the SAs: a reply is dropped, and no IKE is asked for.
    assert_eq!(
        reason(&t.evaluate(&reply(40000))),
        Some((DenyReason::NoManualSa, "manual"))
    );
    t.install_dynamic(f.clone()).unwrap();
    let rows = t.snapshot();
    assert_eq!(rows[0].filter_type, FilterType::Dynamic);
    assert_eq!(rows[2].action, "manual");
    assert_eq!(rows[2].vpn_action.as_deref(), Some("client-tunnel"));
    // Every protocol of the pair travels in it, ICMP included.
    assert!(
        matches!(t.evaluate(&reply(40000)), Verdict::Protect { sa, .. } if sa == f.sas.outbound)
    );
    assert!(t.evaluate(&request(40000).under(a)).passes());
    let ping = FilterPacket::icmp(IN, CLIENT, DVIPA, 8, 0);
    assert!(t.evaluate(&ping.under(a)).passes());
    // The client in clear: denied, even for the ICMP a later rule permits.
    assert_eq!(
        reason(&t.evaluate(&request(40000))),
        Some((DenyReason::ClearText, "manual"))
    );
    assert_eq!(
        reason(&t.evaluate(&ping)),
        Some((DenyReason::ClearText, "manual"))
    );
    // Another host's ping is not the tunnel's business.
    let other = FilterPacket::icmp(IN, Ipv4Addr::new(198, 18, 2, 2), DVIPA, 8, 0);
    assert!(matches!(t.evaluate(&other), Verdict::Permit { .. }));
    let count = |t: &FilterTable, r| t.denials().find(|(d, _)| *d == r).map(|(_, n)| n);
    assert_eq!(count(&t, DenyReason::ClearText), Some(2));
    assert_eq!(count(&t, DenyReason::NoManualSa), Some(1));
}

#[test]
fn inactive_manual_tunnel_drops_what_matches_it() {
    let (mut t, f) = manual_table(false);
    let a = f.sas.inbound;
    t.install_dynamic(f).unwrap();
    // IBM: packets matching the rule are dropped until it is activated,
    // through its SAs' dynamic filter or not.
    for p in [reply(40000), request(40000).under(a), request(40000)] {
        assert_eq!(
            reason(&t.evaluate(&p)),
            Some((DenyReason::ManualInactive, "manual"))
        );
    }
    let inactive = t.denials().find(|(d, _)| *d == DenyReason::ManualInactive);
    assert_eq!(inactive, Some((DenyReason::ManualInactive, 3)));
    // A policy with the tunnel active again keeps the SAs' filter and
    // lets them carry traffic.
    let (active, _) = manual_table(true);
    assert_eq!(t.install_policy(active.active_rules().clone()), Ok(vec![]));
    assert!(t.evaluate(&request(40000).under(a)).passes());
}
