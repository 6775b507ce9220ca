//! `allowed_origins` and `same_origin`: which web pages may open a WebSocket, decided as
//! nats-server's `checkOrigin` decides it. A request without an `Origin` (or
//! `Sec-WebSocket-Origin`) header is always let in: only browsers send one, and any other
//! client could send whatever it likes. Origins compare by scheme, lower-cased host and port,
//! a missing port standing for 80 (`http`) or 443 (`https`).

use std::fmt;

/// One entry of `allowed_origins`, parsed once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    pub scheme: String,
    pub host: String,
    pub port: String,
}

/// Why an origin was refused; nats-server logs it after `origin not allowed: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginError {
    Unparsable(String),
    NotSameOrigin,
    NotAllowed,
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginError::Unparsable(e) => f.write_str(e),
            OriginError::NotSameOrigin => f.write_str("not same origin"),
            OriginError::NotAllowed => f.write_str("not in the allowed list"),
        }
    }
}

/// An absolute URL's scheme (lower-cased, as Go's parser leaves it) and authority; a
/// URL-shaped path (`/x`) has neither.
struct Url {
    scheme: String,
    host: String,
}

/// Enough of Go's `url.ParseRequestURI` to find the scheme and host of an `Origin`.
fn parse_url(text: &str) -> Result<Url, String> {
    let invalid = || format!("parse {text:?}: invalid URI for request");
    if text.starts_with('/') {
        return Ok(Url { scheme: String::new(), host: String::new() });
    }
    let (scheme, rest) = text.split_once(':').ok_or_else(invalid)?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(if scheme.is_empty() { format!("parse {text:?}: missing protocol scheme") } else { invalid() });
    }
    let Some(after) = rest.strip_prefix("//") else {
        // `scheme:opaque` (e.g. `null` has no colon at all and failed above)
        return Ok(Url { scheme: scheme.to_ascii_lowercase(), host: String::new() });
    };
    let authority = after.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // Go rejects a port that is not all digits
    let bad_port = |p: &str| format!("parse {text:?}: invalid port \":{p}\" after host");
    let port = match host.strip_prefix('[') {
        Some(v6) => {
            let (_, after) = v6.split_once(']').ok_or_else(|| format!("parse {text:?}: missing ']' in host"))?;
            if after.is_empty() {
                ""
            } else {
                after.strip_prefix(':').ok_or_else(|| bad_port(after))?
            }
        }
        None => host.rsplit_once(':').map_or("", |(_, p)| p),
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_port(port));
    }
    Ok(Url { scheme: scheme.to_ascii_lowercase(), host: host.to_string() })
}

/// nats-server's `wsGetHostAndPort`: Go's `net.SplitHostPort`, with the scheme's default
/// port when there is none.
fn host_and_port(tls: bool, hostport: &str) -> Result<(String, String), String> {
    let missing = || Ok((hostport.to_ascii_lowercase(), if tls { "443" } else { "80" }.to_string()));
    let err = |why: &str| Err(format!("address {hostport}: {why}"));
    if let Some(v6) = hostport.strip_prefix('[') {
        let Some((host, rest)) = v6.split_once(']') else {
            return err("missing ']' in address");
        };
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host.to_ascii_lowercase(), port.to_string())),
            None if rest.is_empty() => missing(),
            None => err("missing port in address"),
        };
    }
    match hostport.matches(':').count() {
        0 => missing(),
        1 => {
            let (host, port) = hostport.split_once(':').unwrap_or((hostport, ""));
            Ok((host.to_ascii_lowercase(), port.to_string()))
        }
        _ => err("too many colons"),
    }
}

impl AllowedOrigin {
    /// Parses one configured origin; the error is nats-server's start-up refusal.
    pub fn parse(text: &str) -> Result<AllowedOrigin, String> {
        let url = parse_url(text).map_err(|e| format!("unable to parse allowed origin: {e}"))?;
        if url.scheme != "http" && url.scheme != "https" {
            return Err(format!(
                "unable to parse allowed origin {text:?}: allowed origins must be absolute URLs with http or https scheme"
            ));
        }
        if url.host.is_empty() {
            return Err(format!("unable to parse allowed origin {text:?}: host is required"));
        }
        let (host, port) = host_and_port(url.scheme == "https", &url.host)
            .map_err(|e| format!("unable to parse allowed origin: {e}"))?;
        Ok(AllowedOrigin { scheme: url.scheme, host, port })
    }
}

