//! Fast-ingest batch publish (`allow_batched`, ADR-50, API level 4), as nats-server 2.14
//! serves it on one server.
//!
//! Unlike an atomic batch nothing is staged: each message is stored when it arrives, and the
//! batch only paces the publisher and tells it what was lost. The control information rides in
//! the reply subject, `<prefix>.<id>.<flow>.<ok|fail>.<seq>.<op>.$FI`, so a client needs no
//! headers; the server answers on that reply with flow acks (`{"type":"ack"}` every `msgs`
//! messages, the cadence it adapts to how many batches share the stream), gap and error
//! reports, and at the commit a pub ack with `batch` and `count`.
//!
//! nats-server persists asynchronously and counts messages in flight; this engine stores each
//! message before it answers, so nothing is ever pending here and the rules below are
//! nats-server's with that count at zero. Open batches are not persisted (nor are they in
//! nats-server: a restart ends them, and the client's ping then reports the gap).

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::Serialize;

use super::batch::BATCH_TIMEOUT;
use super::engine::{Interest, JetStream, PubAck};
use super::errors::ApiError;
use super::group_commit::pub_answer;
use super::Outbound;
use crate::proto::{header_value, Headers};

/// nats-server's defaults (`streamDefaultMaxFastBatchInflight*`).
pub(crate) const MAX_INFLIGHT_PER_STREAM: usize = 1000;
pub(crate) const MAX_INFLIGHT_TOTAL: usize = 50_000;
/// The flow-ack interval a lone batch may reach, shared out among a stream's batches.
const FLOW_BUDGET: u16 = 500;

const fn err(code: u16, err_code: u16, d: &'static str) -> ApiError {
    ApiError { code, err_code, description: Cow::Borrowed(d) }
}
const DISABLED: ApiError = err(400, 10205, "batch publish is disabled");
const INVALID_PATTERN: ApiError = err(400, 10206, "batch publish pattern is invalid");
const INVALID_ID: ApiError = err(400, 10207, "batch publish ID is invalid");
const UNKNOWN_ID: ApiError = err(400, 10208, "batch publish ID unknown");
const TOO_MANY_INFLIGHT: ApiError = err(429, 10211, "batch publish too many inflight");

const SUFFIX: &[u8] = b".$FI";
const REQUIRED_API_LEVEL: &str = "Nats-Required-Api-Level";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Start,
    Append,
    /// Store this message and commit.
    Commit,
    /// Commit without storing this message.
    CommitEob,
    /// Ask for the flow state again (and keep the batch alive).
    Ping,
}

/// What a fast-batch reply subject says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pattern<'a> {
    id: &'a [u8],
    flow: u16,
    gap_ok: bool,
    seq: u64,
    op: Op,
}

/// `None` when `reply` is no fast-batch reply; `Some(None)` when it ends in `.$FI` but does
/// not follow the pattern (nats-server answers that with 10206).
fn parse(reply: &[u8]) -> Option<Option<Pattern<'_>>> {
    if reply.len() <= SUFFIX.len() || !reply.ends_with(SUFFIX) {
        return None;
    }
    Some(parse_tokens(&reply[..reply.len() - SUFFIX.len()]))
}

fn parse_tokens(rest: &[u8]) -> Option<Pattern<'_>> {
    // read from the right, as nats-server does: the prefix may hold dots of its own
    let mut tok = rest.rsplitn(6, |b| *b == b'.');
    let op = match number(tok.next()?)? {
        0 => Op::Start,
        1 => Op::Append,
        2 => Op::Commit,
        3 => Op::CommitEob,
        4 => Op::Ping,
        _ => return None,
    };
    // the largest sequence is refused so that the next one cannot overflow
    let seq = number(tok.next()?).filter(|s| *s != 0 && *s != u64::MAX)?;
    match (op, seq) {
        (Op::CommitEob, 1) | (Op::Append, 1) => return None,
        (Op::Start, s) if s != 1 => return None,
        _ => {}
    }
    let gap_ok = match tok.next()? {
        b"ok" => true,
        b"fail" => false,
        _ => return None,
    };
    // an unreadable or zero flow asks for the default, a huge one for the most there is
    let flow = number(tok.next()?).filter(|f| *f > 0).map_or(10, |f| u16::try_from(f).unwrap_or(u16::MAX));
    let id = tok.next()?;
    // the inbox prefix (possibly empty) must be there
    tok.next()?;
    Some(Pattern { id, flow, gap_ok, seq, op })
}

/// Decimal digits only, as nats-server's `parseUint64`.
fn number(t: &[u8]) -> Option<u64> {
    if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(t).ok()?.parse().ok()
}

