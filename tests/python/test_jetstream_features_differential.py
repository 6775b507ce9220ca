"""Counters, atomic batches and message schedules, side by side with nats-server 2.14: each
scenario runs with nats-py (raw `$JS.API` requests and headers, nats-py has no helpers for
these) against the reference and against edgebus, each on a fresh store; what they answer
must be the same, and what the reference did is asserted too, so a change in either is
caught. Times are masked; waits end on an arrival (a scheduled message is awaited through a
pull request that ends when it comes), never on "nothing arrives".
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
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


async def api(nc, subject: str, body=None) -> dict:
    data = b"" if body is None else json.dumps(body).encode()
    return json.loads((await nc.request(subject, data, timeout=WAIT)).data)


def err(reply: dict):
    """An error reply reduced to what clients match on, a stream reply to its config (no
    times); anything else as it is."""
    if "error" in reply:
        e = reply["error"]
        return [e["code"], e["err_code"], e["description"]]
    if "config" in reply:
        return reply["config"]
    return reply


async def pub(nc, subject: str, data: bytes = b"", headers=None):
    msg = await nc.request(subject, data, headers=headers, timeout=WAIT)
    return err(json.loads(msg.data)) if msg.data else ""


async def stream(nc, name: str, **cfg) -> None:
    c = {"name": name, "subjects": [f"{name.lower()}.>"], "storage": "memory"}
    c.update(cfg)
    reply = await api(nc, f"$JS.API.STREAM.CREATE.{name}", c)
    assert "error" not in reply, reply


async def last(nc, stream_name: str, subject: str):
    r = await api(nc, f"$JS.API.STREAM.MSG.GET.{stream_name}", {"last_by_subj": subject})
    if "error" in r:
        return err(r)
    m = r["message"]
    hdrs = base64.b64decode(m.get("hdrs", "")).decode()
    return [m["seq"], hdrs.split("\r\n")[1:-2], base64.b64decode(m.get("data", "")).decode()]


async def state(nc, name: str) -> list:
    s = (await api(nc, f"$JS.API.STREAM.INFO.{name}"))["state"]
    return [s["messages"], s["first_seq"], s["last_seq"]]


async def connect(port: int):
    return await nats.connect(f"nats://127.0.0.1:{port}")


async def counters(port: int) -> list:
    nc = await connect(port)
    out = []
    await stream(nc, "CNT", allow_msg_counter=True)
    for inc in ["+5", "3", "-10", "+123456789012345678901234567890", "-123456789012345678901234567891", "007"]:
        out.append(await pub(nc, "cnt.a", headers={"Nats-Incr": inc}))
    out.append(await pub(nc, "cnt.b", headers={"Nats-Incr": "-1"}))
    out.append(await last(nc, "CNT", "cnt.a"))
    # the refusals: no increment, not an integer, a payload, a clashing expectation
    out.append(await pub(nc, "cnt.a", b"plain"))
    out.append(await pub(nc, "cnt.a"))
    for bad in ["abc", "1.5", "+", "1e3", " "]:
        out.append(await pub(nc, "cnt.a", headers={"Nats-Incr": bad}))
    out.append(await pub(nc, "cnt.a", b"x", headers={"Nats-Incr": "1"}))
    out.append(await pub(nc, "cnt.a", headers={"Nats-Incr": "1", "Nats-Expected-Last-Sequence": "8"}))
    out.append(await pub(nc, "cnt.a", headers={"Nats-Incr": "1", "Nats-Msg-Id": "m1"}))
    out.append(await pub(nc, "cnt.a", headers={"Nats-Incr": "1", "Nats-Msg-Id": "m1"}))
    await stream(nc, "PLAIN")
    out.append(await pub(nc, "plain.a", headers={"Nats-Incr": "1"}))
    out.append(await pub(nc, "plain.a", headers={"Nats-Incr": "x"}))
    # config rules
    for cfg in [{"discard": "new"}, {"allow_msg_ttl": True}, {"retention": "workqueue"}, {"allow_msg_schedules": True}]:
        c = {"name": "CBAD", "subjects": ["cbad"], "storage": "memory", "allow_msg_counter": True, **cfg}
        out.append(err(await api(nc, "$JS.API.STREAM.CREATE.CBAD", c)))
    c = {"name": "PLAIN", "subjects": ["plain.>"], "storage": "memory", "allow_msg_counter": True}
    out.append(err(await api(nc, "$JS.API.STREAM.UPDATE.PLAIN", c)))
    info = await api(nc, "$JS.API.STREAM.INFO.CNT")
    out.append([info["config"].get("allow_msg_counter"), info["config"]["metadata"].get("_nats.req.level")])
    await nc.close()
    return out


def bh(bid, seq, commit=None, **extra):
    h = {"Nats-Batch-Id": bid, "Nats-Batch-Sequence": str(seq)}
    if commit:
        h["Nats-Batch-Commit"] = commit
    h.update(extra)
    return h


async def batches(port: int) -> list:
    nc = await connect(port)
    out = []
    await stream(nc, "AT", allow_atomic=True)
    out.append(await pub(nc, "at.a", b"1", bh("A", 1)))
    await nc.publish("at.b", b"2", headers=bh("A", 2))  # no reply: no answer
    out.append(await state(nc, "AT"))
    out.append(await pub(nc, "at.c", b"3", bh("A", 3, "1")))
    out.append(await state(nc, "AT"))
    out.append(await last(nc, "AT", "at.c"))
    # end-of-batch commit: the marker is not stored, the last message is stamped
    out.append(await pub(nc, "at.d", b"4", bh("B", 1)))
    out.append(await pub(nc, "at.e", b"5", bh("B", 2)))
    out.append(await pub(nc, "at.x", b"eob", bh("B", 3, "eob")))
    out.append(await last(nc, "AT", "at.e"))
    out.append(await pub(nc, "at.x", b"eob", bh("C", 1, "eob")))
    # refusals, each leaving nothing
    out.append(await pub(nc, "at.a", b"1", bh("G", 1)))
    out.append(await pub(nc, "at.a", b"3", bh("G", 3, "1")))
    out.append(await pub(nc, "at.a", b"3", bh("G", 2, "1")))
    out.append(await pub(nc, "at.a", b"x", bh("orphan", 2, "1")))
    out.append(await pub(nc, "at.a", b"1", bh("badc", 1)))
    out.append(await pub(nc, "at.a", b"2", bh("badc", 2, "yes")))
    out.append(await pub(nc, "at.a", b"x", bh("L" * 65, 1, "1")))
    out.append(await pub(nc, "at.a", b"x", {"Nats-Batch-Id": "noseq"}))
    out.append(await pub(nc, "at.a", b"x", {"Nats-Batch-Id": "badseq", "Nats-Batch-Sequence": "x"}))
    out.append(await pub(nc, "at.a", b"1", bh("D", 1, **{"Nats-Msg-Id": "same"})))
    out.append(await pub(nc, "at.a", b"2", bh("D", 2, "1", **{"Nats-Msg-Id": "same"})))
    out.append(await pub(nc, "at.a", b"1", bh("I", 1, **{"Nats-Expected-Last-Msg-Id": "x"})))
    out.append(await pub(nc, "at.a", b"2", bh("I", 2, "1")))
    out.append(await pub(nc, "at.a", b"1", bh("S", 1, **{"Nats-Expected-Last-Sequence": "1"})))
    out.append(await pub(nc, "at.a", b"2", bh("S", 2, "1")))
    out.append(await pub(nc, "at.a", b"1", bh("T", 1)))
    out.append(await pub(nc, "at.a", b"2", bh("T", 2, "1", **{"Nats-Expected-Last-Subject-Sequence": "1"})))
    out.append(await state(nc, "AT"))
    # expectations that hold
    out.append(await pub(nc, "at.a", b"1", bh("OK", 1, **{"Nats-Expected-Last-Sequence": "5"})))
    out.append(await pub(nc, "at.n", b"2", bh("OK", 2, "1", **{"Nats-Expected-Last-Subject-Sequence": "0"})))
    out.append(await state(nc, "AT"))
    # too large: 1,000 messages is the most
    for i in range(1, 1001):
        await nc.publish("at.big", b"x", headers=bh("BIG", i))
    out.append(await pub(nc, "at.big", b"x", bh("BIG", 1001, "1")))
    out.append(await state(nc, "AT"))
    await stream(nc, "NOAT")
    out.append(await pub(nc, "noat.a", b"x", bh("N", 1, "1")))
    out.append(await pub(nc, "noat.a", b"x", bh("N", 1)))
    out.append(await state(nc, "NOAT"))
    info = await api(nc, "$JS.API.STREAM.INFO.AT")
    out.append([info["config"].get("allow_atomic"), info["config"]["metadata"].get("_nats.req.level")])
    await nc.close()
    return out


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


async def next_on(nc, stream_name: str, consumer: str) -> list:
    """The next message of a pull consumer (waiting for it), headers without volatile ones."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream_name}.{consumer}",
                     json.dumps({"batch": 1, "expires": int(WAIT * 1e9)}).encode(), reply=inbox)
    m = await sub.next_msg(timeout=WAIT + 1)
    await sub.unsubscribe()
    h = dict(m.headers or {})
    if "Nats-Schedule-Next" in h and h["Nats-Schedule-Next"] != "purge":
        h["Nats-Schedule-Next"] = "<time>"
    await m.ack()
    return [m.subject, sorted(h.items()), m.data.decode()]


