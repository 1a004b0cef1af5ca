//! The key-exchange statements: KeyExchangeRule, the security endpoints,
//! KeyExchangeAction, KeyExchangeOffer.

use super::values::{
    endpoint_identity, endpoint_location, ike_encryption, lifesize, lifetime_proposed, shared,
};
use super::*;

impl Cx<'_> {
    /// KeyExchangeRule (IBM: keyexchangerulestatement.htm).
    pub(super) fn kx_rule<'a>(&mut self, name: &str, body: &[Node<'a>]) -> Option<RawKxRule<'a>> {
        const ALLOWED: &str = "LocalSecurityEndpoint or LocalSecurityEndpointRef, RemoteSecurityEndpoint or RemoteSecurityEndpointRef, KeyExchangeActionRef, SharedKey";
        const UNSUPPORTED: &[&str] = &[
            "KeyExchangeAction",
            "SharedKeyRef",
            "LocalSecurityEndpointGroupRef",
            "RemoteSecurityEndpointGroupRef",
        ];
        let specs = [
            inline("LocalSecurityEndpoint", false),
            attr("LocalSecurityEndpointRef"),
            inline("RemoteSecurityEndpoint", false),
            attr("RemoteSecurityEndpointRef"),
            attr("KeyExchangeActionRef"),
            attr("SharedKey"),
        ];
        let (attrs, mut ok) = self.attrs("KeyExchangeRule", body, &specs, UNSUPPORTED, ALLOWED);
        let mut local: Option<(Use<'a, SecurityEndpoint>, usize)> = None;
        let mut remote: Option<(Use<'a, SecurityEndpoint>, usize)> = None;
        let mut action = None;
        let mut shared_key = None;
        for a in &attrs {
            let r: Result<(), RawError> = match a.name {
                "LocalSecurityEndpoint"
                | "LocalSecurityEndpointRef"
                | "RemoteSecurityEndpoint"
                | "RemoteSecurityEndpointRef" => {
                    let is_local = a.name.starts_with("Local");
                    let slot = if is_local { &mut local } else { &mut remote };
                    if let Some((_, first)) = slot {
                        let first_line = (self.line_of)(*first);
                        Err((
                            a.at(),
                            ErrorKind::DuplicateAttribute {
                                statement: "KeyExchangeRule",
                                attribute: if is_local {
                                    "LocalSecurityEndpoint"
                                } else {
                                    "RemoteSecurityEndpoint"
                                },
                                first_line,
                            },
                        ))
                    } else if a.node.block.is_some() {
                        let n = self.inline_name(a.node);
                        let kind = if is_local {
                            Kind::LocalEndpoint
                        } else {
                            Kind::RemoteEndpoint
                        };
                        let body = a.node.block.as_deref().unwrap_or_default();
                        let v = self.inline(a.at(), |cx| cx.endpoint(kind, n.as_deref(), body));
                        let slot = if is_local { &mut local } else { &mut remote };
                        *slot = Some((Use::Inline(v), a.at()));
                        Ok(())
                    } else {
                        a.one("a security endpoint's name")
                            .map(|t| *slot = Some((Use::Ref(t), a.at())))
                    }
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
        const ALLOWED: &str = "HowToInitiate, HowToRespond, HowToRespondIKEv1, HowToAuthMe, KeyExchangeOffer, KeyExchangeOfferRef";
        const UNSUPPORTED: &[&str] = &[
            "AllowNat",
            "ReauthInterval",
            "RevocationChecking",
            "CertificateLabel",
            "HowToAuthMeRsa",
        ];
        let specs = [
            attr("HowToInitiate"),
            attr("HowToRespond"),
            attr("HowToRespondIKEv1"),
            attr("HowToAuthMe"),
            inline("KeyExchangeOffer", true),
            repeated("KeyExchangeOfferRef"),
        ];
        let (attrs, mut ok) = self.attrs("KeyExchangeAction", body, &specs, UNSUPPORTED, ALLOWED);
        let mut initiate = None;
        let mut auth_me = false;
        let mut offers = Vec::new();
        for a in &attrs {
            let r: Result<(), RawError> = match a.name {
                "HowToInitiate" => a.one("HowToInitiate IKEv2|DoNot").and_then(|v| {
                    if is_one_of(v, &["Main", "Aggressive"]) {
                        return Err(not_implemented(
                            v,
                            "HowToInitiate",
                            "IKEv2 or DoNot (IKEv1 is not implemented here)",
                        ));
                    }
                    initiate = Some(pick(
                        v,
                        "HowToInitiate",
                        &[("IKEv2", true), ("DoNot", false)],
                        "IKEv2 or DoNot",
                    )?);
                    Ok(())
                }),
                "HowToRespond" | "HowToRespondIKEv1" => {
                    a.one("HowToRespond Either").and_then(|v| {
                        if is_one_of(v, &["Main", "Aggressive"]) {
                            return Err(not_implemented(
                                v,
                                a.name,
                                "Either (IKEv1 is not implemented here; plexnet answers IKEv2)",
                            ));
                        }
                        pick(v, a.name, &[("Either", ())], "Either")
                    })
                }
                "HowToAuthMe" => a.one("HowToAuthMe PresharedKey").and_then(|v| {
                    if is_one_of(
                        v,
                        &[
                            "DigitalSignature",
                            "RsaSignature",
                            "ECDSA-256",
                            "ECDSA-384",
                            "ECDSA-521",
                        ],
                    ) {
                        return Err(not_implemented(v, "HowToAuthMe", "PresharedKey"));
                    }
                    pick(v, "HowToAuthMe", &[("PresharedKey", ())], "PresharedKey")?;
                    auth_me = true;
                    Ok(())
                }),
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
        const ALLOWED: &str = "HowToEncrypt, HowToAuthMsgs, HowToVerifyMsgs, PseudoRandomFunction, HowToAuthPeers, DHGroup, RefreshLifetimeProposed, RefreshLifesizeProposed";
        const UNSUPPORTED: &[&str] = &["RefreshLifetimeAccepted", "RefreshLifesizeAccepted"];
        let specs = [
            attr("HowToEncrypt"),
            attr("HowToAuthMsgs"),
            attr("HowToVerifyMsgs"),
            attr("PseudoRandomFunction"),
            attr("HowToAuthPeers"),
            attr("DHGroup"),
            attr("RefreshLifetimeProposed"),
            attr("RefreshLifesizeProposed"),
        ];
        let (attrs, mut ok) = self.attrs("KeyExchangeOffer", body, &specs, UNSUPPORTED, ALLOWED);
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
                    "HowToAuthMsgs" => {
                        let v = a.one("HowToAuthMsgs SHA1|SHA2_256|SHA2_384|SHA2_512")?;
                        if is_one_of(v, &["MD5"]) {
                            return Err(not_implemented(
                                v,
                                "HowToAuthMsgs",
                                "SHA1, SHA2_256, SHA2_384, SHA2_512",
                            ));
                        }
                        hash = Some(pick(
                            v,
                            "HowToAuthMsgs",
                            &[
                                ("SHA1", "sha1"),
                                ("SHA2_256", "sha256"),
                                ("SHA2_384", "sha384"),
                                ("SHA2_512", "sha512"),
                            ],
                            "SHA1, SHA2_256, SHA2_384, SHA2_512",
                        )?);
                    }
                    "HowToVerifyMsgs" => {
                        let v = a.one("HowToVerifyMsgs HMAC_SHA1_96|HMAC_SHA2_256_128|HMAC_SHA2_384_192|HMAC_SHA2_512_256")?;
                        if is_one_of(v, &["AES128_XCBC_96", "HMAC_MD5_96"]) {
                            return Err(not_implemented(v, "HowToVerifyMsgs", "HMAC_SHA1_96, HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256"));
                        }
                        integ = Some(pick(
                            v,
                            "HowToVerifyMsgs",
                            &[
                                ("HMAC_SHA1_96", "sha1"),
                                ("HMAC_SHA2_256_128", "sha256"),
                                ("HMAC_SHA2_384_192", "sha384"),
                                ("HMAC_SHA2_512_256", "sha512"),
                            ],
                            "HMAC_SHA1_96, HMAC_SHA2_256_128, HMAC_SHA2_384_192, HMAC_SHA2_512_256",
                        )?);
                    }
                    "PseudoRandomFunction" => {
                        let v = a.one("PseudoRandomFunction HMAC_SHA1|HMAC_SHA2_256|HMAC_SHA2_384|HMAC_SHA2_512")?;
                        if is_one_of(v, &["AES128_XCBC", "HMAC_MD5"]) {
                            return Err(not_implemented(
                                v,
                                "PseudoRandomFunction",
                                "HMAC_SHA1, HMAC_SHA2_256, HMAC_SHA2_384, HMAC_SHA2_512",
                            ));
                        }
                        prf = Some(pick(
                            v,
                            "PseudoRandomFunction",
                            &[
                                ("HMAC_SHA1", "prfsha1"),
                                ("HMAC_SHA2_256", "prfsha256"),
                                ("HMAC_SHA2_384", "prfsha384"),
                                ("HMAC_SHA2_512", "prfsha512"),
                            ],
                            "HMAC_SHA1, HMAC_SHA2_256, HMAC_SHA2_384, HMAC_SHA2_512",
                        )?);
                    }
                    "HowToAuthPeers" => {
                        let v = a.one("HowToAuthPeers PresharedKey")?;
                        if is_one_of(
                            v,
                            &[
                                "RsaSignature",
                                "DigitalSignature",
                                "ECDSA-256",
                                "ECDSA-384",
                                "ECDSA-521",
                            ],
                        ) {
                            return Err(not_implemented(v, "HowToAuthPeers", "PresharedKey"));
                        }
                        pick(v, "HowToAuthPeers", &[("PresharedKey", ())], "PresharedKey")?;
                    }
                    "DHGroup" => {
                        let v = a.one("DHGroup Group14|Group19|Group20")?;
                        if is_one_of(v, &["Group1", "Group2", "Group5", "Group21", "Group24"]) {
                            return Err(not_implemented(v, "DHGroup", "Group14, Group19, Group20"));
                        }
                        dh = Some(pick(
                            v,
                            "DHGroup",
                            &[
                                ("Group14", "modp2048"),
                                ("Group19", "ecp256"),
                                ("Group20", "ecp384"),
                            ],
                            "Group14, Group19, Group20",
                        )?);
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
