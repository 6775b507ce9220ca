//! The in-page runtime: the core's broker and JetStream engine on the page's one thread.
//!
//! The page's API is one local connection of the broker, the engine another (an in-process
//! client, as the server hosts it). Every entry point does its work synchronously and then
//! calls [`after`]: the engine is fed what reached it until the bus is quiet, deliveries for
//! the page are dispatched, the engine's next deadline is armed (gloo-timers), and — with
//! IndexedDB storage — a commit of the storage journal is started.
//!
//! **Acks wait for durability.** Whatever the engine says while its storage journal has
//! uncommitted changes (publish acks, KV put replies, stream creations) is held, tagged with
//! the commit that will make those changes durable, and only routed once that IndexedDB
//! transaction committed. Later output queues behind held output, so order is kept.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
#[cfg(feature = "jetstream")]
use std::rc::Weak;

use bytes::Bytes;
#[cfg(feature = "jetstream")]
use edgebus_core::broker::LocalBus;
use edgebus_core::broker::{Broker, BrokerConfig, ConnId, Delivery, PublishError};
#[cfg(feature = "jetstream")]
use edgebus_core::jetstream::host::EngineHost;
#[cfg(feature = "jetstream")]
use edgebus_core::jetstream::{JetStream, Outbound};
use edgebus_core::proto::{Limits, ServerInfo};
#[cfg(feature = "jetstream")]
use futures_channel::mpsc;
#[cfg(feature = "jetstream")]
use futures_channel::oneshot;
use gloo_timers::future::TimeoutFuture;
use hashbrown::HashMap;
use wasm_bindgen::JsValue;

use crate::disk::Disk;
use crate::error::BusError;
#[cfg(feature = "jetstream")]
use crate::idb::{self, SharedJournal};

#[cfg(feature = "jetstream")]
mod direct;
mod dispatch;
#[cfg(feature = "jetstream")]
mod refused;
mod requests;

#[cfg(feature = "jetstream")]
pub use direct::{durable, engine_call, publish_direct};
pub use dispatch::dispatch;
use requests::Requests;
#[cfg(feature = "jetstream")]
pub use requests::{collect, request_many, subscribe_chan, Collect};
pub use requests::{request, status_of};

