//! The rules of accounts that do not depend on a host's data structures, as nats-server 2.14
//! applies them (`server/accounts.go`): which import an export authorizes, how an import maps
//! a subject from one account's subject space into another's, and the one-shot reply
//! subjects (`_R_.…`) that carry a service's answer back to the account that asked.
//!
//! Accounts are separate subject spaces: a message published in one reaches only the
//! subscribers of that account, unless an export of it is imported by another. A *stream*
//! import forwards what the exporter publishes on the subject to the importer (under a prefix
//! or a `to` subject); a *service* import forwards what the importer publishes on its local
//! subject to the exporter, with the reply subject replaced by a fresh `_R_.` one that the
//! exporter's responder answers on, and that answer is forwarded back to the original reply
//! subject in the importer.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use hashbrown::HashMap;

use crate::subject::{self, tokens, FWC, PWC, SEP};

/// The name of the account of clients outside any configured account (nats-server's `$G`).
pub const GLOBAL_ACCOUNT: &str = "$G";

/// The prefix of the reply subjects a service import gives the requests it forwards.
pub const RESPONSE_PREFIX: &[u8] = b"_R_.";

/// How long a service import's reply subject waits for its answer (nats-server's default
/// `response_threshold`, 2 minutes), in nanoseconds.
pub const RESPONSE_THRESHOLD_NS: u64 = 120_000_000_000;

/// Why an export, import or subject mapping was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountRuleError {
    /// The subject is not a valid subscription subject.
    Subject(subject::SubjectError),
    /// A stream import's prefix contains wildcards (nats-server's wording).
    PrefixWildcard,
    /// The `to` subject does not have the wildcards of the imported subject, in order.
    WildcardsDiffer,
}

impl fmt::Display for AccountRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountRuleError::Subject(e) => write!(f, "invalid subject: {e}"),
            AccountRuleError::PrefixWildcard => f.write_str("stream import prefix can not contain wildcard tokens"),
            AccountRuleError::WildcardsDiffer => {
                f.write_str("the mapped subject must have the wildcards of the imported subject, in the same order")
            }
        }
    }
}

/// An export: a subject (wildcards allowed) another account may import, by every account or
/// only by those listed (a private export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub subject: String,
    /// `accounts: [...]`; `None`: public.
    pub accounts: Option<Vec<String>>,
}

impl Export {
    /// Does this export let `importer` import `subject`? The imported subject must lie within
    /// the exported one (nats-server's `checkStreamImportAuthorized` / service variant).
    pub fn authorizes(&self, importer: &str, subject: &[u8]) -> bool {
        let listed = self.accounts.as_ref().is_none_or(|list| list.iter().any(|a| a == importer));
        listed && subject::is_subset(subject, self.subject.as_bytes())
    }
}

/// Rewrites subjects matched by `from` into `to`: each wildcard of `from` captures the
/// token(s) it matched, and `to`'s wildcards take them in the same order (nats-server maps an
/// import's wildcards implicitly this way). A literal `from` maps to a literal `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectMap {
    from: Vec<u8>,
    to: Vec<u8>,
}

impl SubjectMap {
    /// A map from `from` to `to`, both valid subscription subjects with the same wildcards.
    pub fn new(from: &str, to: &str) -> Result<SubjectMap, AccountRuleError> {
        let (from, to) = (from.as_bytes(), to.as_bytes());
        subject::validate_subscribe(from).map_err(AccountRuleError::Subject)?;
        subject::validate_subscribe(to).map_err(AccountRuleError::Subject)?;
        let wild = |s: &[u8]| tokens(s).filter(|t| *t == [PWC] || *t == [FWC]).map(|t| t[0]).collect::<Vec<u8>>();
        if wild(from) != wild(to) {
            return Err(AccountRuleError::WildcardsDiffer);
        }
        Ok(SubjectMap { from: from.to_vec(), to: to.to_vec() })
    }

    /// The identity map of `subject`.
    pub fn same(subject: &str) -> Result<SubjectMap, AccountRuleError> {
        SubjectMap::new(subject, subject)
    }

