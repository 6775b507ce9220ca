//! The JSON bodies of `INFO` and `CONNECT`, read and written with [`crate::json`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::json::{JsonError, JsonErrorKind, Object, Reader};

/// What a server announces. Optional fields are left out when empty, as nats-server does
/// (`omitempty`), because some clients treat presence as meaning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: i32,
    pub git_commit: String,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    pub auth_required: bool,
    /// The client must upgrade to TLS (after this INFO, or before it with `handshake_first`).
    pub tls_required: bool,
    /// The client must present a certificate the server trusts.
    pub tls_verify: bool,
    /// TLS may be used (nats-server sets it on `wss://`, beside `tls_required`).
    pub tls_available: bool,
    pub max_payload: i64,
    pub jetstream: bool,
    pub client_id: u64,
    pub client_ip: String,
    pub nonce: String,
    pub connect_urls: Vec<String>,
    pub connect_info: bool,
    pub remote_account: String,
    /// The JetStream domain (`jetstream { domain }`), as nats-server announces it.
    pub domain: String,
    pub api_lvl: i32,
    /// The server is in lame duck mode: clients should move to another server (nats-server
    /// sends this once, in an INFO to every connected client).
    pub ldm: bool,
}

impl ServerInfo {
    /// The `INFO` body: the fields in this order, the optional ones only when set.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut o = Object::new(&mut out);
        o.str("server_id", &self.server_id)
            .str("server_name", &self.server_name)
            .str("version", &self.version)
            .int("proto", self.proto.into())
            .str_unless(self.git_commit.is_empty(), "git_commit", &self.git_commit)
            .str("go", &self.go)
            .str("host", &self.host)
            .uint("port", self.port.into())
            .bool("headers", self.headers);
        let flag = |o: &mut Object<'_>, on: bool, k: &str| {
            if on {
                o.bool(k, true);
            }
        };
        flag(&mut o, self.auth_required, "auth_required");
        flag(&mut o, self.tls_required, "tls_required");
        flag(&mut o, self.tls_verify, "tls_verify");
        flag(&mut o, self.tls_available, "tls_available");
        o.int("max_payload", self.max_payload);
        flag(&mut o, self.jetstream, "jetstream");
        if self.client_id != 0 {
            o.uint("client_id", self.client_id);
        }
        o.str_unless(self.client_ip.is_empty(), "client_ip", &self.client_ip).str_unless(
            self.nonce.is_empty(),
            "nonce",
            &self.nonce,
        );
        if !self.connect_urls.is_empty() {
            o.strs("connect_urls", &self.connect_urls);
        }
        flag(&mut o, self.connect_info, "connect_info");
        o.str_unless(self.remote_account.is_empty(), "remote_account", &self.remote_account).str_unless(
            self.domain.is_empty(),
            "domain",
            &self.domain,
        );
        if self.api_lvl != 0 {
            o.int("api_lvl", self.api_lvl.into());
        }
        flag(&mut o, self.ldm, "ldm");
        o.end();
        out
    }
}

/// What a client asks for. Every field is optional and may be JSON `null` (async-nats sends
/// `null` for unset strings); defaults are nats-server's, which are verbose and pedantic.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectOptions {
    pub verbose: bool,
    pub pedantic: bool,
    pub tls_required: bool,
    pub auth_token: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub protocol: i64,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    pub jwt: Option<String>,
    pub nkey: Option<String>,
    pub sig: Option<String>,
    /// Legacy account fields, set when sent with any value but `null`: refused with an
    /// authorization violation.
    pub account: bool,
    pub new_account: bool,
}

impl Default for ConnectOptions {
    /// The options of a client that never sent `CONNECT`.
    fn default() -> Self {
        ConnectOptions {
            verbose: true,
            pedantic: true,
            tls_required: false,
            auth_token: None,
            user: None,
            pass: None,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            echo: true,
            headers: false,
            no_responders: false,
            jwt: None,
            nkey: None,
            sig: None,
            account: false,
            new_account: false,
        }
    }
}

/// Go's `encoding/json` nesting limit (`maxNestingDepth`), which nats-server's JSON inputs
/// inherit.
const MAX_DEPTH: usize = 10_000;

