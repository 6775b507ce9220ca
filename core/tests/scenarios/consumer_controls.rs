//! Consumer pause and priority groups as clients meet them through the broker, with the
//! clock moved by hand: a pause holds deliveries until its deadline (heartbeats go on), the
//! PAUSE API pauses and resumes, a pinned client alone is served until its pin lapses or is
//! dropped, overflow serves only past its thresholds, prioritized serves the lowest level
//! first, and the request and config checks answer as nats-server does.

use edgebus_core::broker::ConnId;
use edgebus_core::jetstream::time::rfc3339;
use serde_json::{json, Value};

use crate::jetstream::{api, client, js_publish, stream_and_consumer, CLIENT};
use crate::sim::{header, publish, status, subject, text, Sim, MS, SEC};

/// A client whose inbox subscription is `_INBOX.<name>.>`.
fn client_on(sim: &mut Sim, name: &str) -> ConnId {
    let c = sim.client(CLIENT);
    sim.send(c, &format!("SUB _INBOX.{name}.> 1\r\n"));
    c
}

fn pull_to(sim: &mut Sim, c: ConnId, inbox: &str, body: Value) {
    sim.send(c, &publish("$JS.API.CONSUMER.MSG.NEXT.S.d", Some(inbox), &[], &body.to_string()));
}

/// (payload, status, description) of each message a client received.
fn got(sim: &mut Sim, c: ConnId) -> Vec<(String, u16, String)> {
    sim.msgs(c)
        .iter()
        .map(|m| {
            let h = m.headers().and_then(|h| edgebus_core::proto::Headers::parse(h).ok());
            (text(m.payload()).to_string(), status(m), h.and_then(|h| h.description).unwrap_or_default())
        })
        .collect()
}

fn publish_all(sim: &mut Sim, c: ConnId, n: usize) {
    for i in 0..n {
        js_publish(sim, c, "s.a", &format!("m{i}"));
    }
}

#[test]
fn a_consumer_created_paused_delivers_at_its_deadline_and_says_so() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    let watcher = client_on(&mut sim, "w");
    sim.send(watcher, "SUB $JS.EVENT.ADVISORY.CONSUMER.PAUSE.> 2\r\n");
    let until = sim.now + 3 * SEC;
    let config = json!({"durable_name": "d", "ack_policy": "explicit", "pause_until": rfc3339(until)});
    stream_and_consumer(&mut sim, c, config);
    js_publish(&mut sim, c, "s.a", "work");
    let info = api(&mut sim, c, "CONSUMER.INFO.S.d", Value::Null);
    assert_eq!((info["paused"].clone(), info["pause_remaining"].clone()), (json!(true), json!(3 * SEC)), "{info}");
    assert_eq!(info["config"]["pause_until"], rfc3339(until));
    assert_eq!(info["config"]["metadata"]["_nats.req.level"], "1");

    pull_to(&mut sim, c, "_INBOX.c.p", json!({"batch": 1, "expires": 10 * SEC, "idle_heartbeat": SEC}));
    sim.advance(SEC);
    sim.advance(SEC);
    sim.advance(SEC - MS);
    let early = got(&mut sim, c);
    assert!(early.iter().all(|(_, code, _)| *code == 100), "only heartbeats while paused: {early:?}");
    assert_eq!(early.len(), 2, "heartbeats go on while paused: {early:?}");
    sim.advance(MS);
    let data: Vec<_> = got(&mut sim, c).into_iter().filter(|g| g.1 != 100).collect();
    assert_eq!(data, [("work".to_string(), 0, String::new())]);
    let info = api(&mut sim, c, "CONSUMER.INFO.S.d", Value::Null);
    assert_eq!((info.get("paused"), info.get("pause_remaining")), (None, None), "{info}");
    let adv = sim.msgs(watcher);
    assert_eq!(adv.len(), 1, "the resume advisory: {adv:?}");
    let a: Value = serde_json::from_slice(adv[0].payload()).unwrap();
    assert_eq!(subject(&adv[0]), "$JS.EVENT.ADVISORY.CONSUMER.PAUSE.S.d");
    assert_eq!(
        (a["type"].as_str(), a["paused"].as_bool()),
        (Some("io.nats.jetstream.advisory.v1.consumer_pause"), Some(false))
    );
}

