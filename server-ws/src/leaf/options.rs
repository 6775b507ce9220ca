//! `leafnodes { … }`: the remotes this server dials and the leaf port it accepts on.

use std::path::PathBuf;
use std::time::Duration;

use edgebus_core::leaf::{parse_creds, Creds};
use rustls::ClientConfig;

use crate::tls::{Loaded, TlsOptions};

/// The `leafnodes` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafOptions {
    /// The accepting side's listener (`host`/`listen`); empty = the client host.
    pub host: String,
    /// 0 = no leaf port; -1 = a random one.
    pub port: i32,
    /// `authorization { user, password | token | nkey | users }` for leaves that dial us;
    /// with none of them, leaves authenticate as the client port's users (nats-server's
    /// rule), with those users' permissions and accounts.
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// `authorization { nkey }`: the leaf signs our nonce with this public key's seed.
    pub nkey: Option<String>,
    /// `authorization { users: [ { user, password, account } ] }` (nats-server takes no
    /// permissions or nkeys there).
    pub users: Vec<crate::options::User>,
    /// The account accepted leaves live in (`authorization { account }`); default `$G`.
    pub account: Option<String>,
    /// The hubs this server dials.
    pub remotes: Vec<RemoteOptions>,
    /// Wait before dialling again after a round of failures (`reconnect`, default 1 s).
    pub reconnect: Option<Duration>,
    /// `tls { … }` of the leaf port: leaves must upgrade after our `INFO` (or start with the
    /// handshake, with `handshake_first`).
    pub tls: TlsOptions,
    /// `advertise`: the `host:port` our `INFO` gossips to leaves instead of the listener's
    /// (behind a proxy or NAT, a leaf that learnt the listener's address would go around it).
    pub advertise: Option<String>,
    /// `no_advertise`: gossip no address at all; leaves keep to their configured URLs.
    pub no_advertise: bool,
}

impl LeafOptions {
    /// The `leafnode_urls` our `INFO` gossips, given the listener's address.
    pub fn gossiped_urls(&self, listener: String) -> Vec<String> {
        match (&self.advertise, self.no_advertise) {
            (_, true) => Vec::new(),
            (Some(a), false) => vec![a.clone()],
            (None, false) => vec![listener],
        }
    }
}

/// One entry of `remotes`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteOptions {
    /// `url` / `urls`, each parsed by the core ([`edgebus_core::leaf::LeafUrl`]).
    pub urls: Vec<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// The local account the link lives in (`account`, default `$G`).
    pub account: Option<String>,
    /// `tls { … }`, or a `tls://` URL: the link is TLS whatever the hub's `INFO` says.
    pub tls: Option<TlsOptions>,
    /// The client configuration built from `tls` by [`LeafOptions::load`].
    pub connector: Option<Loaded<ClientConfig>>,
    /// `nkey` / `seed`: a user's nkey seed; the `CONNECT` carries its public key and the
    /// hub's nonce signed with it.
    pub seed: Option<String>,
    /// `credentials`: a `.creds` file (user JWT and nkey seed).
    pub credentials: Option<PathBuf>,
    /// What [`LeafOptions::load`] read from `credentials`.
    pub creds: Option<Creds>,
    /// `ws_compression: true`: a `ws://` / `wss://` link offers permessage-deflate.
    pub ws_compression: bool,
}

impl RemoteOptions {
    /// What a reload knows the remote by: its URLs, its local account, and its credentials
    /// file or nkey (nats-server's `RemoteLeafOpts.name()`).
    pub fn name(&self) -> String {
        self.named(self.urls.join(", "))
    }

    /// [`RemoteOptions::name`] without the URLs' credentials, for the log.
    pub fn safe_name(&self) -> String {
        let redact = |u: &String| match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}[REDACTED]{}", &u[..s + 3], &u[at..]),
            _ => u.clone(),
        };
        self.named(self.urls.iter().map(redact).collect::<Vec<_>>().join(", "))
    }

    fn named(&self, urls: String) -> String {
        let account = self.account.as_deref().unwrap_or("$G");
        match (&self.credentials, &self.seed) {
            (Some(c), _) => format!("{urls} ({account}, credentials={})", c.display()),
            (None, Some(seed)) => {
                let public = crate::auth::nkey::public_key(seed).unwrap_or_default();
                format!("{urls} ({account}, nkey={public})")
            }
            (None, None) => format!("{urls} ({account})"),
        }
    }
}

impl LeafOptions {
    /// Whether the leaf port's own `authorization` decides who may dial it (else the client
    /// port's does).
    pub fn own_authorization(&self) -> bool {
        self.user.is_some() || self.token.is_some() || self.nkey.is_some() || !self.users.is_empty()
    }

    /// Reads the TLS files of the leaf port and the TLS and credentials files of every
    /// remote, once, so a setting that cannot be honoured stops the start naming it.
    pub fn load(&mut self) -> Result<(), String> {
        self.tls.load().map_err(|e| format!("leafnodes: {e}"))?;
        for (i, r) in self.remotes.iter_mut().enumerate() {
            if let (Some(t), None) = (&r.tls, &r.connector) {
                let loaded = t.client_config().map_err(|e| format!("leafnodes remote {}: {e}", i + 1))?;
                r.connector = Some(loaded);
            }
            if let (Some(path), None) = (&r.credentials, &r.creds) {
                let bad = |why: String| format!("leafnodes remote {}: credentials {}: {why}", i + 1, path.display());
                let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
                let creds = parse_creds(&text).map_err(|e| bad(e.to_string()))?;
                if !crate::auth::nkey::is_user_seed(&creds.seed) {
                    return Err(bad("the seed is not a user nkey seed".into()));
                }
                r.creds = Some(creds);
            }
        }
        Ok(())
    }
}

/// nats-server's default wait between reconnect rounds.
pub const DEFAULT_RECONNECT: Duration = Duration::from_secs(1);
/// The longest the wait between rounds grows to.
pub const MAX_RECONNECT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::LeafOptions;

    #[test]
    fn the_info_gossips_the_advertised_address_or_none() {
        let listener = || "127.0.0.1:7422".to_string();
        let mut o = LeafOptions::default();
        assert_eq!(o.gossiped_urls(listener()), ["127.0.0.1:7422"]);
        o.advertise = Some("proxy.example:7000".into());
        assert_eq!(o.gossiped_urls(listener()), ["proxy.example:7000"]);
        o.no_advertise = true;
        assert!(o.gossiped_urls(listener()).is_empty());
    }
}
