//! Key-value buckets with async-nats (`jetstream::kv`): create, put/get, CAS
//! update, create-if-absent, delete and purge markers, history, keys, watch.

use async_nats::jetstream::{self, kv};
use edgebus_client_tests::{round_trip, unique, within, TestServer};
use futures::{StreamExt, TryStreamExt};

#[tokio::test]
async fn kv_bucket_operations() {
    let server = TestServer::start();
    let client = server.connect().await;
    let js = jetstream::new(client);
    let bucket = unique("rkv");

    let store = js
        .create_key_value(kv::Config { bucket: bucket.clone(), history: 5, ..Default::default() })
        .await
        .expect("create bucket");
    let status = store.status().await.expect("status");
    assert_eq!(status.info.config.name, format!("KV_{bucket}"));
    assert_eq!(status.info.config.subjects, vec![format!("$KV.{bucket}.>")]);
    assert_eq!(status.info.config.max_messages_per_subject, 5);
    assert!(status.info.config.allow_rollup);
    assert_eq!(status.info.config.discard, async_nats::jetstream::stream::DiscardPolicy::New);

    let r1 = store.put("cfg.mode", "fast".into()).await.expect("put");
    let r2 = store.put("cfg.mode", "safe".into()).await.expect("put");
    assert_eq!((r1, r2), (1, 2));
    assert_eq!(store.get("cfg.mode").await.expect("get").as_deref(), Some(&b"safe"[..]));
    let entry = store.entry("cfg.mode").await.expect("entry").expect("present");
    assert_eq!((entry.revision, entry.operation), (2, kv::Operation::Put));
    let old = store.entry_for_revision("cfg.mode", 1).await.expect("entry").expect("revision 1");
    assert_eq!(old.value.as_ref(), b"fast");
    assert_eq!(store.get("missing").await.expect("get"), None);

    // Compare-and-set: the current revision wins, a stale one is refused.
    let r3 = store.update("cfg.mode", "cas".into(), r2).await.expect("update at the current revision");
    let stale = store.update("cfg.mode", "stale".into(), r2).await.expect_err("stale revision");
    assert_eq!(stale.kind(), kv::UpdateErrorKind::WrongLastRevision, "{stale}");
    assert_eq!(store.get("cfg.mode").await.expect("get").as_deref(), Some(&b"cas"[..]));

    // create: only when the key holds no value.
    let c1 = store.create("lock", "owner-1".into()).await.expect("create");
    let taken = store.create("lock", "owner-2".into()).await.expect_err("key holds a value");
    assert_eq!(taken.kind(), kv::CreateErrorKind::AlreadyExists, "{taken}");
    store.delete("lock").await.expect("delete");
    assert_eq!(store.get("lock").await.expect("get"), None);
    // entry() shows the delete marker itself.
    let marker = store.entry("lock").await.expect("entry").expect("the delete marker");
    assert_eq!(marker.operation, kv::Operation::Delete);
    assert!(marker.value.is_empty());
    let c2 = store.create("lock", "owner-2".into()).await.expect("create after delete");
    assert!(c2 > c1);

    // History: puts and the delete of one key, in order.
    let history: Vec<kv::Entry> = within(10, "history", store.history("lock").await.expect("history").try_collect())
        .await
        .expect("history entries");
    let ops: Vec<kv::Operation> = history.iter().map(|e| e.operation).collect();
    assert_eq!(ops, [kv::Operation::Put, kv::Operation::Delete, kv::Operation::Put]);
    assert_eq!(history[2].value.as_ref(), b"owner-2");

    // Purge collapses the key to one marker.
    store.purge("cfg.mode").await.expect("purge");
    assert_eq!(store.get("cfg.mode").await.expect("get"), None);
    let history: Vec<kv::Entry> =
        within(10, "history", store.history("cfg.mode").await.expect("history").try_collect())
            .await
            .expect("history entries");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].operation, kv::Operation::Purge);
    assert!(r3 < history[0].revision);

    let mut keys: Vec<String> =
        within(10, "keys", store.keys().await.expect("keys").try_collect()).await.expect("keys");
    keys.sort();
    assert_eq!(keys, ["lock"]);

    let status = store.status().await.expect("status");
    assert_eq!(status.history(), 5);
    assert_eq!(status.bucket(), bucket);
}

