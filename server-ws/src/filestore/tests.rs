#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use edgebus_core::jetstream::store::{contract, MsgMeta, Storage, StoreError, StoredMsg, StreamStore};

use super::*;

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("edgebus-fs-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn config(segment_size: u64) -> FileStoreConfig {
    FileStoreConfig { segment_size, ..FileStoreConfig::default() }
}

fn storage(dir: &TempDir, cfg: &FileStoreConfig) -> FileStorage {
    FileStorage::new(&dir.0, cfg.clone()).unwrap()
}

fn meta(name: &str) -> Vec<u8> {
    serde_json::json!({ "name": name }).to_string().into_bytes()
}

fn msg(seq: u64, len: usize) -> StoredMsg {
    StoredMsg {
        seq,
        subject: Bytes::from(format!("orders.{}", seq % 7)),
        headers: seq.is_multiple_of(3).then(|| Bytes::from(format!("NATS/1.0\r\nNats-Msg-Id: m{seq}\r\n\r\n"))),
        payload: Bytes::from(vec![(seq % 251) as u8; len]),
        time: 1_700_000_000_000_000_000 + seq,
    }
}

fn scan_all(store: &mut dyn StreamStore) -> Vec<MsgMeta> {
    let mut out = Vec::new();
    store.scan(&mut |m| out.push(m)).unwrap();
    out
}

fn seqs(store: &mut dyn StreamStore) -> Vec<u64> {
    scan_all(store).iter().map(|m| m.seq).collect()
}

/// The only stream a fresh `FileStorage` on `dir` recovers.
fn reopen_one(dir: &TempDir, cfg: &FileStoreConfig) -> (Vec<u8>, Box<dyn StreamStore>) {
    let mut recovered = storage(dir, cfg).recover().unwrap();
    assert_eq!(recovered.len(), 1, "one stream expected");
    recovered.remove(0)
}

fn stream_dir(dir: &TempDir, name: &str) -> PathBuf {
    layout::streams_dir(&dir.0).join(layout::encode_name(name).unwrap())
}

fn segment_files(dir: &TempDir, name: &str) -> Vec<(u64, u64)> {
    let msgs = stream_dir(dir, name).join(layout::MSGS_DIR);
    let mut out: Vec<(u64, u64)> = fs::read_dir(msgs)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let id = layout::parse_segment_name(e.file_name().to_str()?)?;
            Some((id, e.metadata().unwrap().len()))
        })
        .collect();
    out.sort();
    out
}

