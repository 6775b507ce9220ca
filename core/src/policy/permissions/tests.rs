#![allow(clippy::unwrap_used)]
use super::*;
use alloc::string::ToString;
use alloc::vec;

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rule(allow: Option<&[&str]>, deny: &[&str]) -> SubjectRule {
    SubjectRule { allow: allow.map(list), deny: list(deny) }
}

fn perms(publish: Option<SubjectRule>, subscribe: Option<SubjectRule>) -> Arc<Permissions> {
    Arc::new(Permissions::compile(&PermissionsConfig { publish, subscribe, response: None }).unwrap())
}

#[test]
fn publish_allow_then_deny_wildcards_both_sides() {
    let p = perms(Some(rule(Some(&["foo.>", "bar"]), &["foo.secret.*"])), None);
    assert!(p.publish_allowed(b"foo.a"));
    assert!(p.publish_allowed(b"foo.secret"));
    assert!(!p.publish_allowed(b"foo.secret.x"), "deny wins over a wider allow");
    assert!(p.publish_allowed(b"bar"));
    assert!(!p.publish_allowed(b"baz"));
    assert!(!p.publish_allowed(b"foo.secret.*"), "a literal '*' token is matched by the deny wildcard");
    let deny_only = perms(Some(rule(None, &["$JS.API.>"])), None);
    assert!(deny_only.publish_allowed(b"anything"));
    assert!(!deny_only.publish_allowed(b"$JS.API.STREAM.CREATE.S"));
    let nothing = perms(Some(rule(Some(&[]), &[])), None);
    assert!(!nothing.publish_allowed(b"x"), "an empty allow list allows nothing");
    assert!(!perms(None, None).checks_publish());
}

#[test]
fn publish_cache_gives_the_same_answers_and_stays_bounded() {
    let mut c = PublishCheck::new(perms(Some(rule(Some(&["a.*"]), &["a.b"])), None));
    for _ in 0..2 {
        assert!(c.allowed(b"a.c"));
        assert!(!c.allowed(b"a.b"));
        assert!(!c.allowed(b"b"));
    }
    for i in 0..1000 {
        c.allowed(alloc::format!("a.{i}").as_bytes());
    }
    assert!(c.cache.len() <= CACHE_MAX);
    assert!(!c.allowed(b"a.b"));
}

#[test]
fn subscribe_rules_with_wildcards_and_deny() {
    let p = perms(None, Some(rule(Some(&["foo.*", "bar.>"]), &["bar.secret"])));
    assert!(p.can_subscribe(b"foo.a", None));
    assert!(p.can_subscribe(b"foo.*", None));
    assert!(!p.can_subscribe(b"foo.a.b", None));
    assert!(p.can_subscribe(b"bar.>", None));
    assert!(p.can_subscribe(b"bar.*", None));
    assert!(!p.can_subscribe(b"bar.secret", None));
    assert!(!p.can_subscribe(b"baz", None));
    let deny_wild = perms(None, Some(rule(None, &["foo.*"])));
    assert!(!deny_wild.can_subscribe(b"foo.bar", None));
    assert!(!deny_wild.can_subscribe(b"foo.*", None));
    assert!(!deny_wild.can_subscribe(b"foo.>", None), "the '*' deny matches the '>' token as nats-server's trie does");
    assert!(deny_wild.can_subscribe(b"foo.a.b", None));
}

