//! User JWTs under a trusted operator (`operator`, `resolver: MEMORY`, `resolver_preload`), as
//! nats-server checks them: the user JWT is signed by its account (or one of the account's
//! signing keys), the account JWT by the operator (or one of its signing keys), none has
//! expired or been revoked, and the client signed the `INFO` nonce with the user's key.
//!
//! Each preloaded account is a subject space of its own (see `crate::accounts`). What edgebus
//! cannot honour is refused, never ignored: account imports, exports, mappings and limits at
//! start; user JWTs with connection limits, source networks, time windows, connection types
//! or scoped signing keys at connect.

use std::collections::HashMap;
use std::fmt;

use edgebus_core::policy::permissions::{PermissionsConfig, ResponseRule, SubjectRule};
use nkeys::KeyPair;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a JWT was not accepted. At start it becomes the config error; at connect it is
/// logged and the client gets nats-server's `Authorization Violation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts of JSON with an Ed25519 nkey header.
    Malformed(&'static str),
    /// The issuer's signature does not verify.
    BadSignature,
    /// A JWT of another kind (an account JWT where a user JWT belongs, …).
    WrongType {
        want: &'static str,
        got: String,
    },
    Expired,
    NotYetValid,
    /// Issued by a key that may not issue it.
    UntrustedIssuer(String),
    /// A user of an account the resolver does not hold.
    UnknownAccount(String),
    Revoked,
    /// The client did not sign the nonce with the user's key.
    NonceSignature,
    /// Something the JWT asks for that edgebus does not implement (fail closed).
    Unsupported(String),
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed(why) => write!(f, "invalid JWT: {why}"),
            JwtError::BadSignature => write!(f, "JWT signature does not verify"),
            JwtError::WrongType { want, got } => write!(f, "expected a {want} JWT, got {got:?}"),
            JwtError::Expired => write!(f, "JWT has expired"),
            JwtError::NotYetValid => write!(f, "JWT is not valid yet"),
            JwtError::UntrustedIssuer(k) => write!(f, "JWT issuer {k} is not trusted"),
            JwtError::UnknownAccount(k) => write!(f, "account {k} is not known to the resolver"),
            JwtError::Revoked => write!(f, "user JWT has been revoked"),
            JwtError::NonceSignature => write!(f, "nonce signature missing or invalid"),
            JwtError::Unsupported(what) => write!(f, "{what} is not supported by edgebus"),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    typ: String,
    #[serde(default)]
    alg: String,
}

/// The claims every NATS JWT has, in both the version 1 layout (`type` at the top) and the
/// version 2 one (`nats.type`).
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    iat: i64,
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    exp: i64,
    #[serde(default)]
    nbf: i64,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    nats: Map<String, Value>,
}

/// A JWT whose signature by its issuer verified.
struct Claims {
    iat: i64,
    iss: String,
    sub: String,
    exp: i64,
    nbf: i64,
    nats: Map<String, Value>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    data_encoding::BASE64URL_NOPAD
        .decode(part.trim_end_matches('=').as_bytes())
        .map_err(|_| JwtError::Malformed("not base64url"))
}

/// Decodes `token`, checks it is a `want` JWT (`operator`, `account`, `user`) and verifies
/// its issuer's signature. Version 1 JWTs (`alg: ed25519`) are signed over the claims part
/// only; version 2 (`alg: ed25519-nkey`) over `header.claims`.
fn decode(token: &str, want: &'static str) -> Result<Claims, JwtError> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("expected three parts"));
    };
    let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed("bad header"))?;
    if !header.typ.eq_ignore_ascii_case("jwt") {
        return Err(JwtError::Malformed("not a JWT"));
    }
    let signed = match header.alg.as_str() {
        "ed25519" => c,
        "ed25519-nkey" => &token[..h.len() + 1 + c.len()],
        _ => return Err(JwtError::Malformed("unsupported algorithm")),
    };
    let raw: RawClaims = serde_json::from_slice(&b64(c)?).map_err(|_| JwtError::Malformed("bad claims"))?;
    let issuer = KeyPair::from_public_key(&raw.iss).map_err(|_| JwtError::Malformed("issuer is not an nkey"))?;
    issuer.verify(signed.as_bytes(), &b64(s)?).map_err(|_| JwtError::BadSignature)?;
    let kind = raw.nats.get("type").and_then(Value::as_str).map(str::to_string).or(raw.kind).unwrap_or_default();
    if kind != want {
        return Err(JwtError::WrongType { want, got: kind });
    }
    Ok(Claims { iat: raw.iat, iss: raw.iss, sub: raw.sub, exp: raw.exp, nbf: raw.nbf, nats: raw.nats })
}

