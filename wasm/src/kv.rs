//! KV buckets: the standard NATS convention over a `KV_<bucket>` stream (subjects
//! `$KV.<bucket>.>`, one subject per key, the revision is the stream sequence), read with the
//! engine's direct get.

use edgebus_core::broker::Delivery;
use edgebus_core::proto::Headers;
use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen::JsValue;

use crate::bus::{request, status_of, Shared};
use crate::convert::kv_entry;
use crate::error::BusError;
use crate::jetstream::{self, Expect, PublishOptions, API_TIMEOUT_MS};

/// "stream not found".
const STREAM_NOT_FOUND: u32 = 10059;
/// "wrong last sequence".
const WRONG_LAST_SEQUENCE: u32 = 10071;

/// Bucket options (nats.js `KvOptions`, the subset that applies in a page).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KvOptions {
    /// Values kept per key (1–64, default 1).
    pub history: Option<u32>,
    /// Age limit of values, milliseconds (0: none).
    pub ttl: Option<u64>,
    pub max_bytes: Option<i64>,
    pub max_value_size: Option<i64>,
    /// `"file"` (IndexedDB when the bus persists; the default) or `"memory"`.
    pub storage: Option<String>,
}

pub fn check_bucket(bucket: &str) -> Result<(), BusError> {
    if bucket.is_empty() || !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(BusError::Invalid(format!("invalid bucket name: {bucket:?}")));
    }
    Ok(())
}

pub fn check_key(key: &str, wildcards: bool) -> Result<(), BusError> {
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b) || (wildcards && b"*>".contains(&b));
    if key.is_empty() || key.starts_with('.') || key.ends_with('.') || key.contains("..") || !key.bytes().all(ok_char) {
        return Err(BusError::Invalid(format!("invalid key: {key:?}")));
    }
    Ok(())
}

fn stream_of(bucket: &str) -> String {
    format!("KV_{bucket}")
}

fn subject_of(bucket: &str, key: &str) -> String {
    format!("$KV.{bucket}.{key}")
}

/// Opens the bucket, creating its stream when it does not exist yet.
pub async fn bind(rc: &Shared, bucket: &str, opts: &KvOptions) -> Result<Value, BusError> {
    check_bucket(bucket)?;
    let stream = stream_of(bucket);
    match jetstream::api(rc, &format!("STREAM.INFO.{stream}"), &Value::Null, API_TIMEOUT_MS).await {
        Err(BusError::Api { err_code: STREAM_NOT_FOUND, .. }) => {}
        other => return other,
    }
    let history = opts.history.unwrap_or(1).clamp(1, 64);
    let ttl_ns = opts.ttl.unwrap_or(0).saturating_mul(1_000_000);
    let dup = if ttl_ns > 0 { ttl_ns.min(120_000_000_000) } else { 120_000_000_000 };
    let config = json!({
        "name": stream,
        "subjects": [format!("$KV.{bucket}.>")],
        "retention": "limits",
        "max_msgs_per_subject": history,
        "max_msgs": -1,
        "max_bytes": opts.max_bytes.unwrap_or(-1),
        "max_msg_size": opts.max_value_size.unwrap_or(-1),
        "max_age": ttl_ns,
        "max_consumers": -1,
        "duplicate_window": dup,
        "discard": "new",
        "storage": opts.storage.as_deref().unwrap_or("file"),
        "num_replicas": 1,
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "allow_direct": true,
    });
    jetstream::api(rc, &format!("STREAM.CREATE.{stream}"), &config, API_TIMEOUT_MS).await
}

/// The last message on the key's subject (delete markers included), or a revision.
async fn direct_get(rc: &Shared, bucket: &str, key: &str, revision: Option<u64>) -> Result<Option<Delivery>, BusError> {
    check_key(key, false)?;
    let stream = stream_of(bucket);
    let d = match revision {
        Some(seq) => {
            let body = serde_json::to_vec(&json!({ "seq": seq })).unwrap_or_default();
            request(rc, &format!("$JS.API.DIRECT.GET.{stream}"), None, &body, API_TIMEOUT_MS).await?
        }
        None => {
            let subject = format!("$JS.API.DIRECT.GET.{stream}.{}", subject_of(bucket, key));
            request(rc, &subject, None, &[], API_TIMEOUT_MS).await?
        }
    };
    match status_of(&d) {
        Some(404) => return Ok(None),
        Some(code) => {
            let h = d.headers.as_deref().and_then(|h| Headers::parse(h).ok()).unwrap_or_default();
            return Err(BusError::Api { code, err_code: 0, description: h.description.unwrap_or_default() });
        }
        None => {}
    }
    let h = d.headers.as_deref().and_then(|h| Headers::parse(h).ok()).unwrap_or_default();
    if h.get("Nats-Subject") != Some(subject_of(bucket, key).as_str()) {
        return Ok(None);
    }
    Ok(Some(d))
}

fn is_delete(d: &Delivery) -> bool {
    let h = d.headers.as_deref().and_then(|h| Headers::parse(h).ok()).unwrap_or_default();
    matches!(h.get("KV-Operation"), Some("DEL") | Some("PURGE"))
}

/// The key's current entry (`null` when missing or deleted), or a given revision.
pub async fn get(rc: &Shared, bucket: &str, key: &str, revision: Option<u64>) -> Result<JsValue, BusError> {
    match direct_get(rc, bucket, key, revision).await? {
        Some(d) if revision.is_some() || !is_delete(&d) => Ok(kv_entry(bucket, &d).unwrap_or(JsValue::NULL)),
        _ => Ok(JsValue::NULL),
    }
}

