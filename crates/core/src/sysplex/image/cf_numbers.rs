//! Fig. 10 blocks 162–164 at a target: outbound packets of one SA (or one
//! AH+ESP bundle) take their sequence numbers from the CF in blocks, and
//! wait, unsealed, until the CF's answer arrives.
//!
//! The policy (docs/ARCHITECTURE.md, "Replay windows"): at most
//! [`SEQ_CHUNK`] numbers per CF request, asked right before sealing; a
//! number whose packet cannot leave within [`SEQ_DEADLINE`] of asking is
//! dropped (a gap, which ESP allows) and its packet resealed under a fresh
//! one, so a target that was descheduled never sends packets that trail
//! the others' by more than the client's replay window. One request per
//! group is in flight at a time, so a group's packets leave in order.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use super::ImageCounters;
use crate::ipsec::sa::Spi;
use crate::sysplex::target::{SeqNumbers, TargetDrop};
use crate::sysplex::xcf::{CfError, CfResponse, SeqKey};
use crate::time::Instant;

/// Sequence numbers taken from the CF per request, at most.
pub const SEQ_CHUNK: usize = 8;
/// A sequence number not on the wire this long after it was asked for is
/// not used: another target may meanwhile have sent far past it. Measured
/// with 4 iperf3 streams over two targets: 2 ms still let a few dozen
/// packets per run fall out of strongSwan's 128-packet window, 500 µs none.
pub const SEQ_DEADLINE: Duration = Duration::from_micros(500);
/// Fresh numbers tried per group before its rest is dropped.
const SEQ_MAX_REFETCH: usize = 8;

/// The CF structures a group of outbound packets takes numbers from (Fig.
/// 10 block 162): one SA's, or an AH+ESP bundle's two (ESP, AH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealKeys {
    Single(SeqKey),
    Bundle(SeqKey, SeqKey),
}

impl SealKeys {
    /// Numbers one packet uses.
    fn structures(self) -> u64 {
        match self {
            SealKeys::Single(_) => 1,
            SealKeys::Bundle(..) => 2,
        }
    }

    /// The structure asked first: the single SA's, or the bundle's ESP.
    fn first(self) -> SeqKey {
        match self {
            SealKeys::Single(k) | SealKeys::Bundle(k, _) => k,
        }
    }
}

/// A handle on one CF request of the image (quinn-style typed handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CfAskId(pub u64);

/// A CF request for sequence numbers: LISTKEYINC, `n` numbers from the
/// structure `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqAsk {
    pub id: CfAskId,
    pub key: SeqKey,
    pub n: u32,
}

/// The CF's answer to a [`SeqAsk`]: the first number granted and how
/// many, or why none came.
pub type CfReply = Result<(u64, u32), CfFailure>;

/// Why the CF gave a [`SeqAsk`] no numbers. The packets waiting for them
/// are dropped and counted under this reason ([`CfDrops`]); none is ever
/// sealed under a number the CF did not grant, so a CF that lost its
/// state (restarted) can never make a target reuse a number
/// (docs/FAULTS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CfFailure {
    /// No answer within the shell's bound: the CF is down, or the link
    /// to it is (the packets were held until then).
    Unreachable,
    /// The CF has no structure for the SA: it lost its state (a
    /// restarted CF starts empty) or the SA was deleted meanwhile.
    SeqLost,
    /// The structure handed out its last number: the SA must be rekeyed
    /// (RFC 4303 §3.3.3).
    Exhausted,
    /// Any other refusal (a malformed request, a short grant).
    Refused,
}

impl CfFailure {
    /// What a CF response that granted no numbers stands for.
    pub fn of_response(r: &CfResponse) -> CfFailure {
        match r {
            CfResponse::Error(CfError::UnknownSeq(_)) => CfFailure::SeqLost,
            CfResponse::Error(CfError::SeqExhausted(_)) => CfFailure::Exhausted,
            _ => CfFailure::Refused,
        }
    }
}

/// Packets dropped because the CF gave their numbers no answer, by
/// [`CfFailure`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CfDrops {
    pub unreachable: u64,
    pub seq_lost: u64,
    pub exhausted: u64,
    pub refused: u64,
}

