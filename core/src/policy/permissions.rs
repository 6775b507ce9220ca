//! Per-user publish and subscribe permissions, decided as nats-server 2.14 decides them
//! (`server/client.go`: `setPermissions`, `canSubscribe`, `pubAllowedFullCheck`,
//! `checkDenySub`, `responseAllowed`).
//!
//! A [`Permissions`] is compiled once per configured user and shared by every connection that
//! authenticates as that user. Each connection then owns the small mutable parts, because
//! nats-server keeps them per client too: the publish cache ([`PublishCheck`]), the filter that
//! drops deliveries on denied subjects to a wider wildcard subscription ([`DeliveryFilter`]),
//! and the reply subjects a responder may answer ([`ReplyGrants`]). A connection without
//! permissions has none of these, so the hosts' fast path does no work for it.
//!
//! Rules, as nats-server has them:
//! - publish: with an allow list, a subject must match one of its patterns (an empty list
//!   allows nothing); then no deny pattern may match it. Wildcards on both sides are matched
//!   by the subscription trie, so a deny of `a.*` also refuses a publish to the literal `a.*`.
//! - subscribe: the subscription's subject (wildcards included) is looked up as a subject in
//!   the allow and deny tries: allow `foo.*` admits `SUB foo.*` and `SUB foo.bar`, deny `foo.*`
//!   refuses both. Entries may name a queue (`"foo.* q"`): a queue subscription then needs a
//!   matching queue (queue entries may use wildcards), and a plain one needs a plain entry.
//! - a wildcard subscription that could overlap a plain deny entry turns on the connection's
//!   delivery filter, which drops messages whose subject a deny entry matches.
//! - `allow_responses`: a message delivered with a reply subject grants its receiver the right
//!   to publish there, `max` times (default 1, ≤ 0 unlimited) within `expires` (default 2 min,
//!   ≤ 0 forever), when the static rules do not already allow it.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use hashbrown::HashMap;

use bytes::Bytes;

use crate::proto::ProtocolError;
use crate::subject;
use crate::sublist::{MatchResult, QueueGroup, Sublist};

/// nats-server's `maxPermCacheSize`: results cached per connection before pruning.
const CACHE_MAX: usize = 128;
/// nats-server's `pruneSize`: entries dropped when a cache is full.
const CACHE_PRUNE: usize = 32;
/// nats-server's `replyPermLimit` and `replyPruneTime`: when expired grants are swept.
const REPLIES_PRUNE_COUNT: usize = 4096;
const REPLIES_PRUNE_NS: u64 = 1_000_000_000;

/// One direction's rule as configured: `publish: [..]` is `allow` only, `{ allow, deny }`
/// either or both. `allow: None` means everything is allowed (before `deny`); `Some(vec![])`
/// allows nothing, which is what `allow_responses` without a publish allow list sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectRule {
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
}

/// `allow_responses`: how many replies per request and for how long (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRule {
    /// ≤ 0: unlimited.
    pub max_msgs: i64,
    /// ≤ 0: no expiry.
    pub expires_ns: i64,
}

impl ResponseRule {
    /// `allow_responses: true`: one reply within two minutes (nats-server's
    /// `DEFAULT_ALLOW_RESPONSE_MAX_MSGS` and `DEFAULT_ALLOW_RESPONSE_EXPIRATION`).
    pub const DEFAULT: ResponseRule = ResponseRule { max_msgs: 1, expires_ns: 120_000_000_000 };
}

/// A user's `permissions` block as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionsConfig {
    pub publish: Option<SubjectRule>,
    pub subscribe: Option<SubjectRule>,
    pub response: Option<ResponseRule>,
}

/// A permission entry that is not a subject, or not `subject queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPermission(pub String);

impl fmt::Display for InvalidPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "subject {:?} is not a valid subject", self.0)
    }
}

/// Splits a permission entry into its subject and optional queue (`"foo.* workers"`), and
/// checks it as nats-server's `checkPermSubjectArray` does.
pub fn split_entry(entry: &str) -> Result<(&str, Option<&str>), InvalidPermission> {
    let mut fields = entry.split_ascii_whitespace();
    let (Some(subj), queue, None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(InvalidPermission(String::from(entry)));
    };
    if subject::validate_subscribe(subj.as_bytes()).is_err() {
        return Err(InvalidPermission(String::from(subj)));
    }
    Ok((subj, queue))
}

