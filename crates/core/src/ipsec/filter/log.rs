//! Filter logging: which z/OS syslogd message a decision produces, its
//! text, and the per-rule token bucket that limits how many are written.
//! Time comes in as the core's clock ([`Instant`], time since start); the
//! caller renders the wall clock timestamp.

use crate::time::Instant;
use core::fmt::{self, Write as _};
use core::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::packet::{FilterPacket, PacketRouting, Transport};
use super::{RuleName, Verdict};
use crate::ipsec::sa::Spi;
use crate::wire::IpProtocol;

/// The z/OS Communications Server message a filter decision is logged
/// with (IP Messages Volume 2 (EZB, EZD)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageId {
    /// EZD0814I "Packet permitted": a permit rule or a dynamic filter let
    /// the packet through. (Its layout is taken to be EZD0815I's; the
    /// EZD0814I page was not available to check.)
    Ezd0814i,
    /// EZD0815I "Packet denied by policy": a deny rule, or the default deny.
    Ezd0815i,
    /// EZD0821I "Packet denied, no tunnel": the packet matched a rule with
    /// an IPsec action but no tunnel of it.
    Ezd0821i,
    /// EZD0833I "Packet denied, tunnel mismatch": an inbound packet "was not
    /// encapsulated as specified in the filter rule".
    Ezd0833i,
}

impl MessageId {
    /// The message id and text up to the timestamp.
    pub const fn prefix(self) -> &'static str {
        match self {
            MessageId::Ezd0814i => "EZD0814I Packet permitted:",
            MessageId::Ezd0815i => "EZD0815I Packet denied by policy:",
            MessageId::Ezd0821i => "EZD0821I Packet denied, no tunnel:",
            MessageId::Ezd0833i => "EZD0833I Packet denied, tunnel mismatch:",
        }
    }
}

/// How many filter log messages one rule may write: a token bucket of
/// `burst` messages refilled at `per_sec` per second. (z/OS limits
/// defensive filter messages per rule, EZD0837I; plexnet applies the same
/// idea to every rule so a flood cannot flood syslogd.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimit {
    /// Bucket size: messages that may be written back to back.
    pub burst: u32,
    /// Refill rate, messages per second.
    pub per_sec: u32,
}

impl Default for LogLimit {
    fn default() -> LogLimit {
        LogLimit {
            burst: 10,
            per_sec: 1,
        }
    }
}

/// Fixed-point scale of the bucket: one message is this many units, so
/// refilling by elapsed nanoseconds × rate needs no floating point.
const UNIT: u64 = 1_000_000_000;

/// One rule's bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LogBucket {
    /// Units available; `None` until first used (then the bucket is full).
    tokens: Option<u64>,
    last: Instant,
    /// Messages refused so far.
    pub(super) suppressed: u64,
}

impl LogBucket {
    /// Takes one message's worth at `now`; false (and counts it) if empty.
    /// A `now` earlier than the last call refills nothing.
    pub(super) fn take(&mut self, limit: LogLimit, now: Instant) -> bool {
        let cap = u64::from(limit.burst).saturating_mul(UNIT);
        let tokens = match self.tokens {
            None => cap,
            Some(t) => {
                let elapsed = now.saturating_duration_since(self.last).as_nanos();
                let gained = elapsed.saturating_mul(u128::from(limit.per_sec));
                let gained = u64::try_from(gained).unwrap_or(u64::MAX);
                t.saturating_add(gained).min(cap)
            }
        };
        self.last = self.last.max(now);
        if tokens >= UNIT {
            self.tokens = Some(tokens - UNIT);
            true
        } else {
            self.tokens = Some(tokens);
            self.suppressed += 1;
            false
        }
    }
}

