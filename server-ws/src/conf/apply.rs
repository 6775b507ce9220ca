//! What the keys of a configuration file mean: mapping a parsed [`Value`] onto [`Options`].
//!
//! Key names, aliases and checks follow nats-server's `server/opts.go`
//! (`processConfigFileLine` and friends), matched case-insensitively as it does. Where
//! nats-server rejects an unknown key, edgebus only warns (into [`Options::warnings`]): an
//! edge server fed a configuration written for a full nats-server should start and say what
//! it ignores, not refuse. Keys nats-server knows but edgebus does not implement get their
//! own wording so the operator can tell them from typos.

use std::path::PathBuf;
use std::time::Duration;

use edgebus_core::duration::{self, DurationError};

use super::error::ConfError;
use super::value::{Entry, Value, ValueKind};
use crate::options::{self, Authorization, Options, User};

/// Top-level nats-server options edgebus does not implement.
const UNSUPPORTED_TOP: &[&str] = &[
    "accounts",
    "account_resolver",
    "accounts_resolver",
    "allow_non_tls",
    "auth_callout",
    "client_advertise",
    "cluster",
    "connect_error_reports",
    "default_js_domain",
    "disable_short_first_ping",
    "disable_sublist_cache",
    "gateway",
    "http_base_path",
    "https",
    "https_port",
    "lame_duck_duration",
    "lame_duck_grace_period",
    "leaf",
    "leafnodes",
    "log_max_num",
    "log_size_limit",
    "logfile_max_num",
    "logfile_size_limit",
    "logtime",
    "logtime_utc",
    "mappings",
    "maps",
    "max_closed_clients",
    "max_sub_tokens",
    "max_subscription_tokens",
    "max_traced_msg_len",
    "mqtt",
    "no_auth_user",
    "no_fast_producer_stall",
    "no_header_support",
    "no_sublist_cache",
    "no_sys_acc",
    "no_system",
    "no_system_account",
    "ocsp",
    "ocsp_cache",
    "operator",
    "operators",
    "ports_file_dir",
    "prof_port",
    "reconnect_error_reports",
    "remote_syslog",
    "resolver",
    "resolver_pinned_accounts",
    "resolver_preload",
    "resolver_tls",
    "root",
    "root_operator",
    "root_operators",
    "roots",
    "server_tags",
    "syslog",
    "system",
    "system_account",
    "tls",
    "trusted",
    "trusted_keys",
    "write_timeout",
];

const UNSUPPORTED_AUTH: &[&str] =
    &["auth_callout", "default_permission", "default_permissions", "permissions", "proxy_required"];

const UNSUPPORTED_USER: &[&str] =
    &["account", "allowed_connection_types", "connection_types", "nkey", "permission", "permissions", "proxy_required"];

const UNSUPPORTED_WS: &[&str] = &[
    "advertise",
    "allowed_origins",
    "authentication",
    "authorization",
    "compress",
    "compression",
    "handshake_timeout",
    "headers",
    "jwt_cookie",
    "no_auth_user",
    "pass_cookie",
    "ping_interval",
    "same_origin",
    "tls",
    "token_cookie",
    "user_cookie",
];

const UNSUPPORTED_JS: &[&str] = &[
    "cipher",
    "domain",
    "ek",
    "encryption_key",
    "extension_hint",
    "key",
    "limits",
    "max_ack_pending",
    "max_buffered_msgs",
    "max_buffered_size",
    "max_catchup",
    "max_ha_assets",
    "max_outstanding_catchup",
    "max_request_batch",
    "prev_encryption_key",
    "prev_key",
    "request_queue_limit",
    "strict",
    "sync_always",
    "tpm",
    "unique_tag",
];

/// Applies a parsed configuration (a map, as [`super::parse_file`] returns) onto `opts`,
/// overwriting what it sets and leaving the rest. Unknown and unsupported keys become
/// warnings; wrong types and out-of-range values are errors naming the key and position.
///
/// `log_file`/`pid_file` (and aliases) are accepted without effect here: [`Options`] has no
/// place for them, the command line reads them off the parsed value.
///
/// Cross-field checks (max_payload ≤ max_pending, …) are [`validate`]'s job, run once the
/// command-line flags are applied too, as nats-server does.
pub fn apply(value: &Value, opts: &mut Options) -> Result<(), ConfError> {
    let ValueKind::Map(entries) = &value.kind else {
        return Err(ConfError::value(
            &value.pos,
            "configuration",
            format!("expected a map of options, got {}", value.type_name()),
        ));
    };
    let mut store_dir_set = false;
    for e in entries {
        apply_top(e, opts, &mut store_dir_set)?;
    }
    Ok(())
}

