//! Stream and consumer configurations as the `$JS.API` carries them, with nats-server's
//! defaults and normalisation. Field order follows nats-server's JSON, and fields it omits
//! when empty are omitted here too, because some clients compare configs field by field.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

use super::errors::ApiError;
pub use super::persist::PersistMode;
pub use super::source::{ExternalStream, StreamSource};
pub use super::transforms::{RePublish, SubjectTransformConfig};
use crate::subject;

/// Makes a reply's typed part into a `Value` through its JSON text, for the replies built
/// as `Value`s. Equal to `serde_json::to_value` (keys sorted the same way, numbers and
/// `null`s alike), but `to_value` would link a second copy of each type's serializer (one
/// writing `Value`s) beside the one that writes bytes. `Null` if it cannot be written.
pub(crate) fn to_value<T: Serialize + ?Sized>(v: &T) -> serde_json::Value {
    serde_json::to_vec(v).ok().and_then(|text| serde_json::from_slice(&text).ok()).unwrap_or(serde_json::Value::Null)
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    #[default]
    Limits,
    Interest,
    Workqueue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    #[default]
    Old,
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    #[default]
    File,
    Memory,
}

/// A stream's configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamConfig {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub retention: Retention,
    pub max_consumers: i64,
    pub max_msgs: i64,
    pub max_bytes: i64,
    pub max_age: i64,
    pub max_msgs_per_subject: i64,
    pub max_msg_size: i64,
    pub discard: Discard,
    pub storage: StorageType,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    /// 0 (and not shown) for mirrors and streams with sources, as in nats-server.
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicate_window: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransformConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    pub allow_direct: bool,
    pub mirror_direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    pub sealed: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup_hdrs: bool,
    pub consumer_limits: ConsumerLimits,
    pub allow_msg_ttl: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_delete_marker_ttl: Option<i64>,
    #[serde(skip_serializing_if = "PersistMode::is_default")]
    pub persist_mode: PersistMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    // 2.12 stream features (counters, atomic batches, schedules): rules in `features.rs`
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_counter: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_atomic: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_schedules: bool,
    /// Fast-ingest batches (`fast_batch.rs`), 2.14.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_batched: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConsumerLimits {
    #[serde(skip_serializing_if = "is_zero")]
    pub inactive_threshold: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
}

/// Default duplicate window: two minutes.
pub const DEFAULT_DUPLICATE_WINDOW: i64 = 120_000_000_000;
/// Shortest `max_age` / duplicate window accepted.
const MIN_WINDOW: i64 = 100_000_000;

/// Checks a stream or consumer name: non-empty, at most 255 bytes, none of `. * > / \` or
/// whitespace.
pub(crate) fn valid_name(name: &str) -> bool {
    name_error(name).is_none()
}

/// What is wrong with a stream or consumer name, if anything: the rule behind
/// [`valid_name`], for a client that refuses a bad name before asking (the name is a token of
/// the API subject, so a `.` in it would send the request to a subject nobody serves).
pub fn name_error(name: &str) -> Option<NameError> {
    if name.is_empty() {
        return Some(NameError::Empty);
    }
    if let Some(c) = name.chars().find(|&c| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace()) {
        return Some(NameError::Char(c));
    }
    (name.len() > 255).then_some(NameError::TooLong)
}

/// Why a name was refused ([`name_error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// A character that cannot be in a name (a subject separator, wildcard or whitespace).
    Char(char),
    /// More than 255 bytes.
    TooLong,
}

impl NameError {
    /// The message, as nats.js words it for `context` ("stream", "consumer", ...).
    pub fn describe(self, context: &str, name: &str) -> String {
        match self {
            NameError::Empty => format!("{context} name required"),
            NameError::Char(c) => {
                let shown = match c {
                    '\n' => String::from("\\n"),
                    '\r' => String::from("\\r"),
                    '\t' => String::from("\\t"),
                    c => String::from(c),
                };
                format!("{context} name ('{name}') cannot contain '{shown}'")
            }
            NameError::TooLong => format!("{context} name ('{name}') is longer than 255 bytes"),
        }
    }
}

