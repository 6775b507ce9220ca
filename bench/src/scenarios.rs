//! The scenarios of issue 6, each driven by async-nats (or, where async-nats caps the rate,
//! our own raw client, [`crate::wsraw`]) against one server.
//!
//! Every scenario returns named samples; `metrics::METRICS` says what each name means, which
//! way is better and what the target is.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, kv, stream};
use async_nats::{Client, ConnectOptions, Subject};
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;

use crate::delivery::deliver;
use crate::server::Server;
use crate::stats::percentile;
use crate::Res;

/// Message counts. The full run is sized to finish within 10 minutes on 2 cores.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct Sizes {
    pub(crate) publish: u64,
    pub(crate) pubsub16: u64,
    pub(crate) pubsub1k: u64,
    pub(crate) fanout: u64,
    pub(crate) queue: u64,
    pub(crate) rr_seq: u64,
    pub(crate) rr_par_each: u64,
    pub(crate) js_seq: u64,
    pub(crate) js_par: u64,
    pub(crate) pull_stream: u64,
    pub(crate) kv: u64,
    pub(crate) cg_subs: u64,
    pub(crate) cg_msgs: u64,
    /// JetStream publishes with `sync_interval: always`: sequential, then 256 in flight.
    #[serde(default)]
    pub(crate) sync_seq: u64,
    #[serde(default)]
    pub(crate) sync_par: u64,
    /// Connections held open at once, and how many handshakes may be in flight.
    #[serde(default)]
    pub(crate) conns: u64,
    #[serde(default)]
    pub(crate) conns_inflight: usize,
    /// Watchers of one KV key, and the puts each must see.
    #[serde(default)]
    pub(crate) kv_watchers: u64,
    #[serde(default)]
    pub(crate) kv_watch_puts: u64,
    /// Size of each object put and got.
    #[serde(default)]
    pub(crate) obj_bytes: u64,
}

impl Sizes {
    pub(crate) fn full() -> Sizes {
        Sizes {
            publish: 2_000_000,
            pubsub16: 1_000_000,
            pubsub1k: 300_000,
            fanout: 150_000,
            queue: 600_000,
            rr_seq: 10_000,
            rr_par_each: 1_000,
            js_seq: 5_000,
            js_par: 50_000,
            pull_stream: 200_000,
            kv: 5_000,
            cg_subs: 100_000,
            cg_msgs: 2_000_000,
            // about 0.5-2.5k fsynced publishes/s here: a few seconds per server and round
            sync_seq: 1_000,
            sync_par: 5_000,
            conns: 10_000,
            conns_inflight: 500,
            kv_watchers: 1_000,
            kv_watch_puts: 5,
            obj_bytes: 10 << 20,
        }
    }

    pub(crate) fn quick() -> Sizes {
        Sizes {
            publish: 200_000,
            pubsub16: 100_000,
            pubsub1k: 30_000,
            fanout: 15_000,
            queue: 60_000,
            rr_seq: 1_000,
            rr_par_each: 100,
            js_seq: 500,
            js_par: 5_000,
            pull_stream: 20_000,
            kv: 500,
            cg_subs: 10_000,
            cg_msgs: 200_000,
            sync_seq: 200,
            sync_par: 2_000,
            conns: 2_000,
            conns_inflight: 500,
            kv_watchers: 100,
            kv_watch_puts: 2,
            obj_bytes: 1 << 20,
        }
    }
}

