//! KV buckets (the core's `kv`) on the engine, seen by the in-process API and by a protocol
//! client's direct gets, with history and TTLs over simulated time.

use edgebus_core::kv::{Bucket, BucketConfig, Operation};

use crate::sim::{publish, status, text, Sim, MS, SEC};

fn bucket(sim: &mut Sim, config: BucketConfig) -> Bucket {
    sim.with_engine(|js, now, _| Bucket::create_bucket(js, now, &config)).unwrap()
}

fn put(sim: &mut Sim, b: &Bucket, key: &str, value: &str) -> u64 {
    sim.with_engine(|js, now, interest| b.put(js, now, key, value.as_bytes(), &interest)).unwrap()
}

fn get(sim: &mut Sim, b: &Bucket, key: &str) -> Option<String> {
    sim.with_engine(|js, _, _| b.get(js, key)).unwrap().map(|e| text(&e.value).to_string())
}

#[test]
fn history_keeps_the_last_revisions_and_clients_see_the_same_values() {
    let mut sim = Sim::new();
    let b = bucket(&mut sim, BucketConfig { history: 3, ..BucketConfig::new("cfg") });
    for i in 1..=5 {
        assert_eq!(put(&mut sim, &b, "colour", &format!("v{i}")), i);
    }
    let history = sim.with_engine(|js, _, _| b.history(js, "colour")).unwrap();
    let revs: Vec<(u64, &str)> = history.iter().map(|e| (e.revision, text(&e.value))).collect();
    assert_eq!(revs, [(3, "v3"), (4, "v4"), (5, "v5")], "history 3 keeps the newest three");

    // A protocol client reads the same value with a direct get, as nats.js's kv.get does.
    let c = sim.client(r#"{"verbose":false,"headers":true,"no_responders":true}"#);
    sim.send(c, "SUB _INBOX.kv.* 1\r\n");
    sim.send(c, &publish("$JS.API.DIRECT.GET.KV_cfg.$KV.cfg.colour", Some("_INBOX.kv.1"), &[], ""));
    let got = sim.msgs(c);
    assert_eq!(got.len(), 1);
    assert_eq!(text(got[0].payload()), "v5");
    assert_eq!(crate::sim::header(&got[0], "Nats-Sequence").as_deref(), Some("5"));

    // Update at a stale revision fails; delete leaves a marker in history; create after it.
    let stale = sim.with_engine(|js, now, interest| b.update(js, now, "colour", b"x", 4, &interest));
    assert!(stale.is_err(), "{stale:?}");
    sim.with_engine(|js, now, interest| b.delete(js, now, "colour", &interest)).unwrap();
    assert_eq!(get(&mut sim, &b, "colour"), None);
    let history = sim.with_engine(|js, _, _| b.history(js, "colour")).unwrap();
    assert_eq!(history.last().map(|e| e.operation), Some(Operation::Delete));
    let rev = sim.with_engine(|js, now, interest| b.create(js, now, "colour", b"again", None, &interest)).unwrap();
    assert_eq!(rev, 7);
    assert_eq!(get(&mut sim, &b, "colour").as_deref(), Some("again"));

    // The client's direct get of a deleted key: the delete marker.
    sim.with_engine(|js, now, interest| b.delete(js, now, "colour", &interest)).unwrap();
    sim.send(c, &publish("$JS.API.DIRECT.GET.KV_cfg.$KV.cfg.colour", Some("_INBOX.kv.2"), &[], ""));
    let got = sim.msgs(c);
    assert_eq!(crate::sim::header(&got[0], "KV-Operation").as_deref(), Some("DEL"));
    sim.send(c, &publish("$JS.API.DIRECT.GET.KV_cfg.$KV.cfg.nothing", Some("_INBOX.kv.3"), &[], ""));
    assert_eq!(status(&sim.msgs(c)[0]), 404);
}

#[test]
fn bucket_ttl_expires_values_as_simulated_time_passes() {
    let mut sim = Sim::new();
    let b = bucket(&mut sim, BucketConfig { ttl: 10 * SEC, ..BucketConfig::new("cache") });
    put(&mut sim, &b, "a", "1");
    sim.advance(5 * SEC);
    put(&mut sim, &b, "b", "2");
    sim.advance(5 * SEC - MS);
    assert_eq!(get(&mut sim, &b, "a").as_deref(), Some("1"), "not yet ten seconds old");
    sim.advance(2 * MS);
    assert_eq!(get(&mut sim, &b, "a"), None, "expired at ten seconds");
    assert_eq!(get(&mut sim, &b, "b").as_deref(), Some("2"));
    sim.advance(5 * SEC);
    assert_eq!(get(&mut sim, &b, "b"), None);
    assert!(sim.with_engine(|js, _, _| b.keys(js, None)).unwrap().is_empty());
}

#[test]
fn per_key_ttl_and_the_limit_marker_it_leaves() {
    let mut sim = Sim::new();
    // History 1: with more history a key's TTL is raised to the marker's (ADR-48).
    let config = BucketConfig { limit_marker_ttl: 5 * SEC, ..BucketConfig::new("sessions") };
    let b = bucket(&mut sim, config);
    sim.with_engine(|js, now, interest| b.create(js, now, "s1", b"token", Some(2), &interest)).unwrap();
    put(&mut sim, &b, "keep", "forever");
    sim.advance(2 * SEC - MS);
    assert_eq!(get(&mut sim, &b, "s1").as_deref(), Some("token"));
    sim.advance(2 * MS);
    assert_eq!(get(&mut sim, &b, "s1"), None, "the key's own TTL ran out");
    // The subject keeps a marker (ADR-48) so watchers learn the key is gone, and the
    // marker itself goes after its own TTL.
    let history = sim.with_engine(|js, _, _| b.history(js, "s1")).unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_ne!(history[0].operation, Operation::Put);
    sim.advance(5 * SEC + MS);
    assert!(sim.with_engine(|js, _, _| b.history(js, "s1")).unwrap().is_empty());
    assert_eq!(get(&mut sim, &b, "keep").as_deref(), Some("forever"));
    // An expired key can be created again.
    sim.with_engine(|js, now, interest| b.create(js, now, "s1", b"new", None, &interest)).unwrap();
    assert_eq!(get(&mut sim, &b, "s1").as_deref(), Some("new"));
}
