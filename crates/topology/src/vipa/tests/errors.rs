//! Statements that do not parse: one error each, at the offending word.

use super::*;

#[test]
fn unknown_statement_is_one_error() {
    let (w, k) = block_err("VIPADEFINEX MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100");
    assert_eq!(w, "VIPADEFINEX");
    assert_eq!(
        k.to_string(),
        "unknown statement `VIPADEFINEX`; allowed: VIPADEFine, VIPABackup, VIPADISTribute, VIPARange, ENDVIPADYNamic (the upper-case part is the shortest abbreviation)"
    );
    let (w, _) = block_err("VIPADELETE 198.18.0.100");
    assert_eq!(w, "VIPADELETE");
    let (w, _) = block_err("VIPAD 255.255.255.0 198.18.0.100");
    assert_eq!(w, "VIPAD");
}

#[test]
fn unknown_keyword() {
    let (w, k) = block_err("VIPADEFINE MOVEABLE SOMETIMES 255.255.255.0 198.18.0.100");
    assert_eq!(w, "SOMETIMES");
    assert_eq!(
        k.to_string(),
        "unknown keyword `SOMETIMES` in VIPADEFINE; allowed here: IMMEDIATE or WHENIDLE after MOVEABLE"
    );
    let (w, k) = block_err("VIPADIST DISTM FASTEST 198.18.0.100 PORT 80 DESTIP ALL");
    assert_eq!(w, "FASTEST");
    assert!(matches!(k, ErrorKind::UnknownKeyword { .. }));
    let (w, _) = block_err("VIPADIST 198.18.0.100 PORTS 80 DESTIP ALL");
    assert_eq!(w, "PORTS");
    let (w, _) = block_err("VIPADIST 198.18.0.100 PORT 80 DESTIP ALL MVS1");
    assert_eq!(w, "MVS1");
    let (w, _) = block_err("VIPAB 10 NOW 198.18.0.100");
    assert_eq!(w, "NOW");
    let (w, _) = block_err("VIPARANGE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.0");
    assert_eq!(w, "IMMEDIATE");
}

#[test]
fn unsupported_keywords() {
    let (w, k) = block_err("VIPADEFINE TIER1 255.255.255.0 198.18.0.100");
    assert_eq!(w, "TIER1");
    assert!(k.to_string().starts_with(
        "VIPADEFINE TIER1 is not supported by plexnet; allowed: VIPADEFINE [MOVEABLE"
    ));
    let (w, k) = block_err("VIPADIST DELETE 198.18.0.100 PORT 80 DESTIP ALL");
    assert_eq!(w, "DELETE");
    assert!(matches!(k, ErrorKind::Unsupported { .. }));
    let (w, _) = block_err("VIPADIST DISTM SERVERWLM 198.18.0.100 PORT 80 DESTIP ALL");
    assert_eq!(w, "SERVERWLM");
    let (w, _) = block_err("VIPARANGE DELETE 255.255.255.0 198.18.0.0");
    assert_eq!(w, "DELETE");
}

#[test]
fn real_zos_statements_plexnet_lacks_start_their_own_statement() {
    let text = "VIPADYNAMIC\nVIPADEFINE 255.255.255.0 198.18.0.100\nVIPAROUTE 198.19.0.2 198.18.0.12\nENDVIPADYNAMIC";
    let (s, e) = parse(text);
    assert_eq!(s.len(), 1, "the VIPADEFINE before it still parses");
    assert_eq!(e.len(), 1);
    assert_eq!(&text[e[0].0..e[0].0 + 9], "VIPAROUTE");
    assert!(matches!(e[0].1, ErrorKind::UnknownStatement { .. }));
}

