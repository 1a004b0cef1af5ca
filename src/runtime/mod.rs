//! The real I/O shell: the daemons of images, the CF and clients (TUN,
//! sockets, signals), their control socket, and the XCF mesh.

pub mod cf;
pub mod client;
pub mod client_ike;
pub mod control;
pub mod daemon;
pub mod display;
pub mod ike;
pub mod image;
pub mod sockets;
pub mod xcf;
