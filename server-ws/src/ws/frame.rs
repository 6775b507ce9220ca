//! WebSocket framing (RFC 6455) as nats-server reads it: payload bytes are handed on as they
//! arrive, never collected into whole frames or messages, so what a client can make the server
//! hold is bounded by the NATS parser's own limits (control line before CONNECT, `max_payload`
//! after), whatever a frame header announces. Like nats-server, text frames are not checked
//! for UTF-8: both kinds carry NATS protocol bytes. A compressed frame is a protocol error
//! unless permessage-deflate was negotiated; then [`Decoder::decode_into`] inflates it
//! ([`super::deflate`]). Sans-IO: bytes in, payload and control frames out.

use std::fmt;

use bytes::BytesMut;

use super::deflate::{InflateError, Inflater};

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV23: u8 = 0x30;
const MASK: u8 = 0x80;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Largest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Close status codes nats-server uses.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_NO_STATUS: u16 = 1005;
const CLOSE_INVALID_PAYLOAD: u16 = 1007;

/// A frame that breaks the protocol; the text is nats-server's, sent as the reason of the
/// `1002` close frame that ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    ReservedBits,
    Compressed,
    MaskMissing,
    ControlTooLong,
    ControlNotFinal,
    NewBeforeFinal,
    BadContinuation,
    UnknownOpcode(u8),
    Bad64BitLength,
    CloseOneByte,
    BadCloseStatus(u16),
    CompressedControl,
    /// A compressed message that cannot be inflated or inflates past `max_payload`: a read
    /// error for nats-server, not a protocol error.
    Inflate(InflateError),
}

impl FrameError {
    /// The close frame's status and reason: `1002` with the error's text for a protocol
    /// error, nats-server's `1001 Read Error` for a message that would not inflate.
    pub fn close_payload(&self) -> Vec<u8> {
        match self {
            FrameError::Inflate(_) => close_payload(1001, "Read Error"),
            e => close_payload(CLOSE_PROTOCOL_ERROR, &e.to_string()),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedBits => f.write_str("RSV2 and RSV3 must be clear"),
            FrameError::Compressed => f.write_str("compressed frame received without negotiated permessage-deflate"),
            FrameError::MaskMissing => f.write_str("mask bit missing"),
            FrameError::ControlTooLong => {
                write!(f, "control frame length bigger than maximum allowed of {MAX_CONTROL_PAYLOAD} bytes")
            }
            FrameError::ControlNotFinal => f.write_str("control frame does not have final bit set"),
            FrameError::NewBeforeFinal => {
                f.write_str("new message started before final frame for previous message was received")
            }
            FrameError::BadContinuation => f.write_str("invalid continuation frame"),
            FrameError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            FrameError::Bad64BitLength => f.write_str("invalid 64-bit payload length"),
            FrameError::CloseOneByte => f.write_str("close frame payload cannot be 1 byte"),
            FrameError::BadCloseStatus(code) => write!(f, "invalid close status code {code}"),
            FrameError::CompressedControl => f.write_str("control frame must not be compressed"),
            FrameError::Inflate(e) => f.write_str(e.text()),
        }
    }
}

impl std::error::Error for FrameError {}

/// A control frame the host must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Answer with a pong carrying this payload.
    Ping(Vec<u8>),
    /// The peer closed: answer with this close payload (empty when the peer sent no status)
    /// and end the connection once the payload received before it has been processed.
    Close(Vec<u8>),
}

enum State {
    /// Collecting the header: `need` bytes in `head` so far decide how many more are due.
    Header,
    /// Data payload: this many bytes left in the current frame.
    Data(u64),
    /// Control payload of this opcode, `len` bytes long, collected in `control`.
    Control { opcode: u8, len: usize },
}

/// Reads frames from a client. Payload bytes of data frames are unmasked and appended to the
/// caller's buffer as they come; control frames are returned one at a time.
pub struct Decoder {
    state: State,
    head: [u8; 14],
    head_len: usize,
    mask: [u8; 4],
    mask_pos: usize,
    /// Clients must mask; a client may ask not to (`Nats-No-Masking: true`).
    require_mask: bool,
    masked: bool,
    /// Inside a fragmented message (its final frame not seen yet).
    in_message: bool,
    control: Vec<u8>,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    deflate: bool,
    /// Set when it was (out of its place while [`Decoder::decode_into`] runs).
    inflater: Option<Box<Inflater>>,
    /// The current message is compressed (RSV1 on its first frame).
    compressed: bool,
}

