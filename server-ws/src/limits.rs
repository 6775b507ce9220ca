//! The connection limits a reload may change (`max_payload`, `max_control_line`,
//! `max_connections`, `ping_interval`, `ping_max`, `write_deadline`: the ones nats-server
//! 2.14 reloads; `max_pending` and `max_subscriptions` it refuses, and so does edgebus).
//!
//! They live in atomics rather than in the fixed `Shared::opts`, so a reload swaps them
//! without a lock anyone takes per message: the accept path, the ping and write loops read
//! them where they used to read the options, and a connection's reader compares one
//! generation counter per read to learn that its parser's limits must be refreshed, as
//! nats-server stores the new `mpay`/`mcl` into every client.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use edgebus_core::proto::Limits;

use crate::options::Options;

/// The reloadable limits, as the server runs them now.
pub struct LiveLimits {
    max_payload: AtomicI32,
    max_control_line: AtomicI32,
    max_connections: AtomicI32,
    ping_max: AtomicI32,
    /// Microseconds: enough for any configured duration, and fits an atomic.
    ping_interval_us: AtomicU64,
    write_deadline_us: AtomicU64,
    /// Bumped by every [`LiveLimits::set`]; readers that copied the limits compare it.
    generation: AtomicU64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl LiveLimits {
    pub fn new(o: &Options) -> LiveLimits {
        LiveLimits {
            max_payload: AtomicI32::new(o.max_payload),
            max_control_line: AtomicI32::new(o.max_control_line),
            max_connections: AtomicI32::new(o.max_connections),
            ping_max: AtomicI32::new(o.ping_max),
            ping_interval_us: AtomicU64::new(micros(o.ping_interval)),
            write_deadline_us: AtomicU64::new(micros(o.write_deadline)),
            generation: AtomicU64::new(0),
        }
    }

    /// Puts the limits of `o` in place. Returns nats-server's notice for each one that
    /// changed (`max_payload = 512`), for the log.
    pub fn set(&self, o: &Options) -> Vec<String> {
        let mut notices = Vec::new();
        let mut i32s = |cell: &AtomicI32, new: i32, name: &str| {
            if cell.swap(new, Ordering::AcqRel) != new {
                notices.push(format!("{name} = {new}"));
            }
        };
        i32s(&self.max_payload, o.max_payload, "max_payload");
        i32s(&self.max_control_line, o.max_control_line, "max_control_line");
        i32s(&self.max_connections, o.max_connections, "max_connections");
        i32s(&self.ping_max, o.ping_max, "ping_max");
        let mut durations = |cell: &AtomicU64, new: Duration, name: &str| {
            if cell.swap(micros(new), Ordering::AcqRel) != micros(new) {
                notices.push(format!("{name} = {new:?}"));
            }
        };
        durations(&self.ping_interval_us, o.ping_interval, "ping_interval");
        durations(&self.write_deadline_us, o.write_deadline, "write_deadline");
        self.generation.fetch_add(1, Ordering::AcqRel);
        notices
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn max_payload(&self) -> i32 {
        self.max_payload.load(Ordering::Relaxed)
    }

    pub fn max_control_line(&self) -> i32 {
        self.max_control_line.load(Ordering::Relaxed)
    }

    pub fn max_connections(&self) -> i32 {
        self.max_connections.load(Ordering::Relaxed)
    }

    pub fn ping_max(&self) -> i32 {
        self.ping_max.load(Ordering::Relaxed)
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_micros(self.ping_interval_us.load(Ordering::Relaxed))
    }

    pub fn write_deadline(&self) -> Duration {
        Duration::from_micros(self.write_deadline_us.load(Ordering::Relaxed))
    }

    /// What a client connection's parser enforces.
    pub fn parser(&self) -> Limits {
        Limits {
            max_control_line: self.max_control_line().max(1) as usize,
            max_payload: self.max_payload().max(0) as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_names_what_changed_and_moves_the_generation() {
        let mut o = Options::default();
        let live = LiveLimits::new(&o);
        assert!(live.set(&o).is_empty());
        assert_eq!(live.generation(), 1);
        o.max_payload = 512;
        o.write_deadline = Duration::from_millis(1500);
        assert_eq!(live.set(&o), ["max_payload = 512", "write_deadline = 1.5s"]);
        assert_eq!((live.max_payload(), live.write_deadline()), (512, Duration::from_millis(1500)));
        assert_eq!(live.parser().max_payload, 512);
    }
}
