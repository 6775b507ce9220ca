//! What each sample a scenario returns means: its label and unit, which way is better and the
//! target from the issue (the report's table, in order).

/// Which direction is better for a metric.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Better {
    Higher,
    Lower,
}

/// A target from the issue.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    /// The ratio (oriented so that > 1 means edgebus is better) must reach this.
    Ratio(f64),
    /// edgebus's own value must reach this (a self-relative figure like "with / without",
    /// or an absolute rate from the issue).
    Own(f64),
    /// edgebus's own value must stay below this (a time).
    OwnBelow(f64),
    /// edgebus's own value must reach this fraction of edgebus's value in another row (its
    /// key), measured in the same round: a rate bounded by a raw operation the page pays for,
    /// e.g. a sequential OPFS publish by one `write`+`flush` (issue 12: "within 80%").
    OwnOf(&'static str, f64),
}

pub(crate) struct MetricDef {
    pub(crate) key: &'static str,
    pub(crate) label: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) better: Better,
    pub(crate) target: Option<Target>,
}

const fn m(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    better: Better,
    target: Option<Target>,
) -> MetricDef {
    MetricDef { key, label, unit, better, target }
}

use Better::{Higher, Lower};
use Target::{Own, OwnBelow, OwnOf, Ratio};

/// Every metric in table order.
pub(crate) const METRICS: &[MetricDef] = &[
    // Issue 16 / session 10: async-nats, not the server, sets the core-NATS rates on two
    // cores (about 150 ns per message in each of its two tasks, against the edgebus server's
    // ~50), so the issue's >= 1.2 targets sit on the rows of our own raw TCP client
    // (`wsraw`); the async-nats rows stay, with their ratios, as the common client's view.
    m("pub16", "publish only, 16 B (async-nats)", "msgs/s", Higher, None),
    m("pub16_cpu", "publish only, 16 B (async-nats): server CPU per message", "ns", Lower, None),
    m("pub16_raw", "publish only, 16 B, raw TCP client (pre-built batches)", "msgs/s", Higher, Some(Ratio(1.2))),
    m("pub16_raw_cpu", "publish only, 16 B, raw TCP client: server CPU per message", "ns", Lower, None),
    m("pubsub16", "1 pub -> 1 sub, 16 B (async-nats)", "msgs/s", Higher, None),
    m("pubsub1k", "1 pub -> 1 sub, 1 KiB (async-nats)", "msgs/s", Higher, None),
    m("pubsub16_raw", "1 pub -> 1 sub, 16 B, raw TCP client", "msgs/s", Higher, Some(Ratio(1.2))),
    m("pubsub16_raw_cpu", "1 pub -> 1 sub, 16 B, raw TCP client: server CPU per message", "ns", Lower, None),
    m("pubsub1k_raw", "1 pub -> 1 sub, 1 KiB, raw TCP client", "msgs/s", Higher, Some(Ratio(1.2))),
    m("pubsub1k_raw_cpu", "1 pub -> 1 sub, 1 KiB, raw TCP client: server CPU per message", "ns", Lower, None),
    m("fanout8", "fan-out to 8 subs, 16 B", "deliveries/s", Higher, Some(Ratio(1.0))),
    m("queue4", "queue group of 4, 16 B", "msgs/s", Higher, Some(Ratio(1.0))),
    m("queue4_even", "queue group evenness (min/max)", "", Higher, None),
    m("pubsub16_perms", "1 pub -> 1 sub, 16 B, user with permissions", "msgs/s", Higher, Some(Ratio(1.0))),
    m("perms_cost", "pub/sub with permissions / without (fresh servers, same kind)", "", Higher, Some(Own(0.9))),
    m("rr_p50", "request/reply p50", "us", Lower, Some(Ratio(1.0))),
    m("rr_p90", "request/reply p90", "us", Lower, None),
    m("rr_p99", "request/reply p99", "us", Lower, None),
    m("rr_tput", "request/reply, 32 requesters", "req/s", Higher, Some(Ratio(1.0))),
    m("js_file_seq", "JetStream publish, file, sequential", "msgs/s", Higher, Some(Ratio(1.0))),
    m("js_file_256", "JetStream publish, file, 256 in flight", "msgs/s", Higher, Some(Ratio(1.0))),
    m("js_mem_seq", "JetStream publish, memory, sequential", "msgs/s", Higher, Some(Ratio(1.0))),
    m("js_mem_256", "JetStream publish, memory, 256 in flight", "msgs/s", Higher, Some(Ratio(1.0))),
    m("pull", "pull fetch 500 + explicit ack", "msgs/s", Higher, Some(Ratio(1.0))),
    m("kv_put", "KV put", "ops/s", Higher, Some(Ratio(1.0))),
    m("kv_get", "KV get", "ops/s", Higher, Some(Ratio(1.0))),
    m("subs_lit", "add literal subscriptions", "subs/s", Higher, None),
    m("subs_wc", "add wildcard subscriptions", "subs/s", Higher, None),
    // Runs without and with the 100k subscriptions alternate within a round (see
    // `scenarios::cost_growth`); the rates are the means of each kind.
    m("cg_none", "pub -> sub, no other subs, raw TCP client (runs between the with runs)", "msgs/s", Higher, None),
    m("cg_with", "pub -> sub, 100k unrelated subs, raw TCP client", "msgs/s", Higher, None),
    // issue 16: "the rate with them >= 0.98 of the rate without"; each with run against the
    // mean of the without runs on either side, the median of a round's pairs
    m("cg_keep", "100k subs: with / without (adjacent runs)", "x", Higher, Some(Own(0.98))),
    // the server's own cost, without / with (> 1: cheaper with)
    m("cg_cpu_none", "pub -> sub, no other subs: server CPU per message", "ns", Lower, None),
    m("cg_cpu_with", "pub -> sub, 100k unrelated subs: server CPU per message", "ns", Lower, None),
    m("cg_cpu_keep", "100k subs: server CPU per message, without / with", "x", Higher, None),
    m("cg_rss", "server RSS with 100k subs", "MiB", Lower, None),
    m("cg_rss_growth", "server RSS growth from adding them (round 1)", "MiB", Lower, None),
    // No "memory per idle connection" on a warm heap (an RSS delta that read 0.0 KiB for
    // edgebus in one run): the 10,000-connection row's RSS per connection, in a fresh
    // process, is the measurement.
    // Issue 16: the WebSocket path (async-nats over ws://), fsync before every JetStream
    // ack, and 10,000 connections at once; each on a fresh server process per round.
    m("ws_pubsub16", "WebSocket: 1 pub -> 1 sub, 16 B", "msgs/s", Higher, Some(Ratio(1.5))),
    m("ws_cpu16", "WebSocket 16 B: server CPU per message", "ns", Lower, Some(Ratio(2.0))),
    m("ws_pubsub1k", "WebSocket: 1 pub -> 1 sub, 1 KiB", "msgs/s", Higher, Some(Ratio(1.2))),
    m("ws_cpu1k", "WebSocket 1 KiB: server CPU per message", "ns", Lower, Some(Ratio(2.0))),
    // The rest of the WebSocket path (bench/src/wsmixed.rs): fan-out, and WebSocket on one
    // side with TCP on the other; the issue sets no target for these.
    m("ws_fanout8", "WebSocket: fan-out to 8 subs, 16 B", "deliveries/s", Higher, None),
    m("mix_ws_tcp16", "WebSocket pub -> TCP sub, 16 B", "msgs/s", Higher, None),
    m("mix_ws_tcp1k", "WebSocket pub -> TCP sub, 1 KiB", "msgs/s", Higher, None),
    m("mix_tcp_ws16", "TCP pub -> WebSocket sub, 16 B", "msgs/s", Higher, None),
    m("mix_tcp_ws1k", "TCP pub -> WebSocket sub, 1 KiB", "msgs/s", Higher, None),
    m("js_always_seq", "JetStream file publish, sync always, sequential", "msgs/s", Higher, Some(Ratio(1.0))),
    m("js_always_256", "JetStream file publish, sync always, 256 in flight", "msgs/s", Higher, Some(Ratio(2.0))),
    m("conn10k_time", "10,000 connections (500 in flight): all PONGed", "s", Lower, Some(Ratio(1.0))),
    m("conn10k_rss", "10,000 connections: RSS per connection (fresh process)", "KiB", Lower, Some(Ratio(2.0))),
    // Issue 14: "accepting and answering 10,000 connections at least as fast as nats-server".
    m("conn_seq_us", "10,000 connections one by one (CONNECT + PING each)", "us per conn", Lower, Some(Ratio(1.0))),
    m("rrl_p50", "request/reply p50 under fan-out load", "us", Lower, None),
    m("rrl_p99", "request/reply p99 under fan-out load", "us", Lower, Some(Ratio(1.0))),
    m("rrl_p999", "request/reply p99.9 under fan-out load", "us", Lower, None),
    m("rrl_load", "fan-out load reached meanwhile (offered 200k)", "deliveries/s", Higher, None),
    m("mem_first", "memory over time: RSS at rest after round 1 of 5 (one process)", "MiB", Lower, None),
    m("mem_last", "memory over time: RSS after round 5 of 5", "MiB", Lower, None),
    m("mem_growth", "memory over time: RSS round 5 / round 1", "x", Lower, Some(OwnBelow(1.1))),
    // In headless Chromium: edgebus inside the page vs nats.ws in the page -> nats-server
    // over a loopback WebSocket (bench/browser/run.mjs). Targets from issue 5.
    m("kv_watch", "KV watch: one put seen by all of 1,000 watchers", "ms", Lower, None),
    m("obj_put", "object store put, 10 MiB", "MiB/s", Higher, None),
    m("obj_get", "object store get, 10 MiB", "MiB/s", Higher, None),
    // Issue 15: across a leaf link, the leaf being the server under test and the hub a
    // fresh nats-server in both columns (bench/src/leaf.rs).
    m("leaf_up", "leaf -> hub: 1 pub -> 1 sub, 16 B (async-nats)", "msgs/s", Higher, None),
    m("leaf_down", "hub -> leaf: 1 pub -> 1 sub, 16 B (async-nats)", "msgs/s", Higher, None),
    m("leaf_up_raw", "leaf -> hub: 1 pub -> 1 sub, 16 B, raw TCP client", "msgs/s", Higher, Some(Ratio(1.0))),
    m("leaf_up_raw_cpu", "leaf -> hub, raw TCP client: leaf CPU per message", "ns", Lower, None),
    m("leaf_down_raw", "hub -> leaf: 1 pub -> 1 sub, 16 B, raw TCP client", "msgs/s", Higher, Some(Ratio(1.0))),
    m("leaf_down_raw_cpu", "hub -> leaf, raw TCP client: leaf CPU per message", "ns", Lower, None),
    m("page_pubsub_batch", "page: pub -> sub 16 B, batch API", "msgs/s", Higher, Some(Own(2e6))),
    m("page_pubsub", "page: pub -> sub 16 B, per message", "msgs/s", Higher, Some(Own(2e6))),
    m("page_rr_p50", "page: request/reply p50", "us", Lower, Some(OwnBelow(20.0))),
    m("page_js_seq", "page: JetStream publish, sequential", "msgs/s", Higher, None),
    m("page_js_par", "page: JetStream publish, 256 in flight", "msgs/s", Higher, Some(Own(50e3))),
    m("page_kv_put", "page: KV put", "ops/s", Higher, None),
    m("page_kv_get", "page: KV get", "ops/s", Higher, None),
    m("page_cold_open", "page: cold open, 100k-msg stream", "ms", Lower, Some(OwnBelow(1000.0))),
    // Issue 12: the same over OPFS (the other column: nats.ws -> nats-server's file store).
    // Raw `write`+`flush` of 64 B on a sync access handle in a worker like the store's, timed
    // in the worker (edgebus only: what one OPFS commit cannot go below); the sequential rows'
    // targets are edgebus's own rate against it, round by round.
    m("page_opfs_flush", "page (OPFS): raw write+flush, 64 B, in the worker", "calls/s", Higher, None),
    // The same call asked of that worker from the page and awaited, one at a time: the floor
    // with the store in a worker, which the targets above do not count (informational).
    m("page_opfs_rt", "page (OPFS): raw write+flush, 64 B, page -> worker -> page", "calls/s", Higher, None),
    m(
        "page_js_seq_opfs",
        "page (OPFS): JetStream publish, sequential",
        "msgs/s",
        Higher,
        Some(OwnOf("page_opfs_flush", 0.8)),
    ),
    m("page_js_par_opfs", "page (OPFS): JetStream publish, 256 in flight", "msgs/s", Higher, Some(Own(250e3))),
    m("page_kv_put_opfs", "page (OPFS): KV put", "ops/s", Higher, Some(OwnOf("page_opfs_flush", 0.8))),
    m("page_kv_get_opfs", "page (OPFS): KV get", "ops/s", Higher, None),
    m("page_cold_open_opfs", "page (OPFS): cold open, 1M-msg stream", "ms", Lower, Some(OwnBelow(1000.0))),
];
