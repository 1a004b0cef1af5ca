//! Unit tests of the Policy Agent parser: every statement, and every
//! located error with its line and column.

use super::super::error::line_col;
use super::super::test_support::{only_error, word_at};
use super::*;
use std::net::Ipv4Addr;

/// Parses `text` with lines counted in `text` itself.
fn parse(text: &str) -> (ParsedPolicy, Vec<RawError>) {
    super::parse(text, &|at| line_col(text, at).0)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

/// A small complete policy: one rule requiring IPsec, one permit, one
/// deny, and a key-exchange rule. Tests replace pieces of it.
const BASE: &str = "\
IpFilterRule web
{
  IpSourceAddr 198.18.0.100
  IpDestAddr 198.18.1.0/24
  IpService
  {
    Protocol Tcp
    SourcePortRange 80
    DestinationPortRange 1024 65535
    Direction Bidirectional InboundConnect
    Routing Local
  }
  IpGenericFilterActionRef ipsec
  IpDynVpnActionRef esp
}
IpFilterRule ike
{
  IpSourceAddr 198.18.0.100
  IpServiceRef ike
  IpGenericFilterActionRef permit
}
IpFilterRule rest
{
  IpServiceRef all
  IpGenericFilterActionRef deny
}
IpService ike
{
  Protocol udp
  SourcePortRange 500
}
IpService all
{
  Protocol All
}
IpGenericFilterAction ipsec
{
  IpFilterAction IpSec
}
IpGenericFilterAction permit
{
  IpFilterAction Permit
}
IpGenericFilterAction deny
{
  IpFilterAction Deny
  IpFilterLogging Yes
}
IpDynVpnAction esp
{
  Initiation Either
  IpDataOfferRef cbc
  IpDataOffer
  {
    HowToEncrypt AES_GCM_16 KeyLength 128
    HowToAuth ESP Null
  }
}
IpDataOffer cbc
{
  HowToEncap Tunnel
  HowToEncrypt AES_CBC KeyLength 128
  HowToAuth ESP HMAC_SHA1
  RefreshLifetimeProposed 60
  RefreshLifesizeProposed 1000
}
KeyExchangeRule clients
{
  LocalSecurityEndpoint
  {
    Identity IpAddr 198.18.0.100
    Location 198.18.0.100
  }
  RemoteSecurityEndpointRef net1
  KeyExchangeActionRef ikev2
  SharedKey Ascii plexnet-figure4
}
RemoteSecurityEndpoint net1
{
  Identity IpAddr 198.18.1.0/24
  Location 198.18.1.0/24
}
KeyExchangeAction ikev2
{
  HowToInitiate IKEv2
  HowToRespond Either
  HowToAuthMe PresharedKey
  KeyExchangeOfferRef ike1
}
KeyExchangeOffer ike1
{
  HowToEncrypt AES_CBC KeyLength 128
  HowToVerifyMsgs HMAC_SHA1_96
  PseudoRandomFunction HMAC_SHA1
  HowToAuthPeers PresharedKey
  DHGroup Group14
  RefreshLifetimeProposed 240
}
";

fn ok(text: &str) -> ParsedPolicy {
    let (p, e) = parse(text);
    assert!(e.is_empty(), "unexpected errors {e:?}");
    p
}

/// BASE with `from` replaced by `to`.
fn base_with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

/// The single error of `text`: the word it points at, its line and
/// column, and its message.
fn err(text: &str) -> (String, usize, usize, String) {
    let (at, kind) = only_error(parse(text).1);
    let (line, col) = line_col(text, at);
    (word_at(text, at), line, col, kind.to_string())
}

/// The error of BASE with `from` replaced by `to`, which must point at
/// the first word of `to` that is marked with `‸` (the mark is removed).
fn check(from: &str, to: &str, message: &str) {
    let mark = to.find('‸').expect("a mark");
    let text = base_with(from, &to.replacen('‸', "", 1));
    let at = BASE.find(from).expect("in BASE") + mark;
    let (_, line, col, m) = err(&text);
    assert_eq!(m, message);
    assert_eq!((line, col), line_col(&text, at), "position of: {message}");
}

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

#[test]
fn actions_and_offers() {
    check(
        "  IpFilterAction Deny\n",
        "  IpFilterAction ‸Reject\n",
        "IpFilterAction `Reject` is not known; allowed: Permit, Deny or IpSec",
    );
    check(
        "  IpFilterLogging Yes\n",
        "  IpFilterLogging ‸LogDeny\n",
        "IpFilterLogging LogDeny is not supported by plexnet; allowed: IpFilterLogging Yes or No",
    );
    check(
        "  IpFilterAction Permit\n",
        "  ‸IpFilterLogging No\n",
        "IpGenericFilterAction `permit` has no IpFilterAction; allowed: IpFilterAction Permit|Deny|IpSec",
    );
    check(
        "  Initiation Either\n",
        "  Initiation ‸Sometimes\n",
        "Initiation `Sometimes` is not known; allowed: LocalOnly, RemoteOnly or Either",
    );
    check(
        "  Initiation Either\n",
        "  ‸VpnLife 1440\n",
        "IpDynVpnAction VpnLife is not supported by plexnet; allowed: Initiation, InitiateWithPfs (or Pfs), HowToEncapIKEv2, IpDataOffer, IpDataOfferRef",
    );
    check(
        "  Initiation Either\n",
        "  InitiateWithPfs ‸Group5\n",
        "InitiateWithPfs Group5 is not implemented here; allowed: None, Group14, Group19, Group20",
    );
    check(
        "  Initiation Either\n",
        "  Pfs Group14\n  ‸InitiateWithPfs Group19\n",
        "InitiateWithPfs after Pfs (line 51); allowed: one of InitiateWithPfs and Pfs (its older spelling)",
    );
    check(
        "  HowToEncrypt AES_CBC KeyLength 128\n",
        "  HowToEncrypt ‸3DES\n",
        "HowToEncrypt 3DES is not implemented here; allowed: AES_CBC KeyLength 128|256, AES_GCM_16 KeyLength 128|256, AES, DoNot",
    );
    check(
        "  HowToEncrypt AES_CBC KeyLength 128\n",
        "  HowToEncrypt AES_CBC KeyLength ‸192\n",
        "KeyLength `192` is out of range; allowed: 128 or 256",
    );
    check(
        "  HowToEncrypt AES_CBC KeyLength 128\n",
        "  HowToEncrypt AES_CBC‸\n",
        "HowToEncrypt has no value; allowed: HowToEncrypt AES_CBC KeyLength 128|256, AES_GCM_16 KeyLength 128|256, AES or DoNot",
    );
    check(
        "  HowToAuth ESP HMAC_SHA1\n",
        "  HowToAuth ESP ‸HMAC_MD5\n",
        "HowToAuth HMAC_MD5 is not implemented here; allowed: HMAC_SHA1 (or HMAC_SHA), HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256, Null",
    );
    check(
        "    HowToAuth ESP Null\n",
        "    ‸HowToAuth ESP HMAC_SHA2_256_128\n",
        "AES_GCM_16 brings its own integrity, so a HowToAuth algorithm (HMAC_SHA1 when left out) cannot join it; allowed: HowToAuth ESP Null with AES_GCM_16",
    );
    check(
        "  HowToAuth ESP HMAC_SHA1\n",
        "  ‸HowToAuth AH HMAC_SHA1\n",
        "HowToAuth AH with ESP encryption (HowToEncrypt AES_CBC KeyLength 128 when left out) is an AH+ESP bundle, which plexnet's filter policy does not model; allowed: HowToAuth AH with HowToEncrypt DoNot, or HowToAuth ESP",
    );
    check(
        "  RefreshLifetimeProposed 60\n",
        "  RefreshLifetimeProposed ‸0\n",
        "RefreshLifetimeProposed `0` is out of range; allowed: 1 to 65535 minutes",
    );
    check(
        "  RefreshLifetimeProposed 60\n",
        "  ‸RefreshLifetimeAccepted 30 120\n",
        "IpDataOffer RefreshLifetimeAccepted is not supported by plexnet; allowed: HowToEncap, HowToEncrypt, HowToAuth, RefreshLifetimeProposed, RefreshLifesizeProposed",
    );
    check(
        "  IpDataOfferRef cbc\n",
        "  IpDataOfferRef ‸cbc3\n",
        "IpDataOfferRef `cbc3` names no IpDataOffer statement; allowed: the name of a IpDataOffer statement: cbc",
    );
    // AH alone, transport, HowToEncapIKEv2 over an offer that leaves
    // HowToEncap out.
    let text = base_with(
        "  HowToEncap Tunnel\n  HowToEncrypt AES_CBC KeyLength 128\n  HowToAuth ESP HMAC_SHA1\n",
        "  HowToEncrypt DoNot\n  HowToAuth AH HMAC_SHA2_256_128\n",
    )
    .replacen(
        "  Initiation Either\n",
        "  Initiation RemoteOnly\n  HowToEncapIKEv2 Transport\n  InitiateWithPfs Group19\n",
        1,
    );
    let p = ok(&text);
    let FilterAction::Ipsec(vpn) = &p.filter_rules[0].action else {
        panic!("not ipsec")
    };
    assert_eq!(
        (vpn.initiation, vpn.pfs_group),
        (Initiation::RemoteOnly, Some(19))
    );
    let o = &vpn.offers[0];
    assert_eq!(
        (o.protocol, o.mode, o.encryption, o.integrity),
        (
            Protocol::Ah,
            Mode::Transport,
            None,
            IntegAlg::HmacSha256_128
        )
    );
    assert!(p.filter_rules.iter().all(|r| r.validate().is_ok()));
    // HowToEncapIKEv2 against an offer's own HowToEncap.
    let text = base_with("  Initiation Either\n", "  HowToEncapIKEv2 Transport\n");
    let (w, _, _, m) = err(&text);
    assert_eq!(w, "HowToEncapIKEv2");
    assert!(m.starts_with("HowToEncapIKEv2 Transport but an IpDataOffer of this action says HowToEncap Tunnel (line 61)"), "{m}");
}

#[test]
fn key_exchange_forms_and_errors() {
    let text = base_with(
        "  HowToVerifyMsgs HMAC_SHA1_96\n  PseudoRandomFunction HMAC_SHA1\n",
        "  HowToAuthMsgs SHA2_256\n",
    )
    .replacen(
        "  HowToEncrypt AES_CBC KeyLength 128\n  HowToAuthMsgs",
        "  HowToEncrypt AES_CBC KeyLength 256\n  HowToAuthMsgs",
        1,
    )
    .replacen("DHGroup Group14", "DHGroup Group19", 1)
    .replacen(
        "SharedKey Ascii plexnet-figure4",
        "SharedKey Hex 0x706c65786e6574",
        1,
    );
    let p = ok(&text);
    let k = &p.key_exchange_rules[0];
    assert_eq!(
        k.action.offers[0].proposal,
        "aes256-sha256-prfsha256-ecp256"
    );
    assert!(k.action.offers[0].proposal_config().is_ok());
    assert_eq!(k.shared_key, b"plexnet");
    check(
        "  DHGroup Group14\n",
        "  DHGroup ‸Group2\n",
        "DHGroup Group2 is not implemented here; allowed: Group14, Group19, Group20",
    );
    check(
        "  DHGroup Group14\n  RefreshLifetimeProposed 240\n",
        "  ‸RefreshLifetimeProposed 240\n",
        "KeyExchangeOffer `ike1` has no DHGroup; allowed: DHGroup Group14, Group19 or Group20",
    );
    check(
        "  HowToAuthPeers PresharedKey\n",
        "  HowToAuthPeers ‸RsaSignature\n",
        "HowToAuthPeers RsaSignature is not implemented here; allowed: PresharedKey",
    );
    check(
        "  HowToVerifyMsgs HMAC_SHA1_96\n",
        "  HowToVerifyMsgs ‸AES128_XCBC_96\n",
        "HowToVerifyMsgs AES128_XCBC_96 is not implemented here; allowed: HMAC_SHA1_96, HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256",
    );
    check(
        "  HowToInitiate IKEv2\n",
        "  HowToInitiate ‸Main\n",
        "HowToInitiate Main is not implemented here; allowed: IKEv2 or DoNot (IKEv1 is not implemented here)",
    );
    check(
        "  HowToRespond Either\n",
        "  HowToRespond ‸Aggressive\n",
        "HowToRespond Aggressive is not implemented here; allowed: Either (IKEv1 is not implemented here; plexnet answers IKEv2)",
    );
    check(
        "  HowToRespond Either\n",
        "  ‸AllowNat Yes\n",
        "KeyExchangeAction AllowNat is not supported by plexnet; allowed: HowToInitiate, HowToRespond, HowToRespondIKEv1, HowToAuthMe, KeyExchangeOffer, KeyExchangeOfferRef",
    );
    check(
        "  HowToAuthMe PresharedKey\n  KeyExchangeOfferRef ike1\n",
        "  ‸KeyExchangeOfferRef ike1\n",
        "KeyExchangeAction `ikev2` has no HowToAuthMe; allowed: HowToAuthMe PresharedKey (IBM's default, DigitalSignature, is not implemented here)",
    );
    check(
        "  SharedKey Ascii plexnet-figure4\n",
        "  SharedKey ‸Ebcdic plexnet\n",
        "SharedKey Ebcdic is not supported by plexnet; allowed: SharedKey Ascii key or SharedKey Hex digits (the peers here are Linux hosts, which use the key's bytes as typed)",
    );
    check(
        "  SharedKey Ascii plexnet-figure4\n",
        "  SharedKey Hex ‸abc\n",
        "`SharedKey Hex` is not hex; allowed: an even number of hex digits, optionally after 0x",
    );
    check(
        "  KeyExchangeActionRef ikev2\n  SharedKey Ascii plexnet-figure4\n",
        "  ‸KeyExchangeActionRef ikev2\n",
        "KeyExchangeRule `clients` has no SharedKey; allowed: SharedKey Ascii key or SharedKey Hex digits (peers authenticate with pre-shared keys here)",
    );
    check(
        "  RemoteSecurityEndpointRef net1\n",
        "  RemoteSecurityEndpointRef ‸net2\n",
        "RemoteSecurityEndpointRef `net2` names no RemoteSecurityEndpoint statement; allowed: the name of a RemoteSecurityEndpoint statement: net1",
    );
    check(
        "  KeyExchangeActionRef ikev2\n",
        "  KeyExchangeActionRef ‸ike1\n",
        "KeyExchangeActionRef `ike1` is a KeyExchangeOffer, not a KeyExchangeAction; allowed: the name of a KeyExchangeAction statement",
    );
    check(
        "    Identity IpAddr 198.18.0.100\n",
        "    Identity ‸Fqdn mvs1.example\n",
        "Identity type Fqdn is not implemented here; allowed: IpAddr (IKE identities are IP addresses here, ID_IPV4_ADDR)",
    );
    check(
        "    Identity IpAddr 198.18.0.100\n",
        "    Identity IpAddr ‸198.18.0.0/24\n",
        "`198.18.0.0/24` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)",
    );
    check(
        "  Location 198.18.1.0/24\n",
        "  Location ‸Any6\n",
        "Location Any6 is not supported by plexnet; allowed: IPv4 only: a.b.c.d, a.b.c.d/len, a.b.c.d-a.b.c.d, Any or Any4",
    );
}

#[test]
fn statement_level_errors() {
    let (w, line, col, m) = err(&format!("{BASE}IpFilterGroup g\n{{\n}}\n"));
    assert_eq!((w.as_str(), line, col), ("IpFilterGroup", 99, 1));
    assert_eq!(
        m,
        format!("IpFilterGroup is not supported by plexnet; allowed: {STATEMENTS_ALLOWED}")
    );
    let (w, _, _, m) = err(&format!("{BASE}IpFilterRules x\n{{\n}}\n"));
    assert_eq!(w, "IpFilterRules");
    assert!(
        m.starts_with("unknown statement `IpFilterRules`; allowed: IpFilterPolicy, IpFilterRule,"),
        "{m}"
    );
    let (w, line, _, m) = err(&format!("{BASE}IpService ike\n{{\n}}\n"));
    assert_eq!((w.as_str(), line), ("ike", 99));
    assert_eq!(
        m,
        "IpService `ike` is defined twice (first at line 27); allowed: one IpService per name"
    );
    let (w, _, _, m) = err(&format!("{BASE}IpService\n{{\n}}\n"));
    assert_eq!(w, "");
    assert!(
        m.starts_with("IpService has no name; allowed: a name after the statement keyword"),
        "{m}"
    );
    let (w, _, _, m) = err(&format!("{BASE}IpService -x\n{{\n}}\n"));
    assert_eq!(w, "-x");
    assert!(m.starts_with("`-x` is not a statement name"), "{m}");
    let (w, _, _, m) = err(&format!("{BASE}IpService x\n"));
    assert_eq!(w, "IpService");
    assert!(m.starts_with("`IpService` has no `{ ... }` block"), "{m}");
    let (w, line, col, m) = err(&format!("{BASE}IpGenericFilterAction empty\n{{\n}}\n"));
    assert_eq!((w.as_str(), line, col), ("IpGenericFilterAction", 99, 1));
    assert!(
        m.starts_with("IpGenericFilterAction `empty` has no IpFilterAction"),
        "{m}"
    );
    let text = base_with("  IpDataOffer\n  {\n    HowToEncrypt AES_GCM_16 KeyLength 128\n    HowToAuth ESP Null\n  }\n", "  IpDataOffer\n  {\n  }\n");
    ok(&text);
    // Same name, different kinds: fine.
    ok(&format!("{BASE}IpDataOffer ike\n{{\n}}\n"));
    // An unused statement is checked all the same.
    let (w, _, _, _) = err(&format!(
        "{BASE}IpDataOffer unused\n{{\n  HowToEncap Sideways\n}}\n"
    ));
    assert_eq!(w, "Sideways");
    let (w, line, col, m) = err("# nothing but comments\n");
    assert_eq!((w.as_str(), line, col), ("#", 1, 1));
    assert!(m.starts_with("the IPSec policy has no IpFilterRule"), "{m}");
}

#[test]
fn errors_are_collected_and_do_not_cascade() {
    // A bad IpService: the rule that uses it reports nothing more.
    let text = base_with("  Protocol udp\n", "  Protocol xtp\n").replacen(
        "  IpFilterAction Permit\n",
        "  IpFilterAction Allow\n",
        1,
    );
    let (p, e) = parse(&text);
    assert_eq!(e.len(), 2, "{e:?}");
    let names: Vec<&str> = p.filter_rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["web", "rest"]);
}

