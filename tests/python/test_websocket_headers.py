"""`websocket { headers { … } }`: extra headers of the `101` answer (nats-server 2.14's
`rawHeaders`), and the names nats-server refuses at start because they would change the
handshake itself. Runs against nats-server as well (EDGEBUS_SERVER_CMD=nats-server)."""

from __future__ import annotations

import json

import pytest

from edgehelp import WsWire
from test_websocket_auth import refuses, ws_config, ws_server


def test_configured_headers_are_in_every_upgrade_answer(make_server):
    srv = ws_server(make_server, '  headers {\n    "X-Frame-Options": "DENY"\n    Cache-Control: "no-store"\n  }')
    for _ in range(2):
        w = WsWire(srv.ws_port)
        try:
            status, headers = w.upgrade()
            assert status.startswith("HTTP/1.1 101"), status
            assert headers.get("x-frame-options") == "DENY"
            assert headers.get("cache-control") == "no-store"
            # the handshake's own headers are untouched and the connection works
            assert headers.get("upgrade", "").lower() == "websocket"
            assert json.loads(w.read_until(b"\r\n")[5:])["max_payload"] == 1048576
        finally:
            w.close()


@pytest.mark.parametrize("name,words", [
    ("Upgrade", 'websocket: invalid header "Upgrade" not allowed'),
    ("content-length", 'websocket: invalid header "content-length" not allowed'),
    ("Nats-No-Masking", 'websocket: invalid header "Nats-No-Masking" not allowed'),
    ("Sec-WebSocket-Protocol", 'websocket: invalid header "Sec-WebSocket-Protocol", "Sec-WebSocket-" prefix not allowed'),
])
def test_headers_that_would_change_the_handshake_refuse_to_start(make_server, name, words):
    srv = make_server(start=False)
    srv.config_path.write_text(ws_config(srv, f'  headers {{ "{name}": "x" }}'))
    log = refuses(srv)
    assert words in log, log[-1500:]
