//! One consumer: where it is in its stream, what is delivered and not yet acknowledged, the
//! pull requests waiting on it, and the acknowledgement protocol.
//!
//! The consumer never reads a clock: every entry point takes `now`, and
//! [`Consumer::next_deadline`] tells the engine when it next needs a call (an ack wait runs
//! out, a pull request expires, a heartbeat is due).

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::config::{AckPolicy, ConsumerConfig, DeliverPolicy};
use super::stream::Stream;
use super::time::{go_duration, parse_go_duration, parse_rfc3339, rfc3339};
use super::Outbound;
use crate::proto::Headers;

/// A delivered message awaiting its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    /// Consumer sequence of the latest delivery.
    cseq: u64,
    deliveries: u32,
    /// When it becomes due for redelivery (0: not timed, e.g. ack policy none).
    #[serde(default)]
    deadline: u64,
}

/// A waiting pull request.
#[derive(Debug, Clone)]
struct PullRequest {
    reply: Bytes,
    batch: i64,
    max_bytes: i64,
    /// Absolute expiry, 0 = none.
    expires: u64,
    no_wait: bool,
    heartbeat: u64,
    next_heartbeat: u64,
}

/// What happened to one acknowledged message, for retention and advisories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// These stream sequences are now acknowledged by this consumer.
    Acked(Vec<u64>),
    /// The message was terminated (no more deliveries).
    Terminated {
        sseq: u64,
        cseq: u64,
        deliveries: u32,
        reason: String,
    },
    Naked {
        sseq: u64,
        cseq: u64,
        deliveries: u32,
    },
    /// Nothing to do (in progress, unknown sequence, duplicate ack).
    None,
}

impl PullRequest {
    /// The status that ends this request, with what it still wanted (`Nats-Pending-*`).
    fn ended(&self, code: u16, description: &str) -> Outbound {
        status(
            &self.reply,
            code,
            description,
            &[
                ("Nats-Pending-Messages", format!("{}", self.batch)),
                ("Nats-Pending-Bytes", format!("{}", self.max_bytes)),
            ],
        )
    }
}

/// The persisted part of a consumer.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ConsumerState {
    pub config: ConsumerConfig,
    pub created: u64,
    pub sseq: u64,
    pub dseq: u64,
    pub delivered_sseq: u64,
    pub ack_floor_c: u64,
    pub ack_floor_s: u64,
    #[serde(default)]
    pending: BTreeMap<u64, Pending>,
    #[serde(default)]
    lps: VecDeque<u64>,
}

#[derive(Serialize)]
struct SeqInfo {
    consumer_seq: u64,
    stream_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_active: Option<String>,
}

#[derive(Serialize)]
pub struct ConsumerInfo {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub stream_name: String,
    pub name: String,
    pub created: String,
    pub config: ConsumerConfig,
    delivered: SeqInfo,
    ack_floor: SeqInfo,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    pub num_pending: u64,
    #[serde(skip_serializing_if = "std_false")]
    pub push_bound: bool,
    pub ts: String,
}

fn std_false(b: &bool) -> bool {
    !*b
}

pub struct Consumer {
    pub name: String,
    pub stream: String,
    pub state: ConsumerState,
    redeliver: BTreeSet<u64>,
    timers: BTreeSet<(u64, u64)>,
    waiting: VecDeque<PullRequest>,
    num_pending: u64,
    /// Last time there was interest (push) or a pull request or an ack; drives
    /// `inactive_threshold`.
    pub last_active: u64,
    last_delivery: u64,
    pub push_bound: bool,
    /// Persisted state changed since the last save.
    pub dirty: bool,
    /// Messages that reached `max_deliver` since the engine last asked: (stream seq, deliveries).
    exhausted: Vec<(u64, u32)>,
    /// Push flow control: the `$JS.FC` reply subject of the request still unanswered
    /// (delivery waits for it), and what was delivered since the last request.
    fc_pending: Option<Bytes>,
    fc_msgs: u64,
    fc_bytes: u64,
    fc_token: u64,
}

/// A push consumer with flow control asks the client to catch up after this many messages or
/// bytes, and delivers nothing more until it answers. 2 MiB is nats-server's window
/// (`JsFlowControlMaxPending` / 16); it also keeps a burst well below a client's
/// `max_pending`, so a reader that keeps up is never cut off as a slow consumer.
const FC_MSGS: u64 = 1024;
const FC_BYTES: u64 = 2 * 1024 * 1024;

