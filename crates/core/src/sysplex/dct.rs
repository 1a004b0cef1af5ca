//! The distributed connection table (DCT, z/OS's VCRT) and the choice of a
//! target for a new connection by the VIPADISTRIBUTE DISTMETHOD
//! ([`distribution`]).
//!
//! Any host can send a SYN to a DVIPA, so the table is bounded
//! ([`DctLimits`]): when it is full, the oldest half-open entry (a SYN
//! never followed by the client's ACK) makes room for the new one, and the
//! half-open timeout shrinks as the table fills (z/OS's IDS answers a SYN
//! flood the same way: it ages half-open connections faster, message
//! EZZ8650I "SYN flood start"). An established entry is never evicted
//! for a new one; a SYN that finds the table full of established entries
//! is refused and counted. The work per SYN does not grow with the table:
//! the active connections per target are kept as entries come and go, and
//! the half-open entries are ordered by age.

use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::time::Instant;
use crate::wire::TcpFlags;
use std::time::Duration;

mod distribution;

pub use distribution::{Distribution, Listeners, DEFAULT_WEIGHT};

/// A TCP connection to a DVIPA, as the routing stack sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ConnKey {
    pub client: Ipv4Addr,
    pub client_port: u16,
    pub dvipa: Ipv4Addr,
    pub port: u16,
}

/// What the routing stack has seen of a connection (from peeked TCP flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnState {
    /// Created by a SYN the routing stack could not authenticate; the
    /// target may still reject it (ConnEnded::Rejected).
    SynSeen,
    Established,
    /// FIN or RST seen: kept briefly so the last segments still reach the target.
    Closing,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnEntry {
    /// Shared, not copied: every forwarded packet names it.
    pub target: Arc<str>,
    pub target_xcf: Ipv4Addr,
    pub state: ConnState,
    /// When the entry was made (shown in milliseconds, as `created_ms`).
    #[serde(
        rename = "created_ms",
        serialize_with = "crate::time::serialize_millis"
    )]
    pub created: Instant,
    /// The last packet of the connection (`last_seen_ms`).
    #[serde(
        rename = "last_seen_ms",
        serialize_with = "crate::time::serialize_millis"
    )]
    pub last_seen: Instant,
    pub packets: u64,
    pub bytes: u64,
    /// Whether the connection arrives under IPsec (an SA of the DVIPA).
    pub ipsec: bool,
}

/// How long entries live without traffic (milliseconds).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DctTimeouts {
    /// An entry made by a SYN and never followed by another packet.
    pub syn_ms: u64,
    pub idle_ms: u64,
    /// After FIN or RST.
    pub closing_ms: u64,
}

impl DctTimeouts {
    /// How long an entry in `state` lives without traffic.
    fn limit(&self, state: ConnState) -> Duration {
        Duration::from_millis(match state {
            ConnState::SynSeen => self.syn_ms,
            ConnState::Established => self.idle_ms,
            ConnState::Closing => self.closing_ms,
        })
    }
}

impl Default for DctTimeouts {
    fn default() -> Self {
        Self {
            syn_ms: 10_000,
            idle_ms: 300_000,
            closing_ms: 5_000,
        }
    }
}

/// The DCT's bounds (the topology's `[limits]`, `dct_max_entries` and
/// `half_open_pressure_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DctLimits {
    /// Entries at most: established, half-open and closing together.
    pub max_entries: u32,
    /// The half-open timeout once the table is full: from half full to
    /// full it falls linearly from [`DctTimeouts::syn_ms`] to this.
    pub syn_pressure_ms: u64,
}

impl Default for DctLimits {
    /// 65 536 entries (about 10 MB of table), half-open entries aged out
    /// within 1 s once it is full.
    fn default() -> Self {
        Self {
            max_entries: 65_536,
            syn_pressure_ms: 1_000,
        }
    }
}

/// What the bounds did, for `netstat vcrt` and `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DctCounters {
    /// SYNs refused because the table was full and none of its entries
    /// was half-open (also counted as the drop `dct-full`).
    pub full: u64,
    /// Half-open entries removed, oldest first, to make room for a SYN.
    pub half_open_evicted: u64,
    /// Half-open entries that timed out.
    pub half_open_expired: u64,
    /// The most entries held at once.
    pub peak: u64,
}

/// The table is full of entries that are not half-open: a new SYN is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DctFull;