/// A user's compiled permissions, shared by all its connections.
#[derive(Default)]
pub struct Permissions {
    pub_allow: Option<Sublist<()>>,
    pub_deny: Option<Sublist<()>>,
    sub_allow: Option<Sublist<()>>,
    sub_deny: Option<Sublist<()>>,
    /// The plain subscribe-deny entries, for the delivery filter. nats-server's filter holds
    /// the entries as written, so a queue-qualified deny never filters deliveries there.
    deny_filter: Option<Sublist<()>>,
    deny_subjects: Vec<Vec<u8>>,
    response: Option<ResponseRule>,
    /// The rules as configured, to tell whether a reloaded configuration changed them.
    rules: PermissionsConfig,
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permissions").field("response", &self.response).finish_non_exhaustive()
    }
}

fn trie(entries: &[String], queues: bool) -> Result<Sublist<()>, InvalidPermission> {
    let mut sl = Sublist::new();
    for e in entries {
        let (subj, queue) = split_entry(e)?;
        let queue = if queues { queue } else { None };
        sl.insert(subj.as_bytes(), queue.map(str::as_bytes), ()).map_err(|_| InvalidPermission(e.clone()))?;
    }
    Ok(sl)
}

impl Permissions {
    /// The configuration these were compiled from.
    pub fn rules(&self) -> &PermissionsConfig {
        &self.rules
    }

    pub fn compile(cfg: &PermissionsConfig) -> Result<Permissions, InvalidPermission> {
        let mut p = Permissions { response: cfg.response, rules: cfg.clone(), ..Permissions::default() };
        let mut publish = cfg.publish.clone();
        if cfg.response.is_some() {
            // nats-server: allow_responses turns off the blanket publish allow.
            publish.get_or_insert_with(SubjectRule::default).allow.get_or_insert_with(Vec::new);
        }
        if let Some(rule) = &publish {
            if let Some(allow) = &rule.allow {
                p.pub_allow = Some(trie(allow, false)?);
            }
            if !rule.deny.is_empty() {
                p.pub_deny = Some(trie(&rule.deny, false)?);
            }
        }
        if let Some(rule) = &cfg.subscribe {
            // nats-server makes the subscribe allow trie only for a non-empty list.
            if let Some(allow) = rule.allow.as_ref().filter(|a| !a.is_empty()) {
                p.sub_allow = Some(trie(allow, true)?);
            }
            if !rule.deny.is_empty() {
                p.sub_deny = Some(trie(&rule.deny, true)?);
                let mut filter = Sublist::new();
                for e in &rule.deny {
                    if let (subj, None) = split_entry(e)? {
                        filter.insert(subj.as_bytes(), None, ()).map_err(|_| InvalidPermission(e.clone()))?;
                        p.deny_subjects.push(subj.as_bytes().to_vec());
                    }
                }
                p.deny_filter = Some(filter);
            }
        }
        Ok(p)
    }

    /// Whether publishes are checked at all.
    pub fn checks_publish(&self) -> bool {
        self.pub_allow.is_some() || self.pub_deny.is_some()
    }

    pub fn response(&self) -> Option<ResponseRule> {
        self.response
    }

    /// The static publish rule (allow, then deny), without reply grants.
    pub fn publish_allowed(&self, subject: &[u8]) -> bool {
        let allowed = self.pub_allow.as_ref().is_none_or(|sl| !sl.matches(subject).is_empty());
        allowed && self.pub_deny.as_ref().is_none_or(|sl| sl.matches(subject).is_empty())
    }

    /// May the connection subscribe to `subject` (in `queue`)?
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let mut allowed = true;
        if let Some(sl) = &self.sub_allow {
            let r = sl.matches(subject);
            allowed = !r.plain.is_empty();
            if let (Some(q), false) = (queue, r.queues.is_empty()) {
                allowed = queue_matches(q, &r);
            }
        }
        if allowed {
            if let Some(sl) = &self.sub_deny {
                let r = sl.matches(subject);
                allowed = r.plain.is_empty();
                if let (true, Some(q), false) = (allowed, queue, r.queues.is_empty()) {
                    allowed = !queue_matches(q, &r);
                }
            }
        }
        allowed
    }

    /// The check of a `SUB`, before any other answer: the `-ERR` of a refusal, else whether
    /// the connection's delivery filter must be on from now ([`Self::needs_delivery_filter`]).
    pub fn check_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> Result<bool, ProtocolError> {
        if self.can_subscribe(subject, queue) {
            Ok(self.needs_delivery_filter(subject))
        } else {
            Err(subscription_violation(subject, queue))
        }
    }

    /// Does an admitted subscription to `subject` need its deliveries filtered? True for a
    /// wildcard subject that could overlap a plain subscribe-deny entry (nats-server's
    /// `SubjectsCollide` check in `canSubscribe`).
    pub fn needs_delivery_filter(&self, subject: &[u8]) -> bool {
        subject::has_wildcard(subject) && self.deny_subjects.iter().any(|d| subject::overlaps(d, subject))
    }

    fn delivery_denied(&self, subject: &[u8]) -> bool {
        self.deny_filter.as_ref().is_some_and(|sl| !sl.matches(subject).is_empty())
    }
}

