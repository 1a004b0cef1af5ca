//! Actions and offers: IpGenericFilterAction, IpDynVpnAction, IpDataOffer,
//! IpManVpnAction.

use super::*;

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
}

#[test]
fn data_offer_errors() {
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
}

#[test]
fn ah_transport_offer_and_encap_ikev2() {
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
