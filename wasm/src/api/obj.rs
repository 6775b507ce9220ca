//! `Bus` methods for object stores (nats.js `Objm` / `ObjectStore`). Every rule (chunking,
//! SHA-256 digests, descriptions, overwrite, delete, links) is the core's
//! [`edgebus_core::objstore`], run on the page's engine by [`bus::engine_call`]. An upload or
//! a download is a handle JavaScript drives chunk by chunk, so no object is held whole.

use edgebus_core::jetstream::config::StorageType;
use edgebus_core::jetstream::{Interest, JetStream};
use edgebus_core::json::typed::{self, Fields, FromJson};
use edgebus_core::objstore::{self, Download, ObjError, ObjectInfo, ObjectStore, StoreConfig, Upload};
use js_sys::{Array, Promise, Uint8Array};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;

use super::{json_to_js, options, promise, Bus};
use crate::bus::{self, Handler, Shared};
use crate::error::BusError;
use crate::jetstream::{self, API_TIMEOUT_MS};

/// Store options (nats.js `ObjectStoreOptions`, the subset that applies in a page).
#[derive(Default)]
struct StoreOptions {
    description: Option<String>,
    /// Age limit, milliseconds (0: none).
    ttl: Option<u64>,
    max_bytes: Option<i64>,
    /// `"file"` (IndexedDB when the bus persists; the default) or `"memory"`.
    storage: Option<String>,
}

/// What `put` is told about the object (nats.js `ObjectStoreMeta`, name and description).
#[derive(Default)]
struct PutMeta {
    name: String,
    description: Option<String>,
}

impl FromJson for StoreOptions {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct StoreOptions")?;
        Ok(StoreOptions {
            description: f.get("description", None)?,
            ttl: f.get("ttl", None)?,
            max_bytes: f.get("maxBytes", None)?,
            storage: f.get("storage", None)?,
        })
    }
}

impl FromJson for PutMeta {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct PutMeta")?;
        Ok(PutMeta { name: f.get("name", String::new())?, description: f.get("description", None)? })
    }
}

fn obj_error(e: ObjError) -> BusError {
    match e {
        ObjError::Api(a) => a.into(),
        ObjError::BucketNotFound => BusError::Api { code: 404, err_code: 10059, description: e.to_string() },
        other => BusError::Invalid(other.to_string()),
    }
}

fn to_js<T: Serialize>(v: &T) -> JsValue {
    serde_json::to_value(v).map_or(JsValue::NULL, |v| json_to_js(&v))
}

type Op<'a, R> = dyn FnOnce(&ObjectStore, &mut JetStream, u64, &dyn Interest) -> Result<R, ObjError> + 'a;

/// Runs `f` on store `bucket` (opened on the engine), then waits until everything it depends
/// on is durable.
async fn on_store<R>(rc: &Shared, bucket: &str, f: Box<Op<'_, R>>) -> Result<R, BusError> {
    let (r, batch) = bus::engine_call(rc, |js, now, interest| {
        let os = ObjectStore::open(js, bucket)?;
        f(&os, js, now, interest)
    })?;
    let r = r.map_err(obj_error)?;
    bus::durable(rc, batch).await?;
    Ok(r)
}

/// `Ok(None)` for a missing object (nats.js answers `null`).
fn found<T>(r: Result<T, ObjError>) -> Result<Option<T>, ObjError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ObjError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

