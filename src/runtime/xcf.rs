//! The XCF mesh of one image: one TCP connection to every other image of
//! the sysplex, over which the typed [`XcfMessage`]s travel (VIPA lists,
//! Fig. 11 block 170; SA distribution, Fig. 6 block 118; NEWCONN, Fig. 11
//! block 174; lifesize reports, Fig. 9 block 158 and Fig. 10 block 168;
//! heartbeats) in the frames of [`crate::wire::xcf`].
//!
//! - Exactly one connection per pair: an image connects to every peer whose
//!   name sorts after its own, from its XCF address, and accepts from those
//!   whose name sorts before.
//! - Both ends say `Hello` first. An incoming connection is refused (and
//!   counted) if its Hello names an image not in the peer list, comes from
//!   another address than that image's XCF address, names the wrong XCF
//!   address, comes from a peer that should be accepting instead, or does
//!   not arrive in time.
//! - Heartbeats every second; a peer silent for three seconds is marked
//!   down and its connection closed. The connecting side reconnects with
//!   exponential backoff; a new accepted connection from a peer replaces
//!   the old one (the peer restarted).
//! - [`XcfMesh::send`] and [`XcfMesh::broadcast`] never block: each peer
//!   has a bounded queue that survives reconnections; overflow is refused
//!   and counted.
//! - A malformed frame is counted and dropped; a stream that lost its
//!   frame boundaries is reset. Never the process.
//!
//! Received messages (not Hello and Heartbeat, which the mesh consumes)
//! arrive on the receiver [`XcfMesh::start`] returns, with the sender's
//! name. The receiver must be drained: when it is full, reading from peers
//! waits (TCP backpressure), and a peer not read for `dead_after` is
//! marked down.
//!
//! # Wiring into an image daemon
//!
//! ```no_run
//! # async fn image(topo_images: Vec<(String, std::net::Ipv4Addr)>) -> anyhow::Result<()> {
//! use plexnet::runtime::xcf::XcfMesh;
//! use plexnet::sysplex::xcf::{XcfMessage, XCF_PORT};
//! // `topo_images`: every image's name and XCF address (this one included;
//! // the mesh skips itself).
//! let me = "MVS1";
//! let my_addr = topo_images.iter().find(|(n, _)| n == me).map(|(_, a)| *a).unwrap();
//! let (mesh, mut incoming) = XcfMesh::start(me, my_addr, topo_images, XCF_PORT).await?;
//! tokio::spawn(async move {
//!     while let Some((peer, msg)) = incoming.recv().await {
//!         // feed the routing/target stack state machine
//!         let _ = (peer, msg);
//!     }
//! });
//! mesh.broadcast(&XcfMessage::VipaList { owner: me.into(), vipas: vec![] });
//! let status = serde_json::to_value(mesh.status())?; // for `plexnet status`
//! # let _ = status; Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::sysplex::xcf::codec::{encode_xcf, Body, FrameDecoder};
use crate::sysplex::xcf::XcfMessage;
use crate::wire::xcf::{FrameBody, FrameError};

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// A writer flushes once it has gathered this much.
const WRITE_BATCH: usize = 64 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a mesh runs. [`XcfConfig::new`] gives the defaults of the module
/// documentation; tests shorten the timers.
#[derive(Debug, Clone)]
pub struct XcfConfig {
    /// This image's name.
    pub me: String,
    /// This image's XCF address: it listens there and connects from there.
    pub my_addr: Ipv4Addr,
    /// The other images (an entry named `me` is skipped).
    pub peers: Vec<(String, Ipv4Addr)>,
    /// The TCP port every image listens on (`XCF_PORT` in the sysplex).
    pub port: u16,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// A peer silent this long is marked down.
    pub dead_after: Duration,
    /// How long a new connection may take to say Hello (and to connect).
    pub hello_timeout: Duration,
    /// First reconnection delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Messages queued per peer.
    pub queue: usize,
    /// Messages queued for the application.
    pub inbound_queue: usize,
    /// The longest message body accepted from a peer (`[limits]
    /// xcf_max_message_bytes`); a longer one resets the session and is
    /// counted (`too_long`).
    pub max_message: usize,
}

