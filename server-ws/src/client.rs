//! One client connection's shared half: its outbound buffer, which other connections'
//! readers deliver into, and the tasks that write it out and keep the connection alive.
//!
//! The writer swaps the whole buffer out and writes it with one call, so a burst of messages
//! costs one syscall (or one WebSocket frame). The reading half is [`crate::conn`]; how a
//! message finds its receivers is [`crate::router`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use edgebus_core::leaf::write_lmsg;
use edgebus_core::policy::Count;
use edgebus_core::proto::{write_msg, ProtocolError, PING};
use parking_lot::{ArcMutexGuard, Mutex, RawMutex};
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::accounts::Account;
use crate::perms::ReceiverPermissions;
use crate::router::InternalSink;
use crate::server::Shared;
use crate::transport::{Kind, Writer};

/// A subscription as the trie holds it.
pub struct Sub {
    pub client: Arc<Client>,
    /// The account whose trie holds it (its client's).
    pub account: Arc<Account>,
    pub sid: Bytes,
    pub subject: Bytes,
    pub queue: Option<Bytes>,
    /// Auto-unsubscribe limit; 0 = none.
    pub(crate) max: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) closed: AtomicBool,
}

impl Sub {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
    pub fn delivered_count(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

/// Shared handle to a [`Sub`]; two handles are equal when they point at the same one.
#[derive(Clone)]
pub struct SubRef(Arc<Sub>);

impl SubRef {
    /// A new subscription of `client`. It owns copies of its names, so it does not pin the
    /// read buffer they came from.
    pub(crate) fn new(
        client: Arc<Client>,
        account: Arc<Account>,
        sid: &[u8],
        subject: &[u8],
        queue: Option<&[u8]>,
    ) -> SubRef {
        SubRef(Arc::new(Sub {
            client,
            account,
            sid: Bytes::copy_from_slice(sid),
            subject: Bytes::copy_from_slice(subject),
            queue: queue.map(Bytes::copy_from_slice),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }))
    }
}

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for SubRef {
    type Target = Sub;
    fn deref(&self) -> &Sub {
        &self.0
    }
}

/// What `/connz` reports about a client, set from its `CONNECT`.
#[derive(Default, Clone)]
pub struct ClientMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
}

#[derive(Default)]
struct Outbound {
    buf: BytesMut,
    /// Set once the connection is ending; nothing more is queued after it.
    closing: bool,
    reason: Option<ProtocolError>,
    msgs: u64,
    bytes: u64,
}

thread_local! {
    /// Inside a [`DeliveryBatch`]: the buffer last delivered into, still locked.
    static HELD: RefCell<Option<ArcMutexGuard<RawMutex, Outbound>>> = const { RefCell::new(None) };
    /// A [`DeliveryBatch`] is open on this thread.
    static BATCHING: Cell<bool> = const { Cell::new(false) };
}

/// A run of deliveries during which a receiver's buffer stays locked from one message to
/// the next one for the same receiver (a publisher's read of `PUB`s to one subscriber takes
/// the lock once, not once per message). Each lock and unlock is a locked instruction, which
/// waits until the message copied before it is stored: per 1 KiB message over WebSocket
/// that was most of the delivery's own time (profiled). The run ends when this is dropped;
/// it is not `Send`, so it cannot be held across an `await` in a connection's task and the
/// lock is never kept while other tasks run. Deliveries to the JetStream engine and to leaf
/// links let go of the held lock first: those paths take locks (the engine's, the trie's)
/// under which other threads write into client buffers.
pub(crate) struct DeliveryBatch {
    _thread_bound: PhantomData<*const ()>,
}

impl DeliveryBatch {
    pub(crate) fn begin() -> DeliveryBatch {
        BATCHING.set(true);
        DeliveryBatch { _thread_bound: PhantomData }
    }

