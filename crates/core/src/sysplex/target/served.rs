//! The connections a target stack serves for the DVIPAs distributed to
//! it, as its own packets show them: what it reports to a DVIPA's new
//! routing stack after a takeover or a giveback
//! ([`XcfMessage::ConnReport`]), and which connections already had a
//! packet admitted here (a later packet that fails authentication must
//! not end such a connection: a forger could).
//!
//! z/OS: when a backup stack takes a distributed DVIPA over, the target
//! stacks send it their connections to the DVIPA, and it builds its
//! connection routing table from them, so existing connections are not
//! disrupted. The CF journal alone cannot promise that: the routing stack
//! writes it every 50 ms, and a connection made since its last write
//! would be unknown to the new routing stack, its packets dropped as
//! `no-connection` while the client retransmits into the void.
//!
//! The table is the DCT's own type ([`Dct`]), with the same states,
//! timeouts and bounds: a connection ends here on RST, a few seconds
//! after FIN, or idle, as at the routing stack; when the table is full
//! the oldest half-open entry makes room and, with none, the connection
//! is not tracked (counted as `untracked`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::Serialize;

use crate::sysplex::dct::{ConnEntry, ConnKey, ConnState, Dct, DctLimits, DctTimeouts};
use crate::sysplex::xcf::{ReportedConn, XcfMessage, MAX_REPORTED_CONNS};
use crate::time::Instant;
use crate::wire::TcpFlags;

/// What the served table did, for `status` and the displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServedCounters {
    /// Connections tracked now.
    pub connections: u64,
    /// Connections not tracked because the table was full of entries
    /// that are not half-open (they cannot be reported).
    pub untracked: u64,
    /// [`XcfMessage::ConnReport`] messages sent, and the connections in them.
    pub reports: u64,
    pub reported: u64,
}

/// A target's connections to distributed DVIPAs.
#[derive(Debug, Clone)]
pub struct Served {
    table: Dct,
    /// This image, as the table's target of every entry (shared, not copied).
    me: Arc<str>,
    xcf: Ipv4Addr,
    timeouts: DctTimeouts,
    counters: ServedCounters,
}

impl Served {
    pub fn new(image: &str, xcf: Ipv4Addr) -> Self {
        Served {
            table: Dct::with_limits(0, DctLimits::default()),
            me: image.into(),
            xcf,
            timeouts: DctTimeouts::default(),
            counters: ServedCounters::default(),
        }
    }

    /// The sysplex's `[limits]`: the same bounds and half-open timeout as
    /// the DCT's. `seed` keys the table's hasher (see [`Dct::with_seed`]).
    pub fn set_limits(&mut self, seed: u64, limits: DctLimits, syn_ms: u64) {
        let mut table = Dct::with_limits(seed, limits);
        for (key, entry) in self.table.sorted() {
            table.insert(key, entry);
        }
        self.table = table;
        self.timeouts.syn_ms = syn_ms;
    }

    /// Whether a packet of `key` was admitted here.
    pub fn contains(&self, key: &ConnKey) -> bool {
        self.table.get(key).is_some()
    }

    /// An admitted packet of `key` (inbound, or outbound from the DVIPA):
    /// the entry moves by its flags, or is made when `create` (any packet
    /// the routing stack forwarded here is of a connection it routes here;
    /// outbound, only the SYN of a connection this image opens, Fig. 11).
    pub fn touch(
        &mut self,
        now: Instant,
        key: ConnKey,
        flags: TcpFlags,
        bytes: usize,
        ipsec: bool,
        create: bool,
    ) {
        if self.table.touch(now, &key, flags, bytes).is_some() || !create {
            return;
        }
        if self.table.make_room().is_err() {
            self.counters.untracked += 1;
            return;
        }
        let state = if flags.is_initial_syn() {
            ConnState::SynSeen
        } else if flags.contains(TcpFlags::FIN) || flags.contains(TcpFlags::RST) {
            ConnState::Closing
        } else {
            ConnState::Established
        };
        let entry = ConnEntry {
            target: Arc::clone(&self.me),
            target_xcf: self.xcf,
            state,
            created: now,
            last_seen: now,
            packets: 1,
            bytes: bytes as u64,
            ipsec,
        };
        self.table.insert(key, entry);
    }

    /// Entries past their timeouts go (the image's tick).
    pub fn expire(&mut self, now: Instant) {
        self.table.expire(now, &self.timeouts);
    }

    /// The reports of this target's connections to `dvipa` for its new
    /// routing stack, at most [`MAX_REPORTED_CONNS`] per message, in key
    /// order; none when it serves none.
    pub fn report(&mut self, dvipa: Ipv4Addr) -> Vec<XcfMessage> {
        let conns: Vec<ReportedConn> = self
            .table
            .sorted()
            .into_iter()
            .filter(|(k, _)| k.dvipa == dvipa)
            .map(|(k, e)| ReportedConn {
                client: k.client,
                client_port: k.client_port,
                port: k.port,
                state: e.state,
                ipsec: e.ipsec,
            })
            .collect();
        self.counters.reported += conns.len() as u64;
        let msgs: Vec<XcfMessage> = conns
            .chunks(MAX_REPORTED_CONNS)
            .map(|chunk| XcfMessage::ConnReport {
                dvipa,
                target_xcf: self.xcf,
                conns: chunk.to_vec(),
            })
            .collect();
        self.counters.reports += msgs.len() as u64;
        msgs
    }

    pub fn counters(&self) -> ServedCounters {
        ServedCounters {
            connections: self.table.len() as u64,
            ..self.counters
        }
    }

    /// The table, for displays.
    pub fn table(&self) -> &Dct {
        &self.table
    }
}
