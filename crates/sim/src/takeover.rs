//! VIPA takeover in the simulator: the owner checkpoints its SA pairs and
//! DCT entries into the CF's key/value store ([`plexnet_core::sysplex::takeover`]
//! has the keys), images exchange heartbeats in virtual time, a failed
//! image goes silent, and the backup whose [`Watch`] says so takes the
//! DVIPA over from what the CF holds: its `Image` carries out the steps
//! (`Image::start_takeover`), as it does under `runtime::takeover` in
//! real namespaces; the simulator answers its CF requests and traces.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{cf_answer, seq_name, CfService, Event, ScriptedServer, SimClient, SimImage, World};
use plexnet_core::ipsec::filter::FilterTable;
use plexnet_core::sysplex::cf_key::CfKey;
use plexnet_core::sysplex::config::VipaDistribute;
use plexnet_core::sysplex::dct::ConnKey;
use plexnet_core::sysplex::image::{ImageEvent, ImageId};
use plexnet_core::sysplex::routing::{DctChange, RoutingStack};
use plexnet_core::sysplex::spec::SysplexSpec;
use plexnet_core::sysplex::takeover::SaRecord;
use plexnet_core::sysplex::takeover::{self as tk, ConnRecord, OwnerRecord, Watch, WatchAction};
use plexnet_core::sysplex::xcf::{CfRequest, CfResponse, SaInstall, XcfMessage};
use plexnet_core::time::Instant;

/// XCF heartbeat interval (the runtime's `XcfConfig::heartbeat`).
pub const HEARTBEAT_MS: u64 = 1000;
/// A peer silent this long is down (the runtime's `XcfConfig::dead_after`).
pub const DEAD_AFTER_MS: u64 = 3000;

/// What the simulator keeps for takeover scenarios.
#[derive(Debug)]
pub(super) struct SimTakeover {
    pub(super) sysplex: SysplexSpec,
    /// The images that define or back up the DVIPA (their images watch it).
    watchers: Vec<String>,
    /// (observer, peer) → when the observer last heard from the peer.
    pub(super) heard: BTreeMap<(ImageId, ImageId), u64>,
    /// (observer, peer): the observer has marked the peer down.
    pub(super) down: BTreeSet<(ImageId, ImageId)>,
    /// Images that failed: their links are silent.
    pub(super) failed: BTreeSet<ImageId>,
    /// Images whose DCT journal waits for its next CF write
    /// ([`World::hold_journal`]).
    journal_held: BTreeSet<ImageId>,
    next_tick: u64,
    /// Whether routing stacks filter with their image's IP security
    /// ([`World::enforce_ip_security`]).
    ip_security: bool,
}

/// `ROUNDROBIN ports [60, 80] DESTIP MVS2 MVS3 MVS4`.
fn render_distribute(d: &VipaDistribute) -> String {
    let dests: Vec<&str> = d.dests.iter().map(|t| t.image.as_str()).collect();
    format!(
        "{} ports {:?} DESTIP {}",
        format!("{:?}", d.method).to_uppercase(),
        d.ports,
        dests.join(" ")
    )
}

fn render_conn(key: &ConnKey) -> String {
    format!(
        "{}:{} > {}:{}",
        key.client, key.client_port, key.dvipa, key.port
    )
}

/// An SA record (`sa`) or a connection record the CF holds, as read.
fn render_record(sa: bool, bytes: &[u8]) -> Result<String, String> {
    if !sa {
        let rec = tk::decode::<ConnRecord>(bytes).map_err(|e| e.to_string())?;
        return Ok(format!(
            "ConnRecord {} {}{}",
            rec.target,
            rec.target_xcf,
            if rec.ipsec { " ipsec" } else { "" }
        ));
    }
    Ok(
        match tk::decode::<SaRecord>(bytes).map_err(|e| e.to_string())? {
            SaRecord::Pair(sa) => render_sa(&sa),
            SaRecord::Bundle(b) => format!("an AH+ESP bundle: {}", render_sa(&b.esp)),
        },
    )
}

fn render_sa(sa: &SaInstall) -> String {
    format!(
        "SaInstall {} {:?} in={:#010x} out={:#010x} peer {}, CF sequence {}",
        sa.inbound.protocol.name(),
        sa.inbound.mode,
        sa.inbound.spi.0,
        sa.outbound.spi.0,
        sa.outbound.dst,
        seq_name(&sa.seq_key)
    )
}