    /// A stream import's `prefix`: `from` mapped to `prefix.from` (the prefix must be literal).
    pub fn prefixed(from: &str, prefix: &str) -> Result<SubjectMap, AccountRuleError> {
        if subject::has_wildcard(prefix.as_bytes()) {
            return Err(AccountRuleError::PrefixWildcard);
        }
        let mut to = String::from(prefix);
        if !to.ends_with(SEP as char) {
            to.push(SEP as char);
        }
        to.push_str(from);
        SubjectMap::new(from, &to)
    }

    /// The subjects this map accepts.
    pub fn from(&self) -> &[u8] {
        &self.from
    }

    /// The subject (pattern) this map produces.
    pub fn to(&self) -> &[u8] {
        &self.to
    }

    /// Writes the mapped form of `subject` into `out` (cleared first); false when `from` does
    /// not match it.
    pub fn map(&self, subject: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        if !subject::matches(&self.from, subject) {
            return false;
        }
        if self.from == self.to {
            out.extend_from_slice(subject);
            return true;
        }
        // what each wildcard of `from` matched, as byte ranges of `subject`
        let mut captures: Vec<(usize, usize)> = Vec::new();
        let mut at = 0;
        let mut st = tokens(subject);
        for p in tokens(&self.from) {
            if p == [FWC] {
                captures.push((at, subject.len()));
                break;
            }
            let Some(t) = st.next() else { return false };
            if p == [PWC] {
                captures.push((at, at + t.len()));
            }
            at += t.len() + 1;
        }
        let mut next = captures.into_iter();
        for (i, t) in tokens(&self.to).enumerate() {
            if i > 0 {
                out.push(SEP);
            }
            if t == [PWC] || t == [FWC] {
                let Some((a, b)) = next.next() else { return false };
                out.extend_from_slice(&subject[a..b]);
            } else {
                out.extend_from_slice(t);
            }
        }
        true
    }
}

/// The header nats-server adds to a request forwarded by a service import, naming the
/// importing account, so the service can tell its callers apart.
pub const REQUEST_INFO_HEADER: &str = "Nats-Request-Info";

/// Writes into `out` the forwarded form of a request from account `importer`: its headers
/// (if any) plus [`REQUEST_INFO_HEADER`] `{"acc":"<importer>"}`, then its payload. Returns
/// the new header length. `header_len` is the request's (`None`: no headers).
pub fn with_request_info(importer: &str, header_len: Option<usize>, message: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    let (headers, payload) = match header_len {
        // the header block ends with an empty line; the new line goes before it
        Some(h) if h >= 4 && h <= message.len() && message[..h].ends_with(b"\r\n\r\n") => {
            (&message[..h - 2], &message[h..])
        }
        _ => (&b"NATS/1.0\r\n"[..], message),
    };
    out.extend_from_slice(headers);
    out.extend_from_slice(REQUEST_INFO_HEADER.as_bytes());
    out.extend_from_slice(b": ");
    crate::json::Object::new(out).str("acc", importer).end();
    out.extend_from_slice(b"\r\n\r\n");
    let len = out.len();
    out.extend_from_slice(payload);
    len
}

/// Is `subject` a reply subject a service import made (so a publish on it may be an answer
/// to forward)?
pub fn is_response_subject(subject: &[u8]) -> bool {
    subject.starts_with(RESPONSE_PREFIX)
}

/// The reply subjects of forwarded service requests still waiting for their answer, each
/// with where the answer goes (`T`, the host's choice). Singleton responses: an answer is
/// forwarded once and the entry is gone. Entries expire after
/// [`RESPONSE_THRESHOLD_NS`] and the table is bounded, so requests nobody answers cannot
/// make it grow without end.
pub struct Responses<T> {
    waiting: HashMap<Vec<u8>, (T, u64)>,
    /// The capacity past which expired entries are swept, then the oldest dropped.
    max: usize,
}

impl<T> Responses<T> {
    pub fn new(max: usize) -> Responses<T> {
        Responses { waiting: HashMap::new(), max: max.max(1) }
    }

