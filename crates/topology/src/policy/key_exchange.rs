//! The key-exchange statements: KeyExchangeRule, the security endpoints,
//! KeyExchangeAction, KeyExchangeOffer.

use super::values::{
    endpoint_identity, endpoint_location, ike_encryption, lifesize, lifetime_proposed, shared,
};
use super::*;

const KX_RULE: Grammar = Grammar {
    statement: "KeyExchangeRule",
    specs: &[
        inline("LocalSecurityEndpoint", false),
        attr("LocalSecurityEndpointRef"),
        inline("RemoteSecurityEndpoint", false),
        attr("RemoteSecurityEndpointRef"),
        attr("KeyExchangeActionRef"),
        attr("SharedKey"),
    ],
    unsupported: &[
        "KeyExchangeAction",
        "SharedKeyRef",
        "LocalSecurityEndpointGroupRef",
        "RemoteSecurityEndpointGroupRef",
    ],
    allowed: "LocalSecurityEndpoint or LocalSecurityEndpointRef, RemoteSecurityEndpoint or RemoteSecurityEndpointRef, KeyExchangeActionRef, SharedKey",
};

const KX_ACTION: Grammar = Grammar {
    statement: "KeyExchangeAction",
    specs: &[
        attr("HowToInitiate"),
        attr("HowToRespond"),
        attr("HowToRespondIKEv1"),
        attr("HowToAuthMe"),
        inline("KeyExchangeOffer", true),
        repeated("KeyExchangeOfferRef"),
    ],
    unsupported: &[
        "AllowNat",
        "ReauthInterval",
        "RevocationChecking",
        "CertificateLabel",
        "HowToAuthMeRsa",
    ],
    allowed: "HowToInitiate, HowToRespond, HowToRespondIKEv1, HowToAuthMe, KeyExchangeOffer, KeyExchangeOfferRef",
};

const KX_OFFER: Grammar = Grammar {
    statement: "KeyExchangeOffer",
    specs: &[
        attr("HowToEncrypt"),
        attr("HowToAuthMsgs"),
        attr("HowToVerifyMsgs"),
        attr("PseudoRandomFunction"),
        attr("HowToAuthPeers"),
        attr("DHGroup"),
        attr("RefreshLifetimeProposed"),
        attr("RefreshLifesizeProposed"),
    ],
    unsupported: &["RefreshLifetimeAccepted", "RefreshLifesizeAccepted"],
    allowed: "HowToEncrypt, HowToAuthMsgs, HowToVerifyMsgs, PseudoRandomFunction, HowToAuthPeers, DHGroup, RefreshLifetimeProposed, RefreshLifesizeProposed",
};

/// IBM's other signature methods, which plexnet does not implement.
const SIGNATURES: &[&str] = &[
    "DigitalSignature",
    "RsaSignature",
    "ECDSA-256",
    "ECDSA-384",
    "ECDSA-521",
];

/// KeyExchangeAction HowToInitiate: whether the stack starts IKE.
const HOW_TO_INITIATE: Choices<bool> = Choices {
    syntax: "HowToInitiate IKEv2|DoNot",
    table: &[("IKEv2", true), ("DoNot", false)],
    allowed: "IKEv2 or DoNot",
    not_here: &["Main", "Aggressive"],
    implemented: "IKEv2 or DoNot (IKEv1 is not implemented here)",
};

const HOW_TO_RESPOND: Choices<()> = Choices {
    syntax: "HowToRespond Either",
    table: &[("Either", ())],
    allowed: "Either",
    not_here: &["Main", "Aggressive"],
    implemented: "Either (IKEv1 is not implemented here; plexnet answers IKEv2)",
};

const HOW_TO_AUTH_ME: Choices<()> = Choices {
    syntax: "HowToAuthMe PresharedKey",
    table: &[("PresharedKey", ())],
    allowed: "PresharedKey",
    not_here: SIGNATURES,
    implemented: "PresharedKey",
};

