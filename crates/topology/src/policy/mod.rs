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
//!   [`EncAlg`] and [`IntegAlg`] (`src/ipsec/sa.rs`), IKE to the IKE
//!   module's encryption, integrity, PRF and Diffie-Hellman groups
//!   (`src/ike/proposal.rs`, `keys.rs`, `dh.rs`). What z/OS has and plexnet
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
    /// Where the statement named `name` is written.
    fn at(&self, name: &str) -> Option<usize> {
        self.position(name).map(|i| self.entries[i].1)
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

/// An IpManVpnAction's body (the name is the table's).
#[derive(Debug, Clone, Copy)]
struct RawManVpn {
    active: bool,
    local: Ipv4Addr,
    remote: Ipv4Addr,
}

#[derive(Debug, Clone)]
struct RawFilterRule<'a> {
    source: AddrSpec,
    destination: AddrSpec,
    service: Use<'a, Service>,
    generic: Tok<'a>,
    dynvpn: Option<Tok<'a>>,
    manvpn: Option<Tok<'a>>,
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
    manvpns: Table<RawManVpn>,
    offers: Table<Offer>,
    kx_rules: Table<RawKxRule<'a>>,
    kx_actions: Table<RawKxAction<'a>>,
    kx_offers: Table<KeyExchangeOffer>,
    locals: Table<SecurityEndpoint>,
    remotes: Table<SecurityEndpoint>,
}

impl Defs<'_> {
    /// Where the statement of `kind` named `name` is written, if there is
    /// one (policies have no name).
    fn at(&self, kind: Kind, name: &str) -> Option<usize> {
        match kind {
            Kind::FilterRule => self.rules.at(name),
            Kind::Service => self.services.at(name),
            Kind::GenericAction => self.generics.at(name),
            Kind::DynVpnAction => self.dynvpns.at(name),
            Kind::ManVpnAction => self.manvpns.at(name),
            Kind::DataOffer => self.offers.at(name),
            Kind::KxRule => self.kx_rules.at(name),
            Kind::KxAction => self.kx_actions.at(name),
            Kind::KxOffer => self.kx_offers.at(name),
            Kind::LocalEndpoint => self.locals.at(name),
            Kind::RemoteEndpoint => self.remotes.at(name),
            Kind::FilterPolicy | Kind::KxPolicy => None,
        }
    }
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
    fn define_policy<'a>(
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
    fn store<'a>(&mut self, kind: Kind, name: Tok<'_>, body: &[Node<'a>], defs: &mut Defs<'a>) {
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
    fn attrs<'n, 'a>(
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
    fn policy_order<T>(&mut self, defs: &Defs<'_>, policy: Kind, table: &Table<T>) -> Vec<usize> {
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

    /// The IpFilterRules in force, resolved, in filter-table order.
    fn resolve_filter_rules(&mut self, defs: &Defs<'_>) -> Vec<FilterRule> {
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
    fn resolve_action(
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

    fn resolve_man_vpn(&mut self, defs: &Defs<'_>, t: Tok<'_>) -> Option<ManVpnAction> {
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
    fn resolve_kx_rules(&mut self, defs: &Defs<'_>) -> Vec<KeyExchangeRule> {
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

    fn resolve_endpoint(
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
    fn resolve_use<T: Clone>(
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

mod filters;
mod key_exchange;
#[cfg(test)]
mod tests;
mod values;
