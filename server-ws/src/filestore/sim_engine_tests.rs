//! Nothing acknowledged is lost: the JetStream engine on the file store on a simulated disk
//! that loses power, tears writes, fails fsync, fills up and flips bits (see `sim.rs`). Every
//! test runs many seeds; a failure names its seed, and the same seed replays it exactly.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use super::sim::SimDisk;
use super::sim_engine::{Node, Reply, SEC};
use crate::options::SyncInterval;

const T0: u64 = 1_700_000_000 * SEC;
/// Small segments, so runs cross segment boundaries and new files' directory entries matter.
const SEGMENT: u64 = 1024;

/// Seeds `0..n`, or only `EDGEBUS_SIM_SEED` when set (to replay one failure).
fn seeds(n: u64) -> std::ops::Range<u64> {
    match std::env::var("EDGEBUS_SIM_SEED").ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(seed) => seed..seed + 1,
        None => 0..n,
    }
}

/// What the clients published and were told.
#[derive(Default)]
struct Model {
    /// Every payload ever sent (payloads are unique), with its subject.
    sent: HashMap<Vec<u8>, String>,
    /// What was acknowledged, by sequence.
    acked: BTreeMap<u64, (String, Vec<u8>)>,
    /// Sequences whose deletion (or purge) was acknowledged: they must never come back.
    deleted: BTreeSet<u64>,
    /// Acknowledged messages a delete or purge that failed (the power went during it) may
    /// or may not have removed: like Jepsen's indeterminate operations, either is right.
    maybe: BTreeMap<u64, (String, Vec<u8>)>,
    /// The highest sequence handed out and not lost: the next ack must be above it.
    highest: u64,
}

/// What a recovered stream holds, compared with the model.
#[derive(Debug, Default)]
struct Recovered {
    /// Acknowledged sequences not there any more.
    lost: Vec<u64>,
    /// Sequences the store reported damaged.
    damaged: Vec<u64>,
}

impl Model {
    fn publish(&mut self, node: &mut Node, rng: &mut fastrand::Rng, tag: &str) -> Reply {
        let subject = format!("s.{}", rng.u8(0..4));
        let mut payload = format!("{tag}:").into_bytes();
        let filler = rng.usize(0..200);
        payload.extend((0..filler).map(|i| (i % 251) as u8));
        self.sent.insert(payload.clone(), subject.clone());
        let reply = node.publish(&subject, None, &payload);
        if let Reply::Ack { seq, duplicate: false } = reply {
            assert!(seq > self.highest, "{tag}: seq {seq} handed out again (highest {})", self.highest);
            self.highest = seq;
            self.acked.insert(seq, (subject, payload));
        }
        reply
    }

