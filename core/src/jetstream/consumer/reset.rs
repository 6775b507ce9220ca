//! Moving a consumer's start (`$JS.API.CONSUMER.RESET.<stream>.<consumer>`, API level 4):
//! delivery starts over at a stream sequence, what was pending is forgotten, everything below
//! counts as acknowledged and delivery sequences start again at 1, as nats-server's
//! `resetStartingSeq` does. A sourcing durable asked for again starts over at its ack floor
//! this way (`fc_ack.rs`).

use alloc::borrow::Cow;

use super::super::config::DeliverPolicy;
use super::super::errors::ApiError;
use super::super::stream::Stream;
use super::super::time::parse_rfc3339;
use super::Consumer;

impl Consumer {
    /// Where a reset to `seq` (0: the ack floor) starts, or why it may not: not below the
    /// configured start (nats-server's `invalid reset` texts).
    pub fn reset_seq(&self, seq: u64, stream: &Stream) -> Result<u64, ApiError> {
        let invalid = |why: &'static str| ApiError::with(400, 10204, Cow::from(alloc::format!("invalid reset: {why}")));
        let cfg = &self.state.config;
        let seq = if seq == 0 {
            self.state.ack_floor_s + 1
        } else {
            match cfg.deliver_policy {
                DeliverPolicy::All => seq,
                DeliverPolicy::ByStartSequence if seq < cfg.opt_start_seq.unwrap_or(0) => {
                    return Err(invalid("below start seq"));
                }
                DeliverPolicy::ByStartSequence => seq,
                DeliverPolicy::ByStartTime => {
                    let at = cfg.opt_start_time.as_deref().and_then(parse_rfc3339).unwrap_or(0);
                    if seq < stream.seq_at_time(at) {
                        return Err(invalid("below start time"));
                    }
                    seq
                }
                _ => return Err(invalid("not allowed")),
            }
        };
        Ok(seq.max(1))
    }

    /// Starts delivery over at stream sequence `seq` (see the module doc).
    pub fn reset_start(&mut self, seq: u64, stream: &Stream) {
        self.state.pending.clear();
        self.redeliver.clear();
        self.timers.clear();
        self.state.lps.clear();
        self.state.sseq = seq;
        self.state.delivered_sseq = seq.saturating_sub(1);
        self.state.dseq = 0;
        self.state.ack_floor_c = 0;
        self.state.ack_floor_s = seq.saturating_sub(1);
        self.fc_pending = None;
        self.fc_msgs = 0;
        self.fc_bytes = 0;
        self.fc_covered = (0, 0);
        self.recount(stream);
        self.dirty = true;
    }
}
