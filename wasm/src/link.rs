//! The link to a server, without the browser: plain Rust, unit-tested natively.
//!
//! [`LinkCore`] is the client side of the NATS protocol for one bus: it answers the server's
//! `INFO` with `CONNECT`, subscribes the imported subjects and the bus's own inbox prefix
//! (so replies to requests the page sent out come back), and keeps the [`Outbox`]: every
//! publish on an exported subject, stamped with a `Nats-Msg-Id`, until the server confirmed
//! it. Confirmation is a `PING` after each batch: the server answers `PONG` only after it
//! processed every `PUB` before it. Entries sent but unconfirmed when the connection drops are
//! sent again on the next connection with the same id, so a stream on the server dedups them.
//!
//! The host ([`crate::socket`]) moves bytes between a WebSocket and [`LinkCore::receive`] /
//! [`LinkCore::take_output`], publishes what [`Event::Import`] says into the page's broker,
//! persists what [`Outbox::take_commit`] says, and waits [`Backoff::next_delay`] between
//! connection attempts.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use edgebus_core::proto::{write_connect, write_pub, write_sub, Headers, Limits, ServerOp, ServerOpParser, PING, PONG};
use edgebus_core::subject::{matches, validate_subscribe};

/// Unconfirmed outbox entries on the wire at most (then wait for a `PONG`).
pub const MAX_IN_FLIGHT: usize = 512;
/// Unconfirmed outbox bytes on the wire at most.
pub const MAX_IN_FLIGHT_BYTES: usize = 1 << 20;
/// The header that makes a server stream drop a resent message.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// What the link exchanges with the server.
#[derive(Debug, Clone, Default)]
pub struct LinkConfig {
    /// Subjects (wildcards allowed) whose local publishes go to the server.
    pub exports: Vec<String>,
    /// Subjects (wildcards allowed) the server's publishes on come into the page.
    pub imports: Vec<String>,
    /// The bus's inbox prefix (`_INBOX.<token>`): replies to it come back over the link.
    pub inbox_prefix: String,
    /// Prefix of the `Nats-Msg-Id` values stamped on outgoing messages (unique per session).
    pub id_prefix: String,
    pub name: String,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
}

impl LinkConfig {
    /// Checks the subject lists.
    pub fn validate(&self) -> Result<(), String> {
        for s in self.exports.iter().chain(&self.imports) {
            validate_subscribe(s.as_bytes()).map_err(|e| format!("{s}: {e}"))?;
        }
        Ok(())
    }

    pub fn is_exported(&self, subject: &[u8]) -> bool {
        self.exports.iter().any(|p| matches(p.as_bytes(), subject))
    }

    pub fn is_imported(&self, subject: &[u8]) -> bool {
        self.imports.iter().any(|p| matches(p.as_bytes(), subject))
    }

    /// Whether `reply` is one of the bus's own inboxes (live request/reply, never kept).
    pub fn is_own_inbox(&self, reply: &[u8]) -> bool {
        reply.len() > self.inbox_prefix.len()
            && reply.starts_with(self.inbox_prefix.as_bytes())
            && reply[self.inbox_prefix.len()] == b'.'
    }

    fn connect_json(&self) -> String {
        let mut o = serde_json::json!({
            "verbose": false, "pedantic": false, "headers": true, "no_responders": true,
            "echo": false, "protocol": 1, "lang": "edgebus-wasm",
            "version": env!("CARGO_PKG_VERSION"), "name": self.name,
        });
        if let Some(u) = &self.user {
            o["user"] = u.as_str().into();
        }
        if let Some(p) = &self.pass {
            o["pass"] = p.as_str().into();
        }
        if let Some(t) = &self.token {
            o["auth_token"] = t.as_str().into();
        }
        o.to_string()
    }
}

/// Adds `Nats-Msg-Id: id` to a header block (or makes one); an id already there is kept.
pub fn stamp_msg_id(headers: Option<&[u8]>, id: &str) -> Bytes {
    let mut h = headers.and_then(|h| Headers::parse(h).ok()).unwrap_or_default();
    if h.get(MSG_ID).is_none() {
        h.append(MSG_ID, id);
    }
    h.to_bytes()
}

