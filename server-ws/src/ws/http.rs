//! The HTTP request that opens a WebSocket, read as Go's `net/http` server reads it (nats-server
//! serves its WebSocket port with it), so that a malformed request gets the same answer: the
//! status line and body Go writes, keep-alive after an error the handler reported, close after
//! an error in the request itself. Sans-IO: bytes in, a request or an answer out.

/// Go's `DefaultMaxHeaderBytes` plus the 4 KiB it allows on top before answering `431`.
pub const MAX_HEAD: usize = (1 << 20) + 4096;

/// One request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/leafnode` asks nats-server's WebSocket port for a leaf
    /// connection).
    pub target: String,
    /// `(1, 0)` or `(1, 1)`.
    pub version: (u8, u8),
    /// Names as sent, values with surrounding blanks trimmed (Go canonicalises names; lookups
    /// here ignore case instead).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// Every value of header `name`.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// The first value of `name`, empty when absent (Go's `Header.Get`).
    pub fn get(&self, name: &str) -> &[u8] {
        self.all(name).next().unwrap_or(&[])
    }

    /// Whether one of the comma-separated tokens of header `name` is `value`, ignoring case
    /// (nats-server's `wsHeaderContains`).
    pub fn has_token(&self, name: &str, value: &str) -> bool {
        self.all(name).any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(value.as_bytes())))
    }

    /// Whether Go keeps the connection open after answering this request.
    pub fn keep_alive(&self) -> bool {
        if self.has_token("Connection", "close") {
            return false;
        }
        self.version >= (1, 1) || self.has_token("Connection", "keep-alive")
    }
}

/// A request Go's server refuses before any handler sees it; it answers and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// Unparsable request line or header line: plain `400 Bad Request`.
    Malformed,
    InvalidHeaderName,
    MissingHost,
    UnsupportedVersion,
    TooLarge,
}

impl BadRequest {
    /// The status line text after `HTTP/1.1 `, also the body, as Go writes them.
    fn public(self) -> &'static str {
        match self {
            BadRequest::Malformed => "400 Bad Request",
            BadRequest::InvalidHeaderName => "400 Bad Request: invalid header name",
            BadRequest::MissingHost => "400 Bad Request: missing required Host header",
            BadRequest::UnsupportedVersion => "505 HTTP Version Not Supported: unsupported protocol version",
            BadRequest::TooLarge => "431 Request Header Fields Too Large",
        }
    }

    /// Go's whole answer (it closes the connection after it).
    pub fn answer(self) -> Vec<u8> {
        let p = self.public();
        format!("HTTP/1.1 {p}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{p}").into_bytes()
    }
}

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete, else the request
/// and the number of bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, BadRequest> {
    let Some(end) = head_end(buf) else {
        return if buf.len() >= MAX_HEAD { Err(BadRequest::TooLarge) } else { Ok(None) };
    };
    if end > MAX_HEAD {
        return Err(BadRequest::TooLarge);
    }
    let mut lines = buf[..end].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or(&[]);
    let (method, target, version) = request_line(first)?;
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // an obsolete folded line continues the previous value
            let (_, value) = headers.last_mut().ok_or(BadRequest::Malformed)?;
            value.push(b' ');
            value.extend_from_slice(line.trim_ascii());
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').ok_or(BadRequest::Malformed)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(BadRequest::InvalidHeaderName);
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(BadRequest::Malformed);
        }
        headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    let req = Request { method, target, version, headers };
    match req.all("Host").count() {
        0 if version >= (1, 1) => return Err(BadRequest::MissingHost),
        n if n > 1 => return Err(BadRequest::Malformed),
        _ => {}
    }
    Ok(Some((req, end)))
}

/// Index just past the blank line that ends the head.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = &buf[line_start..i];
            if (line.is_empty() || line == b"\r") && line_start > 0 {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// `METHOD SP URI SP HTTP/x.y`, cut at the first two spaces as Go does.
fn request_line(line: &[u8]) -> Result<(String, String, (u8, u8)), BadRequest> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(uri), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(BadRequest::Malformed);
    };
    if method.is_empty() || !method.iter().all(|&b| is_token(b)) || !request_uri(uri) {
        return Err(BadRequest::Malformed);
    }
    let version = match proto {
        b"HTTP/1.1" => (1, 1),
        b"HTTP/1.0" => (1, 0),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            if *major != b'1' {
                return Err(BadRequest::UnsupportedVersion);
            }
            (1, minor - b'0')
        }
        _ => return Err(BadRequest::Malformed),
    };
    Ok((String::from_utf8_lossy(method).into_owned(), String::from_utf8_lossy(uri).into_owned(), version))
}

