//! A simulated disk in the manner of LazyFS: an in-memory [`Fs`] that remembers, for every
//! file and directory, what is durable and what is only in the "page cache", so a test can
//! pull the plug and see what a real power loss would leave.
//!
//! What it models (POSIX's promises, taken strictly):
//! - File contents are durable up to the last successful `fsync`/`fdatasync` of the file
//!   (either flushes data and size alike here).
//! - Directory entries (a file or directory created, renamed, removed) are durable only once
//!   their directory is fsynced. A new file whose entry was never made durable is gone after
//!   a power loss however often the file itself was fsynced; a removed file whose removal was
//!   not made durable comes back.
//! - At a [`SimDisk::power_loss`], every file falls back to its durable content. A file that
//!   was written to since its last fsync (appended to, or written inside space allocated
//!   ahead, see [`FileHandle::allocate`]) may keep any prefix of the unsynced bytes (the
//!   kernel may have flushed some pages), and the last few of those kept bytes may be zeros
//!   (a torn write: the size or the allocation reached the disk, the data did not).
//! - A failed fsync (`EIO`, see [`SimDisk::fail_fsync_after`] and
//!   [`SimDisk::fail_one_fsync_after`]) loses the dirty data for good,
//!   as Linux does ("fsyncgate"): the pages are marked clean without being written, so a
//!   retried fsync succeeds but those bytes never reach the disk (they read back as their
//!   old content, or zeros past the old end).
//! - A full disk ([`SimDisk::set_capacity`]): a write that does not fit writes what fits and
//!   fails with `ENOSPC` (`StorageFull`).
//! - [`SimDisk::flip_bit`] damages durable data at rest.
//! - [`SimDisk::cut_power_after`] makes the power go in the middle of an operation (after
//!   any write, fsync or directory change), not only between them.
//!
//! Handles opened before a power loss are dead after it (every call fails), as the process
//! that held them would be. Randomness comes from the seeded generator each fault call is
//! given, so a run is reproducible from its seed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::vfs::{DirEntry, FileHandle, Fs, Handle, OpenMode};

type Ino = u64;
const ROOT: Ino = 0;

#[derive(Debug)]
enum Node {
    File {
        data: Vec<u8>,
        durable: Vec<u8>,
        /// Byte ranges whose writes a failed fsync threw away: they never reach the disk.
        lost: Vec<(usize, usize)>,
    },
    Dir {
        live: BTreeMap<OsString, Ino>,
        durable: BTreeMap<OsString, Ino>,
    },
}

#[derive(Debug, Default)]
struct State {
    /// Ordered, so a power loss draws its random choices file by file in the same order on
    /// every run (a hash map's order differs between runs, and so would the seed's outcome).
    nodes: BTreeMap<Ino, Node>,
    next_ino: Ino,
    /// Bumped by a power loss; older handles are dead.
    generation: u64,
    capacity: Option<u64>,
    /// Fsyncs that will still succeed; `None`: all of them.
    fsyncs_left: Option<u64>,
    /// Whether fsyncs keep failing after the first failure, or only that one fails.
    sticky: bool,
    /// Changes (writes, fsyncs, directory operations) still possible before the power
    /// goes; `None`: no cut planned.
    ops_left: Option<u64>,
    /// The power is out: every call fails until [`SimDisk::power_loss`] restarts the disk.
    dead: bool,
    /// A broken disk (for the test that the simulation can fail): a file's fsync reports
    /// success without making anything durable.
    skip_file_fsync: bool,
    stats: SimStats,
}

/// What happened on the disk so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SimStats {
    pub(crate) fsyncs: u64,
    pub(crate) failed_fsyncs: u64,
    pub(crate) power_losses: u64,
    /// Files that kept part of their unsynced tail at a power loss.
    pub(crate) torn_files: u64,
    pub(crate) enospc: u64,
    /// Power cuts in the middle of an operation ([`SimDisk::cut_power_after`]).
    pub(crate) cuts: u64,
}

