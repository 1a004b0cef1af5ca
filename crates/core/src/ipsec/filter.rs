//! The IP filter table of a stack with `IPCONFIG IPSECURITY`: every packet,
//! inbound and outbound, is filtered; the first matching filter decides;
//! what no filter permits is denied by SYSDEFAULTDENYRULE at the end (IP
//! Configuration Guide, "Filter rules and actions", "Default IP filter
//! policy and IP security policy").
//!
//! The table holds, in order:
//! - the active rules: the Policy Agent's IpFilterRules once policy is
//!   installed, else the profile's IPSECRULEs (which z/OS names
//!   `SYSDEFAULTRULE.n`);
//! - the dynamic filters IKE creates per negotiated child SA, each placed
//!   in front of the IpFilterRule whose IpDynVpnAction anchors it (and
//!   those of manual SAs, in front of the rule whose IpManVpnAction
//!   anchors them: z/OS installs a manual tunnel's filters the same way,
//!   page `ipmanvpnactionstatement`). IBM: the
//!   dynamic filters go before the anchor filter in the filter table, so
//!   they are searched first (IP Configuration Guide, page
//!   `ipsecurity_verify_anchor_dyn_filters`); an anchor filter is neither
//!   a permit nor a deny rule but a placeholder for dynamic filters in the
//!   ordered rule list, and a packet that matches an anchor but none of
//!   its dynamic filters is denied unless it is outbound and an on-demand
//!   negotiation may start (page `ipsecurity_ipsec_map_sa_filters`);
//! - SYSDEFAULTDENYRULE, which lets through only the ICMP errors the stack
//!   needs ([`packet::STACK_ICMP_TYPES`]).
//!
//! In the sysplex the routing stack negotiates, and the targets receive
//! the dynamic filters with the shadow SAs and install them here (patent
//! Fig. 7 block 122); a target's inbound filtering of decrypted packets is
//! Fig. 9 block 152, the routing stack's tunnel check Fig. 8 block 136
//! (claims 7-8). [`FilterTable::evaluate`] is that check: a packet
//! decrypted under SA X passes only through a dynamic filter of X.

mod anchor;
mod display;
mod log;
mod matching;
pub mod packet;
#[cfg(test)]
mod tests;
mod verdict;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use anchor::{coverage, Coverage};
pub use display::{FilterRow, FilterType};
pub use log::{FilterLog, LogLimit, MessageId};
pub use packet::{FilterPacket, PacketDirection, PacketError, PacketRouting, Transport};
pub use verdict::{DenyReason, Verdict};

use self::log::LogBucket;
use self::matching::{dynamic_matches, rule_matches};
use super::policy::{
    Conditions, DynVpnAction, FilterAction, FilterRule, Routing, RuleSet, RuleSetError,
};
use super::sa::{SaConfig, TrafficSelector};
use super::sad::SaId;

mod build;

use build::{build, dynamic_entry, is_dynamic_of};

/// A rule name, shared between the table and the verdicts so a verdict
/// costs no allocation.
pub type RuleName = Arc<str>;

/// The name z/OS gives the implicit deny rules at the end of the table.
pub const SYSDEFAULTDENYRULE: &str = "SYSDEFAULTDENYRULE";

/// The two SAs of one child SA pair. In z/OS each phase 2 SA corresponds
/// one to one to a pair of dynamic filters, one inbound and one outbound
/// (IP Configuration Guide, page `ipsecurity_ipsec_map_sa_filters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SaPair {
    /// The SA that opens inbound packets.
    pub inbound: SaId,
    /// The SA that seals outbound packets.
    pub outbound: SaId,
}

/// A dynamic filter: the traffic selectors of a negotiated child SA pair,
/// anchored to the IpFilterRule whose IpDynVpnAction it was negotiated
/// for. Serializable, to travel with the shadow SAs (patent Fig. 6 block
/// 118, Fig. 7 block 122).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DynamicFilter {
    /// The anchor rule's name.
    pub anchor: String,
    /// The SAs.
    pub sas: SaPair,
    /// What inbound packets may carry: the inbound SA's selectors
    /// (source = peer side).
    pub inbound: TrafficSelector,
    /// What outbound packets may carry: the outbound SA's selectors.
    pub outbound: TrafficSelector,
}