impl Decoder {
    pub fn new(require_mask: bool) -> Self {
        Decoder {
            state: State::Header,
            head: [0; 14],
            head_len: 0,
            mask: [0; 4],
            mask_pos: 0,
            require_mask,
            masked: false,
            in_message: false,
            control: Vec::new(),
            deflate: false,
            inflater: None,
            compressed: false,
        }
    }

    /// A decoder for a connection that negotiated permessage-deflate: compressed messages
    /// are accepted, read through [`Decoder::decode_into`].
    pub fn inflating(require_mask: bool) -> Self {
        Decoder { deflate: true, inflater: Some(Box::default()), ..Decoder::new(require_mask) }
    }

    /// Whether compressed input waits to be inflated (the last call stopped at its budget).
    pub fn inflate_pending(&self) -> bool {
        self.inflater.as_ref().is_some_and(|i| i.busy())
    }

    /// Consumes `input`, appending data payload to `out`. Stops after a control frame and
    /// returns it with how much of `input` was used; the caller feeds the rest again.
    pub fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(usize, Option<Control>), FrameError> {
        let start = out.len();
        out.extend_from_slice(input);
        let (end, used, outcome) = self.decode(out, start, start);
        out.truncate(end);
        outcome.map(|control| (used - start, control))
    }

    /// Decodes in place: the frames in `buf[raw..]` are read and their data payload,
    /// unmasked, is written from `out` on (`out <= raw`: headers and control frames taken
    /// out shift what follows them down). This is how the server reads, so a received byte
    /// is unmasked where the socket put it and never copied into a second buffer. Stops
    /// after a control frame. Returns where the payload written ends, where reading
    /// stopped, and the control frame or the error (the payload before an error is good).
    pub fn decode(
        &mut self,
        buf: &mut [u8],
        raw: usize,
        out: usize,
    ) -> (usize, usize, Result<Option<Control>, FrameError>) {
        let (mut pos, mut end) = (raw, out);
        let outcome = loop {
            if pos >= buf.len() {
                break Ok(None);
            }
            if let State::Data(left) = self.state {
                let take = (left.min((buf.len() - pos) as u64)) as usize;
                self.unmask_to(buf, pos, end, take);
                pos += take;
                end += take;
                let left = left - take as u64;
                self.state = if left == 0 { State::Header } else { State::Data(left) };
            } else if let Some(stop) = self.step(buf, &mut pos) {
                break stop;
            }
        };
        (end, pos, outcome)
    }

    /// Reads a header or a control frame's payload from `input[*pos..]`; `Some` when
    /// decoding must stop (a control frame to act on, or an error). Inlined: it runs once
    /// per frame header, and a frame can carry one 16-byte message.
    #[inline(always)]
    fn step(&mut self, input: &[u8], pos: &mut usize) -> Option<Result<Option<Control>, FrameError>> {
        match self.state {
            State::Header => {
                let need = self.header_len();
                let take = (need - self.head_len).min(input.len() - *pos);
                let first = self.head_len == 0;
                self.head[self.head_len..self.head_len + take].copy_from_slice(&input[*pos..*pos + take]);
                self.head_len += take;
                *pos += take;
                if first {
                    if let Err(e) = self.check_first() {
                        return Some(Err(e));
                    }
                }
                if self.head_len >= 2 && self.head_len == self.header_len() {
                    if let Err(e) = self.start_frame() {
                        return Some(Err(e));
                    }
                    if let State::Control { len: 0, .. } = self.state {
                        return Some(self.finish_control());
                    }
                }
                None
            }
            State::Control { len, .. } => {
                let take = (len - self.control.len()).min(input.len() - *pos);
                let start = self.control.len();
                self.control.extend_from_slice(&input[*pos..*pos + take]);
                let mut part = std::mem::take(&mut self.control);
                self.unmask_to(&mut part, start, start, take);
                self.control = part;
                *pos += take;
                (self.control.len() == len).then(|| self.finish_control())
            }
            State::Data(_) => None,
        }
    }

