//! `permissions { publish, subscribe, allow_responses }` blocks (a user's, and the
//! authorization block's `default_permissions`), read as nats-server's `parseUserPermissions`
//! reads them, with its error texts. What the rules mean is the core's
//! [`edgebus_core::policy::permissions`].

use edgebus_core::duration;
use edgebus_core::policy::permissions::{split_entry, PermissionsConfig, ResponseRule, SubjectRule};

use super::super::error::ConfError;
use super::super::value::{Entry, Value, ValueKind};
use super::values::*;

pub(super) fn permissions(e: &Entry) -> Result<PermissionsConfig, ConfError> {
    let ValueKind::Map(entries) = &e.value.kind else {
        return Err(invalid(e, format!("Expected permissions to be a map/struct, got {}", e.value.type_name())));
    };
    let mut p = PermissionsConfig::default();
    for pe in entries {
        match pe.key.to_ascii_lowercase().as_str() {
            "pub" | "publish" | "import" => p.publish = subject_rule(pe)?,
            "sub" | "subscribe" | "export" => p.subscribe = subject_rule(pe)?,
            "publish_allow_responses" | "allow_responses" => p.response = responses(pe)?,
            _ if pe.used_as_variable => {}
            _ => return Err(invalid(pe, format!("Unknown field {:?} parsing permissions", pe.key))),
        }
    }
    Ok(p)
}

/// A list or a single subject (allow only), or `{ allow, deny }`.
fn subject_rule(e: &Entry) -> Result<Option<SubjectRule>, ConfError> {
    let ValueKind::Map(entries) = &e.value.kind else {
        return Ok(Some(SubjectRule { allow: Some(subjects(e, &e.value)?), deny: Vec::new() }));
    };
    if entries.is_empty() {
        return Ok(None);
    }
    let mut rule = SubjectRule::default();
    for se in entries {
        match se.key.to_ascii_lowercase().as_str() {
            "allow" => rule.allow = Some(subjects(se, &se.value)?),
            "deny" => rule.deny = subjects(se, &se.value)?,
            _ if se.used_as_variable => {}
            _ => {
                return Err(invalid(
                    se,
                    format!(
                        "Unknown field name {:?} parsing subject permissions, only 'allow' or 'deny' are permitted",
                        se.key
                    ),
                ))
            }
        }
    }
    Ok(Some(rule))
}

fn subjects(e: &Entry, v: &Value) -> Result<Vec<String>, ConfError> {
    let list: Vec<String> = match &v.kind {
        ValueKind::String(s) => vec![s.clone()],
        ValueKind::Array(items) => items
            .iter()
            .map(|i| match &i.kind {
                ValueKind::String(s) => Ok(s.clone()),
                _ => Err(ConfError::value(&i.pos, &e.key, "Subject in permissions array cannot be cast to string")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                e,
                format!("Expected subject permissions to be a subject, or array of subjects, got {}", v.type_name()),
            ))
        }
    };
    for s in &list {
        split_entry(s).map_err(|bad| invalid(e, bad.to_string()))?;
    }
    Ok(list)
}

/// `allow_responses: true|false` or `{ max, expires }` (0 keeps the default, negative means
/// unlimited, as nats-server reads them).
fn responses(e: &Entry) -> Result<Option<ResponseRule>, ConfError> {
    let entries = match &e.value.kind {
        ValueKind::Bool(true) => return Ok(Some(ResponseRule::DEFAULT)),
        ValueKind::Bool(false) => return Ok(None),
        ValueKind::Map(entries) => entries,
        _ => return Err(invalid(e, "error parsing response permissions, expected a boolean or a map")),
    };
    let mut rule = ResponseRule::DEFAULT;
    for re in entries {
        match re.key.to_ascii_lowercase().as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => {
                let n = integer(re)?;
                if n != 0 {
                    rule.max_msgs = n;
                }
            }
            "expires" | "expiration" | "ttl" => {
                let ValueKind::String(text) = &re.value.kind else {
                    return Err(invalid(re, "error parsing expires, not a duration string"));
                };
                // negative: no expiry (Go's durations are signed, the core's reader is not)
                let magnitude = text.strip_prefix('-');
                let ns = duration::parse(magnitude.unwrap_or(text))
                    .map_err(|why| invalid(re, format!("error parsing expires: {why}")))?;
                if ns != 0 {
                    rule.expires_ns = if magnitude.is_some() { -1 } else { i64::try_from(ns).unwrap_or(i64::MAX) };
                }
            }
            _ if re.used_as_variable => {}
            _ => return Err(invalid(re, format!("Unknown field {:?} parsing permissions", re.key))),
        }
    }
    Ok(Some(rule))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::tests::*;

    #[test]
    fn user_and_default_permissions() {
        let o = ok(concat!(
            "authorization {\n default_permissions: { publish: [\"pub.>\"], subscribe: { deny: \"x\" } }\n",
            " users: [\n  {user: a, password: p, permissions: { publish: { allow: [\"a.*\", \"b\"], deny: a.no },",
            " subscribe: [\"s.* q\"], allow_responses: { max: 3, expires: \"1s\" } }}\n",
            "  {user: b, password: p}\n ]\n}\n"
        ));
        let users = &o.authorization.users;
        let a = users[0].permissions.as_ref().unwrap();
        let pubr = a.publish.as_ref().unwrap();
        assert_eq!(pubr.allow.as_deref(), Some(&["a.*".to_string(), "b".to_string()][..]));
        assert_eq!(pubr.deny, vec!["a.no".to_string()]);
        assert_eq!(a.subscribe.as_ref().unwrap().allow.as_deref(), Some(&["s.* q".to_string()][..]));
        let r = a.response.unwrap();
        assert_eq!((r.max_msgs, r.expires_ns), (3, 1_000_000_000));
        let b = users[1].permissions.as_ref().unwrap();
        assert_eq!(b.subscribe.as_ref().unwrap().deny, vec!["x".to_string()], "default permissions apply");
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn permission_errors_name_the_place() {
        let e = err("authorization { users: [ {user: a, permissions: { publish: \"a b c\" }} ] }");
        assert!(e.contains("t.conf:1:") && e.contains("subject \"a b c\" is not a valid subject"), "{e}");
        let e = err("authorization { users: [ {user: a, permissions: { publish: { allow: x, bogus: 1 } }} ] }");
        assert!(e.contains("Unknown field name \"bogus\" parsing subject permissions"), "{e}");
        let e = err("authorization { users: [ {user: a, permissions: { pub: x, other: 1 }} ] }");
        assert!(e.contains("Unknown field \"other\" parsing permissions"), "{e}");
        assert!(err("authorization { users: [ {user: a, permissions: { allow_responses: 1 }} ] }")
            .contains("expected a boolean or a map"));
        assert!(err("authorization { users: [ {user: a, permissions: x} ] }")
            .contains("Expected permissions to be a map/struct"));
    }
}
