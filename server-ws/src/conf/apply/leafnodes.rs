//! The `leafnodes` block: the leaf port (`port`, `host`/`listen`, `authorization { user,
//! password | token | nkey | users, account }`, `tls`), the remotes edgebus dials (`remotes:
//! [ { url | urls, user, password, token, credentials, nkey | seed, tls, account } ]`) and
//! `reconnect`. It fails closed like the rest of the configuration: what a remote or the port
//! would need and edgebus cannot do (a bare `jwt`, compression other than off, deny lists,
//! hub mode) stops the start naming the key, since a link without it
//! would be less than was asked for; so does what nats-server 2.14 refuses (`permissions` or
//! `nkey` in the leaf port's `users`). TLS is honoured both ways (`tls { … }` on the port and
//! on a remote, `tls://` URLs), and a remote's `credentials` (a `.creds` file: user JWT, nonce
//! signed with its seed), and `ws://` / `wss://` remotes, with `ws_compression`.

use edgebus_core::leaf::{LeafUrl, Scheme};

use super::super::error::ConfError;
use super::super::value::{Entry, ValueKind};
use super::values::*;
use super::{refused, unknown, unsupported};
use crate::leaf::options::{LeafOptions, RemoteOptions};
use crate::options::{Options, User};
use crate::tls::TlsOptions;

/// Keys of `leafnodes` (and of a remote) that are harmless to ignore (`advertise` and
/// `no_advertise` are read first on `leafnodes` itself; on a remote they mean nothing).
const UNSUPPORTED: &[&str] = &["advertise", "no_advertise", "first_info_timeout", "dont_randomize", "name"];

/// Keys that ask for security or isolation edgebus does not give a leaf link.
const REFUSED: &[&str] = &[
    "jwt",
    "users",
    "deny_imports",
    "deny_exports",
    "hub",
    "isolate_leafnode_interest",
    "ws_no_masking",
    "proxy",
    "disabled",
    // refusing leaves older than a version is admission control edgebus does not do
    "min_version",
];

pub(super) fn leafnodes(e: &Entry, opts: &mut Options) -> Result<(), ConfError> {
    let mut leaf = LeafOptions::default();
    for le in map(e)? {
        match le.key.to_ascii_lowercase().as_str() {
            "port" => leaf.port = port(le)?,
            "host" | "net" => leaf.host = string(le)?.to_string(),
            "listen" => {
                let (host, port) = listen(le)?;
                if let Some(h) = host {
                    leaf.host = h;
                }
                leaf.port = port;
            }
            "authorization" => authorization(le, &mut leaf, opts)?,
            "tls" => leaf.tls = super::tls::tls(le, false, "leafnodes tls")?,
            "remotes" => {
                let ValueKind::Array(items) = &le.value.kind else {
                    return Err(type_error(le, "an array of remotes"));
                };
                for item in items {
                    let entry = Entry {
                        key: "remotes".into(),
                        key_pos: item.pos.clone(),
                        value: item.clone(),
                        used_as_variable: false,
                    };
                    leaf.remotes.push(remote(&entry, opts)?);
                }
            }
            "reconnect" | "reconnect_delay" => leaf.reconnect = Some(duration(le, &mut opts.warnings)?),
            "compression" => compression(le)?,
            "advertise" => leaf.advertise = Some(string(le)?.to_string()),
            "no_advertise" => leaf.no_advertise = boolean(le)?,
            k if REFUSED.contains(&k) => return Err(refused(le, "leafnodes")),
            k if UNSUPPORTED.contains(&k) => unsupported(le, "leafnodes", opts),
            _ => unknown(le, "leafnodes", opts),
        }
    }
    opts.leafnodes = leaf;
    Ok(())
}

/// Only `off` (or `false`): edgebus never speaks S2 on a leaf link.
fn compression(e: &Entry) -> Result<(), ConfError> {
    let off = match &e.value.kind {
        ValueKind::Bool(b) => !*b,
        ValueKind::String(s) => s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("disabled"),
        ValueKind::Map(entries) => entries.iter().all(|m| match (&m.key.to_ascii_lowercase()[..], &m.value.kind) {
            ("mode", ValueKind::String(s)) => s.eq_ignore_ascii_case("off"),
            _ => false,
        }),
        _ => false,
    };
    if off {
        Ok(())
    } else {
        Err(invalid(e, "edgebus leaf links are never compressed: use compression: off (or leave it out)"))
    }
}

