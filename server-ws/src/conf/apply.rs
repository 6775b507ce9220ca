//! What the keys of a configuration file mean: mapping a parsed [`Value`] onto [`Options`].
//!
//! Key names, aliases and checks follow nats-server's `server/opts.go`
//! (`processConfigFileLine` and friends), matched case-insensitively as it does. Where
//! nats-server rejects an unknown key, edgebus only warns (into [`Options::warnings`]): an
//! edge server fed a configuration written for a full nats-server should start and say what
//! it ignores. That holds only for what is harmless to ignore. It **fails closed**: a key
//! nats-server knows that asks for security, durability or isolation (accounts,
//! clustering, encryption at rest, WebSocket origin checks, …) and that edgebus does not
//! implement stops the server with an error naming the key and its file:line, since
//! starting without it would serve less than the operator asked for. Harmless keys
//! nats-server knows get their own warning wording so the operator can tell them from typos.
//!
//! This file holds the top-level keys and the checks across them; the readers of one value
//! (types, ranges, ports, durations, sizes) are in `values`, the `authorization`,
//! `websocket` and `jetstream` blocks in `blocks`, the `tls` block in `tls`.

use super::error::ConfError;
use super::value::{Entry, Value, ValueKind};
use crate::options::{self, Options};

mod accounts;
mod blocks;
mod leafnodes;
mod permissions;
mod tls;
mod trust;
mod values;

use blocks::{authorization, jetstream, store_dir, websocket};
use values::*;

/// Top-level nats-server options edgebus does not implement and that are harmless to ignore
/// (logging, clustering hints, tuning): a warning, and the server starts.
const UNSUPPORTED_TOP: &[&str] = &[
    "allow_non_tls",
    "client_advertise",
    "connect_error_reports",
    "default_js_domain",
    "disable_short_first_ping",
    "disable_sublist_cache",
    "http_base_path",
    "log_max_num",
    "log_size_limit",
    "logfile_max_num",
    "logfile_size_limit",
    "logtime",
    "logtime_utc",
    "max_closed_clients",
    "max_traced_msg_len",
    "no_fast_producer_stall",
    "no_header_support",
    "no_sublist_cache",
    "no_sys_acc",
    "no_system",
    "no_system_account",
    "ports_file_dir",
    "prof_port",
    "reconnect_error_reports",
    "remote_syslog",
    "server_tags",
    "syslog",
    "write_timeout",
];

/// Top-level nats-server options that ask for security (accounts, operators, auth
/// callouts), durability (clustering) or isolation (accounts, subject mappings, leaf nodes,
/// limits on what clients may send) and that edgebus does not implement: starting without
/// them would serve something weaker than what was asked for, so the server refuses.
const REFUSED_TOP: &[&str] = &[
    "account_resolver",
    "accounts_resolver",
    "auth_callout",
    "cluster",
    "gateway",
    "https",
    "https_port",
    "leaf",
    "mappings",
    "maps",
    "max_sub_tokens",
    "max_subscription_tokens",
    "mqtt",
    "ocsp",
    "ocsp_cache",
    "resolver_pinned_accounts",
    "resolver_tls",
    "root",
    "roots",
    "system",
    "trusted",
    "trusted_keys",
];

/// Applies a parsed configuration (a map, as [`super::parse_file`] returns) onto `opts`,
/// overwriting what it sets and leaving the rest. Unknown and unsupported keys become
/// warnings; wrong types and out-of-range values are errors naming the key and position.
///
/// `log_file`/`pid_file` (and aliases) are accepted without effect here: [`Options`] has no
/// place for them, the command line reads them off the parsed value.
///
/// Cross-field checks (max_payload ≤ max_pending, …) are [`validate`]'s job, run once the
/// command-line flags are applied too, as nats-server does.
pub fn apply(value: &Value, opts: &mut Options) -> Result<(), ConfError> {
    let ValueKind::Map(entries) = &value.kind else {
        return Err(ConfError::value(
            &value.pos,
            "configuration",
            format!("expected a map of options, got {}", value.type_name()),
        ));
    };
    if entries.is_empty() {
        // nats-server's words; like it, the server still starts
        opts.warnings.push(format!("{}: config has no values or is empty", value.pos.file));
    }
    let mut store_dir_set = false;
    for e in entries {
        apply_top(e, opts, &mut store_dir_set)?;
    }
    Ok(())
}

