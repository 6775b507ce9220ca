//! Run-time controls of a consumer: `$JS.API.CONSUMER.PAUSE.<stream>.<consumer>` (pause until
//! a time, or resume) and `$JS.API.CONSUMER.UNPIN.<stream>.<consumer>` (drop the pinned
//! client of a priority group), `$JS.API.CONSUMER.RESET.<stream>.<consumer>` (start over at
//! a sequence, `consumer/reset.rs`), with their replies, and the advisories consumers owe for
//! pins and pauses (`$JS.EVENT.ADVISORY.CONSUMER.{PAUSE,PINNED,UNPINNED}.<stream>.<consumer>`).

use alloc::format;
use alloc::string::String;
use serde_json::{json, Value};

use super::{error_body, typed};
use crate::jetstream::consumer::ConsumerEvent;
use crate::jetstream::engine::JetStream;
use crate::jetstream::errors::ApiError;
use crate::jetstream::request::check_depth;
use crate::jetstream::time::{parse_rfc3339, rfc3339};
use crate::jetstream::Interest;
use crate::json::typed::{self, Fields, FromJson};

#[derive(Default)]
struct PauseRequest {
    pause_until: String,
}

#[derive(Default)]
struct ResetRequest {
    seq: u64,
}

#[derive(Default)]
struct UnpinRequest {
    group: String,
}

impl FromJson for PauseRequest {
    fn from_json(v: &Value) -> typed::Result<Self> {
        Ok(PauseRequest { pause_until: Fields::of(v, "struct PauseRequest")?.or("pause_until", String::new())? })
    }
}

impl FromJson for ResetRequest {
    fn from_json(v: &Value) -> typed::Result<Self> {
        Ok(ResetRequest { seq: Fields::of(v, "struct ResetRequest")?.or("seq", 0)? })
    }
}

impl FromJson for UnpinRequest {
    fn from_json(v: &Value) -> typed::Result<Self> {
        Ok(UnpinRequest { group: Fields::of(v, "struct UnpinRequest")?.or("group", String::new())? })
    }
}

/// nats-server reads the pause body only when it is a JSON object or array; anything else
/// (an empty body included) resumes.
fn pause_request(payload: &[u8]) -> Result<Option<u64>, ApiError> {
    let first = payload.iter().find(|c| !c.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return Ok(None);
    }
    check_depth(payload)?;
    let req: PauseRequest = typed::from_slice(payload).map_err(ApiError::invalid_json)?;
    if req.pause_until.is_empty() {
        return Ok(None);
    }
    match parse_rfc3339(&req.pause_until) {
        Some(0) => Ok(None),
        Some(at) => Ok(Some(at)),
        None => Err(ApiError::invalid_json(format!("parsing time {:?} as RFC 3339: cannot parse", req.pause_until))),
    }
}

impl JetStream {
    /// `CONSUMER.RESET`: an empty body starts over at the ack floor, `{"seq": n}` at `n`;
    /// the answer is the consumer's info with `reset_seq`.
    pub(super) fn consumer_reset(
        &mut self,
        now: u64,
        stream: &str,
        name: &str,
        payload: &[u8],
        interest: &dyn Interest,
    ) -> Value {
        const KIND: &str = "consumer_reset_response";
        let req: ResetRequest = if payload.is_empty() {
            ResetRequest::default()
        } else {
            match check_depth(payload).and_then(|()| typed::from_slice(payload).map_err(ApiError::invalid_json)) {
                Ok(r) => r,
                Err(e) => return error_body(KIND, &e),
            }
        };
        let Some(e) = self.streams.get_mut(stream) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        let Some(c) = e.consumers.get_mut(name) else { return error_body(KIND, &ApiError::CONSUMER_NOT_FOUND) };
        let seq = match c.reset_seq(req.seq, &e.stream) {
            Ok(s) => s,
            Err(err) => return error_body(KIND, &err),
        };
        c.reset_start(seq, &e.stream);
        let mut info = crate::jetstream::config::to_value(&c.info(now));
        info["reset_seq"] = json!(seq);
        // under interest retention what now lies below every consumer's floor may go
        if e.stream.config.retention == crate::jetstream::config::Retention::Interest {
            let first = e.stream.first_seq();
            self.retire_range(stream, first, seq.saturating_sub(1));
        }
        self.pump_stream(stream, now, interest);
        typed(KIND, info)
    }

