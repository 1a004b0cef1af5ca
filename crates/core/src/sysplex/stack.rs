//! An image's own IP handling of packets its TUN delivers, before any
//! distribution: the owner of a DVIPA answers ICMP echo for it (so a user can
//! `ping DVA1` and see which image answers), and every packet it does not
//! handle is counted with its reason. Sans-IO: packets in, packets out.

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::wire::icmp;
use crate::wire::ipv4;
use crate::wire::IpProtocol;

/// Why the stack did not answer a packet. Stable names: they appear in
/// `plexnet status` and in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// Not a well-formed IPv4 packet (length, version or header checksum).
    MalformedIp,
    /// Well-formed IPv4, bad ICMP (length or checksum).
    MalformedIcmp,
    /// Destination is not a DVIPA this image owns.
    NotOwned,
    /// A fragment: the echo responder does not reassemble.
    Fragment,
    /// A protocol or ICMP type this image does not handle (yet).
    Unhandled,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::MalformedIp => "malformed-ip",
            DropReason::MalformedIcmp => "malformed-icmp",
            DropReason::NotOwned => "not-owned",
            DropReason::Fragment => "fragment",
            DropReason::Unhandled => "unhandled",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StackCounters {
    pub packets_in: u64,
    pub echo_requests: u64,
    pub echo_replies: u64,
    pub drops: BTreeMap<&'static str, u64>,
}

/// What to do with an inbound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Write this packet back into the TUN.
    Reply(Vec<u8>),
    Drop(DropReason),
}

#[derive(Debug, Clone)]
pub struct ImageStack {
    pub image: String,
    owned: Vec<Ipv4Addr>,
    counters: StackCounters,
}

impl ImageStack {
    pub fn new(image: &str, owned: Vec<Ipv4Addr>) -> Self {
        Self {
            image: image.to_string(),
            owned,
            counters: StackCounters::default(),
        }
    }

    pub fn owned(&self) -> &[Ipv4Addr] {
        &self.owned
    }

    /// A DVIPA this image took over (VIPA takeover) is answered here too.
    pub fn add_owned(&mut self, dvipa: Ipv4Addr) {
        if !self.owned.contains(&dvipa) {
            self.owned.push(dvipa);
        }
    }

    /// A DVIPA given back to its owner leaves the owned ones.
    pub fn remove_owned(&mut self, dvipa: Ipv4Addr) {
        self.owned.retain(|d| *d != dvipa);
    }

    pub fn counters(&self) -> &StackCounters {
        &self.counters
    }

    /// Handles one packet read from the TUN.
    pub fn inbound(&mut self, packet: &[u8]) -> Verdict {
        self.counters.packets_in += 1;
        let verdict = self.classify(packet);
        match &verdict {
            Verdict::Reply(_) => self.counters.echo_replies += 1,
            Verdict::Drop(reason) => *self.counters.drops.entry(reason.as_str()).or_default() += 1,
        }
        verdict
    }

    fn classify(&mut self, packet: &[u8]) -> Verdict {
        let Ok(ip) = ipv4::Packet::new_checked(packet) else {
            return Verdict::Drop(DropReason::MalformedIp);
        };
        let Ok(ip_repr) = ipv4::Repr::parse(&ip) else {
            return Verdict::Drop(DropReason::MalformedIp);
        };
        if !self.owned.contains(&ip_repr.dst_addr) {
            return Verdict::Drop(DropReason::NotOwned);
        }
        if ip_repr.more_frags || ip_repr.frag_offset != 0 {
            return Verdict::Drop(DropReason::Fragment);
        }
        if ip_repr.next_header != IpProtocol::Icmp {
            return Verdict::Drop(DropReason::Unhandled);
        }
        self.echo_reply(&ip_repr, ip.payload())
    }

    /// RFC 792: the echo reply swaps the addresses and returns the
    /// identifier, sequence number and data unchanged.
    fn echo_reply(&mut self, ip_repr: &ipv4::Repr, payload: &[u8]) -> Verdict {
        let Ok(icmp_packet) = icmp::Packet::new_checked(payload) else {
            return Verdict::Drop(DropReason::MalformedIcmp);
        };
        if !icmp_packet.verify_checksum() {
            return Verdict::Drop(DropReason::MalformedIcmp);
        }
        let Ok(icmp::Repr::EchoRequest {
            ident,
            seq_no,
            data,
        }) = icmp::Repr::parse(&icmp_packet)
        else {
            return Verdict::Drop(DropReason::Unhandled);
        };
        self.counters.echo_requests += 1;
        let reply = icmp::Repr::EchoReply {
            ident,
            seq_no,
            data,
        };
        let reply_ip = ipv4::Repr::new(
            ip_repr.dst_addr,
            ip_repr.src_addr,
            IpProtocol::Icmp,
            reply.buffer_len(),
        );
        let mut out = vec![0u8; reply_ip.buffer_len() + reply.buffer_len()];
        let mut ip_out = ipv4::Packet::new_unchecked(&mut out[..]);
        reply_ip.emit(&mut ip_out);
        reply.emit(&mut icmp::Packet::new_unchecked(ip_out.payload_mut()));
        Verdict::Reply(out)
    }
}
