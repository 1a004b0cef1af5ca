//! Attribute values: addresses, ports, protocols, algorithms, keys.

use super::*;

/// IpSourceAddr / IpDestAddr: All, All4, an address, a prefix or a range.
pub(super) fn filter_addr(a: &Attr<'_, '_>) -> Result<AddrSpec, RawError> {
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
pub(super) fn addr_spec(v: Tok<'_>) -> Result<AddrSpec, RawError> {
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
pub(super) fn endpoint_identity(a: &Attr<'_, '_>, local: bool) -> Result<AddrSpec, RawError> {
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
pub(super) fn endpoint_location(a: &Attr<'_, '_>) -> Result<AddrSpec, RawError> {
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
pub(super) fn shared(a: &Attr<'_, '_>) -> Result<Vec<u8>, RawError> {
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
pub(super) fn service_protocol(a: &Attr<'_, '_>) -> Result<ProtocolSpec, RawError> {
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
        number_in(v, "protocol", 0, 255, ALLOWED)? as u8
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
pub(super) fn port_range(a: &Attr<'_, '_>) -> Result<PortSpec, RawError> {
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
    let first = number_in(Tok { text: lo, at: v.at }, "port", 0, 65535, ALLOWED)? as u16;
    let Some(hi) = hi else {
        return Ok(if first == 0 {
            PortSpec::Any
        } else {
            PortSpec::single(first)
        });
    };
    let last = number_in(
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
pub(super) fn service_direction(
    a: &Attr<'_, '_>,
) -> Result<(Direction, Option<TcpConnect>), RawError> {
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
pub(super) fn pfs_group(a: &Attr<'_, '_>) -> Result<Option<u16>, RawError> {
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
pub(super) fn key_length(a: &Attr<'_, '_>, syntax: &'static str) -> Result<bool, RawError> {
    let k = a.arg(1, syntax)?;
    pick(
        k,
        "HowToEncrypt",
        &[("KeyLength", ())],
        "KeyLength after the algorithm",
    )?;
    let n = a.arg(2, syntax)?;
    a.no_more(3, syntax)?;
    match number_in(n, "KeyLength", 128, 256, "128 or 256")? {
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
pub(super) fn esp_encryption(a: &Attr<'_, '_>) -> Result<Option<EncAlg>, RawError> {
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
pub(super) fn esp_auth(a: &Attr<'_, '_>) -> Result<(Protocol, IntegAlg), RawError> {
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
pub(super) fn ike_encryption(a: &Attr<'_, '_>) -> Result<&'static str, RawError> {
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
/// RefreshLifetimeProposed, in seconds: minutes 1 to 65535 in IpDataOffer
/// and KeyExchangeOffer alike.
pub(super) fn lifetime_proposed(a: &Attr<'_, '_>) -> Result<u64, RawError> {
    let v = a.one("RefreshLifetimeProposed minutes (1 to 65535)")?;
    Ok(number_in(v, "RefreshLifetimeProposed", 1, 65535, "1 to 65535 minutes")? * 60)
}

pub(super) fn lifesize(a: &Attr<'_, '_>) -> Result<Option<u64>, RawError> {
    let v = a.one("RefreshLifesizeProposed kilobytes (1 to 4294967295) or None")?;
    if is_one_of(v, &["None"]) {
        return Ok(None);
    }
    Ok(Some(
        number_in(
            v,
            "RefreshLifesizeProposed",
            1,
            u64::from(u32::MAX),
            "1 to 4294967295 kilobytes, or None",
        )? * 1024,
    ))
}
