//! The link against a scripted server: the test feeds it what a NATS server would send
//! (`INFO`, `PONG`, `MSG`, `-ERR`) and checks what it writes; time is stepped by hand.

#![allow(clippy::unwrap_used)]

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

use bytes::Bytes;

use super::*;
use crate::broker::{Broker, BrokerConfig};
use crate::proto::ServerInfo;

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn config() -> LinkConfig {
    LinkConfig {
        exports: vec!["orders.>".into()],
        imports: vec!["prices.>".into()],
        inbox_prefix: "_INBOX.page".into(),
        id_prefix: "link1-".into(),
        name: "t".into(),
        user: Some("u".into()),
        pass: Some("p".into()),
        token: None,
        skip_consumer_deliveries: false,
    }
}

fn schedule() -> Schedule {
    Schedule {
        ping_interval_ms: 1_000,
        max_ping_out: 2,
        connect_timeout_ms: 500,
        reconnect_min_ms: 100,
        reconnect_max_ms: 1_000,
    }
}

fn link_with(config: LinkConfig, outbox: Outbox) -> Link {
    Link::new(config, schedule(), outbox, 42).unwrap()
}

fn events(link: &mut Link) -> Vec<Event> {
    core::iter::from_fn(|| link.poll_event()).collect()
}

fn wire(link: &mut Link) -> String {
    String::from_utf8(link.poll_transmit().map(|b| b.to_vec()).unwrap_or_default()).unwrap()
}

fn msg(subject: &'static str, reply: Option<&'static str>, payload: &'static str) -> Msg {
    Msg {
        subject: Bytes::from_static(subject.as_bytes()),
        reply: reply.map(|r| Bytes::from_static(r.as_bytes())),
        headers: None,
        payload: Bytes::from_static(payload.as_bytes()),
        route: None,
    }
}

/// The `CONNECT` body the link wrote, and the rest of its handshake.
fn split_connect(out: &str) -> (serde_json::Value, &str) {
    let rest = out.strip_prefix("CONNECT ").unwrap();
    let end = rest.find("\r\n").unwrap();
    (serde_json::from_str(&rest[..end]).unwrap(), &rest[end + 2..])
}

/// Dials and answers the handshake at `now`; returns what the link wrote after it.
fn handshake(link: &mut Link, now: u64) -> String {
    if link.state() != LinkState::Connecting {
        link.connect(now);
    }
    assert_eq!(events(link), vec![Event::Dial]);
    link.handle_open(now);
    link.handle_data(now, b"INFO {\"server_id\":\"S\",\"max_payload\":1048576} \r\n");
    assert!(events(link).is_empty());
    let hello = wire(link);
    let (_, rest) = split_connect(&hello);
    assert_eq!(rest, "SUB prices.> 1\r\nSUB _INBOX.page.> 2\r\nPING\r\n");
    link.handle_data(now, b"PONG\r\n");
    let ev: Vec<Event> = events(link).into_iter().filter(|e| !matches!(e, Event::Persist(_))).collect();
    assert_eq!(ev, vec![Event::Connected { server: "S".into() }]);
    wire(link)
}

fn connected() -> Link {
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    assert_eq!(handshake(&mut link, T0), "");
    link
}

