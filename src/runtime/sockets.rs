//! Raw IPv4 sockets for the data path, as tokio sockets.
//!
//! Raw IPv4 sockets answer the same `recv(2)` and `sendto(2)` as UDP ones
//! (a raw `recv` returns the whole packet with its IPv4 header; `sendto`
//! ignores the port), so tokio's `UdpSocket` registers them safely.

use anyhow::{Context, Result};
use socket2::{Domain, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use tokio::net::UdpSocket;

/// Packets our own sockets send are marked so a policy rule sends them by
/// the main table, past the rules that capture DVIPA traffic into the TUN.
pub const FWMARK: u32 = 0x42;
/// IP protocol numbers (IANA).
pub const IPPROTO_GRE: i32 = 47;
pub const IPPROTO_ESP: i32 = 50;
pub const IPPROTO_AH: i32 = 51;
const IPPROTO_RAW: i32 = 255;
/// A TUN's transmit queue (packets the kernel routed into it and we have
/// not read yet). The TUN drops what does not fit, and TCP takes every such
/// drop for congestion: 500 packets (the default) lost ~1 % of a 4-stream
/// iperf3 run here, a few thousand absorb the bursts.
pub const TUN_TX_QUEUE_LEN: u32 = 4096;
/// Socket buffers large enough for bursts at line rate.
pub const SOCKET_BUFFER: usize = 4 << 20;

fn into_tokio(s: Socket) -> Result<UdpSocket> {
    s.set_nonblocking(true)?;
    UdpSocket::from_std(std::net::UdpSocket::from(s)).context("registering a raw socket")
}

/// A socket that sends whole IPv4 packets we built (IP_HDRINCL), marked
/// with [`FWMARK`].
pub fn raw_sender() -> Result<UdpSocket> {
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(socket2::Protocol::from(IPPROTO_RAW)),
    )
    .context("opening the raw send socket (needs CAP_NET_RAW)")?;
    s.set_header_included_v4(true)
        .context("setting IP_HDRINCL")?;
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Mark, &FWMARK)
        .context("setting SO_MARK on the raw send socket")?;
    let _ =
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::SndBufForce, &SOCKET_BUFFER);
    into_tokio(s)
}

/// A socket for IP protocol `proto`: receives every such packet for a
/// local address (IPv4 header included), and the kernel sends no
/// "protocol unreachable" while it is open. With `device`, only what
/// arrives on that link (SO_BINDTODEVICE): the XCF link check needs to
/// know the link. Sending on it, the kernel writes the IPv4 header.
pub fn raw_protocol(proto: i32, device: Option<&str>) -> Result<UdpSocket> {
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(socket2::Protocol::from(proto)),
    )
    .with_context(|| format!("opening a raw socket for IP protocol {proto}"))?;
    if let Some(dev) = device {
        s.bind_device(Some(dev.as_bytes()))
            .with_context(|| format!("binding the protocol {proto} socket to {dev}"))?;
    }
    let _ =
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBufForce, &SOCKET_BUFFER);
    let _ =
        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::SndBufForce, &SOCKET_BUFFER);
    into_tokio(s)
}

/// Sends `packets`, each given in parts that the kernel joins, to `to` on
/// `sock` with `sendmmsg(2)`: one system call for a burst instead of one
/// per packet (the kernel still routes each). Waits while the socket's
/// buffer is full; a packet the kernel refuses is skipped and counted in
/// the result's second number.
pub async fn send_batch<const N: usize>(
    sock: &UdpSocket,
    to: Ipv4Addr,
    packets: &[[&[u8]; N]],
) -> std::io::Result<(usize, usize)> {
    use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrIn};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let addr = Some(SockaddrIn::from(SocketAddrV4::new(to, 0)));
    let (mut next, mut refused) = (0, 0);
    while next < packets.len() {
        sock.writable().await?;
        let rest = &packets[next..];
        let sent = sock.try_io(tokio::io::Interest::WRITABLE, || {
            // Built here: the headers hold raw pointers, which must not
            // live across an await.
            let slices: Vec<[IoSlice<'_>; N]> =
                rest.iter().map(|parts| parts.map(IoSlice::new)).collect();
            let addrs = vec![addr; rest.len()];
            let mut headers = MultiHeaders::<SockaddrIn>::preallocate(rest.len(), None);
            sendmmsg(
                sock.as_raw_fd(),
                &mut headers,
                &slices,
                &addrs,
                [],
                MsgFlags::empty(),
            )
            .map(|r| r.count())
            .map_err(std::io::Error::from)
        });
        match sent {
            Ok(n) if n > 0 => next += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(_) | Err(_) => {
                // The first packet of the rest was refused (sendmmsg
                // reports an error only when nothing was sent).
                refused += 1;
                next += 1;
            }
        }
    }
    Ok((packets.len() - refused, refused))
}

/// Receives what is queued on `sock` into `bufs` with one `recvmmsg(2)`
/// (without waiting); `lens` gets each packet's length. `WouldBlock` when
/// nothing is queued.
pub fn try_recv_batch(
    sock: &UdpSocket,
    bufs: &mut [Vec<u8>],
    lens: &mut Vec<usize>,
) -> std::io::Result<usize> {
    use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrIn};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    sock.try_io(tokio::io::Interest::READABLE, || {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let mut headers = MultiHeaders::<SockaddrIn>::preallocate(slices.len(), None);
        let got = recvmmsg(
            sock.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(std::io::Error::from)?;
        lens.clear();
        lens.extend(got.map(|r| r.bytes));
        Ok(lens.len())
    })
}

/// Where `sendto` on a raw socket goes (the port is ignored).
pub fn raw_dest(addr: Ipv4Addr) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(addr, 0))
}

/// The destination of an IPv4 packet (for `sendto` on [`raw_sender`]).
pub fn ipv4_dst(packet: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}
