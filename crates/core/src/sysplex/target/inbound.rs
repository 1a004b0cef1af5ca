//! Inbound at a target (patent Fig. 9 blocks 150-158): GRE checked against
//! its XCF link, IPsec opened with the shadow SA, the decrypted packet
//! filtered with its SA's dynamic filter (block 152) and delivered; a
//! connection none of whose packets was admitted is ended at the routing
//! stack.

use super::*;

pub(super) fn conn_ended(key: ConnKey, reason: ConnEndReason) -> XcfMessage {
    XcfMessage::ConnEnded {
        dvipa: key.dvipa,
        port: key.port,
        client: key.client,
        client_port: key.client_port,
        reason,
    }
}

impl TargetStack {
    /// GRE from a routing stack over the XCF link whose peer has XCF
    /// address `link_peer`.
    pub fn from_gre(&mut self, now: Instant, link_peer: Ipv4Addr, packet: &[u8]) -> Verdict {
        let decapped = decap(packet, self.xcf);
        self.link_checked(now, link_peer, decapped)
    }

    /// The same for GRE-in-UDP (RFC 8086): `body` is a UDP payload to
    /// this image's XCF address, port 4754, sent from `udp_src`.
    pub fn from_gre_in_udp(
        &mut self,
        now: Instant,
        link_peer: Ipv4Addr,
        udp_src: Ipv4Addr,
        body: &[u8],
    ) -> Verdict {
        let decapped = decap_gre(udp_src, body);
        self.link_checked(now, link_peer, decapped)
    }

    /// Figs. 7 and 9 after decapsulation: the link check, then opening.
    pub(super) fn link_checked(
        &mut self,
        now: Instant,
        link_peer: Ipv4Addr,
        decapped: Result<Decapped<'_>, TargetDrop>,
    ) -> Verdict {
        self.counters.gre_in += 1;
        let verdict = match decapped {
            Err(drop) => Verdict::Drop(drop),
            Ok(g) if g.outer_src != link_peer => Verdict::Drop(TargetDrop::LinkCheck),
            Ok(g) => self.inbound(now, g.inner, g.upstream),
        };
        self.count_drop(&verdict);
        verdict
    }

    /// A packet for a DVIPA this image serves, without GRE (this image is
    /// its own routing stack), with what the routing stack already did.
    pub fn inbound(&mut self, now: Instant, packet: &[u8], upstream: Upstream) -> Verdict {
        self.last_filter = None;
        match packet::classify(packet) {
            Err(_) => Verdict::Drop(TargetDrop::BadGre),
            Ok(Kind::Ipsec(outer)) => {
                self.open(now, packet, &outer, upstream == Upstream::Filtered)
            }
            Ok(_) if upstream == Upstream::Decrypted => self.deliver_plain(now, packet, true),
            Ok(Kind::Plain(flow)) if self.clear_denied(now, packet, flow.dst) => {
                Verdict::Drop(TargetDrop::Unprotected)
            }
            Ok(Kind::Plain(flow))
                if self.protected(flow.src, flow.dst, flow.proto, flow.src_port, flow.dst_port) =>
            {
                Verdict::Drop(TargetDrop::Unprotected)
            }
            Ok(_) => self.deliver_plain(now, packet, false),
        }
    }

    /// A clear packet to `dvipa` whose first match in the DVIPA's table is
    /// an anchor or a dynamic filter: IPsec is required (counted as
    /// `RULE clear-text`). The table holds only what the routing stack
    /// sent, none of its permit and deny rules: its default deny means
    /// "no anchor's business", and the routing stack, which has the whole
    /// policy, filtered the packet before forwarding it.
    pub(super) fn clear_denied(&mut self, now: Instant, packet: &[u8], dvipa: Ipv4Addr) -> bool {
        let Some(table) = self.filters.get_mut(&dvipa) else {
            return false;
        };
        let dir = PacketDirection::Inbound;
        let Ok(p) = FilterPacket::from_ipv4(packet, dir, PacketRouting::Local, None) else {
            return false;
        };
        let (v, log) = table.evaluate_logged(&p, now);
        self.filter_logs.extend(log);
        let denied = matches!(
            &v,
            filter::Verdict::Deny {
                reason: filter::DenyReason::ClearText,
                ..
            }
        );
        if denied {
            *self
                .counters
                .filter_denied
                .entry(v.tunnel_denial())
                .or_default() += 1;
        }
        self.last_filter = Some((v, None));
        denied
    }

