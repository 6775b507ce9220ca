//! The link's browser half: it hosts the core's [`edgebus_core::link::Link`] and only does
//! I/O: a `WebSocket` (binary frames) for the bytes, one `setTimeout` for the link's next
//! deadline, the outbox's IndexedDB records, and status events for the page.
//!
//! Every decision (the handshake, keepalive, the connect timeout, the backoff, what is
//! exported, the echo rule, the outbox) is the core's; the link is one more local connection
//! of the page's broker through [`BrokerPort`].
//!
//! Every JavaScript callback (socket events, the timer) is owned by the [`Link`] and holds
//! only a weak reference to the bus; dropping the link unhooks and drops them all.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use edgebus_core::broker::Broker;
use edgebus_core::link::{self, BrokerPort, Entry, Event, LinkConfig, Outbox, OutboxCommit, Schedule};
use futures_channel::oneshot;
use gloo_timers::callback::Timeout;
use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::bus::{after, now_ns, Inner, Shared};

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

/// Drops `value` once the running callback returned: a socket or timer must never be
/// dropped from inside its own callback.
fn drop_later<T: 'static>(value: T) {
    wasm_bindgen_futures::spawn_local(async move { drop(value) });
}

/// What carries the link's bytes.
enum Conn {
    /// A WebSocket to a server.
    Ws(Socket),
    /// The bus's leader context over the tabs' channel ([`crate::tabs`]); `None` until a
    /// leader answered.
    #[cfg(feature = "jetstream")]
    Tab(Option<String>),
}

/// A bus's link to a server, or a client context's link to its leader.
pub struct Link {
    core: link::Link,
    port: BrokerPort,
    url: String,
    bus: Weak<RefCell<Inner>>,
    socket: Option<Conn>,
    /// Set for a client context's link to its leader: dial over this channel, not a socket.
    #[cfg(feature = "jetstream")]
    tabs: Option<Rc<crate::tabs::Pipe>>,
    /// Waiting for the first `Connected` (a client context's `open`).
    connected_waiters: Vec<oneshot::Sender<()>>,
    /// Numbers sockets, so events of a replaced one are ignored.
    socket_id: u64,
    /// The core's deadline the timer is armed for.
    timer: Option<(u64, Timeout)>,
    status: Option<js_sys::Function>,
    pending_status: Vec<JsValue>,
    /// The outbox size the last `outbox` status event showed.
    reported_outbox: usize,
    db: Option<Rc<crate::disk::Disk>>,
    /// The core's last `Persist`, until the commit loop takes it.
    commit: Option<OutboxCommit>,
    committing: bool,
    commit_waiters: Vec<oneshot::Sender<()>>,
    empty_waiters: Vec<oneshot::Sender<()>>,
}

