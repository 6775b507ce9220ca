"""Stream subject transforms, republish and persist_mode, side by side with nats-server 2.14:
each scenario runs with nats-py against the reference and against edgebus (each on a fresh
store), the results must be the same, and what the reference did is asserted too, so a change
in either is caught.

Every wait ends on an arrival: a republished copy that must not come (a duplicate's) is
caught by the next copy that must come, which would arrive after it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re

import nats
import pytest
from nats.js.api import KeyValueConfig, RePublish

from test_jetstream_differential import js_pair  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEBUS_SERVER_CMD") == "nats-server",
    reason="the reference compared with itself proves nothing",
)

WAIT = 10.0
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


async def connect(port: int):
    return await nats.connect(f"nats://127.0.0.1:{port}")


async def api(nc, subject: str, body: dict) -> dict:
    r = await nc.request(f"$JS.API.{subject}", json.dumps(body).encode(), timeout=WAIT)
    return json.loads(r.data)


def outcome(reply: dict, *keys: str):
    """The error, or the named config fields (absent ones as None)."""
    if "error" in reply:
        return reply["error"]
    return {k: reply["config"].get(k) for k in keys}


# (src, dest, published subject) -> stored subject, from nats-server 2.14
MAPPINGS = [
    ("foo.*.*", "bar.$2.$1", "foo.a.b", "bar.b.a"),
    ("foo.*.>", "bar.{{wildcard(1)}}.>", "foo.a.b.c", "bar.a.b.c"),
    ("", "all.>", "any.thing", "all.any.thing"),
    ("part.*", "p.{{partition(10,1)}}.$1", "part.hello", "p.3.hello"),
    ("part.*.*", "p.{{partition(5,2,1)}}", "part.ab.cd", "p.0"),
    ("pl.a", "pl.{{partition(3)}}", "pl.a", "pl.1"),
    ("sl.*", "sl.{{splitFromLeft(1,3)}}", "sl.abcdef", "sl.abc.def"),
    ("sr.*", "sr.{{SplitFromRight(1,2)}}", "sr.abcdef", "sr.abcd.ef"),
    ("cl.*", "cl.{{sliceFromLeft(1,2)}}", "cl.abcde", "cl.ab.cd.e"),
    ("cr.*", "cr.{{sliceFromRight(1,2)}}", "cr.abcde", "cr.a.bc.de"),
    ("sp.*", "sp.{{split(1,-)}}", "sp.-a--b-c-", "sp.a.b.c"),
    ("nm.x.*", "other.$1", "nm.y", "nm.y"),  # not matched: stored as published
]


async def mappings(port: int) -> list:
    nc = await connect(port)
    out = []
    for i, (src, dest, subject, _) in enumerate(MAPPINGS):
        name = f"M{i}"
        await api(nc, f"STREAM.CREATE.{name}", {"name": name, "subjects": [subject], "storage": "memory",
                                                "subject_transform": {"src": src, "dest": dest}})
        await nc.request(subject, b"x", timeout=WAIT)
        got = await api(nc, f"STREAM.MSG.GET.{name}", {"seq": 1})
        out.append(got["message"]["subject"])
        await api(nc, f"STREAM.DELETE.{name}", {})
    await nc.close()
    return out


BAD_TRANSFORMS = [
    ("foo..x", "bar"), ("foo.*", "bar.*"), ("foo.>", "bar"), ("foo.*", "bar.$2"), ("foo", "bar.$1"),
    ("foo.*", "bar.{{unknown(1)}}"), ("foo.*", "bar.{{left(1,2)}}"), ("foo.*", "bar.{{wildcard()}}"),
    ("foo.*", "bar.{{wildcard(1,2)}}"), ("foo.*", "bar.{{partition(a,1)}}"), ("foo.*", "bar..x"),
    ("foo.*", "bar.>.x"), ("foo.*", "bar.{{partition(3,2)}}"),
]


async def transform_errors(port: int) -> list:
    nc = await connect(port)
    out = []
    for src, dest in BAD_TRANSFORMS:
        r = await api(nc, "STREAM.CREATE.BT", {"name": "BT", "subjects": ["bt.>"], "storage": "memory",
                                              "subject_transform": {"src": src, "dest": dest}})
        out.append(outcome(r, "subject_transform"))
    await nc.close()
    return out


async def republish(port: int) -> list:
    nc = await connect(port)
    r = await api(nc, "STREAM.CREATE.RP", {"name": "RP", "subjects": ["rp.>"], "storage": "memory",
                                          "republish": {"dest": "out.>"}})
    echoed = r["config"]["republish"]
    copies = await nc.subscribe("out.>")
    hdr = {"Foo": "bar", "Nats-Msg-Id": "m1"}
    await nc.request("rp.a", b"hello", timeout=WAIT)
    await nc.request("rp.b", b"x", timeout=WAIT)
    await nc.request("rp.a", b"again", headers=hdr, timeout=WAIT)
    await nc.request("rp.a", b"again", headers=hdr, timeout=WAIT)  # a duplicate: no copy
    await nc.request("rp.a", b"last", timeout=WAIT)
    got = []
    for seq in range(1, 5):
        m = await copies.next_msg(timeout=WAIT)
        stored = (await api(nc, "STREAM.MSG.GET.RP", {"seq": seq}))["message"]
        headers = dict(m.headers)
        stamp = headers.pop("Nats-Time-Stamp")
        assert RFC3339.match(stamp) and stamp == stored["time"], (stamp, stored["time"])
        got.append([m.subject, m.data.decode(), list(headers.items())])
    await nc.close()
    return [echoed, got]


async def republish_headers_only(port: int) -> list:
    nc = await connect(port)
    await api(nc, "STREAM.CREATE.HO", {"name": "HO", "subjects": ["ho.>"], "storage": "memory",
                                      "subject_transform": {"src": "ho.*", "dest": "ho.t.$1"},
                                      "republish": {"src": "ho.t.*", "dest": "hout.$1", "headers_only": True}})
    copies = await nc.subscribe("hout.>")
    await nc.request("ho.z", b"12345", timeout=WAIT)
    m = await copies.next_msg(timeout=WAIT)
    headers = dict(m.headers)
    headers.pop("Nats-Time-Stamp")
    await nc.close()
    return [m.subject, m.data.decode(), list(headers.items())]


async def republish_config(port: int) -> list:
    nc = await connect(port)
    cases = [
        {"republish": {"src": ">", "dest": "rc.x"}},
        {"republish": {"src": "rc.*", "dest": "o.$2"}},
        {"republish": {"src": ">", "dest": ">"}, "subject_transform": {"src": "rc.*", "dest": "t.$1"}},
        {"republish": {"src": "rc.>", "dest": ""}},
        {"republish": {"src": "zz.>", "dest": "o6.>", "headers_only": False}},
    ]
    out = []
    for extra in cases:
        r = await api(nc, "STREAM.CREATE.RC", {"name": "RC", "subjects": ["rc.*"], "storage": "memory", **extra})
        out.append(outcome(r, "republish"))
        await api(nc, "STREAM.DELETE.RC", {})
    await nc.close()
    return out


async def persist_mode(port: int) -> list:
    nc = await connect(port)
    out = []
    for name, extra in [("PA", {"persist_mode": "async"}), ("PD", {"persist_mode": "default"}),
                        ("PE", {"persist_mode": ""}), ("PM", {"persist_mode": "async", "storage": "memory"})]:
        r = await api(nc, f"STREAM.CREATE.{name}", {"name": name, "subjects": [name.lower()], **extra})
        out.append(outcome(r, "persist_mode", "metadata"))
    for name, extra in [("PA", {}), ("PD", {"persist_mode": "async"})]:
        r = await api(nc, f"STREAM.UPDATE.{name}", {"name": name, "subjects": [name.lower()], **extra})
        out.append(outcome(r, "persist_mode"))
    for name in ("PA", "PD", "PE"):
        await api(nc, f"STREAM.DELETE.{name}", {})
    await nc.close()
    return out


async def kv_republish(port: int) -> list:
    nc = await connect(port)
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket="RPKV", republish=RePublish(src=">", dest="bar.>")))
    copies = await nc.subscribe("bar.>")
    await kv.put("hello.world", b"Hello World!")
    m = await copies.next_msg(timeout=WAIT)
    info = await js.stream_info("KV_RPKV")
    await js.delete_key_value("RPKV")
    await nc.close()
    rp = info.config.republish
    return [m.subject, m.data.decode(), m.headers["Nats-Stream"], m.headers["Nats-Sequence"],
            [rp.src, rp.dest, rp.headers_only]]


NATS_META = {"_nats.level": "4", "_nats.ver": "2.14.0"}
CYCLE = {"code": 500, "err_code": 10052, "description": "stream configuration for republish destination forms a cycle"}


def not_valid(src: str, dest: str) -> dict:
    return {"code": 500, "err_code": 10052,
            "description": f"stream configuration for republish with transform from '{src}' to '{dest}' not valid"}


def bad_dest(text: str) -> dict:
    return {"code": 400, "err_code": 10156, "description": f"stream transform: {text}"}


MD = "invalid mapping destination: "
CHANGE = {"code": 500, "err_code": 10052, "description": "stream configuration update can not change persist mode"}
SCENARIOS = {
    "mappings": (mappings, [m[3] for m in MAPPINGS]),
    "transform errors": (transform_errors, [
        {"code": 400, "err_code": 10155, "description": "stream transform source: invalid subject foo..x"},
        bad_dest("invalid subject"), bad_dest("invalid subject"),
        bad_dest(MD + "wildcard index out of range in $2: [2]"),
        bad_dest(MD + "wildcard index out of range in $1"),
        bad_dest(MD + "unknown function in {{unknown(1)}}"),
        bad_dest(MD + "unknown function in {{left(1,2)}}"),
        bad_dest(MD + "not enough arguments passed to the function in {{wildcard()}}"),
        bad_dest(MD + "too many arguments passed to the function in {{wildcard(1,2)}}"),
        bad_dest(MD + "function argument is invalid or in the wrong format in {{partition(a,1)}}"),
        bad_dest(MD + "invalid transform"),
        bad_dest(MD + "invalid transform in x"),
        bad_dest(MD + "wildcard index out of range in {{partition(3,2)}}: [2]"),
    ]),
    "republish": (republish, [{"src": ">", "dest": "out.>"}, [
        ["out.rp.a", "hello", [("Nats-Stream", "RP"), ("Nats-Subject", "rp.a"), ("Nats-Sequence", "1"),
                               ("Nats-Last-Sequence", "0")]],
        ["out.rp.b", "x", [("Nats-Stream", "RP"), ("Nats-Subject", "rp.b"), ("Nats-Sequence", "2"),
                           ("Nats-Last-Sequence", "0")]],
        ["out.rp.a", "again", [("Foo", "bar"), ("Nats-Msg-Id", "m1"), ("Nats-Stream", "RP"),
                               ("Nats-Subject", "rp.a"), ("Nats-Sequence", "3"), ("Nats-Last-Sequence", "1")]],
        ["out.rp.a", "last", [("Nats-Stream", "RP"), ("Nats-Subject", "rp.a"), ("Nats-Sequence", "4"),
                              ("Nats-Last-Sequence", "3")]],
    ]]),
    "republish headers only, after the stream's transform": (republish_headers_only, [
        "hout.z", "", [("Nats-Stream", "HO"), ("Nats-Subject", "ho.t.z"), ("Nats-Sequence", "1"),
                       ("Nats-Last-Sequence", "0"), ("Nats-Msg-Size", "5")]]),
    "republish config": (republish_config, [
        CYCLE, not_valid("rc.*", "o.$2"), not_valid("t.$1", "t.$1"),
        {"republish": {"src": "rc.>", "dest": ""}}, {"republish": {"src": "zz.>", "dest": "o6.>"}},
    ]),
    "persist_mode": (persist_mode, [
        {"persist_mode": "async", "metadata": {**NATS_META, "_nats.req.level": "2"}},
        {"persist_mode": None, "metadata": {**NATS_META, "_nats.req.level": "0"}},
        {"persist_mode": None, "metadata": {**NATS_META, "_nats.req.level": "0"}},
        {"code": 500, "err_code": 10052, "description": "async persist mode is only supported on file storage"},
        CHANGE, CHANGE,
    ]),
    "KV republish": (kv_republish, [
        "bar.$KV.RPKV.hello.world", "Hello World!", "KV_RPKV", "1", [">", "bar.>", None]]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_transforms_match_nats_server(js_pair, name):
    ours, ref = js_pair
    scenario, expected = SCENARIOS[name]
    want = await asyncio.wait_for(scenario(ref.port), 30)
    assert want == expected, f"nats-server 2.14 did {want!r}"
    got = await asyncio.wait_for(scenario(ours.port), 30)
    assert got == want, f"nats-server sent {want!r}"
