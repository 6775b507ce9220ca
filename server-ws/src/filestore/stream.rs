//! [`FileStore`]: one stream's log on disk.
//!
//! Messages and removals are both records appended to the newest segment ("active"); the
//! log is replayed in order (segments by id, records by offset) at start-up, so a later
//! record always wins: a message record makes its sequence live, a tombstone `lo..hi` kills
//! the live messages in that range that were written before it. Records never move between
//! segments, only within one when it is compacted, so that order is stable.
//!
//! In memory the store keeps where each live message lies (`index`), which removed messages
//! still have records on disk (`dead`), and per segment how much of it is garbage. A sealed
//! segment with no live message is deleted, one that is more than half garbage is rewritten
//! (new file, fsync, rename, fsync the directory). A tombstone is dropped by such a rewrite
//! only when no other segment still holds a record it kills; a segment whose messages are
//! all gone but whose tombstones are still needed shrinks to just those tombstones and goes
//! when they are no longer needed. Rewrites and deletions are fsynced before anything that
//! depends on them, whatever the sync policy, so a crash can never bring a message back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use edgebus_core::jetstream::store::{MsgMeta, StoreError, StoredMsg, StreamStore};

use super::error::{FsError, Result};
use super::layout::{self, StreamPaths};
use super::record::{self, Parsed, Record};
use super::segment::{self, Segment};
use super::sync::{now_nanos, Pending, SyncHandle};
use super::vfs::{Fs, Handle, OpenMode};
use super::{FileStoreConfig, Lease};
use crate::options::SyncInterval;

mod blobs;
mod compact;

/// Open read handles kept for sealed segments (loads tend to walk one segment at a time).
const MAX_READERS: usize = 16;

/// The active segment's file is allocated ahead of its records in steps that double from
/// this size...
const ALLOCATE_MIN: u64 = 64 * 1024;
/// ...up to this one, and never past the segment size (unless one record is larger).
const ALLOCATE_MAX: u64 = 1024 * 1024;

/// Where a live message's record lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    seg: u64,
    off: u64,
    len: u64,
}

/// The segment new records go to.
///
/// Its file is longer than its records: space is allocated ahead ([`super::vfs::FileHandle::allocate`])
/// and records are written into it at their offsets. Appending to the end of a file instead
/// changes its size with every record, and then each `fdatasync` must write the inode as well
/// as the data: two writes to the disk per durable publish instead of one (measured with
/// `sync_interval: always`, see docs/architecture.md). The zeros after the last record read
/// as the end of the log at start-up; a sealed segment is cut to its records.
struct Active {
    id: u64,
    file: Handle,
    /// The [`Pending`] epoch in which this file was last registered for the next sync.
    registered: u64,
    /// How long the file is (or was asked to be) with the space allocated ahead.
    allocated: u64,
}

/// A stream's messages, config and consumer states in its own directory. Created by
/// [`super::FileStorage`]; see the module docs for how the log works.
pub struct FileStore {
    name: String,
    fs: Arc<dyn Fs>,
    paths: StreamPaths,
    cfg: FileStoreConfig,
    segs: BTreeMap<u64, Segment>,
    index: BTreeMap<u64, Loc>,
    /// `(seq, segment)` of removed messages whose records are still on disk.
    dead: BTreeSet<(u64, u64)>,
    /// `None` once the stream is destroyed.
    active: Option<Active>,
    next_id: u64,
    readers: HashMap<u64, Handle>,
    /// The highest sequence appended or removed (see [`StreamStore::last_seq`]). The tombstone
    /// that covers it is kept by compaction, so it is known again after a restart.
    last: u64,
    /// Reused for encoding, so an append allocates nothing once warmed up.
    buf: Vec<u8>,
    pending: Arc<Pending>,
    /// Segments that gained garbage since the last maintenance pass.
    dirty: BTreeSet<u64>,
    /// A segment could not be read at start-up: what it holds is unknown, so no tombstone
    /// may be dropped until a restart reads it (or it is gone).
    keep_tombs: bool,
    /// While replaying: the pending records of an atomic batch whose last record has not
    /// been seen yet, with the sequence that must come next to commit them.
    held: Vec<(u64, Loc)>,
    /// While replaying: the sequences of the batches dropped as uncommitted. Each gets a
    /// tombstone once the store is open: their records stay in the segment, and without one
    /// the next message appended after them (whose sequence may well follow theirs) would
    /// read as their commit at the next start-up.
    torn: Vec<(u64, u64)>,
    _lease: Lease,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("name", &self.name)
            .field("dir", &self.paths.dir)
            .field("segments", &self.segs.len())
            .field("messages", &self.index.len())
            .finish()
    }
}

