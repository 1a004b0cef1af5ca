//! Manually keyed SAs between a client and a DVIPA (`[[manual_sa]]`), as
//! z/OS manual tunnels are: both directions declared in the topology, never
//! negotiated and never rekeyed. The DVIPA's routing stack installs the
//! DVIPA side and distributes it exactly as it distributes IKE-made SAs;
//! `plexnet client` runs the client side.
//!
//! `[[manual_sa]]` is the testbed's key source for z/OS manual tunnels. On
//! z/OS a manual tunnel is an IpFilterRule whose IpSec action names an
//! IpManVpnAction (IP Configuration Reference, page
//! `ipmanvpnactionstatement`), with the SPIs and keys in the action; here
//! the image's `ipsec_policy` holds the rule and the IpManVpnAction
//! (`Active`, the endpoints) and this table the SAs. So when an image that
//! owns or backs up the DVIPA has `IPCONFIG IPSECURITY`, the first IPsec
//! rule of its policy that covers the SA's traffic must be such a rule
//! with `LocalSecurityEndpointAddr` the DVIPA and
//! `RemoteSecurityEndpointAddr` the client, else loading fails with an
//! error at the manual SA.
//!
//! ```toml
//! [[client]]
//! name = "client1"
//! ipsec = "plexnet"                 # none (default) | plexnet
//!
//! [[manual_sa]]
//! client = "client1"                # a [[client]] with ipsec = "plexnet"
//! dvipa = "DVA1"                    # a [hosts] name or the DVIPA's address
//! protocol = "esp"                  # esp (default) | ah | ah+esp
//! mode = "tunnel"                   # tunnel (default) | transport
//! encryption = "aes128-cbc"         # aes128-cbc (default) | aes192-cbc | aes256-cbc
//!                                   # | aes128-gcm16 | aes256-gcm16 | null; not with ah
//! integrity = "hmac-sha1-96"        # hmac-sha1-96 (default) | hmac-sha256-128
//!                                   # | hmac-sha384-192 | hmac-sha512-256; none with GCM
//! udp_encap = false                 # ESP in UDP 4500 <-> 4500 (RFC 3948); esp only
//! secret = "figure4 demo"           # derives every key not given in hex (below)
//! # spi_to_dvipa = 0x50000011       # client -> DVIPA (ESP, or AH for ah)
//! # spi_to_client = 0x50000012      # DVIPA -> client
//! # ah_spi_to_dvipa = 0x50000013    # ah+esp only: the AH SAs' SPIs
//! # ah_spi_to_client = 0x50000014
//! # enc_key_to_dvipa = "00112233..."   # hex; GCM keys carry the 4-byte salt at the end
//! # integ_key_to_dvipa = "..."
//! # enc_key_to_client = "..."
//! # integ_key_to_client = "..."
//! # replay_window = 128             # packets, 1 to 1048576
//! # lifetime = { hard_seconds = 86400, soft_bytes = 1000000000 }
//! ```
//!
//! # Algorithms
//! `esp` encrypts with `encryption` and authenticates with `integrity` (AES-GCM
//! brings its own ICV, RFC 4106). `ah` authenticates only, with `integrity`
//! (RFC 4302). `ah+esp` seals ESP with `encryption` alone, then AH with
//! `integrity` over it on the same outer header (RFC 4301 §4.3 transport
//! adjacency, the patent's "Combined AH,ESP"); so the `integ_*` key is always
//! the key of whichever SA carries `integrity`.
//!
//! # SPIs
//! Every SPI must be unique among all manual SAs (both directions). Manual
//! SA number `n` (1-based, file order) gets the defaults
//! `0x50000000 + 16·n + k`, with `k` = 1 to the DVIPA, 2 to the client, 3
//! and 4 for the AH SAs of `ah+esp`; a default that an explicit SPI already
//! uses moves up by `0x01000000` until it is free.
//!
//! # Keys from a secret
//! A key not given in hex is derived from `secret` and the SPI of the SA it
//! keys, so keys differ per SA and per direction:
//!
//! ```text
//! K  = T1 | T2 | ...  truncated to the key length
//! T1 = HMAC-SHA256(secret, "plexnet manual sa" | SPI | usage | 0x01)
//! Tn = HMAC-SHA256(secret, T(n-1) | "plexnet manual sa" | SPI | usage | n)
//! ```
//!
//! where SPI is 4 bytes big-endian and usage is `enc` or `integ` (the shape
//! of IKEv2's prf+, RFC 7296 §2.13). [`derive_key`] computes it, e.g. to
//! give tshark the keys.
//!
//! # Lifetimes and replay window
//! Manual SAs are never rekeyed, so by default they have no time or byte
//! limit; the hard packet limit is the 32-bit sequence space (RFC 4303
//! §3.3.3; manual SAs use no extended sequence numbers) and a soft limit not
//! given is 7/8 of its hard limit. The replay window defaults to 128
//! packets, the window strongSwan's kernel-libipsec uses.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use toml::Spanned;

use super::error::{line_col, ErrorKind};
use super::file::{LifetimeDef, ManualSaDef};
use super::model::{Client, ClientIpsec, HostName, Image, ManualProtocol, ManualSa, SaBundle};
use super::resolve::Resolver;
use super::statement::parse_ipv4;
use plexnet_core::ipsec::filter::{coverage, Coverage};
use plexnet_core::ipsec::policy::FilterAction;
use plexnet_core::ipsec::replay::MAX_WINDOW;
use plexnet_core::ipsec::{
    EncAlg, IntegAlg, Key, Lifetime, Lifetimes, Mode, Protocol, Sa, SaConfig, Spi, TrafficSelector,
    UdpEncap,
};

/// The replay window of a manual SA unless `replay_window` says otherwise.
pub const DEFAULT_REPLAY_WINDOW: u32 = 128;
/// The UDP port of ESP in UDP, both ends (RFC 3948 §2, RFC 3947 §4).
pub const NAT_T_PORT: u16 = 4500;
/// The hard packet limit by default: the last sequence number without ESN
/// (RFC 4303 §3.3.3: the sender must not cycle the counter).
pub const DEFAULT_HARD_PACKETS: u64 = u32::MAX as u64;
/// First default SPI (see the module documentation).
const DEFAULT_SPI_BASE: u32 = 0x5000_0000;
/// Label mixed into every derived key.
const KEY_LABEL: &[u8] = b"plexnet manual sa";

const IPSEC_ALLOWED: &str = "none, plexnet, strongswan";
const PROTOCOL_ALLOWED: &str = "esp, ah, ah+esp";
const MODE_ALLOWED: &str = "tunnel, transport";
const ENC_ALLOWED: &str = "aes128-cbc, aes192-cbc, aes256-cbc, aes128-gcm16, aes256-gcm16, null";
const INTEG_ALLOWED: &str =
    "hmac-sha1-96, hmac-sha256-128, hmac-sha384-192, hmac-sha512-256, none (with AES-GCM only)";

/// What a derived key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsage {
    /// The encryption key (with the GCM salt at the end).
    Enc,
    /// The integrity key.
    Integ,
}

impl KeyUsage {
    const fn label(self) -> &'static [u8] {
        match self {
            KeyUsage::Enc => b"enc",
            KeyUsage::Integ => b"integ",
        }
    }
}