#[derive(Debug, Clone)]
pub struct Dct {
    /// Looked up for every routed packet: ahash, with a seed the caller
    /// injects ([`Dct::with_seed`]). Nothing leaves the table in the map's
    /// order: expiry and displays come out sorted by key, so the same
    /// input gives the same trace whatever the seed.
    entries: HashMap<ConnKey, ConnEntry, ahash::RandomState>,
    /// Entries not closing, per DVIPA and target: what WEIGHTEDACTIVE and
    /// BASEWLM read for every SYN, kept up to date as entries come, change
    /// state and go, so a SYN never counts the table.
    active: HashMap<Ipv4Addr, HashMap<String, u32>>,
    /// The half-open (SynSeen) entries by their last packet, oldest first
    /// (the first to evict and to expire): `[0]` those that came in clear,
    /// `[1]` those under an SA of the DVIPA. A spoofed SYN in clear costs
    /// nothing to send; one under an SA needs its SPI and the client's
    /// address, so clear half-open entries make room first.
    half_open: [BTreeSet<(Instant, ConnKey)>; 2],
    limits: DctLimits,
    counters: DctCounters,
    /// What [`Dct::active_for`] lends for a DVIPA without connections.
    no_active: HashMap<String, u32>,
}

impl Default for Dct {
    /// A table with seed 0: reproducible, for the simulator and tests.
    fn default() -> Self {
        Dct::with_seed(0)
    }
}

impl Dct {
    /// An empty table with the default limits whose hasher is keyed by
    /// `seed`: the I/O shell passes a random one (chosen keys cannot flood
    /// one bucket), the simulator and tests a fixed one.
    pub fn with_seed(seed: u64) -> Self {
        Dct::with_limits(seed, DctLimits::default())
    }