impl World {
    /// `dvipa` of `sysplex` as its configuration defines it (a topology file
    /// gives one with `Topology::sysplex_spec`): its VIPADEFINE owner
    /// is the routing stack with the VIPADISTRIBUTE statements it has for
    /// it; every image runs a server on port 80 and registers it with the
    /// routing stacks that announce the port; the owner checkpoints into
    /// the CF, and every image that defines or backs up `dvipa` watches it.
    pub fn from_sysplex(
        seed: u64,
        sysplex: &SysplexSpec,
        dvipa: Ipv4Addr,
        cf: Box<dyn CfService>,
    ) -> Self {
        let owner = sysplex
            .owner_of(dvipa)
            .expect("the topology defines the DVIPA")
            .name
            .clone();
        let mut images = BTreeMap::new();
        for image in &sysplex.images {
            let n = image.name.as_str();
            let routing = (n == owner).then(|| {
                let dists = image.distributions_of(dvipa);
                let mut r = RoutingStack::new(n, image.xcf_addr, image.routing, &dists);
                r.keep_journal();
                r
            });
            let owned = if n == owner { vec![dvipa] } else { vec![] };
            let server = ScriptedServer::new(n, dvipa, 80);
            let mut img = SimImage::new(n, image.xcf_addr, owned, routing, server);
            // Its server listens on DVIPA:80: the image registers it with
            // the routing stacks that announce the port.
            img.image.set_listeners(vec![(dvipa, 80)]);
            images.insert(ImageId::new(n), img);
        }
        super::links_up(&mut images);
        let shared = Arc::new(sysplex.clone());
        let mut watchers = Vec::new();
        for (n, _) in tk::candidates(sysplex, dvipa) {
            let (Some(spec), Some(img)) = (sysplex.image(&n), images.get_mut(n.as_str())) else {
                continue;
            };
            let fresh = img
                .image
                .routing()
                .is_none()
                .then(|| RoutingStack::new(&n, spec.xcf_addr, spec.routing, &[]));
            img.image.set_watch_context(shared.clone(), fresh);
            let watch = Watch::new(sysplex, &n, dvipa, None);
            img.image.watch_dvipa(watch, spec.distributions_of(dvipa));
            watchers.push(n);
        }
        let mut heard = BTreeMap::new();
        for a in images.keys() {
            for b in images.keys().filter(|b| *b != a) {
                heard.insert((a.clone(), b.clone()), 0);
            }
        }
        let client = sysplex
            .clients
            .first()
            .copied()
            .unwrap_or(Ipv4Addr::new(198, 18, 1, 2));
        let mut w = World {
            now_ms: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            trace: Vec::new(),
            dvipa,
            owner: ImageId::from(owner.as_str()),
            images,
            client: SimClient::new(client),
            cf,
            queue: VecDeque::new(),
            xcf_forwarding: sysplex.xcf_forwarding,
            newconn_answer: None,
            takeover: Some(SimTakeover {
                sysplex: sysplex.clone(),
                watchers,
                heard,
                down: BTreeSet::new(),
                failed: BTreeSet::new(),
                journal_held: BTreeSet::new(),
                next_tick: HEARTBEAT_MS,
                ip_security: false,
            }),
        };
        let watchers = w
            .takeover
            .as_ref()
            .map(|t| t.watchers.clone())
            .unwrap_or_default();
        let lines: Vec<String> = watchers
            .iter()
            .filter_map(|n| {
                let wa = w.images.get(n.as_str())?.image.watch(dvipa)?;
                let c: Vec<String> = wa
                    .candidates()
                    .iter()
                    .map(|(c, rank)| format!("{c} ({rank})"))
                    .collect();
                Some(format!(
                    "{n} watch    {dvipa}: holder {}, candidates {}",
                    wa.holder.as_deref().unwrap_or("none"),
                    c.join(", ")
                ))
            })
            .collect();
        for l in lines {
            w.log(l);
        }
        for d in w
            .routing()
            .distributions()
            .map(|d| d.config.clone())
            .collect::<Vec<_>>()
        {
            w.log(format!(
                "{owner} routing  VIPADISTRIBUTE {dvipa} {}",
                render_distribute(&d)
            ));
        }
        w.put_owner(&owner, None);
        let list = w.routing().vipa_list();
        for (t, _) in w.routing().targets_of(dvipa) {
            w.send_xcf(&owner, &t, list.clone());
        }
        w.run();
        w
    }