#[test]
fn unsupported_keyword_where_an_address_is_expected() {
    let (w, k) = block_err("VIPADEFINE 255.255.255.0 198.18.0.100 SERVICEMGR");
    assert_eq!(w, "SERVICEMGR");
    assert!(matches!(k, ErrorKind::Unsupported { .. }), "{k}");
    let (w, k) = block_err("VIPADEFINE MOVEABLE IMMEDIATE SERVICEMGR 255.255.255.0 198.18.0.100");
    assert_eq!(w, "SERVICEMGR");
    assert!(matches!(k, ErrorKind::Unsupported { .. }), "{k}");
}

#[test]
fn missing_operands() {
    let (w, k) = block_err("VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0");
    assert_eq!(w, "");
    assert_eq!(
        k.to_string(),
        "VIPADEFINE ends early, the DVIPA address is missing; allowed: VIPADEFINE [MOVEABLE IMMEDIATE|MOVEABLE WHENIDLE] mask address..."
    );
    let (_, k) = block_err("VIPADIST 198.18.0.100 DESTIP ALL");
    assert!(
        k.to_string()
            .contains("PORT (plexnet distributes listed ports only) is missing"),
        "{k}"
    );
    let (_, k) = block_err("VIPADIST 198.18.0.100 PORT 80");
    assert!(k.to_string().contains("DESTIP is missing"), "{k}");
    let (_, k) = block_err("VIPADIST 198.18.0.100 PORT DESTIP ALL");
    assert!(
        k.to_string()
            .contains("a port number after PORT is missing"),
        "{k}"
    );
    let (_, k) = block_err("VIPADIST 198.18.0.100 PORT 80 DESTIP");
    assert!(
        k.to_string().contains("the destinations after DESTIP"),
        "{k}"
    );
    let (_, k) = block_err("VIPADIST DISTM");
    assert!(matches!(k, ErrorKind::Missing { .. }), "{k}");
}

#[test]
fn malformed_address_and_mask() {
    let (w, k) = block_err("VIPADEFINE 255.255.255.0 198.18.0.300");
    assert_eq!(w, "198.18.0.300");
    assert_eq!(
        k.to_string(),
        "`198.18.0.300` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)"
    );
    let (w, _) = block_err("VIPADEFINE 255.255.255.0 DVA1");
    assert_eq!(w, "DVA1");
    let (w, k) = block_err("VIPADEFINE 255.0.255.0 198.18.0.100");
    assert_eq!(w, "255.0.255.0");
    assert_eq!(
        k.to_string(),
        "`255.0.255.0` is not an address mask; allowed: a contiguous netmask such as 255.255.255.0"
    );
    let (w, k) = block_err("VIPARANGE 0.0.0.0 198.18.0.0");
    assert_eq!(w, "0.0.0.0");
    assert!(matches!(k, ErrorKind::BadMask { .. }));
    let (w, k) = block_err("VIPABACKUP 1 MOVE IMMED 198.18.0.100");
    assert_eq!(w, "198.18.0.100");
    assert!(matches!(k, ErrorKind::BadMask { .. }));
}

#[test]
fn rank_out_of_range() {
    let (w, k) = block_err("VIPABACKUP 255 198.18.0.100");
    assert_eq!(w, "255");
    assert_eq!(
        k.to_string(),
        "rank `255` is out of range; allowed: 1 to 254 (a higher rank takes over first)"
    );
    let (w, _) = block_err("VIPABACKUP 0 198.18.0.100");
    assert_eq!(w, "0");
    let (w, k) = block_err(
        "VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2 BACKUP 999",
    );
    assert_eq!(w, "999");
    assert!(matches!(k, ErrorKind::RankOutOfRange { .. }));
}

#[test]
fn port_out_of_range() {
    let (w, k) = block_err("VIPADIST 198.18.0.100 PORT 80 65536 DESTIP ALL");
    assert_eq!(w, "65536");
    assert_eq!(
        k.to_string(),
        "port `65536` is out of range; allowed: 1 to 65535, or a range low-high such as 8000-8009"
    );
    let (w, _) = block_err("VIPADIST 198.18.0.100 PORT 0 DESTIP ALL");
    assert_eq!(w, "0");
    let (w, _) = block_err("VIPADIST 198.18.0.100 PORT http DESTIP ALL");
    assert_eq!(w, "http");
    let (w, _) = block_err("VIPADIST 198.18.0.100 PORT 90-80 DESTIP ALL");
    assert_eq!(w, "90-80");
    let (w, _) = block_err("VIPADIST 198.18.0.100 PORT 80-0 DESTIP ALL");
    assert_eq!(w, "0");
}

