//! The IKE of the routing stacks, from the Policy Agent's IPSec policy (the
//! `ipsec_policy` of each image with `ike = true`) instead of the old
//! `[ike]` table: the KeyExchangeRule gives the pre-shared key (SharedKey)
//! and the IKE proposals (its KeyExchangeAction's KeyExchangeOffers), the
//! IpDynVpnAction of the IpFilterRules that require IPsec gives the ESP
//! proposals (its IpDataOffers), lifetimes and PFS group (IP Configuration
//! Reference: KeyExchangeRule, KeyExchangeOffer, IpDynVpnAction,
//! IpDataOffer). The same settings generate the strongSwan clients'
//! `swanctl.conf` (`lab::strongswan`), so a topology stays one file.
//!
//! One IKE setting serves the sysplex: every image's policy must give the
//! same (a routing stack's backup must accept what its owner accepted).
//! An old file's `[ike]` table is refused with the equivalent policy
//! ([`equivalent_policy`]).

use super::ike::{DEFAULT_COOKIE_THRESHOLD, DEFAULT_IKE_REKEY_TIME, DEFAULT_LIFE_TIME};
use super::model::{IkeSettings, Image};
use plexnet_core::ike::dh::DhGroup;
use plexnet_core::ike::keys::{Encr, Integ};
use plexnet_core::ike::prf::Prf;
use plexnet_core::ike::proposal::{parse_proposals, Protocol as IkeProtocol};
use plexnet_core::ipsec::policy::{DataOffer, DynVpnAction, FilterAction};
use plexnet_core::ipsec::sa::{IntegAlg, Protocol};

/// The IKE settings of the images' policies, and the image they came from;
/// `Ok(None)` when no image with `ike = true` has key-exchange rules.
pub(super) fn from_images(images: &[Image]) -> Result<Option<(IkeSettings, String)>, String> {
    let mut found: Option<(IkeSettings, String)> = None;
    for image in images.iter().filter(|i| i.ike) {
        let Some(settings) = of_image(image)? else {
            continue;
        };
        match &found {
            None => found = Some((settings, image.name.clone())),
            Some((s, first)) if *s != settings => {
                return Err(format!(
                    "the key-exchange and IpDynVpnAction policies of {first} and {} differ; \
                     allowed: one IKE setting for the sysplex (a backup must accept what the owner did)",
                    image.name
                ))
            }
            Some(_) => {}
        }
    }
    Ok(found)
}

/// One image's IKE settings: its first KeyExchangeRule and the
/// IpDynVpnActions of its IpFilterRules, in filter order.
fn of_image(image: &Image) -> Result<Option<IkeSettings>, String> {
    let Some(policy) = image.ip_security.as_ref().and_then(|s| s.policy.as_ref()) else {
        return Ok(None);
    };
    let Some(kx) = policy.key_exchange_rules.first() else {
        return Ok(None);
    };
    let psk = String::from_utf8(kx.shared_key.clone()).map_err(|_| {
        format!(
            "{}: KeyExchangeRule {}: SharedKey must be text",
            image.name, kx.name
        )
    })?;
    let proposals: Vec<&str> = kx
        .action
        .offers
        .iter()
        .map(|o| o.proposal.as_str())
        .collect();
    let actions = vpn_actions(policy.filter_rules.iter().map(|r| &r.action));
    let Some(first) = actions.first() else {
        return Err(format!(
            "{}: a KeyExchangeRule but no IpFilterRule with an IpDynVpnAction; allowed: IKE for traffic a rule protects",
            image.name
        ));
    };
    let esp: Vec<String> = actions
        .iter()
        .flat_map(|a| a.offers.iter().filter_map(|o| esp_proposal(o, a.pfs_group)))
        .fold(Vec::new(), |mut v, p| {
            if !v.contains(&p) {
                v.push(p);
            }
            v
        });
    if esp.is_empty() {
        return Err(format!(
            "{}: IpDynVpnAction {} offers no ESP tunnel; allowed: IpDataOffer HowToEncap Tunnel with HowToAuth ESP",
            image.name, first.name
        ));
    }
    let offer = first.offers.first();
    let rekey_time = offer.map(|o| o.lifetime_secs).filter(|s| *s > 0);
    Ok(Some(IkeSettings {
        psk,
        proposals: proposals.join(","),
        esp_proposals: esp.join(","),
        rekey_time,
        // strongSwan's margin: the hard lifetime is the rekey time + 10 %.
        life_time: rekey_time.map(|s| s + s / 10).or(Some(DEFAULT_LIFE_TIME)),
        rekey_bytes: offer.and_then(|o| o.lifesize_bytes),
        // RefreshLifesizeProposed is when to refresh; the SA dies a third
        // later. The targets report bytes in batches (Fig. 9 blocks
        // 154-158), so the routing stack's IKE learns of the limit late by
        // up to a batch per target: a 10 % margin (strongSwan's for time)
        // let busy SAs expire before their successor was in place.
        life_bytes: offer.and_then(|o| o.lifesize_bytes).map(|b| b + b / 3),
        ike_rekey_time: kx
            .action
            .offers
            .first()
            .map(|o| o.lifetime_secs)
            .filter(|s| *s > 0)
            .or(Some(DEFAULT_IKE_REKEY_TIME)),
        cookie_threshold: DEFAULT_COOKIE_THRESHOLD,
        on_demand: first.initiation.may_initiate(),
    }))
}

