//! The JetStream engine driven through its public surface with time stepped by hand: no
//! clock, no sleeping. Each test publishes and requests exactly as a client would (API
//! subjects, ack subjects) and reads what the engine wants published.

#![allow(clippy::unwrap_used)]

use edgebus_core::jetstream::store::MemStorage;
use edgebus_core::jetstream::{JetStream, Outbound};
use edgebus_core::proto::Headers;
use serde_json::{json, Value};

const T0: u64 = 1_800_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

struct Harness {
    js: JetStream,
    now: u64,
    listening: bool,
    /// Subjects nobody listens on any more (a client that went away).
    deaf: Vec<String>,
}

impl Harness {
    fn new() -> Harness {
        let (js, warnings) = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 7);
        assert!(warnings.is_empty());
        Harness { js, now: T0, listening: true, deaf: Vec::new() }
    }

    fn send(&mut self, subject: &str, reply: Option<&str>, headers: Option<&[u8]>, payload: &[u8]) -> Vec<Outbound> {
        let (listening, deaf) = (self.listening, self.deaf.clone());
        let interest = move |s: &[u8]| listening && !deaf.iter().any(|d| d.as_bytes() == s);
        self.js.handle_msg(self.now, subject.as_bytes(), reply.map(str::as_bytes), headers, payload, &interest);
        self.js.take_outbound()
    }

    fn api(&mut self, subject: &str, body: Value) -> Value {
        let payload = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
        let out = self.send(&format!("$JS.API.{subject}"), Some("_INBOX.api"), None, &payload);
        let reply = out.iter().find(|o| &o.route[..] == b"_INBOX.api").expect("an API reply");
        serde_json::from_slice(&reply.payload).unwrap()
    }

    fn publish(&mut self, subject: &str, payload: &str) -> Value {
        let out = self.send(subject, Some("_INBOX.ack"), None, payload.as_bytes());
        let ack = out.iter().find(|o| &o.route[..] == b"_INBOX.ack").expect("a publish ack");
        serde_json::from_slice(&ack.payload).unwrap()
    }

    /// Advances time by `d` and returns what the engine published on its timers.
    fn step(&mut self, d: u64) -> Vec<Outbound> {
        self.now += d;
        let (listening, deaf) = (self.listening, self.deaf.clone());
        let interest = move |s: &[u8]| listening && !deaf.iter().any(|d| d.as_bytes() == s);
        let mut out = Vec::new();
        while let Some(deadline) = self.js.next_deadline(self.now) {
            if deadline > self.now {
                break;
            }
            self.js.handle_timeout(self.now, &interest);
            out.extend(self.js.take_outbound());
            if out.len() > 10_000 {
                panic!("timer storm");
            }
        }
        out
    }

    fn pull(&mut self, stream: &str, consumer: &str, body: Value) -> Vec<Outbound> {
        self.pull_to(stream, consumer, "_INBOX.pull", body)
    }

    fn pull_to(&mut self, stream: &str, consumer: &str, reply: &str, body: Value) -> Vec<Outbound> {
        let payload = serde_json::to_vec(&body).unwrap();
        self.send(&format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"), Some(reply), None, &payload)
    }

    fn info(&mut self, stream: &str, consumer: &str) -> Value {
        self.api(&format!("CONSUMER.INFO.{stream}.{consumer}"), Value::Null)
    }
}

fn data(out: &[Outbound], to: &str) -> Vec<Outbound> {
    out.iter().filter(|o| &o.route[..] == to.as_bytes() && o.reply.is_some()).cloned().collect()
}

fn statuses(out: &[Outbound], to: &str) -> Vec<(u16, String)> {
    out.iter()
        .filter(|o| &o.route[..] == to.as_bytes() && o.reply.is_none())
        .filter_map(|o| o.headers.as_ref().and_then(|h| Headers::parse(h).ok()))
        .map(|h| (h.status.unwrap_or(0), h.description.unwrap_or_default()))
        .collect()
}

/// The ack subject of a delivered message.
fn reply_of(o: &Outbound) -> String {
    String::from_utf8(o.reply.clone().unwrap().to_vec()).unwrap()
}

fn ack_tokens(o: &Outbound) -> Vec<String> {
    String::from_utf8(o.reply.clone().unwrap().to_vec()).unwrap().split('.').map(String::from).collect()
}

fn setup(h: &mut Harness, consumer: Value) {
    let r = h.api("STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.>"]}));
    assert!(r.get("error").is_none(), "{r}");
    let name = consumer["durable_name"].as_str().unwrap().to_string();
    let r = h.api(&format!("CONSUMER.CREATE.S.{name}"), json!({"stream_name": "S", "config": consumer}));
    assert!(r.get("error").is_none(), "{r}");
}

