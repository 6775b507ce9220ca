//! Where a persisted bus keeps its records: IndexedDB or the Origin Private File System.
//!
//! Both hold the same records — the journal's blocks and meta ([`crate::idb`]) and the
//! link's outbox — and both answer a commit only once it is durable (a committed
//! transaction; a flushed file), which is when the bus releases the acks that wait for it.
//! The bus, the tab sharing and the link see only [`Disk`].

use edgebus_core::jetstream::store::StoreError;
use edgebus_core::link::{Entry, OutboxCommit};
use indexed_db_futures::database::Database;

use crate::error::BusError;
use crate::idb::{self, Journal, Op};
use crate::opfs::{self, Opfs};
use crate::opfs_log::{Batch, TAG_BLOCK, TAG_META, TAG_OUTBOX};

/// The persisted storages `open({ storage })` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Idb,
    Opfs,
}

impl Kind {
    /// `storage` as the page reports it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Idb => "indexeddb",
            Kind::Opfs => "opfs",
        }
    }

    /// The name the store's Web Lock and tab channel are named after: one per storage, so a
    /// bus persisted in IndexedDB and one in OPFS under the same name never share an owner.
    pub fn db_name(self, bus: &str) -> String {
        match self {
            Kind::Idb => idb::db_name(bus),
            Kind::Opfs => format!("edgebus-opfs:{bus}"),
        }
    }

    /// Reads `open`'s `storage` option: `None` for memory; `"auto"` is OPFS where dedicated
    /// workers have `FileSystemSyncAccessHandle`, else IndexedDB.
    pub async fn choose(storage: Option<&str>) -> Result<Option<Kind>, BusError> {
        Ok(match storage {
            None | Some("memory") => None,
            Some("indexeddb") => Some(Kind::Idb),
            Some("opfs") if opfs::available().await => Some(Kind::Opfs),
            Some("opfs") => {
                return Err(BusError::Storage(
                    "OPFS storage needs FileSystemSyncAccessHandle in a dedicated worker, which this browser does not offer (use \"auto\" or \"indexeddb\")".into(),
                ))
            }
            Some("auto") if opfs::available().await => Some(Kind::Opfs),
            Some("auto") => Some(Kind::Idb),
            Some(other) => return Err(BusError::Invalid(format!("unknown storage {other:?}"))),
        })
    }
}

/// An open store.
pub enum Disk {
    Idb(Database),
    Opfs(Opfs),
}

impl Disk {
    /// Opens bus `name`'s store (its lock is already held).
    pub async fn open(kind: Kind, name: &str) -> Result<Disk, StoreError> {
        Ok(match kind {
            Kind::Idb => Disk::Idb(idb::open(name).await?),
            Kind::Opfs => Disk::Opfs(Opfs::open(name).await?),
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Disk::Idb(_) => Kind::Idb,
            Disk::Opfs(_) => Kind::Opfs,
        }
    }

    /// Reads the streams back into a fresh journal (start-up, and after a refused commit).
    pub async fn load(&self) -> Result<Journal, StoreError> {
        match self {
            Disk::Idb(db) => idb::load(db).await,
            Disk::Opfs(f) => {
                let warnings = f.load().await?;
                let state = f.state();
                let mut j = Journal::from_records(state.records(TAG_META), state.records(TAG_BLOCK));
                j.warnings.extend(warnings);
                Ok(j)
            }
        }
    }

    /// Whether a commit may append to a stored block ([`Op::AppendBlock`]) rather than
    /// rewrite it: the OPFS log extends a value with one more write; IndexedDB rewrites the
    /// record whole.
    pub fn appends(&self) -> bool {
        matches!(self, Disk::Opfs(_))
    }

    /// Makes one journal commit durable.
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let f = match self {
            Disk::Idb(db) => return idb::write(db, ops).await,
            Disk::Opfs(f) => f,
        };
        f.write(batch_of(ops)).await
    }

    /// The link's stored outbox entries.
    pub async fn load_outbox(&self) -> Result<Vec<Entry>, StoreError> {
        match self {
            Disk::Idb(db) => idb::load_outbox(db).await,
            Disk::Opfs(f) => Ok(f
                .state()
                .records(TAG_OUTBOX)
                .into_iter()
                .filter_map(|(k, v)| Entry::decode(k.parse().ok()?, &v))
                .collect()),
        }
    }

    /// Makes one outbox commit durable.
    pub async fn write_outbox(&self, commit: OutboxCommit) -> Result<(), StoreError> {
        let f = match self {
            Disk::Idb(db) => return idb::write_outbox(db, commit).await,
            Disk::Opfs(f) => f,
        };
        let mut b = Batch::append();
        if let Some(upto) = commit.delete_upto {
            b.delete_upto(TAG_OUTBOX, &idb::outbox_key(upto));
        }
        for (seq, data) in commit.puts {
            b.put(TAG_OUTBOX, &idb::outbox_key(seq), &data);
        }
        f.write(b).await
    }