impl DynamicFilter {
    /// The dynamic filter of a child SA pair, from the SAs' identities and
    /// selectors.
    pub fn from_sas(anchor: &str, inbound: &SaConfig, outbound: &SaConfig) -> DynamicFilter {
        let id = |c: &SaConfig| SaId {
            dst: c.dst,
            protocol: c.protocol,
            spi: c.spi,
        };
        DynamicFilter {
            anchor: anchor.to_owned(),
            sas: SaPair {
                inbound: id(inbound),
                outbound: id(outbound),
            },
            inbound: inbound.selector,
            outbound: outbound.selector,
        }
    }
}

/// Where an active rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleOrigin {
    /// The profile's IPSEC block (default rules).
    Profile,
    /// The Policy Agent.
    Policy,
}

/// Table-wide logging options: IPSEC `LOGENABLE|LOGDISABLE` and
/// `LOGIMPLICIT|NOLOGIMPLICIT` (IP Configuration Reference, "IPSEC
/// statement"), IpFilterPolicy `FilterLogging`, and the per-rule limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterOptions {
    /// Whether filter logging is on at all.
    pub logging: bool,
    /// Whether packets denied by SYSDEFAULTDENYRULE are logged.
    pub log_implicit: bool,
    /// Messages per rule.
    pub log_limit: LogLimit,
}

impl Default for FilterOptions {
    fn default() -> FilterOptions {
        FilterOptions {
            logging: true,
            log_implicit: false,
            log_limit: LogLimit::default(),
        }
    }
}

/// Why a dynamic filter cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// No active rule has the anchor's name.
    #[error("no filter rule named {0}")]
    NoAnchor(String),
    /// The anchor rule has neither an IpDynVpnAction nor an
    /// IpManVpnAction.
    #[error("filter rule {0} has no IPsec action")]
    NotIpsec(String),
    /// A dynamic filter of the same SAs is installed.
    #[error("a dynamic filter for these SAs is already installed")]
    Duplicate,
}

/// A rule's action, with the IpDynVpnAction shared for verdicts.
#[derive(Debug, Clone)]
enum Action {
    Permit,
    Deny,
    Ipsec(Arc<DynVpnAction>),
    /// IpManVpnAction: `active` is its `Active Yes|No`.
    Manual {
        active: bool,
    },
}

impl Action {
    const fn anchors(&self) -> bool {
        matches!(self, Action::Ipsec(_) | Action::Manual { .. })
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Rule {
        origin: RuleOrigin,
        conditions: Conditions,
        action: Action,
    },
    Dynamic {
        filter: DynamicFilter,
        routing: Routing,
        /// The anchor is an IpManVpnAction with `Active No`: matches are
        /// dropped.
        inactive: bool,
    },
}

/// One filter of the table with its counters.
#[derive(Debug, Clone)]
struct Entry {
    /// The rule's name; a dynamic filter shares its anchor's.
    name: RuleName,
    /// The IpDynVpnAction or IpManVpnAction name, for IPsec rules and
    /// dynamic filters.
    vpn: Option<RuleName>,
    kind: Kind,
    log: bool,
    /// Hits by packet direction: `[inbound, outbound]`.
    hits: [u64; 2],
    bucket: LogBucket,
}

/// Which counter a decision bumps.
#[derive(Debug, Clone, Copy)]
enum Hit {
    Entry(usize),
    Default,
}

/// The filter table (see the module documentation).
#[derive(Debug, Clone)]
pub struct FilterTable {
    profile: RuleSet,
    policy: Option<RuleSet>,
    entries: Vec<Entry>,
    options: FilterOptions,
    default_name: RuleName,
    default_hits: [u64; 2],
    default_bucket: LogBucket,
    stack_icmp: u64,
    denials: [u64; DenyReason::ALL.len()],
}

const fn dir_index(d: PacketDirection) -> usize {
    match d {
        PacketDirection::Inbound => 0,
        PacketDirection::Outbound => 1,
    }
}

impl FilterTable {
    /// A table with the profile's default rules active and no policy.
    pub fn new(profile: RuleSet, options: FilterOptions) -> Result<FilterTable, RuleSetError> {
        profile.validate()?;
        let mut table = FilterTable {
            profile: RuleSet::default(),
            policy: None,
            entries: Vec::new(),
            options,
            default_name: Arc::from(SYSDEFAULTDENYRULE),
            default_hits: [0; 2],
            default_bucket: LogBucket::default(),
            stack_icmp: 0,
            denials: [0; DenyReason::ALL.len()],
        };
        table.entries = build(&profile, RuleOrigin::Profile, Vec::new()).0;
        table.profile = profile;
        Ok(table)
    }

