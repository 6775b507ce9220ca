//! JSON read and written by hand, for the bodies every host needs (`INFO`, `CONNECT`, the
//! link's greeting): serde's derive code and its error texts (which pull in float
//! formatting) were most of the page's core-only module. The JetStream API keeps serde.

mod read;
mod write;

pub use read::{is_valid, JsonError, JsonErrorKind, Reader};
pub use write::{string, Object};

#[cfg(test)]
mod tests;
