//! The coupling facility over TCP on 127.0.0.1 (and over in-process
//! duplex pipes): concurrent fetch-and-adds, pipelining, malformed frames,
//! reconnection, timeouts.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use plexnet::ipsec::sa::{Protocol, Spi};
use plexnet::runtime::cf::{
    serve_cf, serve_connection, CfClient, CfClientConfig, CfClientError, CfConnError, CfService,
};
use plexnet::sysplex::cf::CouplingFacility;
use plexnet::sysplex::xcf::codec::{
    decode, encode_cf_request, encode_cf_response, encode_xcf, Body, FrameDecoder,
};
use plexnet::sysplex::xcf::{CfError, CfRequest, CfResponse, SeqKey, XcfMessage};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn key(spi: u32) -> SeqKey {
    SeqKey {
        dvipa: Ipv4Addr::new(198, 18, 0, 100),
        protocol: Protocol::Esp,
        spi: Spi(spi),
    }
}

async fn start_server() -> (SocketAddr, Arc<CfService>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = CfService::new(CouplingFacility::new());
    let task = tokio::spawn(serve_cf(listener, Arc::clone(&service)));
    (addr, service, task)
}

/// Reads frames from a raw stream until `count` arrive (or EOF).
async fn read_frames(stream: &mut TcpStream, count: usize) -> Vec<(u32, CfResponse)> {
    let mut dec = FrameDecoder::new();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < count {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("CF answers")
            .unwrap();
        if n == 0 {
            break;
        }
        dec.push(&buf[..n]);
        while let Some(f) = dec.next_frame() {
            let f = f.unwrap();
            match f.body {
                Body::CfResponse(r) => got.push((f.request_id, r)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    got
}

/// Four images, 10 000 fetch-and-adds each of random size, 32 outstanding
/// per image over its one connection: the ranges never overlap and cover
/// the space from the start without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_ten_thousand_fetch_adds_each() {
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 10_000;
    let (addr, service, server) = start_server().await;
    let setup = CfClient::connect(addr).await.unwrap();
    setup.create_seq(key(0x1234), 1).await.unwrap();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let client = CfClient::connect(addr).await.unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(c as u64);
            let sizes: Vec<u32> = (0..PER_CLIENT).map(|_| rng.gen_range(1..=64)).collect();
            let ranges: Vec<(u64, u32)> = stream::iter(sizes)
                .map(|n| {
                    let client = client.clone();
                    async move { client.fetch_add(key(0x1234), n).await.unwrap() }
                })
                .buffer_unordered(32)
                .collect()
                .await;
            (ranges, client.counters())
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let (ranges, counters) = t.await.unwrap();
        assert_eq!(counters.responses, PER_CLIENT as u64);
        assert_eq!(counters.reconnects, 0);
        all.extend(ranges);
    }
    let elapsed = started.elapsed();
    assert_eq!(all.len(), CLIENTS * PER_CLIENT);
    all.sort_unstable();
    let mut next = 1u64;
    for (first, n) in &all {
        assert_eq!(*first, next, "overlap or gap at {first}");
        next = first + u64::from(*n);
    }
    let status = service.status();
    assert_eq!(status.cf.counters.numbers_handed_out, next - 1);
    assert_eq!(status.cf.sequences[0].next, Some(next));
    assert_eq!(status.server.malformed_frames, 0);
    eprintln!(
        "{} pipelined fetch_adds from {CLIENTS} clients in {elapsed:?}: {:.0}/s",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64()
    );

    // One outstanding request at a time: the round trip.
    let started = Instant::now();
    for _ in 0..2000 {
        setup.fetch_add(key(0x1234), 1).await.unwrap();
    }
    let rtt = started.elapsed() / 2000;
    eprintln!("sequential fetch_add round trip: {rtt:?}");
    server.abort();
}

/// A client pipelines many requests before reading: answers come in order.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order_over_duplex() {
    let service = CfService::new(CouplingFacility::new());
    let (client, server) = tokio::io::duplex(1024);
    let svc = Arc::clone(&service);
    let server = tokio::spawn(async move { serve_connection(server, &svc).await });
    let (mut read, mut write) = tokio::io::split(client);
    let writer = tokio::spawn(async move {
        let mut out = Vec::new();
        encode_cf_request(
            1,
            &CfRequest::CreateSeq {
                key: key(1),
                start: 100,
            },
            &mut out,
        )
        .unwrap();
        for id in 2..=500u32 {
            encode_cf_request(id, &CfRequest::FetchAdd { key: key(1), n: 2 }, &mut out).unwrap();
        }
        // Bigger than the pipe: the server must keep answering while we write.
        write.write_all(&out).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut bytes = Vec::new();
    read.read_to_end(&mut bytes).await.unwrap();
    writer.await.unwrap();
    assert!(server.await.unwrap().is_ok());
    let mut dec = FrameDecoder::new();
    dec.push(&bytes);
    let first = dec.next_frame().unwrap().unwrap();
    assert_eq!(first.request_id, 1);
    assert_eq!(first.body, Body::CfResponse(CfResponse::Done));
    for id in 2..=500u32 {
        let f = dec.next_frame().unwrap().unwrap();
        assert_eq!(f.request_id, id);
        assert_eq!(
            f.body,
            Body::CfResponse(CfResponse::SeqRange {
                first: 100 + 2 * u64::from(id - 2),
                n: 2
            })
        );
    }
    assert!(dec.next_frame().is_none());
    assert_eq!(service.status().server.frames_in, 500);
}

/// Bad bodies and wrong channels are answered with `Malformed` under their
/// request id and the connection goes on; a bad magic closes only that
/// connection; the server keeps serving.
#[tokio::test]
async fn malformed_frames_are_refused_and_the_server_survives() {
    let (addr, service, server) = start_server().await;
    let mut raw = TcpStream::connect(addr).await.unwrap();

    let mut out = Vec::new();
    // 1: a FetchAdd whose body is garbage.
    encode_cf_request(41, &CfRequest::FetchAdd { key: key(1), n: 1 }, &mut out).unwrap();
    out[16] = 0x55; // the body's variant index: no such variant
                    // 2: an XCF message sent to the CF.
    let mut xcf = Vec::new();
    encode_xcf(&XcfMessage::Heartbeat { seq: 1 }, &mut xcf).unwrap();
    xcf[8..12].copy_from_slice(&42u32.to_be_bytes());
    out.extend_from_slice(&xcf);
    // 3: a response sent to the CF.
    encode_cf_response(43, &CfResponse::Done, &mut out).unwrap();
    // 4: a good request, still answered.
    encode_cf_request(44, &CfRequest::Get { key: "k".into() }, &mut out).unwrap();
    raw.write_all(&out).await.unwrap();
    let got = read_frames(&mut raw, 4).await;
    assert_eq!(got.len(), 4);
    for (i, (id, resp)) in got.iter().take(3).enumerate() {
        assert_eq!(*id, 41 + i as u32);
        assert!(
            matches!(resp, CfResponse::Error(CfError::Malformed(_))),
            "{resp:?}"
        );
    }
    assert_eq!(got[3], (44, CfResponse::Value(None)));

    // Bad magic: the connection is closed, nothing is answered.
    raw.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf))
        .await
        .expect("the CF closes the connection")
        .unwrap_or(0);
    assert_eq!(n, 0);

    // An oversize length is refused from the header: closed too.
    let mut raw2 = TcpStream::connect(addr).await.unwrap();
    let mut frame = Vec::new();
    encode_cf_request(1, &CfRequest::Get { key: "k".into() }, &mut frame).unwrap();
    frame[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    raw2.write_all(&frame[..16]).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), raw2.read(&mut buf))
        .await
        .expect("the CF closes the connection")
        .unwrap_or(0);
    assert_eq!(n, 0);

    // The server still works.
    let client = CfClient::connect(addr).await.unwrap();
    client.put("k", b"v".to_vec()).await.unwrap();
    assert_eq!(client.get("k").await.unwrap(), Some(b"v".to_vec()));
    let st = service.status();
    assert_eq!(st.server.malformed_frames, 5);
    assert_eq!(st.server.connections_reset, 2);
    assert_eq!(st.cf.counters.errors.malformed, 3);
    server.abort();
}

