//! Property tests of the XCF/CF frame codec (`wire::xcf`, and
//! `sysplex::xcf::codec` for the messages): every variant round-trips,
//! arbitrary bytes never panic the slice or streaming decoder.

use std::net::{IpAddr, Ipv4Addr};

use plexnet::ipsec::filter::{DynamicFilter, SaPair};
use plexnet::ipsec::policy::{
    AddrSpec, Conditions, DataOffer, Direction as RuleDirection, DynVpnAction, FilterAction,
    FilterRule, Initiation, PortSpec, ProtocolSpec, Routing, TcpConnect,
};
use plexnet::ipsec::sa::{
    AddrRange, EncAlg, IntegAlg, Key, Lifetime, Lifetimes, Mode, PortRange, Protocol, SaConfig,
    Spi, TrafficSelector, UdpEncap,
};
use plexnet::ipsec::sad::SaId;
use plexnet::sysplex::xcf::codec::{
    decode, encode_cf_request, encode_cf_response, encode_xcf, Body, FrameDecoder,
};
use plexnet::sysplex::xcf::{
    AhBundle, BundleInstall, CfError, CfRequest, CfResponse, ConnEndReason, Direction, SaFilter,
    SaInstall, SeqKey, VipaEntry, XcfMessage,
};
use plexnet::wire::xcf::{encode, FrameBody, Header, HEADER_LEN, MAGIC, VERSION};
use plexnet::wire::IpProtocol;
use proptest::prelude::*;

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4().prop_map(IpAddr::V4),
        any::<u128>().prop_map(|n| IpAddr::V6(n.into()))
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Esp), Just(Protocol::Ah)]
}

fn seq_key() -> impl Strategy<Value = SeqKey> {
    (v4(), protocol(), any::<u32>()).prop_map(|(dvipa, protocol, spi)| SeqKey {
        dvipa,
        protocol,
        spi: Spi(spi),
    })
}

fn lifetime() -> impl Strategy<Value = Lifetime> {
    (
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
    )
        .prop_map(|(seconds, bytes, packets)| Lifetime {
            seconds,
            bytes,
            packets,
        })
}

fn selector() -> impl Strategy<Value = TrafficSelector> {
    (
        ip(),
        ip(),
        ip(),
        ip(),
        any::<Option<u8>>(),
        any::<[u16; 4]>(),
    )
        .prop_map(|(a, b, c, d, proto, p)| TrafficSelector {
            src: AddrRange { start: a, end: b },
            dst: AddrRange { start: c, end: d },
            protocol: proto.map(IpProtocol::from),
            src_ports: PortRange {
                start: p[0],
                end: p[1],
            },
            dst_ports: PortRange {
                start: p[2],
                end: p[3],
            },
        })
}

fn sa_config() -> BoxedStrategy<SaConfig> {
    (
        (any::<u32>(), protocol(), any::<bool>(), ip(), ip()),
        (
            prop::sample::select(EncAlg::ALL.to_vec()),
            prop::collection::vec(any::<u8>(), 0..40),
            prop::sample::select(vec![
                IntegAlg::None,
                IntegAlg::HmacSha1_96,
                IntegAlg::HmacSha256_128,
                IntegAlg::HmacSha384_192,
                IntegAlg::HmacSha512_256,
            ]),
            prop::collection::vec(any::<u8>(), 0..64),
        ),
        (
            any::<bool>(),
            any::<u32>(),
            lifetime(),
            lifetime(),
            any::<Option<(u16, u16)>>(),
            selector(),
        ),
    )
        .prop_map(
            |(
                (spi, protocol, tunnel, src, dst),
                (enc, enc_key, integ, integ_key),
                (esn, replay_window, soft, hard, encap, selector),
            )| SaConfig {
                spi: Spi(spi),
                protocol,
                mode: if tunnel {
                    Mode::Tunnel
                } else {
                    Mode::Transport
                },
                src,
                dst,
                enc,
                enc_key: Key(enc_key),
                integ,
                integ_key: Key(integ_key),
                esn,
                replay_window,
                lifetimes: Lifetimes { soft, hard },
                udp_encap: encap.map(|(src_port, dst_port)| UdpEncap { src_port, dst_port }),
                selector,
            },
        )
        .boxed()
}

