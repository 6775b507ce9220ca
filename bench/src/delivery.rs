//! Pub -> sub delivery measured end to end: one publisher, N subscribers, a rate from the
//! first publish to the last delivery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{Subject, Subscriber};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use crate::scenarios::{connect, payload, round_trip};
use crate::Res;

pub(crate) struct Delivery {
    /// Deliveries per second, publish start to last message received.
    pub(crate) rate: f64,
    /// Messages each subscriber received.
    pub(crate) counts: Vec<u64>,
}

/// How long a receiver waits for the next message before it gives up (loss).
pub(crate) const IDLE: Duration = Duration::from_secs(5);

/// Counts messages until the shared total reaches `want` or nothing arrives for `IDLE`.
/// Returns its own count and when its last message arrived.
async fn count(
    mut sub: Subscriber,
    total: Arc<AtomicU64>,
    want: u64,
    done_tx: Arc<watch::Sender<bool>>,
    mut done: watch::Receiver<bool>,
) -> (u64, Option<Instant>) {
    let mut got = 0;
    let mut last = None;
    loop {
        // Only arm a timer when the channel is empty, so the hot loop costs one poll.
        let next = match sub.next().now_or_never() {
            Some(m) => m,
            None => {
                tokio::select! {
                    m = tokio::time::timeout(IDLE, sub.next()) => match m {
                        Ok(m) => m,
                        Err(_) => break,
                    },
                    _ = done.changed() => break,
                }
            }
        };
        if next.is_none() {
            break;
        }
        got += 1;
        last = Some(Instant::now());
        if total.fetch_add(1, Ordering::Relaxed) + 1 >= want {
            let _ = done_tx.send(true);
            break;
        }
    }
    (got, last)
}

/// (2)(3)(4) One publisher, `subs` subscribers (each on its own connection), optionally in a
/// queue group. Rate = deliveries / (last delivery - first publish).
pub(crate) async fn deliver(
    url: &str,
    subject: &str,
    n: u64,
    size: usize,
    subs: usize,
    queue: Option<&str>,
) -> Res<Delivery> {
    let want = if queue.is_some() { n } else { n * subs as u64 };
    let total = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = watch::channel(false);
    let done_tx = Arc::new(done_tx);
    let mut conns = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let c = connect(url).await?;
        let sub = match queue {
            Some(q) => c.queue_subscribe(subject.to_string(), q.to_string()).await?,
            None => c.subscribe(subject.to_string()).await?,
        };
        round_trip(&c).await?;
        tasks.push(tokio::spawn(count(sub, total.clone(), want, done_tx.clone(), done_rx.clone())));
        conns.push(c);
    }
    let publisher = connect(url).await?;
    let subject = Subject::from(subject);
    let body = payload(size);
    let start = Instant::now();
    for _ in 0..n {
        publisher.publish(subject.clone(), body.clone()).await?;
    }
    publisher.flush().await?;
    let mut counts = Vec::new();
    let mut last = start;
    for t in tasks {
        let (got, at) = t.await?;
        counts.push(got);
        last = last.max(at.unwrap_or(start));
    }
    let got: u64 = counts.iter().sum();
    if got < want {
        // a rate over what arrived would flatter a server that drops messages
        return Err(format!("{subject}: {got} of {want} messages arrived").into());
    }
    let secs = (last - start).as_secs_f64().max(1e-9);
    Ok(Delivery { rate: got as f64 / secs, counts })
}
