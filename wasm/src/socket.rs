//! The link's browser half: a `WebSocket` (binary frames) carrying the NATS protocol of
//! [`LinkCore`], reconnect timers, status events, and the outbox's IndexedDB records.
//!
//! The link is one more local connection of the page's broker. It subscribes the exported
//! subjects locally; what the page publishes on them reaches [`Link::take_local`] and goes
//! to the server (or waits in the outbox). What the server sends on imported subjects is
//! published locally from the same connection; deliveries that publish causes on the
//! link's own export subscriptions (a subject both imported and exported) are echoes and are
//! dropped, so nothing loops. A request the server sends to a page subscriber gets a one-shot
//! local subscription on its reply subject, whose message goes back to the server.
//!
//! Every JavaScript callback (socket events, the retry timer) is owned by the [`Link`] and
//! holds only a weak reference to the bus; dropping the link unhooks and drops them all.

use std::collections::{HashSet, VecDeque};
use std::rc::Rc;

use edgebus_core::broker::{Broker, ConnId};
use futures_channel::oneshot;
use gloo_timers::callback::{Interval, Timeout};
use indexed_db_futures::database::Database;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::bus::{after, Inner, Shared};
use crate::idb;
use crate::link::{Backoff, Entry, Event, LinkConfig, LinkCore, LinkState, Outbox};

/// Local reply subscriptions kept at most for requests the server sent into the page.
const MAX_REPLY_SUBS: usize = 1024;
/// nats.js's defaults for `pingInterval`, `maxPingOut` and `timeout`.
pub const PING_INTERVAL_MS: u32 = 120_000;
pub const MAX_PING_OUT: u32 = 2;
pub const CONNECT_TIMEOUT_MS: u32 = 20_000;

/// One open (or opening) WebSocket and the callbacks it calls.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// A bus's link to a server.
pub struct Link {
    pub core: LinkCore,
    url: String,
    conn: ConnId,
    export_subs: HashSet<u64>,
    /// One-shot local subscriptions on the reply subjects of requests from the server.
    reply_subs: VecDeque<u64>,
    socket: Option<Socket>,
    /// Numbers sockets, so events of a replaced one are ignored.
    socket_id: u64,
    retry: Option<Timeout>,
    /// Abandons an attempt whose handshake has not finished in time.
    handshake: Option<Timeout>,
    /// Pings the server while connected.
    keepalive: Option<Interval>,
    ping_interval_ms: u32,
    max_ping_out: u32,
    timeout_ms: u32,
    backoff: Backoff,
    /// Whether "disconnected" was reported since the last "connected".
    down_reported: bool,
    last_error: Option<String>,
    status: Option<js_sys::Function>,
    pending_status: Vec<JsValue>,
    db: Option<Rc<Database>>,
    committing: bool,
    commit_waiters: Vec<oneshot::Sender<()>>,
    empty_waiters: Vec<oneshot::Sender<()>>,
    reconnects: u64,
}

/// How the link is set up (from `bus.connect(url, opts)`).
pub struct LinkOptions {
    pub config: LinkConfig,
    pub reconnect_min_ms: u32,
    pub reconnect_max_ms: u32,
    /// Keepalive and handshake timing (nats.js's `pingInterval`, `maxPingOut`, `timeout`);
    /// `None` takes nats.js's default.
    pub ping_interval_ms: Option<u32>,
    pub max_ping_out: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub status: Option<js_sys::Function>,
}

impl Link {
    /// Creates the link (subscribing the exports locally); the socket opens in [`start`].
    pub fn new(
        broker: &mut Broker,
        url: &str,
        opts: LinkOptions,
        stored: Vec<Entry>,
        db: Option<Rc<Database>>,
    ) -> Result<Link, String> {
        opts.config.validate()?;
        let conn = broker.connect_local();
        let mut export_subs = HashSet::new();
        for s in &opts.config.exports {
            let sid = broker.subscribe_local(conn, s.as_bytes(), None).map_err(|e| format!("{s}: {e}"))?;
            export_subs.insert(sid);
        }
        let outbox = Outbox::new(db.is_some(), stored);
        Ok(Link {
            core: LinkCore::new(opts.config, outbox),
            url: url.into(),
            conn,
            export_subs,
            reply_subs: VecDeque::new(),
            socket: None,
            socket_id: 0,
            retry: None,
            handshake: None,
            keepalive: None,
            ping_interval_ms: opts.ping_interval_ms.unwrap_or(PING_INTERVAL_MS).max(1),
            max_ping_out: opts.max_ping_out.unwrap_or(MAX_PING_OUT),
            timeout_ms: opts.timeout_ms.unwrap_or(CONNECT_TIMEOUT_MS).max(1),
            backoff: Backoff::new(opts.reconnect_min_ms, opts.reconnect_max_ms),
            down_reported: false,
            last_error: None,
            status: opts.status,
            pending_status: Vec::new(),
            db,
            committing: false,
            commit_waiters: Vec::new(),
            empty_waiters: Vec::new(),
            reconnects: 0,
        })
    }