fn apply_top(e: &Entry, opts: &mut Options, store_dir_set: &mut bool) -> Result<(), ConfError> {
    match e.key.to_ascii_lowercase().as_str() {
        "listen" => {
            let (host, port) = listen(e)?;
            if let Some(host) = host {
                opts.host = host;
            }
            opts.port = client_port(port);
        }
        "host" | "net" => opts.host = string(e)?.to_string(),
        "port" => opts.port = client_port(port(e)?),
        "server_name" => opts.server_name = Some(string(e)?.to_string()),
        "http_port" | "monitor_port" => opts.http_port = port(e)?,
        "http" => {
            let (host, port) = listen(e)?;
            opts.http_host = host;
            opts.http_port = port;
        }
        "http_host" => opts.http_host = Some(string(e)?.to_string()),
        "max_payload" => {
            opts.max_payload = or_default(non_negative_i32(e)?, options::MAX_PAYLOAD);
        }
        "max_pending" => opts.max_pending = or_default(non_negative(e)?, options::MAX_PENDING),
        "max_control_line" => {
            opts.max_control_line = or_default(non_negative_i32(e)?, options::MAX_CONTROL_LINE);
        }
        "max_connections" | "max_conn" => {
            opts.max_connections = or_default(non_negative_i32(e)?, options::MAX_CONNECTIONS);
        }
        "max_subscriptions" | "max_subs" => opts.max_subscriptions = non_negative_i32(e)?,
        "ping_interval" => {
            let d = duration(e, &mut opts.warnings)?;
            opts.ping_interval = if d.is_zero() { options::PING_INTERVAL } else { d };
        }
        "ping_max" => opts.ping_max = or_default(non_negative_i32(e)?, options::PING_MAX),
        "write_deadline" => {
            let d = duration(e, &mut opts.warnings)?;
            opts.write_deadline = if d.is_zero() { options::WRITE_DEADLINE } else { d };
        }
        "lame_duck_duration" => {
            let d = duration(e, &mut opts.warnings)?;
            if d < std::time::Duration::from_secs(30) {
                return Err(invalid(
                    e,
                    format!("invalid lame_duck_duration of {}, minimum is 30 seconds", go_duration(d)),
                ));
            }
            opts.lame_duck_duration = d;
        }
        "lame_duck_grace_period" => opts.lame_duck_grace_period = duration(e, &mut opts.warnings)?,
        "debug" => opts.debug = boolean(e)?,
        "trace" => opts.trace = boolean(e)?,
        // Verbose tracing only adds system-account traffic, which edgebus does not have.
        "trace_verbose" => opts.trace = boolean(e)?,
        "authorization" => authorization(e, opts)?,
        "accounts" => accounts::accounts(e, opts)?,
        "websocket" | "ws" => websocket(e, opts)?,
        "jetstream" => jetstream(e, opts, store_dir_set)?,
        "leafnodes" => leafnodes::leafnodes(e, opts)?,
        "tls" => opts.tls = tls::tls(e, true, "tls")?,
        "store_dir" | "storedir" => store_dir(e, opts, store_dir_set)?,
        "no_auth_user" => opts.authorization.no_auth_user = Some(string(e)?.to_string()),
        // Read by the command line (see the doc comment of `apply`); only checked here.
        "log_file" | "logfile" | "pid_file" | "pidfile" => {
            string(e)?;
        }
        k if trust::KEYS.contains(&k) => trust::entry(e, opts)?,
        k if REFUSED_TOP.contains(&k) => return Err(refused(e, "")),
        k if UNSUPPORTED_TOP.contains(&k) => unsupported(e, "", opts),
        _ => unknown(e, "", opts),
    }
    Ok(())
}

/// Checks the options as a whole, after the file and the flags have been applied.
pub fn validate(opts: &Options) -> Result<(), ConfError> {
    if i64::from(opts.max_payload) > opts.max_pending {
        return Err(ConfError::Invalid {
            message: format!(
                "max_payload ({}) cannot be higher than max_pending ({})",
                opts.max_payload, opts.max_pending
            ),
        });
    }
    for (what, port) in [("port", opts.port), ("http_port", opts.http_port), ("websocket port", opts.websocket.port)] {
        if !(-1..=65535).contains(&port) {
            return Err(ConfError::Invalid {
                message: format!("invalid {what} {port}: use 0-65535, or -1 for a random port"),
            });
        }
    }
    if opts.lame_duck_grace_period >= opts.lame_duck_duration {
        return Err(ConfError::Invalid {
            message: format!(
                "lame duck grace period ({}) should be strictly lower than lame duck duration ({})",
                go_duration(opts.lame_duck_grace_period),
                go_duration(opts.lame_duck_duration)
            ),
        });
    }
    if opts.server_name.as_deref().is_some_and(|n| n.contains(' ')) {
        return Err(ConfError::Invalid { message: "server name cannot contain spaces".into() });
    }
    // nats-server's own refusal: plain ws:// only when asked for with `no_tls: true`.
    if opts.websocket.port != 0 && !opts.websocket.no_tls && !opts.websocket.tls.enabled {
        return Err(ConfError::Invalid { message: "websocket requires TLS configuration".into() });
    }
    validate_accounts(opts)?;
    leafnodes::validate(opts)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    trust::validate(opts, now).map_err(|message| ConfError::Invalid { message })?;
    if let Some(name) = &opts.authorization.no_auth_user {
        check_no_auth_user(opts, name)?;
    }
    validate_websocket_auth(opts)
}