/// nats-server's `queueMatches`: the queue equals an entry's queue, or is a subset of an
/// entry's queue that has wildcards.
fn queue_matches(queue: &[u8], r: &MatchResult<()>) -> bool {
    r.queues.iter().any(|QueueGroup { name, .. }| {
        **name == *queue || (subject::has_wildcard(name) && subject::is_subset(queue, name))
    })
}

/// Drops cached entries once the cache passes nats-server's size, as its pruning does.
fn prune<V>(cache: &mut HashMap<Vec<u8>, V>) {
    if cache.len() > CACHE_MAX {
        let drop: Vec<Vec<u8>> = cache.keys().take(CACHE_PRUNE).cloned().collect();
        for k in drop {
            cache.remove(&k);
        }
    }
}

/// The publishing side of one connection: the static result cached per subject (nats-server's
/// `pcache`), reply grants consulted on a refusal.
pub struct PublishCheck {
    perms: Arc<Permissions>,
    cache: HashMap<Vec<u8>, bool>,
    /// The last subject checked and its answer: a publisher repeating a subject (the common
    /// case) pays a comparison, not a hash lookup.
    last: Option<(Vec<u8>, bool)>,
}

impl PublishCheck {
    pub fn new(perms: Arc<Permissions>) -> PublishCheck {
        PublishCheck { perms, cache: HashMap::new(), last: None }
    }

    pub fn permissions(&self) -> &Arc<Permissions> {
        &self.perms
    }

    /// May the connection publish to `subject` by its static rules? Cached.
    pub fn allowed(&mut self, subject: &[u8]) -> bool {
        if !self.perms.checks_publish() {
            return true;
        }
        if let Some((last, v)) = &self.last {
            if last[..] == *subject {
                return *v;
            }
        }
        let v = match self.cache.get(subject) {
            Some(&v) => v,
            None => {
                let v = self.perms.publish_allowed(subject);
                self.cache.insert(subject.to_vec(), v);
                prune(&mut self.cache);
                v
            }
        };
        let (last, memo) = self.last.get_or_insert_with(|| (Vec::new(), v));
        last.clear();
        last.extend_from_slice(subject);
        *memo = v;
        v
    }

    /// The whole publish rule: static, then a reply grant (which it uses up) if the static
    /// rules refuse. `grants` is the connection's [`ReplyGrants`] (`None` without
    /// `allow_responses`), `now` in nanoseconds.
    pub fn allowed_or_granted(&mut self, subject: &[u8], grants: Option<&mut ReplyGrants>, now: u64) -> bool {
        self.allowed(subject) || grants.is_some_and(|g| g.take(subject, now))
    }
}

/// The receiving side of one connection with subscribe-deny entries: drops messages on denied
/// subjects that reach it through a wider wildcard subscription (nats-server's `mperms`).
pub struct DeliveryFilter {
    perms: Arc<Permissions>,
    cache: HashMap<Vec<u8>, bool>,
}

impl DeliveryFilter {
    pub fn new(perms: Arc<Permissions>) -> DeliveryFilter {
        DeliveryFilter { perms, cache: HashMap::new() }
    }

    /// Must a message on `subject` be withheld from this connection?
    pub fn denies(&mut self, subject: &[u8]) -> bool {
        if let Some(&v) = self.cache.get(subject) {
            return v;
        }
        let v = self.perms.delivery_denied(subject);
        self.cache.insert(subject.to_vec(), v);
        prune(&mut self.cache);
        v
    }
}

#[derive(Debug, Clone, Copy)]
struct Grant {
    since: u64,
    used: i64,
}

/// The reply subjects a responder with `allow_responses` may publish to: one grant per
/// request delivered to it, used up by its replies (nats-server's `c.replies`).
pub struct ReplyGrants {
    rule: ResponseRule,
    grants: HashMap<Vec<u8>, Grant>,
    since_prune: usize,
    last_prune: u64,
}

impl ReplyGrants {
    pub fn new(rule: ResponseRule) -> ReplyGrants {
        ReplyGrants { rule, grants: HashMap::new(), since_prune: 0, last_prune: 0 }
    }

