//! The dialling side of the opening handshake, for a leaf remote with a `ws://` or `wss://`
//! URL: `GET /leafnode` (the path that tells nats-server's WebSocket port to make a leaf
//! connection, not a client), with `Nats-No-Masking: true` and, for `ws_compression: true`,
//! nats-server's permessage-deflate offer, and the checks nats-server's leaf applies to the
//! `101` answer. A hub that does not accept unmasked frames is refused: edgebus writes the
//! server's unmasked frames on every WebSocket.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::upgrade::accept_key;

/// The longest answer header read (nats-server's `MAX_CONTROL_LINE_SIZE` buffer).
const MAX_ANSWER: usize = 4096;

/// The offer (nats-server's `wsPMCReqHeaderValue`).
const DEFLATE_OFFER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n";

/// The request line and headers for the hub at `host` (`host:port`) with this key.
fn request(host: &str, key: &str, compress: bool) -> String {
    format!(
        "GET /leafnode HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{}Nats-No-Masking: true\r\n\r\n",
        if compress { DEFLATE_OFFER } else { "" }
    )
}

/// Whether the answer head (status line and headers) upgrades with `key`, unmasked; and,
/// when compression was offered, whether the hub took it. As nats-server's leaf: a hub
/// that answers without the extension just does not compress; one that takes it must
/// grant no context takeover both ways.
fn check_answer(head: &str, key: &str, offered: bool) -> Result<bool, String> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("101") {
        return Err(format!("invalid websocket connection: {status:?}"));
    }
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let upgrades = header("Upgrade").eq_ignore_ascii_case("websocket")
        && header("Connection").eq_ignore_ascii_case("upgrade")
        && header("Sec-WebSocket-Accept") == accept_key(key.as_bytes());
    if !upgrades {
        return Err("invalid websocket connection".into());
    }
    let compress = offered && {
        let params: Vec<String> = head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case("Sec-WebSocket-Extensions"))
            .flat_map(|(_, v)| v.split([',', ';']).map(|p| p.trim().to_ascii_lowercase()).collect::<Vec<_>>())
            .collect();
        let has = |p: &str| params.iter().any(|q| q == p);
        if has("permessage-deflate") && !(has("server_no_context_takeover") && has("client_no_context_takeover")) {
            return Err("compression negotiation error".into());
        }
        has("permessage-deflate")
    };
    if header("Nats-No-Masking") != "true" {
        return Err("the hub requires masked frames, which edgebus leaf links do not write".into());
    }
    Ok(compress)
}

/// Upgrades `stream` to WebSocket as a leaf of the hub at `host`, offering compression when
/// `compress`; returns what arrived after the answer (the first frames), for the frame
/// reader, and whether compression was negotiated.
pub async fn leaf_upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    compress: bool,
) -> io::Result<(Vec<u8>, bool)> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut raw = [0u8; 16];
    getrandom::getrandom(&mut raw).map_err(|e| bad(e.to_string()))?;
    let key = data_encoding::BASE64.encode(&raw);
    stream.write_all(request(host, &key, compress).as_bytes()).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_ANSWER {
            return Err(bad("websocket answer too long".into()));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    };
    let compress = check_answer(&String::from_utf8_lossy(&buf[..end]), &key, compress).map_err(bad)?;
    Ok((buf.split_off(end + 4), compress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_checked_as_nats_server_checks_them() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nNats-No-Masking: true";
        assert_eq!(check_answer(ok, key, false), Ok(false));
        assert!(check_answer(&ok.replace("101", "404"), key, false).is_err());
        assert!(check_answer(&ok.replace("s3pP", "xxxx"), key, false).is_err());
        let masked = check_answer(&ok.replace("Nats-No-Masking: true", "X: y"), key, false);
        assert!(masked.is_err_and(|e| e.contains("masked")));
        assert!(request("h:1", key, false).starts_with("GET /leafnode HTTP/1.1\r\nHost: h:1\r\n"));
        // compression: offered, then taken, not taken, or taken with context takeover
        assert!(request("h:1", key, true).contains(DEFLATE_OFFER));
        assert!(!request("h:1", key, false).contains("Extensions"));
        let taken = format!("{ok}\r\n{}", DEFLATE_OFFER.trim_end());
        assert_eq!(check_answer(&taken, key, true), Ok(true));
        assert_eq!(check_answer(&taken, key, false), Ok(false));
        assert_eq!(check_answer(ok, key, true), Ok(false));
        let context = format!("{ok}\r\nSec-WebSocket-Extensions: permessage-deflate");
        assert_eq!(check_answer(&context, key, true), Err("compression negotiation error".into()));
    }
}
