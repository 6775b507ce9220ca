"""Partitioned consumer groups in orbit's static layout, through nats-py and raw `$JS.API`
requests, side by side with nats-server 2.14: the config in the `static-consumer-groups`
bucket, a stream that puts the partition in front of each subject with orbit's transform
(`{{Partition(n,1)}}.…`, orbit's capitalised spelling), each member's pinned pull consumer
(`<group>-<member>`, priority group `PCG`, `pinned_client`, filters from the balanced
spread). What each member receives must be the same on both servers (the partition hash is
nats-server's), and so must the pin rules: the pin id is kept, a wrong one gets 423.
"""

from __future__ import annotations

import asyncio
import json
import os

import nats
import pytest

from test_jetstream_differential import js_pair  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEBUS_SERVER_CMD") == "nats-server",
    reason="the reference compared with itself proves nothing",
)

WAIT = 10.0
# orbit's balanced spread of 4 partitions over members m1, m2 (core/src/pcgroups)
FILTERS = {"m1": ["0.ord.*", "1.ord.*"], "m2": ["2.ord.*", "3.ord.*"]}


async def api(nc, subject: str, body=None) -> dict:
    data = b"" if body is None else json.dumps(body).encode()
    return json.loads((await nc.request(subject, data, timeout=WAIT)).data)


async def pull(nc, consumer: str, **extra) -> list:
    """One no-wait pull in group PCG: the messages (subject, data, whether pinned), then the
    status that ended it."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    body = {"batch": 50, "no_wait": True, "group": "PCG", **extra}
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.ORD.{consumer}", json.dumps(body).encode(), reply=inbox)
    got, pins = [], set()
    while True:
        m = await sub.next_msg(timeout=WAIT)
        h = m.headers or {}
        status = h.get("Status")
        if status:
            got.append(["status", status, h.get("Description", "")])
            break
        pins.add(h.get("Nats-Pin-Id", ""))
        got.append([m.subject, m.data.decode()])
        await m.ack()
    await sub.unsubscribe()
    return got, pins


async def scenario(port: int) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    out = []
    r = await api(nc, "$JS.API.STREAM.CREATE.ORD", {
        "name": "ORD", "subjects": ["ord.*"], "storage": "memory",
        "subject_transform": {"src": "ord.*", "dest": "{{Partition(4,1)}}.ord.{{Wildcard(1)}}"}})
    out.append(r.get("error") or r["config"]["subject_transform"])
    kv = await js.create_key_value(bucket="static-consumer-groups")
    cfg = json.dumps({"max_members": 4, "members": ["m1", "m2"]}).encode()
    await kv.put("ORD.cg", cfg)
    out.append((await kv.get("ORD.cg")).value.decode())
    for i in range(3):
        for k in ["alpha", "beta", "gamma", "delta", "eps", "zeta"]:
            await js.publish(f"ord.{k}", f"{k}{i}".encode())
    for member, filters in FILTERS.items():
        r = await api(nc, f"$JS.API.CONSUMER.CREATE.ORD.cg-{member}", {"stream_name": "ORD", "action": "create", "config": {
            "durable_name": f"cg-{member}", "ack_policy": "explicit", "ack_wait": 5_000_000_000,
            "filter_subjects": filters, "priority_groups": ["PCG"], "priority_policy": "pinned_client",
            "priority_timeout": 5_000_000_000}})
        out.append(r.get("error") or [r["config"]["filter_subjects"], r["config"]["priority_policy"]])
    pins, owner = {}, None
    for member in FILTERS:
        got, pin = await pull(nc, f"cg-{member}")
        out.append(got)
        out.append(len(pin) == 1 and "" not in pin)
        pins[member] = pin.pop()
        if any(g[0].endswith(".ord.alpha") for g in got):
            owner = member
    # the pin is kept: a pull with it is served; one with a wrong id gets 423
    await js.publish("ord.alpha", b"alpha3")
    out.append(owner)
    out.append((await pull(nc, f"cg-{owner}", id="not-the-pin"))[0])
    # nats-server tells its consumers of a stored message on another goroutine: a bare no_wait
    # pull right after the publish ack can find none yet (404 without alpha3: 5 in 300 under
    # load). With `expires` it waits for the message, then ends with the same 404.
    out.append((await pull(nc, f"cg-{owner}", id=pins[owner], expires=int(WAIT * 1e9)))[0])
    await nc.close()
    return out


async def test_static_group_layout_matches_nats_server(js_pair):
    ours, ref = js_pair
    want = await asyncio.wait_for(scenario(ref.port), 60)
    got = await asyncio.wait_for(scenario(ours.port), 60)
    for i, (w, g) in enumerate(zip(want, got)):
        assert g == w, f"step {i}: nats-server gave {w!r}"
    assert len(got) == len(want)
