//! The `sim` layer: see the layer map in `lib.rs`.