    /// An empty table bounded by `limits`.
    pub fn with_limits(seed: u64, limits: DctLimits) -> Self {
        let hasher = ahash::RandomState::with_seeds(seed, !seed, seed.rotate_left(32), 0);
        Dct {
            entries: HashMap::with_hasher(hasher),
            active: HashMap::new(),
            half_open: [BTreeSet::new(), BTreeSet::new()],
            limits,
            counters: DctCounters::default(),
            no_active: HashMap::new(),
        }
    }
    pub fn get(&self, key: &ConnKey) -> Option<&ConnEntry> {
        self.entries.get(key)
    }
    /// Adds (or replaces) an entry. Room is [`Dct::make_room`]'s to make.
    pub fn insert(&mut self, key: ConnKey, entry: ConnEntry) {
        self.remove(&key);
        self.index(key, &entry);
        self.entries.insert(key, entry);
        self.counters.peak = self.counters.peak.max(self.entries.len() as u64);
    }
    pub fn remove(&mut self, key: &ConnKey) -> Option<ConnEntry> {
        let e = self.entries.remove(key)?;
        self.unindex(*key, &e);
        Some(e)
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn limits(&self) -> DctLimits {
        self.limits
    }
    pub fn counters(&self) -> DctCounters {
        self.counters
    }
    /// Half-open entries now.
    pub fn half_open(&self) -> usize {
        self.half_open[0].len() + self.half_open[1].len()
    }

    /// A packet of a known connection (Fig. 8 block 134): its counts and
    /// state move by its TCP flags. Returns its target, `None` for a
    /// connection not in the table.
    pub fn touch(
        &mut self,
        now: Instant,
        key: &ConnKey,
        flags: TcpFlags,
        bytes: usize,
    ) -> Option<(Arc<str>, Ipv4Addr)> {
        let e = self.entries.get_mut(key)?;
        let (was, seen) = (e.state, e.last_seen);
        e.last_seen = now;
        e.packets += 1;
        e.bytes += bytes as u64;
        if flags.contains(TcpFlags::FIN) || flags.contains(TcpFlags::RST) {
            e.state = ConnState::Closing;
        } else if e.state == ConnState::SynSeen && flags.contains(TcpFlags::ACK) {
            e.state = ConnState::Established;
        }
        let (target, xcf, state) = (Arc::clone(&e.target), e.target_xcf, e.state);
        let half_open = &mut self.half_open[usize::from(e.ipsec)];
        if was == ConnState::SynSeen {
            half_open.remove(&(seen, *key));
        }
        if state == ConnState::SynSeen {
            half_open.insert((now, *key));
        }
        if was != ConnState::Closing && state == ConnState::Closing {
            self.count_active(key.dvipa, &target, false);
        }
        Some((target, xcf))
    }

    /// Room for one new entry: none needed below the limit; else the
    /// oldest half-open entry goes, one that came in clear before one under
    /// an SA (returned, so its end can be recorded). An established or
    /// closing entry never makes room for a SYN.
    pub fn make_room(&mut self) -> Result<Option<ConnKey>, DctFull> {
        if self.entries.len() < self.limits.max_entries as usize {
            return Ok(None);
        }
        let oldest = self.half_open.iter().find_map(|set| set.first());
        let Some(&(_, oldest)) = oldest else {
            self.counters.full += 1;
            return Err(DctFull);
        };
        self.remove(&oldest);
        self.counters.half_open_evicted += 1;
        Ok(Some(oldest))
    }

    /// Entries sorted by key, for displays and traces.
    pub fn sorted(&self) -> Vec<(ConnKey, ConnEntry)> {
        let mut v: Vec<_> = self.entries.iter().map(|(k, e)| (*k, e.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// Active connections per target image of `dvipa` (for WEIGHTEDACTIVE
    /// and BASEWLM), kept as entries change: no scan.
    pub fn active_for(&self, dvipa: Ipv4Addr) -> &HashMap<String, u32> {
        self.active.get(&dvipa).unwrap_or(&self.no_active)
    }

    /// The same, as an owned map (displays).
    pub fn active_by_target(&self, dvipa: Ipv4Addr) -> HashMap<String, u32> {
        self.active_for(dvipa).clone()
    }

    fn index(&mut self, key: ConnKey, e: &ConnEntry) {
        if e.state == ConnState::SynSeen {
            self.half_open[usize::from(e.ipsec)].insert((e.last_seen, key));
        }
        if e.state != ConnState::Closing {
            self.count_active(key.dvipa, &e.target, true);
        }
    }

    fn unindex(&mut self, key: ConnKey, e: &ConnEntry) {
        if e.state == ConnState::SynSeen {
            self.half_open[usize::from(e.ipsec)].remove(&(e.last_seen, key));
        }
        if e.state != ConnState::Closing {
            self.count_active(key.dvipa, &e.target, false);
        }
    }

    /// One more (`up`) or one fewer active connection of `dvipa` at
    /// `target`; a count reaching 0 is removed, so the map stays as small
    /// as the connections it counts.
    fn count_active(&mut self, dvipa: Ipv4Addr, target: &str, up: bool) {
        let per_target = self.active.entry(dvipa).or_default();
        if up {
            // No allocation when the target has connections already.
            match per_target.get_mut(target) {
                Some(n) => *n += 1,
                None => {
                    per_target.insert(target.to_string(), 1);
                }
            }
        } else if let Some(n) = per_target.get_mut(target) {
            *n -= 1;
            if *n == 0 {
                per_target.remove(target);
            }
        }
        if per_target.is_empty() {
            self.active.remove(&dvipa);
        }
    }

    /// The half-open timeout now: `syn_ms` up to half full, then falling
    /// linearly to `syn_pressure_ms` at full (a SYN flood ages its own
    /// entries out faster).
    pub fn syn_limit(&self, t: &DctTimeouts) -> Duration {
        let max = u64::from(self.limits.max_entries.max(1));
        let len = self.entries.len() as u64;
        let floor = self.limits.syn_pressure_ms.min(t.syn_ms);
        if 2 * len <= max {
            return Duration::from_millis(t.syn_ms);
        }
        let over = (2 * len - max).min(max);
        Duration::from_millis(t.syn_ms - (t.syn_ms - floor) * over / max)
    }

    /// How long `e` lives without traffic.
    fn limit(&self, e: &ConnEntry, t: &DctTimeouts) -> Duration {
        match e.state {
            ConnState::SynSeen => self.syn_limit(t),
            state => t.limit(state),
        }
    }

    /// Removes entries past their timeout; returns them sorted by key (the
    /// order they reach the CF journal in). Half-open entries come off the
    /// front of their age order; the others are checked once per call
    /// (the image's tick), never per packet.
    pub fn expire(&mut self, now: Instant, t: &DctTimeouts) -> Vec<(ConnKey, ConnEntry)> {
        let syn = self.syn_limit(t);
        let mut dead: Vec<ConnKey> = self
            .half_open
            .iter()
            .flat_map(|set| {
                set.iter()
                    .take_while(|(seen, _)| now.saturating_duration_since(*seen) >= syn)
                    .map(|(_, k)| *k)
            })
            .collect();
        self.counters.half_open_expired += dead.len() as u64;
        dead.extend(
            self.entries
                .iter()
                .filter(|(_, e)| e.state != ConnState::SynSeen)
                .filter(|(_, e)| now.saturating_duration_since(e.last_seen) >= t.limit(e.state))
                .map(|(k, _)| *k),
        );
        dead.sort_unstable();
        dead.into_iter()
            .filter_map(|k| self.remove(&k).map(|e| (k, e)))
            .collect()
    }

    /// The earliest time an entry may expire.
    pub fn next_expiry(&self, t: &DctTimeouts) -> Option<Instant> {
        let syn = self.syn_limit(t);
        let half_open = self
            .half_open
            .iter()
            .filter_map(|set| set.first().map(|(seen, _)| *seen + syn));
        self.entries
            .values()
            .filter(|e| e.state != ConnState::SynSeen)
            .map(|e| e.last_seen + self.limit(e, t))
            .chain(half_open)
            .min()
    }
}

#[cfg(test)]
mod tests;
