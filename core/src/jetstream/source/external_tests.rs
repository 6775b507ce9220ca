//! Mirrors and sources of an origin in another engine (`external`): two engines joined by a
//! small network the test can cut or make lose messages, time stepped by hand.

#![allow(clippy::unwrap_used)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::super::store::MemStorage;
use super::super::{JetStream, Outbound, SubChange};
use super::tests::{open, Disk};
use crate::subject;

const T0: u64 = 1_800_000_000_000_000_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const HUB: usize = 0;
const EDGE: usize = 1;

/// Two engines (the hub, domain `hub`; the edge, domain `edge`) on one bus. A message goes to
/// every engine with a matching subscription; while `cut`, nothing crosses from one to the
/// other (and neither sees the other's interest), and `lose` drops that many hub → edge
/// messages while interest stays, as a link that loses what is in flight.
struct Net {
    js: [JetStream; 2],
    subs: [Vec<String>; 2],
    cut: bool,
    lose: usize,
    now: u64,
    /// The hub answers sourcing requests as a server below API level 4 does (`10185`).
    decline: bool,
    /// The consumer create requests the edge sent: (subject, headers, body).
    creates: Vec<(String, Option<String>, Value)>,
}

impl Net {
    fn new(edge: JetStream) -> Net {
        let (mut hub, _) = JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 7);
        hub.set_domain("hub");
        let mut edge = edge;
        edge.set_domain("edge");
        let mut net = Net {
            js: [hub, edge],
            subs: [Vec::new(), Vec::new()],
            cut: false,
            lose: 0,
            now: T0,
            decline: false,
            creates: Vec::new(),
        };
        net.sync_subs();
        net
    }

    fn sync_subs(&mut self) {
        for i in 0..2 {
            for c in self.js[i].subscriptions() {
                match c {
                    SubChange::Add(s) => self.subs[i].push(s),
                    SubChange::Remove(s) => self.subs[i].retain(|x| *x != s),
                }
            }
        }
    }

    fn listens(&self, i: usize, subj: &[u8]) -> bool {
        self.subs[i].iter().any(|s| subject::matches(s.as_bytes(), subj))
    }

    /// Who engine `from` can reach with `subj`.
    fn reaches(&self, from: usize, subj: &[u8]) -> Vec<usize> {
        (0..2).filter(|&i| (i == from || !self.cut) && self.listens(i, subj)).collect()
    }

    /// Delivers `out` of engine `from`, and whatever that causes, until the bus is quiet.
    fn route(&mut self, from: usize, out: Vec<Outbound>) {
        let mut queue: Vec<(usize, Outbound)> = out.into_iter().map(|o| (from, o)).collect();
        let mut steps = 0;
        while !queue.is_empty() {
            steps += 1;
            assert!(steps < 1_000_000, "the bus never settles");
            let (from, o) = queue.remove(0);
            if from == EDGE && o.route.starts_with(b"$JS.hub.API.CONSUMER.CREATE.") {
                let headers = o.headers.as_deref().map(|h| String::from_utf8_lossy(h).into_owned());
                let body = serde_json::from_slice(&o.payload).unwrap_or(Value::Null);
                let sourcing = headers.as_deref().is_some_and(|h| h.contains("Nats-Required-Api-Level"));
                self.creates.push((String::from_utf8_lossy(&o.route).into_owned(), headers, body));
                if self.decline && sourcing && !self.cut {
                    let error = json!({"error": {"code": 412, "err_code": 10185, "description": "JetStream minimum api level required"}});
                    let reply = o.reply.clone().unwrap();
                    let answer = Outbound {
                        route: reply.clone(),
                        subject: reply,
                        reply: None,
                        headers: None,
                        payload: error.to_string().into(),
                    };
                    queue.push((HUB, answer));
                    continue;
                }
            }
            for to in self.reaches(from, &o.route) {
                if from == HUB && to == EDGE && self.lose > 0 {
                    self.lose -= 1;
                    continue;
                }
                let (now, cut) = (self.now, self.cut);
                let (subs, js) = (&self.subs, &mut self.js[to]);
                let interest = |s: &[u8]| {
                    (0..2).any(|i| (i == to || !cut) && subs[i].iter().any(|x| subject::matches(x.as_bytes(), s)))
                };
                js.handle_msg(now, &o.subject, o.reply.as_deref(), o.headers.as_deref(), &o.payload, &interest);
                let more = js.take_outbound();
                queue.extend(more.into_iter().map(|o| (to, o)));
                self.sync_subs();
            }
        }
    }

    /// Runs every engine's due timers at `now`, routing what they send.
    fn tick(&mut self) {
        for i in 0..2 {
            let mut n = 0;
            while self.js[i].next_deadline(self.now).is_some_and(|d| d <= self.now) {
                n += 1;
                assert!(n < 10_000, "engine {i} never settles");
                let (now, cut, subs) = (self.now, self.cut, self.subs.clone());
                let interest = |s: &[u8]| {
                    (0..2).any(|k| (k == i || !cut) && subs[k].iter().any(|x| subject::matches(x.as_bytes(), s)))
                };
                self.js[i].handle_timeout(now, &interest);
                let out = self.js[i].take_outbound();
                self.sync_subs();
                self.route(i, out);
            }
        }
    }

    /// Steps time by 100 ms up to `now + d`.
    fn run(&mut self, d: u64) {
        let end = self.now + d;
        while self.now < end {
            self.now += 100 * MS;
            self.tick();
        }
    }

    /// Runs until `done` holds (at most `limit`), returning whether it did.
    fn run_until(&mut self, limit: u64, done: impl Fn(&mut Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.now += 100 * MS;
            self.tick();
        }
        done(self)
    }

    /// A request to engine `i`'s own API, answered directly.
    fn api(&mut self, i: usize, subj: &str, body: Value) -> Value {
        let now = self.now;
        self.js[i].handle_msg(
            now,
            subj.as_bytes(),
            Some(b"_INBOX.t"),
            None,
            body.to_string().as_bytes(),
            &|_: &[u8]| false,
        );
        let out = self.js[i].take_outbound();
        self.sync_subs();
        let reply =
            out.iter().find(|o| &o.route[..] == b"_INBOX.t").map(|o| serde_json::from_slice(&o.payload).unwrap());
        let rest: Vec<Outbound> = out.into_iter().filter(|o| &o.route[..] != b"_INBOX.t").collect();
        self.route(i, rest);
        reply.unwrap_or(Value::Null)
    }

    fn publish(&mut self, subj: &str, body: &str) {
        let now = self.now;
        let (subs, js) = (&self.subs, &mut self.js[HUB]);
        let interest = |s: &[u8]| subs.iter().any(|l| l.iter().any(|x| subject::matches(x.as_bytes(), s)));
        js.publish(now, subj.as_bytes(), None, body.as_bytes(), &interest).unwrap();
        let out = self.js[HUB].take_outbound();
        self.route(HUB, out);
    }

    fn count(&mut self, stream: &str) -> usize {
        self.js[EDGE].messages(stream, b">", false).map_or(0, |m| m.len())
    }

    /// (seq, subject, payload) of the edge's `stream`.
    fn contents(&mut self, stream: &str) -> Vec<(u64, String, String)> {
        let msgs = self.js[EDGE].messages(stream, b">", false).unwrap();
        msgs.into_iter()
            .map(|m| {
                (
                    m.seq,
                    String::from_utf8_lossy(&m.subject).into_owned(),
                    String::from_utf8_lossy(&m.payload).into_owned(),
                )
            })
            .collect()
    }
}

