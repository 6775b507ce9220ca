//! What goes wrong on a link, typed: hosts show the text, a server host may act on the kind.

use alloc::string::String;
use core::fmt;

use crate::proto::ParseError;
use crate::subject::SubjectError;

/// A subject list the link cannot subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSubject {
    pub subject: String,
    pub error: SubjectError,
}

impl fmt::Display for BadSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.error)
    }
}

/// Why a connection attempt failed or a connection ended ([`super::Link::last_error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// `-ERR` from the server (an authorization violation, a permission), as it was sent.
    Server(String),
    /// The server's bytes did not parse.
    Protocol(ParseError),
    /// No handshake `PONG` within the connect timeout.
    HandshakeTimeout { ms: u32 },
    /// This many keepalive pings went unanswered.
    Stale { pings: u32 },
    /// The socket closed (or failed to open) before the handshake, as the host describes it.
    Socket(String),
    /// The socket could not be created at all (a malformed URL).
    Dial(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Server(text) | LinkError::Socket(text) | LinkError::Dial(text) => f.write_str(text),
            LinkError::Protocol(e) => write!(f, "protocol error from server: {e:?}"),
            LinkError::HandshakeTimeout { ms } => write!(f, "no connection within {ms} ms"),
            LinkError::Stale { pings } => write!(f, "stale connection: {pings} pings unanswered"),
        }
    }
}
