//! Reading stream and consumer configurations (and what they hold) out of JSON, field by
//! field with the shared helpers of [`crate::json::typed`]. Each field keeps the rule its
//! serde attribute had: `get` for `#[serde(default)]` (a `null` is refused unless the field is
//! an `Option`), `or` for the fields clients send as `null` when unset.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::config::{
    AckPolicy, ConsumerConfig, ConsumerLimits, DeliverPolicy, Discard, ExternalStream, PersistMode, PriorityPolicy,
    RePublish, ReplayPolicy, Retention, StorageType, StreamConfig, StreamSource, SubjectTransformConfig,
};
use crate::json::typed::{ApiJsonError, Fields, FromJson, Result};
use crate::json_enum;

json_enum!(Retention, "enum RetentionPolicy", [
    "limits" => Retention::Limits,
    "interest" => Retention::Interest,
    "work_queue" | "workqueue" => Retention::Workqueue,
]);
json_enum!(Discard, "enum DiscardPolicy", ["old" => Discard::Old, "new" => Discard::New]);
json_enum!(StorageType, "enum StorageType", ["file" => StorageType::File, "memory" => StorageType::Memory]);
json_enum!(DeliverPolicy, "enum DeliverPolicy", [
    "all" => DeliverPolicy::All,
    "last" => DeliverPolicy::Last,
    "new" => DeliverPolicy::New,
    "by_start_sequence" => DeliverPolicy::ByStartSequence,
    "by_start_time" => DeliverPolicy::ByStartTime,
    "last_per_subject" => DeliverPolicy::LastPerSubject,
]);
json_enum!(AckPolicy, "enum AckPolicy", [
    "none" => AckPolicy::None,
    "all" => AckPolicy::All,
    "explicit" => AckPolicy::Explicit,
    "flow_control" => AckPolicy::FlowControl,
]);
json_enum!(ReplayPolicy, "enum ReplayPolicy", ["instant" => ReplayPolicy::Instant, "original" => ReplayPolicy::Original]);
json_enum!(PriorityPolicy, "enum PriorityPolicy", [
    "" | "none" => PriorityPolicy::None,
    "overflow" => PriorityPolicy::Overflow,
    "pinned_client" => PriorityPolicy::PinnedClient,
    "prioritized" => PriorityPolicy::Prioritized,
]);

/// nats-server's words for a name it does not know; `null` is the default.
impl FromJson for PersistMode {
    fn from_json(v: &Value) -> Result<Self> {
        match Option::<String>::from_json(v)?.as_deref() {
            None | Some("" | "default") => Ok(PersistMode::Default),
            Some("async") => Ok(PersistMode::Async),
            Some(other) => Err(ApiJsonError::new(alloc::format!("can not unmarshal \"{other}\""))),
        }
    }
}

impl FromJson for StreamConfig {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct StreamConfig")?;
        Ok(StreamConfig {
            name: f.get("name", String::new())?,
            description: f.get("description", None)?,
            subjects: f.or("subjects", Vec::new())?,
            retention: f.or("retention", Retention::default())?,
            max_consumers: f.or("max_consumers", -1)?,
            max_msgs: f.or("max_msgs", -1)?,
            max_bytes: f.or("max_bytes", -1)?,
            max_age: f.or("max_age", 0)?,
            max_msgs_per_subject: f.or("max_msgs_per_subject", -1)?,
            max_msg_size: f.or("max_msg_size", -1)?,
            discard: f.or("discard", Discard::default())?,
            storage: f.or("storage", StorageType::default())?,
            // absent is one replica; `null` reads as 0, which normalising makes one
            num_replicas: if f.raw("num_replicas").is_some() { f.or("num_replicas", 0)? } else { 1 },
            no_ack: f.or("no_ack", false)?,
            duplicate_window: f.or("duplicate_window", 0)?,
            placement: f.get("placement", None)?,
            mirror: f.get("mirror", None)?,
            sources: f.or("sources", Vec::new())?,
            compression: f.get("compression", None)?,
            first_seq: f.get("first_seq", None)?,
            subject_transform: f.get("subject_transform", None)?,
            republish: f.get("republish", None)?,
            allow_direct: f.or("allow_direct", false)?,
            mirror_direct: f.or("mirror_direct", false)?,
            discard_new_per_subject: f.or("discard_new_per_subject", false)?,
            sealed: f.or("sealed", false)?,
            deny_delete: f.or("deny_delete", false)?,
            deny_purge: f.or("deny_purge", false)?,
            allow_rollup_hdrs: f.or("allow_rollup_hdrs", false)?,
            consumer_limits: f.or("consumer_limits", ConsumerLimits::default())?,
            allow_msg_ttl: f.or("allow_msg_ttl", false)?,
            subject_delete_marker_ttl: f.get("subject_delete_marker_ttl", None)?,
            persist_mode: f.get("persist_mode", PersistMode::default())?,
            metadata: f.get("metadata", None)?,
            allow_msg_counter: f.or("allow_msg_counter", false)?,
            allow_atomic: f.or("allow_atomic", false)?,
            allow_msg_schedules: f.or("allow_msg_schedules", false)?,
            allow_batched: f.or("allow_batched", false)?,
        })
    }
}