fn edge_engine() -> JetStream {
    JetStream::new(Box::new(MemStorage), Box::new(MemStorage), T0, 9).0
}

fn mirror_cfg() -> Value {
    json!({"name": "M", "storage": "memory",
           "mirror": {"name": "O", "external": {"api": "$JS.hub.API", "deliver": "deliver.m"}}})
}

fn hub_origin(net: &mut Net, name: &str, subjects: &str) {
    let v = net.api(HUB, &format!("$JS.API.STREAM.CREATE.{name}"), json!({"name": name, "subjects": [subjects]}));
    assert!(v.get("error").is_none(), "{v}");
}

fn numbered(n: std::ops::Range<usize>) -> Vec<String> {
    n.map(|i| format!("{i}")).collect()
}

#[test]
fn a_mirror_of_an_external_stream_catches_up_exactly_after_a_cut() {
    let mut net = Net::new(edge_engine());
    hub_origin(&mut net, "O", "o.>");
    for i in 1..=1500 {
        net.publish("o.x", &format!("{i}"));
    }
    let v = net.api(EDGE, "$JS.API.STREAM.CREATE.M", mirror_cfg());
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["config"]["mirror"]["external"], json!({"api": "$JS.hub.API", "deliver": "deliver.m"}));
    // 1,500 messages: more than one flow-control window of the hub's consumer
    assert!(net.run_until(5 * SEC, |n| n.count("M") == 1500), "{}", net.count("M"));

    net.cut = true;
    for i in 1501..=2000 {
        net.publish("o.x", &format!("{i}"));
    }
    net.run(3 * SEC);
    assert_eq!(net.count("M"), 1500);
    net.cut = false;
    net.publish("o.end", "end");
    assert!(net.run_until(60 * SEC, |n| n.count("M") == 2001), "{}", net.count("M"));
    let got = net.contents("M");
    let want: Vec<String> = numbered(1..2001).into_iter().chain(["end".to_string()]).collect();
    assert_eq!(got.iter().map(|m| m.2.clone()).collect::<Vec<_>>(), want);
    assert!(got.iter().enumerate().all(|(i, m)| m.0 == i as u64 + 1), "the origin's sequences");
    let info = net.api(EDGE, "$JS.API.STREAM.INFO.M", json!({}));
    assert_eq!(info["mirror"]["name"], "O");
    assert_eq!(info["mirror"]["lag"], 0);
    assert_eq!(info["mirror"]["external"], json!({"api": "$JS.hub.API", "deliver": "deliver.m"}));
    assert!(info["mirror"]["active"].as_i64().is_some_and(|a| (0..=(2 * SEC) as i64).contains(&a)), "{info}");
}

