//! nats-server configuration files (`-c server.conf`), read the way nats-server reads them.
//!
//! Two steps, kept apart so each can be tested on its own:
//!
//! 1. syntax: [`parse_file`] / [`parse_str`] turn text into a [`Value`] tree (see the
//!    `parser` module for the format, variables and includes);
//! 2. meaning: [`apply`] maps the tree onto [`Options`]; [`validate`] checks the result as a
//!    whole once command-line flags have been applied on top.
//!
//! [`load_file`] does steps 1 and 2 for a file.

mod apply;
mod cursor;
mod error;
mod parser;
mod value;

use std::fs;
use std::path::Path;

pub use apply::{apply, validate};
pub use error::{ConfError, Pos};
pub use value::{Entry, Value, ValueKind};

use crate::options::Options;
use parser::Shared;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Parses configuration text. `name` labels positions in errors; `include`s resolve against
/// the current directory. `$VAR` falls back to the process environment.
pub fn parse_str(src: &str, name: &str) -> Result<Value, ConfError> {
    parser::parse_source(src, name, None, &mut Shared::new(&process_env))
}

/// Reads and parses a configuration file; `include`s resolve against its directory.
pub fn parse_file(path: &Path) -> Result<Value, ConfError> {
    let src = fs::read_to_string(path)
        .map_err(|e| ConfError::Read { path: path.display().to_string(), reason: e.to_string() })?;
    let mut shared = Shared::new(&process_env);
    if let Ok(canonical) = fs::canonicalize(path) {
        shared.enter_file(canonical);
    }
    parser::parse_source(&src, &path.display().to_string(), path.parent(), &mut shared)
}

