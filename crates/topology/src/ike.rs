//! The clients' `ike = [...]`: which clients negotiate SAs with which
//! DVIPA by IKEv2 (RFC 7296). The routing stack of a DVIPA (its owning
//! image, with `ike = true`) is the IKE responder of every such client, and
//! the initiator towards them for connections the sysplex opens (patent
//! Fig. 11, NEWCONN). How they negotiate comes from the owners' Policy
//! Agent policy (`super::ike_policy`: KeyExchangeRule, KeyExchangeOffer,
//! IpDynVpnAction, IpDataOffer).
//!
//! ```toml
//! [[client]]
//! name = "client1"
//! ipsec = "strongswan"              # or "plexnet": plexnet client's own IKE initiator
//! ike = ["DVA1"]                    # DVIPAs by [hosts] name or address
//! ```
//!
//! The old `[ike]` table (psk, proposals, esp_proposals, lifetimes) is
//! still read, only to refuse it with the policy statements that say the
//! same. Identities are IP addresses (`ID_IPV4_ADDR`): the DVIPA on the
//! sysplex side, the client's address on the other, so a stock
//! swanctl.conf with addresses, proposals and the secret connects.

use std::net::Ipv4Addr;

use super::error::ErrorKind;
use super::file::{ClientDef, IkeDef};
use super::model::{Client, ClientIpsec, HostName, IkeSettings, Image, ManualSa};
use super::resolve::Resolver;
use plexnet_core::ike::proposal::{parse_proposals, Protocol};
use plexnet_core::ike::{Identity, IkeConfig};
use toml::Spanned;

/// Child SA rekey time by default (strongSwan's `rekey_time` for children).
pub const DEFAULT_REKEY_TIME: u64 = 3600;
/// Child SA hard lifetime by default (strongSwan's: rekey time + 10 %).
pub const DEFAULT_LIFE_TIME: u64 = 3960;
/// IKE SA rekey time by default (strongSwan's).
pub const DEFAULT_IKE_REKEY_TIME: u64 = 14400;
/// Half-open IKE SAs before cookies by default.
pub const DEFAULT_COOKIE_THRESHOLD: usize = 16;

/// Resolves `[ike]`, and each client's `ike = [...]` into
/// [`Client::ike`]. Problems go to `r`.
pub(super) fn resolve(
    r: &mut Resolver<'_>,
    def: Option<&IkeDef>,
    client_defs: &[ClientDef],
    clients: &mut [Client],
    images: &[Image],
    hosts: &[HostName],
    manual: &[ManualSa],
) -> Option<IkeSettings> {
    if let Some(d) = def {
        refuse_ike_table(r, d, images);
    }
    let settings = policy_settings(r, client_defs, images);
    let peers = IkePeers {
        images,
        hosts,
        manual,
        dvipas: super::manual::image_dvipas(images).collect(),
        have_settings: settings.is_some(),
    };
    for cdef in client_defs {
        let Some(list) = &cdef.ike else { continue };
        let Some(client) = clients
            .iter_mut()
            .find(|c| c.name.eq_ignore_ascii_case(cdef.name.get_ref()))
        else {
            continue;
        };
        let at = list
            .first()
            .map_or(cdef.name.span().start, |v| v.span().start);
        if peers.client_may_negotiate(r, client, at) {
            for v in list {
                if let Some(dvipa) = peers.dvipa(r, v, client) {
                    client.ike.push(dvipa);
                }
            }
        }
    }
    settings
}

/// The [ike] table is gone: IKE comes from the images' Policy Agent
/// policies. An old file is shown what to write instead.
fn refuse_ike_table(r: &mut Resolver<'_>, d: &IkeDef, images: &[Image]) {
    let Some(old) = settings(r, d) else {
        return;
    };
    let dvipa = images
        .iter()
        .filter(|i| i.ike)
        .find_map(|i| i.vipa.defines.first().map(|d| d.addr));
    let policy = super::ike_policy::equivalent_policy(&old, dvipa);
    r.err(d.psk.span().start, ErrorKind::IkeTableGone { policy });
}