impl CfDrops {
    fn count(&mut self, why: CfFailure, packets: u64) {
        let c = match why {
            CfFailure::Unreachable => &mut self.unreachable,
            CfFailure::SeqLost => &mut self.seq_lost,
            CfFailure::Exhausted => &mut self.exhausted,
            CfFailure::Refused => &mut self.refused,
        };
        *c += packets;
    }
}

/// Packets sealed under one block of numbers, to send in order while the
/// numbers are younger than [`SEQ_DEADLINE`].
#[derive(Debug)]
pub struct SealedChunk {
    pub id: CfAskId,
    pub keys: SealKeys,
    /// The outbound (ESP) SA of the chunk's first packet.
    pub spi: Spi,
    /// The numbers of the chunk's first packet; the others follow.
    pub first: SeqNumbers,
    /// How many numbers each structure gave.
    pub n: u32,
    /// Past this instant, the packets not sent yet must not leave.
    pub deadline: Instant,
    pub packets: Vec<Vec<u8>>,
    /// Packets that failed to seal (counted by the target stack).
    pub refused: Vec<TargetDrop>,
}

/// One SA's outbound packets of a burst.
#[derive(Debug)]
struct Group {
    keys: SealKeys,
    packets: Vec<(Spi, Vec<u8>)>,
    /// The first packet not sent yet.
    next: usize,
    refetches: usize,
}

/// Where a group's current chunk is.
#[derive(Debug)]
enum Stage {
    /// Asked the first (or only) structure.
    First,
    /// A bundle's ESP numbers are here; asked for AH's.
    Ah { esp_first: u64 },
}

#[derive(Debug)]
struct InFlight {
    group: Group,
    len: usize,
    asked: Option<Instant>,
    stage: Stage,
}

/// A chunk handed out sealed, until the shell says how much of it left.
#[derive(Debug)]
struct Out {
    group: Group,
    len: usize,
    sealed: usize,
}

/// The groups waiting for numbers or for their sealed chunk to leave.
#[derive(Debug, Default)]
pub(super) struct SeqBatcher {
    next_id: u64,
    asks: VecDeque<SeqAsk>,
    in_flight: BTreeMap<CfAskId, InFlight>,
    out: BTreeMap<CfAskId, Out>,
}

impl SeqBatcher {
    /// Packets of one burst under the structures `keys`, in order.
    pub(super) fn enqueue(&mut self, keys: SealKeys, packets: Vec<(Spi, Vec<u8>)>) {
        let group = Group {
            keys,
            packets,
            next: 0,
            refetches: 0,
        };
        self.ask(group, None, Stage::First);
    }

    /// Asks for the numbers of `group`'s next chunk (from its first
    /// structure, or from AH once ESP's came).
    fn ask(&mut self, group: Group, asked: Option<Instant>, stage: Stage) {
        let len = SEQ_CHUNK.min(group.packets.len() - group.next);
        let key = match (&stage, group.keys) {
            (Stage::Ah { .. }, SealKeys::Bundle(_, ah)) => ah,
            (_, keys) => keys.first(),
        };
        let id = CfAskId(self.next_id);
        self.next_id += 1;
        self.asks.push_back(SeqAsk {
            id,
            key,
            n: len as u32,
        });
        let flight = InFlight {
            group,
            len,
            asked,
            stage,
        };
        self.in_flight.insert(id, flight);
    }

    /// The next request, marked as sent at `now`.
    pub(super) fn poll_request(&mut self, now: Instant) -> Option<SeqAsk> {
        let ask = self.asks.pop_front()?;
        if let Some(f) = self.in_flight.get_mut(&ask.id) {
            f.asked.get_or_insert(now);
        }
        Some(ask)
    }

