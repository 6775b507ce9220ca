//! Reading one entry as the type its option wants: strings, booleans, integers and their
//! ranges, ports and `listen` addresses, durations, storage sizes. Each reader follows what
//! nats-server accepts for that kind of option and turns anything else into a
//! [`ConfError`] naming the key and its position, so the block handlers only say which
//! reader a key uses.

use std::time::Duration;

use edgebus_core::duration::{self, DurationError};

use super::super::error::ConfError;
use super::super::value::{Entry, ValueKind};
use crate::options;

pub(super) fn invalid(e: &Entry, message: impl Into<String>) -> ConfError {
    ConfError::value(&e.value.pos, &e.key, message)
}

pub(super) fn type_error(e: &Entry, expected: &str) -> ConfError {
    invalid(e, format!("expected {expected}, got {}", e.value.type_name()))
}

pub(super) fn string(e: &Entry) -> Result<&str, ConfError> {
    match &e.value.kind {
        ValueKind::String(s) => Ok(s),
        _ => Err(type_error(e, "a string")),
    }
}

pub(super) fn boolean(e: &Entry) -> Result<bool, ConfError> {
    match e.value.kind {
        ValueKind::Bool(b) => Ok(b),
        _ => Err(type_error(e, "a boolean")),
    }
}

pub(super) fn integer(e: &Entry) -> Result<i64, ConfError> {
    match e.value.kind {
        ValueKind::Integer(n) => Ok(n),
        _ => Err(type_error(e, "an integer")),
    }
}

pub(super) fn map(e: &Entry) -> Result<&[Entry], ConfError> {
    match &e.value.kind {
        ValueKind::Map(entries) => Ok(entries),
        _ => Err(type_error(e, "a map")),
    }
}

pub(super) fn non_negative(e: &Entry) -> Result<i64, ConfError> {
    let n = integer(e)?;
    if n < 0 {
        return Err(invalid(e, format!("value {n} cannot be negative")));
    }
    Ok(n)
}

pub(super) fn non_negative_i32(e: &Entry) -> Result<i32, ConfError> {
    let n = non_negative(e)?;
    i32::try_from(n).map_err(|_| invalid(e, format!("value {n} is too big")))
}

/// nats-server treats 0 as "not set" for its limits and falls back to the default.
pub(super) fn or_default<T: Default + PartialEq>(value: T, default: T) -> T {
    if value == T::default() {
        default
    } else {
        value
    }
}

pub(super) fn check_port(e: &Entry, n: i64) -> Result<i32, ConfError> {
    match i32::try_from(n) {
        Ok(p) if (-1..=65535).contains(&p) => Ok(p),
        _ => Err(invalid(e, format!("invalid port {n}: use 0-65535, or -1 for a random port"))),
    }
}

pub(super) fn port(e: &Entry) -> Result<i32, ConfError> {
    check_port(e, integer(e)?)
}

/// Client port 0 means the default port, as in nats-server (-1 asks for a random one).
pub(super) fn client_port(port: i32) -> i32 {
    if port == 0 {
        options::DEFAULT_PORT
    } else {
        port
    }
}

/// `listen`-style values: a port (`4222`) or `host:port` (`"127.0.0.1:4222"`, `":4222"`,
/// `"[::1]:4222"`). The host is `None` for the integer form; an empty host in the string
/// form means all interfaces.
pub(super) fn listen(e: &Entry) -> Result<(Option<String>, i32), ConfError> {
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
pub(super) fn parse_go_duration(text: &str) -> Result<Duration, DurationError<'_>> {
    duration::parse(text).map(Duration::from_nanos)
}

/// A duration option: a Go duration string, or an integer number of seconds (nats-server's
/// older form). An unquoted `2m` is read by nats-server as 2,000,000 seconds; here it is
/// read as the two minutes its author meant, with a warning.
pub(super) fn duration(e: &Entry, warnings: &mut Vec<String>) -> Result<Duration, ConfError> {
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

/// A JetStream storage size: an integer (size suffixes already applied by the parser) or,
/// as nats-server's `getStorageSize` allows, a string such as `"1G"` whose K/M/G/T suffix is
/// a power of 1024 (`"1GB"`/`"1GiB"` are accepted too).
pub(super) fn storage_size(e: &Entry) -> Result<i64, ConfError> {
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
    use super::super::tests::*;
    use super::*;

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
}
