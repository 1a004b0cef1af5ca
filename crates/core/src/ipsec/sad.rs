//! SAs with their running state (counters, replay window, lifetime clock)
//! and the inbound SA database that finds the SA for a packet (RFC 4301
//! §4.4.2: SPI, protocol and destination), counting drops by reason.

use std::collections::HashMap;

use core::net::IpAddr;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use super::ah::{open_ah, open_bundle, seal_ah, seal_bundle};
use super::counters::{DropCounters, SaCounters};
use super::esp::{make_iv, open_esp, seal_esp_with_iv, OpenError, Opened, SealError};
use super::outer::parse_outer;
use super::replay::ReplayWindow;
use super::sa::{Protocol, Sa, SaError, Spi, TrafficSelector};
use crate::time::Instant;
use crate::wire::{ah as ah_wire, esp as esp_wire, IpProtocol};

/// Where an SA is in its life (RFC 4301 §4.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expiry {
    /// Within both lifetimes.
    Alive,
    /// Past the soft lifetime: time to rekey.
    Soft,
    /// Past the hard lifetime: unusable.
    Hard,
}

/// The age is counted in whole seconds of the clock (the unit of SA
/// lifetimes), as `now`'s seconds less `created_at`'s.
fn expiry(sa: &Sa, counters: &SaCounters, created_at: Instant, now: Instant) -> Expiry {
    let age = now.as_secs().saturating_sub(created_at.as_secs());
    let l = &sa.config().lifetimes;
    if l.hard.reached(age, counters.bytes, counters.packets) {
        Expiry::Hard
    } else if l.soft.reached(age, counters.bytes, counters.packets) {
        Expiry::Soft
    } else {
        Expiry::Alive
    }
}

/// An outbound SA and its counters. Sequence numbers are not kept here:
/// they come from the caller (locally, or in batches from the coupling
/// facility).
#[derive(Debug, Clone, Serialize)]
pub struct OutboundSa {
    sa: Sa,
    counters: SaCounters,
    #[serde(serialize_with = "crate::time::serialize_secs")]
    created_at: Instant,
}

impl OutboundSa {
    /// An SA established at `created_at`.
    pub fn new(sa: Sa, created_at: Instant) -> OutboundSa {
        OutboundSa {
            sa,
            counters: SaCounters::default(),
            created_at,
        }
    }

    /// The SA.
    pub fn sa(&self) -> &Sa {
        &self.sa
    }

    /// The counters.
    pub fn counters(&self) -> &SaCounters {
        &self.counters
    }

    /// The lifetime state at `now`.
    pub fn expiry(&self, now: Instant) -> Expiry {
        expiry(&self.sa, &self.counters, self.created_at, now)
    }

    /// Seals `packet` into `out` with sequence number `seq` (ESP or AH as
    /// the SA says) and counts it. Returns the lifetime state after the
    /// packet, so the caller can trigger a rekey at `Soft`.
    pub fn seal(
        &mut self,
        now: Instant,
        seq: u64,
        rng: &mut impl RngCore,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Expiry, SealError> {
        if self.expiry(now) == Expiry::Hard {
            return Err(SealError::Expired);
        }
        let protected = match self.sa.protocol() {
            Protocol::Esp => {
                let (iv, len) = make_iv(&self.sa, seq, rng);
                seal_esp_with_iv(&self.sa, seq, &iv[..len], packet, out)?
            }
            Protocol::Ah => seal_ah(&self.sa, seq, packet, out)?,
        };
        self.counters.record_packet(protected);
        Ok(self.expiry(now))
    }
}

/// Seals with an AH+ESP bundle (AH outside ESP) and counts on both SAs.
#[allow(clippy::too_many_arguments)]
pub fn seal_bundle_counted(
    ah: &mut OutboundSa,
    ah_seq: u64,
    esp: &mut OutboundSa,
    esp_seq: u64,
    now: Instant,
    rng: &mut impl RngCore,
    packet: &[u8],
    out: &mut Vec<u8>,
) -> Result<Expiry, SealError> {
    if ah.expiry(now) == Expiry::Hard || esp.expiry(now) == Expiry::Hard {
        return Err(SealError::Expired);
    }
    let (iv, len) = make_iv(&esp.sa, esp_seq, rng);
    let protected = seal_bundle(&ah.sa, ah_seq, &esp.sa, esp_seq, &iv[..len], packet, out)?;
    ah.counters.record_packet(protected);
    esp.counters.record_packet(protected);
    Ok(ah.expiry(now).max_with(esp.expiry(now)))
}

impl Expiry {
    fn max_with(self, other: Expiry) -> Expiry {
        match (self, other) {
            (Expiry::Hard, _) | (_, Expiry::Hard) => Expiry::Hard,
            (Expiry::Soft, _) | (_, Expiry::Soft) => Expiry::Soft,
            _ => Expiry::Alive,
        }
    }
}

/// An inbound SA with its replay window and counters.
#[derive(Debug, Clone, Serialize)]
pub struct InboundSa {
    sa: Sa,
    replay: ReplayWindow,
    counters: SaCounters,
    #[serde(serialize_with = "crate::time::serialize_secs")]
    created_at: Instant,
}

impl InboundSa {
    /// An SA established at `created_at`, with a fresh window of the size
    /// the SA asks for.
    pub fn new(sa: Sa, created_at: Instant) -> InboundSa {
        let replay = ReplayWindow::new(sa.config().replay_window, sa.config().esn);
        InboundSa {
            sa,
            replay,
            counters: SaCounters::default(),
            created_at,
        }
    }

