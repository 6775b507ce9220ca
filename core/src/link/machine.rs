//! The link's state machine: attempts, the handshake, keepalive, the outbox on the wire.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

use super::interest::Subs;
use super::{Backoff, BadSubject, LinkConfig, LinkError, Outbox, OutboxCommit, Schedule};
use crate::json::Reader;
use crate::proto::{write_connect, write_pub, Limits, ServerOp, ServerOpParser, PING, PONG};

const MS: u64 = 1_000_000;

/// A message crossing the link, in either direction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Msg {
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    /// The raw header block, if the message has one.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
    /// From the server: the subject to route it on locally when that is not `subject`: the
    /// literal subject of the subscription it came for (a JetStream delivery comes under
    /// the stream's subject for a subscription on the deliver subject).
    pub route: Option<Bytes>,
}

/// Where the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not started yet, or stopped by a dial error that retrying cannot fix (a bad URL).
    Idle,
    /// A socket is being opened, or the handshake has not finished.
    Connecting,
    Connected,
    /// No socket: waiting for the next attempt.
    Reconnecting,
    /// [`Link::close`] was called: nothing happens any more.
    Closed,
}

impl LinkState {
    /// The name the page's `linkInfo().state` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Idle => "disconnected",
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Reconnecting => "reconnecting",
            LinkState::Closed => "closed",
        }
    }
}

/// What the host must act on, from [`Link::poll_event`].
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Open a socket to the server now; report it with `handle_open` / `handle_data` /
    /// `handle_close`, or `handle_dial_error` if it cannot even be tried.
    Dial,
    /// Drop the current socket without waiting for it to close (a silent server never
    /// closes it); nothing more from it may be handed in.
    Hangup,
    /// The handshake finished: the server accepted `CONNECT` and the subscriptions.
    Connected { server: String },
    /// The connection is gone (reported once per outage, with the reason known so far).
    Disconnected { error: Option<LinkError> },
    /// The next attempt is due in `delay_ms` (the host needs no timer of its own: it is
    /// [`Link::poll_timeout`]).
    Reconnecting { delay_ms: u32, attempt: u32 },
    /// The link was closed.
    Closed,
    /// `-ERR` from the server (it usually closes the connection next).
    ServerError(String),
    /// A message from the server (an import, a reply to a local request, or a request to a
    /// local subscriber): publish it on the local side.
    Deliver(Msg),
    /// Write this to the outbox's storage, then call [`Link::handle_persisted`]; the next
    /// commit waits for that, so entries confirmed meanwhile are never written.
    Persist(OutboxCommit),
    /// The server confirmed the outbox up to entry `upto`; `remaining` are left.
    Confirmed { upto: u64, remaining: usize },
    /// An exported publish larger than the server's `max_payload`: the server would close
    /// the connection over it, so it is never sent, never confirmed, and leaves the outbox
    /// (or never enters it) with this event as its only trace.
    Rejected { subject: Bytes, size: usize, max: usize },
}

/// Consecutive authentication failures after which the link stops retrying: nats.js's rule
/// (the same auth error twice in a row aborts reconnecting, since credentials do not fix
/// themselves).
pub const MAX_AUTH_FAILURES: u32 = 2;

/// Whether a server's `-ERR` says the credentials were refused: the texts nats.js takes for
/// an authorization error (`Authorization Violation`, `User/Account Authentication Expired`);
/// an `Authentication Timeout` is a slow handshake, not bad credentials.
fn is_auth_error(text: &str) -> bool {
    // a plain window scan: `str::contains` links a two-way searcher (2 KB of the page's module)
    let has = |needle: &[u8]| text.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
    has(b"authorization violation") || has(b"authentication expired")
}

/// Counters of the link's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages written to the server / received from it.
    pub sent: u64,
    pub received: u64,
    /// Attempts scheduled after a failure or a drop.
    pub reconnects: u64,
}

/// What a `PONG` answers: pings are answered in order.
enum PingMark {
    Handshake,
    /// Confirms outbox entries up to this sequence.
    Outbox(u64),
    Keepalive,
}

/// The part of the server's `INFO` the link uses (any other field is ignored).
#[derive(Default)]
struct Greeting {
    server_id: String,
    server_name: String,
    max_payload: Option<u64>,
}

