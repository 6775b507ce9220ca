"""User JWT / .creds authentication under a trusted operator with a memory resolver, as
nats-server 2.14 does it: the user JWT must be signed by its account (or one of the account's
signing keys), the account JWT by the operator (or one of its signing keys), nothing may have
expired or been revoked, and the client signs the INFO nonce with the user's seed (unless the
JWT is a bearer token). The user JWT's pub/sub permissions apply. Operators, accounts and users
are made here with fresh nkeys; nats-py connects with `user_credentials`."""

from __future__ import annotations

import base64
import json
import os
import time

import nkeys
import pytest

from edgehelp import Wire, nats_connect, settle

AUTH_VIOLATION = b"-ERR 'Authorization Violation'"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Key:
    def __init__(self, prefix: int):
        self.seed = nkeys.encode_seed(os.urandom(32), prefix)
        self.kp = nkeys.from_seed(bytearray(self.seed))
        self.public = self.kp.public_key.decode()

    def sig(self, nonce: str) -> str:
        return b64(self.kp.sign(nonce.encode()))


def jwt(issuer: Key, subject: str, kind: str, nats: dict | None = None, **claims) -> str:
    """A version 2 NATS JWT (`ed25519-nkey`, signed over header.claims)."""
    body = {"jti": b64(os.urandom(16)), "iat": int(time.time()), "iss": issuer.public, "sub": subject,
            "name": kind, **claims, "nats": {"type": kind, "version": 2, **(nats or {})}}
    head = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    part = head + "." + b64(json.dumps(body).encode())
    return part + "." + b64(issuer.kp.sign(part.encode()))


UNLIMITED = {"subs": -1, "data": -1, "payload": -1}

OPERATOR, OP_SIGNER = Key(nkeys.PREFIX_BYTE_OPERATOR), Key(nkeys.PREFIX_BYTE_OPERATOR)
ACCOUNT, ACC_SIGNER, OTHER_ACCOUNT = (Key(nkeys.PREFIX_BYTE_ACCOUNT) for _ in range(3))
OPERATOR_JWT = jwt(OPERATOR, OPERATOR.public, "operator", {"signing_keys": [OP_SIGNER.public]})
REVOKED = Key(nkeys.PREFIX_BYTE_USER)
REVOKED_AT = int(time.time())
ACCOUNT_JWT = jwt(OP_SIGNER, ACCOUNT.public, "account", {
    "limits": {**UNLIMITED, "conn": -1, "leaf": -1, "imports": -1, "exports": -1, "wildcards": True},
    "signing_keys": [ACC_SIGNER.public],
    "revocations": {REVOKED.public: REVOKED_AT},
})


def user(issuer: Key = ACCOUNT, nats: dict | None = None, **claims) -> tuple[Key, str]:
    u = Key(nkeys.PREFIX_BYTE_USER)
    return u, jwt(issuer, u.public, "user", {**UNLIMITED, **(nats or {})}, **claims)


def config(preload: dict[str, str] | None = None, extra: str = "") -> str:
    preload = preload if preload is not None else {ACCOUNT.public: ACCOUNT_JWT}
    entries = "\n".join(f"  {k}: \"{v}\"" for k, v in preload.items())
    return f"operator: {OPERATOR_JWT}\nresolver: MEMORY\nresolver_preload: {{\n{entries}\n}}\n{extra}"


def creds(path, u: Key, token: str) -> str:
    path.write_text(f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
                    f"-----BEGIN USER NKEY SEED-----\n{u.seed.decode()}\n------END USER NKEY SEED------\n")
    return str(path)


@pytest.fixture
def op_server(make_server):
    return make_server(config())


def connect_raw(port: int, fields) -> Wire:
    w = Wire(port)
    info = w.info()
    w.send(b"CONNECT " + json.dumps({"verbose": False, **fields(info)}).encode() + b"\r\n")
    return w


def admitted(port: int, fields) -> Wire:
    w = connect_raw(port, fields)
    assert w.roundtrip() == b"PONG\r\n"
    return w


def refused(port: int, fields) -> None:
    with connect_raw(port, fields) as w:
        w.send(b"PING\r\n")
        assert w.line() == AUTH_VIOLATION
        assert w.wait_closed()


def signed(u: Key, token: str):
    return lambda info: {"jwt": token, "sig": u.sig(info["nonce"])}


def test_info_asks_for_auth_with_a_nonce(op_server):
    with Wire(op_server.port) as w:
        info = w.info()
        assert info["auth_required"] is True and info["nonce"]


async def test_nats_py_connects_with_a_creds_file(op_server, tmp_path):
    u, token = user(nats={"pub": {"allow": ["orders.>", "_INBOX.>"]}, "sub": {"allow": ["orders.>", "_INBOX.>"]}})
    nc = await nats_connect(op_server.url, user_credentials=creds(tmp_path / "u.creds", u, token))
    try:
        sub = await nc.subscribe("orders.new")
        await nc.publish("orders.new", b"one")
        assert (await sub.next_msg(timeout=5)).data == b"one"
    finally:
        await nc.close()
    # the JWT and the seed in two files
    (tmp_path / "u.jwt").write_text(token)
    (tmp_path / "u.nk").write_text(u.seed.decode())
    nc = await nats_connect(op_server.url, user_credentials=(str(tmp_path / "u.jwt"), str(tmp_path / "u.nk")))
    await nc.close()


