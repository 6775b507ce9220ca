"""Per-user permissions, as nats-server 2.14 applies them: publish and subscribe allow/deny
with wildcards on both sides (deny wins), queue-group entries, a denied literal filtered out
of an allowed wildcard subscription, allow_responses, default_permissions, no_auth_user, and
$JS.API under the same rules. Every refusal is an -ERR with nats-server's words that leaves
the connection open, and nothing is delivered. Raw sockets check the bytes; markers (a PING
answered after the publishes were routed) prove that nothing arrived."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from edgehelp import Wire, WsWire, nats_connect, poll_sync, settle

PERMISSIONS = """
authorization {
  default_permissions: {
    publish: ["dflt.>"]
    subscribe: { allow: ["dflt.>", "_INBOX.>"] }
  }
  users: [
    { user: admin, password: a, permissions: { publish: ">", subscribe: ">" } }
    { user: limited, password: l, permissions: {
        publish: { allow: ["pub.>", "$JS.API.INFO"], deny: ["pub.secret", "pub.*.no"] }
        subscribe: { allow: ["sub.>", "q.* workers", "_INBOX.>"], deny: ["sub.secret", "sub.*.hidden"] }
    } }
    { user: svc, password: s, permissions: { subscribe: "req.>", allow_responses: true } }
    { user: svc2, password: s, permissions: { subscribe: "req.>", allow_responses: { max: 2 } } }
    { user: guest, password: g }
  ]
}
no_auth_user: guest
"""


@pytest.fixture
def perm_server(make_server):
    return make_server(PERMISSIONS)


def login(port: int, user: str, password: str) -> Wire:
    w = Wire(port)
    w.hello(user=user, **{"pass": password})
    return w


def pub_violation(subject: str) -> bytes:
    return f"-ERR 'Permissions Violation for Publish to \"{subject}\"'\r\n".encode()


def sub_violation(subject: str, queue: str | None = None) -> bytes:
    text = f"-ERR 'Permissions Violation for Subscription to \"{subject}\""
    if queue is not None:
        text += f" using queue \"{queue}\""
    return (text + "'\r\n").encode()


def test_denied_publishes_get_an_error_and_reach_nobody(perm_server):
    with login(perm_server.port, "admin", "a") as admin, login(perm_server.port, "limited", "l") as lim:
        admin.send(b"SUB > 1\r\n")
        admin.roundtrip()
        lim.send(b"PUB pub.secret 1\r\nx\r\nPUB other 1\r\nx\r\nPUB pub.a.no 1\r\nx\r\n"
                 b"PUB pub.ok 2\r\nok\r\n")
        assert lim.roundtrip() == (pub_violation("pub.secret") + pub_violation("other")
                                   + pub_violation("pub.a.no") + b"PONG\r\n")
        # the connection stays open and usable
        lim.send(b"PUB pub.again 1\r\ny\r\n")
        assert lim.roundtrip() == b"PONG\r\n"
        assert admin.roundtrip() == b"MSG pub.ok 1 2\r\nok\r\nMSG pub.again 1 1\r\ny\r\nPONG\r\n"
    assert poll_sync(lambda: 'Publish Violation - Subject "pub.secret"' in perm_server.log_text()), \
        perm_server.log_text()[-2000:]


def test_denied_subscriptions_and_queue_entries(perm_server):
    with login(perm_server.port, "limited", "l") as lim, login(perm_server.port, "admin", "a") as admin:
        lim.send(b"SUB sub.secret 1\r\nSUB foo 2\r\nSUB q.x 3\r\nSUB q.x others 4\r\n"
                 b"SUB q.x workers 5\r\nSUB sub.x.hidden 6\r\nSUB sub.ok 7\r\n")
        assert lim.roundtrip() == (sub_violation("sub.secret") + sub_violation("foo")
                                   + sub_violation("q.x") + sub_violation("q.x", "others")
                                   + sub_violation("sub.x.hidden") + b"PONG\r\n")
        admin.send(b"PUB sub.secret 1\r\n1\r\nPUB foo 1\r\n2\r\nPUB q.x 1\r\n3\r\nPUB sub.ok 1\r\n4\r\n")
        admin.roundtrip()
        assert lim.roundtrip() == b"MSG q.x 5 1\r\n3\r\nMSG sub.ok 7 1\r\n4\r\nPONG\r\n"
    assert poll_sync(lambda: 'Subscription Violation - Subject "q.x", Queue: "others", SID 4'
                     in perm_server.log_text()), perm_server.log_text()[-2000:]


def test_denied_literal_is_filtered_out_of_an_allowed_wildcard(perm_server):
    with login(perm_server.port, "limited", "l") as lim, login(perm_server.port, "admin", "a") as admin:
        lim.send(b"SUB sub.> 1\r\n")
        assert lim.roundtrip() == b"PONG\r\n"
        admin.send(b"PUB sub.secret 1\r\ns\r\nPUB sub.a.hidden 1\r\nh\r\nPUB sub.open 1\r\no\r\n"
                   b"PUB sub.a.shown 1\r\nw\r\n")
        admin.roundtrip()
        assert lim.roundtrip() == b"MSG sub.open 1 1\r\no\r\nMSG sub.a.shown 1 1\r\nw\r\nPONG\r\n"


def test_allow_responses_answers_exactly_the_requests_received(perm_server):
    with login(perm_server.port, "admin", "a") as req, login(perm_server.port, "svc", "s") as svc, \
            login(perm_server.port, "svc2", "s") as svc2:
        req.send(b"SUB _INBOX.r.* 9\r\n")
        req.roundtrip()
        svc.send(b"SUB req.one 1\r\n")
        svc2.send(b"SUB req.two 1\r\n")
        svc.roundtrip()
        svc2.roundtrip()
        # a responder may not publish anywhere before it got a request
        svc.send(b"PUB _INBOX.r.1 1\r\nx\r\n")
        assert svc.roundtrip() == pub_violation("_INBOX.r.1") + b"PONG\r\n"
        req.send(b"PUB req.one _INBOX.r.1 1\r\nq\r\nPUB req.two _INBOX.r.2 1\r\nq\r\n")
        req.roundtrip()
        assert svc.roundtrip() == b"MSG req.one 1 _INBOX.r.1 1\r\nq\r\nPONG\r\n"
        assert svc2.roundtrip() == b"MSG req.two 1 _INBOX.r.2 1\r\nq\r\nPONG\r\n"
        # allow_responses: true -> one reply; {max: 2} -> two; never another inbox
        svc.send(b"PUB _INBOX.r.1 1\r\na\r\nPUB _INBOX.r.1 1\r\nb\r\nPUB _INBOX.r.2 1\r\nc\r\n")
        assert svc.roundtrip() == pub_violation("_INBOX.r.1") + pub_violation("_INBOX.r.2") + b"PONG\r\n"
        svc2.send(b"PUB _INBOX.r.2 1\r\nd\r\nPUB _INBOX.r.2 1\r\ne\r\nPUB _INBOX.r.2 1\r\nf\r\n")
        assert svc2.roundtrip() == pub_violation("_INBOX.r.2") + b"PONG\r\n"
        assert req.roundtrip() == (b"MSG _INBOX.r.1 9 1\r\na\r\nMSG _INBOX.r.2 9 1\r\nd\r\n"
                                   b"MSG _INBOX.r.2 9 1\r\ne\r\nPONG\r\n")


async def test_nats_py_request_reply_through_a_responder_with_allow_responses(perm_server):
    svc = await nats_connect(perm_server.url, user="svc", password="s")
    cli = await nats_connect(perm_server.url, user="admin", password="a")
    try:
        async def handler(msg):
            await msg.respond(b"pong:" + msg.data)

        await svc.subscribe("req.ping", cb=handler)
        await settle(svc)  # one flush() is no round trip behind the SUB (edgehelp.settle)
        for i in range(3):
            reply = await cli.request("req.ping", str(i).encode(), timeout=2)
            assert reply.data == f"pong:{i}".encode()
    finally:
        await svc.close()
        await cli.close()


async def test_nats_py_sees_the_permission_error_and_stays_connected(perm_server):
    errors: list[Exception] = []

    async def on_error(e):
        errors.append(e)

    nc = await nats_connect(perm_server.url, user="limited", password="l", error_cb=on_error)
    try:
        await nc.publish("pub.secret", b"x")
        await nc.flush()
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.02)
        assert any("permissions violation for publish to \"pub.secret\"" in str(e).lower() for e in errors), errors
        assert nc.is_connected
        sub = await nc.subscribe("sub.fine")
        await nc.publish("pub.ok", b"y")
        await nc.flush()
        await sub.unsubscribe()
    finally:
        await nc.close()


def test_no_auth_user_gets_its_permissions(perm_server):
    with Wire(perm_server.port) as anon, login(perm_server.port, "admin", "a") as admin:
        info = anon.hello()
        assert info.get("auth_required") is not True
        admin.send(b"SUB > 1\r\n")
        admin.roundtrip()
        anon.send(b"PUB dflt.x 1\r\n1\r\nPUB other 1\r\n2\r\nSUB other 5\r\n")
        assert anon.roundtrip() == pub_violation("other") + sub_violation("other") + b"PONG\r\n"
        assert admin.roundtrip() == b"MSG dflt.x 1 1\r\n1\r\nPONG\r\n"
    # credentials that are given are still checked
    with Wire(perm_server.port) as bad:
        bad.hello(sync=False, user="admin", **{"pass": "wrong"})
        bad.send(b"PING\r\n")
        assert bad.line() == b"-ERR 'Authorization Violation'"


async def test_js_api_is_covered_by_publish_permissions(make_server, token):
    srv = make_server(PERMISSIONS, jetstream=True)
    stream = f"PERM_{token}"
    with login(srv.port, "limited", "l") as lim:
        lim.send(b"SUB _INBOX.js 1\r\n")
        body = f'{{"name":"{stream}","subjects":["perm.{token}"]}}'.encode()
        subject = f"$JS.API.STREAM.CREATE.{stream}".encode()
        lim.send(b"PUB " + subject + b" _INBOX.js " + str(len(body)).encode() + b"\r\n" + body + b"\r\n")
        assert lim.roundtrip() == pub_violation(subject.decode()) + b"PONG\r\n"
        # $JS.API.INFO is in its allow list: answered
        lim.send(b"PUB $JS.API.INFO _INBOX.js 0\r\n\r\n")
        assert lim.until(b"\r\n").startswith(b"MSG _INBOX.js 1 ")
    admin = await nats_connect(srv.url, user="admin", password="a")
    try:
        js = admin.jetstream()
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.stream_info(stream)
        await js.add_stream(name=stream, subjects=[f"perm.{token}"])  # admin may
    finally:
        await admin.close()


def test_verbose_client_gets_no_ok_for_a_refused_operation(perm_server):
    with Wire(perm_server.port) as lim:
        lim.hello(sync=False, verbose=True, user="limited", **{"pass": "l"})
        assert lim.line() == b"+OK"
        lim.send(b"PUB pub.secret 1\r\nx\r\nPUB pub.ok 1\r\nx\r\nSUB nope 1\r\nSUB sub.ok 2\r\n")
        assert lim.roundtrip() == (pub_violation("pub.secret") + b"+OK\r\n" + sub_violation("nope")
                                   + b"+OK\r\nPONG\r\n")


def test_websocket_clients_get_the_same_rules(perm_server):
    ws = WsWire(perm_server.ws_port)
    try:
        status, _ = ws.upgrade()
        assert status.startswith("HTTP/1.1 101")
        assert ws.read_until(b"\r\n").startswith(b"INFO ")
        ws.send(b'CONNECT {"verbose":false,"user":"limited","pass":"l"}\r\n'
                b"PUB pub.secret 1\r\nx\r\nSUB sub.secret 1\r\nPING\r\n")
        assert ws.read_until(b"PONG\r\n") == pub_violation("pub.secret") + sub_violation("sub.secret") + b"PONG\r\n"
    finally:
        ws.close()
