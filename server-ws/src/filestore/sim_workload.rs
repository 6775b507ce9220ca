//! A seeded random workload over the whole JetStream engine on the simulated disk: publishes
//! with and without `Nats-Msg-Id`, atomic batches, a pull consumer that acks (with and without
//! asking for the ack's confirmation), naks and lets acks time out while simulated time runs,
//! KV puts, deletes and purges, stream purges and message deletes (which compact the small
//! segments), with power losses between operations and in the middle of them. After every
//! recovery [`super::sim_invariants`] checks what the clients were told against what the disk
//! kept. Everything comes from the seed, so a failing seed replays exactly.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use edgebus_core::broker::Delivery;
use edgebus_core::jetstream::consumer::parse_ack_subject;

use super::sim::SimDisk;
use super::sim_engine::{parse, Node, Reply, SEC, STREAM};
use crate::options::SyncInterval;

pub(crate) const T0: u64 = 1_700_000_000 * SEC;
/// Small segments, so a run crosses many files and deletes compact them.
const SEGMENT: u64 = 1024;
pub(crate) const KV: &str = "KV_B";
pub(crate) const CONSUMER: &str = "C";
pub(crate) const DUP_WINDOW: u64 = 30 * SEC;
/// The host's `sync_interval` in [`Mode::Interval`].
pub(crate) const INTERVAL: u64 = 5 * SEC;

/// What the disk promises and whether it keeps the promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `sync_interval: always`: nothing acknowledged may be lost.
    Always,
    /// A sync every [`INTERVAL`]: only the unsynced suffix may be lost.
    Interval,
    /// `always` on a disk whose file fsyncs do nothing: the simulation must catch it.
    SkippedFsync,
}

impl Mode {
    /// The store's policy. With an interval, the store also syncs by itself when it sees
    /// the interval pass on the real clock (a fallback for a host that never syncs); that
    /// would make a run depend on how fast it runs, so its interval here is an hour and the
    /// simulated host's timer ([`World::pass_time`]) does the syncing every [`INTERVAL`].
    fn sync(self) -> SyncInterval {
        match self {
            Mode::Interval => SyncInterval::Every(Duration::from_secs(3600)),
            Mode::Always | Mode::SkippedFsync => SyncInterval::Always,
        }
    }

    /// Whether acknowledged writes must survive every power loss.
    pub(crate) fn durable(self) -> bool {
        self != Mode::Interval
    }
}

/// A broken invariant, with what it takes to replay it.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub(crate) seed: u64,
    pub(crate) step: u32,
    pub(crate) what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} step {}: {} (replay: EDGEBUS_SIM_SEED={})", self.seed, self.step, self.what, self.seed)
    }
}

/// What one seed did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    pub(crate) steps: u32,
    pub(crate) crashes: u64,
    /// Clean restarts.
    pub(crate) restarts: u64,
    /// Power cuts that landed in the middle of an operation.
    pub(crate) mid_op: u64,
    pub(crate) acked: u64,
    pub(crate) confirmed_acks: u64,
    pub(crate) batches: u64,
    pub(crate) lost_unsynced: u64,
    /// Fsyncs the disk failed (`EIO`, with [`World::with_eio`]).
    pub(crate) failed_fsyncs: u64,
    pub(crate) violation: Option<Violation>,
}

/// A message a client was told is stored.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) subject: String,
    pub(crate) payload: Vec<u8>,
    /// The simulated time of its ack.
    pub(crate) at: u64,
}

/// What the clients know about one stream.
#[derive(Debug, Default)]
pub(crate) struct StreamModel {
    /// Acknowledged and not removed, by sequence.
    pub(crate) acked: BTreeMap<u64, Msg>,
    /// Sequences a removal the engine confirmed took away: they must never come back.
    pub(crate) deleted: BTreeSet<u64>,
    /// Sequences a removal that failed (the power went during it) took away in memory: they
    /// may or may not be there after the restart.
    pub(crate) maybe: BTreeSet<u64>,
    /// The highest sequence handed out since the last restart: the next one must be above it.
    pub(crate) highest: u64,
    /// [`Mode::Interval`]: the newest sequence the last interval sync covered, and when.
    pub(crate) synced: u64,
    pub(crate) synced_at: u64,
    /// Sequences a refused publish may have used up: from the highest acknowledged when a
    /// publish was refused (its record written, its fsync failed) to the next one
    /// acknowledged (`None`: none yet). A gap there is no lost message.
    pub(crate) refused: Vec<(u64, Option<u64>)>,
}