impl XcfConfig {
    /// The defaults: heartbeat 1 s, down after 3 s, Hello within 3 s,
    /// backoff 100 ms to 2 s, queues of 1024 per peer and 4096 inbound.
    pub fn new(
        me: &str,
        my_addr: Ipv4Addr,
        peers: Vec<(String, Ipv4Addr)>,
        port: u16,
    ) -> XcfConfig {
        XcfConfig {
            me: me.to_string(),
            my_addr,
            peers,
            port,
            heartbeat: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
            hello_timeout: Duration::from_secs(3),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            queue: 1024,
            inbound_queue: 4096,
            max_message: crate::wire::xcf::MAX_BODY_LEN,
        }
    }
}

/// Why a mesh did not start.
#[derive(Debug, thiserror::Error)]
pub enum XcfStartError {
    /// The peer list is inconsistent.
    #[error("XCF configuration: {0}")]
    Config(String),
    /// The XCF listener could not be bound.
    #[error("binding the XCF listener on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// Why [`XcfMesh::send`] did not queue a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XcfSendError {
    #[error("no XCF peer named {0}")]
    UnknownPeer(String),
    /// The peer's queue is full (it is down or slow); the message is dropped.
    #[error("XCF queue to {0} is full")]
    QueueFull(String),
}

/// One peer's counters, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerCounters {
    pub addr: Option<Ipv4Addr>,
    pub connected: bool,
    /// Connections established (both Hellos exchanged).
    pub sessions: u64,
    /// Sessions after the first.
    pub reconnects: u64,
    pub connect_failures: u64,
    /// Messages received, by type name (Hello and Heartbeat included).
    pub msgs_in: BTreeMap<&'static str, u64>,
    /// Messages sent, by type name.
    pub msgs_out: BTreeMap<&'static str, u64>,
    /// Frames refused (bad body, wrong channel, Hello mid-session, ...).
    pub malformed: u64,
    /// Connections reset because the stream lost its frame boundaries.
    pub resets: u64,
    /// Of those, frames whose body exceeded `max_message` (also counted
    /// as malformed and as a reset).
    pub too_long: u64,
    /// Times the peer was marked down for silence.
    pub silent: u64,
    /// Messages refused because the queue was full.
    pub queue_overflow: u64,
    /// Messages that could not be framed (over the size limit).
    pub encode_errors: u64,
    /// Messages received after the application dropped its receiver.
    pub inbound_dropped: u64,
    /// Why the last connection ended or failed.
    pub last_error: Option<String>,
}

/// Incoming connections refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefusedCounters {
    /// Hello from an image not in the peer list.
    pub unknown_image: u64,
    /// Source address or announced XCF address is not the image's.
    pub wrong_address: u64,
    /// The image should accept from us, not connect to us.
    pub wrong_direction: u64,
    /// No Hello in time, or the first frame was not a Hello.
    pub no_hello: u64,
    /// The first bytes were not a frame.
    pub malformed: u64,
    /// The peer's slot was busy taking another new connection.
    pub busy: u64,
}

/// The mesh's state, for `plexnet status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XcfStatus {
    pub me: String,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub accepted: u64,
    pub refused: RefusedCounters,
    pub peers: BTreeMap<String, PeerCounters>,
}

/// A connection that said Hello, with what was read after the Hello.
#[derive(Debug)]
struct Established {
    stream: TcpStream,
    decoder: FrameDecoder,
}

#[derive(Debug)]
struct PeerSlot {
    addr: Ipv4Addr,
    out: mpsc::Sender<XcfMessage>,
    incoming: mpsc::Sender<Established>,
    counters: Mutex<PeerCounters>,
}

#[derive(Debug)]
struct Shared {
    config: XcfConfig,
    peers: BTreeMap<String, PeerSlot>,
    accepted: Mutex<u64>,
    refused: Mutex<RefusedCounters>,
    connected: watch::Sender<BTreeSet<String>>,
}

impl Shared {
    fn peer(&self, name: &str) -> &PeerSlot {
        // Drivers exist only for configured peers.
        &self.peers[name]
    }

