//! The coupling facility over TCP: the server ([`serve_cf`]) that runs the
//! [`CouplingFacility`] state machine for every image at once, and the
//! client ([`CfClient`]) images use to take sequence numbers (Fig. 10 block
//! 162) and store takeover state.
//!
//! Frames are those of [`crate::wire::xcf`] (channel 2 requests, channel 3
//! responses, matched by request id). A connection's requests are answered
//! in order; a client may pipeline as many as it likes before reading.
//!
//! # Wiring into the CF daemon
//!
//! ```no_run
//! # async fn cf_daemon(addr: std::net::Ipv4Addr) -> anyhow::Result<()> {
//! use plexnet::runtime::cf::{serve_cf, CfService};
//! use plexnet::sysplex::cf::CouplingFacility;
//! use plexnet::sysplex::xcf::CF_PORT;
//!
//! let listener = tokio::net::TcpListener::bind((addr, CF_PORT)).await?;
//! let service = CfService::new(CouplingFacility::new());
//! tokio::spawn(serve_cf(listener, service.clone()));
//! // In the control socket's Status handler:
//! let status = serde_json::to_value(service.status())?;
//! # let _ = status; Ok(()) }
//! ```
//!
//! And in an image (connect once at start; the client reconnects by itself):
//!
//! ```no_run
//! # async fn image(cf_addr: std::net::Ipv4Addr, key: plexnet::sysplex::xcf::SeqKey) -> anyhow::Result<()> {
//! use plexnet::runtime::cf::CfClient;
//! let cf = CfClient::connect((cf_addr, plexnet::sysplex::xcf::CF_PORT).into()).await?;
//! let (first, n) = cf.fetch_add(key, 8).await?; // numbers first .. first + n
//! # let _ = (first, n); Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::sysplex::cf::{CfStatus, CouplingFacility};
use crate::sysplex::xcf::codec::{encode_cf_request, encode_cf_response, Body, FrameDecoder};
use crate::sysplex::xcf::{CfError, CfRequest, CfResponse, SeqKey};
use crate::wire::xcf::{EncodeError, Refused};

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// A writer flushes once it has gathered this much.
const WRITE_BATCH: usize = 64 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// Server

/// The coupling facility with its server counters, shared by every
/// connection.
#[derive(Debug, Default)]
pub struct CfService {
    cf: Mutex<CouplingFacility>,
    counters: ServerAtomics,
    /// The connector image of each peer address (its XCF address): what
    /// it creates in the CF is charged to its share. An address not
    /// listed is its own connector.
    names: HashMap<std::net::IpAddr, String>,
}

#[derive(Debug, Default)]
struct ServerAtomics {
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    connections_reset: AtomicU64,
    accept_errors: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    malformed_frames: AtomicU64,
}

/// The server's counters, for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CfServerCounters {
    pub connections_accepted: u64,
    pub connections_open: u64,
    /// Connections closed by the server because their stream was unusable.
    pub connections_reset: u64,
    pub accept_errors: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Frames refused (each also answered or followed by a reset).
    pub malformed_frames: u64,
}

/// What the CF daemon's `status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CfServiceStatus {
    pub server: CfServerCounters,
    pub cf: CfStatus,
}

impl CfService {
    /// Wraps a coupling facility for serving.
    pub fn new(cf: CouplingFacility) -> Arc<Self> {
        Self::with_names(cf, HashMap::new())
    }

    /// The same, naming each connector image by its peer address.
    pub fn with_names(cf: CouplingFacility, names: HashMap<std::net::IpAddr, String>) -> Arc<Self> {
        Arc::new(CfService {
            cf: Mutex::new(cf),
            counters: ServerAtomics::default(),
            names,
        })
    }

    /// The connector a peer address stands for.
    fn connector(&self, peer: SocketAddr) -> String {
        self.names
            .get(&peer.ip())
            .cloned()
            .unwrap_or_else(|| peer.ip().to_string())
    }

