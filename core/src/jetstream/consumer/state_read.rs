//! A consumer's saved state read back from its JSON (`crate::json::typed`), with the defaults
//! older saves need: `pending`, `lps` and a pending entry's `deadline` came later.

use alloc::collections::{BTreeMap, VecDeque};
use serde_json::Value;

use super::{ConsumerState, Pending};
use crate::json::typed::{Fields, FromJson, Result};

impl FromJson for Pending {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct Pending")?;
        Ok(Pending { cseq: f.need("cseq")?, deliveries: f.need("deliveries")?, deadline: f.get("deadline", 0)? })
    }
}

impl FromJson for ConsumerState {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct ConsumerState")?;
        Ok(ConsumerState {
            config: f.need("config")?,
            created: f.need("created")?,
            sseq: f.need("sseq")?,
            dseq: f.need("dseq")?,
            delivered_sseq: f.need("delivered_sseq")?,
            ack_floor_c: f.need("ack_floor_c")?,
            ack_floor_s: f.need("ack_floor_s")?,
            pending: f.get("pending", BTreeMap::new())?,
            lps: f.get("lps", VecDeque::new())?,
        })
    }
}