/// Exponential backoff with jitter: attempt `n` waits a random time in `[d/2, d]` where
/// `d = min(max, min * 2^n)`, so many pages coming back at once spread out.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub min_ms: u32,
    pub max_ms: u32,
    pub attempt: u32,
}

impl Backoff {
    pub fn new(min_ms: u32, max_ms: u32) -> Self {
        Backoff { min_ms: min_ms.max(1), max_ms: max_ms.max(min_ms.max(1)), attempt: 0 }
    }

    /// The delay before the next attempt; `random` in `[0, 1)`.
    pub fn next_delay(&mut self, random: f64) -> u32 {
        let d = u64::from(self.min_ms).saturating_mul(1u64 << self.attempt.min(20)).min(u64::from(self.max_ms));
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        (half + ((d - half) as f64 * random.clamp(0.0, 1.0)) as u64) as u32
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// One kept publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    /// Always present: it carries the `Nats-Msg-Id`.
    pub headers: Bytes,
    pub payload: Bytes,
}

const NO_REPLY: u32 = u32::MAX;

impl Entry {
    pub fn size(&self) -> usize {
        self.subject.len() + self.reply.as_ref().map_or(0, Bytes::len) + self.headers.len() + self.payload.len()
    }

    /// The record stored in IndexedDB: lengths (u32 LE) of subject, reply, headers, then the bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size() + 12);
        out.extend_from_slice(&(self.subject.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.reply.as_ref().map_or(NO_REPLY, |r| r.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.headers.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.subject);
        if let Some(r) = &self.reply {
            out.extend_from_slice(r);
        }
        out.extend_from_slice(&self.headers);
        out.extend_from_slice(&self.payload);
        out
    }

    pub fn decode(seq: u64, data: &[u8]) -> Option<Entry> {
        let bytes = Bytes::copy_from_slice(data);
        let len = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?)) };
        let (slen, rlen, hlen) = (len(0)? as usize, len(4)?, len(8)? as usize);
        let mut at: usize = 12;
        let mut take = |n: usize| -> Option<Bytes> {
            let end = at.checked_add(n).filter(|e| *e <= bytes.len())?;
            let b = bytes.slice(at..end);
            at = end;
            Some(b)
        };
        let subject = take(slen)?;
        let reply = if rlen == NO_REPLY { None } else { Some(take(rlen as usize)?) };
        let headers = take(hlen)?;
        let payload = bytes.slice(at..);
        Some(Entry { seq, subject, reply, headers, payload })
    }
}

/// What one outbox commit writes: new entries, and the deletion of every stored entry up to
/// and including `delete_upto` (they were confirmed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OutboxCommit {
    pub puts: Vec<(u64, Vec<u8>)>,
    pub delete_upto: Option<u64>,
}

impl OutboxCommit {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.delete_upto.is_none()
    }
}

/// Publishes on exported subjects that the server has not confirmed yet, in order.
#[derive(Debug, Default)]
pub struct Outbox {
    entries: VecDeque<Entry>,
    next_seq: u64,
    /// Entries up to here were written to the current connection.
    sent_upto: u64,
    /// Entries up to here are (or are being) stored.
    persisted_upto: u64,
    /// Entries up to here were confirmed by the server.
    confirmed_upto: u64,
    /// Stored entries up to here were (or are being) deleted.
    deleted_upto: u64,
    /// Whether entries are kept in storage at all.
    durable: bool,
}

