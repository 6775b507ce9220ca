//! Server options: every knob the server honours, with nats-server's names and defaults.
//!
//! Options come from three places, applied in this order: built-in defaults, the config file
//! (`--config`, nats-server's format, see [`crate::conf`]), then command-line flags (see
//! [`crate::cli`]); a flag always wins over the file, as in nats-server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use edgebus_core::policy::permissions::PermissionsConfig;

use crate::ws::origin::AllowedOrigin;

/// One user allowed to connect. `password` may be a bcrypt hash (`$2a$…`, `$2b$…`, `$2y$…`),
/// as nats-server accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub password: String,
    /// Its `permissions` (or the authorization block's `default_permissions`); `None`: may
    /// publish and subscribe to anything.
    pub permissions: Option<PermissionsConfig>,
    /// The account it belongs to (`accounts { A: { users: […] } }`); `None`: `$G`.
    pub account: Option<String>,
}

impl User {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> User {
        User { username: username.into(), password: password.into(), permissions: None, account: None }
    }
}

/// One nkey user (`users: [ { nkey: "U…" } ]`): a client proves it holds the key by signing
/// the nonce of its `INFO` with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NkeyUser {
    /// The user's public nkey (`U…`), checked at start to be one.
    pub nkey: String,
    /// As [`User::permissions`].
    pub permissions: Option<PermissionsConfig>,
    /// As [`User::account`].
    pub account: Option<String>,
}

/// Who may connect. Nothing configured means anyone may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorization {
    /// `authorization { token: … }` / `--auth`.
    pub token: Option<String>,
    /// `authorization { user, password }` (`--user`/`--pass`) and `users: [ … ]` together.
    pub users: Vec<User>,
    /// The nkey users of the `users` list.
    pub nkeys: Vec<NkeyUser>,
    /// `authorization { timeout: N }` seconds; default 2 s (nats-server's AUTH_TIMEOUT).
    pub timeout: Duration,
    /// `no_auth_user`: the user a client that sends no credentials connects as.
    pub no_auth_user: Option<String>,
    /// `users` holds only a single `authorization { user, password }` (or `--user`), which
    /// nats-server keeps apart from a `users` list: a WebSocket user or token may replace it.
    pub single_user: bool,
}

impl Authorization {
    pub fn required(&self) -> bool {
        self.token.is_some() || !self.users.is_empty() || !self.nkeys.is_empty()
    }

    /// Whether users of a `users` list, of accounts, or nkey users are configured
    /// (nats-server's `Users`/`Nkeys`, which a single user is not part of).
    pub fn has_user_list(&self) -> bool {
        self.users.len() > usize::from(self.single_user) || !self.nkeys.is_empty()
    }
}

/// Operator mode (`operator`, `resolver: MEMORY`, `resolver_preload`, `system_account`):
/// clients authenticate with user JWTs vouched for by a trusted operator's accounts. The
/// JWTs are checked at start ([`crate::auth::jwt::Trust`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustOptions {
    /// The trusted operators' JWTs (read from their files).
    pub operators: Vec<String>,
    /// `resolver: MEMORY` was given (the only resolver edgebus has).
    pub memory_resolver: bool,
    /// `resolver_preload`: account public key → account JWT.
    pub preload: Vec<(String, String)>,
    pub system_account: Option<String>,
}

/// `websocket { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketOptions {
    pub host: String,
    /// 0 = WebSocket off; -1 = pick a random free port.
    pub port: i32,
    /// nats-server refuses to start a WebSocket listener without TLS unless `no_tls: true`
    /// ([`crate::conf::validate`]).
    pub no_tls: bool,
    /// `websocket { tls { … } }`: `wss://` (used even with `no_tls: true`, as nats-server).
    pub tls: crate::tls::TlsOptions,
    /// `same_origin: true`: a browser page may connect only from the origin it was served
    /// from (scheme, host and port of the request's `Host`).
    pub same_origin: bool,
    /// `allowed_origins`: when not empty, the only origins a browser page may connect from.
    pub allowed_origins: Vec<AllowedOrigin>,
    /// `authorization { … }` and `no_auth_user` of the block.
    pub auth: WsAuth,
    /// `handshake_timeout`: how long the upgrade (after TLS) may take before the connection
    /// is dropped; nats-server's default is 2 s.
    pub handshake_timeout: Duration,
    /// `headers { … }`: extra headers of the `101` answer, in the order written.
    pub headers: Vec<(String, String)>,
    /// `compression: true` (or `compress`): permessage-deflate with clients that offer it.
    pub compression: bool,
    /// `ping_interval`: the NATS ping interval for WebSocket connections instead of the
    /// top-level one (nats-server's `Websocket.PingInterval`; zero = not set).
    pub ping_interval: Duration,
}

