//! Outbound at a target (patent Fig. 10 blocks 160-168): the plan of a
//! reply (sealed with the SA whose dynamic filter matches it, refused when
//! an anchor needs an SA none has, or plain), and sealing under sequence
//! numbers from the coupling facility (block 162).

use super::*;

/// How a shadow pair seals: alone, or as an AH+ESP bundle.
pub(super) fn plan_of(p: &ShadowPair) -> OutboundPlan {
    match &p.ah {
        None => OutboundPlan::Protect {
            spi: p.install.outbound.spi,
            seq_key: p.install.seq_key,
        },
        Some(ah) => OutboundPlan::Bundle {
            spi: p.install.outbound.spi,
            seq_key: p.install.seq_key,
            ah_seq_key: ah.bundle.seq_key,
        },
    }
}

impl TargetStack {
    /// Fig. 10 block 160: is the outbound packet for a connection with
    /// distributed IPsec? With a filter table for its DVIPA, the table
    /// decides: a dynamic filter's SA seals it ([`OutboundPlan::Protect`]
    /// or [`OutboundPlan::Bundle`]); an anchor with no dynamic filter for
    /// it means IPsec is required and no SA exists
    /// ([`OutboundPlan::NeedsSa`]: never sent in clear). Otherwise a shadow
    /// pair without a dynamic filter whose selector covers the packet seals
    /// it, as before dynamic filters travelled, and the rest is plain.
    pub fn outbound_plan(&mut self, packet: &[u8]) -> OutboundPlan {
        self.last_filter = None;
        let Ok(flow) = packet::flow_of(packet) else {
            return OutboundPlan::Plain;
        };
        if let Some(plan) = self.filtered_plan(packet, flow.src) {
            return plan;
        }
        let ports = matches!(flow.proto, IpProtocol::Tcp | IpProtocol::Udp)
            .then_some((flow.src_port, flow.dst_port));
        self.shadow
            .iter()
            .find(|p| {
                p.install.filter.is_none()
                    && p.install.outbound.selector.matches(
                        IpAddr::V4(flow.src),
                        IpAddr::V4(flow.dst),
                        flow.proto,
                        ports,
                    )
            })
            .map_or(OutboundPlan::Plain, plan_of)
    }

    /// An outbound packet from a DVIPA that leaves, sealed (`ipsec`) or
    /// plain: its connection's served entry moves by its flags; the SYN
    /// of a connection this image opens (Fig. 11) makes one.
    pub fn note_sent(&mut self, now: Instant, packet: &[u8], ipsec: bool) {
        if let Some((key, flags)) = self.distributed_tcp(packet, false) {
            let create = flags.is_initial_syn();
            self.served
                .touch(now, key, flags, packet.len(), ipsec, create);
        }
    }

    /// The filter table's plan for an outbound packet from `dvipa`; `None`
    /// when no anchor or dynamic filter of the table matches it.
    pub(super) fn filtered_plan(&mut self, packet: &[u8], dvipa: Ipv4Addr) -> Option<OutboundPlan> {
        let table = self.filters.get_mut(&dvipa)?;
        let dir = PacketDirection::Outbound;
        let p = FilterPacket::from_ipv4(packet, dir, PacketRouting::Local, None).ok()?;
        let v = table.evaluate(&p);
        let plan = match &v {
            filter::Verdict::Protect { rule, sa } => Some(
                self.sealing_pair(sa)
                    .map_or_else(|| OutboundPlan::NeedsSa { rule: rule.clone() }, plan_of),
            ),
            filter::Verdict::NeedsSa { rule, .. } => {
                Some(OutboundPlan::NeedsSa { rule: rule.clone() })
            }
            // An IpManVpnAction anchor: no manual SA covers the packet,
            // or the tunnel is inactive (Active No); never sent in clear.
            // The table counts the reason, the caller `needs-sa`.
            filter::Verdict::Deny {
                rule,
                reason: DenyReason::NoManualSa | DenyReason::ManualInactive,
                ..
            } => Some(OutboundPlan::NeedsSa { rule: rule.clone() }),
            _ => None,
        };
        self.last_filter = Some((v, None));
        plan
    }

