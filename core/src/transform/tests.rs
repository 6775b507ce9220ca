//! Cases whose results were taken from nats-server 2.14: each rule was set as a stream's
//! `subject_transform` there, the subject published, and the stored subject read back
//! (errors are the stream-create errors without their `stream transform: ` prefix).
#![allow(clippy::unwrap_used)]

use alloc::string::{String, ToString};

use super::*;

fn map(src: &str, dest: &str, subject: &str) -> String {
    let t = SubjectTransform::new(src, dest).unwrap().unwrap();
    String::from_utf8(t.map_plain(subject.as_bytes()).unwrap()).unwrap()
}

#[test]
fn mappings_match_nats_server() {
    let cases = [
        ("foo.*.*", "bar.$2.$1", "foo.a.b", "bar.b.a"),
        ("foo.*.*", "bar.{{wildcard(2)}}.{{ Wildcard( 1 ) }}", "foo.a.b", "bar.b.a"),
        ("foo.>", "bar.>", "foo.a.b.c", "bar.a.b.c"),
        ("foo.*.>", "bar.$1.>", "foo.a.b.c", "bar.a.b.c"),
        ("", "x.>", "any.thing", "x.any.thing"),
        ("part.*", "p.{{partition(10,1)}}.$1", "part.hello", "p.3.hello"),
        ("part.*", "p.{{partition(7,1)}}.$1", "part.world", "p.0.world"),
        ("part.*.*", "p.{{partition(5,1,2)}}", "part.ab.cd", "p.3"),
        ("part.*.*", "p.{{partition(5,2,1)}}", "part.ab.cd", "p.0"),
        ("pl.a", "pl.{{partition(3)}}", "pl.a", "pl.1"),
        ("pw.*", "pw.{{partition(3)}}", "pw.zzz", "pw.0"),
        ("sl.*", "sl.{{splitFromLeft(1,3)}}", "sl.abcdef", "sl.abc.def"),
        ("sl.*", "sl.{{splitfromleft(1,10)}}", "sl.abcdef", "sl.abcdef"),
        ("sr.*", "sr.{{SplitFromRight(1,2)}}", "sr.abcdef", "sr.abcd.ef"),
        ("cl.*", "cl.{{sliceFromLeft(1,2)}}", "cl.abcde", "cl.ab.cd.e"),
        ("cr.*", "cr.{{sliceFromRight(1,2)}}", "cr.abcde", "cr.a.bc.de"),
        ("cr.*", "cr.{{sliceFromRight(1,3)}}", "cr.abcdef", "cr.abc.def"),
        ("sp.*", "sp.{{split(1,-)}}", "sp.-a--b-c-", "sp.a.b.c"),
        ("sp.*", "sp.{{split(1,ab)}}", "sp.xabyabz", "sp.x.y.z"),
        ("m.*.*.*", "m.$3.{{partition(4,3,1)}}.{{wildcard(2)}}", "m.x.y.z", "m.z.3.y"),
        ("d.$x", "d.$foo", "d.$x", "d.$foo"),
    ];
    for (src, dest, subject, want) in cases {
        assert_eq!(map(src, dest, subject), want, "{src} -> {dest} on {subject}");
    }
}

