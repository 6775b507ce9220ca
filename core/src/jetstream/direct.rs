//! Direct gets (`$JS.API.DIRECT.GET.<stream>[.<subject>]`): the answer is the stored message
//! itself with its stream, subject, sequence and time in headers, not JSON. Besides the single
//! get, nats-server answers batches (`batch`, ADR-31) and the last message of many subjects at
//! once (`multi_last`, what KV clients use for `keys()` and watchers' initial values) with one
//! message each plus a closing `204 EOB` status, and clients wait for that status to end the
//! batch: so its fields, its order and its status texts follow nats-server's stream exactly.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::api::no_responders;
use super::engine::JetStream;
use super::store::StoredMsg;
use super::stream::Stream;
use super::time::{parse_rfc3339, rfc3339};
use super::Outbound;
use crate::proto::Headers;
use crate::subject;

/// nats-server's default `max_bytes` for a batch: the client's `max_pending` (64 MiB).
const DEFAULT_MAX_BYTES: i64 = 64 * 1024 * 1024;
/// More subjects than this in a `multi_last` answer is refused (413), as nats-server does.
const MAX_MULTI_RESULTS: usize = 1024;

/// The request body, field for field nats-server's `JSApiMsgGetRequest`; times stay text
/// until checked, so a bad one is a malformed request rather than a parse failure.
#[derive(Default)]
struct DirectRequest {
    seq: u64,
    last_by_subj: String,
    next_by_subj: String,
    batch: i64,
    max_bytes: i64,
    start_time: Option<String>,
    multi_last: Vec<String>,
    up_to_seq: u64,
    up_to_time: Option<String>,
    no_hdr: bool,
}

impl crate::json::FromJson for DirectRequest {
    fn from_json(v: &serde_json::Value) -> crate::json::typed::Result<Self> {
        let f = crate::json::Fields::of(v, "struct DirectRequest")?;
        Ok(DirectRequest {
            seq: f.get("seq", 0)?,
            last_by_subj: f.get("last_by_subj", String::new())?,
            next_by_subj: f.get("next_by_subj", String::new())?,
            batch: f.get("batch", 0)?,
            max_bytes: f.get("max_bytes", 0)?,
            start_time: f.get("start_time", None)?,
            multi_last: f.get("multi_last", Vec::new())?,
            up_to_seq: f.get("up_to_seq", 0)?,
            up_to_time: f.get("up_to_time", None)?,
            no_hdr: f.get("no_hdr", false)?,
        })
    }
}

/// A request with its times read (nanoseconds since the epoch).
struct Checked {
    req: DirectRequest,
    start_time: Option<u64>,
    up_to_time: Option<u64>,
}

impl DirectRequest {
    /// Reads the times; `None` means a time did not parse (a malformed request).
    fn checked(self) -> Option<Checked> {
        let time = |t: &Option<String>| match t {
            None => Some(None),
            Some(s) => parse_rfc3339(s).map(Some),
        };
        let start_time = time(&self.start_time)?;
        let up_to_time = time(&self.up_to_time)?;
        Some(Checked { req: self, start_time, up_to_time })
    }

    fn max_bytes(&self) -> usize {
        usize::try_from(if self.max_bytes == 0 { DEFAULT_MAX_BYTES } else { self.max_bytes }).unwrap_or(0)
    }
}

fn status(reply: &Bytes, code: u16, text: &str, extra: &[(&str, u64)]) -> Outbound {
    let mut h = Headers::with_status(code, Some(text));
    for (k, v) in extra {
        h.append(k, &format!("{v}"));
    }
    Outbound::status(reply.clone(), h.to_bytes())
}

/// `m` as a direct-get answer: its own headers, then the stream's; batches add how many
/// remain and the sequence sent before this one (0 for the first).
fn answer(reply: &Bytes, stream: &str, m: StoredMsg, batch: Option<(u64, u64)>, no_hdr: bool) -> Outbound {
    let headers = (!no_hdr).then(|| {
        let mut h = m.headers.as_deref().and_then(|b| Headers::parse(b).ok()).unwrap_or_default();
        h.append("Nats-Stream", stream);
        h.append("Nats-Subject", &String::from_utf8_lossy(&m.subject));
        h.append("Nats-Sequence", &format!("{}", m.seq));
        h.append("Nats-Time-Stamp", &rfc3339(m.time));
        if let Some((pending, last)) = batch {
            h.append("Nats-Num-Pending", &format!("{pending}"));
            h.append("Nats-Last-Sequence", &format!("{last}"));
        }
        h.to_bytes()
    });
    Outbound { route: reply.clone(), subject: reply.clone(), reply: None, headers, payload: m.payload }
}