#[test]
fn handshake_with_user_pass_subscribes_every_import_and_the_inbox() {
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    assert_eq!(link.state(), LinkState::Idle);
    assert_eq!(link.poll_timeout(), None, "nothing happens before connect");
    link.connect(T0);
    assert_eq!(events(&mut link), vec![Event::Dial]);
    assert_eq!(link.state(), LinkState::Connecting);
    assert!(link.poll_transmit().is_none(), "nothing is written before the server's INFO");
    link.handle_open(T0);
    // The greeting may come in pieces.
    link.handle_data(T0, b"INFO {\"server_id\":\"S\",\"server_name\":\"hub\",");
    assert!(link.poll_transmit().is_none());
    link.handle_data(T0, b"\"max_payload\":1048576,\"auth_required\":true} \r\n");
    let out = wire(&mut link);
    let (connect, rest) = split_connect(&out);
    assert_eq!(connect["user"], "u");
    assert_eq!(connect["pass"], "p");
    assert!(connect.get("auth_token").is_none());
    assert_eq!((connect["echo"].clone(), connect["headers"].clone()), (false.into(), true.into()));
    assert_eq!((connect["verbose"].clone(), connect["lang"].clone()), (false.into(), LANG.into()));
    assert_eq!(rest, "SUB prices.> 1\r\nSUB _INBOX.page.> 2\r\nPING\r\n");
    // A second INFO (a cluster update) changes nothing.
    link.handle_data(T0, b"INFO {\"server_id\":\"S2\"} \r\n");
    assert!(link.poll_transmit().is_none());
    assert_eq!(link.state(), LinkState::Connecting, "connected only once the handshake PING is answered");
    link.handle_data(T0 + MS, b"PONG\r\n");
    assert_eq!(events(&mut link), vec![Event::Connected { server: "hub".into() }]);
    assert_eq!(link.state(), LinkState::Connected);
    assert_eq!(link.poll_timeout(), Some(T0 + MS + 1_000 * MS), "the first keepalive ping");

    // Several imports: one SUB each, then the inbox.
    let mut link = link_with(
        LinkConfig { imports: vec!["a.*".into(), "b.>".into(), "c".into()], ..config() },
        Outbox::new(false, Vec::new()),
    );
    link.connect(T0);
    link.handle_data(T0, b"INFO {} \r\n");
    let out = wire(&mut link);
    assert_eq!(split_connect(&out).1, "SUB a.* 1\r\nSUB b.> 2\r\nSUB c 3\r\nSUB _INBOX.page.> 4\r\nPING\r\n");
}

#[test]
fn handshake_with_a_token() {
    let config = LinkConfig { user: None, pass: None, token: Some("s3cret".into()), ..config() };
    let mut link = link_with(config, Outbox::new(false, Vec::new()));
    link.connect(T0);
    link.handle_data(T0, b"INFO {\"server_id\":\"S\",\"auth_required\":true} \r\n");
    let out = wire(&mut link);
    let (connect, _) = split_connect(&out);
    assert_eq!(connect["auth_token"], "s3cret");
    assert!(connect.get("user").is_none() && connect.get("pass").is_none());
}

#[test]
fn an_auth_error_is_reported_and_the_attempt_retried() {
    let mut link = link_with(LinkConfig { pass: Some("wrong".into()), ..config() }, Outbox::new(false, Vec::new()));
    link.connect(T0);
    events(&mut link);
    link.handle_data(T0, b"INFO {\"server_id\":\"S\",\"auth_required\":true} \r\n");
    wire(&mut link);
    link.handle_data(T0, b"-ERR 'Authorization Violation'\r\n");
    link.handle_close(T0, Some("cannot connect (close code 1006)".into()));
    let ev = events(&mut link);
    assert_eq!(ev[0], Event::ServerError("'Authorization Violation'".into()));
    let auth = LinkError::Server("'Authorization Violation'".into());
    assert_eq!(ev[1], Event::Disconnected { error: Some(auth.clone()) });
    assert!(matches!(ev[2], Event::Reconnecting { attempt: 1, .. }), "{ev:?}");
    assert_eq!(ev.len(), 3);
    assert_eq!(link.state(), LinkState::Reconnecting);
    assert_eq!(link.last_error(), Some(&auth));
    assert_eq!(auth.to_string(), "'Authorization Violation'");

    // The next attempt fails the same way: still one `Disconnected` for the whole outage,
    // and (nats.js's rule) a second refusal in a row ends the retries, the reason kept.
    link.handle_timeout(link.poll_timeout().unwrap());
    assert_eq!(events(&mut link), vec![Event::Dial]);
    link.handle_data(T0, b"INFO {} \r\n-ERR 'Authorization Violation'\r\n");
    link.handle_close(T0, None);
    let ev = events(&mut link);
    assert!(matches!(ev[..], [Event::ServerError(_), Event::Closed]), "{ev:?}");
    assert_eq!(link.state(), LinkState::Closed);
    assert!(link.gave_up_on_auth());
    assert_eq!(link.last_error(), Some(&auth));
    assert_eq!(link.poll_timeout(), None, "no further attempt is scheduled");

    // A close with nothing said before it reports the host's description of it.
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    link.connect(T0);
    events(&mut link);
    link.handle_close(T0, Some("cannot connect to ws://x (close code 1006)".into()));
    let ev = events(&mut link);
    let closed = LinkError::Socket("cannot connect to ws://x (close code 1006)".into());
    assert_eq!(ev[0], Event::Disconnected { error: Some(closed) });
}

