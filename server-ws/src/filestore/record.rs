//! The record format of segment files, and the scanner that reads a segment back, skipping
//! damage.
//!
//! Every record is self-framed so a reader can tell a good record from garbage and find the
//! next good one after damage:
//!
//! ```text
//! magic  [EB 55 0B 1A]            4 bytes
//! len    u32 LE                   length of the body
//! crc    u32 LE                   CRC-32 of (len ‖ body), seeded by the segment id
//! body   kind u8, then by kind:
//!   1 message    flags u8 (bit 0: has headers; bit 1: pending, a message of an atomic
//!                batch that counts only once the batch's last message, the next record
//!                and sequence, follows it), seq u64, time u64, subject_len u32,
//!                headers_len u32, subject, headers, payload (the rest)
//!   2 tombstone  lo u64, hi u64: messages with lo <= seq < hi written earlier are gone
//! ```
//!
//! All integers are little-endian. The CRC covers the length so a damaged length cannot
//! pass, and is seeded by the segment id so records that happen to sit inside a payload
//! (someone storing a copy of a segment file in a stream) do not verify as records of the
//! segment that holds them when the scanner resynchronises after damage.

use bytes::Bytes;
use edgebus_core::jetstream::store::StoredMsg;

use super::error::{FsError, Result};

pub(crate) const MAGIC: [u8; 4] = [0xEB, 0x55, 0x0B, 0x1A];
/// Magic + length + CRC.
pub(crate) const HEAD: usize = 12;
const KIND_MSG: u8 = 1;
const KIND_TOMB: u8 = 2;
const FLAG_HEADERS: u8 = 1;
const FLAG_PENDING: u8 = 2;
/// kind + flags + seq + time + subject_len + headers_len.
const MSG_FIXED: usize = 1 + 1 + 8 + 8 + 4 + 4;
const TOMB_BODY: usize = 1 + 8 + 8;
/// Size of a whole tombstone record.
pub(crate) const TOMB_LEN: usize = HEAD + TOMB_BODY;

/// The CRC seed of a segment: the CRC of its id, so each segment's records verify only there.
pub(crate) fn seed(segment_id: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b"edgebus segment");
    h.update(&segment_id.to_le_bytes());
    h.finalize()
}

fn checksum(seed: u32, len: [u8; 4], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(&len);
    h.update(body);
    h.finalize()
}

/// Size of the whole record [`encode_msg`] writes for `msg`.
pub(crate) fn msg_len(msg: &StoredMsg) -> u64 {
    (HEAD + MSG_FIXED + msg.subject.len() + msg.headers.as_ref().map_or(0, |h| h.len()) + msg.payload.len()) as u64
}

/// A plain message record (the tests' shorthand for [`encode_msg_as`]).
#[cfg(test)]
pub(crate) fn encode_msg(buf: &mut Vec<u8>, seed: u32, msg: &StoredMsg) -> Result<()> {
    encode_msg_as(buf, seed, msg, false)
}

/// Encodes a message record into `buf` (cleared first), so the caller can write it with a
/// single `write` call; `pending` when it is not the last message of an atomic batch.
pub(crate) fn encode_msg_as(buf: &mut Vec<u8>, seed: u32, msg: &StoredMsg, pending: bool) -> Result<()> {
    let headers = msg.headers.as_deref();
    let subject_len = u32::try_from(msg.subject.len()).map_err(|_| FsError::TooLarge("subject"))?;
    let headers_len = u32::try_from(headers.map_or(0, <[u8]>::len)).map_err(|_| FsError::TooLarge("headers"))?;
    let body_len = MSG_FIXED + msg.subject.len() + headers.map_or(0, <[u8]>::len) + msg.payload.len();
    let body_len = u32::try_from(body_len).map_err(|_| FsError::TooLarge("message"))?;
    buf.clear();
    buf.reserve(HEAD + body_len as usize);
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&body_len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.push(KIND_MSG);
    buf.push(if headers.is_some() { FLAG_HEADERS } else { 0 } | if pending { FLAG_PENDING } else { 0 });
    buf.extend_from_slice(&msg.seq.to_le_bytes());
    buf.extend_from_slice(&msg.time.to_le_bytes());
    buf.extend_from_slice(&subject_len.to_le_bytes());
    buf.extend_from_slice(&headers_len.to_le_bytes());
    buf.extend_from_slice(&msg.subject);
    buf.extend_from_slice(headers.unwrap_or_default());
    buf.extend_from_slice(&msg.payload);
    seal(buf, seed);
    Ok(())
}

