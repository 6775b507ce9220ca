//! Dialling one remote: its URLs and the hub's gossiped ones in turn (the core's
//! [`Remotes`]), a link per connection, and the core's backoff between rounds that reached
//! nobody. Interest is announced afresh on every connection.
//!
//! TLS as nats-server dials it: with `handshake_first` the handshake comes first; otherwise
//! the hub's plaintext `INFO` is read, and the link upgrades when the remote asks for TLS
//! (`tls { … }`, a `tls://` URL) or the hub requires it. A `ws://` / `wss://` URL dials the
//! hub's WebSocket port (TLS first for `wss://`) and upgrades at `/leafnode`.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use edgebus_core::leaf::{needs_tls, Attempt, LeafConnect, LeafInfo, LeafOp, LeafUrl, Remotes, Scheme, Solicitor};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::conn::{self, Role};
use super::options::{RemoteOptions, DEFAULT_RECONNECT, MAX_RECONNECT};
use crate::server::Shared;
use crate::tls;
use crate::transport::{self, Reader, Writer};
use crate::ws;

/// How long one dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps `remote` connected until `stop` turns true (a reload removed it) or the server ends.
pub(super) async fn run_remote(shared: Arc<Shared>, remote: RemoteOptions, mut stop: watch::Receiver<bool>) {
    let name = remote.name();
    let account_name = remote.account.clone().unwrap_or_else(|| "$G".into());
    let Some(account) = shared.accounts.named(&account_name).cloned() else {
        warn!("leafnode remote: account {account_name:?} not found; not connecting");
        return;
    };
    let urls: Vec<LeafUrl> = remote.urls.iter().filter_map(|u| LeafUrl::parse(u).ok()).collect();
    let reconnect = shared.opts.leafnodes.reconnect.unwrap_or(DEFAULT_RECONNECT);
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    let mut remotes = Remotes::new(urls, ms(reconnect), ms(MAX_RECONNECT.max(reconnect)));
    while !*stop.borrow() {
        let url = match remotes.next_attempt(fastrand::f64()) {
            Attempt::Dial(url) => url,
            Attempt::Wait(ms) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(u64::from(ms))) => {}
                    // a dropped sender is the server going away
                    r = stop.wait_for(|s| *s) => if r.is_err() { return },
                }
                continue;
            }
        };
        let target = format!("{}:{}", url.host, url.port);
        let stream = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(&target)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                debug!("leafnode remote {target}: {e}");
                continue;
            }
            Err(_) => {
                debug!("leafnode remote {target}: dial timed out");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let addr = stream.peer_addr().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
        // the remote's TLS configuration as it is now: a reload may have changed its files
        let connector = shared.certs().remote(&name);
        let (r, w, opening) = match open(&shared, stream, &url, &remote, connector.as_ref()).await {
            Ok(opened) => opened,
            Err(why) => {
                warn!("leafnode connection to {target} failed: {why}");
                continue;
            }
        };
        // credentials in the URL win over the remote's fields, as in nats-server
        let (user, pass, token) = match (&url.user, &url.pass) {
            (Some(u), Some(p)) => (Some(u.clone()), Some(p.clone()), None),
            (Some(t), None) => (None, None, Some(t.clone())),
            _ => (remote.user.clone(), remote.pass.clone(), remote.token.clone()),
        };
        let connect = LeafConnect {
            version: edgebus_core::NATS_VERSION.into(),
            server_id: shared.server_id.clone(),
            name: shared.server_name.clone(),
            // nats-server sends its cluster name, or its server name without a cluster: the
            // hub marks our interest with it as its origin, which makes the cluster prefer
            // its own queue members and never send a message back to where it came from
            cluster: shared.server_name.clone(),
            headers: true,
            user,
            pass,
            auth_token: token,
            jwt: remote.creds.as_ref().map(|c| c.jwt.clone()),
            nkey: remote.seed.as_deref().and_then(crate::auth::nkey::public_key),
            remote_account: account.name.clone(),
            protocol: 1,
            ..Default::default()
        };
        let seed = remote.creds.as_ref().map(|c| c.seed.clone()).or_else(|| remote.seed.clone());
        let role = Role::Solicit {
            solicitor: Box::new(Solicitor::new(connect)),
            remotes: &mut remotes,
            opening,
            seed,
            stop: stop.clone(),
        };
        let ended = conn::run(shared.clone(), r, w, addr, role, account.clone()).await;
        if ended.ready {
            remotes.connected();
            warn!("leafnode connection to {target} closed: {}", ended.reason);
        } else {
            warn!("leafnode connection to {target} failed: {}", ended.reason);
        }
    }
}

