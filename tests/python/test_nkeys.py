"""nkey users as nats-server 2.14 authenticates them: INFO carries a nonce only when nkeys are
configured, the client signs it with its seed (CONNECT `nkey` + `sig`), and a missing, wrong
or foreign signature is an Authorization Violation that closes the connection. nkey users
mix with user/password users, get their permissions (or default_permissions), and may be
the no_auth_user. Seeds are made here; nats-py signs with `nkeys_seed`."""

from __future__ import annotations

import base64
import json
import os

import nats
import nkeys
import pytest

from edgehelp import Wire, WsWire, nats_connect

AUTH_VIOLATION = b"-ERR 'Authorization Violation'"


class User:
    """A fresh user nkey: its seed (what the client keeps) and public key (the config's)."""

    def __init__(self):
        self.seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
        self.kp = nkeys.from_seed(bytearray(self.seed))
        self.public = self.kp.public_key.decode()

    def sig(self, nonce: str, encode=base64.urlsafe_b64encode) -> str:
        return encode(self.kp.sign(nonce.encode())).decode().rstrip("=")

    def connect_fields(self, info: dict) -> dict:
        return {"nkey": self.public, "sig": self.sig(info["nonce"])}


ALICE, LIMITED, GUEST, STRANGER = User(), User(), User(), User()

CONFIG = f"""
authorization {{
  default_permissions: {{ publish: "dflt.>", subscribe: "dflt.>" }}
  users: [
    {{ nkey: {ALICE.public}, permissions: {{ publish: ">", subscribe: ">" }} }}
    {{ nkey: {LIMITED.public}, permissions: {{ publish: "ok.>", subscribe: ["ok.>", "_INBOX.>"] }} }}
    {{ nkey: {GUEST.public} }}
    {{ user: pw, password: secret, permissions: {{ publish: ">", subscribe: ">" }} }}
  ]
}}
"""


@pytest.fixture
def nkey_server(make_server):
    return make_server(CONFIG)


def refused(port: int, fields) -> None:
    """`fields(info)` gives the CONNECT's credentials; the server must refuse and close."""
    with Wire(port) as w:
        info = w.info()
        w.send(b"CONNECT " + json.dumps({"verbose": False, **fields(info)}).encode()
               + b"\r\nPING\r\n")
        assert w.line() == AUTH_VIOLATION
        assert w.wait_closed()


def signed_in(port: int, user: User) -> Wire:
    w = Wire(port)
    info = w.info()
    w.send(b"CONNECT " + json.dumps({"verbose": False, **user.connect_fields(info)}).encode()
           + b"\r\n")
    assert w.roundtrip() == b"PONG\r\n"
    return w


def test_info_has_a_nonce_only_with_nkeys(nkey_server, make_server):
    with Wire(nkey_server.port) as w:
        info = w.info()
        assert info["auth_required"] is True
        assert len(info["nonce"]) >= 11
    with Wire(nkey_server.port) as w:
        assert w.info()["nonce"] != info["nonce"], "each connection gets its own nonce"
    plain = make_server("authorization { users: [ { user: a, password: b } ] }\n")
    with Wire(plain.port) as w:
        assert "nonce" not in w.info()


def test_signed_nonce_is_admitted(nkey_server):
    with signed_in(nkey_server.port, ALICE) as w:
        w.send(b"SUB any.thing 1\r\nPUB any.thing 2\r\nhi\r\n")
        assert w.roundtrip() == b"MSG any.thing 1 2\r\nhi\r\nPONG\r\n"


def test_standard_base64_signature_is_admitted(nkey_server):
    with Wire(nkey_server.port) as w:
        info = w.info()
        sig = ALICE.sig(info["nonce"], base64.standard_b64encode) + "=="
        w.send(b"CONNECT " + json.dumps(
            {"verbose": False, "nkey": ALICE.public, "sig": sig}).encode() + b"\r\n")
        assert w.roundtrip() == b"PONG\r\n"