#[test]
fn publish_acks_and_no_stream() {
    let mut h = Harness::new();
    let r = h.api("STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.>"]}));
    assert_eq!(r["type"], "io.nats.jetstream.api.v1.stream_create_response");
    assert_eq!(r["config"]["duplicate_window"], 120_000_000_000i64);
    assert_eq!(h.publish("s.a", "1"), json!({"stream": "S", "seq": 1}));
    // identical create is idempotent, a different one is refused
    assert!(h.api("STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.>"]})).get("error").is_none());
    let r = h.api("STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.*"]}));
    assert_eq!(r["error"]["err_code"], 10058);
    let r = h.api("STREAM.CREATE.T", json!({"name": "T", "subjects": ["s.x"]}));
    assert_eq!(r["error"]["err_code"], 10065);
    assert_eq!(h.api("INFO", Value::Null)["streams"], 1);
}

#[test]
fn pull_fetch_ack_and_ack_wait_redelivery() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "d", "ack_policy": "explicit", "ack_wait": 2 * SEC}));
    for i in 0..3 {
        h.publish("s.x", &format!("m{i}"));
    }
    let out = h.pull("S", "d", json!({"batch": 2}));
    let msgs = data(&out, "_INBOX.pull");
    assert_eq!(msgs.len(), 2);
    assert_eq!(&msgs[0].subject[..], b"s.x");
    let t = ack_tokens(&msgs[0]);
    assert_eq!(&t[..7], ["$JS", "ACK", "S", "d", "1", "1", "1"]);
    assert_eq!(t[8], "2", "pending after the first delivery");
    // ack the first; let the second's ack wait run out
    h.send(&reply_of(&msgs[0]), None, None, b"+ACK");
    assert!(h.step(SEC).is_empty(), "nothing due before the ack wait");
    let out = h.pull("S", "d", json!({"batch": 5, "expires": 10 * SEC}));
    assert_eq!(data(&out, "_INBOX.pull").len(), 1, "the third message");
    let out = h.step(SEC + MS);
    let redelivered = data(&out, "_INBOX.pull");
    assert_eq!(redelivered.len(), 1);
    assert_eq!(ack_tokens(&redelivered[0])[4], "2", "second delivery of stream seq 2");
    let info = h.info("S", "d");
    assert_eq!(info["num_redelivered"], 1);
    assert_eq!(info["num_ack_pending"], 2);
    assert_eq!(info["ack_floor"]["stream_seq"], 1);
    assert_eq!(info["delivered"]["stream_seq"], 3);
}

#[test]
fn backoff_and_max_deliver_advisory() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "b", "ack_policy": "explicit", "max_deliver": 3, "backoff": [SEC, 3 * SEC]}));
    h.publish("s.x", "poison");
    let out = h.pull("S", "b", json!({"batch": 10, "expires": 60 * SEC}));
    assert_eq!(data(&out, "_INBOX.pull").len(), 1);
    assert_eq!(data(&h.step(SEC), "_INBOX.pull").len(), 1, "first backoff: 1s");
    assert!(data(&h.step(2 * SEC), "_INBOX.pull").is_empty(), "second backoff is 3s");
    assert_eq!(data(&h.step(SEC), "_INBOX.pull").len(), 1, "third delivery after 3s");
    let out = h.step(3 * SEC);
    let adv: Vec<&Outbound> =
        out.iter().filter(|o| o.route.starts_with(b"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.b")).collect();
    assert_eq!(adv.len(), 1);
    let body: Value = serde_json::from_slice(&adv[0].payload).unwrap();
    assert_eq!((body["stream_seq"].as_u64(), body["deliveries"].as_u64()), (Some(1), Some(3)));
    assert!(data(&h.step(10 * SEC), "_INBOX.pull").is_empty(), "no fourth delivery");
}

#[test]
fn nak_with_delay_term_and_in_progress() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "n", "ack_policy": "explicit", "ack_wait": 5 * SEC}));
    h.publish("s.a", "1");
    h.publish("s.b", "2");
    let out = h.pull("S", "n", json!({"batch": 2}));
    let msgs = data(&out, "_INBOX.pull");
    let reply = reply_of;
    h.send(&reply(&msgs[0]), None, None, b"-NAK {\"delay\": 2000000000}");
    let out = h.send(&reply(&msgs[1]), Some("_INBOX.dbl"), None, b"+TERM bad payload");
    assert_eq!(out.iter().filter(|o| &o.route[..] == b"_INBOX.dbl").count(), 1, "double ack reply");
    let adv = out.iter().find(|o| o.route.starts_with(b"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.n")).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&adv.payload).unwrap()["reason"], "bad payload");
    h.pull("S", "n", json!({"batch": 1, "expires": 30 * SEC}));
    assert!(data(&h.step(SEC), "_INBOX.pull").is_empty(), "nak delay not over");
    let out = h.step(SEC);
    let again = data(&out, "_INBOX.pull");
    assert_eq!(again.len(), 1);
    // +WPI pushes the ack deadline out by a full ack wait
    h.step(4 * SEC);
    h.send(&reply(&again[0]), None, None, b"+WPI");
    h.pull("S", "n", json!({"batch": 1, "expires": 30 * SEC}));
    assert!(data(&h.step(4 * SEC), "_INBOX.pull").is_empty(), "in progress extended the ack wait");
    assert_eq!(data(&h.step(2 * SEC), "_INBOX.pull").len(), 1);
}

