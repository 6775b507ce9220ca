//! The JavaScript surface: `open()` and the `Bus` class, one file per concern (core
//! messaging here; [`link`], [`jetstream`], [`kv`], [`obj`] add their methods to `Bus`).
//! Values only get converted here; the work happens in [`crate::bus`] (the runtime),
//! [`crate::jetstream`] (the `$JS.API` client) and the core's `kv` and `objstore`. The npm
//! package (`web/`) wraps these in a nats.js-shaped TypeScript API.

pub mod checks; // pagefix: the page's max_payload and name checks
#[cfg(feature = "jetstream")]
mod jetstream;
#[cfg(feature = "jetstream")]
mod kv;
pub(crate) mod link;
#[cfg(feature = "jetstream")]
mod obj;
#[cfg(feature = "jetstream")]
pub mod pcgroups;
mod read;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

#[cfg(feature = "jetstream")]
use edgebus_core::json::FromJson;
use js_sys::Promise;
#[cfg(feature = "jetstream")]
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::bus::{self, after, Handler, Inner, Shared};
use crate::convert::msg_object;
#[cfg(feature = "jetstream")]
use crate::disk::{self, Disk, Kind};
use crate::error::BusError;
#[cfg(feature = "jetstream")]
use crate::idb;
#[cfg(feature = "jetstream")]
use crate::lock;
use edgebus_core::proto::Headers;
use read::Opts;

/// Default request timeout, milliseconds (nats.js uses the same).
const REQUEST_TIMEOUT_MS: u32 = 5_000;

struct OpenOptions {
    name: Option<String>,
    /// `"indexeddb"`, `"opfs"`, `"auto"` (OPFS where the browser has it, else IndexedDB) or
    /// `"memory"` (the default).
    storage: Option<String>,
    /// Persisted storage only: `false` refuses to share the bus with the other tabs and
    /// workers of the origin (`StorageLockedError` while another one owns it).
    #[cfg_attr(not(feature = "jetstream"), allow(dead_code))]
    share: Option<bool>,
}

impl OpenOptions {
    fn read(v: &JsValue) -> Result<Self, BusError> {
        let o = Opts::new(v)?;
        Ok(OpenOptions { name: o.str("name")?, storage: o.str("storage")?, share: o.bool("share")? })
    }
}

struct PubOptions {
    reply: Option<String>,
    headers: Option<Vec<(String, String)>>,
}

impl PubOptions {
    fn read(v: &JsValue) -> Result<Self, BusError> {
        let o = Opts::new(v)?;
        Ok(PubOptions { reply: o.str("reply")?, headers: o.pairs("headers")? })
    }
}

struct RequestOptions {
    timeout: Option<u32>,
    headers: Option<Vec<(String, String)>>,
}

impl RequestOptions {
    fn read(v: &JsValue) -> Result<Self, BusError> {
        let o = Opts::new(v)?;
        Ok(RequestOptions { timeout: o.u32("timeout")?, headers: o.pairs("headers")? })
    }
}

/// Reads a JetStream options object through its JSON text with the core's JSON reader
/// (`edgebus_core::json::typed`): the one parser the API needs anyway, and per type a list
/// of fields rather than a serde visitor. Core NATS options use [`read::Opts`] instead.
#[cfg(feature = "jetstream")]
pub(crate) fn options<T: FromJson + Default>(v: JsValue) -> Result<T, BusError> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    T::from_json(&js_to_json(&v)?).map_err(|e| BusError::Invalid(e.to_string()))
}

#[cfg(feature = "jetstream")]
pub(crate) fn json_to_js(v: &Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).unwrap_or(JsValue::NULL)
}

#[cfg(feature = "jetstream")]
pub(crate) fn js_to_json(v: &JsValue) -> Result<Value, BusError> {
    if v.is_undefined() || v.is_null() {
        return Ok(Value::Null);
    }
    let text: String = js_sys::JSON::stringify(v).map_err(|_| BusError::Invalid("not JSON".into()))?.into();
    serde_json::from_slice(text.as_bytes()).map_err(|e| BusError::Invalid(e.to_string()))
}

