//! `tls { verify_and_map: true }`: the verified client certificate names the user, as
//! nats-server's `checkClientTLSCertSubject` finds it. Tried in order: the certificate's
//! email addresses, DNS names and URIs (subject alternative names) as user names, then the
//! subject as a distinguished name (a user name such as `CN=app, O=Acme` matches the same
//! attributes in any order), then the subject written as Go's `RDNSequence.String()`
//! (`CN=app,O=Acme,C=US`).

use std::fmt::Write as _;

use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// Short names Go's `pkix` prints (`attributeTypeNames`); any other attribute is printed as
/// its OID and the hex of its DER value, and cannot be matched by name.
const PKIX_NAMES: &[(&str, &str)] = &[
    ("2.5.4.6", "C"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
];

/// nats-server's distinguished-name reader knows the domain component as well.
const DOMAIN_COMPONENT: &str = "0.9.2342.19200300.100.1.25";

/// One relative distinguished name: its attributes (type in upper case, value).
type Rdn = Vec<(String, String)>;

/// What a client certificate offers to name its user, read once per connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertNames {
    /// Emails, then DNS names, then URIs, as nats-server tries them.
    alt_names: Vec<String>,
    /// The subject, last RDN first as it is written; `None` when an attribute has a type
    /// nats-server's DN reader does not know (it then skips DN matching).
    dn: Option<Vec<Rdn>>,
    /// The subject as Go's `RDNSequence.String()` writes it.
    rdn_string: String,
}

impl CertNames {
    /// Reads the names of a DER certificate; `None` when it does not parse (it was
    /// verified already, so that does not happen with a real handshake).
    pub fn from_der(der: &[u8]) -> Option<CertNames> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        let (mut emails, mut dns, mut uris) = (Vec::new(), Vec::new(), Vec::new());
        for ext in tbs.extensions.iter().flatten().filter(|e| e.extn_id == SUBJECT_ALT_NAME) {
            let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else { continue };
            for name in san.0 {
                match name {
                    GeneralName::Rfc822Name(s) => emails.push(s.to_string()),
                    GeneralName::DnsName(s) => dns.push(s.to_string()),
                    GeneralName::UniformResourceIdentifier(s) => uris.push(s.to_string()),
                    _ => {}
                }
            }
        }
        let mut rdn_string = String::new();
        let mut dn = Some(Vec::new());
        for rdn in tbs.subject.0.iter().rev() {
            if !rdn_string.is_empty() {
                rdn_string.push(',');
            }
            let mut attrs = Vec::new();
            for (i, atv) in rdn.0.iter().enumerate() {
                if i > 0 {
                    rdn_string.push('+');
                }
                let oid = atv.oid.to_string();
                let name = PKIX_NAMES.iter().find(|(o, _)| *o == oid).map(|(_, n)| *n);
                let value = text(atv.value.tag(), atv.value.value());
                match (name, &value) {
                    (Some(name), Some(v)) => {
                        let _ = write!(rdn_string, "{name}={}", escape(v));
                    }
                    _ => {
                        let der = atv.value.to_der().unwrap_or_default();
                        let _ = write!(rdn_string, "{oid}=#{}", hex(&der));
                    }
                }
                let dn_name = name.or((oid == DOMAIN_COMPONENT).then_some("DC"));
                match (dn_name, value) {
                    (Some(n), Some(v)) => attrs.push((n.to_string(), v)),
                    _ => dn = None,
                }
            }
            if let Some(dn) = &mut dn {
                dn.push(attrs);
            }
        }
        emails.extend(dns);
        emails.extend(uris);
        Some(CertNames { alt_names: emails, dn, rdn_string })
    }

    /// The first of `users` (user names) this certificate names, in nats-server's order.
    pub fn find<'u>(&self, users: impl Iterator<Item = &'u str> + Clone) -> Option<&'u str> {
        let exact = |want: &str| users.clone().find(|u| *u == want);
        if let Some(u) = self.alt_names.iter().find_map(|n| exact(n)) {
            return Some(u);
        }
        if let Some(dn) = &self.dn {
            let parsed = users.clone().filter_map(|u| Some((u, parse_dn(u)?)));
            if let Some((u, _)) = parsed.clone().find(|(_, d)| d == dn) {
                return Some(u);
            }
            if let Some((u, _)) = parsed.clone().find(|(_, d)| same_rdns(d, dn)) {
                return Some(u);
            }
        }
        exact(&self.rdn_string)
    }
}