/// KeyExchangeOffer HowToAuthMsgs: the hash, as strongSwan names it.
const HOW_TO_AUTH_MSGS: Choices<&str> = Choices {
    syntax: "HowToAuthMsgs SHA1|SHA2_256|SHA2_384|SHA2_512",
    table: &[
        ("SHA1", "sha1"),
        ("SHA2_256", "sha256"),
        ("SHA2_384", "sha384"),
        ("SHA2_512", "sha512"),
    ],
    allowed: "SHA1, SHA2_256, SHA2_384, SHA2_512",
    not_here: &["MD5"],
    implemented: "SHA1, SHA2_256, SHA2_384, SHA2_512",
};

const HOW_TO_VERIFY_MSGS: Choices<&str> = Choices {
    syntax: "HowToVerifyMsgs HMAC_SHA1_96|HMAC_SHA2_256_128|HMAC_SHA2_384_192|HMAC_SHA2_512_256",
    table: &[
        ("HMAC_SHA1_96", "sha1"),
        ("HMAC_SHA2_256_128", "sha256"),
        ("HMAC_SHA2_384_192", "sha384"),
        ("HMAC_SHA2_512_256", "sha512"),
    ],
    allowed: "HMAC_SHA1_96, HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256",
    not_here: &["AES128_XCBC_96", "HMAC_MD5_96"],
    implemented: "HMAC_SHA1_96, HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256",
};

const PSEUDO_RANDOM_FUNCTION: Choices<&str> = Choices {
    syntax: "PseudoRandomFunction HMAC_SHA1|HMAC_SHA2_256|HMAC_SHA2_384|HMAC_SHA2_512",
    table: &[
        ("HMAC_SHA1", "prfsha1"),
        ("HMAC_SHA2_256", "prfsha256"),
        ("HMAC_SHA2_384", "prfsha384"),
        ("HMAC_SHA2_512", "prfsha512"),
    ],
    allowed: "HMAC_SHA1, HMAC_SHA2_256, HMAC_SHA2_384, HMAC_SHA2_512",
    not_here: &["AES128_XCBC", "HMAC_MD5"],
    implemented: "HMAC_SHA1, HMAC_SHA2_256, HMAC_SHA2_384, HMAC_SHA2_512",
};

const HOW_TO_AUTH_PEERS: Choices<()> = Choices {
    syntax: "HowToAuthPeers PresharedKey",
    table: &[("PresharedKey", ())],
    allowed: "PresharedKey",
    not_here: SIGNATURES,
    implemented: "PresharedKey",
};

const DH_GROUP: Choices<&str> = Choices {
    syntax: "DHGroup Group14|Group19|Group20",
    table: &[
        ("Group14", "modp2048"),
        ("Group19", "ecp256"),
        ("Group20", "ecp384"),
    ],
    allowed: "Group14, Group19, Group20",
    not_here: &["Group1", "Group2", "Group5", "Group21", "Group24"],
    implemented: "Group14, Group19, Group20",
};

