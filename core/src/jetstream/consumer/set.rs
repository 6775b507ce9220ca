//! A stream's consumers, with a running count of the push consumers that wait for a
//! subscriber on their deliver subject.
//!
//! The host asks after every engine step whether any push consumer waits (so that a new
//! subscription on its bus wakes the engine at once instead of at the 50 ms interest poll).
//! Scanning every consumer of every stream for that made each step cost O(consumers); the
//! count makes it one load. It is kept here because this is the only code that changes what
//! it counts: a consumer's `push_bound` is private to the consumer module, so it moves only
//! through [`Consumers::bind_push`] and [`Consumers::insert`], and a consumer leaves the count
//! when it is removed or its stream's set is dropped.

use alloc::string::String;
use alloc::sync::Arc;
use core::ops::Deref;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::Consumer;
use crate::jetstream::Interest;
use crate::vecmap::VecMap;

/// The engine-wide number of push consumers without a subscriber, shared by every stream's
/// [`Consumers`]. The engine runs on one thread at a time; the atomic only makes the count
/// shareable between the sets without a back pointer to the engine (`Relaxed` is enough).
#[derive(Clone, Default)]
pub struct PushWaiting(Arc<AtomicUsize>);

impl PushWaiting {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }
}

/// One stream's consumers by name; read through `Deref` as the map they are.
pub struct Consumers {
    map: VecMap<String, Consumer>,
    /// How many of `map` are push consumers without a subscriber.
    unbound: usize,
    total: PushWaiting,
}

impl Consumers {
    pub fn new(total: &PushWaiting) -> Consumers {
        Consumers { map: VecMap::new(), unbound: 0, total: total.clone() }
    }

    /// Whether one of these push consumers waits for a subscriber.
    pub fn awaits_push_interest(&self) -> bool {
        self.unbound > 0
    }

    fn waits(c: &Consumer) -> bool {
        c.is_push() && !c.push_bound
    }

    fn count(&mut self, c: &Consumer) {
        if Self::waits(c) {
            self.unbound += 1;
            self.total.add(1);
        }
    }

    fn uncount(&mut self, c: &Consumer) {
        if Self::waits(c) {
            self.unbound -= 1;
            self.total.sub(1);
        }
    }

    /// Adds (or replaces) a consumer; a push consumer counts as waiting until a bind finds
    /// its subscriber.
    pub fn insert(&mut self, name: String, c: Consumer) -> Option<Consumer> {
        self.count(&c);
        let old = self.map.insert(name, c);
        if let Some(old) = &old {
            self.uncount(old);
        }
        old
    }

    pub fn remove(&mut self, name: &str) -> Option<Consumer> {
        let c = self.map.remove(name)?;
        self.uncount(&c);
        Some(c)
    }

    /// Looks up whether each push consumer's deliver subject has a subscriber now; one that
    /// has counts as active at `now` (its `inactive_threshold` starts over).
    pub fn bind_push(&mut self, now: u64, interest: &dyn Interest) {
        let mut unbound = 0;
        for c in self.map.values_mut() {
            if !c.is_push() {
                continue;
            }
            c.push_bound = c.config().deliver_subject.as_deref().is_some_and(|d| interest.has_interest(d.as_bytes()));
            if c.push_bound {
                c.last_active = now;
            } else {
                unbound += 1;
            }
        }
        self.total.add(unbound);
        self.total.sub(self.unbound);
        self.unbound = unbound;
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Consumer> {
        self.map.get_mut(name)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut Consumer> + ExactSizeIterator {
        self.map.values_mut()
    }

    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&String, &mut Consumer)> + ExactSizeIterator {
        self.map.iter_mut()
    }
}

impl Deref for Consumers {
    type Target = VecMap<String, Consumer>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Drop for Consumers {
    /// A deleted or reloaded stream takes its waiting consumers out of the engine's count.
    fn drop(&mut self) {
        self.total.sub(self.unbound);
    }
}
