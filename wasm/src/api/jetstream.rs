//! `Bus` methods for JetStream: API requests, publishes with acks, pull fetches.

use edgebus_core::json::typed::{self, Fields, FromJson};
use js_sys::{Array, Promise};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use edgebus_core::jetstream::client::PullRequest;
use edgebus_core::jetstream::limits::StoreLimits;

use super::{js_to_json, json_to_js, options, promise, Bus};
use crate::bus;
use crate::convert::msg_object;
use crate::error::BusError;
use crate::jetstream::{self, PublishOptions, API_TIMEOUT_MS};

/// nats.js spells these in snake case.
#[derive(Default)]
struct FetchOptions {
    max_messages: Option<u32>,
    /// Milliseconds.
    expires: Option<u32>,
    no_wait: Option<bool>,
    /// Priority groups (nats.js's names); `id` is the pin the page's `Consumer` remembers.
    group: Option<String>,
    id: Option<String>,
    min_pending: Option<i64>,
    min_ack_pending: Option<i64>,
    priority: Option<u8>,
    max_bytes: Option<i64>,
}

impl FromJson for FetchOptions {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct FetchOptions")?;
        Ok(FetchOptions {
            max_messages: f.get("max_messages", None)?,
            expires: f.get("expires", None)?,
            no_wait: f.get("no_wait", None)?,
            group: f.get("group", None)?,
            id: f.get("id", None)?,
            min_pending: f.get("min_pending", None)?,
            min_ack_pending: f.get("min_ack_pending", None)?,
            priority: f.get("priority", None)?,
            max_bytes: f.get("max_bytes", None)?,
        })
    }
}

#[wasm_bindgen]
impl Bus {
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

    /// Limits the bytes the bus's streams may hold, per storage type (nats-server's
    /// `max_memory_store` / `max_file_store`; zero or less: no limit): a stream whose
    /// `max_bytes` does not fit is refused at create (10028 / 10047), a publish once the
    /// limit is reached gets 10023, as the server answers.
    #[wasm_bindgen(js_name = setStoreLimits)]
    pub fn set_store_limits(&self, max_memory: f64, max_file: f64) -> Result<(), JsValue> {
        let limits = StoreLimits::from_config(max_memory as i64, max_file as i64);
        if crate::tabs::defer_limits(&self.inner, limits) {
            return Ok(());
        }
        bus::engine_call(&self.inner, |js, _, _| js.set_limits(limits))?;
        Ok(())
    }

    /// Pulls messages from a consumer. `opts`: `{ max_messages?, max_bytes?, expires? (ms),
    /// no_wait?, group?, id?, min_pending?, min_ack_pending?, priority? }`; a status that ends the pull other than
    /// `404`/`408` (a `423` pin id refused, a `400`, a `409`) is kept, last.
    pub fn fetch(&self, stream: String, consumer: String, opts: JsValue) -> Promise {
        let rc = self.inner.clone();
        promise(async move {
            crate::tabs::refuse_in_client(&rc.borrow(), "fetch (pulling from a consumer)")?;
            let o: FetchOptions = options(opts)?;
            let expires_ms = o.expires.unwrap_or(30_000);
            let req = PullRequest {
                batch: o.max_messages.unwrap_or(100).max(1),
                expires: u64::from(expires_ms) * 1_000_000,
                no_wait: o.no_wait.unwrap_or(false),
                group: o.group,
                id: o.id,
                min_pending: o.min_pending,
                min_ack_pending: o.min_ack_pending,
                priority: o.priority,
                max_bytes: o.max_bytes.filter(|&b| b > 0),
            };
            let msgs = jetstream::fetch(&rc, &stream, &consumer, &req, expires_ms).await?;
            Ok(msgs.iter().map(msg_object).collect::<Array>().into())
        })
    }
}
