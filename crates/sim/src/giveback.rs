//! VIPA giveback in the simulator: a failed image restarts (a fresh
//! `Image`, its watch reading the holder from the CF's owner record, as
//! the daemon's start-up does), its peers hear it again, and the holder's
//! image gives the DVIPA back as the owner's VIPADEFINE MOVEABLE says
//! (`plexnet_core::sysplex::image` giveback module); the simulator
//! answers the CF requests, carries the XCF steps and traces them.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::{ImageId, ScriptedServer, SimImage, World};
use plexnet_core::sysplex::image::ImageEvent;
use plexnet_core::sysplex::routing::RoutingStack;
use plexnet_core::sysplex::takeover::{self as tk, OwnerRecord, Watch};
use plexnet_core::sysplex::xcf::{CfRequest, CfResponse};
use plexnet_core::time::Instant;

impl World {
    /// `image` (failed before) restarts: a new image that owns nothing
    /// yet (the CF names another holder of the DVIPA, so it waits as a
    /// backup), watching the DVIPA; its XCF links come up, so every live
    /// image sees it again and it sees them.
    pub fn restart(&mut self, image: &str) {
        self.run();
        let Some(t) = self.takeover.as_mut() else {
            return;
        };
        t.failed.remove(image);
        let sysplex = Arc::new(t.sysplex.clone());
        let dvipa = self.dvipa;
        let holder = self.cf_holder();
        let Some(spec) = sysplex.image(image).cloned() else {
            return;
        };
        let mut img = SimImage::new(
            image,
            spec.xcf_addr,
            Vec::new(),
            None,
            ScriptedServer::new(image, dvipa, 80),
        );
        img.image.set_listeners(vec![(dvipa, 80)]);
        let fresh = RoutingStack::new(image, spec.xcf_addr, spec.routing, &[]);
        img.image
            .set_watch_context(Arc::clone(&sysplex), Some(fresh));
        let watch = Watch::new(&*sysplex, image, dvipa, holder.clone());
        img.image.watch_dvipa(watch, spec.distributions_of(dvipa));
        self.images.insert(ImageId::new(image), img);
        self.log(format!(
            "{image} RESTARTS: the CF names {} as the holder of {dvipa}; {image} waits as a backup",
            holder.as_deref().unwrap_or("nobody")
        ));
        self.peers_see(image);
    }

    /// Who the CF's owner record names.
    fn cf_holder(&mut self) -> Option<String> {
        let key = tk::owner_key(self.dvipa).to_string();
        match self.cf.request(CfRequest::Get { key }) {
            CfResponse::Value(Some(b)) => tk::decode::<OwnerRecord>(&b).ok().map(|r| r.image),
            _ => None,
        }
    }

    /// `image`'s XCF links are up again: it and every live peer see each
    /// other (the daemon's mesh connecting), and the peers' watches are
    /// evaluated.
    fn peers_see(&mut self, image: &str) {
        let now = self.now_ms;
        let Some(t) = self.takeover.as_mut() else {
            return;
        };
        let peers: Vec<ImageId> = self
            .images
            .keys()
            .filter(|p| p.as_str() != image && !t.failed.contains(p.as_str()))
            .cloned()
            .collect();
        for p in &peers {
            t.down.remove(&(p.clone(), ImageId::new(image)));
            t.down.remove(&(ImageId::new(image), p.clone()));
            t.heard.insert((p.clone(), ImageId::new(image)), now);
            t.heard.insert((ImageId::new(image), p.clone()), now);
        }
        let me = ImageId::new(image);
        for p in &peers {
            self.image(image).image.handle_peer_up(p);
        }
        self.image(image)
            .image
            .evaluate_watches(Instant::from_millis(now));
        self.drain_image(image, &[]);
        for p in &peers {
            self.log(format!("{p} xcf      {image} connected: up"));
            self.image(p).image.handle_peer_up(&me);
            self.image(p)
                .image
                .evaluate_watches(Instant::from_millis(now));
            self.drain_image(p, &[]);
        }
        self.run();
    }

    /// Every live image's givebacks evaluated (each heartbeat tick:
    /// WHENIDLE waits for the holder's last connection to end).
    pub(super) fn evaluate_givebacks(&mut self, live: &[ImageId]) {
        for n in live {
            self.image(n).image.evaluate_givebacks();
            self.drain_image(n, &[]);
        }
    }

    /// What an image tells of a giveback, as a trace line.
    pub(super) fn giveback_event(&mut self, me: &str, ev: ImageEvent) {
        let line = match ev {
            ImageEvent::GivebackDecided {
                dvipa,
                to,
                moveable,
                connections,
            } => match (moveable, connections) {
                (plexnet_core::sysplex::config::Moveable::WhenIdle, n) if n > 0 => format!(
                    "{me} giveback {dvipa}: owner {to} is back, MOVEABLE WHENIDLE: {n} connections remain, new ones stay here"
                ),
                (m, n) => format!(
                    "{me} giveback {dvipa}: owner {to} is back, MOVEABLE {}: MOVING ({n} connections), SAs and DCT into the CF",
                    if m == plexnet_core::sysplex::config::Moveable::WhenIdle { "WHENIDLE, idle" } else { "IMMEDIATE" }
                ),
            },
            ImageEvent::GivebackStopped { dvipa, why } => {
                format!("{me} giveback {dvipa}: stopped, {me} keeps it: {why}")
            }
            ImageEvent::TakingBack { dvipa, from } => {
                format!("{me} giveback {dvipa}: {from} offers it back: claim and adopt from the CF")
            }
            ImageEvent::GaveBack {
                dvipa,
                to,
                released,
            } => format!(
                "{me} giveback {dvipa}: {to} has it; released {} SA pairs and {} connections, back to backup",
                released.pairs, released.connections
            ),
            _ => return,
        };
        self.log(line);
    }

    /// The holder of `dvipa` as the CF's owner record names it now.
    pub fn cf_owner(&mut self) -> Option<String> {
        self.cf_holder()
    }

    /// The giveback state of `image`'s watch of the DVIPA, rendered.
    pub fn giveback_seen_by(&self, image: &str) -> Option<String> {
        let img = self.images.get(image)?;
        img.image
            .giveback_state(self.dvipa)
            .map(|s| format!("{s:?}"))
    }

    /// The DVIPA `image` owns, for assertions.
    pub fn owns(&self, image: &str, dvipa: Ipv4Addr) -> bool {
        self.images
            .get(image)
            .is_some_and(|i| i.image.owned().contains(&dvipa))
    }
}