    /// Publishes `n` messages that reach the engine together (one step); what each was told.
    fn publish_group(&mut self, node: &mut Node, rng: &mut fastrand::Rng, n: usize, tag: &str) -> Vec<Reply> {
        let msgs: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| {
                let mut payload = format!("{tag}:{i}:").into_bytes();
                payload.extend((0..rng.usize(0..200)).map(|i| (i % 251) as u8));
                (format!("s.{}", rng.u8(0..4)), payload)
            })
            .collect();
        for (subject, payload) in &msgs {
            self.sent.insert(payload.clone(), subject.clone());
        }
        let replies = node.publish_group(&msgs);
        for ((subject, payload), reply) in msgs.into_iter().zip(&replies) {
            if let Reply::Ack { seq, duplicate: false } = *reply {
                assert!(seq > self.highest, "{tag}: seq {seq} handed out again (highest {})", self.highest);
                self.highest = seq;
                self.acked.insert(seq, (subject, payload));
            }
        }
        replies
    }

    /// Deletes a random acknowledged message, or purges below one, or does nothing.
    fn remove_some(&mut self, node: &mut Node, rng: &mut fastrand::Rng) {
        let Some((&lo, _)) = self.acked.first_key_value() else { return };
        let Some((&hi, _)) = self.acked.last_key_value() else { return };
        let seq = rng.u64(lo..=hi);
        let (targets, done): (Vec<u64>, bool) = match rng.u8(0..30) {
            0..=2 if self.acked.contains_key(&seq) => (vec![seq], node.delete(seq)),
            3 => (self.acked.range(..seq).map(|(s, _)| *s).collect(), node.purge_below(seq)),
            _ => return,
        };
        for s in targets {
            if let Some(m) = self.acked.remove(&s) {
                if done {
                    self.deleted.insert(s);
                } else {
                    self.maybe.insert(s, m);
                }
            }
        }
    }

    /// Reads the whole stream back through the engine. Whatever it returns must be a message
    /// that was published, under its sequence if that sequence was acknowledged; damage must
    /// be reported, never returned as data.
    fn check(&mut self, node: &mut Node, tag: &str) -> Recovered {
        let (first, last, _) = node.state().unwrap_or_else(|| panic!("{tag}: the stream is gone"));
        let mut out = Recovered::default();
        let mut present = Vec::new();
        for seq in first.max(1)..=last {
            match node.msg(seq) {
                Ok(Some(m)) => {
                    let subject = self.sent.get(&m.payload[..]);
                    assert!(subject.is_some(), "{tag}: seq {seq} holds a message never published");
                    assert_eq!(subject.map(String::as_bytes), Some(&m.subject[..]), "{tag}: seq {seq} subject");
                    if let Some((s, p)) = self.acked.get(&seq).or_else(|| self.maybe.get(&seq)) {
                        assert!(s.as_bytes() == m.subject && p[..] == m.payload[..], "{tag}: seq {seq} changed");
                    }
                    assert!(!self.deleted.contains(&seq), "{tag}: deleted seq {seq} came back");
                    present.push(seq);
                }
                Ok(None) => {}
                Err(_) => out.damaged.push(seq),
            }
        }
        out.lost = self.acked.keys().copied().filter(|s| present.binary_search(s).is_err()).collect();
        // what a failed removal left is stored like any message; what it took is deleted
        for (seq, m) in std::mem::take(&mut self.maybe) {
            if present.binary_search(&seq).is_ok() {
                self.acked.insert(seq, m);
            } else {
                self.deleted.insert(seq);
            }
        }
        // the lost sequences will be handed out again
        for seq in &out.lost {
            self.acked.remove(seq);
        }
        let top = |s: Option<&u64>| s.copied().unwrap_or(0);
        self.highest = top(self.acked.keys().next_back()).max(top(self.deleted.last()));
        out
    }
}

/// A new disk, a node booted on it with one stream, and the empty model of what it holds.
fn fresh(sync: SyncInterval, segment: u64) -> (SimDisk, Node, Model) {
    let disk = SimDisk::new();
    let mut node = Node::boot(&disk, sync, segment, T0);
    node.create_stream().unwrap();
    // with an interval the stream itself is durable only once a sync ran (as in nats-server)
    assert!(node.interval_sync());
    (disk, node, Model::default())
}

fn reboot(disk: &SimDisk, old: Node, sync: SyncInterval, rng: &mut fastrand::Rng) -> Node {
    reboot_with(disk, old, sync, SEGMENT, rng)
}

fn reboot_with(disk: &SimDisk, old: Node, sync: SyncInterval, segment: u64, rng: &mut fastrand::Rng) -> Node {
    disk.power_loss(rng);
    let now = old.now + 10 * SEC;
    // after the power loss: the old process's final sync must find nothing to write
    drop(old);
    Node::boot(disk, sync, segment, now)
}

