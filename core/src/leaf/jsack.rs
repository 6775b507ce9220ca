//! JetStream deliveries across a leaf link. A push consumer's message is routed on its
//! deliver subject but shown to the client with the stream subject it was stored under; a
//! link carries one subject, so nats-server sends the deliver subject (the peer routes on it)
//! and appends the stream subject to the `$JS.ACK` reply after an `@`
//! (`$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>@<subject>`). The last hop
//! to a client splits it off again. A mirror in the cluster relies on both halves: the deliver
//! subject to reach it, the stream subject to store the message under.

use alloc::borrow::Cow;
use alloc::vec::Vec;

const ACK_PREFIX: &[u8] = b"$JS.ACK.";

/// The subject and reply of the `LMSG` for a message routed on `route` and shown as `shown`
/// (they differ only for JetStream deliveries).
pub fn delivery_out<'a>(
    route: &'a [u8],
    shown: &'a [u8],
    reply: Option<&'a [u8]>,
) -> (&'a [u8], Option<Cow<'a, [u8]>>) {
    match reply {
        Some(r) if route != shown && !r.is_empty() && deliver_at(r).is_none() => {
            let mut joined = Vec::with_capacity(r.len() + 1 + shown.len());
            joined.extend_from_slice(r);
            joined.push(b'@');
            joined.extend_from_slice(shown);
            (route, Some(Cow::Owned(joined)))
        }
        _ => (shown, reply.map(Cow::Borrowed)),
    }
}

/// What a message that came over a link shows and answers to: `(shown subject, reply)`, the
/// stream subject and the plain ack reply when the reply carries one after an `@`, else the
/// subject and reply as they came.
pub fn delivery_in<'a>(subject: &'a [u8], reply: Option<&'a [u8]>) -> (&'a [u8], Option<&'a [u8]>) {
    if let Some(r) = reply {
        if let Some(at) = deliver_at(r).filter(|&at| at + 1 < r.len()) {
            return (&r[at + 1..], Some(&r[..at]));
        }
    }
    (subject, reply)
}

/// Where the `@` is in an ack reply carrying a subject: the first one after the eight dots of
/// the ack tokens (stream and consumer names may hold an `@` themselves), as nats-server's
/// `jsAckDeliverIdx` finds it.
fn deliver_at(reply: &[u8]) -> Option<usize> {
    if !reply.starts_with(ACK_PREFIX) {
        return None;
    }
    let mut dots = 0;
    for (i, &b) in reply.iter().enumerate() {
        match b {
            b'.' => dots += 1,
            b'@' if dots >= 8 => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ACK: &[u8] = b"$JS.ACK.S.C.1.5.5.1700000000000000000.0";

    #[test]
    fn a_delivery_goes_out_on_its_deliver_subject_with_the_stream_subject_in_the_reply() {
        let (subject, reply) = delivery_out(b"deliver.x", b"orders.new", Some(ACK));
        assert_eq!(subject, b"deliver.x");
        let reply = reply.unwrap();
        assert_eq!(&reply[..], b"$JS.ACK.S.C.1.5.5.1700000000000000000.0@orders.new");
        assert_eq!(delivery_in(subject, Some(&reply)), (&b"orders.new"[..], Some(ACK)));
    }

    #[test]
    fn plain_messages_and_marked_replies_pass_unchanged() {
        assert_eq!(
            delivery_out(b"a.b", b"a.b", Some(b"_INBOX.1")),
            (&b"a.b"[..], Some(Cow::Borrowed(&b"_INBOX.1"[..])))
        );
        assert_eq!(delivery_out(b"d.x", b"s.y", None), (&b"s.y"[..], None));
        let marked = b"$JS.ACK.S.C.1.5.5.1.0@s.y";
        assert_eq!(delivery_out(b"d.x", b"s.y", Some(marked)).1.unwrap().len(), marked.len());
        assert_eq!(delivery_in(b"a.b", Some(b"_INBOX.x@y")), (&b"a.b"[..], Some(&b"_INBOX.x@y"[..])));
        // an `@` inside the stream or consumer name is not the marker; a trailing one carries nothing
        let named = b"$JS.ACK.S@1.C.1.5.5.1.0";
        assert_eq!(delivery_in(b"d", Some(named)), (&b"d"[..], Some(&named[..])));
        let empty = b"$JS.ACK.S.C.1.5.5.1.0@";
        assert_eq!(delivery_in(b"d", Some(empty)), (&b"d"[..], Some(&empty[..])));
    }
}