    fn counters(&self, name: &str) -> MutexGuard<'_, PeerCounters> {
        lock(&self.peer(name).counters)
    }

    fn set_connected(&self, name: &str, up: bool) {
        self.counters(name).connected = up;
        self.connected.send_modify(|set| {
            if up {
                set.insert(name.to_string());
            } else {
                set.remove(name);
            }
        });
    }
}

/// Aborts the mesh's tasks when the last handle goes.
#[derive(Debug)]
struct Tasks(Mutex<JoinSet<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        lock(&self.0).abort_all();
    }
}

/// A handle to a running mesh: cheap to clone; the mesh stops when the
/// last handle is dropped or [`XcfMesh::shutdown`] is called.
#[derive(Debug, Clone)]
pub struct XcfMesh {
    shared: Arc<Shared>,
    tasks: Arc<Tasks>,
}

impl XcfMesh {
    /// Starts the mesh of image `me` with the default timers: listens on
    /// `my_addr:port`, connects to the peers that sort after `me`.
    pub async fn start(
        me: &str,
        my_addr: Ipv4Addr,
        peers: Vec<(String, Ipv4Addr)>,
        port: u16,
    ) -> Result<(XcfMesh, mpsc::Receiver<(String, XcfMessage)>), XcfStartError> {
        Self::start_with(XcfConfig::new(me, my_addr, peers, port)).await
    }

    /// Starts a mesh with explicit configuration.
    pub async fn start_with(
        mut config: XcfConfig,
    ) -> Result<(XcfMesh, mpsc::Receiver<(String, XcfMessage)>), XcfStartError> {
        config.peers.retain(|(name, _)| *name != config.me);
        let mut names = BTreeSet::new();
        for (name, addr) in &config.peers {
            if name.is_empty() || !names.insert(name.clone()) {
                return Err(XcfStartError::Config(format!(
                    "peer name {name:?} is empty or repeated"
                )));
            }
            if *addr == config.my_addr {
                return Err(XcfStartError::Config(format!(
                    "peer {name} has this image's XCF address {addr}"
                )));
            }
        }
        let listen = SocketAddr::new(IpAddr::V4(config.my_addr), config.port);
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| XcfStartError::Bind {
                addr: listen,
                source,
            })?;
        let (app_tx, app_rx) = mpsc::channel(config.inbound_queue.max(1));
        let mut slots = BTreeMap::new();
        let mut receivers = Vec::new();
        for (name, addr) in &config.peers {
            let (out, out_rx) = mpsc::channel(config.queue.max(1));
            let (incoming, incoming_rx) = mpsc::channel(2);
            slots.insert(
                name.clone(),
                PeerSlot {
                    addr: *addr,
                    out,
                    incoming,
                    counters: Mutex::new(PeerCounters {
                        addr: Some(*addr),
                        ..PeerCounters::default()
                    }),
                },
            );
            receivers.push((name.clone(), out_rx, incoming_rx));
        }
        let shared = Arc::new(Shared {
            config,
            peers: slots,
            accepted: Mutex::new(0),
            refused: Mutex::new(RefusedCounters::default()),
            connected: watch::Sender::new(BTreeSet::new()),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, Arc::clone(&shared)));
        for (name, out_rx, incoming_rx) in receivers {
            tasks.spawn(drive_peer(
                Arc::clone(&shared),
                name,
                out_rx,
                incoming_rx,
                app_tx.clone(),
            ));
        }
        Ok((
            XcfMesh {
                shared,
                tasks: Arc::new(Tasks(Mutex::new(tasks))),
            },
            app_rx,
        ))
    }

    /// Queues `msg` for `peer` without waiting. Messages queued while the
    /// peer is down go out when it is back.
    pub fn send(&self, peer: &str, msg: XcfMessage) -> Result<(), XcfSendError> {
        let slot = self
            .shared
            .peers
            .get(peer)
            .ok_or_else(|| XcfSendError::UnknownPeer(peer.to_string()))?;
        slot.out.try_send(msg).map_err(|_| {
            lock(&slot.counters).queue_overflow += 1;
            XcfSendError::QueueFull(peer.to_string())
        })
    }

    /// Queues `msg` for every peer; returns how many queues took it (the
    /// others overflowed, which their counters show).
    pub fn broadcast(&self, msg: &XcfMessage) -> usize {
        self.shared
            .peers
            .keys()
            .filter(|peer| self.send(peer, msg.clone()).is_ok())
            .count()
    }

    /// The peers, sorted.
    pub fn peers(&self) -> Vec<String> {
        self.shared.peers.keys().cloned().collect()
    }

    /// Whether `peer` is connected now.
    pub fn is_connected(&self, peer: &str) -> bool {
        self.shared.connected.borrow().contains(peer)
    }

    /// The set of connected peers, updated as they come and go (for
    /// takeover: a routing stack's peer going down).
    pub fn connected(&self) -> watch::Receiver<BTreeSet<String>> {
        self.shared.connected.subscribe()
    }

    /// Counters of the mesh and of every peer.
    pub fn status(&self) -> XcfStatus {
        let s = &self.shared;
        XcfStatus {
            me: s.config.me.clone(),
            addr: s.config.my_addr,
            port: s.config.port,
            accepted: *lock(&s.accepted),
            refused: *lock(&s.refused),
            peers: s
                .peers
                .iter()
                .map(|(name, slot)| (name.clone(), lock(&slot.counters).clone()))
                .collect(),
        }
    }

    /// Stops the mesh: closes the listener and every connection.
    pub fn shutdown(&self) {
        lock(&self.tasks.0).abort_all();
    }
}

