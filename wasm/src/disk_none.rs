//! The core-only build's stand-in for [`disk`](crate::disk): that build stores nothing, so
//! there is never a store; the type keeps the bus's and the link's fields the same in both
//! builds.

/// No store: this enum has no value, so code holding an `Option<Disk>` only ever sees `None`.
pub enum Disk {}

impl Disk {
    pub async fn close(self) {
        match self {}
    }
}
