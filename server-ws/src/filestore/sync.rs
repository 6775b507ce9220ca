//! Deferred fsync: what each open stream has written but not yet made durable, and the
//! [`SyncHandle`] the host uses to fsync all of it on its `sync_interval` timer.
//!
//! The engine owns the stream stores and calls them from one task. Fsync is slow (milliseconds
//! on many disks), so the interval sync should not run on that task: each store lists the
//! files it has written since the last sync (shared file handles: fsync through any
//! handle flushes the file) in a [`Pending`] the host can drain from a blocking thread while
//! the engine keeps appending. Data written while a drain is in progress is picked up by the
//! next one, because draining bumps an epoch that makes the store register its files again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use edgebus_core::jetstream::store::StoreError;
use parking_lot::Mutex;

use super::error::{FsError, Result};
use super::vfs::Handle;

/// One file to fsync: its path (for error messages) and a handle on it.
struct Entry {
    path: PathBuf,
    file: Handle,
    /// Data only (`fdatasync`) for segments; full for directories and replaced files.
    data_only: bool,
    /// A directory: its fsync makes the names of the files in it durable.
    dir: bool,
    /// For a segment: its length before its first write since the last drain, i.e. what an
    /// earlier sync covered. A failed sync cuts the segment back to it (see [`Pending::sync`]).
    clean_len: Option<u64>,
}