/// The IKE settings the images' policies give; a policy that gives none
/// is reported at the first client that names a DVIPA for IKE.
fn policy_settings(
    r: &mut Resolver<'_>,
    client_defs: &[ClientDef],
    images: &[Image],
) -> Option<IkeSettings> {
    let first_ike = client_defs.iter().find_map(|c| {
        c.ike
            .as_ref()
            .and_then(|l| l.first())
            .map(|v| v.span().start)
    });
    match super::ike_policy::from_images(images) {
        Ok(s) => s.map(|(s, _)| s),
        Err(reason) => {
            if let Some(at) = first_ike {
                r.err(at, ErrorKind::IkePolicy { reason });
            }
            None
        }
    }
}

/// What checking a client's `ike = [...]` needs.
struct IkePeers<'a> {
    images: &'a [Image],
    hosts: &'a [HostName],
    manual: &'a [ManualSa],
    /// Every DVIPA an image defines or backs up.
    dvipas: Vec<Ipv4Addr>,
    /// Whether the policies give IKE settings.
    have_settings: bool,
}

impl IkePeers<'_> {
    /// A client with `ike = [...]` must run an IPsec client, and the
    /// policies must give IKE settings (reported at `at`). Whether its
    /// DVIPAs are worth checking.
    fn client_may_negotiate(&self, r: &mut Resolver<'_>, client: &Client, at: usize) -> bool {
        if client.ipsec == ClientIpsec::None {
            r.err(
                at,
                ErrorKind::IkeClientIpsec {
                    client: client.name.clone(),
                    ipsec: client.ipsec.as_str(),
                },
            );
            return false;
        }
        if !self.have_settings {
            r.err(
                at,
                ErrorKind::IkeWithoutSettings {
                    client: client.name.clone(),
                },
            );
        }
        true
    }

    /// One DVIPA of a client's `ike = [...]`: named once, owned by an image
    /// with IKE, not also keyed by a manual SA, and covered by a
    /// KeyExchangeRule.
    fn dvipa(
        &self,
        r: &mut Resolver<'_>,
        v: &Spanned<String>,
        client: &Client,
    ) -> Option<Ipv4Addr> {
        let dvipa = super::manual::find_dvipa(r, v, &self.dvipas, self.hosts)?;
        let at = v.span().start;
        let name = || client.name.clone();
        let owner = self
            .images
            .iter()
            .find(|i| i.vipa.defines.iter().any(|d| d.addr == dvipa));
        let problem = if client.ike.contains(&dvipa) {
            ErrorKind::IkeDvipaTwice {
                client: name(),
                dvipa,
            }
        } else if let Some(owner) = owner.filter(|o| !o.ike) {
            ErrorKind::IkeDvipaWithoutIke {
                dvipa,
                owner: owner.name.clone(),
            }
        } else if self
            .manual
            .iter()
            .any(|m| m.dvipa == dvipa && m.client.eq_ignore_ascii_case(&client.name))
        {
            ErrorKind::IkeAndManual {
                client: name(),
                dvipa,
            }
        } else if self.have_settings
            && !covered_by_a_key_exchange_rule(self.images, dvipa, client.addr)
        {
            ErrorKind::IkeNoKeyExchangeRule {
                client: name(),
                addr: client.addr,
                dvipa,
            }
        } else {
            return Some(dvipa);
        };
        r.err(at, problem);
        None
    }
}

/// Whether some image with IKE has a KeyExchangeRule whose
/// LocalSecurityEndpoint is `dvipa` and whose RemoteSecurityEndpoint
/// (identity and location) covers `client`: the IKE of a DVIPA answers
/// only the peers its policy names (IP Configuration Reference,
/// KeyExchangeRule).
fn covered_by_a_key_exchange_rule(images: &[Image], dvipa: Ipv4Addr, client: Ipv4Addr) -> bool {
    images
        .iter()
        .filter(|i| i.ike)
        .filter_map(|i| i.ip_security.as_ref()?.policy.as_ref())
        .flat_map(|p| &p.key_exchange_rules)
        .any(|k| {
            k.local.identity.contains(dvipa)
                && k.remote.identity.contains(client)
                && k.remote.location.contains(client)
        })
}

