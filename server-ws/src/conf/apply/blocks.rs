//! The nested blocks of a configuration file: `authorization` (single user, token or a
//! `users` list, and its timeout), `websocket` and `jetstream`, each with the keys
//! nats-server defines there that edgebus does not implement, so they are reported as
//! unsupported rather than as typos.

use std::path::PathBuf;
use std::time::Duration;

use super::super::error::ConfError;
use super::super::value::{Entry, Value, ValueKind};
use super::permissions::permissions;
use super::values::*;
use super::{refused, unknown, unsupported};
use crate::options::{self, Authorization, NkeyUser, Options, User};
use crate::ws::origin::AllowedOrigin;

/// Keys of the `authorization` block that edgebus refuses (see `REFUSED_TOP`).
const REFUSED_AUTH: &[&str] = &["auth_callout", "auth_hook", "proxy_required"];

/// Keys of a `users` entry that edgebus refuses: each restricts or authenticates the user in
/// a way edgebus does not implement (connection types, proxies).
const REFUSED_USER: &[&str] = &["allowed_connection_types", "clients", "connection_types", "proxy_required"];

/// Keys of the `websocket` block that are harmless to ignore.
/// (`advertise` only reaches clients through a cluster's gossip of `ws_connect_urls`, which
/// a single server does not have.)
const UNSUPPORTED_WS: &[&str] = &["advertise"];

/// Keys of the `websocket` block that ask for authentication edgebus does not implement
/// (JWTs or credentials from cookies; `authorization` and `no_auth_user` are implemented).
const REFUSED_WS: &[&str] = &["authentication", "jwt_cookie", "pass_cookie", "token_cookie", "user_cookie"];

/// Keys of the `jetstream` block that are harmless to ignore on a single server (placement
/// and cluster catch-up tuning).
const UNSUPPORTED_JS: &[&str] =
    &["extension_hint", "max_catchup", "max_ha_assets", "max_outstanding_catchup", "strict", "unique_tag"];

/// Keys of the `jetstream` block that ask for encryption at rest, or for limits on what
/// clients may hold or ask for (`limits { max_ack_pending, max_request_batch, … }`): ignoring
/// them would serve more than was allowed, so the server refuses to start.
const REFUSED_JS: &[&str] = &[
    "cipher",
    "ek",
    "encryption_key",
    "key",
    "limits",
    "max_ack_pending",
    "max_buffered_msgs",
    "max_buffered_size",
    "max_request_batch",
    "prev_encryption_key",
    "prev_key",
    "request_queue_limit",
    "tpm",
];

pub(super) fn authorization(e: &Entry, opts: &mut Options) -> Result<(), ConfError> {
    let mut user = None;
    let mut pass = None;
    let mut token = None;
    let mut users = None;
    let mut timeout = None;
    let mut defaults = None;
    for ae in map(e)? {
        match ae.key.to_ascii_lowercase().as_str() {
            "user" | "username" => user = Some(string(ae)?.to_string()),
            "pass" | "password" => pass = Some(string(ae)?.to_string()),
            "token" => token = Some(string(ae)?.to_string()),
            "timeout" => timeout = Some(auth_timeout(ae)?),
            "users" => users = Some(parse_users(ae, opts)?),
            "default_permission" | "default_permissions" | "permissions" => defaults = Some((ae, permissions(ae)?)),
            k if REFUSED_AUTH.contains(&k) => return Err(refused(ae, "authorization")),
            _ => unknown(ae, "authorization", opts),
        }
    }
    let at = |message: &str| ConfError::value(&e.key_pos, &e.key, message);
    if (user.is_some() || pass.is_some()) && token.is_some() {
        return Err(at("Cannot have a user/pass and token"));
    }
    if users.is_some() && user.is_some() {
        return Err(at("Can not have a single user/pass and a users array"));
    }
    if users.is_some() && token.is_some() {
        return Err(at("Can not have a token and a users array"));
    }
    let (mut all, mut nkeys): (Vec<User>, Vec<NkeyUser>) = users.unwrap_or_default();
    if let Some((at, defaults)) = defaults {
        // nats-server applies them to the users list only; a token or single user would
        // silently run without them there, so edgebus refuses instead.
        if all.is_empty() && nkeys.is_empty() {
            return Err(ConfError::value(
                &at.key_pos,
                &at.key,
                "permissions apply to the users of a `users` list; with a token or a single user they \
                 would be ignored: refusing to start",
            ));
        }
        for u in all.iter_mut().filter(|u| u.permissions.is_none()) {
            u.permissions = Some(defaults.clone());
        }
        for u in nkeys.iter_mut().filter(|u| u.permissions.is_none()) {
            u.permissions = Some(defaults.clone());
        }
    }
    let single_user = user.is_some();
    match (user, pass) {
        (Some(username), pass) => all.push(User::new(username, pass.unwrap_or_default())),
        (None, Some(_)) => {
            opts.warnings.push(format!("{}: authorization has a password but no user (ignored)", e.key_pos))
        }
        (None, None) => {}
    }
    // the users of `accounts { … }`, when that block came first, stay
    all.extend(opts.authorization.users.drain(..).filter(|u| u.account.is_some()));
    nkeys.extend(opts.authorization.nkeys.drain(..).filter(|u| u.account.is_some()));
    opts.authorization = Authorization {
        token,
        users: all,
        nkeys,
        timeout: timeout.filter(|t| !t.is_zero()).unwrap_or(options::AUTH_TIMEOUT),
        no_auth_user: opts.authorization.no_auth_user.take(),
        single_user,
    };
    Ok(())
}

