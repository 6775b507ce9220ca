//! A NATS client of our own for the WebSocket rows (issue 16): async-nats over `ws://`
//! spends more CPU per message than either server, so it, not the server, set the rate. This
//! one publishes pre-framed batches (many `PUB`s in one binary frame, masked with a non-zero
//! key as a browser's frames are, so the server pays for unmasking as it would in
//! production; only the sequence numbers are re-masked per batch) and reads by parsing the
//! frame payloads in place into a reused buffer, with no allocation per message. The same
//! client also speaks plain TCP (no upgrade, no frames), so the mixed rows (WebSocket on one
//! side, TCP on the other) pay the same client cost on both sides. Both servers get exactly
//! the same client.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::integrity::{Checker, Faults, Numbered};
use crate::Res;

/// How long a reader waits for more bytes before the run counts as stalled (a loss).
const STALL: Duration = Duration::from_secs(10);
/// Target size of one published frame.
const FRAME_BYTES: usize = 64 * 1024;
const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\n";

/// How a connection carries the NATS byte stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Transport {
    /// An HTTP upgrade, then WebSocket binary frames (masked from the client).
    Ws,
    /// The NATS protocol straight on the socket.
    Tcp,
}

/// The masking key of every client frame (a browser draws one per frame; the server's cost
/// is the same for any non-zero key).
const MASK: [u8; 4] = [0x3b, 0xa5, 0x5c, 0xe1];

/// Appends `payload` as one final binary frame, masked with [`MASK`] (client frames must
/// be masked).
fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x82);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
}

/// The read side: frames from the server (or, over TCP, the bytes as they come), their
/// payloads appended to `nats` (the NATS byte stream), which the caller parses and
/// consumes from `pos`.
struct Reader {
    sock: OwnedReadHalf,
    framed: bool,
    raw: Vec<u8>,
    raw_pos: usize,
    /// Payload bytes of the current frame still to come.
    left_in_frame: usize,
    nats: Vec<u8>,
    pos: usize,
}

impl Reader {
    fn new(sock: OwnedReadHalf, framed: bool, leftover: Vec<u8>) -> Reader {
        Reader {
            sock,
            framed,
            raw: leftover,
            raw_pos: 0,
            left_in_frame: 0,
            nats: Vec::with_capacity(256 * 1024),
            pos: 0,
        }
    }

