//! Takeover tests (patent Fig. 12): CF keys and records, adoption by the
//! new routing stack, the claim, and which backup takes a DVIPA.

use super::*;

fn figure4() -> crate::sysplex::test_support::Figure4 {
    crate::sysplex::test_support::Figure4
}

const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// A bundle's record sits under its ESP pair's key and comes back
/// whole (both pairs, both sequence keys) from the CF's bytes.
#[test]
fn sa_records_round_trip_under_the_esp_pair_key() {
    let b = crate::sysplex::xcf::tests::bundle();
    let esp = &b.esp;
    let want = sa_key(esp.dvipa, Protocol::Esp, esp.inbound.spi);
    for rec in [
        SaRecord::Pair(Box::new(esp.clone())),
        SaRecord::Bundle(Box::new(b.clone())),
    ] {
        assert_eq!(rec.key(), want);
        assert_eq!(decode::<SaRecord>(&encode(&rec)).expect("decode"), rec);
    }
}

/// The CF's SA records for the adoption test: a pair and a bundle of DVA1,
/// a pair of another DVIPA, a pair whose inbound SA the routing stack
/// refuses, and one whose outbound SA the shadow cache refuses.
fn sa_records_to_adopt() -> (SaInstall, BundleInstall, Vec<SaRecord>) {
    let b = crate::sysplex::xcf::tests::bundle();
    let mut pair = b.esp.clone();
    (pair.inbound.spi, pair.outbound.spi) = (Spi(0x21), Spi(0x22));
    pair.seq_key.spi = Spi(0x22);
    let mut elsewhere = pair.clone();
    elsewhere.dvipa = Ipv4Addr::new(198, 18, 0, 101);
    let mut broken = pair.clone();
    broken.inbound.spi = Spi(0x31);
    broken.inbound.integ_key = crate::ipsec::sa::Key(vec![1; 3]);
    // The routing stack checks only the inbound SA; the shadow cache
    // refuses this one's outbound SA.
    let mut broken_out = pair.clone();
    broken_out.inbound.spi = Spi(0x41);
    broken_out.outbound.integ_key = crate::ipsec::sa::Key(vec![1; 3]);
    let sas = vec![
        SaRecord::Pair(Box::new(pair.clone())),
        SaRecord::Bundle(Box::new(b.clone())),
        SaRecord::Pair(Box::new(elsewhere)),
        SaRecord::Pair(Box::new(broken)),
        SaRecord::Pair(Box::new(broken_out)),
    ];
    (pair, b, sas)
}

/// Connections to DVA1 recorded in the CF, served by MVS4 (live), MVS1
/// (the stack that failed) and NOPE (no image).
fn conns_to_restore() -> Vec<(ConnKey, ConnRecord)> {
    let conn = |port: u16, target: &str| {
        let key = ConnKey {
            client: Ipv4Addr::new(198, 18, 1, 2),
            client_port: port,
            dvipa: DVA1,
            port: 80,
        };
        let rec = ConnRecord {
            target: target.into(),
            target_xcf: Ipv4Addr::new(198, 19, 0, 9),
            ipsec: true,
        };
        (key, rec)
    };
    vec![
        conn(40001, "MVS4"),
        conn(40002, "MVS1"),
        conn(40003, "NOPE"),
    ]
}

