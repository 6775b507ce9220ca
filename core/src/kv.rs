//! Key-value buckets, as the NATS clients define them over streams (ADR-8, ADR-48): a bucket
//! `b` is stream `KV_b` on `$KV.b.>`, a key is a subject token path, a revision is a stream
//! sequence, deletes and purges are marker messages with a `KV-Operation` header.
//!
//! Everything here works on the in-process [`JetStream`] engine, so the browser runtime has
//! first-class KV without a network round trip, with the same rules the clients apply against a
//! server: key validation, compare-and-set through `Nats-Expected-Last-Subject-Sequence`,
//! create-after-delete, history, per-key TTL.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

use crate::jetstream::config::{Discard, StorageType, StreamConfig};
use crate::jetstream::errors::ApiError;
use crate::jetstream::store::StoredMsg;
use crate::jetstream::{Interest, JetStream};
use crate::proto::header_value;

/// Longest history a bucket may keep (nats.go's `KeyValueMaxHistory`).
pub const MAX_HISTORY: i64 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvError {
    /// Bucket names are `[a-zA-Z0-9_-]+`.
    InvalidBucket,
    /// Keys are `[-/_=.a-zA-Z0-9]+`, without leading/trailing `.` or `..`.
    InvalidKey,
    BucketNotFound,
    /// `create` on a key that holds a value; carries its revision.
    KeyExists(u64),
    /// `update` with a stale revision; carries the current one.
    WrongLastRevision(u64),
    /// History outside 1..=64.
    InvalidHistory,
    /// Anything else the stream refused.
    Api(ApiError),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::InvalidBucket => f.write_str("invalid bucket name"),
            KvError::InvalidKey => f.write_str("invalid key"),
            KvError::BucketNotFound => f.write_str("bucket not found"),
            KvError::KeyExists(r) => write!(f, "key exists (revision {r})"),
            KvError::WrongLastRevision(r) => write!(f, "wrong last sequence: {r}"),
            KvError::InvalidHistory => f.write_str("history must be between 1 and 64"),
            KvError::Api(e) => f.write_str(&e.description),
        }
    }
}

impl From<ApiError> for KvError {
    fn from(e: ApiError) -> Self {
        KvError::Api(e)
    }
}

pub fn valid_bucket(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// nats.go's `keyValid`: `[-/_=.a-zA-Z0-9]+`, no leading or trailing dot, no empty token.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'))
}

/// Keys for watching and listing: the key charset plus `*` tokens and a trailing `>`.
pub fn valid_watch_key(key: &str) -> bool {
    if key == ">" {
        return true;
    }
    let toks: Vec<&str> = key.split('.').collect();
    toks.iter()
        .enumerate()
        .all(|(i, t)| *t == "*" || (*t == ">" && i + 1 == toks.len()) || (!t.is_empty() && valid_key(t)))
}

pub fn stream_name(bucket: &str) -> String {
    format!("KV_{bucket}")
}

pub fn key_subject(bucket: &str, key: &str) -> String {
    format!("$KV.{bucket}.{key}")
}

/// How a bucket is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketConfig {
    pub bucket: String,
    pub description: Option<String>,
    /// Values kept per key, 1..=64.
    pub history: i64,
    /// Bucket TTL in ns (`max_age`); 0 = none.
    pub ttl: u64,
    pub max_value_size: i64,
    pub max_bytes: i64,
    pub storage: StorageType,
    /// ADR-48 limit markers: how long the marker left by an expired key lives (ns); 0 = none.
    pub limit_marker_ttl: u64,
}

impl BucketConfig {
    pub fn new(bucket: &str) -> BucketConfig {
        BucketConfig {
            bucket: bucket.into(),
            description: None,
            history: 1,
            ttl: 0,
            max_value_size: -1,
            max_bytes: -1,
            storage: StorageType::File,
            limit_marker_ttl: 0,
        }
    }

