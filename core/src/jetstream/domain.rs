//! JetStream domains: a server with `jetstream { domain: "edge" }` also answers its API under
//! `$JS.edge.API.>`, so a client elsewhere in a leaf-node topology can say which JetStream it
//! means (`nc.jetstream(domain="edge")`). nats-server maps a fixed table of that prefix onto
//! the plain API (`generateJSMappingTable`); KV and object-store puts, which have subjects of
//! their own, come as `$JS.edge.API.$KV.…` / `$OBJ.…` and are stored as `$KV.…` / `$OBJ.…`.

use alloc::format;
use alloc::string::String;

use super::{JetStream, SubChange};
use crate::subject;

impl JetStream {
    /// Serves the API under `domain`'s prefix too, and names the domain in acks and infos
    /// (the name was checked with [`validate`] when the host read its configuration).
    pub fn set_domain(&mut self, domain: &str) {
        self.subs.extend(api_subjects(domain).map(SubChange::Add));
        self.domain = Some(domain.into());
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }
}

/// Names the domain in an API answer (account and stream infos), when there is one.
pub(super) trait WithDomain {
    fn with_domain(self, domain: Option<&str>) -> Self;
}

impl WithDomain for serde_json::Value {
    fn with_domain(mut self, domain: Option<&str>) -> Self {
        if let (Some(d), serde_json::Value::Object(m)) = (domain, &mut self) {
            m.insert("domain".into(), serde_json::Value::String(d.into()));
        }
        self
    }
}

/// What a subject under a domain's API prefix stands for.
#[derive(Debug, PartialEq, Eq)]
pub enum Mapped<'a> {
    /// A request to the plain API; the part after `$JS.API.`.
    Api(&'a [u8]),
    /// A publish to be stored under this subject (`$KV.…`, `$OBJ.…`).
    Publish(&'a [u8]),
}

/// The API families nats-server maps from a domain prefix (its table: `INFO` exactly, the rest
/// with everything below them).
const API_FAMILIES: [&str; 6] = ["STREAM.", "CONSUMER.", "DIRECT.", "META.", "SERVER.", "ACCOUNT."];

/// The subject spaces of KV and object-store puts, mapped onto themselves.
const STORE_FAMILIES: [&str; 2] = ["$KV.", "$OBJ."];

/// The subjects the engine listens on for `domain`: exactly the mapped ones, so a request
/// outside the table gets "no responders", as from nats-server.
pub fn api_subjects(domain: &str) -> impl Iterator<Item = String> + '_ {
    let wide = API_FAMILIES.iter().chain(STORE_FAMILIES.iter()).map(move |f| format!("$JS.{domain}.API.{f}>"));
    core::iter::once(format!("$JS.{domain}.API.INFO")).chain(wide)
}

/// Maps `subject` when it is under `domain`'s API prefix and in nats-server's table; `None`
/// otherwise (such a request goes unanswered, as it finds no mapping there either).
pub fn map<'a>(domain: &str, subject: &'a [u8]) -> Option<Mapped<'a>> {
    let rest = subject.strip_prefix(b"$JS.")?.strip_prefix(domain.as_bytes())?.strip_prefix(b".API.")?;
    let under = |f: &&str| rest.starts_with(f.as_bytes()) && rest.len() > f.len();
    if rest == b"INFO" || API_FAMILIES.iter().any(under) {
        return Some(Mapped::Api(rest));
    }
    if STORE_FAMILIES.iter().any(under) {
        return Some(Mapped::Publish(rest));
    }
    None
}

/// nats-server's start-up check of a domain name, in its words.
pub fn validate(domain: &str) -> Result<(), String> {
    let api = format!("$JS.{domain}.API.>");
    if subject::validate_subscribe(api.as_bytes()).is_err() {
        return Err(format!("invalid domain name: derived {api:?} is not a valid subject"));
    }
    if domain.contains(['.', '*', '>']) {
        return Err("invalid domain name: may not contain ., * or >".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn maps_nats_servers_table() {
        assert_eq!(map("edge", b"$JS.edge.API.INFO"), Some(Mapped::Api(b"INFO")));
        assert_eq!(map("edge", b"$JS.edge.API.STREAM.CREATE.S"), Some(Mapped::Api(b"STREAM.CREATE.S")));
        assert_eq!(map("edge", b"$JS.edge.API.CONSUMER.MSG.NEXT.S.c"), Some(Mapped::Api(b"CONSUMER.MSG.NEXT.S.c")));
        assert_eq!(map("edge", b"$JS.edge.API.$KV.b.k"), Some(Mapped::Publish(b"$KV.b.k")));
        assert_eq!(map("edge", b"$JS.edge.API.$OBJ.b.C.x"), Some(Mapped::Publish(b"$OBJ.b.C.x")));
        // not in the table, another domain, the plain API
        assert_eq!(map("edge", b"$JS.edge.API.INFO.x"), None);
        assert_eq!(map("edge", b"$JS.edge.API.BOGUS.x"), None);
        assert_eq!(map("edge", b"$JS.edge.API.STREAM."), None);
        assert_eq!(map("edge", b"$JS.hub.API.INFO"), None);
        assert_eq!(map("edge", b"$JS.edgex.API.INFO"), None);
        assert_eq!(map("edge", b"$JS.API.INFO"), None);
    }

    #[test]
    fn listens_on_the_table_only() {
        let subs: alloc::vec::Vec<String> = api_subjects("edge").collect();
        assert_eq!(subs.len(), 9);
        assert_eq!(subs[0], "$JS.edge.API.INFO");
        assert!(subs.contains(&"$JS.edge.API.STREAM.>".into()));
        assert!(subs.contains(&"$JS.edge.API.$KV.>".into()));
    }

    #[test]
    fn validates_names_as_nats_server() {
        assert!(validate("edge").is_ok());
        assert_eq!(validate("a.b").unwrap_err(), "invalid domain name: may not contain ., * or >");
        assert_eq!(
            validate("a b").unwrap_err(),
            "invalid domain name: derived \"$JS.a b.API.>\" is not a valid subject"
        );
        assert!(validate("*").is_err());
    }
}
