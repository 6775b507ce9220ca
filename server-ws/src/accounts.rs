//! Accounts: separate subject spaces on one server (`accounts { … }` in the config).
//!
//! Each account has its own subscription trie, so a publish is matched only against the
//! subscriptions of its publisher's account, and each publisher's match cache holds the
//! results of one account (see [`crate::router::Router`]). Clients outside any configured
//! account, and every client when none is configured, are in `$G`.
//!
//! Imports are resolved once at start into links between accounts: a stream import becomes a
//! link on the *exporter* (what is published there on the subject is also routed in the
//! importer, mapped), a service import a link on the *importer* (what is published there on
//! its local subject is routed in the exporter, with a `_R_.` reply subject whose answer the
//! exporter's table forwards back). The rules (which import an export allows, how a subject
//! maps) are the core's [`edgebus_core::policy::accounts`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use edgebus_core::policy::accounts::{Export, Responses, SubjectMap, GLOBAL_ACCOUNT};
use edgebus_core::sublist::{MatchResult, Sublist};
use parking_lot::{Mutex, RwLock};

use crate::client::SubRef;

/// What `accounts { NAME: { … } }` configures for one account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountConfig {
    pub name: String,
    pub exports: Vec<ExportConfig>,
    pub imports: Vec<ImportConfig>,
    /// `jetstream: enabled` (or a limits map): the account has its own JetStream when the
    /// server runs JetStream.
    pub jetstream: Option<AccountJetStream>,
}

/// An account's JetStream limits (`jetstream { … }` in its block). Bytes: 0 is the server's
/// (`max_memory_store`, `max_file_store`); counts and stream bytes: 0 or less is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountJetStream {
    pub max_memory: i64,
    pub max_file: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
    pub max_ack_pending: i64,
    pub memory_max_stream_bytes: i64,
    pub store_max_stream_bytes: i64,
    pub max_bytes_required: bool,
}

/// Streams and services are exported and imported separately: an import of one kind needs an
/// export of the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Service,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Stream => "stream",
            Kind::Service => "service",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    pub kind: Kind,
    pub export: Export,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportConfig {
    pub kind: Kind,
    /// The exporting account.
    pub account: String,
    /// The subject in the exporter's space.
    pub subject: String,
    /// Stream: exporter subject → importer subject. Service: importer subject → exporter
    /// subject.
    pub map: SubjectMap,
}

/// Why the accounts could not be set up (the config reader reports these with positions;
/// this is the check of last resort for options built in code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsError(pub String);

impl std::fmt::Display for AccountsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccountsError {}

/// Does `importer`'s import pass `exporter`'s exports? nats-server refuses to start otherwise
/// (`Error adding stream import "…": stream import not authorized`).
pub fn import_allowed(exporter: &AccountConfig, importer: &str, import: &ImportConfig) -> bool {
    exporter.exports.iter().any(|e| e.kind == import.kind && e.export.authorizes(importer, import.subject.as_bytes()))
}

/// Routing one account's messages into another's space.
pub struct Link {
    /// The index of the account the message goes to.
    pub target: usize,
    pub map: SubjectMap,
}

/// Where a service's answer goes: the importing account and the requester's reply subject.
pub struct ReplyTo {
    pub account: usize,
    pub reply: Bytes,
}

/// How many forwarded requests one account keeps waiting for answers.
const MAX_WAITING_RESPONSES: usize = 100_000;

