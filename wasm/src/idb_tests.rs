//! The IndexedDB store's journal without a database: what a commit writes and what a load
//! reads back, through [`Disk`], which applies commits as `write` would.

#![allow(clippy::unwrap_used)]

use super::*;

fn msg(seq: u64, n: usize) -> StoredMsg {
    StoredMsg {
        seq,
        subject: Bytes::from(format!("s.{seq}")),
        headers: seq.is_multiple_of(2).then(|| Bytes::from_static(b"NATS/1.0\r\nA: b\r\n\r\n")),
        payload: Bytes::from(vec![b'x'; n]),
        time: 1_700_000_000_000_000_000 + seq,
    }
}

/// The records a database would hold: (meta, blocks), each key → value.
#[derive(Default)]
struct Disk(BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>);

impl Disk {
    /// What [`write`] does to the database, for tests without one.
    fn commit(&mut self, ops: Vec<Op>) {
        for op in ops {
            match op {
                Op::Wipe(stream) => {
                    self.1.retain(|k, _| k.split_once('\0').map(|(s, _)| s) != Some(stream.as_str()));
                    self.0.remove(&config_key(&stream));
                    for prefix in meta_prefixes(&stream) {
                        self.0.retain(|k, _| !k.starts_with(&prefix));
                    }
                }
                Op::PutBlock(k, v) => drop(self.1.insert(k, v)),
                // what the OPFS log does with it (IndexedDB is never asked to)
                Op::AppendBlock(k, tail) => self.1.entry(k).or_default().extend(tail),
                Op::DeleteBlock(k) => drop(self.1.remove(&k)),
                Op::PutMeta(k, v) => drop(self.0.insert(k, v)),
                Op::DeleteMeta(k) => drop(self.0.remove(&k)),
            }
        }
    }

    fn load(&self) -> Journal {
        let all = |m: &BTreeMap<String, Vec<u8>>| m.iter().map(|(k, v)| (k.clone(), Bytes::from(v.clone()))).collect();
        Journal::from_records(all(&self.0), all(&self.1))
    }
}