/// The hub's first `INFO` (its JSON) and whatever followed it.
type Opening = Option<(Bytes, BytesMut)>;

/// Opens a dialled connection: TLS first, or the hub's plaintext `INFO` then TLS when either
/// side asks for it, or plain TCP.
async fn open(
    shared: &Shared,
    mut stream: TcpStream,
    url: &LeafUrl,
    remote: &RemoteOptions,
    connector: Option<&tls::Loaded<rustls::ClientConfig>>,
) -> Result<(Reader, Writer, Opening), String> {
    let tls = remote.tls.as_ref().zip(connector);
    if matches!(url.scheme, Scheme::Ws | Scheme::Wss) {
        // TLS (wss) comes before the upgrade; the hub's INFO then comes in a frame
        let host = format!("{}:{}", url.host, url.port);
        let peer = stream.peer_addr().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
        let upgrade_error = |e: std::io::Error| format!("websocket upgrade: {e}");
        let (r, w) = match tls {
            Some((t, config)) => {
                let mut s = tls::connect(stream, config, &url.host, t.timeout)
                    .await
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                let (first, compress) =
                    ws::dial::leaf_upgrade(&mut s, &host, remote.ws_compression).await.map_err(upgrade_error)?;
                transport::dialled_ws(s, first, peer, compress)
            }
            None => {
                let (first, compress) =
                    ws::dial::leaf_upgrade(&mut stream, &host, remote.ws_compression).await.map_err(upgrade_error)?;
                transport::dialled_ws(stream, first, peer, compress)
            }
        };
        return Ok((r, w, None));
    }
    if let Some((t, config)) = tls.filter(|(t, _)| t.handshake_first) {
        let s = tls::connect(stream, config, &url.host, t.timeout).await.map_err(|e| format!("TLS handshake: {e}"))?;
        let (r, w) = transport::tls_halves(s.into());
        return Ok((r, w, None));
    }
    let (info, rest) = first_info(shared, &mut stream).await?;
    let hub: LeafInfo = serde_json::from_slice(&info).map_err(|_| "Invalid Leafnode INFO".to_string())?;
    if !needs_tls(&hub, tls.is_some()) {
        let (r, w) = stream.into_split();
        return Ok((Reader::Tcp(r), Writer::Tcp(w), Some((info, rest))));
    }
    let Some((t, config)) = tls else {
        return Err("the hub requires TLS: the remote needs tls { ca_file } to verify it".into());
    };
    if !rest.is_empty() {
        return Err("the hub sent plaintext after its INFO where the TLS handshake belongs".into());
    }
    let s = tls::connect(stream, config, &url.host, t.timeout).await.map_err(|e| format!("TLS handshake: {e}"))?;
    let (r, w) = transport::tls_halves(s.into());
    Ok((r, w, Some((info, BytesMut::new()))))
}

/// Reads the hub's first operation, which must be its `INFO`, within the handshake time.
async fn first_info(shared: &Shared, stream: &mut TcpStream) -> Result<(Bytes, BytesMut), String> {
    let mut parser = conn::parser(shared);
    let read = async {
        loop {
            match parser.poll_op() {
                Ok(Some(LeafOp::Info(json))) => return Ok(json),
                Ok(Some(_)) => return Err("the hub did not start with INFO".to_string()),
                Ok(None) => {}
                Err(e) => return Err(format!("parse error: {e:?}")),
            }
            match stream.read_buf(parser.buffer_mut()).await {
                Ok(0) => return Err("closed before INFO".into()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let info = tokio::time::timeout(conn::HANDSHAKE_TIMEOUT, read)
        .await
        .map_err(|_| "Stale Leaf Node Connection - Closing".to_string())??;
    let rest = parser.buffer_mut().split();
    Ok((info, rest))
}
