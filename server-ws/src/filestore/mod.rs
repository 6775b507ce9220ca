//! File-backed JetStream storage: [`FileStorage`] (the [`Storage`] of a server's `store_dir`)
//! and [`FileStore`] (one stream's log), implementing the core's storage contract.
//!
//! The core keeps every index in memory and treats the store as a dumb durable log, so this
//! module only has to append, read back, remove and persist a few blobs, and survive
//! crashes and damaged files. The pieces:
//!
//! - [`layout`]: the directory tree (nats-server's: `jetstream/$G/streams/<stream>/`), name
//!   encoding, atomic file replacement.
//! - [`record`]: the self-checking record format of segment files and the scanner that
//!   skips damage.
//! - [`segment`]: reading a segment back at start-up, cutting a torn tail.
//! - [`stream`]: the log itself and removals as tombstones; `stream/compact.rs` deletes and
//!   rewrites segments, `stream/blobs.rs` handles consumer files and deleting the stream.
//! - [`sync`]: deferred fsync and the host's [`SyncHandle`].
//! - [`vfs`]: the file operations the store uses, behind the [`Fs`] trait ([`StdFs`] in
//!   production); the tests run the store, and the whole JetStream engine on it, on
//!   `sim.rs`, a simulated disk that loses what was not fsynced at a power loss, tears
//!   writes, fails fsync, fills up and flips bits (`sim_engine_tests.rs`).
//!
//! **Durability.** Every append is one `pwrite(2)` straight to the kernel (no user-space
//! buffer outlives the call), so killing the process loses nothing that was stored. It
//! writes into space allocated ahead of the records (see `stream.rs`'s `Active`), so the
//! file's size does not change and an `fdatasync` has only the data to write. What an
//! fsync adds is surviving a power loss or kernel crash: with `sync_interval: always` the
//! engine calls `sync()` before it acknowledges a publish, once for all the publishes of one
//! step (group commit, the core's `jetstream/group_commit.rs`); otherwise the host calls
//! [`SyncHandle::sync_all`] every interval (off the engine's task), and each stream also
//! syncs itself on a write once an interval has passed, as a fallback. Stream configs,
//! consumer states and the directories of a new stream follow the policy as messages do:
//! fsynced before the create or update is answered under `always`, with the next sync
//! otherwise (as nats-server, which fsyncs a stream's metadata only under `sync: always`); a
//! new segment's entry goes with the next sync. The first failed fsync fails the
//! store for good (a retried fsync may "succeed" after the kernel dropped the data): every
//! later write is refused until a restart reads back what is really on disk.

mod error;
mod layout;
mod record;
mod segment;
mod stream;
mod sync;
pub mod vfs;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgebus_core::jetstream::store::{Storage, StoreError, StreamStore};
use parking_lot::Mutex;

use crate::options::{JetStreamOptions, SyncInterval};
use error::{FsError, Result};
use layout::StreamPaths;

pub use stream::FileStore;
pub use sync::SyncHandle;
pub use vfs::{Fs, StdFs};

/// nats-server's default block size for streams without limits.
pub const DEFAULT_SEGMENT_SIZE: u64 = 8 * 1024 * 1024;

/// How the file store behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStoreConfig {
    /// When writes are fsynced (see the module docs).
    pub sync_interval: SyncInterval,
    /// A segment is closed and a new one started once the next record would take it past
    /// this many bytes. Smaller segments compact sooner and cost more files.
    pub segment_size: u64,
}

impl Default for FileStoreConfig {
    fn default() -> Self {
        FileStoreConfig { sync_interval: SyncInterval::default(), segment_size: DEFAULT_SEGMENT_SIZE }
    }
}

impl FileStoreConfig {
    pub fn from_options(o: &JetStreamOptions) -> Self {
        FileStoreConfig { sync_interval: o.sync_interval, ..FileStoreConfig::default() }
    }
}

/// Proof that a stream directory is open through exactly one [`FileStore`]; released when
/// the store is dropped. Two handles on one directory would interleave two writers' offsets.
pub(crate) struct Lease {
    open: Arc<Mutex<HashSet<PathBuf>>>,
    dir: PathBuf,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.open.lock().remove(&self.dir);
    }
}

/// The streams under one `store_dir`.
#[derive(Debug)]
pub struct FileStorage {
    /// `<store_dir>/jetstream/$G/streams`.
    streams: PathBuf,
    config: FileStoreConfig,
    sync: SyncHandle,
    open: Arc<Mutex<HashSet<PathBuf>>>,
    fs: Arc<dyn Fs>,
}

impl FileStorage {
    /// Storage rooted at `store_dir` (nats-server's `store_dir`; the streams live under
    /// `<store_dir>/jetstream/$G/streams`, created here if missing).
    pub fn new(store_dir: impl AsRef<Path>, config: FileStoreConfig) -> Result<Self, StoreError> {
        Self::with_fs(Arc::new(StdFs), store_dir, config)
    }

    /// The same on another file system (tests use a simulated disk).
    pub fn with_fs(fs: Arc<dyn Fs>, store_dir: impl AsRef<Path>, config: FileStoreConfig) -> Result<Self, StoreError> {
        let streams = layout::streams_dir(store_dir.as_ref());
        layout::create_dir(&*fs, &streams, true)?;
        Ok(FileStorage { streams, config, sync: SyncHandle::default(), open: Arc::default(), fs })
    }