/// The simulated disk; clones share it. Paths are absolute and rooted at `/`.
#[derive(Debug, Clone)]
pub(crate) struct SimDisk {
    state: Arc<Mutex<State>>,
}

fn err(kind: io::ErrorKind, what: &str) -> io::Error {
    io::Error::new(kind, what.to_owned())
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("EIO: {what}"))
}

impl Default for SimDisk {
    fn default() -> Self {
        Self::new()
    }
}

impl SimDisk {
    pub(crate) fn new() -> Self {
        let mut st = State { next_ino: ROOT + 1, ..State::default() };
        st.nodes.insert(ROOT, Node::Dir { live: BTreeMap::new(), durable: BTreeMap::new() });
        SimDisk { state: Arc::new(Mutex::new(st)) }
    }

    /// Limits the bytes all files may hold (`None`: unlimited).
    pub(crate) fn set_capacity(&self, bytes: Option<u64>) {
        self.state.lock().capacity = bytes;
    }

    /// Lets `n` more fsyncs succeed, then fails every one with `EIO` (`None`: never fail).
    pub(crate) fn fail_fsync_after(&self, n: Option<u64>) {
        let mut st = self.state.lock();
        st.fsyncs_left = n;
        st.sticky = true;
    }

    /// Lets `n` more fsyncs succeed and fails the next one only: the case that fooled
    /// PostgreSQL, where a retried fsync succeeds although the data is gone.
    pub(crate) fn fail_one_fsync_after(&self, n: u64) {
        let mut st = self.state.lock();
        st.fsyncs_left = Some(n);
        st.sticky = false;
    }

    /// Lets `n` more changes through, then the power goes in the middle of whatever the
    /// store was doing: every later call fails, until [`SimDisk::power_loss`].
    pub(crate) fn cut_power_after(&self, n: u64) {
        self.state.lock().ops_left = Some(n);
    }

    /// Makes every later fsync of a file succeed without doing anything (directories stay
    /// honest): a store that skips its fsync, which the simulation must catch.
    pub(crate) fn skip_file_fsyncs(&self) {
        self.state.lock().skip_file_fsync = true;
    }

    /// Whether the power is on and no cut is planned: a clean restart can run.
    pub(crate) fn steady(&self) -> bool {
        let st = self.state.lock();
        !st.dead && st.ops_left.is_none()
    }

