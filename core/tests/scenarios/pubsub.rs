//! Core NATS between protocol clients: fan-out, queue groups, request/reply and the
//! no-responders status, echo off.

use crate::sim::{publish, reply, status, subject, text, Sim};

const PLAIN: &str = r#"{"verbose":false,"headers":true,"no_responders":true}"#;

#[test]
fn queue_group_members_share_what_every_plain_subscriber_sees() {
    let mut sim = Sim::new();
    let watcher = sim.client(PLAIN);
    let workers = [sim.client(PLAIN), sim.client(PLAIN)];
    let publisher = sim.client(PLAIN);
    sim.send(watcher, "SUB orders.* 1\r\n");
    for w in workers {
        sim.send(w, "SUB orders.new workers 1\r\n");
    }
    let mut burst = String::new();
    for i in 0..40 {
        burst.push_str(&publish("orders.new", None, &[], &format!("n{i}")));
    }
    burst.push_str(&publish("orders.old", None, &[], "o"));
    sim.send(publisher, &burst);

    let seen: Vec<String> = sim.msgs(watcher).iter().map(|m| format!("{}={}", subject(m), text(m.payload()))).collect();
    assert_eq!(seen.len(), 41, "the wildcard subscriber sees every message");
    assert_eq!(seen.last().map(String::as_str), Some("orders.old=o"));
    let mut shared: Vec<String> = Vec::new();
    for w in workers {
        let got: Vec<String> = sim.msgs(w).iter().map(|m| text(m.payload()).to_string()).collect();
        assert!(!got.is_empty() && got.len() < 40, "both members take a share: {}", got.len());
        shared.extend(got);
    }
    shared.sort_by_key(|p| p[1..].parse::<u32>().unwrap());
    let expected: Vec<String> = (0..40).map(|i| format!("n{i}")).collect();
    assert_eq!(shared, expected, "each message reaches exactly one member");
    assert!(sim.msgs(publisher).is_empty(), "the publisher is not subscribed");
}

