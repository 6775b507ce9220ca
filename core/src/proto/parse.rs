//! Incremental parsing of the NATS text protocol.
//!
//! One state machine serves both directions; a [`Role`] decides what a control line means
//! (`PUB` from clients, `MSG` from servers) while the framing, line limits and payload
//! handling are shared.

use bytes::{Buf, Bytes, BytesMut};
use core::marker::PhantomData;
use core::ops::Range;

/// Size limits the parser enforces before it buffers anything large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest control line accepted (nats-server `max_control_line`, default 4096).
    pub max_control_line: usize,
    /// Largest message (headers + payload) accepted (`max_payload`, default 1 MiB).
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_control_line: 4096, max_payload: 1024 * 1024 }
    }
}

/// Why the byte stream could not be parsed. Every one ends the connection; the session maps
/// them onto the `-ERR` (or the silence) nats-server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// An unknown verb, a payload not followed by CRLF, an op not allowed in this direction.
    UnknownOperation,
    /// A control line longer than [`Limits::max_control_line`].
    MaxControlLine,
    /// A declared size above [`Limits::max_payload`].
    MaxPayload,
    /// Wrong number of arguments, a non-numeric size, header size above total size.
    BadArguments,
}

/// A message published by a client (`PUB` / `HPUB`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    /// Length of the header block at the front of `message`; `None` for `PUB` (and for `HPUB`
    /// with a zero header size, which nats-server delivers as a plain `MSG`).
    pub header_len: Option<usize>,
    /// Header block followed by the payload.
    pub message: Bytes,
}

impl Publish {
    pub fn headers(&self) -> Option<&[u8]> {
        self.header_len.map(|h| &self.message[..h])
    }
    pub fn payload(&self) -> &[u8] {
        &self.message[self.header_len.unwrap_or(0)..]
    }
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// The raw JSON of `CONNECT`; see [`super::ConnectOptions`].
    Connect(Bytes),
    Pub(Publish),
    Sub {
        subject: Bytes,
        queue: Option<Bytes>,
        sid: Bytes,
    },
    Unsub {
        sid: Bytes,
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// `INFO` and `+OK` from a client are accepted and ignored.
    Ignored,
    /// `-ERR` from a client: nats-server closes the connection.
    Err(Bytes),
}

/// A message delivered by a server (`MSG` / `HMSG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: Bytes,
    pub sid: Bytes,
    pub reply: Option<Bytes>,
    pub header_len: Option<usize>,
    pub message: Bytes,
}

impl Message {
    pub fn headers(&self) -> Option<&[u8]> {
        self.header_len.map(|h| &self.message[..h])
    }
    pub fn payload(&self) -> &[u8] {
        &self.message[self.header_len.unwrap_or(0)..]
    }
}

/// What a server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    Info(Bytes),
    Msg(Message),
    Ping,
    Pong,
    Ok,
    Err(Bytes),
}

/// What a control line turned out to be.
#[doc(hidden)]
pub enum Line<Op, Pending> {
    Done(Op),
    /// The line announced `size` bytes of message that must follow (plus CRLF).
    Payload(Pending, usize),
}

/// Interprets control lines for one direction of the protocol.
pub trait Role {
    type Op;
    #[doc(hidden)]
    type Pending;
    #[doc(hidden)]
    fn parse_line(
        line: &Bytes,
        verb: &[u8],
        args: Args,
        limits: &Limits,
    ) -> Result<Line<Self::Op, Self::Pending>, ParseError>;
    #[doc(hidden)]
    fn complete(pending: Self::Pending, message: Bytes) -> Self::Op;
}

/// Parses what clients send (a server's view).
pub struct ClientRole;
/// Parses what servers send (a client's view).
pub struct ServerRole;

