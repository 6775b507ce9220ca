//! One bus per origin and name, shared by every tab and worker that opens it with IndexedDB
//! storage.
//!
//! **Leader.** The context holding the store's Web Lock ([`crate::lock`]) is the leader: it
//! owns the store, the JetStream engine and the server link, and serves every other context
//! of the name as one protocol connection of its broker (`Broker::connect`, `receive`,
//! `take_output`, `disconnect`): exactly what a WebSocket client of a server gets.
//!
//! **Clients.** Every other context is a normal in-page bus (its local subscriptions and
//! callbacks work unchanged) with no store of its own: its engine is detached, and its link
//! is the core's link state machine ([`crate::socket::Link`]) dialing the leader over this
//! module's `BroadcastChannel` instead of a WebSocket, exporting every subject and
//! subscribing at the leader what this context subscribes (so a publish no subscriber here
//! wants never crosses the channel).
//! Reconnects, re-subscribing, the outbox and the echo rule are the link's. JetStream calls go
//! to the leader's engine as the `$JS.API` requests they already are. KV, the object store
//! and pull fetches, which the page runs on its engine directly, the package sends to the
//! leader as requests too (`web/src/remote.ts`: the leader runs the same method and
//! replies); called here in a client they are refused ([`refuse_in_client`]).
//!
//! **Server link.** The link to a server is the leader's (one WebSocket per origin):
//! `bus.connect` in a client asks the leader over the channel, and every context keeps the
//! link's options, so whichever leads next re-creates it with the stored outbox. The
//! leader's status events are relayed to every context.
//!
//! **Hand-over.** A client stays queued for the store lock. When the leader closes or dies,
//! the browser grants the lock to the next in the queue, which loads the store (everything
//! acknowledged was committed before its ack) and announces itself; the other clients take
//! the announcement as the end of their connection and dial the new leader at once. Requests
//! in flight at that moment get no reply and fail with `TimeoutError`; none is sent twice.
//! A leader learns that a client is gone, whether it closed or crashed, from the client's own
//! lock ([`lock::client_lock_name`]), held for the client's life.
//!
//! Messages on the channel are `{ t, from, to?, bytes? }`: `who` (asks the leader to
//! announce itself), `leader` (the sender leads), `open`, `data` and `close` (one protocol
//! connection between a client and the leader, both ways); for the server link `connect`
//! and `unlink` (a client asks the leader), `link` / `unlink` (`{ url, opts }`: the leader
//! tells what it runs) and `status` (`{ event }`: the leader's link status).

use hashbrown::HashMap;
use std::cell::RefCell;
use std::future::Future;
use std::rc::{Rc, Weak};

use edgebus_core::broker::{Broker, ConnId};
use edgebus_core::jetstream::limits::StoreLimits;
use futures_channel::oneshot;
use futures_util::future::{select, Either};
use gloo_timers::future::TimeoutFuture;
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, BroadcastChannel, MessageEvent};

use crate::bus::{after, end_link, random_token, Inner, Shared};
use crate::disk::Kind;
use crate::error::BusError;
use crate::link::LinkConfig;
use crate::lock::{self, StoreLock};
use crate::socket::{self, Link, LinkOptions};

/// How long a client's `open` waits for its link to the leader before resolving anyway (its
/// calls then wait or time out like any request), milliseconds.
const CONNECT_WAIT_MS: u32 = 5_000;

/// This context's end of the bus's channel.
pub struct Pipe {
    channel: BroadcastChannel,
    /// This context's id on the channel.
    id: String,
    /// The leader last announced (clients only).
    leader: RefCell<Option<String>>,
}

impl Pipe {
    /// Posts `{ t: kind, from, to?, bytes? }`.
    pub fn post(&self, kind: &str, to: Option<&str>, bytes: Option<&[u8]>) {
        match bytes {
            Some(b) => self.post_fields(kind, to, &[("bytes", &Uint8Array::from(b).into())]),
            None => self.post_fields(kind, to, &[]),
        }
    }