#[test]
fn the_pause_api_pauses_and_resumes() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    stream_and_consumer(&mut sim, c, json!({"durable_name": "d", "ack_policy": "explicit"}));
    js_publish(&mut sim, c, "s.a", "work");
    let until = sim.now + 60 * SEC;
    let r = api(&mut sim, c, "CONSUMER.PAUSE.S.d", json!({"pause_until": rfc3339(until)}));
    assert_eq!(
        r,
        json!({"type": "io.nats.jetstream.api.v1.consumer_pause_response", "paused": true,
               "pause_until": rfc3339(until), "pause_remaining": 60 * SEC})
    );
    pull_to(&mut sim, c, "_INBOX.c.p", json!({"batch": 1, "expires": SEC}));
    sim.advance(SEC);
    assert_eq!(got(&mut sim, c), [(String::new(), 408, "Request Timeout".to_string())]);
    assert_eq!(api(&mut sim, c, "CONSUMER.INFO.S.d", Value::Null)["paused"], true);

    let r = api(&mut sim, c, "CONSUMER.PAUSE.S.d", Value::Null);
    assert_eq!(
        r,
        json!({"type": "io.nats.jetstream.api.v1.consumer_pause_response", "paused": false,
               "pause_until": "0001-01-01T00:00:00Z"})
    );
    pull_to(&mut sim, c, "_INBOX.c.p", json!({"batch": 1, "expires": SEC}));
    assert_eq!(got(&mut sim, c), [("work".to_string(), 0, String::new())]);
    let r = api(&mut sim, c, "CONSUMER.PAUSE.S.nope", json!({}));
    assert_eq!(r["error"]["err_code"], 10014, "{r}");
}

fn pinned(sim: &mut Sim, c: ConnId, timeout: u64, messages: usize) {
    let config = json!({"durable_name": "d", "ack_policy": "explicit", "priority_groups": ["G"],
                        "priority_policy": "pinned_client", "priority_timeout": timeout});
    stream_and_consumer(sim, c, config);
    publish_all(sim, c, messages);
}

#[test]
fn only_the_pinned_client_is_served_until_its_pin_lapses() {
    let mut sim = Sim::new();
    let a = client(&mut sim);
    let b = client_on(&mut sim, "b");
    pinned(&mut sim, a, 5 * SEC, 6);
    pull_to(&mut sim, a, "_INBOX.c.1", json!({"batch": 1, "group": "G"}));
    let m = sim.msgs(a);
    let pin = header(&m[0], "Nats-Pin-Id").expect("a pin id");
    assert_eq!((text(m[0].payload()), pin.len()), ("m0", 22));

    // another client without an id waits; one with a wrong id is refused
    pull_to(&mut sim, b, "_INBOX.b.1", json!({"batch": 1, "group": "G", "expires": 60 * SEC}));
    pull_to(&mut sim, b, "_INBOX.b.2", json!({"batch": 1, "group": "G", "id": "bogus"}));
    assert_eq!(got(&mut sim, b), [(String::new(), 423, "Nats-Pin-Id mismatch".to_string())]);

    // the pinned client keeps the pin alive by pulling with it
    sim.advance(4 * SEC);
    pull_to(&mut sim, a, "_INBOX.c.2", json!({"batch": 1, "group": "G", "id": pin}));
    let m = sim.msgs(a);
    assert_eq!((text(m[0].payload()), header(&m[0], "Nats-Pin-Id")), ("m1", Some(pin.clone())));
    let info = api(&mut sim, a, "CONSUMER.INFO.S.d", Value::Null);
    assert_eq!(info["priority_groups"][0]["pinned_client_id"], pin.as_str(), "{info}");
    sim.advance(5 * SEC - MS);
    assert!(sim.msgs(b).is_empty(), "the standby waits while the pin lives");

    // no pull from the pinned client for priority_timeout: the waiting standby is pinned
    sim.advance(MS);
    let m = sim.msgs(b);
    assert_eq!(text(m[0].payload()), "m2");
    let new_pin = header(&m[0], "Nats-Pin-Id").unwrap();
    assert_ne!(new_pin, pin);
    pull_to(&mut sim, a, "_INBOX.c.3", json!({"batch": 1, "group": "G", "id": pin}));
    assert_eq!(got(&mut sim, a), [(String::new(), 423, "Nats-Pin-Id mismatch".to_string())]);
}

