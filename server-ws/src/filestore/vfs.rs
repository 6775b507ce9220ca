//! The file-system operations the store uses, behind a small trait, so that tests can run
//! the store on a simulated disk (`sim.rs`) that loses, tears and corrupts data the way a
//! real one does at a power loss. Production uses [`StdFs`]: plain `std::fs`, one system call
//! per operation as before; the only cost of the indirection is a virtual call.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only.
    Read,
    /// Read, and write at given offsets ([`FileHandle::write_at`]), creating the file if it
    /// is missing: a segment, whose space is allocated ahead of its records.
    ReadWrite,
    /// The same, for a file that must not exist yet.
    CreateNew,
    /// Write from the start, creating or emptying the file.
    Truncate,
    /// Write to an existing file (to cut its length).
    Write,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name; `None` when it is not valid UTF-8 (no store file ever is).
    pub name: Option<String>,
    pub is_dir: bool,
}

/// An open file or directory. A file is either written once from empty, in order
/// ([`FileHandle::append`], opened with [`OpenMode::Truncate`]), or is a segment, written at
/// offsets into space allocated ahead ([`FileHandle::write_at`], [`FileHandle::allocate`]).
pub trait FileHandle: Send + Sync {
    /// Writes all of `data` after what this handle wrote before, or fails (possibly after
    /// part of it).
    fn append(&self, data: &[u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, or fails (possibly after part of it).
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file at least `len` bytes long, the new bytes zeros in space the file
    /// system has already allocated (`fallocate`). A write into that space changes no
    /// metadata a later `fdatasync` must write (not the size, no block allocation), so the
    /// fsync of a sequential publish writes one block instead of the block and the inode.
    /// Where the platform cannot allocate ahead this does nothing (writes past the end then
    /// grow the file as they go); `Err` only for a real failure, such as a full disk.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// `fsync`: data and metadata (for a directory: its entries).
    fn sync_all(&self) -> io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
}

pub type Handle = Arc<dyn FileHandle>;

/// The file system under a store.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Creates `dir` and its missing parents; returns the directories it created, outermost
    /// first (their parents' entries must be fsynced to make them durable).
    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<std::path::PathBuf>>;
    fn exists(&self, path: &Path) -> bool;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Handle>;
    /// A handle on a directory to fsync its entries; `None` where the platform cannot.
    fn open_dir(&self, dir: &Path) -> io::Result<Option<Handle>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

impl Fs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            missing.push(d.to_path_buf());
            at = d.parent();
        }
        if missing.is_empty() {
            return Ok(missing);
        }
        fs::create_dir_all(dir)?;
        missing.reverse();
        Ok(missing)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            out.push(DirEntry {
                name: entry.file_name().to_str().map(str::to_owned),
                is_dir: entry.file_type().is_ok_and(|t| t.is_dir()),
            });
        }
        Ok(out)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Handle> {
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            // not `append`: Linux ignores pwrite's offset on an O_APPEND file
            OpenMode::ReadWrite => o.read(true).write(true).create(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
            OpenMode::Truncate => o.write(true).create(true).truncate(true),
            OpenMode::Write => o.write(true),
        };
        Ok(Arc::new(StdFile(o.open(path)?)))
    }

    fn open_dir(&self, dir: &Path) -> io::Result<Option<Handle>> {
        if cfg!(unix) {
            Ok(Some(Arc::new(StdFile(File::open(dir)?))))
        } else {
            Ok(None)
        }
    }
}

struct StdFile(File);

impl FileHandle for StdFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        (&self.0).write_all(data)
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(&self.0, data, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < data.len() {
                let n = std::os::windows::fs::FileExt::seek_write(&self.0, &data[done..], offset + done as u64)?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::fs::{fallocate, FallocateFlags};
            // mode 0: allocate `0..len` and extend the size to it; allocated blocks are
            // unchanged, so this never moves what is written
            match fallocate(&self.0, FallocateFlags::empty(), 0, len) {
                Ok(()) => Ok(()),
                Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = len;
            Ok(())
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
        }
        #[cfg(windows)]
        {
            let mut done = 0;
            while done < buf.len() {
                let n = std::os::windows::fs::FileExt::seek_read(&self.0, &mut buf[done..], offset + done as u64)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}
