//! Mapping positions inside a decoded TOML string value back to the file.
//!
//! `toml::Spanned` gives the byte range of the whole value token, quotes
//! included. The decoded string differs from the raw text: the delimiters,
//! the newline that `"""` and `'''` trim, escapes in basic strings, line-ending
//! backslashes, and `\r\n` normalised to `\n`. [`StrMap`] walks raw and decoded
//! text side by side and records, for every decoded byte, the file offset it
//! came from.

use std::ops::Range;

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
    let body = &src[start..end];
    let mut offsets = Vec::with_capacity(decoded.len() + 1);
    let mut r = body.char_indices().peekable();
    let mut d = decoded.chars();
    let mut pending = d.next();
    while let Some((ri, rc)) = r.next() {
        let at = start + ri;
        if basic && rc == '\\' {
            let (_, esc) = *r.peek()?;
            let produced = match esc {
                'b' => Some('\u{8}'),
                't' => Some('\t'),
                'n' => Some('\n'),
                'f' => Some('\u{c}'),
                'r' => Some('\r'),
                'e' => Some('\u{1b}'),
                '"' => Some('"'),
                '\\' => Some('\\'),
                'u' | 'U' | 'x' => {
                    let digits = match esc {
                        'u' => 4,
                        'U' => 8,
                        _ => 2,
                    };
                    r.next();
                    let mut value = 0u32;
                    for _ in 0..digits {
                        let (_, h) = r.next()?;
                        value = value * 16 + h.to_digit(16)?;
                    }
                    let c = char::from_u32(value)?;
                    push(&mut offsets, c, at);
                    if pending != Some(c) {
                        return None;
                    }
                    pending = d.next();
                    continue;
                }
                c if c.is_whitespace() => None,
                _ => return None,
            };
            match produced {
                Some(c) => {
                    r.next();
                    push(&mut offsets, c, at);
                    if pending != Some(c) {
                        return None;
                    }
                    pending = d.next();
                }
                None => {
                    // Line-ending backslash: all whitespace and newlines up to
                    // the next other character vanish.
                    while r.peek().is_some_and(|&(_, c)| c.is_whitespace()) {
                        r.next();
                    }
                }
            }
            continue;
        }
        if rc == '\r' && pending == Some('\n') && r.peek().is_some_and(|&(_, c)| c == '\n') {
            continue; // \r\n decoded as \n: map the \n
        }
        if pending != Some(rc) {
            return None;
        }
        push(&mut offsets, rc, at);
        pending = d.next();
    }
    if pending.is_some() {
        return None;
    }
    offsets.push(end);
    Some(StrMap { offsets })
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
