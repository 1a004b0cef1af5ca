//! The deterministic simulator: a client, a routing stack, target stacks
//! and the coupling facility in one process, with virtual time, a seeded
//! RNG and in-memory links. Every packet and decision is rendered as a line
//! of stable text — peek results, DCT hits and misses, the chosen target,
//! GRE hops, the shadow SA used, sequence numbers taken from the CF — which
//! the snapshot tests keep. The same `sysplex` state machines run in the
//! real namespaces under `runtime`.

mod giveback;
mod image;
mod server;
mod takeover;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use plexnet_core::ipsec::filter::FilterTable;
use plexnet_core::ipsec::sa::{
    EncAlg, IntegAlg, Key, Lifetimes, Mode, PortRange, Protocol, Sa, SaConfig, Spi, TrafficSelector,
};
use plexnet_core::ipsec::sad::{open_bundle_counted, seal_bundle_counted, InboundSa, OutboundSa};
use plexnet_core::sysplex::config::{Dest, DestRole, DistMethod, VipaDistribute, XcfForwarding};
use plexnet_core::sysplex::image::{
    Image, ImageConfig, ImageId, InboundNote, NewConnPolicy, TargetNote, TargetVia,
    XcfDatagram as LinkDatagram,
};
use plexnet_core::sysplex::routing::{
    DctOutcome, Decision, RouteNote, RoutingConfig, RoutingStack,
};
use plexnet_core::sysplex::target::{self, Upstream, Verdict};
use plexnet_core::sysplex::xcf::{
    AhBundle, BundleInstall, CfRequest, CfResponse, SaInstall, SeqKey, XcfMessage,
};
use plexnet_core::time::Instant;
use plexnet_core::wire::TcpFlags;

pub use server::{tcp_packet, ScriptedServer};

/// The coupling facility as the simulator sees it: requests in, answers out.
pub trait CfService {
    fn request(&mut self, req: CfRequest) -> CfResponse;
}

/// Link latency of every hop, in virtual milliseconds.
const HOP_MS: u64 = 1;

/// An image of the simulated sysplex: the same [`Image`] state machine
/// the daemon drives, and the server its kernel runs.
#[derive(Debug)]
pub struct SimImage {
    pub name: ImageId,
    pub xcf: Ipv4Addr,
    pub image: Image,
    pub server: ScriptedServer,
}

impl SimImage {
    /// `name` at `xcf`, owning `owned`, with `routing` when it owns any.
    fn new(
        name: &str,
        xcf: Ipv4Addr,
        owned: Vec<Ipv4Addr>,
        routing: Option<RoutingStack>,
        server: ScriptedServer,
    ) -> Self {
        let config = ImageConfig {
            id: ImageId::new(name),
            xcf_addr: xcf,
            owned,
            newconn: NewConnPolicy::default(),
            limits: Default::default(),
            hash_seed: 0,
        };
        let mut image = Image::new(config, routing, Instant::ZERO);
        // The trace renders what the image notes of each inbound packet.
        image.set_trace(true);
        Self {
            name: ImageId::new(name),
            xcf,
            image,
            server,
        }
    }
}

/// The simulator's XCF links are up before its trace starts, and its
/// scenarios announce what a routing stack has explicitly: every image
/// starts in sync with every other (no first-contact resync).
fn links_up(images: &mut BTreeMap<ImageId, SimImage>) {
    let names: Vec<ImageId> = images.keys().cloned().collect();
    for img in images.values_mut() {
        for peer in &names {
            img.image.assume_synced(peer);
        }
    }
}

/// The client: its ends of the manually keyed SA pairs.
#[derive(Debug)]
pub struct SimClient {
    pub name: String,
    pub addr: Ipv4Addr,
    /// Its SAs to the DVIPA, the latest last (the one it sends on).
    outbound: Vec<OutboundSa>,
    /// Its SAs from the DVIPA, any of which may answer.
    inbound: Vec<InboundSa>,
    /// The AH SAs outside `outbound` and `inbound` in an AH+ESP bundle.
    ah_outbound: Option<OutboundSa>,
    ah_inbound: Option<InboundSa>,
    next_seq: u64,
    /// The last IPsec packet it sent (for replay scenarios).
    pub last_sent: Option<Vec<u8>>,
}

impl SimClient {
    /// `client1` at `addr`, with no SAs yet.
    fn new(addr: Ipv4Addr) -> Self {
        Self {
            name: "client1".into(),
            addr,
            outbound: Vec::new(),
            inbound: Vec::new(),
            ah_outbound: None,
            ah_inbound: None,
            next_seq: 1,
            last_sent: None,
        }
    }
}

#[derive(Debug)]
enum Event {
    /// From the client, on the external LAN, to the DVIPA's owner.
    ToDvipa(Vec<u8>),
    /// GRE over the XCF link from `from` to `to`.
    Gre {
        from: String,
        to: String,
        datagram: XcfDatagram,
    },
    /// A packet the image's kernel sends (a server reply), read from its TUN.
    Outbound { image: String, packet: Vec<u8> },
    /// Out of an image's own external link, to the client.
    ToClient { from: String, packet: Vec<u8> },
    Xcf {
        from: String,
        to: String,
        msg: XcfMessage,
    },
    /// The owner's IKE has negotiated the SA pair a NEWCONN asked for.
    Negotiated(SaSpec),
}

