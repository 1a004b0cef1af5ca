//! Lifesize counting and batched reporting (patent Fig. 9 blocks 156-158,
//! Fig. 10 blocks 166-168): per SA direction, reported to the routing stack
//! when the unreported bytes reach a threshold that adapts to how timely
//! the last rekey was.

use super::*;

/// Batched lifesize reporting for one SA direction (Fig. 9 blocks 156–158,
/// Fig. 10 blocks 166–168): report when the unreported bytes reach the
/// threshold, a share of the SA's byte lifesize that adapts to how timely
/// the last rekey was.
#[derive(Debug, Clone, Serialize)]
pub struct Lifesize {
    /// Current threshold as a share of the lifesize, in basis points.
    pub threshold_bp: u32,
    pub lifesize_bytes: u64,
    pub pending_bytes: u64,
    pub pending_packets: u64,
    pub highest_seq: u64,
    pub total_bytes: u64,
}

/// 5 % by default (the patent's example), adapting between 1 % and 10 %.
pub const REPORT_DEFAULT_BP: u32 = 500;

pub const REPORT_MIN_BP: u32 = 100;

pub const REPORT_MAX_BP: u32 = 1000;

/// Without a byte lifesize, report every this many bytes.
pub const REPORT_UNLIMITED_BYTES: u64 = 1 << 20;

impl Lifesize {
    pub(super) fn new(lifesize_bytes: u64, initial_bytes: u64) -> Self {
        let threshold_bp = if lifesize_bytes > 0 && initial_bytes > 0 {
            ((initial_bytes.saturating_mul(10_000) / lifesize_bytes) as u32)
                .clamp(REPORT_MIN_BP, REPORT_MAX_BP)
        } else {
            REPORT_DEFAULT_BP
        };
        Self {
            threshold_bp,
            lifesize_bytes,
            pending_bytes: 0,
            pending_packets: 0,
            highest_seq: 0,
            total_bytes: 0,
        }
    }
    pub fn threshold_bytes(&self) -> u64 {
        if self.lifesize_bytes == 0 {
            REPORT_UNLIMITED_BYTES
        } else {
            (self.lifesize_bytes / 10_000 * u64::from(self.threshold_bp)).max(1)
        }
    }
    pub(super) fn add(&mut self, bytes: u64, seq: u64) -> bool {
        self.pending_bytes += bytes;
        self.pending_packets += 1;
        self.total_bytes += bytes;
        self.highest_seq = self.highest_seq.max(seq);
        self.pending_bytes >= self.threshold_bytes()
    }
    /// A late rekey halves the threshold; a timely one raises it by a quarter.
    pub(super) fn adapt(&mut self, late: bool) {
        self.threshold_bp = if late {
            (self.threshold_bp / 2).max(REPORT_MIN_BP)
        } else {
            (self.threshold_bp + self.threshold_bp / 4).min(REPORT_MAX_BP)
        };
    }
}

impl ShadowPair {
    /// Whether `spi` is one of this pair's SAs (a bundle's AH SAs included).
    /// Every lifesize count of the pair: ESP inbound and outbound, then,
    /// in a bundle, AH inbound and outbound.
    pub(super) fn lifes_mut(&mut self) -> impl Iterator<Item = &mut Lifesize> {
        let ah = self
            .ah
            .as_mut()
            .map(|a| [&mut a.inbound_life, &mut a.outbound_life]);
        [&mut self.inbound_life, &mut self.outbound_life]
            .into_iter()
            .chain(ah.into_iter().flatten())
    }

    pub(super) fn has_spi(&self, spi: Spi) -> bool {
        let ah = self.ah.as_ref().map(|a| &a.bundle);
        [Some(&self.install.inbound), Some(&self.install.outbound)]
            .into_iter()
            .chain([ah.map(|a| &a.inbound), ah.map(|a| &a.outbound)])
            .flatten()
            .any(|c| c.spi == spi)
    }

    pub(super) fn life(&self, dir: Direction) -> &Lifesize {
        match dir {
            Direction::Inbound => &self.inbound_life,
            Direction::Outbound => &self.outbound_life,
        }
    }
}

impl ShadowAh {
    pub(super) fn life(&self, dir: Direction) -> &Lifesize {
        match dir {
            Direction::Inbound => &self.inbound_life,
            Direction::Outbound => &self.outbound_life,
        }
    }
}