    /// Decodes `input` on a connection that negotiated permessage-deflate, appending the
    /// payload to `out`: plain messages unmasked, compressed ones inflated. Stops after a
    /// control frame, or once `out` grew by `budget` bytes, so one read of a small
    /// compressed message can hand on no more than that before the parser has had it.
    /// Returns how much of `input` was used; the caller feeds the rest again (and calls
    /// again with nothing new while [`Decoder::inflate_pending`]).
    pub fn decode_into(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
        budget: usize,
        max_payload: usize,
    ) -> (usize, Result<Option<Control>, FrameError>) {
        let Some(mut inflater) = self.inflater.take() else {
            return (0, Err(FrameError::Compressed));
        };
        let start = out.len();
        let mut pos = 0;
        let outcome = loop {
            let room = budget.saturating_sub(out.len() - start);
            if let Err(e) = inflater.inflate(out, room, max_payload) {
                break Err(FrameError::Inflate(e));
            }
            // an empty last frame ends its message with no bytes of its own to read
            let ending = matches!(self.state, State::Data(0));
            if out.len() - start >= budget || inflater.busy() || (pos >= input.len() && !ending) {
                break Ok(None);
            }
            let State::Data(left) = self.state else {
                match self.step(input, &mut pos) {
                    Some(stop) => break stop,
                    None => continue,
                }
            };
            let mut take = (left.min((input.len() - pos) as u64)) as usize;
            if !self.compressed {
                take = take.min(budget - (out.len() - start));
            }
            let left = left - take as u64;
            if self.compressed {
                match inflater.take(take, max_payload) {
                    Ok(space) => {
                        space.copy_from_slice(&input[pos..pos + take]);
                        self.unmask_to(space, 0, 0, take);
                    }
                    Err(e) => break Err(FrameError::Inflate(e)),
                }
                if left == 0 && !self.in_message {
                    inflater.end_message();
                }
            } else {
                let at = out.len();
                out.extend_from_slice(&input[pos..pos + take]);
                self.unmask_to(out, at, at, take);
            }
            pos += take;
            self.state = if left == 0 { State::Header } else { State::Data(left) };
        };
        self.inflater = Some(inflater);
        (pos, outcome)
    }