/// Encodes a tombstone for `lo..hi` into `buf` (cleared first).
pub(crate) fn encode_tomb(buf: &mut Vec<u8>, seed: u32, lo: u64, hi: u64) {
    buf.clear();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&(TOMB_BODY as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.push(KIND_TOMB);
    buf.extend_from_slice(&lo.to_le_bytes());
    buf.extend_from_slice(&hi.to_le_bytes());
    seal(buf, seed);
}

/// Clears the pending mark of the message record at the start of `rec` (a batch known to be
/// committed, copied by compaction away from the record that committed it), re-sealing it.
pub(crate) fn settle(rec: &mut [u8], seed: u32) {
    if rec.len() > HEAD + 1 && rec[HEAD] == KIND_MSG {
        rec[HEAD + 1] &= !FLAG_PENDING;
        seal(rec, seed);
    }
}

/// Fills in the CRC of the record in `buf`.
fn seal(buf: &mut [u8], seed: u32) {
    let (head, body) = buf.split_at_mut(HEAD);
    let len = [head[4], head[5], head[6], head[7]];
    head[8..12].copy_from_slice(&checksum(seed, len, body).to_le_bytes());
}

/// A message as it lies in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MsgRef<'a> {
    pub(crate) seq: u64,
    pub(crate) time: u64,
    pub(crate) subject: &'a [u8],
    pub(crate) headers: Option<&'a [u8]>,
    pub(crate) payload: &'a [u8],
    /// Part of an atomic batch whose commit is its successor record.
    pub(crate) pending: bool,
}

impl MsgRef<'_> {
    /// The message, sharing one allocation: `whole` must be the buffer this was parsed from.
    pub(crate) fn to_stored(self, whole: &Bytes) -> StoredMsg {
        StoredMsg {
            seq: self.seq,
            subject: whole.slice_ref(self.subject),
            headers: self.headers.map(|h| whole.slice_ref(h)),
            payload: whole.slice_ref(self.payload),
            time: self.time,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Msg(MsgRef<'a>),
    Tomb { lo: u64, hi: u64 },
}

/// The outcome of reading one record at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// A good record and its total length.
    Ok(Record<'a>, usize),
    /// Not a record: wrong magic, short, failed checksum, or malformed body.
    Bad,
}

/// Reads the record at the start of `buf`. Never panics, whatever the bytes.
pub(crate) fn parse(buf: &[u8], seed: u32) -> Parsed<'_> {
    let Some(head) = buf.get(..HEAD) else { return Parsed::Bad };
    if head[..4] != MAGIC {
        return Parsed::Bad;
    }
    let len = [head[4], head[5], head[6], head[7]];
    let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let Ok(body_len) = usize::try_from(u32::from_le_bytes(len)) else { return Parsed::Bad };
    let Some(body) = HEAD.checked_add(body_len).and_then(|end| buf.get(HEAD..end)) else { return Parsed::Bad };
    if checksum(seed, len, body) != crc {
        return Parsed::Bad;
    }
    match parse_body(body) {
        Some(rec) => Parsed::Ok(rec, HEAD + body_len),
        None => Parsed::Bad,
    }
}

fn parse_body(body: &[u8]) -> Option<Record<'_>> {
    let mut r = Reader(body);
    match r.u8()? {
        KIND_MSG => {
            let flags = r.u8()?;
            let seq = r.u64()?;
            let time = r.u64()?;
            let subject_len = usize::try_from(r.u32()?).ok()?;
            let headers_len = usize::try_from(r.u32()?).ok()?;
            let subject = r.take(subject_len)?;
            let headers = r.take(headers_len)?;
            if flags & FLAG_HEADERS == 0 && !headers.is_empty() {
                return None;
            }
            let headers = (flags & FLAG_HEADERS != 0).then_some(headers);
            let pending = flags & FLAG_PENDING != 0;
            Some(Record::Msg(MsgRef { seq, time, subject, headers, payload: r.0, pending }))
        }
        KIND_TOMB => {
            let lo = r.u64()?;
            let hi = r.u64()?;
            r.0.is_empty().then_some(Record::Tomb { lo, hi })
        }
        _ => None,
    }
}