fn name() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn addr_spec() -> impl Strategy<Value = AddrSpec> {
    prop_oneof![
        Just(AddrSpec::Any),
        (v4(), 0u8..=32).prop_map(|(addr, len)| AddrSpec::Prefix { addr, len }),
        (v4(), v4()).prop_map(|(first, last)| AddrSpec::Range { first, last }),
    ]
}

fn port_spec() -> impl Strategy<Value = PortSpec> {
    prop_oneof![
        Just(PortSpec::Any),
        any::<(u16, u16)>().prop_map(|(first, last)| PortSpec::Range { first, last }),
    ]
}

fn protocol_spec() -> impl Strategy<Value = ProtocolSpec> {
    prop_oneof![
        Just(ProtocolSpec::Any),
        (port_spec(), port_spec()).prop_map(|(src, dst)| ProtocolSpec::Tcp { src, dst }),
        (port_spec(), port_spec()).prop_map(|(src, dst)| ProtocolSpec::Udp { src, dst }),
        any::<(Option<u8>, Option<u8>)>()
            .prop_map(|(icmp_type, code)| ProtocolSpec::Icmp { icmp_type, code }),
        any::<Option<u8>>().prop_map(|ospf_type| ProtocolSpec::Ospf { ospf_type }),
        any::<u8>().prop_map(ProtocolSpec::Number),
    ]
}

fn conditions() -> impl Strategy<Value = Conditions> {
    (
        addr_spec(),
        addr_spec(),
        protocol_spec(),
        prop::sample::select(vec![Routing::Local, Routing::Routed, Routing::Either]),
        prop::sample::select(vec![
            RuleDirection::Inbound,
            RuleDirection::Outbound,
            RuleDirection::Bidirectional,
        ]),
        prop::sample::select(vec![
            None,
            Some(TcpConnect::Inbound),
            Some(TcpConnect::Outbound),
        ]),
        any::<u8>(),
    )
        .prop_map(
            |(source, destination, protocol, routing, direction, connect, security_class)| {
                Conditions {
                    source,
                    destination,
                    protocol,
                    routing,
                    direction,
                    connect,
                    security_class,
                }
            },
        )
}

fn vpn_action() -> impl Strategy<Value = DynVpnAction> {
    let offer = (
        protocol(),
        any::<bool>(),
        prop::option::of(prop::sample::select(EncAlg::ALL.to_vec())),
        any::<u64>(),
        any::<Option<u64>>(),
    )
        .prop_map(
            |(protocol, tunnel, encryption, lifetime_secs, lifesize_bytes)| DataOffer {
                protocol,
                mode: if tunnel {
                    Mode::Tunnel
                } else {
                    Mode::Transport
                },
                encryption,
                integrity: IntegAlg::HmacSha256_128,
                lifetime_secs,
                lifesize_bytes,
            },
        );
    (
        name(),
        prop::collection::vec(offer, 0..3),
        prop::sample::select(vec![
            Initiation::LocalOnly,
            Initiation::RemoteOnly,
            Initiation::Either,
        ]),
        any::<Option<u16>>(),
    )
        .prop_map(|(name, offers, initiation, pfs_group)| DynVpnAction {
            name,
            offers,
            initiation,
            pfs_group,
        })
}

fn sa_id() -> impl Strategy<Value = SaId> {
    (ip(), protocol(), any::<u32>()).prop_map(|(dst, protocol, spi)| SaId {
        dst,
        protocol,
        spi: Spi(spi),
    })
}

/// The dynamic filter and anchor of Fig. 6 block 118, or none.
fn sa_filter() -> impl Strategy<Value = Option<SaFilter>> {
    let anchor = (name(), conditions(), vpn_action(), any::<bool>()).prop_map(
        |(name, conditions, vpn, log)| FilterRule {
            name,
            conditions,
            action: FilterAction::Ipsec(vpn),
            log,
        },
    );
    let filter = (anchor, sa_id(), sa_id(), selector(), selector()).prop_map(
        |(anchor, inbound_sa, outbound_sa, inbound, outbound)| SaFilter {
            dynamic: DynamicFilter {
                anchor: anchor.name.clone(),
                sas: SaPair {
                    inbound: inbound_sa,
                    outbound: outbound_sa,
                },
                inbound,
                outbound,
            },
            anchor,
        },
    );
    prop::option::of(filter)
}

