//! The `$JS.API` request handlers: JSON in, JSON out, with nats-server's response types and
//! error codes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde_json::{json, Value};

use super::config::{ConsumerConfig, Retention, StorageType, StreamConfig};
use super::consumer::Consumer;
use super::domain::WithDomain;
use super::engine::{Interest, JetStream};
use super::errors::ApiError;
use super::request::{check_priority_policy, consumer_action, parse_body, parse_list_body};
use super::sourcing;
use super::store::StoredMsg;
use super::time::rfc3339;
use super::Outbound;
use crate::base64;
use crate::policy;
use crate::subject;

mod bodies;
mod consumer_control;
mod consumers;

const TYPE_PREFIX: &str = "io.nats.jetstream.api.v1.";

fn typed(kind: &str, mut body: Value) -> Value {
    if let Value::Object(m) = &mut body {
        m.insert("type".into(), Value::String(format!("{TYPE_PREFIX}{kind}")));
    }
    body
}

fn error_body(kind: &str, e: &ApiError) -> Value {
    typed(kind, json!({ "error": e }))
}

/// A refused list or names request: nats-server's reply type embeds the paging fields and the
/// (null) list, so they are there beside the error.
fn paged_error_body(kind: &str, list: &str, e: &ApiError) -> Value {
    let mut v = json!({ "error": e, "total": 0, "offset": 0, "limit": 0 });
    v[list] = Value::Null;
    typed(kind, v)
}

/// How an API reply counts in the account's `api` totals. nats-server counts by the path a
/// reply leaves through, not by its content: a found message (`STREAM.MSG.GET`) goes around
/// the API layer and is not counted, and a message delete that failed in the store is counted
/// as a plain reply.
#[derive(Clone, Copy)]
enum Tally {
    Reply,
    Error,
    Uncounted,
}

impl Tally {
    fn of(v: &Value) -> Tally {
        if v.get("error").is_some() {
            Tally::Error
        } else {
            Tally::Reply
        }
    }
}

/// List replies carry each config as stored: nats-server adds the server's own metadata
/// (`_nats.level`, `_nats.ver`) only to the info, create and update replies.
fn as_listed(mut info: Value) -> Value {
    if let Some(Value::Object(m)) = info.get_mut("config").and_then(|c| c.get_mut("metadata")) {
        m.remove("_nats.level");
        m.remove("_nats.ver");
    }
    info
}

/// The no-responders status for the API subject `$JS.API.<rest>`: nats-server answers requests
/// to a stream or consumer that is not there from the bus, not from the API.
pub(super) fn no_responders(rest: &[u8]) -> Bytes {
    let mut subject = Vec::with_capacity(API_PREFIX.len() + rest.len());
    subject.extend_from_slice(API_PREFIX);
    subject.extend_from_slice(rest);
    policy::no_responders_headers(&subject)
}

const API_PREFIX: &[u8] = b"$JS.API.";

/// The tokens after `$JS.API.` as strings (subjects are bytes; API tokens must be UTF-8).
fn tokens(rest: &[u8]) -> Option<Vec<&str>> {
    core::str::from_utf8(rest).ok().map(|s| s.split('.').collect())
}

#[derive(Default)]
struct Paging {
    offset: usize,
    subject: Option<String>,
}

#[derive(Default)]
struct InfoRequest {
    subjects_filter: Option<String>,
    deleted_details: bool,
    offset: usize,
}

/// nats-server's cap on the subjects one stream info reply lists (`JSMaxSubjectDetails`).
const MAX_SUBJECT_DETAILS: usize = 100_000;

#[derive(Default)]
struct PurgeRequest {
    filter: Option<String>,
    seq: Option<u64>,
    keep: Option<u64>,
}

#[derive(Default)]
struct MsgGetRequest {
    seq: Option<u64>,
    last_by_subj: Option<String>,
    next_by_subj: Option<String>,
}

#[derive(Default)]
struct MsgDeleteRequest {
    seq: u64,
}

#[derive(Default)]
struct CreateConsumerRequest {
    stream_name: Option<String>,
    /// Kept raw until the fields serde would not check (`priority_policy`) are checked.
    config: Option<Value>,
    action: Option<Value>,
}

/// The normalised configuration in a create or update request for stream `name`.
fn stream_config_from(name: &str, payload: &[u8]) -> Result<StreamConfig, ApiError> {
    let mut config = parse_body::<Option<StreamConfig>>(payload)?.ok_or(ApiError::STREAM_NAME_MISMATCH)?;
    if config.name != name {
        return Err(ApiError::STREAM_NAME_MISMATCH);
    }
    config.normalize()?;
    Ok(config)
}

