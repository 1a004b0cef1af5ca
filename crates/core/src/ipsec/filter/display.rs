//! The filter table as `ipsec -f display` shows it (z/OS IP System
//! Administrator's Commands, "ipsec -f display"): one row per filter in
//! table order, with its type, action, conditions and hit count.

use serde::{Deserialize, Serialize};

use super::packet::PacketDirection;
use super::{Action, Entry, FilterTable, Kind, RuleOrigin, SYSDEFAULTDENYRULE};
use crate::ipsec::policy::Conditions;
use crate::ipsec::sa::TrafficSelector;
use crate::ipsec::sad::SaId;

/// The kind of a filter, as `ipsec -f display` distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterType {
    /// A profile IPSECRULE (z/OS `Source: Stack Profile`).
    Default,
    /// A Policy Agent IpFilterRule (`Source: Stack Policy`).
    Policy,
    /// A dynamic filter of a negotiated SA (`Type: Dynamic`).
    Dynamic,
    /// SYSDEFAULTDENYRULE.
    SysDefault,
}

/// One row of the display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRow {
    /// The rule name (a dynamic filter shows its anchor's, as z/OS does).
    pub name: String,
    /// What kind of filter.
    pub filter_type: FilterType,
    /// `permit`, `deny`, `ipsec` (an IpDynVpnAction anchor) or `manual`
    /// (an IpManVpnAction anchor).
    pub action: String,
    /// The IpDynVpnAction or IpManVpnAction, for anchors and dynamic
    /// filters.
    pub vpn_action: Option<String>,
    /// The rule's conditions (rules only).
    pub conditions: Option<Conditions>,
    /// Dynamic filters: which direction this row filters.
    pub direction: Option<PacketDirection>,
    /// Dynamic filters: the SA's selectors for that direction.
    pub selector: Option<TrafficSelector>,
    /// Dynamic filters: the SA of that direction.
    pub sa: Option<SaId>,
    /// Whether matches are logged.
    pub log: bool,
    /// Packets this row decided.
    pub hits: u64,
    /// Log messages the rate limit held back.
    pub log_suppressed: u64,
}

impl FilterTable {
    /// The table as display rows, in table order: each dynamic filter as
    /// two rows (outbound, inbound), SYSDEFAULTDENYRULE last.
    pub fn snapshot(&self) -> Vec<FilterRow> {
        let mut rows = Vec::with_capacity(self.entries.len() * 2 + 1);
        for e in &self.entries {
            push_rows(&mut rows, e);
        }
        rows.push(FilterRow {
            name: SYSDEFAULTDENYRULE.to_owned(),
            filter_type: FilterType::SysDefault,
            action: "deny".into(),
            vpn_action: None,
            conditions: None,
            direction: None,
            selector: None,
            sa: None,
            log: self.options.log_implicit,
            hits: self.default_hits.iter().sum(),
            log_suppressed: self.default_bucket.suppressed,
        });
        rows
    }
}

fn push_rows(rows: &mut Vec<FilterRow>, e: &Entry) {
    let base = FilterRow {
        name: e.name.to_string(),
        filter_type: FilterType::Dynamic,
        action: "permit".into(),
        vpn_action: e.vpn.as_deref().map(str::to_owned),
        conditions: None,
        direction: None,
        selector: None,
        sa: None,
        log: e.log,
        hits: 0,
        log_suppressed: e.bucket.suppressed,
    };
    match &e.kind {
        Kind::Rule {
            origin,
            conditions,
            action,
        } => rows.push(FilterRow {
            filter_type: match origin {
                RuleOrigin::Profile => FilterType::Default,
                RuleOrigin::Policy => FilterType::Policy,
            },
            action: match action {
                Action::Permit => "permit",
                Action::Deny => "deny",
                Action::Ipsec(_) => "ipsec",
                Action::Manual { .. } => "manual",
            }
            .into(),
            conditions: Some(*conditions),
            hits: e.hits.iter().sum(),
            ..base
        }),
        Kind::Dynamic { filter, .. } => {
            rows.push(FilterRow {
                direction: Some(PacketDirection::Outbound),
                selector: Some(filter.outbound),
                sa: Some(filter.sas.outbound),
                hits: e.hits[1],
                ..base.clone()
            });
            rows.push(FilterRow {
                direction: Some(PacketDirection::Inbound),
                selector: Some(filter.inbound),
                sa: Some(filter.sas.inbound),
                hits: e.hits[0],
                ..base
            });
        }
    }
}
