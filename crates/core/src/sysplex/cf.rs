//! The coupling facility as a sans-IO state machine: one request in, one
//! response out ([`CouplingFacility::handle`]). The I/O shell that serves
//! it over TCP is `runtime::cf`.
//!
//! It holds two kinds of structures:
//!
//! - **Sequence structures**, one per outbound SA of a DVIPA. The routing
//!   stack creates one when IKE installs the SA, starting at the SA's next
//!   sequence number (Fig. 6 block 116); every target that sends on the SA
//!   takes numbers from it with an atomic fetch-and-add of `n`, the
//!   patent's `IXLLIST` with `LISTKEYINC` (Fig. 10 block 162), so no two
//!   senders ever use the same number and none needs to know the current
//!   value. A structure hands out numbers up to a last one and then refuses
//!   ([`CfError::SeqExhausted`]) rather than wrap: with 32-bit sequence
//!   numbers (no ESN) the counter must not cycle, the SA must be rekeyed
//!   before the 2^32nd packet (RFC 4303 §3.3.3, RFC 4302 §3.3.2).
//! - **Key/value storage** for what a backup routing stack needs at
//!   takeover: the connection table and SA state.
//!
//! Every request is answered, malformed ones with [`CfError::Malformed`];
//! nothing here panics on input.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::xcf::{CfError, CfRequest, CfResponse, SeqKey};

mod quota;

pub use quota::{CfLimits, ConnectorUsage};

/// The connector [`CouplingFacility::handle`] charges: in-process users
/// (the simulator, tests).
pub const LOCAL_CONNECTOR: &str = "local";

/// The last sequence number of an SA without extended sequence numbers
/// (RFC 4303 §2.2, §3.3.3): what [`CfRequest::CreateSeq`] uses.
pub const SEQ_LAST_32: u64 = u32::MAX as u64;
/// The last sequence number of an SA with extended sequence numbers
/// (RFC 4303 §2.2.1).
pub const SEQ_LAST_64: u64 = u64::MAX;
/// Longest key/value key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// One sequence structure.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeqStructure {
    /// The image that created it (charged for it).
    owner: Arc<str>,
    /// The next number to hand out (meaningless once `exhausted`).
    next: u64,
    /// The last number that may be handed out.
    last: u64,
    /// Whether `last` has been handed out.
    exhausted: bool,
    /// Numbers handed out so far.
    handed_out: u64,
    /// Successful fetch-and-adds.
    fetches: u64,
}

impl SeqStructure {
    /// How many numbers are left (`u128` because a fresh 64-bit structure
    /// starting at 0 holds 2^64 of them).
    fn remaining(&self) -> u128 {
        if self.exhausted {
            0
        } else {
            u128::from(self.last) - u128::from(self.next) + 1
        }
    }

    /// Takes `n` (> 0) numbers: all of them or none.
    fn fetch_add(&mut self, n: u32) -> Option<u64> {
        if u128::from(n) > self.remaining() {
            return None;
        }
        let first = self.next;
        // first + n - 1 <= last, so this does not overflow.
        let end = first + (u64::from(n) - 1);
        if end == self.last {
            self.exhausted = true;
        } else {
            self.next = end + 1;
        }
        self.handed_out += u64::from(n);
        self.fetches += 1;
        Some(first)
    }
}

/// Requests handled, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// `CreateSeq` and `CreateSeqLimit`.
    pub create_seq: u64,
    pub fetch_add: u64,
    pub delete_seq: u64,
    pub put: u64,
    pub get: u64,
    pub delete: u64,
    pub list: u64,
    pub compare_and_swap: u64,
}

/// Error responses, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    pub unknown_seq: u64,
    pub seq_exists: u64,
    pub seq_exhausted: u64,
    pub malformed: u64,
    pub conflict: u64,
    /// Writes refused by a connector's share ([`CfError::QuotaExceeded`]).
    pub quota_exceeded: u64,
}

/// The CF's counters, for `plexnet status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CfCounters {
    pub requests: RequestCounts,
    pub errors: ErrorCounts,
    /// Sequence numbers handed out, over all structures.
    pub numbers_handed_out: u64,
}

/// One sequence structure, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeqStatus {
    pub key: SeqKey,
    /// The next number to hand out; `None` once exhausted.
    pub next: Option<u64>,
    pub last: u64,
    pub handed_out: u64,
    pub fetches: u64,
}