    /// A clear packet (or one the routing stack decrypted, `ipsec`) into
    /// the kernel; a TCP packet to a distributed DVIPA is its connection's.
    pub(super) fn deliver_plain(&mut self, now: Instant, packet: &[u8], ipsec: bool) -> Verdict {
        self.counters.plain_delivered += 1;
        if let Some((key, flags)) = self.distributed_tcp(packet, true) {
            self.served
                .touch(now, key, flags, packet.len(), ipsec, true);
        }
        Verdict::Deliver(packet.to_vec())
    }

    /// The connection of a TCP packet to (`inbound`) or from a DVIPA a
    /// VIPA list distributes to this target, and its flags.
    pub(super) fn distributed_tcp(
        &self,
        packet: &[u8],
        inbound: bool,
    ) -> Option<(ConnKey, TcpFlags)> {
        let flow = packet::flow_of(packet).ok()?;
        if flow.proto != IpProtocol::Tcp {
            return None;
        }
        let key = if inbound {
            ConnKey {
                client: flow.src,
                client_port: flow.src_port,
                dvipa: flow.dst,
                port: flow.dst_port,
            }
        } else {
            ConnKey {
                client: flow.dst,
                client_port: flow.dst_port,
                dvipa: flow.src,
                port: flow.src_port,
            }
        };
        let listed = self
            .vipa_lists
            .values()
            .flatten()
            .any(|e| e.dvipa == key.dvipa);
        listed.then_some((key, flow.flags.unwrap_or(TcpFlags::default())))
    }

    /// Whether some shadow filter says this inbound flow must be protected.
    pub(super) fn protected(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: IpProtocol,
        sp: u16,
        dp: u16,
    ) -> bool {
        self.shadow.iter().any(|p| {
            p.install.inbound.selector.matches(
                IpAddr::V4(src),
                IpAddr::V4(dst),
                proto,
                Some((sp, dp)),
            )
        })
    }

    /// Fig. 9 blocks 150–158; `filtered`: the routing stack filtered (claim 7).
    pub(super) fn open(
        &mut self,
        now: Instant,
        packet: &[u8],
        outer: &OuterView,
        filtered: bool,
    ) -> Verdict {
        let Ok(loc) = locate_in(packet, outer) else {
            return Verdict::Drop(TargetDrop::BadGre);
        };
        let Some(i) = self
            .shadow
            .iter()
            .position(|p| loc.names(&p.install.inbound, p.ah.as_ref().map(|a| &a.bundle.inbound)))
        else {
            return Verdict::Drop(TargetDrop::NoShadowSa);
        };
        let mut out = std::mem::take(&mut self.scratch);
        let pair = &mut self.shadow[i];
        // Block 150: ESP or AH alone, or the bundle (AH first, RFC 4301 §5.2).
        let opened = match pair.ah.as_mut() {
            None => pair.inbound.open(now, packet, &mut out),
            Some(ah) => {
                open_bundle_counted(&mut ah.inbound, &mut pair.inbound, now, packet, &mut out)
            }
        };
        let verdict = match opened {
            Err(e) => {
                self.reject_if_new(now, i, packet, e);
                Verdict::Drop(TargetDrop::Ipsec(e.reason()))
            }
            Ok(o) => {
                self.counters.opened += 1;
                self.counters.opened_bytes += o.protected_bytes as u64;
                match self.after_open(now, i, &out, o.protected_bytes as u64, o.seq, filtered) {
                    // The plaintext buffer goes to the caller as it is.
                    Ok(()) => return Verdict::Deliver(out),
                    Err(d) => Verdict::Drop(d),
                }
            }
        };
        out.clear();
        self.scratch = out;
        verdict
    }

    /// Block 152 (inbound filter, unless the routing stack did it) and
    /// 154–158 (lifesize). The engine's own selector check after
    /// decryption (RFC 4301 §5.2) ran while opening, unless the pair has a
    /// dynamic filter, which makes that check here ([`opening_selector`]).
    pub(super) fn after_open(
        &mut self,
        now: Instant,
        i: usize,
        plain: &[u8],
        bytes: u64,
        seq: u64,
        filtered: bool,
    ) -> Result<(), TargetDrop> {
        let Ok(flow) = packet::flow_of(plain) else {
            return Err(TargetDrop::Filter);
        };
        let key = (flow.proto == IpProtocol::Tcp).then_some(ConnKey {
            client: flow.src,
            client_port: flow.src_port,
            dvipa: flow.dst,
            port: flow.dst_port,
        });
        if filtered {
            self.counters.filter_skipped += 1;
        } else if let Err(d) = self.inbound_filter(now, i, plain, &flow) {
            self.reject_unadmitted(i, key);
            return Err(d);
        }
        self.count_inbound(i, bytes, seq);
        if let Some(key) = key {
            let flags = flow.flags.unwrap_or(TcpFlags::default());
            self.served.touch(now, key, flags, plain.len(), true, true);
            if flags.contains(TcpFlags::RST) {
                let owner = self.shadow[i].owner.clone();
                self.outbox
                    .push((owner, conn_ended(key, ConnEndReason::Reset)));
            }
        }
        Ok(())
    }

