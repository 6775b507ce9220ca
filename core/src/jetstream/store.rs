//! The storage contract of JetStream: a durable log per stream, plus the stream's config and
//! its consumers' states.
//!
//! The contract is deliberately narrow. Indexes (per-subject counts and last sequences, the
//! metadata of every message) live in memory in the core's `Stream`, rebuilt from
//! [`StreamStore::scan`] at start-up, so a backend only has to append, read, delete and persist
//! a few blobs. `MemStore` (here) backs memory streams and the browser until IndexedDB lands;
//! `FileStore` (edgebus-server) and `IdbStore` (edgebus-wasm) implement the same trait, and
//! the same contract tests run against each.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

use super::config::StorageType;
use crate::proto::header_value;

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    pub seq: u64,
    pub subject: Bytes,
    /// The raw header block (`NATS/1.0\r\n…\r\n\r\n`), if the message had headers.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
    /// Nanoseconds since the Unix epoch, from the host's clock at publish time.
    pub time: u64,
}

impl StoredMsg {
    /// Bytes counted against `max_bytes`, by nats-server's formula: subject + headers +
    /// payload + 16 bytes of per-record overhead (sequence and timestamp).
    pub fn stored_size(&self) -> u64 {
        (self.subject.len() + self.headers.as_ref().map_or(0, |h| h.len()) + self.payload.len() + 16) as u64
    }
}

/// Bytes a message counts for in its stream's state and against `max_bytes`, from its size as
/// the memory store counts it (subject + headers + payload + 16), by nats-server's formulas:
/// its file store counts a 22-byte record header and an 8-byte checksum instead of the 16,
/// and 4 more for the length of a header block. Clients read these numbers (`state.bytes`).
pub fn counted_size(storage: StorageType, mem_size: u64, headers_len: usize) -> u64 {
    match storage {
        StorageType::Memory => mem_size,
        StorageType::File => mem_size.saturating_sub(16) + 30 + if headers_len > 0 { 4 } else { 0 },
    }
}

/// What a scan reports about each message, without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgMeta {
    pub seq: u64,
    pub subject: Bytes,
    /// The size as the memory store counts it (see [`counted_size`]).
    pub size: u64,
    /// The length of the header block (0 without headers).
    pub headers_len: usize,
    pub time: u64,
    /// The `Nats-Msg-Id` header if present, so the dedup window survives a restart.
    pub msg_id: Option<Bytes>,
    /// The `Nats-TTL` header if present, so per-message expiry survives a restart.
    pub ttl: Option<Bytes>,
    /// The message is a subject delete marker (`Nats-Marker-Reason`).
    pub marker: bool,
}

impl MsgMeta {
    /// Builds the scan record of a stored message from its parts, reading the headers the
    /// stream's index needs. Backends call this rather than parsing headers themselves.
    pub fn of(seq: u64, subject: &[u8], headers: Option<&[u8]>, payload_len: usize, time: u64) -> MsgMeta {
        let h = |name: &[u8]| headers.and_then(|b| header_value(b, name));
        MsgMeta {
            seq,
            subject: Bytes::copy_from_slice(subject),
            size: (subject.len() + headers.map_or(0, <[u8]>::len) + payload_len + 16) as u64,
            headers_len: headers.map_or(0, <[u8]>::len),
            time,
            msg_id: h(b"Nats-Msg-Id").filter(|v| !v.is_empty()).map(Bytes::copy_from_slice),
            ttl: h(b"Nats-TTL").map(Bytes::copy_from_slice),
            marker: h(b"Nats-Marker-Reason").is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O failure, with the backend's description.
    Io(String),
    /// Stored data failed a check (bad checksum, truncated record) and was set aside.
    Corrupt(String),
    /// The backend has no space left under its limits.
    NoSpace,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "storage I/O error: {e}"),
            StoreError::Corrupt(e) => write!(f, "storage corruption: {e}"),
            StoreError::NoSpace => f.write_str("insufficient resources"),
        }
    }
}

