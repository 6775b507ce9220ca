//! The `$JS.API` request bodies read out of JSON (`crate::json::typed`): a missing field takes
//! its default, a `null` one only where the field is optional.

use serde_json::Value;

use super::{CreateConsumerRequest, InfoRequest, MsgDeleteRequest, MsgGetRequest, Paging, PurgeRequest};
use crate::jetstream::request::non_negative;
use crate::json::typed::{Fields, FromJson, Result};

impl FromJson for Paging {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct Paging")?;
        Ok(Paging { offset: non_negative(f, "offset")?, subject: f.get("subject", None)? })
    }
}

impl FromJson for InfoRequest {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct InfoRequest")?;
        Ok(InfoRequest {
            subjects_filter: f.get("subjects_filter", None)?,
            deleted_details: f.get("deleted_details", false)?,
            offset: f.get("offset", 0)?,
        })
    }
}

impl FromJson for PurgeRequest {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct PurgeRequest")?;
        Ok(PurgeRequest { filter: f.get("filter", None)?, seq: f.get("seq", None)?, keep: f.get("keep", None)? })
    }
}

impl FromJson for MsgGetRequest {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct MsgGetRequest")?;
        Ok(MsgGetRequest {
            seq: f.get("seq", None)?,
            last_by_subj: f.get("last_by_subj", None)?,
            next_by_subj: f.get("next_by_subj", None)?,
        })
    }
}

impl FromJson for MsgDeleteRequest {
    fn from_json(v: &Value) -> Result<Self> {
        Ok(MsgDeleteRequest { seq: Fields::of(v, "struct MsgDeleteRequest")?.get("seq", 0)? })
    }
}

impl FromJson for CreateConsumerRequest {
    fn from_json(v: &Value) -> Result<Self> {
        let f = Fields::of(v, "struct CreateConsumerRequest")?;
        Ok(CreateConsumerRequest {
            stream_name: f.get("stream_name", None)?,
            config: f.get("config", None)?,
            action: f.get("action", None)?,
        })
    }
}
