"""The edge follows streams that live in the cluster: an edge stream mirrors (or sources) a
stream of a 3-node nats-server 2.14 cluster across the leaf link and JetStream domains.

The edge (domain `edge`) mirrors the cluster's R1 `HUB_*` (domain `hub`) with
`mirror { external { api: "$JS.hub.API", deliver } }`: the edge asks the cluster for a push
consumer (flow control, idle heartbeats, `direct`) through the link and re-creates it from its
last sequence after a gap or a silence. The link runs through the proxy of
test_leaf_mirror.py, which the test cuts while the cluster keeps publishing. Each test runs
first with nats-server 2.14 as the edge, then with edgebus. The last test has edgebus on
both sides (an edgebus leaf below an edgebus with a leaf port, which advertises the proxy).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.js.api import ExternalStream, StreamConfig, StreamSource

from conftest import Server, free_port
from edgehelp import HOST, http_json, nats_connect, poll_sync, wait_state
from test_leaf import LEAF_PASS, LEAF_USER, argv
from test_leaf_mirror import Cut, JsHub, clients, edge, leafs, start_edge  # noqa: F401 (fixtures)

# a follower notices a lost link after 10 s of silence, and its create requests back off
JS_WAIT = 90.0


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = JsHub(tmp_path_factory.mktemp("jshub-ext")).start()
    h.wait_meta()
    yield h
    h.stop()
    h.proxy.cut()


async def stream_json(nc, name: str) -> dict:
    return json.loads((await nc.request(f"$JS.API.STREAM.INFO.{name}", b"", timeout=5)).data)


async def payloads(js, stream: str, count: int) -> list[bytes]:
    return [(await js.get_msg(stream, seq)).data for seq in range(1, count + 1)]


async def publish_through_a_cut(hub: JsHub, js, subject: str, first: int, last: int, cut_at: int) -> None:
    """Publishes numbers `first..last` on `subject` in the cluster, cutting the leaf link
    after `cut_at` and restoring it once the cluster has dropped the leaf and everything is
    published (the follower then has messages to catch up on)."""
    for i in range(first, last + 1):
        await js.publish(subject, b"%d" % i)
        if i == cut_at:
            hub.proxy.cut()
        if i % 50 == 0:
            await asyncio.sleep(0.01)  # spread the publishing over the cut
    assert poll_sync(lambda: leafs(hub) == 0, timeout=15), "the hub still lists the leaf"
    hub.proxy.restore()
    assert poll_sync(lambda: leafs(hub) == 1, timeout=15), "the leaf did not come back"


@pytest.mark.timeout(300)
async def test_an_edge_mirror_of_a_cluster_stream_survives_a_cut_link(hub, edge, clients):
    at_edge, at_hub = clients
    edge_js, hub_js = at_edge.jetstream(), at_hub.jetstream()
    tag = edge.kind.replace("-", "_")
    origin, mirror = f"HUB_{tag}", f"HUBM_{tag}"
    await hub_js.add_stream(name=origin, subjects=[f"{origin}.>"], num_replicas=1)
    await publish_numbers(hub_js, f"{origin}.n", 1, 300)
    ext = ExternalStream(api="$JS.hub.API", deliver=f"deliver.{mirror}")
    await edge_js.add_stream(StreamConfig(name=mirror, storage="file", mirror=StreamSource(name=origin, external=ext)))
    state = await wait_state(edge_js, mirror, lambda s: s.messages >= 300, timeout=JS_WAIT)
    assert (state.messages, state.last_seq) == (300, 300), await stream_json(at_edge, mirror)

    await publish_through_a_cut(hub, hub_js, f"{origin}.n", 301, 1200, cut_at=500)
    # a marker after the 1,200: once it is in the mirror, nothing before it is on its way
    await hub_js.publish(f"{origin}.end", b"end")
    state = await wait_state(edge_js, mirror, lambda s: s.last_seq >= 1201, timeout=JS_WAIT)
    assert (state.messages, state.first_seq, state.last_seq) == (1201, 1, 1201), await stream_json(at_edge, mirror)
    got = await payloads(edge_js, mirror, 1201)
    assert got == [b"%d" % i for i in range(1, 1201)] + [b"end"]
    info = await stream_json(at_edge, mirror)
    m = info["mirror"]
    assert (m["name"], m["lag"], m["external"]["api"]) == (origin, 0, "$JS.hub.API"), m
    assert m["external"]["deliver"] == f"deliver.{mirror}", m
    assert 0 <= m["active"] < 5_000_000_000, m


async def publish_numbers(js, subject: str, first: int, last: int) -> None:
    for i in range(first, last + 1):
        await js.publish(subject, b"%d" % i)


@pytest.mark.timeout(300)
async def test_an_edge_stream_sources_two_cluster_streams_with_a_filter(hub, edge, clients):
    at_edge, at_hub = clients
    edge_js, hub_js = at_edge.jetstream(), at_hub.jetstream()
    tag = edge.kind.replace("-", "_")
    a, b, total = f"HA_{tag}", f"HB_{tag}", f"HALL_{tag}"
    for n in (a, b):
        await hub_js.add_stream(name=n, subjects=[f"{n}.>"], num_replicas=1)
    for i in range(1, 201):
        await hub_js.publish(f"{a}.keep" if i % 2 else f"{a}.skip", b"%d" % i)
        await hub_js.publish(f"{b}.x", b"%d" % i)
    ext = ExternalStream(api="$JS.hub.API", deliver=f"deliver.{total}")
    await edge_js.add_stream(StreamConfig(name=total, storage="file", sources=[
        StreamSource(name=a, filter_subject=f"{a}.keep", external=ext),
        StreamSource(name=b, external=ext),
    ]))
    state = await wait_state(edge_js, total, lambda s: s.messages >= 300, timeout=JS_WAIT)
    assert state.messages == 300, await stream_json(at_edge, total)

    # the cluster keeps publishing on both while the link is cut
    async def both(i):
        await hub_js.publish(f"{a}.keep", b"%d" % i)
        await hub_js.publish(f"{b}.x", b"%d" % i)
    for i in range(201, 701):
        await both(i)
        if i == 300:
            hub.proxy.cut()
    assert poll_sync(lambda: leafs(hub) == 0, timeout=15)
    hub.proxy.restore()
    assert poll_sync(lambda: leafs(hub) == 1, timeout=15)
    await hub_js.publish(f"{a}.keep", b"end")
    await hub_js.publish(f"{b}.x", b"end")
    want = 100 + 200 + 2 * 500 + 2
    state = await wait_state(edge_js, total, lambda s: s.messages >= want, timeout=JS_WAIT)
    assert state.messages == want, await stream_json(at_edge, total)
    got = [await edge_js.get_msg(total, q) for q in range(1, want + 1)]
    of_a = [m.data for m in got if m.subject == f"{a}.keep"]
    of_b = [m.data for m in got if m.subject == f"{b}.x"]
    assert of_a == [b"%d" % i for i in range(1, 201, 2)] + [b"%d" % i for i in range(201, 701)] + [b"end"]
    assert of_b == [b"%d" % i for i in range(1, 701)] + [b"end"]
    assert all(m.subject in (f"{a}.keep", f"{b}.x") for m in got)
    info = await stream_json(at_edge, total)
    srcs = {s["name"]: s for s in info["sources"]}
    assert srcs[a]["filter_subject"] == f"{a}.keep" and srcs[a]["external"]["api"] == "$JS.hub.API", srcs
    assert (srcs[a]["lag"], srcs[b]["lag"]) == (0, 0), srcs


@pytest.mark.timeout(300)
async def test_edgebus_mirrors_a_stream_of_the_edgebus_above_it(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext-edgebus-top")
    leaf_port = free_port()
    proxy = Cut(leaf_port)
    # the top advertises the proxy, as the cluster's node does in test_leaf_mirror.py: a spoke
    # that learnt the listener's own address would reconnect around the proxy
    top = Server(root / "top", config_text=f"""
