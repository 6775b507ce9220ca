//! JetStream storage in IndexedDB, write-behind.
//!
//! The engine's storage traits are synchronous and IndexedDB is not, so [`IdbStore`] keeps
//! each stream in memory (like `MemStore`) and marks what changed in a [`Journal`] shared by
//! every stream of the bus. The host ([`crate::bus`]) turns everything marked since the last
//! commit into one IndexedDB transaction ([`Journal::take_ops`] + [`write`]) and releases the
//! publish acks that depend on it only once that transaction committed.
//!
//! Layout (database `edgebus:<name>`, version 1):
//! - object store `blocks`: key `<stream>\0<first seq, 20 digits>`, value a `Uint8Array`
//!   holding up to [`BLOCK_MAX_MSGS`] messages / [`BLOCK_MAX_BYTES`] bytes (IndexedDB manages
//!   only some thousands of records per second, so messages are packed, like the segment
//!   files of the server's file store). A block is rewritten whole when it changes; a store
//!   that can append to a record (the OPFS log) gets only the messages appended since the
//!   last commit ([`Op::AppendBlock`]), unless some were removed.
//! - object store `meta`: key `s\0<stream>` → the stream's saved config, key
//!   `c\0<stream>\0<consumer>` → a consumer's saved state, key
//!   `b\0<stream>\0<batch id>\0<index, 4 digits>` → a message staged in an open atomic batch
//!   (kept so that a reload does not lose a batch the app is still building).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use edgebus_core::jetstream::store::{KeptBatch, MsgMeta, Recovered, Storage, StoreError, StoredMsg, StreamStore};
use edgebus_core::vecmap::VecMap;
use indexed_db_futures::database::Database;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::TransactionMode;
use indexed_db_futures::KeyRange;
use wasm_bindgen::{JsCast, JsValue};

#[path = "idb_msgs.rs"]
mod msgs;
use msgs::Msgs;

/// Most messages packed into one IndexedDB record.
pub const BLOCK_MAX_MSGS: usize = 256;
/// Most message bytes appended to one record before a new one starts. A changed block is
/// rewritten whole, so this bounds the bytes one commit writes per changed block: a KV put
/// rewrites the block it appends to and the one its replaced revision sat in. 16 KiB measured
/// faster than 64 KiB for sequential publishes and KV puts (bench/browser), and a 100k-message
/// stream is still only a few hundred records to read at open.
pub const BLOCK_MAX_BYTES: usize = 16 * 1024;

const BLOCKS: &str = "blocks";
const META: &str = "meta";
/// The link's outbox: key the entry's sequence (20 digits), value [`edgebus_core::link::Entry::encode`].
const OUTBOX: &str = "outbox";
/// Version 2 added the outbox store.
const DB_VERSION: u8 = 2;

/// Block encoding version (the first byte of every block).
const BLOCK_FORMAT: u8 = 1;
const NO_HEADERS: u32 = u32::MAX;

#[derive(Default)]
struct Block {
    msgs: Msgs,
    /// Bytes appended so far (removals do not give room back: appends go to a new block).
    filled: usize,
    /// The block as stored, until something needs its messages: a store read back is decoded
    /// a block at a time when first used (the recovery scan reads blocks in place). Building
    /// every message's map at open was most of a 1M-message open, much of it the first touch
    /// of fresh memory (profiled in the page).
    raw: Option<Bytes>,
    /// The last sequence the store holds of this block, as of the last commit taken, when
    /// it holds exactly the block's messages up to there: the next commit may then append
    /// the ones after it. `None`: new, or messages were removed since (rewrite it whole).
    stored_last: Option<u64>,
}

impl Block {
    fn stored(raw: Bytes) -> Block {
        Block { msgs: Msgs::default(), filled: 0, raw: Some(raw), stored_last: None }
    }

    /// The block with its messages decoded.
    fn open(&mut self) -> &mut Block {
        if let Some(raw) = self.raw.take() {
            // `from_records` only keeps blocks that decode
            self.msgs = decode_block(&raw).unwrap_or_default();
            self.filled = self.msgs.iter().map(|m| m.stored_size() as usize).sum();
            self.stored_last = self.msgs.last_seq();
        }
        self
    }