    /// Posts `{ t: kind, from, to?, ...fields }`.
    fn post_fields(&self, kind: &str, to: Option<&str>, fields: &[(&str, &JsValue)]) {
        let o = Object::new();
        let _ = Reflect::set(&o, &"t".into(), &kind.into());
        let _ = Reflect::set(&o, &"from".into(), &self.id.as_str().into());
        if let Some(to) = to {
            let _ = Reflect::set(&o, &"to".into(), &to.into());
        }
        for (k, v) in fields {
            let _ = Reflect::set(&o, &(*k).into(), v);
        }
        // a closed channel (the bus closed) drops what is posted
        let _ = self.channel.post_message(&o);
    }

    pub fn leader(&self) -> Option<String> {
        self.leader.borrow().clone()
    }
}

/// The tab-sharing state of a bus opened with IndexedDB storage.
pub struct Hub {
    pipe: Rc<Pipe>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    db_name: String,
    kind: Kind,
    leading: bool,
    /// Leader: one protocol connection of the broker per client context, by client id.
    clients: HashMap<String, ConnId>,
    /// Client: held for this context's life (see [`lock::client_lock_name`]).
    client_lock: Option<StoreLock>,
    /// Client: aborts this context's place in the queue for the store lock.
    queued: Option<AbortController>,
    /// Client: the store limits its `open` asked for, applied if it comes to lead (the
    /// leader's own limits are the ones in force).
    limits: Option<StoreLimits>,
    /// The server link's `connect(url, opts)`, kept by every context: whichever leads next
    /// re-creates the link with them (the leader may crash, so clients hold a copy).
    server_link: Option<(String, JsValue)>,
    /// Where this context's link status events go (the leader's link reports to every
    /// context).
    status: Option<js_sys::Function>,
}

impl Hub {
    /// Whether this context is a client of another context's bus.
    pub fn is_client(&self) -> bool {
        !self.leading
    }

    /// `"leader"` or `"client"`.
    pub fn role(&self) -> &'static str {
        if self.leading {
            "leader"
        } else {
            "client"
        }
    }

    /// Leader: sends each client what its connection has to say, and ends the connections
    /// the broker closed. Runs after every pump.
    pub fn flush(&mut self, broker: &mut Broker) {
        let mut ended = Vec::new();
        for (client, &conn) in &self.clients {
            let out = broker.take_output(conn);
            if !out.is_empty() {
                self.pipe.post("data", Some(client), Some(&out));
            }
            if broker.closed(conn).is_some() {
                ended.push(client.clone());
            }
        }
        for client in ended {
            if let Some(conn) = self.clients.remove(&client) {
                broker.disconnect(conn);
            }
            self.pipe.post("close", Some(&client), None);
        }
    }

    /// The bus closes: clients are told, the channel and this context's locks go.
    pub fn shutdown(mut self, broker: &mut Broker) {
        for (client, conn) in self.clients.drain() {
            broker.disconnect(conn);
            self.pipe.post("close", Some(&client), None);
        }
        if let Some(queued) = self.queued.take() {
            queued.abort();
        }
        self.pipe.channel.set_onmessage(None);
        self.pipe.channel.close();
    }
}

/// Where channel messages go once the bus exists, and who waits to hear of a leader.
struct Listener {
    bus: RefCell<Weak<RefCell<Inner>>>,
    leader_seen: RefCell<Option<oneshot::Sender<()>>>,
}

fn text(o: &JsValue, key: &str) -> Option<String> {
    Reflect::get(o, &key.into()).ok().and_then(|v| v.as_string())
}

fn listen(pipe: &Rc<Pipe>, listener: Rc<Listener>) -> Closure<dyn FnMut(MessageEvent)> {
    let pipe = Rc::downgrade(pipe);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let Some(pipe) = pipe.upgrade() else { return };
        let data = e.data();
        let (Some(kind), Some(from)) = (text(&data, "t"), text(&data, "from")) else { return };
        if text(&data, "to").is_some_and(|to| to != pipe.id) {
            return;
        }
        if kind == "leader" {
            *pipe.leader.borrow_mut() = Some(from.clone());
            if let Some(tx) = listener.leader_seen.borrow_mut().take() {
                let _ = tx.send(());
            }
        }
        let bytes = Reflect::get(&data, &"bytes".into())
            .ok()
            .and_then(|b| b.dyn_into::<Uint8Array>().ok())
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let Some(rc) = listener.bus.borrow().upgrade() else { return };
        on_message(&rc, &kind, &from, &bytes, &data);
    });
    on_message
}

