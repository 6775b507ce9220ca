//! Configuration reload (`SIGHUP`, `--signal reload`). What can change without a restart is
//! the `authorization` block — the users, passwords, tokens, nkeys and permissions operators
//! change while clients stay connected — and the TLS certificates: the certificate, key and
//! CA files of the client port, the WebSocket port, the leaf port and the leaf remotes are
//! read again, and connections opened from then on use them (those already up keep theirs),
//! as in nats-server. Other TLS settings (`verify`, `timeout`, …) cannot change. After a reload every connected client is checked
//! again with the credentials of its `CONNECT`: a client the new configuration would refuse
//! is closed with `Authorization Violation`, as nats-server closes it; so is one whose
//! account or permissions changed (nats-server swaps permissions in place; edgebus closes
//! the client so it reconnects under the new ones — never a moment of the old rules). Any
//! other change refuses the reload as a whole, naming the options, and the server keeps
//! running on what it has.

use std::sync::Arc;

use edgebus_core::policy::permissions::PermissionsConfig;
use edgebus_core::policy::Admission;
use edgebus_core::proto::{ConnectOptions, ProtocolError};
use tracing::{info, warn};

use crate::auth::certmap::CertNames;
use crate::auth::Authenticator;
use crate::cli::{self, Command};
use crate::client::Client;
use crate::options::Options;
use crate::server::Shared;
use crate::tls::{self, Certs};

/// Why a reload was refused; logged as nats-server logs it.
#[derive(Debug, PartialEq, Eq)]
pub struct ReloadError(pub String);

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What admitted a client: its `CONNECT` and the connection facts the check used, and what
/// the check gave (the account, the permissions' rules).
pub struct Admitted {
    pub opts: Box<ConnectOptions>,
    pub nonce: String,
    pub cert: Option<Arc<CertNames>>,
    pub account: Option<String>,
    pub rules: Option<PermissionsConfig>,
}

/// The options a reload would change, by configuration name; `Options` fields missing from
/// the list still count, under a generic name.
pub fn changed(old: &Options, new: &Options) -> Vec<&'static str> {
    macro_rules! diff {
        ($($field:ident => $name:literal),* $(,)?) => {{
            let mut names = Vec::new();
            $(if old.$field != new.$field { names.push($name); })*
            names
        }};
    }
    let mut names = diff!(
        host => "host", port => "port", http_port => "http_port", http_host => "http_host",
        max_payload => "max_payload", max_pending => "max_pending",
        max_control_line => "max_control_line", max_connections => "max_connections",
        max_subscriptions => "max_subscriptions", ping_interval => "ping_interval",
        ping_max => "ping_max", write_deadline => "write_deadline",
        lame_duck_duration => "lame_duck_duration", lame_duck_grace_period => "lame_duck_grace_period",
        authorization => "authorization", trust => "operator", websocket => "websocket",
        jetstream => "jetstream", accounts => "accounts", tls => "tls", server_name => "server_name",
        debug => "debug", trace => "trace", leafnodes => "leafnodes",
    );
    // a leaf port whose only change is its TLS files or options is named as such
    let mut leaf = old.leafnodes.clone();
    leaf.tls = new.leafnodes.tls.clone();
    if old.leafnodes != new.leafnodes && leaf == new.leafnodes {
        names.iter_mut().filter(|n| **n == "leafnodes").for_each(|n| *n = "leafnodes tls");
    }
    if names.is_empty() && old != new {
        names.push("options");
    }
    names
}

