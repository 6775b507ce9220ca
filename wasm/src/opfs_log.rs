//! The OPFS store's file format: an append-only log of key/value writes, framed so that a
//! torn or corrupt tail is found and dropped when the log is read back.
//!
//! The store holds the same records as the IndexedDB one (the journal's blocks and meta, the
//! link's outbox; [`crate::idb`] decides what they are): the file knows keys and values, never
//! JetStream. Each commit is one frame, written and flushed in one call, so a crash leaves
//! every flushed frame intact and at most one torn frame at the end.
//!
//! Frame: `len u32 LE ‖ crc u32 LE ‖ body`, the CRC-32 over `len ‖ body`. Body: a kind byte —
//! `B` (base: `gen u64 LE`, then writes; the first frame of a file) or `A` (more writes) —
//! then writes, each `op u8 ‖ tag u8 ‖ key len u32 ‖ key [‖ value len u32 ‖ value]`. A
//! write may put a value, delete keys (one, a prefix, up to a key) or extend a value: the
//! journal's blocks grow by appends, and a commit writes only what it added to them.
//!
//! Two files take turns ([`crate::opfs`]): compaction writes the live records as one base
//! frame with the next generation into the idle file, flushes it, and only then empties the
//! other one. Reading picks the file whose base frame is whole and newest, so a crash in the
//! middle of a compaction leaves the older, complete file in charge.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;

/// Record families, as IndexedDB's object stores.
pub const TAG_META: u8 = b'm';
pub const TAG_BLOCK: u8 = b'b';
pub const TAG_OUTBOX: u8 = b'o';

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
/// Deletes every key starting with the given one.
const OP_DELETE_PREFIX: u8 = 3;
/// Deletes every key up to and including the given one.
const OP_DELETE_UPTO: u8 = 4;
/// Adds bytes at the end of a key's value.
const OP_EXTEND: u8 = 5;

/// A value extended this many times is joined into one buffer, so a block filled one
/// message per commit does not keep hundreds of small slices (each holding its frame).
const MAX_PIECES: usize = 32;

const KIND_BASE: u8 = b'B';
const KIND_APPEND: u8 = b'A';
const HEAD: usize = 8;

/// CRC-32 (IEEE) tables for slicing by 8 (8 KiB), built once at run time rather than at
/// compile time: a constant table would add its 8 KiB to the page's bundle, where building
/// it costs about 20 µs at the first frame. Eight bytes per step run about four times as fast
/// as one, which matters when an open checks every frame of a large log.
fn crc_tables() -> &'static [[u32; 256]; 8] {
    static TABLES: OnceLock<Box<[[u32; 256]; 8]>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut t = Box::new([[0u32; 256]; 8]);
        for i in 0..256 {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            t[0][i] = c;
        }
        for i in 0..256 {
            for k in 1..8 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            }
        }
        t
    })
}

