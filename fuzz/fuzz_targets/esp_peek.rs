//! peek, peek_bundle and locate on arbitrary bytes: never panic, and the
//! work stays bounded (a handful of AES blocks) whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plexnet::ipsec::{locate, peek, peek_bundle};

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let esp = common::esp_sa(control);
    let ah = common::ah_sa(control);
    for packet in common::packets(control, body) {
        let _ = locate(&packet);
        if let Ok(p) = peek(&packet, &esp) {
            assert!(
                p.blocks_decrypted <= 8,
                "peek decrypted {} blocks",
                p.blocks_decrypted
            );
        }
        let _ = peek(&packet, &ah);
        if let Ok(b) = peek_bundle(&packet, &ah, &esp) {
            assert!(b.esp.blocks_decrypted <= 8, "bundle peek: {b:?}");
        }
    }
});
