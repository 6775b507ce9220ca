//! Messages per second across a leaf link (issue 15). Each round starts a fresh nats-server
//! hub with a leaf port and a fresh leaf of the kind under test dialling it, then measures one
//! publisher on one side to one subscriber on the other, both ways. The hub is nats-server in
//! both columns, so what differs is the leaf: its side of the link, its routing into and out
//! of it.

use std::time::{Duration, Instant};

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures::StreamExt;

use crate::delivery::IDLE;
use crate::integrity::{Checker, Numbered};
use crate::scenarios::{connect, Samples, Sizes};
use crate::server::{find_nats_server, free_port, Kind, Server};
use crate::Res;

/// How long interest may take to cross the link before the round fails.
const INTEREST_WAIT: Duration = Duration::from_secs(20);

pub(crate) async fn across(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let leaf_port = free_port()?;
    let hub_config = format!("leafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n");
    let hub = Server::start_with(Kind::Nats, &find_nats_server()?, Some(&hub_config))?;
    let leaf_config = format!(
        "leafnodes {{ remotes: [ {{ url: \"nats-leaf://127.0.0.1:{leaf_port}\" }} ], reconnect: \"250ms\" }}\n"
    );
    let leaf = Server::start_with(server.kind, &server.bin, Some(&leaf_config))?;
    let runs = [("leaf_up", &leaf.url, &hub.url, "up"), ("leaf_down", &hub.url, &leaf.url, "down")];
    for (key, from, to, tag) in runs {
        let subject = format!("bench.leaf.{tag}.{round}");
        out.push((key, one_way(from, to, &subject, sz.pubsub1k, 16).await?));
    }
    Ok(())
}

/// `n` messages of `size` bytes published at `from`, received at `to`: received per second,
/// first publish to last delivery. Every message is numbered and checked: a loss, a duplicate
/// or a reordering fails the round.
async fn one_way(from: &str, to: &str, subject: &str, n: u64, size: usize) -> Res<f64> {
    let receiver = connect(to).await?;
    let mut sub = receiver.subscribe(subject.to_string()).await?;
    let publisher = connect(from).await?;
    let subject = Subject::from(subject);
    await_interest(&publisher, &subject, &mut sub).await?;
    let mut numbered = Numbered::new(size);
    let mut checker = Checker::all(n, size);
    let start = Instant::now();
    for seq in 0..n {
        publisher.publish(subject.clone(), numbered.get(seq)).await?;
    }
    publisher.flush().await?;
    let mut got = 0u64;
    let mut last = start;
    while got < n {
        match tokio::time::timeout(IDLE, sub.next()).await {
            Ok(Some(m)) => {
                checker.check(&m.payload);
                got += 1;
                last = Instant::now();
            }
            _ => return Err(format!("{subject} across the leaf link: {got} of {n} messages arrived").into()),
        }
    }
    let faults = checker.finish_all();
    if !faults.is_clean() {
        return Err(format!("{subject} across the leaf link: integrity: {faults}").into());
    }
    Ok(n as f64 / (last - start).as_secs_f64().max(1e-9))
}

/// Publishes probes until one arrives (the subscriber's interest crossed the link), then a
/// marker, read up to, so the measured messages are the next ones the subscriber sees.
async fn await_interest(publisher: &Client, subject: &Subject, sub: &mut Subscriber) -> Res<()> {
    let deadline = Instant::now() + INTEREST_WAIT;
    loop {
        publisher.publish(subject.clone(), Bytes::from_static(b"probe")).await?;
        publisher.flush().await?;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("interest on {subject} never crossed the leaf link").into());
        }
    }
    publisher.publish(subject.clone(), Bytes::from_static(b"marker")).await?;
    publisher.flush().await?;
    loop {
        match tokio::time::timeout(IDLE, sub.next()).await {
            Ok(Some(m)) if m.payload.as_ref() == b"marker" => return Ok(()),
            Ok(Some(_)) => {}
            _ => return Err(format!("{subject}: the marker never arrived").into()),
        }
    }
}
