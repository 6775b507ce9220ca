//! The JavaScript surface: `open()` and the `Bus` class. Values only get converted here; the
//! work happens in [`crate::bus`], [`crate::jetstream`] and [`crate::kv`]. The npm package
//! (`web/`) wraps these in a nats.js-shaped TypeScript API.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use js_sys::{Array, Promise};
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::bus::{self, after, Handler, Inner, Shared};
use crate::convert::msg_object;
use crate::error::BusError;
use crate::idb;
use crate::jetstream::{self, PublishOptions, API_TIMEOUT_MS};
use crate::kv::{self, KvOptions};
use crate::link::LinkConfig;
use crate::socket::{self, Link, LinkOptions};

/// Default request timeout, milliseconds (nats.js uses the same).
const REQUEST_TIMEOUT_MS: u32 = 5_000;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OpenOptions {
    name: Option<String>,
    /// `"indexeddb"` or `"memory"` (the default).
    storage: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PubOptions {
    reply: Option<String>,
    headers: Option<Vec<(String, String)>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RequestOptions {
    timeout: Option<u32>,
    headers: Option<Vec<(String, String)>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConnectOpts {
    #[serde(default, rename = "export")]
    exports: Vec<String>,
    #[serde(default, rename = "import")]
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

/// nats.js spells these in snake case.
#[derive(Deserialize, Default)]
struct FetchOptions {
    max_messages: Option<u32>,
    /// Milliseconds.
    expires: Option<u32>,
    no_wait: Option<bool>,
}

fn options<T: for<'de> Deserialize<'de> + Default>(v: JsValue) -> Result<T, BusError> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    Ok(serde_wasm_bindgen::from_value(v)?)
}

fn json_to_js(v: &Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).unwrap_or(JsValue::NULL)
}

fn js_to_json(v: &JsValue) -> Result<Value, BusError> {
    if v.is_undefined() || v.is_null() {
        return Ok(Value::Null);
    }
    let text: String = js_sys::JSON::stringify(v).map_err(|_| BusError::Invalid("not JSON".into()))?.into();
    serde_json::from_str(&text).map_err(|e| BusError::Invalid(e.to_string()))
}

fn promise<F>(f: F) -> Promise
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
/// is read back before the bus starts.
#[wasm_bindgen]
pub async fn open(opts: JsValue) -> Result<Bus, JsValue> {
    let opts: OpenOptions = options(opts)?;
    let name = opts.name.unwrap_or_else(|| "default".into());
    let persisted = match opts.storage.as_deref() {
        Some("indexeddb") => {
            let db = idb::open(&name).await.map_err(|e| BusError::Storage(e.to_string()))?;
            let journal = idb::load(&db).await.map_err(|e| BusError::Storage(e.to_string()))?;
            Some((db, idb::SharedJournal::new(journal)))
        }
        None | Some("memory") => None,
        Some(other) => return Err(BusError::Invalid(format!("unknown storage {other:?}")).into()),
    };
    let (inner, warnings) = Inner::new(&name, persisted);
    for w in warnings {
        web_sys::console::warn_1(&JsValue::from_str(&format!("edgebus: {w}")));
    }
    let inner = Rc::new(RefCell::new(inner));
    after(&inner);
    Ok(Bus { inner })
}

/// Deletes the IndexedDB database of bus `name` (close the bus first).
#[wasm_bindgen(js_name = deleteStorage)]
pub async fn delete_storage(name: String) -> Result<(), JsValue> {
    idb::delete(&name).await.map_err(|e| BusError::Storage(e.to_string()).into())
}

/// A message bus inside the page: Core NATS, JetStream and KV.
#[wasm_bindgen]
pub struct Bus {
    inner: Shared,
}

#[wasm_bindgen]
impl Bus {
    /// Publishes `data` on `subject`. `opts`: `{ reply?, headers?: [name, value][] }`.
    pub fn publish(&self, subject: &str, data: &[u8], opts: JsValue) -> Result<(), JsValue> {
        let o: PubOptions = options(opts)?;
        let headers = o.headers.as_deref().and_then(|h| jetstream::headers_for(h, None));
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

    /// Subscribes; `callback(data, ends, subjects, extras)` gets the messages in batches (see
    /// `bus::Batch::call`). Returns the subscription id.
    pub fn subscribe(&self, subject: &str, queue: Option<String>, callback: js_sys::Function) -> Result<f64, JsValue> {
        let sid = self.inner.borrow_mut().subscribe(subject, queue.as_deref(), Handler::Js { callback, kv: None })?;
        after(&self.inner);
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
            let o: RequestOptions = options(opts)?;
            let headers = o.headers.as_deref().and_then(|h| jetstream::headers_for(h, None));
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

    /// `{ name, storage, streams, consumers, subscriptions }`.
    pub fn info(&self) -> JsValue {
        let i = self.inner.borrow();
        let (streams, consumers, subscriptions) = i.counts();
        json_to_js(&serde_json::json!({
            "name": i.name, "storage": i.storage, "streams": streams,
            "consumers": consumers, "subscriptions": subscriptions,
        }))
    }

    // ---- the link to a server -----------------------------------------------------------

    /// Links the bus to a NATS server's WebSocket port (`ws://host:port`). `opts`: `{ export?:
    /// string[], import?: string[], user?, pass?, token?, name?, reconnectDelayMin?,
    /// reconnectDelayMax?, pingInterval?, maxPingOut?, timeout? }`; `status(event)` gets
    /// `{ type: "connected" | "disconnected" | "reconnecting" | "closed", outbox, url,
    /// server?, error?, delay?, attempt? }`. Resolves
    /// once the stored outbox is loaded; the connection is made (and remade) in the background.
    pub fn connect(&self, url: String, opts: JsValue, status: Option<js_sys::Function>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let o: ConnectOpts = options(opts)?;
            let (db, prefix, name, busy) = {
                let i = rc.borrow();
                i.check_open()?;
                (i.db.clone(), i.inbox_prefix.clone(), i.name.clone(), i.link.is_some())
            };
            if busy {
                return Err(BusError::Invalid("the bus is already linked: close the link first".into()));
            }
            let stored = match &db {
                Some(db) => idb::load_outbox(db).await.map_err(|e| BusError::Storage(e.to_string()))?,
                None => Vec::new(),
            };
            let session = bus::random_token();
            let config = LinkConfig {
                exports: o.exports,
                imports: o.imports,
                inbox_prefix: prefix,
                id_prefix: format!("{}-", &session[..12]),
                name: o.name.unwrap_or(name),
                user: o.user,
                pass: o.pass,
                token: o.token,
            };
            let min = o.reconnect_delay_min.unwrap_or(250);
            let link_opts = LinkOptions {
                config,
                reconnect_min_ms: min,
                reconnect_max_ms: o.reconnect_delay_max.unwrap_or(5_000).max(min),
                ping_interval_ms: o.ping_interval,
                max_ping_out: o.max_ping_out,
                timeout_ms: o.timeout,
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
            socket::start(&rc);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The link's state: `{ url, state, server, outbox, sent, received, reconnects, exports,
    /// imports, error }`, or `null` when the bus is not linked.
    #[wasm_bindgen(js_name = linkInfo)]
    pub fn link_info(&self) -> JsValue {
        self.inner.borrow().link.as_ref().map_or(JsValue::NULL, |l| json_to_js(&l.info()))
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
            socket::settle(&rc).await;
            crate::bus::end_link(&rc);
            Ok(JsValue::UNDEFINED)
        })
    }

    // ---- JetStream ---------------------------------------------------------------------

    /// A `$JS.API.<api>` request with a JSON body; resolves with the JSON reply, rejects
    /// with a `JetStreamApiError` (`code`, `err_code`) on an error reply.
    #[wasm_bindgen(js_name = jsApi)]
    pub fn js_api(&self, api: String, body: JsValue, timeout: Option<u32>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let body = js_to_json(&body)?;
            let v = jetstream::api(&rc, &api, &body, timeout.unwrap_or(API_TIMEOUT_MS)).await?;
            Ok(json_to_js(&v))
        })
    }

    /// Publishes to a stream; resolves with the PubAck once the message is durable.
    /// `opts`: `{ msgID?, expect?: { lastMsgID?, streamName?, lastSequence?,
    /// lastSubjectSequence? }, headers?, timeout? }`.
    #[wasm_bindgen(js_name = jsPublish)]
    pub fn js_publish(&self, subject: String, data: Vec<u8>, opts: JsValue) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let o: PublishOptions = options(opts)?;
            let ack = jetstream::publish_raw(&rc, &subject, &data, &o).await?;
            js_sys::JSON::parse(&String::from_utf8_lossy(&ack))
                .map_err(|_| BusError::Invalid("unreadable JetStream ack".into()))
        })
    }

    /// Many stream publishes in one call (no options): `subjects` joined by `\n`, payloads
    /// back to back in `data`, payload `i` ending at `ends[i]`. They are stored together, so
    /// one IndexedDB commit covers them all. Resolves with `[acks, errors]` (see
    /// `jetstream::publish_many`).
    #[wasm_bindgen(js_name = jsPublishMany)]
    pub fn js_publish_many(&self, subjects: String, data: Vec<u8>, ends: Vec<u32>) -> Promise {
        let rc = self.inner.clone();
        promise(async move { jetstream::publish_many(&rc, &subjects, &data, &ends).await })
    }

    /// Pulls messages from a consumer. `opts`: `{ max_messages?, expires? (ms), no_wait? }`.
    pub fn fetch(&self, stream: String, consumer: String, opts: JsValue) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let o: FetchOptions = options(opts)?;
            let msgs = jetstream::fetch(
                &rc,
                &stream,
                &consumer,
                o.max_messages.unwrap_or(100),
                o.expires.unwrap_or(30_000),
                o.no_wait.unwrap_or(false),
            )
            .await?;
            Ok(msgs.iter().map(msg_object).collect::<Array>().into())
        })
    }

    // ---- KV ----------------------------------------------------------------------------

    /// Opens bucket `bucket`, creating it with `opts` (`{ history?, ttl?, maxBytes?,
    /// maxValueSize?, storage? }`) if needed; resolves with its stream info.
    #[wasm_bindgen(js_name = kvBind)]
    pub fn kv_bind(&self, bucket: String, opts: JsValue) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let o: KvOptions = options(opts)?;
            Ok(json_to_js(&kv::bind(&rc, &bucket, &o).await?))
        })
    }

    /// The current entry of `key` (or revision `revision`), or `null`.
    #[wasm_bindgen(js_name = kvGet)]
    pub fn kv_get(&self, bucket: String, key: String, revision: Option<f64>) -> Promise {
        let rc = self.inner.clone();
        promise(async move { kv::get(&rc, &bucket, &key, revision.map(|r| r as u64)).await })
    }

    /// Stores a value; resolves with its revision once durable. `previous`: expected revision.
    #[wasm_bindgen(js_name = kvPut)]
    pub fn kv_put(&self, bucket: String, key: String, value: Vec<u8>, previous: Option<f64>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let rev = kv::put(&rc, &bucket, &key, &value, previous.map(|p| p as u64)).await?;
            Ok(JsValue::from(rev as f64))
        })
    }

    #[wasm_bindgen(js_name = kvCreate)]
    pub fn kv_create(&self, bucket: String, key: String, value: Vec<u8>) -> Promise {
        let rc = self.inner.clone();
        promise(async move { Ok(JsValue::from(kv::create(&rc, &bucket, &key, &value).await? as f64)) })
    }

    #[wasm_bindgen(js_name = kvDelete)]
    pub fn kv_delete(&self, bucket: String, key: String, purge: bool) -> Promise {
        let rc = self.inner.clone();
        promise(async move { Ok(JsValue::from(kv::delete(&rc, &bucket, &key, purge).await? as f64)) })
    }

    #[wasm_bindgen(js_name = kvKeys)]
    pub fn kv_keys(&self, bucket: String, filter: Option<String>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let keys = kv::keys(&rc, &bucket, filter.as_deref()).await?;
            Ok(keys.into_iter().map(JsValue::from).collect::<Array>().into())
        })
    }

    #[wasm_bindgen(js_name = kvHistory)]
    pub fn kv_history(&self, bucket: String, key: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move { Ok(kv::history(&rc, &bucket, &key).await?.into_iter().collect::<Array>().into()) })
    }

    /// Watches keys matching `key`; `callback(entry)` per change. Resolves with
    /// `{ sid, consumer }` for [`Bus::kv_unwatch`].
    #[wasm_bindgen(js_name = kvWatch)]
    pub fn kv_watch(&self, bucket: String, key: String, include: String, callback: js_sys::Function) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let inbox = rc.borrow_mut().new_inbox();
            let handler = Handler::Js { callback, kv: Some(bucket.clone()) };
            let sid = rc.borrow_mut().subscribe(&inbox, None, handler)?;
            match kv::watch(&rc, &bucket, &key, &include, &inbox).await {
                Ok(consumer) => {
                    Ok(json_to_js(&serde_json::json!({ "sid": sid, "consumer": consumer, "bucket": bucket })))
                }
                Err(e) => {
                    rc.borrow_mut().unsubscribe(sid, 0);
                    Err(e)
                }
            }
        })
    }

    #[wasm_bindgen(js_name = kvUnwatch)]
    pub fn kv_unwatch(&self, bucket: String, sid: f64, consumer: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            rc.borrow_mut().unsubscribe(sid as u64, 0);
            kv::unwatch(&rc, &bucket, &consumer).await;
            Ok(JsValue::UNDEFINED)
        })
    }

    #[wasm_bindgen(js_name = kvDestroy)]
    pub fn kv_destroy(&self, bucket: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            kv::destroy(&rc, &bucket).await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