impl FileStore {
    /// Opens (creating if needed) the stream in `paths.dir`, replaying its segments.
    pub(crate) fn open(
        fs: Arc<dyn Fs>,
        name: String,
        paths: StreamPaths,
        cfg: FileStoreConfig,
        lease: Lease,
        sync: &SyncHandle,
    ) -> Result<FileStore> {
        let always = cfg.sync_interval == SyncInterval::Always;
        let mut new_entries = layout::create_dir(&*fs, &paths.msgs, always)?;
        new_entries.extend(layout::create_dir(&*fs, &paths.obs, always)?);
        for dir in [&paths.dir, &paths.msgs, &paths.obs] {
            layout::remove_tmp_files(&*fs, dir);
        }
        let ids = list_segments(&*fs, &paths.msgs)?;
        let pending = Pending::new();
        sync.track(&pending);
        let mut store = FileStore {
            name,
            fs,
            paths,
            cfg,
            segs: BTreeMap::new(),
            index: BTreeMap::new(),
            dead: BTreeSet::new(),
            active: None,
            next_id: 1,
            readers: HashMap::new(),
            last: 0,
            buf: Vec::new(),
            pending,
            dirty: BTreeSet::new(),
            keep_tombs: false,
            held: Vec::new(),
            torn: Vec::new(),
            _lease: lease,
        };
        for id in ids {
            store.next_id = store.next_id.max(id.saturating_add(1));
            store.load_segment(id);
        }
        store.drop_held();
        store.open_active()?;
        // What was just read is what the page cache holds, not necessarily what the disk
        // does: the process before may have created a segment (or a consumer file) whose
        // directory entry it never got to fsync, say because a failed fsync stopped it. The
        // first sync makes the entries this store builds on durable before anything
        // appended to them is acknowledged.
        store.register_dir();
        store.register_obs_dir();
        store.register_dirs(&new_entries);
        for (lo, hi) in std::mem::take(&mut store.torn) {
            store.write_tomb(lo, hi)?;
        }
        store.dirty = store.segs.keys().copied().collect();
        store.maintain();
        Ok(store)
    }

    /// Replays one segment into the index. Damage only warns: the stream comes up with
    /// whatever is intact.
    fn load_segment(&mut self, id: u64) {
        let path = self.paths.segment(id);
        self.segs.insert(id, Segment::new(id));
        let fs = Arc::clone(&self.fs);
        let loaded = segment::load(&*fs, &path, id, |off, len, rec| {
            let (off, len) = (off as u64, len as u64);
            match rec {
                Record::Msg(m) => self.replay_msg(m.seq, m.pending, Loc { seg: id, off, len }),
                Record::Tomb { lo, hi } => {
                    self.drop_held();
                    // a torn batch this tombstone already covers needs no new one
                    self.torn.retain(|&(a, b)| !(lo <= a && b <= hi));
                    self.last = self.last.max(hi.saturating_sub(1));
                    self.kill_range(lo, hi);
                    self.seg(id).tombs.push((lo, hi));
                }
            }
        });
        match loaded {
            Ok(Some(l)) => {
                let seg = self.seg(id);
                seg.len = l.len;
                seg.garbage += l.skipped;
            }
            Ok(None) => {
                self.segs.remove(&id);
            }
            Err(e) => {
                tracing::warn!("stream {:?}: {e}; segment skipped", self.name);
                self.segs.remove(&id);
                self.keep_tombs = true;
            }
        }
    }

