//! Namespaces, veths, bridges, addresses, routes and processes for `plexnet
//! up` and `plexnet down`, plus `status` and `exec`.

pub mod doctor;
pub mod down;
pub mod exec;
pub mod fault;
pub mod neighbours;
pub mod netlink;
pub mod netns;
pub mod plan;
pub mod process;
pub mod state;
pub mod status;
pub mod strongswan;
pub mod up;

pub use down::{down_all, down_instance, down_topology, DownReport};
pub use up::{preflight, up, UpOptions, UpReport};
