//! The giveback steps driven by hand (figure4: MVS1 VIPADEFINEs DVA1,
//! MVS5 holds it after a takeover).

use std::net::Ipv4Addr;

use super::*;
use crate::sysplex::config::{Dest, DestRole, DistMethod, Moveable, VipaDistribute};
use crate::sysplex::dct::ConnKey;
use crate::sysplex::routing::{Decision, RouteDrop, RoutingConfig};
use crate::sysplex::takeover::Watch;
use crate::sysplex::test_support::{Figure4, DVA1};
use crate::sysplex::xcf::{CfRequest, CfResponse, GivebackStep};
use crate::wire::build::tcp_packet;
use crate::wire::TcpFlags;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const MVS3_XCF: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 3);

fn dist() -> VipaDistribute {
    VipaDistribute {
        method: DistMethod::RoundRobin,
        timed_affinity: None,
        addr: DVA1,
        ports: vec![80],
        dests: vec![Dest {
            image: "MVS3".into(),
            xcf_addr: MVS3_XCF,
            role: DestRole::Plain,
        }],
        all: false,
    }
}

fn conn(port: u16) -> ConnKey {
    ConnKey {
        client: CLIENT,
        client_port: port,
        dvipa: DVA1,
        port: 80,
    }
}

/// MVS5 holding DVA1 (routing it to MVS3) with one connection, its owner
/// MVS1 not seen yet; `moveable` as MVS1's VIPADEFINE says.
fn holder(moveable: Moveable) -> Image {
    let config = ImageConfig {
        id: ImageId::new("MVS5"),
        xcf_addr: Ipv4Addr::new(198, 19, 0, 5),
        owned: vec![DVA1],
        newconn: NewConnPolicy::default(),
        limits: Default::default(),
        hash_seed: 0,
    };
    let mut r = RoutingStack::new("MVS5", config.xcf_addr, RoutingConfig::default(), &[dist()]);
    r.keep_journal();
    r.restore(conn(40000), "MVS3", MVS3_XCF, true);
    r.on_xcf(
        "MVS3",
        &XcfMessage::RegisterListener {
            dvipa: DVA1,
            port: 80,
        },
    );
    let mut image = Image::new(config, Some(r), Instant::ZERO);
    let mut watch = Watch::new(&Figure4, "MVS5", DVA1, Some("MVS5".into()));
    watch.moveable = moveable;
    image.watch_dvipa(watch, vec![dist()]);
    image
}

fn events(image: &mut Image) -> Vec<ImageEvent> {
    std::iter::from_fn(|| image.poll_event()).collect()
}

fn xcf_steps(image: &mut Image) -> Vec<(String, GivebackStep)> {
    std::iter::from_fn(|| image.poll_transmit())
        .filter_map(|t| match t {
            Transmit::Xcf {
                to,
                msg: XcfMessage::Giveback { step, .. },
            } => Some((to.to_string(), step)),
            _ => None,
        })
        .collect()
}

/// Answers every CF request with `Done`; returns them.
fn cf_done(image: &mut Image) -> Vec<CfRequest> {
    let mut reqs = Vec::new();
    while let Some(CfAsk::Kv { id, req }) = image.poll_cf_request(Instant::ZERO) {
        reqs.push(req);
        image.handle_cf_response(Instant::ZERO, id, CfResponse::Done);
    }
    reqs
}

fn syn(image: &mut Image, port: u16) -> Decision {
    let p = tcp_packet(CLIENT, port, DVA1, 80, 1, 0, TcpFlags::SYN, &[]);
    image
        .routing_mut()
        .expect("routing")
        .inbound(Instant::ZERO, &p)
}

