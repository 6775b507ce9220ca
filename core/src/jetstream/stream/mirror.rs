//! Storing what a mirror copies: under the origin's sequence and time, so the mirror's
//! sequences are the origin's and the origin's gaps (deleted or filtered messages) stay gaps.

use super::Stream;
use crate::jetstream::errors::ApiError;

impl Stream {
    /// Stores origin message `seq` (taken at `time`). A sequence at or below the last one is
    /// already here and is passed over; limits apply as to a publish.
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
