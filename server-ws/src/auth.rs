//! Checking a client's credentials against `authorization { … }`, and which permissions the
//! user it authenticated as has.

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
    /// Whether a configured secret is a bcrypt hash (see [`Authenticator::is_slow`]).
    slow: bool,
}

impl Authenticator {
    pub fn new(auth: &Authorization) -> Result<Authenticator, InvalidPermission> {
        let perms = auth
            .users
            .iter()
            .map(|u| u.permissions.as_ref().map(|p| Permissions::compile(p).map(Arc::new)).transpose())
            .collect::<Result<_, _>>()?;
        let slow = auth.token.iter().chain(auth.users.iter().map(|u| &u.password)).any(|s| is_bcrypt(s));
        Ok(Authenticator { auth: auth.clone(), perms, slow })
    }

    /// Whether [`Authenticator::authorize`] may verify a bcrypt hash, which takes milliseconds
    /// of CPU on purpose: hosts then run it on their blocking pool.
    pub fn is_slow(&self) -> bool {
        self.slow
    }

    /// Does this `CONNECT` satisfy the configured authorization, and as whom? With nothing
    /// configured every client is let in. A token and users may be configured together;
    /// either then admits. A client that sends no credentials at all is the `no_auth_user`
    /// when one is configured (nats-server's rule).
    pub fn authorize(&self, opts: &ConnectOptions) -> Admission {
        self.authorize_as(opts).0
    }

    /// [`Authenticator::authorize`], with the account of the user admitted (`None`: `$G`).
    pub fn authorize_as(&self, opts: &ConnectOptions) -> (Admission, Option<&str>) {
        match self.admitted_user(opts) {
            Some(Some(i)) => (Admission::Admitted(self.perms[i].clone()), self.auth.users[i].account.as_deref()),
            Some(None) => (Admission::Admitted(None), None),
            None => (Admission::Refused, None),
        }
    }

    /// `None`: refused; `Some(None)`: admitted without a user (no authorization, or the
    /// token); `Some(Some(i))`: admitted as `users[i]`.
    fn admitted_user(&self, opts: &ConnectOptions) -> Option<Option<usize>> {
        let auth = &self.auth;
        if !auth.required() {
            return Some(None);
        }
        let anonymous = opts.user.is_none() && opts.pass.is_none() && opts.auth_token.is_none();
        if let (true, Some(name)) = (anonymous, &auth.no_auth_user) {
            return auth.users.iter().position(|u| &u.username == name).map(Some);
        }
        if let (Some(want), Some(got)) = (&auth.token, &opts.auth_token) {
            if check_secret(want, got) {
                return Some(None);
            }
        }
        if let (Some(user), Some(pass)) = (&opts.user, &opts.pass) {
            if let Some(i) = auth.users.iter().position(|u| &u.username == user && check_secret(&u.password, pass)) {
                return Some(Some(i));
            }
        }
        None
    }

    /// Whether `INFO` says `auth_required`: nats-server says no when a `no_auth_user` lets
    /// clients in without credentials.
    pub fn info_auth_required(&self) -> bool {
        self.auth.required() && self.auth.no_auth_user.is_none()
    }
}

/// Compares a configured secret with what the client sent. A configured value that looks like
/// a bcrypt hash is verified as one, as nats-server does (`nats-server --pass` hashes are
/// made with `nats server passwd`); plain values compare in constant time.
fn check_secret(configured: &str, given: &str) -> bool {
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
        matches!(a.authorize(&connect(json)), Admission::Admitted(_))
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
        let Admission::Admitted(Some(p)) = a.authorize(&connect("{}")) else { panic!("guest") };
        assert!(p.publish_allowed(b"x") && !p.publish_allowed(b"y"));
        assert!(matches!(a.authorize(&connect(r#"{"user":"a","pass":"pw"}"#)), Admission::Admitted(None)));
        assert!(!admitted(&a, r#"{"user":"a","pass":"bad"}"#), "credentials given are checked");
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
