//! The file store's own error type. It keeps the operation and the path so a log line can say
//! exactly which file failed, and maps onto the core's [`StoreError`] at the trait boundary.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use edgebus_core::jetstream::store::StoreError;

#[derive(Debug)]
pub(crate) enum FsError {
    /// A system call failed on `path`.
    Io { op: &'static str, path: PathBuf, err: io::Error },
    /// A stream or consumer name that cannot be a file name.
    BadName { name: String, why: &'static str },
    /// A message too large for the record format (a field over 4 GiB).
    TooLarge(&'static str),
    /// A record that failed its checksum when read back.
    Corrupt { path: PathBuf, offset: u64 },
    /// The stream is already open through another handle (opening it twice would interleave
    /// two writers in one log).
    AlreadyOpen(String),
    /// The stream was destroyed; the handle is dead.
    Destroyed,
    /// An fsync failed earlier: nothing more is written until a restart (see `sync.rs`).
    Failed(String),
}

impl FsError {
    pub(crate) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
        move |err| FsError::Io { op, path: path.to_path_buf(), err }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::Io { op, path, err } => write!(f, "{op} {}: {err}", path.display()),
            FsError::BadName { name, why } => write!(f, "invalid name {name:?}: {why}"),
            FsError::TooLarge(what) => write!(f, "{what} too large to store"),
            FsError::Corrupt { path, offset } => write!(f, "bad record in {} at offset {offset}", path.display()),
            FsError::AlreadyOpen(name) => write!(f, "stream {name:?} is already open"),
            FsError::Destroyed => f.write_str("stream was deleted"),
            FsError::Failed(why) => write!(f, "stream store failed ({why}); restart the server to recover it"),
        }
    }
}

impl std::error::Error for FsError {}

impl From<FsError> for StoreError {
    fn from(e: FsError) -> Self {
        match &e {
            FsError::Io { err, .. } if err.kind() == io::ErrorKind::StorageFull => StoreError::NoSpace,
            FsError::Io { err, .. } if err.kind() == io::ErrorKind::QuotaExceeded => StoreError::NoSpace,
            FsError::Corrupt { .. } => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Io(e.to_string()),
        }
    }
}

pub(crate) type Result<T, E = FsError> = std::result::Result<T, E>;