/// A bounds-checked cursor over a record body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
}

/// What [`scan`] found wrong in a segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Garbage between good records, as (offset, length): skipped, the records around kept.
    pub(crate) skipped: Vec<(usize, usize)>,
    /// Where garbage runs to the end of the buffer with no good record after it (a torn
    /// final write): the offset to truncate at.
    pub(crate) tail: Option<usize>,
}

/// What [`scan`] read: where the records end, and any damage.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// The end of the log: after the last good record, before any damaged tail or the zeros
    /// of space allocated ahead ([`super::vfs::FileHandle::allocate`]), which are not damage.
    pub(crate) end: usize,
    pub(crate) damage: Damage,
}

/// Calls `f(offset, length, record)` for every good record in `buf`, in order. After a bad
/// record it resynchronises at the next offset holding a good record (magic, sane length and
/// a matching checksum), so one damaged record costs only itself. Zeros from a record's end
/// to the end of the buffer are space allocated ahead: the log ends there, cleanly. (No
/// record starts with a zero byte, and zeros between good records are damage as before: a
/// page that never reached the disk while a later one did.)
pub(crate) fn scan<'a>(buf: &'a [u8], seed: u32, mut f: impl FnMut(usize, usize, Record<'a>)) -> Scanned {
    let mut damage = Damage::default();
    let mut off = 0;
    while off < buf.len() {
        if let Parsed::Ok(rec, len) = parse(&buf[off..], seed) {
            f(off, len, rec);
            off += len;
            continue;
        }
        if buf[off..].iter().all(|&b| b == 0) {
            return Scanned { end: off, damage };
        }
        match resync(buf, off + 1, seed) {
            Some(next) => {
                damage.skipped.push((off, next - off));
                off = next;
            }
            None => {
                damage.tail = Some(off);
                return Scanned { end: off, damage };
            }
        }
    }
    Scanned { end: off, damage }
}

