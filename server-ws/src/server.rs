//! The running server: listeners, the state every connection shares, and shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use edgebus_core::proto::ServerInfo;
use edgebus_core::session::SessionConfig;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::accounts::Account;
use crate::auth::Authenticator;
use crate::client::Client;
use crate::conn;
use crate::js_disabled::NotEnabled;
use crate::options::Options;
use crate::transport::Kind;
use edgebus_core::jetstream::limits::{configured, StoreLimits};

/// Server-wide message counters, as `/varz` reports them.
#[derive(Default)]
pub struct Stats {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub slow_consumers: AtomicU64,
    /// Connections ended by a panic in their task (a bug; see `conn::serve`).
    pub connection_panics: AtomicU64,
    pub total_connections: AtomicU64,
}

/// State shared by every connection. The subscription trie sits behind a read-write lock that
/// is taken only on a match-cache miss (readers) or a subscription change (writers); the hot
/// path reads `genid` atomically and serves publishes from each connection's own cache.
pub struct Shared {
    /// The options the server started with; a reload changes only what has its own cell
    /// here (authenticators, certificates, `limits`).
    pub opts: Options,
    /// The limits a reload may change; read them here, not in `opts`.
    pub limits: crate::limits::LiveLimits,
    /// The leaf remotes being dialled; a reload adds and removes them.
    pub leaf_remotes: crate::leaf::Dialling,
    /// Credential checks and each user's compiled permissions; replaced by a reload.
    auth: RwLock<Arc<Authenticator>>,
    /// The same for WebSocket clients: the `websocket { authorization, no_auth_user }`
    /// override when there is one, else the top-level authorization (without certificate
    /// mapping: WebSocket clients present no client certificate here).
    ws_auth: RwLock<Arc<Authenticator>>,
    /// The TLS configurations new connections get; replaced by a reload.
    certs: RwLock<Arc<crate::tls::Certs>>,
    /// Counts authenticator replacements: a CONNECT decided by an older generation than the
    /// current one raced a reload and is refused (see `conn`).
    auth_generation: AtomicU64,
    pub server_id: String,
    pub server_name: String,
    pub started: Instant,
    pub started_at: SystemTime,
    /// The accounts, each with its subscription trie; `$G` when none is configured.
    pub accounts: crate::accounts::Accounts,
    pub clients: Mutex<HashMap<u64, Arc<Client>>>,
    pub next_cid: AtomicU64,
    pub stats: Stats,
    pub shutdown: Notify,
    /// Asks the running server to enter lame duck mode (`SIGUSR2`); see `lame_duck`.
    pub lame_duck: Notify,
    /// The addresses actually bound (ports may have been chosen by the OS).
    pub client_addr: Mutex<Option<SocketAddr>>,
    pub ws_addr: Mutex<Option<SocketAddr>>,
    pub http_addr: Mutex<Option<SocketAddr>>,
    /// The leaf port, when `leafnodes { port }` is set.
    pub leaf_addr: Mutex<Option<SocketAddr>>,
    /// Live leaf links (both roles), by connection id, for `/leafz` and `/varz`.
    pub leafs: Mutex<HashMap<u64, Arc<crate::leaf::LeafLink>>>,
    /// JetStream was enabled and started (INFO says `jetstream: true` only then).
    pub jetstream_running: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The authenticator for clients of the listener `kind`.
    pub fn authenticator(&self, kind: Kind) -> Arc<Authenticator> {
        match kind {
            Kind::Tcp => self.auth.read().clone(),
            Kind::WebSocket => self.ws_auth.read().clone(),
        }
    }

    /// The authenticators' generation (see `auth_generation`).
    pub fn auth_generation(&self) -> u64 {
        self.auth_generation.load(Ordering::Acquire)
    }

