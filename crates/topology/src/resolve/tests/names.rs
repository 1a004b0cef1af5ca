//! The file as TOML, and the names of nodes, hosts and LANs.

use super::*;

#[test]
fn base_loads() {
    let t = load(BASE).expect("BASE loads");
    assert_eq!(t.images.len(), 2);
}

#[test]
fn toml_syntax_error() {
    // toml reports an unterminated string where the line ends.
    check(
        "name = \"t\"\n[[image]]\nname = \"MVS1‸\n",
        "invalid basic string; allowed: TOML laid out as in topologies/figure4.toml",
    );
}

#[test]
fn unknown_toml_key() {
    let text = base_with("name = \"MVS2\"", "name = \"MVS2\"\n‸iek = true");
    check(
        &text,
        "unknown field `iek`, expected one of `name`, `ext_addr`, `xcf_addr`, `ike`, `inbound_filter`, `distribute_crypto`, `vipadynamic`, `profile`, `ipsec_policy`",
    );
}

#[test]
fn xcf_forwarding_defaults_to_gre_and_names_its_choices() {
    use crate::XcfForwarding;
    assert_eq!(load(BASE).unwrap().xcf_forwarding, XcfForwarding::Gre);
    let text = format!("{BASE}\n[xcf]\nforwarding = \"gre-in-udp\"\n");
    assert_eq!(load(&text).unwrap().xcf_forwarding, XcfForwarding::GreInUdp);
    let text = format!("{BASE}\n[xcf]\nforwarding = ‸\"udp\"\n");
    check(
        &text,
        "unknown variant `udp`, expected `gre` or `gre-in-udp`",
    );
}

#[test]
fn wrong_toml_type_and_missing_key() {
    let text = base_with("name = \"MVS2\"", "name = \"MVS2\"\nike = ‸\"yes\"");
    check(&text, "invalid type: string \"yes\", expected a boolean");
    let text = base_with(
        "[[client]]\nname = \"client1\"\n",
        "‸[[client]]\nlan = \"x\"\n",
    );
    check(
        &text,
        "missing field `name`; allowed: TOML laid out as in topologies/figure4.toml",
    );
}

#[test]
fn no_images() {
    check(
        "‸name = \"t\"\n",
        "the topology has no image; allowed: at least one [[image]] table",
    );
}

#[test]
fn bad_names() {
    let text = base_with("name = \"MVS2\"", "name = ‸\"MVS2TOOLONG\"").replacen(
        "DESTIP MVS1 MVS2",
        "DESTIP MVS1",
        1,
    );
    check(
        &text,
        "image name `MVS2TOOLONG` is not valid; allowed: 1 to 8 characters A-Z a-z 0-9 (a z/OS system name), not ALL",
    );
    let text = base_with("name = \"client1\"", "name = ‸\"client_1\"");
    check(
        &text,
        "client name `client_1` is not valid; allowed: 1 to 12 characters A-Z a-z 0-9",
    );
    let text = base_with(
        "name = \"t\"",
        "name = \"t\"\n[router]\nname = ‸\"the-router\"",
    );
    check(
        &text,
        "router name `the-router` is not valid; allowed: 1 to 12 characters A-Z a-z 0-9",
    );
    let text = base_with("name = \"t\"", "name = \"t\"\n[cf]\nname = ‸\"\"");
    check(
        &text,
        "coupling facility name `` is not valid; allowed: 1 to 12 characters A-Z a-z 0-9",
    );
    let text = base_with("name = \"t\"", "name = ‸\"t/../x\"");
    check(
        &text,
        "topology name `t/../x` is not valid; allowed: 1 to 32 characters A-Z a-z 0-9 '-' '_'",
    );
    let text = base_with("DVA1 = \"198.18.0.100\"", "\"DVA_1\" = ‸\"198.18.0.100\"");
    check(
        &text,
        "host name `DVA_1` is not valid; allowed: 1 to 63 characters A-Z a-z 0-9 and '-', starting with a letter or digit",
    );
    let text = base_with("name = \"client1\"", "name = \"client1\"\nlan = ‸\"lan 1\"");
    check(
        &text,
        "LAN name `lan 1` is not valid; allowed: 1 to 12 characters A-Z a-z 0-9",
    );
}

#[test]
fn duplicate_names() {
    let text = base_with("name = \"MVS2\"", "name = ‸\"mvs1\"").replacen(
        "DESTIP MVS1 MVS2",
        "DESTIP MVS1",
        1,
    );
    check(
        &text,
        "name `mvs1` is used twice (first at line 5); allowed: names unique, ignoring case, across images, clients, the router, the CF and [hosts]",
    );
    let text = base_with("name = \"client1\"", "name = ‸\"NET\"");
    check(
        &text,
        "name `NET` is used twice (first at line 1); allowed: names unique, ignoring case, across images, clients, the router, the CF and [hosts]",
    );
    let text = base_with("DVA1 = \"198.18.0.100\"", "MVS2 = ‸\"198.18.0.100\"");
    assert!(load(&text).is_err());
}

#[test]
fn duplicate_lan() {
    let text = format!("{BASE}[[client_lan]]\nname = \"lan1\"\n[[client_lan]]\nname = ‸\"LAN1\"\n");
    check(
        &text,
        "LAN name `LAN1` is used twice (first at line 17); allowed: one [[client_lan]] per name",
    );
}
