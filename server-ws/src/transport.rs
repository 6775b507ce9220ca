//! The two ways bytes reach a connection: a plain TCP stream, or NATS carried inside WebSocket
//! binary frames (what nats.ws and nats.js use in browsers). Above this module a connection
//! does not know which one it has.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use edgebus_core::proto::ProtocolError;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    WebSocket,
}

type Ws = WebSocketStream<TcpStream>;

pub enum Reader {
    Tcp(OwnedReadHalf),
    Ws(SplitStream<Ws>),
}

pub enum Writer {
    Tcp(OwnedWriteHalf),
    Ws(SplitSink<Ws, Message>),
}

/// Splits a TCP connection, performing the WebSocket upgrade first when `kind` asks for it.
/// Returns the peer address to report: for WebSocket an `X-Forwarded-For` header that parses
/// as an IP wins, as in nats-server.
// The handshake callback signature is tungstenite's; its error type is large by design.
#[allow(clippy::result_large_err)]
pub async fn open(stream: TcpStream, peer: SocketAddr, kind: Kind) -> io::Result<(Reader, Writer, SocketAddr)> {
    match kind {
        Kind::Tcp => {
            let (r, w) = stream.into_split();
            Ok((Reader::Tcp(r), Writer::Tcp(w), peer))
        }
        Kind::WebSocket => {
            let mut forwarded = None;
            let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                forwarded = req
                    .headers()
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
                Ok(resp)
            };
            let mut config = WebSocketConfig::default();
            config.max_message_size = Some(64 << 20);
            config.max_frame_size = Some(64 << 20);
            let ws = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)),
            )
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "websocket handshake timed out"))?
            .map_err(io::Error::other)?;
            let peer = forwarded.map_or(peer, |ip| SocketAddr::new(ip, peer.port()));
            let (w, r) = ws.split();
            Ok((Reader::Ws(r), Writer::Ws(w), peer))
        }
    }
}

impl Reader {
    /// Appends the next bytes received to `buf`; `Ok(0)` at end of stream.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Reader::Tcp(r) => {
                if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(32 * 1024);
                }
                r.read_buf(buf).await
            }
            Reader::Ws(r) => loop {
                match r.next().await {
                    None => return Ok(0),
                    Some(Err(e)) => return Err(io::Error::other(e)),
                    Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                        buf.extend_from_slice(&b);
                        return Ok(b.len());
                    }
                    Some(Ok(Message::Text(t))) if !t.is_empty() => {
                        buf.extend_from_slice(t.as_bytes());
                        return Ok(t.len());
                    }
                    Some(Ok(Message::Close(_))) => return Ok(0),
                    // pings are answered by tungstenite itself; empty frames carry nothing
                    Some(Ok(_)) => continue,
                }
            },
        }
    }
}

impl Writer {
    /// Writes everything in `buf` (as one WebSocket frame on WebSocket) and clears it.
    pub async fn write(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        match self {
            Writer::Tcp(w) => {
                w.write_all(buf).await?;
                buf.clear();
                Ok(())
            }
            Writer::Ws(w) => {
                let frame = buf.split().freeze();
                w.send(Message::Binary(frame)).await.map_err(io::Error::other)
            }
        }
    }

    /// Ends the connection; on WebSocket with a close frame carrying nats-server's status.
    pub async fn close(&mut self, reason: Option<&ProtocolError>) {
        match self {
            Writer::Tcp(w) => {
                let _ = w.shutdown().await;
            }
            Writer::Ws(w) => {
                let (code, text) = match reason {
                    Some(ProtocolError::AuthorizationViolation) => (1008, "Authentication Failure".to_string()),
                    Some(e) => (e.ws_close_code(), e.to_string()),
                    None => (1001, "Server Shutdown".to_string()),
                };
                let frame = CloseFrame { code: CloseCode::from(code), reason: text.into() };
                let _ = w.send(Message::Close(Some(frame))).await;
                let _ = w.close().await;
            }
        }
    }
}