/// One stream's durable log. `Send` so that a multi-threaded host can share the engine
/// behind a lock; a single-threaded host (the browser) pays nothing for it.
pub trait StreamStore: Send {
    /// Appends a message (its sequence is assigned by the stream and only grows). It need
    /// not be durable before [`StreamStore::sync`].
    fn append(&mut self, msg: &StoredMsg) -> Result<(), StoreError>;
    /// Appends the messages of a committed atomic batch, in order, as one unit: after a
    /// power loss either all of them are found or none. A backend whose appends are not
    /// atomic across messages must override this (the file store marks the batch's records
    /// and drops an uncommitted tail on recovery).
    fn append_batch(&mut self, msgs: &[StoredMsg]) -> Result<(), StoreError> {
        for m in msgs {
            self.append(m)?;
        }
        Ok(())
    }
    /// Reads one message back; `Ok(None)` if it was removed or never stored.
    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError>;
    /// Removes one message.
    fn remove(&mut self, seq: u64) -> Result<(), StoreError>;
    /// Removes every message with a sequence below `before` (purge, limits).
    fn compact(&mut self, before: u64) -> Result<(), StoreError>;
    /// Makes everything appended or removed so far durable.
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Whether a publish must be synced before it is acknowledged (`sync_interval: always`).
    fn sync_always(&self) -> bool {
        false
    }
    /// Reports every stored message in sequence order (start-up recovery).
    fn scan(&mut self, f: &mut dyn FnMut(MsgMeta)) -> Result<(), StoreError>;
    /// The highest sequence the store has seen appended, removed ones included (0 if it
    /// cannot tell). Recovery takes the stream's last sequence from it too, so deleting the
    /// newest message and then losing power cannot make its sequence be handed out again.
    fn last_seq(&self) -> u64 {
        0
    }
    /// Persists the stream's configuration (JSON) and creation time.
    fn save_config(&mut self, config: &[u8]) -> Result<(), StoreError>;
    /// Persists a consumer's configuration and state (opaque JSON to the store).
    fn save_consumer(&mut self, name: &str, state: &[u8]) -> Result<(), StoreError>;
    fn remove_consumer(&mut self, name: &str) -> Result<(), StoreError>;
    /// Every saved consumer, by name.
    fn consumers(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Deletes the stream's data for good.
    fn destroy(&mut self) -> Result<(), StoreError>;
    /// Whether this store keeps open atomic batches across a restart. nats-server abandons
    /// them when it stops, and the server's stores keep that default; the page's stores keep
    /// them, because a page reload is routine and must not lose the staged part of a batch
    /// the app is still building. When `false` the three calls below are never made.
    fn keeps_open_batches(&self) -> bool {
        false
    }
    /// Records message `index` (from 0) of open batch `batch`, encoded by the engine. Durable
    /// with the next commit, like an append: the staged message's empty ack waits for it.
    fn stage(&mut self, _batch: &str, _index: usize, _record: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    /// Forgets every staged message of `batch` (committed, abandoned or refused).
    fn unstage(&mut self, _batch: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// Every open batch kept: its id and its staged records in order.
    fn staged(&mut self) -> Result<Vec<KeptBatch>, StoreError> {
        Ok(Vec::new())
    }
}

/// An open batch a store kept: its id and its staged records in order.
pub type KeptBatch = (String, Vec<Vec<u8>>);

/// Streams found at start-up: each one's saved configuration and its store.
pub type Recovered = Vec<(Vec<u8>, Box<dyn StreamStore>)>;

/// Where streams live: opens, lists and recovers them. `Send` for the same reason as
/// [`StreamStore`].
pub trait Storage: Send {
    /// Creates (or opens) the store for a new stream.
    fn create(&mut self, stream: &str, config: &[u8]) -> Result<Box<dyn StreamStore>, StoreError>;
    /// Every stream found at start-up, with its saved configuration.
    fn recover(&mut self) -> Result<Recovered, StoreError>;
}

/// Messages kept in memory: memory-storage streams on the server, and tests.
#[derive(Default)]
pub struct MemStore {
    msgs: BTreeMap<u64, StoredMsg>,
    config: Vec<u8>,
    consumers: crate::vecmap::VecMap<String, Vec<u8>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StreamStore for MemStore {
    fn append(&mut self, msg: &StoredMsg) -> Result<(), StoreError> {
        self.msgs.insert(msg.seq, msg.clone());
        Ok(())
    }
    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        Ok(self.msgs.get(&seq).cloned())
    }
    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        self.msgs.remove(&seq);
        Ok(())
    }
    fn compact(&mut self, before: u64) -> Result<(), StoreError> {
        self.msgs = self.msgs.split_off(&before);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn scan(&mut self, f: &mut dyn FnMut(MsgMeta)) -> Result<(), StoreError> {
        for m in self.msgs.values() {
            f(MsgMeta::of(m.seq, &m.subject, m.headers.as_deref(), m.payload.len(), m.time));
        }
        Ok(())
    }
    fn save_config(&mut self, config: &[u8]) -> Result<(), StoreError> {
        self.config = config.to_vec();
        Ok(())
    }
    fn save_consumer(&mut self, name: &str, state: &[u8]) -> Result<(), StoreError> {
        self.consumers.insert(name.into(), state.to_vec());
        Ok(())
    }
    fn remove_consumer(&mut self, name: &str) -> Result<(), StoreError> {
        self.consumers.remove(name);
        Ok(())
    }
    fn consumers(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.consumers.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
    fn destroy(&mut self) -> Result<(), StoreError> {
        self.msgs.clear();
        self.consumers.clear();
        Ok(())
    }
}

/// A storage that keeps everything in memory (nothing survives the process).
#[derive(Default)]
pub struct MemStorage;

impl Storage for MemStorage {
    fn create(&mut self, _stream: &str, config: &[u8]) -> Result<Box<dyn StreamStore>, StoreError> {
        let mut s = MemStore::new();
        s.save_config(config)?;
        Ok(Box::new(s))
    }
    fn recover(&mut self) -> Result<Recovered, StoreError> {
        Ok(Vec::new())
    }
}

/// The contract every [`StreamStore`] must keep; backends call this from their own tests
/// with a fresh, empty store (and the file store again after reopening it).
pub mod contract {
    use super::*;
    use alloc::format;

    fn msg(seq: u64, subject: &str, payload: &str) -> StoredMsg {
        StoredMsg {
            seq,
            subject: Bytes::copy_from_slice(subject.as_bytes()),
            headers: seq.is_multiple_of(2).then(|| Bytes::from(format!("NATS/1.0\r\nNats-Msg-Id: id{seq}\r\n\r\n"))),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            time: 1_700_000_000_000_000_000 + seq,
        }
    }

    /// Appends, reads, removes, compacts and scans; panics with a description on a breach.
    #[allow(clippy::unwrap_used)]
    pub fn exercise(store: &mut dyn StreamStore) {
        for seq in 1..=10u64 {
            store.append(&msg(seq, &format!("s.{}", seq % 3), &format!("payload {seq}"))).unwrap();
        }
        store.sync().unwrap();
        assert_eq!(store.load(4).unwrap(), Some(msg(4, "s.1", "payload 4")), "load after append");
        assert_eq!(store.load(11).unwrap(), None, "load past the end");
        store.remove(5).unwrap();
        assert_eq!(store.load(5).unwrap(), None, "load after remove");
        store.compact(3).unwrap();
        assert_eq!(store.load(2).unwrap(), None, "load below compaction");
        let mut seen = Vec::new();
        store.scan(&mut |m| seen.push((m.seq, m.msg_id.clone()))).unwrap();
        let seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(seqs, [3, 4, 6, 7, 8, 9, 10], "scan order and content");
        assert_eq!(seen[1].1.as_deref(), Some(&b"id4"[..]), "scan reports Nats-Msg-Id");
        store.save_consumer("c1", b"{\"a\":1}").unwrap();
        store.save_consumer("c2", b"{}").unwrap();
        store.save_consumer("c1", b"{\"a\":2}").unwrap();
        store.remove_consumer("c2").unwrap();
        assert_eq!(store.consumers().unwrap(), [("c1".into(), b"{\"a\":2}".to_vec())], "consumer states");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memstore_keeps_the_contract() {
        contract::exercise(&mut MemStore::new());
    }
}