/// What a message counts against `max_bytes`: subject, stored headers and payload.
fn counted(m: &StoredMsg) -> usize {
    m.subject.len() + m.headers.as_ref().map_or(0, |h| h.len()) + m.payload.len()
}

impl JetStream {
    /// Answers a direct get on stream `name`; `subj` holds the tokens of the subject form
    /// (`DIRECT.GET.<stream>.<subject>`), empty for the body form.
    pub(super) fn direct_get(&mut self, name: &str, subj: &[&str], rest: &[u8], payload: &[u8], reply: &Bytes) {
        let Some(name) = self.direct_answerer(name) else {
            // nats-server has no responder for it: say so the way the bus would
            self.out.push(Outbound::status(reply.clone(), no_responders(rest)));
            return;
        };
        let name = name.as_str();
        let checked = match Self::direct_request(subj, payload) {
            Ok(c) => c,
            Err(text) => {
                self.out.push(status(reply, 408, text, &[]));
                return;
            }
        };
        let Some(e) = self.streams.get_mut(name) else { return };
        let mut out = Vec::new();
        if checked.req.multi_last.is_empty() {
            direct_batch(&mut e.stream, name, &checked, reply, &mut out);
        } else {
            direct_multi_last(&mut e.stream, name, &checked, reply, &mut out);
        }
        self.out.append(&mut out);
    }

    /// The stream that answers direct gets addressed to `name`: the stream itself with
    /// `allow_direct`, else a mirror of it with `mirror_direct` (nats-server has such a
    /// mirror listen on its origin's direct-get subject in the same queue group, so it
    /// answers for its origin, also when the origin is gone); the answer names the stream
    /// that gave it.
    fn direct_answerer(&self, name: &str) -> Option<String> {
        if self.streams.get(name).is_some_and(|e| e.stream.config.allow_direct) {
            return Some(name.into());
        }
        self.streams.iter().find_map(|(n, e)| {
            let c = &e.stream.config;
            (c.mirror_direct && c.mirror.as_ref().is_some_and(|m| m.name == name)).then(|| n.clone())
        })
    }

    /// Parses and checks a request, or gives the text of the 408 that refuses it.
    fn direct_request(subj: &[&str], payload: &[u8]) -> Result<Checked, &'static str> {
        let parsed = if payload.is_empty() {
            if subj.is_empty() {
                return Err("Empty Request");
            }
            DirectRequest::default()
        } else {
            crate::json::typed::from_slice::<DirectRequest>(payload).map_err(|_| "Malformed Request")?
        };
        let c = parsed.checked().ok_or("Malformed Request")?;
        let r = &c.req;
        if !subj.is_empty() {
            // the subject names the message: nothing in the body may name another
            let any = !r.last_by_subj.is_empty()
                || !r.next_by_subj.is_empty()
                || !r.multi_last.is_empty()
                || r.seq != 0
                || r.batch != 0
                || c.start_time.is_some()
                || r.up_to_seq != 0
                || c.up_to_time.is_some();
            if any {
                return Err("Bad Request");
            }
            let key = subj.join(".");
            if key.is_empty() {
                return Err("Bad Request");
            }
            let mut c = c;
            c.req.last_by_subj = key;
            return Ok(c);
        }
        let (last, next, multi) = (!r.last_by_subj.is_empty(), !r.next_by_subj.is_empty(), !r.multi_last.is_empty());
        if r.seq == 0 && !last && !next && !multi && c.start_time.is_none() {
            return Err("Empty Request");
        }
        let start = c.start_time.is_some();
        // nats-server's conflicting options; a last-by-subject get is never a batch
        let conflict = (last && (r.seq > 0 || start || next || r.batch > 0 || multi))
            || (r.seq > 0 && start)
            || (next && multi)
            || (r.up_to_seq > 0 && c.up_to_time.is_some());
        if conflict {
            return Err("Bad Request");
        }
        Ok(c)
    }
}