/// Runs the contract on a fresh store, reopens it, and checks the reopened store reports
/// exactly what the first one did.
fn contract_then_reopen(cfg: FileStoreConfig) {
    let dir = TempDir::new("contract");
    let (before, consumers, loads) = {
        let mut s = storage(&dir, &cfg).create("S", &meta("S")).unwrap();
        contract::exercise(s.as_mut());
        let loads: Vec<_> = (0..12).map(|q| s.load(q).unwrap()).collect();
        (scan_all(s.as_mut()), s.consumers().unwrap(), loads)
    };
    let (config, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(config, meta("S"));
    assert_eq!(scan_all(s.as_mut()), before, "scan after reopen");
    assert_eq!(s.consumers().unwrap(), consumers);
    assert_eq!((0..12).map(|q| s.load(q).unwrap()).collect::<Vec<_>>(), loads, "loads after reopen");
    // The reopened store keeps the contract for new data too.
    s.append(&msg(20, 5)).unwrap();
    s.remove(20).unwrap();
    s.compact(100).unwrap();
    assert!(seqs(s.as_mut()).is_empty());
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert!(seqs(s.as_mut()).is_empty(), "removals after reopen persist");
}

#[test]
fn keeps_the_contract_across_reopen() {
    contract_then_reopen(FileStoreConfig::default());
    // One message per segment: rolling, deleting and rewriting segments inside the contract.
    contract_then_reopen(config(1));
    contract_then_reopen(config(120));
    contract_then_reopen(FileStoreConfig { sync_interval: SyncInterval::Always, ..config(200) });
}

#[test]
fn contract_on_a_store_reopened_empty() {
    let dir = TempDir::new("contract-reopened");
    let cfg = config(150);
    drop(storage(&dir, &cfg).create("S", &meta("S")).unwrap());
    let (_, mut s) = reopen_one(&dir, &cfg);
    contract::exercise(s.as_mut());
}

#[test]
fn sync_policy() {
    let dir = TempDir::new("sync");
    let always = FileStoreConfig { sync_interval: SyncInterval::Always, ..config(1024) };
    let st = storage(&dir, &always);
    let mut s = { st }.create("A", &meta("A")).unwrap();
    assert!(s.sync_always());
    s.append(&msg(1, 10)).unwrap();
    s.sync().unwrap();
    let st = storage(&dir, &FileStoreConfig::default());
    let handle = st.sync_handle();
    let mut b = { st }.create("B", &meta("B")).unwrap();
    assert!(!b.sync_always());
    b.append(&msg(1, 10)).unwrap();
    b.save_consumer("c", b"{}").unwrap();
    handle.sync_all().unwrap();
    b.sync().unwrap();
    drop(b);
    handle.sync_all().unwrap();
}

#[test]
fn segments_roll_at_the_size_limit() {
    let dir = TempDir::new("roll");
    let cfg = config(512);
    let mut s = storage(&dir, &cfg).create("R", &meta("R")).unwrap();
    for seq in 1..=40 {
        s.append(&msg(seq, 60)).unwrap();
    }
    s.append(&msg(41, 2000)).unwrap();
    s.append(&msg(42, 10)).unwrap();
    let files = segment_files(&dir, "R");
    assert!(files.len() >= 6, "{files:?}");
    let big = files.iter().filter(|f| f.1 > 512).count();
    assert_eq!(big, 1, "only the oversized message gets a segment past the limit: {files:?}");
    assert_eq!(s.load(41).unwrap().unwrap().payload.len(), 2000);
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), (1..=42).collect::<Vec<_>>());
    for seq in 1..=42 {
        assert_eq!(s.load(seq).unwrap().unwrap().seq, seq);
    }
    assert_eq!(s.load(40).unwrap(), Some(msg(40, 60)));
}

#[test]
fn removals_and_compaction_persist() {
    let dir = TempDir::new("compact");
    let cfg = config(1024);
    let mut s = storage(&dir, &cfg).create("C", &meta("C")).unwrap();
    for seq in 1..=300 {
        s.append(&msg(seq, 40)).unwrap();
    }
    let segments_full = segment_files(&dir, "C").len();
    s.compact(101).unwrap();
    for seq in (101..=200).filter(|q| q % 4 != 0) {
        s.remove(seq).unwrap();
    }
    let expected: Vec<u64> = (101..=200).filter(|q| q % 4 == 0).chain(201..=300).collect();
    assert_eq!(seqs(s.as_mut()), expected);
    let files = segment_files(&dir, "C");
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert!(files.len() < segments_full, "purged segments deleted: {} of {segments_full}", files.len());
    assert!(total < 1024 * (segments_full as u64) * 3 / 4, "garbage reclaimed: {total} bytes in {files:?}");
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), expected, "after reopen");
    assert_eq!(s.load(100).unwrap(), None);
    assert_eq!(s.load(101).unwrap(), None);
    assert_eq!(s.load(104).unwrap(), Some(msg(104, 40)));
    // Everything gone: only a few small files remain.
    s.compact(301).unwrap();
    for seq in 301..=330 {
        s.append(&msg(seq, 40)).unwrap();
        s.remove(seq).unwrap();
    }
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert!(seqs(s.as_mut()).is_empty());
    let total: u64 = segment_files(&dir, "C").iter().map(|f| f.1).sum();
    assert!(total <= 2 * 1024, "{total}");
}