/// A lifetime of the old table: `default` when absent (none when that is
/// 0), none when 0.
fn seconds(
    r: &mut Resolver<'_>,
    v: Option<&toml::Spanned<i64>>,
    field: &'static str,
    default: u64,
) -> Option<u64> {
    let Some(v) = v else {
        return (default > 0).then_some(default);
    };
    match *v.get_ref() {
        0 => None,
        n if n > 0 => Some(n as u64),
        n => {
            r.err(
                v.span().start,
                ErrorKind::LifetimeOutOfRange {
                    field,
                    value: n,
                    max: i64::MAX as u64,
                },
            );
            None
        }
    }
}

/// The old `[ike]` table's settings, checked, to show their policy
/// equivalent; `None` after a problem.
fn settings(r: &mut Resolver<'_>, d: &IkeDef) -> Option<IkeSettings> {
    let before = r.diag_count();
    if d.psk.get_ref().is_empty() {
        r.err(d.psk.span().start, ErrorKind::EmptySecret);
    }
    let (proposals, esp_proposals) = old_proposals(r, d);
    let rekey_time = seconds(r, d.rekey_time.as_ref(), "rekey_time", DEFAULT_REKEY_TIME);
    let life_time = seconds(r, d.life_time.as_ref(), "life_time", DEFAULT_LIFE_TIME);
    let rekey_bytes = seconds(r, d.rekey_bytes.as_ref(), "rekey_bytes", 0);
    let life_bytes = seconds(r, d.life_bytes.as_ref(), "life_bytes", 0);
    let ike_rekey_time = seconds(
        r,
        d.ike_rekey_time.as_ref(),
        "ike_rekey_time",
        DEFAULT_IKE_REKEY_TIME,
    );
    for (what, soft, hard, v) in [
        ("time", rekey_time, life_time, &d.rekey_time),
        ("bytes", rekey_bytes, life_bytes, &d.rekey_bytes),
    ] {
        if let (Some(soft), Some(hard)) = (soft, hard) {
            if soft > hard {
                let at = v.as_ref().map_or(d.psk.span().start, |s| s.span().start);
                r.err(at, ErrorKind::SoftAboveHard { what, soft, hard });
            }
        }
    }
    let cookie_threshold = cookie_threshold(r, d);
    (r.diag_count() == before).then(|| IkeSettings {
        psk: d.psk.get_ref().clone(),
        proposals,
        esp_proposals,
        rekey_time,
        life_time,
        rekey_bytes,
        life_bytes,
        ike_rekey_time,
        cookie_threshold,
        on_demand: d.on_demand.unwrap_or(true),
    })
}

/// The old table's `proposals` (IKE) and `esp_proposals`, each checked.
fn old_proposals(r: &mut Resolver<'_>, d: &IkeDef) -> (String, String) {
    let text = |v: &Option<toml::Spanned<String>>| {
        v.as_ref()
            .map_or_else(|| "default".to_owned(), |s| s.get_ref().clone())
    };
    let proposals = text(&d.proposals);
    let esp_proposals = text(&d.esp_proposals);
    let at = |v: &Option<toml::Spanned<String>>| {
        v.as_ref().map_or(d.psk.span().start, |s| s.span().start)
    };
    if let Err(e) = parse_proposals(Protocol::Ike, &proposals) {
        r.err(
            at(&d.proposals),
            ErrorKind::IkeProposals {
                what: "proposals",
                value: proposals.clone(),
                reason: e.to_string(),
            },
        );
    }
    if let Err(e) = IkeConfig::new(
        Identity::Ipv4(Ipv4Addr::UNSPECIFIED),
        "default",
        &esp_proposals,
    ) {
        r.err(
            at(&d.esp_proposals),
            ErrorKind::IkeProposals {
                what: "esp_proposals",
                value: esp_proposals.clone(),
                reason: e.to_string(),
            },
        );
    }
    (proposals, esp_proposals)
}