/// The first offset at or after `from` where a good record starts.
fn resync(buf: &[u8], from: usize, seed: u32) -> Option<usize> {
    let mut at = from;
    while let Some(rest) = buf.get(at..) {
        let i = rest.windows(MAGIC.len()).position(|w| w == MAGIC)?;
        let candidate = at + i;
        if matches!(parse(&buf[candidate..], seed), Parsed::Ok(..)) {
            return Some(candidate);
        }
        at = candidate + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn msg(seq: u64, headers: Option<&'static [u8]>) -> StoredMsg {
        StoredMsg {
            seq,
            subject: Bytes::from_static(b"orders.new"),
            headers: headers.map(Bytes::from_static),
            payload: Bytes::from(vec![seq as u8; seq as usize]),
            time: 1_700_000_000_000_000_000 + seq,
        }
    }

    #[test]
    fn round_trip() {
        let seed = seed(3);
        let mut buf = Vec::new();
        for m in [msg(1, None), msg(2, Some(b"NATS/1.0\r\nA: b\r\n\r\n")), msg(0, Some(b""))] {
            encode_msg(&mut buf, seed, &m).unwrap();
            let whole = Bytes::from(buf.clone());
            let Parsed::Ok(Record::Msg(r), len) = parse(&whole, seed) else { panic!("not parsed") };
            assert_eq!(len, buf.len());
            assert_eq!(msg_len(&m), len as u64);
            assert_eq!(r.to_stored(&whole), m);
        }
        encode_tomb(&mut buf, seed, 5, 9);
        assert_eq!(buf.len(), TOMB_LEN);
        assert_eq!(parse(&buf, seed), Parsed::Ok(Record::Tomb { lo: 5, hi: 9 }, TOMB_LEN));
        assert_eq!(parse(&buf, super::seed(4)), Parsed::Bad, "another segment's record");
    }

    #[test]
    fn every_damage_is_caught_without_panic() {
        let seed = seed(1);
        let mut buf = Vec::new();
        encode_msg(&mut buf, seed, &msg(7, Some(b"NATS/1.0\r\n\r\n"))).unwrap();
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut], seed), Parsed::Bad, "cut at {cut}");
        }
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                assert_eq!(parse(&b, seed), Parsed::Bad, "flip byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn scan_skips_damage_and_finds_the_tail() {
        let seed = seed(1);
        let mut file = Vec::new();
        let mut ends = Vec::new();
        let mut buf = Vec::new();
        for seq in 1..=5 {
            encode_msg(&mut buf, seed, &msg(seq, None)).unwrap();
            file.extend_from_slice(&buf);
            ends.push(file.len());
        }
        let seqs = |data: &[u8]| {
            let mut v = Vec::new();
            let d = scan(data, seed, |_, _, r| {
                if let Record::Msg(m) = r {
                    v.push(m.seq)
                }
            });
            (v, d.damage)
        };
        assert_eq!(seqs(&file), (vec![1, 2, 3, 4, 5], Damage::default()));
        // Damage inside record 3 (offset ends[1]..ends[2]).
        let mut bad = file.clone();
        bad[ends[1] + 20] ^= 0xff;
        let (v, d) = seqs(&bad);
        assert_eq!(v, [1, 2, 4, 5]);
        assert_eq!(d.skipped, [(ends[1], ends[2] - ends[1])]);
        assert_eq!(d.tail, None);
        // A torn last record.
        let (v, d) = seqs(&file[..ends[4] - 3]);
        assert_eq!(v, [1, 2, 3, 4]);
        assert_eq!(d.tail, Some(ends[3]));
        // Garbage only.
        let (v, d) = seqs(&[0xEB, 0x55, 0x0B, 0x1A, 1, 2, 3]);
        assert!(v.is_empty());
        assert_eq!(d.tail, Some(0));
    }

    /// Space allocated ahead of the records reads as zeros: the clean end of the log, at
    /// every length it may have (none, less than a record head, many pages), and before any
    /// record was written. A torn record followed by zeros is still a torn tail, and zeros
    /// with a record after them are still damage.
    #[test]
    fn zeros_after_the_records_are_the_end_not_damage() {
        let seed = seed(2);
        let mut file = Vec::new();
        let mut buf = Vec::new();
        for seq in 1..=3 {
            encode_msg(&mut buf, seed, &msg(seq, None)).unwrap();
            file.extend_from_slice(&buf);
        }
        let end = file.len();
        let count = |data: &[u8]| {
            let mut n = 0;
            (scan(data, seed, |_, _, _| n += 1), n)
        };
        for zeros in [0, 1, HEAD - 1, HEAD, 4096, 1 << 20] {
            let mut f = file.clone();
            f.resize(end + zeros, 0);
            assert_eq!(count(&f), (Scanned { end, damage: Damage::default() }, 3), "{zeros} zeros");
            assert_eq!(count(&f[end..]), (Scanned { end: 0, damage: Damage::default() }, 0), "only zeros");
        }
        // the first bytes of a fourth record reached the disk, the rest did not
        encode_msg(&mut buf, seed, &msg(4, None)).unwrap();
        let mut torn = file.clone();
        torn.extend_from_slice(&buf[..HEAD + 3]);
        torn.resize(torn.len() + 4096, 0);
        let (s, n) = count(&torn);
        assert_eq!((s.end, s.damage.tail, n), (end, Some(end), 3));
        // a page of zeros between records: the later record is kept, the gap skipped
        let mut gap = file[..end].to_vec();
        gap.resize(end + 100, 0);
        gap.extend_from_slice(&buf);
        gap.resize(gap.len() + 4096, 0);
        let (s, n) = count(&gap);
        assert_eq!((s.damage.skipped, s.damage.tail, n), (vec![(end, 100)], None, 4));
        assert_eq!(s.end, end + 100 + buf.len());
    }
}