    /// A message with reply subject `reply` was delivered to the connection at `now`: it may
    /// answer there (again, if it was already granted: the grant starts over).
    pub fn record(&mut self, reply: &[u8], now: u64) {
        match self.grants.get_mut(reply) {
            Some(g) => *g = Grant { since: now, used: 0 },
            None => {
                self.grants.insert(reply.to_vec(), Grant { since: now, used: 0 });
            }
        }
        self.since_prune += 1;
        if self.since_prune > REPLIES_PRUNE_COUNT || now.saturating_sub(self.last_prune) > REPLIES_PRUNE_NS {
            self.prune(now);
        }
    }

    /// Uses one reply on `subject` if a live grant covers it.
    pub fn take(&mut self, subject: &[u8], now: u64) -> bool {
        let Some(g) = self.grants.get_mut(subject) else {
            return false;
        };
        g.used += 1;
        let since = g.since;
        if self.rule.max_msgs > 0 && g.used > self.rule.max_msgs || self.expired(since, now) {
            self.grants.remove(subject);
            return false;
        }
        true
    }

    fn expired(&self, since: u64, now: u64) -> bool {
        self.rule.expires_ns > 0 && now.saturating_sub(since) > self.rule.expires_ns as u64
    }

    fn prune(&mut self, now: u64) {
        let (max, ttl) = (self.rule.max_msgs, self.rule.expires_ns);
        self.grants.retain(|_, g| !(max > 0 && g.used >= max || ttl > 0 && now.saturating_sub(g.since) > ttl as u64));
        self.since_prune = 0;
        self.last_prune = now;
    }

    pub fn len(&self) -> usize {
        self.grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

/// Everything one connection with permissions keeps, for a host that serves all its
/// connections from one thread (the [`Broker`](crate::broker::Broker)). The native server
/// keeps the same pieces apart, since other connections' readers deliver to it.
pub struct ConnPermissions {
    publish: PublishCheck,
    filter: Option<DeliveryFilter>,
    grants: Option<ReplyGrants>,
}

impl ConnPermissions {
    pub fn new(perms: Arc<Permissions>) -> ConnPermissions {
        let grants = perms.response().map(ReplyGrants::new);
        ConnPermissions { publish: PublishCheck::new(perms), filter: None, grants }
    }
}

/// A connection's permission checks as the core's broker asks them. The broker holds them as
/// `Box<dyn ConnRules>`, made only where a user with permissions is admitted: a host whose
/// connections never get any (the page's, all in-process) links none of the rules' code, as
/// it would if the broker called `ConnPermissions` directly.
pub trait ConnRules {
    /// The check of a `PUB`: the `-ERR` to send (connection kept open, nothing routed).
    fn check_publish(&mut self, subject: &[u8], now: u64) -> Result<(), ProtocolError>;
    /// The check of a `SUB`, before any other answer.
    fn check_subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>) -> Result<(), ProtocolError>;
    /// Must a message on `subject` be withheld from this connection?
    fn withholds(&mut self, subject: &[u8]) -> bool;
    /// A message was delivered to this connection.
    fn delivered(&mut self, reply: Option<&[u8]>, now: u64);
}

impl ConnRules for ConnPermissions {
    fn check_publish(&mut self, subject: &[u8], now: u64) -> Result<(), ProtocolError> {
        if self.publish.allowed_or_granted(subject, self.grants.as_mut(), now) {
            Ok(())
        } else {
            Err(publish_violation(subject))
        }
    }

    /// An admitted wildcard subscription may turn on the delivery filter.
    fn check_subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>) -> Result<(), ProtocolError> {
        let perms = self.publish.permissions();
        if perms.check_subscribe(subject, queue)? && self.filter.is_none() {
            self.filter = Some(DeliveryFilter::new(perms.clone()));
        }
        Ok(())
    }

    fn withholds(&mut self, subject: &[u8]) -> bool {
        self.filter.as_mut().is_some_and(|f| f.denies(subject))
    }

    /// With `allow_responses`, the message's reply subject becomes one the connection may
    /// publish to.
    fn delivered(&mut self, reply: Option<&[u8]>, now: u64) {
        if let (Some(g), Some(r)) = (self.grants.as_mut(), reply) {
            g.record(r, now);
        }
    }
}

/// The `-ERR` for a refused `PUB`.
pub fn publish_violation(subject: &[u8]) -> ProtocolError {
    ProtocolError::PublishViolation(Bytes::copy_from_slice(subject))
}

/// The `-ERR` for a refused `SUB`.
pub fn subscription_violation(subject: &[u8], queue: Option<&[u8]>) -> ProtocolError {
    ProtocolError::SubscriptionViolation {
        subject: Bytes::copy_from_slice(subject),
        queue: queue.map(Bytes::copy_from_slice),
    }
}

#[cfg(test)]
mod tests;
