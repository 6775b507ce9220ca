//! Store and account limits, counted as nats-server counts them. Bytes (`max_memory_store` /
//! `max_file_store`, or an account's `max_mem` / `max_file`): a stream's `max_bytes` is a
//! reservation taken at create time, and a publish is refused once what the store type
//! already holds is over its limit (so the message that crosses the limit is still stored,
//! and the next one is not). An account's `jetstream { max_streams, max_consumers,
//! max_ack_pending, memory_max_stream_bytes, store_max_stream_bytes, max_bytes_required }`
//! bound what its streams and consumers may ask for.

use serde_json::{json, Value};

use super::config::{AckPolicy, ConsumerConfig, StorageType, StreamConfig};
use super::engine::JetStream;
use super::errors::ApiError;

/// What an engine's streams may hold and ask for; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreLimits {
    pub max_memory: Option<u64>,
    pub max_file: Option<u64>,
    pub max_streams: Option<u64>,
    /// Consumers per stream (nats-server applies the account's limit per stream).
    pub max_consumers: Option<u64>,
    pub max_ack_pending: Option<u64>,
    /// The largest `max_bytes` a memory / file stream may have.
    pub memory_max_stream_bytes: Option<u64>,
    pub storage_max_stream_bytes: Option<u64>,
    /// Every stream must set `max_bytes`.
    pub max_bytes_required: bool,
    /// The byte limits the account itself configured (`max_mem` / `max_file`), as account
    /// info shows them; `max_memory` / `max_file` above may come from the server's instead.
    pub account_memory: Option<u64>,
    pub account_file: Option<u64>,
}

/// A limit as nats-server's config files give it: zero or less means "none configured".
pub fn configured(v: i64) -> Option<u64> {
    u64::try_from(v).ok().filter(|v| *v > 0)
}

impl StoreLimits {
    /// From a host's configured sizes, where zero or less means "no limit configured".
    pub fn from_config(max_memory: i64, max_file: i64) -> StoreLimits {
        StoreLimits { max_memory: configured(max_memory), max_file: configured(max_file), ..StoreLimits::default() }
    }

    /// Account info's `limits`, with nats-server's -1 for "none".
    pub fn to_json(&self) -> Value {
        let n = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        json!({
            "max_memory": n(self.account_memory), "max_storage": n(self.account_file),
            "max_streams": n(self.max_streams), "max_consumers": n(self.max_consumers),
            "max_ack_pending": n(self.max_ack_pending),
            "memory_max_stream_bytes": n(self.memory_max_stream_bytes),
            "storage_max_stream_bytes": n(self.storage_max_stream_bytes),
            "max_bytes_required": self.max_bytes_required,
        })
    }

    /// nats-server's check of a stream's `max_bytes` against the account (create and update).
    fn check_stream_bytes(&self, config: &StreamConfig) -> Result<(), ApiError> {
        if self.max_bytes_required && config.max_bytes <= 0 {
            return Err(ApiError::STREAM_MAX_BYTES_REQUIRED);
        }
        let limit = match config.storage {
            StorageType::Memory => self.memory_max_stream_bytes,
            StorageType::File => self.storage_max_stream_bytes,
        };
        match limit {
            Some(limit) if u64::try_from(config.max_bytes).is_ok_and(|b| b > limit) => {
                Err(ApiError::STREAM_MAX_STREAM_BYTES_EXCEEDED)
            }
            _ => Ok(()),
        }
    }

    /// The account's part of a consumer's config, before the stream's defaults fill it in:
    /// `max_ack_pending` defaults to at most the account's limit and may not exceed it.
    pub(super) fn apply_to_consumer(&self, config: &mut ConsumerConfig, stream: &StreamConfig) -> Result<(), ApiError> {
        let Some(limit) = self.max_ack_pending.and_then(|l| i64::try_from(l).ok()) else { return Ok(()) };
        if config.max_ack_pending == 0 && config.ack_policy != AckPolicy::None {
            let stream_default = match stream.consumer_limits.max_ack_pending {
                l if l > 0 => l,
                _ => super::config::DEFAULT_MAX_ACK_PENDING,
            };
            config.max_ack_pending = stream_default.min(limit);
        }
        if config.max_ack_pending > limit {
            return Err(ApiError::consumer_max_ack_pending_excess(limit));
        }
        Ok(())
    }

