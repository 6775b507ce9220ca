//! Incremental parsing of the NATS text protocol.
//!
//! One state machine serves both directions; a [`Role`] decides what a control line means
//! (`PUB` from clients, `MSG` from servers) while the framing, line limits and payload
//! handling are shared.

use alloc::format;
use alloc::string::String;
use bytes::{Buf, Bytes, BytesMut};
use core::marker::PhantomData;
use core::ops::Range;

use super::verb::{is_space, scan, Scan, Shape, Verbs};

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

/// Why a control line was refused: the error, and nats-server's words for it (the log line
/// is `<VERB> <words>: "<arguments>"`).
#[doc(hidden)]
pub type Refusal = (ParseError, &'static str);

/// Interprets control lines for one direction of the protocol.
pub trait Role {
    type Op;
    #[doc(hidden)]
    type Pending;
    /// The verbs this direction accepts, and how each continues.
    #[doc(hidden)]
    const VERBS: &'static Verbs;
    #[doc(hidden)]
    fn parse_line(
        line: &Bytes,
        verb: usize,
        args: Args,
        limits: &Limits,
    ) -> Result<Line<Self::Op, Self::Pending>, Refusal>;
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
        let mut i = start;
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        a.rest = (i, line.len());
        while i < line.len() {
            let s = i;
            while i < line.len() && !is_space(line[i]) {
                i += 1;
            }
            if a.len == a.ranges.len() {
                a.too_many = true;
                break;
            }
            a.ranges[a.len] = (s, i);
            a.len += 1;
            while i < line.len() && is_space(line[i]) {
                i += 1;
            }
        }
        a
    }
    pub(super) fn get(&self, line: &Bytes, i: usize) -> Bytes {
        let (s, e) = self.ranges[i];
        line.slice(s..e)
    }
    pub(super) fn raw<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        let (s, e) = self.ranges[i];
        &line[s..e]
    }
    pub(super) fn count(&self) -> usize {
        if self.too_many {
            usize::MAX
        } else {
            self.len
        }
    }
    pub(super) fn rest(&self, line: &Bytes) -> Bytes {
        line.slice(self.rest.0..self.rest.1)
    }
}

/// A size as nats-server reads it: one to nine digits, nothing else (so no sign and no
/// overflow; ten digits are refused as malformed, not as over the payload limit).
pub(super) fn parse_size(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    b.iter().try_fold(0usize, |n, &c| c.is_ascii_digit().then(|| n * 10 + usize::from(c - b'0')))
}

/// Reads `[reply] size` or `[reply] hsize tsize` off the end of an argument list, checking
/// the sizes against the payload limit. Shared by PUB/HPUB and MSG/HMSG.
fn sized(
    line: &Bytes,
    args: &Args,
    fixed: usize,
    with_headers: bool,
    limits: &Limits,
) -> Result<(Option<Bytes>, Option<usize>, usize), Refusal> {
    let sizes = if with_headers { 2 } else { 1 };
    let n = args.count();
    if n != fixed + sizes && n != fixed + sizes + 1 {
        return Err((ParseError::BadArguments, "Parse Error"));
    }
    let reply = (n == fixed + sizes + 1).then(|| args.get(line, fixed));
    let header = with_headers.then(|| args.raw(line, n - 2));
    let (header_len, total) = message_sizes(header, args.raw(line, n - 1), limits)?;
    Ok((reply, header_len, total))
}

/// Reads a message's header size (for the `H` verbs) and total size, checking them against
/// each other and the payload limit. Every verb that announces a message reads them so.
pub(super) fn message_sizes(
    header: Option<&[u8]>,
    total: &[u8],
    limits: &Limits,
) -> Result<(Option<usize>, usize), Refusal> {
    let header_len = match header {
        Some(h) => {
            let h = parse_size(h).ok_or((ParseError::BadArguments, "Bad or Missing Header Size"))?;
            let total = parse_size(total).ok_or((ParseError::BadArguments, "Bad or Missing Total Size"))?;
            if h > total {
                return Err((ParseError::BadArguments, "Header Size larger then TotalSize"));
            }
            // a zero-length header block is delivered as a plain message
            (h > 0).then_some(h)
        }
        None => None,
    };
    let total = parse_size(total).ok_or((ParseError::BadArguments, "Bad or Missing Size"))?;
    if total > limits.max_payload {
        return Err((ParseError::MaxPayload, "maximum payload exceeded"));
    }
    Ok((header_len, total))
}

