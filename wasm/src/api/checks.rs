//! The page's own limits, the name checks made before a request is sent, and the decoding
//! of a stored message.

use wasm_bindgen::prelude::*;

#[cfg(feature = "jetstream")]
use super::js_to_json;
use super::Bus;
#[cfg(feature = "jetstream")]
use crate::convert::stored_msg;
#[cfg(feature = "jetstream")]
use crate::error::BusError;
#[cfg(feature = "jetstream")]
use edgebus_core::jetstream::config::name_error;
#[cfg(feature = "jetstream")]
use edgebus_core::kv::valid_bucket;

#[wasm_bindgen]
impl Bus {
    /// Sets the bus's `max_payload` (bytes of headers and payload per message; `open()` sets
    /// it from its `maxPayload` option, default 1 MiB as nats-server). A larger publish
    /// throws `MaxPayloadError`.
    #[wasm_bindgen(js_name = setMaxPayload)]
    pub fn set_max_payload(&self, max: u32) {
        self.inner.borrow_mut().broker.set_max_payload(max as usize);
    }
}

#[cfg(feature = "jetstream")]
/// Throws `InvalidNameError` for a stream or consumer name the engine would refuse (`context`
/// names it in the message: "stream", "consumer", "durable"): the name is a token of the API
/// subject, so a bad one would otherwise wait for a reply that never comes.
#[wasm_bindgen(js_name = checkName)]
pub fn check_name(context: &str, name: &str) -> Result<(), JsValue> {
    match name_error(name) {
        Some(e) => Err(BusError::InvalidName(e.describe(context, name)).into()),
        None => Ok(()),
    }
}

#[cfg(feature = "jetstream")]
/// Throws `InvalidNameError` for a KV bucket name the core refuses (nats.js's wording).
#[wasm_bindgen(js_name = checkBucket)]
pub fn check_bucket(name: &str) -> Result<(), JsValue> {
    if valid_bucket(name) {
        Ok(())
    } else {
        Err(BusError::InvalidName(format!("invalid bucket name: {name}")).into())
    }
}

#[cfg(feature = "jetstream")]
/// Decodes a `STREAM.MSG.GET` reply's `message` (base64 payload and header block) into
/// `{ subject, seq, time, data, headers }` for the package's `StoredMsg`.
#[wasm_bindgen(js_name = storedMsg)]
pub fn stored_msg_js(message: JsValue) -> Result<JsValue, JsValue> {
    let value = js_to_json(&message)?;
    stored_msg(&value).map_err(|e| BusError::Invalid(e).into())
}
