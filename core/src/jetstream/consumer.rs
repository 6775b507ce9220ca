//! One consumer: where it is in its stream, what is delivered and not yet acknowledged, the
//! pull requests waiting on it, and the acknowledgement protocol.
//!
//! The consumer never reads a clock: every entry point takes `now`, and
//! [`Consumer::next_deadline`] tells the engine when it next needs a call (an ack wait runs
//! out, a pull request expires, a heartbeat is due).
//!
//! This file holds the consumer's state, delivery (push and pull), redelivery timers and
//! its info; `ack` the acknowledgement protocol and ack subjects, `pull` the admission
//! of pull requests, `priority` priority groups (which request a message goes to) and
//! `pause` the pause deadline.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::Serialize;

use super::config::{AckPolicy, ConsumerConfig, DeliverPolicy};
use super::stream::Stream;
use super::time::{parse_rfc3339, rfc3339};
use super::{Interest, Outbound};
use crate::proto::Headers;

mod ack;
mod fc_ack;
mod pause;
pub(crate) mod priority;
mod pull;
mod reset;
mod set;
mod state_read;

pub use ack::{parse_ack_meta, parse_ack_subject, AckMeta, AckOutcome, AckRef, ACK_PREFIX};
use priority::{Pin, PriorityGroupState};
use pull::PullRequest;
pub use set::{Consumers, PushWaiting};

/// What a consumer did that the engine announces with an advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// A pull client was pinned (`CONSUMER.PINNED`).
    Pinned { group: String, id: String },
    /// The pin was dropped, `reason` `admin` or `timeout` (`CONSUMER.UNPINNED`).
    Unpinned { group: String, reason: &'static str },
    /// Paused or resumed (`CONSUMER.PAUSE`), with the deadline as nats-server prints it.
    Pause { paused: bool, until: String },
}

/// A delivered message awaiting its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct Pending {
    /// Consumer sequence of the latest delivery.
    cseq: u64,
    deliveries: u32,
    /// When it becomes due for redelivery (0: not timed, e.g. ack policy none).
    deadline: u64,
}

/// The persisted part of a consumer.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ConsumerState {
    pub config: ConsumerConfig,
    pub created: u64,
    pub sseq: u64,
    pub dseq: u64,
    pub delivered_sseq: u64,
    pub ack_floor_c: u64,
    pub ack_floor_s: u64,
    pending: BTreeMap<u64, Pending>,
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
    #[serde(skip_serializing_if = "std_false")]
    pub paused: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub pause_remaining: u64,
    pub ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_groups: Option<Vec<PriorityGroupState>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// When the waiting requests were last checked for ones that can no longer be served
    /// (nats-server's `lwqic`): a full queue is checked again at most once a second.
    last_shed: u64,
    num_pending: u64,
    /// Last time there was interest (push) or a pull request or an ack; drives
    /// `inactive_threshold`.
    pub last_active: u64,
    last_delivery: u64,
    /// When an ack last moved the consumer's acks (0: never), reported as the ack floor's
    /// `last_active` as nats-server does.
    pub(crate) last_ack: u64,
    /// Someone listens on the deliver subject (push); changed only by [`Consumers`], which
    /// counts the push consumers that wait.
    push_bound: bool,
    /// Persisted state changed since the last save.
    pub dirty: bool,
    /// Messages that reached `max_deliver` since the engine last asked: (stream seq, deliveries).
    exhausted: Vec<(u64, u32)>,
    /// Push flow control: the `$JS.FC` reply subject of the request still unanswered, and
    /// the messages and bytes delivered that no answered request covers yet.
    fc_pending: Option<Bytes>,
    fc_msgs: u64,
    fc_bytes: u64,
    /// What the unanswered request covers (the pending counts when it went out): its
    /// answer releases that much.
    fc_covered: (u64, u64),
    /// The byte window, doubled by each answer up to [`FC_MAX_BYTES`] (slow start).
    fc_window: u64,
    fc_token: u64,
    /// When the pause ends (0: not paused); see `pause`.
    paused_until: u64,
    /// The pinned client of a `pinned_client` consumer; see `priority`.
    pin: Option<Pin>,
    /// Pin ids come from here.
    ids: fastrand::Rng,
    /// Advisories owed since the engine last asked.
    events: Vec<ConsumerEvent>,
}

