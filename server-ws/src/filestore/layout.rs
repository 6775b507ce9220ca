//! Where things live on disk, and the small file-system helpers every part of the store needs.
//!
//! The tree mirrors nats-server's so an operator finds their way around it:
//!
//! ```text
//! <store_dir>/jetstream/$G/streams/<stream>/meta.json        stream config (atomic writes)
//!                                           msgs/<n>.blk     append-only segments
//!                                           obs/<name>.json  consumer states (atomic writes)
//! ```
//!
//! Names are encoded before they become path components: ASCII letters, digits, `-` and `_`
//! pass through, every other byte becomes `%XX`. No encoded name can be `.`/`..`, hold a
//! separator or a dot, so nothing can reach outside the stream's directory, and a directory
//! whose name holds a `.` can never be a stream (that is how half-deleted ones are spotted).

use std::path::{Path, PathBuf};

use super::error::{FsError, Result};
use super::vfs::{Fs, Handle, OpenMode};

/// nats-server's account directory for the global account.
pub(crate) const ACCOUNT_DIR: &str = "$G";
pub(crate) const META_FILE: &str = "meta.json";
pub(crate) const MSGS_DIR: &str = "msgs";
pub(crate) const OBS_DIR: &str = "obs";
pub(crate) const SEGMENT_EXT: &str = ".blk";
pub(crate) const TMP_EXT: &str = ".tmp";
/// A stream directory renamed to this suffix is being deleted (see `FileStore::destroy`).
pub(crate) const DELETED_EXT: &str = ".deleted";
/// A segment with no readable record at all is moved aside under this suffix, not deleted.
pub(crate) const CORRUPT_EXT: &str = ".corrupt";

/// Longest encoded name: 255 is the usual file-name limit, minus room for `.json.tmp`.
const MAX_ENCODED: usize = 240;

/// `<store_dir>/jetstream/$G/streams`.
pub(crate) fn streams_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("jetstream").join(ACCOUNT_DIR).join("streams")
}

/// `<store_dir>/jetstream/<account>/streams`, as nats-server lays out each account's streams
/// (the name made safe as a file name like a stream's).
pub(crate) fn account_streams_dir(store_dir: &Path, account: &str) -> Result<PathBuf> {
    if account == ACCOUNT_DIR {
        return Ok(streams_dir(store_dir));
    }
    Ok(store_dir.join("jetstream").join(encode_name(account)?).join("streams"))
}

/// Turns a stream or consumer name into a safe file-name component (see the module docs).
pub(crate) fn encode_name(name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(FsError::BadName { name: name.into(), why: "empty" });
    }
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0xf));
        }
    }
    if out.len() > MAX_ENCODED {
        return Err(FsError::BadName { name: name.into(), why: "too long for a file name" });
    }
    Ok(out)
}

/// The inverse of [`encode_name`]; `None` for anything `encode_name` cannot have produced.
pub(crate) fn decode_name(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    let name = String::from_utf8(out).ok()?;
    // Only the canonical spelling counts, so one name has exactly one file.
    (!name.is_empty() && encode_name(&name).ok()? == encoded).then_some(name)
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n & 0xf)])
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The files of one stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamPaths {
    pub(crate) dir: PathBuf,
    pub(crate) meta: PathBuf,
    pub(crate) msgs: PathBuf,
    pub(crate) obs: PathBuf,
}

impl StreamPaths {
    pub(crate) fn new(dir: PathBuf) -> Self {
        StreamPaths { meta: dir.join(META_FILE), msgs: dir.join(MSGS_DIR), obs: dir.join(OBS_DIR), dir }
    }

    pub(crate) fn segment(&self, id: u64) -> PathBuf {
        self.msgs.join(format!("{id}{SEGMENT_EXT}"))
    }

    pub(crate) fn consumer(&self, encoded: &str) -> PathBuf {
        self.obs.join(format!("{encoded}.json"))
    }
}

