//! The top-level `tls { … }` block: TLS on the client port, with nats-server's key names
//! (`server/opts.go` `parseTLS`). The files are only named here; they are read once the
//! flags are applied too ([`crate::tls::TlsOptions::load`]), so a `--tlscert` can replace
//! the file's. Every other key nats-server knows in this block tightens or changes what
//! TLS accepts (pinned certificates, cipher suites, rate limits), so it is refused rather
//! than ignored; an unknown key is an error, as there. `verify_and_map` (the certificate
//! names the user) is honoured on the client port.

use std::path::PathBuf;
use std::time::Duration;

use super::super::error::ConfError;
use super::super::value::{Entry, ValueKind};
use super::refused;
use super::values::*;
use crate::tls::TlsOptions;

/// Keys of the `tls` block nats-server knows and edgebus does not implement.
const REFUSED_TLS: &[&str] = &[
    "allow_insecure_cipher_suites",
    "ca_certs_match",
    "cert_match",
    "cert_match_by",
    "cert_match_skip_invalid",
    "cert_store",
    "certs",
    "cipher_suites",
    "connection_rate_limit",
    "curve_preferences",
    "insecure",
    "min_version",
    "ocsp_peer",
    "pinned_certs",
    "verify_cert_and_check_known_urls",
];

/// Applies `tls { … }`: TLS on, with the block's files and settings (a second block
/// replaces the first, as the last value of a key wins). `verify_and_map` is honoured on
/// the client port only (`map_users`); elsewhere (`block`: the WebSocket port, the leaf
/// port, a leaf remote) it is refused.
pub(super) fn tls(e: &Entry, map_users: bool, block: &str) -> Result<TlsOptions, ConfError> {
    let mut t = TlsOptions { enabled: true, ..TlsOptions::default() };
    for te in map(e)? {
        match te.key.to_ascii_lowercase().as_str() {
            "cert_file" => t.cert_file = Some(PathBuf::from(string(te)?)),
            "key_file" => t.key_file = Some(PathBuf::from(string(te)?)),
            "ca_file" => t.ca_file = Some(PathBuf::from(string(te)?)),
            "verify" => t.verify = boolean(te)?,
            // nats-server: `verify_and_map` sets both
            "verify_and_map" if map_users => {
                t.verify_and_map = boolean(te)?;
                t.verify = t.verify_and_map;
            }
            "verify_and_map" => return Err(refused(te, block)),
            "timeout" => t.timeout = timeout(te)?,
            "handshake_first" | "first" | "immediate" => t.handshake_first = handshake_first(te)?,
            k if REFUSED_TLS.contains(&k) => return Err(refused(te, "tls")),
            _ => return Err(invalid(te, format!("error parsing tls config, unknown field {:?}", te.key))),
        }
    }
    Ok(t)
}

/// Seconds as an integer or a float, or a Go duration string; 0 keeps the default.
fn timeout(e: &Entry) -> Result<Duration, ConfError> {
    let secs = match &e.value.kind {
        ValueKind::Integer(n) => *n as f64,
        ValueKind::Float(f) => *f,
        ValueKind::String(s) => parse_go_duration(s)
            .map_err(|why| invalid(e, format!("error parsing tls config, 'timeout' {why}")))?
            .as_secs_f64(),
        _ => return Err(invalid(e, "error parsing tls config, 'timeout' wrong type")),
    };
    if secs == 0.0 {
        return Ok(crate::tls::TLS_TIMEOUT);
    }
    Duration::try_from_secs_f64(secs).map_err(|_| invalid(e, "error parsing tls config, 'timeout' out of range"))
}

/// A boolean, or `"true"`/`"on"`/`"false"`/`"off"`. nats-server also takes `"auto"` or a
/// duration (wait that long for a TLS-first client, then send INFO in plaintext); edgebus
/// does not implement that fallback and refuses it.
fn handshake_first(e: &Entry) -> Result<bool, ConfError> {
    match &e.value.kind {
        ValueKind::Bool(b) => Ok(*b),
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "on" => Ok(true),
            "false" | "off" => Ok(false),
            _ => Err(invalid(
                e,
                format!(
                    "value {s:?} (a fallback to plaintext INFO) is not supported by edgebus: \
                     use true or false; refusing to start"
                ),
            )),
        },
        _ => Err(type_error(e, "a boolean")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::{err, ok};
    use super::*;

    #[test]
    fn keys_honoured() {
        let o = ok("tls { cert_file: c.pem, key_file: \"k.pem\", ca_file: ca.pem, verify: true, timeout: 3 }");
        let t = &o.tls;
        assert!(t.enabled && t.verify && !t.handshake_first);
        assert_eq!(t.cert_file.as_deref(), Some(std::path::Path::new("c.pem")));
        assert_eq!(t.key_file.as_deref(), Some(std::path::Path::new("k.pem")));
        assert_eq!(t.ca_file.as_deref(), Some(std::path::Path::new("ca.pem")));
        assert_eq!(t.timeout, Duration::from_secs(3));
        assert!(o.tls.loaded.is_none(), "files are read after the flags, not while applying");
        assert_eq!(ok("tls { timeout: 0.5 }").tls.timeout, Duration::from_millis(500));
        assert_eq!(ok("tls { timeout: \"250ms\" }").tls.timeout, Duration::from_millis(250));
        assert_eq!(ok("tls { }").tls.timeout, crate::tls::TLS_TIMEOUT);
        assert!(ok("tls { handshake_first: true }").tls.handshake_first);
        assert!(ok("tls { first: \"on\" }").tls.handshake_first);
        assert!(!ok("tls { immediate: false }").tls.handshake_first);
        assert!(!ok("port: 1").tls.enabled);
    }

    #[test]
    fn websocket_tls_block() {
        let o = ok("websocket { port: 8443, tls { cert_file: c.pem, key_file: k.pem } }");
        assert!(o.websocket.tls.enabled && !o.tls.enabled && !o.websocket.no_tls);
        // a TLS block satisfies nats-server's "websocket requires TLS configuration"
        super::super::validate(&o).unwrap();
        assert!(err("websocket { port: 1, tls { verify_and_map: true } }").contains("verify_and_map"));
    }

    #[test]
    fn keys_refused() {
        let o = ok("tls {\n  cert_file: c.pem\n  verify_and_map: true\n}");
        assert!(o.tls.verify_and_map && o.tls.verify);
        let e = err("websocket {\n  tls {\n    verify_and_map: true\n  }\n}");
        assert!(e.contains("t.conf:3:5") && e.contains("\"verify_and_map\" in websocket tls is not supported"), "{e}");
        assert!(err("tls { pinned_certs: [] }").contains("pinned_certs"));
        assert!(err("tls { handshake_first: auto }").contains("not supported"));
        assert!(err("tls { handshake_first: \"300ms\" }").contains("not supported"));
        assert!(err("tls { bogus: 1 }").contains("unknown field \"bogus\""));
        assert!(err("tls { verify: 1 }").contains("verify: expected a boolean"));
        assert!(err("tls { timeout: [] }").contains("'timeout' wrong type"));
        assert!(err("tls: true").contains("expected a map"));
    }
}
