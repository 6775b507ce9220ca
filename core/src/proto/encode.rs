//! Writers for every protocol operation, appending to a caller's buffer so a host can batch
//! many operations into one write.

use bytes::{BufMut, BytesMut};

fn put_num(out: &mut BytesMut, n: usize) {
    let mut b = itoa::Buffer::new();
    out.put_slice(b.format(n).as_bytes());
}

/// `MSG` or `HMSG` for one delivery. When the receiving connection did not enable headers
/// the header block is cut off and a plain `MSG` carries the payload alone, as nats-server
/// does.
pub fn write_msg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    message: &[u8],
    headers_ok: bool,
) {
    let (header_len, message) = match header_len {
        Some(h) if headers_ok => (Some(h), message),
        Some(h) => (None, &message[h.min(message.len())..]),
        None => (None, message),
    };
    let verb: &[u8] = if header_len.is_some() { b"HMSG " } else { b"MSG " };
    write_message_op(out, verb, subject, Some(sid), reply, header_len, message);
}

/// The shared layout of `MSG`/`HMSG` and `PUB`/`HPUB`:
/// `<verb><subject> [<sid> ][<reply> ][<#hdr> ]<#total>\r\n<message>\r\n`.
fn write_message_op(
    out: &mut BytesMut,
    verb: &[u8],
    subject: &[u8],
    sid: Option<&[u8]>,
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    message: &[u8],
) {
    out.reserve(
        verb.len() + subject.len() + sid.map_or(0, |s| s.len()) + reply.map_or(0, |r| r.len()) + message.len() + 32,
    );
    out.put_slice(verb);
    out.put_slice(subject);
    out.put_u8(b' ');
    for part in [sid, reply].into_iter().flatten() {
        out.put_slice(part);
        out.put_u8(b' ');
    }
    if let Some(h) = header_len {
        put_num(out, h);
        out.put_u8(b' ');
    }
    put_num(out, message.len());
    out.put_slice(b"\r\n");
    out.put_slice(message);
    out.put_slice(b"\r\n");
}

/// `PUB` or `HPUB` (client side).
pub fn write_pub(out: &mut BytesMut, subject: &[u8], reply: Option<&[u8]>, header_len: Option<usize>, message: &[u8]) {
    let verb: &[u8] = if header_len.is_some() { b"HPUB " } else { b"PUB " };
    write_message_op(out, verb, subject, None, reply, header_len, message);
}

/// `SUB` (client side).
pub fn write_sub(out: &mut BytesMut, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
    out.put_slice(b"SUB ");
    out.put_slice(subject);
    out.put_u8(b' ');
    if let Some(q) = queue {
        out.put_slice(q);
        out.put_u8(b' ');
    }
    out.put_slice(sid);
    out.put_slice(b"\r\n");
}

/// `UNSUB` (client side).
pub fn write_unsub(out: &mut BytesMut, sid: &[u8], max: Option<u64>) {
    out.put_slice(b"UNSUB ");
    out.put_slice(sid);
    if let Some(m) = max {
        out.put_u8(b' ');
        let mut b = itoa::Buffer::new();
        out.put_slice(b.format(m).as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// `INFO {json} \r\n`, with the space before CRLF that nats-server emits.
pub fn write_info(out: &mut BytesMut, json: &[u8]) {
    out.put_slice(b"INFO ");
    out.put_slice(json);
    out.put_slice(b" \r\n");
}

/// `CONNECT {json}\r\n` (client side).
pub fn write_connect(out: &mut BytesMut, json: &[u8]) {
    out.put_slice(b"CONNECT ");
    out.put_slice(json);
    out.put_slice(b"\r\n");
}

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_forms() {
        let mut b = BytesMut::new();
        write_msg(&mut b, b"foo", b"1", Some(b"bar"), None, b"hello", true);
        write_msg(&mut b, b"foo", b"1", Some(b"reply"), Some(18), b"NATS/1.0\r\nA: B\r\n\r\nhello", true);
        write_msg(&mut b, b"foo", b"2", None, Some(18), b"NATS/1.0\r\nA: B\r\n\r\nhello", false);
        assert_eq!(
            &b[..],
            &b"MSG foo 1 bar 5\r\nhello\r\nHMSG foo 1 reply 18 23\r\nNATS/1.0\r\nA: B\r\n\r\nhello\r\nMSG foo 2 5\r\nhello\r\n"[..]
        );
    }
}
