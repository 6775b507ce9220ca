//! Checking a client's credentials against `authorization { … }`, and which permissions the
//! user it authenticated as has.

pub mod certmap;
pub mod jwt;
pub mod nkey;

use std::sync::Arc;

use edgebus_core::policy::permissions::{InvalidPermission, Permissions};
use edgebus_core::policy::Admission;
use edgebus_core::proto::ConnectOptions;

use crate::options::Authorization;

/// The configured authorization with each user's permissions compiled once, shared by all
/// connections (and all connections of one user share its [`Permissions`]).
pub struct Authenticator {
    auth: Authorization,
    perms: Vec<Option<Arc<Permissions>>>,
    nkeys: nkey::NkeyUsers,
    /// Operator mode: every client must present a user JWT of a trusted account.
    trust: Option<jwt::Trust>,
    /// `tls { verify_and_map }`: the client certificate names the user.
    map_certs: bool,
    /// Whether a configured secret is a bcrypt hash or nkey users are configured (see
    /// [`Authenticator::is_slow`]).
    slow: bool,
}

impl Authenticator {
    pub fn new(auth: &Authorization) -> Result<Authenticator, InvalidPermission> {
        let perms = auth.users.iter().map(|u| compile(u.permissions.as_ref())).collect::<Result<_, _>>()?;
        let nkeys = nkey::NkeyUsers::new(
            auth.nkeys
                .iter()
                .map(|u| Ok((u.nkey.clone(), compile(u.permissions.as_ref())?, u.account.clone())))
                .collect::<Result<_, InvalidPermission>>()?,
        );
        let slow =
            !nkeys.is_empty() || auth.token.iter().chain(auth.users.iter().map(|u| &u.password)).any(|s| is_bcrypt(s));
        Ok(Authenticator { auth: auth.clone(), perms, nkeys, trust: None, map_certs: false, slow })
    }

    /// Adds operator mode when `trust` names an operator (checked at start by the config;
    /// checked again here for options built in code).
    pub fn with_trust(mut self, trust: &crate::options::TrustOptions) -> Result<Authenticator, String> {
        if trust.operators.is_empty() {
            return Ok(self);
        }
        let t = &trust;
        self.trust = Some(jwt::Trust::new(&t.operators, &t.preload, t.system_account.as_deref(), unix_now())?);
        self.slow = true;
        Ok(self)
    }

    /// `tls { verify_and_map }`: users are found by their client certificate
    /// ([`certmap::CertNames`]).
    pub fn with_cert_map(mut self, on: bool) -> Authenticator {
        self.map_certs = on;
        self
    }

    /// The accounts operator mode brings: one per preloaded account JWT (not the system
    /// account), named by its public key.
    pub fn trusted_accounts(&self) -> Vec<String> {
        self.trust.iter().flat_map(|t| t.tenant_accounts().map(str::to_string)).collect()
    }

    /// Whether clients must authenticate (a `CONNECT` before anything else).
    pub fn required(&self) -> bool {
        self.trust.is_some() || self.auth.required()
    }

    /// How long a client has to send its `CONNECT` when [`Authenticator::required`].
    pub fn timeout(&self) -> std::time::Duration {
        self.auth.timeout
    }

    /// Whether `INFO` carries a nonce for the client to sign: only when nkey users are
    /// configured, as nats-server.
    pub fn wants_nonce(&self) -> bool {
        !self.nkeys.is_empty() || self.trust.is_some()
    }

    /// Whether [`Authenticator::authorize`] may verify a bcrypt hash (milliseconds of CPU on
    /// purpose) or an Ed25519 signature: hosts then run it on their blocking pool.
    pub fn is_slow(&self) -> bool {
        self.slow
    }

    /// Does this `CONNECT` satisfy the configured authorization, and as whom? With nothing
    /// configured every client is let in. A token and users may be configured together;
    /// either then admits. A client that sends no credentials at all is the `no_auth_user`
    /// when one is configured (nats-server's rule). `nonce` is the one this connection's
    /// `INFO` carried (empty when none was sent); `cert` the names of the client's verified
    /// certificate, read when `verify_and_map` is on.
    pub fn authorize(&self, opts: &ConnectOptions, nonce: &str, cert: Option<&certmap::CertNames>) -> Admission {
        self.authorize_as(opts, nonce, cert).0
    }

    /// [`Authenticator::authorize`], with the account of the user admitted (`None`: `$G`).
    /// A JWT user is in its issuing account (named by its public key).
    pub fn authorize_as(
        &self,
        opts: &ConnectOptions,
        nonce: &str,
        cert: Option<&certmap::CertNames>,
    ) -> (Admission, Option<&str>) {
        match self.admitted(opts, nonce, cert) {
            Admitted::User(i) => (Admission::Admitted(self.perms[i].clone()), self.auth.users[i].account.as_deref()),
            Admitted::With(perms, account) => (Admission::Admitted(perms), account),
            Admitted::Refused => (Admission::Refused, None),
        }
    }

