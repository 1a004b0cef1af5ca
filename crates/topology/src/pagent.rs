//! The layout of Policy Agent configuration files, before any statement is
//! understood: statements with an optional name and a `{ ... }` block,
//! attributes one per line, blocks nested inline, `#` comments.
//!
//! IBM's rules (z/OS Communications Server: IP Configuration Reference,
//! "General syntax rules for Policy Agent",
//! <https://www.ibm.com/docs/en/zos/3.1.0?topic=files-general-syntax-rules-policy-agent>,
//! and every statement's "Put Braces and Parameters on Separate Lines"):
//!
//! ```text
//! # a comment
//! Statement [name]
//! {
//!   Attribute value...          # one attribute and its values per line
//!   InlineStatement [name]      # a nested block, as IpService in IpFilterRule
//!   {
//!     Attribute value...
//!   }
//! }
//! ```
//!
//! * `#` starts a comment to the end of the line where it begins a word;
//!   a `#` inside a word (a shared key) is kept.
//! * `{` may also end the line of its statement (`IpService {`); nothing may
//!   follow it on its line, and `}` stands alone on its line.
//! * IBM ignores text after an attribute's values; plexnet does not: every
//!   statement parser refuses words it does not expect, so a typing mistake
//!   is never silently dropped.
//!
//! This module only builds the tree; [`super::policy`] gives it meaning.
//! Offsets are byte offsets into the parsed text.

use super::error::ErrorKind;
use super::statement::{RawError, Tok};

/// One line of a file: an attribute, or the header of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node<'a> {
    /// The first word: a statement or attribute keyword.
    pub(crate) keyword: Tok<'a>,
    /// The words after it on its line.
    pub(crate) args: Vec<Tok<'a>>,
    /// The block that follows, for a statement.
    pub(crate) block: Option<Vec<Node<'a>>>,
}

impl Node<'_> {
    /// Just after the last word of the line: where a missing value would
    /// have been.
    pub(crate) fn end(&self) -> usize {
        let last = self.args.last().unwrap_or(&self.keyword);
        last.at + last.text.len()
    }
}

/// The layout rules, as every layout error states them.
pub(crate) const LAYOUT: &str = "Statement [name] on one line, `{` at its end or on the next line, one attribute per line, `}` alone on its line";

/// Splits one line into words: blanks separate, `{` and `}` are words of
/// their own, a `#` that begins a word starts a comment.
fn words(line: &str, base: usize) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            flush(&mut out, line, base, &mut start, i);
        } else if c == '{' || c == '}' {
            flush(&mut out, line, base, &mut start, i);
            out.push(Tok {
                text: &line[i..i + 1],
                at: base + i,
            });
        } else if c == '#' && start.is_none() {
            return out;
        } else if start.is_none() {
            start = Some(i);
        }
    }
    flush(&mut out, line, base, &mut start, line.len());
    out
}

/// Ends the word that began at `start`, if one did, at `end`.
fn flush<'a>(
    out: &mut Vec<Tok<'a>>,
    line: &'a str,
    base: usize,
    start: &mut Option<usize>,
    end: usize,
) {
    if let Some(s) = start.take() {
        out.push(Tok {
            text: &line[s..end],
            at: base + s,
        });
    }
}

/// The non-empty lines of `text`, as words.
fn lines(text: &str) -> Vec<Vec<Tok<'_>>> {
    let mut out = Vec::new();
    let mut base = 0;
    for line in text.split('\n') {
        let w = words(line, base);
        if !w.is_empty() {
            out.push(w);
        }
        base += line.len() + 1;
    }
    out
}

/// Parses a whole file into its top-level nodes. Layout errors are
/// reported and the parse goes on, so that one stray brace does not hide
/// the rest of the file.
pub(crate) fn parse(text: &str) -> (Vec<Node<'_>>, Vec<RawError>) {
    let lines = lines(text);
    let mut errors = Vec::new();
    let mut i = 0;
    let mut top = Vec::new();
    while i < lines.len() {
        let (mut nodes, closed_at) = block(&lines, &mut i, &mut errors);
        top.append(&mut nodes);
        if let Some(at) = closed_at {
            errors.push(layout(at, "`}` without a block to close".to_owned()));
        }
    }
    (top, errors)
}

fn layout(at: usize, problem: String) -> RawError {
    (
        at,
        ErrorKind::PolicyLayout {
            problem,
            allowed: LAYOUT,
        },
    )
}

