//! The reading half of a client connection: its protocol session, and the publisher half of
//! routing.
//!
//! Delivery is direct: the publishing connection's reader matches the subject (from its own
//! match cache, no lock on a hit), appends `MSG` lines straight into each receiver's outbound
//! buffer under that receiver's short mutex, and, once it has routed everything one read
//! brought, wakes the writers of the receivers whose buffers were empty. What a `CONNECT`,
//! `SUB` or `UNSUB` does, and who hears of a request nobody answered, is decided by the
//! core's [`edgebus_core::policy`], as in the page.

use std::any::Any;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use edgebus_core::policy::permissions::{self, PublishCheck};
use edgebus_core::policy::{self, Admission, Conduct, SubOutcome, Unsubscribe};
use edgebus_core::proto::ConnectOptions;
use edgebus_core::proto::{write_info, ProtocolError};
use edgebus_core::session::{Event, Session};
use futures_util::FutureExt;
use tokio::net::TcpStream;
use tracing::{debug, error, trace, warn};

use crate::auth::certmap::CertNames;
use crate::client::{auth_timer, ping_loop, write_loop, Client, ClientMeta, DeliveryBatch, SubRef};
use crate::perms::ReceiverPermissions;
use crate::router::Router;
use crate::server::Shared;
use crate::transport::{self, Kind, Reader};

/// Serves one accepted connection until it ends.
pub async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, kind: Kind) {
    let id = shared.next_cid.fetch_add(1, Ordering::Relaxed);
    let nonce = if shared.authenticator(kind).wants_nonce() { crate::auth::nkey::new_nonce() } else { String::new() };
    let tls = &shared.opts.tls;
    let certs = shared.certs();
    let opened = match (kind, &certs.client) {
        (Kind::Tcp, Some(config)) => {
            let info = info_bytes(&shared, kind, id, peer, &nonce);
            match transport::open_tls(stream, tls, config, &info).await {
                Ok((r, w, sent, cert)) => Ok((r, w, peer, (!sent).then_some(info), cert)),
                Err(e) => {
                    tls_failed(id, peer, &e);
                    return;
                }
            }
        }
        _ => match transport::open(
            stream,
            peer,
            kind,
            &shared.opts.websocket,
            certs.websocket.as_ref(),
            shared.limits.max_payload(),
        )
        .await
        {
            Ok((r, w, peer, true)) => {
                // `GET /leafnode` on the WebSocket port: a leaf node, as nats-server takes it
                crate::leaf::serve_ws(shared, r, w, peer).await;
                return;
            }
            opened => {
                opened.map(|(r, w, peer, _)| (r, w, peer, Some(info_bytes(&shared, kind, id, peer, &nonce)), None))
            }
        },
    };
    let (reader, writer, peer, owed_info, peer_cert) = match opened {
        Ok(parts) => parts,
        Err(e) => {
            debug!(%peer, "connection setup failed: {e}");
            return;
        }
    };
    let client = Arc::new(Client::new(id, kind, peer));
    if let Some(info) = owed_info {
        client.push(&info);
    }
    let admitted = {
        let mut clients = shared.clients.lock();
        let ok = clients.len() < shared.limits.max_connections().max(0) as usize;
        if ok {
            clients.insert(id, client.clone());
        }
        ok
    };
    if !admitted {
        client.close(Some(ProtocolError::MaxConnections));
        write_loop(client, writer, shared).await;
        return;
    }
    shared.stats.total_connections.fetch_add(1, Ordering::Relaxed);
    debug!(cid = id, %peer, ?kind, "Client connection created");

    let limits_seen = shared.limits.generation();
    let mut conn = Conn {
        limits_seen,
        session: Session::new(shared.session_config(kind)),
        publishing: Publishing {
            router: Router::new(&shared, shared.accounts.global().clone()),
            conduct: Conduct::BEFORE_CONNECT,
            perms: None,
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
        },
        shared: shared.clone(),
        client: client.clone(),
        nonce,
        cert: peer_cert
            .filter(|_| shared.opts.tls.verify_and_map)
            .and_then(|der| CertNames::from_der(&der))
            .map(Arc::new),
    };
    // The writer runs as its own task so that writing to this client and reading from it
    // proceed on different cores.
    let mut write = tokio::spawn(write_loop(client.clone(), writer, shared.clone()));
    let body = async {
        let read = conn.read_loop(reader);
        let ping = ping_loop(&client, &shared, client.kind == Kind::WebSocket);
        let auth = auth_timer(&client, &shared);
        tokio::pin!(read, ping, auth);
        tokio::select! {
            w = &mut write => w,
            _ = &mut read => write.await,
            _ = &mut ping => write.await,
            _ = &mut auth => write.await,
        }
    };
    // A panic anywhere in the connection's tasks is a bug; it must not also leave the
    // connection's subscriptions and registry entry behind, so the teardown below runs anyway.
    match AssertUnwindSafe(body).catch_unwind().await {
        Err(panic) => panicked(&shared, &client, panic.as_ref()),
        Ok(Err(e)) if e.is_panic() => panicked(&shared, &client, e.into_panic().as_ref()),
        Ok(_) => {}
    }
    // a panic in the middle of a read leaves the writers of what it delivered unwoken
    conn.publishing.router.wake_writers();
    conn.teardown();
    shared.clients.lock().remove(&id);
    debug!(cid = id, %peer, "Client connection closed");
}