#[test]
fn key_exchange_policy_references_and_kinds() {
    let text = format!(
        "KeyExchangePolicy\n{{\n  KeyExchangeRuleRef clients\n  KeyExchangeRuleRef clients\n}}\n{BASE}"
    );
    assert_eq!(
        err(&text),
        (
            "clients".to_owned(),
            4,
            22,
            "KeyExchangeRuleRef of one rule is given twice in KeyExchangePolicy (first at line 3); allowed: KeyExchangeRuleRef of one rule once".to_owned()
        )
    );
    let text = format!("KeyExchangePolicy\n{{\n  KeyExchangeRuleRef ike1\n}}\n{BASE}");
    assert_eq!(
        err(&text),
        (
            "ike1".to_owned(),
            3,
            22,
            "KeyExchangeRuleRef `ike1` is a KeyExchangeOffer, not a KeyExchangeRule; allowed: the name of a KeyExchangeRule statement".to_owned()
        )
    );
    let text = format!("KeyExchangePolicy\n{{\n  KeyExchangeRuleRef nobody\n}}\n{BASE}");
    assert_eq!(
        err(&text),
        (
            "nobody".to_owned(),
            3,
            22,
            "KeyExchangeRuleRef `nobody` names no KeyExchangeRule statement; allowed: the name of a KeyExchangeRule statement: clients".to_owned()
        )
    );
    assert_eq!(
        err(&base_with("IpServiceRef all", "IpServiceRef deny")),
        (
            "deny".to_owned(),
            24,
            16,
            "IpServiceRef `deny` is a IpGenericFilterAction, not a IpService; allowed: the name of a IpService statement".to_owned()
        )
    );
    let (w, _, _, m) = err(&format!(
        "IpFilterPolicy\n{{\n  IpFilterRuleRef esp\n}}\n{BASE}"
    ));
    assert_eq!(w, "esp");
    assert_eq!(m, "IpFilterRuleRef `esp` is a IpDynVpnAction, not a IpFilterRule; allowed: the name of a IpFilterRule statement");
}