/// A key of `len` bytes derived from `secret` for the SA `spi` (see the
/// module documentation for the formula).
pub fn derive_key(secret: &str, spi: Spi, usage: KeyUsage, len: usize) -> Key {
    let mut out = Vec::with_capacity(len + 32);
    let mut prev: Vec<u8> = Vec::new();
    let mut n: u8 = 1;
    while out.len() < len {
        // HMAC accepts keys of any length: new_from_slice cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            break;
        };
        mac.update(&prev);
        mac.update(KEY_LABEL);
        mac.update(&spi.0.to_be_bytes());
        mac.update(usage.label());
        mac.update(&[n]);
        prev = mac.finalize().into_bytes().to_vec();
        out.extend_from_slice(&prev);
        n = n.wrapping_add(1);
    }
    out.truncate(len);
    Key(out)
}

/// The topology spelling of an encryption algorithm.
pub const fn enc_name(alg: EncAlg) -> &'static str {
    match alg {
        EncAlg::Null => "null",
        EncAlg::AesCbc128 => "aes128-cbc",
        EncAlg::AesCbc192 => "aes192-cbc",
        EncAlg::AesCbc256 => "aes256-cbc",
        EncAlg::AesGcm16_128 => "aes128-gcm16",
        EncAlg::AesGcm16_256 => "aes256-gcm16",
    }
}

/// The topology spelling of an integrity algorithm.
pub const fn integ_name(alg: IntegAlg) -> &'static str {
    match alg {
        IntegAlg::None => "none",
        IntegAlg::HmacSha1_96 => "hmac-sha1-96",
        IntegAlg::HmacSha256_128 => "hmac-sha256-128",
        IntegAlg::HmacSha384_192 => "hmac-sha384-192",
        IntegAlg::HmacSha512_256 => "hmac-sha512-256",
    }
}

fn parse_enc(s: &str) -> Option<EncAlg> {
    EncAlg::ALL.into_iter().find(|a| enc_name(*a) == s)
}

fn parse_integ(s: &str) -> Option<IntegAlg> {
    IntegAlg::ALL
        .into_iter()
        .chain([IntegAlg::None])
        .find(|a| integ_name(*a) == s)
}

/// `[[client]] ipsec = ...`: `none` when absent.
pub(super) fn client_ipsec(r: &mut Resolver<'_>, v: Option<&Spanned<String>>) -> ClientIpsec {
    let Some(v) = v else {
        return ClientIpsec::None;
    };
    match v.get_ref().as_str() {
        "none" => ClientIpsec::None,
        "plexnet" => ClientIpsec::Plexnet,
        "strongswan" => ClientIpsec::Strongswan,
        other => {
            r.err(
                v.span().start,
                ErrorKind::UnknownChoice {
                    what: "ipsec",
                    value: other.to_owned(),
                    allowed: IPSEC_ALLOWED,
                },
            );
            ClientIpsec::None
        }
    }
}

/// A keyword field: its value from `table`, or `default` when absent; an
/// unknown value is reported and yields `None`.
fn choice<T: Copy>(
    r: &mut Resolver<'_>,
    v: Option<&Spanned<String>>,
    what: &'static str,
    allowed: &'static str,
    default: T,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let Some(v) = v else {
        return Some(default);
    };
    let parsed = parse(v.get_ref());
    if parsed.is_none() {
        r.err(
            v.span().start,
            ErrorKind::UnknownChoice {
                what,
                value: v.get_ref().clone(),
                allowed,
            },
        );
    }
    parsed
}

/// Which SAs a manual SA has per direction, and their SPI fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The ESP SA, or the AH SA of protocol `ah`.
    Main,
    /// The AH SA of `ah+esp`.
    BundleAh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToDvipa,
    ToClient,
}

impl Dir {
    const BOTH: [Dir; 2] = [Dir::ToDvipa, Dir::ToClient];

    fn spi_field(self, slot: Slot) -> &'static str {
        match (self, slot) {
            (Dir::ToDvipa, Slot::Main) => "spi_to_dvipa",
            (Dir::ToClient, Slot::Main) => "spi_to_client",
            (Dir::ToDvipa, Slot::BundleAh) => "ah_spi_to_dvipa",
            (Dir::ToClient, Slot::BundleAh) => "ah_spi_to_client",
        }
    }

    fn key_field(self, usage: KeyUsage) -> &'static str {
        match (self, usage) {
            (Dir::ToDvipa, KeyUsage::Enc) => "enc_key_to_dvipa",
            (Dir::ToDvipa, KeyUsage::Integ) => "integ_key_to_dvipa",
            (Dir::ToClient, KeyUsage::Enc) => "enc_key_to_client",
            (Dir::ToClient, KeyUsage::Integ) => "integ_key_to_client",
        }
    }

    fn key_what(self, usage: KeyUsage) -> &'static str {
        match (self, usage) {
            (Dir::ToDvipa, KeyUsage::Enc) => "encryption client to DVIPA",
            (Dir::ToDvipa, KeyUsage::Integ) => "integrity client to DVIPA",
            (Dir::ToClient, KeyUsage::Enc) => "encryption DVIPA to client",
            (Dir::ToClient, KeyUsage::Integ) => "integrity DVIPA to client",
        }
    }

    /// The default SPI offset `k` of the module documentation.
    fn spi_offset(self, slot: Slot) -> u32 {
        match (self, slot) {
            (Dir::ToDvipa, Slot::Main) => 1,
            (Dir::ToClient, Slot::Main) => 2,
            (Dir::ToDvipa, Slot::BundleAh) => 3,
            (Dir::ToClient, Slot::BundleAh) => 4,
        }
    }
}

fn spi_def(def: &ManualSaDef, dir: Dir, slot: Slot) -> Option<&Spanned<i64>> {
    match (dir, slot) {
        (Dir::ToDvipa, Slot::Main) => def.spi_to_dvipa.as_ref(),
        (Dir::ToClient, Slot::Main) => def.spi_to_client.as_ref(),
        (Dir::ToDvipa, Slot::BundleAh) => def.ah_spi_to_dvipa.as_ref(),
        (Dir::ToClient, Slot::BundleAh) => def.ah_spi_to_client.as_ref(),
    }
}

fn key_def(def: &ManualSaDef, dir: Dir, usage: KeyUsage) -> Option<&Spanned<String>> {
    match (dir, usage) {
        (Dir::ToDvipa, KeyUsage::Enc) => def.enc_key_to_dvipa.as_ref(),
        (Dir::ToDvipa, KeyUsage::Integ) => def.integ_key_to_dvipa.as_ref(),
        (Dir::ToClient, KeyUsage::Enc) => def.enc_key_to_client.as_ref(),
        (Dir::ToClient, KeyUsage::Integ) => def.integ_key_to_client.as_ref(),
    }
}

/// Algorithms of one manual SA after defaults and checks.
#[derive(Debug, Clone, Copy)]
struct Algs {
    protocol: ManualProtocol,
    mode: Mode,
    enc: EncAlg,
    integ: IntegAlg,
    udp_encap: bool,
}

