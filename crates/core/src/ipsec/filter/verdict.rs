//! What the filter decides about a packet, and why it denies one.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::RuleName;
use crate::ipsec::policy::DynVpnAction;
use crate::ipsec::sad::SaId;

/// What to do with a packet. Cheap to clone (names are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A permit rule admits it in clear.
    Permit {
        /// The rule.
        rule: RuleName,
    },
    /// An inbound packet decrypted under `sa` matched a dynamic filter of
    /// `sa`: deliver it.
    PermitProtected {
        /// The anchor rule.
        rule: RuleName,
        /// The inbound SA.
        sa: SaId,
    },
    /// An outbound packet matched a dynamic filter: seal it with `sa`.
    Protect {
        /// The anchor rule.
        rule: RuleName,
        /// The outbound SA.
        sa: SaId,
    },
    /// An outbound packet matched an IPsec rule with no dynamic filter:
    /// drop it; the caller may start IKE if `action.initiation` allows
    /// (an on-demand activation, patent Fig. 11).
    NeedsSa {
        /// The anchor rule.
        rule: RuleName,
        /// Its IpDynVpnAction.
        action: Arc<DynVpnAction>,
    },
    /// Drop it, for `reason`.
    Deny {
        /// The deciding rule (the anchor for a dynamic filter, as z/OS
        /// logs it; [`super::SYSDEFAULTDENYRULE`] when nothing matched).
        rule: RuleName,
        /// Why.
        reason: DenyReason,
        /// The inbound SA of the dynamic filter that matched, if one did.
        filter_sa: Option<SaId>,
    },
    /// Nothing permitted it, but it is an ICMP error the stack needs.
    PermitStackIcmp,
}

impl Verdict {
    /// The `RULE reason` key a tunnel check (patent Fig. 8 block 136, Fig.
    /// 9 block 152) counts this verdict under when it refuses a decrypted
    /// packet, which only a [`Verdict::PermitProtected`] for its own SA
    /// passes: a deny's rule and reason; anything else (an ICMP error let
    /// through only by SYSDEFAULTDENYRULE's exception) is outside the SA.
    pub fn tunnel_denial(&self) -> String {
        match self {
            Verdict::Deny { rule, reason, .. } => format!("{rule} {}", reason.as_str()),
            Verdict::Permit { rule }
            | Verdict::PermitProtected { rule, .. }
            | Verdict::Protect { rule, .. }
            | Verdict::NeedsSa { rule, .. } => format!("{rule} outside-sa"),
            Verdict::PermitStackIcmp => format!("{} outside-sa", super::SYSDEFAULTDENYRULE),
        }
    }

    /// Whether the packet goes on (in clear, decrypted, or to be sealed).
    pub fn passes(&self) -> bool {
        matches!(
            self,
            Verdict::Permit { .. }
                | Verdict::PermitProtected { .. }
                | Verdict::Protect { .. }
                | Verdict::PermitStackIcmp
        )
    }
}

/// Why a packet was denied. [`DenyReason::as_str`] names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyReason {
    /// A deny rule matched (EZD0815I).
    DenyRule,
    /// Nothing matched: SYSDEFAULTDENYRULE (EZD0815I).
    DefaultDeny,
    /// Arrived in clear, but its first match requires IPsec (an IPsec rule
    /// or a dynamic filter): the silent-plaintext case (EZD0833I).
    ClearText,
    /// Decrypted under one SA but first matched another SA's dynamic
    /// filter: the tunnel check of patent Fig. 8 block 136 and Fig. 9
    /// block 152 (EZD0833I).
    WrongSa,
    /// Decrypted under an SA but outside every dynamic filter of the
    /// matching IPsec rule: traffic the SA may not carry (EZD0833I).
    OutsideSa,
    /// Decrypted under an SA but first matched a permit rule, which admits
    /// clear text only (EZD0833I: "not encapsulated as specified in the
    /// filter rule").
    ProtectedPermit,
    /// An outbound packet matched an IpManVpnAction rule and no dynamic
    /// filter of a manual SA: a manual tunnel is never negotiated, so it
    /// is dropped and no IKE starts (IP Configuration Reference, page
    /// `ipmanvpnactionstatement`).
    NoManualSa,
    /// It matched an IpManVpnAction rule with `Active No`, or a dynamic
    /// filter anchored there: IBM drops such packets until the tunnel is
    /// activated (page `ipmanvpnactionstatement`).
    ManualInactive,
}

impl DenyReason {
    /// Every reason, in display order.
    pub const ALL: [DenyReason; 8] = [
        DenyReason::DenyRule,
        DenyReason::DefaultDeny,
        DenyReason::ClearText,
        DenyReason::WrongSa,
        DenyReason::OutsideSa,
        DenyReason::ProtectedPermit,
        DenyReason::NoManualSa,
        DenyReason::ManualInactive,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyReason::DenyRule => "deny-rule",
            DenyReason::DefaultDeny => "default-deny",
            DenyReason::ClearText => "clear-text",
            DenyReason::WrongSa => "wrong-sa",
            DenyReason::OutsideSa => "outside-sa",
            DenyReason::ProtectedPermit => "protected-permit",
            DenyReason::NoManualSa => "no-manual-sa",
            DenyReason::ManualInactive => "manual-inactive",
        }
    }

    /// Whether z/OS reports it as a tunnel mismatch (EZD0833I).
    pub const fn is_tunnel_mismatch(self) -> bool {
        !matches!(
            self,
            DenyReason::DenyRule
                | DenyReason::DefaultDeny
                | DenyReason::NoManualSa
                | DenyReason::ManualInactive
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_counters_and_names_are_unique() {
        for (i, r) in DenyReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(DenyReason::ALL[..i]
                .iter()
                .all(|o| o.as_str() != r.as_str()));
        }
        assert!(!DenyReason::DefaultDeny.is_tunnel_mismatch());
        assert!(DenyReason::WrongSa.is_tunnel_mismatch());
        assert!(Verdict::PermitStackIcmp.passes());
    }
}