#[test]
fn weight_rules() {
    let (w, k) =
        block_err("VIPADIST DISTM WEIGHTEDACTIVE 198.18.0.100 PORT 80 DESTIP MVS1 WEIGHT 100");
    assert_eq!(w, "100");
    assert_eq!(
        k.to_string(),
        "weight `100` is out of range; allowed: 1 to 99"
    );
    let (w, k) = block_err("VIPADIST DISTM ROUNDROBIN 198.18.0.100 PORT 80 DESTIP MVS1 WEIGHT 5");
    assert_eq!(w, "WEIGHT");
    assert_eq!(
        k.to_string(),
        "WEIGHT with DISTMETHOD RoundRobin; allowed: WEIGHT only with DISTMETHOD WEIGHTEDACTIVE"
    );
}

#[test]
fn hotstandby_rules() {
    let (w, k) = block_err("VIPADIST DISTM ROUNDROBIN 198.18.0.100 PORT 80 DESTIP MVS1 PREFERRED");
    assert_eq!(w, "PREFERRED");
    assert!(matches!(
        k,
        ErrorKind::RoleWithoutHotStandby {
            keyword: "PREFERRED",
            ..
        }
    ));
    let (w, k) = block_err("VIPADIST 198.18.0.100 PORT 80 DESTIP MVS1 BACKUP 3");
    assert_eq!(w, "BACKUP");
    assert!(matches!(
        k,
        ErrorKind::RoleWithoutHotStandby {
            keyword: "BACKUP",
            ..
        }
    ));
    let (w, k) =
        block_err("VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2 PREF");
    assert_eq!(w, "DESTIP");
    assert_eq!(
        k.to_string(),
        "DISTMETHOD HOTSTANDBY with 2 PREFERRED, 0 BACKUP and 0 unmarked destinations; allowed: exactly one PREFERRED and every other destination BACKUP rank"
    );
    let (_, k) = block_err("VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2");
    assert_eq!(
        k,
        ErrorKind::HotStandbyRoles {
            preferred: 1,
            backups: 0,
            unmarked: 1
        }
    );
    let (_, k) = block_err(
        "VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2 BACK 5 MVS3",
    );
    assert_eq!(
        k.to_string(),
        "DISTMETHOD HOTSTANDBY with 1 PREFERRED, 1 BACKUP and 1 unmarked destinations; allowed: exactly one PREFERRED and every other destination BACKUP rank"
    );
    let (w, k) = block_err("VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP ALL");
    assert_eq!(w, "DESTIP");
    assert_eq!(k, ErrorKind::HotStandbyAll);
    let (w, k) =
        block_err("VIPADIST DISTM ROUNDROBIN DISTM BASEWLM 198.18.0.100 PORT 80 DESTIP ALL");
    assert_eq!(w, "DISTM");
    assert_eq!(k, ErrorKind::DuplicateDistMethod);
}

#[test]
fn bad_statement_does_not_hide_the_next() {
    let text = "VIPADYNAMIC\nVIPADEFINE 255.255.255.0 1.2.3\nVIPABACKUP 300 198.18.0.1\nVIPAR 255.255.255.0 198.18.0.0\nENDVIPADYNAMIC";
    let (s, e) = parse(text);
    assert_eq!(s.len(), 1);
    assert_eq!(e.len(), 2);
    assert!(matches!(e[0].1, ErrorKind::BadAddress { .. }));
    assert!(matches!(e[1].1, ErrorKind::RankOutOfRange { .. }));
}
