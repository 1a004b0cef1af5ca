//! Topology files: the model, TOML loading, z/OS VIPADYNAMIC statements,
//! z/OS IP security configuration, validation.
//!
//! A topology file is TOML. Every image carries the VIPADYNAMIC block of its
//! PROFILE.TCPIP as a string, in z/OS syntax (the [`vipa`] module lists the
//! statements, abbreviations and defaults accepted). An image may also
//! carry its IP security, z/OS style, in two more strings (resolved into
//! [`Image::ip_security`]):
//!
//! * `profile`: further PROFILE.TCPIP statements, `IPCONFIG IPSECURITY`
//!   and the `IPSEC ... IPSECRULE ... ENDIPSEC` block of default filter
//!   rules (the [`profile`] module gives the grammar, after IBM's IPSEC
//!   statement);
//! * `ipsec_policy`: the Policy Agent's IPSec policy for the stack, in the
//!   Policy Agent's configuration file syntax (the [`policy`] module lists
//!   the statements and attributes accepted: IpFilterRule, IpService,
//!   IpGenericFilterAction, IpDynVpnAction, IpDataOffer, KeyExchangeRule,
//!   KeyExchangeAction, KeyExchangeOffer, Local/RemoteSecurityEndpoint and
//!   the two policies). It needs `IPCONFIG IPSECURITY` in `profile`.
//!
//! `tests/data/ipsec/figure4.toml` is a complete example.
//!
//! ```toml
//! name = "minimal"                 # optional, default the file stem
//! description = "..."              # optional, for people
//!
//! [external_lan]                   # optional
//! subnet = "198.18.0.0/24"         # default; `net` is .1, image k is .10+k
//!
//! [router]                         # optional
//! name = "net"                     # default
//!
//! [cf]                             # optional
//! name = "CF"                      # default
//! addr = "198.19.255.254"          # default
//!
//! [xcf]                            # optional
//! forwarding = "gre"               # default; or "gre-in-udp" (RFC 8086)
//!
//! [hosts]                          # names for DVIPAs, in every /etc/hosts
//! DVA1 = "198.18.0.100"
//!
//! [[image]]
//! name = "MVS1"                    # 1..=8 of A-Z a-z 0-9
//! ike = true                       # default false
//! # ext_addr = "198.18.0.11"       # default .10+k on the external LAN
//! # xcf_addr = "198.19.0.1"        # default 198.19.0.k
//! vipadynamic = """
//! VIPADYNAMIC
//!   VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100   ; DVA1
//!   VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN 198.18.0.100
//!        PORT 80 DESTIP MVS1 MVS2
//! ENDVIPADYNAMIC
//! """
//!
//! profile = """                    # optional: IP filtering and IPsec
//! IPCONFIG IPSECURITY
//! IPSEC DVIPSEC                    ; DVA1's tunnels follow DVA1
//!   IPSECRULE 198.18.0.100 * PROTOCOL UDP SRCPORT 500   ; IKE until policy is in
//! ENDIPSEC
//! """
//! ipsec_policy = """               # optional: the Policy Agent's IPSec policy
//! IpFilterRule web
//! {
//!   IpSourceAddr 198.18.0.100
//!   IpServiceRef web
//!   IpGenericFilterActionRef ipsec
//!   IpDynVpnActionRef esp
//! }
//! # ... IpService web, IpGenericFilterAction ipsec, IpDynVpnAction esp,
//! # KeyExchangeRule ..., as in tests/data/ipsec/figure4.toml
//! """
//!
//! [[image]]
//! name = "MVS2"                    # no vipadynamic: a target only
//!
//! # [[client_lan]]                 # optional: a LAN several clients share
//! # name = "lan1"
//! # subnet = "198.18.1.0/24"
//!
//! [[client]]
//! name = "client1"                 # its own LAN 198.18.1.0/24 unless `lan` is given
//! # lan = "lan1"
//! # addr = "198.18.1.2"            # default .2, .3, ... on its LAN
//! ipsec = "plexnet"                # none (default) | plexnet: runs `plexnet client`
//!
//! [[manual_sa]]                    # a manually keyed SA pair, see [`manual`]
//! client = "client1"
//! dvipa = "DVA1"
//! secret = "derives the keys"
//! ```
//!
//! [`load`] and [`load_str`] return a fully resolved [`Topology`] or a
//! [`TopologyError`] whose `Display` is `FILE:LINE:COL: what is wrong;
//! allowed: ...`. A bad file yields no topology at all.

mod error;
mod file;
mod generate;
pub mod ike;
mod ike_policy;
mod limits;
pub mod manual;
mod model;
mod pagent;
pub mod policy;
pub mod profile;
mod resolve;
mod source;
mod statement;
mod sysplex_config;
#[cfg(test)]
mod test_support;
pub mod vipa;

pub use error::{Diagnostic, ErrorKind, NameKind, TopologyError};
pub use generate::{generate, GenerateError, IMAGES as GENERATE_IMAGES};
pub use model::*;

use std::path::Path;

/// Reads, parses and validates a topology file.
/// What a z/OS administrator would be told about a valid topology: the
/// DVIPAs whose IPsec is not distributed because their owner or backup
/// has IPCONFIG IPSECURITY without IPSEC DVIPSEC.
pub fn notes(topo: &Topology) -> Vec<String> {
    let mut out = Vec::new();
    for image in topo
        .images
        .iter()
        .filter(|i| !i.dvipsec_allows_distribution())
    {
        let owned = image.vipa.defines.iter().map(|d| (d.addr, "owns"));
        let backed = image.vipa.backups.iter().map(|b| (b.addr, "backs up"));
        for (dvipa, role) in owned.chain(backed) {
            out.push(format!(
                "{} {role} {} with IPCONFIG IPSECURITY but no IPSEC DVIPSEC: the IPsec of {} is not distributed: {} decrypts it itself and forwards plaintext over XCF (add DVIPSEC to its IPSEC statement to distribute it)",
                image.name,
                topo.label(dvipa),
                topo.label(dvipa),
                image.name
            ));
        }
    }
    out
}

pub fn load(path: &Path) -> Result<Topology, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path)
}

/// Parses and validates topology text; `path` names it in errors and becomes
/// [`Topology::source`].
pub fn load_str(text: &str, path: &Path) -> Result<Topology, TopologyError> {
    let file: file::TopologyFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let (line, col) = error::line_col(text, at);
        TopologyError::Invalid {
            first: Box::new(Diagnostic {
                path: path.to_path_buf(),
                line,
                col,
                kind: ErrorKind::Toml {
                    message: toml_message(e.message()),
                },
            }),
            rest: Vec::new(),
        }
    })?;
    resolve::resolve(text, path, file)
}

/// toml's message, on one line, with a hint at what is allowed when toml
/// does not already give one.
fn toml_message(message: &str) -> String {
    let one_line = message.trim().replace('\n', ", ");
    if one_line.contains("expected") {
        one_line
    } else {
        format!("{one_line}; allowed: TOML laid out as in topologies/figure4.toml")
    }
}