pub struct Account {
    pub name: String,
    pub index: usize,
    sublist: RwLock<Sublist<SubRef>>,
    /// The trie's generation, read without its lock by routers to validate their caches.
    genid: AtomicU64,
    /// Stream imports of this account's subjects by others.
    pub(crate) streams_out: Vec<Link>,
    /// This account's service imports.
    pub(crate) services_out: Vec<Link>,
    /// Some account imports a service of this one: a publish on a `_R_.` subject here may be
    /// an answer to forward.
    pub(crate) answers_services: bool,
    pub(crate) responses: Mutex<Responses<ReplyTo>>,
    /// The totals of this account's JetStream engine, refreshed by its thread a few times a
    /// second for monitoring; `None` while it has none running.
    pub jetstream_stats: Mutex<Option<edgebus_core::jetstream::Stats>>,
    /// The leaf links in this account, told of every subscription change.
    pub(crate) leaves: crate::leaf::Links,
    /// Set by this account's JetStream thread while a push consumer waits for a subscriber:
    /// a new subscription then wakes the thread (`interest_news`, `js_wake`) so delivery
    /// starts at once, as nats-server starts it on interest.
    pub(crate) push_waiting: AtomicBool,
    /// A subscription was made since the JetStream thread last looked.
    pub(crate) interest_news: AtomicBool,
    /// Wakes this account's JetStream thread; set when it starts.
    pub(crate) js_wake: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Account {
    fn new(name: &str, index: usize) -> Account {
        Account {
            name: name.to_string(),
            index,
            sublist: RwLock::new(Sublist::new()),
            genid: AtomicU64::new(0),
            streams_out: Vec::new(),
            services_out: Vec::new(),
            answers_services: false,
            responses: Mutex::new(Responses::new(MAX_WAITING_RESPONSES)),
            jetstream_stats: Mutex::new(None),
            leaves: crate::leaf::Links::default(),
            push_waiting: AtomicBool::new(false),
            interest_news: AtomicBool::new(false),
            js_wake: std::sync::OnceLock::new(),
        }
    }

    /// Whether routing in this account may have to reach another: the slow path of routing.
    pub fn crosses(&self) -> bool {
        !self.streams_out.is_empty() || !self.services_out.is_empty() || self.answers_services
    }

    pub fn generation(&self) -> u64 {
        self.genid.load(Ordering::Acquire)
    }

    /// Matches `subject` against this account's trie (a cache miss).
    pub fn match_subject(&self, subject: &[u8]) -> (u64, Arc<MatchResult<SubRef>>) {
        let sl = self.sublist.read();
        (sl.generation(), Arc::new(sl.matches(subject)))
    }

    pub fn insert_sub(&self, sub: &SubRef) -> Result<(), edgebus_core::subject::SubjectError> {
        let mut sl = self.sublist.write();
        let r = sl.insert(&sub.subject, sub.queue.as_deref(), sub.clone());
        self.genid.store(sl.generation(), Ordering::Release);
        if r.is_ok() {
            self.leaves.added(sub);
            drop(sl);
            if self.push_waiting.load(Ordering::Acquire) && !self.interest_news.swap(true, Ordering::AcqRel) {
                if let Some(wake) = self.js_wake.get() {
                    wake();
                }
            }
        }
        r
    }

    pub fn remove_sub(&self, sub: &SubRef) -> bool {
        self.remove_subs(std::slice::from_ref(sub)) > 0
    }

    /// Removes several subscriptions under one lock (a connection's teardown).
    pub fn remove_subs(&self, subs: &[SubRef]) -> usize {
        let mut sl = self.sublist.write();
        let removed = subs
            .iter()
            .filter(|s| sl.remove(&s.subject, s.queue.as_deref(), s))
            .inspect(|s| self.leaves.removed(s))
            .count();
        self.genid.store(sl.generation(), Ordering::Release);
        removed
    }

    pub fn subscription_count(&self) -> usize {
        self.sublist.read().count()
    }

    /// Starts telling `link` of subscription changes, after announcing every subscription
    /// there is now (under the trie's lock, so nothing slips between the two).
    pub(crate) fn attach_leaf(&self, link: &Arc<crate::leaf::LeafLink>) {
        let sl = self.sublist.write();
        self.leaves.attach(link, |f| sl.for_each(|s| f(s)));
    }

    pub(crate) fn detach_leaf(&self, link: &Arc<crate::leaf::LeafLink>) {
        let _sl = self.sublist.write();
        self.leaves.detach(link);
    }
}

/// Every account of the server; `$G` is always there, at index 0.
pub struct Accounts {
    list: Vec<Arc<Account>>,
    by_name: HashMap<String, usize>,
}

impl Accounts {
    /// Builds the accounts and resolves their imports into links.
    pub fn new(configs: &[AccountConfig]) -> Result<Accounts, AccountsError> {
        let mut list = vec![Account::new(GLOBAL_ACCOUNT, 0)];
        let mut by_name = HashMap::from([(GLOBAL_ACCOUNT.to_string(), 0)]);
        for c in configs {
            if by_name.contains_key(&c.name) {
                return Err(AccountsError(format!("duplicate account {:?}", c.name)));
            }
            by_name.insert(c.name.clone(), list.len());
            list.push(Account::new(&c.name, list.len()));
        }
        for (i, c) in configs.iter().enumerate() {
            let importer = i + 1;
            for imp in &c.imports {
                let Some(&exporter) = by_name.get(&imp.account) else {
                    return Err(AccountsError(format!(
                        "account {:?} imports from unknown account {:?}",
                        c.name, imp.account
                    )));
                };
                let allowed = exporter > 0 && import_allowed(&configs[exporter - 1], &c.name, imp);
                if !allowed {
                    return Err(AccountsError(format!(
                        "Error adding {} import {:?}: {} import not authorized",
                        imp.kind.name(),
                        imp.subject,
                        imp.kind.name()
                    )));
                }
                match imp.kind {
                    Kind::Stream => list[exporter].streams_out.push(Link { target: importer, map: imp.map.clone() }),
                    Kind::Service => {
                        list[importer].services_out.push(Link { target: exporter, map: imp.map.clone() });
                        list[exporter].answers_services = true;
                    }
                }
            }
        }
        Ok(Accounts { list: list.into_iter().map(Arc::new).collect(), by_name })
    }

    pub fn global(&self) -> &Arc<Account> {
        &self.list[0]
    }

    pub fn get(&self, index: usize) -> Option<&Arc<Account>> {
        self.list.get(index)
    }

    pub fn named(&self, name: &str) -> Option<&Arc<Account>> {
        self.by_name.get(name).and_then(|&i| self.list.get(i))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.list.iter()
    }

    pub fn subscription_count(&self) -> usize {
        self.list.iter().map(|a| a.subscription_count()).sum()
    }

    /// The JetStream totals over every account running it, and how many do.
    pub fn jetstream_totals(&self) -> (edgebus_core::jetstream::Stats, usize) {
        let mut sum = edgebus_core::jetstream::Stats::default();
        let mut n = 0;
        for st in self.list.iter().filter_map(|a| *a.jetstream_stats.lock()) {
            n += 1;
            sum.streams += st.streams;
            sum.consumers += st.consumers;
            sum.messages += st.messages;
            sum.bytes += st.bytes;
            sum.memory += st.memory;
            sum.storage += st.storage;
            sum.reserved_memory += st.reserved_memory;
            sum.reserved_storage += st.reserved_storage;
            sum.api_total += st.api_total;
            sum.api_errors += st.api_errors;
        }
        (sum, n)
    }
}