/// How the link is set up (from `bus.connect(url, opts)`).
pub struct LinkOptions {
    pub config: LinkConfig,
    pub reconnect_min_ms: u32,
    pub reconnect_max_ms: u32,
    /// Keepalive and handshake timing (nats.js's `pingInterval`, `maxPingOut`, `timeout`);
    /// `None` takes the core's default (nats.js's).
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
        db: Option<Rc<crate::disk::Disk>>,
    ) -> Result<Link, String> {
        let defaults = Schedule::default();
        let schedule = Schedule {
            ping_interval_ms: opts.ping_interval_ms.unwrap_or(defaults.ping_interval_ms),
            max_ping_out: opts.max_ping_out.unwrap_or(defaults.max_ping_out),
            connect_timeout_ms: opts.timeout_ms.unwrap_or(defaults.connect_timeout_ms),
            reconnect_min_ms: opts.reconnect_min_ms,
            reconnect_max_ms: opts.reconnect_max_ms,
        };
        let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        let outbox = Outbox::new(db.is_some(), stored);
        let core = link::Link::new(opts.config, schedule, outbox, seed).map_err(|e| e.to_string())?;
        let port = BrokerPort::attach(broker, core.config()).map_err(|e| e.to_string())?;
        Ok(Link {
            core,
            port,
            url: url.into(),
            bus: Weak::new(),
            socket: None,
            #[cfg(feature = "jetstream")]
            tabs: None,
            connected_waiters: Vec::new(),
            socket_id: 0,
            timer: None,
            status: opts.status,
            pending_status: Vec::new(),
            reported_outbox: 0,
            db,
            commit: None,
            committing: false,
            commit_waiters: Vec::new(),
            empty_waiters: Vec::new(),
        })
    }

    /// Stops: the socket and timer go, local subscriptions end (the stored outbox stays).
    pub fn shutdown(&mut self, broker: &mut Broker) {
        let now = now_ns();
        self.core.close(now);
        self.drain(broker, now);
        self.port.detach(broker);
    }

    /// Takes what the page published on exported subjects (and replies to server requests)
    /// and hands it to the link; writes whatever is ready to the socket.
    pub fn take_local(&mut self, broker: &mut Broker) {
        let now = now_ns();
        self.port.take_local(broker, &mut self.core, now);
        self.drain(broker, now);
    }

    /// Does what the core asks for, then writes its bytes and re-arms the timer.
    fn drain(&mut self, broker: &mut Broker, now: u64) {
        loop {
            let mut deliver = Vec::new();
            while let Some(event) = self.core.poll_event() {
                match event {
                    Event::Dial => self.dial(now),
                    Event::Hangup => self.hangup(),
                    Event::Connected { server } => {
                        for w in self.connected_waiters.drain(..) {
                            let _ = w.send(());
                        }
                        self.event("connected", &[("server", server.into())]);
                    }
                    Event::Disconnected { error } => {
                        let error = error.map_or(JsValue::UNDEFINED, |e| e.to_string().into());
                        self.event("disconnected", &[("error", error)]);
                    }
                    Event::Reconnecting { delay_ms, attempt } => {
                        // The reason rides on every attempt, not only the first `disconnected`.
                        let error = self.last_error();
                        self.event(
                            "reconnecting",
                            &[
                                ("delay", f64::from(delay_ms).into()),
                                ("attempt", f64::from(attempt).into()),
                                ("error", error),
                            ],
                        );
                    }
                    Event::Closed => {
                        // Closed by the core after repeated authentication refusals: the
                        // reason says so; a `close()` by the page has none.
                        let error = if self.core.gave_up_on_auth() { self.last_error() } else { JsValue::UNDEFINED };
                        self.event("closed", &[("error", error)]);
                    }
                    Event::Rejected { subject, size, max } => {
                        let text = format!("maximum payload exceeded: {size} > {max} (the server's max_payload)");
                        self.event(
                            "rejected",
                            &[
                                ("subject", String::from_utf8_lossy(&subject).as_ref().into()),
                                ("size", (size as f64).into()),
                                ("max", (max as f64).into()),
                                ("error", text.into()),
                            ],
                        );
                    }
                    // Kept by the core as the link's error: reported with `disconnected`.
                    Event::ServerError(_) => {}
                    Event::Deliver(msg) => deliver.push(msg),
                    Event::Persist(commit) => self.commit = Some(commit),
                    Event::Confirmed { remaining, .. } => {
                        if remaining == 0 {
                            for w in self.empty_waiters.drain(..) {
                                let _ = w.send(());
                            }
                        }
                    }
                }
            }
            if deliver.is_empty() {
                break;
            }
            self.port.deliver(broker, &mut self.core, now, deliver);
        }
        let outbox = self.core.outbox().len();
        if outbox != self.reported_outbox {
            // The outbox grew (local publishes) or drained (confirmations): a UI sees both.
            self.reported_outbox = outbox;
            self.event("outbox", &[]);
        }
        if let Some(bytes) = self.core.poll_transmit() {
            match &self.socket {
                Some(Conn::Ws(s)) if s.ws.ready_state() == WebSocket::OPEN => {
                    let _ = s.ws.send_with_u8_array(&bytes);
                }
                #[cfg(feature = "jetstream")]
                Some(Conn::Tab(Some(leader))) => {
                    if let Some(pipe) = &self.tabs {
                        pipe.post("data", Some(leader), Some(&bytes));
                    }
                }
                _ => {}
            }
        }
        self.arm_timer(now);
    }

    /// Opens a socket, its callbacks holding only a weak reference to the bus.
    fn dial(&mut self, now: u64) {
        self.hangup();
        #[cfg(feature = "jetstream")]
        if let Some(pipe) = &self.tabs {
            // to the leader known, or ask who leads: its answer reaches `tab_leader`
            let leader = pipe.leader();
            match &leader {
                Some(l) => pipe.post("open", Some(l), None),
                None => pipe.post("who", None, None),
            }
            self.socket = Some(Conn::Tab(leader));
            return;
        }
        let id = self.socket_id;
        let ws = match WebSocket::new(&self.url) {
            Ok(ws) => ws,
            Err(e) => {
                let text = e.dyn_ref::<js_sys::Error>().map_or_else(
                    || String::from(js_sys::JSON::stringify(&e).unwrap_or_default()),
                    |e| String::from(e.message()),
                );
                self.core.handle_dial_error(now, format!("bad URL {}: {text}", self.url));
                return;
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        let w = self.bus.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            let Some(rc) = w.upgrade() else { return };
            with_socket(&rc, id, |l, _, now| l.core.handle_open(now));
        });
        let w = self.bus.clone();
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
            with_socket(&rc, id, |l, broker, now| {
                // What the page published first goes first.
                l.port.take_local(broker, &mut l.core, now);
                l.core.handle_data(now, &bytes);
            });
        });
        let w = self.bus.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let Some(rc) = w.upgrade() else { return };
            with_socket(&rc, id, |l, _, now| {
                if let Some(old) = l.socket.take() {
                    drop_later(old);
                }
                let detail = format!("cannot connect to {} (close code {})", l.url, e.code());
                l.core.handle_close(now, Some(detail));
            });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.socket = Some(Conn::Ws(Socket { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close }));
    }

    /// Forgets the current socket: whatever it still reports is ignored.
    fn hangup(&mut self) {
        self.socket_id += 1;
        match self.socket.take() {
            #[cfg(feature = "jetstream")]
            Some(Conn::Tab(Some(leader))) if self.tabs.is_some() => {
                if let Some(pipe) = &self.tabs {
                    pipe.post("close", Some(&leader), None);
                }
            }
            Some(old) => drop_later(old),
            None => {}
        }
    }

    /// One timer, armed for the core's next deadline.
    fn arm_timer(&mut self, now: u64) {
        let want = self.core.poll_timeout();
        if self.timer.as_ref().map(|t| t.0) == want {
            return;
        }
        if let Some(old) = self.timer.take() {
            drop_later(old);
        }
        let Some(at) = want else { return };
        let ms = u32::try_from(at.saturating_sub(now).div_ceil(1_000_000)).unwrap_or(u32::MAX);
        let w = self.bus.clone();
        let timeout = Timeout::new(ms, move || {
            let Some(rc) = w.upgrade() else { return };
            with_link(&rc, |l, broker| {
                let now = now_ns();
                if let Some(done) = l.timer.take() {
                    drop_later(done);
                }
                l.core.handle_timeout(now);
                l.drain(broker, now);
            });
            after(&rc);
        });
        self.timer = Some((at, timeout));
    }

    /// The core's reason the link is (or last went) down, for a status event.
    fn last_error(&self) -> JsValue {
        self.core.last_error().map_or(JsValue::UNDEFINED, |e| e.to_string().into())
    }

    /// A status event for the page: `{ type, outbox, url, ...extra }`.
    fn event(&mut self, kind: &str, extra: &[(&str, JsValue)]) {
        let o = Object::new();
        let _ = Reflect::set(&o, &"type".into(), &kind.into());
        let _ = Reflect::set(&o, &"outbox".into(), &(self.core.outbox().len() as f64).into());
        let _ = Reflect::set(&o, &"url".into(), &self.url.as_str().into());
        for (k, v) in extra {
            let _ = Reflect::set(&o, &(*k).into(), v);
        }
        self.pending_status.push(o.into());
    }

    /// `{ url, state, server, outbox, sent, received, reconnects, exports, imports, error? }`.
    pub fn info(&self) -> JsValue {
        let stats = self.core.stats();
        let config = self.core.config();
        let o = Object::new();
        let set = |k: &str, v: JsValue| drop(Reflect::set(&o, &JsValue::from_str(k), &v));
        let list =
            |l: &[String]| -> JsValue { l.iter().map(|s| JsValue::from_str(s)).collect::<js_sys::Array>().into() };
        set("url", self.url.as_str().into());
        set("state", self.core.state().as_str().into());
        set("server", self.core.server().into());
        set("outbox", (self.core.outbox().len() as f64).into());
        set("sent", (stats.sent as f64).into());
        set("received", (stats.received as f64).into());
        set("reconnects", (stats.reconnects as f64).into());
        set("exports", list(&config.exports));
        set("imports", list(&config.imports));
        set("error", self.core.last_error().map_or(JsValue::NULL, |e| e.to_string().into()));
        o.into()
    }

    /// Whether an outbox commit should start now (and marks it started).
    pub fn start_commit(&mut self) -> bool {
        if self.committing || self.db.is_none() || self.commit.is_none() {
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

/// Runs a callback of socket `id` (if it is still the current one), then the core's outputs.
fn with_socket(rc: &Shared, id: u64, f: impl FnOnce(&mut Link, &mut Broker, u64)) {
    with_link(rc, |l, broker| {
        if l.socket_id == id {
            let now = now_ns();
            f(l, broker, now);
            l.drain(broker, now);
        }
    });
    after(rc);
}

/// Starts the link: the first socket opens now.
pub fn start(rc: &Shared) {
    let bus = Rc::downgrade(rc);
    with_link(rc, |l, broker| {
        l.bus = bus;
        let now = now_ns();
        l.core.connect(now);
        l.drain(broker, now);
    });
    after(rc);
}

/// Delivers pending status events (outside any borrow: callbacks may use the bus).
pub fn dispatch_status(rc: &Shared) {
    let Some((callback, events)) = rc.borrow_mut().link.as_mut().and_then(Link::take_status) else { return };
    #[cfg(feature = "jetstream")]
    crate::tabs::relay_status(rc, &events);
    for e in events {
        if let Err(err) = callback.call1(&JsValue::NULL, &e) {
            web_sys::console::error_2(&"edgebus: status callback threw".into(), &err);
        }
    }
}

/// Writes the outbox's changes to IndexedDB, one commit at a time, until the core has none.
pub async fn commit_loop(weak: Weak<RefCell<Inner>>) {
    loop {
        let Some(rc) = weak.upgrade() else { return };
        let job = with_link(&rc, |l, _| match (&l.db, l.commit.take()) {
            (Some(db), Some(commit)) => Some((db.clone(), commit)),
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
        // the core-only build opens no store: `db` is always `None` there
        #[cfg(feature = "jetstream")]
        if let Err(e) = db.write_outbox(commit).await {
            web_sys::console::error_1(&format!("edgebus: outbox commit failed: {e}").into());
        }
        #[cfg(not(feature = "jetstream"))]
        let _ = (db, commit);
        let Some(rc) = weak.upgrade() else { return };
        with_link(&rc, |l, broker| {
            let now = now_ns();
            l.core.handle_persisted(now);
            l.drain(broker, now);
        });
    }
}

/// Resolves once every outbox entry so far is stored.
pub async fn settle(rc: &Shared) {
    loop {
        let rx = {
            let mut i = rc.borrow_mut();
            let Some(l) = i.link.as_mut() else { return };
            if l.core.is_persisted() {
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
            if l.core.outbox().is_empty() {
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

// ---- a client context's link to its leader (crate::tabs) ------------------------------

#[cfg(feature = "jetstream")]
impl Link {
    /// Makes this link dial the bus's leader over the tabs' channel instead of a socket.
    pub fn over_tabs(&mut self, pipe: Rc<crate::tabs::Pipe>) {
        self.tabs = Some(pipe);
    }

    /// The publishes the other end has not confirmed yet.
    pub fn unconfirmed(&self) -> Vec<Entry> {
        self.core.outbox().entries().cloned().collect()
    }

    /// Subscribes `subject` at the leader for the page's subscription `sid` (`None`: ends
    /// it), and writes that out.
    pub fn mirror(&mut self, broker: &mut Broker, sid: u64, subject: Option<&str>) {
        match subject {
            Some(s) => self.core.want(sid, s),
            None => self.core.unwant(sid),
        }
        self.take_local(broker);
    }

    /// Whether this is a client context's link to its leader (not a server link).
    pub fn is_tab(&self) -> bool {
        self.tabs.is_some()
    }

    /// Resolves (or is dropped) once the link is connected, or the link is gone.
    pub fn connected(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if self.core.state() == link::LinkState::Connected {
            let _ = tx.send(());
        } else {
            self.connected_waiters.push(tx);
        }
        rx
    }

    fn tab_leader(&self) -> Option<&str> {
        match &self.socket {
            Some(Conn::Tab(Some(leader))) => Some(leader),
            _ => None,
        }
    }
}

/// Bytes from leader `from` for this context's link.
#[cfg(feature = "jetstream")]
pub fn tab_data(rc: &Shared, from: &str, bytes: &[u8]) {
    with_link(rc, |l, broker| {
        if l.tab_leader() == Some(from) {
            let now = now_ns();
            // what the page published first goes first
            l.port.take_local(broker, &mut l.core, now);
            l.core.handle_data(now, bytes);
            l.drain(broker, now);
        }
    });
    after(rc);
}

/// Leader `from` ended this context's connection (it closed, or refused the connection).
#[cfg(feature = "jetstream")]
pub fn tab_closed(rc: &Shared, from: &str) {
    with_link(rc, |l, broker| {
        if l.tab_leader() == Some(from) {
            let now = now_ns();
            l.socket = None;
            l.core.handle_close(now, Some(format!("the bus's leader {from} ended the connection")));
            l.drain(broker, now);
        }
    });
    after(rc);
}

#[cfg(feature = "jetstream")]
/// `leader` announced itself: a link waiting for a leader dials it, one connected to an
/// earlier leader treats that connection as closed and dials the new one at once.
pub fn tab_leader(rc: &Shared, leader: &str) {
    with_link(rc, |l, broker| {
        let now = now_ns();
        match &l.socket {
            Some(Conn::Tab(current)) if current.as_deref() == Some(leader) => return,
            Some(Conn::Tab(Some(_))) => {
                l.socket = None;
                l.core.handle_close(now, Some(format!("the bus has a new leader ({leader})")));
                l.drain(broker, now);
            }
            Some(Conn::Tab(None)) => {
                if let Some(pipe) = &l.tabs {
                    pipe.post("open", Some(leader), None);
                }
                l.socket = Some(Conn::Tab(Some(leader.into())));
                return;
            }
            _ => {}
        }
        // between attempts: cut the backoff short
        l.core.connect(now);
        l.drain(broker, now);
    });
    after(rc);
}
