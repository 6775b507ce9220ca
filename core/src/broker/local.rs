//! In-process connections: hosts that live next to the broker (the page's own API, an
//! embedded JetStream engine) subscribe and publish with values instead of protocol bytes.
//!
//! A local connection is an ordinary connection in every routing respect (queue groups, echo,
//! auto-unsubscribe, no-responders), so protocol clients and local ones share subjects. Only
//! the sink differs: a delivery to it is queued as a [`Delivery`] (payload slices share the
//! publisher's buffer) for the host to collect with [`Broker::take_deliveries`].

use alloc::vec::Vec;
use bytes::Bytes;

use super::{Broker, ConnId, SubKey, SubState};
#[cfg(feature = "jetstream")]
use crate::jetstream::host::{EngineBus, Inbound};
#[cfg(feature = "jetstream")]
use crate::jetstream::Outbound;
use crate::policy::Conduct;
use crate::subject::{validate_publish, SubjectError};

/// Why a local publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The subject cannot be published to.
    Subject(SubjectError),
    /// Headers and payload together are over the broker's `max_payload` (the limit its
    /// `INFO` announces), the limit a protocol client meets as `Maximum Payload Violation`.
    MaxPayload { size: usize, max: usize },
}

impl From<SubjectError> for PublishError {
    fn from(e: SubjectError) -> Self {
        PublishError::Subject(e)
    }
}

impl core::fmt::Display for PublishError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PublishError::Subject(e) => write!(f, "{e}"),
            PublishError::MaxPayload { size, max } => write!(f, "maximum payload exceeded: {size} > {max}"),
        }
    }
}

/// A message delivered to a local connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The subscription it matched, as returned by [`Broker::subscribe_local`].
    pub sub: u64,
    /// The subject shown to the receiver.
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    /// The raw header block, if the message has one.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

impl Delivery {
    pub(super) fn new(
        sub: u64,
        subject: Bytes,
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &Bytes,
    ) -> Self {
        let split = header_len.unwrap_or(0).min(message.len());
        Delivery {
            sub,
            subject,
            reply: reply.map(Bytes::copy_from_slice),
            headers: header_len.map(|_| message.slice(..split)),
            payload: message.slice(split..),
        }
    }
}

#[cfg(feature = "jetstream")]
impl Delivery {
    /// The delivery as input for an embedded engine.
    pub fn inbound(&self) -> Inbound<'_> {
        Inbound {
            subject: &self.subject,
            reply: self.reply.as_deref(),
            headers: self.headers.as_deref(),
            payload: &self.payload,
        }
    }
}

/// A local connection as the bus of an embedded JetStream engine: how the page and the core's
/// tests host the engine on a [`Broker`].
pub struct LocalBus<'a> {
    pub broker: &'a mut Broker,
    pub conn: ConnId,
}

#[cfg(feature = "jetstream")]
impl LocalBus<'_> {
    /// Publishes what the engine returned, from its connection.
    pub fn publish(&mut self, o: &Outbound) {
        // the engine only produces valid subjects; a bad one would be dropped as nats-server does
        let _ = self.broker.publish_local(
            self.conn,
            &o.route,
            &o.subject,
            o.reply.as_deref(),
            o.headers.as_deref(),
            &o.payload,
        );
    }
}

#[cfg(feature = "jetstream")]
impl EngineBus for LocalBus<'_> {
    type Sub = u64;

    fn subscribe(&mut self, subject: &str) -> Option<u64> {
        self.broker.subscribe_local(self.conn, subject.as_bytes(), None).ok()
    }

    fn unsubscribe(&mut self, sub: u64) {
        self.broker.unsubscribe_local(self.conn, sub, 0);
    }

    fn has_interest(&self, subject: &[u8]) -> bool {
        self.broker.has_interest(subject)
    }
}

impl Broker {
    /// Opens an in-process connection. It is connected at once with headers, no-responders
    /// and echo on, and is never verbose.
    pub fn connect_local(&mut self) -> ConnId {
        let id = self.add_conn();
        if let Some(c) = self.conns.get_mut(&id) {
            c.conduct = Conduct::LOCAL;
            c.local = Some(Vec::new());
        }
        id
    }