    /// The shadow pair that seals for the dynamic filter of outbound SA
    /// `sa`. The pairs of a rekey have the same anchor and selectors, and
    /// the table lists the newest first (z/OS); the oldest still installed
    /// seals, as before dynamic filters travelled: when the client starts
    /// the rekey it installs the new SAs only once our CREATE_CHILD_SA
    /// response arrives, so, like strongSwan as a rekey responder, the
    /// sysplex keeps sending on the old SA until it is deleted (RFC 7296
    /// §2.8 leaves the moment to the implementation).
    pub(super) fn sealing_pair(&self, sa: &SaId) -> Option<&ShadowPair> {
        let chosen = self
            .shadow
            .iter()
            .find(|p| p.install.outbound_id() == *sa)?;
        let Some(f) = &chosen.install.filter else {
            return Some(chosen);
        };
        let rekey_of = |p: &ShadowPair| {
            p.install.filter.as_ref().is_some_and(|g| {
                g.anchor.name == f.anchor.name
                    && g.dynamic.outbound == f.dynamic.outbound
                    && g.dynamic.inbound == f.dynamic.inbound
            }) && p.install.outbound.dst == chosen.install.outbound.dst
        };
        // Shadow pairs are kept in the order they were installed.
        self.shadow.iter().find(|p| rekey_of(p))
    }

    /// The filter-log records since the last call (LOG anchors).
    pub fn take_filter_logs(&mut self) -> Vec<filter::FilterLog> {
        std::mem::take(&mut self.filter_logs)
    }

    /// Fig. 10 block 160's "no": an anchor rule requires IPsec for an
    /// outbound packet no SA covers; it is dropped, counted as
    /// `needs-sa` and by `RULE needs-sa`, never sent in clear.
    pub fn refuse_needs_sa(&mut self, rule: &str) {
        self.note(TargetDrop::NeedsSa);
        *self
            .counters
            .filter_denied
            .entry(format!("{rule} needs-sa"))
            .or_default() += 1;
    }

    /// Fig. 10 blocks 164–168: seal into `out`, ready to leave on this
    /// image's own external link, with the numbers the CF gave: the single
    /// (or ESP) SA's, and for an AH+ESP bundle the AH SA's too (ESP first,
    /// then AH over it). Lifesize is counted on every outbound SA used. A
    /// bundle's ESP SA never leaves without its AH (Fig. 10 plans it as
    /// [`OutboundPlan::Bundle`]), nor a single SA with an AH number.
    pub fn seal(
        &mut self,
        now: Instant,
        spi: Spi,
        seq: SeqNumbers,
        rng: &mut impl RngCore,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TargetDrop> {
        let Some(i) = self.outbound_pair(spi) else {
            return Err(TargetDrop::NoShadowSa);
        };
        let pair = &mut self.shadow[i];
        let sealed = match (pair.ah.as_mut(), seq.ah) {
            (None, None) => pair.outbound.seal(now, seq.esp, rng, packet, out).is_ok(),
            (Some(ah), Some(ah_seq)) => seal_bundle_counted(
                &mut ah.outbound,
                ah_seq,
                &mut pair.outbound,
                seq.esp,
                now,
                rng,
                packet,
                out,
            )
            .is_ok(),
            _ => false,
        };
        if !sealed {
            self.note(TargetDrop::Seal);
            return Err(TargetDrop::Seal);
        }
        self.count_outbound(i, packet.len() as u64, seq.esp, seq.ah);
        Ok(())
    }

    /// The shadow pair whose outbound (ESP or single) SA is `spi`.
    pub(super) fn outbound_pair(&mut self, spi: Spi) -> Option<usize> {
        let i = self
            .shadow
            .iter()
            .position(|p| p.install.outbound.spi == spi);
        if i.is_none() {
            self.note(TargetDrop::NoShadowSa);
        }
        i
    }

    /// Blocks 166–168: outbound lifesize, on the ESP (or single) SA and,
    /// with `ah_seq`, on the bundle's AH SA.
    pub(super) fn count_outbound(&mut self, i: usize, bytes: u64, seq: u64, ah_seq: Option<u64>) {
        self.counters.sealed += 1;
        self.counters.sealed_bytes += bytes;
        let pair = &mut self.shadow[i];
        let mut reports = Vec::new();
        if pair.outbound_life.add(bytes, seq) {
            reports.push(lifesize_msg(pair, Direction::Outbound));
        }
        if let (Some(ah), Some(ah_seq)) = (pair.ah.as_mut(), ah_seq) {
            if ah.outbound_life.add(bytes, ah_seq) {
                reports.push(ah_lifesize_msg(pair.install.dvipa, ah, Direction::Outbound));
            }
        }
        queue_reports(&mut self.counters, &mut self.outbox, &pair.owner, reports);
    }

    pub fn count_plain_out(&mut self) {
        self.counters.plain_out += 1;
    }
}
