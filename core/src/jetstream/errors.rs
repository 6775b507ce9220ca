//! JetStream API errors with nats-server's `code`, `err_code` and description texts
//! (`server/errors.json`), the values clients match on.

use alloc::borrow::Cow;
use alloc::format;
use serde::Serialize;

/// One API error, as it appears in `{"error":{"code","err_code","description"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: u16,
    pub err_code: u16,
    pub description: Cow<'static, str>,
}

const fn fixed(code: u16, err_code: u16, description: &'static str) -> ApiError {
    ApiError { code, err_code, description: Cow::Borrowed(description) }
}

impl ApiError {
    pub fn with(code: u16, err_code: u16, description: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError { code, err_code, description: description.into() }
    }

    pub const BAD_REQUEST: ApiError = fixed(400, 10003, "bad request");
    pub const CONSUMER_NOT_FOUND: ApiError = fixed(404, 10014, "consumer not found");
    pub const CONSUMER_NAME_EXISTS: ApiError = fixed(400, 10013, "consumer name already in use");
    pub const DURABLE_NOT_IN_SUBJECT: ApiError =
        fixed(400, 10016, "consumer expected to be durable but no durable name set in subject");
    pub const DURABLE_NAME_MISMATCH: ApiError =
        fixed(400, 10017, "consumer name in subject does not match durable name in request");
    pub const DURABLE_NAME_NOT_SET: ApiError =
        fixed(400, 10018, "consumer expected to be durable but a durable name was not set");
    pub const EPHEMERAL_WITH_DURABLE: ApiError =
        fixed(400, 10020, "consumer expected to be ephemeral but a durable name was set in request");
    pub const INSUFFICIENT_RESOURCES: ApiError = fixed(503, 10023, "insufficient resources");
    pub const MEMORY_RESOURCES_EXCEEDED: ApiError = fixed(500, 10028, "insufficient memory resources available");
    pub const STORAGE_RESOURCES_EXCEEDED: ApiError = fixed(500, 10047, "insufficient storage resources available");
    pub const MAX_CONSUMERS: ApiError = fixed(400, 10026, "maximum consumers limit reached");
    pub const MAX_STREAMS: ApiError = fixed(400, 10027, "maximum number of streams reached");
    pub const STREAM_MAX_BYTES_REQUIRED: ApiError =
        fixed(400, 10113, "account requires a stream config to have max bytes set");
    pub const STREAM_MAX_STREAM_BYTES_EXCEEDED: ApiError =
        fixed(400, 10122, "stream max bytes exceeds account limit max stream bytes");
    pub const NO_MESSAGE_FOUND: ApiError = fixed(404, 10037, "no message found");
    pub const NOT_ENABLED: ApiError = fixed(503, 10039, "JetStream not enabled for account");
    pub const MSG_TOO_BIG: ApiError = fixed(400, 10054, "message size exceeds maximum allowed");
    pub const STREAM_NAME_MISMATCH: ApiError = fixed(400, 10056, "stream name in subject does not match request");
    pub const DELETE_DENIED: ApiError = fixed(500, 10057, "message delete not permitted");
    pub const STREAM_NAME_EXISTS: ApiError =
        fixed(400, 10058, "stream name already in use with a different configuration");
    pub const STREAM_NOT_FOUND: ApiError = fixed(404, 10059, "stream not found");
    pub const EXPECTED_STREAM: ApiError = fixed(400, 10060, "expected stream does not match");
    pub const SUBJECTS_OVERLAP: ApiError = fixed(400, 10065, "subjects overlap with an existing stream");
    pub const REPLICAS_UNSUPPORTED: ApiError = fixed(500, 10074, "replicas > 1 not supported in non-clustered mode");
    pub const CONSUMER_CONFIG_REQUIRED: ApiError = fixed(400, 10078, "consumer config required");
    pub const DELIVER_WILDCARDS: ApiError = fixed(400, 10079, "consumer deliver subject has wildcards");
    pub const PUSH_MAX_WAITING: ApiError = fixed(400, 10080, "consumer in push mode can not set max waiting");
    pub const SMALL_HEARTBEAT: ApiError = fixed(400, 10083, "consumer idle heartbeat needs to be >= 100ms");
    pub const PULL_WQ_ACK: ApiError =
        fixed(400, 10084, "consumer in pull mode requires explicit ack policy on workqueue stream");
    pub const HB_REQUIRES_PUSH: ApiError = fixed(400, 10088, "consumer idle heartbeat requires a push based consumer");
    pub const FC_REQUIRES_PUSH: ApiError = fixed(400, 10089, "consumer flow control requires a push based consumer");
    pub const BAD_DURABLE_NAME: ApiError = fixed(400, 10103, "durable name can not contain '.', '*', '>'");
    pub const FC_NEEDS_HEARTBEATS: ApiError = fixed(400, 10108, "consumer with flow control also needs heartbeats");
    pub const WQ_MULTIPLE_UNFILTERED: ApiError =
        fixed(400, 10099, "multiple non-filtered consumers not allowed on workqueue stream");
    pub const WQ_NOT_UNIQUE: ApiError = fixed(400, 10100, "filtered consumer not unique on workqueue stream");
    pub const WQ_NOT_DELIVER_ALL: ApiError = fixed(400, 10101, "consumer must be deliver all on workqueue stream");
    pub const SEALED: ApiError = fixed(400, 10109, "invalid operation on sealed stream");
    pub const PURGE_DENIED: ApiError = fixed(500, 10110, "stream purge not permitted");
    pub const ROLLUP_DENIED: ApiError = fixed(500, 10111, "rollup not permitted");
    pub const BACKOFF_MAX_DELIVER: ApiError =
        fixed(400, 10116, "max deliver is required to be > length of backoff values");
    pub const CONSUMER_PATH_SEPARATORS: ApiError = fixed(400, 10127, "Consumer name can not contain path separators");
    pub const STREAM_PATH_SEPARATORS: ApiError = fixed(400, 10128, "Stream name can not contain path separators");
    pub const FILTER_MISMATCH: ApiError =
        fixed(400, 10131, "Consumer create request did not match filtered subject from create subject");
    pub const DURABLE_AND_NAME_MISMATCH: ApiError =
        fixed(400, 10132, "Consumer Durable and Name have to be equal if both are provided");
    pub const DUPLICATE_FILTERS: ApiError =
        fixed(400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified");
    pub const MULTIPLE_FILTERS_SUBJECT_API: ApiError =
        fixed(400, 10137, "consumer with multiple subject filters cannot use subject based API");
    pub const OVERLAPPING_FILTERS: ApiError = fixed(400, 10138, "consumer subject filters cannot overlap");
    pub const EMPTY_FILTER: ApiError = fixed(400, 10139, "consumer filter in FilterSubjects cannot be empty");
    pub const CONSUMER_EXISTS: ApiError = fixed(400, 10148, "consumer already exists");
    pub const CONSUMER_DOES_NOT_EXIST: ApiError = fixed(400, 10149, "consumer does not exist");
    pub const PRIORITY_POLICY_WITHOUT_GROUP: ApiError =
        fixed(400, 10159, "Setting PriorityPolicy requires at least one PriorityGroup to be set");
    pub const INVALID_PRIORITY_GROUP: ApiError =
        fixed(400, 10160, "Provided priority group does not exist for this consumer");
    pub const EMPTY_GROUP_NAME: ApiError = fixed(400, 10161, "Group name cannot be an empty string");
    pub const INVALID_GROUP_NAME: ApiError = fixed(
        400,
        10162,
        "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters",
    );
    pub const PUSH_WITH_PRIORITY_GROUP: ApiError =
        fixed(400, 10178, "priority groups can not be used with push consumers");
    pub const PRIORITY_GROUP_WITH_POLICY_NONE: ApiError =
        fixed(400, 10196, "consumer can not have priority groups when policy is none");
    pub const PINNED_TTL_WITHOUT_POLICY: ApiError =
        fixed(400, 10197, "PinnedTTL cannot be set when PriorityPolicy is none");
    pub const HEADER_TOO_BIG: ApiError = fixed(400, 10097, "header size exceeds maximum allowed of 64k");
    pub const MSG_TTL_DISABLED: ApiError = fixed(400, 10166, "per-message TTL is disabled");
    pub const MSG_TTL_INVALID: ApiError = fixed(400, 10165, "invalid per-message TTL");
    pub const DIRECT_REQUIRES_PUSH: ApiError = fixed(400, 10090, "consumer direct requires a push based consumer");
    pub const DIRECT_REQUIRES_EPHEMERAL: ApiError = fixed(400, 10091, "consumer direct requires an ephemeral consumer");
    pub const REQUIRED_API_LEVEL: ApiError = fixed(412, 10185, "JetStream minimum api level required");
    pub const ACK_FC_REQUIRES_PUSH: ApiError =
        fixed(400, 10218, "flow control ack policy requires a push based consumer");
    pub const ACK_FC_REQUIRES_FC: ApiError = fixed(400, 10219, "flow control ack policy requires flow control");
    pub const ACK_FC_REQUIRES_MAX_ACK_PENDING: ApiError =
        fixed(400, 10220, "flow control ack policy requires max ack pending");
    pub const ACK_FC_REQUIRES_NO_ACK_WAIT: ApiError =
        fixed(400, 10221, "flow control ack policy requires unset ack wait");
    pub const ACK_FC_REQUIRES_NO_MAX_DELIVER: ApiError =
        fixed(400, 10222, "flow control ack policy requires unset max deliver");

    pub fn invalid_json(err: impl core::fmt::Display) -> ApiError {
        ApiError::with(400, 10025, format!("invalid JSON: {err}"))
    }
    /// nats-server's `JSStreamInvalidConfigF`: a 500, bad input though it is.
    pub fn stream_config(err: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::with(500, 10052, err)
    }
    pub fn consumer_create(err: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::with(500, 10012, err)
    }
    pub fn invalid_policy(err: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::with(400, 10094, err)
    }
    pub fn consumer_max_ack_pending_excess(limit: i64) -> ApiError {
        ApiError::with(400, 10121, format!("consumer max ack pending exceeds system limit of {limit}"))
    }
    pub fn sequence_not_found(seq: u64) -> ApiError {
        ApiError::with(400, 10043, format!("sequence {seq} not found"))
    }
    pub fn wrong_last_sequence(seq: u64) -> ApiError {
        ApiError::with(400, 10071, format!("wrong last sequence: {seq}"))
    }
    pub fn wrong_last_msg_id(id: &str) -> ApiError {
        ApiError::with(400, 10070, format!("wrong last msg ID: {id}"))
    }
    pub fn store_failed(err: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::with(503, 10077, err)
    }
    pub fn stream_create(err: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::with(500, 10049, err)
    }
    pub fn stream_general(err: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::with(500, 10051, err)
    }
    /// `value` quoted as Go's `%q` quotes it (JSON's quoting, the same for printable text).
    pub fn rollup_invalid(value: &str) -> ApiError {
        let quoted = serde_json::to_string(value).unwrap_or_default();
        ApiError::with(500, 10111, format!("rollup value invalid: {quoted}"))
    }
}