#[test]
fn outbox_entries_are_confirmed_only_by_the_pong_after_them() {
    let mut link = connected();
    link.handle_export(T0, msg("orders.1", None, "a"));
    assert_eq!(wire(&mut link), "HPUB orders.1 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-1\r\n\r\na\r\nPING\r\n");
    // A keepalive ping between the two batches.
    link.handle_timeout(T0 + 1_000 * MS);
    assert_eq!(wire(&mut link), "PING\r\n");
    link.handle_export(T0, msg("orders.2", None, "b"));
    assert_eq!(wire(&mut link), "HPUB orders.2 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-2\r\n\r\nb\r\nPING\r\n");
    assert_eq!(link.outbox().len(), 2);

    link.handle_data(T0, b"PONG\r\n");
    assert_eq!(events(&mut link), vec![Event::Confirmed { upto: 1, remaining: 1 }]);
    link.handle_data(T0, b"PONG\r\n");
    assert!(events(&mut link).is_empty(), "the keepalive's PONG confirms nothing");
    assert_eq!(link.outbox().len(), 1);
    link.handle_data(T0, b"PONG\r\n");
    assert_eq!(events(&mut link), vec![Event::Confirmed { upto: 2, remaining: 0 }]);
    assert!(link.outbox().is_empty());
    // Only exported subjects cross.
    link.handle_export(T0, msg("prices.1", None, "x"));
    assert!(link.poll_transmit().is_none() && link.outbox().is_empty());
}

#[test]
fn reconnects_follow_the_backoff_schedule_with_jitter() {
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    let mut now = T0;
    link.connect(now);
    let mut delays = Vec::new();
    for n in 0..8u32 {
        assert_eq!(events(&mut link), vec![Event::Dial]);
        link.handle_close(now, None);
        let ev = events(&mut link);
        let Some(&Event::Reconnecting { delay_ms, attempt }) = ev.last() else { panic!("{ev:?}") };
        assert_eq!(attempt, n + 1);
        // d = min(max, min * 2^n); the wait is in [d/2, d].
        let d = (100u32 << n).min(1_000);
        assert!((d / 2..=d).contains(&delay_ms), "attempt {n}: {delay_ms} ms outside [{}, {d}]", d / 2);
        delays.push(delay_ms);
        assert_eq!(link.poll_timeout(), Some(now + u64::from(delay_ms) * MS));
        link.handle_timeout(now + u64::from(delay_ms) * MS - 1);
        assert!(events(&mut link).is_empty(), "not before the delay");
        assert_eq!(link.state(), LinkState::Reconnecting);
        now += u64::from(delay_ms) * MS;
        link.handle_timeout(now);
    }
    assert_eq!(link.stats().reconnects, 8);

    // The same seed replays the same schedule; the jitter is not constant.
    let mut again = link_with(config(), Outbox::new(false, Vec::new()));
    again.connect(T0);
    let mut replay = Vec::new();
    for _ in 0..8 {
        events(&mut again);
        again.handle_close(T0, None);
        if let Some(Event::Reconnecting { delay_ms, .. }) = events(&mut again).pop() {
            replay.push(delay_ms);
        }
        again.handle_timeout(again.poll_timeout().unwrap());
    }
    assert_eq!(replay, delays);
    assert!(delays[3..].iter().any(|d| *d != 1_000 && *d != 500), "jittered: {delays:?}");

    // A connection that got through starts the schedule over.
    assert_eq!(handshake(&mut link, now), "");
    link.handle_close(now, None);
    let ev = events(&mut link);
    assert!(
        matches!(ev[..], [Event::Disconnected { .. }, Event::Reconnecting { delay_ms: 50..=100, attempt: 1 }]),
        "{ev:?}"
    );
}

