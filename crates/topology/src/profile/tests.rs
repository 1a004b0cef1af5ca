//! The profile parser's tests: IPCONFIG, the IPSEC block and IPSECRULE.

use super::super::test_support::the_error;
use super::*;
use std::net::Ipv4Addr;

/// Parses `text` with lines counted in `text` itself.
fn parse(text: &str) -> (RawProfile, Vec<RawError>) {
    super::parse(text, &|at| super::super::error::line_col(text, at).0)
}

/// Parses `text`, failing on errors.
fn ok(text: &str) -> RawProfile {
    let (p, e) = parse(text);
    assert!(e.is_empty(), "unexpected errors {e:?}");
    p
}

/// The rules of `IPCONFIG IPSECURITY IPSEC <body> ENDIPSEC`.
fn rules(body: &str) -> Vec<FilterRule> {
    let p = ok(&format!("IPCONFIG IPSECURITY\nIPSEC\n{body}\nENDIPSEC\n"));
    p.ipsec.expect("an IPSEC block").rules
}

/// The single error of `text`, with the word it points at.
fn err(text: &str) -> (String, ErrorKind) {
    the_error(text, parse(text).1)
}

fn rule_err(body: &str) -> (String, ErrorKind) {
    err(&format!("IPCONFIG IPSECURITY\nIPSEC\n{body}\nENDIPSEC\n"))
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn host(s: &str) -> AddrSpec {
    AddrSpec::host(ip(s))
}

#[test]
fn ipconfig_and_empty_block() {
    let p = ok("IPCONFIG IPSECURITY\n");
    assert!(p.ipsecurity && p.ipsec.is_none());
    let p = ok("ipconfig ipsecurity ; filter everything\nIPSEC DVIPSEC\nENDIPSEC");
    let b = p.ipsec.expect("block");
    assert!(b.dvipsec && !b.dvlocalfltr && !b.log_enable && !b.log_implicit);
    assert!(b.rules.is_empty());
    let p = ok("IPCONFIG IPSECURITY\nIPSEC DVIP DVLOCALFLTR LOGEN LOGI\nENDIPSEC");
    let b = p.ipsec.expect("block");
    assert!(b.dvipsec && b.dvlocalfltr && b.log_enable && b.log_implicit);
    let p = ok("IPCONFIG IPSECURITY\nIPSEC LOGDISABLE NOLOGIMPLICIT\nENDIPSEC");
    let b = p.ipsec.expect("block");
    assert!(!b.log_enable && !b.log_implicit);
    let p = ok("");
    assert_eq!(p, RawProfile::default());
}

#[test]
fn rule_defaults_and_names() {
    let r = rules("IPSECRULE * *\nIPSECR 198.18.1.0/24 198.18.0.100");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].name, "SYSDEFAULTRULE.1");
    assert_eq!(r[1].name, "SYSDEFAULTRULE.2");
    assert_eq!(
        r[0].conditions,
        Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Any)
    );
    assert_eq!(r[0].action, FilterAction::Permit);
    assert!(!r[0].log);
    assert_eq!(
        r[1].conditions.source,
        AddrSpec::Prefix {
            addr: ip("198.18.1.0"),
            len: 24
        }
    );
    assert_eq!(r[1].conditions.destination, host("198.18.0.100"));
}

#[test]
fn rule_address_forms() {
    let r = rules(
        "IPSECRULE 198.18.1.2-198.18.1.9 198.18.0.100 ; dash inside\n\
         IPSECRULE 198.18.1.2 - 198.18.1.9 * ; dash alone, as IBM draws it",
    );
    let range = AddrSpec::Range {
        first: ip("198.18.1.2"),
        last: ip("198.18.1.9"),
    };
    assert_eq!(r[0].conditions.source, range);
    assert_eq!(r[1].conditions.source, range);
    assert_eq!(r[1].conditions.destination, AddrSpec::Any);
}