/// A forwarded packet on an XCF link, in the world's `[xcf] forwarding`.
#[derive(Debug, Clone)]
enum XcfDatagram {
    /// GRE in IPv4 (protocol 47), the outer header included.
    Gre(Vec<u8>),
    /// GRE in UDP to port 4754 (RFC 8086): the UDP body, sent from `src`.
    GreInUdp { src: Ipv4Addr, body: Vec<u8> },
}

impl XcfDatagram {
    /// `inner` behind the GRE header, from `src` to `dst` (XCF addresses).
    fn new(
        forwarding: XcfForwarding,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        inner: &[u8],
        upstream: Upstream,
    ) -> Self {
        match forwarding {
            XcfForwarding::Gre => {
                let mut g = Vec::new();
                target::encap(src, dst, inner, upstream, &mut g);
                Self::Gre(g)
            }
            XcfForwarding::GreInUdp => {
                let mut body = Vec::new();
                target::gre_payload(inner, upstream, &mut body);
                Self::GreInUdp { src, body }
            }
        }
    }

    /// Its size on the link: outer IPv4 header (and UDP's) included.
    fn wire_len(&self) -> usize {
        match self {
            Self::Gre(g) => g.len(),
            Self::GreInUdp { body, .. } => {
                plexnet_core::wire::ipv4::HEADER_LEN
                    + plexnet_core::wire::udp::HEADER_LEN
                    + body.len()
            }
        }
    }

    /// "GRE a > b" or "GRE-in-UDP a > b:4754", for traces.
    fn describe(&self, dst: Ipv4Addr) -> String {
        match self {
            Self::Gre(g) => {
                let src = plexnet_core::wire::ipv4::Packet::new_unchecked(g).src_addr();
                format!("GRE {src} > {dst}")
            }
            Self::GreInUdp { src, .. } => {
                format!(
                    "GRE-in-UDP {src} > {dst}:{}",
                    plexnet_core::wire::gre::UDP_PORT
                )
            }
        }
    }
}

/// How the manual SA pair of a scenario is made.
#[derive(Debug, Clone, Copy)]
pub struct SaSpec {
    pub protocol: Protocol,
    pub mode: Mode,
    pub enc: EncAlg,
    pub integ: IntegAlg,
    /// Client → DVIPA.
    pub spi_in: u32,
    /// DVIPA → client.
    pub spi_out: u32,
    /// AH outside ESP (an AH+ESP bundle, RFC 4301 §4.3); `None` for a
    /// single SA each way.
    pub ah: Option<AhSpec>,
    /// What the SAs' traffic selectors admit.
    pub selector: SelectorSpec,
}

/// The traffic selectors of a scenario's SA pair (RFC 7296 §2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorSpec {
    /// Client to DVIPA, any protocol and port (strongSwan's host-to-host
    /// default).
    Hosts,
    /// TCP between the DVIPA's `port` and the client's ports
    /// `client_ports` (inclusive): a child SA narrowed to one service, as
    /// z/OS's IKE narrows it to the IpFilterRule it anchors at.
    Tcp { port: u16, client_ports: (u16, u16) },
}

impl SelectorSpec {
    /// The selector of the SA from `src` to `dst`; `to_dvipa`: the client's
    /// SA (inbound at the DVIPA).
    fn selector(self, src: Ipv4Addr, dst: Ipv4Addr, to_dvipa: bool) -> TrafficSelector {
        let hosts = TrafficSelector::hosts(IpAddr::V4(src), IpAddr::V4(dst));
        let Self::Tcp { port, client_ports } = self else {
            return hosts;
        };
        let clients = PortRange {
            start: client_ports.0,
            end: client_ports.1,
        };
        let (src_ports, dst_ports) = if to_dvipa {
            (clients, PortRange::single(port))
        } else {
            (PortRange::single(port), clients)
        };
        TrafficSelector {
            protocol: Some(plexnet_core::wire::IpProtocol::Tcp),
            src_ports,
            dst_ports,
            ..hosts
        }
    }
}

/// The AH SAs of an AH+ESP bundle: integrity and SPIs.
#[derive(Debug, Clone, Copy)]
pub struct AhSpec {
    pub integ: IntegAlg,
    /// Client → DVIPA.
    pub spi_in: u32,
    /// DVIPA → client.
    pub spi_out: u32,
}

impl SaSpec {
    pub fn esp_cbc_sha1() -> Self {
        Self {
            protocol: Protocol::Esp,
            mode: Mode::Tunnel,
            enc: EncAlg::AesCbc128,
            integ: IntegAlg::HmacSha1_96,
            spi_in: 0x1001,
            spi_out: 0x2001,
            ah: None,
            selector: SelectorSpec::Hosts,
        }
    }

    /// The same SAs, their selectors narrowed to TCP between the DVIPA's
    /// `port` and the client's ports `first..=last`.
    pub fn tcp_only(self, port: u16, first: u16, last: u16) -> Self {
        Self {
            selector: SelectorSpec::Tcp {
                port,
                client_ports: (first, last),
            },
            ..self
        }
    }

    /// The same SAs with other SPIs (client → DVIPA, DVIPA → client).
    pub fn spis(self, spi_in: u32, spi_out: u32) -> Self {
        Self {
            spi_in,
            spi_out,
            ..self
        }
    }

