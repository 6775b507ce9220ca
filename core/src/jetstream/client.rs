//! The client side of the JetStream conventions: what a client puts in a publish's headers
//! to state its expectations, what a pull request's body holds, how a pull's replies end, and
//! how an API reply carries an error. The engine decides the other side of each of these; a
//! host that talks to an engine as a client (the page's JetStream API, later a stream
//! sourcing from another server) builds and reads messages with these, so both sides of a
//! convention live in this crate.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::Serialize;

use super::errors::ApiError;
use crate::proto::Headers;

pub use crate::proto::MSG_ID;
pub const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
pub const EXPECTED_STREAM: &str = "Nats-Expected-Stream";
pub const EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";
pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";

/// What a stream publish may insist on (nats.js `JetStreamPublishOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishExpect {
    pub msg_id: Option<String>,
    pub last_msg_id: Option<String>,
    pub stream: Option<String>,
    pub last_sequence: Option<u64>,
    pub last_subject_sequence: Option<u64>,
}

/// The header block for a publish: the caller's `pairs` in order, then the expectations
/// (each replacing a same-named pair). `None` when there is nothing to send.
pub fn publish_headers(pairs: &[(String, String)], expect: &PublishExpect) -> Option<Bytes> {
    let mut h = Headers::from_pairs(pairs);
    let mut itoa = itoa::Buffer::new();
    let texts = [
        (MSG_ID, expect.msg_id.as_deref()),
        (EXPECTED_LAST_MSG_ID, expect.last_msg_id.as_deref()),
        (EXPECTED_STREAM, expect.stream.as_deref()),
    ];
    for (name, value) in texts {
        if let Some(v) = value {
            h.insert(name, v);
        }
    }
    for (name, value) in
        [(EXPECTED_LAST_SEQUENCE, expect.last_sequence), (EXPECTED_LAST_SUBJECT_SEQUENCE, expect.last_subject_sequence)]
    {
        if let Some(v) = value {
            h.insert(name, itoa.format(v));
        }
    }
    h.to_block()
}

/// The body of `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PullRequest {
    pub batch: u32,
    /// How long the server keeps the request, in nanoseconds (0: the server's default).
    #[serde(skip_serializing_if = "is_zero")]
    pub expires: u64,
    /// Answer at once with what is there (a 404 when nothing is).
    #[serde(skip_serializing_if = "is_false")]
    pub no_wait: bool,
    /// The priority group to pull in (consumers with `priority_groups` refuse a pull
    /// without one), and its policy's options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `pinned_client`: the pin id this client was given (`Nats-Pin-Id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `overflow`: served only while the consumer has at least this many pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_pending: Option<i64>,
    /// `overflow`: served only while at least this many acks are outstanding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ack_pending: Option<i64>,
    /// `prioritized`: 0 (first served) to 9.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// The most bytes the pull may bring, counted as the server counts a message (subject,
    /// headers, payload); a first message larger than this ends the pull with a 409.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<i64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl PullRequest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// What one reply to a pull request is, told by its status (`None` for a message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullReply {
    /// A stored message for the batch.
    Message,
    /// `100` idle heartbeat: the request is still open.
    Heartbeat,
    /// `423`: the pin id given is not (or no longer) the pinned one; the client should pull
    /// again without it.
    Unpinned,
    /// Any other status (`404 No Messages`, `408 Request Timeout`, `409 …`): the request is over.
    End,
}

impl PullReply {
    pub fn of(status: Option<u16>) -> PullReply {
        match status {
            None => PullReply::Message,
            Some(100) => PullReply::Heartbeat,
            Some(423) => PullReply::Unpinned,
            Some(_) => PullReply::End,
        }
    }
}

/// The error an API reply (or a publish's ack) carries as `{"error": {…}}`, if it does; an
/// error without its fields reads as a 500 with a generic text, as clients show it.
pub fn reply_error(payload: &[u8]) -> Option<ApiError> {
    // A publish ack has no "error" key: skip the parse on the common path.
    memchr::memmem::find(payload, b"\"error\"")?;
    let reply: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let e = match crate::json::Fields::of(&reply, "struct Reply").ok()?.raw("error")? {
        serde_json::Value::Null => return None,
        error => crate::json::Fields::of(error, "struct Error").ok()?,
    };
    let (code, err_code) = (e.get::<Option<u16>>("code", None).ok()?, e.get::<Option<u16>>("err_code", None).ok()?);
    let description: Option<String> = e.get("description", None).ok()?;
    let description = description.map_or(Cow::Borrowed("JetStream error"), Cow::Owned);
    Some(ApiError::with(code.unwrap_or(500), err_code.unwrap_or(0), description))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn publish_headers_follow_the_pairs_and_replace_same_names() {
        assert_eq!(publish_headers(&[], &PublishExpect::default()), None);
        let pairs = vec![("X-A".to_string(), "1".to_string()), (MSG_ID.to_string(), "old".to_string())];
        let expect = PublishExpect {
            msg_id: Some("m1".into()),
            last_sequence: Some(7),
            last_subject_sequence: Some(0),
            ..PublishExpect::default()
        };
        let h = publish_headers(&pairs, &expect).unwrap();
        assert_eq!(
            &h[..],
            &b"NATS/1.0\r\nX-A: 1\r\nNats-Msg-Id: m1\r\nNats-Expected-Last-Sequence: 7\r\nNats-Expected-Last-Subject-Sequence: 0\r\n\r\n"[..]
        );
    }

    #[test]
    fn pull_requests_and_replies() {
        let r = PullRequest { batch: 10, expires: 0, no_wait: true, ..Default::default() };
        assert_eq!(r.to_json(), br#"{"batch":10,"no_wait":true}"#);
        let r = PullRequest { batch: 1, expires: 5_000_000_000, ..Default::default() };
        assert_eq!(r.to_json(), br#"{"batch":1,"expires":5000000000}"#);
        let r = PullRequest {
            batch: 1,
            group: Some("G".into()),
            id: Some("p".into()),
            min_pending: Some(3),
            ..Default::default()
        };
        assert_eq!(r.to_json(), br#"{"batch":1,"group":"G","id":"p","min_pending":3}"#);
        let r = PullRequest { batch: 100, no_wait: true, max_bytes: Some(4096), ..Default::default() };
        assert_eq!(r.to_json(), br#"{"batch":100,"no_wait":true,"max_bytes":4096}"#);
        assert_eq!(PullReply::of(Some(423)), PullReply::Unpinned);
        assert_eq!(PullReply::of(None), PullReply::Message);
        assert_eq!(PullReply::of(Some(100)), PullReply::Heartbeat);
        assert_eq!(PullReply::of(Some(404)), PullReply::End);
        assert_eq!(PullReply::of(Some(408)), PullReply::End);
    }

    #[test]
    fn errors_read_from_replies() {
        assert_eq!(reply_error(br#"{"stream":"S","seq":1}"#), None);
        let e = reply_error(br#"{"type":"x","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#)
            .unwrap();
        assert_eq!((e.code, e.err_code, &*e.description), (404, 10059, "stream not found"));
        let e = reply_error(br#"{"error":{}}"#).unwrap();
        assert_eq!((e.code, e.err_code, &*e.description), (500, 0, "JetStream error"));
        assert_eq!(reply_error(b"not json \"error\""), None);
    }
}
