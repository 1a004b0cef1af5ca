//! Statement errors located in the file, IP security, and error order.

use super::*;

#[test]
fn statement_errors_are_located_in_the_file() {
    // Syntax errors inside the vipadynamic string point into the file,
    // past the `"""` and the newline it trims.
    let text = base_with(
        "ENDVIPADYNAMIC",
        "  ‸VIPADELETE 198.18.0.100\nENDVIPADYNAMIC",
    );
    check(
        &text,
        "unknown statement `VIPADELETE`; allowed: VIPADEFine, VIPABackup, VIPADISTribute, VIPARange, ENDVIPADYNamic (the upper-case part is the shortest abbreviation)",
    );
    let text = base_with(
        "DISTMETHOD ROUNDROBIN",
        "DISTMETHOD ROUNDROBIN TIMEDAFFINITY ‸0",
    );
    check(
        &text,
        "TIMEDAFFINITY `0` is out of range; allowed: 1 to 99999 seconds",
    );
    let text = base_with("PORT 80 DESTIP", "PORT 80 ‸70000 DESTIP");
    check(
        &text,
        "port `70000` is out of range; allowed: 1 to 65535, or a range low-high such as 8000-8009",
    );
    let text = base_with(
        "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0",
        "VIPADEFINE MOVEABLE ‸SOON 255.255.255.0",
    );
    check(
        &text,
        "unknown keyword `SOON` in VIPADEFINE; allowed here: IMMEDIATE or WHENIDLE after MOVEABLE",
    );
    let text = base_with(
        "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0",
        "VIPADEFINE MOVEABLE IMMEDIATE ‸255.255.0.255",
    );
    check(
        &text,
        "`255.255.0.255` is not an address mask; allowed: a contiguous netmask such as 255.255.255.0",
    );
    let text = base_with("VIPADYNAMIC\n  VIPADEFINE", "‸VIPADEFINE");
    check(
        &text,
        "expected VIPADYNAMIC, found `VIPADEFINE`; allowed: statements inside a VIPADYNAMIC ... ENDVIPADYNAMIC block",
    );
    let text = base_with("\nENDVIPADYNAMIC\n", "\n");
    let text = text.replacen("VIPADYNAMIC\n  VIPADEFINE", "‸VIPADYNAMIC\n  VIPADEFINE", 1);
    check(
        &text,
        "the VIPADYNAMIC block is not closed; allowed: ENDVIPADYNAMIC after the last statement",
    );
}

/// BASE with IP security on MVS1: a profile and a policy (as a literal
/// string, so that both TOML string kinds are mapped).
fn secured() -> String {
    base_with(
        "ENDVIPADYNAMIC\n\"\"\"\n",
        concat!(
            "ENDVIPADYNAMIC\n\"\"\"\n",
            "profile = \"\"\"\n",
            "IPCONFIG IPSECURITY\n",
            "IPSEC DVIPSEC\n",
            "  IPSECRULE * * PROTOCOL UDP SRCPORT 500\n",
            "ENDIPSEC\n",
            "\"\"\"\n",
            "ipsec_policy = '''\n",
            "IpFilterRule all\n",
            "{\n",
            "  IpService\n",
            "  {\n",
            "    Protocol All\n",
            "  }\n",
            "  IpGenericFilterActionRef permit\n",
            "}\n",
            "IpGenericFilterAction permit\n",
            "{\n",
            "  IpFilterAction Permit\n",
            "}\n",
            "'''\n",
        ),
    )
}

#[test]
fn ip_security_loads() {
    let t = load(&secured()).expect("loads");
    let sec = t.images[0]
        .ip_security
        .as_ref()
        .expect("MVS1 has IP security");
    assert!(sec.ipsecurity && sec.dvipsec);
    assert_eq!(sec.default_rules.len(), 1);
    let policy = sec.policy.as_ref().expect("a policy");
    assert_eq!(policy.filter_rules[0].name, "all");
    assert!(t.images[1].ip_security.is_none());
}

#[test]
fn ip_security_errors_are_located_in_the_file() {
    let secured = secured();
    // Profile errors point into the profile string.
    check(
        &secured.replacen("SRCPORT 500", "SRCPORT ‸0", 1),
        "port `0` is out of range; allowed: *, a port 1 to 65535, or two ports n m (a range)",
    );
    check(
        &secured
            .replacen("IPCONFIG IPSECURITY\n", "", 1)
            .replacen("IPSEC DVIPSEC", "‸IPSEC DVIPSEC", 1),
        "IPSEC block without IPCONFIG IPSECURITY: z/OS ignores the IPSEC statement then, and the stack does no IP filtering at all; allowed: IPCONFIG IPSECURITY in the same profile, or no IPSEC block",
    );
    // Policy errors point into the policy string.
    check(
        &secured.replacen("IpFilterAction Permit", "IpFilterAction ‸Allow", 1),
        "IpFilterAction `Allow` is not known; allowed: Permit, Deny or IpSec",
    );
    check(
        &secured.replacen("ActionRef permit", "ActionRef ‸permitted", 1),
        "IpGenericFilterActionRef `permitted` names no IpGenericFilterAction statement; allowed: the name of a IpGenericFilterAction statement: permit",
    );
    // A policy with no IPCONFIG IPSECURITY in the image's profile.
    let start = secured.find("profile = ").expect("a profile");
    let end = secured.find("ipsec_policy").expect("a policy");
    let mut no_profile = secured.clone();
    no_profile.replace_range(start..end, "");
    check(
        &no_profile.replacen("ipsec_policy = '''", "ipsec_policy = ‸'''", 1),
        "ipsec_policy without IPCONFIG IPSECURITY in this image's profile: the Policy Agent does not install IPSec policy in such a stack (EZD1579I); allowed: IPCONFIG IPSECURITY in `profile`, or no `ipsec_policy`",
    );
}

#[test]
fn escapes_in_basic_strings_keep_positions() {
    let text = base_with(
        "VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN 198.18.0.100 PORT 80",
        "VIPADISTRIBUTE\\tDEFINE DISTMETHOD ROUNDROBIN 198.18.0.100 PORT ‸0",
    );
    check(
        &text,
        "port `0` is out of range; allowed: 1 to 65535, or a range low-high such as 8000-8009",
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = base_with("DESTIP MVS1 MVS2", "DESTIP MVS1 MVS9")
        .replacen(
            "name = \"MVS2\"",
            "name = \"MVS2\"\next_addr = \"1.2.3.4\"",
            1,
        )
        .replacen("name = \"client1\"", "name = \"client_1\"", 1);
    let e = load(&text).expect_err("three problems");
    let lines: Vec<usize> = e.errors().iter().map(|d| d.line).collect();
    assert_eq!(lines, [9, 14, 16]);
    assert_eq!(e.to_string(), e.errors()[0].to_string());
}
