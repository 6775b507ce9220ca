"""Store-and-forward from the edge into the cluster: an edge stream mirrored into an R3
stream of a 3-node nats-server 2.14 cluster across the leaf link and JetStream domains.

The cluster (JetStream domain `hub`) mirrors the edge's `ORDERS` (domain `edge`) with
`external { api: "$JS.edge.API", deliver }`: nats-server asks the edge for a push consumer
(flow control, idle heartbeats, `direct`) through the link and re-creates it from its last
sequence after a gap. The link runs through a proxy the test can cut (the hub does not
advertise its other leaf URLs, so the leaf cannot go around it). Each test runs first with
nats-server 2.14 as the leaf, then with edgebus.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.js.api import ExternalStream, StreamConfig, StreamSource
from nats.js.errors import BadRequestError

from conftest import SIGKILL, Server, free_port
from edgehelp import HOST, http_json, nats_connect, poll, poll_sync, wait_state
from test_leaf import LEAF_PASS, LEAF_USER, Hub, argv, start

JS_WAIT = 45.0  # a mirror retries its consumer every few seconds; this bounds a broken one


class JsHub(Hub):
    """The leaf-test cluster with JetStream (R3, domain `hub`) on every node. Node 1's leaf
    port is reached through `proxy`, which is also the only leaf URL the hub gossips (its
    own is advertised as the proxy's, the other nodes' not at all), so cutting the proxy cuts
    the link until it is restored."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.proxy = Cut(self.leaf_ports[0])
        for i, n in enumerate(self.nodes):
            own = f'\n  advertise: "{HOST}:{self.proxy.port}"' if i == 0 else ""
            text = n.config_path.read_text().replace("leafnodes {", "leafnodes {\n  no_advertise: true" + own)
            n.config_path.write_text(text + f'jetstream {{ store_dir: "{n.store_dir}", domain: hub }}\n')

    def wait_meta(self) -> None:
        """Until the JetStream meta group has a leader (streams cannot be created before)."""
        for n in self.nodes:
            ok = poll_sync(lambda: (http_json(n.http_port, "/jsz").get("meta_cluster") or {}).get("leader"),
                           timeout=30, every=0.2)
            assert ok, n.log_text()[-2000:]


class Cut:
    """A TCP proxy in front of one hub leaf port: `cut()` drops every connection and stops
    listening (the leaf's dials are refused), `restore()` listens again on the same port."""

    def __init__(self, target: int):
        self.target = target
        self.port = free_port()
        self.lock = threading.Lock()
        self.socks: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((HOST, self.port))
        ls.listen(8)
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                down, _ = ls.accept()
            except OSError:
                return
            try:
                up = socket.create_connection((HOST, self.target))
            except OSError:
                down.close()
                continue
            with self.lock:
                if self.listener is not ls:  # cut while dialling
                    down.close()
                    up.close()
                    return
                self.socks += [down, up]
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            ls, self.listener = self.listener, None
            socks, self.socks = self.socks, []
        if ls is not None:
            try:
                ls.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (Linux), which frees the port
            except OSError:
                pass
            ls.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = JsHub(tmp_path_factory.mktemp("jshub")).start()
    h.wait_meta()
    yield h
    h.stop()
    h.proxy.cut()


def edge_config(leaf_ports: list[int], name: str, domain: str) -> str:
    urls = ", ".join(f'"nats-leaf://{LEAF_USER}:{LEAF_PASS}@{HOST}:{p}"' for p in leaf_ports)
    return f"""
server_name: {name}
leafnodes {{
  remotes: [ {{ urls: [{urls}] }} ]
  reconnect: "250ms"
}}
jetstream {{ domain: {domain} }}
"""


def start_edge(kind: str, root: Path, leaf_port: int | list[int], name: str, domain: str = "edge") -> Server:
    ports = leaf_port if isinstance(leaf_port, list) else [leaf_port]
    s = Server(root, config_text=edge_config(ports, name, domain))
    extra = ["-js", "-sd", str(s.store_dir)] if kind == "nats-server" else ["--jetstream", "--store_dir", str(s.store_dir)]
    s.start(argv=argv(kind, s) + extra, wait_ws=False)
    s.kind = kind
    return s


def leafs(hub: JsHub) -> int:
    return sum(hub.leaf_count(i) for i in range(3))


@pytest.fixture(scope="module", params=["nats-server", "edgebus"])
def edge(request, hub, tmp_path_factory):
    """The edge (JetStream domain `edge`) dialling hub node 1 through the hub's proxy."""
    s = start_edge(request.param, tmp_path_factory.mktemp(f"edge-{request.param}"), hub.proxy.port, "edge")
    assert poll_sync(lambda: leafs(hub) == 1, timeout=15), s.log_text()[-3000:]
    yield s
    s.stop()
    assert poll_sync(lambda: leafs(hub) == 0, timeout=15)


