//! The simulation every scenario runs in: a simulated clock, the core's `Broker` with
//! protocol connections that exchange real NATS bytes, and the JetStream engine hosted on a
//! local connection of that broker, as the page and the server host it. Nothing here reads a
//! clock or sleeps: time moves only when a scenario moves it.

use std::collections::HashMap;

use edgebus_core::broker::{Broker, BrokerConfig, ConnId};
use edgebus_core::jetstream::store::MemStorage;
use edgebus_core::jetstream::{JetStream, SubChange};
use edgebus_core::proto::{Headers, Limits, Message, Parser, ServerInfo, ServerOp, ServerRole};
use edgebus_core::session::SessionConfig;

/// An arbitrary start time (ns since the epoch), so times are plausible dates.
pub(crate) const T0: u64 = 1_800_000_000_000_000_000;
pub(crate) const SEC: u64 = 1_000_000_000;
pub(crate) const MS: u64 = 1_000_000;

/// A protocol client's view: what it has read from the broker, parsed.
struct Client {
    parser: Parser<ServerRole>,
}

pub(crate) struct Sim {
    /// The simulated clock. Scenarios move it with [`Sim::advance`], or set it directly to
    /// make time pass without a host step (as when a host wakes late, with input waiting).
    pub(crate) now: u64,
    pub(crate) broker: Broker,
    pub(crate) js: JetStream,
    js_conn: ConnId,
    engine_subs: HashMap<String, u64>,
    clients: HashMap<ConnId, Client>,
}