    /// The patent's "Combined AH,ESP" in `mode`: ESP with AES-CBC-128
    /// alone, AH with HMAC-SHA-256-128 over it (as a topology's
    /// `protocol = "ah+esp"` makes them).
    pub fn ah_esp_bundle(mode: Mode) -> Self {
        Self {
            mode,
            integ: IntegAlg::None,
            ah: Some(AhSpec {
                integ: IntegAlg::HmacSha256_128,
                spi_in: 0x3001,
                spi_out: 0x4001,
            }),
            ..Self::esp_cbc_sha1()
        }
    }

    /// The spec of the bundle's AH SAs alone.
    fn ah_only(&self) -> Option<SaSpec> {
        self.ah.map(|a| SaSpec {
            protocol: Protocol::Ah,
            enc: EncAlg::Null,
            integ: a.integ,
            spi_in: a.spi_in,
            spi_out: a.spi_out,
            ah: None,
            ..*self
        })
    }
}

pub struct World {
    pub now_ms: u64,
    rng: ChaCha8Rng,
    trace: Vec<String>,
    pub dvipa: Ipv4Addr,
    pub owner: ImageId,
    pub images: BTreeMap<ImageId, SimImage>,
    pub client: SimClient,
    cf: Box<dyn CfService>,
    queue: VecDeque<(u64, Event)>,
    /// VIPA takeover: CF checkpoints, heartbeats, failures and the
    /// backups' watches (`None`: none of it, as in the scenarios built by
    /// [`World::new`]).
    takeover: Option<takeover::SimTakeover>,
    /// How the routing stack carries packets to targets (`[xcf]
    /// forwarding`); GRE in IPv4 unless a scenario sets it.
    pub xcf_forwarding: XcfForwarding,
    /// The SA pair the owner's IKE negotiates when a NEWCONN asks for one
    /// (Fig. 11; [`World::ike_on_demand`]).
    newconn_answer: Option<SaSpec>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

/// Deterministic key bytes for a manual SA (the simulator's own keys).
fn key_for(spi: u32, purpose: u8, len: usize) -> Key {
    Key((0..len)
        .map(|i| (spi as u8) ^ purpose.wrapping_mul(31) ^ (i as u8).wrapping_mul(7))
        .collect())
}

/// One SA of `spec` from `src` to `dst`; `to_dvipa`: the client's.
fn sa_config(spec: &SaSpec, spi: u32, src: Ipv4Addr, dst: Ipv4Addr, to_dvipa: bool) -> SaConfig {
    SaConfig {
        spi: Spi(spi),
        protocol: spec.protocol,
        mode: spec.mode,
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        enc: if spec.protocol == Protocol::Ah {
            EncAlg::Null
        } else {
            spec.enc
        },
        enc_key: key_for(
            spi,
            1,
            if spec.protocol == Protocol::Ah {
                0
            } else {
                spec.enc.key_len()
            },
        ),
        integ: spec.integ,
        integ_key: key_for(spi, 2, spec.integ.key_len()),
        esn: false,
        replay_window: 128,
        lifetimes: Lifetimes::default(),
        udp_encap: None,
        selector: spec.selector.selector(src, dst, to_dvipa),
    }
}

impl World {
    /// Figure 4's DVA1 in small: `owner` owns the DVIPA 198.18.0.100 and
    /// distributes port 80 ROUNDROBIN to `targets` (which may include the
    /// owner); each target runs a server on port 80 and registers it.
    pub fn new(
        seed: u64,
        owner: &str,
        targets: &[&str],
        config: RoutingConfig,
        cf: Box<dyn CfService>,
    ) -> Self {
        let dvipa = Ipv4Addr::new(198, 18, 0, 100);
        let mut names: Vec<&str> = targets.to_vec();
        if !names.contains(&owner) {
            names.insert(0, owner);
        }
        let xcf_of = |i: usize| Ipv4Addr::new(198, 19, 0, i as u8 + 1);
        let dests = targets
            .iter()
            .map(|t| Dest {
                image: t.to_string(),
                xcf_addr: xcf_of(names.iter().position(|n| n == t).unwrap_or(0)),
                role: DestRole::Plain,
            })
            .collect();
        let dist = VipaDistribute {
            timed_affinity: None,
            method: DistMethod::RoundRobin,
            addr: dvipa,
            ports: vec![80],
            dests,
            all: false,
        };
        let mut images = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            let routing = (*n == owner)
                .then(|| RoutingStack::new(n, xcf_of(i), config, std::slice::from_ref(&dist)));
            let owned = if *n == owner { vec![dvipa] } else { vec![] };
            let server = ScriptedServer::new(n, dvipa, 80);
            images.insert(
                ImageId::new(n),
                SimImage::new(n, xcf_of(i), owned, routing, server),
            );
        }
        links_up(&mut images);
        let mut w = World {
            now_ms: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            trace: Vec::new(),
            dvipa,
            owner: ImageId::new(owner),
            images,
            client: SimClient::new(Ipv4Addr::new(198, 18, 1, 2)),
            cf,
            queue: VecDeque::new(),
            takeover: None,
            xcf_forwarding: XcfForwarding::Gre,
            newconn_answer: None,
        };
        let list = w.routing().vipa_list();
        for t in targets {
            w.send_xcf(owner, t, list.clone());
        }
        for t in targets {
            w.send_xcf(t, owner, XcfMessage::RegisterListener { dvipa, port: 80 });
        }
        w.run();
        w
    }

