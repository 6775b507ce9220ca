"""Leaf remotes over WebSocket: `ws://` and `wss://` URLs dial a nats-server 2.14 hub's
`websocket` port, upgrade at `/leafnode` and speak the leaf protocol in binary frames (the
hub's leaf port settings, here its authorization, apply). nats-server 2.14 runs as the leaf
first, then edgebus. And the other way: leaves dialling a server's WebSocket port at
`/leafnode`, which a server with a leaf port takes as a leaf connection (nats-server first,
then edgebus as that server)."""

from __future__ import annotations

import pytest

from conftest import Server, free_port
from edgehelp import HOST, http_json, poll_sync
from test_leaf import crosses_both_ways, start
from test_leaf_tls import certs  # noqa: F401  (the module's certificate fixture)


def leafs(s: Server) -> int:
    return http_json(s.http_port, "/leafz")["leafnodes"]


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
@pytest.mark.parametrize("kind", ["nats-server", "edgebus"])
async def test_a_leaf_over_websocket(tmp_path, certs, kind, secure):  # noqa: F811
    ws_port, leaf_port = free_port(), free_port()
    ws_tls = f'tls {{ cert_file: "{certs}/server.pem", key_file: "{certs}/server.key" }}' if secure else "no_tls: true"
    hub = start("nats-server", Server(tmp_path / "hub", config_text=f"""
server_name: hub
websocket {{ listen: "{HOST}:{ws_port}", {ws_tls} }}
leafnodes {{ listen: "{HOST}:{leaf_port}", authorization {{ user: leaf, password: pw }} }}
"""))
    scheme, remote_tls = ("wss", f', tls {{ ca_file: "{certs}/ca.pem" }}') if secure else ("ws", "")
    leaf = None
    try:
        leaf = start(kind, Server(tmp_path / "leaf", config_text=f"""
server_name: leaf
leafnodes {{ remotes: [ {{ url: "{scheme}://leaf:pw@{HOST}:{ws_port}"{remote_tls} }} ], reconnect: "250ms" }}
"""))
        ok = poll_sync(lambda: leafs(hub) == 1 and leafs(leaf) == 1, timeout=15)
        assert ok, hub.log_text()[-2000:] + leaf.log_text()[-2000:]
        # frames longer than one read
        await crosses_both_ways(hub, leaf, up_payload=bytes(range(256)) * 400)
    finally:
        if leaf:
            leaf.stop()
        hub.stop()


PAIRS = [("nats-server", "nats-server"), ("edgebus", "nats-server"), ("edgebus", "edgebus")]


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
@pytest.mark.parametrize("top_kind,spoke_kind", PAIRS, ids=[f"{s}-below-{t}" for t, s in PAIRS])
async def test_leaves_dial_the_websocket_port(tmp_path, certs, top_kind, spoke_kind, secure):  # noqa: F811
    ws_port, leaf_port = free_port(), free_port()
    ws_tls = f'tls {{ cert_file: "{certs}/server.pem", key_file: "{certs}/server.key" }}' if secure else "no_tls: true"
    top = start(top_kind, Server(tmp_path / "top", config_text=f"""
server_name: top
websocket {{ listen: "{HOST}:{ws_port}", {ws_tls} }}
leafnodes {{ listen: "{HOST}:{leaf_port}", authorization {{ user: leaf, password: pw }} }}
"""))
    scheme, remote_tls = ("wss", f', tls {{ ca_file: "{certs}/ca.pem" }}') if secure else ("ws", "")

    def spoke(name: str, password: str) -> Server:
        return start(spoke_kind, Server(tmp_path / name, config_text=f"""
server_name: {name}
leafnodes {{ remotes: [ {{ url: "{scheme}://leaf:{password}@{HOST}:{ws_port}"{remote_tls} }} ],
             reconnect: "250ms" }}
"""))

    servers = [top]
    try:
        right = spoke("right", "pw")
        servers.append(right)
        ok = poll_sync(lambda: leafs(top) == 1 and leafs(right) == 1, timeout=15)
        assert ok, top.log_text()[-2000:] + right.log_text()[-2000:]
        await crosses_both_ways(top, right, up_payload=bytes(range(256)) * 400)
        # the leaf port's authorization applies on the WebSocket port too
        wrong = spoke("wrong", "nope")
        servers.append(wrong)
        assert poll_sync(lambda: "uthorization" in wrong.log_text(), timeout=10), wrong.log_text()[-2000:]
        assert leafs(wrong) == 0 and leafs(top) == 1
    finally:
        for s in reversed(servers):
            s.stop()


@pytest.mark.parametrize("top_kind", ["nats-server", "edgebus"])
async def test_no_leaf_on_the_websocket_port_without_a_leaf_port(tmp_path, top_kind):
    ws_port = free_port()
    top = start(top_kind, Server(tmp_path / "top", config_text=f"""
server_name: top
websocket {{ listen: "{HOST}:{ws_port}", no_tls: true }}
"""))
    spoke = None
    try:
        spoke = start("nats-server", Server(tmp_path / "spoke", config_text=f"""
server_name: spoke
leafnodes {{ remotes: [ {{ url: "ws://{HOST}:{ws_port}" }} ], reconnect: "250ms" }}
"""))
        said = "Not configured to accept leaf node connections"
        assert poll_sync(lambda: said in top.log_text(), timeout=10), top.log_text()[-2000:]
        assert leafs(spoke) == 0
    finally:
        if spoke:
            spoke.stop()
        top.stop()