    /// Header size once the first two bytes are known (2 until then).
    fn header_len(&self) -> usize {
        if self.head_len < 2 {
            return 2;
        }
        let ext = match self.head[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.head[1] & MASK != 0 { 4 } else { 0 }
    }

    /// Checks of the first byte, in nats-server's order.
    fn check_first(&self) -> Result<(), FrameError> {
        let b0 = self.head[0];
        if b0 & RSV23 != 0 {
            return Err(FrameError::ReservedBits);
        }
        if b0 & RSV1 != 0 && !self.deflate {
            return Err(FrameError::Compressed);
        }
        Ok(())
    }

    fn start_frame(&mut self) -> Result<(), FrameError> {
        let (b0, b1) = (self.head[0], self.head[1]);
        let opcode = b0 & 0x0F;
        let fin = b0 & FIN != 0;
        let rsv1 = b0 & RSV1 != 0;
        self.masked = b1 & MASK != 0;
        if self.require_mask && !self.masked {
            return Err(FrameError::MaskMissing);
        }
        let short = u64::from(b1 & 0x7F);
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if short > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(FrameError::ControlTooLong);
                }
                if !fin {
                    return Err(FrameError::ControlNotFinal);
                }
                if rsv1 {
                    return Err(FrameError::CompressedControl);
                }
            }
            OP_TEXT | OP_BINARY => {
                if self.in_message {
                    return Err(FrameError::NewBeforeFinal);
                }
                self.in_message = !fin;
                self.compressed = rsv1;
            }
            OP_CONTINUATION => {
                // only a message's first frame says it is compressed
                if !self.in_message || rsv1 {
                    return Err(FrameError::BadContinuation);
                }
                self.in_message = !fin;
            }
            other => return Err(FrameError::UnknownOpcode(other)),
        }
        let (len, ext) = match short {
            126 => (u64::from(u16::from_be_bytes([self.head[2], self.head[3]])), 2),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.head[2..10]);
                let len = u64::from_be_bytes(b);
                if len & (1 << 63) != 0 {
                    return Err(FrameError::Bad64BitLength);
                }
                (len, 8)
            }
            n => (n, 0),
        };
        if self.masked {
            self.mask.copy_from_slice(&self.head[2 + ext..6 + ext]);
        }
        self.mask_pos = 0;
        self.head_len = 0;
        self.state = if is_control(opcode) {
            self.control.clear();
            // `short` is at most 125 here
            State::Control { opcode, len: short as usize }
        } else if len == 0 && !self.compressed {
            State::Header
        } else {
            State::Data(len)
        };
        Ok(())
    }

    fn finish_control(&mut self) -> Result<Option<Control>, FrameError> {
        let State::Control { opcode, .. } = self.state else {
            return Ok(None);
        };
        self.state = State::Header;
        let payload = std::mem::take(&mut self.control);
        match opcode {
            OP_PING => Ok(Some(Control::Ping(payload))),
            OP_CLOSE => close_reply(&payload).map(|reply| Some(Control::Close(reply))),
            _ => Ok(None),
        }
    }

    /// Unmasks the `len` bytes at `buf[from..]` into `buf[to..]` (`to <= from`; the same
    /// place when nothing was taken out before them), in one pass: unmasking while moving
    /// costs what unmasking in place does, where a copy and then an unmask cost two. Every
    /// byte a browser sends passes here (a byte-wise loop cost about 1 ns per byte), so it
    /// goes a block of [`BLOCK`] bytes at a time against the key repeated from the current
    /// phase (a block keeps the phase), which the compiler turns into vector instructions;
    /// the tail goes byte by byte.
    fn unmask_to(&mut self, buf: &mut [u8], from: usize, to: usize, len: usize) {
        if !self.masked {
            if from != to {
                buf.copy_within(from..from + len, to);
            }
            return;
        }
        let phase = self.mask_pos;
        self.mask_pos += len;
        let key: [u8; BLOCK] = std::array::from_fn(|j| self.mask[(phase + j) & 3]);
        // front to back: each block is read before anything is written over it
        let region = &mut buf[to..from + len];
        let gap = from - to;
        let whole = len - len % BLOCK;
        for at in (0..whole).step_by(BLOCK) {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(&region[gap + at..gap + at + BLOCK]);
            for (b, k) in block.iter_mut().zip(key) {
                *b ^= k;
            }
            region[at..at + BLOCK].copy_from_slice(&block);
        }
        for j in whole..len {
            region[j] = region[gap + j] ^ key[j % BLOCK];
        }
    }
}

/// Bytes unmasked per step (a multiple of the key's 4, so every block starts at the same
/// phase).
const BLOCK: usize = 64;

fn is_control(opcode: u8) -> bool {
    matches!(opcode, OP_CLOSE | OP_PING | OP_PONG)
}

/// The close payload nats-server answers a peer's close with: the peer's status and reason
/// echoed, `1007` when the reason is not UTF-8, nothing when the peer sent no status.
fn close_reply(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    match payload.len() {
        0 => Ok(Vec::new()),
        1 => Err(FrameError::CloseOneByte),
        _ => {
            let status = u16::from_be_bytes([payload[0], payload[1]]);
            if !valid_close_status(status) {
                return Err(FrameError::BadCloseStatus(status));
            }
            let body = &payload[2..];
            Ok(match std::str::from_utf8(body) {
                Ok(text) => close_payload(status, text),
                Err(_) => close_payload(CLOSE_INVALID_PAYLOAD, "invalid utf8 body in close frame"),
            })
        }
    }
}

fn valid_close_status(code: u16) -> bool {
    !matches!(code, CLOSE_NO_STATUS | 1004 | 1006 | 1015)
        && (1000..5000).contains(&code)
        && !(1016..=2999).contains(&code)
}

/// A close payload: status, then the reason cut to fit a control frame (with `...` when cut,
/// as nats-server does).
pub fn close_payload(status: u16, reason: &str) -> Vec<u8> {
    let mut out = status.to_be_bytes().to_vec();
    if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
        let mut end = MAX_CONTROL_PAYLOAD - 5;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        out.extend_from_slice(&reason.as_bytes()[..end]);
        out.extend_from_slice(b"...");
    } else {
        out.extend_from_slice(reason.as_bytes());
    }
    out
}

