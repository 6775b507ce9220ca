//! One client connection's protocol state: what it may do before `CONNECT`, what its
//! `CONNECT` asked for, and how each operation turns into something for the host to do.
//!
//! The session never routes or writes. The host feeds bytes into [`Session::buffer_mut`] and
//! drains [`Session::poll_event`] until it returns `None`, acting on each event in order; the
//! order matters, because replies such as `PONG` must reach the socket after the messages the
//! preceding `PUB`s delivered back to this same connection.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use bytes::{Bytes, BytesMut};

use crate::proto::{ClientOp, ClientOpParser, ConnectOptions, Limits, ProtocolError, PubSpan, Publish, OK, PONG};
use crate::subject;

/// Fixed settings of the server side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    pub limits: Limits,
    /// Credentials are configured: nothing but `CONNECT` is accepted first.
    pub auth_required: bool,
}

/// What the host must do next, in order.
#[derive(Debug)]
pub enum Event {
    /// Write these bytes to the client (`PONG`, `+OK`).
    Send(&'static [u8]),
    /// Write this non-fatal `-ERR` to the client; the connection stays open.
    Error(ProtocolError),
    /// The client sent `CONNECT`; the host checks the credentials (and on failure ends the
    /// connection with [`ProtocolError::AuthorizationViolation`]).
    Connect(Box<ConnectOptions>),
    /// The first `PING` after a `CONNECT` with `protocol` ≥ 1 was answered: nats-server follows
    /// the `PONG` with an `INFO` carrying `connect_info: true`.
    ConnectInfo,
    /// A message to route. The host checks the user's permissions first, then sends the
    /// `+OK` of a verbose client ([`crate::policy::publish_accepted`]), then routes: a
    /// refused publish gets only its `-ERR`, as from nats-server.
    Publish(Publish),
    /// Register a subscription. The host enforces its own limits and sid rules, and sends `+OK`
    /// when the client is verbose.
    Subscribe {
        subject: Bytes,
        queue: Option<Bytes>,
        sid: Bytes,
    },
    Unsubscribe {
        sid: Bytes,
        max: Option<u64>,
    },
    /// The client answered a server `PING`.
    Pong,
    /// End the connection, after writing the error's `-ERR` if it has one. Nothing follows.
    Close(ProtocolError),
}

/// Reply subjects under these prefixes belong to the server.
const RESERVED_REPLY_PREFIXES: [&[u8]; 3] = [b"_R_.", b"$JS.ACK.", b"$GNR."];
/// Subjects under this prefix belong to the server's internal Raft traffic.
const RESERVED_PUBLISH_PREFIX: &[u8] = b"$NRG.";

pub struct Session {
    parser: ClientOpParser,
    config: SessionConfig,
    options: ConnectOptions,
    connected: bool,
    closed: bool,
    sent_connect_info: bool,
    queued: VecDeque<Event>,
    /// Why the client's input ended the session, worded for the host's log.
    report: Option<String>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Session {
            parser: ClientOpParser::new(config.limits),
            config,
            options: ConnectOptions::default(),
            connected: false,
            closed: false,
            sent_connect_info: false,
            queued: VecDeque::new(),
            report: None,
        }
    }

    /// Enforces `limits` from the next operation on: the host's configuration was reloaded.
    pub fn set_limits(&mut self, limits: Limits) {
        self.config.limits = limits;
        self.parser.set_limits(limits);
    }

