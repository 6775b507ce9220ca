//! The rules a server applies to one client connection once its protocol has been parsed:
//! what `CONNECT` changes, what a `SUB` or `UNSUB` is answered, who may receive a message, and
//! who is told that nobody did.
//!
//! Every host decides with these functions: the single-threaded [`Broker`](crate::broker)
//! (the page, the core's tests) and the native server's connection tasks, whose fast path
//! keeps its own data structures (atomics, per-connection caches) but asks the same questions
//! here. Two copies of these rules drifted once (a requester with `echo: false` got no
//! no-responders status from the server), which is why they live in one place.
//!
//! The session ([`crate::session`]) owns the rules that need only the byte stream (`+OK` for
//! `PUB`/`UNSUB`/`CONNECT`, pedantic checks, reserved subjects); this module owns the ones that
//! need the host's state (its subscriptions, its credentials, its routing result).

use alloc::sync::Arc;
use bytes::{Bytes, BytesMut};

pub mod accounts;
pub mod permissions;
use permissions::Permissions;

use crate::proto::{ConnectOptions, Headers, ProtocolError, ServerInfo, OK};
use crate::sublist::MatchResult;

/// How a connection asked to be served, from its `CONNECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conduct {
    /// `+OK` after every accepted operation.
    pub verbose: bool,
    /// Receives its own messages when it subscribes to what it publishes.
    pub echo: bool,
    /// Understands `HMSG`; without it, headers are stripped from deliveries.
    pub headers: bool,
    /// Wants the 503 status when a request reached nobody.
    pub no_responders: bool,
}

impl Conduct {
    /// nats-server's defaults for a connection that has not sent `CONNECT` yet.
    pub const BEFORE_CONNECT: Conduct = Conduct { verbose: true, echo: true, headers: false, no_responders: false };

    /// An in-process connection (the page's API, the JetStream engine): never verbose, with
    /// headers, no-responders and echo on.
    pub const LOCAL: Conduct = Conduct { verbose: false, echo: true, headers: true, no_responders: true };

    pub fn of(opts: &ConnectOptions) -> Conduct {
        Conduct { verbose: opts.verbose, echo: opts.echo, headers: opts.headers, no_responders: opts.no_responders }
    }
}

impl Default for Conduct {
    fn default() -> Self {
        Conduct::BEFORE_CONNECT
    }
}

/// What a host's credential check decided about a `CONNECT`.
#[derive(Debug, Clone)]
pub enum Admission {
    Refused,
    /// Let in, with the user's permissions if it has any.
    Admitted(Option<Arc<Permissions>>),
}

/// Accepts a `CONNECT` whose credentials `authorized` vouches for (the host checks them: a
/// token, a bcrypt hash, nothing in the page). A refusal ends the connection.
pub fn connect(opts: &ConnectOptions, authorized: bool) -> Result<Conduct, ProtocolError> {
    if authorized {
        Ok(Conduct::of(opts))
    } else {
        Err(ProtocolError::AuthorizationViolation)
    }
}

/// The `INFO` nats-server sends after the `PONG` that answers a protocol-1 client's first
/// `PING`: the connection's own `INFO`, marked as such.
pub fn connect_info(mut info: ServerInfo) -> ServerInfo {
    info.connect_info = true;
    info.remote_account = "$G".into();
    info
}

/// Writes the `+OK` a verbose client gets for a `PUB` that its permissions allowed:
/// nats-server sends it after the permission check and before routing.
pub fn publish_accepted(conduct: Conduct, out: &mut BytesMut) {
    if conduct.verbose {
        out.extend_from_slice(OK);
    }
}

/// What became of a `SUB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubOutcome {
    Added,
    /// The sid already names a live subscription of the connection. nats-server keeps the
    /// first one and still answers `+OK`.
    SidInUse,
    /// The connection holds `max_subscriptions` already.
    TooMany,
    /// The trie refused the subject or queue name.
    InvalidSubject,
}

impl SubOutcome {
    /// The answers that are due before the subscription touches the trie: `live` is how many
    /// subscriptions the connection holds, `max` the limit (0: none).
    pub fn precheck(sid_in_use: bool, live: usize, max: usize) -> Option<SubOutcome> {
        if sid_in_use {
            Some(SubOutcome::SidInUse)
        } else if max > 0 && live >= max {
            Some(SubOutcome::TooMany)
        } else {
            None
        }
    }

    /// Writes what the client is told: `+OK` when verbose for an added (or kept) subscription,
    /// else the `-ERR` (which leaves the connection open).
    pub fn answer(self, conduct: Conduct, out: &mut BytesMut) {
        match self {
            SubOutcome::Added | SubOutcome::SidInUse => {
                if conduct.verbose {
                    out.extend_from_slice(OK);
                }
            }
            SubOutcome::TooMany => ProtocolError::MaxSubscriptions.write(out),
            SubOutcome::InvalidSubject => ProtocolError::InvalidSubject.write(out),
        }
    }
}

/// What an `UNSUB sid [max]` does to a subscription that has had `delivered` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscribe {
    Now,
    /// Keep it until it has had this many messages in all.
    After(u64),
}

impl Unsubscribe {
    pub fn of(max: Option<u64>, delivered: u64) -> Unsubscribe {
        match max {
            Some(max) if max > 0 && delivered < max => Unsubscribe::After(max),
            _ => Unsubscribe::Now,
        }
    }
}

/// Whether a subscription owned by the publishing connection (`own`) may receive its message,
/// for a publisher whose `CONNECT` said `echo`.
pub fn echo_allows(echo: bool, own: bool) -> bool {
    echo || !own
}