#[test]
fn pull_status_replies() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "p", "ack_policy": "explicit", "max_batch": 50}));
    let out = h.pull("S", "p", json!({"batch": 5, "no_wait": true}));
    assert_eq!(statuses(&out, "_INBOX.pull"), [(404, "No Messages".into())]);
    let out = h.pull("S", "p", json!({"batch": 100}));
    assert_eq!(statuses(&out, "_INBOX.pull"), [(409, "Exceeded MaxRequestBatch of 50".into())]);
    h.pull("S", "p", json!({"batch": 10, "expires": 2 * SEC, "idle_heartbeat": SEC}));
    let out = h.step(SEC);
    assert_eq!(statuses(&out, "_INBOX.pull"), [(100, "Idle Heartbeat".into())]);
    let out = h.step(SEC);
    assert_eq!(statuses(&out, "_INBOX.pull"), [(408, "Request Timeout".into())]);
    let out = h.send("$JS.API.CONSUMER.MSG.NEXT.S.missing", Some("_INBOX.x"), None, b"");
    assert_eq!(statuses(&out, "_INBOX.x")[0].0, 503);
}

#[test]
fn no_wait_with_expires_waits_then_ends_after_what_is_there() {
    // nats.py's fetch probes with no_wait + expires; nats-server holds it while the consumer
    // is empty and ends it with a 404 once it got something (test_fetch_no_orphan_on_timeout)
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "p", "ack_policy": "explicit"}));
    let out = h.pull("S", "p", json!({"batch": 100, "expires": 3 * SEC, "no_wait": true}));
    assert!(out.is_empty(), "it waits: {out:?}");
    assert_eq!(h.info("S", "p")["num_waiting"], 1);
    let out = h.send("s.a", None, None, b"hello");
    assert_eq!(data(&out, "_INBOX.pull").len(), 1);
    assert_eq!(statuses(&out, "_INBOX.pull"), [(404, "No Messages".into())]);
    assert_eq!(h.info("S", "p")["num_waiting"], 0);
}

#[test]
fn a_request_nobody_listens_to_takes_no_message() {
    // nats.py's test_pull_subscribe_limits: a fetch after unsubscribing must leave the
    // message pending
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "p", "ack_policy": "explicit"}));
    h.pull_to("S", "p", "_INBOX.gone", json!({"batch": 10, "expires": 5 * SEC}));
    h.deaf.push("_INBOX.gone".into());
    let out = h.send("s.a", None, None, b"1");
    assert!(out.iter().all(|o| &o.route[..] != b"_INBOX.gone"), "{out:?}");
    assert_eq!(h.info("S", "p")["num_pending"], 1);
    assert_eq!(h.info("S", "p")["num_waiting"], 0, "the request is dropped");
    let out = h.pull("S", "p", json!({"batch": 1, "expires": SEC}));
    assert_eq!(data(&out, "_INBOX.pull").len(), 1, "the next listener gets it");
}

#[test]
fn an_expired_request_takes_no_message_before_its_timer_fires() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "p", "ack_policy": "explicit"}));
    h.pull_to("S", "p", "_INBOX.old", json!({"batch": 10, "expires": 100 * MS}));
    h.pull("S", "p", json!({"batch": 10, "expires": 5 * SEC}));
    // time passes without the timer being fired; then a message arrives
    h.now += 150 * MS;
    let out = h.send("s.a", None, None, b"1");
    assert!(data(&out, "_INBOX.old").is_empty(), "{out:?}");
    assert_eq!(statuses(&out, "_INBOX.old")[0], (408, "Request Timeout".into()));
    assert_eq!(data(&out, "_INBOX.pull").len(), 1);
}

#[test]
fn max_waiting_refuses_requests_past_it() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "p", "ack_policy": "explicit", "max_waiting": 1}));
    assert!(h.pull_to("S", "p", "_INBOX.a", json!({"batch": 1, "expires": 5 * SEC})).is_empty());
    let out = h.pull_to("S", "p", "_INBOX.b", json!({"batch": 1, "expires": 5 * SEC}));
    assert_eq!(statuses(&out, "_INBOX.b"), [(409, "Exceeded MaxWaiting".into())]);
    // a request whose client went away still counts until a delivery sheds it (nats-server 2.14)
    h.deaf.push("_INBOX.a".into());
    let out = h.pull_to("S", "p", "_INBOX.c", json!({"batch": 1, "expires": 5 * SEC}));
    assert_eq!(statuses(&out, "_INBOX.c"), [(409, "Exceeded MaxWaiting".into())]);
    let out = h.send("s.a", None, None, b"1");
    assert!(out.iter().all(|o| &o.route[..] != b"_INBOX.a"), "{out:?}");
    let out = h.pull_to("S", "p", "_INBOX.d", json!({"batch": 1, "expires": 5 * SEC}));
    assert_eq!(data(&out, "_INBOX.d").len(), 1);
}