/// Nanoseconds since the Unix epoch, from the page's clock.
pub fn now_ns() -> u64 {
    js_sys::Date::now() as u64 * 1_000_000
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Who receives a page-side subscription's messages.
pub enum Handler {
    /// A JavaScript callback; dropped (released) with the subscription.
    Js { callback: js_sys::Function, kv: Option<String> },
    /// A Rust task (fetches, KV listings).
    /// (JetStream fetches and listings only: the core-only build links no channel code.)
    #[cfg(feature = "jetstream")]
    Chan(mpsc::UnboundedSender<Delivery>),
    /// The replies to every request of the page ([`Requests`]).
    Mux,
}

struct SubEntry {
    handler: Handler,
    /// Auto-unsubscribe after this many messages (0: never).
    max: u64,
    received: u64,
}

pub struct Inner {
    pub(crate) broker: Broker,
    page: ConnId,
    #[cfg(feature = "jetstream")]
    js_conn: ConnId,
    /// The JetStream engine on its local connection (`js_conn`).
    #[cfg(feature = "jetstream")]
    engine: EngineHost<u64>,
    /// The broker's subscription generation the engine last heard of ([`Inner::note_interest`]).
    #[cfg(feature = "jetstream")]
    subs_seen: u64,
    subs: HashMap<u64, SubEntry>,
    queue: VecDeque<Delivery>,
    dispatching: bool,
    requests: Requests,
    /// The last subject handed to JavaScript, as a JS string: a publisher repeating a
    /// subject would otherwise pay a UTF-8 decode per batch.
    subject_js: Option<(Bytes, JsValue)>,
    #[cfg(feature = "jetstream")]
    journal: Option<SharedJournal>,
    pub(crate) db: Option<Rc<Disk>>,
    /// This context's ownership of `db` ([`crate::lock`]), freed after `db` is closed.
    #[cfg(feature = "jetstream")]
    pub(crate) store_lock: Option<crate::lock::StoreLock>,
    #[cfg(feature = "jetstream")]
    committing: bool,
    /// Engine output waiting for the commit numbered by its tag.
    #[cfg(feature = "jetstream")]
    held: VecDeque<(u64, Outbound)>,
    /// The number the next commit will carry.
    #[cfg(feature = "jetstream")]
    open_batch: u64,
    #[cfg(feature = "jetstream")]
    idle_waiters: Vec<oneshot::Sender<()>>,
    /// Direct engine calls waiting for the commit numbered by their tag ([`engine_call`]).
    #[cfg(feature = "jetstream")]
    durable_waiters: Vec<(u64, oneshot::Sender<Result<(), BusError>>)>,
    #[cfg(feature = "jetstream")]
    timer: Option<u64>,
    #[cfg(feature = "jetstream")]
    timer_gen: u64,
    closed: bool,
    pub(crate) inbox_prefix: String,
    next_inbox: u64,
    /// The link to a server, if `connect` was called.
    pub(crate) link: Option<crate::socket::Link>,
    /// Sharing with the other tabs and workers of this name ([`crate::tabs`]).
    #[cfg(feature = "jetstream")]
    pub(crate) tabs: Option<crate::tabs::Hub>,
    pub(crate) name: String,
    pub(crate) storage: &'static str,
}

pub type Shared = Rc<RefCell<Inner>>;

/// A refused local publish, as the page sees it.
fn publish_error(subject: &str, e: PublishError) -> BusError {
    match e {
        PublishError::Subject(e) => BusError::BadSubject(format!("{subject}: {e}")),
        PublishError::MaxPayload { size, max } => BusError::MaxPayload { size, max },
    }
}

/// Checks that payload ends ascend and stay within `len` bytes of data.
fn check_ends(ends: &[u32], len: usize) -> Result<(), BusError> {
    let mut start = 0;
    for &end in ends {
        if end < start || end as usize > len {
            return Err(BusError::Invalid(format!("payload end {end} out of order or past the data")));
        }
        start = end;
    }
    Ok(())
}

pub(crate) fn random_token() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22).map(|_| ALPHABET[(js_sys::Math::random() * 62.0) as usize % 62] as char).collect()
}