/// Push flow control is paced as nats-server paces it: a request goes out once the pending
/// (unanswered) deliveries pass half the window, delivery goes on until they fill the whole
/// window, and each answer releases what its request covered and doubles the byte window
/// up to [`FC_MAX_BYTES`]. The request is thus answered while the second half is on its
/// way, and a reader that keeps up never waits a round trip; one that stops gets at most a
/// window. The windows start at nats-server's (`JsFlowControlMaxPending` / 16 = 2 MiB)
/// and end at its 32 MiB; the message window (nats-server has none) keeps a burst of small
/// messages well below a client's `max_pending`, so a reader that keeps up is never cut off
/// as a slow consumer.
const FC_MSGS: u64 = 2048;
const FC_BYTES: u64 = 2 * 1024 * 1024;
const FC_MAX_BYTES: u64 = 32 * 1024 * 1024;

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
        // Positions below the start count as acknowledged, as in nats-server; for the last
        // message per subject the start is the first of those.
        state.delivered_sseq = state.lps.front().copied().unwrap_or(state.sseq).saturating_sub(1);
        state.ack_floor_s = state.delivered_sseq;
        let mut c = Consumer::from_state(name, stream, state, now);
        c.dirty = true;
        c
    }

    /// Restores a consumer from its saved state.
    pub fn from_state(name: String, stream: &Stream, state: ConsumerState, now: u64) -> Consumer {
        // pin ids differ between consumers and between runs; no clock or entropy here
        let seed = [stream.name().as_bytes(), b".", name.as_bytes()]
            .concat()
            .iter()
            .fold(now ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
        let mut c = Consumer {
            name,
            stream: stream.name().into(),
            state,
            redeliver: BTreeSet::new(),
            timers: BTreeSet::new(),
            waiting: VecDeque::new(),
            last_shed: 0,
            num_pending: 0,
            last_active: now,
            last_delivery: now,
            last_ack: 0,
            push_bound: false,
            dirty: false,
            exhausted: Vec::new(),
            fc_pending: None,
            fc_msgs: 0,
            fc_bytes: 0,
            fc_covered: (0, 0),
            fc_window: FC_BYTES,
            fc_token: 0,
            paused_until: 0,
            pin: None,
            ids: fastrand::Rng::with_seed(seed),
            events: Vec::new(),
        };
        c.arm_pause(now);
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

    /// Whether a push consumer's deliver subject had a subscriber at the last look.
    pub fn push_bound(&self) -> bool {
        self.push_bound
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
        // nothing past what a sync covers goes out (`stream/commit.rs`)
        let visible = stream.visible_last();
        while let Some(&seq) = self.state.lps.front() {
            if stream.contains(seq) {
                return (seq <= visible).then_some((seq, false));
            }
            self.state.lps.pop_front();
        }
        let cfg = &self.state.config;
        match stream.next_matching(self.state.sseq, |s| cfg.wants(s)).filter(|s| *s <= visible) {
            Some(seq) => Some((seq, false)),
            None => {
                // Scanned to the end: nothing up to the last visible sequence is for us.
                let end = visible + 1;
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
    pub fn deliver(
        &mut self,
        stream: &mut Stream,
        now: u64,
        interest: &dyn Interest,
        out: &mut Vec<Outbound>,
        acked: &mut Vec<u64>,
    ) {
        if self.is_push() {
            if !self.push_bound || self.is_paused(now) {
                return;
            }
            let Some(target) = self.state.config.deliver_subject.clone() else { return };
            let target = Bytes::from(target);
            let fc = self.state.config.flow_control;
            while !(fc && (self.fc_msgs >= FC_MSGS || self.fc_bytes >= self.fc_window)) {
                let Some((seq, redelivery)) = self.next_candidate(stream) else { break };
                let size = stream.meta(seq).map_or(0, |m| m.size);
                if !self.deliver_one(stream, seq, redelivery, &target, now, out, acked) {
                    break;
                }
                if fc {
                    self.fc_msgs += 1;
                    self.fc_bytes += size;
                    let past_half = self.fc_msgs >= FC_MSGS / 2 || self.fc_bytes >= self.fc_window / 2;
                    if self.fc_pending.is_none() && past_half {
                        self.request_flow_control(&target, out);
                    }
                }
            }
            self.flow_control_for_acks(&target, true, out);
            return;
        }
        while !self.waiting.is_empty() && !self.is_paused(now) {
            let Some((seq, redelivery)) = self.next_candidate(stream) else { break };
            let Some((i, pinned_now)) = self.pick_request(now, redelivery, interest, out) else { break };
            let size = stream.meta(seq).map_or(0, |m| m.size) as i64;
            let (target, budget) = (self.waiting[i].reply.clone(), self.waiting[i].max_bytes);
            if budget > 0 && size > budget {
                if let Some(r) = self.waiting.remove(i) {
                    out.push(r.ended(409, "Message Size Exceeds MaxBytes"));
                }
                if pinned_now {
                    self.revoke_pin();
                }
                continue;
            }
            if !self.deliver_one(stream, seq, redelivery, &target, now, out, acked) {
                break;
            }
            if let Some(req) = self.waiting.get_mut(i) {
                req.served = true;
                req.batch -= 1;
                if req.max_bytes > 0 {
                    req.max_bytes -= size;
                }
                if req.heartbeat > 0 {
                    req.next_heartbeat = now + req.heartbeat;
                }
                if req.batch <= 0 || req.max_bytes < 0 {
                    self.waiting.remove(i);
                }
            }
        }
        // no_wait requests end as soon as nothing more is available for them
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].done_when_dry() {
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
            // no ack wait under flow-control acks (`fc_ack.rs`)
            if !self.acks_by_flow_control() {
                self.timers.insert((deadline, seq));
            }
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
        let headers = self.with_pin_header(headers);
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

    /// Fires what is due at `now`: ack-wait expiries (redelivery or, at `max_deliver`, the
    /// end of the road, see [`Consumer::take_exhausted`]), pull-request expiries and heartbeats.
    pub fn on_timeout(&mut self, now: u64, out: &mut Vec<Outbound>) {
        self.on_pause_timeout(now);
        self.on_pin_timeout(now);
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
                let d = Bytes::from(d);
                out.push(self.heartbeat(&d));
                self.flow_control_for_acks(&d, false, out);
                self.last_delivery = now;
            }
        }
    }

    /// Advisories owed since the last call (pins, pauses).
    pub fn take_events(&mut self) -> Vec<ConsumerEvent> {
        core::mem::take(&mut self.events)
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
            let (msgs, bytes) = core::mem::take(&mut self.fc_covered);
            self.fc_msgs = self.fc_msgs.saturating_sub(msgs);
            self.fc_bytes = self.fc_bytes.saturating_sub(bytes);
            self.fc_window = (self.fc_window * 2).min(FC_MAX_BYTES);
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
        consider(self.paused_until);
        consider(self.pin_deadline().unwrap_or(0));
        let hb = self.state.config.idle_heartbeat;
        if hb > 0 && self.is_push() && self.push_bound {
            consider(self.last_delivery + hb as u64);
        }
        next
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
            ack_floor: SeqInfo {
                consumer_seq: s.ack_floor_c,
                stream_seq: s.ack_floor_s,
                last_active: (self.last_ack > 0).then(|| rfc3339(self.last_ack)),
            },
            num_ack_pending: s.pending.len() as u64,
            num_redelivered,
            num_waiting: self.waiting.len() as u64,
            num_pending: self.num_pending,
            push_bound: self.is_push() && self.push_bound,
            paused: self.is_paused(now),
            pause_remaining: self.pause_remaining(now),
            ts: rfc3339(now),
            priority_groups: self.priority_groups_info(),
        }
    }

    pub fn saved_state(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }
}