/// One log record: what z/OS would write to syslogd for one filtered
/// packet. Built without allocating; [`FilterLog::render`] makes the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterLog {
    /// Which message.
    pub id: MessageId,
    /// When, on the caller's monotonic clock.
    pub at: Instant,
    /// The rule (the anchor's name for a dynamic filter, as z/OS logs it).
    pub rule: RuleName,
    /// The IpDynVpnAction of the rule, if any (`vpnaction=`).
    pub vpn_action: Option<RuleName>,
    /// The tunnel the rule or dynamic filter names (`tunnelID=`), as the
    /// SPI of its SA in the packet's direction.
    pub tunnel: Option<Spi>,
    /// EZD0833I only: the tunnel the packet was decapsulated from
    /// (`decap_tunnelID=`), `None` if it arrived in clear.
    pub decap_tunnel: Option<Spi>,
    /// The packet.
    pub packet: FilterPacket,
}

impl FilterLog {
    /// The record for a decision, if the decision has a message.
    /// `vpn_action` is the IpDynVpnAction of the deciding rule.
    pub(super) fn new(
        verdict: &Verdict,
        packet: &FilterPacket,
        at: Instant,
        vpn_action: Option<&RuleName>,
    ) -> Option<FilterLog> {
        let (id, rule, tunnel, decap_tunnel) = match verdict {
            Verdict::Permit { rule } => (MessageId::Ezd0814i, rule, None, None),
            Verdict::PermitProtected { rule, sa } | Verdict::Protect { rule, sa } => {
                (MessageId::Ezd0814i, rule, Some(sa.spi), None)
            }
            Verdict::NeedsSa { rule, .. } => (MessageId::Ezd0821i, rule, None, None),
            Verdict::Deny {
                rule,
                reason,
                filter_sa,
            } if reason.is_tunnel_mismatch() => (
                MessageId::Ezd0833i,
                rule,
                filter_sa.map(|sa| sa.spi),
                packet.arrived_under.map(|sa| sa.spi),
            ),
            Verdict::Deny { rule, .. } => (MessageId::Ezd0815i, rule, None, None),
            Verdict::PermitStackIcmp => return None,
        };
        Some(FilterLog {
            id,
            at,
            rule: rule.clone(),
            vpn_action: vpn_action.cloned(),
            tunnel,
            decap_tunnel,
            packet: *packet,
        })
    }

    /// The syslogd line, in the field order of the z/OS message:
    /// `filter rule= ext= sipaddr= dipaddr= proto= tag1 tag2 tag3
    /// Interface= (dir) secclass= dest= len= vpnaction= tunnelID= ifcname=
    /// fragment=` (EZD0815I, EZD0821I without `tunnelID=`, EZD0833I without
    /// `secclass=` and `vpnaction=` but with `decap_tunnelID=`).
    /// `timestamp` is the caller's wall clock text; `ifc_addr` and
    /// `ifc_name` name the interface the packet crossed.
    pub fn render(&self, timestamp: &str, ifc_addr: Ipv4Addr, ifc_name: &str) -> String {
        let p = &self.packet;
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            "{} {timestamp} filter rule= {} ext= 1 sipaddr= {} dipaddr= {} proto= {} {} \
             Interface= {ifc_addr} ({})",
            self.id.prefix(),
            self.rule,
            p.src,
            p.dst,
            Proto(p.protocol),
            Tags(p.transport, p.protocol),
            p.direction.letter(),
        );
        if self.id != MessageId::Ezd0833i {
            let _ = write!(s, " secclass= {}", p.security_class);
        }
        let dest = match p.routing {
            PacketRouting::Local => "local",
            PacketRouting::Routed => "routed",
        };
        let _ = write!(s, " dest= {dest} len= {}", p.len);
        if self.id != MessageId::Ezd0833i {
            let vpn = self.vpn_action.as_deref().unwrap_or("N/A");
            let _ = write!(s, " vpnaction= {vpn}");
        }
        if self.id != MessageId::Ezd0821i {
            let _ = write!(s, " tunnelID= {}", Tunnel(self.tunnel));
        }
        if self.id == MessageId::Ezd0833i {
            let _ = write!(s, " decap_tunnelID= {}", Tunnel(self.decap_tunnel));
        }
        let frag = if p.fragment { 'Y' } else { 'N' };
        let _ = write!(s, " ifcname= {ifc_name} fragment= {frag}");
        s
    }
}

