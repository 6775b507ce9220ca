//! The small files beside the log: the stream's metadata, consumer states, and the stream's
//! own deletion.

use std::io;

use super::FileStore;
use crate::filestore::error::{FsError, Result};
use crate::filestore::layout;
use crate::options::SyncInterval;

impl FileStore {
    pub(super) fn save_consumer_state(&mut self, name: &str, state: &[u8]) -> Result<()> {
        self.check_alive()?;
        let path = self.paths.consumer(&layout::encode_name(name)?);
        let durable = self.cfg.sync_interval == SyncInterval::Always;
        let file = layout::write_atomic(&*self.fs, &path, state, durable, durable)?;
        if !durable {
            self.pending.register_file(path, file);
            self.register_obs_dir();
        }
        Ok(())
    }

    /// Under `always` the new metadata and its rename are durable before returning; under
    /// an interval both go with the next sync, which fsyncs the file before its directory
    /// and leaves the directory alone if the file's fsync failed (`Pending::sync` in `sync.rs`),
    /// so a power loss leaves the old metadata (or no stream, if it was new), never a name
    /// on lost bytes.
    pub(super) fn save_meta(&mut self, config: &[u8]) -> Result<()> {
        let durable = self.cfg.sync_interval == SyncInterval::Always;
        let file = layout::write_atomic(&*self.fs, &self.paths.meta, config, durable, durable)?;
        if !durable {
            self.pending.register_file(self.paths.meta.clone(), file);
            self.register_dirs(std::slice::from_ref(&self.paths.dir));
        }
        Ok(())
    }

    /// Directories whose entries changed (created files or directories), fsynced with the
    /// next sync.
    pub(crate) fn register_dirs(&self, dirs: &[std::path::PathBuf]) {
        for dir in dirs {
            match layout::open_dir(&*self.fs, dir) {
                Ok(Some(handle)) => self.pending.register_dir(dir.clone(), handle),
                Ok(None) => {}
                Err(e) => tracing::warn!("stream {:?}: {e}", self.name),
            }
        }
    }

    pub(super) fn register_obs_dir(&self) {
        match layout::open_dir(&*self.fs, &self.paths.obs) {
            Ok(Some(dir)) => self.pending.register_dir(self.paths.obs.clone(), dir),
            Ok(None) => {}
            Err(e) => tracing::warn!("stream {:?}: {e}", self.name),
        }
    }

    pub(super) fn delete_consumer(&mut self, name: &str) -> Result<()> {
        self.check_alive()?;
        let path = self.paths.consumer(&layout::encode_name(name)?);
        match self.fs.remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(FsError::Io { op: "remove", path, err: e }),
        }
        if self.cfg.sync_interval == SyncInterval::Always {
            layout::sync_dir(&*self.fs, &self.paths.obs)
        } else {
            self.register_obs_dir();
            Ok(())
        }
    }

    pub(super) fn list_consumers(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        self.check_alive()?;
        let obs = &self.paths.obs;
        let mut out = Vec::new();
        for entry in self.fs.list(obs).map_err(FsError::io("list", obs))? {
            let Some(file_name) = entry.name else { continue };
            let Some(encoded) = file_name.strip_suffix(".json") else { continue };
            let path = obs.join(&file_name);
            let Some(name) = layout::decode_name(encoded) else {
                tracing::warn!("{}: not a consumer file name; ignored", path.display());
                continue;
            };
            match self.fs.read(&path) {
                Ok(state) => out.push((name, state)),
                Err(e) => tracing::warn!("{}: cannot read consumer state: {e}; skipped", path.display()),
            }
        }
        out.sort();
        Ok(out)
    }

    pub(super) fn destroy_dir(&mut self) -> Result<()> {
        if self.active.take().is_none() {
            return Ok(());
        }
        self.pending.clear();
        self.readers.clear();
        self.index.clear();
        self.segs.clear();
        self.dead.clear();
        self.dirty.clear();
        // Renaming first makes the deletion atomic: a crash halfway through removing the
        // files leaves a `*.deleted` directory that start-up finishes off, never half a
        // stream that comes back.
        let dir = &self.paths.dir;
        let doomed = layout::with_suffix(dir, layout::DELETED_EXT);
        if self.fs.exists(&doomed) {
            self.fs.remove_dir_all(&doomed).map_err(FsError::io("remove", &doomed))?;
        }
        match self.fs.rename(dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(FsError::Io { op: "rename", path: dir.clone(), err: e }),
        }
        if let Some(parent) = dir.parent() {
            layout::sync_dir(&*self.fs, parent)?;
        }
        self.fs.remove_dir_all(&doomed).map_err(FsError::io("remove", &doomed))
    }
}