/// BASE with a manual tunnel: rule `ike` becomes an IpSec rule with an
/// IpManVpnActionRef, and the IpManVpnAction is `action`.
fn manual(action: &str) -> String {
    let rule = base_with(
        "  IpServiceRef ike\n  IpGenericFilterActionRef permit\n",
        "  IpServiceRef ike\n  IpGenericFilterActionRef ipsec\n  IpManVpnActionRef man\n",
    );
    format!("{rule}{action}")
}

const MAN: &str = "\
IpManVpnAction man
{
  Active No
  LocalSecurityEndpointAddr 198.18.0.100
  RemoteSecurityEndpointAddr 198.18.1.2
}
";

/// The single error of `manual(action)`, which must point at the word
/// after `‸` in `action` (the mark is removed).
fn check_manual(action: &str, message: &str) {
    let text = manual(&action.replacen('‸', "", 1));
    let at = text.len() - action.len() + 3 + action.find('‸').expect("a mark");
    let (_, line, col, m) = err(&text);
    assert_eq!(m, message);
    assert_eq!((line, col), line_col(&text, at), "position of: {message}");
}

#[test]
fn ip_man_vpn_action_resolves_on_its_rule() {
    let p = ok(&manual(MAN));
    let rule = p
        .filter_rules
        .iter()
        .find(|r| r.name == "ike")
        .expect("ike");
    assert_eq!(
        rule.action,
        FilterAction::Manual(ManVpnAction {
            name: "man".into(),
            active: false,
            local: ip("198.18.0.100"),
            remote: ip("198.18.1.2"),
        })
    );
    // Active defaults to Yes; keywords are case-insensitive.
    let p = ok(&manual(
        &MAN.replace("  Active No\n", "")
            .replace("LocalSecurityEndpointAddr", "localsecurityendpointaddr"),
    ));
    let rule = p
        .filter_rules
        .iter()
        .find(|r| r.name == "ike")
        .expect("ike");
    assert!(matches!(&rule.action, FilterAction::Manual(m) if m.active));
}

