//! The acknowledgement protocol: what a reply on a `$JS.ACK` subject says (`+ACK`, `-NAK`
//! with an optional delay, `+WPI`, `+TERM` with a reason, `+NXT`, an empty body), how the
//! ack floor moves under each ack policy, and the ack subjects themselves (v1 and v2
//! forms), which the hosts also read to tell acks from other traffic before any parsing.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use super::{AckPolicy, Consumer, Outbound};
use crate::duration;
use crate::jetstream::Interest;

/// What happened to one acknowledged message, for retention and advisories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// These stream sequences are now acknowledged by this consumer.
    Acked(Vec<u64>),
    /// The message was terminated (no more deliveries).
    Terminated {
        sseq: u64,
        cseq: u64,
        deliveries: u32,
        reason: String,
    },
    Naked {
        sseq: u64,
        cseq: u64,
        deliveries: u32,
    },
    /// Nothing to do (in progress, unknown sequence, duplicate ack).
    None,
}

impl Consumer {
    /// Handles an ack published to `$JS.ACK.…` for stream sequence `sseq`.
    pub fn ack(
        &mut self,
        now: u64,
        sseq: u64,
        body: &[u8],
        next_reply: Option<&Bytes>,
        interest: &dyn Interest,
        out: &mut Vec<Outbound>,
    ) -> AckOutcome {
        self.last_active = now;
        let body = trim(body);
        let (verb, rest) = match body.iter().position(|b| *b == b' ') {
            Some(i) => (&body[..i], trim(&body[i + 1..])),
            None => (body, &b""[..]),
        };
        match verb {
            b"" | b"+ACK" | b"+OK" => self.do_ack(sseq),
            b"+NXT" => {
                let r = self.do_ack(sseq);
                if let Some(reply) = next_reply {
                    self.add_pull(now, reply.clone(), rest, interest, out);
                }
                r
            }
            b"+WPI" => {
                if let Some(p) = self.state.pending.get(&sseq).copied() {
                    self.timers.remove(&(p.deadline, sseq));
                    let deadline = now + self.ack_wait(p.deliveries);
                    if let Some(pm) = self.state.pending.get_mut(&sseq) {
                        pm.deadline = deadline;
                    }
                    self.timers.insert((deadline, sseq));
                }
                AckOutcome::None
            }
            b"-NAK" => {
                let Some(p) = self.state.pending.get(&sseq).copied() else { return AckOutcome::None };
                let delay = parse_nak_delay(rest);
                self.timers.remove(&(p.deadline, sseq));
                if delay > 0 {
                    let deadline = now + delay;
                    if let Some(pm) = self.state.pending.get_mut(&sseq) {
                        pm.deadline = deadline;
                    }
                    self.timers.insert((deadline, sseq));
                } else {
                    self.redeliver.insert(sseq);
                }
                AckOutcome::Naked { sseq, cseq: p.cseq, deliveries: p.deliveries }
            }
            b"+TERM" => {
                let Some(p) = self.state.pending.remove(&sseq) else { return AckOutcome::None };
                self.timers.remove(&(p.deadline, sseq));
                self.redeliver.remove(&sseq);
                self.update_ack_floor();
                self.dirty = true;
                AckOutcome::Terminated {
                    sseq,
                    cseq: p.cseq,
                    deliveries: p.deliveries,
                    reason: String::from_utf8_lossy(rest).into_owned(),
                }
            }
            _ => AckOutcome::None,
        }
    }

    fn do_ack(&mut self, sseq: u64) -> AckOutcome {
        let acked: Vec<u64> = match self.state.config.ack_policy {
            AckPolicy::None => return AckOutcome::None,
            AckPolicy::Explicit => {
                let Some(p) = self.state.pending.remove(&sseq) else { return AckOutcome::None };
                self.timers.remove(&(p.deadline, sseq));
                self.redeliver.remove(&sseq);
                // nats-server's floor rule: with nothing pending the floor is everything
                // delivered; acking the next delivery after the floor moves it up to just
                // below the next pending message.
                if self.state.pending.is_empty() {
                    self.state.ack_floor_c = self.state.dseq;
                    self.state.ack_floor_s = self.state.sseq.saturating_sub(1);
                } else if p.cseq == self.state.ack_floor_c + 1 {
                    self.state.ack_floor_c = p.cseq;
                    self.state.ack_floor_s = sseq;
                    if let Some((ss, np)) = self.state.pending.range(sseq + 1..).next() {
                        self.state.ack_floor_c = np.cseq.saturating_sub(1);
                        self.state.ack_floor_s = ss - 1;
                    }
                }
                alloc::vec![sseq]
            }
            AckPolicy::All | AckPolicy::FlowControl => {
                let Some(p) = self.state.pending.get(&sseq).copied() else { return AckOutcome::None };
                if p.cseq <= self.state.ack_floor_c {
                    return AckOutcome::None;
                }
                let acked: Vec<u64> = self.state.pending.range(..=sseq).map(|(s, _)| *s).collect();
                for s in &acked {
                    if let Some(p) = self.state.pending.remove(s) {
                        self.timers.remove(&(p.deadline, *s));
                    }
                    self.redeliver.remove(s);
                }
                self.state.ack_floor_c = p.cseq;
                self.state.ack_floor_s = sseq;
                acked
            }
        };
        self.dirty = true;
        AckOutcome::Acked(acked)
    }