/// Random appends, removals, compactions and reopens against a model; small segments so
/// rolling, rewriting and tombstone bookkeeping all happen often.
#[test]
fn matches_a_model_through_random_operations() {
    for seed in 0..12 {
        let dir = TempDir::new("model");
        let cfg = config(if seed % 2 == 0 { 300 } else { 2048 });
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut model: BTreeMap<u64, StoredMsg> = BTreeMap::new();
        let mut s = storage(&dir, &cfg).create("M", &meta("M")).unwrap();
        let mut next = 1;
        for step in 0..600 {
            match rng.u32(0..100) {
                0..=54 => {
                    let m = msg(next, rng.usize(0..80));
                    s.append(&m).unwrap();
                    model.insert(next, m);
                    next += 1;
                }
                55..=84 => {
                    let seq = rng.u64(0..next + 2);
                    s.remove(seq).unwrap();
                    model.remove(&seq);
                }
                85..=92 => {
                    let before = model.keys().next().copied().unwrap_or(next) + rng.u64(0..6);
                    s.compact(before).unwrap();
                    model = model.split_off(&before);
                }
                _ => {
                    drop(s);
                    s = reopen_one(&dir, &cfg).1;
                }
            }
            if step % 50 == 0 || step == 599 {
                let got = seqs(s.as_mut());
                assert_eq!(got, model.keys().copied().collect::<Vec<_>>(), "seed {seed} step {step}");
                for (seq, m) in &model {
                    assert_eq!(s.load(*seq).unwrap().as_ref(), Some(m), "seed {seed} step {step} seq {seq}");
                }
            }
        }
        drop(s);
        let (_, mut s) = reopen_one(&dir, &cfg);
        assert_eq!(seqs(s.as_mut()), model.keys().copied().collect::<Vec<_>>(), "seed {seed} final");
        let live: u64 = model.values().map(record::msg_len).sum();
        let total: u64 = segment_files(&dir, "M").iter().map(|f| f.1).sum();
        assert!(total <= 3 * live + 3 * cfg.segment_size, "seed {seed}: {total} bytes on disk for {live} live");
    }
}

/// Appends to a one-segment stream, returning where each message's record ends (the file
/// is longer while the store is open: space is allocated ahead; closing cuts it).
fn one_segment_stream(dir: &TempDir, cfg: &FileStoreConfig, n: u64) -> (PathBuf, Vec<u64>) {
    let mut s = storage(dir, cfg).create("T", &meta("T")).unwrap();
    let path = stream_dir(dir, "T").join(layout::MSGS_DIR).join("1.blk");
    let mut ends = Vec::new();
    let mut end = 0;
    for seq in 1..=n {
        let m = msg(seq, 20 + seq as usize);
        s.append(&m).unwrap();
        end += record::msg_len(&m);
        ends.push(end);
    }
    drop(s);
    assert_eq!(fs::metadata(&path).unwrap().len(), end, "a closed store's segment holds its records only");
    (path, ends)
}

