//! Reading `$JS.API` request bodies the way nats-server reads them.
//!
//! Go's decoder sets the rules clients have come to rely on: a nesting limit of 10,000 levels
//! (refused with its own words, checked without recursion before serde sees the body),
//! list requests that ignore a body that is not JSON at all, and enum-like fields refused as
//! invalid JSON when they hold an unknown value.

use alloc::format;
use serde_json::Value;

use super::errors::ApiError;
use crate::json::typed::{self, Fields, FromJson};

/// Refuses JSON nested deeper than Go's decoder allows, with its error text.
pub(super) fn check_depth(b: &[u8]) -> Result<(), ApiError> {
    match crate::proto::too_deep(b) {
        Some(why) => Err(ApiError::invalid_json(why)),
        None => Ok(()),
    }
}

/// An empty body and JSON `null` both mean "no options" (async-nats sends `null`).
pub(super) fn parse_body<T: FromJson + Default>(payload: &[u8]) -> Result<T, ApiError> {
    let trimmed = payload.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        return Ok(T::default());
    }
    check_depth(payload)?;
    typed::from_slice(payload).map_err(ApiError::invalid_json)
}

/// List and names requests: nats-server decodes the body only when it starts (after JSON
/// whitespace) with `{` or `[`; anything else, NUL bytes included, asks for the first page.
pub(super) fn parse_list_body<T: FromJson + Default>(payload: &[u8]) -> Result<T, ApiError> {
    let first = payload.iter().find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'));
    if !matches!(first, Some(b'{' | b'[')) {
        return Ok(T::default());
    }
    parse_body(payload)
}

/// A paging offset: nats-server reads a negative one as 0.
pub(super) fn non_negative(f: Fields<'_>, key: &str) -> typed::Result<usize> {
    let n: i64 = f.or(key, 0)?;
    Ok(usize::try_from(n.max(0)).unwrap_or(usize::MAX))
}

/// The consumer create `action`: `""`, `"create"` or `"update"`; anything else is refused as
/// Go's unmarshaller refuses it.
pub(super) fn consumer_action(action: Option<&Value>) -> Result<Option<&str>, ApiError> {
    match action {
        None => Ok(None),
        Some(Value::String(s)) if matches!(s.as_str(), "" | "create" | "update") => Ok(Some(s.as_str())),
        Some(other) => Err(ApiError::invalid_json(format!("unknown consumer action: {other}"))),
    }
}

/// The consumer `priority_policy`: one of nats-server's names, as a string.
pub(super) fn check_priority_policy(config: Option<&Value>) -> Result<(), ApiError> {
    let Some(p) = config.and_then(|c| c.get("priority_policy")) else { return Ok(()) };
    match p {
        Value::Null => Ok(()),
        Value::String(s) if matches!(s.as_str(), "" | "none" | "overflow" | "pinned_client" | "prioritized") => Ok(()),
        other => Err(ApiError::invalid_json(format!("unknown priority policy: {other}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn depth_as_go_counts_it() {
        let deep: Vec<u8> = [b"[".repeat(20_000), b"]".repeat(20_000)].concat();
        let e = check_depth(&deep).unwrap_err();
        assert!(format!("{e:?}").contains("invalid character '[' exceeded max depth at offset 10001"), "{e:?}");
        let mut obj = b"{\"a\":".to_vec();
        obj.extend(deep);
        obj.push(b'}');
        assert!(format!("{:?}", check_depth(&obj).unwrap_err()).contains("at offset 10005"));
        // brackets inside strings do not count
        let quoted: Vec<u8> = [&b"\"\\\""[..], &b"[".repeat(20_000), b"\""].concat();
        assert!(check_depth(&quoted).is_ok());
    }

    #[derive(Default)]
    struct Page {
        offset: usize,
    }

    impl FromJson for Page {
        fn from_json(v: &Value) -> typed::Result<Self> {
            Ok(Page { offset: non_negative(Fields::of(v, "struct Page")?, "offset")? })
        }
    }

    #[test]
    fn list_bodies_as_nats_server_reads_them() {
        assert_eq!(parse_list_body::<Page>(&[0u8; 100]).unwrap().offset, 0);
        assert_eq!(parse_list_body::<Page>(b"garbage").unwrap().offset, 0);
        assert_eq!(parse_list_body::<Page>(b"{\"offset\":-5}").unwrap().offset, 0);
        assert_eq!(parse_list_body::<Page>(b" {\"offset\":3}").unwrap().offset, 3);
        assert!(parse_list_body::<Page>(b"{\"offset\":").is_err());
    }

    #[test]
    fn enum_like_fields() {
        assert!(consumer_action(Some(&Value::from("bogus"))).is_err());
        assert_eq!(consumer_action(Some(&Value::from("create"))).unwrap(), Some("create"));
        let list = serde_json::json!({"priority_policy": ["pinned_client"]});
        let e = check_priority_policy(Some(&list)).unwrap_err();
        assert!(format!("{e:?}").contains(r#"unknown priority policy: [\"pinned_client\"]"#), "{e:?}");
        assert!(check_priority_policy(Some(&serde_json::json!({"priority_policy": "overflow"}))).is_ok());
    }
}
