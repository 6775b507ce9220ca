//! The protocol parser fed the same bytes whole and in random pieces: every split must give
//! the same operations and the same error, through the general path and the in-place `PUB`
//! path alike; the session on top must not panic.

use arbitrary::Unstructured;
use edgebus_core::proto::{ClientOp, ClientOpParser, Limits, ParseError, Publish};
use edgebus_core::session::{Session, SessionConfig};

pub(super) const DICT: &[&[u8]] = &[
    b"PUB ",
    b"HPUB ",
    b"SUB ",
    b"UNSUB ",
    b"PING",
    b"PONG",
    b"CONNECT ",
    b"INFO ",
    b"+OK",
    b"-ERR ",
    b"pub ",
    b"foo",
    b"foo.bar",
    b"*",
    b">",
    b" 0",
    b" 5",
    b" 12",
    b" 1048577",
    b" -1",
    b"1099511627776",
    b"NATS/1.0\r\n\r\n",
    b"NATS/1.0 503\r\n",
    b"{}",
    b"null",
    b"[]",
    b"{\"verbose\":false,\"headers\":true}",
    b"\t",
    b"  ",
    b"\r",
    b"\n",
    b"hello",
];

/// Small limits, so inputs of a few KiB reach them.
const LIMITS: Limits = Limits { max_control_line: 64, max_payload: 256 };

type Outcome = (Vec<ClientOp>, Option<ParseError>);

/// Parses `pieces` in order; `peek` also takes plain `PUB`s through the in-place path.
fn parse<'a>(pieces: impl Iterator<Item = &'a [u8]>, peek: bool) -> Outcome {
    let mut p = ClientOpParser::new(LIMITS);
    let mut ops = Vec::new();
    for piece in pieces {
        p.extend(piece);
        loop {
            if peek {
                if let Some(span) = p.peek_pub() {
                    let b = p.peeked();
                    ops.push(ClientOp::Pub(Publish {
                        subject: bytes::Bytes::copy_from_slice(&b[span.subject.clone()]),
                        reply: span.reply.clone().map(|r| bytes::Bytes::copy_from_slice(&b[r])),
                        header_len: None,
                        message: bytes::Bytes::copy_from_slice(&b[span.payload.clone()]),
                    }));
                    p.consume(&span);
                    continue;
                }
            }
            match p.poll_op() {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => break,
                Err(e) => {
                    assert!(p.error_report().is_some(), "an error without a report");
                    return (ops, Some(e));
                }
            }
        }
    }
    (ops, None)
}

pub(super) fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let split_seed: u64 = u.arbitrary().unwrap_or(0);
    let stream = u.take_rest();
    let whole = parse(std::iter::once(stream), false);
    // cut points from the seed: 1 to 16 bytes per piece
    let mut cuts = Vec::new();
    let (mut at, mut s) = (0usize, split_seed | 1);
    while at < stream.len() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = 1 + (s % 16) as usize;
        cuts.push(&stream[at..(at + n).min(stream.len())]);
        at += n;
    }
    assert_eq!(parse(cuts.iter().copied(), false), whole, "split parse differs from whole");
    assert_eq!(parse(cuts.iter().copied(), true), whole, "in-place PUB path differs");
    assert_eq!(parse(stream.chunks(1), false), whole, "byte-by-byte parse differs");
    for auth_required in [false, true] {
        let mut session = Session::new(SessionConfig { limits: LIMITS, auth_required });
        for piece in &cuts {
            session.buffer_mut().extend_from_slice(piece);
            while session.poll_event().is_some() {}
        }
    }
}
