//! The checks on `mirror` and `sources` that look at the other streams: no cycle (nats-server's
//! walk, in its order) and no origin whose messages could be too big for the copy.

use alloc::string::String;
use alloc::vec::Vec;

use super::super::config::StreamConfig;
use super::super::engine::JetStream;
use super::super::errors::ApiError;
use crate::subject;

/// Bounds the walk whatever the existing streams look like.
const MAX_VISITS: usize = 10_000;

impl JetStream {
    /// A mirror of a stream that is here answers direct gets as its origin does: nats-server
    /// sets `mirror_direct` to the origin's `allow_direct` whatever was asked (before it compares
    /// the config with an existing one).
    pub(in super::super) fn with_mirror_direct(&self, mut cfg: StreamConfig) -> StreamConfig {
        let origin = cfg.mirror.as_ref().filter(|m| m.external.is_none() && m.name != cfg.name);
        if let Some(o) = origin.and_then(|m| self.streams.get(&m.name)) {
            cfg.mirror_direct = o.stream.config.allow_direct;
        }
        cfg
    }

    /// May a stream with `cfg` (new, or replacing the stream of that name) exist next to the
    /// other streams?
    pub(in super::super) fn check_sourcing(&self, cfg: &StreamConfig) -> Result<(), ApiError> {
        let other = |name: &str| (name != cfg.name).then(|| self.streams.get(name)).flatten().map(|e| &e.stream.config);
        if let Some(m) = cfg.mirror.as_ref().filter(|m| m.external.is_none()) {
            if let Some(o) = other(&m.name) {
                if cfg.max_msg_size > 0 && o.max_msg_size > 0 && cfg.max_msg_size < o.max_msg_size {
                    return Err(ApiError::with(400, 10030, "stream mirror must have max message size >= source"));
                }
            }
        }
        for src in cfg.sources.iter().filter(|s| s.external.is_none()) {
            if let Some(o) = other(&src.name) {
                if cfg.max_msg_size > 0 && o.max_msg_size > 0 && cfg.max_msg_size < o.max_msg_size {
                    return Err(ApiError::with(400, 10046, "stream source must have max message size >= target"));
                }
            }
        }
        let cycle = || ApiError::stream_config("detected cycle");
        let mut to_visit: Vec<&StreamConfig> = alloc::vec![cfg];
        let mut visited: Vec<String> = Vec::new();
        let mut visits = 0;
        while let Some(c) = (!to_visit.is_empty()).then(|| to_visit.remove(0)) {
            visits += 1;
            if visits > MAX_VISITS {
                break;
            }
            visited.push(c.name.clone());
            for src in c.sources.iter().filter(|s| s.external.is_none()) {
                if visited.contains(&src.name) {
                    let overlaps = src.filter_subject.is_empty()
                        || c.subjects.iter().any(|s| subject::overlaps(s.as_bytes(), src.filter_subject.as_bytes()));
                    if overlaps {
                        return Err(cycle());
                    }
                } else if let Some(o) = other(&src.name) {
                    to_visit.push(o);
                }
            }
            if let Some(m) = c.mirror.as_ref().filter(|m| m.external.is_none()) {
                if visited.contains(&m.name) {
                    return Err(cycle());
                }
                if let Some(o) = other(&m.name) {
                    to_visit.push(o);
                }
            }
        }
        Ok(())
    }
}
