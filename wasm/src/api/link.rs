//! `Bus` methods for the link to a server: `connect`, its state, flush and close.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::read::Opts;
use super::{promise, Bus};
use crate::bus;
use crate::error::BusError;
use crate::link::LinkConfig;
use crate::socket::{self, Link, LinkOptions};

struct ConnectOpts {
    exports: Vec<String>,
    imports: Vec<String>,
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
    name: Option<String>,
    /// Milliseconds before the first retry (doubling, with jitter, up to the max).
    reconnect_delay_min: Option<u32>,
    reconnect_delay_max: Option<u32>,
    /// Keepalive and connect timeout in milliseconds, as nats.js names them.
    ping_interval: Option<u32>,
    max_ping_out: Option<u32>,
    timeout: Option<u32>,
}

impl ConnectOpts {
    fn read(v: &JsValue) -> Result<Self, BusError> {
        let o = Opts::new(v)?;
        Ok(ConnectOpts {
            exports: o.strs("export")?,
            imports: o.strs("import")?,
            user: o.str("user")?,
            pass: o.str("pass")?,
            token: o.str("token")?,
            name: o.str("name")?,
            reconnect_delay_min: o.u32("reconnectDelayMin")?,
            reconnect_delay_max: o.u32("reconnectDelayMax")?,
            ping_interval: o.u32("pingInterval")?,
            max_ping_out: o.u32("maxPingOut")?,
            timeout: o.u32("timeout")?,
        })
    }
}

#[wasm_bindgen]
impl Bus {
    /// Links the bus to a NATS server's WebSocket port (`ws://host:port`). `opts`: `{ export?:
    /// string[], import?: string[], user?, pass?, token?, name?, reconnectDelayMin?,
    /// reconnectDelayMax?, pingInterval?, maxPingOut?, timeout? }`; `status(event)` gets
    /// `{ type: "connected" | "disconnected" | "reconnecting" | "closed", outbox, url,
    /// server?, error?, delay?, attempt? }`. Resolves
    /// once the stored outbox is loaded; the connection is made (and remade) in the background.
    pub fn connect(&self, url: String, opts: JsValue, status: Option<js_sys::Function>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            // bad options throw here, in whichever context called
            ConnectOpts::read(&opts)?;
            rc.borrow().check_open()?;
            // the server link is the leader's, one WebSocket per origin: a client asks it
            #[cfg(feature = "jetstream")]
            let asked_leader = crate::tabs::connect_from_client(&rc, &url, &opts, status.clone());
            #[cfg(not(feature = "jetstream"))]
            let asked_leader = false;
            if !asked_leader {
                link_up(&rc, url, opts, status).await?;
            }
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Where this context's status events go when it shares a bus with other tabs
    /// ([`crate::tabs`]): the leader's link events reach every context, and a link the
    /// leader re-creates after a hand-over reports here too.
    #[wasm_bindgen(js_name = linkStatus)]
    pub fn link_status(&self, status: js_sys::Function) {
        #[cfg(feature = "jetstream")]
        crate::tabs::watch_link(&self.inner, status);
        // the core-only build has no tabs: the link's own callback is all there is
        #[cfg(not(feature = "jetstream"))]
        let _ = status;
    }

    /// The link's state: `{ url, state, server, outbox, sent, received, reconnects, exports,
    /// imports, error }`, or `null` when the bus is not linked.
    #[wasm_bindgen(js_name = linkInfo)]
    pub fn link_info(&self) -> JsValue {
        self.inner.borrow().link.as_ref().map_or(JsValue::NULL, |l| l.info())
    }

    /// Resolves `true` once the outbox is empty (every kept publish confirmed by the server),
    /// `false` after `timeout` milliseconds (default: wait forever) or if the link closes.
    #[wasm_bindgen(js_name = linkFlush)]
    pub fn link_flush(&self, timeout: Option<u32>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let drained = Box::pin(socket::drained(&rc));
            let ok = match timeout {
                Some(ms) => {
                    match futures_util::future::select(drained, gloo_timers::future::TimeoutFuture::new(ms)).await {
                        futures_util::future::Either::Left((ok, _)) => ok,
                        futures_util::future::Either::Right(_) => false,
                    }
                }
                None => drained.await,
            };
            Ok(JsValue::from(ok))
        })
    }

    /// Ends the link (the outbox stays stored for the next `connect`).
    #[wasm_bindgen(js_name = linkClose)]
    pub fn link_close(&self) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            #[cfg(feature = "jetstream")]
            if crate::tabs::unlink_from_client(&rc) {
                return Ok(JsValue::UNDEFINED);
            }
            socket::settle(&rc).await;
            crate::bus::end_link(&rc);
            #[cfg(feature = "jetstream")]
            crate::tabs::link_ended(&rc);
            Ok(JsValue::UNDEFINED)
        })
    }
}

/// Creates the bus's link to `url` (`opts` as `bus.connect` takes them) and starts it: the
/// leader's `connect`, and the new leader's after a hand-over (the same options, the same
/// stored outbox).
pub(crate) async fn link_up(
    rc: &crate::bus::Shared,
    url: String,
    opts: JsValue,
    status: Option<js_sys::Function>,
) -> Result<(), BusError> {
    let o = ConnectOpts::read(&opts)?;
    let (db, prefix, name, busy) = {
        let i = rc.borrow();
        i.check_open()?;
        (i.db.clone(), i.inbox_prefix.clone(), i.name.clone(), i.link.is_some())
    };
    if busy {
        return Err(BusError::Invalid("the bus is already linked: close the link first".into()));
    }
    #[cfg(feature = "jetstream")]
    let stored = match &db {
        Some(db) => db.load_outbox().await.map_err(|e| BusError::Storage(e.to_string()))?,
        None => Vec::new(),
    };
    // no store in the core-only build: the outbox lives in memory
    #[cfg(not(feature = "jetstream"))]
    let stored = Vec::new();
    let session = bus::random_token();
    let config = LinkConfig {
        exports: o.exports,
        imports: o.imports,
        inbox_prefix: prefix,
        // `get`, not `[..12]`: a str slice's panic path links `char`'s Debug and the Unicode
        // tables behind it (2-3 KB of the core entry) for a token that is ASCII anyway
        id_prefix: [session.get(..12).unwrap_or_default(), "-"].concat(),
        name: o.name.unwrap_or(name),
        user: o.user,
        pass: o.pass,
        token: o.token,
        skip_consumer_deliveries: false,
    };
    let min = o.reconnect_delay_min.unwrap_or(250);
    let link_opts = LinkOptions {
        config,
        reconnect_min_ms: min,
        reconnect_max_ms: o.reconnect_delay_max.unwrap_or(5_000).max(min),
        ping_interval_ms: o.ping_interval,
        max_ping_out: o.max_ping_out,
        timeout_ms: o.timeout,
        #[cfg(feature = "jetstream")]
        status: status.or_else(|| crate::tabs::status_sink(rc)),
        #[cfg(not(feature = "jetstream"))]
        status,
    };
    {
        let mut i = rc.borrow_mut();
        if i.link.is_some() {
            return Err(BusError::Invalid("the bus is already linked".into()));
        }
        let link = Link::new(&mut i.broker, &url, link_opts, stored, db).map_err(BusError::BadSubject)?;
        i.link = Some(link);
    }
    #[cfg(feature = "jetstream")]
    crate::tabs::link_made(rc, &url, &opts);
    socket::start(rc);
    Ok(())
}
