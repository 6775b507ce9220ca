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

import asyncio
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


RESPONDER = """permissions { subscribe: ["svc.>"], allow_responses: true }"""


@pytest.fixture(scope="module", params=["nats-server", "edgebus"])
def responder_top(request, tmp_path_factory):
    leaf_port = free_port()
    s = start(request.param, Server(tmp_path_factory.mktemp(f"responses-{request.param}"), config_text=f"""
authorization {{ users: [
  {{ user: svc, password: pw, {RESPONDER} }}
  {{ user: admin, password: pw }}
] }}
leafnodes {{ listen: "{HOST}:{leaf_port}" }}
"""))
    s.leaf_port = leaf_port
    yield s
    s.stop()


async def test_allow_responses_lets_a_leaf_answer_what_it_was_sent(responder_top):
    """A leaf authenticated as a user that may receive `svc.>` and publish nothing but
    responses: its answer to a request it was delivered enters, once; a second answer to
    the same request, like anything else it sends, closes the link. (A leaf server below
    such a hub never learns of the requester's inbox, so the check speaks the leaf side by
    hand.)"""
    top = responder_top
    leaf, _, second = raw_connect(top.leaf_port, user="svc", **{"pass": "pw"})
    nc = await nats_connect(top.url, **ADMIN)
    try:
        assert second["import"] == {"allow": ["svc.>"]} and second.get("export") == {}
        leaf.send(b"LS+ svc.echo\r\nPING\r\n")
        leaf.until(b"PONG")  # raw_connect's PING
        leaf.until(b"PONG")  # ours: the LS+ before it was taken
        request = asyncio.ensure_future(nc.request("svc.echo", b"hi", timeout=10))
        lmsg = await asyncio.get_running_loop().run_in_executor(None, leaf.until, b"LMSG svc.echo ")
        reply = lmsg.split()[2]
        leaf.send(b"LMSG " + reply + b" 6\r\nanswer\r\n")
        assert (await request).data == b"answer"
        leaf.send(b"LMSG " + reply + b" 5\r\nagain\r\n")
        error = await asyncio.get_running_loop().run_in_executor(None, leaf.until, b"-ERR")
        assert error == b"-ERR 'Permissions Violation for Publish to \"" + reply + b"\"'"
    finally:
        leaf.close()
        await nc.close()


class RawHub:
    """A hub spoken by hand: accepts one leaf, answers its PINGs, and records the subjects of
    the messages it forwards."""

    def __init__(self):
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.sock: socket.socket | None = None
        self.buf = b""
        self.msgs: list[str] = []
        self.pongs = 0

    def accept(self) -> None:
        self.listener.settimeout(15)
        self.sock, _ = self.listener.accept()
        self.sock.settimeout(10)
        self.info(server_name="hub", version="2.14.0", proto=1, headers=True, max_payload=1048576,
                  host=HOST, port=self.port, info_on_connect=True, client_id=1, leafnode_urls=[])
        while not (line := self.line()).startswith(b"CONNECT "):
            pass

    def info(self, **fields) -> None:
        assert self.sock is not None
        self.sock.sendall(b"INFO " + json.dumps({"server_id": "NRAWHUB", **fields}).encode() + b"\r\n")

    def line(self) -> bytes:
        assert self.sock is not None
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; read {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def serve_until(self, done) -> None:
        """Reads what the leaf sends, answering PINGs, until `done()`."""
        while not done():
            line = self.line()
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line == b"PONG":
                self.pongs += 1
            elif line.startswith(b"LMSG "):
                size = int(line.split()[-1])
                while len(self.buf) < size + 2:
                    self.buf += self.sock.recv(65536)
                self.buf = self.buf[size + 2:]
                self.msgs.append(line.split()[1].decode())

    def synced(self) -> None:
        """A PING answered: what we sent before it was processed."""
        pongs = self.pongs
        self.sock.sendall(b"PING\r\n")
        self.serve_until(lambda: self.pongs > pongs)

    def close(self) -> None:
        if self.sock:
            self.sock.close()
        self.listener.close()


@pytest.mark.parametrize("kind", ["nats-server", "edgebus"])
async def test_a_later_info_replaces_the_permissions_the_hub_sent(tmp_path, kind):
    """The soliciting side takes the hub's `import`/`export` from every INFO that carries
    them, not only the first: what it forwards follows the latest."""
    hub = RawHub()
    spoke = Server(tmp_path / "spoke", config_text=f"""
server_name: spoke
leafnodes {{ remotes: [ {{ url: "nats-leaf://{HOST}:{hub.port}" }} ], reconnect: "250ms" }}
""")
    nc = None
    try:
        start(kind, spoke)
        await asyncio.get_running_loop().run_in_executor(None, hub.accept)
        hub.info(connect_info=True, remote_account="$G", export={"allow": ["a.>", "mark"]})
        hub.sock.sendall(b"LS+ a.>\r\nLS+ b.>\r\nLS+ mark\r\n")
        hub.synced()
        nc = await nats_connect(spoke.url)

        async def published(*subjects: str) -> list[str]:
            for s in subjects:
                await nc.publish(s, b"x")
            await nc.publish("mark", b"x")
            await nc.flush()
            before = len(hub.msgs)
            await asyncio.get_running_loop().run_in_executor(
                None, hub.serve_until, lambda: "mark" in hub.msgs[before:])
            got = hub.msgs[before:]
            del hub.msgs[:]
            return got

        assert await published("a.1", "b.1") == ["a.1", "mark"]
        hub.info(export={"allow": ["b.>", "mark"]})
        await asyncio.get_running_loop().run_in_executor(None, hub.synced)
        assert await published("a.2", "b.2") == ["b.2", "mark"]
    finally:
        if nc:
            await nc.close()
        hub.close()
        spoke.stop()
