//! The `ike` layer: see the layer map in `lib.rs`.
//!
//! IKEv2 (RFC 7296) building blocks, all sans-IO: Diffie-Hellman groups
//! ([`dh`]), the PRF, key derivation and AUTH ([`keys`]), and proposal
//! selection ([`proposal`]). Wire formats live in [`crate::wire::ike`].

pub mod dh;
pub mod keys;
pub mod prf;
pub mod proposal;
