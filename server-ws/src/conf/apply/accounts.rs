//! The `accounts { NAME: { users, exports, imports }, … }` block, as nats-server's
//! `parseAccounts` reads it. What an account may hold that edgebus does not implement
//! (nkeys, subject mappings, per-account limits, JetStream inside an account) is refused:
//! ignoring it would weaken the isolation or the limits it asks for.

use edgebus_core::policy::accounts::{Export, SubjectMap, GLOBAL_ACCOUNT};

use super::super::error::{ConfError, Pos};
use super::super::value::{Entry, Value, ValueKind};
use super::blocks::parse_users;
use super::permissions::permissions;
use super::values::*;
use super::{refused, unknown, unsupported};
use crate::accounts::{import_allowed, AccountConfig, AccountJetStream, ExportConfig, ImportConfig, Kind};
use crate::options::{NkeyUser, Options, User};

/// Keys of an account that ask for isolation or limits edgebus does not implement.
const REFUSED_ACCOUNT: &[&str] = &[
    "limits",
    "mappings",
    "maps",
    "max_conn",
    "max_connections",
    "max_leafnodes",
    "max_payload",
    "max_subs",
    "max_subscriptions",
    "nkey",
];

/// Keys of an account's `jetstream { … }` limits that edgebus does not enforce (placement of
/// replicated streams' traffic, which a single server does not have).
const REFUSED_ACCOUNT_JS: &[&str] = &["cluster_traffic"];

/// Keys of an account that are harmless to ignore (message tracing).
const UNSUPPORTED_ACCOUNT: &[&str] = &["msg_trace", "trace_dest"];

/// Keys of an export that edgebus refuses: other response types than `singleton` keep a reply
/// open for several answers, and token positions authorize by subject.
const REFUSED_EXPORT: &[&str] = &["account_token_position"];

/// Keys of an export or import that are harmless to ignore (latency tracking, tracing).
const UNSUPPORTED_EXPORT: &[&str] =
    &["advertise", "allow_trace", "latency", "response_threshold", "share", "threshold"];

/// Reads the block into [`Options::accounts`] and their users into the authorization's user
/// list, then checks every import against the exporter's exports, as nats-server does at start.
pub(super) fn accounts(e: &Entry, opts: &mut Options) -> Result<(), ConfError> {
    let ValueKind::Map(entries) = &e.value.kind else {
        return Err(type_error(e, "a map of accounts"));
    };
    let mut imports_at: Vec<(usize, Vec<Pos>)> = Vec::new();
    for ae in entries {
        let name = ae.key.clone();
        if name == GLOBAL_ACCOUNT || name.starts_with('$') {
            return Err(ConfError::value(
                &ae.key_pos,
                &ae.key,
                format!("account {name:?} is reserved: edgebus has no system account and `$G` is implicit"),
            ));
        }
        if opts.accounts.iter().any(|a| a.name == name) {
            return Err(ConfError::value(&ae.key_pos, &ae.key, format!("duplicate account {name:?}")));
        }
        let Account { config, users, nkeys, imports_at: at } = account(ae, opts)?;
        opts.authorization.users.extend(users);
        opts.authorization.nkeys.extend(nkeys);
        imports_at.push((opts.accounts.len(), at));
        opts.accounts.push(config);
    }
    for (i, at) in imports_at {
        let importer = &opts.accounts[i];
        for (imp, pos) in importer.imports.iter().zip(at) {
            let exporter = opts.accounts.iter().find(|a| a.name == imp.account);
            let Some(exporter) = exporter else {
                return Err(ConfError::value(&pos, &e.key, format!("import from unknown account {:?}", imp.account)));
            };
            if !import_allowed(exporter, &importer.name, imp) {
                let kind = imp.kind.name();
                return Err(ConfError::value(
                    &pos,
                    &e.key,
                    format!("Error adding {kind} import {:?}: {kind} import not authorized", imp.subject),
                ));
            }
        }
    }
    Ok(())
}

/// One account block.
/// What one account block holds.
struct Account {
    config: AccountConfig,
    users: Vec<User>,
    nkeys: Vec<NkeyUser>,
    /// Where each import was written, for errors found once every account is read.
    imports_at: Vec<Pos>,
}

