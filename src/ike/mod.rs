//! The `ike` layer: see the layer map in `lib.rs`.
