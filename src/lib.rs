//! # plexnet: a simulated z/OS Sysplex with distributed IPsec for a shared DVIPA
//!
//! This crate is the I/O shell: [`runtime`] (the daemons of images, the CF
//! and the clients: TUN, sockets, timers, control socket, XCF mesh) and
//! [`lab`] (namespaces, veths, bridges, addresses, routes, processes,
//! `doctor`), under the CLI in `main.rs`. The protocol lives in the other
//! crates of the workspace, re-exported here under their module names:
//!
//! ```text
//!   plexnet (runtime, lab, CLI) ──▶ plexnet-topology ──▶ plexnet-core
//!          │                                              ▲
//!          └──────────────────────▶ plexnet-sim ──────────┘
//! ```
//!
//! | crate | re-exported as | does I/O |
//! |---|---|---|
//! | `plexnet-core` | [`wire`], [`ipsec`], [`ike`], [`sysplex`], [`time`], [`trace`] | no |
//! | `plexnet-topology` | [`topology`] | reads files |
//! | `plexnet-sim` | [`sim`] | no |
//!
//! See `docs/ARCHITECTURE.md` for the layer map and the path of a packet.
#![deny(unsafe_code)]

pub use plexnet_core::{ike, ipsec, sysplex, time, trace, wire};
pub use plexnet_sim as sim;
pub use plexnet_topology as topology;

pub mod lab;
pub mod runtime;
