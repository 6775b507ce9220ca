//! Mirrors and sources through the engine as a host drives it, time stepped by hand.

#![allow(clippy::unwrap_used)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

use super::super::store::{MemStorage, MemStore, MsgMeta, Recovered, Storage, StoreError, StoredMsg, StreamStore};
use super::super::JetStream;
use super::link::BATCH;

const T0: u64 = 1_800_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn no_one(_: &[u8]) -> bool {
    false
}

/// A store that outlives the engine, to restart it (a "crash" is dropping the engine without
/// its `flush`). Other engine tests restart on it too.
#[derive(Clone, Default)]
pub(in crate::jetstream) struct Disk(Arc<Mutex<Vec<(String, Shared)>>>);

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<(MemStore, Vec<u8>)>>);

impl StreamStore for Shared {
    fn append(&mut self, msg: &StoredMsg) -> Result<(), StoreError> {
        self.0.lock().unwrap().0.append(msg)
    }
    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.0.lock().unwrap().0.load(seq)
    }
    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        self.0.lock().unwrap().0.remove(seq)
    }
    fn compact(&mut self, before: u64) -> Result<(), StoreError> {
        self.0.lock().unwrap().0.compact(before)
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn scan(&mut self, f: &mut dyn FnMut(MsgMeta)) -> Result<(), StoreError> {
        self.0.lock().unwrap().0.scan(f)
    }
    fn save_config(&mut self, config: &[u8]) -> Result<(), StoreError> {
        self.0.lock().unwrap().1 = config.to_vec();
        Ok(())
    }
    fn save_consumer(&mut self, name: &str, state: &[u8]) -> Result<(), StoreError> {
        self.0.lock().unwrap().0.save_consumer(name, state)
    }
    fn remove_consumer(&mut self, name: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().0.remove_consumer(name)
    }
    fn consumers(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.0.lock().unwrap().0.consumers()
    }
    fn destroy(&mut self) -> Result<(), StoreError> {
        self.0.lock().unwrap().0.destroy()
    }
}

impl Storage for Disk {
    fn create(&mut self, stream: &str, config: &[u8]) -> Result<Box<dyn StreamStore>, StoreError> {
        let s = Shared::default();
        s.0.lock().unwrap().1 = config.to_vec();
        self.0.lock().unwrap().push((stream.into(), s.clone()));
        Ok(Box::new(s))
    }
    fn recover(&mut self) -> Result<Recovered, StoreError> {
        let all = self.0.lock().unwrap();
        Ok(all
            .iter()
            .map(|(_, s)| (s.0.lock().unwrap().1.clone(), Box::new(s.clone()) as Box<dyn StreamStore>))
            .collect())
    }
}

pub(super) fn open(disk: &Disk, now: u64) -> JetStream {
    let (js, warnings) = JetStream::new(Box::new(disk.clone()), Box::new(MemStorage), now, 1);
    assert!(warnings.is_empty(), "{warnings:?}");
    js
}

fn api(js: &mut JetStream, now: u64, subject: &str, body: Value) -> Value {
    js.handle_msg(now, subject.as_bytes(), Some(b"_INBOX.r"), None, body.to_string().as_bytes(), &no_one);
    let out: Vec<_> = js.take_outbound().into_iter().filter(|o| &o.route[..] == b"_INBOX.r").collect();
    assert_eq!(out.len(), 1, "one reply to {subject}");
    serde_json::from_slice(&out[0].payload).unwrap()
}

fn create(js: &mut JetStream, now: u64, cfg: Value) -> Value {
    let name = cfg["name"].as_str().unwrap().to_string();
    api(js, now, &format!("$JS.API.STREAM.CREATE.{name}"), cfg)
}

fn publish(js: &mut JetStream, now: u64, subject: &str, headers: Option<&str>, body: &str) {
    js.publish(now, subject.as_bytes(), headers.map(str::as_bytes), body.as_bytes(), &no_one).unwrap();
}

