//! Per-SA counters: packets, bytes (the "lifesize" targets report back to
//! the routing stack) and drops by reason.

use serde::{Deserialize, Serialize};

/// Why an inbound packet was dropped. [`DropReason::as_str`] names are
/// stable: displays, JSON and tests use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// No SA for the SPI (RFC 4303 §3.4.2).
    UnknownSpi,
    /// Shorter than its headers, IV and ICV need.
    Truncated,
    /// A field is impossible: bad lengths, ciphertext not a multiple of the
    /// block size, an inner packet that does not parse.
    Malformed,
    /// The ICV does not verify (RFC 4303 §3.4.4).
    IcvMismatch,
    /// Already received (RFC 4303 §3.4.3).
    Replayed,
    /// Left of the replay window (RFC 4303 §3.4.3).
    TooOld,
    /// The padding is not 1, 2, 3, … (RFC 4303 §2.4).
    BadPadding,
    /// Next Header does not fit the SA: not an IP packet in tunnel mode,
    /// or the inner header disagrees.
    NextHeaderMismatch,
    /// The decrypted packet is not traffic this SA may carry (RFC 4301
    /// §5.2 step 4).
    SelectorMismatch,
    /// A dummy packet, Next Header 59 (RFC 4303 §2.6): dropped silently.
    Dummy,
    /// The SA's hard lifetime has passed (RFC 4301 §4.4.2.1).
    SaExpired,
    /// An IP fragment: reassemble before IPsec (RFC 4303 §3.4.1).
    Fragment,
    /// Not supported yet (IPv6).
    Unsupported,
}

impl DropReason {
    /// Every reason, in display order.
    pub const ALL: [DropReason; 13] = [
        DropReason::UnknownSpi,
        DropReason::Truncated,
        DropReason::Malformed,
        DropReason::IcvMismatch,
        DropReason::Replayed,
        DropReason::TooOld,
        DropReason::BadPadding,
        DropReason::NextHeaderMismatch,
        DropReason::SelectorMismatch,
        DropReason::Dummy,
        DropReason::SaExpired,
        DropReason::Fragment,
        DropReason::Unsupported,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownSpi => "unknown-spi",
            DropReason::Truncated => "truncated",
            DropReason::Malformed => "malformed",
            DropReason::IcvMismatch => "icv-mismatch",
            DropReason::Replayed => "replayed",
            DropReason::TooOld => "too-old",
            DropReason::BadPadding => "bad-padding",
            DropReason::NextHeaderMismatch => "next-header-mismatch",
            DropReason::SelectorMismatch => "selector-mismatch",
            DropReason::Dummy => "dummy",
            DropReason::SaExpired => "sa-expired",
            DropReason::Fragment => "fragment",
            DropReason::Unsupported => "unsupported",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A count per drop reason. Serializes as a map from the stable names to
/// counts, every reason present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounters {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounters {
    /// Counts one drop.
    pub fn record(&mut self, reason: DropReason) {
        self.counts[reason.index()] += 1;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()]
    }

    /// Every drop.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (reason, count) pairs in display order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }

    /// Adds another set of counters (batches from targets).
    pub fn add(&mut self, other: &DropCounters) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }
}

impl Serialize for DropCounters {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.counts.len()))?;
        for (reason, count) in self.iter() {
            map.serialize_entry(reason.as_str(), &count)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for DropCounters {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<DropCounters, D::Error> {
        let map = std::collections::BTreeMap::<DropReason, u64>::deserialize(deserializer)?;
        let mut counters = DropCounters::default();
        for (reason, count) in map {
            counters.counts[reason.index()] = count;
        }
        Ok(counters)
    }
}

/// Counters of one SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SaCounters {
    /// Packets sealed or opened successfully.
    pub packets: u64,
    /// Protected bytes (inner packet or transport payload) of those packets.
    pub bytes: u64,
    /// Drops by reason.
    pub drops: DropCounters,
}

impl SaCounters {
    /// Counts one packet of `bytes` protected bytes.
    pub fn record_packet(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexed() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn serialize_as_named_map() {
        let mut c = SaCounters::default();
        c.record_packet(100);
        c.drops.record(DropReason::IcvMismatch);
        c.drops.record(DropReason::IcvMismatch);
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(json["bytes"], 100);
        assert_eq!(json["drops"]["icv-mismatch"], 2);
        assert_eq!(json["drops"]["unknown-spi"], 0);
        let back: SaCounters = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.drops.total(), 2);
    }
}
