//! Fast-ingest batches through the engine, as a host drives it: messages in with `now`, the
//! replies read off the outbound, time stepped by hand for the idle timeout.

#![allow(clippy::unwrap_used)]

use alloc::format;
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::features_tests::{engine, no_one, SEC, T0};
use super::JetStream;

/// Publishes on `subject` with `reply`; every reply the engine sent back to it, as JSON.
fn send(js: &mut JetStream, now: u64, subject: &str, reply: &str, headers: Option<&str>) -> Vec<Value> {
    js.handle_msg(now, subject.as_bytes(), Some(reply.as_bytes()), headers.map(str::as_bytes), b"x", &no_one);
    js.take_outbound()
        .into_iter()
        .filter(|o| o.route == reply.as_bytes())
        .map(|o| serde_json::from_slice(&o.payload).unwrap_or(Value::Null))
        .collect()
}

fn fi(id: &str, flow: u16, gap: &str, seq: u64, op: u8) -> alloc::string::String {
    format!("_INBOX.f.{id}.{flow}.{gap}.{seq}.{op}.$FI")
}

#[test]
fn acks_at_the_start_and_the_commit_and_every_flow_messages_between() {
    let mut js = engine(json!({"allow_batched": true}));
    assert_eq!(send(&mut js, T0, "s.a", &fi("b", 2, "ok", 1, 0), None), [json!({"type": "ack", "seq": 0, "msgs": 2})]);
    assert_eq!(send(&mut js, T0, "s.a", &fi("b", 2, "ok", 2, 1), None), [json!({"type": "ack", "seq": 2, "msgs": 2})]);
    assert!(send(&mut js, T0, "s.a", &fi("b", 2, "ok", 3, 1), None).is_empty());
    assert_eq!(send(&mut js, T0, "s.a", &fi("b", 2, "ok", 3, 4), None), [json!({"type": "ack", "seq": 2, "msgs": 2})]);
    assert_eq!(
        send(&mut js, T0, "s.a", &fi("b", 2, "ok", 4, 3), None),
        [json!({"stream": "S", "seq": 3, "batch": "b", "count": 3})]
    );
    assert_eq!(js.stream_state("S").unwrap().messages, 3);
    // a second batch alongside an open one starts at one message and doubles
    send(&mut js, T0, "s.a", &fi("p", 10, "ok", 1, 0), None);
    assert_eq!(
        send(&mut js, T0, "s.a", &fi("q", 10, "ok", 1, 0), None)[..2],
        [json!({"type": "ack", "seq": 0, "msgs": 1}), json!({"type": "ack", "seq": 1, "msgs": 2})]
    );
}

#[test]
fn gaps_end_a_failing_batch_and_are_reported_in_an_ok_one() {
    let mut js = engine(json!({"allow_batched": true}));
    send(&mut js, T0, "s.a", &fi("f", 10, "fail", 1, 0), None);
    assert_eq!(
        send(&mut js, T0, "s.a", &fi("f", 10, "fail", 3, 1), None),
        [json!({"type": "gap", "last_seq": 2, "seq": 3}), json!({"stream": "S", "seq": 1, "batch": "f", "count": 1})]
    );
    assert_eq!(send(&mut js, T0, "s.a", &fi("f", 10, "fail", 4, 1), None)[0]["error"]["err_code"], 10208);
    send(&mut js, T0, "s.a", &fi("o", 10, "ok", 1, 0), None);
    assert_eq!(
        send(&mut js, T0, "s.a", &fi("o", 10, "ok", 5, 1), None),
        [json!({"type": "gap", "last_seq": 2, "seq": 5})]
    );
    assert_eq!(
        send(&mut js, T0, "s.a", &fi("o", 10, "ok", 6, 2), None),
        [json!({"stream": "S", "seq": 4, "batch": "o", "count": 6})]
    );
}

#[test]
fn refusals_and_the_idle_timeout() {
    let mut js = engine(json!({"allow_batched": true}));
    let code = |v: Vec<Value>| v[0]["error"]["err_code"].as_u64();
    assert_eq!(code(send(&mut js, T0, "s.a", "x.10.ok.1.0.$FI", None)), Some(10206));
    assert_eq!(code(send(&mut js, T0, "s.a", &fi(&"L".repeat(65), 10, "ok", 1, 0), None)), Some(10207));
    assert_eq!(code(send(&mut js, T0, "s.a", &fi("u", 10, "ok", 2, 1), None)), Some(10208));
    let level = "NATS/1.0\r\nNats-Required-Api-Level: 99\r\n\r\n";
    assert_eq!(code(send(&mut js, T0, "s.a", &fi("l", 10, "ok", 1, 0), Some(level))), Some(10185));
    send(&mut js, T0, "s.a", &fi("t", 10, "ok", 1, 0), None);
    let idle = T0 + 10 * SEC;
    assert!(js.next_deadline(T0).unwrap() <= idle);
    js.handle_timeout(idle - 1, &no_one);
    assert!(send(&mut js, idle - 1, "s.a", &fi("t", 10, "ok", 2, 1), None).is_empty(), "alive before 10 s");
    let idle = idle - 1 + 10 * SEC;
    js.handle_timeout(idle, &no_one);
    assert_eq!(code(send(&mut js, idle, "s.a", &fi("t", 10, "ok", 3, 1), None)), Some(10208));
    let mut plain = engine(json!({}));
    assert_eq!(code(send(&mut plain, T0, "s.a", &fi("b", 10, "ok", 1, 0), None)), Some(10205));
}
