//! permessage-deflate (RFC 7692) as nats-server negotiates it: always without context
//! takeover either way, so every message is compressed and inflated with a fresh state and
//! nothing is kept between messages but the two codec objects, reused. Sans-IO.
//!
//! Inflating streams: compressed bytes go in as frames bring them and come out into the
//! caller's buffer a bounded amount at a time, so a small message that inflates to gigabytes
//! (a deflate bomb) costs the server no more memory than the amount it lets through before
//! refusing the message. The limits are nats-server's (`wsDecompressAndParse`): one
//! message may inflate to at most `max_payload` bytes, and its compressed size may be at
//! most 8 × `max_payload` (64 MiB at most).
//!
//! `flate2` over its pure-Rust `miniz_oxide` backend does the deflate itself.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Buffers of at most this many bytes go out uncompressed (nats-server's
/// `wsCompressThreshold`): deflating them would save nothing.
pub const COMPRESS_THRESHOLD: usize = 64;

/// What ends a sync-flushed deflate stream; a sender takes it off every message and a
/// receiver puts it back (RFC 7692 §7.2.1).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Put back after a message's bytes: the sync tail, then an empty final stored block, so
/// a message whose deflate stream is complete ends the stream, and one cut short is seen
/// to be (nats-server's `compressLastBlock`).
const LAST_BLOCK: [u8; 9] = [0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff];

/// nats-server's `wsMaxMsgPayloadMultiple` and `wsMaxMsgPayloadLimit`.
const COMPRESSED_MULTIPLE: u64 = 8;
const COMPRESSED_LIMIT: u64 = 64 << 20;

/// Most output one inflate call writes: the buffer it lands in grows by this much at a time.
const INFLATE_STEP: usize = 16 * 1024;

/// Why an inflated message was refused; the text is nats-server's (Go's `flate` words the
/// first two), logged as a read error before the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    Corrupt,
    UnexpectedEof,
    MaxPayload,
}

impl InflateError {
    pub fn text(self) -> &'static str {
        match self {
            InflateError::Corrupt => "flate: corrupt input",
            InflateError::UnexpectedEof => "unexpected EOF",
            InflateError::MaxPayload => "maximum payload exceeded",
        }
    }
}

/// Compresses outgoing buffers, one message each.
pub struct Deflater {
    codec: Compress,
    out: Vec<u8>,
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    pub fn new() -> Self {
        // nats-server compresses with `flate.BestSpeed`
        Deflater { codec: Compress::new(Compression::fast(), false), out: Vec::new() }
    }

    /// `data` deflated as one message, the sync tail taken off. The state starts afresh
    /// for every message (`server_no_context_takeover`).
    pub fn compress(&mut self, data: &[u8]) -> &[u8] {
        self.codec.reset();
        self.out.clear();
        let mut used = 0;
        loop {
            self.out.reserve((data.len() - used) / 2 + 64);
            let before = self.codec.total_in();
            // cannot fail: the input is plain bytes and the state was just reset
            let _ = self.codec.compress_vec(&data[used..], &mut self.out, FlushCompress::Sync);
            used += (self.codec.total_in() - before) as usize;
            // the flush is complete once it left room in the output
            if used == data.len() && self.out.len() < self.out.capacity() {
                break;
            }
        }
        let body = self.out.strip_suffix(&SYNC_TAIL).map_or(self.out.len(), <[u8]>::len);
        &self.out[..body]
    }
}

/// Inflates incoming compressed messages.
pub struct Inflater {
    codec: Decompress,
    /// Compressed bytes received (unmasked) and not inflated yet; `at` is how far in.
    pending: Vec<u8>,
    at: usize,
    /// Of the current message: compressed bytes received, bytes inflated.
    taken_in: u64,
    given_out: usize,
    /// The message's last frame is in `pending`, with [`LAST_BLOCK`] after it.
    last_in: bool,
    /// The deflate stream reached its final block: whatever follows is dropped.
    stream_end: bool,
    /// The last inflate filled its output: the codec may hold more without new input.
    full: bool,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    pub fn new() -> Self {
        Inflater {
            codec: Decompress::new(false),
            pending: Vec::new(),
            at: 0,
            taken_in: 0,
            given_out: 0,
            last_in: false,
            stream_end: false,
            full: false,
        }
    }

    /// Whether [`Inflater::inflate`] has work without new input.
    pub fn busy(&self) -> bool {
        self.at < self.pending.len() || self.full
    }