/// `cookie_threshold`: 0 to 1000000 half-open IKE SAs.
fn cookie_threshold(r: &mut Resolver<'_>, d: &IkeDef) -> usize {
    match &d.cookie_threshold {
        None => DEFAULT_COOKIE_THRESHOLD,
        Some(v) if (0..=1_000_000).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => {
            r.err(
                v.span().start,
                ErrorKind::LifetimeOutOfRange {
                    field: "cookie_threshold",
                    value: *v.get_ref(),
                    max: 1_000_000,
                },
            );
            DEFAULT_COOKIE_THRESHOLD
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{load_str, ClientIpsec, Topology, TopologyError};
    use std::net::Ipv4Addr;
    use std::path::Path;

    /// MVS1 owns DVA1 and runs IKE by its Policy Agent policy.
    const POLICY: &str = r#"profile = """
IPCONFIG IPSECURITY
IPSEC DVIPSEC
ENDIPSEC
"""
ipsec_policy = """
IpFilterRule web
{
  IpSourceAddr             198.18.0.100
  IpDestAddr               All
  IpService
  {
    Protocol               Tcp
    SourcePortRange        80
    Direction              Bidirectional InboundConnect
  }
  IpGenericFilterActionRef ipsec
  IpDynVpnActionRef        esp
}
IpGenericFilterAction ipsec
{
  IpFilterAction           IpSec
}
IpDynVpnAction esp
{
  Initiation               Either
  IpDataOfferRef           gcm
}
IpDataOffer gcm
{
  HowToEncap               Tunnel
  HowToEncrypt             AES_GCM_16 KeyLength 128
  HowToAuth                ESP Null
  RefreshLifetimeProposed  30
}
KeyExchangeRule clients
{
  LocalSecurityEndpoint
  {
    Identity               IpAddr 198.18.0.100
    Location               198.18.0.100
  }
  RemoteSecurityEndpoint
  {
    Identity               IpAddr All
    Location               Any
  }
  KeyExchangeActionRef     ikev2
  SharedKey                Ascii plexnet-figure4
}
KeyExchangeAction ikev2
{
  HowToInitiate            IKEv2
  HowToRespond             Either
  HowToAuthMe              PresharedKey
  KeyExchangeOfferRef      o1
}
KeyExchangeOffer o1
{
  HowToEncrypt             AES_CBC KeyLength 128
  HowToVerifyMsgs          HMAC_SHA2_256_128
  PseudoRandomFunction     HMAC_SHA2_256
  HowToAuthPeers           PresharedKey
  DHGroup                  Group19
  RefreshLifetimeProposed  240
}
"""
"#;

    fn base() -> String {
        format!(
            r#"
[hosts]
DVA1 = "198.18.0.100"

[[image]]
name = "MVS1"
ike = true
vipadynamic = """
VIPADYNAMIC
  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100
  VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN 198.18.0.100 PORT 80 DESTIP ALL
ENDVIPADYNAMIC
"""
{POLICY}
[[image]]
name = "MVS2"

[[client]]
name = "client1"
ipsec = "strongswan"
ike = ["DVA1"]
"#
        )
    }

    fn load(text: &str) -> Result<Topology, TopologyError> {
        load_str(text, Path::new("t.toml"))
    }

    /// `‸` marks where the error must point.
    fn check(marked: &str, message: &str) {
        let at = marked.find('‸').expect("a marker");
        let text = marked.replace('‸', "");
        let err = load(&text).expect_err("must fail");
        let (line, col) = crate::error::line_col(&text, at);
        assert!(
            err.to_string()
                .starts_with(&format!("t.toml:{line}:{col}: {message}")),
            "{err}"
        );
    }

    #[test]
    fn settings_come_from_the_policy() {
        let t = load(&base()).expect("loads");
        let s = t.ike.as_ref().expect("IKE settings");
        assert_eq!(s.psk, "plexnet-figure4");
        assert_eq!(
            (s.proposals.as_str(), s.esp_proposals.as_str()),
            ("aes128-sha256-prfsha256-ecp256", "aes128gcm16")
        );
        // RefreshLifetimeProposed 30 minutes; the hard lifetime 10 % later.
        assert_eq!((s.rekey_time, s.life_time), (Some(1800), Some(1980)));
        assert_eq!(s.ike_rekey_time, Some(14400));
        assert_eq!((s.rekey_bytes, s.life_bytes), (None, None));
        assert!(s.on_demand);
        assert!(!format!("{s:?}").contains("plexnet-figure4"));
        let c = t.client("client1").expect("client1");
        assert_eq!(c.ipsec, ClientIpsec::Strongswan);
        assert_eq!(c.ike, [Ipv4Addr::new(198, 18, 0, 100)]);
        assert_eq!(t.ike_clients_of(Ipv4Addr::new(198, 18, 0, 100)).count(), 1);
    }

    #[test]
    fn located_errors() {
        let old = base().replace(
            "[[client]]",
            "[ike]\npsk = ‸\"k\"\nesp_proposals = \"aes128-sha1\"\n\n[[client]]",
        );
        check(
            &old,
            "the [ike] table is gone: IKE is configured by the owner's Policy Agent policy",
        );
        let text = old.replace('‸', "");
        let e = load(&text).expect_err("refused").to_string();
        assert!(e.contains("SharedKey Ascii k"), "{e}");
        assert!(
            e.contains("HowToEncrypt AES_CBC KeyLength 128\n  HowToAuth ESP HMAC_SHA1"),
            "{e}"
        );
        check(
            &base().replace("ike = [\"DVA1\"]", "ike = [‸\"DVB9\"]"),
            "`DVB9` is not a DVIPA of this topology; allowed: a DVIPA some image VIPADEFINEs or VIPABACKUPs, by [hosts] name or address: DVA1 (198.18.0.100)",
        );
        check(
            &base()
                .replace("ike = true\n", "")
                .replace("ike = [\"DVA1\"]", "ike = [‸\"DVA1\"]"),
            "client client1 negotiates by IKE but no image with ike = true has a Policy Agent policy with a KeyExchangeRule",
        );
        check(
            &base().replace("ipsec = \"strongswan\"\nike = [\"DVA1\"]", "ike = [‸\"DVA1\"]"),
            "client client1 has ipsec = \"none\" and cannot run IKE; allowed: ike = [...] only for clients with ipsec = \"strongswan\" or \"plexnet\"",
        );
        check(
            &base()
                .replace(POLICY, "")
                .replace("ike = [\"DVA1\"]", "ike = [‸\"DVA1\"]"),
            "client client1 negotiates by IKE but no image with ike = true has a Policy Agent policy with a KeyExchangeRule",
        );
        check(
            &base()
                .replace("    Identity               IpAddr All\n", "    Identity               IpAddr 198.18.9.0/24\n")
                .replace("ike = [\"DVA1\"]", "ike = [‸\"DVA1\"]"),
            "client client1 (198.18.1.2) negotiates with 198.18.0.100 by IKE, but no KeyExchangeRule of its owner covers it",
        );
        let two = base().replace(
            "[[image]]\nname = \"MVS2\"\n",
            &format!(
                "[[image]]\nname = \"MVS2\"\nike = true\n{}",
                POLICY.replace("Ascii plexnet-figure4", "Ascii other")
            ),
        );
        check(
            &two.replace("ike = [\"DVA1\"]", "ike = [‸\"DVA1\"]"),
            "the key-exchange and IpDynVpnAction policies of MVS1 and MVS2 differ",
        );
    }
}