    /// Handles one request directly (in-process users, tests).
    pub fn handle(&self, req: CfRequest) -> CfResponse {
        lock(&self.cf).handle(req)
    }

    /// Server counters and the CF's own status.
    pub fn status(&self) -> CfServiceStatus {
        let c = &self.counters;
        CfServiceStatus {
            server: CfServerCounters {
                connections_accepted: c.connections_accepted.load(Relaxed),
                connections_open: c.connections_open.load(Relaxed),
                connections_reset: c.connections_reset.load(Relaxed),
                accept_errors: c.accept_errors.load(Relaxed),
                frames_in: c.frames_in.load(Relaxed),
                frames_out: c.frames_out.load(Relaxed),
                malformed_frames: c.malformed_frames.load(Relaxed),
            },
            cf: lock(&self.cf).status(),
        }
    }
}

/// Why the server closed one connection.
#[derive(Debug, thiserror::Error)]
pub enum CfConnError {
    /// Reading or writing the socket failed.
    #[error("{doing}: {source}")]
    Io {
        doing: &'static str,
        source: io::Error,
    },
    /// The peer sent bytes that lost the frame boundaries (bad magic,
    /// version or length); the connection is reset.
    #[error("unusable stream: {0}")]
    Malformed(Refused),
}

/// Accepts image connections on `listener` and serves each in its own task
/// until this future is dropped (dropping it closes every connection).
/// Accept errors (out of file descriptors, say) are counted and retried
/// after a pause; one connection's failure never affects the others.
pub async fn serve_cf(listener: TcpListener, service: Arc<CfService>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    service.counters.connections_accepted.fetch_add(1, Relaxed);
                    let service = Arc::clone(&service);
                    conns.spawn(async move {
                        let connector = service.connector(peer);
                        match serve_connection_as(stream, &service, &connector).await {
                            Ok(()) => tracing::debug!("CF connection from {peer} closed"),
                            Err(e) => tracing::warn!("CF connection from {peer} closed: {e}"),
                        }
                    });
                }
                Err(e) => {
                    service.counters.accept_errors.fetch_add(1, Relaxed);
                    tracing::warn!("CF accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Serves one connection (any byte stream: TCP, or `tokio::io::duplex` in
/// tests) until the peer closes it. Requests are answered in order; every
/// response to the requests found in one read goes out in one write.
pub async fn serve_connection<S>(stream: S, service: &CfService) -> Result<(), CfConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    serve_connection_as(stream, service, crate::sysplex::cf::LOCAL_CONNECTOR).await
}

/// [`serve_connection`] for the image `connector`, whose share of the CF
/// its requests use.
pub async fn serve_connection_as<S>(
    stream: S,
    service: &CfService,
    connector: &str,
) -> Result<(), CfConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let c = &service.counters;
    c.connections_open.fetch_add(1, Relaxed);
    let result = serve_frames(stream, service, connector).await;
    c.connections_open.fetch_sub(1, Relaxed);
    if matches!(result, Err(CfConnError::Malformed(_))) {
        c.connections_reset.fetch_add(1, Relaxed);
    }
    result
}