/// The verbs a client may send; [`ClientRole::parse_line`] indexes this table.
const CLIENT_VERBS: &Verbs = &[
    (b"PUB", Shape::Spaced),
    (b"HPUB", Shape::Spaced),
    (b"SUB", Shape::Spaced),
    (b"UNSUB", Shape::Spaced),
    (b"PING", Shape::Bare),
    (b"PONG", Shape::Bare),
    (b"CONNECT", Shape::Attached),
    (b"INFO", Shape::Attached),
    (b"+OK", Shape::Bare),
    (b"-ERR", Shape::Spaced),
];

/// `INFO` from a client is ignored once it reads as a JSON object (or `null`), as Go's
/// decoder into a struct accepts it; anything else ends the connection.
fn struct_json(b: &[u8]) -> bool {
    match b.iter().find(|c| !c.is_ascii_whitespace()) {
        Some(b'{') => super::too_deep(b).is_none() && crate::json::is_valid(&alloc::string::String::from_utf8_lossy(b)),
        Some(b'n') => b.trim_ascii() == b"null",
        _ => false,
    }
}

impl Role for ClientRole {
    type Op = ClientOp;
    type Pending = (Bytes, Option<Bytes>, Option<usize>);
    const VERBS: &'static Verbs = CLIENT_VERBS;

    fn parse_line(
        line: &Bytes,
        verb: usize,
        args: Args,
        limits: &Limits,
    ) -> Result<Line<ClientOp, Self::Pending>, Refusal> {
        let op = match verb {
            0 | 1 => {
                let (reply, header_len, total) = sized(line, &args, 1, verb == 1, limits)?;
                return Ok(Line::Payload((args.get(line, 0), reply, header_len), total));
            }
            2 => match args.count() {
                2 => ClientOp::Sub { subject: args.get(line, 0), queue: None, sid: args.get(line, 1) },
                3 => {
                    ClientOp::Sub { subject: args.get(line, 0), queue: Some(args.get(line, 1)), sid: args.get(line, 2) }
                }
                _ => return Err((ParseError::BadArguments, "Parse Error")),
            },
            // nats-server reads an unreadable maximum as "none": the sid goes at once
            3 => match args.count() {
                1 => ClientOp::Unsub { sid: args.get(line, 0), max: None },
                2 => ClientOp::Unsub { sid: args.get(line, 0), max: parse_size(args.raw(line, 1)).map(|m| m as u64) },
                _ => return Err((ParseError::BadArguments, "Parse Error")),
            },
            4 => ClientOp::Ping,
            5 => ClientOp::Pong,
            6 => ClientOp::Connect(args.rest(line)),
            7 if struct_json(&args.rest(line)) => ClientOp::Ignored,
            7 => return Err((ParseError::BadArguments, "not a JSON object")),
            8 => ClientOp::Ignored,
            _ => ClientOp::Err(args.rest(line)),
        };
        Ok(Line::Done(op))
    }

    fn complete((subject, reply, header_len): Self::Pending, message: Bytes) -> ClientOp {
        ClientOp::Pub(Publish { subject, reply, header_len, message })
    }
}

const SERVER_VERBS: &Verbs = &[
    (b"MSG", Shape::Spaced),
    (b"HMSG", Shape::Spaced),
    (b"PING", Shape::Bare),
    (b"PONG", Shape::Bare),
    (b"+OK", Shape::Bare),
    (b"-ERR", Shape::Spaced),
    (b"INFO", Shape::Attached),
];

impl Role for ServerRole {
    type Op = ServerOp;
    type Pending = (Bytes, Bytes, Option<Bytes>, Option<usize>);
    const VERBS: &'static Verbs = SERVER_VERBS;