#[test]
fn errors_match_nats_server() {
    let err = |src: &str, dest: &str| validate_mapping(src, dest).unwrap_err().to_string();
    let d = "invalid mapping destination: ";
    assert_eq!(err("foo.*", "bar.*"), "invalid subject");
    assert_eq!(err("foo.>", "bar"), "invalid subject");
    assert_eq!(err("foo.*", "bar.$2"), alloc::format!("{d}wildcard index out of range in $2: [2]"));
    assert_eq!(err("foo.*", "bar.{{unknown(1)}}"), alloc::format!("{d}unknown function in {{{{unknown(1)}}}}"));
    assert_eq!(err("foo", "bar.$1"), alloc::format!("{d}wildcard index out of range in $1"));
    assert_eq!(
        err("foo", "bar.{{wildcard(1)}}"),
        alloc::format!("{d}wildcard index out of range in {{{{wildcard(1)}}}}")
    );
    let cases = [
        ("bar.{{wildcard()}}", "not enough arguments passed to the function in {{wildcard()}}"),
        ("bar.{{wildcard(1,2)}}", "too many arguments passed to the function in {{wildcard(1,2)}}"),
        ("bar.{{wildcard(x)}}", "function argument is invalid or in the wrong format in {{wildcard(x)}}"),
        ("bar.{{partition(a,1)}}", "function argument is invalid or in the wrong format in {{partition(a,1)}}"),
        ("bar.{{split(1)}}", "not enough arguments passed to the function in {{split(1)}}"),
        ("bar.{{splitFromLeft(1,2,3)}}", "too many arguments passed to the function in {{splitFromLeft(1,2,3)}}"),
        ("bar.{{random()}}", "function argument is invalid or in the wrong format in {{random()}}"),
        ("bar..x", "invalid transform"),
        ("bar. x", "invalid transform"),
        ("bar.{{SPLIT(1,-)}}", "unknown function in {{SPLIT(1,-)}}"),
        ("bar.{{partition}}", "unknown function in {{partition}}"),
        ("bar.{{partition(3,2)}}", "wildcard index out of range in {{partition(3,2)}}: [2]"),
        ("bar.>.x", "invalid transform in x"),
        // a stream's check (ValidateMapping) does not know left/right in 2.14
        ("le.{{left(1,2)}}", "unknown function in {{left(1,2)}}"),
        ("ri.{{right(1,2)}}", "unknown function in {{right(1,2)}}"),
    ];
    for (dest, want) in cases {
        assert_eq!(err("foo.*", dest), alloc::format!("{d}{want}"), "{dest}");
    }
    // `{{split(1,.)}}` is cut at the dot into literal tokens, and accepted
    validate_mapping("foo.*", "bar.{{split(1,.)}}").unwrap();
    assert_eq!(SubjectTransform::new("a.*", ""), Ok(None));
}

#[test]
fn left_right_and_random_outside_streams() {
    assert_eq!(map("le.*", "le.{{left(1,2)}}", "le.abcdef"), "le.ab");
    assert_eq!(map("ri.*", "ri.{{right(1,2)}}", "ri.abcdef"), "ri.ef");
    assert_eq!(map("ri.*", "ri.{{right(1,0)}}", "ri.abcdef"), "ri.abcdef");
    let t = SubjectTransform::new("r.*", "r.{{random(4)}}.$1").unwrap().unwrap();
    assert!(t.uses_random());
    let mut draws = [7u32, 0xffff_fffe].into_iter();
    let mut next = || draws.next().unwrap_or(0);
    assert_eq!(t.map(b"r.x", &mut next).unwrap(), b"r.3.x");
    assert_eq!(t.map(b"r.x", &mut next).unwrap(), b"r.2.x", "31 bits kept, as Go's Int31");
}

#[test]
fn only_matching_literal_subjects_map() {
    let t = SubjectTransform::new("foo.*", "bar.$1").unwrap().unwrap();
    assert_eq!(t.map_plain(b"other.x"), None);
    assert_eq!(t.map_plain(b"foo.x.y"), None);
    assert_eq!(t.map_plain(b"foo.*"), None);
    assert_eq!(t.map_plain(b"foo..x"), None);
    let same = SubjectTransform::new(">", ">").unwrap().unwrap();
    assert_eq!(same.map_plain(b"a.b"), Some(b"a.b".to_vec()));
}

#[test]
fn fnv1a_is_nats_servers_hash() {
    // the FNV-1a 32 reference vectors
    assert_eq!(super::apply::fnv1a(b""), 0x811c_9dc5);
    assert_eq!(super::apply::fnv1a(b"a"), 0xe40c_292c);
    assert_eq!(super::apply::fnv1a(b"foobar"), 0xbf9c_f968);
}
