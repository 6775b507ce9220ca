//! nkey users: a client proves it holds the private half of a configured public nkey by
//! signing the nonce the server put in its `INFO` (Ed25519), as nats-server checks it.

use std::sync::Arc;

use edgebus_core::policy::permissions::Permissions;
use nkeys::{KeyPair, KeyPairType};

/// Raw bytes of a nonce: nats-server's `nonceRawLen`, 15 characters once encoded.
const NONCE_RAW_LEN: usize = 11;

/// A fresh nonce for one connection's `INFO`: random bytes from the OS, base64url without
/// padding (the form nats-server sends; clients sign the text as given).
pub fn new_nonce() -> String {
    let mut raw = [0u8; NONCE_RAW_LEN];
    if getrandom::getrandom(&mut raw).is_err() {
        // No OS randomness means no unpredictable nonce; an empty one fails every signature
        // check in `verify_signature` rather than accepting a replayable signature.
        return String::new();
    }
    data_encoding::BASE64URL_NOPAD.encode(&raw)
}

/// Whether `key` is a public nkey of a user (`U…`), as `users: [ { nkey } ]` requires.
pub fn is_user_key(key: &str) -> bool {
    key.starts_with('U') && KeyPair::from_public_key(key).is_ok_and(|k| k.key_pair_type() == KeyPairType::User)
}

/// Whether `sig` (base64url, or standard base64 as nats-server falls back to) is the Ed25519
/// signature of `nonce` by the public nkey `key`.
pub fn verify_signature(key: &str, sig: &str, nonce: &str) -> bool {
    if nonce.is_empty() {
        return false;
    }
    let decoded =
        data_encoding::BASE64URL_NOPAD.decode(sig.as_bytes()).or_else(|_| data_encoding::BASE64.decode(sig.as_bytes()));
    let (Ok(sig), Ok(public)) = (decoded, KeyPair::from_public_key(key)) else {
        return false;
    };
    public.verify(nonce.as_bytes(), &sig).is_ok()
}

/// Whether `seed` is a user's nkey seed (`SU…`), as a `.creds` file holds.
pub fn is_user_seed(seed: &str) -> bool {
    KeyPair::from_seed(seed).is_ok_and(|k| k.key_pair_type() == KeyPairType::User)
}

/// The signature a client (or a leaf dialling a hub) sends for `nonce`: Ed25519 by the nkey
/// `seed`, base64url without padding, the form [`verify_signature`] reads first.
pub fn sign_nonce(seed: &str, nonce: &str) -> Option<String> {
    let key = KeyPair::from_seed(seed).ok()?;
    let sig = key.sign(nonce.as_bytes()).ok()?;
    Some(data_encoding::BASE64URL_NOPAD.encode(&sig))
}

/// The public key (`U…`) of a user's nkey seed, which a leaf `CONNECT` names beside its
/// signature.
pub fn public_key(seed: &str) -> Option<String> {
    KeyPair::from_seed(seed).ok().map(|k| k.public_key())
}

/// One configured nkey user: its public key, compiled permissions and account (`None`: `$G`).
pub(super) type NkeyEntry = (String, Option<Arc<Permissions>>, Option<String>);

/// The configured nkey users with their compiled permissions.
pub(super) struct NkeyUsers {
    users: Vec<NkeyEntry>,
}

impl NkeyUsers {
    pub(super) fn new(users: Vec<NkeyEntry>) -> NkeyUsers {
        NkeyUsers { users }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user with public key `key`: its permissions and account.
    pub(super) fn find(&self, key: &str) -> Option<(&Option<Arc<Permissions>>, Option<&str>)> {
        self.users.iter().find(|(k, _, _)| k == key).map(|(_, p, a)| (p, a.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signatures_of_the_nonce() {
        let user = KeyPair::new_user();
        let nonce = new_nonce();
        assert_eq!(nonce.len(), 15);
        assert_ne!(nonce, new_nonce());
        let sig = user.sign(nonce.as_bytes()).unwrap();
        let url = data_encoding::BASE64URL_NOPAD.encode(&sig);
        let std = data_encoding::BASE64.encode(&sig);
        assert!(verify_signature(&user.public_key(), &url, &nonce));
        assert!(verify_signature(&user.public_key(), &std, &nonce), "standard base64 is accepted too");
        assert!(!verify_signature(&user.public_key(), &url, "another-nonce.."));
        assert!(!verify_signature(&KeyPair::new_user().public_key(), &url, &nonce));
        assert!(!verify_signature(&user.public_key(), "not base64!", &nonce));
        assert!(!verify_signature(&user.public_key(), "", &nonce));
        assert!(!verify_signature("UBAD", &url, &nonce));
        assert!(!verify_signature(&user.public_key(), &url, ""));
    }

    #[test]
    fn user_keys() {
        assert!(is_user_key(&KeyPair::new_user().public_key()));
        assert!(!is_user_key(&KeyPair::new_account().public_key()));
        assert!(!is_user_key("UABC"));
        assert!(!is_user_key(&KeyPair::new_user().seed().unwrap()));
    }
}
