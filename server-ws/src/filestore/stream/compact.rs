//! Compaction: deleting and rewriting sealed segments so removed messages and useless
//! tombstones do not take disk space forever. See the parent module for the rules that keep
//! it crash-safe.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::{FileStore, Loc};
use crate::filestore::error::{FsError, Result};
use crate::filestore::layout;
use crate::filestore::record::{self, Record};
use crate::filestore::vfs::OpenMode;

impl FileStore {
    /// Compacts what gained garbage: deletes sealed segments with nothing left, rewrites
    /// those more than half garbage. Failures only warn; the data stays correct, just larger.
    /// A failed store compacts nothing: what it believes is on disk may not be, and a rewrite
    /// that drops a tombstone on that belief could bring back what the tombstone removed.
    pub(super) fn maintain(&mut self) {
        let Some(active) = self.active.as_ref().map(|a| a.id) else { return };
        if self.dirty.iter().all(|&id| id == active) || self.pending.check().is_err() {
            return;
        }
        let mut freed = false;
        for id in std::mem::take(&mut self.dirty) {
            if id == active || self.pending.check().is_err() {
                self.dirty.insert(id);
                continue;
            }
            let Some(seg) = self.segs.get(&id) else { continue };
            if seg.live == 0 || seg.garbage.saturating_mul(2) > seg.len {
                match self.rewrite(id) {
                    Ok(f) => freed |= f,
                    Err(e) => self.compaction_failed(id, e),
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
                if self.pending.check().is_err() {
                    return;
                }
                let Some(seg) = self.segs.get(&id) else { continue };
                let useless = seg.tombs.iter().filter(|&&(lo, hi)| !self.tomb_needed(lo, hi)).count() as u64 * tomb;
                if useless == 0 || (seg.live > 0 && seg.garbage.saturating_add(useless).saturating_mul(2) <= seg.len) {
                    continue;
                }
                match self.rewrite(id) {
                    Ok(f) => freed |= f,
                    Err(e) => self.compaction_failed(id, e),
                }
            }
        }
    }

    /// A failed compaction only warns when it changed nothing on disk (the old segment is
    /// still in place: a write of the new copy failed, say for want of space). When an fsync,
    /// a rename or a removal failed, the disk may hold the old segment or the new one, and a
    /// power loss may bring back records whose tombstones the new one dropped; the store is
    /// failed like after any failed fsync: nothing is acknowledged, no removal confirmed,
    /// until a restart reads back what is there.
    fn compaction_failed(&mut self, id: u64, e: FsError) {
        tracing::warn!("stream {:?}: compacting segment {id}: {e}", self.name);
        let unsure = matches!(&e, FsError::Io { op, .. } if matches!(*op, "fsync" | "rename" | "remove"))
            || matches!(&e, FsError::Io { op: "write", err, .. } if err.kind() != io::ErrorKind::StorageFull);
        if unsure || matches!(e, FsError::Failed(_)) {
            self.pending.fail(e.to_string());
        }
    }

    /// Rewrites (or deletes) sealed segment `id` without its garbage. Returns whether
    /// removed-message records were dropped (tombstones elsewhere may have become useless).
    fn rewrite(&mut self, id: u64) -> Result<bool> {
        let Some(seg) = self.segs.get_mut(&id) else { return Ok(false) };
        let mut all = std::mem::take(&mut seg.dead);
        all.sort_unstable();
        let (kept, dead) = self.commit_records(id, &all);
        if !dead.is_empty() {
            // The tombstones that removed these messages must be on disk before their
            // records leave it: else a power loss keeps neither, and when the newest message
            // was removed recovery takes a lower last sequence and hands its sequence out again.
            if let Err(e) = self.pending.sync() {
                self.seg(id).dead = all;
                return Err(e);
            }
        }
        for &seq in &dead {
            self.dead.remove(&(seq, id));
        }
        self.seg(id).dead = kept;
        match self.rewrite_file(id) {
            Ok(()) => Ok(!dead.is_empty()),
            Err(e) => {
                // kept as dead: their tombstones stay needed until a restart sees the disk
                for &seq in &dead {
                    self.dead.insert((seq, id));
                }
                if let Some(seg) = self.segs.get_mut(&id) {
                    seg.dead = all;
                }
                Err(e)
            }
        }
    }

    /// Splits segment `id`'s removed messages (ascending) into those whose records must stay
    /// and those that can go. A batch's records are pending but the last, whose record
    /// commits them at start-up ([`FileStore::replay_msg`]): a record that follows one still
    /// on disk in an earlier segment may be such a commit, and without it the next start-up
    /// would drop the rest of an acknowledged batch. It stays, as garbage its tombstone
    /// still kills, until the records before it are gone.
    fn commit_records(&self, id: u64, dead: &[u64]) -> (Vec<u64>, Vec<u64>) {
        let (mut kept, mut gone) = (Vec::new(), Vec::new());
        for &seq in dead {
            let before = seq.checked_sub(1);
            let on_disk = before.is_some_and(|p| {
                self.index.get(&p).is_some_and(|l| l.seg != id)
                    || self.dead.range((p, 0)..(p + 1, 0)).any(|&(_, s)| s != id)
                    || kept.last() == Some(&p)
            });
            if on_disk {
                kept.push(seq);
            } else {
                gone.push(seq);
            }
        }
        (kept, gone)
    }

    fn rewrite_file(&mut self, id: u64) -> Result<()> {
        let path = self.paths.segment(id);
        let Some(seg) = self.segs.get(&id) else { return Ok(()) };
        let kept_tombs = seg.tombs.iter().filter(|&&(lo, hi)| self.tomb_needed(lo, hi)).count();
        let kept_dead: BTreeSet<u64> = seg.dead.iter().copied().collect();
        if seg.live == 0 && kept_tombs == 0 && kept_dead.is_empty() {
            match self.fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(FsError::Io { op: "remove", path, err: e }),
            }
            // the file is gone from the live tree whether or not its removal is durable yet
            self.segs.remove(&id);
            self.readers.remove(&id);
            return layout::sync_dir(&*self.fs, &self.paths.msgs);
        }
        if seg.garbage == 0 && kept_tombs == seg.tombs.len() {
            return Ok(());
        }
        let seed = seg.seed;
        let data = self.fs.read(&path).map_err(FsError::io("read", &path))?;
        // a kept removed message's newest record (an older one with its sequence may be an
        // uncommitted batch's leftover)
        let mut kept_at = BTreeMap::new();
        record::scan(&data, seed, |off, _, rec| {
            if let Record::Msg(m) = rec {
                if kept_dead.contains(&m.seq) {
                    kept_at.insert(m.seq, off);
                }
            }
        });
        let mut kept_garbage = 0;
        let mut out = Vec::with_capacity(data.len().saturating_sub(usize::try_from(seg.garbage).unwrap_or(0)));
        let mut moved = Vec::new();
        let mut tombs = Vec::new();
        record::scan(&data, seed, |off, len, rec| {
            let mut settle = false;
            let keep = match rec {
                Record::Msg(m) => {
                    let here = Loc { seg: id, off: off as u64, len: len as u64 };
                    let live = self.index.get(&m.seq) == Some(&here);
                    // live, so its batch committed: the copy must not wait for a commit
                    // record that stays behind
                    settle = m.pending && live;
                    if live {
                        moved.push((m.seq, out.len() as u64));
                    }
                    let kept = !live && kept_at.get(&m.seq) == Some(&off);
                    if kept {
                        kept_garbage += len as u64;
                    }
                    live || kept
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
        self.readers.remove(&id);
        // The new file is in place (whether or not the rename is durable yet: reads see it):
        // bring the index in line with it before the directory's fsync, whose failure fails
        // the store but must not leave the index pointing into the old file's layout (seed
        // 1000346: the next scan read the moved messages as damaged and dropped them).
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
        seg.garbage = kept_garbage;
        seg.live = moved.len() as u64;
        seg.tombs = tombs;
        layout::sync_dir(&*self.fs, &self.paths.msgs)
    }
}
