"""nkey authentication of a leaf dialling a leaf port: the remote's `nkey`/`seed` (a user
seed) makes the leaf `CONNECT` carry the public key and the port's nonce signed with it; the
port admits it by `leafnodes { authorization { nkey } }`, or, with no leaf authorization, as
an nkey user of the client port's `authorization` (nats-server 2.14's `isLeafNodeAuthorized`).
The right seed links and messages cross; another user's seed is refused. Each pair runs with
nats-server 2.14 on the top first, and below it, then edgebus in each place."""

from __future__ import annotations

import nkeys
import pytest

from conftest import Server, free_port
from edgehelp import HOST, http_json, poll_sync
from test_jwt import Key
from test_leaf import crosses_both_ways, start

PAIRS = [("nats-server", "nats-server"), ("nats-server", "edgebus"), ("edgebus", "nats-server"),
         ("edgebus", "edgebus")]


def leafs(s: Server) -> int:
    return http_json(s.http_port, "/leafz")["leafnodes"]


@pytest.mark.parametrize("where", ["leafnodes", "client"])
@pytest.mark.parametrize("top_kind,spoke_kind", PAIRS, ids=[f"{s}-below-{t}" for t, s in PAIRS])
async def test_a_leaf_signs_the_nonce_with_its_seed(tmp_path, top_kind, spoke_kind, where):
    good, other = Key(nkeys.PREFIX_BYTE_USER), Key(nkeys.PREFIX_BYTE_USER)
    leaf_port = free_port()
    key = good.kp.public_key.decode()
    if where == "leafnodes":
        auth, leaf_auth = "", f"authorization {{ nkey: {key} }}"
    else:
        auth, leaf_auth = f"authorization {{ users: [ {{ nkey: {key} }}, {{ user: admin, password: pw }} ] }}", ""
    top = start(top_kind, Server(tmp_path / "top", config_text=f"""
server_name: top
{auth}
leafnodes {{
  listen: "{HOST}:{leaf_port}"
  {leaf_auth}
}}
"""))

    def spoke(name: str, seed: bytes) -> Server:
        return start(spoke_kind, Server(tmp_path / name, config_text=f"""
server_name: {name}
leafnodes {{ remotes: [ {{ url: "nats-leaf://{HOST}:{leaf_port}", nkey: "{seed.decode()}" }} ],
             reconnect: "250ms" }}
"""))

    servers = [top]
    try:
        right = spoke("right", good.seed)
        servers.append(right)
        assert poll_sync(lambda: leafs(top) == 1 and leafs(right) == 1, timeout=15), \
            top.log_text()[-2000:] + right.log_text()[-2000:]
        if where == "leafnodes":
            await crosses_both_ways(top, right)
        wrong = spoke("wrong", other.seed)
        servers.append(wrong)
        assert poll_sync(lambda: "uthorization" in wrong.log_text(), timeout=10), wrong.log_text()[-2000:]
        assert leafs(wrong) == 0 and leafs(top) == 1
    finally:
        for s in reversed(servers):
            s.stop()


def test_a_remote_seed_that_is_not_a_user_seed_refuses_to_start(tmp_path):
    account = Key(nkeys.PREFIX_BYTE_ACCOUNT)
    s = Server(tmp_path, config_text=f"""
leafnodes {{ remotes: [ {{ url: "nats-leaf://{HOST}:1", seed: "{account.seed.decode()}" }} ] }}
""")
    with pytest.raises(RuntimeError) as e:
        start("edgebus", s)
    assert "not a valid seed" in str(e.value)
