//! The image's packets: inbound at the routing stack (Fig. 8), at the
//! target stack from an XCF data link (Figs. 7 and 9), and outbound from
//! the image's kernel (Fig. 10, with Fig. 11's NEWCONN for a SYN no SA
//! covers yet).

use std::net::Ipv4Addr;

use super::notes::Before;
use super::{
    Image, ImageEvent, ImageId, InboundNote, Payload, SealKeys, TargetVia, Transmit, XcfDatagram,
};
use crate::ipsec::sa::Spi;
use crate::sysplex::routing::Decision;
use crate::sysplex::stack;
use crate::sysplex::target::{OutboundPlan, Upstream, Verdict};
use crate::time::Instant;

/// Packets of one burst to seal, grouped by the CF structures they take
/// their numbers from.
type SealGroups = Vec<(SealKeys, Vec<(Spi, Vec<u8>)>)>;

/// The destination address of an IPv4 packet.
fn ipv4_dst(packet: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    (packet.first()? >> 4 == 4).then_some(Ipv4Addr::from(b))
}

impl Image {
    /// A burst read from the TUN: packets for an owned DVIPA (inbound,
    /// Fig. 8; the kernel routes them here from `ext`) and packets the
    /// kernel sends from a DVIPA (outbound, Fig. 10). A packet forwarded
    /// as it came is named by its index in `packets`
    /// ([`Payload::Input`]).
    pub fn handle_tun_burst<'a>(
        &mut self,
        now: Instant,
        packets: impl IntoIterator<Item = &'a [u8]>,
    ) {
        let mut outbound: Vec<Vec<u8>> = Vec::new();
        for (i, p) in packets.into_iter().enumerate() {
            if ipv4_dst(p).is_some_and(|d| self.stack.owned().contains(&d)) {
                outbound.extend(self.inbound_at_owner(now, i, p));
            } else {
                outbound.push(p.to_vec());
            }
        }
        self.outbound(now, outbound);
    }

    /// Fig. 8 at the routing stack; returns packets this image answers
    /// itself (ICMP echo), which leave like any outbound packet.
    fn inbound_at_owner(&mut self, now: Instant, i: usize, packet: &[u8]) -> Vec<Vec<u8>> {
        let decision = self.route(now, packet);
        match decision {
            Decision::Forward {
                target, upstream, ..
            } if *target == *self.id.as_str() => {
                self.deliver_here(now, packet, upstream, TargetVia::Direct)
            }
            Decision::Forward {
                target, upstream, ..
            } => {
                self.transmits.push_back(Transmit::XcfData {
                    to: ImageId::from(target),
                    upstream,
                    payload: Payload::Input(i),
                });
                Vec::new()
            }
            Decision::DecryptAndForward { target, .. } => {
                let v = self.target.inbound(now, packet, Upstream::Nothing);
                // Its lifesize reports leave now, as on every other path.
                self.collect_target_outbox();
                if let Verdict::Deliver(plain) = v {
                    self.transmits.push_back(Transmit::XcfData {
                        to: ImageId::from(target),
                        upstream: Upstream::Decrypted,
                        payload: Payload::Owned(plain),
                    });
                }
                Vec::new()
            }
            Decision::Local => self.deliver_here(now, packet, Upstream::Nothing, TargetVia::Direct),
            Decision::Ike => {
                self.events
                    .push_back(ImageEvent::IkeDatagram(packet.to_vec()));
                Vec::new()
            }
            Decision::Drop(_) => Vec::new(),
        }
    }

    /// Fig. 8 blocks 132–146: the routing stack's decision (this image
    /// processes what it owns but does not distribute).
    fn route(&mut self, now: Instant, packet: &[u8]) -> Decision {
        let Some(r) = self.routing.as_mut() else {
            return Decision::Local;
        };
        let d = r.inbound(now, packet);
        let logs = r.take_filter_logs();
        if self.trace {
            let note = r.last_note().clone();
            let decision = d.clone();
            self.note(|| InboundNote::Routed { note, decision });
        }
        self.push_filter_logs(logs);
        d
    }

    /// This image's own target stack, then its IP layer: echo for an owned
    /// DVIPA answered here, the rest into the TUN for the kernel.
    fn deliver_here(
        &mut self,
        now: Instant,
        packet: &[u8],
        upstream: Upstream,
        via: TargetVia,
    ) -> Vec<Vec<u8>> {
        let before = Before::of(self.target.counters());
        let verdict = self.target.inbound(now, packet, upstream);
        self.note_target(via, before, &verdict);
        self.collect_target_outbox();
        let Verdict::Deliver(plain) = verdict else {
            return Vec::new();
        };
        if let stack::Verdict::Reply(reply) = self.stack.inbound(&plain) {
            self.note(|| InboundNote::EchoAnswered);
            return vec![reply];
        }
        self.tun_writes.push_back(plain);
        Vec::new()
    }

    /// Figs. 7 and 9 for one datagram from the XCF data link of the peer
    /// whose XCF address is `link_peer` (the patent's link check).
    pub fn handle_xcf_datagram(
        &mut self,
        now: Instant,
        link_peer: Ipv4Addr,
        datagram: XcfDatagram<'_>,
    ) {
        let before = Before::of(self.target.counters());
        let (verdict, via) = match datagram {
            XcfDatagram::Gre(packet) => {
                (self.target.from_gre(now, link_peer, packet), TargetVia::Gre)
            }
            XcfDatagram::GreInUdp { src, body } => (
                self.target.from_gre_in_udp(now, link_peer, src, body),
                TargetVia::GreInUdp,
            ),
        };
        self.note_target(via, before, &verdict);
        self.collect_target_outbox();
        if let Verdict::Deliver(plain) = verdict {
            self.tun_writes.push_back(plain);
        }
    }

    /// Fig. 10: filter → shadow SA; one block of CF numbers per SA for
    /// the whole burst (block 162), asked through
    /// [`Image::poll_cf_request`]; the packets wait for the answer, then
    /// are sealed (block 164). Fig. 11: a SYN no SA covers yet may make a
    /// NEWCONN and wait.
    fn outbound(&mut self, now: Instant, packets: Vec<Vec<u8>>) {
        if packets.is_empty() {
            return;
        }
        let mut protect: SealGroups = Vec::new();
        for p in packets {
            match self.target.outbound_plan(&p) {
                OutboundPlan::Plain => {
                    if let Some(p) = self.newconn_or_hold(now, p) {
                        self.target.note_sent(now, &p, false);
                        self.target.count_plain_out();
                        self.transmits.push_back(Transmit::Ext(p));
                    }
                }
                // Fig. 10 block 160: policy requires IPsec and no SA
                // covers it. A SYN to an IKE peer waits for one (Fig. 11);
                // anything else is dropped, never sent in clear.
                OutboundPlan::NeedsSa { rule } => {
                    if self.newconn_or_hold(now, p).is_some() {
                        self.target.refuse_needs_sa(&rule);
                    }
                }
                OutboundPlan::Protect { spi, seq_key } => {
                    self.target.note_sent(now, &p, true);
                    group_by_keys(&mut protect, SealKeys::Single(seq_key), spi, p);
                }
                OutboundPlan::Bundle {
                    spi,
                    seq_key,
                    ah_seq_key,
                } => {
                    let keys = SealKeys::Bundle(seq_key, ah_seq_key);
                    self.target.note_sent(now, &p, true);
                    group_by_keys(&mut protect, keys, spi, p);
                }
            }
        }
        for (keys, group) in protect {
            self.numbers.enqueue(keys, group);
        }
    }

    /// Fig. 11 block 174: a SYN to an IKE peer of its DVIPA sends a
    /// NEWCONN to the DVIPA's routing stack and is held; any other packet
    /// comes back.
    fn newconn_or_hold(&mut self, now: Instant, p: Vec<u8>) -> Option<Vec<u8>> {
        let Some((owner, msg)) = self.newconn.request(self.target.vipa_lists(), &p) else {
            return Some(p);
        };
        self.held
            .hold(now, p, self.newconn.hold_max, &mut self.counters);
        self.events.push_back(ImageEvent::NewConnSent {
            owner: owner.clone(),
            request: msg.clone(),
        });
        self.send_xcf(owner, msg);
        None
    }

    /// Fig. 11 blocks 176–178: held SYNs that now have an SA are sealed
    /// and sent; the others wait until [`super::HELD_FOR`].
    pub(super) fn release_held(&mut self, now: Instant) {
        if self.held.is_empty() {
            return;
        }
        let ready = self
            .held
            .take_ready(now, &mut self.target, &mut self.counters);
        self.outbound(now, ready);
    }

    /// Whether sealed packets or CF requests are outstanding (for a shell
    /// that drains until the image is quiet).
    pub fn numbers_pending(&self) -> bool {
        !self.numbers.is_idle()
    }
}

/// Adds a packet to the group of its CF structures.
fn group_by_keys(groups: &mut SealGroups, keys: SealKeys, spi: Spi, packet: Vec<u8>) {
    match groups.iter_mut().find(|(k, _)| *k == keys) {
        Some((_, v)) => v.push((spi, packet)),
        None => groups.push((keys, vec![(spi, packet)])),
    }
}
