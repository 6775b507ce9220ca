//! Permissions on a leaf link, decided with the client permission rules
//! ([`crate::policy::permissions::Permissions`]) and mapped onto the link as nats-server 2.14
//! maps them (`leafnode.go`: the swap in `processLeafNodeConnect`, `initLeafNodeSmapAndSendSubs`,
//! `processLeafSub`, `leafMsgAllowed`; `client.go`: `deliverMsg`, `canSubscribe`).
//!
//! A user's `permissions { publish, subscribe }` are written from the leaf's side: `publish`
//! is what the leaf may send us, `subscribe` what it may receive from us. The accepting side
//! (the hub) compiles them swapped — `publish` from the user's `subscribe`, `subscribe` from
//! the user's `publish` — because on the hub a delivery to the leaf is a publish towards it
//! and interest announced to the leaf is a subscription on its behalf. The hub then tells the
//! soliciting side the user's rules in its connect-info `INFO` (`import` = `subscribe`,
//! `export` = `publish`), and that side compiles them unswapped (`publish` from `export`,
//! `subscribe` from `import`), so both sides ask the same questions of one compiled value:
//!
//! - which of our interest is announced to the peer: the `subscribe` side, where a wildcard
//!   is also announced when an allowed subject lies inside it (nats-server's leaf
//!   `ReverseMatch`), since the peer may publish that subject to us;
//! - which of our messages go to the peer: the `publish` side;
//! - which of the peer's messages enter: the `subscribe` side (reply subjects of service
//!   imports and JetStream acks always enter);
//! - a literal interest (`LS+`) the peer may never be sent: the hub closes the link with
//!   `Permissions Violation for Subscription to "…"`; a soliciting side ignores it.
//!
//! A user's `allow_responses` applies on the hub as to a client of that user: it turns off
//! the blanket allow of what the leaf may send, and a message delivered to the leaf with a
//! reply subject lets the leaf's answers on that subject enter ([`ReplyGrants`], kept by the
//! host per link), as many and as long as the rule says; one more is a violation.
//!
//! nats-server compiles the user's rules and then swaps the compiled tries, so an empty
//! allow list keeps the meaning it has where it was written: an empty `publish` allow
//! (nothing) still lets nothing enter, an empty `subscribe` allow (no list) still sends
//! everything.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::policy::permissions::{
    InvalidPermission, Permissions, PermissionsConfig, ReplyGrants, ResponseRule, SubjectRule,
};
use crate::subject;

/// nats-server's `SubjectPermission` as it travels in the connect-info `INFO` (an empty
/// list is left out, as Go's `omitempty` leaves it out).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubjectPermission {
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub allow: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub deny: Option<Vec<String>>,
}

fn none_or_empty(list: &Option<Vec<String>>) -> bool {
    list.as_ref().is_none_or(Vec::is_empty)
}

/// Whether a rule has an allow list that allows nothing.
fn allows_nothing(rule: &Option<SubjectRule>) -> bool {
    rule.as_ref().and_then(|r| r.allow.as_ref()).is_some_and(Vec::is_empty)
}

impl SubjectPermission {
    fn of(rule: &Option<SubjectRule>) -> Option<SubjectPermission> {
        rule.as_ref()
            .map(|r| SubjectPermission { allow: r.allow.clone(), deny: (!r.deny.is_empty()).then(|| r.deny.clone()) })
    }

    fn rule(p: &Option<SubjectPermission>) -> Option<SubjectRule> {
        p.as_ref().map(|p| SubjectRule { allow: p.allow.clone(), deny: p.deny.clone().unwrap_or_default() })
    }
}

/// The peer broke the link's permissions; the `-ERR` text is nats-server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafViolation {
    Publish(String),
    Subscription(String),
}

impl LeafViolation {
    pub fn text(&self) -> String {
        match self {
            LeafViolation::Publish(s) => format!("Permissions Violation for Publish to {s:?}"),
            LeafViolation::Subscription(s) => format!("Permissions Violation for Subscription to {s:?}"),
        }
    }
}

/// One link's permissions, in the orientation of the side that holds them.
#[derive(Debug)]
pub struct LinkPermissions {
    perms: Permissions,
    /// The `subscribe` side's allow entries, for a wildcard's reverse match.
    announce_allow: Option<Vec<String>>,
    /// We accepted the link (we are the hub): violations close it.
    hub: bool,
    /// What the connect-info `INFO` tells the soliciting side (`import`, `export`).
    import: Option<SubjectPermission>,
    export: Option<SubjectPermission>,
    /// The user's `publish` allows nothing (an empty allow list, or `allow_responses`
    /// without one): nothing of the peer's enters but answers it was granted, and none of
    /// our interest is announced.
    receives_nothing: bool,
    /// The user's `allow_responses` (the hub's side only).
    response: Option<ResponseRule>,
}

