//! The Policy Agent's IP security policy of one image, as written in its
//! `ipsec_policy` string: a subset of z/OS's IPSec policy configuration
//! file, with IBM's statement and attribute names.
//!
//! # Syntax accepted
//!
//! The layout is the Policy Agent's (see `pagent.rs`): `Statement name`,
//! a `{ ... }` block, one attribute per line, `#` comments. Statement and
//! attribute names and keyword values are case-insensitive, as IBM's
//! samples write them (`Protocol tcp`, `Routing local`); statement names
//! (1 to 32 characters, not starting with `-`, no `,`) are case-sensitive.
//! Defaults are IBM's. Every statement follows its page in z/OS
//! Communications Server: IP Configuration Reference, "IPSec policy
//! statements" (pages under
//! `https://www.ibm.com/docs/SSLTBW_2.4.0/com.ibm.zos.v2r4.halz001/`):
//!
//! ```text
//! IpFilterPolicy                      # optional; without it every IpFilterRule
//! {                                   # is in force, in file order
//!   IpFilterRuleRef name              # repeated, in filter-table order
//! }
//! IpFilterRule name                   # ipfilterrulestatement.htm
//! {
//!   IpSourceAddr All|All4|a.b.c.d|a.b.c.d/len|a.b.c.d-a.b.c.d    # default All
//!   IpDestAddr   (the same)                                       # default All
//!   IpService { ... } | IpServiceRef name                         # one, required
//!   IpGenericFilterActionRef name                                 # required
//!   IpDynVpnActionRef name            # with IpFilterAction IpSec: exactly one of
//!   IpManVpnActionRef name            # these two; refused otherwise
//! }
//! IpService [name]                    # ipservicestatement.htm; inline or global
//! {
//!   Protocol All|Tcp|6|Udp|17|Icmp|1|Ospf|89|Igmp|Ip|Ipip|Ah|Esp|number  # default All
//!   SourcePortRange n [m]             # Tcp/Udp; n-m and n:m too; default 0 (all)
//!   DestinationPortRange n [m]
//!   IcmpType n                        # Icmp only; IcmpCode n after it
//!   IcmpCode n
//!   OspfType n                        # Ospf only
//!   Direction Bidirectional [InboundConnect|OutboundConnect]|Inbound|Outbound
//!   Routing Local|Routed|Either       # default Local
//!   SecurityClass n                   # 0 (default, every interface) to 255
//! }
//! IpGenericFilterAction name          # ipgenericfilteractionstatement.htm
//! {
//!   IpFilterAction Permit|Deny|IpSec  # required
//!   IpFilterLogging Yes|No            # default No
//! }
//! IpDynVpnAction name                 # ipdynvpnactionstatement.htm
//! {
//!   Initiation LocalOnly|RemoteOnly|Either                        # default Either
//!   InitiateWithPfs None|Group14|Group19|Group20   (or the older Pfs)  # default None
//!   HowToEncapIKEv2 Tunnel|Transport  # the mode of every offer, for IKEv2
//!   IpDataOffer { ... } | IpDataOfferRef name                     # repeated, at least one
//! }
//! IpManVpnAction name                 # ipmanvpnactionstatement.htm
//! {
//!   Active Yes|No                     # default Yes; No drops the rule's traffic
//!   LocalSecurityEndpointAddr a.b.c.d # required: the DVIPA
//!   RemoteSecurityEndpointAddr a.b.c.d  # required: the client
//! }                                   # SPIs and keys: the topology's [[manual_sa]]
//! IpDataOffer [name]                  # ipdataofferstatement.htm; inline or global
//! {
//!   HowToEncap Tunnel|Transport       # default Tunnel
//!   HowToEncrypt AES_CBC KeyLength 128|256 | AES_GCM_16 KeyLength 128|256 | AES | DoNot
//!                                     # default AES_CBC KeyLength 128
//!   HowToAuth ESP|AH HMAC_SHA1|HMAC_SHA|HMAC_SHA2_256_128|HMAC_SHA2_384_192|HMAC_SHA2_512_256|Null
//!                                     # default ESP HMAC_SHA1
//!   RefreshLifetimeProposed minutes   # default 240
//!   RefreshLifesizeProposed KB|None   # default None
//! }
//! KeyExchangePolicy                   # optional, as IpFilterPolicy
//! {
//!   KeyExchangeRuleRef name           # repeated, in search order
//! }
//! KeyExchangeRule name                # keyexchangerulestatement.htm
//! {
//!   LocalSecurityEndpoint { ... } | LocalSecurityEndpointRef name    # required
//!   RemoteSecurityEndpoint { ... } | RemoteSecurityEndpointRef name  # required
//!   KeyExchangeActionRef name                                       # required
//!   SharedKey Ascii key | Hex hexdigits                              # required
//! }
//! LocalSecurityEndpoint [name]        # localsecurityendpointstatement.htm
//! RemoteSecurityEndpoint [name]       # remotesecurityendpointstatement.htm
//! {
//!   Identity IpAddr a.b.c.d           # required; the remote one may be a prefix,
//!                                     # a range or All
//!   Location a.b.c.d|a.b.c.d/len|a.b.c.d-a.b.c.d|Any|Any4        # default Any
//! }
//! KeyExchangeAction name              # keyexchangeactionstatement.htm
//! {
//!   HowToInitiate IKEv2|DoNot         # required
//!   HowToRespond Either               # and HowToRespondIKEv1 Either
//!   HowToAuthMe PresharedKey          # required
//!   KeyExchangeOffer { ... } | KeyExchangeOfferRef name           # repeated, at least one
//! }
//! KeyExchangeOffer [name]             # keyexchangeofferstatement.htm
//! {
//!   HowToEncrypt AES_CBC KeyLength 128|256 | AES                  # default AES_CBC 128
//!   HowToAuthMsgs SHA1|SHA2_256|SHA2_384|SHA2_512   # IKEv1's hash; gives the
//!                                     # defaults of the next two
//!   HowToVerifyMsgs HMAC_SHA1_96|HMAC_SHA2_256_128|HMAC_SHA2_384_192|HMAC_SHA2_512_256
//!   PseudoRandomFunction HMAC_SHA1|HMAC_SHA2_256|HMAC_SHA2_384|HMAC_SHA2_512
//!   HowToAuthPeers PresharedKey
//!   DHGroup Group14|Group19|Group20   # required
//!   RefreshLifetimeProposed minutes   # default 480
//!   RefreshLifesizeProposed KB|None   # default None
//! }
//! ```
//!
//! # Meaning and limits
//!
//! * References are by name and may point forward; each kind of statement
//!   has its own names. An unknown name, or the name of a statement of
//!   another kind, is a located error. Statements nothing refers to are
//!   checked and otherwise fine.
//! * Algorithms are mapped to what plexnet implements: ESP and AH to
//!   [`EncAlg`] and [`IntegAlg`] (`plexnet_core::ipsec::sa`), IKE to the IKE
//!   module's encryption, integrity, PRF and Diffie-Hellman groups
//!   (`plexnet_core::ike::proposal`, `keys`, `dh`). What z/OS has and plexnet
//!   does not (DES, 3DES, HMAC_MD5, AES128_XCBC_96, AES_GMAC_*, DH groups
//!   1, 2, 5, 21, 24, IKEv1, certificates, identities other than IP
//!   addresses, EBCDIC keys) is an error that says so and lists what is.
//! * A manual tunnel is written as IBM writes one: an IpFilterRule with an
//!   IpGenericFilterAction that says IpSec and an IpManVpnActionRef. z/OS
//!   takes the manual SAs' SPIs and keys from the action's data offer;
//!   plexnet takes them from the topology's `[[manual_sa]]` tables (its
//!   key source), and the topology checks that each manual SA is covered
//!   by such a rule whose endpoints are its DVIPA and client.
//! * IBM keywords plexnet does not model (groups, sets,
//!   time conditions, granularity, VpnLife, AcceptablePfs, the
//!   RefreshLife*Accepted ranges, AllowNat, ...) are refused with their
//!   name, never silently ignored. `HowToAuth AH` needs `HowToEncrypt
//!   DoNot`: an AH+ESP bundle is not in the filter model.
//! * `HowToAuthMsgs` is IKEv1's hash; plexnet's IKE is IKEv2, which takes
//!   integrity from `HowToVerifyMsgs` and the PRF from
//!   `PseudoRandomFunction`. Where those are left out, plexnet takes them
//!   from `HowToAuthMsgs` (SHA2_256 gives HMAC_SHA2_256_128 and
//!   HMAC_SHA2_256), else IBM's defaults HMAC_SHA1_96 and HMAC_SHA1.
//!
//! Offsets are byte offsets into the string given to `parse`.