impl Inner {
    /// Builds the bus. `db` + `journal` for IndexedDB storage (already loaded), else memory.
    pub fn new(
        name: &str,
        #[cfg(feature = "jetstream")] persisted: Option<(Disk, SharedJournal)>,
    ) -> (Inner, Vec<String>) {
        let info = ServerInfo {
            server_id: format!("EDGEBUS-PAGE-{}", random_token()),
            server_name: name.into(),
            version: edgebus_core::NATS_VERSION.into(),
            proto: 1,
            headers: true,
            max_payload: Limits::default().max_payload as i64,
            jetstream: cfg!(feature = "jetstream"),
            ..Default::default()
        };
        let config = BrokerConfig::open(info);
        let seed = (js_sys::Math::random() * u32::MAX as f64) as u64;
        let mut broker = Broker::new(config, seed);
        let page = broker.connect_local();
        #[cfg(feature = "jetstream")]
        let js_conn = broker.connect_local();
        #[cfg(feature = "jetstream")]
        let (db, journal) = match persisted {
            Some((db, journal)) => (Some(Rc::new(db)), Some(journal)),
            None => (None, None),
        };
        #[cfg(feature = "jetstream")]
        let file: Box<dyn edgebus_core::jetstream::store::Storage> = match &journal {
            Some(j) => Box::new(idb::IdbStorage::new(j.clone())),
            None => Box::new(edgebus_core::jetstream::store::MemStorage),
        };
        #[cfg(feature = "jetstream")]
        let (engine, warnings) = build_engine(&mut broker, js_conn, file, journal.as_ref(), seed);
        #[cfg(feature = "jetstream")]
        let storage = db.as_ref().map_or("memory", |d| d.kind().label());
        // core NATS only: nothing to store, no engine to warn
        #[cfg(not(feature = "jetstream"))]
        let (db, warnings, storage) = (None, Vec::new(), "memory");
        let inner = Inner {
            broker,
            page,
            #[cfg(feature = "jetstream")]
            js_conn,
            #[cfg(feature = "jetstream")]
            engine,
            #[cfg(feature = "jetstream")]
            subs_seen: 0,
            subs: HashMap::new(),
            queue: VecDeque::new(),
            dispatching: false,
            requests: Requests::default(),
            subject_js: None,
            #[cfg(feature = "jetstream")]
            journal,
            db,
            #[cfg(feature = "jetstream")]
            store_lock: None,
            #[cfg(feature = "jetstream")]
            committing: false,
            #[cfg(feature = "jetstream")]
            held: VecDeque::new(),
            #[cfg(feature = "jetstream")]
            open_batch: 1,
            #[cfg(feature = "jetstream")]
            idle_waiters: Vec::new(),
            #[cfg(feature = "jetstream")]
            durable_waiters: Vec::new(),
            #[cfg(feature = "jetstream")]
            timer: None,
            #[cfg(feature = "jetstream")]
            timer_gen: 0,
            closed: false,
            inbox_prefix: format!("_INBOX.{}", random_token()),
            next_inbox: 1,
            link: None,
            #[cfg(feature = "jetstream")]
            tabs: None,
            name: name.into(),
            storage,
        };
        (inner, warnings)
    }

    /// A client of another context's bus ([`crate::tabs`]) has no store: its engine leaves
    /// the broker, so `$JS.API` requests reach the leader's engine through the link.
    #[cfg(feature = "jetstream")]
    pub(crate) fn detach_engine(&mut self, storage: &'static str) {
        self.broker.disconnect(self.js_conn);
        self.storage = storage;
    }

    /// This context takes over the store (it became the leader): a new engine over it.
    #[cfg(feature = "jetstream")]
    pub(crate) fn attach_store(
        &mut self,
        db: Disk,
        journal: SharedJournal,
        lock: crate::lock::StoreLock,
    ) -> Vec<String> {
        self.broker.disconnect(self.js_conn);
        self.js_conn = self.broker.connect_local();
        let seed = (js_sys::Math::random() * u32::MAX as f64) as u64;
        let file = Box::new(idb::IdbStorage::new(journal.clone()));
        let (engine, warnings) = build_engine(&mut self.broker, self.js_conn, file, Some(&journal), seed);
        self.engine = engine;
        self.journal = Some(journal);
        self.db = Some(Rc::new(db));
        self.store_lock = Some(lock);
        warnings
    }

    /// Hands the engine what this context published as a client and the old leader never
    /// confirmed (it just became the leader): a stream keeps them, and their `Nats-Msg-Id`
    /// lets it drop any the old leader had stored. Only the engine sees them: the page's
    /// subscribers got them when they were published.
    #[cfg(feature = "jetstream")]
    pub(crate) fn feed_engine(&mut self, entries: &[edgebus_core::link::Entry]) {
        let input = entries.iter().map(|e| edgebus_core::jetstream::host::Inbound {
            subject: &e.subject,
            reply: e.reply.as_deref(),
            headers: Some(&e.headers),
            payload: &e.payload,
        });
        let out = self.engine.step(now_ns(), &mut LocalBus { broker: &mut self.broker, conn: self.js_conn }, input);
        self.emit(out);
    }

