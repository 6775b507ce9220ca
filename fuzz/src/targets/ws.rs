//! WebSocket frame decoding fed the same bytes whole and in random pieces: the payload
//! delivered, the control frames and the error must not depend on how the bytes arrived.

use arbitrary::Unstructured;
use bytes::BytesMut;
use edgebus_server::ws::frame::Decoder;

pub(super) const DICT: &[&[u8]] = &[
    b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", // masked "Hello"
    b"\x82\x80\0\0\0\0",
    b"\x01\x80\0\0\0\0",
    b"\x80\x80\0\0\0\0",
    b"\x88\x82\0\0\0\0\x03\xe8",
    b"\x89\x80\0\0\0\0",
    b"\x8a\x80\0\0\0\0",
    b"\x82\xfe\x00\x10\0\0\0\0",
    b"\x82\xff\0\0\0\0\0\0\0\x10\0\0\0\0",
    b"\x82\xff\x80\0\0\0\0\0\0\0",
    b"\xc2\x80\0\0\0\0",
    b"\x88\x81\0\0\0\0\x03",
    b"\x09\x80\0\0\0\0",
];

/// Everything the decoder produced: payload bytes, control frames, and how it ended.
fn decode<'a>(mask: bool, pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<u8>, Vec<String>, Option<String>) {
    let mut d = Decoder::new(mask);
    let mut out = BytesMut::new();
    let mut controls = Vec::new();
    for piece in pieces {
        let mut rest = piece;
        while !rest.is_empty() {
            match d.feed(rest, &mut out) {
                Ok((used, control)) => {
                    assert!(used <= rest.len(), "used more than was given");
                    // it stops after every control frame, a PONG (not handed on) included
                    if let Some(c) = control {
                        controls.push(format!("{c:?}"));
                    }
                    assert!(used > 0, "no progress");
                    rest = &rest[used..];
                }
                Err(e) => return (out.to_vec(), controls, Some(e.to_string())),
            }
        }
    }
    (out.to_vec(), controls, None)
}

pub(super) fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mask: bool = u.arbitrary().unwrap_or(true);
    let step: u8 = u.arbitrary().unwrap_or(1);
    let stream = u.take_rest();
    let whole = decode(mask, std::iter::once(stream));
    let pieces = stream.chunks(usize::from(step.max(1)));
    assert_eq!(decode(mask, pieces), whole, "split decode differs from whole");
}
