//! The bounds of everything an unauthenticated peer (or a misbehaving
//! image) can make the sysplex hold: the topology's `[limits]` table.
//!
//! z/OS has no single statement for these; each value follows the z/OS
//! knob closest to it:
//! - the DCT (VCRT) bound and the half-open timeouts are what z/OS's
//!   `SOMAXCONN` (PROFILE.TCPIP: "the maximum number of connection
//!   requests queued for any listening socket", default 1024) and the
//!   Intrusion Detection Services' SYN flood protection (message EZZ8650I
//!   "SYN flood start") do for one stack's listeners, here for the
//!   distributor's table of every target's connections;
//! - the CF quotas are what the CFRM policy's `STRUCTURE NAME(..)
//!   SIZE(..)` gives each structure: a fixed amount of CF storage, beyond
//!   which a write fails (XES "structure full") rather than the CF;
//! - the XCF message size stands for XCF's signal sizing: COUPLExx
//!   `CLASSDEF CLASS(name) CLASSLEN(length)` (0 to 62464 bytes; z/OS MVS
//!   Setting Up a Sysplex, "Specifying the lengths of messages for the
//!   transport class") sizes a class's buffers, and a longer signal makes
//!   XCF expand them; here a body over the limit is refused instead, as a
//!   peer's length field must not size our allocation.

use serde::{Deserialize, Serialize};

use super::dct::DctLimits;

/// `[limits]`, with every value checked by the topology (ranges in
/// [`LIMIT_RANGES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SysplexLimits {
    /// DCT (VCRT) entries per routing stack.
    pub dct_max_entries: u64,
    /// How long a half-open entry (a SYN never followed by an ACK) lives
    /// while the DCT is at most half full.
    pub half_open_timeout_ms: u64,
    /// Its timeout once the DCT is full (linear in between).
    pub half_open_pressure_ms: u64,
    /// SYNs a target holds at once while NEWCONN asks for their SA (Fig. 11).
    pub newconn_hold_max: u64,
    /// CF key/value entries each connector image may own.
    pub cf_max_entries_per_image: u64,
    /// Bytes (keys plus values) of CF key/value storage each image may own.
    pub cf_max_bytes_per_image: u64,
    /// CF sequence structures each image may create.
    pub cf_max_structures_per_image: u64,
    /// The longest XCF message body an image accepts from a peer.
    pub xcf_max_message_bytes: u64,
}

impl Default for SysplexLimits {
    fn default() -> Self {
        Self {
            dct_max_entries: 65_536,
            half_open_timeout_ms: 10_000,
            half_open_pressure_ms: 1_000,
            newconn_hold_max: 64,
            cf_max_entries_per_image: 65_536,
            cf_max_bytes_per_image: 64 << 20,
            cf_max_structures_per_image: 4_096,
            xcf_max_message_bytes: 1 << 20,
        }
    }
}

/// Each key of `[limits]` with its smallest and largest value.
pub const LIMIT_RANGES: [(&str, u64, u64); 8] = [
    ("dct_max_entries", 16, 1 << 24),
    ("half_open_timeout_ms", 100, 600_000),
    ("half_open_pressure_ms", 10, 600_000),
    ("newconn_hold_max", 1, 65_536),
    ("cf_max_entries_per_image", 16, 1 << 24),
    ("cf_max_bytes_per_image", 4_096, 1 << 32),
    ("cf_max_structures_per_image", 4, 1 << 20),
    (
        "xcf_max_message_bytes",
        4_096,
        crate::wire::xcf::MAX_BODY_LEN as u64,
    ),
];

impl SysplexLimits {
    /// The DCT's part.
    pub fn dct(&self) -> DctLimits {
        DctLimits {
            max_entries: u32::try_from(self.dct_max_entries).unwrap_or(u32::MAX),
            syn_pressure_ms: self.half_open_pressure_ms,
        }
    }

    /// A value by its key (for the topology's checks).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut u64> {
        Some(match key {
            "dct_max_entries" => &mut self.dct_max_entries,
            "half_open_timeout_ms" => &mut self.half_open_timeout_ms,
            "half_open_pressure_ms" => &mut self.half_open_pressure_ms,
            "newconn_hold_max" => &mut self.newconn_hold_max,
            "cf_max_entries_per_image" => &mut self.cf_max_entries_per_image,
            "cf_max_bytes_per_image" => &mut self.cf_max_bytes_per_image,
            "cf_max_structures_per_image" => &mut self.cf_max_structures_per_image,
            "xcf_max_message_bytes" => &mut self.xcf_max_message_bytes,
            _ => return None,
        })
    }
}