fn on_message(rc: &Shared, kind: &str, from: &str, bytes: &[u8], data: &JsValue) {
    let leading = match &rc.borrow().tabs {
        Some(hub) if !rc.borrow().is_closed() => hub.leading,
        _ => return,
    };
    match (kind, leading) {
        ("who", true) => {
            if let Some(hub) = &rc.borrow().tabs {
                hub.pipe.post("leader", None, None);
            }
        }
        ("leader", false) => socket::tab_leader(rc, from),
        ("open", true) => open_client(rc, from),
        ("data", true) => client_data(rc, from, bytes),
        ("data", false) => socket::tab_data(rc, from, bytes),
        ("close", true) => client_gone(rc, from),
        ("close", false) => socket::tab_closed(rc, from),
        ("connect", true) => connect_for_client(rc, data),
        ("unlink", true) => unlink_for_client(rc),
        ("link" | "unlink", false) => {
            let url = text(data, "url");
            let opts = Reflect::get(data, &"opts".into()).unwrap_or(JsValue::UNDEFINED);
            if let Some(hub) = rc.borrow_mut().tabs.as_mut() {
                hub.server_link = url.map(|url| (url, opts));
            }
        }
        ("status", false) => {
            let status = rc.borrow().tabs.as_ref().and_then(|hub| hub.status.clone());
            if let (Some(f), Ok(event)) = (status, Reflect::get(data, &"event".into())) {
                if let Err(err) = f.call1(&JsValue::NULL, &event) {
                    web_sys::console::error_2(&"edgebus: status callback threw".into(), &err);
                }
            }
        }
        _ => {}
    }
}

/// Leader: client `client` dials; a new connection replaces any earlier one of it.
fn open_client(rc: &Shared, client: &str) {
    let first = {
        let mut i = rc.borrow_mut();
        let Inner { broker, tabs, .. } = &mut *i;
        let Some(hub) = tabs.as_mut() else { return };
        let earlier = hub.clients.remove(client);
        if let Some(conn) = earlier {
            broker.disconnect(conn);
        }
        hub.clients.insert(client.into(), broker.connect());
        if let Some((url, opts)) = &hub.server_link {
            hub.pipe.post_fields("link", Some(client), &[("url", &url.as_str().into()), ("opts", opts)]);
        }
        earlier.is_none().then(|| lock::client_lock_name(&hub.db_name, client))
    };
    if let Some(name) = first {
        // granted once the client context is gone, however it went
        match lock::queue(&name) {
            Ok(waiting) => {
                let (bus, client) = (Rc::downgrade(rc), client.to_string());
                wasm_bindgen_futures::spawn_local(async move {
                    let Some(held) = waiting.granted().await else { return };
                    drop(held);
                    if let Some(rc) = bus.upgrade() {
                        client_gone(&rc, &client);
                    }
                });
            }
            Err(e) => web_sys::console::warn_1(&format!("edgebus: cannot watch tab {client}: {e}").into()),
        }
    }
    after(rc);
}

fn client_data(rc: &Shared, client: &str, bytes: &[u8]) {
    let known = {
        let mut i = rc.borrow_mut();
        let Inner { broker, tabs, .. } = &mut *i;
        let Some(hub) = tabs.as_mut() else { return };
        match hub.clients.get(client) {
            Some(&conn) => {
                broker.receive(conn, bytes);
                true
            }
            None => {
                // a connection this leader does not have (it restarted): the client redials
                hub.pipe.post("close", Some(client), None);
                false
            }
        }
    };
    if known {
        after(rc);
    }
}

fn client_gone(rc: &Shared, client: &str) {
    let mut i = rc.borrow_mut();
    let Inner { broker, tabs, .. } = &mut *i;
    if let Some(conn) = tabs.as_mut().and_then(|hub| hub.clients.remove(client)) {
        broker.disconnect(conn);
    }
}