    /// The SA.
    pub fn sa(&self) -> &Sa {
        &self.sa
    }

    /// The replay window (read-only: a distributor pre-checks with it).
    pub fn replay(&self) -> &ReplayWindow {
        &self.replay
    }

    /// Changes the selectors decrypted packets are checked against (RFC
    /// 4301 §5.2), keeping the window, counters and age: a shadow SA whose
    /// check a filter table's dynamic filter makes instead (patent Fig. 9
    /// block 152), or hands back.
    pub fn set_selector(&mut self, selector: TrafficSelector) -> Result<(), SaError> {
        if self.sa.config().selector == selector {
            return Ok(());
        }
        let mut config = self.sa.config().clone();
        config.selector = selector;
        self.sa = Sa::new(config)?;
        Ok(())
    }

    /// The counters.
    pub fn counters(&self) -> &SaCounters {
        &self.counters
    }

    /// The lifetime state at `now`.
    pub fn expiry(&self, now: Instant) -> Expiry {
        expiry(&self.sa, &self.counters, self.created_at, now)
    }

    /// Opens `packet` into `out`, counting the packet or the drop reason.
    pub fn open(
        &mut self,
        now: Instant,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Opened, OpenError> {
        let result = if self.expiry(now) == Expiry::Hard {
            Err(OpenError::SaExpired)
        } else {
            match self.sa.protocol() {
                Protocol::Esp => open_esp(&self.sa, &mut self.replay, packet, out),
                Protocol::Ah => open_ah(&self.sa, &mut self.replay, packet, out),
            }
        };
        self.count(&result);
        result
    }

    fn count(&mut self, result: &Result<Opened, OpenError>) {
        match result {
            Ok(opened) => self.counters.record_packet(opened.protected_bytes),
            Err(e) => self.counters.drops.record(e.reason()),
        }
    }
}

/// Opens an AH+ESP bundle, counting on the SA where the packet failed (AH
/// failures on the AH SA, the rest on the ESP SA) or on both on success.
pub fn open_bundle_counted(
    ah: &mut InboundSa,
    esp: &mut InboundSa,
    now: Instant,
    packet: &[u8],
    out: &mut Vec<u8>,
) -> Result<Opened, OpenError> {
    if ah.expiry(now) == Expiry::Hard || esp.expiry(now) == Expiry::Hard {
        let e = Err(OpenError::SaExpired);
        ah.count(&e);
        return e;
    }
    let ah_top = ah.replay.top();
    let result = open_bundle(
        &ah.sa,
        &mut ah.replay,
        &esp.sa,
        &mut esp.replay,
        packet,
        out,
    );
    match &result {
        Ok(_) => {
            ah.count(&result);
            esp.count(&result);
        }
        // The AH window moves only once AH verified; if it did not move
        // and AH is at fault, count there.
        Err(OpenError::IcvMismatch | OpenError::Replayed | OpenError::TooOld)
            if ah.replay.top() == ah_top =>
        {
            ah.count(&result)
        }
        Err(_) => esp.count(&result),
    }
    result
}

/// Identifies an inbound SA (RFC 4301 §4.1: SPI, destination, protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SaId {
    /// Destination address of the packets.
    pub dst: IpAddr,
    /// ESP or AH.
    pub protocol: Protocol,
    /// SPI.
    pub spi: Spi,
}

/// The inbound SA database: finds the SA (or the AH+ESP pair) for a
/// packet and opens it. Drops before an SA is known (unknown SPI, packets
/// too broken to find one) are counted here.
#[derive(Debug, Default)]
pub struct InboundSad {
    sas: HashMap<SaId, InboundSa>,
    drops: DropCounters,
}

impl InboundSad {
    /// An empty database.
    pub fn new() -> InboundSad {
        InboundSad::default()
    }

