//! Pull requests: the checks nats-server makes when a `CONSUMER.MSG.NEXT` request arrives
//! (push consumer, bad JSON, the consumer's `max_batch` / `max_expires` / `max_bytes` /
//! `max_waiting` limits, `no_wait` with nothing to give), each answered with its exact status
//! reply, and the queue of requests the delivery loop then serves.

use alloc::format;
use alloc::vec::Vec;
use bytes::Bytes;

use super::priority::PullPriority;
use super::{status, Consumer, Outbound};
use crate::duration;
use crate::jetstream::Interest;

/// How often a full queue of waiting requests is checked for ones that can no longer be
/// served (nats-server: once a second).
const SHED_PACE: u64 = 1_000_000_000;

/// A waiting pull request.
#[derive(Debug, Clone)]
pub(super) struct PullRequest {
    pub(super) reply: Bytes,
    pub(super) batch: i64,
    pub(super) max_bytes: i64,
    /// Absolute expiry, 0 = none.
    pub(super) expires: u64,
    /// `no_wait`: ends with `404 No Messages` as soon as nothing more is available for it. With
    /// an `expires` and nothing available on arrival it first waits, then is one-shot: it
    /// ends once it has received something (nats-server's rule).
    pub(super) no_wait: bool,
    /// Whether it has received at least one message.
    pub(super) served: bool,
    pub(super) heartbeat: u64,
    pub(super) next_heartbeat: u64,
    /// Its priority-group fields; `None` for a request that was not JSON (a bare batch size
    /// or an empty body), which nats-server exempts from the group checks.
    pub(super) priority: Option<PullPriority>,
}

impl PullRequest {
    /// The status that ends this request, with what it still wanted (`Nats-Pending-*`).
    pub(super) fn ended(&self, code: u16, description: &str) -> Outbound {
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

    /// Whether a `no_wait` request is finished once nothing more is available for it.
    pub(super) fn done_when_dry(&self) -> bool {
        self.no_wait && (self.expires == 0 || self.served)
    }
}

/// Whether anybody still listens for the answer to a request with this reply subject. A
/// reply that came through a service import (`_R_.` prefix) is mapped back by the bus and
/// has no subscription of its own, so it always counts as listened to.
fn listened(interest: &dyn Interest, reply: &[u8]) -> bool {
    reply.starts_with(b"_R_.") || interest.has_interest(reply)
}

impl Consumer {
    /// Drops the waiting request at `i` if it can no longer take a message: expired (its timer
    /// may not have fired yet; it ends with `408`) or its client went away (it ends silently,
    /// nobody would read a status). Returns whether it was dropped.
    pub(super) fn drop_if_stale(
        &mut self,
        i: usize,
        now: u64,
        interest: &dyn Interest,
        out: &mut Vec<Outbound>,
    ) -> bool {
        let r = &self.waiting[i];
        if r.expires > 0 && r.expires <= now {
            if let Some(r) = self.waiting.remove(i) {
                out.push(r.ended(408, "Request Timeout"));
            }
            return true;
        }
        if !listened(interest, &r.reply) {
            self.waiting.remove(i);
            return true;
        }
        false
    }

    /// Sheds every stale waiting request. nats-server does this whenever it reports a
    /// consumer (`num_waiting` counts only requests that could still be served), so an info
    /// or list call also frees the `max_waiting` room a gone client held.
    pub fn shed_stale_requests(&mut self, now: u64, interest: &dyn Interest, out: &mut Vec<Outbound>) {
        self.last_shed = now;
        let mut i = 0;
        while i < self.waiting.len() {
            if !self.drop_if_stale(i, now, interest, out) {
                i += 1;
            }
        }
    }

