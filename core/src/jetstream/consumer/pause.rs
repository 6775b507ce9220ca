//! Consumer pause (nats-server 2.11): a consumer whose `pause_until` lies ahead delivers
//! nothing, push or pull, while its pull requests still queue, expire and get heartbeats.
//! The deadline lives in the config, so it survives a restart with the rest of the config;
//! the core has no clock, so resuming is one more deadline the host fires
//! ([`Consumer::next_deadline`]), which also sends the resume advisory as nats-server's
//! unpause timer does.

use alloc::string::String;

use super::{Consumer, ConsumerEvent};
use crate::jetstream::config::ConsumerConfig;
use crate::jetstream::errors::ApiError;
use crate::jetstream::time::{parse_rfc3339, rfc3339};

impl ConsumerConfig {
    /// Reads `pause_until` as nats-server does (a time, kept in UTC with Go's format); an
    /// empty value or Go's zero time means "not paused".
    pub(crate) fn normalize_pause(&mut self) -> Result<(), ApiError> {
        let Some(text) = self.pause_until.as_deref() else { return Ok(()) };
        let Some(at) = parse_rfc3339(text) else {
            return Err(ApiError::invalid_json(alloc::format!("parsing time {text:?} as RFC 3339: cannot parse")));
        };
        self.pause_until = (at > 0).then(|| rfc3339(at));
        Ok(())
    }

    /// The pause deadline in nanoseconds since the epoch (0: none).
    pub(crate) fn pause_deadline(&self) -> u64 {
        self.pause_until.as_deref().and_then(parse_rfc3339).unwrap_or(0)
    }
}

impl Consumer {
    /// Whether delivery is held back at `now`.
    pub fn is_paused(&self, now: u64) -> bool {
        self.paused_until > now
    }

    /// How long the pause still lasts at `now` (0: not paused).
    pub fn pause_remaining(&self, now: u64) -> u64 {
        self.paused_until.saturating_sub(now)
    }

    /// Takes a new `pause_until` (None resumes), from the PAUSE API or a config update; a
    /// change is announced with the pause advisory, as nats-server's `updateConfig` does.
    pub fn set_pause(&mut self, until: Option<String>, now: u64) {
        let changed = self.state.config.pause_until != until;
        self.state.config.pause_until = until;
        self.arm_pause(now);
        if changed {
            self.dirty = true;
            self.pause_event(now);
        }
    }

    /// Arms the resume deadline from the config; a deadline already past arms nothing.
    pub(super) fn arm_pause(&mut self, now: u64) {
        let at = self.state.config.pause_deadline();
        self.paused_until = if at > now { at } else { 0 };
    }

    fn pause_event(&mut self, now: u64) {
        let at = self.state.config.pause_deadline();
        self.events.push(ConsumerEvent::Pause { paused: at > now, until: rfc3339(at) });
    }

    /// The pause deadline passed: deliver again and say so.
    pub(super) fn on_pause_timeout(&mut self, now: u64) {
        if self.paused_until != 0 && self.paused_until <= now {
            self.paused_until = 0;
            self.pause_event(now);
        }
    }
}