impl Claims {
    /// nats-server's `Validate`: expired, or not yet valid, at `now` (Unix seconds).
    fn check_time(&self, now: i64) -> Result<(), JwtError> {
        if self.exp > 0 && now >= self.exp {
            return Err(JwtError::Expired);
        }
        if self.nbf > 0 && now < self.nbf {
            return Err(JwtError::NotYetValid);
        }
        Ok(())
    }

    fn field(&self, name: &str) -> Option<&Value> {
        self.nats.get(name).filter(|v| !v.is_null())
    }

    fn keys(&self, field: &str) -> Vec<String> {
        match self.field(field) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }
}

/// Whether `v` asks for anything: a non-empty string, list or map, `true`, or a number.
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(_) => true,
    }
}

/// Whether a limit field is absent or `-1` (nats-server's "no limit").
fn unlimited(map: &Map<String, Value>, field: &str) -> bool {
    map.get(field).is_none_or(|v| v.is_null() || v.as_i64() == Some(-1))
}

/// One trusted account from `resolver_preload`.
struct Account {
    key: String,
    /// Keys that may sign its users, and whether each is scoped (its role, not the user
    /// JWT, sets the user's permissions: edgebus refuses such users).
    signing_keys: Vec<(String, bool)>,
    exp: i64,
    /// `revocations`: user key (or `*`) → users issued at or before this time are revoked.
    revocations: HashMap<String, i64>,
    disallow_bearer: bool,
    default_permissions: Option<PermissionsConfig>,
}

/// Operator mode: the trusted operators and the accounts they vouch for.
pub struct Trust {
    accounts: HashMap<String, Account>,
    system_account: Option<String>,
}

/// Fields of an operator JWT that change nothing for a single server.
const OPERATOR_FIELDS: &[&str] = &[
    "account_server_url",
    "assert_server_version",
    "operator_service_urls",
    "signing_keys",
    "strict_signing_key_usage",
    "system_account",
    "tags",
    "type",
    "version",
];

/// Fields of an account JWT edgebus honours or that change nothing; any other field asks
/// for something edgebus does not do and refuses the start.
const ACCOUNT_FIELDS: &[&str] = &[
    "default_permissions",
    "description",
    "disallow_bearer",
    "info_url",
    "limits",
    "revocations",
    "signing_keys",
    "tags",
    "type",
    "version",
];

/// Account `limits` that may only be "no limit" (-1 or absent).
const ACCOUNT_LIMITS: &[&str] = &["conn", "data", "leaf", "payload", "subs"];

/// Fields of a user JWT edgebus honours or that change nothing.
const USER_FIELDS: &[&str] =
    &["bearer_token", "data", "issuer_account", "payload", "pub", "resp", "sub", "subs", "tags", "type", "version"];

