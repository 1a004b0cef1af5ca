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
//!   IpDynVpnActionRef name            # required with IpFilterAction IpSec, else refused
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
//!   [`EncAlg`] and [`IntegAlg`] (`src/ipsec/sa.rs`), IKE to the IKE
//!   module's encryption, integrity, PRF and Diffie-Hellman groups
//!   (`src/ike/proposal.rs`, `keys.rs`, `dh.rs`). What z/OS has and plexnet
//!   does not (DES, 3DES, HMAC_MD5, AES128_XCBC_96, AES_GMAC_*, DH groups
//!   1, 2, 5, 21, 24, IKEv1, certificates, identities other than IP
//!   addresses, EBCDIC keys) is an error that says so and lists what is.
//! * IBM keywords plexnet does not model (IpManVpnAction, groups, sets,
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
use super::pagent::{self, Node, RawError};
use super::profile::parse_addr_spec;
use super::vipa::{parse_ipv4, Tok};
use crate::ipsec::policy::{
    AddrSpec, Conditions, DataOffer, Direction, DynVpnAction, FilterAction, FilterRule, Initiation,
    PortSpec, ProtocolSpec, Routing, TcpConnect,
};
use crate::ipsec::sa::{EncAlg, IntegAlg, Mode, Protocol};

/// The kinds of statement plexnet reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    FilterPolicy,
    FilterRule,
    Service,
    GenericAction,
    DynVpnAction,
    DataOffer,
    KxPolicy,
    KxRule,
    KxAction,
    KxOffer,
    LocalEndpoint,
    RemoteEndpoint,
}

const KINDS: [Kind; 12] = [
    Kind::FilterPolicy,
    Kind::FilterRule,
    Kind::Service,
    Kind::GenericAction,
    Kind::DynVpnAction,
    Kind::DataOffer,
    Kind::KxPolicy,
    Kind::KxRule,
    Kind::KxAction,
    Kind::KxOffer,
    Kind::LocalEndpoint,
    Kind::RemoteEndpoint,
];

const STATEMENTS_ALLOWED: &str = "IpFilterPolicy, IpFilterRule, IpService, IpGenericFilterAction, IpDynVpnAction, IpDataOffer, KeyExchangePolicy, KeyExchangeRule, KeyExchangeAction, KeyExchangeOffer, LocalSecurityEndpoint, RemoteSecurityEndpoint";

/// IBM's other IPSec policy statements: recognised, and refused by name.
const UNSUPPORTED_STATEMENTS: &[&str] = &[
    "IpManVpnAction",
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

/// A statement used in place (an inline block) or by name.
#[derive(Debug, Clone)]
enum Use<'a, T> {
    Inline(Option<T>),
    Ref(Tok<'a>),
}

/// The statements of one kind, in file order: name, where the name is,
/// and the parsed body (`None` when the body had errors, which were
/// reported; a reference to it is then silently unresolved).
#[derive(Debug)]
struct Table<T> {
    entries: Vec<(String, usize, Option<T>)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|(n, _, _)| n == name)
    }
    fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _, _)| n.as_str()).collect()
    }
}

/// An IpService, fully resolved.
#[derive(Debug, Clone, Copy)]
struct Service {
    protocol: ProtocolSpec,
    routing: Routing,
    direction: Direction,
    connect: Option<TcpConnect>,
    security_class: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generic {
    Permit,
    Deny,
    IpSec,
}

/// An IpDataOffer and whether its HowToEncap was written.
#[derive(Debug, Clone)]
struct Offer {
    offer: DataOffer,
    encap_at: Option<usize>,
}

#[derive(Debug, Clone)]
struct RawDynVpn<'a> {
    initiation: Initiation,
    pfs_group: Option<u16>,
    encap_ikev2: Option<(Mode, usize)>,
    offers: Vec<Use<'a, Offer>>,
}

#[derive(Debug, Clone)]
struct RawFilterRule<'a> {
    source: AddrSpec,
    destination: AddrSpec,
    service: Use<'a, Service>,
    generic: Tok<'a>,
    dynvpn: Option<Tok<'a>>,
}

#[derive(Debug, Clone)]
struct RawKxAction<'a> {
    initiate: bool,
    offers: Vec<Use<'a, KeyExchangeOffer>>,
}

#[derive(Debug, Clone)]
struct RawKxRule<'a> {
    local: Use<'a, SecurityEndpoint>,
    remote: Use<'a, SecurityEndpoint>,
    action: Tok<'a>,
    shared_key: Vec<u8>,
}

/// Every statement of the file, parsed, before references are followed.
#[derive(Debug, Default)]
struct Defs<'a> {
    filter_policy: Option<Vec<Tok<'a>>>,
    kx_policy: Option<Vec<Tok<'a>>>,
    rules: Table<RawFilterRule<'a>>,
    services: Table<Service>,
    generics: Table<(Generic, bool)>,
    dynvpns: Table<RawDynVpn<'a>>,
    offers: Table<Offer>,
    kx_rules: Table<RawKxRule<'a>>,
    kx_actions: Table<RawKxAction<'a>>,
    kx_offers: Table<KeyExchangeOffer>,
    locals: Table<SecurityEndpoint>,
    remotes: Table<SecurityEndpoint>,
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

/// The parse context: file lines of offsets, and the errors.
struct Cx<'e> {
    line_of: &'e dyn Fn(usize) -> usize,
    errors: &'e mut Vec<RawError>,
    /// Where the statement being parsed starts: where a missing attribute
    /// of an empty block is reported.
    here: usize,
}

/// One attribute a statement takes.
struct Spec {
    name: &'static str,
    /// May be given more than once.
    repeat: bool,
    /// Takes an inline `{ ... }` block (and no other value than a name).
    block: bool,
}

const fn attr(name: &'static str) -> Spec {
    Spec {
        name,
        repeat: false,
        block: false,
    }
}
const fn repeated(name: &'static str) -> Spec {
    Spec {
        name,
        repeat: true,
        block: false,
    }
}
const fn inline(name: &'static str, repeat: bool) -> Spec {
    Spec {
        name,
        repeat,
        block: true,
    }
}

/// An attribute line, with its canonical name.
#[derive(Clone, Copy)]
struct Attr<'n, 'a> {
    name: &'static str,
    node: &'n Node<'a>,
}

