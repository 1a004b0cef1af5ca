//! open (ESP, AH, AH+ESP, and through the SA database) on arbitrary bytes:
//! never panics, and a packet that did not authenticate never moves a
//! replay window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plexnet::ipsec::{open_ah, open_bundle, open_esp, InboundSa, InboundSad, ReplayWindow};
use plexnet::time::Instant;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let esp = common::esp_sa(control);
    let ah = common::ah_sa(control);
    let mut out = Vec::new();
    for packet in common::packets(control, body) {
        let mut w = ReplayWindow::new(64, esp.config().esn);
        if open_esp(&esp, &mut w, &packet, &mut out).is_err() {
            assert_eq!(w.top(), 0, "a rejected packet moved the window");
            assert!(out.is_empty());
        }
        let mut wa = ReplayWindow::new(64, false);
        let _ = open_ah(&ah, &mut wa, &packet, &mut out);
        let (mut wa, mut we) = (ReplayWindow::new(64, false), ReplayWindow::new(64, false));
        let _ = open_bundle(&ah, &mut wa, &esp, &mut we, &packet, &mut out);
        let mut sad = InboundSad::new();
        sad.insert(InboundSa::new(esp.clone(), Instant::ZERO));
        sad.insert(InboundSa::new(ah.clone(), Instant::ZERO));
        let _ = sad.open(Instant::ZERO, &packet, &mut out);
    }
});
