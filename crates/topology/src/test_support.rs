//! What the parsers' unit tests share: the one error a text must give,
//! and the word it points at; and for whole topologies, the first error
//! a marked text must give, at the mark.

use super::error::ErrorKind;
use super::statement::RawError;
use super::{load_str, Topology, TopologyError};
use std::path::Path;

/// The only error of `errors`; fails the test unless there is exactly one.
pub(crate) fn only_error(errors: Vec<RawError>) -> RawError {
    assert_eq!(errors.len(), 1, "expected one error, got {errors:?}");
    errors.into_iter().next().expect("one error")
}

/// The word of `text` that starts at `at`: up to the next blank, empty at
/// the end of the text.
pub(crate) fn word_at(text: &str, at: usize) -> String {
    text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect()
}

/// The only error of `errors`, found in `text`, with the word it points at.
pub(crate) fn the_error(text: &str, errors: Vec<RawError>) -> (String, ErrorKind) {
    let (at, kind) = only_error(errors);
    (word_at(text, at), kind)
}

/// Marks where the first error of a test topology must point; removed
/// before loading.
const MARK: char = '‸';

/// Loads a test topology as `t.toml`.
pub(crate) fn load_t(text: &str) -> Result<Topology, TopologyError> {
    load_str(text, Path::new("t.toml"))
}

/// Loads `marked` (with one MARK) and checks the first error is exactly
/// `t.toml:LINE:COL: message` at the mark.
pub(crate) fn check_marked(marked: &str, message: &str) {
    let at = marked.find(MARK).expect("a mark in the test text");
    let text = marked.replacen(MARK, "", 1);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    match load_t(&text) {
        Ok(_) => panic!("loaded, expected t.toml:{line}:{col}: {message}"),
        Err(e) => assert_eq!(e.to_string(), format!("t.toml:{line}:{col}: {message}")),
    }
}