fn apply_top(e: &Entry, opts: &mut Options, store_dir_set: &mut bool) -> Result<(), ConfError> {
    match e.key.to_ascii_lowercase().as_str() {
        "listen" => {
            let (host, port) = listen(e)?;
            if let Some(host) = host {
                opts.host = host;
            }
            opts.port = client_port(port);
        }
        "host" | "net" => opts.host = string(e)?.to_string(),
        "port" => opts.port = client_port(port(e)?),
        "server_name" => opts.server_name = Some(string(e)?.to_string()),
        "http_port" | "monitor_port" => opts.http_port = port(e)?,
        "http" => {
            let (host, port) = listen(e)?;
            opts.http_host = host;
            opts.http_port = port;
        }
        "http_host" => opts.http_host = Some(string(e)?.to_string()),
        "max_payload" => {
            opts.max_payload = or_default(non_negative_i32(e)?, options::MAX_PAYLOAD);
        }
        "max_pending" => opts.max_pending = or_default(non_negative(e)?, options::MAX_PENDING),
        "max_control_line" => {
            opts.max_control_line = or_default(non_negative_i32(e)?, options::MAX_CONTROL_LINE);
        }
        "max_connections" | "max_conn" => {
            opts.max_connections = or_default(non_negative_i32(e)?, options::MAX_CONNECTIONS);
        }
        "max_subscriptions" | "max_subs" => opts.max_subscriptions = non_negative_i32(e)?,
        "ping_interval" => {
            let d = duration(e, &mut opts.warnings)?;
            opts.ping_interval = if d.is_zero() { options::PING_INTERVAL } else { d };
        }
        "ping_max" => opts.ping_max = or_default(non_negative_i32(e)?, options::PING_MAX),
        "write_deadline" => {
            let d = duration(e, &mut opts.warnings)?;
            opts.write_deadline = if d.is_zero() { options::WRITE_DEADLINE } else { d };
        }
        "debug" => opts.debug = boolean(e)?,
        "trace" => opts.trace = boolean(e)?,
        // Verbose tracing only adds system-account traffic, which edgebus does not have.
        "trace_verbose" => opts.trace = boolean(e)?,
        "authorization" => authorization(e, opts)?,
        "websocket" | "ws" => websocket(e, opts)?,
        "jetstream" => jetstream(e, opts, store_dir_set)?,
        "store_dir" | "storedir" => store_dir(e, opts, store_dir_set)?,
        // Read by the command line (see the doc comment of `apply`); only checked here.
        "log_file" | "logfile" | "pid_file" | "pidfile" => {
            string(e)?;
        }
        k if UNSUPPORTED_TOP.contains(&k) => unsupported(e, "", opts),
        _ => unknown(e, "", opts),
    }
    Ok(())
}

/// Checks the options as a whole, after the file and the flags have been applied.
pub fn validate(opts: &Options) -> Result<(), ConfError> {
    if i64::from(opts.max_payload) > opts.max_pending {
        return Err(ConfError::Invalid {
            message: format!(
                "max_payload ({}) cannot be higher than max_pending ({})",
                opts.max_payload, opts.max_pending
            ),
        });
    }
    for (what, port) in [("port", opts.port), ("http_port", opts.http_port), ("websocket port", opts.websocket.port)] {
        if !(-1..=65535).contains(&port) {
            return Err(ConfError::Invalid {
                message: format!("invalid {what} {port}: use 0-65535, or -1 for a random port"),
            });
        }
    }
    if opts.server_name.as_deref().is_some_and(|n| n.contains(' ')) {
        return Err(ConfError::Invalid { message: "server name cannot contain spaces".into() });
    }
    Ok(())
}

fn unknown(e: &Entry, block: &str, opts: &mut Options) {
    if !e.used_as_variable {
        let within = if block.is_empty() { String::new() } else { format!(" in {block}") };
        opts.warnings.push(format!("{}: unknown field {:?}{within} (ignored)", e.key_pos, e.key));
    }
}

fn unsupported(e: &Entry, block: &str, opts: &mut Options) {
    if !e.used_as_variable {
        let within = if block.is_empty() { String::new() } else { format!(" in {block}") };
        opts.warnings.push(format!("{}: field {:?}{within} is not supported by edgebus (ignored)", e.key_pos, e.key));
    }
}

fn invalid(e: &Entry, message: impl Into<String>) -> ConfError {
    ConfError::value(&e.value.pos, &e.key, message)
}