/// One store's not-yet-fsynced files.
pub(crate) struct Pending {
    files: Mutex<Vec<Entry>>,
    /// Set by the first failed fsync, for good. After a failed fsync the kernel may have
    /// dropped the dirty pages and marked them clean, so a later fsync that succeeds proves
    /// nothing about them (PostgreSQL's "fsyncgate"): the store refuses every write and
    /// sync from then on, and only a restart, which reads back what is really on disk,
    /// brings the stream back.
    failed: Mutex<Option<String>>,
    epoch: AtomicU64,
    /// When the last drain started, in nanoseconds since [`base`].
    last_sync: AtomicU64,
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

pub(crate) fn now_nanos() -> u64 {
    u64::try_from(base().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Pending {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Pending {
            files: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
            epoch: AtomicU64::new(0),
            last_sync: AtomicU64::new(now_nanos()),
        })
    }

    /// Changes every time the list is drained; a store compares it to know whether the file
    /// it keeps writing to must be registered again.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Nanoseconds (on [`now_nanos`]'s clock) of the last sync.
    pub(crate) fn last_sync(&self) -> u64 {
        self.last_sync.load(Ordering::Relaxed)
    }

    /// Registers a file replaced by a rename (a consumer state, the metadata).
    pub(crate) fn register_file(&self, path: PathBuf, file: Handle) {
        self.files.lock().push(Entry { path, file, data_only: false, dir: false, clean_len: None });
    }

    /// Registers a directory whose entries changed.
    pub(crate) fn register_dir(&self, path: PathBuf, dir: Handle) {
        self.files.lock().push(Entry { path, file: dir, data_only: false, dir: true, clean_len: None });
    }

    /// Registers a segment appended to since the last drain; `clean_len` is its length
    /// before that first append.
    pub(crate) fn register_segment(&self, path: PathBuf, file: Handle, clean_len: u64) {
        self.files.lock().push(Entry { path, file, data_only: true, dir: false, clean_len: Some(clean_len) });
    }

    /// Forgets everything registered (the stream was destroyed).
    pub(crate) fn clear(&self) {
        self.files.lock().clear();
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// `Err` once an fsync has failed (see [`Pending::failed`]'s field doc).
    pub(crate) fn check(&self) -> Result<()> {
        match &*self.failed.lock() {
            Some(why) => Err(FsError::Failed(why.clone())),
            None => Ok(()),
        }
    }

    /// Fails the store for good from outside a sync: an fsync or a rename of compaction's
    /// failed, so what the disk holds is no longer known (see [`Pending::failed`]'s field doc).
    pub(crate) fn fail(&self, why: String) {
        self.failed.lock().get_or_insert(why);
    }

    /// Fsyncs everything registered so far. Each file is fsynced once, even if registered
    /// several times. On a failure the remaining files are still tried (directories not:
    /// see the loop), the first error is returned, and the store is failed for good.
    ///
    /// A failed fsync also cuts every segment with unsynced appends back to what an earlier
    /// sync covered. The kernel keeps the failed pages in its cache, readable, although they
    /// may never reach the disk: without the cut, a restart without a power loss would read
    /// back (and deliver) records whose publishes were refused, and the next power loss
    /// would take them. Nothing after the cut was ever acknowledged under `always` (that
    /// waits for a successful sync); under an interval it is the unsynced suffix a power
    /// loss may take anyway.
    pub(crate) fn sync(&self) -> Result<()> {
        self.check()?;
        let mut files = {
            let mut guard = self.files.lock();
            self.epoch.fetch_add(1, Ordering::AcqRel);
            self.last_sync.store(now_nanos(), Ordering::Relaxed);
            std::mem::take(&mut *guard)
        };
        // by path; a stable sort keeps each path's registrations in their order
        files.sort_by(|a, b| a.path.cmp(&b.path));
        // the earliest clean length of each segment (a path is registered once per epoch)
        let mut clean: BTreeMap<PathBuf, (u64, Handle)> = BTreeMap::new();
        for e in &files {
            if let Some(len) = e.clean_len {
                let c = clean.entry(e.path.clone()).or_insert_with(|| (len, Arc::clone(&e.file)));
                c.0 = c.0.min(len);
            }
        }
        // One entry per path, the newest: a file replaced by a rename (metadata, a consumer
        // state) is registered once per replacement, and only the newest handle is the file
        // its name now holds. Fsyncing the first one instead made the directory name a file
        // whose bytes no sync covered (a power loss left meta.json empty and the stream gone).
        let mut newest: Vec<Entry> = Vec::with_capacity(files.len());
        for e in files {
            if newest.last().is_some_and(|k| k.path == e.path) {
                newest.pop();
            }
            newest.push(e);
        }
        let files = newest;
        let mut first_err = None;
        // segments whose own fsync worked: their cut must be made durable too
        let mut synced = BTreeSet::new();
        // Children before their directory (a directory sorts before what it holds): a crash
        // halfway through must not leave a durable name for a file whose data is not. For
        // the same reason no directory is fsynced once a file's fsync failed: the failed
        // file's bytes may be gone for good, and a durable rename would leave its name on
        // them (a replaced consumer state or metadata read back as garbage, seed 1000107);
        // without it a power loss brings back the old file.
        for e in files.iter().rev() {
            if e.dir && first_err.is_some() {
                continue;
            }
            let r = if e.data_only { e.file.sync_data() } else { e.file.sync_all() };
            match r {
                Ok(()) if e.clean_len.is_some() => {
                    synced.insert(e.path.clone());
                }
                Ok(()) => {}
                Err(err) => {
                    tracing::warn!("fsync {} failed: {err}", e.path.display());
                    first_err.get_or_insert(FsError::Io { op: "fsync", path: e.path.clone(), err });
                }
            }
        }
        let Some(e) = first_err else { return Ok(()) };
        self.failed.lock().get_or_insert_with(|| e.to_string());
        // The sync failed as a whole: everything it was to cover was refused (a segment
        // whose own fsync worked may still lack its directory entry), and so was whatever
        // was appended meanwhile, which no sync will cover now.
        for later in std::mem::take(&mut *self.files.lock()) {
            if let Some(len) = later.clean_len {
                clean.entry(later.path).or_insert((len, later.file));
            }
        }
        for (path, (len, file)) in &clean {
            // A segment whose own fsync worked holds the records on disk already: cut only in
            // the page cache, they would come back at the next power loss (seed 1000204: a
            // KV purge's tombstone, refused, took an acknowledged message with it). Its
            // fsync works, so the cut is fsynced; the segment whose fsync failed is cut back
            // to what the disk holds anyway.
            let cut = file.set_len(*len).and_then(|()| if synced.contains(path) { file.sync_data() } else { Ok(()) });
            if let Err(err) = cut {
                tracing::warn!("cutting {} back to its synced {len} bytes: {err}", path.display());
            }
        }
        Err(e)
    }
}

/// Fsyncs every open file-backed stream: the host calls [`SyncHandle::sync_all`] every
/// `sync_interval`, off the engine's task (e.g. in `tokio::task::spawn_blocking`). Cloning is
/// cheap; clones share the same set of streams. Streams also fsync themselves on their next
/// write once the interval has passed without one, so a host that never calls this still gets
/// a sync per interval while messages flow.
#[derive(Clone, Default)]
pub struct SyncHandle {
    stores: Arc<Mutex<Vec<Weak<Pending>>>>,
}

impl SyncHandle {
    pub(crate) fn track(&self, pending: &Arc<Pending>) {
        let mut stores = self.stores.lock();
        stores.retain(|w| w.strong_count() > 0);
        stores.push(Arc::downgrade(pending));
    }

    /// Fsyncs everything the open streams have written since their last sync. All streams
    /// are tried; the first failure is returned.
    pub fn sync_all(&self) -> Result<(), StoreError> {
        let live: Vec<Arc<Pending>> = {
            let mut stores = self.stores.lock();
            stores.retain(|w| w.strong_count() > 0);
            stores.iter().filter_map(Weak::upgrade).collect()
        };
        let mut first_err = None;
        for p in live {
            if let Err(e) = p.sync() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), |e| Err(e.into()))
    }
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle").field("streams", &self.stores.lock().len()).finish()
    }
}
