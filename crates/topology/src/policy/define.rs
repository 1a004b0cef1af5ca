//! Reading the statements into their tables: names, duplicates, the
//! attributes each takes, and the order the two policies give.

use super::*;

impl Cx<'_> {
    pub(super) fn push(&mut self, e: RawError) {
        self.errors.push(e);
    }

    pub(super) fn line(&self, at: usize) -> usize {
        (self.line_of)(at)
    }

    /// Checks a statement name: 1 to 32 characters, no leading `-`, no `,`.
    pub(super) fn statement_name(&mut self, t: Tok<'_>) -> bool {
        let ok = (1..=32).contains(&t.text.chars().count())
            && !t.text.starts_with('-')
            && !t.text.contains(',');
        if !ok {
            self.push((
                t.at,
                ErrorKind::PolicyLayout {
                    problem: format!("`{}` is not a statement name", t.text),
                    allowed: "1 to 32 characters, not starting with '-', without ','",
                },
            ));
        }
        ok
    }

    /// A top-level statement: checks its header and parses its body into
    /// `defs`.
    pub(super) fn define<'a>(
        &mut self,
        node: &Node<'a>,
        defs: &mut Defs<'a>,
        policy_at: &mut [Option<usize>; 2],
    ) {
        let word = node.keyword;
        let Some(kind) = Kind::from_word(word.text) else {
            self.push(unknown_statement(word));
            return;
        };
        let Some(body) = &node.block else {
            self.push((
                word.at,
                ErrorKind::PolicyLayout {
                    problem: format!("`{}` has no `{{ ... }}` block", word.text),
                    allowed: pagent::LAYOUT,
                },
            ));
            return;
        };
        if kind.is_policy() {
            self.define_policy(kind, node, body, defs, policy_at);
            return;
        }
        let Some(name) = node.args.first().copied() else {
            self.push((
                node.end(),
                ErrorKind::PolicyLayout {
                    problem: format!("{} has no name", kind.name()),
                    allowed: "a name after the statement keyword (only statements written inline inside another may leave it out)",
                },
            ));
            return;
        };
        if let Some(extra) = node.args.get(1) {
            self.push((
                extra.at,
                ErrorKind::PolicyLayout {
                    problem: format!(
                        "`{}` after the name of {} {}",
                        extra.text,
                        kind.name(),
                        name.text
                    ),
                    allowed: "one name, then the block",
                },
            ));
            return;
        }
        if !self.statement_name(name) {
            return;
        }
        let first = defs.at(kind, name.text);
        if let Some(first) = first {
            let first_line = self.line(first);
            self.push((
                name.at,
                ErrorKind::DuplicateStatement {
                    statement: kind.name(),
                    name: name.text.to_owned(),
                    first_line,
                },
            ));
            return;
        }
        self.here = word.at;
        self.store(kind, name, body, defs);
    }

    /// IpFilterPolicy or KeyExchangePolicy: no name, one of each per file.
    pub(super) fn define_policy<'a>(
        &mut self,
        kind: Kind,
        node: &Node<'a>,
        body: &[Node<'a>],
        defs: &mut Defs<'a>,
        policy_at: &mut [Option<usize>; 2],
    ) {
        let word = node.keyword;
        if let Some(extra) = node.args.first() {
            self.push((
                extra.at,
                ErrorKind::PolicyLayout {
                    problem: format!("{} takes no name, found `{}`", kind.name(), extra.text),
                    allowed: "the statement alone on its line, then its block",
                },
            ));
        }
        let slot = usize::from(kind == Kind::KxPolicy);
        if let Some(first) = policy_at[slot] {
            let first_line = self.line(first);
            self.push((
                word.at,
                ErrorKind::DuplicateStatement {
                    statement: kind.name(),
                    name: kind.name().to_owned(),
                    first_line,
                },
            ));
            return;
        }
        policy_at[slot] = Some(word.at);
        let refs = self.policy_body(kind, body);
        if kind == Kind::FilterPolicy {
            defs.filter_policy = Some(refs);
        } else {
            defs.kx_policy = Some(refs);
        }
    }

    /// Parses the body of the statement `name` of `kind` into its table.
    pub(super) fn store<'a>(
        &mut self,
        kind: Kind,
        name: Tok<'_>,
        body: &[Node<'a>],
        defs: &mut Defs<'a>,
    ) {
        let n = name.text;
        match kind {
            Kind::FilterRule => defs
                .rules
                .entries
                .push(entry(name, self.filter_rule(n, body))),
            Kind::Service => defs.services.entries.push(entry(name, self.service(body))),
            Kind::GenericAction => {
                let v = self.generic_action(n, body);
                defs.generics.entries.push(entry(name, v));
            }
            Kind::DynVpnAction => {
                let v = self.dyn_vpn_action(n, body);
                defs.dynvpns.entries.push(entry(name, v));
            }
            Kind::ManVpnAction => {
                let v = self.man_vpn_action(n, body);
                defs.manvpns.entries.push(entry(name, v));
            }
            Kind::DataOffer => defs.offers.entries.push(entry(name, self.data_offer(body))),
            Kind::KxRule => defs
                .kx_rules
                .entries
                .push(entry(name, self.kx_rule(n, body))),
            Kind::KxAction => defs
                .kx_actions
                .entries
                .push(entry(name, self.kx_action(n, body))),
            Kind::KxOffer => {
                let v = self.kx_offer(Some(n), body);
                defs.kx_offers.entries.push(entry(name, v));
            }
            Kind::LocalEndpoint => {
                let v = self.endpoint(kind, Some(n), body);
                defs.locals.entries.push(entry(name, v));
            }
            Kind::RemoteEndpoint => {
                let v = self.endpoint(kind, Some(n), body);
                defs.remotes.entries.push(entry(name, v));
            }
            Kind::FilterPolicy | Kind::KxPolicy => {}
        }
    }

    /// Sorts a block's lines into attributes by `specs`; unknown, refused
    /// and repeated attributes and misplaced blocks are reported and left
    /// out. Also says whether the block was free of such errors.
    pub(super) fn attrs<'n, 'a>(
        &mut self,
        statement: &'static str,
        body: &'n [Node<'a>],
        specs: &[Spec],
        unsupported: &[&str],
        allowed: &'static str,
    ) -> (Vec<Attr<'n, 'a>>, bool) {
        let before = self.errors.len();
        let mut out: Vec<Attr<'n, 'a>> = Vec::new();
        for node in body {
            let w = node.keyword;
            let Some(spec) = specs.iter().find(|s| s.name.eq_ignore_ascii_case(w.text)) else {
                let refused = unsupported.iter().any(|s| s.eq_ignore_ascii_case(w.text));
                self.push((
                    w.at,
                    if refused {
                        ErrorKind::PolicyUnsupported {
                            word: format!("{statement} {}", w.text),
                            allowed,
                        }
                    } else {
                        ErrorKind::UnknownKeyword {
                            statement,
                            word: w.text.to_owned(),
                            allowed: allowed.to_owned(),
                        }
                    },
                ));
                continue;
            };
            if spec.block && node.block.is_none() {
                self.push((
                    w.at,
                    ErrorKind::PolicyLayout {
                        problem: format!("{} here needs a `{{ ... }}` block", spec.name),
                        allowed: "an inline block, or the ...Ref attribute that names a statement defined elsewhere",
                    },
                ));
                continue;
            }
            if !spec.block && node.block.is_some() {
                self.push((
                    w.at,
                    ErrorKind::PolicyLayout {
                        problem: format!("{} takes no block", spec.name),
                        allowed: "the attribute and its values on one line",
                    },
                ));
                continue;
            }
            if !spec.repeat {
                if let Some(first) = out.iter().find(|a| a.name == spec.name) {
                    let first_line = self.line(first.at());
                    self.push((
                        w.at,
                        ErrorKind::DuplicateAttribute {
                            statement,
                            attribute: spec.name,
                            first_line,
                        },
                    ));
                    continue;
                }
            }
            out.push(Attr {
                name: spec.name,
                node,
            });
        }
        let clean = self.errors.len() == before;
        (out, clean)
    }

    /// Runs `f` and records its error; `None` if it failed.
    pub(super) fn ok<T>(&mut self, r: Result<T, RawError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    pub(super) fn missing(
        &mut self,
        at: usize,
        statement: &'static str,
        name: &str,
        attribute: &'static str,
        syntax: &'static str,
    ) {
        self.push((
            at,
            ErrorKind::MissingAttribute {
                statement,
                name: name.to_owned(),
                attribute,
                syntax,
            },
        ));
    }

    /// Parses an inline statement that starts at `at`.
    pub(super) fn inline<T>(&mut self, at: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        let outer = std::mem::replace(&mut self.here, at);
        let v = f(self);
        self.here = outer;
        v
    }

    /// An inline statement's optional name.
    pub(super) fn inline_name(&mut self, node: &Node<'_>) -> Option<String> {
        let name = node.args.first().copied()?;
        if let Some(extra) = node.args.get(1) {
            self.push((
                extra.at,
                ErrorKind::PolicyLayout {
                    problem: format!(
                        "`{}` after the name of an inline {}",
                        extra.text, node.keyword.text
                    ),
                    allowed: "at most a name, then the block",
                },
            ));
        }
        self.statement_name(name).then(|| name.text.to_owned())
    }

    /// IpFilterPolicy / KeyExchangePolicy: the references, in order.
    pub(super) fn policy_body<'a>(&mut self, kind: Kind, body: &[Node<'a>]) -> Vec<Tok<'a>> {
        let (statement, reference, allowed, unsupported): (_, _, _, &[&str]) = match kind {
            Kind::FilterPolicy => (
                "IpFilterPolicy",
                "IpFilterRuleRef",
                "IpFilterRuleRef name, one per line, in filter-table order",
                &[
                    "FilterLogging",
                    "AllowOnDemand",
                    "PreDecap",
                    "IpFilterGroupRef",
                    "IpFilterRule",
                    "FIPS140",
                    "DvipsecCheckpoint",
                    "ImplicitLogging",
                    "FilterLogLimit",
                    "AllowOnDemandLocalAddress",
                ],
            ),
            _ => (
                "KeyExchangePolicy",
                "KeyExchangeRuleRef",
                "KeyExchangeRuleRef name, one per line, in search order",
                &[
                    "AcceptEncryptedPreshares",
                    "AllowNat",
                    "KeyExchangeGroupRef",
                    "KeyExchangeRule",
                    "FIPS140",
                ],
            ),
        };
        let specs = [repeated(reference)];
        let (attrs, _) = self.attrs(statement, body, &specs, unsupported, allowed);
        let mut out = Vec::new();
        for a in attrs {
            if let Some(t) = self.ok(a.one("the name of a statement")) {
                out.push(t);
            }
        }
        out
    }

    // ---- following references ----

    /// Finds `t` among the statements of `kind`, reporting an unknown name
    /// or one of another kind. `None` also when the statement itself had
    /// errors (already reported).
    pub(super) fn find<'t, T>(
        &mut self,
        defs: &Defs<'_>,
        table: &'t Table<T>,
        kind: Kind,
        attribute: &'static str,
        t: Tok<'_>,
    ) -> Option<&'t T> {
        if let Some(i) = table.position(t.text) {
            return table.entries[i].2.as_ref();
        }
        let kind_name = kind.name();
        if let Some(other) = KINDS
            .into_iter()
            .find(|&k| k != kind && defs.at(k, t.text).is_some())
        {
            self.push((
                t.at,
                ErrorKind::WrongKindReference {
                    attribute,
                    name: t.text.to_owned(),
                    kind: kind_name,
                    actual: other.name(),
                },
            ));
            return None;
        }
        let names = table.names();
        let allowed = if names.is_empty() {
            format!("the name of a {kind_name} statement (this policy defines none)")
        } else {
            format!("the name of a {kind_name} statement: {}", names.join(", "))
        };
        self.push((
            t.at,
            ErrorKind::UnknownReference {
                attribute,
                name: t.text.to_owned(),
                kind: kind_name,
                allowed,
            },
        ));
        None
    }

    /// The rules `policy` (IpFilterPolicy or KeyExchangePolicy) puts in
    /// force, as indices into `table`, in its order; without the policy
    /// every rule, in file order. An unknown or repeated reference is
    /// reported and left out.
    pub(super) fn policy_order<T>(
        &mut self,
        defs: &Defs<'_>,
        policy: Kind,
        table: &Table<T>,
    ) -> Vec<usize> {
        let (refs, rule, reference, once) = if policy == Kind::FilterPolicy {
            let once = "IpFilterRuleRef of one rule";
            (
                &defs.filter_policy,
                Kind::FilterRule,
                "IpFilterRuleRef",
                once,
            )
        } else {
            let once = "KeyExchangeRuleRef of one rule";
            (&defs.kx_policy, Kind::KxRule, "KeyExchangeRuleRef", once)
        };
        let Some(refs) = refs else {
            return (0..table.entries.len()).collect();
        };
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for t in refs {
            let Some(i) = table.position(t.text) else {
                self.find(defs, table, rule, reference, *t);
                continue;
            };
            if let Some(&(_, first)) = seen.iter().find(|(j, _)| *j == i) {
                let first_line = self.line(first);
                self.push((
                    t.at,
                    ErrorKind::DuplicateAttribute {
                        statement: policy.name(),
                        attribute: once,
                        first_line,
                    },
                ));
                continue;
            }
            seen.push((i, t.at));
        }
        seen.into_iter().map(|(i, _)| i).collect()
    }
}