    fn admitted(&self, opts: &ConnectOptions, nonce: &str, cert: Option<&certmap::CertNames>) -> Admitted<'_> {
        if let Some(trust) = &self.trust {
            // operator mode: a user JWT, nothing else (nats-server's rule)
            let Some(token) = &opts.jwt else {
                return Admitted::Refused;
            };
            return match trust.authorize(token, opts.sig.as_deref(), nonce, unix_now()) {
                Ok((config, account)) => match compile(config.as_ref()) {
                    Ok(perms) => Admitted::With(perms, Some(account)),
                    Err(e) => {
                        tracing::debug!("user JWT permissions: {e}");
                        Admitted::Refused
                    }
                },
                Err(e) => {
                    tracing::debug!("user JWT refused: {e}");
                    Admitted::Refused
                }
            };
        }
        let auth = &self.auth;
        if !auth.required() {
            return Admitted::With(None, None);
        }
        let anonymous = opts.user.is_none() && opts.pass.is_none() && opts.auth_token.is_none() && opts.nkey.is_none();
        if !self.nkeys.is_empty() {
            // nats-server's order: an nkey (given, or the `no_auth_user` for an anonymous
            // client) is decided here, whatever else the CONNECT holds.
            let key = match (&opts.nkey, &auth.no_auth_user) {
                (Some(key), _) => Some(key.as_str()),
                (None, Some(name)) if anonymous && self.nkeys.find(name).is_some() => Some(name.as_str()),
                (None, _) => None,
            };
            if let Some(key) = key {
                let Some((perms, account)) = self.nkeys.find(key) else {
                    return Admitted::Refused;
                };
                // the `no_auth_user` needs no signature (nats-server skips it by key)
                let signed = auth.no_auth_user.as_deref() == Some(key)
                    || opts.sig.as_deref().is_some_and(|sig| nkey::verify_signature(key, sig, nonce));
                return if signed { Admitted::With(perms.clone(), account) } else { Admitted::Refused };
            }
        }
        if self.map_certs && !auth.users.is_empty() {
            // nats-server: the certificate's user wins over a CONNECT `user`; its password
            // (usually none) is still compared with the CONNECT's
            let found = cert.and_then(|c| c.find(auth.users.iter().map(|u| u.username.as_str())));
            let Some(i) = found.and_then(|name| auth.users.iter().position(|u| u.username == name)) else {
                return Admitted::Refused;
            };
            return match check_secret(&auth.users[i].password, opts.pass.as_deref().unwrap_or_default()) {
                true => Admitted::User(i),
                false => Admitted::Refused,
            };
        }
        if let (true, Some(name)) = (anonymous, &auth.no_auth_user) {
            return auth.users.iter().position(|u| &u.username == name).map_or(Admitted::Refused, Admitted::User);
        }
        if let (Some(want), Some(got)) = (&auth.token, &opts.auth_token) {
            if check_secret(want, got) {
                return Admitted::With(None, None);
            }
        }
        if let (Some(user), Some(pass)) = (&opts.user, &opts.pass) {
            if let Some(i) = auth.users.iter().position(|u| &u.username == user && check_secret(&u.password, pass)) {
                return Admitted::User(i);
            }
        }
        Admitted::Refused
    }

    /// Whether `INFO` says `auth_required`: nats-server says no when a `no_auth_user` lets
    /// clients in without credentials.
    pub fn info_auth_required(&self) -> bool {
        self.required() && self.auth.no_auth_user.is_none()
    }
}

/// Who a `CONNECT` was admitted as.
enum Admitted<'a> {
    /// `users[i]` of the authorization (which may belong to an account).
    User(usize),
    /// Someone with these permissions in this account (`None`: `$G`): no authorization
    /// configured, the token, an nkey user, a JWT user.
    With(Option<Arc<Permissions>>, Option<&'a str>),
    Refused,
}

/// Unix seconds, for JWT expiry.
fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn compile(
    config: Option<&edgebus_core::policy::permissions::PermissionsConfig>,
) -> Result<Option<Arc<Permissions>>, InvalidPermission> {
    config.map(|p| Permissions::compile(p).map(Arc::new)).transpose()
}

/// Compares a configured secret with what the client sent. A configured value that looks like
/// a bcrypt hash is verified as one, as nats-server does (`nats-server --pass` hashes are
/// made with `nats server passwd`); plain values compare in constant time.
pub(crate) fn check_secret(configured: &str, given: &str) -> bool {
    if is_bcrypt(configured) {
        #[cfg(test)]
        tests::bcrypt_gate(given);
        return bcrypt::verify(given, configured).unwrap_or(false);
    }
    constant_time_eq(configured.as_bytes(), given.as_bytes())
}

