//! Stable one-line renderings of packets, selectors, filter actions and
//! filter verdicts, in the spirit of smoltcp's `pretty_print`: the
//! simulator's traces (and so its insta snapshots) are written with them,
//! so a rendering changes only when the packet or the decision does.
//! Pure functions over the core's types: no I/O.

use std::net::Ipv4Addr;

use crate::ipsec::filter::{DenyReason, Verdict};
use crate::ipsec::peek::{locate, SaLocator};
use crate::ipsec::policy::FilterAction;
use crate::ipsec::sa::{AddrRange, PortRange, Protocol, Spi, TrafficSelector};
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
    match ip.next_header() {
        IpProtocol::Tcp => match tcp::Packet::new_checked(payload) {
            Ok(t) => format!(
                "TCP {src}:{} > {dst}:{} [{}] len={}",
                t.src_port(),
                t.dst_port(),
                flags(t.flags()),
                t.payload().len()
            ),
            Err(_) => "TCP <truncated>".into(),
        },
        IpProtocol::Esp | IpProtocol::Ah | IpProtocol::Udp => match locate(p) {
            Ok(loc) => ipsec_packet(&loc, ip.next_header() == IpProtocol::Udp, src, dst, p.len()),
            Err(_) => match udp::Packet::new_checked(payload) {
                Ok(u) => format!(
                    "UDP {src}:{} > {dst}:{} len={}",
                    u.src_port(),
                    u.dst_port(),
                    u.payload().len()
                ),
                Err(_) => format!("{:?} {src} > {dst}", ip.next_header()),
            },
        },
        IpProtocol::Icmp => format!("ICMP {src} > {dst} {}", icmp_message(payload)),
        IpProtocol::Gre => format!("GRE {src} > {dst} ({} bytes)", p.len()),
        other => format!("{other:?} {src} > {dst} ({} bytes)", p.len()),
    }
}

/// `ESP in UDP 4500 spi=0x00001001 198.18.1.2 > 198.18.0.100 (136 bytes)`,
/// with `AH spi=... + ` in front for an AH+ESP bundle (AH first, as on the
/// wire).
fn ipsec_packet(loc: &SaLocator, in_udp: bool, src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> String {
    let name = match loc.protocol {
        Protocol::Esp => "ESP",
        Protocol::Ah => "AH",
    };
    let encap = if in_udp { " in UDP 4500" } else { "" };
    let ah = loc
        .ah_spi
        .map(|ah| format!("AH spi={:#010x} + ", ah.0))
        .unwrap_or_default();
    format!(
        "{ah}{name}{encap} spi={:#010x} {src} > {dst} ({len} bytes)",
        loc.spi.0
    )
}

/// `echo request id=1 seq=2`, `echo reply ...`, or the message type.
fn icmp_message(payload: &[u8]) -> String {
    use crate::wire::icmp;
    match icmp::Packet::new_checked(payload)
        .map(|i| (i.msg_type(), i.echo_ident(), i.echo_seq_no()))
    {
        Ok((icmp::Message::EchoRequest, id, seq)) => format!("echo request id={id} seq={seq}"),
        Ok((icmp::Message::EchoReply, id, seq)) => format!("echo reply id={id} seq={seq}"),
        Ok((other, _, _)) => format!("{other:?}"),
        Err(_) => "<truncated>".into(),
    }
}

/// A traffic selector as a flow: `TCP 198.18.1.2:40000-40009 >
/// 198.18.0.100:80`, `any 198.18.1.2 > 198.18.0.100` (RFC 7296 §3.13.1
/// ranges; one address or port written once).
pub fn selector(ts: &TrafficSelector) -> String {
    let addrs = |r: &AddrRange| {
        if r.start == r.end {
            r.start.to_string()
        } else {
            format!("{}-{}", r.start, r.end)
        }
    };
    let ports = |p: &PortRange| match (p.start, p.end) {
        (0, u16::MAX) => String::new(),
        (a, b) if a == b => format!(":{a}"),
        (a, b) => format!(":{a}-{b}"),
    };
    let proto = ts
        .protocol
        .map_or("any".to_string(), |p| format!("{p:?}").to_uppercase());
    format!(
        "{proto} {}{} > {}{}",
        addrs(&ts.src),
        ports(&ts.src_ports),
        addrs(&ts.dst),
        ports(&ts.dst_ports)
    )
}

/// What a filter table decided, in a network engineer's words, with the SA
/// the packet came under (inbound) for the tunnel checks.
pub fn verdict(v: &Verdict, under: Option<Spi>) -> String {
    let spi = |s: Spi| format!("{:#010x}", s.0);
    let under = under.map_or("its SA".to_string(), |s| format!("SA {}", spi(s)));
    match v {
        Verdict::Permit { rule } => format!("{rule} permits it in clear"),
        Verdict::PermitProtected { rule, sa } => {
            format!("dynamic filter of {rule} for SA {} admits it", spi(sa.spi))
        }
        Verdict::Protect { rule, sa } => {
            format!("dynamic filter of {rule}: seal with SA {}", spi(sa.spi))
        }
        Verdict::NeedsSa { rule, .. } => {
            format!("{rule} requires IPsec and no SA's dynamic filter covers it")
        }
        Verdict::PermitStackIcmp => "an ICMP error the stack needs: permitted".into(),
        Verdict::Deny {
            rule,
            reason,
            filter_sa,
        } => {
            let why = match reason {
                DenyReason::ClearText => format!("{rule} requires IPsec, it came in clear"),
                DenyReason::WrongSa => format!(
                    "the dynamic filter of {rule} for SA {} matched first, it came under {under}",
                    filter_sa.map_or("?".into(), |s| spi(s.spi))
                ),
                DenyReason::OutsideSa => {
                    format!("{rule} requires IPsec and no dynamic filter of {under} admits it")
                }
                DenyReason::DenyRule => format!("{rule} denies it"),
                DenyReason::DefaultDeny => format!("no rule admits it, {rule}"),
                DenyReason::ProtectedPermit => {
                    format!("{rule} permits it in clear only, it came under {under}")
                }
                DenyReason::NoManualSa => {
                    format!("{rule} requires its manual tunnel and no manual SA covers it")
                }
                DenyReason::ManualInactive => {
                    format!("{rule}'s manual tunnel is not active (Active No)")
                }
            };
            format!("{why}: denied ({})", reason.as_str())
        }
    }
}

/// A filter rule's action: `permit`, `deny`, `ipsec(esp-tunnel)`,
/// `manual(man-tunnel)`.
pub fn action(a: &FilterAction) -> String {
    match a {
        FilterAction::Permit => "permit".into(),
        FilterAction::Deny => "deny".into(),
        FilterAction::Ipsec(v) => format!("ipsec({})", v.name),
        FilterAction::Manual(v) if v.active => format!("manual({})", v.name),
        FilterAction::Manual(v) => format!("manual({}, inactive)", v.name),
    }
}