/// Makes `path` `len` bytes long, the new bytes zeros: what a store killed with space
/// allocated ahead leaves (whether or not this platform allocates ahead).
fn zero_fill(path: &std::path::Path, len: u64) {
    fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// A store killed while its active segment has space allocated ahead: the zeros after the
/// records are the end of the log, not a torn tail. Every message comes back, nothing is
/// cut or set aside, and new records go right after the old ones, where the next start-up
/// finds them.
#[test]
fn zeros_allocated_ahead_are_the_end_of_the_log() {
    let dir = TempDir::new("prealloc");
    let cfg = FileStoreConfig::default();
    let path = stream_dir(&dir, "P").join(layout::MSGS_DIR).join("1.blk");
    let mut end = 0;
    {
        let mut s = storage(&dir, &cfg).create("P", &meta("P")).unwrap();
        for seq in 1..=50 {
            let m = msg(seq, 100);
            s.append(&m).unwrap();
            end += record::msg_len(&m);
        }
        s.sync().unwrap();
        #[cfg(target_os = "linux")]
        assert!(fs::metadata(&path).unwrap().len() > end, "space is allocated ahead of the records");
        // killed: no final sync, no cut
        std::mem::forget(s);
    }
    // the zeros the killed store left (also where the platform allocated nothing ahead)
    let filled = end + 200_000;
    zero_fill(&path, filled);
    for round in 0..3u64 {
        let (_, mut s) = reopen_one(&dir, &cfg);
        let upto = 50 + 10 * round;
        assert_eq!(seqs(s.as_mut()), (1..=upto).collect::<Vec<_>>(), "round {round}");
        assert_eq!(s.load(upto).unwrap(), Some(msg(upto, 100)));
        assert!(fs::metadata(&path).unwrap().len() >= filled, "the zeros are not cut");
        for seq in upto + 1..=upto + 10 {
            let m = msg(seq, 100);
            s.append(&m).unwrap();
            end += record::msg_len(&m);
        }
        s.sync().unwrap();
        std::mem::forget(s);
    }
    let msgs = path.parent().unwrap();
    let names: Vec<String> =
        fs::read_dir(msgs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["1.blk"], "nothing set aside");
    // a clean close cuts the file to its records
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()).len(), 80);
    s.append(&msg(81, 1)).unwrap();
    end += record::msg_len(&msg(81, 1));
    drop(s);
    assert_eq!(fs::metadata(&path).unwrap().len(), end);
}

/// What makes a durable publish cheap: records go into space allocated ahead, so the file's
/// size (metadata every `fdatasync` would have to write) changes once per allocation step,
/// not with every record.
#[cfg(target_os = "linux")]
#[test]
fn records_do_not_change_the_segment_size_one_by_one() {
    let dir = TempDir::new("size-steps");
    let cfg = FileStoreConfig::default();
    let mut s = storage(&dir, &cfg).create("A", &meta("A")).unwrap();
    let path = stream_dir(&dir, "A").join(layout::MSGS_DIR).join("1.blk");
    let mut sizes = std::collections::BTreeSet::new();
    for seq in 1..=500 {
        s.append(&msg(seq, 128)).unwrap();
        sizes.insert(fs::metadata(&path).unwrap().len());
    }
    // 500 records of about 170 bytes: 85 KB, two steps (64 KiB, then 128 KiB more)
    assert!(sizes.len() <= 3, "the size changed {} times: {sizes:?}", sizes.len());
}

/// A segment created and allocated ahead, then killed before any record reached it, is all
/// zeros: an empty segment that takes the next records, not a corrupt file.
#[test]
fn a_segment_of_zeros_is_empty_not_corrupt() {
    let dir = TempDir::new("zero-seg");
    let cfg = config(1000);
    {
        let mut s = storage(&dir, &cfg).create("Z", &meta("Z")).unwrap();
        for seq in 1..=3 {
            s.append(&msg(seq, 50)).unwrap();
        }
    }
    let msgs = stream_dir(&dir, "Z").join(layout::MSGS_DIR);
    fs::write(msgs.join("2.blk"), vec![0u8; 4096]).unwrap();
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), [1, 2, 3]);
    assert!(!msgs.join("2.blk.corrupt").exists(), "zeros are not set aside");
    s.append(&msg(4, 50)).unwrap();
    drop(s);
    assert_eq!(segment_files(&dir, "Z").last(), Some(&(2, record::msg_len(&msg(4, 50)))), "4 went into 2.blk");
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), [1, 2, 3, 4]);
}

/// A record torn inside space allocated ahead (its first bytes reached the disk, the rest
/// are still zeros) is a torn tail: cut, with the zeros after it, and every complete record
/// kept; the next record is written where the torn one began.
#[test]
fn a_torn_record_before_the_zeros_is_cut() {
    let dir = TempDir::new("torn-prealloc");
    let cfg = FileStoreConfig::default();
    let (path, ends) = one_segment_stream(&dir, &cfg, 5);
    let original = fs::read(&path).unwrap();
    let full = original.len() as u64;
    // (chopping all of record 5 leaves only zeros after record 4: a clean end, tested above)
    for chop in 1..full - ends[3] {
        let left = full - chop;
        let mut torn = original[..left as usize].to_vec();
        torn.resize(full as usize + 65_536, 0);
        fs::write(&path, &torn).unwrap();
        let (_, mut s) = reopen_one(&dir, &cfg);
        assert_eq!(seqs(s.as_mut()), [1, 2, 3, 4], "chopped {chop}");
        assert_eq!(fs::metadata(&path).unwrap().len(), ends[3], "chopped {chop}: cut to the last good record");
        s.append(&msg(9, 3)).unwrap();
        drop(s);
        let (_, mut s) = reopen_one(&dir, &cfg);
        assert_eq!(seqs(s.as_mut()), [1, 2, 3, 4, 9], "chopped {chop}, appended");
    }
}

