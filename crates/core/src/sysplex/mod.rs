//! Sysplex roles as sans-IO state machines: the image's own stack, the
//! routing stack (distributor), the target stack, the coupling facility,
//! and the XCF messages between them.

pub mod cf;
pub mod cf_key;
pub mod config;
pub mod dct;
pub mod image;
pub mod limits;
pub mod packet;
pub mod routing;
pub mod spec;
pub mod stack;
pub mod takeover;
pub mod target;
pub mod xcf;

#[cfg(test)]
mod filter_tests;
#[cfg(test)]
pub(crate) mod test_support;