/// The distinct IpDynVpnActions of `actions`, in order.
fn vpn_actions<'a>(actions: impl Iterator<Item = &'a FilterAction>) -> Vec<&'a DynVpnAction> {
    let mut out: Vec<&DynVpnAction> = Vec::new();
    for a in actions {
        if let FilterAction::Ipsec(v) = a {
            if !out.iter().any(|o| o.name == v.name) {
                out.push(v);
            }
        }
    }
    out
}

/// An ESP tunnel offer in strongSwan's proposal syntax (`aes128gcm16`,
/// `aes256-sha256`, with `-ecp256` for PFS); AH and transport offers have
/// no place in an ESP child SA here (`None`).
fn esp_proposal(o: &DataOffer, pfs: Option<u16>) -> Option<String> {
    if o.protocol != Protocol::Esp || o.mode != plexnet_core::ipsec::sa::Mode::Tunnel {
        return None;
    }
    let enc = o.encryption?;
    let mut p = enc.as_str().to_string();
    if !enc.is_aead() && o.integrity != IntegAlg::None {
        p = format!("{p}-{}", o.integrity.as_str());
    }
    if let Some(name) = pfs.and_then(dh_keyword) {
        p = format!("{p}-{name}");
    }
    Some(p)
}

/// strongSwan's name of an IKE Diffie-Hellman group number (RFC 7296
/// §3.3.2 transform IDs) of those z/OS offers.
fn dh_keyword(group: u16) -> Option<&'static str> {
    match group {
        14 => Some("modp2048"),
        19 => Some("ecp256"),
        20 => Some("ecp384"),
        _ => None,
    }
}

/// The policy statements that say what an old `[ike]` table said, for the
/// error that refuses it: a KeyExchangeRule with its action and offers, and
/// an IpDynVpnAction with its IpDataOffers, in z/OS's keywords. Algorithms
/// z/OS has no keyword for are left out, and say so.
pub(super) fn equivalent_policy(s: &IkeSettings, dvipa: Option<std::net::Ipv4Addr>) -> String {
    let dvipa = dvipa.map_or_else(|| "DVIPA-ADDRESS".to_string(), |a| a.to_string());
    let mut out = format!(
        "ipsec_policy = \"\"\"\n\
         KeyExchangeRule clients\n{{\n  LocalSecurityEndpoint\n  {{\n    Identity IpAddr {dvipa}\n    Location {dvipa}\n  }}\n  \
         RemoteSecurityEndpoint\n  {{\n    Identity IpAddr All\n    Location Any\n  }}\n  KeyExchangeActionRef ike\n",
    );
    out.push_str(&format!("  SharedKey Ascii {}\n}}\n", s.psk));
    out.push_str("KeyExchangeAction ike\n{\n  HowToInitiate IKEv2\n  HowToRespond Either\n  HowToAuthMe PresharedKey\n");
    let ike = ike_offers(&s.proposals);
    for (i, _) in ike.iter().enumerate() {
        out.push_str(&format!("  KeyExchangeOfferRef ike{}\n", i + 1));
    }
    out.push_str("}\n");
    for (i, o) in ike.iter().enumerate() {
        out.push_str(&format!(
            "KeyExchangeOffer ike{}\n{{\n{o}  HowToAuthPeers PresharedKey\n",
            i + 1
        ));
        if let Some(t) = s.ike_rekey_time {
            out.push_str(&format!("  RefreshLifetimeProposed {}\n", t.div_ceil(60)));
        }
        out.push_str("}\n");
    }
    out.push_str("IpDynVpnAction esp-tunnel\n{\n  Initiation Either\n");
    let esp = esp_offers(&s.esp_proposals);
    for (i, _) in esp.iter().enumerate() {
        out.push_str(&format!("  IpDataOfferRef esp{}\n", i + 1));
    }
    out.push_str("}\n");
    for (i, o) in esp.iter().enumerate() {
        out.push_str(&format!(
            "IpDataOffer esp{}\n{{\n  HowToEncap Tunnel\n{o}",
            i + 1
        ));
        if let Some(t) = s.rekey_time {
            out.push_str(&format!("  RefreshLifetimeProposed {}\n", t.div_ceil(60)));
        }
        out.push_str("}\n");
    }
    out.push_str("# ... and IpFilterRules whose IpDynVpnActionRef is esp-tunnel\n\"\"\"");
    out
}

