//! Hosts the sans-IO JetStream engine as an in-process client of the bus: it receives the
//! messages of the engine's subscriptions, feeds it the clock, and publishes what it returns
//! through the same routing as any client.
//!
//! A message is handled in one of two places. When nothing is waiting for the engine, the
//! publishing connection's own task handles it on the spot, under the engine's lock: a
//! sequential request (a KV get, a publish awaiting its ack) then costs no thread hop, which
//! is most of its latency. When the engine is busy, or messages are already queued, it goes
//! down a channel to the engine's thread, which takes whatever has queued up in one go so
//! acks batch under load. Messages are never reordered: the inline path is taken only when
//! the queue is empty. The thread also runs the timers. It is a thread rather than a task
//! because the engine does blocking file I/O (appends, fsync under `sync_interval: always`).
//! With `sync_interval: always` every message goes to the thread, since a step there fsyncs
//! and must not hold up the runtime thread of a connection; otherwise an inline step
//! appends with one `write(2)` into the page cache. That is also what makes group commit
//! work: publishes that arrive while a step fsyncs queue up, the next step takes them all,
//! and the engine syncs once for the whole step before any of their acks goes out.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgebus_core::jetstream::consumer::ACK_PREFIX;
use edgebus_core::jetstream::host::{EngineBus, EngineHost, Inbound};
use edgebus_core::jetstream::limits::StoreLimits;
use edgebus_core::jetstream::store::{MemStorage, Storage};
use edgebus_core::jetstream::{JetStream, Outbound};
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::accounts::Account;
use crate::client::{Client, SubRef};
use crate::router::{InternalMsg, InternalSink, Router};
use crate::server::Shared;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The engine and what it needs to publish, behind one lock.
struct State {
    host: EngineHost<SubRef>,
    router: Router,
    /// Set once the engine has flushed for shutdown: nothing may touch it after that.
    stopped: bool,
}

/// The JetStream host, shared by the engine thread and every connection that routes to it.
struct Host {
    shared: Arc<Shared>,
    /// The account whose JetStream this is: its subjects and its interest.
    account: Arc<Account>,
    client: Arc<Client>,
    state: Mutex<Option<State>>,
    /// Messages sent down the channel and not yet handled.
    queued: AtomicUsize,
    tx: Mutex<Sender<InternalMsg>>,
    /// When the thread plans to wake for timers (ns since the epoch); an inline request that
    /// brings a deadline forward wakes it early.
    wake_at: AtomicU64,
    stopping: AtomicBool,
    /// Whether a publishing connection may step the engine itself. Not with `sync_interval:
    /// always`: the step would then fsync on that connection's task, stalling every other
    /// connection its runtime thread serves for the length of a disk flush.
    inline: bool,
}

/// The running engine: `stop` flushes its state and ends it.
pub struct Handle {
    host: Arc<Host>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    /// Flushes consumer state and stream metadata, and waits for the thread to end.
    pub fn stop(mut self) {
        self.host.stopping.store(true, Ordering::Release);
        self.host.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts JetStream on `file` storage (memory streams always live in memory) and returns
/// once it has recovered its streams and subscribed to its subjects.
pub fn start(
    shared: Arc<Shared>,
    account: Arc<Account>,
    limits: StoreLimits,
    file: Box<dyn Storage + Send>,
) -> std::io::Result<Handle> {
    let (ready_tx, ready_rx) = channel::<()>();
    let (tx, rx) = channel::<InternalMsg>();
    let id = shared.next_cid.fetch_add(1, Ordering::Relaxed);
    let host = Arc::new_cyclic(|weak: &Weak<Host>| {
        let sink: Weak<dyn InternalSink> = weak.clone();
        Host {
            shared: shared.clone(),
            account,
            client: Arc::new(Client::internal(id, sink)),
            state: Mutex::new(None),
            queued: AtomicUsize::new(0),
            tx: Mutex::new(tx),
            wake_at: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            inline: shared.opts.jetstream.sync_interval != crate::options::SyncInterval::Always,
        }
    });
    let weak = Arc::downgrade(&host);
    let _ = host.account.js_wake.set(Box::new(move || {
        if let Some(h) = weak.upgrade() {
            h.wake();
        }
    }));
    let h = host.clone();
    let thread = std::thread::Builder::new().name("jetstream".into()).spawn(move || {
        run(&h, rx, file, limits, ready_tx);
    })?;
    // A recv error means the thread ended early; the caller sees JetStream as started but
    // every request then gets no responders, which the log explains.
    let _ = ready_rx.recv();
    Ok(Handle { host, thread: Some(thread) })
}

impl InternalSink for Host {
    fn deliver(&self, subject: &[u8], reply: Option<&[u8]>, header_len: Option<usize>, message: &[u8]) -> bool {
        // Acks go to the thread: nobody waits on them, and under load they arrive in runs
        // the thread takes in one go, off the publishing connection's task.
        let inline = self.inline && !subject.starts_with(ACK_PREFIX);
        if inline && self.queued.load(Ordering::Acquire) == 0 && !self.stopping.load(Ordering::Acquire) {
            // try_lock: the engine thread may hold it, and so may this very thread when the
            // engine's own output is routed back to it; both cases queue instead.
            if let Some(mut guard) = self.state.try_lock() {
                if let Some(st) = guard.as_mut().filter(|st| !st.stopped) {
                    if self.queued.load(Ordering::Acquire) == 0 {
                        let t = now();
                        let (headers, payload) = match header_len {
                            Some(h) if h <= message.len() => (Some(&message[..h]), &message[h..]),
                            _ => (None, message),
                        };
                        self.step(st, t, [Inbound { subject, reply, headers, payload }]);
                        let next = st.host.poll_timeout(t);
                        drop(guard);
                        if next.is_some_and(|d| d < self.wake_at.load(Ordering::Acquire)) {
                            self.wake();
                        }
                        return true;
                    }
                }
            }
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        let msg = InternalMsg::copy_of(subject, reply, header_len, message);
        if self.tx.lock().send(msg).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }
}

impl Host {
    /// Wakes the thread without giving it a message (an empty subject).
    fn wake(&self) {
        let _ = self.tx.lock().send(InternalMsg {
            subject: bytes::Bytes::new(),
            reply: None,
            headers: None,
            payload: bytes::Bytes::new(),
        });
    }

    /// The engine's view of the server's bus: subscriptions of the host's internal client.
    fn bus(&self) -> ServerBus<'_> {
        ServerBus { account: &self.account, client: &self.client }
    }

    /// One engine step (see [`EngineHost::step`]), then its output published.
    fn step<'a>(&self, st: &mut State, t: u64, input: impl IntoIterator<Item = Inbound<'a>>) {
        if self.account.interest_news.swap(false, Ordering::AcqRel) {
            st.host.interest_appeared();
        }
        let out = st.host.step(t, &mut self.bus(), input);
        self.account.push_waiting.store(st.host.awaits_interest(), Ordering::Release);
        self.publish(st, out);
    }

    /// Routes the engine's output like any client's publishes.
    fn publish(&self, st: &mut State, out: Vec<Outbound>) {
        let mut message = Vec::new();
        for o in out {
            message.clear();
            let header_len = o.headers.as_ref().map(|h| h.len());
            if let Some(h) = &o.headers {
                message.extend_from_slice(h);
            }
            message.extend_from_slice(&o.payload);
            st.router.route(
                &self.shared,
                self.client.id,
                false,
                &o.route,
                &o.subject,
                o.reply.as_deref(),
                header_len,
                &message,
            );
        }
        st.router.wake_writers();
    }
}

/// The engine's subscriptions are the internal client's; interest is the whole trie's.
struct ServerBus<'a> {
    account: &'a Arc<Account>,
    client: &'a Arc<Client>,
}

