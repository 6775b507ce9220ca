#![allow(clippy::unwrap_used)]

use super::*;
use alloc::string::String;
use alloc::vec::Vec;

/// The reader accepts exactly what serde_json accepts, on valid and broken texts alike.
#[test]
fn validity_matches_serde_json() {
    let cases = [
        "{}",
        "[]",
        " {\"a\" : [1, -2.5e+3, true, false, null, \"x\\u00e9\\n\"], \"b\": {\"c\": {}}} ",
        "[[[[]]], {}, [{}]]",
        "0",
        "-0",
        "\"\\ud83d\\ude00\"",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "{\"a\" 1}",
        "{a:1}",
        "01",
        "1.",
        "1e",
        "-",
        ".5",
        "\"\\x\"",
        "\"tab\there\"",
        "\"unterminated",
        "[",
        "{\"a\":1",
        "tru",
        "nul",
        "{} {}",
        "[1]]",
        "{\"a\":[}",
        "",
        "  ",
    ];
    for c in cases {
        let serde_ok = serde_json::from_str::<serde::de::IgnoredAny>(c).is_ok();
        assert_eq!(is_valid(c), serde_ok, "{c:?}");
    }
    let deep = "[".repeat(50_000) + &"]".repeat(50_000);
    assert!(is_valid(&deep));
    assert!(!is_valid(&("[".repeat(50_000) + &"]".repeat(49_999))));
}

#[test]
fn typed_values() {
    let text =
        r#"{"s":"a\"b\\c\/d\u0041\ud800x","b":true,"n":null,"i":-42,"u":18446744073709551615,"f":1.5,"o":{"x":[1]}}"#;
    let mut r = Reader::new(text);
    let mut seen = Vec::new();
    r.object(|r, k| {
        match k {
            "s" => assert_eq!(r.string_value()?, "a\"b\\c/dA\u{fffd}x"),
            "b" => assert!(r.bool_value()?),
            "n" => assert!(r.null()?),
            "i" => assert_eq!(r.i64_value()?, -42),
            "u" => assert_eq!(r.u64_value()?, u64::MAX),
            "f" => assert_eq!(r.i64_value().unwrap_err().kind, JsonErrorKind::Number),
            _ => r.skip()?,
        }
        seen.push(String::from(k));
        Ok(())
    })
    .unwrap();
    r.end().unwrap();
    assert_eq!(seen, ["s", "b", "n", "i", "u", "f", "o"]);
    assert_eq!(Reader::new("\"x\"").bool_value().unwrap_err().kind, JsonErrorKind::Type("a boolean"));
    assert_eq!(Reader::new("-9223372036854775808").i64_value().unwrap(), i64::MIN);
    assert!(Reader::new("9223372036854775808").i64_value().is_err());
    assert!(Reader::new("-1").u64_value().is_err());
}

/// What the writer makes is what serde_json makes of the same values.
#[test]
fn writer_matches_serde_json() {
    let odd = "q\"b\\s/\u{1}\u{8}\u{c}\n\r\t\u{1f}\u{7f}é😀";
    let mut out = Vec::new();
    Object::new(&mut out)
        .str("s", odd)
        .bool("t", true)
        .bool("f", false)
        .int("i", i64::MIN)
        .uint("u", u64::MAX)
        .strs("l", &["a", odd])
        .strs::<&str>("e", &[])
        .end();
    let want = serde_json::json!({
        "s": odd, "t": true, "f": false, "i": i64::MIN, "u": u64::MAX, "l": ["a", odd], "e": [],
    });
    // serde_json's map keeps keys sorted here; compare as values, then the strings alone
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out).unwrap(), want);
    let mut s = Vec::new();
    string(&mut s, odd);
    assert_eq!(s, serde_json::to_vec(odd).unwrap());
}

proptest::proptest! {
    /// On text made of JSON's own characters, the reader never panics and accepts exactly
    /// what serde_json accepts.
    #[test]
    fn validity_matches_serde_json_on_any_text(text in "[ {}\\[\\],:\"\\\\a-fnrtu0-9.eE+-]{0,40}") {
        let serde_ok = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
        proptest::prop_assert_eq!(is_valid(&text), serde_ok, "{:?}", text);
    }
}
