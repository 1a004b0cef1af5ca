//! The IP filter statements: IpFilterRule (IpService is in `service`),
//! IpGenericFilterAction, IpDynVpnAction, IpManVpnAction, IpDataOffer.

use super::values::{
    esp_auth, esp_encryption, filter_addr, lifesize, lifetime_proposed, pfs_group,
};
use super::*;

const FILTER_RULE: Grammar = Grammar {
    statement: "IpFilterRule",
    specs: &[
        attr("IpSourceAddr"),
        attr("IpDestAddr"),
        inline("IpService", false),
        attr("IpServiceRef"),
        attr("IpGenericFilterActionRef"),
        attr("IpDynVpnActionRef"),
        attr("IpManVpnActionRef"),
    ],
    unsupported: &[
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
        "IpLocalStartActionRef",
        "IpLocalStartAction",
        "IpGenericFilterAction",
        "IpDynVpnAction",
        "IpManVpnAction",
    ],
    allowed: "IpSourceAddr, IpDestAddr, IpService or IpServiceRef, IpGenericFilterActionRef, IpDynVpnActionRef, IpManVpnActionRef",
};

/// A manual tunnel's endpoint: one IPv4 address. IBM also allows `Any`,
/// `Any4`, `Any6` and IPv6 addresses; a `[[manual_sa]]` has one client and
/// one DVIPA, so plexnet refuses them.
fn endpoint_addr(a: &Attr<'_, '_>) -> Result<Ipv4Addr, RawError> {
    const SYNTAX: &str = "an IPv4 address a.b.c.d";
    let v = a.one(SYNTAX)?;
    if is_one_of(v, &["Any", "Any4", "Any6"]) || v.text.contains(':') {
        return Err((
            v.at,
            ErrorKind::PolicyUnsupported {
                word: format!("{} {}", a.name, v.text),
                allowed: "one IPv4 address a.b.c.d (a manual SA has one client and one DVIPA)",
            },
        ));
    }
    parse_ipv4(v.text).ok_or((
        v.at,
        ErrorKind::BadAddress {
            text: v.text.to_owned(),
        },
    ))
}