impl Greeting {
    /// What the fields it knows hold; a field of another type, or text that is not a JSON
    /// object, leaves every field unset.
    fn read(json: &[u8]) -> Self {
        let text = String::from_utf8_lossy(json);
        let mut g = Greeting::default();
        let mut r = Reader::new(&text);
        let read = r.object(|r, key| {
            match key {
                "server_id" => g.server_id = r.string_value()?,
                "server_name" => g.server_name = r.string_value()?,
                "max_payload" => g.max_payload = if r.null()? { None } else { Some(r.u64_value()?) },
                _ => r.skip()?,
            }
            Ok(())
        });
        match read.and_then(|()| r.end()) {
            Ok(()) => g,
            Err(_) => Greeting::default(),
        }
    }
}

/// The client side of the NATS protocol for one link; see the module doc for the call order.
pub struct Link {
    config: LinkConfig,
    schedule: Schedule,
    outbox: Outbox,
    state: LinkState,
    parser: ServerOpParser,
    out: BytesMut,
    events: VecDeque<Event>,
    pings: VecDeque<PingMark>,
    /// The server's `max_payload` from its `INFO`; `None` until a server has greeted.
    max_payload: Option<usize>,
    server: String,
    /// Attempts in a row the server refused for authentication; reset once connected.
    auth_failures: u32,
    /// Keepalive pings sent since the server last answered any `PING`.
    unanswered: u32,
    backoff: Backoff,
    rng: fastrand::Rng,
    /// Connecting: the attempt is abandoned then; connected: the next keepalive ping;
    /// reconnecting: the next attempt.
    deadline: Option<u64>,
    /// Whether `Disconnected` was reported since the last `Connected`.
    down_reported: bool,
    last_error: Option<LinkError>,
    /// A `Persist` is out and not yet written.
    persisting: bool,
    /// The subscriptions on the other side.
    subs: Subs,
    /// Whether `CONNECT` and the subscriptions went out on the current connection.
    greeted: bool,
    stats: Stats,
}

impl Link {
    /// A link over `outbox` (what storage still held). `seed` drives the backoff jitter, so a
    /// test can replay a schedule. Nothing happens before [`Link::connect`].
    pub fn new(config: LinkConfig, schedule: Schedule, outbox: Outbox, seed: u64) -> Result<Link, BadSubject> {
        config.validate()?;
        let schedule = Schedule {
            ping_interval_ms: schedule.ping_interval_ms.max(1),
            connect_timeout_ms: schedule.connect_timeout_ms.max(1),
            ..schedule
        };
        Ok(Link {
            subs: Subs::new(config.interest()),
            greeted: false,
            backoff: Backoff::new(schedule.reconnect_min_ms, schedule.reconnect_max_ms),
            config,
            schedule,
            outbox,
            state: LinkState::Idle,
            parser: ServerOpParser::new(Self::limits()),
            out: BytesMut::new(),
            events: VecDeque::new(),
            pings: VecDeque::new(),
            max_payload: None,
            server: String::new(),
            auth_failures: 0,
            unanswered: 0,
            rng: fastrand::Rng::with_seed(seed),
            deadline: None,
            down_reported: false,
            last_error: None,
            persisting: false,
            stats: Stats::default(),
        })
    }