    /// Stops: the socket and timers go, local subscriptions end (the stored outbox stays).
    pub fn shutdown(&mut self, broker: &mut Broker) {
        self.retry = None;
        self.stop_timers();
        self.socket = None;
        self.core.stopped();
        broker.disconnect(self.conn);
        self.event("closed", &[]);
    }

    /// Takes what the page published on exported subjects (and replies to server requests)
    /// and hands it to the protocol; writes whatever is ready to the socket.
    pub fn take_local(&mut self, broker: &mut Broker) {
        for d in broker.take_deliveries(self.conn) {
            if self.export_subs.contains(&d.sub) {
                self.core.export(d.subject, d.reply, d.headers, d.payload);
            } else {
                self.reply_subs.retain(|s| *s != d.sub);
                self.core.send_live(&d.subject, d.reply.as_deref(), d.headers.as_deref(), &d.payload);
            }
        }
        self.write_out();
        if self.core.outbox.is_empty() {
            for w in self.empty_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    fn write_out(&mut self) {
        let Some(bytes) = self.core.take_output() else { return };
        if let Some(s) = &self.socket {
            if s.ws.ready_state() == WebSocket::OPEN {
                let _ = s.ws.send_with_u8_array(&bytes);
            }
        }
    }

    /// Bytes from the server.
    fn receive(&mut self, broker: &mut Broker, data: &[u8]) {
        self.take_local(broker);
        let was = self.core.state;
        let events = match self.core.receive(data) {
            Ok(ev) => ev,
            Err(e) => {
                self.last_error = Some(e);
                // Closing it reports no event: handle the close here. The socket (and the
                // callback running now) is dropped once this callback returned.
                if let Some(old) = self.socket.take() {
                    wasm_bindgen_futures::spawn_local(async move { drop(old) });
                }
                self.on_down();
                return;
            }
        };
        let mut imported = false;
        for ev in events {
            match ev {
                Event::Connected { .. } => {}
                Event::Error(text) => self.last_error = Some(text),
                Event::Import { subject, reply, headers, payload } => {
                    imported = true;
                    if let Some(r) = &reply {
                        if broker.has_interest(&subject) {
                            if let Ok(sid) = broker.subscribe_local(self.conn, r, None) {
                                broker.unsubscribe_local(self.conn, sid, 1);
                                self.reply_subs.push_back(sid);
                                if self.reply_subs.len() > MAX_REPLY_SUBS {
                                    if let Some(old) = self.reply_subs.pop_front() {
                                        broker.unsubscribe_local(self.conn, old, 0);
                                    }
                                }
                            }
                        }
                    }
                    let _ = broker.publish_local(
                        self.conn,
                        &subject,
                        &subject,
                        reply.as_deref(),
                        headers.as_deref(),
                        &payload,
                    );
                }
            }
        }
        if imported {
            // Our own publishes reaching our export subscriptions: echoes, never re-exported.
            let (echoes, rest): (Vec<_>, Vec<_>) =
                broker.take_deliveries(self.conn).into_iter().partition(|d| self.export_subs.contains(&d.sub));
            drop(echoes);
            for d in rest {
                self.reply_subs.retain(|s| *s != d.sub);
                self.core.send_live(&d.subject, d.reply.as_deref(), d.headers.as_deref(), &d.payload);
            }
        }
        if was != LinkState::Connected && self.core.state == LinkState::Connected {
            self.backoff.reset();
            self.retry = None;
            self.handshake = None;
            self.down_reported = false;
            self.last_error = None;
            let server = self.core.server().to_string();
            self.event("connected", &[("server", server.into())]);
        }
        self.write_out();
    }

    /// Drops the handshake and keepalive timers, later: this may run inside one of them.
    fn stop_timers(&mut self) {
        let timers = (self.handshake.take(), self.keepalive.take());
        if timers.0.is_some() || timers.1.is_some() {
            wasm_bindgen_futures::spawn_local(async move { drop(timers) });
        }
    }

    /// The socket is gone: report it once and schedule the next attempt.
    fn on_down(&mut self) {
        self.stop_timers();
        self.core.stopped();
        if !self.down_reported {
            self.down_reported = true;
            let err = self.last_error.clone().map_or(JsValue::UNDEFINED, JsValue::from);
            self.event("disconnected", &[("error", err)]);
        }
    }

    /// A status event for the page: `{ type, outbox, url, ...extra }`.
    fn event(&mut self, kind: &str, extra: &[(&str, JsValue)]) {
        let o = Object::new();
        let _ = Reflect::set(&o, &"type".into(), &kind.into());
        let _ = Reflect::set(&o, &"outbox".into(), &(self.core.outbox.len() as f64).into());
        let _ = Reflect::set(&o, &"url".into(), &self.url.as_str().into());
        for (k, v) in extra {
            let _ = Reflect::set(&o, &(*k).into(), v);
        }
        self.pending_status.push(o.into());
    }

    /// `{ url, state, server, outbox, sent, received, reconnects, exports, imports, error? }`.
    pub fn info(&self) -> serde_json::Value {
        let state = match self.core.state {
            LinkState::Connected => "connected",
            LinkState::Connecting => "connecting",
            LinkState::Down if self.retry.is_some() => "reconnecting",
            LinkState::Down => "disconnected",
        };
        serde_json::json!({
            "url": self.url, "state": state, "server": self.core.server(),
            "outbox": self.core.outbox.len(), "sent": self.core.sent, "received": self.core.received,
            "reconnects": self.reconnects, "exports": self.core.config.exports,
            "imports": self.core.config.imports, "error": self.last_error,
        })
    }

    /// Whether an outbox commit should start now (and marks it started).
    pub fn start_commit(&mut self) -> bool {
        if self.committing || self.db.is_none() || !self.core.outbox.commit_pending() {
            return false;
        }
        self.committing = true;
        true
    }

    /// Status events waiting for delivery, with the callback to call.
    pub fn take_status(&mut self) -> Option<(js_sys::Function, Vec<JsValue>)> {
        if self.pending_status.is_empty() {
            return None;
        }
        let events = std::mem::take(&mut self.pending_status);
        self.status.clone().map(|f| (f, events))
    }
}

fn with_link<R>(rc: &Shared, f: impl FnOnce(&mut Link, &mut Broker) -> R) -> Option<R> {
    let mut i = rc.borrow_mut();
    let Inner { broker, link, .. } = &mut *i;
    link.as_mut().map(|l| f(l, broker))
}

/// Opens a socket now (first attempt or a retry).
pub fn start(rc: &Shared) {
    let weak = Rc::downgrade(rc);
    let opened = with_link(rc, |l, _| {
        l.socket = None;
        l.socket_id += 1;
        let id = l.socket_id;
        let ws = match WebSocket::new(&l.url) {
            Ok(ws) => ws,
            Err(e) => {
                // Only a malformed URL throws here: retrying would not help.
                let text = e.dyn_ref::<js_sys::Error>().map_or_else(|| format!("{e:?}"), |e| String::from(e.message()));
                l.last_error = Some(format!("bad URL {}: {text}", l.url));
                return false;
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        // Nothing to send before the server's INFO.
        let on_open = Closure::<dyn FnMut()>::new(|| {});
        let w = weak.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            let bytes = if let Some(s) = data.as_string() {
                s.into_bytes()
            } else if let Ok(buf) = data.dyn_into::<js_sys::ArrayBuffer>() {
                js_sys::Uint8Array::new(&buf).to_vec()
            } else {
                return;
            };
            let Some(rc) = w.upgrade() else { return };
            let w = w.clone();
            let current = with_link(&rc, |l, broker| {
                if l.socket_id != id {
                    return false;
                }
                let was_up = l.socket.is_some();
                l.receive(broker, &bytes);
                if l.core.state == LinkState::Connected && l.keepalive.is_none() {
                    arm_keepalive(l, w, id);
                }
                was_up && l.socket.is_none()
            });
            if current == Some(true) {
                schedule_retry(&rc);
            }
            after(&rc);
        });
        let w = weak.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let Some(rc) = w.upgrade() else { return };
            let gone = with_link(&rc, |l, _| {
                if l.socket_id != id {
                    return None;
                }
                if l.last_error.is_none() && l.core.state != LinkState::Connected {
                    l.last_error = Some(format!("cannot connect to {} (close code {})", l.url, e.code()));
                }
                // Dropped after this callback returns, never while it runs.
                let old = l.socket.take();
                l.on_down();
                Some(old)
            });
            if let Some(Some(old)) = gone {
                wasm_bindgen_futures::spawn_local(async move { drop(old) });
                schedule_retry(&rc);
            } else if let Some(None) = gone {
                schedule_retry(&rc);
            }
            after(&rc);
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        l.core.start();
        l.socket = Some(Socket { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close });
        let w = weak.clone();
        let reason = format!("no connection to {} within {} ms", l.url, l.timeout_ms);
        l.handshake = Some(Timeout::new(l.timeout_ms, move || {
            if let Some(rc) = w.upgrade() {
                abandon(&rc, id, reason);
            }
        }));
        true
    });
    if opened == Some(false) {
        with_link(rc, |l, _| l.on_down());
    }
    after(rc);
}

/// Pings the server every `ping_interval_ms` while socket `id` is up; a link that leaves
/// `max_ping_out` pings unanswered is abandoned, as a closed one would be.
fn arm_keepalive(l: &mut Link, weak: std::rc::Weak<std::cell::RefCell<Inner>>, id: u64) {
    let (interval, max_out) = (l.ping_interval_ms, l.max_ping_out);
    l.keepalive = Some(Interval::new(interval, move || {
        let Some(rc) = weak.upgrade() else { return };
        let alive = with_link(&rc, |l, _| {
            if l.socket_id != id {
                return true;
            }
            let alive = l.core.keepalive(max_out);
            l.write_out();
            alive
        });
        if alive == Some(false) {
            abandon(&rc, id, format!("stale connection: {max_out} pings unanswered"));
        }
    }));
}

/// Gives up on socket `id` (still current) without waiting for it to close: a handshake
/// that did not finish in time, or a connection that stopped answering. A silent server
/// never closes the socket, so waiting for the browser's close event could take minutes.
fn abandon(rc: &Shared, id: u64, reason: String) {
    let gone = with_link(rc, |l, _| {
        if l.socket_id != id || l.socket.is_none() {
            return None;
        }
        l.last_error = Some(reason);
        let old = l.socket.take();
        l.on_down();
        Some(old)
    });
    if let Some(old) = gone.flatten() {
        // Dropped after this callback returns, never while it runs.
        wasm_bindgen_futures::spawn_local(async move { drop(old) });
        schedule_retry(rc);
    }
    after(rc);
}

/// Arms the retry timer with the next backoff delay.
fn schedule_retry(rc: &Shared) {
    let weak = Rc::downgrade(rc);
    with_link(rc, |l, _| {
        let delay = l.backoff.next_delay(js_sys::Math::random());
        l.reconnects += 1;
        let attempt = f64::from(l.backoff.attempt);
        let w = weak.clone();
        l.retry = Some(Timeout::new(delay, move || {
            if let Some(rc) = w.upgrade() {
                start(&rc);
            }
        }));
        l.event("reconnecting", &[("delay", f64::from(delay).into()), ("attempt", attempt.into())]);
    });
}

/// Delivers pending status events (outside any borrow: callbacks may use the bus).
pub fn dispatch_status(rc: &Shared) {
    let Some((callback, events)) = rc.borrow_mut().link.as_mut().and_then(Link::take_status) else { return };
    for e in events {
        if let Err(err) = callback.call1(&JsValue::NULL, &e) {
            web_sys::console::error_2(&"edgebus: status callback threw".into(), &err);
        }
    }
}

/// Writes the outbox's changes to IndexedDB until nothing is left to write.
pub async fn commit_loop(weak: std::rc::Weak<std::cell::RefCell<Inner>>) {
    loop {
        let Some(rc) = weak.upgrade() else { return };
        let job = with_link(&rc, |l, _| match &l.db {
            Some(db) if l.core.outbox.commit_pending() => Some((db.clone(), l.core.outbox.take_commit())),
            _ => {
                l.committing = false;
                for w in l.commit_waiters.drain(..) {
                    let _ = w.send(());
                }
                None
            }
        })
        .flatten();
        let Some((db, commit)) = job else { return };
        drop(rc);
        if let Err(e) = idb::write_outbox(&db, commit).await {
            web_sys::console::error_1(&format!("edgebus: outbox commit failed: {e}").into());
        }
    }
}

/// Resolves once every outbox entry so far is stored.
pub async fn settle(rc: &Shared) {
    loop {
        let rx = {
            let mut i = rc.borrow_mut();
            let Some(l) = i.link.as_mut() else { return };
            if !l.committing && !l.core.outbox.commit_pending() {
                return;
            }
            let (tx, rx) = oneshot::channel();
            l.commit_waiters.push(tx);
            rx
        };
        after(rc);
        if rx.await.is_err() {
            return;
        }
    }
}

/// Resolves once the outbox is empty (everything confirmed by the server).
pub async fn drained(rc: &Shared) -> bool {
    loop {
        let rx = {
            let mut i = rc.borrow_mut();
            let Some(l) = i.link.as_mut() else { return false };
            if l.core.outbox.is_empty() {
                return true;
            }
            let (tx, rx) = oneshot::channel();
            l.empty_waiters.push(tx);
            rx
        };
        if rx.await.is_err() {
            return false;
        }
    }
}