#[test]
fn unconfirmed_entries_are_sent_again_with_the_same_ids_after_a_drop() {
    let mut link = link_with(config(), Outbox::new(true, Vec::new()));
    for i in 1..=3 {
        link.handle_export(T0, Msg { subject: Bytes::from(format!("orders.{i}")), ..msg("", None, "x") });
    }
    assert!(link.poll_transmit().is_none(), "nothing goes out before connecting");
    let ev = events(&mut link);
    let [Event::Persist(c)] = &ev[..] else { panic!("{ev:?}") };
    assert_eq!(c.puts.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(!link.is_persisted(), "written only once the host says so");
    link.handle_persisted(T0);
    assert!(link.is_persisted());

    let first = handshake(&mut link, T0);
    assert_eq!(
        first,
        "HPUB orders.1 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-1\r\n\r\nx\r\n\
         HPUB orders.2 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-2\r\n\r\nx\r\n\
         HPUB orders.3 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-3\r\n\r\nx\r\nPING\r\n"
    );
    // The connection drops before the PONG: all three go again, with the same ids.
    link.handle_close(T0, None);
    let ev = events(&mut link);
    assert!(matches!(ev[..], [Event::Disconnected { error: None }, Event::Reconnecting { .. }]), "{ev:?}");
    assert_eq!(link.outbox().len(), 3);
    let now = link.poll_timeout().unwrap();
    link.handle_timeout(now);
    assert_eq!(handshake(&mut link, now), first);
    link.handle_data(now, b"PONG\r\n");
    let ev = events(&mut link);
    assert_eq!(ev[0], Event::Confirmed { upto: 3, remaining: 0 });
    assert_eq!(ev[1], Event::Persist(OutboxCommit { puts: vec![], delete_upto: Some(3) }));
    link.handle_persisted(now);

    // Online: while one write is out, a publish confirmed before the next write starts is
    // never written at all.
    link.handle_export(now, msg("orders.4", None, "y"));
    let ev = events(&mut link);
    assert!(matches!(&ev[..], [Event::Persist(c)] if c.puts.len() == 1), "{ev:?}");
    link.handle_export(now, msg("orders.5", None, "z"));
    assert!(wire(&mut link).contains("Nats-Msg-Id: link1-5"));
    link.handle_data(now, b"PONG\r\nPONG\r\n");
    let ev = events(&mut link);
    assert_eq!(ev.len(), 2, "no Persist while one is out: {ev:?}");
    link.handle_persisted(now);
    // Entry 5 was never stored: only the stored range is deleted.
    assert_eq!(events(&mut link), vec![Event::Persist(OutboxCommit { puts: vec![], delete_upto: Some(4) })]);
    link.handle_persisted(now);
    assert!(link.is_persisted());
}

#[test]
fn unanswered_keepalive_pings_mean_disconnected() {
    let mut link = connected();
    let tick = 1_000 * MS;
    let mut now = T0 + tick;
    assert_eq!(link.poll_timeout(), Some(now));
    link.handle_timeout(now - 1);
    assert!(link.poll_transmit().is_none(), "not due yet");
    link.handle_timeout(now);
    now += tick;
    link.handle_timeout(now);
    assert_eq!(wire(&mut link), "PING\r\nPING\r\n");
    // One answer (to either ping) and the count starts over.
    link.handle_data(now, b"PONG\r\n");
    now += tick;
    link.handle_timeout(now);
    now += tick;
    link.handle_timeout(now);
    assert_eq!(wire(&mut link), "PING\r\nPING\r\n");
    assert!(events(&mut link).is_empty());
    assert_eq!(link.state(), LinkState::Connected);
    now += tick;
    link.handle_timeout(now);
    let ev = events(&mut link);
    assert_eq!(ev[0], Event::Hangup);
    assert_eq!(ev[1], Event::Disconnected { error: Some(LinkError::Stale { pings: 2 }) });
    assert_eq!(LinkError::Stale { pings: 2 }.to_string(), "stale connection: 2 pings unanswered");
    assert!(matches!(ev[2], Event::Reconnecting { .. }));
    assert_eq!(link.state(), LinkState::Reconnecting);
    assert!(link.poll_transmit().is_none(), "nothing more for the abandoned socket");

    // An outbox confirmation counts as an answer too.
    let mut link = connected();
    link.handle_export(T0, msg("orders.1", None, ""));
    link.handle_timeout(T0 + tick);
    link.handle_data(T0 + tick, b"PONG\r\n");
    link.handle_timeout(T0 + 2 * tick);
    link.handle_timeout(T0 + 3 * tick);
    assert_eq!(link.state(), LinkState::Connected);
}

#[test]
fn an_attempt_without_the_handshake_pong_in_time_is_abandoned() {
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    link.connect(T0);
    events(&mut link);
    assert_eq!(link.poll_timeout(), Some(T0 + 500 * MS));
    link.handle_open(T0 + 10 * MS);
    link.handle_data(T0 + 20 * MS, b"INFO {} \r\n");
    wire(&mut link);
    link.handle_timeout(T0 + 499 * MS);
    assert!(events(&mut link).is_empty());
    link.handle_timeout(T0 + 500 * MS);
    let ev = events(&mut link);
    assert_eq!(ev[0], Event::Hangup);
    assert_eq!(ev[1], Event::Disconnected { error: Some(LinkError::HandshakeTimeout { ms: 500 }) });
    assert_eq!(LinkError::HandshakeTimeout { ms: 500 }.to_string(), "no connection within 500 ms");
    assert!(matches!(ev[2], Event::Reconnecting { attempt: 1, .. }));
    // The PONG arriving late on the abandoned socket changes nothing.
    link.handle_data(T0 + 600 * MS, b"PONG\r\n");
    assert!(events(&mut link).is_empty());
    assert_eq!(link.state(), LinkState::Reconnecting);
    // Nor does its close.
    link.handle_close(T0 + 600 * MS, None);
    assert!(events(&mut link).is_empty());
}

#[test]
fn imports_requests_pings_and_errors() {
    let mut link = connected();
    link.handle_data(
        T0,
        b"MSG prices.eu 1 _INBOX.srv.1 3\r\n1.5\r\nPING\r\nHMSG _INBOX.page.3 2 12 14\r\nNATS/1.0\r\n\r\nok\r\n-ERR 'x'\r\n",
    );
    assert_eq!(
        events(&mut link),
        vec![
            Event::Deliver(msg("prices.eu", Some("_INBOX.srv.1"), "1.5")),
            Event::Deliver(Msg {
                headers: Some(Bytes::from_static(b"NATS/1.0\r\n\r\n")),
                ..msg("_INBOX.page.3", None, "ok")
            }),
            Event::ServerError("'x'".into()),
        ]
    );
    assert_eq!(wire(&mut link), "PONG\r\n");
    assert_eq!(link.stats().received, 2);
    // A live request goes out at once, never into the outbox; a reply to the server too.
    link.handle_export(T0, msg("orders.q", Some("_INBOX.page.4"), ""));
    link.handle_reply(T0, msg("_INBOX.srv.1", None, "ack"));
    assert_eq!(wire(&mut link), "PUB orders.q _INBOX.page.4 0\r\n\r\nPUB _INBOX.srv.1 3\r\nack\r\n");
    assert!(link.outbox().is_empty());
    assert_eq!(link.stats().sent, 2);
    // Too big for the server: never written.
    let big = Msg { payload: Bytes::from(vec![b'x'; 1_048_577]), ..msg("_INBOX.srv.2", None, "") };
    link.handle_reply(T0, big);
    assert!(link.poll_transmit().is_none());
    let ev = events(&mut link);
    assert!(matches!(&ev[..], [Event::Rejected { size: 1_048_577, max: 1_048_576, .. }]), "{ev:?}");

    // Bytes that do not parse end the connection.
    link.handle_data(T0, b"BOGUS\r\n");
    let ev = events(&mut link);
    assert_eq!(ev[0], Event::Hangup);
    assert!(matches!(&ev[1], Event::Disconnected { error: Some(LinkError::Protocol(_)) }), "{ev:?}");
    link.handle_export(T0, msg("orders.q", Some("_INBOX.page.5"), ""));
    assert!(link.outbox().is_empty() && link.poll_transmit().is_none(), "a request while down is dropped");
}

#[test]
fn a_dial_error_stops_and_close_ends_everything() {
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    link.connect(T0);
    events(&mut link);
    link.handle_dial_error(T0, "bad URL".into());
    assert_eq!(events(&mut link), vec![Event::Disconnected { error: Some(LinkError::Dial("bad URL".into())) }]);
    assert_eq!((link.state(), link.poll_timeout()), (LinkState::Idle, None));

    let mut link = connected();
    link.close(T0);
    assert_eq!(events(&mut link), vec![Event::Hangup, Event::Closed]);
    assert_eq!((link.state(), link.poll_timeout()), (LinkState::Closed, None));
    link.handle_data(T0, b"MSG prices.x 1 1\r\nx\r\n");
    link.connect(T0);
    link.close(T0);
    assert!(events(&mut link).is_empty() && link.poll_transmit().is_none());
}

fn broker() -> Broker {
    let config =
        BrokerConfig::open(ServerInfo { server_id: "NTEST".into(), headers: true, proto: 1, ..Default::default() });
    Broker::new(config, 7)
}

/// Drains the link as a host would, handing imports to the port.
fn drive(link: &mut Link, port: &mut BrokerPort, broker: &mut Broker) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let mut deliver = Vec::new();
        while let Some(e) = link.poll_event() {
            match e {
                Event::Deliver(m) => deliver.push(m),
                other => seen.push(other),
            }
        }
        if deliver.is_empty() {
            return seen;
        }
        port.deliver(broker, link, T0, deliver);
    }
}