@pytest_asyncio.fixture
async def clients(hub, edge):
    at_edge = await nats_connect(edge.url)
    at_hub = await nats_connect(hub.nodes[1].url)
    yield at_edge, at_hub
    for nc in (at_edge, at_hub):
        await nc.close()


async def publish(js, subject: str, payloads) -> None:
    for p in payloads:
        await js.publish(subject, p)


async def contents(js, stream: str, count: int) -> list[tuple[int, bytes]]:
    """Messages 1..count of `stream`, by sequence."""
    return [(seq, (await js.get_msg(stream, seq)).data) for seq in range(1, count + 1)]


async def diagnose(at_edge, at_hub, name: str, mirror: str) -> str:
    """The mirror's state at the hub and the consumers at the edge, for a failure message."""
    info = json.loads((await at_hub.request(f"$JS.API.STREAM.INFO.{mirror}", b"", timeout=5)).data)
    consumers = json.loads((await at_edge.request(f"$JS.API.CONSUMER.LIST.{name}", b"", timeout=5)).data)
    return f"mirror: {info.get('mirror') or info.get('sources')} state: {info.get('state')}\nedge consumers: {consumers}"


@pytest.mark.timeout(240)
async def test_an_edge_stream_mirrored_into_the_cluster_survives_a_cut_link(hub, edge, clients):
    at_edge, at_hub = clients
    edge_js, hub_js = at_edge.jetstream(), at_hub.jetstream()
    name = f"ORDERS_{edge.kind.replace('-', '_')}"
    await edge_js.add_stream(name=name, subjects=[f"{name}.>"], storage="file")
    mirror = f"{name}_MIRROR"
    await add_r3(hub_js, StreamConfig(
        name=mirror, num_replicas=3,
        mirror=StreamSource(name=name, external=ExternalStream(api="$JS.edge.API", deliver=f"deliver.{name}")),
    ))
    first = [b"%d" % i for i in range(1, 501)]
    await publish(edge_js, f"{name}.new", first)
    state = await wait_state(hub_js, mirror, lambda s: s.messages >= 500, timeout=JS_WAIT)
    assert (state.messages, state.last_seq) == (500, 500), await diagnose(at_edge, at_hub, name, mirror)

    hub.proxy.cut()
    assert poll_sync(lambda: leafs(hub) == 0, timeout=15), "the hub still lists the leaf"
    second = [b"%d" % i for i in range(501, 1001)]
    await publish(edge_js, f"{name}.new", second)  # stored at the edge while the link is down
    assert (await edge_js.stream_info(name)).state.messages == 1000
    assert leafs(hub) == 0 and (await hub_js.stream_info(mirror)).state.messages == 500
    hub.proxy.restore()
    assert poll_sync(lambda: leafs(hub) == 1, timeout=15), edge.log_text()[-3000:]

    # a marker after the 1,000: once it is in the mirror, nothing of the 1,000 is still on its way
    await edge_js.publish(f"{name}.end", b"end")
    state = await wait_state(hub_js, mirror, lambda s: s.last_seq >= 1001, timeout=JS_WAIT)
    assert (state.messages, state.first_seq, state.last_seq) == (1001, 1, 1001), await diagnose(at_edge, at_hub, name, mirror)
    got = await contents(hub_js, mirror, 1001)
    assert got == [(i, p) for i, p in enumerate(first + second + [b"end"], start=1)]
    info = json.loads((await at_hub.request(f"$JS.API.STREAM.INFO.{mirror}", b"", timeout=5)).data)
    assert info["mirror"]["lag"] == 0, info["mirror"]
    assert len(info["cluster"].get("replicas") or []) == 2, info["cluster"]
    # the mirror's consumer at the edge is `direct`: not listed, as nats-server does
    names = json.loads((await at_edge.request(f"$JS.API.CONSUMER.NAMES.{name}", b"", timeout=5)).data)
    assert (names["total"], names.get("consumers") or []) == (0, []), names