impl StreamConfig {
    /// nats-server's subject checks, in its order: each subject valid, not listed twice,
    /// clear of the API spaces unless the stream does not ack, and overlapping none listed
    /// after it (the first overlap found names the pair).
    fn check_subjects(&self) -> Result<(), ApiError> {
        let reserved =
            |s: &[u8], space: &[u8], allowed: &[u8]| subject::overlaps(s, space) && !subject::is_subset(s, allowed);
        for (i, s) in self.subjects.iter().enumerate() {
            let b = s.as_bytes();
            if subject::validate_subscribe(b).is_err() {
                return Err(ApiError::stream_config("invalid subject"));
            }
            if self.subjects[..i].contains(s) {
                return Err(ApiError::stream_config("duplicate subjects detected"));
            }
            if s == ">" && !self.no_ack {
                return Err(ApiError::stream_config("capturing all subjects requires no-ack to be true"));
            }
            if !self.no_ack {
                let api = [&b"$JS.>"[..], b"$JSC.>", b"$NRG.>"];
                if api.iter().any(|space| reserved(b, space, b"$JS.EVENT.>")) {
                    return Err(ApiError::stream_config(
                        "subjects that overlap with jetstream api require no-ack to be true",
                    ));
                }
                if reserved(b, b"$SYS.>", b"$SYS.ACCOUNT.>") {
                    return Err(ApiError::stream_config(
                        "subjects that overlap with system api require no-ack to be true",
                    ));
                }
            }
            if let Some(t) = self.subjects[i + 1..].iter().find(|t| subject::overlaps(t.as_bytes(), b)) {
                let (q, tq) =
                    (serde_json::to_string(s).unwrap_or_default(), serde_json::to_string(t).unwrap_or_default());
                return Err(ApiError::stream_config(format!("subject {q} overlaps with {tq}")));
            }
        }
        Ok(())
    }

    /// Applies nats-server's defaults and rejects what it rejects. `existing` holds the
    /// subjects of the other streams, for the overlap check.
    pub fn normalize(&mut self) -> Result<(), ApiError> {
        if self.name.contains('/') || self.name.contains('\\') {
            return Err(ApiError::STREAM_PATH_SEPARATORS);
        }
        if !valid_name(&self.name) {
            return Err(ApiError::stream_config("invalid stream name"));
        }
        super::source::check(self)?;
        let sourcing = self.mirror.is_some() || !self.sources.is_empty();
        if self.mirror_direct && self.mirror.is_none() {
            // there is no mirror here to answer direct gets for
            return Err(ApiError::stream_config("stream has no mirror but does have mirror direct"));
        }
        super::persist::check(self)?;
        if self.subjects.is_empty() && !sourcing {
            self.subjects.push(self.name.clone());
        }
        self.check_subjects()?;
        super::transforms::check(self)?;
        if self.num_replicas == 0 {
            self.num_replicas = 1;
        }
        if self.num_replicas > 1 {
            return Err(ApiError::REPLICAS_UNSUPPORTED);
        }
        if self.num_replicas < 0 {
            return Err(ApiError::with(400, 10133, "replicas count cannot be negative"));
        }
        if self.max_consumers == 0 {
            self.max_consumers = -1;
        }
        for v in [&mut self.max_msgs, &mut self.max_bytes, &mut self.max_msgs_per_subject, &mut self.max_msg_size] {
            if *v == 0 {
                *v = -1;
            }
        }
        if self.max_age < 0 {
            return Err(ApiError::stream_config("max age needs to be >= 0"));
        }
        if self.max_age > 0 && self.max_age < MIN_WINDOW {
            return Err(ApiError::stream_config("max age needs to be >= 100ms"));
        }
        if self.duplicate_window == 0 && !sourcing {
            self.duplicate_window = DEFAULT_DUPLICATE_WINDOW;
            if self.max_age > 0 && self.max_age < self.duplicate_window {
                self.duplicate_window = self.max_age;
            }
        } else if self.duplicate_window < 0 || (self.max_age > 0 && self.duplicate_window > self.max_age) {
            return Err(ApiError::stream_config("duplicates window can not be larger then max age"));
        }
        if self.discard_new_per_subject && (self.discard != Discard::New || self.max_msgs_per_subject <= 0) {
            return Err(ApiError::stream_config(
                "discard new per subject requires discard new policy to be set and max msgs per subject > 0",
            ));
        }
        if self.compression.is_none() {
            self.compression = Some("none".into());
        }
        if self.sealed {
            // nats-server 2.14 reports a sealed stream with discard new as well
            self.deny_delete = true;
            self.deny_purge = true;
            self.allow_rollup_hdrs = false;
            self.discard = Discard::New;
        }
        if let Some(ttl) = self.subject_delete_marker_ttl {
            if ttl < 1_000_000_000 {
                return Err(ApiError::stream_config("subject delete marker TTL must be at least 1s"));
            }
            self.allow_msg_ttl = true;
            self.allow_rollup_hdrs = true;
            self.deny_purge = false;
        }
        super::features::normalize(self)?;
        if let Some(m) = &mut self.metadata {
            m.retain(|k, _| !k.starts_with("_nats."));
            if m.is_empty() {
                self.metadata = None;
            }
        }
        Ok(())
    }