    /// The backing stream, as nats.go builds it.
    pub fn stream_config(&self) -> Result<StreamConfig, KvError> {
        if !valid_bucket(&self.bucket) {
            return Err(KvError::InvalidBucket);
        }
        if !(1..=MAX_HISTORY).contains(&self.history) {
            return Err(KvError::InvalidHistory);
        }
        let json = serde_json::json!({
            "name": stream_name(&self.bucket),
            "subjects": [format!("$KV.{}.>", self.bucket)],
            "max_msgs_per_subject": self.history,
            "max_age": self.ttl,
            "max_bytes": self.max_bytes,
            "max_msg_size": self.max_value_size,
            "allow_rollup_hdrs": true,
            "deny_delete": true,
            "allow_direct": true,
            "allow_msg_ttl": true,
        });
        let mut c = <StreamConfig as crate::json::FromJson>::from_json(&json).map_err(|_| KvError::InvalidBucket)?;
        c.description = self.description.clone();
        c.discard = Discard::New;
        c.storage = self.storage;
        if self.limit_marker_ttl > 0 {
            c.subject_delete_marker_ttl = Some(self.limit_marker_ttl as i64);
        }
        Ok(c)
    }
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Put,
    Delete,
    Purge,
}

impl Operation {
    /// Reads the operation from a stored message's headers (`KV-Operation`, or an ADR-48
    /// marker's `Nats-Marker-Reason`).
    pub fn of(headers: Option<&[u8]>) -> Operation {
        let Some(h) = headers else { return Operation::Put };
        match header_value(h, b"KV-Operation") {
            Some(b"DEL") => return Operation::Delete,
            Some(b"PURGE") => return Operation::Purge,
            _ => {}
        }
        match header_value(h, b"Nats-Marker-Reason") {
            Some(b"MaxAge") | Some(b"Purge") => Operation::Purge,
            Some(b"Remove") => Operation::Delete,
            _ => Operation::Put,
        }
    }
}

/// One revision of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub bucket: String,
    pub key: String,
    pub value: Bytes,
    pub revision: u64,
    /// Store time, ns since the epoch.
    pub created: u64,
    pub operation: Operation,
}

impl Entry {
    fn from_msg(bucket: &str, m: StoredMsg) -> Entry {
        let prefix = format!("$KV.{bucket}.");
        let key = String::from_utf8_lossy(&m.subject).strip_prefix(prefix.as_str()).unwrap_or_default().into();
        Entry {
            bucket: bucket.into(),
            key,
            operation: Operation::of(m.headers.as_deref()),
            value: m.payload,
            revision: m.seq,
            created: m.time,
        }
    }

    /// An entry from a message a watch consumer delivered (subject, headers and payload, with
    /// the stream sequence and time from its ack subject); `None` when the subject is not a
    /// key of `bucket` (a heartbeat or anything else that reached the watcher's inbox).
    pub fn from_delivery(
        bucket: &str,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: Bytes,
        revision: u64,
        created: u64,
    ) -> Option<Entry> {
        let key = subject.strip_prefix(b"$KV.")?.strip_prefix(bucket.as_bytes())?.strip_prefix(b".")?;
        let key = core::str::from_utf8(key).ok()?;
        Some(Entry {
            bucket: bucket.into(),
            key: key.into(),
            operation: Operation::of(headers),
            value: payload,
            revision,
            created,
        })
    }
}

/// What a watch hands out first (nats.js `KvWatchInclude`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchInclude {
    /// The latest entry of every matching key, then updates.
    #[default]
    LastValue,
    /// Every stored revision, then updates.
    AllHistory,
    /// Only what changes from now on.
    UpdatesOnly,
}

impl WatchInclude {
    /// nats.js spells these `""`, `"history"`, `"updates"`; the page also took `"last"`,
    /// `"all"` and `"new"`. Anything else is the default.
    pub fn parse(s: &str) -> WatchInclude {
        match s {
            "history" | "all" => WatchInclude::AllHistory,
            "updates" | "new" => WatchInclude::UpdatesOnly,
            _ => WatchInclude::LastValue,
        }
    }
}

