//! A partitioned consumer group run through the engine: per-key order holds across four
//! members while a fifth joins and one leaves mid-stream. Each member does what a host's
//! member loop does (the page's `consume`): compute its partitions from the config with the
//! core's rules, re-create its pinned consumer when they change, pull with the group and its
//! pin id, ack each message before the next pull. Time is stepped by hand.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use edgebus_core::jetstream::store::MemStorage;
use edgebus_core::jetstream::{JetStream, Outbound};
use edgebus_core::pcgroups::{
    self, member_consumer_config, member_filters, ElasticConfig, GroupConfig, Kind, PartitioningFilter,
};
use edgebus_core::proto::header_value;
use serde_json::{json, Value};

const T0: u64 = 1_800_000_000_000_000_000;

struct Bus {
    js: JetStream,
    now: u64,
}

impl Bus {
    fn send(&mut self, subject: &str, reply: Option<&str>, payload: &[u8]) -> Vec<Outbound> {
        self.now += 1_000_000;
        self.js.handle_msg(self.now, subject.as_bytes(), reply.map(str::as_bytes), None, payload, &|_: &[u8]| true);
        self.js.take_outbound()
    }

    fn api(&mut self, subject: &str, body: Value) -> Value {
        let out = self.send(&format!("$JS.API.{subject}"), Some("_INBOX.api"), &serde_json::to_vec(&body).unwrap());
        serde_json::from_slice(&out.iter().find(|o| &o.route[..] == b"_INBOX.api").unwrap().payload).unwrap()
    }
}

/// One member instance's state between steps.
#[derive(Default)]
struct Member {
    filters: Vec<String>,
    created: bool,
    pin: Option<String>,
    /// The message being processed (key, value, ack subject): processing takes a step, so
    /// members overlap in time as real ones do.
    inflight: Option<(String, u64, String)>,
}

/// What the members hold between steps, for the one-at-a-time-per-key check.
fn busy_with(members: &BTreeMap<&str, Member>, key: &str) -> Option<String> {
    members.iter().find(|(_, m)| m.inflight.as_ref().is_some_and(|f| f.0 == key)).map(|(n, _)| n.to_string())
}

const STREAM: &str = "orders-cg";

/// One step of a member: finish (ack) the message in hand; or else follow the config (a
/// member never lets go of partitions with a message in hand), then take one message.
fn step(bus: &mut Bus, cfg: &GroupConfig, name: &str, m: &mut Member, got: &mut BTreeMap<String, Vec<u64>>) {
    if let Some((key, value, reply)) = m.inflight.take() {
        got.entry(key).or_default().push(value);
        bus.send(&reply, None, b"+ACK");
        return;
    }
    let filters = member_filters(cfg, name);
    if filters != m.filters || (!m.created && !filters.is_empty()) {
        if m.created {
            let r = bus.api(&format!("CONSUMER.DELETE.{STREAM}.{name}"), json!({}));
            assert!(r.get("error").is_none(), "{r}");
            m.created = false;
            m.pin = None;
        }
        m.filters = filters.clone();
        if filters.is_empty() {
            return;
        }
        let config =
            member_consumer_config(Kind::Elastic, "cg", name, &filters, &json!({"ack_wait": 2_000_000_000u64}))
                .unwrap();
        let r = bus.api(&format!("CONSUMER.CREATE.{STREAM}.{name}"), json!({"stream_name": STREAM, "config": config}));
        if r.get("error").is_some() {
            // another member still holds one of these partitions (work queues refuse overlap):
            // try again on the next step, once it has let go
            assert_eq!(r["error"]["err_code"], 10100, "{r}");
            m.filters.clear();
            return;
        }
        m.created = true;
    }
    if !m.created {
        return;
    }
    let mut req = json!({"batch": 1, "no_wait": true, "group": pcgroups::PRIORITY_GROUP, "expires": 1_000_000_000u64});
    if let Some(pin) = &m.pin {
        req["id"] = json!(pin);
    }
    let inbox = format!("_INBOX.{name}");
    let out = bus.send(
        &format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{name}"),
        Some(&inbox),
        &serde_json::to_vec(&req).unwrap(),
    );
    for o in out.iter().filter(|o| o.route[..] == *inbox.as_bytes()) {
        let Some(reply) = &o.reply else { continue }; // a status (no messages now)
        let h = o.headers.as_deref().unwrap();
        let pin = String::from_utf8(header_value(h, b"Nats-Pin-Id").expect("pinned").to_vec()).unwrap();
        m.pin = Some(pin);
        let subject = std::str::from_utf8(&o.subject).unwrap();
        let key = pcgroups::strip_partition(subject).to_string();
        let value: u64 = std::str::from_utf8(&o.payload).unwrap().parse().unwrap();
        m.inflight = Some((key, value, String::from_utf8(reply.to_vec()).unwrap()));
    }
}

