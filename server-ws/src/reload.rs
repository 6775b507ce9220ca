//! Configuration reload (`SIGHUP`, `--signal reload`): what nats-server 2.14 reloads, among
//! the options edgebus has.
//!
//! - The `authorization` block — users, passwords, tokens, nkeys, permissions. After a
//!   reload every connected client is checked again with the credentials of its `CONNECT`:
//!   a client the new configuration would refuse is closed with `Authorization Violation`,
//!   as nats-server closes it; so is one whose account or permissions changed (nats-server
//!   swaps permissions in place; edgebus closes the client so it reconnects under the new
//!   ones — never a moment of the old rules).
//! - TLS certificates: the certificate, key and CA files of the client port, the WebSocket
//!   port, the leaf port and the leaf remotes are read again, and connections opened from
//!   then on use them (those already up keep theirs). Other TLS settings (`verify`,
//!   `timeout`, …) cannot change.
//! - Limits (`crate::limits`): `max_payload` and `max_control_line` for new connections and
//!   those already up, `max_connections` (clients over a lower one are closed),
//!   `ping_interval`, `ping_max`, `write_deadline`. `max_pending` and `max_subscriptions`
//!   cannot change, as in nats-server.
//! - Logging: `debug` / `trace` (`crate::log_level`) and `log_file` (`crate::log_sink`; a
//!   `-l` on the command line still wins over the file, as at start-up).
//! - Leaf remotes (`crate::leaf::remotes`): added ones are dialled, removed ones
//!   disconnected; a kept remote changed other than in its TLS files, and the leaf port's
//!   own settings, cannot change.
//!
//! Any other change refuses the reload as a whole, naming the options, and the server keeps
//! running on what it has: a refused reload applies nothing.

use std::sync::Arc;

use edgebus_core::policy::permissions::PermissionsConfig;
use edgebus_core::policy::Admission;
use edgebus_core::proto::{ConnectOptions, ProtocolError};
use tracing::{info, warn};

use crate::auth::certmap::CertNames;
use crate::auth::Authenticator;
use crate::cli::{self, Command};
use crate::client::Client;
use crate::leaf::remotes;
use crate::log_level::LogLevel;
use crate::log_sink::LogSink;
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
        debug => "debug", trace => "trace",
    );
    names.extend(leafnodes(old, new));
    if names.is_empty() && old != new {
        names.push("options");
    }
    names
}

/// The `leafnodes` changes by name: the port's settings (`leafnodes`, or `leafnodes tls`
/// when only its TLS differs), remotes added or removed (`leafnodes remotes`), and a kept
/// remote changed in place (`leafnodes remote <name>`).
fn leafnodes(old: &Options, new: &Options) -> Vec<&'static str> {
    let (mut port_old, mut port_new) = (old.leafnodes.clone(), new.leafnodes.clone());
    let (remotes_old, remotes_new) = (std::mem::take(&mut port_old.remotes), std::mem::take(&mut port_new.remotes));
    let mut names = Vec::new();
    if port_old != port_new {
        port_old.tls = port_new.tls.clone();
        names.push(if port_old == port_new { "leafnodes tls" } else { "leafnodes" });
    }
    if remotes::added_or_removed(&remotes_old, &remotes_new) {
        names.push("leafnodes remotes");
    }
    if !remotes::changed_in_place(&remotes_old, &remotes_new).is_empty() {
        names.push("leafnodes remote");
    }
    names
}

