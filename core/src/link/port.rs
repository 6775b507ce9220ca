//! The link as one local connection of a [`Broker`] (the page's host; a server host wires
//! [`Link`] to its router the same way).
//!
//! The port subscribes the exported subjects locally, so what the local side publishes on
//! them reaches [`BrokerPort::take_local`] and goes to the link. What the server sends is
//! published locally from the same connection by [`BrokerPort::deliver`]; deliveries that
//! publish causes on the port's own export subscriptions (a subject both imported and
//! exported) are echoes and are dropped, so nothing loops. A request the server sends to a
//! local subscriber gets a one-shot local subscription on its reply subject, whose message
//! goes back to the server.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::Bytes;

use super::{BadSubject, Link, LinkConfig, Msg};
use crate::broker::{Broker, ConnId, Delivery};

/// Local reply subscriptions kept at most for requests the server sent in.
const MAX_REPLY_SUBS: usize = 1024;

/// The broker side of one link.
pub struct BrokerPort {
    conn: ConnId,
    /// The local subscriptions on the exported subjects.
    exports: Vec<u64>,
    /// One-shot local subscriptions on the reply subjects of requests from the server.
    replies: VecDeque<u64>,
}

impl From<Delivery> for Msg {
    fn from(d: Delivery) -> Msg {
        Msg { subject: d.subject, reply: d.reply, headers: d.headers, payload: d.payload, route: None }
    }
}

impl BrokerPort {
    /// Opens the link's local connection and subscribes its exports.
    pub fn attach(broker: &mut Broker, config: &LinkConfig) -> Result<BrokerPort, BadSubject> {
        let conn = broker.connect_local();
        let mut exports = Vec::with_capacity(config.exports.len());
        for s in &config.exports {
            match broker.subscribe_local(conn, s.as_bytes(), None) {
                Ok(sub) => exports.push(sub),
                Err(error) => {
                    broker.disconnect(conn);
                    return Err(BadSubject { subject: s.clone(), error });
                }
            }
        }
        Ok(BrokerPort { conn, exports, replies: VecDeque::new() })
    }

    /// Ends the local connection (and every subscription of it).
    pub fn detach(&mut self, broker: &mut Broker) {
        broker.disconnect(self.conn);
        self.exports.clear();
        self.replies.clear();
    }

    /// Hands what the local side published on exported subjects (and its replies to the
    /// server's requests) to the link.
    ///
    /// A reply matching an export too (a link exporting `>`) reaches the port twice, once
    /// per subscription: it goes out once, as the live reply.
    pub fn take_local(&mut self, broker: &mut Broker, link: &mut Link, now: u64) {
        let deliveries = broker.take_deliveries(self.conn);
        let mut answered: Vec<Bytes> =
            deliveries.iter().filter(|d| self.replies.contains(&d.sub)).map(|d| d.subject.clone()).collect();
        for d in deliveries {
            if self.exports.contains(&d.sub) {
                if let Some(i) = answered.iter().position(|s| *s == d.subject) {
                    answered.swap_remove(i);
                    continue;
                }
            }
            self.route(link, now, d);
        }
    }

    /// Publishes what the server sent ([`super::Event::Deliver`]) on the local side.
    pub fn deliver(&mut self, broker: &mut Broker, link: &mut Link, now: u64, msgs: impl IntoIterator<Item = Msg>) {
        // What was published before goes first, and is not taken for an echo below.
        self.take_local(broker, link, now);
        for m in msgs {
            let (subject, reply) = (&m.subject[..], m.reply.as_deref());
            let route = m.route.as_deref().unwrap_or(subject);
            if let Some(reply) = reply {
                if broker.has_interest(route) {
                    self.expect_reply(broker, reply);
                }
            }
            // A subject the server sent is one it accepted; nothing to report if not.
            let _ = broker.publish_local(self.conn, route, subject, reply, m.headers.as_deref(), &m.payload);
        }
        for d in broker.take_deliveries(self.conn) {
            if !self.exports.contains(&d.sub) {
                self.route(link, now, d);
            }
        }
    }

    fn route(&mut self, link: &mut Link, now: u64, d: Delivery) {
        if self.exports.contains(&d.sub) {
            link.handle_export(now, d.into());
        } else {
            self.replies.retain(|s| *s != d.sub);
            link.handle_reply(now, d.into());
        }
    }

    /// A one-shot subscription on `reply`; the oldest goes when too many wait.
    fn expect_reply(&mut self, broker: &mut Broker, reply: &[u8]) {
        let Ok(sub) = broker.subscribe_local(self.conn, reply, None) else { return };
        broker.unsubscribe_local(self.conn, sub, 1);
        self.replies.push_back(sub);
        if self.replies.len() > MAX_REPLY_SUBS {
            if let Some(old) = self.replies.pop_front() {
                broker.unsubscribe_local(self.conn, old, 0);
            }
        }
    }
}