/// What Go's `url.ParseRequestURI` takes: a path, `*`, or an absolute URL (`scheme:…`).
fn request_uri(uri: &[u8]) -> bool {
    if uri.first() == Some(&b'/') || uri == b"*" {
        return true;
    }
    let Some(colon) = uri.iter().position(|&b| b == b':') else {
        return false;
    };
    let scheme = &uri[..colon];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What the handler answers a request it refuses: Go's `http.Error` after nats-server set
/// `Sec-Websocket-Version: 13`. `date` is an HTTP date.
pub fn handler_error(req: &Request, status: u16, date: &str) -> Vec<u8> {
    let text = match status {
        403 => "Forbidden",
        405 => "Method Not Allowed",
        _ => "Bad Request",
    };
    let proto = if req.version >= (1, 1) { "HTTP/1.1" } else { "HTTP/1.0" };
    let body = format!("{text}\n");
    let mut out = format!(
        "{proto} {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\n\
         X-Content-Type-Options: nosniff\r\nDate: {date}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if req.version >= (1, 1) && !req.keep_alive() {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    if req.method != "HEAD" {
        out.push_str(&body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn req(text: &str) -> Result<Option<Request>, BadRequest> {
        parse(text.as_bytes()).map(|r| r.map(|(r, _)| r))
    }

    #[test]
    fn a_plain_upgrade_parses() {
        let text = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\nrest";
        let (r, used) = parse(text.as_bytes()).unwrap().unwrap();
        assert_eq!(&text[used..], "rest");
        assert_eq!(r.method, "GET");
        assert!(r.has_token("connection", "upgrade"));
        assert_eq!(r.get("UPGRADE"), b"websocket");
        assert!(r.keep_alive());
    }

    #[test]
    fn incomplete_waits() {
        assert_eq!(req("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
    }

    #[test]
    fn refusals_as_go_words_them() {
        assert_eq!(req("garbage\r\n\r\n"), Err(BadRequest::Malformed));
        assert_eq!(req("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), Err(BadRequest::Malformed));
        assert_eq!(req("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"), Err(BadRequest::Malformed));
        assert_eq!(req("GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n"), Err(BadRequest::InvalidHeaderName));
        assert_eq!(req("GET / HTTP/1.1\r\n\r\n"), Err(BadRequest::MissingHost));
        assert_eq!(req("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"), Err(BadRequest::Malformed));
        assert_eq!(req("GET foo HTTP/1.1\r\nHost: x\r\n\r\n"), Err(BadRequest::Malformed));
        assert_eq!(req("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), Err(BadRequest::Malformed));
        assert_eq!(req("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n"), Err(BadRequest::Malformed));
        let folded = req("GET http://x/ HTTP/1.1\r\nHost: x\r\nX: a\r\n  b\r\n\r\n").unwrap().unwrap();
        assert_eq!(folded.get("x"), b"a b");
        assert_eq!(req("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), Err(BadRequest::UnsupportedVersion));
        assert!(req("GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(req(&big), Err(BadRequest::TooLarge));
        assert_eq!(parse(&vec![b'a'; MAX_HEAD]), Err(BadRequest::TooLarge));
        assert!(BadRequest::MissingHost.answer().starts_with(b"HTTP/1.1 400 Bad Request: missing required Host"));
    }

    #[test]
    fn handler_errors_keep_go_headers() {
        let r = req("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        let a = String::from_utf8(handler_error(&r, 400, "D")).unwrap();
        assert!(a.starts_with("HTTP/1.0 400 Bad Request\r\n"));
        assert!(a.ends_with("Content-Length: 12\r\n\r\nBad Request\n"));
        assert!(!r.keep_alive());
    }

    #[test]
    fn arbitrary_heads_never_panic() {
        let mut rng = fastrand::Rng::with_seed(11);
        let alphabet = b"GET / HTTP/1.1\r\n:Host x\t \x01\xff*";
        for _ in 0..20000 {
            let len = rng.usize(0..120);
            let mut bytes: Vec<u8> = (0..len).map(|_| alphabet[rng.usize(0..alphabet.len())]).collect();
            bytes.extend_from_slice(b"\r\n\r\n");
            if let Ok(Some((r, used))) = parse(&bytes) {
                assert!(used <= bytes.len());
                let _ = handler_error(&r, 400, "d");
            }
        }
    }
}
