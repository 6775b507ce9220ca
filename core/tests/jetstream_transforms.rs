//! A stream's `subject_transform`, `republish` and `persist_mode` through the engine's public
//! surface: the expected subjects, headers and errors are what nats-server 2.14 gave for the
//! same requests.

#![allow(clippy::unwrap_used)]

use edgebus_core::jetstream::store::MemStorage;
use edgebus_core::jetstream::{JetStream, Outbound};
use serde_json::{json, Value};

/// 2027-01-15T08:00:00.5Z
const T0: u64 = 1_800_000_000_500_000_000;

struct Harness {
    js: JetStream,
    now: u64,
}

impl Harness {
    fn new() -> Harness {
        let (js, _) = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 7);
        Harness { js, now: T0 }
    }

    fn send(&mut self, subject: &str, reply: &str, headers: Option<&[u8]>, payload: &[u8]) -> Vec<Outbound> {
        self.js.handle_msg(self.now, subject.as_bytes(), Some(reply.as_bytes()), headers, payload, &|_: &[u8]| true);
        self.js.take_outbound()
    }

    fn api(&mut self, subject: &str, body: Value) -> Value {
        let out = self.send(&format!("$JS.API.{subject}"), "_INBOX.api", None, &serde_json::to_vec(&body).unwrap());
        let reply = out.iter().find(|o| &o.route[..] == b"_INBOX.api").expect("an API reply");
        serde_json::from_slice(&reply.payload).unwrap()
    }

    /// Publishes and returns what else than the ack the engine sent (the republished copies).
    fn publish(&mut self, subject: &str, headers: Option<&[u8]>, payload: &str) -> Vec<Outbound> {
        let out = self.send(subject, "_INBOX.ack", headers, payload.as_bytes());
        let ack: Value =
            serde_json::from_slice(&out.iter().find(|o| &o.route[..] == b"_INBOX.ack").unwrap().payload).unwrap();
        assert!(ack.get("error").is_none(), "{ack}");
        out.into_iter().filter(|o| &o.route[..] != b"_INBOX.ack").collect()
    }

    fn stored_subject(&mut self, stream: &str, seq: u64) -> String {
        let r = self.api(&format!("STREAM.MSG.GET.{stream}"), json!({"seq": seq}));
        r["message"]["subject"].as_str().unwrap().to_string()
    }
}

fn error(r: &Value) -> (u64, u64, String) {
    let e = &r["error"];
    (e["code"].as_u64().unwrap(), e["err_code"].as_u64().unwrap(), e["description"].as_str().unwrap().into())
}

#[test]
fn a_captured_message_is_stored_under_the_transformed_subject() {
    let mut h = Harness::new();
    let cfg = json!({"name": "P", "subjects": ["part.*"], "storage": "memory",
        "subject_transform": {"src": "part.*", "dest": "p.{{partition(10,1)}}.$1"}});
    let r = h.api("STREAM.CREATE.P", cfg);
    assert_eq!(r["config"]["subject_transform"], json!({"src": "part.*", "dest": "p.{{partition(10,1)}}.$1"}));
    h.publish("part.hello", None, "x");
    h.publish("part.world", None, "y");
    assert_eq!(h.stored_subject("P", 1), "p.3.hello");
    let r = h.api(
        "STREAM.CREATE.Q",
        json!({"name": "Q", "subjects": ["q.>"], "storage": "memory",
        "subject_transform": {"src": "q.*.*", "dest": "q2.$2.$1"}}),
    );
    assert!(r.get("error").is_none(), "{r}");
    h.publish("q.a.b", None, "x");
    h.publish("q.a.b.c", None, "not matched: kept as published");
    assert_eq!((h.stored_subject("Q", 1), h.stored_subject("Q", 2)), ("q2.b.a".into(), "q.a.b.c".into()));
}