/// A pull request that could not be accepted, answered with a status right away.
fn status(reply: &Bytes, code: u16, description: &str, extra: &[(&str, String)]) -> Outbound {
    let mut h = Headers::with_status(code, Some(description));
    for (k, v) in extra {
        h.append(k, v);
    }
    Outbound::status(reply.clone(), h.to_bytes())
}

impl Consumer {
    /// A new consumer positioned by its deliver policy.
    pub fn new(name: String, stream: &Stream, config: ConsumerConfig, now: u64) -> Consumer {
        let mut state = ConsumerState { config, created: now, ..Default::default() };
        let cfg = &state.config;
        let wants = |s: &[u8]| cfg.wants(s);
        state.sseq = match cfg.deliver_policy {
            DeliverPolicy::All => stream.first_seq().max(1),
            DeliverPolicy::Last => {
                let filters = cfg.filters();
                let last = if filters.is_empty() {
                    stream.last_seq()
                } else {
                    filters.iter().map(|f| stream.last_seq_for(f.as_bytes())).max().unwrap_or(0)
                };
                if last == 0 {
                    stream.last_seq() + 1
                } else {
                    last
                }
            }
            DeliverPolicy::New => stream.last_seq() + 1,
            DeliverPolicy::ByStartSequence => cfg.opt_start_seq.unwrap_or(1).max(1),
            DeliverPolicy::ByStartTime => {
                stream.seq_at_time(cfg.opt_start_time.as_deref().and_then(parse_rfc3339).unwrap_or(0))
            }
            DeliverPolicy::LastPerSubject => {
                state.lps = stream.last_per_subject(wants).into();
                stream.last_seq() + 1
            }
        };
        // Positions below the start count as acknowledged, as in nats-server.
        state.delivered_sseq = state.sseq.saturating_sub(1);
        state.ack_floor_s = state.delivered_sseq;
        let mut c = Consumer::from_state(name, stream, state, now);
        c.dirty = true;
        c
    }

    /// Restores a consumer from its saved state.
    pub fn from_state(name: String, stream: &Stream, state: ConsumerState, now: u64) -> Consumer {
        let mut c = Consumer {
            name,
            stream: stream.name().into(),
            state,
            redeliver: BTreeSet::new(),
            timers: BTreeSet::new(),
            waiting: VecDeque::new(),
            num_pending: 0,
            last_active: now,
            last_delivery: now,
            push_bound: false,
            dirty: false,
            exhausted: Vec::new(),
            fc_pending: None,
            fc_msgs: 0,
            fc_bytes: 0,
            fc_token: 0,
        };
        // After a restart every outstanding delivery is due again after a fresh ack wait.
        let wait = c.ack_wait(1);
        let pending: Vec<u64> = c.state.pending.keys().copied().collect();
        for sseq in pending {
            if let Some(p) = c.state.pending.get_mut(&sseq) {
                p.deadline = now + wait;
                c.timers.insert((p.deadline, sseq));
            }
        }
        c.recount(stream);
        c
    }

    /// Recomputes how many messages are left to deliver (after a purge, say).
    pub fn recount(&mut self, stream: &Stream) {
        let cfg = &self.state.config;
        self.num_pending = stream.count_matching(self.state.sseq, |s| cfg.wants(s))
            + self.state.lps.iter().filter(|s| **s < self.state.sseq && stream.contains(**s)).count() as u64;
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.state.config
    }

    pub fn is_push(&self) -> bool {
        self.state.config.is_push()
    }

    fn ack_wait(&self, deliveries: u32) -> u64 {
        let cfg = &self.state.config;
        if !cfg.backoff.is_empty() {
            let i = (deliveries.max(1) as usize - 1).min(cfg.backoff.len() - 1);
            return cfg.backoff[i].max(1) as u64;
        }
        cfg.ack_wait.max(1) as u64
    }

    /// A message was appended to the stream.
    pub fn on_append(&mut self, seq: u64, subject: &[u8]) {
        if seq >= self.state.sseq && self.state.config.wants(subject) {
            self.num_pending += 1;
        }
    }

    /// A message left the stream (limits, purge, delete, retention).
    pub fn on_remove(&mut self, seq: u64, subject: &[u8]) {
        if seq >= self.state.sseq && self.state.config.wants(subject) {
            self.num_pending = self.num_pending.saturating_sub(1);
        }
        if let Some(i) = self.state.lps.iter().position(|s| *s == seq) {
            self.state.lps.remove(i);
            self.num_pending = self.num_pending.saturating_sub(1);
        }
        if self.state.pending.remove(&seq).is_some() {
            self.redeliver.remove(&seq);
            self.update_ack_floor();
            self.dirty = true;
        }
    }