#[tokio::test]
async fn kv_watch_initial_values_then_live_updates() {
    let server = TestServer::start();
    let client = server.connect().await;
    let writer_client = server.connect().await;
    let js = jetstream::new(client.clone());
    let bucket = unique("rkvw");
    let store = js
        .create_key_value(kv::Config { bucket: bucket.clone(), history: 3, ..Default::default() })
        .await
        .expect("create bucket");
    store.put("a", "a1".into()).await.expect("put");
    store.put("b", "b1".into()).await.expect("put");
    store.put("a", "a2".into()).await.expect("put");

    // async-nats: `watch_with_history` = the last value per key, then live
    // updates; `watch_all` = live updates only; `watch_from_revision` = every
    // stored revision from there on, then live updates.
    let mut watch = store.watch_with_history(">").await.expect("watch with initial values");
    let mut updates_only = store.watch_all().await.expect("watch_all");
    let first = within(10, "initial value", watch.next()).await.expect("entry").expect("ok");
    let second = within(10, "initial value", watch.next()).await.expect("entry").expect("ok");
    assert_eq!((first.key.as_str(), first.value.as_ref(), first.revision), ("b", &b"b1"[..], 2));
    assert_eq!((second.key.as_str(), second.value.as_ref(), second.revision), ("a", &b"a2"[..], 3));
    assert_eq!(second.delta, 0);
    round_trip(&client).await;

    // Live updates written from another connection, deletes and purges included.
    // (Creating a bucket that exists with the same settings opens it.)
    let writer = jetstream::new(writer_client)
        .create_key_value(kv::Config { bucket: bucket.clone(), history: 3, ..Default::default() })
        .await
        .expect("open the bucket from a second connection");
    let r = writer.put("c", "c1".into()).await.expect("put");
    writer.delete("b").await.expect("delete");
    writer.purge("a").await.expect("purge");
    let expected =
        [("c", kv::Operation::Put, r), ("b", kv::Operation::Delete, r + 1), ("a", kv::Operation::Purge, r + 2)];
    for w in [&mut watch, &mut updates_only] {
        let mut live = Vec::new();
        for _ in 0..3 {
            live.push(within(10, "live update", w.next()).await.expect("entry").expect("ok"));
        }
        let got: Vec<(&str, kv::Operation, u64)> =
            live.iter().map(|e| (e.key.as_str(), e.operation, e.revision)).collect();
        assert_eq!(got, expected);
    }

    // A key-filtered watcher from revision 1 sees only that key's revisions.
    writer.put("c", "c2".into()).await.expect("put");
    let mut only_c = store.watch_from_revision("c", 1).await.expect("watch c");
    let c1 = within(10, "c history", only_c.next()).await.expect("entry").expect("ok");
    let c2 = within(10, "c history", only_c.next()).await.expect("entry").expect("ok");
    assert_eq!((c1.value.as_ref(), c2.value.as_ref()), (&b"c1"[..], &b"c2"[..]));
    writer.put("d", "other".into()).await.expect("put");
    writer.put("c", "c3".into()).await.expect("put");
    let c3 = within(10, "c live", only_c.next()).await.expect("entry").expect("ok");
    assert_eq!((c3.key.as_str(), c3.value.as_ref()), ("c", &b"c3"[..]));
}

#[tokio::test]
async fn bind_to_an_existing_bucket_and_its_stream() {
    let server = TestServer::start();
    let js = jetstream::new(server.connect().await);
    let bucket = unique("rkvb");
    let store = js
        .create_key_value(kv::Config { bucket: bucket.clone(), history: 2, ..Default::default() })
        .await
        .expect("create bucket");
    let rev = store.put("k", "v".into()).await.expect("put");

    // Both look the stream up with STREAM.INFO (async-nats sends a `null` body).
    let stream = js.get_stream(format!("KV_{bucket}")).await.expect("get_stream of the backing stream");
    assert_eq!(stream.cached_info().config.max_messages_per_subject, 2);
    assert_eq!(stream.cached_info().state.messages, 1);
    let bound = js.get_key_value(bucket.clone()).await.expect("get_key_value of an existing bucket");
    let entry = bound.entry("k").await.expect("entry").expect("present");
    assert_eq!((entry.value.as_ref(), entry.revision), (&b"v"[..], rev));
    let missing = js.get_key_value(unique("nobucket")).await.expect_err("no such bucket");
    assert!(!missing.to_string().is_empty());
}