    /// The state, if the power is on; a change counts towards [`SimDisk::cut_power_after`].
    fn op(&self, changes: bool) -> io::Result<parking_lot::MutexGuard<'_, State>> {
        let mut st = self.state.lock();
        st.tick(changes)?;
        Ok(st)
    }

    pub(crate) fn stats(&self) -> SimStats {
        self.state.lock().stats
    }

    /// Bytes held by the files reachable now.
    pub(crate) fn used(&self) -> u64 {
        self.state.lock().used()
    }

    /// Pulls the plug: everything not durable is lost (see the module docs), and every open
    /// handle dies.
    pub(crate) fn power_loss(&self, rng: &mut fastrand::Rng) {
        let mut st = self.state.lock();
        st.generation += 1;
        st.stats.power_losses += 1;
        st.dead = false;
        st.ops_left = None;
        let mut torn = 0;
        for node in st.nodes.values_mut() {
            match node {
                Node::Dir { live, durable } => *live = durable.clone(),
                Node::File { data, durable, lost } => {
                    let mut kept = durable.clone();
                    // Where the unsynced writes start: past the durable end (appends), or
                    // inside it (writes into space allocated ahead, still zeros on disk).
                    let from = data.iter().zip(durable.iter()).take_while(|(a, b)| a == b).count();
                    if data.len() >= durable.len() && from < data.len() && rng.bool() {
                        // Some of the unsynced pages reached the disk first: a prefix of
                        // what was written since the last fsync.
                        let extra = rng.usize(0..=data.len() - from);
                        if extra > 0 {
                            let end = from + extra;
                            kept.resize(kept.len().max(end), 0);
                            kept[from..end].copy_from_slice(&data[from..end]);
                            if rng.bool() {
                                let zeros = rng.usize(1..=extra.min(64));
                                kept[end - zeros..end].fill(0);
                            }
                            blank(&mut kept, lost, durable);
                            torn += 1;
                        }
                    }
                    *data = kept.clone();
                    *durable = kept;
                    // the file is now what the disk holds: later writes are new data
                    lost.clear();
                }
            }
        }
        st.stats.torn_files += torn;
        st.collect();
    }

    /// Flips one random bit of `path`'s durable content (and of what a reader sees).
    /// Returns the byte offset, or `None` if the file is missing or empty.
    pub(crate) fn flip_bit(&self, path: &Path, rng: &mut fastrand::Rng) -> Option<usize> {
        let mut st = self.state.lock();
        let ino = st.resolve(path).ok()?;
        let Some(Node::File { data, durable, .. }) = st.nodes.get_mut(&ino) else { return None };
        if durable.is_empty() {
            return None;
        }
        let at = rng.usize(0..durable.len());
        let bit = 1u8 << rng.u8(0..8);
        durable[at] ^= bit;
        if let Some(b) = data.get_mut(at) {
            *b ^= bit;
        }
        Some(at)
    }

    /// Every file under `dir` (recursively), for tests that pick one to damage.
    pub(crate) fn files_under(&self, dir: &Path) -> Vec<PathBuf> {
        let st = self.state.lock();
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            let Ok(ino) = st.resolve(&d) else { continue };
            if let Some(Node::Dir { live, .. }) = st.nodes.get(&ino) {
                for (name, child) in live {
                    match st.nodes.get(child) {
                        Some(Node::Dir { .. }) => todo.push(d.join(name)),
                        Some(Node::File { .. }) => out.push(d.join(name)),
                        None => {}
                    }
                }
            }
        }
        out.sort();
        out
    }

    fn handle(&self, ino: Ino, generation: u64) -> Handle {
        Arc::new(SimFile { disk: Arc::clone(&self.state), ino, generation })
    }
}

/// Overwrites the `lost` ranges of `out` with what the disk held before (`old`), or zeros.
fn blank(out: &mut [u8], lost: &[(usize, usize)], old: &[u8]) {
    for &(lo, hi) in lost {
        for i in lo..hi.min(out.len()) {
            out[i] = old.get(i).copied().unwrap_or(0);
        }
    }
}

impl State {
    fn tick(&mut self, changes: bool) -> io::Result<()> {
        if self.dead {
            return Err(eio("the power is out"));
        }
        if changes {
            if let Some(n) = &mut self.ops_left {
                if *n == 0 {
                    self.dead = true;
                    self.stats.cuts += 1;
                    return Err(eio("the power is out"));
                }
                *n -= 1;
            }
        }
        Ok(())
    }

