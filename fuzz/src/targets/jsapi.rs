//! The JetStream engine's request handlers: a short session of API requests, publishes and
//! acks against a fresh engine (memory storage, time stepped by hand), with bodies that are
//! random bytes or random JSON built from the API's own field names and values.

use arbitrary::{Result, Unstructured};
use edgebus_core::jetstream::store::MemStorage;
use edgebus_core::jetstream::JetStream;
use serde_json::{json, Map, Value};

pub(super) const DICT: &[&[u8]] = &[];

const T0: u64 = 1_800_000_000_000_000_000;

const SUBJECTS: &[&str] = &[
    "$JS.API.INFO",
    "$JS.API.STREAM.CREATE.S",
    "$JS.API.STREAM.CREATE.T",
    "$JS.API.STREAM.UPDATE.S",
    "$JS.API.STREAM.INFO.S",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.PURGE.S",
    "$JS.API.STREAM.DELETE.T",
    "$JS.API.STREAM.MSG.GET.S",
    "$JS.API.STREAM.MSG.DELETE.S",
    "$JS.API.DIRECT.GET.S",
    "$JS.API.DIRECT.GET.S.s.a",
    "$JS.API.CONSUMER.CREATE.S",
    "$JS.API.CONSUMER.CREATE.S.C",
    "$JS.API.CONSUMER.CREATE.S.D.s.a",
    "$JS.API.CONSUMER.DURABLE.CREATE.S.D",
    "$JS.API.CONSUMER.INFO.S.C",
    "$JS.API.CONSUMER.NAMES.S",
    "$JS.API.CONSUMER.LIST.S",
    "$JS.API.CONSUMER.DELETE.S.D",
    "$JS.API.CONSUMER.MSG.NEXT.S.C",
    "$JS.API.CONSUMER.PAUSE.S.C",
    "$JS.ACK.S.C.1.1.1.0.0",
    "$JS.ACK.S.C.1.2.2.0.0",
    "s.a",
    "s.b.c",
    "t",
];

const KEYS: &[&str] = &[
    "name",
    "subjects",
    "storage",
    "retention",
    "max_msgs",
    "max_bytes",
    "max_age",
    "max_msg_size",
    "max_msgs_per_subject",
    "discard",
    "duplicate_window",
    "allow_direct",
    "allow_rollup_hdrs",
    "deny_delete",
    "mirror",
    "sources",
    "placement",
    "cluster",
    "tags",
    "stream_name",
    "config",
    "action",
    "durable_name",
    "ack_policy",
    "deliver_policy",
    "opt_start_seq",
    "opt_start_time",
    "filter_subject",
    "filter_subjects",
    "max_deliver",
    "backoff",
    "ack_wait",
    "max_batch",
    "max_expires",
    "max_waiting",
    "max_ack_pending",
    "priority_policy",
    "priority_groups",
    "deliver_subject",
    "idle_heartbeat",
    "flow_control",
    "headers_only",
    "inactive_threshold",
    "num_replicas",
    "batch",
    "expires",
    "no_wait",
    "seq",
    "last_by_subj",
    "next_by_subj",
    "multi_last",
    "up_to_seq",
    "keep",
    "filter",
    "offset",
    "subject",
    "subjects_filter",
    "deleted_details",
    "delay",
    "pause_until",
];

const STRINGS: &[&str] = &[
    "",
    "S",
    "T",
    "C",
    "D",
    "s.>",
    "s.a",
    "s.*",
    "t",
    ">",
    "*",
    "a..b",
    "explicit",
    "none",
    "all",
    "last",
    "new",
    "by_start_sequence",
    "last_per_subject",
    "memory",
    "file",
    "limits",
    "interest",
    "workqueue",
    "old",
    "create",
    "update",
    "bogus",
    "pinned_client",
    "overflow",
    "1970-01-01T00:00:00Z",
    "KV_\u{7f}",
    "a/b",
];

fn string(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(if u.ratio(1, 4)? { u.arbitrary::<String>()? } else { (*u.choose(STRINGS)?).to_owned() })
}

fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=5)? {
        0 => json!(u.arbitrary::<i64>()?),
        1 => json!(u.arbitrary::<u64>()?),
        2 => json!(u.arbitrary::<f64>().ok().filter(|f| f.is_finite()).unwrap_or(0.5)),
        3 => json!(*u.choose(&[-1i64, 0, 1, 2, 200_000_000, i64::MAX, i64::MIN])?),
        _ => json!(u.int_in_range(0..=10u64)?),
    })
}

/// A JSON value, nested at most `depth` levels more.
fn value(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 4 } else { 6 };
    Ok(match u.int_in_range(0..=kinds - 1)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => number(u)?,
        3 => Value::String(string(u)?),
        4 => {
            let n = u.int_in_range(0..=3)?;
            Value::Array((0..n).map(|_| value(u, depth - 1)).collect::<Result<_>>()?)
        }
        _ => object(u, depth - 1)?,
    })
}

fn object(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let mut m = Map::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let key = if u.ratio(1, 10)? { u.arbitrary::<String>()? } else { (*u.choose(KEYS)?).to_owned() };
        m.insert(key, value(u, depth)?);
    }
    Ok(Value::Object(m))
}

fn body(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.arbitrary::<Vec<u8>>()?,
        1 => Vec::new(),
        _ => serde_json::to_vec(&object(u, 4)?).unwrap_or_default(),
    })
}

pub(super) fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (mut js, _) = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 1);
    let yes = |_: &[u8]| true;
    js.handle_msg(T0, b"$JS.API.STREAM.CREATE.S", Some(b"_INBOX.r"), None, br#"{"name":"S","subjects":["s.>"]}"#, &yes);
    js.handle_msg(
        T0,
        b"$JS.API.CONSUMER.CREATE.S.C",
        Some(b"_INBOX.r"),
        None,
        br#"{"stream_name":"S","config":{"name":"C","ack_policy":"explicit"}}"#,
        &yes,
    );
    js.handle_msg(T0, b"s.a", None, None, b"first", &yes);
    let mut now = T0;
    let _ = (|| -> Result<()> {
        for _ in 0..u.int_in_range(1..=8)? {
            let mut subject = (*u.choose(SUBJECTS)?).to_owned();
            if u.ratio(1, 8)? {
                subject.push_str(&u.arbitrary::<String>()?);
            }
            let headers = if u.ratio(1, 6)? { Some(u.arbitrary::<Vec<u8>>()?) } else { None };
            let payload = body(&mut u)?;
            let reply: Option<&[u8]> = if u.ratio(7, 8)? { Some(b"_INBOX.r") } else { None };
            js.handle_msg(now, subject.as_bytes(), reply, headers.as_deref(), &payload, &yes);
            now += u.int_in_range(0..=60_000_000_000u64)?;
            while js.next_deadline(now).is_some_and(|d| d <= now) {
                js.handle_timeout(now, &yes);
            }
            js.take_outbound();
        }
        Ok(())
    })();
}
