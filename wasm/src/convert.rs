//! Core values → JavaScript objects (plain objects; the TypeScript layer wraps them).

use edgebus_core::broker::Delivery;
use edgebus_core::jetstream::time::parse_rfc3339;
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

/// Metadata of a JetStream delivery from its `$JS.ACK.<stream>.<consumer>.<delivered>.
/// <sseq>.<cseq>.<time>.<pending>` reply subject.
pub struct AckInfo {
    pub stream_seq: u64,
    pub time_ns: u64,
    pub pending: u64,
}

pub fn ack_info(reply: &[u8]) -> Option<AckInfo> {
    let s = std::str::from_utf8(reply).ok()?;
    let t: Vec<&str> = s.split('.').collect();
    if t.len() < 9 || t[0] != "$JS" || t[1] != "ACK" {
        return None;
    }
    let n = t.len();
    Some(AckInfo {
        stream_seq: t[n - 4].parse().ok()?,
        time_ns: t[n - 2].parse().ok()?,
        pending: t[n - 1].parse().ok()?,
    })
}

/// A KV entry `{bucket, key, value, revision, created, operation, delta?}` from a consumer
/// delivery or a direct-get reply; `None` for anything else (status messages).
pub fn kv_entry(bucket: &str, d: &Delivery) -> Option<JsValue> {
    let h = d.headers.as_deref().and_then(|h| Headers::parse(h).ok()).unwrap_or_default();
    if h.status.is_some() {
        return None;
    }
    let (subject, revision, time_ns, delta) = match d.reply.as_deref().and_then(ack_info) {
        Some(a) => (String::from_utf8_lossy(&d.subject).into_owned(), a.stream_seq, a.time_ns, Some(a.pending)),
        None => (
            h.get("Nats-Subject")?.to_string(),
            h.get("Nats-Sequence")?.parse().ok()?,
            h.get("Nats-Time-Stamp").and_then(parse_rfc3339).unwrap_or(0),
            None,
        ),
    };
    let prefix = format!("$KV.{bucket}.");
    let key = subject.strip_prefix(&prefix)?;
    let op = match h.get("KV-Operation") {
        Some("DEL") => "DEL",
        Some("PURGE") => "PURGE",
        _ => "PUT",
    };
    let o = Object::new();
    set(&o, "bucket", bucket);
    set(&o, "key", key);
    set(&o, "value", Uint8Array::from(&d.payload[..]));
    set(&o, "revision", revision as f64);
    set(&o, "created", (time_ns / 1_000_000) as f64);
    set(&o, "operation", op);
    // An integer parse: `f64::from_str` alone brings ~10 KiB of tables into the module.
    if let Some(size) = h.get("Nats-Msg-Size").and_then(|s| s.parse::<u64>().ok()) {
        set(&o, "length", size as f64);
    } else {
        set(&o, "length", d.payload.len() as f64);
    }
    if let Some(delta) = delta {
        set(&o, "delta", delta as f64);
    }
    Some(o.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn ack_subject_tokens() {
        let a = ack_info(b"$JS.ACK.KV_b.c1.1.42.7.1700000000000000000.3").unwrap();
        assert_eq!((a.stream_seq, a.time_ns, a.pending), (42, 1_700_000_000_000_000_000, 3));
        assert!(ack_info(b"_INBOX.x").is_none());
    }
}