    pub fn num_pending(&self) -> u64 {
        self.num_pending
    }

    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Has this consumer acknowledged (or otherwise finished with) stream sequence `seq`?
    pub fn is_done_with(&self, seq: u64, subject: &[u8]) -> bool {
        if !self.state.config.wants(subject) {
            return true;
        }
        if self.state.config.ack_policy == AckPolicy::None {
            return seq < self.state.sseq && !self.state.lps.contains(&seq);
        }
        seq <= self.state.ack_floor_s
            || (seq < self.state.sseq && !self.state.pending.contains_key(&seq) && !self.state.lps.contains(&seq))
    }

    fn update_ack_floor(&mut self) {
        match self.state.pending.iter().next() {
            None => {
                self.state.ack_floor_s = self.state.delivered_sseq;
                self.state.ack_floor_c = self.state.dseq;
            }
            Some((s, p)) => {
                self.state.ack_floor_s = s.saturating_sub(1).max(self.state.ack_floor_s.min(s.saturating_sub(1)));
                self.state.ack_floor_c = p.cseq.saturating_sub(1);
            }
        }
    }

    /// Takes a pull request (`$JS.API.CONSUMER.MSG.NEXT`); answers at once with a status if it
    /// is refused.
    pub fn add_pull(&mut self, now: u64, reply: Bytes, body: &[u8], out: &mut Vec<Outbound>) {
        self.last_active = now;
        if self.is_push() {
            out.push(status(&reply, 409, "Consumer is push based", &[]));
            return;
        }
        #[derive(Deserialize, Default)]
        struct Req {
            #[serde(default, deserialize_with = "super::config::null_default")]
            batch: i64,
            #[serde(default, deserialize_with = "super::config::null_default")]
            max_bytes: i64,
            #[serde(default, deserialize_with = "super::config::null_default")]
            expires: i64,
            #[serde(default, deserialize_with = "super::config::null_default")]
            no_wait: bool,
            #[serde(default, deserialize_with = "super::config::null_default")]
            idle_heartbeat: i64,
        }
        let text = core::str::from_utf8(body).unwrap_or("").trim();
        let req = if text.is_empty() {
            Req { batch: 1, ..Default::default() }
        } else if let Ok(n) = text.parse::<i64>() {
            Req { batch: n, ..Default::default() }
        } else {
            match serde_json::from_str::<Req>(text) {
                Ok(r) => r,
                Err(e) => {
                    out.push(status(&reply, 400, &format!("Bad Request - {e}"), &[]));
                    return;
                }
            }
        };
        let batch = req.batch.max(1);
        let cfg = &self.state.config;
        if cfg.max_batch > 0 && batch > cfg.max_batch {
            out.push(status(&reply, 409, &format!("Exceeded MaxRequestBatch of {}", cfg.max_batch), &[]));
            return;
        }
        if cfg.max_expires > 0 && (req.expires == 0 || req.expires > cfg.max_expires) {
            out.push(status(
                &reply,
                409,
                &format!("Exceeded MaxRequestExpires of {}", go_duration(cfg.max_expires as u64)),
                &[],
            ));
            return;
        }
        if cfg.max_bytes > 0 && req.max_bytes > cfg.max_bytes {
            out.push(status(&reply, 409, &format!("Exceeded MaxRequestMaxBytes of {}", cfg.max_bytes), &[]));
            return;
        }
        if req.idle_heartbeat > 0 && req.expires > 0 && req.idle_heartbeat > req.expires / 2 {
            out.push(status(&reply, 400, "Bad Request - heartbeat value too large", &[]));
            return;
        }
        if self.waiting.len() as i64 >= cfg.max_waiting.max(1) {
            out.push(status(&reply, 409, "Exceeded MaxWaiting", &[]));
            return;
        }
        let expires = if req.expires > 0 { now + req.expires as u64 } else { 0 };
        let available = self.available();
        if req.no_wait && !available && expires == 0 {
            out.push(status(&reply, 404, "No Messages", &[]));
            return;
        }
        let heartbeat = req.idle_heartbeat.max(0) as u64;
        self.waiting.push_back(PullRequest {
            reply,
            batch,
            max_bytes: req.max_bytes.max(0),
            expires,
            // no_wait with an expiry and nothing pending waits like an ordinary request
            no_wait: req.no_wait && available,
            heartbeat,
            next_heartbeat: if heartbeat > 0 { now + heartbeat } else { 0 },
        });
    }