    fn routing(&mut self) -> &mut RoutingStack {
        let owner = self.owner.clone();
        self.image(&owner)
            .image
            .routing_mut()
            .expect("the owner has a routing stack")
    }

    fn image(&mut self, name: &str) -> &mut SimImage {
        self.images.get_mut(name).expect("a known image")
    }

    pub fn log(&mut self, line: impl Into<String>) {
        self.trace
            .push(format!("{:>5} ms  {}", self.now_ms, line.into()));
    }

    /// The rendered trace so far.
    pub fn trace(&self) -> String {
        let mut s = self.trace.join("\n");
        s.push('\n');
        s
    }

    fn send_xcf(&mut self, from: &str, to: &str, msg: XcfMessage) {
        self.queue.push_back((
            self.now_ms + HOP_MS,
            Event::Xcf {
                from: from.into(),
                to: to.into(),
                msg,
            },
        ));
    }

    /// Fig. 6: the owner installs a manually keyed pair (or AH+ESP
    /// bundle), stores the starting sequence number of each outbound SA in
    /// the CF and copies the pair to every target's shadow cache (its own
    /// included); the client gets its ends.
    pub fn install_sa(&mut self, spec: SaSpec) {
        self.install_sa_now(spec);
        self.run();
    }

    /// [`World::install_sa`] without running the events it queues.
    fn install_sa_now(&mut self, spec: SaSpec) {
        (self.client.ah_outbound, self.client.ah_inbound) = (None, None);
        let install = self.sa_install(&spec, false);
        let ah = spec.ah_only().map(|a| self.sa_install(&a, true));
        let owner = self.owner.clone();
        // Block 118 sends what the routing stack's install returns: the
        // pair with its dynamic filter and anchor, when it has them.
        let (msg, install) = match ah {
            None => {
                let install = self.routing().install(install).expect("valid SA");
                (XcfMessage::SaInstall(Box::new(install.clone())), install)
            }
            Some(ah) => {
                let bundle = BundleInstall {
                    esp: install,
                    ah: AhBundle {
                        inbound: ah.inbound,
                        outbound: ah.outbound,
                        seq_key: ah.seq_key,
                    },
                };
                let bundle = self
                    .routing()
                    .install_bundle(&bundle)
                    .expect("valid bundle");
                let install = bundle.esp.clone();
                (XcfMessage::BundleInstall(Box::new(bundle)), install)
            }
        };
        self.log_install(&spec, &install);
        if spec.ah.is_none() {
            self.checkpoint_sa(&install);
        }
        let dvipa = self.dvipa;
        self.send_to_owner_and_targets(&owner, dvipa, &msg);
    }

    /// The DVIPA side of one pair of `spec`; the client gets its ends
    /// (`bundle_ah`: as the AH SAs outside its ESP ones).
    fn sa_install(&mut self, spec: &SaSpec, bundle_ah: bool) -> SaInstall {
        let (client, dvipa) = (self.client.addr, self.dvipa);
        let inbound = sa_config(spec, spec.spi_in, client, dvipa, true);
        let outbound = sa_config(spec, spec.spi_out, dvipa, client, false);
        let client_out =
            OutboundSa::new(Sa::new(inbound.clone()).expect("valid SA"), Instant::ZERO);
        let client_in = InboundSa::new(Sa::new(outbound.clone()).expect("valid SA"), Instant::ZERO);
        let c = &mut self.client;
        if bundle_ah {
            (c.ah_outbound, c.ah_inbound) = (Some(client_out), Some(client_in));
        } else {
            c.outbound.retain(|s| s.sa().spi() != client_out.sa().spi());
            c.inbound.retain(|s| s.sa().spi() != client_in.sa().spi());
            c.outbound.push(client_out);
            c.inbound.push(client_in);
        }
        SaInstall::pair(dvipa, inbound, outbound)
    }

    /// The trace of Fig. 6 blocks 112 and 116 at the owner.
    /// Sends `msg` over XCF from the routing stack `owner` to itself (its
    /// own target stack) first and to every target of `dvipa`, as SA
    /// installs and deletes travel (Fig. 6 block 118).
    fn send_to_owner_and_targets(&mut self, owner: &str, dvipa: Ipv4Addr, msg: &XcfMessage) {
        let mut to: Vec<String> = self
            .routing()
            .targets_of(dvipa)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        if !to.iter().any(|t| t == owner) {
            to.insert(0, owner.to_string());
        }
        for t in to {
            self.send_xcf(owner, &t, msg.clone());
        }
    }

