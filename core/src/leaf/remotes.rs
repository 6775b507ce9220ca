//! A leaf remote's URLs: reading them (credentials may sit in the URL), rotating through them
//! and the hub's gossiped `leafnode_urls`, and the reconnect schedule between full rounds.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::link::Backoff;

/// How a URL asks to be dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `nats-leaf://` or `nats://`: plain TCP (TLS if the hub requires it).
    Plain,
    /// `tls://`: TLS from the start.
    Tls,
    /// `ws://`.
    Ws,
    /// `wss://`.
    Wss,
}

/// One remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// `user:pass@`, or `token@` (the user with no password).
    pub user: Option<String>,
    pub pass: Option<String>,
}

/// Why a remote URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    Scheme(String),
    Host,
    Port,
}

impl core::fmt::Display for UrlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UrlError::Scheme(s) => write!(f, "unsupported leafnode URL scheme {s:?}"),
            UrlError::Host => f.write_str("leafnode URL has no host"),
            UrlError::Port => f.write_str("leafnode URL has an invalid port"),
        }
    }
}

/// The leaf port nats-server listens on by default.
pub const DEFAULT_LEAF_PORT: u16 = 7422;

impl LeafUrl {
    /// Reads `scheme://[user[:pass]@]host[:port][/path]`; a bare `host:port` is plain.
    pub fn parse(url: &str) -> Result<LeafUrl, UrlError> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => (String::from("nats-leaf"), url),
        };
        let scheme = match scheme.as_str() {
            "nats-leaf" | "nats" => Scheme::Plain,
            "tls" => Scheme::Tls,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            _ => return Err(UrlError::Scheme(scheme)),
        };
        let rest = rest.split('/').next().unwrap_or("");
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (user, pass) = match auth {
            Some(a) => match a.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(a.to_string()), None),
            },
            None => (None, None),
        };
        let default_port = match scheme {
            Scheme::Ws => 80,
            Scheme::Wss => 443,
            _ => DEFAULT_LEAF_PORT,
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or(UrlError::Host)?;
            (h, p.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::Host);
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| UrlError::Port)?,
            None => default_port,
        };
        Ok(LeafUrl { scheme, host: host.to_string(), port, user, pass })
    }

    /// `host:port`, as gossip names URLs.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            alloc::format!("[{}]:{}", self.host, self.port)
        } else {
            alloc::format!("{}:{}", self.host, self.port)
        }
    }
}

/// A remote's URLs in dialling order: the configured ones, then those the hub gossiped
/// (with the scheme and credentials of the first configured URL), each tried once per
/// round; a round that reached nobody waits [`Backoff`] before the next.
#[derive(Debug, Clone)]
pub struct Remotes {
    configured: Vec<LeafUrl>,
    gossiped: Vec<LeafUrl>,
    next: usize,
    tried_in_round: usize,
    backoff: Backoff,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Dial this URL now.
    Dial(LeafUrl),
    /// Every URL failed this round: wait this long (ms), then ask again.
    Wait(u32),
}

impl Remotes {
    /// `reconnect_ms` is the remote's `reconnect` (nats-server's default 1 s), the first
    /// wait between rounds; later rounds wait longer, up to `max_ms`.
    pub fn new(configured: Vec<LeafUrl>, reconnect_ms: u32, max_ms: u32) -> Self {
        Remotes {
            configured,
            gossiped: Vec::new(),
            next: 0,
            tried_in_round: 0,
            backoff: Backoff::new(reconnect_ms, max_ms),
        }
    }

    fn all(&self) -> impl Iterator<Item = &LeafUrl> {
        self.configured.iter().chain(self.gossiped.iter())
    }

    fn len(&self) -> usize {
        self.configured.len() + self.gossiped.len()
    }

    /// The hub's `leafnode_urls` (`host:port`): the ones not configured already are added.
    pub fn gossip(&mut self, urls: &[String]) {
        let Some(template) = self.configured.first().cloned() else {
            return;
        };
        for u in urls {
            let Ok(parsed) = LeafUrl::parse(u) else {
                continue;
            };
            let url = LeafUrl { host: parsed.host, port: parsed.port, ..template.clone() };
            if !self.all().any(|k| k.host == url.host && k.port == url.port) {
                self.gossiped.push(url);
            }
        }
    }

    /// The next attempt; `random` in `[0, 1)` for the jitter.
    pub fn next_attempt(&mut self, random: f64) -> Attempt {
        let n = self.len();
        if n == 0 {
            return Attempt::Wait(self.backoff.next_delay(random));
        }
        if self.tried_in_round >= n {
            self.tried_in_round = 0;
            return Attempt::Wait(self.backoff.next_delay(random));
        }
        let i = self.next % n;
        self.next = (i + 1) % n;
        self.tried_in_round += 1;
        let url = self.all().nth(i).cloned();
        match url {
            Some(u) => Attempt::Dial(u),
            None => Attempt::Wait(self.backoff.next_delay(random)),
        }
    }

    /// A connection got through: the next outage starts with a fresh round and the shortest
    /// wait, going on through the URLs from where the rotation stands.
    pub fn connected(&mut self) {
        self.tried_in_round = 0;
        self.backoff.reset();
    }
}