impl StreamModel {
    fn on_reply(&mut self, reply: &Reply, subject: &str, payload: &[u8], now: u64) -> Result<(), String> {
        if matches!(reply, Reply::Error { .. } | Reply::Silent) && self.refused.last().is_none_or(|r| r.1.is_some()) {
            self.refused.push((self.highest, None));
        }
        if let Reply::Ack { seq, duplicate: false } = *reply {
            if seq <= self.highest {
                return Err(format!("seq {seq} handed out again (highest so far {})", self.highest));
            }
            if let Some(open) = self.refused.last_mut().filter(|r| r.1.is_none()) {
                open.1 = Some(seq);
            }
            self.highest = seq;
            self.acked.insert(seq, Msg { subject: subject.into(), payload: payload.to_vec(), at: now });
        }
        Ok(())
    }
}

/// An atomic batch that was committed (whether or not the commit was acknowledged).
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) payloads: Vec<Vec<u8>>,
    /// How many removals had run before it: a later removal may take part of it.
    pub(crate) removals_before: u64,
}

/// What the consumer's client was told.
#[derive(Debug, Default)]
pub(crate) struct ConsumerModel {
    /// The ack floor the engine reported right after an ack it confirmed: never to go back.
    pub(crate) confirmed_floor: u64,
    /// Stream sequences whose ack was confirmed: never to be delivered again.
    pub(crate) confirmed: BTreeSet<u64>,
    /// Delivered and not yet acked: (ack subject, stream sequence).
    outstanding: Vec<(String, u64)>,
}

/// One simulated server's disk, its current life, and what its clients know.
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) mode: Mode,
    pub(crate) rng: fastrand::Rng,
    pub(crate) disk: SimDisk,
    pub(crate) node: Node,
    pub(crate) streams: HashMap<&'static str, StreamModel>,
    pub(crate) consumer: ConsumerModel,
    pub(crate) batches: Vec<Batch>,
    /// Every payload ever published (all unique), with its subject.
    pub(crate) sent: HashMap<Vec<u8>, String>,
    pub(crate) removals: u64,
    next_sync: u64,
    /// [`Mode::Interval`]: the disk's failed fsyncs when the last interval sync worked (or
    /// the last recovery ran). More now means an fsync failed (`EIO`) in between.
    pub(crate) failed_at_sync: u64,
    pub(crate) out: Outcome,
    step: u32,
    /// `EDGEBUS_SIM_TRACE`: print every operation (to follow a replayed seed).
    trace: bool,
    /// Whether message deletes and stream purges are part of the workload.
    removes: bool,
    /// Whether one-off fsync failures (`EIO`) are part of the workload (`EDGEBUS_SIM_EIO`).
    eio: bool,
}

const STREAM_CONFIG: &str = r#","allow_atomic":true,"duplicate_window":30000000000"#;
const KV_CONFIG: &str = r#"{"name":"KV_B","subjects":["$KV.B.>"],"storage":"file","allow_rollup_hdrs":true,"deny_delete":true,"allow_direct":true}"#;
const CONSUMER_CONFIG: &str =
    r#"{"stream_name":"S","config":{"name":"C","durable_name":"C","ack_policy":"explicit","ack_wait":2000000000}}"#;