/// nats-server's checks of a `no_auth_user` (top-level or of the `websocket` block): it names
/// a user or nkey of the `users` lists.
fn check_no_auth_user(opts: &Options, name: &str) -> Result<(), ConfError> {
    let (users, nkeys) = (&opts.authorization.users, &opts.authorization.nkeys);
    if users.is_empty() && nkeys.is_empty() {
        return Err(ConfError::Invalid {
            message: format!("no_auth_user: \"{name}\" present, but users/nkeys are not defined"),
        });
    }
    if !users.iter().any(|u| u.username == name) && !nkeys.iter().any(|u| u.nkey == name) {
        return Err(ConfError::Invalid {
            message: format!(
                "no_auth_user: \"{name}\" not present as user or nkey in authorization block or account configuration"
            ),
        });
    }
    Ok(())
}

/// `websocket { authorization, no_auth_user }`, checked as nats-server does when the listener
/// is on (its words); operator mode, where every client presents a JWT, takes none of them.
fn validate_websocket_auth(opts: &Options) -> Result<(), ConfError> {
    let ws = &opts.websocket.auth;
    if opts.websocket.port == 0 {
        return Ok(());
    }
    let fail = |message: &str| Err(ConfError::Invalid { message: message.into() });
    if ws.overrides() && !opts.trust.operators.is_empty() {
        return fail("websocket authorization and no_auth_user are not supported by edgebus in operator mode");
    }
    if let Some(name) = &ws.no_auth_user {
        if !opts.authorization.has_user_list() {
            // a single top-level user is not one nats-server's `no_auth_user` may name
            return Err(ConfError::Invalid {
                message: format!("no_auth_user: \"{name}\" present, but users/nkeys are not defined"),
            });
        }
        check_no_auth_user(opts, name)?;
    }
    if opts.authorization.has_user_list() {
        if ws.user.is_some() {
            return fail("websocket authentication username not compatible with presence of users/nkeys");
        }
        if ws.token.is_some() {
            return fail("websocket authentication token not compatible with presence of users/nkeys");
        }
    }
    Ok(())
}

/// Users name existing accounts, each user name is used once, and server-wide JetStream
/// limits are not asked to bind several accounts' engines together.
fn validate_accounts(opts: &Options) -> Result<(), ConfError> {
    let users = &opts.authorization.users;
    for (i, u) in users.iter().enumerate() {
        if let Some(a) = &u.account {
            if !opts.accounts.iter().any(|c| &c.name == a) {
                return Err(ConfError::Invalid { message: format!("user {:?}: account {a:?} not found", u.username) });
            }
        }
        if users[..i].iter().any(|o| o.username == u.username) {
            return Err(ConfError::Invalid { message: format!("Duplicate user {:?} detected", u.username) });
        }
    }
    for u in &opts.authorization.nkeys {
        if let Some(a) = u.account.as_ref().filter(|a| !opts.accounts.iter().any(|c| &c.name == *a)) {
            return Err(ConfError::Invalid { message: format!("nkey user {:?}: account {a:?} not found", u.nkey) });
        }
    }
    // each account with JetStream runs its own engine, and the server-wide store limits
    // would then bind each engine, not their sum
    let js = &opts.jetstream;
    let engines = opts.accounts.iter().filter(|a| a.jetstream.is_some()).count();
    if engines > 1 && (js.max_memory_store > 0 || js.max_file_store > 0) {
        return Err(ConfError::Invalid {
            message: "max_memory_store / max_file_store with JetStream in more than one account: edgebus does not \
                      share one store limit between accounts; give each account its own limits \
                      (jetstream { max_mem, max_file }) instead: refusing to start"
                .into(),
        });
    }
    Ok(())
}