    fn used(&self) -> u64 {
        let mut total = 0;
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            match self.nodes.get(&ino) {
                Some(Node::Dir { live, .. }) => todo.extend(live.values()),
                Some(Node::File { data, .. }) => total += data.len() as u64,
                None => {}
            }
        }
        total
    }

    /// Drops nodes no directory (live or durable) refers to any more.
    fn collect(&mut self) {
        let mut seen = std::collections::HashSet::new();
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if !seen.insert(ino) {
                continue;
            }
            if let Some(Node::Dir { live, durable }) = self.nodes.get(&ino) {
                todo.extend(live.values().chain(durable.values()));
            }
        }
        self.nodes.retain(|ino, _| seen.contains(ino));
    }

    fn resolve(&self, path: &Path) -> io::Result<Ino> {
        let mut ino = ROOT;
        for c in path.components() {
            match c {
                Component::RootDir => {}
                Component::Normal(name) => {
                    let Some(Node::Dir { live, .. }) = self.nodes.get(&ino) else {
                        return Err(err(io::ErrorKind::NotFound, "not a directory"));
                    };
                    ino = *live.get(name).ok_or_else(|| err(io::ErrorKind::NotFound, "no such file"))?;
                }
                _ => return Err(err(io::ErrorKind::InvalidInput, "paths must be absolute and plain")),
            }
        }
        Ok(ino)
    }

    /// The directory holding `path`, and `path`'s name in it.
    fn parent(&self, path: &Path) -> io::Result<(Ino, OsString)> {
        let name = path.file_name().ok_or_else(|| err(io::ErrorKind::InvalidInput, "no file name"))?;
        let dir = self.resolve(path.parent().unwrap_or(Path::new("/")))?;
        match self.nodes.get(&dir) {
            Some(Node::Dir { .. }) => Ok((dir, name.to_owned())),
            _ => Err(err(io::ErrorKind::NotFound, "parent is not a directory")),
        }
    }

    fn entries(&mut self, dir: Ino) -> &mut BTreeMap<OsString, Ino> {
        match self.nodes.get_mut(&dir) {
            Some(Node::Dir { live, .. }) => live,
            // `parent` checked it is a directory
            _ => unreachable!("not a directory"),
        }
    }

    fn add(&mut self, node: Node) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        ino
    }
}

