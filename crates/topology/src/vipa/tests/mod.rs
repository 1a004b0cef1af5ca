//! The VIPADYNAMIC parser's tests: the statements' forms, and errors.

use super::super::test_support::the_error;
use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

/// Parses a block holding `body` and returns its statements, failing on errors.
fn ok(body: &str) -> Vec<Statement> {
    let text = format!("VIPADYNAMIC\n{body}\nENDVIPADYNAMIC\n");
    let (s, e) = parse(&text);
    assert!(e.is_empty(), "unexpected errors {e:?}");
    s.into_iter().map(|s| s.value).collect()
}

/// Parses `text` and returns its single error with the offending word.
fn err(text: &str) -> (String, ErrorKind) {
    the_error(text, parse(text).1)
}

fn block_err(body: &str) -> (String, ErrorKind) {
    err(&format!("VIPADYNAMIC\n{body}\nENDVIPADYNAMIC\n"))
}

mod errors;
mod forms;
