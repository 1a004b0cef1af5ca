//! Statements that parse, in every form and abbreviation.

use super::*;

#[test]
fn keyword_abbreviations() {
    assert!(VIPADEFINE.matches("vipadef"));
    assert!(VIPADEFINE.matches("VipaDefin"));
    assert!(!VIPADEFINE.matches("VIPADE"));
    assert!(!VIPADEFINE.matches("VIPADEFINES"));
    assert!(VIPABACKUP.matches("VIPAB"));
    assert!(VIPADISTRIBUTE.matches("vipadist"));
    assert!(!VIPADISTRIBUTE.matches("VIPADIS"));
    assert!(VIPARANGE.matches("VIPAR"));
    assert!(!VIPARANGE.matches("VIPAROUTE"));
    assert!(DISTMETHOD.matches("DISTM"));
    assert!(MOVEABLE.matches("move"));
    assert!(IMMEDIATE.matches("IMMED"));
    assert!(!IMMEDIATE.matches("IMME"));
    assert!(WEIGHTEDACTIVE.matches("WEIGHTEDA"));
    assert!(!WEIGHTEDACTIVE.matches("WEIGHTED"));
    assert!(PREFERRED.matches("PREF"));
    assert!(BACKUP.matches("BACK"));
    assert!(VIPADYNAMIC.matches("VipaDyn"));
    assert!(ENDVIPADYNAMIC.matches("ENDVIPADYN"));
}

#[test]
fn tokenizer_comments_commas_lines() {
    let t: Vec<&str> = tokenize("A B,C ; comment D\n  E,,F;x\nG")
        .iter()
        .map(|t| t.text)
        .collect();
    assert_eq!(t, ["A", "B", "C", "E", "F", "G"]);
    assert_eq!(tokenize("  xy")[0].at, 2);
}

#[test]
fn vipadefine_forms() {
    let s = ok("VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100");
    assert_eq!(
        s,
        [Statement::Define(RawDefine {
            moveable: Moveable::Immediate,
            mask: ip("255.255.255.0"),
            addrs: vec![At {
                value: ip("198.18.0.100"),
                at: 56
            }],
        })]
    );
    let s = ok("vipadef move whenidle 255.255.255.0 198.18.0.100 198.18.0.101");
    let Statement::Define(d) = &s[0] else {
        panic!("not a define: {s:?}")
    };
    assert_eq!(d.moveable, Moveable::WhenIdle);
    assert_eq!(d.addrs.len(), 2);
    // MOVEABLE left out: z/OS default MOVEABLE IMMEDIATE.
    let s = ok("VIPADEFine 255.255.255.0 198.18.0.100");
    assert!(matches!(&s[0], Statement::Define(d) if d.moveable == Moveable::Immediate));
}

#[test]
fn vipabackup_forms() {
    let s = ok("VIPABACKUP 100 MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100");
    assert_eq!(
        s[0],
        Statement::Backup(RawBackup {
            rank: 100,
            moveable: Some(Moveable::Immediate),
            mask: Some(ip("255.255.255.0")),
            addrs: vec![At {
                value: ip("198.18.0.100"),
                at: 60
            }],
        })
    );
    let s = ok("VIPAB 198.18.0.100 198.18.0.101");
    assert!(matches!(&s[0], Statement::Backup(b)
        if b.rank == 1 && b.moveable.is_none() && b.mask.is_none() && b.addrs.len() == 2));
    let s = ok("vipaback 7 255.255.255.0 198.18.0.100");
    assert!(matches!(&s[0], Statement::Backup(b)
        if b.rank == 7 && b.mask == Some(ip("255.255.255.0")) && b.addrs.len() == 1));
    let s = ok("VIPABACKUP 254 MOVE WHENIDLE 255.255.255.0 198.18.0.100");
    assert!(matches!(&s[0], Statement::Backup(b) if b.moveable == Some(Moveable::WhenIdle)));
}