    pub(crate) fn check_open(&self) -> Result<(), BusError> {
        if self.closed {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }

    pub fn new_inbox(&mut self) -> String {
        let n = self.next_inbox;
        self.next_inbox += 1;
        format!("{}.{n}", self.inbox_prefix)
    }

    pub fn publish(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), BusError> {
        self.check_open()?;
        self.broker
            .publish_client(self.page, subject.as_bytes(), reply.map(str::as_bytes), headers, payload)
            .map_err(|e| publish_error(subject, e))?;
        Ok(())
    }

    /// Publishes `ends.len()` messages on `subject`: payload `i` is `data[ends[i-1]..ends[i]]`.
    /// Routed one by one, in order, exactly as that many [`Inner::publish`] calls; the engine
    /// and the page's subscribers see them after the last one (one pump, one dispatch).
    pub fn publish_many(&mut self, subject: &str, data: Vec<u8>, ends: &[u32]) -> Result<(), BusError> {
        self.check_open()?;
        check_ends(ends, data.len())?;
        self.broker
            .publish_local_batch(self.page, subject.as_bytes(), &Bytes::from(data), ends)
            .map_err(|e| publish_error(subject, e))?;
        Ok(())
    }

    /// Publishes messages on several subjects in one call (the package's queue of plain
    /// publishes, see `web/src/pubqueue.ts`): `subjects` holds one subject per run, separated
    /// by spaces (a valid subject has none); run `r` is messages `runs[r-1]..runs[r]`, payload
    /// `i` is `data[ends[i-1]..ends[i]]`. The same as one [`Inner::publish`] per message, in
    /// order.
    pub fn publish_runs(&mut self, subjects: &str, runs: &[u32], data: Vec<u8>, ends: &[u32]) -> Result<(), BusError> {
        self.check_open()?;
        check_ends(ends, data.len())?;
        if subjects.split(' ').count() != runs.len() {
            return Err(BusError::Invalid("publishRuns: one subject per run".into()));
        }
        let data = Bytes::from(data);
        let (mut first, mut base) = (0usize, 0u32);
        for (subject, &run_end) in subjects.split(' ').zip(runs) {
            let Some(run) = ends.get(first..run_end as usize) else {
                return Err(BusError::Invalid(format!(
                    "publishRuns: run end {run_end} out of order or past the messages"
                )));
            };
            let last = run.last().copied().unwrap_or(base);
            let rebased: Vec<u32> = run.iter().map(|e| e - base).collect();
            self.broker
                .publish_local_batch(self.page, subject.as_bytes(), &data.slice(base as usize..last as usize), &rebased)
                .map_err(|e| publish_error(subject, e))?;
            (first, base) = (run_end as usize, last);
        }
        Ok(())
    }

    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>, handler: Handler) -> Result<u64, BusError> {
        self.check_open()?;
        let sid = self
            .broker
            .subscribe_local(self.page, subject.as_bytes(), queue.map(str::as_bytes))
            .map_err(|e| BusError::BadSubject(format!("{subject}: {e}")))?;
        self.subs.insert(sid, SubEntry { handler, max: 0, received: 0 });
        self.mirror(sid, Some(subject));
        Ok(sid)
    }

    /// A client context's link to the leader subscribes there what the page subscribes
    /// here (`None`: the subscription `sid` ended), so only what this context wants crosses.
    fn mirror(&mut self, sid: u64, subject: Option<&str>) {
        #[cfg(feature = "jetstream")]
        if let Some(l) = self.link.as_mut().filter(|l| l.is_tab()) {
            l.mirror(&mut self.broker, sid, subject);
        }
        // the core-only build has no tabs, so no link to a leader
        #[cfg(not(feature = "jetstream"))]
        let _ = (sid, subject);
    }

    /// Ends a subscription now (`max == 0`) or after `max` messages in total; its handler is
    /// dropped with it.
    pub fn unsubscribe(&mut self, sid: u64, max: u64) {
        let Some(entry) = self.subs.get_mut(&sid) else { return };
        if max > 0 && entry.received < max {
            entry.max = max;
            self.broker.unsubscribe_local(self.page, sid, max);
        } else {
            self.subs.remove(&sid);
            self.broker.unsubscribe_local(self.page, sid, 0);
            self.mirror(sid, None);
        }
    }

