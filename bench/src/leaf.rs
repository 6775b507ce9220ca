//! Messages per second across a leaf link (issue 15). Each round starts a fresh nats-server
//! hub with a leaf port and a fresh leaf of the kind under test dialling it, then measures one
//! publisher on one side to one subscriber on the other, both ways. The hub is nats-server in
//! both columns, so what differs is the leaf: its side of the link, its routing into and out
//! of it. Each direction is measured twice: with async-nats clients (what an application
//! sees; async-nats sets that rate on two cores) and with our own raw client, whose rows
//! carry the target.

use std::time::{Duration, Instant};

use async_nats::{Client, Subject, Subscriber};
use bytes::Bytes;
use futures::StreamExt;

use crate::delivery::IDLE;
use crate::integrity::{Checker, Numbered};
use crate::scenarios::{connect, Samples, Sizes};
use crate::server::{find_nats_server, free_port, Kind, Server};
use crate::wsraw::{Conn, Received, Transport};
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
    let runs = [
        ("leaf_up", "leaf_up_raw", "leaf_up_raw_cpu", &leaf.url, &hub.url, "up"),
        ("leaf_down", "leaf_down_raw", "leaf_down_raw_cpu", &hub.url, &leaf.url, "down"),
    ];
    for (key, raw_key, cpu_key, from, to, tag) in runs {
        let subject = format!("bench.leaf.{tag}.{round}");
        out.push((key, one_way(from, to, &subject, sz.pubsub1k, 16).await?));
        let subject = format!("bench.leafraw.{tag}.{round}");
        let (rate, cpu) = one_way_raw(&leaf, from, to, &subject, sz.pubsub16, 16).await?;
        out.extend([(raw_key, rate), (cpu_key, cpu)]);
    }
    Ok(())
}

/// As [`one_way`], with our own client on both ends (`crate::wsraw`), which spends far less
/// per message than async-nats, so the servers and the link set the rate rather than the
/// load client. Returns messages per second and the leaf's CPU per message (ns).
async fn one_way_raw(leaf: &Server, from: &str, to: &str, subject: &str, n: u64, size: usize) -> Res<(f64, f64)> {
    let addr = |url: &str| url.trim_start_matches("nats://").to_string();
    let sub = Conn::subscriber(&addr(to), Transport::Tcp, subject).await?;
    // Interest crosses the link in the order it was made, so once a probe subject
    // subscribed after `subject` is served across it, `subject` is too.
    let prober = connect(to).await?;
    let probe = Subject::from(format!("{subject}.probe"));
    let mut probes = prober.subscribe(probe.clone()).await?;
    let announcer = connect(from).await?;
    await_interest(&announcer, &probe, &mut probes).await?;
    let mut publisher = Conn::open(&addr(from), Transport::Tcp).await?;
    let receiving = sub.receive(n, size);
    let before = leaf.cpu_times()?;
    let start = publisher.publish(subject, n, size).await?;
    let Received { faults, got, last } = receiving.await??;
    let cpu = leaf.cpu_times()?.since(&before);
    if !faults.is_clean() {
        return Err(format!("{subject} across the leaf link: integrity: {faults} ({n} expected, {got} counted)").into());
    }
    let last = last.ok_or_else(|| format!("{subject} across the leaf link: the last message never arrived"))?;
    Ok((n as f64 / (last - start).as_secs_f64().max(1e-9), cpu as f64 / n as f64))
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
