//! `Bus` methods for KV buckets. Every rule (names, keys, watch keys, compare-and-set,
//! create-after-delete, history, operations) is the core's [`edgebus_core::kv`], run on the
//! page's engine by [`bus::engine_call`]; this file converts values and waits for durability.

use edgebus_core::jetstream::config::StorageType;
use edgebus_core::json::typed::{self, Fields, FromJson};
use edgebus_core::kv::{Bucket, BucketConfig, KvError, WatchInclude};
use js_sys::{Array, Promise};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use super::{json_to_js, options, promise, Bus};
use crate::bus::{self, Handler, Shared};
use crate::convert::kv_entry_object;
use crate::error::BusError;
use crate::jetstream::{self, API_TIMEOUT_MS};

/// Bucket options (nats.js `KvOptions`, the subset that applies in a page).
#[derive(Default)]
struct KvOptions {
    description: Option<String>,
    /// Values kept per key (1–64, default 1).
    history: Option<i64>,
    /// Age limit of values, milliseconds (0: none).
    ttl: Option<u64>,
    max_bytes: Option<i64>,
    max_value_size: Option<i64>,
    /// `"file"` (IndexedDB when the bus persists; the default) or `"memory"`.
    storage: Option<String>,
}

impl FromJson for KvOptions {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct KvOptions")?;
        Ok(KvOptions {
            description: f.get("description", None)?,
            history: f.get("history", None)?,
            ttl: f.get("ttl", None)?,
            max_bytes: f.get("maxBytes", None)?,
            max_value_size: f.get("maxValueSize", None)?,
            storage: f.get("storage", None)?,
        })
    }
}

impl KvOptions {
    fn config(self, bucket: &str) -> BucketConfig {
        let mut c = BucketConfig::new(bucket);
        c.description = self.description;
        c.history = self.history.unwrap_or(1);
        c.ttl = self.ttl.unwrap_or(0).saturating_mul(1_000_000);
        c.max_bytes = self.max_bytes.unwrap_or(-1);
        c.max_value_size = self.max_value_size.unwrap_or(-1);
        if self.storage.as_deref() == Some("memory") {
            c.storage = StorageType::Memory;
        }
        c
    }
}

/// "wrong last sequence", as a server reports a failed compare-and-set.
const WRONG_LAST_SEQUENCE: u32 = 10071;
/// "stream not found".
const STREAM_NOT_FOUND: u32 = 10059;

/// The core's KV errors as the page reports them: names and keys are bad arguments,
/// compare-and-set failures are the JetStream API error a server would have sent.
pub(super) fn kv_error(e: KvError) -> BusError {
    match e {
        KvError::KeyExists(_) | KvError::WrongLastRevision(_) => {
            BusError::Api { code: 400, err_code: WRONG_LAST_SEQUENCE, description: e.to_string() }
        }
        KvError::BucketNotFound => BusError::Api { code: 404, err_code: STREAM_NOT_FOUND, description: e.to_string() },
        KvError::Api(a) => a.into(),
        other => BusError::Invalid(other.to_string()),
    }
}

/// Runs `f` on the bucket (opened on the engine), then waits until everything it depends
/// on is durable.
async fn on_bucket<R>(
    rc: &Shared,
    bucket: &str,
    f: impl FnOnce(
        &Bucket,
        &mut edgebus_core::jetstream::JetStream,
        u64,
        &dyn edgebus_core::jetstream::Interest,
    ) -> Result<R, KvError>,
) -> Result<R, BusError> {
    let (r, batch) = bus::engine_call(rc, |js, now, interest| {
        let b = Bucket::open(js, bucket)?;
        f(&b, js, now, interest)
    })?;
    let r = r.map_err(kv_error)?;
    bus::durable(rc, batch).await?;
    Ok(r)
}

fn revision(r: u64) -> JsValue {
    JsValue::from(r as f64)
}

