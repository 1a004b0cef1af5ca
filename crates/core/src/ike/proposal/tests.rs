//! Parsing configured proposals and selecting from strongSwan's offers.

use super::*;
use crate::ike::dh::DhGroup;
use crate::ike::keys::{ChildSuite, Encr, IkeSuite, Integ};
use crate::ike::prf::Prf;
use crate::wire::ike::{Attribute, DhId, EsnId, Sa, Transform, TransformId};

fn ike(s: &str) -> Vec<ProposalConfig> {
    parse_proposals(Protocol::Ike, s).unwrap()
}

fn esp(s: &str) -> Vec<ProposalConfig> {
    parse_proposals(Protocol::Esp, s).unwrap()
}

/// The peer's SA payload as strongSwan would send it for these proposal
/// strings: each configured proposal becomes a wire proposal with every
/// transform listed.
fn offer(configs: &[ProposalConfig], spi: &[u8]) -> Sa {
    super::offer(configs, spi, true)
}

const PREFER_OURS: SelectOptions = SelectOptions {
    preference: Preference::Configured,
};

#[test]
fn parses_strongswan_strings() {
    let p = &ike("aes128-sha256-x25519")[0];
    assert_eq!(p.encr, vec![Encr::AesCbc { key_bits: 128 }]);
    assert_eq!(p.integ, vec![Integ::HmacSha256_128]);
    assert_eq!(
        p.prf,
        vec![Prf::HmacSha256],
        "PRF derived from the integrity algorithm"
    );
    assert_eq!(p.dh, vec![DhGroup::Curve25519]);

    let p = &ike("aes256-sha256-modp2048")[0];
    assert_eq!(
        (p.encr[0], p.dh[0]),
        (Encr::AesCbc { key_bits: 256 }, DhGroup::Modp2048)
    );

    let p = &ike("aes128gcm16-prfsha256-ecp256")[0];
    assert_eq!(p.encr, vec![Encr::AesGcm16 { key_bits: 128 }]);
    assert!(p.integ.is_empty());
    assert_eq!((p.prf[0], p.dh[0]), (Prf::HmacSha256, DhGroup::Ecp256));

    let p = &esp("aes128-sha1")[0];
    assert_eq!(p.integ, vec![Integ::HmacSha1_96]);
    assert!(p.prf.is_empty() && p.dh.is_empty());
    assert_eq!(p.esn, vec![EsnId::NoEsn]);

    let p = &esp("aes128gcm16")[0];
    assert_eq!(p.encr, vec![Encr::AesGcm16 { key_bits: 128 }]);
    assert!(p.integ.is_empty());

    // Several proposals, several algorithms of a type, PFS, ESN.
    let ps = esp("aes256gcm16-aes128gcm16-modp3072-esn-noesn, aes128-sha256");
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[0].encr.len(), 2);
    assert_eq!(ps[0].dh, vec![DhGroup::Modp3072]);
    assert_eq!(ps[0].esn, vec![EsnId::Esn, EsnId::NoEsn]);

    assert_eq!(ike("default"), default_ike());
    assert_eq!(esp("default"), default_esp());
    assert_eq!(ike("aes128-sha1-modp2048,default").len(), 3);
}

#[test]
fn rejects_bad_strings() {
    use ProposalParseError as E;
    let e = |proto, s| ProposalConfig::parse(proto, s).unwrap_err();
    assert_eq!(
        e(Protocol::Ike, "3des-sha1-modp2048"),
        E::UnknownAlgorithm("3des".into())
    );
    assert_eq!(
        e(Protocol::Ike, "aes128-sha1"),
        E::NoDhGroup("aes128-sha1".into())
    );
    assert_eq!(
        e(Protocol::Ike, "aes128gcm16-ecp256"),
        E::NoPrf("aes128gcm16-ecp256".into())
    );
    assert_eq!(
        e(Protocol::Ike, "sha256-ecp256"),
        E::NoEncryption("sha256-ecp256".into())
    );
    assert!(matches!(
        e(Protocol::Esp, "aes128-aes128gcm16-sha1"),
        E::MixedAead(_)
    ));
    assert!(matches!(e(Protocol::Esp, "aes128"), E::NoIntegrity(_)));
    assert!(matches!(
        e(Protocol::Ike, "aes128-sha1-ecp256-esn"),
        E::EsnInIke(_)
    ));
    assert_eq!(e(Protocol::Esp, " "), E::Empty);
    assert_eq!(
        e(Protocol::Esp, "aes128--sha1"),
        E::UnknownAlgorithm("".into())
    );
    assert!(parse_proposals(Protocol::Ike, "default,").is_err());
}