    fn limits() -> Limits {
        // What a server sends is bounded by its own limits; accept big lines and payloads.
        Limits { max_control_line: 64 * 1024, max_payload: 64 << 20 }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// The server's name (or id) from its `INFO`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Why the link is (or last went) down; cleared once connected.
    pub fn last_error(&self) -> Option<&LinkError> {
        self.last_error.as_ref()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Whether every outbox change so far is written (no `Persist` due or being written).
    pub fn is_persisted(&self) -> bool {
        !self.persisting && !self.outbox.commit_pending()
    }

    // ---- user commands ----------------------------------------------------------------

    /// Starts the first attempt now (or the next one, cutting a backoff wait short).
    pub fn connect(&mut self, now: u64) {
        if matches!(self.state, LinkState::Idle | LinkState::Reconnecting) {
            self.dial(now);
        }
    }

    /// Ends the link for good. The outbox keeps what was not confirmed (a durable one has it
    /// stored, or gets it with the next `Persist`).
    pub fn close(&mut self, _now: u64) {
        if self.state == LinkState::Closed {
            return;
        }
        if matches!(self.state, LinkState::Connecting | LinkState::Connected) {
            self.events.push_back(Event::Hangup);
        }
        self.reset_session();
        self.state = LinkState::Closed;
        self.deadline = None;
        self.events.push_back(Event::Closed);
    }

    // ---- the socket -------------------------------------------------------------------

    /// The socket is open. Nothing is written before the server's `INFO`, so this only
    /// marks the attempt; the handshake deadline runs from [`Event::Dial`] either way.
    pub fn handle_open(&mut self, _now: u64) {}

    /// Bytes from the socket. A stream that does not parse ends the connection
    /// ([`Event::Hangup`]) and schedules the next attempt.
    pub fn handle_data(&mut self, now: u64, data: &[u8]) {
        if !matches!(self.state, LinkState::Connecting | LinkState::Connected) {
            return;
        }
        self.parser.extend(data);
        loop {
            let op = match self.parser.poll_op() {
                Ok(Some(op)) => op,
                Ok(None) => break,
                Err(e) => {
                    self.abandon(now, LinkError::Protocol(e));
                    return;
                }
            };
            match op {
                ServerOp::Info(json) => self.on_info(&json),
                ServerOp::Ping => self.out.extend_from_slice(PONG),
                ServerOp::Pong => self.on_pong(now),
                ServerOp::Ok => {}
                ServerOp::Err(text) => {
                    let text = String::from_utf8_lossy(&text).into_owned();
                    if is_auth_error(&text) {
                        self.auth_failures += 1;
                    }
                    self.last_error = Some(LinkError::Server(text.clone()));
                    self.events.push_back(Event::ServerError(text));
                }
                ServerOp::Msg(m) => {
                    let route = self.subs.route(&m.sid, &m.subject);
                    if self.config.skip_consumer_deliveries
                        && route.is_none()
                        && m.reply.as_deref().is_some_and(|r| r.starts_with(crate::proto::ACK_PREFIX))
                    {
                        continue;
                    }
                    if self.subs.is_copy(&m.sid, route.as_deref().unwrap_or(&m.subject)) {
                        continue;
                    }
                    self.stats.received += 1;
                    let split = m.header_len.unwrap_or(0).min(m.message.len());
                    let headers = m.header_len.map(|_| m.message.slice(..split));
                    let payload = m.message.slice(split..);
                    self.events.push_back(Event::Deliver(Msg {
                        subject: m.subject,
                        reply: m.reply,
                        headers,
                        payload,
                        route,
                    }));
                }
            }
        }
    }

    /// The socket closed (or failed to open). `detail` describes it (a WebSocket close
    /// code); it becomes the error only if nothing better is known and the link never got
    /// through, since a connection that was up and closes cleanly is no error.
    pub fn handle_close(&mut self, now: u64, detail: Option<String>) {
        if !matches!(self.state, LinkState::Connecting | LinkState::Connected) {
            return;
        }
        if self.last_error.is_none() && self.state != LinkState::Connected {
            self.last_error = detail.map(LinkError::Socket);
        }
        self.go_down();
        self.schedule_retry(now);
    }

    /// Subscribes `subject` on the other side too, on top of the configured imports, until
    /// [`Link::unwant`] with the same `key`: a tab's link to its bus's leader mirrors the
    /// tab's subscriptions so, and then only what they want crosses. Kept across reconnects.
    pub fn want(&mut self, key: u64, subject: &str) {
        self.subs.add(key, subject, self.greeted.then_some(&mut self.out));
    }

    /// Ends what [`Link::want`] asked for under `key`.
    pub fn unwant(&mut self, key: u64) {
        self.subs.remove(key, self.greeted.then_some(&mut self.out));
    }

    /// The server's `max_payload`, once a server has sent its `INFO`.
    pub fn server_max_payload(&self) -> Option<usize> {
        self.max_payload
    }

    /// Whether the link stopped for good because the server refused the credentials
    /// [`MAX_AUTH_FAILURES`] times in a row (the state is then [`LinkState::Closed`]).
    pub fn gave_up_on_auth(&self) -> bool {
        self.state == LinkState::Closed && self.auth_failures >= MAX_AUTH_FAILURES
    }

    /// The socket could not even be created (a malformed URL): retrying would not help, so
    /// the link stops until [`Link::connect`] is called again.
    pub fn handle_dial_error(&mut self, _now: u64, error: String) {
        if self.state != LinkState::Connecting {
            return;
        }
        self.last_error = Some(LinkError::Dial(error));
        self.go_down();
        self.state = LinkState::Idle;
    }

    /// Time passed: gives up on a slow handshake, pings (or gives up on a silent server),
    /// or starts the next attempt, whichever [`Link::poll_timeout`] said was due.
    pub fn handle_timeout(&mut self, now: u64) {
        let Some(deadline) = self.deadline else { return };
        if now < deadline {
            return;
        }
        match self.state {
            LinkState::Connecting => {
                let ms = self.schedule.connect_timeout_ms;
                self.abandon(now, LinkError::HandshakeTimeout { ms });
            }
            LinkState::Connected => {
                // nats.js's rule: `max_ping_out` unanswered pings and the link is dead even
                // though the socket looks open (a stopped server, a proxy or NAT that dropped
                // the flow silently).
                let max_out = self.schedule.max_ping_out;
                if self.unanswered >= max_out {
                    self.abandon(now, LinkError::Stale { pings: max_out });
                    return;
                }
                self.out.extend_from_slice(PING);
                self.pings.push_back(PingMark::Keepalive);
                self.unanswered += 1;
                self.deadline = Some(now + u64::from(self.schedule.ping_interval_ms) * MS);
            }
            LinkState::Reconnecting => self.dial(now),
            LinkState::Idle | LinkState::Closed => self.deadline = None,
        }
    }

    // ---- the local side ---------------------------------------------------------------

    /// A local publish. Only exported subjects cross. A request waiting on one of the local
    /// side's own inboxes is live: sent now if connected, else dropped (it times out where
    /// it was made). Everything else is kept in the outbox, stamped with a `Nats-Msg-Id`,
    /// until the server confirms it.
    pub fn handle_export(&mut self, _now: u64, msg: Msg) {
        if !self.config.is_exported(&msg.subject) {
            return;
        }
        if msg.reply.as_deref().is_some_and(|r| self.config.is_own_inbox(r)) {
            self.send_live(&msg);
            return;
        }
        let size = msg.headers.as_ref().map_or(0, Bytes::len) + msg.payload.len();
        if let Some(max) = self.too_big(size) {
            // Known too big for this server: never kept, so never confirmed.
            self.events.push_back(Event::Rejected { subject: msg.subject, size, max });
            return;
        }
        self.outbox.push(&self.config.id_prefix, msg.subject, msg.reply, msg.headers.as_deref(), msg.payload);
        self.pump();
    }

    /// A local reply to a request the server sent: live, sent only while connected.
    pub fn handle_reply(&mut self, _now: u64, msg: Msg) {
        self.send_live(&msg);
    }

    /// The last [`Event::Persist`] is written.
    pub fn handle_persisted(&mut self, _now: u64) {
        self.persisting = false;
    }

    // ---- outputs ----------------------------------------------------------------------

    /// Bytes to write to the socket.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// When to call [`Link::handle_timeout`] next (ns since the Unix epoch).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.deadline
    }

    /// The next thing the host must act on.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        if !self.persisting && self.outbox.commit_pending() {
            self.persisting = true;
            return Some(Event::Persist(self.outbox.take_commit()));
        }
        None
    }

    // ---- inside -----------------------------------------------------------------------

    fn dial(&mut self, now: u64) {
        self.reset_session();
        self.state = LinkState::Connecting;
        self.deadline = Some(now + u64::from(self.schedule.connect_timeout_ms) * MS);
        self.events.push_back(Event::Dial);
    }

    /// Forgets the protocol session: the next connection starts from scratch and sends
    /// everything unconfirmed again.
    fn reset_session(&mut self) {
        self.parser = ServerOpParser::new(Self::limits());
        self.out.clear();
        self.pings.clear();
        self.unanswered = 0;
        self.outbox.rewind();
        self.greeted = false;
    }

    /// Gives up on the current socket without waiting for it to close.
    fn abandon(&mut self, now: u64, reason: LinkError) {
        self.last_error = Some(reason);
        self.events.push_back(Event::Hangup);
        self.go_down();
        self.schedule_retry(now);
    }

    fn go_down(&mut self) {
        self.reset_session();
        self.deadline = None;
        if !self.down_reported {
            self.down_reported = true;
            self.events.push_back(Event::Disconnected { error: self.last_error.clone() });
        }
    }

    fn schedule_retry(&mut self, now: u64) {
        if self.auth_failures >= MAX_AUTH_FAILURES {
            // Retrying with credentials the server refused twice only hammers it: stop, with
            // the reason kept in `last_error` and carried by the `Closed` the host reports.
            self.state = LinkState::Closed;
            self.deadline = None;
            self.events.push_back(Event::Closed);
            return;
        }
        let delay_ms = self.backoff.next_delay(self.rng.f64());
        self.stats.reconnects += 1;
        self.state = LinkState::Reconnecting;
        self.deadline = Some(now + u64::from(delay_ms) * MS);
        self.events.push_back(Event::Reconnecting { delay_ms, attempt: self.backoff.attempt });
    }

    /// The server's greeting: answer with `CONNECT`, the subscriptions and the handshake
    /// ping, whose `PONG` says the server accepted them all.
    fn on_info(&mut self, json: &[u8]) {
        if self.state != LinkState::Connecting || !self.pings.is_empty() {
            return; // a later INFO (cluster updates): nothing to do
        }
        let greeting = Greeting::read(json);
        if let Some(mp) = greeting.max_payload {
            self.max_payload = Some(usize::try_from(mp).unwrap_or(usize::MAX));
        }
        self.server = if greeting.server_name.is_empty() { greeting.server_id } else { greeting.server_name };
        write_connect(&mut self.out, self.config.connect_json().as_bytes());
        self.subs.write_all(&mut self.out);
        self.greeted = true;
        self.out.extend_from_slice(PING);
        self.pings.push_back(PingMark::Handshake);
    }

    fn on_pong(&mut self, now: u64) {
        // Any answer proves the server alive, whichever ping it answers.
        self.unanswered = 0;
        match self.pings.pop_front() {
            Some(PingMark::Handshake) => {
                self.state = LinkState::Connected;
                self.backoff.reset();
                self.auth_failures = 0;
                self.down_reported = false;
                self.last_error = None;
                self.deadline = Some(now + u64::from(self.schedule.ping_interval_ms) * MS);
                self.events.push_back(Event::Connected { server: self.server.clone() });
                self.pump();
            }
            Some(PingMark::Outbox(seq)) => {
                self.outbox.confirm(seq);
                self.events.push_back(Event::Confirmed { upto: seq, remaining: self.outbox.len() });
                self.pump();
            }
            Some(PingMark::Keepalive) | None => {}
        }
    }

    fn send_live(&mut self, msg: &Msg) {
        if self.state == LinkState::Connected {
            self.write_msg(&msg.subject, msg.reply.as_deref(), msg.headers.as_deref(), &msg.payload);
        }
    }

    fn write_msg(&mut self, subject: &[u8], reply: Option<&[u8]>, headers: Option<&[u8]>, payload: &[u8]) {
        let hlen = headers.map(<[u8]>::len);
        if let Some(max) = self.too_big(hlen.unwrap_or(0) + payload.len()) {
            self.events.push_back(Event::Rejected {
                subject: Bytes::copy_from_slice(subject),
                size: hlen.unwrap_or(0) + payload.len(),
                max,
            });
            return;
        }
        let mut msg = Vec::with_capacity(hlen.unwrap_or(0) + payload.len());
        msg.extend_from_slice(headers.unwrap_or_default());
        msg.extend_from_slice(payload);
        write_pub(&mut self.out, subject, reply, hlen, &msg);
        self.stats.sent += 1;
    }

    /// The server's limit, if `size` is over it.
    fn too_big(&self, size: usize) -> Option<usize> {
        self.max_payload.filter(|&max| size > max)
    }

    /// Writes the outbox's next batch (connected only), followed by the `PING` that will
    /// confirm it.
    fn pump(&mut self) {
        if self.state != LinkState::Connected {
            return;
        }
        let batch = self.outbox.next_batch();
        let Some(last) = batch.last().map(|e| e.seq) else { return };
        for e in &batch {
            self.write_msg(&e.subject, e.reply.as_deref(), Some(&e.headers), &e.payload);
        }
        self.out.extend_from_slice(PING);
        self.pings.push_back(PingMark::Outbox(last));
    }
}