/// Runs every tick due at `now`, as a host whose timer fires at once; returns how many ran.
fn settle(js: &mut JetStream, now: u64) -> usize {
    let mut n = 0;
    while js.next_deadline(now).is_some_and(|d| d <= now) {
        js.handle_timeout(now, &no_one);
        let _ = js.take_outbound();
        n += 1;
        assert!(n < 10_000, "the engine never settles");
    }
    n
}

/// (seq, subject, payload, Nats-Stream-Source) of every message in `stream`.
fn contents(js: &mut JetStream, stream: &str) -> Vec<(u64, String, String, Option<String>)> {
    js.messages(stream, b">", false)
        .unwrap()
        .into_iter()
        .map(|m| {
            let src = m.headers.as_deref().and_then(|h| crate::proto::header_value(h, b"Nats-Stream-Source"));
            (
                m.seq,
                String::from_utf8_lossy(&m.subject).into_owned(),
                String::from_utf8_lossy(&m.payload).into_owned(),
                src.map(|s| String::from_utf8_lossy(s).into_owned()),
            )
        })
        .collect()
}

fn info(js: &mut JetStream, now: u64, name: &str) -> Value {
    api(js, now, &format!("$JS.API.STREAM.INFO.{name}"), json!({}))
}

fn origin(js: &mut JetStream) {
    let v = create(js, T0, json!({"name": "O", "subjects": ["o.>"], "storage": "memory"}));
    assert!(v.get("error").is_none(), "{v}");
}

#[test]
fn a_mirror_keeps_the_origins_sequences_times_and_gaps() {
    let mut js = open(&Disk::default(), T0);
    origin(&mut js);
    for i in 0..5 {
        publish(&mut js, T0 + i * MS, &format!("o.{i}"), None, &format!("m{i}"));
    }
    assert_eq!(api(&mut js, T0, "$JS.API.STREAM.MSG.DELETE.O", json!({"seq": 2}))["success"], true);
    let v = create(&mut js, T0 + 10 * MS, json!({"name": "M", "mirror": {"name": "O"}, "storage": "memory"}));
    assert_eq!(v["config"]["mirror"], json!({"name": "O"}));
    assert!(v["config"].get("subjects").is_none() && v["config"].get("duplicate_window").is_none(), "{v}");
    assert_eq!(v["mirror"], json!({"name": "O", "lag": 0, "active": -1}), "not seen yet");
    settle(&mut js, T0 + 20 * MS);
    let got = contents(&mut js, "M");
    let seqs: Vec<u64> = got.iter().map(|m| m.0).collect();
    assert_eq!(seqs, [1, 3, 4, 5], "the origin's sequences, its gap kept");
    assert!(got.iter().all(|m| m.3.is_none()), "a mirror adds no source header");
    assert_eq!(js.msg("M", 4).unwrap().unwrap().time, T0 + 3 * MS, "the origin's time");
    let i = info(&mut js, T0 + 50 * MS, "M");
    assert_eq!(i["mirror"], json!({"name": "O", "lag": 0, "active": 30 * MS}));
    assert_eq!((i["state"]["last_seq"].as_u64(), i["state"]["num_deleted"].as_u64()), (Some(5), Some(1)));
    // deletes and purges on the origin stay there
    api(&mut js, T0 + 60 * MS, "$JS.API.STREAM.PURGE.O", json!({}));
    publish(&mut js, T0 + 70 * MS, "o.7", None, "after purge");
    settle(&mut js, T0 + 80 * MS);
    let seqs: Vec<u64> = contents(&mut js, "M").iter().map(|m| m.0).collect();
    assert_eq!(seqs, [1, 3, 4, 5, 6]);
}