async fn serve_frames<S>(
    mut stream: S,
    service: &CfService,
    connector: &str,
) -> Result<(), CfConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let c = &service.counters;
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut out = Vec::with_capacity(WRITE_BATCH);
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|source| CfConnError::Io {
                doing: "reading requests",
                source,
            })?;
        if n == 0 {
            return Ok(());
        }
        decoder.push(&buf[..n]);
        let mut fatal = None;
        {
            let mut cf = lock(&service.cf);
            while let Some(frame) = decoder.next_frame() {
                c.frames_in.fetch_add(1, Relaxed);
                let (id, resp) = match frame {
                    Ok(d) => match d.body {
                        Body::CfRequest(req) => (d.request_id, cf.handle_from(connector, req)),
                        Body::Xcf(_) | Body::CfResponse(_) => {
                            let e = CfError::Malformed(format!(
                                "the CF takes requests, not {:?} frames",
                                d.channel()
                            ));
                            c.malformed_frames.fetch_add(1, Relaxed);
                            cf.count_error(&e);
                            (d.request_id, CfResponse::Error(e))
                        }
                    },
                    Err(refused) => {
                        c.malformed_frames.fetch_add(1, Relaxed);
                        match refused.request_id {
                            Some(id) => {
                                let e = CfError::Malformed(refused.error.to_string());
                                cf.count_error(&e);
                                (id, CfResponse::Error(e))
                            }
                            None => {
                                fatal = Some(refused);
                                break;
                            }
                        }
                    }
                };
                if let Err(e) = encode_cf_response(id, &resp, &mut out) {
                    // Only a List over a huge key space can exceed the frame.
                    let e = CfError::Malformed(format!("response not sent: {e}"));
                    cf.count_error(&e);
                    let _ = encode_cf_response(id, &CfResponse::Error(e), &mut out);
                }
                c.frames_out.fetch_add(1, Relaxed);
            }
        }
        if !out.is_empty() {
            stream
                .write_all(&out)
                .await
                .map_err(|source| CfConnError::Io {
                    doing: "writing responses",
                    source,
                })?;
            out.clear();
        }
        if let Some(refused) = fatal {
            let _ = stream.shutdown().await;
            return Err(CfConnError::Malformed(refused));
        }
    }
}

// ---------------------------------------------------------------------------
// Client

/// Why a CF request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CfClientError {
    /// No connection to the CF could be made; nothing was sent.
    #[error("connecting to the CF at {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    /// The connection broke with the request outstanding: the CF may or may
    /// not have executed it (a fetch-and-add may have used numbers; that
    /// leaves a gap, which receivers accept). The next request reconnects.
    #[error("connection to the CF at {addr} lost: {reason}")]
    ConnectionLost { addr: SocketAddr, reason: String },
    /// No answer in time (the connection stays; a late answer is dropped).
    #[error("no answer from the CF at {addr} within {after:?}")]
    Timeout { addr: SocketAddr, after: Duration },
    /// The request does not fit a frame.
    #[error("request not sent: {0}")]
    Encode(#[from] EncodeError),
    /// The CF answered with an error.
    #[error("the CF refused: {0}")]
    Cf(#[from] CfError),
    /// The CF answered with a response that does not fit the request.
    #[error("unexpected CF response {0:?}")]
    Unexpected(CfResponse),
}

/// Tuning of a [`CfClient`].
#[derive(Debug, Clone, Copy)]
pub struct CfClientConfig {
    /// How long a request waits for its answer.
    pub request_timeout: Duration,
    /// How long a (re)connection may take.
    pub connect_timeout: Duration,
    /// Requests queued for the writer before callers wait.
    pub queue: usize,
}

impl Default for CfClientConfig {
    fn default() -> Self {
        CfClientConfig {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            queue: 1024,
        }
    }
}

/// The client's counters, for an image's `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CfClientCounters {
    pub requests: u64,
    pub responses: u64,
    /// Responses that were `CfResponse::Error`.
    pub cf_errors: u64,
    pub timeouts: u64,
    /// Connections made after the first.
    pub reconnects: u64,
    pub connect_failures: u64,
    /// Requests failed because their connection broke.
    pub connections_lost: u64,
    /// Answers for requests that had already timed out.
    pub late_responses: u64,
    /// Frames from the CF that did not decode or were not responses.
    pub malformed_frames: u64,
}

#[derive(Debug, Default)]
struct ClientAtomics {
    requests: AtomicU64,
    responses: AtomicU64,
    cf_errors: AtomicU64,
    timeouts: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    connections_lost: AtomicU64,
    late_responses: AtomicU64,
    malformed_frames: AtomicU64,
}