    /// Block 152: the decrypted packet of shadow pair `i`. With a dynamic
    /// filter, the DVIPA's table decides with the packet marked as having
    /// arrived under the pair's inbound SA X: only a first match on a
    /// dynamic filter of X passes; another SA's (wrong-sa), the anchor
    /// itself or nothing at all (outside-sa, default-deny) is refused and
    /// counted by rule and reason. Without one, the pair's inbound
    /// selector decides, as before dynamic filters travelled.
    pub(super) fn inbound_filter(
        &mut self,
        now: Instant,
        i: usize,
        plain: &[u8],
        flow: &Flow,
    ) -> Result<(), TargetDrop> {
        let install = &self.shadow[i].install;
        let table = match (&install.filter, self.filters.get_mut(&install.dvipa)) {
            (Some(_), Some(t)) => t,
            _ => {
                let ports = matches!(flow.proto, IpProtocol::Tcp | IpProtocol::Udp)
                    .then_some((flow.src_port, flow.dst_port));
                let (src, dst) = (IpAddr::V4(flow.src), IpAddr::V4(flow.dst));
                let sel = &install.inbound.selector;
                let admitted = sel.matches(src, dst, flow.proto, ports);
                return admitted.then_some(()).ok_or(TargetDrop::Filter);
            }
        };
        let under = install.inbound_id();
        let dir = PacketDirection::Inbound;
        let Ok(p) = FilterPacket::from_ipv4(plain, dir, PacketRouting::Local, Some(under)) else {
            return Err(TargetDrop::Filter);
        };
        let (v, log) = table.evaluate_logged(&p, now);
        self.filter_logs.extend(log);
        let admitted = matches!(&v, filter::Verdict::PermitProtected { sa, .. } if *sa == under);
        if !admitted {
            *self
                .counters
                .filter_denied
                .entry(v.tunnel_denial())
                .or_default() += 1;
        }
        self.last_filter = Some((v, Some(under)));
        admitted.then_some(()).ok_or(TargetDrop::Filter)
    }

    /// A filtered packet of a TCP connection none of whose packets this
    /// target admitted: the routing stack's DCT entry (made from a peek,
    /// with `FilterAt::Target`) serves nothing, so it is ended as for a
    /// packet that failed authentication.
    pub(super) fn reject_unadmitted(&mut self, i: usize, key: Option<ConnKey>) {
        let Some(key) = key.filter(|k| !self.served.contains(k)) else {
            return;
        };
        let owner = self.shadow[i].owner.clone();
        self.outbox
            .push((owner, conn_ended(key, ConnEndReason::Rejected)));
    }

    /// Blocks 154–158: inbound lifesize, on the ESP (or single) SA and on
    /// a bundle's AH SA, each reported when its threshold is reached.
    pub(super) fn count_inbound(&mut self, i: usize, bytes: u64, seq: u64) {
        let pair = &mut self.shadow[i];
        let mut reports = Vec::new();
        if pair.inbound_life.add(bytes, seq) {
            reports.push(lifesize_msg(pair, Direction::Inbound));
        }
        if let Some(ah) = pair.ah.as_mut() {
            // The AH window's top: the highest AH number authenticated.
            if ah.inbound_life.add(bytes, ah.inbound.replay().top()) {
                reports.push(ah_lifesize_msg(pair.install.dvipa, ah, Direction::Inbound));
            }
        }
        queue_reports(&mut self.counters, &mut self.outbox, &pair.owner, reports);
    }

    /// A packet that failed authentication may be the forged SYN that made
    /// the routing stack's DCT entry: unless this connection has had an
    /// authenticated packet here, tell the routing stack to drop the entry.
    pub(super) fn reject_if_new(&mut self, _now: Instant, i: usize, packet: &[u8], e: OpenError) {
        if !matches!(e.reason(), DropReason::IcvMismatch) {
            return;
        }
        let Ok(p) = peek(packet, self.shadow[i].inbound.sa()) else {
            return;
        };
        let (IpAddr::V4(client), IpAddr::V4(dvipa)) = (p.src, p.dst) else {
            return;
        };
        let key = ConnKey {
            client,
            client_port: p.src_port,
            dvipa,
            port: p.dst_port,
        };
        if p.proto == IpProtocol::Tcp && !self.served.contains(&key) {
            let owner = self.shadow[i].owner.clone();
            self.outbox
                .push((owner, conn_ended(key, ConnEndReason::Rejected)));
        }
    }
}