fn type_error(e: &Entry, expected: &str) -> ConfError {
    invalid(e, format!("expected {expected}, got {}", e.value.type_name()))
}

fn string(e: &Entry) -> Result<&str, ConfError> {
    match &e.value.kind {
        ValueKind::String(s) => Ok(s),
        _ => Err(type_error(e, "a string")),
    }
}

fn boolean(e: &Entry) -> Result<bool, ConfError> {
    match e.value.kind {
        ValueKind::Bool(b) => Ok(b),
        _ => Err(type_error(e, "a boolean")),
    }
}

fn integer(e: &Entry) -> Result<i64, ConfError> {
    match e.value.kind {
        ValueKind::Integer(n) => Ok(n),
        _ => Err(type_error(e, "an integer")),
    }
}

fn map(e: &Entry) -> Result<&[Entry], ConfError> {
    match &e.value.kind {
        ValueKind::Map(entries) => Ok(entries),
        _ => Err(type_error(e, "a map")),
    }
}

fn non_negative(e: &Entry) -> Result<i64, ConfError> {
    let n = integer(e)?;
    if n < 0 {
        return Err(invalid(e, format!("value {n} cannot be negative")));
    }
    Ok(n)
}

fn non_negative_i32(e: &Entry) -> Result<i32, ConfError> {
    let n = non_negative(e)?;
    i32::try_from(n).map_err(|_| invalid(e, format!("value {n} is too big")))
}

/// nats-server treats 0 as "not set" for its limits and falls back to the default.
fn or_default<T: Default + PartialEq>(value: T, default: T) -> T {
    if value == T::default() {
        default
    } else {
        value
    }
}

fn check_port(e: &Entry, n: i64) -> Result<i32, ConfError> {
    match i32::try_from(n) {
        Ok(p) if (-1..=65535).contains(&p) => Ok(p),
        _ => Err(invalid(e, format!("invalid port {n}: use 0-65535, or -1 for a random port"))),
    }
}

fn port(e: &Entry) -> Result<i32, ConfError> {
    check_port(e, integer(e)?)
}

/// Client port 0 means the default port, as in nats-server (-1 asks for a random one).
fn client_port(port: i32) -> i32 {
    if port == 0 {
        options::DEFAULT_PORT
    } else {
        port
    }
}

/// `listen`-style values: a port (`4222`) or `host:port` (`"127.0.0.1:4222"`, `":4222"`,
/// `"[::1]:4222"`). The host is `None` for the integer form; an empty host in the string
/// form means all interfaces.
fn listen(e: &Entry) -> Result<(Option<String>, i32), ConfError> {
    let text = match &e.value.kind {
        ValueKind::Integer(n) => return Ok((None, check_port(e, *n)?)),
        ValueKind::String(s) => s,
        _ => return Err(type_error(e, "a port or \"host:port\"")),
    };
    let bad = || invalid(e, format!("could not parse address string {text:?}"));
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':').ok_or_else(bad)?)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    let port: i64 = port.parse().map_err(|_| invalid(e, format!("could not parse port {port:?}")))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok((Some(host.to_string()), check_port(e, port)?))
}

/// A Go duration string (`"1m30s"`), by the core's reading of them that JetStream shares.
fn parse_go_duration(text: &str) -> Result<Duration, DurationError<'_>> {
    duration::parse(text).map(Duration::from_nanos)
}

/// A duration option: a Go duration string, or an integer number of seconds (nats-server's
/// older form). An unquoted `2m` is read by nats-server as 2,000,000 seconds; here it is
/// read as the two minutes its author meant, with a warning.
fn duration(e: &Entry, warnings: &mut Vec<String>) -> Result<Duration, ConfError> {
    match &e.value.kind {
        ValueKind::String(s) => {
            parse_go_duration(s).map_err(|why| invalid(e, format!("error parsing {}: {why}", e.key)))
        }
        ValueKind::Integer(n) => {
            if let Some(d) = e.value.raw.as_deref().and_then(|raw| parse_go_duration(raw).ok()) {
                warnings.push(format!(
                    "{}: {} {} read as a duration; nats-server reads it as {n} seconds, \
                     quote it (\"{}\") to be portable",
                    e.value.pos,
                    e.key,
                    e.value.raw.as_deref().unwrap_or_default(),
                    e.value.raw.as_deref().unwrap_or_default(),
                ));
                return Ok(d);
            }
            let secs = u64::try_from(*n).map_err(|_| invalid(e, "duration cannot be negative"))?;
            Ok(Duration::from_secs(secs))
        }
        _ => Err(type_error(e, "a duration such as \"2s\" or a number of seconds")),
    }
}

