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
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use bytes::Bytes;
use edgebus_core::broker::{Broker, BrokerConfig, ConnId, Delivery, LocalBus};
use edgebus_core::jetstream::host::EngineHost;
use edgebus_core::jetstream::{JetStream, Outbound};
use edgebus_core::proto::{Headers, Limits, ServerInfo};
use edgebus_core::session::SessionConfig;
use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use gloo_timers::future::TimeoutFuture;
use indexed_db_futures::database::Database;
use wasm_bindgen::JsValue;

use crate::error::BusError;
use crate::idb::{self, SharedJournal};

mod direct;
pub use direct::{durable, engine_call};

/// Nanoseconds since the Unix epoch, from the page's clock.
pub fn now_ns() -> u64 {
    (js_sys::Date::now() * 1e6) as u64
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Who receives a page-side subscription's messages.
pub enum Handler {
    /// A JavaScript callback; dropped (released) with the subscription.
    Js { callback: js_sys::Function, kv: Option<String> },
    /// A Rust task (fetches, KV listings).
    Chan(mpsc::UnboundedSender<Delivery>),
    /// The replies to every request of the page ([`Requests`]).
    Mux,
}

/// Requests waiting for their reply. Like nats.js, the bus answers them all through one
/// wildcard subscription (`<inbox prefix>.R.*`) instead of a subscription per request: a
/// per-request subscription changes the subscription trie twice per request, and every
/// change empties the broker's match cache. Timeouts share one timer too ([`arm_sweeper`]),
/// rather than one `setTimeout`/`clearTimeout` pair per request.
#[derive(Default)]
struct Requests {
    sid: Option<u64>,
    next: u64,
    /// Token → (deadline in ms since the epoch, where the reply goes).
    waiting: HashMap<u64, (u64, oneshot::Sender<Delivery>)>,
    deadlines: std::collections::BTreeSet<(u64, u64)>,
    /// When the sweeper wakes next, and its generation (a newer sweeper retires older ones).
    sweep_at: Option<u64>,
    sweep_gen: u64,
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
    js_conn: ConnId,
    /// The JetStream engine on its local connection (`js_conn`).
    engine: EngineHost<u64>,
    subs: HashMap<u64, SubEntry>,
    queue: VecDeque<Delivery>,
    dispatching: bool,
    requests: Requests,
    /// The last subject handed to JavaScript, as a JS string: a publisher repeating a
    /// subject would otherwise pay a UTF-8 decode per batch.
    subject_js: Option<(Bytes, JsValue)>,
    journal: Option<SharedJournal>,
    pub(crate) db: Option<Rc<Database>>,
    committing: bool,
    /// Engine output waiting for the commit numbered by its tag.
    held: VecDeque<(u64, Outbound)>,
    /// The number the next commit will carry.
    open_batch: u64,
    idle_waiters: Vec<oneshot::Sender<()>>,
    /// Direct engine calls waiting for the commit numbered by their tag ([`engine_call`]).
    durable_waiters: Vec<(u64, oneshot::Sender<()>)>,
    timer: Option<u64>,
    timer_gen: u64,
    closed: bool,
    pub(crate) inbox_prefix: String,
    next_inbox: u64,
    /// The link to a server, if `connect` was called.
    pub(crate) link: Option<crate::socket::Link>,
    pub(crate) name: String,
    pub(crate) storage: &'static str,
}

pub type Shared = Rc<RefCell<Inner>>;

pub(crate) fn random_token() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22).map(|_| ALPHABET[(js_sys::Math::random() * 62.0) as usize % 62] as char).collect()
}

