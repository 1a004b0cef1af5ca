//! The filter statements: the base policy, IpFilterPolicy, IpService,
//! IpFilterRule.

use super::*;

#[test]
fn base_resolves() {
    let p = ok(BASE);
    let names: Vec<&str> = p.filter_rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["web", "ike", "rest"]);
    let web = &p.filter_rules[0];
    assert_eq!(web.conditions.source, AddrSpec::host(ip("198.18.0.100")));
    assert_eq!(
        web.conditions.destination,
        AddrSpec::Prefix {
            addr: ip("198.18.1.0"),
            len: 24
        }
    );
    assert_eq!(
        web.conditions.protocol,
        ProtocolSpec::Tcp {
            src: PortSpec::single(80),
            dst: PortSpec::Range {
                first: 1024,
                last: 65535
            }
        }
    );
    assert_eq!(web.conditions.connect, Some(TcpConnect::Inbound));
    let FilterAction::Ipsec(vpn) = &web.action else {
        panic!("not ipsec: {:?}", web.action)
    };
    assert_eq!(vpn.name, "esp");
    assert_eq!(vpn.initiation, Initiation::Either);
    assert_eq!(vpn.pfs_group, None);
    assert_eq!(
        vpn.offers,
        [
            DataOffer {
                protocol: Protocol::Esp,
                mode: Mode::Tunnel,
                encryption: Some(EncAlg::AesCbc128),
                integrity: IntegAlg::HmacSha1_96,
                lifetime_secs: 3600,
                lifesize_bytes: Some(1_024_000),
            },
            DataOffer {
                protocol: Protocol::Esp,
                mode: Mode::Tunnel,
                encryption: Some(EncAlg::AesGcm16_128),
                integrity: IntegAlg::None,
                lifetime_secs: 240 * 60,
                lifesize_bytes: None,
            }
        ]
    );
}

#[test]
fn base_resolves_permit_deny_and_key_exchange() {
    let p = ok(BASE);
    let ike = &p.filter_rules[1];
    assert_eq!(ike.action, FilterAction::Permit);
    assert_eq!(ike.conditions.destination, AddrSpec::Any);
    assert_eq!(
        ike.conditions.protocol,
        ProtocolSpec::Udp {
            src: PortSpec::single(500),
            dst: PortSpec::Any
        }
    );
    let rest = &p.filter_rules[2];
    assert_eq!(
        (rest.action.clone(), rest.log, rest.conditions.protocol),
        (FilterAction::Deny, true, ProtocolSpec::Any)
    );
    assert!(p.filter_rules.iter().all(|r| r.validate().is_ok()));

    assert_eq!(p.key_exchange_rules.len(), 1);
    let k = &p.key_exchange_rules[0];
    assert_eq!(k.name, "clients");
    assert_eq!(k.local.name, None);
    assert_eq!(k.local.identity, AddrSpec::host(ip("198.18.0.100")));
    assert_eq!(k.remote.name.as_deref(), Some("net1"));
    assert_eq!(k.shared_key, b"plexnet-figure4");
    assert!(k.action.initiate);
    assert_eq!(k.action.offers.len(), 1);
    let o = &k.action.offers[0];
    assert_eq!(o.proposal, "aes128-sha1-prfsha1-modp2048");
    assert_eq!(o.lifetime_secs, 240 * 60);
    let pc = o.proposal_config().expect("an implemented proposal");
    assert_eq!(pc.dh, [plexnet_core::ike::dh::DhGroup::Modp2048]);
    assert!(!format!("{k:?}").contains("plexnet-figure4"));
}

#[test]
fn filter_policy_orders_and_selects() {
    let text =
        format!("IpFilterPolicy\n{{\n  IpFilterRuleRef rest\n  IpFilterRuleRef web\n}}\n{BASE}");
    let p = ok(&text);
    let names: Vec<&str> = p.filter_rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["rest", "web"]);
    let text = format!("KeyExchangePolicy\n{{\n}}\n{BASE}");
    assert!(ok(&text).key_exchange_rules.is_empty());
    let (w, line, col, m) = err(&format!(
        "IpFilterPolicy\n{{\n  IpFilterRuleRef webb\n}}\n{BASE}"
    ));
    assert_eq!((w.as_str(), line, col), ("webb", 3, 19));
    assert_eq!(m, "IpFilterRuleRef `webb` names no IpFilterRule statement; allowed: the name of a IpFilterRule statement: web, ike, rest");
    let (w, line, _, m) = err(&format!(
        "IpFilterPolicy\n{{\n  IpFilterRuleRef web\n  IpFilterRuleRef web\n}}\n{BASE}"
    ));
    assert_eq!((w.as_str(), line), ("web", 4));
    assert!(m.contains("first at line 3"), "{m}");
    let (w, _, _, m) = err(&format!(
        "IpFilterPolicy\n{{\n  FilterLogging On\n}}\n{BASE}"
    ));
    assert_eq!(w, "FilterLogging");
    assert!(
        m.starts_with("IpFilterPolicy FilterLogging is not supported by plexnet"),
        "{m}"
    );
    let (w, line, _, m) = err(&format!(
        "IpFilterPolicy\n{{\n}}\nIpFilterPolicy\n{{\n}}\n{BASE}"
    ));
    assert_eq!((w.as_str(), line), ("IpFilterPolicy", 4));
    assert!(m.contains("defined twice (first at line 1)"), "{m}");
}