impl Outbox {
    /// An outbox holding `stored` (what storage had, in any order).
    pub fn new(durable: bool, mut stored: Vec<Entry>) -> Self {
        stored.sort_by_key(|e| e.seq);
        let last = stored.last().map_or(0, |e| e.seq);
        let first = stored.first().map_or(1, |e| e.seq);
        Outbox {
            entries: stored.into(),
            next_seq: last + 1,
            sent_upto: 0,
            persisted_upto: last,
            confirmed_upto: first - 1,
            deleted_upto: first - 1,
            durable,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps a publish; `id_prefix` + the sequence becomes its `Nats-Msg-Id` unless it has one.
    pub fn push(
        &mut self,
        id_prefix: &str,
        subject: Bytes,
        reply: Option<Bytes>,
        headers: Option<&[u8]>,
        payload: Bytes,
    ) {
        let seq = self.next_seq.max(1);
        self.next_seq = seq + 1;
        let headers = stamp_msg_id(headers, &format!("{id_prefix}{seq}"));
        self.entries.push_back(Entry { seq, subject, reply, headers, payload });
    }

    /// A new connection: everything unconfirmed is sent again.
    pub fn rewind(&mut self) {
        self.sent_upto = self.confirmed_upto;
    }

    /// The next entries to write, within the in-flight limits; marks them sent.
    pub fn next_batch(&mut self) -> Vec<Entry> {
        let mut in_flight = 0;
        let mut bytes = 0;
        let mut batch = Vec::new();
        for e in &self.entries {
            if e.seq <= self.sent_upto {
                in_flight += 1;
                bytes += e.size();
                continue;
            }
            if in_flight >= MAX_IN_FLIGHT || (bytes >= MAX_IN_FLIGHT_BYTES && in_flight > 0) {
                break;
            }
            in_flight += 1;
            bytes += e.size();
            batch.push(e.clone());
        }
        if let Some(last) = batch.last() {
            self.sent_upto = last.seq;
        }
        batch
    }

    /// The highest sequence written to the current connection.
    pub fn sent_upto(&self) -> u64 {
        self.sent_upto
    }

    /// The server processed everything up to `seq`.
    pub fn confirm(&mut self, seq: u64) {
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            self.entries.pop_front();
        }
        self.confirmed_upto = self.confirmed_upto.max(seq);
    }

    /// What to write to storage now (entries confirmed before being stored are never written).
    pub fn take_commit(&mut self) -> OutboxCommit {
        let mut c = OutboxCommit::default();
        if !self.durable {
            return c;
        }
        if self.confirmed_upto > self.deleted_upto && self.deleted_upto < self.persisted_upto {
            c.delete_upto = Some(self.confirmed_upto.min(self.persisted_upto));
        }
        self.deleted_upto = self.deleted_upto.max(self.confirmed_upto);
        for e in self.entries.iter().filter(|e| e.seq > self.persisted_upto) {
            c.puts.push((e.seq, e.encode()));
        }
        if let Some(last) = self.entries.back() {
            self.persisted_upto = self.persisted_upto.max(last.seq);
        }
        self.persisted_upto = self.persisted_upto.max(self.confirmed_upto);
        c
    }

    /// Whether [`Outbox::take_commit`] has anything to write.
    pub fn commit_pending(&self) -> bool {
        self.durable
            && (self.entries.back().is_some_and(|e| e.seq > self.persisted_upto)
                || (self.confirmed_upto > self.deleted_upto && self.deleted_upto < self.persisted_upto))
    }
}

/// Where the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No socket (waiting to retry, or closed).
    Down,
    /// Socket open or opening, handshake not finished.
    Connecting,
    Connected,
}

/// What the host must act on after [`LinkCore::receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake finished: the server accepted `CONNECT` and the subscriptions.
    Connected { server: String },
    /// A message from the server: publish it into the page's bus.
    Import { subject: Bytes, reply: Option<Bytes>, headers: Option<Bytes>, payload: Bytes },
    /// `-ERR` from the server (it usually closes the connection next).
    Error(String),
}

enum PingMark {
    Handshake,
    /// Confirms outbox entries up to this sequence.
    Outbox(u64),
    /// A ping nobody waits for (keepalive).
    Plain,
}

/// The client side of the protocol for one bus link.
pub struct LinkCore {
    pub config: LinkConfig,
    pub outbox: Outbox,
    pub state: LinkState,
    parser: ServerOpParser,
    out: BytesMut,
    pings: VecDeque<PingMark>,
    max_payload: usize,
    server: String,
    /// Keepalive pings sent since the server last answered any `PING`.
    unanswered: u32,
    /// Messages received from / sent to the server (this session).
    pub received: u64,
    pub sent: u64,
}

impl LinkCore {
    pub fn new(config: LinkConfig, outbox: Outbox) -> Self {
        LinkCore {
            config,
            outbox,
            state: LinkState::Down,
            parser: ServerOpParser::new(Self::limits()),
            out: BytesMut::new(),
            pings: VecDeque::new(),
            max_payload: Limits::default().max_payload,
            server: String::new(),
            unanswered: 0,
            received: 0,
            sent: 0,
        }
    }