    fn log_install(&mut self, spec: &SaSpec, install: &SaInstall) {
        let owner = self.owner.clone();
        let suite = |c: &SaConfig| {
            Sa::new(c.clone())
                .map(|s| s.suite_name())
                .unwrap_or_default()
        };
        let ah = spec.ah_only();
        let (name, suites) = match &ah {
            None => (spec.protocol.name(), suite(&install.inbound)),
            Some(a) => (
                "AH+ESP",
                format!(
                    "{} + {}",
                    suite(&sa_config(a, a.spi_in, self.client.addr, self.dvipa, true)),
                    suite(&install.inbound)
                ),
            ),
        };
        let ah_spis = ah.map_or(String::new(), |a| {
            format!(" ah-in={:#010x} ah-out={:#010x}", a.spi_in, a.spi_out)
        });
        self.log(format!(
            "{owner} routing  SA installed: {name} {:?} {suites} in={:#010x} out={:#010x}{ah_spis}",
            spec.mode, spec.spi_in, spec.spi_out
        ));
        for s in std::iter::once(*spec).chain(spec.ah_only()) {
            let key = SeqKey {
                dvipa: self.dvipa,
                protocol: s.protocol,
                spi: Spi(s.spi_out),
            };
            let r = self.cf.request(CfRequest::CreateSeq { key, start: 1 });
            self.log(format!(
                "{owner} → CF     CreateSeq {} = {}",
                seq_name(&key),
                cf_answer(&r)
            ));
        }
        if let Some(f) = &install.filter {
            self.log(format!(
                "{owner} routing  dynamic filter in front of {}: in {}, out {} (sent with the SAs)",
                f.anchor.name,
                plexnet_core::trace::selector(&f.dynamic.inbound),
                plexnet_core::trace::selector(&f.dynamic.outbound)
            ));
        }
    }

    /// IPCONFIG IPSECURITY at the owner: its routing stack filters with
    /// `table` from now on (clear packets, and the tunnel check with
    /// `FilterAt::Routing`), and places the dynamic filter of every SA pair
    /// it installs in front of the pair's anchor rule.
    pub fn set_routing_filter(&mut self, table: FilterTable) {
        let owner = self.owner.clone();
        let rules: Vec<String> = table
            .active_rules()
            .rules
            .iter()
            .map(|r| format!("{} {}", r.name, plexnet_core::trace::action(&r.action)))
            .collect();
        self.log(format!(
            "{owner} routing  IPCONFIG IPSECURITY, filter table: {}, SYSDEFAULTDENYRULE",
            rules.join(", ")
        ));
        self.routing().set_filter(table);
    }

    /// The owner deletes the SA pair whose inbound SPI is `spi_in` (a
    /// DELETE from the peer, an expiry): out of its owned cache and filter
    /// table, `SaDelete` to every target (its own included), the outbound
    /// SA's sequence structure out of the CF.
    pub fn delete_sa(&mut self, spi_in: u32) {
        let (owner, dvipa) = (self.owner.clone(), self.dvipa);
        let Some(pair) = self.routing().delete(Spi(spi_in)) else {
            self.log(format!("{owner} routing  no SA pair in={spi_in:#010x}"));
            return;
        };
        let i = &pair.install;
        self.log(format!(
            "{owner} routing  SA pair deleted in={:#010x} out={:#010x}{}",
            i.inbound.spi.0,
            i.outbound.spi.0,
            if i.filter.is_some() {
                ", its dynamic filter with it"
            } else {
                ""
            }
        ));
        let r = self.cf.request(CfRequest::DeleteSeq { key: i.seq_key });
        self.log(format!(
            "{owner} → CF     DeleteSeq {} = {}",
            seq_name(&i.seq_key),
            cf_answer(&r)
        ));
        let msg = XcfMessage::SaDelete {
            dvipa,
            protocol: i.inbound.protocol,
            inbound_spi: i.inbound.spi,
            outbound_spi: i.outbound.spi,
        };
        self.send_to_owner_and_targets(&owner, dvipa, &msg);
        self.run();
    }

    /// The server of `image` sends `payload` on its open connection from
    /// the client's port `client_port` (more of a streamed answer): the
    /// segment goes out through the image's Fig. 10 path.
    pub fn server_sends(&mut self, image: &str, client_port: u16, payload: &[u8]) {
        let client = self.client.addr;
        let Some(seg) = self.image(image).server.push(client, client_port, payload) else {
            self.log(format!(
                "{image} server   no open connection from {client}:{client_port}"
            ));
            return;
        };
        self.log(format!(
            "{image} server   {}",
            plexnet_core::trace::packet(&seg)
        ));
        self.queue.push_back((
            self.now_ms,
            Event::Outbound {
                image: image.into(),
                packet: seg,
            },
        ));
        self.run();
    }

    /// The client sends a TCP segment to DVIPA:80 through its SA.
    pub fn client_tcp(&mut self, sport: u16, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) {
        self.client_tcp_via(None, sport, seq, ack, flags, payload);
    }

    /// The same through its SA `spi` (to the DVIPA) rather than the
    /// latest: a client with several SA pairs picks the wrong one.
    pub fn client_tcp_on(
        &mut self,
        spi: u32,
        sport: u16,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        payload: &[u8],
    ) {
        self.client_tcp_via(Some(Spi(spi)), sport, seq, ack, flags, payload);
    }

    fn client_tcp_via(
        &mut self,
        spi: Option<Spi>,
        sport: u16,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        payload: &[u8],
    ) {
        let inner = tcp_packet(
            self.client.addr,
            sport,
            self.dvipa,
            80,
            seq,
            ack,
            flags,
            payload,
        );
        let sealed = self.client_seal(&inner, spi);
        self.log(format!(
            "client1 → DVA1   {}  [inner {}]",
            plexnet_core::trace::packet(&sealed),
            plexnet_core::trace::packet(&inner)
        ));
        self.client.last_sent = Some(sealed.clone());
        self.queue
            .push_back((self.now_ms + HOP_MS, Event::ToDvipa(sealed)));
        self.run();
    }

