//! Hosts the sans-IO JetStream engine: a dedicated thread that receives the messages of the
//! engine's subscriptions (as an in-process client of the bus), feeds it the clock, and
//! publishes what it returns through the same routing as any client.
//!
//! A thread rather than a task because the engine does blocking file I/O (appends, fsync
//! under `sync_interval: always`) and must never stall the runtime's workers.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgebus_core::jetstream::store::{MemStorage, Storage};
use edgebus_core::jetstream::{JetStream, SubChange};
use tracing::{info, warn};

use crate::client::{Client, InternalMsg, Router, SubRef};
use crate::server::Shared;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// What woke the engine thread.
enum Input {
    Msg(InternalMsg),
    Stop,
}

/// The running engine: send `stop` to flush its state and end it.
pub struct Handle {
    stop: std::sync::mpsc::Sender<InternalMsg>,
    thread: Option<JoinHandle<()>>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Handle {
    /// Flushes consumer state and stream metadata, and waits for the thread to end.
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::Release);
        // an empty message wakes the thread so it sees the flag
        let _ = self.stop.send(InternalMsg {
            subject: bytes::Bytes::new(),
            reply: None,
            headers: None,
            payload: bytes::Bytes::new(),
        });
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts JetStream on `file` storage (memory streams always live in memory) and returns
/// once it has recovered its streams and subscribed to its subjects.
pub fn start(shared: Arc<Shared>, file: Box<dyn Storage + Send>) -> std::io::Result<Handle> {
    let (ready_tx, ready_rx) = channel::<()>();
    let (tx, rx) = channel::<InternalMsg>();
    let id = shared.next_cid.fetch_add(1, Ordering::Relaxed);
    let client = Arc::new(Client::internal(id, tx.clone()));
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stopping.clone();
    let thread = std::thread::Builder::new().name("jetstream".into()).spawn(move || {
        run(shared, client, rx, file, flag, ready_tx);
    })?;
    // A recv error means the thread ended early; the caller sees JetStream as started but
    // every request then gets no responders, which the log explains.
    let _ = ready_rx.recv();
    Ok(Handle { stop: tx, thread: Some(thread), stopping })
}

fn run(
    shared: Arc<Shared>,
    client: Arc<Client>,
    rx: Receiver<InternalMsg>,
    file: Box<dyn Storage + Send>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let (mut engine, warnings) = JetStream::new(file, Box::new(MemStorage), now(), fastrand::u64(..));
    for w in warnings {
        warn!("JetStream: {w}");
    }
    info!(streams = engine.stream_count(), consumers = engine.consumer_count(), "JetStream started");
    let mut router = Router::new(&shared);
    let mut subs: HashMap<String, SubRef> = HashMap::new();
    let interest_shared = shared.clone();
    let interest = move |subject: &[u8]| !interest_shared.match_subject(subject).1.is_empty();
    apply(&shared, &client, &mut engine, &mut subs, &mut router);
    let _ = ready.send(());
    let mut next_stats = std::time::Instant::now();
    loop {
        let timeout = engine.next_deadline(now()).map_or(Duration::from_secs(1), |d| {
            Duration::from_nanos(d.saturating_sub(now())).min(Duration::from_secs(1))
        });
        let input = match rx.recv_timeout(timeout) {
            Ok(m) => Some(Input::Msg(m)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Input::Stop),
        };
        if stopping.load(Ordering::Acquire) {
            break;
        }
        // Timers first: a pull request that expired before this message arrived must end
        // with its 408 rather than take the message.
        let t = now();
        if engine.next_deadline(t).is_some_and(|d| d <= t) {
            engine.handle_timeout(t, &interest);
        }
        match input {
            Some(Input::Stop) => break,
            Some(Input::Msg(m)) => {
                engine.handle_msg(t, &m.subject, m.reply.as_deref(), m.headers.as_deref(), &m.payload, &interest);
                // take whatever else is already queued before publishing, so acks batch up
                for _ in 0..256 {
                    match rx.try_recv() {
                        Ok(m) if !m.subject.is_empty() => engine.handle_msg(
                            t,
                            &m.subject,
                            m.reply.as_deref(),
                            m.headers.as_deref(),
                            &m.payload,
                            &interest,
                        ),
                        _ => break,
                    }
                }
            }
            None => {}
        }
        apply(&shared, &client, &mut engine, &mut subs, &mut router);
        if std::time::Instant::now() >= next_stats {
            *shared.jetstream_stats.lock() = engine.stats();
            next_stats = std::time::Instant::now() + Duration::from_millis(250);
        }
    }
    engine.flush();
    for sub in subs.values() {
        client.unsubscribe_internal(&shared, sub);
    }
    info!("JetStream stopped");
}

/// Applies subscription changes and publishes the engine's output.
fn apply(
    shared: &Shared,
    client: &Arc<Client>,
    engine: &mut JetStream,
    subs: &mut HashMap<String, SubRef>,
    router: &mut Router,
) {
    for change in engine.subscriptions() {
        match change {
            SubChange::Add(s) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = subs.entry(s) {
                    if let Some(sub) = client.subscribe_internal(shared, slot.key()) {
                        slot.insert(sub);
                    }
                }
            }
            SubChange::Remove(s) => {
                if let Some(sub) = subs.remove(&s) {
                    client.unsubscribe_internal(shared, &sub);
                }
            }
        }
    }
    let out = engine.take_outbound();
    if out.is_empty() {
        return;
    }
    let mut router_msg = Vec::new();
    for o in out {
        router_msg.clear();
        let header_len = o.headers.as_ref().map(|h| h.len());
        if let Some(h) = &o.headers {
            router_msg.extend_from_slice(h);
        }
        router_msg.extend_from_slice(&o.payload);
        router.route(shared, client.id, false, &o.route, &o.subject, o.reply.as_deref(), header_len, &router_msg);
    }
}
