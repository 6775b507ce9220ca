//! The fuzz targets. Each takes raw bytes and must neither panic nor overflow its stack;
//! where two ways of feeding the same input must agree (whole or split), it asserts so.

mod config;
mod filestore;
mod jsapi;
mod proto;
mod ws;

/// A named target: its entry point, the dictionary its inputs are spliced from, and the
/// longest input worth generating for it.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub dict: &'static [&'static [u8]],
    pub max_len: usize,
}

pub static TARGETS: &[Target] = &[
    Target { name: "proto_split", run: proto::run, dict: proto::DICT, max_len: 8192 },
    Target { name: "jsapi", run: jsapi::run, dict: jsapi::DICT, max_len: 4096 },
    Target { name: "config", run: config::run, dict: config::DICT, max_len: 2048 },
    Target { name: "ws_frame", run: ws::run, dict: ws::DICT, max_len: 4096 },
    Target { name: "filestore_recovery", run: filestore::run, dict: &[], max_len: 2048 },
];

pub fn by_name(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