/// A handle to the coupling facility: cheap to clone, usable from many
/// tasks at once. All clones share one TCP connection, on which any number
/// of requests may be outstanding (a writer task sends them, a reader task
/// hands each answer to its caller by request id). A broken connection
/// fails the requests it carried and is replaced on the next request.
#[derive(Debug, Clone)]
pub struct CfClient {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    addr: SocketAddr,
    config: CfClientConfig,
    next_id: AtomicU32,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    counters: Arc<ClientAtomics>,
}

/// One TCP connection: the writer's queue and the outstanding requests.
#[derive(Debug)]
struct Conn {
    tx: mpsc::Sender<Vec<u8>>,
    shared: Arc<ConnShared>,
    task: tokio::task::AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Default)]
struct ConnShared {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    /// Set once the connection is gone: why.
    closed: Option<String>,
    waiting: HashMap<u32, oneshot::Sender<CfResponse>>,
}

impl ConnShared {
    fn close(&self, reason: String) {
        let mut p = lock(&self.pending);
        p.closed.get_or_insert(reason);
        // Dropping the senders wakes every waiter with "lost".
        p.waiting.clear();
    }

    fn closed(&self) -> Option<String> {
        lock(&self.pending).closed.clone()
    }
}

impl CfClient {
    /// Connects to the CF at `addr` with the default configuration.
    pub async fn connect(addr: SocketAddr) -> Result<CfClient, CfClientError> {
        Self::connect_with(addr, CfClientConfig::default()).await
    }

    /// Connects to the CF at `addr`.
    pub async fn connect_with(
        addr: SocketAddr,
        config: CfClientConfig,
    ) -> Result<CfClient, CfClientError> {
        let client = CfClient {
            inner: Arc::new(ClientInner {
                addr,
                config,
                next_id: AtomicU32::new(1),
                conn: tokio::sync::Mutex::new(None),
                counters: Arc::default(),
            }),
        };
        client.connection().await?;
        Ok(client)
    }

    /// The CF's address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The counters.
    pub fn counters(&self) -> CfClientCounters {
        let c = &self.inner.counters;
        CfClientCounters {
            requests: c.requests.load(Relaxed),
            responses: c.responses.load(Relaxed),
            cf_errors: c.cf_errors.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            reconnects: c.connects.load(Relaxed).saturating_sub(1),
            connect_failures: c.connect_failures.load(Relaxed),
            connections_lost: c.connections_lost.load(Relaxed),
            late_responses: c.late_responses.load(Relaxed),
            malformed_frames: c.malformed_frames.load(Relaxed),
        }
    }