/// `sync_interval: always`: every acknowledged message survives every power loss (between
/// operations, or in the middle of one), in its
/// place and intact, no sequence is ever acknowledged twice, and no message whose deletion
/// or purge was acknowledged comes back (small segments: deletes compact and rewrite them).
#[test]
fn power_loss_with_sync_always_loses_nothing_acknowledged() {
    let (seeds, mut crashes, mut acks, mut deleted, mut mid_op) = (400, 0, 0, 0, 0);
    for seed in self::seeds(seeds) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (disk, mut node, mut model) = fresh(SyncInterval::Always, SEGMENT);
        for round in 0..rng.u32(1..4) {
            // half the time the power goes in the middle of a write, fsync, rename or
            // compaction rather than between publishes
            let cut = rng.bool();
            if cut {
                disk.cut_power_after(rng.u64(0..150));
            }
            for i in 0..rng.u32(0..40) {
                let reply = model.publish(&mut node, &mut rng, &format!("{seed}:{round}:{i}"));
                assert!(cut || matches!(reply, Reply::Ack { .. }), "seed {seed}: {reply:?}");
                model.remove_some(&mut node, &mut rng);
            }
            node = reboot(&disk, node, SyncInterval::Always, &mut rng);
            crashes += 1;
            let got = model.check(&mut node, &format!("seed {seed} round {round}"));
            assert!(got.lost.is_empty() && got.damaged.is_empty(), "seed {seed} round {round}: {got:?}");
        }
        acks += model.acked.len() + model.deleted.len();
        deleted += model.deleted.len();
        mid_op += disk.stats().cuts;
    }
    println!(
        "always: {seeds} seeds, {crashes} power losses ({mid_op} in the middle of an operation), \
         {acks} acked messages ({deleted} deleted), 0 lost, none back"
    );
}

/// Group commit under `always`: publishes that reach the engine in one step are appended and
/// then made durable by ONE fsync, and none is acknowledged before it returned. A power loss
/// after a group's appends and before its fsync therefore leaves every one of them
/// unacknowledged (an ack sent before its fsync fails this test), and whatever was
/// acknowledged survives.
#[test]
fn a_group_of_publishes_shares_one_fsync_and_no_ack_precedes_it() {
    const BIG: u64 = 1 << 20;
    let (seeds, mut groups, mut shared, mut cut) = (300, 0, 0, 0);
    for seed in self::seeds(seeds) {
        let mut rng = fastrand::Rng::with_seed(seed);
        // segments large enough that a group never starts a file: its fsync is then one call
        let (disk, mut node, mut model) = fresh(SyncInterval::Always, BIG);
        for round in 0..rng.u32(1..4) {
            let tag = format!("{seed}:{round}");
            // after a restart the first append may open a segment: outside the groups
            assert!(matches!(model.publish(&mut node, &mut rng, &format!("{tag}:first")), Reply::Ack { .. }));
            let n = rng.usize(2..40);
            let fsyncs = disk.stats().fsyncs;
            let replies = model.publish_group(&mut node, &mut rng, n, &format!("{tag}:g"));
            assert!(replies.iter().all(|r| matches!(r, Reply::Ack { .. })), "seed {seed}: {replies:?}");
            assert_eq!(disk.stats().fsyncs - fsyncs, 1, "seed {seed}: {n} publishes in one step, one fsync");
            groups += 1;
            shared += n;
            // the power goes right after the next group's appends: its fsync never happens
            let n = rng.usize(1..40);
            disk.cut_power_after(n as u64);
            let replies = model.publish_group(&mut node, &mut rng, n, &format!("{tag}:cut"));
            let acked: Vec<&Reply> = replies.iter().filter(|r| matches!(r, Reply::Ack { .. })).collect();
            assert!(acked.is_empty(), "seed {seed}: acknowledged before their fsync: {acked:?}");
            cut += n;
            node = reboot_with(&disk, node, SyncInterval::Always, BIG, &mut rng);
            let got = model.check(&mut node, &format!("seed {seed} round {round}"));
            assert!(got.lost.is_empty() && got.damaged.is_empty(), "seed {seed} round {round}: {got:?}");
        }
    }
    println!(
        "group commit: {seeds} seeds, {groups} groups ({shared} publishes, one fsync each group), \
         {cut} publishes cut off before their fsync, none of them acknowledged, 0 lost"
    );
}