impl<'a> Attr<'_, 'a> {
    fn at(&self) -> usize {
        self.node.keyword.at
    }
    /// The value, which must be one word.
    fn one(&self, syntax: &'static str) -> Result<Tok<'a>, RawError> {
        let v = self.first(syntax)?;
        self.no_more(1, syntax)?;
        Ok(v)
    }
    /// The first word of the value.
    fn first(&self, syntax: &'static str) -> Result<Tok<'a>, RawError> {
        self.node.args.first().copied().ok_or((
            self.node.end(),
            ErrorKind::MissingValue {
                attribute: self.name,
                syntax,
            },
        ))
    }
    /// Word `i` of the value, which must be there.
    fn arg(&self, i: usize, syntax: &'static str) -> Result<Tok<'a>, RawError> {
        self.node.args.get(i).copied().ok_or((
            self.node.end(),
            ErrorKind::MissingValue {
                attribute: self.name,
                syntax,
            },
        ))
    }
    /// Errors if the value has more than `n` words.
    fn no_more(&self, n: usize, syntax: &'static str) -> Result<(), RawError> {
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
    fn choice<T: Copy>(
        &self,
        choices: &[(&str, T)],
        syntax: &'static str,
        allowed: &'static str,
    ) -> Result<T, RawError> {
        let v = self.one(syntax)?;
        pick(v, self.name, choices, allowed)
    }
}

fn pick<T: Copy>(
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

fn not_implemented(v: Tok<'_>, what: &'static str, implemented: &'static str) -> RawError {
    (
        v.at,
        ErrorKind::NotImplemented {
            what,
            value: v.text.to_owned(),
            implemented,
        },
    )
}

fn is_one_of(v: Tok<'_>, words: &[&str]) -> bool {
    words.iter().any(|w| w.eq_ignore_ascii_case(v.text))
}

/// A decimal number in `lo..=hi`.
fn number(
    v: Tok<'_>,
    what: &'static str,
    lo: u64,
    hi: u64,
    allowed: &'static str,
) -> Result<u64, RawError> {
    let n =
        (!v.text.is_empty() && v.text.len() <= 10 && v.text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.text.parse::<u64>().ok())
            .flatten();
    match n {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err((
            v.at,
            ErrorKind::OutOfRange {
                what,
                value: v.text.to_owned(),
                allowed,
            },
        )),
    }
}

impl Cx<'_> {
    fn push(&mut self, e: RawError) {
        self.errors.push(e);
    }

    fn line(&self, at: usize) -> usize {
        (self.line_of)(at)
    }

    /// Checks a statement name: 1 to 32 characters, no leading `-`, no `,`.
    fn statement_name(&mut self, t: Tok<'_>) -> bool {
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
    fn define<'a>(
        &mut self,
        node: &Node<'a>,
        defs: &mut Defs<'a>,
        policy_at: &mut [Option<usize>; 2],
    ) {
        let word = node.keyword;
        let Some(kind) = Kind::from_word(word.text) else {
            let known = UNSUPPORTED_STATEMENTS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(word.text));
            self.push((
                word.at,
                if known {
                    ErrorKind::PolicyUnsupported {
                        word: word.text.to_owned(),
                        allowed: STATEMENTS_ALLOWED,
                    }
                } else {
                    ErrorKind::PolicyUnknownStatement {
                        word: word.text.to_owned(),
                        allowed: STATEMENTS_ALLOWED,
                    }
                },
            ));
            return;
        };
        let Some(body) = &node.block else {
            self.push((
                word.at,
                ErrorKind::PolicyLayout {
                    problem: format!("`{}` has no `{{ ... }}` block", word.text),
                    allowed: "Statement [name] on one line, `{` at its end or on the next line, one attribute per line, `}` alone on its line",
                },
            ));
            return;
        };
        if kind.is_policy() {
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
        let first = match kind {
            Kind::FilterRule => defs
                .rules
                .position(name.text)
                .map(|i| defs.rules.entries[i].1),
            Kind::Service => defs
                .services
                .position(name.text)
                .map(|i| defs.services.entries[i].1),
            Kind::GenericAction => defs
                .generics
                .position(name.text)
                .map(|i| defs.generics.entries[i].1),
            Kind::DynVpnAction => defs
                .dynvpns
                .position(name.text)
                .map(|i| defs.dynvpns.entries[i].1),
            Kind::DataOffer => defs
                .offers
                .position(name.text)
                .map(|i| defs.offers.entries[i].1),
            Kind::KxRule => defs
                .kx_rules
                .position(name.text)
                .map(|i| defs.kx_rules.entries[i].1),
            Kind::KxAction => defs
                .kx_actions
                .position(name.text)
                .map(|i| defs.kx_actions.entries[i].1),
            Kind::KxOffer => defs
                .kx_offers
                .position(name.text)
                .map(|i| defs.kx_offers.entries[i].1),
            Kind::LocalEndpoint => defs
                .locals
                .position(name.text)
                .map(|i| defs.locals.entries[i].1),
            Kind::RemoteEndpoint => defs
                .remotes
                .position(name.text)
                .map(|i| defs.remotes.entries[i].1),
            Kind::FilterPolicy | Kind::KxPolicy => None,
        };
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
        let n = name.text;
        self.here = word.at;
        match kind {
            Kind::FilterRule => {
                let v = self.filter_rule(n, body);
                defs.rules.entries.push(entry(name, v));
            }
            Kind::Service => {
                let v = self.service(body);
                defs.services.entries.push(entry(name, v));
            }
            Kind::GenericAction => {
                let v = self.generic_action(n, body);
                defs.generics.entries.push(entry(name, v));
            }
            Kind::DynVpnAction => {
                let v = self.dyn_vpn_action(n, body);
                defs.dynvpns.entries.push(entry(name, v));
            }
            Kind::DataOffer => {
                let v = self.data_offer(body);
                defs.offers.entries.push(entry(name, v));
            }
            Kind::KxRule => {
                let v = self.kx_rule(n, body);
                defs.kx_rules.entries.push(entry(name, v));
            }
            Kind::KxAction => {
                let v = self.kx_action(n, body);
                defs.kx_actions.entries.push(entry(name, v));
            }
            Kind::KxOffer => {
                let v = self.kx_offer(Some(n), body);
                defs.kx_offers.entries.push(entry(name, v));
            }
            Kind::LocalEndpoint => {
                let v = self.endpoint(Kind::LocalEndpoint, Some(n), body);
                defs.locals.entries.push(entry(name, v));
            }
            Kind::RemoteEndpoint => {
                let v = self.endpoint(Kind::RemoteEndpoint, Some(n), body);
                defs.remotes.entries.push(entry(name, v));
            }
            Kind::FilterPolicy | Kind::KxPolicy => {}
        }
    }

    /// Sorts a block's lines into attributes by `specs`; unknown, refused
    /// and repeated attributes and misplaced blocks are reported and left
    /// out.
    fn attrs<'n, 'a>(
        &mut self,
        statement: &'static str,
        body: &'n [Node<'a>],
        specs: &[Spec],
        unsupported: &[&str],
        allowed: &'static str,
    ) -> Vec<Attr<'n, 'a>> {
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
        out
    }

    /// Runs `f` and records its error; `None` if it failed.
    fn ok<T>(&mut self, r: Result<T, RawError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    fn missing(
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
    fn inline<T>(&mut self, at: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        let outer = std::mem::replace(&mut self.here, at);
        let v = f(self);
        self.here = outer;
        v
    }

    /// An inline statement's optional name.
    fn inline_name(&mut self, node: &Node<'_>) -> Option<String> {
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
    fn policy_body<'a>(&mut self, kind: Kind, body: &[Node<'a>]) -> Vec<Tok<'a>> {
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
        let attrs = self.attrs(statement, body, &specs, unsupported, allowed);
        let mut out = Vec::new();
        for a in attrs {
            if let Some(t) = self.ok(a.one("the name of a statement")) {
                out.push(t);
            }
        }
        out
    }

    // ---- IP filters ----

    /// IpFilterRule (IBM: ipfilterrulestatement.htm).
    fn filter_rule<'a>(&mut self, name: &str, body: &[Node<'a>]) -> Option<RawFilterRule<'a>> {
        const ALLOWED: &str = "IpSourceAddr, IpDestAddr, IpService or IpServiceRef, IpGenericFilterActionRef, IpDynVpnActionRef";
        const UNSUPPORTED: &[&str] = &[
            "IpSourceAddrRef",
            "IpSourceAddrSet",
            "IpSourceAddrSetRef",
            "IpSourceAddrGroupRef",
            "IpDestAddrRef",
            "IpDestAddrSet",
            "IpDestAddrSetRef",
            "IpDestAddrGroupRef",
            "IpServiceGroupRef",
            "IpTimeConditionRef",
            "IpTimeCondition",
            "IpManVpnActionRef",
            "IpLocalStartActionRef",
            "IpLocalStartAction",
            "IpGenericFilterAction",
            "IpDynVpnAction",
        ];
        let specs = [
            attr("IpSourceAddr"),
            attr("IpDestAddr"),
            inline("IpService", false),
            attr("IpServiceRef"),
            attr("IpGenericFilterActionRef"),
            attr("IpDynVpnActionRef"),
        ];
        let before = self.errors.len();
        let attrs = self.attrs("IpFilterRule", body, &specs, UNSUPPORTED, ALLOWED);
        let mut ok = self.errors.len() == before;
        let mut source = AddrSpec::Any;
        let mut destination = AddrSpec::Any;
        let mut service: Option<Use<'a, Service>> = None;
        let mut service_at: Option<usize> = None;
        let mut generic = None;
        let mut dynvpn = None;
        for a in &attrs {
            match a.name {
                "IpSourceAddr" | "IpDestAddr" => match self.ok(filter_addr(a)) {
                    Some(v) if a.name == "IpSourceAddr" => source = v,
                    Some(v) => destination = v,
                    None => ok = false,
                },
                "IpService" | "IpServiceRef" => {
                    if let Some(first) = service_at {
                        let first_line = self.line(first);
                        self.push((
                            a.at(),
                            ErrorKind::DuplicateAttribute {
                                statement: "IpFilterRule",
                                attribute: "IpService",
                                first_line,
                            },
                        ));
                        ok = false;
                        continue;
                    }
                    service_at = Some(a.at());
                    if a.name == "IpService" {
                        let _ = self.inline_name(a.node);
                        let body = a.node.block.as_deref().unwrap_or_default();
                        let v = self.inline(a.at(), |cx| cx.service(body));
                        service = Some(Use::Inline(v));
                    } else {
                        match self.ok(a.one("IpServiceRef name")) {
                            Some(t) => service = Some(Use::Ref(t)),
                            None => ok = false,
                        }
                    }
                }
                "IpGenericFilterActionRef" => {
                    generic = self.ok(a.one("IpGenericFilterActionRef name"));
                    ok &= generic.is_some();
                }
                _ => {
                    dynvpn = self.ok(a.one("IpDynVpnActionRef name"));
                    ok &= dynvpn.is_some();
                }
            }
        }
        let Some(service) = service else {
            if ok {
                self.missing_in(
                    body,
                    "IpFilterRule",
                    name,
                    "IpService",
                    "IpService { ... } or IpServiceRef name",
                );
            }
            return None;
        };
        let Some(generic) = generic else {
            if ok {
                self.missing_in(
                    body,
                    "IpFilterRule",
                    name,
                    "IpGenericFilterActionRef",
                    "IpGenericFilterActionRef name (an IpGenericFilterAction with IpFilterAction Permit, Deny or IpSec)",
                );
            }
            return None;
        };
        ok.then_some(RawFilterRule {
            source,
            destination,
            service,
            generic,
            dynvpn,
        })
    }

    /// Reports a missing attribute at the end of the block that lacks it
    /// (the last line before its `}`), or at its first line.
    fn missing_in(
        &mut self,
        body: &[Node<'_>],
        statement: &'static str,
        name: &str,
        attribute: &'static str,
        syntax: &'static str,
    ) {
        let at = body.last().map_or(self.here, |n| n.keyword.at);
        self.missing(at, statement, name, attribute, syntax);
    }

    /// IpService (IBM: ipservicestatement.htm).
    fn service(&mut self, body: &[Node<'_>]) -> Option<Service> {
        const ALLOWED: &str = "Protocol, SourcePortRange, DestinationPortRange, IcmpType, IcmpCode, OspfType, Direction, Routing, SecurityClass";
        const UNSUPPORTED: &[&str] = &[
            "SourcePortGranularity",
            "DestinationPortGranularity",
            "ProtocolGranularity",
            "IcmpTypeGranularity",
            "IcmpCodeGranularity",
            "OspfTypeGranularity",
            "MIPv6Type",
            "MIPv6TypeGranularity",
            "FragmentsOnly",
        ];
        let specs = [
            attr("Protocol"),
            attr("SourcePortRange"),
            attr("DestinationPortRange"),
            attr("IcmpType"),
            attr("IcmpCode"),
            attr("OspfType"),
            attr("Direction"),
            attr("Routing"),
            attr("SecurityClass"),
        ];
        let before = self.errors.len();
        let attrs = self.attrs("IpService", body, &specs, UNSUPPORTED, ALLOWED);
        let mut ok = self.errors.len() == before;
        let mut protocol = ProtocolSpec::Any;
        let mut src = PortSpec::Any;
        let mut dst = PortSpec::Any;
        let mut icmp_type = None;
        let mut icmp_code = None;
        let mut ospf_type = None;
        let mut routing = Routing::Local;
        let mut direction = Direction::Bidirectional;
        let mut connect = None;
        let mut security_class = 0u8;
        // Attributes that need a protocol, with where they were written.
        let mut ports_at = None;
        let mut icmp_at = None;
        let mut ospf_at = None;
        for a in &attrs {
            let r: Result<(), RawError> = (|| {
                match a.name {
                    "Protocol" => protocol = service_protocol(a)?,
                    "SourcePortRange" => {
                        src = port_range(a)?;
                        ports_at.get_or_insert(a.at());
                    }
                    "DestinationPortRange" => {
                        dst = port_range(a)?;
                        ports_at.get_or_insert(a.at());
                    }
                    "IcmpType" => {
                        let v = a.one("IcmpType n (0 to 255)")?;
                        icmp_type = Some(number(v, "IcmpType", 0, 255, "0 to 255")? as u8);
                        icmp_at.get_or_insert(a.at());
                    }
                    "IcmpCode" => {
                        let v = a.one("IcmpCode n (0 to 255), after IcmpType")?;
                        icmp_code =
                            Some((number(v, "IcmpCode", 0, 255, "0 to 255")? as u8, a.at()));
                        icmp_at.get_or_insert(a.at());
                    }
                    "OspfType" => {
                        let v = a.one("OspfType n (0 to 255)")?;
                        ospf_type = Some(number(v, "OspfType", 0, 255, "0 to 255")? as u8);
                        ospf_at = Some(a.at());
                    }
                    "Direction" => (direction, connect) = service_direction(a)?,
                    "Routing" => {
                        routing = a.choice(
                            &[
                                ("Local", Routing::Local),
                                ("Routed", Routing::Routed),
                                ("Either", Routing::Either),
                            ],
                            "Routing Local|Routed|Either",
                            "Local, Routed or Either",
                        )?;
                    }
                    _ => {
                        let v = a.one("SecurityClass n (0 to 255)")?;
                        security_class = number(
                            v,
                            "SecurityClass",
                            0,
                            255,
                            "0 (every interface) or a security class 1 to 255",
                        )? as u8;
                    }
                }
                Ok(())
            })();
            if self.ok(r).is_none() {
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let combination = |at: usize, problem: String, allowed: &'static str| {
            (at, ErrorKind::Combination { problem, allowed })
        };
        let protocol = match protocol {
            ProtocolSpec::Tcp { .. } => ProtocolSpec::Tcp { src, dst },
            ProtocolSpec::Udp { .. } => ProtocolSpec::Udp { src, dst },
            ProtocolSpec::Icmp { .. } => {
                if let Some((_, at)) = icmp_code.filter(|_| icmp_type.is_none()) {
                    self.push(combination(
                        at,
                        "IcmpCode without IcmpType".to_owned(),
                        "IcmpType n, then IcmpCode n (a code belongs to one ICMP type)",
                    ));
                    return None;
                }
                ProtocolSpec::Icmp {
                    icmp_type,
                    code: icmp_code.map(|(c, _)| c),
                }
            }
            ProtocolSpec::Ospf { .. } => ProtocolSpec::Ospf { ospf_type },
            other => other,
        };
        let tcp_udp = matches!(
            protocol,
            ProtocolSpec::Tcp { .. } | ProtocolSpec::Udp { .. }
        );
        let checks = [
            (
                ports_at,
                tcp_udp,
                "port ranges",
                "SourcePortRange and DestinationPortRange with Protocol Tcp or Udp",
            ),
            (
                icmp_at,
                matches!(protocol, ProtocolSpec::Icmp { .. }),
                "IcmpType and IcmpCode",
                "IcmpType and IcmpCode with Protocol Icmp",
            ),
            (
                ospf_at,
                matches!(protocol, ProtocolSpec::Ospf { .. }),
                "OspfType",
                "OspfType with Protocol Ospf",
            ),
        ];
        for (at, fits, what, allowed) in checks {
            if let (Some(at), false) = (at, fits) {
                self.push(combination(
                    at,
                    format!("{what} without a protocol that has them"),
                    allowed,
                ));
                return None;
            }
        }
        Some(Service {
            protocol,
            routing,
            direction,
            connect,
            security_class,
        })
    }

    /// IpGenericFilterAction (IBM: ipgenericfilteractionstatement.htm).
    fn generic_action(&mut self, name: &str, body: &[Node<'_>]) -> Option<(Generic, bool)> {
        const ALLOWED: &str = "IpFilterAction, IpFilterLogging";
        let specs = [attr("IpFilterAction"), attr("IpFilterLogging")];
        let before = self.errors.len();
        let attrs = self.attrs(
            "IpGenericFilterAction",
            body,
            &specs,
            &["DiscardAction"],
            ALLOWED,
        );
        let mut action = None;
        let mut log = false;
        let mut ok = self.errors.len() == before;
        for a in &attrs {
            let r = if a.name == "IpFilterAction" {
                a.choice(
                    &[
                        ("Permit", Generic::Permit),
                        ("Deny", Generic::Deny),
                        ("IpSec", Generic::IpSec),
                    ],
                    "IpFilterAction Permit|Deny|IpSec",
                    "Permit, Deny or IpSec",
                )
                .map(|g| action = Some(g))
            } else {
                a.one("IpFilterLogging Yes|No").and_then(|v| {
                    if is_one_of(v, &["LogPermit", "LogDeny"]) {
                        return Err((
                            v.at,
                            ErrorKind::PolicyUnsupported {
                                word: format!("IpFilterLogging {}", v.text),
                                allowed: "IpFilterLogging Yes or No",
                            },
                        ));
                    }
                    log = pick(
                        v,
                        "IpFilterLogging",
                        &[("Yes", true), ("No", false)],
                        "Yes or No",
                    )?;
                    Ok(())
                })
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        let Some(action) = action else {
            self.missing_in(
                body,
                "IpGenericFilterAction",
                name,
                "IpFilterAction",
                "IpFilterAction Permit|Deny|IpSec",
            );
            return None;
        };
        Some((action, log))
    }

    /// IpDynVpnAction (IBM: ipdynvpnactionstatement.htm).
    fn dyn_vpn_action<'a>(&mut self, name: &str, body: &[Node<'a>]) -> Option<RawDynVpn<'a>> {
        const ALLOWED: &str =
            "Initiation, InitiateWithPfs (or Pfs), HowToEncapIKEv2, IpDataOffer, IpDataOfferRef";
        const UNSUPPORTED: &[&str] = &[
            "VpnLife",
            "AcceptablePfs",
            "PassthroughDF",
            "PassthroughDSCP",
        ];
        let specs = [
            attr("Initiation"),
            attr("Pfs"),
            attr("InitiateWithPfs"),
            attr("HowToEncapIKEv2"),
            inline("IpDataOffer", true),
            repeated("IpDataOfferRef"),
        ];
        let before = self.errors.len();
        let attrs = self.attrs("IpDynVpnAction", body, &specs, UNSUPPORTED, ALLOWED);
        let mut ok = self.errors.len() == before;
        let mut initiation = Initiation::Either;
        let mut pfs: Option<(Option<u16>, usize, &'static str)> = None;
        let mut encap_ikev2 = None;
        let mut offers = Vec::new();
        for a in &attrs {
            let r: Result<(), RawError> = match a.name {
                "Initiation" => a
                    .choice(
                        &[
                            ("LocalOnly", Initiation::LocalOnly),
                            ("RemoteOnly", Initiation::RemoteOnly),
                            ("Either", Initiation::Either),
                        ],
                        "Initiation LocalOnly|RemoteOnly|Either",
                        "LocalOnly, RemoteOnly or Either",
                    )
                    .map(|v| initiation = v),
                "Pfs" | "InitiateWithPfs" => {
                    if let Some((_, first, which)) = pfs {
                        let first_line = self.line(first);
                        Err((
                            a.at(),
                            ErrorKind::Combination {
                                problem: format!("{} after {which} (line {first_line})", a.name),
                                allowed: "one of InitiateWithPfs and Pfs (its older spelling)",
                            },
                        ))
                    } else {
                        pfs_group(a).map(|g| pfs = Some((g, a.at(), a.name)))
                    }
                }
                "HowToEncapIKEv2" => a
                    .one("HowToEncapIKEv2 Tunnel|Transport")
                    .and_then(|v| {
                        if v.text.eq_ignore_ascii_case("Either") {
                            return Err((
                                v.at,
                                ErrorKind::PolicyUnsupported {
                                    word: "HowToEncapIKEv2 Either".to_owned(),
                                    allowed: "HowToEncapIKEv2 Tunnel or Transport (an offer has one mode here)",
                                },
                            ));
                        }
                        let m = pick(
                            v,
                            "HowToEncapIKEv2",
                            &[("Tunnel", Mode::Tunnel), ("Transport", Mode::Transport)],
                            "Tunnel or Transport",
                        )?;
                        encap_ikev2 = Some((m, a.at()));
                        Ok(())
                    }),
                "IpDataOffer" => {
                    let _ = self.inline_name(a.node);
                    let body = a.node.block.as_deref().unwrap_or_default();
                    let v = self.inline(a.at(), |cx| cx.data_offer(body));
                    offers.push(Use::Inline(v));
                    Ok(())
                }
                _ => a.one("IpDataOfferRef name").map(|t| offers.push(Use::Ref(t))),
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        if offers.is_empty() {
            self.missing_in(
                body,
                "IpDynVpnAction",
                name,
                "IpDataOffer",
                "IpDataOffer { ... } or IpDataOfferRef name, one or more, most preferred first",
            );
            return None;
        }
        Some(RawDynVpn {
            initiation,
            pfs_group: pfs.and_then(|(g, _, _)| g),
            encap_ikev2,
            offers,
        })
    }

    /// IpDataOffer (IBM: ipdataofferstatement.htm).
    fn data_offer(&mut self, body: &[Node<'_>]) -> Option<Offer> {
        const ALLOWED: &str =
            "HowToEncap, HowToEncrypt, HowToAuth, RefreshLifetimeProposed, RefreshLifesizeProposed";
        const UNSUPPORTED: &[&str] = &["RefreshLifetimeAccepted", "RefreshLifesizeAccepted"];
        let specs = [
            attr("HowToEncap"),
            attr("HowToEncrypt"),
            attr("HowToAuth"),
            attr("RefreshLifetimeProposed"),
            attr("RefreshLifesizeProposed"),
        ];
        let before = self.errors.len();
        let attrs = self.attrs("IpDataOffer", body, &specs, UNSUPPORTED, ALLOWED);
        let mut ok = self.errors.len() == before;
        let mut mode = Mode::Tunnel;
        let mut encap_at = None;
        // `None` is DoNot.
        let mut encryption: (Option<EncAlg>, Option<usize>) = (Some(EncAlg::AesCbc128), None);
        let mut auth: (Protocol, IntegAlg, Option<usize>) =
            (Protocol::Esp, IntegAlg::HmacSha1_96, None);
        let mut lifetime_secs = 240 * 60;
        let mut lifesize_bytes = None;
        for a in &attrs {
            let r: Result<(), RawError> = (|| {
                match a.name {
                    "HowToEncap" => {
                        mode = a.choice(
                            &[("Tunnel", Mode::Tunnel), ("Transport", Mode::Transport)],
                            "HowToEncap Tunnel|Transport",
                            "Tunnel or Transport",
                        )?;
                        encap_at = Some(a.at());
                    }
                    "HowToEncrypt" => encryption = (esp_encryption(a)?, Some(a.at())),
                    "HowToAuth" => {
                        let (p, i) = esp_auth(a)?;
                        auth = (p, i, Some(a.at()));
                    }
                    "RefreshLifetimeProposed" => {
                        let v = a.one("RefreshLifetimeProposed minutes (1 to 65535)")?;
                        lifetime_secs =
                            number(v, "RefreshLifetimeProposed", 1, 65535, "1 to 65535 minutes")?
                                * 60;
                    }
                    _ => lifesize_bytes = lifesize(a)?,
                }
                Ok(())
            })();
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        // Where a bad combination is reported: the line that made it, else
        // the first line of the block.
        let first = body.first().map_or(0, |n| n.keyword.at);
        let (enc, enc_at) = encryption;
        let (protocol, integrity, auth_at) = auth;
        let at = auth_at.or(enc_at).unwrap_or(first);
        let bad = |problem: &str, allowed: &'static str| {
            (
                at,
                ErrorKind::Combination {
                    problem: problem.to_owned(),
                    allowed,
                },
            )
        };
        let err = match (protocol, enc) {
            (Protocol::Ah, Some(_)) => Some(bad(
                "HowToAuth AH with ESP encryption (HowToEncrypt AES_CBC KeyLength 128 when left out) is an AH+ESP bundle, which plexnet's filter policy does not model",
                "HowToAuth AH with HowToEncrypt DoNot, or HowToAuth ESP",
            )),
            (Protocol::Ah, None) if integrity == IntegAlg::None => Some(bad(
                "HowToAuth AH Null authenticates nothing",
                "HowToAuth AH with HMAC_SHA1 or an HMAC_SHA2 algorithm",
            )),
            (Protocol::Esp, Some(e)) if e.is_aead() && integrity != IntegAlg::None => Some(bad(
                "AES_GCM_16 brings its own integrity, so a HowToAuth algorithm (HMAC_SHA1 when left out) cannot join it",
                "HowToAuth ESP Null with AES_GCM_16",
            )),
            (Protocol::Esp, None) if integrity == IntegAlg::None => Some(bad(
                "HowToEncrypt DoNot with HowToAuth ESP Null protects nothing",
                "an encryption, an integrity algorithm, or both",
            )),
            _ => None,
        };
        if let Some(e) = err {
            self.push(e);
            return None;
        }
        Some(Offer {
            offer: DataOffer {
                protocol,
                mode,
                encryption: match protocol {
                    Protocol::Ah => None,
                    Protocol::Esp => Some(enc.unwrap_or(EncAlg::Null)),
                },
                integrity,
                lifetime_secs,
                lifesize_bytes,
            },
            encap_at,
        })
    }

    // ---- key exchange ----

    /// KeyExchangeRule (IBM: keyexchangerulestatement.htm).
    fn kx_rule<'a>(&mut self, name: &str, body: &[Node<'a>]) -> Option<RawKxRule<'a>> {
        const ALLOWED: &str = "LocalSecurityEndpoint or LocalSecurityEndpointRef, RemoteSecurityEndpoint or RemoteSecurityEndpointRef, KeyExchangeActionRef, SharedKey";
        const UNSUPPORTED: &[&str] = &[
            "KeyExchangeAction",
            "SharedKeyRef",
            "LocalSecurityEndpointGroupRef",
            "RemoteSecurityEndpointGroupRef",
        ];
        let specs = [
            inline("LocalSecurityEndpoint", false),
            attr("LocalSecurityEndpointRef"),
            inline("RemoteSecurityEndpoint", false),
            attr("RemoteSecurityEndpointRef"),
            attr("KeyExchangeActionRef"),
            attr("SharedKey"),
        ];
        let before = self.errors.len();
        let attrs = self.attrs("KeyExchangeRule", body, &specs, UNSUPPORTED, ALLOWED);
        let mut ok = self.errors.len() == before;
        let mut local: Option<(Use<'a, SecurityEndpoint>, usize)> = None;
        let mut remote: Option<(Use<'a, SecurityEndpoint>, usize)> = None;
        let mut action = None;
        let mut shared_key = None;
        for a in &attrs {
            let r: Result<(), RawError> = match a.name {
                "LocalSecurityEndpoint"
                | "LocalSecurityEndpointRef"
                | "RemoteSecurityEndpoint"
                | "RemoteSecurityEndpointRef" => {
                    let is_local = a.name.starts_with("Local");
                    let slot = if is_local { &mut local } else { &mut remote };
                    if let Some((_, first)) = slot {
                        let first_line = (self.line_of)(*first);
                        Err((
                            a.at(),
                            ErrorKind::DuplicateAttribute {
                                statement: "KeyExchangeRule",
                                attribute: if is_local {
                                    "LocalSecurityEndpoint"
                                } else {
                                    "RemoteSecurityEndpoint"
                                },
                                first_line,
                            },
                        ))
                    } else if a.node.block.is_some() {
                        let n = self.inline_name(a.node);
                        let kind = if is_local {
                            Kind::LocalEndpoint
                        } else {
                            Kind::RemoteEndpoint
                        };
                        let body = a.node.block.as_deref().unwrap_or_default();
                        let v = self.inline(a.at(), |cx| cx.endpoint(kind, n.as_deref(), body));
                        let slot = if is_local { &mut local } else { &mut remote };
                        *slot = Some((Use::Inline(v), a.at()));
                        Ok(())
                    } else {
                        a.one("a security endpoint's name")
                            .map(|t| *slot = Some((Use::Ref(t), a.at())))
                    }
                }
                "KeyExchangeActionRef" => {
                    a.one("KeyExchangeActionRef name").map(|t| action = Some(t))
                }
                _ => shared(a).map(|k| shared_key = Some(k)),
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        let missing: Option<(&'static str, &'static str)> = if local.is_none() {
            Some((
                "LocalSecurityEndpoint",
                "LocalSecurityEndpoint { ... } or LocalSecurityEndpointRef name",
            ))
        } else if remote.is_none() {
            Some((
                "RemoteSecurityEndpoint",
                "RemoteSecurityEndpoint { ... } or RemoteSecurityEndpointRef name",
            ))
        } else if action.is_none() {
            Some(("KeyExchangeActionRef", "KeyExchangeActionRef name"))
        } else if shared_key.is_none() {
            Some(("SharedKey", "SharedKey Ascii key or SharedKey Hex digits (peers authenticate with pre-shared keys here)"))
        } else {
            None
        };
        if let Some((attribute, syntax)) = missing {
            self.missing_in(body, "KeyExchangeRule", name, attribute, syntax);
            return None;
        }
        Some(RawKxRule {
            local: local?.0,
            remote: remote?.0,
            action: action?,
            shared_key: shared_key?,
        })
    }

    /// LocalSecurityEndpoint and RemoteSecurityEndpoint (IBM:
    /// localsecurityendpointstatement.htm, remotesecurityendpointstatement.htm).
    fn endpoint(
        &mut self,
        kind: Kind,
        name: Option<&str>,
        body: &[Node<'_>],
    ) -> Option<SecurityEndpoint> {
        const ALLOWED: &str = "Identity, Location";
        const UNSUPPORTED: &[&str] = &[
            "LocationRef",
            "LocationSetRef",
            "LocationGroupRef",
            "RemoteIdentityRef",
            "CaLabel",
        ];
        let statement = kind.name();
        let specs = [attr("Identity"), attr("Location")];
        let before = self.errors.len();
        let attrs = self.attrs(statement, body, &specs, UNSUPPORTED, ALLOWED);
        let mut ok = self.errors.len() == before;
        let mut identity = None;
        let mut location = AddrSpec::Any;
        for a in &attrs {
            let r: Result<(), RawError> = if a.name == "Identity" {
                endpoint_identity(a, kind == Kind::LocalEndpoint).map(|v| identity = Some(v))
            } else {
                endpoint_location(a).map(|v| location = v)
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        let Some(identity) = identity else {
            self.missing_in(
                body,
                statement,
                name.unwrap_or("(inline)"),
                "Identity",
                "Identity IpAddr a.b.c.d",
            );
            return None;
        };
        Some(SecurityEndpoint {
            name: name.map(str::to_owned),
            identity,
            location,
        })
    }

    /// KeyExchangeAction (IBM: keyexchangeactionstatement.htm).
    fn kx_action<'a>(&mut self, name: &str, body: &[Node<'a>]) -> Option<RawKxAction<'a>> {
        const ALLOWED: &str = "HowToInitiate, HowToRespond, HowToRespondIKEv1, HowToAuthMe, KeyExchangeOffer, KeyExchangeOfferRef";
        const UNSUPPORTED: &[&str] = &[
            "AllowNat",
            "ReauthInterval",
            "RevocationChecking",
            "CertificateLabel",
            "HowToAuthMeRsa",
        ];
        let specs = [
            attr("HowToInitiate"),
            attr("HowToRespond"),
            attr("HowToRespondIKEv1"),
            attr("HowToAuthMe"),
            inline("KeyExchangeOffer", true),
            repeated("KeyExchangeOfferRef"),
        ];
        let before = self.errors.len();
        let attrs = self.attrs("KeyExchangeAction", body, &specs, UNSUPPORTED, ALLOWED);
        let mut ok = self.errors.len() == before;
        let mut initiate = None;
        let mut auth_me = false;
        let mut offers = Vec::new();
        for a in &attrs {
            let r: Result<(), RawError> = match a.name {
                "HowToInitiate" => a.one("HowToInitiate IKEv2|DoNot").and_then(|v| {
                    if is_one_of(v, &["Main", "Aggressive"]) {
                        return Err(not_implemented(
                            v,
                            "HowToInitiate",
                            "IKEv2 or DoNot (IKEv1 is not implemented here)",
                        ));
                    }
                    initiate = Some(pick(
                        v,
                        "HowToInitiate",
                        &[("IKEv2", true), ("DoNot", false)],
                        "IKEv2 or DoNot",
                    )?);
                    Ok(())
                }),
                "HowToRespond" | "HowToRespondIKEv1" => {
                    a.one("HowToRespond Either").and_then(|v| {
                        if is_one_of(v, &["Main", "Aggressive"]) {
                            return Err(not_implemented(
                                v,
                                a.name,
                                "Either (IKEv1 is not implemented here; plexnet answers IKEv2)",
                            ));
                        }
                        pick(v, a.name, &[("Either", ())], "Either")
                    })
                }
                "HowToAuthMe" => a.one("HowToAuthMe PresharedKey").and_then(|v| {
                    if is_one_of(
                        v,
                        &[
                            "DigitalSignature",
                            "RsaSignature",
                            "ECDSA-256",
                            "ECDSA-384",
                            "ECDSA-521",
                        ],
                    ) {
                        return Err(not_implemented(v, "HowToAuthMe", "PresharedKey"));
                    }
                    pick(v, "HowToAuthMe", &[("PresharedKey", ())], "PresharedKey")?;
                    auth_me = true;
                    Ok(())
                }),
                "KeyExchangeOffer" => {
                    let n = self.inline_name(a.node);
                    let body = a.node.block.as_deref().unwrap_or_default();
                    let v = self.inline(a.at(), |cx| cx.kx_offer(n.as_deref(), body));
                    offers.push(Use::Inline(v));
                    Ok(())
                }
                _ => a
                    .one("KeyExchangeOfferRef name")
                    .map(|t| offers.push(Use::Ref(t))),
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        let missing: Option<(&'static str, &'static str)> = if initiate.is_none() {
            Some((
                "HowToInitiate",
                "HowToInitiate IKEv2 or HowToInitiate DoNot",
            ))
        } else if !auth_me {
            Some(("HowToAuthMe", "HowToAuthMe PresharedKey (IBM's default, DigitalSignature, is not implemented here)"))
        } else if offers.is_empty() {
            Some(("KeyExchangeOffer", "KeyExchangeOffer { ... } or KeyExchangeOfferRef name, one or more, most preferred first"))
        } else {
            None
        };
        if let Some((attribute, syntax)) = missing {
            self.missing_in(body, "KeyExchangeAction", name, attribute, syntax);
            return None;
        }
        Some(RawKxAction {
            initiate: initiate?,
            offers,
        })
    }

    /// KeyExchangeOffer (IBM: keyexchangeofferstatement.htm).
    fn kx_offer(&mut self, name: Option<&str>, body: &[Node<'_>]) -> Option<KeyExchangeOffer> {
        const ALLOWED: &str = "HowToEncrypt, HowToAuthMsgs, HowToVerifyMsgs, PseudoRandomFunction, HowToAuthPeers, DHGroup, RefreshLifetimeProposed, RefreshLifesizeProposed";
        const UNSUPPORTED: &[&str] = &["RefreshLifetimeAccepted", "RefreshLifesizeAccepted"];
        let specs = [
            attr("HowToEncrypt"),
            attr("HowToAuthMsgs"),
            attr("HowToVerifyMsgs"),
            attr("PseudoRandomFunction"),
            attr("HowToAuthPeers"),
            attr("DHGroup"),
            attr("RefreshLifetimeProposed"),
            attr("RefreshLifesizeProposed"),
        ];
        let before = self.errors.len();
        let attrs = self.attrs("KeyExchangeOffer", body, &specs, UNSUPPORTED, ALLOWED);
        let mut ok = self.errors.len() == before;
        let mut enc = "aes128";
        let mut hash: Option<&'static str> = None;
        let mut integ: Option<&'static str> = None;
        let mut prf: Option<&'static str> = None;
        let mut dh = None;
        let mut lifetime_secs = 480 * 60;
        let mut lifesize_bytes = None;
        for a in &attrs {
            let r: Result<(), RawError> = (|| {
                match a.name {
                    "HowToEncrypt" => enc = ike_encryption(a)?,
                    "HowToAuthMsgs" => {
                        let v = a.one("HowToAuthMsgs SHA1|SHA2_256|SHA2_384|SHA2_512")?;
                        if is_one_of(v, &["MD5"]) {
                            return Err(not_implemented(
                                v,
                                "HowToAuthMsgs",
                                "SHA1, SHA2_256, SHA2_384, SHA2_512",
                            ));
                        }
                        hash = Some(pick(
                            v,
                            "HowToAuthMsgs",
                            &[
                                ("SHA1", "sha1"),
                                ("SHA2_256", "sha256"),
                                ("SHA2_384", "sha384"),
                                ("SHA2_512", "sha512"),
                            ],
                            "SHA1, SHA2_256, SHA2_384, SHA2_512",
                        )?);
                    }
                    "HowToVerifyMsgs" => {
                        let v = a.one("HowToVerifyMsgs HMAC_SHA1_96|HMAC_SHA2_256_128|HMAC_SHA2_384_192|HMAC_SHA2_512_256")?;
                        if is_one_of(v, &["AES128_XCBC_96", "HMAC_MD5_96"]) {
                            return Err(not_implemented(v, "HowToVerifyMsgs", "HMAC_SHA1_96, HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256"));
                        }
                        integ = Some(pick(
                            v,
                            "HowToVerifyMsgs",
                            &[
                                ("HMAC_SHA1_96", "sha1"),
                                ("HMAC_SHA2_256_128", "sha256"),
                                ("HMAC_SHA2_384_192", "sha384"),
                                ("HMAC_SHA2_512_256", "sha512"),
                            ],
                            "HMAC_SHA1_96, HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256",
                        )?);
                    }
                    "PseudoRandomFunction" => {
                        let v = a.one("PseudoRandomFunction HMAC_SHA1|HMAC_SHA2_256|HMAC_SHA2_384|HMAC_SHA2_512")?;
                        if is_one_of(v, &["AES128_XCBC", "HMAC_MD5"]) {
                            return Err(not_implemented(
                                v,
                                "PseudoRandomFunction",
                                "HMAC_SHA1, HMAC_SHA2_256, HMAC_SHA2_384, HMAC_SHA2_512",
                            ));
                        }
                        prf = Some(pick(
                            v,
                            "PseudoRandomFunction",
                            &[
                                ("HMAC_SHA1", "prfsha1"),
                                ("HMAC_SHA2_256", "prfsha256"),
                                ("HMAC_SHA2_384", "prfsha384"),
                                ("HMAC_SHA2_512", "prfsha512"),
                            ],
                            "HMAC_SHA1, HMAC_SHA2_256, HMAC_SHA2_384, HMAC_SHA2_512",
                        )?);
                    }
                    "HowToAuthPeers" => {
                        let v = a.one("HowToAuthPeers PresharedKey")?;
                        if is_one_of(
                            v,
                            &[
                                "RsaSignature",
                                "DigitalSignature",
                                "ECDSA-256",
                                "ECDSA-384",
                                "ECDSA-521",
                            ],
                        ) {
                            return Err(not_implemented(v, "HowToAuthPeers", "PresharedKey"));
                        }
                        pick(v, "HowToAuthPeers", &[("PresharedKey", ())], "PresharedKey")?;
                    }
                    "DHGroup" => {
                        let v = a.one("DHGroup Group14|Group19|Group20")?;
                        if is_one_of(v, &["Group1", "Group2", "Group5", "Group21", "Group24"]) {
                            return Err(not_implemented(v, "DHGroup", "Group14, Group19, Group20"));
                        }
                        dh = Some(pick(
                            v,
                            "DHGroup",
                            &[
                                ("Group14", "modp2048"),
                                ("Group19", "ecp256"),
                                ("Group20", "ecp384"),
                            ],
                            "Group14, Group19, Group20",
                        )?);
                    }
                    "RefreshLifetimeProposed" => {
                        let v = a.one("RefreshLifetimeProposed minutes (1 to 65535)")?;
                        lifetime_secs =
                            number(v, "RefreshLifetimeProposed", 1, 65535, "1 to 65535 minutes")?
                                * 60;
                    }
                    _ => lifesize_bytes = lifesize(a)?,
                }
                Ok(())
            })();
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        let Some(dh) = dh else {
            self.missing_in(
                body,
                "KeyExchangeOffer",
                name.unwrap_or("(inline)"),
                "DHGroup",
                "DHGroup Group14, Group19 or Group20",
            );
            return None;
        };
        let integ = integ.or(hash).unwrap_or("sha1");
        let prf = prf
            .or(hash.map(|h| match h {
                "sha256" => "prfsha256",
                "sha384" => "prfsha384",
                "sha512" => "prfsha512",
                _ => "prfsha1",
            }))
            .unwrap_or("prfsha1");
        Some(KeyExchangeOffer {
            name: name.map(str::to_owned),
            proposal: format!("{enc}-{integ}-{prf}-{dh}"),
            lifetime_secs,
            lifesize_bytes,
        })
    }

    // ---- following references ----

    /// Finds `t` among the statements of `kind`, reporting an unknown name
    /// or one of another kind. `None` also when the statement itself had
    /// errors (already reported).
    fn find<'t, T>(
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
        let others: [(Kind, bool); 10] = [
            (Kind::FilterRule, defs.rules.position(t.text).is_some()),
            (Kind::Service, defs.services.position(t.text).is_some()),
            (
                Kind::GenericAction,
                defs.generics.position(t.text).is_some(),
            ),
            (Kind::DynVpnAction, defs.dynvpns.position(t.text).is_some()),
            (Kind::DataOffer, defs.offers.position(t.text).is_some()),
            (Kind::KxRule, defs.kx_rules.position(t.text).is_some()),
            (Kind::KxAction, defs.kx_actions.position(t.text).is_some()),
            (Kind::KxOffer, defs.kx_offers.position(t.text).is_some()),
            (Kind::LocalEndpoint, defs.locals.position(t.text).is_some()),
            (
                Kind::RemoteEndpoint,
                defs.remotes.position(t.text).is_some(),
            ),
        ];
        let kind_name = kind.name();
        if let Some((other, _)) = others.iter().find(|(k, found)| *found && *k != kind) {
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

    /// The IpFilterRules in force, resolved, in filter-table order.
    fn resolve_filter_rules(&mut self, defs: &Defs<'_>) -> Vec<FilterRule> {
        let order: Vec<(usize, usize)> = match &defs.filter_policy {
            Some(refs) => {
                let mut seen: Vec<(usize, usize)> = Vec::new();
                for t in refs {
                    let Some(i) = defs.rules.position(t.text) else {
                        self.find(defs, &defs.rules, Kind::FilterRule, "IpFilterRuleRef", *t);
                        continue;
                    };
                    if let Some(&(_, first)) = seen.iter().find(|(j, _)| *j == i) {
                        let first_line = self.line(first);
                        self.push((
                            t.at,
                            ErrorKind::DuplicateAttribute {
                                statement: "IpFilterPolicy",
                                attribute: "IpFilterRuleRef of one rule",
                                first_line,
                            },
                        ));
                        continue;
                    }
                    seen.push((i, t.at));
                }
                seen
            }
            None => (0..defs.rules.entries.len()).map(|i| (i, 0)).collect(),
        };
        let mut out = Vec::new();
        for (i, _) in order {
            let (name, _, raw) = &defs.rules.entries[i];
            let Some(raw) = raw else { continue };
            if let Some(rule) = self.resolve_filter_rule(defs, name, raw) {
                out.push(rule);
            }
        }
        out
    }

    fn resolve_filter_rule(
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
        let action = match (generic, raw.dynvpn) {
            (Generic::IpSec, None) => {
                self.push((
                    raw.generic.at,
                    ErrorKind::Combination {
                        problem: format!(
                            "IpFilterRule {name}: IpGenericFilterAction {} says IpSec but the rule has no IpDynVpnActionRef",
                            raw.generic.text
                        ),
                        allowed: "IpDynVpnActionRef name with IpFilterAction IpSec",
                    },
                ));
                return None;
            }
            (Generic::Permit | Generic::Deny, Some(t)) => {
                self.push((
                    t.at,
                    ErrorKind::Combination {
                        problem: format!(
                            "IpFilterRule {name}: IpDynVpnActionRef with IpGenericFilterAction {}, which does not say IpSec",
                            raw.generic.text
                        ),
                        allowed: "IpDynVpnActionRef only with IpFilterAction IpSec",
                    },
                ));
                return None;
            }
            (Generic::Permit, None) => FilterAction::Permit,
            (Generic::Deny, None) => FilterAction::Deny,
            (Generic::IpSec, Some(t)) => FilterAction::Ipsec(self.resolve_dyn_vpn(defs, t)?),
        };
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

    fn resolve_dyn_vpn(&mut self, defs: &Defs<'_>, t: Tok<'_>) -> Option<DynVpnAction> {
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
            let o = match u {
                Use::Inline(o) => o.clone(),
                Use::Ref(r) => self
                    .find(defs, &defs.offers, Kind::DataOffer, "IpDataOfferRef", *r)
                    .cloned(),
            };
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
    fn resolve_kx_rules(&mut self, defs: &Defs<'_>) -> Vec<KeyExchangeRule> {
        let order: Vec<usize> = match &defs.kx_policy {
            Some(refs) => {
                let mut seen: Vec<(usize, usize)> = Vec::new();
                for t in refs {
                    let Some(i) = defs.kx_rules.position(t.text) else {
                        self.find(defs, &defs.kx_rules, Kind::KxRule, "KeyExchangeRuleRef", *t);
                        continue;
                    };
                    if let Some(&(_, first)) = seen.iter().find(|(j, _)| *j == i) {
                        let first_line = self.line(first);
                        self.push((
                            t.at,
                            ErrorKind::DuplicateAttribute {
                                statement: "KeyExchangePolicy",
                                attribute: "KeyExchangeRuleRef of one rule",
                                first_line,
                            },
                        ));
                        continue;
                    }
                    seen.push((i, t.at));
                }
                seen.into_iter().map(|(i, _)| i).collect()
            }
            None => (0..defs.kx_rules.entries.len()).collect(),
        };
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

    fn resolve_endpoint(
        &mut self,
        defs: &Defs<'_>,
        u: &Use<'_, SecurityEndpoint>,
        kind: Kind,
    ) -> Option<SecurityEndpoint> {
        match u {
            Use::Inline(e) => e.clone(),
            Use::Ref(t) => {
                let (table, attribute) = if kind == Kind::LocalEndpoint {
                    (&defs.locals, "LocalSecurityEndpointRef")
                } else {
                    (&defs.remotes, "RemoteSecurityEndpointRef")
                };
                self.find(defs, table, kind, attribute, *t).cloned()
            }
        }
    }

    fn resolve_kx_action(&mut self, defs: &Defs<'_>, t: Tok<'_>) -> Option<KeyExchangeAction> {
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
            let o = match u {
                Use::Inline(o) => o.clone(),
                Use::Ref(r) => self
                    .find(
                        defs,
                        &defs.kx_offers,
                        Kind::KxOffer,
                        "KeyExchangeOfferRef",
                        *r,
                    )
                    .cloned(),
            };
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

/// A table entry for the statement named by `name`.
fn entry<T>(name: Tok<'_>, v: Option<T>) -> (String, usize, Option<T>) {
    (name.text.to_owned(), name.at, v)
}

// ---- values ----

/// IpSourceAddr / IpDestAddr: All, All4, an address, a prefix or a range.
fn filter_addr(a: &Attr<'_, '_>) -> Result<AddrSpec, RawError> {
    const SYNTAX: &str = "All, All4, a.b.c.d, a.b.c.d/len or a.b.c.d-a.b.c.d";
    let v = a.one(SYNTAX)?;
    if is_one_of(v, &["All", "All4"]) {
        return Ok(AddrSpec::Any);
    }
    if is_one_of(v, &["All6"]) || v.text.contains(':') {
        return Err((
            v.at,
            ErrorKind::PolicyUnsupported {
                word: format!("{} {}", a.name, v.text),
                allowed: "IPv4 only: All, All4, a.b.c.d, a.b.c.d/len or a.b.c.d-a.b.c.d",
            },
        ));
    }
    addr_spec(v)
}

/// An address, prefix or range (not `*`, which IBM spells All).
fn addr_spec(v: Tok<'_>) -> Result<AddrSpec, RawError> {
    (v.text != "*")
        .then(|| parse_addr_spec(v.text))
        .flatten()
        .ok_or((
            v.at,
            ErrorKind::BadAddrSpec {
                text: v.text.to_owned(),
            },
        ))
}

/// Identity IpAddr a.b.c.d (the remote one may be a prefix, a range or All).
fn endpoint_identity(a: &Attr<'_, '_>, local: bool) -> Result<AddrSpec, RawError> {
    const SYNTAX: &str = "Identity IpAddr a.b.c.d";
    let kind = a.first(SYNTAX)?;
    if is_one_of(kind, &["KeyID", "Fqdn", "UserAtFqdn", "X500dn"]) {
        return Err(not_implemented(
            kind,
            "Identity type",
            "IpAddr (IKE identities are IP addresses here, ID_IPV4_ADDR)",
        ));
    }
    pick(kind, "Identity type", &[("IpAddr", ())], "IpAddr")?;
    let v = a.arg(1, SYNTAX)?;
    a.no_more(2, SYNTAX)?;
    if local {
        return parse_ipv4(v.text).map(AddrSpec::host).ok_or((
            v.at,
            ErrorKind::BadAddress {
                text: v.text.to_owned(),
            },
        ));
    }
    if is_one_of(v, &["All"]) {
        return Ok(AddrSpec::Any);
    }
    addr_spec(v)
}

/// Location: an address, prefix or range; Any or Any4 for any.
fn endpoint_location(a: &Attr<'_, '_>) -> Result<AddrSpec, RawError> {
    const SYNTAX: &str = "Location a.b.c.d, a.b.c.d/len, a.b.c.d-a.b.c.d, Any or Any4";
    let v = a.one(SYNTAX)?;
    if is_one_of(v, &["Any", "Any4"]) {
        return Ok(AddrSpec::Any);
    }
    if is_one_of(v, &["Any6"]) || v.text.contains(':') {
        return Err((
            v.at,
            ErrorKind::PolicyUnsupported {
                word: format!("Location {}", v.text),
                allowed: "IPv4 only: a.b.c.d, a.b.c.d/len, a.b.c.d-a.b.c.d, Any or Any4",
            },
        ));
    }
    addr_spec(v)
}

/// SharedKey Ascii key | Hex digits.
fn shared(a: &Attr<'_, '_>) -> Result<Vec<u8>, RawError> {
    const SYNTAX: &str = "SharedKey Ascii key or SharedKey Hex digits";
    let how = a.first(SYNTAX)?;
    if is_one_of(how, &["Ebcdic"]) {
        return Err((
            how.at,
            ErrorKind::PolicyUnsupported {
                word: "SharedKey Ebcdic".to_owned(),
                allowed: "SharedKey Ascii key or SharedKey Hex digits (the peers here are Linux hosts, which use the key's bytes as typed)",
            },
        ));
    }
    let hex = pick(
        how,
        "SharedKey encoding",
        &[("Ascii", false), ("Hex", true)],
        "Ascii or Hex",
    )?;
    let v = a.arg(1, SYNTAX)?;
    a.no_more(2, SYNTAX)?;
    if !hex {
        return Ok(v.text.as_bytes().to_vec());
    }
    let digits = v
        .text
        .strip_prefix("0x")
        .or_else(|| v.text.strip_prefix("0X"))
        .unwrap_or(v.text);
    let bytes: Option<Vec<u8>> = (digits.len() % 2 == 0 && !digits.is_empty())
        .then(|| {
            (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    bytes.ok_or((
        v.at,
        ErrorKind::BadKeyHex {
            field: "SharedKey Hex",
        },
    ))
}

/// IpService Protocol.
fn service_protocol(a: &Attr<'_, '_>) -> Result<ProtocolSpec, RawError> {
    const SYNTAX: &str = "Protocol All|Tcp|6|Udp|17|Icmp|1|Ospf|89|Igmp|Ip|Ipip|Ah|Esp|number";
    const ALLOWED: &str =
        "All, Tcp, Udp, Icmp, Ospf, Igmp, Ip, Ipip, Ah, Esp, or a number 0 to 255";
    let v = a.one(SYNTAX)?;
    if is_one_of(v, &["Icmpv6", "MIPv6"]) {
        return Err((
            v.at,
            ErrorKind::PolicyUnsupported {
                word: format!("Protocol {}", v.text),
                allowed: "IPv4 protocols: All, Tcp, Udp, Icmp, Ospf, Igmp, Ip, Ipip, Ah, Esp, or a number",
            },
        ));
    }
    if is_one_of(v, &["All"]) {
        return Ok(ProtocolSpec::Any);
    }
    let n = if v.text.bytes().all(|b| b.is_ascii_digit()) {
        number(v, "protocol", 0, 255, ALLOWED)? as u8
    } else {
        pick(
            v,
            "Protocol",
            &[
                ("Tcp", 6),
                ("Udp", 17),
                ("Icmp", 1),
                ("Ospf", 89),
                ("Igmp", 2),
                ("Ip", 4),
                ("Ipip", 94),
                ("Ah", 51),
                ("Esp", 50),
            ],
            ALLOWED,
        )?
    };
    Ok(match n {
        6 => ProtocolSpec::Tcp {
            src: PortSpec::Any,
            dst: PortSpec::Any,
        },
        17 => ProtocolSpec::Udp {
            src: PortSpec::Any,
            dst: PortSpec::Any,
        },
        1 => ProtocolSpec::Icmp {
            icmp_type: None,
            code: None,
        },
        89 => ProtocolSpec::Ospf { ospf_type: None },
        n => ProtocolSpec::Number(n),
    })
}

/// SourcePortRange / DestinationPortRange: `n`, `n m`, `n-m` or `n:m`;
/// 0 alone (IBM's default) is every port.
fn port_range(a: &Attr<'_, '_>) -> Result<PortSpec, RawError> {
    const SYNTAX: &str = "a port n, or a range n m (also n-m or n:m); 0 for every port";
    const ALLOWED: &str = "0 (every port) or 1 to 65535, a range's last port at or above its first";
    let v = a.first(SYNTAX)?;
    let (lo, hi, hi_at) = match v.text.split_once(['-', ':']) {
        Some((lo, hi)) => {
            a.no_more(1, SYNTAX)?;
            (lo, Some(hi), v.at + lo.len() + 1)
        }
        None => match a.node.args.get(1) {
            Some(m) => {
                a.no_more(2, SYNTAX)?;
                (v.text, Some(m.text), m.at)
            }
            None => (v.text, None, v.at),
        },
    };
    let first = number(Tok { text: lo, at: v.at }, "port", 0, 65535, ALLOWED)? as u16;
    let Some(hi) = hi else {
        return Ok(if first == 0 {
            PortSpec::Any
        } else {
            PortSpec::single(first)
        });
    };
    let last = number(
        Tok {
            text: hi,
            at: hi_at,
        },
        "port",
        0,
        65535,
        ALLOWED,
    )? as u16;
    if last < first {
        return Err((
            hi_at,
            ErrorKind::OutOfRange {
                what: "last port",
                value: hi.to_owned(),
                allowed: ALLOWED,
            },
        ));
    }
    Ok(PortSpec::Range { first, last })
}

/// IpService Direction.
fn service_direction(a: &Attr<'_, '_>) -> Result<(Direction, Option<TcpConnect>), RawError> {
    const SYNTAX: &str =
        "Direction Bidirectional [InboundConnect|OutboundConnect], Inbound or Outbound";
    let v = a.first(SYNTAX)?;
    let d = pick(
        v,
        "Direction",
        &[
            ("Bidirectional", Direction::Bidirectional),
            ("Inbound", Direction::Inbound),
            ("Outbound", Direction::Outbound),
        ],
        "Bidirectional, Inbound or Outbound",
    )?;
    let connect = match a.node.args.get(1) {
        Some(c) if d == Direction::Bidirectional => {
            a.no_more(2, SYNTAX)?;
            Some(pick(
                *c,
                "Direction Bidirectional",
                &[
                    ("InboundConnect", TcpConnect::Inbound),
                    ("OutboundConnect", TcpConnect::Outbound),
                ],
                "InboundConnect or OutboundConnect after Bidirectional",
            )?)
        }
        _ => {
            a.no_more(1, SYNTAX)?;
            None
        }
    };
    Ok((d, connect))
}

/// Pfs / InitiateWithPfs: the IANA group number, `None` for None.
fn pfs_group(a: &Attr<'_, '_>) -> Result<Option<u16>, RawError> {
    let v = a.one("InitiateWithPfs None|Group14|Group19|Group20")?;
    if is_one_of(v, &["Group1", "Group2", "Group5", "Group21", "Group24"]) {
        return Err(not_implemented(
            v,
            a.name,
            "None, Group14, Group19, Group20",
        ));
    }
    pick(
        v,
        a.name,
        &[
            ("None", None),
            ("Group14", Some(14)),
            ("Group19", Some(19)),
            ("Group20", Some(20)),
        ],
        "None, Group14, Group19, Group20",
    )
}

/// AES_CBC / AES_GCM_16 `KeyLength n` after the algorithm word.
fn key_length(a: &Attr<'_, '_>, syntax: &'static str) -> Result<bool, RawError> {
    let k = a.arg(1, syntax)?;
    pick(
        k,
        "HowToEncrypt",
        &[("KeyLength", ())],
        "KeyLength after the algorithm",
    )?;
    let n = a.arg(2, syntax)?;
    a.no_more(3, syntax)?;
    match number(n, "KeyLength", 128, 256, "128 or 256")? {
        128 => Ok(false),
        256 => Ok(true),
        _ => Err((
            n.at,
            ErrorKind::OutOfRange {
                what: "KeyLength",
                value: n.text.to_owned(),
                allowed: "128 or 256",
            },
        )),
    }
}

/// IpDataOffer HowToEncrypt; `None` for DoNot.
fn esp_encryption(a: &Attr<'_, '_>) -> Result<Option<EncAlg>, RawError> {
    const SYNTAX: &str =
        "HowToEncrypt AES_CBC KeyLength 128|256, AES_GCM_16 KeyLength 128|256, AES or DoNot";
    const IMPLEMENTED: &str = "AES_CBC KeyLength 128|256, AES_GCM_16 KeyLength 128|256, AES, DoNot";
    let v = a.first(SYNTAX)?;
    if is_one_of(v, &["DES", "3DES"]) {
        return Err(not_implemented(v, "HowToEncrypt", IMPLEMENTED));
    }
    let alg = pick(
        v,
        "HowToEncrypt",
        &[("AES_CBC", 0), ("AES_GCM_16", 1), ("AES", 2), ("DoNot", 3)],
        IMPLEMENTED,
    )?;
    Ok(match alg {
        0 => Some(if key_length(a, SYNTAX)? {
            EncAlg::AesCbc256
        } else {
            EncAlg::AesCbc128
        }),
        1 => Some(if key_length(a, SYNTAX)? {
            EncAlg::AesGcm16_256
        } else {
            EncAlg::AesGcm16_128
        }),
        2 => {
            a.no_more(1, SYNTAX)?;
            Some(EncAlg::AesCbc128)
        }
        _ => {
            a.no_more(1, SYNTAX)?;
            None
        }
    })
}

/// IpDataOffer HowToAuth.
fn esp_auth(a: &Attr<'_, '_>) -> Result<(Protocol, IntegAlg), RawError> {
    const SYNTAX: &str =
        "HowToAuth ESP|AH HMAC_SHA1|HMAC_SHA2_256_128|HMAC_SHA2_384_192|HMAC_SHA2_512_256|Null";
    const IMPLEMENTED: &str =
        "HMAC_SHA1 (or HMAC_SHA), HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256, Null";
    let p = a.first(SYNTAX)?;
    let protocol = pick(
        p,
        "HowToAuth",
        &[("ESP", Protocol::Esp), ("AH", Protocol::Ah)],
        "ESP or AH, then the algorithm",
    )?;
    let v = a.arg(1, SYNTAX)?;
    a.no_more(2, SYNTAX)?;
    if is_one_of(
        v,
        &["HMAC_MD5", "AES128_XCBC_96", "AES_GMAC_128", "AES_GMAC_256"],
    ) {
        return Err(not_implemented(v, "HowToAuth", IMPLEMENTED));
    }
    let integ = pick(
        v,
        "HowToAuth",
        &[
            ("HMAC_SHA1", IntegAlg::HmacSha1_96),
            ("HMAC_SHA", IntegAlg::HmacSha1_96),
            ("HMAC_SHA2_256_128", IntegAlg::HmacSha256_128),
            ("HMAC_SHA2_384_192", IntegAlg::HmacSha384_192),
            ("HMAC_SHA2_512_256", IntegAlg::HmacSha512_256),
            ("Null", IntegAlg::None),
        ],
        IMPLEMENTED,
    )?;
    Ok((protocol, integ))
}

/// KeyExchangeOffer HowToEncrypt, as a strongSwan proposal keyword.
fn ike_encryption(a: &Attr<'_, '_>) -> Result<&'static str, RawError> {
    const SYNTAX: &str = "HowToEncrypt AES_CBC KeyLength 128|256 or AES";
    const IMPLEMENTED: &str = "AES_CBC KeyLength 128|256, AES";
    let v = a.first(SYNTAX)?;
    if is_one_of(v, &["DES", "3DES"]) {
        return Err(not_implemented(v, "HowToEncrypt", IMPLEMENTED));
    }
    if pick(
        v,
        "HowToEncrypt",
        &[("AES_CBC", true), ("AES", false)],
        IMPLEMENTED,
    )? {
        Ok(if key_length(a, SYNTAX)? {
            "aes256"
        } else {
            "aes128"
        })
    } else {
        a.no_more(1, SYNTAX)?;
        Ok("aes128")
    }
}

/// RefreshLifesizeProposed KB|None, in bytes.
fn lifesize(a: &Attr<'_, '_>) -> Result<Option<u64>, RawError> {
    let v = a.one("RefreshLifesizeProposed kilobytes (1 to 4294967295) or None")?;
    if is_one_of(v, &["None"]) {
        return Ok(None);
    }
    Ok(Some(
        number(
            v,
            "RefreshLifesizeProposed",
            1,
            u64::from(u32::MAX),
            "1 to 4294967295 kilobytes, or None",
        )? * 1024,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::error::line_col;
    use super::*;
    use std::net::Ipv4Addr;

    /// Parses `text` with lines counted in `text` itself.
    fn parse(text: &str) -> (ParsedPolicy, Vec<RawError>) {
        super::parse(text, &|at| line_col(text, at).0)
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    /// A small complete policy: one rule requiring IPsec, one permit, one
    /// deny, and a key-exchange rule. Tests replace pieces of it.
    const BASE: &str = "\
IpFilterRule web
{
  IpSourceAddr 198.18.0.100
  IpDestAddr 198.18.1.0/24
  IpService
  {
    Protocol Tcp
    SourcePortRange 80
    DestinationPortRange 1024 65535
    Direction Bidirectional InboundConnect
    Routing Local
  }
  IpGenericFilterActionRef ipsec
  IpDynVpnActionRef esp
}
IpFilterRule ike
{
  IpSourceAddr 198.18.0.100
  IpServiceRef ike
  IpGenericFilterActionRef permit
}
IpFilterRule rest
{
  IpServiceRef all
  IpGenericFilterActionRef deny
}
IpService ike
{
  Protocol udp
  SourcePortRange 500
}
IpService all
{
  Protocol All
}
IpGenericFilterAction ipsec
{
  IpFilterAction IpSec
}
IpGenericFilterAction permit
{
  IpFilterAction Permit
}
IpGenericFilterAction deny
{
  IpFilterAction Deny
  IpFilterLogging Yes
}
IpDynVpnAction esp
{
  Initiation Either
  IpDataOfferRef cbc
  IpDataOffer
  {
    HowToEncrypt AES_GCM_16 KeyLength 128
    HowToAuth ESP Null
  }
}
IpDataOffer cbc
{
  HowToEncap Tunnel
  HowToEncrypt AES_CBC KeyLength 128
  HowToAuth ESP HMAC_SHA1
  RefreshLifetimeProposed 60
  RefreshLifesizeProposed 1000
}
KeyExchangeRule clients
{
  LocalSecurityEndpoint
  {
    Identity IpAddr 198.18.0.100
    Location 198.18.0.100
  }
  RemoteSecurityEndpointRef net1
  KeyExchangeActionRef ikev2
  SharedKey Ascii plexnet-figure4
}
RemoteSecurityEndpoint net1
{
  Identity IpAddr 198.18.1.0/24
  Location 198.18.1.0/24
}
KeyExchangeAction ikev2
{
  HowToInitiate IKEv2
  HowToRespond Either
  HowToAuthMe PresharedKey
  KeyExchangeOfferRef ike1
}
KeyExchangeOffer ike1
{
  HowToEncrypt AES_CBC KeyLength 128
  HowToVerifyMsgs HMAC_SHA1_96
  PseudoRandomFunction HMAC_SHA1
  HowToAuthPeers PresharedKey
  DHGroup Group14
  RefreshLifetimeProposed 240
}
";

    fn ok(text: &str) -> ParsedPolicy {
        let (p, e) = parse(text);
        assert!(e.is_empty(), "unexpected errors {e:?}");
        p
    }

    /// BASE with `from` replaced by `to`.
    fn base_with(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "{from:?} not in BASE");
        BASE.replacen(from, to, 1)
    }

    /// The single error of `text`: the word it points at, its line and
    /// column, and its message.
    fn err(text: &str) -> (String, usize, usize, String) {
        let (_, e) = parse(text);
        assert_eq!(e.len(), 1, "expected one error, got {e:?}");
        let (at, kind) = e.into_iter().next().expect("one error");
        let word: String = text[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let (line, col) = line_col(text, at);
        (word, line, col, kind.to_string())
    }

    /// The error of BASE with `from` replaced by `to`, which must point at
    /// the first word of `to` that is marked with `‸` (the mark is removed).
    fn check(from: &str, to: &str, message: &str) {
        let mark = to.find('‸').expect("a mark");
        let text = base_with(from, &to.replacen('‸', "", 1));
        let at = BASE.find(from).expect("in BASE") + mark;
        let (_, line, col, m) = err(&text);
        assert_eq!(m, message);
        assert_eq!((line, col), line_col(&text, at), "position of: {message}");
    }

    #[test]
    fn base_resolves() {
        let p = ok(BASE);
        let names: Vec<&str> = p.filter_rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["web", "ike", "rest"]);
        let web = &p.filter_rules[0];
        assert_eq!(web.conditions.source, AddrSpec::host(ip("198.18.0.100")));
        assert_eq!(
            web.conditions.destination,
            AddrSpec::Prefix {
                addr: ip("198.18.1.0"),
                len: 24
            }
        );
        assert_eq!(
            web.conditions.protocol,
            ProtocolSpec::Tcp {
                src: PortSpec::single(80),
                dst: PortSpec::Range {
                    first: 1024,
                    last: 65535
                }
            }
        );
        assert_eq!(web.conditions.connect, Some(TcpConnect::Inbound));
        let FilterAction::Ipsec(vpn) = &web.action else {
            panic!("not ipsec: {:?}", web.action)
        };
        assert_eq!(vpn.name, "esp");
        assert_eq!(vpn.initiation, Initiation::Either);
        assert_eq!(vpn.pfs_group, None);
        assert_eq!(
            vpn.offers,
            [
                DataOffer {
                    protocol: Protocol::Esp,
                    mode: Mode::Tunnel,
                    encryption: Some(EncAlg::AesCbc128),
                    integrity: IntegAlg::HmacSha1_96,
                    lifetime_secs: 3600,
                    lifesize_bytes: Some(1_024_000),
                },
                DataOffer {
                    protocol: Protocol::Esp,
                    mode: Mode::Tunnel,
                    encryption: Some(EncAlg::AesGcm16_128),
                    integrity: IntegAlg::None,
                    lifetime_secs: 240 * 60,
                    lifesize_bytes: None,
                }
            ]
        );
        let ike = &p.filter_rules[1];
        assert_eq!(ike.action, FilterAction::Permit);
        assert_eq!(ike.conditions.destination, AddrSpec::Any);
        assert_eq!(
            ike.conditions.protocol,
            ProtocolSpec::Udp {
                src: PortSpec::single(500),
                dst: PortSpec::Any
            }
        );
        let rest = &p.filter_rules[2];
        assert_eq!(
            (rest.action.clone(), rest.log, rest.conditions.protocol),
            (FilterAction::Deny, true, ProtocolSpec::Any)
        );
        assert!(p.filter_rules.iter().all(|r| r.validate().is_ok()));

        assert_eq!(p.key_exchange_rules.len(), 1);
        let k = &p.key_exchange_rules[0];
        assert_eq!(k.name, "clients");
        assert_eq!(k.local.name, None);
        assert_eq!(k.local.identity, AddrSpec::host(ip("198.18.0.100")));
        assert_eq!(k.remote.name.as_deref(), Some("net1"));
        assert_eq!(k.shared_key, b"plexnet-figure4");
        assert!(k.action.initiate);
        assert_eq!(k.action.offers.len(), 1);
        let o = &k.action.offers[0];
        assert_eq!(o.proposal, "aes128-sha1-prfsha1-modp2048");
        assert_eq!(o.lifetime_secs, 240 * 60);
        let pc = o.proposal_config().expect("an implemented proposal");
        assert_eq!(pc.dh, [crate::ike::dh::DhGroup::Modp2048]);
        assert!(!format!("{k:?}").contains("plexnet-figure4"));
    }

    #[test]
    fn filter_policy_orders_and_selects() {
        let text = format!(
            "IpFilterPolicy\n{{\n  IpFilterRuleRef rest\n  IpFilterRuleRef web\n}}\n{BASE}"
        );
        let p = ok(&text);
        let names: Vec<&str> = p.filter_rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["rest", "web"]);
        let text = format!("KeyExchangePolicy\n{{\n}}\n{BASE}");
        assert!(ok(&text).key_exchange_rules.is_empty());
        let (w, line, col, m) = err(&format!(
            "IpFilterPolicy\n{{\n  IpFilterRuleRef webb\n}}\n{BASE}"
        ));
        assert_eq!((w.as_str(), line, col), ("webb", 3, 19));
        assert_eq!(m, "IpFilterRuleRef `webb` names no IpFilterRule statement; allowed: the name of a IpFilterRule statement: web, ike, rest");
        let (w, line, _, m) = err(&format!(
            "IpFilterPolicy\n{{\n  IpFilterRuleRef web\n  IpFilterRuleRef web\n}}\n{BASE}"
        ));
        assert_eq!((w.as_str(), line), ("web", 4));
        assert!(m.contains("first at line 3"), "{m}");
        let (w, _, _, m) = err(&format!(
            "IpFilterPolicy\n{{\n  FilterLogging On\n}}\n{BASE}"
        ));
        assert_eq!(w, "FilterLogging");
        assert!(
            m.starts_with("IpFilterPolicy FilterLogging is not supported by plexnet"),
            "{m}"
        );
        let (w, line, _, m) = err(&format!(
            "IpFilterPolicy\n{{\n}}\nIpFilterPolicy\n{{\n}}\n{BASE}"
        ));
        assert_eq!((w.as_str(), line), ("IpFilterPolicy", 4));
        assert!(m.contains("defined twice (first at line 1)"), "{m}");
    }

    #[test]
    fn ip_service_forms() {
        let svc = |body: &str| {
            let text = base_with("  Protocol udp\n  SourcePortRange 500\n", body);
            let p = ok(&text);
            p.filter_rules[1].conditions
        };
        let c = svc("  Protocol 17\n  DestinationPortRange 4500-4501\n  Direction Inbound\n  Routing Either\n  SecurityClass 9\n");
        assert_eq!(
            c.protocol,
            ProtocolSpec::Udp {
                src: PortSpec::Any,
                dst: PortSpec::Range {
                    first: 4500,
                    last: 4501
                }
            }
        );
        assert_eq!(
            (c.direction, c.routing, c.security_class),
            (Direction::Inbound, Routing::Either, 9)
        );
        let c = svc("  protocol TCP\n  sourceportrange 1024:2048\n  direction bidirectional outboundconnect\n");
        assert_eq!(
            c.protocol,
            ProtocolSpec::Tcp {
                src: PortSpec::Range {
                    first: 1024,
                    last: 2048
                },
                dst: PortSpec::Any
            }
        );
        assert_eq!(c.connect, Some(TcpConnect::Outbound));
        let c = svc("  Protocol Icmp\n  IcmpType 8\n  IcmpCode 0\n");
        assert_eq!(
            c.protocol,
            ProtocolSpec::Icmp {
                icmp_type: Some(8),
                code: Some(0)
            }
        );
        let c = svc("  Protocol Ospf\n  OspfType 1\n");
        assert_eq!(c.protocol, ProtocolSpec::Ospf { ospf_type: Some(1) });
        let c = svc("  Protocol Esp\n");
        assert_eq!(c.protocol, ProtocolSpec::Number(50));
        let c = svc("  Protocol 47\n  Routing Routed\n");
        assert_eq!(
            (c.protocol, c.routing),
            (ProtocolSpec::Number(47), Routing::Routed)
        );
        let c = svc("");
        assert_eq!(
            c,
            Conditions {
                source: c.source,
                destination: c.destination,
                ..Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Any)
            }
        );
    }

    #[test]
    fn ip_service_errors() {
        check(
            "  Protocol udp\n",
            "  Protocol ‸Sctp\n",
            "Protocol `Sctp` is not known; allowed: All, Tcp, Udp, Icmp, Ospf, Igmp, Ip, Ipip, Ah, Esp, or a number 0 to 255",
        );
        check(
            "  Protocol udp\n",
            "  Protocol ‸Icmpv6\n",
            "Protocol Icmpv6 is not supported by plexnet; allowed: IPv4 protocols: All, Tcp, Udp, Icmp, Ospf, Igmp, Ip, Ipip, Ah, Esp, or a number",
        );
        check(
            "  SourcePortRange 500\n",
            "  SourcePortRange ‸70000\n",
            "port `70000` is out of range; allowed: 0 (every port) or 1 to 65535, a range's last port at or above its first",
        );
        check(
            "  SourcePortRange 500\n",
            "  SourcePortRange 500 ‸400\n",
            "last port `400` is out of range; allowed: 0 (every port) or 1 to 65535, a range's last port at or above its first",
        );
        check(
            "  Protocol udp\n  SourcePortRange 500\n",
            "  Protocol Icmp\n  ‸SourcePortRange 500\n",
            "port ranges without a protocol that has them; allowed: SourcePortRange and DestinationPortRange with Protocol Tcp or Udp",
        );
        check(
            "  Protocol udp\n  SourcePortRange 500\n",
            "  Protocol Icmp\n  ‸IcmpCode 3\n",
            "IcmpCode without IcmpType; allowed: IcmpType n, then IcmpCode n (a code belongs to one ICMP type)",
        );
        check(
            "    Direction Bidirectional InboundConnect\n",
            "    Direction Inbound ‸InboundConnect\n",
            "`InboundConnect` after the value of Direction; allowed: Direction Bidirectional [InboundConnect|OutboundConnect], Inbound or Outbound, one attribute per line",
        );
        check(
            "    Routing Local\n",
            "    Routing ‸Anywhere\n",
            "Routing `Anywhere` is not known; allowed: Local, Routed or Either",
        );
        check(
            "    Routing Local\n",
            "    SecurityClass ‸256\n",
            "SecurityClass `256` is out of range; allowed: 0 (every interface) or a security class 1 to 255",
        );
        check(
            "    Routing Local\n",
            "    Routing‸\n",
            "Routing has no value; allowed: Routing Local|Routed|Either",
        );
        check(
            "    Routing Local\n",
            "    Routing Local\n    ‸Routing Either\n",
            "Routing is given twice in IpService (first at line 11); allowed: Routing once",
        );
        check(
            "    Routing Local\n",
            "    ‸SourcePortGranularity Rule\n",
            "IpService SourcePortGranularity is not supported by plexnet; allowed: Protocol, SourcePortRange, DestinationPortRange, IcmpType, IcmpCode, OspfType, Direction, Routing, SecurityClass",
        );
        check(
            "    Routing Local\n",
            "    ‸Ports 80\n",
            "unknown keyword `Ports` in IpService; allowed here: Protocol, SourcePortRange, DestinationPortRange, IcmpType, IcmpCode, OspfType, Direction, Routing, SecurityClass",
        );
    }

    #[test]
    fn filter_rule_errors() {
        check(
            "  IpDestAddr 198.18.1.0/24\n",
            "  IpDestAddr ‸198.18.1.0/40\n",
            "`198.18.1.0/40` is not an address specification; allowed: * (every address), a.b.c.d, a.b.c.d/len (len 0 to 32), or a.b.c.d-a.b.c.d (first not above last)",
        );
        check(
            "  IpDestAddr 198.18.1.0/24\n",
            "  IpDestAddr ‸All6\n",
            "IpDestAddr All6 is not supported by plexnet; allowed: IPv4 only: All, All4, a.b.c.d, a.b.c.d/len or a.b.c.d-a.b.c.d",
        );
        check(
            "  IpDestAddr 198.18.1.0/24\n",
            "  ‸IpDestAddrSetRef clients\n",
            "IpFilterRule IpDestAddrSetRef is not supported by plexnet; allowed: IpSourceAddr, IpDestAddr, IpService or IpServiceRef, IpGenericFilterActionRef, IpDynVpnActionRef",
        );
        check(
            "  IpServiceRef ike\n",
            "  IpServiceRef ‸ikev2\n",
            "IpServiceRef `ikev2` is a KeyExchangeAction, not a IpService; allowed: the name of a IpService statement",
        );
        check(
            "  IpServiceRef ike\n",
            "  IpServiceRef ‸web\n",
            "IpServiceRef `web` is a IpFilterRule, not a IpService; allowed: the name of a IpService statement",
        );
        check(
            "  IpServiceRef ike\n",
            "  IpServiceRef ‸nfs\n",
            "IpServiceRef `nfs` names no IpService statement; allowed: the name of a IpService statement: ike, all",
        );
        check(
            "  IpServiceRef ike\n  IpGenericFilterActionRef permit\n",
            "  IpServiceRef ike\n  ‸IpServiceRef all\n  IpGenericFilterActionRef permit\n",
            "IpServiceRef is given twice in IpFilterRule (first at line 19); allowed: IpServiceRef once",
        );
        check(
            "  IpGenericFilterActionRef ipsec\n",
            "  ‸IpServiceRef ike\n  IpGenericFilterActionRef ipsec\n",
            "IpService is given twice in IpFilterRule (first at line 5); allowed: IpService once",
        );
        check(
            "  IpServiceRef all\n  IpGenericFilterActionRef deny\n",
            "  ‸IpGenericFilterActionRef deny\n",
            "IpFilterRule `rest` has no IpService; allowed: IpService { ... } or IpServiceRef name",
        );
        check(
            "  IpServiceRef all\n  IpGenericFilterActionRef deny\n",
            "  ‸IpServiceRef all\n",
            "IpFilterRule `rest` has no IpGenericFilterActionRef; allowed: IpGenericFilterActionRef name (an IpGenericFilterAction with IpFilterAction Permit, Deny or IpSec)",
        );
        check(
            "  IpGenericFilterActionRef ipsec\n  IpDynVpnActionRef esp\n",
            "  IpGenericFilterActionRef ‸ipsec\n",
            "IpFilterRule web: IpGenericFilterAction ipsec says IpSec but the rule has no IpDynVpnActionRef; allowed: IpDynVpnActionRef name with IpFilterAction IpSec",
        );
        check(
            "  IpGenericFilterActionRef permit\n",
            "  IpGenericFilterActionRef permit\n  IpDynVpnActionRef ‸esp\n",
            "IpFilterRule ike: IpDynVpnActionRef with IpGenericFilterAction permit, which does not say IpSec; allowed: IpDynVpnActionRef only with IpFilterAction IpSec",
        );
        check(
            "  IpDynVpnActionRef esp\n",
            "  IpDynVpnActionRef ‸aes\n",
            "IpDynVpnActionRef `aes` names no IpDynVpnAction statement; allowed: the name of a IpDynVpnAction statement: esp",
        );
        check(
            "  IpServiceRef ike\n",
            "  ‸IpService ike\n",
            "IpService here needs a `{ ... }` block; allowed: an inline block, or the ...Ref attribute that names a statement defined elsewhere",
        );
    }

    #[test]
    fn actions_and_offers() {
        check(
            "  IpFilterAction Deny\n",
            "  IpFilterAction ‸Reject\n",
            "IpFilterAction `Reject` is not known; allowed: Permit, Deny or IpSec",
        );
        check(
            "  IpFilterLogging Yes\n",
            "  IpFilterLogging ‸LogDeny\n",
            "IpFilterLogging LogDeny is not supported by plexnet; allowed: IpFilterLogging Yes or No",
        );
        check(
            "  IpFilterAction Permit\n",
            "  ‸IpFilterLogging No\n",
            "IpGenericFilterAction `permit` has no IpFilterAction; allowed: IpFilterAction Permit|Deny|IpSec",
        );
        check(
            "  Initiation Either\n",
            "  Initiation ‸Sometimes\n",
            "Initiation `Sometimes` is not known; allowed: LocalOnly, RemoteOnly or Either",
        );
        check(
            "  Initiation Either\n",
            "  ‸VpnLife 1440\n",
            "IpDynVpnAction VpnLife is not supported by plexnet; allowed: Initiation, InitiateWithPfs (or Pfs), HowToEncapIKEv2, IpDataOffer, IpDataOfferRef",
        );
        check(
            "  Initiation Either\n",
            "  InitiateWithPfs ‸Group5\n",
            "InitiateWithPfs Group5 is not implemented here; allowed: None, Group14, Group19, Group20",
        );
        check(
            "  Initiation Either\n",
            "  Pfs Group14\n  ‸InitiateWithPfs Group19\n",
            "InitiateWithPfs after Pfs (line 51); allowed: one of InitiateWithPfs and Pfs (its older spelling)",
        );
        check(
            "  HowToEncrypt AES_CBC KeyLength 128\n",
            "  HowToEncrypt ‸3DES\n",
            "HowToEncrypt 3DES is not implemented here; allowed: AES_CBC KeyLength 128|256, AES_GCM_16 KeyLength 128|256, AES, DoNot",
        );
        check(
            "  HowToEncrypt AES_CBC KeyLength 128\n",
            "  HowToEncrypt AES_CBC KeyLength ‸192\n",
            "KeyLength `192` is out of range; allowed: 128 or 256",
        );
        check(
            "  HowToEncrypt AES_CBC KeyLength 128\n",
            "  HowToEncrypt AES_CBC‸\n",
            "HowToEncrypt has no value; allowed: HowToEncrypt AES_CBC KeyLength 128|256, AES_GCM_16 KeyLength 128|256, AES or DoNot",
        );
        check(
            "  HowToAuth ESP HMAC_SHA1\n",
            "  HowToAuth ESP ‸HMAC_MD5\n",
            "HowToAuth HMAC_MD5 is not implemented here; allowed: HMAC_SHA1 (or HMAC_SHA), HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256, Null",
        );
        check(
            "    HowToAuth ESP Null\n",
            "    ‸HowToAuth ESP HMAC_SHA2_256_128\n",
            "AES_GCM_16 brings its own integrity, so a HowToAuth algorithm (HMAC_SHA1 when left out) cannot join it; allowed: HowToAuth ESP Null with AES_GCM_16",
        );
        check(
            "  HowToAuth ESP HMAC_SHA1\n",
            "  ‸HowToAuth AH HMAC_SHA1\n",
            "HowToAuth AH with ESP encryption (HowToEncrypt AES_CBC KeyLength 128 when left out) is an AH+ESP bundle, which plexnet's filter policy does not model; allowed: HowToAuth AH with HowToEncrypt DoNot, or HowToAuth ESP",
        );
        check(
            "  RefreshLifetimeProposed 60\n",
            "  RefreshLifetimeProposed ‸0\n",
            "RefreshLifetimeProposed `0` is out of range; allowed: 1 to 65535 minutes",
        );
        check(
            "  RefreshLifetimeProposed 60\n",
            "  ‸RefreshLifetimeAccepted 30 120\n",
            "IpDataOffer RefreshLifetimeAccepted is not supported by plexnet; allowed: HowToEncap, HowToEncrypt, HowToAuth, RefreshLifetimeProposed, RefreshLifesizeProposed",
        );
        check(
            "  IpDataOfferRef cbc\n",
            "  IpDataOfferRef ‸cbc3\n",
            "IpDataOfferRef `cbc3` names no IpDataOffer statement; allowed: the name of a IpDataOffer statement: cbc",
        );
        // AH alone, transport, HowToEncapIKEv2 over an offer that leaves
        // HowToEncap out.
        let text = base_with(
            "  HowToEncap Tunnel\n  HowToEncrypt AES_CBC KeyLength 128\n  HowToAuth ESP HMAC_SHA1\n",
            "  HowToEncrypt DoNot\n  HowToAuth AH HMAC_SHA2_256_128\n",
        )
        .replacen("  Initiation Either\n", "  Initiation RemoteOnly\n  HowToEncapIKEv2 Transport\n  InitiateWithPfs Group19\n", 1);
        let p = ok(&text);
        let FilterAction::Ipsec(vpn) = &p.filter_rules[0].action else {
            panic!("not ipsec")
        };
        assert_eq!(
            (vpn.initiation, vpn.pfs_group),
            (Initiation::RemoteOnly, Some(19))
        );
        let o = &vpn.offers[0];
        assert_eq!(
            (o.protocol, o.mode, o.encryption, o.integrity),
            (
                Protocol::Ah,
                Mode::Transport,
                None,
                IntegAlg::HmacSha256_128
            )
        );
        assert!(p.filter_rules.iter().all(|r| r.validate().is_ok()));
        // HowToEncapIKEv2 against an offer's own HowToEncap.
        let text = base_with("  Initiation Either\n", "  HowToEncapIKEv2 Transport\n");
        let (w, _, _, m) = err(&text);
        assert_eq!(w, "HowToEncapIKEv2");
        assert!(m.starts_with("HowToEncapIKEv2 Transport but an IpDataOffer of this action says HowToEncap Tunnel (line 61)"), "{m}");
    }

    #[test]
    fn key_exchange_forms_and_errors() {
        let text = base_with(
            "  HowToVerifyMsgs HMAC_SHA1_96\n  PseudoRandomFunction HMAC_SHA1\n",
            "  HowToAuthMsgs SHA2_256\n",
        )
        .replacen(
            "  HowToEncrypt AES_CBC KeyLength 128\n  HowToAuthMsgs",
            "  HowToEncrypt AES_CBC KeyLength 256\n  HowToAuthMsgs",
            1,
        )
        .replacen("DHGroup Group14", "DHGroup Group19", 1)
        .replacen(
            "SharedKey Ascii plexnet-figure4",
            "SharedKey Hex 0x706c65786e6574",
            1,
        );
        let p = ok(&text);
        let k = &p.key_exchange_rules[0];
        assert_eq!(
            k.action.offers[0].proposal,
            "aes256-sha256-prfsha256-ecp256"
        );
        assert!(k.action.offers[0].proposal_config().is_ok());
        assert_eq!(k.shared_key, b"plexnet");
        check(
            "  DHGroup Group14\n",
            "  DHGroup ‸Group2\n",
            "DHGroup Group2 is not implemented here; allowed: Group14, Group19, Group20",
        );
        check(
            "  DHGroup Group14\n  RefreshLifetimeProposed 240\n",
            "  ‸RefreshLifetimeProposed 240\n",
            "KeyExchangeOffer `ike1` has no DHGroup; allowed: DHGroup Group14, Group19 or Group20",
        );
        check(
            "  HowToAuthPeers PresharedKey\n",
            "  HowToAuthPeers ‸RsaSignature\n",
            "HowToAuthPeers RsaSignature is not implemented here; allowed: PresharedKey",
        );
        check(
            "  HowToVerifyMsgs HMAC_SHA1_96\n",
            "  HowToVerifyMsgs ‸AES128_XCBC_96\n",
            "HowToVerifyMsgs AES128_XCBC_96 is not implemented here; allowed: HMAC_SHA1_96, HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256",
        );
        check(
            "  HowToInitiate IKEv2\n",
            "  HowToInitiate ‸Main\n",
            "HowToInitiate Main is not implemented here; allowed: IKEv2 or DoNot (IKEv1 is not implemented here)",
        );
        check(
            "  HowToRespond Either\n",
            "  HowToRespond ‸Aggressive\n",
            "HowToRespond Aggressive is not implemented here; allowed: Either (IKEv1 is not implemented here; plexnet answers IKEv2)",
        );
        check(
            "  HowToRespond Either\n",
            "  ‸AllowNat Yes\n",
            "KeyExchangeAction AllowNat is not supported by plexnet; allowed: HowToInitiate, HowToRespond, HowToRespondIKEv1, HowToAuthMe, KeyExchangeOffer, KeyExchangeOfferRef",
        );
        check(
            "  HowToAuthMe PresharedKey\n  KeyExchangeOfferRef ike1\n",
            "  ‸KeyExchangeOfferRef ike1\n",
            "KeyExchangeAction `ikev2` has no HowToAuthMe; allowed: HowToAuthMe PresharedKey (IBM's default, DigitalSignature, is not implemented here)",
        );
        check(
            "  SharedKey Ascii plexnet-figure4\n",
            "  SharedKey ‸Ebcdic plexnet\n",
            "SharedKey Ebcdic is not supported by plexnet; allowed: SharedKey Ascii key or SharedKey Hex digits (the peers here are Linux hosts, which use the key's bytes as typed)",
        );
        check(
            "  SharedKey Ascii plexnet-figure4\n",
            "  SharedKey Hex ‸abc\n",
            "`SharedKey Hex` is not hex; allowed: an even number of hex digits, optionally after 0x",
        );
        check(
            "  KeyExchangeActionRef ikev2\n  SharedKey Ascii plexnet-figure4\n",
            "  ‸KeyExchangeActionRef ikev2\n",
            "KeyExchangeRule `clients` has no SharedKey; allowed: SharedKey Ascii key or SharedKey Hex digits (peers authenticate with pre-shared keys here)",
        );
        check(
            "  RemoteSecurityEndpointRef net1\n",
            "  RemoteSecurityEndpointRef ‸net2\n",
            "RemoteSecurityEndpointRef `net2` names no RemoteSecurityEndpoint statement; allowed: the name of a RemoteSecurityEndpoint statement: net1",
        );
        check(
            "  KeyExchangeActionRef ikev2\n",
            "  KeyExchangeActionRef ‸ike1\n",
            "KeyExchangeActionRef `ike1` is a KeyExchangeOffer, not a KeyExchangeAction; allowed: the name of a KeyExchangeAction statement",
        );
        check(
            "    Identity IpAddr 198.18.0.100\n",
            "    Identity ‸Fqdn mvs1.example\n",
            "Identity type Fqdn is not implemented here; allowed: IpAddr (IKE identities are IP addresses here, ID_IPV4_ADDR)",
        );
        check(
            "    Identity IpAddr 198.18.0.100\n",
            "    Identity IpAddr ‸198.18.0.0/24\n",
            "`198.18.0.0/24` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)",
        );
        check(
            "  Location 198.18.1.0/24\n",
            "  Location ‸Any6\n",
            "Location Any6 is not supported by plexnet; allowed: IPv4 only: a.b.c.d, a.b.c.d/len, a.b.c.d-a.b.c.d, Any or Any4",
        );
    }

    #[test]
    fn statement_level_errors() {
        let (w, line, col, m) = err(&format!("{BASE}IpManVpnAction man\n{{\n}}\n"));
        assert_eq!((w.as_str(), line, col), ("IpManVpnAction", 99, 1));
        assert_eq!(
            m,
            format!("IpManVpnAction is not supported by plexnet; allowed: {STATEMENTS_ALLOWED}")
        );
        let (w, _, _, m) = err(&format!("{BASE}IpFilterRules x\n{{\n}}\n"));
        assert_eq!(w, "IpFilterRules");
        assert!(
            m.starts_with(
                "unknown statement `IpFilterRules`; allowed: IpFilterPolicy, IpFilterRule,"
            ),
            "{m}"
        );
        let (w, line, _, m) = err(&format!("{BASE}IpService ike\n{{\n}}\n"));
        assert_eq!((w.as_str(), line), ("ike", 99));
        assert_eq!(
            m,
            "IpService `ike` is defined twice (first at line 27); allowed: one IpService per name"
        );
        let (w, _, _, m) = err(&format!("{BASE}IpService\n{{\n}}\n"));
        assert_eq!(w, "");
        assert!(
            m.starts_with("IpService has no name; allowed: a name after the statement keyword"),
            "{m}"
        );
        let (w, _, _, m) = err(&format!("{BASE}IpService -x\n{{\n}}\n"));
        assert_eq!(w, "-x");
        assert!(m.starts_with("`-x` is not a statement name"), "{m}");
        let (w, _, _, m) = err(&format!("{BASE}IpService x\n"));
        assert_eq!(w, "IpService");
        assert!(m.starts_with("`IpService` has no `{ ... }` block"), "{m}");
        let (w, line, col, m) = err(&format!("{BASE}IpGenericFilterAction empty\n{{\n}}\n"));
        assert_eq!((w.as_str(), line, col), ("IpGenericFilterAction", 99, 1));
        assert!(
            m.starts_with("IpGenericFilterAction `empty` has no IpFilterAction"),
            "{m}"
        );
        let text = base_with("  IpDataOffer\n  {\n    HowToEncrypt AES_GCM_16 KeyLength 128\n    HowToAuth ESP Null\n  }\n", "  IpDataOffer\n  {\n  }\n");
        ok(&text);
        // Same name, different kinds: fine.
        ok(&format!("{BASE}IpDataOffer ike\n{{\n}}\n"));
        // An unused statement is checked all the same.
        let (w, _, _, _) = err(&format!(
            "{BASE}IpDataOffer unused\n{{\n  HowToEncap Sideways\n}}\n"
        ));
        assert_eq!(w, "Sideways");
        let (w, line, col, m) = err("# nothing but comments\n");
        assert_eq!((w.as_str(), line, col), ("#", 1, 1));
        assert!(m.starts_with("the IPSec policy has no IpFilterRule"), "{m}");
    }

    #[test]
    fn errors_are_collected_and_do_not_cascade() {
        // A bad IpService: the rule that uses it reports nothing more.
        let text = base_with("  Protocol udp\n", "  Protocol xtp\n").replacen(
            "  IpFilterAction Permit\n",
            "  IpFilterAction Allow\n",
            1,
        );
        let (p, e) = parse(&text);
        assert_eq!(e.len(), 2, "{e:?}");
        let names: Vec<&str> = p.filter_rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["web", "rest"]);
    }
}