fn is_bcrypt(s: &str) -> bool {
    s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2x$") || s.starts_with("$2y$")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::options::User;

    fn connect(json: &str) -> ConnectOptions {
        ConnectOptions::parse(json.as_bytes()).unwrap()
    }

    /// Held for writing by a test that must see bcrypt wait (see `conn_tests`); only
    /// passwords starting with [`GATED`] wait at it, so other tests never do.
    pub(crate) static BCRYPT_GATE: parking_lot::RwLock<()> = parking_lot::RwLock::new(());
    pub(crate) const GATED: &str = "gated:";
    /// How many bcrypt checks of gated passwords have reached the gate.
    pub(crate) static BCRYPT_ARRIVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// Waits while a test holds [`BCRYPT_GATE`]. A wait that never ends means the test
    /// itself cannot run: bcrypt was called on its (only) async thread, which is the bug the
    /// gate is there to catch, so that panics (and the connection counts a panic).
    pub(crate) fn bcrypt_gate(given: &str) {
        if !given.starts_with(GATED) {
            return;
        }
        BCRYPT_ARRIVED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let open = BCRYPT_GATE.try_read_for(std::time::Duration::from_secs(10));
        assert!(open.is_some(), "bcrypt verification blocked the async thread");
    }

    fn admitted(a: &Authenticator, json: &str) -> bool {
        matches!(a.authorize(&connect(json), "", None), Admission::Admitted(_))
    }

    #[test]
    fn no_auth_user_and_permissions() {
        use edgebus_core::policy::permissions::{PermissionsConfig, SubjectRule};
        let limited = PermissionsConfig {
            publish: Some(SubjectRule { allow: Some(vec!["x".into()]), deny: vec![] }),
            ..Default::default()
        };
        let auth = Authorization {
            users: vec![User::new("a", "pw"), User { permissions: Some(limited), ..User::new("guest", "g") }],
            no_auth_user: Some("guest".into()),
            ..Default::default()
        };
        let a = Authenticator::new(&auth).unwrap();
        assert!(!a.info_auth_required());
        let Admission::Admitted(Some(p)) = a.authorize(&connect("{}"), "", None) else { panic!("guest") };
        assert!(p.publish_allowed(b"x") && !p.publish_allowed(b"y"));
        assert!(matches!(a.authorize(&connect(r#"{"user":"a","pass":"pw"}"#), "", None), Admission::Admitted(None)));
        assert!(!admitted(&a, r#"{"user":"a","pass":"bad"}"#), "credentials given are checked");
    }

    #[test]
    fn nkey_users_sign_the_nonce() {
        use crate::options::NkeyUser;
        let (alice, guest) = (nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user());
        let auth = Authorization {
            users: vec![User::new("pw", "secret")],
            nkeys: vec![
                NkeyUser { nkey: alice.public_key(), permissions: None, account: None },
                NkeyUser { nkey: guest.public_key(), permissions: None, account: None },
            ],
            ..Default::default()
        };
        let a = Authenticator::new(&auth).unwrap();
        assert!(a.wants_nonce() && a.is_slow());
        let nonce = nkey::new_nonce();
        let signed = |kp: &nkeys::KeyPair, nonce: &str| {
            let sig = data_encoding::BASE64URL_NOPAD.encode(&kp.sign(nonce.as_bytes()).unwrap());
            format!(r#"{{"nkey":"{}","sig":"{sig}"}}"#, kp.public_key())
        };
        let ok = |json: &str| matches!(a.authorize(&connect(json), &nonce, None), Admission::Admitted(_));
        assert!(ok(&signed(&alice, &nonce)));
        assert!(!ok(&signed(&alice, "another-nonce")), "a signature of another nonce");
        assert!(!ok(&format!(r#"{{"nkey":"{}"}}"#, alice.public_key())), "no signature");
        let stranger = nkeys::KeyPair::new_user();
        assert!(!ok(&signed(&stranger, &nonce)), "a key not configured");
        assert!(ok(r#"{"user":"pw","pass":"secret"}"#), "password users beside nkeys");
        assert!(!ok("{}"), "no credentials and no no_auth_user");

        let a = Authenticator::new(&Authorization { no_auth_user: Some(guest.public_key()), ..auth }).unwrap();
        assert!(matches!(a.authorize(&connect("{}"), &nonce, None), Admission::Admitted(_)), "no_auth_user as an nkey");
        let forged = format!(r#"{{"nkey":"{}","sig":"AAAA"}}"#, alice.public_key());
        assert!(!matches!(a.authorize(&connect(&forged), &nonce, None), Admission::Admitted(_)));
    }

    #[test]
    fn token_users_and_bcrypt() {
        let hash = bcrypt::hash("pw2", 4).unwrap();
        let auth = Authorization {
            token: Some("t0k".into()),
            users: vec![User::new("a", "pw"), User::new("b", hash)],
            ..Default::default()
        };
        let auth = Authenticator::new(&auth).unwrap();
        assert!(auth.info_auth_required());
        assert!(admitted(&auth, r#"{"auth_token":"t0k"}"#));
        assert!(!admitted(&auth, r#"{"auth_token":"nope"}"#));
        assert!(admitted(&auth, r#"{"user":"a","pass":"pw"}"#));
        assert!(!admitted(&auth, r#"{"user":"a","pass":"pw2"}"#));
        assert!(admitted(&auth, r#"{"user":"b","pass":"pw2"}"#));
        assert!(!admitted(&auth, r#"{}"#));
        assert!(admitted(&Authenticator::new(&Authorization::default()).unwrap(), r#"{}"#));
    }
}
