//! The simulator drives each image's [`Image`] state machine as the
//! daemon does, with virtual time and in-memory links: XCF messages go
//! in through `handle_xcf`, packets for the owner's DVIPA and packets the
//! image's kernel sends through `handle_tun_burst`, GRE from an XCF data
//! link through `handle_xcf_datagram`, and what it polls out (CF requests,
//! sealed chunks, XCF messages, TUN writes, events and inbound notes) is
//! answered or queued here and rendered as trace lines. The CF answers at once (its round trip takes no virtual time).

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

use super::{cf_answer, seq_name, xcf_name, Event, SaSpec, World, HOP_MS};
use plexnet_core::sysplex::image::{
    CfAsk, CfFailure, ImageEvent, ImageId, NewConnPolicy, Payload, SealKeys, SealedChunk, Transmit,
};
use plexnet_core::sysplex::xcf::{CfRequest, CfResponse, XcfMessage};
use plexnet_core::time::Instant;
use plexnet_core::trace as render;

impl World {
    /// The virtual clock as the core's [`Instant`]: the one conversion.
    pub(crate) fn instant(&self) -> Instant {
        Instant::from_millis(self.now_ms)
    }

    /// Fig. 11 in the simulator: the targets' IKE policy lets the
    /// routing stack negotiate on demand with the client, and the owner's
    /// IKE (not simulated) answers a NEWCONN with the SA pair `spec`.
    pub fn ike_on_demand(&mut self, spec: SaSpec) {
        let owner = self.owner.clone();
        let policy = NewConnPolicy {
            on_demand: true,
            peers: BTreeMap::from([(self.dvipa, vec![self.client.addr])]),
            owners: BTreeMap::from([(self.dvipa, owner)]),
            ..NewConnPolicy::default()
        };
        for img in self.images.values_mut() {
            img.image.set_newconn_policy(policy.clone());
        }
        self.newconn_answer = Some(spec);
    }

    /// The kernel of `image` sends `packet` (an application opening a
    /// connection from the DVIPA): Fig. 10's path, Fig. 11's if no SA
    /// covers it.
    pub fn kernel_sends(&mut self, image: &str, packet: Vec<u8>) {
        self.log(format!("{image} kernel   {}", render::packet(&packet)));
        self.queue.push_back((
            self.now_ms,
            Event::Outbound {
                image: image.into(),
                packet,
            },
        ));
        self.run();
    }

    /// The server of `image` answers with several segments at once (one
    /// TUN read of the daemon): their numbers come from the CF in blocks.
    pub fn server_burst(&mut self, image: &str, client_port: u16, payloads: &[&[u8]]) {
        let client = self.client.addr;
        let mut burst = Vec::new();
        for p in payloads {
            if let Some(seg) = self.image(image).server.push(client, client_port, p) {
                self.log(format!("{image} server   {}", render::packet(&seg)));
                burst.push(seg);
            }
        }
        self.outbound_burst(image, burst);
        self.run();
    }

    /// Fig. 10 at `image` for one packet its kernel sent.
    pub(super) fn outbound(&mut self, image: &str, packet: &[u8]) {
        self.outbound_burst(image, vec![packet.to_vec()]);
    }

    /// Fig. 10: the image plans each packet (filter → shadow SA, block
    /// 160), asks the CF for numbers (block 162), seals (block 164).
    fn outbound_burst(&mut self, image: &str, burst: Vec<Vec<u8>>) {
        let now = self.instant();
        let img = &mut self.image(image).image;
        let needs_sa_before = needs_sa_drops(img);
        img.handle_tun_burst(now, burst.iter().map(Vec::as_slice));
        if let Some((f, _)) = img.target().last_filter() {
            let line = format!(
                "{image} target   outbound filter (block 160): {}",
                render::verdict(f, None)
            );
            self.log(line);
        }
        if needs_sa_drops(&self.images[image].image) > needs_sa_before {
            self.log(format!("{image} target   DROP needs-sa: not sent in clear"));
        }
        self.drain_image(image, &burst);
    }

