//! A manual SA's `replay_window` and `lifetime`.

use super::super::error::ErrorKind;
use super::super::file::{LifetimeDef, ManualSaDef};
use super::super::resolve::Resolver;
use super::{DEFAULT_HARD_PACKETS, DEFAULT_REPLAY_WINDOW};
use plexnet_core::ipsec::replay::MAX_WINDOW;
use plexnet_core::ipsec::{Lifetime, Lifetimes};
use toml::Spanned;

/// `replay_window`: 1 to the engine's largest window, 128 by default.
pub(super) fn replay_window(r: &mut Resolver<'_>, def: &ManualSaDef) -> u32 {
    let Some(v) = &def.replay_window else {
        return DEFAULT_REPLAY_WINDOW;
    };
    let value = *v.get_ref();
    match u32::try_from(value) {
        Ok(w) if (1..=MAX_WINDOW).contains(&w) => w,
        _ => {
            r.err(
                v.span().start,
                ErrorKind::ReplayWindowOutOfRange {
                    value,
                    max: MAX_WINDOW,
                },
            );
            DEFAULT_REPLAY_WINDOW
        }
    }
}

/// Soft and hard limits; a soft limit not given is 7/8 of the hard one.
pub(super) fn lifetimes(r: &mut Resolver<'_>, def: Option<&LifetimeDef>) -> Lifetimes {
    let empty = LifetimeDef::default();
    let def = def.unwrap_or(&empty);
    let mut limit = |field: &'static str, v: &Option<Spanned<i64>>, max: u64| -> Option<u64> {
        let v = v.as_ref()?;
        let value = *v.get_ref();
        match u64::try_from(value) {
            Ok(x) if (1..=max).contains(&x) => Some(x),
            _ => {
                r.err(
                    v.span().start,
                    ErrorKind::LifetimeOutOfRange { field, value, max },
                );
                None
            }
        }
    };
    let big = i64::MAX as u64;
    let hard = Lifetime {
        seconds: limit("hard_seconds", &def.hard_seconds, big),
        bytes: limit("hard_bytes", &def.hard_bytes, big),
        packets: limit("hard_packets", &def.hard_packets, DEFAULT_HARD_PACKETS)
            .or(Some(DEFAULT_HARD_PACKETS)),
    };
    let given = Lifetime {
        seconds: limit("soft_seconds", &def.soft_seconds, big),
        bytes: limit("soft_bytes", &def.soft_bytes, big),
        packets: limit("soft_packets", &def.soft_packets, DEFAULT_HARD_PACKETS),
    };
    let seven_eighths = |h: Option<u64>| h.map(|h| h - h / 8);
    let soft = Lifetime {
        seconds: given.seconds.or(seven_eighths(hard.seconds)),
        bytes: given.bytes.or(seven_eighths(hard.bytes)),
        packets: given.packets.or(seven_eighths(hard.packets)),
    };
    for (what, s, h, v) in [
        ("seconds", given.seconds, hard.seconds, &def.soft_seconds),
        ("bytes", given.bytes, hard.bytes, &def.soft_bytes),
        ("packets", given.packets, hard.packets, &def.soft_packets),
    ] {
        if let (Some(soft), Some(hard), Some(v)) = (s, h, v) {
            if soft > hard {
                r.err(
                    v.span().start,
                    ErrorKind::SoftAboveHard { what, soft, hard },
                );
            }
        }
    }
    Lifetimes { soft, hard }
}