#[test]
fn a_lost_delivery_is_noticed_and_taken_again() {
    let mut net = Net::new(edge_engine());
    hub_origin(&mut net, "O", "o.>");
    net.api(EDGE, "$JS.API.STREAM.CREATE.M", mirror_cfg());
    net.run(SEC);
    for i in 1..=10 {
        net.publish("o.x", &format!("{i}"));
    }
    assert_eq!(net.count("M"), 10);
    // two deliveries vanish on the way; the next one shows the gap
    net.lose = 2;
    for i in 11..=20 {
        net.publish("o.x", &format!("{i}"));
    }
    assert!(net.run_until(10 * SEC, |n| n.count("M") == 20), "{}", net.count("M"));
    assert_eq!(net.contents("M").iter().map(|m| m.2.clone()).collect::<Vec<_>>(), numbered(1..21));
    // the last delivery lost: only the heartbeat tells
    net.lose = 1;
    net.publish("o.x", "21");
    assert_eq!(net.count("M"), 20);
    assert!(net.run_until(10 * SEC, |n| n.count("M") == 21), "{}", net.count("M"));
}

#[test]
fn sources_in_another_domain_with_a_filter() {
    let mut net = Net::new(edge_engine());
    hub_origin(&mut net, "A", "a.>");
    hub_origin(&mut net, "B", "b.>");
    for i in 0..100 {
        net.publish(if i % 2 == 0 { "a.keep" } else { "a.drop" }, &format!("a{i}"));
        net.publish("b.x", &format!("b{i}"));
    }
    let ext = json!({"api": "$JS.hub.API", "deliver": "deliver.s"});
    let v = net.api(
        EDGE,
        "$JS.API.STREAM.CREATE.S",
        json!({"name": "S", "storage": "memory", "sources": [
            {"name": "A", "filter_subject": "a.keep", "external": ext},
            {"name": "B", "external": ext},
        ]}),
    );
    assert!(v.get("error").is_none(), "{v}");
    assert!(net.run_until(5 * SEC, |n| n.count("S") == 150), "{}", net.count("S"));
    net.cut = true;
    for i in 100..150 {
        net.publish("a.keep", &format!("a{i}"));
        net.publish("b.x", &format!("b{i}"));
    }
    net.run(2 * SEC);
    net.cut = false;
    assert!(net.run_until(60 * SEC, |n| n.count("S") == 250), "{}", net.count("S"));
    let got = net.contents("S");
    let a: Vec<String> = got.iter().filter(|m| m.1 == "a.keep").map(|m| m.2.clone()).collect();
    let b: Vec<String> = got.iter().filter(|m| m.1 == "b.x").map(|m| m.2.clone()).collect();
    let want_a: Vec<String> = (0..100).step_by(2).chain(100..150).map(|i| format!("a{i}")).collect();
    assert_eq!(a, want_a);
    assert_eq!(b, (0..150).map(|i| format!("b{i}")).collect::<Vec<_>>());
    let h = net.js[EDGE].msg("S", 1).unwrap().unwrap().headers.unwrap();
    let src = crate::proto::header_value(&h, b"Nats-Stream-Source").unwrap();
    assert!(src.starts_with(b"A 1 a.keep > a.keep") || src.starts_with(b"B 1 > > b.x"), "{src:?}");
    let info = net.api(EDGE, "$JS.API.STREAM.INFO.S", json!({}));
    assert_eq!(info["sources"][0]["filter_subject"], "a.keep");
    assert_eq!(info["sources"][1]["external"], ext);
}