fn sa_install() -> BoxedStrategy<SaInstall> {
    (
        v4(),
        sa_config(),
        sa_config(),
        sa_filter(),
        seq_key(),
        any::<u64>(),
    )
        .prop_map(
            |(dvipa, inbound, outbound, filter, seq_key, report_bytes)| SaInstall {
                dvipa,
                filter,
                inbound,
                outbound,
                seq_key,
                report_bytes,
            },
        )
        .boxed()
}

fn bundle_install() -> BoxedStrategy<BundleInstall> {
    (sa_install(), sa_config(), sa_config(), seq_key())
        .prop_map(|(esp, inbound, outbound, seq_key)| BundleInstall {
            esp,
            ah: AhBundle {
                inbound,
                outbound,
                seq_key,
            },
        })
        .boxed()
}

fn xcf_message() -> impl Strategy<Value = XcfMessage> {
    prop_oneof![
        bundle_install().prop_map(|b| XcfMessage::BundleInstall(Box::new(b))),
        (v4(), any::<[u32; 4]>()).prop_map(|(dvipa, s)| XcfMessage::BundleDelete {
            dvipa,
            esp_inbound_spi: Spi(s[0]),
            esp_outbound_spi: Spi(s[1]),
            ah_inbound_spi: Spi(s[2]),
            ah_outbound_spi: Spi(s[3]),
        }),
        (name(), v4()).prop_map(|(image, xcf_addr)| XcfMessage::Hello { image, xcf_addr }),
        any::<u64>().prop_map(|seq| XcfMessage::Heartbeat { seq }),
        (
            name(),
            prop::collection::vec(
                (v4(), prop::collection::vec(any::<u16>(), 0..5))
                    .prop_map(|(dvipa, ports)| VipaEntry { dvipa, ports }),
                0..4
            )
        )
            .prop_map(|(owner, vipas)| XcfMessage::VipaList { owner, vipas }),
        (v4(), any::<u16>()).prop_map(|(dvipa, port)| XcfMessage::RegisterListener { dvipa, port }),
        (v4(), any::<u16>())
            .prop_map(|(dvipa, port)| XcfMessage::DeregisterListener { dvipa, port }),
        sa_install().prop_map(|i| XcfMessage::SaInstall(Box::new(i))),
        (v4(), protocol(), any::<u32>(), any::<u32>()).prop_map(|(dvipa, protocol, i, o)| {
            XcfMessage::SaDelete {
                dvipa,
                protocol,
                inbound_spi: Spi(i),
                outbound_spi: Spi(o),
            }
        }),
        (v4(), any::<u16>(), v4(), any::<u16>(), any::<u8>()).prop_map(
            |(dvipa, local_port, peer, peer_port, protocol)| XcfMessage::NewConn {
                dvipa,
                local_port,
                peer,
                peer_port,
                protocol,
            }
        ),
        (
            v4(),
            protocol(),
            any::<u32>(),
            any::<bool>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(dvipa, protocol, spi, inbound, bytes, packets)| {
                XcfMessage::Lifesize {
                    dvipa,
                    protocol,
                    spi: Spi(spi),
                    direction: if inbound {
                        Direction::Inbound
                    } else {
                        Direction::Outbound
                    },
                    bytes,
                    packets,
                    highest_seq: bytes ^ packets,
                }
            }),
        (v4(), any::<u32>(), any::<bool>()).prop_map(|(dvipa, spi, late)| {
            XcfMessage::RekeyTiming {
                dvipa,
                spi: Spi(spi),
                late,
            }
        }),
        (v4(), any::<u16>(), v4(), any::<u16>(), 0u8..3).prop_map(
            |(dvipa, port, client, client_port, r)| XcfMessage::ConnEnded {
                dvipa,
                port,
                client,
                client_port,
                reason: match r {
                    0 => ConnEndReason::Closed,
                    1 => ConnEndReason::Reset,
                    _ => ConnEndReason::Rejected,
                },
            }
        ),
    ]
}

