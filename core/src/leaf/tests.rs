#![allow(clippy::unwrap_used)]
use super::*;
use crate::proto::{LeafOpParser, Limits, ParseError};
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

fn parser(max_control_line: usize, max_payload: usize) -> LeafOpParser {
    LeafOpParser::new(Limits { max_control_line, max_payload })
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn parse_all(input: &[u8], split: usize) -> Vec<LeafOp> {
    let mut p = parser(4096, 1 << 20);
    let mut ops = Vec::new();
    for chunk in input.chunks(split) {
        p.extend(chunk);
        while let Some(op) = p.poll_op().unwrap() {
            ops.push(op);
        }
    }
    ops
}

#[test]
fn parses_the_captured_stream_in_any_split() {
    let wire = b"INFO {\"client_id\":5} \r\nLS+ h.plain\r\nLS+ h.q grp 2\r\nLS- h.q grp\r\nLS- h.plain\r\n\
LMSG foo r1 2\r\nhi\r\nLMSG bar | grp 2\r\nhi\r\nLMSG q.x + rq g h 3\r\nabc\r\nHMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
HMSG s.q | grp 22 24\r\nNATS/1.0\r\nFoo: bar\r\n\r\nhi\r\nPING\r\nPONG\r\n-ERR 'Loop Detected'\r\n";
    let whole = parse_all(wire, wire.len());
    for split in [1, 2, 3, 7, 64] {
        assert_eq!(parse_all(wire, split), whole, "split {split}");
    }
    assert_eq!(whole.len(), 13);
    assert_eq!(whole[0], LeafOp::Info(b("{\"client_id\":5}")));
    assert_eq!(whole[2], LeafOp::Sub { subject: b("h.q"), queue: Some((b("grp"), 2)) });
    assert_eq!(whole[3], LeafOp::Unsub { subject: b("h.q"), queue: Some(b("grp")) });
    let LeafOp::Msg(m) = &whole[5] else { panic!() };
    assert_eq!((m.subject.as_ref(), m.reply.as_deref(), m.payload()), (&b"foo"[..], Some(&b"r1"[..]), &b"hi"[..]));
    let LeafOp::Msg(m) = &whole[6] else { panic!() };
    assert_eq!((m.reply.clone(), m.queues.clone()), (None, vec![b("grp")]));
    let LeafOp::Msg(m) = &whole[7] else { panic!() };
    assert_eq!((m.reply.clone(), m.queues.clone()), (Some(b("rq")), vec![b("g"), b("h")]));
    let LeafOp::Msg(m) = &whole[9] else { panic!() };
    assert_eq!((m.header_len, m.queues.clone(), m.payload()), (Some(22), vec![b("grp")], &b"hi"[..]));
    assert_eq!(whole[12], LeafOp::Err(b("Loop Detected")));
}

/// [`parse_all`] taking plain `LMSG`s through `peek_lmsg` first, as a leaf connection does.
fn parse_all_peeking(input: &[u8], split: usize) -> (Vec<LeafOp>, usize) {
    let mut p = parser(4096, 1 << 20);
    let (mut ops, mut peeked) = (Vec::new(), 0);
    for chunk in input.chunks(split) {
        p.extend(chunk);
        loop {
            if let Some(span) = p.peek_lmsg() {
                let b = p.peeked();
                ops.push(LeafOp::Msg(crate::proto::LeafMsg {
                    subject: Bytes::copy_from_slice(&b[span.subject.clone()]),
                    reply: span.reply.clone().map(|r| Bytes::copy_from_slice(&b[r])),
                    queues: Vec::new(),
                    header_len: None,
                    message: Bytes::copy_from_slice(&b[span.payload.clone()]),
                }));
                p.consume(&span);
                peeked += 1;
                continue;
            }
            match p.poll_op().unwrap() {
                Some(op) => ops.push(op),
                None => break,
            }
        }
    }
    (ops, peeked)
}

#[test]
fn a_plain_lmsg_peeked_in_place_reads_as_the_general_path_reads_it() {
    let wire = b"LMSG foo r1 2\r\nhi\r\nLMSG bar | grp 2\r\nhi\r\nLMSG a.b 0\r\n\r\nLMSG  c \t d  3\r\nabc\r\n\
LMSG q.x + rq g h 3\r\nabc\r\nHMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nlmsg low 1\r\nx\r\nPING\r\n\
LMSG big 9\r\n123456789\r\nLMSG bare 1\nx\r\n";
    let general = parse_all(wire, wire.len());
    for split in 1..=wire.len() {
        let (ops, peeked) = parse_all_peeking(wire, split);
        assert_eq!(ops, general, "split {split}");
        if split == wire.len() {
            // foo, a.b, c and big; not the queue-group, header, lower-case or bare-LF forms
            assert_eq!(peeked, 4);
        }
    }
    // over the payload limit or the control line limit: left to the general path's errors
    let mut p = parser(4096, 4);
    p.extend(b"LMSG big 9\r\n123456789\r\n");
    assert!(p.peek_lmsg().is_none());
    assert_eq!(p.poll_op().unwrap_err(), ParseError::MaxPayload);
    let mut p = parser(16, 1 << 20);
    p.extend(b"LMSG a.very.long.subject 1\r\nx\r\n");
    assert!(p.peek_lmsg().is_none());
}

#[test]
fn a_message_line_reads_the_same_whether_its_words_fit_the_short_path_or_not() {
    // up to eight words after the verb are read in place; more take the general path
    let queues = |n: usize| (1..=n).map(|i| b(&format!("q{i}"))).collect::<Vec<_>>();
    for n in [1, 3, 4, 5, 6, 9, 20] {
        let names = (1..=n).map(|i| format!("q{i}")).collect::<Vec<_>>().join(" ");
        let wire = format!("LMSG s + r {names} 2\r\nhi\r\nLMSG s | {names} 2\r\nhi\r\nHMSG s + r {names} 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        let ops = parse_all(wire.as_bytes(), wire.len());
        let want = [(Some(b("r")), None), (None, None), (Some(b("r")), Some(12))];
        assert_eq!(ops.len(), 3, "{n} queues");
        for (op, (reply, header_len)) in ops.iter().zip(want) {
            let LeafOp::Msg(m) = op else { panic!("{op:?}") };
            assert_eq!((&m.subject, &m.reply, &m.queues, m.header_len), (&b("s"), &reply, &queues(n), header_len));
            assert_eq!(m.payload(), b"hi");
        }
    }
    // "+" with a reply but no queue, or two names that are neither, are refused on both paths
    for bad in ["LMSG s + r 2\r\n", "LMSG s x y 2\r\n"] {
        let mut p = parser(4096, 1024);
        p.extend(bad.as_bytes());
        assert!(p.poll_op().is_err(), "{bad:?}");
    }
    let long = format!("LMSG s x {} 2\r\n", (0..10).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" "));
    let mut p = parser(4096, 1024);
    p.extend(long.as_bytes());
    assert!(p.poll_op().is_err());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for bad in [
        &b"LMSG\r\n"[..],
        b"LMSG a x\r\n",
        b"HMSG a 5 2\r\n",
        b"LS+\r\n",
        b"LS+ a q w\r\n",
        b"BOGUS\r\n",
        b"LMSG a + r 1\r\n",
    ] {
        let mut p = parser(4096, 1024);
        p.extend(bad);
        assert!(p.poll_op().is_err(), "{:?}", core::str::from_utf8(bad));
    }
    let mut p = parser(4096, 4);
    p.extend(b"LMSG a 5\r\nhello\r\n");
    assert_eq!(p.poll_op(), Err(ParseError::MaxPayload));
    let mut p = parser(8, 1024);
    p.extend(b"LS+ a.very.long.subject");
    assert_eq!(p.poll_op(), Err(ParseError::MaxControlLine));
}

#[test]
fn encodes_lmsg_forms_that_parse_back() {
    let mut out = BytesMut::new();
    write_lmsg(&mut out, b"h.plain", Some(b"reply.x"), &[], None, b"hello", true);
    write_lmsg(&mut out, b"h.q", None, &[b"grp"], None, b"abc", true);
    write_lmsg(&mut out, b"h.q", Some(b"rq"), &[b"grp"], None, b"abc", true);
    write_lmsg(&mut out, b"h.plain", None, &[], Some(22), b"NATS/1.0\r\nFoo: bar\r\n\r\nhi", true);
    write_lmsg(&mut out, b"h.plain", None, &[], Some(22), b"NATS/1.0\r\nFoo: bar\r\n\r\nhi", false);
    assert_eq!(
        &out[..],
        &b"LMSG h.plain reply.x 5\r\nhello\r\nLMSG h.q | grp 3\r\nabc\r\nLMSG h.q + rq grp 3\r\nabc\r\n\
HMSG h.plain 22 24\r\nNATS/1.0\r\nFoo: bar\r\n\r\nhi\r\nLMSG h.plain 2\r\nhi\r\n"[..]
    );
    assert_eq!(parse_all(&out, 5).len(), 5);
}

#[test]
fn interest_is_counted_and_queue_weights_reannounced() {
    // the sequence captured from nats-server (section 14.4)
    let mut l = Local::default();
    let mut out = BytesMut::new();
    let mut send = |c: Option<Change>| {
        if let Some(c) = c {
            write_interest(&mut out, &c);
        }
    };
    send(l.add(b"h.plain", None));
    send(l.add(b"h.q", Some(b"grp")));
    send(l.add(b"h.q", Some(b"grp")));
    send(l.add(b"h.>", None));
    send(l.add(b"h.plain", None));
    send(l.remove(b"h.q", Some(b"grp")));
    send(l.remove(b"h.plain", None));
    send(l.remove(b"h.plain", None));
    send(l.remove(b"never", None));
    assert_eq!(
        &out[..],
        &b"LS+ h.plain\r\nLS+ h.q grp 1\r\nLS+ h.q grp 2\r\nLS+ h.>\r\nLS+ h.q grp 1\r\nLS- h.plain\r\n"[..]
    );
    let snap = l.snapshot();
    assert_eq!(
        snap,
        vec![
            Change::Add { subject: b("h.>"), queue: None },
            Change::Add { subject: b("h.q"), queue: Some((b("grp"), 1)) }
        ]
    );
    assert_eq!(l.remove(b"h.q", Some(b"grp")), Some(Change::Remove { subject: b("h.q"), queue: Some(b("grp")) }));
}

#[test]
fn remote_interest_is_keyed_without_weight() {
    let mut r = Remote::default();
    assert_eq!(r.add(&b("a"), None), RemoteChange::New);
    assert_eq!(r.add(&b("a"), None), RemoteChange::Same);
    assert_eq!(r.add(&b("q"), Some((&b("g"), 2))), RemoteChange::New);
    assert_eq!(r.add(&b("q"), Some((&b("g"), 3))), RemoteChange::Weight(3));
    assert_eq!(r.weight(&b("q"), &b("g")), 3);
    assert_eq!(r.remove(&b("q"), Some(&b("g"))), RemoteChange::Gone);
    assert_eq!(r.remove(&b("q"), Some(&b("g"))), RemoteChange::Same);
    assert_eq!(r.len(), 1);
}

#[test]
fn who_hears_which_interest() {
    assert!(advertises(Origin::Local, 7, true));
    assert!(!advertises(Origin::Leaf { id: 7, solicited: true }, 7, true));
    // a spoke never passes one hub's interest to another hub
    assert!(!advertises(Origin::Leaf { id: 8, solicited: true }, 7, true));
    // but it does pass the interest of leaves below it up, and the hub's down
    assert!(advertises(Origin::Leaf { id: 8, solicited: false }, 7, true));
    assert!(advertises(Origin::Leaf { id: 8, solicited: true }, 7, false));
}

#[test]
fn one_lmsg_per_peer_with_its_groups() {
    let mut f = Fanout::default();
    f.add(1u64, None);
    f.add(1, Some(&b("g")));
    f.add(2, Some(&b("h")));
    f.add(1, Some(&b("g")));
    f.add(1, None);
    let got: Vec<_> = f.drain().collect();
    assert_eq!(got, vec![(1, vec![b("g")]), (2, vec![b("h")])]);
    assert!(f.is_empty());
}

#[test]
fn solicitor_waits_for_connect_info_when_told() {
    let info = LeafInfo { client_id: 5, info_on_connect: true, leafnode_urls: Some(vec![]), ..Default::default() };
    let mut s = Solicitor::new(LeafConnect { name: "edge".into(), headers: true, protocol: 1, ..Default::default() });
    let SolicitStep::Connect { json, ready } = s.on_info(&info).unwrap() else { panic!() };
    assert!(!ready && s.is_waiting());
    let text = core::str::from_utf8(&json).unwrap();
    assert!(!text.contains("lang") && !text.contains("compress_mode"), "{text}");
    assert_eq!(s.on_info(&LeafInfo { connect_info: true, ..info.clone() }).unwrap(), SolicitStep::Ready);
    assert!(s.is_ready());
    assert_eq!(s.on_info(&info).unwrap(), SolicitStep::Update);
    // an old-style hub: ready right after CONNECT
    let mut s = Solicitor::new(LeafConnect::default());
    let old = LeafInfo { client_id: 5, leafnode_urls: Some(vec![]), ..Default::default() };
    assert!(matches!(s.on_info(&old).unwrap(), SolicitStep::Connect { ready: true, .. }));
    // a client port's INFO
    let mut s = Solicitor::new(LeafConnect::default());
    assert_eq!(s.on_info(&LeafInfo { client_id: 5, ..Default::default() }), Err(ConnectRefusal::WrongPort));
    let parsed: LeafInfo = serde_json::from_slice(
        br#"{"server_id":"N","version":"2.14.0","proto":3,"headers":true,"max_payload":1048576,"client_id":5,"nonce":"x","compression":"s2_auto","info_on_connect":true,"leafnode_urls":["127.0.0.1:17423"],"unknown":{"a":1}}"#,
    )
    .unwrap();
    assert_eq!(parsed.leafnode_urls, Some(vec!["127.0.0.1:17423".to_string()]));
}

#[test]
fn accepting_side_refuses_clients_and_same_cluster() {
    assert_eq!(check_connect(br#"{"lang":"python","verbose":false}"#, None), Err(ConnectRefusal::ClientOnLeafPort));
    assert_eq!(check_connect(br#"{"cluster":"c1"}"#, Some("c1")), Err(ConnectRefusal::SameCluster));
    assert_eq!(check_connect(b"{", None), Err(ConnectRefusal::BadJson));
    let c = check_connect(
        br#"{"name":"spoke","headers":true,"compress_mode":"off","remote_account":"$G","user":"u","pass":"p"}"#,
        None,
    )
    .unwrap();
    assert_eq!((c.user.as_deref(), c.pass.as_deref(), c.headers), (Some("u"), Some("p"), true));
}

#[test]
fn urls_rotate_through_configured_and_gossiped_then_back_off() {
    let u = LeafUrl::parse("nats-leaf://a:b@127.0.0.1:7001").unwrap();
    assert_eq!((u.scheme, u.port, u.user.as_deref(), u.pass.as_deref()), (Scheme::Plain, 7001, Some("a"), Some("b")));
    assert_eq!(LeafUrl::parse("tls://tok@h").unwrap().user.as_deref(), Some("tok"));
    assert_eq!(LeafUrl::parse("wss://h").unwrap().port, 443);
    assert_eq!(LeafUrl::parse("h:9").unwrap().port, 9);
    assert!(matches!(LeafUrl::parse("http://h"), Err(UrlError::Scheme(_))));
    assert_eq!(LeafUrl::parse("nats://h:x"), Err(UrlError::Port));
    let mut r = Remotes::new(vec![u.clone()], 100, 1000);
    r.gossip(&["127.0.0.1:7001".to_string(), "127.0.0.1:7002".to_string()]);
    let dial = |a: Attempt| match a {
        Attempt::Dial(u) => u.port,
        Attempt::Wait(_) => 0,
    };
    assert_eq!(dial(r.next_attempt(0.0)), 7001);
    let second = r.next_attempt(0.0);
    assert_eq!(dial(second.clone()), 7002);
    let Attempt::Dial(g) = second else { panic!() };
    assert_eq!(g.user.as_deref(), Some("a"), "gossiped URLs keep the remote's credentials");
    assert_eq!(r.next_attempt(0.0), Attempt::Wait(50));
    assert_eq!(dial(r.next_attempt(0.0)), 7001);
    assert_eq!(dial(r.next_attempt(0.0)), 7002);
    assert_eq!(r.next_attempt(0.0), Attempt::Wait(100));
    r.connected();
    assert_eq!(dial(r.next_attempt(0.0)), 7001);
    assert_eq!(dial(r.next_attempt(0.0)), 7002);
    assert_eq!(r.next_attempt(0.0), Attempt::Wait(50), "a connection resets the backoff");
}

#[test]
fn loop_detection_subject() {
    let mut rng = fastrand::Rng::with_seed(1);
    let a = lds_subject(&mut rng);
    let b2 = lds_subject(&mut rng);
    assert!(a.starts_with("$LDS.") && a.len() == 27 && a != b2);
    assert!(is_own_loop(a.as_bytes(), a.as_bytes()));
    assert!(!is_own_loop(a.as_bytes(), b2.as_bytes()));
}

#[test]
fn jetstream_api_never_crosses() {
    for s in ["$JS.API.STREAM.INFO.x", "$JS.API.>", "$KV.b.k", "$OBJ.o.>"] {
        assert!(js_denied(s.as_bytes()), "{s}");
    }
    for s in [">", "$JS.>", "$JS.ACK.s.c.1", "orders.new", "$JSC.x"] {
        assert!(!js_denied(s.as_bytes()), "{s}");
    }
}

#[test]
fn a_message_for_many_queue_groups_and_any_case() {
    let ops = parse_all(b"lmsg s | a b c d e f g h i j 1\r\nx\r\nls+ s q 7\r\n", 3);
    let LeafOp::Msg(m) = &ops[0] else { panic!() };
    assert_eq!(m.queues.len(), 10);
    assert_eq!(ops[1], LeafOp::Sub { subject: b("s"), queue: Some((b("q"), 7)) });
}

#[test]
fn creds_files_are_read_by_block_order() {
    let text = "-----BEGIN NATS USER JWT-----\neyJ0.abc.def\n------END NATS USER JWT------\n\n\
************************* IMPORTANT *************************\nNKEY Seed printed below\n\n\
-----BEGIN USER NKEY SEED-----\nSUAB\n------END USER NKEY SEED------\n\n*************\n";
    let c = parse_creds(text).unwrap();
    assert_eq!((c.jwt.as_str(), c.seed.as_str()), ("eyJ0.abc.def", "SUAB"));
    assert!(!format!("{c:?}").contains("SUAB"));
    assert_eq!(parse_creds("-----BEGIN NATS USER JWT-----\nabc\n------END------\n"), Err(CredsError::NoSeed));
    assert_eq!(parse_creds("nothing here"), Err(CredsError::NoJwt));
}

mod perms {
    use super::super::{LeafViolation, LinkPermissions, SubjectPermission};
    use crate::policy::permissions::{PermissionsConfig, SubjectRule};
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::vec::Vec;

    fn rule(allow: &[&str], deny: &[&str]) -> Option<SubjectRule> {
        let strings = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        Some(SubjectRule { allow: Some(strings(allow)), deny: strings(deny) })
    }

    /// The user may publish `up.>` but not `up.secret`, and receive `down.>` but not
    /// `down.secret`.
    fn user() -> PermissionsConfig {
        PermissionsConfig {
            publish: rule(&["up.>"], &["up.secret"]),
            subscribe: rule(&["down.>"], &["down.secret"]),
            response: None,
        }
    }

    #[test]
    fn the_hub_maps_a_users_rules_onto_the_link() {
        let p = LinkPermissions::accepted(&user()).unwrap();
        // our interest is announced where the leaf may publish
        assert!(p.announces(b"up.x"));
        assert!(!p.announces(b"up.secret"));
        assert!(!p.announces(b"down.x"));
        // a wildcard wider than what the leaf may publish still carries `up.>`
        assert!(p.announces(b">"));
        assert!(p.announces(b"$LDS.abc"));
        // our messages go where the leaf may subscribe
        assert!(p.delivers(b"down.x"));
        assert!(!p.delivers(b"down.secret"));
        assert!(!p.delivers(b"up.x"));
        // the leaf's messages enter where it may publish; anything else closes the link
        assert_eq!(p.admit(b"up.x", None, 0), Ok(true));
        assert_eq!(p.admit(b"up.secret", None, 0), Err(LeafViolation::Publish("up.secret".into())));
        assert_eq!(p.admit(b"_R_.abc.def", None, 0), Ok(true));
        assert_eq!(
            LeafViolation::Publish("up.secret".into()).text(),
            "Permissions Violation for Publish to \"up.secret\""
        );
        // the leaf's interest: a literal it may never receive closes the link, a wildcard stays
        assert_eq!(p.interest(b"down.x"), Ok(true));
        assert_eq!(p.interest(b"other"), Err(LeafViolation::Subscription("other".into())));
        assert_eq!(p.interest(b"other.>"), Ok(true));
        let (import, export) = p.info();
        assert_eq!(
            import,
            Some(SubjectPermission {
                allow: Some(vec!["down.>".to_string()]),
                deny: Some(vec!["down.secret".to_string()])
            })
        );
        assert_eq!(export.unwrap().allow, Some(vec!["up.>".to_string()]));
    }

    #[test]
    fn the_soliciting_side_enforces_what_the_hub_told_it() {
        let hub = LinkPermissions::accepted(&user()).unwrap();
        let (import, export) = hub.info();
        let p = LinkPermissions::solicited(&import, &export).unwrap().unwrap();
        // we announce interest the hub may send us, and send what we may publish
        assert!(p.announces(b"down.x"));
        assert!(!p.announces(b"down.secret"));
        assert!(!p.announces(b"up.x"));
        assert!(p.delivers(b"up.x"));
        assert!(!p.delivers(b"up.secret"));
        // what the hub should not have sent is dropped, never a violation here
        assert_eq!(p.admit(b"up.x", None, 0), Ok(false));
        assert_eq!(p.admit(b"down.x", None, 0), Ok(true));
        assert_eq!(p.interest(b"down.x"), Ok(false));
        assert!(LinkPermissions::solicited(&None, &None).unwrap().is_none());
    }

    #[test]
    fn allow_responses_lets_granted_answers_in_and_nothing_else() {
        use crate::policy::permissions::{ReplyGrants, ResponseRule};
        let responder = PermissionsConfig {
            publish: None,
            subscribe: rule(&["svc.>"], &[]),
            response: Some(ResponseRule { max_msgs: 1, expires_ns: 1_000 }),
        };
        let p = LinkPermissions::accepted(&responder).unwrap();
        let mut grants = ReplyGrants::new(p.response().unwrap());
        // the leaf may send nothing of its own, and none of our interest is announced
        assert_eq!(p.admit(b"other", Some(&mut grants), 0), Err(LeafViolation::Publish("other".into())));
        assert!(!p.announces(b"_INBOX.x") && !p.announces(b">") && p.announces(b"$LDS.abc"));
        // a request delivered to it grants one answer on its reply subject, for a while
        grants.record(b"_INBOX.a", 10);
        assert_eq!(p.admit(b"_INBOX.a", Some(&mut grants), 20), Ok(true));
        assert!(p.admit(b"_INBOX.a", Some(&mut grants), 30).is_err());
        grants.record(b"_INBOX.b", 10);
        assert!(p.admit(b"_INBOX.b", Some(&mut grants), 2_000).is_err(), "expired");
        // the INFO says the user's publish allows nothing, as nats-server's `"export":{}`
        let (_, export) = p.info();
        assert_eq!(serde_json::to_string(&export).unwrap(), "{}");
    }

    #[test]
    fn an_empty_subscribe_allow_list_sends_everything_as_in_nats_server() {
        let user = PermissionsConfig { publish: None, subscribe: rule(&[], &[]), response: None };
        let p = LinkPermissions::accepted(&user).unwrap();
        assert!(p.delivers(b"any.thing"));
        assert_eq!(p.admit(b"any.thing", None, 0), Ok(true));
    }
}