    /// IPCONFIG IPSECURITY as the topology defines it: the owner's routing
    /// stack filters with its image's table from now on, and so does the
    /// routing stack of a backup that takes the DVIPA over.
    pub fn enforce_ip_security(&mut self) {
        let Some(t) = self.takeover.as_mut() else {
            return;
        };
        t.ip_security = true;
        let owner = self.owner.clone();
        if let Some(table) = self.filter_table_of(&owner) {
            self.set_routing_filter(table);
        }
    }

    /// The IP filter table `image`'s profile and policy make, if it
    /// filters (and its policy is valid: the topology loader checked it).
    fn filter_table_of(&self, image: &str) -> Option<FilterTable> {
        let t = self.takeover.as_ref().filter(|t| t.ip_security)?;
        t.sysplex.image(image)?.filter_table.clone()
    }

    /// Puts `value` under `key` in the CF for `image`, rendered with `what` and the answer.
    fn cf_put(&mut self, image: &str, key: CfKey, value: Vec<u8>, what: &str) {
        let len = value.len();
        let r = self.cf.request(CfRequest::Put {
            key: key.into(),
            value,
        });
        self.log(format!(
            "{image} → CF     Put {key} = {what} ({len} bytes): {}",
            cf_answer(&r)
        ));
    }

    fn put_owner(&mut self, image: &str, previous: Option<String>) {
        let rec = OwnerRecord {
            image: image.to_string(),
            takeover: previous.is_some(),
            previous: previous.clone(),
        };
        let what = match &previous {
            Some(p) => format!("OwnerRecord {image}, taken over from {p}"),
            None => format!("OwnerRecord {image}"),
        };
        self.cf_put(image, tk::owner_key(self.dvipa), tk::encode(&rec), &what);
    }

    /// The owner's copy of an installed SA pair in the CF (takeover only).
    pub(super) fn checkpoint_sa(&mut self, install: &SaInstall) {
        if self.takeover.is_none() {
            return;
        }
        let owner = self.owner.clone();
        let rec = SaRecord::Pair(Box::new(install.clone()));
        self.cf_put(&owner, rec.key(), tk::encode(&rec), "SaRecord::Pair");
    }

    /// Every routing stack's DCT changes into the CF (the runtime hands
    /// them to its CF writer every 50 ms; here, after every event).
    pub(super) fn flush_journals(&mut self) {
        let Some(t) = self.takeover.as_ref() else {
            return;
        };
        let live: Vec<ImageId> = self
            .images
            .keys()
            .filter(|n| !t.failed.contains(n.as_str()) && !t.journal_held.contains(n.as_str()))
            .cloned()
            .collect();
        for n in live {
            let changes = match self.image(&n).image.routing_mut() {
                Some(r) => r.take_journal(),
                None => continue,
            };
            for c in changes {
                match c {
                    DctChange::Made {
                        key,
                        target,
                        target_xcf,
                        ipsec,
                    } => {
                        let what = format!(
                            "ConnRecord {target} {target_xcf}{}",
                            if ipsec { " ipsec" } else { "" }
                        );
                        let rec = ConnRecord {
                            target,
                            target_xcf,
                            ipsec,
                        };
                        self.cf_put(&n, tk::conn_key(&key), tk::encode(&rec), &what);
                    }
                    DctChange::Ended(key) => {
                        let k = tk::conn_key(&key);
                        let r = self.cf.request(CfRequest::Delete { key: k.into() });
                        self.log(format!(
                            "{n} → CF     Delete {k} (DCT entry ended): {}",
                            cf_answer(&r)
                        ));
                    }
                }
            }
        }
    }

