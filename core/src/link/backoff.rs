//! The reconnect schedule: exponential backoff with jitter, so many pages (or edge servers)
//! that lost the same server do not all come back in the same millisecond.

/// Attempt `n` waits a random time in `[d/2, d]` where `d = min(max, min * 2^n)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub min_ms: u32,
    pub max_ms: u32,
    pub attempt: u32,
}

impl Backoff {
    pub fn new(min_ms: u32, max_ms: u32) -> Self {
        Backoff { min_ms: min_ms.max(1), max_ms: max_ms.max(min_ms.max(1)), attempt: 0 }
    }

    /// The delay before the next attempt, in milliseconds; `random` in `[0, 1)` (the link
    /// draws it from its seeded generator, so a test can replay a schedule).
    pub fn next_delay(&mut self, random: f64) -> u32 {
        let d = u64::from(self.ceiling());
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        (half + ((d - half) as f64 * random.clamp(0.0, 1.0)) as u64) as u32
    }

    /// A connection got through: the next outage starts from the shortest delay again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The longest delay of the attempt [`Backoff::next_delay`] will schedule next: the
    /// upper end of its jitter range.
    pub fn ceiling(&self) -> u32 {
        u64::from(self.min_ms).saturating_mul(1u64 << self.attempt.min(20)).min(u64::from(self.max_ms)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(100, 2_000);
        let lows: Vec<u32> = (0..7).map(|_| b.next_delay(0.0)).collect();
        assert_eq!(lows, vec![50, 100, 200, 400, 800, 1000, 1000]);
        b.reset();
        let highs: Vec<u32> = (0..6).map(|_| b.next_delay(0.999_999)).collect();
        assert_eq!(highs, vec![99, 199, 399, 799, 1599, 1999]);
        let mut b = Backoff::new(100, 2_000);
        b.attempt = 1000;
        assert_eq!(b.ceiling(), 2000);
        assert!((1000..=2000).contains(&b.next_delay(0.5)));
    }
}
