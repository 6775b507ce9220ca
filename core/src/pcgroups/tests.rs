//! The rules against what orbit gives for the same inputs.

#![allow(clippy::unwrap_used)]

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde_json::json;

use super::*;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| String::from(*s)).collect()
}

fn owned(members: &[&str], max: u32, member: &str) -> Vec<String> {
    partition_filters(&names(members), max, &[], member, ">")
}

#[test]
fn balanced_spread_is_orbits() {
    // 10 partitions over 3 members: runs of 3, the remainder (9) to the first sorted member
    assert_eq!(owned(&["m3", "m1", "m2"], 10, "m1"), ["0.>", "1.>", "2.>", "9.>"]);
    assert_eq!(owned(&["m3", "m1", "m2"], 10, "m2"), ["3.>", "4.>", "5.>"]);
    assert_eq!(owned(&["m3", "m1", "m2", "m1"], 10, "m3"), ["6.>", "7.>", "8.>"]);
    // more members than partitions: the first `max_members` sorted ones
    assert_eq!(owned(&["d", "c", "b", "a"], 2, "a"), ["0.>"]);
    assert!(owned(&["d", "c", "b", "a"], 2, "c").is_empty());
    // every partition has exactly one owner
    let members = ["a", "b", "c", "d", "e"];
    let mut all: Vec<String> = members.iter().flat_map(|m| owned(&members, 8, m)).collect();
    all.sort();
    assert_eq!(all.len(), 8);
    all.dedup();
    assert_eq!(all.len(), 8);
}

#[test]
fn mappings_give_their_partitions_whatever_the_filter() {
    let maps = vec![
        MemberMapping { member: "x".into(), partitions: vec![0, 2] },
        MemberMapping { member: "y".into(), partitions: vec![1] },
    ];
    assert_eq!(partition_filters(&[], 3, &maps, "x", "foo.*"), ["0.>", "2.>"]);
    let c = GroupConfig::Static(StaticConfig { max_members: 3, member_mappings: maps, ..Default::default() });
    assert!(c.is_member("y") && !c.is_member("z"));
    assert_eq!(member_filters(&c, "y"), ["1.>"]);
}