#[test]
fn ip_service_forms() {
    let svc = |body: &str| {
        let text = base_with("  Protocol udp\n  SourcePortRange 500\n", body);
        let p = ok(&text);
        p.filter_rules[1].conditions
    };
    let c = svc("  Protocol 17\n  DestinationPortRange 4500-4501\n  Direction Inbound\n  Routing Either\n  SecurityClass 9\n");
    assert_eq!(
        c.protocol,
        ProtocolSpec::Udp {
            src: PortSpec::Any,
            dst: PortSpec::Range {
                first: 4500,
                last: 4501
            }
        }
    );
    assert_eq!(
        (c.direction, c.routing, c.security_class),
        (Direction::Inbound, Routing::Either, 9)
    );
    let c = svc(
        "  protocol TCP\n  sourceportrange 1024:2048\n  direction bidirectional outboundconnect\n",
    );
    assert_eq!(
        c.protocol,
        ProtocolSpec::Tcp {
            src: PortSpec::Range {
                first: 1024,
                last: 2048
            },
            dst: PortSpec::Any
        }
    );
    assert_eq!(c.connect, Some(TcpConnect::Outbound));
    let c = svc("  Protocol Icmp\n  IcmpType 8\n  IcmpCode 0\n");
    assert_eq!(
        c.protocol,
        ProtocolSpec::Icmp {
            icmp_type: Some(8),
            code: Some(0)
        }
    );
    let c = svc("  Protocol Ospf\n  OspfType 1\n");
    assert_eq!(c.protocol, ProtocolSpec::Ospf { ospf_type: Some(1) });
    let c = svc("  Protocol Esp\n");
    assert_eq!(c.protocol, ProtocolSpec::Number(50));
    let c = svc("  Protocol 47\n  Routing Routed\n");
    assert_eq!(
        (c.protocol, c.routing),
        (ProtocolSpec::Number(47), Routing::Routed)
    );
    let c = svc("");
    assert_eq!(
        c,
        Conditions {
            source: c.source,
            destination: c.destination,
            ..Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Any)
        }
    );
}

#[test]
fn ip_service_errors() {
    check(
        "  Protocol udp\n",
        "  Protocol ‸Sctp\n",
        "Protocol `Sctp` is not known; allowed: All, Tcp, Udp, Icmp, Ospf, Igmp, Ip, Ipip, Ah, Esp, or a number 0 to 255",
    );
    check(
        "  Protocol udp\n",
        "  Protocol ‸Icmpv6\n",
        "Protocol Icmpv6 is not supported by plexnet; allowed: IPv4 protocols: All, Tcp, Udp, Icmp, Ospf, Igmp, Ip, Ipip, Ah, Esp, or a number",
    );
    check(
        "  SourcePortRange 500\n",
        "  SourcePortRange ‸70000\n",
        "port `70000` is out of range; allowed: 0 (every port) or 1 to 65535, a range's last port at or above its first",
    );
    check(
        "  SourcePortRange 500\n",
        "  SourcePortRange 500 ‸400\n",
        "last port `400` is out of range; allowed: 0 (every port) or 1 to 65535, a range's last port at or above its first",
    );
    check(
        "  Protocol udp\n  SourcePortRange 500\n",
        "  Protocol Icmp\n  ‸SourcePortRange 500\n",
        "port ranges without a protocol that has them; allowed: SourcePortRange and DestinationPortRange with Protocol Tcp or Udp",
    );
    check(
        "  Protocol udp\n  SourcePortRange 500\n",
        "  Protocol Icmp\n  ‸IcmpCode 3\n",
        "IcmpCode without IcmpType; allowed: IcmpType n, then IcmpCode n (a code belongs to one ICMP type)",
    );
    check(
        "    Direction Bidirectional InboundConnect\n",
        "    Direction Inbound ‸InboundConnect\n",
        "`InboundConnect` after the value of Direction; allowed: Direction Bidirectional [InboundConnect|OutboundConnect], Inbound or Outbound, one attribute per line",
    );
    check(
        "    Routing Local\n",
        "    Routing ‸Anywhere\n",
        "Routing `Anywhere` is not known; allowed: Local, Routed or Either",
    );
    check(
        "    Routing Local\n",
        "    SecurityClass ‸256\n",
        "SecurityClass `256` is out of range; allowed: 0 (every interface) or a security class 1 to 255",
    );
    check(
        "    Routing Local\n",
        "    Routing‸\n",
        "Routing has no value; allowed: Routing Local|Routed|Either",
    );
    check(
        "    Routing Local\n",
        "    Routing Local\n    ‸Routing Either\n",
        "Routing is given twice in IpService (first at line 11); allowed: Routing once",
    );
    check(
        "    Routing Local\n",
        "    ‸SourcePortGranularity Rule\n",
        "IpService SourcePortGranularity is not supported by plexnet; allowed: Protocol, SourcePortRange, DestinationPortRange, IcmpType, IcmpCode, OspfType, Direction, Routing, SecurityClass",
    );
    check(
        "    Routing Local\n",
        "    ‸Ports 80\n",
        "unknown keyword `Ports` in IpService; allowed here: Protocol, SourcePortRange, DestinationPortRange, IcmpType, IcmpCode, OspfType, Direction, Routing, SecurityClass",
    );
}