    /// Replays a message record. A batch's records are written back to back, each pending
    /// but the last, so a pending run counts only when the next sequence follows it as a
    /// plain record; anything else means the batch was torn and never committed.
    fn replay_msg(&mut self, seq: u64, pending: bool, loc: Loc) {
        let follows = self.held.last().is_some_and(|(s, _)| s.checked_add(1) == Some(seq));
        if !follows {
            self.drop_held();
        }
        if pending {
            self.held.push((seq, loc));
            return;
        }
        for (s, l) in std::mem::take(&mut self.held) {
            self.insert_live(s, l);
        }
        self.insert_live(seq, loc);
    }

    /// Drops the records of an uncommitted batch: garbage, never live.
    fn drop_held(&mut self) {
        let held = std::mem::take(&mut self.held);
        if let (Some(first), Some(last)) = (held.first(), held.last()) {
            self.torn.push((first.0, last.0.saturating_add(1)));
            tracing::warn!(
                "stream {:?}: an atomic batch of {} messages was not committed; dropped",
                self.name,
                held.len() + 1
            );
        }
        for (_, loc) in held {
            let seg = self.seg(loc.seg);
            seg.garbage += loc.len;
            self.dirty.insert(loc.seg);
        }
    }

    /// Continues the newest segment if it has room, or starts a new one.
    fn open_active(&mut self) -> Result<()> {
        let last = self.segs.last_key_value().map(|(id, s)| (*id, s.len));
        let (id, fresh) = match last {
            Some((id, len)) if id.saturating_add(1) == self.next_id && len < self.cfg.segment_size => (id, false),
            _ => (self.next_id, true),
        };
        let path = self.paths.segment(id);
        let file = self.fs.open(&path, OpenMode::ReadWrite).map_err(FsError::io("open", &path))?;
        if fresh {
            self.next_id = id.saturating_add(1);
            self.segs.insert(id, Segment::new(id));
        }
        // what the process before allocated ahead is still there, zeros after the records
        let allocated = file.size().map_err(FsError::io("stat", &path))?;
        self.active = Some(Active { id, file, registered: u64::MAX, allocated });
        Ok(())
    }

    fn seg(&mut self, id: u64) -> &mut Segment {
        self.segs.entry(id).or_insert_with(|| Segment::new(id))
    }

    fn active_id(&self) -> Result<u64> {
        self.active.as_ref().map(|a| a.id).ok_or(FsError::Destroyed)
    }

    fn insert_live(&mut self, seq: u64, loc: Loc) {
        self.last = self.last.max(seq);
        self.seg(loc.seg).live += 1;
        if let Some(old) = self.index.insert(seq, loc) {
            self.bury(seq, old);
        }
    }

    /// Kills the live messages in `lo..hi`.
    fn kill_range(&mut self, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        while let Some((&seq, &loc)) = self.index.range(lo..hi).next() {
            self.index.remove(&seq);
            self.bury(seq, loc);
        }
    }

    /// Books a message record as garbage.
    fn bury(&mut self, seq: u64, loc: Loc) {
        let seg = self.seg(loc.seg);
        seg.live = seg.live.saturating_sub(1);
        seg.garbage += loc.len;
        seg.dead.push(seq);
        self.dead.insert((seq, loc.seg));
        self.dirty.insert(loc.seg);
    }

    /// Whether a tombstone `lo..hi` still kills a record somewhere. Callers rewriting a
    /// segment take that segment's own dead records out of `dead` first.
    fn tomb_needed(&self, lo: u64, hi: u64) -> bool {
        self.keep_tombs || (lo < hi && (hi > self.last || self.dead.range((lo, 0)..(hi, 0)).next().is_some()))
    }

    /// Rolls to a new segment first if a record of `len` bytes would overflow the active
    /// one (an empty segment takes any record, however large).
    fn make_room(&mut self, len: u64) -> Result<()> {
        let id = self.active_id()?;
        let used = self.segs.get(&id).map_or(0, |s| s.len);
        if used > 0 && used.saturating_add(len) > self.cfg.segment_size {
            self.roll()?;
        }
        Ok(())
    }

    fn roll(&mut self) -> Result<()> {
        let id = self.next_id;
        let path = self.paths.segment(id);
        let file = self.fs.open(&path, OpenMode::CreateNew).map_err(FsError::io("create", &path))?;
        self.next_id = id.saturating_add(1);
        self.segs.insert(id, Segment::new(id));
        let new = Active { id, file, registered: u64::MAX, allocated: 0 };
        if let Some(old) = self.active.replace(new) {
            // Sealed: it may be compacted from now on. Its handle is already registered
            // for the next sync if it has unsynced writes.
            self.dirty.insert(old.id);
            self.trim(&old);
        }
        self.register_dir();
        Ok(())
    }

