//! Errors of topology loading: every one names the file, the line and the
//! column, says what is wrong and what is allowed.

use super::model::{DistMethod, Subnet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Why a topology file could not be loaded. Nothing was created.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read at all.
    #[error("{}: cannot read the topology file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but is not a valid topology. `Display` shows the
    /// first problem (the earliest in the file); [`TopologyError::errors`]
    /// lists them all.
    #[error("{first}")]
    Invalid {
        first: Box<Diagnostic>,
        rest: Vec<Diagnostic>,
    },
}

impl TopologyError {
    /// Every located problem found, earliest in the file first (empty for
    /// [`TopologyError::Read`]).
    pub fn errors(&self) -> Vec<&Diagnostic> {
        match self {
            TopologyError::Read { .. } => Vec::new(),
            TopologyError::Invalid { first, rest } => {
                std::iter::once(first.as_ref()).chain(rest.iter()).collect()
            }
        }
    }

    /// The first problem's kind, if the file was read.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            TopologyError::Read { .. } => None,
            TopologyError::Invalid { first, .. } => Some(&first.kind),
        }
    }

    /// Builds the error from a non-empty list, sorting it by position
    /// (stable, so problems at one position keep the order found).
    pub(crate) fn from_diagnostics(mut all: Vec<Diagnostic>) -> Option<TopologyError> {
        all.sort_by_key(|d| (d.line, d.col));
        all.dedup();
        let mut it = all.into_iter();
        let first = it.next()?;
        Some(TopologyError::Invalid {
            first: Box::new(first),
            rest: it.collect(),
        })
    }
}

/// One located problem: `Display` is `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{col}: {kind}", path.display())]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based line in the file.
    pub line: usize,
    /// 1-based column in the file, counted in characters.
    pub col: usize,
    pub kind: ErrorKind,
}

/// Where in a text a byte offset is: 1-based line and character column.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// A node kind, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Image,
    Client,
    Router,
    CouplingFacility,
    Lan,
    Host,
    Topology,
}

impl NameKind {
    /// What a valid name looks like.
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::Image => "1 to 8 characters A-Z a-z 0-9 (a z/OS system name), not ALL",
            NameKind::Client | NameKind::Router | NameKind::CouplingFacility | NameKind::Lan => {
                "1 to 12 characters A-Z a-z 0-9"
            }
            NameKind::Host => {
                "1 to 63 characters A-Z a-z 0-9 and '-', starting with a letter or digit"
            }
            NameKind::Topology => "1 to 32 characters A-Z a-z 0-9 '-' '_'",
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Image => "image",
            NameKind::Client => "client",
            NameKind::Router => "router",
            NameKind::CouplingFacility => "coupling facility",
            NameKind::Lan => "LAN",
            NameKind::Host => "host",
            NameKind::Topology => "topology",
        })
    }
}