/// The default policy syncs every interval (here: the host's timer fires every few
/// publishes). Only what was acknowledged after the last sync may be lost, and what is lost is
/// a suffix of the log: the newest messages, never a hole.
#[test]
fn power_loss_with_an_interval_loses_only_the_unsynced_suffix() {
    let sync = SyncInterval::Every(Duration::from_secs(120));
    let (seeds, mut crashes, mut acks, mut lost, mut exposed, mut torn) = (400, 0, 0, 0, 0, 0);
    for seed in self::seeds(seeds) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (disk, mut node, mut model) = fresh(sync, SEGMENT);
        for round in 0..rng.u32(1..4) {
            let every = rng.u32(1..10);
            let mut synced = model.acked.keys().next_back().copied().unwrap_or(0);
            for i in 0..rng.u32(0..40) {
                model.publish(&mut node, &mut rng, &format!("{seed}:{round}:{i}"));
                acks += 1;
                if i % every == every - 1 {
                    assert!(node.interval_sync(), "seed {seed}");
                    synced = model.acked.keys().next_back().copied().unwrap_or(0);
                }
            }
            exposed += model.acked.range(synced + 1..).count();
            node = reboot(&disk, node, sync, &mut rng);
            crashes += 1;
            let newest = model.acked.keys().next_back().copied().unwrap_or(0);
            let got = model.check(&mut node, &format!("seed {seed} round {round}"));
            assert!(got.damaged.is_empty(), "seed {seed}: {got:?}");
            assert!(got.lost.iter().all(|&s| s > synced), "seed {seed}: synced up to {synced}, lost {:?}", got.lost);
            if let Some(&oldest) = got.lost.first() {
                assert_eq!(got.lost, (oldest..=newest).collect::<Vec<_>>(), "seed {seed}: a hole, not a suffix");
            }
            lost += got.lost.len();
        }
        torn += disk.stats().torn_files;
    }
    println!(
        "interval: {seeds} seeds, {crashes} power losses, {acks} publishes, {exposed} acked after the last sync, \
         {lost} of those lost at the power loss (all of them newer than the last sync), {torn} files torn"
    );
}

/// A failed fsync (EIO) under `always`, lasting or once: the publish is refused with a 503,
/// and so is every later one even when fsync works again (the store does not assume that a
/// retried fsync makes the lost pages safe), a
/// retried message id is not reported as a stored duplicate, and after a restart everything
/// that was acknowledged is there.
#[test]
fn a_failed_fsync_is_never_acknowledged_and_stops_the_stream() {
    let (seeds, mut refused) = (200, 0);
    for seed in self::seeds(seeds) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (disk, mut node, mut model) = fresh(SyncInterval::Always, SEGMENT);
        for i in 0..rng.u32(0..20) {
            model.publish(&mut node, &mut rng, &format!("{seed}:ok:{i}"));
        }
        // a lasting failure, or one that a retry would seem to fix
        if rng.bool() {
            disk.fail_fsync_after(Some(rng.u64(0..3)));
        } else {
            disk.fail_one_fsync_after(rng.u64(0..3));
        }
        let mut failed = None;
        for i in 0..20 {
            let id = format!("{seed}:id:{i}");
            let payload = id.clone().into_bytes();
            model.sent.insert(payload.clone(), "s.x".into());
            let reply = node.publish("s.x", Some(&id), &payload);
            match (&reply, &failed) {
                (Reply::Ack { seq, duplicate: false }, None) => {
                    model.acked.insert(*seq, ("s.x".into(), payload));
                }
                (Reply::Error { code: 503, .. }, _) => {
                    failed.get_or_insert(id.clone());
                    let again = node.publish("s.x", Some(&id), &id.clone().into_bytes());
                    assert!(matches!(again, Reply::Error { code: 503, .. }), "seed {seed}: retry of {id}: {again:?}");
                }
                _ => panic!("seed {seed}: publish {i} after a failed fsync ({failed:?}): {reply:?}"),
            }
        }
        assert!(failed.is_some(), "seed {seed}: the fsync failure was never seen");
        refused += 1;
        disk.fail_fsync_after(None);
        node = reboot(&disk, node, SyncInterval::Always, &mut rng);
        let got = model.check(&mut node, &format!("seed {seed}"));
        assert!(got.lost.is_empty() && got.damaged.is_empty(), "seed {seed}: {got:?}");
        let again = model.publish(&mut node, &mut rng, &format!("{seed}:after"));
        assert!(matches!(again, Reply::Ack { .. }), "seed {seed}: a restart brings the stream back: {again:?}");
    }
    println!("fsync failure: {seeds} seeds, {refused} streams stopped at their first failed fsync, 0 lost");
}

