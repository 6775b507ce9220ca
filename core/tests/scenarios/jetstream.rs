//! JetStream as a protocol client meets it through the broker: API requests, stream
//! publishes with acks, pull requests and acks, and time moving under them.

use edgebus_core::broker::ConnId;
use serde_json::{json, Value};

use crate::sim::{header, json, publish, reply, status, subject, text, Sim, MS, SEC};

pub(crate) const CLIENT: &str = r#"{"verbose":false,"headers":true,"no_responders":true}"#;

/// A client with an inbox subscription (`_INBOX.c.>`).
pub(crate) fn client(sim: &mut Sim) -> ConnId {
    let c = sim.client(CLIENT);
    sim.send(c, "SUB _INBOX.c.> 1\r\n");
    c
}

/// A JetStream API request; returns the JSON reply.
pub(crate) fn api(sim: &mut Sim, c: ConnId, what: &str, body: Value) -> Value {
    let payload = if body.is_null() { String::new() } else { body.to_string() };
    sim.send(c, &publish(&format!("$JS.API.{what}"), Some("_INBOX.c.api"), &[], &payload));
    let got = sim.msgs(c);
    assert_eq!(got.len(), 1, "one reply to {what}: {got:?}");
    json(&got[0])
}

/// A stream `S` on `s.>` and a pull consumer `d` with `config`.
pub(crate) fn stream_and_consumer(sim: &mut Sim, c: ConnId, config: Value) {
    let r = api(sim, c, "STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.>"]}));
    assert!(r.get("error").is_none(), "{r}");
    let r = api(sim, c, "CONSUMER.DURABLE.CREATE.S.d", json!({"stream_name": "S", "config": config}));
    assert!(r.get("error").is_none(), "{r}");
}

/// A stream publish awaiting its ack; returns the ack's sequence.
pub(crate) fn js_publish(sim: &mut Sim, c: ConnId, subj: &str, payload: &str) -> u64 {
    sim.send(c, &publish(subj, Some("_INBOX.c.ack"), &[], payload));
    let got = sim.msgs(c);
    assert_eq!(got.len(), 1, "{got:?}");
    let ack = json(&got[0]);
    assert_eq!(ack["stream"], "S", "{ack}");
    ack["seq"].as_u64().unwrap()
}

fn pull(sim: &mut Sim, c: ConnId, body: Value) {
    sim.send(c, &publish("$JS.API.CONSUMER.MSG.NEXT.S.d", Some("_INBOX.c.pull"), &[], &body.to_string()));
}

/// `$JS.ACK.S.d.<delivered>.<sseq>.<dseq>.<ts>.<pending>` → (delivered, stream seq).
fn ack_info(ack_subject: &str) -> (u64, u64) {
    let t: Vec<&str> = ack_subject.split('.').collect();
    assert_eq!(&t[..4], ["$JS", "ACK", "S", "d"], "{ack_subject}");
    (t[4].parse().unwrap(), t[5].parse().unwrap())
}

#[test]
fn unacked_messages_come_back_after_ack_wait() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    stream_and_consumer(&mut sim, c, json!({"durable_name": "d", "ack_policy": "explicit", "ack_wait": 5 * SEC}));
    assert_eq!(js_publish(&mut sim, c, "s.a", "one"), 1);
    assert_eq!(js_publish(&mut sim, c, "s.b", "two"), 2);

    pull(&mut sim, c, json!({"batch": 2}));
    let got = sim.msgs(c);
    assert_eq!(
        got.iter().map(|m| (subject(m), text(m.payload()))).collect::<Vec<_>>(),
        [("s.a", "one"), ("s.b", "two")]
    );
    assert_eq!(ack_info(&reply(&got[0])), (1, 1));
    sim.send(c, &publish(&reply(&got[0]), None, &[], "+ACK"));

    // A pull waits; nothing is redelivered before the ack wait is over.
    pull(&mut sim, c, json!({"batch": 1, "expires": 60 * SEC}));
    sim.advance(5 * SEC - MS);
    assert!(sim.msgs(c).is_empty(), "nothing before the ack wait");
    sim.advance(2 * MS);
    let got = sim.msgs(c);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((subject(&got[0]), text(got[0].payload())), ("s.b", "two"));
    assert_eq!(ack_info(&reply(&got[0])), (2, 2), "second delivery of stream seq 2");

    // Acked now, it stays acked however long we wait.
    sim.send(c, &publish(&reply(&got[0]), Some("_INBOX.c.acked"), &[], "+ACK"));
    assert_eq!(sim.msgs(c).len(), 1, "the ack is confirmed (ack sync)");
    pull(&mut sim, c, json!({"batch": 1, "expires": 60 * SEC}));
    sim.advance(30 * SEC);
    assert!(sim.msgs(c).is_empty());
    let info = api(&mut sim, c, "CONSUMER.INFO.S.d", Value::Null);
    assert_eq!(info["num_redelivered"], 0);
    assert_eq!(info["num_ack_pending"], 0);
    assert_eq!(info["ack_floor"]["stream_seq"], 2);
    assert_eq!(info["num_waiting"], 1, "the last pull still waits");
}