    /// Installs an SA, replacing one with the same identity.
    pub fn insert(&mut self, sa: InboundSa) {
        let c = sa.sa().config();
        let id = SaId {
            dst: c.dst,
            protocol: c.protocol,
            spi: c.spi,
        };
        self.sas.insert(id, sa);
    }

    /// Removes an SA.
    pub fn remove(&mut self, id: &SaId) -> Option<InboundSa> {
        self.sas.remove(id)
    }

    /// An SA by identity.
    pub fn get(&self, id: &SaId) -> Option<&InboundSa> {
        self.sas.get(id)
    }

    /// Every SA.
    pub fn iter(&self) -> impl Iterator<Item = (&SaId, &InboundSa)> {
        self.sas.iter()
    }

    /// Drops counted before an SA was found.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// Opens a packet with whatever SA its headers name. AH followed by
    /// ESP is opened as a bundle.
    pub fn open(
        &mut self,
        now: Instant,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Opened, OpenError> {
        out.clear();
        let outer = match parse_outer(packet) {
            Ok(o) => o,
            Err(e) => return Err(self.drop(e.into())),
        };
        let dst = IpAddr::V4(outer.dst);
        let ipsec = &packet[outer.ipsec_at..outer.end];
        let (protocol, spi, inner_esp) = match outer.protocol {
            IpProtocol::Esp => match esp_wire::Packet::new_checked(ipsec) {
                Ok(p) => (Protocol::Esp, p.spi(), None),
                Err(e) => return Err(self.drop(e.into())),
            },
            _ => match ah_wire::Packet::new_checked(ipsec) {
                Ok(p) if p.next_header() == IpProtocol::Esp => {
                    let esp_spi = esp_wire::Packet::new_checked(p.payload()).map(|e| e.spi());
                    match esp_spi {
                        Ok(s) => (Protocol::Ah, p.spi(), Some(s)),
                        Err(e) => return Err(self.drop(e.into())),
                    }
                }
                Ok(p) => (Protocol::Ah, p.spi(), None),
                Err(e) => return Err(self.drop(e.into())),
            },
        };
        let id = SaId {
            dst,
            protocol,
            spi: Spi(spi),
        };
        match inner_esp {
            None => match self.sas.get_mut(&id) {
                Some(sa) => sa.open(now, packet, out),
                None => Err(self.drop(OpenError::UnknownSpi)),
            },
            Some(esp_spi) => {
                let esp_id = SaId {
                    dst,
                    protocol: Protocol::Esp,
                    spi: Spi(esp_spi),
                };
                let (Some(mut ah), Some(mut esp)) =
                    (self.sas.remove(&id), self.sas.remove(&esp_id))
                else {
                    return Err(self.drop(OpenError::UnknownSpi));
                };
                let result = open_bundle_counted(&mut ah, &mut esp, now, packet, out);
                self.sas.insert(id, ah);
                self.sas.insert(esp_id, esp);
                result
            }
        }
    }

    fn drop(&mut self, e: OpenError) -> OpenError {
        self.drops.record(e.reason());
        e
    }
}
