//! Which targets listen on a distributed port, and the choice of a target
//! for a new connection by the VIPADISTRIBUTE DISTMETHOD (Fig. 8 block 144).

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use crate::sysplex::config::{DestRole, DistMethod, VipaDistribute};
use crate::time::Instant;
use std::time::Duration;

/// Which targets have a server listening on DVIPA:port (target
/// registration, issue 4 item 3): only those are chosen. Serializes as a
/// list of `{dvipa, port, images}`.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    by_port: BTreeMap<(Ipv4Addr, u16), BTreeSet<String>>,
}

impl Serialize for Listeners {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            dvipa: Ipv4Addr,
            port: u16,
            images: &'a BTreeSet<String>,
        }
        s.collect_seq(self.by_port.iter().map(|((dvipa, port), images)| Entry {
            dvipa: *dvipa,
            port: *port,
            images,
        }))
    }
}

impl Listeners {
    pub fn register(&mut self, image: &str, dvipa: Ipv4Addr, port: u16) -> bool {
        self.by_port
            .entry((dvipa, port))
            .or_default()
            .insert(image.to_string())
    }
    pub fn deregister(&mut self, image: &str, dvipa: Ipv4Addr, port: u16) -> bool {
        self.by_port
            .get_mut(&(dvipa, port))
            .is_some_and(|s| s.remove(image))
    }
    /// Forgets every registration of an image (it went down).
    pub fn forget(&mut self, image: &str) {
        for set in self.by_port.values_mut() {
            set.remove(image);
        }
    }
    pub fn has(&self, image: &str, dvipa: Ipv4Addr, port: u16) -> bool {
        self.by_port
            .get(&(dvipa, port))
            .is_some_and(|s| s.contains(image))
    }
    pub fn entries(&self) -> impl Iterator<Item = (&(Ipv4Addr, u16), &BTreeSet<String>)> {
        self.by_port.iter()
    }
}

/// WEIGHTEDACTIVE weight when a DESTIP entry gives none (z/OS's default).
pub const DEFAULT_WEIGHT: u32 = 10;

/// A TIMEDAFFINITY binding: a client's connections to a port go to one
/// target until `until`.
#[derive(Debug, Clone)]
struct Affinity {
    target: String,
    target_xcf: Ipv4Addr,
    until: Instant,
}

/// The distribution of one DVIPA: its VIPADISTRIBUTE, the round-robin
/// cursor and the TIMEDAFFINITY bindings.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub config: VipaDistribute,
    rr_next: usize,
    affinity: HashMap<(Ipv4Addr, u16), Affinity>,
    /// Bindings kept at most: every SYN from a new (spoofable) source
    /// would add one, so the table is bounded like the DCT.
    affinity_max: usize,
    /// New bindings not made because `affinity_max` were kept already
    /// (the connection still gets a target, by the DISTMETHOD).
    pub affinity_full: u64,
}

impl Distribution {
    pub fn new(config: VipaDistribute) -> Self {
        Self {
            config,
            rr_next: 0,
            affinity: HashMap::new(),
            affinity_max: usize::MAX,
            affinity_full: 0,
        }
    }

    /// The same, keeping at most `max` TIMEDAFFINITY bindings.
    pub fn with_affinity_max(mut self, max: usize) -> Self {
        self.affinity_max = max;
        self
    }

    /// Forgets the bindings that lapsed by `now` (the periodic timeout,
    /// not each SYN: a SYN's cost must not grow with the table).
    pub fn expire_affinity(&mut self, now: Instant) {
        self.affinity.retain(|_, a| a.until > now);
    }

    /// TIMEDAFFINITY bindings kept now.
    pub fn affinity_len(&self) -> usize {
        self.affinity.len()
    }

    /// A packet of a connection from `client` to `port`: its affinity (if
    /// TIMEDAFFINITY is on) lasts until the configured time after it.
    pub fn touch(&mut self, now: Instant, client: Ipv4Addr, port: u16) {
        if let Some(secs) = self.config.timed_affinity {
            if let Some(a) = self.affinity.get_mut(&(client, port)) {
                a.until = now + Duration::from_secs(u64::from(secs));
            }
        }
    }

