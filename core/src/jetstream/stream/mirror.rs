//! Storing what a mirror copies: under the origin's sequence and time, so the mirror's
//! sequences are the origin's and the origin's gaps (deleted or filtered messages) stay gaps.

use super::Stream;
use crate::jetstream::config::Discard;
use crate::jetstream::errors::ApiError;
use crate::jetstream::store::counted_size;

impl Stream {
    /// Stores origin message `seq` (taken at `time`). A sequence at or below the last one is
    /// already here and is passed over; limits apply as to a publish (discard new refuses it:
    /// the link tries again later).
    pub(crate) fn store_mirrored(
        &mut self,
        seq: u64,
        time: u64,
        subj: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(), ApiError> {
        if seq <= self.last_seq {
            return Ok(());
        }
        let hdr_len = headers.map_or(0, <[u8]>::len);
        if self.config.max_msg_size >= 0 && (hdr_len + payload.len()) as i64 > self.config.max_msg_size {
            return Err(ApiError::MSG_TOO_BIG);
        }
        if self.config.discard == Discard::New {
            let size = counted_size(self.config.storage, (subj.len() + hdr_len + payload.len() + 16) as u64, hdr_len);
            if self.config.max_msgs > 0 && self.index.len() as i64 >= self.config.max_msgs {
                return Err(ApiError::store_failed("maximum messages exceeded"));
            }
            if self.config.max_bytes > 0 && (self.bytes + size) as i64 > self.config.max_bytes {
                return Err(ApiError::store_failed("maximum bytes exceeded"));
            }
        }
        let skipped_to = seq - 1;
        self.last_seq = skipped_to;
        if self.index.is_empty() {
            self.first_seq = seq;
        }
        self.append(time, subj, headers, payload, None, false)?;
        self.enforce_limits(subj)?;
        self.sync_if_always()
    }
}
