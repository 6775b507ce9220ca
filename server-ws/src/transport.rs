//! The ways bytes reach a connection: a plain TCP stream, a TLS stream over TCP (the client
//! port with `tls { … }`, a leaf link with TLS), or NATS carried inside WebSocket frames
//! (what nats.ws and nats.js use in browsers, and a `ws://` leaf remote). Above this module a connection does not know
//! which one it has.
//!
//! On WebSocket the reader answers pings and the peer's close itself, so both halves write to
//! the socket; they share it behind one lock, which also records that a close frame went out
//! (nats-server sends one close frame per connection, never two). With permessage-deflate
//! negotiated, or for a browser, a write may become several frames and a read inflates; a
//! connection with neither takes the paths it always took.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use edgebus_core::proto::ProtocolError;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsStream;
use tracing::error;

use crate::options::WebSocketOptions;
use crate::tls::{self as tls, Loaded, TlsOptions};
use crate::ws::deflate::{Deflater, COMPRESS_THRESHOLD};
use crate::ws::frame::{self, Control, Decoder, Opcode};
use crate::ws::upgrade::{self, Policy};

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    WebSocket,
}

/// The socket under a WebSocket: TCP (`ws://`) or TLS over TCP (`wss://`).
type WsRead = Box<dyn AsyncRead + Send + Unpin>;
type WsWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// The writing side of a WebSocket, shared by both halves.
pub struct WsOut {
    half: WsWrite,
    close_sent: bool,
    /// permessage-deflate was negotiated.
    deflater: Option<Box<Deflater>>,
    /// Data goes out in frames of at most [`BROWSER_FRAME`] bytes.
    browser: bool,
    /// ... and so do compressed messages, as continuation frames (not for Safari).
    split_compressed: bool,
}

/// nats-server's `wsFrameSizeForBrowsers`.
const BROWSER_FRAME: usize = 4096;

/// The most one compressed message holds before deflating. A receiver refuses a message
/// that inflates past its `max_payload` (nats-server as a leaf of ours does, 1 MB by
/// default), while a write here can carry megabytes of queued messages: nats-server
/// deflates a whole flush as one message; edgebus cuts it into messages of this much,
/// which no receiver's limit refuses (the NATS stream runs on across messages).
const DEFLATE_INPUT: usize = 64 * 1024;

impl WsOut {
    /// Sends one frame, or for data on a compressing or browser connection the frames
    /// nats-server would send.
    async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        if self.close_sent {
            return Ok(());
        }
        self.close_sent = opcode == Opcode::Close;
        if opcode == Opcode::Binary && (self.browser || self.deflater.is_some()) {
            self.send_shaped(payload).await?;
        } else {
            write_frame(&mut self.half, frame::final_byte(opcode), payload).await?;
        }
        // TLS holds records back until flushed (a no-op on TCP)
        self.half.flush().await
    }

    /// nats-server's `wsCollapsePtoNB`: a buffer of more than [`COMPRESS_THRESHOLD`] bytes
    /// is deflated into one message (one per [`DEFLATE_INPUT`] bytes), which a browser
    /// gets in continuation frames of at most [`BROWSER_FRAME`] bytes (Safari in one
    /// frame); a browser gets plain data as whole messages of at most that size each.
    async fn send_shaped(&mut self, payload: &[u8]) -> io::Result<()> {
        let limit = |split: bool| if split { BROWSER_FRAME } else { usize::MAX };
        match self.deflater.as_mut() {
            Some(deflater) if payload.len() > COMPRESS_THRESHOLD => {
                for message in payload.chunks(DEFLATE_INPUT) {
                    let z = deflater.compress(message);
                    let parts = z.chunks(limit(self.browser && self.split_compressed));
                    let count = parts.len();
                    let frames =
                        parts.enumerate().map(|(i, part)| (frame::data_frame_byte(i == 0, i + 1 == count, true), part));
                    write_frames(&mut self.half, frames.collect()).await?;
                }
            }
            _ => {
                let whole = frame::data_frame_byte(true, true, false);
                write_frames(&mut self.half, payload.chunks(limit(self.browser)).map(|part| (whole, part)).collect())
                    .await?;
            }
        }
        Ok(())
    }
}