fn account(e: &Entry, opts: &mut Options) -> Result<Account, ConfError> {
    let mut config = AccountConfig { name: e.key.clone(), ..Default::default() };
    let mut users = Vec::new();
    let mut nkeys: Vec<NkeyUser> = Vec::new();
    let mut imports_at = Vec::new();
    let mut defaults = None;
    let block = format!("account {:?}", e.key);
    // `A: {}` and nats-server's shorthand of an account without settings
    let fields: &[Entry] = match &e.value.kind {
        ValueKind::Map(fields) => fields,
        _ => return Err(type_error(e, "a map")),
    };
    for f in fields {
        match f.key.to_ascii_lowercase().as_str() {
            "users" => (users, nkeys) = parse_users(f, opts)?,
            "jetstream" | "js" => config.jetstream = account_jetstream(f, opts)?,
            "default_permission" | "default_permissions" => defaults = Some(permissions(f)?),
            "exports" => {
                for item in array(f)? {
                    config.exports.push(export(f, item, opts)?);
                }
            }
            "imports" => {
                for item in array(f)? {
                    config.imports.push(import(f, item, opts)?);
                    imports_at.push(item.pos.clone());
                }
            }
            k if REFUSED_ACCOUNT.contains(&k) => return Err(refused(f, &block)),
            k if UNSUPPORTED_ACCOUNT.contains(&k) => unsupported(f, &block, opts),
            _ => unknown(f, &block, opts),
        }
    }
    let members = users
        .iter_mut()
        .map(|u| (&mut u.account, &mut u.permissions))
        .chain(nkeys.iter_mut().map(|u| (&mut u.account, &mut u.permissions)));
    for (account, permissions) in members {
        if account.is_some() {
            return Err(ConfError::value(&e.key_pos, &e.key, "a user of an account block cannot name another account"));
        }
        *account = Some(config.name.clone());
        if permissions.is_none() {
            permissions.clone_from(&defaults);
        }
    }
    Ok(Account { config, users, nkeys, imports_at })
}

/// `jetstream: enabled|disabled|true|false` or a map of limits (which enables it), as
/// nats-server's `parseJetStreamForAccount` reads it; a limit edgebus does not enforce is
/// refused.
fn account_jetstream(e: &Entry, opts: &mut Options) -> Result<Option<AccountJetStream>, ConfError> {
    let on = match &e.value.kind {
        ValueKind::Bool(b) => *b,
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => true,
            "disabled" | "disable" => false,
            _ => return Err(invalid(e, format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"))),
        },
        ValueKind::Map(fields) => {
            let mut limits = AccountJetStream::default();
            // nats-server writes -1 for "unlimited"
            let size = |f: &Entry| match &f.value.kind {
                ValueKind::Integer(n) if *n < 0 => Ok(0),
                _ => storage_size(f),
            };
            for f in fields {
                match f.key.to_ascii_lowercase().as_str() {
                    "max_memory" | "max_mem" | "mem" | "memory" => limits.max_memory = size(f)?,
                    "max_store" | "max_file" | "max_disk" | "store" | "disk" => limits.max_file = size(f)?,
                    "max_streams" | "streams" => limits.max_streams = integer(f)?,
                    "max_consumers" | "consumers" => limits.max_consumers = integer(f)?,
                    "max_ack_pending" => limits.max_ack_pending = integer(f)?,
                    "mem_max_stream_bytes" | "memory_max_stream_bytes" => {
                        limits.memory_max_stream_bytes = storage_size(f)?
                    }
                    "disk_max_stream_bytes" | "store_max_stream_bytes" => {
                        limits.store_max_stream_bytes = storage_size(f)?
                    }
                    "max_bytes_required" | "max_stream_bytes" | "max_bytes" => limits.max_bytes_required = boolean(f)?,
                    k if REFUSED_ACCOUNT_JS.contains(&k) => return Err(refused(f, "account jetstream")),
                    _ => unknown(f, "account jetstream", opts),
                }
            }
            return Ok(Some(limits));
        }
        _ => return Err(type_error(e, "a boolean, \"enabled\", \"disabled\" or a map")),
    };
    Ok(on.then(AccountJetStream::default))
}

fn array(e: &Entry) -> Result<&[Value], ConfError> {
    match &e.value.kind {
        ValueKind::Array(items) => Ok(items),
        _ => Err(type_error(e, "an array")),
    }
}

/// The fields of one export or import entry.
fn entry_map<'a>(e: &Entry, item: &'a Value) -> Result<&'a [Entry], ConfError> {
    match &item.kind {
        ValueKind::Map(fields) => Ok(fields),
        _ => Err(ConfError::value(&item.pos, &e.key, format!("expected a map, got {}", item.type_name()))),
    }
}

fn subject_of(f: &Entry) -> Result<String, ConfError> {
    let s = string(f)?;
    edgebus_core::subject::validate_subscribe(s.as_bytes()).map_err(|why| invalid(f, format!("{s:?}: {why}")))?;
    Ok(s.to_string())
}