    pub(super) fn update_ack_floor(&mut self) {
        match self.state.pending.iter().next() {
            None => {
                self.state.ack_floor_s = self.state.delivered_sseq;
                self.state.ack_floor_c = self.state.dseq;
            }
            Some((s, p)) => {
                self.state.ack_floor_s = s.saturating_sub(1).max(self.state.ack_floor_s.min(s.saturating_sub(1)));
                self.state.ack_floor_c = p.cseq.saturating_sub(1);
            }
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// `-NAK {"delay": ns}` or `-NAK 5s`.
fn parse_nak_delay(rest: &[u8]) -> u64 {
    if rest.is_empty() {
        return 0;
    }
    let json = serde_json::from_slice::<serde_json::Value>(rest).ok();
    let fields = json.as_ref().and_then(|v| crate::json::Fields::of(v, "struct Delay").ok());
    if let Some(delay) = fields.and_then(|f| f.get::<i64>("delay", 0).ok()) {
        return delay.max(0) as u64;
    }
    core::str::from_utf8(rest).ok().and_then(|s| duration::parse(s).ok()).unwrap_or(0)
}

/// What a `$JS.ACK` subject says about the message it acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRef<'a> {
    pub stream: &'a [u8],
    pub consumer: &'a [u8],
    pub deliveries: u64,
    pub stream_seq: u64,
    pub consumer_seq: u64,
}

pub use crate::proto::ACK_PREFIX;

/// Reads an ack subject, accepting the v1 (9 tokens) and v2 (11 or more) forms.
pub fn parse_ack_subject(subject: &[u8]) -> Option<AckRef<'_>> {
    // tokens on the stack: this runs for every ack
    let mut toks: [&[u8]; 12] = [&[]; 12];
    let mut n = 0;
    for t in subject.split(|b| *b == b'.') {
        if n < toks.len() {
            toks[n] = t;
        }
        n += 1;
    }
    let off = match n {
        9 => 2,
        n if n >= 11 => 4,
        _ => return None,
    };
    let num = |t: &[u8]| core::str::from_utf8(t).ok()?.parse::<u64>().ok();
    Some(AckRef {
        stream: toks[off],
        consumer: toks[off + 1],
        deliveries: num(toks[off + 2])?,
        stream_seq: num(toks[off + 3])?,
        consumer_seq: num(toks[off + 4])?,
    })
}

/// An ack subject read whole: besides what [`parse_ack_subject`] gives the engine, the
/// delivery time (ns) and the messages still pending, which clients show as a message's
/// metadata (and KV watchers as an entry's `delta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckMeta<'a> {
    pub ack: AckRef<'a>,
    pub timestamp: u64,
    pub pending: u64,
}

pub fn parse_ack_meta(subject: &[u8]) -> Option<AckMeta<'_>> {
    if !subject.starts_with(ACK_PREFIX) {
        return None;
    }
    let ack = parse_ack_subject(subject)?;
    let n = subject.split(|b| *b == b'.').count();
    let off = if n == 9 { 2 } else { 4 };
    let mut toks = subject.split(|b| *b == b'.').skip(off + 5);
    let mut num = || core::str::from_utf8(toks.next()?).ok()?.parse::<u64>().ok();
    Some(AckMeta { ack, timestamp: num()?, pending: num()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_meta_time_and_pending() {
        let fields = |m: AckMeta<'_>| (m.ack.stream_seq, m.timestamp, m.pending);
        let v1 = parse_ack_meta(b"$JS.ACK.KV_b.c1.1.42.7.1700000000000000000.3").map(fields);
        assert_eq!(v1, Some((42, 1_700_000_000_000_000_000, 3)));
        let v2 = parse_ack_meta(b"$JS.ACK.hub.ACCHASH.ORDERS.worker.1.9.4.1700000000000000000.5.tok").map(fields);
        assert_eq!(v2, Some((9, 1_700_000_000_000_000_000, 5)));
        assert!(parse_ack_meta(b"_INBOX.x").is_none());
        assert!(parse_ack_meta(b"$JS.ACK.S.C.1.2.3.notatime.0").is_none());
    }

    #[test]
    fn ack_subjects_v1_v2_and_junk() {
        let v1 = parse_ack_subject(b"$JS.ACK.ORDERS.worker.2.17.5.1700000000000000000.3");
        let v1 = v1.map(|a| (a.stream, a.consumer, a.deliveries, a.stream_seq, a.consumer_seq));
        assert_eq!(v1, Some((&b"ORDERS"[..], &b"worker"[..], 2, 17, 5)));
        let v2 = parse_ack_subject(b"$JS.ACK.hub.ACCHASH.ORDERS.worker.1.9.4.1700000000000000000.0.tok");
        assert_eq!(v2.map(|a| (a.stream, a.stream_seq)), Some((&b"ORDERS"[..], 9)));
        assert!(parse_ack_subject(b"$JS.ACK.ORDERS.worker.x.17.5.1.3").is_none());
        assert!(parse_ack_subject(b"$JS.ACK.ORDERS.worker.1.2").is_none());
        // tokens past the twelfth are not needed (and not stored)
        let long = parse_ack_subject(b"$JS.ACK.d.h.S.C.1.2.3.4.5.6.7.8.9");
        assert_eq!(long.map(|a| (a.stream, a.consumer_seq)), Some((&b"S"[..], 3)));
    }
}