/// A single get, or a batch from a sequence, a time or along a filter.
fn direct_batch(stream: &mut Stream, name: &str, c: &Checked, reply: &Bytes, out: &mut Vec<Outbound>) {
    let r = &c.req;
    let next_for = r.next_by_subj.as_bytes();
    let wanted = |s: &[u8]| next_for.is_empty() || subject::matches(next_for, s);
    let mut seq = c.start_time.map_or(r.seq, |t| stream.seq_at_time(t));
    let is_batch = r.batch > 0;
    let batch = if is_batch { r.batch } else { 1 };
    let mut pending = if is_batch { stream.count_matching(seq, wanted) } else { 0 };
    let max_bytes = r.max_bytes();
    let (mut last, mut sent_bytes) = (0u64, 0usize);
    for i in 0..batch {
        let found = if seq > 0 && next_for.is_empty() {
            // only a lone get names its sequence exactly; a batch steps over gaps
            let s = if i == 0 && !is_batch { Some(seq) } else { stream.next_matching(seq, |_| true) };
            seq = s.unwrap_or(seq) + 1;
            s
        } else if !next_for.is_empty() {
            let s = stream.next_matching(seq, wanted);
            seq = s.unwrap_or(seq) + 1;
            s
        } else {
            Some(stream.last_seq_for(r.last_by_subj.as_bytes())).filter(|s| *s > 0)
        };
        // a message no sync covers yet is not out (`stream/commit.rs`)
        let msg = found.filter(|s| stream.visible(*s)).and_then(|s| stream.load(s).ok().flatten());
        let Some(m) = msg else {
            if batch > 1 && i > 0 {
                break;
            }
            out.push(status(reply, 404, "Message Not Found", &[]));
            return;
        };
        if !r.no_hdr {
            // nats-server counts down only while it writes the headers that carry the count
            pending = pending.saturating_sub(1);
        }
        let seq_of = m.seq;
        sent_bytes += counted(&m);
        out.push(answer(reply, name, m, is_batch.then_some((pending, last)), r.no_hdr));
        last = seq_of;
        if sent_bytes >= max_bytes {
            break;
        }
    }
    if is_batch {
        out.push(status(reply, 204, "EOB", &[("Nats-Num-Pending", pending), ("Nats-Last-Sequence", last)]));
    }
}

/// The last message on every subject matching `multi_last`, up to a sequence or time, in
/// sequence order.
fn direct_multi_last(stream: &mut Stream, name: &str, c: &Checked, reply: &Bytes, out: &mut Vec<Outbound>) {
    let r = &c.req;
    let mut up_to = r.up_to_seq;
    if let Some(t) = c.up_to_time {
        let at = stream.seq_at_time(t);
        if at <= stream.first_seq() {
            out.push(status(reply, 404, "No Results", &[]));
            return;
        }
        // the first message at or after the time is the one not to include
        up_to = at - 1;
    }
    if up_to == 0 {
        up_to = stream.last_seq();
    }
    let mut seqs = Vec::new();
    for f in &r.multi_last {
        stream.last_on_each_subject(f.as_bytes(), up_to, &mut seqs);
    }
    seqs.sort_unstable();
    seqs.dedup();
    if seqs.len() > MAX_MULTI_RESULTS {
        out.push(status(reply, 413, "Too Many Results", &[]));
        return;
    }
    if seqs.is_empty() {
        out.push(status(reply, 404, "No Results", &[]));
        return;
    }
    let max_bytes = r.max_bytes();
    let mut pending = seqs.len() as u64;
    let (mut last, mut sent_bytes, mut sent) = (0u64, 0usize, 0i64);
    for seq in seqs {
        pending -= 1;
        if seq < r.seq {
            continue;
        }
        let Some(m) = stream.load(seq).ok().flatten().filter(|_| stream.visible(seq)) else {
            out.push(status(reply, 404, "Message Not Found", &[]));
            return;
        };
        sent_bytes += counted(&m);
        out.push(answer(reply, name, m, Some((pending, last)), false));
        last = seq;
        if sent_bytes >= max_bytes {
            break;
        }
        sent += 1;
        if r.batch > 0 && sent >= r.batch {
            break;
        }
    }
    let eob = [("Nats-Num-Pending", pending), ("Nats-Last-Sequence", last), ("Nats-UpTo-Sequence", up_to)];
    out.push(status(reply, 204, "EOB", &eob));
}
