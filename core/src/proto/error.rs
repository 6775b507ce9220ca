//! The errors a server reports to a client, with nats-server's exact `-ERR` texts, and which
//! of them end the connection.

use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;

use super::ParseError;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    UnknownOperation,
    AuthorizationViolation,
    AuthenticationTimeout,
    MaxPayload,
    MaxControlLine,
    MaxSubscriptions,
    MaxConnections,
    InvalidSubject,
    InvalidPublishSubject,
    StaleConnection,
    InvalidClientProtocol,
    NoRespondersRequiresHeaders,
    /// A reply subject under a prefix reserved for the server (`_R_.`, `$JS.ACK.`, `$GNR.`).
    PublishReplyViolation(Bytes),
    /// A publish to a subject reserved for the server (`$NRG.`) or one the user's
    /// permissions refuse.
    PublishViolation(Bytes),
    /// A subscription the user's permissions refuse, with its queue group if it has one.
    SubscriptionViolation {
        subject: Bytes,
        queue: Option<Bytes>,
    },
    /// Malformed `PUB`/`HPUB`/`SUB` arguments: nats-server closes without a word.
    MalformedArguments,
    /// `CONNECT` whose JSON does not parse: closed without a word.
    MalformedConnect,
    /// `HPUB` on a connection that did not enable headers: closed without a word.
    HeadersNotEnabled,
    /// The client sent `-ERR`: closed without a word.
    ClientError,
    /// The outbound backlog passed `max_pending` or a write outlived `write_deadline`: closed
    /// without a word (nats-server 2.14 sends no `-ERR` here).
    SlowConsumer,
}

impl ProtocolError {
    /// The text inside `-ERR '…'`, or `None` for errors that close silently.
    pub fn text(&self) -> Option<alloc::borrow::Cow<'static, str>> {
        use alloc::borrow::Cow::{Borrowed, Owned};
        use alloc::format;
        Some(match self {
            ProtocolError::UnknownOperation => Borrowed("Unknown Protocol Operation"),
            ProtocolError::AuthorizationViolation => Borrowed("Authorization Violation"),
            ProtocolError::AuthenticationTimeout => Borrowed("Authentication Timeout"),
            ProtocolError::MaxPayload => Borrowed("Maximum Payload Violation"),
            ProtocolError::MaxControlLine => Borrowed("maximum control line exceeded"),
            ProtocolError::MaxSubscriptions => Borrowed("maximum subscriptions exceeded"),
            ProtocolError::MaxConnections => Borrowed("maximum connections exceeded"),
            ProtocolError::InvalidSubject => Borrowed("Invalid Subject"),
            ProtocolError::InvalidPublishSubject => Borrowed("Invalid Publish Subject"),
            ProtocolError::StaleConnection => Borrowed("Stale Connection"),
            ProtocolError::InvalidClientProtocol => Borrowed("invalid client protocol"),
            ProtocolError::NoRespondersRequiresHeaders => Borrowed("no responders requires headers support"),
            ProtocolError::PublishReplyViolation(r) => {
                Owned(format!("Permissions Violation for Publish with Reply of \"{}\"", lossy(r)))
            }
            ProtocolError::PublishViolation(s) => {
                Owned(format!("Permissions Violation for Publish to \"{}\"", lossy(s)))
            }
            ProtocolError::SubscriptionViolation { subject, queue: None } => {
                Owned(format!("Permissions Violation for Subscription to \"{}\"", lossy(subject)))
            }
            ProtocolError::SubscriptionViolation { subject, queue: Some(q) } => Owned(format!(
                "Permissions Violation for Subscription to \"{}\" using queue \"{}\"",
                lossy(subject),
                lossy(q)
            )),
            ProtocolError::MalformedArguments
            | ProtocolError::MalformedConnect
            | ProtocolError::HeadersNotEnabled
            | ProtocolError::ClientError
            | ProtocolError::SlowConsumer => return None,
        })
    }

    /// Does nats-server close the connection after this error?
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            ProtocolError::MaxSubscriptions
                | ProtocolError::InvalidSubject
                | ProtocolError::InvalidPublishSubject
                | ProtocolError::PublishReplyViolation(_)
                | ProtocolError::PublishViolation(_)
                | ProtocolError::SubscriptionViolation { .. }
        )
    }

    /// Appends `-ERR '<text>'\r\n` (nothing for the silent ones).
    pub fn write(&self, out: &mut BytesMut) {
        if let Some(t) = self.text() {
            out.put_slice(b"-ERR '");
            out.put_slice(t.as_bytes());
            out.put_slice(b"'\r\n");
        }
    }

    /// The WebSocket close frame nats-server ends the connection with after this error: its
    /// status and the name of nats-server's closed state as the reason. Errors nats-server
    /// treats as read errors (the parser gave up) are `1001 Read Error`.
    pub fn ws_close(&self) -> (u16, &'static str) {
        match self {
            ProtocolError::AuthorizationViolation => (1008, "Authentication Failure"),
            ProtocolError::AuthenticationTimeout => (1008, "Authentication Timeout"),
            ProtocolError::SlowConsumer => (1008, "Slow Consumer (Pending Bytes)"),
            ProtocolError::MaxSubscriptions => (1008, "Maximum Subscriptions Exceeded"),
            ProtocolError::MaxConnections => (1008, "Maximum Connections Exceeded"),
            ProtocolError::MaxControlLine => (1008, "Maximum Control Line Exceeded"),
            ProtocolError::MaxPayload => (1009, "Maximum Message Payload Exceeded"),
            ProtocolError::StaleConnection => (1001, "Stale Connection"),
            ProtocolError::ClientError => (1002, "Parse Error"),
            ProtocolError::InvalidClientProtocol => (1002, "Bad Client Protocol Version"),
            ProtocolError::NoRespondersRequiresHeaders => (1011, "No Responders Requires Headers"),
            // the parser errors; the others do not end a connection
            _ => (1001, "Read Error"),
        }
    }
}

fn lossy(b: &[u8]) -> alloc::string::String {
    alloc::string::String::from_utf8_lossy(b).into_owned()
}

impl From<ParseError> for ProtocolError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::UnknownOperation => ProtocolError::UnknownOperation,
            ParseError::MaxControlLine => ProtocolError::MaxControlLine,
            ParseError::MaxPayload => ProtocolError::MaxPayload,
            ParseError::BadArguments => ProtocolError::MalformedArguments,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(t) => f.write_str(&t),
            None => f.write_str(match self {
                ProtocolError::MalformedArguments => "malformed protocol arguments",
                ProtocolError::MalformedConnect => "malformed CONNECT",
                ProtocolError::HeadersNotEnabled => "HPUB without headers enabled",
                ProtocolError::ClientError => "client sent -ERR",
                _ => "slow consumer",
            }),
        }
    }
}
