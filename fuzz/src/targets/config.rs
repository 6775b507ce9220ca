//! The configuration parser and the mapping onto options, fed text spliced from the
//! format's own tokens. Includes resolve inside a scratch directory holding a few files
//! (one of which includes itself).

use std::path::PathBuf;
use std::sync::OnceLock;

use edgebus_server::conf;
use edgebus_server::options::Options;

pub(super) const DICT: &[&[u8]] = &[
    b"port",
    b"listen",
    b"max_payload",
    b"authorization",
    b"users",
    b"user",
    b"password",
    b"jetstream",
    b"store_dir",
    b"websocket",
    b"include ",
    b"a.conf",
    b"self.conf",
    b"accounts",
    b"permissions",
    b"publish",
    b"subscribe",
    b"allow",
    b"deny",
    b"tls",
    b"max_control_line",
    b"debug",
    b"ping_interval",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"=",
    b" ",
    b"\n",
    b",",
    b";",
    b"#",
    b"//",
    b"\"",
    b"'",
    b"$VAR",
    b"$port",
    b"1KB",
    b"4MB",
    b"10s",
    b"-1",
    b"true",
    b"false",
    b"null",
    b"1.5",
    b"\"2m\"",
    b"127.0.0.1:4222",
    b"VAR = 5\n",
    b"\\",
    b"\xff",
];

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("edgebus-fuzz-config-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("a.conf"), "port: 4222\nmax_payload: 1MB\n");
        let _ = std::fs::write(dir.join("self.conf"), "include self.conf\n");
        dir
    })
}

pub(super) fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = conf::parse_str(&text, "fuzz");
    let path = scratch().join(format!("input-{:?}.conf", std::thread::current().id()).replace(['(', ')'], ""));
    if std::fs::write(&path, data).is_ok() {
        let _ = conf::load_file(&path, &mut Options::default());
    }
}
