//! One inbound packet for an owned DVIPA (patent Fig. 8): IPsec is peeked
//! (block 132), looked up in the DCT (block 134), tunnel- and
//! replay-checked (blocks 136, 138) and forwarded still encrypted (block
//! 140); a SYN for a distributed port picks a target by the DISTMETHOD
//! (blocks 142, 144).

use super::*;

/// One more for `target`, without a `String` per packet once it is known.
pub(super) fn count_target(map: &mut BTreeMap<String, u64>, target: &str) {
    match map.get_mut(target) {
        Some(n) => *n += 1,
        None => {
            map.insert(target.to_string(), 1);
        }
    }
}

/// The VIPADISTRIBUTE in force for DVIPA:port.
pub(super) fn distribution_for(
    dists: &mut [Distribution],
    dvipa: Ipv4Addr,
    port: u16,
) -> Option<&mut Distribution> {
    dists
        .iter_mut()
        .find(|d| d.config.addr == dvipa && d.distributes(port))
}

/// The key of [`RoutingCounters::connections`].
pub fn connection_key(dvipa: Ipv4Addr, port: u16, target: &str) -> String {
    format!("{dvipa}:{port} {target}")
}

impl RoutingStack {
    /// Fig. 8: one inbound packet for an owned DVIPA.
    pub fn inbound(&mut self, now: Instant, packet: &[u8]) -> Decision {
        self.counters.packets_in += 1;
        self.now = now;
        self.note = RouteNote::EMPTY;
        let decision = match packet::classify(packet) {
            Err(packet::PacketError::Malformed) => Decision::Drop(RouteDrop::Malformed),
            Err(packet::PacketError::Fragment) => Decision::Drop(RouteDrop::Fragment),
            Ok(kind @ (Kind::Ike | Kind::Plain(_))) => match self.filter_clear(now, packet) {
                Some(drop) => Decision::Drop(drop),
                None => match kind {
                    Kind::Plain(flow) => self.plain(now, packet.len(), &flow),
                    _ => Decision::Ike,
                },
            },
            Ok(Kind::NatKeepalive) => Decision::Drop(RouteDrop::NatKeepalive),
            Ok(Kind::Ipsec(outer)) => self.ipsec(now, packet, &outer),
        };
        self.count(&decision, packet.len());
        decision
    }

    pub(super) fn count(&mut self, d: &Decision, bytes: usize) {
        let c = &mut self.counters;
        match d {
            Decision::Forward { target, .. } => {
                count_target(&mut c.forwarded, target);
                c.forwarded_bytes += bytes as u64;
            }
            Decision::DecryptAndForward { target, .. } => {
                count_target(&mut c.forwarded, target);
                c.forwarded_bytes += bytes as u64;
                c.decrypted_here_and_forwarded += 1;
            }
            Decision::Local => c.local += 1,
            Decision::Ike => c.ike += 1,
            Decision::Drop(r) => *c.drops.entry(r.as_str()).or_default() += 1,
        }
    }

    /// Plain TCP to a distributed port is distributed the same way (the
    /// Sysplex Distributor without IPsec); everything else is local.
    pub(super) fn plain(&mut self, now: Instant, bytes: usize, flow: &Flow) -> Decision {
        if flow.proto != IpProtocol::Tcp || !self.is_distributed(flow.dst, flow.dst_port) {
            return Decision::Local;
        }
        let key = ConnKey {
            client: flow.src,
            client_port: flow.src_port,
            dvipa: flow.dst,
            port: flow.dst_port,
        };
        match self.route_connection(now, key, flow.flags.unwrap_or(TcpFlags(0)), bytes, false) {
            Ok((target, target_xcf)) => Decision::Forward {
                target,
                target_xcf,
                upstream: Upstream::Nothing,
            },
            Err(drop) => Decision::Drop(drop),
        }
    }

    pub(super) fn is_distributed(&self, dvipa: Ipv4Addr, port: u16) -> bool {
        self.distributions
            .iter()
            .any(|d| d.config.addr == dvipa && d.distributes(port))
    }