@pytest.mark.timeout(240)
async def test_two_edges_sourced_into_one_cluster_stream(hub, edge, clients, tmp_path_factory):
    """`sources` across domains: the streams of two edges (the module's, domain `edge`, and a
    second one of the same kind on hub node 2, domain `edge2`) sourced into one R3 stream."""
    at_edge, at_hub = clients
    other = start_edge(edge.kind, tmp_path_factory.mktemp(f"edge2-{edge.kind}"), hub.leaf_ports[1], "edge2", "edge2")
    try:
        assert poll_sync(lambda: leafs(hub) == 2, timeout=15), other.log_text()[-3000:]
        at_other = await nats_connect(other.url)
        try:
            tag = edge.kind.replace("-", "_")
            names = [f"SA_{tag}", f"SB_{tag}"]
            for nc, n in ((at_edge, names[0]), (at_other, names[1])):
                await nc.jetstream().add_stream(name=n, subjects=[f"{n}.>"], storage="file")
                for i in range(100):
                    await nc.jetstream().publish(f"{n}.x", b"%d" % i)
            total = f"ALL_{tag}"
            await add_r3(at_hub.jetstream(), StreamConfig(name=total, num_replicas=3, sources=[
                StreamSource(name=names[0], external=ExternalStream(api="$JS.edge.API", deliver=f"deliver.{names[0]}")),
                StreamSource(name=names[1], external=ExternalStream(api="$JS.edge2.API", deliver=f"deliver.{names[1]}")),
            ]))
            state = await wait_state(at_hub.jetstream(), total, lambda s: s.messages >= 200, timeout=JS_WAIT)
            assert state.messages == 200, await diagnose(at_edge, at_hub, names[0], total)
            got = [(m.subject, m.data) for m in [await at_hub.jetstream().get_msg(total, q) for q in range(1, 201)]]
            for n in names:  # each edge's messages all there, once, in their order
                assert [d for s, d in got if s == f"{n}.x"] == [b"%d" % i for i in range(100)]
        finally:
            await at_other.close()
    finally:
        other.stop()
        assert poll_sync(lambda: leafs(hub) == 1, timeout=15)


async def add_r3(js, config: StreamConfig, timeout: float = 30.0) -> None:
    """Creates an R3 stream on a cluster just formed: its meta leader may not count every
    peer online yet (10005, "no suitable peers for placement"), so that answer is retried."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await js.add_stream(config)
            return
        except BadRequestError as e:
            if e.err_code != 10005 or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.2)


async def settled_state(js, stream: str, check, timeout: float):
    """The stream's state once `check` holds (or the last one seen at `timeout`); a stream
    info that times out while the cluster elects a new leader after a node died is asked
    again."""
    deadline = asyncio.get_running_loop().time() + timeout
    state = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            state = (await js.stream_info(stream)).state
        except nats.errors.TimeoutError:
            continue
        if check(state):
            break
        await asyncio.sleep(0.05)
    return state


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["nats-server", "edgebus"])
async def test_the_mirror_survives_the_hub_node_of_the_leaf_killed(tmp_path, kind):
    """The hub node the edge's leaf is on is killed with SIGKILL while the edge publishes:
    the leaf reconnects to another node (the edge knows all three leaf URLs), the R3 mirror
    keeps its quorum on the two left, and it ends with exactly all messages, in order, once.
    A cluster of its own, so the module's keeps all three nodes."""
    hub = JsHub(tmp_path / "hub").start()
    edge = at_edge = at_hub = None
    try:
        hub.wait_meta()
        edge = start_edge(kind, tmp_path / "edge", hub.leaf_ports, "edge")
        assert poll_sync(lambda: leafs(hub) == 1, timeout=15), edge.log_text()[-3000:]
        on = next(i for i in range(3) if hub.leaf_count(i) == 1)
        at_edge, at_hub = await nats_connect(edge.url), await nats_connect(hub.nodes[(on + 1) % 3].url)
        edge_js, hub_js = at_edge.jetstream(), at_hub.jetstream()
        await edge_js.add_stream(name="KILLED", subjects=["KILLED.>"], storage="file")
        await add_r3(hub_js, StreamConfig(
            name="KILLED_MIRROR", num_replicas=3,
            mirror=StreamSource(name="KILLED", external=ExternalStream(api="$JS.edge.API", deliver="deliver.KILLED")),
        ))
        sent = [b"%d" % i for i in range(1, 701)]
        await publish(edge_js, "KILLED.new", sent[:200])
        state = await wait_state(hub_js, "KILLED_MIRROR", lambda s: s.messages >= 200, timeout=JS_WAIT)
        assert state.messages == 200, await diagnose(at_edge, at_hub, "KILLED", "KILLED_MIRROR")

        for i, p in enumerate(sent[200:]):
            if i == 100:
                await asyncio.get_running_loop().run_in_executor(None, hub.nodes[on].kill, SIGKILL)
            await edge_js.publish("KILLED.new", p)
        moved = poll_sync(lambda: any(hub.leaf_count(i) == 1 for i in range(3) if i != on), timeout=20)
        assert moved, edge.log_text()[-3000:]

        # a marker after the 700: once it is in the mirror, nothing before it is on its way
        await edge_js.publish("KILLED.end", b"end")
        state = await settled_state(hub_js, "KILLED_MIRROR", lambda s: s.last_seq >= 701, timeout=JS_WAIT * 2)
        assert (state.messages, state.first_seq, state.last_seq) == (701, 1, 701), \
            await diagnose(at_edge, at_hub, "KILLED", "KILLED_MIRROR")
        got = await contents(hub_js, "KILLED_MIRROR", 701)
        assert got == [(i, p) for i, p in enumerate(sent + [b"end"], start=1)]
    finally:
        for nc in (at_edge, at_hub):
            if nc:
                await nc.close()
        if edge:
            edge.stop()
        hub.stop()
        hub.proxy.cut()