#[test]
fn a_full_queue_sheds_gone_clients_at_most_once_a_second() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "p", "ack_policy": "explicit", "max_waiting": 1}));
    // the first refusal checks the full queue (nats-server's `lwqic` starts at zero)
    h.pull_to("S", "p", "_INBOX.a", json!({"batch": 1, "expires": 30 * SEC}));
    let out = h.pull_to("S", "p", "_INBOX.b", json!({"batch": 1, "expires": 30 * SEC}));
    assert_eq!(statuses(&out, "_INBOX.b"), [(409, "Exceeded MaxWaiting".into())]);
    // its client goes away: within the second the queue stays full
    h.deaf.push("_INBOX.a".into());
    h.now += 900 * MS;
    let out = h.pull_to("S", "p", "_INBOX.c", json!({"batch": 1, "expires": 30 * SEC}));
    assert_eq!(statuses(&out, "_INBOX.c"), [(409, "Exceeded MaxWaiting".into())]);
    // past it, the next pull against the full queue sheds the gone request and takes its place
    h.now += 200 * MS;
    let out = h.pull_to("S", "p", "_INBOX.d", json!({"batch": 1, "expires": 30 * SEC}));
    assert!(statuses(&out, "_INBOX.d").is_empty(), "{out:?}");
    assert_eq!(h.info("S", "p")["num_waiting"], 1);
    let out = h.send("s.a", None, None, b"1");
    assert_eq!(data(&out, "_INBOX.d").len(), 1);
}

#[test]
fn reporting_a_consumer_sheds_requests_that_cannot_be_served() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "p", "ack_policy": "explicit", "max_waiting": 2}));
    h.pull_to("S", "p", "_INBOX.gone", json!({"batch": 1, "expires": 5 * SEC}));
    h.pull_to("S", "p", "_INBOX.late", json!({"batch": 1, "expires": 100 * MS}));
    assert_eq!(h.info("S", "p")["num_waiting"], 2);
    // the first client goes away and the second request expires before its timer fires:
    // an info call drops both (nats-server 2.14), the expired one with its 408
    h.deaf.push("_INBOX.gone".into());
    h.now += 150 * MS;
    let out = h.send("$JS.API.CONSUMER.INFO.S.p", Some("_INBOX.api"), None, b"");
    assert_eq!(statuses(&out, "_INBOX.late"), [(408, "Request Timeout".into())]);
    let info = out.iter().find(|o| &o.route[..] == b"_INBOX.api").unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&info.payload).unwrap()["num_waiting"], 0);
    // the list does the same
    h.pull_to("S", "p", "_INBOX.gone2", json!({"batch": 1, "expires": 5 * SEC}));
    h.deaf.push("_INBOX.gone2".into());
    let list = h.api("CONSUMER.LIST.S", Value::Null);
    assert_eq!(list["consumers"][0]["num_waiting"], 0, "{list}");
}

#[test]
fn rollup_on_a_wildcard_subject_rolls_up_what_it_matches() {
    let mut h = Harness::new();
    let r = h.api("STREAM.CREATE.R", json!({"name": "R", "subjects": ["r.>"], "allow_rollup_hdrs": true}));
    assert!(r.get("error").is_none(), "{r}");
    for subj in ["r.a.1", "r.a.2", "r.a.1", "r.b.1", "r.a.x.y"] {
        h.publish(subj, "x");
    }
    h.send("r.a.*", Some("_INBOX.ack"), Some(b"NATS/1.0\r\nNats-Rollup: sub\r\n\r\n"), b"m");
    // r.a.1 and r.a.2 go; r.b.1, r.a.x.y and the rollup itself stay (nats-server 2.14)
    let r = h.api("STREAM.INFO.R", json!({"subjects_filter": ">"}));
    assert_eq!(r["state"]["messages"], 3);
    assert_eq!(r["state"]["subjects"], json!({"r.a.*": 1, "r.b.1": 1, "r.a.x.y": 1}));
}

#[test]
fn state_bytes_are_counted_as_nats_server_counts_them() {
    // nats.py's test_stream_management reads 47 for "Hello world!" on "world" in a file stream;
    // these are what nats-server 2.14 reports for the same publishes
    let mut h = Harness::new();
    for (name, storage, want) in [("F", "file", [43, 108]), ("M", "memory", [29, 76])] {
        let subj = name.to_lowercase();
        let r = h.api(&format!("STREAM.CREATE.{name}"), json!({"name": name, "subjects": [subj], "storage": storage}));
        assert!(r.get("error").is_none(), "{r}");
        h.publish(&subj, "Hello world!");
        assert_eq!(h.api(&format!("STREAM.INFO.{name}"), Value::Null)["state"]["bytes"], want[0]);
        h.send(&subj, Some("_INBOX.ack"), Some(b"NATS/1.0\r\nX: y\r\n\r\n"), b"Hello world!");
        assert_eq!(h.api(&format!("STREAM.INFO.{name}"), Value::Null)["state"]["bytes"], want[1], "{storage}");
    }
}

#[test]
fn mirror_direct_needs_a_mirror() {
    let mut h = Harness::new();
    let r = h.api("STREAM.CREATE.M", json!({"name": "M", "mirror_direct": true}));
    assert_eq!(
        r["error"],
        json!({"code": 500, "err_code": 10052,
        "description": "stream has no mirror but does have mirror direct"})
    );
}