impl Trust {
    /// Checks the operator JWTs and the preloaded accounts (`preload`: account key → JWT) at
    /// start; `now` is Unix seconds.
    pub fn new(
        operators: &[String],
        preload: &[(String, String)],
        system_account: Option<&str>,
        now: i64,
    ) -> Result<Trust, String> {
        let mut issuers = Vec::new();
        let mut strict = false;
        let mut system = system_account.map(str::to_string);
        for jwt in operators {
            let op = decode(jwt, "operator").map_err(|e| format!("operator: {e}"))?;
            op.check_time(now).map_err(|e| format!("operator: {e}"))?;
            if op.iss != op.sub || !op.sub.starts_with('O') {
                return Err("operator: JWT is not self-signed by an operator key".into());
            }
            if let Some(k) = op.nats.keys().find(|k| !OPERATOR_FIELDS.contains(&k.as_str())) {
                return Err(format!("operator: JWT field {k:?} is not supported by edgebus"));
            }
            strict |= op.field("strict_signing_key_usage").and_then(Value::as_bool).unwrap_or(false);
            if system.is_none() {
                system = op.field("system_account").and_then(Value::as_str).map(str::to_string);
            }
            issuers.push((op.sub.clone(), false));
            issuers.extend(op.keys("signing_keys").into_iter().map(|k| (k, true)));
        }
        let mut accounts = HashMap::new();
        for (key, jwt) in preload {
            let at = |e: &dyn fmt::Display| format!("resolver_preload: account {key}: {e}");
            let acc = decode(jwt, "account").map_err(|e| at(&e))?;
            if &acc.sub != key {
                return Err(at(&format!("JWT is for account {}", acc.sub)));
            }
            if !issuers.iter().any(|(k, signing)| k == &acc.iss && (*signing || !strict)) {
                return Err(at(&JwtError::UntrustedIssuer(acc.iss.clone())));
            }
            if let Some(k) = acc.nats.keys().find(|k| !ACCOUNT_FIELDS.contains(&k.as_str())) {
                if present(&acc.nats[k]) {
                    return Err(at(&format!("{k:?} is not supported by edgebus")));
                }
            }
            if let Some(Value::Object(limits)) = acc.field("limits") {
                if let Some(l) = ACCOUNT_LIMITS.iter().find(|l| !unlimited(limits, l)) {
                    return Err(at(&format!("limit {l:?} is not supported by edgebus")));
                }
                if limits.get("wildcards").and_then(Value::as_bool) == Some(false) {
                    return Err(at(&"limit \"wildcards\" is not supported by edgebus"));
                }
            }
            accounts.insert(key.clone(), Account::new(&acc).map_err(|e| at(&e))?);
        }
        Ok(Trust { accounts, system_account: system })
    }

    /// The accounts whose users may connect (every preloaded one but the system account):
    /// each is a subject space of its own, named by its public key as in nats-server.
    pub fn tenant_accounts(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str).filter(|k| Some(*k) != self.system_account.as_deref())
    }

    /// Authenticates a client that sent the user JWT `jwt` and the signature `sig` of the
    /// connection's `nonce`; its permissions and account (public key) on success. `now` is
    /// Unix seconds.
    pub fn authorize(
        &self,
        jwt: &str,
        sig: Option<&str>,
        nonce: &str,
        now: i64,
    ) -> Result<(Option<PermissionsConfig>, &str), JwtError> {
        let user = decode(jwt, "user")?;
        if !super::nkey::is_user_key(&user.sub) {
            return Err(JwtError::Malformed("subject is not a user nkey"));
        }
        user.check_time(now)?;
        let account_key = user.field("issuer_account").and_then(Value::as_str).unwrap_or(&user.iss);
        let (account_key, account) =
            self.accounts.get_key_value(account_key).ok_or_else(|| JwtError::UnknownAccount(account_key.into()))?;
        if self.system_account.as_deref() == Some(account_key) {
            return Err(JwtError::Unsupported("the system account".into()));
        }
        if user.iss != account.key {
            match account.signing_keys.iter().find(|(k, _)| k == &user.iss) {
                None => return Err(JwtError::UntrustedIssuer(user.iss.clone())),
                Some((_, true)) => return Err(JwtError::Unsupported("a user of a scoped signing key".into())),
                Some((_, false)) => {}
            }
        }
        if account.exp > 0 && now >= account.exp {
            return Err(JwtError::Expired);
        }
        let revoked_at = [account.revocations.get(&user.sub), account.revocations.get("*")];
        if revoked_at.into_iter().flatten().any(|t| user.iat <= *t) {
            return Err(JwtError::Revoked);
        }
        let bearer = user.field("bearer_token").and_then(Value::as_bool).unwrap_or(false);
        if !bearer || account.disallow_bearer {
            let signed = sig.is_some_and(|sig| super::nkey::verify_signature(&user.sub, sig, nonce));
            if !signed {
                return Err(JwtError::NonceSignature);
            }
        }
        if let Some(k) = user.nats.keys().find(|k| !USER_FIELDS.contains(&k.as_str()) && present(&user.nats[*k])) {
            return Err(JwtError::Unsupported(format!("user JWT field {k:?}")));
        }
        if let Some(l) = ["subs", "data", "payload"].into_iter().find(|l| !unlimited(&user.nats, l)) {
            return Err(JwtError::Unsupported(format!("user JWT limit {l:?}")));
        }
        let perms = permissions(&user.nats).map_err(JwtError::Unsupported)?;
        Ok((perms.or_else(|| account.default_permissions.clone()), account_key.as_str()))
    }
}