/// A takeover adopts the DVIPA's pairs and bundles into the routing
/// stack and the image's own shadow cache, reports an SA it could not
/// take, leaves another DVIPA's records alone, and continues only the
/// connections whose target is a live image.
#[test]
fn adopter_takes_the_dvipas_records_and_live_connections() {
    let topo = figure4();
    let (pair, b, sas) = sa_records_to_adopt();
    let conns = conns_to_restore();
    let (_, mvs2) = topo.image_xcf("MVS2").expect("MVS2");
    let mut routing = RoutingStack::new("MVS2", mvs2, Default::default(), &[]);
    let mut target = TargetStack::new("MVS2", mvs2);
    let adoption = Adopter {
        routing: &mut routing,
        target: &mut target,
        me: "MVS2",
        now: Instant::from_millis(1000),
    }
    .adopt(&topo, DVA1, sas, conns.clone(), Some("MVS1"));

    let adopted = |pair: &SaInstall, bundle| SaAdoption::Adopted {
        inbound: pair.inbound.spi,
        outbound: pair.outbound.spi,
        peer: pair.outbound.dst,
        bundle,
    };
    assert_eq!(
        adoption.sas[..2],
        [adopted(&pair, false), adopted(&b.esp, true)]
    );
    assert!(
        matches!(
            &adoption.sas[2..],
            [
                SaAdoption::Refused {
                    inbound: Spi(0x31),
                    ..
                },
                SaAdoption::Refused {
                    inbound: Spi(0x41),
                    ..
                }
            ]
        ),
        "{:?}",
        adoption.sas
    );
    assert_eq!((adoption.sas_adopted(), adoption.conns_restored()), (2, 1));
    assert_eq!(routing.pairs().len(), 2);
    assert_eq!(target.shadow().len(), 2);

    let (_, mvs4) = topo.image_xcf("MVS4").expect("MVS4");
    assert_eq!(
        adoption.conns,
        [
            ConnAdoption::Restored {
                key: conns[0].0,
                target: "MVS4".into(),
                target_xcf: mvs4,
            },
            ConnAdoption::NotRestored {
                key: conns[1].0,
                target: "MVS1".into(),
                why: NotRestored::TargetFailed,
            },
            ConnAdoption::NotRestored {
                key: conns[2].0,
                target: "NOPE".into(),
                why: NotRestored::NotAnImage,
            },
        ]
    );
    let entry = routing.dct().get(&conns[0].0).expect("restored entry");
    assert_eq!((&*entry.target, entry.target_xcf), ("MVS4", mvs4));
    assert_eq!(routing.dct().len(), 1);
}

/// docs/FAULTS.md: a target whose XCF connection went down (killed, or
/// its XCF link down) is no longer chosen and its connections end in
/// the DCT, journalled as ended; the others stay.
#[test]
fn a_lost_target_ends_its_connections_in_the_dct() {
    let topo = figure4();
    let sas = sa_records_to_adopt().2;
    let mut conns = conns_to_restore();
    let mut on_mvs2 = conns[0].clone();
    on_mvs2.0.client_port = 40009;
    on_mvs2.1.target = "MVS2".into();
    conns.push(on_mvs2.clone());
    let (_, mvs5) = topo.image_xcf("MVS5").expect("MVS5");
    let mut routing = RoutingStack::new("MVS5", mvs5, Default::default(), &[]);
    let mut target = TargetStack::new("MVS5", mvs5);
    Adopter {
        routing: &mut routing,
        target: &mut target,
        me: "MVS5",
        now: Instant::from_millis(1000),
    }
    .adopt(&topo, DVA1, sas, conns.clone(), Some("MVS1"));
    assert_eq!(routing.dct().len(), 2, "MVS4's and MVS2's connections");
    routing.keep_journal();
    assert_eq!(routing.target_down("MVS4"), 1);
    assert!(
        routing.dct().get(&conns[0].0).is_none(),
        "MVS4's entry ended"
    );
    assert!(
        routing.dct().get(&on_mvs2.0).is_some(),
        "MVS2's entry stays"
    );
    assert_eq!(routing.counters().ended_target_down, 1);
    assert_eq!(
        routing.take_journal(),
        [crate::sysplex::routing::DctChange::Ended(conns[0].0)]
    );
    assert_eq!(routing.target_down("MVS4"), 0, "nothing left to end");
}

/// A connection served by the failed stack itself is not continued;
/// one on a live target is, at the target's XCF address of the
/// topology; an unknown target is refused.
#[test]
fn restore_target_skips_the_failed_stack_and_unknown_images() {
    let topo = figure4();
    let rec = |t: &str| ConnRecord {
        target: t.into(),
        target_xcf: Ipv4Addr::new(198, 19, 0, 9),
        ipsec: true,
    };
    let mvs2 = restore_target(&topo, &rec("MVS2"), Some("MVS1")).expect("MVS2");
    assert_eq!(mvs2, ("MVS2", Ipv4Addr::new(198, 19, 0, 2)));
    assert_eq!(
        restore_target(&topo, &rec("MVS1"), Some("MVS1")).err(),
        Some(NotRestored::TargetFailed)
    );
    assert_eq!(
        restore_target(&topo, &rec("MVS9"), None).err(),
        Some(NotRestored::NotAnImage)
    );
    assert!(restore_target(&topo, &rec("MVS1"), None).is_ok());
}

