//! The parser's unit tests, kept apart so the parser itself stays readable.
#![allow(clippy::unwrap_used)]
use super::*;
use alloc::vec::Vec;

fn all_client(input: &[u8], chunk: usize) -> Result<Vec<ClientOp>, ParseError> {
    let mut p = Parser::<ClientRole>::new(Limits::default());
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        p.extend(piece);
        while let Some(op) = p.poll_op()? {
            out.push(op);
        }
    }
    Ok(out)
}

const STREAM: &[u8] =
    b"CONNECT {\"verbose\":false, \"name\":\"a b\"}\r\nPING\r\nsub foo 1\r\nSUB svc  2\r\nSUB a\tq 3\r\n\
PUB foo 5\r\nhello\r\nPUB foo  0\r\n\r\nPUB foo bar 3\r\nabc\r\nHPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
HPUB njs.a r 0 2\r\nm0\r\nUNSUB 1 10\r\nUNSUB 2\r\nPONG\n+OK\r\nINFO {}\r\n";

#[test]
fn every_split_point_parses_the_same() {
    let whole = all_client(STREAM, STREAM.len()).unwrap();
    assert_eq!(whole.len(), 15);
    for chunk in 1..STREAM.len() {
        assert_eq!(all_client(STREAM, chunk).unwrap(), whole, "chunk size {chunk}");
    }
    for cut in 1..STREAM.len() {
        let mut p = Parser::<ClientRole>::new(Limits::default());
        let mut out = Vec::new();
        for piece in [&STREAM[..cut], &STREAM[cut..]] {
            p.extend(piece);
            while let Some(op) = p.poll_op().unwrap() {
                out.push(op);
            }
        }
        assert_eq!(out, whole, "cut at {cut}");
    }
}

#[test]
fn parsed_fields() {
    let ops = all_client(STREAM, STREAM.len()).unwrap();
    assert_eq!(ops[0], ClientOp::Connect(Bytes::from_static(b"{\"verbose\":false, \"name\":\"a b\"}")));
    assert_eq!(ops[3], ClientOp::Sub { subject: "svc".into(), queue: None, sid: "2".into() });
    assert_eq!(ops[4], ClientOp::Sub { subject: "a".into(), queue: Some("q".into()), sid: "3".into() });
    let ClientOp::Pub(p) = &ops[7] else { panic!() };
    assert_eq!((p.reply.as_deref(), p.payload()), (Some(&b"bar"[..]), &b"abc"[..]));
    let ClientOp::Pub(p) = &ops[8] else { panic!() };
    assert_eq!((p.headers(), p.payload()), (Some(&b"NATS/1.0\r\n\r\n"[..]), &b"hi"[..]));
    let ClientOp::Pub(p) = &ops[9] else { panic!() };
    assert_eq!(p.header_len, None);
    assert_eq!(ops[10], ClientOp::Unsub { sid: "1".into(), max: Some(10) });
}

/// The fast path agrees with the general one on every well-formed PUB and declines
/// everything else, at every split point of a mixed stream.
#[test]
fn peek_pub_matches_poll_op() {
    let general = all_client(STREAM, STREAM.len()).unwrap();
    for chunk in 1..=STREAM.len() {
        let mut p = Parser::<ClientRole>::new(Limits::default());
        let mut out = Vec::new();
        for piece in STREAM.chunks(chunk) {
            p.extend(piece);
            loop {
                if let Some(span) = p.peek_pub() {
                    let b = p.peeked();
                    out.push(ClientOp::Pub(Publish {
                        subject: Bytes::copy_from_slice(&b[span.subject.clone()]),
                        reply: span.reply.clone().map(|r| Bytes::copy_from_slice(&b[r])),
                        header_len: None,
                        message: Bytes::copy_from_slice(&b[span.payload.clone()]),
                    }));
                    p.consume(&span);
                    continue;
                }
                match p.poll_op().unwrap() {
                    Some(op) => out.push(op),
                    None => break,
                }
            }
        }
        assert_eq!(out, general, "chunk size {chunk}");
    }
    let declined = |s: &[u8]| {
        let mut p = Parser::<ClientRole>::new(Limits::default());
        p.extend(s);
        p.peek_pub().is_none()
    };
    assert!(declined(b"PUB foo 2\r\nhello\r\n"));
    assert!(declined(b"PUB foo 1048577\r\n"));
    assert!(declined(b"PUB foo a b 1\r\nx\r\n"));
    assert!(declined(b"PUB foo\r\n"));
    assert!(declined(b"pub foo 1\r\nx\r\n"));
    assert!(declined(b"PUB foo 1\nx\r\n"));
    assert!(!declined(b"PUB foo\t r  1\r\nx\r\n"));
}