use super::error::ErrorKind;
use super::model::{KeyExchangeAction, KeyExchangeOffer, KeyExchangeRule, SecurityEndpoint};
use super::pagent::{self, Node};
use super::profile::parse_addr_spec;
use super::statement::{number_in, parse_ipv4, RawError, Tok};
use core::net::Ipv4Addr;
use plexnet_core::ipsec::policy::{
    AddrSpec, Conditions, DataOffer, Direction, DynVpnAction, FilterAction, FilterRule, Initiation,
    ManVpnAction, PortSpec, ProtocolSpec, Routing, TcpConnect,
};
use plexnet_core::ipsec::sa::{EncAlg, IntegAlg, Mode, Protocol};

/// The kinds of statement plexnet reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    FilterPolicy,
    FilterRule,
    Service,
    GenericAction,
    DynVpnAction,
    ManVpnAction,
    DataOffer,
    KxPolicy,
    KxRule,
    KxAction,
    KxOffer,
    LocalEndpoint,
    RemoteEndpoint,
}

const KINDS: [Kind; 13] = [
    Kind::FilterPolicy,
    Kind::FilterRule,
    Kind::Service,
    Kind::GenericAction,
    Kind::DynVpnAction,
    Kind::ManVpnAction,
    Kind::DataOffer,
    Kind::KxPolicy,
    Kind::KxRule,
    Kind::KxAction,
    Kind::KxOffer,
    Kind::LocalEndpoint,
    Kind::RemoteEndpoint,
];