    /// Is anything deliverable right now (ignoring max_ack_pending)?
    fn available(&self) -> bool {
        !self.redeliver.is_empty() || self.num_pending > 0
    }

    fn at_max_ack_pending(&self) -> bool {
        let cfg = &self.state.config;
        cfg.ack_policy != AckPolicy::None
            && cfg.max_ack_pending > 0
            && self.state.pending.len() as i64 >= cfg.max_ack_pending
    }

    /// The next message to deliver: a due redelivery first, then last-per-subject starters,
    /// then new messages. Returns (stream seq, is redelivery).
    fn next_candidate(&mut self, stream: &Stream) -> Option<(u64, bool)> {
        while let Some(&seq) = self.redeliver.iter().next() {
            let max = self.state.config.max_deliver;
            match self.state.pending.get(&seq).copied() {
                Some(p) if stream.contains(seq) => {
                    if max > 0 && i64::from(p.deliveries) >= max {
                        self.redeliver.remove(&seq);
                        self.state.pending.remove(&seq);
                        self.timers.remove(&(p.deadline, seq));
                        self.exhausted.push((seq, p.deliveries));
                        self.dirty = true;
                        continue;
                    }
                    return Some((seq, true));
                }
                _ => {
                    self.redeliver.remove(&seq);
                    self.state.pending.remove(&seq);
                }
            }
        }
        if self.at_max_ack_pending() {
            return None;
        }
        while let Some(&seq) = self.state.lps.front() {
            if stream.contains(seq) {
                return Some((seq, false));
            }
            self.state.lps.pop_front();
        }
        let cfg = &self.state.config;
        match stream.next_matching(self.state.sseq, |s| cfg.wants(s)) {
            Some(seq) => Some((seq, false)),
            None => {
                // Scanned to the end: nothing up to the last sequence is for us.
                let end = stream.last_seq() + 1;
                if end > self.state.sseq {
                    self.state.sseq = end;
                    if cfg.ack_policy == AckPolicy::None || self.state.pending.is_empty() {
                        self.state.ack_floor_s = self.state.ack_floor_s.max(end - 1);
                        self.state.ack_floor_c = self.state.dseq;
                    }
                }
                None
            }
        }
    }

