"""Accounts, as nats-server 2.14 serves them: separate subject spaces on one server (plain
subscriptions, queue groups, no-responders and request/reply all per account), stream and
service exports/imports between accounts (prefix and `to` mappings, private exports), and
the configurations that must be refused. Raw sockets check the bytes; a PING answered after
the publishes were routed (a marker) proves that nothing else arrived."""

from __future__ import annotations

import json

import pytest
from nats.errors import NoRespondersError

from edgehelp import Wire, js_api, nats_connect, settle

ACCOUNTS = """
accounts {
  A: {
    users: [ { user: a, password: a }, { user: a2, password: a } ]
    exports: [
      { stream: "pub.>" }
      { stream: "priv.>", accounts: [C] }
      { service: "svc.>" }
    ]
  }
  B: {
    users: [ { user: b, password: b } ]
    imports: [
      { stream: { account: A, subject: "pub.>" }, prefix: from_a }
      { service: { account: A, subject: "svc.x" }, to: "local.svc" }
    ]
  }
  C: {
    users: [ { user: c, password: c } ]
    imports: [ { stream: { account: A, subject: "priv.*" }, to: "mine.*" } ]
  }
}
authorization { users: [ { user: g, password: g } ] }
"""


@pytest.fixture
def acc_server(make_server):
    return make_server(ACCOUNTS)


def login(port: int, user: str) -> Wire:
    w = Wire(port)
    w.hello(user=user, **{"pass": user[0]})
    return w


def test_accounts_are_separate_subject_spaces(acc_server):
    port = acc_server.port
    with login(port, "a") as a, login(port, "a2") as a2, login(port, "b") as b, login(port, "g") as g:
        for w in (a2, b, g):
            w.send(b"SUB > 1\r\n")
            assert w.roundtrip() == b"PONG\r\n"
        a.send(b"PUB x 2\r\nfa\r\n")
        assert a.roundtrip() == b"PONG\r\n"
        # each publisher hears itself (echo), and only itself
        b.send(b"PUB x 2\r\nfb\r\n")
        assert b.roundtrip() == b"MSG x 1 2\r\nfb\r\nPONG\r\n"
        g.send(b"PUB x 2\r\nfg\r\n")
        assert g.roundtrip() == b"MSG x 1 2\r\nfg\r\nPONG\r\n"
        assert a2.roundtrip() == b"MSG x 1 2\r\nfa\r\nPONG\r\n"
        assert b.roundtrip() == b"PONG\r\n" and g.roundtrip() == b"PONG\r\n"


def test_queue_groups_are_per_account(acc_server):
    port = acc_server.port
    with login(port, "a") as a, login(port, "a2") as a2, login(port, "b") as b:
        for w in (a2, b):
            w.send(b"SUB work workers 1\r\n")
            assert w.roundtrip() == b"PONG\r\n"
        a.send(b"PUB work 1\r\n1\r\n" * 20)
        a.roundtrip()
        assert a2.roundtrip() == b"MSG work 1 1\r\n1\r\n" * 20 + b"PONG\r\n", "every message to A's member"
        assert b.roundtrip() == b"PONG\r\n", "B's group is another group"


def test_no_responders_is_per_account(acc_server):
    port = acc_server.port
    with login(port, "a") as a, login(port, "b") as b:
        b.send(b"SUB ask 1\r\n")
        assert b.roundtrip() == b"PONG\r\n"
        a.send(b"SUB _INBOX.a 7\r\nPUB ask _INBOX.a 1\r\nq\r\n")
        got = a.roundtrip()
        assert got.startswith(b"HMSG _INBOX.a 7 ") and b"503" in got, got
        assert b.roundtrip() == b"PONG\r\n"


async def test_request_reply_stays_in_its_account(acc_server):
    a = await nats_connect(acc_server.url, user="a", password="a")
    a2 = await nats_connect(acc_server.url, user="a2", password="a")
    b = await nats_connect(acc_server.url, user="b", password="b")
    try:
        async def answer(msg):
            await msg.respond(b"from A")
        await a2.subscribe("echo", cb=answer)
        await settle(a2)
        assert (await a.request("echo", b"hi", timeout=3)).data == b"from A"
        with pytest.raises(NoRespondersError):
            await b.request("echo", b"hi", timeout=3)
    finally:
        for nc in (a, a2, b):
            await nc.close()