/// Writes frames (first byte, payload) in vectored writes, as many frames a write as the
/// socket takes: a megabyte to a browser is 256 frames in a few writes, not 256 writes.
async fn write_frames(half: &mut WsWrite, frames: Vec<(u8, &[u8])>) -> io::Result<()> {
    let mut heads = Vec::with_capacity(frames.len() * 10);
    let mut ends = Vec::with_capacity(frames.len());
    for (b0, payload) in &frames {
        frame::encode_head(&mut heads, *b0, payload.len());
        ends.push(heads.len());
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(frames.len() * 2);
    let mut start = 0;
    for (end, (_, payload)) in ends.into_iter().zip(&frames) {
        parts.push(&heads[start..end]);
        parts.push(payload);
        start = end;
    }
    // the first part not fully written, and how much of it was
    let (mut at, mut done) = (0, 0);
    while at < parts.len() {
        if done == parts[at].len() {
            (at, done) = (at + 1, 0);
            continue;
        }
        let slices: Vec<IoSlice<'_>> = std::iter::once(&parts[at][done..])
            .chain(parts[at + 1..].iter().copied())
            .take(IOV_PER_WRITE)
            .map(IoSlice::new)
            .collect();
        let mut n = half.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let step = n.min(parts[at].len() - done);
            done += step;
            n -= step;
            if done == parts[at].len() && n > 0 {
                (at, done) = (at + 1, 0);
            }
        }
    }
    Ok(())
}

/// Slices per vectored write (Linux takes up to 1024).
const IOV_PER_WRITE: usize = 256;

/// Writes one frame with first byte `b0`: its header and the payload in one vectored
/// write, so the payload is not copied.
async fn write_frame(half: &mut WsWrite, b0: u8, payload: &[u8]) -> io::Result<()> {
    let mut head = Vec::with_capacity(10);
    frame::encode_head(&mut head, b0, payload.len());
    let (mut h, mut p) = (0, 0);
    while h < head.len() || p < payload.len() {
        let parts = [IoSlice::new(&head[h..]), IoSlice::new(&payload[p..])];
        let n = half.write_vectored(&parts).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len() - h);
        h += from_head;
        p += n - from_head;
    }
    Ok(())
}

pub struct WsReader {
    half: WsRead,
    decoder: Decoder,
    /// Received bytes not decoded yet: what followed a control frame in the same read, or
    /// the upgrade's answer in a dialled connection. Usually empty: frames are read into
    /// the session's buffer and decoded in place.
    input: BytesMut,
    out: Arc<Mutex<WsOut>>,
    /// The peer closed; report the end of the stream once its earlier payload is handed on.
    closed: bool,
    /// A broken frame after payload that is still to be handed on: reported on the next read,
    /// so what came before it is processed first, as nats-server parses as it decodes.
    broken: Option<frame::FrameError>,
    peer: SocketAddr,
    /// permessage-deflate was negotiated: frames are read into `input` and decoded from
    /// there (inflated payload does not fit where the compressed bytes were).
    inflating: bool,
    /// The most one compressed message may inflate to.
    max_payload: usize,
}

