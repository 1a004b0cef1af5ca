//! Parsing and emitting IKEv2 messages laid out by hand from RFC 7296.

use super::*;

/// An IKE_SA_INIT request laid out by hand from RFC 7296 §3: SA with one
/// IKE proposal (AES-CBC-128, HMAC-SHA2-256 PRF and -128 integrity,
/// Curve25519), KE, Nonce, NAT_DETECTION_SOURCE_IP.
static SA_INIT: [u8; 148] = [
    // IKE header: SPIi, SPIr = 0, next = SA, version 2.0, IKE_SA_INIT, I flag, msg id 0, length 148
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0, 0, 0, 0, 0, 0, 33, 0x20, 34, 0x08, 0,
    0, 0, 0, 0, 0, 0, 148, // SA payload: next = KE, length 48
    34, 0, 0, 48, // proposal: last, length 44, #1, IKE, SPI size 0, 4 transforms
    0, 0, 0, 44, 1, 1, 0, 4, // ENCR AES-CBC with key length 128 (length 12)
    3, 0, 0, 12, 1, 0, 0, 12, 0x80, 14, 0, 128, // PRF HMAC-SHA2-256
    3, 0, 0, 8, 2, 0, 0, 5, // INTEG HMAC-SHA2-256-128
    3, 0, 0, 8, 3, 0, 0, 12, // DH Curve25519, last
    0, 0, 0, 8, 4, 0, 0, 31, // KE payload: next = Nonce, length 40, group 31, 32 octets
    40, 0, 0, 40, 0, 31, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
    20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
    // Nonce payload: next = Notify, length 20
    41, 0, 0, 20, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac,
    0xad, 0xae, 0xaf,
    // Notify payload: last, length 12: no protocol, no SPI, NAT_DETECTION_SOURCE_IP (0x4004), 4 octets
    0, 0, 0, 12, 0, 0, 0x40, 0x04, 0xde, 0xad, 0xbe, 0xef,
];

fn sa_init_repr() -> IkeMessage {
    IkeMessage {
        header: Header {
            spi_i: 0x1122_3344_5566_7788,
            spi_r: 0,
            major_version: 2,
            minor_version: 0,
            exchange_type: ExchangeType::IkeSaInit,
            flags: Flags(Flags::INITIATOR),
            message_id: 0,
        },
        payloads: vec![
            Payload::Sa(Sa {
                proposals: vec![Proposal {
                    number: 1,
                    protocol: ProtocolId::Ike,
                    spi: vec![],
                    transforms: vec![
                        Transform::encr(EncrId::AesCbc, Some(128)),
                        Transform::new(TransformId::Prf(PrfId::HmacSha256)),
                        Transform::new(TransformId::Integ(IntegId::HmacSha256_128)),
                        Transform::new(TransformId::Dh(DhId::Curve25519)),
                    ],
                }],
            }),
            Payload::Ke(KeyExchange {
                group: DhId::Curve25519,
                data: (1..=32).collect(),
            }),
            Payload::Nonce((0xa0..=0xaf).collect()),
            Payload::Notify(Notify::new(
                NotifyType::NatDetectionSourceIp,
                vec![0xde, 0xad, 0xbe, 0xef],
            )),
        ],
    }
}

#[test]
fn header_view() {
    let p = Packet::new_checked(&SA_INIT[..]).unwrap();
    assert_eq!(p.spi_i(), 0x1122_3344_5566_7788);
    assert_eq!(p.spi_r(), 0);
    assert_eq!(p.next_payload(), PayloadType::SecurityAssociation);
    assert_eq!((p.major_version(), p.minor_version()), (2, 0));
    assert_eq!(p.exchange_type(), ExchangeType::IkeSaInit);
    assert!(p.flags().initiator() && !p.flags().response());
    assert_eq!(p.length(), 148);
    assert_eq!(
        Packet::new_checked(&SA_INIT[..27]).unwrap_err(),
        Error::Truncated(27)
    );
}

#[test]
fn parse_sa_init() {
    assert_eq!(IkeMessage::parse(&SA_INIT).unwrap(), sa_init_repr());
}

#[test]
fn emit_sa_init() {
    assert_eq!(sa_init_repr().to_bytes().unwrap(), SA_INIT.to_vec());
}

#[test]
fn rejects_bad_lengths() {
    // Header length disagrees with the datagram.
    let mut b = SA_INIT.to_vec();
    b[27] = 149;
    assert_eq!(
        IkeMessage::parse(&b).unwrap_err(),
        Error::LengthMismatch {
            header: 149,
            datagram: 148
        }
    );
    // KE payload length runs past the end of the message.
    let mut b = SA_INIT.to_vec();
    b[28 + 48 + 3] = 200;
    assert_eq!(
        IkeMessage::parse(&b).unwrap_err(),
        Error::Payload {
            payload_type: 34,
            offset: 48,
            reason: Malformed::Overrun {
                length: 200,
                available: 148 - 28 - 48
            },
        }
    );
    // A payload length below the generic header size.
    let mut b = SA_INIT.to_vec();
    b[28 + 3] = 3;
    assert!(matches!(
        IkeMessage::parse(&b).unwrap_err(),
        Error::Payload {
            reason: Malformed::LengthTooSmall(3),
            ..
        }
    ));
    // The proposal claims five transforms but carries four.
    let mut b = SA_INIT.to_vec();
    b[28 + 4 + 7] = 5;
    assert!(matches!(
        IkeMessage::parse(&b).unwrap_err(),
        Error::Payload {
            reason: Malformed::Inconsistent("number of transforms"),
            ..
        }
    ));
    // Truncated datagram: header length fixed up, last payload cut.
    let mut b = SA_INIT[..140].to_vec();
    b[27] = 140;
    assert!(matches!(
        IkeMessage::parse(&b).unwrap_err(),
        Error::Payload {
            payload_type: 41,
            reason: Malformed::Overrun { .. },
            ..
        }
    ));
    // IKEv1 header.
    let mut b = SA_INIT.to_vec();
    b[17] = 0x10;
    assert_eq!(
        IkeMessage::parse(&b).unwrap_err(),
        Error::UnsupportedVersion(1)
    );
}