    /// Why `ev` never arrives: it goes to (or would be sent by) an image
    /// that failed.
    pub(super) fn lost(&self, ev: &Event) -> Option<String> {
        let failed = &self.takeover.as_ref()?.failed;
        let dead = |n: &str| failed.contains(n).then(|| n.to_string());
        let (dead, what) = match ev {
            Event::ToDvipa(p) => (
                dead(self.owner.as_str())?,
                format!(
                    "{} (the LAN still delivers DVA1 there)",
                    plexnet_core::trace::packet(p)
                ),
            ),
            Event::Gre { from, to, datagram } => (
                dead(from).or_else(|| dead(to))?,
                format!("GRE {from} ⇒ {to} ({} bytes)", datagram.wire_len()),
            ),
            Event::Outbound { image, packet } => {
                (dead(image)?, plexnet_core::trace::packet(packet))
            }
            Event::Xcf { from, to, msg } => (
                dead(from).or_else(|| dead(to))?,
                format!("XCF {from} → {to} {}", super::xcf_name(msg)),
            ),
            Event::Negotiated(_) => (
                dead(self.owner.as_str())?,
                "the SA pair its IKE negotiated".to_string(),
            ),
            Event::ToClient { .. } => return None,
        };
        Some(format!("{dead} down     lost: {what}"))
    }

    /// `observer` heard from `peer` (any XCF message or GRE datagram).
    pub(super) fn heard(&mut self, observer: &str, peer: &str) {
        let now = self.now_ms;
        if let Some(t) = self.takeover.as_mut() {
            t.heard.insert((observer.into(), peer.into()), now);
        }
    }

    /// For an SA pair `to` already shadows from another routing stack:
    /// that stack (the target keeps the pair and switches its owner).
    pub(super) fn shadowed_by(&self, to: &str, msg: &XcfMessage) -> Option<String> {
        self.takeover.as_ref()?;
        let XcfMessage::SaInstall(i) = msg else {
            return None;
        };
        self.images[to]
            .image
            .target()
            .shadow()
            .iter()
            .find(|p| p.install.same_sas(i))
            .map(|p| p.owner.clone())
    }

    /// What a target shows beyond its state machine (takeover scenarios):
    /// that an SA pair it already had only changed its owner. (Its answer
    /// to a VIPA list, its listeners, is the image's own.)
    pub(super) fn after_xcf(&mut self, from: &str, to: &str, shadowed_by: Option<String>) {
        if self.takeover.is_none() {
            return;
        }
        if let Some(old) = shadowed_by.filter(|o| o != from) {
            self.log(format!(
                "{to} target   the same pair from {from}: replay window and counters kept, owner {old} → {from}"
            ));
        }
    }

    /// `image` fails: from now on it sends nothing and nothing reaches it.
    pub fn fail(&mut self, image: &str) {
        self.run();
        if let Some(t) = self.takeover.as_mut() {
            t.failed.insert(image.into());
        }
        self.log(format!(
            "{image} FAILS: its XCF links and its ext go silent"
        ));
        let unwritten = self
            .image(&ImageId::new(image))
            .image
            .routing_mut()
            .map_or(0, |r| r.take_journal().len());
        if unwritten > 0 {
            self.log(format!(
                "{image} journal  {unwritten} DCT changes never reached the CF"
            ));
        }
    }

    /// From now on `image`'s DCT changes wait in its journal instead of
    /// reaching the CF at once, as between two of the daemon's 50 ms
    /// journal writes: a failure now loses them ([`World::fail`]).
    pub fn hold_journal(&mut self, image: &str) {
        self.run();
        if let Some(t) = self.takeover.as_mut() {
            t.journal_held.insert(image.into());
        }
        self.log(format!(
            "{image} journal  held: DCT changes wait for the next CF write"
        ));
    }

    /// Moves virtual time to `until_ms` in heartbeat ticks, running the
    /// events between them.
    pub fn advance_to(&mut self, until_ms: u64) {
        self.run();
        while let Some(tick) = self
            .takeover
            .as_ref()
            .map(|t| t.next_tick)
            .filter(|t| *t <= until_ms)
        {
            self.now_ms = self.now_ms.max(tick);
            self.tick(tick);
            self.run();
            if let Some(t) = self.takeover.as_mut() {
                t.next_tick += HEARTBEAT_MS;
            }
        }
        self.now_ms = self.now_ms.max(until_ms);
    }