fn cf_request() -> impl Strategy<Value = CfRequest> {
    prop_oneof![
        (seq_key(), any::<u64>()).prop_map(|(key, start)| CfRequest::CreateSeq { key, start }),
        (seq_key(), any::<u32>()).prop_map(|(key, n)| CfRequest::FetchAdd { key, n }),
        seq_key().prop_map(|key| CfRequest::DeleteSeq { key }),
        (seq_key(), any::<u64>(), any::<u64>())
            .prop_map(|(key, start, last)| CfRequest::CreateSeqLimit { key, start, last }),
        (name(), prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(key, value)| CfRequest::Put { key, value }),
        name().prop_map(|key| CfRequest::Get { key }),
        name().prop_map(|key| CfRequest::Delete { key }),
        name().prop_map(|prefix| CfRequest::List { prefix }),
        (
            name(),
            any::<Option<Vec<u8>>>(),
            prop::collection::vec(any::<u8>(), 0..100)
        )
            .prop_map(|(key, expected, value)| CfRequest::CompareAndSwap {
                key,
                expected,
                value
            }),
    ]
}

fn cf_response() -> impl Strategy<Value = CfResponse> {
    prop_oneof![
        Just(CfResponse::Done),
        (any::<u64>(), any::<u32>()).prop_map(|(first, n)| CfResponse::SeqRange { first, n }),
        any::<Option<Vec<u8>>>().prop_map(CfResponse::Value),
        prop::collection::vec(name(), 0..5).prop_map(CfResponse::Keys),
        prop_oneof![
            seq_key().prop_map(CfError::UnknownSeq),
            seq_key().prop_map(CfError::SeqExists),
            seq_key().prop_map(CfError::SeqExhausted),
            name().prop_map(CfError::Malformed),
            any::<Option<Vec<u8>>>().prop_map(CfError::Conflict),
        ]
        .prop_map(CfResponse::Error),
    ]
}