#[test]
fn torn_tail_is_cut_and_complete_records_kept() {
    let dir = TempDir::new("tail");
    let cfg = FileStoreConfig::default();
    let (path, ends) = one_segment_stream(&dir, &cfg, 5);
    let original = fs::read(&path).unwrap();
    let full = original.len() as u64;
    for chop in 1..=full {
        fs::write(&path, &original[..(full - chop) as usize]).unwrap();
        let left = full - chop;
        let complete: Vec<u64> = (1..=5).filter(|q| ends[*q as usize - 1] <= left).collect();
        let (_, mut s) = reopen_one(&dir, &cfg);
        assert_eq!(seqs(s.as_mut()), complete, "chopped {chop}");
        let good_end = complete.last().map_or(0, |q| ends[*q as usize - 1]);
        if complete.is_empty() {
            // Nothing readable: the file was moved aside, not destroyed.
            assert!(!path.exists() || fs::metadata(&path).unwrap().len() == 0, "chopped {chop}");
        } else {
            assert_eq!(fs::metadata(&path).unwrap().len(), good_end, "cut to the last good record");
        }
        // Appending after the repair lands in a readable place.
        s.append(&msg(9, 3)).unwrap();
        drop(s);
        let (_, mut s) = reopen_one(&dir, &cfg);
        let mut want = complete.clone();
        want.push(9);
        assert_eq!(seqs(s.as_mut()), want, "chopped {chop}, appended");
        drop(s);
        for f in fs::read_dir(path.parent().unwrap()).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
    }
}

#[test]
fn damaged_middle_record_is_skipped() {
    let dir = TempDir::new("flip");
    let cfg = FileStoreConfig::default();
    let (path, ends) = one_segment_stream(&dir, &cfg, 3);
    let original = fs::read(&path).unwrap();
    // Every byte of the middle record, one at a time.
    for at in ends[0]..ends[1] {
        let mut bad = original.clone();
        bad[at as usize] ^= 0x5a;
        fs::write(&path, &bad).unwrap();
        let (_, mut s) = reopen_one(&dir, &cfg);
        assert_eq!(seqs(s.as_mut()), [1, 3], "byte {at}");
        assert_eq!(s.load(2).unwrap(), None);
        assert_eq!(s.load(3).unwrap(), Some(msg(3, 23)));
        assert_eq!(fs::metadata(&path).unwrap().len(), original.len() as u64, "middle damage is not cut");
    }
    // And new data after it survives a reopen.
    {
        let (_, mut s) = reopen_one(&dir, &cfg);
        s.append(&msg(4, 1)).unwrap();
    }
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), [1, 3, 4]);
}

#[test]
fn damage_found_after_start_is_a_load_error() {
    let dir = TempDir::new("rot");
    let cfg = FileStoreConfig::default();
    let (path, ends) = one_segment_stream(&dir, &cfg, 2);
    let (_, mut s) = reopen_one(&dir, &cfg);
    let mut data = fs::read(&path).unwrap();
    data[ends[0] as usize - 2] ^= 1;
    fs::write(&path, &data).unwrap();
    assert!(matches!(s.load(1), Err(StoreError::Corrupt(_))));
    assert_eq!(s.load(2).unwrap().unwrap().seq, 2);
}

