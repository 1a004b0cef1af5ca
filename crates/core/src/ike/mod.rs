//! The `ike` layer: see the layer map in `lib.rs`.
//!
//! IKEv2 (RFC 7296), sans-IO. Building blocks: Diffie-Hellman groups
//! ([`dh`]), the PRF, key derivation and AUTH ([`keys`]), proposal
//! selection ([`proposal`]), the SK payload ([`sk`]), NAT traversal
//! ([`natt`]), traffic selectors ([`ts`]) and identities ([`ident`]). The
//! state machine: [`Ike`], one endpoint per local address, responder and
//! initiator, configured by [`IkeConfig`]. Wire formats live in
//! [`crate::wire::ike`].
//!
//! Not implemented: IKE fragmentation (RFC 7383; never advertised, so
//! peers do not fragment, and PSK messages are small), certificates and
//! EAP, IPv6, transport mode (the data plane is tunnel mode only), ESN,
//! and the nonce-based resolution of simultaneous rekeys (RFC 7296 §2.8.1):
//! a rekey request that collides with one of ours gets TEMPORARY_FAILURE
//! and is retried after a random delay, which strongSwan also does.

mod api;
pub mod config;
pub mod dh;
mod endpoint;
pub mod ident;
pub mod keys;
pub mod natt;
pub mod prf;
pub mod proposal;
mod sa;
pub mod sk;
pub mod trace;
pub mod ts;
pub mod wireshark;

pub use api::{
    ChildSaId, ChildSaInfo, ChildSpis, CommandError, DeleteReason, Direction, DropReason, IkeEvent,
    IkeSaId, Role, TraceRecord, Transmit,
};
pub use config::{ChildLifetime, ConfigError, IkeConfig, IkeLifetime, PeerConfig};
pub use endpoint::{Ike, IkeSaStatus};
pub use ident::Identity;
pub use ts::TsConfig;