    /// The write that brings the store's copy of this block up to date, if any: the messages
    /// after `stored_last` when `appends` allows and nothing was removed, else the whole
    /// block. Then the store holds all of it.
    fn take_write(&mut self, key: String, appends: bool) -> Option<Op> {
        let op = match self.stored_last.filter(|_| appends && self.raw.is_none()) {
            Some(last) => {
                let mut tail = Vec::new();
                for m in self.msgs.after(last) {
                    encode_msg(&mut tail, m);
                }
                (!tail.is_empty()).then_some(Op::AppendBlock(key, tail))
            }
            None => Some(Op::PutBlock(key, encode_block(self))),
        };
        if self.raw.is_none() {
            self.stored_last = self.msgs.last_seq();
        }
        op
    }
}

/// One stream's state, in memory.
struct StreamData {
    name: String,
    /// Keyed by the first sequence the block was created for.
    blocks: BTreeMap<u64, Block>,
    config: Vec<u8>,
    consumers: VecMap<String, Vec<u8>>,
    dirty_blocks: BTreeSet<u64>,
    config_dirty: bool,
    dirty_consumers: BTreeSet<String>,
    /// Open atomic batches: each staged record, and how many of them are stored already.
    batches: VecMap<String, (Vec<Vec<u8>>, usize)>,
    /// Batches closed since the last commit, with how many records each had stored.
    closed_batches: VecMap<String, usize>,
}

impl StreamData {
    fn new(name: &str) -> Self {
        StreamData {
            name: name.into(),
            blocks: BTreeMap::new(),
            config: Vec::new(),
            consumers: VecMap::new(),
            dirty_blocks: BTreeSet::new(),
            config_dirty: false,
            dirty_consumers: BTreeSet::new(),
            batches: VecMap::new(),
            closed_batches: VecMap::new(),
        }
    }

    fn block_of(&self, seq: u64) -> Option<u64> {
        self.blocks.range(..=seq).next_back().map(|(k, _)| *k)
    }
}

/// One write of a commit.
#[derive(Debug)]
pub enum Op {
    /// Deletes everything stored for a stream (before it is destroyed or created anew).
    Wipe(String),
    PutBlock(String, Vec<u8>),
    /// Messages to add at the end of a stored block (encoded as in a block, without its
    /// format byte); only for a store that said it appends ([`Journal::take_ops_with`]).
    AppendBlock(String, Vec<u8>),
    DeleteBlock(String),
    PutMeta(String, Vec<u8>),
    DeleteMeta(String),
}

/// Every stream of one bus, and what changed since the last commit.
#[derive(Default)]
pub struct Journal {
    streams: VecMap<u64, StreamData>,
    next_id: u64,
    wipes: Vec<String>,
    pending: bool,
    /// Records that failed to decode at load time, reported once.
    pub warnings: Vec<String>,
}

/// The journal, shared by the bus and every stream's store. A mutex rather than a `RefCell`
/// because the core's store traits are `Send` (the native server shares its engine between
/// threads); in the single-threaded page it never contends.
#[derive(Clone, Default)]
pub struct SharedJournal(Arc<Mutex<Journal>>);

impl SharedJournal {
    pub fn new(journal: Journal) -> Self {
        SharedJournal(Arc::new(Mutex::new(journal)))
    }

    /// The journal, for reading or writing (one borrower at a time, as with a `RefCell`).
    pub fn borrow(&self) -> MutexGuard<'_, Journal> {
        // a panic while it was held cannot leave the journal half-written in a way a retry
        // would make worse: its marks only ever grow until `take_ops`
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn borrow_mut(&self) -> MutexGuard<'_, Journal> {
        self.borrow()
    }
}

fn block_key(stream: &str, first: u64) -> String {
    format!("{stream}\0{first:020}")
}
pub(crate) fn config_key(stream: &str) -> String {
    format!("s\0{stream}")
}
fn consumer_key(stream: &str, consumer: &str) -> String {
    format!("c\0{stream}\0{consumer}")
}
fn staged_key(stream: &str, batch: &str, index: usize) -> String {
    format!("b\0{stream}\0{batch}\0{index:04}")
}

/// The prefixes of a stream's meta records besides its config (consumers, staged batch
/// messages), each with its trailing `\0`: what wiping a stream deletes from `meta`.
pub(crate) fn meta_prefixes(stream: &str) -> [String; 2] {
    [format!("c\0{stream}\0"), format!("b\0{stream}\0")]
}

