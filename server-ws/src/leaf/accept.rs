//! The leaf port: leaves (nats-server or edgebus) that dial us. With `tls { … }` the `INFO`
//! goes out in plaintext and the leaf upgrades (or, with `handshake_first`, the handshake
//! comes first), as on the client port and in nats-server.

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

pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let name = shared.opts.leafnodes.account.clone().unwrap_or_else(|| "$G".into());
    let Some(account) = shared.accounts.named(&name).cloned() else {
        warn!("leafnodes authorization: account {name:?} not found; not accepting leaves");
        return;
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let account = account.clone();
                tokio::spawn(async move {
                    let mut greeting = Greeting::new(&shared);
                    let tls = &shared.opts.leafnodes.tls;
                    let (r, w) = match &tls.loaded {
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