    /// The live connection, or a new one.
    async fn connection(&self) -> Result<Arc<Conn>, CfClientError> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.shared.closed().is_none() {
                return Ok(Arc::clone(conn));
            }
        }
        *slot = None;
        let addr = self.inner.addr;
        let c = &self.inner.counters;
        let stream =
            match tokio::time::timeout(self.inner.config.connect_timeout, TcpStream::connect(addr))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    c.connect_failures.fetch_add(1, Relaxed);
                    return Err(CfClientError::Connect {
                        addr,
                        reason: e.to_string(),
                    });
                }
                Err(_) => {
                    c.connect_failures.fetch_add(1, Relaxed);
                    return Err(CfClientError::Connect {
                        addr,
                        reason: format!("timed out after {:?}", self.inner.config.connect_timeout),
                    });
                }
            };
        let _ = stream.set_nodelay(true);
        c.connects.fetch_add(1, Relaxed);
        let (tx, rx) = mpsc::channel(self.inner.config.queue.max(1));
        let shared = Arc::new(ConnShared::default());
        let task = tokio::spawn(run_connection(
            stream,
            rx,
            Arc::clone(&shared),
            Arc::clone(&self.inner.counters),
        ))
        .abort_handle();
        let conn = Arc::new(Conn { tx, shared, task });
        *slot = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// Sends one request and waits for its answer. `CfResponse::Error` is
    /// a successful round trip here (see the typed helpers for `Err`).
    pub async fn request(&self, req: CfRequest) -> Result<CfResponse, CfClientError> {
        let c = &self.inner.counters;
        let addr = self.inner.addr;
        c.requests.fetch_add(1, Relaxed);
        let id = self.inner.next_id.fetch_add(1, Relaxed);
        let mut frame = Vec::new();
        encode_cf_request(id, &req, &mut frame)?;
        // A connection found closed before the request went out is replaced
        // once: nothing was sent on it, so nothing can be duplicated.
        let mut attempt = 0;
        let (conn, rx) = loop {
            let conn = self.connection().await?;
            let (tx, rx) = oneshot::channel();
            let closed = {
                let mut p = lock(&conn.shared.pending);
                if p.closed.is_none() {
                    p.waiting.insert(id, tx);
                }
                p.closed.clone()
            };
            match closed {
                None => break (conn, rx),
                Some(reason) if attempt > 0 => {
                    c.connections_lost.fetch_add(1, Relaxed);
                    return Err(CfClientError::ConnectionLost { addr, reason });
                }
                Some(_) => attempt += 1,
            }
        };
        if conn.tx.send(frame).await.is_err() {
            lock(&conn.shared.pending).waiting.remove(&id);
            c.connections_lost.fetch_add(1, Relaxed);
            return Err(CfClientError::ConnectionLost {
                addr,
                reason: conn
                    .shared
                    .closed()
                    .unwrap_or_else(|| "writer stopped".into()),
            });
        }
        let after = self.inner.config.request_timeout;
        match tokio::time::timeout(after, rx).await {
            Ok(Ok(resp)) => {
                c.responses.fetch_add(1, Relaxed);
                if matches!(resp, CfResponse::Error(_)) {
                    c.cf_errors.fetch_add(1, Relaxed);
                }
                Ok(resp)
            }
            Ok(Err(_)) => {
                c.connections_lost.fetch_add(1, Relaxed);
                Err(CfClientError::ConnectionLost {
                    addr,
                    reason: conn
                        .shared
                        .closed()
                        .unwrap_or_else(|| "connection closed".into()),
                })
            }
            Err(_) => {
                lock(&conn.shared.pending).waiting.remove(&id);
                c.timeouts.fetch_add(1, Relaxed);
                Err(CfClientError::Timeout { addr, after })
            }
        }
    }

    pub(super) async fn expect_done(&self, req: CfRequest) -> Result<(), CfClientError> {
        match self.request(req).await? {
            CfResponse::Done => Ok(()),
            CfResponse::Error(e) => Err(e.into()),
            other => Err(CfClientError::Unexpected(other)),
        }
    }

    /// Fig. 10 block 162 (`LISTKEYINC`): takes `n` sequence numbers of an
    /// SA; they are `first .. first + n`, returned as `(first, n)`.
    pub async fn fetch_add(&self, key: SeqKey, n: u32) -> Result<(u64, u32), CfClientError> {
        match self.request(CfRequest::FetchAdd { key, n }).await? {
            CfResponse::SeqRange { first, n: got } if got == n => Ok((first, got)),
            CfResponse::Error(e) => Err(e.into()),
            other => Err(CfClientError::Unexpected(other)),
        }
    }

    /// Fig. 6 block 116: creates the sequence structure of an outbound SA
    /// without ESN, `start` being the next number to use (1 for a new SA).
    pub async fn create_seq(&self, key: SeqKey, start: u64) -> Result<(), CfClientError> {
        self.expect_done(CfRequest::CreateSeq { key, start }).await
    }

    /// Like [`CfClient::create_seq`] with an explicit last number (`u64::MAX`
    /// for ESN).
    pub async fn create_seq_limit(
        &self,
        key: SeqKey,
        start: u64,
        last: u64,
    ) -> Result<(), CfClientError> {
        self.expect_done(CfRequest::CreateSeqLimit { key, start, last })
            .await
    }

    /// Removes a sequence structure (the SA is gone).
    pub async fn delete_seq(&self, key: SeqKey) -> Result<(), CfClientError> {
        self.expect_done(CfRequest::DeleteSeq { key }).await
    }

    /// Stores a value. Keys are text: a `sysplex::cf_key::CfKey`, or any
    /// string.
    pub async fn put(&self, key: impl fmt::Display, value: Vec<u8>) -> Result<(), CfClientError> {
        self.expect_done(CfRequest::Put {
            key: key.to_string(),
            value,
        })
        .await
    }

    /// Reads a value.
    pub async fn get(&self, key: impl fmt::Display) -> Result<Option<Vec<u8>>, CfClientError> {
        match self
            .request(CfRequest::Get {
                key: key.to_string(),
            })
            .await?
        {
            CfResponse::Value(v) => Ok(v),
            CfResponse::Error(e) => Err(e.into()),
            other => Err(CfClientError::Unexpected(other)),
        }
    }

    /// Removes a value (no error if absent).
    pub async fn delete(&self, key: impl fmt::Display) -> Result<(), CfClientError> {
        self.expect_done(CfRequest::Delete {
            key: key.to_string(),
        })
        .await
    }

    /// The keys starting with `prefix`, sorted.
    pub async fn list(&self, prefix: impl fmt::Display) -> Result<Vec<String>, CfClientError> {
        match self
            .request(CfRequest::List {
                prefix: prefix.to_string(),
            })
            .await?
        {
            CfResponse::Keys(k) => Ok(k),
            CfResponse::Error(e) => Err(e.into()),
            other => Err(CfClientError::Unexpected(other)),
        }
    }
}