fn authorization(e: &Entry, opts: &mut Options) -> Result<(), ConfError> {
    let mut user = None;
    let mut pass = None;
    let mut token = None;
    let mut users = None;
    let mut timeout = None;
    for ae in map(e)? {
        match ae.key.to_ascii_lowercase().as_str() {
            "user" | "username" => user = Some(string(ae)?.to_string()),
            "pass" | "password" => pass = Some(string(ae)?.to_string()),
            "token" => token = Some(string(ae)?.to_string()),
            "timeout" => timeout = Some(auth_timeout(ae)?),
            "users" => users = Some(parse_users(ae, opts)?),
            k if UNSUPPORTED_AUTH.contains(&k) => unsupported(ae, "authorization", opts),
            _ => unknown(ae, "authorization", opts),
        }
    }
    let at = |message: &str| ConfError::value(&e.key_pos, &e.key, message);
    if (user.is_some() || pass.is_some()) && token.is_some() {
        return Err(at("Cannot have a user/pass and token"));
    }
    if users.is_some() && user.is_some() {
        return Err(at("Can not have a single user/pass and a users array"));
    }
    if users.is_some() && token.is_some() {
        return Err(at("Can not have a token and a users array"));
    }
    let mut all = users.unwrap_or_default();
    match (user, pass) {
        (Some(username), pass) => all.push(User { username, password: pass.unwrap_or_default() }),
        (None, Some(_)) => {
            opts.warnings.push(format!("{}: authorization has a password but no user (ignored)", e.key_pos))
        }
        (None, None) => {}
    }
    opts.authorization =
        Authorization { token, users: all, timeout: timeout.filter(|t| !t.is_zero()).unwrap_or(options::AUTH_TIMEOUT) };
    Ok(())
}

/// `timeout` in seconds, integer or fractional (nats-server's form); a Go duration string
/// is accepted too.
fn auth_timeout(e: &Entry) -> Result<Duration, ConfError> {
    let secs = match &e.value.kind {
        ValueKind::Integer(n) => *n as f64,
        ValueKind::Float(f) => *f,
        ValueKind::String(s) => {
            return parse_go_duration(s).map_err(|why| invalid(e, format!("error parsing timeout: {why}")))
        }
        _ => return Err(type_error(e, "a number of seconds")),
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| invalid(e, format!("invalid timeout {secs}: expected a non-negative number of seconds")))
}

fn parse_users(e: &Entry, opts: &mut Options) -> Result<Vec<User>, ConfError> {
    let ValueKind::Array(items) = &e.value.kind else {
        return Err(type_error(e, "an array of users"));
    };
    let mut users = Vec::with_capacity(items.len());
    for item in items {
        let ValueKind::Map(fields) = &item.kind else {
            return Err(ConfError::value(
                &item.pos,
                &e.key,
                format!("expected user entry to be a map, got {}", item.type_name()),
            ));
        };
        let mut username = None;
        let mut password = None;
        for f in fields {
            match f.key.to_ascii_lowercase().as_str() {
                "user" | "username" => username = Some(string(f)?.to_string()),
                "pass" | "password" => password = Some(string(f)?.to_string()),
                k if UNSUPPORTED_USER.contains(&k) => unsupported(f, "authorization users", opts),
                _ => unknown(f, "authorization users", opts),
            }
        }
        let username = username.ok_or_else(|| ConfError::value(&item.pos, &e.key, "user entry has no \"user\""))?;
        users.push(User { username, password: password.unwrap_or_default() });
    }
    Ok(users)
}

fn websocket(e: &Entry, opts: &mut Options) -> Result<(), ConfError> {
    for we in map(e)? {
        match we.key.to_ascii_lowercase().as_str() {
            "host" | "net" => opts.websocket.host = string(we)?.to_string(),
            "port" => opts.websocket.port = port(we)?,
            "listen" => {
                let (host, port) = listen(we)?;
                if let Some(host) = host {
                    opts.websocket.host = host;
                }
                opts.websocket.port = port;
            }
            "no_tls" => opts.websocket.no_tls = boolean(we)?,
            k if UNSUPPORTED_WS.contains(&k) => unsupported(we, "websocket", opts),
            _ => unknown(we, "websocket", opts),
        }
    }
    Ok(())
}