/// `websocket { authorization { user, password | token, timeout }, no_auth_user }`: what
/// WebSocket clients authenticate with instead of the top-level authorization (nats-server's
/// "auth override": a user, a token or a `no_auth_user` replaces the top-level credentials
/// for WebSocket clients; a `timeout` alone only changes the auth timeout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsAuth {
    pub user: Option<String>,
    pub password: String,
    pub token: Option<String>,
    pub timeout: Option<Duration>,
    /// A user (or nkey) of the top-level `users` that a WebSocket client without credentials
    /// becomes.
    pub no_auth_user: Option<String>,
}

impl WsAuth {
    /// Whether WebSocket clients stop using the top-level credentials (nats-server's
    /// `authOverride`); their `INFO` then always says `auth_required`.
    pub fn overrides(&self) -> bool {
        self.user.is_some() || self.token.is_some() || self.no_auth_user.is_some()
    }

    /// The authorization WebSocket clients are checked against. A `no_auth_user` alone keeps
    /// the top-level users (the only ones it may name) and replaces only who an anonymous
    /// client becomes; a user or a token replaces everything (nats-server refuses them beside
    /// a top-level `users` list, see [`crate::conf::validate`]).
    pub fn authorization(&self, top: &Authorization) -> Authorization {
        let timeout = self.timeout.filter(|t| !t.is_zero()).unwrap_or(top.timeout);
        if self.user.is_some() || self.token.is_some() {
            return Authorization {
                token: self.token.clone(),
                users: self.user.iter().map(|u| User::new(u.clone(), self.password.clone())).collect(),
                nkeys: Vec::new(),
                timeout,
                no_auth_user: None,
                single_user: self.user.is_some(),
            };
        }
        let no_auth_user = self.no_auth_user.clone().or_else(|| top.no_auth_user.clone());
        Authorization { timeout, no_auth_user, ..top.clone() }
    }
}

/// `jetstream { … }` / `--jetstream` / `--store_dir`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JetStreamOptions {
    pub enabled: bool,
    pub store_dir: Option<PathBuf>,
    /// Bytes; 0 = no limit configured (the server picks one).
    pub max_memory_store: i64,
    pub max_file_store: i64,
    /// `jetstream { sync_interval: … }`: when file-stored messages are fsynced.
    pub sync_interval: SyncInterval,
    /// `jetstream { domain }`: the API is also served under `$JS.<domain>.API` (checked with
    /// the core's `jetstream::domain::validate` when read).
    pub domain: Option<String>,
}

/// nats-server's `sync_interval`. Between fsyncs, writes are already in the kernel (a crash
/// of the process loses nothing); only a power loss or kernel crash can lose the last
/// interval's worth. `Always` fsyncs before every publish is acknowledged, at a large cost
/// in throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncInterval {
    /// `sync_interval: always`.
    Always,
    /// `sync_interval: "2m"` (or a number of seconds).
    Every(Duration),
}

/// nats-server's `defaultSyncInterval`.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(120);

