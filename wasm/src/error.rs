//! Errors the bindings hand to JavaScript: an `Error` whose `name` says what happened (as
//! nats.js names its errors) and, for JetStream API errors, `code` and `err_code`. When the
//! package registered its error classes ([`set_error_classes`]), each error is made an
//! instance of the class of its name, so `instanceof` works as with nats.js.

use std::cell::RefCell;
use std::fmt;

use wasm_bindgen::prelude::wasm_bindgen;

use wasm_bindgen::{JsCast, JsValue};

/// JetStream's `err_code` for "insufficient resources".
const INSUFFICIENT_RESOURCES: u32 = 10023;

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
    /// This context is a client of the bus's leader: what it asked needs the leader's
    /// engine or server link (`crate::tabs`).
    NotLeader(String),
    /// A stream, consumer or bucket name that cannot be used.
    InvalidName(String),
    /// A publish over the bus's `max_payload`.
    MaxPayload { size: usize, max: usize },
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
            BusError::NotLeader(what) => write!(
                f,
                "{what} runs in the bus's leader context only, and another tab or worker of this origin leads it"
            ),
            BusError::InvalidName(s) => f.write_str(s),
            BusError::MaxPayload { size, max } => write!(f, "maximum payload exceeded: {size} > {max}"),
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
            // no room to store: the page's store limits (as the engine refuses a publish past
            // them) or the browser's quota (see `bus::refused`)
            BusError::Api { err_code: INSUFFICIENT_RESOURCES, .. } => "StorageQuotaError",
            BusError::Api { .. } => "JetStreamApiError",
            BusError::Invalid(_) => "InvalidArgumentError",
            BusError::Storage(_) => "StorageError",
            BusError::StorageLocked(_) => "StorageLockedError",
            BusError::NotLeader(_) => "NotLeaderError",
            BusError::InvalidName(_) => "InvalidNameError",
            BusError::MaxPayload { .. } => "MaxPayloadError",
        }
    }
}

impl From<BusError> for JsValue {
    fn from(e: BusError) -> JsValue {
        let err = js_sys::Error::new(&e.to_string());
        err.set_name(e.name());
        let set = |k: &str, v: JsValue| {
            let _ = js_sys::Reflect::set(&err, &k.into(), &v);
        };
        match &e {
            BusError::Api { code, err_code, .. } => {
                set("code", JsValue::from(*code));
                set("err_code", JsValue::from(*err_code));
            }
            BusError::MaxPayload { size, max } => {
                set("size", JsValue::from(*size as f64));
                set("max", JsValue::from(*max as f64));
            }
            _ => {}
        }
        adopt(&err, e.name());
        err.into()
    }
}

thread_local! {
    /// `{ [name]: class }` from the package (`web/src/errors.ts`).
    static CLASSES: RefCell<Option<js_sys::Object>> = const { RefCell::new(None) };
}

/// Registers the package's error classes by name (`{ TimeoutError: class, ... }`): errors
/// made afterwards get the prototype of the class of their `name`.
#[wasm_bindgen(js_name = setErrorClasses)]
pub fn set_error_classes(classes: js_sys::Object) {
    CLASSES.with(|c| *c.borrow_mut() = Some(classes));
}

/// Makes `err` an instance of the registered class `name`, if there is one; its own
/// `message`, `name` and `stack` stay.
fn adopt(err: &js_sys::Error, name: &str) {
    CLASSES.with(|c| {
        let Some(classes) = c.borrow().clone() else { return };
        let Ok(class) = js_sys::Reflect::get(&classes, &name.into()) else { return };
        let Ok(proto) = js_sys::Reflect::get(&class, &"prototype".into()) else { return };
        if let Ok(proto) = proto.dyn_into::<js_sys::Object>() {
            js_sys::Object::set_prototype_of(err, &proto);
        }
    });
}

/// An error the engine answered a direct call with (KV, object store), as a server's API
/// error reply would have carried it.
#[cfg(feature = "jetstream")]
impl From<edgebus_core::jetstream::errors::ApiError> for BusError {
    fn from(a: edgebus_core::jetstream::errors::ApiError) -> Self {
        BusError::Api { code: a.code, err_code: u32::from(a.err_code), description: a.description.into_owned() }
    }
}
