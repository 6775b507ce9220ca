//! Acks that wait for a sync. Under `sync_interval: always` a publish that arrives on the bus
//! is appended at once but its ack is held: before the engine hands out any output
//! ([`JetStream::take_outbound`]) every stream with held acks syncs once, and each held ack
//! either goes out as it is (the sync returned `Ok`) or is replaced by the 503 a failed store
//! answers. One step's publishes — whatever the host collected while the previous step was
//! syncing — thus cost one sync per stream. The rule (no ack before the sync that covers it)
//! lives here and in `stream/commit.rs`; how much to collect per step is the host's choice.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::Serialize;

use super::engine::{JetStream, PubAck};
use super::errors::ApiError;

/// What the current step deferred.
#[derive(Default)]
pub(super) struct Held {
    /// Streams with publishes waiting for a sync, each once.
    streams: Vec<String>,
    /// Held acks: the index in the engine's output, and the stream.
    acks: Vec<(usize, String)>,
}

/// A publisher's answer: the ack, or the error with the stream's name as nats-server sends it.
pub(super) fn pub_answer(result: &Result<PubAck, ApiError>, stream: &str) -> Bytes {
    #[derive(Serialize)]
    struct PubErr<'a> {
        error: &'a ApiError,
        stream: &'a str,
        seq: u64,
    }
    let json = match result {
        Ok(ack) => serde_json::to_vec(ack),
        Err(error) => serde_json::to_vec(&PubErr { error, stream, seq: 0 }),
    };
    Bytes::from(json.unwrap_or_default())
}

impl JetStream {
    /// Notes that `stream` appended a publish whose durability waits for the commit.
    pub(super) fn defer_sync(&mut self, stream: &str) {
        if !self.held.streams.iter().any(|s| s == stream) {
            self.held.streams.push(stream.into());
        }
    }

    /// Holds the ack just pushed last into the output until `stream` has synced.
    pub(super) fn hold_last_ack(&mut self, stream: &str) {
        if let Some(at) = self.out.len().checked_sub(1) {
            self.held.acks.push((at, stream.into()));
        }
    }

    /// Syncs every stream with deferred publishes once, and turns the held acks of a stream
    /// whose sync failed into errors.
    pub(super) fn commit_publishes(&mut self) {
        if self.held.streams.is_empty() {
            return;
        }
        let Held { streams, acks } = core::mem::take(&mut self.held);
        let mut failed: Vec<(String, ApiError)> = Vec::new();
        for name in streams {
            // a stream deleted since has nothing left to make durable
            if let Some(Err(e)) = self.streams.get_mut(&name).map(|e| e.stream.commit()) {
                failed.push((name, e));
            }
        }
        if failed.is_empty() {
            return;
        }
        for (at, name) in acks {
            let Some((_, e)) = failed.iter().find(|(n, _)| *n == name) else { continue };
            if let Some(o) = self.out.get_mut(at) {
                o.payload = pub_answer(&Err(e.clone()), &name);
            }
        }
    }
}