/// The lifesize counter of an SA: its byte lifetime and the starting
/// report threshold (Fig. 9 block 156).
pub(super) fn lifesize_for(cfg: &SaConfig, report_bytes: u64) -> Lifesize {
    Lifesize::new(cfg.lifetimes.hard.bytes.unwrap_or(0), report_bytes)
}

/// Builds the report of a pair's ESP (or single) SA and resets its
/// pending counts.
pub(super) fn lifesize_msg(pair: &mut ShadowPair, dir: Direction) -> XcfMessage {
    let (cfg, life) = match dir {
        Direction::Inbound => (&pair.install.inbound, &mut pair.inbound_life),
        Direction::Outbound => (&pair.install.outbound, &mut pair.outbound_life),
    };
    report(pair.install.dvipa, cfg, life, dir)
}

/// The same for a bundle's AH SA.
pub(super) fn ah_lifesize_msg(dvipa: Ipv4Addr, ah: &mut ShadowAh, dir: Direction) -> XcfMessage {
    let (cfg, life) = match dir {
        Direction::Inbound => (&ah.bundle.inbound, &mut ah.inbound_life),
        Direction::Outbound => (&ah.bundle.outbound, &mut ah.outbound_life),
    };
    report(dvipa, cfg, life, dir)
}

/// Fig. 9 block 158, Fig. 10 block 168: one SA's report.
pub(super) fn report(
    dvipa: Ipv4Addr,
    cfg: &SaConfig,
    life: &mut Lifesize,
    dir: Direction,
) -> XcfMessage {
    let msg = XcfMessage::Lifesize {
        dvipa,
        protocol: cfg.protocol,
        spi: cfg.spi,
        direction: dir,
        bytes: life.pending_bytes,
        packets: life.pending_packets,
        highest_seq: life.highest_seq,
    };
    life.pending_bytes = 0;
    life.pending_packets = 0;
    msg
}

/// Blocks 158 and 168: lifesize reports go to the routing stack that
/// installed the pair (counted).
pub(super) fn queue_reports(
    counters: &mut TargetCounters,
    outbox: &mut Vec<(String, XcfMessage)>,
    owner: &str,
    reports: Vec<XcfMessage>,
) {
    counters.lifesize_reports += reports.len() as u64;
    outbox.extend(reports.into_iter().map(|m| (owner.to_string(), m)));
}

impl TargetStack {
    /// The IKE's verdict on the rekey of the pair with `spi`: its report
    /// thresholds adapt (Fig. 9 block 156, Fig. 10 block 166), and the
    /// pairs of the same DVIPA and peer, its successor among them (installed
    /// before the old pair is deleted), continue from the adapted values,
    /// so the threshold keeps falling after late rekeys and rising after
    /// timely ones, within bounds.
    pub(super) fn rekey_timing(&mut self, dvipa: Ipv4Addr, spi: Spi, late: bool) {
        let Some(old) = self
            .shadow
            .iter_mut()
            .find(|p| p.install.dvipa == dvipa && p.has_spi(spi))
        else {
            return;
        };
        let adapted: Vec<u32> = old
            .lifes_mut()
            .map(|l| {
                l.adapt(late);
                l.threshold_bp
            })
            .collect();
        let peer = old.install.outbound.dst;
        for p in self
            .shadow
            .iter_mut()
            .filter(|p| p.install.dvipa == dvipa && p.install.outbound.dst == peer)
        {
            for (l, bp) in p.lifes_mut().zip(&adapted) {
                l.threshold_bp = *bp;
            }
        }
    }

    /// Sends what lifesize is pending (at a timer, so small counts reach
    /// the routing stack too).
    pub fn flush_lifesize(&mut self) {
        for p in &mut self.shadow {
            for dir in [Direction::Inbound, Direction::Outbound] {
                let mut reports = Vec::new();
                if p.life(dir).pending_packets > 0 {
                    reports.push(lifesize_msg(p, dir));
                }
                let dvipa = p.install.dvipa;
                if let Some(ah) = p.ah.as_mut().filter(|a| a.life(dir).pending_packets > 0) {
                    reports.push(ah_lifesize_msg(dvipa, ah, dir));
                }
                queue_reports(&mut self.counters, &mut self.outbox, &p.owner, reports);
            }
        }
    }
}
