//! One client connection: its outbound buffer (shared, so other connections' readers can
//! deliver into it), and the task that reads, writes and keeps it alive.
//!
//! Delivery is direct: the publishing connection's reader matches the subject (from its own
//! match cache, no lock on a hit), appends `MSG` lines straight into each receiver's outbound
//! buffer under that receiver's short mutex, and, once it has routed everything one read
//! brought, wakes the writers of the receivers whose buffers were empty. The writer swaps the
//! whole buffer out and writes it with one call, so a burst of messages costs one syscall
//! (or one WebSocket frame).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use edgebus_core::jetstream::consumer::ACK_PREFIX;
use edgebus_core::policy::{self, Conduct, Count, SubOutcome, Unsubscribe};
use edgebus_core::proto::{write_info, write_msg, ProtocolError, PING};
use edgebus_core::route::route;
use edgebus_core::session::{Event, Session};
use edgebus_core::sublist::{MatchCache, MatchResult};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tracing::{debug, trace, warn};

use crate::server::Shared;
use crate::transport::{self, Kind, Reader, Writer};

/// A subscription as the trie holds it.
pub struct Sub {
    pub client: Arc<Client>,
    pub sid: Bytes,
    pub subject: Bytes,
    pub queue: Option<Bytes>,
    /// Auto-unsubscribe limit; 0 = none.
    max: AtomicU64,
    delivered: AtomicU64,
    closed: AtomicBool,
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

pub struct Client {
    pub id: u64,
    pub kind: Kind,
    pub addr: SocketAddr,
    pub started: SystemTime,
    out: Mutex<Outbound>,
    /// Wakes the writer: data was queued into an empty buffer, or the connection is closing.
    wake: Notify,
    /// Makes the writer abandon a write in progress (slow consumer).
    kill: Notify,
    /// Signalled after every completed write, for publishers stalled on this client.
    drained: Notify,
    headers: AtomicBool,
    connected: AtomicBool,
    pings_out: AtomicU32,
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
}

impl Client {
    fn new(id: u64, kind: Kind, addr: SocketAddr) -> Self {
        Client {
            id,
            kind,
            addr,
            started: SystemTime::now(),
            out: Mutex::new(Outbound { buf: BytesMut::with_capacity(4096), ..Default::default() }),
            wake: Notify::new(),
            kill: Notify::new(),
            drained: Notify::new(),
            headers: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            pings_out: AtomicU32::new(0),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            num_subs: AtomicU32::new(0),
            subs: Mutex::new(HashMap::new()),
            internal: None,
            meta: Mutex::new(ClientMeta::default()),
        }
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

    /// Subscribes this (internal) client to `subject`.
    pub fn subscribe_internal(self: &Arc<Self>, shared: &Shared, subject: &str) -> Option<SubRef> {
        let sub = SubRef(Arc::new(Sub {
            client: self.clone(),
            sid: Bytes::copy_from_slice(subject.as_bytes()),
            subject: Bytes::copy_from_slice(subject.as_bytes()),
            queue: None,
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }));
        shared.insert_sub(&sub).ok()?;
        self.num_subs.fetch_add(1, Ordering::Relaxed);
        Some(sub)
    }

    /// Removes one of this internal client's subscriptions.
    pub fn unsubscribe_internal(&self, shared: &Shared, sub: &SubRef) {
        if !sub.closed.swap(true, Ordering::AcqRel) {
            shared.remove_sub(sub);
            self.num_subs.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Queues protocol bytes for this client.
    pub fn push(&self, data: &[u8]) {
        let mut out = self.out.lock();
        if out.closing {
            return;
        }
        let was_empty = out.buf.is_empty();
        out.buf.extend_from_slice(data);
        drop(out);
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// Ends the connection after what is already queued, plus the error's `-ERR` if it has one.
    pub fn close(&self, reason: Option<ProtocolError>) {
        let mut out = self.out.lock();
        if out.closing {
            return;
        }
        out.closing = true;
        if let Some(e) = &reason {
            e.write(&mut out.buf);
        }
        out.reason = reason;
        drop(out);
        self.wake.notify_one();
    }

    /// Messages and bytes delivered to this client, and bytes waiting to be written.
    pub fn out_stats(&self) -> (u64, u64, usize) {
        let out = self.out.lock();
        (out.msgs, out.bytes, out.buf.len())
    }

    /// Appends one delivery. Returns false if the client is closing. A client whose backlog
    /// passes `max_pending` is cut off as a slow consumer: its backlog is dropped and its
    /// writer abandoned, so that it costs nobody else anything. A backlog past three quarters
    /// of the limit marks the client in `stalled`, so the publisher can pause briefly and let
    /// it drain (nats-server's stall), which spares fast readers behind a fast publisher.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &self,
        sid: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
        max_pending: usize,
        shared: &Shared,
        stalled: &mut bool,
        wake: &mut bool,
    ) -> bool {
        if let Some(sink) = &self.internal {
            return sink.upgrade().is_some_and(|s| s.deliver(subject, reply, header_len, message));
        }
        let headers_ok = self.headers.load(Ordering::Relaxed);
        let mut out = self.out.lock();
        if out.closing {
            return false;
        }
        let was_empty = out.buf.is_empty();
        write_msg(&mut out.buf, subject, sid, reply, header_len, message, headers_ok);
        out.msgs += 1;
        out.bytes += message.len() as u64;
        if out.buf.len() > max_pending {
            out.buf = BytesMut::new();
            out.closing = true;
            out.reason = Some(ProtocolError::SlowConsumer);
            drop(out);
            shared.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            warn!(cid = self.id, addr = %self.addr, "Slow Consumer Detected: pending bytes over max_pending");
            self.kill.notify_one();
            self.wake.notify_one();
            return true;
        }
        *stalled = out.buf.len() > max_pending / 4 * 3;
        *wake = was_empty;
        true
    }

    /// Waits (briefly) until this client's backlog is below the stall mark again.
    async fn wait_drained(&self, max_pending: usize) {
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

/// Serves one accepted connection until it ends.
pub async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, kind: Kind) {
    let (reader, writer, peer) = match transport::open(stream, peer, kind).await {
        Ok(parts) => parts,
        Err(e) => {
            debug!(%peer, "connection setup failed: {e}");
            return;
        }
    };
    let id = shared.next_cid.fetch_add(1, Ordering::Relaxed);
    let client = Arc::new(Client::new(id, kind, peer));
    let mut info = BytesMut::new();
    let json = serde_json::to_vec(&shared.info(kind, id, peer.ip().to_string())).unwrap_or_default();
    write_info(&mut info, &json);
    client.push(&info);
    let admitted = {
        let mut clients = shared.clients.lock();
        let ok = clients.len() < shared.opts.max_connections.max(0) as usize;
        if ok {
            clients.insert(id, client.clone());
        }
        ok
    };
    if !admitted {
        client.close(Some(ProtocolError::MaxConnections));
        write_loop(client, writer, shared).await;
        return;
    }
    shared.stats.total_connections.fetch_add(1, Ordering::Relaxed);
    debug!(cid = id, %peer, ?kind, "Client connection created");

    let mut conn = Conn {
        session: Session::new(shared.session_config()),
        publishing: Publishing {
            router: Router::new(&shared),
            conduct: Conduct::BEFORE_CONNECT,
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
        },
        shared: shared.clone(),
        client: client.clone(),
    };
    // The writer runs as its own task so that writing to this client and reading from it
    // proceed on different cores.
    let mut write = tokio::spawn(write_loop(client.clone(), writer, shared.clone()));
    {
        let read = conn.read_loop(reader);
        let ping = ping_loop(&client, &shared);
        let auth = auth_timer(&client, &shared);
        tokio::pin!(read, ping, auth);
        tokio::select! {
            _ = &mut write => {}
            _ = &mut read => { let _ = write.await; }
            _ = &mut ping => { let _ = write.await; }
            _ = &mut auth => { let _ = write.await; }
        }
    }
    conn.teardown();
    shared.clients.lock().remove(&id);
    debug!(cid = id, %peer, "Client connection closed");
}

/// The reader side of a connection: protocol state and the publisher half of routing.
struct Conn {
    shared: Arc<Shared>,
    client: Arc<Client>,
    session: Session,
    publishing: Publishing,
}

/// What a connection's reader needs to publish. It lives beside the session, not in it, so
/// a plain `PUB` can be routed with its subject and payload read in place from the
/// session's buffer.
struct Publishing {
    router: Router,
    /// What the connection's `CONNECT` asked for.
    conduct: Conduct,
    /// Counters gathered over one read and added to the shared ones once, so the hot path
    /// does not touch shared atomics per message.
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
}

impl Publishing {
    fn publish(
        &mut self,
        shared: &Shared,
        from: u64,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
    ) {
        self.in_msgs += 1;
        self.in_bytes += message.len() as u64;
        let delivered =
            self.router.route(shared, from, self.conduct.echo, subject, subject, reply, header_len, message);
        self.out_msgs += delivered as u64;
        self.out_bytes += (delivered * message.len()) as u64;
        if policy::owes_no_responders(self.conduct, delivered, reply) {
            if let Some(reply) = reply {
                self.router.no_responders(shared, from, subject, reply);
            }
        }
    }
}

impl Conn {
    async fn read_loop(&mut self, mut reader: Reader) {
        loop {
            match reader.read(self.session.buffer_mut()).await {
                Ok(0) | Err(_) => {
                    self.client.close(None);
                    return;
                }
                Ok(_) => {}
            }
            let keep_going = self.process();
            self.flush_stats();
            if !keep_going {
                return;
            }
            if let Some(receiver) = self.publishing.router.stalled.take() {
                receiver.wait_drained(self.publishing.router.max_pending).await;
            }
        }
    }

    /// Acts on every complete operation received so far; false once the connection must end.
    fn process(&mut self) -> bool {
        let keep_going = self.process_ops();
        self.publishing.router.wake_writers();
        keep_going
    }

    fn process_ops(&mut self) -> bool {
        loop {
            // The common case, a plain PUB, is routed straight out of the read buffer.
            if let Some(p) = self.session.peek_pub() {
                let buf = self.session.peeked();
                let reply = p.reply.clone().map(|r| &buf[r]);
                let (subject, payload) = (&buf[p.subject.clone()], &buf[p.payload.clone()]);
                self.publishing.publish(&self.shared, self.client.id, subject, reply, None, payload);
                self.session.consume(&p);
                continue;
            }
            let Some(ev) = self.session.poll_event() else {
                return true;
            };
            match ev {
                Event::Send(bytes) => self.client.push(bytes),
                Event::Error(e) => {
                    debug!(cid = self.client.id, "sending error: {e}");
                    let mut b = BytesMut::new();
                    e.write(&mut b);
                    self.client.push(&b);
                }
                Event::Connect(opts) => {
                    let authorized = crate::auth::authorize(&self.shared.opts.authorization, &opts);
                    let conduct = match policy::connect(&opts, authorized) {
                        Ok(conduct) => conduct,
                        Err(e) => {
                            warn!(cid = self.client.id, addr = %self.client.addr, "authorization violation");
                            return self.fail(e);
                        }
                    };
                    self.publishing.conduct = conduct;
                    self.client.headers.store(conduct.headers, Ordering::Relaxed);
                    self.client.connected.store(true, Ordering::Relaxed);
                    *self.client.meta.lock() = ClientMeta {
                        name: opts.name.unwrap_or_default(),
                        lang: opts.lang.unwrap_or_default(),
                        version: opts.version.unwrap_or_default(),
                    };
                }
                Event::ConnectInfo => {
                    let info = policy::connect_info(self.shared.info(
                        self.client.kind,
                        self.client.id,
                        self.client.addr.ip().to_string(),
                    ));
                    let mut b = BytesMut::new();
                    write_info(&mut b, &serde_json::to_vec(&info).unwrap_or_default());
                    self.client.push(&b);
                }
                Event::Publish(p) => {
                    trace!(cid = self.client.id, subject = %String::from_utf8_lossy(&p.subject), "PUB");
                    self.publishing.publish(
                        &self.shared,
                        self.client.id,
                        &p.subject,
                        p.reply.as_deref(),
                        p.header_len,
                        &p.message,
                    );
                }
                Event::Subscribe { subject, queue, sid } => self.subscribe(subject, queue, sid),
                Event::Unsubscribe { sid, max } => self.unsubscribe(&sid, max),
                Event::Pong => self.client.pings_out.store(0, Ordering::Relaxed),
                Event::Close(e) => {
                    debug!(cid = self.client.id, "closing: {e}");
                    return self.fail(e);
                }
            }
        }
    }

    fn fail(&mut self, e: ProtocolError) -> bool {
        self.session.close();
        self.client.close(Some(e));
        false
    }

    fn subscribe(&mut self, subject: Bytes, queue: Option<Bytes>, sid: Bytes) {
        let outcome = self.add_sub(subject, queue, sid);
        let mut answer = BytesMut::new();
        outcome.answer(self.publishing.conduct, &mut answer);
        if !answer.is_empty() {
            self.client.push(&answer);
        }
    }

    fn add_sub(&mut self, subject: Bytes, queue: Option<Bytes>, sid: Bytes) -> SubOutcome {
        {
            let mut subs = self.client.subs.lock();
            // Drop entries of subscriptions that expired through auto-unsubscribe now and
            // then, so a client doing SUB + UNSUB 1 per request does not grow the map forever.
            if subs.len() >= 64 && subs.len().is_power_of_two() {
                subs.retain(|_, s| !s.closed.load(Ordering::Relaxed));
            }
            let in_use = subs.get(&sid).is_some_and(|s| !s.closed.load(Ordering::Relaxed));
            let live = self.client.num_subs.load(Ordering::Relaxed) as usize;
            let max = usize::try_from(self.shared.opts.max_subscriptions.max(0)).unwrap_or(usize::MAX);
            if let Some(refused) = SubOutcome::precheck(in_use, live, max) {
                return refused;
            }
        }
        // Own copies, so the subscription does not pin the read buffer the line came from.
        let sub = SubRef(Arc::new(Sub {
            client: self.client.clone(),
            sid: Bytes::copy_from_slice(&sid),
            subject: Bytes::copy_from_slice(&subject),
            queue: queue.map(|q| Bytes::copy_from_slice(&q)),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }));
        if self.shared.insert_sub(&sub).is_err() {
            return SubOutcome::InvalidSubject;
        }
        self.client.num_subs.fetch_add(1, Ordering::Relaxed);
        self.client.subs.lock().insert(sub.sid.clone(), sub);
        SubOutcome::Added
    }

    fn unsubscribe(&mut self, sid: &[u8], max: Option<u64>) {
        let Some(sub) = self.client.subs.lock().get(sid).cloned() else {
            return;
        };
        if let Unsubscribe::After(max) = Unsubscribe::of(max, sub.delivered.load(Ordering::Acquire)) {
            sub.max.store(max, Ordering::Release);
            return;
        }
        self.client.subs.lock().remove(sid);
        if !sub.closed.swap(true, Ordering::AcqRel) {
            self.shared.remove_sub(&sub);
            self.client.num_subs.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn flush_stats(&mut self) {
        let s = &self.shared.stats;
        let p = &mut self.publishing;
        if p.in_msgs > 0 {
            s.in_msgs.fetch_add(p.in_msgs, Ordering::Relaxed);
            s.in_bytes.fetch_add(p.in_bytes, Ordering::Relaxed);
            self.client.in_msgs.fetch_add(p.in_msgs, Ordering::Relaxed);
            self.client.in_bytes.fetch_add(p.in_bytes, Ordering::Relaxed);
            p.in_msgs = 0;
            p.in_bytes = 0;
        }
        if p.out_msgs > 0 {
            s.out_msgs.fetch_add(p.out_msgs, Ordering::Relaxed);
            s.out_bytes.fetch_add(p.out_bytes, Ordering::Relaxed);
            p.out_msgs = 0;
            p.out_bytes = 0;
        }
    }

    /// Removes every subscription of the connection from the trie.
    fn teardown(&mut self) {
        let live: Vec<SubRef> = self
            .client
            .subs
            .lock()
            .drain()
            .map(|(_, s)| s)
            .filter(|s| !s.closed.swap(true, Ordering::AcqRel))
            .collect();
        if live.is_empty() {
            return;
        }
        let mut sl = self.shared.sublist.write();
        for s in &live {
            sl.remove(&s.subject, s.queue.as_deref(), s);
        }
        self.shared.genid.store(sl.generation(), Ordering::Release);
    }
}

/// The publishing half of routing, owned by whoever publishes (a connection's reader, the
/// JetStream engine): a private match cache, the queue-group RNG, and the bookkeeping of a
/// publish (expired auto-unsubscribes, a receiver to stall on).
pub struct Router {
    cache: MatchCache<SubRef>,
    /// The last subject routed and its result: a publisher repeating one subject skips even
    /// the cache's hash lookup.
    last: Option<(u64, Arc<MatchResult<SubRef>>)>,
    /// The subject of `last`, in a buffer reused across subjects (no allocation per change).
    last_subject: Vec<u8>,
    rng: fastrand::Rng,
    expired: Vec<SubRef>,
    /// A receiver whose backlog passed the stall mark during this read.
    pub stalled: Option<Arc<Client>>,
    /// Receivers given their first bytes since their writer last looked, woken together by
    /// [`Router::wake_writers`] once the publisher has routed everything it read. As in
    /// nats-server, a receiver then gets one write per batch of input rather than a
    /// trickle of small ones, which costs its reader a wake-up and a syscall each.
    wakes: Vec<Arc<Client>>,
    pub max_pending: usize,
}

impl Router {
    pub fn new(shared: &Shared) -> Router {
        Router {
            cache: MatchCache::default(),
            last: None,
            last_subject: Vec::new(),
            rng: fastrand::Rng::new(),
            expired: Vec::new(),
            stalled: None,
            wakes: Vec::new(),
            max_pending: usize::try_from(shared.opts.max_pending).unwrap_or(usize::MAX),
        }
    }

    /// Wakes the writers of the receivers that got something since the last call. Every
    /// publisher calls this after each batch it routes.
    pub fn wake_writers(&mut self) {
        for c in self.wakes.drain(..) {
            c.wake.notify_one();
        }
    }

    /// Delivers one message to every subscription matching `route_subject`, showing
    /// `msg_subject` in the `MSG` line (they differ for JetStream deliveries, which go to an
    /// inbox but carry the stream subject). Returns how many deliveries were made.
    #[allow(clippy::too_many_arguments)]
    pub fn route(
        &mut self,
        shared: &Shared,
        from: u64,
        echo: bool,
        route_subject: &[u8],
        msg_subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
    ) -> usize {
        let genid = shared.genid.load(Ordering::Acquire);
        let fresh = matches!(&self.last, Some((g, _)) if *g == genid && self.last_subject == route_subject);
        if !fresh {
            let r = match self.cache.get(genid, route_subject) {
                Some(r) => r,
                None => {
                    let (g, r) = shared.match_subject(route_subject);
                    // an ack subject carries its message's sequence numbers, so it is routed
                    // once: caching it would only churn the cache
                    if !route_subject.starts_with(ACK_PREFIX) {
                        self.cache.insert(g, route_subject, r.clone());
                    }
                    r
                }
            };
            self.last_subject.clear();
            self.last_subject.extend_from_slice(route_subject);
            self.last = Some((genid, r));
        }
        // borrowed, not cloned: no reference count traffic per message on a repeated subject
        let Some((_, result)) = &self.last else {
            return 0;
        };
        if result.plain.is_empty() && result.queues.is_empty() {
            return 0;
        }
        let max_pending = self.max_pending;
        let expired = &mut self.expired;
        let stall = &mut self.stalled;
        let wakes = &mut self.wakes;
        let delivered = route(result, &mut self.rng, |sub| {
            if sub.closed.load(Ordering::Relaxed) || !policy::echo_allows(echo, sub.client.id == from) {
                return false;
            }
            let n = sub.delivered.fetch_add(1, Ordering::AcqRel) + 1;
            match Count::of(n, sub.max.load(Ordering::Acquire)) {
                Count::Refuse => return false,
                Count::DeliverLast => {
                    sub.closed.store(true, Ordering::Release);
                    expired.push(sub.clone());
                }
                Count::Deliver => {}
            }
            let (mut stalled, mut wake) = (false, false);
            let ok = sub.client.deliver(
                &sub.sid,
                msg_subject,
                reply,
                header_len,
                message,
                max_pending,
                shared,
                &mut stalled,
                &mut wake,
            );
            if stalled && stall.is_none() {
                *stall = Some(sub.client.clone());
            }
            if wake {
                wakes.push(sub.client.clone());
            }
            ok
        });
        if !self.expired.is_empty() {
            for sub in self.expired.drain(..) {
                shared.remove_sub(&sub);
                sub.client.num_subs.fetch_sub(1, Ordering::Relaxed);
            }
        }
        delivered
    }
}

impl Router {
    /// Tells publisher `from` that its request on `subject` reached nobody, on its own
    /// subscription to `reply` (see [`policy::no_responders_target`]). Reply subjects are
    /// mostly unique inboxes, so the match is not cached.
    pub fn no_responders(&mut self, shared: &Shared, from: u64, subject: &[u8], reply: &[u8]) {
        let (_, matched) = shared.match_subject(reply);
        let Some(sub) = policy::no_responders_target(&matched, |s| s.client.id == from && !s.is_closed()) else {
            return;
        };
        let status = policy::no_responders_headers(subject);
        let (mut stalled, mut wake) = (false, false);
        let client = &sub.client;
        client.deliver(
            &sub.sid,
            reply,
            None,
            Some(status.len()),
            &status,
            self.max_pending,
            shared,
            &mut stalled,
            &mut wake,
        );
        if wake {
            self.wakes.push(client.clone());
        }
    }
}

/// Where an in-process subscriber (the JetStream host) takes its deliveries. Called from
/// inside routing, so it must not block on anything a router may hold.
pub trait InternalSink: Send + Sync {
    /// Takes one message; false once the subscriber has gone.
    fn deliver(&self, subject: &[u8], reply: Option<&[u8]>, header_len: Option<usize>, message: &[u8]) -> bool;
}

/// A message handed to an in-process subscriber, owned, for when it is processed later.
pub struct InternalMsg {
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

impl InternalMsg {
    pub fn copy_of(subject: &[u8], reply: Option<&[u8]>, header_len: Option<usize>, message: &[u8]) -> InternalMsg {
        let (headers, payload) = match header_len {
            Some(h) if h <= message.len() => {
                (Some(Bytes::copy_from_slice(&message[..h])), Bytes::copy_from_slice(&message[h..]))
            }
            _ => (None, Bytes::copy_from_slice(message)),
        };
        InternalMsg {
            subject: Bytes::copy_from_slice(subject),
            reply: reply.map(Bytes::copy_from_slice),
            headers,
            payload,
        }
    }
}

/// Writes whatever is queued, as it is queued, until the connection closes.
async fn write_loop(client: Arc<Client>, mut writer: Writer, shared: Arc<Shared>) {
    let deadline = shared.opts.write_deadline;
    let mut batch = BytesMut::with_capacity(64 * 1024);
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
                r = tokio::time::timeout(deadline, writer.write(&mut batch)) => match r {
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
            // A burst grew the buffer: give the memory back once the burst is over, so an idle
            // connection does not keep megabytes. Not while more is queued: freeing and
            // regrowing a buffer on every write of a sustained stream costs more in page
            // faults than the copying itself.
            if batch.capacity() > 4 << 20 && client.out.lock().buf.is_empty() {
                batch = BytesMut::with_capacity(64 * 1024);
            }
            continue;
        }
        if closing {
            writer.close(reason.as_ref()).await;
            return;
        }
        client.wake.notified().await;
    }
}

/// Pings the client every `ping_interval` and ends the connection once `ping_max` pings went
/// unanswered. The first ping comes early (at most 2 s, plus jitter), as nats-server does,
/// so a dead peer is noticed soon after it connects.
async fn ping_loop(client: &Client, shared: &Shared) {
    let interval = shared.opts.ping_interval.max(Duration::from_millis(10));
    let first = interval.min(Duration::from_secs(2));
    let jitter = first.mul_f64(fastrand::f64() * 0.2);
    tokio::time::sleep(first + jitter).await;
    loop {
        if client.pings_out.load(Ordering::Relaxed) + 1 > shared.opts.ping_max.max(0) as u32 {
            debug!(cid = client.id, "Stale Client Connection - Closing");
            client.close(Some(ProtocolError::StaleConnection));
            return;
        }
        client.pings_out.fetch_add(1, Ordering::Relaxed);
        client.push(PING);
        tokio::time::sleep(interval).await;
    }
}

/// Ends a connection that has not sent `CONNECT` within the auth timeout, when auth is on.
async fn auth_timer(client: &Client, shared: &Shared) {
    if !shared.opts.authorization.required() {
        return std::future::pending().await;
    }
    tokio::time::sleep(shared.opts.authorization.timeout).await;
    if client.connected.load(Ordering::Relaxed) {
        return std::future::pending().await;
    }
    client.close(Some(ProtocolError::AuthenticationTimeout));
}