#[test]
fn max_age_expiry() {
    let mut h = Harness::new();
    h.api("STREAM.CREATE.A", json!({"name": "A", "subjects": ["a"], "max_age": 2 * SEC}));
    h.publish("a", "1");
    h.step(SEC);
    h.publish("a", "2");
    h.step(SEC);
    let st = h.api("STREAM.INFO.A", Value::Null)["state"].clone();
    assert_eq!((st["messages"].as_u64(), st["first_seq"].as_u64()), (Some(1), Some(2)));
    h.step(SEC);
    assert_eq!(h.api("STREAM.INFO.A", Value::Null)["state"]["messages"], 0);
}

#[test]
fn ephemeral_inactive_threshold() {
    let mut h = Harness::new();
    h.api("STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.>"]}));
    let r = h.api(
        "CONSUMER.CREATE.S",
        json!({"stream_name": "S", "config": {"ack_policy": "explicit", "inactive_threshold": 3 * SEC}}),
    );
    let name = r["name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 8);
    h.step(2 * SEC);
    assert!(h.info("S", &name).get("error").is_none());
    h.step(2 * SEC);
    assert_eq!(h.info("S", &name)["error"]["err_code"], 10014);
}

#[test]
fn push_consumer_waits_for_interest_and_heartbeats() {
    let mut h = Harness::new();
    h.listening = false;
    setup(
        &mut h,
        json!({"durable_name": "p", "ack_policy": "none", "deliver_subject": "dlv", "idle_heartbeat": SEC, "flow_control": true}),
    );
    h.publish("s.a", "1");
    assert!(data(&h.step(100 * MS), "dlv").is_empty(), "no interest, no delivery");
    h.listening = true;
    let out = h.step(100 * MS);
    assert_eq!(data(&out, "dlv").len(), 1);
    let out = h.step(SEC);
    assert_eq!(statuses(&out, "dlv"), [(100, "Idle Heartbeat".into())]);
}

/// Publishes `n` messages of `size` bytes to the stream behind push consumer `fc`: the data
/// deliveries counted, and the flow-control requests' reply subjects in order.
fn push_n(h: &mut Harness, n: usize, size: usize) -> (usize, Vec<String>) {
    let body = vec![b'x'; size];
    let (mut delivered, mut asks) = (0, Vec::new());
    for i in 0..n {
        let out = h.send(&format!("s.{}", i % 7), None, None, &body);
        let (d, a) = split_fc(&out);
        delivered += d;
        asks.extend(a);
    }
    (delivered, asks)
}

/// The data deliveries to `fc` in `out`, and the flow-control requests among them.
fn split_fc(out: &[Outbound]) -> (usize, Vec<String>) {
    let mut asks = Vec::new();
    let mut delivered = 0;
    for o in data(out, "fc") {
        let reply = o.reply.clone().unwrap();
        if reply.starts_with(b"$JS.FC.") {
            let h = Headers::parse(o.headers.as_ref().unwrap()).unwrap();
            assert_eq!((h.status, h.description.as_deref()), (Some(100), Some("FlowControl Request")));
            asks.push(String::from_utf8(reply.to_vec()).unwrap());
        } else {
            delivered += 1;
        }
    }
    (delivered, asks)
}

fn flow_controlled(h: &mut Harness) {
    setup(
        h,
        json!({"durable_name": "f", "ack_policy": "none", "deliver_subject": "fc", "idle_heartbeat": SEC, "flow_control": true}),
    );
}

#[test]
fn push_flow_control_asks_at_half_the_window_and_stalls_at_the_whole() {
    let mut h = Harness::new();
    flow_controlled(&mut h);
    let (delivered, asks) = push_n(&mut h, 2100, 1);
    assert_eq!(asks.len(), 1, "one request outstanding at a time");
    assert_eq!(delivered, 2048, "delivery goes on past the request (at 1024) up to the window");
    let fc = asks[0].clone();
    let hb = h.step(SEC);
    let stalled = hb.iter().find_map(|o| o.headers.as_ref().and_then(|b| Headers::parse(b).ok())).unwrap();
    assert_eq!(stalled.get("Nats-Consumer-Stalled"), Some(fc.as_str()));
    let out = h.send(&fc, None, None, b"");
    let (released, asks) = split_fc(&out);
    assert_eq!(released, 2100 - 2048, "the answer releases what its request covered");
    assert_eq!(asks.len(), 1, "the half-window mark is already passed: the next request goes out");
}