#[wasm_bindgen]
impl Bus {
    /// Opens object store `bucket`, creating it with `opts` (`{ description?, ttl?,
    /// maxBytes?, storage? }`) if `create` and it does not exist; resolves with its status.
    #[wasm_bindgen(js_name = objBind)]
    pub fn obj_bind(&self, bucket: String, opts: JsValue, create: bool) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let o: StoreOptions = options(opts)?;
            let mut config = StoreConfig::new(&bucket);
            config.description = o.description;
            config.ttl = o.ttl.unwrap_or(0).saturating_mul(1_000_000);
            config.max_bytes = o.max_bytes.unwrap_or(-1);
            if o.storage.as_deref() == Some("memory") {
                config.storage = StorageType::Memory;
            }
            let (r, batch) = bus::engine_call(&rc, |js, now, _| {
                let os = if create { ObjectStore::bind(js, now, &config)? } else { ObjectStore::open(js, &bucket)? };
                os.status(js)
            })?;
            let status = r.map_err(obj_error)?;
            bus::durable(&rc, batch).await?;
            Ok(to_js(&status))
        })
    }

    /// The status of every object store on the bus.
    #[wasm_bindgen(js_name = objStores)]
    pub fn obj_stores(&self) -> Result<Array, JsValue> {
        let (list, _) = bus::engine_call(&self.inner, |js, _, _| {
            objstore::store_names(js)
                .iter()
                .filter_map(|b| ObjectStore::open(js, b).and_then(|os| os.status(js)).ok())
                .map(|s| to_js(&s))
                .collect::<Array>()
        })?;
        Ok(list)
    }

    #[wasm_bindgen(js_name = objStatus)]
    pub fn obj_status(&self, bucket: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move { Ok(to_js(&on_store(&rc, &bucket, Box::new(|os, js, _, _| os.status(js))).await?)) })
    }

    /// An object's description (a deleted object's says `deleted`, as nats.js answers), or
    /// `null` when there never was one.
    #[wasm_bindgen(js_name = objInfo)]
    pub fn obj_info(&self, bucket: String, name: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let info = on_store(&rc, &bucket, Box::new(|os, js, _, _| os.meta(js, &name))).await?;
            Ok(info.as_ref().map_or(JsValue::NULL, to_js))
        })
    }

    /// The descriptions of the live objects, by name.
    #[wasm_bindgen(js_name = objList)]
    pub fn obj_list(&self, bucket: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let list = on_store(&rc, &bucket, Box::new(|os, js, _, _| os.list(js))).await?;
            Ok(list.iter().map(to_js).collect::<Array>().into())
        })
    }

    /// Starts a streamed upload; `meta`: `{ name, description? }`.
    #[wasm_bindgen(js_name = objPut)]
    pub fn obj_put(&self, bucket: String, meta: JsValue) -> Result<ObjUpload, JsValue> {
        let meta: PutMeta = options(meta)?;
        let nuid = bus::random_token();
        let (r, _) = bus::engine_call(&self.inner, |js, _, _| {
            ObjectStore::open(js, &bucket)?.put_begin(&meta.name, &nuid, meta.description)
        })?;
        Ok(ObjUpload { rc: self.inner.clone(), upload: Some(r.map_err(obj_error)?) })
    }

    /// Opens an object for a streamed read (following a link), or `null` when missing.
    #[wasm_bindgen(js_name = objGet)]
    pub fn obj_get(&self, bucket: String, name: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let got = on_store(&rc, &bucket, Box::new(|os, js, _, _| found(os.get(js, &name)))).await?;
            Ok(got.map_or(JsValue::NULL, |download| ObjDownload { rc: rc.clone(), download }.into()))
        })
    }

    /// Marks the object deleted and purges its chunks: `{ success, purged }` (`success:
    /// false` when there was no such object, as nats.js answers).
    #[wasm_bindgen(js_name = objDelete)]
    pub fn obj_delete(&self, bucket: String, name: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let purged = on_store(
                &rc,
                &bucket,
                Box::new(|os, js, now, i| {
                    let Some(info) = found(os.info(js, &name))? else { return Ok(None) };
                    os.delete(js, now, &name, i)?;
                    Ok(Some(info.chunks))
                }),
            )
            .await?;
            Ok(json_to_js(&serde_json::json!({ "success": purged.is_some(), "purged": purged.unwrap_or(0) })))
        })
    }

    /// Makes `name` a link to object `target` of store `target_bucket`.
    #[wasm_bindgen(js_name = objLink)]
    pub fn obj_link(&self, bucket: String, name: String, target_bucket: String, target: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let info = on_store(
                &rc,
                &bucket,
                Box::new(|os, js, now, i| {
                    let t: ObjectInfo = ObjectStore::open(js, &target_bucket)?.info(js, &target)?;
                    os.link(js, now, &name, &t, i)
                }),
            )
            .await?;
            Ok(to_js(&info))
        })
    }

    /// Makes `name` a link to the whole store `target_bucket`.
    #[wasm_bindgen(js_name = objLinkStore)]
    pub fn obj_link_store(&self, bucket: String, name: String, target_bucket: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let info = on_store(
                &rc,
                &bucket,
                Box::new(|os, js, now, i| {
                    let t = ObjectStore::open(js, &target_bucket)?;
                    os.link_store(js, now, &name, &t, i)
                }),
            )
            .await?;
            Ok(to_js(&info))
        })
    }

    /// Watches the store's descriptions: `callback` gets them as messages (JSON payloads) in
    /// batches, like a subscription. Resolves with `{ sid, consumer }`; end it with
    /// `unsubscribe(sid)` and `jsApi("CONSUMER.DELETE.<stream>.<consumer>")`.
    #[wasm_bindgen(js_name = objWatch)]
    pub fn obj_watch(&self, bucket: String, include_history: bool, callback: js_sys::Function) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let inbox = rc.borrow_mut().new_inbox();
            let (body, _) = bus::engine_call(&rc, |js, _, _| {
                ObjectStore::open(js, &bucket).map(|os| os.watch_consumer(&inbox, include_history, false))
            })?;
            let body = body.map_err(obj_error)?;
            let sid = rc.borrow_mut().subscribe(&inbox, None, Handler::Js { callback, kv: None })?;
            let stream = objstore::stream_name(&bucket);
            match jetstream::api(&rc, &format!("CONSUMER.CREATE.{stream}"), &body, API_TIMEOUT_MS).await {
                Ok(info) => {
                    let consumer = info.get("name").and_then(Value::as_str).unwrap_or_default();
                    Ok(json_to_js(&serde_json::json!({ "sid": sid, "consumer": consumer, "stream": stream })))
                }
                Err(e) => {
                    rc.borrow_mut().unsubscribe(sid, 0);
                    Err(e)
                }
            }
        })
    }

    /// Deletes the store and every object in it.
    #[wasm_bindgen(js_name = objDestroy)]
    pub fn obj_destroy(&self, bucket: String) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            let (r, batch) = bus::engine_call(&rc, |js, _, _| ObjectStore::open(js, &bucket).map(|os| os.destroy(js)))?;
            let removed = r.map_err(obj_error)?;
            bus::durable(&rc, batch).await?;
            Ok(JsValue::from(removed))
        })
    }
}