const STATEMENTS_ALLOWED: &str = "IpFilterPolicy, IpFilterRule, IpService, IpGenericFilterAction, IpDynVpnAction, IpManVpnAction, IpDataOffer, KeyExchangePolicy, KeyExchangeRule, KeyExchangeAction, KeyExchangeOffer, LocalSecurityEndpoint, RemoteSecurityEndpoint";

/// IBM's other IPSec policy statements: recognised, and refused by name.
const UNSUPPORTED_STATEMENTS: &[&str] = &[
    "IpFilterGroup",
    "IpServiceGroup",
    "IpAddr",
    "IpAddrSet",
    "IpAddrGroup",
    "IpTimeCondition",
    "IpLocalStartAction",
    "LocalDynVpnPolicy",
    "LocalDynVpnRule",
    "LocalDynVpnGroup",
    "KeyExchangeGroup",
    "RemoteIdentity",
    "Location",
    "LocationSet",
    "LocationGroup",
    "IpFilterRuleGroup",
    "IpsecCommonConfig",
    "IkeConfig",
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::FilterPolicy => "IpFilterPolicy",
            Kind::FilterRule => "IpFilterRule",
            Kind::Service => "IpService",
            Kind::GenericAction => "IpGenericFilterAction",
            Kind::DynVpnAction => "IpDynVpnAction",
            Kind::ManVpnAction => "IpManVpnAction",
            Kind::DataOffer => "IpDataOffer",
            Kind::KxPolicy => "KeyExchangePolicy",
            Kind::KxRule => "KeyExchangeRule",
            Kind::KxAction => "KeyExchangeAction",
            Kind::KxOffer => "KeyExchangeOffer",
            Kind::LocalEndpoint => "LocalSecurityEndpoint",
            Kind::RemoteEndpoint => "RemoteSecurityEndpoint",
        }
    }
    fn from_word(w: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.name().eq_ignore_ascii_case(w))
    }
    /// Policies are one per file and have no name.
    fn is_policy(self) -> bool {
        matches!(self, Kind::FilterPolicy | Kind::KxPolicy)
    }
}

/// What a whole `ipsec_policy` text gives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ParsedPolicy {
    pub(crate) filter_rules: Vec<FilterRule>,
    pub(crate) key_exchange_rules: Vec<KeyExchangeRule>,
}

/// Parses and resolves a whole `ipsec_policy` text. Errors are collected,
/// not stopped at; the result holds what resolved. `line_of` gives the
/// file line of an offset, for messages that name another line.
pub(crate) fn parse(text: &str, line_of: &dyn Fn(usize) -> usize) -> (ParsedPolicy, Vec<RawError>) {
    let (nodes, mut errors) = pagent::parse(text);
    let mut cx = Cx {
        line_of,
        errors: &mut errors,
        here: 0,
    };
    let mut defs = Defs::default();
    // Where the first statement of each kind and name is, for duplicates.
    let mut policy_at: [Option<usize>; 2] = [None, None];
    for node in &nodes {
        cx.define(node, &mut defs, &mut policy_at);
    }
    let filter_rules = cx.resolve_filter_rules(&defs);
    let key_exchange_rules = cx.resolve_kx_rules(&defs);
    if defs.rules.entries.is_empty() && cx.errors.is_empty() {
        cx.errors.push((
            nodes.first().map_or(0, |n| n.keyword.at),
            ErrorKind::PolicyLayout {
                problem: "the IPSec policy has no IpFilterRule: the Policy Agent refuses such a policy and the profile's default rules stay in force".to_owned(),
                allowed: "at least one IpFilterRule, or no `ipsec_policy`",
            },
        ));
    }
    (
        ParsedPolicy {
            filter_rules,
            key_exchange_rules,
        },
        errors,
    )
}

/// The error for a top-level word that is no statement plexnet reads:
/// IBM's other statements are refused by name.
fn unknown_statement(word: Tok<'_>) -> RawError {
    let known = UNSUPPORTED_STATEMENTS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(word.text));
    let word_text = word.text.to_owned();
    (
        word.at,
        if known {
            ErrorKind::PolicyUnsupported {
                word: word_text,
                allowed: STATEMENTS_ALLOWED,
            }
        } else {
            ErrorKind::PolicyUnknownStatement {
                word: word_text,
                allowed: STATEMENTS_ALLOWED,
            }
        },
    )
}

/// A table entry for the statement named by `name`.
fn entry<T>(name: Tok<'_>, v: Option<T>) -> (String, usize, Option<T>) {
    (name.text.to_owned(), name.at, v)
}

mod attrs;
mod define;
mod defs;
mod filters;
mod key_exchange;
mod refs;
mod service;
#[cfg(test)]
mod tests;
mod values;

use attrs::*;
use defs::*;
