//! The `ipsec` layer: see the layer map in `lib.rs`.