    fn parse_line(
        line: &Bytes,
        verb: usize,
        args: Args,
        limits: &Limits,
    ) -> Result<Line<ServerOp, Self::Pending>, Refusal> {
        let op = match verb {
            0 | 1 => {
                let (reply, header_len, total) = sized(line, &args, 2, verb == 1, limits)?;
                return Ok(Line::Payload((args.get(line, 0), args.get(line, 1), reply, header_len), total));
            }
            2 => ServerOp::Ping,
            3 => ServerOp::Pong,
            4 => ServerOp::Ok,
            5 => ServerOp::Err(args.rest(line)),
            _ => ServerOp::Info(args.rest(line)),
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
    /// What the last error was about, for the host's log.
    report: Option<String>,
    _role: PhantomData<R>,
}

/// Longest piece of the offending input quoted in an error report.
const SNIPPET: usize = 32;

/// The input quoted as `{:?}` quotes a string for ASCII and control characters (`\"`, `\\`,
/// `\n`, `\u{1b}`); other characters are kept as they are. Written out rather than `{:?}`:
/// in the page's module that links the standard library's Unicode escaping tables for a log
/// line.
fn snippet(b: &[u8], max: usize) -> String {
    let cut = String::from_utf8_lossy(&b[..b.len().min(max)]);
    let mut out = String::with_capacity(cut.len() + 5);
    out.push('"');
    for c in cut.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    if b.len() > max {
        out.push_str("...");
    }
    out
}

/// Appends `c` as `{:?}` writes it inside a string (`quote` `"`) or a char (`'`), for ASCII
/// and control characters; other characters as they are.
fn push_escaped(out: &mut String, c: char, quote: char) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_control() => {
            let n = c as usize;
            out.push_str("\\u{");
            if n >= 16 {
                out.push(char::from(HEX[(n >> 4) & 15]));
            }
            out.push(char::from(HEX[n & 15]));
            out.push('}');
        }
        c => out.push(c),
    }
}