    /// Closes the store; once this returns the next owner can open it.
    pub async fn close(self) {
        match self {
            Disk::Idb(db) => db.close(),
            Disk::Opfs(f) => f.close().await,
        }
    }
}

/// A journal commit as the log's writes: the same records and deletions IndexedDB's
/// transaction makes ([`idb::write`]).
fn batch_of(ops: Vec<Op>) -> Batch {
    let mut b = Batch::append();
    for op in ops {
        match op {
            Op::Wipe(stream) => {
                b.delete_prefix(TAG_BLOCK, &format!("{stream}\0"));
                b.delete(TAG_META, &idb::config_key(&stream));
                for prefix in idb::meta_prefixes(&stream) {
                    b.delete_prefix(TAG_META, &prefix);
                }
            }
            Op::PutBlock(key, data) => b.put(TAG_BLOCK, &key, &data),
            Op::AppendBlock(key, tail) => b.extend(TAG_BLOCK, &key, &tail),
            Op::DeleteBlock(key) => b.delete(TAG_BLOCK, &key),
            Op::PutMeta(key, data) => b.put(TAG_META, &key, &data),
            Op::DeleteMeta(key) => b.delete(TAG_META, &key),
        }
    }
    b
}

/// Deletes everything bus `name` stored, in IndexedDB and (where there is one) OPFS.
pub async fn delete(name: &str) -> Result<(), StoreError> {
    idb::delete(name).await?;
    if opfs::available().await {
        opfs::delete(name).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::idb::{IdbStorage, SharedJournal};
    use crate::opfs_log::{replay, State};
    use bytes::Bytes;
    use edgebus_core::jetstream::store::{contract, Storage, StoredMsg};

    fn scan(j: &SharedJournal) -> Vec<Vec<u64>> {
        let mut storage = IdbStorage::new(j.clone());
        let mut all = storage
            .recover()
            .unwrap()
            .into_iter()
            .map(|(_, mut s)| {
                let mut seqs = Vec::new();
                s.scan(&mut |m| seqs.push(m.seq)).unwrap();
                seqs
            })
            .collect::<Vec<_>>();
        all.sort();
        all
    }

    /// The store contract run over the journal, every commit written to the log as the bus
    /// writes it, the log read back: the same streams, messages, configs and consumers, and a
    /// compacted log reads back the same again.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_log_holds_what_the_journal_committed() {
        let journal = SharedJournal::default();
        let mut storage = IdbStorage::new(journal.clone());
        let mut file = State::default().snapshot(1);
        let replay = |file: &[u8]| replay(&Bytes::copy_from_slice(file));
        let commit = |file: &mut Vec<u8>| file.extend(batch_of(journal.borrow_mut().take_ops_with(true)).frame());
        let mut a = storage.create("A", b"{\"a\":1}").unwrap();
        contract::exercise(a.as_mut());
        commit(&mut file);
        let mut b = storage.create("B", b"{}").unwrap();
        for seq in 1..=700 {
            let msg = StoredMsg {
                seq,
                subject: Bytes::from("b.x"),
                headers: None,
                payload: Bytes::from(vec![1; 40]),
                time: seq,
            };
            b.append(&msg).unwrap();
            if seq % 97 == 0 {
                commit(&mut file);
            }
        }
        b.compact(300).unwrap();
        b.save_consumer("c", b"state").unwrap();
        commit(&mut file);
        // a stream created anew under an old name starts empty
        a.destroy().unwrap();
        let mut a = storage.create("A", b"{\"a\":2}").unwrap();
        a.append(&StoredMsg { seq: 1, subject: Bytes::from("a"), headers: None, payload: Bytes::new(), time: 1 })
            .unwrap();
        commit(&mut file);

        let check = |state: &State| {
            let loaded = Journal::from_records(state.records(TAG_META), state.records(TAG_BLOCK));
            let back = SharedJournal::new(loaded);
            assert_eq!(scan(&back), scan(&journal));
            let mut s = IdbStorage::new(back);
            let mut configs: Vec<Vec<u8>> = s.recover().unwrap().into_iter().map(|(c, _)| c).collect();
            configs.sort();
            assert_eq!(configs, [b"{\"a\":2}".to_vec(), b"{}".to_vec()]);
        };
        let r = replay(&file).unwrap();
        assert_eq!(r.valid_len, file.len());
        check(&r.state);
        let compacted = r.state.snapshot(2);
        assert!(compacted.len() < file.len() / 2, "{} of {}", compacted.len(), file.len());
        check(&replay(&compacted).unwrap().state);
    }
}