#[test]
fn rule_full_form_with_abbreviations() {
    let r = rules(
        "IPSECRULE * 198.18.0.100 LOG PROTOCOL TCP SRCPORT 1024 65535 DESTPORT 80\n\
         ROUTING EITHER SECCLASS 7 DIRECTION BIDIRECTIONAL INBCONNECT\n\
         ipsecr * * log proto 17 srcp * destp 500 routing routed direc inb\n\
         IPSECRULE * * PROTOcol ICMP TYPE 8 CODE 0 DIRECtion OUTBound\n\
         IPSECRULE * * PROTOCOL OSPF TYPE 1 DIRECTION BIDI OUTBC\n\
         IPSECRULE * * PROTOCOL 50\n\
         IPSECRULE * * PROTOCOL 6",
    );
    let c = &r[0].conditions;
    assert!(r[0].log);
    assert_eq!(
        c.protocol,
        ProtocolSpec::Tcp {
            src: PortSpec::Range {
                first: 1024,
                last: 65535
            },
            dst: PortSpec::single(80)
        }
    );
    assert_eq!(
        (c.routing, c.security_class, c.direction, c.connect),
        (
            Routing::Either,
            7,
            Direction::Bidirectional,
            Some(TcpConnect::Inbound)
        )
    );
    let c = &r[1].conditions;
    assert_eq!(
        c.protocol,
        ProtocolSpec::Udp {
            src: PortSpec::Any,
            dst: PortSpec::single(500)
        }
    );
    assert_eq!(
        (c.routing, c.direction),
        (Routing::Routed, Direction::Inbound)
    );
    assert_eq!(
        r[2].conditions.protocol,
        ProtocolSpec::Icmp {
            icmp_type: Some(8),
            code: Some(0)
        }
    );
    assert_eq!(r[2].conditions.direction, Direction::Outbound);
    assert_eq!(
        r[3].conditions.protocol,
        ProtocolSpec::Ospf { ospf_type: Some(1) }
    );
    assert_eq!(r[3].conditions.connect, Some(TcpConnect::Outbound));
    assert_eq!(r[4].conditions.protocol, ProtocolSpec::Number(50));
    assert_eq!(
        r[5].conditions.protocol,
        ProtocolSpec::Tcp {
            src: PortSpec::Any,
            dst: PortSpec::Any
        }
    );
    assert!(r.iter().all(|r| r.validate().is_ok()));
}

#[test]
fn ipsec_without_ipsecurity_is_refused() {
    let (w, k) = err("IPSEC\nIPSECRULE * *\nENDIPSEC");
    assert_eq!(w, "IPSEC");
    assert_eq!(k, ErrorKind::IpsecWithoutIpsecurity);
    assert!(k.to_string().contains("z/OS ignores the IPSEC statement"));
}

#[test]
fn second_block_is_refused() {
    let text = "IPCONFIG IPSECURITY\nIPSEC\nENDIPSEC\nIPSEC\nIPSECRULE * *\nENDIPSEC";
    let (w, k) = err(text);
    assert_eq!(w, "IPSEC");
    assert_eq!(k, ErrorKind::SecondIpsecBlock { first_line: 2 });
    let (_, e) = parse(text);
    assert_eq!(e[0].0, text.find("\nIPSEC\nIPSECRULE").expect("second") + 1);
    assert!(k.to_string().contains("EZZ0757I"));
}

#[test]
fn block_structure_errors() {
    let (w, k) = err("IPCONFIG IPSECURITY\nIPSEC\nIPSECRULE * *\n");
    assert_eq!(w, "IPSEC");
    assert_eq!(k, ErrorKind::UnclosedIpsecBlock);
    let (w, k) = err("IPCONFIG IPSECURITY\nIPSECRULE * *\n");
    assert_eq!(w, "IPSECRULE");
    assert_eq!(
        k.to_string(),
        "IPSECRULE outside an IPSEC block; allowed: IPSECRULE between IPSEC and ENDIPSEC"
    );
    let (w, k) = err("IPCONFIG IPSECURITY\nIPSEC\nIPSEC\nENDIPSEC");
    assert_eq!((w.as_str(), k), ("IPSEC", ErrorKind::NestedIpsecBlock));
    let (w, k) = err("IPCONFIG IPSECURITY\nENDIPSEC");
    assert_eq!(w, "ENDIPSEC");
    assert!(matches!(k, ErrorKind::OutsideIpsecBlock { .. }));
}

