//! The subscription index: a token trie with `*` / `>` nodes, plus a bounded match cache.
//!
//! This follows the shape of nats-server's sublist: each level maps literal tokens to nodes and
//! keeps dedicated `*` and `>` nodes, so matching a subject walks at most three branches per
//! token and never scans unrelated subscriptions. Every insert or removal bumps a generation
//! number; caches of match results ([`MatchCache`]) compare it to know when they are stale,
//! which lets a host keep one cache per connection and read the generation without a lock.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use hashbrown::HashMap;

use crate::subject::{self, SubjectError, FWC, PWC, SEP};

/// The subscriptions that match one subject: every plain subscriber, and the members of each
/// queue group (grouped by queue name across all matching patterns, as nats-server does, so a
/// group spread over `a.*` and `a.>` still gets one copy).
#[derive(Debug)]
pub struct MatchResult<T> {
    pub plain: Vec<T>,
    pub queues: Vec<QueueGroup<T>>,
}

#[derive(Debug)]
pub struct QueueGroup<T> {
    pub name: Box<[u8]>,
    pub members: Vec<T>,
}

impl<T> MatchResult<T> {
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }
}

impl<T> Default for MatchResult<T> {
    fn default() -> Self {
        MatchResult { plain: Vec::new(), queues: Vec::new() }
    }
}

struct Level<T> {
    literals: HashMap<Box<[u8]>, Node<T>>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
}

impl<T> Level<T> {
    fn new() -> Self {
        Level { literals: HashMap::new(), pwc: None, fwc: None }
    }
    fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }
}

struct Node<T> {
    next: Option<Box<Level<T>>>,
    plain: Vec<T>,
    queues: Vec<QueueGroup<T>>,
}

impl<T> Node<T> {
    fn new() -> Self {
        Node { next: None, plain: Vec::new(), queues: Vec::new() }
    }
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty() && self.next.as_ref().is_none_or(|l| l.is_empty())
    }
}

/// The trie. `T` is whatever the host uses to reach a subscriber (an id, an `Arc`); equality
/// identifies the entry to remove.
pub struct Sublist<T> {
    root: Level<T>,
    count: usize,
    genid: u64,
}

impl<T> Default for Sublist<T> {
    fn default() -> Self {
        Sublist { root: Level::new(), count: 0, genid: 0 }
    }
}

impl<T: Clone + PartialEq> Sublist<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subscriptions held.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Changes on every insert and removal; caches compare it.
    pub fn generation(&self) -> u64 {
        self.genid
    }

    /// Adds a subscription on `subject` (wildcards allowed), in queue group `queue` if given.
    pub fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, item: T) -> Result<(), SubjectError> {
        subject::validate_subscribe(subject)?;
        if let Some(q) = queue {
            subject::validate_queue(q)?;
        }
        let mut level = &mut self.root;
        let mut toks = subject::tokens(subject).peekable();
        let node = loop {
            let Some(tok) = toks.next() else {
                // validate_subscribe guarantees at least one token
                return Err(SubjectError::Empty);
            };
            let node: &mut Node<T> = if tok == [PWC] {
                level.pwc.get_or_insert_with(|| Box::new(Node::new()))
            } else if tok == [FWC] {
                level.fwc.get_or_insert_with(|| Box::new(Node::new()))
            } else {
                level.literals.entry(Box::from(tok)).or_insert_with(Node::new)
            };
            if toks.peek().is_none() {
                break node;
            }
            level = node.next.get_or_insert_with(|| Box::new(Level::new()));
        };
        match queue {
            None => node.plain.push(item),
            Some(q) => match node.queues.iter_mut().find(|g| &*g.name == q) {
                Some(g) => g.members.push(item),
                None => node.queues.push(QueueGroup { name: Box::from(q), members: alloc::vec![item] }),
            },
        }
        self.count += 1;
        self.genid = self.genid.wrapping_add(1);
        Ok(())
    }

    /// Removes one subscription; returns whether it was there. Empty branches are pruned so a
    /// churn of short-lived subjects (inboxes) does not grow the trie.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, item: &T) -> bool {
        if subject::validate_subscribe(subject).is_err() {
            return false;
        }
        let toks: Vec<&[u8]> = subject::tokens(subject).collect();
        let removed = remove_in(&mut self.root, &toks, queue, item);
        if removed {
            self.count -= 1;
            self.genid = self.genid.wrapping_add(1);
        }
        removed
    }

    /// All subscriptions matching the published subject `subject`. A subject with an empty
    /// token matches nothing (nats-server drops such publishes).
    pub fn matches(&self, subject: &[u8]) -> MatchResult<T> {
        let mut out = MatchResult::default();
        if subject.is_empty() || subject::tokens(subject).any(|t| t.is_empty()) {
            return out;
        }
        match_level(&self.root, subject, &mut out);
        out
    }
}

