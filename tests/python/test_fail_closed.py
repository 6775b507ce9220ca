"""Fail closed: a config key (or flag) that asks for security, durability or isolation is
honoured, or the server refuses to start with an error naming the key and its file:line.
Only harmless keys are warned about and ignored.

Where nats-server refuses too (a WebSocket listener without TLS, a no_auth_user that names
nobody) the test runs against it as well; keys nats-server implements and edgebus refuses
are checked against edgebus only."""

from __future__ import annotations

import re

import pytest

from conftest import BASE_CONFIG, bin_argv
from edgehelp import Wire, poll_sync


def refuses(srv, timeout: float = 15) -> str:
    proc = srv.spawn()
    rc = proc.wait(timeout=timeout)
    srv.stop()
    assert rc != 0, f"server started (rc={rc}):\n{srv.log_text()[-2000:]}"
    return srv.log_text()


def test_websocket_without_tls_or_no_tls_refuses_as_nats_server_does(make_server):
    srv = make_server(start=False, config_text="websocket {\n  host: 127.0.0.1\n  port: -1\n}\n")
    assert "websocket requires TLS configuration" in refuses(srv)


@pytest.mark.parametrize("users", ["", "authorization { users: [ {user: a, password: b} ] }\n"])
def test_no_auth_user_naming_nobody_refuses(make_server, users):
    srv = make_server(users + "no_auth_user: ghost\n", start=False)
    log = refuses(srv)
    assert 'no_auth_user: "ghost"' in log, log[-1000:]


# key written in the config -> where it sits (line:col of the key, after BASE_CONFIG)
REFUSED = [
    # TLS is honoured (tests/python/test_tls.py), and nkey users (test_nkeys.py); mapping
    # certificates to users is not
    ("tls { pinned_certs: [] }", "pinned_certs", 1),
    ("cluster { port: -1 }", "cluster", 1),
    ("gateway { name: g, port: -1 }", "gateway", 1),
    # leaf nodes are honoured (tests/python/test_leaf.py), with TLS (test_leaf_tls.py); what
    # the tls block would tighten that edgebus does not implement is refused
    ("leafnodes { port: -1, tls { pinned_certs: [] } }", "pinned_certs", 1),
    # accounts are honoured (tests/python/test_accounts.py); what an account may hold that
    # edgebus does not implement is refused
    ("accounts { A: { mappings: { a: b } } }", "mappings", 1),
    ("accounts { A: { users: [ {user: a, password: a} ], max_connections: 5 } }", "max_connections", 1),
    ("mappings { a: b }", "mappings", 1),
    ("mqtt { port: -1 }", "mqtt", 1),
    ("https_port: -1", "https_port", 1),
    ("jetstream {\n  cipher: chachapoly\n  key: s3cr3t\n}", "cipher", 2),
    ("authorization { users: [ {user: a, password: b, allowed_connection_types: [STANDARD]} ] }",
     "allowed_connection_types", 1),
    ("authorization { token: t, permissions: { publish: x } }", "permissions", 1),
]


@pytest.mark.parametrize("extra,key,line", REFUSED, ids=[r[1] for r in REFUSED])
def test_unimplemented_security_keys_refuse_with_key_and_position(make_server, edgebus_only, extra, key, line):
    if not edgebus_only:
        pytest.skip("nats-server implements these keys")
    srv = make_server(extra + "\n", start=False)
    log = refuses(srv)
    base_lines = BASE_CONFIG.count("\n")
    where = f"server.conf:{base_lines + line}:"
    assert re.search(rf"{re.escape(where)}\d+: {re.escape(key)}: ", log), log[-1500:]


# allowed_origins and same_origin are implemented (tests/python/test_websocket_guard.py), tls
# (tests/python/test_tls.py), authorization and no_auth_user (tests/python/test_websocket_auth.py)
WS_REFUSED = ["jwt_cookie: jwt", "user_cookie: u"]


@pytest.mark.parametrize("extra", WS_REFUSED, ids=["jwt_cookie", "user_cookie"])
def test_websocket_security_keys_refuse(make_server, edgebus_only, extra):
    if not edgebus_only:
        pytest.skip("nats-server implements these keys")
    key = extra.split(":")[0].split(" ")[0]
    srv = make_server(start=False, config_text=f"websocket {{\n  port: -1\n  no_tls: true\n  {extra}\n}}\n")
    log = refuses(srv)
    assert re.search(rf"server.conf:4:3: {key}: .*websocket", log), log[-1500:]


def test_harmless_known_and_unknown_keys_warn_and_start(make_server, edgebus_only):
    if not edgebus_only:
        pytest.skip("nats-server refuses unknown keys")
    srv = make_server("logtime: true\nwrite_timeout: \"5s\"\nnot_a_real_key: 1\njetstream { unique_tag: az }\n",
                      start=False)
    srv.start()
    with Wire(srv.port) as w:
        w.hello()
        assert w.roundtrip() == b"PONG\r\n"
    for key in ("logtime", "write_timeout", "not_a_real_key", "unique_tag"):
        assert poll_sync(lambda: f'"{key}"' in srv.log_text()), srv.log_text()[-2000:]


# the --tls* flags are honoured (tests/python/test_tls.py)
@pytest.mark.parametrize("flags", [["--https_port", "8443"], ["--routes", "nats://127.0.0.1:6222"], ["--cluster", "nats://127.0.0.1:6222"]])
def test_security_flags_refuse(make_server, edgebus_only, flags):
    if not edgebus_only:
        pytest.skip("nats-server implements these flags")
    srv = make_server(start=False)
    proc = srv.spawn(bin_argv() + ["-p", str(srv.port)] + flags)
    rc = proc.wait(timeout=15)
    srv.stop()
    assert rc != 0
    assert f"flag -{flags[0].lstrip('-')} is not supported" in srv.log_text(), srv.log_text()[-1000:]