/// A backup claims from the failed holder, or an absent record, by a
/// swap that expects exactly what it read; a record naming a third
/// stack (which took over already) makes no claim.
#[test]
fn claim_request_swaps_only_from_the_failed_holder() {
    let rec = |image: &str| {
        encode(&OwnerRecord {
            image: image.into(),
            takeover: false,
            previous: None,
        })
    };
    let claim = claim_request(DVA1, "MVS5", Some("MVS1"), Some(rec("MVS1")));
    let Some(CfRequest::CompareAndSwap {
        key,
        expected,
        value,
    }) = claim
    else {
        panic!("no claim: {claim:?}");
    };
    assert_eq!(key, owner_key(DVA1).to_string());
    assert_eq!(expected, Some(rec("MVS1")));
    let mine: OwnerRecord = decode(&value).expect("owner record");
    assert_eq!(
        (mine.image.as_str(), mine.takeover, mine.previous.as_deref()),
        ("MVS5", true, Some("MVS1"))
    );
    assert!(claim_request(DVA1, "MVS5", Some("MVS1"), Some(rec("MVS4"))).is_none());
    assert!(claim_request(DVA1, "MVS5", Some("MVS1"), Some(rec("MVS5"))).is_some());
    assert!(claim_request(DVA1, "MVS5", None, None).is_some());
}

#[test]
fn keys_name_the_dvipa_and_the_spi_or_connection() {
    assert_eq!(
        sa_key(DVA1, Protocol::Esp, Spi(0x1001)).to_string(),
        "dvipa/198.18.0.100/sa/esp/0x00001001"
    );
    let c = ConnKey {
        client: Ipv4Addr::new(198, 18, 1, 2),
        client_port: 40000,
        dvipa: DVA1,
        port: 80,
    };
    let k = conn_key(&c).to_string();
    assert_eq!(k, "dvipa/198.18.0.100/conn/198.18.1.2:40000/80");
    assert_eq!(parse_conn_key(&k), Some(c));
    assert!(k.starts_with(&conn_prefix(DVA1).to_string()));
    assert_eq!(parse_conn_key("dvipa/198.18.0.100/owner"), None);
    assert_eq!(parse_conn_key("dvipa/x/conn/1.2.3.4:5/6"), None);
}

#[test]
fn records_round_trip() {
    let r = ConnRecord {
        target: "MVS2".into(),
        target_xcf: Ipv4Addr::new(198, 19, 0, 2),
        ipsec: true,
    };
    assert_eq!(decode::<ConnRecord>(&encode(&r)).unwrap(), r);
    assert!(decode::<OwnerRecord>(&[0xff, 0xff]).is_err());
}

#[test]
fn figure4_backup_of_dva1_is_mvs5_and_the_owner_ranks_first() {
    let c = candidates(&figure4(), DVA1);
    assert_eq!(c, vec![("MVS1".into(), OWNER_RANK), ("MVS5".into(), 100)]);
    assert_eq!(successor(&c, |_| true), Some("MVS1"));
    assert_eq!(successor(&c, |n| n != "MVS1"), Some("MVS5"));
    assert_eq!(successor(&c, |_| false), None);
    let ranks = vec![("A".into(), 50), ("B".into(), 100), ("C".into(), 100)];
    assert_eq!(successor(&ranks, |_| true), Some("B"));
}

#[test]
fn the_backup_takes_over_only_when_the_holder_is_gone() {
    let topo = figure4();
    let mut w = Watch::new(&topo, "MVS5", DVA1, None);
    assert_eq!(w.holder.as_deref(), Some("MVS1"));
    assert_eq!(w.evaluate(|_| true), WatchAction::Nothing);
    assert_eq!(
        w.evaluate(|n| n != "MVS1"),
        WatchAction::Acquire {
            previous: Some("MVS1".into())
        }
    );
    assert!(w.held());
    assert_eq!(w.takeovers, 1);
    // Held: nothing more to do, whoever comes back.
    assert_eq!(w.evaluate(|_| true), WatchAction::Nothing);
    w.announced_by("MVS1");
    assert!(w.held());
}

#[test]
fn a_restarted_owner_defers_to_the_live_holder_and_takes_over_when_it_fails() {
    let topo = figure4();
    let mut w = Watch::new(&topo, "MVS1", DVA1, Some("MVS5".into()));
    assert!(!w.held());
    assert_eq!(w.evaluate(|_| true), WatchAction::Nothing);
    assert_eq!(
        w.evaluate(|n| n != "MVS5"),
        WatchAction::Acquire {
            previous: Some("MVS5".into())
        }
    );
    // A backup does not take it while a higher-ranked one is live.
    let mut b = Watch::new(&topo, "MVS5", DVA1, Some("MVSX".into()));
    assert_eq!(b.evaluate(|n| n != "MVSX"), WatchAction::Nothing);
    assert_eq!(b.holder.as_deref(), Some("MVSX"));
}