    /// Where received bytes go.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        self.parser.buffer_mut()
    }

    /// The client's options (nats-server's defaults until it sends `CONNECT`).
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Has the client sent a `CONNECT` yet?
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Why the client's own input closed the session (a parser error, a `CONNECT` that does
    /// not parse, the client's `-ERR`), for one log line: nats-server logs each at error level.
    /// `None` for closes the host decided or logs itself.
    pub fn failure_report(&self) -> Option<&str> {
        self.report.as_deref()
    }

    /// Ends the session from the host's side (auth failure, slow consumer, stale connection):
    /// no further events come out.
    pub fn close(&mut self) {
        self.closed = true;
        self.queued.clear();
    }

    /// The next thing to do, or `None` when more bytes are needed (or the session is closed).
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(e) = self.queued.pop_front() {
            return Some(e);
        }
        loop {
            if self.closed {
                return None;
            }
            // With credentials required nats-server refuses the first byte that cannot begin
            // a CONNECT, before the rest of the operation arrives.
            if self.config.auth_required && !self.connected {
                if let Some(b) = self.parser.peeked().first().filter(|b| !b.eq_ignore_ascii_case(&b'C')) {
                    self.report = Some(format!("authorization violation: {:?} before CONNECT", char::from(*b)));
                    return Some(self.fail(ProtocolError::AuthorizationViolation));
                }
            }
            let op = match self.parser.poll_op() {
                Ok(Some(op)) => op,
                Ok(None) => return None,
                Err(e) => {
                    self.report = self.parser.error_report().map(|r| format!("Client {r}"));
                    return Some(self.fail(e.into()));
                }
            };
            if let Some(ev) = self.on_op(op) {
                return Some(ev);
            }
        }
    }

    /// The next operation if it is a plain `PUB` that needs nothing but routing: no `+OK`
    /// owed, no pedantic check, no reserved subject, nothing queued ahead of it. The host
    /// reads its subject and payload in place from [`Session::peeked`], then calls
    /// [`Session::consume`]; anything else comes from [`Session::poll_event`].
    pub fn peek_pub(&self) -> Option<PubSpan> {
        if self.closed || !self.connected || self.options.verbose || self.options.pedantic || !self.queued.is_empty() {
            return None;
        }
        let span = self.parser.peek_pub()?;
        let buf = self.parser.peeked();
        if buf[span.subject.clone()].starts_with(RESERVED_PUBLISH_PREFIX) {
            return None;
        }
        if let Some(r) = &span.reply {
            if RESERVED_REPLY_PREFIXES.iter().any(|pre| buf[r.clone()].starts_with(pre)) {
                return None;
            }
        }
        Some(span)
    }

    /// The received bytes a [`PubSpan`] points into.
    pub fn peeked(&self) -> &[u8] {
        self.parser.peeked()
    }

    /// Drops the `PUB` [`Session::peek_pub`] returned, once the host has routed it.
    pub fn consume(&mut self, span: &PubSpan) {
        self.parser.consume(span);
    }

    fn fail(&mut self, e: ProtocolError) -> Event {
        self.closed = true;
        self.queued.clear();
        Event::Close(e)
    }

    fn verbose_ok(&mut self) {
        if self.options.verbose {
            self.queued.push_back(Event::Send(OK));
        }
    }

    fn on_op(&mut self, op: ClientOp) -> Option<Event> {
        if self.config.auth_required && !self.connected && !matches!(op, ClientOp::Connect(_)) {
            return Some(self.fail(ProtocolError::AuthorizationViolation));
        }
        match op {
            ClientOp::Connect(json) => {
                let opts = match ConnectOptions::parse(&json) {
                    Ok(opts) => opts,
                    Err(e) => {
                        self.report = Some(format!("CONNECT: {e}"));
                        return Some(self.fail(ProtocolError::MalformedConnect));
                    }
                };
                if !(0..=1).contains(&opts.protocol) {
                    return Some(self.fail(ProtocolError::InvalidClientProtocol));
                }
                if opts.no_responders && !opts.headers {
                    return Some(self.fail(ProtocolError::NoRespondersRequiresHeaders));
                }
                if opts.account || opts.new_account {
                    return Some(self.fail(ProtocolError::AuthorizationViolation));
                }
                self.options = opts.clone();
                self.connected = true;
                self.verbose_ok();
                Some(Event::Connect(Box::new(opts)))
            }
            ClientOp::Pub(p) => {
                if p.header_len.is_some() && !self.options.headers {
                    self.report = Some("message headers not supported".into());
                    return Some(self.fail(ProtocolError::HeadersNotEnabled));
                }
                // nats-server's order: the pedantic check while reading the arguments, then
                // the permission checks (which drop the message without +OK), then +OK.
                if self.options.pedantic && subject::validate_publish(&p.subject).is_err() {
                    // reported, and still processed: it can only reach subscribers whose
                    // wildcards cover the literal '*'/'>' token
                    self.queued.push_back(Event::Error(ProtocolError::InvalidPublishSubject));
                }
                if p.subject.starts_with(RESERVED_PUBLISH_PREFIX) {
                    self.queued.push_back(Event::Error(ProtocolError::PublishViolation(p.subject.clone())));
                    return self.queued.pop_front();
                }
                if let Some(r) = &p.reply {
                    if RESERVED_REPLY_PREFIXES.iter().any(|pre| r.starts_with(pre)) {
                        self.queued.push_back(Event::Error(ProtocolError::PublishReplyViolation(r.clone())));
                        return self.queued.pop_front();
                    }
                }
                if self.queued.is_empty() && !self.options.verbose {
                    // the common case: nothing to say first, no queue round trip
                    return Some(Event::Publish(p));
                }
                // the +OK is the host's, after its permission check (see `Event::Publish`)
                self.queued.push_back(Event::Publish(p));
                self.queued.pop_front()
            }
            ClientOp::Sub { subject: s, queue, sid } => {
                if subject::validate_subscribe(&s).is_err()
                    || queue.as_deref().is_some_and(|q| subject::validate_queue(q).is_err())
                {
                    return Some(Event::Error(ProtocolError::InvalidSubject));
                }
                Some(Event::Subscribe { subject: s, queue, sid })
            }
            ClientOp::Unsub { sid, max } => {
                self.verbose_ok();
                self.queued.push_front(Event::Unsubscribe { sid, max });
                self.queued.pop_front()
            }
            ClientOp::Ping => {
                if self.connected && self.options.protocol >= 1 && !self.sent_connect_info {
                    self.sent_connect_info = true;
                    self.queued.push_back(Event::ConnectInfo);
                }
                Some(Event::Send(PONG))
            }
            ClientOp::Pong => Some(Event::Pong),
            ClientOp::Ignored => None,
            ClientOp::Err(text) => {
                self.report = Some(format!("Client Error {}", String::from_utf8_lossy(&text)));
                Some(self.fail(ProtocolError::ClientError))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::vec::Vec;

    fn events(config: SessionConfig, input: &[u8]) -> Vec<Event> {
        let mut s = Session::new(config);
        s.buffer_mut().extend_from_slice(input);
        let mut out = Vec::new();
        while let Some(e) = s.poll_event() {
            out.push(e);
        }
        out
    }

    fn open() -> SessionConfig {
        SessionConfig { limits: Limits::default(), auth_required: false }
    }

    #[test]
    fn defaults_without_connect_are_verbose_and_pedantic() {
        let ev = events(open(), b"PUB foo.* 2\r\nhi\r\nPING\r\n");
        assert!(matches!(ev[0], Event::Error(ProtocolError::InvalidPublishSubject)));
        assert!(matches!(ev[1], Event::Publish(_)), "the host sends the +OK after its permission check");
        assert!(matches!(ev[2], Event::Send(PONG)));
        assert_eq!(ev.len(), 3);
    }

    #[test]
    fn auth_required_refuses_anything_before_connect() {
        let ev = events(SessionConfig { auth_required: true, ..open() }, b"PING\r\nPING\r\n");
        assert!(matches!(ev[..], [Event::Close(ProtocolError::AuthorizationViolation)]));
    }

    /// The in-place path takes only what needs nothing but routing.
    #[test]
    fn peek_pub_only_for_plain_publishes() {
        let peek = |connect: &[u8], op: &[u8]| {
            let mut s = Session::new(open());
            s.buffer_mut().extend_from_slice(connect);
            while s.poll_event().is_some() {}
            s.buffer_mut().extend_from_slice(op);
            s.peek_pub().map(|p| s.peeked()[p.payload].to_vec())
        };
        let quiet = b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
        assert_eq!(peek(quiet, b"PUB a r 2\r\nhi\r\n").as_deref(), Some(&b"hi"[..]));
        assert_eq!(peek(b"", b"PUB a 2\r\nhi\r\n"), None); // before CONNECT
        assert_eq!(peek(b"CONNECT {\"verbose\":true}\r\n", b"PUB a 2\r\nhi\r\n"), None);
        assert_eq!(peek(b"CONNECT {\"pedantic\":true}\r\n", b"PUB a 2\r\nhi\r\n"), None);
        assert_eq!(peek(quiet, b"PUB $NRG.x 2\r\nhi\r\n"), None);
        assert_eq!(peek(quiet, b"PUB a _R_.x 2\r\nhi\r\n"), None);
    }

    #[test]
    fn connect_checks() {
        let ev = events(open(), b"CONNECT {\"protocol\":2}\r\n");
        assert!(matches!(ev[..], [Event::Close(ProtocolError::InvalidClientProtocol)]));
        let ev = events(open(), b"CONNECT {\"no_responders\":true}\r\n");
        assert!(matches!(ev[..], [Event::Close(ProtocolError::NoRespondersRequiresHeaders)]));
        let ev = events(open(), b"CONNECT {bad\r\nPING\r\n");
        assert!(matches!(ev[..], [Event::Close(ProtocolError::MalformedConnect)]));
        let ev = events(open(), b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\nPING\r\n");
        assert!(matches!(ev[..], [Event::Connect(_), Event::Send(PONG), Event::ConnectInfo, Event::Send(PONG)]));
    }

    #[test]
    fn hpub_needs_headers_and_reserved_replies_are_refused() {
        let ev = events(open(), b"CONNECT {\"verbose\":false}\r\nHPUB a 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        assert!(matches!(ev[1], Event::Close(ProtocolError::HeadersNotEnabled)));
        let ev = events(open(), b"CONNECT {\"verbose\":false}\r\nPUB a _R_.x 0\r\n\r\nPUB $NRG.x 0\r\n\r\n");
        assert!(matches!(ev[1], Event::Error(ProtocolError::PublishReplyViolation(_))));
        assert!(matches!(ev[2], Event::Error(ProtocolError::PublishViolation(_))));
        assert_eq!(ev.len(), 3);
    }

    #[test]
    fn invalid_sub_is_not_fatal() {
        let ev = events(open(), b"CONNECT {\"verbose\":false}\r\nSUB foo..bar 1\r\nSUB ok 2\r\n");
        assert!(matches!(ev[1], Event::Error(ProtocolError::InvalidSubject)));
        assert!(matches!(ev[2], Event::Subscribe { .. }));
    }

    #[test]
    fn input_that_ends_the_session_is_reported_for_the_log() {
        let mut s = Session::new(open());
        s.buffer_mut().extend_from_slice(b"CONNECT {\"verbose\":false}\r\nPUB foo -1\r\n");
        assert!(matches!(s.poll_event(), Some(Event::Connect(_))));
        assert!(s.failure_report().is_none());
        assert!(matches!(s.poll_event(), Some(Event::Close(ProtocolError::MalformedArguments))));
        assert_eq!(s.failure_report(), Some("Client PUB Bad or Missing Size: \"foo -1\""));
        let mut s = Session::new(open());
        s.buffer_mut().extend_from_slice(b"CONNECT []\r\n");
        assert!(matches!(s.poll_event(), Some(Event::Close(ProtocolError::MalformedConnect))));
        assert!(s.failure_report().is_some_and(|r| r.starts_with("CONNECT: ")));
        // null is Go's "no fields": the defaults stand
        let ev = events(open(), b"CONNECT null\r\nPING\r\n");
        assert!(matches!(ev[..], [Event::Connect(_), Event::Send(OK), Event::Send(PONG)]));
    }

    #[test]
    fn with_credentials_required_the_first_wrong_byte_is_refused() {
        let mut s = Session::new(SessionConfig { auth_required: true, ..open() });
        s.buffer_mut().extend_from_slice(b"X");
        assert!(matches!(s.poll_event(), Some(Event::Close(ProtocolError::AuthorizationViolation))));
        let mut s = Session::new(SessionConfig { auth_required: true, ..open() });
        s.buffer_mut().extend_from_slice(b"CX");
        assert!(matches!(s.poll_event(), Some(Event::Close(ProtocolError::UnknownOperation))));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut buf = Vec::new();
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let pick = b"PUB SUB HPUB UNSUB CONNECT {} 12 \r\n.*>-+OK\t0 \xff";
                buf.push(pick[(seed % pick.len() as u64) as usize]);
            }
            let _ = events(open(), &buf);
        }
    }
}