/// One open fast batch (nats-server's `fastBatch` with nothing pending).
#[derive(Debug, Clone)]
pub(super) struct Fast {
    /// The highest batch sequence taken in.
    lseq: u64,
    /// The stream sequence last stored for it.
    sseq: u64,
    /// The highest batch sequence known persisted.
    pseq: u64,
    /// The batch sequence of the last flow ack.
    fseq: u64,
    /// A flow ack every this many messages.
    ack_msgs: u16,
    /// The most the client allows (its `<flow>`).
    max_ack_msgs: u16,
    gap_ok: bool,
    /// Ending: later messages are ignored.
    commit: bool,
    last_active: u64,
}

impl Fast {
    /// Advances the flow state; `true` when a flow ack is due (nats-server's
    /// `checkFlowControl`). The cadence doubles up to the stream's share of the budget and
    /// halves down to it.
    fn check_flow(&mut self, sharing: usize) -> bool {
        let am = u64::from(self.ack_msgs.max(1));
        if self.pseq < self.fseq + am {
            return false;
        }
        self.fseq += (self.pseq - self.fseq) / am * am;
        let share = u16::try_from(usize::from(FLOW_BUDGET) / sharing.max(1)).unwrap_or(FLOW_BUDGET);
        let max = share.max(1).min(self.max_ack_msgs);
        if self.ack_msgs < max {
            self.ack_msgs = self.ack_msgs.saturating_mul(2).min(max);
        } else if self.ack_msgs > max {
            self.ack_msgs = (self.ack_msgs / 2).max(max);
        }
        true
    }
}

/// The open fast batches of every stream, by (stream, batch id).
#[derive(Default)]
pub(super) struct FastBatches {
    open: crate::vecmap::VecMap<(String, Vec<u8>), Fast>,
}

