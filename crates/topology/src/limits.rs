//! `[limits]`: the bounds of the tables that unauthenticated peers can
//! grow (the DCT, the NEWCONN hold queue, the CF's storage per image, XCF
//! messages), each `key = integer` in its range. The keys, defaults and
//! the z/OS statements they follow are in
//! [`plexnet_core::sysplex::limits`].
//!
//! ```toml
//! [limits]
//! dct_max_entries = 65536        # VCRT entries per routing stack
//! half_open_timeout_ms = 10000   # a SYN never answered, table below half full
//! half_open_pressure_ms = 1000   # ... and once the table is full
//! newconn_hold_max = 64          # SYNs a target holds for NEWCONN (Fig. 11)
//! cf_max_entries_per_image = 65536
//! cf_max_bytes_per_image = 67108864
//! cf_max_structures_per_image = 4096
//! xcf_max_message_bytes = 1048576
//! ```

use std::collections::BTreeMap;

use plexnet_core::sysplex::limits::{SysplexLimits, LIMIT_RANGES};
use toml::Spanned;

use super::error::ErrorKind;
use super::resolve::Resolver;

/// The table's values over the defaults; an unknown key, a value out of
/// its range, or a pressure timeout above the timeout is an error at the
/// value.
pub(crate) fn resolve(
    r: &mut Resolver<'_>,
    def: Option<&BTreeMap<String, Spanned<i64>>>,
) -> SysplexLimits {
    let mut limits = SysplexLimits::default();
    let Some(def) = def else {
        return limits;
    };
    for (key, v) in def {
        let at = v.span().start;
        let value = *v.get_ref();
        let Some(&(_, min, max)) = LIMIT_RANGES.iter().find(|(k, _, _)| k == key) else {
            let allowed: Vec<&str> = LIMIT_RANGES.iter().map(|(k, _, _)| *k).collect();
            let allowed = allowed.join(", ");
            let key = key.clone();
            r.err(at, ErrorKind::UnknownLimit { key, allowed });
            continue;
        };
        match u64::try_from(value) {
            Ok(x) if (min..=max).contains(&x) => {
                if let Some(slot) = limits.get_mut(key) {
                    *slot = x;
                }
            }
            _ => {
                let key = key.clone();
                r.err(
                    at,
                    ErrorKind::LimitOutOfRange {
                        key,
                        value,
                        min,
                        max,
                    },
                );
            }
        }
    }
    if limits.half_open_pressure_ms > limits.half_open_timeout_ms {
        let at = def
            .get("half_open_pressure_ms")
            .map_or(0, |v| v.span().start);
        let (pressure, timeout) = (limits.half_open_pressure_ms, limits.half_open_timeout_ms);
        r.err(at, ErrorKind::PressureAboveTimeout { pressure, timeout });
    }
    limits
}
