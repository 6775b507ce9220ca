//! The server over real sockets, byte for byte: what a raw client sees.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use edgebus_server::options::Options;
use edgebus_server::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(mut opts: Options) -> SocketAddr {
    opts.host = "127.0.0.1".into();
    opts.port = -1;
    let server = Server::bind(opts).await.unwrap();
    let addr = server.shared().client_addr.lock().unwrap();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).await.unwrap();
        let mut r = Raw { s, buf: Vec::new() };
        let info = r.until(b"\r\n").await;
        assert!(info.starts_with(b"INFO {"), "{}", String::from_utf8_lossy(&info));
        r
    }
    async fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).await.unwrap();
    }
    /// Reads until `token` has arrived; returns everything up to and including it.
    async fn until(&mut self, token: &[u8]) -> Vec<u8> {
        let fut = async {
            loop {
                if let Some(i) = self.buf.windows(token.len()).position(|w| w == token) {
                    let rest = self.buf.split_off(i + token.len());
                    return std::mem::replace(&mut self.buf, rest);
                }
                let mut chunk = [0u8; 65536];
                let n = self.s.read(&mut chunk).await.unwrap();
                assert!(
                    n > 0,
                    "eof before {:?}; have {:?}",
                    String::from_utf8_lossy(token),
                    String::from_utf8_lossy(&self.buf)
                );
                self.buf.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(5), fut).await.unwrap()
    }
    async fn eof(&mut self) -> bool {
        let fut = async {
            let mut chunk = [0u8; 4096];
            loop {
                match self.s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), fut).await.unwrap_or(false)
    }
}

const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1}\r\n";

#[tokio::test]
async fn pub_sub_request_and_no_responders() {
    let addr = start(Options::default()).await;
    let mut a = Raw::connect(addr).await;
    let mut b = Raw::connect(addr).await;
    a.send(CONNECT).await;
    b.send(CONNECT).await;
    a.send(b"SUB foo.* 1\r\nSUB _INBOX.a.* 2\r\nPING\r\n").await;
    let pong = a.until(b"PONG\r\n").await;
    assert_eq!(pong, b"PONG\r\n");
    // the connect_info INFO follows the first PONG
    a.until(b"\"connect_info\":true").await;
    a.until(b"\r\n").await;
    b.send(b"PUB foo.bar _INBOX.a.1 5\r\nhello\r\nHPUB foo.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n").await;
    b.until(b"PONG\r\n").await;
    assert_eq!(a.until(b"hello\r\n").await, b"MSG foo.bar 1 _INBOX.a.1 5\r\nhello\r\n");
    assert_eq!(a.until(b"hi\r\n").await, b"HMSG foo.x 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    a.send(b"PUB nobody.home _INBOX.a.9 0\r\n\r\nPING\r\n").await;
    let got = a.until(b"PONG\r\n").await;
    assert_eq!(got, b"HMSG _INBOX.a.9 2 43 43\r\nNATS/1.0 503\r\nNats-Subject: nobody.home\r\n\r\n\r\nPONG\r\n");
}

#[tokio::test]
async fn protocol_errors() {
    let addr = start(Options::default()).await;
    let mut c = Raw::connect(addr).await;
    c.send(CONNECT).await;
    c.send(b"SUB foo..bar 1\r\nPING\r\n").await;
    assert_eq!(c.until(b"PONG\r\n").await, b"-ERR 'Invalid Subject'\r\nPONG\r\n");
    assert!(c.until(b"\r\n").await.starts_with(b"INFO {"));
    c.send(b"FOO BAR\r\n").await;
    assert_eq!(c.until(b"\r\n").await, b"-ERR 'Unknown Protocol Operation'\r\n");
    assert!(c.eof().await);

    let mut c = Raw::connect(addr).await;
    c.send(CONNECT).await;
    c.send(b"PUB foo 1048577\r\n").await;
    assert_eq!(c.until(b"\r\n").await, b"-ERR 'Maximum Payload Violation'\r\n");
    assert!(c.eof().await);

    let mut c = Raw::connect(addr).await;
    c.send(CONNECT).await;
    c.send(b"PUB foo\r\n").await;
    assert!(c.eof().await);
    assert!(c.buf.is_empty(), "silent close expected, got {:?}", String::from_utf8_lossy(&c.buf));
}

#[tokio::test]
async fn verbose_and_auto_unsubscribe() {
    let addr = start(Options::default()).await;
    let mut c = Raw::connect(addr).await;
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":false}\r\n").await;
    assert_eq!(c.until(b"\r\n").await, b"+OK\r\n");
    c.send(b"SUB v 1\r\n").await;
    assert_eq!(c.until(b"\r\n").await, b"+OK\r\n");
    c.send(b"UNSUB 1 2\r\n").await;
    assert_eq!(c.until(b"\r\n").await, b"+OK\r\n");
    c.send(b"PUB v 1\r\na\r\nPUB v 1\r\nb\r\nPUB v 1\r\nc\r\nPING\r\n").await;
    let got = c.until(b"PONG\r\n").await;
    assert_eq!(got, b"+OK\r\nMSG v 1 1\r\na\r\n+OK\r\nMSG v 1 1\r\nb\r\n+OK\r\nPONG\r\n");
}

#[tokio::test]
async fn auth_token() {
    let mut opts = Options::default();
    opts.authorization.token = Some("s3cret".into());
    let addr = start(opts).await;
    let mut c = Raw::connect(addr).await;
    c.send(b"PING\r\n").await;
    assert_eq!(c.until(b"\r\n").await, b"-ERR 'Authorization Violation'\r\n");
    assert!(c.eof().await);
    let mut c = Raw::connect(addr).await;
    c.send(b"CONNECT {\"verbose\":false,\"auth_token\":\"nope\"}\r\n").await;
    assert_eq!(c.until(b"\r\n").await, b"-ERR 'Authorization Violation'\r\n");
    let mut c = Raw::connect(addr).await;
    c.send(b"CONNECT {\"verbose\":false,\"auth_token\":\"s3cret\"}\r\nPING\r\n").await;
    assert_eq!(c.until(b"\r\n").await, b"PONG\r\n");
}