/// The `INFO` line a new connection gets, with the nonce it must sign when nkeys are in use.
fn info_bytes(shared: &Shared, kind: Kind, id: u64, peer: SocketAddr, nonce: &str) -> BytesMut {
    let mut info = BytesMut::new();
    let mut fields = shared.info(kind, id, peer.ip().to_string());
    fields.nonce = nonce.to_string();
    let json = fields.to_json();
    write_info(&mut info, &json);
    info
}

/// Logs a failed TLS handshake as nats-server does: at error level, except for what probes
/// and plaintext clients cause (a first record that is not TLS, a timeout), at debug.
fn tls_failed(id: u64, peer: SocketAddr, e: &std::io::Error) {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            debug!(cid = id, %peer, "TLS handshake error: {e}")
        }
        _ => error!(cid = id, %peer, "TLS handshake error: {e}"),
    }
}

/// Logs a panic of a connection's task at error level, counts it for `/varz`, and closes the
/// connection (its writer, if it still runs, flushes and ends).
fn panicked(shared: &Shared, client: &Client, payload: &(dyn Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    error!(cid = client.id, addr = %client.addr, "connection task panicked ({what}); connection closed");
    shared.stats.connection_panics.fetch_add(1, Ordering::Relaxed);
    client.close(None);
}

/// Where processing of what a read brought stopped.
enum Step {
    /// Everything buffered was handled: read more.
    Drained,
    /// The connection must end.
    End,
    /// A `CONNECT` whose credentials need slow verification (bcrypt, Ed25519): nothing after it is
    /// processed until it is decided, off the async threads.
    Authorize(Box<ConnectOptions>),
}

/// A decided `CONNECT`: admitted or not, and into which account (`None`: `$G`).
/// An admission, the account it admits into, and the authenticator generation that decided.
type Decision = (Admission, Option<String>, u64);

/// The reader side of a connection: protocol state and the publisher half of routing.
struct Conn {
    shared: Arc<Shared>,
    client: Arc<Client>,
    session: Session,
    publishing: Publishing,
    /// The nonce this connection's `INFO` carried (empty: none was sent).
    nonce: String,
    /// The names in the client's certificate, with `verify_and_map`.
    cert: Option<Arc<CertNames>>,
    /// The generation of `shared.limits` the session's limits were taken from.
    limits_seen: u64,
}

/// What a connection's reader needs to publish. It lives beside the session, not in it, so
/// a plain `PUB` can be routed with its subject and payload read in place from the
/// session's buffer.
struct Publishing {
    router: Router,
    /// What the connection's `CONNECT` asked for.
    conduct: Conduct,
    /// The user's permissions, if it has any (`None`: publishing checks nothing).
    perms: Option<PublishCheck>,
    /// Counters gathered over one read and added to the shared ones once, so the hot path
    /// does not touch shared atomics per message.
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
}

impl Publishing {
    fn publish(
        &mut self,
        shared: &Shared,
        client: &Client,
        subject: &[u8],
        reply: Option<&[u8]>,
        header_len: Option<usize>,
        message: &[u8],
    ) {
        self.in_msgs += 1;
        self.in_bytes += message.len() as u64;
        #[cfg(test)]
        tests::panic_hook(subject);
        if let Some(check) = &mut self.perms {
            // the static rules (cached per subject), then a reply grant of `allow_responses`
            if !check.allowed(subject) && !client.perms.get().is_some_and(|p| p.take_grant(subject)) {
                error!(cid = client.id, addr = %client.addr, "Publish Violation - Subject {:?}", lossy(subject));
                let mut b = BytesMut::new();
                permissions::publish_violation(subject).write(&mut b);
                client.push(&b);
                return;
            }
        }
        if self.conduct.verbose {
            let mut ok = BytesMut::new();
            policy::publish_accepted(self.conduct, &mut ok);
            client.push(&ok);
        }
        let from = client.id;
        let delivered =
            self.router.route(shared, from, self.conduct.echo, subject, subject, reply, header_len, message);
        self.out_msgs += delivered as u64;
        self.out_bytes += (delivered * message.len()) as u64;
        if policy::owes_no_responders(self.conduct, delivered, reply) {
            if let Some(reply) = reply {
                self.router.no_responders(shared, from, subject, reply);
            }
        }
    }
}

impl Conn {
    async fn read_loop(&mut self, mut reader: Reader) {
        loop {
            match reader.read(self.session.buffer_mut()).await {
                Ok(0) | Err(_) => {
                    self.client.close(None);
                    return;
                }
                Ok(_) => {}
            }
            if self.refresh_limits() {
                reader.set_max_payload(self.shared.limits.max_payload());
            }
            let keep_going = loop {
                match self.process() {
                    Step::Drained => break true,
                    Step::End => break false,
                    Step::Authorize(opts) => {
                        let (opts, decision) = self.authorize_blocking(opts).await;
                        if !self.connect(opts, decision) {
                            break false;
                        }
                    }
                }
            };
            self.flush_stats();
            if !keep_going {
                return;
            }
            if let Some(receiver) = self.publishing.router.take_stalled() {
                receiver.wait_drained(self.publishing.router.max_pending()).await;
            }
        }
    }

    /// Takes the limits a reload put in place (one atomic load per read, not per message).
    /// Whether they changed.
    fn refresh_limits(&mut self) -> bool {
        let now = self.shared.limits.generation();
        if now == self.limits_seen {
            return false;
        }
        self.limits_seen = now;
        self.session.set_limits(self.shared.limits.parser());
        true
    }

    /// Acts on the complete operations received so far, up to a `CONNECT` that needs slow
    /// verification.
    fn process(&mut self) -> Step {
        let step = self.process_ops();
        self.publishing.router.wake_writers();
        step
    }

    /// Runs the credential check on the blocking pool (bcrypt costs milliseconds of CPU by
    /// design, a signature check tens of microseconds; on an async thread they would stall
    /// every connection sharing it).
    async fn authorize_blocking(&self, opts: Box<ConnectOptions>) -> (Box<ConnectOptions>, Decision) {
        let shared = self.shared.clone();
        let (nonce, cert, kind) = (self.nonce.clone(), self.cert.clone(), self.client.kind);
        let check = tokio::task::spawn_blocking(move || {
            let decision = decide(&shared, kind, &opts, &nonce, cert.as_deref());
            (opts, decision)
        });
        match check.await {
            Ok(decided) => decided,
            // a panic in the check is this connection's panic (see `serve`)
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => (Box::default(), (Admission::Refused, None, 0)),
        }
    }

    fn process_ops(&mut self) -> Step {
        loop {
            // The common case, a plain PUB, is routed straight out of the read buffer; a run
            // of them keeps a receiver's buffer locked from one to the next.
            {
                let _batch = DeliveryBatch::begin();
                while let Some(p) = self.session.peek_pub() {
                    let buf = self.session.peeked();
                    let reply = p.reply.clone().map(|r| &buf[r]);
                    let (subject, payload) = (&buf[p.subject.clone()], &buf[p.payload.clone()]);
                    self.publishing.publish(&self.shared, &self.client, subject, reply, None, payload);
                    self.session.consume(&p);
                }
            }
            let Some(ev) = self.session.poll_event() else {
                return Step::Drained;
            };
            match ev {
                Event::Send(bytes) => self.client.push(bytes),
                Event::Error(e) => {
                    debug!(cid = self.client.id, "sending error: {e}");
                    let mut b = BytesMut::new();
                    e.write(&mut b);
                    self.client.push(&b);
                }
                Event::Connect(opts) => {
                    let auth = self.shared.authenticator(self.client.kind);
                    if auth.is_slow() {
                        return Step::Authorize(opts);
                    }
                    let decision = decide(&self.shared, self.client.kind, &opts, &self.nonce, self.cert.as_deref());
                    if !self.connect(opts, decision) {
                        return Step::End;
                    }
                }
                Event::ConnectInfo => {
                    let info = policy::connect_info(self.shared.info(
                        self.client.kind,
                        self.client.id,
                        self.client.addr.ip().to_string(),
                    ));
                    let mut b = BytesMut::new();
                    write_info(&mut b, &info.to_json());
                    self.client.push(&b);
                }
                Event::Publish(p) => {
                    trace!(cid = self.client.id, subject = %String::from_utf8_lossy(&p.subject), "PUB");
                    self.publishing.publish(
                        &self.shared,
                        &self.client,
                        &p.subject,
                        p.reply.as_deref(),
                        p.header_len,
                        &p.message,
                    );
                }
                Event::Subscribe { subject, queue, sid } => self.subscribe(subject, queue, sid),
                Event::Unsubscribe { sid, max } => self.unsubscribe(&sid, max),
                Event::Pong => self.client.pings_out.store(0, Ordering::Relaxed),
                Event::Close(e) => {
                    match self.session.failure_report() {
                        // nats-server logs every input error at error level
                        Some(r) => error!(cid = self.client.id, addr = %self.client.addr, "{r}"),
                        None => debug!(cid = self.client.id, "closing: {e}"),
                    }
                    self.fail(e);
                    return Step::End;
                }
            }
        }
    }

    /// Applies a decided `CONNECT`; false when it was refused and the connection must end.
    fn connect(&mut self, opts: Box<ConnectOptions>, (admission, account, generation): Decision) -> bool {
        let (authorized, perms) = match admission {
            Admission::Refused => (false, None),
            Admission::Admitted(perms) => (true, perms),
        };
        // an account the server does not have must not fall back to `$G` (fail closed)
        let authorized = authorized && account.as_deref().is_none_or(|a| self.shared.accounts.named(a).is_some());
        let conduct = match policy::connect(&opts, authorized) {
            Ok(conduct) => conduct,
            Err(e) => {
                warn!(cid = self.client.id, addr = %self.client.addr, "authorization violation");
                return self.fail(e);
            }
        };
        self.publishing.conduct = conduct;
        // the account, like the permissions, is the first CONNECT's
        if !self.client.connected.load(Ordering::Relaxed) {
            // kept for a reload to check again; a reload since the decision refuses it (the
            // reload's own check may have run before this client was recorded)
            *self.client.admitted.lock() = Some(Arc::new(crate::reload::Admitted {
                opts: opts.clone(),
                nonce: self.nonce.clone(),
                cert: self.cert.clone(),
                account: account.clone(),
                rules: perms.as_ref().map(|p| p.rules().clone()),
            }));
            if generation != self.shared.auth_generation() {
                warn!(cid = self.client.id, "authorization changed by a reload during CONNECT");
                return self.fail(ProtocolError::AuthorizationViolation);
            }
            if let Some(account) = account.as_deref().and_then(|a| self.shared.accounts.named(a)) {
                self.publishing.router.set_account(account.clone());
            }
        }
        if let Some(p) = perms {
            // a second CONNECT cannot change the user: the first one's stay
            let _ = self.client.perms.set(ReceiverPermissions::new(p.clone()));
            self.publishing.perms.get_or_insert_with(|| PublishCheck::new(p));
        }
        self.client.headers.store(conduct.headers, Ordering::Relaxed);
        self.client.connected.store(true, Ordering::Relaxed);
        self.client.info_updates.store(opts.protocol >= 1, Ordering::Release);
        let opts = *opts;
        *self.client.meta.lock() = ClientMeta {
            name: opts.name.unwrap_or_default(),
            lang: opts.lang.unwrap_or_default(),
            version: opts.version.unwrap_or_default(),
        };
        true
    }

    fn fail(&mut self, e: ProtocolError) -> bool {
        self.session.close();
        self.client.close(Some(e));
        false
    }

    fn subscribe(&mut self, subject: Bytes, queue: Option<Bytes>, sid: Bytes) {
        if let Some(check) = &self.publishing.perms {
            let verdict = check.permissions().check_subscribe(&subject, queue.as_deref());
            if let Err(refusal) = verdict {
                let (s, sid) = (lossy(&subject), lossy(&sid));
                match &queue {
                    None => {
                        error!(cid = self.client.id, addr = %self.client.addr, "Subscription Violation - Subject {s:?}, SID {sid}")
                    }
                    Some(q) => {
                        error!(cid = self.client.id, addr = %self.client.addr, "Subscription Violation - Subject {s:?}, Queue: {:?}, SID {sid}", lossy(q))
                    }
                }
                let mut b = BytesMut::new();
                refusal.write(&mut b);
                self.client.push(&b);
                return;
            }
            if let (Ok(true), Some(p)) = (verdict, self.client.perms.get()) {
                p.start_filtering();
            }
        }
        let outcome = self.add_sub(subject, queue, sid);
        let mut answer = BytesMut::new();
        outcome.answer(self.publishing.conduct, &mut answer);
        if !answer.is_empty() {
            self.client.push(&answer);
        }
    }

    fn add_sub(&mut self, subject: Bytes, queue: Option<Bytes>, sid: Bytes) -> SubOutcome {
        {
            let mut subs = self.client.subs.lock();
            // Drop entries of subscriptions that expired through auto-unsubscribe now and
            // then, so a client doing SUB + UNSUB 1 per request does not grow the map forever.
            if subs.len() >= 64 && subs.len().is_power_of_two() {
                subs.retain(|_, s| !s.closed.load(Ordering::Relaxed));
            }
            let in_use = subs.get(&sid).is_some_and(|s| !s.closed.load(Ordering::Relaxed));
            let live = self.client.num_subs.load(Ordering::Relaxed) as usize;
            let max = usize::try_from(self.shared.opts.max_subscriptions.max(0)).unwrap_or(usize::MAX);
            if let Some(refused) = SubOutcome::precheck(in_use, live, max) {
                return refused;
            }
        }
        let account = self.publishing.router.account().clone();
        let sub = SubRef::new(self.client.clone(), account, &sid, &subject, queue.as_deref());
        if sub.account.insert_sub(&sub).is_err() {
            return SubOutcome::InvalidSubject;
        }
        self.client.num_subs.fetch_add(1, Ordering::Relaxed);
        self.client.subs.lock().insert(sub.sid.clone(), sub);
        SubOutcome::Added
    }

    fn unsubscribe(&mut self, sid: &[u8], max: Option<u64>) {
        let Some(sub) = self.client.subs.lock().get(sid).cloned() else {
            return;
        };
        if let Unsubscribe::After(max) = Unsubscribe::of(max, sub.delivered.load(Ordering::Acquire)) {
            sub.max.store(max, Ordering::Release);
            return;
        }
        self.client.subs.lock().remove(sid);
        if !sub.closed.swap(true, Ordering::AcqRel) {
            sub.account.remove_sub(&sub);
            self.client.num_subs.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn flush_stats(&mut self) {
        let s = &self.shared.stats;
        let p = &mut self.publishing;
        if p.in_msgs > 0 {
            s.in_msgs.fetch_add(p.in_msgs, Ordering::Relaxed);
            s.in_bytes.fetch_add(p.in_bytes, Ordering::Relaxed);
            self.client.in_msgs.fetch_add(p.in_msgs, Ordering::Relaxed);
            self.client.in_bytes.fetch_add(p.in_bytes, Ordering::Relaxed);
            p.in_msgs = 0;
            p.in_bytes = 0;
        }
        if p.out_msgs > 0 {
            s.out_msgs.fetch_add(p.out_msgs, Ordering::Relaxed);
            s.out_bytes.fetch_add(p.out_bytes, Ordering::Relaxed);
            p.out_msgs = 0;
            p.out_bytes = 0;
        }
    }

    /// Removes every subscription of the connection from the trie.
    fn teardown(&mut self) {
        let live: Vec<SubRef> = self
            .client
            .subs
            .lock()
            .drain()
            .map(|(_, s)| s)
            .filter(|s| !s.closed.swap(true, Ordering::AcqRel))
            .collect();
        if live.is_empty() {
            return;
        }
        // a connection's subscriptions are in its account's trie (any made before its
        // CONNECT moved it would be in `$G`'s)
        let account = self.publishing.router.account();
        let (here, elsewhere): (Vec<SubRef>, Vec<SubRef>) =
            live.into_iter().partition(|s| Arc::ptr_eq(&s.account, account));
        account.remove_subs(&here);
        for s in &elsewhere {
            s.account.remove_sub(s);
        }
    }
}

/// Checks a `CONNECT`'s credentials with the authenticator of its listener (bcrypt may make
/// this slow: see `authorize_blocking`).
fn decide(
    shared: &Shared,
    kind: Kind,
    opts: &ConnectOptions,
    nonce: &str,
    cert: Option<&crate::auth::certmap::CertNames>,
) -> Decision {
    // the generation first: a reload in between makes the decision look older, never newer
    let generation = shared.auth_generation();
    let auth = shared.authenticator(kind);
    let (admission, account) = auth.authorize_as(opts, nonce, cert);
    (admission, account.map(str::to_string), generation)
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