#[test]
fn errors() {
    let e = |s: &[u8]| all_client(s, s.len()).unwrap_err();
    assert_eq!(e(b"FOO BAR\r\n"), ParseError::UnknownOperation);
    assert_eq!(e(b"MSG a 1 2\r\nhi\r\n"), ParseError::UnknownOperation);
    assert_eq!(e(b"PUB foo 2\r\nhello\r\n"), ParseError::UnknownOperation);
    assert_eq!(e(b"PUB foo\r\n"), ParseError::BadArguments);
    assert_eq!(e(b"PUB foo abc\r\n"), ParseError::BadArguments);
    assert_eq!(e(b"SUB foo\r\n"), ParseError::BadArguments);
    assert_eq!(e(b"SUB foo q 1 x\r\n"), ParseError::BadArguments);
    assert_eq!(e(b"HPUB foo 12 5\r\n"), ParseError::BadArguments);
    assert_eq!(e(b"UNSUB\r\n"), ParseError::UnknownOperation);
    assert_eq!(e(b"PUB foo 1048577\r\n"), ParseError::MaxPayload);
    assert_eq!(e(b"PUB foo 99999999999999999999999\r\n"), ParseError::BadArguments);
    let mut long = Vec::from(&b"PUB "[..]);
    long.extend(core::iter::repeat_n(b'a', 5000));
    assert_eq!(all_client(&long, 100).unwrap_err(), ParseError::MaxControlLine);
    long.extend_from_slice(b" 1\r\n");
    assert_eq!(e(&long), ParseError::MaxControlLine);
}

#[test]
fn server_ops() {
    let input = b"INFO {\"a\":1} \r\nMSG foo 1 5\r\nhello\r\nMSG foo 1 r 0\r\n\r\nHMSG foo 2 43 43\r\nNATS/1.0 503\r\nNats-Subject: nobody.home\r\n\r\n\r\nPING\r\n+OK\r\n-ERR 'x y'\r\n";
    let mut p = Parser::<ServerRole>::new(Limits::default());
    p.extend(input);
    let mut ops = Vec::new();
    while let Some(op) = p.poll_op().unwrap() {
        ops.push(op);
    }
    assert_eq!(ops.len(), 7);
    let ServerOp::Msg(m) = &ops[3] else { panic!() };
    assert_eq!((m.sid.as_ref(), m.header_len, m.payload()), (&b"2"[..], Some(43), &b""[..]));
    assert_eq!(ops[6], ServerOp::Err(Bytes::from_static(b"'x y'")));
}

/// nats-server decides on the verb byte by byte: garbage is refused before any newline.
#[test]
fn impossible_verb_is_refused_at_its_first_bad_byte() {
    let mut p = Parser::<ClientRole>::new(Limits::default());
    for b in b"SUB" {
        p.extend(&[*b]);
        assert_eq!(p.poll_op(), Ok(None));
    }
    p.extend(b"S");
    assert_eq!(p.poll_op(), Err(ParseError::UnknownOperation));
    assert!(p.error_report().unwrap().contains("Unknown Protocol Operation"));
    for bad in
        [&b"PUB\r\n"[..], b"SUB\r\n", b"UNSUB\r\n", b"HPUB\r\n", b"-ERR\r\n", b"\r\n", b" PING\r\n", b"HMSG a 1 2\r\n"]
    {
        let mut p = Parser::<ClientRole>::new(Limits::default());
        p.extend(bad);
        assert_eq!(p.poll_op(), Err(ParseError::UnknownOperation), "{:?}", core::str::from_utf8(bad));
    }
    // a huge line of garbage is answered at once, not as an over-long line
    let mut p = Parser::<ClientRole>::new(Limits::default());
    p.extend(&[b'A'; 100_000]);
    assert_eq!(p.poll_op(), Err(ParseError::UnknownOperation));
}

