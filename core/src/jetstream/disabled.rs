//! The `$JS.API` answer of an account without JetStream on a server that runs it: every
//! request gets nats-server's `503 10039 JetStream not enabled for account`, in the response
//! type of the request it answers (a client parses the error out of the type it expects).

use alloc::format;
use alloc::vec::Vec;
use serde_json::json;

use super::errors::ApiError;

/// The subject prefix of the JetStream API.
pub const API_PREFIX: &[u8] = b"$JS.API.";

/// The response type (without `io.nats.jetstream.api.v1.`) of the API request on `subject`,
/// or `None` for what is not an API request with a typed answer.
pub fn response_kind(subject: &[u8]) -> Option<&'static str> {
    let rest = subject.strip_prefix(API_PREFIX)?;
    let toks: Vec<&[u8]> = rest.split(|b| *b == b'.').collect();
    Some(match toks.as_slice() {
        [b"INFO"] => "account_info_response",
        [b"STREAM", b"CREATE", _] => "stream_create_response",
        [b"STREAM", b"UPDATE", _] => "stream_update_response",
        [b"STREAM", b"DELETE", _] => "stream_delete_response",
        [b"STREAM", b"INFO", _] => "stream_info_response",
        [b"STREAM", b"NAMES"] => "stream_names_response",
        [b"STREAM", b"LIST"] => "stream_list_response",
        [b"STREAM", b"PURGE", _] => "stream_purge_response",
        [b"STREAM", b"MSG", b"GET", _] => "stream_msg_get_response",
        [b"STREAM", b"MSG", b"DELETE", _] => "stream_msg_delete_response",
        [b"CONSUMER", b"CREATE", _, ..] | [b"CONSUMER", b"DURABLE", b"CREATE", _, _] => "consumer_create_response",
        [b"CONSUMER", b"INFO", _, _] => "consumer_info_response",
        [b"CONSUMER", b"DELETE", _, _] => "consumer_delete_response",
        [b"CONSUMER", b"NAMES", _] => "consumer_names_response",
        [b"CONSUMER", b"LIST", _] => "consumer_list_response",
        _ => return None,
    })
}

/// The answer to an API request on `subject` in an account without JetStream, if it is one.
pub fn not_enabled_response(subject: &[u8]) -> Option<Vec<u8>> {
    let kind = response_kind(subject)?;
    let body = json!({ "type": format!("io.nats.jetstream.api.v1.{kind}"), "error": ApiError::NOT_ENABLED });
    serde_json::to_vec(&body).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn typed_not_enabled_answers() {
        let v: serde_json::Value =
            serde_json::from_slice(&not_enabled_response(b"$JS.API.STREAM.NAMES").unwrap()).unwrap();
        assert_eq!(v["type"], "io.nats.jetstream.api.v1.stream_names_response");
        assert_eq!(v["error"]["code"], 503);
        assert_eq!(v["error"]["err_code"], 10039);
        assert_eq!(v["error"]["description"], "JetStream not enabled for account");
        assert_eq!(response_kind(b"$JS.API.INFO"), Some("account_info_response"));
        assert_eq!(response_kind(b"$JS.API.CONSUMER.CREATE.S.c.f.>"), Some("consumer_create_response"));
        assert_eq!(response_kind(b"$JS.API.NOPE"), None);
        assert_eq!(response_kind(b"other"), None);
    }
}