impl World {
    /// A new disk with stream `S` (atomic batches, dedup window), bucket `B` and consumer `C`.
    pub(crate) fn new(seed: u64, mode: Mode) -> World {
        let disk = SimDisk::new();
        let mut node = Node::boot(&disk, mode.sync(), SEGMENT, T0);
        node.create_stream_with(STREAM_CONFIG).unwrap();
        let kv = node.request(&format!("$JS.API.STREAM.CREATE.{KV}"), None, KV_CONFIG.as_bytes());
        assert!(matches!(parse(kv), Reply::Ack { .. }), "bucket");
        let c = node.request(&format!("$JS.API.CONSUMER.CREATE.{STREAM}.{CONSUMER}"), None, CONSUMER_CONFIG.as_bytes());
        assert!(matches!(parse(c), Reply::Ack { .. }), "consumer");
        if mode == Mode::Interval {
            // the host's timer fires before the workload starts: the streams exist for good
            assert!(node.interval_sync());
        }
        if mode == Mode::SkippedFsync {
            disk.skip_file_fsyncs();
        }
        let streams = [(STREAM, StreamModel::default()), (KV, StreamModel::default())].into_iter().collect();
        World {
            seed,
            mode,
            rng: fastrand::Rng::with_seed(seed),
            disk,
            node,
            streams,
            consumer: ConsumerModel::default(),
            batches: Vec::new(),
            sent: HashMap::new(),
            removals: 0,
            next_sync: T0 + INTERVAL,
            failed_at_sync: 0,
            out: Outcome::default(),
            step: 0,
            trace: std::env::var_os("EDGEBUS_SIM_TRACE").is_some(),
            removes: mode != Mode::Interval,
            eio: std::env::var_os("EDGEBUS_SIM_EIO").is_some(),
        }
    }

    /// Leaves message deletes and stream purges out of the workload (or puts them back).
    pub(crate) fn with_removes(mut self, on: bool) -> World {
        self.removes = on && self.mode != Mode::Interval;
        self
    }

    /// Puts one-off fsync failures into the workload (or takes them out).
    pub(crate) fn with_eio(mut self, on: bool) -> World {
        self.eio = on;
        self
    }