#[test]
fn sources_get_new_sequences_and_the_source_header() {
    let mut js = open(&Disk::default(), T0);
    origin(&mut js);
    create(&mut js, T0, json!({"name": "P", "subjects": ["p.>"], "storage": "memory"}));
    for i in 0..5 {
        publish(
            &mut js,
            T0,
            &format!("o.{i}"),
            Some(&format!("NATS/1.0\r\nNats-Msg-Id: x{i}\r\n\r\n")),
            &format!("m{i}"),
        );
        publish(&mut js, T0, &format!("p.{i}"), None, &format!("p{i}"));
    }
    let v = create(
        &mut js,
        T0,
        json!({"name": "S", "storage": "memory", "sources": [
            {"name": "O", "filter_subject": "o.3"},
            {"name": "O", "subject_transforms": [{"src": "o.4", "dest": "x.4"}]},
            {"name": "P", "opt_start_seq": 4},
        ]}),
    );
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["sources"][0], json!({"name": "O", "lag": 0, "active": -1, "filter_subject": "o.3"}));
    settle(&mut js, T0 + MS);
    let got = contents(&mut js, "S");
    let want = [
        (1, "o.3", "m3", "O 4 o.3 > o.3"),
        (2, "x.4", "m4", "O 5 o.4 x.4 o.4"),
        (3, "p.3", "p3", "P 4 > > p.3"),
        (4, "p.4", "p4", "P 5 > > p.4"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0, g.1.as_str(), g.2.as_str(), g.3.as_deref()), (w.0, w.1, w.2, Some(w.3)));
    }
    let m = js.msg("S", 1).unwrap().unwrap();
    assert_eq!(m.time, T0 + MS, "sourced messages are stored when they arrive");
    assert!(crate::proto::header_value(m.headers.as_deref().unwrap(), b"Nats-Msg-Id").is_some());
    // the stream takes its own publishes besides: none here, it has no subjects
    assert_eq!(js.stream_for(b"S"), None);
}

#[test]
fn a_big_origin_is_copied_in_bounded_batches() {
    let mut js = open(&Disk::default(), T0);
    origin(&mut js);
    let n = BATCH as u64 * 3 + 10;
    for i in 0..n {
        publish(&mut js, T0, &format!("o.{}", i % 7), None, &format!("{i}"));
    }
    create(&mut js, T0, json!({"name": "M", "mirror": {"name": "O"}, "storage": "memory"}));
    assert_eq!(js.next_deadline(T0), Some(T0), "work is due at once");
    js.handle_timeout(T0, &no_one);
    assert_eq!(js.stream_state("M").unwrap().messages, BATCH as u64, "one batch a tick");
    assert_eq!(info(&mut js, T0, "M")["mirror"]["lag"], n - BATCH as u64);
    assert_eq!(settle(&mut js, T0), 3);
    assert_eq!(js.stream_state("M").unwrap().messages, n);
    assert!(js.next_deadline(T0).unwrap() > T0, "nothing more to do: no busy loop");
}

#[test]
fn sourcing_resumes_after_a_crash_without_loss_or_duplicates() {
    let disk = Disk::default();
    let mut js = open(&disk, T0);
    create(&mut js, T0, json!({"name": "O", "subjects": ["o.>"]}));
    create(&mut js, T0, json!({"name": "S", "subjects": ["s.>"], "sources": [{"name": "O"}]}));
    create(&mut js, T0, json!({"name": "M", "mirror": {"name": "O", "filter_subject": "o.a"}}));
    for i in 0..10 {
        publish(&mut js, T0, if i % 2 == 0 { "o.a" } else { "o.b" }, None, &format!("{i}"));
    }
    settle(&mut js, T0);
    drop(js); // a crash: nothing flushed since the streams were created
    let mut js = open(&disk, T0 + MS);
    for i in 10..14 {
        publish(&mut js, T0 + MS, "o.a", None, &format!("{i}"));
    }
    settle(&mut js, T0 + MS);
    let s: Vec<String> = contents(&mut js, "S").into_iter().map(|m| m.2).collect();
    let want: Vec<String> = (0..14).map(|i| i.to_string()).collect();
    assert_eq!(s, want);
    let m: Vec<u64> = contents(&mut js, "M").into_iter().map(|m| m.0).collect();
    assert_eq!(m, [1, 3, 5, 7, 9, 11, 12, 13, 14]);
    // a purged copy does not take its origin again after a clean restart
    api(&mut js, T0 + MS, "$JS.API.STREAM.PURGE.S", json!({}));
    js.flush();
    drop(js);
    let mut js = open(&disk, T0 + 2 * MS);
    settle(&mut js, T0 + 2 * MS);
    assert_eq!(js.stream_state("S").unwrap().messages, 0);
    publish(&mut js, T0 + 2 * MS, "o.z", None, "new");
    settle(&mut js, T0 + 2 * MS);
    assert_eq!(contents(&mut js, "S").into_iter().map(|m| m.2).collect::<Vec<_>>(), ["new"]);
}