/// `timeout` in seconds, integer or fractional (nats-server's form); a Go duration string
/// is accepted too.
pub(super) fn auth_timeout(e: &Entry) -> Result<Duration, ConfError> {
    let secs = match &e.value.kind {
        ValueKind::Integer(n) => *n as f64,
        ValueKind::Float(f) => *f,
        ValueKind::String(s) => {
            return parse_go_duration(s).map_err(|why| invalid(e, format!("error parsing timeout: {why}")))
        }
        _ => return Err(type_error(e, "a number of seconds")),
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| invalid(e, format!("invalid timeout {secs}: expected a non-negative number of seconds")))
}

/// A `users` list: user/password entries and nkey entries (`{ nkey: "U…" }`), which
/// nats-server keeps apart.
pub(super) fn parse_users(e: &Entry, opts: &mut Options) -> Result<(Vec<User>, Vec<NkeyUser>), ConfError> {
    let ValueKind::Array(items) = &e.value.kind else {
        return Err(type_error(e, "an array of users"));
    };
    let mut users = Vec::with_capacity(items.len());
    let mut nkeys = Vec::new();
    for item in items {
        let ValueKind::Map(fields) = &item.kind else {
            return Err(ConfError::value(
                &item.pos,
                &e.key,
                format!("expected user entry to be a map, got {}", item.type_name()),
            ));
        };
        let mut username = None;
        let mut password = None;
        let mut perms = None;
        let mut account = None;
        let mut nkey = None;
        for f in fields {
            match f.key.to_ascii_lowercase().as_str() {
                "nkey" => nkey = Some((f, string(f)?.to_string())),
                "user" | "username" => username = Some(string(f)?.to_string()),
                "pass" | "password" => password = Some(string(f)?.to_string()),
                "permission" | "permissions" | "authorization" => perms = Some(permissions(f)?),
                "account" => account = Some(string(f)?.to_string()),
                k if REFUSED_USER.contains(&k) => return Err(refused(f, "authorization users")),
                _ => unknown(f, "authorization users", opts),
            }
        }
        if let Some((at, nkey)) = nkey {
            // nats-server's checks and words
            if !crate::auth::nkey::is_user_key(&nkey) {
                return Err(invalid(at, "Not a valid public nkey for a user"));
            }
            if username.is_some() || password.is_some() {
                return Err(invalid(at, "Nkey users do not take usernames or passwords"));
            }
            nkeys.push(NkeyUser { nkey, permissions: perms, account });
            continue;
        }
        let username = username.ok_or_else(|| ConfError::value(&item.pos, &e.key, "user entry has no \"user\""))?;
        users.push(User { permissions: perms, account, ..User::new(username, password.unwrap_or_default()) });
    }
    Ok((users, nkeys))
}