// ---------------------------------------------------------------------------
// Accepting

enum Refusal {
    UnknownImage,
    WrongAddress,
    WrongDirection,
    NoHello,
    Malformed,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    let shared = Arc::clone(&shared);
                    handshakes.spawn(async move { handshake_incoming(stream, from, &shared).await });
                }
                Err(e) => {
                    tracing::warn!("XCF accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
        }
    }
}

async fn handshake_incoming(mut stream: TcpStream, from: SocketAddr, shared: &Shared) {
    let config = &shared.config;
    let result = tokio::time::timeout(
        config.hello_timeout,
        read_hello(&mut stream, config.max_message),
    )
    .await;
    let refusal = match result {
        Err(_) => Err((Refusal::NoHello, "no Hello in time".to_string())),
        Ok(Err(r)) => Err(r),
        Ok(Ok((image, xcf_addr, decoder))) => match shared.peers.get(&image) {
            None => Err((Refusal::UnknownImage, format!("unknown image {image:?}"))),
            Some(slot) if from.ip() != IpAddr::V4(slot.addr) || xcf_addr != slot.addr => Err((
                Refusal::WrongAddress,
                format!(
                    "{image} is at {}, not {} (announced {xcf_addr})",
                    slot.addr,
                    from.ip()
                ),
            )),
            Some(_) if image > config.me => Err((
                Refusal::WrongDirection,
                format!("{image} sorts after {}: we connect to it", config.me),
            )),
            Some(slot) => Ok((image, slot, decoder)),
        },
    };
    match refusal {
        Err((kind, why)) => {
            let mut r = lock(&shared.refused);
            match kind {
                Refusal::UnknownImage => r.unknown_image += 1,
                Refusal::WrongAddress => r.wrong_address += 1,
                Refusal::WrongDirection => r.wrong_direction += 1,
                Refusal::NoHello => r.no_hello += 1,
                Refusal::Malformed => r.malformed += 1,
            }
            drop(r);
            tracing::warn!("XCF connection from {from} refused: {why}");
        }
        Ok((image, slot, decoder)) => {
            if let Err(e) = write_hello(&mut stream, config).await {
                lock(&slot.counters).last_error = Some(format!("answering Hello: {e}"));
                return;
            }
            *lock(&shared.accepted) += 1;
            if slot
                .incoming
                .try_send(Established { stream, decoder })
                .is_err()
            {
                lock(&shared.refused).busy += 1;
                tracing::warn!("XCF connection from {image} dropped: slot busy");
            }
        }
    }
}