    /// The client sends an arbitrary inner packet (e.g. ICMP) through its SA.
    pub fn client_inner(&mut self, inner: &[u8]) {
        let sealed = self.client_seal(inner, None);
        self.log(format!(
            "client1 → DVA1   {}  [inner {}]",
            plexnet_core::trace::packet(&sealed),
            plexnet_core::trace::packet(inner)
        ));
        self.queue
            .push_back((self.now_ms + HOP_MS, Event::ToDvipa(sealed)));
        self.run();
    }

    /// Seals `inner` on the client's SA `spi`, or its latest.
    fn client_seal(&mut self, inner: &[u8], spi: Option<Spi>) -> Vec<u8> {
        let seq = self.client.next_seq;
        self.client.next_seq += 1;
        let mut out = Vec::new();
        let now = self.instant();
        let sas = &mut self.client.outbound;
        let sa = match spi {
            Some(spi) => sas.iter_mut().find(|s| s.sa().spi() == spi),
            None => sas.last_mut(),
        }
        .expect("install_sa first");
        match self.client.ah_outbound.as_mut() {
            None => sa.seal(now, seq, &mut self.rng, inner, &mut out),
            Some(ah) => seal_bundle_counted(ah, seq, sa, seq, now, &mut self.rng, inner, &mut out),
        }
        .expect("client seals");
        out
    }

    /// Sends raw bytes from the client's LAN to the DVIPA (replays, forgeries).
    pub fn client_raw(&mut self, what: &str, packet: Vec<u8>) {
        self.log(format!(
            "client1 → DVA1   {}  ({what})",
            plexnet_core::trace::packet(&packet)
        ));
        self.queue
            .push_back((self.now_ms + HOP_MS, Event::ToDvipa(packet)));
        self.run();
    }

    /// Injects GRE on the XCF link from `link_from` to `to`, with an outer
    /// source that may not be `link_from`'s (a spoof), in the world's XCF
    /// forwarding.
    pub fn inject_gre(&mut self, link_from: &str, outer_src: Ipv4Addr, to: &str, inner: &[u8]) {
        let dst = self.images[to].xcf;
        let datagram = XcfDatagram::new(
            self.xcf_forwarding,
            outer_src,
            dst,
            inner,
            Upstream::Nothing,
        );
        self.log(format!(
            "{link_from} ⇒ {to}  injected {} on link x-{}",
            datagram.describe(dst),
            link_from.to_lowercase()
        ));
        self.queue.push_back((
            self.now_ms + HOP_MS,
            Event::Gre {
                from: link_from.into(),
                to: to.into(),
                datagram,
            },
        ));
        self.run();
    }