/// Appends the header of an unmasked, final server frame whose payload is `len` bytes.
pub fn encode_header(out: &mut Vec<u8>, opcode: Opcode, len: usize) {
    encode_head(out, final_byte(opcode), len);
}

/// The first byte of a final, uncompressed server frame.
pub fn final_byte(opcode: Opcode) -> u8 {
    FIN | opcode as u8
}

/// The first byte of a server data frame: a message's `first` frame is binary (and says
/// whether the message is `compressed`), the others are continuations; `fin` on the last.
pub fn data_frame_byte(first: bool, fin: bool, compressed: bool) -> u8 {
    let opcode = if first { OP_BINARY } else { OP_CONTINUATION };
    opcode | if fin { FIN } else { 0 } | if compressed && first { RSV1 } else { 0 }
}

/// Appends an unmasked server frame header: first byte `b0`, payload `len` bytes.
pub fn encode_head(out: &mut Vec<u8>, b0: u8, len: usize) {
    out.push(b0);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Frame kinds the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Binary = 0x2,
    Close = 0x8,
    Pong = 0xA,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn client_frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![b0];
        let mbit = if mask.is_some() { MASK } else { 0 };
        let len = payload.len();
        if len < 126 {
            f.push(mbit | len as u8);
        } else if len < 65536 {
            f.push(mbit | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(mbit | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    const K: Option<[u8; 4]> = Some([1, 2, 3, 4]);

    /// Feeds everything, one byte at a time, collecting payload and controls.
    fn run(d: &mut Decoder, bytes: &[u8]) -> Result<(Vec<u8>, Vec<Control>), FrameError> {
        let mut out = BytesMut::new();
        let mut controls = Vec::new();
        for b in bytes.chunks(1) {
            let mut rest = b;
            while !rest.is_empty() {
                let (used, c) = d.feed(rest, &mut out)?;
                controls.extend(c);
                rest = &rest[used..];
            }
        }
        Ok((out.to_vec(), controls))
    }

    #[test]
    fn payload_streams_through_fragments_split_anywhere() {
        let mut bytes = client_frame(OP_BINARY, b"PUB a 5\r\n", K);
        bytes.extend(client_frame(OP_CONTINUATION, b"hel", K));
        bytes.extend(client_frame(FIN | OP_PING, b"p", K));
        bytes.extend(client_frame(FIN | OP_CONTINUATION, b"lo\r\n", K));
        bytes.extend(client_frame(FIN | OP_TEXT, &[0xff, 0xfe], K));
        let (out, controls) = run(&mut Decoder::new(true), &bytes).unwrap();
        assert_eq!(out, b"PUB a 5\r\nhello\r\n\xff\xfe");
        assert_eq!(controls, vec![Control::Ping(b"p".to_vec())]);
    }

    /// As the server reads: frames land behind payload already decoded, and decoding in
    /// place takes the headers and a ping out from between the payloads.
    #[test]
    fn decodes_in_place_behind_earlier_payload() {
        let long: Vec<u8> = (0..300u32).map(|i| (i * 13 + 1) as u8).collect();
        let mut raw = client_frame(OP_BINARY, &long, Some([9, 8, 7, 6]));
        raw.extend(client_frame(FIN | OP_PING, b"hi", K));
        raw.extend(client_frame(FIN | OP_CONTINUATION, b"tail", K));
        let mut buf = b"earlier".to_vec();
        let kept = buf.len();
        buf.extend_from_slice(&raw);
        let mut d = Decoder::new(true);
        let (end, used, c) = d.decode(&mut buf, kept, kept);
        assert_eq!(c, Ok(Some(Control::Ping(b"hi".to_vec()))));
        let rest = buf[used..].to_vec();
        buf.truncate(end);
        let at = buf.len();
        buf.extend_from_slice(&rest);
        let (end, used, c) = d.decode(&mut buf, at, at);
        assert_eq!((c, used), (Ok(None), buf.len()));
        buf.truncate(end);
        assert_eq!(buf, [&b"earlier"[..], &long, b"tail"].concat());
    }

    /// Decodes `raw` as the server's reader does: each read lands behind the payload decoded
    /// so far and is decoded in place; after a control frame the rest of the read is fed
    /// again.
    fn read_in_place(d: &mut Decoder, raw: &[u8], read: usize) -> (Vec<u8>, Vec<Control>) {
        let (mut buf, mut controls) = (Vec::new(), Vec::new());
        for chunk in raw.chunks(read) {
            let mut pending = chunk.to_vec();
            while !pending.is_empty() {
                let at = buf.len();
                buf.extend_from_slice(&pending);
                let (end, used, outcome) = d.decode(&mut buf, at, at);
                controls.extend(outcome.unwrap());
                pending = buf[used..].to_vec();
                buf.truncate(end);
            }
        }
        (buf, controls)
    }

    /// A 1.5 KiB `PUB` cut into masked frames (each with its own key, so the key's phase
    /// starts again at every frame) at every offset mod 4 of the first cut, from inside the
    /// control line into the payload, with a ping between two continuation frames, read in
    /// pieces that split frames and headers anywhere: the parser gets the stream unmasked.
    #[test]
    fn pub_across_frames_and_reads_at_every_phase() {
        let payload: Vec<u8> = (0..1500u32).map(|i| (i * 7 + 3) as u8).collect();
        let stream = [&b"PUB s 1500\r\n"[..], &payload, b"\r\n"].concat();
        for first in 10..22 {
            let mut cuts = vec![0, first];
            while cuts[cuts.len() - 1] + 257 < stream.len() {
                cuts.push(cuts[cuts.len() - 1] + 257);
            }
            cuts.push(stream.len());
            let mut raw = Vec::new();
            for (i, w) in cuts.windows(2).enumerate() {
                let last = w[1] == stream.len();
                let op = if i == 0 { OP_BINARY } else { OP_CONTINUATION };
                let key = [i as u8 * 37 + 1, 0xa5, first as u8, 0x5c ^ i as u8];
                raw.extend(client_frame(if last { FIN | op } else { op }, &stream[w[0]..w[1]], Some(key)));
                if i == 1 {
                    raw.extend(client_frame(FIN | OP_PING, b"mid", K));
                }
            }
            for read in [1, 3, 14, 64, 1000, raw.len()] {
                let (out, controls) = read_in_place(&mut Decoder::new(true), &raw, read);
                assert!(out == stream, "first cut at {first}, reads of {read}");
                assert_eq!(controls, vec![Control::Ping(b"mid".to_vec())]);
            }
        }
    }

    #[test]
    fn word_wise_unmasking_matches_at_every_phase_and_split() {
        let payload: Vec<u8> = (0..1021u32).map(|i| (i * 7 + 3) as u8).collect();
        let bytes = client_frame(FIN | OP_BINARY, &payload, Some([0x3b, 0xa5, 0x5c, 0xe1]));
        for step in [2, 3, 5, 8, 13, 64, 1000, bytes.len()] {
            let mut d = Decoder::new(true);
            let mut out = BytesMut::new();
            for part in bytes.chunks(step) {
                let mut rest = part;
                while !rest.is_empty() {
                    let (used, _) = d.feed(rest, &mut out).unwrap();
                    rest = &rest[used..];
                }
            }
            assert_eq!(&out[..], &payload[..], "fed in pieces of {step}");
        }
    }

    #[test]
    fn announced_size_allocates_nothing() {
        let mut head = vec![FIN | OP_BINARY, MASK | 127];
        head.extend_from_slice(&(64u64 << 20).to_be_bytes());
        head.extend_from_slice(&[0, 0, 0, 0]);
        head.extend_from_slice(b"abc");
        let mut out = BytesMut::new();
        let mut d = Decoder::new(true);
        assert_eq!(d.feed(&head, &mut out).unwrap(), (head.len(), None));
        assert_eq!(&out[..], b"abc");
        assert!(out.capacity() < 1024);
    }

    #[test]
    fn protocol_errors_as_nats_server_words_them() {
        let err = |bytes: &[u8]| run(&mut Decoder::new(true), bytes).unwrap_err().to_string();
        assert_eq!(err(&client_frame(FIN | OP_BINARY, b"x", None)), "mask bit missing");
        assert_eq!(err(&client_frame(FIN | 0x20 | OP_BINARY, b"x", K)), "RSV2 and RSV3 must be clear");
        assert_eq!(
            err(&client_frame(FIN | RSV1 | OP_BINARY, b"x", K)),
            "compressed frame received without negotiated permessage-deflate"
        );
        assert_eq!(err(&client_frame(FIN | 0x3, b"x", K)), "unknown opcode 3");
        assert_eq!(err(&client_frame(FIN | OP_CONTINUATION, b"x", K)), "invalid continuation frame");
        assert_eq!(err(&client_frame(OP_PING, b"x", K)), "control frame does not have final bit set");
        assert_eq!(
            err(&client_frame(FIN | OP_PING, &[0; 126], K)),
            "control frame length bigger than maximum allowed of 125 bytes"
        );
        let mut two = client_frame(OP_BINARY, b"x", K);
        two.extend(client_frame(FIN | OP_BINARY, b"y", K));
        assert_eq!(err(&two), "new message started before final frame for previous message was received");
        let mut huge = vec![FIN | OP_BINARY, MASK | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert_eq!(err(&huge), "invalid 64-bit payload length");
        assert_eq!(err(&client_frame(FIN | OP_CLOSE, b"x", K)), "close frame payload cannot be 1 byte");
        assert_eq!(err(&client_frame(FIN | OP_CLOSE, &1005u16.to_be_bytes(), K)), "invalid close status code 1005");
    }

    #[test]
    fn close_is_echoed_as_nats_server_does() {
        let close = |payload: &[u8]| {
            let (_, c) = run(&mut Decoder::new(true), &client_frame(FIN | OP_CLOSE, payload, K)).unwrap();
            c
        };
        assert_eq!(close(b""), vec![Control::Close(Vec::new())]);
        assert_eq!(close(b"\x03\xe8bye"), vec![Control::Close(b"\x03\xe8bye".to_vec())]);
        let mut bad = 1000u16.to_be_bytes().to_vec();
        bad.push(0xff);
        assert_eq!(close(&bad), vec![Control::Close(close_payload(1007, "invalid utf8 body in close frame"))]);
    }

    #[test]
    fn unmasked_frames_when_the_client_asked() {
        let (out, _) = run(&mut Decoder::new(false), &client_frame(FIN | OP_BINARY, b"PING\r\n", None)).unwrap();
        assert_eq!(out, b"PING\r\n");
    }

    #[test]
    fn long_reasons_are_cut_with_dots() {
        let p = close_payload(1002, &"x".repeat(200));
        assert_eq!(p.len(), 125);
        assert!(p.ends_with(b"..."));
    }

    #[test]
    fn server_frames() {
        let mut out = Vec::new();
        encode_header(&mut out, Opcode::Binary, 300);
        assert_eq!(out, vec![0x82, 126, 1, 44]);
        out.clear();
        encode_header(&mut out, Opcode::Pong, 1);
        assert_eq!(out, vec![0x8A, 1]);
        out.clear();
        encode_header(&mut out, Opcode::Close, 70000);
        assert_eq!(out, vec![0x88, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    /// Random bytes in random splits never panic, and a decoder that accepted them hands on
    /// no more payload than it was given.
    #[test]
    fn arbitrary_input_never_panics() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5000 {
            let len = rng.usize(0..300);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if rng.bool() && !bytes.is_empty() {
                bytes[0] = [0x81, 0x82, 0x80, 0x01, 0x89, 0x88, 0x8A][rng.usize(0..7)];
            }
            let mut d = Decoder::new(rng.bool());
            let mut out = BytesMut::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let cut = rng.usize(1..=rest.len());
                let mut part = &rest[..cut];
                rest = &rest[cut..];
                while !part.is_empty() {
                    match d.feed(part, &mut out) {
                        Ok((used, _)) => part = &part[used..],
                        Err(_) => {
                            part = &[];
                            rest = &[];
                        }
                    }
                }
            }
            assert!(out.len() <= bytes.len());
        }
    }
}
