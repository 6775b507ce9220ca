//! Object stores, as the NATS clients define them over streams (ADR-20): bucket `b` is
//! stream `OBJ_b`; an object's bytes are chunk messages on `$O.b.C.<nuid>` and its
//! description is one JSON message on `$O.b.M.<base64url(name)>`, rolled up so only the newest
//! survives. Uploads and downloads are streamed chunk by chunk: an object is never held whole
//! in memory, and its SHA-256 digest is checked on the way out.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use core::fmt;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::base64;
use crate::jetstream::config::{Discard, StorageType, StreamConfig};
use crate::jetstream::errors::ApiError;
use crate::jetstream::time::rfc3339;
use crate::jetstream::{Interest, JetStream};
use crate::json::typed::{self, Fields, FromJson};

/// Default chunk size: 128 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjError {
    InvalidBucket,
    InvalidName,
    BucketNotFound,
    NotFound,
    /// The chunks read back do not hash to the recorded digest (or sum to the size).
    DigestMismatch,
    /// A link may not point at a link or a deleted object, nor replace a live object.
    InvalidLink,
    /// A stored description that does not parse.
    BadMeta,
    Api(ApiError),
}

impl fmt::Display for ObjError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjError::InvalidBucket => f.write_str("invalid bucket name"),
            ObjError::InvalidName => f.write_str("invalid object name"),
            ObjError::BucketNotFound => f.write_str("bucket not found"),
            ObjError::NotFound => f.write_str("object not found"),
            ObjError::DigestMismatch => f.write_str("digest does not match"),
            ObjError::InvalidLink => f.write_str("invalid link"),
            ObjError::BadMeta => f.write_str("object metadata does not parse"),
            ObjError::Api(e) => f.write_str(&e.description),
        }
    }
}

impl From<ApiError> for ObjError {
    fn from(e: ApiError) -> Self {
        ObjError::Api(e)
    }
}

pub fn stream_name(bucket: &str) -> String {
    format!("OBJ_{bucket}")
}

pub fn chunk_subject(bucket: &str, nuid: &str) -> String {
    format!("$O.{bucket}.C.{nuid}")
}

/// `$O.<bucket>.M.<base64url(name) with padding>`, as every client encodes it.
pub fn meta_subject(bucket: &str, name: &str) -> String {
    format!("$O.{bucket}.M.{}", base64::encode_url(name.as_bytes()))
}

/// `SHA-256=<base64url(digest)>`.
pub fn digest_string(hash: &[u8]) -> String {
    format!("SHA-256={}", base64::encode_url(hash))
}

/// A 22-character id in the style of a NATS nuid, for chunk subjects.
pub fn new_nuid(rng: &mut fastrand::Rng) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..22).map(|_| ALPHABET[rng.usize(..ALPHABET.len())] as char).collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Link {
    pub bucket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_chunk_size: Option<u64>,
}

/// An object's description (the meta message body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<ObjectOptions>,
    pub bucket: String,
    pub nuid: String,
    pub size: u64,
    pub mtime: String,
    pub chunks: u64,
    pub digest: String,
    pub deleted: bool,
}

impl FromJson for Link {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct Link")?;
        Ok(Link { bucket: f.need("bucket")?, name: f.get("name", None)? })
    }
}

impl FromJson for ObjectOptions {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct ObjectOptions")?;
        Ok(ObjectOptions { link: f.get("link", None)?, max_chunk_size: f.get("max_chunk_size", None)? })
    }
}

impl FromJson for ObjectInfo {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct ObjectInfo")?;
        Ok(ObjectInfo {
            name: f.need("name")?,
            description: f.get("description", None)?,
            headers: f.get("headers", None)?,
            metadata: f.get("metadata", None)?,
            options: f.get("options", None)?,
            bucket: f.get("bucket", String::new())?,
            nuid: f.get("nuid", String::new())?,
            size: f.get("size", 0)?,
            mtime: f.get("mtime", String::new())?,
            chunks: f.get("chunks", 0)?,
            digest: f.get("digest", String::new())?,
            deleted: f.get("deleted", false)?,
        })
    }
}

