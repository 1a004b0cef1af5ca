//! What the per-SA code reads and writes: the endpoint's outputs and
//! the context of one call (configuration, RNG, time).

use core::net::Ipv4Addr;
use core::time::Duration;

use crate::time::Instant;
use std::collections::{BTreeSet, VecDeque};

use rand_core::CryptoRngCore;

use crate::ike::api::{IkeEvent, TraceRecord, Transmit};
use crate::ike::config::IkeConfig;
use crate::ike::dh::{DhGroup, DhPrivate};

use super::{IkeSa, NONCE_LEN};

/// What the per-SA code writes to, owned by the endpoint.
#[derive(Default)]
pub(crate) struct Outputs {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<IkeEvent>,
    pub trace: Option<VecDeque<TraceRecord>>,
    /// IKE SAs created by rekeying, for the endpoint to insert.
    pub spawned: Vec<IkeSa>,
    pub next_child: u32,
    /// Inbound child SPIs in use on this endpoint.
    pub child_spis: BTreeSet<u32>,
    /// Local IKE SPIs in use on this endpoint.
    pub ike_spis: BTreeSet<u64>,
}

impl core::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Outputs")
            .field("transmits", &self.transmits.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Outputs {
    pub fn trace(&mut self, rec: impl FnOnce() -> TraceRecord) {
        if let Some(t) = &mut self.trace {
            t.push_back(rec());
        }
    }
}

/// Everything a handler needs besides its SA.
pub(crate) struct Ctx<'a> {
    pub config: &'a IkeConfig,
    pub out: &'a mut Outputs,
    pub rng: &'a mut dyn CryptoRngCore,
    pub now: Instant,
    pub local_ip: Ipv4Addr,
}

impl Ctx<'_> {
    pub fn nonce(&mut self) -> Vec<u8> {
        let mut n = vec![0; NONCE_LEN];
        self.rng.fill_bytes(&mut n);
        n
    }

    /// A fresh inbound ESP SPI: above the reserved 1–255 (RFC 4303 §2.1),
    /// unique on this endpoint.
    pub fn child_spi(&mut self) -> u32 {
        loop {
            let spi = self.rng.next_u32();
            if spi > 255 && self.out.child_spis.insert(spi) {
                return spi;
            }
        }
    }

    /// A fresh local IKE SPI: non-zero (§3.1), unique on this endpoint.
    pub fn ike_spi(&mut self) -> u64 {
        loop {
            let spi = self.rng.next_u64();
            if spi != 0 && self.out.ike_spis.insert(spi) {
                return spi;
            }
        }
    }

    pub fn dh(&mut self, group: DhGroup) -> DhPrivate {
        DhPrivate::generate(group, &mut self.rng)
    }

    /// A random duration in `[0, max]` taken off rekey times.
    pub fn jitter(&mut self, max: Duration) -> Duration {
        let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(self.rng.next_u64() % (ms + 1))
    }
}