#[test]
fn transform_errors_are_nats_servers() {
    let mut h = Harness::new();
    let mut create =
        |t: Value| error(&h.api("STREAM.CREATE.E", json!({"name": "E", "subjects": ["e.>"], "subject_transform": t})));
    assert_eq!(
        create(json!({"src": "foo..x", "dest": "bar"})),
        (400, 10155, "stream transform source: invalid subject foo..x".into())
    );
    assert_eq!(
        create(json!({"src": "foo.*", "dest": "bar.*"})),
        (400, 10156, "stream transform: invalid subject".into())
    );
    let unknown = "stream transform: invalid mapping destination: unknown function in {{nope(1)}}";
    assert_eq!(create(json!({"src": "foo.*", "dest": "bar.{{nope(1)}}"})), (400, 10156, unknown.into()));
}

fn header_lines(o: &Outbound) -> Vec<String> {
    let h = String::from_utf8(o.headers.clone().unwrap().to_vec()).unwrap();
    assert!(h.ends_with("\r\n\r\n"), "{h:?}");
    h.trim_end().split("\r\n").map(String::from).collect()
}

#[test]
fn republish_sends_a_copy_with_the_stream_headers() {
    let mut h = Harness::new();
    let r = h.api(
        "STREAM.CREATE.R",
        json!({"name": "R", "subjects": ["r.>"], "storage": "memory", "republish": {"dest": "out.>"}}),
    );
    assert_eq!(r["config"]["republish"], json!({"src": ">", "dest": "out.>"}));
    let out = h.publish("r.a", None, "hello");
    assert_eq!((out.len(), &out[0].route[..], &out[0].payload[..]), (1, &b"out.r.a"[..], &b"hello"[..]));
    let stamp = "Nats-Time-Stamp: 2027-01-15T08:00:00.5Z";
    let want = ["NATS/1.0", "Nats-Stream: R", "Nats-Subject: r.a", "Nats-Sequence: 1", stamp, "Nats-Last-Sequence: 0"];
    assert_eq!(header_lines(&out[0]), want);
    h.publish("r.b", None, "x");
    // the message's own headers come first; a duplicate is neither stored nor republished
    let hdr = b"NATS/1.0\r\nFoo: bar\r\nNats-Msg-Id: m1\r\n\r\n";
    let out = h.publish("r.a", Some(hdr), "again");
    let lines = header_lines(&out[0]);
    assert_eq!(lines[..4], ["NATS/1.0", "Foo: bar", "Nats-Msg-Id: m1", "Nats-Stream: R"]);
    assert_eq!(lines.last().unwrap(), "Nats-Last-Sequence: 1", "the previous message on r.a");
    assert!(h.publish("r.a", Some(hdr), "again").is_empty());
}

#[test]
fn republish_headers_only_and_config_errors() {
    let mut h = Harness::new();
    let cfg = json!({"name": "H", "subjects": ["h.>"], "storage": "memory",
        "republish": {"src": "h.>", "dest": "ho.>", "headers_only": true}});
    assert!(h.api("STREAM.CREATE.H", cfg).get("error").is_none());
    let out = h.publish("h.z", None, "12345");
    assert!(out[0].payload.is_empty());
    assert_eq!(header_lines(&out[0]).last().unwrap(), "Nats-Msg-Size: 5");
    let mut create = |rp: Value, st: Value| {
        let mut cfg = json!({"name": "X", "subjects": ["x.*"], "republish": rp});
        if !st.is_null() {
            cfg["subject_transform"] = st;
        }
        error(&h.api("STREAM.CREATE.X", cfg))
    };
    let cycle = "stream configuration for republish destination forms a cycle";
    assert_eq!(create(json!({"src": ">", "dest": "x.a"}), Value::Null), (500, 10052, cycle.into()));
    let bad = "stream configuration for republish with transform from 'x.*' to 'o.$2' not valid";
    assert_eq!(create(json!({"src": "x.*", "dest": "o.$2"}), Value::Null), (500, 10052, bad.into()));
    // `>` -> `>` follows the stream's transform, which here has no wildcard to give
    let implicit = "stream configuration for republish with transform from 't.$1' to 't.$1' not valid";
    let st = json!({"src": "x.*", "dest": "t.$1"});
    assert_eq!(create(json!({"src": ">", "dest": ">"}), st), (500, 10052, implicit.into()));
}