def test_wrong_missing_and_foreign_signatures_are_refused(nkey_server):
    port = nkey_server.port
    refused(port, lambda info: {"nkey": ALICE.public, "sig": ALICE.sig(info["nonce"] + "x")})
    refused(port, lambda info: {"nkey": ALICE.public, "sig": LIMITED.sig(info["nonce"])})
    refused(port, lambda info: {"nkey": ALICE.public})
    refused(port, lambda info: {"nkey": ALICE.public, "sig": "not base64 at all!"})
    refused(port, lambda info: STRANGER.connect_fields(info))
    refused(port, lambda info: {})
    refused(port, lambda info: {"user": "pw", "pass": "wrong"})


def test_password_users_beside_nkeys(nkey_server):
    with Wire(nkey_server.port) as w:
        w.hello(user="pw", **{"pass": "secret"})
        w.send(b"SUB x 1\r\nPUB x 1\r\n!\r\n")
        assert w.roundtrip() == b"MSG x 1 1\r\n!\r\nPONG\r\n"


def test_permissions_of_nkey_users(nkey_server):
    with signed_in(nkey_server.port, LIMITED) as lim, signed_in(nkey_server.port, GUEST) as guest:
        lim.send(b"PUB no.way 1\r\nx\r\nSUB no.way 1\r\nSUB ok.fine 2\r\nPUB ok.fine 1\r\ny\r\n")
        assert lim.roundtrip() == (b"-ERR 'Permissions Violation for Publish to \"no.way\"'\r\n"
                                   b"-ERR 'Permissions Violation for Subscription to \"no.way\"'\r\n"
                                   b"MSG ok.fine 2 1\r\ny\r\nPONG\r\n")
        # default_permissions for the nkey user without its own
        guest.send(b"PUB ok.fine 1\r\nx\r\nPUB dflt.a 1\r\nz\r\n")
        assert guest.roundtrip() == b"-ERR 'Permissions Violation for Publish to \"ok.fine\"'\r\nPONG\r\n"


async def test_nats_py_signs_with_its_seed(nkey_server):
    nc = await nats_connect(nkey_server.url, nkeys_seed_str=LIMITED.seed.decode())
    try:
        sub = await nc.subscribe("ok.py")
        await nc.publish("ok.py", b"from nats-py")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"from nats-py"
    finally:
        await nc.close()
    with pytest.raises(Exception):
        await nats_connect(nkey_server.url, nkeys_seed_str=STRANGER.seed.decode())


def test_no_auth_user_may_be_an_nkey_user(make_server):
    server = make_server(CONFIG + f"no_auth_user: {GUEST.public}\n")
    with Wire(server.port) as w:
        info = w.hello()
        assert "auth_required" not in info
        w.send(b"PUB ok.fine 1\r\nx\r\nPUB dflt.b 1\r\nz\r\n")
        assert w.roundtrip() == b"-ERR 'Permissions Violation for Publish to \"ok.fine\"'\r\nPONG\r\n"
    # a client that names a key still has to sign for it
    refused(server.port, lambda info: {"nkey": ALICE.public, "sig": ALICE.sig("other")})
    with signed_in(server.port, ALICE) as w:
        w.send(b"PUB ok.fine 1\r\nx\r\n")
        assert w.roundtrip() == b"PONG\r\n"


def test_websocket_clients_sign_their_own_nonce(nkey_server):
    ws = WsWire(nkey_server.ws_port)
    try:
        status, _ = ws.upgrade()
        assert " 101 " in status
        info = json.loads(ws.read_until(b"\r\n")[5:])
        assert info["nonce"]
        fields = {"verbose": False, "nkey": ALICE.public, "sig": ALICE.sig(info["nonce"])}
        ws.send(b"CONNECT " + json.dumps(fields).encode() + b"\r\nPING\r\n")
        assert ws.read_until(b"PONG\r\n").endswith(b"PONG\r\n")
    finally:
        ws.close()
    ws = WsWire(nkey_server.ws_port)
    try:
        ws.upgrade()
        ws.read_until(b"\r\n")
        fields = {"verbose": False, "nkey": ALICE.public, "sig": ALICE.sig("not the nonce")}
        ws.send(b"CONNECT " + json.dumps(fields).encode() + b"\r\nPING\r\n")
        assert ws.read_until(b"\r\n") == AUTH_VIOLATION + b"\r\n"
    finally:
        ws.close()