    /// Puts reloaded authenticators in place; returns the new generation.
    pub fn replace_authenticators(&self, tcp: Authenticator, ws: Authenticator) -> u64 {
        *self.auth.write() = Arc::new(tcp);
        *self.ws_auth.write() = Arc::new(ws);
        self.auth_generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The TLS configurations a connection opened now is served with.
    pub fn certs(&self) -> Arc<crate::tls::Certs> {
        self.certs.read().clone()
    }

    /// Puts reloaded TLS configurations in place, for connections opened from now on.
    pub fn replace_certs(&self, certs: crate::tls::Certs) {
        *self.certs.write() = Arc::new(certs);
    }

    pub fn session_config(&self, kind: Kind) -> SessionConfig {
        SessionConfig { limits: self.limits.parser(), auth_required: self.authenticator(kind).required() }
    }

    /// The `INFO` a new connection gets on the listener `kind`.
    pub fn info(&self, kind: Kind, client_id: u64, client_ip: String) -> ServerInfo {
        let (host, port) = match kind {
            Kind::Tcp => (self.opts.host.clone(), self.client_addr.lock().map_or(0, |a| a.port())),
            Kind::WebSocket => (self.opts.websocket.host.clone(), self.ws_addr.lock().map_or(0, |a| a.port())),
        };
        let tls_required = match kind {
            Kind::Tcp => self.opts.tls.enabled,
            Kind::WebSocket => self.opts.websocket.tls.enabled,
        };
        ServerInfo {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: edgebus_core::NATS_VERSION.into(),
            proto: 1,
            git_commit: String::new(),
            go: format!("edgebus {}", env!("CARGO_PKG_VERSION")),
            host,
            port,
            headers: true,
            // nats-server: a WebSocket override always announces it, even with a `no_auth_user`
            auth_required: match kind {
                Kind::WebSocket if self.opts.websocket.auth.overrides() => true,
                _ => self.authenticator(kind).info_auth_required(),
            },
            tls_required,
            // nats-server's WebSocket INFO carries the client port's `tls_verify` too
            tls_verify: self.opts.tls.enabled && self.opts.tls.verify,
            tls_available: kind == Kind::WebSocket && self.opts.websocket.tls.enabled,
            max_payload: self.limits.max_payload().into(),
            jetstream: self.jetstream_running.load(Ordering::Acquire),
            client_id,
            client_ip,
            api_lvl: if self.jetstream_running.load(Ordering::Acquire) { 4 } else { 0 },
            domain: match self.jetstream_running.load(Ordering::Acquire) {
                true => self.opts.jetstream.domain.clone().unwrap_or_default(),
                false => String::new(),
            },
            ..Default::default()
        }
    }

    pub fn subscription_count(&self) -> usize {
        self.accounts.subscription_count()
    }
}

/// A server that has bound its listeners; [`Server::run`] serves until shutdown.
pub struct Server {
    shared: Arc<Shared>,
    tcp: TcpListener,
    ws: Option<TcpListener>,
    http: Option<TcpListener>,
    leaf: Option<TcpListener>,
}

impl Server {
    /// Binds every configured listener, so that a caller knows at once whether the ports
    /// were free.
    pub async fn bind(mut opts: Options) -> std::io::Result<Server> {
        let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        // the command line has loaded it already; options built in code may not have
        opts.tls.load().map_err(|e| bad(e.to_string()))?;
        opts.websocket.tls.load().map_err(|e| bad(format!("websocket: {e}")))?;
        opts.leafnodes.load().map_err(bad)?;
        let tcp = listen(opts.client_addr().map_err(bad)?)?;
        let ws = if opts.websocket.port != 0 {
            let host = if opts.websocket.host.is_empty() { opts.host.clone() } else { opts.websocket.host.clone() };
            Some(listen(crate::options::resolve(&host, opts.websocket.port).map_err(bad)?)?)
        } else {
            None
        };
        let http = if opts.http_port != 0 {
            let host = opts.http_host.clone().unwrap_or_else(|| opts.host.clone());
            Some(TcpListener::bind(crate::options::resolve(&host, opts.http_port).map_err(bad)?).await?)
        } else {
            None
        };
        let leaf = crate::leaf::bind(&opts).await?;
        let auth = crate::auth::Authenticator::new(&opts.authorization)
            .map_err(|e| bad(e.to_string()))?
            .with_trust(&opts.trust)
            .map_err(bad)?
            .with_cert_map(opts.tls.verify_and_map);
        let ws_auth = crate::auth::Authenticator::new(&opts.websocket.auth.authorization(&opts.authorization))
            .map_err(|e| bad(e.to_string()))?
            .with_trust(&opts.trust)
            .map_err(bad)?;
        let mut account_configs = opts.accounts.clone();
        account_configs.extend(
            auth.trusted_accounts()
                .into_iter()
                .map(|name| crate::accounts::AccountConfig { name, ..Default::default() }),
        );
        let accounts = crate::accounts::Accounts::new(&account_configs).map_err(|e| bad(e.to_string()))?;
        let server_id = new_server_id();
        let shared = Arc::new(Shared {
            auth: RwLock::new(Arc::new(auth)),
            ws_auth: RwLock::new(Arc::new(ws_auth)),
            auth_generation: AtomicU64::new(0),
            certs: RwLock::new(Arc::new(crate::tls::Certs::of(&opts))),
            server_name: opts.server_name.clone().unwrap_or_else(|| server_id.clone()),
            server_id,
            started: Instant::now(),
            started_at: SystemTime::now(),
            accounts,
            clients: Mutex::new(HashMap::new()),
            next_cid: AtomicU64::new(1),
            stats: Stats::default(),
            shutdown: Notify::new(),
            lame_duck: Notify::new(),
            client_addr: Mutex::new(tcp.local_addr().ok()),
            ws_addr: Mutex::new(ws.as_ref().and_then(|l| l.local_addr().ok())),
            http_addr: Mutex::new(http.as_ref().and_then(|l| l.local_addr().ok())),
            leaf_addr: Mutex::new(leaf.as_ref().and_then(|l| l.local_addr().ok())),
            leafs: Mutex::new(HashMap::new()),
            jetstream_running: std::sync::atomic::AtomicBool::new(false),
            limits: crate::limits::LiveLimits::new(&opts),
            leaf_remotes: crate::leaf::Dialling::default(),
            opts,
        });
        Ok(Server { shared, tcp, ws, http, leaf })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves until `stop` resolves, then closes every connection after flushing what it has
    /// buffered. Asked for lame duck mode ([`Shared::lame_duck`]) instead, it stops accepting
    /// clients, moves them away over the lame duck duration, and then shuts down the same way
    /// (`stop` still cuts that short).
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let Server { shared, tcp, ws, http, leaf } = self;
        for w in &shared.opts.warnings {
            warn!("{w}");
        }
        if let Some(a) = *shared.client_addr.lock() {
            info!("Listening for client connections on {a}");
        }
        // JetStream is up (streams recovered, API subscribed) before the first client can
        // connect, as in nats-server: a client must never see "no responders" from it.
        let (jetstream, not_enabled) = start_jetstream(&shared).await;
        let mut accepting = vec![tokio::spawn(accept_loop(shared.clone(), tcp, Kind::Tcp))];
        let mut tasks = Vec::new();
        if let Some(ws) = ws {
            if let Some(a) = *shared.ws_addr.lock() {
                let scheme = if shared.opts.websocket.tls.enabled { "wss" } else { "ws" };
                info!("Listening for websocket clients on {scheme}://{a}");
            }
            accepting.push(tokio::spawn(accept_loop(shared.clone(), ws, Kind::WebSocket)));
        }
        if let Some(http) = http {
            if let Some(a) = *shared.http_addr.lock() {
                info!("Starting http monitor on http://{a}");
            }
            tasks.push(tokio::spawn(crate::monitor::serve(shared.clone(), http)));
        }
        if let Some(leaf) = leaf {
            if let Some(a) = *shared.leaf_addr.lock() {
                info!("Listening for leafnode connections on {a}");
            }
            tasks.push(tokio::spawn(crate::leaf::accept_loop(shared.clone(), leaf)));
        }
        for r in &shared.opts.leafnodes.remotes {
            shared.leaf_remotes.start(&shared, r.clone());
        }
        tasks.push(tokio::spawn(crate::trim::when_quiet(shared.clone())));
        info!(server_id = %shared.server_id, "Server is ready");
        tokio::pin!(stop);
        let lame_duck = tokio::select! {
            _ = &mut stop => false,
            _ = shared.lame_duck.notified() => true,
        };
        // dropping the accept tasks closes the listeners: new clients are refused from here
        for t in &accepting {
            t.abort();
        }
        if lame_duck {
            info!("Entering lame duck mode, stop accepting new clients");
            tokio::select! {
                _ = &mut stop => {}
                _ = crate::lame_duck::drain(&shared) => {}
            }
        }
        info!("Initiating shutdown");
        for t in &tasks {
            t.abort();
        }
        shared.leaf_remotes.abort_all();
        for n in &not_enabled {
            n.stop();
        }
        let _ = tokio::task::spawn_blocking(move || jetstream.into_iter().for_each(|js| js.stop())).await;
        let mut clients: Vec<Arc<Client>> = shared.clients.lock().values().cloned().collect();
        clients.extend(shared.leafs.lock().values().map(|l| l.client.clone()));
        for c in &clients {
            c.close(None);
        }
        // Give writers a moment to flush; connections that still hang are dropped with the
        // runtime.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while !shared.clients.lock().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        info!("Server exiting");
    }
}

/// Connections the kernel completes before the server accepts them. The default of std and
/// tokio (128) overflows when hundreds of clients connect at once (a fleet reconnecting after
/// an outage): the kernel then drops their handshake's last ACK, the client believes it is
/// connected and waits for an INFO that comes only after its retransmissions, seconds later.
/// nats-server listens with 4096 too (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a client listener with [`LISTEN_BACKLOG`], reusing the address as std does on Unix
/// (a restarted server can bind while old connections are in TIME_WAIT).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, kind: Kind) {
    let mut backoff = std::time::Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = std::time::Duration::from_millis(10);
                let _ = stream.set_nodelay(true);
                tokio::spawn(conn::serve(shared.clone(), stream, peer, kind));
            }
            Err(e) => {
                // Typically out of file descriptors: back off rather than spin.
                warn!("accept error: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
            }
        }
    }
}