#[test]
fn request_reply_and_no_responders() {
    let mut sim = Sim::new();
    let service = sim.client(PLAIN);
    let requester = sim.client(PLAIN);
    sim.send(service, "SUB svc.echo 1\r\n");
    sim.send(requester, "SUB _INBOX.r.* 9\r\n");

    sim.send(requester, &publish("svc.echo", Some("_INBOX.r.1"), &[], "ping"));
    let req = sim.msgs(service);
    assert_eq!(req.len(), 1);
    assert_eq!(reply(&req[0]), "_INBOX.r.1");
    sim.send(service, &publish(&reply(&req[0]), None, &[], "pong"));
    let got = sim.msgs(requester);
    assert_eq!(got.len(), 1);
    assert_eq!((subject(&got[0]), text(got[0].payload()), status(&got[0])), ("_INBOX.r.1", "pong", 0));

    // Nobody listens: the requester (headers and no_responders on) gets a 503 on its reply
    // subject, with no payload.
    sim.send(requester, &publish("svc.none", Some("_INBOX.r.2"), &[], "anyone?"));
    let got = sim.msgs(requester);
    assert_eq!(got.len(), 1);
    assert_eq!((subject(&got[0]), status(&got[0])), ("_INBOX.r.2", 503));
    assert!(got[0].payload().is_empty());

    // A plain publish (no reply) to nobody is silent, and a client that did not ask for
    // no-responders gets no status either: the marker request shows nothing came before it.
    let old = sim.client(r#"{"verbose":false,"headers":true}"#);
    sim.send(old, "SUB _INBOX.o.* 1\r\n");
    sim.send(old, &publish("svc.none", Some("_INBOX.o.1"), &[], "x"));
    sim.send(service, "SUB svc.marker 2\r\n");
    sim.send(old, &publish("svc.marker", Some("_INBOX.o.2"), &[], "marker"));
    let m = sim.msgs(service);
    assert_eq!(m.len(), 1);
    sim.send(service, &publish(&reply(&m[0]), None, &[], "here"));
    let got = sim.msgs(old);
    assert_eq!(got.len(), 1, "only the marker's reply");
    assert_eq!(subject(&got[0]), "_INBOX.o.2");
}

const QUIET: &str = r#"{"verbose":false,"echo":false,"headers":true,"no_responders":true}"#;

#[test]
fn a_requester_with_echo_off_is_not_its_own_responder() {
    let mut sim = Sim::new();
    let me = sim.client(QUIET);
    let other = sim.client(PLAIN);
    sim.send(me, "SUB _INBOX.me.* 1\r\nSUB svc.q q 2\r\nSUB svc.self 3\r\n");
    sim.send(other, "SUB svc.q q 1\r\n");

    // The requester shares a queue group with another member: every request goes to the
    // other member (the requester's own membership declines), never a 503.
    for i in 0..10 {
        sim.send(me, &publish("svc.q", Some(&format!("_INBOX.me.q{i}")), &[], "work"));
    }
    let got = sim.msgs(other);
    assert_eq!(got.len(), 10);
    sim.send(other, &publish(&reply(&got[3]), None, &[], "done"));
    let got = sim.msgs(me);
    assert_eq!(got.len(), 1, "only the reply, no status, no echo: {got:?}");
    assert_eq!((subject(&got[0]), text(got[0].payload())), ("_INBOX.me.q3", "done"));

    // Another client's publish on a subject the echo-off client listens on reaches it.
    sim.send(other, &publish("svc.self", None, &[], "from a peer"));
    let got = sim.msgs(me);
    assert_eq!(got.len(), 1);
    assert_eq!(text(got[0].payload()), "from a peer");
}

/// The requester's own subscription declines the request (echo off), so nobody received it:
/// nats-server 2.14 answers `NATS/1.0 503` (with `Nats-Subject`) on the requester's inbox,
/// whatever its echo setting (checked by hand over TCP).
#[test]
fn an_echo_off_requester_that_is_the_only_subscriber_gets_no_responders() {
    let mut sim = Sim::new();
    let me = sim.client(QUIET);
    sim.send(me, "SUB svc.self 1\r\nSUB _INBOX.me.* 2\r\n");
    sim.send(me, &publish("svc.self", Some("_INBOX.me.1"), &[], "hello"));
    let got = sim.msgs(me);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((subject(&got[0]), status(&got[0])), ("_INBOX.me.1", 503));
}

/// The no-responders status goes to the requester's subscription on the reply subject
/// without counting towards its auto-unsubscribe limit (nats-server's rule), so a requester
/// that retries on the same one-shot inbox still gets the real reply.
#[test]
fn no_responders_does_not_use_up_a_one_shot_inbox() {
    let mut sim = Sim::new();
    let requester = sim.client(PLAIN);
    sim.send(requester, "SUB _INBOX.once 1\r\nUNSUB 1 1\r\n");
    sim.send(requester, &publish("svc.later", Some("_INBOX.once"), &[], "anyone?"));
    let got = sim.msgs(requester);
    assert_eq!(got.len(), 1);
    assert_eq!(status(&got[0]), 503);

    let service = sim.client(PLAIN);
    sim.send(service, "SUB svc.later 1\r\n");
    sim.send(requester, &publish("svc.later", Some("_INBOX.once"), &[], "again"));
    let req = sim.msgs(service);
    assert_eq!(req.len(), 1);
    sim.send(service, &publish(&reply(&req[0]), None, &[], "here"));
    sim.send(service, &publish(&reply(&req[0]), None, &[], "too late"));
    let got = sim.msgs(requester);
    assert_eq!(
        got.iter().map(|m| text(m.payload())).collect::<Vec<_>>(),
        ["here"],
        "one reply, then the inbox is gone"
    );
}