pub(super) fn websocket(e: &Entry, opts: &mut Options) -> Result<(), ConfError> {
    for we in map(e)? {
        match we.key.to_ascii_lowercase().as_str() {
            "host" | "net" => opts.websocket.host = string(we)?.to_string(),
            "port" => opts.websocket.port = port(we)?,
            "listen" => {
                let (host, port) = listen(we)?;
                if let Some(host) = host {
                    opts.websocket.host = host;
                }
                opts.websocket.port = port;
            }
            "no_tls" => opts.websocket.no_tls = boolean(we)?,
            "handshake_timeout" => {
                let d = duration(we, &mut opts.warnings)?;
                opts.websocket.handshake_timeout = if d.is_zero() { options::WS_HANDSHAKE_TIMEOUT } else { d };
            }
            "tls" => opts.websocket.tls = super::tls::tls(we, false, "websocket tls")?,
            "same_origin" => opts.websocket.same_origin = boolean(we)?,
            "allowed_origins" | "allowed_origin" | "allow_origins" | "allow_origin" | "origins" | "origin" => {
                opts.websocket.allowed_origins = allowed_origins(we)?
            }
            "authorization" => ws_authorization(we, &mut opts.websocket.auth, &mut opts.warnings)?,
            "no_auth_user" => opts.websocket.auth.no_auth_user = Some(string(we)?.to_string()),
            "headers" => opts.websocket.headers = ws_headers(we)?,
            "compression" | "compress" => opts.websocket.compression = boolean(we)?,
            "ping_interval" => opts.websocket.ping_interval = duration(we, &mut opts.warnings)?,
            k if REFUSED_WS.contains(&k) => return Err(refused(we, "websocket")),
            k if UNSUPPORTED_WS.contains(&k) => unsupported(we, "websocket", opts),
            _ => unknown(we, "websocket", opts),
        }
    }
    Ok(())
}

/// `websocket { headers { name: value } }`: extra headers of the `101` answer (e.g. for a
/// proxy or a browser policy). nats-server refuses the names that would change the handshake
/// itself; a name or value with a line break would split the answer, so that is refused too.
fn ws_headers(e: &Entry) -> Result<Vec<(String, String)>, ConfError> {
    let mut headers = Vec::new();
    for he in map(e)? {
        let value = match &he.value.kind {
            ValueKind::String(v) => v.clone(),
            _ => {
                let kind = he.value.type_name();
                return Err(invalid(he, format!("error parsing header key {}: unsupported type {kind}", he.key)));
            }
        };
        let lower = he.key.to_ascii_lowercase();
        if matches!(lower.as_str(), "host" | "content-length" | "connection" | "upgrade" | "nats-no-masking") {
            return Err(invalid(he, format!("websocket: invalid header {:?} not allowed", he.key)));
        }
        if lower.starts_with("sec-websocket-") {
            return Err(invalid(
                he,
                format!("websocket: invalid header {:?}, \"Sec-WebSocket-\" prefix not allowed", he.key),
            ));
        }
        let token = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if he.key.is_empty() || !he.key.chars().all(token) || value.contains(['\r', '\n']) {
            return Err(invalid(he, format!("websocket: invalid header {:?}", he.key)));
        }
        headers.push((he.key.clone(), value));
    }
    Ok(headers)
}

/// `websocket { authorization { user, password | token, timeout } }`. nats-server refuses any
/// other key there (a `users` list, permissions) as an unknown field, and so does edgebus.
fn ws_authorization(e: &Entry, auth: &mut options::WsAuth, warnings: &mut Vec<String>) -> Result<(), ConfError> {
    let (mut user, mut pass, mut token) = (None, None, None);
    for ae in map(e)? {
        match ae.key.to_ascii_lowercase().as_str() {
            "user" | "username" => user = Some(string(ae)?.to_string()),
            "pass" | "password" => pass = Some(string(ae)?.to_string()),
            "token" => token = Some(string(ae)?.to_string()),
            "timeout" => auth.timeout = Some(auth_timeout(ae)?),
            _ => return Err(ConfError::value(&ae.key_pos, &ae.key, format!("unknown field {:?}", ae.key))),
        }
    }
    if user.is_some() && token.is_some() {
        // nats-server starts and checks only the token: the user would be ignored
        return Err(ConfError::value(&e.key_pos, &e.key, "Cannot have a user/pass and token"));
    }
    if user.is_none() && pass.is_some() {
        warnings.push(format!("{}: websocket authorization has a password but no user (ignored)", e.key_pos));
    }
    auth.password = if user.is_some() { pass.unwrap_or_default() } else { String::new() };
    auth.user = user;
    auth.token = token;
    Ok(())
}