    /// The CF answered `id`: ask a bundle's AH next, or seal the chunk
    /// with `seal` (spi, numbers, plaintext, out). A refusal drops the
    /// rest of the group, counted by reason (like a full queue: TCP
    /// resends).
    pub(super) fn on_reply(
        &mut self,
        id: CfAskId,
        reply: CfReply,
        counters: &mut ImageCounters,
        seal: &mut impl FnMut(Spi, SeqNumbers, &[u8], &mut Vec<u8>) -> Result<(), TargetDrop>,
    ) -> Option<SealedChunk> {
        let flight = self.in_flight.remove(&id)?;
        let n = flight.len as u32;
        let first = match reply {
            Ok((first, got)) if got == n && grant_fits(first, n) => first,
            refused => {
                let why = refused.err().unwrap_or(CfFailure::Refused);
                let group = &flight.group;
                counters.cf_errors += 1;
                let left = (group.packets.len() - group.next) as u64;
                counters.cf_dropped.count(why, left);
                return None;
            }
        };
        counters.cf_batches += 1;
        counters.cf_numbers += u64::from(n);
        let seq = match (flight.stage, flight.group.keys) {
            (Stage::First, SealKeys::Bundle(..)) => {
                let stage = Stage::Ah { esp_first: first };
                self.ask(flight.group, flight.asked, stage);
                return None;
            }
            (Stage::Ah { esp_first }, _) => SeqNumbers {
                esp: esp_first,
                ah: Some(first),
            },
            (Stage::First, _) => SeqNumbers::single(first),
        };
        let asked = flight.asked.unwrap_or_default();
        Some(self.seal_chunk(id, flight.group, flight.len, seq, asked, seal))
    }

    /// Seals the group's next `len` packets with consecutive numbers from
    /// `first` (a packet that fails is left out).
    fn seal_chunk(
        &mut self,
        id: CfAskId,
        group: Group,
        len: usize,
        first: SeqNumbers,
        asked: Instant,
        seal: &mut impl FnMut(Spi, SeqNumbers, &[u8], &mut Vec<u8>) -> Result<(), TargetDrop>,
    ) -> SealedChunk {
        let chunk = &group.packets[group.next..group.next + len];
        let mut packets = Vec::with_capacity(len);
        let mut refused = Vec::new();
        for ((spi, p), i) in chunk.iter().zip(0u64..) {
            let mut out = Vec::with_capacity(p.len() + 128);
            let seq = SeqNumbers {
                esp: first.esp + i,
                ah: first.ah.map(|a| a + i),
            };
            match seal(*spi, seq, p, &mut out) {
                Ok(()) => packets.push(out),
                Err(d) => refused.push(d),
            }
        }
        let sealed = SealedChunk {
            id,
            keys: group.keys,
            spi: chunk[0].0,
            first,
            n: len as u32,
            deadline: asked + SEQ_DEADLINE,
            packets,
            refused,
        };
        let out = Out {
            len,
            sealed: sealed.packets.len(),
            group,
        };
        self.out.insert(id, out);
        sealed
    }

    /// `sent` packets of the chunk `id` left in time: go on with the next
    /// chunk, or reseal what did not leave under fresh numbers (at most
    /// [`SEQ_MAX_REFETCH`] times; then the rest is dropped rather than
    /// loop, and TCP resends what matters).
    pub(super) fn on_sent(&mut self, id: CfAskId, sent: usize, counters: &mut ImageCounters) {
        let Some(Out {
            mut group,
            len,
            sealed,
        }) = self.out.remove(&id)
        else {
            return;
        };
        if sent >= sealed {
            group.next += len;
        } else {
            counters.seq_stale += (sealed - sent) as u64 * group.keys.structures();
            group.refetches += 1;
            if group.refetches > SEQ_MAX_REFETCH {
                return;
            }
            group.next += sent;
        }
        if group.next < group.packets.len() {
            self.ask(group, None, Stage::First);
        }
    }

    /// Whether nothing waits for the CF or for the shell.
    pub(super) fn is_idle(&self) -> bool {
        self.asks.is_empty() && self.in_flight.is_empty() && self.out.is_empty()
    }
}

/// Whether `n` numbers from `first` are numbers at all: none is 0 (RFC
/// 4303 §3.3.3: the first packet is sent with 1) and the last does not run
/// past the 64-bit space. A CF that answers otherwise is refused rather
/// than trusted into overflowing (or, wrapped, reusing) numbers.
fn grant_fits(first: u64, n: u32) -> bool {
    first != 0 && first.checked_add(u64::from(n.max(1)) - 1).is_some()
}