    /// Cuts the space allocated ahead off a segment that takes no more records. Only the
    /// zeros after the records go, so whether or not the cut reaches the disk before a power
    /// loss, the segment reads back the same; no fsync is needed, and a failure only leaves
    /// the zeros (a warning).
    fn trim(&self, active: &Active) {
        let len = self.segs.get(&active.id).map_or(0, |s| s.len);
        if active.allocated > len {
            if let Err(e) = active.file.set_len(len) {
                tracing::warn!(
                    "{}: cannot cut the space allocated ahead: {e}",
                    self.paths.segment(active.id).display()
                );
            }
        }
    }

    /// Allocates the active segment ahead so that a record of `len` bytes at `off` fits.
    /// Failing to allocate is not an error: the write that follows grows the file itself
    /// (and says so if the disk is full).
    fn allocate(&mut self, off: u64, len: u64) {
        let segment_size = self.cfg.segment_size;
        let Some(active) = self.active.as_mut() else { return };
        let end = off.saturating_add(len);
        if end <= active.allocated {
            return;
        }
        let step = active.allocated.clamp(ALLOCATE_MIN, ALLOCATE_MAX);
        let target = end.saturating_add(step).min(segment_size.max(end));
        if let Err(e) = active.file.allocate(target) {
            tracing::debug!("{}: cannot allocate ahead: {e}", self.paths.segment(active.id).display());
        }
        // tried either way; the next try is a step further on
        active.allocated = target;
    }

    /// The directory's entries changed (a segment created, say): fsync it with the next sync.
    fn register_dir(&self) {
        match layout::open_dir(&*self.fs, &self.paths.msgs) {
            Ok(Some(dir)) => self.pending.register_dir(self.paths.msgs.clone(), dir),
            Ok(None) => {}
            Err(e) => tracing::warn!("stream {:?}: {e}", self.name),
        }
    }

    /// Writes the record in `buf` to the active segment with one `pwrite` call, after its
    /// records, and returns (segment, offset). A failed write is undone so offsets stay right.
    fn write_record(&mut self) -> Result<(u64, u64)> {
        self.pending.check()?;
        let id = self.active_id()?;
        let off = self.seg(id).len;
        self.allocate(off, self.buf.len() as u64);
        let active = self.active.as_mut().ok_or(FsError::Destroyed)?;
        let seg = self.segs.entry(id).or_insert_with(|| Segment::new(id));
        if let Err(err) = active.file.write_at(&self.buf, off) {
            if active.file.set_len(off).is_ok() {
                // the space allocated ahead went with the torn bytes
                active.allocated = off;
            } else {
                // Could not undo: the torn bytes stay as garbage, skipped when read back.
                seg.garbage += self.buf.len() as u64;
                seg.len = off + self.buf.len() as u64;
            }
            return Err(FsError::Io { op: "write", path: self.paths.segment(id), err });
        }
        seg.len += self.buf.len() as u64;
        if active.registered != self.pending.epoch() {
            let epoch = self.pending.epoch();
            self.pending.register_segment(self.paths.segment(id), Arc::clone(&active.file), off);
            if let Some(a) = self.active.as_mut() {
                a.registered = epoch;
            }
        }
        Ok((id, off))
    }

    /// With an interval policy, fsyncs once the interval has passed since the last sync (in
    /// case the host does not run [`SyncHandle::sync_all`]). A failure warns here and fails
    /// the store: the next write says so.
    fn maybe_sync(&mut self) {
        if let SyncInterval::Every(every) = self.cfg.sync_interval {
            let every = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
            if now_nanos().saturating_sub(self.pending.last_sync()) >= every {
                if let Err(e) = self.pending.sync() {
                    tracing::warn!("stream {:?}: {e}", self.name);
                }
            }
        }
    }