/// Reads `path` and applies it onto `opts` (warnings go to `opts.warnings`). Does not run
/// [`validate`]: command-line flags may still change the options.
pub fn load_file(path: &Path, opts: &mut Options) -> Result<(), ConfError> {
    apply(&parse_file(path)?, opts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::options;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("edgebus-conf-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn load(src: &str) -> Result<Options, ConfError> {
        let mut opts = Options::default();
        apply(&parse_str(src, "server.conf")?, &mut opts)?;
        Ok(opts)
    }

    /// The file the NATS acceptance suite (conftest.py) writes must parse to what it means.
    #[test]
    fn acceptance_suite_config() {
        let dir = TempDir::new("acceptance");
        let path = dir.write(
            "nats.conf",
            "# written by the NATS acceptance suite (conftest.py)\n\
             websocket {\n  host: \"127.0.0.1\"\n  port: 12345\n  no_tls: true\n}\n\
             max_pending: 4MB\nwrite_deadline: \"2s\"\n",
        );
        let mut opts = Options::default();
        load_file(&path, &mut opts).unwrap();
        assert_eq!(opts.websocket.host, "127.0.0.1");
        assert_eq!(opts.websocket.port, 12345);
        assert!(opts.websocket.no_tls);
        assert_eq!(opts.max_pending, 4_194_304);
        assert_eq!(opts.write_deadline, Duration::from_secs(2));
        assert!(opts.warnings.is_empty(), "{:?}", opts.warnings);
        validate(&opts).unwrap();
        // Everything else keeps its default.
        let expected = Options {
            websocket: opts.websocket.clone(),
            max_pending: opts.max_pending,
            write_deadline: opts.write_deadline,
            ..Options::default()
        };
        assert_eq!(opts, expected);
    }

    #[test]
    fn include_relative_to_including_file() {
        let dir = TempDir::new("include");
        dir.write("sub/auth.conf", "authorization {\n  include 'users.conf'\n}\n");
        dir.write("sub/users.conf", "users: [ {user: alice, password: pw} ]\n");
        dir.write("ports.conf", "port: 4333\nhttp_port: 8333\n");
        let main = dir.write("main.conf", "include \"ports.conf\"\ninclude sub/auth.conf\nserver_name: edge\n");
        let mut opts = Options::default();
        load_file(&main, &mut opts).unwrap();
        assert_eq!(opts.port, 4333);
        assert_eq!(opts.http_port, 8333);
        assert_eq!(opts.server_name.as_deref(), Some("edge"));
        assert_eq!(opts.authorization.users, vec![options::User::new("alice", "pw")]);
        // Keys after an include override it, and the other way round.
        dir.write("base.conf", "port: 1111\ndebug: true\n");
        let main = dir.write("over.conf", "port: 2222\ninclude base.conf\ntrace: true\n");
        let mut opts = Options::default();
        load_file(&main, &mut opts).unwrap();
        assert_eq!(opts.port, 1111);
        assert!(opts.debug && opts.trace);
    }

    #[test]
    fn include_errors() {
        let dir = TempDir::new("include-err");
        // Missing file: the error names the include line.
        let main = dir.write("main.conf", "port: 1\n\ninclude missing.conf\n");
        let e = parse_file(&main).unwrap_err();
        match &e {
            ConfError::Include { pos, path, .. } => {
                assert_eq!(pos.line, 3);
                assert_eq!(path, "missing.conf");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("main.conf:3:"), "{e}");
        // Cycles, direct and indirect.
        let selfish = dir.write("self.conf", "include self.conf\n");
        assert!(parse_file(&selfish).unwrap_err().to_string().contains("cycle"));
        dir.write("a.conf", "a: 1\ninclude b.conf\n");
        dir.write("b.conf", "b: 1\ninclude ./a.conf\n");
        let e = parse_file(&dir.0.join("a.conf")).unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
        assert!(e.to_string().contains("b.conf:2:"), "{e}");
        // Depth limit.
        for i in 0..20 {
            dir.write(&format!("d{i}.conf"), &format!("include d{}.conf\n", i + 1));
        }
        dir.write("d20.conf", "x: 1\n");
        let e = parse_file(&dir.0.join("d0.conf")).unwrap_err();
        assert!(e.to_string().contains("nested more than"), "{e}");
        // A syntax error inside an included file points into that file.
        dir.write("broken.conf", "ok: 1\nbad: \"open\n");
        let main = dir.write("uses-broken.conf", "include broken.conf\n");
        let e = parse_file(&main).unwrap_err();
        assert!(e.to_string().contains("broken.conf:2:"), "{e}");
        // Unreadable top-level file.
        let e = parse_file(&dir.0.join("nope.conf")).unwrap_err();
        assert!(matches!(e, ConfError::Read { .. }), "{e:?}");
    }

    #[test]
    fn unknown_keys_warn_with_position() {
        let opts = load(
            "port: 4222\nfoo: 1\nwebsocket {\n  port: 8080\n  bar: x\n  advertise: \"h:1\"\n  compression: true\n}\n\
             logtime: true\nTOKEN: s\nauthorization { token: $TOKEN, baz: 1 }\n",
        )
        .unwrap();
        assert_eq!(
            opts.warnings,
            vec![
                "server.conf:2:1: unknown field \"foo\" (ignored)".to_string(),
                "server.conf:5:3: unknown field \"bar\" in websocket (ignored)".to_string(),
                "server.conf:6:3: field \"advertise\" in websocket is not supported by edgebus (ignored)".to_string(),
                "server.conf:9:1: field \"logtime\" is not supported by edgebus (ignored)".to_string(),
                "server.conf:11:32: unknown field \"baz\" in authorization (ignored)".to_string(),
            ]
        );
        assert!(opts.websocket.compression);
        assert_eq!(opts.authorization.token.as_deref(), Some("s"));
    }

    /// Fail closed: a key asking for security, durability or isolation that edgebus does not
    /// implement stops the start with its file:line, wherever it sits.
    #[test]
    fn keys_asking_for_security_refuse_to_start() {
        for (src, key, at) in [
            ("tls { pinned_certs: [] }\n", "pinned_certs", "server.conf:1:7"),
            ("cluster { port: 6222 }\n", "cluster", "server.conf:1:1"),
            ("accounts { A: { mappings: { a: b } } }\n", "mappings", "server.conf:1:17"),
            ("jetstream { limits { max_ack_pending: 10 } }\n", "limits", "server.conf:1:13"),
            ("jetstream {\n max_request_batch: 5\n}\n", "max_request_batch", "server.conf:2:2"),
            ("leafnodes { tls { pinned_certs: [] } }\n", "pinned_certs", "server.conf:1:19"),
            ("gateway { name: x }\n", "gateway", "server.conf:1:1"),
            ("websocket { tls { verify_and_map: true } }\n", "verify_and_map", "server.conf:1:19"),
            ("websocket { no_tls: true, jwt_cookie: jwt }\n", "jwt_cookie", "server.conf:1:27"),
            ("jetstream {\n cipher: aes\n}\n", "cipher", "server.conf:2:2"),
            ("jetstream { key: s3cr3t }\n", "key", "server.conf:1:13"),
            ("authorization { token: t, permissions: { publish: x } }\n", "permissions", "server.conf:1:27"),
        ] {
            let e = load(src).expect_err(src).to_string();
            assert!(e.starts_with(&format!("{at}: {key}: ")), "{src:?}: {e}");
        }
        let o = load("websocket { no_tls: true, same_origin: false, allowed_origins: [] }\n").unwrap();
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        // origin checks are implemented (server-ws/src/ws/origin.rs), so these are honoured
        let o = load("websocket { no_tls: true, same_origin: true, allowed_origins: [\"https://a\"] }\n").unwrap();
        assert!(o.websocket.same_origin && o.websocket.allowed_origins.len() == 1);
        assert_eq!(
            load("jetstream { sync_always: true }\n").unwrap().jetstream.sync_interval,
            options::SyncInterval::Always
        );
    }

    #[test]
    fn websocket_headers_are_kept_in_order_and_cannot_split_the_answer() {
        let o = load("websocket { no_tls: true, headers { X-B: \"2\", X-A: \"1\" } }\n").unwrap();
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        assert_eq!(o.websocket.headers, [("X-B".to_string(), "2".to_string()), ("X-A".to_string(), "1".to_string())]);
        for bad in ["headers { X-A: \"1\\r\\nSet-Cookie: a=b\" }", "headers { \"X A\": \"1\" }", "headers { X-A: 1 }"] {
            let e = load(&format!("websocket {{ no_tls: true, {bad} }}\n")).expect_err(bad).to_string();
            assert!(e.contains("header"), "{bad}: {e}");
        }
    }
}