    /// Processes events until the queue is empty (bounded, so a bug cannot loop).
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            let Some((at, ev)) = self.queue.pop_front() else {
                return;
            };
            self.now_ms = self.now_ms.max(at);
            self.step(ev);
            self.collect_outboxes();
        }
        self.log("simulation stopped after 10000 events");
    }

    fn collect_outboxes(&mut self) {
        let names: Vec<ImageId> = self.images.keys().cloned().collect();
        for n in names {
            for (to, msg) in self.image(&n).image.target_mut().take_outbox() {
                self.send_xcf(&n, &to, msg);
            }
            self.drain_image(&n, &[]);
        }
        self.flush_journals();
    }

    fn step(&mut self, ev: Event) {
        if let Some(lost) = self.lost(&ev) {
            self.log(lost);
            return;
        }
        match ev {
            Event::ToDvipa(p) => self.at_routing(p),
            Event::Gre { from, to, datagram } => self.at_target_gre(&from, &to, &datagram),
            Event::Outbound { image, packet } => self.outbound(&image, &packet),
            Event::ToClient { from, packet } => self.at_client(&from, &packet),
            Event::Xcf { from, to, msg } => self.deliver_xcf(&from, &to, msg),
            Event::Negotiated(spec) => self.install_sa_now(spec),
        }
    }

    /// What the routing stack saw of a packet: the peek (block 132), the
    /// filter's verdict (the IP filter of a clear packet, or block 136's
    /// tunnel check) and the DCT lookup (block 134).
    fn log_route_note(&mut self, owner: &str, note: &RouteNote) {
        if let Some(p) = note.peek {
            let flow = plexnet_core::trace::flow(
                p.proto,
                p.src,
                p.src_port,
                p.dst,
                p.dst_port,
                p.tcp_flags,
            );
            let through = note.ah.map_or(String::new(), |(spi, seq)| {
                format!("AH {:#010x} seq {seq} → ESP ", spi.0)
            });
            self.log(format!(
                "{owner} routing  peek {through}{:#010x} seq {}: {flow} ({} AES blocks decrypted)",
                p.spi.0, p.seq, p.blocks_decrypted
            ));
        }
        if let Some(v) = &note.filter {
            let line = match note.peek {
                Some(p) => format!(
                    "tunnel check (block 136): {}",
                    plexnet_core::trace::verdict(v, Some(p.spi))
                ),
                None => format!("IP filter: {}", plexnet_core::trace::verdict(v, None)),
            };
            self.log(format!("{owner} routing  {line}"));
        }
        let dct = match note.dct {
            DctOutcome::NotLookedUp => None,
            DctOutcome::Hit => Some("DCT hit"),
            DctOutcome::New => Some("DCT miss, SYN: new connection by ROUNDROBIN"),
            DctOutcome::Miss => Some("DCT miss"),
        };
        if let Some(d) = dct {
            self.log(format!("{owner} routing  {d}"));
        }
    }

    /// Fig. 8 at the owner: the packet goes into its image as its TUN
    /// hands it over (the kernel routes the DVIPA's packets there).
    fn at_routing(&mut self, packet: Vec<u8>) {
        let (now, owner) = (self.instant(), self.owner.clone());
        let burst = vec![packet];
        self.image(&owner)
            .image
            .handle_tun_burst(now, burst.iter().map(Vec::as_slice));
        self.drain_image(&owner, &burst);
    }

    /// Figs. 7 and 9: a datagram from `from`'s XCF data link into `to`'s
    /// image.
    fn at_target_gre(&mut self, from: &str, to: &str, datagram: &XcfDatagram) {
        let now = self.instant();
        // The XCF link the datagram came in on: the one from `from`.
        let link_peer = self.images[from].xcf;
        self.heard(to, from);
        let datagram = match datagram {
            XcfDatagram::Gre(packet) => LinkDatagram::Gre(packet),
            XcfDatagram::GreInUdp { src, body } => LinkDatagram::GreInUdp { src: *src, body },
        };
        self.image(to)
            .image
            .handle_xcf_datagram(now, link_peer, datagram);
        self.drain_image(to, &[]);
    }

    /// What `image` noted of an inbound packet, as trace lines.
    fn log_inbound(&mut self, image: &str, note: InboundNote) {
        match note {
            InboundNote::Routed { note, decision } => {
                self.log_route_note(image, &note);
                self.log_decision(image, &decision);
            }
            InboundNote::Target(t) => self.log_target(image, t),
            InboundNote::EchoAnswered => self.log(format!(
                "{image} stack    ICMP echo answered from user space"
            )),
        }
    }

    /// The routing stack's decision (block 140's hop is told where the
    /// datagram leaves, IKE where the image hands it over).
    fn log_decision(&mut self, owner: &str, decision: &Decision) {
        let line = match decision {
            Decision::Forward { target, .. } if **target == *owner => {
                "→ own target stack (this image is the target)".to_string()
            }
            Decision::Forward { .. } | Decision::Ike => return,
            Decision::DecryptAndForward { target, .. } => {
                format!("decrypts here (distribute_crypto = false), forwards plaintext to {target}")
            }
            Decision::Local => {
                "not distributable: processed by the routing stack itself".to_string()
            }
            Decision::Drop(r) => format!("DROP {}", r.as_str()),
        };
        self.log(format!("{owner} routing  {line}"));
    }

    /// What the target stack did with a packet.
    fn log_target(&mut self, image: &str, t: TargetNote) {
        let plain = match t.verdict {
            Verdict::Drop(d) => {
                if let Some(f) = t.filter {
                    let block = if t.opened.is_some() {
                        "decrypted, inbound filter (block 152)"
                    } else {
                        "IP filter"
                    };
                    self.log(format!("{image} target   {block}: {f}"));
                }
                self.log(format!("{image} target   DROP {}", d.name()));
                return;
            }
            Verdict::Deliver(plain) => plain,
        };
        let what = match t.opened {
            Some(opens) => {
                let skipped = if t.filter_skipped {
                    " (filter skipped: the routing stack filtered)".to_string()
                } else {
                    t.filter
                        .map_or(", filter ok".to_string(), |f| format!(", {f}"))
                };
                format!("opened with shadow SA (opens so far: {opens}){skipped}")
            }
            None => "plaintext accepted".to_string(),
        };
        let how = match t.via {
            TargetVia::Direct => "",
            TargetVia::Gre => "GRE decapsulated, link check ok, ",
            TargetVia::GreInUdp => "GRE-in-UDP decapsulated, link check ok, ",
        };
        self.log(format!(
            "{image} target   {how}{what} → TUN: {}",
            plexnet_core::trace::packet(&plain)
        ));
    }

    /// The image's kernel delivers what its TUN got: TCP to the server
    /// (the image answered echoes itself).
    fn deliver_to_kernel(&mut self, image: &str, plain: &[u8]) {
        let now = self.now_ms;
        let replies = self.image(image).server.receive(plain);
        for r in replies {
            self.log(format!(
                "{image} server   {}",
                plexnet_core::trace::packet(&r)
            ));
            self.queue.push_back((
                now,
                Event::Outbound {
                    image: image.into(),
                    packet: r,
                },
            ));
        }
    }

    fn at_client(&mut self, from: &str, packet: &[u8]) {
        let now = self.instant();
        let mut out = Vec::new();
        let spi = plexnet_core::ipsec::peek::locate(packet).map(|l| l.spi);
        let sa = spi
            .ok()
            .and_then(|spi| self.client.inbound.iter_mut().find(|s| s.sa().spi() == spi));
        let line = match sa {
            Some(sa) => {
                let opened = match self.client.ah_inbound.as_mut() {
                    None => sa.open(now, packet, &mut out),
                    Some(ah) => open_bundle_counted(ah, sa, now, packet, &mut out),
                };
                match opened {
                    Ok(o) => format!(
                        "{}  seq {} [inner {}]",
                        plexnet_core::trace::packet(packet),
                        o.seq,
                        plexnet_core::trace::packet(&out)
                    ),
                    Err(e) => format!(
                        "{}  DROP {}",
                        plexnet_core::trace::packet(packet),
                        e.reason().as_str()
                    ),
                }
            }
            _ => plexnet_core::trace::packet(packet),
        };
        self.log(format!("client1 ← {from:<5} {line}"));
    }

    pub fn routing_stack(&self) -> &RoutingStack {
        self.images[&self.owner]
            .image
            .routing()
            .expect("owner routing stack")
    }
}

