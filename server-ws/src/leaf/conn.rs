//! One leaf link's connection, in either role: the handshake (the core's [`Solicitor`] when we
//! dialled, [`check_connect`] and the leaf port's credentials when we accepted), then the
//! peer's interest (`LS+`/`LS-` become subscriptions of the link's connection), its messages
//! (routed locally, never back), keepalive, and the teardown that takes its interest away.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use edgebus_core::leaf::{
    check_connect, is_own_loop, js_denied, lds_subject, LeafConnect, LeafInfo, LeafOp, LeafViolation, LinkPermissions,
    Remote, RemoteChange, Remotes, SolicitStep, Solicitor,
};
use edgebus_core::policy::permissions::PermissionsConfig;
use edgebus_core::policy::Admission;
use edgebus_core::proto::ConnectOptions;
use edgebus_core::proto::{write_connect, write_info, LeafOpParser, Limits, PONG};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::link::{LeafLink, PeerMeta};
use crate::accounts::Account;
use crate::client::{ping_loop, write_loop, Client, SubRef};
use crate::perms::LeafPermissions;
use crate::router::Router;
use crate::server::Shared;
use crate::transport::{Kind, Reader, Writer};

/// How long a peer has to finish the handshake (nats-server's "Stale Leaf Node Connection"
/// for a hub that owes its connect-info `INFO`).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Which side of the link we are.
pub(crate) enum Role<'a> {
    /// We dialled; `remotes` learns the hub's gossiped URLs. `opening` is the hub's first
    /// `INFO` and what followed it, when they were read before the connection started (to
    /// learn whether the hub requires TLS).
    /// `seed` signs the hub's nonce when the `CONNECT` carries a user JWT.
    Solicit {
        solicitor: Box<Solicitor>,
        remotes: &'a mut Remotes,
        opening: Option<(Bytes, BytesMut)>,
        seed: Option<String>,
        /// Turns true when a reload removes the remote: the link is closed.
        stop: watch::Receiver<bool>,
    },
    /// The peer dialled our leaf port.
    Accept(Greeting),
}

/// The accepting side's first words on one connection, made before the connection starts
/// because with TLS the `INFO` goes out in plaintext before the handshake.
pub(crate) struct Greeting {
    pub id: u64,
    pub nonce: String,
    /// The `INFO` line went out already.
    pub sent: bool,
}

impl Greeting {
    pub(crate) fn new(shared: &Shared) -> Greeting {
        let id = shared.next_cid.fetch_add(1, Ordering::Relaxed);
        Greeting { id, nonce: crate::auth::nkey::new_nonce(), sent: false }
    }

    /// The leaf port's `INFO` line for this connection.
    pub(crate) fn info(&self, shared: &Shared) -> BytesMut {
        let port = shared.leaf_addr.lock().map_or(0, |a| a.port());
        let host = shared.leaf_addr.lock().map_or_else(|| "127.0.0.1".to_string(), |a| a.ip().to_string());
        let leaf = &shared.opts.leafnodes;
        let info = LeafInfo {
            server_id: shared.server_id.clone(),
            server_name: shared.server_name.clone(),
            version: edgebus_core::NATS_VERSION.into(),
            proto: 1,
            host: host.clone(),
            port,
            headers: true,
            auth_required: leaf.own_authorization() || shared.authenticator(Kind::Tcp).info_auth_required(),
            tls_required: leaf.tls.enabled,
            max_payload: shared.limits.max_payload().into(),
            client_id: self.id,
            nonce: self.nonce.clone(),
            compression: Some("off".into()),
            // the connect-info INFO follows the CONNECT, with the user's permissions
            info_on_connect: true,
            leafnode_urls: Some(leaf.gossiped_urls(format!("{host}:{port}"))),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        write_info(&mut out, &serde_json::to_vec(&info).unwrap_or_default());
        out
    }
}

/// The parser of a leaf connection, with the server's limits.
pub(crate) fn parser(shared: &Shared) -> LeafOpParser {
    LeafOpParser::new(Limits {
        max_control_line: usize::try_from(shared.limits.max_control_line()).unwrap_or(4096).max(4096),
        max_payload: usize::try_from(shared.limits.max_payload()).unwrap_or(1 << 20),
    })
}

/// How a link ended.
pub(crate) struct Ended {
    /// The handshake completed (the next dial starts a fresh round).
    pub ready: bool,
    pub reason: String,
}

struct Conn<'a> {
    shared: Arc<Shared>,
    client: Arc<Client>,
    account: Arc<Account>,
    role: Role<'a>,
    parser: LeafOpParser,
    router: Router,
    link: Option<Arc<LeafLink>>,
    remote: Remote,
    subs: HashMap<(Bytes, Option<Bytes>), SubRef>,
    lds: String,
    peer: PeerMeta,
    /// The link's permissions, read once per batch of input (and again after an operation
    /// that may change them) rather than per message.
    perms: Option<Arc<LeafPermissions>>,
    /// Messages and bytes received since the counters were last added to the link's and
    /// the server's (once per batch of input: each is an atomic add on a shared line).
    in_msgs: u64,
    in_bytes: u64,
}