fn split_token(rest: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(SEP, rest) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

fn match_level<T: Clone>(level: &Level<T>, rest: &[u8], out: &mut MatchResult<T>) {
    let (tok, tail) = split_token(rest);
    if let Some(fwc) = &level.fwc {
        collect(fwc, out);
    }
    if let Some(pwc) = &level.pwc {
        descend(pwc, tail, out);
    }
    if let Some(node) = level.literals.get(tok) {
        descend(node, tail, out);
    }
}

fn descend<T: Clone>(node: &Node<T>, tail: Option<&[u8]>, out: &mut MatchResult<T>) {
    match tail {
        None => collect(node, out),
        Some(rest) => {
            if let Some(next) = &node.next {
                match_level(next, rest, out);
            }
        }
    }
}

fn collect<T: Clone>(node: &Node<T>, out: &mut MatchResult<T>) {
    out.plain.extend(node.plain.iter().cloned());
    for g in &node.queues {
        match out.queues.iter_mut().find(|o| o.name == g.name) {
            Some(o) => o.members.extend(g.members.iter().cloned()),
            None => out.queues.push(QueueGroup { name: g.name.clone(), members: g.members.clone() }),
        }
    }
}

fn remove_in<T: PartialEq>(level: &mut Level<T>, toks: &[&[u8]], queue: Option<&[u8]>, item: &T) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return false;
    };
    let removed;
    let empty;
    {
        let node: &mut Node<T> = if *tok == [PWC] {
            match level.pwc.as_deref_mut() {
                Some(n) => n,
                None => return false,
            }
        } else if *tok == [FWC] {
            match level.fwc.as_deref_mut() {
                Some(n) => n,
                None => return false,
            }
        } else {
            match level.literals.get_mut(*tok) {
                Some(n) => n,
                None => return false,
            }
        };
        removed = if rest.is_empty() {
            remove_from_node(node, queue, item)
        } else {
            match node.next.as_deref_mut() {
                Some(next) => {
                    let r = remove_in(next, rest, queue, item);
                    if next.is_empty() {
                        node.next = None;
                    }
                    r
                }
                None => false,
            }
        };
        empty = node.is_empty();
    }
    if empty {
        if *tok == [PWC] {
            level.pwc = None;
        } else if *tok == [FWC] {
            level.fwc = None;
        } else {
            level.literals.remove(*tok);
        }
    }
    removed
}

fn remove_from_node<T: PartialEq>(node: &mut Node<T>, queue: Option<&[u8]>, item: &T) -> bool {
    match queue {
        None => remove_item(&mut node.plain, item),
        Some(q) => {
            let Some(gi) = node.queues.iter().position(|g| &*g.name == q) else {
                return false;
            };
            let removed = remove_item(&mut node.queues[gi].members, item);
            if node.queues[gi].members.is_empty() {
                node.queues.swap_remove(gi);
            }
            removed
        }
    }
}

fn remove_item<T: PartialEq>(v: &mut Vec<T>, item: &T) -> bool {
    match v.iter().position(|x| x == item) {
        Some(i) => {
            // order among subscribers carries no meaning, so the cheap removal is fine
            v.swap_remove(i);
            true
        }
        None => false,
    }
}

/// Most subjects a [`MatchCache`] remembers (nats-server's `slCacheMax`).
pub const CACHE_MAX: usize = 1024;
/// How many entries a full cache keeps after a sweep (nats-server's `slCacheSweep`).
pub const CACHE_SWEEP: usize = 256;

