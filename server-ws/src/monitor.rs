//! The monitoring endpoints (`/healthz`, `/varz`, `/connz`, `/subsz`) with nats-server's
//! JSON field names, for what edgebus tracks. Dashboards and scripts written for nats-server
//! read them unchanged.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tracing::debug;

use crate::server::Shared;
use crate::transport::Kind;

pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await
            {
                debug!("monitoring connection: {e}");
            }
        });
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let query = req.uri().query().unwrap_or("");
    let body = match req.uri().path().trim_end_matches('/') {
        "" => Some(
            json!({ "varz": "/varz", "connz": "/connz", "subsz": "/subsz", "jsz": "/jsz", "leafz": "/leafz", "healthz": "/healthz" }),
        ),
        "/healthz" => Some(json!({ "status": "ok" })),
        "/varz" => Some(varz(&shared)),
        "/connz" => Some(connz(&shared, query)),
        "/subsz" | "/subscriptionsz" => Some(subsz(&shared)),
        "/jsz" => Some(jsz(&shared)),
        "/leafz" => {
            Some(crate::leaf::leafz(&shared, query_flag(query, "subs").is_some_and(|v| v == "1" || v == "true")))
        }
        _ => None,
    };
    let (status, body) = match body {
        Some(v) => (StatusCode::OK, serde_json::to_vec_pretty(&v).unwrap_or_default()),
        None => (StatusCode::NOT_FOUND, b"404 page not found\n".to_vec()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// A wall-clock time as Go's JSON prints one (RFC 3339, trailing zeros of the fraction
/// dropped), by the core's formatter that JetStream's timestamps use.
/// The current time as the endpoints print it.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

fn rfc3339(t: SystemTime) -> String {
    edgebus_core::jetstream::time::rfc3339(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64))
}

fn uptime(d: Duration) -> String {
    edgebus_core::duration::uptime(d.as_secs())
}

/// Resident memory in bytes, from `/proc` where there is one.
fn resident_memory() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

pub(crate) fn varz(shared: &Shared) -> Value {
    let o = &shared.opts;
    let s = &shared.stats;
    let now = SystemTime::now();
    let mut v = json!({
        "server_id": shared.server_id,
        "server_name": shared.server_name,
        "version": edgebus_core::NATS_VERSION,
        "proto": 1,
        "go": format!("edgebus {}", env!("CARGO_PKG_VERSION")),
        "host": o.host,
        "port": shared.client_addr.lock().map_or(0, |a| a.port()),
        "auth_required": shared.authenticator(crate::transport::Kind::Tcp).required(),
        "tls_timeout": o.tls.timeout.as_secs_f64(),
        "max_connections": shared.limits.max_connections(),
        "max_subscriptions": o.max_subscriptions,
        "ping_interval": shared.limits.ping_interval().as_nanos() as u64,
        "ping_max": shared.limits.ping_max(),
        "http_host": o.http_host.clone().unwrap_or_else(|| o.host.clone()),
        "http_port": shared.http_addr.lock().map_or(0, |a| a.port()),
        "max_control_line": shared.limits.max_control_line(),
        "max_payload": shared.limits.max_payload(),
        "max_pending": o.max_pending,
        "write_deadline": shared.limits.write_deadline().as_nanos() as u64,
        "start": rfc3339(shared.started_at),
        "now": rfc3339(now),
        "uptime": uptime(shared.started.elapsed()),
        "mem": resident_memory(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "connections": shared.clients.lock().len(),
        "total_connections": s.total_connections.load(Ordering::Relaxed),
        "routes": 0,
        "remotes": 0,
        "leafnodes": shared.leafs.lock().len(),
        "in_msgs": s.in_msgs.load(Ordering::Relaxed),
        "out_msgs": s.out_msgs.load(Ordering::Relaxed),
        "in_bytes": s.in_bytes.load(Ordering::Relaxed),
        "out_bytes": s.out_bytes.load(Ordering::Relaxed),
        "slow_consumers": s.slow_consumers.load(Ordering::Relaxed),
        // edgebus's own: nats-server has no such counter (a panic there ends the process)
        "connection_panics": s.connection_panics.load(Ordering::Relaxed),
        "subscriptions": shared.subscription_count(),
    });
    if o.tls.enabled {
        v["tls_required"] = json!(true);
        if o.tls.verify {
            v["tls_verify"] = json!(true);
        }
    }
    if let Some(a) = *shared.ws_addr.lock() {
        v["websocket"] = json!({ "host": a.ip().to_string(), "port": a.port(), "no_tls": o.websocket.no_tls });
    }
    if shared.jetstream_running.load(Ordering::Acquire) {
        let (st, accounts) = shared.accounts.jetstream_totals();
        v["jetstream"] = json!({ "config": jetstream_config(shared), "stats": jetstream_usage(&st, accounts) });
    }
    v
}

fn jetstream_config(shared: &Shared) -> Value {
    let js = &shared.opts.jetstream;
    json!({
        "max_memory": js.max_memory_store,
        "max_storage": js.max_file_store,
        "store_dir": js.store_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
    })
}

/// `/jsz`: JetStream totals with nats-server's field names.
fn jsz(shared: &Shared) -> Value {
    if !shared.jetstream_running.load(Ordering::Acquire) {
        return json!({ "server_id": shared.server_id, "now": rfc3339(SystemTime::now()), "disabled": true });
    }
    let (st, accounts) = shared.accounts.jetstream_totals();
    let mut v = jetstream_usage(&st, accounts);
    v["server_id"] = json!(shared.server_id);
    v["now"] = json!(rfc3339(SystemTime::now()));
    v["config"] = jetstream_config(shared);
    v["streams"] = json!(st.streams);
    v["consumers"] = json!(st.consumers);
    v["messages"] = json!(st.messages);
    v["bytes"] = json!(st.bytes);
    v
}

/// The usage block `/varz` (under `jetstream.stats`) and `/jsz` share.
fn jetstream_usage(st: &edgebus_core::jetstream::Stats, accounts: usize) -> Value {
    json!({
        "memory": st.memory,
        "storage": st.storage,
        "reserved_memory": st.reserved_memory,
        "reserved_storage": st.reserved_storage,
        "accounts": accounts,
        "ha_assets": 0,
        "api": { "level": 4, "total": st.api_total, "errors": st.api_errors },
    })
}

fn query_flag(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.to_string())
    })
}