#[test]
fn removing_the_mirror_promotes_it_to_a_normal_stream() {
    let mut js = open(&Disk::default(), T0);
    origin(&mut js);
    create(&mut js, T0, json!({"name": "M", "mirror": {"name": "O"}, "storage": "memory"}));
    publish(&mut js, T0, "o.1", None, "a");
    settle(&mut js, T0);
    let changed = json!({"name": "M", "mirror": {"name": "O", "filter_subject": "o.1"}, "storage": "memory"});
    let v = api(&mut js, T0, "$JS.API.STREAM.UPDATE.M", changed);
    assert_eq!(v["error"]["err_code"], 10055, "{v}");
    let v = api(&mut js, T0, "$JS.API.STREAM.UPDATE.M", json!({"name": "M", "subjects": ["m.>"], "storage": "memory"}));
    assert!(v.get("error").is_none() && v.get("mirror").is_none(), "{v}");
    assert_eq!(v["config"]["duplicate_window"], 120_000_000_000u64);
    settle(&mut js, T0);
    publish(&mut js, T0, "o.2", None, "not copied");
    publish(&mut js, T0, "m.1", None, "own");
    settle(&mut js, T0);
    let got: Vec<String> = contents(&mut js, "M").into_iter().map(|m| m.2).collect();
    assert_eq!(got, ["a", "own"]);
}

#[test]
fn invalid_combinations_get_nats_servers_errors() {
    let mut js = open(&Disk::default(), T0);
    origin(&mut js);
    let cases = [
        (json!({"name": "E", "mirror": {"name": "O"}, "subjects": ["e"]}), 10034),
        (json!({"name": "E", "mirror": {"name": "O"}, "sources": [{"name": "O"}]}), 10031),
        (json!({"name": "E", "mirror": {"name": "E"}}), 10052),
        (json!({"name": "E", "sources": [{"name": "E"}]}), 10052),
        (json!({"name": "E", "sources": [{"name": "O"}, {"name": "O"}]}), 10140),
        (json!({"name": "E", "mirror": {"name": "a.b"}}), 10142),
        (json!({"name": "E", "sources": [{"name": "a b"}]}), 10141),
        (json!({"name": "E", "mirror": {"name": "O"}, "first_seq": 5}), 10143),
        (json!({"name": "E", "mirror": {"name": "O"}, "allow_msg_counter": true}), 10173),
        (
            json!({"name": "E", "mirror": {"name": "O", "filter_subject": "o.1", "subject_transforms": [{"src": "o.1", "dest": "x"}]}}),
            10150,
        ),
        (
            json!({"name": "E", "mirror": {"name": "O", "subject_transforms": [{"src": "o.*", "dest": "x"}, {"src": "o.1", "dest": "y"}]}}),
            10152,
        ),
        (
            json!({"name": "E", "sources": [{"name": "O", "subject_transforms": [{"src": "o.*", "dest": "x.{{wildcard(1)}}"}, {"src": "o.1", "dest": "y"}]}]}),
            10147,
        ),
        (
            json!({"name": "E", "sources": [{"name": "O", "subject_transforms": [{"src": "o.*", "dest": "x.{{wildcard(3)}}"}]}]}),
            10146,
        ),
        (json!({"name": "E", "mirror": {"name": "O"}, "subject_delete_marker_ttl": 2_000_000_000u64}), 10052),
    ];
    for (cfg, code) in cases {
        let v = create(&mut js, T0, cfg.clone());
        assert_eq!(v["error"]["err_code"], code, "{cfg} → {v}");
    }
    // a mirror's direct gets follow its origin's
    create(&mut js, T0, json!({"name": "D", "subjects": ["d"], "storage": "memory", "allow_direct": true}));
    for (name, origin, asked, got) in
        [("MD1", "D", false, true), ("MD2", "O", true, false), ("MD3", "NONE", true, true)]
    {
        let v = create(&mut js, T0, json!({"name": name, "mirror": {"name": origin}, "mirror_direct": asked}));
        assert_eq!(v["config"]["mirror_direct"], got, "{v}");
    }
    let again = create(&mut js, T0, json!({"name": "MD1", "mirror": {"name": "D"}}));
    assert!(again.get("error").is_none(), "{again}");
    // a mirror of a stream that does not exist yet waits for it
    let v = create(&mut js, T0, json!({"name": "W", "mirror": {"name": "LATER"}, "storage": "memory"}));
    assert!(v.get("error").is_none(), "{v}");
    settle(&mut js, T0);
    create(&mut js, T0, json!({"name": "LATER", "storage": "memory"}));
    publish(&mut js, T0, "LATER", None, "x");
    settle(&mut js, T0);
    assert_eq!(js.stream_state("W").unwrap().messages, 1);
}

