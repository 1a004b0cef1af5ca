//! The kernel's IPv4 neighbour (ARP) table: one table for every network
//! namespace of the host, bounded by `net.ipv4.neigh.default.gc_thresh3`.
//! When it is full the kernel drops every packet that needs a new entry
//! and counts it only here (`table_fulls`); `plexnet status` shows these
//! counters so such a loss has a name (docs/ARCHITECTURE.md: the XCF and
//! CF links use permanent entries, which the limit does not count).

use serde::Serialize;

/// `/proc/net/stat/arp_cache` (summed over CPUs) and the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NeighbourTable {
    /// Entries now (every namespace), and the hard limit `gc_thresh3`.
    pub entries: u64,
    pub gc_thresh3: u64,
    /// Entries the kernel could not create because the table was full:
    /// each dropped the packet that needed it.
    pub table_fulls: u64,
    /// Packets dropped while their neighbour was being resolved (the
    /// queue of an unresolved entry overflowed, or resolution failed).
    pub unresolved_discards: u64,
    /// Resolutions that failed.
    pub res_failed: u64,
}

impl NeighbourTable {
    /// The host's table now; `None` where /proc does not tell.
    pub fn read() -> Option<NeighbourTable> {
        let stat = std::fs::read_to_string("/proc/net/stat/arp_cache").ok()?;
        let thresh = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut t = parse_stat(&stat)?;
        t.gc_thresh3 = thresh;
        Some(t)
    }
}

/// Parses `/proc/net/stat/arp_cache`: a header, then one line of hex
/// counters per CPU (`entries` is the table's, the same on every line).
fn parse_stat(text: &str) -> Option<NeighbourTable> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (entries, fulls, discards, failed) = (
        col("entries")?,
        col("table_fulls")?,
        col("unresolved_discards")?,
        col("res_failed")?,
    );
    let mut t = NeighbourTable::default();
    for line in lines {
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|x| u64::from_str_radix(x, 16).unwrap_or(0))
            .collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        t.entries = at(entries);
        t.table_fulls += at(fulls);
        t.unresolved_discards += at(discards);
        t.res_failed += at(failed);
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_cpus_and_keeps_entries() {
        let text = "entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls\n\
            00000407 00002601 00002618 00000005   000070f4 00001477 00000070   00000000         00000000         0000065c         000028e3       00000002            0000286d\n\
            00000407 00002521 0000250a 00000003   000073e2 00001354 00000029   00000000         00000000         00000000         00003169       00000001            000030eb\n";
        let t = parse_stat(text).expect("parses");
        assert_eq!(t.entries, 0x407);
        assert_eq!(t.table_fulls, 0x286d + 0x30eb);
        assert_eq!(t.unresolved_discards, 3);
        assert_eq!(t.res_failed, 0x70 + 0x29);
    }

    #[test]
    fn a_header_without_the_columns_gives_none() {
        assert_eq!(parse_stat("entries allocs\n00000001 00000002\n"), None);
    }
}