    /// Delivers whatever can be delivered: to waiting pull requests, or to the deliver
    /// subject of a push consumer that has interest. Returns sequences that count as
    /// acknowledged at once (ack policy none), for retention.
    pub fn deliver(&mut self, stream: &mut Stream, now: u64, out: &mut Vec<Outbound>, acked: &mut Vec<u64>) {
        if self.is_push() {
            if !self.push_bound {
                return;
            }
            let Some(target) = self.state.config.deliver_subject.clone() else { return };
            let target = Bytes::from(target);
            let fc = self.state.config.flow_control;
            while !(fc && self.fc_pending.is_some()) {
                let Some((seq, redelivery)) = self.next_candidate(stream) else { break };
                let size = stream.meta(seq).map_or(0, |m| m.size);
                if !self.deliver_one(stream, seq, redelivery, &target, now, out, acked) {
                    break;
                }
                if fc {
                    self.fc_msgs += 1;
                    self.fc_bytes += size;
                    if self.fc_msgs >= FC_MSGS || self.fc_bytes >= FC_BYTES {
                        self.fc_token += 1;
                        let reply = Bytes::from(format!("$JS.FC.{}.{}.{}", self.stream, self.name, self.fc_token));
                        let h = Headers::with_status(100, Some("FlowControl Request")).to_bytes();
                        out.push(Outbound {
                            route: target.clone(),
                            subject: target.clone(),
                            reply: Some(reply.clone()),
                            headers: Some(h),
                            payload: Bytes::new(),
                        });
                        self.fc_pending = Some(reply);
                        self.fc_msgs = 0;
                        self.fc_bytes = 0;
                    }
                }
            }
            return;
        }
        while let Some(req) = self.waiting.front() {
            if req.expires > 0 && req.expires <= now {
                // expired but its timer has not fired yet: it must not take a message
                if let Some(r) = self.waiting.pop_front() {
                    out.push(r.ended(408, "Request Timeout"));
                }
                continue;
            }
            let target = req.reply.clone();
            let budget = req.max_bytes;
            let Some((seq, redelivery)) = self.next_candidate(stream) else { break };
            let size = stream.meta(seq).map_or(0, |m| m.size) as i64;
            if budget > 0 && size > budget {
                let req = self.waiting.pop_front();
                if let Some(r) = req {
                    out.push(r.ended(409, "Message Size Exceeds MaxBytes"));
                }
                continue;
            }
            if !self.deliver_one(stream, seq, redelivery, &target, now, out, acked) {
                break;
            }
            if let Some(req) = self.waiting.front_mut() {
                req.batch -= 1;
                if req.max_bytes > 0 {
                    req.max_bytes -= size;
                }
                if req.heartbeat > 0 {
                    req.next_heartbeat = now + req.heartbeat;
                }
                if req.batch <= 0 || req.max_bytes < 0 {
                    self.waiting.pop_front();
                }
            }
        }
        // no_wait requests end as soon as nothing more is available for them
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].no_wait {
                if let Some(r) = self.waiting.remove(i) {
                    out.push(status(&r.reply, 404, "No Messages", &[]));
                }
            } else {
                i += 1;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_one(
        &mut self,
        stream: &mut Stream,
        seq: u64,
        redelivery: bool,
        target: &Bytes,
        now: u64,
        out: &mut Vec<Outbound>,
        acked: &mut Vec<u64>,
    ) -> bool {
        let msg = match stream.load(seq) {
            Ok(Some(m)) => m,
            _ => {
                // gone underneath us: skip it
                if redelivery {
                    self.redeliver.remove(&seq);
                    self.state.pending.remove(&seq);
                } else if self.state.lps.front() == Some(&seq) {
                    self.state.lps.pop_front();
                } else {
                    self.state.sseq = seq + 1;
                }
                return true;
            }
        };
        let deliveries = if redelivery {
            self.redeliver.remove(&seq);
            self.state.pending.get(&seq).map_or(1, |p| p.deliveries + 1)
        } else {
            if self.state.lps.front() == Some(&seq) {
                self.state.lps.pop_front();
            } else {
                self.state.sseq = seq + 1;
            }
            self.num_pending = self.num_pending.saturating_sub(1);
            self.state.delivered_sseq = self.state.delivered_sseq.max(seq);
            1
        };
        self.state.dseq += 1;
        let cseq = self.state.dseq;
        let cfg = &self.state.config;
        if cfg.ack_policy == AckPolicy::None {
            self.state.ack_floor_s = self.state.delivered_sseq;
            self.state.ack_floor_c = cseq;
            acked.push(seq);
        } else {
            if let Some(old) = self.state.pending.get(&seq) {
                self.timers.remove(&(old.deadline, seq));
            }
            let deadline = now + self.ack_wait(deliveries);
            self.state.pending.insert(seq, Pending { cseq, deliveries, deadline });
            self.timers.insert((deadline, seq));
        }
        let reply = format!(
            "$JS.ACK.{}.{}.{}.{}.{}.{}.{}",
            self.stream, self.name, deliveries, seq, cseq, msg.time, self.num_pending
        );
        let (headers, payload) = if cfg.headers_only {
            let mut h = msg.headers.as_deref().and_then(|b| Headers::parse(b).ok()).unwrap_or_default();
            h.append("Nats-Msg-Size", &format!("{}", msg.payload.len()));
            (Some(h.to_bytes()), Bytes::new())
        } else {
            (msg.headers.clone(), msg.payload.clone())
        };
        out.push(Outbound {
            route: target.clone(),
            subject: msg.subject,
            reply: Some(Bytes::from(reply)),
            headers,
            payload,
        });
        self.last_delivery = now;
        self.dirty = true;
        true
    }

    /// Handles an ack published to `$JS.ACK.…` for stream sequence `sseq`.
    pub fn ack(
        &mut self,
        now: u64,
        sseq: u64,
        body: &[u8],
        next_reply: Option<&Bytes>,
        out: &mut Vec<Outbound>,
    ) -> AckOutcome {
        self.last_active = now;
        let body = trim(body);
        let (verb, rest) = match body.iter().position(|b| *b == b' ') {
            Some(i) => (&body[..i], trim(&body[i + 1..])),
            None => (body, &b""[..]),
        };
        match verb {
            b"" | b"+ACK" | b"+OK" => self.do_ack(sseq),
            b"+NXT" => {
                let r = self.do_ack(sseq);
                if let Some(reply) = next_reply {
                    self.add_pull(now, reply.clone(), rest, out);
                }
                r
            }
            b"+WPI" => {
                if let Some(p) = self.state.pending.get(&sseq).copied() {
                    self.timers.remove(&(p.deadline, sseq));
                    let deadline = now + self.ack_wait(p.deliveries);
                    if let Some(pm) = self.state.pending.get_mut(&sseq) {
                        pm.deadline = deadline;
                    }
                    self.timers.insert((deadline, sseq));
                }
                AckOutcome::None
            }
            b"-NAK" => {
                let Some(p) = self.state.pending.get(&sseq).copied() else { return AckOutcome::None };
                let delay = parse_nak_delay(rest);
                self.timers.remove(&(p.deadline, sseq));
                if delay > 0 {
                    let deadline = now + delay;
                    if let Some(pm) = self.state.pending.get_mut(&sseq) {
                        pm.deadline = deadline;
                    }
                    self.timers.insert((deadline, sseq));
                } else {
                    self.redeliver.insert(sseq);
                }
                AckOutcome::Naked { sseq, cseq: p.cseq, deliveries: p.deliveries }
            }
            b"+TERM" => {
                let Some(p) = self.state.pending.remove(&sseq) else { return AckOutcome::None };
                self.timers.remove(&(p.deadline, sseq));
                self.redeliver.remove(&sseq);
                self.update_ack_floor();
                self.dirty = true;
                AckOutcome::Terminated {
                    sseq,
                    cseq: p.cseq,
                    deliveries: p.deliveries,
                    reason: String::from_utf8_lossy(rest).into_owned(),
                }
            }
            _ => AckOutcome::None,
        }
    }

    fn do_ack(&mut self, sseq: u64) -> AckOutcome {
        let acked: Vec<u64> = match self.state.config.ack_policy {
            AckPolicy::None => return AckOutcome::None,
            AckPolicy::Explicit => {
                let Some(p) = self.state.pending.remove(&sseq) else { return AckOutcome::None };
                self.timers.remove(&(p.deadline, sseq));
                self.redeliver.remove(&sseq);
                // nats-server's floor rule: with nothing pending the floor is everything
                // delivered; acking the next delivery after the floor moves it up to just
                // below the next pending message.
                if self.state.pending.is_empty() {
                    self.state.ack_floor_c = self.state.dseq;
                    self.state.ack_floor_s = self.state.sseq.saturating_sub(1);
                } else if p.cseq == self.state.ack_floor_c + 1 {
                    self.state.ack_floor_c = p.cseq;
                    self.state.ack_floor_s = sseq;
                    if let Some((ss, np)) = self.state.pending.range(sseq + 1..).next() {
                        self.state.ack_floor_c = np.cseq.saturating_sub(1);
                        self.state.ack_floor_s = ss - 1;
                    }
                }
                alloc::vec![sseq]
            }
            AckPolicy::All => {
                let Some(p) = self.state.pending.get(&sseq).copied() else { return AckOutcome::None };
                if p.cseq <= self.state.ack_floor_c {
                    return AckOutcome::None;
                }
                let acked: Vec<u64> = self.state.pending.range(..=sseq).map(|(s, _)| *s).collect();
                for s in &acked {
                    if let Some(p) = self.state.pending.remove(s) {
                        self.timers.remove(&(p.deadline, *s));
                    }
                    self.redeliver.remove(s);
                }
                self.state.ack_floor_c = p.cseq;
                self.state.ack_floor_s = sseq;
                acked
            }
        };
        self.dirty = true;
        AckOutcome::Acked(acked)
    }

    /// Fires what is due at `now`: ack-wait expiries (redelivery or, at `max_deliver`, the
    /// end of the road, see [`Consumer::take_exhausted`]), pull-request expiries and heartbeats.
    pub fn on_timeout(&mut self, now: u64, out: &mut Vec<Outbound>) {
        while let Some(&(deadline, seq)) = self.timers.iter().next() {
            if deadline > now {
                break;
            }
            self.timers.remove(&(deadline, seq));
            let Some(p) = self.state.pending.get(&seq).copied() else { continue };
            if p.deadline != deadline {
                continue;
            }
            let max = self.state.config.max_deliver;
            if max > 0 && i64::from(p.deliveries) >= max {
                self.state.pending.remove(&seq);
                self.update_ack_floor();
                self.dirty = true;
                self.exhausted.push((seq, p.deliveries));
            } else {
                self.redeliver.insert(seq);
            }
        }
        // pull requests: expiry and heartbeats
        let mut i = 0;
        while i < self.waiting.len() {
            let r = &mut self.waiting[i];
            if r.expires > 0 && r.expires <= now {
                if let Some(r) = self.waiting.remove(i) {
                    out.push(r.ended(408, "Request Timeout"));
                }
                continue;
            }
            if r.heartbeat > 0 && r.next_heartbeat <= now {
                r.next_heartbeat = now + r.heartbeat;
                let reply = r.reply.clone();
                out.push(self.heartbeat(&reply));
            }
            i += 1;
        }
        let hb = self.state.config.idle_heartbeat;
        if hb > 0 && self.is_push() && self.push_bound && now.saturating_sub(self.last_delivery) >= hb as u64 {
            if let Some(d) = self.state.config.deliver_subject.clone() {
                out.push(self.heartbeat(&Bytes::from(d)));
                self.last_delivery = now;
            }
        }
    }

    /// Messages that reached `max_deliver` since the last call: (stream seq, deliveries).
    pub fn take_exhausted(&mut self) -> Vec<(u64, u32)> {
        core::mem::take(&mut self.exhausted)
    }

    fn heartbeat(&self, to: &Bytes) -> Outbound {
        let mut extra = alloc::vec![
            ("Nats-Last-Consumer", format!("{}", self.state.dseq)),
            ("Nats-Last-Stream", format!("{}", self.state.delivered_sseq)),
        ];
        if let Some(fc) = &self.fc_pending {
            extra.push(("Nats-Consumer-Stalled", String::from_utf8_lossy(fc).into_owned()));
        }
        status(to, 100, "Idle Heartbeat", &extra)
    }

    /// The client answered a flow-control request (an empty message to its reply subject).
    pub fn flow_control_reply(&mut self, subject: &[u8]) {
        if self.fc_pending.as_deref() == Some(subject) {
            self.fc_pending = None;
        }
    }

    /// When this consumer next needs [`Consumer::on_timeout`].
    pub fn next_deadline(&self) -> Option<u64> {
        let mut next = self.timers.iter().next().map(|(d, _)| *d);
        let mut consider = |t: u64| {
            if t > 0 {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for r in &self.waiting {
            consider(r.expires);
            consider(r.next_heartbeat);
        }
        let hb = self.state.config.idle_heartbeat;
        if hb > 0 && self.is_push() && self.push_bound {
            consider(self.last_delivery + hb as u64);
        }
        next
    }

    /// Answers every waiting pull request with `409 Consumer Deleted` (the consumer is going).
    pub fn release_waiting(&mut self, out: &mut Vec<Outbound>) {
        for r in self.waiting.drain(..) {
            out.push(status(&r.reply, 409, "Consumer Deleted", &[]));
        }
    }

    pub fn info(&self, now: u64) -> ConsumerInfo {
        let s = &self.state;
        let num_redelivered = s.pending.values().filter(|p| p.deliveries > 1).count() as u64;
        ConsumerInfo {
            kind: None,
            stream_name: self.stream.clone(),
            name: self.name.clone(),
            created: rfc3339(s.created),
            config: s.config.for_response(),
            delivered: SeqInfo {
                consumer_seq: s.dseq,
                stream_seq: s.delivered_sseq,
                last_active: (s.dseq > 0).then(|| rfc3339(self.last_delivery)),
            },
            ack_floor: SeqInfo { consumer_seq: s.ack_floor_c, stream_seq: s.ack_floor_s, last_active: None },
            num_ack_pending: s.pending.len() as u64,
            num_redelivered,
            num_waiting: self.waiting.len() as u64,
            num_pending: self.num_pending,
            push_bound: self.is_push() && self.push_bound,
            ts: rfc3339(now),
        }
    }

    pub fn saved_state(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// `-NAK {"delay": ns}` or `-NAK 5s`.
fn parse_nak_delay(rest: &[u8]) -> u64 {
    if rest.is_empty() {
        return 0;
    }
    #[derive(Deserialize)]
    struct Delay {
        #[serde(default)]
        delay: i64,
    }
    if let Ok(d) = serde_json::from_slice::<Delay>(rest) {
        return d.delay.max(0) as u64;
    }
    core::str::from_utf8(rest).ok().and_then(parse_go_duration).unwrap_or(0)
}

/// What a `$JS.ACK` subject says about the message it acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRef<'a> {
    pub stream: &'a [u8],
    pub consumer: &'a [u8],
    pub deliveries: u64,
    pub stream_seq: u64,
    pub consumer_seq: u64,
}

/// Where every ack subject starts: the reply subject of each message a consumer delivers.
pub const ACK_PREFIX: &[u8] = b"$JS.ACK.";

/// Reads an ack subject, accepting the v1 (9 tokens) and v2 (11 or more) forms.
pub fn parse_ack_subject(subject: &[u8]) -> Option<AckRef<'_>> {
    // tokens on the stack: this runs for every ack
    let mut toks: [&[u8]; 12] = [&[]; 12];
    let mut n = 0;
    for t in subject.split(|b| *b == b'.') {
        if n < toks.len() {
            toks[n] = t;
        }
        n += 1;
    }
    let off = match n {
        9 => 2,
        n if n >= 11 => 4,
        _ => return None,
    };
    let num = |t: &[u8]| core::str::from_utf8(t).ok()?.parse::<u64>().ok();
    Some(AckRef {
        stream: toks[off],
        consumer: toks[off + 1],
        deliveries: num(toks[off + 2])?,
        stream_seq: num(toks[off + 3])?,
        consumer_seq: num(toks[off + 4])?,
    })
}

/// An ack subject read whole: besides what [`parse_ack_subject`] gives the engine, the
/// delivery time (ns) and the messages still pending, which clients show as a message's
/// metadata (and KV watchers as an entry's `delta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckMeta<'a> {
    pub ack: AckRef<'a>,
    pub timestamp: u64,
    pub pending: u64,
}

pub fn parse_ack_meta(subject: &[u8]) -> Option<AckMeta<'_>> {
    if !subject.starts_with(ACK_PREFIX) {
        return None;
    }
    let ack = parse_ack_subject(subject)?;
    let n = subject.split(|b| *b == b'.').count();
    let off = if n == 9 { 2 } else { 4 };
    let mut toks = subject.split(|b| *b == b'.').skip(off + 5);
    let mut num = || core::str::from_utf8(toks.next()?).ok()?.parse::<u64>().ok();
    Some(AckMeta { ack, timestamp: num()?, pending: num()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_meta_time_and_pending() {
        let fields = |m: AckMeta<'_>| (m.ack.stream_seq, m.timestamp, m.pending);
        let v1 = parse_ack_meta(b"$JS.ACK.KV_b.c1.1.42.7.1700000000000000000.3").map(fields);
        assert_eq!(v1, Some((42, 1_700_000_000_000_000_000, 3)));
        let v2 = parse_ack_meta(b"$JS.ACK.hub.ACCHASH.ORDERS.worker.1.9.4.1700000000000000000.5.tok").map(fields);
        assert_eq!(v2, Some((9, 1_700_000_000_000_000_000, 5)));
        assert!(parse_ack_meta(b"_INBOX.x").is_none());
        assert!(parse_ack_meta(b"$JS.ACK.S.C.1.2.3.notatime.0").is_none());
    }

    #[test]
    fn ack_subjects_v1_v2_and_junk() {
        let v1 = parse_ack_subject(b"$JS.ACK.ORDERS.worker.2.17.5.1700000000000000000.3");
        let v1 = v1.map(|a| (a.stream, a.consumer, a.deliveries, a.stream_seq, a.consumer_seq));
        assert_eq!(v1, Some((&b"ORDERS"[..], &b"worker"[..], 2, 17, 5)));
        let v2 = parse_ack_subject(b"$JS.ACK.hub.ACCHASH.ORDERS.worker.1.9.4.1700000000000000000.0.tok");
        assert_eq!(v2.map(|a| (a.stream, a.stream_seq)), Some((&b"ORDERS"[..], 9)));
        assert!(parse_ack_subject(b"$JS.ACK.ORDERS.worker.x.17.5.1.3").is_none());
        assert!(parse_ack_subject(b"$JS.ACK.ORDERS.worker.1.2").is_none());
        // tokens past the twelfth are not needed (and not stored)
        let long = parse_ack_subject(b"$JS.ACK.d.h.S.C.1.2.3.4.5.6.7.8.9");
        assert_eq!(long.map(|a| (a.stream, a.consumer_seq)), Some((&b"S"[..], 3)));
    }
}
