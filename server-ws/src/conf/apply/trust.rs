//! Operator mode: `operator` (a JWT, or a file holding one), `resolver: MEMORY`,
//! `resolver_preload` and `system_account`. The JWTs themselves are checked once the whole
//! file is read ([`super::validate`]), since the keys may come in any order.

use std::path::Path;

use super::super::error::ConfError;
use super::super::value::{Entry, ValueKind};
use super::values::*;
use crate::options::Options;

/// The top-level keys this module reads.
pub(super) const KEYS: &[&str] =
    &["operator", "operators", "resolver", "resolver_preload", "root_operator", "root_operators", "system_account"];

/// Applies one of the operator-mode keys ([`KEYS`]).
pub(super) fn entry(e: &Entry, opts: &mut Options) -> Result<(), ConfError> {
    match e.key.to_ascii_lowercase().as_str() {
        "operator" | "operators" | "root_operator" | "root_operators" => {
            let names: Vec<&str> = match &e.value.kind {
                ValueKind::String(s) => vec![s.as_str()],
                ValueKind::Array(items) => items
                    .iter()
                    .map(|v| match &v.kind {
                        ValueKind::String(s) => Ok(s.as_str()),
                        _ => Err(type_error(e, "a JWT or a file name, or a list of them")),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(type_error(e, "a JWT or a file name, or a list of them")),
            };
            for name in names {
                let jwt = operator_jwt(name).map_err(|why| invalid(e, why))?;
                opts.trust.operators.push(jwt);
            }
        }
        "resolver" => match &e.value.kind {
            ValueKind::String(s) if s.eq_ignore_ascii_case("MEMORY") => opts.trust.memory_resolver = true,
            _ => {
                return Err(invalid(
                    e,
                    "only the MEMORY resolver is supported by edgebus (URL and full/cache resolvers are not): \
                     refusing to start",
                ))
            }
        },
        "resolver_preload" => {
            for pe in map(e)? {
                opts.trust.preload.push((pe.key.clone(), string(pe)?.trim().to_string()));
            }
        }
        // `system_account`, the one key left
        _ => opts.trust.system_account = Some(string(e)?.to_string()),
    }
    Ok(())
}

/// The operator JWT named by `name`: the JWT itself (it starts with `eyJ`, as nats-server
/// tells them apart), or a file holding it, bare or between nsc's `-----BEGIN …-----` lines.
fn operator_jwt(name: &str) -> Result<String, String> {
    if name.starts_with("eyJ") {
        return Ok(name.to_string());
    }
    let text = std::fs::read_to_string(Path::new(name))
        .map_err(|err| format!("error reading operator JWT file {name:?}: {err}"))?;
    let jwt = if text.contains("-----BEGIN") {
        let mut lines = text.lines().map(str::trim);
        lines.find(|l| l.starts_with("-----BEGIN") && l.contains("JWT"));
        lines.next().unwrap_or_default().to_string()
    } else {
        text.trim().to_string()
    };
    if jwt.is_empty() {
        return Err(format!("no JWT found in {name:?}"));
    }
    Ok(jwt)
}

/// The cross-key checks of operator mode, with nats-server's words where it has them.
pub(super) fn validate(opts: &Options, now: i64) -> Result<(), String> {
    let t = &opts.trust;
    if t.operators.is_empty() {
        if t.memory_resolver || !t.preload.is_empty() {
            return Err("resolver: a resolver needs an operator (operator mode)".into());
        }
        if t.system_account.is_some() {
            return Err("system_account: a system account is not supported by edgebus outside operator mode".into());
        }
        return Ok(());
    }
    let a = &opts.authorization;
    if !opts.accounts.is_empty() {
        // JWT users are mapped to the global account: configured accounts would be ignored
        return Err("operators do not allow local accounts to be configured".into());
    }
    if !a.users.is_empty() || !a.nkeys.is_empty() {
        return Err("operators do not allow users to be configured directly".into());
    }
    if a.token.is_some() {
        return Err("operators do not allow authorization tokens".into());
    }
    if a.no_auth_user.is_some() {
        return Err("no_auth_user: not supported by edgebus in operator mode".into());
    }
    if !t.memory_resolver {
        return Err(
            "operator: needs `resolver: MEMORY` and `resolver_preload` (other resolvers are not supported by edgebus)"
                .into(),
        );
    }
    if opts.jetstream.enabled {
        return Err("operator: JetStream for JWT accounts (account JetStream limits) is not supported by edgebus: \
             refusing to start"
            .into());
    }
    crate::auth::jwt::Trust::new(&t.operators, &t.preload, t.system_account.as_deref(), now).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::*;
    use super::*;

    #[test]
    fn operator_jwt_from_a_file_or_inline() {
        let dir = std::env::temp_dir().join(format!("edgebus-op-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let armored = dir.join("op.jwt");
        std::fs::write(
            &armored,
            "-----BEGIN NATS OPERATOR JWT-----\neyJhbc.def.ghi\n------END NATS OPERATOR JWT------\n",
        )
        .unwrap();
        assert_eq!(operator_jwt(armored.to_str().unwrap()).unwrap(), "eyJhbc.def.ghi");
        let bare = dir.join("bare.jwt");
        std::fs::write(&bare, "  eyJx.y.z\n").unwrap();
        assert_eq!(operator_jwt(bare.to_str().unwrap()).unwrap(), "eyJx.y.z");
        assert_eq!(operator_jwt("eyJinline.a.b").unwrap(), "eyJinline.a.b");
        assert!(operator_jwt("/nonexistent/op.jwt").unwrap_err().contains("error reading operator JWT file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_and_refusals() {
        let o =
            ok("operator: eyJa.b.c\nresolver: memory\nresolver_preload: { AKEY: \"eyJd.e.f\" }\nsystem_account: AS");
        assert_eq!(o.trust.operators, vec!["eyJa.b.c".to_string()]);
        assert!(o.trust.memory_resolver);
        assert_eq!(o.trust.preload, vec![("AKEY".to_string(), "eyJd.e.f".to_string())]);
        assert_eq!(o.trust.system_account.as_deref(), Some("AS"));
        let e = err("resolver: URL(http://localhost:9090/jwt/v1/accounts/)");
        assert!(e.contains("resolver: only the MEMORY resolver"), "{e}");
        assert!(err("resolver: { type: full, dir: \"./jwt\" }").contains("only the MEMORY resolver"));
        let no_op = |src: &str| validate(&ok(src), 0).unwrap_err();
        assert!(no_op("resolver: MEMORY").contains("needs an operator"));
        assert!(no_op("system_account: AS").contains("system_account"));
        let users = "operator: eyJa.b.c\nresolver: MEMORY\nauthorization { users: [ { user: a, password: b } ] }";
        assert_eq!(validate(&ok(users), 0).unwrap_err(), "operators do not allow users to be configured directly");
        let accounts = "operator: eyJa.b.c\nresolver: MEMORY\naccounts { A: {} }";
        assert_eq!(validate(&ok(accounts), 0).unwrap_err(), "operators do not allow local accounts to be configured");
        assert!(validate(&ok("operator: eyJa.b.c"), 0).unwrap_err().contains("resolver: MEMORY"));
        let js = validate(&ok("operator: eyJa.b.c\nresolver: MEMORY\njetstream: enabled"), 0).unwrap_err();
        assert!(js.contains("JetStream"), "{js}");
        assert!(validate(&ok("operator: eyJa.b.c\nresolver: MEMORY"), 0).unwrap_err().contains("operator: "));
    }
}
