//! Pub -> sub delivery measured end to end: one publisher, N subscribers, a rate from the
//! first publish to the last delivery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{Subject, Subscriber};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use crate::integrity::{Checker, Faults, Numbered, Seen};
use crate::scenarios::{connect, round_trip};
use crate::Res;

pub(crate) struct Delivery {
    /// Deliveries per second, publish start to last message received.
    pub(crate) rate: f64,
    /// Messages each subscriber received.
    pub(crate) counts: Vec<u64>,
}

/// How long a receiver waits for the next message before it gives up (loss).
pub(crate) const IDLE: Duration = Duration::from_secs(5);

/// One receiver's tally, handed back with its subscription so the caller can look for
/// stragglers after the end.
struct Tally {
    sub: Subscriber,
    checker: Checker,
    got: u64,
    last: Option<Instant>,
}

/// Counts (and checks) messages until the shared total reaches `want` or nothing arrives
/// for `IDLE`.
async fn count(
    mut sub: Subscriber,
    mut checker: Checker,
    total: Arc<AtomicU64>,
    want: u64,
    done_tx: Arc<watch::Sender<bool>>,
    mut done: watch::Receiver<bool>,
) -> Tally {
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
        let Some(msg) = next else { break };
        checker.check(&msg.payload);
        got += 1;
        last = Some(Instant::now());
        if total.fetch_add(1, Ordering::Relaxed) + 1 >= want {
            let _ = done_tx.send(true);
            break;
        }
    }
    Tally { sub, checker, got, last }
}

/// (2)(3)(4) One publisher, `subs` subscribers (each on its own connection), optionally in a
/// queue group. Rate = deliveries / (last delivery - first publish). Every message carries
/// its number: each plain subscriber must see all of them once and in order, a queue group
/// must see each exactly once (each member in rising order); after the last one a round
/// trip on every subscriber's connection flushes out anything extra. Any fault fails.
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
    let group = Arc::new(Seen::new(n));
    let mut conns = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..subs {
        let c = connect(url).await?;
        let (sub, checker) = match queue {
            Some(q) => {
                (c.queue_subscribe(subject.to_string(), q.to_string()).await?, Checker::member(n, size, group.clone()))
            }
            None => (c.subscribe(subject.to_string()).await?, Checker::all(n, size)),
        };
        round_trip(&c).await?;
        tasks.push(tokio::spawn(count(sub, checker, total.clone(), want, done_tx.clone(), done_rx.clone())));
        conns.push(c);
    }
    let publisher = connect(url).await?;
    let subject = Subject::from(subject);
    let mut bodies = Numbered::new(size);
    let start = Instant::now();
    for seq in 0..n {
        publisher.publish(subject.clone(), bodies.get(seq)).await?;
    }
    publisher.flush().await?;
    let mut counts = Vec::new();
    let mut last = start;
    let mut faults = Faults::default();
    for (t, c) in tasks.into_iter().zip(&conns) {
        let Tally { mut sub, mut checker, got, last: at } = t.await?;
        // whatever the server sent this connection before the round trip's answer is now
        // in the subscription's queue: a message beyond the count is a duplicate or stray
        round_trip(c).await?;
        while let Some(Some(msg)) = sub.next().now_or_never() {
            checker.check(&msg.payload);
        }
        faults.add(if queue.is_some() { checker.finish_member() } else { checker.finish_all() });
        counts.push(got);
        last = last.max(at.unwrap_or(start));
    }
    if queue.is_some() {
        faults.lost += group.missing();
    }
    if !faults.is_clean() {
        // a rate over what arrived would flatter a server that drops messages
        return Err(format!("{subject}: integrity: {faults} ({want} deliveries expected)").into());
    }
    let got: u64 = counts.iter().sum();
    let secs = (last - start).as_secs_f64().max(1e-9);
    Ok(Delivery { rate: got as f64 / secs, counts })
}