impl Journal {
    /// Whether anything changed since the last [`Journal::take_ops`].
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// The writes that make the current state durable, in order, each changed block whole;
    /// clears the marks.
    pub fn take_ops(&mut self) -> Vec<Op> {
        self.take_ops_with(false)
    }

    /// [`Journal::take_ops`]; with `appends`, a block that only had messages added since the
    /// last commit is written as those messages ([`Op::AppendBlock`]) rather than whole: a
    /// sequential publisher then writes one message per commit, not the whole 16 KiB block
    /// it lands in.
    pub fn take_ops_with(&mut self, appends: bool) -> Vec<Op> {
        let mut ops: Vec<Op> = self.wipes.drain(..).map(Op::Wipe).collect();
        for s in self.streams.values_mut() {
            if std::mem::take(&mut s.config_dirty) {
                ops.push(Op::PutMeta(config_key(&s.name), s.config.clone()));
            }
            for c in std::mem::take(&mut s.dirty_consumers) {
                let key = consumer_key(&s.name, &c);
                ops.push(match s.consumers.get(&c) {
                    Some(state) => Op::PutMeta(key, state.clone()),
                    None => Op::DeleteMeta(key),
                });
            }
            for (batch, stored) in std::mem::take(&mut s.closed_batches) {
                ops.extend((0..stored).map(|i| Op::DeleteMeta(staged_key(&s.name, &batch, i))));
            }
            for (batch, (records, stored)) in s.batches.iter_mut() {
                for (i, r) in records.iter().enumerate().skip(*stored) {
                    ops.push(Op::PutMeta(staged_key(&s.name, batch, i), r.clone()));
                }
                *stored = records.len();
            }
            for b in std::mem::take(&mut s.dirty_blocks) {
                let key = block_key(&s.name, b);
                match s.blocks.get_mut(&b) {
                    Some(block) => ops.extend(block.take_write(key, appends)),
                    None => ops.push(Op::DeleteBlock(key)),
                }
            }
        }
        self.pending = false;
        ops
    }

    fn stream(&mut self, id: u64) -> Result<&mut StreamData, StoreError> {
        self.pending = true;
        self.streams.get_mut(&id).ok_or_else(|| StoreError::Io("stream store was destroyed".into()))
    }
}

/// The storage of one bus's file-backed streams.
pub struct IdbStorage {
    journal: SharedJournal,
}

impl IdbStorage {
    pub fn new(journal: SharedJournal) -> Self {
        IdbStorage { journal }
    }
}

impl Storage for IdbStorage {
    fn create(&mut self, stream: &str, config: &[u8]) -> Result<Box<dyn StreamStore>, StoreError> {
        let mut j = self.journal.borrow_mut();
        let id = j.next_id;
        j.next_id += 1;
        j.wipes.push(stream.into());
        let mut data = StreamData::new(stream);
        data.config = config.to_vec();
        data.config_dirty = true;
        j.streams.insert(id, data);
        j.pending = true;
        Ok(Box::new(IdbStore { journal: self.journal.clone(), id }))
    }

    fn recover(&mut self) -> Result<Recovered, StoreError> {
        let j = self.journal.borrow();
        Ok(j.streams
            .iter()
            .map(|(id, s)| {
                let store: Box<dyn StreamStore> = Box::new(IdbStore { journal: self.journal.clone(), id: *id });
                (s.config.clone(), store)
            })
            .collect())
    }
}

/// One stream's log: a handle into the shared [`Journal`].
pub struct IdbStore {
    journal: SharedJournal,
    id: u64,
}