def stored(ack):
    """A pub ack with its sequence replaced by whether it had one (errors as they are)."""
    if isinstance(ack, dict) and "seq" in ack:
        return {**ack, "seq": ack["seq"] > 0}
    return ack


async def schedules(port: int) -> list:
    nc = await connect(port)
    out = []
    await stream(nc, "SC", allow_msg_schedules=True)
    info = await api(nc, "$JS.API.STREAM.INFO.SC")
    c = info["config"]
    out.append([c.get("allow_msg_schedules"), c.get("allow_rollup_hdrs"), c["metadata"].get("_nats.req.level")])
    for pattern in ["@at 2020-01-01", "@every 100ms", "@every x", "bogus", "* * * * *", "61 * * * * *", "@at"]:
        out.append(await pub(nc, "sc.s", b"", {"Nats-Schedule": pattern, "Nats-Schedule-Target": "sc.t"}))
    for target in [None, "sc.s", "elsewhere", "sc.*"]:
        h = {"Nats-Schedule": "@every 1m"}
        if target:
            h["Nats-Schedule-Target"] = target
        out.append(await pub(nc, "sc.s", b"", h))
    out.append(await pub(nc, "sc.s", b"", {"Nats-Schedule": "@every 1m", "Nats-Schedule-Target": "sc.t",
                                           "Nats-Schedule-TTL": "5s"}))
    out.append(await pub(nc, "sc.s", b"", {"Nats-Schedule": "@every 1m", "Nats-Schedule-Target": "sc.t",
                                           "Nats-Schedule-TTL": "bad"}))
    out.append(await pub(nc, "sc.s", b"", {"Nats-Schedule": "@every 1m", "Nats-Schedule-Target": "sc.t",
                                           "Nats-Schedule-Rollup": "all"}))
    out.append(await pub(nc, "sc.s", b"", {"Nats-Schedule": "@every 1m", "Nats-Schedule-Target": "sc.t",
                                           "Nats-Rollup": "all"}))
    out.append(await pub(nc, "sc.s", b"", {"Nats-Schedule": "0 0 * * * *", "Nats-Schedule-Target": "sc.t",
                                           "Nats-Schedule-Time-Zone": ""}))
    out.append(await pub(nc, "sc.s", b"", {"Nats-Schedule": "@every 1m", "Nats-Schedule-Target": "sc.t",
                                           "Nats-Schedule-Source": "sc.s"}))
    out.append(await pub(nc, "sc.x", b"", {"Nats-Scheduler": "sc.s"}))
    out.append(await pub(nc, "sc.x", b"", {"Nats-Schedule-Next": "later", "Nats-Scheduler": "sc.s"}))
    out.append(await state(nc, "SC"))
    # a past @at fires at once, on the target, and the schedule goes
    await api(nc, "$JS.API.CONSUMER.CREATE.SC.T", {"stream_name": "SC", "config": {
        "durable_name": "T", "ack_policy": "explicit", "filter_subject": "sc.t"}})
    past = rfc3339(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
    out.append(await pub(nc, "sc.once", b"body", {"Nats-Schedule": "@at " + past, "Nats-Schedule-Target": "sc.t",
                                                  "X-Keep": "me", "Nats-Msg-Id": "drop"}))
    out.append(await next_on(nc, "SC", "T"))
    out.append(await last(nc, "SC", "sc.once"))
    # @every repeats; a second schedule on the subject replaces the first (rollup)
    out.append(await pub(nc, "sc.rep", b"tick", {"Nats-Schedule": "@every 1s", "Nats-Schedule-Target": "sc.t"}))
    out.append(await next_on(nc, "SC", "T"))
    out.append(await next_on(nc, "SC", "T"))
    # cancelled by a client: Nats-Schedule-Next: purge with Nats-Scheduler. Its sequence (and
    # the cron's below) counts the ticks fired by then: a third if the cancel came later than
    # a second after the last one (a stalled machine), so only that it was stored is compared.
    out.append(stored(await pub(nc, "sc.cancel", b"", {"Nats-Schedule-Next": "purge", "Nats-Scheduler": "sc.rep"})))
    out.append(await last(nc, "SC", "sc.rep"))
    # cron, every second, on a target of its own: a tick of `sc.rep` fired before its cancel
    # landed (a second after the last, so only on a stalled machine) stays on `sc.t`
    await api(nc, "$JS.API.CONSUMER.CREATE.SC.C", {"stream_name": "SC", "config": {
        "durable_name": "C", "ack_policy": "explicit", "filter_subject": "sc.c"}})
    out.append(stored(await pub(nc, "sc.cron", b"cron", {"Nats-Schedule": "* * * * * *", "Nats-Schedule-Target": "sc.c"})))
    got = await next_on(nc, "SC", "C")
    out.append(got)
    await api(nc, "$JS.API.STREAM.PURGE.SC", {"filter": "sc.cron"})
    await stream(nc, "NOSC")
    out.append(await pub(nc, "nosc.a", b"", {"Nats-Schedule": "@every 1m", "Nats-Schedule-Target": "nosc.b"}))
    out.append(await pub(nc, "nosc.a", b"", {"Nats-Schedule": "bogus", "Nats-Schedule-Target": "nosc.b"}))
    c = {"name": "SC", "subjects": ["sc.>"], "storage": "memory"}
    out.append(err(await api(nc, "$JS.API.STREAM.UPDATE.SC", c)))
    c = {"name": "SBAD", "subjects": ["sbad"], "storage": "memory", "allow_msg_schedules": True, "discard": "new"}
    out.append(err(await api(nc, "$JS.API.STREAM.CREATE.SBAD", c)))
    await nc.close()
    return out


async def batch_transforms(port: int) -> list:
    """A committed batch goes through the stream's subject_transform and republish like any
    publish: stored under the mapped subject, checked against it, copied after the commit."""
    nc = await connect(port)
    out = []
    await stream(nc, "BT", subjects=["bt.*"], allow_atomic=True,
                 subject_transform={"src": "bt.*", "dest": "bm.{{wildcard(1)}}"},
                 republish={"src": "bm.>", "dest": "rp.>"})
    copies = []
    sub = await nc.subscribe("rp.>")
    out.append(await pub(nc, "bt.a", b"1", bh("X", 1)))
    out.append(await pub(nc, "bt.b", b"2", bh("X", 2, "1", **{"Nats-Expected-Last-Subject-Sequence": "0"})))
    await pub(nc, "bt.a", b"3", bh("Y", 1))
    out.append(await pub(nc, "bt.x", b"", bh("Y", 2, "eob")))
    for _ in range(3):
        m = await sub.next_msg(timeout=WAIT)
        h = {k: v for k, v in (m.headers or {}).items() if k != "Nats-Time-Stamp"}
        copies.append([m.subject, sorted(h.items()), m.data.decode()])
    out.append(copies)
    out.append([await last(nc, "BT", s) for s in ("bm.a", "bm.b")])
    await nc.close()
    return out


SCENARIOS = {"counters": counters, "atomic batches": batches, "schedules": schedules,
             "batch transforms": batch_transforms}


async def same_as_nats_server(js_pair, scenario, name: str) -> None:
    """Runs `scenario` (a port → list of observations) on nats-server, then on edgebus, and
    compares step by step."""
    ours, ref = js_pair
    want = await asyncio.wait_for(scenario(ref.port), 60)
    got = await asyncio.wait_for(scenario(ours.port), 60)
    for i, (w, g) in enumerate(zip(want, got)):
        assert g == w, f"{name} step {i}: nats-server gave {w!r}"
    assert len(got) == len(want)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_stream_features_match_nats_server(js_pair, name):
    await same_as_nats_server(js_pair, SCENARIOS[name], name)


async def before_restart(port: int) -> list:
    nc = await connect(port)
    await stream(nc, "RS", storage="file", allow_msg_schedules=True, allow_atomic=True)
    await api(nc, "$JS.API.CONSUMER.CREATE.RS.T", {"stream_name": "RS", "config": {
        "durable_name": "T", "ack_policy": "explicit", "filter_subject": "rs.t"}})
    at = rfc3339(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3))
    out = [await pub(nc, "rs.once", b"after restart", {"Nats-Schedule": "@at " + at, "Nats-Schedule-Target": "rs.t"}),
           await pub(nc, "rs.b", b"1", bh("open", 1))]
    await nc.close()
    return out


