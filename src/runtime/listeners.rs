//! The namespace's listening TCP sockets, from the kernel's socket
//! diagnostics (`NETLINK_SOCK_DIAG`, `inet_diag` with only `TCP_LISTEN`
//! requested).
//!
//! Why not `/proc/net/tcp`: reading it walks every bucket of the kernel's
//! established-connection hash, which all namespaces share, on every
//! read; with a target refreshing its listener registrations every
//! second, that showed up in profiles of a busy sysplex. A LISTEN-only
//! dump walks the listening hash alone.

use std::io;
use std::net::{IpAddr, SocketAddrV4};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

/// Every IPv4 TCP socket in LISTEN state of the calling thread's
/// namespace, as its local address.
pub fn tcp_listeners() -> io::Result<Vec<SocketAddrV4>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: AF_INET,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id: SocketId::new_v4(),
        })
        .into(),
    );
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut listeners = Vec::new();
    let mut rx = vec![0; 1 << 16];
    loop {
        let size = socket.recv(&mut &mut rx[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let msg = <NetlinkMessage<SockDiagMessage>>::deserialize(&rx[offset..size])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    if let IpAddr::V4(ip) = r.header.socket_id.source_address {
                        listeners.push(SocketAddrV4::new(ip, r.header.socket_id.source_port));
                    }
                }
                NetlinkPayload::Done(_) => return Ok(listeners),
                NetlinkPayload::Error(e) => {
                    return Err(io::Error::other(format!("sock_diag: {e:?}")))
                }
                _ => {}
            }
            let len = msg.header.length as usize;
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener this test opens is in the dump with its address and
    /// port; a connected socket's port is not (only LISTEN was asked for).
    #[test]
    fn finds_a_listener_and_only_listeners() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = match l.local_addr().expect("addr") {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("{other}"),
        };
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let (_server, _) = l.accept().expect("accept");
        let client_port = client.local_addr().expect("client addr").port();
        let found = tcp_listeners().expect("sock_diag dump");
        assert!(found.contains(&addr), "{addr} not in {found:?}");
        assert!(found.iter().all(|a| a.port() != client_port), "{found:?}");
    }
}