fn round_trip<B: FrameBody + std::fmt::Debug + PartialEq + Clone>(
    id: u32,
    value: &B,
    wrap: impl Fn(B) -> Body,
) {
    let mut out = Vec::new();
    encode(id, value, &mut out).unwrap();
    let header = Header::parse(&out).unwrap();
    assert_eq!(header.type_code, value.type_code());
    assert_eq!(header.type_name(), value.type_name());
    assert_eq!(header.body_len as usize, out.len() - HEADER_LEN);
    let (decoded, used) = decode(&out).unwrap();
    assert_eq!(used, out.len());
    assert_eq!(decoded.request_id, id);
    assert_eq!(decoded.body, wrap(value.clone()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A bundle install cut short anywhere, or with a byte appended, is
    /// refused as a bad body and skipped (the stream goes on); it never
    /// decodes as something else.
    #[test]
    fn bundle_install_body_is_length_checked(b in bundle_install(), cut in any::<prop::sample::Index>()) {
        let msg = XcfMessage::BundleInstall(Box::new(b));
        let mut frame = Vec::new();
        encode_xcf(&msg, &mut frame).unwrap();
        let body_len = frame.len() - HEADER_LEN;
        let keep = cut.index(body_len);
        let mut short = frame[..HEADER_LEN + keep].to_vec();
        short[12..16].copy_from_slice(&(keep as u32).to_be_bytes());
        let mut long = frame.clone();
        long.push(0);
        long[12..16].copy_from_slice(&(body_len as u32 + 1).to_be_bytes());
        for bad in [short, long] {
            let err = decode(&bad).unwrap_err();
            prop_assert!(matches!(err, plexnet::wire::xcf::FrameError::BadBody { code: 0x0022, .. }), "{err:?}");
            prop_assert!(!err.is_fatal());
        }
    }

    #[test]
    fn xcf_messages_round_trip(msg in xcf_message()) {
        round_trip(0, &msg, Body::Xcf);
        let mut out = Vec::new();
        encode_xcf(&msg, &mut out).unwrap();
        prop_assert_eq!(decode(&out).unwrap().0.body, Body::Xcf(msg));
    }

    #[test]
    fn cf_requests_round_trip(id in any::<u32>(), req in cf_request()) {
        round_trip(id, &req, Body::CfRequest);
        let mut out = Vec::new();
        encode_cf_request(id, &req, &mut out).unwrap();
        prop_assert_eq!(decode(&out).unwrap().0.body, Body::CfRequest(req));
    }

    #[test]
    fn cf_responses_round_trip(id in any::<u32>(), resp in cf_response()) {
        round_trip(id, &resp, Body::CfResponse);
        let mut out = Vec::new();
        encode_cf_response(id, &resp, &mut out).unwrap();
        prop_assert_eq!(decode(&out).unwrap().0.body, Body::CfResponse(resp));
    }

    /// A stream of frames cut at arbitrary points yields the same frames.
    #[test]
    fn stream_of_frames_in_any_chunks(
        msgs in prop::collection::vec(xcf_message(), 1..8),
        cuts in prop::collection::vec(1usize..64, 1..40),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            encode_xcf(m, &mut stream).unwrap();
        }
        let mut dec = FrameDecoder::new();
        let mut got = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        while at < stream.len() {
            let end = (at + cut.next().copied().unwrap_or(1)).min(stream.len());
            dec.push(&stream[at..end]);
            at = end;
            while let Some(frame) = dec.next_frame() {
                match frame.unwrap().body {
                    Body::Xcf(m) => got.push(m),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(dec.buffered(), 0);
    }

    /// Arbitrary bytes never panic the slice decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
        let _ = Header::parse(&bytes);
    }

    /// A valid header with an arbitrary body (the likely attack: the
    /// header passes, postcard gets garbage) never panics, and a refused
    /// frame is skipped whole so the next one still decodes.
    #[test]
    fn arbitrary_bodies_never_panic(
        channel in 0u8..5,
        code in prop::sample::select(vec![0x0001u16, 0x0002, 0x0010, 0x0011, 0x0012, 0x0020, 0x0021,
            0x0022, 0x0023, 0x0030, 0x0031, 0x0040, 0x0041, 0x0101, 0x0102, 0x0103, 0x0104, 0x0110, 0x0111,
            0x0112, 0x0113, 0x0201, 0x0202, 0x0203, 0x0204, 0x02ff, 0x7777]),
        id in any::<u32>(),
        body in prop::collection::vec(any::<u8>(), 0..200),
        chunk in 1usize..50,
    ) {
        let mut frame = Vec::new();
        frame.extend_from_slice(&MAGIC);
        frame.push(VERSION);
        frame.push(channel);
        frame.extend_from_slice(&code.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&id.to_be_bytes());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        let _ = decode(&frame);
        encode_xcf(&XcfMessage::Heartbeat { seq: 42 }, &mut frame).unwrap();
        let mut dec = FrameDecoder::new();
        let mut results = Vec::new();
        for piece in frame.chunks(chunk) {
            dec.push(piece);
            while let Some(r) = dec.next_frame() {
                results.push(r);
            }
        }
        prop_assert_eq!(results.len(), 2);
        if let Err(refused) = &results[0] {
            prop_assert!(!refused.is_fatal());
            prop_assert_eq!(refused.request_id, Some(id));
        }
        prop_assert_eq!(
            results[1].clone().unwrap().body,
            Body::Xcf(XcfMessage::Heartbeat { seq: 42 })
        );
    }

    /// Arbitrary bytes in arbitrary chunks never panic the stream decoder,
    /// and it never buffers much more than a frame.
    #[test]
    fn arbitrary_stream_never_panics(
        pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..20),
        prefix_header in any::<bool>(),
    ) {
        let mut dec = FrameDecoder::new();
        if prefix_header {
            dec.push(&MAGIC);
            dec.push(&[VERSION]);
        }
        for p in &pieces {
            dec.push(p);
            while dec.next_frame().is_some() {}
        }
        prop_assert!(dec.buffered() <= 64 * 20 + 3);
    }
}
