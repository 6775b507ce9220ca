//! What a group's members create: the elastic group's work-queue stream, and each member's
//! pinned pull consumer, with orbit's names and its timings (all derived from `ack_wait`, so
//! that an instance that stops pulling loses its pin before its messages are redelivered).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{json, Map, Value};

use super::config::{ElasticConfig, PartitioningFilter, PcgError};
use super::{Kind, PRIORITY_GROUP};

const SECOND: u64 = 1_000_000_000;
/// orbit's `defaultAckWait`.
const DEFAULT_ACK_WAIT: u64 = 5 * SECOND;

/// The stream a group's member consumers live on.
pub fn consumer_stream(kind: Kind, stream: &str, group: &str) -> String {
    match kind {
        Kind::Static => String::from(stream),
        Kind::Elastic => format!("{stream}-{group}"),
    }
}

/// A member's consumer name.
pub fn consumer_name(kind: Kind, group: &str, member: &str) -> String {
    match kind {
        Kind::Static => format!("{group}-{member}"),
        Kind::Elastic => String::from(member),
    }
}

/// The subject-transform destination that puts the partition in front of a subject the
/// filter matches: `{{Partition(n,w…)}}.<filter with {{Wildcard(i)}} for each *>`.
pub fn partitioning_dest(pf: &PartitioningFilter, max_members: u32) -> String {
    let mut star = 0;
    let tokens: Vec<String> = pf
        .filter
        .split('.')
        .map(|t| {
            if t == "*" {
                star += 1;
                format!("{{{{Wildcard({star})}}}}")
            } else {
                String::from(t)
            }
        })
        .collect();
    let rest = tokens.join(".");
    if pf.partitioning_wildcards.is_empty() {
        return format!("{{{{Partition({max_members})}}}}.{rest}");
    }
    let list: Vec<String> = pf.partitioning_wildcards.iter().map(|w| format!("{w}")).collect();
    format!("{{{{Partition({max_members},{})}}}}.{rest}", list.join(","))
}

/// The elastic group's stream `<stream>-<group>`: a work queue sourcing `stream` through the
/// partitioning transforms, with the origin's storage and replicas and the group's buffer
/// limits (discard new: the sourcing waits while it is full).
pub fn elastic_stream_config(stream: &str, group: &str, c: &ElasticConfig, storage: &str, replicas: u64) -> Value {
    let whole = [PartitioningFilter { filter: String::from(">"), partitioning_wildcards: Vec::new() }];
    let filters = if c.partitioning_filters.is_empty() { &whole[..] } else { &c.partitioning_filters[..] };
    let transforms: Vec<Value> =
        filters.iter().map(|f| json!({"src": f.filter, "dest": partitioning_dest(f, c.max_members)})).collect();
    let limit = |n: i64| if n == 0 { -1 } else { n };
    json!({
        "name": consumer_stream(Kind::Elastic, stream, group),
        "retention": "workqueue",
        "num_replicas": replicas.max(1),
        "storage": storage,
        "max_msgs": limit(c.max_buffered_msgs),
        "max_bytes": limit(c.max_buffered_bytes),
        "discard": "new",
        "sources": [{"name": stream, "subject_transforms": transforms}],
        "allow_direct": true,
    })
}

/// The timings derived from the consumer's `ack_wait` (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub ack_wait: u64,
    /// `priority_timeout`: how long a pin outlives its client's last pull.
    pub pinned_ttl: u64,
    /// How long each pull request waits.
    pub pull_expires: u64,
}

impl Timing {
    /// From `ack_wait` in nanoseconds (zero or less: orbit's default of 5 s).
    pub fn from_ack_wait(ack_wait: i64) -> Timing {
        let ack_wait = if ack_wait <= 0 { DEFAULT_ACK_WAIT } else { ack_wait as u64 };
        Timing { ack_wait, pinned_ttl: ack_wait.max(SECOND), pull_expires: (ack_wait / 2).max(SECOND) }
    }
}

/// How long a member's pull requests wait, from its consumer template.
pub fn pull_expires(template: &Value) -> u64 {
    Timing::from_ack_wait(template.get("ack_wait").and_then(Value::as_i64).unwrap_or(0)).pull_expires
}

/// A member's consumer config: the user's `template` (any consumer config) with the group's
/// names, the member's partition filters and the pinned priority group. An elastic member's
/// consumer is ephemeral-like (`inactive_threshold` = `ack_wait`) and must ack explicitly.
pub fn member_consumer_config(
    kind: Kind,
    group: &str,
    member: &str,
    filters: &[String],
    template: &Value,
) -> Result<Value, PcgError> {
    let mut c: Map<String, Value> = match template {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PcgError::Json(String::from("the consumer template must be an object"))),
    };
    let t = Timing::from_ack_wait(c.get("ack_wait").and_then(Value::as_i64).unwrap_or(0));
    c.insert("ack_wait".into(), json!(t.ack_wait));
    c.remove("filter_subject");
    c.insert("filter_subjects".into(), json!(filters));
    c.insert("priority_groups".into(), json!([PRIORITY_GROUP]));
    c.insert("priority_policy".into(), json!("pinned_client"));
    c.insert("priority_timeout".into(), json!(t.pinned_ttl));
    let name = consumer_name(kind, group, member);
    match kind {
        Kind::Static => {
            c.remove("name");
            c.insert("durable_name".into(), json!(name));
        }
        Kind::Elastic => {
            match c.get("ack_policy").and_then(Value::as_str) {
                None | Some("explicit") => {}
                Some(_) => return Err(PcgError::AckPolicy),
            }
            c.insert("ack_policy".into(), json!("explicit"));
            c.remove("durable_name");
            c.insert("name".into(), json!(name));
            c.insert("inactive_threshold".into(), json!(t.ack_wait));
        }
    }
    Ok(Value::Object(c))
}