/// Reads nodes up to the `}` that closes the current block (returning its
/// offset) or the end of the file (returning `None`).
fn block<'a>(
    lines: &[Vec<Tok<'a>>],
    i: &mut usize,
    errors: &mut Vec<RawError>,
) -> (Vec<Node<'a>>, Option<usize>) {
    let mut nodes = Vec::new();
    while *i < lines.len() {
        let line = &lines[*i];
        *i += 1;
        let first = line[0];
        if first.text == "}" {
            if let Some(extra) = line.get(1) {
                errors.push(layout(
                    extra.at,
                    format!("`{}` after `}}` on its line", extra.text),
                ));
            }
            return (nodes, Some(first.at));
        }
        if first.text == "{" {
            errors.push(layout(
                first.at,
                "`{` without a statement before it".to_owned(),
            ));
            // Read the stray block anyway, so that its `}` closes it.
            let (_, closed) = block(lines, i, errors);
            if closed.is_none() {
                return (nodes, None);
            }
            continue;
        }
        // A header or an attribute: braces may only end the line.
        let mut args: Vec<Tok<'a>> = line[1..].to_vec();
        let mut opens = false;
        if args.last().is_some_and(|t| t.text == "{") {
            args.pop();
            opens = true;
        } else if lines.get(*i).is_some_and(|next| next[0].text == "{") {
            let next = &lines[*i];
            *i += 1;
            opens = true;
            if let Some(extra) = next.get(1) {
                errors.push(layout(
                    extra.at,
                    format!("`{}` after `{{` on its line", extra.text),
                ));
            }
        }
        if let Some(b) = args.iter().find(|t| t.text == "{" || t.text == "}") {
            errors.push(layout(
                b.at,
                format!("`{}` in the middle of a line", b.text),
            ));
            args.retain(|t| t.text != "{" && t.text != "}");
        }
        let mut node = Node {
            keyword: first,
            args,
            block: None,
        };
        if opens {
            let (children, closed) = block(lines, i, errors);
            node.block = Some(children);
            if closed.is_none() {
                errors.push(layout(
                    first.at,
                    format!("the block of `{}` is not closed", first.text),
                ));
                nodes.push(node);
                return (nodes, None);
            }
        }
        nodes.push(node);
    }
    (nodes, None)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::the_error;
    use super::*;

    fn texts<'a>(toks: &[Tok<'a>]) -> Vec<&'a str> {
        toks.iter().map(|t| t.text).collect()
    }

    fn ok(text: &str) -> Vec<Node<'_>> {
        let (n, e) = parse(text);
        assert!(e.is_empty(), "unexpected errors {e:?}");
        n
    }

    fn err(text: &str) -> (String, String) {
        let (word, kind) = the_error(text, parse(text).1);
        (word, kind.to_string())
    }

    #[test]
    fn words_comments_and_braces() {
        let w = words("  IpService{ # comment } x", 10);
        assert_eq!(texts(&w), ["IpService", "{"]);
        assert_eq!(w[0].at, 12);
        assert_eq!(w[1].at, 21);
        let w = words("SharedKey Ascii ab#cd # the key", 0);
        assert_eq!(texts(&w), ["SharedKey", "Ascii", "ab#cd"]);
        assert!(words("# only a comment", 0).is_empty());
    }

    #[test]
    fn statements_attributes_and_inline_blocks() {
        let text = "# policy\nIpFilterRule web\n{\n  IpSourceAddr 198.18.0.100\n  IpService\n  {\n    Protocol tcp\n  }\n  IpGenericFilterActionRef permit\n}\nIpService svc {\n}\n";
        let n = ok(text);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].keyword.text, "IpFilterRule");
        assert_eq!(texts(&n[0].args), ["web"]);
        let body = n[0].block.as_ref().expect("a block");
        assert_eq!(body.len(), 3);
        assert_eq!(texts(&body[0].args), ["198.18.0.100"]);
        assert_eq!(
            body[0].keyword.at,
            text.find("IpSourceAddr").expect("there")
        );
        let svc = body[1].block.as_ref().expect("inline block");
        assert_eq!(svc[0].keyword.text, "Protocol");
        assert!(body[2].block.is_none());
        assert_eq!(texts(&n[1].args), ["svc"]);
        assert_eq!(n[1].block.as_deref(), Some(&[][..]));
    }

    #[test]
    fn unclosed_block() {
        let (w, m) = err("IpFilterRule web\n{\n  IpSourceAddr 198.18.0.100\n");
        assert_eq!(w, "IpFilterRule");
        assert_eq!(m, "the block of `IpFilterRule` is not closed; allowed: Statement [name] on one line, `{` at its end or on the next line, one attribute per line, `}` alone on its line");
    }

    #[test]
    fn stray_braces() {
        let (w, m) = err("IpService a\n{\n}\n}\n");
        assert_eq!(w, "}");
        assert!(m.starts_with("`}` without a block to close"), "{m}");
        let (w, m) = err("{\n}\n");
        assert_eq!(w, "{");
        assert!(m.starts_with("`{` without a statement before it"), "{m}");
        let (w, m) = err("IpService a\n{ Protocol tcp\n}\n");
        assert_eq!(w, "Protocol");
        assert!(m.starts_with("`Protocol` after `{` on its line"), "{m}");
        let (w, m) = err("IpService a\n{\n  Protocol tcp }\n}\n");
        assert_eq!(w, "}");
        assert!(m.starts_with("`}` in the middle of a line"), "{m}");
        let (w, _) = err("IpService a\n{\n} x\n");
        assert_eq!(w, "x");
    }
}