#[test]
fn configs_read_orbits_json_and_its_errors() {
    let go = br#"{"max_members":4,"partitioning_filters":[{"filter":"foo.*","partitioning_wildcards":[1]}],"members":["m1","m2"]}"#;
    let c = GroupConfig::parse(Kind::Elastic, go).unwrap();
    assert_eq!(member_filters(&c, "m2"), ["2.foo.*", "3.foo.*"]);
    assert_eq!(c.to_json(), go.to_vec(), "written back as orbit writes it");
    let nulls = br#"{"max_members":2,"partitioning_filters":null,"members":null,"member_mappings":null}"#;
    assert!(
        matches!(GroupConfig::parse(Kind::Elastic, nulls).unwrap(), GroupConfig::Elastic(e) if e.members.is_empty())
    );
    let bad = |j: &[u8]| GroupConfig::parse(Kind::Elastic, j).unwrap_err();
    assert_eq!(bad(br#"{"max_members":0}"#), PcgError::MaxMembers);
    assert_eq!(bad(br#"{"max_members":2,"partitioning_filters":[{"filter":"foo.bar"}]}"#), PcgError::FilterWildcards);
    let pw = br#"{"max_members":2,"partitioning_filters":[{"filter":"a.*","partitioning_wildcards":[2]}]}"#;
    assert_eq!(bad(pw), PcgError::PartitioningWildcardRange);
    let half = br#"{"max_members":3,"member_mappings":[{"member":"a","partitions":[0,1]}]}"#;
    assert_eq!(bad(half), PcgError::PartitionCount);
    assert_eq!(
        bad(br#"{"max_members":3,"members":["a"],"member_mappings":[{"member":"a"}]}"#),
        PcgError::MembersAndMappings
    );
    assert!(matches!(bad(b"\"x\""), PcgError::Json(_)));
    assert_eq!(
        PcgError::PartitionRange.to_string(),
        "partition numbers must be between 0 and one less than the max number of members"
    );
}

#[test]
fn members_join_and_leave_the_elastic_config() {
    let c = ElasticConfig { max_members: 4, members: names(&["a"]), ..Default::default() };
    let c = c.with_members(&names(&["b", "a", ""])).unwrap();
    assert_eq!(c.members, ["a", "b"]);
    assert_eq!(c.without_members(&names(&["a"])).unwrap().members, ["b"]);
    let mapped = ElasticConfig {
        max_members: 1,
        member_mappings: vec![MemberMapping { member: "a".into(), partitions: vec![0] }],
        ..Default::default()
    };
    assert_eq!(mapped.with_members(&names(&["b"])).unwrap_err(), PcgError::UsesMappings);
}

#[test]
fn the_layout_has_orbits_names() {
    let pf = PartitioningFilter { filter: "foo.*.bar.*".into(), partitioning_wildcards: vec![2] };
    assert_eq!(partitioning_dest(&pf, 10), "{{Partition(10,2)}}.foo.{{Wildcard(1)}}.bar.{{Wildcard(2)}}");
    let all = PartitioningFilter { filter: ">".into(), partitioning_wildcards: vec![] };
    assert_eq!(partitioning_dest(&all, 3), "{{Partition(3)}}.>");
    assert!(crate::transform::validate_mapping("foo.*.bar.*", &partitioning_dest(&pf, 10)).is_ok());
    let c = ElasticConfig { max_members: 3, max_buffered_msgs: 100, ..Default::default() };
    let s = elastic_stream_config("orders", "cg", &c, "file", 1);
    assert_eq!(s["name"], "orders-cg");
    assert_eq!(s["retention"], "workqueue");
    assert_eq!((s["max_msgs"].clone(), s["max_bytes"].clone()), (json!(100), json!(-1)));
    assert_eq!(
        s["sources"],
        json!([{"name": "orders", "subject_transforms": [{"src": ">", "dest": "{{Partition(3)}}.>"}]}])
    );
    assert_eq!(config_key("orders", "cg"), "orders.cg");
    assert_eq!(
        (consumer_stream(Kind::Static, "S", "g"), consumer_name(Kind::Static, "g", "m")),
        ("S".into(), "g-m".into())
    );
    assert_eq!(strip_partition("3.orders.k1"), "orders.k1");
}

#[test]
fn member_consumers_are_pinned_and_timed_from_ack_wait() {
    let f = names(&["0.>", "1.>"]);
    let c = member_consumer_config(
        Kind::Elastic,
        "g",
        "m1",
        &f,
        &json!({"ack_wait": 4_000_000_000u64, "durable_name": "x"}),
    )
    .unwrap();
    assert_eq!(c["name"], "m1");
    assert!(c.get("durable_name").is_none());
    assert_eq!(c["filter_subjects"], json!(["0.>", "1.>"]));
    assert_eq!((c["priority_groups"].clone(), c["priority_policy"].clone()), (json!(["PCG"]), json!("pinned_client")));
    assert_eq!(
        (c["priority_timeout"].clone(), c["inactive_threshold"].clone()),
        (json!(4_000_000_000u64), json!(4_000_000_000u64))
    );
    assert_eq!(pull_expires(&c), 2_000_000_000);
    let s = member_consumer_config(Kind::Static, "g", "m1", &f, &serde_json::Value::Null).unwrap();
    assert_eq!((s["durable_name"].clone(), s["ack_wait"].clone()), (json!("g-m1"), json!(5_000_000_000u64)));
    let none = member_consumer_config(Kind::Elastic, "g", "m", &f, &json!({"ack_policy": "none"}));
    assert_eq!(none.unwrap_err(), PcgError::AckPolicy);
    // short ack waits keep a one-second floor on the pin and the pull
    assert_eq!(Timing::from_ack_wait(100).pinned_ttl, 1_000_000_000);
}

#[test]
fn json_hosts_get_plans_and_membership_changes() {
    let cfg = br#"{"max_members":2,"partitioning_filters":[{"filter":"o.*","partitioning_wildcards":[1]}],"members":["a","b"]}"#;
    let plan: serde_json::Value = serde_json::from_slice(
        &json::member_plan(Kind::Elastic, "S", "g", "b", cfg, br#"{"ack_wait":3000000000}"#).unwrap(),
    )
    .unwrap();
    assert_eq!((plan["stream"].clone(), plan["consumer"].clone()), (json!("S-g"), json!("b")));
    assert_eq!(
        (plan["filters"].clone(), plan["config"]["filter_subjects"].clone()),
        (json!(["1.o.*"]), json!(["1.o.*"]))
    );
    assert_eq!((plan["group"].clone(), plan["expires"].clone()), (json!("PCG"), json!(1_500_000_000u64)));
    let out: serde_json::Value =
        serde_json::from_slice(&json::member_plan(Kind::Elastic, "S", "g", "z", cfg, b"").unwrap()).unwrap();
    assert!(out["config"].is_null() && out["filters"] == json!([]), "not a member: no consumer");
    let changed = json::change_members(cfg, br#"["c"]"#, br#"["a"]"#).unwrap();
    assert_eq!(GroupConfig::parse(Kind::Elastic, &changed).unwrap(), {
        let mut c: ElasticConfig = crate::json::typed::from_slice(cfg).unwrap();
        c.members = names(&["b", "c"]);
        GroupConfig::Elastic(c)
    });
    assert!(json::same_group(Kind::Elastic, cfg, &changed).unwrap(), "membership is not the group's shape");
    let other = br#"{"max_members":3}"#;
    assert!(!json::same_group(Kind::Elastic, cfg, other).unwrap());
}
