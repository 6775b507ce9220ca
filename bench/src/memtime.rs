//! Memory over time (issue 16): one fresh server process runs several rounds of the same
//! mixed load — pub/sub of 16 B and 1 KiB messages, a fan-out, JetStream file publishes
//! (sequential and 256 in flight, the stream deleted after each round) — and its RSS is read
//! after every round. Every round leaves the server holding the same state (nothing), so a
//! server that gives back what a round used stays flat; one that keeps buffers at their
//! high-water mark, or an allocator that never returns freed memory, grows round after round.

use async_nats::jetstream::stream;

use crate::delivery::deliver;
use crate::scenarios::{js_publish_counts, Samples, Sizes};
use crate::server::Server;
use crate::Res;

/// Rounds of load in one process.
const ROUNDS: usize = 5;

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
        rss.push(fresh.rss_kib()? as f64 / 1024.0);
    }
    let (first, last) = (rss[0], rss[ROUNDS - 1]);
    eprintln!("    {} RSS per round (MiB): {rss:.1?}", server.kind.label());
    out.extend([("mem_first", first), ("mem_last", last), ("mem_growth", last / first)]);
    Ok(())
}