/// Opens bus `name` with IndexedDB storage: as its leader if the store is free (or freed
/// within [`lock::WAIT_MS`], as when this page reloads), else as a client of the leader.
pub async fn open(name: &str, kind: Kind) -> Result<Shared, BusError> {
    let db_name = kind.db_name(name);
    let channel = BroadcastChannel::new(&format!("edgebus:bus:{db_name}"))
        .map_err(|_| BusError::Storage("IndexedDB storage needs BroadcastChannel to share the bus".into()))?;
    let pipe = Rc::new(Pipe { channel, id: random_token(), leader: RefCell::new(None) });
    let (seen_tx, seen_rx) = oneshot::channel();
    let listener = Rc::new(Listener { bus: RefCell::new(Weak::new()), leader_seen: RefCell::new(Some(seen_tx)) });
    let on_message = listen(&pipe, listener.clone());
    pipe.channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let queued = AbortController::new().map_err(|_| BusError::Storage("AbortController missing".into()))?;
    let granted = Box::pin(lock::queue_store(&db_name, &queued.signal())?.granted());
    pipe.post("who", None, None);
    let hub = Hub {
        pipe,
        _on_message: on_message,
        db_name,
        kind,
        leading: false,
        clients: HashMap::new(),
        client_lock: None,
        queued: Some(queued),
        limits: None,
        server_link: None,
        status: None,
    };
    let decided = select(granted, select(seen_rx, TimeoutFuture::new(lock::WAIT_MS))).await;
    let rc = match decided {
        Either::Left((Some(store_lock), _)) => lead(name, hub, store_lock).await?,
        Either::Left((None, _)) => return Err(BusError::Storage("the request for the store's Web Lock failed".into())),
        Either::Right((_, granted)) => follow(name, hub, granted).await?,
    };
    *listener.bus.borrow_mut() = Rc::downgrade(&rc);
    let connected = {
        let mut i = rc.borrow_mut();
        i.link.as_mut().filter(|l| l.is_tab()).map(Link::connected)
    };
    after(&rc);
    if let Some(connected) = connected {
        // the first calls should not go out before the link to the leader is up
        let _ = select(connected, TimeoutFuture::new(CONNECT_WAIT_MS)).await;
    }
    Ok(rc)
}

fn warn_all(warnings: Vec<String>) {
    for w in warnings {
        web_sys::console::warn_1(&JsValue::from_str(&format!("edgebus: {w}")));
    }
}

/// Loads the store and builds the bus as its leader.
async fn lead(name: &str, mut hub: Hub, store_lock: StoreLock) -> Result<Shared, BusError> {
    let (mut inner, warnings) = Inner::new(name, Some(crate::api::load(hub.kind, name).await?));
    warn_all(warnings);
    inner.store_lock = Some(store_lock);
    hub.leading = true;
    hub.queued = None;
    hub.pipe.post("leader", None, None);
    inner.tabs = Some(hub);
    Ok(Rc::new(RefCell::new(inner)))
}

/// Builds the bus as a client of the leader, still queued for the store lock.
async fn follow<F>(name: &str, mut hub: Hub, granted: F) -> Result<Shared, BusError>
where
    F: Future<Output = Option<StoreLock>> + Unpin + 'static,
{
    let client_lock = lock::queue(&lock::client_lock_name(&hub.db_name, &hub.pipe.id))?
        .granted()
        .await
        .ok_or_else(|| BusError::Storage("the request for this tab's Web Lock failed".into()))?;
    hub.client_lock = Some(client_lock);
    let (mut inner, _) = Inner::new(name, None);
    inner.detach_engine(hub.kind.label());
    let config = LinkConfig {
        exports: vec![">".into()],
        // nothing by configuration: the link mirrors this context's subscriptions
        imports: Vec::new(),
        inbox_prefix: inner.inbox_prefix.clone(),
        id_prefix: format!("{}-", hub.pipe.id),
        name: name.into(),
        user: None,
        pass: None,
        token: None,
        skip_consumer_deliveries: true,
    };
    let opts = LinkOptions {
        config,
        // the leader is a message away: retry soon, and a new leader is dialed at once anyway
        reconnect_min_ms: 50,
        reconnect_max_ms: 1_000,
        ping_interval_ms: None,
        max_ping_out: None,
        timeout_ms: Some(2_000),
        status: None,
    };
    let mut link =
        Link::new(&mut inner.broker, &format!("tabs:{name}"), opts, Vec::new(), None).map_err(BusError::BadSubject)?;
    link.over_tabs(hub.pipe.clone());
    inner.link = Some(link);
    inner.tabs = Some(hub);
    let rc = Rc::new(RefCell::new(inner));
    socket::start(&rc);
    let bus = Rc::downgrade(&rc);
    wasm_bindgen_futures::spawn_local(async move {
        let Some(store_lock) = granted.await else { return };
        let Some(rc) = bus.upgrade() else { return };
        if let Err(e) = promote(&rc, store_lock).await {
            web_sys::console::error_1(&format!("edgebus: taking over the bus failed: {e}").into());
        }
    });
    Ok(rc)
}