def test_user_jwt_permissions_apply(op_server):
    u, token = user(nats={"pub": {"allow": ["ok.>"], "deny": ["ok.secret"]}, "sub": {"deny": ["hidden"]}})
    with admitted(op_server.port, signed(u, token)) as w:
        w.send(b"PUB nope 1\r\nx\r\nPUB ok.secret 1\r\nx\r\nSUB hidden 1\r\nSUB ok.a 2\r\nPUB ok.a 1\r\ny\r\n")
        assert w.roundtrip() == (b"-ERR 'Permissions Violation for Publish to \"nope\"'\r\n"
                                 b"-ERR 'Permissions Violation for Publish to \"ok.secret\"'\r\n"
                                 b"-ERR 'Permissions Violation for Subscription to \"hidden\"'\r\n"
                                 b"MSG ok.a 2 1\r\ny\r\nPONG\r\n")


def test_account_signing_key_may_issue_users(op_server):
    u, token = user(ACC_SIGNER, nats={"issuer_account": ACCOUNT.public})
    admitted(op_server.port, signed(u, token)).close()
    stranger = Key(nkeys.PREFIX_BYTE_ACCOUNT)
    u, token = user(stranger, nats={"issuer_account": ACCOUNT.public})
    refused(op_server.port, signed(u, token))


def test_bad_signatures_and_untrusted_issuers_are_refused(op_server):
    port = op_server.port
    u, token = user()
    refused(port, lambda info: {"jwt": token})
    refused(port, lambda info: {"jwt": token, "sig": u.sig(info["nonce"] + "x")})
    refused(port, lambda info: {"jwt": token, "sig": Key(nkeys.PREFIX_BYTE_USER).sig(info["nonce"])})
    # a JWT whose claims were changed after signing
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["nats"]["pub"] = {"allow": [">"]}
    forged = ".".join([head, b64(json.dumps(claims).encode()), sig])
    refused(port, signed(u, forged))
    # an account the resolver does not hold
    u, token = user(OTHER_ACCOUNT)
    refused(port, signed(u, token))
    # no JWT at all: operator mode needs one
    refused(port, lambda info: {})
    refused(port, lambda info: {"user": "a", "pass": "b"})


def test_expired_and_revoked_users_are_refused(op_server):
    u, token = user(exp=int(time.time()) - 10)
    refused(op_server.port, signed(u, token))
    # issued before the account revoked the key (the time is in the JWT, not the clock's)
    token = jwt(ACCOUNT, REVOKED.public, "user", UNLIMITED, iat=REVOKED_AT - 10)
    refused(op_server.port, signed(REVOKED, token))
    # a JWT issued after the revocation is good again
    token = jwt(ACCOUNT, REVOKED.public, "user", UNLIMITED, iat=REVOKED_AT + 10)
    admitted(op_server.port, signed(REVOKED, token)).close()


def test_bearer_token_needs_no_signature(op_server):
    u, token = user(nats={"bearer_token": True})
    admitted(op_server.port, lambda info: {"jwt": token}).close()


def test_operator_with_users_refuses_to_start(make_server):
    srv = make_server(config(extra="authorization { users: [ { user: a, password: b } ] }\n"), start=False)
    proc = srv.spawn()
    assert proc.wait(timeout=15) != 0
    srv.stop()
    assert "operators do not allow users to be configured directly" in srv.log_text()


async def test_each_preloaded_account_is_a_subject_space_of_its_own(make_server, tmp_path):
    # as nats.py's resolver_preload.conf: two accounts; a user of one never sees the other's
    other_jwt = jwt(OPERATOR, OTHER_ACCOUNT.public, "account", {"limits": {**UNLIMITED, "conn": -1, "wildcards": True}})
    srv = make_server(config({ACCOUNT.public: ACCOUNT_JWT, OTHER_ACCOUNT.public: other_jwt}))
    (a, a_token), (b, b_token) = user(ACCOUNT), user(OTHER_ACCOUNT)
    na = await nats_connect(srv.url, user_credentials=creds(tmp_path / "a.creds", a, a_token))
    nb = await nats_connect(srv.url, user_credentials=creds(tmp_path / "b.creds", b, b_token))
    try:
        sub_b = await nb.subscribe("shared.subject")
        sub_a = await na.subscribe("shared.subject")
        await settle(na, nb)
        await na.publish("shared.subject", b"from-a")
        await settle(na)  # A's message is routed before B's marker
        await nb.publish("shared.subject", b"marker")
        assert (await sub_b.next_msg(timeout=5)).data == b"marker"
        assert (await sub_a.next_msg(timeout=5)).data == b"from-a"
    finally:
        await na.close()
        await nb.close()


@pytest.mark.parametrize("extra,key", [
    (lambda: config().replace("resolver: MEMORY", "resolver: URL(http://127.0.0.1:1/jwt/v1/accounts/)"), "resolver"),
], ids=["url_resolver"])
def test_what_edgebus_cannot_honour_refuses_to_start(make_server, edgebus_only, extra, key):
    if not edgebus_only:
        pytest.skip("nats-server implements these")
    srv = make_server(extra(), start=False)
    proc = srv.spawn()
    assert proc.wait(timeout=15) != 0
    srv.stop()
    assert f"{key}:" in srv.log_text(), srv.log_text()[-1500:]
