"""Leaf remotes over WebSocket: `ws://` and `wss://` URLs dial a nats-server 2.14 hub's
`websocket` port, upgrade at `/leafnode` and speak the leaf protocol in binary frames (the
hub's leaf port settings, here its authorization, apply). nats-server 2.14 runs as the leaf
first, then edgebus."""

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