    /// Lets go of the buffer held, if any (the batch stays open).
    pub(crate) fn release() {
        drop(HELD.take());
    }
}

impl Drop for DeliveryBatch {
    fn drop(&mut self) {
        BATCHING.set(false);
        DeliveryBatch::release();
    }
}

pub struct Client {
    pub id: u64,
    pub kind: Kind,
    pub addr: SocketAddr,
    pub started: SystemTime,
    out: Arc<Mutex<Outbound>>,
    /// Wakes the writer: data was queued into an empty buffer, or the connection is closing.
    pub(crate) wake: Notify,
    /// Makes the writer abandon a write in progress (slow consumer).
    kill: Notify,
    /// Signalled after every completed write, for publishers stalled on this client.
    drained: Notify,
    pub(crate) headers: AtomicBool,
    pub(crate) connected: AtomicBool,
    /// The client said `protocol: 1` or more in CONNECT: it takes `INFO`s after the first
    /// (nats-server sends those only to such clients).
    pub(crate) info_updates: AtomicBool,
    pub(crate) pings_out: AtomicU32,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub num_subs: AtomicU32,
    /// The connection's subscriptions by sid. Touched on SUB/UNSUB and by `/connz`, never
    /// when routing. Emptied when the connection ends, which breaks the `Sub` → `Client` cycle.
    pub subs: Mutex<HashMap<Bytes, SubRef>>,
    /// Set for in-process subscribers: deliveries go to this sink instead of a socket. Weak,
    /// because the sink (the JetStream host) owns this client.
    internal: Option<Weak<dyn InternalSink>>,
    pub meta: Mutex<ClientMeta>,
    /// What admitted this client at its `CONNECT`, for a configuration reload to check again.
    pub(crate) admitted: Mutex<Option<Arc<crate::reload::Admitted>>>,
    /// Set at `CONNECT` for a user with permissions: consulted by whoever delivers to it.
    pub(crate) perms: OnceLock<ReceiverPermissions>,
    /// Set for a leaf link's connection: whether we dialled its peer. Deliveries to it
    /// become `LMSG`s, gathered per message (see `router.rs`).
    pub(crate) leaf: OnceLock<bool>,
    /// A leaf link's permissions: consulted by whoever delivers to it and announces
    /// interest to it. A hub's later `INFO` may replace them (see `leaf::conn`).
    leaf_perms: parking_lot::RwLock<Option<Arc<crate::perms::LeafPermissions>>>,
    /// Whether `leaf_perms` holds any.
    has_leaf_perms: AtomicBool,
}

impl Client {
    pub(crate) fn new(id: u64, kind: Kind, addr: SocketAddr) -> Self {
        Client {
            id,
            kind,
            addr,
            started: SystemTime::now(),
            // Empty: the first push (INFO) allocates what it needs. 4 KiB up front cost an idle
            // connection a resident page of which INFO used a tenth.
            out: Arc::new(Mutex::new(Outbound::default())),
            wake: Notify::new(),
            kill: Notify::new(),
            drained: Notify::new(),
            headers: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            info_updates: AtomicBool::new(false),
            pings_out: AtomicU32::new(0),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            num_subs: AtomicU32::new(0),
            subs: Mutex::new(HashMap::new()),
            internal: None,
            meta: Mutex::new(ClientMeta::default()),
            admitted: Mutex::new(None),
            perms: OnceLock::new(),
            leaf: OnceLock::new(),
            leaf_perms: parking_lot::RwLock::new(None),
            has_leaf_perms: AtomicBool::new(false),
        }
    }

    /// The leaf link's permissions as they are now.
    pub(crate) fn leaf_perms(&self) -> Option<Arc<crate::perms::LeafPermissions>> {
        // most links have none: a plain load, not the lock and a reference count, on every
        // message routed to or from one
        if !self.has_leaf_perms.load(Ordering::Acquire) {
            return None;
        }
        self.leaf_perms.read().clone()
    }

    /// Puts a leaf link's permissions in place (or lifts them, with `None`).
    pub(crate) fn set_leaf_perms(&self, perms: Option<crate::perms::LeafPermissions>) {
        let mut held = self.leaf_perms.write();
        self.has_leaf_perms.store(perms.is_some(), Ordering::Release);
        *held = perms.map(Arc::new);
    }

    /// An in-process client (the JetStream engine): it sees headers, and what it is
    /// delivered goes to `sink`.
    pub fn internal(id: u64, sink: Weak<dyn InternalSink>) -> Client {
        let mut c = Client::new(id, Kind::Tcp, SocketAddr::from(([0, 0, 0, 0], 0)));
        c.headers = AtomicBool::new(true);
        c.connected = AtomicBool::new(true);
        c.internal = Some(sink);
        c
    }

    /// Subscribes this (internal) client to `subject` in `account`.
    pub fn subscribe_internal(self: &Arc<Self>, account: &Arc<Account>, subject: &str) -> Option<SubRef> {
        let sub = SubRef::new(self.clone(), account.clone(), subject.as_bytes(), subject.as_bytes(), None);
        account.insert_sub(&sub).ok()?;
        self.num_subs.fetch_add(1, Ordering::Relaxed);
        Some(sub)
    }