    /// Space for compressed bytes of the current message (`len`, unmasked by the caller
    /// in the slice returned), refused past nats-server's compressed-size limit.
    pub fn take(&mut self, len: usize, max_payload: usize) -> Result<&mut [u8], InflateError> {
        self.taken_in += len as u64;
        let limit = (max_payload as u64).saturating_mul(COMPRESSED_MULTIPLE).min(COMPRESSED_LIMIT);
        if self.taken_in > limit {
            return Err(InflateError::MaxPayload);
        }
        if self.at == self.pending.len() {
            self.pending.clear();
            self.at = 0;
        }
        let start = self.pending.len();
        self.pending.resize(start + len, 0);
        Ok(&mut self.pending[start..])
    }

    /// The current message's last frame is all taken.
    pub fn end_message(&mut self) {
        self.pending.extend_from_slice(&LAST_BLOCK);
        self.last_in = true;
    }

    /// Inflates what is pending into `out`, at most `room` bytes. Bytes up to the
    /// message's `max_payload` are written before the error that refuses the rest.
    pub fn inflate(&mut self, out: &mut bytes::BytesMut, room: usize, max_payload: usize) -> Result<(), InflateError> {
        let mut room = room;
        while self.busy() && room > 0 && !self.stream_end {
            // one byte past the limit shows that the message is too long
            let allowed = (max_payload + 1).saturating_sub(self.given_out);
            let step = room.min(INFLATE_STEP).min(allowed);
            let start = out.len();
            out.resize(start + step, 0);
            let (in0, out0) = (self.codec.total_in(), self.codec.total_out());
            let status = self.codec.decompress(&self.pending[self.at..], &mut out[start..], FlushDecompress::None);
            let used = (self.codec.total_in() - in0) as usize;
            let made = (self.codec.total_out() - out0) as usize;
            out.truncate(start + made);
            self.at += used;
            self.full = made == step;
            self.given_out += made;
            room -= made;
            if self.given_out > max_payload {
                out.truncate(out.len() - (self.given_out - max_payload));
                self.reset();
                return Err(InflateError::MaxPayload);
            }
            match status {
                Ok(Status::StreamEnd) => self.stream_end = true,
                Ok(_) if used == 0 && made == 0 => break,
                Ok(_) => {}
                Err(_) => {
                    self.reset();
                    return Err(InflateError::Corrupt);
                }
            }
        }
        if self.stream_end {
            // nothing after the final block counts (Go's reader stops there too)
            self.at = self.pending.len();
            self.full = false;
        }
        if self.last_in && !self.busy() {
            let complete = self.stream_end;
            self.reset();
            if !complete {
                return Err(InflateError::UnexpectedEof);
            }
        }
        Ok(())
    }

