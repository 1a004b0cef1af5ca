//! Mapping positions inside a decoded TOML string value back to the file.
//!
//! `toml::Spanned` gives the byte range of the whole value token, quotes
//! included. The decoded string differs from the raw text: the delimiters,
//! the newline that `"""` and `'''` trim, escapes in basic strings, line-ending
//! backslashes, and `\r\n` normalised to `\n`. [`StrMap`] walks raw and decoded
//! text side by side and records, for every decoded byte, the file offset it
//! came from.

use std::iter::Peekable;
use std::ops::Range;
use std::str::{CharIndices, Chars};

/// File offsets of every byte of a decoded string (plus one past its end).
#[derive(Debug, Clone)]
pub(crate) struct StrMap {
    offsets: Vec<usize>,
}

impl StrMap {
    /// Builds the map for `decoded`, the value of the token at `span` in `src`.
    /// If the raw text cannot be aligned (it never should), every position maps
    /// to the start of the value, which is still in the right place in the file.
    pub(crate) fn new(src: &str, span: Range<usize>, decoded: &str) -> StrMap {
        align(src, span.clone(), decoded).unwrap_or_else(|| StrMap {
            offsets: vec![span.start; decoded.len() + 1],
        })
    }

    /// The file offset of byte `i` of the decoded string.
    pub(crate) fn file_offset(&self, i: usize) -> usize {
        match self.offsets.get(i) {
            Some(&o) => o,
            None => self.offsets.last().copied().unwrap_or(0),
        }
    }
}

fn align(src: &str, span: Range<usize>, decoded: &str) -> Option<StrMap> {
    let (start, end, basic) = string_body(src, span)?;
    let mut a = Aligner {
        offsets: Vec::with_capacity(decoded.len() + 1),
        decoded: decoded.chars(),
        pending: None,
    };
    a.pending = a.decoded.next();
    let mut r = src[start..end].char_indices().peekable();
    while let Some((ri, rc)) = r.next() {
        let at = start + ri;
        if basic && rc == '\\' {
            a.escape(&mut r, at)?;
            continue;
        }
        if rc == '\r' && a.pending == Some('\n') && r.peek().is_some_and(|&(_, c)| c == '\n') {
            continue; // \r\n decoded as \n: map the \n
        }
        a.take(rc, at)?;
    }
    if a.pending.is_some() {
        return None;
    }
    a.offsets.push(end);
    Some(StrMap { offsets: a.offsets })
}

/// Where the text of the string token at `span` starts and ends in `src`
/// (inside the delimiters, past the newline `"""` and `'''` trim), and
/// whether it is a basic string, which has escapes.
fn string_body(src: &str, span: Range<usize>) -> Option<(usize, usize, bool)> {
    let raw = src.get(span.clone())?;
    let (delim, basic) = if raw.starts_with("\"\"\"") {
        (3, true)
    } else if raw.starts_with("'''") {
        (3, false)
    } else if raw.starts_with('"') {
        (1, true)
    } else if raw.starts_with('\'') {
        (1, false)
    } else {
        return None;
    };
    if raw.len() < 2 * delim {
        return None;
    }
    let mut start = span.start + delim;
    let end = span.end - delim;
    if delim == 3 {
        // A newline right after the opening delimiter is trimmed.
        if src[start..end].starts_with("\r\n") {
            start += 2;
        } else if src[start..end].starts_with('\n') {
            start += 1;
        }
    }
    Some((start, end, basic))
}

/// The raw characters of a string not yet mapped.
type Raw<'s> = Peekable<CharIndices<'s>>;

/// The walk through the decoded string, beside the raw text.
struct Aligner<'d> {
    offsets: Vec<usize>,
    decoded: Chars<'d>,
    /// The next decoded character, which the raw text must produce next.
    pending: Option<char>,
}

impl Aligner<'_> {
    /// The raw text at `at` produced `c`: it must be the next decoded one.
    fn take(&mut self, c: char, at: usize) -> Option<()> {
        push(&mut self.offsets, c, at);
        if self.pending != Some(c) {
            return None;
        }
        self.pending = self.decoded.next();
        Some(())
    }

    /// The escape after the backslash at `at`.
    fn escape(&mut self, r: &mut Raw<'_>, at: usize) -> Option<()> {
        let (_, esc) = *r.peek()?;
        let produced = match esc {
            'b' => '\u{8}',
            't' => '\t',
            'n' => '\n',
            'f' => '\u{c}',
            'r' => '\r',
            'e' => '\u{1b}',
            '"' => '"',
            '\\' => '\\',
            'u' | 'U' | 'x' => {
                r.next();
                let c = unicode_escape(r, esc)?;
                return self.take(c, at);
            }
            c if c.is_whitespace() => {
                // Line-ending backslash: all whitespace and newlines up to
                // the next other character vanish.
                while r.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
                    r.next();
                }
                return Some(());
            }
            _ => return None,
        };
        r.next();
        self.take(produced, at)
    }
}

/// The character of `\uXXXX`, `\UXXXXXXXX` or `\xXX` (`esc` is u, U or x),
/// whose hex digits `r` is at.
fn unicode_escape(r: &mut Raw<'_>, esc: char) -> Option<char> {
    let digits = match esc {
        'u' => 4,
        'U' => 8,
        _ => 2,
    };
    let mut value = 0u32;
    for _ in 0..digits {
        let (_, h) = r.next()?;
        value = value * 16 + h.to_digit(16)?;
    }
    char::from_u32(value)
}

fn push(offsets: &mut Vec<usize>, c: char, at: usize) {
    offsets.extend(std::iter::repeat_n(at, c.len_utf8()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str, decoded: &str, want: &[(usize, &str)]) {
        let start = src.find(['"', '\'']).expect("a string in the test source");
        let map = StrMap::new(src, start..src.trim_end().len(), decoded);
        for &(i, rest) in want {
            assert!(src[map.file_offset(i)..].starts_with(rest), "byte {i}");
        }
    }

    #[test]
    fn multiline_basic_trims_first_newline() {
        check(
            "v = \"\"\"\nAB\n CD\"\"\"",
            "AB\n CD",
            &[(0, "AB"), (4, "CD")],
        );
    }

    #[test]
    fn crlf_is_mapped() {
        check(
            "v = '''\r\nAB\r\nCD'''",
            "AB\nCD",
            &[(0, "AB"), (2, "\nCD"), (3, "CD")],
        );
    }

    #[test]
    fn escapes_and_line_ending_backslash() {
        check(
            "v = \"\"\"A\\tB \\\n    C\\u0041D\"\"\"",
            "A\tB CAD",
            &[(1, "\\tB"), (2, "B"), (4, "C"), (5, "\\u0041"), (6, "D")],
        );
    }

    #[test]
    fn single_line_strings() {
        check("v = \"x y\"", "x y", &[(2, "y")]);
        check("v = 'x y'", "x y", &[(2, "y")]);
    }

    #[test]
    fn mismatch_falls_back_to_value_start() {
        let src = "v = \"abc\"";
        let map = StrMap::new(src, 4..9, "zzz");
        assert_eq!(map.file_offset(2), 4);
    }
}