impl JetStream {
    pub(super) fn api(
        &mut self,
        now: u64,
        rest: &[u8],
        reply: Option<Bytes>,
        headers: Option<&[u8]>,
        payload: &[u8],
        interest: &dyn Interest,
    ) {
        // Requests without a reply subject are ignored, as nats-server does.
        let Some(reply) = reply.filter(|r| !r.is_empty()) else { return };
        let Some(toks) = tokens(rest) else { return };
        // direct gets and pull requests go to the stream and the consumer in nats-server,
        // not to its API handlers, so they are not in the account's API counts
        match toks.as_slice() {
            ["DIRECT", "GET", name, subj @ ..] => return self.direct_get(name, subj, rest, payload, &reply),
            ["CONSUMER", "MSG", "NEXT", stream, name] => {
                return self.msg_next(now, stream, name, rest, reply.clone(), payload, interest);
            }
            _ => {}
        }
        if let Err(e) = sourcing::check_request(&toks, headers) {
            return self.reply_api(reply, error_body("consumer_create_response", &e), Tally::Error);
        }
        let response = match toks.as_slice() {
            ["INFO"] => Some(self.account_info()),
            ["STREAM", "CREATE", name] => Some(self.stream_create(now, name, payload)),
            ["STREAM", "UPDATE", name] => Some(self.stream_update(now, name, payload, interest)),
            ["STREAM", "DELETE", name] => Some(self.stream_delete(name)),
            ["STREAM", "INFO", name] => Some(self.stream_info(now, name, payload)),
            ["STREAM", "NAMES"] => Some(self.stream_names(payload)),
            ["STREAM", "LIST"] => Some(self.stream_list(now, payload)),
            ["STREAM", "PURGE", name] => Some(self.stream_purge(name, payload, now, interest)),
            ["STREAM", "MSG", "GET", name] => {
                let (v, tally) = self.msg_get(name, payload);
                return self.reply_api(reply, v, tally);
            }
            ["STREAM", "MSG", "DELETE", name] => {
                let (v, tally) = self.msg_delete(name, payload, now, interest);
                return self.reply_api(reply, v, tally);
            }
            ["CONSUMER", "CREATE", stream] => {
                Some(self.consumer_create(now, stream, None, None, false, payload, interest))
            }
            ["CONSUMER", "CREATE", stream, name] => {
                Some(self.consumer_create(now, stream, Some(name), None, false, payload, interest))
            }
            ["CONSUMER", "CREATE", stream, name, filter @ ..] => {
                let f = filter.join(".");
                Some(self.consumer_create(now, stream, Some(name), Some(f), false, payload, interest))
            }
            ["CONSUMER", "DURABLE", "CREATE", stream, name] => {
                Some(self.consumer_create(now, stream, Some(name), None, true, payload, interest))
            }
            ["CONSUMER", "INFO", stream, name] => Some(self.consumer_info(now, stream, name, interest)),
            ["CONSUMER", "DELETE", stream, name] => Some(self.consumer_delete(now, stream, name)),
            ["CONSUMER", "NAMES", stream] => Some(self.consumer_names(stream, payload)),
            ["CONSUMER", "LIST", stream] => Some(self.consumer_list(now, stream, payload, interest)),
            ["CONSUMER", "PAUSE", stream, name] => Some(self.consumer_pause(now, stream, name, payload, interest)),
            ["CONSUMER", "UNPIN", stream, name] => Some(self.consumer_unpin(now, stream, name, payload, interest)),
            ["CONSUMER", "RESET", stream, name] => Some(self.consumer_reset(now, stream, name, payload, interest)),
            _ => None,
        };
        if let Some(v) = response {
            let tally = Tally::of(&v);
            self.reply_api(reply, v, tally);
        }
    }

    /// Sends an API reply, counting it as the reply goes out, as nats-server does (so an
    /// account info reply does not count itself).
    fn reply_api(&mut self, reply: Bytes, v: Value, tally: Tally) {
        match tally {
            Tally::Reply => self.api_total += 1,
            Tally::Error => {
                self.api_total += 1;
                self.api_errors += 1;
            }
            Tally::Uncounted => {}
        }
        self.out.push(Outbound::data(reply, Bytes::from(serde_json::to_vec(&v).unwrap_or_default())));
    }