/// What the CF holds, for `plexnet status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CfStatus {
    pub counters: CfCounters,
    /// Sorted by DVIPA, protocol, SPI.
    pub sequences: Vec<SeqStatus>,
    pub kv_entries: usize,
    /// Keys plus values.
    pub kv_bytes: usize,
    /// Each connector image's share.
    pub limits: CfLimits,
    /// What each connector image holds and how often its share refused
    /// a write.
    pub connectors: BTreeMap<String, ConnectorUsage>,
}

/// A key/value entry with the image it is charged to.
#[derive(Debug)]
struct Stored {
    value: Vec<u8>,
    owner: Arc<str>,
}

/// The coupling facility's state.
#[derive(Debug, Default)]
pub struct CouplingFacility {
    seqs: HashMap<SeqKey, SeqStructure>,
    kv: BTreeMap<String, Stored>,
    kv_bytes: usize,
    counters: CfCounters,
    quotas: quota::Quotas,
}

impl CouplingFacility {
    /// An empty CF with the default shares.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty CF giving each connector image `limits`.
    pub fn with_limits(limits: CfLimits) -> Self {
        let mut cf = Self::default();
        cf.quotas.limits = limits;
        cf
    }

    /// Handles one request of an in-process user ([`LOCAL_CONNECTOR`]).
    pub fn handle(&mut self, req: CfRequest) -> CfResponse {
        self.handle_from(LOCAL_CONNECTOR, req)
    }

