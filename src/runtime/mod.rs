//! The real I/O shell: the daemons of images and the CF (TUN, sockets,
//! signals) and their control socket.

pub mod cf;
pub mod control;
pub mod daemon;
pub mod xcf;