pub enum Reader {
    Tcp(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
    Ws(Box<WsReader>),
}

pub enum Writer {
    Tcp(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
    Ws(Arc<Mutex<WsOut>>),
}

/// Opens a client-port connection that must use TLS. The `INFO` in `info` goes out in
/// plaintext before the handshake, as nats-server sends it, unless `handshake_first` asks
/// for the handshake first; the returned flag says whether it was sent (if not, it is still
/// owed, over TLS). Also returns the client's certificate (DER), if it presented one.
pub async fn open_tls(
    mut stream: TcpStream,
    opts: &TlsOptions,
    config: &Loaded,
    info: &[u8],
) -> io::Result<(Reader, Writer, bool, Option<Vec<u8>>)> {
    let info_sent = !opts.handshake_first;
    if info_sent {
        stream.write_all(info).await?;
    }
    let stream = tls::accept(stream, config, opts.timeout, tls::Plaintext::Drop).await?;
    // the client's own certificate (first of its chain), for `verify_and_map`
    let peer_cert = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
    let (r, w) = tls_halves(stream.into());
    Ok((r, w, info_sent, peer_cert))
}

/// The halves of a TLS connection, either side of the handshake.
pub fn tls_halves(stream: TlsStream<TcpStream>) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(stream);
    (Reader::Tls(r), Writer::Tls(w))
}

/// Splits a TCP connection, performing the WebSocket upgrade first when `kind` asks for it
/// (over TLS when the WebSocket listener has `tls { … }`: `wss://`). Returns the peer
/// address to report: for WebSocket an `X-Forwarded-For` header that parses as an IP wins,
/// as in nats-server; and whether the upgrade asked for a leaf connection (`/leafnode`).
/// `wss` is the WebSocket port's current TLS configuration (see [`crate::tls::Certs`]).
pub async fn open(
    stream: TcpStream,
    peer: SocketAddr,
    kind: Kind,
    ws: &WebSocketOptions,
    wss: Option<&tls::Loaded>,
    max_payload: i32,
) -> io::Result<(Reader, Writer, SocketAddr, bool)> {
    match kind {
        Kind::Tcp => {
            let (r, w) = stream.into_split();
            Ok((Reader::Tcp(r), Writer::Tcp(w), peer, false))
        }
        Kind::WebSocket => match wss {
            Some(config) => {
                let mut stream = tls::accept(stream, config, ws.tls.timeout, tls::Plaintext::HttpAnswer).await?;
                let up = upgrade_ws(&mut stream, peer, ws).await?;
                let (r, w) = tokio::io::split(stream);
                let leaf = up.leaf;
                let (r, w, peer) = ws_halves(Box::new(r), Box::new(w), up, peer, max_payload);
                Ok((r, w, peer, leaf))
            }
            None => {
                let mut stream = stream;
                let up = upgrade_ws(&mut stream, peer, ws).await?;
                let (r, w) = stream.into_split();
                let leaf = up.leaf;
                let (r, w, peer) = ws_halves(Box::new(r), Box::new(w), up, peer, max_payload);
                Ok((r, w, peer, leaf))
            }
        },
    }
}

/// The WebSocket upgrade on `stream`, within nats-server's handshake time.
async fn upgrade_ws<S>(stream: &mut S, peer: SocketAddr, ws: &WebSocketOptions) -> io::Result<upgrade::Upgraded>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let policy = Policy {
        same_origin: ws.same_origin,
        allowed_origins: &ws.allowed_origins,
        headers: &ws.headers,
        compression: ws.compression,
    };
    tokio::time::timeout(ws.handshake_timeout, upgrade::accept(stream, peer, &policy))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "websocket handshake timed out"))?
}

/// The halves of a WebSocket we dialled and upgraded (a `ws://` / `wss://` leaf remote):
/// the hub's frames are unmasked, `first` is what arrived after its `101`, and `compress`
/// says whether the hub took our permessage-deflate offer.
pub fn dialled_ws<S>(stream: S, first: Vec<u8>, peer: SocketAddr, compress: bool) -> (Reader, Writer)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (r, w) = tokio::io::split(stream);
    let up = upgrade::Upgraded { compress, ..upgrade::Upgraded::dialled() };
    // a leaf's payload limit is not its hub's: nats-server inflates a leaf's messages up to
    // its default `max_payload` then
    let (mut reader, writer, _) = ws_halves(Box::new(r), Box::new(w), up, peer, 0);
    if let Reader::Ws(ws) = &mut reader {
        ws.input.extend_from_slice(&first);
    }
    (reader, writer)
}

fn ws_halves(
    r: WsRead,
    w: WsWrite,
    up: upgrade::Upgraded,
    peer: SocketAddr,
    max_payload: i32,
) -> (Reader, Writer, SocketAddr) {
    let peer = up.forwarded.map_or(peer, |ip| SocketAddr::new(ip, peer.port()));
    let out = Arc::new(Mutex::new(WsOut {
        half: w,
        close_sent: false,
        deflater: up.compress.then(Box::default),
        browser: up.browser,
        split_compressed: !up.no_compressed_fragments,
    }));
    let decoder = if up.compress { Decoder::inflating(up.require_mask) } else { Decoder::new(up.require_mask) };
    let reader = WsReader {
        half: r,
        decoder,
        input: BytesMut::new(),
        out: out.clone(),
        closed: false,
        broken: None,
        peer,
        inflating: up.compress,
        max_payload: payload_limit(max_payload),
    };
    (Reader::Ws(Box::new(reader)), Writer::Ws(out), peer)
}