    /// The streams of `account`, under `<store_dir>/jetstream/<account>/streams`.
    pub fn for_account(
        store_dir: impl AsRef<Path>,
        account: &str,
        config: FileStoreConfig,
    ) -> Result<Self, StoreError> {
        let streams = layout::account_streams_dir(store_dir.as_ref(), account)?;
        let fs: Arc<dyn Fs> = Arc::new(StdFs);
        layout::create_dir(&*fs, &streams, true)?;
        Ok(FileStorage { streams, config, sync: SyncHandle::default(), open: Arc::default(), fs })
    }

    /// The handle the host keeps to fsync every open stream each `sync_interval`.
    pub fn sync_handle(&self) -> SyncHandle {
        self.sync.clone()
    }

    /// Fsyncs every open stream now (same as `sync_handle().sync_all()`).
    pub fn sync_all(&self) -> Result<(), StoreError> {
        self.sync.sync_all()
    }

    /// The directory streams live in.
    pub fn streams_dir(&self) -> &Path {
        &self.streams
    }

    fn lease(&self, dir: &Path, name: &str) -> Result<Lease> {
        let mut open = self.open.lock();
        if !open.insert(dir.to_path_buf()) {
            return Err(FsError::AlreadyOpen(name.into()));
        }
        Ok(Lease { open: Arc::clone(&self.open), dir: dir.to_path_buf() })
    }

    fn create_stream(&self, stream: &str, config: &[u8]) -> Result<FileStore, StoreError> {
        let paths = StreamPaths::new(self.streams.join(layout::encode_name(stream)?));
        let lease = self.lease(&paths.dir, stream)?;
        let always = self.config.sync_interval == SyncInterval::Always;
        let parents = layout::create_dir(&*self.fs, &paths.dir, always)?;
        let mut store = FileStore::open(self.fs.clone(), stream.into(), paths, self.config.clone(), lease, &self.sync)?;
        store.register_dirs(&parents);
        store.save_config(config)?;
        Ok(store)
    }

    /// Opens the stream in directory `dir_name`, or says why not (the caller warns and goes
    /// on without it).
    fn recover_one(&self, dir_name: &str) -> Result<(Vec<u8>, FileStore), String> {
        let Some(name) = layout::decode_name(dir_name) else {
            return Err("not a stream directory name".into());
        };
        let paths = StreamPaths::new(self.streams.join(dir_name));
        let meta = match self.fs.read(&paths.meta) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err("no meta.json".into()),
            Err(e) => return Err(format!("cannot read meta.json: {e}")),
        };
        match serde_json::from_slice::<serde_json::Value>(&meta) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => return Err("meta.json is not a JSON object".into()),
            Err(e) => return Err(format!("meta.json is not valid JSON: {e}")),
        }
        let lease = self.lease(&paths.dir, &name).map_err(|e| e.to_string())?;
        let store = FileStore::open(self.fs.clone(), name, paths, self.config.clone(), lease, &self.sync)
            .map_err(|e| e.to_string())?;
        Ok((meta, store))
    }
}

impl Storage for FileStorage {
    /// Creates the stream's directory, or opens the existing one (its messages are kept),
    /// and saves `config`.
    fn create(&mut self, stream: &str, config: &[u8]) -> Result<Box<dyn StreamStore>, StoreError> {
        Ok(Box::new(self.create_stream(stream, config)?))
    }

    /// Every stream directory with a readable `meta.json` holding a JSON object, in name
    /// order. A stream that cannot be opened is skipped with a warning; only an unreadable
    /// streams directory is an error.
    fn recover(&mut self) -> Result<Vec<(Vec<u8>, Box<dyn StreamStore>)>, StoreError> {
        let mut dirs = Vec::new();
        let entries = self.fs.list(&self.streams).map_err(FsError::io("list", &self.streams))?;
        for entry in entries {
            if !entry.is_dir {
                continue;
            }
            let Some(dir_name) = entry.name else {
                tracing::warn!("{}: a directory with a non-UTF-8 name; ignored", self.streams.display());
                continue;
            };
            if dir_name.ends_with(layout::DELETED_EXT) {
                // A deletion interrupted by a crash: finish it.
                let path = self.streams.join(&dir_name);
                if let Err(e) = self.fs.remove_dir_all(&path) {
                    tracing::warn!("{}: cannot finish deleting: {e}", path.display());
                }
                continue;
            }
            dirs.push(dir_name);
        }
        dirs.sort();
        let mut out: Vec<(Vec<u8>, Box<dyn StreamStore>)> = Vec::new();
        for dir_name in dirs {
            match self.recover_one(&dir_name) {
                Ok((meta, store)) => out.push((meta, Box::new(store))),
                Err(why) => {
                    tracing::warn!("{}: {why}; stream skipped", self.streams.join(&dir_name).display());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_batch_tests;
#[cfg(test)]
mod sim_eio_tests;
#[cfg(test)]
mod sim_engine;
#[cfg(test)]
mod sim_engine_tests;
#[cfg(test)]
mod sim_invariants;
#[cfg(test)]
mod sim_model_tests;
#[cfg(test)]
mod sim_workload;
#[cfg(test)]
mod sim_workload_tests;
#[cfg(test)]
mod tests;
