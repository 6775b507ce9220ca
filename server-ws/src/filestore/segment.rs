//! One segment file (`msgs/<id>.blk`): its bookkeeping, and reading it back at start-up with
//! damage repaired.

use std::path::Path;

use super::error::{FsError, Result};
use super::layout::{with_suffix, CORRUPT_EXT};
use super::record::{self, Record};
use super::vfs::{Fs, OpenMode};

/// What the store knows about one segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    /// CRC seed of this segment's records (see [`record::seed`]).
    pub(crate) seed: u32,
    /// Bytes in the file.
    pub(crate) len: u64,
    /// Bytes that hold nothing useful: removed messages and skipped damage. Drives
    /// compaction.
    pub(crate) garbage: u64,
    /// Messages still live in this file.
    pub(crate) live: u64,
    /// Sequences of removed messages whose records are still in this file.
    pub(crate) dead: Vec<u64>,
    /// The tombstones this file holds, as `lo..hi` ranges.
    pub(crate) tombs: Vec<(u64, u64)>,
}

impl Segment {
    pub(crate) fn new(id: u64) -> Self {
        Segment { seed: record::seed(id), len: 0, garbage: 0, live: 0, dead: Vec::new(), tombs: Vec::new() }
    }
}

/// A segment read back at start-up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// Where its records end after repair (a torn tail cut off); the file may be longer, with
    /// zeros allocated ahead of the records.
    pub(crate) len: u64,
    /// Bytes of damage skipped between good records.
    pub(crate) skipped: u64,
}

/// Reads segment `id` at `path`. Damage in the middle is skipped (and logged with the
/// offset); a torn or damaged tail is cut off the file. Zeros after the last record are
/// space allocated ahead (see [`super::vfs::FileHandle::allocate`]), not damage: they stay,
/// and a file of nothing but zeros is an empty segment. A file with no good record at all
/// and something else in it is moved aside to `<id>.blk.corrupt` rather than emptied, so a
/// misplaced or mangled file is kept for inspection; `Ok(None)` then. `f` sees every good
/// record, in file order. An unreadable file is an error for the caller to log and skip.
pub(crate) fn load(
    fs: &dyn Fs,
    path: &Path,
    id: u64,
    mut f: impl FnMut(usize, usize, Record<'_>),
) -> Result<Option<Loaded>> {
    let data = fs.read(path).map_err(FsError::io("read", path))?;
    let mut any = false;
    let scanned = record::scan(&data, record::seed(id), |off, len, rec| {
        any = true;
        f(off, len, rec);
    });
    let mut skipped = 0;
    for &(off, len) in &scanned.damage.skipped {
        tracing::warn!("{}: skipped {len} damaged bytes at offset {off}", path.display());
        skipped += len as u64;
    }
    let mut len = scanned.end as u64;
    if let Some(tail) = scanned.damage.tail {
        if !any {
            let aside = with_suffix(path, CORRUPT_EXT);
            tracing::warn!(
                "{}: no readable record in {} bytes; moved aside to {}",
                path.display(),
                data.len(),
                aside.display()
            );
            fs.rename(path, &aside).map_err(FsError::io("rename", path))?;
            return Ok(None);
        }
        tracing::warn!(
            "{}: cutting {} bytes of torn or damaged tail at offset {tail}",
            path.display(),
            data.len() - tail
        );
        let cut = fs.open(path, OpenMode::Write).and_then(|f| f.set_len(tail as u64).and_then(|()| f.sync_all()));
        if let Err(e) = cut {
            // The garbage stays; it is skipped as mid-file damage once more records follow.
            tracing::warn!("{}: cannot truncate: {e}", path.display());
            len = data.len() as u64;
            skipped += len - tail as u64;
        }
    }
    Ok(Some(Loaded { len, skipped }))
}