/// Resolves every `[[manual_sa]]`. Problems go to `r`; a manual SA with a
/// problem is left out.
pub(super) fn resolve(
    r: &mut Resolver<'_>,
    defs: &[ManualSaDef],
    clients: &[Client],
    images: &[Image],
    hosts: &[HostName],
) -> Vec<ManualSa> {
    // Explicit SPIs first: duplicates are reported at the later one, and
    // defaults avoid every explicit value.
    let mut used: HashMap<u32, usize> = HashMap::new();
    for def in defs {
        let protocol = def
            .protocol
            .as_ref()
            .and_then(|p| parse_protocol(p.get_ref()));
        for dir in Dir::BOTH {
            for slot in [Slot::Main, Slot::BundleAh] {
                let Some(v) = spi_def(def, dir, slot) else {
                    continue;
                };
                let at = v.span().start;
                if slot == Slot::BundleAh && protocol != Some(ManualProtocol::AhEsp) {
                    r.err(
                        at,
                        ErrorKind::AhSpiWithoutBundle {
                            field: dir.spi_field(slot),
                            protocol: protocol.unwrap_or(ManualProtocol::Esp).as_str(),
                        },
                    );
                    continue;
                }
                let value = *v.get_ref();
                let Some(spi) = spi_value(value) else {
                    r.err(at, ErrorKind::SpiOutOfRange { value });
                    continue;
                };
                if let Some(&first) = used.get(&spi) {
                    let first_line = line_col(r.src, first).0;
                    r.err(at, ErrorKind::DuplicateSpi { spi, first_line });
                    continue;
                }
                used.insert(spi, at);
            }
        }
    }

    let dvipas: Vec<Ipv4Addr> = images
        .iter()
        .flat_map(|i| {
            i.vipa
                .defines
                .iter()
                .map(|d| d.addr)
                .chain(i.vipa.backups.iter().map(|b| b.addr))
        })
        .fold(Vec::new(), |mut v, a| {
            if !v.contains(&a) {
                v.push(a);
            }
            v
        });
    let mut pairs: HashMap<(String, Ipv4Addr), usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        let before = r_errors(r);
        let client = find_client(r, def, clients);
        let dvipa = find_dvipa(r, &def.dvipa, &dvipas, hosts);
        if let (Some(c), Some(d)) = (client, dvipa) {
            let key = (c.name.to_ascii_lowercase(), d);
            if let Some(&first) = pairs.get(&key) {
                let first_line = line_col(r.src, first).0;
                r.err(
                    def.dvipa.span().start,
                    ErrorKind::DuplicateManualSa {
                        client: c.name.clone(),
                        dvipa: d,
                        first_line,
                    },
                );
            } else {
                pairs.insert(key, def.client.span().start);
            }
        }
        let algs = algorithms(r, def);
        let replay_window = replay_window(r, def);
        let lifetimes = lifetimes(r, def.lifetime.as_ref());
        let secret = match &def.secret {
            Some(s) if s.get_ref().is_empty() => {
                // Reported here; keys are not reported missing as well.
                r.err(s.span().start, ErrorKind::EmptySecret);
                Some("")
            }
            Some(s) => Some(s.get_ref().as_str()),
            None => None,
        };
        let (Some(c), Some(dvipa), Some(algs)) = (client, dvipa, algs) else {
            continue;
        };
        let mut spi_of = |dir: Dir, slot: Slot| -> Spi {
            match spi_def(def, dir, slot).and_then(|v| spi_value(*v.get_ref())) {
                Some(s) => Spi(s),
                None => Spi(default_spi(&mut used, i, dir, slot)),
            }
        };
        let spis: Vec<(Dir, Spi, Option<Spi>)> = Dir::BOTH
            .iter()
            .map(|&dir| {
                let main = spi_of(dir, Slot::Main);
                let ah =
                    (algs.protocol == ManualProtocol::AhEsp).then(|| spi_of(dir, Slot::BundleAh));
                (dir, main, ah)
            })
            .collect();
        let mut bundles = Vec::new();
        for (dir, main_spi, ah_spi) in spis {
            let (src, dst) = match dir {
                Dir::ToDvipa => (c.addr, dvipa),
                Dir::ToClient => (dvipa, c.addr),
            };
            let base = SaConfig {
                spi: main_spi,
                protocol: Protocol::Esp,
                mode: algs.mode,
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                enc: EncAlg::Null,
                enc_key: Key::default(),
                integ: IntegAlg::None,
                integ_key: Key::default(),
                esn: false,
                replay_window,
                lifetimes,
                udp_encap: algs.udp_encap.then_some(UdpEncap {
                    src_port: NAT_T_PORT,
                    dst_port: NAT_T_PORT,
                }),
                selector: TrafficSelector::hosts(IpAddr::V4(src), IpAddr::V4(dst)),
            };
            // Which SA carries encryption and which integrity.
            let (esp_spi, integ_spi, integ_on_ah) = match algs.protocol {
                ManualProtocol::Esp => (Some(main_spi), main_spi, false),
                ManualProtocol::Ah => (None, main_spi, true),
                ManualProtocol::AhEsp => (Some(main_spi), ah_spi.unwrap_or(main_spi), true),
            };
            let enc_key = match esp_spi {
                Some(spi) => key(
                    r,
                    def,
                    secret,
                    dir,
                    KeyUsage::Enc,
                    enc_name(algs.enc),
                    algs.enc.key_len(),
                    spi,
                ),
                None => unused_enc_key(r, def, dir),
            };
            let integ_key = key(
                r,
                def,
                secret,
                dir,
                KeyUsage::Integ,
                integ_name(algs.integ),
                algs.integ.key_len(),
                integ_spi,
            );
            let (Some(enc_key), Some(integ_key)) = (enc_key, integ_key) else {
                continue;
            };
            let esp = esp_spi.map(|spi| SaConfig {
                spi,
                enc: algs.enc,
                enc_key: enc_key.clone(),
                integ: if integ_on_ah {
                    IntegAlg::None
                } else {
                    algs.integ
                },
                integ_key: if integ_on_ah {
                    Key::default()
                } else {
                    integ_key.clone()
                },
                ..base.clone()
            });
            let ah = integ_on_ah.then(|| SaConfig {
                spi: integ_spi,
                protocol: Protocol::Ah,
                enc: EncAlg::Null,
                enc_key: Key::default(),
                integ: algs.integ,
                integ_key: integ_key.clone(),
                udp_encap: None,
                ..base.clone()
            });
            bundles.push(SaBundle { esp, ah });
        }
        if r_errors(r) != before || bundles.len() != 2 {
            continue;
        }
        // Every SA must also pass the engine's own checks; the rules above
        // make this hold, and a failure is reported rather than shipped.
        if let Some(e) = bundles
            .iter()
            .flat_map(|b| b.sas())
            .find_map(|c| Sa::new(c.clone()).err())
        {
            r.err(
                def.client.span().start,
                ErrorKind::Combination {
                    problem: e.to_string(),
                    allowed: "algorithms and keys the IPsec engine accepts",
                },
            );
            continue;
        }
        let to_client = bundles.pop();
        let to_dvipa = bundles.pop();
        if let (Some(to_dvipa), Some(to_client)) = (to_dvipa, to_client) {
            let sa = ManualSa {
                client: c.name.clone(),
                client_addr: c.addr,
                dvipa,
                protocol: algs.protocol,
                mode: algs.mode,
                udp_encap: algs.udp_encap,
                to_dvipa,
                to_client,
            };
            check_policy(r, def, &sa, images);
            out.push(sa);
        }
    }
    out
}