/// `proto=` as z/OS writes it: `TCP(6)`, `ICMP(1)`, or the number.
struct Proto(IpProtocol);

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = u8::from(self.0);
        match self.0 {
            IpProtocol::Unknown(89) => write!(f, "OSPF(89)"),
            IpProtocol::Unknown(_) => write!(f, "{n}"),
            known => write!(f, "{known}({n})"),
        }
    }
}

/// tag1 tag2 tag3: `sport= n dport= n` for TCP and UDP, `type= n code= n`
/// for ICMP, `type= n` for OSPF, `Unknown` where a fragment lacks the
/// header; `-=` stands for a tag that does not apply.
struct Tags(Transport, IpProtocol);

impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Transport::Ports { src, dst }, _) => write!(f, "sport= {src} dport= {dst} -="),
            (Transport::Icmp { icmp_type, code }, _) => {
                write!(f, "type= {icmp_type} code= {code} -=")
            }
            (Transport::Ospf { ospf_type }, _) => write!(f, "type= {ospf_type} -= -="),
            (Transport::None, IpProtocol::Tcp | IpProtocol::Udp) => {
                write!(f, "sport= Unknown dport= Unknown -=")
            }
            (Transport::None, IpProtocol::Icmp) => write!(f, "type= Unknown code= Unknown -="),
            (Transport::None, _) => write!(f, "-= -= -="),
        }
    }
}

/// `tunnelID=`: the SPI, or `N/A`.
struct Tunnel(Option<Spi>);

impl fmt::Display for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(spi) => write!(f, "{spi}"),
            None => f.write_str("N/A"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn bucket_limits_and_refills() {
        let limit = LogLimit {
            burst: 3,
            per_sec: 2,
        };
        let mut b = LogBucket::default();
        let t0 = Instant::from_secs(100);
        assert!(b.take(limit, t0) && b.take(limit, t0) && b.take(limit, t0));
        assert!(!b.take(limit, t0));
        assert_eq!(b.suppressed, 1);
        // Half a second refills one message at 2/s, not two.
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take(limit, t1));
        assert!(!b.take(limit, t1));
        // A long pause refills to the burst, no further.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(b.take(limit, t2));
        }
        assert!(!b.take(limit, t2));
        // Time going backwards refills nothing.
        assert!(!b.take(limit, t0));
        assert_eq!(b.suppressed, 4);
    }

    #[test]
    fn zero_rate_never_refills() {
        let limit = LogLimit {
            burst: 1,
            per_sec: 0,
        };
        let mut b = LogBucket::default();
        assert!(b.take(limit, Instant::ZERO));
        assert!(!b.take(limit, Instant::from_secs(1_000_000)));
    }

    #[test]
    fn protocol_and_tags_render_as_zos_does() {
        assert_eq!(Proto(IpProtocol::Tcp).to_string(), "TCP(6)");
        assert_eq!(Proto(IpProtocol::Icmp).to_string(), "ICMP(1)");
        assert_eq!(Proto(IpProtocol::Unknown(89)).to_string(), "OSPF(89)");
        assert_eq!(Proto(IpProtocol::Unknown(132)).to_string(), "132");
        let ports = Tags(Transport::Ports { src: 1, dst: 2 }, IpProtocol::Tcp);
        assert_eq!(ports.to_string(), "sport= 1 dport= 2 -=");
        let frag = Tags(Transport::None, IpProtocol::Udp);
        assert_eq!(frag.to_string(), "sport= Unknown dport= Unknown -=");
        assert_eq!(Tunnel(None).to_string(), "N/A");
        assert_eq!(Tunnel(Some(Spi(0x1234))).to_string(), "0x00001234");
    }
}
