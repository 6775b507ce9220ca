//! The leaf port's protocol on the wire: an incremental parser of what a peer sends and the
//! encoders of what we send. Any split of the byte stream parses the same.

use alloc::vec::Vec;
use bytes::{Buf, Bytes, BytesMut};

/// One operation from a leaf peer.
#[derive(Debug, Clone, PartialEq)]
pub enum LeafOp {
    /// The JSON body of `INFO`.
    Info(Bytes),
    /// The JSON body of `CONNECT`.
    Connect(Bytes),
    Ping,
    Pong,
    Ok,
    /// The text of `-ERR`, quotes removed.
    Err(Bytes),
    /// `LS+ subject [queue weight]`.
    Sub {
        subject: Bytes,
        queue: Option<(Bytes, u32)>,
    },
    /// `LS- subject [queue]`.
    Unsub {
        subject: Bytes,
        queue: Option<Bytes>,
    },
    /// `LMSG`, a leaf `HMSG`, or a plain `PUB`/`HPUB` (tolerated from a leaf, as the
    /// reference server does).
    Msg(LeafMsg),
}

/// A message crossing the link.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafMsg {
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    /// The queue groups on the receiving side that get one copy each (plain subscribers get
    /// it anyway).
    pub queues: Vec<Bytes>,
    /// Length of the header block at the start of `message`, for `HMSG`.
    pub header_len: Option<usize>,
    /// Headers and payload.
    pub message: Bytes,
}

impl LeafMsg {
    pub fn payload(&self) -> &[u8] {
        &self.message[self.header_len.unwrap_or(0).min(self.message.len())..]
    }
}

/// Why the stream cannot be read any further; the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafParseError {
    /// A verb this port does not know (the text is nats-server's `Unknown Protocol Operation`).
    UnknownOperation,
    /// A control line longer than the limit.
    ControlLineTooLong,
    /// Arguments that do not fit the verb.
    BadArguments,
    /// A message larger than the limit.
    PayloadTooLarge,
}

/// The incremental parser of one leaf connection.
pub struct LeafParser {
    buf: BytesMut,
    max_line: usize,
    max_payload: usize,
}

impl LeafParser {
    pub fn new(max_line: usize, max_payload: usize) -> Self {
        LeafParser { buf: BytesMut::with_capacity(4096), max_line, max_payload }
    }

    /// Where the host reads into.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete operation, `None` when more bytes are needed.
    pub fn poll_op(&mut self) -> Result<Option<LeafOp>, LeafParseError> {
        let Some(eol) = memchr::memmem::find(&self.buf, b"\r\n") else {
            if self.buf.len() > self.max_line {
                return Err(LeafParseError::ControlLineTooLong);
            }
            return Ok(None);
        };
        if eol > self.max_line {
            return Err(LeafParseError::ControlLineTooLong);
        }
        let line = &self.buf[..eol];
        let (verb, rest) = split_verb(line);
        let mut upper = [0u8; 8];
        let n = verb.len().min(8);
        for (u, c) in upper.iter_mut().zip(&verb[..n]) {
            *u = c.to_ascii_uppercase();
        }
        let verb = &upper[..n];
        let op = match verb {
            b"LMSG" | b"HMSG" | b"PUB" | b"HPUB" => return self.message(verb == b"HMSG" || verb == b"HPUB", eol),
            b"PING" => LeafOp::Ping,
            b"PONG" => LeafOp::Pong,
            b"+OK" => LeafOp::Ok,
            b"-ERR" => LeafOp::Err(self.slice(rest).map(|b| trim_quotes(&b)).unwrap_or_default()),
            b"INFO" => LeafOp::Info(self.slice(rest).unwrap_or_default()),
            b"CONNECT" => LeafOp::Connect(self.slice(rest).unwrap_or_default()),
            b"LS+" => {
                let a: Vec<&[u8]> = tokens(rest).collect();
                match a.as_slice() {
                    [s] => LeafOp::Sub { subject: self.copy(s), queue: None },
                    [s, q] => LeafOp::Sub { subject: self.copy(s), queue: Some((self.copy(q), 1)) },
                    [s, q, w] => {
                        let w = parse_u64(w).ok_or(LeafParseError::BadArguments)?;
                        LeafOp::Sub {
                            subject: self.copy(s),
                            queue: Some((self.copy(q), w.min(u64::from(u32::MAX)) as u32)),
                        }
                    }
                    _ => return Err(LeafParseError::BadArguments),
                }
            }
            b"LS-" => {
                let a: Vec<&[u8]> = tokens(rest).collect();
                match a.as_slice() {
                    [s] => LeafOp::Unsub { subject: self.copy(s), queue: None },
                    [s, q, ..] => LeafOp::Unsub { subject: self.copy(s), queue: Some(self.copy(q)) },
                    _ => return Err(LeafParseError::BadArguments),
                }
            }
            _ => return Err(LeafParseError::UnknownOperation),
        };
        self.buf.advance(eol + 2);
        Ok(Some(op))
    }