/// A manual SA and the IP security of the images that route its DVIPA
/// (the owner, and the backups that take it over): a stack with `IPCONFIG
/// IPSECURITY` filters the SA's traffic, so, as in z/OS, a manual tunnel
/// needs an IpFilterRule whose action is an IpManVpnAction with the
/// tunnel's endpoints (IP Configuration Reference, page
/// `ipmanvpnactionstatement`), and that rule must be the one the filter
/// table anchors the SA pair at ([`plexnet_core::ipsec::filter::FilterTable::anchor_for`]:
/// the first IPsec rule that covers it). The keys stay in `[[manual_sa]]`.
fn check_policy(r: &mut Resolver<'_>, def: &ManualSaDef, sa: &ManualSa, images: &[Image]) {
    let routes = |i: &&Image| {
        i.vipa.defines.iter().any(|d| d.addr == sa.dvipa)
            || i.vipa.backups.iter().any(|b| b.addr == sa.dvipa)
    };
    for image in images.iter().filter(routes) {
        let Some(sec) = image.ip_security.as_ref().filter(|s| s.ipsecurity) else {
            continue;
        };
        let rules = sec
            .policy
            .as_ref()
            .map_or(&sec.default_rules, |p| &p.filter_rules);
        let (out, inb) = (&sa.to_client, &sa.to_dvipa);
        let (Some(out), Some(inb)) = (out.sas().next(), inb.sas().next()) else {
            continue;
        };
        let anchor = rules.iter().find(|rule| {
            rule.action.is_ipsec()
                && coverage(&rule.conditions, &out.selector, &inb.selector) == Coverage::Covers
        });
        let problem = match anchor.map(|rule| (rule, &rule.action)) {
            Some((_, FilterAction::Manual(m)))
                if m.local == sa.dvipa && m.remote == sa.client_addr =>
            {
                continue
            }
            Some((rule, FilterAction::Manual(m))) => format!(
                "the IpManVpnAction {} of IpFilterRule {}, which covers it, has endpoints {} and {}",
                m.name, rule.name, m.local, m.remote
            ),
            Some((rule, _)) => format!(
                "IpFilterRule {}, the first IPsec rule that covers it, has an IpDynVpnAction",
                rule.name
            ),
            None => "no IPsec IpFilterRule covers its traffic".to_owned(),
        };
        r.err(
            def.client.span().start,
            ErrorKind::ManualSaNotInPolicy {
                client: sa.client.clone(),
                addr: sa.client_addr,
                dvipa: sa.dvipa,
                image: image.name.clone(),
                problem,
            },
        );
    }
}

fn r_errors(r: &Resolver<'_>) -> usize {
    r.diag_count()
}

fn parse_protocol(s: &str) -> Option<ManualProtocol> {
    match s {
        "esp" => Some(ManualProtocol::Esp),
        "ah" => Some(ManualProtocol::Ah),
        "ah+esp" => Some(ManualProtocol::AhEsp),
        _ => None,
    }
}

/// An SPI a file may give: 256 to 2^32 - 1 (RFC 4303 §2.1).
fn spi_value(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|s| *s >= 256)
}

/// The default SPI of manual SA `index` (0-based), moved up past used values.
fn default_spi(used: &mut HashMap<u32, usize>, index: usize, dir: Dir, slot: Slot) -> u32 {
    let n = (index as u32).wrapping_add(1);
    let mut spi = DEFAULT_SPI_BASE
        .wrapping_add(n.wrapping_mul(16))
        .wrapping_add(dir.spi_offset(slot));
    while spi < 256 || used.contains_key(&spi) {
        spi = spi.wrapping_add(0x0100_0000);
    }
    used.insert(spi, 0);
    spi
}

fn find_client<'c>(
    r: &mut Resolver<'_>,
    def: &ManualSaDef,
    clients: &'c [Client],
) -> Option<&'c Client> {
    let name = def.client.get_ref();
    let at = def.client.span().start;
    let Some(c) = clients.iter().find(|c| c.name.eq_ignore_ascii_case(name)) else {
        let names: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();
        let allowed = if names.is_empty() {
            "none, the topology has no [[client]]".to_owned()
        } else {
            names.join(", ")
        };
        r.err(
            at,
            ErrorKind::UnknownClient {
                name: name.clone(),
                allowed,
            },
        );
        return None;
    };
    if c.ipsec != ClientIpsec::Plexnet {
        r.err(
            at,
            ErrorKind::ClientWithoutIpsec {
                client: c.name.clone(),
                ipsec: c.ipsec.as_str(),
            },
        );
        return None;
    }
    Some(c)
}

/// A `[hosts]` name of a DVIPA, or a DVIPA's address.
pub(super) fn find_dvipa(
    r: &mut Resolver<'_>,
    v: &Spanned<String>,
    dvipas: &[Ipv4Addr],
    hosts: &[HostName],
) -> Option<Ipv4Addr> {
    let text = v.get_ref();
    let addr = parse_ipv4(text).or_else(|| {
        hosts
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(text))
            .map(|h| h.addr)
    });
    match addr {
        Some(a) if dvipas.contains(&a) => Some(a),
        _ => {
            let list: Vec<String> = dvipas
                .iter()
                .map(|d| match hosts.iter().find(|h| h.addr == *d) {
                    Some(h) => format!("{} ({d})", h.name),
                    None => d.to_string(),
                })
                .collect();
            let allowed = if list.is_empty() {
                "none, no image defines a DVIPA".to_owned()
            } else {
                format!(
                    "a DVIPA some image VIPADEFINEs or VIPABACKUPs, by [hosts] name or address: {}",
                    list.join(", ")
                )
            };
            r.err(
                v.span().start,
                ErrorKind::UnknownDvipa {
                    text: text.clone(),
                    allowed,
                },
            );
            None
        }
    }
}

