//! `mirror` and `sources` in stream info: per origin its name, how many of its messages the
//! copy has yet to take (`lag`) and how long ago it was last seen (`active`, -1 never), as
//! nats-server reports them, with the `error` that keeps a copy from reading its origin.

use serde::Serialize;
use serde_json::Value;

use super::super::config::SubjectTransformConfig;
use super::super::engine::JetStream;
use super::{ExternalStream, StreamSource};

#[derive(Serialize)]
struct SourceInfo<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    external: Option<&'a ExternalStream>,
    lag: u64,
    active: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    filter_subject: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    subject_transforms: &'a [SubjectTransformConfig],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a Value>,
}

impl JetStream {
    fn source_info(&self, stream: &str, src: &StreamSource, now: u64) -> Value {
        let iname = src.iname();
        let link = self.sourcing.get(stream).and_then(|l| l.get(&iname));
        // nats-server learns the lag from what its consumer delivers: 0 until it first hears
        // (for an origin elsewhere, from the pending count its last delivery carried)
        let lag = match (link.and_then(|l| l.remote.as_ref()), self.streams.get(&src.name), link.and_then(|l| l.sseq)) {
            (Some(r), _, _) => r.lag,
            (None, Some(o), Some(sseq)) => o.stream.count_matching(sseq + 1, |s| src.takes(s)),
            _ => 0,
        };
        let active = match link.map_or(0, |l| l.last) {
            0 => -1,
            last => now.saturating_sub(last).min(i64::MAX as u64) as i64,
        };
        let info = SourceInfo {
            name: &src.name,
            external: src.external.as_ref(),
            lag,
            active,
            filter_subject: &src.filter_subject,
            subject_transforms: &src.subject_transforms,
            error: link.and_then(|l| l.err.as_ref()),
        };
        crate::jetstream::config::to_value(&info)
    }

    /// Adds `mirror` / `sources` to the stream info `v` of stream `name`.
    pub(in super::super) fn add_sourcing_info(&self, name: &str, now: u64, v: &mut Value) {
        let Some(cfg) = self.streams.get(name).map(|e| &e.stream.config) else { return };
        if let Some(m) = &cfg.mirror {
            v["mirror"] = self.source_info(name, m, now);
        }
        if !cfg.sources.is_empty() {
            let all: alloc::vec::Vec<Value> = cfg.sources.iter().map(|s| self.source_info(name, s, now)).collect();
            v["sources"] = Value::Array(all);
        }
    }
}