fn connz(shared: &Shared, query: &str) -> Value {
    let subs = query_flag(query, "subs").unwrap_or_default();
    let (list, detail) = (matches!(subs.as_str(), "1" | "true"), subs == "detail");
    let offset: usize = query_flag(query, "offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = query_flag(query, "limit").and_then(|v| v.parse().ok()).unwrap_or(1024);
    let mut clients: Vec<_> = shared.clients.lock().values().cloned().collect();
    clients.sort_by_key(|c| c.id);
    let total = clients.len();
    let now = SystemTime::now();
    let conns: Vec<Value> = clients
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| {
            let (out_msgs, out_bytes, pending) = c.out_stats();
            let meta = c.meta.lock().clone();
            let mut v = json!({
                "cid": c.id,
                "kind": "Client",
                "type": match c.kind { Kind::Tcp => "nats", Kind::WebSocket => "websocket" },
                "ip": c.addr.ip().to_string(),
                "port": c.addr.port(),
                "start": rfc3339(c.started),
                "uptime": uptime(now.duration_since(c.started).unwrap_or_default()),
                "pending_bytes": pending,
                "in_msgs": c.in_msgs.load(Ordering::Relaxed),
                "out_msgs": out_msgs,
                "in_bytes": c.in_bytes.load(Ordering::Relaxed),
                "out_bytes": out_bytes,
                "subscriptions": c.num_subs.load(Ordering::Relaxed),
                "name": meta.name,
                "lang": meta.lang,
                "version": meta.version,
            });
            if list || detail {
                let mut subs: Vec<_> = c.subs.lock().values().filter(|s| !s.is_closed()).cloned().collect();
                subs.sort_by(|a, b| a.subject.cmp(&b.subject));
                let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
                if detail {
                    v["subscriptions_list_detail"] = subs
                        .iter()
                        .map(|s| {
                            let mut d = json!({ "subject": text(&s.subject), "sid": text(&s.sid), "msgs": s.delivered_count(), "cid": c.id });
                            if let Some(q) = &s.queue {
                                d["qgroup"] = json!(text(q));
                            }
                            d
                        })
                        .collect();
                } else {
                    v["subscriptions_list"] = subs.iter().map(|s| json!(text(&s.subject))).collect();
                }
            }
            v
        })
        .collect();
    json!({
        "server_id": shared.server_id,
        "now": rfc3339(now),
        "num_connections": conns.len(),
        "total": total,
        "offset": offset,
        "limit": limit,
        "connections": conns,
    })
}

fn subsz(shared: &Shared) -> Value {
    json!({
        "server_id": shared.server_id,
        "now": rfc3339(SystemTime::now()),
        "num_subscriptions": shared.subscription_count(),
    })
}
