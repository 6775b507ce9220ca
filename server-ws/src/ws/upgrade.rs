//! The opening handshake, with nats-server's checks in its order (`wsUpgrade`) and its answers:
//! `405` for a method other than `GET`, `400` for a missing `Host`, `Upgrade`, `Connection`
//! or key, a key that is not base64 of 16 bytes or a version other than 13, `403` for an
//! origin `allowed_origins` / `same_origin` refuse. Each refusal is logged as nats-server logs
//! it; after one the connection stays open for another request when HTTP keep-alive says so.

use std::io;
use std::net::{IpAddr, SocketAddr};

use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::error;

use super::http::{self, Request};
use super::origin::{self, AllowedOrigin};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What the upgrade settled.
#[derive(Debug)]
pub struct Upgraded {
    /// False when the client asked for unmasked frames (`Nats-No-Masking: true`).
    pub require_mask: bool,
    /// `X-Forwarded-For`, when it is one IP address.
    pub forwarded: Option<IpAddr>,
    /// The request's path ends with `/leafnode`: a leaf node dials (nats-server's
    /// `leafNodeWSPath`), not a client.
    pub leaf: bool,
    /// permessage-deflate was negotiated: `compression: true` and the client offered it.
    pub compress: bool,
    /// A client whose `User-Agent` starts with `Mozilla/`: nats-server sends browsers
    /// frames of at most 4096 bytes ("webrowsers behave better with limited frame size").
    pub browser: bool,
    /// A Safari browser with compression: its compressed messages are not fragmented
    /// (nats-server's `nocompfrag`).
    pub no_compressed_fragments: bool,
}

impl Upgraded {
    /// What a dialled connection (a leaf remote) settles: frames unmasked, no compression.
    pub fn dialled() -> Self {
        Upgraded {
            require_mask: false,
            forwarded: None,
            leaf: false,
            compress: false,
            browser: false,
            no_compressed_fragments: false,
        }
    }
}

/// nats-server's `wsPMCExtensionSupport`: any `Sec-WebSocket-Extensions` value naming
/// `permessage-deflate` among its comma- and semicolon-separated parts is an offer; its
/// parameters do not matter, the answer is always without context takeover.
fn offers_deflate(req: &Request) -> bool {
    req.all("Sec-WebSocket-Extensions").any(|value| {
        value.split(|&b| b == b',' || b == b';').any(|p| p.trim_ascii().eq_ignore_ascii_case(b"permessage-deflate"))
    })
}

/// The extension answer when compression is negotiated (nats-server's `wsPMCFullResponse`).
const DEFLATE_ANSWER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n";

/// nats-server's test of the escaped path (`strings.HasSuffix(ep, "/leafnode")`).
fn asks_for_leaf(target: &str) -> bool {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    path.ends_with("/leafnode")
}

/// Who may upgrade: the listener's origin rules.
pub struct Policy<'a> {
    pub same_origin: bool,
    pub allowed_origins: &'a [AllowedOrigin],
    /// `websocket { headers }`: added to every `101` answer.
    pub headers: &'a [(String, String)],
    /// `websocket { compression: true }`.
    pub compression: bool,
}

/// Reads requests until one upgrades (answered with `101`) or the connection must end.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    policy: &Policy<'_>,
) -> io::Result<Upgraded> {
    let refused = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut scanned: usize = 0;
    loop {
        let complete = find_blank_line(&buf[scanned.saturating_sub(3)..]) || buf.len() >= http::MAX_HEAD;
        let parsed = if complete { http::parse(&buf) } else { Ok(None) };
        match parsed {
            Err(bad) => {
                answer_and_close(stream, &bad.answer()).await?;
                return Err(refused("bad HTTP request"));
            }
            Ok(None) => {
                scanned = buf.len();
                buf.reserve(8192);
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            Ok(Some((req, used))) => {
                buf.drain(..used);
                scanned = 0;
                match check(&req, policy) {
                    Err((status, reason)) => {
                        error!("{peer} - websocket handshake error: {reason}");
                        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
                        let answer = http::handler_error(&req, status, &date);
                        if !req.keep_alive() {
                            answer_and_close(stream, &answer).await?;
                            return Err(refused(&reason));
                        }
                        stream.write_all(&answer).await?;
                        stream.flush().await?;
                    }
                    Ok(key) => {
                        if !buf.is_empty() {
                            // nats-server closes without an answer here
                            error!("{peer} - websocket handshake error: client sent data before handshake is complete");
                            return Err(refused("data before handshake"));
                        }
                        let require_mask = req.get("Nats-No-Masking") != b"true";
                        let compress = policy.compression && offers_deflate(&req);
                        let mut answer = format!(
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                             Sec-WebSocket-Accept: {}\r\n",
                            accept_key(key)
                        );
                        if compress {
                            answer.push_str(DEFLATE_ANSWER);
                        }
                        if !require_mask {
                            answer.push_str("Nats-No-Masking: true\r\n");
                        }
                        for (name, value) in policy.headers {
                            answer.push_str(&format!("{name}: {value}\r\n"));
                        }
                        answer.push_str("\r\n");
                        stream.write_all(answer.as_bytes()).await?;
                        stream.flush().await?;
                        let forwarded =
                            std::str::from_utf8(req.get("X-Forwarded-For")).ok().and_then(|v| v.parse().ok());
                        let leaf = asks_for_leaf(&req.target);
                        // a leaf is no browser (nats-server looks for one on client connections)
                        let agent = if leaf { &b""[..] } else { req.get("User-Agent") };
                        let browser = agent.starts_with(b"Mozilla/");
                        let contains = |word: &[u8]| agent.windows(word.len()).any(|w| w == word);
                        let no_compressed_fragments =
                            browser && compress && contains(b"Version/") && contains(b"Safari/");
                        return Ok(Upgraded {
                            require_mask,
                            forwarded,
                            leaf,
                            compress,
                            browser,
                            no_compressed_fragments,
                        });
                    }
                }
            }
        }
    }
}

/// Writes a final answer, then, as Go's `closeWriteAndWait`, sends FIN and reads (and drops)
/// what the client still sends for a moment, so closing with unread input does not reset
/// the connection and destroy the answer before the client has read it.
async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, answer: &[u8]) -> io::Result<()> {
    stream.write_all(answer).await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 8192];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
    Ok(())
}

