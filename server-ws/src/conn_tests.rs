//! A connection's task over a real socket: what a panic in it leaves behind, and where the
//! credential check runs (a client's and a leaf's).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::tests::{BCRYPT_ARRIVED, BCRYPT_GATE};
use crate::options::{Options, User};
use crate::server::{Server, Shared};

/// Publishing on this subject panics the publishing connection's task (tests only).
const PANIC_SUBJECT: &[u8] = b"$TEST.PANIC";

pub(super) fn panic_hook(subject: &[u8]) {
    assert!(subject != PANIC_SUBJECT, "test hook: a panic in a connection task");
}

const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\n";

async fn start(mut opts: Options) -> (Arc<Shared>, SocketAddr) {
    opts.host = "127.0.0.1".into();
    opts.port = -1;
    let server = Server::bind(opts).await.unwrap();
    let shared = server.shared().clone();
    let addr = shared.client_addr.lock().unwrap();
    tokio::spawn(server.run(std::future::pending()));
    (shared, addr)
}

/// A raw client: bytes in, bytes out, every wait bounded so a broken server fails the test.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let mut r = Raw { s: TcpStream::connect(addr).await.unwrap(), buf: Vec::new() };
        assert!(r.until(b"\r\n").await.starts_with(b"INFO {"));
        r
    }

    async fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).await.unwrap();
    }

    /// Everything up to and including `token`, or None at EOF.
    async fn read_to(&mut self, token: &[u8]) -> Option<Vec<u8>> {
        let fut = async {
            loop {
                if let Some(i) = self.buf.windows(token.len()).position(|w| w == token) {
                    let rest = self.buf.split_off(i + token.len());
                    return Some(std::mem::replace(&mut self.buf, rest));
                }
                let mut chunk = [0u8; 4096];
                match self.s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), fut).await.unwrap()
    }

    async fn until(&mut self, token: &[u8]) -> Vec<u8> {
        let got = self.read_to(token).await;
        got.unwrap_or_else(|| panic!("EOF before {:?}: {:?}", lossy(token), lossy(&self.buf)))
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Waits (bounded) until `done` holds.
async fn eventually(mut done: impl FnMut() -> bool) {
    let wait = async {
        while !done() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait).await.unwrap();
}

/// The victim's read delivers to `other` before the panic: that delivery must still be
/// written. The server runs on a runtime of its own (see [`Apart`]), so a server thread
/// blocked on a lock fails the test rather than hanging it.
#[tokio::test]
async fn a_panic_in_a_connection_task_closes_it_tears_it_down_and_is_counted() {
    let apart =
        Apart(Some(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()));
    let (shared, addr) = apart.0.as_ref().unwrap().spawn(start(Options::default())).await.unwrap();
    let mut victim = Raw::connect(addr).await;
    victim.send(CONNECT).await;
    victim.send(b"SUB foo 1\r\nSUB bar.> q 2\r\nPING\r\n").await;
    victim.until(b"PONG\r\n").await;
    let mut other = Raw::connect(addr).await;
    other.send(CONNECT).await;
    other.send(b"SUB other 9\r\nPING\r\n").await;
    other.until(b"PONG\r\n").await;
    assert_eq!((shared.subscription_count(), shared.clients.lock().len()), (3, 2));

    victim.send(b"PUB other 1\r\nv\r\nPUB $TEST.PANIC 2\r\nhi\r\n").await;
    assert_eq!(victim.read_to(b"never").await, None, "the connection is closed");
    eventually(|| shared.clients.lock().len() == 1).await;
    assert_eq!(shared.subscription_count(), 1, "the victim's subscriptions left the trie");
    assert_eq!(shared.stats.connection_panics.load(Ordering::Relaxed), 1);
    assert_eq!(crate::monitor::varz(&shared)["connection_panics"], 1);

    // everyone else is served as before
    other.send(b"PUB foo 1\r\nx\r\nPUB other 1\r\ny\r\n").await;
    let got = lossy(&other.until(b"y\r\n").await);
    assert!(got.ends_with("MSG other 9 1\r\nv\r\nMSG other 9 1\r\ny\r\n"), "{got}");
}

/// The tests that hold [`BCRYPT_GATE`] and count arrivals at it run one at a time.
static GATE_TESTS: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// `#[tokio::test]` runs every task on one thread: if bcrypt ran there while the gate is
/// held, nobody could accept the next connection (so the gate is held across awaits on
/// purpose).
#[allow(clippy::await_holding_lock)]
#[tokio::test]
async fn bcrypt_runs_on_the_blocking_pool_and_nothing_after_connect_runs_before_it_is_decided() {
    let _serial = GATE_TESTS.lock();
    let arrived = BCRYPT_ARRIVED.load(Ordering::SeqCst);
    let mut opts = Options::default();
    opts.authorization.users = vec![User::new("alice", bcrypt::hash("gated:s3cret", 4).unwrap())];
    let (shared, addr) = start(opts).await;

    let gate = BCRYPT_GATE.write();
    let mut alice = Raw::connect(addr).await;
    alice.send(b"CONNECT {\"user\":\"alice\",\"pass\":\"gated:s3cret\",\"verbose\":false,\"protocol\":1}\r\n").await;
    alice.send(b"SUB foo 1\r\nPING\r\n").await;
    let mut mallory = Raw::connect(addr).await;
    mallory.send(b"CONNECT {\"user\":\"alice\",\"pass\":\"gated:guess\",\"verbose\":false,\"protocol\":1}\r\n").await;
    mallory.send(b"SUB foo 2\r\nPING\r\n").await;
    // both checks wait at the gate, and the async thread still serves a new connection
    eventually(|| BCRYPT_ARRIVED.load(Ordering::SeqCst) == arrived + 2).await;
    let late = Raw::connect(addr).await;
    drop(late);
    drop(gate);

    alice.until(b"PONG\r\n").await;
    let refused = mallory.read_to(b"never").await;
    assert_eq!(refused, None);
    assert_eq!(lossy(&mallory.buf), "-ERR 'Authorization Violation'\r\n", "no PONG, the SUB never ran");
    // the SUB that followed alice's CONNECT was processed after it: alice receives on foo
    alice.send(b"PUB foo 2\r\nhi\r\n").await;
    let got = lossy(&alice.until(b"hi\r\n").await);
    assert!(got.ends_with("MSG foo 1 2\r\nhi\r\n"), "{got}");
    assert_eq!(shared.subscription_count(), 1);
    assert_eq!(shared.stats.connection_panics.load(Ordering::Relaxed), 0);
}

/// A leaf's password is checked like a client's: on the blocking pool, with what followed
/// its `CONNECT` waiting for the verdict.
#[allow(clippy::await_holding_lock)]
#[tokio::test]
async fn a_leaf_password_is_checked_on_the_blocking_pool() {
    let _serial = GATE_TESTS.lock();
    let arrived = BCRYPT_ARRIVED.load(Ordering::SeqCst);
    let mut opts = Options::default();
    opts.leafnodes.port = -1;
    opts.leafnodes.user = Some("leaf".into());
    opts.leafnodes.pass = Some(bcrypt::hash("gated:s3cret", 4).unwrap());
    let (shared, _) = start(opts).await;
    let leaf_addr = shared.leaf_addr.lock().unwrap();

    let gate = BCRYPT_GATE.write();
    let mut good = Raw::connect(leaf_addr).await;
    good.send(b"CONNECT {\"user\":\"leaf\",\"pass\":\"gated:s3cret\",\"name\":\"good\"}\r\nPING\r\n").await;
    let mut bad = Raw::connect(leaf_addr).await;
    bad.send(b"CONNECT {\"user\":\"leaf\",\"pass\":\"gated:guess\",\"name\":\"bad\"}\r\nPING\r\n").await;
    // both checks wait at the gate, and the async thread still greets a new leaf
    eventually(|| BCRYPT_ARRIVED.load(Ordering::SeqCst) == arrived + 2).await;
    drop(Raw::connect(leaf_addr).await);
    drop(gate);

    let got = lossy(&good.until(b"PONG\r\n").await);
    assert!(got.starts_with("INFO {") && got.contains("LS+ $LDS."), "{got}");
    assert_eq!(bad.read_to(b"never").await, None);
    assert_eq!(lossy(&bad.buf), "-ERR 'Authorization Violation'\r\n", "no PONG: the PING waited for the verdict");
    eventually(|| shared.leafs.lock().len() == 1).await;
    assert_eq!(shared.stats.connection_panics.load(Ordering::Relaxed), 0);
}

/// A runtime left behind without waiting for its threads (a test that failed because one
/// of them is blocked must not hang on it).
struct Apart(Option<tokio::runtime::Runtime>);

impl Drop for Apart {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A read of `PUB`s keeps a receiver's buffer locked from one delivery to the next
/// ([`crate::client::DeliveryBatch`]). Everything else the same read does to a buffer, on
/// the same thread, must still get through, in order: the publisher's own echo, then its
/// `-ERR` for a denied subject (its own buffer, held at that moment), a message to another
/// client, a JetStream publish (the engine's lock, under which its thread writes buffers)
/// and its ack. The server runs on a runtime of its own, so a thread that waits for a lock it
/// already holds fails the test instead of hanging it.
#[tokio::test]
async fn a_read_of_pubs_keeps_every_reply_in_order_while_it_holds_a_buffer() {
    use edgebus_core::policy::permissions::{PermissionsConfig, SubjectRule};
    let apart =
        Apart(Some(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()));
    let mut opts = Options::default();
    opts.jetstream.enabled = true;
    let store = std::env::temp_dir().join(format!("edgebus-batch-test-{}", std::process::id()));
    opts.jetstream.store_dir = Some(store.clone());
    let deny =
        PermissionsConfig { publish: Some(SubjectRule { allow: None, deny: vec!["no".into()] }), ..Default::default() };
    opts.authorization.users = vec![User { permissions: Some(deny), ..User::new("a", "pw") }, User::new("b", "pw")];
    let (shared, addr) = apart.0.as_ref().unwrap().spawn(start(opts)).await.unwrap();
    let mut b = Raw::connect(addr).await;
    b.send(b"CONNECT {\"user\":\"b\",\"pass\":\"pw\",\"verbose\":false,\"protocol\":1}\r\nSUB other 9\r\n").await;
    let config = br#"{"name":"S","subjects":["s"],"storage":"memory"}"#;
    let create = [
        format!("SUB _INBOX.b 8\r\nPUB $JS.API.STREAM.CREATE.S _INBOX.b {}\r\n", config.len()).as_bytes(),
        config,
        b"\r\n",
    ]
    .concat();
    b.send(&create).await;
    assert!(lossy(&b.until(b"}\r\n").await).contains("\"name\":\"S\""), "the stream is there");
    b.send(b"PING\r\n").await;
    b.until(b"PONG\r\n").await;
    let mut a = Raw::connect(addr).await;
    a.send(b"CONNECT {\"user\":\"a\",\"pass\":\"pw\",\"verbose\":false,\"protocol\":1}\r\nSUB x 1\r\nSUB _INBOX.a 2\r\nPING\r\n").await;
    a.until(b"PONG\r\n").await;

    a.send(b"PUB x 1\r\n1\r\nPUB no 1\r\n2\r\nPUB x 1\r\n3\r\nPUB other 1\r\n4\r\nPUB s _INBOX.a 1\r\n5\r\nPUB x 1\r\n6\r\nPING\r\n")
        .await;
    let got = lossy(&a.until(b"PONG\r\n").await);
    let want_order = [
        "MSG x 1 1\r\n1\r\n",
        "-ERR 'Permissions Violation for Publish to \"no\"'\r\n",
        "MSG x 1 1\r\n3\r\n",
        "MSG x 1 1\r\n6\r\n",
    ];
    let mut at = 0;
    for w in want_order {
        let found = got[at..].find(w).unwrap_or_else(|| panic!("{w:?} after {at} in {got:?}"));
        at += found + w.len();
    }
    if !got.contains("\"seq\":1") {
        let ack = lossy(&a.until(b"}\r\n").await);
        assert!(ack.contains("MSG _INBOX.a 2") && ack.contains("\"seq\":1"), "{ack}");
    }
    assert!(lossy(&b.until(b"4\r\n").await).ends_with("MSG other 9 1\r\n4\r\n"));
    // nothing is left locked: another client's publish still reaches a
    b.send(b"PUB x 1\r\n7\r\n").await;
    assert!(lossy(&a.until(b"7\r\n").await).ends_with("MSG x 1 1\r\n7\r\n"));
    assert_eq!(shared.stats.connection_panics.load(Ordering::Relaxed), 0);
    let _ = std::fs::remove_dir_all(store);
}