#[test]
fn the_broker_port_exports_imports_drops_echoes_and_answers_requests() {
    let mut broker = broker();
    let config = LinkConfig { imports: vec!["prices.>".into(), "orders.>".into()], ..config() };
    let mut port = BrokerPort::attach(&mut broker, &config).unwrap();
    let mut link = link_with(config, Outbox::new(false, Vec::new()));
    link.connect(T0);
    drive(&mut link, &mut port, &mut broker);
    link.handle_data(T0, b"INFO {} \r\nPONG\r\n");
    drive(&mut link, &mut port, &mut broker);
    wire(&mut link);

    let page = broker.connect_local();
    let prices = broker.subscribe_local(page, b"prices.>", None).unwrap();
    let orders = broker.subscribe_local(page, b"orders.>", None).unwrap();
    // A local publish on an export goes out, stamped.
    broker.publish_local(page, b"orders.1", b"orders.1", None, None, b"o").unwrap();
    broker.take_deliveries(page);
    port.take_local(&mut broker, &mut link, T0);
    assert!(wire(&mut link).starts_with("HPUB orders.1 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-1\r\n"));

    // An import on a subject that is exported too reaches the page and is not sent back.
    link.handle_data(T0, b"MSG orders.2 2 1\r\nx\r\nMSG prices.q 1 _INBOX.srv.9 1\r\n?\r\n");
    drive(&mut link, &mut port, &mut broker);
    assert!(link.poll_transmit().is_none(), "no echo");
    let got = broker.take_deliveries(page);
    assert_eq!(
        got.iter().map(|d| (d.sub, &d.subject[..])).collect::<Vec<_>>(),
        vec![(orders, &b"orders.2"[..]), (prices, &b"prices.q"[..])]
    );
    // The page answers the server's request: the reply goes back over the link, once.
    broker.publish_local(page, b"_INBOX.srv.9", b"_INBOX.srv.9", None, None, b"!").unwrap();
    broker.publish_local(page, b"_INBOX.srv.9", b"_INBOX.srv.9", None, None, b"again").unwrap();
    port.take_local(&mut broker, &mut link, T0);
    assert_eq!(wire(&mut link), "PUB _INBOX.srv.9 1\r\n!\r\n");

    // Detached: the exports are no longer subscribed.
    port.detach(&mut broker);
    assert!(!broker.has_interest(b"_INBOX.srv.9"));
    broker.unsubscribe_local(page, orders, 0);
    assert!(!broker.has_interest(b"orders.3"));
}