impl Cx<'_> {
    /// IpFilterRule (IBM: ipfilterrulestatement.htm).
    pub(super) fn filter_rule<'a>(
        &mut self,
        name: &str,
        body: &[Node<'a>],
    ) -> Option<RawFilterRule<'a>> {
        let (attrs, mut ok) = self.attrs_of(&FILTER_RULE, body);
        let mut source = AddrSpec::Any;
        let mut destination = AddrSpec::Any;
        let mut service: Option<Use<'a, Service>> = None;
        let mut service_at: Option<usize> = None;
        let mut generic = None;
        let mut dynvpn = None;
        let mut manvpn = None;
        for a in &attrs {
            match a.name {
                "IpSourceAddr" | "IpDestAddr" => match self.ok(filter_addr(a)) {
                    Some(v) if a.name == "IpSourceAddr" => source = v,
                    Some(v) => destination = v,
                    None => ok = false,
                },
                "IpService" | "IpServiceRef" => {
                    ok &= self.rule_service(a, &mut service_at, &mut service)
                }
                "IpGenericFilterActionRef" => {
                    generic = self.ok(a.one("IpGenericFilterActionRef name"));
                    ok &= generic.is_some();
                }
                "IpManVpnActionRef" => {
                    manvpn = self.ok(a.one("IpManVpnActionRef name"));
                    ok &= manvpn.is_some();
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
            manvpn,
        })
    }

    /// A rule's IpService, inline or by name, into `service`: once per
    /// rule (`service_at` is where the first is written, acceptable or
    /// not). Whether it was acceptable.
    fn rule_service<'a>(
        &mut self,
        a: &Attr<'_, 'a>,
        service_at: &mut Option<usize>,
        service: &mut Option<Use<'a, Service>>,
    ) -> bool {
        if let Some(first) = *service_at {
            let first_line = self.line(first);
            self.push((
                a.at(),
                ErrorKind::DuplicateAttribute {
                    statement: "IpFilterRule",
                    attribute: "IpService",
                    first_line,
                },
            ));
            return false;
        }
        *service_at = Some(a.at());
        if a.name == "IpService" {
            let _ = self.inline_name(a.node);
            let body = a.node.block.as_deref().unwrap_or_default();
            let v = self.inline(a.at(), |cx| cx.service(body));
            *service = Some(Use::Inline(v));
            return true;
        }
        match self.ok(a.one("IpServiceRef name")) {
            Some(t) => {
                *service = Some(Use::Ref(t));
                true
            }
            None => false,
        }
    }

    /// Reports a missing attribute at the end of the block that lacks it
    /// (the last line before its `}`), or at its first line.
    pub(super) fn missing_in(
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

    /// IpGenericFilterAction (IBM: ipgenericfilteractionstatement.htm).
    pub(super) fn generic_action(
        &mut self,
        name: &str,
        body: &[Node<'_>],
    ) -> Option<(Generic, bool)> {
        let (attrs, mut ok) = self.attrs_of(&GENERIC_ACTION, body);
        let mut action = None;
        let mut log = false;
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
    pub(super) fn dyn_vpn_action<'a>(
        &mut self,
        name: &str,
        body: &[Node<'a>],
    ) -> Option<RawDynVpn<'a>> {
        let (attrs, mut ok) = self.attrs_of(&DYN_VPN_ACTION, body);
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
                "Pfs" | "InitiateWithPfs" => match pfs {
                    Some((_, first, which)) => Err(self.pfs_twice(a, first, which)),
                    None => pfs_group(a).map(|g| pfs = Some((g, a.at(), a.name))),
                },
                "HowToEncapIKEv2" => encap_ikev2_mode(a).map(|m| encap_ikev2 = Some((m, a.at()))),
                "IpDataOffer" => {
                    let _ = self.inline_name(a.node);
                    let body = a.node.block.as_deref().unwrap_or_default();
                    let v = self.inline(a.at(), |cx| cx.data_offer(body));
                    offers.push(Use::Inline(v));
                    Ok(())
                }
                _ => a
                    .one("IpDataOfferRef name")
                    .map(|t| offers.push(Use::Ref(t))),
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

    /// InitiateWithPfs after Pfs, or the reverse: `which` was first, at `first`.
    fn pfs_twice(&self, a: &Attr<'_, '_>, first: usize, which: &str) -> RawError {
        let first_line = self.line(first);
        (
            a.at(),
            ErrorKind::Combination {
                problem: format!("{} after {which} (line {first_line})", a.name),
                allowed: "one of InitiateWithPfs and Pfs (its older spelling)",
            },
        )
    }

    /// IpManVpnAction (IBM: ipmanvpnactionstatement.htm), the subset
    /// plexnet models: `Active`, and both endpoints as addresses. The
    /// manual SAs' SPIs and keys come from the topology's `[[manual_sa]]`
    /// (the testbed's key source), so the action's data offer and IBM's
    /// other keywords are refused by name.
    pub(super) fn man_vpn_action(&mut self, name: &str, body: &[Node<'_>]) -> Option<RawManVpn> {
        let (attrs, mut ok) = self.attrs_of(&MAN_VPN_ACTION, body);
        let mut active = true;
        let (mut local, mut remote) = (None, None);
        for a in &attrs {
            let r = match a.name {
                "Active" => a
                    .choice(
                        &[("Yes", true), ("No", false)],
                        "Active Yes|No",
                        "Yes or No",
                    )
                    .map(|v| active = v),
                "LocalSecurityEndpointAddr" => endpoint_addr(a).map(|v| local = Some(v)),
                _ => endpoint_addr(a).map(|v| remote = Some(v)),
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        for (v, attribute) in [
            (local, "LocalSecurityEndpointAddr"),
            (remote, "RemoteSecurityEndpointAddr"),
        ] {
            if v.is_none() {
                let syntax = "LocalSecurityEndpointAddr a.b.c.d and RemoteSecurityEndpointAddr a.b.c.d: the DVIPA and the client";
                self.missing_in(body, "IpManVpnAction", name, attribute, syntax);
                return None;
            }
        }
        Some(RawManVpn {
            active,
            local: local?,
            remote: remote?,
        })
    }

    /// IpDataOffer (IBM: ipdataofferstatement.htm).
    pub(super) fn data_offer(&mut self, body: &[Node<'_>]) -> Option<Offer> {
        let (attrs, mut ok) = self.attrs_of(&DATA_OFFER, body);
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
                    "RefreshLifetimeProposed" => lifetime_secs = lifetime_proposed(a)?,
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
        let err = offer_combination(protocol, enc, integrity, at);
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
}

/// A combination of attributes that does not go together.
pub(super) fn combination(at: usize, problem: String, allowed: &'static str) -> RawError {
    (at, ErrorKind::Combination { problem, allowed })
}

const GENERIC_ACTION: Grammar = Grammar {
    statement: "IpGenericFilterAction",
    specs: &[attr("IpFilterAction"), attr("IpFilterLogging")],
    unsupported: &["DiscardAction"],
    allowed: "IpFilterAction, IpFilterLogging",
};

const DYN_VPN_ACTION: Grammar = Grammar {
    statement: "IpDynVpnAction",
    specs: &[
        attr("Initiation"),
        attr("Pfs"),
        attr("InitiateWithPfs"),
        attr("HowToEncapIKEv2"),
        inline("IpDataOffer", true),
        repeated("IpDataOfferRef"),
    ],
    unsupported: &[
        "VpnLife",
        "AcceptablePfs",
        "PassthroughDF",
        "PassthroughDSCP",
    ],
    allowed: "Initiation, InitiateWithPfs (or Pfs), HowToEncapIKEv2, IpDataOffer, IpDataOfferRef",
};

const MAN_VPN_ACTION: Grammar = Grammar {
    statement: "IpManVpnAction",
    specs: &[
        attr("Active"),
        attr("LocalSecurityEndpointAddr"),
        attr("RemoteSecurityEndpointAddr"),
    ],
    unsupported: &[
        "LocalSecurityEndpointAddrRef",
        "RemoteSecurityEndpointAddrRef",
        "PassthroughDF",
        "PassthroughDSCP",
        "IpDataOffer",
        "IpDataOfferRef",
        "IpTimeCondition",
        "IpTimeConditionRef",
    ],
    allowed: "Active, LocalSecurityEndpointAddr, RemoteSecurityEndpointAddr",
};

const DATA_OFFER: Grammar = Grammar {
    statement: "IpDataOffer",
    specs: &[
        attr("HowToEncap"),
        attr("HowToEncrypt"),
        attr("HowToAuth"),
        attr("RefreshLifetimeProposed"),
        attr("RefreshLifesizeProposed"),
    ],
    unsupported: &["RefreshLifetimeAccepted", "RefreshLifesizeAccepted"],
    allowed:
        "HowToEncap, HowToEncrypt, HowToAuth, RefreshLifetimeProposed, RefreshLifesizeProposed",
};

/// IpDynVpnAction HowToEncapIKEv2: one mode, since an offer has one here.
fn encap_ikev2_mode(a: &Attr<'_, '_>) -> Result<Mode, RawError> {
    let v = a.one("HowToEncapIKEv2 Tunnel|Transport")?;
    if v.text.eq_ignore_ascii_case("Either") {
        return Err((
            v.at,
            ErrorKind::PolicyUnsupported {
                word: "HowToEncapIKEv2 Either".to_owned(),
                allowed: "HowToEncapIKEv2 Tunnel or Transport (an offer has one mode here)",
            },
        ));
    }
    pick(
        v,
        "HowToEncapIKEv2",
        &[("Tunnel", Mode::Tunnel), ("Transport", Mode::Transport)],
        "Tunnel or Transport",
    )
}

/// An IpDataOffer's protocol, encryption (`None`: DoNot) and integrity
/// that do not go together, reported at `at`.
fn offer_combination(
    protocol: Protocol,
    enc: Option<EncAlg>,
    integrity: IntegAlg,
    at: usize,
) -> Option<RawError> {
    let bad = |problem: &str, allowed: &'static str| combination(at, problem.to_owned(), allowed);
    match (protocol, enc) {
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
    }
}