    /// Moves whatever whole frame headers and payload bytes `raw` holds into `nats` (over
    /// TCP, all of it).
    fn deframe(&mut self) -> Res<()> {
        if !self.framed {
            self.nats.extend_from_slice(&self.raw[self.raw_pos..]);
            self.raw_pos = self.raw.len();
        }
        loop {
            let avail = &self.raw[self.raw_pos..];
            if self.left_in_frame > 0 {
                let take = self.left_in_frame.min(avail.len());
                if take == 0 {
                    break;
                }
                self.nats.extend_from_slice(&avail[..take]);
                self.raw_pos += take;
                self.left_in_frame -= take;
                continue;
            }
            if avail.len() < 2 {
                break;
            }
            let (b0, b1) = (avail[0], avail[1]);
            if b1 & 0x80 != 0 {
                return Err("websocket: the server sent a masked frame".into());
            }
            let (len, head) = match b1 & 0x7f {
                126 if avail.len() >= 4 => (u16::from_be_bytes([avail[2], avail[3]]) as usize, 4),
                127 if avail.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&avail[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            match b0 & 0x0f {
                // continuation, text, binary: NATS bytes
                0x0..=0x2 => {
                    self.raw_pos += head;
                    self.left_in_frame = len;
                }
                0x8 => return Err("websocket: the server closed the connection".into()),
                // ping / pong: skipped (a benchmark run is far shorter than any ping interval)
                _ => {
                    if avail.len() < head + len {
                        break;
                    }
                    self.raw_pos += head + len;
                }
            }
        }
        if self.raw_pos == self.raw.len() {
            self.raw.clear();
            self.raw_pos = 0;
        }
        Ok(())
    }

    /// Reads more from the socket; false at end of stream or after [`STALL`].
    async fn fill(&mut self) -> Res<bool> {
        if self.pos > 0 && self.pos == self.nats.len() {
            self.nats.clear();
            self.pos = 0;
        } else if self.pos > self.nats.capacity() / 2 {
            self.nats.drain(..self.pos);
            self.pos = 0;
        }
        // Over TCP the bytes are the NATS stream: read straight into it (a copy per byte
        // less). `read_buf` fills the spare capacity without zeroing it first; at 1 KiB per
        // message those two passes over every byte made the client, not the server, the
        // limit of the raw-client rows.
        let buf = if self.framed { &mut self.raw } else { &mut self.nats };
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(64 * 1024);
        }
        let n = match tokio::time::timeout(STALL, self.sock.read_buf(buf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(false),
        };
        if n == 0 {
            return Ok(false);
        }
        self.deframe()?;
        Ok(true)
    }

    /// The next NATS op in the buffer: its control line and, for `MSG`, its payload range.
    fn next_op(&mut self) -> Res<Option<Op>> {
        let buf = &self.nats[self.pos..];
        let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = &buf[..eol];
        if line.starts_with(b"MSG ") {
            let size = line
                .rsplit(|b| *b == b' ')
                .next()
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| t.parse::<usize>().ok())
                .ok_or("websocket: bad MSG line")?;
            if buf.len() < eol + 2 + size + 2 {
                return Ok(None);
            }
            let start = self.pos + eol + 2;
            self.pos = start + size + 2;
            return Ok(Some(Op::Msg(start, start + size)));
        }
        let op = if line.starts_with(b"PONG") {
            Op::Pong
        } else if line.starts_with(b"PING") {
            Op::Ping
        } else if line.starts_with(b"-ERR") {
            Op::Err(String::from_utf8_lossy(line).into_owned())
        } else {
            Op::Other
        };
        self.pos += eol + 2;
        Ok(Some(op))
    }
}

enum Op {
    Msg(usize, usize),
    Ping,
    Pong,
    Err(String),
    Other,
}

/// One connection: (over WebSocket, the HTTP upgrade,) INFO, CONNECT and a PING answered.
pub(crate) struct Conn {
    reader: Reader,
    writer: OwnedWriteHalf,
    transport: Transport,
}

impl Conn {
    pub(crate) async fn open(addr: &str, transport: Transport) -> Res<Conn> {
        let mut sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let mut leftover = Vec::new();
        if transport == Transport::Ws {
            let req = format!(
                "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            );
            sock.write_all(req.as_bytes()).await?;
            let mut head = Vec::new();
            let mut chunk = [0u8; 4096];
            let end = loop {
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let n = tokio::time::timeout(STALL, sock.read(&mut chunk)).await??;
                if n == 0 {
                    return Err("websocket: closed during the upgrade".into());
                }
                head.extend_from_slice(&chunk[..n]);
            };
            if !head.starts_with(b"HTTP/1.1 101") {
                return Err(format!("websocket: upgrade refused: {}", String::from_utf8_lossy(&head[..end])).into());
            }
            leftover = head[end..].to_vec();
        }
        let (r, writer) = sock.into_split();
        let mut conn = Conn { reader: Reader::new(r, transport == Transport::Ws, leftover), writer, transport };
        conn.reader.deframe()?;
        conn.send(&[CONNECT, b"PING\r\n"].concat()).await?;
        conn.await_pong(None).await?;
        Ok(conn)
    }

    async fn send(&mut self, nats: &[u8]) -> Res<()> {
        match self.transport {
            Transport::Ws => {
                let mut out = Vec::with_capacity(nats.len() + 14);
                frame(&mut out, nats);
                self.writer.write_all(&out).await?;
            }
            Transport::Tcp => self.writer.write_all(nats).await?,
        }
        Ok(())
    }

    /// Reads until a PONG; any `MSG` on the way goes to `checker` (and is counted), and
    /// without one it is an error.
    async fn await_pong(&mut self, mut checker: Option<&mut Checker>) -> Res<u64> {
        let mut msgs = 0;
        loop {
            while let Some(op) = self.reader.next_op()? {
                match op {
                    Op::Pong => return Ok(msgs),
                    Op::Msg(a, b) => match checker.as_deref_mut() {
                        Some(c) => {
                            c.check(&self.reader.nats[a..b]);
                            msgs += 1;
                        }
                        None => return Err("websocket: unexpected MSG".into()),
                    },
                    Op::Ping => self.send(b"PONG\r\n").await?,
                    Op::Err(e) => return Err(format!("websocket: server error {e}").into()),
                    Op::Other => {}
                }
            }
            if !self.reader.fill().await? {
                return Err("websocket: no PONG (connection closed or stalled)".into());
            }
        }
    }

    /// A connection subscribed to `subject`, the subscription in place on the server (its
    /// PING answered).
    pub(crate) async fn subscriber(addr: &str, transport: Transport, subject: &str) -> Res<Conn> {
        let mut sub = Conn::open(addr, transport).await?;
        sub.send(format!("SUB {subject} 1\r\nPING\r\n").as_bytes()).await?;
        sub.await_pong(None).await?;
        Ok(sub)
    }

    /// Subscribes to each of `subjects` (sids 1, 2, …) in one write; returns once the server
    /// has them all (the PING after them answered) and how many there are.
    pub(crate) async fn hold(&mut self, subjects: impl Iterator<Item = String>) -> Res<u64> {
        let mut out = Vec::new();
        let mut n = 0u64;
        for s in subjects {
            n += 1;
            out.extend_from_slice(format!("SUB {s} {n}\r\n").as_bytes());
        }
        out.extend_from_slice(b"PING\r\n");
        self.send(&out).await?;
        self.await_pong(None).await?;
        Ok(n)
    }

    /// Removes the `n` subscriptions [`Conn::hold`] made; returns once the server has
    /// removed them all.
    pub(crate) async fn release(&mut self, n: u64) -> Res<()> {
        let mut out = Vec::new();
        for sid in 1..=n {
            out.extend_from_slice(format!("UNSUB {sid}\r\n").as_bytes());
        }
        out.extend_from_slice(b"PING\r\n");
        self.send(&out).await?;
        self.await_pong(None).await?;
        Ok(())
    }

    /// Reads `n` numbered messages of `size` bytes on a task: each must come once, in
    /// order, and nothing more before the PONG to the PING sent after the last.
    pub(crate) fn receive(mut self, n: u64, size: usize) -> JoinHandle<Res<Received>> {
        tokio::spawn(async move {
            let mut checker = Checker::all(n, size);
            let mut got = 0u64;
            let mut last = None;
            'read: while got < n {
                while let Some(op) = self.reader.next_op()? {
                    match op {
                        Op::Msg(a, b) => {
                            checker.check(&self.reader.nats[a..b]);
                            got += 1;
                            if got == n {
                                last = Some(Instant::now());
                                break 'read;
                            }
                        }
                        Op::Ping => self.send(b"PONG\r\n").await?,
                        Op::Err(e) => return Err(format!("websocket: server error {e}").into()),
                        Op::Pong | Op::Other => {}
                    }
                }
                if !self.reader.fill().await? {
                    break;
                }
            }
            // anything the server sent before the answer to this PING is an extra message
            self.send(b"PING\r\n").await?;
            self.await_pong(Some(&mut checker)).await?;
            Ok(Received { faults: checker.finish_all(), got, last })
        })
    }