    /// Feeds the engine until nothing moves, then queues the page's deliveries.
    fn pump(&mut self, #[cfg_attr(not(feature = "jetstream"), allow(unused_variables))] now: u64) {
        #[cfg(feature = "jetstream")]
        self.note_interest();
        #[cfg(feature = "jetstream")]
        loop {
            let input = self.broker.take_deliveries(self.js_conn);
            let mut bus = LocalBus { broker: &mut self.broker, conn: self.js_conn };
            let out = self.engine.step(now, &mut bus, input.iter().map(Delivery::inbound));
            if input.is_empty() && out.is_empty() {
                break;
            }
            self.emit(out);
        }
        if let Some(link) = &mut self.link {
            link.take_local(&mut self.broker);
        }
        #[cfg(feature = "jetstream")]
        if let Some(tabs) = &mut self.tabs {
            tabs.flush(&mut self.broker);
        }
        let page = self.broker.take_deliveries(self.page);
        if self.queue.is_empty() {
            // No copy: a `VecDeque` takes over a `Vec`'s buffer as it is.
            self.queue = VecDeque::from(page);
        } else {
            self.queue.extend(page);
        }
    }

    /// Tells the engine when subscriptions changed (the page's, another tab's, a link's) while
    /// a push consumer waits for its subscriber, as the server does from `Account::insert_sub`:
    /// an ordered consumer or a KV watch created before its deliver subject is subscribed
    /// then starts in this pump instead of at the engine's next 50 ms interest poll.
    #[cfg(feature = "jetstream")]
    fn note_interest(&mut self) {
        let generation = self.broker.subscription_generation();
        if generation != self.subs_seen {
            self.subs_seen = generation;
            if self.engine.awaits_interest() {
                self.engine.interest_appeared();
            }
        }
    }

    #[cfg(feature = "jetstream")]
    fn emit(&mut self, out: Vec<Outbound>) {
        let uncommitted = self.journal.as_ref().is_some_and(|j| j.borrow().pending());
        for o in out {
            if uncommitted {
                self.held.push_back((self.open_batch, o));
            } else if let Some(&(batch, _)) = self.held.back() {
                self.held.push_back((batch, o));
            } else {
                self.send(&o);
            }
        }
    }

    #[cfg(feature = "jetstream")]
    fn send(&mut self, o: &Outbound) {
        LocalBus { broker: &mut self.broker, conn: self.js_conn }.publish(o);
    }

    /// Routes the output held for commits up to `batch`.
    #[cfg(feature = "jetstream")]
    fn release(&mut self, batch: u64) {
        while self.held.front().is_some_and(|(b, _)| *b <= batch) {
            if let Some((_, o)) = self.held.pop_front() {
                self.send(&o);
            }
        }
    }

    #[cfg(feature = "jetstream")]
    fn on_timer(&mut self) {
        self.timer = None;
        // the pump's first step runs whatever timers are due
        self.pump(now_ns());
    }