    /// Runs `steps` random operations; stops at the first violation.
    pub(crate) fn run(mut self, steps: u32) -> Outcome {
        for step in 0..steps {
            self.step = step;
            if let Err(what) = self.one_step() {
                self.out.violation = Some(Violation { seed: self.seed, step, what });
                break;
            }
            self.out.steps = step + 1;
        }
        if self.out.violation.is_none() {
            // every run ends with a power loss and one last check
            if let Err(what) = self.crash() {
                self.out.violation = Some(Violation { seed: self.seed, step: steps, what });
            }
        }
        self.out.mid_op = self.disk.stats().cuts;
        self.out.failed_fsyncs = self.disk.stats().failed_fsyncs;
        self.out.acked = self.streams.values().map(|s| (s.acked.len() + s.deleted.len()) as u64).sum();
        self.out.confirmed_acks = self.consumer.confirmed.len() as u64;
        self.out
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("step {} t+{}ms: {}", self.step, (self.node.now - T0) / 1_000_000, what());
        }
    }

    fn one_step(&mut self) -> Result<(), String> {
        let op = self.rng.u32(0..100);
        self.log(|| format!("op {op}"));
        match op {
            0..=29 => self.publish(),
            30..=37 => self.publish_batch(),
            38..=49 => self.kv(),
            50..=61 => self.fetch(),
            62..=75 => self.ack(),
            76..=84 => self.pass_time(),
            85..=91 if self.removes => self.remove(),
            85..=91 => self.publish(),
            92..=95 => {
                // the power will go in the middle of one of the next operations
                let n = self.rng.u64(0..120);
                self.log(|| format!("power cut after {n} more changes"));
                self.disk.cut_power_after(n);
                Ok(())
            }
            96..=97 => self.crash(),
            98 if self.eio => {
                // one fsync fails (EIO); the store must stop acknowledging until a restart
                let n = self.rng.u64(0..6);
                self.log(|| format!("fsync fails after {n} more"));
                self.disk.fail_one_fsync_after(n);
                Ok(())
            }
            _ => self.restart(),
        }
    }

    fn tag(&mut self, what: &str) -> Vec<u8> {
        let mut p = format!("{}:{}:{what}:{}:", self.seed, self.step, self.sent.len()).into_bytes();
        let filler = self.rng.usize(0..120);
        p.extend((0..filler).map(|i| (i % 251) as u8));
        p
    }

    fn publish(&mut self) -> Result<(), String> {
        let subject = format!("s.{}", self.rng.u8(0..4));
        let payload = self.tag("p");
        self.sent.insert(payload.clone(), subject.clone());
        // a small pool of ids, so ids repeat inside the window and after it
        let id = self.rng.bool().then(|| format!("id{}", self.rng.u8(0..12)));
        let reply = self.node.publish(&subject, id.as_deref(), &payload);
        self.log(|| format!("publish {subject} {id:?}: {reply:?}"));
        let now = self.node.now;
        if let (Reply::Ack { seq, duplicate: true }, Some(id)) = (&reply, &id) {
            return self.check_duplicate(*seq, id);
        }
        self.model(STREAM).on_reply(&reply, &subject, &payload, now)
    }

    /// A publish answered as a duplicate of `seq`: that message must be stored, with `id`.
    fn check_duplicate(&mut self, seq: u64, id: &str) -> Result<(), String> {
        // the window remembers ids whose messages were removed since
        let model = self.model(STREAM);
        if model.deleted.contains(&seq) || model.maybe.contains(&seq) {
            return Ok(());
        }
        let m = match self.node.msg_of(STREAM, seq) {
            Ok(m) => m.ok_or(format!("duplicate of seq {seq}, which is not stored"))?,
            // the power is out: the check after the restart sees what the disk kept
            Err(_) => return Ok(()),
        };
        let stored = m.headers.as_deref().and_then(|h| edgebus_core::proto::header_value(h, b"Nats-Msg-Id"));
        if stored != Some(id.as_bytes()) {
            return Err(format!("{id} called a duplicate of seq {seq}, which holds id {stored:?}"));
        }
        Ok(())
    }

    fn publish_batch(&mut self) -> Result<(), String> {
        let n = self.rng.usize(1..6);
        let id = format!("b{}-{}", self.step, self.out.crashes);
        let mut msgs = Vec::new();
        for i in 1..=n {
            let subject = format!("s.{}", self.rng.u8(0..4));
            let payload = self.tag("b");
            self.sent.insert(payload.clone(), subject.clone());
            let commit = if i == n { "Nats-Batch-Commit: 1\r\n" } else { "" };
            let headers = format!("NATS/1.0\r\nNats-Batch-Id: {id}\r\nNats-Batch-Sequence: {i}\r\n{commit}\r\n");
            let inbox = self.node.inbox();
            let got = self.node.send(&subject, Some(&inbox), Some(headers.as_bytes()), &payload);
            let answer = got.into_iter().find(|d| d.subject == inbox.as_bytes()).map(|d| d.payload);
            msgs.push((subject, payload));
            if i < n {
                // staged: an empty answer; anything else ended the batch
                if answer.as_ref().is_none_or(|a| !a.is_empty()) {
                    return Ok(());
                }
                continue;
            }
            self.batches
                .push(Batch { payloads: msgs.iter().map(|m| m.1.clone()).collect(), removals_before: self.removals });
            self.out.batches += 1;
            let reply = parse(answer);
            self.log(|| format!("batch {id} of {n}: {reply:?}"));
            if !matches!(reply, Reply::Ack { .. }) {
                self.model(STREAM).on_reply(&reply, "", &[], 0)?;
            }
            if let Reply::Ack { seq, duplicate: false } = reply {
                let now = self.node.now;
                let first = seq + 1 - n as u64;
                let model = self.model(STREAM);
                for (k, (subject, payload)) in msgs.iter().enumerate() {
                    model.on_reply(&Reply::Ack { seq: first + k as u64, duplicate: false }, subject, payload, now)?;
                }
            }
        }
        Ok(())
    }

    fn kv(&mut self) -> Result<(), String> {
        let key = format!("$KV.B.k{}", self.rng.u8(0..5));
        let payload = self.tag("kv");
        self.sent.insert(payload.clone(), key.clone());
        let op = self.rng.u8(0..10);
        let headers = match op {
            0 => Some("NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"),
            1 if self.removes => Some("NATS/1.0\r\nKV-Operation: PURGE\r\nNats-Rollup: sub\r\n\r\n"),
            _ => None,
        };
        let purge = op == 1 && headers.is_some();
        let before = purge.then(|| self.present(KV)).transpose()?;
        let reply = parse(self.node.request(&key, headers.map(str::as_bytes), &payload));
        self.log(|| format!("kv {key} op {op}: {reply:?}"));
        let now = self.node.now;
        self.model(KV).on_reply(&reply, &key, &payload, now)?;
        if let Some(before) = before {
            self.settle_removal(KV, before, matches!(reply, Reply::Ack { .. }))?;
        }
        Ok(())
    }

    /// Deletes a message, purges below a sequence, keeps the newest few, or purges a subject.
    fn remove(&mut self) -> Result<(), String> {
        let Some((first, last, _)) = self.node.state_of(STREAM) else { return Err("stream S is gone".into()) };
        if last < first {
            return Ok(());
        }
        let seq = self.rng.u64(first..=last);
        let before = self.present(STREAM)?;
        let (subject, body) = match self.rng.u8(0..4) {
            0 => ("MSG.DELETE", format!(r#"{{"seq":{seq}}}"#)),
            1 => ("PURGE", format!(r#"{{"seq":{seq}}}"#)),
            2 => ("PURGE", format!(r#"{{"keep":{}}}"#, self.rng.u64(0..20))),
            _ => ("PURGE", format!(r#"{{"filter":"s.{}"}}"#, self.rng.u8(0..4))),
        };
        let answer = self.node.request(&format!("$JS.API.STREAM.{subject}.{STREAM}"), None, body.as_bytes());
        let done = answer.is_some_and(|a| {
            serde_json::from_slice::<serde_json::Value>(&a).is_ok_and(|v| v["success"].as_bool() == Some(true))
        });
        self.removals += 1;
        self.log(|| format!("remove {subject} {body}: done {done}"));
        self.settle_removal(STREAM, before, done)
    }

    /// Whatever a removal took away: deleted for good if it was confirmed, else maybe. A
    /// message the engine cannot read now (the power is out) may still be there.
    fn settle_removal(&mut self, name: &'static str, before: BTreeSet<u64>, done: bool) -> Result<(), String> {
        let (after, unreadable) = self.readable(name)?;
        let model = self.model(name);
        for seq in before.difference(&after) {
            let acked = model.acked.remove(seq).is_some();
            if done && !unreadable.contains(seq) {
                model.deleted.insert(*seq);
            } else if acked {
                model.maybe.insert(*seq);
            }
            // an unacknowledged message the engine held only in memory: its sequence may
            // be handed out again after the restart
        }
        Ok(())
    }

    /// The sequences stream `name` may hold now: those the engine reads, and those it cannot
    /// read (the power is out), which a removal may still take.
    pub(crate) fn present(&mut self, name: &str) -> Result<BTreeSet<u64>, String> {
        let (mut seqs, unreadable) = self.readable(name)?;
        seqs.extend(unreadable);
        Ok(seqs)
    }

    /// The sequences stream `name` holds now, and those it failed to read.
    fn readable(&mut self, name: &str) -> Result<(BTreeSet<u64>, BTreeSet<u64>), String> {
        let Some((first, last, _)) = self.node.state_of(name) else { return Err(format!("stream {name} is gone")) };
        let (mut seqs, mut unreadable) = (BTreeSet::new(), BTreeSet::new());
        for seq in first.max(1)..=last {
            match self.node.msg_of(name, seq) {
                Ok(Some(_)) => {
                    seqs.insert(seq);
                }
                Ok(None) => {}
                Err(_) => {
                    unreadable.insert(seq);
                }
            }
        }
        Ok((seqs, unreadable))
    }

    fn fetch(&mut self) -> Result<(), String> {
        let inbox = self.node.inbox();
        let body = format!(r#"{{"batch":{},"no_wait":true}}"#, self.rng.u8(1..8));
        let subject = format!("$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{CONSUMER}");
        let got = self.node.send(&subject, Some(&inbox), None, body.as_bytes());
        self.delivered(&got)
    }

    /// Records the consumer's deliveries among `got`; a message whose ack was confirmed must
    /// not be among them.
    fn delivered(&mut self, got: &[Delivery]) -> Result<(), String> {
        for d in got {
            let Some(ack) = d.reply.as_deref().and_then(parse_ack_subject) else { continue };
            let sseq = ack.stream_seq;
            if self.mode.durable() && self.consumer.confirmed.contains(&sseq) {
                return Err(format!("seq {sseq} delivered again after its ack was confirmed"));
            }
            let reply = String::from_utf8_lossy(d.reply.as_deref().unwrap_or_default()).into_owned();
            self.log(|| format!("delivered {reply}"));
            self.consumer.outstanding.push((reply, sseq));
        }
        Ok(())
    }

    fn ack(&mut self) -> Result<(), String> {
        if self.consumer.outstanding.is_empty() {
            return Ok(());
        }
        let i = self.rng.usize(0..self.consumer.outstanding.len());
        let (subject, sseq) = self.consumer.outstanding.swap_remove(i);
        let how = self.rng.u8(0..10);
        self.log(|| format!("ack {sseq} kind {how}"));
        match how {
            0..=3 => {
                // AckSync: the empty answer says the ack is done
                let inbox = self.node.inbox();
                let got = self.node.send(&subject, Some(&inbox), None, b"+ACK");
                self.delivered(&got)?;
                if got.iter().any(|d| d.subject == inbox.as_bytes() && d.payload.is_empty()) {
                    self.consumer.confirmed.insert(sseq);
                    let floor = self.ack_floor()?;
                    self.log(|| format!("ack {sseq} confirmed, floor {floor}"));
                    // a purge that failed (the power went) may have moved the floor in memory
                    // only: the floor counts once no such purge is pending
                    if self.model(STREAM).maybe.is_empty() {
                        self.consumer.confirmed_floor = self.consumer.confirmed_floor.max(floor);
                    }
                }
            }
            4..=6 => {
                let got = self.node.send(&subject, None, None, b"+ACK");
                self.delivered(&got)?;
            }
            7 | 8 => {
                let got = self.node.send(&subject, None, None, b"-NAK");
                self.delivered(&got)?;
            }
            // left to time out
            _ => {}
        }
        Ok(())
    }

    /// The consumer's ack floor (stream sequence) as `CONSUMER.INFO` reports it.
    pub(crate) fn ack_floor(&mut self) -> Result<u64, String> {
        let subject = format!("$JS.API.CONSUMER.INFO.{STREAM}.{CONSUMER}");
        let answer = self.node.request(&subject, None, b"").ok_or("no consumer info")?;
        let v: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        self.log(|| {
            format!(
                "consumer info: delivered {} ack_floor {} pending {}",
                v["delivered"], v["ack_floor"], v["num_ack_pending"]
            )
        });
        v["ack_floor"]["stream_seq"].as_u64().ok_or(format!("consumer info: {v}"))
    }

    /// Up to three seconds pass; the interval sync runs when due, as the host's timer would.
    fn pass_time(&mut self) -> Result<(), String> {
        let dt = self.rng.u64(0..3 * SEC);
        let got = self.node.advance(dt);
        self.delivered(&got)?;
        if self.mode == Mode::Interval && self.node.now >= self.next_sync {
            self.next_sync = self.node.now + INTERVAL;
            if self.node.interval_sync() {
                self.failed_at_sync = self.disk.stats().failed_fsyncs;
                let now = self.node.now;
                for model in self.streams.values_mut() {
                    model.synced = model.highest;
                    model.synced_at = now;
                }
            }
        }
        Ok(())
    }

    /// A clean stop and start (no power loss), and the invariants checked.
    fn restart(&mut self) -> Result<(), String> {
        if !self.disk.steady() {
            // the power is out, or about to go: what comes next is a power loss
            return self.crash();
        }
        self.log(|| "clean restart".into());
        let now = self.node.now + self.rng.u64(1..10) * SEC;
        // the old server stops before the new one opens the store (a stand-in on an empty
        // disk holds the place meanwhile)
        let stand_in = Node::boot(&SimDisk::new(), self.mode.sync(), SEGMENT, now);
        std::mem::replace(&mut self.node, stand_in).shutdown();
        self.node = Node::boot(&self.disk, self.mode.sync(), SEGMENT, now);
        self.out.restarts += 1;
        self.next_sync = now + INTERVAL;
        self.check_recovered()
    }

    /// Power loss, restart on what the disk kept, and the invariants checked.
    pub(crate) fn crash(&mut self) -> Result<(), String> {
        self.log(|| format!("power loss (disk: {:?})", self.disk.stats()));
        self.disk.power_loss(&mut self.rng);
        self.out.crashes += 1;
        let now = self.node.now + self.rng.u64(1..10) * SEC;
        // the old process is gone: its final sync (if any) must find a dead disk
        let old = std::mem::replace(&mut self.node, Node::boot(&self.disk, self.mode.sync(), SEGMENT, now));
        drop(old);
        self.next_sync = now + INTERVAL;
        self.check_recovered()
    }

    pub(crate) fn model(&mut self, name: &str) -> &mut StreamModel {
        self.streams.get_mut(name).unwrap()
    }
}