    pub(super) fn ipsec(&mut self, now: Instant, packet: &[u8], outer: &OuterView) -> Decision {
        let Ok(loc) = locate_in(packet, outer) else {
            return Decision::Drop(RouteDrop::Malformed);
        };
        let Some(i) = self.pairs.iter().position(|p| p.named_by(&loc)) else {
            return Decision::Drop(RouteDrop::UnknownSpi);
        };
        // Block 132: peek, never a full decryption.
        let (peeked, ah_seq) = match self.peek_pair(i, packet, outer) {
            Ok(p) => p,
            // An IPv6 inner packet: not the DVIPA's TCP, so the table's
            // "processed by the routing stack".
            Err(PeekError::Unsupported) => return Decision::Local,
            Err(_) => return Decision::Drop(RouteDrop::PeekFailed),
        };
        self.counters.peeks += 1;
        self.counters.peek_blocks += u64::from(peeked.blocks_decrypted);
        self.note.peek = Some(peeked);
        self.note.ah = self.pairs[i]
            .ah
            .as_ref()
            .zip(ah_seq)
            .map(|(a, seq)| (a.bundle.inbound.spi, seq));
        self.pairs[i].peeks += 1;
        let Some(key) = self.distributable(&self.pairs[i], &peeked) else {
            return Decision::Local;
        };
        // Block 136: the tunnel check, when this stack filters (claim 7);
        // otherwise the target does it after decryption (Fig. 9 block 152).
        if self.config.filter_at == FilterAt::Routing && !self.tunnel_check(now, i, &peeked) {
            return Decision::Drop(RouteDrop::TunnelCheck);
        }
        // Block 138: the replay pre-check, of ESP and of a bundle's AH.
        // Check only: the windows move on authenticated sequence numbers
        // (reported by targets), never on a packet nobody has
        // authenticated yet.
        let pair = &self.pairs[i];
        let ah_fresh = match (&pair.ah, ah_seq) {
            (Some(ah), Some(seq)) => fresh(&ah.precheck, seq),
            _ => true,
        };
        if !ah_fresh || !fresh(&pair.precheck, peeked.seq) {
            return Decision::Drop(RouteDrop::Replay);
        }
        let flags = peeked.tcp_flags.unwrap_or(TcpFlags(0));
        match self.route_connection(now, key, flags, packet.len(), true) {
            Ok((target, target_xcf)) => {
                self.pairs[i].forwarded += 1;
                if self.config.distribute_crypto {
                    let upstream = match self.config.filter_at {
                        FilterAt::Routing => Upstream::Filtered,
                        FilterAt::Target => Upstream::Nothing,
                    };
                    Decision::Forward {
                        target,
                        target_xcf,
                        upstream,
                    }
                } else {
                    Decision::DecryptAndForward { target, target_xcf }
                }
            }
            Err(drop) => Decision::Drop(drop),
        }
    }

    /// Block 132 with the pair's SA: ESP or AH alone, or through a bundle's
    /// AH into its ESP (then also the AH sequence number, for block 138).
    pub(super) fn peek_pair(
        &self,
        i: usize,
        packet: &[u8],
        outer: &OuterView,
    ) -> Result<(PeekResult, Option<u32>), PeekError> {
        let pair = &self.pairs[i];
        match &pair.ah {
            None => peek_in(packet, outer, &pair.inbound).map(|p| (p, None)),
            Some(ah) => peek_bundle_in(packet, outer, &ah.inbound, &pair.inbound)
                .map(|b| (b.esp, Some(b.ah_seq))),
        }
    }

    /// The IPsec combination table: distributable when the inner packet is
    /// TCP to a distributed port of the DVIPA, and, in tunnel mode, the
    /// inner destination is the DVIPA (rows with ^DVIPA inside: "N").
    pub(super) fn distributable(&self, pair: &OwnedPair, p: &PeekResult) -> Option<ConnKey> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (p.src, p.dst) else {
            return None;
        };
        if p.proto != IpProtocol::Tcp {
            return None;
        }
        if pair.inbound.mode() == Mode::Tunnel && dst != pair.install.dvipa {
            return None;
        }
        let key = ConnKey {
            client: src,
            client_port: p.src_port,
            dvipa: dst,
            port: p.dst_port,
        };
        // A distributed port, or a connection a target opened (Fig. 11).
        if !self.is_distributed(dst, p.dst_port) && self.dct.get(&key).is_none() {
            return None;
        }
        Some(key)
    }

    /// Blocks 134 and 142–144: find the connection's target, or pick one for a SYN.
    pub(super) fn route_connection(
        &mut self,
        now: Instant,
        key: ConnKey,
        flags: TcpFlags,
        bytes: usize,
        ipsec: bool,
    ) -> Result<(Arc<str>, Ipv4Addr), RouteDrop> {
        if let Some(found) = self.dct.touch(now, &key, flags, bytes) {
            if let Some(d) = distribution_for(&mut self.distributions, key.dvipa, key.port) {
                d.touch(now, key.client, key.port);
            }
            self.note.dct = DctOutcome::Hit;
            return Ok(found);
        }
        self.note.dct = DctOutcome::Miss;
        if !flags.is_initial_syn() {
            return Err(RouteDrop::NoConnection);
        }
        if self.moving.contains(&key.dvipa) {
            return Err(RouteDrop::Moving);
        }
        let dist = distribution_for(&mut self.distributions, key.dvipa, key.port)
            .ok_or(RouteDrop::NoTarget)?;
        let (target, target_xcf) = dist
            .choose_for(
                now,
                key.client,
                key.port,
                &self.listeners,
                self.dct.active_for(key.dvipa),
            )
            .ok_or(RouteDrop::NoTarget)?;
        match self.dct.make_room() {
            Ok(Some(evicted)) => self.note_ended(evicted),
            Ok(None) => {}
            Err(_) => return Err(RouteDrop::DctFull),
        }
        let target: Arc<str> = target.into();
        let entry = ConnEntry {
            target: Arc::clone(&target),
            target_xcf,
            state: ConnState::SynSeen,
            created: now,
            last_seen: now,
            packets: 1,
            bytes: bytes as u64,
            ipsec,
        };
        self.add_entry(key, entry);
        self.counters.new_connections += 1;
        *self
            .counters
            .connections
            .entry(connection_key(key.dvipa, key.port, &target))
            .or_default() += 1;
        self.note.dct = DctOutcome::New;
        Ok((target, target_xcf))
    }
}