impl<R: Role> Parser<R> {
    pub fn new(limits: Limits) -> Self {
        Parser {
            buf: BytesMut::with_capacity(8192),
            limits,
            pending: None,
            scanned: 0,
            report: None,
            _role: PhantomData,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Enforces `limits` from the next control line on (a reload changed them); a message
    /// already announced keeps the size it was accepted with.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
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

    /// Why the last [`Parser::poll_op`] failed, worded for a log line (nats-server logs one
    /// for every parser error): the verb, the reason and the offending bytes, quoted.
    pub fn error_report(&self) -> Option<&str> {
        self.report.as_deref()
    }

    /// The next complete operation, `Ok(None)` when more bytes are needed. After an error the
    /// stream is unusable; the connection must be closed.
    pub fn poll_op(&mut self) -> Result<Option<R::Op>, ParseError> {
        self.next_op().map_err(|(e, report)| {
            self.report = Some(report);
            e
        })
    }

    fn unknown(&self, at: usize) -> (ParseError, String) {
        let rest = self.buf.get(at..).unwrap_or_default();
        (
            ParseError::UnknownOperation,
            format!("parser ERROR, Unknown Protocol Operation: proto={}", snippet(rest, SNIPPET)),
        )
    }

    fn next_op(&mut self) -> Result<Option<R::Op>, (ParseError, String)> {
        if let Some((_, size)) = &self.pending {
            let size = *size;
            let have = self.buf.len();
            // each byte after the payload is checked as it arrives, as nats-server does
            let tail = &self.buf[size.min(have)..have.min(size + 2)];
            if tail != &b"\r\n"[..tail.len()] {
                return Err(self.unknown(size));
            }
            if have < size + 2 {
                return Ok(None);
            }
            let message = self.buf.split_to(size).freeze();
            self.buf.advance(2);
            let Some((pending, _)) = self.pending.take() else {
                return Ok(None);
            };
            return Ok(Some(R::complete(pending, message)));
        }
        let (index, len, shape) = match scan(R::VERBS, &self.buf) {
            Scan::Need => return Ok(None),
            Scan::Bad => return Err(self.unknown(0)),
            Scan::Verb { index, len, shape } => (index, len, shape),
        };
        if shape == Shape::Bare {
            // PING, PONG, +OK: nats-server drops what follows the verb up to the newline,
            // however long, so it is not kept here either
            let from = self.scanned.max(len).min(self.buf.len());
            let Some(i) = memchr::memchr(b'\n', &self.buf[from..]) else {
                self.buf.truncate(len);
                self.scanned = len;
                return Ok(None);
            };
            self.buf.advance(from + i + 1);
            self.scanned = 0;
            return self.line(Bytes::new(), index, 0);
        }
        let mut arg_start = len;
        while arg_start < self.buf.len() && is_space(self.buf[arg_start]) {
            arg_start += 1;
        }
        if arg_start == self.buf.len() {
            // only separators so far: nats-server skips any number of them without keeping them
            self.buf.truncate(self.buf.len().min(len + 1));
            self.scanned = 0;
            return Ok(None);
        }
        // Look for the end of the control line, but never further than the limit allows.
        let mcl = self.limits.max_control_line;
        let end = self.buf.len().min(arg_start + mcl + 2);
        let from = self.scanned.max(arg_start).min(end);
        let Some(i) = memchr::memchr(b'\n', &self.buf[from..end]) else {
            let held = self.buf.len() - arg_start;
            if held > mcl + 1 || (held == mcl + 1 && self.buf.last() != Some(&b'\r')) {
                let why = format!("maximum control line exceeded: max_control_line {mcl}, buffer len {held}");
                return Err((ParseError::MaxControlLine, why));
            }
            self.scanned = self.buf.len();
            return Ok(None);
        };
        let nl = from + i;
        self.scanned = 0;
        let line = self.buf.split_to(nl + 1).freeze();
        let body_end = if nl > 0 && line[nl - 1] == b'\r' { nl - 1 } else { nl };
        if body_end.saturating_sub(arg_start) > mcl {
            let why =
                format!("maximum control line exceeded: max_control_line {mcl}, buffer len {}", body_end - arg_start);
            return Err((ParseError::MaxControlLine, why));
        }
        self.line(line.slice(..body_end), index, arg_start)
    }

    /// Interprets a whole control line whose verb is `R::VERBS[index]`.
    fn line(&mut self, line: Bytes, index: usize, arg_start: usize) -> Result<Option<R::Op>, (ParseError, String)> {
        let args = Args::split(&line, arg_start);
        match R::parse_line(&line, index, args, &self.limits) {
            Ok(Line::Done(op)) => Ok(Some(op)),
            Ok(Line::Payload(pending, size)) => {
                self.pending = Some((pending, size));
                self.next_op()
            }
            Err((e, why)) => {
                let verb = String::from_utf8_lossy(R::VERBS[index].0);
                let arg = line.get(arg_start..).unwrap_or_default();
                Err((e, format!("{verb} {why}: {}", snippet(arg, 4 * SNIPPET))))
            }
        }
    }
}

impl<R: Role> Parser<R> {
    /// The next operation if it is a well-formed `<verb> subject [reply] size` (the verb in
    /// upper case with its space, no headers, no queue groups) that has arrived whole.
    /// `None` means "use [`Parser::poll_op`]", which handles everything else, every error
    /// included; both read the same bytes the same way.
    fn peek_plain(&self, verb: &[u8]) -> Option<PubSpan> {
        if self.pending.is_some() {
            return None;
        }
        let b = &self.buf[..];
        if b.len() < verb.len() || &b[..verb.len()] != verb {
            return None;
        }
        let limit = b.len().min(self.limits.max_control_line + 2);
        let nl = memchr::memchr(b'\n', &b[verb.len()..limit])? + verb.len();
        // a bare LF, or a line over the limit, takes the general path
        if b[nl - 1] != b'\r' || nl - 1 > self.limits.max_control_line {
            return None;
        }
        let line = &b[..nl - 1];
        // the same argument rules as the general path
        let args = Args::split(line, verb.len() - 1);
        let n = args.count();
        if n != 2 && n != 3 {
            return None;
        }
        let size = parse_size(args.raw(line, n - 1))?;
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

    /// Drops an operation found by [`Parser::peek_pub`] or [`Parser::peek_lmsg`].
    pub fn consume(&mut self, span: &PubSpan) {
        self.buf.advance(span.len);
        self.scanned = 0;
    }
}

impl Parser<ClientRole> {
    /// The next operation if it is a well-formed `PUB` (upper case, without headers) that
    /// has arrived whole (see [`Parser::peek_plain`]).
    pub fn peek_pub(&self) -> Option<PubSpan> {
        self.peek_plain(b"PUB ")
    }
}

impl Parser<super::leaf::LeafRole> {
    /// The next operation if it is a well-formed `LMSG` for plain subscribers (no queue
    /// groups, no headers: `LMSG subject [reply] size`) that has arrived whole, the bulk of
    /// what a hub sends a leaf (see [`Parser::peek_plain`]).
    pub fn peek_lmsg(&self) -> Option<PubSpan> {
        self.peek_plain(b"LMSG ")
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
