//! Interoperability known answers from a real strongSwan 5.9.8 exchange.
//!
//! Two charons (Debian 12 packages, the reference `load` list of
//! `shared/reference/strongswan`) ran in two throw-away network namespaces
//! joined by a veth, 198.18.200.1 (initiator, `proposals` and
//! `esp_proposals` left at `default`, id `client1.plex`) and 198.18.200.2
//! (responder, id `198.18.200.2`), PSK `plexnet-interop-psk`, with
//! kernel-libipsec (so IKE_AUTH moved to UDP 4500). The messages were taken
//! from a tcpdump capture on the veth; the secrets from the initiator's
//! filelog at `ike = 4` / `chd = 4` (keymat_v2.c logs g^ir, SKEYSEED and
//! every SK_*; child_sa logs the ESP keys). charon selected
//! IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519 and
//! ESP:AES_GCM_16_128/NO_EXT_SEQ.
//!
//! This checks our parser and emitter on strongSwan's bytes, our proposal
//! selection on its default offer, and key derivation and AUTH against what
//! strongSwan computed — decrypting the IKE_AUTH messages with the keys we
//! derive.

use aes::Aes128;
use cbc::cipher::{block_padding::NoPadding, BlockDecryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use plexnet::ike::keys::{child_keys, ike_keys, signed_octets, skeyseed, verify_psk_auth, IkeKeys};
use plexnet::ike::proposal::{default_esp, default_ike, select, KeMode, SelectOptions};
use plexnet::ike::{dh::DhGroup, keys::Encr, keys::Integ, prf::Prf};
use plexnet::wire::ike::*;

const PSK: &[u8] = b"plexnet-interop-psk";

/// IKE_SA_INIT request, 198.18.200.1:500 -> 198.18.200.2:500.
const INIT_REQUEST: &str = concat!(
    "1df012344443797b000000000000000021202208000000000000037c220002bc02000148010100220300000c0100000c",
    "800e00800300000c0100000c800e00c00300000c0100000c800e01000300000c0100000d800e00800300000c0100000d",
    "800e00c00300000c0100000d800e01000300000c01000017800e00800300000c01000017800e00c00300000c01000017",
    "800e01000300000c01000018800e00800300000c01000018800e00c00300000c01000018800e01000300000801000003",
    "030000080300000c030000080300000d030000080300000e030000080300000203000008020000050300000802000006",
    "03000008020000070300000802000002030000080400001f030000080400002003000008040000130300000804000014",
    "0300000804000015030000080400001c030000080400001d030000080400001e030000080400000f0300000804000010",
    "03000008040000110300000804000012000000080400000e00000170020100240300000c01000014800e00800300000c",
    "01000014800e00c00300000c01000014800e01000300000c01000010800e00800300000c01000010800e00c00300000c",
    "01000010800e0100030000080100001c0300000c01000013800e00800300000c01000013800e00c00300000c01000013",
    "800e01000300000c01000012800e00800300000c01000012800e00c00300000c01000012800e01000300000c0100000f",
    "800e00800300000c0100000f800e00c00300000c0100000f800e01000300000c0100000e800e00800300000c0100000e",
    "800e00c00300000c0100000e800e01000300000802000005030000080200000603000008020000070300000802000002",
    "030000080400001f0300000804000020030000080400001303000008040000140300000804000015030000080400001c",
    "030000080400001d030000080400001e030000080400000f030000080400001003000008040000110300000804000012",
    "000000080400000e28000028001f000053c0fcb0c7c7cb883897a75065817a0b9e50015446d82be97aec76e63e61dd51",
    "29000024f2ad65408cc7a548443cd6e6f52ed2f5a279ed23d2debfbe5c78458aea4bd6502900001c00004004dd762ba8",
    "8c405499670131b0713cf62a063d2cf32900001c0000400580acaa8ea48d55ff63e65162b71a2d3b8e148de929000008",
    "0000402e290000100000402f00020003000400050000000800004016",
);
/// IKE_SA_INIT response.
const INIT_RESPONSE: &str = concat!(
    "1df012344443797bd3bba3f58054e2022120222000000000000000f8220000300000002c010100040300000c0100000c",
    "800e0080030000080300000c0300000802000005000000080400001f28000028001f00004018a5960b894d3fb7eec8b9",
    "1088cf34478847d2e823939a8ccd11978a06b30c290000246acd862ada19fb7584a3e15810b565544b75b788ebd23db5",
    "42514e9ea15672282900001c00004004aa0341ad3f5fbc714379ded3cf984c2d9ee17c5c2900001c00004005c5e96bf0",
    "d48a2b3b120d94f4256c7326e8faa951290000080000402e290000100000402f00020003000400052900000800004022",
    "0000000800004014",
);
/// IKE_AUTH request on port 4500, without the 4-octet non-ESP marker.
const AUTH_REQUEST: &str = concat!(
    "1df012344443797bd3bba3f58054e2022e2023080000000100000190230001744cbd35429ac686990763bf20e8edb318",
    "d2bdfa9056ef48fb76863f338f64e9ad598c5693da76b4ee7d90cb5e03bf4abdd69a982aae3ee1003669e5dea160fd43",
    "25905e52fbc088a408d4bc4c4633cf3fb73150b84c511ed92100d7c4265a727d6838485bbf90f3bd2a9cc3377ef640b7",
    "e7ce9b1515631029cef4ff72e3474aa4de849b44638901d17c61f930cfd8f6c181c6dea6ecd862b1df399f4e8f2653e3",
    "8b61aff2d98e2c1fa21ac6dc74f96be97b51a25fba05088e84193298010de6a8dc0950648adcc3ea5fd6ffc5d083a9f9",
    "062d7117c51c3909c214bbb87dddf61fdb7da138186261ce6abd22d136bef4be7e58dca03faf562c430c5bf2c0335252",
    "654416a05ff72c6ceccd21800c45276477e564e0d5d648a81daa6398e0be06aeb35360178807fb258cf878b91b3495e2",
    "bc8c4604e05bf2a46f0bd0a409495eed3ff96a8620c382e289ac2b061336ddf8e5252181397feaa8d1d6616488123fad",
    "8d32822bba7f2cebe9849ad7d73382b6",
);
/// IKE_AUTH response on port 4500, without the non-ESP marker.
const AUTH_RESPONSE: &str = concat!(
    "1df012344443797bd3bba3f58054e2022e20232000000001000000e0240000c440d8e9c8f5ac3d3f0220063675ec702c",
    "1f18761f8c328a8f9a5f61248de66c153621d1f89824c870bf84b816ebc108919666976f657773d8fd8f328684f66aae",
    "99d00640dc4d72c866957381b906392e20a7fca46253d5cc3e7767063d63de72368b767d18742d46667d451880c03dbe",
    "e47c27cb27523afabd15b0a9e02bb5aafeb86f43fb6e690dd52dd7b4fad72a5268a268623b060cea161a2ba32cc2ec98",
    "973039d5a34e55512b02c0d0bfac70db54994c9dac17d6d79b47c4609ffbe612",
);
/// charon log: "shared Diffie Hellman secret".
const G_IR: &str = "f667039c7dc6065ae7be68df51037b6ea29cbcbd1359286b4690c9e28ad7b15c";
/// charon log: "SKEYSEED".
const SKEYSEED: &str = "1c469e20a72bf670088c503e0108f3758cca0040cfbf40be65e0524e5e1a7b2d";
/// charon log: "Sk_d secret".
const SK_D: &str = "77d65e8e4c2ba866252550c98a20e7dc33e7f6a8af57e0a8fcdd8ffee01fac03";
/// charon log: "Sk_ai secret".
const SK_AI: &str = "6794bf1a9f40ee0b38a943781ae79767083c3c414359b4e3162877bfb85b4418";
/// charon log: "Sk_ar secret".
const SK_AR: &str = "bc248279531791447aca1524054a43b96e9383c9e080532192f364cf9dfc096d";
/// charon log: "Sk_ei secret".
const SK_EI: &str = "4ae198c83b841f103120bb4117cc63ef";
/// charon log: "Sk_er secret".
const SK_ER: &str = "d0e333f61daa963cf2f77ee1977b0353";
/// charon log: "Sk_pi secret".
const SK_PI: &str = "ad1fc3d9b4d106bcad451d8b002ce41e62cc3e958e0138756d740a2ed9b7b847";
/// charon log: "Sk_pr secret".
const SK_PR: &str = "5b6520e4a327990895615ba747153217e33c4f450fc8a96866f815be39b3f019";
/// charon log: "encryption initiator key".
const ESP_KEY_I: &str = "1704dd07440c4d059052c7f33e01079cec3523ae";
/// charon log: "encryption responder key".
const ESP_KEY_R: &str = "1591c7e247546d7165142d410a68333d7e5c5e5d";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn nonce(m: &IkeMessage) -> Vec<u8> {
    match m.find(PayloadType::Nonce) {
        Some(Payload::Nonce(n)) => n.clone(),
        other => panic!("no nonce: {other:?}"),
    }
}

/// The IKE SA keys as we derive them from the captured exchange.
fn derive() -> (IkeMessage, IkeMessage, IkeKeys) {
    let init_req = IkeMessage::parse(&hex(INIT_REQUEST)).unwrap();
    let init_resp = IkeMessage::parse(&hex(INIT_RESPONSE)).unwrap();
    let (ni, nr) = (nonce(&init_req), nonce(&init_resp));
    let seed = skeyseed(Prf::HmacSha256, &ni, &nr, &hex(G_IR));
    assert_eq!(*seed, hex(SKEYSEED));
    let suite = plexnet::ike::keys::IkeSuite {
        encr: Encr::AesCbc { key_bits: 128 },
        prf: Prf::HmacSha256,
        integ: Some(Integ::HmacSha256_128),
    };
    let h = init_resp.header;
    let keys = ike_keys(suite, &seed, &ni, &nr, h.spi_i, h.spi_r).unwrap();
    (init_req, init_resp, keys)
}

/// Checks the ICV of an SK message (HMAC-SHA2-256-128 over everything
/// before it, RFC 7296 §3.14), decrypts it with AES-CBC-128 and parses the
/// inner chain.
fn open_sk(raw: &[u8], sk_a: &[u8], sk_e: &[u8]) -> Vec<Payload> {
    let m = IkeMessage::parse(raw).unwrap();
    let Some(Payload::Encrypted(sk)) = m.payloads.last() else {
        panic!("no SK payload");
    };
    let (body, icv) = raw.split_at(raw.len() - 16);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(sk_a).unwrap();
    mac.update(body);
    assert_eq!(&mac.finalize().into_bytes()[..16], icv, "ICV");
    let (iv, rest) = sk.data.split_at(16);
    let mut ct = rest[..rest.len() - 16].to_vec();
    let pt = cbc::Decryptor::<Aes128>::new_from_slices(sk_e, iv)
        .unwrap()
        .decrypt_padded_mut::<NoPadding>(&mut ct)
        .unwrap();
    let pad = usize::from(*pt.last().unwrap());
    let inner = &pt[..pt.len() - 1 - pad];
    parse_chain(sk.first_payload, inner).unwrap()
}

#[test]
fn parses_and_re_emits_strongswan_messages_exactly() {
    for (name, h) in [
        ("IKE_SA_INIT request", INIT_REQUEST),
        ("IKE_SA_INIT response", INIT_RESPONSE),
        ("IKE_AUTH request", AUTH_REQUEST),
        ("IKE_AUTH response", AUTH_RESPONSE),
    ] {
        let bytes = hex(h);
        let m = IkeMessage::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.to_bytes().unwrap(), bytes, "{name}");
    }
    let req = IkeMessage::parse(&hex(INIT_REQUEST)).unwrap();
    assert_eq!(req.header.exchange_type, ExchangeType::IkeSaInit);
    assert!(req.header.flags.initiator() && !req.header.flags.response());
    let types: Vec<NotifyType> = req.notifies().map(|n| n.notify_type).collect();
    assert_eq!(
        types,
        [
            NotifyType::NatDetectionSourceIp,
            NotifyType::NatDetectionDestinationIp,
            NotifyType::Ikev2FragmentationSupported,
            NotifyType::SignatureHashAlgorithms,
            NotifyType::RedirectSupported,
        ]
    );
    // strongSwan sends its KE for the first group of its default proposal.
    match req.find(PayloadType::KeyExchange) {
        Some(Payload::Ke(ke)) => {
            assert_eq!(ke.group, DhId::Curve25519);
            assert_eq!(ke.data.len(), DhGroup::Curve25519.public_len());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn selects_what_strongswan_selected() {
    let req = IkeMessage::parse(&hex(INIT_REQUEST)).unwrap();
    let Some(Payload::Sa(sa)) = req.find(PayloadType::SecurityAssociation) else {
        panic!("no SA");
    };
    let s = select(
        &default_ike(),
        sa,
        KeMode::Offered(DhId::Curve25519),
        SelectOptions::default(),
    )
    .unwrap();
    assert_eq!(s.number, 1);
    assert_eq!(s.encr, Encr::AesCbc { key_bits: 128 });
    assert_eq!(s.integ, Some(Integ::HmacSha256_128));
    assert_eq!(s.prf, Some(Prf::HmacSha256));
    assert_eq!(s.dh, Some(DhGroup::Curve25519));
    // Our answer carries the same transforms strongSwan's responder chose.
    let resp = IkeMessage::parse(&hex(INIT_RESPONSE)).unwrap();
    let Some(Payload::Sa(chosen)) = resp.find(PayloadType::SecurityAssociation) else {
        panic!("no SA");
    };
    assert_eq!(s.to_proposal(Vec::new()), chosen.proposals[0]);
}

#[test]
fn derives_strongswans_ike_keys() {
    let (_, _, keys) = derive();
    assert_eq!(*keys.sk_d, hex(SK_D));
    assert_eq!(*keys.sk_ai, hex(SK_AI));
    assert_eq!(*keys.sk_ar, hex(SK_AR));
    assert_eq!(*keys.sk_ei, hex(SK_EI));
    assert_eq!(*keys.sk_er, hex(SK_ER));
    assert_eq!(*keys.sk_pi, hex(SK_PI));
    assert_eq!(*keys.sk_pr, hex(SK_PR));
}

#[test]
fn verifies_strongswans_auth_payloads_and_child_keys() {
    let (init_req, init_resp, keys) = derive();
    let (ni, nr) = (nonce(&init_req), nonce(&init_resp));

    let find_id = |payloads: &[Payload], initiator: bool| {
        payloads
            .iter()
            .find_map(|p| match (p, initiator) {
                (Payload::IdI(id), true) | (Payload::IdR(id), false) => Some(id.clone()),
                _ => None,
            })
            .unwrap()
    };
    let find_auth = |payloads: &[Payload]| {
        payloads
            .iter()
            .find_map(|p| match p {
                Payload::Auth(a) => Some(a.clone()),
                _ => None,
            })
            .unwrap()
    };

    // Initiator's AUTH: RealMessage1 | Nr | prf(SK_pi, IDi').
    let request = open_sk(&hex(AUTH_REQUEST), &keys.sk_ai, &keys.sk_ei);
    let id_i = find_id(&request, true);
    assert_eq!(id_i, Identification::Fqdn(b"client1.plex".to_vec()));
    let auth = find_auth(&request);
    assert_eq!(auth.method, AuthMethod::SharedKeyMic);
    let octets = signed_octets(
        Prf::HmacSha256,
        &hex(INIT_REQUEST),
        &nr,
        &keys.sk_pi,
        &id_i.rest_of_payload(),
    );
    assert!(verify_psk_auth(Prf::HmacSha256, PSK, &octets, &auth.data));
    assert!(!verify_psk_auth(
        Prf::HmacSha256,
        b"wrong",
        &octets,
        &auth.data
    ));
    assert!(request.iter().any(
        |p| matches!(p, Payload::TsI(ts) if ts == &[TrafficSelector::ipv4_host([198, 51, 100, 1])])
    ));

    // Responder's AUTH: RealMessage2 | Ni | prf(SK_pr, IDr').
    let response = open_sk(&hex(AUTH_RESPONSE), &keys.sk_ar, &keys.sk_er);
    let id_r = find_id(&response, false);
    assert_eq!(id_r, Identification::Ipv4Addr([198, 18, 200, 2]));
    let octets = signed_octets(
        Prf::HmacSha256,
        &hex(INIT_RESPONSE),
        &ni,
        &keys.sk_pr,
        &id_r.rest_of_payload(),
    );
    assert!(verify_psk_auth(
        Prf::HmacSha256,
        PSK,
        &octets,
        &find_auth(&response).data
    ));

    // The child SA: our selection from the client's ESP offer, and its keys.
    let Some(Payload::Sa(sa)) = request.iter().find(|p| matches!(p, Payload::Sa(_))) else {
        panic!("no child SA");
    };
    let s = select(&default_esp(), sa, KeMode::Ignore, SelectOptions::default()).unwrap();
    assert_eq!(s.encr, Encr::AesGcm16 { key_bits: 128 });
    assert_eq!(s.esn, Some(EsnId::NoEsn));
    assert_eq!(s.spi.len(), 4);
    let child = child_keys(Prf::HmacSha256, &keys.sk_d, None, &ni, &nr, s.child_suite()).unwrap();
    // 16-octet AES key followed by the 4-octet GCM salt, per direction.
    assert_eq!(*child.encr_i, hex(ESP_KEY_I));
    assert_eq!(*child.encr_r, hex(ESP_KEY_R));
}