/// Protocol, mode, algorithms and UDP encapsulation with their defaults
/// and combination rules.
fn algorithms(r: &mut Resolver<'_>, def: &ManualSaDef) -> Option<Algs> {
    let protocol = choice(
        r,
        def.protocol.as_ref(),
        "protocol",
        PROTOCOL_ALLOWED,
        ManualProtocol::Esp,
        parse_protocol,
    );
    let mode = choice(
        r,
        def.mode.as_ref(),
        "mode",
        MODE_ALLOWED,
        Mode::Tunnel,
        |s| match s {
            "tunnel" => Some(Mode::Tunnel),
            "transport" => Some(Mode::Transport),
            _ => None,
        },
    );
    let enc_given = choice(
        r,
        def.encryption.as_ref(),
        "encryption",
        ENC_ALLOWED,
        None,
        |s| parse_enc(s).map(Some),
    );
    let integ_given = choice(
        r,
        def.integrity.as_ref(),
        "integrity",
        INTEG_ALLOWED,
        None,
        |s| parse_integ(s).map(Some),
    );
    let (protocol, mode, enc_given, integ_given) = (protocol?, mode?, enc_given?, integ_given?);
    let enc_at = def.encryption.as_ref().map_or(0, |v| v.span().start);
    let integ_at = def.integrity.as_ref().map_or(0, |v| v.span().start);
    let mut ok = true;
    let enc = match protocol {
        ManualProtocol::Ah => {
            if let Some(e) = enc_given {
                r.err(
                    enc_at,
                    ErrorKind::Combination {
                        problem: format!(
                            "protocol ah does not encrypt, but encryption = \"{}\" is given",
                            enc_name(e)
                        ),
                        allowed: "no `encryption` with protocol = \"ah\"; protocol = \"esp\" or \"ah+esp\" to encrypt",
                    },
                );
                ok = false;
            }
            EncAlg::Null
        }
        ManualProtocol::Esp | ManualProtocol::AhEsp => {
            let e = enc_given.unwrap_or(EncAlg::AesCbc128);
            if protocol == ManualProtocol::AhEsp && e == EncAlg::Null {
                r.err(
                    enc_at,
                    ErrorKind::Combination {
                        problem: "ah+esp with null encryption adds nothing to AH".to_owned(),
                        allowed: "an encrypting algorithm with ah+esp, or protocol = \"ah\"",
                    },
                );
                ok = false;
            }
            e
        }
    };
    let integ = match (protocol, enc.is_aead()) {
        (ManualProtocol::Esp, true) => match integ_given {
            Some(i) if i != IntegAlg::None => {
                r.err(
                    integ_at,
                    ErrorKind::Combination {
                        problem: format!(
                            "{} carries its own ICV, but integrity = \"{}\" is given",
                            enc_name(enc),
                            integ_name(i)
                        ),
                        allowed: "no `integrity` (or \"none\") with AES-GCM",
                    },
                );
                ok = false;
                i
            }
            _ => IntegAlg::None,
        },
        (ManualProtocol::Esp, false) => match integ_given {
            Some(IntegAlg::None) => {
                r.err(
                    integ_at,
                    ErrorKind::Combination {
                        problem: format!(
                            "ESP with {} and no integrity accepts forged packets",
                            enc_name(enc)
                        ),
                        allowed: "an integrity algorithm, or AES-GCM encryption",
                    },
                );
                ok = false;
                IntegAlg::None
            }
            i => i.unwrap_or(IntegAlg::HmacSha1_96),
        },
        (ManualProtocol::Ah | ManualProtocol::AhEsp, _) => match integ_given {
            Some(IntegAlg::None) => {
                r.err(
                    integ_at,
                    ErrorKind::Combination {
                        problem: "AH needs integrity, but integrity = \"none\" is given".to_owned(),
                        allowed: "an HMAC integrity algorithm with ah and ah+esp",
                    },
                );
                ok = false;
                IntegAlg::None
            }
            i => i.unwrap_or(IntegAlg::HmacSha1_96),
        },
    };
    let udp_encap = def.udp_encap.as_ref().is_some_and(|u| *u.get_ref());
    if udp_encap && protocol != ManualProtocol::Esp {
        let at = def.udp_encap.as_ref().map_or(0, |u| u.span().start);
        r.err(
            at,
            ErrorKind::Combination {
                problem: format!("udp_encap = true with protocol {}", protocol.as_str()),
                allowed: "udp_encap only with protocol = \"esp\" (RFC 3948 encapsulates ESP only)",
            },
        );
        ok = false;
    }
    ok.then_some(Algs {
        protocol,
        mode,
        enc,
        integ,
        udp_encap,
    })
}

fn replay_window(r: &mut Resolver<'_>, def: &ManualSaDef) -> u32 {
    let Some(v) = &def.replay_window else {
        return DEFAULT_REPLAY_WINDOW;
    };
    let value = *v.get_ref();
    match u32::try_from(value) {
        Ok(w) if (1..=MAX_WINDOW).contains(&w) => w,
        _ => {
            r.err(
                v.span().start,
                ErrorKind::ReplayWindowOutOfRange {
                    value,
                    max: MAX_WINDOW,
                },
            );
            DEFAULT_REPLAY_WINDOW
        }
    }
}

/// Soft and hard limits; a soft limit not given is 7/8 of the hard one.
fn lifetimes(r: &mut Resolver<'_>, def: Option<&LifetimeDef>) -> Lifetimes {
    let empty = LifetimeDef::default();
    let def = def.unwrap_or(&empty);
    let mut limit = |field: &'static str, v: &Option<Spanned<i64>>, max: u64| -> Option<u64> {
        let v = v.as_ref()?;
        let value = *v.get_ref();
        match u64::try_from(value) {
            Ok(x) if (1..=max).contains(&x) => Some(x),
            _ => {
                r.err(
                    v.span().start,
                    ErrorKind::LifetimeOutOfRange { field, value, max },
                );
                None
            }
        }
    };
    let big = i64::MAX as u64;
    let hard = Lifetime {
        seconds: limit("hard_seconds", &def.hard_seconds, big),
        bytes: limit("hard_bytes", &def.hard_bytes, big),
        packets: limit("hard_packets", &def.hard_packets, DEFAULT_HARD_PACKETS)
            .or(Some(DEFAULT_HARD_PACKETS)),
    };
    let given = Lifetime {
        seconds: limit("soft_seconds", &def.soft_seconds, big),
        bytes: limit("soft_bytes", &def.soft_bytes, big),
        packets: limit("soft_packets", &def.soft_packets, DEFAULT_HARD_PACKETS),
    };
    let seven_eighths = |h: Option<u64>| h.map(|h| h - h / 8);
    let soft = Lifetime {
        seconds: given.seconds.or(seven_eighths(hard.seconds)),
        bytes: given.bytes.or(seven_eighths(hard.bytes)),
        packets: given.packets.or(seven_eighths(hard.packets)),
    };
    for (what, s, h, v) in [
        ("seconds", given.seconds, hard.seconds, &def.soft_seconds),
        ("bytes", given.bytes, hard.bytes, &def.soft_bytes),
        ("packets", given.packets, hard.packets, &def.soft_packets),
    ] {
        if let (Some(soft), Some(hard), Some(v)) = (s, h, v) {
            if soft > hard {
                r.err(
                    v.span().start,
                    ErrorKind::SoftAboveHard { what, soft, hard },
                );
            }
        }
    }
    Lifetimes { soft, hard }
}

/// Protocol `ah` has no encryption: an encryption key is an error.
fn unused_enc_key(r: &mut Resolver<'_>, def: &ManualSaDef, dir: Dir) -> Option<Key> {
    match key_def(def, dir, KeyUsage::Enc) {
        Some(v) => {
            r.err(
                v.span().start,
                ErrorKind::UnusedKey {
                    field: dir.key_field(KeyUsage::Enc),
                    why: "protocol ah does not encrypt".to_owned(),
                },
            );
            None
        }
        None => Some(Key::default()),
    }
}

