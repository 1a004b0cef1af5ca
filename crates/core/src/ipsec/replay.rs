//! The anti-replay window (RFC 4303 §3.4.3 and Appendix A; RFC 4302 §3.4.3
//! for AH), kept as a ring of 64-bit blocks as in RFC 6479 §2.
//!
//! The window covers the `size` sequence numbers ending at the highest one
//! received so far (`top`). A packet is acceptable when it is newer than
//! `top`, or inside the window and not yet marked.
//!
//! [`ReplayWindow::check`] only reads, [`ReplayWindow::update`] only writes:
//! a receiver checks, then verifies the ICV, then updates (RFC 4303 §3.4.3:
//! "the receive window is updated only if the integrity verification
//! succeeds"). A distributor that cannot authenticate a packet checks
//! without updating, so a forged packet with a huge sequence number cannot
//! move the window.
//!
//! With extended sequence numbers only the low 32 bits travel in the packet;
//! [`ReplayWindow::infer_seq`] reconstructs the high 32 bits as RFC 4303
//! Appendix A2.2 describes.

use serde::{Deserialize, Serialize};

/// The default window size plexnet offers (RFC 4303 §3.4.3 asks for a
/// default of 64 and at least 32; a sysplex with several senders on one SA
/// needs more, DESIGN.md).
pub const DEFAULT_WINDOW: u32 = 1024;
/// The largest window [`ReplayWindow::new`] accepts; larger requests are
/// clamped. 2^20 packets is far beyond any reordering a LAN produces.
pub const MAX_WINDOW: u32 = 1 << 20;

const BLOCK_BITS: u64 = 64;

/// Why a sequence number is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ReplayError {
    /// Inside the window and already received (RFC 4303 §3.4.3).
    #[error("sequence number already received")]
    Replayed,
    /// Left of the window (or zero, which no sender uses: the first packet
    /// carries 1, RFC 4303 §3.3.3).
    #[error("sequence number left of the replay window")]
    TooOld,
}

/// An anti-replay window of a configurable size (RFC 6479 bitmap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayWindow {
    /// Window size in packets.
    size: u32,
    /// Whether extended (64-bit) sequence numbers are in use (RFC 4303 §2.2.1).
    esn: bool,
    /// The highest sequence number received and authenticated; 0 before the
    /// first packet.
    top: u64,
    /// Ring of blocks; bit `seq % (64 × blocks)` stands for `seq`.
    bitmap: Vec<u64>,
}

impl ReplayWindow {
    /// A window of `size` packets (clamped to 1..=[`MAX_WINDOW`]), with or
    /// without extended sequence numbers.
    pub fn new(size: u32, esn: bool) -> Self {
        let size = size.clamp(1, MAX_WINDOW);
        // The window spans at most ceil((size - 1) / 64) + 1 blocks; one more
        // block lets `update` clear the block it enters without touching the
        // window (RFC 6479 §2). A power of two makes the ring index a mask.
        let spanned = (u64::from(size) - 1).div_ceil(BLOCK_BITS) + 1;
        let blocks = (spanned + 1).next_power_of_two();
        ReplayWindow {
            size,
            esn,
            top: 0,
            bitmap: vec![0; blocks as usize],
        }
    }

    /// The window size in packets.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Whether extended sequence numbers are in use.
    pub fn esn(&self) -> bool {
        self.esn
    }

    /// The highest sequence number accepted so far (0 before any).
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The full sequence number of a packet carrying the low 32 bits `low`.
    ///
    /// Without ESN that is `low`. With ESN it is RFC 4303 Appendix A2.2: with
    /// `Tl`/`Th` the low and high halves of `top` and `W` the window size,
    ///
    /// - Case A, `Tl >= W - 1` (the window lies in one 2^32 subspace): if
    ///   `low >= Tl - W + 1` then `Th` else `Th + 1`;
    /// - Case B, `Tl < W - 1` (the window straddles two subspaces): if
    ///   `low >= Tl - W + 1 (mod 2^32)` then `Th - 1` else `Th`.
    ///
    /// The result feeds the ICV (the high half is authenticated, RFC 4303
    /// §2.2.1), then [`ReplayWindow::check`]. In case B with `Th = 0` the
    /// number would lie before the first packet of the SA; the result is 0,
    /// which `check` rejects as too old.
    pub fn infer_seq(&self, low: u32) -> u64 {
        if !self.esn {
            return u64::from(low);
        }
        let tl = self.top as u32;
        let th = (self.top >> 32) as u32;
        let w = self.size;
        let bottom = tl.wrapping_sub(w).wrapping_add(1);
        let high = if tl >= w - 1 {
            if low >= bottom {
                th
            } else {
                th.wrapping_add(1)
            }
        } else if low >= bottom {
            match th.checked_sub(1) {
                Some(high) => high,
                // Subspace -1 does not exist: the number lies before the
                // SA's first packet. 0 is what `check` rejects as too old.
                None => return 0,
            }
        } else {
            th
        };
        (u64::from(high) << 32) | u64::from(low)
    }

