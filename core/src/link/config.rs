//! What a link exchanges with the server (subjects, identity, credentials) and its timing.

use alloc::string::String;
use alloc::vec::Vec;

use super::BadSubject;
use crate::json::Object;
use crate::subject::{matches, validate_subscribe};

/// What the link exchanges with the server.
#[derive(Debug, Clone, Default)]
pub struct LinkConfig {
    /// Subjects (wildcards allowed) whose local publishes go to the server.
    pub exports: Vec<String>,
    /// Subjects (wildcards allowed) the server's publishes on come into the local side.
    pub imports: Vec<String>,
    /// The local side's inbox prefix (`_INBOX.<token>`): replies to it come back over the
    /// link, and requests with such a reply are live (never kept in the outbox).
    pub inbox_prefix: String,
    /// Prefix of the `Nats-Msg-Id` values stamped on outgoing messages (unique per session).
    pub id_prefix: String,
    pub name: String,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// Drop the JetStream consumer deliveries (reply `$JS.ACK.…`) the server sends for a
    /// subscription they cannot be routed on locally (a wildcard one: they come under the
    /// stream's subject, so which local subscription they are for is unknown, and they would
    /// reach local subscribers of that subject as if published again). A tab's link to its
    /// bus's leader sets it; a delivery for a literal subscription is kept
    /// ([`super::Msg::route`]).
    pub skip_consumer_deliveries: bool,
}

/// The client library name the link reports in `CONNECT` (a server's `/connz` shows it).
pub const LANG: &str = "edgebus";

impl LinkConfig {
    /// Checks the subject lists.
    pub fn validate(&self) -> Result<(), BadSubject> {
        for s in self.exports.iter().chain(&self.imports) {
            validate_subscribe(s.as_bytes()).map_err(|error| BadSubject { subject: s.clone(), error })?;
        }
        Ok(())
    }

    pub fn is_exported(&self, subject: &[u8]) -> bool {
        self.exports.iter().any(|p| matches(p.as_bytes(), subject))
    }

    pub fn is_imported(&self, subject: &[u8]) -> bool {
        self.imports.iter().any(|p| matches(p.as_bytes(), subject))
    }

    /// Whether `reply` is one of the local side's own inboxes (live request/reply, never kept).
    pub fn is_own_inbox(&self, reply: &[u8]) -> bool {
        reply.len() > self.inbox_prefix.len()
            && reply.starts_with(self.inbox_prefix.as_bytes())
            && reply[self.inbox_prefix.len()] == b'.'
    }

    /// The subjects the link subscribes on the server: every import, and the inbox prefix
    /// unless an import already covers all of it (a server delivers a message once per
    /// matching subscription, so both would bring every reply twice; a tab's link to its
    /// leader imports `>`).
    pub fn interest(&self) -> impl Iterator<Item = String> + '_ {
        let mut inbox = self.inbox_prefix.clone();
        inbox.push_str(".>");
        // a pattern ending in `>` that matches `<prefix>.>` (the `>` read as a token)
        // matches every subject under the prefix
        let covered = self.imports.iter().any(|p| p.ends_with('>') && matches(p.as_bytes(), inbox.as_bytes()));
        self.imports.iter().cloned().chain((!covered).then_some(inbox))
    }

    /// The link's `CONNECT`: no echo (what the link publishes must never come back to it as
    /// an import), headers and no-responders on, credentials only when set.
    pub(super) fn connect_json(&self) -> String {
        let mut out = Vec::with_capacity(160);
        let mut o = Object::new(&mut out);
        o.bool("verbose", false)
            .bool("pedantic", false)
            .bool("headers", true)
            .bool("no_responders", true)
            .bool("echo", false)
            .uint("protocol", 1)
            .str("lang", LANG)
            .str("version", env!("CARGO_PKG_VERSION"))
            .str("name", &self.name);
        for (k, v) in [("user", &self.user), ("pass", &self.pass), ("auth_token", &self.token)] {
            if let Some(v) = v {
                o.str(k, v);
            }
        }
        o.end();
        String::from_utf8(out).unwrap_or_default()
    }
}

/// When the link pings, gives up and retries. Defaults are nats.js's (`pingInterval`,
/// `maxPingOut`, `timeout`) and the page's reconnect delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// A keepalive `PING` this often while connected.
    pub ping_interval_ms: u32,
    /// Keepalive pings left unanswered before the link counts as dead.
    pub max_ping_out: u32,
    /// How long an attempt may take from dialing to the handshake's `PONG`.
    pub connect_timeout_ms: u32,
    /// The backoff range between attempts ([`super::Backoff`]).
    pub reconnect_min_ms: u32,
    pub reconnect_max_ms: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            ping_interval_ms: 120_000,
            max_ping_out: 2,
            connect_timeout_ms: 20_000,
            reconnect_min_ms: 250,
            reconnect_max_ms: 5_000,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::subject::SubjectError;
    use alloc::vec;

    #[test]
    fn subjects_and_inboxes() {
        let c = LinkConfig {
            exports: vec!["orders.>".into()],
            imports: vec!["prices.>".into()],
            inbox_prefix: "_INBOX.page".into(),
            ..LinkConfig::default()
        };
        assert!(c.is_exported(b"orders.eu.1") && !c.is_exported(b"prices.x"));
        assert!(c.is_imported(b"prices.x") && !c.is_imported(b"orders.1"));
        assert!(
            c.is_own_inbox(b"_INBOX.page.7") && !c.is_own_inbox(b"_INBOX.pagex.7") && !c.is_own_inbox(b"_INBOX.page")
        );
        assert_eq!(c.interest().collect::<Vec<_>>(), vec!["prices.>", "_INBOX.page.>"]);
        for (imports, inbox_too) in [(">", false), ("_INBOX.>", false), ("*.page.>", false), ("_INBOX.page.*", true)] {
            let c = LinkConfig { imports: vec![imports.into()], ..c.clone() };
            assert_eq!(c.interest().any(|s| s == "_INBOX.page.>"), inbox_too, "{imports}");
        }
        let bad = LinkConfig { exports: vec!["a..b".into()], ..c.clone() }.validate().unwrap_err();
        assert_eq!(bad, BadSubject { subject: "a..b".into(), error: SubjectError::EmptyToken });
        assert!(c.validate().is_ok());
    }

    #[test]
    fn connect_carries_credentials_and_echo_off() {
        let c = LinkConfig { name: "n\"q".into(), token: Some("t".into()), ..LinkConfig::default() };
        let v: serde_json::Value = serde_json::from_str(&c.connect_json()).unwrap();
        assert_eq!(v["echo"], false);
        assert_eq!(v["headers"], true);
        assert_eq!(v["name"], "n\"q");
        assert_eq!(v["auth_token"], "t");
        assert!(v.get("user").is_none() && v.get("pass").is_none());
    }
}
