//! Hosting the engine on a bus: the one step every host runs.
//!
//! The engine is a client of the bus it serves. The native server hosts it on a thread (and
//! inline on a publishing connection's task), the page on its one thread, the core's tests
//! under a simulated clock; what they have in common — which subscriptions the engine holds,
//! in which order timers and messages are handled, what comes out — lives here, so that a host
//! only moves messages and fires its timer.
//!
//! Call order, for every host:
//! 1. [`EngineHost::new`] subscribes the engine's subjects on the host's bus.
//! 2. Whenever messages arrived on those subscriptions, or the deadline of
//!    [`EngineHost::poll_timeout`] has passed, call [`EngineHost::step`] with them (or with
//!    none), then publish every returned [`Outbound`] in order. A step handles due timers
//!    first: a pull request that expired before a message arrived must end with its
//!    `408 Request Timeout` rather than take that message, as in nats-server.
//! 3. [`EngineHost::shutdown`] saves the engine's state and drops its subscriptions.

use alloc::string::String;
use alloc::vec::Vec;
use hashbrown::HashMap;

use super::{JetStream, Outbound, SubChange};

/// The bus an engine is a client of, as its host provides it.
pub trait EngineBus {
    /// The host's handle on one of the engine's subscriptions.
    type Sub;
    /// Subscribes the engine to `subject`; `None` if the bus refused it.
    fn subscribe(&mut self, subject: &str) -> Option<Self::Sub>;
    fn unsubscribe(&mut self, sub: Self::Sub);
    /// Whether anyone listens on `subject` (push consumers deliver only then).
    fn has_interest(&self, subject: &[u8]) -> bool;
}

/// A message on one of the engine's subscriptions, borrowed from wherever the host keeps it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// The engine with the subscriptions it holds on its host's bus (`S` is the host's handle).
pub struct EngineHost<S> {
    engine: JetStream,
    subs: HashMap<String, S>,
    /// Someone subscribed since the last step: push consumers without a subscriber look again.
    interest_news: bool,
}

impl<S> EngineHost<S> {
    pub fn new<B: EngineBus<Sub = S>>(engine: JetStream, bus: &mut B) -> Self {
        let mut host = EngineHost { engine, subs: HashMap::new(), interest_news: false };
        host.sync_subscriptions(bus);
        host
    }

    pub fn engine(&self) -> &JetStream {
        &self.engine
    }

    /// For direct calls into the engine (the page's KV and object store, statistics). Whoever
    /// changes the engine this way then runs a [`EngineHost::step`] with no input, which picks
    /// up the subscription changes and the output the call left.
    pub fn engine_mut(&mut self) -> &mut JetStream {
        &mut self.engine
    }

    /// Whether the host should call [`EngineHost::interest_appeared`] when a subscription is
    /// made on its bus (a push consumer waits for its subscriber).
    pub fn awaits_interest(&self) -> bool {
        self.engine.awaits_push_interest()
    }

    /// A subscription was made on the bus: the next step lets push consumers that had no
    /// subscriber deliver at once rather than at their next interest poll.
    pub fn interest_appeared(&mut self) {
        self.interest_news = true;
    }

    /// When the next step is due even if no message arrives (ns since the Unix epoch).
    pub fn poll_timeout(&self, now: u64) -> Option<u64> {
        self.engine.next_deadline(now)
    }