impl Fs for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut st = self.op(true)?;
        let mut created = Vec::new();
        let mut at = PathBuf::from("/");
        for c in dir.components().skip_while(|c| matches!(c, Component::RootDir)) {
            let Component::Normal(name) = c else {
                return Err(err(io::ErrorKind::InvalidInput, "paths must be absolute and plain"));
            };
            let parent = st.resolve(&at)?;
            at.push(name);
            match st.entries_of(parent)?.get(name).copied() {
                Some(ino) if matches!(st.nodes.get(&ino), Some(Node::Dir { .. })) => {}
                Some(_) => return Err(err(io::ErrorKind::AlreadyExists, "a file is in the way")),
                None => {
                    let ino = st.add(Node::Dir { live: BTreeMap::new(), durable: BTreeMap::new() });
                    st.entries(parent).insert(name.to_owned(), ino);
                    created.push(at.clone());
                }
            }
        }
        Ok(created)
    }

    fn exists(&self, path: &Path) -> bool {
        self.op(false).is_ok_and(|st| st.resolve(path).is_ok())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = self.op(false)?;
        match st.nodes.get(&st.resolve(path)?) {
            Some(Node::File { data, .. }) => Ok(data.clone()),
            _ => Err(err(io::ErrorKind::IsADirectory, "is a directory")),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let st = self.op(false)?;
        let ino = st.resolve(dir)?;
        let Some(Node::Dir { live, .. }) = st.nodes.get(&ino) else {
            return Err(err(io::ErrorKind::NotADirectory, "not a directory"));
        };
        Ok(live
            .iter()
            .map(|(name, child)| DirEntry {
                name: name.to_str().map(str::to_owned),
                is_dir: matches!(st.nodes.get(child), Some(Node::Dir { .. })),
            })
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.op(true)?;
        let (src, src_name) = st.parent(from)?;
        let (dst, dst_name) = st.parent(to)?;
        let ino = st.entries(src).remove(&src_name).ok_or_else(|| err(io::ErrorKind::NotFound, "no such file"))?;
        st.entries(dst).insert(dst_name, ino);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.op(true)?;
        let (dir, name) = st.parent(path)?;
        let ino = st.entries_of(dir)?.get(&name).copied();
        match ino.and_then(|ino| st.nodes.get(&ino)) {
            Some(Node::File { .. }) => {
                st.entries(dir).remove(&name);
                Ok(())
            }
            Some(Node::Dir { .. }) => Err(err(io::ErrorKind::IsADirectory, "is a directory")),
            None => Err(err(io::ErrorKind::NotFound, "no such file")),
        }
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.op(true)?;
        let (dir, name) = st.parent(path)?;
        st.entries(dir).remove(&name).map(|_| ()).ok_or_else(|| err(io::ErrorKind::NotFound, "no such directory"))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Handle> {
        let mut st = self.op(true)?;
        let existing = st.resolve(path).ok();
        let ino = match (existing, mode) {
            (Some(ino), _) if matches!(st.nodes.get(&ino), Some(Node::Dir { .. })) => {
                return Err(err(io::ErrorKind::IsADirectory, "is a directory"))
            }
            (Some(_), OpenMode::CreateNew) => return Err(err(io::ErrorKind::AlreadyExists, "file exists")),
            (Some(ino), OpenMode::Truncate) => {
                if let Some(Node::File { data, lost, .. }) = st.nodes.get_mut(&ino) {
                    data.clear();
                    // what is written from now on is new data, not the pages a failed
                    // fsync dropped
                    lost.clear();
                }
                ino
            }
            (Some(ino), _) => ino,
            (None, OpenMode::Read | OpenMode::Write) => return Err(err(io::ErrorKind::NotFound, "no such file")),
            (None, _) => {
                let (dir, name) = st.parent(path)?;
                let ino = st.add(Node::File { data: Vec::new(), durable: Vec::new(), lost: Vec::new() });
                st.entries(dir).insert(name, ino);
                ino
            }
        };
        Ok(self.handle(ino, st.generation))
    }

    fn open_dir(&self, dir: &Path) -> io::Result<Option<Handle>> {
        let st = self.op(false)?;
        let ino = st.resolve(dir)?;
        match st.nodes.get(&ino) {
            Some(Node::Dir { .. }) => Ok(Some(self.handle(ino, st.generation))),
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }
}

impl State {
    fn entries_of(&self, dir: Ino) -> io::Result<&BTreeMap<OsString, Ino>> {
        match self.nodes.get(&dir) {
            Some(Node::Dir { live, .. }) => Ok(live),
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }
}

/// An open file or directory of a [`SimDisk`].
struct SimFile {
    disk: Arc<Mutex<State>>,
    ino: Ino,
    generation: u64,
}

impl SimFile {
    fn with<T>(&self, changes: bool, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut st = self.disk.lock();
        if st.generation != self.generation {
            return Err(eio("handle from before a power loss"));
        }
        st.tick(changes)?;
        f(&mut st)
    }

    fn fsync(&self) -> io::Result<()> {
        let ino = self.ino;
        self.with(true, |st| {
            st.stats.fsyncs += 1;
            let fail = match &mut st.fsyncs_left {
                Some(0) => true,
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            };
            if fail {
                st.stats.failed_fsyncs += 1;
                if !st.sticky {
                    st.fsyncs_left = None;
                }
            }
            let skip = st.skip_file_fsync;
            match st.nodes.get_mut(&ino) {
                Some(Node::Dir { live, durable }) => {
                    if fail {
                        return Err(eio("fsync of a directory"));
                    }
                    *durable = live.clone();
                }
                Some(Node::File { data, durable, lost }) => {
                    if fail {
                        // The dirty pages are dropped as if written: their bytes are lost.
                        let same = data.iter().zip(durable.iter()).take_while(|(a, b)| a == b).count();
                        if same < data.len() {
                            lost.push((same, data.len()));
                        }
                        return Err(eio("fsync"));
                    }
                    if skip {
                        return Ok(());
                    }
                    let mut now = data.clone();
                    blank(&mut now, lost, durable);
                    *durable = now;
                }
                None => return Err(eio("fsync of a vanished file")),
            }
            Ok(())
        })
    }
}

impl FileHandle for SimFile {
    fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let ino = self.ino;
        self.with(true, |st| {
            let room = st.capacity.map_or(u64::MAX, |cap| cap.saturating_sub(st.used()));
            let fits = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
            if fits < bytes.len() {
                st.stats.enospc += 1;
            }
            let Some(Node::File { data, .. }) = st.nodes.get_mut(&ino) else { return Err(eio("not a file")) };
            data.extend_from_slice(&bytes[..fits]);
            if fits < bytes.len() {
                return Err(err(io::ErrorKind::StorageFull, "no space left on device"));
            }
            Ok(())
        })
    }

    fn write_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let ino = self.ino;
        self.with(true, |st| {
            let at = usize::try_from(offset).map_err(|_| err(io::ErrorKind::InvalidInput, "too far"))?;
            let len = match st.nodes.get(&ino) {
                Some(Node::File { data, .. }) => data.len(),
                _ => return Err(eio("not a file")),
            };
            // only growth takes space: the file may reach `len + room` bytes
            let room = st.capacity.map_or(u64::MAX, |cap| cap.saturating_sub(st.used()));
            let limit = len.saturating_add(usize::try_from(room).unwrap_or(usize::MAX));
            let fits = limit.saturating_sub(at).min(bytes.len());
            if fits < bytes.len() {
                st.stats.enospc += 1;
            }
            let Some(Node::File { data, .. }) = st.nodes.get_mut(&ino) else { return Err(eio("not a file")) };
            let end = at + fits;
            if data.len() < end {
                data.resize(end, 0);
            }
            data[at..end].copy_from_slice(&bytes[..fits]);
            if fits < bytes.len() {
                return Err(err(io::ErrorKind::StorageFull, "no space left on device"));
            }
            Ok(())
        })
    }

    /// Zeros, as `fallocate` leaves them; takes space like a write (a full disk allocates
    /// what fits and fails).
    fn allocate(&self, len: u64) -> io::Result<()> {
        let ino = self.ino;
        self.with(true, |st| {
            let want = usize::try_from(len).map_err(|_| err(io::ErrorKind::InvalidInput, "too long"))?;
            let room = st.capacity.map_or(u64::MAX, |cap| cap.saturating_sub(st.used()));
            let room = usize::try_from(room).unwrap_or(usize::MAX);
            let Some(Node::File { data, .. }) = st.nodes.get_mut(&ino) else { return Err(eio("not a file")) };
            if data.len() >= want {
                return Ok(());
            }
            let grows = want - data.len();
            if grows > room {
                // like ext4, which extends the size as it allocates: what fits is kept
                let n = data.len() + room;
                data.resize(n, 0);
                st.stats.enospc += 1;
                return Err(err(io::ErrorKind::StorageFull, "no space left on device"));
            }
            data.resize(want, 0);
            Ok(())
        })
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let ino = self.ino;
        self.with(false, |st| {
            let Some(Node::File { data, .. }) = st.nodes.get(&ino) else { return Err(eio("not a file")) };
            let at = usize::try_from(offset).map_err(|_| err(io::ErrorKind::UnexpectedEof, "past the end"))?;
            let src = data
                .get(at..at.saturating_add(buf.len()))
                .ok_or_else(|| err(io::ErrorKind::UnexpectedEof, "past the end"))?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let ino = self.ino;
        self.with(true, |st| {
            let Some(Node::File { data, lost, .. }) = st.nodes.get_mut(&ino) else { return Err(eio("not a file")) };
            let len = usize::try_from(len).map_err(|_| err(io::ErrorKind::InvalidInput, "too long"))?;
            data.resize(len, 0);
            // bytes cut off and written again later are new data
            lost.retain_mut(|r| {
                r.1 = r.1.min(len);
                r.0 < r.1
            });
            Ok(())
        })
    }

    fn size(&self) -> io::Result<u64> {
        let ino = self.ino;
        self.with(false, |st| match st.nodes.get(&ino) {
            Some(Node::File { data, .. }) => Ok(data.len() as u64),
            _ => Err(eio("not a file")),
        })
    }

    fn sync_all(&self) -> io::Result<()> {
        self.fsync()
    }

    fn sync_data(&self) -> io::Result<()> {
        self.fsync()
    }
}