/// A bucket on an in-process engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    name: String,
    stream: String,
}

fn no_interest(_: &[u8]) -> bool {
    false
}

impl Bucket {
    /// Binds to the bucket, creating it with `config` when it does not exist yet (what the
    /// page's `bus.kv(name, opts)` does).
    pub fn bind(js: &mut JetStream, now: u64, config: &BucketConfig) -> Result<Bucket, KvError> {
        match Bucket::open(js, &config.bucket) {
            Err(KvError::BucketNotFound) => Bucket::create_bucket(js, now, config),
            other => other,
        }
    }

    /// Creates the bucket (or binds to an identical existing one).
    pub fn create_bucket(js: &mut JetStream, now: u64, config: &BucketConfig) -> Result<Bucket, KvError> {
        js.add_stream(now, config.stream_config()?)?;
        Ok(Bucket { name: config.bucket.clone(), stream: stream_name(&config.bucket) })
    }

    /// Binds to an existing bucket.
    pub fn open(js: &JetStream, bucket: &str) -> Result<Bucket, KvError> {
        if !valid_bucket(bucket) {
            return Err(KvError::InvalidBucket);
        }
        let stream = stream_name(bucket);
        match js.stream_config(&stream) {
            Some(c) if c.max_msgs_per_subject >= 1 => Ok(Bucket { name: bucket.into(), stream }),
            _ => Err(KvError::BucketNotFound),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn subject(&self, key: &str) -> Result<String, KvError> {
        if !valid_key(key) {
            return Err(KvError::InvalidKey);
        }
        Ok(key_subject(&self.name, key))
    }

    fn publish(
        &self,
        js: &mut JetStream,
        now: u64,
        key: &str,
        headers: &[(&str, String)],
        value: &[u8],
        interest: &dyn Interest,
    ) -> Result<u64, KvError> {
        let subject = self.subject(key)?;
        let block = (!headers.is_empty()).then(|| {
            let mut h = crate::proto::Headers::new();
            for (k, v) in headers {
                h.append(k, v);
            }
            h.to_bytes()
        });
        match js.publish(now, subject.as_bytes(), block.as_deref(), value, interest) {
            Ok(ack) => Ok(ack.seq),
            Err(e) if e.err_code == 10071 => {
                let current = e.description.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                Err(KvError::WrongLastRevision(current))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a value; returns its revision.
    pub fn put(
        &self,
        js: &mut JetStream,
        now: u64,
        key: &str,
        value: &[u8],
        interest: &dyn Interest,
    ) -> Result<u64, KvError> {
        self.publish(js, now, key, &[], value, interest)
    }

    /// The latest value, `None` if the key never existed or its last operation was a delete
    /// or purge.
    pub fn get(&self, js: &mut JetStream, key: &str) -> Result<Option<Entry>, KvError> {
        let subject = self.subject(key)?;
        let m = js.last_msg(&self.stream, subject.as_bytes())?;
        Ok(m.map(|m| Entry::from_msg(&self.name, m)).filter(|e| e.operation == Operation::Put))
    }

    /// A given revision of a key (any operation), if it is still stored.
    pub fn get_revision(&self, js: &mut JetStream, key: &str, revision: u64) -> Result<Option<Entry>, KvError> {
        let subject = self.subject(key)?;
        let m = js.msg(&self.stream, revision)?;
        Ok(m.filter(|m| m.subject == subject.as_bytes()).map(|m| Entry::from_msg(&self.name, m)))
    }

    /// Stores a value only if the key has none (never set, or last deleted/purged); `ttl` is
    /// a per-key TTL in seconds.
    pub fn create(
        &self,
        js: &mut JetStream,
        now: u64,
        key: &str,
        value: &[u8],
        ttl: Option<u64>,
        interest: &dyn Interest,
    ) -> Result<u64, KvError> {
        let mut headers = alloc::vec![("Nats-Expected-Last-Subject-Sequence", String::from("0"))];
        if let Some(t) = ttl {
            headers.push(("Nats-TTL", format!("{t}")));
        }
        match self.publish(js, now, key, &headers, value, interest) {
            Err(KvError::WrongLastRevision(rev)) => {
                // The clients' rule: a key whose last operation was a delete or purge may be
                // created again, against the marker's revision.
                let subject = self.subject(key)?;
                let last = js.last_msg(&self.stream, subject.as_bytes())?;
                match last.map(|m| (m.seq, Operation::of(m.headers.as_deref()))) {
                    Some((seq, Operation::Delete | Operation::Purge)) => {
                        headers[0].1 = format!("{seq}");
                        self.publish(js, now, key, &headers, value, interest)
                    }
                    _ => Err(KvError::KeyExists(rev)),
                }
            }
            other => other,
        }
    }

    /// Stores a value only if the key's current revision is `last` (compare-and-set).
    pub fn update(
        &self,
        js: &mut JetStream,
        now: u64,
        key: &str,
        value: &[u8],
        last: u64,
        interest: &dyn Interest,
    ) -> Result<u64, KvError> {
        self.publish(js, now, key, &[("Nats-Expected-Last-Subject-Sequence", format!("{last}"))], value, interest)
    }

    /// Marks the key deleted (history kept).
    pub fn delete(&self, js: &mut JetStream, now: u64, key: &str, interest: &dyn Interest) -> Result<u64, KvError> {
        self.publish(js, now, key, &[("KV-Operation", "DEL".into())], b"", interest)
    }

    /// Removes every revision of the key, leaving a purge marker.
    pub fn purge(&self, js: &mut JetStream, now: u64, key: &str, interest: &dyn Interest) -> Result<u64, KvError> {
        self.publish(js, now, key, &[("KV-Operation", "PURGE".into()), ("Nats-Rollup", "sub".into())], b"", interest)
    }

    /// Every stored revision of the keys matching `filter` (a key, or a watch filter such as
    /// `>`), oldest first.
    pub fn history(&self, js: &mut JetStream, filter: &str) -> Result<Vec<Entry>, KvError> {
        if !valid_watch_key(filter) {
            return Err(KvError::InvalidKey);
        }
        let subject = key_subject(&self.name, filter);
        Ok(js
            .messages(&self.stream, subject.as_bytes(), false)?
            .into_iter()
            .map(|m| Entry::from_msg(&self.name, m))
            .collect())
    }

    /// Keys with a current value, optionally restricted by a watch filter (`a.*`, `a.>`).
    pub fn keys(&self, js: &mut JetStream, filter: Option<&str>) -> Result<Vec<String>, KvError> {
        let f = filter.unwrap_or(">");
        if !valid_watch_key(f) {
            return Err(KvError::InvalidKey);
        }
        let subject = key_subject(&self.name, f);
        Ok(js
            .messages(&self.stream, subject.as_bytes(), true)?
            .into_iter()
            .map(|m| Entry::from_msg(&self.name, m))
            .filter(|e| e.operation == Operation::Put)
            .map(|e| e.key)
            .collect())
    }

    /// The latest entry of every key matching `filter`, deletes included (a watch's initial
    /// values), oldest first.
    pub fn snapshot(&self, js: &mut JetStream, filter: &str) -> Result<Vec<Entry>, KvError> {
        if !valid_watch_key(filter) {
            return Err(KvError::InvalidKey);
        }
        let subject = key_subject(&self.name, filter);
        Ok(js
            .messages(&self.stream, subject.as_bytes(), true)?
            .into_iter()
            .map(|m| Entry::from_msg(&self.name, m))
            .collect())
    }

    /// Deletes the bucket.
    pub fn destroy(self, js: &mut JetStream) -> bool {
        js.remove_stream(&self.stream)
    }

    /// The push consumer (`CONSUMER.CREATE` body) that watches `filter`: no acks, initial
    /// values as `include` says. A watcher across a network also gets heartbeats and flow
    /// control, as the clients create it; an in-process watcher (`remote == false`) cannot
    /// miss a message, and nothing would answer a flow-control request, so it gets neither.
    /// The filter is checked as the clients check a watch key (`>` only last).
    pub fn watch_consumer(
        &self,
        filter: &str,
        deliver_subject: &str,
        include: WatchInclude,
        remote: bool,
    ) -> Result<serde_json::Value, KvError> {
        if !valid_watch_key(filter) {
            return Err(KvError::InvalidKey);
        }
        let policy = match include {
            WatchInclude::LastValue => "last_per_subject",
            WatchInclude::AllHistory => "all",
            WatchInclude::UpdatesOnly => "new",
        };
        let mut config = serde_json::json!({
            "deliver_policy": policy,
            "ack_policy": "none",
            "max_deliver": 1,
            "filter_subject": key_subject(&self.name, filter),
            "deliver_subject": deliver_subject,
            "mem_storage": true,
        });
        if remote {
            config["flow_control"] = true.into();
            config["idle_heartbeat"] = 5_000_000_000u64.into();
        }
        Ok(serde_json::json!({ "stream_name": self.stream, "config": config }))
    }

    /// The backing stream's name (`KV_<bucket>`).
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Keeps `no_interest` available for callers without a bus (tests, tools).
    pub fn no_interest() -> impl Interest {
        no_interest
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jetstream::store::MemStorage;
    use alloc::boxed::Box;

    const T0: u64 = 1_800_000_000_000_000_000;
    const SEC: u64 = 1_000_000_000;

    fn engine() -> JetStream {
        JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 1).0
    }

    #[test]
    fn names_and_keys() {
        assert!(valid_bucket("profiles_1-x"));
        assert!(!valid_bucket("a.b") && !valid_bucket(""));
        for ok in ["a", "a.b", "a/b=c_d-e", "x.y.z"] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in [".a", "a.", "a..b", "a b", "a*", "a>", ""] {
            assert!(!valid_key(bad), "{bad}");
        }
        assert!(valid_watch_key("a.*.c") && valid_watch_key("a.>") && valid_watch_key(">"));
        assert!(!valid_watch_key("a.>.b"));
    }

    #[test]
    fn watch_consumer_checks_the_filter() {
        let mut js = engine();
        let b = Bucket::bind(&mut js, T0, &BucketConfig::new("w")).unwrap();
        assert_eq!(Bucket::bind(&mut js, T0, &BucketConfig::new("w")).unwrap(), b, "bind opens an existing bucket");
        assert_eq!(b.watch_consumer("a.>.b", "_INBOX.1", WatchInclude::LastValue, false), Err(KvError::InvalidKey));
        let c = b.watch_consumer("a.>", "_INBOX.1", WatchInclude::parse("history"), false).unwrap();
        assert_eq!(c["config"]["deliver_policy"], "all");
        assert_eq!(c["config"]["filter_subject"], "$KV.w.a.>");
        assert!(c["config"].get("flow_control").is_none(), "in process: no flow control to answer");
        let remote = b.watch_consumer(">", "_INBOX.1", WatchInclude::UpdatesOnly, true).unwrap();
        assert_eq!(
            (remote["config"]["deliver_policy"].as_str(), remote["config"]["flow_control"].as_bool()),
            (Some("new"), Some(true))
        );
        let e =
            Entry::from_delivery("w", b"$KV.w.a.b", Some(b"NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"), Bytes::new(), 7, 9)
                .unwrap();
        assert_eq!((e.key.as_str(), e.operation, e.revision), ("a.b", Operation::Delete, 7));
        assert!(Entry::from_delivery("w", b"$KV.ww.a", None, Bytes::new(), 1, 1).is_none());
    }

    #[test]
    fn put_get_cas_create_delete_purge_history() {
        let mut js = engine();
        let i = Bucket::no_interest();
        let mut cfg = BucketConfig::new("p");
        cfg.history = 5;
        let b = Bucket::create_bucket(&mut js, T0, &cfg).unwrap();
        assert_eq!(b.put(&mut js, T0, "sue.color", b"blue", &i).unwrap(), 1);
        assert_eq!(b.put(&mut js, T0, "sue.color", b"green", &i).unwrap(), 2);
        assert_eq!(b.get(&mut js, "sue.color").unwrap().unwrap().value, Bytes::from_static(b"green"));
        assert_eq!(b.create(&mut js, T0, "bob", b"red", None, &i).unwrap(), 3);
        assert_eq!(b.create(&mut js, T0, "bob", b"red2", None, &i), Err(KvError::KeyExists(3)));
        assert_eq!(b.update(&mut js, T0, "sue.color", b"x", 1, &i), Err(KvError::WrongLastRevision(2)));
        assert_eq!(b.update(&mut js, T0, "sue.color", b"yellow", 2, &i).unwrap(), 4);
        assert_eq!(b.delete(&mut js, T0, "bob", &i).unwrap(), 5);
        assert_eq!(b.get(&mut js, "bob").unwrap(), None);
        assert_eq!(b.create(&mut js, T0, "bob", b"again", None, &i).unwrap(), 6, "create after delete");
        let h = b.history(&mut js, "bob").unwrap();
        assert_eq!(
            h.iter().map(|e| e.operation).collect::<Vec<_>>(),
            [Operation::Put, Operation::Delete, Operation::Put]
        );
        b.purge(&mut js, T0, "sue.color", &i).unwrap();
        assert_eq!(b.history(&mut js, "sue.color").unwrap().len(), 1, "purge keeps only its marker");
        assert_eq!(b.keys(&mut js, None).unwrap(), ["bob"]);
        assert_eq!(b.get(&mut js, "bad..key"), Err(KvError::InvalidKey));
        assert_eq!(Bucket::open(&js, "nope"), Err(KvError::BucketNotFound));
    }

    #[test]
    fn history_limit() {
        let mut js = engine();
        let i = Bucket::no_interest();
        let mut cfg = BucketConfig::new("h");
        cfg.history = 3;
        let b = Bucket::create_bucket(&mut js, T0, &cfg).unwrap();
        for n in 0..5 {
            b.put(&mut js, T0, "k", format!("{n}").as_bytes(), &i).unwrap();
        }
        let revs: Vec<u64> = b.history(&mut js, "k").unwrap().iter().map(|e| e.revision).collect();
        assert_eq!(revs, [3, 4, 5]);
    }

    #[test]
    fn bucket_ttl_and_per_key_ttl_with_markers() {
        let mut js = engine();
        let i = Bucket::no_interest();
        let mut cfg = BucketConfig::new("t");
        cfg.ttl = 60 * SEC;
        cfg.limit_marker_ttl = 5 * SEC;
        let b = Bucket::create_bucket(&mut js, T0, &cfg).unwrap();
        b.create(&mut js, T0, "temp", b"v", Some(2), &i).unwrap();
        b.put(&mut js, T0, "keep", b"v", &i).unwrap();
        js.handle_timeout(T0 + SEC, &i);
        assert!(b.get(&mut js, "temp").unwrap().is_some());
        js.handle_timeout(T0 + 2 * SEC, &i);
        assert_eq!(b.get(&mut js, "temp").unwrap(), None, "per-key TTL");
        let marker = b.history(&mut js, "temp").unwrap();
        assert_eq!(marker.len(), 1);
        assert_eq!(marker[0].operation, Operation::Purge, "an expired key leaves a MaxAge marker");
        js.handle_timeout(T0 + 7 * SEC, &i);
        assert!(b.history(&mut js, "temp").unwrap().is_empty(), "the marker expires too");
        js.handle_timeout(T0 + 60 * SEC, &i);
        assert_eq!(b.get(&mut js, "keep").unwrap(), None, "bucket TTL");
    }
}
