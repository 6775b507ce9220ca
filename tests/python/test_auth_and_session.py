"""Authentication, the auth timeout, verbose mode and PING/PONG keep-alive."""

from __future__ import annotations

import bcrypt
import pytest

from edgehelp import Wire, nats_connect, settle, take

AUTH_VIOLATION = b"-ERR 'Authorization Violation'"


def expect_rejected(port: int, **connect_fields) -> None:
    with Wire(port) as w:
        info = w.hello(sync=False, **connect_fields)
        assert info.get("auth_required") is True
        w.send(b"PING\r\n")
        assert w.line() == AUTH_VIOLATION
        assert w.wait_closed()


def expect_accepted(port: int, token: str, **connect_fields) -> None:
    """The credentials work: the connection can subscribe and receive."""
    with Wire(port) as w:
        w.hello(**connect_fields)
        w.send(f"SUB a.{token} 1\r\nPUB a.{token} 2\r\nok\r\n".encode())
        assert w.roundtrip() == f"MSG a.{token} 1 2\r\nok\r\nPONG\r\n".encode()


async def pubsub_works(nc, token: str) -> None:
    sub = await nc.subscribe(f"auth.{token}")
    await settle(nc)
    await nc.publish(f"auth.{token}", b"hi")
    assert [m.data for m in await take(sub, 1)] == [b"hi"]


async def test_token_auth(make_server, token):
    srv = make_server('authorization { token: "s3cret" }\n')
    nc = await nats_connect(srv.url, token="s3cret")
    try:
        await pubsub_works(nc, token)
    finally:
        await nc.close()
    expect_accepted(srv.port, token, auth_token="s3cret")
    expect_rejected(srv.port, auth_token="wrong")
    expect_rejected(srv.port)  # no token at all
    with pytest.raises(Exception) as err:
        await nats_connect(srv.url, token="wrong")
    assert "authorization violation" in str(err.value).lower()


async def test_user_and_password(make_server, token):
    srv = make_server('authorization { user: alice, password: "wonder land" }\n')
    nc = await nats_connect(srv.url, user="alice", password="wonder land")
    try:
        await pubsub_works(nc, token)
    finally:
        await nc.close()
    expect_accepted(srv.port, token, user="alice", **{"pass": "wonder land"})
    expect_rejected(srv.port, user="alice", **{"pass": "wonderland"})
    expect_rejected(srv.port, user="bob", **{"pass": "wonder land"})
    expect_rejected(srv.port)


async def test_users_list(make_server, token):
    srv = make_server(
        "authorization {\n"
        "  users: [\n"
        '    { user: "ann", password: "pw-ann" }\n'
        '    { user: "ben", password: "pw-ben" }\n'
        "  ]\n"
        "}\n"
    )
    expect_accepted(srv.port, token, user="ann", **{"pass": "pw-ann"})
    expect_accepted(srv.port, token, user="ben", **{"pass": "pw-ben"})
    expect_rejected(srv.port, user="ann", **{"pass": "pw-ben"})
    expect_rejected(srv.port, user="cat", **{"pass": "pw-ann"})
    nc = await nats_connect(f"nats://ben:pw-ben@127.0.0.1:{srv.port}")
    try:
        await pubsub_works(nc, token)
    finally:
        await nc.close()


async def test_bcrypt_hashed_password(make_server, token):
    hashed = bcrypt.hashpw(b"h4shed-pw", bcrypt.gensalt(rounds=6)).decode()
    assert hashed.startswith("$2")
    srv = make_server(f'authorization {{ user: carol, password: "{hashed}" }}\n')
    expect_accepted(srv.port, token, user="carol", **{"pass": "h4shed-pw"})
    expect_rejected(srv.port, user="carol", **{"pass": "h4shed-pX"})
    # the hash itself is not a password
    expect_rejected(srv.port, user="carol", **{"pass": hashed})
    nc = await nats_connect(srv.url, user="carol", password="h4shed-pw")
    try:
        await pubsub_works(nc, token)
    finally:
        await nc.close()


def test_protocol_before_connect_is_rejected_when_auth_is_required(make_server, token):
    srv = make_server('authorization { token: "s3cret" }\n')
    for first in (f"PUB x.{token} 2\r\nhi\r\n", f"SUB x.{token} 1\r\n", "PING\r\n"):
        with Wire(srv.port) as w:
            assert w.info().get("auth_required") is True
            w.send(first.encode())
            assert w.line() == AUTH_VIOLATION, first
            assert w.wait_closed()


def test_auth_timeout_without_connect(make_server):
    srv = make_server('authorization { token: "x", timeout: 1 }\n')
    with Wire(srv.port) as w:
        w.info()
        # say nothing; the server gives up on us (a PING may come first)
        seen = []
        while True:
            line = w.line(timeout=6)
            seen.append(line)
            if line.startswith(b"-ERR"):
                break
            assert line == b"PING", seen
        assert line == b"-ERR 'Authentication Timeout'"
        assert w.wait_closed()


def test_no_auth_means_pub_without_connect_works(server, token):
    # without auth a client may skip CONNECT; defaults are verbose and pedantic
    with Wire(server.port) as w:
        w.info()
        w.send(f"PUB free.{token} 2\r\nhi\r\nPING\r\n".encode())
        assert w.until(b"PONG\r\n") == b"+OK\r\nPONG\r\n"


def test_verbose_mode_acknowledges_every_command(server, token):
    with Wire(server.port) as w:
        w.hello(sync=False, verbose=True)
        assert w.line() == b"+OK"  # for CONNECT
        w.send(f"SUB v.{token} 1\r\n".encode())
        assert w.line() == b"+OK"
        w.send(f"PUB v.{token} 2\r\nhi\r\n".encode())
        # +OK for the PUB, and our own message (echo is on)
        got = w.until(b"hi\r\n")
        assert got == f"+OK\r\nMSG v.{token} 1 2\r\nhi\r\n".encode()
        w.send(b"UNSUB 1\r\n")
        assert w.line() == b"+OK"
        w.send(b"PING\r\n")
        assert w.line() == b"PONG"


def test_client_ping_is_answered(server):
    with Wire(server.port) as w:
        w.hello()
        for _ in range(3):
            assert w.roundtrip() == b"PONG\r\n"
        w.send(b"ping\r\n")  # verbs are case-insensitive
        assert w.line() == b"PONG"


def test_silent_client_gets_pings_then_stale_connection(make_server):
    srv = make_server('ping_interval: "1s"\nping_max: 2\n')
    with Wire(srv.port) as w:
        w.hello(sync=False, protocol=0)
        lines = []
        while True:
            line = w.line(timeout=8)
            lines.append(line)
            if line != b"PING":
                break
        assert lines[:-1] == [b"PING", b"PING"], lines
        assert lines[-1] == b"-ERR 'Stale Connection'"
        assert w.wait_closed()


def test_client_answering_pings_stays_connected(make_server, token):
    srv = make_server('ping_interval: "1s"\nping_max: 2\n')
    with Wire(srv.port) as w:
        w.hello(sync=False, protocol=0)
        pings = 0
        while pings < 3:  # past the point where a silent client is dropped
            line = w.line(timeout=8)
            assert line == b"PING", line
            pings += 1
            w.send(b"PONG\r\n")
        w.send(f"SUB s.{token} 1\r\nPUB s.{token} 1\r\nx\r\n".encode())
        assert w.until(b"x\r\n") == f"MSG s.{token} 1 1\r\nx\r\n".encode()