fn crc32(parts: &[&[u8]]) -> u32 {
    let t = crc_tables();
    let mut c = !0u32;
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for b in &mut chunks {
            let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            c = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][b[4] as usize]
                ^ t[2][b[5] as usize]
                ^ t[1][b[6] as usize]
                ^ t[0][b[7] as usize];
        }
        for &b in chunks.remainder() {
            c = t[0][((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
    }
    !c
}

/// One commit's writes, encoded as a frame while the caller hands them over: the header's
/// room is kept at the front and filled in by [`Batch::frame`], so the frame is never copied.
pub struct Batch {
    buf: Vec<u8>,
}

impl Batch {
    fn with_kind(kind: u8, capacity: usize) -> Batch {
        let mut buf = Vec::with_capacity(HEAD + 1 + capacity);
        buf.extend_from_slice(&[0; HEAD]);
        buf.push(kind);
        Batch { buf }
    }

    /// Writes to append to the current file.
    pub fn append() -> Batch {
        Batch::with_kind(KIND_APPEND, 0)
    }

    fn base(gen: u64, capacity: usize) -> Batch {
        let mut b = Batch::with_kind(KIND_BASE, 8 + capacity);
        b.buf.extend_from_slice(&gen.to_le_bytes());
        b
    }

    fn key(&mut self, op: u8, tag: u8, key: &str) {
        self.buf.push(op);
        self.buf.push(tag);
        self.buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(key.as_bytes());
    }

    pub fn put(&mut self, tag: u8, key: &str, value: &[u8]) {
        self.put_pieces(tag, key, std::slice::from_ref(&value));
    }

    /// A put of the value the pieces make one after the other.
    fn put_pieces(&mut self, tag: u8, key: &str, pieces: &[impl AsRef<[u8]>]) {
        self.key(OP_PUT, tag, key);
        let len: usize = pieces.iter().map(|p| p.as_ref().len()).sum();
        self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        for p in pieces {
            self.buf.extend_from_slice(p.as_ref());
        }
    }

    /// Adds `tail` at the end of the value of `key`.
    pub fn extend(&mut self, tag: u8, key: &str, tail: &[u8]) {
        self.key(OP_EXTEND, tag, key);
        self.buf.extend_from_slice(&(tail.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(tail);
    }

    pub fn delete(&mut self, tag: u8, key: &str) {
        self.key(OP_DELETE, tag, key);
    }

    pub fn delete_prefix(&mut self, tag: u8, prefix: &str) {
        self.key(OP_DELETE_PREFIX, tag, prefix);
    }

    pub fn delete_upto(&mut self, tag: u8, last: &str) {
        self.key(OP_DELETE_UPTO, tag, last);
    }

    /// Whether no write was added.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= HEAD + 1
    }

    /// The frame: length, checksum, body.
    pub fn frame(mut self) -> Vec<u8> {
        let len = ((self.buf.len() - HEAD) as u32).to_le_bytes();
        let crc = crc32(&[&len, &self.buf[HEAD..]]);
        self.buf[..4].copy_from_slice(&len);
        self.buf[4..HEAD].copy_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

/// The live records: what replaying the log gives. Values are slices of the frames they
/// came in (the file read at open, each commit's frame), not copies: an open of a large log
/// then holds its bytes once, shared with the journal's decoded blocks. An extended value is
/// its pieces in order, joined when they are many ([`MAX_PIECES`]) or when it is read.
#[derive(Default, Debug)]
pub struct State {
    map: BTreeMap<(u8, String), Vec<Bytes>>,
    /// Bytes a compacted log would take, about.
    live: usize,
}

impl State {
    fn put(&mut self, tag: u8, key: String, value: Bytes) {
        let klen = key.len();
        self.live += klen + value.len() + 10;
        if let Some(old) = self.map.insert((tag, key), vec![value]) {
            self.live = self.live.saturating_sub(klen + size(&old) + 10);
        }
    }

    /// Adds `tail` to the value of `key` (a key never put is put, as the tail alone).
    fn extend(&mut self, tag: u8, key: &str, tail: Bytes) {
        let Some(pieces) = self.map.get_mut(&(tag, key.to_string())) else {
            return self.put(tag, key.into(), tail);
        };
        self.live += tail.len();
        pieces.push(tail);
        if pieces.len() >= MAX_PIECES {
            *pieces = vec![join(pieces)];
        }
    }

    fn remove_key(&mut self, k: &(u8, String)) {
        if let Some(v) = self.map.remove(k) {
            self.live = self.live.saturating_sub(k.1.len() + size(&v) + 10);
        }
    }

    /// Applies parsed writes, in order; values are sliced out of `frame`.
    fn apply(&mut self, frame: &Bytes, ops: Vec<Write<'_>>) {
        for op in ops {
            match op {
                Write::Put(tag, key, value) => self.put(tag, key.into(), frame.slice_ref(value)),
                Write::Extend(tag, key, tail) => self.extend(tag, key, frame.slice_ref(tail)),
                Write::Delete(tag, key) => self.remove_key(&(tag, key.into())),
                Write::Prefix(tag, prefix) => {
                    let doomed: Vec<(u8, String)> = self
                        .map
                        .range((tag, prefix.to_string())..)
                        .take_while(|((t, k), _)| *t == tag && k.starts_with(prefix))
                        .map(|(k, _)| k.clone())
                        .collect();
                    doomed.iter().for_each(|k| self.remove_key(k));
                }
                Write::UpTo(tag, last) => {
                    let doomed: Vec<(u8, String)> = self
                        .map
                        .range((tag, String::new())..=(tag, last.to_string()))
                        .map(|(k, _)| k.clone())
                        .collect();
                    doomed.iter().for_each(|k| self.remove_key(k));
                }
            }
        }
    }

    /// Applies a frame that was handed to the file (so the state stays what the file holds).
    pub fn apply_batch(&mut self, frame: &Bytes) {
        // our own encoding: it parses
        if let Some(ops) = frame.get(HEAD + 1..).and_then(parse) {
            self.apply(frame, ops);
        }
    }

    /// The live records as one base frame of generation `gen` (compaction).
    pub fn snapshot(&self, gen: u64) -> Vec<u8> {
        let mut b = Batch::base(gen, self.live);
        for ((tag, key), pieces) in &self.map {
            b.put_pieces(*tag, key, pieces);
        }
        b.frame()
    }

    /// Copies every value out of the buffers it was sliced from, so that those (a log read
    /// at open that is mostly superseded writes) can be freed.
    fn unshare(&mut self) {
        for v in self.map.values_mut() {
            *v = vec![Bytes::from(v.concat())];
        }
    }

    /// Bytes a compacted log would take, about.
    pub fn live(&self) -> usize {
        self.live
    }

    /// The records of one family, by key (the values shared, not copied).
    pub fn records(&self, tag: u8) -> Vec<(String, Bytes)> {
        self.map
            .range((tag, String::new())..)
            .take_while(|((t, _), _)| *t == tag)
            .map(|((_, k), v)| (k.clone(), join(v)))
            .collect()
    }
}

/// Two states are equal when they hold the same values, however they are split in pieces.
impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.map.len() == other.map.len()
            && self.map.iter().zip(&other.map).all(|((k, a), (l, b))| k == l && join(a) == join(b))
    }
}

impl Eq for State {}

fn size(pieces: &[Bytes]) -> usize {
    pieces.iter().map(Bytes::len).sum()
}

/// A value in one buffer: its only piece shared, several copied into one.
fn join(pieces: &[Bytes]) -> Bytes {
    match pieces {
        [one] => one.clone(),
        more => Bytes::from(more.concat()),
    }
}

/// One write of a frame body, borrowed from the file's bytes.
enum Write<'a> {
    Put(u8, &'a str, &'a [u8]),
    Extend(u8, &'a str, &'a [u8]),
    Delete(u8, &'a str),
    Prefix(u8, &'a str),
    UpTo(u8, &'a str),
}

/// A frame body's writes (after its kind byte); `None` if it is malformed, so that a body
/// which passed its checksum but does not decode ends the log before any of it is applied.
fn parse(mut body: &[u8]) -> Option<Vec<Write<'_>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Some(head)
    }
    fn len(b: &mut &[u8]) -> Option<usize> {
        let raw = take(b, 4)?;
        Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    }
    let mut ops = Vec::new();
    while !body.is_empty() {
        let head = take(&mut body, 2)?;
        let (op, tag) = (head[0], head[1]);
        let n = len(&mut body)?;
        let key = std::str::from_utf8(take(&mut body, n)?).ok()?;
        ops.push(match op {
            OP_PUT => {
                let n = len(&mut body)?;
                Write::Put(tag, key, take(&mut body, n)?)
            }
            OP_EXTEND => {
                let n = len(&mut body)?;
                Write::Extend(tag, key, take(&mut body, n)?)
            }
            OP_DELETE => Write::Delete(tag, key),
            OP_DELETE_PREFIX => Write::Prefix(tag, key),
            OP_DELETE_UPTO => Write::UpTo(tag, key),
            _ => return None,
        });
    }
    Some(ops)
}

/// What reading one file gave.
#[derive(Debug)]
pub struct Replayed {
    pub state: State,
    pub gen: u64,
    /// Length of the whole frames; anything after it is a torn or corrupt tail.
    pub valid_len: usize,
}

/// The next whole frame's body at `at`, and where the frame ends.
fn next_frame(file: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let head = file.get(at..at.checked_add(HEAD)?)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let end = at.checked_add(HEAD)?.checked_add(len)?;
    let body = file.get(at + HEAD..end)?;
    (crc32(&[&head[..4], body]) == crc).then_some((body, end))
}

/// Reads a file: `None` if it does not start with a whole base frame (empty, or a
/// compaction that never finished). Stops at the first frame that is torn, fails its
/// checksum or does not decode. The state's values are slices of `file`, unless most of
/// the file is superseded writes: then they are copied, so the file's buffer can go.
pub fn replay(file: &Bytes) -> Option<Replayed> {
    let (body, mut at) = next_frame(file, 0)?;
    if body.first() != Some(&KIND_BASE) || body.len() < 9 {
        return None;
    }
    let mut gen_bytes = [0u8; 8];
    gen_bytes.copy_from_slice(&body[1..9]);
    let mut state = State::default();
    state.apply(file, parse(&body[9..])?);
    while let Some((body, end)) = next_frame(file, at) {
        if body.first() != Some(&KIND_APPEND) {
            break;
        }
        let Some(ops) = parse(&body[1..]) else { break };
        state.apply(file, ops);
        at = end;
    }
    if state.live.saturating_mul(2) < at {
        state.unshare();
    }
    Some(Replayed { state, gen: u64::from_le_bytes(gen_bytes), valid_len: at })
}

/// Picks the file in charge of two: the whole one with the newest generation.
pub fn choose(files: [&Bytes; 2]) -> Option<(usize, Replayed)> {
    let [a, b] = files.map(replay);
    match (a, b) {
        (Some(a), Some(b)) if b.gen > a.gen => Some((1, b)),
        (Some(a), _) => Some((0, a)),
        (None, Some(b)) => Some((1, b)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn replay(file: &[u8]) -> Option<Replayed> {
        super::replay(&Bytes::copy_from_slice(file))
    }

    fn choose(files: [&[u8]; 2]) -> Option<(usize, Replayed)> {
        super::choose(files.map(Bytes::copy_from_slice).each_ref())
    }

    fn log(gen: u64) -> Vec<u8> {
        State::default().snapshot(gen)
    }

    fn append(f: impl FnOnce(&mut Batch)) -> Vec<u8> {
        let mut b = Batch::append();
        f(&mut b);
        b.frame()
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
    }

    /// Slicing by 8 gives what the bit-by-bit definition gives, for every length and split.
    #[test]
    fn crc_by_eight_bytes_is_the_bitwise_crc() {
        fn bitwise(data: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                }
            }
            !c
        }
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(crc32(&[&data[..n]]), bitwise(&data[..n]), "length {n}");
        }
        for split in 0..40 {
            assert_eq!(crc32(&[&data[..split], &data[split..100]]), bitwise(&data[..100]), "split {split}");
        }
    }

    #[test]
    fn replays_puts_deletes_and_ranges() {
        let mut file = log(1);
        file.extend(append(|b| {
            b.put(TAG_BLOCK, "S\u{0}1", b"one");
            b.put(TAG_BLOCK, "S\u{0}2", b"two");
            b.put(TAG_BLOCK, "T\u{0}1", b"other");
            b.put(TAG_META, "s\u{0}S", b"{}");
            b.put(TAG_OUTBOX, "001", b"x");
            b.put(TAG_OUTBOX, "002", b"y");
            b.put(TAG_OUTBOX, "003", b"z");
        }));
        file.extend(append(|b| {
            b.delete_prefix(TAG_BLOCK, "S\u{0}");
            b.delete(TAG_META, "s\u{0}S");
            b.delete_upto(TAG_OUTBOX, "002");
            b.put(TAG_BLOCK, "T\u{0}1", b"replaced");
        }));
        let r = replay(&file).unwrap();
        assert_eq!(r.valid_len, file.len());
        assert_eq!(r.state.records(TAG_BLOCK), [("T\u{0}1".to_string(), Bytes::from_static(b"replaced"))]);
        assert!(r.state.records(TAG_META).is_empty());
        assert_eq!(r.state.records(TAG_OUTBOX), [("003".to_string(), Bytes::from_static(b"z"))]);
    }

    /// Extending a value across frames gives the value joined; a snapshot holds it whole;
    /// a value extended many times is still the same bytes (its pieces joined on the way).
    #[test]
    fn extends_join_across_frames() {
        let mut file = log(1);
        file.extend(append(|b| b.put(TAG_BLOCK, "k", b"ab")));
        let mut want = b"ab".to_vec();
        for i in 0..(MAX_PIECES as u8 * 2 + 3) {
            file.extend(append(|b| b.extend(TAG_BLOCK, "k", &[i, i])));
            want.extend([i, i]);
        }
        file.extend(append(|b| b.extend(TAG_BLOCK, "new", b"alone")));
        let r = replay(&file).unwrap();
        assert_eq!(r.valid_len, file.len());
        let records = r.state.records(TAG_BLOCK);
        assert_eq!(records, [("k".to_string(), Bytes::from(want)), ("new".to_string(), Bytes::from_static(b"alone"))]);
        let again = replay(&r.state.snapshot(2)).unwrap();
        assert_eq!(again.state, r.state);
        assert!(again.state.live() <= r.state.live());
    }

    /// Every cut of the last frame, and garbage after whole frames, leave exactly the whole
    /// frames: nothing acknowledged (flushed before) is lost, nothing half-written is read.
    #[test]
    fn a_torn_or_corrupt_tail_is_dropped() {
        let mut file = log(7);
        file.extend(append(|b| b.put(TAG_BLOCK, "k1", b"acknowledged")));
        let whole = file.len();
        let last = append(|b| b.put(TAG_BLOCK, "k2", &[5u8; 300]));
        for cut in 0..last.len() {
            let mut torn = file.clone();
            torn.extend_from_slice(&last[..cut]);
            let r = replay(&torn).unwrap();
            assert_eq!(r.valid_len, whole, "cut at {cut}");
            assert_eq!(r.state.records(TAG_BLOCK).len(), 1);
        }
        let mut flipped = file.clone();
        let mut bad = last.clone();
        let n = bad.len();
        bad[n - 3] ^= 0x40;
        flipped.extend(bad);
        assert_eq!(replay(&flipped).unwrap().valid_len, whole);
        let mut garbage = file.clone();
        garbage.extend((0..5000u32).map(|i| (i * 7919 % 251) as u8));
        let r = replay(&garbage).unwrap();
        assert_eq!((r.valid_len, r.gen), (whole, 7));
    }

    #[test]
    fn the_newest_whole_base_wins() {
        let mut state = State::default();
        state.apply_batch(&Bytes::from(append(|b| b.put(TAG_META, "a", b"1"))));
        let old = state.snapshot(3);
        state.apply_batch(&Bytes::from(append(|b| b.put(TAG_META, "b", b"2"))));
        let new = state.snapshot(4);
        assert_eq!(choose([&old, &new]).unwrap().0, 1);
        assert_eq!(choose([&new, &old]).unwrap().0, 0);
        // a compaction torn before its flush finished
        assert_eq!(choose([&old, &new[..new.len() - 1]]).unwrap().0, 0);
        assert!(choose([&[], &[1, 2, 3]]).is_none());
        let (_, r) = choose([&old, &new]).unwrap();
        assert_eq!(r.state, state);
    }
}