#[test]
fn unpin_moves_the_pin_and_ends_requests_with_the_old_id() {
    let mut sim = Sim::new();
    let a = client(&mut sim);
    let b = client_on(&mut sim, "b");
    let watcher = client_on(&mut sim, "w");
    sim.send(watcher, "SUB $JS.EVENT.ADVISORY.CONSUMER.PINNED.> 2\r\nSUB $JS.EVENT.ADVISORY.CONSUMER.UNPINNED.> 3\r\n");
    pinned(&mut sim, a, 0, 2);
    let info = api(&mut sim, a, "CONSUMER.INFO.S.d", Value::Null);
    assert_eq!(info["config"]["priority_timeout"], 120 * SEC, "nats-server's default pin lifetime");
    assert_eq!(info["priority_groups"], json!([{"group": "G", "pinned_ts": "0001-01-01T00:00:00Z"}]));
    pull_to(&mut sim, a, "_INBOX.c.1", json!({"batch": 1, "group": "G"}));
    let pin = header(&sim.msgs(a)[0], "Nats-Pin-Id").unwrap();
    pull_to(&mut sim, a, "_INBOX.c.2", json!({"batch": 1, "group": "G", "id": pin, "expires": 60 * SEC}));
    assert_eq!(got(&mut sim, a).len(), 1, "m1 to the pinned client");
    // a request from the pinned client waits for more, holding its (soon old) id
    pull_to(&mut sim, a, "_INBOX.c.3", json!({"batch": 1, "group": "G", "id": pin, "expires": 60 * SEC}));

    let r = api(&mut sim, a, "CONSUMER.UNPIN.S.d", json!({"group": "X"}));
    assert_eq!(r["error"]["err_code"], 10160, "{r}");
    let r = api(&mut sim, a, "CONSUMER.UNPIN.S.d", json!({"group": "G"}));
    assert_eq!(r, json!({"type": "io.nats.jetstream.api.v1.consumer_unpin_response"}));
    // the next delivery finds no pin: the request with the old id ends, the next is pinned
    pull_to(&mut sim, b, "_INBOX.b.1", json!({"batch": 1, "group": "G", "expires": 60 * SEC}));
    assert!(sim.msgs(b).is_empty());
    sim.send(watcher, &publish("s.a", None, &[], "m2"));
    let ended = got(&mut sim, a);
    assert_eq!(ended, [(String::new(), 423, "Nats-Wrong-Pin-Id".to_string())]);
    let m = sim.msgs(b);
    assert_eq!(text(m[0].payload()), "m2");
    assert_ne!(header(&m[0], "Nats-Pin-Id").unwrap(), pin);
    let kinds: Vec<String> = sim.msgs(watcher).iter().map(|m| subject(m).to_string()).collect();
    assert_eq!(
        kinds,
        [
            "$JS.EVENT.ADVISORY.CONSUMER.PINNED.S.d",
            "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.S.d",
            "$JS.EVENT.ADVISORY.CONSUMER.PINNED.S.d"
        ]
    );
}

