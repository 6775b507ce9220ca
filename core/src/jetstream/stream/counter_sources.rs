//! Counters aggregated through sources (nats-server 2.14): a counter stream that sources
//! other counter streams keeps, on each total it stores, the last total it took from every
//! origin stream and subject (`Nats-Counter-Sources: {"<stream>":{"<subject>":"<total>"}}`),
//! and adds only the difference a new origin total makes (stored as the message's
//! `Nats-Incr`). Regional counters so add up to a global one, whatever the order in which
//! their totals arrive. Whether a message is such a total is told by its
//! `Nats-Stream-Source` header, as nats-server tells it.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bytes::Bytes;

use super::counter::{body_value, BigInt, COUNTER_BROKEN, INCR_INVALID};
use super::Stream;
use crate::jetstream::errors::ApiError;
use crate::proto::{header_value, Headers};

const COUNTER_SOURCES: &str = "Nats-Counter-Sources";

/// Origin stream → origin subject → the last total taken from there.
type Sources = BTreeMap<String, BTreeMap<String, String>>;

/// The `Nats-Incr` of a sourced message: it is stored as it came (even into a stream that
/// counts nothing), so only a malformed value is refused.
pub(crate) fn sourced_incr(headers: Option<&[u8]>) -> Result<Option<BigInt>, ApiError> {
    match headers.and_then(|b| header_value(b, b"Nats-Incr")).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => BigInt::parse(v).map(Some).ok_or(INCR_INVALID),
    }
}

/// Replaces `name`'s value where it stands, or appends it (Go's `setHeader`).
fn set_header(h: &mut Headers, name: &str, value: &str) {
    match h.entries.iter_mut().find(|(n, _)| n == name) {
        Some(e) => e.1 = value.into(),
        None => {
            h.append(name, value);
        }
    }
}

impl Stream {
    /// Marks what is stored next as copied by a source (stored as it came), or not.
    pub(crate) fn set_sourced(&mut self, on: bool) {
        self.sourced = on;
    }

    /// The body to store for an increment on `subj` and, if they change, the headers to store
    /// with it: the origin's total turned into the difference it makes, the per-origin totals
    /// carried over from the subject's last message and updated.
    pub(crate) fn counter_write(
        &mut self,
        subj: &[u8],
        incr: &BigInt,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(String, Option<Bytes>), ApiError> {
        let mut initial = BigInt::zero();
        let mut sources = Sources::new();
        let last = self.last_seq_for(subj);
        if last > 0 {
            let msg = self.load(last)?.ok_or(COUNTER_BROKEN)?;
            initial = body_value(&msg.payload).ok_or(COUNTER_BROKEN)?;
            if let Some(v) = msg.headers.as_deref().and_then(|h| header_value(h, COUNTER_SOURCES.as_bytes())) {
                sources = crate::json::typed::from_slice(v).map_err(|_| COUNTER_BROKEN)?;
            }
        }
        let mut incr = incr.clone();
        let source = headers.and_then(|h| header_value(h, b"Nats-Stream-Source"));
        if let Some(src) = source {
            let src = String::from_utf8_lossy(src);
            let fields: Vec<&str> = src.split(' ').collect();
            let own = String::from_utf8_lossy(subj);
            let origin = fields.first().copied().unwrap_or("");
            let origin_subject = if fields.len() >= 5 { fields[4] } else { &own };
            let total = body_value(payload).ok_or(COUNTER_BROKEN)?;
            let per_subject = sources.entry(origin.into()).or_default();
            let previous =
                per_subject.get(origin_subject).and_then(|v| BigInt::parse(v.as_bytes())).unwrap_or_else(BigInt::zero);
            per_subject.insert(origin_subject.into(), total.to_string());
            incr = total.add(&previous.neg());
        }
        let total = initial.add(&incr);
        let body = format!("{{\"val\":\"{total}\"}}");
        if source.is_none() && sources.is_empty() {
            return Ok((body, None));
        }
        let mut h = headers.and_then(|b| Headers::parse(b).ok()).unwrap_or_default();
        if source.is_some() {
            set_header(&mut h, "Nats-Incr", &incr.to_string());
        }
        if !sources.is_empty() {
            let json = serde_json::to_string(&sources).map_err(|_| COUNTER_BROKEN)?;
            set_header(&mut h, COUNTER_SOURCES, &json);
        }
        Ok((body, Some(h.to_bytes())))
    }
}