#[test]
fn garbage_segment_is_set_aside() {
    let dir = TempDir::new("garbage-seg");
    let cfg = config(100);
    {
        let mut s = storage(&dir, &cfg).create("G", &meta("G")).unwrap();
        for seq in 1..=4 {
            s.append(&msg(seq, 50)).unwrap();
        }
    }
    let msgs = stream_dir(&dir, "G").join(layout::MSGS_DIR);
    fs::write(msgs.join("2.blk"), b"this is not a segment at all").unwrap();
    fs::write(msgs.join("notes.txt"), b"left alone").unwrap();
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), [1, 3, 4]);
    assert!(msgs.join("2.blk.corrupt").exists());
    assert!(msgs.join("notes.txt").exists());
    s.append(&msg(5, 50)).unwrap();
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), [1, 3, 4, 5]);
}

#[test]
fn unreadable_segment_does_not_stop_the_stream() {
    let dir = TempDir::new("unreadable");
    let cfg = config(100);
    {
        let mut s = storage(&dir, &cfg).create("U", &meta("U")).unwrap();
        for seq in 1..=3 {
            s.append(&msg(seq, 50)).unwrap();
        }
    }
    // A directory where a segment should be: reading it fails.
    let msgs = stream_dir(&dir, "U").join(layout::MSGS_DIR);
    fs::remove_file(msgs.join("3.blk")).unwrap();
    fs::create_dir(msgs.join("3.blk")).unwrap();
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), [1, 2]);
    s.append(&msg(4, 1)).unwrap();
    assert_eq!(s.load(4).unwrap(), Some(msg(4, 1)));
}

#[test]
fn recover_finds_streams_and_skips_bad_ones() {
    let dir = TempDir::new("recover");
    let cfg = FileStoreConfig::default();
    let names = ["ORDERS", "KV_config", "odd/name..with\\stuff", "ünïcode", "broken", "bare"];
    {
        let mut st = storage(&dir, &cfg);
        for (i, name) in names.iter().enumerate() {
            let mut s = st.create(name, &meta(name)).unwrap();
            s.append(&msg(i as u64 + 1, 4)).unwrap();
        }
    }
    let streams = layout::streams_dir(&dir.0);
    fs::write(stream_dir(&dir, "broken").join(layout::META_FILE), b"\x00\x01 not json").unwrap();
    fs::remove_file(stream_dir(&dir, "bare").join(layout::META_FILE)).unwrap();
    fs::write(streams.join("stray-file"), b"x").unwrap();
    fs::create_dir_all(streams.join("not.a.stream")).unwrap();
    fs::create_dir_all(streams.join("GONE.deleted").join("msgs")).unwrap();
    let recovered = storage(&dir, &cfg).recover().unwrap();
    let mut got: Vec<String> = recovered.iter().map(|(c, _)| String::from_utf8(c.clone()).unwrap()).collect();
    got.sort();
    let mut want: Vec<String> = names[..4].iter().map(|n| String::from_utf8(meta(n)).unwrap()).collect::<Vec<_>>();
    want.sort();
    assert_eq!(got, want);
    for (i, (_, mut s)) in recovered.into_iter().enumerate().take(4) {
        assert_eq!(scan_all(s.as_mut()).len(), 1, "stream {i}");
    }
    assert!(!streams.join("GONE.deleted").exists(), "interrupted deletion finished");
    assert!(streams.join("not.a.stream").exists(), "unknown directories are left alone");
    // Nothing was created outside the streams directory.
    let outside: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, ["jetstream"]);
}

