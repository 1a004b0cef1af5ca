//! The statements as read, before references between them are resolved:
//! one table per kind, by name.

use super::*;

/// A statement used in place (an inline block) or by name.
#[derive(Debug, Clone)]
pub(super) enum Use<'a, T> {
    Inline(Option<T>),
    Ref(Tok<'a>),
}

/// The statements of one kind, in file order: name, where the name is,
/// and the parsed body (`None` when the body had errors, which were
/// reported; a reference to it is then silently unresolved).
#[derive(Debug)]
pub(super) struct Table<T> {
    pub(super) entries: Vec<(String, usize, Option<T>)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    pub(super) fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|(n, _, _)| n == name)
    }
    /// Where the statement named `name` is written.
    pub(super) fn at(&self, name: &str) -> Option<usize> {
        self.position(name).map(|i| self.entries[i].1)
    }
    pub(super) fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _, _)| n.as_str()).collect()
    }
}

/// An IpService, fully resolved.
#[derive(Debug, Clone, Copy)]
pub(super) struct Service {
    pub(super) protocol: ProtocolSpec,
    pub(super) routing: Routing,
    pub(super) direction: Direction,
    pub(super) connect: Option<TcpConnect>,
    pub(super) security_class: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Generic {
    Permit,
    Deny,
    IpSec,
}

/// An IpDataOffer and whether its HowToEncap was written.
#[derive(Debug, Clone)]
pub(super) struct Offer {
    pub(super) offer: DataOffer,
    pub(super) encap_at: Option<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct RawDynVpn<'a> {
    pub(super) initiation: Initiation,
    pub(super) pfs_group: Option<u16>,
    pub(super) encap_ikev2: Option<(Mode, usize)>,
    pub(super) offers: Vec<Use<'a, Offer>>,
}

/// An IpManVpnAction's body (the name is the table's).
#[derive(Debug, Clone, Copy)]
pub(super) struct RawManVpn {
    pub(super) active: bool,
    pub(super) local: Ipv4Addr,
    pub(super) remote: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub(super) struct RawFilterRule<'a> {
    pub(super) source: AddrSpec,
    pub(super) destination: AddrSpec,
    pub(super) service: Use<'a, Service>,
    pub(super) generic: Tok<'a>,
    pub(super) dynvpn: Option<Tok<'a>>,
    pub(super) manvpn: Option<Tok<'a>>,
}

#[derive(Debug, Clone)]
pub(super) struct RawKxAction<'a> {
    pub(super) initiate: bool,
    pub(super) offers: Vec<Use<'a, KeyExchangeOffer>>,
}

#[derive(Debug, Clone)]
pub(super) struct RawKxRule<'a> {
    pub(super) local: Use<'a, SecurityEndpoint>,
    pub(super) remote: Use<'a, SecurityEndpoint>,
    pub(super) action: Tok<'a>,
    pub(super) shared_key: Vec<u8>,
}

/// Every statement of the file, parsed, before references are followed.
#[derive(Debug, Default)]
pub(super) struct Defs<'a> {
    pub(super) filter_policy: Option<Vec<Tok<'a>>>,
    pub(super) kx_policy: Option<Vec<Tok<'a>>>,
    pub(super) rules: Table<RawFilterRule<'a>>,
    pub(super) services: Table<Service>,
    pub(super) generics: Table<(Generic, bool)>,
    pub(super) dynvpns: Table<RawDynVpn<'a>>,
    pub(super) manvpns: Table<RawManVpn>,
    pub(super) offers: Table<Offer>,
    pub(super) kx_rules: Table<RawKxRule<'a>>,
    pub(super) kx_actions: Table<RawKxAction<'a>>,
    pub(super) kx_offers: Table<KeyExchangeOffer>,
    pub(super) locals: Table<SecurityEndpoint>,
    pub(super) remotes: Table<SecurityEndpoint>,
}

impl Defs<'_> {
    /// Where the statement of `kind` named `name` is written, if there is
    /// one (policies have no name).
    pub(super) fn at(&self, kind: Kind, name: &str) -> Option<usize> {
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
