"""Permissions and nkeys on leaves that dial a server's leaf port.

nats-server 2.14 takes no `permissions` in `leafnodes { authorization { users } }` (it
refuses the field); a leaf gets permissions by authenticating as a user of the client port's
`authorization`, whose `publish` is what the leaf may send up and `subscribe` what it may
receive. The hub tells the leaf those rules in its connect-info INFO (`import`/`export`) and
enforces them itself: interest it announces, messages it delivers, and the leaf's own
messages and interest, where a literal breach closes the link with nats-server's `-ERR`.

Every check runs with nats-server 2.14 as the top server first, then edgebus; the leaf below
is nats-server, then edgebus below edgebus.
"""

from __future__ import annotations

import json
import socket

import nats
import pytest

from conftest import Server, free_port
from edgehelp import HOST, http_json, nats_connect, poll_sync
from test_leaf import flows, start

PERMS = """permissions {
      publish { allow: ["up.>"], deny: ["up.secret"] }
      subscribe { allow: ["down.>"], deny: ["down.secret"] }
    }"""
ADMIN = {"user": "admin", "password": "pw"}


def top_config(leaf_port: int) -> str:
    return f"""
server_name: top
authorization {{ users: [
  {{ user: down, password: pw, {PERMS} }}
  {{ user: admin, password: pw }}
] }}
leafnodes {{ listen: "{HOST}:{leaf_port}" }}
"""


@pytest.fixture(scope="module", params=[("nats-server", "nats-server"), ("edgebus", "nats-server"),
                                        ("edgebus", "edgebus")], ids=lambda p: f"{p[1]}-below-{p[0]}")
def pair(request, tmp_path_factory):
    kind, spoke_kind = request.param
    root = tmp_path_factory.mktemp(f"perms-{kind}-{spoke_kind}")
    leaf_port = free_port()
    top = start(kind, Server(root / "top", config_text=top_config(leaf_port)))
    top.leaf_port = leaf_port
    spoke = start(spoke_kind, Server(root / "spoke", config_text=f"""
server_name: spoke
leafnodes {{ remotes: [ {{ url: "nats-leaf://down:pw@{HOST}:{leaf_port}" }} ], reconnect: "250ms" }}
"""))
    ok = poll_sync(lambda: http_json(top.http_port, "/leafz")["leafnodes"] == 1, timeout=15)
    assert ok, top.log_text()[-2000:] + spoke.log_text()[-2000:]
    yield top, spoke
    spoke.stop()
    top.stop()


async def no_message(sub) -> None:
    """Nothing is queued on `sub`: called after a later message on the same connection
    arrived, so anything sent before it would be here already."""
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(timeout=0.001)


async def test_allowed_subjects_cross_and_denied_ones_do_not(pair):
    top, spoke = pair
    at_top, at_spoke = await nats_connect(top.url, **ADMIN), await nats_connect(spoke.url)
    try:
        up, side = await at_top.subscribe("up.>"), await at_top.subscribe("side")
        down = await at_spoke.subscribe("down.>")
        await flows(at_spoke, "up.ok", up)
        await flows(at_top, "down.ok", down)

        # up: the user's publish allows up.> but denies up.secret, and not `side`
        await at_spoke.publish("up.secret", b"no")
        await at_spoke.publish("side", b"no")
        await at_spoke.publish("up.after", b"yes")
        m = await up.next_msg(timeout=5)
        assert (m.subject, m.data) == ("up.after", b"yes")
        await no_message(side)

        # down: the user's subscribe allows down.> but denies down.secret
        spoke_side = await at_spoke.subscribe("up.mine")
        await at_top.publish("down.secret", b"no")
        await at_top.publish("up.mine", b"no")
        await at_top.publish("down.after", b"yes")
        m = await down.next_msg(timeout=5)
        assert (m.subject, m.data) == ("down.after", b"yes")
        await no_message(spoke_side)

        # nothing above broke the link
        assert http_json(top.http_port, "/leafz")["leafnodes"] == 1
        assert http_json(spoke.http_port, "/leafz")["leafnodes"] == 1
    finally:
        await at_top.close()
        await at_spoke.close()


class RawLeaf:
    """A leaf connection spoken by hand, to see what the top server says."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; read {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until(self, prefix: bytes) -> bytes:
        while not (line := self.line()).startswith(prefix):
            pass
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def raw_connect(port: int, **creds) -> tuple[RawLeaf, dict, dict]:
    leaf = RawLeaf(port)
    first = json.loads(leaf.until(b"INFO ")[5:])
    connect = {"name": "raw", "server_id": "NRAW", "headers": True, "protocol": 1, **creds}
    leaf.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    second = json.loads(leaf.until(b"INFO ")[5:])
    return leaf, first, second


@pytest.fixture(scope="module", params=["nats-server", "edgebus"])
def top(request, tmp_path_factory):
    leaf_port = free_port()
    s = start(request.param, Server(tmp_path_factory.mktemp(f"raw-{request.param}"),
                                    config_text=top_config(leaf_port)))
    s.leaf_port = leaf_port
    yield s
    s.stop()


def test_the_connect_info_carries_the_users_permissions(top):
    leaf, first, second = raw_connect(top.leaf_port, user="down", **{"pass": "pw"})
    try:
        assert first.get("info_on_connect") is True and first.get("auth_required") is True
        assert second.get("connect_info") is True
        assert second["import"] == {"allow": ["down.>"], "deny": ["down.secret"]}
        assert second["export"] == {"allow": ["up.>"], "deny": ["up.secret"]}
    finally:
        leaf.close()


@pytest.mark.parametrize("breach, error", [
    (b"LMSG up.secret 2\r\nno\r\n", b"-ERR 'Permissions Violation for Publish to \"up.secret\"'"),
    (b"LS+ down.secret\r\n", b"-ERR 'Permissions Violation for Subscription to \"down.secret\"'"),
])
def test_a_literal_breach_closes_the_link(top, breach, error):
    leaf, _, _ = raw_connect(top.leaf_port, user="down", **{"pass": "pw"})
    try:
        leaf.send(breach)
        assert leaf.until(b"-ERR") == error
    finally:
        leaf.close()


def test_wrong_password_is_refused(top):
    leaf = RawLeaf(top.leaf_port)
    try:
        leaf.until(b"INFO ")
        leaf.send(b'CONNECT {"name":"raw","user":"down","pass":"nope"}\r\n')
        assert leaf.until(b"-ERR") == b"-ERR 'Authorization Violation'"
    finally:
        leaf.close()