async def after_restart(port: int) -> list:
    nc = await connect(port)
    out = [await next_on(nc, "RS", "T"), await last(nc, "RS", "rs.once"),
           await pub(nc, "rs.b", b"2", bh("open", 2, "1")), await state(nc, "RS")]
    await nc.close()
    return out


async def restarted(server) -> list:
    first = await before_restart(server.port)
    server.stop()
    server.start()
    return first + await after_restart(server.port)


async def test_a_schedule_survives_a_restart_and_an_open_batch_does_not(tmp_path):
    from conftest import NATS_SERVER_BIN, Server

    ref = Server(tmp_path / "ref", jetstream=True,
                 template=NATS_SERVER_BIN + " -a 127.0.0.1 -p {port} -m {http_port} -c {config} -js -sd {store_dir}")
    ours = Server(tmp_path / "ours", jetstream=True)
    results = []
    for server in (ref.start(), ours.start()):
        try:
            results.append(await asyncio.wait_for(restarted(server), 60))
        finally:
            server.stop()
    want, got = results
    assert want[0] == {"stream": "RS", "seq": 1} and want[1] == "", want
    assert want[2][0] == "rs.t" and want[2][2] == "after restart", want
    assert want[4] == [400, 10176, "atomic publish batch is incomplete"], want
    assert got == want, f"nats-server gave {want!r}"
