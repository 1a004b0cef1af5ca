//! XCF meshes on loopback: each image on its own 127.77.<test>.<n> address
//! (all of 127/8 is loopback on Linux), one port shared by all, as the
//! sysplex uses one XCF port on per-image XCF addresses. Timers are
//! shortened so the tests finish in seconds.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use plexnet::runtime::xcf::{XcfConfig, XcfMesh, XcfSendError, XcfStartError};
use plexnet::sysplex::xcf::codec::{encode_cf_request, encode_xcf, Body, FrameDecoder};
use plexnet::sysplex::xcf::{CfRequest, VipaEntry, XcfMessage};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

type Inbox = mpsc::Receiver<(String, XcfMessage)>;

fn addr(test: u8, n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, test, n)
}

fn images(test: u8, count: u8) -> Vec<(String, Ipv4Addr)> {
    (1..=count)
        .map(|n| (format!("MVS{n}"), addr(test, n)))
        .collect()
}

fn config(me: &str, test: u8, peers: &[(String, Ipv4Addr)], port: u16) -> XcfConfig {
    let my_addr = peers
        .iter()
        .find(|(n, _)| n == me)
        .map(|(_, a)| *a)
        .unwrap_or_else(|| addr(test, 200));
    let mut c = XcfConfig::new(me, my_addr, peers.to_vec(), port);
    c.heartbeat = Duration::from_millis(200);
    c.dead_after = Duration::from_millis(800);
    c.hello_timeout = Duration::from_millis(1000);
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(400);
    c
}

/// Starts a mesh for each of `names` on a random free port.
async fn start_all(
    test: u8,
    names: &[&str],
    peers: &[(String, Ipv4Addr)],
) -> (u16, Vec<(XcfMesh, Inbox)>) {
    'port: for _ in 0..20 {
        let port = rand::thread_rng().gen_range(20_000..60_000);
        let mut meshes = Vec::new();
        for name in names {
            match XcfMesh::start_with(config(name, test, peers, port)).await {
                Ok(m) => meshes.push(m),
                Err(XcfStartError::Bind { .. }) => continue 'port,
                Err(e) => panic!("{e}"),
            }
        }
        return (port, meshes);
    }
    panic!("no free port");
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(8);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn recv(inbox: &mut Inbox) -> (String, XcfMessage) {
    tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .expect("a message in time")
        .expect("mesh running")
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_images_connect_once_per_pair_and_exchange() {
    let peers = images(1, 3);
    let (_, mut meshes) = start_all(1, &["MVS1", "MVS2", "MVS3"], &peers).await;
    let expected = [
        set(&["MVS2", "MVS3"]),
        set(&["MVS1", "MVS3"]),
        set(&["MVS1", "MVS2"]),
    ];
    for (i, (mesh, _)) in meshes.iter().enumerate() {
        let want = expected[i].clone();
        wait_for("all links up", || *mesh.connected().borrow() == want).await;
    }

    let vipas = XcfMessage::VipaList {
        owner: "MVS1".into(),
        vipas: vec![VipaEntry {
            dvipa: Ipv4Addr::new(198, 18, 0, 100),
            ports: vec![80, 443],
        }],
    };
    meshes[0].0.send("MVS2", vipas.clone()).unwrap();
    let reg = XcfMessage::RegisterListener {
        dvipa: Ipv4Addr::new(198, 18, 0, 100),
        port: 80,
    };
    assert_eq!(meshes[2].0.broadcast(&reg), 2);
    assert_eq!(
        meshes[0].0.send("MVS9", reg.clone()),
        Err(XcfSendError::UnknownPeer("MVS9".into()))
    );

    let (from, msg) = recv(&mut meshes[1].1).await;
    let (from2, msg2) = recv(&mut meshes[1].1).await;
    let mut got = vec![(from, msg), (from2, msg2)];
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("MVS1".to_string(), vipas),
            ("MVS3".to_string(), reg.clone())
        ]
    );
    assert_eq!(recv(&mut meshes[0].1).await, ("MVS3".to_string(), reg));

    // Heartbeats flow both ways; each pair has had exactly one connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (mesh, inbox) in &meshes {
        let st = mesh.status();
        for (peer, c) in &st.peers {
            assert!(c.connected, "{} → {peer}", st.me);
            assert_eq!(c.sessions, 1, "{} → {peer}", st.me);
            assert_eq!(c.msgs_in.get("Hello"), None, "Hello is read at connect");
            assert!(c.msgs_in.get("Heartbeat").copied().unwrap_or(0) >= 1);
            assert!(c.msgs_out.get("Heartbeat").copied().unwrap_or(0) >= 1);
            assert_eq!(c.malformed, 0);
        }
        assert_eq!(st.refused, Default::default());
        assert!(inbox.is_empty(), "heartbeats are not delivered");
    }
    // MVS1 accepts nobody (it sorts first), MVS3 accepts both.
    assert_eq!(meshes[0].0.status().accepted, 0);
    assert_eq!(meshes[2].0.status().accepted, 2);
    let st = serde_json::to_value(meshes[0].0.status()).unwrap();
    assert_eq!(st["peers"]["MVS2"]["msgs_out"]["VipaList"], 1);
    assert_eq!(st["peers"]["MVS3"]["msgs_in"]["RegisterListener"], 1);
}

