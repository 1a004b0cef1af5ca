//! An image's IP security as resolved: the profile's IPCONFIG IPSECURITY
//! and IPSEC block, and the Policy Agent's policy with its key exchange
//! rules.

use serde::{Deserialize, Serialize};

use plexnet_core::ike::proposal::{ProposalConfig, ProposalParseError, Protocol as IkeProtocol};
use plexnet_core::ipsec::filter::{FilterOptions, FilterTable};
use plexnet_core::ipsec::policy::{RuleSet, RuleSetError};
use plexnet_core::ipsec::{AddrSpec, FilterRule};

/// An image's IP security, z/OS style (see [`super::super::profile`] and
/// [`super::super::policy`]): whether the stack filters at all, the profile's
/// default rules, and the Policy Agent's policy that replaces them once
/// installed. Nothing enforces it yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSecurity {
    /// `IPCONFIG IPSECURITY`: the stack filters every packet; what no rule
    /// permits is denied (z/OS's SYSDEFAULTDENYRULE).
    pub ipsecurity: bool,
    /// IPSEC `DVIPSEC`: IPsec tunnels of a distributed DVIPA are
    /// distributed, and move with it on takeover and giveback.
    pub dvipsec: bool,
    /// IPSEC `DVLOCALFLTR`.
    pub dvlocalfltr: bool,
    /// IPSEC `LOGENABLE` (default `LOGDISABLE`).
    pub log_enable: bool,
    /// IPSEC `LOGIMPLICIT` (default `NOLOGIMPLICIT`): log packets the
    /// implicit deny drops.
    pub log_implicit: bool,
    /// The IPSECRULEs, in profile order, named `SYSDEFAULTRULE.1`, ...:
    /// in force while no policy is installed.
    pub default_rules: Vec<FilterRule>,
    /// The Policy Agent's IPSec policy (`ipsec_policy`), if any.
    pub policy: Option<IpSecPolicy>,
}

impl IpSecurity {
    /// The stack's IP filter table: the IPSECRULEs, replaced by the Policy
    /// Agent's IpFilterRules when the image has a policy (z/OS uses the
    /// default rules only until the policy is installed), SYSDEFAULTDENYRULE
    /// last. `None` without `IPCONFIG IPSECURITY`: no IP filtering.
    pub fn filter_table(&self) -> Result<Option<FilterTable>, RuleSetError> {
        if !self.ipsecurity {
            return Ok(None);
        }
        let options = FilterOptions {
            logging: self.log_enable,
            log_implicit: self.log_implicit,
            ..FilterOptions::default()
        };
        let mut table = FilterTable::new(RuleSet::new(self.default_rules.clone()), options)?;
        if let Some(p) = &self.policy {
            table.install_policy(RuleSet::new(p.filter_rules.clone()))?;
        }
        Ok(Some(table))
    }
}

/// The Policy Agent's IPSec policy of one image, resolved: every reference
/// followed, every algorithm one plexnet implements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSecPolicy {
    /// The IpFilterRules in force, in filter-table order (the
    /// IpFilterPolicy's IpFilterRuleRef order, or file order without one).
    pub filter_rules: Vec<FilterRule>,
    /// The KeyExchangeRules in force, in search order (the
    /// KeyExchangePolicy's order, or file order without one).
    pub key_exchange_rules: Vec<KeyExchangeRule>,
}

/// A KeyExchangeRule: how the IKE of this stack negotiates with the
/// remote security endpoints the rule covers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExchangeRule {
    /// The rule's name.
    pub name: String,
    /// This stack's side (`LocalSecurityEndpoint`).
    pub local: SecurityEndpoint,
    /// The peers the rule applies to (`RemoteSecurityEndpoint`).
    pub remote: SecurityEndpoint,
    /// `KeyExchangeActionRef`.
    pub action: KeyExchangeAction,
    /// `SharedKey`: the pre-shared key's bytes (RFC 7296 §2.15).
    pub shared_key: Vec<u8>,
}

impl std::fmt::Debug for KeyExchangeRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyExchangeRule")
            .field("name", &self.name)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("action", &self.action)
            .field("shared_key", &"<secret>")
            .finish()
    }
}

/// A LocalSecurityEndpoint or RemoteSecurityEndpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEndpoint {
    /// The statement's name; `None` when written inline.
    pub name: Option<String>,
    /// `Identity IpAddr`: the IKE identity (ID_IPV4_ADDR); one address for
    /// the local endpoint, possibly a prefix or range (or any) for the
    /// remote one.
    pub identity: AddrSpec,
    /// `Location`: the IKE peer's (or this stack's) address.
    pub location: AddrSpec,
}

/// A KeyExchangeAction: whether this stack starts IKE, and its IKE offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExchangeAction {
    /// The statement's name.
    pub name: String,
    /// `HowToInitiate IKEv2` (`true`) or `DoNot`.
    pub initiate: bool,
    /// The KeyExchangeOffers, most preferred first.
    pub offers: Vec<KeyExchangeOffer>,
}

/// A KeyExchangeOffer: one acceptable protection of the IKE SA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExchangeOffer {
    /// The statement's name; `None` when written inline.
    pub name: Option<String>,
    /// The IKE proposal in strongSwan syntax with one algorithm of each
    /// kind, e.g. `aes128-sha1-prfsha1-modp2048`, as strongSwan's `proposals` is
    /// written; [`KeyExchangeOffer::proposal_config`] gives the IKE
    /// module's type.
    pub proposal: String,
    /// `RefreshLifetimeProposed`, in seconds.
    pub lifetime_secs: u64,
    /// `RefreshLifesizeProposed`, in bytes; `None` for no limit.
    pub lifesize_bytes: Option<u64>,
}

impl KeyExchangeOffer {
    /// The offer as the IKE module's proposal.
    pub fn proposal_config(&self) -> Result<ProposalConfig, ProposalParseError> {
        ProposalConfig::parse(IkeProtocol::Ike, &self.proposal)
    }
}
