//! The protocol core's one clock type.
//!
//! The core never reads a clock: every call that needs the time takes a
//! [`Instant`] argument. An `Instant` is the time since the image (or the
//! simulated sysplex) started, so the shell converts from
//! `std::time::Instant` by subtracting its start instant and the simulator
//! simply advances one. Both give the same trace for the same inputs.
//! See `docs/ARCHITECTURE.md`, "Time and randomness".

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time on the core's clock: the time elapsed since start.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Instant(Duration);

impl Instant {
    /// The start of the clock.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `elapsed` after start.
    pub const fn from_elapsed(elapsed: Duration) -> Instant {
        Instant(elapsed)
    }

    /// The instant `ms` milliseconds after start.
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(Duration::from_millis(ms))
    }

    /// The instant `s` seconds after start.
    pub const fn from_secs(s: u64) -> Instant {
        Instant(Duration::from_secs(s))
    }

    /// The time elapsed since start.
    pub const fn elapsed(self) -> Duration {
        self.0
    }

    /// Whole milliseconds since start (the unit of the DCT's and the CF
    /// journal's timestamps).
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whole seconds since start (the unit of SA lifetimes).
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d))
    }
}

/// `later - earlier`, saturating at zero as `std::time::Instant` does.
impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Serializes an [`Instant`] as its whole milliseconds, the unit the
/// displays and JSON fields (`created_ms`, `last_seen_ms`) have always used.
pub fn serialize_millis<S: serde::Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(t.as_millis())
}

/// Serializes an [`Instant`] as its whole seconds (SA creation times).
pub fn serialize_secs<S: serde::Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(t.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_like_std() {
        let t = Instant::from_millis(1500);
        assert_eq!(t.as_secs(), 1);
        assert_eq!(t.as_millis(), 1500);
        assert_eq!(t + Duration::from_millis(500), Instant::from_secs(2));
        assert_eq!(Instant::from_secs(1) - t, Duration::ZERO);
        assert_eq!(t - Instant::from_secs(1), Duration::from_millis(500));
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
    }
}