#[test]
fn a_stream_opens_once() {
    let dir = TempDir::new("lease");
    let cfg = FileStoreConfig::default();
    let mut st = storage(&dir, &cfg);
    let s = st.create("L", &meta("L")).unwrap();
    assert!(st.create("L", &meta("L")).is_err());
    assert!(st.recover().unwrap().is_empty(), "an open stream is not recovered twice");
    drop(s);
    let mut s = st.create("L", &meta("L2")).unwrap();
    s.append(&msg(1, 1)).unwrap();
    drop(s);
    let (config, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(config, meta("L2"), "create on an existing stream replaces the config");
    assert_eq!(seqs(s.as_mut()), [1], "and keeps the messages");
    assert!(storage(&dir, &cfg).create("", b"{}").is_err());
}

#[test]
fn destroy_removes_the_directory() {
    let dir = TempDir::new("destroy");
    let cfg = FileStoreConfig::default();
    let mut st = storage(&dir, &cfg);
    let mut s = st.create("D", &meta("D")).unwrap();
    let mut keep = st.create("K", &meta("K")).unwrap();
    s.append(&msg(1, 10)).unwrap();
    s.save_consumer("c", b"{}").unwrap();
    keep.append(&msg(1, 10)).unwrap();
    s.destroy().unwrap();
    assert!(!stream_dir(&dir, "D").exists());
    assert!(s.append(&msg(2, 1)).is_err(), "a destroyed store refuses writes");
    s.destroy().unwrap();
    drop(s);
    drop(keep);
    let recovered = storage(&dir, &cfg).recover().unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].0, meta("K"));
    let entries: Vec<_> = fs::read_dir(layout::streams_dir(&dir.0)).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn consumer_states_round_trip() {
    let dir = TempDir::new("consumers");
    let cfg = FileStoreConfig::default();
    {
        let mut s = storage(&dir, &cfg).create("S", &meta("S")).unwrap();
        s.save_consumer("dur", b"{\"v\":1}").unwrap();
        s.save_consumer("odd.name/x", b"{\"v\":2}").unwrap();
        s.save_consumer("gone", b"{}").unwrap();
        s.save_consumer("dur", b"{\"v\":3}").unwrap();
        s.remove_consumer("gone").unwrap();
        s.remove_consumer("never-existed").unwrap();
        assert!(s.save_consumer("", b"{}").is_err());
    }
    let obs = stream_dir(&dir, "S").join(layout::OBS_DIR);
    fs::write(obs.join("dur.json.tmp"), b"half-written").unwrap();
    fs::write(obs.join("bad%zz.json"), b"{}").unwrap();
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(
        s.consumers().unwrap(),
        [("dur".to_string(), b"{\"v\":3}".to_vec()), ("odd.name/x".to_string(), b"{\"v\":2}".to_vec())]
    );
    assert!(!obs.join("dur.json.tmp").exists(), "stale temporary files are removed");
    assert!(obs.parent().unwrap().join(layout::META_FILE).exists());
}

#[test]
fn scan_reports_sizes_and_ids() {
    let dir = TempDir::new("meta");
    let mut s = storage(&dir, &FileStoreConfig::default()).create("S", &meta("S")).unwrap();
    let m = msg(3, 10);
    s.append(&m).unwrap();
    let got = scan_all(s.as_mut());
    assert_eq!(got, [MsgMeta::of(3, &m.subject, m.headers.as_deref(), m.payload.len(), m.time)]);
}

#[test]
fn options_map_onto_the_config() {
    let o = crate::options::JetStreamOptions { sync_interval: SyncInterval::Always, ..Default::default() };
    let c = FileStoreConfig::from_options(&o);
    assert_eq!(c.sync_interval, SyncInterval::Always);
    assert_eq!(c.segment_size, DEFAULT_SEGMENT_SIZE);
}

fn disk_bytes(dir: &TempDir, name: &str) -> u64 {
    segment_files(dir, name).iter().map(|f| f.1).sum()
}

/// A work queue: every message is removed soon after it is stored. Neither the messages nor
/// the tombstones that removed them may pile up.
#[test]
fn work_queue_usage_stays_bounded() {
    let dir = TempDir::new("wq");
    let cfg = config(4096);
    let mut s = storage(&dir, &cfg).create("W", &meta("W")).unwrap();
    for seq in 1..=3000u64 {
        s.append(&msg(seq, 30)).unwrap();
        if seq > 5 {
            s.remove(seq - 5).unwrap();
        }
    }
    let total = disk_bytes(&dir, "W");
    assert!(total <= 3 * 4096, "{total} bytes for 5 live messages: {:?}", segment_files(&dir, "W"));
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), (2996..=3000).collect::<Vec<_>>());
}