#[test]
fn overflow_serves_past_its_thresholds_and_prioritized_serves_low_levels_first() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    let config =
        json!({"durable_name": "d", "ack_policy": "explicit", "priority_groups": ["G"], "priority_policy": "overflow"});
    stream_and_consumer(&mut sim, c, config);
    publish_all(&mut sim, c, 3);
    pull_to(&mut sim, c, "_INBOX.c.1", json!({"batch": 1, "group": "G", "min_pending": 5, "expires": SEC}));
    sim.advance(SEC);
    assert_eq!(got(&mut sim, c), [(String::new(), 408, "Request Timeout".to_string())]);
    pull_to(&mut sim, c, "_INBOX.c.2", json!({"batch": 1, "group": "G", "min_ack_pending": 1, "expires": 60 * SEC}));
    pull_to(&mut sim, c, "_INBOX.c.3", json!({"batch": 1, "group": "G"}));
    // the plain request takes m0; with one ack pending the waiting one is served
    assert_eq!(got(&mut sim, c).iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), ["m0", "m1"]);

    let mut sim = Sim::new();
    let c = client(&mut sim);
    let config = json!({"durable_name": "d", "ack_policy": "explicit", "priority_groups": ["G"], "priority_policy": "prioritized"});
    stream_and_consumer(&mut sim, c, config);
    let high = client_on(&mut sim, "h");
    pull_to(&mut sim, c, "_INBOX.c.low", json!({"batch": 1, "group": "G", "priority": 5, "expires": 60 * SEC}));
    pull_to(&mut sim, high, "_INBOX.h.1", json!({"batch": 1, "group": "G", "priority": 1, "expires": 60 * SEC}));
    sim.send(high, &publish("s.a", None, &[], "first"));
    assert!(sim.msgs(c).is_empty(), "the lower level waits");
    assert_eq!(got(&mut sim, high), [("first".to_string(), 0, String::new())]);
    sim.send(high, &publish("s.a", None, &[], "second"));
    assert_eq!(got(&mut sim, c), [("second".to_string(), 0, String::new())]);
}

#[test]
fn pull_requests_and_configs_are_checked_as_nats_server_checks_them() {
    let mut sim = Sim::new();
    let c = client(&mut sim);
    pinned(&mut sim, c, 0, 6);
    let bad = |sim: &mut Sim, body: Value| {
        pull_to(sim, c, "_INBOX.c.bad", body);
        got(sim, c).into_iter().map(|(_, code, text)| (code, text)).collect::<Vec<_>>()
    };
    let r400 = |t: &str| vec![(400u16, format!("Bad Request - {t}"))];
    assert_eq!(bad(&mut sim, json!({"batch": 1})), r400("Priority Group missing"));
    assert_eq!(bad(&mut sim, json!({"batch": 1, "group": "H"})), r400("Invalid Priority Group"));
    assert_eq!(bad(&mut sim, json!({"group": "G", "min_pending": 1})), r400("Not a Overflow Priority consumer"));
    assert_eq!(bad(&mut sim, json!({"group": "G", "priority": 10})), r400("Priority must be between 0 and 9"));

    let create = |sim: &mut Sim, name: &str, extra: Value| {
        let mut config = json!({"durable_name": name, "ack_policy": "explicit"});
        config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let r = api(sim, c, &format!("CONSUMER.CREATE.S.{name}"), json!({"stream_name": "S", "config": config}));
        r["error"]["err_code"].as_u64().unwrap_or(0)
    };
    assert_eq!(create(&mut sim, "e1", json!({"priority_policy": "overflow"})), 10159);
    assert_eq!(create(&mut sim, "e2", json!({"priority_groups": ["G"]})), 10196);
    assert_eq!(create(&mut sim, "e3", json!({"priority_timeout": SEC})), 10197);
    assert_eq!(create(&mut sim, "e4", json!({"priority_policy": "overflow", "priority_groups": ["a.b"]})), 10162);
    assert_eq!(create(&mut sim, "e5", json!({"priority_policy": "overflow", "priority_groups": [""]})), 10161);
    let push = json!({"priority_policy": "overflow", "priority_groups": ["G"], "deliver_subject": "x"});
    assert_eq!(create(&mut sim, "e6", push), 10178);
    assert_eq!(create(&mut sim, "ok", json!({"priority_policy": "prioritized", "priority_groups": ["a-b_c/d=e"]})), 0);
}