#[test]
fn filter_rule_errors() {
    check(
        "  IpDestAddr 198.18.1.0/24\n",
        "  IpDestAddr ‸198.18.1.0/40\n",
        "`198.18.1.0/40` is not an address specification; allowed: * (every address), a.b.c.d, a.b.c.d/len (len 0 to 32), or a.b.c.d-a.b.c.d (first not above last)",
    );
    check(
        "  IpDestAddr 198.18.1.0/24\n",
        "  IpDestAddr ‸All6\n",
        "IpDestAddr All6 is not supported by plexnet; allowed: IPv4 only: All, All4, a.b.c.d, a.b.c.d/len or a.b.c.d-a.b.c.d",
    );
    check(
        "  IpDestAddr 198.18.1.0/24\n",
        "  ‸IpDestAddrSetRef clients\n",
        "IpFilterRule IpDestAddrSetRef is not supported by plexnet; allowed: IpSourceAddr, IpDestAddr, IpService or IpServiceRef, IpGenericFilterActionRef, IpDynVpnActionRef, IpManVpnActionRef",
    );
    check(
        "  IpServiceRef ike\n",
        "  IpServiceRef ‸ikev2\n",
        "IpServiceRef `ikev2` is a KeyExchangeAction, not a IpService; allowed: the name of a IpService statement",
    );
    check(
        "  IpServiceRef ike\n",
        "  IpServiceRef ‸web\n",
        "IpServiceRef `web` is a IpFilterRule, not a IpService; allowed: the name of a IpService statement",
    );
    check(
        "  IpServiceRef ike\n",
        "  IpServiceRef ‸nfs\n",
        "IpServiceRef `nfs` names no IpService statement; allowed: the name of a IpService statement: ike, all",
    );
    check(
        "  IpServiceRef ike\n  IpGenericFilterActionRef permit\n",
        "  IpServiceRef ike\n  ‸IpServiceRef all\n  IpGenericFilterActionRef permit\n",
        "IpServiceRef is given twice in IpFilterRule (first at line 19); allowed: IpServiceRef once",
    );
    check(
        "  IpGenericFilterActionRef ipsec\n",
        "  ‸IpServiceRef ike\n  IpGenericFilterActionRef ipsec\n",
        "IpService is given twice in IpFilterRule (first at line 5); allowed: IpService once",
    );
    check(
        "  IpServiceRef all\n  IpGenericFilterActionRef deny\n",
        "  ‸IpGenericFilterActionRef deny\n",
        "IpFilterRule `rest` has no IpService; allowed: IpService { ... } or IpServiceRef name",
    );
    check(
        "  IpServiceRef all\n  IpGenericFilterActionRef deny\n",
        "  ‸IpServiceRef all\n",
        "IpFilterRule `rest` has no IpGenericFilterActionRef; allowed: IpGenericFilterActionRef name (an IpGenericFilterAction with IpFilterAction Permit, Deny or IpSec)",
    );
    check(
        "  IpGenericFilterActionRef ipsec\n  IpDynVpnActionRef esp\n",
        "  IpGenericFilterActionRef ‸ipsec\n",
        "IpFilterRule web: IpGenericFilterAction ipsec says IpSec but the rule has neither IpDynVpnActionRef nor IpManVpnActionRef; allowed: IpFilterAction Permit or Deny alone; IpFilterAction IpSec with exactly one of IpDynVpnActionRef and IpManVpnActionRef",
    );
    check(
        "  IpGenericFilterActionRef permit\n",
        "  IpGenericFilterActionRef permit\n  IpDynVpnActionRef ‸esp\n",
        "IpFilterRule ike: IpDynVpnActionRef with IpGenericFilterAction permit, which does not say IpSec; allowed: IpFilterAction Permit or Deny alone; IpFilterAction IpSec with exactly one of IpDynVpnActionRef and IpManVpnActionRef",
    );
    check(
        "  IpDynVpnActionRef esp\n",
        "  IpDynVpnActionRef ‸aes\n",
        "IpDynVpnActionRef `aes` names no IpDynVpnAction statement; allowed: the name of a IpDynVpnAction statement: esp",
    );
    check(
        "  IpServiceRef ike\n",
        "  ‸IpService ike\n",
        "IpService here needs a `{ ... }` block; allowed: an inline block, or the ...Ref attribute that names a statement defined elsewhere",
    );
}
