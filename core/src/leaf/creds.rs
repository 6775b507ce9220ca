//! A `.creds` file (what `nsc` writes and `credentials:` names): a user JWT and the user's
//! nkey seed, each between a `-----BEGIN …-----` and an `------END …------` line. The leaf
//! `CONNECT` carries the JWT and the hub's nonce signed with the seed.

use alloc::string::{String, ToString};

/// The two parts of a `.creds` file.
#[derive(Clone, PartialEq, Eq)]
pub struct Creds {
    pub jwt: String,
    /// The user's nkey seed (`SU…`), secret.
    pub seed: String,
}

impl core::fmt::Debug for Creds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // the seed is a secret: never in a log line
        f.debug_struct("Creds").field("jwt", &self.jwt).field("seed", &"…").finish()
    }
}

/// What is missing from a `.creds` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredsError {
    NoJwt,
    NoSeed,
}

impl core::fmt::Display for CredsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CredsError::NoJwt => "no user JWT (-----BEGIN NATS USER JWT-----) found",
            CredsError::NoSeed => "no user nkey seed (-----BEGIN USER NKEY SEED-----) found",
        })
    }
}

/// Reads a `.creds` file: the first block holds the JWT, the second the seed, as nats-server
/// and the clients read them (by order, whatever the banner says). Text outside the blocks
/// (the warning `nsc` writes between them) is skipped.
pub fn parse_creds(text: &str) -> Result<Creds, CredsError> {
    let mut bodies = text.lines().map(str::trim).scan(false, |opened, line| {
        let body = (*opened && !line.is_empty() && !is_banner(line)).then(|| line.to_string());
        if is_banner(line) {
            *opened = line.contains("BEGIN");
        } else if body.is_some() {
            *opened = false;
        }
        Some(body)
    });
    let mut next = || bodies.by_ref().flatten().next();
    let jwt = next().ok_or(CredsError::NoJwt)?;
    let seed = next().ok_or(CredsError::NoSeed)?;
    Ok(Creds { jwt, seed })
}

/// A `---…---` line that opens (or closes) a block.
fn is_banner(line: &str) -> bool {
    line.len() >= 6 && line.starts_with("---") && line.ends_with("---")
}