    /// One heartbeat interval: live images hear each other, routing
    /// stacks expire idle DCT entries and targets their ended connections, silent peers are marked down, and
    /// the watches of those who noticed are evaluated.
    fn tick(&mut self, now: u64) {
        let Some(t) = self.takeover.as_mut() else {
            return;
        };
        let names: Vec<ImageId> = self.images.keys().cloned().collect();
        let live: Vec<ImageId> = names
            .iter()
            .filter(|n| !t.failed.contains(n.as_str()))
            .cloned()
            .collect();
        for a in &live {
            for b in live.iter().filter(|b| *b != a) {
                t.heard.insert((a.clone(), b.clone()), now);
            }
        }
        let silent: Vec<&ImageId> = t.failed.iter().collect();
        let line = if silent.is_empty() {
            format!("xcf      heartbeats from {}", live.join(" "))
        } else {
            format!(
                "xcf      heartbeats from {}; none from {}",
                live.join(" "),
                silent
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        self.log(line);
        for n in &live {
            let image = &mut self.image(n).image;
            if let Some(r) = image.routing_mut() {
                r.on_timeout(Instant::from_millis(now));
            }
            image.target_mut().expire_served(Instant::from_millis(now));
        }
        self.flush_journals();
        self.evaluate_givebacks(&live);
        for o in &live {
            let newly_down: Vec<(ImageId, u64)> = {
                let Some(t) = self.takeover.as_mut() else {
                    return;
                };
                let gone: Vec<(ImageId, u64)> = names
                    .iter()
                    .filter(|p| *p != o && !t.down.contains(&(o.clone(), (*p).clone())))
                    .filter_map(|p| {
                        let last = t.heard.get(&(o.clone(), p.clone())).copied()?;
                        (now.saturating_sub(last) >= DEAD_AFTER_MS).then(|| (p.clone(), last))
                    })
                    .collect();
                for (p, _) in &gone {
                    t.down.insert((o.clone(), p.clone()));
                }
                gone
            };
            if newly_down.is_empty() {
                continue;
            }
            for (p, last) in &newly_down {
                self.log(format!(
                    "{o} xcf      {p} silent since {last} ms (dead after {DEAD_AFTER_MS} ms): down"
                ));
                self.image(o).image.handle_peer_down(p);
            }
            self.image(o)
                .image
                .evaluate_watches(Instant::from_millis(now));
            self.drain_image(o, &[]);
        }
    }

    /// What `me`'s image tells of a takeover it carries out, as a trace:
    /// its routing stack (with its own IP security), what it adopted, and
    /// the gratuitous ARP when it is done.
    pub(super) fn takeover_event(&mut self, me: &str, ev: ImageEvent) {
        match ev {
            ImageEvent::TakeoverNotClaimed {
                holder: Some(holder),
                ..
            } => self.log(format!(
                "{me} watch    {holder} holds it already: no takeover"
            )),
            ImageEvent::TakeoverFailed { dvipa, why } => {
                self.log(format!("{me} watch    {dvipa}: takeover stopped: {why}"));
            }
            ImageEvent::TakeoverRecordUnreadable { dvipa, key, why } => {
                self.log(format!(
                    "{me} watch    {dvipa}: CF record {key} skipped: {why}"
                ));
            }
            ImageEvent::WatchDecided {
                dvipa,
                holder,
                successor,
                action,
            } => {
                let holder = holder.unwrap_or_default();
                self.log(match action {
                    WatchAction::Nothing => format!(
                        "{me} watch    {dvipa}: holder {holder}, live successor {}: nothing to do",
                        successor.as_deref().unwrap_or("none")
                    ),
                    WatchAction::Acquire { .. } => format!(
                        "{me} watch    {dvipa}: holder {holder} down, {me} is the highest-ranked live candidate: take it over"
                    ),
                });
            }
            ImageEvent::RoutingStackOf { dvipa, dists } => {
                for d in &dists {
                    self.log(format!(
                        "{me} routing  routing stack of {dvipa} with its own VIPADISTRIBUTE {}",
                        render_distribute(d)
                    ));
                }
                self.own_filter(me, dvipa);
            }
            ImageEvent::Adopted { adoption, .. } => self.log_adoption(me, &adoption),
            ImageEvent::PlumbDvipa { dvipa, .. } => {
                // Gratuitous ARP: the LAN now delivers the DVIPA to `me`.
                self.owner = ImageId::new(me);
                self.log(format!(
                    "{me} ext      gratuitous ARP: {dvipa} is at {me}; the LAN delivers DVA1 here"
                ));
                self.flush_journals();
                self.image(me).image.handle_dvipa_plumbed(dvipa);
                self.image(me).image.handle_dvipa_announced(dvipa);
            }
            ev => self.giveback_event(me, ev),
        }
    }

    /// A backup's own IP security when it takes `dvipa` over: the pairs it
    /// adopts get their dynamic filters from its table, not from the CF
    /// records of the failed owner.
    fn own_filter(&mut self, me: &str, dvipa: Ipv4Addr) {
        let Some(table) = self.filter_table_of(me) else {
            return;
        };
        let n = table.active_rules().rules.len();
        if let Some(r) = self.image(me).image.routing_mut() {
            r.set_filter(table);
        }
        self.log(format!(
            "{me} routing  IPCONFIG IPSECURITY: its own filter table ({n} rules) for {dvipa}"
        ));
    }

    /// A takeover step of `me` in the CF, rendered with the answer.
    pub(super) fn log_takeover_cf(&mut self, me: &str, req: &CfRequest, r: &CfResponse) {
        let owner_key = tk::owner_key(self.dvipa).to_string();
        let value = match r {
            CfResponse::Value(v) => v.as_deref(),
            _ => None,
        };
        let holder = |b: Option<&[u8]>| {
            b.and_then(|b| tk::decode::<OwnerRecord>(b).ok())
                .map_or("nobody".to_string(), |r| r.image)
        };
        let line = match req {
            CfRequest::Get { key } if *key == owner_key => {
                format!("{me} → CF     Get {key} = OwnerRecord {}", holder(value))
            }
            CfRequest::Get { key } => {
                let Some(bytes) = value else { return };
                let sa = key.starts_with(&tk::sa_prefix(self.dvipa).to_string());
                match render_record(sa, bytes) {
                    Ok(what) => format!("{me} → CF     Get {key} = {what}"),
                    Err(e) => format!("{me} → CF     Get {key} = undecodable: {e}"),
                }
            }
            CfRequest::List { prefix } => match r {
                CfResponse::Keys(k) => {
                    let plural = if k.len() == 1 { "" } else { "s" };
                    format!("{me} → CF     List {prefix} = {} key{plural}", k.len())
                }
                other => format!("{me} → CF     List {prefix}: {}", cf_answer(other)),
            },
            CfRequest::CompareAndSwap { key, expected, .. } => format!(
                "{me} → CF     CompareAndSwap {key} {} → {me}: {}",
                holder(expected.as_deref()),
                cf_answer(r)
            ),
            CfRequest::Put { key, value } => {
                let sa = key.starts_with(&tk::sa_prefix(self.dvipa).to_string());
                let what = render_record(sa, value).unwrap_or_else(|e| format!("undecodable: {e}"));
                format!(
                    "{me} → CF     Put {key} = {what} ({} bytes): {}",
                    value.len(),
                    cf_answer(r)
                )
            }
            CfRequest::Delete { key } => format!(
                "{me} → CF     Delete {key} (a connection not continued): {}",
                cf_answer(r)
            ),
            other => format!("{me} → CF     {other:?}: {}", cf_answer(r)),
        };
        self.log(line);
    }

    /// One line per SA record and connection a takeover adopted or left.
    fn log_adoption(&mut self, me: &str, adoption: &tk::Adoption) {
        for sa in &adoption.sas {
            let line = match sa {
                tk::SaAdoption::Adopted {
                    inbound,
                    outbound,
                    bundle,
                    ..
                } => format!(
                    "{me} routing  adopted SA {} in={:#010x} out={:#010x}: owned cache (replay pre-check starts empty), own shadow cache",
                    if *bundle { "bundle" } else { "pair" },
                    inbound.0,
                    outbound.0
                ),
                tk::SaAdoption::Refused { inbound, why } => {
                    format!("{me} routing  SA {:#010x} from the CF refused: {why}", inbound.0)
                }
            };
            self.log(line);
        }
        for c in &adoption.conns {
            let line = match c {
                tk::ConnAdoption::Restored {
                    key,
                    target,
                    target_xcf,
                } => format!(
                    "{me} routing  DCT restored: {} → {target} ({target_xcf})",
                    render_conn(key)
                ),
                tk::ConnAdoption::NotRestored { key, target, why } => format!(
                    "{me} routing  {} → {target} not restored: {why}",
                    render_conn(key)
                ),
            };
            self.log(line);
        }
    }

    /// Who holds the DVIPA, as `image`'s watch sees it.
    pub fn holder_seen_by(&self, image: &str) -> Option<String> {
        let img = self.images.get(image)?;
        img.image.watch(self.dvipa)?.holder.clone()
    }
}