#[tokio::test]
async fn duplex_connection_reports_why_it_was_reset() {
    let service = CfService::new(CouplingFacility::new());
    let (mut client, server) = tokio::io::duplex(256);
    client.write_all(&[0xff; 20]).await.unwrap();
    let result = serve_connection(server, &service).await;
    assert!(
        matches!(result, Err(CfConnError::Malformed(_))),
        "{result:?}"
    );
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

/// The typed helpers and their errors, end to end.
#[tokio::test]
async fn client_helpers() {
    let (addr, _service, server) = start_server().await;
    let cf = CfClient::connect(addr).await.unwrap();
    assert!(matches!(
        cf.fetch_add(key(5), 1).await,
        Err(CfClientError::Cf(CfError::UnknownSeq(_)))
    ));
    cf.create_seq(key(5), 1).await.unwrap();
    assert!(matches!(
        cf.create_seq(key(5), 1).await,
        Err(CfClientError::Cf(CfError::SeqExists(_)))
    ));
    assert!(matches!(
        cf.fetch_add(key(5), 0).await,
        Err(CfClientError::Cf(CfError::Malformed(_)))
    ));
    assert_eq!(cf.fetch_add(key(5), 3).await.unwrap(), (1, 3));
    cf.create_seq_limit(key(6), u64::MAX, u64::MAX)
        .await
        .unwrap();
    assert_eq!(cf.fetch_add(key(6), 1).await.unwrap(), (u64::MAX, 1));
    assert!(matches!(
        cf.fetch_add(key(6), 1).await,
        Err(CfClientError::Cf(CfError::SeqExhausted(_)))
    ));
    cf.delete_seq(key(5)).await.unwrap();
    cf.put("dct/a", vec![1]).await.unwrap();
    cf.put("dct/b", vec![2]).await.unwrap();
    cf.put("sa/a", vec![3]).await.unwrap();
    assert_eq!(cf.list("dct/").await.unwrap(), vec!["dct/a", "dct/b"]);
    cf.delete("dct/a").await.unwrap();
    assert_eq!(cf.get("dct/a").await.unwrap(), None);
    let c = cf.counters();
    assert_eq!(c.cf_errors, 4);
    assert_eq!(c.requests, c.responses);
    server.abort();
}

/// The CF restarts: the outstanding or next request fails with a clear
/// error, and once the CF is back the client reconnects by itself.
#[tokio::test]
async fn client_reconnects_after_the_cf_restarts() {
    let (addr, _service, server) = start_server().await;
    let cf = CfClient::connect_with(
        addr,
        CfClientConfig {
            request_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            queue: 16,
        },
    )
    .await
    .unwrap();
    cf.put("x", vec![1]).await.unwrap();
    server.abort();
    let _ = server.await;

    // Down: a clear error naming the CF, whichever way it is noticed.
    let err = cf.get("x").await.unwrap_err();
    assert!(
        matches!(
            err,
            CfClientError::ConnectionLost { .. } | CfClientError::Connect { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    let err = cf.get("x").await.unwrap_err();
    assert!(matches!(err, CfClientError::Connect { .. }), "{err:?}");

    // Back (a new, empty CF on the same address).
    let listener = TcpListener::bind(addr).await.unwrap();
    let service = CfService::new(CouplingFacility::new());
    let server = tokio::spawn(serve_cf(listener, Arc::clone(&service)));
    assert_eq!(cf.get("x").await.unwrap(), None);
    let c = cf.counters();
    assert_eq!(c.reconnects, 1);
    assert!(c.connect_failures >= 1);
    server.abort();
}

/// A CF that accepts but never answers: requests time out, the counters
/// say so, and a late answer is not mistaken for a newer request's.
#[tokio::test]
async fn requests_time_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let silent = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // Read the request, answer only after the client gave up.
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        let (req, _) = decode(&buf[..n]).unwrap();
        let _ = held_rx.await;
        let mut out = Vec::new();
        encode_cf_response(req.request_id, &CfResponse::Value(None), &mut out).unwrap();
        s.write_all(&out).await.unwrap();
        // Keep the connection open until the test ends.
        let _ = s.read(&mut buf).await;
    });
    let cf = CfClient::connect_with(
        addr,
        CfClientConfig {
            request_timeout: Duration::from_millis(200),
            ..CfClientConfig::default()
        },
    )
    .await
    .unwrap();
    let err = cf.get("x").await.unwrap_err();
    assert!(matches!(err, CfClientError::Timeout { .. }), "{err:?}");
    held_tx.send(()).unwrap();
    // The late answer arrives and is counted, not delivered.
    for _ in 0..50 {
        if cf.counters().late_responses == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = cf.counters();
    assert_eq!(c.timeouts, 1);
    assert_eq!(c.late_responses, 1);
    silent.abort();
}