    fn slice(&self, part: &[u8]) -> Option<Bytes> {
        let t = trim(part);
        (!t.is_empty()).then(|| Bytes::copy_from_slice(t))
    }

    fn copy(&self, s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    /// `LMSG subject [reply | + reply q… | | q…] size` (and `HMSG` with `hdr total`).
    fn message(&mut self, headers: bool, eol: usize) -> Result<Option<LeafOp>, LeafParseError> {
        let line = &self.buf[..eol];
        let (_, rest) = split_verb(line);
        let a: Vec<&[u8]> = tokens(rest).collect();
        let sizes = if headers { 2 } else { 1 };
        if a.len() < 1 + sizes {
            return Err(LeafParseError::BadArguments);
        }
        let (names, nums) = a.split_at(a.len() - sizes);
        let total = parse_u64(nums[sizes - 1]).ok_or(LeafParseError::BadArguments)? as usize;
        let header_len = if headers {
            let h = parse_u64(nums[0]).ok_or(LeafParseError::BadArguments)? as usize;
            if h > total {
                return Err(LeafParseError::BadArguments);
            }
            Some(h)
        } else {
            None
        };
        if total > self.max_payload {
            return Err(LeafParseError::PayloadTooLarge);
        }
        let subject = Bytes::copy_from_slice(names[0]);
        let (reply, queues) = match &names[1..] {
            [] => (None, Vec::new()),
            [r] => (Some(Bytes::copy_from_slice(r)), Vec::new()),
            [b"+", r, qs @ ..] if !qs.is_empty() => {
                (Some(Bytes::copy_from_slice(r)), qs.iter().map(|q| Bytes::copy_from_slice(q)).collect())
            }
            [b"|", qs @ ..] if !qs.is_empty() => (None, qs.iter().map(|q| Bytes::copy_from_slice(q)).collect()),
            _ => return Err(LeafParseError::BadArguments),
        };
        if self.buf.len() < eol + 2 + total + 2 {
            return Ok(None);
        }
        self.buf.advance(eol + 2);
        let message = self.buf.split_to(total).freeze();
        self.buf.advance(2);
        Ok(Some(LeafOp::Msg(LeafMsg { subject, reply, queues, header_len, message })))
    }
}

fn split_verb(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|c| *c == b' ' || *c == b'\t') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &[]),
    }
}

fn tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|c| *c == b' ' || *c == b'\t').filter(|t| !t.is_empty())
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn trim_quotes(b: &Bytes) -> Bytes {
    let s = b.strip_prefix(b"'").unwrap_or(b);
    let s = s.strip_suffix(b"'").unwrap_or(s);
    Bytes::copy_from_slice(s)
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |n, c| c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0')))
}

/// `LS+ subject`, `LS+ subject queue weight` or `LS- subject [queue]`, per
/// [`crate::leaf::Change`].
pub fn write_interest(out: &mut BytesMut, change: &crate::leaf::Change) {
    use crate::leaf::Change;
    match change {
        Change::Add { subject, queue } => {
            out.extend_from_slice(b"LS+ ");
            out.extend_from_slice(subject);
            if let Some((q, w)) = queue {
                out.extend_from_slice(b" ");
                out.extend_from_slice(q);
                out.extend_from_slice(b" ");
                out.extend_from_slice(itoa::Buffer::new().format(*w).as_bytes());
            }
        }
        Change::Remove { subject, queue } => {
            out.extend_from_slice(b"LS- ");
            out.extend_from_slice(subject);
            if let Some(q) = queue {
                out.extend_from_slice(b" ");
                out.extend_from_slice(q);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// One message to a leaf peer: `LMSG` (or `HMSG` with headers) with the reply and the queue
/// groups it is for. Headers are dropped for a peer that did not declare `headers`.
pub fn write_lmsg(
    out: &mut BytesMut,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[&[u8]],
    header_len: Option<usize>,
    message: &[u8],
    peer_headers: bool,
) {
    let (header_len, message) = match header_len {
        Some(h) if !peer_headers => (None, &message[h.min(message.len())..]),
        h => (h, message),
    };
    out.extend_from_slice(if header_len.is_some() { b"HMSG " } else { b"LMSG " });
    out.extend_from_slice(subject);
    match (reply, queues.is_empty()) {
        (Some(r), true) => {
            out.extend_from_slice(b" ");
            out.extend_from_slice(r);
        }
        (Some(r), false) => {
            out.extend_from_slice(b" + ");
            out.extend_from_slice(r);
        }
        (None, false) => out.extend_from_slice(b" |"),
        (None, true) => {}
    }
    for q in queues {
        out.extend_from_slice(b" ");
        out.extend_from_slice(q);
    }
    let mut num = itoa::Buffer::new();
    if let Some(h) = header_len {
        out.extend_from_slice(b" ");
        out.extend_from_slice(num.format(h).as_bytes());
    }
    out.extend_from_slice(b" ");
    out.extend_from_slice(num.format(message.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(message);
    out.extend_from_slice(b"\r\n");
}
