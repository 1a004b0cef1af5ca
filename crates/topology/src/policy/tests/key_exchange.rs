//! Key exchange statements, statement-level errors, and how errors are
//! collected.

use super::*;

#[test]
fn key_exchange_forms() {
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
}

#[test]
fn key_exchange_offer_and_action_errors() {
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
}

#[test]
fn key_exchange_rule_and_endpoint_errors() {
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