impl EngineBus for ServerBus<'_> {
    type Sub = SubRef;

    fn subscribe(&mut self, subject: &str) -> Option<SubRef> {
        self.client.subscribe_internal(self.account, subject)
    }

    fn unsubscribe(&mut self, sub: SubRef) {
        self.client.unsubscribe_internal(&sub);
    }

    fn has_interest(&self, subject: &[u8]) -> bool {
        !self.account.match_subject(subject).1.is_empty()
    }
}

fn run(host: &Host, rx: Receiver<InternalMsg>, file: Box<dyn Storage + Send>, limits: StoreLimits, ready: Sender<()>) {
    let (mut engine, warnings) = JetStream::new(file, Box::new(MemStorage), now(), fastrand::u64(..));
    engine.set_limits(limits);
    if let Some(domain) = &host.shared.opts.jetstream.domain {
        engine.set_domain(domain);
    }
    for w in warnings {
        warn!("JetStream: {w}");
    }
    info!(
        account = %host.account.name,
        streams = engine.stream_count(),
        consumers = engine.consumer_count(),
        "JetStream started"
    );
    *host.account.jetstream_stats.lock() = Some(engine.stats());
    {
        let mut guard = host.state.lock();
        let engine = EngineHost::new(engine, &mut host.bus());
        let st = guard.insert(State {
            host: engine,
            router: Router::new(&host.shared, host.account.clone()),
            stopped: false,
        });
        host.step(st, now(), []);
    }
    let _ = ready.send(());
    let mut next_stats = std::time::Instant::now();
    let mut batch: Vec<InternalMsg> = Vec::new();
    loop {
        let t = now();
        let deadline = host.state.lock().as_ref().and_then(|st| st.host.poll_timeout(t));
        let timeout = deadline
            .map_or(Duration::from_secs(1), |d| Duration::from_nanos(d.saturating_sub(t)).min(Duration::from_secs(1)));
        host.wake_at.store(t + timeout.as_nanos() as u64, Ordering::Release);
        let first = match rx.recv_timeout(timeout) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if host.stopping.load(Ordering::Acquire) {
            break;
        }
        let mut guard = host.state.lock();
        let Some(st) = guard.as_mut() else { break };
        // the first message, then up to 256 more already queued, in one step, so acks batch up
        batch.clear();
        batch.extend(first);
        while batch.len() <= 256 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        // an empty subject only wakes the thread (see `Host::wake`)
        let input = batch.iter().filter(|m| !m.subject.is_empty());
        let taken = input.clone().count();
        host.step(st, now(), input.map(InternalMsg::inbound));
        host.queued.fetch_sub(taken, Ordering::AcqRel);
        if std::time::Instant::now() >= next_stats {
            *host.account.jetstream_stats.lock() = Some(st.host.engine().stats());
            next_stats = std::time::Instant::now() + Duration::from_millis(250);
        }
    }
    let mut guard = host.state.lock();
    if let Some(st) = guard.as_mut() {
        st.host.shutdown(&mut host.bus());
        st.stopped = true;
    }
    info!("JetStream stopped");
}