    /// Handles one request of the image `connector` (what it creates is
    /// charged to its share). Errors are responses ([`CfResponse::Error`]),
    /// counted by kind.
    pub fn handle_from(&mut self, connector: &str, req: CfRequest) -> CfResponse {
        let who = self.quotas.intern(connector);
        let result = match req {
            CfRequest::CreateSeq { key, start } => {
                self.counters.requests.create_seq += 1;
                self.create_seq(&who, key, start, SEQ_LAST_32)
            }
            CfRequest::CreateSeqLimit { key, start, last } => {
                self.counters.requests.create_seq += 1;
                self.create_seq(&who, key, start, last)
            }
            CfRequest::FetchAdd { key, n } => {
                self.counters.requests.fetch_add += 1;
                self.fetch_add(key, n)
            }
            CfRequest::DeleteSeq { key } => {
                self.counters.requests.delete_seq += 1;
                match self.seqs.remove(&key) {
                    Some(s) => {
                        self.quotas.remove_structure(&s.owner);
                        Ok(CfResponse::Done)
                    }
                    None => Err(CfError::UnknownSeq(key)),
                }
            }
            CfRequest::Put { key, value } => {
                self.counters.requests.put += 1;
                check_key(&key).and_then(|()| self.store(&who, key, value))
            }
            CfRequest::CompareAndSwap {
                key,
                expected,
                value,
            } => {
                self.counters.requests.compare_and_swap += 1;
                check_key(&key).and_then(|()| self.compare_and_swap(&who, key, expected, value))
            }
            CfRequest::Get { key } => {
                self.counters.requests.get += 1;
                check_key(&key)
                    .map(|()| CfResponse::Value(self.kv.get(&key).map(|s| s.value.clone())))
            }
            CfRequest::Delete { key } => {
                self.counters.requests.delete += 1;
                check_key(&key).map(|()| {
                    if let Some(old) = self.kv.remove(&key) {
                        let bytes = key.len() + old.value.len();
                        self.kv_bytes -= bytes;
                        self.quotas.remove_entry(&old.owner, bytes as u64);
                    }
                    CfResponse::Done
                })
            }
            CfRequest::List { prefix } => {
                self.counters.requests.list += 1;
                if prefix.len() > MAX_KEY_LEN {
                    Err(CfError::Malformed(format!(
                        "prefix of {} bytes, at most {MAX_KEY_LEN}",
                        prefix.len()
                    )))
                } else {
                    let keys = self
                        .kv
                        .range(prefix.clone()..)
                        .take_while(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, _)| k.clone())
                        .collect();
                    Ok(CfResponse::Keys(keys))
                }
            }
        };
        match result {
            Ok(resp) => resp,
            Err(e) => {
                self.count_error(&e);
                CfResponse::Error(e)
            }
        }
    }

    /// Counts an error the I/O shell answered itself (a frame that did not
    /// decode), so `status` shows every refusal in one place.
    pub fn count_error(&mut self, e: &CfError) {
        let errors = &mut self.counters.errors;
        match e {
            CfError::UnknownSeq(_) => errors.unknown_seq += 1,
            CfError::SeqExists(_) => errors.seq_exists += 1,
            CfError::SeqExhausted(_) => errors.seq_exhausted += 1,
            CfError::Malformed(_) => errors.malformed += 1,
            CfError::Conflict(_) => errors.conflict += 1,
            CfError::QuotaExceeded(_) => errors.quota_exceeded += 1,
        }
    }

    fn compare_and_swap(
        &mut self,
        who: &Arc<str>,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<CfResponse, CfError> {
        let current = self.kv.get(&key).map(|s| &s.value);
        if current != expected.as_ref() {
            return Err(CfError::Conflict(current.cloned()));
        }
        self.store(who, key, value)
    }

    /// Writes `key`, charged to its owner (`who` for a new key) within its
    /// share; nothing changes when the share refuses.
    fn store(
        &mut self,
        who: &Arc<str>,
        key: String,
        value: Vec<u8>,
    ) -> Result<CfResponse, CfError> {
        let new = (key.len() + value.len()) as u64;
        match self.kv.get_mut(&key) {
            Some(old) => {
                let before = (key.len() + old.value.len()) as u64;
                self.quotas.resize(&old.owner, before, new)?;
                self.kv_bytes = self.kv_bytes - before as usize + new as usize;
                old.value = value;
            }
            None => {
                self.quotas.add_entry(who, new)?;
                self.kv_bytes += new as usize;
                let owner = Arc::clone(who);
                self.kv.insert(key, Stored { value, owner });
            }
        }
        Ok(CfResponse::Done)
    }

    fn create_seq(
        &mut self,
        who: &Arc<str>,
        key: SeqKey,
        start: u64,
        last: u64,
    ) -> Result<CfResponse, CfError> {
        if start == 0 {
            return Err(CfError::Malformed(
                "sequence numbers start at 1 (RFC 4303 §3.3.3)".into(),
            ));
        }
        if start > last {
            return Err(CfError::Malformed(format!(
                "start {start} is beyond the last number {last}"
            )));
        }
        if self.seqs.contains_key(&key) {
            return Err(CfError::SeqExists(key));
        }
        self.quotas.add_structure(who)?;
        self.seqs.insert(
            key,
            SeqStructure {
                owner: Arc::clone(who),
                next: start,
                last,
                exhausted: false,
                handed_out: 0,
                fetches: 0,
            },
        );
        Ok(CfResponse::Done)
    }

    fn fetch_add(&mut self, key: SeqKey, n: u32) -> Result<CfResponse, CfError> {
        if n == 0 {
            return Err(CfError::Malformed("fetch-and-add of 0 numbers".into()));
        }
        let seq = self.seqs.get_mut(&key).ok_or(CfError::UnknownSeq(key))?;
        let first = seq.fetch_add(n).ok_or(CfError::SeqExhausted(key))?;
        self.counters.numbers_handed_out += u64::from(n);
        Ok(CfResponse::SeqRange { first, n })
    }

    /// The counters.
    pub fn counters(&self) -> CfCounters {
        self.counters
    }

    /// Counters and a summary of every structure.
    pub fn status(&self) -> CfStatus {
        let mut sequences: Vec<SeqStatus> = self
            .seqs
            .iter()
            .map(|(key, s)| SeqStatus {
                key: *key,
                next: (!s.exhausted).then_some(s.next),
                last: s.last,
                handed_out: s.handed_out,
                fetches: s.fetches,
            })
            .collect();
        sequences.sort_by_key(|s| {
            (
                s.key.dvipa,
                matches!(s.key.protocol, crate::ipsec::sa::Protocol::Ah),
                s.key.spi,
            )
        });
        CfStatus {
            counters: self.counters,
            sequences,
            kv_entries: self.kv.len(),
            kv_bytes: self.kv_bytes,
            limits: self.quotas.limits,
            connectors: self.quotas.usage(),
        }
    }
}

fn check_key(key: &str) -> Result<(), CfError> {
    if key.is_empty() {
        return Err(CfError::Malformed("empty key".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(CfError::Malformed(format!(
            "key of {} bytes, at most {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
