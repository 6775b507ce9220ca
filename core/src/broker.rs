//! A complete Core NATS broker on one thread, over the session, sublist and routing pieces.
//!
//! This is what runs inside a web page (where there is one thread and no sockets: in-page
//! clients are "connections" that exchange protocol bytes with it) and what deterministic tests
//! drive byte for byte. The native server distributes the same pieces over tasks instead, so
//! that publishers on different cores never wait for each other.

use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;

use crate::policy::permissions::{ConnPermissions, ConnRules};
use crate::policy::{self, Admission, Conduct, Count, SubOutcome, Unsubscribe};
use crate::proto::{write_info, write_msg, ConnectOptions, ProtocolError, ServerInfo};
use crate::route::route;
use crate::session::{Event, Session, SessionConfig};
use crate::sublist::{MatchCache, Sublist};

mod local;
pub use local::{Delivery, LocalBus, PublishError};

/// Identifies a connection to the broker.
pub type ConnId = u64;

/// Decides whether a `CONNECT` may proceed (the host's credential check), and with which
/// permissions.
pub type Authorizer = Box<dyn Fn(&ConnectOptions) -> Admission>;

pub struct BrokerConfig {
    pub session: SessionConfig,
    /// The `INFO` every connection starts with (`client_id` is filled in per connection).
    pub info: ServerInfo,
    /// Most subscriptions per connection; 0 = unlimited.
    pub max_subscriptions: usize,
    pub authorizer: Option<Authorizer>,
}

