//! Priority groups on pull consumers (ADR-42, nats-server 2.11+): which waiting pull
//! request a message goes to when the consumer has a `priority_policy`.
//!
//! - `overflow`: a request with `min_pending` / `min_ack_pending` is served only while the
//!   consumer is that far behind, so standby workers take over only under load.
//! - `pinned_client`: the first request served gets a pin id (`Nats-Pin-Id` on every message
//!   it receives); from then on only requests carrying that id are served, others wait, and a
//!   wrong id is refused. The pin lapses `priority_timeout` after the pinned client's last
//!   request (or by `$JS.API.CONSUMER.UNPIN`), and the next request without an id takes it.
//! - `prioritized`: requests queue by their `priority` (0 first), first come first served
//!   within one level.
//!
//! nats-server keeps one pin for the consumer (its first group), not one per group, and does
//! not persist it: a restart unpins. The same here.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::Serialize;

use super::pull::PullRequest;
use super::{status, Consumer, ConsumerEvent, Outbound};
use crate::jetstream::config::ConsumerConfig;
use crate::jetstream::errors::ApiError;
use crate::jetstream::time::rfc3339;
use crate::jetstream::Interest;
use crate::proto::Headers;

/// How waiting pull requests are chosen (`priority_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityPolicy {
    #[default]
    None,
    Overflow,
    PinnedClient,
    Prioritized,
}

impl PriorityPolicy {
    pub fn is_none(&self) -> bool {
        *self == PriorityPolicy::None
    }
}

/// nats-server's default pin lifetime for `pinned_client`: 2 minutes.
pub(crate) const DEFAULT_PRIORITY_TIMEOUT: i64 = 120_000_000_000;

/// nats-server's `validGroupName`: `^[a-zA-Z0-9/_=-]{1,16}$`.
fn valid_group(g: &str) -> bool {
    (1..=16).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_=-".contains(&b))
}

impl ConsumerConfig {
    /// nats-server's priority checks at create/update, in its order, after its default pin
    /// lifetime is applied.
    pub(crate) fn check_priority(&mut self) -> Result<(), ApiError> {
        if self.priority_policy == PriorityPolicy::PinnedClient && self.priority_timeout == 0 {
            self.priority_timeout = DEFAULT_PRIORITY_TIMEOUT;
        }
        if self.priority_policy.is_none() {
            if !self.priority_groups.is_empty() {
                return Err(ApiError::PRIORITY_GROUP_WITH_POLICY_NONE);
            }
            if self.priority_timeout > 0 {
                return Err(ApiError::PINNED_TTL_WITHOUT_POLICY);
            }
            return Ok(());
        }
        if self.is_push() {
            return Err(ApiError::PUSH_WITH_PRIORITY_GROUP);
        }
        if self.priority_groups.is_empty() {
            return Err(ApiError::PRIORITY_POLICY_WITHOUT_GROUP);
        }
        for g in &self.priority_groups {
            if g.is_empty() {
                return Err(ApiError::EMPTY_GROUP_NAME);
            }
            if !valid_group(g) {
                return Err(ApiError::INVALID_GROUP_NAME);
            }
        }
        Ok(())
    }
}

/// The priority fields of a pull request (`group`, `min_pending`, `min_ack_pending`, `id`,
/// `priority`); a request sent as JSON always has them, empty or not.
#[derive(Debug, Clone, Default)]
pub(super) struct PullPriority {
    pub(super) group: String,
    pub(super) min_pending: i64,
    pub(super) min_ack_pending: i64,
    pub(super) id: String,
    pub(super) priority: i64,
}

/// The current pin: its id, when it was given, and when it lapses.
#[derive(Debug, Clone)]
pub(super) struct Pin {
    id: String,
    ts: u64,
    deadline: u64,
}

/// One entry of `priority_groups` in consumer info.
#[derive(Serialize)]
pub struct PriorityGroupState {
    group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pinned_client_id: String,
    pinned_ts: String,
}