/// `max_payload` as a size (nats-server takes a value of 0 or less as its default, 1 MB).
fn payload_limit(max_payload: i32) -> usize {
    usize::try_from(max_payload).ok().filter(|&n| n > 0).unwrap_or(1024 * 1024)
}

/// How much one read takes from the socket.
const READ_CHUNK: usize = 32 * 1024;

/// The most inflated payload one read hands on: the parser takes it before more is made.
const INFLATE_BUDGET: usize = 64 * 1024;
/// The most an idle TCP connection keeps of its read buffer.
const IDLE_KEEP: usize = 4096;

impl Reader {
    /// Appends the next bytes received to `buf`; `Ok(0)` at end of stream.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Reader::Tcp(r) => {
                // An idle connection should not hold the last burst's read buffer: with
                // nothing buffered and nothing to read yet, let it go and wait for data
                // before taking memory again (10,000 idle clients would each keep one).
                if buf.is_empty() && buf.capacity() > IDLE_KEEP && r.readable().now_or_never().is_none() {
                    *buf = BytesMut::new();
                    r.readable().await?;
                }
                if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(READ_CHUNK);
                }
                r.read_buf(buf).await
            }
            Reader::Tls(r) => {
                if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(READ_CHUNK);
                }
                r.read_buf(buf).await
            }
            Reader::Ws(r) => r.read(buf).await,
        }
    }

    pub fn is_websocket(&self) -> bool {
        matches!(self, Reader::Ws(_))
    }

    /// A reload changed `max_payload`: the most one compressed WebSocket message may
    /// inflate to follows it.
    pub fn set_max_payload(&mut self, max_payload: i32) {
        if let Reader::Ws(r) = self {
            r.max_payload = payload_limit(max_payload);
        }
    }
}

impl WsReader {
    /// Ends the connection for a broken frame: logged at error level and closed with `1002`
    /// and the reason (`1001 Read Error` for a message that would not inflate), as
    /// nats-server does.
    async fn fail(&mut self, e: frame::FrameError) -> io::Error {
        error!("{} - read error: {e}", self.peer);
        let _ = self.out.lock().await.send(Opcode::Close, &e.close_payload()).await;
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    /// Acts on a control frame the decoder stopped at.
    async fn control(&mut self, control: Option<Control>) -> io::Result<()> {
        match control {
            Some(Control::Ping(payload)) => self.out.lock().await.send(Opcode::Pong, &payload).await?,
            Some(Control::Close(payload)) => {
                let _ = self.out.lock().await.send(Opcode::Close, &payload).await;
                self.closed = true;
            }
            None => {}
        }
        Ok(())
    }

    /// Reads the next payload into `buf` (the session's buffer); `Ok(0)` at the end of the
    /// stream. A broken frame after payload is reported on the next call, so what came
    /// before it is processed first, as nats-server parses as it decodes.
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let start = buf.len();
        if let Some(e) = self.broken.take() {
            return Err(self.fail(e).await);
        }
        while !self.closed {
            let turn =
                if self.inflating { self.inflate_turn(buf, start).await? } else { self.turn(buf, start).await? };
            match turn {
                Turn::Again => {}
                Turn::Done(n) => return Ok(n),
                Turn::Broken(e) if buf.len() > start => {
                    self.broken = Some(e);
                    return Ok(buf.len() - start);
                }
                Turn::Broken(e) => return Err(self.fail(e).await),
            }
        }
        Ok(buf.len() - start)
    }

    /// One turn without permessage-deflate: frames are read straight into `buf` and decoded
    /// there, so a payload byte is unmasked where the socket put it, not copied from a
    /// buffer of frames first. At every `await`, `buf` holds decoded payload only: what
    /// followed a control frame waits in `input` meanwhile (a timeout may drop this future,
    /// as the leaf handshake's does).
    async fn turn(&mut self, buf: &mut BytesMut, start: usize) -> io::Result<Turn> {
        let raw = buf.len();
        if !self.input.is_empty() {
            buf.extend_from_slice(&self.input);
            self.input.clear();
        } else {
            if buf.len() > start {
                return Ok(Turn::Done(buf.len() - start));
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(READ_CHUNK);
            }
            if self.half.read_buf(buf).await? == 0 {
                return Ok(Turn::Done(0));
            }
        }
        let (end, used, outcome) = self.decoder.decode(buf, raw, raw);
        let control = match outcome {
            Ok(control) => control,
            Err(e) => {
                buf.truncate(end);
                return Ok(Turn::Broken(e));
            }
        };
        // decoding stops after a control frame: the rest is decoded on the next turn
        self.input.extend_from_slice(&buf[used..]);
        buf.truncate(end);
        self.control(control).await?;
        Ok(Turn::Again)
    }