impl BrokerConfig {
    /// A broker anyone may use: no credentials, no subscription limit, the protocol's default
    /// limits; `info` is what each connection is greeted with. The page's bus is one, and so
    /// is every simulation.
    pub fn open(info: ServerInfo) -> BrokerConfig {
        BrokerConfig {
            session: SessionConfig { limits: crate::proto::Limits::default(), auth_required: false },
            info,
            max_subscriptions: 0,
            authorizer: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct SubKey {
    conn: ConnId,
    id: u64,
}

struct SubState {
    sid: Bytes,
    subject: Bytes,
    queue: Option<Bytes>,
    max: u64,
    delivered: u64,
}

struct Conn {
    session: Session,
    out: BytesMut,
    subs: HashMap<u64, SubState>,
    sids: HashMap<Bytes, u64>,
    next_sub: u64,
    conduct: Conduct,
    closed: Option<Option<ProtocolError>>,
    /// `Some` for an in-process connection (see [`Broker::connect_local`]): deliveries are
    /// queued as values instead of being written as `MSG` bytes.
    local: Option<Vec<Delivery>>,
    /// The user's permissions, when it has any: `None` costs routing nothing.
    perms: Option<Box<dyn ConnRules>>,
}

/// The broker. Feed each connection's bytes to [`Broker::receive`] and send what
/// [`Broker::take_output`] returns back to it.
pub struct Broker {
    config: BrokerConfig,
    conns: HashMap<ConnId, Conn>,
    sublist: Sublist<SubKey>,
    cache: MatchCache<SubKey>,
    rng: fastrand::Rng,
    next_conn: ConnId,
    /// The subject of the last delivery to a local connection: in-process subscribers of a
    /// repeated subject share one copy instead of an allocation per delivery.
    local_subject: Bytes,
    /// The host's clock as last given to [`Broker::set_now`] (nanoseconds since the Unix
    /// epoch), for `allow_responses` expiry.
    now: u64,
}

impl Broker {
    /// `seed` drives queue-group choices, so a test can replay them.
    pub fn new(config: BrokerConfig, seed: u64) -> Self {
        Broker {
            config,
            conns: HashMap::new(),
            sublist: Sublist::new(),
            cache: MatchCache::default(),
            rng: fastrand::Rng::with_seed(seed),
            next_conn: 1,
            local_subject: Bytes::new(),
            now: 0,
        }
    }

    /// Opens a connection; its output starts with `INFO`.
    pub fn connect(&mut self) -> ConnId {
        let id = self.add_conn();
        let mut info = self.config.info.clone();
        info.client_id = id;
        if let Some(c) = self.conns.get_mut(&id) {
            write_info(&mut c.out, &info.to_json());
        }
        id
    }

    /// A new connection before its `INFO`: in-process connections (`connect_local`) get
    /// none, so a host with only those (the page) links no `INFO` writer.
    pub(crate) fn add_conn(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                session: Session::new(self.config.session),
                out: BytesMut::new(),
                subs: HashMap::new(),
                sids: HashMap::new(),
                next_sub: 1,
                conduct: Conduct::BEFORE_CONNECT,
                closed: None,
                local: None,
                perms: None,
            },
        );
        id
    }

    /// Bytes received from connection `id`. Unknown or closed connections are ignored.
    pub fn receive(&mut self, id: ConnId, data: &[u8]) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.closed.is_some() {
            return;
        }
        conn.session.buffer_mut().extend_from_slice(data);
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let Some(ev) = conn.session.poll_event() else {
                return;
            };
            self.handle(id, ev);
        }
    }

    /// Everything queued for connection `id` since the last call.
    pub fn take_output(&mut self, id: ConnId) -> Bytes {
        self.conns.get_mut(&id).map(|c| c.out.split().freeze()).unwrap_or_default()
    }

    /// `Some(reason)` once the connection was ended by the broker (`None` inside: no error).
    /// Its remaining output should still be sent, then [`Broker::disconnect`] called.
    pub fn closed(&self, id: ConnId) -> Option<Option<&ProtocolError>> {
        self.conns.get(&id).and_then(|c| c.closed.as_ref().map(|r| r.as_ref()))
    }

    /// Forgets a connection and its subscriptions.
    pub fn disconnect(&mut self, id: ConnId) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        for (sub_id, s) in conn.subs {
            self.sublist.remove(&s.subject, s.queue.as_deref(), &SubKey { conn: id, id: sub_id });
        }
    }

    /// The time, for rules that expire (reply grants). Hosts without users need not call it.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn subscription_count(&self) -> usize {
        self.sublist.count()
    }

    /// Changes whenever a subscription is made or ends: a host that hosts a JetStream engine
    /// on this broker compares it to tell the engine that interest may have appeared
    /// (`EngineHost::interest_appeared`).
    pub fn subscription_generation(&self) -> u64 {
        self.sublist.generation()
    }

    fn push(&mut self, id: ConnId, data: &[u8]) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.out.extend_from_slice(data);
        }
    }

    fn close(&mut self, id: ConnId, reason: Option<ProtocolError>) {
        if let Some(c) = self.conns.get_mut(&id) {
            if let Some(e) = &reason {
                e.write(&mut c.out);
            }
            c.session.close();
            c.closed = Some(reason);
        }
    }

    fn handle(&mut self, id: ConnId, ev: Event) {
        match ev {
            Event::Send(b) => self.push(id, b),
            Event::Error(e) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    e.write(&mut c.out);
                }
            }
            Event::Connect(opts) => {
                let admission = match &self.config.authorizer {
                    Some(auth) => auth(&opts),
                    None => Admission::Admitted(None),
                };
                let (authorized, perms) = match admission {
                    Admission::Refused => (false, None),
                    Admission::Admitted(perms) => (true, perms),
                };
                match policy::connect(&opts, authorized) {
                    Ok(conduct) => {
                        if let Some(c) = self.conns.get_mut(&id) {
                            c.conduct = conduct;
                            c.perms = perms.map(|p| Box::new(ConnPermissions::new(p)) as Box<dyn ConnRules>);
                        }
                    }
                    Err(e) => self.close(id, Some(e)),
                }
            }
            Event::ConnectInfo => {
                let mut info = policy::connect_info(self.config.info.clone());
                info.client_id = id;
                if let Some(c) = self.conns.get_mut(&id) {
                    write_info(&mut c.out, &info.to_json());
                }
            }
            Event::Publish(p) => self.publish(id, &p.subject, p.reply.as_deref(), p.header_len, &p.message),
            Event::Subscribe { subject, queue, sid } => self.subscribe(id, subject, queue, sid),
            Event::Unsubscribe { sid, max } => self.unsubscribe(id, &sid, max),
            Event::Pong => {}
            Event::Close(e) => self.close(id, Some(e)),
        }
    }

    fn subscribe(&mut self, id: ConnId, subject: Bytes, queue: Option<Bytes>, sid: Bytes) {
        let max_subs = self.config.max_subscriptions;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if let Some(perms) = &mut c.perms {
            if let Err(e) = perms.check_subscribe(&subject, queue.as_deref()) {
                return e.write(&mut c.out);
            }
        }
        if let Some(refused) = SubOutcome::precheck(c.sids.contains_key(&sid), c.subs.len(), max_subs) {
            return refused.answer(c.conduct, &mut c.out);
        }
        let key = SubKey { conn: id, id: c.next_sub };
        if self.sublist.insert(&subject, queue.as_deref(), key).is_err() {
            return SubOutcome::InvalidSubject.answer(c.conduct, &mut c.out);
        }
        c.next_sub += 1;
        c.sids.insert(sid.clone(), key.id);
        c.subs.insert(key.id, SubState { sid, subject, queue, max: 0, delivered: 0 });
        SubOutcome::Added.answer(c.conduct, &mut c.out);
    }

    fn unsubscribe(&mut self, id: ConnId, sid: &[u8], max: Option<u64>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(&sub_id) = c.sids.get(sid) else {
            return;
        };
        if let Some(s) = c.subs.get_mut(&sub_id) {
            if let Unsubscribe::After(max) = Unsubscribe::of(max, s.delivered) {
                s.max = max;
                return;
            }
        }
        self.remove_sub(id, sub_id);
    }

    fn remove_sub(&mut self, conn: ConnId, sub_id: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(s) = c.subs.remove(&sub_id) else {
            return;
        };
        c.sids.remove(&s.sid);
        self.sublist.remove(&s.subject, s.queue.as_deref(), &SubKey { conn, id: sub_id });
    }

    fn publish(
        &mut self,
        from: ConnId,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &Bytes,
    ) {
        let now = self.now;
        if let Some(c) = self.conns.get_mut(&from) {
            if let Some(perms) = &mut c.perms {
                if let Err(e) = perms.check_publish(subject, now) {
                    return e.write(&mut c.out);
                }
            }
            policy::publish_accepted(c.conduct, &mut c.out);
        }
        self.route_msg(from, subject, subject, reply, header_len, message);
    }

    /// Routes on `subject`, shows `display` to receivers (the same subject except for
    /// in-process publishers such as JetStream deliveries). Returns the number of deliveries.
    fn route_msg(
        &mut self,
        from: ConnId,
        subject: &[u8],
        display: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &Bytes,
    ) -> usize {
        let Some(publisher) = self.conns.get(&from) else {
            return 0;
        };
        let conduct = publisher.conduct;
        let result = self.cache.lookup(&self.sublist, subject);
        let mut expired: Vec<SubKey> = Vec::new();
        let conns = &mut self.conns;
        let local_subject = &mut self.local_subject;
        let now = self.now;
        let delivered = route(&result, &mut self.rng, |key| {
            if !policy::echo_allows(conduct.echo, key.conn == from) {
                return false;
            }
            let Some(c) = conns.get_mut(&key.conn) else {
                return false;
            };
            if c.closed.is_some() {
                return false;
            }
            if c.perms.as_mut().is_some_and(|p| p.withholds(display)) {
                return false;
            }
            let Some(s) = c.subs.get_mut(&key.id) else {
                return false;
            };
            match Count::of(s.delivered + 1, s.max) {
                Count::Refuse => return false,
                Count::DeliverLast => expired.push(*key),
                Count::Deliver => {}
            }
            s.delivered += 1;
            if let Some(perms) = &mut c.perms {
                perms.delivered(reply, now);
            }
            match &mut c.local {
                None => write_msg(&mut c.out, display, &s.sid, reply, header_len, message, c.conduct.headers),
                Some(queue) => {
                    if local_subject[..] != *display {
                        *local_subject = Bytes::copy_from_slice(display);
                    }
                    queue.push(Delivery::new(key.id, local_subject.clone(), reply, header_len, message));
                }
            }
            true
        });
        for key in expired {
            self.remove_sub(key.conn, key.id);
        }
        if policy::owes_no_responders(conduct, delivered, reply) {
            if let Some(reply) = reply {
                self.no_responders(from, subject, reply);
            }
        }
        delivered
    }

    /// Tells publisher `from` that its request on `subject` reached nobody (see
    /// [`policy::no_responders_target`] for who gets it).
    fn no_responders(&mut self, from: ConnId, subject: &[u8], reply: &[u8]) {
        let matched = self.cache.lookup(&self.sublist, reply);
        let Some(key) = policy::no_responders_target(&matched, |k| k.conn == from).copied() else {
            return;
        };
        let Some(c) = self.conns.get_mut(&from) else {
            return;
        };
        let Some(s) = c.subs.get(&key.id) else {
            return;
        };
        let status = policy::no_responders_headers(subject);
        match &mut c.local {
            None => write_msg(&mut c.out, reply, &s.sid, None, Some(status.len()), &status, c.conduct.headers),
            Some(queue) => {
                queue.push(Delivery::new(key.id, Bytes::copy_from_slice(reply), None, Some(status.len()), &status))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn broker() -> Broker {
        let config = BrokerConfig::open(ServerInfo {
            server_id: "NTEST".into(),
            headers: true,
            proto: 1,
            max_payload: 1 << 20,
            ..Default::default()
        });
        Broker::new(config, 42)
    }

    const CONNECT: &[u8] =
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n";

    fn client(b: &mut Broker) -> ConnId {
        let id = b.connect();
        assert!(b.take_output(id).starts_with(b"INFO {"));
        b.receive(id, CONNECT);
        id
    }

    #[test]
    fn pub_sub_wildcards_and_order() {
        let mut b = broker();
        let c = client(&mut b);
        b.receive(c, b"SUB a.* 1\r\nSUB a.> 2\r\nPUB a.b 2\r\nhi\r\nPUB a.b.c 0\r\n\r\nPING\r\n");
        assert_eq!(&b.take_output(c)[..], b"MSG a.b 2 2\r\nhi\r\nMSG a.b 1 2\r\nhi\r\nMSG a.b.c 2 0\r\n\r\nPONG\r\n");
    }

    #[test]
    fn no_responders_and_request_reply() {
        let mut b = broker();
        let req = client(&mut b);
        let svc = client(&mut b);
        b.receive(req, b"SUB _INBOX.x.* 1\r\nPUB nobody _INBOX.x.1 0\r\n\r\n");
        assert_eq!(
            &b.take_output(req)[..],
            b"HMSG _INBOX.x.1 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n"
        );
        b.receive(svc, b"SUB svc 9\r\n");
        b.receive(req, b"PUB svc _INBOX.x.2 4\r\nping\r\n");
        assert_eq!(&b.take_output(svc)[..], b"MSG svc 9 _INBOX.x.2 4\r\nping\r\n");
        b.receive(svc, b"PUB _INBOX.x.2 4\r\npong\r\n");
        assert_eq!(&b.take_output(req)[..], b"MSG _INBOX.x.2 1 4\r\npong\r\n");
    }

    /// nats-server writes the status straight to the requester: echo does not apply (the
    /// page's link connects with `echo: false`), nobody else subscribed to the reply subject
    /// sees it, and it does not use up an auto-unsubscribe limit.
    #[test]
    fn no_responders_reach_only_the_requester_even_without_echo() {
        let mut b = broker();
        let req = b.connect();
        b.take_output(req);
        b.receive(req, b"CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true,\"echo\":false}\r\n");
        let other = client(&mut b);
        b.receive(other, b"SUB _INBOX.> 7\r\n");
        b.receive(req, b"SUB _INBOX.x.* 1\r\nUNSUB 1 1\r\nPUB nobody _INBOX.x.1 0\r\n\r\n");
        assert_eq!(
            &b.take_output(req)[..],
            b"HMSG _INBOX.x.1 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n"
        );
        b.receive(other, b"PUB _INBOX.x.2 2\r\nok\r\n");
        assert_eq!(&b.take_output(req)[..], b"MSG _INBOX.x.2 1 2\r\nok\r\n", "the 503 left UNSUB 1 1 unused");
        assert_eq!(&b.take_output(other)[..], b"MSG _INBOX.x.2 7 2\r\nok\r\n", "no 503 for a bystander");
        // a requester without a subscription on its reply subject gets nothing
        let bare = client(&mut b);
        b.receive(bare, b"PUB nobody _INBOX.y.1 0\r\n\r\nPING\r\n");
        assert_eq!(&b.take_output(bare)[..], b"PONG\r\n");
        assert_eq!(b.take_output(other).windows(3).filter(|w| w == b"503").count(), 0);
    }

    #[test]
    fn auto_unsubscribe_and_echo_off() {
        let mut b = broker();
        let c = client(&mut b);
        b.receive(c, b"SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n");
        assert_eq!(&b.take_output(c)[..], b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n");
        assert_eq!(b.subscription_count(), 0);
        let quiet = b.connect();
        b.take_output(quiet);
        b.receive(quiet, b"CONNECT {\"verbose\":false,\"echo\":false}\r\nSUB e 1\r\nPUB e 1\r\nx\r\nPING\r\n");
        assert_eq!(&b.take_output(quiet)[..], b"PONG\r\n");
    }

    #[test]
    fn queue_groups_get_one_copy_each() {
        let mut b = broker();
        let p = client(&mut b);
        let members: Vec<ConnId> = (0..3).map(|_| client(&mut b)).collect();
        for m in &members {
            b.receive(*m, b"SUB q workers 1\r\n");
        }
        let other = client(&mut b);
        b.receive(other, b"SUB q other 1\r\nSUB q 2\r\n");
        for _ in 0..30 {
            b.receive(p, b"PUB q 1\r\nx\r\n");
        }
        let total: usize = members.iter().map(|m| b.take_output(*m).windows(3).filter(|w| w == b"MSG").count()).sum();
        assert_eq!(total, 30);
        assert_eq!(b.take_output(other).windows(3).filter(|w| w == b"MSG").count(), 60);
    }

    /// The broker applies the core's permission rules (`policy::permissions`) as the server
    /// does: refusals are `-ERR`s that keep the connection, nothing is delivered.
    #[test]
    fn permissions_refuse_filter_and_grant_replies() {
        use crate::policy::permissions::{Permissions, PermissionsConfig, ResponseRule, SubjectRule};
        use alloc::string::ToString;
        use alloc::sync::Arc;
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let limited = Arc::new(
            Permissions::compile(&PermissionsConfig {
                publish: Some(SubjectRule { allow: Some(list(&["pub.>"])), deny: list(&["pub.no"]) }),
                subscribe: Some(SubjectRule { allow: None, deny: list(&["sec.secret", "q.* g1"]) }),
                response: None,
            })
            .unwrap(),
        );
        let responder = Arc::new(
            Permissions::compile(&PermissionsConfig {
                response: Some(ResponseRule::DEFAULT),
                ..PermissionsConfig::default()
            })
            .unwrap(),
        );
        let mut b = broker();
        b.config.authorizer = Some(Box::new(move |o: &ConnectOptions| match o.user.as_deref() {
            Some("limited") => Admission::Admitted(Some(limited.clone())),
            Some("svc") => Admission::Admitted(Some(responder.clone())),
            _ => Admission::Admitted(None),
        }));
        let login = |b: &mut Broker, user: &str| {
            let id = b.connect();
            b.take_output(id);
            let connect = alloc::format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"headers\":true}}\r\n");
            b.receive(id, connect.as_bytes());
            id
        };
        let free = login(&mut b, "free");
        let lim = login(&mut b, "limited");
        b.receive(lim, b"SUB sec.* 1\r\nSUB sec.secret 2\r\nSUB q.x g1 3\r\nSUB q.x g2 4\r\nPUB pub.no 1\r\nx\r\nPUB other 1\r\nx\r\nPUB pub.yes 1\r\ny\r\nPING\r\n");
        assert_eq!(
            &b.take_output(lim)[..],
            &b"-ERR 'Permissions Violation for Subscription to \"sec.secret\"'\r\n\
               -ERR 'Permissions Violation for Subscription to \"q.x\" using queue \"g1\"'\r\n\
               -ERR 'Permissions Violation for Publish to \"pub.no\"'\r\n\
               -ERR 'Permissions Violation for Publish to \"other\"'\r\n\
               PONG\r\n"[..]
        );
        b.receive(free, b"PUB sec.secret 1\r\ns\r\nPUB sec.open 1\r\no\r\n");
        assert_eq!(&b.take_output(lim)[..], b"MSG sec.open 1 1\r\no\r\n", "the denied literal is filtered out");
        let svc = login(&mut b, "svc");
        b.receive(svc, b"SUB req 1\r\n");
        b.receive(free, b"SUB _INBOX.1 9\r\nPUB req _INBOX.1 1\r\nr\r\n");
        b.take_output(svc);
        b.receive(svc, b"PUB _INBOX.1 1\r\na\r\nPUB _INBOX.1 1\r\nb\r\nPUB _INBOX.2 1\r\nc\r\n");
        assert_eq!(
            &b.take_output(svc)[..],
            &b"-ERR 'Permissions Violation for Publish to \"_INBOX.1\"'\r\n\
               -ERR 'Permissions Violation for Publish to \"_INBOX.2\"'\r\n"[..]
        );
        assert_eq!(&b.take_output(free)[..], b"MSG _INBOX.1 9 1\r\na\r\n", "one reply per request");
    }

    #[test]
    fn fatal_errors_close() {
        let mut b = broker();
        let c = client(&mut b);
        b.receive(c, b"FOO\r\n");
        assert_eq!(&b.take_output(c)[..], b"-ERR 'Unknown Protocol Operation'\r\n");
        assert!(b.closed(c).is_some());
        b.disconnect(c);
        assert_eq!(b.connection_count(), 0);
    }
}
