//! What the PROFILE.TCPIP parsers share (`vipa.rs` for `VIPADYNAMIC`,
//! `profile.rs` for `IPCONFIG` and `IPSEC`): words with where they are,
//! keywords with z/OS's abbreviations, the split of a text into
//! statements, and a cursor over one statement's words.
//!
//! The rules they share (each parser's module documentation gives its
//! statements' syntax): keywords are case-insensitive and may be
//! abbreviated down to a shortest form ([`Keyword`]); `;` starts a comment
//! that runs to the end of the line; commas separate words like blanks do;
//! a statement runs to the next statement keyword, over as many lines as
//! it needs.
//!
//! Offsets are byte offsets into the parsed text.

use super::error::ErrorKind;
use std::net::Ipv4Addr;

/// An error at a byte offset of the parsed text.
pub(crate) type RawError = (usize, ErrorKind);

/// A keyword: its full spelling and the length of its shortest abbreviation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keyword {
    pub(crate) full: &'static str,
    pub(crate) min: usize,
}

impl Keyword {
    pub(crate) const fn new(full: &'static str, min: usize) -> Keyword {
        Keyword { full, min }
    }
    /// Whether `word` spells this keyword (case-insensitive, abbreviated no
    /// shorter than `min`).
    pub(crate) fn matches(&self, word: &str) -> bool {
        word.len() >= self.min
            && word.len() <= self.full.len()
            && self.full.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
    }
}

/// A word of the text and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tok<'a> {
    pub(crate) text: &'a str,
    pub(crate) at: usize,
}

/// Splits text into words: blanks and commas separate, `;` comments to the end
/// of the line.
pub(crate) fn tokenize(text: &str) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    let mut start: Option<usize> = None;
    let mut in_comment = false;
    for (i, c) in text.char_indices() {
        if in_comment {
            if c == '\n' {
                in_comment = false;
            }
            continue;
        }
        let separator = c.is_whitespace() || c == ',' || c == ';';
        if separator {
            if let Some(s) = start.take() {
                toks.push(Tok {
                    text: &text[s..i],
                    at: s,
                });
            }
            in_comment = c == ';';
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        toks.push(Tok {
            text: &text[s..],
            at: s,
        });
    }
    toks
}

/// The statements of `toks`, in order: each is its first word and the
/// words up to the next word that `starts_statement` says begins one.
pub(crate) fn statements<'t, 'a>(
    toks: &'t [Tok<'a>],
    starts_statement: fn(&str) -> bool,
) -> impl Iterator<Item = &'t [Tok<'a>]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= toks.len() {
            return None;
        }
        let mut j = i + 1;
        while j < toks.len() && !starts_statement(toks[j].text) {
            j += 1;
        }
        let group = &toks[i..j];
        i = j;
        Some(group)
    })
}

/// Dotted decimal as `std` parses it: four parts 0..=255, no leading zeros,
/// nothing else.
pub(crate) fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    text.parse().ok()
}

/// Whether `s` is one or more ASCII digits.
pub(crate) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number of at most ten digits (every `u32`; no parser takes
/// more).
pub(crate) fn parse_number(text: &str) -> Option<u64> {
    if text.len() > 10 || !is_digits(text) {
        return None;
    }
    text.parse().ok()
}

/// A decimal number in `lo..=hi`; otherwise an error that says what the
/// number is for and what is allowed.
pub(crate) fn number_in(
    t: Tok<'_>,
    what: &'static str,
    lo: u64,
    hi: u64,
    allowed: &'static str,
) -> Result<u64, RawError> {
    match parse_number(t.text) {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err((
            t.at,
            ErrorKind::OutOfRange {
                what,
                value: t.text.to_owned(),
                allowed,
            },
        )),
    }
}

/// A cursor over one statement's words (the statement keyword first).
/// Each parser adds the methods for its own values.
pub(crate) struct Cursor<'t, 'a> {
    pub(crate) toks: &'t [Tok<'a>],
    pub(crate) i: usize,
    pub(crate) statement: &'static str,
    pub(crate) syntax: &'static str,
}

impl<'t, 'a> Cursor<'t, 'a> {
    pub(crate) fn new(toks: &'t [Tok<'a>], statement: &'static str, syntax: &'static str) -> Self {
        Cursor {
            toks,
            i: 1,
            statement,
            syntax,
        }
    }
    pub(crate) fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.i).copied()
    }
    pub(crate) fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.peek();
        if t.is_some() {
            self.i += 1;
        }
        t
    }
    pub(crate) fn at_keyword(&self, k: Keyword) -> bool {
        self.peek().is_some_and(|t| k.matches(t.text))
    }
    pub(crate) fn eat(&mut self, k: Keyword) -> bool {
        let yes = self.at_keyword(k);
        if yes {
            self.i += 1;
        }
        yes
    }
    /// Where a missing word would have been: just after the last word.
    pub(crate) fn end(&self) -> usize {
        self.toks.last().map_or(0, |t| t.at + t.text.len())
    }
    pub(crate) fn missing(&self, what: &'static str) -> RawError {
        (
            self.end(),
            ErrorKind::Missing {
                statement: self.statement,
                missing: what,
                syntax: self.syntax,
            },
        )
    }
    /// The error for a word that is not a keyword of this place.
    pub(crate) fn unknown(&self, tok: Tok<'_>, allowed: &str) -> RawError {
        (
            tok.at,
            ErrorKind::UnknownKeyword {
                statement: self.statement,
                word: tok.text.to_owned(),
                allowed: allowed.to_owned(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_comments_commas_and_offsets() {
        let toks = tokenize("A b,c ; x y\n D;z\nE");
        let words: Vec<(&str, usize)> = toks.iter().map(|t| (t.text, t.at)).collect();
        assert_eq!(words, [("A", 0), ("b", 2), ("c", 4), ("D", 13), ("E", 17)]);
    }

    #[test]
    fn statements_split_at_statement_words() {
        let toks = tokenize("S1 a b S2 S1 c");
        let groups: Vec<Vec<&str>> = statements(&toks, |w| w.starts_with('S'))
            .map(|g| g.iter().map(|t| t.text).collect())
            .collect();
        assert_eq!(groups, [vec!["S1", "a", "b"], vec!["S2"], vec!["S1", "c"]]);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("4294967295"), Some(4_294_967_295));
        assert_eq!(parse_number("12345678901"), None);
        assert_eq!(parse_number("+1"), None);
        assert_eq!(parse_number(""), None);
    }
}
