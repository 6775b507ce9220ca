//! The leaf port's direction of the protocol: what a leaf peer (hub or leaf) sends, read by
//! the shared [`Parser`](super::Parser) so its framing, limits and error reports are the
//! client port's.

use alloc::vec::Vec;
use bytes::Bytes;

use super::parse::{message_sizes, parse_size, Args, Limits, Line, ParseError, Refusal, Role};
use super::verb::{is_space, Shape, Verbs};

/// One operation from a leaf peer.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `LS+ subject [queue [weight]]`.
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Parses what a leaf peer sends.
pub struct LeafRole;

/// The verbs of the leaf port; [`LeafRole::parse_line`] indexes this table.
const LEAF_VERBS: &Verbs = &[
    (b"LMSG", Shape::Spaced),
    (b"HMSG", Shape::Spaced),
    (b"PUB", Shape::Spaced),
    (b"HPUB", Shape::Spaced),
    (b"LS+", Shape::Spaced),
    (b"LS-", Shape::Spaced),
    (b"PING", Shape::Bare),
    (b"PONG", Shape::Bare),
    (b"+OK", Shape::Bare),
    (b"-ERR", Shape::Spaced),
    (b"INFO", Shape::Attached),
    (b"CONNECT", Shape::Attached),
];

/// A message's routing part before its bytes arrive.
pub struct PendingMsg {
    subject: Bytes,
    reply: Option<Bytes>,
    queues: Vec<Bytes>,
    header_len: Option<usize>,
}

fn bad() -> Refusal {
    (ParseError::BadArguments, "Parse Error")
}

/// `subject [reply | + reply q… | | q…] [hsize] size`: any number of queue names, so the
/// arguments are split here rather than by [`Args`] (which holds eight).
fn message_line(
    line: &Bytes,
    args: &Args,
    with_headers: bool,
    limits: &Limits,
) -> Result<Line<LeafOp, PendingMsg>, Refusal> {
    let n = args.count();
    if n == usize::MAX {
        // more words than `Args` holds: a message for many queue groups
        return message_line_long(&args.rest(line), with_headers, limits);
    }
    let sizes = if with_headers { 2 } else { 1 };
    if n < 1 + sizes {
        return Err(bad());
    }
    // The common case reads the words where they are: no list of them, and only the ones
    // kept become `Bytes` (each costs a reference count on the read buffer).
    let names = n - sizes;
    let (header_len, total) =
        message_sizes(with_headers.then(|| args.raw(line, n - 2)), args.raw(line, n - 1), limits)?;
    let queues_from = |first: usize| (first..names).map(|i| args.get(line, i)).collect::<Vec<Bytes>>();
    let (reply, queues) = match names {
        1 => (None, Vec::new()),
        2 => (Some(args.get(line, 1)), Vec::new()),
        _ if args.raw(line, 1) == b"+" && names > 3 => (Some(args.get(line, 2)), queues_from(3)),
        _ if args.raw(line, 1) == b"|" => (None, queues_from(2)),
        _ => return Err(bad()),
    };
    Ok(Line::Payload(PendingMsg { subject: args.get(line, 0), reply, queues, header_len }, total))
}

/// [`message_line`] for a line of more words than [`Args`] holds.
fn message_line_long(rest: &Bytes, with_headers: bool, limits: &Limits) -> Result<Line<LeafOp, PendingMsg>, Refusal> {
    let words: Vec<Bytes> = rest.split(|c| is_space(*c)).filter(|w| !w.is_empty()).map(|w| rest.slice_ref(w)).collect();
    let sizes = if with_headers { 2 } else { 1 };
    if words.len() < 1 + sizes {
        return Err(bad());
    }
    let (names, nums) = words.split_at(words.len() - sizes);
    let (header_len, total) = message_sizes(with_headers.then(|| &nums[0][..]), &nums[sizes - 1], limits)?;
    let (reply, queues) = match &names[1..] {
        [] => (None, Vec::new()),
        [r] => (Some(r.clone()), Vec::new()),
        [plus, r, qs @ ..] if &plus[..] == b"+" && !qs.is_empty() => (Some(r.clone()), qs.to_vec()),
        [bar, qs @ ..] if &bar[..] == b"|" && !qs.is_empty() => (None, qs.to_vec()),
        _ => return Err(bad()),
    };
    let pending = PendingMsg { subject: names[0].clone(), reply, queues, header_len };
    Ok(Line::Payload(pending, total))
}

fn without_quotes(b: Bytes) -> Bytes {
    let start = usize::from(b.first() == Some(&b'\''));
    let end = b.len() - usize::from(b.len() > start && b.last() == Some(&b'\''));
    b.slice(start..end)
}

fn trimmed(b: Bytes) -> Bytes {
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(0, |e| e + 1);
    b.slice(..end)
}

impl Role for LeafRole {
    type Op = LeafOp;
    type Pending = PendingMsg;
    const VERBS: &'static Verbs = LEAF_VERBS;

    fn parse_line(line: &Bytes, verb: usize, args: Args, limits: &Limits) -> Result<Line<LeafOp, PendingMsg>, Refusal> {
        let op = match verb {
            0..=3 => return message_line(line, &args, verb == 1 || verb == 3, limits),
            4 => {
                let subject = args.get(line, 0);
                match args.count() {
                    0 => return Err(bad()),
                    1 => LeafOp::Sub { subject, queue: None },
                    2 => LeafOp::Sub { subject, queue: Some((args.get(line, 1), 1)) },
                    3 => {
                        let w =
                            parse_size(args.raw(line, 2)).ok_or((ParseError::BadArguments, "invalid queue weight"))?;
                        let w = u32::try_from(w).map_err(|_| (ParseError::BadArguments, "invalid queue weight"))?;
                        LeafOp::Sub { subject, queue: Some((args.get(line, 1), w)) }
                    }
                    _ => return Err(bad()),
                }
            }
            5 => match args.count() {
                0 => return Err(bad()),
                1 => LeafOp::Unsub { subject: args.get(line, 0), queue: None },
                _ => LeafOp::Unsub { subject: args.get(line, 0), queue: Some(args.get(line, 1)) },
            },
            6 => LeafOp::Ping,
            7 => LeafOp::Pong,
            8 => LeafOp::Ok,
            9 => LeafOp::Err(without_quotes(trimmed(args.rest(line)))),
            10 => LeafOp::Info(trimmed(args.rest(line))),
            _ => LeafOp::Connect(trimmed(args.rest(line))),
        };
        Ok(Line::Done(op))
    }

    fn complete(p: PendingMsg, message: Bytes) -> LeafOp {
        LeafOp::Msg(LeafMsg { subject: p.subject, reply: p.reply, queues: p.queues, header_len: p.header_len, message })
    }
}
