//! In headless Chromium: the IndexedDB and OPFS stores keep the storage contract, survive a
//! reopen, and a bus on each gets its streams, KV values and consumer positions back.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use edgebus_core::jetstream::store::{contract, Storage, StoredMsg};
use edgebus_wasm::api::{open, Bus};
use edgebus_wasm::disk::{self, Disk, Kind};
use edgebus_wasm::idb::{IdbStorage, SharedJournal};
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn msg(seq: u64) -> StoredMsg {
    StoredMsg {
        seq,
        subject: Bytes::from(format!("m.{seq}")),
        headers: None,
        payload: Bytes::from(vec![b'p'; 100]),
        time: 1_700_000_000_000_000_000 + seq,
    }
}

async fn fresh(kind: Kind, name: &str) -> (Disk, SharedJournal) {
    disk::delete(name).await.unwrap();
    let db = Disk::open(kind, name).await.unwrap();
    let journal = SharedJournal::new(db.load().await.unwrap());
    (db, journal)
}

#[wasm_bindgen_test]
async fn idb_store_keeps_the_contract_and_survives_reopen() {
    store_keeps_the_contract_and_survives_reopen(Kind::Idb).await;
}

#[wasm_bindgen_test]
async fn opfs_store_keeps_the_contract_and_survives_reopen() {
    store_keeps_the_contract_and_survives_reopen(Kind::Opfs).await;
}

async fn store_keeps_the_contract_and_survives_reopen(kind: Kind) {
    let (db, journal) = fresh(kind, "t-contract").await;
    let mut storage = IdbStorage::new(journal.clone());
    let mut store = storage.create("S", b"{\"cfg\":1}").unwrap();
    contract::exercise(store.as_mut());
    for seq in 11..=2000 {
        store.append(&msg(seq)).unwrap();
    }
    store.remove(1500).unwrap();
    let mut gone = storage.create("GONE", b"{}").unwrap();
    gone.append(&msg(1)).unwrap();
    gone.destroy().unwrap();
    let ops = journal.borrow_mut().take_ops();
    db.write(ops).await.unwrap();
    db.close().await;

    let db = Disk::open(kind, "t-contract").await.unwrap();
    let journal = SharedJournal::new(db.load().await.unwrap());
    let mut storage = IdbStorage::new(journal.clone());
    let mut recovered = storage.recover().unwrap();
    assert_eq!(recovered.len(), 1, "the destroyed stream stays gone");
    let (config, store) = &mut recovered[0];
    assert_eq!(config, b"{\"cfg\":1}");
    let mut seqs = Vec::new();
    store.scan(&mut |m| seqs.push(m.seq)).unwrap();
    let mut want = vec![3, 4, 6, 7, 8, 9, 10];
    want.extend((11..=2000).filter(|s| *s != 1500));
    assert_eq!(seqs, want);
    assert_eq!(store.load(1999).unwrap(), Some(msg(1999)));
    assert_eq!(store.load(1500).unwrap(), None);
    assert_eq!(store.consumers().unwrap(), [("c1".to_string(), b"{\"a\":2}".to_vec())]);
    // and the contract holds on the reopened store too (a new stream in the same database)
    let mut again = storage.create("S2", b"{}").unwrap();
    contract::exercise(again.as_mut());
    let ops = journal.borrow_mut().take_ops();
    db.write(ops).await.unwrap();
    db.close().await;
    disk::delete("t-contract").await.unwrap();
}

async fn call(p: js_sys::Promise) -> JsValue {
    JsFuture::from(p).await.unwrap()
}

fn obj(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

async fn bus(name: &str, storage: &str) -> Bus {
    match open(obj(&format!("{{\"name\":\"{name}\",\"storage\":\"{storage}\"}}"))).await {
        Ok(b) => b,
        Err(e) => panic!("open: {e:?}"),
    }
}

#[wasm_bindgen_test]
async fn bus_reload_brings_back_streams_kv_and_consumer_positions() {
    bus_reload_brings_back(Kind::Idb).await;
}

#[wasm_bindgen_test]
async fn opfs_bus_reload_brings_back_streams_kv_and_consumer_positions() {
    bus_reload_brings_back(Kind::Opfs).await;
}

async fn bus_reload_brings_back(kind: Kind) {
    disk::delete("t-bus").await.unwrap();
    let b = bus("t-bus", kind.label()).await;
    call(b.js_api("STREAM.CREATE.ORDERS".into(), obj(r#"{"name":"ORDERS","subjects":["orders.>"]}"#), None)).await;
    for i in 1..=5 {
        let ack = call(b.js_publish(format!("orders.{i}"), vec![b'0' + i as u8], JsValue::UNDEFINED)).await;
        assert_eq!(get(&ack, "seq").as_f64(), Some(f64::from(i)));
    }
    call(b.js_api(
        "CONSUMER.CREATE.ORDERS.worker".into(),
        obj(r#"{"stream_name":"ORDERS","config":{"durable_name":"worker","ack_policy":"explicit"}}"#),
        None,
    ))
    .await;
    let msgs: js_sys::Array =
        call(b.fetch("ORDERS".into(), "worker".into(), obj(r#"{"max_messages":2,"expires":1000}"#))).await.into();
    assert_eq!(msgs.length(), 2);
    for m in msgs.iter() {
        b.publish(&get(&m, "reply").as_string().unwrap(), b"+ACK", JsValue::UNDEFINED).unwrap();
    }
    call(b.kv_bind("prefs".into(), JsValue::UNDEFINED)).await;
    let rev = call(b.kv_put("prefs".into(), "theme".into(), b"dark".to_vec(), None)).await;
    assert_eq!(rev.as_f64(), Some(1.0));
    call(b.kv_put("prefs".into(), "lang".into(), b"en".to_vec(), None)).await;
    call(b.kv_delete("prefs".into(), "lang".into(), false)).await;
    call(b.close()).await;

    let b = bus("t-bus", kind.label()).await;
    let info = b.info();
    assert_eq!(get(&info, "streams").as_f64(), Some(2.0));
    let entry = call(b.kv_get("prefs".into(), "theme".into(), None)).await;
    let value: Vec<u8> = js_sys::Uint8Array::new(&get(&entry, "value")).to_vec();
    assert_eq!(value, b"dark");
    assert!(call(b.kv_get("prefs".into(), "lang".into(), None)).await.is_null(), "deleted stays deleted");
    let keys: js_sys::Array = call(b.kv_keys("prefs".into(), None)).await.into();
    assert_eq!(keys.length(), 1);
    let next: js_sys::Array =
        call(b.fetch("ORDERS".into(), "worker".into(), obj(r#"{"max_messages":10,"expires":500}"#))).await.into();
    let subjects: Vec<String> = next.iter().map(|m| get(&m, "subject").as_string().unwrap()).collect();
    assert_eq!(subjects, ["orders.3", "orders.4", "orders.5"], "acked messages are not redelivered");
    call(b.close()).await;
    disk::delete("t-bus").await.unwrap();
}