fn authorization(e: &Entry, leaf: &mut LeafOptions, opts: &mut Options) -> Result<(), ConfError> {
    for ae in map(e)? {
        match ae.key.to_ascii_lowercase().as_str() {
            "user" | "username" => leaf.user = Some(string(ae)?.to_string()),
            "pass" | "password" => leaf.pass = Some(string(ae)?.to_string()),
            "token" => leaf.token = Some(string(ae)?.to_string()),
            "nkey" => {
                let key = string(ae)?;
                if !crate::auth::nkey::is_user_key(key) {
                    return Err(invalid(ae, "Not a valid public nkey for leafnode authorization"));
                }
                leaf.nkey = Some(key.to_string());
            }
            "users" => leaf.users = users(ae)?,
            "account" => leaf.account = Some(string(ae)?.to_string()),
            "timeout" => {
                duration(ae, &mut opts.warnings)?;
            }
            _ => return Err(refused(ae, "leafnodes authorization")),
        }
    }
    if leaf.users.iter().any(|u| u.username.is_empty()) {
        return Err(invalid(e, "a leafnodes authorization user needs \"user\""));
    }
    if leaf.token.is_some() && (leaf.user.is_some() || leaf.pass.is_some()) {
        return Err(invalid(e, "Cannot have a user/pass and token"));
    }
    Ok(())
}

/// The leaf port's `users`: user, password and account only. nats-server refuses anything
/// else there (`permissions` and `nkey` included: leaves get permissions by authenticating
/// as a user of the client port's `authorization`), and so does edgebus.
fn users(e: &Entry) -> Result<Vec<User>, ConfError> {
    let ValueKind::Array(items) = &e.value.kind else {
        return Err(type_error(e, "an array of users"));
    };
    let mut users = Vec::with_capacity(items.len());
    for item in items {
        let entry =
            Entry { key: "users".into(), key_pos: item.pos.clone(), value: item.clone(), used_as_variable: false };
        let mut user = User::new("", "");
        for f in map(&entry)? {
            match f.key.to_ascii_lowercase().as_str() {
                "user" | "username" => user.username = string(f)?.to_string(),
                "pass" | "password" => user.password = string(f)?.to_string(),
                "account" => user.account = Some(string(f)?.to_string()),
                _ => return Err(refused(f, "leafnodes authorization users")),
            }
        }
        users.push(user);
    }
    Ok(users)
}

fn remote(e: &Entry, opts: &mut Options) -> Result<RemoteOptions, ConfError> {
    let mut r = RemoteOptions::default();
    for re in map(e)? {
        match re.key.to_ascii_lowercase().as_str() {
            "url" => r.urls.push(url(re, string(re)?)?),
            "urls" => {
                let ValueKind::Array(items) = &re.value.kind else {
                    return Err(type_error(re, "an array of URLs"));
                };
                for item in items {
                    let ValueKind::String(s) = &item.kind else {
                        return Err(type_error(re, "an array of URL strings"));
                    };
                    r.urls.push(url(re, s)?);
                }
            }
            "user" | "username" => r.user = Some(string(re)?.to_string()),
            "pass" | "password" => r.pass = Some(string(re)?.to_string()),
            "token" => r.token = Some(string(re)?.to_string()),
            "account" | "local" => r.account = Some(string(re)?.to_string()),
            "compression" => compression(re)?,
            "ws_compression" => r.ws_compression = boolean(re)?,
            "tls" => r.tls = Some(super::tls::tls(re, false, "a leafnodes remote's tls")?),
            "credentials" => r.credentials = Some(string(re)?.into()),
            "nkey" | "seed" => {
                let seed = string(re)?;
                if !crate::auth::nkey::is_user_seed(seed) {
                    return Err(invalid(re, format!("Remote leafnode nkey is not a valid seed: {seed:?}")));
                }
                r.seed = Some(seed.to_string());
            }
            k if REFUSED.contains(&k) => return Err(refused(re, "a leafnodes remote")),
            k if UNSUPPORTED.contains(&k) => unsupported(re, "a leafnodes remote", opts),
            _ => unknown(re, "a leafnodes remote", opts),
        }
    }
    if r.urls.is_empty() {
        return Err(invalid(e, "a leafnodes remote needs url or urls"));
    }
    if r.seed.is_some() && r.credentials.is_some() {
        return Err(invalid(e, "Remote leafnode can not have both creds and nkey defined"));
    }
    // a `tls://` or `wss://` URL asks for TLS as a `tls` block does (and needs its `ca_file`)
    let tls_url = r.urls.iter().any(|u| LeafUrl::parse(u).is_ok_and(|u| matches!(u.scheme, Scheme::Tls | Scheme::Wss)));
    if tls_url && r.tls.is_none() {
        r.tls = Some(TlsOptions { enabled: true, ..TlsOptions::default() });
    }
    Ok(r)
}