impl Default for SyncInterval {
    fn default() -> Self {
        SyncInterval::Every(SYNC_INTERVAL)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Client listener host (`host`, `net`, `listen`, `-a`, `--addr`). Default `0.0.0.0`.
    pub host: String,
    /// Client listener port (`port`, `listen`, `-p`). Default 4222; -1 = random.
    pub port: i32,
    /// Monitoring HTTP port (`http_port`, `-m`); 0 = off.
    pub http_port: i32,
    /// Monitoring host (`http`/`http_host`); defaults to `host`.
    pub http_host: Option<String>,
    pub max_payload: i32,
    pub max_pending: i64,
    pub max_control_line: i32,
    pub max_connections: i32,
    /// 0 = unlimited.
    pub max_subscriptions: i32,
    pub ping_interval: Duration,
    pub ping_max: i32,
    pub write_deadline: Duration,
    /// `lame_duck_duration`: the time over which a server in lame duck mode closes its clients.
    pub lame_duck_duration: Duration,
    /// `lame_duck_grace_period`: how long a server in lame duck mode waits before it starts
    /// closing clients, so several servers put in lame duck mode together do not trade clients.
    pub lame_duck_grace_period: Duration,
    pub authorization: Authorization,
    /// Operator mode; empty when no `operator` is configured.
    pub trust: TrustOptions,
    pub websocket: WebSocketOptions,
    pub jetstream: JetStreamOptions,
    /// `accounts { … }`: the configured accounts (`$G` is implicit).
    pub accounts: Vec<crate::accounts::AccountConfig>,
    /// `leafnodes { … }`: leaf remotes and the leaf port.
    pub leafnodes: crate::leaf::options::LeafOptions,
    /// `tls { … }` / `--tls*`: TLS on the client port.
    pub tls: crate::tls::TlsOptions,
    /// `server_name`; default: the generated server id.
    pub server_name: Option<String>,
    /// `-D` / `debug: true`.
    pub debug: bool,
    /// `-V` / `trace: true`.
    pub trace: bool,
    /// Warnings found while reading the config (unknown keys and the like), logged at start.
    pub warnings: Vec<String>,
}

pub const DEFAULT_PORT: i32 = 4222;
pub const DEFAULT_WS_PORT: i32 = 8080;
pub const MAX_PAYLOAD: i32 = 1024 * 1024;
pub const MAX_PENDING: i64 = 64 * 1024 * 1024;
pub const MAX_CONTROL_LINE: i32 = 4096;
pub const MAX_CONNECTIONS: i32 = 64 * 1024;
pub const PING_INTERVAL: Duration = Duration::from_secs(120);
pub const PING_MAX: i32 = 2;
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(2);
pub const WS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
pub const LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
pub const LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "0.0.0.0".into(),
            port: DEFAULT_PORT,
            http_port: 0,
            http_host: None,
            max_payload: MAX_PAYLOAD,
            max_pending: MAX_PENDING,
            max_control_line: MAX_CONTROL_LINE,
            max_connections: MAX_CONNECTIONS,
            max_subscriptions: 0,
            ping_interval: PING_INTERVAL,
            ping_max: PING_MAX,
            write_deadline: WRITE_DEADLINE,
            lame_duck_duration: LAME_DUCK_DURATION,
            lame_duck_grace_period: LAME_DUCK_GRACE_PERIOD,
            authorization: Authorization { timeout: AUTH_TIMEOUT, ..Default::default() },
            trust: TrustOptions::default(),
            websocket: WebSocketOptions {
                host: String::new(),
                port: 0,
                no_tls: false,
                tls: crate::tls::TlsOptions::default(),
                same_origin: false,
                allowed_origins: Vec::new(),
                auth: WsAuth::default(),
                handshake_timeout: WS_HANDSHAKE_TIMEOUT,
                headers: Vec::new(),
                compression: false,
                ping_interval: Duration::ZERO,
            },
            jetstream: JetStreamOptions::default(),
            accounts: Vec::new(),
            leafnodes: Default::default(),
            tls: crate::tls::TlsOptions::default(),
            server_name: None,
            debug: false,
            trace: false,
            warnings: Vec::new(),
        }
    }
}

impl Options {
    /// The address the client listener binds.
    pub fn client_addr(&self) -> Result<SocketAddr, String> {
        resolve(&self.host, self.port)
    }
}

/// Resolves `host:port`, turning -1 into 0 (the OS picks a port), as nats-server does.
pub fn resolve(host: &str, port: i32) -> Result<SocketAddr, String> {
    let port = if port < 0 { 0 } else { port };
    let port = u16::try_from(port).map_err(|_| format!("invalid port {port}"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = if host == "localhost" {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        host.parse().map_err(|_| format!("invalid host {host:?}"))?
    };
    Ok(SocketAddr::new(ip, port))
}
