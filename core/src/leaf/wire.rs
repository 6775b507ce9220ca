//! The leaf port's protocol on the wire: the encoders of what we send. What a peer sends is
//! read by the shared protocol parser in its leaf role ([`crate::proto::LeafRole`]).

use bytes::BytesMut;

/// `LS+ subject`, `LS+ subject queue weight` or `LS- subject [queue]`, per
/// [`crate::leaf::Change`].
pub fn write_interest(out: &mut BytesMut, change: &crate::leaf::Change) {
    use crate::leaf::Change;
    match change {
        Change::Add { subject, queue } => {
            out.extend_from_slice(b"LS+ ");
            out.extend_from_slice(subject);
            if let Some((q, w)) = queue {
                out.extend_from_slice(b" ");
                out.extend_from_slice(q);
                out.extend_from_slice(b" ");
                out.extend_from_slice(itoa::Buffer::new().format(*w).as_bytes());
            }
        }
        Change::Remove { subject, queue } => {
            out.extend_from_slice(b"LS- ");
            out.extend_from_slice(subject);
            if let Some(q) = queue {
                out.extend_from_slice(b" ");
                out.extend_from_slice(q);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// One message to a leaf peer: `LMSG` (or `HMSG` with headers) with the reply and the queue
/// groups it is for. Headers are dropped for a peer that did not declare `headers`.
pub fn write_lmsg(
    out: &mut BytesMut,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[&[u8]],
    header_len: Option<usize>,
    message: &[u8],
    peer_headers: bool,
) {
    let (header_len, message) = match header_len {
        Some(h) if !peer_headers => (None, &message[h.min(message.len())..]),
        h => (h, message),
    };
    out.extend_from_slice(if header_len.is_some() { b"HMSG " } else { b"LMSG " });
    out.extend_from_slice(subject);
    match (reply, queues.is_empty()) {
        (Some(r), true) => {
            out.extend_from_slice(b" ");
            out.extend_from_slice(r);
        }
        (Some(r), false) => {
            out.extend_from_slice(b" + ");
            out.extend_from_slice(r);
        }
        (None, false) => out.extend_from_slice(b" |"),
        (None, true) => {}
    }
    for q in queues {
        out.extend_from_slice(b" ");
        out.extend_from_slice(q);
    }
    let mut num = itoa::Buffer::new();
    if let Some(h) = header_len {
        out.extend_from_slice(b" ");
        out.extend_from_slice(num.format(h).as_bytes());
    }
    out.extend_from_slice(b" ");
    out.extend_from_slice(num.format(message.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(message);
    out.extend_from_slice(b"\r\n");
}