#[test]
fn ip_man_vpn_action_errors() {
    const KEYWORDS: &str = "Active, LocalSecurityEndpointAddr, RemoteSecurityEndpointAddr";
    check_manual(
        &MAN.replace("  Active No\n", "  ‸PassthroughDF No\n"),
        &format!("IpManVpnAction PassthroughDF is not supported by plexnet; allowed: {KEYWORDS}"),
    );
    check_manual(
        &MAN.replace("  Active No\n", "  ‸IpDataOfferRef keys\n"),
        &format!("IpManVpnAction IpDataOfferRef is not supported by plexnet; allowed: {KEYWORDS}"),
    );
    check_manual(
        &MAN.replace("  Active No\n", "  ‸Actve No\n"),
        &format!("unknown keyword `Actve` in IpManVpnAction; allowed here: {KEYWORDS}"),
    );
    check_manual(
        &MAN.replace("Active No", "Active ‸Maybe"),
        "Active `Maybe` is not known; allowed: Yes or No",
    );
    check_manual(
        &MAN.replace("RemoteSecurityEndpointAddr 198.18.1.2", "RemoteSecurityEndpointAddr ‸Any4"),
        "RemoteSecurityEndpointAddr Any4 is not supported by plexnet; allowed: one IPv4 address a.b.c.d (a manual SA has one client and one DVIPA)",
    );
    check_manual(
        &MAN.replace("  RemoteSecurityEndpointAddr 198.18.1.2\n", "")
            .replace("  ‸", "  ")
            .replace("  LocalSecurityEndpointAddr", "  ‸LocalSecurityEndpointAddr"),
        "IpManVpnAction `man` has no RemoteSecurityEndpointAddr; allowed: LocalSecurityEndpointAddr a.b.c.d and RemoteSecurityEndpointAddr a.b.c.d: the DVIPA and the client",
    );
}

