//! The real I/O shell: the daemons of images, the CF and clients (TUN,
//! sockets, signals) and their control socket.

pub mod cf;
pub mod client;
pub mod control;
pub mod daemon;
pub mod image;
pub mod sockets;