/// Decides whether a request with this `origin` header value (empty = none) and this `Host`
/// may upgrade, on a listener without TLS.
pub fn check(
    origin: &str,
    request_host: &str,
    same_origin: bool,
    allowed: &[AllowedOrigin],
) -> Result<(), OriginError> {
    if (!same_origin && allowed.is_empty()) || origin.is_empty() {
        return Ok(());
    }
    let url = parse_url(origin).map_err(OriginError::Unparsable)?;
    let (oh, op) = host_and_port(url.scheme == "https", &url.host).map_err(OriginError::Unparsable)?;
    if same_origin {
        let (rh, rp) = host_and_port(false, request_host).map_err(OriginError::Unparsable)?;
        if oh != rh || op != rp || url.scheme != "http" {
            return Err(OriginError::NotSameOrigin);
        }
    }
    if !allowed.is_empty() && !allowed.iter().any(|a| a.host == oh && a.scheme == url.scheme && a.port == op) {
        return Err(OriginError::NotAllowed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn list(items: &[&str]) -> Vec<AllowedOrigin> {
        items.iter().map(|s| AllowedOrigin::parse(s).unwrap()).collect()
    }

    #[test]
    fn configured_origins_parse_as_nats_server_accepts_them() {
        assert_eq!(
            AllowedOrigin::parse("https://App.Example").unwrap(),
            AllowedOrigin { scheme: "https".into(), host: "app.example".into(), port: "443".into() }
        );
        assert_eq!(AllowedOrigin::parse("http://[::1]:8080/x").unwrap().port, "8080");
        assert!(AllowedOrigin::parse("ftp://x").unwrap_err().contains("http or https scheme"));
        assert!(AllowedOrigin::parse("http://").unwrap_err().contains("host is required"));
        assert!(AllowedOrigin::parse("nope").unwrap_err().starts_with("unable to parse allowed origin: "));
        assert!(AllowedOrigin::parse("http://a:b:1").is_err());
    }

    #[test]
    fn allowed_list_compares_scheme_host_and_port() {
        let l = list(&["https://app.example", "http://localhost:8080"]);
        assert_eq!(check("", "h", false, &l), Ok(()));
        assert_eq!(check("https://APP.example:443", "h", false, &l), Ok(()));
        assert_eq!(check("http://localhost:8080", "h", false, &l), Ok(()));
        assert_eq!(check("http://app.example", "h", false, &l), Err(OriginError::NotAllowed));
        assert_eq!(check("https://evil.example", "h", false, &l), Err(OriginError::NotAllowed));
        assert_eq!(check("http://localhost", "h", false, &l), Err(OriginError::NotAllowed));
        assert!(matches!(check("null", "h", false, &l), Err(OriginError::Unparsable(_))));
        assert_eq!(check("https://evil.example", "h", false, &[]), Ok(()));
    }

    #[test]
    fn same_origin_compares_with_the_host_header() {
        assert_eq!(check("http://127.0.0.1:4443", "127.0.0.1:4443", true, &[]), Ok(()));
        assert_eq!(check("http://example.com", "EXAMPLE.com:80", true, &[]), Ok(()));
        assert_eq!(check("https://127.0.0.1:4443", "127.0.0.1:4443", true, &[]), Err(OriginError::NotSameOrigin));
        assert_eq!(check("http://127.0.0.1:1", "127.0.0.1:4443", true, &[]), Err(OriginError::NotSameOrigin));
    }

    #[test]
    fn arbitrary_origins_never_panic() {
        let mut rng = fastrand::Rng::with_seed(3);
        let alphabet = ["http", "https", ":", "//", "/", "[", "]", "@", "x", "é", "1", "?", "#", "::"];
        let allowed = list(&["https://x", "http://[::1]:1"]);
        for _ in 0..20000 {
            let text: String = (0..rng.usize(0..10)).map(|_| alphabet[rng.usize(0..alphabet.len())]).collect();
            let _ = AllowedOrigin::parse(&text);
            let _ = check(&text, &text, rng.bool(), &allowed);
        }
    }
}