async fn put_with(
    rc: &Shared,
    bucket: &str,
    key: &str,
    value: &[u8],
    headers: Vec<(String, String)>,
    last_subject_seq: Option<u64>,
) -> Result<u64, BusError> {
    check_key(key, false)?;
    let opts = PublishOptions {
        headers: Some(headers),
        expect: last_subject_seq.map(|s| Expect { last_subject_sequence: Some(s), ..Default::default() }),
        ..Default::default()
    };
    let ack = jetstream::publish(rc, &subject_of(bucket, key), value, &opts).await?;
    ack.get("seq").and_then(Value::as_u64).ok_or_else(|| BusError::Invalid("publish ack without seq".into()))
}

/// Stores a value; resolves with its revision once it is durable.
pub async fn put(rc: &Shared, bucket: &str, key: &str, value: &[u8], previous: Option<u64>) -> Result<u64, BusError> {
    put_with(rc, bucket, key, value, Vec::new(), previous).await
}

/// Stores a value only if the key has none (or was deleted).
pub async fn create(rc: &Shared, bucket: &str, key: &str, value: &[u8]) -> Result<u64, BusError> {
    match put_with(rc, bucket, key, value, Vec::new(), Some(0)).await {
        Err(e @ BusError::Api { err_code: WRONG_LAST_SEQUENCE, .. }) => {
            let Some(last) = direct_get(rc, bucket, key, None).await? else { return Err(e) };
            if !is_delete(&last) {
                return Err(e);
            }
            let rev = last.reply.as_deref().and_then(crate::convert::ack_info).map(|a| a.stream_seq).or_else(|| {
                let h = Headers::parse(last.headers.as_deref().unwrap_or_default()).ok()?;
                h.get("Nats-Sequence")?.parse().ok()
            });
            put_with(rc, bucket, key, value, Vec::new(), rev).await
        }
        other => other,
    }
}

/// Deletes (`purge == false`: keeps history) or purges (drops every earlier revision).
pub async fn delete(rc: &Shared, bucket: &str, key: &str, purge: bool) -> Result<u64, BusError> {
    let headers = if purge {
        vec![("KV-Operation".into(), "PURGE".into()), ("Nats-Rollup".into(), "sub".into())]
    } else {
        vec![("KV-Operation".into(), "DEL".into())]
    };
    put_with(rc, bucket, key, &[], headers, None).await
}

/// The keys that currently hold a value (matching `filter`, default every key).
pub async fn keys(rc: &Shared, bucket: &str, filter: Option<&str>) -> Result<Vec<String>, BusError> {
    let filter = filter.unwrap_or(">");
    check_key(filter, true)?;
    let got = jetstream::drain_consumer(rc, &stream_of(bucket), &subject_of(bucket, filter), "last_per_subject", true)
        .await?;
    let prefix = format!("$KV.{bucket}.");
    Ok(got
        .iter()
        .filter(|d| !is_delete(d))
        .filter_map(|d| std::str::from_utf8(&d.subject).ok()?.strip_prefix(&prefix).map(String::from))
        .collect())
}

/// Every kept revision of a key (or of keys matching a wildcard), oldest first.
pub async fn history(rc: &Shared, bucket: &str, key: &str) -> Result<Vec<JsValue>, BusError> {
    check_key(key, true)?;
    let got = jetstream::drain_consumer(rc, &stream_of(bucket), &subject_of(bucket, key), "all", false).await?;
    Ok(got.iter().filter_map(|d| kv_entry(bucket, d)).collect())
}

/// Starts a watch: an ephemeral push consumer delivering to `inbox` (already subscribed by
/// the caller). `include`: `"last"` (current values, then updates; the default), `"all"`
/// (history, then updates) or `"updates"` (only new changes).
pub async fn watch(rc: &Shared, bucket: &str, key: &str, include: &str, inbox: &str) -> Result<String, BusError> {
    check_key(key, true)?;
    let policy = match include {
        "all" | "history" => "all",
        "updates" | "new" => "new",
        _ => "last_per_subject",
    };
    let (name, _) =
        jetstream::push_consumer(rc, &stream_of(bucket), inbox, &subject_of(bucket, key), policy, false).await?;
    Ok(name)
}

pub async fn unwatch(rc: &Shared, bucket: &str, consumer: &str) {
    let api = format!("CONSUMER.DELETE.{}.{consumer}", stream_of(bucket));
    let _ = jetstream::api(rc, &api, &Value::Null, API_TIMEOUT_MS).await;
}

/// Deletes the bucket and all its values.
pub async fn destroy(rc: &Shared, bucket: &str) -> Result<(), BusError> {
    check_bucket(bucket)?;
    jetstream::api(rc, &format!("STREAM.DELETE.{}", stream_of(bucket)), &Value::Null, API_TIMEOUT_MS).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn names() {
        assert!(check_bucket("prefs_1-a").is_ok());
        assert!(check_bucket("a.b").is_err());
        assert!(check_key("user.42/name=x", false).is_ok());
        assert!(check_key(".a", false).is_err());
        assert!(check_key("a..b", false).is_err());
        assert!(check_key("a.*", false).is_err());
        assert!(check_key("a.>", true).is_ok());
    }
}