impl FastBatches {
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.open.values().map(|b| b.last_active.saturating_add(BATCH_TIMEOUT)).min()
    }

    /// Forgets the batches idle for [`BATCH_TIMEOUT`] (silently, as nats-server does).
    pub(super) fn expire(&mut self, now: u64) {
        self.open.retain(|_, b| now.saturating_sub(b.last_active) < BATCH_TIMEOUT);
    }

    fn in_stream(&self, stream: &str) -> usize {
        self.open.keys().filter(|(s, _)| s == stream).count()
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Flow<'a> {
    /// Everything up to `seq` is processed; the next ack comes `msgs` messages later.
    Ack { seq: u64, msgs: u16 },
    /// Batch sequences `last_seq` up to `seq` (excluded) never arrived.
    Gap { last_seq: u64, seq: u64 },
    /// Message `seq` was refused.
    Err { seq: u64, error: &'a ApiError },
}

fn flow_json(f: &Flow<'_>) -> Bytes {
    Bytes::from(serde_json::to_vec(f).unwrap_or_default())
}

/// What answering one message produced: the replies, in order, and whether it stored.
struct Answer {
    replies: Vec<Bytes>,
    stored: bool,
}

impl JetStream {
    /// Takes a publish that belongs to a batch: a fast-batch reply subject first, then an
    /// atomic batch's `Nats-Batch-Id`, as nats-server tells them apart. `false`: a plain one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_batch_publish(
        &mut self,
        now: u64,
        name: &str,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
        interest: &dyn Interest,
    ) -> bool {
        if let Some((reply, pattern)) = reply.and_then(|r| parse(r).map(|p| (r, p))) {
            let answer = self.on_fast_msg(now, name, pattern, subject, headers, payload);
            let wait = answer.stored && self.streams.get(name).is_some_and(|e| e.stream.acks_wait_for_sync());
            if wait {
                self.defer_sync(name);
            }
            let to = Bytes::copy_from_slice(reply);
            for body in answer.replies {
                self.out.push(Outbound::data(to.clone(), body));
                // no flow ack or pub ack leaves before the sync covering what it reports
                if wait {
                    self.hold_last_ack(name);
                }
            }
            self.pump_stream(name, now, interest);
            return true;
        }
        if let (Some(id), Some(h)) = (super::batch::batch_id(headers), headers) {
            self.on_batch_msg(now, name, id, subject, reply, h, payload, interest);
            return true;
        }
        false
    }

    /// nats-server's `processJetStreamFastBatchMsg` on a lone server.
    fn on_fast_msg(
        &mut self,
        now: u64,
        name: &str,
        pattern: Option<Pattern<'_>>,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Answer {
        let mut a = Answer { replies: Vec::new(), stored: false };
        let no_ack = self.streams.get(name).is_none_or(|e| e.stream.config.no_ack);
        let refuse = |a: &mut Answer, e: ApiError| {
            if !no_ack {
                a.replies.push(pub_answer(&Err(e), name));
            }
        };
        let p = match self.check_fast(name, pattern, headers, payload) {
            Ok(p) => p,
            Err(e) => {
                refuse(&mut a, e);
                return a;
            }
        };
        self.batches.fast.open.retain(|(s, _), _| self.streams.get(s).is_some_and(|e| e.stream.config.allow_batched));
        let key = (String::from(name), p.id.to_vec());
        let sharing = self.batches.fast.in_stream(name) + usize::from(!self.batches.fast.open.contains_key(&key));
        let mut b = match self.batches.fast.open.remove(&key) {
            Some(b) => b,
            None if p.seq != 1 => {
                refuse(&mut a, UNKNOWN_ID);
                return a;
            }
            None if sharing > MAX_INFLIGHT_PER_STREAM || self.batches.fast.open.len() >= MAX_INFLIGHT_TOTAL => {
                refuse(&mut a, TOO_MANY_INFLIGHT);
                return a;
            }
            None => Fast {
                lseq: 0,
                sseq: 0,
                pseq: 0,
                fseq: 0,
                // a batch alone starts at the client's pace, one among others ramps up from 1
                ack_msgs: if sharing > 1 { 1 } else { p.flow.min(FLOW_BUDGET) },
                max_ack_msgs: p.flow,
                gap_ok: p.gap_ok,
                commit: false,
                last_active: now,
            },
        };
        // the header may end the batch, and is never stored
        let stripped;
        let mut headers = headers;
        if let Some(h) =
            headers.filter(|h| header_value(h, REQUIRED_API_LEVEL.as_bytes()).is_some_and(|v| !v.is_empty()))
        {
            if let Err(e) = super::sourcing::check_required_level(Some(h)) {
                refuse(&mut a, e);
                return a;
            }
            stripped = Headers::parse(h).ok().map(|mut parsed| {
                parsed.remove(REQUIRED_API_LEVEL);
                parsed.to_bytes()
            });
            headers = stripped.as_deref().or(headers);
        }
        b.last_active = now;
        let keep = self.advance(now, name, &p, &mut b, subject, headers, payload, &mut a);
        if keep {
            self.batches.fast.open.insert(key, b);
        }
        a
    }

    /// The checks before the batch is looked up, in nats-server's order.
    fn check_fast<'p>(
        &self,
        name: &str,
        pattern: Option<Pattern<'p>>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<Pattern<'p>, ApiError> {
        let config = &self.streams.get(name).ok_or(ApiError::STREAM_NOT_FOUND)?.stream.config;
        if config.sealed {
            return Err(ApiError::SEALED);
        }
        self.check_room(config.storage)?;
        let hlen = headers.map_or(0, <[u8]>::len);
        if config.max_msg_size >= 0 {
            let max = usize::try_from(config.max_msg_size).unwrap_or(usize::MAX);
            if hlen > max || payload.len() > max - hlen {
                return Err(ApiError::MSG_TOO_BIG);
            }
        }
        if !config.allow_batched {
            return Err(DISABLED);
        }
        let p = pattern.ok_or(INVALID_PATTERN)?;
        if p.id.len() > 64 {
            return Err(INVALID_ID);
        }
        Ok(p)
    }

    /// One message of an open batch: gaps, the commit, storing, flow. `false` when the batch
    /// has ended.
    #[allow(clippy::too_many_arguments)]
    fn advance(
        &mut self,
        now: u64,
        name: &str,
        p: &Pattern<'_>,
        b: &mut Fast,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
        a: &mut Answer,
    ) -> bool {
        let sharing = self.batches.fast.in_stream(name) + 1;
        let (id, domain) = (String::from_utf8_lossy(p.id).into_owned(), self.domain.clone());
        let done = |seq: u64, duplicate: bool, count: u64| PubAck {
            stream: name.into(),
            domain: domain.clone(),
            seq,
            duplicate,
            val: None,
            batch: Some(id.clone()),
            count: Some(count),
        };
        // nats-server's `fastBatchCommit`: the pub ack now if all is persisted (the batch is
        // over: `false`), else when the last message is
        let end = |b: &mut Fast, a: &mut Answer| {
            b.commit = true;
            let all = b.lseq == b.pseq;
            if all {
                a.replies.push(pub_answer(&Ok(done(b.sseq, false, b.lseq)), name));
            }
            !all
        };
        if p.op == Op::Ping {
            if p.seq > b.lseq {
                a.replies.push(flow_json(&Flow::Gap { last_seq: b.lseq + 1, seq: p.seq + 1 }));
                if b.gap_ok {
                    b.lseq = p.seq;
                    b.pseq = b.lseq;
                    // moves the cadence on; the ack below goes out either way
                    b.check_flow(sharing);
                } else if !end(b, a) {
                    return false;
                }
            }
            a.replies.push(flow_json(&Flow::Ack { seq: b.fseq, msgs: b.ack_msgs }));
            return true;
        }
        if b.commit {
            // ending already: the client waits for the pub ack
            return true;
        }
        b.lseq += 1;
        if b.lseq != p.seq {
            if p.seq > b.lseq {
                a.replies.push(flow_json(&Flow::Gap { last_seq: b.lseq, seq: p.seq }));
            }
            if b.gap_ok && p.seq > b.lseq {
                b.lseq = p.seq;
            } else {
                // a gap in `fail` mode, or a message sent again: the batch ends here
                b.lseq -= 1;
                return end(b, a);
            }
        }
        let commit = matches!(p.op, Op::Commit | Op::CommitEob);
        if p.op == Op::CommitEob {
            b.lseq -= 1;
            b.pseq = b.lseq;
            return end(b, a);
        }
        if commit {
            b.commit = true;
        }
        let no_ack = self.streams.get(name).is_none_or(|e| e.stream.config.no_ack);
        if p.seq == 1 && !no_ack && !commit {
            a.replies.push(flow_json(&Flow::Ack { seq: 0, msgs: b.ack_msgs }));
        }
        match self.store_msg(name, now, subject, headers, payload, true) {
            Ok(ack) if ack.duplicate => {
                b.pseq = p.seq;
                if b.check_flow(sharing) {
                    a.replies.push(flow_json(&Flow::Ack { seq: b.fseq, msgs: b.ack_msgs }));
                }
                if !commit {
                    return true;
                }
                if !b.gap_ok && b.lseq == 1 {
                    a.replies.push(pub_answer(&Ok(done(ack.seq, true, p.seq)), name));
                    return false;
                }
                if b.gap_ok {
                    // 2.14.0 stops here even on a commit: the batch stays ending, unanswered
                    return true;
                }
                end(b, a)
            }
            Ok(ack) => {
                a.stored = true;
                b.sseq = ack.seq;
                b.pseq = b.lseq;
                if b.commit {
                    a.replies.push(pub_answer(&Ok(done(b.sseq, false, b.lseq)), name));
                    return false;
                }
                if b.check_flow(sharing) {
                    a.replies.push(flow_json(&Flow::Ack { seq: b.fseq, msgs: b.ack_msgs }));
                }
                true
            }
            Err(e) => {
                if !b.gap_ok && b.lseq == 1 {
                    // the first message refused: answered as a plain publish
                    a.replies.push(pub_answer(&Err(e), name));
                    return false;
                }
                a.replies.push(flow_json(&Flow::Err { seq: p.seq, error: &e }));
                if b.gap_ok {
                    // skipped; on a commit 2.14.0 leaves the batch ending, unanswered
                    return true;
                }
                b.lseq -= 1;
                end(b, a)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_patterns_as_nats_server_reads_them() {
        fn p(r: &str) -> Option<Option<Pattern<'_>>> {
            parse(r.as_bytes())
        }
        assert_eq!(p("_INBOX.x"), None);
        assert_eq!(p(".$FI"), None);
        let ok = p("_INBOX.fast.uuid1.10.ok.1.0.$FI").flatten().map(|p| (p.id, p.flow, p.gap_ok, p.seq, p.op));
        assert_eq!(ok, Some((&b"uuid1"[..], 10, true, 1, Op::Start)));
        let fail = p("a.b.c.id.0.fail.7.2.$FI").flatten().map(|p| (p.id, p.flow, p.gap_ok, p.seq, p.op));
        assert_eq!(fail, Some((&b"id"[..], 10, false, 7, Op::Commit)));
        assert_eq!(p("x.id.99999.ok.3.4.$FI").flatten().map(|p| p.flow), Some(u16::MAX));
        for bad in [
            "x.id.10.ok.1.5.$FI",    // no such op
            "x.id.10.ok.2.0.$FI",    // a start that is not 1
            "x.id.10.ok.1.1.$FI",    // an append at 1
            "x.id.10.ok.1.3.$FI",    // end-of-batch as the first message
            "x.id.10.ok.0.2.$FI",    // sequence 0
            "x.id.10.maybe.2.1.$FI", // gap mode
            "id.10.ok.2.1.$FI",      // no prefix
            "x.id.10.ok.18446744073709551615.1.$FI",
        ] {
            assert_eq!(p(bad), Some(None), "{bad}");
        }
    }
}