#[test]
fn unknown_and_unsupported_statements() {
    let (w, k) = err("TCPCONFIG RESTRICTLOWPORTS\nIPCONFIG IPSECURITY");
    assert_eq!(w, "TCPCONFIG");
    assert_eq!(
        k.to_string(),
        "unknown statement `TCPCONFIG` in the profile; allowed: IPCONFIG IPSECURITY, IPSEC ... ENDIPSEC (VIPADYNAMIC goes in `vipadynamic`)"
    );
    let (w, _) = err("VIPADYNAMIC\nIPCONFIG IPSECURITY");
    assert_eq!(w, "VIPADYNAMIC");
    let (w, k) = rule_err("IPSEC6RULE * *");
    assert_eq!(w, "IPSEC6RULE");
    assert_eq!(
        k.to_string(),
        "IPSEC6RULE is not supported by plexnet; allowed: IPSECRULE (plexnet's stacks are IPv4 only)"
    );
    let (w, k) = err("IPCONFIG6 IPSECURITY\nIPCONFIG IPSECURITY");
    assert_eq!(w, "IPCONFIG6");
    assert!(matches!(k, ErrorKind::ProfileUnsupportedStatement { .. }));
    let (w, _) = rule_err("IPSECRULES * *");
    assert_eq!(w, "IPSECRULES");
}

#[test]
fn ipconfig_parameters() {
    let (w, k) = err("IPCONFIG DATAGRAMFWD");
    assert_eq!(w, "DATAGRAMFWD");
    assert_eq!(
        k.to_string(),
        "IPCONFIG DATAGRAMFWD is not supported by plexnet; allowed: IPCONFIG IPSECURITY"
    );
    let (w, k) = err("IPCONFIG IPSECURITY SYSPLEXROUTING");
    assert_eq!(w, "SYSPLEXROUTING");
    assert!(matches!(k, ErrorKind::Unsupported { .. }));
    let (_, k) = err("IPCONFIG");
    assert!(matches!(k, ErrorKind::Missing { .. }));
}

#[test]
fn ipsec_options_in_order() {
    let (w, k) = err("IPCONFIG IPSECURITY\nIPSEC LOGENABLE DVIPSEC\nENDIPSEC");
    assert_eq!(w, "DVIPSEC");
    assert_eq!(
        k.to_string(),
        "`DVIPSEC` comes after LOGENABLE in IPSEC; allowed: the parameters in IBM's order: IPSEC [DVIPSEC] [DVLOCALFLTR] [LOGDISABLE|LOGENABLE] [NOLOGIMPLICIT|LOGIMPLICIT]"
    );
    let (w, _) = err("IPCONFIG IPSECURITY\nIPSEC LOGENABLE LOGDISABLE\nENDIPSEC");
    assert_eq!(w, "LOGDISABLE");
    let (w, k) = err("IPCONFIG IPSECURITY\nIPSEC DVIPSECURE\nENDIPSEC");
    assert_eq!(w, "DVIPSECURE");
    assert!(matches!(k, ErrorKind::UnknownKeyword { .. }));
}

#[test]
fn rule_parameters_in_order() {
    let (w, k) = rule_err("IPSECRULE * * ROUTING LOCAL PROTOCOL TCP");
    assert_eq!(w, "PROTOCOL");
    assert!(
        k.to_string()
            .starts_with("`PROTOCOL` comes after ROUTING in IPSECRULE; allowed: the parameters in IBM's order: IPSECRULE src dest [NOLOG|LOG]"),
        "{k}"
    );
    let (w, _) = rule_err("IPSECRULE * * LOG NOLOG");
    assert_eq!(w, "NOLOG");
    let (w, _) = rule_err("IPSECRULE * * PROTOCOL TCP DESTPORT 80 SRCPORT 1024");
    assert_eq!(w, "SRCPORT");
}

