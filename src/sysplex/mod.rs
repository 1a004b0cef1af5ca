//! Sysplex roles as sans-IO state machines: the image stack, and (next) the routing stack, target stack and coupling facility.

pub mod dct;
pub mod packet;
pub mod routing;
pub mod stack;
pub mod target;
pub mod xcf;
