//! Property tests of the IKEv2 wire format (`plexnet::wire::ike`): the parser
//! never panics, and generated messages survive emit → parse unchanged.

use plexnet::wire::ike::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        any::<u16>().prop_map(Attribute::KeyLength),
        (0u16..0x8000, any::<u16>())
            .prop_filter("key length has its own variant", |(t, _)| *t
                != ATTR_KEY_LENGTH)
            .prop_map(|(attr_type, value)| Attribute::Tv { attr_type, value }),
        (0u16..0x8000, bytes(8)).prop_map(|(attr_type, value)| Attribute::Tlv { attr_type, value }),
    ]
}

fn transform_id() -> impl Strategy<Value = TransformId> {
    prop_oneof![
        any::<u16>().prop_map(|v| TransformId::Encr(v.into())),
        any::<u16>().prop_map(|v| TransformId::Prf(v.into())),
        any::<u16>().prop_map(|v| TransformId::Integ(v.into())),
        any::<u16>().prop_map(|v| TransformId::Dh(v.into())),
        any::<u16>().prop_map(|v| TransformId::Esn(v.into())),
        (any::<u8>(), any::<u16>())
            .prop_filter("named types have variants", |(t, _)| !(1..=5).contains(t))
            .prop_map(|(transform_type, id)| TransformId::Other { transform_type, id }),
    ]
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u8>(),
        any::<u8>(),
        bytes(9),
        vec((transform_id(), vec(attribute(), 0..3)), 0..6),
    )
        .prop_map(|(number, protocol, spi, transforms)| Proposal {
            number,
            protocol: protocol.into(),
            spi,
            transforms: transforms
                .into_iter()
                .map(|(id, attributes)| Transform { id, attributes })
                .collect(),
        })
}

fn identification() -> impl Strategy<Value = Identification> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(Identification::Ipv4Addr),
        any::<[u8; 16]>().prop_map(Identification::Ipv6Addr),
        bytes(20).prop_map(Identification::Fqdn),
        bytes(20).prop_map(Identification::Rfc822Addr),
        bytes(20).prop_map(Identification::DerAsn1Dn),
        bytes(20).prop_map(Identification::DerAsn1Gn),
        bytes(20).prop_map(Identification::KeyId),
        (any::<u8>(), bytes(20))
            .prop_filter("named ID types have variants", |(t, _)| {
                matches!(IdType::from(*t), IdType::Unknown(_))
            })
            .prop_map(|(id_type, data)| Identification::Other { id_type, data }),
    ]
}

fn traffic_selector() -> impl Strategy<Value = TrafficSelector> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 4]>(),
            any::<[u8; 4]>()
        )
            .prop_map(|(ip_protocol, start_port, end_port, start, end)| {
                TrafficSelector::Ipv4 {
                    ip_protocol,
                    start_port,
                    end_port,
                    start,
                    end,
                }
            }),
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 16]>(),
            any::<[u8; 16]>()
        )
            .prop_map(|(ip_protocol, start_port, end_port, start, end)| {
                TrafficSelector::Ipv6 {
                    ip_protocol,
                    start_port,
                    end_port,
                    start,
                    end,
                }
            }),
        (any::<u8>(), any::<u8>(), bytes(12))
            .prop_filter("named TS types have variants", |(t, _, _)| *t != 7
                && *t != 8)
            .prop_map(|(ts_type, second_octet, data)| TrafficSelector::Other {
                ts_type,
                second_octet,
                data,
            }),
    ]
}

