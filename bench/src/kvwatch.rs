//! KV watch fan-out (issue 16): one key watched by many watchers spread over a few
//! connections (as many page tabs or services would), one put at a time; the time from
//! the put until every watcher has seen it. Each watcher checks that it sees every put
//! once, in order, with the value put, and nothing else (a last marker put closes the run,
//! so no timeout stands for "nothing more arrives").

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::scenarios::{connect, Samples, Sizes};
use crate::server::Server;
use crate::stats::median;
use crate::Res;

/// Connections the watchers are spread over.
const CONNS: usize = 10;
/// How long a watcher waits for the next put before the round fails.
const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "watched";

/// The value of put `p` (the marker after the measured puts included).
fn value(p: u64) -> Bytes {
    Bytes::from(format!("put-{p:08}"))
}

/// One watcher: sees puts `0..=puts` (the last one the marker) in order, reporting when it
/// saw each measured one.
async fn watcher(mut watch: kv::Watch, puts: u64, seen: mpsc::UnboundedSender<(u64, Instant)>) -> Result<(), String> {
    for p in 0..=puts {
        let entry = match tokio::time::timeout(WAIT, watch.next()).await {
            Ok(Some(Ok(e))) => e,
            Ok(Some(Err(e))) => return Err(format!("watch error at put {p}: {e}")),
            Ok(None) => return Err(format!("watch ended before put {p}")),
            Err(_) => return Err(format!("integrity: put {p} never arrived within {WAIT:?}")),
        };
        let at = Instant::now();
        if entry.key != KEY || entry.revision != p + 1 || entry.value != value(p) {
            return Err(format!(
                "integrity: put {p} due (revision {}), got key {} revision {}",
                p + 1,
                entry.key,
                entry.revision
            ));
        }
        if p < puts {
            let _ = seen.send((p, at));
        }
    }
    Ok(())
}

/// `sz.kv_watchers` watchers on one key; `sz.kv_watch_puts` puts, each awaited until every
/// watcher saw it; the median of those times in milliseconds.
pub(crate) async fn watch_fanout(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let url = server.url.as_str();
    let bucket = format!("BENCH_WATCH_{round}");
    let admin = jetstream::new(connect(url).await?);
    let _ = admin.delete_key_value(&bucket).await;
    let store = admin
        .create_key_value(kv::Config {
            bucket: bucket.clone(),
            history: 1,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let mut stores = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        stores.push(jetstream::new(connect(url).await?).get_key_value(&bucket).await?);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(sz.kv_watchers as usize);
    for w in 0..sz.kv_watchers as usize {
        // the watch's consumer exists once `watch` returns, so the first put reaches it
        let watch = stores[w % CONNS].watch(KEY).await?;
        tasks.push(tokio::spawn(watcher(watch, sz.kv_watch_puts, tx.clone())));
    }
    drop(tx);
    let mut times = Vec::with_capacity(sz.kv_watch_puts as usize);
    for p in 0..sz.kv_watch_puts {
        let start = Instant::now();
        store.put(KEY, value(p)).await?;
        let mut last = start;
        let mut arrived = 0;
        while arrived < sz.kv_watchers {
            match tokio::time::timeout(WAIT, rx.recv()).await {
                Ok(Some((q, at))) if q == p => {
                    arrived += 1;
                    last = last.max(at);
                }
                Ok(Some((q, _))) => return Err(format!("kv watch: put {q} seen while put {p} was due").into()),
                Ok(None) | Err(_) => break,
            }
        }
        if arrived < sz.kv_watchers {
            // the failing watchers say why below
            break;
        }
        times.push((last - start).as_secs_f64() * 1e3);
    }
    store.put(KEY, value(sz.kv_watch_puts)).await?;
    for t in tasks {
        t.await?.map_err(|e| format!("kv watch: {e}"))?;
    }
    if times.len() as u64 != sz.kv_watch_puts {
        return Err("kv watch: a put did not reach every watcher".into());
    }
    drop(stores);
    admin.delete_key_value(&bucket).await?;
    out.push(("kv_watch", median(&times)));
    Ok(())
}
