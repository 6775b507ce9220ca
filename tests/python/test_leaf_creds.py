"""A leaf remote with `credentials` (a `.creds` file) dialling a nats-server 2.14 hub in
operator mode (memory resolver, preloaded account): the leaf CONNECT carries the user JWT and
the hub's nonce signed with the user's seed. Right credentials link and messages cross; a
creds file whose seed is not the JWT's user is refused by the hub. nats-server 2.14 runs as
the leaf first, then edgebus. Operator, account and users are made with fresh nkeys
(test_jwt's helpers)."""

from __future__ import annotations

import pytest

from conftest import Server, free_port
from edgehelp import HOST, http_json, nats_connect, poll_sync
from test_jwt import config, creds, user
from test_leaf import flows, start, subject


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    leaf_port = free_port()
    s = Server(tmp_path_factory.mktemp("op-hub"),
               config_text=config(extra=f'server_name: hub\nleafnodes {{ listen: "{HOST}:{leaf_port}" }}\n'))
    start("nats-server", s)
    s.leaf_port = leaf_port
    yield s
    s.stop()


def leaf_server(root, kind: str, hub: Server, creds_path: str) -> Server:
    s = Server(root, config_text=f"""
server_name: {root.name}
leafnodes {{ remotes: [ {{ url: "nats-leaf://{HOST}:{hub.leaf_port}", credentials: "{creds_path}" }} ],
             reconnect: "250ms" }}
""")
    return start(kind, s)


def leafs(s: Server) -> int:
    return http_json(s.http_port, "/leafz")["leafnodes"]


@pytest.mark.parametrize("kind", ["nats-server", "edgebus"])
async def test_credentials_right_and_wrong(tmp_path, hub, kind):
    u, token = user()
    good = leaf_server(tmp_path / "good", kind, hub, creds(tmp_path / "good.creds", u, token))
    try:
        assert poll_sync(lambda: leafs(hub) == 1 and leafs(good) == 1, timeout=15), good.log_text()[-2000:]
        client, client_jwt = user()
        at_hub = await nats_connect(hub.url, user_credentials=creds(tmp_path / "client.creds", client, client_jwt))
        at_leaf = await nats_connect(good.url)
        try:
            up, down = subject(), subject()
            up_sub, down_sub = await at_hub.subscribe(up), await at_leaf.subscribe(down)
            await flows(at_leaf, up, up_sub)
            await flows(at_hub, down, down_sub)
        finally:
            await at_hub.close()
            await at_leaf.close()

        # the JWT of one user with the seed of another: the nonce signature does not verify
        other, _ = user()
        bad = leaf_server(tmp_path / "bad", kind, hub, creds(tmp_path / "bad.creds", other, token))
        try:
            assert poll_sync(lambda: "uthorization" in bad.log_text(), timeout=10), bad.log_text()[-2000:]
            assert leafs(bad) == 0 and leafs(hub) == 1
        finally:
            bad.stop()
    finally:
        good.stop()


def test_a_credentials_file_that_cannot_be_read_refuses_to_start(tmp_path):
    (tmp_path / "empty.creds").write_text("no blocks here\n")
    for path, needle in [(tmp_path / "missing.creds", "missing.creds"), (tmp_path / "empty.creds", "no user JWT")]:
        s = Server(tmp_path / path.stem, config_text=f"""
leafnodes {{ remotes: [ {{ url: "nats-leaf://{HOST}:1", credentials: "{path}" }} ] }}
""")
        with pytest.raises(RuntimeError) as e:
            start("edgebus", s)
        assert needle in str(e.value)