impl Cx<'_> {
    /// KeyExchangeRule (IBM: keyexchangerulestatement.htm).
    pub(super) fn kx_rule<'a>(&mut self, name: &str, body: &[Node<'a>]) -> Option<RawKxRule<'a>> {
        let (attrs, mut ok) = self.attrs_of(&KX_RULE, body);
        let mut local: Option<(Use<'a, SecurityEndpoint>, usize)> = None;
        let mut remote: Option<(Use<'a, SecurityEndpoint>, usize)> = None;
        let mut action = None;
        let mut shared_key = None;
        for a in &attrs {
            let r: Result<(), RawError> = match a.name {
                "LocalSecurityEndpoint" | "LocalSecurityEndpointRef" => {
                    self.rule_endpoint(a, Kind::LocalEndpoint, &mut local)
                }
                "RemoteSecurityEndpoint" | "RemoteSecurityEndpointRef" => {
                    self.rule_endpoint(a, Kind::RemoteEndpoint, &mut remote)
                }
                "KeyExchangeActionRef" => {
                    a.one("KeyExchangeActionRef name").map(|t| action = Some(t))
                }
                _ => shared(a).map(|k| shared_key = Some(k)),
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        let missing: Option<(&'static str, &'static str)> = if local.is_none() {
            Some((
                "LocalSecurityEndpoint",
                "LocalSecurityEndpoint { ... } or LocalSecurityEndpointRef name",
            ))
        } else if remote.is_none() {
            Some((
                "RemoteSecurityEndpoint",
                "RemoteSecurityEndpoint { ... } or RemoteSecurityEndpointRef name",
            ))
        } else if action.is_none() {
            Some(("KeyExchangeActionRef", "KeyExchangeActionRef name"))
        } else if shared_key.is_none() {
            Some(("SharedKey", "SharedKey Ascii key or SharedKey Hex digits (peers authenticate with pre-shared keys here)"))
        } else {
            None
        };
        if let Some((attribute, syntax)) = missing {
            self.missing_in(body, "KeyExchangeRule", name, attribute, syntax);
            return None;
        }
        Some(RawKxRule {
            local: local?.0,
            remote: remote?.0,
            action: action?,
            shared_key: shared_key?,
        })
    }

    /// A rule's Local or RemoteSecurityEndpoint (`kind`), inline or by
    /// name, into `slot`: once per rule.
    fn rule_endpoint<'a>(
        &mut self,
        a: &Attr<'_, 'a>,
        kind: Kind,
        slot: &mut Option<(Use<'a, SecurityEndpoint>, usize)>,
    ) -> Result<(), RawError> {
        if let Some((_, first)) = slot {
            let first_line = (self.line_of)(*first);
            let attribute = if kind == Kind::LocalEndpoint {
                "LocalSecurityEndpoint"
            } else {
                "RemoteSecurityEndpoint"
            };
            return Err((
                a.at(),
                ErrorKind::DuplicateAttribute {
                    statement: "KeyExchangeRule",
                    attribute,
                    first_line,
                },
            ));
        }
        if a.node.block.is_some() {
            let n = self.inline_name(a.node);
            let body = a.node.block.as_deref().unwrap_or_default();
            let v = self.inline(a.at(), |cx| cx.endpoint(kind, n.as_deref(), body));
            *slot = Some((Use::Inline(v), a.at()));
            return Ok(());
        }
        a.one("a security endpoint's name")
            .map(|t| *slot = Some((Use::Ref(t), a.at())))
    }

    /// LocalSecurityEndpoint and RemoteSecurityEndpoint (IBM:
    /// localsecurityendpointstatement.htm, remotesecurityendpointstatement.htm).
    pub(super) fn endpoint(
        &mut self,
        kind: Kind,
        name: Option<&str>,
        body: &[Node<'_>],
    ) -> Option<SecurityEndpoint> {
        const ALLOWED: &str = "Identity, Location";
        const UNSUPPORTED: &[&str] = &[
            "LocationRef",
            "LocationSetRef",
            "LocationGroupRef",
            "RemoteIdentityRef",
            "CaLabel",
        ];
        let statement = kind.name();
        let specs = [attr("Identity"), attr("Location")];
        let (attrs, mut ok) = self.attrs(statement, body, &specs, UNSUPPORTED, ALLOWED);
        let mut identity = None;
        let mut location = AddrSpec::Any;
        for a in &attrs {
            let r: Result<(), RawError> = if a.name == "Identity" {
                endpoint_identity(a, kind == Kind::LocalEndpoint).map(|v| identity = Some(v))
            } else {
                endpoint_location(a).map(|v| location = v)
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        let Some(identity) = identity else {
            self.missing_in(
                body,
                statement,
                name.unwrap_or("(inline)"),
                "Identity",
                "Identity IpAddr a.b.c.d",
            );
            return None;
        };
        Some(SecurityEndpoint {
            name: name.map(str::to_owned),
            identity,
            location,
        })
    }

    /// KeyExchangeAction (IBM: keyexchangeactionstatement.htm).
    pub(super) fn kx_action<'a>(
        &mut self,
        name: &str,
        body: &[Node<'a>],
    ) -> Option<RawKxAction<'a>> {
        let (attrs, mut ok) = self.attrs_of(&KX_ACTION, body);
        let mut initiate = None;
        let mut auth_me = false;
        let mut offers = Vec::new();
        for a in &attrs {
            let r: Result<(), RawError> = match a.name {
                "HowToInitiate" => a.choose(&HOW_TO_INITIATE).map(|v| initiate = Some(v)),
                "HowToRespond" | "HowToRespondIKEv1" => a.choose(&HOW_TO_RESPOND),
                "HowToAuthMe" => a.choose(&HOW_TO_AUTH_ME).map(|()| auth_me = true),
                "KeyExchangeOffer" => {
                    let n = self.inline_name(a.node);
                    let body = a.node.block.as_deref().unwrap_or_default();
                    let v = self.inline(a.at(), |cx| cx.kx_offer(n.as_deref(), body));
                    offers.push(Use::Inline(v));
                    Ok(())
                }
                _ => a
                    .one("KeyExchangeOfferRef name")
                    .map(|t| offers.push(Use::Ref(t))),
            };
            ok &= self.ok(r).is_some();
        }
        if !ok {
            return None;
        }
        let missing: Option<(&'static str, &'static str)> = if initiate.is_none() {
            Some((
                "HowToInitiate",
                "HowToInitiate IKEv2 or HowToInitiate DoNot",
            ))
        } else if !auth_me {
            Some(("HowToAuthMe", "HowToAuthMe PresharedKey (IBM's default, DigitalSignature, is not implemented here)"))
        } else if offers.is_empty() {
            Some(("KeyExchangeOffer", "KeyExchangeOffer { ... } or KeyExchangeOfferRef name, one or more, most preferred first"))
        } else {
            None
        };
        if let Some((attribute, syntax)) = missing {
            self.missing_in(body, "KeyExchangeAction", name, attribute, syntax);
            return None;
        }
        Some(RawKxAction {
            initiate: initiate?,
            offers,
        })
    }

    /// KeyExchangeOffer (IBM: keyexchangeofferstatement.htm).
    pub(super) fn kx_offer(
        &mut self,
        name: Option<&str>,
        body: &[Node<'_>],
    ) -> Option<KeyExchangeOffer> {
        let (attrs, mut ok) = self.attrs_of(&KX_OFFER, body);
        let mut enc = "aes128";
        let mut hash: Option<&'static str> = None;
        let mut integ: Option<&'static str> = None;
        let mut prf: Option<&'static str> = None;
        let mut dh = None;
        let mut lifetime_secs = 480 * 60;
        let mut lifesize_bytes = None;
        for a in &attrs {
            let r: Result<(), RawError> = (|| {
                match a.name {
                    "HowToEncrypt" => enc = ike_encryption(a)?,
                    "HowToAuthMsgs" => hash = Some(a.choose(&HOW_TO_AUTH_MSGS)?),
                    "HowToVerifyMsgs" => integ = Some(a.choose(&HOW_TO_VERIFY_MSGS)?),
                    "PseudoRandomFunction" => prf = Some(a.choose(&PSEUDO_RANDOM_FUNCTION)?),
                    "HowToAuthPeers" => a.choose(&HOW_TO_AUTH_PEERS)?,
                    "DHGroup" => dh = Some(a.choose(&DH_GROUP)?),
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
        let Some(dh) = dh else {
            self.missing_in(
                body,
                "KeyExchangeOffer",
                name.unwrap_or("(inline)"),
                "DHGroup",
                "DHGroup Group14, Group19 or Group20",
            );
            return None;
        };
        // HowToAuthMsgs, IBM's one hash for both, stands in for the two
        // the offer leaves out.
        let integ = integ.or(hash).unwrap_or("sha1");
        let prf = prf
            .or(hash.map(|h| match h {
                "sha256" => "prfsha256",
                "sha384" => "prfsha384",
                "sha512" => "prfsha512",
                _ => "prfsha1",
            }))
            .unwrap_or("prfsha1");
        Some(KeyExchangeOffer {
            name: name.map(str::to_owned),
            proposal: format!("{enc}-{integ}-{prf}-{dh}"),
            lifetime_secs,
            lifesize_bytes,
        })
    }
}