/// A NATS-style 22-character random id (nuid alphabet).
pub(crate) fn nuid(rng: &mut fastrand::Rng) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22).map(|_| ALPHABET[rng.usize(..ALPHABET.len())] as char).collect()
}

impl Consumer {
    /// The priority checks nats-server makes when a pull request arrives; false when the
    /// request was refused (its status is in `out`). A request from the pinned client keeps
    /// the pin alive for another `priority_timeout`.
    pub(super) fn admit_priority(
        &mut self,
        now: u64,
        reply: &Bytes,
        p: Option<&PullPriority>,
        out: &mut Vec<Outbound>,
    ) -> bool {
        let Some(p) = p else { return true };
        let policy = self.state.config.priority_policy;
        let refuse = |out: &mut Vec<Outbound>, code, text: &str| {
            out.push(status(reply, code, text, &[]));
            false
        };
        if (p.min_pending != 0 || p.min_ack_pending != 0) && policy != PriorityPolicy::Overflow {
            return refuse(out, 400, "Bad Request - Not a Overflow Priority consumer");
        }
        if !p.id.is_empty() && policy != PriorityPolicy::PinnedClient {
            return refuse(out, 400, "Bad Request - Not a Pinned Client Priority consumer");
        }
        if !(0..=9).contains(&p.priority) {
            return refuse(out, 400, "Bad Request - Priority must be between 0 and 9");
        }
        if policy.is_none() {
            return true;
        }
        if p.group.is_empty() {
            return refuse(out, 400, "Bad Request - Priority Group missing");
        }
        if !self.state.config.priority_groups.contains(&p.group) {
            return refuse(out, 400, "Bad Request - Invalid Priority Group");
        }
        let ttl = self.state.config.priority_timeout.max(0) as u64;
        if let Some(pin) = &mut self.pin {
            if p.id == pin.id {
                pin.deadline = now + ttl;
            } else if !p.id.is_empty() {
                return refuse(out, 423, "Nats-Pin-Id mismatch");
            }
        }
        true
    }

    /// Queues an admitted request: by priority under `prioritized` (after those of the same
    /// level), else at the end.
    pub(super) fn enqueue(&mut self, req: PullRequest) {
        if self.state.config.priority_policy != PriorityPolicy::Prioritized {
            self.waiting.push_back(req);
            return;
        }
        let level = |r: &PullRequest| r.priority.as_ref().map_or(i64::MAX, |p| p.priority);
        let mine = level(&req);
        let at = self.waiting.iter().position(|r| level(r) > mine).unwrap_or(self.waiting.len());
        self.waiting.insert(at, req);
    }

    /// The waiting request the next message goes to, as nats-server's `nextWaiting` picks it:
    /// expired requests end (408), requests nobody listens to any more are dropped, the pin
    /// is given or checked, overflow thresholds are applied. Returns its index and whether
    /// the pin was given to it just now (taken back if the message then does not fit it).
    pub(super) fn pick_request(
        &mut self,
        now: u64,
        redelivery: bool,
        interest: &dyn Interest,
        out: &mut Vec<Outbound>,
    ) -> Option<(usize, bool)> {
        let policy = self.state.config.priority_policy;
        let mut i = 0;
        while i < self.waiting.len() {
            if self.drop_if_stale(i, now, interest, out) {
                continue;
            }
            let r = &self.waiting[i];
            let id = r.priority.as_ref().map_or("", |p| p.id.as_str());
            let mut assigned = false;
            if policy == PriorityPolicy::PinnedClient {
                match &self.pin {
                    None if id.is_empty() => {
                        self.assign_pin(i, now);
                        assigned = true;
                    }
                    Some(pin) if pin.id == id => {}
                    Some(_) if id.is_empty() => {
                        // a standby client: it waits while another is pinned
                        i += 1;
                        continue;
                    }
                    _ => {
                        // an old or foreign pin id: the request ends
                        if let Some(r) = self.waiting.remove(i) {
                            out.push(r.ended(423, "Nats-Wrong-Pin-Id"));
                        }
                        continue;
                    }
                }
            }
            if policy == PriorityPolicy::Overflow && !self.overflow_allows(&self.waiting[i], redelivery) {
                i += 1;
                continue;
            }
            return Some((i, assigned));
        }
        None
    }