/// Payloads that may appear anywhere in a chain (everything but SK/SKF).
fn inner_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        vec(proposal(), 0..3).prop_map(|proposals| Payload::Sa(Sa { proposals })),
        (any::<u16>(), bytes(40)).prop_map(|(g, data)| Payload::Ke(KeyExchange {
            group: g.into(),
            data
        })),
        identification().prop_map(Payload::IdI),
        identification().prop_map(Payload::IdR),
        (any::<u8>(), bytes(20))
            .prop_map(|(encoding, data)| Payload::Cert(Certificate { encoding, data })),
        (any::<u8>(), bytes(20))
            .prop_map(|(encoding, data)| Payload::CertReq(Certificate { encoding, data })),
        (any::<u8>(), bytes(40)).prop_map(|(m, data)| Payload::Auth(Auth {
            method: m.into(),
            data
        })),
        bytes(40).prop_map(Payload::Nonce),
        (any::<u8>(), bytes(9), any::<u16>(), bytes(24)).prop_map(|(p, spi, t, data)| {
            Payload::Notify(Notify {
                protocol: p.into(),
                spi,
                notify_type: t.into(),
                data,
            })
        }),
        (any::<u8>(), 0u8..9, 0usize..4).prop_flat_map(|(p, size, n)| {
            vec(vec(any::<u8>(), usize::from(size)), n).prop_map(move |spis| {
                Payload::Delete(Delete {
                    protocol: p.into(),
                    spi_size: size,
                    spis,
                })
            })
        }),
        bytes(20).prop_map(Payload::VendorId),
        vec(traffic_selector(), 0..4).prop_map(Payload::TsI),
        vec(traffic_selector(), 0..4).prop_map(Payload::TsR),
        (any::<u8>(), bytes(20)).prop_map(|(cfg_type, attributes)| Payload::Config(Config {
            cfg_type,
            attributes
        })),
        (any::<u8>(), any::<bool>(), bytes(20))
            .prop_filter("named payload types have variants", |(t, _, _)| {
                matches!(
                    PayloadType::from(*t),
                    PayloadType::Unknown(_) | PayloadType::Eap
                )
            })
            .prop_map(
                |(payload_type, critical, body)| Payload::Unknown(UnknownPayload {
                    payload_type,
                    critical,
                    body,
                })
            ),
    ]
}

fn last_payload() -> impl Strategy<Value = Option<Payload>> {
    prop_oneof![
        Just(None),
        (any::<u8>(), bytes(64)).prop_map(|(first, data)| Some(Payload::Encrypted(Encrypted {
            first_payload: first.into(),
            data
        }))),
        (any::<u8>(), any::<u16>(), any::<u16>(), bytes(64)).prop_map(|(first, n, total, data)| {
            Some(Payload::EncryptedFragment(EncryptedFragment {
                first_payload: first.into(),
                fragment_number: n,
                total_fragments: total,
                data,
            }))
        }),
    ]
}

fn message() -> impl Strategy<Value = IkeMessage> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            0u8..16,
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
        ),
        vec(inner_payload(), 0..6),
        last_payload(),
    )
        .prop_map(
            |((spi_i, spi_r, minor, exch, flags, message_id), mut payloads, last)| {
                payloads.extend(last);
                IkeMessage {
                    header: Header {
                        spi_i,
                        spi_r,
                        major_version: 2,
                        minor_version: minor,
                        exchange_type: exch.into(),
                        flags: Flags(flags),
                        message_id,
                    },
                    payloads,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(300), first in any::<u8>()) {
        let _ = IkeMessage::parse(&data);
        let _ = parse_chain(first.into(), &data);
        if let Ok(p) = Packet::new_checked(&data[..]) {
            let _ = Header::parse(&p);
        }
    }

    #[test]
    fn arbitrary_header_with_fitting_length_never_panics(mut data in bytes(300), first in any::<u8>()) {
        // Give random bytes a plausible header so the payload parser is reached.
        data.resize(data.len().max(HEADER_LEN), 0);
        data[16] = first;
        data[17] = IKEV2_VERSION;
        let len = (data.len() as u32).to_be_bytes();
        data[24..28].copy_from_slice(&len);
        if let Ok(m) = IkeMessage::parse(&data) {
            // Whatever parses emits again and parses to the same thing.
            let again = m.to_bytes().expect("a parsed message fits its length fields");
            prop_assert_eq!(IkeMessage::parse(&again), Ok(m));
        }
    }

    #[test]
    fn generated_messages_round_trip(m in message()) {
        let bytes = m.to_bytes().expect("generated messages are small");
        let parsed = IkeMessage::parse(&bytes);
        prop_assert_eq!(parsed.as_ref(), Ok(&m));
        // And the bytes are stable: emit(parse(x)) == x.
        prop_assert_eq!(parsed.expect("checked above").to_bytes().expect("fits"), bytes);
    }

    #[test]
    fn mutated_messages_never_panic(m in message(), flips in vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut bytes = m.to_bytes().expect("generated messages are small");
        for (at, x) in flips {
            let i = at % bytes.len();
            bytes[i] ^= x;
        }
        let _ = IkeMessage::parse(&bytes);
        let cut = cut % (bytes.len() + 1);
        let _ = IkeMessage::parse(&bytes[..cut]);
        if bytes.len() > HEADER_LEN {
            let _ = parse_chain(PayloadType::from(bytes[16]), &bytes[HEADER_LEN..]);
        }
    }
}