#[test]
fn push_flow_control_window_doubles_with_each_answer() {
    let mut h = Harness::new();
    flow_controlled(&mut h);
    let size = 64 * 1024;
    // 2 MiB window: the request after about 1 MiB, the stall after about 2 MiB
    let (first, asks) = push_n(&mut h, 200, size);
    assert!((31..=32).contains(&first), "stalled after {first} messages of 64 KiB");
    assert_eq!(asks.len(), 1);
    // the answer releases about 1 MiB and the window becomes 4 MiB: about 3 MiB more
    let (second, asks) = split_fc(&h.send(&asks[0], None, None, b""));
    assert!((46..=48).contains(&second), "{second} more after the first answer");
    assert_eq!(asks.len(), 1);
    // it released about 2 MiB and the window becomes 8 MiB: about 6 MiB more
    let (third, _) = split_fc(&h.send(&asks[0], None, None, b""));
    assert!((92..=96).contains(&third), "{third} more after the second answer");
    let stale = split_fc(&h.send("$JS.FC.S.f.999", None, None, b"")).0;
    assert_eq!(stale, 0, "an answer to a request that is not outstanding releases nothing");
}

#[test]
fn work_queue_and_interest_retention() {
    let mut h = Harness::new();
    h.api("STREAM.CREATE.W", json!({"name": "W", "subjects": ["w.>"], "retention": "workqueue"}));
    let ok = h.api(
        "CONSUMER.CREATE.W.a",
        json!({"stream_name": "W", "config": {"durable_name": "a", "ack_policy": "explicit"}}),
    );
    assert!(ok.get("error").is_none(), "{ok}");
    let clash = h.api(
        "CONSUMER.CREATE.W.b",
        json!({"stream_name": "W", "config": {"durable_name": "b", "ack_policy": "explicit"}}),
    );
    assert_eq!(clash["error"]["err_code"], 10099);
    h.publish("w.1", "x");
    let msgs = data(&h.pull("W", "a", json!({"batch": 1})), "_INBOX.pull");
    h.send(&reply_of(&msgs[0]), None, None, b"");
    assert_eq!(h.api("STREAM.INFO.W", Value::Null)["state"]["messages"], 0);

    h.api("STREAM.CREATE.I", json!({"name": "I", "subjects": ["i.>"], "retention": "interest"}));
    assert_eq!(h.publish("i.1", "dropped")["seq"], 1);
    assert_eq!(h.api("STREAM.INFO.I", Value::Null)["state"]["messages"], 0);
    for c in ["x", "y"] {
        h.api(
            &format!("CONSUMER.CREATE.I.{c}"),
            json!({"stream_name": "I", "config": {"durable_name": c, "ack_policy": "explicit"}}),
        );
    }
    h.publish("i.2", "kept");
    for (c, left) in [("x", 1), ("y", 0)] {
        let msgs = data(&h.pull("I", c, json!({"batch": 1})), "_INBOX.pull");
        h.send(&reply_of(&msgs[0]), None, None, b"+ACK");
        assert_eq!(h.api("STREAM.INFO.I", Value::Null)["state"]["messages"], left);
    }
}

#[test]
fn deleting_the_last_holder_retires_every_message_it_held() {
    let mut h = Harness::new();
    h.api("STREAM.CREATE.I", json!({"name": "I", "subjects": ["i.>"], "retention": "interest"}));
    for c in ["x", "y"] {
        h.api(
            &format!("CONSUMER.CREATE.I.{c}"),
            json!({"stream_name": "I", "config": {"durable_name": c, "ack_policy": "explicit"}}),
        );
    }
    for n in 1..=5 {
        h.publish(&format!("i.{n}"), "m");
    }
    // a hole in the range the retirement walks
    assert_eq!(h.api("STREAM.MSG.DELETE.I", json!({"seq": 3}))["success"], true);
    let msgs = data(&h.pull("I", "y", json!({"batch": 4})), "_INBOX.pull");
    assert_eq!(msgs.len(), 4);
    for m in &msgs {
        h.send(&reply_of(m), None, None, b"+ACK");
    }
    assert_eq!(h.api("STREAM.INFO.I", Value::Null)["state"]["messages"], 4, "x still holds them");
    assert_eq!(h.api("CONSUMER.DELETE.I.x", Value::Null)["success"], true);
    let state = h.api("STREAM.INFO.I", Value::Null)["state"].clone();
    assert_eq!((state["messages"].clone(), state["last_seq"].clone()), (json!(0), json!(5)));
}

