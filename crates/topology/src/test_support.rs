//! What the parsers' unit tests share: the one error a text must give,
//! and the word it points at.

use super::error::ErrorKind;
use super::statement::RawError;

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
