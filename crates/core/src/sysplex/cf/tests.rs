//! Coupling facility tests: sequence-number structures (Fig. 6 block 116,
//! Fig. 10 block 162), the key-value store and its compare-and-swap.

use super::*;
use crate::ipsec::sa::{Protocol, Spi};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn key(spi: u32) -> SeqKey {
    SeqKey {
        dvipa: Ipv4Addr::new(198, 18, 0, 100),
        protocol: Protocol::Esp,
        spi: Spi(spi),
    }
}

fn create(cf: &mut CouplingFacility, spi: u32, start: u64) -> CfResponse {
    cf.handle(CfRequest::CreateSeq {
        key: key(spi),
        start,
    })
}

fn fetch(cf: &mut CouplingFacility, spi: u32, n: u32) -> CfResponse {
    cf.handle(CfRequest::FetchAdd { key: key(spi), n })
}

/// Of two claimants that read the same owner record, the first swap
/// wins and the second is told what the key holds now; a claim on an
/// absent key needs `expected: None`.
#[test]
fn compare_and_swap_lets_exactly_one_claimant_win() {
    let mut cf = CouplingFacility::new();
    let cas = |cf: &mut CouplingFacility, expected: Option<&[u8]>, value: &[u8]| {
        cf.handle(CfRequest::CompareAndSwap {
            key: "dvipa/198.18.0.100/owner".into(),
            expected: expected.map(<[u8]>::to_vec),
            value: value.to_vec(),
        })
    };
    assert_eq!(cas(&mut cf, None, b"MVS1"), CfResponse::Done);
    assert_eq!(
        cas(&mut cf, None, b"MVS9"),
        CfResponse::Error(CfError::Conflict(Some(b"MVS1".to_vec())))
    );
    assert_eq!(cas(&mut cf, Some(b"MVS1"), b"MVS5"), CfResponse::Done);
    assert_eq!(
        cas(&mut cf, Some(b"MVS1"), b"MVS4"),
        CfResponse::Error(CfError::Conflict(Some(b"MVS5".to_vec())))
    );
    let get = cf.handle(CfRequest::Get {
        key: "dvipa/198.18.0.100/owner".into(),
    });
    assert_eq!(get, CfResponse::Value(Some(b"MVS5".to_vec())));
    assert_eq!(cf.counters().requests.compare_and_swap, 4);
    assert_eq!(cf.counters().errors.conflict, 2);
}

#[test]
fn create_then_fetch_add_hands_out_consecutive_ranges() {
    let mut cf = CouplingFacility::new();
    assert_eq!(create(&mut cf, 0x100, 1), CfResponse::Done);
    assert_eq!(
        fetch(&mut cf, 0x100, 1),
        CfResponse::SeqRange { first: 1, n: 1 }
    );
    assert_eq!(
        fetch(&mut cf, 0x100, 10),
        CfResponse::SeqRange { first: 2, n: 10 }
    );
    assert_eq!(
        fetch(&mut cf, 0x100, 3),
        CfResponse::SeqRange { first: 12, n: 3 }
    );
    let c = cf.counters();
    assert_eq!(c.requests.create_seq, 1);
    assert_eq!(c.requests.fetch_add, 3);
    assert_eq!(c.numbers_handed_out, 14);
    let st = cf.status();
    assert_eq!(st.sequences.len(), 1);
    assert_eq!(st.sequences[0].next, Some(15));
    assert_eq!(st.sequences[0].fetches, 3);
}

#[test]
fn start_comes_from_the_sa() {
    // Fig. 6 block 116: an SA that already sent 41 packets.
    let mut cf = CouplingFacility::new();
    create(&mut cf, 7, 42);
    assert_eq!(
        fetch(&mut cf, 7, 5),
        CfResponse::SeqRange { first: 42, n: 5 }
    );
}

#[test]
fn structures_are_independent() {
    let mut cf = CouplingFacility::new();
    create(&mut cf, 1, 1);
    create(&mut cf, 2, 100);
    assert_eq!(
        fetch(&mut cf, 1, 4),
        CfResponse::SeqRange { first: 1, n: 4 }
    );
    assert_eq!(
        fetch(&mut cf, 2, 4),
        CfResponse::SeqRange { first: 100, n: 4 }
    );
    assert_eq!(
        fetch(&mut cf, 1, 1),
        CfResponse::SeqRange { first: 5, n: 1 }
    );
    let mut ah = key(1);
    ah.protocol = Protocol::Ah;
    assert_eq!(
        cf.handle(CfRequest::FetchAdd { key: ah, n: 1 }),
        CfResponse::Error(CfError::UnknownSeq(ah))
    );
}

