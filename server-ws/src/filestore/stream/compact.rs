//! Compaction: deleting and rewriting sealed segments so removed messages and useless
//! tombstones do not take disk space forever. See the parent module for the rules that keep
//! it crash-safe.

use std::collections::BTreeSet;
use std::io;

use super::{FileStore, Loc};
use crate::filestore::error::{FsError, Result};
use crate::filestore::layout;
use crate::filestore::record::{self, Record};
use crate::filestore::vfs::OpenMode;

impl FileStore {
    /// Compacts what gained garbage: deletes sealed segments with nothing left, rewrites
    /// those more than half garbage. Failures only warn; the data stays correct, just larger.
    pub(super) fn maintain(&mut self) {
        let Some(active) = self.active.as_ref().map(|a| a.id) else { return };
        if self.dirty.iter().all(|&id| id == active) {
            return;
        }
        let mut freed = false;
        for id in std::mem::take(&mut self.dirty) {
            if id == active {
                self.dirty.insert(id);
                continue;
            }
            let Some(seg) = self.segs.get(&id) else { continue };
            if seg.live == 0 || seg.garbage.saturating_mul(2) > seg.len {
                match self.rewrite(id) {
                    Ok(f) => freed |= f,
                    Err(e) => tracing::warn!("stream {:?}: compacting segment {id}: {e}", self.name),
                }
            }
        }
        // Records just dropped may leave tombstones elsewhere with nothing left to kill;
        // those count as garbage too. Only segments where tombstones could tip the balance
        // are looked at closely.
        while freed {
            freed = false;
            let tomb = record::TOMB_LEN as u64;
            let candidates: Vec<u64> = self
                .segs
                .iter()
                .filter(|(id, s)| {
                    **id != active
                        && !s.tombs.is_empty()
                        && (s.live == 0
                            || s.garbage.saturating_add(s.tombs.len() as u64 * tomb).saturating_mul(2) > s.len)
                })
                .map(|(id, _)| *id)
                .collect();
            for id in candidates {
                let Some(seg) = self.segs.get(&id) else { continue };
                let useless = seg.tombs.iter().filter(|&&(lo, hi)| !self.tomb_needed(lo, hi)).count() as u64 * tomb;
                if useless == 0 || (seg.live > 0 && seg.garbage.saturating_add(useless).saturating_mul(2) <= seg.len) {
                    continue;
                }
                match self.rewrite(id) {
                    Ok(f) => freed |= f,
                    Err(e) => tracing::warn!("stream {:?}: compacting segment {id}: {e}", self.name),
                }
            }
        }
    }

    /// Rewrites (or deletes) sealed segment `id` without its garbage. Returns whether
    /// removed-message records were dropped (tombstones elsewhere may have become useless).
    fn rewrite(&mut self, id: u64) -> Result<bool> {
        let Some(seg) = self.segs.get_mut(&id) else { return Ok(false) };
        let dead = std::mem::take(&mut seg.dead);
        for &seq in &dead {
            self.dead.remove(&(seq, id));
        }
        match self.rewrite_file(id) {
            Ok(()) => Ok(!dead.is_empty()),
            Err(e) => {
                for &seq in &dead {
                    self.dead.insert((seq, id));
                }
                self.seg(id).dead = dead;
                Err(e)
            }
        }
    }

    fn rewrite_file(&mut self, id: u64) -> Result<()> {
        let path = self.paths.segment(id);
        let Some(seg) = self.segs.get(&id) else { return Ok(()) };
        let kept_tombs = seg.tombs.iter().filter(|&&(lo, hi)| self.tomb_needed(lo, hi)).count();
        if seg.live == 0 && kept_tombs == 0 {
            match self.fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(FsError::Io { op: "remove", path, err: e }),
            }
            layout::sync_dir(&*self.fs, &self.paths.msgs)?;
            self.segs.remove(&id);
            self.readers.remove(&id);
            return Ok(());
        }
        if seg.garbage == 0 && kept_tombs == seg.tombs.len() {
            return Ok(());
        }
        let seed = seg.seed;
        let data = self.fs.read(&path).map_err(FsError::io("read", &path))?;
        let mut out = Vec::with_capacity(data.len().saturating_sub(usize::try_from(seg.garbage).unwrap_or(0)));
        let mut moved = Vec::new();
        let mut tombs = Vec::new();
        record::scan(&data, seed, |off, len, rec| {
            let mut settle = false;
            let keep = match rec {
                Record::Msg(m) => {
                    // live, so its batch committed: the copy must not wait for a commit
                    // record that stays behind
                    settle = m.pending;
                    let here = Loc { seg: id, off: off as u64, len: len as u64 };
                    let live = self.index.get(&m.seq) == Some(&here);
                    if live {
                        moved.push((m.seq, out.len() as u64));
                    }
                    live
                }
                Record::Tomb { lo, hi } => {
                    let needed = self.tomb_needed(lo, hi);
                    if needed {
                        tombs.push((lo, hi));
                    }
                    needed
                }
            };
            if keep {
                let start = out.len();
                out.extend_from_slice(&data[off..off + len]);
                if settle {
                    record::settle(&mut out[start..], seed);
                }
            }
        });
        if moved.len() as u64 != seg.live {
            // Damage since start-up: what cannot be read back is lost either way.
            tracing::warn!(
                "{}: {} live messages unreadable while compacting; dropped",
                path.display(),
                seg.live.saturating_sub(moved.len() as u64)
            );
        }
        let tmp = layout::with_suffix(&path, layout::TMP_EXT);
        let written = self.fs.open(&tmp, OpenMode::Truncate).and_then(|f| f.append(&out).and_then(|()| f.sync_all()));
        if let Err(err) = written {
            let _ = self.fs.remove_file(&tmp);
            return Err(FsError::Io { op: "write", path: tmp, err });
        }
        self.fs.rename(&tmp, &path).map_err(FsError::io("rename", &tmp))?;
        layout::sync_dir(&*self.fs, &self.paths.msgs)?;
        self.readers.remove(&id);
        // The new file is in place: bring the index in line with it.
        let kept: BTreeSet<u64> = moved.iter().map(|m| m.0).collect();
        if kept.len() as u64 != self.segs.get(&id).map_or(0, |s| s.live) {
            self.index.retain(|seq, loc| loc.seg != id || kept.contains(seq));
        }
        for (seq, off) in &moved {
            if let Some(loc) = self.index.get_mut(seq) {
                loc.off = *off;
            }
        }
        let seg = self.seg(id);
        seg.len = out.len() as u64;
        seg.garbage = 0;
        seg.live = moved.len() as u64;
        seg.tombs = tombs;
        Ok(())
    }
}
