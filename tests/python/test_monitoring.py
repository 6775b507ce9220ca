"""The monitoring HTTP endpoints (/healthz, /varz, /connz, /subsz)."""

from __future__ import annotations

import json

from edgehelp import http_get, http_json, nats_connect, poll, settle, take


def test_healthz(server):
    status, body = http_get(server.http_port, "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}


def test_varz_fields(server):
    varz = http_json(server.http_port, "/varz")
    for key in ("server_id", "connections", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
                "slow_consumers", "subscriptions", "uptime", "mem", "max_payload"):
        assert key in varz, f"/varz lacks {key!r}"
    assert isinstance(varz["server_id"], str) and varz["server_id"]
    assert varz["max_payload"] == 1048576
    for key in ("connections", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
                "slow_consumers", "subscriptions", "mem"):
        assert isinstance(varz[key], int) and varz[key] >= 0, key
    assert isinstance(varz["uptime"], str)
    # same server as the one we talk to
    from edgehelp import Wire
    with Wire(server.port) as w:
        assert w.info()["server_id"] == varz["server_id"]


async def test_varz_counts_messages_and_connections(make_server, token):
    server = make_server()  # private: no other clients disturb the counts
    # the start-up probe's connection may still be on its way out
    before = await poll(lambda: (v := http_json(server.http_port, "/varz"))["connections"] == 0 and v)
    assert before, "a fresh server reports connections nobody made"
    a = await nats_connect(server.url)
    b = await nats_connect(server.url)
    try:
        sub = await b.subscribe(f"mon.{token}")
        await settle(b)
        mid = http_json(server.http_port, "/varz")
        assert mid["connections"] == before["connections"] + 2
        assert mid["subscriptions"] >= before["subscriptions"] + 1
        for _ in range(10):
            await a.publish(f"mon.{token}", b"0123456789")
        await a.flush()
        assert len(await take(sub, 10)) == 10
        after = await poll(lambda: (v := http_json(server.http_port, "/varz"))["out_msgs"] >= mid["out_msgs"] + 10 and v)
        assert after, "out_msgs did not grow"
        assert after["in_msgs"] >= mid["in_msgs"] + 10
        assert after["in_bytes"] >= mid["in_bytes"] + 100
        assert after["out_bytes"] >= mid["out_bytes"] + 100
    finally:
        await a.close()
        await b.close()


async def test_connz_lists_named_connections(server, token):
    nc = await nats_connect(server.url, name=f"connz-{token}")
    try:
        await nc.subscribe(f"cz.{token}.a")
        await nc.subscribe(f"cz.{token}.>")
        await settle(nc)
        connz = http_json(server.http_port, "/connz?subs=1")
        assert connz["num_connections"] >= 1
        assert isinstance(connz["connections"], list)
        mine = [c for c in connz["connections"] if c.get("name") == f"connz-{token}"]
        assert len(mine) == 1, connz["connections"]
        conn = mine[0]
        assert isinstance(conn["cid"], int)
        assert conn["lang"] == "python3"
        assert conn["version"] == "2.16.0"
        assert conn["subscriptions"] == 2
        assert sorted(conn["subscriptions_list"]) == sorted([f"cz.{token}.a", f"cz.{token}.>"])
        for key in ("ip", "port", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "pending_bytes"):
            assert key in conn, key
    finally:
        await nc.close()
    gone = await poll(lambda: not any(c.get("name") == f"connz-{token}"
                                      for c in http_json(server.http_port, "/connz")["connections"]))
    assert gone, "closed connection still listed in /connz"


async def test_subsz_counts_subscriptions(make_server, token):
    server = make_server()
    before = http_json(server.http_port, "/subsz")["num_subscriptions"]
    nc = await nats_connect(server.url)
    try:
        for i in range(5):
            await nc.subscribe(f"ss.{token}.{i}")
        await settle(nc)
        during = http_json(server.http_port, "/subsz")["num_subscriptions"]
        assert during == before + 5
    finally:
        await nc.close()
    after = await poll(lambda: http_json(server.http_port, "/subsz")["num_subscriptions"] == before)
    assert after
