//! Errors the bindings hand to JavaScript: an `Error` whose `name` says what happened (as
//! nats.js names its errors) and, for JetStream API errors, `code` and `err_code`.

use std::fmt;

use wasm_bindgen::JsValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    /// The bus was closed.
    Closed,
    /// A request got no reply in time.
    Timeout,
    /// Nobody was subscribed to the request's subject (the `503` status).
    NoResponders(String),
    /// A subject, queue or name that cannot be used.
    BadSubject(String),
    /// A JetStream API error reply.
    Api { code: u16, err_code: u32, description: String },
    /// Bad options or a reply that could not be read.
    Invalid(String),
    /// IndexedDB failed.
    Storage(String),
    /// Another context (tab, worker) owns the store of this bus name (see `crate::lock`).
    StorageLocked(String),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Closed => f.write_str("bus is closed"),
            BusError::Timeout => f.write_str("timeout"),
            BusError::NoResponders(s) => write!(f, "no responders: '{s}'"),
            BusError::BadSubject(s) => write!(f, "invalid subject: {s}"),
            BusError::Api { description, .. } => f.write_str(description),
            BusError::Invalid(s) => f.write_str(s),
            BusError::Storage(s) => write!(f, "storage: {s}"),
            BusError::StorageLocked(name) => {
                write!(f, "the IndexedDB storage of bus '{name}' is in use by another tab or worker of this origin")
            }
        }
    }
}

impl BusError {
    fn name(&self) -> &'static str {
        match self {
            BusError::Closed => "ClosedConnectionError",
            BusError::Timeout => "TimeoutError",
            BusError::NoResponders(_) => "NoRespondersError",
            BusError::BadSubject(_) => "InvalidSubjectError",
            BusError::Api { .. } => "JetStreamApiError",
            BusError::Invalid(_) => "InvalidArgumentError",
            BusError::Storage(_) => "StorageError",
            BusError::StorageLocked(_) => "StorageLockedError",
        }
    }
}

impl From<BusError> for JsValue {
    fn from(e: BusError) -> JsValue {
        let err = js_sys::Error::new(&e.to_string());
        err.set_name(e.name());
        if let BusError::Api { code, err_code, .. } = &e {
            let _ = js_sys::Reflect::set(&err, &"code".into(), &JsValue::from(*code));
            let _ = js_sys::Reflect::set(&err, &"err_code".into(), &JsValue::from(*err_code));
        }
        err.into()
    }
}

impl From<serde_wasm_bindgen::Error> for BusError {
    fn from(e: serde_wasm_bindgen::Error) -> Self {
        BusError::Invalid(e.to_string())
    }
}

/// An error the engine answered a direct call with (KV, object store), as a server's API
/// error reply would have carried it.
impl From<edgebus_core::jetstream::errors::ApiError> for BusError {
    fn from(a: edgebus_core::jetstream::errors::ApiError) -> Self {
        BusError::Api { code: a.code, err_code: u32::from(a.err_code), description: a.description.into_owned() }
    }
}