/// Runs one client connection until either direction fails or every
/// handle to it is gone, then fails what is outstanding.
async fn run_connection(
    stream: TcpStream,
    rx: mpsc::Receiver<Vec<u8>>,
    shared: Arc<ConnShared>,
    counters: Arc<ClientAtomics>,
) {
    let (read, write) = stream.into_split();
    let reason = tokio::select! {
        r = client_reader(read, &shared, &counters) => r,
        r = client_writer(write, rx) => r,
    };
    tracing::debug!("CF client connection closed: {reason}");
    shared.close(reason);
}

async fn client_reader(
    mut read: tokio::net::tcp::OwnedReadHalf,
    shared: &ConnShared,
    counters: &ClientAtomics,
) -> String {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) => return "closed by the CF".into(),
            Ok(n) => n,
            Err(e) => return format!("reading responses: {e}"),
        };
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Ok(d) => match d.body {
                    Body::CfResponse(resp) => {
                        let waiter = lock(&shared.pending).waiting.remove(&d.request_id);
                        // No waiter, or one that stopped waiting: it timed out.
                        if waiter.is_none_or(|tx| tx.send(resp).is_err()) {
                            counters.late_responses.fetch_add(1, Relaxed);
                        }
                    }
                    _ => {
                        counters.malformed_frames.fetch_add(1, Relaxed);
                    }
                },
                Err(refused) => {
                    counters.malformed_frames.fetch_add(1, Relaxed);
                    if refused.is_fatal() {
                        return format!("unusable stream from the CF: {refused}");
                    }
                    // A response we cannot decode: tell its waiter now
                    // rather than let it time out.
                    if let Some(id) = refused.request_id {
                        if let Some(tx) = lock(&shared.pending).waiting.remove(&id) {
                            let _ = tx.send(CfResponse::Error(CfError::Malformed(format!(
                                "undecodable response: {}",
                                refused.error
                            ))));
                        }
                    }
                }
            }
        }
    }
}

async fn client_writer(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> String {
    let mut out = Vec::with_capacity(WRITE_BATCH);
    loop {
        let Some(first) = rx.recv().await else {
            return "client dropped".into();
        };
        out.extend_from_slice(&first);
        while out.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => out.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if let Err(e) = write.write_all(&out).await {
            return format!("writing requests: {e}");
        }
        out.clear();
    }
}