impl FromJson for ConsumerLimits {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct ConsumerLimits")?;
        Ok(ConsumerLimits {
            inactive_threshold: f.or("inactive_threshold", 0)?,
            max_ack_pending: f.or("max_ack_pending", 0)?,
        })
    }
}

impl FromJson for StreamSource {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct StreamSource")?;
        Ok(StreamSource {
            name: f.get("name", String::new())?,
            opt_start_seq: f.or("opt_start_seq", 0)?,
            opt_start_time: f.get("opt_start_time", None)?,
            filter_subject: f.or("filter_subject", String::new())?,
            subject_transforms: f.or("subject_transforms", Vec::new())?,
            external: f.get("external", None)?,
            consumer: f.get("consumer", None)?,
        })
    }
}

impl FromJson for ExternalStream {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct ExternalStream")?;
        Ok(ExternalStream { api: f.get("api", String::new())?, deliver: f.get("deliver", String::new())? })
    }
}

impl FromJson for SubjectTransformConfig {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct SubjectTransformConfig")?;
        Ok(SubjectTransformConfig { src: f.get("src", String::new())?, dest: f.get("dest", String::new())? })
    }
}

impl FromJson for RePublish {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct RePublish")?;
        Ok(RePublish {
            src: f.get("src", String::new())?,
            dest: f.get("dest", String::new())?,
            headers_only: f.get("headers_only", false)?,
        })
    }
}

impl FromJson for ConsumerConfig {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct ConsumerConfig")?;
        Ok(ConsumerConfig {
            durable_name: f.get("durable_name", None)?,
            name: f.get("name", None)?,
            description: f.get("description", None)?,
            deliver_policy: f.or("deliver_policy", DeliverPolicy::default())?,
            opt_start_seq: f.get("opt_start_seq", None)?,
            opt_start_time: f.get("opt_start_time", None)?,
            ack_policy: f.or("ack_policy", AckPolicy::default())?,
            ack_wait: f.or("ack_wait", 0)?,
            max_deliver: f.or("max_deliver", 0)?,
            backoff: f.or("backoff", Vec::new())?,
            filter_subject: f.get("filter_subject", None)?,
            filter_subjects: f.or("filter_subjects", Vec::new())?,
            replay_policy: f.or("replay_policy", ReplayPolicy::default())?,
            rate_limit_bps: f.get("rate_limit_bps", None)?,
            sample_freq: f.get("sample_freq", None)?,
            max_waiting: f.or("max_waiting", 0)?,
            max_ack_pending: f.or("max_ack_pending", 0)?,
            flow_control: f.or("flow_control", false)?,
            headers_only: f.or("headers_only", false)?,
            max_batch: f.or("max_batch", 0)?,
            max_expires: f.or("max_expires", 0)?,
            max_bytes: f.or("max_bytes", 0)?,
            deliver_subject: f.get("deliver_subject", None)?,
            deliver_group: f.get("deliver_group", None)?,
            idle_heartbeat: f.or("idle_heartbeat", 0)?,
            inactive_threshold: f.or("inactive_threshold", 0)?,
            num_replicas: f.or("num_replicas", 0)?,
            mem_storage: f.or("mem_storage", false)?,
            metadata: f.get("metadata", None)?,
            pause_until: f.get("pause_until", None)?,
            priority_groups: f.or("priority_groups", Vec::new())?,
            priority_policy: f.or("priority_policy", PriorityPolicy::default())?,
            priority_timeout: f.or("priority_timeout", 0)?,
            direct: f.or("direct", false)?,
            sourcing: f.or("sourcing", false)?,
        })
    }
}