def test_stream_import_with_prefix_and_to(acc_server):
    port = acc_server.port
    with login(port, "a") as a, login(port, "b") as b, login(port, "c") as c:
        b.send(b"SUB from_a.> 1\r\nSUB pub.> 2\r\nSUB mine.* 3\r\n")
        c.send(b"SUB mine.* 1\r\nSUB priv.> 2\r\nSUB from_a.> 3\r\n")
        assert b.roundtrip() == b"PONG\r\n" and c.roundtrip() == b"PONG\r\n"
        a.send(b"PUB pub.news 4\r\nnews\r\nPUB priv.x 6\r\nsecret\r\nPUB other 1\r\no\r\n")
        a.roundtrip()
        assert b.roundtrip() == b"MSG from_a.pub.news 1 4\r\nnews\r\nPONG\r\n"
        assert c.roundtrip() == b"MSG mine.x 1 6\r\nsecret\r\nPONG\r\n"
        # an import is one way: what the importer publishes stays in its account
        with login(port, "a2") as a2:
            a2.send(b"SUB > 1\r\n")
            assert a2.roundtrip() == b"PONG\r\n"
            b.send(b"PUB pub.news 1\r\nb\r\nPUB from_a.pub.news 1\r\nb\r\n")
            b.roundtrip()
            assert a2.roundtrip() == b"PONG\r\n"


async def test_service_import_request_reply(acc_server):
    a = await nats_connect(acc_server.url, user="a", password="a")
    b = await nats_connect(acc_server.url, user="b", password="b")
    c = await nats_connect(acc_server.url, user="c", password="c")
    seen, info = [], []
    try:
        async def serve(msg):
            seen.append((msg.subject, msg.reply))
            # nats-server names the importing account in a header
            info.append(json.loads((msg.headers or {}).get("Nats-Request-Info", "{}")).get("acc"))
            await msg.respond(b"served " + msg.data)
        await a.subscribe("svc.>", cb=serve)
        await settle(a)
        for i in range(3):
            reply = await b.request("local.svc", b"%d" % i, timeout=3)
            assert reply.data == b"served %d" % i
        assert [s for s, _ in seen] == ["svc.x"] * 3
        assert all(r.startswith("_R_.") for _, r in seen), seen
        assert info == ["B"] * 3, info
        # the reply subject the exporter saw answers once (singleton), and C imports nothing
        with pytest.raises(NoRespondersError):
            await c.request("local.svc", b"x", timeout=3)
        with pytest.raises(NoRespondersError):
            await b.request("svc.x", b"x", timeout=3)
    finally:
        for nc in (a, b, c):
            await nc.close()


async def test_service_import_without_responder_gets_no_responders(make_server):
    srv = make_server(ACCOUNTS)
    b = await nats_connect(srv.url, user="b", password="b")
    try:
        with pytest.raises(NoRespondersError):
            await b.request("local.svc", b"x", timeout=3)
    finally:
        await b.close()


def _refuses(srv) -> str:
    proc = srv.spawn()
    rc = proc.wait(timeout=15)
    srv.stop()
    assert rc != 0, f"server started:\n{srv.log_text()[-2000:]}"
    return srv.log_text()


def test_private_export_refuses_an_unlisted_importer(make_server):
    # B (not listed in the export's accounts) imports the private stream
    conf = ACCOUNTS.replace('{ stream: { account: A, subject: "pub.>" }, prefix: from_a }',
                            '{ stream: { account: A, subject: "priv.x" } }')
    srv = make_server(conf, start=False)
    assert 'stream import "priv.x": stream import not authorized' in _refuses(srv)


@pytest.mark.parametrize("conf,words", [
    ('accounts { A: { imports: [ { service: { account: Z, subject: "s" } } ] } }', "Z"),
    ('accounts { A: { exports: [ { stream: "s.>" } ] }, B: { imports: [ { service: { account: A, subject: "s.x" } } ] } }',
     "service import not authorized"),
    ('accounts { A: { exports: [ { stream: "s.>" } ] }, B: { imports: [ { stream: { account: A, subject: "t" } } ] } }',
     "stream import not authorized"),
])
def test_bad_imports_refuse_to_start(make_server, conf, words):
    srv = make_server(conf + "\n", start=False)
    assert words in _refuses(srv)


@pytest.mark.parametrize("conf,key", [
    ("accounts { A: { users: [ {user: a, password: a} ], nkey: UAAA } }", "nkey"),
    ("accounts { A: { exports: [ { service: s, response_type: stream } ] } }", "response_type"),
    ("accounts { A: { users: [ {user: a, password: a} ] } }\nsystem_account: A", "system_account"),
])
def test_unimplemented_account_settings_refuse(make_server, edgebus_only, conf, key):
    if not edgebus_only:
        pytest.skip("nats-server implements these")
    srv = make_server(conf + "\n", start=False)
    assert f"{key}:" in _refuses(srv)


def test_user_in_two_accounts_refuses(make_server):
    conf = ("accounts { A: { users: [ {user: x, password: a} ] }, "
            "B: { users: [ {user: x, password: b} ] } }\n")
    srv = make_server(conf, start=False)
    log = _refuses(srv)
    assert "uplicate user" in log, log[-1500:]


JS_ACCOUNTS = """
accounts {
  A: { users: [ { user: a, password: a } ], jetstream: enabled }
  B: { users: [ { user: b, password: b } ], jetstream: { max_mem: 1MB, max_file: 64MB } }
  C: { users: [ { user: c, password: c } ] }
}
"""