    pub(super) fn consumer_pause(
        &mut self,
        now: u64,
        stream: &str,
        name: &str,
        payload: &[u8],
        interest: &dyn Interest,
    ) -> Value {
        const KIND: &str = "consumer_pause_response";
        let until = match pause_request(payload) {
            Ok(u) => u,
            Err(e) => return error_body(KIND, &e),
        };
        let Some(entry) = self.streams.get_mut(stream) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        let Some(c) = entry.consumers.get_mut(name) else { return error_body(KIND, &ApiError::CONSUMER_NOT_FOUND) };
        c.set_pause(until.map(rfc3339), now);
        let (paused, remaining) = (c.is_paused(now), c.pause_remaining(now));
        // a pause must outlive a crash like the config it is part of
        let saved = c.saved_state();
        let _ = entry.stream.store_mut().save_consumer(name, &saved);
        self.pump_stream(stream, now, interest);
        let mut body = json!({ "paused": paused, "pause_until": rfc3339(until.unwrap_or(0)) });
        if remaining > 0 {
            body["pause_remaining"] = json!(remaining);
        }
        typed(KIND, body)
    }

    pub(super) fn consumer_unpin(
        &mut self,
        now: u64,
        stream: &str,
        name: &str,
        payload: &[u8],
        interest: &dyn Interest,
    ) -> Value {
        const KIND: &str = "consumer_unpin_response";
        // Go's decoder: an empty body is not JSON
        let req: UnpinRequest =
            match check_depth(payload).and_then(|()| typed::from_slice(payload).map_err(ApiError::invalid_json)) {
                Ok(r) => r,
                Err(e) => return error_body(KIND, &e),
            };
        if req.group.is_empty() {
            return error_body(KIND, &ApiError::invalid_json("consumer group not specified"));
        }
        let Some(entry) = self.streams.get_mut(stream) else { return error_body(KIND, &ApiError::STREAM_NOT_FOUND) };
        let Some(c) = entry.consumers.get_mut(name) else { return error_body(KIND, &ApiError::CONSUMER_NOT_FOUND) };
        if let Err(e) = c.unpin(&req.group) {
            return error_body(KIND, &e);
        }
        self.pump_stream(stream, now, interest);
        typed(KIND, json!({}))
    }

    /// Publishes the advisories the consumers of `stream` owe (pins, pauses).
    pub(in crate::jetstream) fn consumer_advisories(&mut self, stream: &str, now: u64) {
        let Some(entry) = self.streams.get_mut(stream) else { return };
        let owed: alloc::vec::Vec<(String, ConsumerEvent)> = entry
            .consumers
            .values_mut()
            .flat_map(|c| {
                let n = c.name.clone();
                c.take_events().into_iter().map(move |e| (n.clone(), e))
            })
            .collect();
        for (consumer, event) in owed {
            let id = self.nuid();
            let base = json!({ "id": id, "timestamp": rfc3339(now), "stream": stream, "consumer": consumer });
            let (event, kind, extra) = match event {
                ConsumerEvent::Pause { paused, until } => {
                    ("PAUSE", "consumer_pause", json!({ "paused": paused, "pause_until": until }))
                }
                ConsumerEvent::Pinned { group, id } => {
                    ("PINNED", "consumer_group_pinned", json!({ "group": group, "pinned_id": id }))
                }
                ConsumerEvent::Unpinned { group, reason } => {
                    ("UNPINNED", "consumer_group_unpinned", json!({ "group": group, "reason": reason }))
                }
            };
            let mut body = json!({ "type": format!("io.nats.jetstream.advisory.v1.{kind}") });
            for part in [base, extra] {
                if let (Value::Object(b), Value::Object(p)) = (&mut body, part) {
                    b.extend(p);
                }
            }
            self.advisory(format!("$JS.EVENT.ADVISORY.CONSUMER.{event}.{stream}.{consumer}"), &body);
        }
    }
}