    /// Installs (or replaces) the Policy Agent's rules. Dynamic filters
    /// whose anchor is still an IPsec rule stay, in front of it; the SA
    /// pairs of the others are returned so their SAs can be deleted.
    pub fn install_policy(&mut self, rules: RuleSet) -> Result<Vec<SaPair>, RuleSetError> {
        rules.validate()?;
        let old = core::mem::take(&mut self.entries);
        let (entries, dropped) = build(&rules, RuleOrigin::Policy, old);
        self.entries = entries;
        self.policy = Some(rules);
        Ok(dropped)
    }

    /// Removes the policy: the profile's default rules are active again.
    /// Returns the SA pairs of dynamic filters that lost their anchor.
    pub fn remove_policy(&mut self) -> Vec<SaPair> {
        self.policy = None;
        let old = core::mem::take(&mut self.entries);
        let (entries, dropped) = build(&self.profile, RuleOrigin::Profile, old);
        self.entries = entries;
        dropped
    }

    /// Whether Policy Agent rules are active.
    pub fn has_policy(&self) -> bool {
        self.policy.is_some()
    }

    /// The active rule set.
    pub fn active_rules(&self) -> &RuleSet {
        self.policy.as_ref().unwrap_or(&self.profile)
    }

    /// The active IpFilterRule with an IpDynVpnAction or IpManVpnAction
    /// that anchors an SA
    /// pair with these selectors (outbound: source = the local side): the
    /// first that covers the pair's traffic, else the first that overlaps
    /// it (see [`coverage`] and the `anchor` module); `None` when no IPsec rule has any of
    /// it in common (a manual SA outside the policy: it gets no dynamic
    /// filter).
    pub fn anchor_for(
        &self,
        outbound: &TrafficSelector,
        inbound: &TrafficSelector,
    ) -> Option<&FilterRule> {
        let ipsec = || {
            self.active_rules()
                .rules
                .iter()
                .filter(|r| r.action.is_ipsec())
        };
        let at = |level| ipsec().find(|r| coverage(&r.conditions, outbound, inbound) == level);
        at(Coverage::Covers).or_else(|| at(Coverage::Overlaps))
    }

    /// Installs a dynamic filter in front of its anchor, before the
    /// anchor's older dynamic filters (so outbound traffic uses the newest
    /// SA after a rekey).
    pub fn install_dynamic(&mut self, filter: DynamicFilter) -> Result<(), InstallError> {
        if self.dynamic_filters().any(|f| f.sas == filter.sas) {
            return Err(InstallError::Duplicate);
        }
        let anchor = self
            .entries
            .iter()
            .position(|e| matches!(e.kind, Kind::Rule { .. }) && *e.name == *filter.anchor)
            .ok_or_else(|| InstallError::NoAnchor(filter.anchor.clone()))?;
        let a = &self.entries[anchor];
        let Kind::Rule {
            action, conditions, ..
        } = &a.kind
        else {
            return Err(InstallError::NotIpsec(filter.anchor));
        };
        if !action.anchors() {
            return Err(InstallError::NotIpsec(filter.anchor));
        }
        let entry = dynamic_entry(a, filter, conditions.routing);
        let mut at = anchor;
        while at > 0 && is_dynamic_of(&self.entries[at - 1], &entry.name) {
            at -= 1;
        }
        self.entries.insert(at, entry);
        Ok(())
    }

