//! Following an origin that lives elsewhere (`external { api, deliver }`: another domain or
//! account, reached through whatever carries the engine's messages — a server's router, a
//! leaf link to a hub). As nats-server does it (`setupMirrorConsumer`,
//! `trySetupSourceConsumer`): the engine asks the origin's JetStream, through a request to
//! `<api>.CONSUMER.CREATE.<stream>`, for an ephemeral `direct` push consumer starting after the
//! last origin sequence it took (flow control, a heartbeat a second, ack policy none, dropped
//! by the origin 10 s after we stop listening), and stores what that consumer delivers.
//!
//! Every delivery's `$JS.ACK` reply carries the origin and delivery sequences. A delivery
//! sequence that skips one, or a heartbeat naming a last delivery we did not get, means
//! messages were lost on the way (the link was cut): the consumer is dropped and a new one
//! created from the last origin sequence taken, so the copy ends up with every message once,
//! in order. Nothing heard for [`HEALTH`] (no heartbeat) does the same. Requests are
//! throttled ([`RETRY_MIN`]) and back off after failures, as in nats-server.
//!
//! As nats-server 2.14 does, the request first asks for a "sourcing" consumer (API level 4,
//! `Nats-Required-Api-Level: 4`) under a name stable for the link (`JS_MIRROR_<id>`,
//! `JS_SRC_<id>`): the origin makes it a durable acking by flow control on an interest or
//! work-queue stream (so the origin forgets what we stored, and the same durable is found
//! again after a restart), or a `direct` one named `<name>-<suffix>` on a limits stream
//! (`sourcing.rs` is that side). An origin below level 4 answers `10185` (or `10025`, a
//! config field it does not know) and is asked again at once for the plain `direct`
//! consumer under a unique name (`<name>_<nuid>`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde_json::{json, Value};

use super::super::consumer::{parse_ack_meta, AckMeta, ACK_PREFIX};
use super::super::engine::{Interest, JetStream};
use super::super::errors::ApiError;
use super::super::store::StoredMsg;
use super::super::{Outbound, SubChange};
use super::link::RETRY;
use super::{ExternalStream, StreamSource};
use crate::proto::header_value;

const SEC: u64 = 1_000_000_000;
/// The heartbeat asked of the origin's consumer (nats-server's `sourceHealthHB`).
const HEARTBEAT: u64 = SEC;
/// Silence after which a consumer counts as lost, and the origin's inactive threshold for it
/// (`sourceHealthCheckInterval`).
pub(crate) const HEALTH: u64 = 10 * SEC;
/// The least time between two create requests of one link (`sourceConsumerRetryThreshold`).
const RETRY_MIN: u64 = 2 * SEC;
/// How long a create request waits for its answer. nats-server waits 30 s; across a leaf link
/// that was just restored a request sent while it was down is lost, and a shorter wait gets
/// the copy going again sooner.
const CREATE_WAIT: u64 = 10 * SEC;
/// Subjects of create answers (nats-server's `infoReplySubject`).
const REPLY_PREFIX: &str = "$JSC.R.";

/// The consumer an external link reads through, and the state of asking for it.
#[derive(Debug, Default)]
pub(crate) struct Remote {
    /// The consumer delivering to us, named by us in its create request: its deliveries are
    /// taken from then on, as they may come before the answer.
    cname: Option<String>,
    /// Its deliver subject (subscribed from the request on).
    deliver: Option<String>,
    /// The reply subject of a create request in flight.
    pending: Option<String>,
    /// The last delivery sequence taken from `cname`.
    dseq: u64,
    /// When the last create request left (0: never).
    lreq: u64,
    /// Failed creates in a row, for the backoff.
    fails: u32,
    /// Not before this may the next create request leave.
    setup_at: u64,
    /// The origin's messages still to come, from the last delivery (`lag` in stream info).
    pub(crate) lag: u64,
    /// The request in flight asked for a sourcing consumer (API level 4).
    sourcing: bool,
    /// The consumer dropped last: its deliveries still on their way are not taken as the
    /// new one's (a sourcing consumer's name only has the stable part in common).
    dropped: Option<String>,
}

/// Whether a delivery of consumer `theirs` is for the consumer we asked for as `mine` (an
/// origin's limits stream appends `-<suffix>` to a sourcing consumer's name).
fn named(mine: &str, theirs: &[u8]) -> bool {
    let mine = mine.as_bytes();
    theirs == mine || (theirs.starts_with(mine) && theirs.get(mine.len()) == Some(&b'-'))
}

