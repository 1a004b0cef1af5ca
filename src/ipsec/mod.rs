//! The `ipsec` layer: see the layer map in `lib.rs`.

pub mod replay;

pub use replay::{ReplayError, ReplayWindow};