impl Sim {
    pub(crate) fn new() -> Sim {
        let config = BrokerConfig {
            session: SessionConfig { limits: Limits::default(), auth_required: false },
            info: ServerInfo {
                server_id: "NSIM".into(),
                server_name: "sim".into(),
                headers: true,
                proto: 1,
                max_payload: 1024 * 1024,
                jetstream: true,
                ..Default::default()
            },
            max_subscriptions: 0,
            authorizer: None,
        };
        let mut broker = Broker::new(config, 11);
        let js_conn = broker.connect_local();
        let (js, warnings) = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 13);
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut sim = Sim { now: T0, broker, js, js_conn, engine_subs: HashMap::new(), clients: HashMap::new() };
        sim.step();
        sim
    }

    /// Connects a protocol client with `connect` (the `CONNECT` JSON) and waits for its `PONG`.
    pub(crate) fn client(&mut self, connect: &str) -> ConnId {
        let id = self.broker.connect();
        let limits = Limits { max_control_line: 64 * 1024, max_payload: 64 * 1024 * 1024 };
        self.clients.insert(id, Client { parser: Parser::new(limits) });
        let info = self.read(id);
        assert!(matches!(info.first(), Some(ServerOp::Info(_))), "{info:?}");
        self.send(id, &format!("CONNECT {connect}\r\nPING\r\n"));
        let ops = self.read(id);
        assert!(ops.contains(&ServerOp::Pong), "no PONG after CONNECT: {ops:?}");
        id
    }

    /// Bytes from client `c`, then one host step.
    pub(crate) fn send(&mut self, c: ConnId, bytes: &str) {
        self.broker.receive(c, bytes.as_bytes());
        self.step();
    }

    /// Everything the broker wrote to client `c` since the last read, parsed.
    pub(crate) fn read(&mut self, c: ConnId) -> Vec<ServerOp> {
        let out = self.broker.take_output(c);
        let client = self.clients.get_mut(&c).expect("a client of this sim");
        client.parser.extend(&out);
        let mut ops = Vec::new();
        while let Some(op) = client.parser.poll_op().expect("the broker writes valid protocol") {
            ops.push(op);
        }
        ops
    }

    /// The messages client `c` received since the last read (other operations dropped).
    pub(crate) fn msgs(&mut self, c: ConnId) -> Vec<Message> {
        self.read(c)
            .into_iter()
            .filter_map(|op| match op {
                ServerOp::Msg(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Moves the clock by `d` and runs a host step (the timers that fell due).
    pub(crate) fn advance(&mut self, d: u64) {
        self.now += d;
        self.step();
    }

    /// Runs `f` on the engine (KV, object store: in-process users of the engine), then a
    /// host step so what it published is routed.
    pub(crate) fn with_engine<R>(&mut self, f: impl FnOnce(&mut JetStream, u64, &dyn Fn(&[u8]) -> bool) -> R) -> R {
        let r = {
            let Sim { broker, js, now, .. } = self;
            let interest = |s: &[u8]| broker.has_interest(s);
            f(js, *now, &interest)
        };
        self.step();
        r
    }

    /// One host step, repeated until nothing moves: due timers first, then the messages
    /// that reached the engine, then the engine's output routed through the broker.
    pub(crate) fn step(&mut self) {
        for _ in 0..10_000 {
            let moved = {
                let Sim { broker, js, now, js_conn, .. } = self;
                let input = broker.take_deliveries(*js_conn);
                let interest = |s: &[u8]| broker.has_interest(s);
                if js.next_deadline(*now).is_some_and(|d| d <= *now) {
                    js.handle_timeout(*now, &interest);
                }
                for d in &input {
                    js.handle_msg(*now, &d.subject, d.reply.as_deref(), d.headers.as_deref(), &d.payload, &interest);
                }
                !input.is_empty()
            };
            self.apply_engine_subs();
            let out = self.js.take_outbound();
            if !moved && out.is_empty() {
                return;
            }
            for o in out {
                let _ = self.broker.publish_local(
                    self.js_conn,
                    &o.route,
                    &o.subject,
                    o.reply.as_deref(),
                    o.headers.as_deref(),
                    &o.payload,
                );
            }
        }
        panic!("the host step never settled");
    }

    fn apply_engine_subs(&mut self) {
        for change in self.js.subscriptions() {
            match change {
                SubChange::Add(s) => {
                    if !self.engine_subs.contains_key(&s) {
                        let sid =
                            self.broker.subscribe_local(self.js_conn, s.as_bytes(), None).expect("a valid subject");
                        self.engine_subs.insert(s, sid);
                    }
                }
                SubChange::Remove(s) => {
                    if let Some(sid) = self.engine_subs.remove(&s) {
                        self.broker.unsubscribe_local(self.js_conn, sid, 0);
                    }
                }
            }
        }
    }
}

/// `PUB` (or `HPUB` with `headers`) as a client writes it.
pub(crate) fn publish(subject: &str, reply: Option<&str>, headers: &[(&str, &str)], payload: &str) -> String {
    let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
    if headers.is_empty() {
        return format!("PUB {subject}{reply} {}\r\n{payload}\r\n", payload.len());
    }
    let mut h = Headers::new();
    for (k, v) in headers {
        h.append(k, v);
    }
    let h = String::from_utf8(h.to_bytes().to_vec()).expect("ASCII headers");
    format!("HPUB {subject}{reply} {} {}\r\n{h}{payload}\r\n", h.len(), h.len() + payload.len())
}

/// A message's status code (`NATS/1.0 503`), 0 without one.
pub(crate) fn status(m: &Message) -> u16 {
    m.headers().and_then(|h| Headers::parse(h).ok()).and_then(|h| h.status).unwrap_or(0)
}

/// A header's value.
pub(crate) fn header(m: &Message, name: &str) -> Option<String> {
    m.headers().and_then(|h| Headers::parse(h).ok()).and_then(|h| h.get(name).map(String::from))
}

pub(crate) fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("UTF-8")
}

pub(crate) fn json(m: &Message) -> serde_json::Value {
    serde_json::from_slice(m.payload()).expect("a JSON body")
}

pub(crate) fn subject(m: &Message) -> &str {
    text(&m.subject)
}

pub(crate) fn reply(m: &Message) -> String {
    m.reply.as_ref().map(|r| text(r).to_string()).unwrap_or_default()
}