#[test]
fn deliver_policies() {
    let mut h = Harness::new();
    h.api("STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.>"]}));
    for (s, p) in [("s.a", "1"), ("s.b", "2"), ("s.a", "3"), ("s.b", "4")] {
        h.publish(s, p);
    }
    let cases = [
        (json!({"durable_name": "all", "deliver_policy": "all"}), vec!["1", "2", "3", "4"]),
        (json!({"durable_name": "last", "deliver_policy": "last"}), vec!["4"]),
        (json!({"durable_name": "new", "deliver_policy": "new"}), vec![]),
        (json!({"durable_name": "seq", "deliver_policy": "by_start_sequence", "opt_start_seq": 3}), vec!["3", "4"]),
        (json!({"durable_name": "lps", "deliver_policy": "last_per_subject", "filter_subject": "s.*"}), vec!["3", "4"]),
        (json!({"durable_name": "flt", "filter_subject": "s.b"}), vec!["2", "4"]),
    ];
    for (cfg, want) in cases {
        let name = cfg["durable_name"].as_str().unwrap().to_string();
        let mut cfg = cfg;
        cfg["ack_policy"] = json!("explicit");
        let r = h.api(&format!("CONSUMER.CREATE.S.{name}"), json!({"stream_name": "S", "config": cfg}));
        assert!(r.get("error").is_none(), "{r}");
        let got: Vec<String> = data(&h.pull("S", &name, json!({"batch": 10, "no_wait": true})), "_INBOX.pull")
            .iter()
            .map(|o| String::from_utf8(o.payload.to_vec()).unwrap())
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

/// Every header of `o` as (name, value) pairs, in order.
fn header_pairs(o: &Outbound) -> Vec<(String, String)> {
    Headers::parse(o.headers.as_ref().unwrap()).unwrap().entries
}

fn header<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn direct(h: &mut Harness, body: Value) -> Vec<Outbound> {
    let out = h.send("$JS.API.DIRECT.GET.D", Some("_INBOX.dg"), None, &serde_json::to_vec(&body).unwrap());
    out.into_iter().filter(|o| &o.route[..] == b"_INBOX.dg").collect()
}

/// (subject, sequence, Nats-Num-Pending, Nats-Last-Sequence) of each message of a batch, and
/// the status of the last reply with its headers.
type BatchMsg = (String, u64, u64, u64);
type Pairs = Vec<(String, String)>;

fn batch_summary(out: &[Outbound]) -> (Vec<BatchMsg>, (u16, Pairs)) {
    let (end, msgs) = out.split_last().unwrap();
    let num = |p: &[(String, String)], k: &str| header(p, k).unwrap().parse::<u64>().unwrap();
    let msgs = msgs
        .iter()
        .map(|o| {
            let p = header_pairs(o);
            (
                header(&p, "Nats-Subject").unwrap().to_string(),
                num(&p, "Nats-Sequence"),
                num(&p, "Nats-Num-Pending"),
                num(&p, "Nats-Last-Sequence"),
            )
        })
        .collect();
    let status = Headers::parse(end.headers.as_ref().unwrap()).unwrap().status.unwrap();
    (msgs, (status, header_pairs(end)))
}

#[test]
fn direct_get_batches_and_multi_last() {
    let mut h = Harness::new();
    let r = h.api("STREAM.CREATE.D", json!({"name": "D", "subjects": ["d.>"], "allow_direct": true}));
    assert!(r.get("error").is_none(), "{r}");
    for (s, p) in [("d.k", "1"), ("d.j", "2"), ("d.k", "3"), ("d.x.y", "4")] {
        h.publish(s, p);
    }
    // the last message on each subject, in sequence order, then the end of the batch
    let (msgs, (status, eob)) = batch_summary(&direct(&mut h, json!({"multi_last": ["d.*"]})));
    assert_eq!(msgs, [("d.j".into(), 2, 1, 0), ("d.k".into(), 3, 0, 2)]);
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(status, 204);
    assert_eq!(eob, pairs(&[("Nats-Num-Pending", "0"), ("Nats-Last-Sequence", "3"), ("Nats-UpTo-Sequence", "4")]));
    // up to a sequence, and cut short by a batch size
    let (msgs, (_, eob)) = batch_summary(&direct(&mut h, json!({"multi_last": [">"], "up_to_seq": 2, "batch": 1})));
    assert_eq!(msgs, [("d.k".into(), 1, 1, 0)]);
    assert_eq!(header(&eob, "Nats-Num-Pending"), Some("1"));
    assert_eq!(header(&eob, "Nats-UpTo-Sequence"), Some("2"));
    // a batch from a sequence, and along a filter
    let (msgs, (_, eob)) = batch_summary(&direct(&mut h, json!({"seq": 2, "batch": 2})));
    assert_eq!(msgs, [("d.j".into(), 2, 2, 0), ("d.k".into(), 3, 1, 2)]);
    assert_eq!(eob, pairs(&[("Nats-Num-Pending", "1"), ("Nats-Last-Sequence", "3")]));
    let (msgs, _) = batch_summary(&direct(&mut h, json!({"next_by_subj": "d.k", "batch": 5})));
    assert_eq!(msgs, [("d.k".into(), 1, 1, 0), ("d.k".into(), 3, 0, 1)]);
    // a lone get carries no batch headers
    let one = direct(&mut h, json!({"seq": 4}));
    assert_eq!(one.len(), 1);
    assert_eq!(header(&header_pairs(&one[0]), "Nats-Num-Pending"), None);
    // what nats-server refuses, with its texts
    let status_of = |out: Vec<Outbound>| statuses(&out, "_INBOX.dg");
    assert_eq!(status_of(direct(&mut h, json!({"last_by_subj": "d.k", "batch": 2}))), [(408, "Bad Request".into())]);
    assert_eq!(status_of(direct(&mut h, json!({"batch": 2}))), [(408, "Empty Request".into())]);
    assert_eq!(status_of(direct(&mut h, json!({"multi_last": ["none.>"]}))), [(404, "No Results".into())]);
    assert_eq!(status_of(direct(&mut h, json!({"seq": 9}))), [(404, "Message Not Found".into())]);
}

#[test]
fn expected_last_msg_id_is_the_last_message_id() {
    let mut h = Harness::new();
    h.api("STREAM.CREATE.S", json!({"name": "S", "subjects": ["s.>"]}));
    let send = |h: &mut Harness, hdrs: &str| {
        let block = format!("NATS/1.0\r\n{hdrs}\r\n");
        let out = h.send("s.a", Some("_INBOX.ack"), Some(block.as_bytes()), b"x");
        serde_json::from_slice::<Value>(&out[0].payload).unwrap()
    };
    assert_eq!(send(&mut h, "Nats-Msg-Id: m1\r\n")["seq"], 1);
    // the last message has no id: expecting m1 is wrong, and the error names the empty id
    assert_eq!(h.publish("s.a", "no id")["seq"], 2);
    let r = send(&mut h, "Nats-Expected-Last-Msg-Id: m1\r\n");
    assert_eq!(r["error"]["description"], "wrong last msg ID: ");
    // an empty expectation is none
    assert_eq!(send(&mut h, "Nats-Expected-Last-Msg-Id: \r\nNats-Msg-Id: m3\r\n")["seq"], 3);
    assert_eq!(send(&mut h, "Nats-Expected-Last-Msg-Id: m3\r\n")["seq"], 4);
}

#[test]
fn ack_next_sends_no_ack_reply_and_unknown_consumers_have_no_responders() {
    let mut h = Harness::new();
    setup(&mut h, json!({"durable_name": "c", "ack_policy": "explicit"}));
    h.publish("s.a", "1");
    h.publish("s.a", "2");
    let out = h.pull("S", "c", json!({"batch": 1, "no_wait": true}));
    let ack = reply_of(&data(&out, "_INBOX.pull")[0]);
    let out = h.send(&ack, Some("_INBOX.next"), None, b"+NXT {\"batch\":1,\"no_wait\":true}");
    let to_next: Vec<&Outbound> = out.iter().filter(|o| &o.route[..] == b"_INBOX.next").collect();
    assert_eq!(to_next.len(), 1, "only the next message, no empty ack reply");
    assert!(to_next[0].reply.is_some());
    // a plain ack with a reply still gets its empty confirmation
    let out = h.send(&reply_of(to_next[0]), Some("_INBOX.ok"), None, b"+ACK");
    assert!(out.iter().any(|o| &o.route[..] == b"_INBOX.ok" && o.payload.is_empty()));
    let info = h.info("S", "c");
    assert!(info["ack_floor"]["last_active"].is_string(), "{info}");
    let out = h.send("$JS.API.CONSUMER.MSG.NEXT.S.missing", Some("_INBOX.x"), None, b"");
    let p = header_pairs(&out[0]);
    assert_eq!(p, [("Nats-Subject".to_string(), "$JS.API.CONSUMER.MSG.NEXT.S.missing".to_string())]);
}

#[test]
fn api_counts_and_info_paging_follow_nats_server() {
    let mut h = Harness::new();
    assert_eq!(h.api("INFO", Value::Null)["api"]["total"], 0, "an info reply does not count itself");
    h.api("STREAM.CREATE.D", json!({"name": "D", "subjects": ["d.>"], "allow_direct": true}));
    for s in ["d.a", "d.b", "d.c"] {
        h.publish(s, "x");
    }
    let before = h.api("INFO", Value::Null)["api"].clone();
    direct(&mut h, json!({"seq": 1}));
    h.send("$JS.API.CONSUMER.MSG.NEXT.D.none", Some("_INBOX.x"), None, b"");
    h.api("STREAM.MSG.GET.D", json!({"seq": 1}));
    let r = h.api("STREAM.MSG.DELETE.D", json!({"seq": 2}));
    assert_eq!(r["success"], true);
    let r = h.api("STREAM.MSG.DELETE.D", json!({"seq": 2}));
    assert_eq!(r["error"]["err_code"], 10043);
    let after = h.api("INFO", Value::Null)["api"].clone();
    // the info itself, and the two deletes (the failed one counted as a reply)
    assert_eq!(after["total"].as_u64().unwrap() - before["total"].as_u64().unwrap(), 3);
    assert_eq!(after["errors"], before["errors"]);
    let r = h.api("STREAM.INFO.D", json!({"subjects_filter": ">", "deleted_details": true}));
    assert_eq!((r["total"].clone(), r["offset"].clone(), r["limit"].clone()), (json!(2), json!(0), json!(100_000)));
    assert_eq!(r["state"]["deleted"], json!([2]));
    let r = h.api("STREAM.INFO.D", json!({"subjects_filter": "d.a", "offset": 1}));
    assert_eq!(r["state"]["subjects"], json!({}));
    let r = h.api("STREAM.INFO.NOPE", Value::Null);
    assert_eq!((r["total"].clone(), r["error"]["code"].clone()), (json!(0), json!(404)));
    // lists carry each config as stored, without the server's own metadata
    let r = h.api("STREAM.LIST", json!({}));
    assert_eq!(r["streams"][0]["config"]["metadata"], json!({"_nats.req.level": "0"}));
}