    /// How many consumers a stream may have: its own `max_consumers`, or the account's when
    /// that is smaller or the stream has none.
    pub(super) fn consumers_allowed(&self, stream: &StreamConfig) -> Option<u64> {
        let own = u64::try_from(stream.max_consumers).ok().filter(|m| *m > 0);
        match (own, self.max_consumers) {
            (Some(o), Some(a)) => Some(o.min(a)),
            (o, a) => o.or(a),
        }
    }

    fn max(&self, storage: StorageType) -> Option<u64> {
        match storage {
            StorageType::Memory => self.max_memory,
            StorageType::File => self.max_file,
        }
    }
}

/// The create-time error for a reservation that does not fit.
fn exceeded(storage: StorageType) -> ApiError {
    match storage {
        StorageType::Memory => ApiError::MEMORY_RESOURCES_EXCEEDED,
        StorageType::File => ApiError::STORAGE_RESOURCES_EXCEEDED,
    }
}

impl JetStream {
    /// Sets the limits; streams already over them keep what they hold but take no more.
    pub fn set_limits(&mut self, limits: StoreLimits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> StoreLimits {
        self.limits
    }

    /// The sum of the `max_bytes` of the streams of one storage type.
    pub fn reserved(&self, storage: StorageType) -> u64 {
        self.streams
            .values()
            .map(|e| &e.stream.config)
            .filter(|c| c.storage == storage)
            .map(|c| u64::try_from(c.max_bytes).unwrap_or(0))
            .fold(0, u64::saturating_add)
    }

    /// Bytes held by the streams of one storage type.
    pub fn used(&self, storage: StorageType) -> u64 {
        self.streams
            .values()
            .filter(|e| e.stream.config.storage == storage)
            .map(|e| e.stream.bytes())
            .fold(0, u64::saturating_add)
    }

    /// May a stream with `config` be created? A stream without `max_bytes` reserves one
    /// byte for the check, as in nats-server (so a store whose reservations are full takes
    /// no new stream).
    pub(super) fn check_create(&self, config: &StreamConfig) -> Result<(), ApiError> {
        self.limits.check_stream_bytes(config)?;
        if self.limits.max_streams.is_some_and(|m| self.streams.len() as u64 >= m) {
            return Err(ApiError::MAX_STREAMS);
        }
        let max_consumers = u64::try_from(config.max_consumers).ok().filter(|m| *m > 0);
        if matches!((max_consumers, self.limits.max_consumers), (Some(c), Some(a)) if c > a) {
            return Err(ApiError::MAX_CONSUMERS);
        }
        let add = u64::try_from(config.max_bytes).ok().filter(|b| *b > 0).unwrap_or(1);
        self.check_reserve(config.storage, add)
    }

    /// May stream `old` change to `new`? Only growth of the reservation reserves more (from
    /// no `max_bytes`, all of the new one).
    pub(super) fn check_update(&self, old: &StreamConfig, new: &StreamConfig) -> Result<(), ApiError> {
        self.limits.check_stream_bytes(new)?;
        let reservation = |c: &StreamConfig| u64::try_from(c.max_bytes).unwrap_or(0);
        self.check_reserve(new.storage, reservation(new).saturating_sub(reservation(old)))
    }

    fn check_reserve(&self, storage: StorageType, add: u64) -> Result<(), ApiError> {
        match self.limits.max(storage) {
            Some(max) if self.reserved(storage).saturating_add(add) > max => Err(exceeded(storage)),
            _ => Ok(()),
        }
    }

    /// May one more message go into a stream of this storage type?
    pub(super) fn check_room(&self, storage: StorageType) -> Result<(), ApiError> {
        match self.limits.max(storage) {
            Some(max) if self.used(storage) > max => Err(ApiError::INSUFFICIENT_RESOURCES),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jetstream::store::MemStorage;
    use alloc::boxed::Box;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;
    use serde_json::{json, Value};

    const T0: u64 = 1_800_000_000_000_000_000;
    const MB: i64 = 1 << 20;

    fn engine() -> JetStream {
        let mut js = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 1).0;
        js.set_limits(StoreLimits::from_config(MB, MB));
        js
    }

    fn no_one(_: &[u8]) -> bool {
        false
    }

    /// Sends one message with a reply subject and returns the JSON answered on it.
    fn ask(js: &mut JetStream, subject: &str, body: &[u8]) -> Value {
        js.handle_msg(T0, subject.as_bytes(), Some(b"_INBOX.r"), None, body, &no_one);
        let out: Vec<_> = js.take_outbound().into_iter().filter(|o| &o.route[..] == b"_INBOX.r").collect();
        assert_eq!(out.len(), 1, "one reply to {subject}");
        serde_json::from_slice(&out[0].payload).unwrap()
    }

    fn create(js: &mut JetStream, name: &str, storage: &str, max_bytes: i64) -> Value {
        let body =
            json!({"name": name, "subjects": [String::from(name) + ".>"], "storage": storage, "max_bytes": max_bytes});
        ask(js, &(String::from("$JS.API.STREAM.CREATE.") + name), body.to_string().as_bytes())
    }

    fn err_code(v: &Value) -> Option<u64> {
        v["error"]["err_code"].as_u64()
    }

    #[test]
    fn a_reservation_over_the_limit_is_refused_with_the_store_types_error() {
        let mut js = engine();
        let v = create(&mut js, "M", "memory", 2 * MB);
        assert_eq!((v["error"]["code"].as_u64(), err_code(&v)), (Some(500), Some(10028)), "{v}");
        assert_eq!(v["error"]["description"], "insufficient memory resources available");
        let v = create(&mut js, "F", "file", 2 * MB);
        assert_eq!(err_code(&v), Some(10047), "{v}");
        assert_eq!(v["error"]["description"], "insufficient storage resources available");
        assert_eq!(js.stream_count(), 0);
    }

    #[test]
    fn reservations_add_up_and_are_returned_by_a_delete() {
        let mut js = engine();
        assert_eq!(err_code(&create(&mut js, "A", "memory", MB - 1)), None);
        // one byte left: a stream without max_bytes still needs it, then none is left
        assert_eq!(err_code(&create(&mut js, "B", "memory", -1)), None);
        assert_eq!(err_code(&create(&mut js, "C", "memory", 2)), Some(10028));
        assert_eq!(err_code(&create(&mut js, "D", "memory", 1)), None);
        assert_eq!(err_code(&create(&mut js, "E", "memory", -1)), Some(10028));
        // the other store type is counted apart
        assert_eq!(err_code(&create(&mut js, "F", "file", MB)), None);
        let info = ask(&mut js, "$JS.API.INFO", b"");
        assert_eq!((info["reserved_memory"].as_i64(), info["reserved_storage"].as_i64()), (Some(MB), Some(MB)));
        assert_eq!(ask(&mut js, "$JS.API.STREAM.DELETE.A", b"")["success"], true);
        assert_eq!(err_code(&create(&mut js, "E", "memory", -1)), None);
    }

    #[test]
    fn an_update_may_only_grow_max_bytes_into_free_room() {
        let mut js = engine();
        assert_eq!(err_code(&create(&mut js, "A", "memory", MB / 2)), None);
        let update = |max: i64| json!({"name": "A", "subjects": ["A.>"], "storage": "memory", "max_bytes": max});
        let v = ask(&mut js, "$JS.API.STREAM.UPDATE.A", update(MB + 1).to_string().as_bytes());
        assert_eq!(err_code(&v), Some(10028), "{v}");
        let v = ask(&mut js, "$JS.API.STREAM.UPDATE.A", update(MB).to_string().as_bytes());
        assert_eq!(err_code(&v), None, "{v}");
        assert_eq!(js.stats().reserved_memory, MB as u64);
        let v = ask(&mut js, "$JS.API.STREAM.UPDATE.A", update(10).to_string().as_bytes());
        assert_eq!(err_code(&v), None, "{v}");
        // from no max_bytes to one that exactly fills the store (nats-server 2.14 agrees)
        assert_eq!(err_code(&create(&mut js, "B", "memory", -1)), None);
        let b = |max: i64| json!({"name": "B", "subjects": ["B.>"], "storage": "memory", "max_bytes": max});
        let v = ask(&mut js, "$JS.API.STREAM.UPDATE.B", b(MB - 10).to_string().as_bytes());
        assert_eq!(err_code(&v), None, "{v}");
        let v = ask(&mut js, "$JS.API.STREAM.UPDATE.B", b(MB - 9).to_string().as_bytes());
        assert_eq!(err_code(&v), Some(10028), "{v}");
    }

    #[test]
    fn the_publish_after_the_store_is_over_its_limit_is_refused_and_not_stored() {
        let mut js = engine();
        assert_eq!(err_code(&create(&mut js, "M", "memory", -1)), None);
        let payload = alloc::vec![b'x'; 100_000];
        let mut acked = 0;
        let refusal = loop {
            let v = ask(&mut js, "M.a", &payload);
            if v.get("error").is_some() {
                break v;
            }
            assert_eq!(v["seq"].as_u64(), Some(acked + 1), "{v}");
            acked += 1;
            assert!(acked < 20, "never refused");
        };
        assert_eq!(refusal["error"], json!({"code": 503, "err_code": 10023, "description": "insufficient resources"}));
        assert_eq!((refusal["stream"].as_str(), refusal["seq"].as_u64()), (Some("M"), Some(0)));
        // the message that crossed the limit was stored, as nats-server does; none after it
        let (used, max) = (js.used(StorageType::Memory), MB as u64);
        assert!(used > max && used - max < 100_100, "used {used}");
        assert_eq!(js.stream_state("M").unwrap().messages, acked);
        // the in-process publish gets the same answer
        let e = js.publish(T0, b"M.b", None, b"y", &no_one).unwrap_err();
        assert_eq!(e, ApiError::INSUFFICIENT_RESOURCES);
        assert_eq!(js.stream_state("M").unwrap().messages, acked);
        // room made by a purge is room again
        assert_eq!(ask(&mut js, "$JS.API.STREAM.PURGE.M", b"")["success"], true);
        assert!(js.publish(T0, b"M.b", None, b"y", &no_one).is_ok());
    }

    #[test]
    fn without_limits_nothing_is_refused() {
        let mut js = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 1).0;
        assert_eq!(StoreLimits::from_config(0, -1), StoreLimits::default());
        assert_eq!(err_code(&create(&mut js, "M", "memory", 4 * MB)), None);
        let payload = alloc::vec![b'x'; 1 << 20];
        for _ in 0..3 {
            assert!(js.publish(T0, b"M.a", None, &payload, &no_one).is_ok());
        }
    }

    /// An account's `jetstream { max_bytes_required, store_max_stream_bytes, max_streams,
    /// max_consumers, max_ack_pending }` as nats-server 2.14 applies them (nats.py's
    /// `test_account_limits`), and account info showing them.
    #[test]
    fn account_limits_bound_streams_and_consumers() {
        let mut js = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 1).0;
        js.set_limits(StoreLimits {
            max_streams: Some(2),
            max_consumers: Some(1),
            max_ack_pending: Some(100),
            storage_max_stream_bytes: Some(4096),
            max_bytes_required: true,
            account_file: Some(32 << 20),
            ..StoreLimits::from_config(MB, 32 * MB)
        });
        let v = create(&mut js, "A", "file", 0);
        assert_eq!(err_code(&v), Some(10113), "{v}");
        assert_eq!(v["error"]["description"], "account requires a stream config to have max bytes set");
        let v = create(&mut js, "A", "file", 65536);
        assert_eq!(err_code(&v), Some(10122), "{v}");
        assert!(create(&mut js, "A", "file", 128)["error"].is_null());
        assert!(create(&mut js, "B", "file", 128)["error"].is_null());
        assert_eq!(err_code(&create(&mut js, "C", "file", 128)), Some(10027));
        let consumer = |name: &str, extra: Value| {
            let mut config = json!({"durable_name": name, "ack_policy": "explicit"});
            if let (Value::Object(c), Value::Object(e)) = (&mut config, extra) {
                c.extend(e);
            }
            json!({"stream_name": "A", "config": config}).to_string()
        };
        let v =
            ask(&mut js, "$JS.API.CONSUMER.CREATE.A.c1", consumer("c1", json!({"max_ack_pending": 101})).as_bytes());
        assert_eq!(err_code(&v), Some(10121), "{v}");
        assert_eq!(v["error"]["description"], "consumer max ack pending exceeds system limit of 100");
        let v = ask(&mut js, "$JS.API.CONSUMER.CREATE.A.c1", consumer("c1", json!({})).as_bytes());
        assert_eq!(v["config"]["max_ack_pending"], 100, "{v}");
        let v = ask(&mut js, "$JS.API.CONSUMER.CREATE.A.c2", consumer("c2", json!({})).as_bytes());
        assert_eq!(err_code(&v), Some(10026), "{v}");
        let info = ask(&mut js, "$JS.API.INFO", b"");
        let limits = &info["limits"];
        assert_eq!((limits["max_memory"].as_i64(), limits["max_storage"].as_i64()), (Some(-1), Some(32 << 20)));
        assert_eq!((limits["max_streams"].as_i64(), limits["max_bytes_required"].as_bool()), (Some(2), Some(true)));
    }
}