    /// Carries out everything `name`'s image polls out, until it is quiet.
    /// The kernel's answers are queued before what the stacks send.
    pub(super) fn drain_image(&mut self, name: &str, burst: &[Vec<u8>]) {
        self.drain_events(name);
        while let Some(plain) = self.image(name).image.poll_tun_write() {
            self.deliver_to_kernel(name, &plain);
        }
        loop {
            self.drain_events(name);
            let asked = self.answer_cf(name);
            let Some(t) = self.image(name).image.poll_transmit() else {
                if asked {
                    continue;
                }
                break;
            };
            self.transmit(name, t, burst);
        }
    }

    /// The CF answers `name`'s requests for sequence numbers at once.
    fn answer_cf(&mut self, name: &str) -> bool {
        let now = self.instant();
        let mut asked = false;
        while let Some(ask) = self.image(name).image.poll_cf_request(now) {
            asked = true;
            let ask = match ask {
                CfAsk::Numbers(ask) => ask,
                CfAsk::Kv { id, req } => {
                    let r = self.cf.request(req.clone());
                    self.log_takeover_cf(name, &req, &r);
                    self.image(name).image.handle_cf_response(now, id, r);
                    self.drain_events(name);
                    continue;
                }
            };
            let req = CfRequest::FetchAdd {
                key: ask.key,
                n: ask.n,
            };
            let r = self.cf.request(req);
            if ask.n > 1 {
                // A block for a burst; a single number shows in the seal line.
                self.log(format!(
                    "{name} → CF     FetchAdd {} n={} = {}: {} packets wait unsealed for it",
                    seq_name(&ask.key),
                    ask.n,
                    cf_answer(&r),
                    ask.n
                ));
            }
            let reply = match r {
                CfResponse::SeqRange { first, n } => Ok((first, n)),
                r => {
                    self.log(format!("{name} target   CF refused: {}", cf_answer(&r)));
                    Err(CfFailure::of_response(&r))
                }
            };
            let mut rng = std::mem::replace(&mut self.rng, ChaCha8Rng::seed_from_u64(0));
            self.image(name)
                .image
                .handle_cf_reply(now, ask.id, reply, &mut rng);
            self.rng = rng;
        }
        asked
    }

    /// One transmit of `name`'s image onto the simulated links.
    fn transmit(&mut self, name: &str, t: Transmit, burst: &[Vec<u8>]) {
        let at = self.now_ms + HOP_MS;
        match t {
            Transmit::Ext(packet) => {
                self.log(format!("{name} target   no SA covers it: sent plain"));
                let from = name.into();
                self.queue.push_back((at, Event::ToClient { from, packet }));
            }
            Transmit::Sealed(chunk) => self.sealed_to_client(name, chunk),
            Transmit::Xcf { to, msg } => self.send_xcf(name, to.as_str(), msg),
            Transmit::XcfData {
                to,
                upstream,
                payload,
            } => {
                let inner = match &payload {
                    Payload::Input(i) => burst.get(*i).map_or(&[][..], Vec::as_slice),
                    Payload::Owned(p) => p,
                };
                let (src, dst) = (self.images[name].xcf, self.images[to.as_str()].xcf);
                let datagram =
                    super::XcfDatagram::new(self.xcf_forwarding, src, dst, inner, upstream);
                // Forwarded as it came (block 140); a plaintext decrypted
                // here was told with the routing decision.
                if let Payload::Input(_) = payload {
                    self.log(format!(
                        "{name} routing  → {to}: {} over XCF ({} bytes)",
                        datagram.describe(dst),
                        datagram.wire_len()
                    ));
                }
                let (from, to) = (name.to_string(), to.to_string());
                self.queue
                    .push_back((at, Event::Gre { from, to, datagram }));
            }
        }
    }

    /// A sealed chunk leaves the target's own ext (Fig. 10 block 164); the
    /// simulated wire never misses a deadline.
    fn sealed_to_client(&mut self, image: &str, chunk: SealedChunk) {
        for d in &chunk.refused {
            self.log(format!("{image} target   DROP {}", d.name()));
        }
        let sent = chunk.packets.len();
        if sent > 0 {
            let what = describe_chunk(&chunk);
            self.log(format!(
                "{image} target   {what}; sealed, out of {image}'s own ext"
            ));
        }
        let at = self.now_ms + HOP_MS;
        for packet in chunk.packets {
            let from = image.into();
            self.queue.push_back((at, Event::ToClient { from, packet }));
        }
        self.image(image).image.handle_sealed_sent(chunk.id, sent);
    }

