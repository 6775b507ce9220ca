//! Nothing a client sends can make the core recurse without bound: every JSON handler, the
//! header parser and the protocol parser take absurdly nested or absurdly long input on a
//! thread with a small stack and answer it (or refuse it) without overflowing.

#![allow(clippy::unwrap_used)]

use edgebus_core::jetstream::store::MemStorage;
use edgebus_core::jetstream::JetStream;
use edgebus_core::proto::{fields, Headers, Limits};
use edgebus_core::session::{Event, Session, SessionConfig};

const T0: u64 = 1_800_000_000_000_000_000;

/// Runs `f` on a thread whose stack is far smaller than a tokio worker's, so recursion per
/// nesting level fails here rather than only in production.
fn small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(256 * 1024).spawn(f).unwrap().join().unwrap();
}

fn deep_bodies() -> Vec<Vec<u8>> {
    let n = 100_000;
    vec![
        "[".repeat(n).into_bytes(),
        "{".repeat(n).into_bytes(),
        format!("{{\"config\":{}", "{\"a\":".repeat(n)).into_bytes(),
        format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes(),
        format!("{{\"stream_name\":\"S\",\"config\":{{\"name\":\"C\",\"x\":{}1{}}}}}", "[".repeat(n), "]".repeat(n))
            .into_bytes(),
    ]
}

#[test]
fn every_api_handler_answers_deeply_nested_json() {
    small_stack(|| {
        let (mut js, _) = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 1);
        let yes = |_: &[u8]| true;
        js.handle_msg(
            T0,
            b"$JS.API.STREAM.CREATE.S",
            Some(b"_INBOX.r"),
            None,
            br#"{"name":"S","subjects":["s.>"]}"#,
            &yes,
        );
        js.handle_msg(
            T0,
            b"$JS.API.CONSUMER.CREATE.S.C",
            Some(b"_INBOX.r"),
            None,
            br#"{"stream_name":"S","config":{"name":"C","ack_policy":"explicit"}}"#,
            &yes,
        );
        js.handle_msg(T0, b"s.a", None, None, b"x", &yes);
        js.take_outbound();
        let subjects = [
            "$JS.API.INFO",
            "$JS.API.STREAM.CREATE.S2",
            "$JS.API.STREAM.UPDATE.S",
            "$JS.API.STREAM.INFO.S",
            "$JS.API.STREAM.NAMES",
            "$JS.API.STREAM.LIST",
            "$JS.API.STREAM.PURGE.S",
            "$JS.API.STREAM.MSG.GET.S",
            "$JS.API.STREAM.MSG.DELETE.S",
            "$JS.API.DIRECT.GET.S",
            "$JS.API.CONSUMER.CREATE.S.D",
            "$JS.API.CONSUMER.CREATE.S",
            "$JS.API.CONSUMER.DURABLE.CREATE.S.D",
            "$JS.API.CONSUMER.INFO.S.C",
            "$JS.API.CONSUMER.NAMES.S",
            "$JS.API.CONSUMER.LIST.S",
            "$JS.API.CONSUMER.MSG.NEXT.S.C",
        ];
        for body in deep_bodies() {
            for s in subjects {
                js.handle_msg(T0, s.as_bytes(), Some(b"_INBOX.r"), None, &body, &yes);
                let out = js.take_outbound();
                assert!(out.iter().any(|o| &o.route[..] == b"_INBOX.r"), "{s} answered");
            }
            // a publish whose payload is deep JSON is just bytes; an ack's NAK delay is JSON
            js.handle_msg(T0, b"s.b", Some(b"_INBOX.r"), None, &body, &yes);
            let mut nak = b"-NAK ".to_vec();
            nak.extend_from_slice(&body);
            js.handle_msg(T0, b"$JS.ACK.S.C.1.1.1.0.0", None, None, &nak, &yes);
            js.take_outbound();
        }
    });
}

#[test]
fn connect_with_deeply_nested_json_is_refused_not_overflowed() {
    small_stack(|| {
        for body in deep_bodies() {
            let limits = Limits { max_control_line: 1 << 20, ..Limits::default() };
            let mut s = Session::new(SessionConfig { limits, auth_required: false });
            s.buffer_mut().extend_from_slice(b"CONNECT ");
            s.buffer_mut().extend_from_slice(&body);
            s.buffer_mut().extend_from_slice(b"\r\nINFO ");
            s.buffer_mut().extend_from_slice(&body);
            s.buffer_mut().extend_from_slice(b"\r\n");
            let mut closed = false;
            while let Some(e) = s.poll_event() {
                closed |= matches!(e, Event::Close(_));
            }
            assert!(closed);
        }
    });
}

#[test]
fn a_header_block_of_a_million_lines_parses_iteratively() {
    small_stack(|| {
        let mut block = b"NATS/1.0\r\n".to_vec();
        for i in 0..1_000_000 {
            block.extend_from_slice(format!("K{}: v\r\n", i % 7).as_bytes());
        }
        block.extend_from_slice(b"\r\n");
        assert_eq!(fields(&block).count(), 1_000_000);
        let h = Headers::parse(&block).unwrap();
        assert_eq!(h.get_all("K3").count(), 142_857);
        // folded continuation lines, the one place a header parser is tempted to recurse
        let mut folded = b"NATS/1.0\r\nK: a\r\n".to_vec();
        for _ in 0..1_000_000 {
            folded.extend_from_slice(b" b\r\n");
        }
        folded.extend_from_slice(b"\r\n");
        let _ = Headers::parse(&folded);
    });
}