#[test]
fn positions_survive_a_restart() {
    let disk = Disk::default();
    let mut net = Net::new(open(&disk, T0));
    hub_origin(&mut net, "O", "o.>");
    for i in 1..=50 {
        net.publish("o.x", &format!("{i}"));
    }
    let cfg = json!({"name": "M", "mirror": {"name": "O", "external": {"api": "$JS.hub.API"}}});
    assert!(net.api(EDGE, "$JS.API.STREAM.CREATE.M", cfg).get("error").is_none());
    let ext = json!({"api": "$JS.hub.API", "deliver": "d.s"});
    let scfg = json!({"name": "S", "sources": [{"name": "O", "external": ext}]});
    assert!(net.api(EDGE, "$JS.API.STREAM.CREATE.S", scfg).get("error").is_none());
    assert!(net.run_until(5 * SEC, |n| n.count("M") == 50 && n.count("S") == 50));
    // a crash: the edge goes without flushing; the hub goes on
    let Net { js: [hub, _crashed], subs: [hub_subs, _], now, .. } = net;
    let mut net2 = Net {
        js: [hub, open(&disk, now)],
        subs: [hub_subs, Vec::new()],
        cut: false,
        lose: 0,
        now,
        decline: false,
        creates: Vec::new(),
    };
    net2.js[EDGE].set_domain("edge");
    net2.sync_subs();
    for i in 51..=80 {
        net2.publish("o.x", &format!("{i}"));
    }
    assert!(
        net2.run_until(30 * SEC, |n| n.count("M") == 80 && n.count("S") == 80),
        "{} {}",
        net2.count("M"),
        net2.count("S")
    );
    net2.run(3 * SEC);
    assert_eq!(net2.contents("M").iter().map(|m| m.2.clone()).collect::<Vec<_>>(), numbered(1..81));
    assert_eq!(net2.contents("S").iter().map(|m| m.2.clone()).collect::<Vec<_>>(), numbered(1..81));
}

