"""Reloading `leafnodes { remotes }` with SIGHUP, as nats-server 2.14 does (since 2.10): a
remote the new configuration adds is dialled, one it no longer has is disconnected and not
dialled again, one it keeps stays up; a change to the leaf port's settings (`reconnect`
here) or to a kept remote's own settings is refused. Two standalone nats-server hubs; every
check runs first with nats-server 2.14 as the leaf, then with edgebus."""

from __future__ import annotations

import asyncio

import pytest

from conftest import Server, free_port
from edgehelp import HOST, http_json, nats_connect, poll_sync
from test_leaf import LEAF_PASS, LEAF_USER, start
from test_tls_reload import REFUSED, RELOADED, reload

KINDS = ["nats-server", "edgebus"]


def hub(tmp_path, i: int) -> Server:
    leaf_port = free_port()
    h = Server(tmp_path / f"hub{i}", config_text=f"""
server_name: hub{i}
leafnodes {{ listen: "{HOST}:{leaf_port}", authorization {{ user: {LEAF_USER}, password: {LEAF_PASS} }} }}
""")
    h.leaf_port = leaf_port
    return h


def leaf_config(ports: list[int], extra: str = "", remote_extra: str = "") -> str:
    remotes = ", ".join(
        f'{{ url: "nats-leaf://{LEAF_USER}:{LEAF_PASS}@{HOST}:{p}" {remote_extra} }}' for p in ports)
    return f"server_name: leaf\nleafnodes {{\n  {extra}\n  remotes: [ {remotes} ]\n}}\n"


def leafs(h: Server) -> int:
    return len(http_json(h.http_port, "/leafz").get("leafs") or [])


async def crosses(leaf: Server, h: Server, subject: str) -> bool:
    """Whether a message published on the leaf reaches a subscriber on hub `h` (published
    again until the hub's interest has crossed the link)."""
    hub_nc = await nats_connect(h.url)
    leaf_nc = await nats_connect(leaf.url)
    try:
        sub = await hub_nc.subscribe(subject)
        await hub_nc.flush()
        for _ in range(50):
            await leaf_nc.publish(subject, b"over the link")
            await leaf_nc.flush()
            try:
                return (await sub.next_msg(timeout=0.2)).data == b"over the link"
            except asyncio.TimeoutError:
                continue
        return False
    finally:
        await leaf_nc.close()
        await hub_nc.close()


@pytest.fixture
def hubs(tmp_path):
    made = [hub(tmp_path, i) for i in range(2)]
    for h in made:
        start("nats-server", h)
    yield made
    for h in made:
        h.stop()


def ports_of(hubs: list[Server]) -> list[int]:
    return [h.leaf_port for h in hubs]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reload_dials_an_added_remote_and_drops_a_removed_one(tmp_path, hubs, kind):
    a, b = ports_of(hubs)
    leaf = Server(tmp_path / "leaf", config_text=leaf_config([a]))
    start(kind, leaf)
    try:
        assert poll_sync(lambda: leafs(hubs[0]) == 1, timeout=20), leaf.log_text()[-2000:]
        assert leafs(hubs[1]) == 0
        assert RELOADED in rewrite(leaf, leaf_config([b]))
        assert poll_sync(lambda: leafs(hubs[1]) == 1 and leafs(hubs[0]) == 0, timeout=20), leaf.log_text()[-2000:]
        assert await crosses(leaf, hubs[1], "reload.leaf.b")
        # both at once: the kept remote (b) stays connected while a comes back
        assert RELOADED in rewrite(leaf, leaf_config([b, a]))
        assert poll_sync(lambda: leafs(hubs[0]) == 1, timeout=20), leaf.log_text()[-2000:]
        assert leafs(hubs[1]) == 1
        assert await crosses(leaf, hubs[0], "reload.leaf.a")
    finally:
        leaf.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reload_changing_the_leaf_ports_settings_is_refused(tmp_path, hubs, kind):
    a, b = ports_of(hubs)
    leaf = Server(tmp_path / "leaf", config_text=leaf_config([a]))
    start(kind, leaf)
    try:
        assert poll_sync(lambda: leafs(hubs[0]) == 1, timeout=20), leaf.log_text()[-2000:]
        said = rewrite(leaf, leaf_config([a, b], extra='reconnect: "5s"'))
        assert REFUSED in said and "config reload not supported for" in said, said
        # nothing of it applies: the added remote is not dialled, the old link stays
        assert await crosses(leaf, hubs[0], "reload.leaf.kept")
        assert leafs(hubs[1]) == 0
    finally:
        leaf.stop()


async def test_a_reload_changing_a_kept_remotes_settings_is_refused(tmp_path, hubs, edgebus_only):
    if not edgebus_only:
        pytest.skip("a remote's user/password fields are edgebus's (nats-server takes them in the URL)")
    (a, _) = ports_of(hubs)
    leaf = Server(tmp_path / "leaf", config_text=leaf_config([a]))
    start("edgebus", leaf)
    try:
        assert poll_sync(lambda: leafs(hubs[0]) == 1, timeout=20), leaf.log_text()[-2000:]
        said = rewrite(leaf, leaf_config([a], remote_extra=", token: t"))
        assert REFUSED in said and "config reload not supported for leafnodes remote" in said, said
        assert LEAF_PASS not in said  # the remote is named without its URL's credentials
        assert await crosses(leaf, hubs[0], "reload.leaf.same")
    finally:
        leaf.stop()


def rewrite(srv: Server, text: str) -> str:
    srv.config_path.write_text(text)
    return reload(srv)