/// The text of a directory string value (the string types Go's `asn1` reads as strings).
fn text(tag: Tag, value: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(value).ok().map(str::to_string)
        }
        // T61: Go reads it byte for byte as Latin-1
        Tag::TeletexString => Some(value.iter().map(|b| char::from(*b)).collect()),
        _ => None,
    }
}

/// Go's escaping in `RDNSequence.String()`.
fn escape(v: &str) -> String {
    let last = v.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let esc = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => i == 0 || i == last,
            '#' => i == 0,
            _ => false,
        };
        if esc {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A user name read as an RFC 4514 distinguished name (`CN=a, O=b+OU=c`); `None` when it is
/// not one. Types compare without case; values as written, once unescaped.
fn parse_dn(s: &str) -> Option<Vec<Rdn>> {
    let mut rdns = Vec::new();
    for rdn in split_unescaped(s, &[',', ';']) {
        let mut attrs = Vec::new();
        for atv in split_unescaped(&rdn, &['+']) {
            let (ty, value) = atv.split_once('=')?;
            let ty = ty.trim();
            if ty.is_empty() || !ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
                return None;
            }
            attrs.push((ty.to_ascii_uppercase(), unescape(value.trim())?));
        }
        rdns.push(attrs);
    }
    (!rdns.is_empty()).then_some(rdns)
}

/// Splits at separators not escaped by a backslash (escapes are kept for [`unescape`]).
fn split_unescaped(s: &str, seps: &[char]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            part.push(c);
            if let Some(n) = chars.next() {
                part.push(n);
            }
        } else if seps.contains(&c) {
            parts.push(std::mem::take(&mut part));
        } else {
            part.push(c);
        }
    }
    parts.push(part);
    parts
}

/// RFC 4514 unescaping: `\,` and friends, and `\2C` hex pairs.
fn unescape(v: &str) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let next = *bytes.get(i + 1)?;
        let pair = bytes.get(i + 1..i + 3).and_then(|p| std::str::from_utf8(p).ok());
        match pair.and_then(|p| u8::from_str_radix(p, 16).ok()) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(next);
                i += 2;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Every RDN of `a` is in `b` and the other way round, in any order (nats-server's
/// `RDNsMatch`, for a DN written in another order than the certificate's).
fn same_rdns(a: &[Rdn], b: &[Rdn]) -> bool {
    let same = |x: &Rdn, y: &Rdn| x.len() == y.len() && x.iter().all(|attr| y.contains(attr));
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| same(x, y)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn distinguished_names() {
        let dn = parse_dn("CN=app, O=Acme\\, Inc.+OU=ops;C=US").unwrap();
        assert_eq!(
            dn,
            vec![
                vec![("CN".into(), "app".into())],
                vec![("O".into(), "Acme, Inc.".into()), ("OU".into(), "ops".into())],
                vec![("C".into(), "US".into())],
            ]
        );
        assert_eq!(parse_dn("cn=a\\2Cb").unwrap(), vec![vec![("CN".into(), "a,b".into())]]);
        assert!(parse_dn("alice").is_none());
        assert!(parse_dn("a b=c").is_none());
        let reordered = parse_dn("C=US, O=Acme\\, Inc.+OU=ops, CN=app").unwrap();
        assert!(reordered != dn && same_rdns(&reordered, &dn));
        assert!(!same_rdns(&parse_dn("CN=app").unwrap(), &dn));
    }

    #[test]
    fn go_escaping() {
        assert_eq!(escape(" a,b+c "), "\\ a\\,b\\+c\\ ");
        assert_eq!(escape("#x#"), "\\#x#");
        assert_eq!(hex(&[0x16, 0x0a]), "160a");
    }

    #[test]
    fn lookup_order() {
        let names = CertNames {
            alt_names: vec!["a@x.example".into(), "host.example".into()],
            dn: Some(parse_dn("CN=app,O=Acme").unwrap()),
            rdn_string: "CN=app,O=Acme".into(),
        };
        let users = ["O=Acme, CN=app", "host.example", "a@x.example"];
        assert_eq!(names.find(users.iter().copied()), Some("a@x.example"));
        assert_eq!(names.find(users[..2].iter().copied()), Some("host.example"));
        assert_eq!(names.find(users[..1].iter().copied()), Some("O=Acme, CN=app"));
        assert_eq!(names.find(["CN=app,O=Acme"].into_iter()), Some("CN=app,O=Acme"));
        assert_eq!(names.find(["CN=other"].into_iter()), None);
    }
}