fn export(e: &Entry, item: &Value, opts: &mut Options) -> Result<ExportConfig, ConfError> {
    let mut kind_subject = None;
    let mut accounts = None;
    for f in entry_map(e, item)? {
        match f.key.to_ascii_lowercase().as_str() {
            "stream" => kind_subject = Some((Kind::Stream, subject_of(f)?)),
            "service" => kind_subject = Some((Kind::Service, subject_of(f)?)),
            "accounts" => {
                let names = array(f)?
                    .iter()
                    .map(|v| match &v.kind {
                        ValueKind::String(s) => Ok(s.clone()),
                        _ => Err(ConfError::value(&v.pos, &f.key, "expected an account name")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                accounts = Some(names);
            }
            "response" | "response_type" => {
                let t = string(f)?;
                if !t.eq_ignore_ascii_case("singleton") {
                    return Err(invalid(
                        f,
                        format!(
                            "response type {t:?} is not supported by edgebus (only \"singleton\"): refusing to start"
                        ),
                    ));
                }
            }
            k if REFUSED_EXPORT.contains(&k) => return Err(refused(f, "exports")),
            k if UNSUPPORTED_EXPORT.contains(&k) => unsupported(f, "exports", opts),
            _ => unknown(f, "exports", opts),
        }
    }
    let (kind, subject) = kind_subject
        .ok_or_else(|| ConfError::value(&item.pos, &e.key, "export needs a \"stream\" or a \"service\" subject"))?;
    Ok(ExportConfig { kind, export: Export { subject, accounts } })
}

fn import(e: &Entry, item: &Value, opts: &mut Options) -> Result<ImportConfig, ConfError> {
    let mut source: Option<(Kind, &Entry)> = None;
    let mut prefix = None;
    let mut to = None;
    for f in entry_map(e, item)? {
        match f.key.to_ascii_lowercase().as_str() {
            "stream" => source = Some((Kind::Stream, f)),
            "service" => source = Some((Kind::Service, f)),
            "prefix" => prefix = Some((f, string(f)?.to_string())),
            "to" => to = Some((f, subject_of(f)?)),
            k if UNSUPPORTED_EXPORT.contains(&k) => unsupported(f, "imports", opts),
            _ => unknown(f, "imports", opts),
        }
    }
    let (kind, src) = source
        .ok_or_else(|| ConfError::value(&item.pos, &e.key, "import needs a \"stream\" or a \"service\" source"))?;
    let mut account = None;
    let mut subject = None;
    for f in map(src)? {
        match f.key.to_ascii_lowercase().as_str() {
            "account" => account = Some(string(f)?.to_string()),
            "subject" => subject = Some(subject_of(f)?),
            _ => unknown(f, "imports", opts),
        }
    }
    let missing = |what: &str| ConfError::value(&src.key_pos, &src.key, format!("import needs {what}"));
    let account = account.ok_or_else(|| missing("an \"account\""))?;
    let subject = subject.ok_or_else(|| missing("a \"subject\""))?;
    let bad = |f: &Entry, why: String| invalid(f, why);
    let map = match (kind, prefix, to) {
        (_, Some((p, _)), Some(_)) => return Err(bad(p, "an import has either a prefix or a \"to\" subject".into())),
        (Kind::Service, Some((p, _)), None) => return Err(bad(p, "a service import has no prefix".into())),
        (Kind::Stream, Some((p, prefix)), None) => {
            SubjectMap::prefixed(&subject, &prefix).map_err(|why| bad(p, why.to_string()))?
        }
        (Kind::Stream, None, Some((t, to))) => SubjectMap::new(&subject, &to).map_err(|why| bad(t, why.to_string()))?,
        // a service import maps the importer's local subject onto the exporter's
        (Kind::Service, None, Some((t, to))) => {
            SubjectMap::new(&to, &subject).map_err(|why| bad(t, why.to_string()))?
        }
        (_, None, None) => SubjectMap::same(&subject).map_err(|why| bad(src, why.to_string()))?,
    };
    Ok(ImportConfig { kind, account, subject, map })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::{err, ok};

    const TWO: &str = r#"
accounts {
  A: {
    users: [ { user: a, password: a } ]
    exports: [ { stream: "pub.>" }, { stream: "priv.>", accounts: [C] }, { service: "svc.>" } ]
  }
  B: {
    users: [ { user: b, password: b } ]
    imports: [
      { stream: { account: A, subject: "pub.>" }, prefix: from_a }
      { service: { account: A, subject: "svc.x" }, to: "local.svc" }
    ]
  }
  C: { users: [ { user: c, password: c } ], imports: [ { stream: { account: A, subject: "priv.x" } } ] }
}
"#;

    #[test]
    fn accounts_users_exports_and_imports() {
        let o = ok(TWO);
        assert_eq!(o.accounts.len(), 3);
        let users: Vec<_> = o.authorization.users.iter().map(|u| (u.username.as_str(), u.account.as_deref())).collect();
        assert_eq!(users, [("a", Some("A")), ("b", Some("B")), ("c", Some("C"))]);
        assert_eq!(o.accounts[1].imports.len(), 2);
        assert_eq!(o.accounts[1].imports[0].map.to(), b"from_a.pub.>");
        assert_eq!(o.accounts[1].imports[1].map.from(), b"local.svc");
    }

    #[test]
    fn refused_and_invalid_accounts() {
        let private = TWO.replace("subject: \"priv.x\"", "subject: \"priv.x\" ").replace("C: {", "D: {");
        assert!(err(&private).contains("stream import \"priv.x\": stream import not authorized"), "{}", err(&private));
        assert!(err("accounts { A: { jetstream: { cluster_traffic: owner } } }").contains("\"cluster_traffic\""));
        assert!(err("accounts { A: { jetstream: maybe } }").contains("Expected 'enabled' or 'disabled'"));
        assert!(err("accounts { A: { mappings: { a: b } } }").contains("\"mappings\""));
        assert!(err("accounts { A: { nkey: UABC } }").contains("\"nkey\""));
        assert!(
            err("accounts { A: { imports: [ { stream: { account: Z, subject: x } } ] } }").contains("unknown account")
        );
        assert!(err("accounts { A: { exports: [ { service: x, response_type: stream } ] } }").contains("singleton"));
        assert!(err("accounts { $SYS: {} }").contains("reserved"));
        assert!(err("accounts { A: { exports: [ { stream: \"a.>\" } ] }, B: { imports: [ { stream: { account: A, subject: \"a.>\" }, prefix: \"p.*\" } ] } }").contains("wildcard"));
        assert!(err("accounts { A: { exports: [ { service: \"a.*\" } ] }, B: { imports: [ { service: { account: A, subject: \"a.*\" }, to: \"b\" } ] } }").contains("wildcards"));
        assert!(err("accounts { A: { exports: [ { stream: \"a.>\" } ] }, B: { imports: [ { service: { account: A, subject: \"a.b\" } } ] } }").contains("service import not authorized"));
    }

    #[test]
    fn users_name_known_accounts_once() {
        use super::super::validate;
        let e = |src: &str| validate(&ok(src)).unwrap_err().to_string();
        assert!(
            e("authorization { users: [ {user: a, password: a, account: Z} ] }").contains("account \"Z\" not found")
        );
        let o = ok("accounts { Z: {} }\nauthorization { users: [ {user: a, password: a, account: Z} ] }");
        validate(&o).unwrap();
        assert_eq!(o.authorization.users[0].account.as_deref(), Some("Z"));
        // the accounts block first: its users survive the authorization block
        let o = ok("accounts { Z: { users: [ {user: z, password: z} ] } }\nauthorization { users: [ {user: g, password: g} ] }");
        assert_eq!(o.authorization.users.len(), 2);
        assert!(e("accounts { A: { users: [ {user: x} ] }, B: { users: [ {user: x} ] } }").contains("Duplicate user"));
        assert!(e(
            "accounts { A: { jetstream: enabled }, B: { jetstream: enabled } }\njetstream { max_file_store: 1MB }"
        )
        .contains("max_file_store"));
        validate(&ok("accounts { A: { jetstream: enabled }, B: { jetstream: {max_mem: 1MB, max_file: -1} } }\njetstream: enabled")).unwrap();
        let o = ok("accounts { A: { jetstream: { max_mem: 1MB, max_store: 2MB } }, B: { js: disabled } }");
        assert_eq!(
            o.accounts[0].jetstream,
            Some(crate::accounts::AccountJetStream { max_memory: 1 << 20, max_file: 2 << 20, ..Default::default() })
        );
        assert_eq!(o.accounts[1].jetstream, None);
        let o = ok("accounts { A: { jetstream: { max_streams: 10, consumers: 20, max_ack_pending: 100, \
                    mem_max_stream_bytes: 2048, store_max_stream_bytes: 4096, max_stream_bytes: true } } }");
        let js = o.accounts[0].jetstream.unwrap();
        assert_eq!((js.max_streams, js.max_consumers, js.max_ack_pending), (10, 20, 100));
        assert_eq!((js.memory_max_stream_bytes, js.store_max_stream_bytes, js.max_bytes_required), (2048, 4096, true));
    }
}
