"""`websocket { authorization { user, password | token, timeout }, no_auth_user }` as nats-server
2.14 does it: WebSocket clients then authenticate with those credentials instead of the
top-level ones, the client port keeps the top-level authorization, and a WebSocket client
without credentials becomes the WebSocket `no_auth_user`. Every case runs against nats-server
first (EDGEBUS_SERVER_CMD=nats-server), then edgebus."""

from __future__ import annotations

import json

import pytest

from edgehelp import Wire, WsWire

VIOLATION = b"-ERR 'Authorization Violation'\r\n"


def ws_config(srv, ws_extra: str, top: str = "") -> str:
    return (f'websocket {{\n  host: "127.0.0.1"\n  port: {srv.ws_port}\n  no_tls: true\n{ws_extra}\n}}\n'
            f"{top}\n")


def ws_server(make_server, ws_extra: str, top: str = ""):
    srv = make_server(start=False)
    srv.config_path.write_text(ws_config(srv, ws_extra, top))
    return srv.start()


def ws_hello(port: int, **creds) -> tuple[dict, WsWire, bytes]:
    """Upgrade, read INFO, send a quiet CONNECT with `creds` and a PING: the INFO, the open
    client, and the first line of the answer (PONG when admitted)."""
    w = WsWire(port)
    status, _ = w.upgrade()
    assert status.startswith("HTTP/1.1 101"), status
    info = json.loads(w.read_until(b"\r\n")[5:])
    connect = {"verbose": False, "pedantic": False, "protocol": 1, "lang": "raw", **creds}
    w.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    line = w.read_until(b"\r\n")
    if line == b"PONG\r\n":
        # a protocol-1 CONNECT may be followed by an INFO: a second PING/PONG swallows it
        w.send(b"PING\r\n")
        w.read_until(b"PONG\r\n")
    return info, w, line


def ws_answer(port: int, **creds) -> bytes:
    _, w, line = ws_hello(port, **creds)
    w.close()
    return line


def tcp_hello(port: int, **creds) -> tuple[dict, bytes]:
    with Wire(port) as w:
        info = w.info()
        connect = {"verbose": False, "pedantic": False, "protocol": 1, "lang": "raw", **creds}
        w.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        return info, w.line() + b"\r\n"


def test_websocket_user_replaces_top_level_user_on_the_websocket_port_only(make_server):
    srv = ws_server(make_server, "  authorization { user: wsu, password: wsp }",
                    "authorization { user: tu, password: tp }")
    info, w, line = ws_hello(srv.ws_port, user="wsu", **{"pass": "wsp"})
    assert info["auth_required"] is True
    assert line == b"PONG\r\n"
    w.close()
    assert ws_answer(srv.ws_port, user="tu", **{"pass": "tp"}) == VIOLATION, "top-level user on the WebSocket port"
    assert ws_answer(srv.ws_port, user="wsu", **{"pass": "bad"}) == VIOLATION
    assert ws_answer(srv.ws_port) == VIOLATION, "no credentials"
    info, line = tcp_hello(srv.port, user="tu", **{"pass": "tp"})
    assert info["auth_required"] is True and line == b"PONG\r\n"
    assert tcp_hello(srv.port, user="wsu", **{"pass": "wsp"})[1] == VIOLATION, "WebSocket user on the client port"


def test_websocket_token_without_top_level_authorization(make_server):
    srv = ws_server(make_server, "  authorization { token: wst }")
    info, w, line = ws_hello(srv.ws_port, auth_token="wst")
    assert info["auth_required"] is True and line == b"PONG\r\n"
    w.close()
    assert ws_answer(srv.ws_port, auth_token="other") == VIOLATION
    assert ws_answer(srv.ws_port) == VIOLATION
    info, line = tcp_hello(srv.port)
    assert not info.get("auth_required") and line == b"PONG\r\n", "the client port needs no credentials"


def test_websocket_token_replaces_top_level_token(make_server):
    srv = ws_server(make_server, "  authorization { token: wst }", "authorization { token: tcpt }")
    assert ws_answer(srv.ws_port, auth_token="wst") == b"PONG\r\n"
    assert ws_answer(srv.ws_port, auth_token="tcpt") == VIOLATION
    assert tcp_hello(srv.port, auth_token="tcpt")[1] == b"PONG\r\n"
    assert tcp_hello(srv.port, auth_token="wst")[1] == VIOLATION


