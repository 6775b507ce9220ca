//! The JSON bodies of `INFO` and `CONNECT`.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// What a server announces. Optional fields are left out when empty, as nats-server does
/// (`omitempty`), because some clients treat presence as meaning.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    #[serde(default)]
    pub go: String,
    pub host: String,
    pub port: u16,
    pub headers: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// The client must upgrade to TLS (after this INFO, or before it with `handshake_first`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// The client must present a certificate the server trusts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// TLS may be used (nats-server sets it on `wss://`, beside `tls_required`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_available: bool,
    pub max_payload: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub jetstream: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub client_id: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub connect_info: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    /// The JetStream domain (`jetstream { domain }`), as nats-server announces it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub api_lvl: i32,
    /// The server is in lame duck mode: clients should move to another server (nats-server
    /// sends this once, in an INFO to every connected client).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ldm: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

/// What a client asks for. Every field is optional and may be JSON `null` (async-nats sends
/// `null` for unset strings); defaults are nats-server's, which are verbose and pedantic.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ConnectOptions {
    #[serde(default = "yes", deserialize_with = "null_default_true")]
    pub verbose: bool,
    #[serde(default = "yes", deserialize_with = "null_default_true")]
    pub pedantic: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub tls_required: bool,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub pass: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub protocol: i64,
    #[serde(default = "yes", deserialize_with = "null_default_true")]
    pub echo: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub headers: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub no_responders: bool,
    #[serde(default)]
    pub jwt: Option<String>,
    #[serde(default)]
    pub nkey: Option<String>,
    #[serde(default)]
    pub sig: Option<String>,
    /// Legacy account fields: any value is refused with an authorization violation.
    #[serde(default)]
    pub account: Option<serde_json::Value>,
    #[serde(default)]
    pub new_account: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_default_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
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
            account: None,
            new_account: None,
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
    /// every default, an array or a scalar is refused (serde would read an array as the
    /// struct's fields in order), and invalid UTF-8 inside strings becomes U+FFFD instead of
    /// an error.
    pub fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        let text = alloc::string::String::from_utf8_lossy(json);
        match text.trim_start().as_bytes().first() {
            Some(b'n') if text.trim() == "null" => Ok(ConnectOptions::default()),
            Some(b'{') => match too_deep(text.as_bytes()) {
                Some(why) => Err(serde::de::Error::custom(why)),
                None => serde_json::from_str(&text),
            },
            _ => Err(serde::de::Error::custom("CONNECT is not a JSON object")),
        }
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
        let odd = ConnectOptions::parse(b"{\"name\":\"a\xff\xfeb\",\"verbose\":false}").unwrap();
        assert_eq!(odd.name.as_deref(), Some("a\u{fffd}\u{fffd}b"));
    }
}