#[test]
fn create_twice_is_refused() {
    let mut cf = CouplingFacility::new();
    create(&mut cf, 1, 1);
    fetch(&mut cf, 1, 9);
    assert_eq!(
        create(&mut cf, 1, 1),
        CfResponse::Error(CfError::SeqExists(key(1)))
    );
    // The existing structure is untouched.
    assert_eq!(
        fetch(&mut cf, 1, 1),
        CfResponse::SeqRange { first: 10, n: 1 }
    );
    assert_eq!(cf.counters().errors.seq_exists, 1);
}

#[test]
fn malformed_creates_and_fetches() {
    let mut cf = CouplingFacility::new();
    assert!(matches!(
        create(&mut cf, 1, 0),
        CfResponse::Error(CfError::Malformed(_))
    ));
    assert!(matches!(
        create(&mut cf, 1, SEQ_LAST_32 + 1),
        CfResponse::Error(CfError::Malformed(_))
    ));
    assert!(matches!(
        cf.handle(CfRequest::CreateSeqLimit {
            key: key(1),
            start: 10,
            last: 9
        }),
        CfResponse::Error(CfError::Malformed(_))
    ));
    create(&mut cf, 1, 1);
    assert!(matches!(
        fetch(&mut cf, 1, 0),
        CfResponse::Error(CfError::Malformed(_))
    ));
    assert_eq!(cf.counters().errors.malformed, 4);
    assert_eq!(
        fetch(&mut cf, 1, 1),
        CfResponse::SeqRange { first: 1, n: 1 }
    );
}

#[test]
fn fetch_add_on_unknown_or_deleted_structure() {
    let mut cf = CouplingFacility::new();
    assert_eq!(
        fetch(&mut cf, 9, 1),
        CfResponse::Error(CfError::UnknownSeq(key(9)))
    );
    create(&mut cf, 9, 1);
    assert_eq!(
        cf.handle(CfRequest::DeleteSeq { key: key(9) }),
        CfResponse::Done
    );
    assert_eq!(
        fetch(&mut cf, 9, 1),
        CfResponse::Error(CfError::UnknownSeq(key(9)))
    );
    assert_eq!(
        cf.handle(CfRequest::DeleteSeq { key: key(9) }),
        CfResponse::Error(CfError::UnknownSeq(key(9)))
    );
    assert_eq!(cf.counters().errors.unknown_seq, 3);
    assert_eq!(cf.counters().requests.delete_seq, 2);
    // A deleted structure can be created again (rekey with the same SPI).
    assert_eq!(create(&mut cf, 9, 1), CfResponse::Done);
}

#[test]
fn thirty_two_bit_numbers_never_wrap() {
    let mut cf = CouplingFacility::new();
    create(&mut cf, 1, SEQ_LAST_32 - 9);
    // Ten left: asking for eleven takes none of them.
    assert_eq!(
        fetch(&mut cf, 1, 11),
        CfResponse::Error(CfError::SeqExhausted(key(1)))
    );
    assert_eq!(
        fetch(&mut cf, 1, 9),
        CfResponse::SeqRange {
            first: SEQ_LAST_32 - 9,
            n: 9
        }
    );
    assert_eq!(
        fetch(&mut cf, 1, 1),
        CfResponse::SeqRange {
            first: SEQ_LAST_32,
            n: 1
        }
    );
    assert_eq!(
        fetch(&mut cf, 1, 1),
        CfResponse::Error(CfError::SeqExhausted(key(1)))
    );
    assert_eq!(cf.counters().errors.seq_exhausted, 2);
    assert_eq!(cf.status().sequences[0].next, None);
}

#[test]
fn sixty_four_bit_structure_reaches_u64_max() {
    let mut cf = CouplingFacility::new();
    cf.handle(CfRequest::CreateSeqLimit {
        key: key(1),
        start: SEQ_LAST_64 - u64::from(u32::MAX),
        last: SEQ_LAST_64,
    });
    assert_eq!(
        fetch(&mut cf, 1, u32::MAX),
        CfResponse::SeqRange {
            first: SEQ_LAST_64 - u64::from(u32::MAX),
            n: u32::MAX
        }
    );
    assert_eq!(
        fetch(&mut cf, 1, 1),
        CfResponse::SeqRange {
            first: SEQ_LAST_64,
            n: 1
        }
    );
    assert_eq!(
        fetch(&mut cf, 1, 1),
        CfResponse::Error(CfError::SeqExhausted(key(1)))
    );
}