    fn account_info(&self) -> Value {
        let (memory, storage) = self.usage();
        typed(
            "account_info_response",
            json!({
                "memory": memory,
                "storage": storage,
                "reserved_memory": self.reserved(StorageType::Memory),
                "reserved_storage": self.reserved(StorageType::File),
                "streams": self.stream_count(),
                "consumers": self.consumer_count(),
                "limits": self.limits.to_json(),
                "api": { "level": sourcing::API_LEVEL, "total": self.api_total, "errors": self.api_errors }
            }),
        )
        .with_domain(self.domain())
    }

    fn stream_info_value(&self, now: u64, name: &str, subjects_filter: Option<&str>) -> Option<Value> {
        let e = self.streams.get(name)?;
        let mut state = super::config::to_value(&e.stream.state(e.consumers.len(), subjects_filter));
        if let Value::Object(m) = &mut state {
            if m.get("first_seq").is_none() {
                m.insert("first_seq".into(), json!(0));
            }
        }
        let mut v = json!({
            "config": super::config::to_value(&e.stream.config.for_response()),
            "created": rfc3339(e.stream.created),
            "state": state,
            "ts": rfc3339(now),
        })
        .with_domain(self.domain());
        self.add_sourcing_info(name, now, &mut v);
        Some(v)
    }

    fn stream_create(&mut self, now: u64, name: &str, payload: &[u8]) -> Value {
        const KIND: &str = "stream_create_response";
        let config = match stream_config_from(name, payload) {
            Ok(c) => self.with_mirror_direct(c),
            Err(e) => return error_body(KIND, &e),
        };
        if let Some(existing) = self.streams.get(name) {
            if existing.stream.config == config {
                let mut v = self.stream_info_value(now, name, None).unwrap_or(Value::Null);
                v["did_create"] = json!(true);
                return typed(KIND, v);
            }
            return error_body(KIND, &ApiError::STREAM_NAME_EXISTS);
        }
        if self.subjects_overlap(name, &config.subjects) {
            return error_body(KIND, &ApiError::SUBJECTS_OVERLAP);
        }
        if let Err(e) = self.check_create(&config).and_then(|()| self.check_sourcing(&config)) {
            return error_body(KIND, &e);
        }
        if let Err(e) = self.create_stream(config, now) {
            return error_body(KIND, &ApiError::stream_create(format!("{e}")));
        }
        let id = self.nuid();
        self.advisory(
            format!("$JS.EVENT.ADVISORY.STREAM.CREATED.{name}"),
            &json!({"type": "io.nats.jetstream.advisory.v1.stream_action", "id": id, "timestamp": rfc3339(now), "stream": name, "action": "create"}),
        );
        let mut v = self.stream_info_value(now, name, None).unwrap_or(Value::Null);
        v["did_create"] = json!(true);
        typed(KIND, v)
    }

    fn subjects_overlap(&self, except: &str, subjects: &[String]) -> bool {
        self.streams.iter().filter(|(n, _)| n.as_str() != except).any(|(_, e)| {
            e.stream
                .config
                .subjects
                .iter()
                .any(|a| subjects.iter().any(|b| subject::overlaps(a.as_bytes(), b.as_bytes())))
        })
    }

    fn stream_update(&mut self, now: u64, name: &str, payload: &[u8], interest: &dyn Interest) -> Value {
        const KIND: &str = "stream_update_response";
        let config = match stream_config_from(name, payload) {
            Ok(c) => self.with_mirror_direct(c),
            Err(e) => return error_body(KIND, &e),
        };
        let Some(existing) = self.streams.get(name) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        let old = existing.stream.config.clone();
        if old.storage != config.storage {
            return error_body(
                KIND,
                &ApiError::stream_config("stream configuration update can not change storage type"),
            );
        }
        if old.retention != config.retention {
            return error_body(
                KIND,
                &ApiError::stream_config("stream configuration update can not change retention policy"),
            );
        }
        if let Err(e) = super::persist::check_update(&old, &config) {
            return error_body(KIND, &e);
        }
        if old.sealed && !config.sealed {
            return error_body(
                KIND,
                &ApiError::stream_config("stream configuration update can not unseal a sealed stream"),
            );
        }
        if self.subjects_overlap(name, &config.subjects) {
            return error_body(KIND, &ApiError::SUBJECTS_OVERLAP);
        }
        let checks = super::features::check_update(&old, &config).and_then(|()| self.check_update(&old, &config));
        if let Err(e) =
            checks.and_then(|()| super::source::check_update(&old, &config)).and_then(|()| self.check_sourcing(&config))
        {
            return error_body(KIND, &e);
        }
        self.change_subjects(&old.subjects, &config.subjects);
        if let Some(e) = self.streams.get_mut(name) {
            if let Err(err) = e.stream.update_config(config) {
                return error_body(KIND, &err);
            }
        }
        self.save_stream_meta(name);
        self.settle_events(name);
        self.pump_stream(name, now, interest);
        let id = self.nuid();
        self.advisory(
            format!("$JS.EVENT.ADVISORY.STREAM.UPDATED.{name}"),
            &json!({"type": "io.nats.jetstream.advisory.v1.stream_action", "id": id, "timestamp": rfc3339(now), "stream": name, "action": "modify"}),
        );
        typed(KIND, self.stream_info_value(now, name, None).unwrap_or(Value::Null))
    }