/// A delivery counted against an auto-unsubscribe limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Deliver,
    /// Deliver: this is the subscription's last message, remove it.
    DeliverLast,
    /// The subscription has had its `max` already (it is on its way out).
    Refuse,
}

impl Count {
    /// `nth` counts this delivery (1 for the first), `max` is the limit (0: none).
    pub fn of(nth: u64, max: u64) -> Count {
        if max == 0 || nth < max {
            Count::Deliver
        } else if nth == max {
            Count::DeliverLast
        } else {
            Count::Refuse
        }
    }
}

/// Whether a publish that reached `delivered` subscriptions earns its publisher the
/// no-responders status.
pub fn owes_no_responders(conduct: Conduct, delivered: usize, reply: Option<&[u8]>) -> bool {
    delivered == 0 && conduct.headers && conduct.no_responders && reply.is_some()
}

/// Where the no-responders status goes: the publisher's own first plain subscription that
/// matches the reply subject (nats-server's `subForReply`), and nowhere else. It is written
/// straight to the publisher, so echo does not apply, nobody else subscribed to the reply
/// subject sees it, and it does not count against the subscription's auto-unsubscribe limit.
pub fn no_responders_target<T>(reply_match: &MatchResult<T>, own: impl Fn(&T) -> bool) -> Option<&T> {
    reply_match.plain.iter().find(|s| own(s))
}

/// The header block of the no-responders status: `NATS/1.0 503` with the subject that nobody
/// listened on in `Nats-Subject` (as nats-server 2.14 sends it).
pub fn no_responders_headers(subject: &[u8]) -> Bytes {
    let mut h = Headers::with_status(503, None);
    h.append("Nats-Subject", &alloc::string::String::from_utf8_lossy(subject));
    h.to_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sublist::Sublist;

    #[test]
    fn subscribe_answers() {
        let quiet = Conduct { verbose: false, ..Conduct::LOCAL };
        let mut out = BytesMut::new();
        assert_eq!(SubOutcome::precheck(true, 0, 1), Some(SubOutcome::SidInUse));
        assert_eq!(SubOutcome::precheck(false, 1, 1), Some(SubOutcome::TooMany));
        assert_eq!(SubOutcome::precheck(false, 5, 0), None);
        SubOutcome::SidInUse.answer(Conduct::BEFORE_CONNECT, &mut out);
        SubOutcome::Added.answer(quiet, &mut out);
        SubOutcome::TooMany.answer(quiet, &mut out);
        SubOutcome::InvalidSubject.answer(Conduct::BEFORE_CONNECT, &mut out);
        assert_eq!(&out[..], b"+OK\r\n-ERR 'maximum subscriptions exceeded'\r\n-ERR 'Invalid Subject'\r\n");
    }

    #[test]
    fn unsubscribe_and_counting() {
        assert_eq!(Unsubscribe::of(None, 3), Unsubscribe::Now);
        assert_eq!(Unsubscribe::of(Some(0), 0), Unsubscribe::Now);
        assert_eq!(Unsubscribe::of(Some(3), 3), Unsubscribe::Now);
        assert_eq!(Unsubscribe::of(Some(3), 1), Unsubscribe::After(3));
        assert_eq!(Count::of(1, 0), Count::Deliver);
        assert_eq!(Count::of(1, 2), Count::Deliver);
        assert_eq!(Count::of(2, 2), Count::DeliverLast);
        assert_eq!(Count::of(3, 2), Count::Refuse);
    }

    #[test]
    fn no_responders_go_to_the_publisher_only_whatever_echo_says() {
        let quiet = Conduct { echo: false, ..Conduct::LOCAL };
        assert!(owes_no_responders(quiet, 0, Some(b"r")));
        assert!(!owes_no_responders(quiet, 1, Some(b"r")));
        assert!(!owes_no_responders(quiet, 0, None));
        assert!(!owes_no_responders(Conduct::BEFORE_CONNECT, 0, Some(b"r")));
        let mut sl = Sublist::new();
        sl.insert(b"_INBOX.>", None, (2, 1)).unwrap();
        sl.insert(b"_INBOX.a.*", Some(b"q"), (1, 1)).unwrap();
        sl.insert(b"_INBOX.a.*", None, (1, 2)).unwrap();
        let m = sl.matches(b"_INBOX.a.1");
        assert_eq!(no_responders_target(&m, |(conn, _)| *conn == 1), Some(&(1, 2)), "plain subscriptions only");
        assert_eq!(no_responders_target(&m, |(conn, _)| *conn == 3), None);
        assert!(!echo_allows(false, true));
        assert!(echo_allows(false, false));
        assert!(echo_allows(true, true));
    }

    #[test]
    fn no_responders_bytes() {
        assert_eq!(&no_responders_headers(b"nobody.home")[..], b"NATS/1.0 503\r\nNats-Subject: nobody.home\r\n\r\n");
    }

    #[test]
    fn connect_and_connect_info() {
        let opts = ConnectOptions::parse(br#"{"verbose":false,"echo":false,"headers":true}"#).unwrap();
        let c = connect(&opts, true).unwrap();
        assert!(!c.verbose && !c.echo && c.headers && !c.no_responders);
        assert_eq!(connect(&opts, false), Err(ProtocolError::AuthorizationViolation));
        let info = connect_info(ServerInfo::default());
        assert!(info.connect_info);
        assert_eq!(info.remote_account, "$G");
    }
}
