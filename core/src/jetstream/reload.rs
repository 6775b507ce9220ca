//! Going back to what the file storage holds. A host whose storage writes behind the engine
//! (the page: IndexedDB commits after the engine changed its streams) may find a write
//! refused (the browser's quota). The engine then holds messages that are not stored and
//! whose acks were withheld; keeping them would make the next start show a different stream
//! than the acks said, and a later commit could store them after all. So the host reloads
//! its storage to the last commit and the engine recovers its file streams from it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::config::StorageType;
use super::engine::{JetStream, SubChange};

impl JetStream {
    /// Drops every file-backed stream (and its consumers) and recovers them from the file
    /// storage as [`JetStream::new`] does; memory streams are untouched. Streams that fail to
    /// load are reported and skipped.
    pub fn reload_file_streams(&mut self, now: u64) -> Vec<String> {
        let file: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, e)| e.stream.config.storage == StorageType::File)
            .map(|(n, _)| n.clone())
            .collect();
        for name in file {
            if let Some(e) = self.streams.remove(&name) {
                self.subs.extend(e.stream.config.subjects.iter().cloned().map(SubChange::Remove));
            }
        }
        let mut warnings = Vec::new();
        match self.file.recover() {
            Ok(found) => {
                for (meta, store) in found {
                    if let Err(e) = self.restore(meta, store, now, &mut warnings) {
                        warnings.push(e);
                    }
                }
            }
            Err(e) => warnings.push(format!("recovering streams: {e}")),
        }
        warnings
    }
}