    /// Removes the dynamic filter of the SA pair that `sa` (inbound or
    /// outbound) belongs to.
    pub fn remove_dynamic(&mut self, sa: &SaId) -> Option<DynamicFilter> {
        let i = self.entries.iter().position(|e| match &e.kind {
            Kind::Dynamic { filter, .. } => filter.sas.inbound == *sa || filter.sas.outbound == *sa,
            Kind::Rule { .. } => false,
        })?;
        match self.entries.remove(i).kind {
            Kind::Dynamic { filter, .. } => Some(filter),
            Kind::Rule { .. } => None,
        }
    }

    /// The installed dynamic filters, in table order.
    pub fn dynamic_filters(&self) -> impl Iterator<Item = &DynamicFilter> {
        self.entries.iter().filter_map(|e| match &e.kind {
            Kind::Dynamic { filter, .. } => Some(filter),
            Kind::Rule { .. } => None,
        })
    }

    /// Filters one packet: the first matching filter decides, and its hit
    /// counter (and the deny reason's) goes up. No allocation.
    pub fn evaluate(&mut self, packet: &FilterPacket) -> Verdict {
        let (verdict, hit) = self.decide(packet);
        self.count(&verdict, hit, packet.direction);
        verdict
    }

    /// [`FilterTable::evaluate`], plus the log record if the deciding rule
    /// logs (`LOG`, or LOGIMPLICIT for the default deny) and its bucket
    /// allows one at `now`.
    pub fn evaluate_logged(
        &mut self,
        packet: &FilterPacket,
        now: crate::time::Instant,
    ) -> (Verdict, Option<FilterLog>) {
        let (verdict, hit) = self.decide(packet);
        self.count(&verdict, hit, packet.direction);
        if !self.options.logging {
            return (verdict, None);
        }
        let limit = self.options.log_limit;
        let (wants, bucket, vpn) = match hit {
            Hit::Entry(i) => {
                let e = &mut self.entries[i];
                (e.log, &mut e.bucket, e.vpn.as_ref())
            }
            Hit::Default => {
                let deny = matches!(verdict, Verdict::Deny { .. });
                let wants = deny && self.options.log_implicit;
                (wants, &mut self.default_bucket, None)
            }
        };
        if !wants || !bucket.take(limit, now) {
            return (verdict, None);
        }
        let record = FilterLog::new(&verdict, packet, now, vpn);
        (verdict, record)
    }

    /// Packets denied so far, by reason.
    pub fn denials(&self) -> impl Iterator<Item = (DenyReason, u64)> + '_ {
        DenyReason::ALL
            .iter()
            .copied()
            .zip(self.denials.iter().copied())
    }

    /// ICMP errors let through by SYSDEFAULTDENYRULE's exception.
    pub fn stack_icmp_permits(&self) -> u64 {
        self.stack_icmp
    }

    fn count(&mut self, verdict: &Verdict, hit: Hit, dir: PacketDirection) {
        let d = dir_index(dir);
        match (hit, verdict) {
            (Hit::Default, Verdict::PermitStackIcmp) => self.stack_icmp += 1,
            (Hit::Default, _) => self.default_hits[d] += 1,
            (Hit::Entry(i), _) => self.entries[i].hits[d] += 1,
        }
        if let Verdict::Deny { reason, .. } = verdict {
            self.denials[*reason as usize] += 1;
        }
    }

