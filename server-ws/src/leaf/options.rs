//! `leafnodes { … }`: the remotes this server dials and the leaf port it accepts on.

use std::time::Duration;

/// The `leafnodes` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafOptions {
    /// The accepting side's listener (`host`/`listen`); empty = the client host.
    pub host: String,
    /// 0 = no leaf port; -1 = a random one.
    pub port: i32,
    /// `authorization { user, password | token }` for leaves that dial us.
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// The account accepted leaves live in (`authorization { account }`); default `$G`.
    pub account: Option<String>,
    /// The hubs this server dials.
    pub remotes: Vec<RemoteOptions>,
    /// Wait before dialling again after a round of failures (`reconnect`, default 1 s).
    pub reconnect: Option<Duration>,
}

/// One entry of `remotes`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteOptions {
    /// `url` / `urls`, each parsed by the core ([`edgebus_core::leaf::LeafUrl`]).
    pub urls: Vec<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// The local account the link lives in (`account`, default `$G`).
    pub account: Option<String>,
}

/// nats-server's default wait between reconnect rounds.
pub const DEFAULT_RECONNECT: Duration = Duration::from_secs(1);
/// The longest the wait between rounds grows to.
pub const MAX_RECONNECT: Duration = Duration::from_secs(30);
