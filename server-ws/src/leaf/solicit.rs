//! Dialling one remote: its URLs and the hub's gossiped ones in turn (the core's
//! [`Remotes`]), a link per connection, and the core's backoff between rounds that reached
//! nobody. Interest is announced afresh on every connection.

use std::sync::Arc;
use std::time::Duration;

use edgebus_core::leaf::{Attempt, LeafConnect, LeafUrl, Remotes, Solicitor};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::conn::{self, Role};
use super::options::{DEFAULT_RECONNECT, MAX_RECONNECT};
use crate::server::Shared;
use crate::transport::{Reader, Writer};

/// How long one dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps remote `index` of `leafnodes.remotes` connected for as long as the server runs.
pub async fn run_remote(shared: Arc<Shared>, index: usize) {
    let Some(remote) = shared.opts.leafnodes.remotes.get(index).cloned() else {
        return;
    };
    let account_name = remote.account.clone().unwrap_or_else(|| "$G".into());
    let Some(account) = shared.accounts.named(&account_name).cloned() else {
        warn!("leafnode remote: account {account_name:?} not found; not connecting");
        return;
    };
    let urls: Vec<LeafUrl> = remote.urls.iter().filter_map(|u| LeafUrl::parse(u).ok()).collect();
    let reconnect = shared.opts.leafnodes.reconnect.unwrap_or(DEFAULT_RECONNECT);
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    let mut remotes = Remotes::new(urls, ms(reconnect), ms(MAX_RECONNECT.max(reconnect)));
    loop {
        let url = match remotes.next_attempt(fastrand::f64()) {
            Attempt::Dial(url) => url,
            Attempt::Wait(ms) => {
                tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
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
        let (r, w) = stream.into_split();
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
            remote_account: account.name.clone(),
            protocol: 1,
            ..Default::default()
        };
        let role = Role::Solicit { solicitor: Box::new(Solicitor::new(connect)), remotes: &mut remotes };
        let ended = conn::run(shared.clone(), Reader::Tcp(r), Writer::Tcp(w), addr, role, account.clone()).await;
        if ended.ready {
            remotes.connected();
            warn!("leafnode connection to {target} closed: {}", ended.reason);
        } else {
            warn!("leafnode connection to {target} failed: {}", ended.reason);
        }
    }
}