    fn limits() -> Limits {
        // What a server sends is bounded by its own limits; accept big lines and payloads.
        Limits { max_control_line: 64 * 1024, max_payload: 64 << 20 }
    }

    /// A socket is being opened: start a fresh protocol session.
    pub fn start(&mut self) {
        self.state = LinkState::Connecting;
        self.parser = ServerOpParser::new(Self::limits());
        self.out.clear();
        self.pings.clear();
        self.unanswered = 0;
        self.outbox.rewind();
    }

    /// The socket closed (or failed to open).
    pub fn stopped(&mut self) {
        self.state = LinkState::Down;
        self.out.clear();
        self.pings.clear();
        self.unanswered = 0;
        self.outbox.rewind();
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// A publish from the page that matched an export. Requests waiting on one of the bus's
    /// own inboxes are live: sent now if connected, else dropped (the request times out).
    /// Everything else is kept in the outbox until the server confirms it.
    pub fn export(&mut self, subject: Bytes, reply: Option<Bytes>, headers: Option<Bytes>, payload: Bytes) {
        if reply.as_deref().is_some_and(|r| self.config.is_own_inbox(r)) {
            self.send_live(&subject, reply.as_deref(), headers.as_deref(), &payload);
            return;
        }
        self.outbox.push(&self.config.id_prefix, subject, reply, headers.as_deref(), payload);
        self.pump();
    }

    /// Sends a message now if connected (replies to the server's requests, live requests).
    pub fn send_live(&mut self, subject: &[u8], reply: Option<&[u8]>, headers: Option<&[u8]>, payload: &[u8]) {
        if self.state != LinkState::Connected {
            return;
        }
        self.write_msg(subject, reply, headers, payload);
    }

    fn write_msg(&mut self, subject: &[u8], reply: Option<&[u8]>, headers: Option<&[u8]>, payload: &[u8]) {
        let hlen = headers.map(<[u8]>::len);
        if hlen.unwrap_or(0) + payload.len() > self.max_payload {
            return;
        }
        let mut msg = Vec::with_capacity(hlen.unwrap_or(0) + payload.len());
        msg.extend_from_slice(headers.unwrap_or_default());
        msg.extend_from_slice(payload);
        write_pub(&mut self.out, subject, reply, hlen, &msg);
        self.sent += 1;
    }

    /// Writes the outbox's next batch (connected only), followed by the `PING` that will
    /// confirm it.
    pub fn pump(&mut self) {
        if self.state != LinkState::Connected {
            return;
        }
        let batch = self.outbox.next_batch();
        let Some(last) = batch.last().map(|e| e.seq) else { return };
        for e in &batch {
            if e.headers.len() + e.payload.len() > self.max_payload {
                // The server would close the connection over it; it can never be sent.
                continue;
            }
            self.write_msg(&e.subject, e.reply.as_deref(), Some(&e.headers), &e.payload);
        }
        self.out.extend_from_slice(PING);
        self.pings.push_back(PingMark::Outbox(last));
    }

    /// One keepalive tick (nats.js's rule): `false` when `max_out` pings already went
    /// unanswered, so the link is dead even though the socket looks open (a server that
    /// stopped, a proxy or NAT that dropped the flow silently); otherwise sends one more.
    pub fn keepalive(&mut self, max_out: u32) -> bool {
        if self.state != LinkState::Connected {
            return true;
        }
        if self.unanswered >= max_out {
            return false;
        }
        self.out.extend_from_slice(PING);
        self.pings.push_back(PingMark::Plain);
        self.unanswered += 1;
        true
    }

    /// Bytes to write to the socket.
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// Bytes from the socket. `Err` means the stream is broken: close the socket.
    pub fn receive(&mut self, data: &[u8]) -> Result<Vec<Event>, String> {
        self.parser.extend(data);
        let mut events = Vec::new();
        loop {
            let op = self.parser.poll_op().map_err(|e| format!("protocol error from server: {e:?}"))?;
            let Some(op) = op else { break };
            match op {
                ServerOp::Info(json) => self.on_info(&json),
                ServerOp::Ping => self.out.extend_from_slice(PONG),
                ServerOp::Pong => {
                    // Any answer proves the server alive, whichever ping it answers.
                    self.unanswered = 0;
                    match self.pings.pop_front() {
                        Some(PingMark::Handshake) => {
                            self.state = LinkState::Connected;
                            events.push(Event::Connected { server: self.server.clone() });
                            self.pump();
                        }
                        Some(PingMark::Outbox(seq)) => {
                            self.outbox.confirm(seq);
                            self.pump();
                        }
                        Some(PingMark::Plain) | None => {}
                    }
                }
                ServerOp::Ok => {}
                ServerOp::Err(text) => events.push(Event::Error(String::from_utf8_lossy(&text).into_owned())),
                ServerOp::Msg(m) => {
                    self.received += 1;
                    let headers = m.header_len.map(|h| m.message.slice(..h.min(m.message.len())));
                    let payload = m.message.slice(m.header_len.unwrap_or(0).min(m.message.len())..);
                    events.push(Event::Import { subject: m.subject, reply: m.reply, headers, payload });
                }
            }
        }
        Ok(events)
    }

    /// The server's greeting: answer with `CONNECT`, the subscriptions and the handshake ping.
    fn on_info(&mut self, json: &[u8]) {
        if self.state != LinkState::Connecting || !self.pings.is_empty() {
            return; // a later INFO (cluster updates): nothing to do
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) {
            if let Some(mp) = v.get("max_payload").and_then(serde_json::Value::as_u64) {
                self.max_payload = mp as usize;
            }
            let name = v.get("server_name").or_else(|| v.get("server_id")).and_then(|s| s.as_str());
            self.server = name.unwrap_or_default().to_string();
        }
        write_connect(&mut self.out, self.config.connect_json().as_bytes());
        let mut sid = 1u32;
        for s in &self.config.imports {
            write_sub(&mut self.out, s.as_bytes(), None, sid.to_string().as_bytes());
            sid += 1;
        }
        let inbox = format!("{}.>", self.config.inbox_prefix);
        write_sub(&mut self.out, inbox.as_bytes(), None, sid.to_string().as_bytes());
        self.out.extend_from_slice(PING);
        self.pings.push_back(PingMark::Handshake);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> LinkConfig {
        LinkConfig {
            exports: vec!["orders.>".into()],
            imports: vec!["prices.>".into()],
            inbox_prefix: "_INBOX.page".into(),
            id_prefix: "link1-".into(),
            name: "t".into(),
            user: Some("u".into()),
            pass: Some("p".into()),
            token: None,
        }
    }

    fn out(core: &mut LinkCore) -> String {
        String::from_utf8(core.take_output().map(|b| b.to_vec()).unwrap_or_default()).unwrap()
    }

    fn connected(outbox: Outbox) -> LinkCore {
        let mut core = LinkCore::new(config(), outbox);
        core.start();
        assert!(core.receive(b"INFO {\"server_id\":\"S\",\"max_payload\":1048576} \r\n").unwrap().is_empty());
        let hello = out(&mut core);
        assert!(hello.starts_with("CONNECT {"), "{hello}");
        assert!(hello.contains("\"echo\":false") && hello.contains("\"user\":\"u\""), "{hello}");
        assert!(hello.contains("SUB prices.> 1\r\nSUB _INBOX.page.> 2\r\nPING\r\n"), "{hello}");
        let ev = core.receive(b"PONG\r\n").unwrap();
        assert_eq!(ev, vec![Event::Connected { server: "S".into() }]);
        core
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn subjects_and_inboxes() {
        let c = config();
        assert!(c.is_exported(b"orders.eu.1") && !c.is_exported(b"prices.x"));
        assert!(c.is_imported(b"prices.x") && !c.is_imported(b"orders.1"));
        assert!(
            c.is_own_inbox(b"_INBOX.page.7") && !c.is_own_inbox(b"_INBOX.pagex.7") && !c.is_own_inbox(b"_INBOX.page")
        );
        assert!(LinkConfig { exports: vec!["a..b".into()], ..config() }.validate().is_err());
        assert!(config().validate().is_ok());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn msg_id_stamping_keeps_headers_and_existing_ids() {
        let h = stamp_msg_id(None, "a-1");
        assert_eq!(&h[..], b"NATS/1.0\r\nNats-Msg-Id: a-1\r\n\r\n");
        let h = stamp_msg_id(Some(b"NATS/1.0\r\nX: y\r\n\r\n"), "a-2");
        let parsed = Headers::parse(&h).unwrap();
        assert_eq!((parsed.get("X"), parsed.get(MSG_ID)), (Some("y"), Some("a-2")));
        let h = stamp_msg_id(Some(b"NATS/1.0\r\nNats-Msg-Id: mine\r\n\r\n"), "a-3");
        assert_eq!(Headers::parse(&h).unwrap().get_all(MSG_ID).collect::<Vec<_>>(), vec!["mine"]);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(100, 2_000);
        let lows: Vec<u32> = (0..7).map(|_| b.next_delay(0.0)).collect();
        assert_eq!(lows, vec![50, 100, 200, 400, 800, 1000, 1000]);
        b.reset();
        let highs: Vec<u32> = (0..6).map(|_| b.next_delay(0.999_999)).collect();
        assert_eq!(highs, vec![99, 199, 399, 799, 1599, 1999]);
        let mut b = Backoff::new(100, 2_000);
        b.attempt = 1000;
        assert!((1000..=2000).contains(&b.next_delay(0.5)));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn entry_roundtrip() {
        let e = Entry {
            seq: 9,
            subject: Bytes::from_static(b"orders.1"),
            reply: Some(Bytes::from_static(b"r.1")),
            headers: stamp_msg_id(None, "x-9"),
            payload: Bytes::from_static(b"hello"),
        };
        assert_eq!(Entry::decode(9, &e.encode()).unwrap(), e);
        let e2 = Entry { reply: None, payload: Bytes::new(), ..e };
        assert_eq!(Entry::decode(9, &e2.encode()).unwrap(), e2);
        assert!(Entry::decode(1, &e2.encode()[..10]).is_none());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn offline_publishes_are_kept_then_sent_once_confirmed() {
        let mut core = LinkCore::new(config(), Outbox::new(true, Vec::new()));
        for i in 1..=3 {
            core.export(Bytes::from(format!("orders.{i}")), None, None, Bytes::from_static(b"x"));
        }
        assert_eq!(core.outbox.len(), 3);
        assert!(core.take_output().is_none(), "nothing goes out while down");
        let c = core.outbox.take_commit();
        assert_eq!(c.puts.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(c.delete_upto, None);
        assert!(!core.outbox.commit_pending());

        // Connect: the handshake, then the batch with its confirming ping.
        let mut outbox = std::mem::take(&mut core.outbox);
        outbox.rewind();
        let mut core = connected(outbox);
        let sent = out(&mut core);
        assert_eq!(
            sent,
            "HPUB orders.1 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-1\r\n\r\nx\r\n\
             HPUB orders.2 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-2\r\n\r\nx\r\n\
             HPUB orders.3 34 35\r\nNATS/1.0\r\nNats-Msg-Id: link1-3\r\n\r\nx\r\nPING\r\n"
        );
        // The connection drops before the PONG: all three go again, with the same ids.
        core.stopped();
        core.start();
        core.receive(b"INFO {} \r\n").unwrap();
        out(&mut core);
        core.receive(b"PONG\r\n").unwrap();
        let again = out(&mut core);
        assert_eq!(again.matches("Nats-Msg-Id: link1-").count(), 3);
        assert!(again.contains("link1-1\r\n") && again.ends_with("PING\r\n"));
        core.receive(b"PONG\r\n").unwrap();
        assert!(core.outbox.is_empty());
        let c = core.outbox.take_commit();
        assert_eq!(c, OutboxCommit { puts: vec![], delete_upto: Some(3) });

        // Online: a publish is confirmed before it was ever stored, so it is never written.
        core.export(Bytes::from_static(b"orders.9"), None, None, Bytes::from_static(b"y"));
        assert!(out(&mut core).contains("link1-4"));
        core.receive(b"PONG\r\n").unwrap();
        assert!(core.outbox.take_commit().is_empty());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn reloaded_outbox_continues_its_sequence() {
        let stored: Vec<Entry> = [5u64, 4]
            .iter()
            .map(|s| Entry {
                seq: *s,
                subject: Bytes::from_static(b"orders.x"),
                reply: None,
                headers: stamp_msg_id(None, &format!("old-{s}")),
                payload: Bytes::new(),
            })
            .collect();
        let mut ob = Outbox::new(true, stored);
        assert!(!ob.commit_pending());
        ob.push("new-", Bytes::from_static(b"orders.y"), None, None, Bytes::new());
        let c = ob.take_commit();
        assert_eq!(c.puts.len(), 1);
        assert_eq!(c.puts[0].0, 6);
        let batch = ob.next_batch();
        assert_eq!(batch.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5, 6]);
        ob.confirm(6);
        assert_eq!(ob.take_commit().delete_upto, Some(6));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn in_flight_is_bounded() {
        let mut ob = Outbox::new(false, Vec::new());
        for _ in 0..(MAX_IN_FLIGHT + 10) {
            ob.push("p-", Bytes::from_static(b"a"), None, None, Bytes::new());
        }
        assert_eq!(ob.next_batch().len(), MAX_IN_FLIGHT);
        assert!(ob.next_batch().is_empty());
        ob.confirm(100);
        assert_eq!(ob.next_batch().len(), 10);
        assert!(ob.take_commit().is_empty(), "a memory outbox stores nothing");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn keepalive_declares_a_silent_server_dead() {
        let mut core = LinkCore::new(config(), Outbox::new(false, Vec::new()));
        assert!(core.keepalive(2), "nothing to check before connecting");
        assert!(core.take_output().is_none());
        let mut core = connected(Outbox::new(false, Vec::new()));
        assert!(core.keepalive(2) && core.keepalive(2));
        assert_eq!(out(&mut core), "PING\r\nPING\r\n");
        // One answer (to either ping) and the count starts over.
        core.receive(b"PONG\r\n").unwrap();
        assert!(core.keepalive(2) && core.keepalive(2));
        assert!(!core.keepalive(2), "two pings unanswered: dead");
        // An outbox confirmation counts as an answer too.
        core.export(Bytes::from_static(b"orders.1"), None, None, Bytes::new());
        core.receive(b"PONG\r\nPONG\r\nPONG\r\nPONG\r\n").unwrap();
        assert!(core.outbox.is_empty());
        assert!(core.keepalive(2));
        core.stopped();
        core.start();
        assert!(core.keepalive(0), "not connected yet: the handshake timeout covers this");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn imports_requests_pings_and_errors() {
        let mut core = connected(Outbox::new(false, Vec::new()));
        let ev = core
            .receive(b"MSG prices.eu 1 _INBOX.srv.1 3\r\n1.5\r\nPING\r\nHMSG _INBOX.page.3 2 12 14\r\nNATS/1.0\r\n\r\nok\r\n-ERR 'x'\r\n")
            .unwrap();
        assert_eq!(
            ev,
            vec![
                Event::Import {
                    subject: Bytes::from_static(b"prices.eu"),
                    reply: Some(Bytes::from_static(b"_INBOX.srv.1")),
                    headers: None,
                    payload: Bytes::from_static(b"1.5"),
                },
                Event::Import {
                    subject: Bytes::from_static(b"_INBOX.page.3"),
                    reply: None,
                    headers: Some(Bytes::from_static(b"NATS/1.0\r\n\r\n")),
                    payload: Bytes::from_static(b"ok"),
                },
                Event::Error("'x'".into()),
            ]
        );
        assert_eq!(out(&mut core), "PONG\r\n");
        // A live request goes out at once, never into the outbox; a reply to the server too.
        core.export(Bytes::from_static(b"orders.q"), Some(Bytes::from_static(b"_INBOX.page.4")), None, Bytes::new());
        core.send_live(b"_INBOX.srv.1", None, None, b"ack");
        assert_eq!(out(&mut core), "PUB orders.q _INBOX.page.4 0\r\n\r\nPUB _INBOX.srv.1 3\r\nack\r\n");
        assert!(core.outbox.is_empty());
        core.stopped();
        core.export(Bytes::from_static(b"orders.q"), Some(Bytes::from_static(b"_INBOX.page.5")), None, Bytes::new());
        assert!(core.outbox.is_empty() && core.take_output().is_none(), "a request while down is dropped");
        assert!(core.receive(b"BOGUS\r\n").is_err());
    }
}
