//! The `wire` layer: see the layer map in `lib.rs`.
pub mod ike;