impl Inner {
    /// Builds the bus. `db` + `journal` for IndexedDB storage (already loaded), else memory.
    pub fn new(name: &str, persisted: Option<(Database, SharedJournal)>) -> (Inner, Vec<String>) {
        let info = ServerInfo {
            server_id: format!("EDGEBUS-PAGE-{}", random_token()),
            server_name: name.into(),
            version: edgebus_core::NATS_VERSION.into(),
            proto: 1,
            headers: true,
            max_payload: Limits::default().max_payload as i64,
            jetstream: true,
            ..Default::default()
        };
        let config = BrokerConfig {
            session: SessionConfig { limits: Limits::default(), auth_required: false },
            info,
            max_subscriptions: 0,
            authorizer: None,
        };
        let seed = (js_sys::Math::random() * u32::MAX as f64) as u64;
        let mut broker = Broker::new(config, seed);
        let page = broker.connect_local();
        let js_conn = broker.connect_local();
        let (db, journal) = match persisted {
            Some((db, journal)) => (Some(Rc::new(db)), Some(journal)),
            None => (None, None),
        };
        let file: Box<dyn edgebus_core::jetstream::store::Storage> = match &journal {
            Some(j) => Box::new(idb::IdbStorage::new(j.clone())),
            None => Box::new(edgebus_core::jetstream::store::MemStorage),
        };
        let mem = Box::new(edgebus_core::jetstream::store::MemStorage);
        let (engine, mut warnings) = JetStream::new(file, mem, now_ns(), seed.rotate_left(17));
        if let Some(j) = &journal {
            warnings.append(&mut j.borrow_mut().warnings);
            // Recovery rewrites nothing on its own; start from a clean journal.
            let _ = j.borrow_mut().take_ops();
        }
        let storage = if journal.is_some() { "indexeddb" } else { "memory" };
        let engine = EngineHost::new(engine, &mut LocalBus { broker: &mut broker, conn: js_conn });
        let inner = Inner {
            broker,
            page,
            js_conn,
            engine,
            subs: HashMap::new(),
            queue: VecDeque::new(),
            dispatching: false,
            requests: Requests::default(),
            subject_js: None,
            journal,
            db,
            committing: false,
            held: VecDeque::new(),
            open_batch: 1,
            idle_waiters: Vec::new(),
            durable_waiters: Vec::new(),
            timer: None,
            timer_gen: 0,
            closed: false,
            inbox_prefix: format!("_INBOX.{}", random_token()),
            next_inbox: 1,
            link: None,
            name: name.into(),
            storage,
        };
        (inner, warnings)
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
            .publish_local(
                self.page,
                subject.as_bytes(),
                subject.as_bytes(),
                reply.map(str::as_bytes),
                headers,
                payload,
            )
            .map_err(|e| BusError::BadSubject(format!("{subject}: {e}")))?;
        Ok(())
    }