#[test]
fn persist_mode_is_kept_and_checked() {
    let mut h = Harness::new();
    let r = h.api("STREAM.CREATE.A", json!({"name": "A", "subjects": ["a"], "persist_mode": "async"}));
    assert_eq!(
        (&r["config"]["persist_mode"], &r["config"]["metadata"]["_nats.req.level"]),
        (&json!("async"), &json!("2"))
    );
    for (name, mode) in [("D", "default"), ("E", "")] {
        let r =
            h.api(&format!("STREAM.CREATE.{name}"), json!({"name": name, "subjects": [name], "persist_mode": mode}));
        assert!(r["config"].get("persist_mode").is_none(), "{r}");
    }
    let r = h.api("STREAM.CREATE.M", json!({"name": "M", "storage": "memory", "persist_mode": "async"}));
    assert_eq!(error(&r), (500, 10052, "async persist mode is only supported on file storage".into()));
    let change = (500, 10052, "stream configuration update can not change persist mode".into());
    assert_eq!(error(&h.api("STREAM.UPDATE.A", json!({"name": "A", "subjects": ["a"]}))), change);
    assert_eq!(
        error(&h.api("STREAM.UPDATE.D", json!({"name": "D", "subjects": ["D"], "persist_mode": "async"}))),
        change
    );
}

#[test]
fn an_atomic_batch_is_transformed_and_republished_like_any_publish() {
    let mut h = Harness::new();
    let cfg = json!({"name": "BT", "subjects": ["bt.*"], "storage": "memory", "allow_atomic": true,
        "subject_transform": {"src": "bt.*", "dest": "bm.{{wildcard(1)}}"},
        "republish": {"src": "bm.>", "dest": "rp.>"}});
    assert!(h.api("STREAM.CREATE.BT", cfg).get("error").is_none());
    let staged =
        h.send("bt.a", "_INBOX.ack", Some(b"NATS/1.0\r\nNats-Batch-Id: X\r\nNats-Batch-Sequence: 1\r\n\r\n"), b"1");
    assert!(staged.iter().all(|o| !o.route.starts_with(b"rp.")), "nothing before the commit");
    // the expectation is checked against the stored (transformed) subject
    let commit = b"NATS/1.0\r\nNats-Batch-Id: X\r\nNats-Batch-Sequence: 2\r\nNats-Batch-Commit: 1\r\n\
Nats-Expected-Last-Subject-Sequence: 0\r\n\r\n";
    let out = h.publish("bt.b", Some(commit), "2");
    assert_eq!(
        out.iter().map(|o| String::from_utf8_lossy(&o.route).into_owned()).collect::<Vec<_>>(),
        ["rp.a", "rp.b"]
    );
    assert_eq!(header_lines(&out[0])[3..6], ["Nats-Stream: BT", "Nats-Subject: bm.a", "Nats-Sequence: 1"]);
    assert_eq!((h.stored_subject("BT", 1), h.stored_subject("BT", 2)), ("bm.a".into(), "bm.b".into()));
    // nats-server's answers for an end-of-batch commit: the last message stamped, and
    // Nats-Last-Sequence the previous message on the stored subject
    h.send("bt.a", "_INBOX.ack", Some(b"NATS/1.0\r\nNats-Batch-Id: Y\r\nNats-Batch-Sequence: 1\r\n\r\n"), b"3");
    let eob = b"NATS/1.0\r\nNats-Batch-Id: Y\r\nNats-Batch-Sequence: 2\r\nNats-Batch-Commit: eob\r\n\r\n";
    let out = h.publish("bt.x", Some(eob), "");
    let lines = header_lines(&out[0]);
    assert_eq!((&out[0].route[..], &lines[3][..]), (&b"rp.a"[..], "Nats-Batch-Commit: 1"));
    assert_eq!(lines.last().unwrap(), "Nats-Last-Sequence: 1");
}