    #[cfg(feature = "jetstream")]
    fn idle(&self) -> bool {
        !self.committing && self.held.is_empty() && !self.journal.as_ref().is_some_and(|j| j.borrow().pending())
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        #[cfg(feature = "jetstream")]
        let (streams, consumers) = {
            let engine = self.engine.engine();
            (engine.stream_count(), engine.consumer_count())
        };
        #[cfg(not(feature = "jetstream"))]
        let (streams, consumers) = (0, 0);
        (streams, consumers, self.broker.subscription_count())
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// The JetStream engine over `file` on local connection `js_conn`, and what its recovery
/// warned about.
#[cfg(feature = "jetstream")]
fn build_engine(
    broker: &mut Broker,
    js_conn: ConnId,
    file: Box<dyn edgebus_core::jetstream::store::Storage>,
    journal: Option<&SharedJournal>,
    seed: u64,
) -> (EngineHost<u64>, Vec<String>) {
    let mem = Box::new(edgebus_core::jetstream::store::MemStorage);
    let (engine, mut warnings) = JetStream::new(file, mem, now_ns(), seed.rotate_left(17));
    if let Some(j) = journal {
        warnings.append(&mut j.borrow_mut().warnings);
        // Recovery rewrites nothing on its own; start from a clean journal.
        let _ = j.borrow_mut().take_ops();
    }
    (EngineHost::new(engine, &mut LocalBus { broker, conn: js_conn }), warnings)
}

/// Runs after every entry point: pump, arm the timer, start a commit, dispatch.
pub fn after(rc: &Shared) {
    if run_after(rc) {
        dispatch(rc);
        crate::socket::dispatch_status(rc);
    }
}

/// [`after`] for a new JavaScript subscription, with the dispatch on a later task. The pump
/// may already have queued messages for it (a push consumer starts as soon as its subscriber
/// appears), and running the callback inside `subscribe()` would hand them over before the
/// caller holds the subscription (nats.js never delivers inside `subscribe()` either). Any
/// entry point before that task dispatches them, in order, as usual.
pub fn after_subscribe(rc: &Shared) {
    if run_after(rc) {
        let weak = Rc::downgrade(rc);
        wasm_bindgen_futures::spawn_local(async move {
            TimeoutFuture::new(0).await;
            if let Some(rc) = weak.upgrade() {
                dispatch(&rc);
                crate::socket::dispatch_status(&rc);
            }
        });
    }
}

/// Pump, arm the timer, start a commit; `false` once the bus is closed.
fn run_after(rc: &Shared) -> bool {
    #[cfg_attr(not(feature = "jetstream"), allow(unused_variables))]
    let (start_commit, timer, outbox_commit) = {
        let mut i = rc.borrow_mut();
        if i.closed {
            return false;
        }
        let now = now_ns();
        i.pump(now);
        #[cfg(feature = "jetstream")]
        let start_commit = !i.committing && i.journal.as_ref().is_some_and(|j| j.borrow().pending());
        #[cfg(feature = "jetstream")]
        if start_commit {
            i.committing = true;
        }
        #[cfg(feature = "jetstream")]
        let timer = arm_timer(&mut i, now);
        // core NATS has no timers and nothing to commit but the link's outbox
        #[cfg(not(feature = "jetstream"))]
        let (start_commit, timer) = (false, None::<(u64, u32)>);
        let outbox_commit = i.link.as_mut().is_some_and(crate::socket::Link::start_commit);
        (start_commit, timer, outbox_commit)
    };
    if outbox_commit {
        wasm_bindgen_futures::spawn_local(crate::socket::commit_loop(Rc::downgrade(rc)));
    }
    #[cfg(feature = "jetstream")]
    if let Some((generation, ms)) = timer {
        let weak = Rc::downgrade(rc);
        wasm_bindgen_futures::spawn_local(timer_task(weak, generation, ms));
    }
    #[cfg(feature = "jetstream")]
    if start_commit {
        wasm_bindgen_futures::spawn_local(commit_loop(Rc::downgrade(rc)));
    }
    true
}

/// Returns `(generation, delay)` when a new timer must be started.
#[cfg(feature = "jetstream")]
fn arm_timer(i: &mut Inner, now: u64) -> Option<(u64, u32)> {
    let deadline = i.engine.poll_timeout(now)?;
    if i.timer.is_some_and(|t| t <= deadline) {
        return None;
    }
    i.timer = Some(deadline);
    i.timer_gen += 1;
    let ms = deadline.saturating_sub(now).div_ceil(1_000_000).min(u64::from(u32::MAX / 2)) as u32;
    Some((i.timer_gen, ms))
}

#[cfg(feature = "jetstream")]
async fn timer_task(weak: Weak<RefCell<Inner>>, generation: u64, ms: u32) {
    TimeoutFuture::new(ms).await;
    let Some(rc) = weak.upgrade() else { return };
    {
        let mut i = rc.borrow_mut();
        if i.closed || i.timer_gen != generation {
            return;
        }
        i.on_timer();
    }
    after(&rc);
}

#[cfg(feature = "jetstream")]
async fn commit_loop(weak: Weak<RefCell<Inner>>) {
    loop {
        let Some(rc) = weak.upgrade() else { return };
        let job = {
            let mut i = rc.borrow_mut();
            match (&i.db, &i.journal) {
                (Some(db), Some(j)) if j.borrow().pending() => {
                    let ops = j.borrow_mut().take_ops_with(db.appends());
                    let db = db.clone();
                    let batch = i.open_batch;
                    i.open_batch += 1;
                    Some((db, ops, batch))
                }
                _ => {
                    i.committing = false;
                    None
                }
            }
        };
        let Some((db, ops, batch)) = job else {
            let waiters = std::mem::take(&mut rc.borrow_mut().idle_waiters);
            for w in waiters {
                let _ = w.send(());
            }
            return;
        };
        drop(rc);
        if let Err(e) = db.write(ops).await {
            refused::recover(&weak, &db, e).await;
        }
        let Some(rc) = weak.upgrade() else { return };
        {
            let mut i = rc.borrow_mut();
            i.release(batch);
            i.pump(now_ns());
        }
        dispatch(&rc);
        direct::wake_durable(&rc, batch);
    }
}

/// Makes everything the engine holds durable and waits until every held ack went out, and
/// until the link's outbox is stored.
pub async fn settle(rc: &Shared) {
    #[cfg(feature = "jetstream")]
    settle_engine(rc).await;
    crate::socket::settle(rc).await;
    #[cfg(feature = "jetstream")]
    crate::tabs::settle(rc).await;
}

#[cfg(feature = "jetstream")]
async fn settle_engine(rc: &Shared) {
    {
        let mut i = rc.borrow_mut();
        if i.closed {
            return;
        }
        i.engine.engine_mut().flush();
    }
    after(rc);
    loop {
        let rx = {
            let mut i = rc.borrow_mut();
            if i.idle() {
                return;
            }
            let (tx, rx) = oneshot::channel();
            i.idle_waiters.push(tx);
            rx
        };
        let _ = rx.await;
    }
}

/// Shuts the link down (if there is one) and hands its last status events to the listener.
pub(crate) fn end_link(rc: &Shared) {
    let link = {
        let mut i = rc.borrow_mut();
        let Inner { broker, link, .. } = &mut *i;
        if let Some(l) = link.as_mut() {
            l.shutdown(broker);
        }
        link.take()
    };
    if let Some(mut l) = link {
        if let Some((callback, events)) = l.take_status() {
            for e in events {
                let _ = callback.call1(&JsValue::NULL, &e);
            }
        }
    }
}

/// Flushes, then stops: drops every subscription (and its callback) and the timers.
pub async fn close(rc: &Shared) {
    settle(rc).await;
    end_link(rc);
    // the store's lock is held to the end of this function, after the store is closed
    let (db, _lock) = {
        let mut i = rc.borrow_mut();
        #[cfg(feature = "jetstream")]
        {
            let Inner { broker, tabs, .. } = &mut *i;
            if let Some(hub) = tabs.take() {
                hub.shutdown(broker);
            }
        }
        i.closed = true;
        i.subs.clear();
        i.queue.clear();
        i.requests.clear();
        #[cfg(feature = "jetstream")]
        {
            i.timer_gen += 1;
        }
        #[cfg(feature = "jetstream")]
        let lock = i.store_lock.take();
        #[cfg(not(feature = "jetstream"))]
        let lock = ();
        (i.db.take(), lock)
    };
    // everything acknowledged is committed (settle); the store is closed before its lock is
    // freed, so the next owner finds its files free
    if let Some(Ok(db)) = db.map(Rc::try_unwrap) {
        db.close().await;
    }
}