/// An image restarts: the others mark it down, keep what is sent to it
/// meanwhile, reconnect when it is back and deliver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_image_is_reconnected() {
    let peers = images(2, 3);
    let (port, mut meshes) = start_all(2, &["MVS1", "MVS2", "MVS3"], &peers).await;
    for (mesh, _) in &meshes {
        wait_for("all links up", || mesh.connected().borrow().len() == 2).await;
    }
    // MVS2 goes away.
    let (mvs2, inbox2) = meshes.remove(1);
    mvs2.shutdown();
    drop((mvs2, inbox2));
    let (mvs1, _) = &meshes[0];
    let (mvs3, _) = &meshes[1];
    wait_for("MVS2 down at MVS1", || !mvs1.is_connected("MVS2")).await;
    wait_for("MVS2 down at MVS3", || !mvs3.is_connected("MVS2")).await;
    let while_down = XcfMessage::SaDelete {
        dvipa: Ipv4Addr::new(198, 18, 0, 100),
        protocol: plexnet::ipsec::sa::Protocol::Esp,
        inbound_spi: plexnet::ipsec::sa::Spi(0x1001),
        outbound_spi: plexnet::ipsec::sa::Spi(0x2002),
    };
    mvs1.send("MVS2", while_down.clone()).unwrap();

    // MVS2 is back on the same address and port.
    let (mvs2, mut inbox2) = XcfMesh::start_with(config("MVS2", 2, &peers, port))
        .await
        .unwrap();
    wait_for("MVS2 back", || mvs2.connected().borrow().len() == 2).await;
    wait_for("MVS1 sees MVS2", || mvs1.is_connected("MVS2")).await;
    wait_for("MVS3 sees MVS2", || mvs3.is_connected("MVS2")).await;
    assert_eq!(recv(&mut inbox2).await, ("MVS1".to_string(), while_down));
    let c = &mvs1.status().peers["MVS2"];
    assert_eq!(c.sessions, 2);
    assert_eq!(c.reconnects, 1);
    assert!(c.last_error.is_some());
    let c = &mvs3.status().peers["MVS2"];
    assert_eq!(c.reconnects, 1);
    mvs2.send("MVS3", XcfMessage::Heartbeat { seq: 0 }).unwrap();
    assert!(mvs3.status().peers["MVS2"].connected);
}

/// Connects to `to` from `from`, says Hello as `image`, returns the stream.
async fn raw_hello(from: Ipv4Addr, to: SocketAddr, image: &str, announce: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let mut out = Vec::new();
    encode_xcf(
        &XcfMessage::Hello {
            image: image.into(),
            xcf_addr: announce,
        },
        &mut out,
    )
    .unwrap();
    stream.write_all(&out).await.unwrap();
    stream
}

/// Reads until EOF or `limit`; returns the decoded XCF messages.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<XcfMessage>, bool) {
    let mut dec = FrameDecoder::new();
    let mut msgs = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (msgs, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (msgs, true),
            Ok(Ok(n)) => {
                dec.push(&buf[..n]);
                while let Some(Ok(d)) = dec.next_frame() {
                    if let Body::Xcf(m) = d.body {
                        msgs.push(m);
                    }
                }
            }
        }
    }
}

