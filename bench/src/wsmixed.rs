//! More of the WebSocket path (issue 16): fan-out from one WebSocket publisher to eight
//! WebSocket subscribers, and the mixed paths a page meets when it talks to services on
//! TCP (a WebSocket publisher to a TCP subscriber, and the reverse). Every client is our own
//! ([`crate::wsraw`]), the same on both transports, so neither side's client sets the rate;
//! each server is a fresh process of its kind with a plain (no TLS) WebSocket listener
//! configured the same way. Every subscriber must see every message once and in order.

use crate::scenarios::{Samples, Sizes};
use crate::server::{free_port, Server};
use crate::wsraw::{Conn, Received, Transport};
use crate::Res;

/// A fresh server of `server`'s kind with a WebSocket listener; its TCP and WebSocket
/// `host:port`.
fn with_websocket(server: &Server) -> Res<(Server, String, String)> {
    let ws_port = free_port()?;
    let config = format!("websocket {{ host: 127.0.0.1, port: {ws_port}, no_tls: true }}\n");
    let fresh = Server::start_with(server.kind, &server.bin, Some(&config))?;
    let tcp = fresh.url.trim_start_matches("nats://").to_string();
    Ok((fresh, tcp, format!("127.0.0.1:{ws_port}")))
}

/// One side of a run: where it connects and over what.
#[derive(Clone, Copy)]
struct Side<'a> {
    addr: &'a str,
    transport: Transport,
}

/// One publisher, `subs` subscribers (each on its own connection): `n` numbered messages
/// of `size` bytes. Deliveries per second, first publish to last delivery; any lost,
/// duplicated or reordered message fails the run.
async fn deliveries(publisher: Side<'_>, sub: Side<'_>, subs: usize, subject: &str, n: u64, size: usize) -> Res<f64> {
    let mut receiving = Vec::with_capacity(subs);
    for _ in 0..subs {
        receiving.push(Conn::subscriber(sub.addr, sub.transport, subject).await?.receive(n, size));
    }
    let mut conn = Conn::open(publisher.addr, publisher.transport).await?;
    let start = conn.publish(subject, n, size).await?;
    let mut last = start;
    for (i, r) in receiving.into_iter().enumerate() {
        let Received { faults, got, last: at } = r.await??;
        if !faults.is_clean() {
            return Err(format!("{subject} subscriber {i}: integrity: {faults} ({n} expected, {got} counted)").into());
        }
        last = last.max(at.ok_or_else(|| format!("{subject} subscriber {i}: the last message never arrived"))?);
    }
    Ok((n * subs as u64) as f64 / (last - start).as_secs_f64().max(1e-9))
}

/// 1 WebSocket publisher -> 8 WebSocket subscribers, 16 B.
pub(crate) async fn fanout(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let (_fresh, _tcp, ws) = with_websocket(server)?;
    let side = Side { addr: &ws, transport: Transport::Ws };
    let rate = deliveries(side, side, 8, &format!("bench.wsfan.{round}"), sz.fanout, 16).await?;
    out.push(("ws_fanout8", rate));
    Ok(())
}

/// WebSocket publisher -> TCP subscriber and TCP publisher -> WebSocket subscriber, 16 B
/// and 1 KiB, on one fresh server.
pub(crate) async fn mixed(server: &Server, round: usize, sz: &Sizes, out: &mut Samples) -> Res<()> {
    let (_fresh, tcp, ws) = with_websocket(server)?;
    let ws = Side { addr: &ws, transport: Transport::Ws };
    let tcp = Side { addr: &tcp, transport: Transport::Tcp };
    let runs = [
        ("mix_ws_tcp16", ws, tcp, sz.pubsub16, 16),
        ("mix_ws_tcp1k", ws, tcp, sz.pubsub1k, 1024),
        ("mix_tcp_ws16", tcp, ws, sz.pubsub16, 16),
        ("mix_tcp_ws1k", tcp, ws, sz.pubsub1k, 1024),
    ];
    for (key, publisher, sub, n, size) in runs {
        out.push((key, deliveries(publisher, sub, 1, &format!("bench.{key}.{round}"), n, size).await?));
    }
    Ok(())
}