    /// Remembers that an answer on `reply` goes to `to`, until `now` + the threshold.
    pub fn insert(&mut self, reply: Vec<u8>, to: T, now: u64) {
        if self.waiting.len() >= self.max {
            self.waiting.retain(|_, (_, expires)| *expires > now);
            if self.waiting.len() >= self.max {
                let oldest = self.waiting.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.waiting.remove(&k);
                }
            }
        }
        self.waiting.insert(reply, (to, now.saturating_add(RESPONSE_THRESHOLD_NS)));
    }

    /// Where the answer on `reply` goes, once: the entry is removed.
    pub fn take(&mut self, reply: &[u8], now: u64) -> Option<T> {
        let (to, expires) = self.waiting.remove(reply)?;
        (expires > now).then_some(to)
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::vec;

    fn mapped(m: &SubjectMap, s: &str) -> Option<String> {
        let mut out = Vec::new();
        m.map(s.as_bytes(), &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn exports_authorize_subsets_for_listed_accounts() {
        let public = Export { subject: "pub.>".into(), accounts: None };
        assert!(public.authorizes("B", b"pub.>"));
        assert!(public.authorizes("B", b"pub.x.*"));
        assert!(!public.authorizes("B", b"pub"));
        assert!(!public.authorizes("B", b">"));
        let private = Export { subject: "priv.*".into(), accounts: Some(vec!["C".into()]) };
        assert!(private.authorizes("C", b"priv.a"));
        assert!(!private.authorizes("B", b"priv.a"), "not listed");
    }

    #[test]
    fn maps_prefix_to_and_wildcards_in_order() {
        let p = SubjectMap::prefixed("pub.>", "from_a").unwrap();
        assert_eq!(mapped(&p, "pub.x.y").as_deref(), Some("from_a.pub.x.y"));
        assert_eq!(mapped(&p, "other.x"), None);
        assert_eq!(SubjectMap::prefixed("pub.>", "a.*"), Err(AccountRuleError::PrefixWildcard));
        let t = SubjectMap::new("svc.*.in.>", "local.*.>").unwrap();
        assert_eq!(mapped(&t, "svc.a.in.b.c").as_deref(), Some("local.a.b.c"));
        let lit = SubjectMap::new("svc.x", "local.svc").unwrap();
        assert_eq!(mapped(&lit, "svc.x").as_deref(), Some("local.svc"));
        assert_eq!(mapped(&lit, "svc.y"), None);
        assert_eq!(SubjectMap::new("a.*", "b.>"), Err(AccountRuleError::WildcardsDiffer));
        assert_eq!(SubjectMap::new("a.*", "b"), Err(AccountRuleError::WildcardsDiffer));
        assert!(matches!(SubjectMap::new("a..b", "b"), Err(AccountRuleError::Subject(_))));
        let same = SubjectMap::same("x.>").unwrap();
        assert_eq!(mapped(&same, "x.1").as_deref(), Some("x.1"));
    }

    #[test]
    fn responses_are_one_shot_expire_and_stay_bounded() {
        let mut r = Responses::new(2);
        r.insert(b"_R_.a".to_vec(), 1, 0);
        assert_eq!(r.take(b"_R_.a", 10), Some(1));
        assert_eq!(r.take(b"_R_.a", 10), None, "singleton: answered once");
        r.insert(b"_R_.b".to_vec(), 2, 0);
        assert_eq!(r.take(b"_R_.b", RESPONSE_THRESHOLD_NS), None, "expired");
        r.insert(b"_R_.c".to_vec(), 3, 0);
        r.insert(b"_R_.d".to_vec(), 4, 1);
        r.insert(b"_R_.e".to_vec(), 5, 2);
        assert_eq!(r.len(), 2);
        assert_eq!(r.take(b"_R_.c", 3), None, "the oldest made room");
        assert!(is_response_subject(b"_R_.e") && !is_response_subject(b"_INBOX.x"));
    }

    #[test]
    fn request_info_is_added_to_the_headers() {
        let mut out = Vec::new();
        let h = with_request_info("B", None, b"hi", &mut out);
        assert_eq!(out, b"NATS/1.0\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\nhi");
        assert_eq!(&out[h..], b"hi");
        let msg = b"NATS/1.0\r\nX: 1\r\n\r\npay";
        let h = with_request_info("B", Some(msg.len() - 3), msg, &mut out);
        assert_eq!(out, b"NATS/1.0\r\nX: 1\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\npay");
        assert_eq!(&out[h..], b"pay");
    }
}