/// Up to eight whitespace-separated arguments of a control line, as ranges into the line.
#[doc(hidden)]
pub struct Args {
    ranges: [(usize, usize); 8],
    len: usize,
    /// The rest of the line after the verb, for `CONNECT` / `INFO` / `-ERR` whose argument
    /// may contain spaces.
    rest: (usize, usize),
    too_many: bool,
}

impl Args {
    fn split(line: &[u8], start: usize) -> Args {
        let mut a = Args { ranges: [(0, 0); 8], len: 0, rest: (start, line.len()), too_many: false };
        let is_ws = |b: u8| b == b' ' || b == b'\t';
        let mut i = start;
        while i < line.len() && is_ws(line[i]) {
            i += 1;
        }
        a.rest = (i, line.len());
        while i < line.len() {
            let s = i;
            while i < line.len() && !is_ws(line[i]) {
                i += 1;
            }
            if a.len == a.ranges.len() {
                a.too_many = true;
                break;
            }
            a.ranges[a.len] = (s, i);
            a.len += 1;
            while i < line.len() && is_ws(line[i]) {
                i += 1;
            }
        }
        a
    }
    fn get(&self, line: &Bytes, i: usize) -> Bytes {
        let (s, e) = self.ranges[i];
        line.slice(s..e)
    }
    fn raw<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        let (s, e) = self.ranges[i];
        &line[s..e]
    }
    fn count(&self) -> usize {
        if self.too_many {
            usize::MAX
        } else {
            self.len
        }
    }
    fn rest(&self, line: &Bytes) -> Bytes {
        line.slice(self.rest.0..self.rest.1)
    }
}

/// A strict decimal size: digits only, no sign, no overflow.
fn parse_size(b: &[u8]) -> Result<usize, ParseError> {
    if b.is_empty() || b.len() > 18 {
        return Err(ParseError::BadArguments);
    }
    let mut n: usize = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return Err(ParseError::BadArguments);
        }
        n = n * 10 + usize::from(c - b'0');
    }
    Ok(n)
}

/// Reads `[reply] size` or `[reply] hsize tsize` off the end of an argument list, checking
/// the sizes against the payload limit. Shared by PUB/HPUB and MSG/HMSG.
fn sized(
    line: &Bytes,
    args: &Args,
    fixed: usize,
    with_headers: bool,
    limits: &Limits,
) -> Result<(Option<Bytes>, Option<usize>, usize), ParseError> {
    let sizes = if with_headers { 2 } else { 1 };
    let n = args.count();
    if n != fixed + sizes && n != fixed + sizes + 1 {
        return Err(ParseError::BadArguments);
    }
    let reply = (n == fixed + sizes + 1).then(|| args.get(line, fixed));
    let total = parse_size(args.raw(line, n - 1))?;
    let header_len = if with_headers {
        let h = parse_size(args.raw(line, n - 2))?;
        if h > total {
            return Err(ParseError::BadArguments);
        }
        // a zero-length header block is delivered as a plain message
        (h > 0).then_some(h)
    } else {
        None
    };
    if total > limits.max_payload {
        return Err(ParseError::MaxPayload);
    }
    Ok((reply, header_len, total))
}

impl Role for ClientRole {
    type Op = ClientOp;
    type Pending = (Bytes, Option<Bytes>, Option<usize>);

