//! 10,000 connections opened one at a time (issues 14 and 16): each client connects, waits
//! for INFO, sends CONNECT + PING and waits for PONG before the next one starts, and all stay
//! open until the last is served. With nothing in parallel this is the server's accept and
//! handshake latency (accept loop, INFO, per-connection setup) laid end to end.

use std::time::{Duration, Instant};

use crate::connections::handshake;
use crate::scenarios::{Samples, Sizes};
use crate::server::Server;
use crate::Res;

/// `sz.conns` connections, one by one, to a fresh server of `server`'s kind (so no earlier
/// scenario's connections or heap are in the way): microseconds per connection, from the
/// first connect to the last PONG. A connection not served fails the scenario.
pub(crate) async fn one_by_one(server: &Server, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let fresh = Server::start(server.kind, &server.bin)?;
    let addr = fresh.url.trim_start_matches("nats://").to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut open = Vec::with_capacity(sz.conns as usize);
    let start = Instant::now();
    for i in 0..sz.conns {
        match handshake(&addr).await {
            Ok(s) => open.push(s),
            Err(e) => return Err(format!("connection {i} of {} (one by one) not served: {e}", sz.conns).into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(open);
    out.push(("conn_seq_us", secs * 1e6 / sz.conns as f64));
    Ok(())
}