    /// A new connection: the target the client's affinity names, if it is
    /// alive and still listening, else one by the DISTMETHOD (which then
    /// becomes the affinity).
    pub fn choose_for(
        &mut self,
        now: Instant,
        client: Ipv4Addr,
        port: u16,
        listeners: &Listeners,
        active: &HashMap<String, u32>,
    ) -> Option<(String, Ipv4Addr)> {
        let Some(secs) = self.config.timed_affinity else {
            return self.choose(port, listeners, active);
        };
        if let Some(a) = self.affinity.get(&(client, port)) {
            if a.until > now && listeners.has(&a.target, self.config.addr, port) {
                return Some((a.target.clone(), a.target_xcf));
            }
        }
        let (target, target_xcf) = self.choose(port, listeners, active)?;
        let until = now + Duration::from_secs(u64::from(secs));
        let known = self.affinity.contains_key(&(client, port));
        if !known && self.affinity.len() >= self.affinity_max {
            self.affinity_full += 1;
            return Some((target, target_xcf));
        }
        self.affinity.insert(
            (client, port),
            Affinity {
                target: target.clone(),
                target_xcf,
                until,
            },
        );
        Some((target, target_xcf))
    }

    pub fn distributes(&self, port: u16) -> bool {
        self.config.ports.contains(&port)
    }

    /// Picks the target of a new connection to `port` among the
    /// destinations with a registered listener (Fig. 8 block 144):
    /// - ROUNDROBIN: the next one after the last chosen;
    /// - WEIGHTEDACTIVE: the lowest active connections per weight;
    /// - HOTSTANDBY: the PREFERRED one, else the highest-ranked BACKUP;
    /// - BASEWLM: plexnet has no WLM, so the fewest active connections.
    pub fn choose(
        &mut self,
        port: u16,
        listeners: &Listeners,
        active: &HashMap<String, u32>,
    ) -> Option<(String, Ipv4Addr)> {
        let dvipa = self.config.addr;
        let eligible: Vec<usize> = (0..self.config.dests.len())
            .filter(|&i| listeners.has(&self.config.dests[i].image, dvipa, port))
            .collect();
        let active_of = |i: usize| *active.get(&self.config.dests[i].image).unwrap_or(&0);
        let pick = match self.config.method {
            DistMethod::RoundRobin => {
                let n = self.config.dests.len();
                let start = self.rr_next;
                let chosen = (0..n)
                    .map(|k| (start + k) % n)
                    .find(|i| eligible.contains(i));
                if let Some(i) = chosen {
                    self.rr_next = (i + 1) % n;
                }
                chosen
            }
            DistMethod::WeightedActive => eligible.iter().copied().min_by(|&a, &b| {
                // Compare (active+1)/weight without floats: cross-multiply.
                let wa = u64::from(weight(self.config.dests[a].role));
                let wb = u64::from(weight(self.config.dests[b].role));
                (u64::from(active_of(a)) + 1)
                    .saturating_mul(wb)
                    .cmp(&(u64::from(active_of(b)) + 1).saturating_mul(wa))
            }),
            DistMethod::HotStandby => {
                let preferred = eligible
                    .iter()
                    .copied()
                    .find(|&i| self.config.dests[i].role == DestRole::Preferred);
                preferred.or_else(|| {
                    eligible
                        .iter()
                        .copied()
                        .max_by_key(|&i| match self.config.dests[i].role {
                            DestRole::Backup(rank) => i32::from(rank),
                            _ => -1,
                        })
                })
            }
            DistMethod::BaseWlm => eligible.iter().copied().min_by_key(|&i| active_of(i)),
        }?;
        let d = &self.config.dests[pick];
        Some((d.image.clone(), d.xcf_addr))
    }
}