/// Re-reads the configuration the server was started with (the same command line), applies
/// what it can, and updates `running` to what now runs. Reading it loads the TLS files
/// again, so one that is now unreadable or invalid refuses the reload before anything
/// changes.
pub async fn reload(shared: &Arc<Shared>, args: &[String], running: &mut Options) -> Result<(), ReloadError> {
    let new = match cli::parse(args.iter().cloned()) {
        Ok(Command::Run(cli)) => cli.options,
        Ok(_) => return Err(ReloadError("the command line does not start a server".into())),
        Err(e) => return Err(ReloadError(e.to_string())),
    };
    let same_certs = with_certs_of(&new, running);
    let names = changed(running, &same_certs);
    let fixed: Vec<&str> = names.iter().copied().filter(|n| *n != "authorization").collect();
    if !fixed.is_empty() {
        return Err(ReloadError(format!("config reload not supported for {}", fixed.join(", "))));
    }
    let authorization = if names.is_empty() { None } else { Some(authenticators(&new)?) };
    let certs = same_certs != new;
    if certs {
        shared.replace_certs(Certs::of(&new));
        info!("Reloaded: TLS certificates (for new connections)");
    }
    *running = new;
    if let Some((tcp, ws)) = authorization {
        shared.replace_authenticators(tcp, ws);
        // bcrypt makes each check cost milliseconds: off the async threads
        let sh = shared.clone();
        let closed = tokio::task::spawn_blocking(move || recheck(&sh)).await.unwrap_or(0);
        info!("Reloaded: authorization ({closed} client(s) closed)");
    }
    Ok(())
}

/// `new` with the certificate, key and CA files (and what was loaded from them) of
/// `running`, in every TLS block present in both: what still differs from `running` is
/// what the reload changes besides the certificates.
fn with_certs_of(new: &Options, running: &Options) -> Options {
    let mut o = new.clone();
    tls::copy_files(&mut o.tls, &running.tls);
    tls::copy_files(&mut o.websocket.tls, &running.websocket.tls);
    tls::copy_files(&mut o.leafnodes.tls, &running.leafnodes.tls);
    if o.leafnodes.remotes.len() == running.leafnodes.remotes.len() {
        for (n, r) in o.leafnodes.remotes.iter_mut().zip(&running.leafnodes.remotes) {
            if let (Some(nt), Some(rt)) = (n.tls.as_mut(), r.tls.as_ref()) {
                tls::copy_files(nt, rt);
                n.connector.clone_from(&r.connector);
            }
        }
    }
    o
}

/// The client port's and the WebSocket port's authenticators for `new`.
fn authenticators(new: &Options) -> Result<(Authenticator, Authenticator), ReloadError> {
    let bad = |e: String| ReloadError(format!("authorization: {e}"));
    let tcp = Authenticator::new(&new.authorization)
        .map_err(|e| bad(e.to_string()))?
        .with_trust(&new.trust)
        .map_err(bad)?
        .with_cert_map(new.tls.verify_and_map);
    let ws = Authenticator::new(&new.websocket.auth.authorization(&new.authorization))
        .map_err(|e| bad(e.to_string()))?
        .with_trust(&new.trust)
        .map_err(bad)?;
    Ok((tcp, ws))
}

/// Checks every connected client again with the current authenticators; closes those now
/// refused or now admitted differently. Returns how many were closed.
fn recheck(shared: &Shared) -> usize {
    let mut clients: Vec<Arc<Client>> = shared.clients.lock().values().cloned().collect();
    // leaves admitted as users of the client port's authorization are checked the same way
    clients.extend(shared.leafs.lock().values().map(|l| l.client.clone()));
    let mut closed = 0;
    for c in clients {
        let Some(was) = c.admitted.lock().clone() else { continue };
        let auth = shared.authenticator(c.kind);
        let (admission, account) = auth.authorize_as(&was.opts, &was.nonce, was.cert.as_deref());
        let still = match admission {
            Admission::Refused => false,
            Admission::Admitted(perms) => {
                account.map(str::to_string) == was.account && perms.map(|p| p.rules().clone()) == was.rules
            }
        };
        if !still {
            warn!(cid = c.id, addr = %c.addr, "authorization violation after a reload: closing");
            c.close(Some(ProtocolError::AuthorizationViolation));
            closed += 1;
        }
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_what_it_would_change() {
        let old = Options::default();
        assert!(changed(&old, &old.clone()).is_empty());
        let mut new = old.clone();
        new.max_payload = 10;
        new.authorization.token = Some("t".into());
        assert_eq!(changed(&old, &new), ["max_payload", "authorization"]);
        let mut only_warnings = old.clone();
        only_warnings.warnings.push("x".into());
        assert_eq!(changed(&old, &only_warnings), ["options"]);
    }
}