class Tap:
    """A TCP relay to `port` that keeps the first bytes each way (the upgrade and the first
    frames), so a test can read what the link negotiated."""

    def __init__(self, port: int):
        import socket
        import threading

        self.port, self.lock = free_port(), threading.Lock()
        self.seen = {"up": b"", "down": b""}  # up: leaf -> hub
        self.listener = socket.create_server((HOST, self.port))

        def pipe(src, dst, way: str) -> None:
            try:
                while data := src.recv(65536):
                    with self.lock:
                        self.seen[way] = (self.seen[way] + data)[:1 << 16]
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (src, dst):
                    try:
                        sock.close()
                    except OSError:
                        pass

        def accept() -> None:
            while True:
                try:
                    down, _ = self.listener.accept()
                except OSError:
                    return
                up = socket.create_connection((HOST, port))
                threading.Thread(target=pipe, args=(down, up, "up"), daemon=True).start()
                threading.Thread(target=pipe, args=(up, down, "down"), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def first_frame(self, way: str) -> tuple[str, int]:
        """The HTTP head and the first byte of the first frame after it."""
        with self.lock:
            head, _, frames = self.seen[way].partition(b"\r\n\r\n")
        return head.decode("latin-1"), frames[0]

    def close(self) -> None:
        self.listener.close()


DEFLATE = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
ALL_PAIRS = PAIRS + [("nats-server", "edgebus")]


@pytest.mark.parametrize("top_kind,spoke_kind", ALL_PAIRS, ids=[f"{s}-below-{t}" for t, s in ALL_PAIRS])
async def test_ws_compression_on_a_leaf_link(tmp_path, top_kind, spoke_kind):
    """A leaf remote with `ws_compression: true` offers permessage-deflate at `/leafnode`; a
    server with `websocket { compression: true }` takes it: the first frames both ways (the
    hub's INFO, the leaf's CONNECT) are compressed, and the link carries messages both ways
    (a 100 KiB one up)."""
    ws_port, leaf_port = free_port(), free_port()
    top = start(top_kind, Server(tmp_path / "top", config_text=f"""
server_name: top
websocket {{ listen: "{HOST}:{ws_port}", no_tls: true, compression: true }}
leafnodes {{ listen: "{HOST}:{leaf_port}" }}
"""))
    tap, spoke = Tap(ws_port), None
    try:
        spoke = start(spoke_kind, Server(tmp_path / "spoke", config_text=f"""
server_name: spoke
leafnodes {{ remotes: [ {{ url: "ws://{HOST}:{tap.port}", ws_compression: true }} ], reconnect: "250ms" }}
"""))
        ok = poll_sync(lambda: leafs(top) == 1 and leafs(spoke) == 1, timeout=15)
        assert ok, top.log_text()[-2000:] + spoke.log_text()[-2000:]
        await crosses_both_ways(top, spoke, up_payload=bytes(range(256)) * 400)
        request, connect = tap.first_frame("up")
        answer, info = tap.first_frame("down")
        # (Go writes the name as Sec-Websocket-Extensions)
        assert f"sec-websocket-extensions: {DEFLATE}" in request.lower(), request
        assert f"sec-websocket-extensions: {DEFLATE}" in answer.lower(), answer
        # compressed (RSV1), final, binary
        assert (info, connect) == (0xC2, 0xC2)
    finally:
        if spoke:
            spoke.stop()
        tap.close()
        top.stop()


@pytest.mark.parametrize("top_kind", ["nats-server", "edgebus"])
async def test_websocket_ping_interval_applies_to_a_leaf_link(tmp_path, top_kind):
    """`websocket { ping_interval }` is the ping interval of every connection over
    WebSocket, a leaf dialling `/leafnode` too: with 100ms there and an hour at the top,
    the hub pings the leaf again and again (with the hour it would ping once, at the
    start)."""
    ws_port, leaf_port = free_port(), free_port()
    top = start(top_kind, Server(tmp_path / "top", config_text=f"""
server_name: top
ping_interval: "1h"
websocket {{ listen: "{HOST}:{ws_port}", no_tls: true, ping_interval: "100ms" }}
leafnodes {{ listen: "{HOST}:{leaf_port}" }}
"""))
    tap, spoke = Tap(ws_port), None
    try:
        spoke = start("nats-server", Server(tmp_path / "spoke", config_text=f"""
server_name: spoke
leafnodes {{ remotes: [ {{ url: "ws://{HOST}:{tap.port}" }} ], reconnect: "250ms" }}
"""))

        def pings() -> int:
            with tap.lock:
                return tap.seen["down"].count(b"PING\r\n")

        assert poll_sync(lambda: pings() >= 4, timeout=10), pings()
        assert leafs(top) == 1
    finally:
        if spoke:
            spoke.stop()
        tap.close()
        top.stop()