#[wasm_bindgen]
impl Bus {
    /// Opens bucket `bucket`, creating it with `opts` (`{ description?, history?, ttl?,
    /// maxBytes?, maxValueSize?, storage? }`) if needed.
    #[wasm_bindgen(js_name = kvBind)]
    pub fn kv_bind(&self, bucket: String, opts: JsValue) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let config = options::<KvOptions>(opts)?.config(&bucket);
            let (r, batch) = bus::engine_call(&rc, |js, now, _| Bucket::bind(js, now, &config))?;
            r.map_err(kv_error)?;
            bus::durable(&rc, batch).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The current entry of `key` (or revision `revision`, whatever its operation), or `null`.
    #[wasm_bindgen(js_name = kvGet)]
    pub fn kv_get(&self, bucket: String, key: String, revision: Option<f64>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let e = on_bucket(&rc, &bucket, |b, js, _, _| match revision {
                Some(r) => b.get_revision(js, &key, r as u64),
                None => b.get(js, &key),
            })
            .await?;
            Ok(e.map_or(JsValue::NULL, |e| kv_entry_object(&e, None)))
        })
    }

    /// Stores a value; resolves with its revision once durable. `previous`: the revision the
    /// key must still be at (compare-and-set).
    #[wasm_bindgen(js_name = kvPut)]
    pub fn kv_put(&self, bucket: String, key: String, value: Vec<u8>, previous: Option<f64>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let r = on_bucket(&rc, &bucket, |b, js, now, i| match previous {
                Some(p) => b.update(js, now, &key, &value, p as u64, i),
                None => b.put(js, now, &key, &value, i),
            })
            .await?;
            Ok(revision(r))
        })
    }

    /// Stores a value only if the key has none (never set, deleted or purged).
    #[wasm_bindgen(js_name = kvCreate)]
    pub fn kv_create(&self, bucket: String, key: String, value: Vec<u8>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let r = on_bucket(&rc, &bucket, |b, js, now, i| b.create(js, now, &key, &value, None, i)).await?;
            Ok(revision(r))
        })
    }

    /// Deletes the key (`purge == false`: history kept) or purges it (only the marker stays).
    #[wasm_bindgen(js_name = kvDelete)]
    pub fn kv_delete(&self, bucket: String, key: String, purge: bool) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let r = on_bucket(
                &rc,
                &bucket,
                |b, js, now, i| {
                    if purge {
                        b.purge(js, now, &key, i)
                    } else {
                        b.delete(js, now, &key, i)
                    }
                },
            )
            .await?;
            Ok(revision(r))
        })
    }

    /// The keys holding a value (matching the watch filter `filter`, default every key).
    #[wasm_bindgen(js_name = kvKeys)]
    pub fn kv_keys(&self, bucket: String, filter: Option<String>) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let keys = on_bucket(&rc, &bucket, |b, js, _, _| b.keys(js, filter.as_deref())).await?;
            Ok(keys.into_iter().map(JsValue::from).collect::<Array>().into())
        })
    }

    /// Every kept revision of the keys matching `key` (a key or a watch filter), oldest first.
    #[wasm_bindgen(js_name = kvHistory)]
    pub fn kv_history(&self, bucket: String, key: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let entries = on_bucket(&rc, &bucket, |b, js, _, _| b.history(js, &key)).await?;
            Ok(entries.iter().map(|e| kv_entry_object(e, None)).collect::<Array>().into())
        })
    }

    /// Watches keys matching `key`; `callback(entry)` per change. `include`: nats.js's
    /// `KvWatchInclude` (`""`, `"history"`, `"updates"`; also `"last"`, `"all"`). Resolves
    /// with `{ sid, consumer, bucket }` for [`Bus::kv_unwatch`].
    #[wasm_bindgen(js_name = kvWatch)]
    pub fn kv_watch(&self, bucket: String, key: String, include: String, callback: js_sys::Function) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let inbox = rc.borrow_mut().new_inbox();
            let (body, _) = bus::engine_call(&rc, |js, _, _| {
                Bucket::open(js, &bucket)?.watch_consumer(&key, &inbox, WatchInclude::parse(&include), false)
            })?;
            let body = body.map_err(kv_error)?;
            let handler = Handler::Js { callback, kv: Some(bucket.clone()) };
            let sid = rc.borrow_mut().subscribe(&inbox, None, handler)?;
            let stream = edgebus_core::kv::stream_name(&bucket);
            match jetstream::api(&rc, &format!("CONSUMER.CREATE.{stream}"), &body, API_TIMEOUT_MS).await {
                Ok(info) => {
                    let consumer = info.get("name").and_then(Value::as_str).unwrap_or_default();
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
            let api = format!("CONSUMER.DELETE.{}.{consumer}", edgebus_core::kv::stream_name(&bucket));
            let _ = jetstream::api(&rc, &api, &Value::Null, API_TIMEOUT_MS).await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Deletes the bucket and all its values.
    #[wasm_bindgen(js_name = kvDestroy)]
    pub fn kv_destroy(&self, bucket: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let (r, batch) = bus::engine_call(&rc, |js, _, _| Bucket::open(js, &bucket).map(|b| b.destroy(js)))?;
            r.map_err(kv_error)?;
            bus::durable(&rc, batch).await?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
