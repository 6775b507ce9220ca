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

    /// Visits every subscription held (in no particular order): a new leaf link announces
    /// the interest already there.
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        fn walk<T>(level: &Level<T>, f: &mut dyn FnMut(&T)) {
            let nodes = level.literals.values().chain(level.pwc.as_deref()).chain(level.fwc.as_deref());
            for node in nodes {
                node.plain.iter().for_each(&mut *f);
                node.queues.iter().flat_map(|g| g.members.iter()).for_each(&mut *f);
                if let Some(next) = &node.next {
                    walk(next, f);
                }
            }
        }
        walk(&self.root, &mut f);
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

/// Walks the trie for `subject` without recursion: a subject may have as many tokens as the
/// control line allows (nats-server accepts 20,000 with a 64 KiB line), and a frame per token
/// would overflow a thread's stack. Branches are visited depth first, `>` before `*` before
/// the literal, so results come out in the order a recursive walk gives.
fn match_level<T: Clone>(root: &Level<T>, subject: &[u8], out: &mut MatchResult<T>) {
    let mut stack: Vec<(&Level<T>, &[u8])> = alloc::vec![(root, subject)];
    while let Some((level, rest)) = stack.pop() {
        let (tok, tail) = split_token(rest);
        if let Some(fwc) = &level.fwc {
            collect(fwc, out);
        }
        match tail {
            None => {
                for node in [level.pwc.as_deref(), level.literals.get(tok)].into_iter().flatten() {
                    collect(node, out);
                }
            }
            // pushed in reverse, so the `*` branch is walked first
            Some(rest) => {
                for node in [level.literals.get(tok), level.pwc.as_deref()].into_iter().flatten() {
                    if let Some(next) = &node.next {
                        stack.push((next, rest));
                    }
                }
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

impl<T> Level<T> {
    fn child(&self, tok: &[u8]) -> Option<&Node<T>> {
        if tok == [PWC] {
            self.pwc.as_deref()
        } else if tok == [FWC] {
            self.fwc.as_deref()
        } else {
            self.literals.get(tok)
        }
    }

    fn child_mut(&mut self, tok: &[u8]) -> Option<&mut Node<T>> {
        if tok == [PWC] {
            self.pwc.as_deref_mut()
        } else if tok == [FWC] {
            self.fwc.as_deref_mut()
        } else {
            self.literals.get_mut(tok)
        }
    }

    fn remove_child(&mut self, tok: &[u8]) {
        if tok == [PWC] {
            self.pwc = None;
        } else if tok == [FWC] {
            self.fwc = None;
        } else {
            self.literals.remove(tok);
        }
    }

    fn children(&self) -> usize {
        self.literals.len() + usize::from(self.pwc.is_some()) + usize::from(self.fwc.is_some())
    }
}

/// Removes `item` from the node at the end of `toks`, then prunes the branch that became
/// empty. Iterative for the same reason as [`match_level`]: once to remove, once to find the
/// shallowest node from which everything below is an otherwise empty chain, once to cut there.
fn remove_in<T: PartialEq>(root: &mut Level<T>, toks: &[&[u8]], queue: Option<&[u8]>, item: &T) -> bool {
    let Some((last, path)) = toks.split_last() else {
        return false;
    };
    let mut level = &mut *root;
    for tok in path {
        match level.child_mut(tok).and_then(|n| n.next.as_deref_mut()) {
            Some(next) => level = next,
            None => return false,
        }
    }
    let Some(node) = level.child_mut(last) else {
        return false;
    };
    if !remove_from_node(node, queue, item) {
        return false;
    }
    // `cut`: the depth of the shallowest node that only leads to the (now empty) leaf
    let mut cut = None;
    let mut level = &*root;
    for (depth, tok) in toks.iter().enumerate() {
        let Some(node) = level.child(tok) else { break };
        let leaf = depth + 1 == toks.len();
        let chain_only = node.plain.is_empty()
            && node.queues.is_empty()
            && node.next.as_ref().is_none_or(|next| if leaf { next.is_empty() } else { next.children() == 1 });
        if !chain_only {
            cut = None;
        } else if cut.is_none() {
            cut = Some(depth);
        }
        match &node.next {
            Some(next) if !leaf => level = next,
            _ => break,
        }
    }
    match cut {
        None => {}
        Some(0) => root.remove_child(toks[0]),
        Some(cut) => {
            let mut level = &mut *root;
            for tok in &toks[..cut - 1] {
                match level.child_mut(tok).and_then(|n| n.next.as_deref_mut()) {
                    Some(next) => level = next,
                    None => return true,
                }
            }
            // the node above the cut keeps a subscription or another branch; its level of
            // children goes too if the cut branch was its only one
            if let Some(parent) = level.child_mut(toks[cut - 1]) {
                if let Some(next) = parent.next.as_deref_mut() {
                    next.remove_child(toks[cut]);
                    if next.is_empty() {
                        parent.next = None;
                    }
                }
            }
        }
    }
    true
}

/// Dropping a deep branch recursively would overflow the stack (see [`match_level`]), so a
/// level hands its children's levels to a list and drops them one at a time.
impl<T> Drop for Level<T> {
    fn drop(&mut self) {
        let mut pending: Vec<Box<Level<T>>> = Vec::new();
        let take = |level: &mut Level<T>, pending: &mut Vec<Box<Level<T>>>| {
            let nodes = level.literals.values_mut().chain(level.pwc.as_deref_mut()).chain(level.fwc.as_deref_mut());
            pending.extend(nodes.filter_map(|n| n.next.take()));
        };
        take(self, &mut pending);
        while let Some(mut level) = pending.pop() {
            take(&mut level, &mut pending);
        }
    }
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
    fn for_each_visits_every_subscription_once() {
        let mut sl = Sublist::new();
        for (i, (s, q)) in
            [("a", None), ("a.b", None), ("a.*", Some("g")), ("a.>", None), ("*", Some("g")), (">", None)]
                .into_iter()
                .enumerate()
        {
            sl.insert(s.as_bytes(), q.map(str::as_bytes), i as u32).unwrap();
        }
        let mut seen = Vec::new();
        sl.for_each(|i| seen.push(*i));
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
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
    fn remove_prunes_only_the_empty_chain() {
        let mut sl = Sublist::new();
        sl.insert(b"a.b.c.d", None, 1).unwrap();
        sl.insert(b"a.x", None, 2).unwrap();
        sl.insert(b"a.b", None, 3).unwrap();
        assert!(sl.remove(b"a.b.c.d", None, &1));
        assert_eq!(plain(&sl, "a.b"), [3]);
        assert_eq!(plain(&sl, "a.x"), [2]);
        let a = sl.root.literals.get(&b"a"[..]).unwrap();
        let b = a.next.as_ref().unwrap().literals.get(&b"b"[..]).unwrap();
        assert!(b.next.is_none(), "the c.d chain below a.b is gone");
        assert!(sl.remove(b"a.b", None, &3));
        assert!(sl.remove(b"a.x", None, &2));
        assert!(sl.root.is_empty());
    }

    /// nats-server accepts subjects of tens of thousands of tokens (with a large
    /// `max_control_line`); insert, match, remove and drop must not recurse per token. The
    /// small stack makes a per-token recursion fail here rather than only in production.
    #[test]
    fn deep_subjects_need_no_stack_per_token() {
        use alloc::format;
        let deep = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let tokens = 50_000;
                let subject = vec!["t"; tokens].join(".");
                let wild = format!("{}.>", vec!["t"; tokens - 1].join("."));
                let mut sl = Sublist::new();
                sl.insert(subject.as_bytes(), None, 1).unwrap();
                sl.insert(wild.as_bytes(), None, 2).unwrap();
                let mut got = plain(&sl, &subject);
                got.sort_unstable();
                assert_eq!(got, [1, 2]);
                assert!(sl.remove(subject.as_bytes(), None, &1));
                assert_eq!(plain(&sl, &subject), [2]);
                assert!(sl.remove(wild.as_bytes(), None, &2));
                assert!(sl.root.is_empty());
                // and a deep trie dropped whole
                sl.insert(subject.as_bytes(), None, 3).unwrap();
                drop(sl);
            })
            .unwrap();
        deep.join().unwrap();
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