    /// Removes one of this internal client's subscriptions.
    pub fn unsubscribe_internal(&self, sub: &SubRef) {
        if !sub.closed.swap(true, Ordering::AcqRel) {
            sub.account.remove_sub(sub);
            self.num_subs.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Queues protocol bytes for this client.
    pub fn push(&self, data: &[u8]) {
        let was_empty = self.with_out(false, |out| {
            if out.closing {
                return false;
            }
            let was_empty = out.buf.is_empty();
            out.buf.extend_from_slice(data);
            was_empty
        });
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// Ends the connection after what is already queued, plus the error's `-ERR` if it has one.
    pub fn close(&self, reason: Option<ProtocolError>) {
        let closed = self.with_out(false, |out| {
            if out.closing {
                return false;
            }
            out.closing = true;
            if let Some(e) = &reason {
                e.write(&mut out.buf);
            }
            out.reason = reason;
            true
        });
        if closed {
            self.wake.notify_one();
        }
    }

    /// Messages and bytes delivered to this client, and bytes waiting to be written.
    pub fn out_stats(&self) -> (u64, u64, usize) {
        self.with_out(false, |out| (out.msgs, out.bytes, out.buf.len()))
    }

    /// Runs `f` on the outbound buffer under its lock. Inside a [`DeliveryBatch`] a delivery
    /// (`keep`) leaves the lock held, for the next delivery to the same client; whatever
    /// lock the thread held for another client is let go first, so a thread never holds
    /// two buffers and never waits for one while holding another.
    fn with_out<R>(&self, keep: bool, f: impl FnOnce(&mut Outbound) -> R) -> R {
        HELD.with_borrow_mut(|held| {
            if let Some(guard) = held {
                if Arc::ptr_eq(ArcMutexGuard::mutex(guard), &self.out) {
                    return f(guard);
                }
            }
            *held = None;
            if keep && BATCHING.get() {
                f(held.insert(self.out.lock_arc()))
            } else {
                f(&mut self.out.lock())
            }
        })
    }

    /// Appends one delivery for `sub` (counted against its auto-unsubscribe limit; `None`:
    /// not counted). Returns [`Count::Refuse`] if the client is closing or the limit was
    /// reached, [`Count::DeliverLast`] when this delivery reaches it (the subscription is
    /// then marked closed). A client whose backlog
    /// passes `max_pending` is cut off as a slow consumer: its backlog is dropped and its
    /// writer abandoned, so that it costs nobody else anything. A backlog past three quarters
    /// of the limit marks the client in `stalled`, so the publisher can pause briefly and let
    /// it drain (nats-server's stall), which spares fast readers behind a fast publisher.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn deliver(
        &self,
        sub: Option<&Sub>,
        sid: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
        max_pending: usize,
        shared: &Shared,
        stalled: &mut bool,
        wake: &mut bool,
    ) -> Count {
        if let Some(sink) = &self.internal {
            // the engine takes its own lock here, under which its thread delivers to clients
            DeliveryBatch::release();
            // no buffer lock to count under: an atomic add, as nothing else is shared here
            let count = sub.map_or(Count::Deliver, |s| {
                Count::of(s.delivered.fetch_add(1, Ordering::AcqRel) + 1, s.max.load(Ordering::Acquire))
            });
            if count == Count::Refuse {
                return count;
            }
            if let (Some(s), Count::DeliverLast) = (sub, count) {
                s.closed.store(true, Ordering::Release);
            }
            let ok = sink.upgrade().is_some_and(|s| s.deliver(subject, reply, header_len, message));
            return if ok { count } else { Count::Refuse };
        }
        let headers_ok = self.headers.load(Ordering::Relaxed);
        self.queue_delivery(sub, true, message.len(), max_pending, shared, stalled, wake, |buf| {
            write_msg(buf, subject, sid, reply, header_len, message, headers_ok)
        })
    }

    /// Appends one message to a leaf peer as `LMSG` (or `HMSG`), naming the queue groups
    /// it is for; the same backlog rules as [`Client::deliver`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn deliver_leaf(
        &self,
        subject: &[u8],
        reply: Option<&[u8]>,
        queues: &[&[u8]],
        header_len: Option<usize>,
        message: &[u8],
        max_pending: usize,
        shared: &Shared,
        stalled: &mut bool,
        wake: &mut bool,
    ) -> bool {
        let headers_ok = self.headers.load(Ordering::Relaxed);
        // not kept: a leaf link's buffer is also written under the account's trie lock
        // (interest announcements), which a batch may need next
        self.queue_delivery(None, false, message.len(), max_pending, shared, stalled, wake, |buf| {
            write_lmsg(buf, subject, reply, queues, header_len, message, headers_ok)
        }) != Count::Refuse
    }

    /// Every delivery to this client takes its buffer's lock, so a subscription's count is
    /// kept under it with a plain load and store: a locked add per delivery waited for the
    /// stores of the message copied just before it (about 5% of a 1 KiB delivery).
    #[allow(clippy::too_many_arguments)]
    fn queue_delivery(
        &self,
        sub: Option<&Sub>,
        keep: bool,
        len: usize,
        max_pending: usize,
        shared: &Shared,
        stalled: &mut bool,
        wake: &mut bool,
        write: impl FnOnce(&mut BytesMut),
    ) -> Count {
        let (count, slow) = self.with_out(keep, |out| {
            if out.closing {
                return (Count::Refuse, false);
            }
            let mut count = Count::Deliver;
            if let Some(s) = sub {
                let n = s.delivered.load(Ordering::Relaxed) + 1;
                count = Count::of(n, s.max.load(Ordering::Acquire));
                match count {
                    Count::Refuse => return (count, false),
                    Count::DeliverLast => s.closed.store(true, Ordering::Release),
                    Count::Deliver => {}
                }
                s.delivered.store(n, Ordering::Release);
            }
            let was_empty = out.buf.is_empty();
            write(&mut out.buf);
            out.msgs += 1;
            out.bytes += len as u64;
            if out.buf.len() > max_pending {
                out.buf = BytesMut::new();
                out.closing = true;
                out.reason = Some(ProtocolError::SlowConsumer);
                return (count, true);
            }
            *stalled = out.buf.len() > max_pending / 4 * 3;
            *wake = was_empty;
            (count, false)
        });
        if slow {
            shared.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            warn!(cid = self.id, addr = %self.addr, "Slow Consumer Detected: pending bytes over max_pending");
            self.kill.notify_one();
            self.wake.notify_one();
        }
        count
    }

    /// Waits (briefly) until this client's backlog is below the stall mark again.
    pub(crate) async fn wait_drained(&self, max_pending: usize) {
        let deadline = tokio::time::Instant::now() + STALL_MAX;
        loop {
            let notified = self.drained.notified();
            {
                let out = self.out.lock();
                if out.closing || out.buf.len() <= max_pending / 4 * 3 {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}

/// Longest a publisher waits for one stalled receiver per read.
const STALL_MAX: Duration = Duration::from_millis(5);

/// Writes whatever is queued, as it is queued, until the connection closes.
pub(crate) async fn write_loop(client: Arc<Client>, mut writer: Writer, shared: Arc<Shared>) {
    // Empty until the first swap: most connections only ever hold a few small writes, and
    // an idle connection's memory is what 10,000 connections multiply.
    let mut batch = BytesMut::new();
    loop {
        let (closing, reason) = {
            let mut out = client.out.lock();
            std::mem::swap(&mut out.buf, &mut batch);
            (out.closing, out.reason.clone())
        };
        if matches!(reason, Some(ProtocolError::SlowConsumer)) {
            return;
        }
        if !batch.is_empty() {
            tokio::select! {
                biased;
                _ = client.kill.notified() => return,
                r = tokio::time::timeout(shared.limits.write_deadline(), writer.write(&mut batch)) => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        debug!(cid = client.id, "write error: {e}");
                        client.close(None);
                        return;
                    }
                    Err(_) => {
                        shared.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                        warn!(cid = client.id, addr = %client.addr, "Slow Consumer Detected: write deadline exceeded");
                        let mut out = client.out.lock();
                        out.closing = true;
                        out.reason = Some(ProtocolError::SlowConsumer);
                        out.buf = BytesMut::new();
                        return;
                    }
                },
            }
            batch.clear();
            client.drained.notify_waiters();
            continue;
        }
        if closing {
            writer.close(reason.as_ref()).await;
            return;
        }
        // A burst grew the buffers: give the memory back once the connection has been quiet
        // for a while, so an idle connection does not keep megabytes. Not as soon as the queue
        // is empty: a stream empties it between bursts many times a second, and each time the
        // buffers were freed they were regrown page by page (a 1 KiB stream over WebSocket
        // spent about 15% of the server in those page faults).
        if batch.capacity() > KEEP_WHILE_QUIET || client.out.lock().buf.capacity() > KEEP_WHILE_QUIET {
            if tokio::time::timeout(QUIET, client.wake.notified()).await.is_err() {
                batch = BytesMut::new();
                let mut out = client.out.lock();
                if out.buf.is_empty() {
                    out.buf = BytesMut::new();
                }
            }
            continue;
        }
        client.wake.notified().await;
    }
}

/// The most a connection's write buffers keep while it is quiet (each of the two).
const KEEP_WHILE_QUIET: usize = 64 * 1024;
/// How long a connection's writer must have had nothing to write before it gives back
/// buffers larger than [`KEEP_WHILE_QUIET`].
const QUIET: Duration = Duration::from_secs(1);

/// Pings the client every `ping_interval` and ends the connection once `ping_max` pings went
/// unanswered. The first ping comes early (at most 2 s, plus jitter), as nats-server does,
/// so a dead peer is noticed soon after it connects. A connection over WebSocket (a client,
/// or a leaf link either way) is pinged every `websocket { ping_interval }` instead when
/// that is set (nats-server's `setPingTimer`).
pub(crate) async fn ping_loop(client: &Client, shared: &Shared, websocket: bool) {
    let ws = shared.opts.websocket.ping_interval;
    let ws = (websocket && !ws.is_zero()).then_some(ws);
    // read at each tick: a reload may change them
    let interval = || ws.unwrap_or_else(|| shared.limits.ping_interval()).max(Duration::from_millis(10));
    let first = interval().min(Duration::from_secs(2));
    let jitter = first.mul_f64(fastrand::f64() * 0.2);
    tokio::time::sleep(first + jitter).await;
    loop {
        if client.pings_out.load(Ordering::Relaxed) + 1 > shared.limits.ping_max().max(0) as u32 {
            debug!(cid = client.id, "Stale Client Connection - Closing");
            client.close(Some(ProtocolError::StaleConnection));
            return;
        }
        client.pings_out.fetch_add(1, Ordering::Relaxed);
        client.push(PING);
        tokio::time::sleep(interval()).await;
    }
}

/// Ends a connection that has not sent `CONNECT` within the auth timeout, when auth is on.
pub(crate) async fn auth_timer(client: &Client, shared: &Shared) {
    let auth = shared.authenticator(client.kind);
    if !auth.required() {
        return std::future::pending().await;
    }
    tokio::time::sleep(auth.timeout()).await;
    if client.connected.load(Ordering::Relaxed) {
        return std::future::pending().await;
    }
    client.close(Some(ProtocolError::AuthenticationTimeout));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::options::Options;

    /// The rules [`DeliveryBatch`] lives by, on one thread: deliveries keep their receiver's
    /// buffer locked for the next one, a push to it from the same thread goes into the held
    /// buffer (waiting for its lock would never end), a thread holds one buffer at a time,
    /// and nothing stays locked outside a batch or after it.
    #[tokio::test]
    async fn a_batch_holds_one_buffer_at_a_time_and_lets_go_at_its_end() {
        let opts = Options { host: "127.0.0.1".into(), port: -1, ..Default::default() };
        let server = crate::server::Server::bind(opts).await.unwrap();
        let shared = server.shared().clone();
        let client = |id| Client::new(id, Kind::Tcp, SocketAddr::from(([127, 0, 0, 1], 0)));
        let (a, b) = (client(1), client(2));
        let deliver =
            |c: &Client, m: &[u8]| c.deliver(None, b"1", b"s", None, None, m, 1 << 20, &shared, &mut false, &mut false);
        let held = |c: &Client| c.out.try_lock().is_none();
        {
            let _batch = DeliveryBatch::begin();
            deliver(&a, b"1");
            assert!(held(&a));
            deliver(&a, b"2");
            a.push(b"PONG\r\n");
            assert!(held(&a));
            deliver(&b, b"3");
            assert!(!held(&a) && held(&b), "one buffer at a time");
            a.push(b"+OK\r\n");
            assert!(!held(&a) && !held(&b), "a push is not kept, and lets go of the buffer held");
            deliver(&b, b"4");
            assert!(held(&b));
        }
        assert!(!held(&b), "the end of the batch lets go");
        deliver(&a, b"5");
        assert!(!held(&a), "nothing is kept outside a batch");
        let a_got = a.out.lock().buf.clone();
        assert_eq!(&a_got[..], &b"MSG s 1 1\r\n1\r\nMSG s 1 1\r\n2\r\nPONG\r\n+OK\r\nMSG s 1 1\r\n5\r\n"[..]);
        assert_eq!(&b.out.lock().buf[..], &b"MSG s 1 1\r\n3\r\nMSG s 1 1\r\n4\r\n"[..]);
    }
}