    /// Publishes `ends.len()` messages on `subject`: payload `i` is `data[ends[i-1]..ends[i]]`.
    /// Routed one by one, in order, exactly as that many [`Inner::publish`] calls; the engine
    /// and the page's subscribers see them after the last one (one pump, one dispatch).
    pub fn publish_many(&mut self, subject: &str, data: Vec<u8>, ends: &[u32]) -> Result<(), BusError> {
        self.check_open()?;
        let mut start = 0;
        for &end in ends {
            if end < start || end as usize > data.len() {
                return Err(BusError::Invalid(format!("publishMany: payload end {end} out of order or past the data")));
            }
            start = end;
        }
        self.broker
            .publish_local_batch(self.page, subject.as_bytes(), &Bytes::from(data), ends)
            .map_err(|e| BusError::BadSubject(format!("{subject}: {e}")))?;
        Ok(())
    }

    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>, handler: Handler) -> Result<u64, BusError> {
        self.check_open()?;
        let sid = self
            .broker
            .subscribe_local(self.page, subject.as_bytes(), queue.map(str::as_bytes))
            .map_err(|e| BusError::BadSubject(format!("{subject}: {e}")))?;
        self.subs.insert(sid, SubEntry { handler, max: 0, received: 0 });
        Ok(sid)
    }

    /// A reply subject for a new request and where its reply will arrive; `None` from the
    /// receiver means the request timed out or the bus closed.
    fn register_request(&mut self, timeout_ms: u32) -> Result<(u64, String, oneshot::Receiver<Delivery>), BusError> {
        self.check_open()?;
        if self.requests.sid.is_none() {
            let subject = format!("{}.R.*", self.inbox_prefix);
            self.requests.sid = Some(self.subscribe(&subject, None, Handler::Mux)?);
        }
        let token = self.requests.next;
        self.requests.next += 1;
        let deadline = now_ms() + u64::from(timeout_ms);
        let (tx, rx) = oneshot::channel();
        self.requests.waiting.insert(token, (deadline, tx));
        self.requests.deadlines.insert((deadline, token));
        Ok((token, format!("{}.R.{token}", self.inbox_prefix), rx))
    }

    fn cancel_request(&mut self, token: u64) {
        if let Some((deadline, _)) = self.requests.waiting.remove(&token) {
            self.requests.deadlines.remove(&(deadline, token));
        }
    }

    /// Hands a reply to its request (a reply nobody waits for any more is dropped).
    fn answer(&mut self, d: Delivery) {
        let token = d.subject.rsplit(|b| *b == b'.').next().and_then(|t| std::str::from_utf8(t).ok()?.parse().ok());
        let Some(token) = token else { return };
        if let Some((deadline, tx)) = self.requests.waiting.remove(&token) {
            self.requests.deadlines.remove(&(deadline, token));
            let _ = tx.send(d);
        }
    }

    /// Drops the requests whose deadline passed (their callers see a timeout).
    fn expire_requests(&mut self, now: u64) {
        while let Some(&(deadline, token)) = self.requests.deadlines.first() {
            if deadline > now {
                break;
            }
            self.requests.deadlines.pop_first();
            self.requests.waiting.remove(&token);
        }
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
        }
    }

    /// Feeds the engine until nothing moves, then queues the page's deliveries.
    fn pump(&mut self, now: u64) {
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
        let page = self.broker.take_deliveries(self.page);
        if self.queue.is_empty() {
            // No copy: a `VecDeque` takes over a `Vec`'s buffer as it is.
            self.queue = VecDeque::from(page);
        } else {
            self.queue.extend(page);
        }
    }

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

    fn send(&mut self, o: &Outbound) {
        LocalBus { broker: &mut self.broker, conn: self.js_conn }.publish(o);
    }

    /// Routes the output held for commits up to `batch`.
    fn release(&mut self, batch: u64) {
        while self.held.front().is_some_and(|(b, _)| *b <= batch) {
            if let Some((_, o)) = self.held.pop_front() {
                self.send(&o);
            }
        }
    }

    fn on_timer(&mut self) {
        self.timer = None;
        // the pump's first step runs whatever timers are due
        self.pump(now_ns());
    }

    fn idle(&self) -> bool {
        !self.committing && self.held.is_empty() && !self.journal.as_ref().is_some_and(|j| j.borrow().pending())
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        let engine = self.engine.engine();
        (engine.stream_count(), engine.consumer_count(), self.broker.subscription_count())
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Runs after every entry point: pump, arm the timer, start a commit, dispatch.
pub fn after(rc: &Shared) {
    let (start_commit, timer, outbox_commit) = {
        let mut i = rc.borrow_mut();
        if i.closed {
            return;
        }
        let now = now_ns();
        i.pump(now);
        let start_commit = !i.committing && i.journal.as_ref().is_some_and(|j| j.borrow().pending());
        if start_commit {
            i.committing = true;
        }
        let outbox_commit = i.link.as_mut().is_some_and(crate::socket::Link::start_commit);
        (start_commit, arm_timer(&mut i, now), outbox_commit)
    };
    if outbox_commit {
        wasm_bindgen_futures::spawn_local(crate::socket::commit_loop(Rc::downgrade(rc)));
    }
    if let Some((generation, ms)) = timer {
        let weak = Rc::downgrade(rc);
        wasm_bindgen_futures::spawn_local(timer_task(weak, generation, ms));
    }
    if start_commit {
        wasm_bindgen_futures::spawn_local(commit_loop(Rc::downgrade(rc)));
    }
    dispatch(rc);
    crate::socket::dispatch_status(rc);
}

/// Returns `(generation, delay)` when a new timer must be started.
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

async fn commit_loop(weak: Weak<RefCell<Inner>>) {
    loop {
        let Some(rc) = weak.upgrade() else { return };
        let job = {
            let mut i = rc.borrow_mut();
            match (&i.db, &i.journal) {
                (Some(db), Some(j)) if j.borrow().pending() => {
                    let ops = j.borrow_mut().take_ops();
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
        if let Err(e) = idb::write(&db, ops).await {
            web_sys::console::error_1(&JsValue::from_str(&format!("edgebus: IndexedDB commit failed: {e}")));
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

/// Most messages one call of a JavaScript subscription callback carries.
const BATCH_MAX_MSGS: usize = 4096;
/// Most payload bytes one such call carries (a batch is one `Uint8Array`).
const BATCH_MAX_BYTES: usize = 1 << 20;

/// Consecutive deliveries to one JavaScript subscription, packed so that crossing into
/// JavaScript costs one call and three or four values per batch instead of an object, a
/// string and a typed array per message.
struct Batch {
    callback: js_sys::Function,
    data: Vec<u8>,
    ends: Vec<u32>,
    /// Every message's subject, or `None` while all share `deliveries[0]`'s.
    subjects: Option<Vec<Bytes>>,
    first_subject: Bytes,
    /// `first_subject` as a JS string, when known already.
    first_subject_js: Option<JsValue>,
    /// Per message, only when some message carries a reply or headers.
    extras: Option<Vec<JsValue>>,
}

impl Batch {
    fn new(callback: js_sys::Function, d: &Delivery) -> Batch {
        let mut b = Batch {
            callback,
            data: Vec::new(),
            ends: Vec::new(),
            subjects: None,
            first_subject: d.subject.clone(),
            first_subject_js: None,
            extras: None,
        };
        b.push(d);
        b
    }

    fn full(&self) -> bool {
        self.ends.len() >= BATCH_MAX_MSGS || self.data.len() >= BATCH_MAX_BYTES
    }

    fn push(&mut self, d: &Delivery) {
        let n = self.ends.len();
        if self.subjects.is_none() && d.subject != self.first_subject {
            self.subjects = Some(vec![self.first_subject.clone(); n]);
        }
        if let Some(s) = &mut self.subjects {
            s.push(d.subject.clone());
        }
        if d.reply.is_some() || d.headers.is_some() {
            let extras = self.extras.get_or_insert_with(|| vec![JsValue::UNDEFINED; n]);
            extras.push(crate::convert::msg_extra(d));
        } else if let Some(e) = &mut self.extras {
            e.push(JsValue::UNDEFINED);
        }
        self.data.extend_from_slice(&d.payload);
        self.ends.push(self.data.len() as u32);
    }

    /// `callback(data, ends, subjects, extras)`: payload `i` is `data[ends[i-1]..ends[i]]`;
    /// `subjects` is one string when every message shares it; `extras[i]` is `undefined` or
    /// `{ reply?, headers?, status?, description? }`, and `extras` itself is `undefined` when
    /// no message has any of those.
    fn call(self) {
        let data = js_sys::Uint8Array::from(&self.data[..]);
        let ends = js_sys::Uint32Array::from(&self.ends[..]);
        let subjects: JsValue = match self.subjects {
            None => self
                .first_subject_js
                .unwrap_or_else(|| JsValue::from_str(&String::from_utf8_lossy(&self.first_subject))),
            Some(list) => {
                list.iter().map(|s| JsValue::from_str(&String::from_utf8_lossy(s))).collect::<js_sys::Array>().into()
            }
        };
        let extras: JsValue = match self.extras {
            None => JsValue::UNDEFINED,
            Some(list) => list.into_iter().collect::<js_sys::Array>().into(),
        };
        if let Err(e) = self.callback.call4(&JsValue::NULL, &data, &ends, &subjects, &extras) {
            web_sys::console::error_2(&JsValue::from_str("edgebus: subscription callback threw"), &e);
        }
    }
}

/// What one turn of [`dispatch`] hands out.
enum Next {
    /// Replies handed to waiting requests: no JavaScript ran, nothing to pump.
    Answered,
    Batch(Batch),
    Kv(js_sys::Function, String, Delivery),
    Chan(mpsc::UnboundedSender<Delivery>, Delivery),
}

type Group = std::iter::Peekable<std::vec::IntoIter<Delivery>>;

/// Splits the queued deliveries by subscription, each subscription's in their order, the
/// subscriptions in the order they first appear. Subscriptions are independent (as if each
/// had its own connection), so with several on one subject each still gets its messages in
/// long batches rather than one at a time in turn.
fn groups(queue: VecDeque<Delivery>) -> Vec<(u64, Group)> {
    if let Some(first) = queue.front().map(|d| d.sub) {
        if queue.iter().all(|d| d.sub == first) {
            return vec![(first, Vec::from(queue).into_iter().peekable())];
        }
    }
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<(u64, Vec<Delivery>)> = Vec::new();
    for d in queue {
        let n = *index.entry(d.sub).or_insert_with(|| {
            out.push((d.sub, Vec::new()));
            out.len() - 1
        });
        out[n].1.push(d);
    }
    out.into_iter().map(|(sub, list)| (sub, list.into_iter().peekable())).collect()
}

/// Takes the next delivery of subscription `sub` off `group` (with the ones behind it, for a
/// JavaScript callback), counting them against the subscription's `max`. `None` once the
/// subscription is gone: the rest of the group is dropped.
fn next_of(i: &mut Inner, sub: u64, group: &mut Group) -> Option<Next> {
    let entry = i.subs.get_mut(&sub)?;
    if matches!(entry.handler, Handler::Mux) {
        for d in group.by_ref() {
            i.answer(d);
        }
        return Some(Next::Answered);
    }
    let d = group.next()?;
    entry.received += 1;
    let next = match &entry.handler {
        Handler::Js { callback, kv: Some(bucket) } => Next::Kv(callback.clone(), bucket.clone(), d),
        Handler::Chan(tx) => Next::Chan(tx.clone(), d),
        Handler::Js { callback, kv: None } => {
            let mut batch = Batch::new(callback.clone(), &d);
            while !batch.full() && (entry.max == 0 || entry.received < entry.max) {
                let Some(n) = group.next() else { break };
                entry.received += 1;
                batch.push(&n);
            }
            if batch.subjects.is_none() {
                let cached = i.subject_js.as_ref().filter(|(b, _)| *b == batch.first_subject).map(|(_, v)| v.clone());
                let js = cached.unwrap_or_else(|| {
                    let v = JsValue::from_str(&String::from_utf8_lossy(&batch.first_subject));
                    i.subject_js = Some((batch.first_subject.clone(), v.clone()));
                    v
                });
                batch.first_subject_js = Some(js);
            }
            Next::Batch(batch)
        }
        Handler::Mux => Next::Answered,
    };
    if entry.max > 0 && entry.received >= entry.max {
        i.subs.remove(&sub);
    }
    Some(next)
}

/// Hands queued deliveries to their handlers, outside any borrow (callbacks may publish).
pub fn dispatch(rc: &Shared) {
    {
        let mut i = rc.borrow_mut();
        if i.dispatching {
            return;
        }
        i.dispatching = true;
    }
    loop {
        let groups = {
            let mut i = rc.borrow_mut();
            if i.queue.is_empty() {
                i.dispatching = false;
                return;
            }
            groups(std::mem::take(&mut i.queue))
        };
        for (sub, mut group) in groups {
            while group.peek().is_some() {
                let Some(next) = next_of(&mut rc.borrow_mut(), sub, &mut group) else { break };
                match next {
                    // Waking a Rust task runs no JavaScript, so nothing new can be queued.
                    Next::Answered => continue,
                    Next::Chan(tx, d) => {
                        let _ = tx.unbounded_send(d);
                        continue;
                    }
                    Next::Batch(batch) => batch.call(),
                    Next::Kv(callback, bucket, d) => {
                        if let Some(value) = crate::convert::kv_entry(&bucket, &d) {
                            if let Err(e) = callback.call1(&JsValue::NULL, &value) {
                                web_sys::console::error_2(
                                    &JsValue::from_str("edgebus: subscription callback threw"),
                                    &e,
                                );
                            }
                        }
                    }
                }
                // What the callback published is queued behind this round (see `groups`).
                after(rc);
            }
        }
    }
}

/// Subscribes a channel; the caller unsubscribes when done.
pub fn subscribe_chan(rc: &Shared, subject: &str) -> Result<(u64, mpsc::UnboundedReceiver<Delivery>), BusError> {
    let (tx, rx) = mpsc::unbounded();
    let sid = rc.borrow_mut().subscribe(subject, None, Handler::Chan(tx))?;
    Ok((sid, rx))
}

/// The status code of a header-only status message (`NATS/1.0 503`), if it is one.
pub fn status_of(d: &Delivery) -> Option<u16> {
    if !d.payload.is_empty() {
        return None;
    }
    d.headers.as_deref().and_then(|h| Headers::parse(h).ok()).and_then(|h| h.status)
}

/// Publishes a request and waits for one reply.
pub async fn request(
    rc: &Shared,
    subject: &str,
    headers: Option<Bytes>,
    payload: &[u8],
    timeout_ms: u32,
) -> Result<Delivery, BusError> {
    let rx = {
        let mut i = rc.borrow_mut();
        let (token, reply, rx) = i.register_request(timeout_ms)?;
        if let Err(e) = i.publish(subject, Some(&reply), headers.as_deref(), payload) {
            i.cancel_request(token);
            return Err(e);
        }
        rx
    };
    arm_sweeper(rc);
    after(rc);
    match rx.await {
        Ok(d) if status_of(&d) == Some(503) => Err(BusError::NoResponders(subject.into())),
        Ok(d) => Ok(d),
        Err(_) if rc.borrow().closed => Err(BusError::Closed),
        Err(_) => Err(BusError::Timeout),
    }
}

/// Publishes every `(subject, payload)` as a request, all before one pump (so a JetStream
/// engine stores them together and one IndexedDB commit covers them), and waits for every
/// reply, answering in the same order.
pub async fn request_many<'a>(
    rc: &Shared,
    msgs: impl Iterator<Item = (&'a str, &'a [u8])>,
    timeout_ms: u32,
) -> Vec<Result<Delivery, BusError>> {
    let mut waits = Vec::new();
    {
        let mut i = rc.borrow_mut();
        for (subject, payload) in msgs {
            let wait = i.register_request(timeout_ms).and_then(|(token, reply, rx)| {
                i.publish(subject, Some(&reply), None, payload).map(|()| rx).inspect_err(|_| i.cancel_request(token))
            });
            waits.push((subject, wait));
        }
    }
    arm_sweeper(rc);
    after(rc);
    let mut out = Vec::with_capacity(waits.len());
    for (subject, wait) in waits {
        out.push(match wait {
            Err(e) => Err(e),
            Ok(rx) => match rx.await {
                Ok(d) if status_of(&d) == Some(503) => Err(BusError::NoResponders(subject.into())),
                Ok(d) => Ok(d),
                Err(_) if rc.borrow().closed => Err(BusError::Closed),
                Err(_) => Err(BusError::Timeout),
            },
        });
    }
    out
}

/// Makes sure a timer wakes at the earliest request deadline.
fn arm_sweeper(rc: &Shared) {
    let (generation, ms) = {
        let mut i = rc.borrow_mut();
        let Some(&(deadline, _)) = i.requests.deadlines.first() else { return };
        if i.requests.sweep_at.is_some_and(|at| at <= deadline) {
            return;
        }
        i.requests.sweep_at = Some(deadline);
        i.requests.sweep_gen += 1;
        (i.requests.sweep_gen, deadline.saturating_sub(now_ms()).min(u64::from(u32::MAX / 2)) as u32)
    };
    let weak = Rc::downgrade(rc);
    wasm_bindgen_futures::spawn_local(async move {
        TimeoutFuture::new(ms).await;
        let Some(rc) = weak.upgrade() else { return };
        {
            let mut i = rc.borrow_mut();
            if i.requests.sweep_gen != generation {
                return;
            }
            i.requests.sweep_at = None;
            i.expire_requests(now_ms());
        }
        arm_sweeper(&rc);
    });
}

/// Collects messages on a fresh inbox subscription until `done` says stop or `timeout_ms`
/// passes; publishes `subject` with the inbox as reply first (if given).
pub async fn collect(
    rc: &Shared,
    inbox: &str,
    publish: Option<(&str, &[u8])>,
    timeout_ms: u32,
    mut done: impl FnMut(&Delivery) -> Collect,
) -> Result<Vec<Delivery>, BusError> {
    let (sid, mut rx) = subscribe_chan(rc, inbox)?;
    if let Some((subject, body)) = publish {
        let sent = rc.borrow_mut().publish(subject, Some(inbox), None, body);
        if let Err(e) = sent {
            rc.borrow_mut().unsubscribe(sid, 0);
            return Err(e);
        }
    }
    after(rc);
    let mut timer = TimeoutFuture::new(timeout_ms);
    let mut got = Vec::new();
    while let Either::Left((Some(d), _)) = select(rx.next(), &mut timer).await {
        match done(&d) {
            Collect::Keep => got.push(d),
            Collect::KeepAndStop => {
                got.push(d);
                break;
            }
            Collect::Skip => {}
            Collect::Stop => break,
        }
    }
    rc.borrow_mut().unsubscribe(sid, 0);
    Ok(got)
}

/// What [`collect`] does with one message.
pub enum Collect {
    Keep,
    KeepAndStop,
    Skip,
    Stop,
}

/// Makes everything the engine holds durable and waits until every held ack went out, and
/// until the link's outbox is stored.
pub async fn settle(rc: &Shared) {
    settle_engine(rc).await;
    crate::socket::settle(rc).await;
}

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
    let mut i = rc.borrow_mut();
    i.closed = true;
    i.subs.clear();
    i.queue.clear();
    i.requests.waiting.clear();
    i.requests.deadlines.clear();
    i.timer_gen += 1;
    if let Some(db) = i.db.take() {
        if let Ok(db) = Rc::try_unwrap(db) {
            db.close();
        }
    }
}