/// Every account a leaf link is bound to exists (`$G` always does): a link in a missing
/// account would have nowhere to live.
pub(super) fn validate(opts: &Options) -> Result<(), ConfError> {
    let leaf = &opts.leafnodes;
    let named = leaf
        .remotes
        .iter()
        .filter_map(|r| r.account.as_deref())
        .chain(leaf.account.as_deref())
        .chain(leaf.users.iter().filter_map(|u| u.account.as_deref()));
    for a in named {
        if a != "$G" && !opts.accounts.iter().any(|c| c.name == a) {
            return Err(ConfError::Invalid { message: format!("leafnodes: account {a:?} not found") });
        }
    }
    Ok(())
}

/// A remote URL: plain, TLS, or WebSocket (`ws://`, `wss://`).
fn url(e: &Entry, text: &str) -> Result<String, ConfError> {
    LeafUrl::parse(text).map_err(|err| invalid(e, format!("{text:?}: {err}")))?;
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::{err, ok};

    #[test]
    fn remotes_and_port() {
        let o = ok("leafnodes { port: 7422, authorization { user: a, password: b }, reconnect: \"2s\", \
                    remotes: [ { urls: [\"nats-leaf://u:p@127.0.0.1:7001\", \"127.0.0.1:7002\"], account: A }, \
                    { url: \"nats://h:1\", token: t } ] }");
        let l = &o.leafnodes;
        assert_eq!((l.port, l.user.as_deref(), l.pass.as_deref()), (7422, Some("a"), Some("b")));
        assert_eq!(l.reconnect, Some(std::time::Duration::from_secs(2)));
        assert_eq!(l.remotes.len(), 2);
        assert_eq!(l.remotes[0].urls.len(), 2);
        assert_eq!(l.remotes[0].account.as_deref(), Some("A"));
        assert_eq!(l.remotes[1].token.as_deref(), Some("t"));
        let o = ok("leafnodes { listen: \"127.0.0.1:7500\", compression: off }");
        assert_eq!((o.leafnodes.host.as_str(), o.leafnodes.port), ("127.0.0.1", 7500));
        let o = ok("leafnodes { remotes: [ { url: \"ws://h:1\", ws_compression: true }, { url: \"ws://h:2\" } ] }");
        let ws: Vec<bool> = o.leafnodes.remotes.iter().map(|r| r.ws_compression).collect();
        assert_eq!(ws, [true, false]);
    }

    #[test]
    fn remote_account_must_exist() {
        let o = ok("leafnodes { remotes: [ { url: \"nats://h:1\", account: NOPE } ] }");
        assert_eq!(super::validate(&o).unwrap_err().to_string(), "leafnodes: account \"NOPE\" not found");
        let o = ok("accounts { A: {} }\nleafnodes { remotes: [ { url: \"nats://h:1\", account: A } ] }");
        super::validate(&o).unwrap();
    }

    #[test]
    fn what_cannot_be_honoured_refuses_to_start() {
        for (src, needle) in [
            ("leafnodes { remotes: [ { url: \"nats://h:1\", tls { insecure: true } } ] }", "insecure"),
            ("leafnodes { tls { verify_and_map: true } }", "verify_and_map"),
            ("leafnodes { remotes: [ { url: \"nats://h:1\", seed: \"SU\" } ] }", "not a valid seed"),
            ("leafnodes { remotes: [ { url: \"nats://h:1\", jwt: \"e\" } ] }", "jwt"),
            ("leafnodes { compression: s2_auto }", "never compressed"),
            ("leafnodes { remotes: [ { user: a } ] }", "needs url"),
            ("leafnodes { remotes: [ { url: \"ftp://h\" } ] }", "scheme"),
            ("leafnodes { authorization { users: [ { user: a, permissions: { publish: x } } ] } }", "permissions"),
            ("leafnodes { authorization { users: [ { nkey: UA } ] } }", "nkey"),
            ("leafnodes { authorization { nkey: UA } }", "Not a valid public nkey"),
            ("leafnodes { port: 1, min_version: \"2.8.0\" }", "min_version"),
        ] {
            let e = err(src);
            assert!(e.contains(needle), "{src}: {e}");
        }
    }
}
