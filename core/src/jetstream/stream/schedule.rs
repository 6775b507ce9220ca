//! Message schedules on a stream (`allow_msg_schedules`): the publish-time checks of the
//! schedule headers, the table of armed schedules (one per subject), and firing them: a due
//! schedule stores a new message on its target, in this stream, as nats-server does.
//!
//! The table is not persisted: it is rebuilt from the stored schedule messages when the
//! stream is recovered, so schedules survive a restart with every backend.

use alloc::vec::Vec;
use bytes::Bytes;

use super::Stream;
use crate::jetstream::errors::ApiError;
use crate::jetstream::schedule::{self as pattern, next_fire};
use crate::jetstream::time::rfc3339;
use crate::proto::{fields, header_value, Headers};
use crate::subject;

/// A schedule waiting to fire: the sequence of its message and when.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Armed {
    pub(crate) seq: u64,
    pub(crate) next: u64,
}

impl Stream {
    /// Checks the schedule headers of a client publish on `subj`, in nats-server's order.
    /// Returns when the schedule first fires, and the headers to store when they change
    /// (a schedule carries `Nats-Rollup: sub`, so a new one replaces the old).
    pub(crate) fn check_schedule(
        &self,
        now: u64,
        subj: &[u8],
        headers: Option<&[u8]>,
    ) -> Result<(Option<u64>, Option<Bytes>), ApiError> {
        let Some(block) = headers else { return Ok((None, None)) };
        let allow = self.config.allow_msg_schedules;
        let h = |name: &[u8]| header_value(block, name);
        let pat = h(b"Nats-Schedule").unwrap_or_default();
        let mut result = (None, None);
        match next_fire(pat, h(b"Nats-Schedule-Time-Zone"), now, now) {
            Err(_) if !allow => return Err(pattern::DISABLED),
            Err(e) => return Err(e),
            Ok(None) => {}
            Ok(Some(_)) if !allow => return Err(pattern::DISABLED),
            Ok(Some((next, _))) => {
                let ttl = h(b"Nats-Schedule-TTL").filter(|t| !t.is_empty());
                if let Some(t) = ttl {
                    super::parse_ttl(t).map_err(|_| pattern::TTL_INVALID)?;
                }
                if h(b"Nats-Schedule-Rollup").is_some_and(|r| !r.is_empty() && r != b"sub") {
                    return Err(pattern::ROLLUP_INVALID);
                }
                if ttl.is_some() && !self.config.allow_msg_ttl {
                    return Err(ApiError::MSG_TTL_DISABLED);
                }
                let target = h(b"Nats-Schedule-Target").unwrap_or_default();
                if target.is_empty() || subject::validate_publish(target).is_err() || target == subj {
                    return Err(pattern::TARGET_INVALID);
                }
                let source = h(b"Nats-Schedule-Source").filter(|s| !s.is_empty());
                if let Some(s) = source {
                    if s == target || s == subj || subject::validate_publish(s).is_err() {
                        return Err(pattern::SOURCE_INVALID);
                    }
                }
                let ours = |s: &[u8]| self.config.subjects.iter().any(|c| subject::overlaps(c.as_bytes(), s));
                if !ours(target) {
                    return Err(pattern::TARGET_INVALID);
                }
                if source.is_some_and(|s| !ours(s)) {
                    return Err(pattern::SOURCE_INVALID);
                }
                match h(b"Nats-Rollup").filter(|r| !r.is_empty()) {
                    None => {
                        let mut parsed = Headers::parse(block).map_err(|_| ApiError::BAD_REQUEST)?;
                        parsed.append("Nats-Rollup", "sub");
                        result = (Some(next), Some(parsed.to_bytes()));
                    }
                    Some(b"sub") => result = (Some(next), None),
                    Some(_) => return Err(pattern::ROLLUP_INVALID),
                }
            }
        }
        if self.firing {
            return Ok(result);
        }
        if let Some(next) = h(b"Nats-Schedule-Next").filter(|n| !n.is_empty()) {
            // clients may only use it to cancel a schedule
            let scheduler = h(b"Nats-Scheduler").unwrap_or_default();
            if next != b"purge"
                || scheduler.is_empty()
                || scheduler == subj
                || subject::validate_publish(scheduler).is_err()
            {
                return Err(pattern::SCHEDULER_INVALID);
            }
            if !allow {
                return Err(pattern::DISABLED);
            }
            // what it names must be a schedule (every live one is armed)
            if self.subjects.get(scheduler).is_some_and(|s| !s.is_empty()) && !self.schedules.contains_key(scheduler) {
                return Err(pattern::SCHEDULER_INVALID);
            }
        } else if h(b"Nats-Scheduler").is_some_and(|s| !s.is_empty()) {
            return Err(pattern::SCHEDULER_INVALID);
        }
        Ok(result)
    }