    fn stream_delete(&mut self, name: &str) -> Value {
        const KIND: &str = "stream_delete_response";
        if !self.delete_stream(name) {
            return error_body(KIND, &ApiError::STREAM_NOT_FOUND);
        }
        typed(KIND, json!({ "success": true }))
    }

    fn stream_info(&mut self, now: u64, name: &str, payload: &[u8]) -> Value {
        const KIND: &str = "stream_info_response";
        let req: InfoRequest = match parse_body(payload) {
            Ok(r) => r,
            Err(e) => return error_body(KIND, &e),
        };
        let filter = req.subjects_filter.as_deref().filter(|f| !f.is_empty());
        // the paging fields are always there, errors included (nats-server's reply embeds them)
        let Some(mut v) = self.stream_info_value(now, name, filter) else {
            let mut v = error_body(KIND, &ApiError::STREAM_NOT_FOUND);
            for k in ["total", "offset", "limit"] {
                v[k] = json!(0);
            }
            return v;
        };
        let (mut total, mut offset, mut limit) = (0, 0, 0);
        if let Some(Value::Object(subjects)) = v["state"].get_mut("subjects") {
            // one page of the subjects, in subject order, when they are many or an offset is set
            (total, offset, limit) = (subjects.len(), req.offset, MAX_SUBJECT_DETAILS);
            if offset > 0 || total > limit {
                let page: serde_json::Map<String, Value> =
                    core::mem::take(subjects).into_iter().skip(offset).take(limit).collect();
                *subjects = page;
            }
        }
        if req.deleted_details {
            if let Some(e) = self.streams.get(name) {
                let deleted = e.stream.deleted();
                if !deleted.is_empty() {
                    v["state"]["deleted"] = json!(deleted);
                }
            }
        }
        v["total"] = json!(total);
        v["offset"] = json!(offset);
        v["limit"] = json!(limit);
        typed(KIND, v)
    }

