//! Fuzz targets for the parts of edgebus that read what others wrote: the protocol parser,
//! the `$JS.API` handlers, the config parser, WebSocket framing and file-store recovery.
//!
//! The toolchain is stable, so there is no libFuzzer: [`driver`] feeds each target inputs
//! from a seeded generator (random bytes spliced with the target's dictionary), and the
//! target turns the bytes into structured choices with `arbitrary::Unstructured`. A run is
//! reproducible from its seed; a failing input is saved and replayed as a regression test.

pub mod driver;
pub mod gen;
pub mod targets;

pub use driver::{replay, run, Budget, Report};
pub use targets::{Target, TARGETS};