    /// After a message is stored: a schedule arms (replacing the subject's old one), and a
    /// message with `Nats-Schedule-Next: purge` removes the schedule it names.
    pub(crate) fn after_schedule_store(
        &mut self,
        subj: &[u8],
        seq: u64,
        armed: Option<u64>,
        headers: Option<&[u8]>,
    ) -> Result<(), ApiError> {
        if let Some(next) = armed {
            self.schedules.insert(Bytes::copy_from_slice(subj), Armed { seq, next });
        }
        let Some(block) = headers else { return Ok(()) };
        if header_value(block, b"Nats-Schedule-Next") == Some(b"purge") {
            if let Some(scheduler) = header_value(block, b"Nats-Scheduler").filter(|s| !s.is_empty()) {
                self.schedules.remove(scheduler);
                if let Ok(filter) = core::str::from_utf8(scheduler) {
                    self.purge(Some(filter), None, None)?;
                }
            }
        }
        Ok(())
    }

    /// When the next schedule is due.
    pub(crate) fn next_schedule(&self) -> Option<u64> {
        self.schedules.values().map(|a| a.next).min()
    }

    /// Fires every schedule due at `now`, oldest schedule message first.
    pub(crate) fn fire_schedules(&mut self, now: u64) -> Result<(), ApiError> {
        let mut due: Vec<(u64, Bytes, u64)> =
            self.schedules.iter().filter(|(_, a)| a.next <= now).map(|(s, a)| (a.seq, s.clone(), a.next)).collect();
        due.sort_unstable_by_key(|d| d.0);
        for (seq, subj, at) in due {
            let msg = match self.load(seq)? {
                Some(m) if m.subject == subj => m,
                _ => {
                    self.schedules.remove(&subj);
                    continue;
                }
            };
            let block = msg.headers.clone().unwrap_or_default();
            let h = |name: &[u8]| header_value(&block, name).filter(|v| !v.is_empty());
            let Ok(Some((next, repeat))) =
                next_fire(h(b"Nats-Schedule").unwrap_or_default(), h(b"Nats-Schedule-Time-Zone"), at, now)
            else {
                self.schedules.remove(&subj);
                continue;
            };
            let Some(target) = h(b"Nats-Schedule-Target") else {
                self.schedules.remove(&subj);
                continue;
            };
            let target = Bytes::copy_from_slice(target);
            let (ttl, rollup) = (
                h(b"Nats-Schedule-TTL").map(Bytes::copy_from_slice),
                h(b"Nats-Schedule-Rollup").map(Bytes::copy_from_slice),
            );
            let mut body = (msg.headers.clone(), msg.payload.clone());
            if let Some(source) = h(b"Nats-Schedule-Source") {
                if let Some(last) = self.subjects.get(source).and_then(|s| s.back().copied()) {
                    if let Some(m) = self.load(last)? {
                        body = (m.headers, m.payload);
                    }
                }
            }
            let mut out = Headers::new();
            for (name, value) in body.0.as_deref().map(fields).into_iter().flatten().flatten() {
                let dropped = name.starts_with(b"Nats-Schedule")
                    || name.starts_with(b"Nats-Expected-")
                    || [&b"Nats-Msg-Id"[..], b"Nats-TTL", b"Nats-Rollup"].contains(&name);
                if !dropped {
                    out.append(
                        &alloc::string::String::from_utf8_lossy(name),
                        &alloc::string::String::from_utf8_lossy(value),
                    );
                }
            }
            out.append("Nats-Scheduler", &alloc::string::String::from_utf8_lossy(&subj));
            let next_text = if repeat { rfc3339(next) } else { "purge".into() };
            out.append("Nats-Schedule-Next", &next_text);
            if let Some(t) = &ttl {
                out.append("Nats-TTL", &alloc::string::String::from_utf8_lossy(t));
            }
            if let Some(r) = &rollup {
                out.append("Nats-Rollup", &alloc::string::String::from_utf8_lossy(r));
            }
            if repeat {
                self.schedules.insert(subj.clone(), Armed { seq, next });
            } else {
                self.schedules.remove(&subj);
            }
            self.firing = true;
            // a refused message (a limit, say) is dropped, and a repeating schedule goes on,
            // as nats-server's scheduler does
            let _ = self.publish(now, &target, Some(&out.to_bytes()), &body.1);
            self.firing = false;
        }
        Ok(())
    }

    /// Arms the schedules found among the recovered messages.
    pub(crate) fn recover_schedules(&mut self, now: u64) {
        if !self.config.allow_msg_schedules {
            return;
        }
        let seqs: Vec<u64> = self.index.keys().copied().collect();
        for seq in seqs {
            let Ok(Some(m)) = self.load(seq) else { continue };
            let Some(block) = m.headers.as_deref() else { continue };
            let h = |name: &[u8]| header_value(block, name).filter(|v| !v.is_empty());
            let Some(pat) = h(b"Nats-Schedule") else { continue };
            if let Ok(Some((next, _))) = next_fire(pat, h(b"Nats-Schedule-Time-Zone"), m.time, now) {
                self.schedules.insert(m.subject.clone(), Armed { seq, next });
            }
        }
    }
}