#[test]
fn vipadistribute_forms() {
    let s = ok("VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN 198.18.0.100\n   PORT 60 80 DESTIP MVS1 MVS2 198.19.0.4");
    let Statement::Distribute(d) = &s[0] else {
        panic!("not a distribute: {s:?}")
    };
    assert_eq!(d.method, DistMethod::RoundRobin);
    assert_eq!(d.addr.value, ip("198.18.0.100"));
    assert_eq!(
        d.ports.iter().map(|p| p.value).collect::<Vec<_>>(),
        [60, 80]
    );
    let RawDests::List(l) = &d.dests else {
        panic!("not a list")
    };
    let names: Vec<&str> = l.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(names, ["MVS1", "MVS2", "198.19.0.4"]);
    assert!(l.iter().all(|d| d.role == DestRole::Plain));

    // The patent's own wording: no DISTMETHOD (BASEWLM), commas.
    let s = ok("VIPADISTribute 198.18.0.100 PORT 60 DESTIP XCF1, XCF2, XCF4");
    let Statement::Distribute(d) = &s[0] else {
        panic!("not a distribute")
    };
    assert_eq!(d.method, DistMethod::BaseWlm);
    assert!(matches!(&d.dests, RawDests::List(l) if l.len() == 3));

    let s = ok("vipadist distm roundrobin define 198.18.0.100 port 80 destip all");
    assert!(matches!(&s[0], Statement::Distribute(d)
        if d.dests == RawDests::All && d.method == DistMethod::RoundRobin));

    let s = ok(
        "VIPADIST DISTM WEIGHTEDA 198.18.0.100 PORT 80 DESTIP MVS1 WEIGHT 5 MVS2 MVS3 WEIGHT 99",
    );
    let Statement::Distribute(d) = &s[0] else {
        panic!("not a distribute")
    };
    let RawDests::List(l) = &d.dests else {
        panic!("not a list")
    };
    let roles: Vec<DestRole> = l.iter().map(|d| d.role).collect();
    assert_eq!(
        roles,
        [DestRole::Weight(5), DestRole::Plain, DestRole::Weight(99)]
    );

    let s = ok("VIPADIST DISTM HOTSTANDBY 198.18.0.100 PORT 80 DESTIP MVS1 PREF MVS2 BACK 10 MVS3 BACKUP 200");
    let Statement::Distribute(d) = &s[0] else {
        panic!("not a distribute")
    };
    let RawDests::List(l) = &d.dests else {
        panic!("not a list")
    };
    let roles: Vec<DestRole> = l.iter().map(|d| d.role).collect();
    assert_eq!(
        roles,
        [
            DestRole::Preferred,
            DestRole::Backup(10),
            DestRole::Backup(200)
        ]
    );

    let s = ok("VIPADIST TIMEDAFF 60 DISTM ROUNDROBIN 198.18.0.100 PORT 5201-5204 DESTIP ALL");
    assert!(matches!(&s[0], Statement::Distribute(d) if d.timed_affinity == Some(60)));

    let s = ok("VIPADIST DISTM BASEWLM 198.18.0.100 PORT 8000-8002 80 DESTIP ALL");
    assert!(matches!(&s[0], Statement::Distribute(d)
        if d.ports.iter().map(|p| p.value).collect::<Vec<_>>() == [8000, 8001, 8002, 80]));
}

#[test]
fn viparange_forms() {
    let s = ok("VIPARANGE DEFINE MOVEABLE NONDISRUPTIVE 255.255.255.240 198.18.0.192");
    assert_eq!(
        s[0],
        Statement::Range(RawRange {
            mask: ip("255.255.255.240"),
            addr: At {
                value: ip("198.18.0.192"),
                at: 68
            },
        })
    );
    let s =
        ok("VIPAR MOVE DISRUPT 255.255.255.240 198.18.0.192\nviparange 255.255.255.0 198.18.0.0");
    assert_eq!(s.len(), 2);
}

#[test]
fn statements_continue_over_lines_with_comments() {
    let s = ok("VIPADEFINE        ; owner\n   MOVEABLE IMMEDIATE ; moves at once\n 255.255.255.0\n 198.18.0.100 ; DVA1\nVIPADISTRIBUTE 198.18.0.100\n PORT 80\n DESTIP\n MVS1 ; me\n MVS2\n");
    assert_eq!(s.len(), 2);
    assert!(
        matches!(&s[1], Statement::Distribute(d) if matches!(&d.dests, RawDests::List(l) if l.len() == 2))
    );
}

#[test]
fn several_blocks_and_empty_text() {
    let (s, e) = parse("VIPADYN VIPADEF 255.255.255.0 198.18.0.100 ENDVIPADYN\nVIPADYNAMIC VIPAR 255.255.255.0 198.18.0.0 ENDVIPADYNAMIC");
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(s.len(), 2);
    let (s, e) = parse("  ; nothing but a comment\n");
    assert!(s.is_empty() && e.is_empty());
}

#[test]
fn block_errors() {
    let (w, k) = err("VIPADEFINE 255.255.255.0 198.18.0.100");
    assert_eq!(w, "VIPADEFINE");
    assert!(matches!(k, ErrorKind::OutsideBlock { .. }));
    let (w, k) = err("VIPADYNAMIC\nVIPADEFINE 255.255.255.0 198.18.0.100\n");
    assert_eq!(w, "VIPADYNAMIC");
    assert_eq!(k, ErrorKind::UnclosedBlock);
    let (w, k) = err("VIPADYNAMIC VIPADYNAMIC ENDVIPADYNAMIC");
    assert_eq!(w, "VIPADYNAMIC");
    assert_eq!(k, ErrorKind::NestedBlock);
    let (w, k) = err("VIPADYNAMIC FOO ENDVIPADYNAMIC");
    assert_eq!(w, "FOO");
    assert!(matches!(k, ErrorKind::UnknownStatement { .. }));
}