#[test]
fn bare_verbs_ignore_what_follows_without_keeping_it() {
    let mut p = Parser::<ClientRole>::new(Limits::default());
    p.extend(b"PINGxyz\r\nPONG foo\r\n+OKjunk\r\n");
    assert_eq!(p.poll_op(), Ok(Some(ClientOp::Ping)));
    assert_eq!(p.poll_op(), Ok(Some(ClientOp::Pong)));
    assert_eq!(p.poll_op(), Ok(Some(ClientOp::Ignored)));
    for _ in 0..100 {
        p.extend(b"PING");
        p.extend(&[b'x'; 10_000]);
        assert_eq!(p.poll_op(), Ok(None));
        assert!(p.buffered() <= 4, "nothing past the verb is kept");
        p.extend(b"\r\n");
        assert_eq!(p.poll_op(), Ok(Some(ClientOp::Ping)));
    }
    // separators between verb and argument are not kept either
    p.extend(b"SUB");
    for _ in 0..1000 {
        p.extend(&[b' '; 100]);
        assert_eq!(p.poll_op(), Ok(None));
    }
    assert!(p.buffered() <= 4);
    p.extend(b"a 1\r\n");
    assert!(matches!(p.poll_op(), Ok(Some(ClientOp::Sub { .. }))));
}

#[test]
fn sizes_and_arguments_as_nats_server_reads_them() {
    let e = |s: &[u8]| {
        let mut p = Parser::<ClientRole>::new(Limits::default());
        p.extend(s);
        let r = p.poll_op().unwrap_err();
        (r, alloc::string::String::from(p.error_report().unwrap()))
    };
    // ten digits are malformed, nine over the limit are a payload violation
    assert_eq!(e(b"PUB foo 1099511627776\r\n").0, ParseError::BadArguments);
    assert_eq!(e(b"PUB foo 999999999\r\n").0, ParseError::MaxPayload);
    assert_eq!(e(b"PUB foo -1\r\n"), (ParseError::BadArguments, "PUB Bad or Missing Size: \"foo -1\"".into()));
    assert_eq!(e(b"PUB foo +1\r\n").0, ParseError::BadArguments);
    assert_eq!(e(b"HPUB foo -1 5\r\n").1, "HPUB Bad or Missing Header Size: \"foo -1 5\"");
    assert_eq!(e(b"HPUB foo 1 1099511627776\r\n").1, "HPUB Bad or Missing Total Size: \"foo 1 1099511627776\"");
    assert_eq!(e(b"HPUB foo 12 5\r\n").1, "HPUB Header Size larger then TotalSize: \"foo 12 5\"");
    assert_eq!(e(b"UNSUB 1 2 3\r\n").1, "UNSUB Parse Error: \"1 2 3\"");
    assert_eq!(e(b"INFO garbage\r\n").0, ParseError::BadArguments);
    assert_eq!(e(b"PUB foo 1\r\nxy").0, ParseError::UnknownOperation);
    let ok = |s: &[u8]| {
        let mut p = Parser::<ClientRole>::new(Limits::default());
        p.extend(s);
        p.poll_op().unwrap().unwrap()
    };
    assert_eq!(ok(b"UNSUB abc\r\n"), ClientOp::Unsub { sid: "abc".into(), max: None });
    assert_eq!(ok(b"UNSUB 1 -5\r\n"), ClientOp::Unsub { sid: "1".into(), max: None });
    assert_eq!(ok(b"UNSUB\t1 x\r\n"), ClientOp::Unsub { sid: "1".into(), max: None });
    assert_eq!(ok(b"CONNECT{}\r\n"), ClientOp::Connect("{}".into()));
    assert_eq!(ok(b"INFO {}\r\n"), ClientOp::Ignored);
    assert_eq!(ok(b"INFO null\r\n"), ClientOp::Ignored);
    // the limit is on the argument, as nats-server measures it
    let mut line = Vec::from(&b"SUB "[..]);
    line.extend(core::iter::repeat_n(b'a', 4094));
    line.extend_from_slice(b" 1\r\n");
    assert!(matches!(ok(&line), ClientOp::Sub { .. }));
}

/// The error reports quote input as `{:?}` would for every ASCII byte (the page's build
/// writes the quoting out instead of linking `Debug`), and mark a cut with `...`.
#[test]
fn snippet_quotes_ascii_as_debug_does() {
    let all: Vec<u8> = (0u8..128).collect();
    for piece in all.chunks(7) {
        let text = core::str::from_utf8(piece).unwrap();
        assert_eq!(snippet(piece, 64), alloc::format!("{text:?}"));
    }
    assert_eq!(snippet(b"caf\xc3\xa9 ok", 64), "\"caf\u{e9} ok\"");
    assert_eq!(snippet(b"abcdef", 3), "\"abc\"...");
    for b in 0u8..=0x9f {
        let (c, mut one) = (char::from(b), String::new());
        push_escaped(&mut one, c, '\'');
        assert_eq!(alloc::format!("'{one}'"), alloc::format!("{c:?}"));
    }
}
