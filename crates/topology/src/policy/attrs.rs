//! The parse context and a statement's attributes: which it takes, and
//! their values.

use super::*;

/// The parse context: file lines of offsets, and the errors.
pub(super) struct Cx<'e> {
    pub(super) line_of: &'e dyn Fn(usize) -> usize,
    pub(super) errors: &'e mut Vec<RawError>,
    /// Where the statement being parsed starts: where a missing attribute
    /// of an empty block is reported.
    pub(super) here: usize,
}

/// One attribute a statement takes.
pub(super) struct Spec {
    pub(super) name: &'static str,
    /// May be given more than once.
    pub(super) repeat: bool,
    /// Takes an inline `{ ... }` block (and no other value than a name).
    pub(super) block: bool,
}

pub(super) const fn attr(name: &'static str) -> Spec {
    Spec {
        name,
        repeat: false,
        block: false,
    }
}
pub(super) const fn repeated(name: &'static str) -> Spec {
    Spec {
        name,
        repeat: true,
        block: false,
    }
}
pub(super) const fn inline(name: &'static str, repeat: bool) -> Spec {
    Spec {
        name,
        repeat,
        block: true,
    }
}

/// An attribute line, with its canonical name.
#[derive(Clone, Copy)]
pub(super) struct Attr<'n, 'a> {
    pub(super) name: &'static str,
    pub(super) node: &'n Node<'a>,
}

impl<'a> Attr<'_, 'a> {
    pub(super) fn at(&self) -> usize {
        self.node.keyword.at
    }
    /// The value, which must be one word.
    pub(super) fn one(&self, syntax: &'static str) -> Result<Tok<'a>, RawError> {
        let v = self.first(syntax)?;
        self.no_more(1, syntax)?;
        Ok(v)
    }
    /// The first word of the value.
    pub(super) fn first(&self, syntax: &'static str) -> Result<Tok<'a>, RawError> {
        self.node.args.first().copied().ok_or((
            self.node.end(),
            ErrorKind::MissingValue {
                attribute: self.name,
                syntax,
            },
        ))
    }
    /// Word `i` of the value, which must be there.
    pub(super) fn arg(&self, i: usize, syntax: &'static str) -> Result<Tok<'a>, RawError> {
        self.node.args.get(i).copied().ok_or((
            self.node.end(),
            ErrorKind::MissingValue {
                attribute: self.name,
                syntax,
            },
        ))
    }
    /// Errors if the value has more than `n` words.
    pub(super) fn no_more(&self, n: usize, syntax: &'static str) -> Result<(), RawError> {
        match self.node.args.get(n) {
            Some(w) => Err((
                w.at,
                ErrorKind::ExtraWord {
                    attribute: self.name,
                    word: w.text.to_owned(),
                    syntax,
                },
            )),
            None => Ok(()),
        }
    }
    /// A one-word value from a list of choices (case-insensitive).
    pub(super) fn choice<T: Copy>(
        &self,
        choices: &[(&str, T)],
        syntax: &'static str,
        allowed: &'static str,
    ) -> Result<T, RawError> {
        let v = self.one(syntax)?;
        pick(v, self.name, choices, allowed)
    }
}

pub(super) fn pick<T: Copy>(
    v: Tok<'_>,
    what: &'static str,
    choices: &[(&str, T)],
    allowed: &'static str,
) -> Result<T, RawError> {
    choices
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(v.text))
        .map(|&(_, t)| t)
        .ok_or((
            v.at,
            ErrorKind::UnknownChoice {
                what,
                value: v.text.to_owned(),
                allowed,
            },
        ))
}

pub(super) fn not_implemented(
    v: Tok<'_>,
    what: &'static str,
    implemented: &'static str,
) -> RawError {
    (
        v.at,
        ErrorKind::NotImplemented {
            what,
            value: v.text.to_owned(),
            implemented,
        },
    )
}

pub(super) fn is_one_of(v: Tok<'_>, words: &[&str]) -> bool {
    words.iter().any(|w| w.eq_ignore_ascii_case(v.text))
}

/// What a statement takes: its attributes, IBM's attributes that plexnet
/// refuses by name, and the list of the ones it takes, for messages.
pub(super) struct Grammar {
    pub(super) statement: &'static str,
    pub(super) specs: &'static [Spec],
    pub(super) unsupported: &'static [&'static str],
    pub(super) allowed: &'static str,
}

/// A one-word value from a table of IBM's keywords (case-insensitive),
/// refusing by name those IBM has and plexnet does not implement.
pub(super) struct Choices<T: 'static> {
    pub(super) syntax: &'static str,
    pub(super) table: &'static [(&'static str, T)],
    pub(super) allowed: &'static str,
    /// IBM's values that plexnet does not implement.
    pub(super) not_here: &'static [&'static str],
    /// What is implemented, for the message about one of `not_here`.
    pub(super) implemented: &'static str,
}

impl Attr<'_, '_> {
    /// The value, one of `choices`.
    pub(super) fn choose<T: Copy>(&self, choices: &Choices<T>) -> Result<T, RawError> {
        let v = self.one(choices.syntax)?;
        if is_one_of(v, choices.not_here) {
            return Err(not_implemented(v, self.name, choices.implemented));
        }
        pick(v, self.name, choices.table, choices.allowed)
    }
}

impl Cx<'_> {
    /// The attributes of a statement written with `grammar`, and whether
    /// they were all acceptable.
    pub(super) fn attrs_of<'n, 'a>(
        &mut self,
        grammar: &Grammar,
        body: &'n [Node<'a>],
    ) -> (Vec<Attr<'n, 'a>>, bool) {
        let g = grammar;
        self.attrs(g.statement, body, g.specs, g.unsupported, g.allowed)
    }
}
