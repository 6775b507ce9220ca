//! Partitioned consumer groups for the page: the core's rules (`edgebus_core::pcgroups`)
//! with JSON in and out; `web/src/pcgroups.ts` makes the requests and runs the member loop.

use wasm_bindgen::prelude::*;

use crate::error::BusError;
use edgebus_core::pcgroups::{json, Kind, PcgError};

fn kind(k: &str) -> Result<Kind, JsValue> {
    Kind::parse(k).ok_or_else(|| BusError::Invalid("a consumer group is \"static\" or \"elastic\"".into()).into())
}

fn out(r: Result<Vec<u8>, PcgError>) -> Result<String, JsValue> {
    match r {
        Ok(v) => String::from_utf8(v).map_err(|_| BusError::Invalid("not UTF-8".into()).into()),
        Err(e) => Err(BusError::Invalid(e.to_string()).into()),
    }
}

/// A group config, checked (throws orbit's message); the JSON to store.
#[wasm_bindgen(js_name = pcgConfig)]
pub fn pcg_config(k: &str, config: &str) -> Result<String, JsValue> {
    out(json::checked_config(kind(k)?, config.as_bytes()))
}

/// What `member` does under `config`: `{stream, consumer, filters, config, group, expires}`.
#[wasm_bindgen(js_name = pcgMemberPlan)]
pub fn pcg_member_plan(
    k: &str,
    stream: &str,
    group: &str,
    member: &str,
    config: &str,
    template: &str,
) -> Result<String, JsValue> {
    out(json::member_plan(kind(k)?, stream, group, member, config.as_bytes(), template.as_bytes()))
}

/// The elastic group's work-queue stream config.
#[wasm_bindgen(js_name = pcgElasticStream)]
pub fn pcg_elastic_stream(
    stream: &str,
    group: &str,
    config: &str,
    storage: &str,
    replicas: u32,
) -> Result<String, JsValue> {
    out(json::elastic_stream(stream, group, config.as_bytes(), storage, u64::from(replicas)))
}

/// Whether the stored config `old` may stand for the one asked for.
#[wasm_bindgen(js_name = pcgSameGroup)]
pub fn pcg_same_group(k: &str, old: &str, new: &str) -> Result<bool, JsValue> {
    json::same_group(kind(k)?, old.as_bytes(), new.as_bytes()).map_err(|e| BusError::Invalid(e.to_string()).into())
}

/// The elastic config with the members in JSON arrays `add` joined and `drop` gone.
#[wasm_bindgen(js_name = pcgChangeMembers)]
pub fn pcg_change_members(config: &str, add: &str, drop: &str) -> Result<String, JsValue> {
    out(json::change_members(config.as_bytes(), add.as_bytes(), drop.as_bytes()))
}