#[test]
fn a_reply_on_an_exported_subject_goes_out_once() {
    // a tab's link to its leader exports and imports everything
    let mut broker = broker();
    let config =
        LinkConfig { exports: vec![">".into()], imports: vec![">".into()], skip_consumer_deliveries: true, ..config() };
    assert_eq!(config.interest().collect::<Vec<_>>(), vec![">"], "the import covers the inbox");
    let mut port = BrokerPort::attach(&mut broker, &config).unwrap();
    let mut link = link_with(config, Outbox::new(false, Vec::new()));
    link.connect(T0);
    drive(&mut link, &mut port, &mut broker);
    link.handle_data(T0, b"INFO {} \r\nPONG\r\n");
    drive(&mut link, &mut port, &mut broker);
    wire(&mut link);

    let page = broker.connect_local();
    broker.subscribe_local(page, b"svc", None).unwrap();
    link.handle_data(T0, b"MSG svc 1 _INBOX.other.1 1\r\n?\r\n");
    drive(&mut link, &mut port, &mut broker);
    assert!(link.poll_transmit().is_none(), "no echo");
    assert_eq!(broker.take_deliveries(page).len(), 1);
    broker.publish_local(page, b"_INBOX.other.1", b"_INBOX.other.1", None, None, b"!").unwrap();
    port.take_local(&mut broker, &mut link, T0);
    assert_eq!(wire(&mut link), "PUB _INBOX.other.1 1\r\n!\r\n");
    assert!(link.outbox().is_empty(), "not kept as an export too");

    // a consumer's delivery to another context's inbox, under the stream's subject, is not
    // published locally; a plain message on that subject is
    let orders = broker.subscribe_local(page, b"orders.>", None).unwrap();
    link.handle_data(T0, b"MSG orders.1 1 $JS.ACK.S.c.1.1.1.1.0 1\r\nd\r\nMSG orders.1 1 1\r\np\r\n");
    drive(&mut link, &mut port, &mut broker);
    let got = broker.take_deliveries(page);
    assert_eq!(got.iter().map(|d| (d.sub, &d.payload[..])).collect::<Vec<_>>(), vec![(orders, &b"p"[..])]);
}

