//! The resolver's tests, by subject; `check` loads a text with a mark where
//! the first error must point.

use crate::topology::{load_str, Topology, TopologyError};
use std::path::Path;

/// Marks where the first error must point; removed before loading.
const MARK: char = '‸';

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

fn load(text: &str) -> Result<Topology, TopologyError> {
    load_str(text, Path::new("t.toml"))
}

/// Loads `marked` (with one MARK) and checks the first error is exactly
/// `t.toml:LINE:COL: message` at the mark.
fn check(marked: &str, message: &str) {
    let at = marked.find(MARK).expect("a mark in the test text");
    let text = marked.replacen(MARK, "", 1);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    match load(&text) {
        Ok(_) => panic!("loaded, expected t.toml:{line}:{col}: {message}"),
        Err(e) => assert_eq!(e.to_string(), format!("t.toml:{line}:{col}: {message}")),
    }
}

/// BASE with `from` replaced by `to` (which carries the mark).
fn base_with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from} not in BASE");
    BASE.replacen(from, to, 1)
}

mod addresses;
mod names;
mod security;
mod vipadynamic;
