//! Counters, atomic batches and schedules through the engine, as a host drives it: messages
//! in with `now`, time stepped by hand through `next_deadline` / `handle_timeout`.

#![allow(clippy::unwrap_used)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::store::MemStorage;
use super::JetStream;

pub(super) const T0: u64 = 1_800_000_000_000_000_000;
pub(super) const SEC: u64 = 1_000_000_000;

pub(super) fn no_one(_: &[u8]) -> bool {
    false
}

/// An engine with stream `S` (`s.>`, memory) created with `cfg` merged into its config.
pub(super) fn engine(cfg: Value) -> JetStream {
    let mut js = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 1).0;
    let mut c = json!({"name": "S", "subjects": ["s.>"], "storage": "memory"});
    for (k, v) in cfg.as_object().unwrap() {
        c[k] = v.clone();
    }
    let v = ask(&mut js, T0, "$JS.API.STREAM.CREATE.S", None, c.to_string().as_bytes());
    assert!(v.get("error").is_none(), "{v}");
    js
}

/// Publishes with a reply subject; the reply's JSON, `Value::Null` for an empty reply.
fn ask(js: &mut JetStream, now: u64, subject: &str, headers: Option<&str>, body: &[u8]) -> Value {
    js.handle_msg(now, subject.as_bytes(), Some(b"_INBOX.r"), headers.map(str::as_bytes), body, &no_one);
    let out: Vec<_> = js.take_outbound().into_iter().filter(|o| &o.route[..] == b"_INBOX.r").collect();
    assert_eq!(out.len(), 1, "one reply to {subject}");
    if out[0].payload.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out[0].payload).unwrap()
}

fn hdrs(pairs: &[(&str, &str)]) -> String {
    let mut h = String::from("NATS/1.0\r\n");
    for (k, v) in pairs {
        h += &format!("{k}: {v}\r\n");
    }
    h + "\r\n"
}

fn err_code(v: &Value) -> Option<u64> {
    v["error"]["err_code"].as_u64()
}

fn payload_of(js: &mut JetStream, subject: &str) -> Option<String> {
    js.last_msg("S", subject.as_bytes()).unwrap().map(|m| String::from_utf8_lossy(&m.payload).into_owned())
}