/// A group of metrics measured together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    Publish,
    PubSub,
    FanOut,
    Queue,
    ReqRep,
    JetStream,
    Pull,
    Kv,
    CostGrowth,
    Perms,
    WebSocket,
    SyncAlways,
    Connections,
    LoadedReqRep,
    MemoryOverTime,
    KvWatch,
    ObjectStore,
    Leaf,
    WsFanOut,
    WsMixed,
    ConnsOneByOne,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 21] = [
        Scenario::Publish,
        Scenario::PubSub,
        Scenario::FanOut,
        Scenario::Queue,
        Scenario::ReqRep,
        Scenario::JetStream,
        Scenario::Pull,
        Scenario::Kv,
        Scenario::CostGrowth,
        Scenario::Perms,
        Scenario::WebSocket,
        Scenario::SyncAlways,
        Scenario::Connections,
        Scenario::LoadedReqRep,
        Scenario::MemoryOverTime,
        Scenario::KvWatch,
        Scenario::ObjectStore,
        Scenario::Leaf,
        Scenario::WsFanOut,
        Scenario::WsMixed,
        Scenario::ConnsOneByOne,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Publish => "publish",
            Scenario::PubSub => "pubsub",
            Scenario::FanOut => "fanout",
            Scenario::Queue => "queue",
            Scenario::ReqRep => "reqrep",
            Scenario::JetStream => "jetstream",
            Scenario::Pull => "pull",
            Scenario::Kv => "kv",
            Scenario::CostGrowth => "costgrowth",
            Scenario::Perms => "perms",
            Scenario::WebSocket => "ws",
            Scenario::SyncAlways => "jssync",
            Scenario::Connections => "conns",
            Scenario::LoadedReqRep => "rrload",
            Scenario::MemoryOverTime => "memtime",
            Scenario::KvWatch => "kvwatch",
            Scenario::ObjectStore => "objstore",
            Scenario::Leaf => "leaf",
            Scenario::WsFanOut => "wsfanout",
            Scenario::WsMixed => "wsmixed",
            Scenario::ConnsOneByOne => "connseq",
        }
    }

    /// Whether the scenario runs in round `round` (counted from 0). Memory over time and cost
    /// growth are the longest (about 20 s a round each, both servers, mostly rests at the
    /// memory reads and runs repeated inside the round) and take several readings within
    /// one round already (five inner rounds; five with/without pairs): they run in every
    /// other round, the first included, which keeps the full run near the issue's ten
    /// minutes (five rounds: three samples each).
    pub(crate) fn runs_in(self, round: usize) -> bool {
        match self {
            Scenario::MemoryOverTime | Scenario::CostGrowth => round.is_multiple_of(2),
            _ => true,
        }
    }

    /// How many alternating pairs of samples a round takes. The scenarios below run for a
    /// second or less per sample, so one disturbed sample (the machine is shared) decided
    /// the low end of their interval with one pair per round; a few pairs per round make
    /// the interval a statement about the servers again, for a few seconds more per round.
    /// A scenario whose rounds build on each other (memory over time, the first round's
    /// RSS) keeps one. Request/reply under load is a tail (p99 of 1,000-odd requests in
    /// about a second): one late sample in five made its interval 0.85-1.70, so it takes
    /// three. Permissions and leaf links took three too until their margins were wide
    /// (intervals 1.15-1.32 and 1.11-1.21 against targets of 1.0): two keep them decided
    /// and the run near ten minutes.
    pub(crate) fn pairs_per_round(self) -> usize {
        match self {
            Scenario::PubSub | Scenario::Perms | Scenario::Leaf => 2,
            Scenario::LoadedReqRep => 3,
            Scenario::WebSocket => 4,
            _ => 1,
        }
    }
}

/// Per-server state kept across rounds (the pull stream is filled once).
#[derive(Default)]
pub(crate) struct ServerState {
    pull_filled: bool,
}