    /// One turn with permessage-deflate: frames are read into `input` and decoded from
    /// there into `buf`, inflated at most [`INFLATE_BUDGET`] bytes per read, so what a
    /// compressed message can make the server hold at once is that plus what the parser
    /// keeps.
    async fn inflate_turn(&mut self, buf: &mut BytesMut, start: usize) -> io::Result<Turn> {
        if buf.len() - start >= INFLATE_BUDGET {
            return Ok(Turn::Done(buf.len() - start));
        }
        if self.input.is_empty() && !self.decoder.inflate_pending() {
            if buf.len() > start {
                return Ok(Turn::Done(buf.len() - start));
            }
            if self.input.capacity() - self.input.len() < 4096 {
                self.input.reserve(READ_CHUNK);
            }
            if self.half.read_buf(&mut self.input).await? == 0 {
                return Ok(Turn::Done(0));
            }
        }
        let budget = INFLATE_BUDGET - (buf.len() - start);
        let (used, outcome) = self.decoder.decode_into(&self.input, buf, budget, self.max_payload);
        self.input.advance(used);
        match outcome {
            Ok(control) => self.control(control).await?,
            Err(e) => return Ok(Turn::Broken(e)),
        }
        Ok(Turn::Again)
    }
}

/// What one turn of [`WsReader::read`] came to.
enum Turn {
    /// Go on reading.
    Again,
    /// Hand this many bytes of payload on (0: the stream ended).
    Done(usize),
    /// A broken frame: reported now, or after the payload before it.
    Broken(frame::FrameError),
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
            Writer::Tls(w) => {
                // rustls holds records back until flushed
                w.write_all(buf).await?;
                buf.clear();
                w.flush().await
            }
            Writer::Ws(out) => {
                let result = out.lock().await.send(Opcode::Binary, buf).await;
                buf.clear();
                result
            }
        }
    }

    /// Ends the connection; on WebSocket with a close frame carrying nats-server's status,
    /// unless one was sent already (the answer to the peer's close, or a protocol error).
    pub async fn close(&mut self, reason: Option<&ProtocolError>) {
        match self {
            Writer::Tcp(w) => {
                let _ = w.shutdown().await;
            }
            Writer::Tls(w) => {
                // sends close_notify, then shuts the socket's write side
                let _ = w.shutdown().await;
            }
            Writer::Ws(out) => {
                let (code, text) = reason.map_or((1001, "Server Shutdown"), ProtocolError::ws_close);
                let mut out = out.lock().await;
                let _ = out.send(Opcode::Close, &frame::close_payload(code, text)).await;
                let _ = out.half.shutdown().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn browser_frames(payload: &[u8]) -> Vec<(u8, &[u8])> {
        payload.chunks(BROWSER_FRAME).map(|p| (0x82, p)).chain([(0x82, &b""[..])]).collect()
    }

    /// Frames written through a pipe that takes a few bytes at a time (short writes
    /// anywhere, in headers and payloads) arrive whole and in order.
    #[tokio::test]
    async fn frames_survive_short_writes() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let mut expected = Vec::new();
        for (b0, p) in browser_frames(&payload) {
            frame::encode_head(&mut expected, b0, p.len());
            expected.extend_from_slice(p);
        }
        let (w, mut r) = tokio::io::duplex(7);
        let writing = tokio::spawn(async move {
            let mut half: WsWrite = Box::new(w);
            write_frames(&mut half, browser_frames(&payload)).await.unwrap();
        });
        let mut got = vec![0u8; expected.len()];
        r.read_exact(&mut got).await.unwrap();
        writing.await.unwrap();
        assert!(got == expected);
    }
}