    /// Ready for the next message: a fresh state (`client_no_context_takeover`).
    fn reset(&mut self) {
        self.codec.reset(false);
        self.pending.clear();
        self.at = 0;
        self.taken_in = 0;
        self.given_out = 0;
        self.last_in = false;
        self.stream_end = false;
        self.full = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bytes::BytesMut;

    /// A client's compression of `data`, for the inflater: raw deflate, sync-flushed, the
    /// tail taken off (what the Deflater does, checked against an independent inflate).
    fn deflated(data: &[u8]) -> Vec<u8> {
        Deflater::new().compress(data).to_vec()
    }

    fn inflate_all(inf: &mut Inflater, z: &[u8], max: usize) -> (Vec<u8>, Result<(), InflateError>) {
        inf.take(z.len(), max).unwrap().copy_from_slice(z);
        inf.end_message();
        let mut out = BytesMut::new();
        let r = loop {
            match inf.inflate(&mut out, 1000, max) {
                Ok(()) if inf.busy() => continue,
                r => break r,
            }
        };
        (out.to_vec(), r)
    }

    #[test]
    fn round_trips_with_a_fresh_state_per_message() {
        let text: Vec<u8> = b"MSG subject 1 10\r\n0123456789\r\n".repeat(200);
        let mut d = Deflater::new();
        let first = d.compress(&text).to_vec();
        assert!(!first.ends_with(&SYNC_TAIL) && first.len() < text.len() / 10);
        // no context takeover: the same input compresses to the same bytes
        assert_eq!(d.compress(&text), &first[..]);
        let mut inf = Inflater::new();
        for _ in 0..2 {
            let (out, r) = inflate_all(&mut inf, &first, 1 << 20);
            assert_eq!((out, r), (text.clone(), Ok(())));
        }
    }

    #[test]
    fn output_comes_at_most_room_bytes_at_a_time() {
        let text = vec![b'z'; 100_000];
        let z = deflated(&text);
        let mut inf = Inflater::new();
        inf.take(z.len(), 1 << 20).unwrap().copy_from_slice(&z);
        inf.end_message();
        let mut out = BytesMut::new();
        let mut calls = 0;
        while inf.busy() {
            let before = out.len();
            inf.inflate(&mut out, 4096, 1 << 20).unwrap();
            assert!(out.len() - before <= 4096);
            calls += 1;
        }
        assert_eq!(out.len(), text.len());
        assert!(calls >= 100_000 / 4096);
    }

    #[test]
    fn a_bomb_stops_at_max_payload() {
        let z = deflated(&vec![0u8; 8 << 20]);
        let (out, r) = inflate_all(&mut Inflater::new(), &z, 1 << 20);
        assert_eq!(r, Err(InflateError::MaxPayload));
        assert_eq!(out.len(), 1 << 20);
    }

    #[test]
    fn compressed_size_is_limited_too() {
        let mut inf = Inflater::new();
        assert!(inf.take(8 * 100, 100).is_ok());
        assert_eq!(inf.take(1, 100).unwrap_err(), InflateError::MaxPayload);
    }

    #[test]
    fn corrupt_and_cut_short_streams() {
        // block type 3 does not exist
        assert_eq!(inflate_all(&mut Inflater::new(), &[0xff, 0xff], 100).1, Err(InflateError::Corrupt));
        let z = deflated(&(0..=255u8).cycle().take(3000).collect::<Vec<_>>());
        let (_, r) = inflate_all(&mut Inflater::new(), &z[..z.len() / 2], 1 << 20);
        assert_eq!(r, Err(InflateError::UnexpectedEof));
        // after an error the next message starts afresh
        let mut inf = Inflater::new();
        let _ = inflate_all(&mut inf, &[0xff, 0xff], 100);
        assert_eq!(inflate_all(&mut inf, &deflated(b"PING\r\n"), 100), (b"PING\r\n".to_vec(), Ok(())));
    }

    #[test]
    fn a_final_block_ends_the_message() {
        // a whole deflate stream (with its final block) as the message: what follows is dropped
        let mut c = Compress::new(Compression::fast(), false);
        let mut z = Vec::with_capacity(100);
        c.compress_vec(b"PONG\r\n", &mut z, FlushCompress::Finish).unwrap();
        z.extend_from_slice(b"junk");
        assert_eq!(inflate_all(&mut Inflater::new(), &z, 100), (b"PONG\r\n".to_vec(), Ok(())));
    }

    #[test]
    fn small_and_empty_messages() {
        assert_eq!(inflate_all(&mut Inflater::new(), &deflated(b""), 10), (Vec::new(), Ok(())));
        assert_eq!(inflate_all(&mut Inflater::new(), &deflated(b"x"), 1), (b"x".to_vec(), Ok(())));
    }
}

/// Compressed messages through the frame decoder ([`super::frame::Decoder::decode_into`]).
#[cfg(test)]
mod frames {
    #![allow(clippy::unwrap_used)]

    use bytes::BytesMut;

    use super::super::frame::{Control, Decoder, FrameError};
    use super::{Deflater, InflateError};

    const FIN: u8 = 0x80;
    const RSV1: u8 = 0x40;