/// Reads frames until the first one, which must be a Hello.
async fn read_hello(
    stream: &mut TcpStream,
    max_message: usize,
) -> Result<(String, Ipv4Addr, FrameDecoder), (Refusal, String)> {
    let mut decoder = FrameDecoder::with_max_body(max_message);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| (Refusal::NoHello, format!("reading Hello: {e}")))?;
        if n == 0 {
            return Err((Refusal::NoHello, "closed before Hello".into()));
        }
        decoder.push(&buf[..n]);
        match decoder.next_frame() {
            None => continue,
            Some(Ok(d)) => match d.body {
                Body::Xcf(XcfMessage::Hello { image, xcf_addr }) => {
                    return Ok((image, xcf_addr, decoder))
                }
                other => {
                    return Err((
                        Refusal::NoHello,
                        format!("first frame is not a Hello: {other:?}"),
                    ))
                }
            },
            Some(Err(refused)) => return Err((Refusal::Malformed, refused.to_string())),
        }
    }
}

async fn write_hello(stream: &mut TcpStream, config: &XcfConfig) -> io::Result<()> {
    let mut out = Vec::new();
    encode_xcf(
        &XcfMessage::Hello {
            image: config.me.clone(),
            xcf_addr: config.my_addr,
        },
        &mut out,
    )
    .map_err(io::Error::other)?;
    stream.write_all(&out).await
}

// ---------------------------------------------------------------------------
// Connecting

