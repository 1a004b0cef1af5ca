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

mod algorithms;
mod limits;
mod peers;
mod sas;
mod spis;
#[cfg(test)]
mod tests;

pub(super) use peers::{find_dvipa, image_dvipas};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use toml::Spanned;

use super::error::{line_col, ErrorKind};
use super::file::ManualSaDef;
use super::model::{Client, ClientIpsec, HostName, Image, ManualSa};
use super::resolve::Resolver;
use plexnet_core::ipsec::{EncAlg, IntegAlg, Key, Spi};
use sas::SaParts;

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

/// Resolves every `[[manual_sa]]`. Problems go to `r`; a manual SA with a
/// problem is left out.
pub(super) fn resolve(
    r: &mut Resolver<'_>,
    defs: &[ManualSaDef],
    clients: &[Client],
    images: &[Image],
    hosts: &[HostName],
) -> Vec<ManualSa> {
    let mut sas = ManualSas {
        clients,
        hosts,
        // Explicit SPIs first: duplicates are reported at the later one,
        // and defaults avoid every explicit value.
        used_spis: spis::explicit_spis(r, defs),
        dvipas: peers::distinct_dvipas(images),
        pairs: HashMap::new(),
    };
    let mut out = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        if let Some(sa) = sas.manual_sa(r, i, def) {
            peers::check_policy(r, def, &sa, images);
            out.push(sa);
        }
    }
    out
}

/// What resolving one `[[manual_sa]]` needs from the others and the rest
/// of the topology.
struct ManualSas<'a> {
    clients: &'a [Client],
    hosts: &'a [HostName],
    /// Every SPI in use, with where it is written (0 for a default).
    used_spis: HashMap<u32, usize>,
    dvipas: Vec<Ipv4Addr>,
    /// Each client (lower case) and DVIPA with a manual SA so far, and where.
    pairs: HashMap<(String, Ipv4Addr), usize>,
}

impl ManualSas<'_> {
    /// Manual SA `i` (0-based), or `None` after a problem.
    fn manual_sa(&mut self, r: &mut Resolver<'_>, i: usize, def: &ManualSaDef) -> Option<ManualSa> {
        let before = r.diag_count();
        let client = peers::find_client(r, def, self.clients);
        let dvipa = find_dvipa(r, &def.dvipa, &self.dvipas, self.hosts);
        if let (Some(c), Some(d)) = (client, dvipa) {
            self.pair_once(r, def, c, d);
        }
        let algs = algorithms::algorithms(r, def);
        let replay_window = limits::replay_window(r, def);
        let lifetimes = limits::lifetimes(r, def.lifetime.as_ref());
        let secret = secret(r, def);
        let (Some(c), Some(dvipa), Some(algs)) = (client, dvipa, algs) else {
            return None;
        };
        let parts = SaParts {
            def,
            secret,
            algs,
            replay_window,
            lifetimes,
            client_addr: c.addr,
            dvipa,
        };
        let spis = spis::sa_spis(def, &mut self.used_spis, i, algs.protocol);
        let mut bundles: Vec<_> = spis
            .into_iter()
            .filter_map(|(dir, main, ah)| parts.bundle(r, dir, main, ah))
            .collect();
        if r.diag_count() != before || bundles.len() != 2 || !sas::engine_accepts(r, def, &bundles)
        {
            return None;
        }
        let to_client = bundles.pop()?;
        let to_dvipa = bundles.pop()?;
        Some(ManualSa {
            client: c.name.clone(),
            client_addr: c.addr,
            dvipa,
            protocol: algs.protocol,
            mode: algs.mode,
            udp_encap: algs.udp_encap,
            to_dvipa,
            to_client,
        })
    }

    /// One manual SA per client and DVIPA: a second is reported at its `dvipa`.
    fn pair_once(&mut self, r: &mut Resolver<'_>, def: &ManualSaDef, c: &Client, d: Ipv4Addr) {
        let key = (c.name.to_ascii_lowercase(), d);
        if let Some(&first) = self.pairs.get(&key) {
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
            self.pairs.insert(key, def.client.span().start);
        }
    }
}

/// `secret`; an empty one is reported here, and keys are then not reported
/// missing as well.
fn secret<'d>(r: &mut Resolver<'_>, def: &'d ManualSaDef) -> Option<&'d str> {
    match &def.secret {
        Some(s) if s.get_ref().is_empty() => {
            r.err(s.span().start, ErrorKind::EmptySecret);
            Some("")
        }
        Some(s) => Some(s.get_ref().as_str()),
        None => None,
    }
}