/// The store lock came to this client: the leader is gone. Loads the store, drops the link
/// to the old leader and announces itself.
async fn promote(rc: &Shared, store_lock: StoreLock) -> Result<(), BusError> {
    let (name, kind) = {
        let i = rc.borrow();
        let Some(kind) = i.tabs.as_ref().map(|hub| hub.kind).filter(|_| !i.is_closed()) else { return Ok(()) };
        (i.name.clone(), kind)
    };
    let (db, journal) = crate::api::load(kind, &name).await?;
    if rc.borrow().is_closed() {
        db.close().await;
        return Ok(());
    }
    {
        let mut i = rc.borrow_mut();
        let warnings = i.attach_store(db, journal, store_lock);
        warn_all(warnings);
        let kept = i.link.as_ref().filter(|l| l.is_tab()).map(Link::unconfirmed).unwrap_or_default();
        i.feed_engine(&kept);
    }
    end_link(rc);
    let limits = rc.borrow_mut().tabs.as_mut().and_then(|hub| {
        hub.leading = true;
        hub.client_lock = None;
        hub.queued = None;
        *hub.pipe.leader.borrow_mut() = None;
        hub.pipe.post("leader", None, None);
        hub.limits.take()
    });
    if let Some(limits) = limits {
        crate::bus::engine_call(rc, |js, _, _| js.set_limits(limits))?;
    }
    after(rc);
    // the package starts serving the clients' engine calls (web/src/remote.ts)
    if let Some(status) = status_sink(rc) {
        let event = Object::new();
        let _ = Reflect::set(&event, &"type".into(), &"leader".into());
        if let Err(err) = status.call1(&JsValue::NULL, &event) {
            web_sys::console::error_2(&"edgebus: status callback threw".into(), &err);
        }
    }
    // the link the old leader had, with its options and the stored outbox
    let server_link = rc.borrow().tabs.as_ref().and_then(|hub| hub.server_link.clone());
    if let Some((url, opts)) = server_link {
        crate::api::link::link_up(rc, url, opts, None).await?;
    }
    Ok(())
}

/// A client keeps store limits for when it leads (its engine has no store to limit);
/// `false` when this context runs its own engine, which takes them now.
pub fn defer_limits(rc: &Shared, limits: StoreLimits) -> bool {
    match rc.borrow_mut().tabs.as_mut() {
        Some(hub) if hub.is_client() => {
            hub.limits = Some(limits);
            true
        }
        _ => false,
    }
}

/// A client's flush: waits until the leader confirmed everything this context published
/// (the link's outbox is empty), or this context became the leader.
pub async fn settle(rc: &Shared) {
    let client = rc.borrow().tabs.as_ref().is_some_and(Hub::is_client);
    if client {
        socket::drained(rc).await;
    }
}