    /// One engine step at `now`: due timers, then `input` in order, then the subscription
    /// changes all that caused; returns what to publish, in order.
    pub fn step<'a, B: EngineBus<Sub = S>>(
        &mut self,
        now: u64,
        bus: &mut B,
        input: impl IntoIterator<Item = Inbound<'a>>,
    ) -> Vec<Outbound> {
        {
            let bus = &*bus;
            let interest = |subject: &[u8]| bus.has_interest(subject);
            if self.engine.next_deadline(now).is_some_and(|due| due <= now) {
                self.engine.handle_timeout(now, &interest);
            }
            if core::mem::take(&mut self.interest_news) {
                self.engine.recheck_push_interest(now, &interest);
            }
            for m in input {
                self.engine.handle_msg(now, m.subject, m.reply, m.headers, m.payload, &interest);
            }
            self.engine.commit_step(now, &interest);
        }
        self.sync_subscriptions(bus);
        self.engine.take_outbound()
    }

    /// Saves consumer state and stream metadata, and drops every subscription: nothing reaches
    /// the engine after this.
    pub fn shutdown<B: EngineBus<Sub = S>>(&mut self, bus: &mut B) {
        self.engine.flush();
        for (_, sub) in self.subs.drain() {
            bus.unsubscribe(sub);
        }
    }

    fn sync_subscriptions<B: EngineBus<Sub = S>>(&mut self, bus: &mut B) {
        for change in self.engine.subscriptions() {
            match change {
                SubChange::Add(subject) => {
                    if !self.subs.contains_key(&subject) {
                        if let Some(sub) = bus.subscribe(&subject) {
                            self.subs.insert(subject, sub);
                        }
                    }
                }
                SubChange::Remove(subject) => {
                    if let Some(sub) = self.subs.remove(&subject) {
                        bus.unsubscribe(sub);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::broker::{Broker, BrokerConfig, ConnId, Delivery, LocalBus};
    use crate::jetstream::engine::INTEREST_POLL;
    use crate::jetstream::store::{MemStorage, Storage};
    use crate::proto::ServerInfo;

    use alloc::boxed::Box;

    const SEC: u64 = 1_000_000_000;

    struct Sim {
        broker: Broker,
        client: ConnId,
        js: ConnId,
        host: EngineHost<u64>,
    }

    impl Sim {
        fn new(now: u64) -> Sim {
            Sim::on(now, Box::new(MemStorage))
        }

        /// A simulation whose file streams live in `file`.
        fn on(now: u64, file: Box<dyn Storage>) -> Sim {
            let config = BrokerConfig::open(ServerInfo::default());
            let mut broker = Broker::new(config, 1);
            let client = broker.connect_local();
            let js = broker.connect_local();
            let (engine, _) = JetStream::new(file, Box::new(MemStorage), now, 1);
            let host = EngineHost::new(engine, &mut LocalBus { broker: &mut broker, conn: js });
            broker.subscribe_local(client, b"_INBOX.c.*", None).unwrap();
            Sim { broker, client, js, host }
        }

        /// Stops the engine as a host does at shutdown and opens a new one on `file`, on the
        /// same bus (the clients and their subscriptions stay).
        fn restart(&mut self, now: u64, file: Box<dyn Storage>) {
            self.host.shutdown(&mut LocalBus { broker: &mut self.broker, conn: self.js });
            let (engine, warnings) = JetStream::new(file, Box::new(MemStorage), now, 1);
            assert!(warnings.is_empty(), "{warnings:?}");
            self.host = EngineHost::new(engine, &mut LocalBus { broker: &mut self.broker, conn: self.js });
        }

        /// The engine's count, checked against a scan of every consumer.
        fn waiting(&self) -> usize {
            let engine = self.host.engine();
            let scanned = engine
                .streams
                .values()
                .flat_map(|e| e.consumers.values())
                .filter(|c| c.is_push() && !c.push_bound())
                .count();
            assert_eq!(engine.push_consumers_waiting(), scanned, "the count and a scan disagree");
            scanned
        }

        /// Creates durable consumer `name` on stream S (push when `deliver` is given).
        fn consumer(&mut self, now: u64, name: &str, deliver: Option<&str>) {
            let deliver = deliver.map(|d| alloc::format!(r#","deliver_subject":"{d}""#)).unwrap_or_default();
            let body = alloc::format!(
                r#"{{"stream_name":"S","config":{{"durable_name":"{name}","ack_policy":"none"{deliver}}}}}"#
            );
            self.send(&alloc::format!("$JS.API.CONSUMER.CREATE.S.{name}"), Some("_INBOX.c.c"), &body);
            let answer = self.pump(now);
            assert!(answer.iter().all(|d| !d.payload.windows(7).any(|w| w == b"\"error\"")), "{answer:?}");
        }

        /// Steps the engine until the bus is quiet, as a host does after input.
        fn pump(&mut self, now: u64) -> Vec<Delivery> {
            loop {
                let input = self.broker.take_deliveries(self.js);
                let mut bus = LocalBus { broker: &mut self.broker, conn: self.js };
                let out = self.host.step(now, &mut bus, input.iter().map(Delivery::inbound));
                for o in &out {
                    bus.publish(o);
                }
                if input.is_empty() && out.is_empty() {
                    return self.broker.take_deliveries(self.client);
                }
            }
        }

        fn send(&mut self, subject: &str, reply: Option<&str>, body: &str) {
            let reply = reply.map(str::as_bytes);
            self.broker
                .publish_local(self.client, subject.as_bytes(), subject.as_bytes(), reply, None, body.as_bytes())
                .unwrap();
        }
    }

    /// Due timers come before new input. Message 1 went out at t0 and was never acked; its
    /// ack wait (1 s) is over when the next pull request arrives at t0 + 2 s, as it would have
    /// fired on a real clock: the request gets message 1 again, not message 2. Handling the
    /// request before the timer would hand it message 2 and leave message 1 waiting.
    #[test]
    fn a_due_redelivery_goes_before_a_request_that_arrives_with_it() {
        let t0 = 1_700_000_000 * SEC;
        let mut sim = Sim::new(t0);
        sim.send("$JS.API.STREAM.CREATE.S", Some("_INBOX.c.1"), r#"{"name":"S","subjects":["s.>"]}"#);
        sim.send(
            "$JS.API.CONSUMER.CREATE.S.C",
            Some("_INBOX.c.2"),
            r#"{"stream_name":"S","config":{"name":"C","durable_name":"C","ack_policy":"explicit","ack_wait":1000000000}}"#,
        );
        let replies = sim.pump(t0);
        assert_eq!(replies.len(), 2);
        // published once the engine listens on the stream's subjects
        sim.send("s.1", None, "one");
        sim.send("s.2", None, "two");
        assert!(sim.pump(t0).is_empty());
        assert!(replies.iter().all(|d| !d.payload.windows(7).any(|w| w == b"\"error\"")), "{replies:?}");
        let pull = r#"{"batch":1,"no_wait":true}"#;
        sim.send("$JS.API.CONSUMER.MSG.NEXT.S.C", Some("_INBOX.c.p1"), pull);
        let first = sim.pump(t0);
        assert_eq!(first.iter().map(|d| &d.payload[..]).collect::<Vec<_>>(), [b"one"], "{first:?}");
        assert!(sim.host.poll_timeout(t0).is_some_and(|t| t <= t0 + SEC));
        sim.send("$JS.API.CONSUMER.MSG.NEXT.S.C", Some("_INBOX.c.p2"), pull);
        let second = sim.pump(t0 + 2 * SEC);
        let data: Vec<&[u8]> = second.iter().filter(|d| d.headers.is_none()).map(|d| &d.payload[..]).collect();
        assert_eq!(data, [b"one"], "{second:?}");
    }

    /// A push consumer created before anyone subscribes its deliver subject (what nats.py and
    /// async-nats do) delivers in the step after the subscription is announced, at the same
    /// instant, not at its next interest poll (50 ms later: the stall every ordered consumer,
    /// KV watch and object-store get used to pay).
    #[test]
    fn a_push_consumer_delivers_as_soon_as_its_subscriber_appears() {
        let t0 = 1_700_000_000 * SEC;
        let mut sim = Sim::new(t0);
        sim.send("$JS.API.STREAM.CREATE.S", Some("_INBOX.c.1"), r#"{"name":"S","subjects":["s.>"]}"#);
        sim.pump(t0);
        sim.send("s.1", None, "one");
        sim.pump(t0);
        sim.send(
            "$JS.API.CONSUMER.CREATE.S.P",
            Some("_INBOX.c.2"),
            r#"{"stream_name":"S","config":{"name":"P","deliver_subject":"push.p","ack_policy":"none"}}"#,
        );
        let created = sim.pump(t0);
        assert_eq!(created.len(), 1, "only the create's answer: nobody listens on push.p yet");
        assert!(sim.host.awaits_interest());
        sim.broker.subscribe_local(sim.client, b"push.p", None).unwrap();
        sim.host.interest_appeared();
        let got = sim.pump(t0);
        let data: Vec<&[u8]> = got.iter().map(|d| &d.payload[..]).collect();
        assert_eq!(data, [b"one"], "{got:?}");
        assert!(!sim.host.awaits_interest());
    }

    /// The engine's count of push consumers that wait for a subscriber (what the server reads
    /// after every step to know whether a new subscription must wake the engine) stays equal
    /// to what a scan of every consumer would find, through create (with and without a
    /// subscriber), the subscriber appearing and going, delete, restart and stream delete.
    #[test]
    fn the_count_of_waiting_push_consumers_follows_their_subscribers() {
        let t0 = 1_700_000_000 * SEC;
        let poll = INTEREST_POLL;
        let disk = crate::jetstream::source::tests::Disk::default();
        let mut sim = Sim::on(t0, Box::new(disk.clone()));
        sim.send("$JS.API.STREAM.CREATE.S", Some("_INBOX.c.1"), r#"{"name":"S","subjects":["s.>"]}"#);
        sim.pump(t0);
        sim.consumer(t0, "PULL", None);
        assert_eq!(sim.waiting(), 0, "a pull consumer never waits for interest");
        assert!(!sim.host.awaits_interest());
        sim.consumer(t0, "P1", Some("push.1"));
        sim.consumer(t0, "P2", Some("push.2"));
        assert_eq!(sim.waiting(), 2);
        assert!(sim.host.awaits_interest());

        let sub1 = sim.broker.subscribe_local(sim.client, b"push.1", None).unwrap();
        sim.host.interest_appeared();
        sim.pump(t0);
        assert_eq!(sim.waiting(), 1, "P1 found its subscriber in the step after it came");
        sim.broker.subscribe_local(sim.client, b"push.3", None).unwrap();
        sim.consumer(t0, "P3", Some("push.3"));
        assert_eq!(sim.waiting(), 1, "P3 was created with its subscriber there");

        sim.broker.unsubscribe_local(sim.client, sub1, 0);
        sim.pump(t0 + poll / 2);
        assert_eq!(sim.waiting(), 1, "nobody told the engine; the poll is not due");
        sim.pump(t0 + poll);
        assert_eq!(sim.waiting(), 2, "the interest poll found P1 alone again");

        sim.send("$JS.API.CONSUMER.DELETE.S.P2", Some("_INBOX.c.d"), "");
        sim.pump(t0 + poll);
        assert_eq!(sim.waiting(), 1, "deleting P2 took it out");

        let t1 = t0 + 10 * SEC;
        sim.restart(t1, Box::new(disk.clone()));
        let recovered = sim.host.engine().consumer_count();
        assert_eq!(recovered, 3, "PULL, P1 and P3 came back");
        assert_eq!(sim.waiting(), 2, "recovered push consumers wait until a step looks");
        sim.pump(t1);
        assert_eq!(sim.waiting(), 1, "the first step bound P3 to its subscriber; P1 still waits");
        sim.host.engine_mut().reload_file_streams(t1);
        assert_eq!(sim.waiting(), 2, "a reload replaces the stream's consumers, which wait again");
        sim.pump(t1 + poll);
        assert_eq!(sim.waiting(), 1, "and the next poll binds P3 again");

        sim.send("$JS.API.STREAM.DELETE.S", Some("_INBOX.c.x"), "");
        sim.pump(t1);
        assert_eq!(sim.host.engine().stream_count(), 0);
        assert_eq!(sim.waiting(), 0, "the stream's consumers left the count with it");
        assert!(!sim.host.awaits_interest());
    }

    #[test]
    fn subscriptions_follow_streams_and_end_at_shutdown() {
        let t0 = 1_700_000_000 * SEC;
        let mut sim = Sim::new(t0);
        let before = sim.broker.subscription_count();
        sim.send("$JS.API.STREAM.CREATE.S", Some("_INBOX.c.1"), r#"{"name":"S","subjects":["s.>"]}"#);
        sim.pump(t0);
        assert!(sim.broker.has_interest(b"s.anything"));
        assert_eq!(sim.broker.subscription_count(), before + 1);
        sim.send("$JS.API.STREAM.DELETE.S", Some("_INBOX.c.2"), "");
        sim.pump(t0);
        assert!(!sim.broker.has_interest(b"s.anything"));
        sim.host.shutdown(&mut LocalBus { broker: &mut sim.broker, conn: sim.js });
        assert_eq!(sim.broker.subscription_count(), 1, "only the client's inbox is left");
    }
}
