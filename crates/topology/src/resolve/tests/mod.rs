//! The resolver's tests, by subject; `check` loads a text with a mark where
//! the first error must point.

use super::super::test_support::{check_marked as check, load_t as load};

/// Two images around `body` parts: MVS1 owns DVA1 198.18.0.100 and
/// distributes port 80 to MVS1 MVS2; tests replace pieces of it.
const BASE: &str = r#"name = "t"
[hosts]
DVA1 = "198.18.0.100"
[[image]]
name = "MVS1"
vipadynamic = """
VIPADYNAMIC
  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100
  VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN 198.18.0.100 PORT 80 DESTIP MVS1 MVS2
ENDVIPADYNAMIC
"""
[[image]]
name = "MVS2"
[[client]]
name = "client1"
"#;

/// BASE with `from` replaced by `to` (which carries the mark).
fn base_with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from} not in BASE");
    BASE.replacen(from, to, 1)
}

mod addresses;
mod names;
mod security;
mod vipadynamic;
