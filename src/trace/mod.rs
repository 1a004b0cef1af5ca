//! The `trace` layer: see the layer map in `lib.rs`.