pub(crate) fn promise<F>(f: F) -> Promise
where
    F: Future<Output = Result<JsValue, BusError>> + 'static,
{
    boxed_promise(Box::pin(f))
}

/// One `future_to_promise` for every method: boxed, the futures share its machinery instead
/// of each getting a copy of it (a size matter in the browser bundle).
fn boxed_promise(f: std::pin::Pin<Box<dyn Future<Output = Result<JsValue, BusError>>>>) -> Promise {
    future_to_promise(async move { f.await.map_err(JsValue::from) })
}

/// Opens a bus. With `storage: "indexeddb"` everything stored earlier under the same `name`
/// is read back before the bus starts, and the bus is shared by every tab and worker of the
/// origin that opens it ([`crate::tabs`]); with `share: false`, if another tab or worker of
/// the origin has that store open, this fails with `StorageLockedError` (see [`crate::lock`]).
#[wasm_bindgen]
pub async fn open(opts: JsValue) -> Result<Bus, JsValue> {
    let opts = OpenOptions::read(&opts)?;
    let name = opts.name.unwrap_or_else(|| "default".into());
    #[cfg(feature = "jetstream")]
    let (persisted, store_lock) = match Kind::choose(opts.storage.as_deref()).await? {
        Some(kind) if opts.share != Some(false) => {
            return Ok(Bus { inner: crate::tabs::open(&name, kind).await? });
        }
        Some(kind) => {
            // the store's one writer for the bus's whole life, taken before anything is read
            let store_lock = lock::acquire(&kind.db_name(&name)).await?;
            let (db, journal) = load(kind, &name).await?;
            (Some((db, journal)), Some(store_lock))
        }
        None => (None, None),
    };
    // the core-only build keeps nothing: storage is JetStream's
    #[cfg(not(feature = "jetstream"))]
    match opts.storage.as_deref() {
        None | Some("memory") => {}
        Some(other) => {
            return Err(BusError::Invalid(["storage \"", other, "\": only \"memory\" in edgebus/core"].concat()).into())
        }
    }
    #[cfg(feature = "jetstream")]
    let (mut inner, warnings) = Inner::new(&name, persisted);
    #[cfg(feature = "jetstream")]
    {
        inner.store_lock = store_lock;
    }
    #[cfg(not(feature = "jetstream"))]
    let (inner, warnings) = Inner::new(&name);
    for w in warnings {
        web_sys::console::warn_1(&JsValue::from_str(&format!("edgebus: {w}")));
    }
    let inner = Rc::new(RefCell::new(inner));
    after(&inner);
    Ok(Bus { inner })
}

/// Opens and reads back bus `name`'s store (its lock held).
#[cfg(feature = "jetstream")]
pub(crate) async fn load(kind: Kind, name: &str) -> Result<(Disk, idb::SharedJournal), BusError> {
    let db = Disk::open(kind, name).await.map_err(|e| BusError::Storage(e.to_string()))?;
    let journal = db.load().await.map_err(|e| BusError::Storage(e.to_string()))?;
    Ok((db, idb::SharedJournal::new(journal)))
}

/// Deletes what bus `name` stored, in IndexedDB and OPFS (close the bus first).
#[cfg(feature = "jetstream")]
#[wasm_bindgen(js_name = deleteStorage)]
pub async fn delete_storage(name: String) -> Result<(), JsValue> {
    disk::delete(&name).await.map_err(|e| BusError::Storage(e.to_string()).into())
}

/// A message bus inside the page: Core NATS, JetStream and KV.
#[wasm_bindgen]
pub struct Bus {
    pub(crate) inner: Shared,
}

#[wasm_bindgen]
impl Bus {
    /// Publishes `data` on `subject`. `opts`: `{ reply?, headers?: [name, value][] }`.
    pub fn publish(&self, subject: &str, data: &[u8], opts: JsValue) -> Result<(), JsValue> {
        let o = PubOptions::read(&opts)?;
        let headers = o.headers.as_deref().and_then(|h| Headers::from_pairs(h).to_block());
        self.inner.borrow_mut().publish(subject, o.reply.as_deref(), headers.as_deref(), data)?;
        after(&self.inner);
        Ok(())
    }