/// The stable part of a link's consumer name: the same for the same stream, origin and
/// domain across restarts, so a durable sourcing consumer is found again (nats-server
/// hashes the same things, `createStableConsumerHash`). FNV-1a, in base 36.
pub(super) fn stable_id(stream: &str, iname: &str, domain: Option<&str>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [stream, "\0", iname, "\0", domain.unwrap_or("")] {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mut out = String::new();
    for _ in 0..8 {
        let d = (h % 36) as u8;
        out.push(char::from(if d < 10 { b'0' + d } else { b'A' + d - 10 }));
        h /= 36;
    }
    out
}

/// The header a sourcing request carries.
const LEVEL_4: &[u8] = b"NATS/1.0\r\nNats-Required-Api-Level: 4\r\n\r\n";
/// The errors by which an origin declines a sourcing request (nats-server's
/// `JSRequiredApiLevelErr`, `JSInvalidJSONErr`).
const DECLINED: [u64; 2] = [10185, 10025];

/// nats-server's `calculateRetryBackoff`: 5 s per failure, twice, at most 2 minutes.
fn backoff(fails: u32) -> u64 {
    (5 * SEC * 2 * u64::from(fails)).min(120 * SEC)
}

/// `a.b` joined as nats-server joins prefixes (a doubled dot collapses).
fn join(prefix: &str, rest: &str) -> String {
    format!("{prefix}.{rest}").replace("..", ".")
}

/// What to say in a create request about where to start.
fn start(cfg: &StreamSource, from: Option<u64>) -> (&'static str, Value) {
    match from {
        Some(seq) if seq > 1 => ("by_start_sequence", json!({ "opt_start_seq": seq })),
        _ if cfg.opt_start_seq > 0 => ("by_start_sequence", json!({ "opt_start_seq": cfg.opt_start_seq })),
        _ => match &cfg.opt_start_time {
            Some(t) => ("by_start_time", json!({ "opt_start_time": t })),
            None => ("all", json!({})),
        },
    }
}

/// The create request's subject and body for origin `cfg` (whose `external` is `ext`).
fn create_request(
    cfg: &StreamSource,
    ext: &ExternalStream,
    cname: &str,
    deliver: &str,
    from: Option<u64>,
    meta: Value,
) -> (String, Value) {
    let (policy, at) = start(cfg, from);
    let mut config = json!({
        "name": cname,
        "deliver_subject": deliver,
        "deliver_policy": policy,
        "ack_policy": "none",
        "ack_wait": 22 * 3600 * SEC,
        "max_deliver": 1,
        "idle_heartbeat": HEARTBEAT,
        "flow_control": true,
        "direct": true,
        "inactive_threshold": HEALTH,
        "metadata": meta,
    });
    if let (Value::Object(c), Value::Object(a)) = (&mut config, at) {
        c.extend(a);
    }
    let mut filters: Vec<&str> = cfg.subject_transforms.iter().map(|t| t.src.as_str()).collect();
    if !cfg.filter_subject.is_empty() {
        filters = alloc::vec![cfg.filter_subject.as_str()];
    }
    let api = if ext.api.is_empty() { "$JS.API" } else { ext.api.as_str() };
    let subject = match filters.as_slice() {
        [one] => {
            config["filter_subject"] = json!(one);
            join(api, &format!("CONSUMER.CREATE.{}.{cname}.{one}", cfg.name))
        }
        [] => join(api, &format!("CONSUMER.CREATE.{}", cfg.name)),
        many => {
            config["filter_subjects"] = json!(many);
            join(api, &format!("CONSUMER.CREATE.{}", cfg.name))
        }
    };
    (subject, json!({ "stream_name": cfg.name, "config": config }))
}

/// Which of our links a message on the engine's subscriptions is for, and as what.
enum Kind {
    Answer,
    Delivery,
    Control,
}

impl JetStream {
    /// Takes a message meant for an external link (a create answer, a delivery, a heartbeat or
    /// flow control); false when it is none of those.
    pub(in super::super) fn external_msg(
        &mut self,
        now: u64,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
        interest: &dyn Interest,
    ) -> bool {
        let kind = if subject.starts_with(REPLY_PREFIX.as_bytes()) {
            Kind::Answer
        } else if reply.is_some_and(|r| r.starts_with(ACK_PREFIX)) {
            Kind::Delivery
        } else if payload.is_empty() && headers.is_some_and(|h| h.starts_with(b"NATS/1.0 100 ")) {
            Kind::Control
        } else {
            return false;
        };
        let ack = reply.and_then(parse_ack_meta);
        let found = self.sourcing.iter().find_map(|(name, links)| {
            let i = links.links.iter().position(|l| {
                let Some(r) = &l.remote else { return false };
                match kind {
                    Kind::Answer => r.pending.as_deref().is_some_and(|p| p.as_bytes() == subject),
                    Kind::Delivery => ack.is_some_and(|a| {
                        a.ack.stream == l.cfg.name.as_bytes()
                            && r.cname.as_deref().is_some_and(|c| named(c, a.ack.consumer))
                            && r.dropped.as_deref().is_none_or(|d| d.as_bytes() != a.ack.consumer)
                    }),
                    Kind::Control => r.deliver.as_deref().is_some_and(|d| d.as_bytes() == subject),
                }
            })?;
            Some((name.clone(), i))
        });
        let Some((name, i)) = found else {
            // a delivery of a consumer we dropped (still on its way): not a publish either
            return matches!(kind, Kind::Delivery) && ack.is_some_and(|a| a.ack.consumer.starts_with(b"JS_"));
        };
        if let Some(l) = self.sourcing.get_mut(&name).and_then(|l| l.links.get_mut(i)) {
            l.last = now;
        }
        match kind {
            Kind::Answer => self.on_create_answer(&name, i, now, payload),
            Kind::Control => self.on_control(&name, i, now, reply, headers.unwrap_or_default()),
            Kind::Delivery => {
                if let Some(a) = ack {
                    let m = StoredMsg {
                        seq: a.ack.stream_seq,
                        subject: Bytes::copy_from_slice(subject),
                        headers: headers.map(Bytes::copy_from_slice),
                        payload: Bytes::copy_from_slice(payload),
                        time: a.timestamp,
                    };
                    if self.on_delivery(&name, i, now, &m, &a) {
                        self.pump_stream(&name, now, interest);
                    }
                }
            }
        }
        true
    }

    /// Drops the link's consumer (its subscriptions too) and plans a new one after `delay`,
    /// not sooner than the throttle allows.
    fn restart_remote(&mut self, name: &str, i: usize, now: u64, delay: u64) {
        let mut gone = Vec::new();
        if let Some(r) = self.sourcing.get_mut(name).and_then(|l| l.links.get_mut(i)).and_then(|l| l.remote.as_mut()) {
            gone.extend(r.deliver.take());
            gone.extend(r.pending.take());
            r.dropped = r.cname.take();
            r.dseq = 0;
            r.setup_at = (now + delay).max(r.lreq + RETRY_MIN);
        }
        self.subs.extend(gone.into_iter().map(SubChange::Remove));
    }

    /// The answer to a create request: the consumer is ours from here on, or the request
    /// failed and is tried again after a backoff.
    fn on_create_answer(&mut self, name: &str, i: usize, now: u64, payload: &[u8]) {
        let answer: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let cname = answer.get("name").and_then(Value::as_str).filter(|_| answer.get("error").is_none());
        let code = answer.pointer("/error/err_code").and_then(Value::as_u64);
        let is_mirror = self.streams.get(name).is_some_and(|e| e.stream.config.mirror.is_some());
        let last = self.streams.get(name).map_or(0, |e| e.stream.last_seq());
        let Some(l) = self.sourcing.get_mut(name).and_then(|l| l.links.get_mut(i)) else { return };
        let Some(r) = l.remote.as_mut() else { return };
        let reply = r.pending.take();
        self.subs.extend(reply.map(SubChange::Remove));
        if r.sourcing && code.is_some_and(|c| DECLINED.contains(&c)) {
            // an origin below API level 4: ask again for the plain consumer
            let base = r.cname.clone().unwrap_or_default();
            let unique = format!("{base}_{}", self.nuid());
            return self.send_create(name, i, unique, false);
        }
        match cname {
            Some(c) if r.cname.as_deref().is_some_and(|mine| named(mine, c.as_bytes())) => {
                r.cname = Some(c.into());
                l.err = None;
                // an origin that starts later than asked (purged) moves the position on
                let delivered = answer.pointer("/delivered/stream_seq").and_then(Value::as_u64).unwrap_or(0);
                let mut sseq = l.sseq.unwrap_or(0);
                if r.dseq == 0 {
                    sseq = sseq.max(delivered);
                }
                if is_mirror {
                    sseq = sseq.max(last);
                }
                l.sseq = Some(sseq);
                r.fails = 0;
            }
            _ => {
                r.fails += 1;
                let delay = backoff(r.fails);
                // shown in stream info until a create succeeds (nats-server's `setup failed`
                // when the answer carries no error of its own)
                let setup = || json!(ApiError::with(500, 10029, "stream mirror consumer setup failed"));
                l.err = Some(answer.get("error").cloned().unwrap_or_else(setup));
                self.restart_remote(name, i, now, delay);
            }
        }
    }

    /// A heartbeat (is a delivery missing? does the origin think we stalled?) or a flow
    /// control request (answered with where we are).
    fn on_control(&mut self, name: &str, i: usize, now: u64, reply: Option<&[u8]>, headers: &[u8]) {
        let Some(l) = self.sourcing.get(name).and_then(|l| l.links.get(i)) else { return };
        let Some(r) = l.remote.as_ref() else { return };
        let (dseq, sseq) = (r.dseq, l.sseq.unwrap_or(0));
        if let Some(fc) = reply.filter(|r| !r.is_empty()) {
            let h = format!("NATS/1.0\r\nNats-Last-Consumer: {dseq}\r\nNats-Last-Stream: {sseq}\r\n\r\n");
            let fc = Bytes::copy_from_slice(fc);
            self.out.push(Outbound::status(fc, Bytes::from(h)));
            return;
        }
        let num =
            |n: &[u8]| header_value(headers, n).and_then(|v| core::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
        if num(b"Nats-Last-Consumer").is_some_and(|last| last > 0 && last != dseq) {
            return self.restart_remote(name, i, now, 0);
        }
        if let Some(fc) = header_value(headers, b"Nats-Consumer-Stalled").filter(|v| !v.is_empty()) {
            self.out.push(Outbound::data(Bytes::copy_from_slice(fc), Bytes::new()));
        }
    }

    /// One delivery of the link's consumer: stored if it is the next one, passed over if
    /// already taken, and a gap re-creates the consumer. Whether anything was stored.
    fn on_delivery(&mut self, name: &str, i: usize, now: u64, m: &StoredMsg, ack: &AckMeta<'_>) -> bool {
        let (dseq, dc, pending) = (ack.ack.consumer_seq, ack.ack.deliveries, ack.pending);
        let is_mirror = self.streams.get(name).is_some_and(|e| e.stream.config.mirror.is_some());
        let Some(l) = self.sourcing.get_mut(name).and_then(|l| l.links.get_mut(i)) else { return false };
        let (cfg, iname, taken) = (l.cfg.clone(), l.iname.clone(), l.sseq.unwrap_or(0));
        let Some(r) = l.remote.as_mut() else { return false };
        if dc > 1 {
            return false;
        }
        if m.seq <= taken {
            if dseq == r.dseq + 1 {
                r.dseq += 1;
            }
            return false;
        }
        // a mirror takes a later origin sequence with the next delivery as messages removed
        // at the origin (the gap stays a gap); a source needs only the next delivery
        let next = if is_mirror { m.seq == taken + 1 || dseq == r.dseq + 1 } else { dseq == r.dseq + 1 };
        if !next {
            if is_mirror || dseq > r.dseq + 1 {
                self.restart_remote(name, i, now, 0);
            }
            return false;
        }
        r.lag = pending.saturating_sub(1);
        let subject = cfg.map(&m.subject).unwrap_or_else(|| m.subject.to_vec());
        let stored = if is_mirror {
            match self.streams.get_mut(name) {
                Some(e) => e.stream.store_mirrored(m.seq, m.time, &subject, m.headers.as_deref(), &m.payload),
                None => return false,
            }
        } else {
            self.store_sourced(name, now, &iname, m, &subject)
        };
        match stored {
            Ok(()) => {
                if let Some(l) = self.sourcing.get_mut(name).and_then(|l| l.links.get_mut(i)) {
                    l.sseq = Some(m.seq);
                    if let Some(r) = l.remote.as_mut() {
                        r.dseq = dseq;
                    }
                }
                true
            }
            Err(_) => {
                // refused here (full, too big): ask again from this message a little later
                self.restart_remote(name, i, now, RETRY);
                false
            }
        }
    }

    /// One tick of an external link: a create answer that never came, a consumer gone quiet,
    /// or the time to ask for a new one.
    pub(super) fn pump_remote(&mut self, name: &str, i: usize, now: u64) {
        let domain = self.domain.clone();
        let is_mirror = self.streams.get(name).is_some_and(|e| e.stream.config.mirror.is_some());
        let Some(l) = self.sourcing.get_mut(name).and_then(|l| l.links.get_mut(i)) else { return };
        let r = l.remote.get_or_insert_with(Remote::default);
        if r.pending.is_some() {
            if now >= r.lreq + CREATE_WAIT {
                r.fails += 1;
                let delay = backoff(r.fails);
                self.restart_remote(name, i, now, delay);
            }
            return;
        }
        if r.cname.is_some() {
            if now >= l.last + HEALTH {
                self.restart_remote(name, i, now, 0);
            }
            return;
        }
        if now < r.setup_at {
            return;
        }
        if l.cfg.external.is_none() {
            return;
        }
        r.lreq = now;
        let stable = stable_id(name, &l.iname, domain.as_deref());
        let cname = format!("JS_{}_{stable}", if is_mirror { "MIRROR" } else { "SRC" });
        self.send_create(name, i, cname, true);
    }

    /// Sends link `i`'s create request for consumer `cname` (a sourcing one, with its level
    /// header, or the plain `direct` one), from where the link is now.
    fn send_create(&mut self, name: &str, i: usize, cname: String, sourcing: bool) {
        let domain = self.domain.clone();
        let is_mirror = self.streams.get(name).is_some_and(|e| e.stream.config.mirror.is_some());
        let last = self.streams.get(name).map_or(0, |e| e.stream.last_seq());
        let Some(l) = self.sourcing.get(name).and_then(|l| l.links.get(i)) else { return };
        let Some(ext) = l.cfg.external.clone() else { return };
        let taken = if is_mirror { l.sseq.unwrap_or(0).max(last) } else { l.sseq.unwrap_or(0) };
        let from = (taken > 0).then_some(taken + 1);
        let (kind, token) = if is_mirror { ("mirror", "M") } else { ("src", "S") };
        let fresh = if ext.deliver.is_empty() {
            format!("$JS.{token}.{}", self.nuid())
        } else {
            join(&ext.deliver, &format!("{token}.{}", self.nuid()))
        };
        let reply = format!("{REPLY_PREFIX}{}", self.nuid());
        let mut meta = json!({ format!("_nats.{kind}.stream"): name, format!("_nats.{kind}.acc"): "$G" });
        if let Some(d) = domain {
            meta[format!("_nats.{kind}.domain")] = json!(d);
        }
        let Some(l) = self.sourcing.get_mut(name).and_then(|l| l.links.get_mut(i)) else { return };
        let deliver = l.remote.as_ref().and_then(|r| r.deliver.clone());
        let (deliver, new_deliver) = match deliver {
            Some(d) => (d, false),
            None => (fresh, true),
        };
        let (subject, mut body) = create_request(&l.cfg, &ext, &cname, &deliver, from, meta);
        if sourcing {
            body["config"]["sourcing"] = json!(true);
        }
        let Some(r) = l.remote.as_mut() else { return };
        if r.dropped.as_deref() == Some(cname.as_str()) {
            // a durable asked for again: its deliveries from now on are the new run's
            r.dropped = None;
        }
        r.cname = Some(cname);
        r.sourcing = sourcing;
        r.dseq = 0;
        r.deliver = Some(deliver.clone());
        r.pending = Some(reply.clone());
        if new_deliver {
            self.subs.push(SubChange::Add(deliver));
        }
        self.subs.push(SubChange::Add(reply.clone()));
        let body = serde_json::to_vec(&body).unwrap_or_default();
        self.out.push(Outbound {
            route: Bytes::from(subject.clone()),
            subject: Bytes::from(subject),
            reply: Some(Bytes::from(reply)),
            headers: sourcing.then_some(Bytes::from_static(LEVEL_4)),
            payload: Bytes::from(body),
        });
    }
}

impl Remote {
    /// When the link next needs a tick, given when it last heard from its consumer.
    pub(super) fn deadline(&self, last: u64) -> u64 {
        if self.pending.is_some() {
            self.lreq + CREATE_WAIT
        } else if self.cname.is_some() {
            last + HEALTH
        } else {
            self.setup_at
        }
    }

    /// The subjects the engine holds for this link.
    pub(super) fn subjects(&self) -> impl Iterator<Item = &String> {
        self.deliver.iter().chain(self.pending.iter())
    }
}
