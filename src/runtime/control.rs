//! The control socket of a daemon: one JSON request per line, one JSON reply
//! per line, over a Unix socket in the run directory.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Requests a daemon answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Role, readiness, owned DVIPAs, counters.
    Status,
    /// A z/OS-style NETSTAT report.
    Netstat { report: super::display::Report },
    /// Owned and shadow SAs with counters, and Wireshark key lines.
    Ipsec,
}

/// The answer of a daemon to a request it does not serve.
pub fn not_served(node: &str, req: &Request) -> serde_json::Value {
    serde_json::json!({ "error": format!("{node} does not answer {req:?}") })
}

/// Sends one request and waits for its reply (blocking; for the CLI).
pub fn query(socket: &Path, request: &Request, timeout: Duration) -> Result<serde_json::Value> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .with_context(|| format!("reading the reply from {}", socket.display()))?;
    serde_json::from_str(&reply)
        .with_context(|| format!("malformed reply from {}", socket.display()))
}

/// Answers requests on `socket` with `handler` until the task is dropped.
/// A malformed request gets `{"error": ...}`; the connection stays usable.
pub async fn serve<F>(socket: &Path, handler: F) -> Result<()>
where
    F: Fn(Request) -> serde_json::Value + Send + Sync + 'static,
{
    let _ = std::fs::remove_file(socket);
    let listener = tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("binding the control socket {}", socket.display()))?;
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply = match serde_json::from_str::<Request>(&line) {
                        Ok(req) => handler(req),
                        Err(e) => serde_json::json!({ "error": format!("malformed request: {e}") }),
                    };
                    let mut out = reply.to_string().into_bytes();
                    out.push(b'\n');
                    if write.write_all(&out).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(())
}
