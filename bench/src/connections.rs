//! Many connections at once (issue 16): 10,000 raw TCP clients, 500 handshakes in flight,
//! each waiting for INFO, then sending CONNECT + PING and waiting for PONG; all of them stay
//! open until the last is served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::scenarios::{Samples, Sizes};
use crate::server::Server;
use crate::Res;

/// How long a connection may wait for INFO (and then for PONG) before it counts as never
/// served. Generous on purpose: a slow answer is a sample, no answer is a failure.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// Why one connection was not served.
pub(crate) enum Unserved {
    Connect(std::io::Error),
    NoInfo,
    NoPong,
    Io(std::io::Error),
    Closed,
}

impl std::fmt::Display for Unserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unserved::Connect(e) => write!(f, "connect failed: {e}"),
            Unserved::NoInfo => write!(f, "no INFO within {ANSWER_WITHIN:?}"),
            Unserved::NoPong => write!(f, "no PONG within {ANSWER_WITHIN:?}"),
            Unserved::Io(e) => write!(f, "i/o error: {e}"),
            Unserved::Closed => write!(f, "closed by the server"),
        }
    }
}

/// Reads until `buf` holds `needle`; `false` when the peer closes first.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, needle: &[u8]) -> std::io::Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        if buf.windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One client's handshake; returns the open stream so the caller keeps it connected.
pub(crate) async fn handshake(addr: &str) -> Result<TcpStream, Unserved> {
    let mut stream = TcpStream::connect(addr).await.map_err(Unserved::Connect)?;
    let mut buf = Vec::with_capacity(1024);
    match tokio::time::timeout(ANSWER_WITHIN, read_until(&mut stream, &mut buf, b"\r\n")).await {
        Err(_) => return Err(Unserved::NoInfo),
        Ok(Err(e)) => return Err(Unserved::Io(e)),
        Ok(Ok(false)) => return Err(Unserved::Closed),
        Ok(Ok(true)) if !buf.starts_with(b"INFO ") => return Err(Unserved::NoInfo),
        Ok(Ok(true)) => {}
    }
    buf.clear();
    stream
        .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\n")
        .await
        .map_err(Unserved::Io)?;
    match tokio::time::timeout(ANSWER_WITHIN, read_until(&mut stream, &mut buf, b"PONG\r\n")).await {
        Err(_) => Err(Unserved::NoPong),
        Ok(Err(e)) => Err(Unserved::Io(e)),
        Ok(Ok(false)) => Err(Unserved::Closed),
        Ok(Ok(true)) => Ok(stream),
    }
}

/// `sz.conns` connections to a fresh server of `server`'s kind with `sz.conns_inflight`
/// handshakes in flight: the time until every one has its PONG, and the server's RSS growth
/// per connection (fresh process, so no earlier scenario's heap is counted). Any connection
/// that is refused, closed or not answered within [`ANSWER_WITHIN`] fails the scenario.
pub(crate) async fn many(server: &Server, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let fresh = Server::start(server.kind, &server.bin)?;
    let addr = fresh.url.trim_start_matches("nats://").to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = fresh.rss_kib()?;
    let gate = Arc::new(Semaphore::new(sz.conns_inflight));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(sz.conns as usize);
    for _ in 0..sz.conns {
        let permit = gate.clone().acquire_owned().await?;
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let r = handshake(&addr).await;
            drop(permit);
            r
        }));
    }
    let mut open = Vec::with_capacity(tasks.len());
    let mut failed: Vec<Unserved> = Vec::new();
    for t in tasks {
        match t.await? {
            Ok(s) => open.push(s),
            Err(e) => failed.push(e),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if !failed.is_empty() {
        let no_info = failed.iter().filter(|e| matches!(e, Unserved::NoInfo)).count();
        return Err(format!(
            "{} of {} connections not served ({no_info} never got INFO within {:?}); first: {}",
            failed.len(),
            sz.conns,
            ANSWER_WITHIN,
            failed[0]
        )
        .into());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = fresh.rss_kib()?;
    drop(open);
    out.push(("conn10k_time", secs));
    out.push(("conn10k_rss", rss_after.saturating_sub(rss_before) as f64 / sz.conns as f64));
    Ok(())
}