/// Interest retention with a straggler: one message per segment is never acknowledged.
/// Segments shrink to about what is live.
#[test]
fn segments_with_few_live_messages_shrink() {
    let dir = TempDir::new("straggler");
    let cfg = config(2048);
    let mut s = storage(&dir, &cfg).create("I", &meta("I")).unwrap();
    for seq in 1..=1000u64 {
        s.append(&msg(seq, 40)).unwrap();
    }
    for seq in (1..=1000u64).filter(|q| q % 25 != 0) {
        s.remove(seq).unwrap();
    }
    let live: u64 = (1..=1000u64).filter(|q| q % 25 == 0).map(|q| record::msg_len(&msg(q, 40))).sum();
    let total = disk_bytes(&dir, "I");
    assert!(total < 4 * live + 3 * 2048, "{total} bytes on disk for {live} live");
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), (1..=1000u64).filter(|q| q % 25 == 0).collect::<Vec<_>>());
}

/// Tombstones in a segment that still has live messages must outlive neither their use
/// nor, while a target is on disk, be dropped: reopen after every phase.
#[test]
fn tombstones_survive_until_their_targets_are_gone() {
    let dir = TempDir::new("tombs");
    let cfg = config(600);
    let mut s = storage(&dir, &cfg).create("T", &meta("T")).unwrap();
    for seq in 1..=40u64 {
        s.append(&msg(seq, 30)).unwrap();
    }
    // Remove scattered messages so old segments keep dead records and live ones.
    for seq in (1..=40u64).filter(|q| q % 3 == 0) {
        s.remove(seq).unwrap();
    }
    for seq in 41..=80u64 {
        s.append(&msg(seq, 30)).unwrap();
    }
    let expect = |from: u64| -> Vec<u64> { (from..=80).filter(|q| *q > 40 || q % 3 != 0).collect() };
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), expect(1));
    s.compact(20).unwrap();
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert_eq!(seqs(s.as_mut()), expect(20));
    s.compact(81).unwrap();
    drop(s);
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert!(seqs(s.as_mut()).is_empty());
}

#[test]
fn stores_move_between_threads() {
    fn send<T: Send>() {}
    send::<FileStorage>();
    send::<FileStore>();
    send::<SyncHandle>();
}

/// Rough throughput numbers: `cargo test --release -p edgebus-server --lib filestore::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let dir = TempDir::new("bench");
    let cfg = FileStoreConfig::default();
    let n = 1_000_000u64;
    let mut s = storage(&dir, &cfg).create("B", &meta("B")).unwrap();
    let mut m = msg(1, 128);
    let t = std::time::Instant::now();
    for seq in 1..=n {
        m.seq = seq;
        s.append(&m).unwrap();
    }
    s.sync().unwrap();
    eprintln!("append: {:.0} msgs/s", n as f64 / t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    for seq in 1..=n {
        s.load(seq).unwrap().unwrap();
    }
    eprintln!("load: {:.0} msgs/s", n as f64 / t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    for seq in 1..=n {
        s.remove(seq).unwrap();
    }
    eprintln!("remove: {:.0} msgs/s", n as f64 / t.elapsed().as_secs_f64());
    drop(s);
    let t = std::time::Instant::now();
    let (_, mut s) = reopen_one(&dir, &cfg);
    assert!(seqs(s.as_mut()).is_empty());
    eprintln!("reopen after removing all: {:?}", t.elapsed());
    let mut s = { s };
    for seq in n + 1..=2 * n {
        m.seq = seq;
        s.append(&m).unwrap();
    }
    drop(s);
    let t = std::time::Instant::now();
    let (_, mut s) = reopen_one(&dir, &cfg);
    let mut count = 0;
    s.scan(&mut |_| count += 1).unwrap();
    assert_eq!(count, n);
    eprintln!("reopen + scan of {n}: {:?}", t.elapsed());
}