/// An upload in progress: `write` each piece of the source as it arrives (a chunk is stored
/// each time 128 KiB have gathered), then `finish` (or `abort` if the source failed).
#[wasm_bindgen]
pub struct ObjUpload {
    rc: Shared,
    upload: Option<Upload>,
}

#[wasm_bindgen]
impl ObjUpload {
    pub fn write(&mut self, data: &[u8]) -> Result<(), JsValue> {
        let up = self.upload.as_mut().ok_or_else(|| BusError::Invalid("upload already ended".into()))?;
        let (r, _) = bus::engine_call(&self.rc, |js, now, i| up.write(js, now, data, i))?;
        Ok(r.map_err(obj_error)?)
    }

    /// Stores the last chunk and the description; resolves with the object's info once it
    /// is durable.
    pub fn finish(&mut self) -> Promise {
        let rc = self.rc.clone();
        let up = self.upload.take();
        promise(async move {
            let up = up.ok_or_else(|| BusError::Invalid("upload already ended".into()))?;
            let (r, batch) = bus::engine_call(&rc, |js, now, i| up.finish(js, now, i))?;
            let info = r.map_err(obj_error)?;
            bus::durable(&rc, batch).await?;
            Ok(to_js(&info))
        })
    }

    /// Drops what was uploaded so far.
    pub fn abort(&mut self) -> Result<(), JsValue> {
        if let Some(up) = self.upload.take() {
            let (r, _) = bus::engine_call(&self.rc, |js, now, i| up.abort(js, now, i))?;
            r.map_err(obj_error)?;
        }
        Ok(())
    }
}

/// A download in progress: `next()` hands out the object's chunks in order, `undefined` at
/// the end, and throws if what was read does not match the recorded size and digest.
#[wasm_bindgen]
pub struct ObjDownload {
    rc: Shared,
    download: Download,
}

#[wasm_bindgen]
impl ObjDownload {
    /// The object's description (the link's target, for a link).
    pub fn info(&self) -> JsValue {
        to_js(&self.download.info)
    }

    pub fn next(&mut self) -> Result<Option<Uint8Array>, JsValue> {
        let d = &mut self.download;
        let (r, _) = bus::engine_call(&self.rc, |js, _, _| d.next_chunk(js))?;
        match r {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(Uint8Array::from(&chunk[..]))),
            Some(Err(e)) => Err(obj_error(e).into()),
        }
    }
}
