//! Request/reply latency while the server is busy (issue 16): a paced fan-out load runs on
//! other connections of the same server while one client makes sequential requests.

use std::time::{Duration, Instant};

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;

use crate::delivery::IDLE;
use crate::integrity::{seq_of, Numbered};
use crate::scenarios::{connect, payload, responder, round_trip, Samples, Sizes};
use crate::server::Server;
use crate::stats::percentile;
use crate::Res;

/// Subscribers of the background load; every load message is delivered to each.
const LOAD_SUBS: usize = 8;
/// Load messages per second offered, the same to both servers (so 8x that in deliveries),
/// well below either server's measured fan-out rate so both answer requests while busy.
const LOAD_RATE: f64 = 25_000.0;
/// The message that tells a load subscriber the load is over; ordering on one publishing
/// connection guarantees every load message arrived before it.
const END: &[u8] = b"end";
/// Load message size.
const LOAD_SIZE: usize = 16;

/// Counts load messages until [`END`], each of which must carry the next number (so a
/// loss, duplicate or reordering is caught where it happens, not hidden in a count).
async fn count_until_end(mut sub: Subscriber) -> Result<u64, String> {
    let mut got = 0;
    loop {
        let msg = match tokio::time::timeout(IDLE, sub.next()).await {
            Ok(Some(m)) => m,
            _ => return Err(format!("stalled after {got} messages, before the end marker")),
        };
        if msg.payload.as_ref() == END {
            return Ok(got);
        }
        match seq_of(&msg.payload, LOAD_SIZE) {
            Some(seq) if seq == got => got += 1,
            seen => return Err(format!("integrity: message {got} due, {seen:?} arrived")),
        }
    }
}

/// Publishes at [`LOAD_RATE`] until `stop` turns true, then [`END`]; returns how many load
/// messages it sent.
async fn paced_load(client: Client, subject: Subject, mut stop: watch::Receiver<bool>) -> Res<u64> {
    let mut bodies = Numbered::new(LOAD_SIZE);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let due = (start.elapsed().as_secs_f64() * LOAD_RATE) as u64;
        while sent < due {
            client.publish(subject.clone(), bodies.get(sent)).await?;
            sent += 1;
        }
    }
    client.publish(subject, Bytes::from_static(END)).await?;
    client.flush().await?;
    Ok(sent)
}

/// Sequential request/reply latencies (p50, p99, p99.9 in µs) under the fan-out load, and
/// the delivery rate the load reached. A load message that never arrives fails the round.
pub(crate) async fn rr_under_load(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let url = server.url.as_str();
    let load_subject = format!("bench.load.{round}");
    let mut counters = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..LOAD_SUBS {
        let c = connect(url).await?;
        let sub = c.subscribe(load_subject.clone()).await?;
        round_trip(&c).await?;
        counters.push(tokio::spawn(count_until_end(sub)));
        conns.push(c);
    }
    let rr_subject = format!("bench.rrl.{round}");
    let (_resp, responder_task) = responder(url, &rr_subject).await?;
    let requester = connect(url).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let load_client = connect(url).await?;
    let load_start = Instant::now();
    let load = tokio::spawn(paced_load(load_client, Subject::from(load_subject.as_str()), stop_rx));

    let subject = Subject::from(rr_subject.as_str());
    let body = payload(16);
    let mut lat = Vec::with_capacity(sz.rr_seq as usize);
    let measured = async {
        for _ in 0..100 {
            requester.request(subject.clone(), body.clone()).await?;
        }
        for _ in 0..sz.rr_seq {
            let t = Instant::now();
            requester.request(subject.clone(), body.clone()).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Ok::<(), async_nats::RequestError>(())
    }
    .await;
    let _ = stop_tx.send(true);
    let sent = load.await??;
    let load_secs = load_start.elapsed().as_secs_f64();
    responder_task.abort();
    measured?;
    for (i, c) in counters.into_iter().enumerate() {
        match c.await? {
            Ok(got) if got == sent => {}
            Ok(got) => return Err(format!("{load_subject}: integrity: subscriber {i} got {got} of {sent}").into()),
            Err(e) => return Err(format!("{load_subject}: subscriber {i}: {e}").into()),
        }
    }
    lat.sort_by(f64::total_cmp);
    out.extend([
        ("rrl_p50", percentile(&lat, 0.50)),
        ("rrl_p99", percentile(&lat, 0.99)),
        ("rrl_p999", percentile(&lat, 0.999)),
        ("rrl_load", (sent * LOAD_SUBS as u64) as f64 / load_secs),
    ]);
    Ok(())
}