/// `allowed_origins`: one URL or a list, each checked at start as nats-server checks it.
fn allowed_origins(e: &Entry) -> Result<Vec<AllowedOrigin>, ConfError> {
    let one = |v: &Value| match &v.kind {
        ValueKind::String(text) => AllowedOrigin::parse(text).map_err(|m| ConfError::value(&v.pos, &e.key, m)),
        _ => Err(ConfError::value(
            &v.pos,
            &e.key,
            format!("error parsing allowed origins: unsupported type {}", v.type_name()),
        )),
    };
    match &e.value.kind {
        ValueKind::Array(items) => items.iter().map(one).collect(),
        _ => one(&e.value).map(|o| vec![o]),
    }
}

/// `jetstream: true|false|enabled|disabled` or a block, which enables JetStream unless it
/// says `enabled: false`.
pub(super) fn jetstream(e: &Entry, opts: &mut Options, store_dir_set: &mut bool) -> Result<(), ConfError> {
    match &e.value.kind {
        ValueKind::Bool(b) => opts.jetstream.enabled = *b,
        ValueKind::String(s) => {
            opts.jetstream.enabled = match s.to_ascii_lowercase().as_str() {
                "enabled" | "enable" => true,
                "disabled" | "disable" => false,
                _ => return Err(invalid(e, format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"))),
            }
        }
        ValueKind::Map(entries) => {
            let mut enable = true;
            for je in entries {
                match je.key.to_ascii_lowercase().as_str() {
                    "store" | "store_dir" | "storedir" => store_dir(je, opts, store_dir_set)?,
                    "max_memory_store" | "max_mem_store" | "max_mem" => {
                        opts.jetstream.max_memory_store = storage_size(je)?;
                    }
                    "max_file_store" | "max_file" => {
                        opts.jetstream.max_file_store = storage_size(je)?;
                    }
                    "enabled" | "enable" => enable = boolean(je)?,
                    "domain" => {
                        let name = string(je)?;
                        edgebus_core::jetstream::domain::validate(name).map_err(|m| invalid(je, m))?;
                        opts.jetstream.domain = (!name.is_empty()).then(|| name.to_string());
                    }
                    "sync" | "sync_interval" => opts.jetstream.sync_interval = sync_interval(je, &mut opts.warnings)?,
                    // nats-server: fsync every write, as `sync_interval: always`
                    "sync_always" => {
                        if boolean(je)? {
                            opts.jetstream.sync_interval = options::SyncInterval::Always;
                        }
                    }
                    k if REFUSED_JS.contains(&k) => return Err(refused(je, "jetstream")),
                    k if UNSUPPORTED_JS.contains(&k) => unsupported(je, "jetstream", opts),
                    _ => unknown(je, "jetstream", opts),
                }
            }
            opts.jetstream.enabled = enable;
        }
        _ => return Err(type_error(e, "a boolean, \"enabled\", \"disabled\" or a map")),
    }
    Ok(())
}

/// `sync_interval: always` (any case, as nats-server compares it) or a duration; zero means
/// the default, as in nats-server's file store.
pub(super) fn sync_interval(e: &Entry, warnings: &mut Vec<String>) -> Result<options::SyncInterval, ConfError> {
    if let ValueKind::String(s) = &e.value.kind {
        if s.eq_ignore_ascii_case("always") {
            return Ok(options::SyncInterval::Always);
        }
    }
    let d = duration(e, warnings)?;
    Ok(options::SyncInterval::Every(if d.is_zero() { options::SYNC_INTERVAL } else { d }))
}

pub(super) fn store_dir(e: &Entry, opts: &mut Options, store_dir_set: &mut bool) -> Result<(), ConfError> {
    // nats-server accepts the directory at the top level or inside `jetstream {}`, not both.
    if *store_dir_set {
        return Err(invalid(e, "Duplicate 'store_dir' configuration"));
    }
    *store_dir_set = true;
    opts.jetstream.store_dir = Some(PathBuf::from(string(e)?));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::*;
    use super::*;

    #[test]
    fn authorization_block() {
        let o = ok("authorization { token: s3cr3t }");
        assert_eq!(o.authorization.token.as_deref(), Some("s3cr3t"));
        assert!(o.authorization.users.is_empty());
        assert_eq!(o.authorization.timeout, options::AUTH_TIMEOUT);

        let o = ok("authorization { user: derek, pass: \"T0p\", timeout: 1.5 }");
        assert_eq!(o.authorization.users, vec![User::new("derek", "T0p")]);
        assert_eq!(o.authorization.timeout, Duration::from_millis(1500));
        let o = ok("authorization { username: a, password: b, timeout: 3 }");
        assert_eq!(o.authorization.users[0].username, "a");
        assert_eq!(o.authorization.timeout, Duration::from_secs(3));
        assert_eq!(
            ok("authorization { token: t, timeout: \"250ms\" }").authorization.timeout,
            Duration::from_millis(250)
        );

        let o = ok(concat!(
            "authorization {\n  users: [\n    {user: alice, password: $2a$11$hash}\n",
            "    {user: bob, pass: 'b', permissions: {publish: x}}\n  ]\n}\n"
        ));
        let bob_perms = o.authorization.users[1].permissions.clone();
        assert_eq!(bob_perms.and_then(|p| p.publish).and_then(|r| r.allow), Some(vec!["x".to_string()]));
        assert_eq!(
            o.authorization.users,
            vec![
                User::new("alice", "$2a$11$hash"),
                User { permissions: o.authorization.users[1].permissions.clone(), ..User::new("bob", "b") },
            ]
        );
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);

        assert!(err("authorization { user: a, password: b, token: c }").contains("Cannot have a user/pass and token"));
        assert!(err("authorization { user: a, users: [{user: b}] }")
            .contains("Can not have a single user/pass and a users array"));
        assert!(
            err("authorization { token: a, users: [{user: b}] }").contains("Can not have a token and a users array")
        );
        assert!(err("authorization { users: [ x ] }").contains("expected user entry to be a map"));
        assert!(err("authorization { users: [ {password: x} ] }").contains("user entry has no \"user\""));
        assert!(err("authorization { users: {user: a} }").contains("expected an array of users"));
        assert!(err("authorization { users: [{user: a, password: 2}] }")
            .contains("password: expected a string, got an integer"));
        assert!(err("authorization { timeout: -1 }").contains("invalid timeout"));
        assert!(err("authorization: token").contains("authorization: expected a map"));
        assert!(ok("Authorization { TOKEN: x }").authorization.token.is_some());
    }

    #[test]
    fn nkey_users() {
        let (a, b) = (nkeys::KeyPair::new_user().public_key(), nkeys::KeyPair::new_user().public_key());
        let o = ok(&format!(
            "authorization {{ default_permissions: {{ publish: d }}\n users: [ {{ nkey: {a} }}\n \
             {{ nkey: {b}, permissions: {{ publish: x }} }}\n {{ user: u, password: p }} ] }}\nno_auth_user: {a}\n"
        ));
        let n = &o.authorization.nkeys;
        assert_eq!((n.len(), n[0].nkey.as_str(), n[1].nkey.as_str()), (2, a.as_str(), b.as_str()));
        let publish = |p: &Option<edgebus_core::policy::permissions::PermissionsConfig>| {
            p.clone().and_then(|p| p.publish).and_then(|r| r.allow)
        };
        assert_eq!(publish(&n[0].permissions), Some(vec!["d".to_string()]), "default_permissions");
        assert_eq!(publish(&n[1].permissions), Some(vec!["x".to_string()]));
        assert_eq!(o.authorization.users.len(), 1);
        assert!(o.authorization.required());
        let account = nkeys::KeyPair::new_account().public_key();
        assert!(err(&format!("authorization {{ users: [ {{ nkey: {account} }} ] }}"))
            .contains("Not a valid public nkey for a user"));
        assert!(err("authorization { users: [ { nkey: UNOTAKEY } ] }").contains("Not a valid public nkey for a user"));
        assert!(err(&format!("authorization {{ users: [ {{ nkey: {a}, user: x }} ] }}"))
            .contains("Nkey users do not take usernames or passwords"));
    }

    #[test]
    fn websocket_block() {
        let o = ok("websocket { host: 127.0.0.1, port: 8080, no_tls: true }");
        assert_eq!(o.websocket.host, "127.0.0.1");
        assert_eq!(o.websocket.port, 8080);
        assert!(o.websocket.no_tls);
        let o = ok("ws: { listen: \"0.0.0.0:9090\" }");
        assert_eq!((o.websocket.host.as_str(), o.websocket.port), ("0.0.0.0", 9090));
        assert!(!o.websocket.no_tls);
        let o = ok("websocket { net: localhost\n listen: 9091 }");
        assert_eq!((o.websocket.host.as_str(), o.websocket.port), ("localhost", 9091));
        assert!(err("websocket { port: \"x\" }").contains("port: expected an integer"));
        assert!(err("websocket: 8080").contains("websocket: expected a map"));
        let o = ok("websocket { same_origin: true, allowed_origins: [\"https://a.example\", \"http://b:81\"] }");
        assert!(o.websocket.same_origin);
        assert_eq!(o.websocket.allowed_origins.len(), 2);
        assert_eq!(o.websocket.allowed_origins[1].port, "81");
        assert_eq!(ok("ws { origin: \"http://x\" }").websocket.allowed_origins[0].host, "x");
        assert!(err("websocket { allowed_origins: [\"ftp://x\"] }").contains("http or https scheme"));
        assert!(err("websocket { allowed_origins: 5 }").contains("unsupported type"));
        let d = |src: &str| ok(src).websocket.handshake_timeout;
        assert_eq!(d("websocket { handshake_timeout: \"500ms\" }"), Duration::from_millis(500));
        assert_eq!(d("websocket { port: 8080 }"), Duration::from_secs(2));
        let o = ok("websocket { compress: true, ping_interval: \"30s\" }");
        assert!(o.websocket.compression && o.warnings.is_empty());
        assert_eq!(o.websocket.ping_interval, Duration::from_secs(30));
        assert!(!ok("websocket { compression: false }").websocket.compression);
        assert_eq!(ok("websocket { ping_interval: 5 }").websocket.ping_interval, Duration::from_secs(5));
    }

    #[test]
    fn websocket_authorization() {
        let o = ok("websocket { authorization { user: wsu, password: wsp, timeout: 0.5 }, no_auth_user: b }");
        let a = &o.websocket.auth;
        assert_eq!((a.user.as_deref(), a.password.as_str(), a.token.as_deref()), (Some("wsu"), "wsp", None));
        assert_eq!((a.timeout, a.no_auth_user.as_deref()), (Some(Duration::from_millis(500)), Some("b")));
        assert!(a.overrides());
        assert_eq!(ok("ws { authorization { token: t } }").websocket.auth.token.as_deref(), Some("t"));
        assert!(!ok("ws { authorization { timeout: 3 } }").websocket.auth.overrides(), "a timeout alone");
        let o = ok("ws { authorization { password: p } }");
        assert!(!o.websocket.auth.overrides() && o.websocket.auth.password.is_empty());
        assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
        assert!(err("ws { authorization { users: [ {user: a, password: b} ] } }").contains("unknown field \"users\""));
        assert!(err("ws { authorization { user: u, permissions: { publish: x } } }").contains("unknown field"));
        assert!(err("ws { authorization { user: u, token: t } }").contains("Cannot have a user/pass and token"));
        assert!(err("ws { jwt_cookie: jwt }").contains("not supported by edgebus"));
    }

    #[test]
    fn websocket_authorization_replaces_or_keeps_top_level_users() {
        let single = ok("authorization { user: tu, password: tp }\nws { authorization { user: wsu, password: wsp } }");
        assert!(single.authorization.single_user && !single.authorization.has_user_list());
        let ws = single.websocket.auth.authorization(&single.authorization);
        assert_eq!(ws.users, vec![User::new("wsu", "wsp")]);
        assert!(ws.token.is_none() && ws.nkeys.is_empty() && ws.no_auth_user.is_none());

        let listed = ok("authorization { users: [ {user: a, password: pa}, {user: b, password: pb} ] }\n\
             no_auth_user: a\nws { no_auth_user: b, authorization { timeout: 7 } }");
        assert!(listed.authorization.has_user_list());
        let ws = listed.websocket.auth.authorization(&listed.authorization);
        assert_eq!((ws.users.len(), ws.no_auth_user.as_deref()), (2, Some("b")));
        assert_eq!(ws.timeout, Duration::from_secs(7));
        let top = ok("authorization { users: [ {user: a, password: pa} ] }\nno_auth_user: a\nws { }");
        let ws = top.websocket.auth.authorization(&top.authorization);
        assert_eq!(ws, top.authorization, "no override: the top-level authorization");
    }

    #[test]
    fn jetstream_forms() {
        assert!(ok("jetstream: enabled").jetstream.enabled);
        assert!(ok("jetstream: true").jetstream.enabled);
        assert!(ok("jetstream: Enable").jetstream.enabled);
        assert!(!ok("jetstream: false").jetstream.enabled);
        assert!(!ok("jetstream: disabled").jetstream.enabled);
        assert!(err("jetstream: maybe").contains("Expected 'enabled' or 'disabled'"));
        assert!(err("jetstream: 1").contains("jetstream: expected a boolean"));

        let o =
            ok("jetstream {\n  store_dir: /var/lib/edgebus\n  max_memory_store: 1GB\n  max_file_store: \"2G\"\n}\n");
        assert!(o.jetstream.enabled);
        assert_eq!(o.jetstream.store_dir, Some(PathBuf::from("/var/lib/edgebus")));
        assert_eq!(o.jetstream.max_memory_store, 1 << 30);
        assert_eq!(o.jetstream.max_file_store, 2 << 30);
        let o = ok("jetstream { max_mem: 1024, max_file: \"3MB\", enabled: false }");
        assert!(!o.jetstream.enabled);
        assert_eq!(o.jetstream.max_memory_store, 1024);
        assert_eq!(o.jetstream.max_file_store, 3 << 20);
        assert_eq!(ok("jetstream { max_mem_store: 1k }").jetstream.max_memory_store, 1000);
        assert_eq!(ok("jetstream { store: \"/d\" }").jetstream.store_dir, Some(PathBuf::from("/d")));
        let o = ok("store_dir: \"/top\"\njetstream: enabled");
        assert_eq!(o.jetstream.store_dir, Some(PathBuf::from("/top")));
        assert!(err("store_dir: /a\njetstream { store_dir: /b }").contains("Duplicate 'store_dir' configuration"));
        assert!(err("jetstream { max_file: \"12X\" }").contains("sizes defined as strings must end in K, M, G, T"));
        assert!(err("jetstream { max_file: -1 }").contains("cannot be negative"));
        let o = ok("jetstream { domain: hub, bogus: 1, strict: true }");
        assert_eq!(o.warnings.len(), 2, "{:?}", o.warnings);
        assert_eq!(o.jetstream.domain.as_deref(), Some("hub"));
        assert!(err("jetstream { domain: \"a.b\" }").contains("may not contain ., * or >"));
    }

    #[test]
    fn jetstream_sync_interval() {
        use options::SyncInterval;
        assert_eq!(ok("jetstream: enabled").jetstream.sync_interval, SyncInterval::Every(options::SYNC_INTERVAL));
        assert_eq!(ok("jetstream { sync_interval: always }").jetstream.sync_interval, SyncInterval::Always);
        assert_eq!(ok("jetstream { sync: \"ALWAYS\" }").jetstream.sync_interval, SyncInterval::Always);
        let o = ok("jetstream { sync_interval: \"30s\" }");
        assert_eq!(o.jetstream.sync_interval, SyncInterval::Every(Duration::from_secs(30)));
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        let o = ok("jetstream { sync_interval: 45 }");
        assert_eq!(o.jetstream.sync_interval, SyncInterval::Every(Duration::from_secs(45)));
        let o = ok("jetstream { sync_interval: 2m }");
        assert_eq!(o.jetstream.sync_interval, SyncInterval::Every(Duration::from_secs(120)));
        assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
        let o = ok("jetstream { sync_interval: \"0s\" }");
        assert_eq!(o.jetstream.sync_interval, SyncInterval::Every(options::SYNC_INTERVAL));
        assert!(err("jetstream { sync_interval: \"often\" }").contains("error parsing sync_interval"));
        assert!(err("jetstream { sync_interval: true }").contains("expected a duration"));
    }
}
