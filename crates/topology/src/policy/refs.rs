//! Resolving the references between statements: the rules in force, each
//! with its service, actions, offers and endpoints.

use super::*;

impl Cx<'_> {
    /// The IpFilterRules in force, resolved, in filter-table order.
    pub(super) fn resolve_filter_rules(&mut self, defs: &Defs<'_>) -> Vec<FilterRule> {
        let order = self.policy_order(defs, Kind::FilterPolicy, &defs.rules);
        let mut out = Vec::new();
        for i in order {
            let (name, _, raw) = &defs.rules.entries[i];
            let Some(raw) = raw else { continue };
            if let Some(rule) = self.resolve_filter_rule(defs, name, raw) {
                out.push(rule);
            }
        }
        out
    }

    pub(super) fn resolve_filter_rule(
        &mut self,
        defs: &Defs<'_>,
        name: &str,
        raw: &RawFilterRule<'_>,
    ) -> Option<FilterRule> {
        let service = match &raw.service {
            Use::Inline(s) => (*s)?,
            Use::Ref(t) => *self.find(defs, &defs.services, Kind::Service, "IpServiceRef", *t)?,
        };
        let &(generic, log) = self.find(
            defs,
            &defs.generics,
            Kind::GenericAction,
            "IpGenericFilterActionRef",
            raw.generic,
        )?;
        let action = self.resolve_action(defs, name, raw, generic)?;
        let rule = FilterRule {
            name: name.to_owned(),
            conditions: Conditions {
                source: raw.source,
                destination: raw.destination,
                protocol: service.protocol,
                routing: service.routing,
                direction: service.direction,
                connect: service.connect,
                security_class: service.security_class,
            },
            action,
            log,
        };
        Some(rule)
    }

    /// The rule's action: IBM's three ways to write one (page
    /// `ipfilterrulestatement`): an IpGenericFilterAction that permits or
    /// denies alone, or one that says IpSec with exactly one of
    /// IpDynVpnActionRef and IpManVpnActionRef.
    pub(super) fn resolve_action(
        &mut self,
        defs: &Defs<'_>,
        name: &str,
        raw: &RawFilterRule<'_>,
        generic: Generic,
    ) -> Option<FilterAction> {
        const ALLOWED: &str = "IpFilterAction Permit or Deny alone; IpFilterAction IpSec with exactly one of IpDynVpnActionRef and IpManVpnActionRef";
        let g = raw.generic.text;
        let (at, problem) = match (generic, raw.dynvpn, raw.manvpn) {
            (Generic::Permit, None, None) => return Some(FilterAction::Permit),
            (Generic::Deny, None, None) => return Some(FilterAction::Deny),
            (Generic::IpSec, Some(t), None) => {
                return self.resolve_dyn_vpn(defs, t).map(FilterAction::Ipsec)
            }
            (Generic::IpSec, None, Some(t)) => {
                return self.resolve_man_vpn(defs, t).map(FilterAction::Manual)
            }
            (Generic::IpSec, None, None) => (
                raw.generic.at,
                format!("IpGenericFilterAction {g} says IpSec but the rule has neither IpDynVpnActionRef nor IpManVpnActionRef"),
            ),
            (Generic::IpSec, Some(_), Some(m)) => (
                m.at,
                "both IpDynVpnActionRef and IpManVpnActionRef".to_owned(),
            ),
            (Generic::Permit | Generic::Deny, Some(t), _) => (
                t.at,
                format!("IpDynVpnActionRef with IpGenericFilterAction {g}, which does not say IpSec"),
            ),
            (Generic::Permit | Generic::Deny, None, Some(t)) => (
                t.at,
                format!("IpManVpnActionRef with IpGenericFilterAction {g}, which does not say IpSec"),
            ),
        };
        let problem = format!("IpFilterRule {name}: {problem}");
        self.push((
            at,
            ErrorKind::Combination {
                problem,
                allowed: ALLOWED,
            },
        ));
        None
    }

    pub(super) fn resolve_man_vpn(&mut self, defs: &Defs<'_>, t: Tok<'_>) -> Option<ManVpnAction> {
        let raw = self.find(
            defs,
            &defs.manvpns,
            Kind::ManVpnAction,
            "IpManVpnActionRef",
            t,
        )?;
        Some(ManVpnAction {
            name: t.text.to_owned(),
            active: raw.active,
            local: raw.local,
            remote: raw.remote,
        })
    }

    pub(super) fn resolve_dyn_vpn(&mut self, defs: &Defs<'_>, t: Tok<'_>) -> Option<DynVpnAction> {
        let raw = self.find(
            defs,
            &defs.dynvpns,
            Kind::DynVpnAction,
            "IpDynVpnActionRef",
            t,
        )?;
        let mut offers = Vec::new();
        let mut ok = true;
        for u in &raw.offers {
            let o = self.resolve_use(defs, u, &defs.offers, Kind::DataOffer, "IpDataOfferRef");
            let Some(mut o) = o else {
                ok = false;
                continue;
            };
            if let Some((mode, at)) = raw.encap_ikev2 {
                if let Some(encap_at) = o.encap_at.filter(|_| o.offer.mode != mode) {
                    let line = self.line(encap_at);
                    self.push((
                        at,
                        ErrorKind::Combination {
                            problem: format!(
                                "HowToEncapIKEv2 {mode:?} but an IpDataOffer of this action says HowToEncap {:?} (line {line})",
                                o.offer.mode
                            ),
                            allowed: "the same mode in HowToEncapIKEv2 and HowToEncap, or only one of them",
                        },
                    ));
                    return None;
                }
                o.offer.mode = mode;
            }
            offers.push(o.offer);
        }
        ok.then(|| DynVpnAction {
            name: t.text.to_owned(),
            offers,
            initiation: raw.initiation,
            pfs_group: raw.pfs_group,
        })
    }

    /// The KeyExchangeRules in force, resolved, in search order.
    pub(super) fn resolve_kx_rules(&mut self, defs: &Defs<'_>) -> Vec<KeyExchangeRule> {
        let order = self.policy_order(defs, Kind::KxPolicy, &defs.kx_rules);
        let mut out = Vec::new();
        for i in order {
            let (name, _, raw) = &defs.kx_rules.entries[i];
            let Some(raw) = raw else { continue };
            let local = self.resolve_endpoint(defs, &raw.local, Kind::LocalEndpoint);
            let remote = self.resolve_endpoint(defs, &raw.remote, Kind::RemoteEndpoint);
            let action = self.resolve_kx_action(defs, raw.action);
            if let (Some(local), Some(remote), Some(action)) = (local, remote, action) {
                out.push(KeyExchangeRule {
                    name: name.clone(),
                    local,
                    remote,
                    action,
                    shared_key: raw.shared_key.clone(),
                });
            }
        }
        out
    }

    pub(super) fn resolve_endpoint(
        &mut self,
        defs: &Defs<'_>,
        u: &Use<'_, SecurityEndpoint>,
        kind: Kind,
    ) -> Option<SecurityEndpoint> {
        let (table, attribute) = if kind == Kind::LocalEndpoint {
            (&defs.locals, "LocalSecurityEndpointRef")
        } else {
            (&defs.remotes, "RemoteSecurityEndpointRef")
        };
        self.resolve_use(defs, u, table, kind, attribute)
    }

    /// A statement written inline, or the one a `...Ref` names (a located
    /// error if it names nothing or another kind); `None` when it had
    /// errors, already reported.
    pub(super) fn resolve_use<T: Clone>(
        &mut self,
        defs: &Defs<'_>,
        u: &Use<'_, T>,
        table: &Table<T>,
        kind: Kind,
        attribute: &'static str,
    ) -> Option<T> {
        match u {
            Use::Inline(v) => v.clone(),
            Use::Ref(t) => self.find(defs, table, kind, attribute, *t).cloned(),
        }
    }

    pub(super) fn resolve_kx_action(
        &mut self,
        defs: &Defs<'_>,
        t: Tok<'_>,
    ) -> Option<KeyExchangeAction> {
        let raw = self.find(
            defs,
            &defs.kx_actions,
            Kind::KxAction,
            "KeyExchangeActionRef",
            t,
        )?;
        let mut offers = Vec::new();
        let mut ok = true;
        for u in &raw.offers {
            let o = self.resolve_use(
                defs,
                u,
                &defs.kx_offers,
                Kind::KxOffer,
                "KeyExchangeOfferRef",
            );
            match o {
                Some(o) => offers.push(o),
                None => ok = false,
            }
        }
        ok.then(|| KeyExchangeAction {
            name: t.text.to_owned(),
            initiate: raw.initiate,
            offers,
        })
    }
}