impl Account {
    fn new(acc: &Claims) -> Result<Account, String> {
        let signing_keys = match acc.field("signing_keys") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|k| match k {
                    Value::String(key) => Ok((key.clone(), false)),
                    Value::Object(scope) => scope
                        .get("key")
                        .and_then(Value::as_str)
                        .map(|key| (key.to_string(), true))
                        .ok_or_else(|| "a signing key without \"key\"".to_string()),
                    _ => Err("a signing key that is neither a key nor a scope".to_string()),
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let revocations = match acc.field("revocations") {
            Some(Value::Object(r)) => r.iter().filter_map(|(k, v)| Some((k.clone(), v.as_i64()?))).collect(),
            _ => HashMap::new(),
        };
        let limits = acc.field("limits").and_then(Value::as_object);
        let disallow_bearer = [acc.field("disallow_bearer"), limits.and_then(|l| l.get("disallow_bearer"))]
            .into_iter()
            .flatten()
            .any(|v| v.as_bool() == Some(true));
        let default_permissions = match acc.field("default_permissions") {
            Some(Value::Object(p)) => permissions(p)?,
            _ => None,
        };
        Ok(Account {
            key: acc.sub.clone(),
            signing_keys,
            exp: acc.exp,
            revocations,
            disallow_bearer,
            default_permissions,
        })
    }
}

/// `pub`, `sub` and `resp` of a user JWT (or an account's `default_permissions`) as a
/// permissions block; `None` when they restrict nothing. An empty allow list allows
/// everything, as nats-server reads JWT permissions.
fn permissions(nats: &Map<String, Value>) -> Result<Option<PermissionsConfig>, String> {
    let rule = |field: &str| -> Result<Option<SubjectRule>, String> {
        let list = |v: Option<&Value>| -> Result<Vec<String>, String> {
            match v {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|s| {
                        s.as_str().map(str::to_string).ok_or_else(|| format!("{field}: a subject that is not a string"))
                    })
                    .collect(),
                Some(_) => Err(format!("{field}: expected a list of subjects")),
            }
        };
        let Some(Value::Object(r)) = nats.get(field) else {
            return Ok(None);
        };
        let (allow, deny) = (list(r.get("allow"))?, list(r.get("deny"))?);
        if allow.is_empty() && deny.is_empty() {
            return Ok(None);
        }
        Ok(Some(SubjectRule { allow: (!allow.is_empty()).then_some(allow), deny }))
    };
    let response = match nats.get("resp") {
        Some(Value::Object(r)) => {
            let max = r.get("max").and_then(Value::as_i64).unwrap_or(0);
            let ttl = r.get("ttl").and_then(Value::as_i64).unwrap_or(0);
            let d = ResponseRule::DEFAULT;
            Some(ResponseRule {
                max_msgs: if max == 0 { d.max_msgs } else { max },
                expires_ns: if ttl == 0 { d.expires_ns } else { ttl },
            })
        }
        _ => None,
    };
    let p = PermissionsConfig { publish: rule("pub")?, subscribe: rule("sub")?, response };
    Ok((p != PermissionsConfig::default()).then_some(p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn b64(bytes: &[u8]) -> String {
        data_encoding::BASE64URL_NOPAD.encode(bytes)
    }

    /// A version 2 JWT (`ed25519-nkey`: signed over `header.claims`).
    fn jwt(issuer: &KeyPair, sub: &str, kind: &str, nats: Value, extra: Value) -> String {
        let mut claims = json!({ "jti": "x", "iat": NOW - 100, "iss": issuer.public_key(), "sub": sub });
        let mut n = json!({ "type": kind, "version": 2 });
        n.as_object_mut().unwrap().extend(nats.as_object().unwrap().clone());
        claims["nats"] = n;
        claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let part = format!("{}.{}", b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#), b64(claims.to_string().as_bytes()));
        let sig = issuer.sign(part.as_bytes()).unwrap();
        format!("{part}.{}", b64(&sig))
    }

    struct Setup {
        operator: KeyPair,
        account: KeyPair,
        signer: KeyPair,
        trust: Trust,
    }

    fn setup(account_nats: Value) -> Setup {
        let (operator, account, signer) = (KeyPair::new_operator(), KeyPair::new_account(), KeyPair::new_account());
        let op = jwt(&operator, &operator.public_key(), "operator", json!({}), json!({}));
        let mut nats = json!({ "signing_keys": [signer.public_key()] });
        nats.as_object_mut().unwrap().extend(account_nats.as_object().unwrap().clone());
        let acc = jwt(&operator, &account.public_key(), "account", nats, json!({}));
        let trust = Trust::new(&[op], &[(account.public_key(), acc)], None, NOW).unwrap();
        Setup { operator, account, signer, trust }
    }

    fn sig(user: &KeyPair, nonce: &str) -> String {
        b64(&user.sign(nonce.as_bytes()).unwrap())
    }

    #[test]
    fn user_jwt_chain_and_nonce() {
        let s = setup(json!({}));
        let user = KeyPair::new_user();
        let perms = json!({ "pub": { "allow": ["a.>"] }, "sub": { "deny": ["b"] }, "subs": -1 });
        let token = jwt(&s.account, &user.public_key(), "user", perms, json!({}));
        let p = s.trust.authorize(&token, Some(&sig(&user, "n0nce")), "n0nce", NOW).unwrap().0.unwrap();
        assert_eq!(p.publish.unwrap().allow, Some(vec!["a.>".to_string()]));
        assert_eq!(p.subscribe.unwrap(), SubjectRule { allow: None, deny: vec!["b".into()] });
        assert_eq!(s.trust.authorize(&token, Some(&sig(&user, "other")), "n0nce", NOW), Err(JwtError::NonceSignature));
        assert_eq!(s.trust.authorize(&token, None, "n0nce", NOW), Err(JwtError::NonceSignature));
        // tampered claims
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let claims = String::from_utf8(super::b64(&parts[1]).unwrap()).unwrap();
        parts[1] = b64(claims.replace("a.>", ">").as_bytes());
        assert_eq!(s.trust.authorize(&parts.join("."), Some(&sig(&user, "n")), "n", NOW), Err(JwtError::BadSignature));
        // an account JWT is not a user JWT
        let wrong = jwt(&s.operator, &s.account.public_key(), "account", json!({}), json!({}));
        assert!(matches!(s.trust.authorize(&wrong, None, "n", NOW), Err(JwtError::WrongType { .. })));
        assert!(matches!(s.trust.authorize("abc", None, "n", NOW), Err(JwtError::Malformed(_))));
    }

    #[test]
    fn issuers_expiry_revocation_bearer() {
        let user = KeyPair::new_user();
        let s = setup(json!({ "revocations": { user.public_key(): NOW - 50 } }));
        let ok = |token: &str, u: &KeyPair| s.trust.authorize(token, Some(&sig(u, "n")), "n", NOW).map(|r| r.0);
        let revoked = jwt(&s.account, &user.public_key(), "user", json!({}), json!({}));
        assert_eq!(ok(&revoked, &user), Err(JwtError::Revoked), "issued before the revocation");
        let fresh = KeyPair::new_user();
        let by_signer =
            jwt(&s.signer, &fresh.public_key(), "user", json!({ "issuer_account": s.account.public_key() }), json!({}));
        assert_eq!(ok(&by_signer, &fresh), Ok(None));
        let stranger = KeyPair::new_account();
        let untrusted =
            jwt(&stranger, &fresh.public_key(), "user", json!({ "issuer_account": s.account.public_key() }), json!({}));
        assert!(matches!(ok(&untrusted, &fresh), Err(JwtError::UntrustedIssuer(_))));
        let other = jwt(&stranger, &fresh.public_key(), "user", json!({}), json!({}));
        assert!(matches!(ok(&other, &fresh), Err(JwtError::UnknownAccount(_))));
        let expired = jwt(&s.account, &fresh.public_key(), "user", json!({}), json!({ "exp": NOW - 1 }));
        assert_eq!(ok(&expired, &fresh), Err(JwtError::Expired));
        let early = jwt(&s.account, &fresh.public_key(), "user", json!({}), json!({ "nbf": NOW + 60 }));
        assert_eq!(ok(&early, &fresh), Err(JwtError::NotYetValid));
        let bearer = jwt(&s.account, &fresh.public_key(), "user", json!({ "bearer_token": true }), json!({}));
        assert_eq!(s.trust.authorize(&bearer, None, "n", NOW).map(|r| r.0), Ok(None));
        let limited = jwt(&s.account, &fresh.public_key(), "user", json!({ "subs": 10 }), json!({}));
        assert!(matches!(ok(&limited, &fresh), Err(JwtError::Unsupported(_))));
        let src = jwt(&s.account, &fresh.public_key(), "user", json!({ "src": ["10.0.0.0/8"] }), json!({}));
        assert!(matches!(ok(&src, &fresh), Err(JwtError::Unsupported(_))));
    }

    #[test]
    fn version_1_jwts_sign_the_claims_only() {
        let s = setup(json!({}));
        let user = KeyPair::new_user();
        let claims = json!({ "iat": NOW, "iss": s.account.public_key(), "sub": user.public_key(), "type": "user",
                             "nats": { "pub": {}, "sub": {} } });
        let c = b64(claims.to_string().as_bytes());
        let token =
            format!("{}.{c}.{}", b64(br#"{"typ":"jwt","alg":"ed25519"}"#), b64(&s.account.sign(c.as_bytes()).unwrap()));
        assert_eq!(s.trust.authorize(&token, Some(&sig(&user, "n")), "n", NOW).map(|r| r.0), Ok(None));
    }

    #[test]
    fn what_cannot_be_honoured_refuses_the_start() {
        let operator = KeyPair::new_operator();
        let op = jwt(&operator, &operator.public_key(), "operator", json!({}), json!({}));
        let account = |nats: Value| {
            let a = KeyPair::new_account();
            (a.public_key(), jwt(&operator, &a.public_key(), "account", nats, json!({})))
        };
        let new = |preload: &[(String, String)]| Trust::new(std::slice::from_ref(&op), preload, None, NOW);
        assert!(new(&[account(json!({}))]).is_ok());
        let two = new(&[account(json!({})), account(json!({}))]).unwrap();
        assert_eq!(two.tenant_accounts().count(), 2, "each preloaded account is a tenant of its own");
        let (sys_key, sys_jwt) = account(json!({}));
        let with_system = Trust::new(
            std::slice::from_ref(&op),
            &[account(json!({})), (sys_key.clone(), sys_jwt)],
            Some(&sys_key),
            NOW,
        );
        assert!(with_system.is_ok(), "the system account is not a second tenant");
        let e = new(&[account(json!({ "imports": [{ "subject": "x" }] }))]).err().unwrap();
        assert!(e.contains("\"imports\" is not supported"), "{e}");
        let e = new(&[account(json!({ "limits": { "conn": 5 } }))]).err().unwrap();
        assert!(e.contains("limit \"conn\""), "{e}");
        let foreign = KeyPair::new_operator();
        let a = KeyPair::new_account();
        let e =
            new(&[(a.public_key(), jwt(&foreign, &a.public_key(), "account", json!({}), json!({})))]).err().unwrap();
        assert!(e.contains("not trusted"), "{e}");
        let (key, token) = account(json!({}));
        let e = new(&[(KeyPair::new_account().public_key(), token)]).err().unwrap();
        assert!(e.contains(&format!("JWT is for account {key}")), "{e}");
        let expired = jwt(&operator, &operator.public_key(), "operator", json!({}), json!({ "exp": NOW - 1 }));
        assert!(Trust::new(&[expired], &[], None, NOW).err().unwrap().contains("expired"));
    }
}
