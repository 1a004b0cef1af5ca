//! # plexnet-core: the protocol core of plexnet
//!
//! Wire formats, IPsec, IKEv2 and the sysplex stacks of the two patents'
//! figures 5–11, as sans-IO state machines: nothing here does I/O, reads a
//! clock or draws from the OS's RNG. Time comes in as [`time::Instant`],
//! randomness as `&mut impl RngCore`, so the same code runs in the
//! simulator (`plexnet-sim`) and in network namespaces (`plexnet`'s
//! runtime). The layer map and the path of a packet through these modules
//! are in `docs/ARCHITECTURE.md`.
//!
//! | module | what it holds |
//! |---|---|
//! | [`wire`] | packet views and `Repr`s: IPv4, TCP, UDP, ICMP, ESP, AH, GRE, IKE |
//! | [`ipsec`] | SAs, ESP/AH seal and open, anti-replay, peek, lifesize counters, the IP filter policy and table (IPSECURITY) |
//! | [`ike`] | IKEv2 endpoint and SA state machines, key derivation, proposals |
//! | [`sysplex`] | routing stack, target stack, coupling facility, XCF messages, takeover, and the configuration types the topology fills in |
//! | [`time`] | the core's one clock type |
//! | [`trace`] | stable one-line renderings of packets and decisions |
//!
//! Inside the crate a module uses only those above it in this order:
//! `wire` ← `ipsec` ← `ike` ← `sysplex`.
#![deny(unsafe_code)]

pub mod ike;
pub mod ipsec;
pub mod sysplex;
pub mod time;
pub mod trace;
pub mod wire;