/// Re-reads the configuration the server was started with (the same command line), applies
/// what it can, and updates `running` to what now runs. Reading it loads the TLS files
/// again, so one that is now unreadable or invalid refuses the reload before anything
/// changes.
pub async fn reload(
    shared: &Arc<Shared>,
    args: &[String],
    running: &mut Options,
    log: &LogLevel,
    sink: &LogSink,
) -> Result<(), ReloadError> {
    let (new, log_file) = match cli::parse(args.iter().cloned()) {
        Ok(Command::Run(cli)) => (cli.options, cli.log_file),
        Ok(_) => return Err(ReloadError("the command line does not start a server".into())),
        Err(e) => return Err(ReloadError(e.to_string())),
    };
    let same_certs = with_certs_of(&new, running);
    let names = changed(running, &same_certs);
    let fixed: Vec<&str> = names.iter().copied().filter(|n| !RELOADABLE.contains(n)).collect();
    if !fixed.is_empty() {
        let mut why = fixed.join(", ");
        if fixed.contains(&"leafnodes remote") {
            let kept = remotes::changed_in_place(&running.leafnodes.remotes, &same_certs.leafnodes.remotes);
            why = format!("{why} ({}: only its TLS files can change)", kept.join("; "));
        }
        return Err(ReloadError(format!("config reload not supported for {why}")));
    }
    let authorization = match names.contains(&"authorization") {
        true => Some(authenticators(&new)?),
        false => None,
    };
    // the last check that can refuse: a new log file that cannot be opened changes nothing
    if log_file != sink.path() {
        let shown = log_file.as_deref().map_or("standard error".into(), |p| p.display().to_string());
        sink.switch(log_file.as_deref()).map_err(|e| ReloadError(format!("cannot open log file {shown}: {e}")))?;
        info!("Reloaded: log_file = {shown}");
    }
    if new.debug != running.debug || new.trace != running.trace {
        match log.set(new.debug, new.trace) {
            Ok(()) => info!("Reloaded: debug = {}, trace = {}", new.debug, new.trace),
            Err(e) => warn!("debug/trace not reloaded: {e}"),
        }
    }
    for notice in shared.limits.set(&new) {
        info!("Reloaded: {notice}");
    }
    if new.max_connections != running.max_connections {
        let closed = enforce_max_connections(shared, new.max_connections);
        if closed > 0 {
            info!("Closed {closed} connections to fall within max_connections");
        }
    }
    let remotes_change = names.contains(&"leafnodes remotes");
    if same_certs != new {
        info!("Reloaded: TLS certificates (for new connections)");
    }
    // an added remote's TLS configuration is among the new ones
    if same_certs != new || remotes_change {
        shared.replace_certs(Certs::of(&new));
    }
    if remotes_change {
        remotes::reload(shared, &running.leafnodes.remotes, &new.leafnodes.remotes);
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

/// What a reload applies besides the TLS files (which `with_certs_of` sets aside): the
/// options nats-server 2.14 reloads and edgebus has. `max_pending` and `max_subscriptions`
/// are not among them there either.
const RELOADABLE: &[&str] = &[
    "authorization",
    "max_payload",
    "max_control_line",
    "max_connections",
    "ping_interval",
    "ping_max",
    "write_deadline",
    "debug",
    "trace",
    "leafnodes remotes",
];

/// Closes clients until no more than `max` remain, as nats-server does when a reload lowers
/// `max_connections` (which ones is arbitrary there too). Returns how many were closed.
fn enforce_max_connections(shared: &Shared, max: i32) -> usize {
    let clients: Vec<Arc<Client>> = shared.clients.lock().values().cloned().collect();
    let excess = clients.len().saturating_sub(usize::try_from(max.max(0)).unwrap_or(0));
    for c in clients.iter().take(excess) {
        c.close(Some(ProtocolError::MaxConnections));
    }
    excess
}

/// `new` with the certificate, key and CA files (and what was loaded from them) of
/// `running`, in every TLS block present in both: what still differs from `running` is
/// what the reload changes besides the certificates.
fn with_certs_of(new: &Options, running: &Options) -> Options {
    let mut o = new.clone();
    tls::copy_files(&mut o.tls, &running.tls);
    tls::copy_files(&mut o.websocket.tls, &running.websocket.tls);
    tls::copy_files(&mut o.leafnodes.tls, &running.leafnodes.tls);
    for n in o.leafnodes.remotes.iter_mut() {
        let kept = running.leafnodes.remotes.iter().find(|r| r.name() == n.name());
        if let Some((nt, r)) = n.tls.as_mut().zip(kept) {
            if let Some(rt) = r.tls.as_ref() {
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
        assert!(changed(&old, &new).iter().all(|n| RELOADABLE.contains(n)));
        new.max_pending = 1;
        assert!(changed(&old, &new).contains(&"max_pending") && !RELOADABLE.contains(&"max_pending"));
        let mut only_warnings = old.clone();
        only_warnings.warnings.push("x".into());
        assert_eq!(changed(&old, &only_warnings), ["options"]);
    }
}