#[test]
fn ip_man_vpn_action_ref_combinations() {
    const ALLOWED: &str = "allowed: IpFilterAction Permit or Deny alone; IpFilterAction IpSec with exactly one of IpDynVpnActionRef and IpManVpnActionRef";
    let text = format!(
        "{}{MAN}",
        base_with(
            "  IpDynVpnActionRef esp\n",
            "  IpDynVpnActionRef esp\n  IpManVpnActionRef man\n"
        )
    );
    let (w, line, col, m) = err(&text);
    assert_eq!((w.as_str(), line, col), ("man", 15, 21));
    assert_eq!(
        m,
        format!("IpFilterRule web: both IpDynVpnActionRef and IpManVpnActionRef; {ALLOWED}")
    );
    let text = format!(
        "{}{MAN}",
        base_with(
            "  IpServiceRef all\n  IpGenericFilterActionRef deny\n",
            "  IpServiceRef all\n  IpGenericFilterActionRef deny\n  IpManVpnActionRef man\n"
        )
    );
    let (w, _, _, m) = err(&text);
    assert_eq!(w, "man");
    assert_eq!(
        m,
        format!("IpFilterRule rest: IpManVpnActionRef with IpGenericFilterAction deny, which does not say IpSec; {ALLOWED}")
    );
    let (w, _, _, m) = err(&manual(""));
    assert_eq!(w, "man");
    assert_eq!(
        m,
        "IpManVpnActionRef `man` names no IpManVpnAction statement; allowed: the name of a IpManVpnAction statement (this policy defines none)"
    );
}