#[test]
fn key_value_put_get_delete_list() {
    let mut cf = CouplingFacility::new();
    let put = |k: &str, v: &[u8]| CfRequest::Put {
        key: k.into(),
        value: v.to_vec(),
    };
    assert_eq!(cf.handle(put("dct/DVA1/1", b"a")), CfResponse::Done);
    assert_eq!(cf.handle(put("dct/DVA1/2", b"bb")), CfResponse::Done);
    assert_eq!(cf.handle(put("dct/DVA2/1", b"c")), CfResponse::Done);
    assert_eq!(cf.handle(put("sa/1", b"")), CfResponse::Done);
    assert_eq!(cf.handle(put("dct/DVA1/2", b"xyz")), CfResponse::Done);
    assert_eq!(
        cf.handle(CfRequest::Get {
            key: "dct/DVA1/2".into()
        }),
        CfResponse::Value(Some(b"xyz".to_vec()))
    );
    assert_eq!(
        cf.handle(CfRequest::Get { key: "nope".into() }),
        CfResponse::Value(None)
    );
    assert_eq!(
        cf.handle(CfRequest::List {
            prefix: "dct/DVA1/".into()
        }),
        CfResponse::Keys(vec!["dct/DVA1/1".into(), "dct/DVA1/2".into()])
    );
    assert_eq!(
        cf.handle(CfRequest::List { prefix: "".into() }),
        CfResponse::Keys(vec![
            "dct/DVA1/1".into(),
            "dct/DVA1/2".into(),
            "dct/DVA2/1".into(),
            "sa/1".into()
        ])
    );
    assert_eq!(
        cf.handle(CfRequest::Delete {
            key: "dct/DVA1/1".into()
        }),
        CfResponse::Done
    );
    assert_eq!(
        cf.handle(CfRequest::Delete {
            key: "dct/DVA1/1".into()
        }),
        CfResponse::Done,
        "deleting a missing key is not an error"
    );
    let st = cf.status();
    assert_eq!(st.kv_entries, 3);
    assert_eq!(
        st.kv_bytes,
        "dct/DVA1/2".len() + 3 + "dct/DVA2/1".len() + 1 + 4
    );
    let r = st.counters.requests;
    assert_eq!((r.put, r.get, r.delete, r.list), (5, 2, 2, 2));
}

#[test]
fn malformed_keys() {
    let mut cf = CouplingFacility::new();
    let long = "k".repeat(MAX_KEY_LEN + 1);
    for req in [
        CfRequest::Put {
            key: String::new(),
            value: vec![1],
        },
        CfRequest::Get { key: long.clone() },
        CfRequest::Delete { key: String::new() },
        CfRequest::List { prefix: long },
    ] {
        assert!(matches!(
            cf.handle(req),
            CfResponse::Error(CfError::Malformed(_))
        ));
    }
    assert_eq!(cf.counters().errors.malformed, 4);
    assert_eq!(cf.status().kv_entries, 0);
}

#[test]
fn status_serializes() {
    let mut cf = CouplingFacility::new();
    create(&mut cf, 2, 1);
    create(&mut cf, 1, 1);
    let json = serde_json::to_value(cf.status()).unwrap();
    assert_eq!(json["counters"]["requests"]["create_seq"], 2);
    assert_eq!(json["sequences"][0]["key"]["spi"], 1);
    assert_eq!(json["sequences"][1]["next"], 1);
}