#[test]
fn queue_entries() {
    // allow = ["foo v1"] -> only queue subscriptions in v1; ["foo", "foo v1"] -> plain too.
    let p = perms(None, Some(rule(Some(&["foo v1", "bar", "bar v2", "baz.* v.*"]), &[])));
    assert!(p.can_subscribe(b"foo", Some(b"v1")));
    assert!(!p.can_subscribe(b"foo", Some(b"v2")));
    assert!(!p.can_subscribe(b"foo", None));
    assert!(p.can_subscribe(b"bar", None));
    assert!(p.can_subscribe(b"bar", Some(b"v2")));
    assert!(!p.can_subscribe(b"bar", Some(b"v3")));
    assert!(p.can_subscribe(b"baz.x", Some(b"v.anything")), "queue entries may use wildcards");
    assert!(!p.can_subscribe(b"baz.x", Some(b"w")));
    let deny = perms(None, Some(rule(None, &["foo q1"])));
    assert!(!deny.can_subscribe(b"foo", Some(b"q1")));
    assert!(deny.can_subscribe(b"foo", Some(b"q2")));
    assert!(deny.can_subscribe(b"foo", None));
    assert_eq!(split_entry("a b c"), Err(InvalidPermission("a b c".into())));
    assert_eq!(split_entry("a..b"), Err(InvalidPermission("a..b".into())));
    assert_eq!(split_entry(" a  q "), Ok(("a", Some("q"))));
}

#[test]
fn denied_literal_is_filtered_out_of_a_wildcard_subscription() {
    let p = perms(None, Some(rule(None, &["foo.secret", "other q"])));
    assert!(p.can_subscribe(b"foo.*", None));
    assert!(p.needs_delivery_filter(b"foo.*"));
    assert!(p.needs_delivery_filter(b">"));
    assert!(!p.needs_delivery_filter(b"bar.*"));
    assert!(!p.needs_delivery_filter(b"foo.public"), "literal subscriptions were checked at SUB");
    let mut f = DeliveryFilter::new(p);
    assert!(f.denies(b"foo.secret"));
    assert!(!f.denies(b"foo.public"));
    assert!(!f.denies(b"other"), "queue-qualified denies do not filter deliveries (as in 2.14)");
    assert!(f.denies(b"foo.secret"));
}

#[test]
fn allow_responses_grants_exactly_the_replies_received() {
    let cfg = PermissionsConfig {
        publish: None,
        subscribe: None,
        response: Some(ResponseRule { max_msgs: 2, expires_ns: 1_000 }),
    };
    let p = Arc::new(Permissions::compile(&cfg).unwrap());
    assert!(p.checks_publish(), "allow_responses alone turns off the blanket publish allow");
    let mut check = PublishCheck::new(p.clone());
    let mut grants = ReplyGrants::new(p.response().unwrap());
    assert!(!check.allowed_or_granted(b"_INBOX.1", Some(&mut grants), 10));
    grants.record(b"_INBOX.1", 10);
    assert!(check.allowed_or_granted(b"_INBOX.1", Some(&mut grants), 20));
    assert!(check.allowed_or_granted(b"_INBOX.1", Some(&mut grants), 30));
    assert!(!check.allowed_or_granted(b"_INBOX.1", Some(&mut grants), 40), "max 2");
    assert!(!check.allowed_or_granted(b"_INBOX.2", Some(&mut grants), 40), "never requested");
    grants.record(b"_INBOX.3", 100);
    assert!(!check.allowed_or_granted(b"_INBOX.3", Some(&mut grants), 1_101), "expired");
    assert!(grants.is_empty());
    let unlimited = ResponseRule { max_msgs: -1, expires_ns: 0 };
    let mut g = ReplyGrants::new(unlimited);
    g.record(b"r", 0);
    for t in 0..10 {
        assert!(g.take(b"r", t * 1_000_000_000_000));
    }
    // with a publish allow list the static rule is consulted first
    let cfg = PermissionsConfig {
        publish: Some(rule(Some(&["svc.>"]), &[])),
        subscribe: None,
        response: Some(ResponseRule::DEFAULT),
    };
    let mut check = PublishCheck::new(Arc::new(Permissions::compile(&cfg).unwrap()));
    assert!(check.allowed_or_granted(b"svc.x", None, 0));
    assert_eq!(vec![check.allowed(b"_INBOX.x")], vec![false]);
}

#[test]
fn sweeping_drops_used_and_expired_grants() {
    let mut g = ReplyGrants::new(ResponseRule::DEFAULT);
    g.record(b"a", 0);
    assert!(g.take(b"a", 1));
    g.record(b"b", 2_000_000_000);
    assert_eq!(g.len(), 1, "the used-up grant was swept");
}