/// `NotLeaderError` for `what` in a client context: what needs the store's engine, which a
/// client does not run (the package routes these calls to the leader, see
/// `web/src/remote.ts`). KV and the object store run on the engine directly; `fetch` gets
/// JetStream deliveries, which a protocol connection receives under the stream's subject
/// on the sid of its `>` import, so the client cannot tell which of its inboxes they are for.
pub fn refuse_in_client(i: &Inner, what: &str) -> Result<(), BusError> {
    if i.tabs.as_ref().is_some_and(Hub::is_client) {
        return Err(BusError::NotLeader(what.into()));
    }
    Ok(())
}

// ---- the server link: the leader's, asked for and watched from any context -------------

/// `bus.connect` in a client context: the leader makes the link (one WebSocket per origin)
/// and this context keeps the options for when it leads. `false` when this context makes
/// the link itself (it leads, or the bus is not shared).
pub fn connect_from_client(rc: &Shared, url: &str, opts: &JsValue, status: Option<js_sys::Function>) -> bool {
    let mut i = rc.borrow_mut();
    let Some(hub) = i.tabs.as_mut() else { return false };
    if status.is_some() {
        hub.status = status;
    }
    if hub.leading {
        return false;
    }
    hub.server_link = Some((url.into(), opts.clone()));
    let leader = hub.pipe.leader();
    hub.pipe.post_fields("connect", leader.as_deref(), &[("url", &url.into()), ("opts", opts)]);
    true
}

/// Leader: a client's `bus.connect`. A bus already linked keeps its one link.
fn connect_for_client(rc: &Shared, data: &JsValue) {
    let Some(url) = text(data, "url") else { return };
    let opts = Reflect::get(data, &"opts".into()).unwrap_or(JsValue::UNDEFINED);
    if rc.borrow().link.is_some() {
        return;
    }
    let rc = rc.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = crate::api::link::link_up(&rc, url, opts, None).await {
            web_sys::console::error_1(&format!("edgebus: a tab's bus.connect failed: {e}").into());
        }
    });
}

/// `link.close()` in a client context: the leader ends the link for every context. `false`
/// when this context holds the link.
pub fn unlink_from_client(rc: &Shared) -> bool {
    let mut i = rc.borrow_mut();
    match i.tabs.as_mut() {
        Some(hub) if hub.is_client() => {
            hub.server_link = None;
            let leader = hub.pipe.leader();
            hub.pipe.post("unlink", leader.as_deref(), None);
            true
        }
        _ => false,
    }
}

fn unlink_for_client(rc: &Shared) {
    let has_server_link = rc.borrow().link.as_ref().is_some_and(|l| !l.is_tab());
    if !has_server_link {
        return;
    }
    let rc = rc.clone();
    wasm_bindgen_futures::spawn_local(async move {
        socket::settle(&rc).await;
        end_link(&rc);
        link_ended(&rc);
    });
}

/// The leader made its server link: every context keeps the options.
pub fn link_made(rc: &Shared, url: &str, opts: &JsValue) {
    if let Some(hub) = rc.borrow_mut().tabs.as_mut() {
        hub.server_link = Some((url.into(), opts.clone()));
        if hub.leading {
            hub.pipe.post_fields("link", None, &[("url", &url.into()), ("opts", opts)]);
        }
    }
}

/// The link was closed on purpose (`link.close()`): no later leader re-creates it.
pub fn link_ended(rc: &Shared) {
    if let Some(hub) = rc.borrow_mut().tabs.as_mut() {
        hub.server_link = None;
        if hub.leading {
            hub.pipe.post("unlink", None, None);
        }
    }
}

/// Sets where this context's link status events go.
pub fn watch_link(rc: &Shared, status: js_sys::Function) {
    if let Some(hub) = rc.borrow_mut().tabs.as_mut() {
        hub.status = Some(status);
    }
}

/// The status callback a link this context makes reports to, if it shares the bus.
pub fn status_sink(rc: &Shared) -> Option<js_sys::Function> {
    rc.borrow().tabs.as_ref().and_then(|hub| hub.status.clone())
}

/// Leader: its server link's status events go to every client context too.
pub fn relay_status(rc: &Shared, events: &[JsValue]) {
    if let Some(hub) = rc.borrow().tabs.as_ref().filter(|hub| hub.leading) {
        for e in events {
            hub.pipe.post_fields("status", None, &[("event", e)]);
        }
    }
}