    fn parse_line(
        line: &Bytes,
        verb: &[u8],
        args: Args,
        limits: &Limits,
    ) -> Result<Line<ClientOp, Self::Pending>, ParseError> {
        let is = |v: &[u8]| verb.eq_ignore_ascii_case(v);
        if is(b"PUB") || is(b"HPUB") {
            let (reply, header_len, total) = sized(line, &args, 1, is(b"HPUB"), limits)?;
            return Ok(Line::Payload((args.get(line, 0), reply, header_len), total));
        }
        let op = if is(b"PING") {
            ClientOp::Ping
        } else if is(b"PONG") {
            ClientOp::Pong
        } else if is(b"SUB") {
            match args.count() {
                2 => ClientOp::Sub { subject: args.get(line, 0), queue: None, sid: args.get(line, 1) },
                3 => {
                    ClientOp::Sub { subject: args.get(line, 0), queue: Some(args.get(line, 1)), sid: args.get(line, 2) }
                }
                _ => return Err(ParseError::BadArguments),
            }
        } else if is(b"UNSUB") {
            match args.count() {
                1 => ClientOp::Unsub { sid: args.get(line, 0), max: None },
                2 => {
                    let max = parse_size(args.raw(line, 1))? as u64;
                    ClientOp::Unsub { sid: args.get(line, 0), max: Some(max) }
                }
                0 => return Err(ParseError::UnknownOperation),
                _ => return Err(ParseError::BadArguments),
            }
        } else if is(b"CONNECT") {
            ClientOp::Connect(args.rest(line))
        } else if is(b"INFO") || is(b"+OK") {
            ClientOp::Ignored
        } else if is(b"-ERR") {
            ClientOp::Err(args.rest(line))
        } else {
            return Err(ParseError::UnknownOperation);
        };
        Ok(Line::Done(op))
    }

    fn complete((subject, reply, header_len): Self::Pending, message: Bytes) -> ClientOp {
        ClientOp::Pub(Publish { subject, reply, header_len, message })
    }
}

impl Role for ServerRole {
    type Op = ServerOp;
    type Pending = (Bytes, Bytes, Option<Bytes>, Option<usize>);

    fn parse_line(
        line: &Bytes,
        verb: &[u8],
        args: Args,
        limits: &Limits,
    ) -> Result<Line<ServerOp, Self::Pending>, ParseError> {
        let is = |v: &[u8]| verb.eq_ignore_ascii_case(v);
        if is(b"MSG") || is(b"HMSG") {
            let (reply, header_len, total) = sized(line, &args, 2, is(b"HMSG"), limits)?;
            return Ok(Line::Payload((args.get(line, 0), args.get(line, 1), reply, header_len), total));
        }
        let op = if is(b"PING") {
            ServerOp::Ping
        } else if is(b"PONG") {
            ServerOp::Pong
        } else if is(b"+OK") {
            ServerOp::Ok
        } else if is(b"-ERR") {
            ServerOp::Err(args.rest(line))
        } else if is(b"INFO") {
            ServerOp::Info(args.rest(line))
        } else {
            return Err(ParseError::UnknownOperation);
        };
        Ok(Line::Done(op))
    }

    fn complete((subject, sid, reply, header_len): Self::Pending, message: Bytes) -> ServerOp {
        ServerOp::Msg(Message { subject, sid, reply, header_len, message })
    }
}

/// A plain `PUB` that has arrived whole at the front of the read buffer, as ranges into
/// [`Parser::peeked`]. It lets a server route the commonest operation in place: no
/// reference-counted slices, no op enum moved around, then [`Parser::consume`] drops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSpan {
    pub subject: Range<usize>,
    pub reply: Option<Range<usize>>,
    pub payload: Range<usize>,
    /// Bytes the whole operation takes, the payload's CRLF included.
    pub len: usize,
}

/// The incremental parser. Feed bytes into [`Parser::buffer_mut`], then call
/// [`Parser::poll_op`] until it returns `Ok(None)` (more bytes needed).
pub struct Parser<R: Role> {
    buf: BytesMut,
    limits: Limits,
    /// A control line announced a message of this many bytes; waiting for it and its CRLF.
    pending: Option<(R::Pending, usize)>,
    /// How far the current line has been searched for its end, so a line arriving byte by
    /// byte is not rescanned from the start each time.
    scanned: usize,
    _role: PhantomData<R>,
}