#[test]
fn an_expired_pull_request_does_not_take_a_later_message() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    stream_and_consumer(&mut sim, c, json!({"durable_name": "d", "ack_policy": "explicit"}));
    pull(&mut sim, c, json!({"batch": 1, "expires": SEC}));
    assert!(sim.msgs(c).is_empty(), "nothing to deliver yet");

    // The host wakes late: the request expired a second ago, and a publish is waiting. The
    // host step runs due timers before input (and the engine also checks a request's expiry
    // before handing it a message), so the request ends with a 408 and the message is left
    // for the next pull.
    sim.now += 2 * SEC;
    sim.send(c, &publish("s.late", Some("_INBOX.c.ack"), &[], "late"));
    let got = sim.msgs(c);
    let on = |inbox: &str| got.iter().filter(|m| subject(m) == inbox).collect::<Vec<_>>();
    let timeouts = on("_INBOX.c.pull");
    assert_eq!(timeouts.len(), 1, "{got:?}");
    assert_eq!(status(timeouts[0]), 408);
    assert_eq!(on("_INBOX.c.ack").len(), 1, "the publish was acked");
    assert!(got.iter().all(|m| subject(m) != "s.late"), "the expired request took the message: {got:?}");

    let info = api(&mut sim, c, "CONSUMER.INFO.S.d", Value::Null);
    assert_eq!(info["num_pending"], 1);
    assert_eq!(info["num_waiting"], 0);
    pull(&mut sim, c, json!({"batch": 1, "no_wait": true}));
    let got = sim.msgs(c);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((subject(&got[0]), text(got[0].payload())), ("s.late", "late"));
}

#[test]
fn a_pull_request_that_outlives_its_expiry_ends_with_408_and_pending_counts() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    stream_and_consumer(&mut sim, c, json!({"durable_name": "d", "ack_policy": "explicit"}));
    js_publish(&mut sim, c, "s.a", "only");
    pull(&mut sim, c, json!({"batch": 3, "expires": 2 * SEC}));
    assert_eq!(sim.msgs(c).len(), 1, "the one message at once");
    sim.advance(2 * SEC - MS);
    assert!(sim.msgs(c).is_empty(), "still waiting for two more");
    sim.advance(MS);
    let got = sim.msgs(c);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(status(&got[0]), 408);
    assert_eq!(header(&got[0], "Nats-Pending-Messages").as_deref(), Some("2"));
}

#[test]
fn a_push_consumer_delivers_while_a_client_listens_on_its_subject() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    let config = json!({
        "durable_name": "d", "ack_policy": "explicit", "ack_wait": 2 * SEC,
        "deliver_subject": "dlv.d", "idle_heartbeat": SEC,
    });
    stream_and_consumer(&mut sim, c, config);
    js_publish(&mut sim, c, "s.a", "one");
    js_publish(&mut sim, c, "s.b", "two");
    sim.advance(200 * MS);
    let info = api(&mut sim, c, "CONSUMER.INFO.S.d", Value::Null);
    assert_eq!(info["delivered"]["stream_seq"], 0, "nobody listens: nothing delivered");

    // The engine learns of the subscription from the broker's interest, at its next poll.
    let listener = sim.client(CLIENT);
    sim.send(listener, "SUB dlv.d 1\r\n");
    sim.advance(100 * MS);
    let got = sim.msgs(listener);
    assert_eq!(got.iter().map(|m| text(m.payload())).collect::<Vec<_>>(), ["one", "two"]);
    assert!(got.iter().all(|m| status(m) == 0));
    assert_eq!(api(&mut sim, c, "CONSUMER.INFO.S.d", Value::Null)["push_bound"], true);
    sim.send(listener, &publish(&reply(&got[0]), None, &[], "+ACK"));

    // Unacked, the second comes back after the ack wait; heartbeats fill the quiet time.
    sim.advance(2 * SEC);
    let got = sim.msgs(listener);
    let data: Vec<_> = got.iter().filter(|m| status(m) == 0).collect();
    assert_eq!(data.len(), 1, "{got:?}");
    assert_eq!((text(data[0].payload()), ack_info(&reply(data[0]))), ("two", (2, 2)));
    assert!(got.iter().any(|m| status(m) == 100), "an idle heartbeat: {got:?}");
    sim.send(listener, &publish(&reply(data[0]), None, &[], "+ACK"));

    // Once the listener leaves, the consumer is no longer bound and holds new messages.
    sim.send(listener, "UNSUB 1\r\n");
    sim.advance(100 * MS);
    js_publish(&mut sim, c, "s.c", "three");
    sim.advance(100 * MS);
    let info = api(&mut sim, c, "CONSUMER.INFO.S.d", Value::Null);
    assert_eq!(info["push_bound"], Value::Null, "not bound any more (the field is left out): {info}");
    assert_eq!(info["num_pending"], 1);
    assert_eq!(info["ack_floor"]["stream_seq"], 2);
}

#[test]
fn a_message_id_is_a_duplicate_only_inside_the_window() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    let r =
        api(&mut sim, c, "STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.>"], "duplicate_window": 10 * SEC}));
    assert!(r.get("error").is_none(), "{r}");
    let send = |sim: &mut Sim, payload: &str| {
        sim.send(c, &publish("s.order", Some("_INBOX.c.ack"), &[("Nats-Msg-Id", "order-1")], payload));
        let got = sim.msgs(c);
        assert_eq!(got.len(), 1, "{got:?}");
        json(&got[0])
    };
    assert_eq!(send(&mut sim, "first"), json!({"stream": "S", "seq": 1}));
    sim.advance(10 * SEC - MS);
    assert_eq!(send(&mut sim, "retry"), json!({"stream": "S", "seq": 1, "duplicate": true}));
    sim.advance(2 * MS);
    assert_eq!(send(&mut sim, "much later"), json!({"stream": "S", "seq": 2}), "the window has passed");
}