/// Go's `rstAvoidanceDelay`.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

fn find_blank_line(buf: &[u8]) -> bool {
    buf.windows(2).any(|w| w == b"\n\n") || buf.windows(3).any(|w| w == b"\n\r\n")
}

/// nats-server's checks, in its order; the key on success, else the status and the reason.
fn check<'r>(req: &'r Request, policy: &Policy<'_>) -> Result<&'r [u8], (u16, String)> {
    let bad = |why: &str| Err((400, why.to_string()));
    if req.method != "GET" {
        return Err((405, "request method must be GET".into()));
    }
    if req.get("Host").is_empty() {
        return bad("'Host' missing in request");
    }
    if !req.has_token("Upgrade", "websocket") {
        return bad("invalid value for header 'Upgrade'");
    }
    if !req.has_token("Connection", "Upgrade") {
        return bad("invalid value for header 'Connection'");
    }
    let key = req.get("Sec-WebSocket-Key");
    if key.is_empty() {
        return bad("key missing");
    }
    if !is_base64_of_16_bytes(key) {
        return bad("invalid websocket key");
    }
    if !req.has_token("Sec-WebSocket-Version", "13") {
        return bad("invalid version");
    }
    let mut origin = req.get("Origin");
    if origin.is_empty() {
        origin = req.get("Sec-WebSocket-Origin");
    }
    let host = String::from_utf8_lossy(req.get("Host"));
    origin::check(&String::from_utf8_lossy(origin), &host, policy.same_origin, policy.allowed_origins)
        .map_err(|e| (403, format!("origin not allowed: {e}")))?;
    Ok(key)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64 decoding to 16 bytes: 22 symbols and `==` (Go's `StdEncoding`,
/// which does not insist that the unused bits be zero).
fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    key.len() == 24 && key.ends_with(b"==") && key[..22].iter().all(|b| ALPHABET.contains(b))
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455: SHA-1 of the key and the GUID, base64).
pub(crate) fn accept_key(key: &[u8]) -> String {
    let digest = Sha1::new().chain_update(key).chain_update(GUID).finalize();
    let mut out = String::with_capacity(28);
    for chunk in digest.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn accept_key_of_rfc6455() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn keys() {
        assert!(is_base64_of_16_bytes(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_base64_of_16_bytes(b"YWJj"));
        assert!(!is_base64_of_16_bytes(b"notbase64!!notbase64!!=="));
        assert!(!is_base64_of_16_bytes(b"dGhlIHNhbXBsZSBub25jZQ"));
    }

    fn request(extra: &str, method: &str) -> Request {
        let text = format!(
            "{method} / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        );
        http::parse(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn the_leafnode_path_asks_for_a_leaf() {
        assert!(asks_for_leaf("/leafnode"));
        assert!(asks_for_leaf("/x/leafnode?a=b"));
        assert!(!asks_for_leaf("/"));
        assert!(!asks_for_leaf("/leafnode/x"));
        assert_eq!(request("", "GET").target, "/");
    }

    #[test]
    fn a_deflate_offer_anywhere_in_the_extensions() {
        let offers = |ext: &str| offers_deflate(&request(&format!("Sec-WebSocket-Extensions: {ext}\r\n"), "GET"));
        assert!(offers("permessage-deflate; client_max_window_bits"));
        assert!(offers("x-webkit-deflate-frame, PerMessage-Deflate"));
        assert!(!offers("x-webkit-deflate-frame"));
        assert!(!offers_deflate(&request("", "GET")));
    }

    #[test]
    fn checks_in_nats_server_order() {
        let open = Policy { same_origin: false, allowed_origins: &[], headers: &[], compression: false };
        let v13 = "Sec-WebSocket-Version: 13\r\n";
        assert!(check(&request(v13, "GET"), &open).is_ok());
        assert_eq!(check(&request(v13, "POST"), &open).unwrap_err().0, 405);
        assert_eq!(check(&request("Sec-WebSocket-Version: 8\r\n", "GET"), &open).unwrap_err().1, "invalid version");
        let allowed = [AllowedOrigin::parse("https://app.example").unwrap()];
        let strict = Policy { same_origin: false, allowed_origins: &allowed, headers: &[], compression: false };
        let evil = format!("{v13}Origin: https://evil.example\r\n");
        assert_eq!(
            check(&request(&evil, "GET"), &strict).unwrap_err(),
            (403, "origin not allowed: not in the allowed list".into())
        );
        assert!(check(&request(v13, "GET"), &strict).is_ok());
    }
}
