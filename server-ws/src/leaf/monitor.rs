//! `/leafz`: the live leaf links with nats-server's fields.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::server::Shared;

pub fn leafz(shared: &Shared, with_subs: bool) -> Value {
    let mut links: Vec<_> = shared.leafs.lock().values().cloned().collect();
    links.sort_by_key(|l| l.client.id);
    let leafs: Vec<Value> = links
        .iter()
        .map(|l| {
            let peer = l.peer.lock().clone();
            let (out_msgs, out_bytes, _) = l.client.out_stats();
            let mut v = json!({
                "name": peer.name,
                "is_spoke": !l.solicited,
                "account": l.account.name,
                "ip": l.client.addr.ip().to_string(),
                "port": l.client.addr.port(),
                "rtt": "0s",
                "in_msgs": l.in_msgs.load(Ordering::Relaxed),
                "out_msgs": out_msgs,
                "in_bytes": l.in_bytes.load(Ordering::Relaxed),
                "out_bytes": out_bytes,
                "subscriptions": l.remote_subs.load(Ordering::Relaxed),
                "compression": "off",
            });
            if with_subs {
                let mut subs: Vec<String> =
                    l.client.subs.lock().values().map(|s| String::from_utf8_lossy(&s.subject).into_owned()).collect();
                subs.sort();
                v["subscriptions_list"] = json!(subs);
            }
            v
        })
        .collect();
    json!({
        "server_id": shared.server_id,
        "now": crate::monitor::now_rfc3339(),
        "leafnodes": leafs.len(),
        "leafs": leafs,
    })
}