#[test]
fn per_key_order_holds_while_members_join_and_leave() {
    let (js, _) = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 7);
    let mut bus = Bus { js, now: T0 };
    let pf = PartitioningFilter { filter: "orders.*".into(), partitioning_wildcards: vec![1] };
    let mut config = ElasticConfig {
        max_members: 8,
        partitioning_filters: vec![pf.clone()],
        members: ["m1", "m2", "m3", "m4"].map(String::from).to_vec(),
        ..Default::default()
    };
    // The group's work queue, partitioned as the sourcing transform would partition it.
    let r = bus.api(
        &format!("STREAM.CREATE.{STREAM}"),
        json!({"name": STREAM, "subjects": ["orders.*"], "retention": "workqueue", "storage": "memory",
               "subject_transform": {"src": "orders.*", "dest": pcgroups::partitioning_dest(&pf, 8)}}),
    );
    assert!(r.get("error").is_none(), "{r}");
    const KEYS: u64 = 12;
    const PER_KEY: u64 = 40;
    for i in 0..PER_KEY {
        for k in 0..KEYS {
            bus.send(&format!("orders.k{k}"), None, format!("{i}").as_bytes());
        }
    }
    let names = ["m1", "m2", "m3", "m4", "m5"];
    let mut members: BTreeMap<&str, Member> = names.iter().map(|n| (*n, Member::default())).collect();
    let mut got: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut by_member_after_change = BTreeMap::<&str, usize>::new();
    let total = KEYS * PER_KEY;
    for round in 0..10_000 {
        let delivered: u64 = got.values().map(|v| v.len() as u64).sum();
        if delivered >= total {
            break;
        }
        if round == 20 {
            config = config.with_members(&["m5".to_string()]).unwrap();
        }
        if round == 60 {
            config = config.without_members(&["m2".to_string()]).unwrap();
        }
        let cfg = GroupConfig::Elastic(config.clone());
        for name in names {
            let before: u64 = got.values().map(|v| v.len() as u64).sum();
            let mut me = members.remove(name).unwrap();
            let idle = me.inflight.is_none();
            step(&mut bus, &cfg, name, &mut me, &mut got);
            if let (true, Some((key, v, _))) = (idle, &me.inflight) {
                assert_eq!(
                    busy_with(&members, key),
                    None,
                    "{name} got {key}:{v} while another member has {key} in hand"
                );
            }
            members.insert(name, me);
            let after: u64 = got.values().map(|v| v.len() as u64).sum();
            if round > 60 && after > before {
                *by_member_after_change.entry(name).or_default() += 1;
            }
        }
    }
    for (key, values) in &got {
        assert_eq!(values, &(0..PER_KEY).collect::<Vec<_>>(), "key {key}: every message once, in order");
    }
    assert_eq!(got.len() as u64, KEYS);
    assert!(by_member_after_change.contains_key("m5"), "the new member took partitions");
    assert!(!by_member_after_change.contains_key("m2"), "the member that left took no more");
    let info = bus.api(&format!("STREAM.INFO.{STREAM}"), json!({}));
    assert_eq!(info["state"]["messages"], 0, "the work queue is drained");
}