#[test]
fn rule_unknown_words() {
    let (w, k) = rule_err("IPSECRULE * * PROTOCOL TCP PORTS 80");
    assert_eq!(w, "PORTS");
    assert_eq!(
        k.to_string(),
        "unknown keyword `PORTS` in IPSECRULE; allowed here: ROUTING, SECCLASS, DIRECTION"
    );
    let (w, k) = rule_err("IPSECRULE * * PROTOCOL SCTP");
    assert_eq!(w, "SCTP");
    assert!(k.to_string().contains("*, TCP, UDP, ICMP, OSPF"), "{k}");
    let (w, _) = rule_err("IPSECRULE * * ROUTING NOWHERE");
    assert_eq!(w, "NOWHERE");
    let (w, _) = rule_err("IPSECRULE * * DIRECTION SIDEWAYS");
    assert_eq!(w, "SIDEWAYS");
    let (w, k) = rule_err("IPSECRULE * * DIRECTION INBOUND LOG");
    assert_eq!(w, "LOG");
    assert!(matches!(k, ErrorKind::OutOfOrder { .. }));
    let (w, k) = rule_err("IPSECRULE * * ROUTING ROUTED FRAGMENTSONLY");
    assert_eq!(w, "FRAGMENTSONLY");
    assert!(matches!(k, ErrorKind::Unsupported { .. }));
}

#[test]
fn rule_bad_values() {
    let (w, k) = rule_err("IPSECRULE 198.18.1.0/33 *");
    assert_eq!(w, "198.18.1.0/33");
    assert_eq!(
        k.to_string(),
        "`198.18.1.0/33` is not an address specification; allowed: * (every address), a.b.c.d, a.b.c.d/len (len 0 to 32), or a.b.c.d-a.b.c.d (first not above last)"
    );
    let (w, _) = rule_err("IPSECRULE * client1");
    assert_eq!(w, "client1");
    let (w, _) = rule_err("IPSECRULE 198.18.1.9-198.18.1.2 *");
    assert_eq!(w, "198.18.1.9-198.18.1.2");
    let (w, _) = rule_err("IPSECRULE 198.18.1.9 - 198.18.1.2 *");
    assert_eq!(w, "198.18.1.9");
    let (w, k) = rule_err("IPSECRULE * * PROTOCOL TCP DESTPORT 65536");
    assert_eq!(w, "65536");
    assert_eq!(
        k.to_string(),
        "port `65536` is out of range; allowed: *, a port 1 to 65535, or two ports n m (a range)"
    );
    let (w, _) = rule_err("IPSECRULE * * PROTOCOL TCP DESTPORT 90 80");
    assert_eq!(w, "80");
    let (w, _) = rule_err("IPSECRULE * * PROTOCOL 256");
    assert_eq!(w, "256");
    let (w, _) = rule_err("IPSECRULE * * SECCLASS 256");
    assert_eq!(w, "256");
    let (w, _) = rule_err("IPSECRULE * * PROTOCOL ICMP TYPE 300");
    assert_eq!(w, "300");
    let (w, k) = rule_err("IPSECRULE * * PROTOCOL ICMP CODE 3");
    assert_eq!(w, "CODE");
    assert!(matches!(k, ErrorKind::Combination { .. }));
}

#[test]
fn rule_missing_operands() {
    let (w, k) = rule_err("IPSECRULE *");
    assert_eq!(w, "");
    assert!(
        k.to_string()
            .starts_with("IPSECRULE ends early, the destination address"),
        "{k}"
    );
    let (_, k) = rule_err("IPSECRULE * * PROTOCOL");
    assert!(matches!(k, ErrorKind::Missing { .. }));
    let (_, k) = rule_err("IPSECRULE * * PROTOCOL TCP SRCPORT");
    assert!(k.to_string().contains("after SRCPORT is missing"), "{k}");
    let (_, k) = rule_err("IPSECRULE * * DIRECTION");
    assert!(matches!(k, ErrorKind::Missing { .. }));
}

#[test]
fn bad_rule_does_not_hide_the_next() {
    let text = "IPCONFIG IPSECURITY\nIPSEC\nIPSECRULE * * PROTOCOL XTP\nIPSECRULE * 198.18.0.300\nIPSECRULE * *\nENDIPSEC";
    let (p, e) = parse(text);
    assert_eq!(e.len(), 2);
    let rules = p.ipsec.expect("block").rules;
    assert_eq!(rules.len(), 1);
    // Numbering follows the profile, bad rules included.
    assert_eq!(rules[0].name, "SYSDEFAULTRULE.3");
}