#[test]
fn one_auth_refusal_then_success_resets_the_count() {
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    link.connect(T0);
    events(&mut link);
    link.handle_data(T0, b"INFO {} \r\n-ERR 'Authorization Violation'\r\n");
    link.handle_close(T0, None);
    events(&mut link);
    link.handle_timeout(link.poll_timeout().unwrap());
    handshake(&mut link, T0);
    // A later refusal (credentials revoked) is the first of a new run: retried.
    link.handle_data(T0, b"-ERR 'Authorization Violation'\r\n");
    link.handle_close(T0, None);
    let ev = events(&mut link);
    assert!(
        matches!(ev[..], [Event::ServerError(_), Event::Disconnected { .. }, Event::Reconnecting { .. }]),
        "{ev:?}"
    );
    assert!(!link.gave_up_on_auth());

    // A slow handshake is no credential problem: retried however often it happens.
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    for attempt in 1..=3 {
        link.connect(T0);
        events(&mut link);
        link.handle_data(T0, b"INFO {} \r\n-ERR 'Authentication Timeout'\r\n");
        link.handle_close(T0, None);
        let ev = events(&mut link);
        assert!(matches!(ev.last(), Some(Event::Reconnecting { .. })), "attempt {attempt}: {ev:?}");
    }
}

fn big(subject: &'static str, n: usize) -> Msg {
    Msg {
        subject: Bytes::from_static(subject.as_bytes()),
        reply: None,
        headers: None,
        payload: Bytes::from(vec![7u8; n]),
        route: None,
    }
}

