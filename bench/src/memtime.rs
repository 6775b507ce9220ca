//! Memory over time (issue 16): one fresh server process runs several rounds of the same
//! mixed load — pub/sub of 16 B and 1 KiB messages, a fan-out, JetStream file publishes
//! (sequential and 256 in flight, the stream deleted after each round) — and its RSS is read
//! after every round. Every round leaves the server holding the same state (nothing), so a
//! server that gives back what a round used stays flat; one that keeps buffers at their
//! high-water mark, or an allocator that never returns freed memory, grows round after round.
//! RSS is read at rest, [`AT_REST`] after the round's last reply: what a server gives back
//! once the load stops (Go's scavenger, edgebus's `malloc_trim` when quiet) is not retention;
//! what it still holds then is.

use async_nats::jetstream::stream;

use crate::delivery::deliver;
use crate::scenarios::{js_publish_counts, Samples, Sizes};
use crate::server::Server;
use crate::Res;

/// Rounds of load in one process.
const ROUNDS: usize = 5;

/// How long after a round the RSS is read: longer than edgebus waits for quiet before it
/// trims its heap (between 0.5 and 1 s after the last message).
const AT_REST: std::time::Duration = std::time::Duration::from_millis(1500);

/// RSS after the first round, after the last, and last / first (1.0 is flat).
pub(crate) async fn rounds_in_one_process(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let fresh = Server::start(server.kind, &server.bin)?;
    let url = fresh.url.as_str();
    let mut rss = Vec::with_capacity(ROUNDS);
    for inner in 0..ROUNDS {
        let tag = round * ROUNDS + inner;
        deliver(url, &format!("mem.ps16.{tag}"), sz.pubsub16 / 4, 16, 1, None).await?;
        deliver(url, &format!("mem.ps1k.{tag}"), sz.pubsub1k / 4, 1024, 1, None).await?;
        deliver(url, &format!("mem.fan.{tag}"), sz.fanout / 4, 16, 8, None).await?;
        // stream names from round numbers far from the other scenarios' (they share none of
        // this server anyway: it is fresh)
        js_publish_counts(url, stream::StorageType::File, 1000 + tag, sz.js_seq / 4, sz.js_par / 2).await?;
        tokio::time::sleep(AT_REST).await;
        rss.push(fresh.rss_kib()? as f64 / 1024.0);
    }
    let (first, last) = (rss[0], rss[ROUNDS - 1]);
    eprintln!("    {} RSS per round (MiB): {rss:.1?}", server.kind.label());
    out.extend([("mem_first", first), ("mem_last", last), ("mem_growth", last / first)]);
    Ok(())
}
