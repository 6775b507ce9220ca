//! The simulation every scenario runs in: a simulated clock, the core's `Broker` with
//! protocol connections that exchange real NATS bytes, and the JetStream engine hosted on a
//! local connection of that broker through the core's `EngineHost` (the step the server and
//! the page run too). Nothing here reads a clock or sleeps: time moves only when a scenario
//! moves it.

use std::collections::HashMap;

use edgebus_core::broker::{Broker, BrokerConfig, ConnId, Delivery, LocalBus};
use edgebus_core::jetstream::host::EngineHost;
use edgebus_core::jetstream::store::MemStorage;
use edgebus_core::jetstream::JetStream;
use edgebus_core::proto::{Headers, Limits, Message, Parser, ServerInfo, ServerOp, ServerRole};

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
    pub(crate) host: EngineHost<u64>,
    js_conn: ConnId,
    clients: HashMap<ConnId, Client>,
}

impl Sim {
    pub(crate) fn new() -> Sim {
        let config = BrokerConfig::open(ServerInfo {
            server_id: "NSIM".into(),
            server_name: "sim".into(),
            headers: true,
            proto: 1,
            max_payload: 1024 * 1024,
            jetstream: true,
            ..Default::default()
        });
        let mut broker = Broker::new(config, 11);
        let js_conn = broker.connect_local();
        let (js, warnings) = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 13);
        assert!(warnings.is_empty(), "{warnings:?}");
        let host = EngineHost::new(js, &mut LocalBus { broker: &mut broker, conn: js_conn });
        Sim { now: T0, broker, host, js_conn, clients: HashMap::new() }
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

    /// Runs `f` on the engine (KV, object store: in-process users of the engine, as the
    /// page's API), then a host step so what it published is routed.
    pub(crate) fn with_engine<R>(&mut self, f: impl FnOnce(&mut JetStream, u64, &dyn Fn(&[u8]) -> bool) -> R) -> R {
        let r = {
            let Sim { broker, host, now, .. } = self;
            let interest = |s: &[u8]| broker.has_interest(s);
            f(host.engine_mut(), *now, &interest)
        };
        self.step();
        r
    }

    /// Host steps until nothing moves, as a host runs them after input or a timer: each is
    /// the core's engine step (due timers, then the messages that reached the engine, then
    /// its subscription changes), and its output is routed through the broker.
    pub(crate) fn step(&mut self) {
        for _ in 0..10_000 {
            let input: Vec<Delivery> = self.broker.take_deliveries(self.js_conn);
            let mut bus = LocalBus { broker: &mut self.broker, conn: self.js_conn };
            let out = self.host.step(self.now, &mut bus, input.iter().map(Delivery::inbound));
            if input.is_empty() && out.is_empty() {
                return;
            }
            for o in &out {
                bus.publish(o);
            }
        }
        panic!("the host step never settled");
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
