//! The leaf port: leaves (nats-server or edgebus) that dial us. With `tls { … }` the `INFO`
//! goes out in plaintext and the leaf upgrades (or, with `handshake_first`, the handshake
//! comes first), as on the client port and in nats-server. Leaves may also dial the
//! WebSocket port at `/leafnode` when a leaf port is configured ([`serve_ws`]).

use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::warn;

use super::conn::{self, Greeting, Role};
use crate::options::Options;
use crate::server::Shared;
use crate::transport::{self, Reader, Writer};

/// Binds the leaf port when `leafnodes { port }` asks for one.
pub async fn bind(opts: &Options) -> std::io::Result<Option<TcpListener>> {
    let leaf = &opts.leafnodes;
    if leaf.port == 0 {
        return Ok(None);
    }
    let host = if leaf.host.is_empty() { opts.host.clone() } else { leaf.host.clone() };
    let port = if leaf.port < 0 { 0 } else { leaf.port };
    let addr = crate::options::resolve(&host, port)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("leafnodes: {e}")))?;
    Ok(Some(TcpListener::bind(addr).await?))
}

/// The account a leaf lives in until its `CONNECT` names another (`authorization { account }`).
fn leaf_account(shared: &Shared) -> Option<Arc<crate::accounts::Account>> {
    let name = shared.opts.leafnodes.account.clone().unwrap_or_else(|| "$G".into());
    let account = shared.accounts.named(&name).cloned();
    if account.is_none() {
        warn!("leafnodes authorization: account {name:?} not found; not accepting leaves");
    }
    account
}

/// A leaf that upgraded a connection to the WebSocket port at `/leafnode`: served like one on
/// the leaf port, over WebSocket frames. Without a leaf port nats-server closes it silently,
/// logging why; so do we.
pub async fn serve_ws(shared: Arc<Shared>, r: Reader, w: Writer, peer: std::net::SocketAddr) {
    if shared.opts.leafnodes.port == 0 {
        tracing::error!(%peer, "Not configured to accept leaf node connections");
        return;
    }
    let Some(account) = leaf_account(&shared) else { return };
    let greeting = Greeting::new(&shared);
    let ended = conn::run(shared, r, w, peer, Role::Accept(greeting), account).await;
    if !ended.ready {
        warn!(%peer, "leafnode connection refused: {}", ended.reason);
    }
}

pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let Some(account) = leaf_account(&shared) else { return };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let account = account.clone();
                tokio::spawn(async move {
                    let mut greeting = Greeting::new(&shared);
                    let tls = &shared.opts.leafnodes.tls;
                    let (r, w) = match &shared.certs().leaf {
                        Some(config) => {
                            let info = greeting.info(&shared);
                            match transport::open_tls(stream, tls, config, &info).await {
                                Ok((r, w, sent, _)) => {
                                    greeting.sent = sent;
                                    (r, w)
                                }
                                Err(e) => {
                                    warn!(%peer, "leafnode TLS handshake error: {e}");
                                    return;
                                }
                            }
                        }
                        None => {
                            let (r, w) = stream.into_split();
                            (Reader::Tcp(r), Writer::Tcp(w))
                        }
                    };
                    let ended = conn::run(shared, r, w, peer, Role::Accept(greeting), account).await;
                    if !ended.ready {
                        warn!(%peer, "leafnode connection refused: {}", ended.reason);
                    }
                });
            }
            Err(e) => {
                warn!("leafnode accept error: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