impl ObjectInfo {
    pub fn link(&self) -> Option<&Link> {
        self.options.as_ref().and_then(|o| o.link.as_ref())
    }
}

/// How an object store is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub bucket: String,
    pub description: Option<String>,
    /// ns; 0 = none.
    pub ttl: u64,
    pub max_bytes: i64,
    pub storage: StorageType,
}

impl StoreConfig {
    pub fn new(bucket: &str) -> StoreConfig {
        StoreConfig { bucket: bucket.into(), description: None, ttl: 0, max_bytes: -1, storage: StorageType::File }
    }

    /// The backing stream, as ADR-20 describes it.
    pub fn stream_config(&self) -> Result<StreamConfig, ObjError> {
        if !crate::kv::valid_bucket(&self.bucket) {
            return Err(ObjError::InvalidBucket);
        }
        let json = serde_json::json!({
            "name": stream_name(&self.bucket),
            "subjects": [format!("$O.{}.C.>", self.bucket), format!("$O.{}.M.>", self.bucket)],
            "max_age": self.ttl,
            "max_bytes": self.max_bytes,
            "allow_rollup_hdrs": true,
            "allow_direct": true,
        });
        let mut c = <StreamConfig as crate::json::FromJson>::from_json(&json).map_err(|_| ObjError::InvalidBucket)?;
        c.description = self.description.clone();
        c.discard = Discard::New;
        c.storage = self.storage;
        Ok(c)
    }
}

const ROLLUP: &[u8] = b"NATS/1.0\r\nNats-Rollup: sub\r\n\r\n";

/// An object store on an in-process engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStore {
    bucket: String,
    stream: String,
}

/// What an object store's `status()` reports (nats.js `ObjectStoreStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreStatus {
    pub bucket: String,
    pub description: String,
    /// ns; 0 = none.
    pub ttl: u64,
    pub storage: StorageType,
    pub sealed: bool,
    /// Bytes stored, chunks and descriptions together.
    pub size: u64,
}

/// The object stores on an engine: the streams named `OBJ_<bucket>`.
pub fn store_names(js: &JetStream) -> Vec<String> {
    js.stream_name_list().filter_map(|s| s.strip_prefix("OBJ_")).map(String::from).collect()
}

impl ObjectStore {
    /// Binds to the store, creating it with `config` when it does not exist yet.
    pub fn bind(js: &mut JetStream, now: u64, config: &StoreConfig) -> Result<ObjectStore, ObjError> {
        match ObjectStore::open(js, &config.bucket) {
            Err(ObjError::BucketNotFound) => ObjectStore::create_store(js, now, config),
            other => other,
        }
    }

    pub fn create_store(js: &mut JetStream, now: u64, config: &StoreConfig) -> Result<ObjectStore, ObjError> {
        js.add_stream(now, config.stream_config()?)?;
        Ok(ObjectStore { bucket: config.bucket.clone(), stream: stream_name(&config.bucket) })
    }

