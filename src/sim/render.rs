//! Stable one-line renderings of packets for traces.

use std::fmt::Write;

use crate::ipsec::peek::locate;
use crate::ipsec::sa::Protocol;
use crate::wire::{ipv4, tcp, udp, IpProtocol, TcpFlags};

/// `TCP 1.2.3.4:5 > 6.7.8.9:80 [S]` for a peeked flow; no ports or flags
/// for protocols without them.
pub fn flow(
    proto: IpProtocol,
    src: impl std::fmt::Display,
    sp: u16,
    dst: impl std::fmt::Display,
    dp: u16,
    f: Option<TcpFlags>,
) -> String {
    let name = format!("{proto:?}").to_uppercase();
    match (proto, f) {
        (IpProtocol::Tcp, Some(f)) => format!("{name} {src}:{sp} > {dst}:{dp} [{}]", flags(f)),
        (IpProtocol::Tcp | IpProtocol::Udp, _) => format!("{name} {src}:{sp} > {dst}:{dp}"),
        _ => format!("{name} {src} > {dst}"),
    }
}

/// `S`, `SA`, `PA`, `FA`, `R`... as tcpdump writes TCP flags.
pub fn flags(f: TcpFlags) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (TcpFlags::SYN, 'S'),
        (TcpFlags::FIN, 'F'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::ACK, 'A'),
    ] {
        if f.contains(bit) {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

/// `TCP 198.18.1.2:40000 > 198.18.0.100:80 [S] len=0`, `ICMP ...`, or for
/// IPsec `ESP spi=0x00001001 198.18.1.2 > 198.18.0.100 (136 bytes)`.
pub fn packet(p: &[u8]) -> String {
    let Ok(ip) = ipv4::Packet::new_checked(p) else {
        return format!("<{} bytes, not IPv4>", p.len());
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let payload = ip.payload();
    let mut s = String::new();
    match ip.next_header() {
        IpProtocol::Tcp => match tcp::Packet::new_checked(payload) {
            Ok(t) => {
                let _ = write!(
                    s,
                    "TCP {src}:{} > {dst}:{} [{}] len={}",
                    t.src_port(),
                    t.dst_port(),
                    flags(t.flags()),
                    t.payload().len()
                );
            }
            Err(_) => s.push_str("TCP <truncated>"),
        },
        IpProtocol::Esp | IpProtocol::Ah | IpProtocol::Udp => match locate(p) {
            Ok(loc) => {
                let name = match loc.protocol {
                    Protocol::Esp => "ESP",
                    Protocol::Ah => "AH",
                };
                let encap = if ip.next_header() == IpProtocol::Udp {
                    " in UDP 4500"
                } else {
                    ""
                };
                // An AH+ESP bundle: the AH header first, as on the wire.
                if let Some(ah) = loc.ah_spi {
                    let _ = write!(s, "AH spi={:#010x} + ", ah.0);
                }
                let _ = write!(
                    s,
                    "{name}{encap} spi={:#010x} {src} > {dst} ({} bytes)",
                    loc.spi.0,
                    p.len()
                );
            }
            Err(_) => match udp::Packet::new_checked(payload) {
                Ok(u) => {
                    let _ = write!(
                        s,
                        "UDP {src}:{} > {dst}:{} len={}",
                        u.src_port(),
                        u.dst_port(),
                        u.payload().len()
                    );
                }
                Err(_) => {
                    let _ = write!(s, "{:?} {src} > {dst}", ip.next_header());
                }
            },
        },
        IpProtocol::Icmp => {
            use crate::wire::icmp;
            let what = match icmp::Packet::new_checked(payload)
                .map(|i| (i.msg_type(), i.echo_ident(), i.echo_seq_no()))
            {
                Ok((icmp::Message::EchoRequest, id, seq)) => {
                    format!("echo request id={id} seq={seq}")
                }
                Ok((icmp::Message::EchoReply, id, seq)) => format!("echo reply id={id} seq={seq}"),
                Ok((other, _, _)) => format!("{other:?}"),
                Err(_) => "<truncated>".into(),
            };
            let _ = write!(s, "ICMP {src} > {dst} {what}");
        }
        IpProtocol::Gre => {
            let _ = write!(s, "GRE {src} > {dst} ({} bytes)", p.len());
        }
        other => {
            let _ = write!(s, "{other:?} {src} > {dst} ({} bytes)", p.len());
        }
    }
    s
}
