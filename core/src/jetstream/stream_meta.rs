//! What a stream's store keeps next to its messages (its configuration, creation time, last
//! sequence and source positions), and when the engine writes it: at create, after changes
//! that must survive a restart, and on the periodic save.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;
use serde_json::Value;

use super::config::{StorageType, StreamConfig};
use super::consumer::{Consumer, ConsumerState, Consumers};
use super::engine::{Entry, JetStream};
use super::store::StoreError;
use super::stream::Stream;
use super::SubChange;
use crate::json::typed::{self, Fields, FromJson};

/// What a stream's store keeps next to its messages.
#[derive(Serialize)]
pub(super) struct StreamMeta {
    config: StreamConfig,
    created: u64,
    last_seq: u64,
    /// The last origin sequence each mirror or source link took (`source/link.rs`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sources: BTreeMap<String, u64>,
}

impl FromJson for StreamMeta {
    fn from_json(v: &Value) -> typed::Result<Self> {
        let f = Fields::of(v, "struct StreamMeta")?;
        Ok(StreamMeta {
            config: f.need("config")?,
            created: f.need("created")?,
            last_seq: f.get("last_seq", 0)?,
            sources: f.get("sources", BTreeMap::new())?,
        })
    }
}

/// What a stream's metadata record holds now: its config, creation time, last sequence and
/// the positions of its sources (`sourcing`, if it copies from any).
fn meta_of(entry: &Entry, sourcing: Option<&super::source::Links>) -> StreamMeta {
    StreamMeta {
        config: entry.stream.config.clone(),
        created: entry.stream.created,
        last_seq: entry.stream.last_seq(),
        sources: sourcing.map(|l| l.positions()).unwrap_or_default(),
    }
}

impl JetStream {
    /// Brings back one recovered stream with its consumers. A consumer whose saved state
    /// cannot be read is left out with a warning, as nats-server skips a consumer whose
    /// metadata it cannot decode: the stream and its messages must not go with it (a
    /// consumer file written under an interval policy and lost to a failed fsync took the
    /// whole stream with it before; EIO soak, interval, seed 1000809).
    pub(super) fn restore(
        &mut self,
        meta: Vec<u8>,
        store: alloc::boxed::Box<dyn super::store::StreamStore>,
        now: u64,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        let meta: StreamMeta = typed::from_slice(&meta).map_err(|e| format!("unreadable stream metadata: {e}"))?;
        let name = meta.config.name.clone();
        let (saved_sources, saved_last) = (meta.sources, meta.last_seq);
        let mut stream = Stream::new(meta.config, meta.created, store);
        stream.recover(now, meta.last_seq).map_err(|e| format!("stream {name}: {e}"))?;
        let mut consumers = Consumers::new(&self.push_waiting);
        let saved = stream.store_mut().consumers().map_err(|e| format!("stream {name} consumers: {e}"))?;
        for (cname, bytes) in saved {
            match typed::from_slice::<ConsumerState>(&bytes) {
                Ok(state) => {
                    consumers.insert(cname.clone(), Consumer::from_state(cname, &stream, state, now));
                }
                Err(e) => warnings.push(format!("stream {name}: consumer {cname} unreadable, left out: {e}")),
            }
        }
        for s in &stream.config.subjects {
            self.subs.push(SubChange::Add(s.clone()));
        }
        let last = stream.last_seq();
        self.streams.insert(name.clone(), Entry { stream, consumers, saved_last_seq: last });
        self.restore_sourcing(&name, saved_sources, saved_last);
        self.restore_open_batches(&name, now);
        Ok(())
    }

    /// Writes dirty consumer states and changed stream metadata (also at shutdown).
    pub fn flush(&mut self) {
        for (name, entry) in self.streams.iter_mut() {
            if entry.stream.last_seq() != entry.saved_last_seq {
                let meta = meta_of(entry, self.sourcing.get(name));
                if let Ok(bytes) = serde_json::to_vec(&meta) {
                    if entry.stream.store_mut().save_config(&bytes).is_ok() {
                        entry.saved_last_seq = meta.last_seq;
                    }
                }
            }
            for c in entry.consumers.values_mut() {
                if c.dirty && entry.stream.store_mut().save_consumer(&c.name, &c.saved_state()).is_ok() {
                    c.dirty = false;
                }
            }
            if entry.stream.acks_wait_for_sync() {
                let _ = entry.stream.store_mut().sync();
            }
        }
    }

    pub(super) fn create_stream(&mut self, config: StreamConfig, now: u64) -> Result<(), StoreError> {
        let meta = StreamMeta {
            config: config.clone(),
            created: now,
            last_seq: config.first_seq.unwrap_or(1).saturating_sub(1),
            sources: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&meta).unwrap_or_default();
        let store = match config.storage {
            StorageType::File => self.file.create(&config.name, &bytes)?,
            StorageType::Memory => self.memory.create(&config.name, &bytes)?,
        };
        for s in &config.subjects {
            self.subs.push(SubChange::Add(s.clone()));
        }
        let name = config.name.clone();
        let stream = Stream::new(config, now, store);
        let last = stream.last_seq();
        self.streams
            .insert(name, Entry { stream, consumers: Consumers::new(&self.push_waiting), saved_last_seq: last });
        Ok(())
    }

    pub(super) fn save_stream_meta(&mut self, name: &str) {
        if let Some(entry) = self.streams.get_mut(name) {
            let meta = meta_of(entry, self.sourcing.get(name));
            if let Ok(bytes) = serde_json::to_vec(&meta) {
                let _ = entry.stream.store_mut().save_config(&bytes);
                entry.saved_last_seq = meta.last_seq;
            }
        }
    }
}
