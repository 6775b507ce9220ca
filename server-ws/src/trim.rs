//! Giving freed memory back to the system once the server goes quiet.
//!
//! glibc's malloc keeps what a burst of load freed. Each tokio worker thread allocates from
//! its own arena, and such an arena only shrinks from its top: after one round of mixed
//! pub/sub and JetStream load the two workers' arenas sat at ~6 MiB each with ~0.2 MiB in
//! use, and the process at 19 MiB instead of 13 for good (bench `memtime`). `malloc_trim(0)`
//! releases the free pages inside every arena (19.3 -> 13.4 MiB). It walks the whole heap
//! under malloc's locks, so it runs only when traffic has stopped, never while it flows.
//!
//! The alternative allocators were measured first (bench A/B against glibc, same tree):
//! jemalloc with a 100 ms decay and a background thread was flat over the rounds and faster
//! on TCP, but cost WebSocket 10-15% more server CPU per message; its default 10 s decay grew
//! 26 -> 49 MiB; mimalloc (v3) held 40-90 MiB. So the allocator stays glibc's, and this
//! module holds the one `unsafe` call the server makes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::server::Shared;

/// How often the traffic counters are looked at. Memory is given back after one whole period
/// with no message, no new connection and no closed one (so between one and two periods
/// after traffic stops).
const QUIET: Duration = Duration::from_millis(500);

/// What changes whenever the server does work that allocates: messages in and out,
/// connections opened, connections open.
type Activity = (u64, u64, u64, usize);

fn activity(shared: &Shared) -> Activity {
    let s = &shared.stats;
    (
        s.in_msgs.load(Ordering::Relaxed),
        s.out_msgs.load(Ordering::Relaxed),
        s.total_connections.load(Ordering::Relaxed),
        shared.clients.lock().len(),
    )
}

/// Decides, one look at the counters per [`QUIET`], when to give memory back: once per
/// stretch of quiet that follows activity, so an idle server does not trim again and again.
#[derive(Debug)]
struct Quiet {
    last: Activity,
    busy_since_trim: bool,
}

impl Quiet {
    fn new(first: Activity) -> Self {
        Quiet { last: first, busy_since_trim: false }
    }

    /// True when memory should be given back now.
    fn observe(&mut self, now: Activity) -> bool {
        if now != self.last {
            self.last = now;
            self.busy_since_trim = true;
            return false;
        }
        std::mem::take(&mut self.busy_since_trim)
    }
}

/// Runs for the life of the server: after traffic stops, gives free heap memory back once.
pub async fn when_quiet(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(QUIET);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = Quiet::new(activity(&shared));
    loop {
        tick.tick().await;
        if quiet.observe(activity(&shared)) {
            // a walk of the heap takes a while on a large one: not on a runtime worker
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    extern "C" {
        /// glibc's `int malloc_trim(size_t pad)`.
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: `malloc_trim` takes no pointer, touches only malloc's own state under malloc's
    // own locks, and may be called from any thread at any time (glibc documents it MT-Safe).
    unsafe {
        malloc_trim(0);
    }
}

/// Other allocators (musl, macOS, Windows) are left to their own ways.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::Quiet;

    #[test]
    fn trims_once_after_activity_stops() {
        let mut q = Quiet::new((0, 0, 0, 0));
        assert!(!q.observe((0, 0, 0, 0)), "never busy: nothing to give back");
        assert!(!q.observe((5, 5, 1, 1)), "busy during this period");
        assert!(!q.observe((9, 9, 1, 1)), "still busy");
        assert!(q.observe((9, 9, 1, 1)), "first quiet period after traffic");
        assert!(!q.observe((9, 9, 1, 1)), "stays quiet: once is enough");
    }

    #[test]
    fn a_closed_connection_counts_as_activity() {
        let mut q = Quiet::new((3, 3, 2, 2));
        assert!(!q.observe((3, 3, 2, 1)));
        assert!(q.observe((3, 3, 2, 1)));
    }
}