#[test]
fn defaults_follow_strongswan_5_9() {
    let d = default_ike();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].encr[0], Encr::AesCbc { key_bits: 128 });
    assert_eq!(d[0].integ[0], Integ::HmacSha256_128);
    assert_eq!(d[0].prf.last(), Some(&Prf::HmacSha1));
    assert_eq!(d[0].dh[0], DhGroup::Curve25519);
    assert_eq!(d[0].dh.last(), Some(&DhGroup::Modp2048));
    assert!(d[1].encr.iter().all(|e| e.is_aead()) && d[1].integ.is_empty());
    let e = default_esp();
    assert!(e[0].encr.iter().all(|e| e.is_aead()));
    assert_eq!(e[1].integ.last(), Some(&Integ::HmacSha1_96));
    assert!(e
        .iter()
        .all(|p| p.esn == vec![EsnId::NoEsn] && p.dh.is_empty()));
}

#[test]
fn selects_matching_ike_proposal_with_ke_group() {
    // Client: strongSwan default. Us: aes256-sha256-modp2048.
    let peer = offer(&default_ike(), &[]);
    let ours = ike("aes256-sha256-modp2048");
    let s = select(&ours, &peer, KeMode::Offered(DhId::Modp2048), PREFER_OURS).unwrap();
    assert_eq!(s.number, 1);
    assert_eq!(s.encr, Encr::AesCbc { key_bits: 256 });
    assert_eq!(s.prf, Some(Prf::HmacSha256));
    assert_eq!(s.integ, Some(Integ::HmacSha256_128));
    assert_eq!(s.dh, Some(DhGroup::Modp2048));
    // The response proposal: one transform per type, key length kept.
    let p = s.to_proposal(vec![]);
    assert_eq!(p.number, 1);
    assert_eq!(p.transforms.len(), 4);
    assert_eq!(p.transforms[0].attributes, vec![Attribute::KeyLength(256)]);
    assert_eq!(
        s.ike_suite(),
        Some(IkeSuite {
            encr: Encr::AesCbc { key_bits: 256 },
            prf: Prf::HmacSha256,
            integ: Some(Integ::HmacSha256_128)
        })
    );
}

#[test]
fn accepts_peer_ke_group_when_acceptable() {
    // The client sends KE for its first default group, Curve25519. Our
    // default list accepts it: no INVALID_KE round trip.
    let peer = offer(&default_ike(), &[]);
    let s = select(
        &default_ike(),
        &peer,
        KeMode::Offered(DhId::Curve25519),
        PREFER_OURS,
    )
    .unwrap();
    assert_eq!(s.dh, Some(DhGroup::Curve25519));
    assert_eq!(s.encr, Encr::AesCbc { key_bits: 128 });
    assert_eq!(s.integ, Some(Integ::HmacSha256_128));
    // A KE group acceptable only in the second (AEAD) pair still wins
    // over asking for another group.
    let ours = ike("aes128-sha256-ecp384,aes128gcm16-prfsha256-ecp256");
    let peer = offer(
        &ike("aes128-sha256-ecp384-ecp256,aes128gcm16-prfsha256-ecp256"),
        &[],
    );
    let s = select(&ours, &peer, KeMode::Offered(DhId::Ecp256), PREFER_OURS).unwrap();
    assert_eq!(
        (s.number, s.encr, s.dh),
        (2, Encr::AesGcm16 { key_bits: 128 }, Some(DhGroup::Ecp256))
    );
}

#[test]
fn asks_for_another_group_with_invalid_ke() {
    let peer = offer(&ike("aes128-sha256-x25519-modp2048"), &[]);
    let ours = ike("aes128-sha256-modp2048");
    assert_eq!(
        select(&ours, &peer, KeMode::Offered(DhId::Curve25519), PREFER_OURS),
        Err(SelectError::InvalidKe {
            wanted: DhGroup::Modp2048
        })
    );
    // A KE payload for a group nobody proposed changes nothing.
    assert_eq!(
        select(&ours, &peer, KeMode::Offered(DhId::Modp1024), PREFER_OURS),
        Err(SelectError::InvalidKe {
            wanted: DhGroup::Modp2048
        })
    );
}

