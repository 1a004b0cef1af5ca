//! A scripted TCP peer standing in for the kernel's TCP and the HTTP
//! server of a target: SYN → SYN-ACK, an HTTP/1.0 request → the answer
//! with FIN, an HTTP/1.1 request → the answer (the connection stays open),
//! a FIN → its ACK. Enough to render whole connections in traces.

use std::collections::HashMap;
use std::net::Ipv4Addr;

pub use plexnet_core::wire::build::tcp_packet;
use plexnet_core::wire::{ipv4, tcp, IpProtocol, TcpFlags};

#[derive(Debug, Clone)]
pub struct ScriptedServer {
    pub image: String,
    pub addr: Ipv4Addr,
    pub port: u16,
    /// Next sequence number per client connection.
    conns: HashMap<(Ipv4Addr, u16), u32>,
}

impl ScriptedServer {
    pub fn new(image: &str, addr: Ipv4Addr, port: u16) -> Self {
        Self {
            image: image.to_string(),
            addr,
            port,
            conns: HashMap::new(),
        }
    }

    /// A segment the server sends unasked on the open connection from
    /// `client:cport` (more of a streamed answer), `None` without one.
    pub fn push(&mut self, client: Ipv4Addr, cport: u16, payload: &[u8]) -> Option<Vec<u8>> {
        let seq = self.conns.get_mut(&(client, cport))?;
        let flags = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0);
        let segment = tcp_packet(self.addr, self.port, client, cport, *seq, 0, flags, payload);
        *seq = seq.wrapping_add(payload.len() as u32);
        Some(segment)
    }

    /// The segments the server sends in answer to one it received.
    pub fn receive(&mut self, packet: &[u8]) -> Vec<Vec<u8>> {
        let Ok(ip) = ipv4::Packet::new_checked(packet) else {
            return Vec::new();
        };
        if ip.next_header() != IpProtocol::Tcp || ip.dst_addr() != self.addr {
            return Vec::new();
        }
        let Ok(t) = tcp::Packet::new_checked(ip.payload()) else {
            return Vec::new();
        };
        if t.dst_port() != self.port {
            return Vec::new();
        }
        let (client, cport, f) = (ip.src_addr(), t.src_port(), t.flags());
        let reply = |seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]| {
            tcp_packet(
                self.addr, self.port, client, cport, seq, ack, flags, payload,
            )
        };
        if f.is_initial_syn() {
            self.conns.insert((client, cport), 1001);
            return vec![reply(
                1000,
                t.seq_number().wrapping_add(1),
                TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
                &[],
            )];
        }
        let Some(&seq) = self.conns.get(&(client, cport)) else {
            return vec![reply(0, t.seq_number(), TcpFlags::RST, &[])];
        };
        let data_len = t.payload().len() as u32;
        if data_len > 0 && t.payload().windows(8).any(|w| w == b"HTTP/1.1") {
            // HTTP/1.1 keeps the connection open (RFC 9112 §9.3): the
            // answer has a length and no FIN, so the client can send more.
            let body = format!("served by {}\n", self.image);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let flags = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0);
            self.conns
                .insert((client, cport), seq + answer.len() as u32);
            return vec![reply(
                seq,
                t.seq_number().wrapping_add(data_len),
                flags,
                answer.as_bytes(),
            )];
        }
        if data_len > 0 {
            let body = format!("HTTP/1.0 200 OK\r\n\r\nserved by {}\n", self.image);
            let flags = TcpFlags(TcpFlags::PSH.0 | TcpFlags::ACK.0 | TcpFlags::FIN.0);
            self.conns
                .insert((client, cport), seq + body.len() as u32 + 1);
            return vec![reply(
                seq,
                t.seq_number().wrapping_add(data_len),
                flags,
                body.as_bytes(),
            )];
        }
        if f.contains(TcpFlags::FIN) {
            self.conns.remove(&(client, cport));
            return vec![reply(
                seq,
                t.seq_number().wrapping_add(1),
                TcpFlags::ACK,
                &[],
            )];
        }
        Vec::new()
    }
}
