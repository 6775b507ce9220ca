//! JSON read and written by hand: the bodies every host needs (`INFO`, `CONNECT`, the link's
//! greeting) with a pull reader and an object writer, and the `$JS.API` bodies and stored
//! metadata read out of a parsed `serde_json::Value` by [`typed`]. serde's derive code (a
//! visitor per type) and its error texts (which pull in float formatting) were most of the
//! page's module; replies are still written by serde's `Serialize` derives.

mod read;
pub mod typed;
mod write;

pub use read::{is_valid, JsonError, JsonErrorKind, Reader};
pub use typed::{ApiJsonError, Fields, FromJson};
pub use write::{string, Object};

#[cfg(test)]
mod tests;