    fn write_tomb(&mut self, lo: u64, hi: u64) -> Result<()> {
        self.make_room(record::TOMB_LEN as u64)?;
        let id = self.active_id()?;
        let seed = self.seg(id).seed;
        record::encode_tomb(&mut self.buf, seed, lo, hi);
        let (id, _) = self.write_record()?;
        self.last = self.last.max(hi.saturating_sub(1));
        self.seg(id).tombs.push((lo, hi));
        Ok(())
    }

    /// A read handle on segment `id`.
    fn reader(&mut self, id: u64) -> Result<Handle> {
        if let Some(a) = self.active.as_ref().filter(|a| a.id == id) {
            return Ok(Arc::clone(&a.file));
        }
        if let Some(f) = self.readers.get(&id) {
            return Ok(Arc::clone(f));
        }
        let path = self.paths.segment(id);
        let file = self.fs.open(&path, OpenMode::Read).map_err(FsError::io("open", &path))?;
        if self.readers.len() >= MAX_READERS {
            self.readers.clear();
        }
        self.readers.insert(id, Arc::clone(&file));
        Ok(file)
    }

    fn check_alive(&self) -> Result<()> {
        self.active.as_ref().map(|_| ()).ok_or(FsError::Destroyed)
    }

    fn append_msg(&mut self, msg: &StoredMsg, pending: bool) -> Result<()> {
        self.make_room(record::msg_len(msg))?;
        self.write_msg(msg, pending)
    }

    /// Appends to the active segment whatever its size (see [`FileStore::append_batch`]).
    fn write_msg(&mut self, msg: &StoredMsg, pending: bool) -> Result<()> {
        let id = self.active_id()?;
        let seed = self.seg(id).seed;
        record::encode_msg_as(&mut self.buf, seed, msg, pending)?;
        let (seg, off) = self.write_record()?;
        self.insert_live(msg.seq, Loc { seg, off, len: self.buf.len() as u64 });
        self.maybe_sync();
        Ok(())
    }

    fn load_msg(&mut self, seq: u64) -> Result<Option<StoredMsg>> {
        self.check_alive()?;
        let Some(&loc) = self.index.get(&seq) else { return Ok(None) };
        let seed = self.seg(loc.seg).seed;
        let file = self.reader(loc.seg)?;
        let corrupt = || FsError::Corrupt { path: self.paths.segment(loc.seg), offset: loc.off };
        let mut buf = vec![0; usize::try_from(loc.len).map_err(|_| corrupt())?];
        // the path only for the error: building it is an allocation per read
        file.read_exact_at(&mut buf, loc.off).map_err(|e| FsError::io("read", &self.paths.segment(loc.seg))(e))?;
        let whole = Bytes::from(buf);
        match record::parse(&whole, seed) {
            Parsed::Ok(Record::Msg(m), _) if m.seq == seq => Ok(Some(m.to_stored(&whole))),
            _ => {
                tracing::warn!("{}", corrupt());
                Err(corrupt())
            }
        }
    }

    /// Removes `lo..hi` (nothing is written when nothing in it is live).
    fn remove_range(&mut self, lo: u64, hi: u64) -> Result<()> {
        self.check_alive()?;
        let Some((&first, _)) = self.index.range(lo..hi).next() else { return Ok(()) };
        self.write_tomb(first, hi)?;
        self.kill_range(first, hi);
        self.maybe_sync();
        self.maintain();
        Ok(())
    }

    fn scan_msgs(&mut self, f: &mut dyn FnMut(MsgMeta)) -> Result<()> {
        self.check_alive()?;
        let mut current: Option<(u64, Vec<u8>)> = None;
        let mut lost = Vec::new();
        for (&seq, &loc) in &self.index {
            if current.as_ref().map(|c| c.0) != Some(loc.seg) {
                let path = self.paths.segment(loc.seg);
                let data = self.fs.read(&path).unwrap_or_else(|e| {
                    tracing::warn!("{}: cannot read: {e}", path.display());
                    Vec::new()
                });
                current = Some((loc.seg, data));
            }
            let data = current.as_ref().map_or(&[][..], |c| &c.1[..]);
            let seed = self.segs.get(&loc.seg).map_or(0, |s| s.seed);
            let bytes = usize::try_from(loc.off).ok().and_then(|off| data.get(off..)).unwrap_or_default();
            match record::parse(bytes, seed) {
                Parsed::Ok(Record::Msg(m), _) if m.seq == seq => {
                    f(MsgMeta::of(seq, m.subject, m.headers, m.payload.len(), m.time))
                }
                _ => lost.push(seq),
            }
        }
        if !lost.is_empty() {
            tracing::warn!("stream {:?}: {} messages could not be read back; dropped", self.name, lost.len());
            for seq in lost {
                if let Some(loc) = self.index.remove(&seq) {
                    self.bury(seq, loc);
                }
            }
        }
        Ok(())
    }
}

