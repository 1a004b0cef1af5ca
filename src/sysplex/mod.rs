//! The `sysplex` layer: see the layer map in `lib.rs`.