/// One KeyExchangeOffer body per combination of the first proposals'
/// algorithms that z/OS can name (AES-CBC 128/256, HMAC-SHA1/SHA-2, DH
/// groups 14, 19, 20), at most eight.
fn ike_offers(text: &str) -> Vec<String> {
    let Ok(proposals) = parse_proposals(IkeProtocol::Ike, text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in &proposals {
        for e in p.encr.iter().filter_map(|e| cbc_keyword(*e)) {
            for (integ, prf) in p.integ.iter().zip(
                p.prf
                    .iter()
                    .chain(std::iter::repeat(p.prf.first().unwrap_or(&Prf::HmacSha256))),
            ) {
                for g in p.dh.iter().filter_map(|d| group_keyword(*d)) {
                    let o = format!(
                        "  HowToEncrypt {e}\n  HowToVerifyMsgs {}\n  PseudoRandomFunction {}\n  DHGroup {g}\n",
                        integ_keyword(*integ),
                        prf_keyword(*prf)
                    );
                    if !out.contains(&o) && out.len() < 8 {
                        out.push(o);
                    }
                }
            }
        }
    }
    out
}

/// One IpDataOffer body per ESP cipher and integrity z/OS can name.
fn esp_offers(text: &str) -> Vec<String> {
    let Ok(proposals) = parse_proposals(IkeProtocol::Esp, text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in &proposals {
        for e in &p.encr {
            let auths: Vec<String> = if p.integ.is_empty() {
                vec!["Null".into()]
            } else {
                p.integ
                    .iter()
                    .map(|i| integ_keyword(*i).to_string())
                    .collect()
            };
            let Some(enc) = esp_keyword(*e) else { continue };
            for a in auths {
                let o = format!("  HowToEncrypt {enc}\n  HowToAuth ESP {a}\n");
                if !out.contains(&o) && out.len() < 8 {
                    out.push(o);
                }
            }
        }
    }
    out
}

fn cbc_keyword(e: Encr) -> Option<String> {
    match e {
        Encr::AesCbc { key_bits } if key_bits != 192 => {
            Some(format!("AES_CBC KeyLength {key_bits}"))
        }
        _ => None,
    }
}

fn esp_keyword(e: Encr) -> Option<String> {
    match e {
        Encr::AesGcm16 { key_bits } if key_bits != 192 => {
            Some(format!("AES_GCM_16 KeyLength {key_bits}"))
        }
        e => cbc_keyword(e),
    }
}

fn integ_keyword(i: Integ) -> &'static str {
    match i {
        Integ::HmacSha1_96 => "HMAC_SHA1",
        Integ::HmacSha256_128 => "HMAC_SHA2_256_128",
        Integ::HmacSha384_192 => "HMAC_SHA2_384_192",
        Integ::HmacSha512_256 => "HMAC_SHA2_512_256",
    }
}

fn prf_keyword(p: Prf) -> &'static str {
    match p {
        Prf::HmacSha1 => "HMAC_SHA1",
        Prf::HmacSha256 => "HMAC_SHA2_256",
        Prf::HmacSha384 => "HMAC_SHA2_384",
        Prf::HmacSha512 => "HMAC_SHA2_512",
    }
}

fn group_keyword(d: DhGroup) -> Option<&'static str> {
    match d {
        DhGroup::Modp2048 => Some("Group14"),
        DhGroup::Ecp256 => Some("Group19"),
        DhGroup::Ecp384 => Some("Group20"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexnet_core::ipsec::sa::EncAlg;

    #[test]
    fn esp_offers_become_strongswan_proposals() {
        let gcm = DataOffer {
            protocol: Protocol::Esp,
            mode: plexnet_core::ipsec::sa::Mode::Tunnel,
            encryption: Some(EncAlg::AesGcm16_128),
            integrity: IntegAlg::None,
            lifetime_secs: 3600,
            lifesize_bytes: None,
        };
        assert_eq!(esp_proposal(&gcm, None).as_deref(), Some("aes128gcm16"));
        let cbc = DataOffer {
            encryption: Some(EncAlg::AesCbc256),
            integrity: IntegAlg::HmacSha256_128,
            ..gcm.clone()
        };
        assert_eq!(
            esp_proposal(&cbc, Some(19)).as_deref(),
            Some("aes256-sha256-ecp256")
        );
        let transport = DataOffer {
            mode: plexnet_core::ipsec::sa::Mode::Transport,
            ..gcm
        };
        assert_eq!(esp_proposal(&transport, None), None);
    }

    #[test]
    fn the_equivalent_policy_names_the_key_and_z_os_offers() {
        let s = IkeSettings {
            psk: "k".into(),
            proposals: "aes128-sha256-ecp256".into(),
            esp_proposals: "aes128gcm16,aes256-sha1".into(),
            rekey_time: Some(3600),
            life_time: None,
            rekey_bytes: None,
            life_bytes: None,
            ike_rekey_time: None,
            cookie_threshold: 16,
            on_demand: true,
        };
        let p = equivalent_policy(&s, None);
        assert!(p.contains("SharedKey Ascii k"), "{p}");
        assert!(p.contains("HowToEncrypt AES_CBC KeyLength 128"), "{p}");
        assert!(p.contains("DHGroup Group19"), "{p}");
        assert!(
            p.contains("HowToEncrypt AES_GCM_16 KeyLength 128\n  HowToAuth ESP Null"),
            "{p}"
        );
        assert!(p.contains("HowToAuth ESP HMAC_SHA1"), "{p}");
        assert!(p.contains("RefreshLifetimeProposed 60"), "{p}");
    }
}
