//! What the policy types cannot say by themselves: prefix lengths, ranges,
//! unique names, and data offers whose algorithms combine.

use super::{
    AddrSpec, DataOffer, DynVpnAction, FilterAction, FilterRule, PortSpec, ProtocolSpec, RuleSet,
};
use crate::ipsec::sa::{EncAlg, IntegAlg, Protocol};

/// Why a [`FilterRule`] cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The rule has no name.
    #[error("a filter rule needs a name")]
    EmptyName,
    /// A prefix length past 32.
    #[error("rule {rule}: prefix length {len} is longer than 32")]
    PrefixLength {
        /// The rule.
        rule: String,
        /// The length given.
        len: u8,
    },
    /// A range whose first element is after its last.
    #[error("rule {rule}: {what} range is backwards")]
    BackwardsRange {
        /// The rule.
        rule: String,
        /// Which range: "address" or "port".
        what: &'static str,
    },
    /// An IPsec action without any data offer.
    #[error("rule {rule}: action {action} has no data offer")]
    NoOffer {
        /// The rule.
        rule: String,
        /// The IpDynVpnAction.
        action: String,
    },
    /// A data offer whose algorithms do not combine.
    #[error("rule {rule}: data offer not allowed: {why}")]
    Offer {
        /// The rule.
        rule: String,
        /// What is wrong.
        why: &'static str,
    },
}

impl FilterRule {
    /// Checks what the types cannot: prefix lengths, ranges, and that an
    /// IPsec action has offers that combine (RFC 4303 §3.2: not both
    /// NULL; AEAD without separate integrity; AH does not encrypt).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.name.is_empty() {
            return Err(PolicyError::EmptyName);
        }
        let c = &self.conditions;
        for addr in [c.source, c.destination] {
            self.check_addr(addr)?;
        }
        match c.protocol {
            ProtocolSpec::Tcp { src, dst } | ProtocolSpec::Udp { src, dst } => {
                for p in [src, dst] {
                    if matches!(p, PortSpec::Range { first, last } if first > last) {
                        return Err(self.backwards("port"));
                    }
                }
            }
            _ => {}
        }
        if let FilterAction::Ipsec(action) = &self.action {
            self.check_action(action)?;
        }
        Ok(())
    }

    fn check_addr(&self, addr: AddrSpec) -> Result<(), PolicyError> {
        match addr {
            AddrSpec::Prefix { len, .. } if len > 32 => Err(PolicyError::PrefixLength {
                rule: self.name.clone(),
                len,
            }),
            AddrSpec::Range { first, last } if first > last => Err(self.backwards("address")),
            _ => Ok(()),
        }
    }

    fn backwards(&self, what: &'static str) -> PolicyError {
        PolicyError::BackwardsRange {
            rule: self.name.clone(),
            what,
        }
    }

    fn check_action(&self, action: &DynVpnAction) -> Result<(), PolicyError> {
        if action.offers.is_empty() {
            return Err(PolicyError::NoOffer {
                rule: self.name.clone(),
                action: action.name.clone(),
            });
        }
        for offer in &action.offers {
            offer_combination(offer).map_err(|why| PolicyError::Offer {
                rule: self.name.clone(),
                why,
            })?;
        }
        Ok(())
    }
}

/// Whether an offer's algorithms combine, as [`super::sa::Sa::new`] will
/// require of the negotiated SA.
fn offer_combination(offer: &DataOffer) -> Result<(), &'static str> {
    let integ = offer.integrity != IntegAlg::None;
    match (offer.protocol, offer.encryption) {
        (Protocol::Ah, Some(_)) => Err("AH does not encrypt"),
        (Protocol::Ah, None) if !integ => Err("AH needs integrity"),
        (Protocol::Esp, None) => Err("ESP needs HowToEncrypt (DoNot is EncAlg::Null)"),
        (Protocol::Esp, Some(enc)) if enc.is_aead() && integ => {
            Err("AES_GCM_16 brings its own integrity (HowToAuth ESP Null)")
        }
        (Protocol::Esp, Some(EncAlg::Null)) if !integ => Err("ESP cannot be NULL twice"),
        _ => Ok(()),
    }
}

impl RuleSet {
    /// Validates every rule and that names are unique (the filter table
    /// and the dynamic filters' anchors find rules by name).
    pub fn validate(&self) -> Result<(), RuleSetError> {
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate().map_err(RuleSetError::Rule)?;
            if self.rules[..i].iter().any(|r| r.name == rule.name) {
                return Err(RuleSetError::DuplicateName(rule.name.clone()));
            }
        }
        Ok(())
    }
}

/// Why a [`RuleSet`] cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleSetError {
    /// One rule is invalid.
    #[error(transparent)]
    Rule(PolicyError),
    /// Two rules have the same name.
    #[error("two filter rules are named {0}")]
    DuplicateName(String),
}

#[cfg(test)]
mod tests {
    use super::super::tests::{esp_offer, ip, ipsec_rule};
    use super::*;

    #[test]
    fn validation() {
        let ok = ipsec_rule(vec![esp_offer(EncAlg::AesCbc128, IntegAlg::HmacSha1_96)]);
        assert_eq!(ok.validate(), Ok(()));
        let gcm = ipsec_rule(vec![esp_offer(EncAlg::AesGcm16_128, IntegAlg::HmacSha1_96)]);
        assert!(matches!(gcm.validate(), Err(PolicyError::Offer { .. })));
        let none = ipsec_rule(vec![]);
        assert!(matches!(none.validate(), Err(PolicyError::NoOffer { .. })));
        let mut ah = esp_offer(EncAlg::AesCbc128, IntegAlg::HmacSha1_96);
        ah.protocol = Protocol::Ah;
        assert!(ipsec_rule(vec![ah.clone()]).validate().is_err());
        ah.encryption = None;
        assert_eq!(ipsec_rule(vec![ah]).validate(), Ok(()));
        let mut ports = ok.clone();
        ports.conditions.protocol = ProtocolSpec::Tcp {
            src: PortSpec::Range {
                first: 90,
                last: 80,
            },
            dst: PortSpec::Any,
        };
        assert!(matches!(
            ports.validate(),
            Err(PolicyError::BackwardsRange { what: "port", .. })
        ));
        let mut long = ok.clone();
        long.conditions.source = AddrSpec::Prefix {
            addr: ip("1.2.3.4"),
            len: 40,
        };
        assert!(matches!(
            long.validate(),
            Err(PolicyError::PrefixLength { len: 40, .. })
        ));
        let dup = RuleSet::new(vec![ok.clone(), ok]);
        assert_eq!(
            dup.validate(),
            Err(RuleSetError::DuplicateName("web".into()))
        );
    }
}