    fn masked(b0: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut f = vec![b0];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    /// Feeds `raw` in reads of `read` bytes, each decoded with `budget` until used up,
    /// as the server's reader does; returns the payload, the controls, and the error.
    fn read_all(raw: &[u8], read: usize, budget: usize, max: usize) -> (Vec<u8>, Vec<Control>, Option<FrameError>) {
        let mut d = Decoder::inflating(true);
        let (mut out, mut controls) = (BytesMut::new(), Vec::new());
        let mut input = Vec::new();
        for chunk in raw.chunks(read) {
            input.extend_from_slice(chunk);
            while !input.is_empty() || d.inflate_pending() {
                let before = out.len();
                let (used, outcome) = d.decode_into(&input, &mut out, budget, max);
                assert!(out.len() - before <= budget);
                input.drain(..used);
                match outcome {
                    Ok(c) => controls.extend(c),
                    Err(e) => return (out.to_vec(), controls, Some(e)),
                }
                if used == 0 && !d.inflate_pending() {
                    break;
                }
            }
        }
        (out.to_vec(), controls, None)
    }

    #[test]
    fn compressed_and_plain_messages_fragmented_and_read_in_pieces() {
        let first = [&b"PUB s 3000\r\n"[..], &[b'q'; 3000], b"\r\n"].concat();
        let z = Deflater::new().compress(&first).to_vec();
        let mut raw = masked(0x02 | RSV1, &z[..5], [1, 2, 3, 4]);
        raw.extend(masked(FIN | 0x9, b"hi", [5, 6, 7, 8]));
        raw.extend(masked(0x00, &z[5..z.len() - 2], [9, 9, 9, 9]));
        raw.extend(masked(FIN, &z[z.len() - 2..], [7, 1, 7, 1]));
        raw.extend(masked(FIN | 0x02, b"PING\r\n", [3, 3, 3, 3]));
        raw.extend(masked(FIN | 0x02 | RSV1, Deflater::new().compress(b"PONG\r\n"), [4, 4, 4, 4]));
        let expected = [&first[..], b"PING\r\n", b"PONG\r\n"].concat();
        for read in [1, 7, 64, raw.len()] {
            for budget in [1, 100, 1 << 20] {
                let (out, controls, err) = read_all(&raw, read, budget, 1 << 20);
                assert_eq!((out == expected, err), (true, None), "reads of {read}, budget {budget}");
                assert_eq!(controls, vec![Control::Ping(b"hi".to_vec())]);
            }
        }
    }

    /// A message whose last frame is empty, the last bytes read: it ends there and then
    /// (a stream cut short is refused in the same call, not when more bytes come).
    #[test]
    fn an_empty_last_frame_ends_the_message_at_once() {
        let z = Deflater::new().compress(b"PUB a 1\r\nx\r\n").to_vec();
        let mut raw = masked(0x02 | RSV1, &z, [1, 2, 3, 4]);
        raw.extend(masked(FIN, b"", [5, 6, 7, 8]));
        let mut d = Decoder::inflating(true);
        let mut out = BytesMut::new();
        assert_eq!(d.decode_into(&raw, &mut out, 1 << 16, 1 << 20), (raw.len(), Ok(None)));
        assert_eq!(&out[..], b"PUB a 1\r\nx\r\n");
        let long = Deflater::new().compress(&(0..=255u8).cycle().take(3000).collect::<Vec<_>>()).to_vec();
        let mut cut = masked(0x02 | RSV1, &long[..long.len() / 2], [1, 2, 3, 4]);
        cut.extend(masked(FIN, b"", [5, 6, 7, 8]));
        let (used, outcome) = d.decode_into(&cut, &mut out, 1 << 16, 1 << 20);
        assert_eq!((used, outcome), (cut.len(), Err(FrameError::Inflate(InflateError::UnexpectedEof))));
    }

    #[test]
    fn a_bomb_is_refused_with_at_most_max_payload_handed_on() {
        let z = Deflater::new().compress(&vec![0u8; 16 << 20]).to_vec();
        let raw = masked(FIN | 0x02 | RSV1, &z, [1, 2, 3, 4]);
        let (out, _, err) = read_all(&raw, 4096, 64 << 10, 1 << 20);
        assert_eq!((out.len(), err), (1 << 20, Some(FrameError::Inflate(InflateError::MaxPayload))));
    }

    #[test]
    fn frame_rules_with_compression() {
        let err = |raw: &[u8]| read_all(raw, raw.len(), 1 << 16, 1 << 20).2;
        // a control frame cannot be compressed, nor a continuation say so
        assert_eq!(err(&masked(FIN | RSV1 | 0x9, b"", [0; 4])), Some(FrameError::CompressedControl));
        let mut raw = masked(0x02 | RSV1, b"", [0; 4]);
        raw.extend(masked(FIN | RSV1, b"", [0; 4]));
        assert_eq!(err(&raw), Some(FrameError::BadContinuation));
        let corrupt = masked(FIN | 0x02 | RSV1, &[0xff, 0xff], [0; 4]);
        assert_eq!(err(&corrupt), Some(FrameError::Inflate(InflateError::Corrupt)));
        assert_eq!(FrameError::Inflate(InflateError::Corrupt).close_payload(), b"\x03\xe9Read Error");
        // without negotiation RSV1 stays a protocol error
        let mut out = BytesMut::new();
        assert_eq!(Decoder::new(true).feed(&corrupt, &mut out), Err(FrameError::Compressed));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mut rng = fastrand::Rng::with_seed(11);
        let z = Deflater::new().compress(&[b'a'; 500]).to_vec();
        for _ in 0..3000 {
            let mut raw = masked(FIN | 0x02 | RSV1, &z, [rng.u8(..), 1, 2, 3]);
            for _ in 0..rng.usize(0..4) {
                let at = rng.usize(0..raw.len());
                raw[at] = rng.u8(..);
            }
            let (out, _, _) = read_all(&raw, rng.usize(1..64), rng.usize(1..1000), 4096);
            assert!(out.len() <= 4096);
        }
    }
}
