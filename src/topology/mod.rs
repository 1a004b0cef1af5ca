//! Topology files: the model, TOML loading, z/OS VIPADYNAMIC statements, validation.

mod model;
pub use model::*;