#[test]
fn no_proposal_chosen() {
    let ours = ike("aes256-sha384-ecp384");
    for peer in [
        offer(&ike("aes128-sha384-ecp384"), &[]), // cipher key size differs
        offer(&ike("aes256-sha256-ecp384"), &[]), // integrity and PRF differ
        offer(&ike("aes256-sha384-modp2048"), &[]), // group differs
        offer(&esp("aes256-sha384"), &[1, 2, 3, 4]), // wrong protocol
        offer(&ike("aes256-sha384-ecp384"), &[1, 2]), // bad SPI size
        Sa::default(),
    ] {
        assert_eq!(
            select(&ours, &peer, KeMode::Offered(DhId::Ecp384), PREFER_OURS),
            Err(SelectError::NoProposalChosen)
        );
    }
    // A transform type we do not know rejects the proposal (§3.3.6).
    let mut peer = offer(&ike("aes256-sha384-ecp384"), &[]);
    peer.proposals[0]
        .transforms
        .push(Transform::new(TransformId::Other {
            transform_type: 6,
            id: 1,
        }));
    assert_eq!(
        select(&ours, &peer, KeMode::Offered(DhId::Ecp384), PREFER_OURS),
        Err(SelectError::NoProposalChosen)
    );
    // AES without a Key Length attribute is not acceptable.
    let mut peer = offer(&ike("aes256-sha384-ecp384"), &[]);
    peer.proposals[0].transforms[0].attributes.clear();
    assert_eq!(
        select(&ours, &peer, KeMode::Offered(DhId::Ecp384), PREFER_OURS),
        Err(SelectError::NoProposalChosen)
    );
}

#[test]
fn preference_decides_order() {
    let ours = ike("aes128-sha256-ecp256,aes256-sha512-ecp256");
    let peer = offer(&ike("aes256-sha512-ecp256,aes128-sha256-ecp256"), &[]);
    let ke = KeMode::Offered(DhId::Ecp256);
    let s = select(&ours, &peer, ke, PREFER_OURS).unwrap();
    assert_eq!((s.number, s.encr), (2, Encr::AesCbc { key_bits: 128 }));
    let s = select(
        &ours,
        &peer,
        ke,
        SelectOptions {
            preference: Preference::Peer,
        },
    )
    .unwrap();
    assert_eq!((s.number, s.encr), (1, Encr::AesCbc { key_bits: 256 }));
    // Within one proposal too.
    let ours = ike("aes128-aes256-sha256-ecp256");
    let peer = offer(&ike("aes256-aes128-sha256-ecp256"), &[]);
    assert_eq!(
        select(&ours, &peer, ke, PREFER_OURS).unwrap().encr,
        Encr::AesCbc { key_bits: 128 }
    );
    let s = select(
        &ours,
        &peer,
        ke,
        SelectOptions {
            preference: Preference::Peer,
        },
    )
    .unwrap();
    assert_eq!(s.encr, Encr::AesCbc { key_bits: 256 });
}

#[test]
fn esp_in_ike_auth_ignores_dh_and_echoes_spi() {
    // strongSwan lists its PFS groups in the IKE_AUTH child proposal
    // too; IKE_AUTH creates the child without a KE.
    let peer = offer(
        &esp("aes128gcm16-ecp256,aes128-sha1"),
        &[0xc0, 0xff, 0xee, 0x01],
    );
    let s = select(&default_esp(), &peer, KeMode::Ignore, PREFER_OURS).unwrap();
    assert_eq!((s.number, s.encr), (1, Encr::AesGcm16 { key_bits: 128 }));
    assert_eq!((s.integ, s.dh, s.esn), (None, None, Some(EsnId::NoEsn)));
    assert_eq!(s.spi, vec![0xc0, 0xff, 0xee, 0x01]);
    assert_eq!(
        s.child_suite(),
        ChildSuite {
            encr: Encr::AesGcm16 { key_bits: 128 },
            integ: None
        }
    );
    let p = s.to_proposal(vec![9, 9, 9, 9]);
    assert_eq!(p.spi, vec![9, 9, 9, 9]);
    assert_eq!(p.transforms.len(), 2); // ENCR and ESN

    // Only aes128-sha1 configured, as in the reference client.
    let s = select(&esp("aes128-sha1"), &peer, KeMode::Ignore, PREFER_OURS).unwrap();
    assert_eq!((s.number, s.integ), (2, Some(Integ::HmacSha1_96)));

    // CREATE_CHILD_SA without KE: a proposal requiring PFS is refused...
    assert_eq!(
        select(&esp("aes128gcm16-ecp256"), &peer, KeMode::NoKe, PREFER_OURS),
        Err(SelectError::NoProposalChosen)
    );
    // ...and with a KE, the group is negotiated like in IKE_SA_INIT.
    let s = select(
        &esp("aes128gcm16-ecp256"),
        &peer,
        KeMode::Offered(DhId::Ecp256),
        PREFER_OURS,
    )
    .unwrap();
    assert_eq!(s.dh, Some(DhGroup::Ecp256));
    assert_eq!(s.to_proposal(vec![0; 4]).transforms.len(), 3);

    // ESN must match: the data plane has none, so an ESN-only peer fails.
    let peer = offer(&esp("aes128-sha1-esn"), &[0, 0, 0, 1]);
    assert_eq!(
        select(&esp("aes128-sha1"), &peer, KeMode::Ignore, PREFER_OURS),
        Err(SelectError::NoProposalChosen)
    );
}