#[test]
fn immediate_the_holder_moves_flushes_offers_and_lets_go_when_taken() {
    let mut mvs5 = holder(Moveable::Immediate);
    mvs5.handle_peer_up(&ImageId::new("MVS1"));
    mvs5.evaluate_watches(Instant::ZERO);
    assert!(events(&mut mvs5).iter().any(
        |e| matches!(e, ImageEvent::GivebackDecided { to, connections: 1, .. } if to == "MVS1")
    ));
    // MOVING: no new connection here, the old one is still routed.
    assert_eq!(syn(&mut mvs5, 40001), Decision::Drop(RouteDrop::Moving));
    assert!(matches!(
        mvs5.giveback_state(DVA1),
        Some(GivebackState::Flushing { .. })
    ));
    let writes = cf_done(&mut mvs5);
    assert!(
        writes
            .iter()
            .any(|w| matches!(w, CfRequest::Put { key, .. } if key.contains("40000"))),
        "{writes:?}"
    );
    assert_eq!(
        xcf_steps(&mut mvs5),
        vec![("MVS1".into(), GivebackStep::Offer)]
    );
    // Only the owner it offered to ends it.
    let taken = XcfMessage::Giveback {
        dvipa: DVA1,
        step: GivebackStep::Taken,
    };
    mvs5.handle_xcf(Instant::ZERO, &ImageId::new("MVS2"), taken.clone());
    assert!(mvs5.owned().contains(&DVA1));
    let journal = mvs5.routing_mut().map(|r| r.take_journal().len());
    assert_eq!(journal, Some(1), "the restored connection");
    mvs5.handle_xcf(Instant::ZERO, &ImageId::new("MVS1"), taken);
    let gave = events(&mut mvs5)
        .into_iter()
        .find_map(|e| match e {
            ImageEvent::GaveBack { released, .. } => Some(released),
            _ => None,
        })
        .expect("GaveBack");
    assert_eq!(gave.connections, 1);
    assert!(!mvs5.owned().contains(&DVA1));
    let r = mvs5.routing_mut().expect("routing");
    assert!(r.dvipas().is_empty() && r.dct().is_empty());
    assert!(r.take_journal().is_empty(), "no CF delete by the holder");
    assert_eq!(
        mvs5.watch(DVA1).and_then(|w| w.holder.clone()).as_deref(),
        Some("MVS1")
    );
    assert_eq!(mvs5.watch(DVA1).map(|w| w.givebacks), Some(1));
    assert_eq!(mvs5.giveback_state(DVA1), None);
}

#[test]
fn when_idle_the_holder_keeps_new_connections_until_the_last_one_ended() {
    let mut mvs5 = holder(Moveable::WhenIdle);
    mvs5.handle_peer_up(&ImageId::new("MVS1"));
    mvs5.evaluate_watches(Instant::ZERO);
    assert!(matches!(
        mvs5.giveback_state(DVA1),
        Some(GivebackState::WaitingIdle { connections: 1, .. })
    ));
    assert!(cf_done(&mut mvs5).is_empty());
    // New connections still come here.
    assert!(matches!(syn(&mut mvs5, 40001), Decision::Forward { .. }));
    // Both entries expire (a SYN's after 10 s, an idle one's after 300 s).
    let later = Instant::from_millis(301_000);
    mvs5.handle_timeout(later);
    assert!(matches!(
        mvs5.giveback_state(DVA1),
        Some(GivebackState::Offered { .. })
    ));
    assert_eq!(
        xcf_steps(&mut mvs5),
        vec![("MVS1".into(), GivebackStep::Offer)]
    );
}

#[test]
fn the_holder_keeps_the_dvipa_when_the_owner_declines_or_leaves() {
    let mut mvs5 = holder(Moveable::Immediate);
    mvs5.handle_peer_up(&ImageId::new("MVS1"));
    mvs5.evaluate_watches(Instant::ZERO);
    cf_done(&mut mvs5);
    let declined = XcfMessage::Giveback {
        dvipa: DVA1,
        step: GivebackStep::Declined,
    };
    mvs5.handle_xcf(Instant::ZERO, &ImageId::new("MVS1"), declined);
    assert!(events(&mut mvs5)
        .iter()
        .any(|e| matches!(e, ImageEvent::GivebackStopped { .. })));
    assert!(matches!(syn(&mut mvs5, 40001), Decision::Forward { .. }));
    assert!(mvs5.owned().contains(&DVA1));
    // MVS1 goes: nothing waits for it.
    mvs5.handle_peer_down(&ImageId::new("MVS1"));
    mvs5.evaluate_watches(Instant::ZERO);
    assert_eq!(mvs5.giveback_state(DVA1), None);
}

#[test]
fn an_image_that_does_not_define_the_dvipa_declines_it() {
    let config = ImageConfig {
        id: ImageId::new("MVS2"),
        xcf_addr: Ipv4Addr::new(198, 19, 0, 2),
        owned: Vec::new(),
        newconn: NewConnPolicy::default(),
        limits: Default::default(),
        hash_seed: 0,
    };
    let mut mvs2 = Image::new(config, None, Instant::ZERO);
    let offer = XcfMessage::Giveback {
        dvipa: DVA1,
        step: GivebackStep::Offer,
    };
    mvs2.handle_xcf(Instant::ZERO, &ImageId::new("MVS5"), offer);
    assert_eq!(
        xcf_steps(&mut mvs2),
        vec![("MVS5".into(), GivebackStep::Declined)]
    );
    assert!(mvs2.poll_cf_request(Instant::ZERO).is_none());
}
