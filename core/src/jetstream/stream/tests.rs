#![allow(clippy::unwrap_used)]
use super::*;
use crate::jetstream::store::MemStore;
use alloc::boxed::Box;

fn stream(json: &str) -> Stream {
    let mut c: StreamConfig = crate::json::typed::from_slice(json.as_bytes()).unwrap();
    c.normalize().unwrap();
    Stream::new(c, 1, Box::new(MemStore::new()))
}

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

#[test]
fn limits_discard_old_and_per_subject() {
    let mut s = stream(r#"{"name":"L","subjects":["l.>"],"max_msgs":3,"max_msgs_per_subject":2}"#);
    for i in 0..5u64 {
        s.publish(T0 + i, b"l.a", None, b"x").unwrap();
    }
    assert_eq!((s.msgs(), s.first_seq(), s.last_seq()), (2, 4, 5));
    s.publish(T0, b"l.b", None, b"x").unwrap();
    s.publish(T0, b"l.c", None, b"x").unwrap();
    assert_eq!((s.msgs(), s.first_seq()), (3, 5));
}

#[test]
fn discard_new_errors() {
    let mut s = stream(r#"{"name":"N","subjects":["n"],"max_msgs":1,"discard":"new"}"#);
    s.publish(T0, b"n", None, b"x").unwrap();
    let e = s.publish(T0, b"n", None, b"x").unwrap_err();
    assert_eq!((e.code, e.err_code, &*e.description), (503, 10077, "maximum messages exceeded"));
}

#[test]
fn dedup_window_and_expected_headers() {
    let mut s = stream(r#"{"name":"D","subjects":["d.*"],"duplicate_window":2000000000}"#);
    let h = b"NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n";
    assert_eq!(s.publish(T0, b"d.x", Some(h), b"1").unwrap(), Stored { seq: 1, duplicate: false });
    assert_eq!(s.publish(T0 + SEC, b"d.x", Some(h), b"1").unwrap(), Stored { seq: 1, duplicate: true });
    assert_eq!(s.publish(T0 + 3 * SEC, b"d.x", Some(h), b"1").unwrap(), Stored { seq: 2, duplicate: false });
    let e = s.publish(T0, b"d.x", Some(b"NATS/1.0\r\nNats-Expected-Last-Sequence: 1\r\n\r\n"), b"").unwrap_err();
    assert_eq!(&*e.description, "wrong last sequence: 2");
    let e =
        s.publish(T0, b"d.y", Some(b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 1\r\n\r\n"), b"").unwrap_err();
    assert_eq!(&*e.description, "wrong last sequence: 0");
    s.publish(T0, b"d.y", Some(b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: 0\r\n\r\n"), b"").unwrap();
    let e = s.publish(T0, b"d.y", Some(b"NATS/1.0\r\nNats-Expected-Stream: other\r\n\r\n"), b"").unwrap_err();
    assert_eq!(e.err_code, 10060);
}

#[test]
fn max_age_expiry_with_stepped_time() {
    let mut s = stream(r#"{"name":"A","subjects":["a"],"max_age":1000000000}"#);
    s.publish(T0, b"a", None, b"1").unwrap();
    s.publish(T0 + SEC / 2, b"a", None, b"2").unwrap();
    assert_eq!(s.expire(T0 + SEC).unwrap(), alloc::vec![1]);
    assert_eq!(s.next_expiry(), Some(T0 + SEC / 2 + SEC));
    assert_eq!(s.expire(T0 + 2 * SEC).unwrap(), alloc::vec![2]);
    assert_eq!(s.next_expiry(), None);
    assert_eq!((s.msgs(), s.first_seq(), s.last_seq()), (0, 3, 2));
}

#[test]
fn per_message_ttl_and_delete_markers() {
    let mut s = stream(
        r#"{"name":"K","subjects":["k.>"],"allow_msg_ttl":true,"max_msgs_per_subject":3,"subject_delete_marker_ttl":5000000000}"#,
    );
    let e = s.publish(T0, b"k.a", Some(b"NATS/1.0\r\nNats-TTL: 500ms\r\n\r\n"), b"x").unwrap_err();
    assert_eq!(e.err_code, 10165);
    // a TTL below the marker TTL is raised to it when the bucket keeps history
    s.publish(T0, b"k.a", Some(b"NATS/1.0\r\nNats-TTL: 1\r\n\r\n"), b"v").unwrap();
    let stored = s.load(1).unwrap().unwrap();
    assert_eq!(header_value(stored.headers.as_deref().unwrap(), b"Nats-TTL"), Some(&b"5"[..]));
    s.publish(T0, b"k.b", Some(b"NATS/1.0\r\nNats-TTL: never\r\n\r\n"), b"w").unwrap();
    assert!(s.expire(T0 + 4 * SEC).unwrap().is_empty());
    assert_eq!(s.expire(T0 + 5 * SEC).unwrap(), alloc::vec![1]);
    // the key's last value went: a marker takes its place, and expires in turn
    let marker = s.load(3).unwrap().unwrap();
    assert_eq!(&marker.subject[..], b"k.a");
    let h = marker.headers.unwrap();
    assert_eq!(header_value(&h, b"Nats-Marker-Reason"), Some(&b"MaxAge"[..]));
    assert_eq!(header_value(&h, b"Nats-TTL"), Some(&b"5s"[..]));
    assert_eq!(s.next_expiry(), Some(T0 + 10 * SEC));
    assert_eq!(s.expire(T0 + 10 * SEC).unwrap(), alloc::vec![3]);
    assert_eq!(s.msgs(), 1, "no marker for a marker; the never-expiring message stays");
    let mut off = stream(r#"{"name":"O","subjects":["o"]}"#);
    let e = off.publish(T0, b"o", Some(b"NATS/1.0\r\nNats-TTL: 5s\r\n\r\n"), b"x").unwrap_err();
    assert_eq!(e.err_code, 10166);
}

#[test]
fn purge_forms_and_rollup() {
    let mut s = stream(r#"{"name":"P","subjects":["p.*"],"allow_rollup_hdrs":true}"#);
    for subj in [&b"p.a"[..], b"p.b", b"p.a", b"p.b", b"p.a"] {
        s.publish(T0, subj, None, b"x").unwrap();
    }
    assert_eq!(s.purge(Some("p.b"), None, None).unwrap(), 2);
    assert_eq!(s.purge(None, None, Some(1)).unwrap(), 2);
    assert_eq!((s.msgs(), s.first_seq()), (1, 5));
    s.publish(T0, b"p.c", None, b"x").unwrap();
    s.publish(T0, b"p.c", Some(b"NATS/1.0\r\nNats-Rollup: sub\r\n\r\n"), b"y").unwrap();
    assert_eq!(s.msgs(), 2);
    s.publish(T0, b"p.d", Some(b"NATS/1.0\r\nNats-Rollup: all\r\n\r\n"), b"z").unwrap();
    assert_eq!((s.msgs(), s.first_seq()), (1, 8));
    assert_eq!(s.purge(None, Some(100), None).unwrap(), 1);
    assert_eq!((s.first_seq(), s.last_seq()), (100, 99));
}