pub(crate) type Samples = Vec<(&'static str, f64)>;

/// Runs one scenario against one server.
pub(crate) async fn run(
    scenario: Scenario,
    server: &Server,
    state: &mut ServerState,
    round: usize,
    sz: &Sizes,
) -> Res<Samples> {
    let url = server.url.as_str();
    let mut out = Samples::new();
    match scenario {
        Scenario::Publish => {
            let subject = format!("bench.pub.{round}");
            let before = server.cpu_times()?;
            out.push(("pub16", publish_only(url, &subject, sz.publish, 16).await?));
            let cpu = server.cpu_times()?.since(&before);
            out.push(("pub16_cpu", cpu as f64 / sz.publish as f64));
            let addr = url.trim_start_matches("nats://");
            // four times as many: this client is several times faster
            let raw_n = sz.publish * 4;
            let before = server.cpu_times()?;
            let rate = publish_raw(addr, &format!("bench.praw.{round}"), raw_n, 16).await?;
            let cpu = server.cpu_times()?.since(&before);
            out.push(("pub16_raw", rate));
            out.push(("pub16_raw_cpu", cpu as f64 / raw_n as f64));
        }
        Scenario::PubSub => {
            let r = deliver(url, &format!("bench.ps16.{round}"), sz.pubsub16, 16, 1, None).await?;
            out.push(("pubsub16", r.rate));
            let r = deliver(url, &format!("bench.ps1k.{round}"), sz.pubsub1k, 1024, 1, None).await?;
            out.push(("pubsub1k", r.rate));
            pubsub_raw(server, round, sz, &mut out).await?;
        }
        Scenario::FanOut => {
            let r = deliver(url, &format!("bench.fan.{round}"), sz.fanout, 16, 8, None).await?;
            out.push(("fanout8", r.rate));
        }
        Scenario::Queue => {
            let r = deliver(url, &format!("bench.q.{round}"), sz.queue, 16, 4, Some("workers")).await?;
            out.push(("queue4", r.rate));
            let min = r.counts.iter().copied().min().unwrap_or(0) as f64;
            let max = r.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
            out.push(("queue4_even", min / max));
        }
        Scenario::ReqRep => {
            let (p50, p90, p99) = request_latency(url, &format!("bench.rr.{round}"), sz.rr_seq).await?;
            out.extend([("rr_p50", p50), ("rr_p90", p90), ("rr_p99", p99)]);
            let subject = format!("bench.rrp.{round}");
            out.push(("rr_tput", request_throughput(url, &subject, 32, sz.rr_par_each).await?));
        }
        Scenario::JetStream => {
            let (seq, par) = js_publish(url, stream::StorageType::File, round, sz).await?;
            out.extend([("js_file_seq", seq), ("js_file_256", par)]);
            let (seq, par) = js_publish(url, stream::StorageType::Memory, round, sz).await?;
            out.extend([("js_mem_seq", seq), ("js_mem_256", par)]);
        }
        Scenario::Pull => {
            out.push(("pull", pull_fetch(url, state, round, sz.pull_stream).await?));
        }
        Scenario::Kv => {
            let (put, get) = kv_put_get(url, round, sz.kv).await?;
            out.extend([("kv_put", put), ("kv_get", get)]);
        }
        Scenario::CostGrowth => cost_growth(server, round, sz, &mut out).await?,
        Scenario::Perms => with_permissions(server, round, sz, &mut out).await?,
        Scenario::WebSocket => crate::websocket::pubsub(server, round, sz, &mut out).await?,
        Scenario::SyncAlways => crate::fsync::sync_always(server, round, sz, &mut out).await?,
        Scenario::Connections => crate::connections::many(server, sz, &mut out).await?,
        Scenario::LoadedReqRep => crate::loaded::rr_under_load(server, round, sz, &mut out).await?,
        Scenario::MemoryOverTime => crate::memtime::rounds_in_one_process(server, round, sz, &mut out).await?,
        Scenario::KvWatch => crate::kvwatch::watch_fanout(server, round, sz, &mut out).await?,
        Scenario::ObjectStore => crate::objstore::put_get(url, round, sz, &mut out).await?,
        Scenario::Leaf => crate::leaf::across(server, round, sz, &mut out).await?,
        Scenario::WsFanOut => crate::wsmixed::fanout(server, round, sz, &mut out).await?,
        Scenario::WsMixed => crate::wsmixed::mixed(server, round, sz, &mut out).await?,
        Scenario::ConnsOneByOne => crate::connseq::one_by_one(server, sz, &mut out).await?,
    }
    Ok(out)
}

/// A user whose permissions look like a real deployment's: a few allowed trees, a denied
/// branch inside one of them, the inbox for requests.
const PERMS_CONFIG: &str = r#"
authorization {
  users: [ {
    user: bench, password: bench,
    permissions: {
      publish: { allow: ["bench.>", "orders.*.created", "metrics.>", "_INBOX.>"], deny: ["bench.secret.>"] }
      subscribe: { allow: ["bench.>", "orders.>", "metrics.*", "_INBOX.>"], deny: ["bench.secret.>"] }
    }
  } ]
}
"#;

/// Pub/sub through a fresh server of the same kind whose only user has permissions, against
/// the same measurement on another fresh server without authorization (both new, so neither
/// has a heap warmed by earlier scenarios), in alternating order: the cost of checking
/// permissions on the publish and on the delivery.
async fn with_permissions(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let plain = Server::start_with(server.kind, &server.bin, None)?;
    let guarded = Server::start_with(server.kind, &server.bin, Some(PERMS_CONFIG))?;
    let guarded_url = guarded.url.replacen("nats://", "nats://bench:bench@", 1);
    let subject = format!("bench.perm.{round}");
    let mut rates = [0.0; 2];
    let order = if round.is_multiple_of(2) { [0, 1] } else { [1, 0] };
    for i in order {
        let url = if i == 0 { plain.url.as_str() } else { guarded_url.as_str() };
        rates[i] = deliver(url, &subject, sz.pubsub16, 16, 1, None).await?.rate;
    }
    out.push(("pubsub16_perms", rates[1]));
    out.push(("perms_cost", rates[1] / rates[0]));
    Ok(())
}

/// A connection with room for a million queued messages per subscription: async-nats drops
/// messages when a subscription's channel is full, which would look like server loss.
/// A `nats://user:pass@host` URL logs in as that user.
pub(crate) async fn connect(url: &str) -> Res<Client> {
    let opts = ConnectOptions::new().subscription_capacity(1 << 20);
    let login = url.strip_prefix("nats://").and_then(|rest| rest.split_once('@'));
    Ok(match login {
        Some((creds, host)) => {
            let (user, pass) = creds.split_once(':').unwrap_or((creds, ""));
            opts.user_and_password(user.into(), pass.into()).connect(format!("nats://{host}")).await?
        }
        None => opts.connect(url).await?,
    })
}

pub(crate) fn payload(size: usize) -> Bytes {
    Bytes::from(vec![b'x'; size])
}

/// A real server round trip: async-nats' `flush` only empties the client's own buffer, so it
/// neither proves the server has read what was published nor that a subscription is in
/// place. A request to a subject nobody serves comes back (as no-responders) only after the
/// server has processed everything this connection sent before it.
pub(crate) async fn round_trip(client: &Client) -> Res<()> {
    client.flush().await?;
    match client.request("bench.rtt.none", Bytes::new()).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// (1) Publish `n` messages with no subscriber; the clock stops after a round trip, i.e.
/// when the server has read them all.
async fn publish_only(url: &str, subject: &str, n: u64, size: usize) -> Res<f64> {
    let client = connect(url).await?;
    let subject = Subject::from(subject);
    let body = payload(size);
    let start = Instant::now();
    for _ in 0..n {
        client.publish(subject.clone(), body.clone()).await?;
    }
    round_trip(&client).await?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Publish only with our own client ([`crate::wsraw`] over plain TCP: pre-built batches of
/// `PUB`s, one write each), the same client for both servers. async-nats spends more CPU per
/// message than either server, so on two cores it sets the `pub16` rate; this one leaves the
/// server the limit. Rate from the first write to the PONG answering a PING sent after the
/// last message (the server has read them all).
async fn publish_raw(addr: &str, subject: &str, n: u64, size: usize) -> Res<f64> {
    let mut publisher = crate::wsraw::Conn::open(addr, crate::wsraw::Transport::Tcp).await?;
    let start = publisher.publish(subject, n, size).await?;
    Ok(n as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// 1 pub -> 1 sub with our own client on both ends ([`crate::wsraw`] over plain TCP), 16 B
/// and 1 KiB, twice as many messages as the async-nats rows (this client is several times
/// faster; four times took a quarter of the scenario's time for intervals no narrower),
/// each with the server's CPU per delivered message. async-nats' two tasks
/// spend about 150 ns per message each, more than the edgebus server does, so the
/// async-nats rows measure the client; these leave the server the limit (issue 16: "make
/// the client faster rather than the target smaller"). Every message is checked.
async fn pubsub_raw(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let addr = server.url.trim_start_matches("nats://");
    let runs: [(&'static str, &'static str, u64, usize, &str); 2] = [
        ("pubsub16_raw", "pubsub16_raw_cpu", sz.pubsub16 * 2, 16, "psraw16"),
        ("pubsub1k_raw", "pubsub1k_raw_cpu", sz.pubsub1k * 2, 1024, "psraw1k"),
    ];
    for (rate_key, cpu_key, n, size, tag) in runs {
        let before = server.cpu_times()?;
        let subject = format!("bench.{tag}.{round}");
        let r = crate::wsraw::pubsub(addr, crate::wsraw::Transport::Tcp, &subject, n, size).await?;
        let cpu = server.cpu_times()?.since(&before);
        out.push((rate_key, r.rate));
        out.push((cpu_key, cpu as f64 / n as f64));
    }
    Ok(())
}

/// Answers every request on `subject` with a 16-byte reply, on its own connection.
pub(crate) async fn responder(url: &str, subject: &str) -> Res<(Client, tokio::task::JoinHandle<()>)> {
    let client = connect(url).await?;
    let mut sub = client.subscribe(subject.to_string()).await?;
    round_trip(&client).await?;
    let c = client.clone();
    let body = payload(16);
    let task = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                if c.publish(reply, body.clone()).await.is_err() {
                    break;
                }
            }
        }
    });
    Ok((client, task))
}

/// (5a) Sequential requests; latency percentiles in microseconds.
async fn request_latency(url: &str, subject: &str, n: u64) -> Res<(f64, f64, f64)> {
    let (_resp, task) = responder(url, subject).await?;
    let client = connect(url).await?;
    let subject = Subject::from(subject);
    let body = payload(16);
    for _ in 0..100 {
        client.request(subject.clone(), body.clone()).await?;
    }
    let mut lat = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = Instant::now();
        client.request(subject.clone(), body.clone()).await?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    task.abort();
    lat.sort_by(f64::total_cmp);
    Ok((percentile(&lat, 0.50), percentile(&lat, 0.90), percentile(&lat, 0.99)))
}

/// (5b) `requesters` connections each doing `each` sequential requests at once.
async fn request_throughput(url: &str, subject: &str, requesters: usize, each: u64) -> Res<f64> {
    let (_resp, task) = responder(url, subject).await?;
    let mut clients = Vec::new();
    for _ in 0..requesters {
        let c = connect(url).await?;
        c.request(subject.to_string(), payload(16)).await?;
        clients.push(c);
    }
    let start = Instant::now();
    let mut jobs = Vec::new();
    for c in clients {
        let subject = Subject::from(subject);
        jobs.push(tokio::spawn(async move {
            let body = payload(16);
            for _ in 0..each {
                c.request(subject.clone(), body.clone()).await?;
            }
            Ok::<(), async_nats::RequestError>(())
        }));
    }
    for j in jobs {
        j.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    task.abort();
    Ok((requesters as u64 * each) as f64 / secs)
}

/// Publishes `n` messages keeping up to `window` acks outstanding.
async fn publish_window(js: &jetstream::Context, subject: &Subject, body: &Bytes, n: u64, window: usize) -> Res<()> {
    let mut inflight = FuturesUnordered::new();
    for _ in 0..n {
        if inflight.len() >= window {
            if let Some(r) = inflight.next().await {
                r?;
            }
        }
        let ack = js.publish(subject.clone(), body.clone()).await?;
        inflight.push(ack.into_future());
    }
    while let Some(r) = inflight.next().await {
        r?;
    }
    Ok(())
}

/// (6) JetStream publish with acks, 128-byte messages, to a fresh stream: sequential
/// (each ack awaited) and with 256 acks in flight.
async fn js_publish(url: &str, storage: stream::StorageType, round: usize, sz: &Sizes) -> Res<(f64, f64)> {
    js_publish_counts(url, storage, round, sz.js_seq, sz.js_par).await
}

/// [`js_publish`] with its own message counts (`seq` sequential, then `par` with 256 in flight).
pub(crate) async fn js_publish_counts(
    url: &str,
    storage: stream::StorageType,
    round: usize,
    seq_n: u64,
    par_n: u64,
) -> Res<(f64, f64)> {
    let tag = match storage {
        stream::StorageType::File => "FILE",
        stream::StorageType::Memory => "MEM",
    };
    let js = jetstream::new(connect(url).await?);
    let name = format!("BENCH_{tag}_{round}");
    let subject = Subject::from(format!("js.{tag}.{round}"));
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![subject.to_string()],
        storage,
        ..Default::default()
    })
    .await?;
    let body = payload(128);
    let start = Instant::now();
    for i in 0..seq_n {
        let ack = js.publish(subject.clone(), body.clone()).await?.await?;
        if ack.sequence != i + 1 || ack.duplicate {
            return Err(format!("{name}: integrity: publish {} acked as sequence {}", i + 1, ack.sequence).into());
        }
    }
    let seq = seq_n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    publish_window(&js, &subject, &body, par_n, 256).await?;
    let par = par_n as f64 / start.elapsed().as_secs_f64();
    // every publish was acked; the stream must hold exactly that many
    let stored = js.get_stream_no_info(&name).await?.get_info().await?.state.messages;
    if stored != seq_n + par_n {
        return Err(format!("{name}: {stored} messages stored, {} acked", seq_n + par_n).into());
    }
    js.delete_stream(&name).await?;
    Ok((seq, par))
}

/// (7) A fresh durable pull consumer (explicit ack) drains the 200k-message file stream in
/// fetches of 500, acking each message; the clock stops when the server reports no ack
/// pending, so acks are part of the measure.
async fn pull_fetch(url: &str, state: &mut ServerState, round: usize, n: u64) -> Res<f64> {
    let js = jetstream::new(connect(url).await?);
    let subject = Subject::from("pull.data");
    if !state.pull_filled {
        let _ = js.delete_stream("BENCH_PULL").await;
        js.create_stream(stream::Config {
            name: "BENCH_PULL".into(),
            subjects: vec![subject.to_string()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
        publish_window(&js, &subject, &payload(128), n, 256).await?;
        state.pull_filled = true;
    }
    // `get_stream_no_info`: async-nats' `get_stream` sends the body `null` to
    // STREAM.INFO, which nats-server accepts and edgebus (today) rejects.
    let stream = js.get_stream_no_info("BENCH_PULL").await?;
    let durable = format!("C{round}");
    let mut consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await?;
    let start = Instant::now();
    let mut got = 0u64;
    let mut empty = 0;
    while got < n {
        let mut batch = consumer.fetch().max_messages(500).messages().await?;
        let before = got;
        while let Some(msg) = batch.next().await {
            let msg = msg?;
            // a fresh consumer over 1..=n must hand out each stream sequence once, in order
            let seq = msg.info()?.stream_sequence;
            if seq != got + 1 {
                return Err(format!("pull: integrity: stream sequence {seq} where {} was due", got + 1).into());
            }
            msg.ack().await?;
            got += 1;
        }
        if got == before {
            empty += 1;
            if empty > 200 {
                return Err(format!("pull: stuck at {got} of {n}").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.info().await?.num_ack_pending > 0 {
        if Instant::now() > deadline {
            return Err("pull: acks still pending after 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    stream.delete_consumer(&durable).await?;
    Ok(rate)
}

/// (8) KV put (each awaits its ack) and get, sequentially, 128-byte values, file storage.
async fn kv_put_get(url: &str, round: usize, n: u64) -> Res<(f64, f64)> {
    let js = jetstream::new(connect(url).await?);
    let bucket = format!("BENCH_{round}");
    let store = js
        .create_key_value(kv::Config {
            bucket: bucket.clone(),
            history: 1,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let keys: Vec<String> = (0..n).map(|i| format!("key.{i}")).collect();
    let body = payload(128);
    let start = Instant::now();
    for k in &keys {
        store.put(k, body.clone()).await?;
    }
    let put = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for k in &keys {
        if store.get(k.as_str()).await?.as_ref() != Some(&body) {
            return Err(format!("kv: integrity: {k} missing or not the value put").into());
        }
    }
    let get = n as f64 / start.elapsed().as_secs_f64();
    js.delete_key_value(&bucket).await?;
    Ok((put, get))
}

/// (9) Cost growth. Each round: pub/sub with no other subscriptions, then half the 100k
/// subscriptions added as literals (`noise.lit.<i>`) and half as wildcards (`noise.<i>.*`
/// and `noise.<i>.>`) on a connection of their own (each half timed to the PONG), pub/sub
/// with them all present and the server's RSS, then every one unsubscribed (a round trip on
/// that connection confirms the server has removed them) and pub/sub without them again.
/// Then [`CG_PAIRS`]` - 1` more times the same subscriptions are added and removed by our own
/// client in one write each way (a PONG confirms each), each time with a pub/sub run with
/// them and one after. Each "with" run is compared to the mean of the two "without" runs
/// around it, and the round's figure is the median of those pairs: runs move ±10% from one
/// to the next, so two long sequential phases let drift and warm-up decide the ratio
/// (nats-server's came out 0.95 that way as often as edgebus's), and adjacent runs paired
/// cancel most of it.
/// The runs use our raw TCP client, which leaves the server the limit (as `pubsub_raw`):
/// with async-nats the client set the rate, and the ratio came out 0.97 for both servers
/// while their CPU per message showed no cost, so it measured the load client.
/// The add-rate rows are the first pair's, through async-nats as an application adds them.
async fn cost_growth(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let url = server.url.as_str();
    let addr = url.trim_start_matches("nats://");
    let n = sz.cg_msgs;
    let measured = |tag: String| async move {
        let before = server.cpu_times()?;
        let subject = format!("bench.cg{tag}.{round}");
        let rate = crate::wsraw::pubsub(addr, crate::wsraw::Transport::Tcp, &subject, n, 16).await?.rate;
        let cpu = server.cpu_times()?.since(&before) as f64 / n as f64;
        Res::Ok((rate, cpu))
    };
    let half = sz.cg_subs / 2;
    let subject = move |i: u64| match i.checked_sub(half) {
        None => format!("noise.lit.{i}"),
        Some(j) if j % 2 == 0 => format!("noise.{j}.*"),
        Some(j) => format!("noise.{j}.>"),
    };
    let mut without = vec![measured("0.0".into()).await?];
    let mut with = Vec::with_capacity(CG_PAIRS);
    let holder = connect(url).await?;
    let rss_before = server.rss_kib()? as f64 / 1024.0;
    let mut subs = Vec::with_capacity(sz.cg_subs as usize);
    let start = Instant::now();
    for i in 0..half {
        subs.push(holder.subscribe(subject(i)).await?);
    }
    round_trip(&holder).await?;
    out.push(("subs_lit", half as f64 / start.elapsed().as_secs_f64()));
    let start = Instant::now();
    for i in half..sz.cg_subs {
        subs.push(holder.subscribe(subject(i)).await?);
    }
    round_trip(&holder).await?;
    out.push(("subs_wc", (sz.cg_subs - half) as f64 / start.elapsed().as_secs_f64()));
    with.push(measured("1.0".into()).await?);
    let rss = server.rss_kib()? as f64 / 1024.0;
    // UNSUBs go out on the holder's connection in order, so the answer to a request sent
    // after them means the server has processed (removed) every one. The subscribers are
    // dropped only after the last run: each drop spawns a task on this client.
    for sub in &mut subs {
        sub.unsubscribe().await?;
    }
    round_trip(&holder).await?;
    without.push(measured("0.1".into()).await?);
    let mut raw = crate::wsraw::Conn::open(addr, crate::wsraw::Transport::Tcp).await?;
    for k in 1..CG_PAIRS {
        let held = raw.hold((0..sz.cg_subs).map(subject)).await?;
        with.push(measured(format!("1.{k}")).await?);
        raw.release(held).await?;
        without.push(measured(format!("0.{}", k + 1)).await?);
    }
    let (rate, cpu) = (|r: &(f64, f64)| r.0, |r: &(f64, f64)| r.1);
    let mean = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    // each with-run against the without-runs on either side: (with, mean without)
    let pairs = |f: fn(&(f64, f64)) -> f64| {
        with.iter().enumerate().map(|(k, w)| (f(w), (f(&without[k]) + f(&without[k + 1])) / 2.0)).collect::<Vec<_>>()
    };
    let keep: Vec<f64> = pairs(rate).iter().map(|(w, none)| w / none).collect();
    let cpu_keep: Vec<f64> = pairs(cpu).iter().map(|(w, none)| none / w).collect();
    out.extend([("cg_none", mean(&without, rate)), ("cg_with", mean(&with, rate)), ("cg_rss", rss)]);
    out.push(("cg_keep", crate::stats::median(&keep)));
    out.extend([("cg_cpu_none", mean(&without, cpu)), ("cg_cpu_with", mean(&with, cpu))]);
    out.push(("cg_cpu_keep", crate::stats::median(&cpu_keep)));
    // The absolute figure carries whatever the earlier scenarios left in the heap; the
    // growth is what the subscriptions themselves cost. First round only: later rounds
    // reuse the memory the previous round's subscriptions freed.
    if round == 0 {
        out.push(("cg_rss_growth", rss - rss_before));
    }
    drop(raw);
    drop(subs);
    drop(holder);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// How many with/without pairs the cost-growth scenario measures per round.
const CG_PAIRS: usize = 5;