impl StreamStore for IdbStore {
    fn append(&mut self, msg: &StoredMsg) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        let s = j.stream(self.id)?;
        let size = msg.stored_size() as usize;
        if let Some(last) = s.blocks.values_mut().next_back() {
            last.open();
        }
        let open = s.blocks.iter().next_back().and_then(|(k, b)| {
            let fits = b.msgs.len() < BLOCK_MAX_MSGS && b.filled + size <= BLOCK_MAX_BYTES;
            let after = b.msgs.last_seq().is_none_or(|last| last < msg.seq);
            (fits && after && *k <= msg.seq).then_some(*k)
        });
        let key = open.unwrap_or(msg.seq);
        let block = s.blocks.entry(key).or_default();
        block.msgs.insert(msg.clone());
        block.filled += size;
        s.dirty_blocks.insert(key);
        Ok(())
    }

    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        let mut j = self.journal.borrow_mut();
        let Some(s) = j.streams.get_mut(&self.id) else { return Ok(None) };
        let block = s.block_of(seq).and_then(|k| s.blocks.get_mut(&k));
        Ok(block.and_then(|b| b.open().msgs.get(seq)).cloned())
    }

    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        let s = j.stream(self.id)?;
        let Some(key) = s.block_of(seq) else { return Ok(()) };
        if let Some(b) = s.blocks.get_mut(&key).map(Block::open) {
            if b.msgs.remove(seq).is_some() {
                b.stored_last = None;
                if b.msgs.is_empty() {
                    s.blocks.remove(&key);
                }
                s.dirty_blocks.insert(key);
            }
        }
        Ok(())
    }

    fn compact(&mut self, before: u64) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        let s = j.stream(self.id)?;
        let keys: Vec<u64> = s.blocks.range(..before).map(|(k, _)| *k).collect();
        for key in keys {
            let Some(b) = s.blocks.get_mut(&key).map(Block::open) else { continue };
            if b.msgs.first_seq().is_none_or(|first| first >= before) {
                continue;
            }
            b.msgs.drop_before(before);
            b.stored_last = None;
            if b.msgs.is_empty() {
                s.blocks.remove(&key);
            }
            s.dirty_blocks.insert(key);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        // Durability comes from the host's commit of the journal, before any ack is released.
        Ok(())
    }

    fn scan(&mut self, f: &mut dyn FnMut(MsgMeta)) -> Result<(), StoreError> {
        let j = self.journal.borrow();
        let Some(s) = j.streams.get(&self.id) else { return Ok(()) };
        let mut meta = |m: &StoredMsg| f(MsgMeta::of(m.seq, &m.subject, m.headers.as_deref(), m.payload.len(), m.time));
        for b in s.blocks.values() {
            match &b.raw {
                // `from_records` only keeps blocks that decode
                Some(raw) => drop(walk_block(raw, |m| meta(&m))),
                None => b.msgs.iter().for_each(&mut meta),
            }
        }
        Ok(())
    }

    fn save_config(&mut self, config: &[u8]) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        let s = j.stream(self.id)?;
        s.config = config.to_vec();
        s.config_dirty = true;
        Ok(())
    }

    fn save_consumer(&mut self, name: &str, state: &[u8]) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        let s = j.stream(self.id)?;
        s.consumers.insert(name.into(), state.to_vec());
        s.dirty_consumers.insert(name.into());
        Ok(())
    }

    fn remove_consumer(&mut self, name: &str) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        let s = j.stream(self.id)?;
        if s.consumers.remove(name).is_some() {
            s.dirty_consumers.insert(name.into());
        }
        Ok(())
    }

    fn consumers(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let j = self.journal.borrow();
        let Some(s) = j.streams.get(&self.id) else { return Ok(Vec::new()) };
        Ok(s.consumers.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn keeps_open_batches(&self) -> bool {
        true
    }

    fn stage(&mut self, batch: &str, index: usize, record: &[u8]) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        let s = j.stream(self.id)?;
        let (records, stored) = s.batches.entry(batch.into()).or_default();
        records.truncate(index);
        *stored = (*stored).min(index);
        records.push(record.to_vec());
        Ok(())
    }

    fn unstage(&mut self, batch: &str) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        let s = j.stream(self.id)?;
        if let Some((_, stored)) = s.batches.remove(batch) {
            if stored > 0 {
                s.closed_batches.insert(batch.into(), stored);
            }
        }
        Ok(())
    }

    fn staged(&mut self) -> Result<Vec<KeptBatch>, StoreError> {
        let j = self.journal.borrow();
        let Some(s) = j.streams.get(&self.id) else { return Ok(Vec::new()) };
        Ok(s.batches.iter().map(|(id, (records, _))| (id.clone(), records.clone())).collect())
    }

    fn destroy(&mut self) -> Result<(), StoreError> {
        let mut j = self.journal.borrow_mut();
        if let Some(s) = j.streams.remove(&self.id) {
            j.wipes.push(s.name);
            j.pending = true;
        }
        Ok(())
    }
}

