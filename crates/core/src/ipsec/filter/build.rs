//! Building the filter table's entries: the rules of a rule set in order,
//! with the dynamic filters of SA pairs in front of their anchors, kept
//! across a policy change where their anchor survives (z/OS IP
//! Configuration Guide, "IP filter policy"; patent Fig. 7 block 122).

use super::*;

pub(super) fn is_dynamic_of(e: &Entry, anchor: &RuleName) -> bool {
    matches!(e.kind, Kind::Dynamic { .. }) && Arc::ptr_eq(&e.name, anchor)
}

/// Whether `anchor` is an IpManVpnAction rule with `Active No`.
fn inactive_anchor(anchor: &Entry) -> bool {
    matches!(
        anchor.kind,
        Kind::Rule {
            action: Action::Manual { active: false },
            ..
        }
    )
}

/// The table entry of a dynamic filter anchored at `anchor`.
pub(super) fn dynamic_entry(anchor: &Entry, filter: DynamicFilter, routing: Routing) -> Entry {
    Entry {
        name: anchor.name.clone(),
        vpn: anchor.vpn.clone(),
        kind: Kind::Dynamic {
            filter,
            routing,
            inactive: inactive_anchor(anchor),
        },
        log: anchor.log,
        hits: [0; 2],
        bucket: LogBucket::default(),
    }
}

/// The entries for `rules`, with the dynamic filters of `old` kept in
/// front of their anchors when the anchor is still an IPsec rule; the SA
/// pairs of the others are returned.
pub(super) fn build(
    rules: &RuleSet,
    origin: RuleOrigin,
    old: Vec<Entry>,
) -> (Vec<Entry>, Vec<SaPair>) {
    let mut dynamic: Vec<Entry> = old
        .into_iter()
        .filter(|e| matches!(e.kind, Kind::Dynamic { .. }))
        .collect();
    let mut entries = Vec::with_capacity(rules.rules.len() + dynamic.len());
    for rule in &rules.rules {
        let (action, vpn) = match &rule.action {
            FilterAction::Permit => (Action::Permit, None),
            FilterAction::Deny => (Action::Deny, None),
            FilterAction::Ipsec(a) => {
                let name = Arc::from(a.name.as_str());
                (Action::Ipsec(Arc::new(a.clone())), Some(name))
            }
            FilterAction::Manual(m) => {
                let name = Arc::from(m.name.as_str());
                (Action::Manual { active: m.active }, Some(name))
            }
        };
        let anchor = Entry {
            name: Arc::from(rule.name.as_str()),
            vpn,
            kind: Kind::Rule {
                origin,
                conditions: rule.conditions,
                action,
            },
            log: rule.log,
            hits: [0; 2],
            bucket: LogBucket::default(),
        };
        if rule.action.is_ipsec() {
            let (mine, rest): (Vec<Entry>, Vec<Entry>) =
                dynamic.into_iter().partition(|e| *e.name == *anchor.name);
            dynamic = rest;
            entries.extend(
                mine.into_iter()
                    .map(|e| rebase(e, &anchor, rule.conditions.routing)),
            );
        }
        entries.push(anchor);
    }
    let dropped = dynamic
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Dynamic { filter, .. } => Some(filter.sas),
            Kind::Rule { .. } => None,
        })
        .collect();
    (entries, dropped)
}

/// A kept dynamic filter, pointed at its new anchor entry; counters stay.
fn rebase(mut e: Entry, anchor: &Entry, routing: Routing) -> Entry {
    e.name = anchor.name.clone();
    e.vpn = anchor.vpn.clone();
    e.log = anchor.log;
    let blocked = inactive_anchor(anchor);
    if let Kind::Dynamic {
        routing: r,
        inactive,
        ..
    } = &mut e.kind
    {
        *r = routing;
        *inactive = blocked;
    }
    e
}