/// A full disk: publishes are refused with nats-server's `insufficient resources` (503),
/// nothing refused is stored, everything acknowledged stays readable, and publishing
/// resumes once there is room again.
#[test]
fn a_full_disk_refuses_publishes_and_recovers_when_space_returns() {
    let (seeds, mut refused) = (200, 0);
    for seed in self::seeds(seeds) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (disk, mut node, mut model) = fresh(SyncInterval::Always, SEGMENT);
        disk.set_capacity(Some(disk.used() + rng.u64(0..3000)));
        let mut full = 0;
        for i in 0..60 {
            match model.publish(&mut node, &mut rng, &format!("{seed}:{i}")) {
                Reply::Ack { .. } => {}
                Reply::Error { code: 503, description } => {
                    assert!(description.contains("insufficient resources"), "seed {seed}: {description}");
                    full += 1;
                }
                other => panic!("seed {seed}: {other:?}"),
            }
        }
        assert!(full > 0, "seed {seed}: the disk never filled");
        refused += full;
        let got = model.check(&mut node, &format!("seed {seed} full"));
        assert!(got.lost.is_empty() && got.damaged.is_empty(), "seed {seed}: {got:?}");
        disk.set_capacity(None);
        let reply = model.publish(&mut node, &mut rng, &format!("{seed}:room"));
        assert!(matches!(reply, Reply::Ack { .. }), "seed {seed}: {reply:?}");
        node = reboot(&disk, node, SyncInterval::Always, &mut rng);
        let got = model.check(&mut node, &format!("seed {seed} rebooted"));
        assert!(got.lost.is_empty() && got.damaged.is_empty(), "seed {seed}: {got:?}");
    }
    println!("full disk: {seeds} seeds, {refused} publishes refused with ENOSPC, 0 acknowledged lost");
}

/// Bits flipped in segment files at rest: the stream still opens, a damaged record is
/// detected and skipped or reported, never returned as data, and the rest is intact.
#[test]
fn flipped_bits_are_detected_never_returned() {
    let (seeds, mut flips, mut missing) = (300, 0, 0);
    for seed in self::seeds(seeds) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (disk, mut node, mut model) = fresh(SyncInterval::Always, SEGMENT);
        for i in 0..rng.u32(1..40) {
            model.publish(&mut node, &mut rng, &format!("{seed}:{i}"));
        }
        let segments: Vec<_> = disk
            .files_under(Path::new("/store"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "blk"))
            .collect();
        let n = rng.usize(1..4);
        for _ in 0..n {
            let path = &segments[rng.usize(0..segments.len())];
            if disk.flip_bit(path, &mut rng).is_some() {
                flips += 1;
            }
        }
        node = reboot(&disk, node, SyncInterval::Always, &mut rng);
        let got = model.check(&mut node, &format!("seed {seed}"));
        missing += got.lost.len() + got.damaged.len();
        let reply = model.publish(&mut node, &mut rng, &format!("{seed}:after"));
        assert!(matches!(reply, Reply::Ack { .. }), "seed {seed}: {reply:?}");
    }
    println!("bit flips: {seeds} seeds, {flips} bits flipped, {missing} damaged messages skipped, none returned");
}