    /// Subscribes local connection `conn` to `subject` (in queue group `queue`); returns the
    /// subscription's id, which deliveries carry.
    pub fn subscribe_local(&mut self, conn: ConnId, subject: &[u8], queue: Option<&[u8]>) -> Result<u64, SubjectError> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(SubjectError::Empty);
        };
        let key = SubKey { conn, id: c.next_sub };
        self.sublist.insert(subject, queue, key)?;
        c.next_sub += 1;
        // A sid keeps the bookkeeping shared with protocol subscriptions; nothing sends it.
        let mut b = itoa::Buffer::new();
        let sid = Bytes::copy_from_slice(b.format(key.id).as_bytes());
        c.sids.insert(sid.clone(), key.id);
        c.subs.insert(
            key.id,
            SubState {
                sid,
                subject: Bytes::copy_from_slice(subject),
                queue: queue.map(Bytes::copy_from_slice),
                max: 0,
                delivered: 0,
            },
        );
        Ok(key.id)
    }

    /// Ends a local subscription at once (`max == 0`) or after `max` deliveries in total.
    /// Returns whether the subscription existed.
    pub fn unsubscribe_local(&mut self, conn: ConnId, sub: u64, max: u64) -> bool {
        let Some(s) = self.conns.get_mut(&conn).and_then(|c| c.subs.get_mut(&sub)) else {
            return false;
        };
        if max > 0 && s.delivered < max {
            s.max = max;
        } else {
            self.remove_sub(conn, sub);
        }
        true
    }

    /// A publish by a local client (an application, as the page's): held to `max_payload` as
    /// a protocol client's `PUB` is, then [`Broker::publish_local`]. The broker's own
    /// services (the JetStream engine's deliveries and API replies, a link bringing in what a
    /// server accepted) publish unbounded, as nats-server's internal clients do.
    pub fn publish_client(
        &mut self,
        from: ConnId,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<usize, PublishError> {
        self.check_publish(subject, headers.map_or(0, <[u8]>::len) + payload.len())?;
        Ok(self.publish_local(from, subject, subject, reply, headers, payload)?)
    }

    /// What [`Broker::publish_client`] refuses: a subject one may not publish to, a message
    /// over `max_payload`. For a host that hands a publish to its receiver directly
    /// ([`Broker::interest_beyond`]), so the same ones fail the same way.
    pub fn check_publish(&self, subject: &[u8], size: usize) -> Result<(), PublishError> {
        validate_publish(subject)?;
        self.check_payload(size)
    }

    /// Publishes from connection `from`: routed on `route`, shown to receivers as `subject`
    /// (JetStream deliveries route on an inbox but show the stream subject). Returns how many
    /// subscriptions received it; a request nobody received gets the no-responders status as
    /// for protocol publishers. No size limit: see [`Broker::publish_client`].
    pub fn publish_local(
        &mut self,
        from: ConnId,
        route: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<usize, SubjectError> {
        validate_publish(route)?;
        let header_len = headers.map(<[u8]>::len);
        let mut message = Vec::with_capacity(header_len.unwrap_or(0) + payload.len());
        message.extend_from_slice(headers.unwrap_or_default());
        message.extend_from_slice(payload);
        Ok(self.route_msg(from, route, subject, reply, header_len, &Bytes::from(message)))
    }

    /// Publishes `ends.len()` messages on `subject` from `data`, where message `i` is
    /// `data[ends[i-1]..ends[i]]`: the same as one [`Broker::publish_local`] per message, but
    /// the subject is checked once and every delivery's payload is a slice of `data`, not a
    /// copy. Returns the number of deliveries. The caller checks `ends` (ascending, within
    /// `data`): the batch stops silently at the first one that is not. A batch is a local
    /// client's (see [`Broker::publish_client`]): a payload over `max_payload` refuses the
    /// whole batch before any of it is routed.
    pub fn publish_local_batch(
        &mut self,
        from: ConnId,
        subject: &[u8],
        data: &Bytes,
        ends: &[u32],
    ) -> Result<usize, PublishError> {
        validate_publish(subject)?;
        let mut start = 0usize;
        for &end in ends {
            let end = end as usize;
            if end < start || end > data.len() {
                break;
            }
            self.check_payload(end - start)?;
            start = end;
        }
        let mut start = 0usize;
        let mut delivered = 0;
        for &end in ends {
            let end = end as usize;
            if end < start || end > data.len() {
                break;
            }
            delivered += self.route_msg(from, subject, subject, None, None, &data.slice(start..end));
            start = end;
        }
        Ok(delivered)
    }

    /// Sets the largest message the broker takes (headers and payload): what local publishers
    /// are held to, and what `INFO` announces to connections made afterwards.
    pub fn set_max_payload(&mut self, max: usize) {
        self.config.info.max_payload = i64::try_from(max).unwrap_or(i64::MAX);
        self.config.session.limits.max_payload = max;
    }

    /// The largest message local publishers may send (headers and payload); 0: no limit.
    pub fn max_payload(&self) -> usize {
        usize::try_from(self.config.info.max_payload).unwrap_or(0)
    }

    /// The broker's own `max_payload` ([`crate::proto::ServerInfo::max_payload`]; 0 or less:
    /// none), which local publishers meet as protocol clients do.
    fn check_payload(&self, size: usize) -> Result<(), PublishError> {
        let max = self.config.info.max_payload;
        match usize::try_from(max) {
            Ok(max) if max > 0 && size > max => Err(PublishError::MaxPayload { size, max }),
            _ => Ok(()),
        }
    }

    /// The deliveries queued for local connection `conn`, in order.
    pub fn take_deliveries(&mut self, conn: ConnId) -> Vec<Delivery> {
        self.conns.get_mut(&conn).and_then(|c| c.local.as_mut()).map(core::mem::take).unwrap_or_default()
    }

    /// Whether any subscription (local or not) matches `subject`.
    pub fn has_interest(&self, subject: &[u8]) -> bool {
        !self.sublist.matches(subject).is_empty()
    }

    /// Whether a subscription of any connection but `conn` matches `subject`. A host may
    /// hand a publish straight to `conn` (the page's stream publishes to its engine) only
    /// when nobody else would receive it: not a subscriber, another tab, nor a link.
    pub fn interest_beyond(&self, conn: ConnId, subject: &[u8]) -> bool {
        let m = self.sublist.matches(subject);
        m.plain.iter().chain(m.queues.iter().flat_map(|q| q.members.iter())).any(|k| k.conn != conn)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::broker::BrokerConfig;
    use crate::proto::ServerInfo;

    use alloc::string::ToString;

    fn broker() -> Broker {
        let config =
            BrokerConfig::open(ServerInfo { server_id: "NTEST".into(), headers: true, proto: 1, ..Default::default() });
        Broker::new(config, 7)
    }

    #[test]
    fn local_and_protocol_clients_share_subjects() {
        let mut b = broker();
        let local = b.connect_local();
        assert!(b.take_output(local).is_empty(), "no INFO for a local connection");
        let wire = b.connect();
        b.take_output(wire);
        b.receive(wire, b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB from.local 1\r\n");
        let sub = b.subscribe_local(local, b"from.*", None).unwrap();
        b.receive(wire, b"HPUB from.wire 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        assert_eq!(
            b.take_deliveries(local),
            [Delivery {
                sub,
                subject: Bytes::from_static(b"from.wire"),
                reply: None,
                headers: Some(Bytes::from_static(b"NATS/1.0\r\n\r\n")),
                payload: Bytes::from_static(b"hi"),
            }]
        );
        assert_eq!(b.publish_local(local, b"from.local", b"from.local", Some(b"r"), None, b"yo").unwrap(), 2);
        assert_eq!(&b.take_output(wire)[..], b"MSG from.local 1 r 2\r\nyo\r\n");
        assert_eq!(b.take_deliveries(local).len(), 1, "echo is on");
        assert!(b.publish_local(local, b"bad.*", b"bad.*", None, None, b"").is_err());
    }

    #[test]
    fn interest_beyond_a_connection_counts_every_other_one() {
        let mut b = broker();
        let engine = b.connect_local();
        let page = b.connect_local();
        b.subscribe_local(engine, b"s.>", None).unwrap();
        assert!(b.has_interest(b"s.x"));
        assert!(!b.interest_beyond(engine, b"s.x"), "only the engine subscribes");
        let sub = b.subscribe_local(page, b"s.*", Some(b"q")).unwrap();
        assert!(b.interest_beyond(engine, b"s.x"), "a queue member of another connection");
        assert!(!b.interest_beyond(engine, b"s.x.y"));
        b.unsubscribe_local(page, sub, 0);
        assert!(!b.interest_beyond(engine, b"s.x"));
        let wire = b.connect();
        b.receive(wire, b"CONNECT {\"verbose\":false}\r\nSUB > 1\r\n");
        assert!(b.interest_beyond(engine, b"s.x"), "a protocol client");
        assert!(b.check_publish(b"s.*", 1).is_err());
        assert!(b.check_publish(b"s.x", 1).is_ok());
    }

    #[test]
    fn a_batch_routes_like_single_publishes() {
        let mut b = broker();
        let c = b.connect_local();
        let sub = b.subscribe_local(c, b"batch.*", None).unwrap();
        let data = Bytes::from_static(b"onetwothree");
        assert_eq!(b.publish_local_batch(c, b"batch.x", &data, &[3, 6, 6, 11]).unwrap(), 4);
        let got: Vec<(u64, Bytes, Bytes)> =
            b.take_deliveries(c).into_iter().map(|d| (d.sub, d.subject, d.payload)).collect();
        let want: Vec<(u64, Bytes, Bytes)> = ["one", "two", "", "three"]
            .iter()
            .map(|p| (sub, Bytes::from_static(b"batch.x"), Bytes::copy_from_slice(p.as_bytes())))
            .collect();
        assert_eq!(got, want);
        assert!(b.publish_local_batch(c, b"batch.*", &data, &[1]).is_err());
        assert_eq!(b.publish_local_batch(c, b"batch.x", &data, &[4, 2, 5]).unwrap(), 1, "stops at a bad end");
    }

    #[test]
    fn a_local_publish_over_max_payload_is_refused_whole() {
        let config =
            BrokerConfig::open(ServerInfo { server_id: "NTEST".into(), max_payload: 1 << 20, ..Default::default() });
        let mut b = Broker::new(config, 7);
        let c = b.connect_local();
        b.subscribe_local(c, b"big.*", None).unwrap();
        b.set_max_payload(1 << 21);
        let two_mib = alloc::vec![0u8; 1 << 21];
        assert_eq!(b.publish_client(c, b"big.1", None, None, &two_mib).unwrap(), 1, "raised");
        b.set_max_payload(1 << 20);
        b.take_deliveries(c);
        let at_limit = alloc::vec![0u8; 1 << 20];
        assert_eq!(b.publish_client(c, b"big.1", None, None, &at_limit).unwrap(), 1);
        let over = alloc::vec![0u8; (1 << 20) + 1];
        let err = b.publish_client(c, b"big.1", None, None, &over).unwrap_err();
        assert_eq!(err, PublishError::MaxPayload { size: (1 << 20) + 1, max: 1 << 20 });
        assert_eq!(err.to_string(), "maximum payload exceeded: 1048577 > 1048576");
        // Headers count: 1 MiB of payload plus a header block is over.
        let err = b.publish_client(c, b"big.1", None, Some(b"NATS/1.0\r\n\r\n"), &at_limit);
        assert!(matches!(err, Err(PublishError::MaxPayload { .. })));
        assert_eq!(b.take_deliveries(c).len(), 1, "only the one at the limit was routed");
        // The broker's own services (the engine's deliveries, its API replies) are unbounded.
        assert_eq!(b.publish_local(c, b"big.1", b"big.1", None, None, &over).unwrap(), 1);
        b.take_deliveries(c);
        // A batch with one payload over the limit routes none of it.
        let mut data = alloc::vec![1u8; 3];
        data.extend_from_slice(&over);
        let ends = [3, data.len() as u32];
        let err = b.publish_local_batch(c, b"big.2", &Bytes::from(data), &ends).unwrap_err();
        assert!(matches!(err, PublishError::MaxPayload { .. }));
        assert!(b.take_deliveries(c).is_empty());
    }

    #[test]
    fn display_subject_differs_from_route() {
        let mut b = broker();
        let js = b.connect_local();
        let wire = b.connect();
        b.take_output(wire);
        b.receive(wire, b"CONNECT {\"verbose\":false}\r\nSUB _INBOX.a 5\r\n");
        b.publish_local(js, b"_INBOX.a", b"orders.1", Some(b"$JS.ACK.x"), None, b"m").unwrap();
        assert_eq!(&b.take_output(wire)[..], b"MSG orders.1 5 $JS.ACK.x 1\r\nm\r\n");
    }

    #[test]
    fn no_responders_unsubscribe_and_interest() {
        let mut b = broker();
        let c = b.connect_local();
        let inbox = b.subscribe_local(c, b"_INBOX.me.*", None).unwrap();
        assert_eq!(b.publish_local(c, b"nobody", b"nobody", Some(b"_INBOX.me.1"), None, b"").unwrap(), 0);
        let d = b.take_deliveries(c);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].sub, inbox);
        assert!(d[0].headers.as_deref().unwrap().starts_with(b"NATS/1.0 503"));
        assert!(b.has_interest(b"_INBOX.me.2"));
        let q = b.subscribe_local(c, b"work", Some(b"q")).unwrap();
        assert!(b.unsubscribe_local(c, q, 1));
        b.publish_local(c, b"work", b"work", None, None, b"1").unwrap();
        b.publish_local(c, b"work", b"work", None, None, b"2").unwrap();
        assert_eq!(b.take_deliveries(c).len(), 1, "auto-unsubscribed after one");
        assert!(!b.has_interest(b"work"));
        assert!(b.unsubscribe_local(c, inbox, 0));
        assert!(!b.has_interest(b"_INBOX.me.2"));
        assert_eq!(b.subscription_count(), 0);
    }
}
