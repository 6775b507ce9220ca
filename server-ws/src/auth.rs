//! Checking a client's credentials against `authorization { … }`.

use edgebus_core::proto::ConnectOptions;

use crate::options::Authorization;

/// Does this `CONNECT` satisfy the configured authorization? With nothing configured every
/// client is let in. A token and users may be configured together; either then admits.
pub fn authorize(auth: &Authorization, opts: &ConnectOptions) -> bool {
    if !auth.required() {
        return true;
    }
    if let (Some(want), Some(got)) = (&auth.token, &opts.auth_token) {
        if check_secret(want, got) {
            return true;
        }
    }
    if let (Some(user), Some(pass)) = (&opts.user, &opts.pass) {
        return auth.users.iter().any(|u| &u.username == user && check_secret(&u.password, pass));
    }
    false
}

/// Compares a configured secret with what the client sent. A configured value that looks like
/// a bcrypt hash is verified as one, as nats-server does (`nats-server --pass` hashes are
/// made with `nats server passwd`); plain values compare in constant time.
fn check_secret(configured: &str, given: &str) -> bool {
    if is_bcrypt(configured) {
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::options::User;

    fn connect(json: &str) -> ConnectOptions {
        ConnectOptions::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn token_users_and_bcrypt() {
        let hash = bcrypt::hash("pw2", 4).unwrap();
        let auth = Authorization {
            token: Some("t0k".into()),
            users: vec![User::new("a", "pw"), User::new("b", hash)],
            ..Default::default()
        };
        assert!(authorize(&auth, &connect(r#"{"auth_token":"t0k"}"#)));
        assert!(!authorize(&auth, &connect(r#"{"auth_token":"nope"}"#)));
        assert!(authorize(&auth, &connect(r#"{"user":"a","pass":"pw"}"#)));
        assert!(!authorize(&auth, &connect(r#"{"user":"a","pass":"pw2"}"#)));
        assert!(authorize(&auth, &connect(r#"{"user":"b","pass":"pw2"}"#)));
        assert!(!authorize(&auth, &connect(r#"{}"#)));
        assert!(authorize(&Authorization::default(), &connect(r#"{}"#)));
    }
}