/// The key for one algorithm of one direction: hex from the file, else
/// derived from the secret. `None` after an error; an empty key when the
/// algorithm needs none.
#[allow(clippy::too_many_arguments)]
fn key(
    r: &mut Resolver<'_>,
    def: &ManualSaDef,
    secret: Option<&str>,
    dir: Dir,
    usage: KeyUsage,
    alg: &'static str,
    len: usize,
    spi: Spi,
) -> Option<Key> {
    let field = dir.key_field(usage);
    let given = key_def(def, dir, usage);
    if len == 0 {
        if let Some(v) = given {
            let why = match usage {
                KeyUsage::Enc => format!("encryption {alg} takes no key"),
                KeyUsage::Integ => format!("integrity {alg} takes no key"),
            };
            r.err(v.span().start, ErrorKind::UnusedKey { field, why });
            return None;
        }
        return Some(Key::default());
    }
    match (given, secret) {
        (Some(v), _) => {
            let Some(k) = Key::from_hex(v.get_ref()) else {
                r.err(v.span().start, ErrorKind::BadKeyHex { field });
                return None;
            };
            if k.0.len() != len {
                r.err(
                    v.span().start,
                    ErrorKind::KeyLength {
                        field,
                        alg,
                        got: k.0.len(),
                        want: len,
                    },
                );
                return None;
            }
            Some(k)
        }
        (None, Some(secret)) => Some(derive_key(secret, spi, usage, len)),
        (None, None) => {
            r.err(
                def.client.span().start,
                ErrorKind::MissingKey {
                    what: dir.key_what(usage),
                    field,
                },
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_str, Topology, TopologyError};
    use std::path::Path;

    const MARK: char = '‸';

    /// MVS1 owns DVA1 (and DVB1 as an address only), client1 runs plexnet;
    /// one manual SA with defaults.
    const BASE: &str = r#"name = "t"
[hosts]
DVA1 = "198.18.0.100"
[[image]]
name = "MVS1"
vipadynamic = """
VIPADYNAMIC
  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100
  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.101
ENDVIPADYNAMIC
"""
[[client]]
name = "client1"
ipsec = "plexnet"
[[client]]
name = "client2"
[[manual_sa]]
client = "client1"
dvipa = "DVA1"
secret = "s3cret"
"#;

    fn load(text: &str) -> Result<Topology, TopologyError> {
        load_str(text, Path::new("t.toml"))
    }

    fn check(marked: &str, message: &str) {
        let at = marked.find(MARK).expect("a mark in the test text");
        let text = marked.replacen(MARK, "", 1);
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        match load(&text) {
            Ok(_) => panic!("loaded, expected t.toml:{line}:{col}: {message}"),
            Err(e) => assert_eq!(e.to_string(), format!("t.toml:{line}:{col}: {message}")),
        }
    }

    /// BASE with `extra` lines added to the manual SA.
    fn with(extra: &str) -> String {
        format!("{BASE}{extra}\n")
    }

    /// BASE with IPCONFIG IPSECURITY on MVS1 and `policy` as its
    /// `ipsec_policy`.
    fn secured(policy: &str) -> String {
        let image = "ENDVIPADYNAMIC\n\"\"\"\n";
        assert!(BASE.contains(image));
        let security = format!(
            "profile = \"\"\"\nIPCONFIG IPSECURITY\nIPSEC DVIPSEC\nENDIPSEC\n\"\"\"\nipsec_policy = \"\"\"\n{policy}\"\"\"\n"
        );
        BASE.replacen(image, &format!("{image}{security}"), 1)
    }

    /// An ipsec_policy with one IpFilterRule for DVA1 <-> `remote` whose
    /// action is `action` (`ipsec` with an IpManVpnAction, or `permit`).
    fn policy(remote: &str, action: &str) -> String {
        let man = if action == "ipsec" {
            "  IpManVpnActionRef man\n"
        } else {
            ""
        };
        format!(
            "IpFilterRule r\n{{\n  IpSourceAddr 198.18.0.100\n  IpDestAddr 198.18.1.0/24\n  IpService\n  {{\n    Protocol All\n  }}\n  IpGenericFilterActionRef a\n{man}}}\n\
IpGenericFilterAction a\n{{\n  IpFilterAction {action}\n}}\n\
IpManVpnAction man\n{{\n  LocalSecurityEndpointAddr 198.18.0.100\n  RemoteSecurityEndpointAddr {remote}\n}}\n"
        )
    }

    #[test]
    fn manual_sa_needs_a_manual_tunnel_rule_on_a_secured_owner() {
        let t = load(&secured(&policy("198.18.1.2", "ipsec"))).expect("covered");
        assert_eq!(only(&t).dvipa, "198.18.0.100".parse::<Ipv4Addr>().unwrap());
        const ALLOWED: &str = "allowed: in its ipsec_policy, an IpFilterRule that covers the SA's traffic (the first IPsec rule that does) with IpGenericFilterActionRef of an IpSec action and IpManVpnActionRef of an IpManVpnAction with LocalSecurityEndpointAddr 198.18.0.100 and RemoteSecurityEndpointAddr 198.18.1.2";
        let at = |text: String| text.replacen("client = \"client1\"", "client = ‸\"client1\"", 1);
        check(
            &at(secured(&policy("198.18.1.9", "ipsec"))),
            &format!("manual SA between client1 (198.18.1.2) and 198.18.0.100: MVS1 has IPCONFIG IPSECURITY and the IpManVpnAction man of IpFilterRule r, which covers it, has endpoints 198.18.0.100 and 198.18.1.9; {ALLOWED}"),
        );
        check(
            &at(secured(&policy("198.18.1.2", "permit"))),
            &format!("manual SA between client1 (198.18.1.2) and 198.18.0.100: MVS1 has IPCONFIG IPSECURITY and no IPsec IpFilterRule covers its traffic; {ALLOWED}"),
        );
    }

    fn only(t: &Topology) -> &ManualSa {
        assert_eq!(t.manual_sas.len(), 1);
        &t.manual_sas[0]
    }

    #[test]
    fn defaults_esp_tunnel_aes128_sha1() {
        let t = load(BASE).expect("BASE loads");
        let m = only(&t);
        assert_eq!(m.client, "client1");
        assert_eq!(m.client_addr, Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(m.dvipa, Ipv4Addr::new(198, 18, 0, 100));
        assert_eq!(
            (m.protocol, m.mode, m.udp_encap),
            (ManualProtocol::Esp, Mode::Tunnel, false)
        );
        let out = m.to_dvipa.esp.as_ref().expect("ESP to the DVIPA");
        let back = m.to_client.esp.as_ref().expect("ESP to the client");
        assert!(m.to_dvipa.ah.is_none() && m.to_client.ah.is_none());
        assert_eq!((out.spi, back.spi), (Spi(0x5000_0011), Spi(0x5000_0012)));
        assert_eq!(
            (out.enc, out.integ),
            (EncAlg::AesCbc128, IntegAlg::HmacSha1_96)
        );
        assert_eq!(out.src, IpAddr::V4(m.client_addr));
        assert_eq!(out.dst, IpAddr::V4(m.dvipa));
        assert_eq!((back.src, back.dst), (out.dst, out.src));
        assert_eq!(
            out.selector,
            TrafficSelector::hosts(IpAddr::V4(m.client_addr), IpAddr::V4(m.dvipa))
        );
        assert_eq!(back.selector.src, out.selector.dst);
        assert_eq!(out.replay_window, DEFAULT_REPLAY_WINDOW);
        assert_eq!(out.lifetimes.hard.packets, Some(u64::from(u32::MAX)));
        assert_eq!(out.lifetimes.hard.seconds, None);
        assert!(out.lifetimes.soft.packets < out.lifetimes.hard.packets);
        // Keys differ per SA and per use, and follow the documented formula.
        assert_eq!(
            out.enc_key,
            derive_key("s3cret", out.spi, KeyUsage::Enc, 16)
        );
        assert_eq!(out.integ_key.0.len(), 20);
        assert_ne!(out.enc_key, back.enc_key);
        assert_ne!(out.integ_key, back.integ_key);
        assert_ne!(out.enc_key.0[..], out.integ_key.0[..16]);
        // The two views mirror each other.
        let (c, d) = (m.client_side(), m.dvipa_side());
        assert_eq!((c.local, c.peer), (d.peer, d.local));
        assert_eq!(c.outbound, d.inbound);
        assert_eq!(c.inbound, d.outbound);
        assert_eq!(t.manual_sas_to(m.dvipa).count(), 1);
        assert_eq!(t.manual_sas_of_client("CLIENT1").count(), 1);
        for sa in m.to_dvipa.sas().chain(m.to_client.sas()) {
            Sa::new(sa.clone()).expect("the engine accepts it");
        }
    }

    #[test]
    fn derive_key_is_deterministic_and_expands() {
        let a = derive_key("x", Spi(0x100), KeyUsage::Integ, 64);
        assert_eq!(a.0.len(), 64);
        assert_eq!(a, derive_key("x", Spi(0x100), KeyUsage::Integ, 64));
        assert_eq!(
            a.0[..20],
            derive_key("x", Spi(0x100), KeyUsage::Integ, 20).0[..]
        );
        assert_ne!(a.0[..32], a.0[32..]);
        assert_ne!(a, derive_key("x", Spi(0x101), KeyUsage::Integ, 64));
        assert_ne!(a, derive_key("y", Spi(0x100), KeyUsage::Integ, 64));
        // T1 by hand: HMAC-SHA256("x", label | SPI | "integ" | 1).
        let mut mac = Hmac::<Sha256>::new_from_slice(b"x").expect("any key length");
        mac.update(b"plexnet manual sa\x00\x00\x01\x00integ\x01");
        assert_eq!(a.0[..32], mac.finalize().into_bytes()[..]);
    }

    #[test]
    fn ah_esp_bundle_transport_with_hex_keys() {
        let text = with(
            "protocol = \"ah+esp\"\nmode = \"transport\"\nencryption = \"aes256-gcm16\"\nintegrity = \"hmac-sha256-128\"\nspi_to_dvipa = 0x1001\nah_spi_to_client = 0x2002\nenc_key_to_dvipa = \"0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223\"",
        );
        let t = load(&text).expect("loads");
        let m = only(&t);
        assert_eq!(m.protocol, ManualProtocol::AhEsp);
        let esp = m.to_dvipa.esp.as_ref().expect("ESP");
        let ah = m.to_dvipa.ah.as_ref().expect("AH");
        assert_eq!((esp.spi, esp.mode), (Spi(0x1001), Mode::Transport));
        assert_eq!((esp.enc, esp.integ), (EncAlg::AesGcm16_256, IntegAlg::None));
        assert_eq!(esp.enc_key.0[35], 0x23);
        assert_eq!(
            (ah.protocol, ah.enc, ah.integ),
            (Protocol::Ah, EncAlg::Null, IntegAlg::HmacSha256_128)
        );
        assert_eq!(
            ah.integ_key,
            derive_key("s3cret", ah.spi, KeyUsage::Integ, 32)
        );
        let back_ah = m.to_client.ah.as_ref().expect("AH back");
        assert_eq!(back_ah.spi, Spi(0x2002));
        // The defaults of the other SPIs are distinct from the given ones.
        let spis: Vec<u32> = m
            .to_dvipa
            .sas()
            .chain(m.to_client.sas())
            .map(|s| s.spi.0)
            .collect();
        assert_eq!(
            spis,
            [
                0x1001,
                ah.spi.0,
                m.to_client.esp.as_ref().map_or(0, |s| s.spi.0),
                0x2002
            ]
        );
        assert_eq!(ah.spi, Spi(0x5000_0013));
    }

    #[test]
    fn ah_and_udp_encap_and_lifetimes() {
        let t = load(&with("protocol = \"ah\"\nintegrity = \"hmac-sha512-256\"\nreplay_window = 64\nlifetime = { hard_seconds = 800, soft_bytes = 10, hard_bytes = 20 }"))
            .expect("loads");
        let m = only(&t);
        assert!(m.to_dvipa.esp.is_none());
        let ah = m.to_dvipa.ah.as_ref().expect("AH");
        assert_eq!((ah.protocol, ah.integ_key.0.len()), (Protocol::Ah, 64));
        assert_eq!(ah.replay_window, 64);
        assert_eq!(ah.lifetimes.hard.seconds, Some(800));
        assert_eq!(ah.lifetimes.soft.seconds, Some(700));
        assert_eq!(
            (ah.lifetimes.soft.bytes, ah.lifetimes.hard.bytes),
            (Some(10), Some(20))
        );
        let t = load(&with("udp_encap = true\nencryption = \"aes128-gcm16\"")).expect("loads");
        let esp = only(&t).to_client.esp.clone().expect("ESP");
        assert_eq!(
            esp.udp_encap,
            Some(UdpEncap {
                src_port: 4500,
                dst_port: 4500
            })
        );
        assert_eq!(
            esp.enc_key.0.len(),
            20,
            "16 bytes of key and the 4-byte salt"
        );
    }

    #[test]
    fn dvipa_by_address_and_default_spis_avoid_given_ones() {
        let text = with("spi_to_client = 0x50000011")
            .replace("dvipa = \"DVA1\"", "dvipa = \"198.18.0.101\"");
        let t = load(&text).expect("loads");
        let m = only(&t);
        assert_eq!(m.dvipa, Ipv4Addr::new(198, 18, 0, 101));
        let out = m.to_dvipa.esp.as_ref().expect("ESP");
        assert_eq!(out.spi, Spi(0x5100_0011));
    }

    #[test]
    fn unknown_choices() {
        check(
            &BASE.replace("ipsec = \"plexnet\"", "ipsec = ‸\"racoon\""),
            "ipsec `racoon` is not known; allowed: none, plexnet, strongswan",
        );
        check(
            &with("protocol = ‸\"gre\""),
            "protocol `gre` is not known; allowed: esp, ah, ah+esp",
        );
        check(
            &with("mode = ‸\"tunel\""),
            "mode `tunel` is not known; allowed: tunnel, transport",
        );
        check(
            &with("encryption = ‸\"3des\""),
            "encryption `3des` is not known; allowed: aes128-cbc, aes192-cbc, aes256-cbc, aes128-gcm16, aes256-gcm16, null",
        );
        check(
            &with("integrity = ‸\"md5\""),
            "integrity `md5` is not known; allowed: hmac-sha1-96, hmac-sha256-128, hmac-sha384-192, hmac-sha512-256, none (with AES-GCM only)",
        );
    }

    #[test]
    fn unknown_client_and_client_without_ipsec() {
        check(
            &BASE.replace("client = \"client1\"", "client = ‸\"client9\""),
            "manual SA for `client9`, which is not a client; allowed: a [[client]] name: client1, client2",
        );
        check(
            &BASE.replace("client = \"client1\"", "client = ‸\"client2\""),
            "manual SA for client client2, which has ipsec = \"none\"; allowed: manual SAs only for clients with ipsec = \"plexnet\"",
        );
    }

    #[test]
    fn unknown_dvipa() {
        let allowed = "allowed: a DVIPA some image VIPADEFINEs or VIPABACKUPs, by [hosts] name or address: DVA1 (198.18.0.100), 198.18.0.101";
        check(
            &BASE.replace("dvipa = \"DVA1\"", "dvipa = ‸\"DVA2\""),
            &format!("`DVA2` is not a DVIPA of this topology; {allowed}"),
        );
        check(
            &BASE.replace("dvipa = \"DVA1\"", "dvipa = ‸\"198.18.0.11\""),
            &format!("`198.18.0.11` is not a DVIPA of this topology; {allowed}"),
        );
        check(
            &BASE.replace("dvipa = \"DVA1\"", "dvipa = ‸\"MVS1\""),
            &format!("`MVS1` is not a DVIPA of this topology; {allowed}"),
        );
    }

    #[test]
    fn duplicate_manual_sa() {
        let text = format!(
            "{BASE}[[manual_sa]]\nclient = \"client1\"\ndvipa = ‸\"198.18.0.100\"\nsecret = \"x\"\n"
        );
        check(
            &text,
            "a second manual SA between client1 and 198.18.0.100 (first at line 18); allowed: one [[manual_sa]] per client and DVIPA",
        );
    }

    #[test]
    fn combinations() {
        check(
            &with("protocol = \"ah\"\nencryption = ‸\"aes128-cbc\""),
            "protocol ah does not encrypt, but encryption = \"aes128-cbc\" is given; allowed: no `encryption` with protocol = \"ah\"; protocol = \"esp\" or \"ah+esp\" to encrypt",
        );
        check(
            &with("encryption = \"aes128-gcm16\"\nintegrity = ‸\"hmac-sha1-96\""),
            "aes128-gcm16 carries its own ICV, but integrity = \"hmac-sha1-96\" is given; allowed: no `integrity` (or \"none\") with AES-GCM",
        );
        check(
            &with("encryption = \"aes256-cbc\"\nintegrity = ‸\"none\""),
            "ESP with aes256-cbc and no integrity accepts forged packets; allowed: an integrity algorithm, or AES-GCM encryption",
        );
        check(
            &with("protocol = \"ah+esp\"\nencryption = ‸\"null\""),
            "ah+esp with null encryption adds nothing to AH; allowed: an encrypting algorithm with ah+esp, or protocol = \"ah\"",
        );
        check(
            &with("protocol = \"ah\"\nintegrity = ‸\"none\""),
            "AH needs integrity, but integrity = \"none\" is given; allowed: an HMAC integrity algorithm with ah and ah+esp",
        );
        check(
            &with("protocol = \"ah+esp\"\nudp_encap = ‸true"),
            "udp_encap = true with protocol ah+esp; allowed: udp_encap only with protocol = \"esp\" (RFC 3948 encapsulates ESP only)",
        );
    }

    #[test]
    fn spis() {
        let range = "allowed: 256 to 4294967295 (0x100 to 0xffffffff; 0 is never sent and 1 to 255 are reserved, RFC 4303 §2.1)";
        check(
            &with("spi_to_dvipa = ‸255"),
            &format!("SPI 255 is out of range; {range}"),
        );
        check(
            &with("spi_to_client = ‸0x100000000"),
            &format!("SPI 4294967296 is out of range; {range}"),
        );
        check(
            &with("spi_to_dvipa = 0x1000\nspi_to_client = ‸4096"),
            "SPI 0x00001000 is used twice (first at line 21); allowed: every manual SPI unique, in both directions",
        );
        // Across manual SAs too.
        let text = format!(
            "{}[[manual_sa]]\nclient = \"client1\"\ndvipa = \"198.18.0.101\"\nsecret = \"x\"\nspi_to_client = ‸0x1000\n",
            with("spi_to_dvipa = 0x1000")
        );
        check(
            &text,
            "SPI 0x00001000 is used twice (first at line 21); allowed: every manual SPI unique, in both directions",
        );
        check(
            &with("ah_spi_to_dvipa = ‸0x1000"),
            "`ah_spi_to_dvipa` is only used with protocol = \"ah+esp\"; allowed: `spi_to_dvipa` and `spi_to_client` for protocol esp",
        );
    }

    #[test]
    fn keys() {
        check(
            &with("enc_key_to_dvipa = ‸\"00112233445566778899aabbccddeeff0\""),
            "`enc_key_to_dvipa` is not hex; allowed: an even number of hex digits, optionally after 0x",
        );
        check(
            &with("integ_key_to_client = ‸\"00112233445566778899aabbccddeeff\""),
            "`integ_key_to_client` is 16 bytes, hmac-sha1-96 needs 20; allowed: 40 hex digits",
        );
        check(
            &with("encryption = \"aes128-gcm16\"\nenc_key_to_client = ‸\"00112233445566778899aabbccddeeff\""),
            "`enc_key_to_client` is 16 bytes, aes128-gcm16 needs 20; allowed: 40 hex digits",
        );
        check(
            &with("encryption = \"aes128-gcm16\"\ninteg_key_to_dvipa = ‸\"0011\""),
            "`integ_key_to_dvipa` is given, but integrity none takes no key; allowed: keys only for the algorithms in use",
        );
        check(
            &with("protocol = \"ah\"\nenc_key_to_dvipa = ‸\"0011\""),
            "`enc_key_to_dvipa` is given, but protocol ah does not encrypt; allowed: keys only for the algorithms in use",
        );
        check(
            &BASE.replace("secret = \"s3cret\"", "secret = ‸\"\""),
            "the secret is empty; allowed: a non-empty string",
        );
        check(
            &BASE
                .replace("secret = \"s3cret\"\n", "")
                .replace("client = \"client1\"", "client = ‸\"client1\""),
            "no key for encryption client to DVIPA; allowed: `secret = \"...\"` to derive every key, or `enc_key_to_dvipa` in hex",
        );
    }

    #[test]
    fn keys_without_secret_when_all_given() {
        let text = BASE.replace("secret = \"s3cret\"\n", "")
            + "protocol = \"ah\"\ninteg_key_to_dvipa = \"0000000000000000000000000000000000000001\"\ninteg_key_to_client = \"0000000000000000000000000000000000000002\"\n";
        let t = load(&text).expect("loads");
        let m = only(&t);
        assert_eq!(m.to_client.ah.as_ref().map(|a| a.integ_key.0[19]), Some(2));
    }

    #[test]
    fn replay_window_and_lifetimes() {
        check(
            &with("replay_window = ‸0"),
            "replay_window 0 is out of range; allowed: 1 to 1048576 packets",
        );
        check(
            &with("lifetime = { hard_packets = ‸5000000000 }"),
            "hard_packets = 5000000000 is out of range; allowed: 1 to 4294967295 (leave it out for no limit)",
        );
        check(
            &with("lifetime = { soft_seconds = ‸-1 }"),
            "soft_seconds = -1 is out of range; allowed: 1 to 9223372036854775807 (leave it out for no limit)",
        );
        check(
            &with("lifetime = { soft_bytes = ‸200, hard_bytes = 100 }"),
            "soft_bytes = 200 is above hard_bytes = 100; allowed: a soft limit at or below the hard one",
        );
        check(
            &with("lifetime = { hard_packets = 10, soft_packets = ‸11 }"),
            "soft_packets = 11 is above hard_packets = 10; allowed: a soft limit at or below the hard one",
        );
    }

    #[test]
    fn unknown_keys_are_located() {
        check(
            &with("‸spi_out = 1"),
            "unknown field `spi_out`, expected one of `client`, `dvipa`, `protocol`, `mode`, `encryption`, `integrity`, `udp_encap`, `spi_to_dvipa`, `spi_to_client`, `ah_spi_to_dvipa`, `ah_spi_to_client`, `secret`, `enc_key_to_dvipa`, `integ_key_to_dvipa`, `enc_key_to_client`, `integ_key_to_client`, `replay_window`, `lifetime`",
        );
    }
}
