//! Filtering at the routing stack: every clear packet for a DVIPA with
//! IPCONFIG IPSECURITY, and, when this stack filters inbound IPsec (claim 7,
//! `FilterAt::Routing`), the tunnel check of a peeked packet against its
//! SA's dynamic filter (patent Fig. 8 block 136, claim 8).

use super::*;

/// Block 136 without a dynamic filter: the inner packet must be traffic
/// the SA was negotiated for (the SA's selector seen from the client:
/// source = client side).
pub(super) fn selector_check(pair: &OwnedPair, p: &PeekResult) -> bool {
    let sel = &pair.install.inbound.selector;
    sel.matches(p.src, p.dst, p.proto, Some((p.src_port, p.dst_port)))
}

/// The filter's view of a peeked inner packet, as if decrypted under
/// `under`: local, inbound, with the ports and TCP flags the peek read
/// (blocks 132-136). `None` for an IPv6 inner packet (no IPv6 rules).
pub(super) fn peeked_packet(p: &PeekResult, under: SaId) -> Option<FilterPacket> {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (p.src, p.dst) else {
        return None;
    };
    let transport = match p.proto {
        IpProtocol::Tcp | IpProtocol::Udp => Transport::Ports {
            src: p.src_port,
            dst: p.dst_port,
        },
        _ => Transport::None,
    };
    let mut packet =
        FilterPacket::new(PacketDirection::Inbound, src, dst, p.proto, transport).under(under);
    packet.tcp_connect = p.tcp_flags.is_some_and(|f| f.is_initial_syn());
    Some(packet)
}

impl RoutingStack {
    /// IPCONFIG IPSECURITY: from now on every clear packet for an owned
    /// DVIPA is filtered by `table` first.
    pub fn set_filter(&mut self, table: FilterTable) {
        self.filter = Some(table);
    }

    /// The IP filter table, if the stack filters.
    pub fn filter(&self) -> Option<&FilterTable> {
        self.filter.as_ref()
    }

    /// The filter-log records of LOG rules since the last call.
    pub fn take_filter_logs(&mut self) -> Vec<FilterLog> {
        std::mem::take(&mut self.filter_logs)
    }

    /// The IP filter check of a packet that arrived in clear (IKE, NAT-T,
    /// plain TCP, UDP, ICMP), before it can make a DCT entry, a CF write or
    /// a NEWCONN: with IPSECURITY, z/OS filters every packet, and clear text
    /// that a rule requires IPsec for is denied. `None`: it passes.
    pub(super) fn filter_clear(&mut self, now: Instant, packet: &[u8]) -> Option<RouteDrop> {
        let table = self.filter.as_mut()?;
        let Ok(p) =
            FilterPacket::from_ipv4(packet, PacketDirection::Inbound, PacketRouting::Local, None)
        else {
            return Some(RouteDrop::Malformed);
        };
        let (verdict, log) = table.evaluate_logged(&p, now);
        self.filter_logs.extend(log);
        let denied = match &verdict {
            Verdict::Deny { rule, reason, .. } => Some(format!("{rule} {}", reason.as_str())),
            Verdict::NeedsSa { rule, .. } => Some(format!("{rule} clear-text")),
            _ => None,
        };
        self.note.filter = Some(verdict);
        let key = denied?;
        *self.counters.filter_denied.entry(key).or_default() += 1;
        Some(RouteDrop::Filtered)
    }

    /// Block 136, the tunnel check of a peeked packet of pair `i` for a
    /// distributed connection, when this stack filters inbound IPsec
    /// (`FilterAt::Routing`, claims 7-8). With a filter table and a pair
    /// that has a dynamic filter, it is the table's lookup of the inner
    /// packet as if decrypted under the pair's inbound SA: only a first
    /// match on that SA's dynamic filter passes; another SA's dynamic
    /// filter (wrong-sa), the anchor itself (outside-sa), a deny rule or
    /// the default deny reject it, counted by rule and reason. A pair with
    /// no dynamic filter (no table, or no IPsec rule anchors it) is checked
    /// against its inbound selector, as before dynamic filters existed.
    /// `true`: it passes.
    pub(super) fn tunnel_check(&mut self, now: Instant, i: usize, p: &PeekResult) -> bool {
        let pair = &self.pairs[i];
        let (Some(table), Some(_)) = (self.filter.as_mut(), pair.install.filter.as_ref()) else {
            return selector_check(pair, p);
        };
        let Some(packet) = peeked_packet(p, pair.install.inbound_id()) else {
            return false;
        };
        let (verdict, log) = table.evaluate_logged(&packet, now);
        self.filter_logs.extend(log);
        let passes = matches!(verdict, Verdict::PermitProtected { .. });
        if !passes {
            let key = verdict.tunnel_denial();
            *self.counters.filter_denied.entry(key).or_default() += 1;
        }
        self.note.filter = Some(verdict);
        passes
    }
}