/// Go's error for JSON nested deeper than its decoder allows, `None` when it is not. One
/// pass, no recursion, so a body of any depth is safe to check; serde's own recursion limit
/// (128) does not cover values it skips, which it walks iteratively.
pub fn too_deep(b: &[u8]) -> Option<String> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &c) in b.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(alloc::format!(
                        "invalid character '{}' exceeded max depth at offset {}",
                        char::from(c),
                        i + 1
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

impl ConnectOptions {
    /// Reads `CONNECT`'s JSON as Go's decoder reads it into nats-server's struct: `null` leaves
    /// every default, an array or a scalar is refused, unknown fields are ignored (but must be
    /// valid JSON), a repeated field takes its last value, and invalid UTF-8 inside strings
    /// becomes U+FFFD instead of an error.
    pub fn parse(json: &[u8]) -> Result<Self, JsonError> {
        let text = String::from_utf8_lossy(json);
        let mut opts = ConnectOptions::default();
        match text.trim_start().as_bytes().first() {
            Some(b'n') if text.trim() == "null" => return Ok(opts),
            Some(b'{') if too_deep(text.as_bytes()).is_some() => {
                return Err(JsonError { kind: JsonErrorKind::Depth, offset: MAX_DEPTH })
            }
            _ => {}
        }
        let mut r = Reader::new(&text);
        r.object(|r, key| {
            let flag = |r: &mut Reader<'_>, unset: bool| if r.null()? { Ok(unset) } else { r.bool_value() };
            let text = |r: &mut Reader<'_>| if r.null()? { Ok(None) } else { r.string_value().map(Some) };
            let any = |r: &mut Reader<'_>| -> Result<bool, JsonError> {
                if r.null()? {
                    return Ok(false);
                }
                r.skip().map(|()| true)
            };
            match key {
                "verbose" => opts.verbose = flag(r, true)?,
                "pedantic" => opts.pedantic = flag(r, true)?,
                "echo" => opts.echo = flag(r, true)?,
                "tls_required" => opts.tls_required = flag(r, false)?,
                "headers" => opts.headers = flag(r, false)?,
                "no_responders" => opts.no_responders = flag(r, false)?,
                "protocol" => opts.protocol = if r.null()? { 0 } else { r.i64_value()? },
                "auth_token" => opts.auth_token = text(r)?,
                "user" => opts.user = text(r)?,
                "pass" => opts.pass = text(r)?,
                "name" => opts.name = text(r)?,
                "lang" => opts.lang = text(r)?,
                "version" => opts.version = text(r)?,
                "jwt" => opts.jwt = text(r)?,
                "nkey" => opts.nkey = text(r)?,
                "sig" => opts.sig = text(r)?,
                "account" => opts.account = any(r)?,
                "new_account" => opts.new_account = any(r)?,
                _ => r.skip()?,
            }
            Ok(())
        })?;
        r.end()?;
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn connect_variants() {
        let py = ConnectOptions::parse(br#"{"echo": true, "headers": true, "lang": "python3", "name": "demo", "no_responders": true, "pedantic": false, "protocol": 1, "verbose": false, "version": "2.16.0"}"#).unwrap();
        assert!(py.headers && py.no_responders && !py.verbose && !py.pedantic && py.echo);
        let rs = ConnectOptions::parse(br#"{"verbose":false,"pedantic":false,"jwt":null,"nkey":null,"sig":null,"name":null,"echo":true,"lang":"rust","version":"0.49.1","protocol":1,"tls_required":false,"user":null,"pass":null,"auth_token":null,"headers":true,"no_responders":true}"#).unwrap();
        assert_eq!(rs.user, None);
        let bare = ConnectOptions::parse(b"{}").unwrap();
        assert!(bare.verbose && bare.pedantic && bare.echo);
        assert!(ConnectOptions::parse(b"{nope").is_err());
        assert_eq!(ConnectOptions::parse(b" null ").unwrap(), ConnectOptions::default());
        for refused in [&b"[]"[..], b"[false,false]", b"5", b"\"x\"", b"", b"{\"verbose\":\"yes\"}"] {
            assert!(ConnectOptions::parse(refused).is_err(), "{refused:?}");
        }
        let last = ConnectOptions::parse(br#"{"verbose":false,"verbose":null,"account":null,"x":[{"y":1}]}"#).unwrap();
        assert!(last.verbose && !last.account);
        assert!(ConnectOptions::parse(br#"{"account":"A"}"#).unwrap().account);
        for refused in [&br#"{"protocol":1.0}"#[..], br#"{"user":5}"#, br#"{"x":[1,]}"#, br#"{} x"#] {
            assert!(ConnectOptions::parse(refused).is_err(), "{refused:?}");
        }
        let odd = ConnectOptions::parse(b"{\"name\":\"a\xff\xfeb\",\"verbose\":false}").unwrap();
        assert_eq!(odd.name.as_deref(), Some("a\u{fffd}\u{fffd}b"));
    }

    /// The fields in nats-server's order, the empty optional ones left out.
    #[test]
    fn info_json() {
        let mut info = ServerInfo {
            server_id: "ID".into(),
            version: "2.14.0".into(),
            proto: 1,
            host: "0.0.0.0".into(),
            port: 4222,
            headers: true,
            max_payload: 1 << 20,
            ..ServerInfo::default()
        };
        let bare = r#"{"server_id":"ID","server_name":"","version":"2.14.0","proto":1,"go":"","host":"0.0.0.0","port":4222,"headers":true,"max_payload":1048576}"#;
        assert_eq!(String::from_utf8(info.to_json()).unwrap(), bare);
        info.auth_required = true;
        info.client_id = 7;
        info.nonce = "n\"".into();
        info.connect_urls = alloc::vec!["a:1".into(), "b:2".into()];
        info.api_lvl = 1;
        info.ldm = true;
        let full = r#"{"server_id":"ID","server_name":"","version":"2.14.0","proto":1,"go":"","host":"0.0.0.0","port":4222,"headers":true,"auth_required":true,"max_payload":1048576,"client_id":7,"nonce":"n\"","connect_urls":["a:1","b:2"],"api_lvl":1,"ldm":true}"#;
        assert_eq!(String::from_utf8(info.to_json()).unwrap(), full);
    }
}