impl<R: Role> Parser<R> {
    pub fn new(limits: Limits) -> Self {
        Parser { buf: BytesMut::with_capacity(8192), limits, pending: None, scanned: 0, _role: PhantomData }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The read buffer: append received bytes here (e.g. `read_buf(parser.buffer_mut())`).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends bytes (for hosts that receive owned chunks, like WebSocket frames).
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet parsed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete operation, `Ok(None)` when more bytes are needed. After an error the
    /// stream is unusable; the connection must be closed.
    pub fn poll_op(&mut self) -> Result<Option<R::Op>, ParseError> {
        if let Some((_, size)) = &self.pending {
            let size = *size;
            if self.buf.len() < size + 2 {
                return Ok(None);
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(ParseError::UnknownOperation);
            }
            let message = self.buf.split_to(size).freeze();
            self.buf.advance(2);
            let Some((pending, _)) = self.pending.take() else {
                return Ok(None);
            };
            return Ok(Some(R::complete(pending, message)));
        }
        // Look for the end of the control line, but never further than the limit allows.
        let limit = self.limits.max_control_line + 2;
        let end = self.buf.len().min(limit);
        let found = memchr::memchr(b'\n', &self.buf[self.scanned.min(end)..end]).map(|i| i + self.scanned);
        let Some(nl) = found else {
            if self.buf.len() >= limit {
                return Err(ParseError::MaxControlLine);
            }
            self.scanned = self.buf.len();
            return Ok(None);
        };
        self.scanned = 0;
        let line = self.buf.split_to(nl + 1).freeze();
        let body_end = if nl > 0 && line[nl - 1] == b'\r' { nl - 1 } else { nl };
        if body_end > self.limits.max_control_line {
            return Err(ParseError::MaxControlLine);
        }
        let line = line.slice(..body_end);
        let verb_end = line.iter().position(|b| *b == b' ' || *b == b'\t').unwrap_or(line.len());
        if verb_end == 0 {
            return Err(ParseError::UnknownOperation);
        }
        let args = Args::split(&line, verb_end);
        match R::parse_line(&line, &line[..verb_end], args, &self.limits)? {
            Line::Done(op) => Ok(Some(op)),
            Line::Payload(pending, size) => {
                self.pending = Some((pending, size));
                self.poll_op()
            }
        }
    }
}

impl Parser<ClientRole> {
    /// The next operation if it is a well-formed `PUB` (upper case, without headers) that
    /// has arrived whole. `None` means "use [`Parser::poll_op`]", which handles everything
    /// else, every error included; both read the same bytes the same way.
    pub fn peek_pub(&self) -> Option<PubSpan> {
        if self.pending.is_some() {
            return None;
        }
        let b = &self.buf[..];
        if b.len() < 4 || &b[..4] != b"PUB " {
            return None;
        }
        let limit = b.len().min(self.limits.max_control_line + 2);
        let nl = memchr::memchr(b'\n', &b[4..limit])? + 4;
        // a bare LF, or a line over the limit, takes the general path
        if b[nl - 1] != b'\r' || nl - 1 > self.limits.max_control_line {
            return None;
        }
        let line = &b[..nl - 1];
        // the same argument rules as the general path
        let args = Args::split(line, 3);
        let n = args.count();
        if n != 2 && n != 3 {
            return None;
        }
        let size = parse_size(args.raw(line, n - 1)).ok()?;
        if size > self.limits.max_payload {
            return None;
        }
        let payload = nl + 1..nl + 1 + size;
        if b.len() < payload.end + 2 || &b[payload.end..payload.end + 2] != b"\r\n" {
            return None;
        }
        let range = |i: usize| args.ranges[i].0..args.ranges[i].1;
        Some(PubSpan { subject: range(0), reply: (n == 3).then(|| range(1)), len: payload.end + 2, payload })
    }

    /// The unparsed bytes a [`PubSpan`] points into.
    pub fn peeked(&self) -> &[u8] {
        &self.buf
    }

    /// Drops an operation found by [`Parser::peek_pub`].
    pub fn consume(&mut self, span: &PubSpan) {
        self.buf.advance(span.len);
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
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
}
