//! Core values → JavaScript objects (plain objects; the TypeScript layer wraps them).

use edgebus_core::broker::Delivery;
#[cfg(feature = "jetstream")]
use edgebus_core::jetstream::consumer::parse_ack_meta;
#[cfg(feature = "jetstream")]
use edgebus_core::kv::{Entry, Operation};
use edgebus_core::proto::Headers;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::JsValue;

fn set(o: &Object, k: &str, v: impl Into<JsValue>) {
    let _ = Reflect::set(o, &JsValue::from_str(k), &v.into());
}

fn header_pairs(h: &Headers) -> Array {
    h.entries.iter().map(|(k, v)| Array::of2(&k.into(), &v.into())).collect()
}

/// `{subject, reply, data, headers?: [name, value][], status?, description?}`.
pub fn msg_object(d: &Delivery) -> JsValue {
    let o = extra_object(d);
    set(&o, "subject", String::from_utf8_lossy(&d.subject).as_ref());
    set(&o, "data", Uint8Array::from(&d.payload[..]));
    o.into()
}

/// `{reply?, headers?, status?, description?}`: what a message carries besides its subject and
/// payload, for the batches handed to subscription callbacks.
pub fn msg_extra(d: &Delivery) -> JsValue {
    extra_object(d).into()
}

fn extra_object(d: &Delivery) -> Object {
    let o = Object::new();
    if let Some(r) = &d.reply {
        set(&o, "reply", String::from_utf8_lossy(r).as_ref());
    }
    if let Some(h) = d.headers.as_deref().and_then(|h| Headers::parse(h).ok()) {
        set(&o, "headers", header_pairs(&h));
        if let Some(s) = h.status {
            set(&o, "status", s);
        }
        if let Some(desc) = &h.description {
            set(&o, "description", desc.as_str());
        }
    }
    o
}

#[cfg(feature = "jetstream")]
/// A KV entry from a watch consumer's delivery (revision, time and pending count from its ack
/// subject); `None` for anything else (status messages).
pub fn kv_entry(bucket: &str, d: &Delivery) -> Option<JsValue> {
    let a = parse_ack_meta(d.reply.as_deref()?)?;
    let e = Entry::from_delivery(
        bucket,
        &d.subject,
        d.headers.as_deref(),
        d.payload.clone(),
        a.ack.stream_seq,
        a.timestamp,
    )?;
    Some(kv_entry_object(&e, Some(a.pending)))
}

#[cfg(feature = "jetstream")]
/// `{bucket, key, value, revision, created (ms), operation, length, delta?}`.
pub fn kv_entry_object(e: &Entry, delta: Option<u64>) -> JsValue {
    let o = Object::new();
    set(&o, "bucket", e.bucket.as_str());
    set(&o, "key", e.key.as_str());
    set(&o, "value", Uint8Array::from(&e.value[..]));
    set(&o, "revision", e.revision as f64);
    set(&o, "created", (e.created / 1_000_000) as f64);
    let op = match e.operation {
        Operation::Put => "PUT",
        Operation::Delete => "DEL",
        Operation::Purge => "PURGE",
    };
    set(&o, "operation", op);
    set(&o, "length", e.value.len() as f64);
    if let Some(delta) = delta {
        set(&o, "delta", delta as f64);
    }
    o.into()
}

#[cfg(feature = "jetstream")]
/// A `STREAM.MSG.GET` reply's `message` (`{ subject, seq, data?, hdrs?, time }`, base64
/// payload and header block) → `{ subject, seq, time, data: Uint8Array, headers: [name,
/// value][] }`, decoded with the core's base64 and header parser.
pub fn stored_msg(message: &serde_json::Value) -> Result<JsValue, String> {
    let text = |k: &str| message.get(k).and_then(serde_json::Value::as_str).unwrap_or_default();
    let bytes =
        |k: &str| edgebus_core::base64::decode(text(k)).ok_or_else(|| format!("stored message: bad base64 in {k}"));
    let data = bytes("data")?;
    let hdrs = bytes("hdrs")?;
    let headers = if hdrs.is_empty() {
        Array::new()
    } else {
        header_pairs(&Headers::parse(&hdrs).map_err(|e| format!("stored message: headers: {e:?}"))?)
    };
    let o = Object::new();
    set(&o, "subject", text("subject"));
    set(&o, "seq", message.get("seq").and_then(serde_json::Value::as_f64).unwrap_or(0.0));
    set(&o, "time", text("time"));
    set(&o, "data", Uint8Array::from(&data[..]));
    set(&o, "headers", headers);
    Ok(o.into())
}