/// A refused commit: the journal goes back to the stored records and the engine to the
/// streams they hold, so the refused message is gone from memory too, its sequence is
/// reused by the next publish, and no later commit stores it (a block is rewritten whole:
/// without the reset, the next commit of that block would carry it).
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_refused_commit_goes_back_to_what_is_stored() {
    use edgebus_core::jetstream::{config::StreamConfig, JetStream};
    let now = 1_700_000_000_000_000_000;
    let no_one = |_: &[u8]| false;
    let mut disk = Disk::default();
    let journal = SharedJournal::default();
    let (mut js, _) = JetStream::new(
        Box::new(IdbStorage::new(journal.clone())),
        Box::new(edgebus_core::jetstream::store::MemStorage),
        now,
        1,
    );
    let config: StreamConfig = edgebus_core::json::typed::from_slice(br#"{"name":"S","subjects":["s.>"]}"#).unwrap();
    js.add_stream(now, config).unwrap();
    let mem: StreamConfig =
        edgebus_core::json::typed::from_slice(br#"{"name":"M","subjects":["m.>"],"storage":"memory"}"#).unwrap();
    js.add_stream(now, mem).unwrap();
    assert_eq!(js.publish(now, b"s.1", None, b"stored", &no_one).unwrap().seq, 1);
    assert_eq!(js.publish(now, b"m.1", None, b"memory", &no_one).unwrap().seq, 1);
    disk.commit(journal.borrow_mut().take_ops());

    assert_eq!(js.publish(now, b"s.2", None, b"refused", &no_one).unwrap().seq, 2);
    drop(journal.borrow_mut().take_ops()); // the commit the browser refused
    journal.borrow_mut().reset_to(disk.load());
    assert!(js.reload_file_streams(now).is_empty());
    drop(journal.borrow_mut().take_ops());

    let state = js.stream_state("S").unwrap();
    assert_eq!((state.messages, state.last_seq), (1, 1), "the refused message is gone from memory");
    assert_eq!(js.stream_state("M").unwrap().messages, 1, "memory streams are untouched");
    assert_eq!(js.publish(now, b"s.3", None, b"next", &no_one).unwrap().seq, 2);
    disk.commit(journal.borrow_mut().take_ops());
    let mut stored = disk.load();
    let payloads: Vec<Bytes> = stored
        .streams
        .values_mut()
        .flat_map(|s| s.blocks.values_mut().flat_map(|b| b.open().msgs.iter().map(|m| m.payload.clone())))
        .collect();
    assert_eq!(payloads, [Bytes::from_static(b"stored"), Bytes::from_static(b"next")]);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn block_roundtrip_and_truncation() {
    let mut b = Block::default();
    for seq in 1..=5 {
        b.msgs.insert(msg(seq, seq as usize * 3));
    }
    let data = encode_block(&b);
    let data = Bytes::from(data);
    assert_eq!(decode_block(&data).unwrap(), b.msgs);
    assert!(decode_block(&data.slice(..data.len() - 1)).is_err());
    assert!(decode_block(&Bytes::from_static(&[9])).is_err());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn store_keeps_the_contract_in_memory_and_packs_blocks() {
    let journal = SharedJournal::default();
    let mut storage = IdbStorage::new(journal.clone());
    let mut store = storage.create("S", b"{}").unwrap();
    edgebus_core::jetstream::store::contract::exercise(store.as_mut());
    let ops = journal.borrow_mut().take_ops();
    assert!(matches!(&ops[0], Op::Wipe(s) if s == "S"));
    assert!(!journal.borrow().pending());
    for seq in 11..=3000 {
        store.append(&msg(seq, 10)).unwrap();
    }
    let ops = journal.borrow_mut().take_ops();
    let puts = ops.iter().filter(|o| matches!(o, Op::PutBlock(..))).count();
    let least = 2990usize.div_ceil(BLOCK_MAX_MSGS);
    assert!((least..=least + 2).contains(&puts), "2990 small messages in about {least} blocks, got {puts}");
    store.compact(2500).unwrap();
    let ops = journal.borrow_mut().take_ops();
    assert!(ops.iter().any(|o| matches!(o, Op::DeleteBlock(_))), "{ops:?}");
    let mut n = 0;
    store.scan(&mut |_| n += 1).unwrap();
    assert_eq!(n, 501);
    store.destroy().unwrap();
    assert!(matches!(&journal.borrow_mut().take_ops()[..], [Op::Wipe(_)]));
    assert!(store.append(&msg(4000, 1)).is_err(), "a destroyed store refuses writes");
}

/// A store that appends gets, for a block that only grew, the messages added since the last
/// commit and nothing else; a block that lost messages (removal, compaction) or is new is
/// written whole, and so is a block read back then grown. Applied in order, the appends hold
/// exactly what whole rewrites hold.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn appended_commits_hold_what_whole_blocks_hold() {
    let (whole, appended) = (SharedJournal::default(), SharedJournal::default());
    let mut stores: Vec<_> =
        [&whole, &appended].map(|j| IdbStorage::new(j.clone()).create("S", b"{}").unwrap()).into_iter().collect();
    let (mut disk_whole, mut disk_appended) = (Disk::default(), Disk::default());
    let mut commit = |last_ops: &mut Vec<Op>| {
        disk_whole.commit(whole.borrow_mut().take_ops());
        *last_ops = appended.borrow_mut().take_ops_with(true);
        disk_appended.commit(std::mem::take(last_ops).into_iter().collect());
    };
    let mut seq = 0;
    let mut each = |f: &mut dyn FnMut(&mut Box<dyn StreamStore>)| stores.iter_mut().for_each(f);
    let mut ops = Vec::new();
    for round in 0..700u64 {
        seq += 1;
        each(&mut |s| s.append(&msg(seq, 7)).unwrap());
        if round % 50 == 49 {
            each(&mut |s| s.remove(seq - 3).unwrap());
        }
        if round == 400 {
            each(&mut |s| s.compact(100).unwrap());
        }
        commit(&mut ops);
    }
    // one more message into a block that only grew: one append of that message alone
    seq += 1;
    each(&mut |s| s.append(&msg(seq, 7)).unwrap());
    let ops = appended.borrow_mut().take_ops_with(true);
    match &ops[..] {
        [Op::AppendBlock(_, tail)] => {
            let m = msg(seq, 7);
            let body = m.subject.len() + m.headers.as_ref().map_or(0, Bytes::len) + m.payload.len();
            assert_eq!(tail.len(), 28 + body, "the new message's record alone");
        }
        other => panic!("expected one append, got {other:?}"),
    }
    disk_appended.commit(ops);
    disk_whole.commit(whole.borrow_mut().take_ops());
    assert_eq!(disk_appended.1, disk_whole.1);
    // read back, then grown: the block is decoded and appended to
    let back = SharedJournal::new(disk_appended.load());
    let mut s = IdbStorage::new(back.clone()).recover().unwrap().pop().unwrap().1;
    s.append(&msg(seq + 1, 7)).unwrap();
    assert!(matches!(&back.borrow_mut().take_ops_with(true)[..], [Op::AppendBlock(..)]));
}

/// An open atomic batch outlives a reload: its staged messages are records of their own
/// (each empty ack waits for the commit that holds its record), a new engine on what was
/// stored continues the batch, and the commit stores it whole and deletes the records in the
/// same transaction. A batch abandoned after the reload leaves no record behind.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn an_open_batch_survives_a_reload_and_commits_whole() {
    use edgebus_core::jetstream::JetStream;
    let now = 1_700_000_000_000_000_000;
    let no_one = |_: &[u8]| false;
    let mut disk = Disk::default();
    let open = |disk: &Disk| {
        let journal = SharedJournal::new(disk.load());
        let storage = Box::new(IdbStorage::new(journal.clone()));
        let (js, warnings) = JetStream::new(storage, Box::new(edgebus_core::jetstream::store::MemStorage), now, 1);
        assert!(warnings.is_empty(), "{warnings:?}");
        (js, journal)
    };
    let send = |js: &mut JetStream, batch: &str, seq: u32, commit: bool, body: &str| -> Vec<u8> {
        let mut h = format!("NATS/1.0\r\nNats-Batch-Id: {batch}\r\nNats-Batch-Sequence: {seq}\r\n");
        if commit {
            h += "Nats-Batch-Commit: 1\r\n";
        }
        h += "\r\n";
        js.handle_msg(now, b"s.x", Some(b"_INBOX.r"), Some(h.as_bytes()), body.as_bytes(), &no_one);
        let out = js.take_outbound();
        let reply = out.iter().find(|o| &o.route[..] == b"_INBOX.r").expect("a reply");
        reply.payload.to_vec()
    };
    let staged_keys = |disk: &Disk| disk.0.keys().filter(|k| k.starts_with("b\0")).count();

    let (mut js, journal) = open(&disk);
    let create = br#"{"name":"S","subjects":["s.>"],"allow_atomic":true}"#;
    js.handle_msg(now, b"$JS.API.STREAM.CREATE.S", Some(b"_INBOX.c"), None, create, &no_one);
    drop(js.take_outbound());
    assert_eq!(send(&mut js, "B", 1, false, "one"), b"", "staged: the empty ack");
    assert_eq!(send(&mut js, "B", 2, false, "two"), b"");
    assert_eq!(send(&mut js, "gone", 1, false, "idle"), b"");
    disk.commit(journal.borrow_mut().take_ops());
    assert_eq!(staged_keys(&disk), 3);
    drop(js);

    // the reload: a new engine on what the database holds
    let (mut js, journal) = open(&disk);
    assert_eq!(js.stream_state("S").unwrap().messages, 0, "still invisible");
    let ack: serde_json::Value = serde_json::from_slice(&send(&mut js, "B", 3, true, "three")).unwrap();
    assert_eq!((ack["seq"].as_u64(), ack["count"].as_u64()), (Some(3), Some(3)), "{ack}");
    disk.commit(journal.borrow_mut().take_ops());
    assert_eq!(staged_keys(&disk), 1, "the committed batch's records are gone, the idle one's kept");

    // the idle batch times out after the reload too, and its record goes with it
    let later = now + 11_000_000_000;
    js.handle_timeout(later, &no_one);
    drop(js.take_outbound());
    disk.commit(journal.borrow_mut().take_ops());
    assert_eq!(staged_keys(&disk), 0);

    let (mut js, _) = open(&disk);
    let payloads: Vec<_> = (1..=3).map(|seq| js.msg("S", seq).unwrap().unwrap().payload).collect();
    assert_eq!(payloads, [&b"one"[..], b"two", b"three"]);
}