#[test]
fn unknown_critical_payload_kept() {
    // Last payload (Notify) now says another payload of type 200 follows,
    // critical, with a 2-octet body.
    let mut b = SA_INIT.to_vec();
    b[28 + 48 + 40 + 20] = 200;
    b.extend_from_slice(&[0, 0x80, 0, 6, 0xca, 0xfe]);
    b[27] = 154;
    let m = IkeMessage::parse(&b).unwrap();
    assert_eq!(
        m.payloads.last(),
        Some(&Payload::Unknown(UnknownPayload {
            payload_type: 200,
            critical: true,
            body: vec![0xca, 0xfe],
        }))
    );
    assert_eq!(m.to_bytes().unwrap(), b);
}

#[test]
fn encrypted_payload_ends_chain() {
    // IKE_AUTH request: SK payload whose first inner payload is IDi.
    let m = IkeMessage {
        header: Header {
            spi_r: 0x99,
            exchange_type: ExchangeType::IkeAuth,
            message_id: 1,
            ..sa_init_repr().header
        },
        payloads: vec![Payload::Encrypted(Encrypted {
            first_payload: PayloadType::IdInitiator,
            data: vec![7; 48],
        })],
    };
    let b = m.to_bytes().unwrap();
    assert_eq!(b[16], 46); // header: next = SK
    assert_eq!(b[28], 35); // SK: next = IDi (first inner payload)
    assert_eq!(IkeMessage::parse(&b).unwrap(), m);
    // Nothing may follow SK.
    let mut bad = b.clone();
    bad.extend_from_slice(&[0, 0, 0, 4]);
    let len = bad.len() as u8;
    bad[27] = len;
    assert!(matches!(
        IkeMessage::parse(&bad).unwrap_err(),
        Error::Payload {
            reason: Malformed::AfterEncrypted,
            ..
        }
    ));
    let mut two = m.clone();
    two.payloads.push(Payload::Nonce(vec![1]));
    assert_eq!(two.to_bytes().unwrap_err(), EmitError::EncryptedNotLast);
}

#[test]
fn inner_chain_ids_ts_delete() {
    let chain = vec![
        Payload::IdI(Identification::Ipv4Addr([198, 18, 1, 10])),
        Payload::IdR(Identification::Fqdn(b"dva1.plex".to_vec())),
        Payload::Auth(Auth {
            method: AuthMethod::SharedKeyMic,
            data: vec![0x55; 32],
        }),
        Payload::TsI(vec![TrafficSelector::ipv4_host([198, 18, 1, 10])]),
        Payload::TsR(vec![TrafficSelector::Ipv4 {
            ip_protocol: 6,
            start_port: 80,
            end_port: 80,
            start: [198, 18, 0, 100],
            end: [198, 18, 0, 100],
        }]),
        Payload::Delete(Delete {
            protocol: ProtocolId::Esp,
            spi_size: 4,
            spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
        }),
    ];
    let mut buf = Vec::new();
    let first = emit_chain(&chain, &mut buf).unwrap();
    assert_eq!(first, PayloadType::IdInitiator);
    // IDi body: type 1, reserved, address.
    assert_eq!(&buf[4..12], &[1, 0, 0, 0, 198, 18, 1, 10]);
    assert_eq!(parse_chain(first, &buf).unwrap(), chain);
    // ID_IPV4_ADDR with five octets is malformed.
    let bad = [0, 0, 0, 13, 1, 0, 0, 0, 1, 2, 3, 4, 5];
    assert!(matches!(
        parse_chain(PayloadType::IdInitiator, &bad).unwrap_err(),
        Error::Payload {
            reason: Malformed::BadLength("ID_IPV4_ADDR"),
            ..
        }
    ));
    // A TS_IPV4_ADDR_RANGE of selector length 20 is malformed.
    let bad = [
        0, 0, 0, 28, 1, 0, 0, 0, 7, 0, 0, 20, 0, 0, 255, 255, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0,
    ];
    assert!(matches!(
        parse_chain(PayloadType::TsInitiator, &bad).unwrap_err(),
        Error::Payload {
            reason: Malformed::BadLength("TS_IPV4_ADDR_RANGE"),
            ..
        }
    ));
}

#[test]
fn invalid_ke_notify() {
    let n = Notify::invalid_ke(DhId::Modp2048);
    assert_eq!(n.data, vec![0, 14]);
    assert_eq!(n.requested_group(), Some(DhId::Modp2048));
    assert!(n.notify_type.is_error());
    assert!(!NotifyType::NatDetectionSourceIp.is_error());
    assert_eq!(
        NotifyType::from(16430),
        NotifyType::Ikev2FragmentationSupported
    );
    assert_eq!(NotifyType::from(40000), NotifyType::Unknown(40000));
}