/// Connects to `name` from our XCF address, exchanges Hellos.
async fn connect_peer(shared: &Shared, name: &str) -> Result<Established, String> {
    let config = &shared.config;
    let slot = shared.peer(name);
    let to = SocketAddr::new(IpAddr::V4(slot.addr), config.port);
    let attempt = async {
        let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        socket
            .bind(SocketAddr::new(IpAddr::V4(config.my_addr), 0))
            .map_err(|e| format!("binding {}: {e}", config.my_addr))?;
        let mut stream = socket
            .connect(to)
            .await
            .map_err(|e| format!("connecting to {to}: {e}"))?;
        write_hello(&mut stream, config)
            .await
            .map_err(|e| format!("sending Hello to {to}: {e}"))?;
        let (image, xcf_addr, decoder) = read_hello(&mut stream, config.max_message)
            .await
            .map_err(|(_, why)| format!("{to}: {why}"))?;
        if image != name || xcf_addr != slot.addr {
            return Err(format!(
                "{to} answered as {image} at {xcf_addr}, expected {name} at {}",
                slot.addr
            ));
        }
        Ok(Established { stream, decoder })
    };
    tokio::time::timeout(config.hello_timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no Hello from {to} in time")))
}

// ---------------------------------------------------------------------------
// Sessions

/// How a session ended.
enum SessionEnd {
    /// The connection is gone (why).
    Closed(String),
    /// The peer connected again; carry on with the new connection.
    Replaced(Established),
}

/// Runs everything about one peer for the life of the mesh.
async fn drive_peer(
    shared: Arc<Shared>,
    name: String,
    mut out_rx: mpsc::Receiver<XcfMessage>,
    mut incoming_rx: mpsc::Receiver<Established>,
    app_tx: mpsc::Sender<(String, XcfMessage)>,
) {
    let we_connect = shared.config.me < name;
    let mut backoff = shared.config.backoff_min;
    let mut next: Option<Established> = None;
    loop {
        let est = match next.take() {
            Some(est) => est,
            None if we_connect => match connect_peer(&shared, &name).await {
                Ok(est) => {
                    backoff = shared.config.backoff_min;
                    est
                }
                Err(why) => {
                    {
                        let mut c = shared.counters(&name);
                        c.connect_failures += 1;
                        c.last_error = Some(why);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(shared.config.backoff_max);
                    continue;
                }
            },
            None => match incoming_rx.recv().await {
                Some(est) => est,
                None => return,
            },
        };
        let _ = est.stream.set_nodelay(true);
        {
            let mut c = shared.counters(&name);
            c.sessions += 1;
            c.reconnects = c.sessions - 1;
        }
        shared.set_connected(&name, true);
        tracing::info!("XCF link to {name} up");
        let end = run_session(&shared, &name, est, &mut out_rx, &mut incoming_rx, &app_tx).await;
        shared.set_connected(&name, false);
        match end {
            SessionEnd::Closed(why) => {
                tracing::warn!("XCF link to {name} down: {why}");
                shared.counters(&name).last_error = Some(why);
                if we_connect {
                    tokio::time::sleep(backoff).await;
                }
            }
            SessionEnd::Replaced(est) => {
                tracing::info!("XCF link to {name} replaced by a new connection");
                shared.counters(&name).last_error = Some("replaced by a new connection".into());
                next = Some(est);
            }
        }
    }
}

async fn run_session(
    shared: &Shared,
    name: &str,
    est: Established,
    out_rx: &mut mpsc::Receiver<XcfMessage>,
    incoming_rx: &mut mpsc::Receiver<Established>,
    app_tx: &mpsc::Sender<(String, XcfMessage)>,
) -> SessionEnd {
    let (read, write) = est.stream.into_split();
    tokio::select! {
        why = session_reader(shared, name, read, est.decoder, app_tx) => SessionEnd::Closed(why),
        why = session_writer(shared, name, write, out_rx) => SessionEnd::Closed(why),
        Some(new) = incoming_rx.recv() => SessionEnd::Replaced(new),
    }
}

async fn session_reader(
    shared: &Shared,
    name: &str,
    mut read: OwnedReadHalf,
    mut decoder: FrameDecoder,
    app_tx: &mpsc::Sender<(String, XcfMessage)>,
) -> String {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        // Frames already buffered with the Hello come first.
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Ok(d) => match d.body {
                    Body::Xcf(msg) => {
                        let kind = msg.type_name();
                        *shared.counters(name).msgs_in.entry(kind).or_default() += 1;
                        match msg {
                            XcfMessage::Heartbeat { .. } => {}
                            XcfMessage::Hello { .. } => shared.counters(name).malformed += 1,
                            msg => {
                                if app_tx.send((name.to_string(), msg)).await.is_err() {
                                    shared.counters(name).inbound_dropped += 1;
                                }
                            }
                        }
                    }
                    Body::CfRequest(_) | Body::CfResponse(_) => {
                        shared.counters(name).malformed += 1;
                    }
                },
                Err(refused) => {
                    let mut c = shared.counters(name);
                    c.malformed += 1;
                    if refused.is_fatal() {
                        c.resets += 1;
                        if matches!(refused.error, FrameError::TooLong { .. }) {
                            c.too_long += 1;
                        }
                        return format!("reset: {refused}");
                    }
                    tracing::warn!("XCF frame from {name} dropped: {refused}");
                }
            }
        }
        match tokio::time::timeout(shared.config.dead_after, read.read(&mut buf)).await {
            Err(_) => {
                shared.counters(name).silent += 1;
                return format!("silent for {:?}", shared.config.dead_after);
            }
            Ok(Ok(0)) => return "closed by the peer".into(),
            Ok(Ok(n)) => decoder.push(&buf[..n]),
            Ok(Err(e)) => return format!("reading: {e}"),
        }
    }
}

async fn session_writer(
    shared: &Shared,
    name: &str,
    mut write: OwnedWriteHalf,
    out_rx: &mut mpsc::Receiver<XcfMessage>,
) -> String {
    let mut heartbeat = tokio::time::interval(shared.config.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    let mut out = Vec::with_capacity(WRITE_BATCH);
    loop {
        let first = tokio::select! {
            msg = out_rx.recv() => match msg {
                Some(msg) => msg,
                None => return "mesh stopped".into(),
            },
            _ = heartbeat.tick() => {
                seq += 1;
                XcfMessage::Heartbeat { seq }
            }
        };
        let mut msg = Some(first);
        while let Some(m) = msg.take() {
            if encode_xcf(&m, &mut out).is_ok() {
                *shared
                    .counters(name)
                    .msgs_out
                    .entry(m.type_name())
                    .or_default() += 1;
            } else {
                shared.counters(name).encode_errors += 1;
            }
            if out.len() < WRITE_BATCH {
                msg = out_rx.try_recv().ok();
            }
        }
        if let Err(e) = write.write_all(&out).await {
            return format!("writing: {e}");
        }
        out.clear();
    }
}