/// A bounded cache of match results for literal subjects, valid for one sublist generation.
///
/// On a hit a publish costs one hash lookup. The cache is separate from the trie so that a
/// multi-threaded host can give each connection its own cache and consult it without taking the
/// lock that guards the trie; it only needs the current generation.
pub struct MatchCache<T> {
    map: HashMap<Box<[u8]>, Arc<MatchResult<T>>>,
    genid: u64,
    max: usize,
}

impl<T> Default for MatchCache<T> {
    fn default() -> Self {
        Self::with_capacity(CACHE_MAX)
    }
}

impl<T> MatchCache<T> {
    /// A cache that holds at most `max` subjects; 0 disables caching (tests use that to show
    /// the cache is unobservable).
    pub fn with_capacity(max: usize) -> Self {
        MatchCache { map: HashMap::new(), genid: u64::MAX, max }
    }

    /// The cached result for `subject` if the trie is still at generation `genid`.
    pub fn get(&mut self, genid: u64, subject: &[u8]) -> Option<Arc<MatchResult<T>>> {
        if genid != self.genid {
            self.map.clear();
            self.genid = genid;
            return None;
        }
        self.map.get(subject).cloned()
    }

    /// Remembers a result computed at generation `genid`.
    pub fn insert(&mut self, genid: u64, subject: &[u8], result: Arc<MatchResult<T>>) {
        if self.max == 0 {
            return;
        }
        if genid != self.genid {
            self.map.clear();
            self.genid = genid;
        }
        if self.map.len() >= self.max {
            // Evict down to the sweep size. Hash order is arbitrary, which makes this a cheap
            // random eviction rather than a cliff where every entry is lost at once.
            let mut keep = CACHE_SWEEP.min(self.max / 4);
            self.map.retain(|_, _| {
                if keep > 0 {
                    keep -= 1;
                    true
                } else {
                    false
                }
            });
        }
        self.map.insert(Box::from(subject), result);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<T: Clone + PartialEq> MatchCache<T> {
    /// Looks `subject` up in the cache, falling back to the trie.
    pub fn lookup(&mut self, sublist: &Sublist<T>, subject: &[u8]) -> Arc<MatchResult<T>> {
        let genid = sublist.generation();
        if let Some(r) = self.get(genid, subject) {
            return r;
        }
        let r = Arc::new(sublist.matches(subject));
        self.insert(genid, subject, r.clone());
        r
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::vec;

    fn plain(sl: &Sublist<u32>, s: &str) -> Vec<u32> {
        let mut v = sl.matches(s.as_bytes()).plain;
        v.sort();
        v
    }

    #[test]
    fn literal_and_wildcards() {
        let mut sl = Sublist::new();
        sl.insert(b"a.b", None, 1).unwrap();
        sl.insert(b"a.*", None, 2).unwrap();
        sl.insert(b"a.>", None, 3).unwrap();
        sl.insert(b">", None, 4).unwrap();
        sl.insert(b"*.b", None, 5).unwrap();
        assert_eq!(plain(&sl, "a.b"), vec![1, 2, 3, 4, 5]);
        assert_eq!(plain(&sl, "a.c"), vec![2, 3, 4]);
        assert_eq!(plain(&sl, "a.b.c"), vec![3, 4]);
        assert_eq!(plain(&sl, "a"), vec![4]);
        assert_eq!(plain(&sl, "a..b"), Vec::<u32>::new());
        assert_eq!(sl.count(), 5);
    }

    #[test]
    fn wildcard_publish_is_a_literal_token() {
        let mut sl = Sublist::new();
        sl.insert(b"a.b", None, 1).unwrap();
        sl.insert(b"a.>", None, 2).unwrap();
        assert_eq!(plain(&sl, "a.*"), vec![2]);
    }

    #[test]
    fn queues_group_by_name_across_patterns() {
        let mut sl = Sublist::new();
        sl.insert(b"a.*", Some(b"q"), 1).unwrap();
        sl.insert(b"a.>", Some(b"q"), 2).unwrap();
        sl.insert(b"a.b", Some(b"r"), 3).unwrap();
        let r = sl.matches(b"a.b");
        assert_eq!(r.queues.len(), 2);
        let q = r.queues.iter().find(|g| &*g.name == b"q").unwrap();
        assert_eq!(q.members.len(), 2);
    }

    #[test]
    fn remove_prunes() {
        let mut sl = Sublist::new();
        sl.insert(b"a.b.c", None, 1).unwrap();
        sl.insert(b"a.b.c", Some(b"q"), 2).unwrap();
        assert!(!sl.remove(b"a.b.c", None, &7));
        assert!(sl.remove(b"a.b.c", None, &1));
        assert!(sl.remove(b"a.b.c", Some(b"q"), &2));
        assert!(!sl.remove(b"a.b.c", Some(b"q"), &2));
        assert!(sl.root.is_empty());
        assert_eq!(sl.count(), 0);
    }

    #[test]
    fn invalid_subjects_rejected() {
        let mut sl: Sublist<u32> = Sublist::new();
        assert!(sl.insert(b"a..b", None, 1).is_err());
        assert!(sl.insert(b"a.>.b", None, 1).is_err());
        assert!(sl.insert(b"a", Some(b""), 1).is_err());
    }

    #[test]
    fn cache_follows_generation_and_stays_bounded() {
        let mut sl = Sublist::new();
        let mut cache = MatchCache::with_capacity(8);
        sl.insert(b"x.*", None, 1).unwrap();
        assert_eq!(cache.lookup(&sl, b"x.a").plain, vec![1]);
        sl.insert(b"x.a", None, 2).unwrap();
        let mut v = cache.lookup(&sl, b"x.a").plain.clone();
        v.sort();
        assert_eq!(v, vec![1, 2]);
        for i in 0..100u32 {
            let s = alloc::format!("x.{i}");
            cache.lookup(&sl, s.as_bytes());
            assert!(cache.len() <= 8);
        }
    }
}

#[cfg(test)]
mod proptests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![Just("a".into()), Just("b".into()), Just("c".into()), Just("dd".into())]
    }

    fn pattern() -> impl Strategy<Value = String> {
        (prop::collection::vec(prop_oneof![token(), Just("*".into())], 1..4), any::<bool>()).prop_map(
            |(mut toks, fwc)| {
                if fwc {
                    toks.push(">".into());
                }
                toks.join(".")
            },
        )
    }

    fn subject() -> impl Strategy<Value = String> {
        prop::collection::vec(token(), 1..5).prop_map(|t| t.join("."))
    }

    proptest! {
        /// The trie (with and without the cache) agrees with the naive matcher, through
        /// inserts and removals.
        #[test]
        fn trie_agrees_with_naive(pats in prop::collection::vec(pattern(), 1..24),
                                  removes in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
                                  subjects in prop::collection::vec(subject(), 1..16)) {
            let mut sl = Sublist::new();
            let mut live: Vec<(usize, String)> = Vec::new();
            for (i, p) in pats.iter().enumerate() {
                sl.insert(p.as_bytes(), None, i).unwrap();
                live.push((i, p.clone()));
            }
            let mut cache = MatchCache::default();
            let mut nocache = MatchCache::with_capacity(0);
            for s in &subjects { cache.lookup(&sl, s.as_bytes()); }
            for r in removes {
                if live.is_empty() { break; }
                let (id, p) = live.remove(r.index(live.len()));
                prop_assert!(sl.remove(p.as_bytes(), None, &id));
            }
            for s in &subjects {
                let mut want: Vec<usize> = live.iter()
                    .filter(|(_, p)| crate::subject::matches(p.as_bytes(), s.as_bytes()))
                    .map(|(i, _)| *i).collect();
                want.sort();
                for got in [sl.matches(s.as_bytes()).plain, cache.lookup(&sl, s.as_bytes()).plain.clone(),
                            nocache.lookup(&sl, s.as_bytes()).plain.clone()] {
                    let mut got = got;
                    got.sort();
                    prop_assert_eq!(&got, &want);
                }
            }
        }
    }
}