    fn matching_streams(&self, filter: Option<&str>) -> Vec<String> {
        self.streams
            .iter()
            .filter(|(_, e)| {
                filter.is_none_or(|f| {
                    f.is_empty()
                        || e.stream.config.subjects.iter().any(|s| subject::overlaps(s.as_bytes(), f.as_bytes()))
                })
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn stream_names(&self, payload: &[u8]) -> Value {
        const KIND: &str = "stream_names_response";
        let req: Paging = match parse_list_body(payload) {
            Ok(r) => r,
            Err(e) => return paged_error_body(KIND, "streams", &e),
        };
        let names = self.matching_streams(req.subject.as_deref());
        let total = names.len();
        let page: Vec<String> = names.into_iter().skip(req.offset).take(1024).collect();
        typed(KIND, json!({ "total": total, "offset": req.offset, "limit": 1024, "streams": page }))
    }

    fn stream_list(&self, now: u64, payload: &[u8]) -> Value {
        const KIND: &str = "stream_list_response";
        let req: Paging = match parse_list_body(payload) {
            Ok(r) => r,
            Err(e) => return paged_error_body(KIND, "streams", &e),
        };
        let names = self.matching_streams(req.subject.as_deref());
        let total = names.len();
        let infos: Vec<Value> = names
            .iter()
            .skip(req.offset)
            .take(256)
            .filter_map(|n| self.stream_info_value(now, n, None))
            .map(as_listed)
            .collect();
        typed(KIND, json!({ "total": total, "offset": req.offset, "limit": 256, "streams": infos }))
    }

    fn stream_purge(&mut self, name: &str, payload: &[u8], now: u64, interest: &dyn Interest) -> Value {
        const KIND: &str = "stream_purge_response";
        let req: PurgeRequest = match parse_body(payload) {
            Ok(r) => r,
            Err(e) => return error_body(KIND, &e),
        };
        let Some(e) = self.streams.get_mut(name) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        // a sealed stream is refused as sealed first (nats.py's object store reads that error)
        let refusal = if e.stream.config.sealed {
            Some(ApiError::SEALED)
        } else if e.stream.config.deny_purge {
            Some(ApiError::PURGE_DENIED)
        } else {
            None
        };
        if let Some(err) = refusal {
            let mut v = error_body(KIND, &err);
            v["purged"] = json!(0);
            return v;
        }
        if req.seq.is_some() && req.keep.is_some() {
            return error_body(KIND, &ApiError::with(400, 10003, "bad request"));
        }
        let purged = match e.stream.purge(req.filter.as_deref(), req.seq, req.keep) {
            Ok(n) => n,
            Err(err) => return error_body(KIND, &err),
        };
        self.save_stream_meta(name);
        self.settle_events(name);
        self.pump_stream(name, now, interest);
        typed(KIND, json!({ "success": true, "purged": purged }))
    }

    /// Finds the message a get request names.
    fn find_msg(&mut self, name: &str, req: &MsgGetRequest) -> Result<Option<StoredMsg>, ApiError> {
        let e = self.streams.get_mut(name).ok_or(ApiError::STREAM_NOT_FOUND)?;
        let seq = match (&req.seq, &req.last_by_subj, &req.next_by_subj) {
            (Some(s), None, None) => *s,
            (None, Some(subj), None) => e.stream.last_seq_for(subj.as_bytes()),
            (start, None, Some(subj)) => {
                let f = subj.as_bytes();
                e.stream.next_matching(start.unwrap_or(0), |s| subject::matches(f, s)).unwrap_or(0)
            }
            _ => return Err(ApiError::BAD_REQUEST),
        };
        // a message no sync covers yet is not out (`stream/commit.rs`)
        if seq == 0 || !e.stream.visible(seq) {
            return Ok(None);
        }
        e.stream.load(seq)
    }

    fn msg_get(&mut self, name: &str, payload: &[u8]) -> (Value, Tally) {
        const KIND: &str = "stream_msg_get_response";
        let req: MsgGetRequest = match parse_body(payload) {
            Ok(r) => r,
            Err(e) => return (error_body(KIND, &e), Tally::Error),
        };
        let found = match self.find_msg(name, &req) {
            Err(e) => error_body(KIND, &e),
            Ok(None) => error_body(KIND, &ApiError::NO_MESSAGE_FOUND),
            Ok(Some(m)) => {
                let mut msg = json!({
                    "subject": String::from_utf8_lossy(&m.subject),
                    "seq": m.seq,
                    "time": rfc3339(m.time),
                });
                if let Some(h) = &m.headers {
                    msg["hdrs"] = json!(base64::encode(h));
                }
                if !m.payload.is_empty() {
                    msg["data"] = json!(base64::encode(&m.payload));
                }
                return (typed(KIND, json!({ "message": msg })), Tally::Uncounted);
            }
        };
        (found, Tally::Error)
    }

    fn msg_delete(&mut self, name: &str, payload: &[u8], now: u64, interest: &dyn Interest) -> (Value, Tally) {
        const KIND: &str = "stream_msg_delete_response";
        let refused = |e: &ApiError| (error_body(KIND, e), Tally::Error);
        let req: MsgDeleteRequest = match parse_body(payload) {
            Ok(r) => r,
            Err(e) => return refused(&e),
        };
        let Some(e) = self.streams.get_mut(name) else { return refused(&ApiError::STREAM_NOT_FOUND) };
        if e.stream.config.sealed {
            return refused(&ApiError::SEALED);
        }
        if e.stream.config.deny_delete {
            return refused(&ApiError::DELETE_DENIED);
        }
        let failed = match e.stream.remove(req.seq) {
            Ok(true) => None,
            Ok(false) => Some(ApiError::sequence_not_found(req.seq)),
            Err(err) => Some(err),
        };
        if let Some(err) = failed {
            return (error_body(KIND, &err), Tally::Reply);
        }
        self.settle_events(name);
        self.pump_stream(name, now, interest);
        (typed(KIND, json!({ "success": true })), Tally::Reply)
    }
}
