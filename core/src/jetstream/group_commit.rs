//! Acks that wait for a sync. Under `sync_interval: always` a publish that arrives on the bus
//! is appended at once but its ack is held: before the engine hands out any output
//! ([`JetStream::commit_step`], then [`JetStream::take_outbound`]) every stream with held acks
//! syncs once, and each held ack either goes out as it is (the sync returned `Ok`) or is
//! replaced by the 503 a failed store answers. One step's publishes — whatever the host
//! collected while the previous step was syncing — thus cost one sync per stream. The rule (no
//! ack before the sync that covers it) lives here and in `stream/commit.rs`; how much to
//! collect per step is the host's choice.
//!
//! Deliveries wait the same way: consumers and sources only see what a sync covered
//! (`Stream::visible_last`), so after the commit the committed streams are pumped again, and
//! what they deliver goes out behind the acks. A republished copy is held with the ack and
//! dropped if the sync fails; the refused messages themselves leave the stream.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;
use serde::Serialize;

use super::engine::{Interest, JetStream, PubAck};
use super::errors::ApiError;

/// What the current step deferred.
#[derive(Default)]
pub(super) struct Held {
    /// Streams with publishes waiting for a sync, each once.
    streams: Vec<String>,
    /// Held acks: the index in the engine's output, and the stream.
    acks: Vec<(usize, String)>,
    /// Held republished copies, likewise: they go out only if the sync succeeds.
    copies: Vec<(usize, String)>,
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

    /// Holds the republished copy just pushed last into the output until `stream` has synced.
    pub(super) fn hold_last_copy(&mut self, stream: &str) {
        if let Some(at) = self.out.len().checked_sub(1) {
            self.held.copies.push((at, stream.into()));
        }
    }

    /// The step's commit, for hosts: [`JetStream::commit_publishes`], then every stream it
    /// synced delivers what the sync made visible (or hears of what a failed one took back).
    pub fn commit_step(&mut self, now: u64, interest: &dyn Interest) {
        let synced = self.commit_publishes();
        for name in synced {
            self.pump_stream(&name, now, interest);
        }
    }

    /// Syncs every stream with deferred publishes once, turns the held acks of a stream whose
    /// sync failed into errors and drops its held copies; returns the streams it synced.
    pub(super) fn commit_publishes(&mut self) -> Vec<String> {
        if self.held.streams.is_empty() {
            return Vec::new();
        }
        let Held { streams, acks, copies } = core::mem::take(&mut self.held);
        let mut failed: Vec<(String, ApiError)> = Vec::new();
        for name in &streams {
            // a stream deleted since has nothing left to make durable
            if let Some(Err(e)) = self.streams.get_mut(name).map(|e| e.stream.commit()) {
                failed.push((name.clone(), e));
            }
        }
        if failed.is_empty() {
            return streams;
        }
        for (at, name) in acks {
            let Some((_, e)) = failed.iter().find(|(n, _)| *n == name) else { continue };
            if let Some(o) = self.out.get_mut(at) {
                o.payload = pub_answer(&Err(e.clone()), &name);
            }
        }
        // last first, so that the indexes of the others stay right
        for (at, _) in copies.iter().rev().filter(|(_, name)| failed.iter().any(|(n, _)| n == name)) {
            if *at < self.out.len() {
                self.out.remove(*at);
            }
        }
        streams
    }
}