server_name: top
leafnodes {{
  listen: "{HOST}:{leaf_port}"
  advertise: "{HOST}:{proxy.port}"
  authorization {{ user: {LEAF_USER}, password: {LEAF_PASS} }}
}}
jetstream {{ domain: top }}
""")
    top.start(argv=argv("edgebus", top) + ["--jetstream", "--store_dir", str(top.store_dir)], wait_ws=False)
    spoke = None
    linked = lambda n: http_json(top.http_port, "/leafz")["leafnodes"] == n  # noqa: E731
    try:
        spoke = start_edge("edgebus", root / "spoke", proxy.port, "spoke", "spoke")
        assert poll_sync(lambda: linked(1), timeout=15), spoke.log_text()[-3000:]
        at_top, at_spoke = await nats_connect(top.url), await nats_connect(spoke.url)
        try:
            top_js, spoke_js = at_top.jetstream(), at_spoke.jetstream()
            await top_js.add_stream(name="T", subjects=["t.>"], storage="file")
            await publish_numbers(top_js, "t.n", 1, 300)
            ext = ExternalStream(api="$JS.top.API", deliver="deliver.TM")
            await spoke_js.add_stream(StreamConfig(name="TM", storage="file", mirror=StreamSource(name="T", external=ext)))
            state = await wait_state(spoke_js, "TM", lambda s: s.messages >= 300, timeout=JS_WAIT)
            assert state.messages == 300, await stream_json(at_spoke, "TM")
            for i in range(301, 1201):
                await top_js.publish("t.n", b"%d" % i)
                if i == 500:
                    proxy.cut()
            assert poll_sync(lambda: linked(0), timeout=15), "the top still lists the leaf"
            proxy.restore()
            assert poll_sync(lambda: linked(1), timeout=15), spoke.log_text()[-3000:]
            await top_js.publish("t.end", b"end")
            state = await wait_state(spoke_js, "TM", lambda s: s.last_seq >= 1201, timeout=JS_WAIT)
            assert (state.messages, state.last_seq) == (1201, 1201), await stream_json(at_spoke, "TM")
            got = await payloads(spoke_js, "TM", 1201)
            assert got == [b"%d" % i for i in range(1, 1201)] + [b"end"]
            info = await stream_json(at_spoke, "TM")
            assert (info["mirror"]["lag"], info["mirror"]["external"]["api"]) == (0, "$JS.top.API"), info["mirror"]
        finally:
            await at_top.close()
            await at_spoke.close()
    finally:
        if spoke is not None:
            spoke.stop()
        top.stop()
        proxy.cut()
