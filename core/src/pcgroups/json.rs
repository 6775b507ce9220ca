//! The rules for hosts that speak JSON (the page): configs and templates in, the requests'
//! bodies out, so a host's group code is only requests and a loop.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::config::{ElasticConfig, GroupConfig, PcgError};
use super::{
    consumer_name, consumer_stream, elastic_stream_config, member_consumer_config, member_filters, pull_expires,
};
use super::{Kind, PRIORITY_GROUP};

fn json_err(e: serde_json::Error) -> PcgError {
    PcgError::Json(alloc::format!("{e}"))
}

/// A config as given by a user or read from the bucket, checked; its stored JSON.
pub fn checked_config(kind: Kind, config: &[u8]) -> Result<Vec<u8>, PcgError> {
    Ok(GroupConfig::parse(kind, config)?.to_json())
}

/// What a member does now: `{stream, consumer, filters, config, group, expires}`: the stream
/// and name of its consumer, its partition filters (empty: not a member, so it has no
/// consumer and `config` is null), the consumer config to create, the priority group to
/// pull in and how long each pull waits (nanoseconds).
pub fn member_plan(
    kind: Kind,
    stream: &str,
    group: &str,
    member: &str,
    config: &[u8],
    template: &[u8],
) -> Result<Vec<u8>, PcgError> {
    let cfg = GroupConfig::parse(kind, config)?;
    let template: Value =
        if template.is_empty() { Value::Null } else { serde_json::from_slice(template).map_err(json_err)? };
    let filters = member_filters(&cfg, member);
    let consumer = if filters.is_empty() {
        Value::Null
    } else {
        member_consumer_config(kind, group, member, &filters, &template)?
    };
    let plan = json!({
        "stream": consumer_stream(kind, stream, group),
        "consumer": consumer_name(kind, group, member),
        "filters": filters,
        "config": consumer,
        "group": PRIORITY_GROUP,
        "expires": pull_expires(&template),
    });
    serde_json::to_vec(&plan).map_err(json_err)
}

/// The elastic group's stream config, for the origin's `storage` and `replicas`.
pub fn elastic_stream(
    stream: &str,
    group: &str,
    config: &[u8],
    storage: &str,
    replicas: u64,
) -> Result<Vec<u8>, PcgError> {
    let GroupConfig::Elastic(c) = GroupConfig::parse(Kind::Elastic, config)? else {
        return Err(PcgError::Json(String::from("not an elastic config")));
    };
    serde_json::to_vec(&elastic_stream_config(stream, group, &c, storage, replicas)).map_err(json_err)
}

/// Whether an existing group's stored config `old` may stand for the one asked for, `new`
/// (orbit's create is idempotent only for the same shape).
pub fn same_group(kind: Kind, old: &[u8], new: &[u8]) -> Result<bool, PcgError> {
    Ok(match (GroupConfig::parse(kind, old)?, GroupConfig::parse(kind, new)?) {
        (GroupConfig::Elastic(a), GroupConfig::Elastic(b)) => a.same_shape(&b),
        (GroupConfig::Static(a), GroupConfig::Static(b)) => a == b,
        _ => false,
    })
}

/// An elastic config with the members of JSON array `add` joined and those of `drop` gone
/// (orbit's AddMembers / DeleteMembers).
pub fn change_members(config: &[u8], add: &[u8], drop: &[u8]) -> Result<Vec<u8>, PcgError> {
    let typed_err = |e: crate::json::ApiJsonError| PcgError::Json(e.into());
    let c: ElasticConfig = crate::json::typed::from_slice(config).map_err(typed_err)?;
    c.validate()?;
    let add: Vec<String> = crate::json::typed::from_slice(add).map_err(typed_err)?;
    let drop: Vec<String> = crate::json::typed::from_slice(drop).map_err(typed_err)?;
    let c = c.with_members(&add)?.without_members(&drop)?;
    serde_json::to_vec(&c).map_err(json_err)
}
