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

    /// Makes one journal commit durable.
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let f = match self {
            Disk::Idb(db) => return idb::write(db, ops).await,
            Disk::Opfs(f) => f,
        };
        let mut b = Batch::append();
        for op in ops {
            match op {
                Op::Wipe(stream) => {
                    b.delete_prefix(TAG_BLOCK, &format!("{stream}\0"));
                    b.delete(TAG_META, &idb::config_key(&stream));
                    b.delete_prefix(TAG_META, &format!("c\0{stream}\0"));
                }
                Op::PutBlock(key, data) => b.put(TAG_BLOCK, &key, &data),
                Op::DeleteBlock(key) => b.delete(TAG_BLOCK, &key),
                Op::PutMeta(key, data) => b.put(TAG_META, &key, &data),
                Op::DeleteMeta(key) => b.delete(TAG_META, &key),
            }
        }
        f.write(b).await
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

/// Deletes everything bus `name` stored, in IndexedDB and (where there is one) OPFS.
pub async fn delete(name: &str) -> Result<(), StoreError> {
    idb::delete(name).await?;
    if opfs::available().await {
        opfs::delete(name).await?;
    }
    Ok(())
}