async def test_each_account_has_its_own_jetstream(make_server):
    srv = make_server(JS_ACCOUNTS, jetstream=True)
    a = await nats_connect(srv.url, user="a", password="a")
    b = await nats_connect(srv.url, user="b", password="b")
    try:
        cfg = {"name": "S", "subjects": ["s.>"], "storage": "file"}
        made = await js_api(a, "$JS.API.STREAM.CREATE.S", cfg)
        assert "error" not in made, made
        # B sees none of A's streams, and has a stream of the same name and subjects of its own
        names = await js_api(b, "$JS.API.STREAM.NAMES")
        assert not names.get("streams"), names
        assert "error" not in await js_api(b, "$JS.API.STREAM.CREATE.S", cfg)
        for i in range(3):
            ack = json.loads((await a.request("s.x", b"%d" % i, timeout=3)).data)
            assert ack == {"stream": "S", "seq": i + 1}, ack
        ack = json.loads((await b.request("s.x", b"b", timeout=3)).data)
        assert ack == {"stream": "S", "seq": 1}, ack
        assert (await js_api(a, "$JS.API.STREAM.INFO.S"))["state"]["messages"] == 3
        assert (await js_api(b, "$JS.API.STREAM.INFO.S"))["state"]["messages"] == 1
        # deleting B's stream leaves A's
        assert (await js_api(b, "$JS.API.STREAM.DELETE.S")).get("success") is True
        assert (await js_api(a, "$JS.API.STREAM.INFO.S"))["state"]["messages"] == 3
        # nats-server's layout: one directory per account
        assert (srv.store_dir / "jetstream" / "A" / "streams" / "S").is_dir()
        # the per-account limit: B may hold 1 MB in memory
        big = {"name": "M", "subjects": ["m.>"], "storage": "memory", "max_bytes": 2 * 1024 * 1024}
        assert (await js_api(b, "$JS.API.STREAM.CREATE.M", big))["error"]["err_code"] == 10028
        assert "error" not in await js_api(a, "$JS.API.STREAM.CREATE.M", big)
    finally:
        await a.close()
        await b.close()


async def test_account_without_jetstream_gets_not_enabled(make_server):
    srv = make_server(JS_ACCOUNTS, jetstream=True)
    c = await nats_connect(srv.url, user="c", password="c")
    try:
        for subject, kind in [("$JS.API.INFO", "account_info_response"),
                              ("$JS.API.STREAM.CREATE.S", "stream_create_response"),
                              ("$JS.API.STREAM.NAMES", "stream_names_response")]:
            body = {"name": "S", "subjects": ["s.>"]} if "CREATE" in subject else None
            got = await js_api(c, subject, body)
            # (nats-server adds the zero values of the response's other fields)
            assert got["type"] == f"io.nats.jetstream.api.v1.{kind}", got
            assert got["error"] == {"code": 503, "err_code": 10039,
                                    "description": "JetStream not enabled for account"}, got
    finally:
        await c.close()


async def test_jetstream_enabled_in_no_account_enables_none(make_server):
    # nats-server: with accounts configured, only accounts that enable JetStream have it,
    # not even $G otherwise
    srv = make_server("accounts { A: { users: [ { user: a, password: a } ] } }\n", jetstream=True)
    a = await nats_connect(srv.url, user="a", password="a")
    try:
        got = await js_api(a, "$JS.API.INFO")
        assert got["error"]["err_code"] == 10039, got
    finally:
        await a.close()


def _nkey_user():
    import os

    import nkeys
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return nkeys.from_seed(bytearray(seed)).public_key.decode(), seed.decode()


async def test_nkey_users_belong_to_their_account(make_server, token):
    # as nats.py's nkeys_server.conf declares them: nkey users inside an account block
    (a_key, a_seed), (g_key, g_seed) = _nkey_user(), _nkey_user()
    conf = (f"accounts {{ A: {{ users: [ {{ nkey: {a_key} }} ] }}, "
            f"G: {{ users: [ {{ nkey: {g_key} }} ] }} }}\n")
    srv = make_server(conf)
    a = await nats_connect(srv.url, nkeys_seed_str=a_seed)
    a2 = await nats_connect(srv.url, nkeys_seed_str=a_seed)
    g = await nats_connect(srv.url, nkeys_seed_str=g_seed)
    try:
        subject = f"iso.{token}"
        sub_g = await g.subscribe(subject)
        sub_a = await a2.subscribe(subject)
        await settle(g, a2)
        await a.publish(subject, b"a-only")
        await settle(a)  # the server has routed A's message before G's marker
        await g.publish(subject, b"marker")
        await g.flush()
        # G sees its own marker and nothing of A's; A's own account receives A's message
        assert (await sub_g.next_msg(timeout=5)).data == b"marker"
        assert (await sub_a.next_msg(timeout=5)).data == b"a-only"
    finally:
        await a.close()
        await a2.close()
        await g.close()
