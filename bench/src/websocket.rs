//! Pub/sub over WebSocket, the path browsers take (issue 16): our own WebSocket client
//! ([`crate::wsraw`]: pre-framed publish batches, allocation-free reads) to a server of the
//! same kind started with a plain (no TLS) WebSocket listener. async-nats over `ws://` spent
//! more CPU per message than the servers, so it set the rate; this client does not.

use crate::scenarios::{Samples, Sizes};
use crate::server::{free_port, Server};
use crate::Res;

/// One pub -> sub measurement over `ws://` on a fresh server of `server`'s kind: 16 B and
/// 1 KiB, each with the server's CPU per delivered message (the CPU time its threads ran
/// over the run / messages). Any lost, duplicated or reordered message fails the round.
pub(crate) async fn pubsub(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let ws_port = free_port()?;
    let config = format!("websocket {{ host: 127.0.0.1, port: {ws_port}, no_tls: true }}\n");
    let ws_server = Server::start_with(server.kind, &server.bin, Some(&config))?;
    let addr = format!("127.0.0.1:{ws_port}");
    let runs: [(&'static str, &'static str, u64, usize, &str); 2] =
        [("ws_pubsub16", "ws_cpu16", sz.pubsub16, 16, "ws16"), ("ws_pubsub1k", "ws_cpu1k", sz.pubsub1k, 1024, "ws1k")];
    for (rate_key, cpu_key, n, size, tag) in runs {
        let before = ws_server.cpu_times()?;
        let r =
            crate::wsraw::pubsub(&addr, crate::wsraw::Transport::Ws, &format!("bench.{tag}.{round}"), n, size).await?;
        let cpu = ws_server.cpu_times()?.since(&before);
        out.push((rate_key, r.rate));
        out.push((cpu_key, cpu as f64 / n as f64));
    }
    Ok(())
}