    /// Whether an `overflow` request's thresholds let it be served now (one met is enough;
    /// none set always serves). Pending counts the message about to go, as nats-server does.
    fn overflow_allows(&self, r: &PullRequest, redelivery: bool) -> bool {
        let Some(p) = &r.priority else { return true };
        if p.min_pending <= 0 && p.min_ack_pending <= 0 {
            return true;
        }
        let pending = self.num_pending + u64::from(redelivery);
        (p.min_pending > 0 && p.min_pending as u64 <= pending)
            || (p.min_ack_pending > 0 && p.min_ack_pending as usize <= self.state.pending.len())
    }

    fn assign_pin(&mut self, i: usize, now: u64) {
        let id = nuid(&mut self.ids);
        let ttl = self.state.config.priority_timeout.max(0) as u64;
        let group = match self.waiting.get_mut(i).and_then(|r| r.priority.as_mut()) {
            Some(p) => {
                p.id = id.clone();
                p.group.clone()
            }
            None => self.state.config.priority_groups.first().cloned().unwrap_or_default(),
        };
        self.pin = Some(Pin { id: id.clone(), ts: now, deadline: now + ttl });
        self.events.push(ConsumerEvent::Pinned { group, id });
    }

    /// Takes back a pin given to a request that then got nothing.
    pub(super) fn revoke_pin(&mut self) {
        self.pin = None;
    }

    /// `$JS.API.CONSUMER.UNPIN`: drops the pin of `group` so the next request without an id
    /// takes it (announced even when nobody was pinned, as nats-server does).
    pub fn unpin(&mut self, group: &str) -> Result<(), ApiError> {
        if !valid_group(group) {
            return Err(ApiError::INVALID_GROUP_NAME);
        }
        if !self.state.config.priority_groups.iter().any(|g| g == group) {
            return Err(ApiError::INVALID_PRIORITY_GROUP);
        }
        self.pin = None;
        self.events.push(ConsumerEvent::Unpinned { group: group.into(), reason: "admin" });
        Ok(())
    }

    /// The pin lapsed: nobody pulled with it for `priority_timeout`.
    pub(super) fn on_pin_timeout(&mut self, now: u64) {
        if self.pin.as_ref().is_some_and(|p| p.deadline <= now) {
            self.pin = None;
            let group = self.state.config.priority_groups.first().cloned().unwrap_or_default();
            self.events.push(ConsumerEvent::Unpinned { group, reason: "timeout" });
        }
    }

    pub(super) fn pin_deadline(&self) -> Option<u64> {
        self.pin.as_ref().map(|p| p.deadline)
    }

    /// A pinned consumer's delivery carries the pin id in `Nats-Pin-Id`.
    pub(super) fn with_pin_header(&self, headers: Option<Bytes>) -> Option<Bytes> {
        if self.state.config.priority_policy != PriorityPolicy::PinnedClient {
            return headers;
        }
        let Some(pin) = &self.pin else { return headers };
        let mut h = headers.as_deref().and_then(|b| Headers::parse(b).ok()).unwrap_or_default();
        h.append("Nats-Pin-Id", &pin.id);
        Some(h.to_bytes())
    }

    /// `priority_groups` of consumer info: the first group with the pin, as nats-server
    /// reports it.
    pub(super) fn priority_groups_info(&self) -> Option<Vec<PriorityGroupState>> {
        let group = self.state.config.priority_groups.first()?;
        Some(alloc::vec![PriorityGroupState {
            group: group.clone(),
            pinned_client_id: self.pin.as_ref().map(|p| p.id.clone()).unwrap_or_default(),
            pinned_ts: rfc3339(self.pin.as_ref().map_or(0, |p| p.ts)),
        }])
    }
}