proptest! {
    /// Several clients interleave fetch-and-adds of any size: the ranges
    /// never overlap and together cover start.. without a gap.
    #[test]
    fn interleaved_fetch_adds_cover_the_space(
        start in 1u64..1_000_000,
        ops in prop::collection::vec((0usize..5, 1u32..1000), 1..300),
    ) {
        let mut cf = CouplingFacility::new();
        create(&mut cf, 1, start);
        let mut per_client: Vec<Vec<(u64, u32)>> = vec![Vec::new(); 5];
        for (client, n) in ops {
            match fetch(&mut cf, 1, n) {
                CfResponse::SeqRange { first, n: got } => {
                    prop_assert_eq!(got, n);
                    per_client[client].push((first, got));
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        let mut all: Vec<(u64, u32)> = per_client.into_iter().flatten().collect();
        all.sort_unstable();
        let mut expect = start;
        for (first, n) in all {
            prop_assert_eq!(first, expect);
            expect = first + u64::from(n);
        }
        prop_assert_eq!(cf.counters().numbers_handed_out, expect - start);
    }

    /// Near the 32-bit limit no range ever passes 2^32 - 1.
    #[test]
    fn never_past_the_limit(
        left in 1u64..5000,
        ns in prop::collection::vec(1u32..200, 1..100),
    ) {
        let mut cf = CouplingFacility::new();
        create(&mut cf, 1, SEQ_LAST_32 - left + 1);
        let mut taken = 0u64;
        for n in ns {
            match fetch(&mut cf, 1, n) {
                CfResponse::SeqRange { first, n } => {
                    prop_assert!(first + u64::from(n) - 1 <= SEQ_LAST_32);
                    taken += u64::from(n);
                }
                CfResponse::Error(CfError::SeqExhausted(_)) => {
                    prop_assert!(u64::from(n) > left - taken);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert!(taken <= left);
    }
}

fn put(cf: &mut CouplingFacility, who: &str, key: &str, len: usize) -> CfResponse {
    cf.handle_from(
        who,
        CfRequest::Put {
            key: key.into(),
            value: vec![0; len],
        },
    )
}

/// Each image has its own share: MVS9 filling its own is refused with a
/// clear error and counted, while MVS1 still writes, and a delete gives
/// the share back.
#[test]
fn a_full_share_refuses_that_image_only() {
    let mut cf = CouplingFacility::with_limits(CfLimits {
        max_entries: 2,
        max_bytes: 100,
        max_structures: 1,
    });
    assert_eq!(put(&mut cf, "MVS9", "a", 10), CfResponse::Done);
    assert_eq!(put(&mut cf, "MVS9", "b", 10), CfResponse::Done);
    let refused = put(&mut cf, "MVS9", "c", 10);
    assert!(
        matches!(&refused, CfResponse::Error(CfError::QuotaExceeded(m)) if m.contains("MVS9")),
        "{refused:?}"
    );
    assert_eq!(put(&mut cf, "MVS1", "c", 10), CfResponse::Done);
    // A rewrite that grows past the byte share is refused; the value stays.
    let grown = put(&mut cf, "MVS9", "a", 200);
    assert!(matches!(
        grown,
        CfResponse::Error(CfError::QuotaExceeded(_))
    ));
    let a = cf.handle(CfRequest::Get { key: "a".into() });
    assert_eq!(a, CfResponse::Value(Some(vec![0; 10])));
    cf.handle_from("MVS9", CfRequest::Delete { key: "b".into() });
    assert_eq!(put(&mut cf, "MVS9", "d", 10), CfResponse::Done);
    let st = cf.status();
    assert_eq!(st.counters.errors.quota_exceeded, 2);
    assert_eq!(st.connectors["MVS9"].quota_refused, 2);
    assert_eq!(
        (
            st.connectors["MVS9"].kv_entries,
            st.connectors["MVS9"].kv_bytes
        ),
        (2, 22)
    );
    assert_eq!(st.kv_bytes, 33);
}

#[test]
fn sequence_structures_count_against_their_creator() {
    let mut cf = CouplingFacility::with_limits(CfLimits {
        max_entries: 16,
        max_bytes: 4096,
        max_structures: 1,
    });
    let create = |cf: &mut CouplingFacility, who: &str, spi| {
        cf.handle_from(
            who,
            CfRequest::CreateSeq {
                key: key(spi),
                start: 1,
            },
        )
    };
    assert_eq!(create(&mut cf, "MVS1", 1), CfResponse::Done);
    assert!(matches!(
        create(&mut cf, "MVS1", 2),
        CfResponse::Error(CfError::QuotaExceeded(_))
    ));
    assert_eq!(create(&mut cf, "MVS5", 2), CfResponse::Done);
    cf.handle(CfRequest::DeleteSeq { key: key(1) });
    assert_eq!(create(&mut cf, "MVS1", 3), CfResponse::Done);
}
