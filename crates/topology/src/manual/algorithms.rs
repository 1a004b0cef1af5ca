//! A manual SA's protocol, mode, algorithms and UDP encapsulation, with
//! their defaults and combination rules.

use super::super::error::ErrorKind;
use super::super::file::ManualSaDef;
use super::super::model::ManualProtocol;
use super::super::resolve::Resolver;
use super::spis::parse_protocol;
use super::{choice, enc_name, integ_name};
use plexnet_core::ipsec::{EncAlg, IntegAlg, Mode};

const PROTOCOL_ALLOWED: &str = "esp, ah, ah+esp";
const MODE_ALLOWED: &str = "tunnel, transport";
const ENC_ALLOWED: &str = "aes128-cbc, aes192-cbc, aes256-cbc, aes128-gcm16, aes256-gcm16, null";
const INTEG_ALLOWED: &str =
    "hmac-sha1-96, hmac-sha256-128, hmac-sha384-192, hmac-sha512-256, none (with AES-GCM only)";

/// Algorithms of one manual SA after defaults and checks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Algs {
    pub(super) protocol: ManualProtocol,
    pub(super) mode: Mode,
    pub(super) enc: EncAlg,
    pub(super) integ: IntegAlg,
    pub(super) udp_encap: bool,
}

/// `encryption`, in the topology spelling of [`enc_name`].
fn parse_enc(s: &str) -> Option<EncAlg> {
    EncAlg::ALL.into_iter().find(|a| enc_name(*a) == s)
}

/// `integrity`, in the topology spelling of [`integ_name`].
fn parse_integ(s: &str) -> Option<IntegAlg> {
    IntegAlg::ALL
        .into_iter()
        .chain([IntegAlg::None])
        .find(|a| integ_name(*a) == s)
}

/// Protocol, mode, algorithms and UDP encapsulation with their defaults
/// and combination rules.
pub(super) fn algorithms(r: &mut Resolver<'_>, def: &ManualSaDef) -> Option<Algs> {
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
    let enc = encryption(r, protocol, enc_given, enc_at, &mut ok);
    let integ = integrity(r, (protocol, enc), integ_given, integ_at, &mut ok);
    let udp_encap = udp_encap(r, def, protocol, &mut ok);
    ok.then_some(Algs {
        protocol,
        mode,
        enc,
        integ,
        udp_encap,
    })
}

/// The encryption algorithm: none with `ah`, AES-128-CBC by default, and
/// not null with `ah+esp`. Clears `ok` at a problem.
fn encryption(
    r: &mut Resolver<'_>,
    protocol: ManualProtocol,
    enc_given: Option<EncAlg>,
    enc_at: usize,
    ok: &mut bool,
) -> EncAlg {
    match protocol {
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
                *ok = false;
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
                *ok = false;
            }
            e
        }
    }
}

/// The integrity algorithm: none with AES-GCM (which carries its own ICV),
/// HMAC-SHA1-96 by default, never none with AH or with ESP that does not
/// use GCM. Clears `ok` at a problem.
fn integrity(
    r: &mut Resolver<'_>,
    (protocol, enc): (ManualProtocol, EncAlg),
    integ_given: Option<IntegAlg>,
    integ_at: usize,
    ok: &mut bool,
) -> IntegAlg {
    match (protocol, enc.is_aead()) {
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
                *ok = false;
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
                *ok = false;
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
                *ok = false;
                IntegAlg::None
            }
            i => i.unwrap_or(IntegAlg::HmacSha1_96),
        },
    }
}

/// `udp_encap`: ESP only (RFC 3948). Clears `ok` at a problem.
fn udp_encap(
    r: &mut Resolver<'_>,
    def: &ManualSaDef,
    protocol: ManualProtocol,
    ok: &mut bool,
) -> bool {
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
        *ok = false;
    }
    udp_encap
}
