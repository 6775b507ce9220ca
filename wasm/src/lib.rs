//! edgebus in the browser: wasm-bindgen bindings over `edgebus-core` (the in-page bus,
//! IndexedDB storage, the WebSocket link to a server). The bindings arrive with the
//! in-browser runtime issue; until then this crate only proves that the core links into a
//! `cdylib` for `wasm32-unknown-unknown`.

pub use edgebus_core as core;