#[test]
fn counters_add_up_through_sources() {
    let mut js = open(&Disk::default(), T0);
    for n in ["C1", "C2"] {
        let lower = n.to_lowercase();
        create(
            &mut js,
            T0,
            json!({"name": n, "subjects": [format!("{lower}.>")], "storage": "memory", "allow_msg_counter": true}),
        );
    }
    let v = create(
        &mut js,
        T0,
        json!({"name": "AGG", "subjects": ["agg.>"], "storage": "memory", "allow_msg_counter": true, "sources": [
            {"name": "C1", "subject_transforms": [{"src": "c1.>", "dest": "agg.>"}]},
            {"name": "C2", "subject_transforms": [{"src": "c2.>", "dest": "agg.>"}]},
        ]}),
    );
    assert!(v.get("error").is_none(), "{v}");
    create(&mut js, T0, json!({"name": "PLAIN", "storage": "memory", "sources": [{"name": "C1"}]}));
    let incr = |v: &str| format!("NATS/1.0\r\nNats-Incr: {v}\r\n\r\n");
    for (s, v) in [("c1.a", "5"), ("c2.a", "3"), ("c1.a", "-1"), ("c1.b", "10")] {
        publish(&mut js, T0, s, Some(&incr(v)), "");
    }
    settle(&mut js, T0);
    let ack = js.publish(T0, b"agg.a", Some(incr("100").as_bytes()), b"", &no_one).unwrap();
    assert_eq!(ack.val.as_deref(), Some("107"));
    let hdr = |js: &mut JetStream, stream: &str, seq: u64, name: &str| {
        let m = js.msg(stream, seq).unwrap().unwrap();
        let v = crate::proto::header_value(m.headers.as_deref().unwrap(), name.as_bytes()).map(|v| v.to_vec());
        (String::from_utf8_lossy(&m.payload).into_owned(), v.map(|v| String::from_utf8(v).unwrap()))
    };
    let want = [
        (1, "5", "5", r#"{"C1":{"c1.a":"5"}}"#),
        (2, "4", "-1", r#"{"C1":{"c1.a":"4"}}"#),
        (3, "10", "10", r#"{"C1":{"c1.b":"10"}}"#),
        (4, "7", "3", r#"{"C1":{"c1.a":"4"},"C2":{"c2.a":"3"}}"#),
        (5, "107", "100", r#"{"C1":{"c1.a":"4"},"C2":{"c2.a":"3"}}"#),
    ];
    for (seq, total, incr, sources) in want {
        let body = format!("{{\"val\":\"{total}\"}}");
        assert_eq!(hdr(&mut js, "AGG", seq, "Nats-Incr"), (body.clone(), Some(incr.into())), "seq {seq}");
        assert_eq!(hdr(&mut js, "AGG", seq, "Nats-Counter-Sources").1.as_deref(), Some(sources), "seq {seq}");
    }
    // a stream that counts nothing keeps the totals as they came
    assert_eq!(hdr(&mut js, "PLAIN", 1, "Nats-Incr"), (r#"{"val":"5"}"#.into(), Some("5".into())));
    // a client may not pass itself off as a source into a counter
    let forged = "NATS/1.0\r\nNats-Incr: 1\r\nNats-Stream-Source: X 1 > > agg.a\r\n\r\n";
    let e = js.publish(T0, b"agg.a", Some(forged.as_bytes()), b"", &no_one).unwrap_err();
    assert_eq!(e.err_code, 10172);
}

#[test]
fn a_refused_copy_is_retried_later_not_in_a_busy_loop() {
    let mut js = open(&Disk::default(), T0);
    origin(&mut js);
    for i in 0..5 {
        publish(&mut js, T0, &format!("o.{i}"), None, "x");
    }
    let cfg = json!({"name": "M", "mirror": {"name": "O"}, "storage": "memory", "max_msgs": 2, "discard": "new"});
    assert!(create(&mut js, T0, cfg).get("error").is_none());
    settle(&mut js, T0);
    assert_eq!(js.stream_state("M").unwrap().messages, 2);
    assert_eq!(js.next_deadline(T0), Some(T0 + super::link::RETRY), "the next try, not now");
    // room again: the copy goes on from where it stopped
    api(&mut js, T0, "$JS.API.STREAM.PURGE.M", json!({}));
    settle(&mut js, T0 + super::link::RETRY);
    let seqs: Vec<u64> = contents(&mut js, "M").iter().map(|m| m.0).collect();
    assert_eq!(seqs, [3, 4]);
}

#[test]
fn a_work_queue_origin_is_drained_by_its_source_and_kept_once_the_source_goes() {
    let mut js = open(&Disk::default(), T0);
    let v =
        create(&mut js, T0, json!({"name": "W", "subjects": ["w.>"], "storage": "memory", "retention": "workqueue"}));
    assert!(v.get("error").is_none(), "{v}");
    for i in 0..300 {
        publish(&mut js, T0, if i % 2 == 0 { "w.a" } else { "w.b" }, None, &format!("{i}"));
    }
    let v = create(
        &mut js,
        T0,
        json!({"name": "S", "storage": "memory", "sources": [{"name": "W", "filter_subject": "w.a"}]}),
    );
    assert!(v.get("error").is_none(), "{v}");
    settle(&mut js, T0 + MS);
    // what the source took is gone from the work queue, with what its filter passed over
    // between (1..=299); the last `w.b` stays
    assert_eq!(contents(&mut js, "S").len(), 150);
    let left = contents(&mut js, "W");
    assert_eq!(left.iter().map(|m| (m.0, m.1.as_str())).collect::<Vec<_>>(), [(300, "w.b")]);
    let names = api(&mut js, T0 + MS, "$JS.API.CONSUMER.NAMES.W", json!({}));
    let cname = names["consumers"][0].as_str().unwrap().to_string();
    assert!(cname.starts_with("JS_SRC_") && names["total"] == 1, "{names}");
    let c = api(&mut js, T0 + MS, &format!("$JS.API.CONSUMER.INFO.W.{cname}"), json!({}));
    assert_eq!(
        (c["config"]["ack_policy"].as_str(), c["config"]["filter_subject"].as_str()),
        (Some("flow_control"), Some("w.a"))
    );
    // the source deleted: its consumer goes, and the work queue keeps what comes
    assert_eq!(api(&mut js, T0 + MS, "$JS.API.STREAM.DELETE.S", json!({}))["success"], true);
    settle(&mut js, T0 + 2 * MS);
    publish(&mut js, T0 + 2 * MS, "w.a", None, "after");
    settle(&mut js, T0 + 3 * MS);
    assert_eq!(api(&mut js, T0 + 3 * MS, "$JS.API.CONSUMER.NAMES.W", json!({}))["total"], 0);
    assert_eq!(contents(&mut js, "W").len(), 2);
}

#[test]
fn a_mirror_with_mirror_direct_answers_direct_gets_for_its_origin() {
    let mut js = open(&Disk::default(), T0);
    let v = create(&mut js, T0, json!({"name": "O", "subjects": ["o.>"], "storage": "memory", "allow_direct": true}));
    assert!(v.get("error").is_none(), "{v}");
    let v = create(&mut js, T0, json!({"name": "M", "storage": "memory", "mirror": {"name": "O"}}));
    assert_eq!(
        (v["config"]["allow_direct"].as_bool(), v["config"]["mirror_direct"].as_bool()),
        (Some(false), Some(true))
    );
    publish(&mut js, T0, "o.x", None, "v1");
    settle(&mut js, T0 + MS);
    assert_eq!(api(&mut js, T0 + MS, "$JS.API.STREAM.DELETE.O", json!({}))["success"], true);
    let get = |js: &mut JetStream, subject: &str| {
        js.handle_msg(T0 + MS, subject.as_bytes(), Some(b"_INBOX.d"), None, br#"{"last_by_subj":"o.x"}"#, &no_one);
        let out: Vec<_> = js.take_outbound().into_iter().filter(|o| &o.route[..] == b"_INBOX.d").collect();
        assert_eq!(out.len(), 1);
        let h = out[0].headers.clone().unwrap_or_default();
        (String::from_utf8_lossy(&h).into_owned(), String::from_utf8_lossy(&out[0].payload).into_owned())
    };
    let (h, body) = get(&mut js, "$JS.API.DIRECT.GET.O");
    assert!(h.contains("Nats-Stream: M\r\n") && body == "v1", "{h} {body}");
    // the mirror itself has no allow_direct: no responder under its own name
    let (h, _) = get(&mut js, "$JS.API.DIRECT.GET.M");
    assert!(h.starts_with("NATS/1.0 503"), "{h}");
}

#[test]
fn a_consumer_reset_starts_over_at_the_ack_floor_or_a_sequence_not_below_its_start() {
    let mut js = open(&Disk::default(), T0);
    origin(&mut js);
    for i in 1..=5 {
        publish(&mut js, T0, "o.x", None, &format!("m{i}"));
    }
    let cfg = json!({"stream_name": "O", "config": {"durable_name": "f", "ack_policy": "explicit",
                     "deliver_policy": "by_start_sequence", "opt_start_seq": 3}});
    assert!(api(&mut js, T0, "$JS.API.CONSUMER.CREATE.O.f", cfg).get("error").is_none());
    let r = api(&mut js, T0, "$JS.API.CONSUMER.RESET.O.f", json!({}));
    assert_eq!((r["reset_seq"].as_u64(), r["num_pending"].as_u64()), (Some(3), Some(3)), "{r}");
    let r = api(&mut js, T0, "$JS.API.CONSUMER.RESET.O.f", json!({"seq": 4}));
    assert_eq!((r["reset_seq"].as_u64(), r["ack_floor"]["stream_seq"].as_u64()), (Some(4), Some(3)), "{r}");
    let r = api(&mut js, T0, "$JS.API.CONSUMER.RESET.O.f", json!({"seq": 2}));
    assert_eq!(r["error"]["description"], "invalid reset: below start seq");
    assert_eq!(r["error"]["err_code"], 10204);
}