#[test]
fn counters_add_up_per_subject_in_any_size() {
    let mut js = engine(json!({"allow_msg_counter": true}));
    let incr = |v: &str| hdrs(&[("Nats-Incr", v)]);
    let big = "99999999999999999999999999999999999999";
    assert_eq!(ask(&mut js, T0, "s.a", Some(&incr(big)), b"")["val"], big);
    assert_eq!(ask(&mut js, T0, "s.a", Some(&incr("+1")), b"")["val"], "100000000000000000000000000000000000000");
    assert_eq!(ask(&mut js, T0, "s.a", Some(&incr("-100000000000000000000000000000000000001")), b"")["val"], "-1");
    assert_eq!(ask(&mut js, T0, "s.b", Some(&incr("2")), b"")["val"], "2");
    assert_eq!(payload_of(&mut js, "s.a").as_deref(), Some(r#"{"val":"-1"}"#));
    assert_eq!(err_code(&ask(&mut js, T0, "s.a", None, b"")), Some(10169));
    assert_eq!(err_code(&ask(&mut js, T0, "s.a", Some(&incr("1")), b"x")), Some(10170));
    assert_eq!(err_code(&ask(&mut js, T0, "s.a", Some(&incr("one")), b"")), Some(10171));
    assert_eq!(js.stream_state("S").unwrap().messages, 4);
}

#[test]
fn a_batch_is_invisible_until_its_commit_and_then_whole() {
    let mut js = engine(json!({"allow_atomic": true}));
    let b = |seq: &str, commit: Option<&str>| {
        let mut p = alloc::vec![("Nats-Batch-Id", "B"), ("Nats-Batch-Sequence", seq)];
        p.extend(commit.map(|c| ("Nats-Batch-Commit", c)));
        hdrs(&p)
    };
    assert_eq!(ask(&mut js, T0, "s.a", Some(&b("1", None)), b"1"), Value::Null);
    assert_eq!(ask(&mut js, T0, "s.b", Some(&b("2", None)), b"2"), Value::Null);
    assert_eq!(js.stream_state("S").unwrap().messages, 0);
    let ack = ask(&mut js, T0, "s.x", Some(&b("3", Some("eob"))), b"");
    assert_eq!(ack, json!({"stream": "S", "seq": 2, "batch": "B", "count": 2}));
    let last = js.last_msg("S", b"s.b").unwrap().unwrap();
    assert!(String::from_utf8_lossy(last.headers.as_deref().unwrap()).contains("Nats-Batch-Commit: 1"));
    assert_eq!(js.last_msg("S", b"s.x").unwrap(), None, "the end-of-batch marker is not stored");
}

#[test]
fn an_idle_batch_is_abandoned_after_ten_seconds() {
    let mut js = engine(json!({"allow_atomic": true}));
    let h = hdrs(&[("Nats-Batch-Id", "idle"), ("Nats-Batch-Sequence", "1")]);
    ask(&mut js, T0, "s.a", Some(&h), b"1");
    let due = js.next_deadline(T0).unwrap();
    assert!(due <= T0 + 10 * SEC);
    js.handle_timeout(T0 + 10 * SEC, &no_one);
    let adv: Vec<_> = js
        .take_outbound()
        .into_iter()
        .filter(|o| o.route.starts_with(b"$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.S"))
        .collect();
    assert_eq!(adv.len(), 1);
    let v: Value = serde_json::from_slice(&adv[0].payload).unwrap();
    assert_eq!((v["batch"].as_str(), v["reason"].as_str()), (Some("idle"), Some("timeout")));
    let commit = hdrs(&[("Nats-Batch-Id", "idle"), ("Nats-Batch-Sequence", "2"), ("Nats-Batch-Commit", "1")]);
    assert_eq!(err_code(&ask(&mut js, T0 + 10 * SEC, "s.a", Some(&commit), b"2")), Some(10176));
}

#[test]
fn the_fifty_first_open_batch_of_a_stream_is_refused() {
    let mut js = engine(json!({"allow_atomic": true}));
    for i in 0..50 {
        let h = hdrs(&[("Nats-Batch-Id", &i.to_string()), ("Nats-Batch-Sequence", "1")]);
        assert_eq!(ask(&mut js, T0, "s.a", Some(&h), b"x"), Value::Null);
    }
    let h = hdrs(&[("Nats-Batch-Id", "one more"), ("Nats-Batch-Sequence", "1")]);
    let v = ask(&mut js, T0, "s.a", Some(&h), b"x");
    assert_eq!((v["error"]["code"].as_u64(), err_code(&v)), (Some(429), Some(10210)));
}

#[test]
fn a_schedule_fires_on_its_target_only_when_due() {
    let mut js = engine(json!({"allow_msg_schedules": true}));
    let at = super::time::rfc3339(T0 + 5 * SEC);
    let h = hdrs(&[("Nats-Schedule", &format!("@at {at}")), ("Nats-Schedule-Target", "s.t"), ("X-Keep", "me")]);
    assert_eq!(ask(&mut js, T0, "s.sched", Some(&h), b"later"), json!({"stream": "S", "seq": 1}));
    assert_eq!(js.next_deadline(T0), Some(T0 + SEC), "the periodic save comes first");
    js.handle_timeout(T0 + 4 * SEC, &no_one);
    assert_eq!(payload_of(&mut js, "s.t"), None, "not before its time");
    assert_eq!(js.next_deadline(T0 + 4 * SEC).map(|d| d.min(T0 + 5 * SEC)), Some(T0 + 5 * SEC));
    js.handle_timeout(T0 + 5 * SEC, &no_one);
    let fired = js.last_msg("S", b"s.t").unwrap().unwrap();
    assert_eq!(&fired.payload[..], b"later");
    let h = String::from_utf8_lossy(fired.headers.as_deref().unwrap()).into_owned();
    assert!(
        h.contains("Nats-Scheduler: s.sched") && h.contains("Nats-Schedule-Next: purge") && h.contains("X-Keep: me"),
        "{h}"
    );
    assert_eq!(js.last_msg("S", b"s.sched").unwrap(), None, "a one-shot schedule goes once fired");
}

#[test]
fn a_repeating_schedule_fires_every_period() {
    let mut js = engine(json!({"allow_msg_schedules": true}));
    let h = hdrs(&[("Nats-Schedule", "@every 2s"), ("Nats-Schedule-Target", "s.t")]);
    ask(&mut js, T0, "s.rep", Some(&h), b"tick");
    for k in 1..=3u64 {
        js.handle_timeout(T0 + 2 * k * SEC, &no_one);
    }
    assert_eq!(js.stream_state("S").unwrap().messages, 4, "the schedule and three ticks");
    let last = js.last_msg("S", b"s.t").unwrap().unwrap();
    let h = String::from_utf8_lossy(last.headers.as_deref().unwrap()).into_owned();
    assert!(h.contains(&format!("Nats-Schedule-Next: {}", super::time::rfc3339(T0 + 8 * SEC))), "{h}");
}