/// `jetstream: true|false|enabled|disabled` or a block, which enables JetStream unless it
/// says `enabled: false`.
fn jetstream(e: &Entry, opts: &mut Options, store_dir_set: &mut bool) -> Result<(), ConfError> {
    match &e.value.kind {
        ValueKind::Bool(b) => opts.jetstream.enabled = *b,
        ValueKind::String(s) => {
            opts.jetstream.enabled = match s.to_ascii_lowercase().as_str() {
                "enabled" | "enable" => true,
                "disabled" | "disable" => false,
                _ => return Err(invalid(e, format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"))),
            }
        }
        ValueKind::Map(entries) => {
            let mut enable = true;
            for je in entries {
                match je.key.to_ascii_lowercase().as_str() {
                    "store" | "store_dir" | "storedir" => store_dir(je, opts, store_dir_set)?,
                    "max_memory_store" | "max_mem_store" | "max_mem" => {
                        opts.jetstream.max_memory_store = storage_size(je)?;
                    }
                    "max_file_store" | "max_file" => {
                        opts.jetstream.max_file_store = storage_size(je)?;
                    }
                    "enabled" | "enable" => enable = boolean(je)?,
                    "sync" | "sync_interval" => opts.jetstream.sync_interval = sync_interval(je, &mut opts.warnings)?,
                    k if UNSUPPORTED_JS.contains(&k) => unsupported(je, "jetstream", opts),
                    _ => unknown(je, "jetstream", opts),
                }
            }
            opts.jetstream.enabled = enable;
        }
        _ => return Err(type_error(e, "a boolean, \"enabled\", \"disabled\" or a map")),
    }
    Ok(())
}

/// `sync_interval: always` (any case, as nats-server compares it) or a duration; zero means
/// the default, as in nats-server's file store.
fn sync_interval(e: &Entry, warnings: &mut Vec<String>) -> Result<options::SyncInterval, ConfError> {
    if let ValueKind::String(s) = &e.value.kind {
        if s.eq_ignore_ascii_case("always") {
            return Ok(options::SyncInterval::Always);
        }
    }
    let d = duration(e, warnings)?;
    Ok(options::SyncInterval::Every(if d.is_zero() { options::SYNC_INTERVAL } else { d }))
}

fn store_dir(e: &Entry, opts: &mut Options, store_dir_set: &mut bool) -> Result<(), ConfError> {
    // nats-server accepts the directory at the top level or inside `jetstream {}`, not both.
    if *store_dir_set {
        return Err(invalid(e, "Duplicate 'store_dir' configuration"));
    }
    *store_dir_set = true;
    opts.jetstream.store_dir = Some(PathBuf::from(string(e)?));
    Ok(())
}

/// A JetStream storage size: an integer (size suffixes already applied by the parser) or,
/// as nats-server's `getStorageSize` allows, a string such as `"1G"` whose K/M/G/T suffix is
/// a power of 1024 (`"1GB"`/`"1GiB"` are accepted too).
fn storage_size(e: &Entry) -> Result<i64, ConfError> {
    let text = match &e.value.kind {
        ValueKind::Integer(_) => return non_negative(e),
        ValueKind::String(s) => s.trim(),
        _ => return Err(type_error(e, "a size such as 1073741824, 1GB or \"1G\"")),
    };
    if text.is_empty() {
        return Ok(0);
    }
    let bad = || invalid(e, format!("invalid size {text:?}: sizes defined as strings must end in K, M, G, T"));
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let suffix = suffix.to_ascii_uppercase();
    let unit = suffix.strip_suffix("IB").or_else(|| suffix.strip_suffix('B')).unwrap_or(&suffix);
    let shift = match unit {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(|| invalid(e, format!("size {text:?} is too big")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::conf::parse_str;

    fn load(src: &str) -> Result<Options, ConfError> {
        let mut opts = Options::default();
        apply(&parse_str(src, "t.conf")?, &mut opts)?;
        Ok(opts)
    }

    fn ok(src: &str) -> Options {
        load(src).unwrap_or_else(|e| panic!("{src:?}: {e}"))
    }

    fn err(src: &str) -> String {
        load(src).expect_err(src).to_string()
    }

    #[test]
    fn listen_and_ports() {
        let o = ok("listen: \"127.0.0.1:4333\"");
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 4333));
        let o = ok("listen: 127.0.0.1:4333");
        assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 4333));
        let o = ok("host: 10.0.0.1\nlisten: 4333");
        assert_eq!((o.host.as_str(), o.port), ("10.0.0.1", 4333));
        let o = ok("host: 10.0.0.1\nlisten: \":4333\"");
        assert_eq!((o.host.as_str(), o.port), ("0.0.0.0", 4333));
        let o = ok("listen: \"[::1]:4333\"");
        assert_eq!((o.host.as_str(), o.port), ("::1", 4333));
        let o = ok("listen: localhost:4333");
        assert_eq!((o.host.as_str(), o.port), ("localhost", 4333));
        assert_eq!(ok("net: 127.0.0.2\nport: 5").host, "127.0.0.2");
        assert_eq!(ok("host: 127.0.0.2").host, "127.0.0.2");
        assert_eq!(ok("port: 0").port, options::DEFAULT_PORT);
        assert_eq!(ok("port: -1").port, -1);
        assert_eq!(ok("PORT: 1234").port, 1234, "keys are case-insensitive");
        assert!(err("listen: localhost").contains("could not parse address string"));
        assert!(err("listen: \"::1:4222\"").contains("could not parse address string"));
        assert!(err("listen: \"host:abc\"").contains("could not parse port \"abc\""));
        assert!(err("port: 70000").contains("invalid port 70000"));
        assert_eq!(err("\nport: \"abc\""), "t.conf:2:7: port: expected an integer, got a string");

        let o = ok("http_port: 8222");
        assert_eq!((o.http_port, o.http_host.clone()), (8222, None));
        assert_eq!(ok("monitor_port: 8223").http_port, 8223);
        let o = ok("http: \"127.0.0.1:8224\"");
        assert_eq!((o.http_port, o.http_host.as_deref()), (8224, Some("127.0.0.1")));
        assert_eq!(ok("http: 8225").http_port, 8225);
        assert_eq!(ok("server_name: edge-1").server_name.as_deref(), Some("edge-1"));
    }

    #[test]
    fn limits() {
        let o = ok("max_payload: 2MB\nmax_pending: 64MB\nmax_control_line: 8KB\n\
                    max_connections: 100\nmax_subscriptions: 10\nping_max: 5\n");
        assert_eq!(o.max_payload, 2 << 20);
        assert_eq!(o.max_pending, 64 << 20);
        assert_eq!(o.max_control_line, 8192);
        assert_eq!(o.max_connections, 100);
        assert_eq!(o.max_subscriptions, 10);
        assert_eq!(o.ping_max, 5);
        let o = ok("max_conn: 7\nmax_subs: 8");
        assert_eq!((o.max_connections, o.max_subscriptions), (7, 8));
        assert_eq!(ok("max_payload: 1k").max_payload, 1000);
        // 0 means "use the default", as in nats-server.
        let o = ok("max_payload: 0\nmax_pending: 0\nmax_connections: 0\nping_max: 0");
        assert_eq!(o.max_payload, options::MAX_PAYLOAD);
        assert_eq!(o.max_pending, options::MAX_PENDING);
        assert_eq!(o.max_connections, options::MAX_CONNECTIONS);
        assert_eq!(o.ping_max, options::PING_MAX);
        assert!(err("max_payload: 3GB").contains("max_payload: value 3221225472 is too big"));
        assert!(err("max_pending: -1").contains("cannot be negative"));
        assert!(err("max_payload: 1.5").contains("max_payload: expected an integer, got a float"));
    }

    #[test]
    fn durations() {
        let o = ok("ping_interval: \"30s\"\nwrite_deadline: \"1m30s\"");
        assert_eq!(o.ping_interval, Duration::from_secs(30));
        assert_eq!(o.write_deadline, Duration::from_secs(90));
        let o = ok("ping_interval: 45\nwrite_deadline: 3");
        assert_eq!(o.ping_interval, Duration::from_secs(45));
        assert_eq!(o.write_deadline, Duration::from_secs(3));
        let o = ok("write_deadline: 500ms\nping_interval: 1m30s");
        assert_eq!(o.write_deadline, Duration::from_millis(500));
        assert_eq!(o.ping_interval, Duration::from_secs(90));
        assert!(o.warnings.is_empty());
        // Unquoted `2m` is a size to the parser; the duration key reads it as minutes and says so.
        let o = ok("ping_interval: 2m");
        assert_eq!(o.ping_interval, Duration::from_secs(120));
        assert_eq!(o.warnings.len(), 1);
        assert!(o.warnings[0].starts_with("t.conf:1:16: ping_interval 2m read as a duration"), "{}", o.warnings[0]);
        assert_eq!(ok("ping_interval: \"0s\"").ping_interval, options::PING_INTERVAL);
        assert_eq!(
            err("ping_interval: \"5x\""),
            "t.conf:1:16: ping_interval: error parsing ping_interval: time: unknown unit \"x\" in duration \"5x\""
        );
        // Go's reading (nats-server 2.14 checked side by side): a sign, and its error texts.
        assert_eq!(ok("ping_interval: \"+3s\"").ping_interval, Duration::from_secs(3));
        assert_eq!(
            err("ping_interval: \"1m 30s\""),
            "t.conf:1:16: ping_interval: error parsing ping_interval: time: unknown unit \"m \" in duration \"1m 30s\""
        );
        assert!(err("write_deadline: \"5\"").ends_with("time: missing unit in duration \"5\""));
        assert!(err("write_deadline: \"1é\"").ends_with(r#"time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#));
        // nats-server takes a negative duration; no option of ours has a use for one.
        assert!(err("ping_interval: \"-1s\"").ends_with("negative duration \"-1s\""));
        assert!(err("write_deadline: -3").contains("cannot be negative"));
        assert!(err("write_deadline: true").contains("expected a duration"));
    }

    #[test]
    fn flags() {
        let o = ok("debug: true\ntrace: on");
        assert!(o.debug && o.trace);
        assert!(ok("trace_verbose: yes").trace);
        assert!(!ok("debug: false").debug);
        assert!(err("debug: 1").contains("debug: expected a boolean, got an integer"));
    }

    #[test]
    fn authorization_block() {
        let o = ok("authorization { token: s3cr3t }");
        assert_eq!(o.authorization.token.as_deref(), Some("s3cr3t"));
        assert!(o.authorization.users.is_empty());
        assert_eq!(o.authorization.timeout, options::AUTH_TIMEOUT);

        let o = ok("authorization { user: derek, pass: \"T0p\", timeout: 1.5 }");
        assert_eq!(o.authorization.users, vec![User { username: "derek".into(), password: "T0p".into() }]);
        assert_eq!(o.authorization.timeout, Duration::from_millis(1500));
        let o = ok("authorization { username: a, password: b, timeout: 3 }");
        assert_eq!(o.authorization.users[0].username, "a");
        assert_eq!(o.authorization.timeout, Duration::from_secs(3));
        assert_eq!(
            ok("authorization { token: t, timeout: \"250ms\" }").authorization.timeout,
            Duration::from_millis(250)
        );

        let o = ok(concat!(
            "authorization {\n  users: [\n    {user: alice, password: $2a$11$hash}\n",
            "    {user: bob, pass: 'b', permissions: {publish: x}}\n  ]\n}\n"
        ));
        assert_eq!(
            o.authorization.users,
            vec![
                User { username: "alice".into(), password: "$2a$11$hash".into() },
                User { username: "bob".into(), password: "b".into() },
            ]
        );
        assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
        assert!(o.warnings[0].contains("\"permissions\" in authorization users is not supported"));

        assert!(err("authorization { user: a, password: b, token: c }").contains("Cannot have a user/pass and token"));
        assert!(err("authorization { user: a, users: [{user: b}] }")
            .contains("Can not have a single user/pass and a users array"));
        assert!(
            err("authorization { token: a, users: [{user: b}] }").contains("Can not have a token and a users array")
        );
        assert!(err("authorization { users: [ x ] }").contains("expected user entry to be a map"));
        assert!(err("authorization { users: [ {password: x} ] }").contains("user entry has no \"user\""));
        assert!(err("authorization { users: {user: a} }").contains("expected an array of users"));
        assert!(err("authorization { users: [{user: a, password: 2}] }")
            .contains("password: expected a string, got an integer"));
        assert!(err("authorization { timeout: -1 }").contains("invalid timeout"));
        assert!(err("authorization: token").contains("authorization: expected a map"));
        assert!(ok("Authorization { TOKEN: x }").authorization.token.is_some());
    }

    #[test]
    fn websocket_block() {
        let o = ok("websocket { host: 127.0.0.1, port: 8080, no_tls: true }");
        assert_eq!(o.websocket.host, "127.0.0.1");
        assert_eq!(o.websocket.port, 8080);
        assert!(o.websocket.no_tls);
        let o = ok("ws: { listen: \"0.0.0.0:9090\" }");
        assert_eq!((o.websocket.host.as_str(), o.websocket.port), ("0.0.0.0", 9090));
        assert!(!o.websocket.no_tls);
        let o = ok("websocket { net: localhost\n listen: 9091 }");
        assert_eq!((o.websocket.host.as_str(), o.websocket.port), ("localhost", 9091));
        assert!(err("websocket { port: \"x\" }").contains("port: expected an integer"));
        assert!(err("websocket: 8080").contains("websocket: expected a map"));
    }

    #[test]
    fn jetstream_forms() {
        assert!(ok("jetstream: enabled").jetstream.enabled);
        assert!(ok("jetstream: true").jetstream.enabled);
        assert!(ok("jetstream: Enable").jetstream.enabled);
        assert!(!ok("jetstream: false").jetstream.enabled);
        assert!(!ok("jetstream: disabled").jetstream.enabled);
        assert!(err("jetstream: maybe").contains("Expected 'enabled' or 'disabled'"));
        assert!(err("jetstream: 1").contains("jetstream: expected a boolean"));

        let o =
            ok("jetstream {\n  store_dir: /var/lib/edgebus\n  max_memory_store: 1GB\n  max_file_store: \"2G\"\n}\n");
        assert!(o.jetstream.enabled);
        assert_eq!(o.jetstream.store_dir, Some(PathBuf::from("/var/lib/edgebus")));
        assert_eq!(o.jetstream.max_memory_store, 1 << 30);
        assert_eq!(o.jetstream.max_file_store, 2 << 30);
        let o = ok("jetstream { max_mem: 1024, max_file: \"3MB\", enabled: false }");
        assert!(!o.jetstream.enabled);
        assert_eq!(o.jetstream.max_memory_store, 1024);
        assert_eq!(o.jetstream.max_file_store, 3 << 20);
        assert_eq!(ok("jetstream { max_mem_store: 1k }").jetstream.max_memory_store, 1000);
        assert_eq!(ok("jetstream { store: \"/d\" }").jetstream.store_dir, Some(PathBuf::from("/d")));
        let o = ok("store_dir: \"/top\"\njetstream: enabled");
        assert_eq!(o.jetstream.store_dir, Some(PathBuf::from("/top")));
        assert!(err("store_dir: /a\njetstream { store_dir: /b }").contains("Duplicate 'store_dir' configuration"));
        assert!(err("jetstream { max_file: \"12X\" }").contains("sizes defined as strings must end in K, M, G, T"));
        assert!(err("jetstream { max_file: -1 }").contains("cannot be negative"));
        let o = ok("jetstream { domain: hub, bogus: 1 }");
        assert_eq!(o.warnings.len(), 2, "{:?}", o.warnings);
    }

    #[test]
    fn jetstream_sync_interval() {
        use options::SyncInterval;
        assert_eq!(ok("jetstream: enabled").jetstream.sync_interval, SyncInterval::Every(options::SYNC_INTERVAL));
        assert_eq!(ok("jetstream { sync_interval: always }").jetstream.sync_interval, SyncInterval::Always);
        assert_eq!(ok("jetstream { sync: \"ALWAYS\" }").jetstream.sync_interval, SyncInterval::Always);
        let o = ok("jetstream { sync_interval: \"30s\" }");
        assert_eq!(o.jetstream.sync_interval, SyncInterval::Every(Duration::from_secs(30)));
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        let o = ok("jetstream { sync_interval: 45 }");
        assert_eq!(o.jetstream.sync_interval, SyncInterval::Every(Duration::from_secs(45)));
        let o = ok("jetstream { sync_interval: 2m }");
        assert_eq!(o.jetstream.sync_interval, SyncInterval::Every(Duration::from_secs(120)));
        assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
        let o = ok("jetstream { sync_interval: \"0s\" }");
        assert_eq!(o.jetstream.sync_interval, SyncInterval::Every(options::SYNC_INTERVAL));
        assert!(err("jetstream { sync_interval: \"often\" }").contains("error parsing sync_interval"));
        assert!(err("jetstream { sync_interval: true }").contains("expected a duration"));
    }

    #[test]
    fn validation() {
        let o = ok("max_payload: 2MB\nmax_pending: 1MB");
        assert_eq!(
            validate(&o).unwrap_err().to_string(),
            "max_payload (2097152) cannot be higher than max_pending (1048576)"
        );
        validate(&ok("max_payload: 1MB\nmax_pending: 1MB")).unwrap();
        let o = Options { port: 70000, ..Options::default() };
        assert!(validate(&o).unwrap_err().to_string().contains("invalid port 70000"));
        let o = Options { server_name: Some("a b".into()), ..Options::default() };
        assert_eq!(validate(&o).unwrap_err().to_string(), "server name cannot contain spaces");
        validate(&Options::default()).unwrap();
    }

    #[test]
    fn non_map_document_is_an_error() {
        let v = Value::new(ValueKind::Integer(1), crate::conf::Pos { file: "x".into(), line: 1, col: 1 });
        assert!(apply(&v, &mut Options::default()).is_err());
    }

    #[test]
    fn log_and_pid_file_keys_are_accepted_quietly() {
        let o = ok("log_file: /tmp/x.log\npidfile: /tmp/x.pid");
        assert!(o.warnings.is_empty());
        assert!(err("log_file: 3").contains("log_file: expected a string"));
    }
}