    /// Takes a pull request (`$JS.API.CONSUMER.MSG.NEXT`); answers at once with a status if it
    /// is refused.
    pub fn add_pull(&mut self, now: u64, reply: Bytes, body: &[u8], interest: &dyn Interest, out: &mut Vec<Outbound>) {
        self.last_active = now;
        if self.is_push() {
            out.push(status(&reply, 409, "Consumer is push based", &[]));
            return;
        }
        let text = core::str::from_utf8(body).unwrap_or("").trim();
        let (req, json) = if text.is_empty() {
            (Req { batch: 1, ..Default::default() }, false)
        } else if let Ok(n) = text.parse::<i64>() {
            (Req { batch: n, ..Default::default() }, false)
        } else {
            match crate::json::typed::from_slice::<Req>(text.as_bytes()) {
                Ok(r) => (r, true),
                Err(e) => {
                    out.push(status(&reply, 400, &format!("Bad Request - {e}"), &[]));
                    return;
                }
            }
        };
        // nats-server checks the heartbeat while it reads the request, before the limits
        if req.idle_heartbeat > 0 && req.expires > 0 && req.idle_heartbeat > req.expires / 2 {
            out.push(status(&reply, 400, "Bad Request - heartbeat value too large", &[]));
            return;
        }
        let batch = req.batch.max(1);
        let cfg = &self.state.config;
        if cfg.max_batch > 0 && batch > cfg.max_batch {
            out.push(status(&reply, 409, &format!("Exceeded MaxRequestBatch of {}", cfg.max_batch), &[]));
            return;
        }
        // a request without expiry is not held to `max_expires` (nats-server checks only a set one)
        if cfg.max_expires > 0 && req.expires > cfg.max_expires {
            out.push(status(
                &reply,
                409,
                &format!("Exceeded MaxRequestExpires of {}", duration::format(cfg.max_expires as u64)),
                &[],
            ));
            return;
        }
        if cfg.max_bytes > 0 && req.max_bytes > cfg.max_bytes {
            out.push(status(&reply, 409, &format!("Exceeded MaxRequestMaxBytes of {}", cfg.max_bytes), &[]));
            return;
        }
        let priority = json.then_some(PullPriority {
            group: req.group,
            min_pending: req.min_pending,
            min_ack_pending: req.min_ack_pending,
            id: req.id,
            priority: req.priority,
        });
        if !self.admit_priority(now, &reply, priority.as_ref(), out) {
            return;
        }
        // a request whose client went away still counts here until it is shed: by a delivery,
        // a consumer info, or here when the queue is full and was last checked over a second
        // ago (nats-server 2.14, which paces that check so a burst of pulls against a full
        // queue does not rescan it each time)
        let max_waiting = self.state.config.max_waiting.max(1);
        if self.waiting.len() as i64 >= max_waiting && now.saturating_sub(self.last_shed) > SHED_PACE {
            self.shed_stale_requests(now, interest, out);
        }
        if self.waiting.len() as i64 >= max_waiting {
            // nats-server stays silent to a client with heartbeats: it would only re-ask at
            // once, where waiting for the missed heartbeats paces it
            if req.idle_heartbeat <= 0 {
                out.push(status(&reply, 409, "Exceeded MaxWaiting", &[]));
            }
            return;
        }
        let expires = if req.expires > 0 { now + req.expires as u64 } else { 0 };
        let available = self.available();
        if req.no_wait && !available && expires == 0 {
            out.push(status(&reply, 404, "No Messages", &[]));
            return;
        }
        let heartbeat = req.idle_heartbeat.max(0) as u64;
        self.enqueue(PullRequest {
            reply,
            batch,
            max_bytes: req.max_bytes.max(0),
            expires,
            no_wait: req.no_wait,
            served: false,
            heartbeat,
            next_heartbeat: if heartbeat > 0 { now + heartbeat } else { 0 },
            priority,
        });
    }

    /// Answers every waiting pull request with `409 Consumer Deleted` (the consumer is going).
    pub fn release_waiting(&mut self, out: &mut Vec<Outbound>) {
        for r in self.waiting.drain(..) {
            out.push(status(&r.reply, 409, "Consumer Deleted", &[]));
        }
    }
}

/// A pull request's JSON body; every field reads `null` as unset.
#[derive(Default)]
struct Req {
    batch: i64,
    max_bytes: i64,
    expires: i64,
    no_wait: bool,
    idle_heartbeat: i64,
    group: alloc::string::String,
    min_pending: i64,
    min_ack_pending: i64,
    id: alloc::string::String,
    priority: i64,
}

impl crate::json::FromJson for Req {
    fn from_json(v: &serde_json::Value) -> crate::json::typed::Result<Self> {
        let f = crate::json::Fields::of(v, "struct Req")?;
        Ok(Req {
            batch: f.or("batch", 0)?,
            max_bytes: f.or("max_bytes", 0)?,
            expires: f.or("expires", 0)?,
            no_wait: f.or("no_wait", false)?,
            idle_heartbeat: f.or("idle_heartbeat", 0)?,
            group: f.or("group", alloc::string::String::new())?,
            min_pending: f.or("min_pending", 0)?,
            min_ack_pending: f.or("min_ack_pending", 0)?,
            id: f.or("id", alloc::string::String::new())?,
            priority: f.or("priority", 0)?,
        })
    }
}
