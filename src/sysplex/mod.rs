//! Sysplex roles as sans-IO state machines: the image stack, and (next) the routing stack, target stack and coupling facility.

pub mod cf;
pub mod stack;
pub mod xcf;