/// Strangers, impostors, wrong directions and garbage are refused and
/// counted; the mesh goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intruders_are_refused() {
    let peers = images(3, 3);
    // Only MVS2 runs; MVS1 and MVS3 are played by the test.
    let (port, mut meshes) = start_all(3, &["MVS2"], &peers).await;
    let (mvs2, _inbox) = meshes.remove(0);
    let to = SocketAddr::new(addr(3, 2).into(), port);
    let stranger = addr(3, 9);

    let mut s = raw_hello(stranger, to, "MVS9", stranger).await;
    assert!(read_until_closed(&mut s, Duration::from_secs(3)).await.1);
    let mut s = raw_hello(stranger, to, "MVS1", addr(3, 1)).await;
    assert!(read_until_closed(&mut s, Duration::from_secs(3)).await.1);
    let mut s = raw_hello(addr(3, 1), to, "MVS1", stranger).await;
    assert!(read_until_closed(&mut s, Duration::from_secs(3)).await.1);
    // MVS3 sorts after MVS2: MVS2 connects to it, never accepts from it.
    let mut s = raw_hello(addr(3, 3), to, "MVS3", addr(3, 3)).await;
    assert!(read_until_closed(&mut s, Duration::from_secs(3)).await.1);
    // Not a frame at all.
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await.unwrap();
    assert!(read_until_closed(&mut s, Duration::from_secs(3)).await.1);
    // Says nothing.
    let mut s = TcpStream::connect(to).await.unwrap();
    assert!(read_until_closed(&mut s, Duration::from_secs(3)).await.1);

    let st = mvs2.status();
    assert_eq!(st.refused.unknown_image, 1);
    assert_eq!(st.refused.wrong_address, 2);
    assert_eq!(st.refused.wrong_direction, 1);
    assert_eq!(st.refused.malformed, 1);
    assert_eq!(st.refused.no_hello, 1);
    assert_eq!(st.accepted, 0);
    assert!(mvs2.connected().borrow().is_empty());
    // MVS2 keeps trying to reach MVS3, which is not there.
    wait_for("connect attempts", || {
        mvs2.status().peers["MVS3"].connect_failures >= 2
    })
    .await;
}

/// A real peer that misbehaves inside a session: bad frames are dropped
/// and counted, the session survives; a lost frame boundary resets it;
/// a peer that goes silent is marked down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_in_a_session() {
    let peers = images(4, 2);
    let (port, mut meshes) = start_all(4, &["MVS2"], &peers).await;
    let (mvs2, mut inbox) = meshes.remove(0);
    let to = SocketAddr::new(addr(4, 2).into(), port);

    let mut s = raw_hello(addr(4, 1), to, "MVS1", addr(4, 1)).await;
    wait_for("MVS1 up", || mvs2.is_connected("MVS1")).await;
    let mut out = Vec::new();
    // A body that does not decode.
    encode_xcf(&XcfMessage::Heartbeat { seq: 1 }, &mut out).unwrap();
    out[16] = 0x63;
    // A CF request on an XCF link.
    encode_cf_request(5, &CfRequest::Get { key: "k".into() }, &mut out).unwrap();
    // A second Hello.
    encode_xcf(
        &XcfMessage::Hello {
            image: "MVS1".into(),
            xcf_addr: addr(4, 1),
        },
        &mut out,
    )
    .unwrap();
    // Then a good message.
    let conn = XcfMessage::NewConn {
        dvipa: Ipv4Addr::new(198, 18, 0, 100),
        local_port: 80,
        peer: Ipv4Addr::new(198, 18, 1, 10),
        peer_port: 40000,
        protocol: 6,
    };
    encode_xcf(&conn, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    assert_eq!(recv(&mut inbox).await, ("MVS1".to_string(), conn));
    assert!(mvs2.is_connected("MVS1"));
    assert_eq!(mvs2.status().peers["MVS1"].malformed, 3);

    // Garbage where a header should be: reset.
    s.write_all(&[0u8; 32]).await.unwrap();
    let (msgs, closed) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(closed);
    assert!(matches!(msgs.first(), Some(XcfMessage::Hello { image, .. }) if image == "MVS2"));
    wait_for("MVS1 down", || !mvs2.is_connected("MVS1")).await;
    let c = &mvs2.status().peers["MVS1"];
    assert_eq!(c.resets, 1);
    assert_eq!(c.malformed, 4);

    // Back, then silent: marked down after dead_after (800 ms here).
    let mut s = raw_hello(addr(4, 1), to, "MVS1", addr(4, 1)).await;
    wait_for("MVS1 up again", || mvs2.is_connected("MVS1")).await;
    let started = Instant::now();
    let (msgs, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "a silent peer is cut off");
    let silent_for = started.elapsed();
    assert!(silent_for >= Duration::from_millis(700), "{silent_for:?}");
    assert!(
        msgs.iter()
            .any(|m| matches!(m, XcfMessage::Heartbeat { .. })),
        "it kept sending heartbeats meanwhile"
    );
    let c = &mvs2.status().peers["MVS1"];
    assert_eq!(c.silent, 1);
    assert_eq!(c.sessions, 2);
    assert!(!c.connected);
}