/// Runs one leaf connection until it ends.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut reader: Reader,
    writer: Writer,
    addr: SocketAddr,
    role: Role<'_>,
    account: Arc<Account>,
) -> Ended {
    let (id, owed_info) = match &role {
        Role::Accept(g) => (g.id, (!g.sent).then(|| g.info(&shared))),
        Role::Solicit { .. } => (shared.next_cid.fetch_add(1, Ordering::Relaxed), None),
    };
    let client = Arc::new(Client::new(id, Kind::Tcp, addr));
    let _ = client.leaf.set(matches!(role, Role::Solicit { .. }));
    let mut stop = match &role {
        Role::Solicit { stop, .. } => Some(stop.clone()),
        Role::Accept(_) => None,
    };
    let mut parser = parser(&shared);
    let mut first = None;
    let mut role = role;
    if let Role::Solicit { opening: Some((info, rest)), .. } = &mut role {
        parser.extend(rest);
        first = Some(LeafOp::Info(info.clone()));
    }
    let mut conn = Conn {
        router: Router::new(&shared, account.clone()),
        parser,
        shared: shared.clone(),
        client: client.clone(),
        account,
        role,
        link: None,
        remote: Remote::default(),
        subs: HashMap::new(),
        lds: lds_subject(&mut fastrand::Rng::new()),
        peer: PeerMeta::default(),
        perms: None,
        in_msgs: 0,
        in_bytes: 0,
    };
    if let Some(info) = owed_info {
        conn.client.push(&info);
    }
    let websocket = reader.is_websocket();
    let mut write = tokio::spawn(write_loop(client.clone(), writer, shared.clone()));
    let mut reason = String::new();
    let mut was_removed = false;
    {
        let read = conn.read_loop(&mut reader, &mut reason, first);
        let ping = async {
            // keepalive starts once the link is up
            while !client.connected.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ping_loop(&client, &shared, websocket).await
        };
        let removed = async {
            // a dropped sender is the server going away, not a removal
            let removed = match stop.as_mut() {
                Some(s) => s.wait_for(|s| *s).await.is_ok(),
                None => false,
            };
            if !removed {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(read, ping, removed);
        tokio::select! {
            _ = &mut write => {}
            _ = &mut read => { let _ = (&mut write).await; }
            _ = &mut ping => { let _ = (&mut write).await; }
            _ = &mut removed => {
                was_removed = true;
                client.close(None);
                let _ = (&mut write).await;
            }
        }
    }
    if was_removed {
        reason = "removed by a configuration reload".into();
    }
    let ready = conn.link.is_some();
    conn.teardown();
    Ended { ready, reason }
}

/// A message from the peer, borrowed from wherever it was read.
struct Incoming<'a> {
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    /// The queue groups on this side it is for (plain subscribers get it anyway).
    queues: &'a [Bytes],
    header_len: Option<usize>,
    message: &'a [u8],
}

/// A message from the peer of an established link, whichever way it was read. Routed unless
/// the JetStream API or the link's permissions keep it out; `true` when it counts as
/// received, `Err` when the peer broke its permissions.
fn on_msg(
    router: &mut Router,
    shared: &Shared,
    client: &Client,
    perms: Option<&LeafPermissions>,
    m: Incoming<'_>,
) -> Result<bool, LeafViolation> {
    if js_denied(m.subject) || !perms.map_or(Ok(true), |p| p.admit(m.subject))? {
        return Ok(false);
    }
    router.route_from_leaf(shared, client.id, m.subject, m.reply, m.queues, m.header_len, m.message);
    Ok(true)
}

impl Conn<'_> {
    async fn read_loop(&mut self, reader: &mut Reader, reason: &mut String, first: Option<LeafOp>) {
        self.perms = self.client.leaf_perms();
        if let Some(op) = first {
            if let Err(why) = self.handle(op).await {
                *reason = why;
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            let read = if self.link.is_none() {
                match tokio::time::timeout_at(deadline, reader.read(self.parser.buffer_mut())).await {
                    Ok(r) => r,
                    Err(_) => {
                        *reason = "Stale Leaf Node Connection - Closing".into();
                        self.close_with("Stale Leaf Node Connection - Closing");
                        return;
                    }
                }
            } else {
                reader.read(self.parser.buffer_mut()).await
            };
            match read {
                Ok(0) | Err(_) => {
                    if reason.is_empty() {
                        *reason = "Client Closed".into();
                    }
                    self.client.close(None);
                    return;
                }
                Ok(_) => {}
            }
            self.perms = self.client.leaf_perms();
            loop {
                // a plain LMSG, the bulk of a hub's traffic, is routed where it lies in the
                // read buffer (no reference-counted slices, no op built)
                if let (Some(span), true) = (self.parser.peek_lmsg(), self.link.is_some()) {
                    let b = self.parser.peeked();
                    let reply = span.reply.clone().map(|r| &b[r]);
                    let (subject, message) = (&b[span.subject.clone()], &b[span.payload.clone()]);
                    let done = on_msg(
                        &mut self.router,
                        &self.shared,
                        &self.client,
                        self.perms.as_deref(),
                        Incoming { subject, reply, queues: &[], header_len: None, message },
                    );
                    let len = message.len() as u64;
                    self.parser.consume(&span);
                    match done {
                        Ok(true) => {
                            self.in_msgs += 1;
                            self.in_bytes += len;
                        }
                        Ok(false) => {}
                        Err(v) => {
                            *reason = self.violation(&v).err().unwrap_or_default();
                            self.flush_stats();
                            self.router.wake_writers();
                            return;
                        }
                    }
                    continue;
                }
                match self.parser.poll_op() {
                    Ok(Some(op)) => {
                        let other = !matches!(op, LeafOp::Msg(_));
                        if let Err(why) = self.handle(op).await {
                            *reason = why;
                            self.flush_stats();
                            self.router.wake_writers();
                            return;
                        }
                        if other {
                            self.perms = self.client.leaf_perms();
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        *reason =
                            self.parser.error_report().map_or_else(|| format!("parse error: {e:?}"), str::to_string);
                        self.close_with("Unknown Protocol Operation");
                        return;
                    }
                }
            }
            self.flush_stats();
            self.router.wake_writers();
            if let Some(c) = self.router.take_stalled() {
                c.wait_drained(self.router.max_pending()).await;
            }
        }
    }

    fn close_with(&self, text: &str) {
        self.client.push(format!("-ERR '{text}'\r\n").as_bytes());
        self.client.close(None);
    }

    fn refuse(&self, text: &str) -> Result<(), String> {
        self.close_with(text);
        Err(text.to_string())
    }

    async fn handle(&mut self, op: LeafOp) -> Result<(), String> {
        match op {
            LeafOp::Ping => self.client.push(PONG),
            LeafOp::Pong => self.client.pings_out.store(0, Ordering::Relaxed),
            LeafOp::Ok => {}
            LeafOp::Err(text) => {
                let text = String::from_utf8_lossy(&text).into_owned();
                warn!(cid = self.client.id, "leafnode error from peer: {text}");
                self.client.close(None);
                return Err(text);
            }
            LeafOp::Info(json) => return self.on_info(&json),
            LeafOp::Connect(json) => return self.on_connect(&json).await,
            _ if self.link.is_none() => return self.refuse("Authorization Violation"),
            LeafOp::Sub { subject, queue } => {
                if is_own_loop(self.lds.as_bytes(), &subject) {
                    let text = format!("Loop detected for leafnode account={:?}", self.account.name);
                    warn!(cid = self.client.id, "{text}");
                    return self.refuse(&text);
                }
                if js_denied(&subject) {
                    return Ok(());
                }
                match self.client.leaf_perms().map_or(Ok(true), |p| p.interest(&subject)) {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(violation) => return self.violation(&violation),
                }
                if self.remote.add(&subject, queue.as_ref().map(|(q, w)| (q, *w))) == RemoteChange::New {
                    let q = queue.map(|(q, _)| q);
                    let mut sid = subject.to_vec();
                    if let Some(q) = &q {
                        sid.push(b' ');
                        sid.extend_from_slice(q);
                    }
                    let sub = SubRef::new(self.client.clone(), self.account.clone(), &sid, &subject, q.as_deref());
                    if self.account.insert_sub(&sub).is_ok() {
                        self.client.subs.lock().insert(sub.sid.clone(), sub.clone());
                        self.subs.insert((subject, q), sub);
                        self.count_subs();
                    } else {
                        self.remote.remove(&sub.subject, sub.queue.as_ref());
                    }
                }
            }
            LeafOp::Unsub { subject, queue } => {
                if self.remote.remove(&subject, queue.as_ref()) == RemoteChange::Gone {
                    if let Some(sub) = self.subs.remove(&(subject, queue)) {
                        sub.closed.store(true, Ordering::Release);
                        self.client.subs.lock().remove(&sub.sid);
                        self.account.remove_sub(&sub);
                        self.count_subs();
                    }
                }
            }
            LeafOp::Msg(m) => {
                let incoming = Incoming {
                    subject: &m.subject,
                    reply: m.reply.as_deref(),
                    queues: &m.queues,
                    header_len: m.header_len,
                    message: &m.message,
                };
                match on_msg(&mut self.router, &self.shared, &self.client, self.perms.as_deref(), incoming) {
                    Ok(true) => {
                        self.in_msgs += 1;
                        self.in_bytes += m.message.len() as u64;
                    }
                    Ok(false) => {}
                    Err(violation) => return self.violation(&violation),
                }
            }
        }
        Ok(())
    }

    /// Adds the messages received since the last call to the link's and the server's
    /// counters.
    fn flush_stats(&mut self) {
        if self.in_msgs == 0 {
            return;
        }
        if let Some(l) = &self.link {
            l.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            l.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
        }
        self.shared.stats.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
        self.shared.stats.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
        (self.in_msgs, self.in_bytes) = (0, 0);
    }

    /// The peer broke its permissions: nats-server's `-ERR`, and the link closes.
    fn violation(&self, v: &LeafViolation) -> Result<(), String> {
        let text = v.text();
        warn!(cid = self.client.id, "leafnode {text} - Check other side configuration");
        self.refuse(&text)
    }

    fn count_subs(&self) {
        if let Some(l) = &self.link {
            l.remote_subs.store(self.subs.len() as u64, Ordering::Relaxed);
        }
    }

    fn on_info(&mut self, json: &[u8]) -> Result<(), String> {
        let Role::Solicit { solicitor, remotes, seed, .. } = &mut self.role else {
            // an accepted leaf's INFO (compression negotiation, which we never do): ignore
            return Ok(());
        };
        let Ok(info) = serde_json::from_slice::<LeafInfo>(json) else {
            return self.refuse("Invalid Leafnode INFO");
        };
        if let Some(urls) = &info.leafnode_urls {
            remotes.gossip(urls);
        }
        // any INFO that carries permissions replaces what an earlier one said, as
        // nats-server's soliciting side takes them; one without leaves them as they are
        match LinkPermissions::solicited(&info.import, &info.export) {
            Ok(Some(perms)) => self.client.set_leaf_perms(Some(LeafPermissions::new(perms))),
            Ok(None) => {}
            Err(e) => return self.refuse(&format!("Invalid Leafnode INFO permissions: {e}")),
        }
        if self.peer.server_id.is_empty() {
            self.peer = PeerMeta {
                name: info.server_name.clone(),
                server_id: info.server_id.clone(),
                remote_account: self.account.name.clone(),
            };
        }
        if solicitor.needs_signature() && !solicitor.is_ready() {
            let Some(sig) = crate::auth::nkey::sign_nonce(seed.as_deref().unwrap_or_default(), &info.nonce) else {
                return self.refuse("cannot sign the hub's nonce with the credentials' seed");
            };
            solicitor.sign(sig);
        }
        match solicitor.on_info(&info) {
            Ok(SolicitStep::Connect { json, ready }) => {
                let mut out = BytesMut::new();
                write_connect(&mut out, &json);
                self.client.push(&out);
                if ready {
                    self.go_ready();
                }
            }
            Ok(SolicitStep::Ready) => self.go_ready(),
            Ok(SolicitStep::Update) => {}
            Err(refusal) => return self.refuse(refusal.text()),
        }
        Ok(())
    }

    /// An accepted leaf's `CONNECT`. The operations that followed it wait in the parser
    /// until its credentials are decided.
    async fn on_connect(&mut self, json: &[u8]) -> Result<(), String> {
        if !matches!(self.role, Role::Accept(_)) || self.link.is_some() {
            return Ok(());
        }
        let c = match check_connect(json, None) {
            Ok(c) => c,
            Err(refusal) => return self.refuse(refusal.text()),
        };
        let Role::Accept(greeting) = &self.role else { return Ok(()) };
        let (id, nonce) = (greeting.id, greeting.nonce.clone());
        let (shared, client) = (self.shared.clone(), self.client.clone());
        // bcrypt costs milliseconds of CPU by design: off the async threads, as a client's
        let check = tokio::task::spawn_blocking(move || {
            let verdict = authenticate(&shared, &client, &c, &nonce);
            (c, verdict)
        });
        let (c, verdict) = match check.await {
            Ok(decided) => decided,
            // a panic in the check is this connection's panic
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return self.refuse("Authorization Violation"),
        };
        let Some((account, rules)) = verdict else {
            warn!(cid = self.client.id, "leafnode Authorization Violation");
            return self.refuse("Authorization Violation");
        };
        let account = account.or_else(|| self.shared.opts.leafnodes.account.clone()).unwrap_or_else(|| "$G".into());
        let Some(account) = self.shared.accounts.named(&account).cloned() else {
            warn!(cid = self.client.id, "leafnode account {account:?} not found");
            return self.refuse("Authorization Violation");
        };
        if !Arc::ptr_eq(&account, &self.account) {
            self.router = Router::new(&self.shared, account.clone());
            self.account = account;
        }
        if let Some(rules) = rules {
            match LinkPermissions::accepted(&rules) {
                Ok(perms) => self.client.set_leaf_perms(Some(LeafPermissions::new(perms))),
                Err(e) => return self.refuse(&format!("Invalid Leafnode permissions: {e}")),
            }
        }
        self.connect_info(id);
        self.client.headers.store(c.headers, Ordering::Relaxed);
        self.peer = PeerMeta { name: c.name.clone(), server_id: c.server_id.clone(), remote_account: c.remote_account };
        self.go_ready();
        Ok(())
    }

    /// nats-server's connect-info `INFO` after an accepted `CONNECT`: the account the leaf is
    /// bound to and its permissions (`import`/`export`), which the leaf enforces too.
    fn connect_info(&self, id: u64) {
        let (import, export) = self.client.leaf_perms().map(|p| p.info()).unwrap_or_default();
        let info = LeafInfo {
            server_id: self.shared.server_id.clone(),
            server_name: self.shared.server_name.clone(),
            version: edgebus_core::NATS_VERSION.into(),
            proto: 1,
            headers: true,
            max_payload: self.shared.limits.max_payload().into(),
            client_id: id,
            connect_info: true,
            remote_account: self.account.name.clone(),
            import,
            export,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        write_info(&mut out, &serde_json::to_vec(&info).unwrap_or_default());
        self.client.push(&out);
    }

    /// The handshake is done: announce our interest and our loop-detection subject, and
    /// start hearing of changes.
    fn go_ready(&mut self) {
        if self.link.is_some() {
            return;
        }
        if matches!(self.role, Role::Solicit { .. }) {
            // a hub announces headers in INFO; nats-server hubs always support them
            self.client.headers.store(true, Ordering::Relaxed);
        }
        let solicited = matches!(self.role, Role::Solicit { .. });
        let link = Arc::new(LeafLink::new(self.client.clone(), self.account.clone(), solicited, self.peer.clone()));
        self.client.push(format!("LS+ {}\r\n", self.lds).as_bytes());
        self.account.attach_leaf(&link);
        self.client.connected.store(true, Ordering::Relaxed);
        self.shared.leafs.lock().insert(self.client.id, link.clone());
        self.shared.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        info!(cid = self.client.id, peer = %self.peer.name, solicited, "Leafnode connection created");
        self.link = Some(link);
    }

    fn teardown(&mut self) {
        if let Some(link) = self.link.take() {
            self.account.detach_leaf(&link);
            self.shared.leafs.lock().remove(&self.client.id);
            info!(cid = self.client.id, peer = %self.peer.name, "Leafnode connection closed");
        }
        // emptying the connection's map breaks the Sub → Client cycle
        self.client.subs.lock().clear();
        let subs: Vec<SubRef> = self.subs.drain().map(|(_, s)| s).collect();
        for s in &subs {
            s.closed.store(true, Ordering::Release);
        }
        self.account.remove_subs(&subs);
        self.remote.clear();
        debug!(cid = self.client.id, "leaf connection ended");
    }
}

/// Who a leaf `CONNECT` authenticates as, in nats-server's order (`isLeafNodeAuthorized`):
/// the leaf port's single user, its nkey, its users, its token; with none of them, the
/// client port's authorization (users with their permissions and accounts, nkey users, JWT
/// users). Gives the account (`None`: the leaf port's) and the user's permission rules; a
/// link admitted by the client port's authorization is recorded for a reload to check again.
fn authenticate(
    shared: &Shared,
    client: &Client,
    c: &LeafConnect,
    nonce: &str,
) -> Option<(Option<String>, Option<PermissionsConfig>)> {
    use crate::auth::check_secret;
    let leaf = &shared.opts.leafnodes;
    let given = |s: &Option<String>| s.clone().unwrap_or_default();
    if let Some(user) = &leaf.user {
        let ok = c.user.as_deref() == Some(user.as_str())
            && check_secret(leaf.pass.as_deref().unwrap_or_default(), &given(&c.pass));
        return ok.then_some((None, None));
    }
    if let Some(key) = &leaf.nkey {
        let ok = c.nkey.as_deref() == Some(key.as_str())
            && c.sig.as_deref().is_some_and(|sig| crate::auth::nkey::verify_signature(key, sig, nonce));
        return ok.then_some((None, None));
    }
    if !leaf.users.is_empty() {
        let u = leaf.users.iter().find(|u| c.user.as_deref() == Some(u.username.as_str()))?;
        return check_secret(&u.password, &given(&c.pass)).then(|| (u.account.clone(), None));
    }
    if let Some(token) = &leaf.token {
        return check_secret(token, &given(&c.auth_token)).then_some((None, None));
    }
    let opts = ConnectOptions {
        user: c.user.clone(),
        pass: c.pass.clone(),
        auth_token: c.auth_token.clone(),
        nkey: c.nkey.clone(),
        sig: c.sig.clone(),
        jwt: c.jwt.clone(),
        ..ConnectOptions::default()
    };
    match shared.authenticator(Kind::Tcp).authorize_as(&opts, nonce, None) {
        (Admission::Admitted(perms), account) => {
            let account = account.map(str::to_string);
            let rules = perms.map(|p| p.rules().clone());
            // a reload checks the link again as it checks clients (`reload::recheck`)
            let admitted = crate::reload::Admitted {
                opts: Box::new(opts),
                nonce: nonce.to_string(),
                cert: None,
                account: account.clone(),
                rules: rules.clone(),
            };
            *client.admitted.lock() = Some(Arc::new(admitted));
            Some((account, rules))
        }
        (Admission::Refused, _) => None,
    }
}