    /// The first matching filter and what it decides.
    fn decide(&self, p: &FilterPacket) -> (Verdict, Hit) {
        for (i, e) in self.entries.iter().enumerate() {
            match &e.kind {
                Kind::Dynamic {
                    filter, routing, ..
                } if dynamic_matches(filter, *routing, p) => {
                    return self.on_dynamic(i, filter, p);
                }
                Kind::Rule {
                    conditions, action, ..
                } if rule_matches(conditions, p) => {
                    return (on_rule(&e.name, action, p), Hit::Entry(i));
                }
                _ => {}
            }
        }
        if p.is_stack_icmp() {
            return (Verdict::PermitStackIcmp, Hit::Default);
        }
        let deny = Verdict::Deny {
            rule: self.default_name.clone(),
            reason: DenyReason::DefaultDeny,
            filter_sa: None,
        };
        (deny, Hit::Default)
    }

    /// A dynamic filter matched first. Outbound: seal with its SA.
    /// Inbound: the packet must have been decrypted under the filter's SA,
    /// or under another SA of the same anchor whose filter also matches
    /// (the old and new SAs of a rekey carry the same selectors).
    /// A manual tunnel with `Active No` drops every match.
    fn on_dynamic(&self, i: usize, f: &DynamicFilter, p: &FilterPacket) -> (Verdict, Hit) {
        let rule = self.entries[i].name.clone();
        let inactive = matches!(self.entries[i].kind, Kind::Dynamic { inactive: true, .. });
        let (reason, hit) = match (p.direction, p.arrived_under) {
            _ if inactive => (DenyReason::ManualInactive, i),
            (PacketDirection::Outbound, _) => {
                let sa = f.sas.outbound;
                return (Verdict::Protect { rule, sa }, Hit::Entry(i));
            }
            (PacketDirection::Inbound, None) => (DenyReason::ClearText, i),
            (PacketDirection::Inbound, Some(x)) => match self.sibling(i, x, p) {
                Some(j) => return (Verdict::PermitProtected { rule, sa: x }, Hit::Entry(j)),
                None => (DenyReason::WrongSa, i),
            },
        };
        let deny = Verdict::Deny {
            rule,
            reason,
            filter_sa: Some(f.sas.inbound),
        };
        (deny, Hit::Entry(hit))
    }

    /// The first dynamic filter of SA `x` in the anchor group of entry `i`,
    /// from `i` on, that matches `p`.
    fn sibling(&self, i: usize, x: SaId, p: &FilterPacket) -> Option<usize> {
        let name = &self.entries[i].name;
        self.entries[i..]
            .iter()
            .take_while(|e| is_dynamic_of(e, name))
            .position(|e| match &e.kind {
                Kind::Dynamic {
                    filter, routing, ..
                } => filter.sas.inbound == x && dynamic_matches(filter, *routing, p),
                Kind::Rule { .. } => false,
            })
            .map(|k| i + k)
    }
}

/// A static rule matched first. An IpManVpnAction rule behaves as an
/// IpDynVpnAction one, except that an outbound packet is dropped
/// (`no-manual-sa`) rather than starting IKE, and that with `Active No`
/// every packet is dropped (`manual-inactive`).
fn on_rule(rule: &RuleName, action: &Action, p: &FilterPacket) -> Verdict {
    let inbound = p.direction == PacketDirection::Inbound;
    let deny = |reason| Verdict::Deny {
        rule: rule.clone(),
        reason,
        filter_sa: None,
    };
    match action {
        Action::Permit if inbound && p.arrived_under.is_some() => deny(DenyReason::ProtectedPermit),
        Action::Permit => Verdict::Permit { rule: rule.clone() },
        Action::Deny => deny(DenyReason::DenyRule),
        Action::Ipsec(action) if !inbound => Verdict::NeedsSa {
            rule: rule.clone(),
            action: action.clone(),
        },
        Action::Manual { active: false } => deny(DenyReason::ManualInactive),
        Action::Manual { .. } if !inbound => deny(DenyReason::NoManualSa),
        Action::Ipsec(_) | Action::Manual { .. } if p.arrived_under.is_some() => {
            deny(DenyReason::OutsideSa)
        }
        Action::Ipsec(_) | Action::Manual { .. } => deny(DenyReason::ClearText),
    }
}