fn weight(role: DestRole) -> u32 {
    match role {
        DestRole::Weight(w) => u32::from(w).max(1),
        _ => DEFAULT_WEIGHT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysplex::config::Dest;

    #[test]
    fn affinity_bindings_are_bounded_and_lapse_on_the_timeout() {
        let plain = DestRole::Plain;
        let mut d =
            dist(DistMethod::RoundRobin, &[("A", plain), ("B", plain)]).with_affinity_max(2);
        d.config.timed_affinity = Some(1);
        let l = listening(&["A", "B"]);
        let none = HashMap::new();
        for last in 1..=3u8 {
            let c = Ipv4Addr::new(198, 18, 1, last);
            d.choose_for(Instant::ZERO, c, 80, &l, &none)
                .expect("target");
        }
        assert_eq!((d.affinity_len(), d.affinity_full), (2, 1));
        d.expire_affinity(Instant::from_millis(1000));
        assert_eq!(d.affinity_len(), 0, "lapsed at 1 s");
    }

    fn dist(method: DistMethod, roles: &[(&str, DestRole)]) -> Distribution {
        Distribution::new(VipaDistribute {
            method,
            addr: Ipv4Addr::new(198, 18, 0, 100),
            ports: vec![80],
            timed_affinity: None,
            dests: roles
                .iter()
                .enumerate()
                .map(|(i, (name, role))| Dest {
                    image: name.to_string(),
                    xcf_addr: Ipv4Addr::new(198, 19, 0, i as u8 + 1),
                    role: *role,
                })
                .collect(),
            all: false,
        })
    }

    fn listening(images: &[&str]) -> Listeners {
        let mut l = Listeners::default();
        for i in images {
            l.register(i, Ipv4Addr::new(198, 18, 0, 100), 80);
        }
        l
    }

    fn choose_n(d: &mut Distribution, l: &Listeners, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| d.choose(80, l, &HashMap::new()).expect("a target").0)
            .collect()
    }

    #[test]
    fn round_robin_cycles_over_listening_targets_only() {
        let plain = DestRole::Plain;
        let mut d = dist(
            DistMethod::RoundRobin,
            &[("A", plain), ("B", plain), ("C", plain)],
        );
        let l = listening(&["A", "C"]);
        assert_eq!(choose_n(&mut d, &l, 4), ["A", "C", "A", "C"]);
        assert!(
            d.choose(81, &l, &HashMap::new()).is_none(),
            "nobody listens on 81"
        );
    }

    #[test]
    fn weighted_active_follows_weights_and_active_counts() {
        let mut d = dist(
            DistMethod::WeightedActive,
            &[("A", DestRole::Weight(3)), ("B", DestRole::Weight(1))],
        );
        let l = listening(&["A", "B"]);
        let mut active = HashMap::new();
        let mut picks = Vec::new();
        for _ in 0..8 {
            let (t, _) = d.choose(80, &l, &active).expect("target");
            *active.entry(t.clone()).or_insert(0) += 1;
            picks.push(t);
        }
        let a = picks.iter().filter(|t| *t == "A").count();
        assert_eq!((a, 8 - a), (6, 2), "3:1 weights give 6:2 of 8: {picks:?}");
    }

    #[test]
    fn hot_standby_prefers_then_falls_back_by_rank() {
        let mut d = dist(
            DistMethod::HotStandby,
            &[
                ("A", DestRole::Preferred),
                ("B", DestRole::Backup(50)),
                ("C", DestRole::Backup(100)),
            ],
        );
        assert_eq!(
            choose_n(&mut d, &listening(&["A", "B", "C"]), 2),
            ["A", "A"]
        );
        assert_eq!(choose_n(&mut d, &listening(&["B", "C"]), 1), ["C"]);
        assert_eq!(choose_n(&mut d, &listening(&["B"]), 1), ["B"]);
    }

    #[test]
    fn timed_affinity_keeps_a_client_port_on_one_target_until_it_lapses() {
        let plain = DestRole::Plain;
        let mut d = dist(DistMethod::RoundRobin, &[("A", plain), ("B", plain)]);
        d.config.timed_affinity = Some(2);
        let l = listening(&["A", "B"]);
        let c1 = Ipv4Addr::new(198, 18, 1, 2);
        let c2 = Ipv4Addr::new(198, 18, 1, 3);
        let none = HashMap::new();
        // `ms`: the time of the SYN, in milliseconds since start.
        let pick = |d: &mut Distribution, ms, c| {
            let now = Instant::from_millis(ms);
            d.choose_for(now, c, 80, &l, &none).expect("target").0
        };
        assert_eq!(pick(&mut d, 0, c1), "A");
        assert_eq!(
            pick(&mut d, 100, c1),
            "A",
            "same client and port: same target"
        );
        assert_eq!(
            pick(&mut d, 200, c2),
            "B",
            "another client goes round robin"
        );
        d.touch(Instant::from_millis(1500), c1, 80);
        assert_eq!(
            pick(&mut d, 3000, c1),
            "A",
            "kept alive by traffic at 1.5 s"
        );
        assert_eq!(
            pick(&mut d, 6000, c1),
            "A",
            "lapsed at 5 s, round robin picked A again"
        );
        assert_eq!(pick(&mut d, 9000, c2), "B");
    }

    #[test]
    fn base_wlm_picks_the_least_loaded() {
        let mut d = dist(
            DistMethod::BaseWlm,
            &[("A", DestRole::Plain), ("B", DestRole::Plain)],
        );
        let active = HashMap::from([("A".to_string(), 5), ("B".to_string(), 1)]);
        assert_eq!(
            d.choose(80, &listening(&["A", "B"]), &active).expect("t").0,
            "B"
        );
    }
}