/// The segment ids in `msgs`, ascending. Other files are left alone.
fn list_segments(fs: &dyn Fs, msgs: &std::path::Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs.list(msgs).map_err(FsError::io("list", msgs))? {
        if let Some(id) = entry.name.as_deref().and_then(layout::parse_segment_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

impl StreamStore for FileStore {
    fn append(&mut self, msg: &StoredMsg) -> Result<(), StoreError> {
        Ok(self.append_msg(msg, false)?)
    }

    /// Every message but the last is written pending; the last commits them (see
    /// [`FileStore::replay_msg`]). A failed write leaves the written part pending: it is
    /// taken out of the index now and dropped on replay.
    ///
    /// The whole batch goes into one segment (a new one when it does not fit, even past the
    /// segment size): segments are synced one after the other, so a power loss can keep a
    /// later segment's records and lose an earlier one's unsynced tail, and a batch split
    /// across the two would come back without its first messages.
    fn append_batch(&mut self, msgs: &[StoredMsg]) -> Result<(), StoreError> {
        self.make_room(msgs.iter().map(record::msg_len).fold(0, u64::saturating_add))?;
        for (i, m) in msgs.iter().enumerate() {
            if let Err(e) = self.write_msg(m, i + 1 < msgs.len()) {
                for done in &msgs[..i] {
                    if let Some(loc) = self.index.remove(&done.seq) {
                        self.bury(done.seq, loc);
                    }
                }
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        Ok(self.load_msg(seq)?)
    }

    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        Ok(self.remove_range(seq, seq.saturating_add(1))?)
    }

    fn compact(&mut self, before: u64) -> Result<(), StoreError> {
        Ok(self.remove_range(0, before)?)
    }

    /// Fsyncs everything written since the last sync: segment data, new or removed files'
    /// directory entries, consumer states.
    fn sync(&mut self) -> Result<(), StoreError> {
        if self.active.is_none() {
            return Ok(());
        }
        Ok(self.pending.sync()?)
    }

    fn sync_always(&self) -> bool {
        self.cfg.sync_interval == SyncInterval::Always
    }

    fn scan(&mut self, f: &mut dyn FnMut(MsgMeta)) -> Result<(), StoreError> {
        Ok(self.scan_msgs(f)?)
    }

    fn last_seq(&self) -> u64 {
        self.last
    }

    /// Atomic; fsynced (file and directory) before returning with `sync_interval: always`,
    /// else with the next sync, like the messages: a create or update answered within the
    /// interval before a power loss may be lost with them.
    fn save_config(&mut self, config: &[u8]) -> Result<(), StoreError> {
        self.check_alive()?;
        Ok(self.save_meta(config)?)
    }

    /// Atomic (a crash leaves the old state or the new one); fsynced at once with
    /// `sync_interval: always`, else with the next sync.
    fn save_consumer(&mut self, name: &str, state: &[u8]) -> Result<(), StoreError> {
        Ok(self.save_consumer_state(name, state)?)
    }

    fn remove_consumer(&mut self, name: &str) -> Result<(), StoreError> {
        Ok(self.delete_consumer(name)?)
    }

    fn consumers(&mut self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.list_consumers()?)
    }

    fn destroy(&mut self) -> Result<(), StoreError> {
        Ok(self.destroy_dir()?)
    }
}

impl Drop for FileStore {
    /// A clean shutdown leaves everything fsynced, and the active segment cut to its records.
    fn drop(&mut self) {
        if let Some(active) = self.active.as_ref() {
            match self.pending.sync() {
                Ok(()) => self.trim(active),
                Err(e) => tracing::warn!("stream {:?}: final sync: {e}", self.name),
            }
        }
    }
}
