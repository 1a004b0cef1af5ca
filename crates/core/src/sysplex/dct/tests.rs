use super::*;

fn key(p: u16) -> ConnKey {
    ConnKey {
        client: Ipv4Addr::new(198, 18, 1, 2),
        client_port: p,
        dvipa: Ipv4Addr::new(198, 18, 0, 100),
        port: 80,
    }
}

fn entry(state: ConnState, target: &str, ms: u64) -> ConnEntry {
    ConnEntry {
        target: target.into(),
        target_xcf: Ipv4Addr::new(198, 19, 0, 1),
        state,
        created: Instant::from_millis(ms),
        last_seen: Instant::from_millis(ms),
        packets: 1,
        bytes: 60,
        ipsec: true,
    }
}

fn bounded(max_entries: u32) -> Dct {
    Dct::with_limits(
        0,
        DctLimits {
            max_entries,
            syn_pressure_ms: 1_000,
        },
    )
}

/// What the table's incremental counts must equal: a full count.
fn counted(dct: &Dct, dvipa: Ipv4Addr) -> HashMap<String, u32> {
    let mut m = HashMap::new();
    for (k, e) in dct.sorted() {
        if k.dvipa == dvipa && e.state != ConnState::Closing {
            *m.entry(e.target.to_string()).or_default() += 1;
        }
    }
    m
}

#[test]
fn entries_expire_by_state() {
    let mut dct = Dct::default();
    dct.insert(key(1), entry(ConnState::SynSeen, "A", 0));
    dct.insert(key(2), entry(ConnState::Established, "A", 0));
    dct.insert(key(3), entry(ConnState::Closing, "A", 0));
    let t = DctTimeouts::default();
    assert_eq!(
        dct.next_expiry(&t),
        Some(Instant::from_millis(t.closing_ms))
    );
    let gone: Vec<u16> = dct
        .expire(Instant::from_millis(t.syn_ms), &t)
        .iter()
        .map(|(k, _)| k.client_port)
        .collect();
    assert_eq!(gone, [1, 3], "closing and syn entries gone");
    assert_eq!(dct.len(), 1);
    assert_eq!(dct.active_by_target(key(0).dvipa)["A"], 1);
    assert_eq!(dct.counters().half_open_expired, 1);
}

#[test]
fn a_full_table_evicts_the_oldest_half_open_entry_first() {
    let mut dct = bounded(4);
    dct.insert(key(1), entry(ConnState::Established, "A", 0));
    dct.insert(key(2), entry(ConnState::SynSeen, "A", 20));
    dct.insert(key(3), entry(ConnState::SynSeen, "B", 10));
    dct.insert(key(4), entry(ConnState::Established, "B", 30));
    assert_eq!(dct.make_room(), Ok(Some(key(3))), "the oldest half-open");
    dct.insert(key(5), entry(ConnState::SynSeen, "A", 40));
    assert_eq!(dct.make_room(), Ok(Some(key(2))));
    dct.insert(key(6), entry(ConnState::SynSeen, "A", 50));
    assert_eq!(dct.counters().half_open_evicted, 2);
    assert_eq!(dct.counters().peak, 4);
    assert!(dct.get(&key(1)).is_some() && dct.get(&key(4)).is_some());
    assert_eq!(dct.active_for(key(0).dvipa), &counted(&dct, key(0).dvipa));
}

#[test]
fn a_table_full_of_established_entries_refuses_the_syn_and_keeps_them() {
    let mut dct = bounded(3);
    for p in 1..=3 {
        dct.insert(key(p), entry(ConnState::Established, "A", 0));
    }
    assert_eq!(dct.make_room(), Err(DctFull));
    assert_eq!(dct.make_room(), Err(DctFull));
    assert_eq!(dct.counters().full, 2);
    assert_eq!(dct.len(), 3, "no established entry lost");
    assert_eq!(dct.half_open(), 0);
}

#[test]
fn the_half_open_timeout_shrinks_as_the_table_fills() {
    let t = DctTimeouts::default();
    let mut dct = bounded(100);
    let syn_after = |dct: &mut Dct, n: u16| {
        while dct.len() < usize::from(n) {
            let p = dct.len() as u16 + 1;
            dct.insert(key(p), entry(ConnState::SynSeen, "A", 0));
        }
        dct.syn_limit(&t).as_millis() as u64
    };
    assert_eq!(syn_after(&mut dct, 50), t.syn_ms, "up to half full");
    assert_eq!(syn_after(&mut dct, 75), 5_500, "half way to full");
    assert_eq!(syn_after(&mut dct, 100), 1_000, "full");
    let gone = dct.expire(Instant::from_millis(1_000), &t);
    assert_eq!(
        gone.len(),
        100,
        "a full table's half-open entries go after 1 s"
    );
}

#[test]
fn touches_move_the_counts_and_the_half_open_order() {
    let dvipa = key(0).dvipa;
    let mut dct = bounded(8);
    dct.insert(key(1), entry(ConnState::SynSeen, "A", 0));
    dct.insert(key(2), entry(ConnState::SynSeen, "B", 5));
    // A retransmitted SYN makes key 1 the younger half-open entry.
    dct.touch(Instant::from_millis(10), &key(1), TcpFlags::SYN, 60);
    let ack = TcpFlags::ACK;
    dct.touch(Instant::from_millis(11), &key(2), ack, 52);
    assert_eq!(dct.half_open(), 1, "key 2 is established");
    dct.touch(Instant::from_millis(12), &key(2), TcpFlags::FIN | ack, 52);
    assert_eq!(dct.active_for(dvipa), &counted(&dct, dvipa));
    assert_eq!(
        dct.active_for(dvipa).get("B"),
        None,
        "closing is not active"
    );
    dct.remove(&key(1));
    assert!(dct.active_for(dvipa).is_empty());
    assert_eq!(dct.half_open(), 0);
    assert!(dct
        .touch(Instant::from_millis(13), &key(9), ack, 52)
        .is_none());
}

#[test]
fn clear_half_open_entries_make_room_before_those_under_an_sa() {
    let mut dct = bounded(3);
    let mut under_sa = entry(ConnState::SynSeen, "A", 0);
    under_sa.ipsec = true;
    dct.insert(key(1), under_sa);
    let clear = |ms| ConnEntry {
        ipsec: false,
        ..entry(ConnState::SynSeen, "A", ms)
    };
    dct.insert(key(2), clear(10));
    dct.insert(key(3), clear(20));
    assert_eq!(dct.make_room(), Ok(Some(key(2))), "the oldest clear one");
    dct.insert(key(4), clear(30));
    assert_eq!(dct.make_room(), Ok(Some(key(3))));
    dct.insert(key(5), clear(40));
    assert_eq!(dct.make_room(), Ok(Some(key(4))));
    assert!(
        dct.get(&key(1)).is_some(),
        "the SA's SYN outlived three clear ones"
    );
}
