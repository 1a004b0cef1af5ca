//! The address plan: given and automatic addresses, subnets, overlaps, room.

use super::*;

#[test]
fn bad_address_subnet() {
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\next_addr = ‸\"198.18.0\"",
    );
    check(
        &text,
        "`198.18.0` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)",
    );
    let text = base_with(
        "name = \"t\"",
        "name = \"t\"\n[external_lan]\nsubnet = ‸\"198.18.0.1/24\"",
    );
    check(
        &text,
        "`198.18.0.1/24` is not a subnet; allowed: address/prefix with zero host bits and a prefix of 8 to 30, such as 198.18.0.0/24",
    );
    let text = base_with("DVA1 = \"198.18.0.100\"", "DVA1 = ‸\"DVA1\"");
    check(
        &text,
        "`DVA1` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)",
    );
}

#[test]
fn outside_benchmark() {
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\nxcf_addr = ‸\"10.0.0.2\"",
    );
    check(
        &text,
        "10.0.0.2 is outside 198.18.0.0/15; allowed: addresses in 198.18.0.0/15 only (RFC 2544 benchmark space, never routed outside the testbed)",
    );
    let text = base_with(
        "name = \"t\"",
        "name = \"t\"\n[external_lan]\nsubnet = ‸\"192.168.0.0/24\"",
    );
    check(
        &text,
        "192.168.0.0 is outside 198.18.0.0/15; allowed: addresses in 198.18.0.0/15 only (RFC 2544 benchmark space, never routed outside the testbed)",
    );
}

#[test]
fn duplicate_addresses() {
    // An explicit address equal to an earlier automatic one.
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\next_addr = ‸\"198.18.0.11\"",
    );
    check(
        &text,
        "external address of MVS2 198.18.0.11 is also used by external address of MVS1 (automatic); allowed: every address used once",
    );
    // A DVIPA equal to an image's address: reported inside the string.
    let text = base_with(
        "IMMEDIATE 255.255.255.0 198.18.0.100",
        "IMMEDIATE 255.255.255.0 198.18.0.100 ‸198.18.0.12",
    );
    check(
        &text,
        "DVIPA of MVS1 198.18.0.12 is also used by external address of MVS2 (automatic); allowed: every address used once",
    );
    let text = base_with(
        "name = \"client1\"",
        "name = \"client1\"\naddr = ‸\"198.18.1.1\"",
    );
    check(
        &text,
        "client client1 198.18.1.1 is also used by router on client LAN client1 (automatic); allowed: every address used once",
    );
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\nxcf_addr = ‸\"198.19.0.1\"",
    );
    check(
        &text,
        "XCF address of MVS2 198.19.0.1 is also used by XCF address of MVS1 (automatic); allowed: every address used once",
    );
}

#[test]
fn not_in_subnet() {
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\next_addr = ‸\"198.18.2.12\"",
    );
    check(
        &text,
        "external address of MVS2 198.18.2.12 is not a host address of the external LAN 198.18.0.0/24; allowed: an address inside 198.18.0.0/24 other than its network and broadcast addresses",
    );
    let text = base_with(
        "name = \"client1\"",
        "name = \"client1\"\naddr = ‸\"198.18.1.255\"",
    );
    check(
        &text,
        "client client1 198.18.1.255 is not a host address of client LAN client1 198.18.1.0/24; allowed: an address inside 198.18.1.0/24 other than its network and broadcast addresses",
    );
}

#[test]
fn xcf_and_cf_outside_lans() {
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\nxcf_addr = ‸\"198.18.0.200\"",
    );
    check(
        &text,
        "XCF address of MVS2 198.18.0.200 lies inside the external LAN 198.18.0.0/24; allowed: XCF and CF addresses outside every LAN subnet",
    );
    let text = base_with("name = \"t\"", "name = \"t\"\n[cf]\naddr = ‸\"198.18.1.9\"");
    check(
        &text,
        "coupling facility CF 198.18.1.9 lies inside client LAN client1 198.18.1.0/24; allowed: XCF and CF addresses outside every LAN subnet",
    );
}

#[test]
fn subnet_overlap() {
    let text = format!("{BASE}[[client_lan]]\nname = \"lan1\"\nsubnet = ‸\"198.18.0.128/25\"\n");
    check(
        &text,
        "LAN client LAN lan1 198.18.0.128/25 overlaps the external LAN 198.18.0.0/24; allowed: disjoint LAN subnets",
    );
}

#[test]
fn automatic_lans_avoid_given_ones() {
    let text = format!(
        "{BASE}[[client]]\nname = \"client2\"\nlan = \"lan9\"\n[[client_lan]]\nname = \"lan9\"\nsubnet = \"198.18.1.0/24\"\n"
    );
    let t = load(&text).expect("loads");
    let c1 = t
        .clients
        .iter()
        .find(|c| c.name == "client1")
        .expect("client1");
    assert_eq!(
        t.client_lan(&c1.lan).expect("lan").subnet.to_string(),
        "198.18.2.0/24"
    );
    let c2 = t
        .clients
        .iter()
        .find(|c| c.name == "client2")
        .expect("client2");
    assert_eq!(
        (c2.lan.as_str(), c2.addr.to_string().as_str()),
        ("lan9", "198.18.1.2")
    );
}

#[test]
fn shared_lan_numbers_clients() {
    let text = format!(
        "{BASE}[[client]]\nname = \"client2\"\nlan = \"client1\"\n[[client]]\nname = \"client3\"\nlan = \"client1\"\naddr = \"198.18.1.3\"\n"
    );
    let t = load(&text).expect("loads");
    let addrs: Vec<String> = t.clients.iter().map(|c| c.addr.to_string()).collect();
    assert_eq!(addrs, ["198.18.1.2", "198.18.1.4", "198.18.1.3"]);
    assert_eq!(t.client_lans.len(), 1);
}

#[test]
fn no_room() {
    // A /29 has hosts .1 to .6: MVS1 is placed by hand, MVS2 (.12) does not fit.
    let text = base_with(
        "name = \"t\"",
        "name = \"t\"\n[external_lan]\nsubnet = \"198.18.0.0/29\"",
    )
    .replace("198.18.0.100", "198.18.0.5")
    .replacen("255.255.255.0", "255.255.255.248", 1)
    .replacen(
        "name = \"MVS1\"",
        "name = \"MVS1\"\next_addr = \"198.18.0.2\"",
        1,
    )
    .replacen("name = \"MVS2\"", "name = ‸\"MVS2\"", 1);
    check(
        &text,
        "no room for an automatic external address of MVS2 in 198.18.0.0/29; allowed: give `ext_addr` explicitly, or a larger subnet",
    );
}