fn encode_block(b: &Block) -> Vec<u8> {
    if let Some(raw) = &b.raw {
        return raw.to_vec();
    }
    let size: usize = b.msgs.iter().map(|m| m.stored_size() as usize + 12).sum();
    let mut out = Vec::with_capacity(size + 1);
    out.push(BLOCK_FORMAT);
    for m in b.msgs.iter() {
        encode_msg(&mut out, m);
    }
    out
}

/// One message as a block holds it; a block is its format byte, then its messages so.
fn encode_msg(out: &mut Vec<u8>, m: &StoredMsg) {
    out.extend_from_slice(&m.seq.to_le_bytes());
    out.extend_from_slice(&m.time.to_le_bytes());
    out.extend_from_slice(&(m.subject.len() as u32).to_le_bytes());
    let hlen = m.headers.as_ref().map_or(NO_HEADERS, |h| h.len() as u32);
    out.extend_from_slice(&hlen.to_le_bytes());
    out.extend_from_slice(&(m.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&m.subject);
    if let Some(h) = &m.headers {
        out.extend_from_slice(h);
    }
    out.extend_from_slice(&m.payload);
}

/// Hands each message of a block to `f` in order; they share `bytes` (sliced, not copied).
fn walk_block(bytes: &Bytes, mut f: impl FnMut(StoredMsg)) -> Result<(), String> {
    const FIXED: usize = 28;
    if bytes.first() != Some(&BLOCK_FORMAT) {
        return Err("unknown block format".into());
    }
    let le = |b: &[u8]| {
        let mut n = [0u8; 8];
        n[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(n)
    };
    let mut at = 1;
    while at < bytes.len() {
        let head = bytes.get(at..at + FIXED).ok_or("truncated block")?;
        let (seq, time) = (le(&head[..8]), le(&head[8..16]));
        let (slen, hlen, plen) = (le(&head[16..20]) as usize, le(&head[20..24]) as u32, le(&head[24..28]) as usize);
        at += FIXED;
        let mut take = |n: usize| -> Result<Bytes, String> {
            let end = at.checked_add(n).filter(|e| *e <= bytes.len()).ok_or("truncated block")?;
            let b = bytes.slice(at..end);
            at = end;
            Ok(b)
        };
        let subject = take(slen)?;
        let headers = if hlen == NO_HEADERS { None } else { Some(take(hlen as usize)?) };
        let payload = take(plen)?;
        f(StoredMsg { seq, subject, headers, payload, time });
    }
    Ok(())
}

/// The messages of a block; they share `bytes` (sliced, not copied).
fn decode_block(bytes: &Bytes) -> Result<Msgs, String> {
    let mut msgs = Msgs::default();
    // in sequence order as encoded: each insert is a push
    walk_block(bytes, |m| msgs.insert(m))?;
    Ok(msgs)
}

/// An IndexedDB failure, as text.
fn idb_err(e: impl std::fmt::Debug) -> StoreError {
    StoreError::Io(format!("IndexedDB: {e:?}"))
}

/// The database name for a bus name.
pub fn db_name(bus: &str) -> String {
    format!("edgebus:{bus}")
}

/// Opens (creating if needed) a bus's database.
pub async fn open(bus: &str) -> Result<Database, StoreError> {
    Database::open(db_name(bus).as_str())
        .with_version(DB_VERSION)
        .with_on_upgrade_needed(|_event, db| {
            if !db.object_store_names().any(|n| n == BLOCKS) {
                db.create_object_store(BLOCKS).build()?;
            }
            if !db.object_store_names().any(|n| n == META) {
                db.create_object_store(META).build()?;
            }
            if !db.object_store_names().any(|n| n == OUTBOX) {
                db.create_object_store(OUTBOX).build()?;
            }
            Ok(())
        })
        .await
        .map_err(idb_err)
}

/// Deletes a bus's database (tests, "forget everything").
pub async fn delete(bus: &str) -> Result<(), StoreError> {
    Database::delete_by_name(&db_name(bus)).map_err(idb_err)?.await.map_err(idb_err)
}

async fn read_all(db: &Database, store: &str) -> Result<Vec<(String, Bytes)>, StoreError> {
    let tx = db.transaction(store).build().map_err(idb_err)?;
    let os = tx.object_store(store).map_err(idb_err)?;
    let keys: Vec<String> = os
        .get_all_keys::<String>()
        .primitive()
        .map_err(idb_err)?
        .await
        .map_err(idb_err)?
        .collect::<Result<_, _>>()
        .map_err(idb_err)?;
    let values: Vec<JsValue> = os
        .get_all::<JsValue>()
        .primitive()
        .map_err(idb_err)?
        .await
        .map_err(idb_err)?
        .collect::<Result<_, _>>()
        .map_err(idb_err)?;
    if keys.len() != values.len() {
        return Err(StoreError::Io("IndexedDB: keys and values differ in number".into()));
    }
    Ok(keys
        .into_iter()
        .zip(values)
        .map(|(k, v)| (k, Bytes::from(v.unchecked_into::<js_sys::Uint8Array>().to_vec())))
        .collect())
}

/// Reads everything back into a fresh journal (bus start-up, before the engine exists; and
/// after a refused commit, to go back to what is stored).
pub async fn load(db: &Database) -> Result<Journal, StoreError> {
    let meta = read_all(db, META).await?;
    let blocks = read_all(db, BLOCKS).await?;
    Ok(Journal::from_records(meta, blocks))
}

impl Journal {
    /// The journal of what the `meta` and `blocks` records hold.
    /// The blocks' messages share the values' buffers.
    pub(crate) fn from_records(meta: Vec<(String, Bytes)>, blocks: Vec<(String, Bytes)>) -> Journal {
        let mut j = Journal::default();
        let mut ids: BTreeMap<String, u64> = BTreeMap::new();
        for (key, value) in &meta {
            if let Some(name) = key.strip_prefix("s\0") {
                let id = j.next_id;
                j.next_id += 1;
                ids.insert(name.into(), id);
                let mut data = StreamData::new(name);
                data.config = value.to_vec();
                j.streams.insert(id, data);
            }
        }
        for (key, value) in meta {
            if let Some(rest) = key.strip_prefix("b\0") {
                j.restore_staged(&ids, rest, &value);
                continue;
            }
            let Some(rest) = key.strip_prefix("c\0") else { continue };
            let Some((stream, consumer)) = rest.split_once('\0') else { continue };
            if let Some(s) = ids.get(stream).and_then(|id| j.streams.get_mut(id)) {
                s.consumers.insert(consumer.into(), value.to_vec());
            }
        }
        for (key, value) in blocks {
            let Some((stream, first)) = key.split_once('\0') else { continue };
            let (Some(s), Ok(first)) = (ids.get(stream).and_then(|id| j.streams.get_mut(id)), first.parse::<u64>())
            else {
                continue;
            };
            // checked whole now, decoded when first used
            match walk_block(&value, drop) {
                Ok(()) => {
                    s.blocks.insert(first, Block::stored(value));
                }
                Err(e) => j.warnings.push(format!("stream {stream}: block {first} skipped: {e}")),
            }
        }
        j
    }

    /// A staged batch record read back (`rest`: `<stream>\0<batch id>\0<index>`). Keys come
    /// sorted, so a batch's records arrive in order; one missing in the middle (never written
    /// that way, but a damaged database could) stops that batch at the gap: the engine sees a
    /// shorter batch, which then fails its sequence check rather than committing with a hole.
    fn restore_staged(&mut self, ids: &BTreeMap<String, u64>, rest: &str, value: &Bytes) {
        let Some((stream, rest)) = rest.split_once('\0') else { return };
        let Some((batch, index)) = rest.rsplit_once('\0') else { return };
        let (Some(s), Ok(index)) = (ids.get(stream).and_then(|id| self.streams.get_mut(id)), index.parse::<usize>())
        else {
            return;
        };
        let (records, stored) = s.batches.entry(batch.into()).or_default();
        if index == records.len() {
            records.push(value.to_vec());
            *stored = records.len();
        }
    }

    /// Goes back to `stored` (what the database holds, from [`load`]) after a commit was
    /// refused: every change since the last commit is dropped. Stream ids keep counting up,
    /// so a handle of a dropped stream can never reach a stream of `stored`.
    pub fn reset_to(&mut self, stored: Journal) {
        let base = self.next_id;
        self.streams = stored.streams.into_iter().map(|(id, s)| (base + id, s)).collect();
        self.next_id = base + stored.next_id;
        self.wipes.clear();
        self.pending = false;
        self.warnings.extend(stored.warnings);
    }
}

pub(crate) fn outbox_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// The link's stored outbox entries (unordered; entries that fail to decode are skipped).
pub async fn load_outbox(db: &Database) -> Result<Vec<edgebus_core::link::Entry>, StoreError> {
    Ok(read_all(db, OUTBOX)
        .await?
        .into_iter()
        .filter_map(|(k, v)| edgebus_core::link::Entry::decode(k.parse().ok()?, &v))
        .collect())
}

/// Writes one outbox commit in a single transaction and waits for it to commit.
pub async fn write_outbox(db: &Database, commit: edgebus_core::link::OutboxCommit) -> Result<(), StoreError> {
    if commit.is_empty() {
        return Ok(());
    }
    let tx = db.transaction(OUTBOX).with_mode(TransactionMode::Readwrite).build().map_err(idb_err)?;
    let os = tx.object_store(OUTBOX).map_err(idb_err)?;
    if let Some(upto) = commit.delete_upto {
        drop(os.delete::<String, _>(KeyRange::UpperBound(outbox_key(upto), false)).primitive().map_err(idb_err)?);
    }
    for (seq, data) in commit.puts {
        let value: JsValue = js_sys::Uint8Array::from(&data[..]).into();
        drop(os.put(value).with_key(outbox_key(seq)).primitive().map_err(idb_err)?);
    }
    drop(os);
    tx.commit().await.map_err(idb_err)
}

fn range_of(prefix: &str) -> KeyRange<String> {
    prefix_range(&format!("{prefix}\0"))
}

/// Every key starting with `prefix`, which ends in `\0` (so `\u{1}` in its place is past them all).
fn prefix_range(prefix: &str) -> KeyRange<String> {
    let end = format!("{}\u{1}", prefix.strip_suffix('\0').unwrap_or(prefix));
    KeyRange::Bound(prefix.to_string(), false, end, true)
}

/// Applies one commit's writes in a single IndexedDB transaction and waits for it to commit.
pub async fn write(db: &Database, ops: Vec<Op>) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    let tx = db.transaction([BLOCKS, META]).with_mode(TransactionMode::Readwrite).build().map_err(idb_err)?;
    let blocks = tx.object_store(BLOCKS).map_err(idb_err)?;
    let meta = tx.object_store(META).map_err(idb_err)?;
    for op in ops {
        // Requests go out when built; the commit below waits for all of them.
        match op {
            Op::Wipe(stream) => {
                drop(blocks.delete::<String, _>(range_of(&stream)).primitive().map_err(idb_err)?);
                drop(meta.delete(config_key(&stream)).primitive().map_err(idb_err)?);
                for prefix in meta_prefixes(&stream) {
                    drop(meta.delete::<String, _>(prefix_range(&prefix)).primitive().map_err(idb_err)?);
                }
            }
            Op::PutBlock(key, data) => {
                let value: JsValue = js_sys::Uint8Array::from(&data[..]).into();
                drop(blocks.put(value).with_key(key).primitive().map_err(idb_err)?);
            }
            // never asked of this store (`take_ops` writes blocks whole): refused, not guessed
            Op::AppendBlock(key, _) => {
                return Err(StoreError::Io(format!("IndexedDB: block {key:?} cannot be appended to")))
            }
            Op::DeleteBlock(key) => drop(blocks.delete(key).primitive().map_err(idb_err)?),
            Op::PutMeta(key, data) => {
                let value: JsValue = js_sys::Uint8Array::from(&data[..]).into();
                drop(meta.put(value).with_key(key).primitive().map_err(idb_err)?);
            }
            Op::DeleteMeta(key) => drop(meta.delete(key).primitive().map_err(idb_err)?),
        }
    }
    drop(blocks);
    drop(meta);
    tx.commit().await.map_err(commit_err)
}

/// A commit that did not happen. Nothing here aborts a transaction, so an aborted one was
/// refused by the browser: in practice its storage quota (`QuotaExceededError`, which
/// Chromium reports at commit by aborting the transaction). That is the core's
/// [`StoreError::NoSpace`]; anything else is an I/O error.
fn commit_err(e: indexed_db_futures::error::Error) -> StoreError {
    let text = format!("{e:?}");
    if text.contains("Quota") || text.contains("TransactionAborted") || text.contains("aborted") {
        StoreError::NoSpace
    } else {
        StoreError::Io(format!("IndexedDB: {text}"))
    }
}

#[cfg(test)]
#[path = "idb_tests.rs"]
mod tests;