impl LinkPermissions {
    /// The accepting side: the permissions of the user the leaf authenticated as.
    pub fn accepted(user: &PermissionsConfig) -> Result<LinkPermissions, InvalidPermission> {
        let mut publish = user.publish.clone();
        if user.response.is_some() {
            // as for a client: allow_responses turns off the blanket publish allow
            publish.get_or_insert_with(SubjectRule::default).allow.get_or_insert_with(Vec::new);
        }
        let mut subscribe = user.subscribe.clone();
        if allows_nothing(&subscribe) {
            // nats-server compiles no subscribe allow list for an empty one: everything
            subscribe.iter_mut().for_each(|r| r.allow = None);
        }
        let swapped = PermissionsConfig { publish: subscribe, subscribe: publish.clone(), response: None };
        Ok(LinkPermissions {
            perms: Permissions::compile(&swapped)?,
            announce_allow: swapped.subscribe.as_ref().and_then(|r| r.allow.clone()),
            hub: true,
            import: SubjectPermission::of(&user.subscribe),
            export: SubjectPermission::of(&publish),
            receives_nothing: allows_nothing(&publish),
            response: user.response,
        })
    }

    /// The soliciting side: what the hub's connect-info `INFO` said (`None` when it said
    /// nothing, so nothing is restricted).
    pub fn solicited(
        import: &Option<SubjectPermission>,
        export: &Option<SubjectPermission>,
    ) -> Result<Option<LinkPermissions>, InvalidPermission> {
        if import.is_none() && export.is_none() {
            return Ok(None);
        }
        let cfg = PermissionsConfig {
            publish: SubjectPermission::rule(export),
            subscribe: SubjectPermission::rule(import),
            response: None,
        };
        Ok(Some(LinkPermissions {
            perms: Permissions::compile(&cfg)?,
            announce_allow: cfg.subscribe.as_ref().and_then(|r| r.allow.clone()),
            hub: false,
            import: None,
            export: None,
            receives_nothing: false,
            response: None,
        }))
    }

    /// The user's `allow_responses`, for the host to keep the link's [`ReplyGrants`].
    pub fn response(&self) -> Option<ResponseRule> {
        self.response
    }

    /// May the peer send us `subject` by the static rules?
    fn receives(&self, subject: &[u8]) -> bool {
        !self.receives_nothing && self.perms.can_subscribe(subject, None)
    }

    /// The `import` and `export` of the connect-info `INFO` (the hub's side only).
    pub fn info(&self) -> (Option<SubjectPermission>, Option<SubjectPermission>) {
        (self.import.clone(), self.export.clone())
    }

    /// Is our interest in `subject` announced to the peer?
    pub fn announces(&self, subject: &[u8]) -> bool {
        if subject.starts_with(super::LDS_PREFIX.as_bytes()) {
            return true;
        }
        if self.receives(subject) {
            return true;
        }
        // a wildcard wider than an allowed subject still carries that subject; the deny
        // side is asked again with the allowed entry
        subject::has_wildcard(subject)
            && !self.receives_nothing
            && self.announce_allow.as_ref().is_some_and(|allow| {
                allow
                    .iter()
                    .any(|a| subject::is_subset(a.as_bytes(), subject) && self.perms.can_subscribe(a.as_bytes(), None))
            })
    }

    /// May our message on `subject` go to the peer?
    pub fn delivers(&self, subject: &[u8]) -> bool {
        self.perms.publish_allowed(subject)
    }

    /// May the peer's message on `subject` enter? `Err` when the link must close for it.
    /// `grants` are the link's answers granted by `allow_responses` (used up here when the
    /// static rules refuse), `now` in nanoseconds.
    pub fn admit(&self, subject: &[u8], grants: Option<&mut ReplyGrants>, now: u64) -> Result<bool, LeafViolation> {
        if subject.starts_with(b"_R_.") || subject.starts_with(b"$JS.ACK.") || self.receives(subject) {
            return Ok(true);
        }
        if grants.is_some_and(|g| g.take(subject, now)) {
            return Ok(true);
        }
        match self.hub {
            true => Err(LeafViolation::Publish(String::from_utf8_lossy(subject).into_owned())),
            false => Ok(false),
        }
    }

    /// May the peer's interest in `subject` be recorded? A literal subject we may never
    /// deliver is a violation on the hub and ignored on the soliciting side; a wildcard is
    /// kept, and its deliveries pass [`Self::delivers`] one by one.
    pub fn interest(&self, subject: &[u8]) -> Result<bool, LeafViolation> {
        if subject::has_wildcard(subject) || subject.starts_with(super::LDS_PREFIX.as_bytes()) {
            return Ok(true);
        }
        if self.delivers(subject) {
            return Ok(true);
        }
        match self.hub {
            true => Err(LeafViolation::Subscription(String::from_utf8_lossy(subject).into_owned())),
            false => Ok(false),
        }
    }
}