/// Starts JetStream where it is enabled: in `$G` when no accounts are configured, else in
/// each account that enables it, one engine per account (nats-server: with accounts, only
/// those with `jetstream: enabled` have it). The other accounts get nats-server's "JetStream
/// not enabled for account" answers while any engine runs.
async fn start_jetstream(shared: &Arc<Shared>) -> (Vec<crate::jetstream::Handle>, Vec<Arc<NotEnabled>>) {
    let opts = &shared.opts;
    if !opts.jetstream.enabled {
        return (Vec::new(), Vec::new());
    }
    let server_limits = (opts.jetstream.max_memory_store, opts.jetstream.max_file_store);
    let wanted: Vec<(Arc<Account>, StoreLimits)> = if opts.accounts.is_empty() {
        vec![(shared.accounts.global().clone(), StoreLimits::from_config(server_limits.0, server_limits.1))]
    } else {
        opts.accounts
            .iter()
            .filter_map(|c| {
                let js = c.jetstream?;
                let pick = |own: i64, server: i64| if own > 0 { own } else { server };
                let limits = StoreLimits {
                    max_streams: configured(js.max_streams),
                    max_consumers: configured(js.max_consumers),
                    max_ack_pending: configured(js.max_ack_pending),
                    memory_max_stream_bytes: configured(js.memory_max_stream_bytes),
                    storage_max_stream_bytes: configured(js.store_max_stream_bytes),
                    max_bytes_required: js.max_bytes_required,
                    account_memory: configured(js.max_memory),
                    account_file: configured(js.max_file),
                    ..StoreLimits::from_config(pick(js.max_memory, server_limits.0), pick(js.max_file, server_limits.1))
                };
                shared.accounts.named(&c.name).map(|a| (a.clone(), limits))
            })
            .collect()
    };
    let mut handles = Vec::new();
    let asked = wanted.len();
    for (account, limits) in wanted {
        let sh = shared.clone();
        let name = account.name.clone();
        let started = tokio::task::spawn_blocking(move || {
            open_storage(&sh.opts, &account.name).and_then(|s| crate::jetstream::start(sh.clone(), account, limits, s))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match started {
            Ok(h) => handles.push(h),
            Err(e) => tracing::error!("JetStream could not start for account {name}: {e}"),
        }
    }
    // every engine asked for failed (logged above): no JetStream at all, as before accounts
    if handles.is_empty() && asked > 0 {
        return (handles, Vec::new());
    }
    shared.jetstream_running.store(true, Ordering::Release);
    let not_enabled = shared
        .accounts
        .iter()
        .filter(|a| a.jetstream_stats.lock().is_none())
        .map(|a| NotEnabled::start(shared.clone(), a.clone()))
        .collect();
    (handles, not_enabled)
}

/// The storage for `account`'s file-backed streams, under `store_dir` (default: the system
/// temp dir, as nats-server does), with its interval fsync running on a thread of its own.
fn open_storage(
    opts: &Options,
    account: &str,
) -> std::io::Result<Box<dyn edgebus_core::jetstream::store::Storage + Send>> {
    use crate::filestore::{FileStorage, FileStoreConfig};
    use crate::options::SyncInterval;
    let dir = opts.jetstream.store_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("nats"));
    let storage = FileStorage::for_account(&dir, account, FileStoreConfig::from_options(&opts.jetstream))
        .map_err(|e| std::io::Error::other(format!("store_dir {}: {e}", dir.display())))?;
    info!("JetStream storage of account {account} in {}", storage.streams_dir().display());
    if let SyncInterval::Every(every) = opts.jetstream.sync_interval {
        let handle = storage.sync_handle();
        std::thread::Builder::new().name("jetstream-sync".into()).spawn(move || loop {
            std::thread::sleep(every);
            if let Err(e) = handle.sync_all() {
                warn!("JetStream sync: {e}");
            }
        })?;
    }
    Ok(Box::new(storage))
}

/// A 56-character id in the shape of nats-server's (a public nkey: `N` + base32).
fn new_server_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::with_capacity(56);
    id.push('N');
    for _ in 0..55 {
        id.push(ALPHABET[fastrand::usize(..ALPHABET.len())] as char);
    }
    id
}
