//! The stream-config rules of the 2.12 features (counters, atomic batches, schedules), as
//! nats-server's `checkStreamCfg` / `update` apply them, kept apart from the older settings.

use super::config::{Discard, Retention, StreamConfig};
use super::errors::ApiError;

/// Applies the implied settings and refuses the combinations nats-server refuses.
pub(super) fn normalize(c: &mut StreamConfig) -> Result<(), ApiError> {
    if c.allow_msg_counter {
        if c.discard == Discard::New {
            return Err(ApiError::stream_config("counter stream cannot use discard new"));
        }
        if c.allow_msg_ttl {
            return Err(ApiError::stream_config("counter stream cannot use message TTLs"));
        }
        if c.retention != Retention::Limits {
            return Err(ApiError::stream_config("counter stream can only use limits retention"));
        }
    }
    // nats-server 2.14 accepts schedules with discard new and with counters (its checks for
    // those are not reached), and so does this
    if c.allow_msg_schedules {
        // a schedule replaces the previous one on its subject through a rollup
        c.allow_rollup_hdrs = true;
        c.deny_purge = false;
    }
    Ok(())
}

/// What an update may not change.
pub(super) fn check_update(old: &StreamConfig, new: &StreamConfig) -> Result<(), ApiError> {
    if old.allow_msg_counter != new.allow_msg_counter {
        return Err(ApiError::stream_config("stream configuration update can not change message counter setting"));
    }
    if old.allow_msg_schedules && !new.allow_msg_schedules {
        return Err(ApiError::stream_config("message schedules can not be disabled"));
    }
    Ok(())
}

/// The API level a config needs (`_nats.req.level`), by nats-server's `jetstream_versioning.go`.
pub(super) fn required_level(c: &StreamConfig) -> &'static str {
    if c.allow_batched {
        "4"
    } else if c.allow_msg_counter || c.allow_atomic || c.allow_msg_schedules || !c.persist_mode.is_default() {
        "2"
    } else if c.allow_msg_ttl || c.subject_delete_marker_ttl.is_some() {
        "1"
    } else {
        "0"
    }
}