/// A peer that is down fills its queue; overflow is refused and counted,
/// and never blocks the caller.
#[tokio::test]
async fn full_queue_is_refused_not_blocking() {
    let peers = images(5, 2);
    let port = rand::thread_rng().gen_range(20_000..60_000);
    let mut c = config("MVS2", 5, &peers, port);
    c.queue = 4;
    let (mvs2, _inbox) = match XcfMesh::start_with(c).await {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let msg = XcfMessage::Heartbeat { seq: 9 };
    for _ in 0..4 {
        mvs2.send("MVS1", msg.clone()).unwrap();
    }
    assert_eq!(
        mvs2.send("MVS1", msg.clone()),
        Err(XcfSendError::QueueFull("MVS1".into()))
    );
    assert_eq!(mvs2.broadcast(&msg), 0);
    assert_eq!(mvs2.status().peers["MVS1"].queue_overflow, 2);
}

#[tokio::test]
async fn inconsistent_peer_lists_are_refused() {
    let me = addr(6, 1);
    let dup = vec![
        ("MVS2".to_string(), addr(6, 2)),
        ("MVS2".to_string(), addr(6, 3)),
    ];
    assert!(matches!(
        XcfMesh::start("MVS1", me, dup, 1).await,
        Err(XcfStartError::Config(_))
    ));
    let clash = vec![("MVS2".to_string(), me)];
    assert!(matches!(
        XcfMesh::start("MVS1", me, clash, 1).await,
        Err(XcfStartError::Config(_))
    ));
}

/// Many messages to one peer arrive complete and in order (the queue
/// refuses when full; the sender retries), and how fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_in_order() {
    const COUNT: u64 = 20_000;
    let peers = images(7, 2);
    let (_, mut meshes) = start_all(7, &["MVS1", "MVS2"], &peers).await;
    let (mvs2, mut inbox2) = meshes.pop().unwrap();
    let (mvs1, _inbox1) = meshes.pop().unwrap();
    wait_for("link up", || mvs1.is_connected("MVS2")).await;
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let mut full = 0u64;
        for i in 0..COUNT {
            let msg = XcfMessage::Lifesize {
                dvipa: Ipv4Addr::new(198, 18, 0, 100),
                protocol: plexnet::ipsec::sa::Protocol::Esp,
                spi: plexnet::ipsec::sa::Spi(0x1000),
                direction: plexnet::sysplex::xcf::Direction::Outbound,
                bytes: i,
                packets: 1,
                highest_seq: i,
            };
            while let Err(XcfSendError::QueueFull(_)) = mvs1.send("MVS2", msg.clone()) {
                full += 1;
                tokio::task::yield_now().await;
            }
        }
        (mvs1, full)
    });
    for i in 0..COUNT {
        match recv(&mut inbox2).await {
            (from, XcfMessage::Lifesize { bytes, .. }) => {
                assert_eq!(from, "MVS1");
                assert_eq!(bytes, i, "in order, none lost");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    let (mvs1, full) = sender.await.unwrap();
    assert_eq!(mvs1.status().peers["MVS2"].queue_overflow, full);
    assert_eq!(mvs2.status().peers["MVS1"].msgs_in["Lifesize"], COUNT);
    eprintln!(
        "{COUNT} XCF messages in {elapsed:?}: {:.0}/s",
        COUNT as f64 / elapsed.as_secs_f64()
    );
}