    /// Whether `seq` (a full sequence number, see
    /// [`ReplayWindow::infer_seq`]) may be accepted. Changes nothing.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.top {
            return Ok(());
        }
        if self.top - seq >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        let (block, bit) = self.position(seq);
        if self.bitmap[block] & bit != 0 {
            Err(ReplayError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Marks `seq` received, sliding the window when `seq` is newer than
    /// every packet so far. Call only after the packet authenticated. A
    /// sequence number left of the window is ignored.
    pub fn update(&mut self, seq: u64) {
        if seq == 0 {
            return;
        }
        if seq > self.top {
            let mask = self.bitmap.len() as u64 - 1;
            let current = self.top / BLOCK_BITS;
            let target = seq / BLOCK_BITS;
            // Clear every block the window slides into; after a whole ring
            // there is nothing left to clear.
            let steps = (target - current).min(self.bitmap.len() as u64);
            for i in 1..=steps {
                self.bitmap[((current + i) & mask) as usize] = 0;
            }
            self.top = seq;
        } else if self.top - seq >= u64::from(self.size) {
            return;
        }
        let (block, bit) = self.position(seq);
        self.bitmap[block] |= bit;
    }

    /// [`ReplayWindow::check`], then [`ReplayWindow::update`] on success.
    pub fn check_and_update(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.check(seq)?;
        self.update(seq);
        Ok(())
    }

    fn position(&self, seq: u64) -> (usize, u64) {
        let mask = self.bitmap.len() as u64 - 1;
        (
            ((seq / BLOCK_BITS) & mask) as usize,
            1u64 << (seq % BLOCK_BITS),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// The textbook model: the set of received numbers and the top, window
    /// test by subtraction (RFC 4303 §3.4.3 in words).
    #[derive(Debug, Default)]
    struct Model {
        size: u64,
        top: u64,
        seen: BTreeSet<u64>,
    }

    impl Model {
        fn check(&self, seq: u64) -> Result<(), ReplayError> {
            if seq == 0 || (seq <= self.top && self.top - seq >= self.size) {
                Err(ReplayError::TooOld)
            } else if self.seen.contains(&seq) {
                Err(ReplayError::Replayed)
            } else {
                Ok(())
            }
        }
        fn update(&mut self, seq: u64) {
            self.top = self.top.max(seq);
            self.seen.insert(seq);
        }
    }

    /// RFC 2401 Appendix C's shift-register algorithm, for windows ≤ 64.
    struct Rfc2401 {
        bitmap: u64,
        last: u64,
        size: u64,
    }

    impl Rfc2401 {
        fn chk_and_update(&mut self, seq: u64) -> bool {
            if seq == 0 {
                return false;
            }
            if seq > self.last {
                let diff = seq - self.last;
                if diff < self.size {
                    self.bitmap = (self.bitmap << diff) | 1;
                } else {
                    self.bitmap = 1;
                }
                self.last = seq;
                return true;
            }
            let diff = self.last - seq;
            if diff >= self.size {
                return false;
            }
            if self.bitmap & (1 << diff) != 0 {
                return false;
            }
            self.bitmap |= 1 << diff;
            true
        }
    }

    #[test]
    fn in_order_then_replay() {
        let mut w = ReplayWindow::new(64, false);
        for seq in 1..=200 {
            assert_eq!(w.check_and_update(seq), Ok(()));
        }
        assert_eq!(w.check(200), Err(ReplayError::Replayed));
        assert_eq!(w.check(137), Err(ReplayError::Replayed));
        assert_eq!(w.check(136), Err(ReplayError::TooOld));
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        assert_eq!(w.check(201), Ok(()));
    }

    #[test]
    fn check_does_not_move_the_window() {
        let mut w = ReplayWindow::new(1024, false);
        w.check_and_update(5).unwrap();
        // A forged packet with a huge number passes check but, never
        // authenticated, is never updated: the window stays put.
        assert_eq!(w.check(1 << 31), Ok(()));
        assert_eq!(w.top(), 5);
        assert_eq!(w.check(4), Ok(()));
    }

    #[test]
    fn out_of_order_inside_a_large_window() {
        let mut w = ReplayWindow::new(4096, false);
        w.update(10_000);
        assert_eq!(w.check(10_000 - 4095), Ok(()));
        assert_eq!(w.check(10_000 - 4096), Err(ReplayError::TooOld));
        w.update(9_000);
        assert_eq!(w.check(9_000), Err(ReplayError::Replayed));
        // A jump by more than the whole ring clears everything.
        w.update(1_000_000);
        assert_eq!(w.check(1_000_000 - 1), Ok(()));
        assert_eq!(w.check(1_000_000), Err(ReplayError::Replayed));
    }

    #[test]
    fn esn_inference_cases() {
        // Case A: top = 2^32 + 1000, W = 64.
        let mut w = ReplayWindow::new(64, true);
        w.update((1 << 32) + 1000);
        assert_eq!(w.infer_seq(990), (1 << 32) + 990);
        assert_eq!(w.infer_seq(5000), (1 << 32) + 5000);
        // Below the window: taken as the next subspace (wrapped sender).
        assert_eq!(w.infer_seq(900), (2 << 32) + 900);
        // Case B: top = 2^32 + 10, W = 64: the window reaches back into
        // subspace 0.
        let mut w = ReplayWindow::new(64, true);
        w.update((1 << 32) + 10);
        assert_eq!(w.infer_seq(u32::MAX - 5), u64::from(u32::MAX - 5));
        assert_eq!(w.infer_seq(3), (1 << 32) + 3);
        assert_eq!(w.infer_seq(100), (1 << 32) + 100);
        // Case B at the very start: nothing lies below subspace 0.
        let mut w = ReplayWindow::new(64, true);
        w.update(10);
        assert_eq!(w.infer_seq(u32::MAX - 5), 0);
        assert_eq!(w.check(w.infer_seq(u32::MAX - 5)), Err(ReplayError::TooOld));
        // Without ESN nothing is inferred.
        assert_eq!(ReplayWindow::new(64, false).infer_seq(7), 7);
    }

    #[test]
    fn esn_across_the_32_bit_boundary() {
        let mut w = ReplayWindow::new(128, true);
        let start = u64::from(u32::MAX) - 50;
        w.update(start - 1);
        for seq in start..start + 100 {
            let inferred = w.infer_seq(seq as u32);
            assert_eq!(inferred, seq);
            w.check_and_update(inferred).unwrap();
        }
        assert_eq!(
            w.check(w.infer_seq((start + 10) as u32)),
            Err(ReplayError::Replayed)
        );
    }

    #[test]
    fn size_is_clamped() {
        assert_eq!(ReplayWindow::new(0, false).size(), 1);
        assert_eq!(ReplayWindow::new(u32::MAX, false).size(), MAX_WINDOW);
        let mut w = ReplayWindow::new(1, false);
        w.update(3);
        assert_eq!(w.check(2), Err(ReplayError::TooOld));
        assert_eq!(w.check(4), Ok(()));
    }

    proptest! {
        #[test]
        fn matches_the_set_model(
            size in prop_oneof![Just(1u32), Just(32), Just(64), Just(65), Just(1024), 1u32..3000],
            ops in proptest::collection::vec((0u64..5000, any::<bool>()), 1..400),
        ) {
            let mut w = ReplayWindow::new(size, false);
            let mut m = Model { size: u64::from(size), ..Model::default() };
            for (seq, authentic) in ops {
                prop_assert_eq!(w.check(seq), m.check(seq), "seq {}", seq);
                if authentic && m.check(seq).is_ok() {
                    w.update(seq);
                    m.update(seq);
                }
            }
        }

        #[test]
        fn matches_rfc2401_appendix_c(
            size in prop_oneof![Just(32u32), Just(64)],
            seqs in proptest::collection::vec(0u64..300, 1..400),
        ) {
            let mut w = ReplayWindow::new(size, false);
            let mut r = Rfc2401 { bitmap: 0, last: 0, size: u64::from(size) };
            for seq in seqs {
                prop_assert_eq!(w.check_and_update(seq).is_ok(), r.chk_and_update(seq));
            }
        }

        #[test]
        fn esn_recovers_the_full_number(
            size in prop_oneof![Just(64u32), Just(1024)],
            top in 1u64..(1 << 40),
            back in 0u64..64,
            ahead in 0u64..(1 << 31),
        ) {
            // Any number inside the window, or ahead of it by less than
            // 2^32 - W, is inferred exactly (RFC 4303 Appendix A2.1).
            let mut w = ReplayWindow::new(size, true);
            w.update(top);
            let behind = top.saturating_sub(back).max(1);
            prop_assert_eq!(w.infer_seq(behind as u32), behind);
            let forward = top + ahead;
            prop_assert_eq!(w.infer_seq(forward as u32), forward);
        }
    }
}