#[test]
fn a_publish_over_the_servers_max_payload_is_rejected_never_confirmed() {
    // Known too big once the server said its limit: rejected at once, never kept.
    let mut link = connected();
    link.handle_export(T0, big("orders.big", (1 << 20) + 1));
    assert_eq!(
        events(&mut link),
        vec![Event::Rejected { subject: Bytes::from_static(b"orders.big"), size: (1 << 20) + 1, max: 1 << 20 }]
    );
    assert_eq!(wire(&mut link), "", "nothing is written for it");
    assert_eq!(link.outbox().len(), 0);
    assert_eq!(link.stats().sent, 0);

    // Kept while offline (the limit is not known yet), then rejected when its batch goes out;
    // the small one after it is sent and confirmed as usual.
    let mut link = link_with(config(), Outbox::new(false, Vec::new()));
    link.handle_export(T0, big("orders.big", 2 << 20));
    link.handle_export(T0, msg("orders.1", None, "a"));
    assert!(events(&mut link).is_empty());
    assert_eq!(link.outbox().len(), 2);
    // The big one fills a batch of its own: nothing of it is written, only the PING.
    assert_eq!(handshake_raw(&mut link, T0), "PING\r\n");
    let ev = events(&mut link);
    // Its size counts the stamped `Nats-Msg-Id` header too.
    assert!(
        matches!(&ev[..], [Event::Connected { .. }, Event::Rejected { subject, size, max: 1_048_576 }]
            if &subject[..] == b"orders.big" && *size > 2 << 20),
        "{ev:?}"
    );
    link.handle_data(T0, b"PONG\r\n");
    assert!(events(&mut link).contains(&Event::Confirmed { upto: 1, remaining: 1 }));
    assert!(wire(&mut link).starts_with("HPUB orders.1 "));
    link.handle_data(T0, b"PONG\r\n");
    assert!(events(&mut link).contains(&Event::Confirmed { upto: 2, remaining: 0 }));
    assert_eq!(link.stats().sent, 1, "only the small one was sent");
}

/// The handshake without the exact-event checks of [`handshake`] (events are left queued).
fn handshake_raw(link: &mut Link, now: u64) -> String {
    link.connect(now);
    assert_eq!(events(link), vec![Event::Dial]);
    link.handle_data(now, b"INFO {\"server_id\":\"S\",\"max_payload\":1048576} \r\n");
    wire(link);
    link.handle_data(now, b"PONG\r\n");
    wire(link)
}