#[test]
fn a_work_queue_origin_is_drained_by_its_source_through_flow_control_acks() {
    let mut net = Net::new(edge_engine());
    let cfg = json!({"name": "W", "subjects": ["w.>"], "retention": "workqueue"});
    assert!(net.api(HUB, "$JS.API.STREAM.CREATE.W", cfg).get("error").is_none());
    // more than max_ack_pending (1,000): delivery stalls until a flow-control answer acks
    for i in 0..1500 {
        net.publish("w.x", &format!("{i}"));
    }
    let ext = json!({"api": "$JS.hub.API", "deliver": "deliver.s"});
    let scfg = json!({"name": "S", "storage": "memory", "sources": [{"name": "W", "external": ext}]});
    assert!(net.api(EDGE, "$JS.API.STREAM.CREATE.S", scfg).get("error").is_none());
    let hub_count = |n: &mut Net| n.js[HUB].messages("W", b">", false).map_or(0, |m| m.len());
    assert!(
        net.run_until(20 * SEC, |n| n.count("S") == 1500 && hub_count(n) == 0),
        "{} {}",
        net.count("S"),
        hub_count(&mut net)
    );
    // the sourcing request, and the durable the hub made of it
    let (subject, headers, body) = net.creates[0].clone();
    assert_eq!(subject, "$JS.hub.API.CONSUMER.CREATE.W");
    assert!(headers.unwrap().contains("Nats-Required-Api-Level: 4"));
    assert_eq!(body["config"]["sourcing"], true);
    let cname = body["config"]["name"].as_str().unwrap().to_string();
    assert!(cname.starts_with("JS_SRC_"), "{cname}");
    let names = net.api(HUB, "$JS.API.CONSUMER.NAMES.W", json!({}));
    assert_eq!(names["consumers"], json!([cname]));
    let info = net.api(HUB, &format!("$JS.API.CONSUMER.INFO.W.{cname}"), json!({}));
    assert_eq!(info["config"]["ack_policy"], "flow_control");
    assert_eq!(info["config"]["durable_name"], json!(cname));
    // cut: the edge asks again for the same durable, which sends what was not acked
    net.cut = true;
    for i in 1500..1600 {
        net.publish("w.x", &format!("{i}"));
    }
    net.run(3 * SEC);
    net.cut = false;
    let ok = net.run_until(60 * SEC, |n| n.count("S") == 1600 && hub_count(n) == 0);
    let info = net.api(HUB, &format!("$JS.API.CONSUMER.INFO.W.{cname}"), json!({}));
    assert!(ok, "{} {} {info} {:?}", net.count("S"), hub_count(&mut net), net.creates.len());
    let got: Vec<String> = net.contents("S").into_iter().map(|m| m.2).collect();
    assert_eq!(got, numbered(0..1600));
    assert!(net.creates.iter().all(|c| c.2["config"]["name"] == json!(cname)), "the same stable name");
    let names = net.api(HUB, "$JS.API.CONSUMER.NAMES.W", json!({}));
    assert_eq!(names["consumers"], json!([cname]));
}

#[test]
fn an_origin_below_level_4_is_asked_again_for_the_plain_consumer() {
    let mut net = Net::new(edge_engine());
    net.decline = true;
    hub_origin(&mut net, "O", "o.>");
    for i in 1..=20 {
        net.publish("o.x", &format!("{i}"));
    }
    assert!(net.api(EDGE, "$JS.API.STREAM.CREATE.M", mirror_cfg()).get("error").is_none());
    assert!(net.run_until(5 * SEC, |n| n.count("M") == 20), "{}", net.count("M"));
    let [(_, h1, first), (_, h2, second)] = &net.creates[..] else { panic!("{:?}", net.creates) };
    assert!(h1.is_some() && h2.is_none());
    assert_eq!(first["config"]["sourcing"], true);
    assert!(second["config"].get("sourcing").is_none());
    let (a, b) = (first["config"]["name"].as_str().unwrap(), second["config"]["name"].as_str().unwrap());
    assert!(a.starts_with("JS_MIRROR_") && b.starts_with(&format!("{a}_")), "{a} {b}");
    assert_eq!(net.contents("M").into_iter().map(|m| m.2).collect::<Vec<_>>(), numbered(1..21));
}