fn seq_name(k: &SeqKey) -> String {
    format!("{}/{}/{:#010x}", k.dvipa, k.protocol.name(), k.spi.0)
}

fn cf_answer(r: &CfResponse) -> String {
    match r {
        CfResponse::Done => "done".into(),
        // Saturating: a CF (or a fuzz target's lying one) may answer any
        // range; the trace must not be what panics.
        CfResponse::SeqRange { first, n } => {
            format!("{first}..{}", first.saturating_add(u64::from(*n)))
        }
        CfResponse::Error(e) => format!("error: {e}"),
        other => format!("{other:?}"),
    }
}

/// The message's name and the fields worth a trace line.
pub fn xcf_name(m: &XcfMessage) -> String {
    match m {
        XcfMessage::Hello { image, .. } => format!("Hello {image}"),
        XcfMessage::Heartbeat { seq } => format!("Heartbeat {seq}"),
        XcfMessage::VipaList { vipas, .. } => format!(
            "VipaList {}",
            vipas.iter().map(|v| format!("{} ports {:?}", v.dvipa, v.ports)).collect::<Vec<_>>().join(", ")
        ),
        XcfMessage::RegisterListener { dvipa, port } => format!("RegisterListener {dvipa}:{port}"),
        XcfMessage::DeregisterListener { dvipa, port } => format!("DeregisterListener {dvipa}:{port}"),
        XcfMessage::SaInstall(i) => format!(
            "SaInstall {} in={:#010x} out={:#010x} (shadow SA cache){}",
            i.dvipa, i.inbound.spi.0, i.outbound.spi.0,
            i.filter.as_ref().map_or(String::new(), |f| format!(
                " + dynamic filter, anchor {}", f.anchor.name
            ))
        ),
        XcfMessage::SaDelete { inbound_spi, outbound_spi, .. } => {
            format!("SaDelete in={:#010x} out={:#010x}", inbound_spi.0, outbound_spi.0)
        }
        XcfMessage::NewConn { peer, peer_port, .. } => format!("NewConn to {peer}:{peer_port}"),
        XcfMessage::Lifesize { spi, direction, bytes, packets, highest_seq, .. } => format!(
            "Lifesize {:#010x} {direction:?} {bytes} bytes {packets} packets, highest seq {highest_seq}",
            spi.0
        ),
        XcfMessage::RekeyTiming { spi, late, .. } => format!("RekeyTiming {:#010x} late={late}", spi.0),
        XcfMessage::ConnEnded { client, client_port, reason, .. } => {
            format!("ConnEnded {client}:{client_port} {reason:?}")
        }
        XcfMessage::BundleInstall(b) => format!(
            "BundleInstall {} in={:#010x} out={:#010x} ah-in={:#010x} ah-out={:#010x} (shadow SA cache)",
            b.esp.dvipa, b.esp.inbound.spi.0, b.esp.outbound.spi.0, b.ah.inbound.spi.0, b.ah.outbound.spi.0
        ),
        XcfMessage::BundleDelete { esp_inbound_spi, esp_outbound_spi, ah_inbound_spi, ah_outbound_spi, .. } => format!(
            "BundleDelete in={:#010x} out={:#010x} ah-in={:#010x} ah-out={:#010x}",
            esp_inbound_spi.0, esp_outbound_spi.0, ah_inbound_spi.0, ah_outbound_spi.0
        ),
        XcfMessage::Giveback { dvipa, step } => format!("Giveback {dvipa} {step:?}"),
        XcfMessage::ConnReport { dvipa, conns, .. } => format!(
            "ConnReport {dvipa}: {}",
            conns.iter().map(|c| format!("{}:{} > :{} {:?}", c.client, c.client_port, c.port, c.state)).collect::<Vec<_>>().join(", ")
        ),
    }
}

impl CfService for plexnet_core::sysplex::cf::CouplingFacility {
    fn request(&mut self, req: CfRequest) -> CfResponse {
        self.handle(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzz/fuzz_targets/cf_answers.rs: a CF that answers a range
    /// ending past u64::MAX made the trace line overflow (a panic in the
    /// simulator, not in the image, which refuses such numbers).
    #[test]
    fn a_cf_range_at_the_end_of_the_number_space_renders() {
        let r = CfResponse::SeqRange {
            first: u64::MAX - 1,
            n: 8,
        };
        assert_eq!(cf_answer(&r), format!("{}..{}", u64::MAX - 1, u64::MAX));
    }
}