    pub fn open(js: &JetStream, bucket: &str) -> Result<ObjectStore, ObjError> {
        if !crate::kv::valid_bucket(bucket) {
            return Err(ObjError::InvalidBucket);
        }
        let stream = stream_name(bucket);
        js.stream_config(&stream).ok_or(ObjError::BucketNotFound)?;
        Ok(ObjectStore { bucket: bucket.into(), stream })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The stored description of `name`, deleted ones included (what nats.js's `info`
    /// answers: a deleted object's description says `deleted`).
    pub fn meta(&self, js: &mut JetStream, name: &str) -> Result<Option<ObjectInfo>, ObjError> {
        let Some(m) = js.last_msg(&self.stream, meta_subject(&self.bucket, name).as_bytes())? else { return Ok(None) };
        typed::from_slice(&m.payload).map(Some).map_err(|_| ObjError::BadMeta)
    }

    /// The description of a live object.
    pub fn info(&self, js: &mut JetStream, name: &str) -> Result<ObjectInfo, ObjError> {
        match self.meta(js, name)? {
            Some(i) if !i.deleted => Ok(i),
            _ => Err(ObjError::NotFound),
        }
    }

    pub fn status(&self, js: &JetStream) -> Result<StoreStatus, ObjError> {
        let config = js.stream_config(&self.stream).ok_or(ObjError::BucketNotFound)?;
        let state = js.stream_state(&self.stream).ok_or(ObjError::BucketNotFound)?;
        Ok(StoreStatus {
            bucket: self.bucket.clone(),
            description: config.description.clone().unwrap_or_default(),
            ttl: u64::try_from(config.max_age).unwrap_or(0),
            storage: config.storage,
            sealed: config.sealed,
            size: state.bytes,
        })
    }

    /// Starts a streamed upload; `nuid` names its chunk subject (use [`new_nuid`]).
    pub fn put_begin(&self, name: &str, nuid: &str, description: Option<String>) -> Result<Upload, ObjError> {
        if name.is_empty() {
            return Err(ObjError::InvalidName);
        }
        Ok(Upload {
            store: self.clone(),
            info: ObjectInfo {
                name: name.into(),
                description,
                bucket: self.bucket.clone(),
                nuid: nuid.into(),
                options: Some(ObjectOptions { link: None, max_chunk_size: Some(DEFAULT_CHUNK_SIZE as u64) }),
                ..Default::default()
            },
            buf: BytesMut::with_capacity(DEFAULT_CHUNK_SIZE),
            hasher: Sha256::new(),
        })
    }

    /// Stores a whole object at once (small objects; large ones go through [`Upload`]).
    pub fn put(
        &self,
        js: &mut JetStream,
        now: u64,
        name: &str,
        nuid: &str,
        data: &[u8],
        interest: &dyn Interest,
    ) -> Result<ObjectInfo, ObjError> {
        let mut up = self.put_begin(name, nuid, None)?;
        up.write(js, now, data, interest)?;
        up.finish(js, now, interest)
    }

    /// Opens an object for a streamed read, following a link to another object.
    pub fn get(&self, js: &mut JetStream, name: &str) -> Result<Download, ObjError> {
        let info = self.info(js, name)?;
        let (store, info) = match info.link() {
            Some(Link { bucket, name: Some(target) }) => {
                let other = ObjectStore::open(js, bucket)?;
                let target = other.info(js, target)?;
                (other, target)
            }
            Some(Link { name: None, .. }) => return Err(ObjError::InvalidLink),
            None => (self.clone(), info),
        };
        Ok(Download {
            subject: chunk_subject(&store.bucket, &info.nuid),
            stream: store.stream,
            next_seq: 0,
            read: 0,
            chunks: 0,
            hasher: Sha256::new(),
            info,
            done: false,
        })
    }

    /// Live objects, by name.
    pub fn list(&self, js: &mut JetStream) -> Result<Vec<ObjectInfo>, ObjError> {
        let metas = js.messages(&self.stream, format!("$O.{}.M.>", self.bucket).as_bytes(), true)?;
        let mut out: Vec<ObjectInfo> = metas
            .iter()
            .filter_map(|m| typed::from_slice::<ObjectInfo>(&m.payload).ok())
            .filter(|i| !i.deleted)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Marks an object deleted and purges its chunks.
    pub fn delete(&self, js: &mut JetStream, now: u64, name: &str, interest: &dyn Interest) -> Result<(), ObjError> {
        let mut info = self.info(js, name)?;
        let old_nuid = core::mem::take(&mut info.nuid);
        info.deleted = true;
        info.size = 0;
        info.chunks = 0;
        info.digest = String::new();
        info.mtime = rfc3339(now);
        self.write_meta(js, now, &info, interest)?;
        if !old_nuid.is_empty() {
            js.purge(now, &self.stream, Some(&chunk_subject(&self.bucket, &old_nuid)), None, interest)?;
        }
        Ok(())
    }

    /// Makes `name` a link to object `target` (which must be live and not itself a link).
    pub fn link(
        &self,
        js: &mut JetStream,
        now: u64,
        name: &str,
        target: &ObjectInfo,
        interest: &dyn Interest,
    ) -> Result<ObjectInfo, ObjError> {
        if target.deleted || target.link().is_some() {
            return Err(ObjError::InvalidLink);
        }
        self.write_link(
            js,
            now,
            name,
            Link { bucket: target.bucket.clone(), name: Some(target.name.clone()) },
            interest,
        )
    }

    /// Stores `name` as a link entry; an existing live object (not a link) is never replaced.
    fn write_link(
        &self,
        js: &mut JetStream,
        now: u64,
        name: &str,
        link: Link,
        interest: &dyn Interest,
    ) -> Result<ObjectInfo, ObjError> {
        if let Some(existing) = self.meta(js, name)? {
            if !existing.deleted && existing.link().is_none() {
                return Err(ObjError::InvalidLink);
            }
        }
        let info = ObjectInfo {
            name: name.into(),
            bucket: self.bucket.clone(),
            mtime: rfc3339(now),
            options: Some(ObjectOptions { link: Some(link), max_chunk_size: None }),
            ..Default::default()
        };
        self.write_meta(js, now, &info, interest)?;
        Ok(info)
    }

    /// Makes `name` a link to the whole store `target` (nats.js `linkStore`); reading it as
    /// an object is an [`ObjError::InvalidLink`].
    pub fn link_store(
        &self,
        js: &mut JetStream,
        now: u64,
        name: &str,
        target: &ObjectStore,
        interest: &dyn Interest,
    ) -> Result<ObjectInfo, ObjError> {
        if name.is_empty() {
            return Err(ObjError::InvalidName);
        }
        self.write_link(js, now, name, Link { bucket: target.bucket.clone(), name: None }, interest)
    }

    /// The push consumer (`CONSUMER.CREATE` body) that watches the store's descriptions:
    /// with `include_history` the current description of every object first, then changes;
    /// otherwise only changes (what nats.js does). An in-process watcher (`remote == false`)
    /// gets no heartbeats or flow control, as for KV watches.
    pub fn watch_consumer(&self, deliver_subject: &str, include_history: bool, remote: bool) -> serde_json::Value {
        let mut config = serde_json::json!({
            "deliver_policy": if include_history { "last_per_subject" } else { "new" },
            "ack_policy": "none",
            "max_deliver": 1,
            "filter_subject": format!("$O.{}.M.>", self.bucket),
            "deliver_subject": deliver_subject,
            "mem_storage": true,
        });
        if remote {
            config["flow_control"] = true.into();
            config["idle_heartbeat"] = 5_000_000_000u64.into();
        }
        serde_json::json!({ "stream_name": self.stream, "config": config })
    }

    fn write_meta(
        &self,
        js: &mut JetStream,
        now: u64,
        info: &ObjectInfo,
        interest: &dyn Interest,
    ) -> Result<(), ObjError> {
        let body = serde_json::to_vec(info).map_err(|_| ObjError::BadMeta)?;
        js.publish(now, meta_subject(&self.bucket, &info.name).as_bytes(), Some(ROLLUP), &body, interest)?;
        Ok(())
    }

    pub fn destroy(self, js: &mut JetStream) -> bool {
        js.remove_stream(&self.stream)
    }
}

/// A streamed upload: [`Upload::write`] as data arrives, then [`Upload::finish`]. Only one
/// chunk is ever buffered.
pub struct Upload {
    store: ObjectStore,
    info: ObjectInfo,
    buf: BytesMut,
    hasher: Sha256,
}

impl Upload {
    pub fn write(
        &mut self,
        js: &mut JetStream,
        now: u64,
        mut data: &[u8],
        interest: &dyn Interest,
    ) -> Result<(), ObjError> {
        while !data.is_empty() {
            let room = DEFAULT_CHUNK_SIZE - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == DEFAULT_CHUNK_SIZE {
                self.flush_chunk(js, now, interest)?;
            }
        }
        Ok(())
    }

    fn flush_chunk(&mut self, js: &mut JetStream, now: u64, interest: &dyn Interest) -> Result<(), ObjError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        let subject = chunk_subject(&self.store.bucket, &self.info.nuid);
        js.publish(now, subject.as_bytes(), None, &chunk, interest)?;
        self.hasher.update(&chunk);
        self.info.size += chunk.len() as u64;
        self.info.chunks += 1;
        Ok(())
    }

    /// Gives the upload up (its source failed): the chunks written so far are purged, and
    /// the object it would have replaced stays as it was.
    pub fn abort(self, js: &mut JetStream, now: u64, interest: &dyn Interest) -> Result<(), ObjError> {
        if self.info.chunks > 0 {
            js.purge(
                now,
                &self.store.stream,
                Some(&chunk_subject(&self.store.bucket, &self.info.nuid)),
                None,
                interest,
            )?;
        }
        Ok(())
    }

    /// Writes the last chunk and the description, then purges the chunks of the object this
    /// one replaces.
    pub fn finish(mut self, js: &mut JetStream, now: u64, interest: &dyn Interest) -> Result<ObjectInfo, ObjError> {
        self.flush_chunk(js, now, interest)?;
        let previous = self.store.meta(js, &self.info.name)?;
        self.info.digest = digest_string(&self.hasher.finalize());
        self.info.mtime = rfc3339(now);
        self.store.write_meta(js, now, &self.info, interest)?;
        if let Some(old) = previous {
            if !old.nuid.is_empty() && old.nuid != self.info.nuid {
                js.purge(now, &self.store.stream, Some(&chunk_subject(&self.store.bucket, &old.nuid)), None, interest)?;
            }
        }
        Ok(self.info)
    }
}

/// A streamed download: call [`Download::next_chunk`] until it returns `None`; the digest
/// and size are checked when the last chunk has been read.
pub struct Download {
    stream: String,
    subject: String,
    next_seq: u64,
    read: u64,
    chunks: u64,
    hasher: Sha256,
    pub info: ObjectInfo,
    done: bool,
}

impl Download {
    pub fn next_chunk(&mut self, js: &mut JetStream) -> Option<Result<Bytes, ObjError>> {
        if self.done {
            return None;
        }
        if self.chunks < self.info.chunks {
            match js.next_msg(&self.stream, self.subject.as_bytes(), self.next_seq) {
                Ok(Some(m)) => {
                    self.next_seq = m.seq + 1;
                    self.read += m.payload.len() as u64;
                    self.chunks += 1;
                    self.hasher.update(&m.payload);
                    return Some(Ok(m.payload));
                }
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
        self.done = true;
        let digest = digest_string(&core::mem::take(&mut self.hasher).finalize());
        if self.read != self.info.size || self.chunks != self.info.chunks || digest != self.info.digest {
            return Some(Err(ObjError::DigestMismatch));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jetstream::store::MemStorage;
    use alloc::boxed::Box;

    const T0: u64 = 1_800_000_000_000_000_000;

    fn setup() -> (JetStream, ObjectStore) {
        let mut js = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 1).0;
        let os = ObjectStore::create_store(&mut js, T0, &StoreConfig::new("files")).unwrap();
        (js, os)
    }

    fn read_all(js: &mut JetStream, os: &ObjectStore, name: &str) -> Result<Vec<u8>, ObjError> {
        let mut d = os.get(js, name)?;
        let mut out = Vec::new();
        while let Some(chunk) = d.next_chunk(js) {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    fn none(_: &[u8]) -> bool {
        false
    }

    #[test]
    fn digests_and_names_match_the_clients() {
        assert_eq!(meta_subject("files", "hello.txt"), "$O.files.M.aGVsbG8udHh0");
        assert_eq!(
            digest_string(&Sha256::digest(b"hello world")),
            "SHA-256=uU0nuZNNPgilLlLX2n2r-sSE7-N6U4DukIj3rOLvzek="
        );
        assert_eq!(digest_string(&Sha256::digest(b"")), "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn streamed_round_trip_overwrite_and_delete() {
        let (mut js, os) = setup();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut up = os.put_begin("big.bin", "NUID1", None).unwrap();
        for piece in data.chunks(10_000) {
            up.write(&mut js, T0, piece, &none).unwrap();
        }
        let info = up.finish(&mut js, T0, &none).unwrap();
        assert_eq!((info.size, info.chunks), (300_000, 3));
        assert_eq!(read_all(&mut js, &os, "big.bin").unwrap(), data);
        // an aborted upload leaves neither chunks nor a description
        let mut up = os.put_begin("gone", "NUIDX", None).unwrap();
        up.write(&mut js, T0, &data, &none).unwrap();
        up.abort(&mut js, T0, &none).unwrap();
        assert!(js.messages("OBJ_files", b"$O.files.C.NUIDX", false).unwrap().is_empty());
        assert_eq!(os.info(&mut js, "gone"), Err(ObjError::NotFound));
        // overwrite: the old chunks are purged
        os.put(&mut js, T0, "big.bin", "NUID2", b"small", &none).unwrap();
        assert_eq!(read_all(&mut js, &os, "big.bin").unwrap(), b"small");
        assert!(js.messages("OBJ_files", b"$O.files.C.NUID1", false).unwrap().is_empty());
        // empty objects still have a description
        let empty = os.put(&mut js, T0, "empty", "NUID3", b"", &none).unwrap();
        assert_eq!((empty.chunks, empty.digest.as_str()), (0, "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="));
        assert_eq!(os.list(&mut js).unwrap().iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["big.bin", "empty"]);
        os.delete(&mut js, T0, "big.bin", &none).unwrap();
        assert_eq!(os.info(&mut js, "big.bin"), Err(ObjError::NotFound));
        assert!(js.messages("OBJ_files", b"$O.files.C.NUID2", false).unwrap().is_empty());
    }

    #[test]
    fn links_and_corruption() {
        let (mut js, os) = setup();
        let target = os.put(&mut js, T0, "a/b.txt", "N1", b"hello world", &none).unwrap();
        os.link(&mut js, T0, "lnk", &target, &none).unwrap();
        assert_eq!(read_all(&mut js, &os, "lnk").unwrap(), b"hello world");
        let link_info = os.info(&mut js, "lnk").unwrap();
        assert_eq!(os.link(&mut js, T0, "lnk2", &link_info, &none), Err(ObjError::InvalidLink));
        assert_eq!(os.link(&mut js, T0, "a/b.txt", &target, &none), Err(ObjError::InvalidLink));
        // a chunk that goes missing is a digest mismatch, not silent truncation
        js.purge(T0, "OBJ_files", Some("$O.files.C.N1"), None, &none).unwrap();
        assert_eq!(read_all(&mut js, &os, "a/b.txt"), Err(ObjError::DigestMismatch));
    }

    #[test]
    fn bind_status_store_links_and_names() {
        let (mut js, os) = setup();
        assert_eq!(ObjectStore::bind(&mut js, T0, &StoreConfig::new("files")).unwrap(), os);
        let other = ObjectStore::bind(&mut js, T0, &StoreConfig::new("other")).unwrap();
        assert_eq!(store_names(&js), ["files", "other"]);
        os.put(&mut js, T0, "x", "N1", b"12345", &none).unwrap();
        let st = os.status(&js).unwrap();
        assert_eq!((st.bucket.as_str(), st.sealed), ("files", false));
        assert!(st.size >= 5, "the chunk and the description are counted");
        let l = os.link_store(&mut js, T0, "to-other", &other, &none).unwrap();
        assert_eq!(l.link(), Some(&Link { bucket: "other".into(), name: None }));
        assert!(matches!(os.get(&mut js, "to-other"), Err(ObjError::InvalidLink)));
        assert_eq!(os.link_store(&mut js, T0, "x", &other, &none), Err(ObjError::InvalidLink), "a live object stays");
        let w = os.watch_consumer("_INBOX.w", true, false);
        assert_eq!(
            (w["config"]["filter_subject"].as_str(), w["config"]["deliver_policy"].as_str()),
            (Some("$O.files.M.>"), Some("last_per_subject"))
        );
    }
}