USERS = ('authorization { users: [ {user: a, password: pa},\n'
         '  {user: b, password: pb, permissions: { publish: "ok.>", subscribe: "_INBOX.>" }} ] }')


def test_websocket_no_auth_user_on_the_websocket_port(make_server):
    srv = ws_server(make_server, "  no_auth_user: b", USERS)
    info, w, line = ws_hello(srv.ws_port)
    # nats-server announces the override even though anonymous clients are admitted
    assert info["auth_required"] is True
    assert line == b"PONG\r\n", "an anonymous WebSocket client is admitted as b"
    # ... with b's permissions
    w.send(b"PUB not.ok 0\r\n\r\nPING\r\n")
    assert w.read_until(b"PONG\r\n") == b"-ERR 'Permissions Violation for Publish to \"not.ok\"'\r\nPONG\r\n"
    w.send(b"PUB ok.1 0\r\n\r\nPING\r\n")
    assert w.read_until(b"PONG\r\n") == b"PONG\r\n"
    w.close()
    assert ws_answer(srv.ws_port, user="a", **{"pass": "pa"}) == b"PONG\r\n", "credentials given are used"
    assert ws_answer(srv.ws_port, user="a", **{"pass": "bad"}) == VIOLATION, "and checked"
    info, line = tcp_hello(srv.port)
    assert info["auth_required"] is True and line == VIOLATION, "the client port has no no_auth_user"
    assert tcp_hello(srv.port, user="a", **{"pass": "pa"})[1] == b"PONG\r\n"


def test_websocket_no_auth_user_differs_from_top_level_one(make_server):
    srv = ws_server(make_server, "  no_auth_user: b", USERS + "\nno_auth_user: a")
    _, w, line = ws_hello(srv.ws_port)
    assert line == b"PONG\r\n"
    w.send(b"PUB not.ok 0\r\n\r\nPING\r\n")
    assert w.read_until(b"PONG\r\n").startswith(b"-ERR 'Permissions Violation"), "the WebSocket one (b) applies"
    w.close()
    info, line = tcp_hello(srv.port)
    assert not info.get("auth_required") and line == b"PONG\r\n", "the client port's is a"
    with Wire(srv.port) as t:
        t.hello()
        assert t.roundtrip() == b"PONG\r\n"
        t.send(b"PUB not.ok 0\r\n\r\n")
        assert t.roundtrip() == b"PONG\r\n", "a may publish anywhere"


def test_websocket_auth_timeout(make_server):
    srv = ws_server(make_server, "  authorization { user: u, password: p, timeout: 0.2 }",
                    "authorization { timeout: 30 }")
    w = WsWire(srv.ws_port)
    w.upgrade()
    assert json.loads(w.read_until(b"\r\n")[5:])["auth_required"] is True
    # nothing sent: the WebSocket timeout (not the top-level 30 s) ends the connection
    assert w.read_until(b"\r\n", timeout=10) == b"-ERR 'Authentication Timeout'\r\n"
    w.close()


def refuses(srv, timeout: float = 15) -> str:
    proc = srv.spawn()
    rc = proc.wait(timeout=timeout)
    srv.stop()
    assert rc != 0, f"server started (rc={rc}):\n{srv.log_text()[-2000:]}"
    return srv.log_text()


START_REFUSALS = {
    "users list in websocket authorization": (
        "  authorization { users: [ {user: a, password: b} ] }", "", 'unknown field "users"'),
    "websocket user beside top-level users": (
        "  authorization { user: u, password: p }", USERS,
        "websocket authentication username not compatible with presence of users/nkeys"),
    "websocket token beside top-level users": (
        "  authorization { token: t }", USERS,
        "websocket authentication token not compatible with presence of users/nkeys"),
    "websocket no_auth_user naming nobody": (
        "  no_auth_user: ghost", USERS,
        'no_auth_user: "ghost" not present as user or nkey in authorization block or account configuration'),
    "websocket no_auth_user without users": (
        "  no_auth_user: ghost", "", 'no_auth_user: "ghost" present, but users/nkeys are not defined'),
}


@pytest.mark.parametrize("case", list(START_REFUSALS))
def test_websocket_auth_refusals_at_start(make_server, case):
    ws_extra, top, words = START_REFUSALS[case]
    srv = make_server(start=False)
    srv.config_path.write_text(ws_config(srv, ws_extra, top))
    log = refuses(srv)
    assert words in log, log[-1500:]