fn unknown(e: &Entry, block: &str, opts: &mut Options) {
    if !e.used_as_variable {
        let within = if block.is_empty() { String::new() } else { format!(" in {block}") };
        opts.warnings.push(format!("{}: unknown field {:?}{within} (ignored)", e.key_pos, e.key));
    }
}

/// The error for a key that asks for something edgebus does not do and must not ignore.
fn refused(e: &Entry, block: &str) -> ConfError {
    let within = if block.is_empty() { String::new() } else { format!(" in {block}") };
    ConfError::value(
        &e.key_pos,
        &e.key,
        format!(
            "field {:?}{within} is not supported by edgebus, and ignoring it would weaken the security, \
             durability or isolation it asks for: refusing to start",
            e.key
        ),
    )
}

fn unsupported(e: &Entry, block: &str, opts: &mut Options) {
    if !e.used_as_variable {
        let within = if block.is_empty() { String::new() } else { format!(" in {block}") };
        opts.warnings.push(format!("{}: field {:?}{within} is not supported by edgebus (ignored)", e.key_pos, e.key));
    }
}

/// A duration as Go prints it (`10s`, `2m0s`), for messages in nats-server's words.
fn go_duration(d: std::time::Duration) -> String {
    edgebus_core::duration::format(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::conf::parse_str;

    pub(super) fn load(src: &str) -> Result<Options, ConfError> {
        let mut opts = Options::default();
        apply(&parse_str(src, "t.conf")?, &mut opts)?;
        Ok(opts)
    }

    pub(super) fn ok(src: &str) -> Options {
        load(src).unwrap_or_else(|e| panic!("{src:?}: {e}"))
    }

    pub(super) fn err(src: &str) -> String {
        load(src).expect_err(src).to_string()
    }

    #[test]
    fn flags() {
        let o = ok("debug: true\ntrace: on");
        assert!(o.debug && o.trace);
        assert!(ok("trace_verbose: yes").trace);
        assert!(!ok("debug: false").debug);
        assert!(err("debug: 1").contains("debug: expected a boolean, got an integer"));
    }

    #[test]
    fn validation() {
        let o = ok("max_payload: 2MB\nmax_pending: 1MB");
        assert_eq!(
            validate(&o).unwrap_err().to_string(),
            "max_payload (2097152) cannot be higher than max_pending (1048576)"
        );
        validate(&ok("max_payload: 1MB\nmax_pending: 1MB")).unwrap();
        let o = Options { port: 70000, ..Options::default() };
        assert!(validate(&o).unwrap_err().to_string().contains("invalid port 70000"));
        let o = Options { server_name: Some("a b".into()), ..Options::default() };
        assert_eq!(validate(&o).unwrap_err().to_string(), "server name cannot contain spaces");
        validate(&Options::default()).unwrap();
        let users = "authorization { users: [ {user: a, password: b} ] }\n";
        let ws = |block: &str| format!("websocket {{ port: -1, no_tls: true, {block} }}\n");
        let refusal = |src: &str| validate(&ok(src)).unwrap_err().to_string();
        assert_eq!(
            refusal(&format!("{users}{}", ws("authorization { user: u }"))),
            "websocket authentication username not compatible with presence of users/nkeys"
        );
        assert_eq!(
            refusal(&format!("{users}{}", ws("authorization { token: t }"))),
            "websocket authentication token not compatible with presence of users/nkeys"
        );
        assert!(refusal(&format!("{users}{}", ws("no_auth_user: z"))).contains("not present as user or nkey"));
        assert!(refusal(&ws("no_auth_user: a")).contains("users/nkeys are not defined"));
        let single = "authorization { user: a, password: b }\n";
        assert!(refusal(&format!("{single}{}", ws("no_auth_user: a"))).contains("users/nkeys are not defined"));
        validate(&ok(&format!("{single}{}", ws("authorization { user: u, password: p }")))).unwrap();
        validate(&ok(&format!("{users}{}", ws("no_auth_user: a")))).unwrap();
    }

    #[test]
    fn non_map_document_is_an_error() {
        let v = Value::new(ValueKind::Integer(1), crate::conf::Pos { file: "x".into(), line: 1, col: 1 });
        assert!(apply(&v, &mut Options::default()).is_err());
    }

    #[test]
    fn log_and_pid_file_keys_are_accepted_quietly() {
        let o = ok("log_file: /tmp/x.log\npidfile: /tmp/x.pid");
        assert!(o.warnings.is_empty());
        assert!(err("log_file: 3").contains("log_file: expected a string"));
    }
}