    /// Publishes `n` numbered messages of `size` bytes to `subject` in pre-built batches
    /// (only the sequence numbers are written per batch), then waits for the server to
    /// have read them all (a PING answered). Returns when the first batch went out.
    pub(crate) async fn publish(&mut self, subject: &str, n: u64, size: usize) -> Res<Instant> {
        let framed = self.transport == Transport::Ws;
        let mut bodies = Numbered::new(size);
        let per_msg = format!("PUB {subject} {size}\r\n").len() + size + 2;
        let batch = (FRAME_BYTES / per_msg).max(1) as u64;
        let (mut template, mut offsets) = (Vec::new(), Vec::new());
        // offsets are of each payload within the frame's payload (the masking phase), which
        // starts at the returned index in the frame
        let mut build = |count: u64, template: &mut Vec<u8>, offsets: &mut Vec<usize>| -> usize {
            let mut nats = Vec::with_capacity(count as usize * per_msg);
            offsets.clear();
            for _ in 0..count {
                nats.extend_from_slice(format!("PUB {subject} {size}\r\n").as_bytes());
                offsets.push(nats.len());
                nats.extend_from_slice(&bodies.get(0));
                nats.extend_from_slice(b"\r\n");
            }
            template.clear();
            if framed {
                frame(template, &nats);
            } else {
                template.extend_from_slice(&nats);
            }
            template.len() - nats.len()
        };
        let mask = if framed { MASK } else { [0; 4] };
        let mut payload_start = build(batch, &mut template, &mut offsets);
        let start = Instant::now();
        let mut seq = 0u64;
        while seq < n {
            let count = batch.min(n - seq);
            if count < batch {
                payload_start = build(count, &mut template, &mut offsets);
            }
            for &o in &offsets {
                for (k, b) in seq.to_le_bytes().into_iter().enumerate() {
                    template[payload_start + o + k] = b ^ mask[(o + k) & 3];
                }
                seq += 1;
            }
            self.writer.write_all(&template).await?;
        }
        self.send(b"PING\r\n").await?;
        self.await_pong(None).await?;
        Ok(start)
    }
}

/// What one receiver saw.
pub(crate) struct Received {
    pub(crate) faults: Faults,
    /// Messages counted before the end (the `n` asked for, unless some never came).
    pub(crate) got: u64,
    /// When the last one arrived; `None` if it never did.
    pub(crate) last: Option<Instant>,
}

/// The outcome of one pub -> sub run.
pub(crate) struct WsRun {
    /// Messages per second, first publish to last delivery.
    pub(crate) rate: f64,
}

/// One publisher and one subscriber, each on its own connection to `addr` (`host:port`)
/// over `transport`: `n` numbered messages of `size` bytes. The subscriber must get every
/// one, once, in order, and nothing more before the PONG to the PING it sends after the last.
pub(crate) async fn pubsub(addr: &str, transport: Transport, subject: &str, n: u64, size: usize) -> Res<WsRun> {
    let sub = Conn::subscriber(addr, transport, subject).await?;
    let mut publisher = Conn::open(addr, transport).await?;
    let receiving = sub.receive(n, size);
    let start = publisher.publish(subject, n, size).await?;
    let Received { faults, got, last } = receiving.await??;
    if !faults.is_clean() {
        return Err(format!("{transport:?} {subject}: integrity: {faults} ({n} expected, {got} counted)").into());
    }
    let last = last.ok_or_else(|| format!("{transport:?} {subject}: the last message never arrived"))?;
    Ok(WsRun { rate: n as f64 / (last - start).as_secs_f64().max(1e-9) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths_use_the_right_encoding() {
        for (len, head) in [(10usize, 6usize), (200, 8), (70_000, 14)] {
            let mut out = Vec::new();
            frame(&mut out, &vec![7u8; len]);
            assert_eq!(out.len(), head + len);
            assert_eq!(out[0], 0x82);
            assert_eq!(out[1] & 0x80, 0x80);
        }
    }
}