/// What is wrong. Each message ends with what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // ---- the TOML layer ----
    /// TOML syntax, an unknown key, a missing key or a value of the wrong type.
    #[error("{message}")]
    Toml { message: String },
    #[error("the topology has no image; allowed: at least one [[image]] table")]
    NoImages,

    // ---- names ----
    #[error("{kind} name `{name}` is not valid; allowed: {}", kind.rule())]
    BadName { kind: NameKind, name: String },
    #[error("name `{name}` is used twice (first at line {first_line}); allowed: names unique, ignoring case, across images, clients, the router, the CF and [hosts]")]
    DuplicateName { name: String, first_line: usize },
    #[error("LAN name `{name}` is used twice (first at line {first_line}); allowed: one [[client_lan]] per name")]
    DuplicateLan { name: String, first_line: usize },

    // ---- addresses ----
    #[error("`{text}` is not an IPv4 address; allowed: dotted decimal such as 198.18.0.100 (host names are not accepted here)")]
    BadAddress { text: String },
    #[error("`{text}` is not a subnet; allowed: address/prefix with zero host bits and a prefix of 8 to 30, such as 198.18.0.0/24")]
    BadSubnet { text: String },
    #[error(
        "`{text}` is not an address mask; allowed: a contiguous netmask such as 255.255.255.0"
    )]
    BadMask { text: String },
    #[error("{addr} is outside 198.18.0.0/15; allowed: addresses in 198.18.0.0/15 only (RFC 2544 benchmark space, never routed outside the testbed)")]
    OutsideBenchmark { addr: Ipv4Addr },
    #[error("{what} {addr} is also used by {other}; allowed: every address used once")]
    DuplicateAddress {
        addr: Ipv4Addr,
        what: String,
        other: String,
    },
    #[error("{what} {addr} is not a host address of {lan} {subnet}; allowed: an address inside {subnet} other than its network and broadcast addresses")]
    NotInSubnet {
        what: String,
        addr: Ipv4Addr,
        lan: String,
        subnet: Subnet,
    },
    #[error("{what} {addr} lies inside {lan} {subnet}; allowed: XCF and CF addresses outside every LAN subnet")]
    InsideLan {
        what: String,
        addr: Ipv4Addr,
        lan: String,
        subnet: Subnet,
    },
    #[error("LAN {lan} {subnet} overlaps {other} {other_subnet}; allowed: disjoint LAN subnets")]
    SubnetOverlap {
        lan: String,
        subnet: Subnet,
        other: String,
        other_subnet: Subnet,
    },
    #[error("no room for an automatic {what} in {subnet}; allowed: give `{field}` explicitly, or a larger subnet")]
    NoRoom {
        what: String,
        subnet: Subnet,
        field: &'static str,
    },
    #[error("DVIPA {addr} is outside the external LAN {subnet}; allowed: DVIPAs inside {subnet}, where their owner answers ARP for them")]
    DvipaOutsideLan { addr: Ipv4Addr, subnet: Subnet },
    #[error("[hosts] {name} = {addr} is not a DVIPA of this topology; allowed: an address some image's VIPADEFINE or VIPABACKUP names (node names are added to the hosts table automatically)")]
    HostNotDvipa { name: String, addr: Ipv4Addr },

    // ---- VIPADYNAMIC syntax ----
    #[error("expected VIPADYNAMIC, found `{found}`; allowed: statements inside a VIPADYNAMIC ... ENDVIPADYNAMIC block")]
    OutsideBlock { found: String },
    #[error("VIPADYNAMIC inside a VIPADYNAMIC block; allowed: ENDVIPADYNAMIC before the next VIPADYNAMIC")]
    NestedBlock,
    #[error(
        "the VIPADYNAMIC block is not closed; allowed: ENDVIPADYNAMIC after the last statement"
    )]
    UnclosedBlock,
    #[error("unknown statement `{word}`; allowed: VIPADEFine, VIPABackup, VIPADISTribute, VIPARange, ENDVIPADYNamic (the upper-case part is the shortest abbreviation)")]
    UnknownStatement { word: String },
    #[error("unknown keyword `{word}` in {statement}; allowed here: {allowed}")]
    UnknownKeyword {
        statement: &'static str,
        word: String,
        allowed: String,
    },
    #[error("{statement} ends early, {missing} is missing; allowed: {syntax}")]
    Missing {
        statement: &'static str,
        missing: &'static str,
        syntax: &'static str,
    },
    #[error("{statement} {keyword} is not supported by plexnet; allowed: {allowed}")]
    Unsupported {
        statement: &'static str,
        keyword: String,
        allowed: &'static str,
    },
    #[error("rank `{value}` is out of range; allowed: 1 to 254 (a higher rank takes over first)")]
    RankOutOfRange { value: String },
    #[error("port `{value}` is out of range; allowed: 1 to 65535, or a range low-high such as 8000-8009")]
    PortOutOfRange { value: String },
    #[error("weight `{value}` is out of range; allowed: 1 to 99")]
    WeightOutOfRange { value: String },
    #[error("TIMEDAFFINITY `{value}` is out of range; allowed: 1 to 99999 seconds")]
    AffinityOutOfRange { value: String },
    #[error(
        "WEIGHT with DISTMETHOD {method:?}; allowed: WEIGHT only with DISTMETHOD WEIGHTEDACTIVE"
    )]
    WeightWithoutWeightedActive { method: DistMethod },
    #[error("{keyword} with DISTMETHOD {method:?}; allowed: PREFERRED and BACKUP only with DISTMETHOD HOTSTANDBY")]
    RoleWithoutHotStandby {
        keyword: &'static str,
        method: DistMethod,
    },
    #[error("DISTMETHOD HOTSTANDBY with {preferred} PREFERRED, {backups} BACKUP and {unmarked} unmarked destinations; allowed: exactly one PREFERRED and every other destination BACKUP rank")]
    HotStandbyRoles {
        preferred: usize,
        backups: usize,
        unmarked: usize,
    },
    #[error("DESTIP ALL with DISTMETHOD HOTSTANDBY; allowed: a list of destinations, one PREFERRED and the others BACKUP rank")]
    HotStandbyAll,
    #[error("DISTMETHOD is given twice; allowed: one DISTMETHOD per VIPADISTRIBUTE")]
    DuplicateDistMethod,

    // ---- VIPADYNAMIC meaning ----
    #[error("DESTIP `{dest}` is neither an image nor an image's XCF address; allowed: {allowed}, or ALL")]
    UnknownDest { dest: String, allowed: String },
    #[error("DESTIP {image} is listed twice; allowed: each image once per VIPADISTRIBUTE")]
    DuplicateDest { image: String },
    #[error("DVIPA {addr} is VIPADEFINEd by {first} and by {second}; allowed: one owner per DVIPA, other images take it over with VIPABACKUP")]
    TwoOwners {
        addr: Ipv4Addr,
        first: String,
        second: String,
    },
    #[error("DVIPA {addr} is defined twice in {image}; allowed: one VIPADEFINE or one VIPABACKUP per DVIPA in an image")]
    DefinedTwice { addr: Ipv4Addr, image: String },
    #[error("VIPABACKUP of {addr} in {image}, but no image VIPADEFINEs it; allowed: back up a DVIPA that some image owns with VIPADEFINE")]
    BackupWithoutOwner { addr: Ipv4Addr, image: String },
    #[error("VIPADISTRIBUTE of {addr} in {image}, which neither VIPADEFINEs nor VIPABACKUPs it; allowed: distribute a DVIPA defined or backed up in the same image")]
    DistributeUndefined { addr: Ipv4Addr, image: String },
    #[error("port {port} of {addr} is distributed twice in {image}; allowed: each DVIPA port in one VIPADISTRIBUTE of an image")]
    DuplicateDistribute {
        addr: Ipv4Addr,
        port: u16,
        image: String,
    },

    // ---- clients and manual SAs ----
    /// A keyword value outside its list (`ipsec`, `protocol`, `mode`,
    /// `encryption`, `integrity`).
    #[error("{what} `{value}` is not known; allowed: {allowed}")]
    UnknownChoice {
        what: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error(
        "manual SA for `{name}`, which is not a client; allowed: a [[client]] name: {allowed}"
    )]
    UnknownClient { name: String, allowed: String },
    #[error("manual SA for client {client}, which has ipsec = \"{ipsec}\"; allowed: manual SAs only for clients with ipsec = \"plexnet\"")]
    ClientWithoutIpsec { client: String, ipsec: &'static str },
    #[error("`{text}` is not a DVIPA of this topology; allowed: {allowed}")]
    UnknownDvipa { text: String, allowed: String },
    #[error("a second manual SA between {client} and {dvipa} (first at line {first_line}); allowed: one [[manual_sa]] per client and DVIPA")]
    DuplicateManualSa {
        client: String,
        dvipa: Ipv4Addr,
        first_line: usize,
    },
    /// Algorithms or options that do not go together.
    #[error("{problem}; allowed: {allowed}")]
    Combination {
        problem: String,
        allowed: &'static str,
    },
    #[error("SPI {value} is out of range; allowed: 256 to 4294967295 (0x100 to 0xffffffff; 0 is never sent and 1 to 255 are reserved, RFC 4303 §2.1)")]
    SpiOutOfRange { value: i64 },
    #[error("SPI {spi:#010x} is used twice (first at line {first_line}); allowed: every manual SPI unique, in both directions")]
    DuplicateSpi { spi: u32, first_line: usize },
    #[error("`{field}` is only used with protocol = \"ah+esp\"; allowed: `spi_to_dvipa` and `spi_to_client` for protocol {protocol}")]
    AhSpiWithoutBundle {
        field: &'static str,
        protocol: &'static str,
    },
    #[error("`{field}` is not hex; allowed: an even number of hex digits, optionally after 0x")]
    BadKeyHex { field: &'static str },
    #[error("`{field}` is {got} bytes, {alg} needs {want}; allowed: {} hex digits", want * 2)]
    KeyLength {
        field: &'static str,
        alg: &'static str,
        got: usize,
        want: usize,
    },
    #[error("`{field}` is given, but {why}; allowed: keys only for the algorithms in use")]
    UnusedKey { field: &'static str, why: String },
    #[error(
        "no key for {what}; allowed: `secret = \"...\"` to derive every key, or `{field}` in hex"
    )]
    MissingKey {
        what: &'static str,
        field: &'static str,
    },
    #[error("the secret is empty; allowed: a non-empty string")]
    EmptySecret,
    #[error("replay_window {value} is out of range; allowed: 1 to {max} packets")]
    ReplayWindowOutOfRange { value: i64, max: u32 },
    #[error("{field} = {value} is out of range; allowed: 1 to {max} (leave it out for no limit)")]
    LifetimeOutOfRange {
        field: &'static str,
        value: i64,
        max: u64,
    },
    // ---- [limits] ----
    #[error("unknown limit `{key}`; allowed: {allowed}")]
    UnknownLimit { key: String, allowed: String },
    #[error("{key} = {value} is out of range; allowed: {min} to {max}")]
    LimitOutOfRange {
        key: String,
        value: i64,
        min: u64,
        max: u64,
    },
    #[error("half_open_pressure_ms = {pressure} exceeds half_open_timeout_ms = {timeout}; allowed: at most the timeout (it is the timeout under pressure)")]
    PressureAboveTimeout { pressure: u64, timeout: u64 },
    // ---- IKE ----
    #[error("{what} `{value}` cannot be used: {reason}; allowed: strongSwan proposal syntax such as aes128-sha256-x25519 (IKE) or aes128-sha1 (ESP), comma-separated, or default")]
    IkeProposals {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("client {client} negotiates by IKE but no image with ike = true has a Policy Agent policy with a KeyExchangeRule; allowed: ipsec_policy with KeyExchangeRule, KeyExchangeAction, KeyExchangeOffer and an IpFilterRule with an IpDynVpnActionRef on the DVIPA's owner")]
    IkeWithoutSettings { client: String },
    #[error("the [ike] table is gone: IKE is configured by the owner's Policy Agent policy, in z/OS's statements (KeyExchangeRule, IpDynVpnAction, ...); write instead, in the [[image]] of each routing stack with ike = true (with IPCONFIG IPSECURITY in its profile):\n{policy}")]
    IkeTableGone { policy: String },
    #[error("{reason}")]
    IkePolicy { reason: String },
    #[error("client {client} has ipsec = \"{ipsec}\" and cannot run IKE; allowed: ike = [...] only for clients with ipsec = \"strongswan\" or \"plexnet\"")]
    IkeClientIpsec { client: String, ipsec: &'static str },
    #[error("DVIPA {dvipa} is owned by {owner}, which runs no IKE; allowed: IKE with a DVIPA whose owning image has ike = true")]
    IkeDvipaWithoutIke { dvipa: Ipv4Addr, owner: String },
    #[error("client {client} names DVIPA {dvipa} twice; allowed: each DVIPA once in ike = [...]")]
    IkeDvipaTwice { client: String, dvipa: Ipv4Addr },
    #[error("manual SA between {client} ({addr}) and {dvipa}: {image} has IPCONFIG IPSECURITY and {problem}; allowed: in its ipsec_policy, an IpFilterRule that covers the SA's traffic (the first IPsec rule that does) with IpGenericFilterActionRef of an IpSec action and IpManVpnActionRef of an IpManVpnAction with LocalSecurityEndpointAddr {dvipa} and RemoteSecurityEndpointAddr {addr}")]
    ManualSaNotInPolicy {
        client: String,
        addr: Ipv4Addr,
        dvipa: Ipv4Addr,
        image: String,
        problem: String,
    },
    #[error("client {client} has both a [[manual_sa]] and IKE with DVIPA {dvipa}; allowed: one of them per client and DVIPA")]
    IkeAndManual { client: String, dvipa: Ipv4Addr },
    #[error("client {client} ({addr}) negotiates with {dvipa} by IKE, but no KeyExchangeRule of its owner covers it; allowed: a KeyExchangeRule whose LocalSecurityEndpoint Identity is the DVIPA and whose RemoteSecurityEndpoint Identity and Location include the client's address")]
    IkeNoKeyExchangeRule {
        client: String,
        addr: Ipv4Addr,
        dvipa: Ipv4Addr,
    },
    #[error("soft_{what} = {soft} is above hard_{what} = {hard}; allowed: a soft limit at or below the hard one")]
    SoftAboveHard {
        what: &'static str,
        soft: u64,
        hard: u64,
    },

    // ---- PROFILE.TCPIP IPCONFIG and IPSEC (`profile`) ----
    #[error("unknown statement `{word}` in the profile; allowed: IPCONFIG IPSECURITY, IPSEC ... ENDIPSEC (VIPADYNAMIC goes in `vipadynamic`)")]
    ProfileUnknownStatement { word: String },
    #[error("{statement} is not supported by plexnet; allowed: {allowed}")]
    ProfileUnsupportedStatement {
        statement: &'static str,
        allowed: &'static str,
    },
    #[error("`{word}` comes after {after} in {statement}; allowed: the parameters in IBM's order: {syntax}")]
    OutOfOrder {
        statement: &'static str,
        word: String,
        after: String,
        syntax: &'static str,
    },
    #[error("{statement} outside an IPSEC block; allowed: {statement} between IPSEC and ENDIPSEC")]
    OutsideIpsecBlock { statement: &'static str },
    #[error("IPSEC inside an IPSEC block; allowed: ENDIPSEC before the next IPSEC")]
    NestedIpsecBlock,
    #[error("the IPSEC block is not closed; allowed: ENDIPSEC after the last IPSECRULE")]
    UnclosedIpsecBlock,
    #[error("a second IPSEC block (the first is at line {first_line}); z/OS would ignore it (EZZ0757I) and with it every rule it holds, so plexnet refuses it; allowed: one IPSEC ... ENDIPSEC block holding every IPSECRULE")]
    SecondIpsecBlock { first_line: usize },
    #[error("IPSEC block without IPCONFIG IPSECURITY: z/OS ignores the IPSEC statement then, and the stack does no IP filtering at all; allowed: IPCONFIG IPSECURITY in the same profile, or no IPSEC block")]
    IpsecWithoutIpsecurity,
    #[error("`{text}` is not an address specification; allowed: * (every address), a.b.c.d, a.b.c.d/len (len 0 to 32), or a.b.c.d-a.b.c.d (first not above last)")]
    BadAddrSpec { text: String },
    #[error("{what} `{value}` is out of range; allowed: {allowed}")]
    OutOfRange {
        what: &'static str,
        value: String,
        allowed: &'static str,
    },

    // ---- Policy Agent IPSec policy (`ipsec_policy`) ----
    #[error("ipsec_policy without IPCONFIG IPSECURITY in this image's profile: the Policy Agent does not install IPSec policy in such a stack (EZD1579I); allowed: IPCONFIG IPSECURITY in `profile`, or no `ipsec_policy`")]
    PolicyWithoutIpsecurity,
    #[error("unknown statement `{word}`; allowed: {allowed}")]
    PolicyUnknownStatement { word: String, allowed: &'static str },
    #[error("{word} is not supported by plexnet; allowed: {allowed}")]
    PolicyUnsupported { word: String, allowed: &'static str },
    #[error("{problem}; allowed: {allowed}")]
    PolicyLayout {
        problem: String,
        allowed: &'static str,
    },
    #[error("{statement} `{name}` is defined twice (first at line {first_line}); allowed: one {statement} per name")]
    DuplicateStatement {
        statement: &'static str,
        name: String,
        first_line: usize,
    },
    #[error("{attribute} is given twice in {statement} (first at line {first_line}); allowed: {attribute} once")]
    DuplicateAttribute {
        statement: &'static str,
        attribute: &'static str,
        first_line: usize,
    },
    #[error("{attribute} `{name}` names no {kind} statement; allowed: {allowed}")]
    UnknownReference {
        attribute: &'static str,
        name: String,
        kind: &'static str,
        allowed: String,
    },
    #[error(
        "{attribute} `{name}` is a {actual}, not a {kind}; allowed: the name of a {kind} statement"
    )]
    WrongKindReference {
        attribute: &'static str,
        name: String,
        kind: &'static str,
        actual: &'static str,
    },
    #[error("{attribute} has no value; allowed: {syntax}")]
    MissingValue {
        attribute: &'static str,
        syntax: &'static str,
    },
    #[error("`{word}` after the value of {attribute}; allowed: {syntax}, one attribute per line")]
    ExtraWord {
        attribute: &'static str,
        word: String,
        syntax: &'static str,
    },
    #[error("{statement} `{name}` has no {attribute}; allowed: {syntax}")]
    MissingAttribute {
        statement: &'static str,
        name: String,
        attribute: &'static str,
        syntax: &'static str,
    },
    #[error("{what} {value} is not implemented here; allowed: {implemented}")]
    NotImplemented {
        what: &'static str,
        value: String,
        implemented: &'static str,
    },
}