/// The id of a segment file name (`17.blk` → 17). Digits only, so `+1.blk` or `01.blk`
/// (which would alias `1.blk`) are not segments.
pub(crate) fn parse_segment_name(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(SEGMENT_EXT)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// `path` + `suffix` (`x.blk` → `x.blk.tmp`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Replaces `path` with `data` so a reader sees the old content or the new, never a mix:
/// write a temporary file, optionally fsync it, rename it over, optionally fsync the
/// directory. `sync_file` makes the content durable before its name replaces the old one (a
/// power loss or a failed writeback then cannot leave the name on lost bytes); `sync_parent`
/// makes the rename itself durable before returning. What is not fsynced here (the returned
/// handle, the directory) is the caller's to fsync with its next sync.
pub(crate) fn write_atomic(
    fs: &dyn Fs,
    path: &Path,
    data: &[u8],
    sync_file: bool,
    sync_parent: bool,
) -> Result<Handle> {
    let tmp = with_suffix(path, TMP_EXT);
    let file = fs.open(&tmp, OpenMode::Truncate).map_err(FsError::io("create", &tmp))?;
    file.append(data).map_err(FsError::io("write", &tmp))?;
    if sync_file {
        file.sync_all().map_err(FsError::io("fsync", &tmp))?;
    }
    fs.rename(&tmp, path).map_err(FsError::io("rename", &tmp))?;
    if sync_parent {
        if let Some(parent) = path.parent() {
            sync_dir(fs, parent)?;
        }
    }
    Ok(file)
}

/// Makes the directory's entries (files created, renamed, removed) durable. Only Unix can
/// open a directory for this; elsewhere the file system's own ordering is all there is.
pub(crate) fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    if let Some(d) = open_dir(fs, dir)? {
        d.sync_all().map_err(FsError::io("fsync", dir))?;
    }
    Ok(())
}

/// A handle on a directory that can be fsynced later, where the platform allows it.
pub(crate) fn open_dir(fs: &dyn Fs, dir: &Path) -> Result<Option<Handle>> {
    fs.open_dir(dir).map_err(FsError::io("open", dir))
}

/// Creates `dir` and its parents. A directory created but not fsynced into its parent
/// vanishes at a power loss with everything in it: with `durable` each new entry is fsynced
/// before returning; otherwise the parents whose entries changed are returned, for the
/// caller to fsync with its next sync.
pub(crate) fn create_dir(fs: &dyn Fs, dir: &Path, durable: bool) -> Result<Vec<PathBuf>> {
    let created = fs.create_dir_all(dir).map_err(FsError::io("create directory", dir))?;
    let parents: Vec<PathBuf> = created.iter().filter_map(|d| d.parent().map(Path::to_path_buf)).collect();
    if !durable {
        return Ok(parents);
    }
    for parent in &parents {
        sync_dir(fs, parent)?;
    }
    Ok(Vec::new())
}

/// Deletes leftover `*.tmp` files of interrupted atomic writes. Failures only warn: a stale
/// temporary file is harmless.
pub(crate) fn remove_tmp_files(fs: &dyn Fs, dir: &Path) {
    let Ok(entries) = fs.list(dir) else { return };
    for name in entries.into_iter().filter_map(|e| e.name) {
        if name.ends_with(TMP_EXT) {
            let path = dir.join(&name);
            if let Err(e) = fs.remove_file(&path) {
                tracing::warn!("cannot remove stale {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip_and_stay_inside() {
        for name in ["ORDERS", "a-b_c", "KV_bucket", "über", "a/b", "..", "a\\b", "x%y", "a b", "é.€"] {
            let enc = encode_name(name).unwrap();
            assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'%'), "{enc}");
            assert_eq!(decode_name(&enc).as_deref(), Some(name));
        }
        assert_eq!(encode_name("..").unwrap(), "%2E%2E");
        assert!(encode_name("").is_err());
        assert!(encode_name(&"x".repeat(241)).is_err());
        assert!(encode_name(&"é".repeat(50)).is_err(), "encoded length counts");
        for bad in ["", "a.b", "%2e", "%2", "%ZZ", "%41", "a b", "%FF"] {
            assert_eq!(decode_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn segment_names() {
        assert_eq!(parse_segment_name("1.blk"), Some(1));
        assert_eq!(parse_segment_name("1234.blk"), Some(1234));
        for bad in ["0001.blk", "+1.blk", ".blk", "1.blk.tmp", "1.idx", "a.blk", "99999999999999999999999.blk"] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }
}