    /// The config as responses show it: with the server's `_nats.*` metadata.
    pub fn for_response(&self) -> StreamConfig {
        let mut c = self.clone();
        let m = c.metadata.get_or_insert_with(BTreeMap::new);
        m.insert("_nats.level".into(), alloc::format!("{}", super::sourcing::API_LEVEL));
        m.insert("_nats.req.level".into(), super::features::required_level(self).into());
        m.insert("_nats.ver".into(), crate::NATS_VERSION.into());
        c
    }

    pub fn max_age_ns(&self) -> u64 {
        self.max_age.max(0) as u64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    #[default]
    All,
    Last,
    New,
    #[serde(rename = "by_start_sequence")]
    ByStartSequence,
    #[serde(rename = "by_start_time")]
    ByStartTime,
    #[serde(rename = "last_per_subject")]
    LastPerSubject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AckPolicy {
    #[default]
    None,
    All,
    Explicit,
    /// Acks by the answers to flow control (API level 4): what a durable sourcing consumer
    /// on an interest or work-queue stream uses, so the origin forgets what its mirror or
    /// source stored (`sourcing.rs`).
    #[serde(rename = "flow_control")]
    FlowControl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

/// A consumer's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ConsumerConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durable_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub deliver_policy: DeliverPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    pub ack_policy: AckPolicy,
    #[serde(skip_serializing_if = "is_zero")]
    pub ack_wait: i64,
    pub max_deliver: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    pub replay_policy: ReplayPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_freq: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_waiting: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_batch: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_expires: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_bytes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_group: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub idle_heartbeat: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub inactive_threshold: i64,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub mem_storage: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<String>,
    #[serde(skip_serializing_if = "PriorityPolicy::is_none")]
    pub priority_policy: PriorityPolicy,
    #[serde(skip_serializing_if = "is_zero")]
    pub priority_timeout: i64,
    /// A consumer for a mirror or source on another server (see `sourcing.rs`).
    #[serde(skip_serializing_if = "is_false")]
    pub direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub sourcing: bool,
}

pub use super::consumer::priority::PriorityPolicy;

/// Default ack wait: 30 s.
pub const DEFAULT_ACK_WAIT: i64 = 30_000_000_000;
/// Default max ack pending: 1000.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// Default pull wait queue: 512 requests.
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// Ephemeral consumers without interest are removed after 5 s.
pub const DEFAULT_INACTIVE_THRESHOLD: i64 = 5_000_000_000;

impl ConsumerConfig {
    pub fn is_push(&self) -> bool {
        self.deliver_subject.as_deref().is_some_and(|s| !s.is_empty())
    }

    pub fn is_durable(&self) -> bool {
        self.durable_name.as_deref().is_some_and(|s| !s.is_empty())
    }

    /// The filters, whichever field carries them.
    pub fn filters(&self) -> Vec<&str> {
        match &self.filter_subject {
            Some(f) if !f.is_empty() => alloc::vec![f.as_str()],
            _ => self.filter_subjects.iter().map(String::as_str).collect(),
        }
    }

    /// Does the consumer want messages on `subject`?
    pub fn wants(&self, subject: &[u8]) -> bool {
        match &self.filter_subject {
            Some(f) if !f.is_empty() => crate::subject::matches(f.as_bytes(), subject),
            _ if self.filter_subjects.is_empty() => true,
            _ => self.filter_subjects.iter().any(|f| crate::subject::matches(f.as_bytes(), subject)),
        }
    }

    /// Applies nats-server's defaults and checks that do not need the stream.
    pub fn normalize(&mut self, stream: &StreamConfig) -> Result<(), ApiError> {
        super::sourcing::flow_control_ack_defaults(self);
        // nats-server (not pedantic) reads a negative pull limit as "no limit"
        for limit in [&mut self.max_batch, &mut self.max_expires, &mut self.max_bytes, &mut self.priority_timeout] {
            *limit = (*limit).max(0);
        }
        if let Some(n) = &self.durable_name {
            if n.is_empty() {
                self.durable_name = None;
            }
        }
        if let (Some(d), Some(n)) = (&self.durable_name, &self.name) {
            if !n.is_empty() && d != n {
                return Err(ApiError::DURABLE_AND_NAME_MISMATCH);
            }
        }
        for n in [&self.durable_name, &self.name].into_iter().flatten() {
            if n.contains('/') || n.contains('\\') {
                return Err(ApiError::CONSUMER_PATH_SEPARATORS);
            }
            if !valid_name(n) {
                return Err(ApiError::BAD_DURABLE_NAME);
            }
        }
        if self.filter_subject.as_deref() == Some("") {
            self.filter_subject = None;
        }
        if self.filter_subject.is_some() && !self.filter_subjects.is_empty() {
            return Err(ApiError::DUPLICATE_FILTERS);
        }
        let invalid = |f: &str| subject::validate_subscribe(f.as_bytes()).is_err();
        if self.filter_subject.as_deref().is_some_and(invalid) {
            return Err(ApiError::stream_config("invalid subject"));
        }
        if self.filter_subjects.iter().any(|f| f.is_empty()) {
            return Err(ApiError::EMPTY_FILTER);
        }
        // a filter need not match the stream's subjects (nats-server 2.14 takes it and the
        // consumer waits); filters may overlap, but none may hold another
        let filters = self.filters();
        for (i, f) in filters.iter().enumerate() {
            if invalid(f) {
                return Err(ApiError::stream_config("invalid subject"));
            }
            if filters.iter().enumerate().any(|(j, o)| i != j && subject::is_subset(f.as_bytes(), o.as_bytes())) {
                return Err(ApiError::OVERLAPPING_FILTERS);
            }
        }
        if self.deliver_policy == DeliverPolicy::LastPerSubject && self.filters().is_empty() {
            return Err(ApiError::invalid_policy(
                "consumer delivery policy is deliver last per subject, but optional filter subject is not set",
            ));
        }
        if self.deliver_policy == DeliverPolicy::ByStartSequence && self.opt_start_seq.unwrap_or(0) == 0 {
            return Err(ApiError::invalid_policy(
                "consumer delivery policy is deliver by start sequence, but optional start sequence is not set",
            ));
        }
        if self.deliver_policy == DeliverPolicy::ByStartTime && self.opt_start_time.is_none() {
            return Err(ApiError::invalid_policy(
                "consumer delivery policy is deliver by start time, but optional start time is not set",
            ));
        }
        if let Some(d) = &self.deliver_subject {
            if d.is_empty() {
                self.deliver_subject = None;
            } else if crate::subject::has_wildcard(d.as_bytes()) {
                return Err(ApiError::DELIVER_WILDCARDS);
            }
        }
        let push = self.is_push();
        if push {
            if self.max_waiting != 0 {
                return Err(ApiError::PUSH_MAX_WAITING);
            }
        } else {
            if self.idle_heartbeat != 0 {
                return Err(ApiError::HB_REQUIRES_PUSH);
            }
            if self.flow_control {
                return Err(ApiError::FC_REQUIRES_PUSH);
            }
            if self.max_waiting == 0 {
                self.max_waiting = DEFAULT_MAX_WAITING;
            }
        }
        if self.flow_control && self.idle_heartbeat == 0 {
            return Err(ApiError::FC_NEEDS_HEARTBEATS);
        }
        if self.idle_heartbeat != 0 && self.idle_heartbeat < 100_000_000 {
            return Err(ApiError::SMALL_HEARTBEAT);
        }
        if self.max_deliver == 0 {
            self.max_deliver = -1;
        }
        if !self.backoff.is_empty() && self.max_deliver != -1 && self.backoff.len() as i64 > self.max_deliver {
            return Err(ApiError::BACKOFF_MAX_DELIVER);
        }
        if self.ack_policy != AckPolicy::None {
            if self.ack_wait == 0 && self.ack_policy != AckPolicy::FlowControl {
                self.ack_wait = self.backoff.first().copied().unwrap_or(DEFAULT_ACK_WAIT);
            }
            if self.max_ack_pending == 0 {
                self.max_ack_pending = if stream.consumer_limits.max_ack_pending > 0 {
                    stream.consumer_limits.max_ack_pending
                } else {
                    DEFAULT_MAX_ACK_PENDING
                };
            }
        }
        super::sourcing::check_flow_control_acks(self)?;
        if !self.is_durable() && self.inactive_threshold == 0 {
            self.inactive_threshold = if stream.consumer_limits.inactive_threshold > 0 {
                stream.consumer_limits.inactive_threshold
            } else {
                DEFAULT_INACTIVE_THRESHOLD
            };
        }
        if let Some(m) = &mut self.metadata {
            m.retain(|k, _| !k.starts_with("_nats."));
            if m.is_empty() {
                self.metadata = None;
            }
        }
        self.normalize_pause()?;
        self.check_priority()?;
        // a mirror's or source's consumer is exempt from the work-queue rules
        if stream.retention == Retention::Workqueue && !self.direct && !self.sourcing {
            if !push && self.ack_policy != AckPolicy::Explicit {
                return Err(ApiError::PULL_WQ_ACK);
            }
            if self.deliver_policy != DeliverPolicy::All {
                return Err(ApiError::WQ_NOT_DELIVER_ALL);
            }
        }
        Ok(())
    }

    pub fn for_response(&self) -> ConsumerConfig {
        let mut c = self.clone();
        let m = c.metadata.get_or_insert_with(BTreeMap::new);
        m.insert("_nats.level".into(), alloc::format!("{}", super::sourcing::API_LEVEL));
        // pause and priority groups came with API level 1 (nats-server's jetstream_versioning.go)
        let level = if self.ack_policy == AckPolicy::FlowControl {
            "4"
        } else if self.pause_until.is_some() || self.priority_policy != PriorityPolicy::None {
            "1"
        } else {
            "0"
        };
        m.insert("_nats.req.level".into(), level.into());
        m.insert("_nats.ver".into(), crate::NATS_VERSION.into());
        c
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_are_refused_with_nats_js_wording() {
        assert_eq!(name_error("ORDERS-1_x"), None);
        assert_eq!(name_error(""), Some(NameError::Empty));
        assert_eq!(name_error("bad.name"), Some(NameError::Char('.')));
        assert_eq!(name_error("a b"), Some(NameError::Char(' ')));
        assert_eq!(name_error(&"x".repeat(256)), Some(NameError::TooLong));
        assert_eq!(NameError::Empty.describe("stream", ""), "stream name required");
        assert_eq!(NameError::Char('.').describe("stream", "bad.name"), "stream name ('bad.name') cannot contain '.'");
        assert_eq!(NameError::Char('\n').describe("consumer", "a\nb"), "consumer name ('a\nb') cannot contain '\\n'");
        assert!(!valid_name("a>b") && valid_name("ok"));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::json::FromJson;
    use alloc::string::ToString;

    fn read<T: FromJson>(text: &str) -> T {
        crate::json::typed::from_slice(text.as_bytes()).unwrap()
    }

    #[test]
    fn stream_defaults_match_nats_server() {
        let mut c: StreamConfig = read(r#"{"name":"ORDERS","subjects":["orders.>"]}"#);
        c.normalize().unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["retention"], "limits");
        assert_eq!(v["max_msgs"], -1);
        assert_eq!(v["duplicate_window"], 120_000_000_000i64);
        assert_eq!(v["storage"], "file");
        assert_eq!(v["discard"], "old");
        assert_eq!(v["compression"], "none");
        assert!(v.get("no_ack").is_none());
        let mut short: StreamConfig = read(r#"{"name":"S","max_age":3000000000}"#);
        short.normalize().unwrap();
        assert_eq!((short.subjects.clone(), short.duplicate_window), (alloc::vec!["S".into()], 3_000_000_000));
    }

    #[test]
    fn consumer_defaults_and_checks() {
        let mut s: StreamConfig = read(r#"{"name":"C","subjects":["c.>"]}"#);
        s.normalize().unwrap();
        let mut c: ConsumerConfig = read(r#"{"durable_name":"d","ack_policy":"explicit","opt_start_seq":null}"#);
        c.normalize(&s).unwrap();
        assert_eq!((c.ack_wait, c.max_deliver, c.max_ack_pending, c.max_waiting), (DEFAULT_ACK_WAIT, -1, 1000, 512));
        let mut bad: ConsumerConfig = read(r#"{"deliver_policy":"last_per_subject"}"#);
        assert_eq!(bad.normalize(&s).unwrap_err().err_code, 10094);
        let mut hb: ConsumerConfig = read(r#"{"idle_heartbeat":1000000000}"#);
        assert_eq!(hb.normalize(&s).unwrap_err().err_code, 10088);
        // outside the stream's subjects is allowed (nats-server 2.14); invalid is not
        let mut f: ConsumerConfig = read(r#"{"filter_subject":"other.x"}"#);
        f.normalize(&s).unwrap();
        let mut f: ConsumerConfig = read(r#"{"filter_subject":"c..x"}"#);
        let e = f.normalize(&s).unwrap_err();
        assert_eq!((e.code, e.err_code, e.description.as_ref()), (500, 10052, "invalid subject"));
        let mut f: ConsumerConfig = read(r#"{"filter_subjects":["c.a.*","c.*.b"]}"#);
        f.normalize(&s).unwrap();
        let mut f: ConsumerConfig = read(r#"{"filter_subjects":["c.a.*","c.a.b"]}"#);
        assert_eq!(f.normalize(&s).unwrap_err().err_code, 10138);
    }

    #[test]
    fn stream_subject_checks_follow_nats_server() {
        let check = |subjects: &str| {
            let mut c: StreamConfig = read(&format!(r#"{{"name":"S","subjects":{subjects}}}"#));
            c.normalize().map(|_| ()).map_err(|e| (e.code, e.description.into_owned()))
        };
        check(r#"["hello","world","hello.>"]"#).unwrap();
        let overlap = |a: &str, b: &str| Err((500, format!("subject \"{a}\" overlaps with \"{b}\"")));
        assert_eq!(check(r#"["twice.a","twice.a"]"#), overlap("twice.a", "twice.a"));
        assert_eq!(check(r#"["self.>","self.a"]"#), overlap("self.>", "self.a"));
        assert_eq!(check(r#"["bad..subject"]"#), Err((500, "invalid subject".into())));
        assert_eq!(check(r#"[">"]"#), Err((500, "capturing all subjects requires no-ack to be true".into())));
        let api = Err((500, "subjects that overlap with jetstream api require no-ack to be true".into()));
        assert_eq!(check(r#"["$JS.API.>"]"#), api);
        check(r#"["$JS.EVENT.x"]"#).unwrap();
    }

    /// `to_value` gives what `serde_json::to_value` gives, and reading it back gives the config.
    #[test]
    fn value_round_trips() {
        let mut c: StreamConfig = read(r#"{"name":"S","subjects":["s.>"],"max_age":1000000000}"#);
        c.normalize().unwrap();
        c.metadata = Some([("k".into(), "v".into())].into_iter().collect());
        assert_eq!(to_value(&c), serde_json::to_value(&c).unwrap());
        assert_eq!(to_value(&[1.5f64, f64::NAN, -0.0]), serde_json::to_value([1.5f64, f64::NAN, -0.0]).unwrap());
        assert_eq!(StreamConfig::from_json(&to_value(&c)).unwrap(), c);
        let mut k: ConsumerConfig = read(r#"{"durable_name":"d","ack_policy":"explicit","backoff":[1000000000]}"#);
        k.normalize(&c).unwrap();
        let k = k.for_response();
        assert_eq!(ConsumerConfig::from_json(&to_value(&k)).unwrap(), k);
    }

    /// Each field keeps its serde rule for `null` and absence.
    #[test]
    fn nulls_and_defaults_as_the_derives_had_them() {
        let c: StreamConfig = read(
            r#"{"name":"S","max_msgs":null,"num_replicas":null,"subjects":null,"description":null,
                "retention":"work_queue","placement":null,"persist_mode":null,"unknown":[1]}"#,
        );
        assert_eq!((c.max_msgs, c.max_bytes, c.num_replicas, c.subjects.len()), (-1, -1, 0, 0));
        assert_eq!((c.description, c.retention, c.placement), (None, Retention::Workqueue, None));
        assert_eq!(read::<StreamConfig>(r#"{"name":"S"}"#).num_replicas, 1);
        let err = |text: &str| crate::json::typed::from_slice::<StreamConfig>(text.as_bytes()).unwrap_err().to_string();
        assert_eq!(err(r#"{"name":null}"#), "invalid type: null, expected a string");
        assert_eq!(
            err(r#"{"name":"S","republish":{"dest":"x","headers_only":null}}"#),
            "invalid type: null, expected a boolean"
        );
        assert_eq!(err(r#"{"persist_mode":"sometimes"}"#), r#"can not unmarshal "sometimes""#);
        // serde's map form of a unit variant
        assert_eq!(read::<ConsumerConfig>(r#"{"ack_policy":{"explicit":null}}"#).ack_policy, AckPolicy::Explicit);
        assert_eq!(
            err(r#"{"retention":"x"}"#),
            "unknown variant `x`, expected one of `limits`, `interest`, `work_queue`, `workqueue`"
        );
        let p: ConsumerConfig = read(r#"{"priority_policy":"","durable_name":null}"#);
        assert_eq!((p.priority_policy, p.durable_name), (PriorityPolicy::None, None));
    }

    /// serde's words, without the position serde_json added when it read the text.
    #[test]
    fn error_texts() {
        for (bad, want) in [
            (r#"{"ack_wait":"x"}"#, r#"invalid type: string "x", expected i64"#),
            (
                r#"{"deliver_policy":"sometimes"}"#,
                "unknown variant `sometimes`, expected one of `all`, `last`, `new`, `by_start_sequence`, \
                 `by_start_time`, `last_per_subject`",
            ),
            (r#"{"max_deliver":1.5}"#, "invalid type: floating point `1.5`, expected i64"),
            (r#"{"opt_start_seq":-1}"#, "invalid value: integer `-1`, expected u64"),
            (r#"{"max_batch":9223372036854775808}"#, "invalid value: integer `9223372036854775808`, expected i64"),
            (r#"{"metadata":{"a":1}}"#, "invalid type: integer `1`, expected a string"),
            (r#"{"ack_policy":1}"#, "invalid type: integer `1`, expected enum AckPolicy"),
            (r#"{"replay_policy":"x"}"#, "unknown variant `x`, expected `instant` or `original`"),
            (
                r#"{"priority_policy":"x"}"#,
                "unknown variant `x`, expected one of ``, `none`, `overflow`, `pinned_client`, `prioritized`",
            ),
            (r#"{"ack_policy":{"all":1}}"#, "invalid type: integer `1`, expected unit variant"),
            (r#"[1]"#, "invalid type: sequence, expected struct ConsumerConfig"),
        ] {
            let v: serde_json::Value = serde_json::from_str(bad).unwrap();
            assert_eq!(ConsumerConfig::from_json(&v).unwrap_err().to_string(), want, "{bad}");
        }
    }
}
