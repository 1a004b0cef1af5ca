//! VIPADYNAMIC across images: owners, backups, ranges, distributions, hosts.

use super::*;

#[test]
fn dvipa_outside_lan() {
    let text = base_with(
        "IMMEDIATE 255.255.255.0 198.18.0.100",
        "IMMEDIATE 255.255.255.0 198.18.0.100 ‸198.18.5.1",
    );
    check(
        &text,
        "DVIPA 198.18.5.1 is outside the external LAN 198.18.0.0/24; allowed: DVIPAs inside 198.18.0.0/24, where their owner answers ARP for them",
    );
    let text = base_with(
        "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100\n",
        "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100\n  VIPARANGE 255.255.255.0 ‸198.18.7.0\n",
    );
    check(
        &text,
        "DVIPA 198.18.7.0 is outside the external LAN 198.18.0.0/24; allowed: DVIPAs inside 198.18.0.0/24, where their owner answers ARP for them",
    );
    let text = base_with(
        "IMMEDIATE 255.255.255.0 198.18.0.100",
        "IMMEDIATE 255.255.255.0 198.18.0.100 ‸198.18.0.255",
    );
    check(
        &text,
        "DVIPA 198.18.0.255 is not a host address of the external LAN 198.18.0.0/24; allowed: an address inside 198.18.0.0/24 other than its network and broadcast addresses",
    );
}

#[test]
fn host_not_dvipa() {
    let text = base_with(
        "DVA1 = \"198.18.0.100\"",
        "DVA1 = \"198.18.0.100\"\nDVA2 = ‸\"198.18.0.102\"",
    );
    check(
        &text,
        "[hosts] DVA2 = 198.18.0.102 is not a DVIPA of this topology; allowed: an address some image's VIPADEFINE or VIPABACKUP names (node names are added to the hosts table automatically)",
    );
}

#[test]
fn unknown_dest() {
    let text = base_with("DESTIP MVS1 MVS2", "DESTIP MVS1 ‸MVS7");
    check(
        &text,
        "DESTIP `MVS7` is neither an image nor an image's XCF address; allowed: an image name or its XCF address: MVS1 (198.19.0.1), MVS2 (198.19.0.2), or ALL",
    );
    let text = base_with("DESTIP MVS1 MVS2", "DESTIP MVS1 ‸198.19.0.9");
    check(
        &text,
        "DESTIP `198.19.0.9` is neither an image nor an image's XCF address; allowed: an image name or its XCF address: MVS1 (198.19.0.1), MVS2 (198.19.0.2), or ALL",
    );
}

#[test]
fn dest_by_xcf_address_and_any_case() {
    let text = base_with("DESTIP MVS1 MVS2", "DESTIP mvs1 198.19.0.2");
    let t = load(&text).expect("loads");
    let d = &t.images[0].vipa.distributes[0];
    let names: Vec<&str> = d.dests.iter().map(|d| d.image.as_str()).collect();
    assert_eq!(names, ["MVS1", "MVS2"]);
}

#[test]
fn duplicate_dest() {
    let text = base_with("DESTIP MVS1 MVS2", "DESTIP MVS1 MVS2 ‸198.19.0.1");
    check(
        &text,
        "DESTIP MVS1 is listed twice; allowed: each image once per VIPADISTRIBUTE",
    );
}

#[test]
fn two_owners() {
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\nvipadynamic = \"VIPADYNAMIC VIPADEFINE 255.255.255.0 ‸198.18.0.100 ENDVIPADYNAMIC\"",
    );
    check(
        &text,
        "DVIPA 198.18.0.100 is VIPADEFINEd by MVS1 and by MVS2; allowed: one owner per DVIPA, other images take it over with VIPABACKUP",
    );
}

#[test]
fn defined_twice() {
    let text = base_with(
        "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100\n",
        "VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100\n  VIPABACKUP 10 ‸198.18.0.100\n",
    );
    check(
        &text,
        "DVIPA 198.18.0.100 is defined twice in MVS1; allowed: one VIPADEFINE or one VIPABACKUP per DVIPA in an image",
    );
}

#[test]
fn backup_without_owner() {
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\nvipadynamic = '''\nVIPADYNAMIC\n VIPABACKUP 10 ‸198.18.0.101\nENDVIPADYNAMIC\n'''",
    );
    check(
        &text,
        "VIPABACKUP of 198.18.0.101 in MVS2, but no image VIPADEFINEs it; allowed: back up a DVIPA that some image owns with VIPADEFINE",
    );
}

#[test]
fn backup_takes_owner_mask_and_defaults() {
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\nvipadynamic = 'VIPADYN VIPAB 198.18.0.100 ENDVIPADYN'",
    );
    let t = load(&text).expect("loads");
    let b = &t.images[1].vipa.backups[0];
    assert_eq!((b.rank, b.mask.to_string().as_str()), (1, "255.255.255.0"));
    assert_eq!(b.moveable, crate::Moveable::Immediate);
}

#[test]
fn distribute_undefined() {
    let text = base_with(
        "name = \"MVS2\"",
        "name = \"MVS2\"\nvipadynamic = '''\nVIPADYNAMIC\n VIPADIST ‸198.18.0.100 PORT 80 DESTIP ALL\nENDVIPADYNAMIC\n'''",
    );
    check(
        &text,
        "VIPADISTRIBUTE of 198.18.0.100 in MVS2, which neither VIPADEFINEs nor VIPABACKUPs it; allowed: distribute a DVIPA defined or backed up in the same image",
    );
}

#[test]
fn duplicate_distribute() {
    let text = base_with(
        "PORT 80 DESTIP MVS1 MVS2\n",
        "PORT 80 DESTIP MVS1 MVS2\n  VIPADIST 198.18.0.100 PORT 443 ‸80 DESTIP MVS2\n",
    );
    check(
        &text,
        "port 80 of 198.18.0.100 is distributed twice in MVS1; allowed: each DVIPA port in one VIPADISTRIBUTE of an image",
    );
}