    /// What `name`'s image tells its shell: NEWCONNs for the owner's IKE,
    /// refused SAs.
    fn drain_events(&mut self, name: &str) {
        while let Some(e) = self.image(name).image.poll_event() {
            match e {
                ImageEvent::NewConnSent { owner, .. } => self.log(format!(
                    "{name} target   no SA covers the SYN: NEWCONN to {owner}, SYN held (Fig. 11 block 174)"
                )),
                ImageEvent::NewConn { from, request } => self.newconn(name, &from, &request),
                ImageEvent::SaRefused { reason, .. } => {
                    self.log(format!("{name} target   refused SA: {reason}"));
                }
                ImageEvent::IkeDatagram(_) => {
                    self.log(format!("{name} routing  IKE (not simulated here)"));
                }
                ImageEvent::Inbound(note) => self.log_inbound(name, note),
                ImageEvent::Lifesize { .. } | ImageEvent::FilterLogs(_) => {}
                ev => self.takeover_event(name, ev),
            }
        }
    }

    /// Fig. 11 block 176 at the routing stack: its IKE negotiates the SA
    /// the NEWCONN asks for (the scenario's, after one hop of virtual time).
    fn newconn(&mut self, owner: &str, from: &ImageId, request: &XcfMessage) {
        let Some(spec) = self.newconn_answer.take() else {
            self.log(format!(
                "{owner} routing  NEWCONN from {from}: no IKE to negotiate"
            ));
            return;
        };
        self.log(format!(
            "{owner} IKE      NEWCONN from {from} ({}): negotiates an SA pair with the client",
            xcf_name(request)
        ));
        self.queue
            .push_back((self.now_ms + HOP_MS, Event::Negotiated(spec)));
    }

    /// A message over XCF into the image's state machine.
    pub(super) fn deliver_xcf(&mut self, from: &str, to: &str, msg: XcfMessage) {
        let now = self.instant();
        self.log(format!("{from} → {to}  XCF {}", xcf_name(&msg)));
        self.heard(to, from);
        let shadowed_by = self.shadowed_by(to, &msg);
        let img = &mut self.image(to).image;
        let released = img.counters().newconn_released;
        img.handle_xcf(now, &ImageId::new(from), msg);
        let released = img.counters().newconn_released - released;
        self.drain_events(to);
        if released > 0 {
            self.log(format!(
                "{to} target   SA arrived: {released} held SYN released (Fig. 11 block 176)"
            ));
        }
        self.after_xcf(from, to, shadowed_by);
    }
}

/// The target's `needs-sa` drops so far.
fn needs_sa_drops(image: &plexnet_core::sysplex::image::Image) -> u64 {
    image
        .target()
        .counters()
        .drops
        .get("needs-sa")
        .copied()
        .unwrap_or(0)
}

/// "shadow SA 0x00002001 seq 4 from CF FetchAdd(1)" and the like.
fn describe_chunk(c: &SealedChunk) -> String {
    let (first, n) = (c.first.esp, u64::from(c.n));
    match (c.keys, c.first.ah) {
        (SealKeys::Bundle(_, ah_key), Some(ah)) if n == 1 => format!(
            "shadow bundle ESP {:#010x} seq {first} + AH {:#010x} seq {ah}, each from its CF FetchAdd(1)",
            c.spi.0, ah_key.spi.0
        ),
        (SealKeys::Bundle(_, ah_key), Some(ah)) => format!(
            "shadow bundle ESP {:#010x} seq {first}..{} + AH {:#010x} seq {ah}..{} from those blocks, {} packets",
            c.spi.0,
            first.saturating_add(n.saturating_sub(1)),
            ah_key.spi.0,
            ah.saturating_add(n.saturating_sub(1)),
            c.packets.len()
        ),
        _ if n == 1 => format!(
            "shadow SA {:#010x} seq {first} from CF FetchAdd(1)",
            c.spi.0
        ),
        _ => format!(
            "shadow SA {:#010x} seq {first}..{} from that block, {} packets",
            c.spi.0,
            first.saturating_add(n.saturating_sub(1)),
            c.packets.len()
        ),
    }
}