    /// Publishes many messages on one subject with one call: `data` holds the payloads back
    /// to back and `ends[i]` is where payload `i` ends. The same as one `publish` per payload,
    /// minus the per-message crossing into WebAssembly.
    #[wasm_bindgen(js_name = publishMany)]
    pub fn publish_many(&self, subject: &str, data: Vec<u8>, ends: &[u32]) -> Result<(), JsValue> {
        self.inner.borrow_mut().publish_many(subject, data, ends)?;
        after(&self.inner);
        Ok(())
    }

    /// Publishes the package's queued plain publishes with one call (see
    /// `bus::Inner::publish_runs` for the layout).
    #[wasm_bindgen(js_name = publishRuns)]
    pub fn publish_runs(&self, subjects: &str, runs: &[u32], data: Vec<u8>, ends: &[u32]) -> Result<(), JsValue> {
        self.inner.borrow_mut().publish_runs(subjects, runs, data, ends)?;
        after(&self.inner);
        Ok(())
    }

    /// The largest message (headers and payload) a publish may carry; 0: no limit. The
    /// package queues a plain publish only when its payload is within it, and otherwise
    /// publishes at once, so the broker's own check throws.
    #[wasm_bindgen(js_name = maxPayload)]
    pub fn max_payload(&self) -> f64 {
        self.inner.borrow().broker.max_payload() as f64
    }

    /// Subscribes; `callback(data, ends, subjects, extras)` gets the messages in batches (see
    /// `bus::Batch::call`). Returns the subscription id.
    pub fn subscribe(&self, subject: &str, queue: Option<String>, callback: js_sys::Function) -> Result<f64, JsValue> {
        let sid = self.inner.borrow_mut().subscribe(subject, queue.as_deref(), Handler::Js { callback, kv: None })?;
        crate::bus::after_subscribe(&self.inner);
        Ok(sid as f64)
    }

    /// Ends a subscription now, or after `max` messages in total.
    pub fn unsubscribe(&self, sid: f64, max: Option<u32>) {
        self.inner.borrow_mut().unsubscribe(sid as u64, u64::from(max.unwrap_or(0)));
    }

    /// Sends a request and resolves with the first reply. `opts`: `{ timeout?, headers? }`.
    pub fn request(&self, subject: String, data: Vec<u8>, opts: JsValue) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let o = RequestOptions::read(&opts)?;
            let headers = o.headers.as_deref().and_then(|h| Headers::from_pairs(h).to_block());
            let d = bus::request(&rc, &subject, headers, &data, o.timeout.unwrap_or(REQUEST_TIMEOUT_MS)).await?;
            Ok(msg_object(&d))
        })
    }

    /// A fresh inbox subject.
    #[wasm_bindgen(js_name = newInbox)]
    pub fn new_inbox(&self) -> String {
        self.inner.borrow_mut().new_inbox()
    }

    /// Resolves once everything stored is durable and every held ack was delivered.
    pub fn flush(&self) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            bus::settle(&rc).await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Flushes, then closes (subscriptions end, callbacks are released).
    pub fn close(&self) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            bus::close(&rc).await;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().is_closed()
    }

    /// `{ name, storage, role, streams, consumers, subscriptions }`; `role` is `"leader"` or
    /// `"client"` for a bus shared between tabs, `"alone"` otherwise.
    pub fn info(&self) -> JsValue {
        let i = self.inner.borrow();
        let (streams, consumers, subscriptions) = i.counts();
        #[cfg(feature = "jetstream")]
        let role = i.tabs.as_ref().map_or("alone", crate::tabs::Hub::role);
        #[cfg(not(feature = "jetstream"))]
        let role = "alone";
        let o = js_sys::Object::new();
        let set = |k: &str, v: JsValue| drop(js_sys::Reflect::set(&o, &JsValue::from_str(k), &v));
        set("name", i.name.as_str().into());
        set("storage", i.storage.into());
        set("role", role.into());
        set("streams", (streams as f64).into());
        set("consumers", (consumers as f64).into());
        set("subscriptions", (subscriptions as f64).into());
        o.into()
    }
}
