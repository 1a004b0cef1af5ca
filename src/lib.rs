//! # plexnet: a simulated z/OS Sysplex with distributed IPsec for a shared DVIPA
//!
//! The layer map (see `DESIGN.md`). Arrows point at what a layer may use.
//!
//! ```text
//!   main.rs (CLI) ─▶ lab ─▶ runtime ─▶ sysplex ─▶ ike ─▶ ipsec ─▶ wire
//!                    │        │           ▲
//!                    │        └─▶ trace   └── sim (deterministic runtime)
//!                    └─▶ topology
//! ```
//!
//! | layer      | what it holds                                                        | does I/O |
//! |------------|----------------------------------------------------------------------|----------|
//! | [`wire`]     | packet views and `Repr`s: IPv4, TCP, UDP, ICMP, ESP, AH, GRE, IKE, XCF | no       |
//! | [`ipsec`]    | SAs, ESP/AH seal and open, anti-replay, peek, lifesize counters, the IP filter policy and table (IPSECURITY) | no |
//! | [`ike`]      | IKEv2 state machines, key derivation, proposals                       | no       |
//! | [`sysplex`]  | routing stack, target stack, coupling facility as state machines     | no       |
//! | [`topology`] | topology files, z/OS VIPADYNAMIC, IPSEC and Policy Agent statements, validation | reads files |
//! | [`sim`]      | virtual clock, seeded RNG, in-memory links; renders traces            | no       |
//! | [`runtime`]  | the real I/O shell: TUN, sockets, timers, control socket              | yes      |
//! | [`lab`]      | namespaces, veths, bridges, addresses, routes, processes              | yes      |
//! | [`trace`]    | pcap writer and stable text rendering of packets and decisions       | writes   |
//!
//! The protocol core (`wire`, `ipsec`, `ike`, `sysplex`) takes time and
//! randomness as arguments and never touches a socket, so the same code runs
//! under [`sim`] and in real namespaces under [`runtime`].
#![deny(unsafe_code)]

pub mod ike;
pub mod ipsec;
pub mod lab;
pub mod runtime;
pub mod sim;
pub mod sysplex;
pub mod time;
pub mod topology;
pub mod trace;
pub mod wire;
