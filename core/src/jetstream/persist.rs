//! `persist_mode`: nats-server 2.12's opt-in to flushing a file stream's writes
//! asynchronously. edgebus accepts and echoes it with nats-server's checks, but stores every
//! stream the default way (a write is handed to storage before the ack), which is at least
//! as durable as asked.

use serde::{Serialize, Serializer};

use super::config::{StorageType, StreamConfig};
use super::errors::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PersistMode {
    #[default]
    Default,
    Async,
}

impl PersistMode {
    /// nats-server's field is an `omitempty` integer: the default is not shown.
    pub fn is_default(&self) -> bool {
        *self == PersistMode::Default
    }
}

impl Serialize for PersistMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            PersistMode::Default => "default",
            PersistMode::Async => "async",
        })
    }
}

/// nats-server's checks on a stream's persist mode.
pub(super) fn check(cfg: &StreamConfig) -> Result<(), ApiError> {
    if cfg.persist_mode == PersistMode::Async && cfg.storage != StorageType::File {
        return Err(ApiError::stream_config("async persist mode is only supported on file storage"));
    }
    if cfg.persist_mode == PersistMode::Async && cfg.allow_atomic {
        return Err(ApiError::stream_config("async persist mode is not supported with atomic batch publish"));
    }
    Ok(())
}

/// An update may not change it.
pub(super) fn check_update(old: &StreamConfig, new: &StreamConfig) -> Result<(), ApiError> {
    if old.persist_mode != new.persist_mode {
        return Err(ApiError::stream_config("stream configuration update can not change persist mode"));
    }
    Ok(())
}
