"""Consumer pause, priority groups, pull limits and direct-get batches, side by side with
nats-server 2.14: each scenario runs with nats-py (raw `$JS.API` requests where nats-py has no
helper) against the reference and against edgebus, what it saw must be the same, and what the
reference did is asserted too, so a change in either is caught.

Values that differ by nature (pin ids, times, nuids) are reduced to their shape (length, set
or not). No step waits for "nothing arrives": every wait ends on a message or a status (a
standby request is shown to wait by the 408 that ends it).
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

WAIT = 10.0  # generous: every wait below ends on an arrival
SEC = 1_000_000_000
FAR = "2099-01-01T00:00:00Z"


def seen(m) -> tuple:
    """A delivery or status as (data, status, description)."""
    h = m.headers or {}
    return (m.data.decode(), h.get("Status"), h.get("Description"))


async def until_status(sub) -> list[tuple]:
    got = []
    while True:
        m = await sub.next_msg(timeout=WAIT)
        got.append(seen(m))
        if got[-1][1]:
            return got


async def api(nc, subject: str, body=None) -> dict:
    payload = b"" if body is None else json.dumps(body).encode()
    return json.loads((await nc.request(subject, payload, timeout=WAIT)).data)


async def pull(nc, stream: str, consumer: str, reply: str, body: dict) -> None:
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", json.dumps(body).encode(), reply=reply)
    await nc.flush()


async def setup(port: int, stream: str, n: int = 0, **cfg):
    """A memory stream `<stream>` on `<stream>.>` with `n` messages m0…, and durable `c`."""
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    low = stream.lower()
    await js.add_stream(name=stream, subjects=[f"{low}.>"], storage="memory")
    for i in range(n):
        await js.publish(f"{low}.a", f"m{i}".encode())
    config = {"durable_name": "c", "ack_policy": "explicit", **cfg}
    r = await api(nc, f"$JS.API.CONSUMER.CREATE.{stream}.c", {"stream_name": stream, "config": config})
    return nc, r


async def pause_and_resume(port: int) -> list:
    nc, _ = await setup(port, "PA", 1)
    adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.PA.c")
    r = await api(nc, "$JS.API.CONSUMER.PAUSE.PA.c", {"pause_until": FAR})
    paused = [r["type"], r["paused"], r["pause_until"], r["pause_remaining"] > 0]
    a = json.loads((await adv.next_msg(timeout=WAIT)).data)
    advisory = [a["type"], a["paused"], a["pause_until"], sorted(a)]
    inbox = await nc.subscribe("_INBOX.p")
    await pull(nc, "PA", "c", "_INBOX.p", {"batch": 1, "expires": SEC // 2})
    held = await until_status(inbox)
    info = await api(nc, "$JS.API.CONSUMER.INFO.PA.c")
    shown = [info["paused"], info["pause_remaining"] > 0, info["config"]["pause_until"],
             info["config"]["metadata"]["_nats.req.level"]]
    r = await api(nc, "$JS.API.CONSUMER.PAUSE.PA.c", {})
    resumed = sorted(r.items())
    a = json.loads((await adv.next_msg(timeout=WAIT)).data)
    await pull(nc, "PA", "c", "_INBOX.p", {"batch": 1, "expires": 5 * SEC})
    work = seen(await inbox.next_msg(timeout=WAIT))
    info = await api(nc, "$JS.API.CONSUMER.INFO.PA.c")
    await nc.close()
    return [paused, advisory, held, shown, resumed, a["paused"], work, "paused" in info,
            "pause_until" in info["config"]]


async def pinned(port: int) -> list:
    nc, r = await setup(port, "PI", 3, priority_groups=["G"], priority_policy="pinned_client")
    created = [r["config"]["priority_policy"], r["config"]["priority_timeout"], r["priority_groups"]]
    adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.*.PI.c")
    other = await nats.connect(f"nats://127.0.0.1:{port}")
    a, b = await nc.subscribe("_INBOX.a"), await other.subscribe("_INBOX.b")
    await pull(nc, "PI", "c", "_INBOX.a", {"batch": 1, "group": "G"})
    m = await a.next_msg(timeout=WAIT)
    pin = m.headers["Nats-Pin-Id"]
    first = [m.data.decode(), len(pin)]
    await pull(other, "PI", "c", "_INBOX.b", {"batch": 1, "group": "G", "expires": SEC // 2})
    standby = await until_status(b)
    await pull(other, "PI", "c", "_INBOX.b", {"batch": 1, "group": "G", "id": "bogus"})
    wrong = await until_status(b)
    await pull(nc, "PI", "c", "_INBOX.a", {"batch": 1, "group": "G", "id": pin})
    m = await a.next_msg(timeout=WAIT)
    again = [m.data.decode(), m.headers["Nats-Pin-Id"] == pin]
    info = await api(nc, "$JS.API.CONSUMER.INFO.PI.c")
    group = info["priority_groups"][0]
    state = [group["group"], group["pinned_client_id"] == pin, sorted(group)]
    bad_unpin = await api(nc, "$JS.API.CONSUMER.UNPIN.PI.c", {"group": "X"})
    unpinned = await api(nc, "$JS.API.CONSUMER.UNPIN.PI.c", {"group": "G"})
    await pull(other, "PI", "c", "_INBOX.b", {"batch": 1, "group": "G", "expires": 5 * SEC})
    m = await b.next_msg(timeout=WAIT)
    moved = [m.data.decode(), m.headers["Nats-Pin-Id"] != pin]
    await pull(nc, "PI", "c", "_INBOX.a", {"batch": 1, "group": "G", "id": pin})
    old = await until_status(a)
    advisories = []
    for _ in range(3):
        e = json.loads((await adv.next_msg(timeout=WAIT)).data)
        advisories.append([e["type"], e.get("reason"), sorted(k for k in e if k != "account")])
    await other.close()
    await nc.close()
    return [created, first, standby, wrong, again, state, bad_unpin, unpinned, moved, old, advisories]


async def request_checks(port: int) -> list:
    out = []
    for policy, bodies in [
        ("pinned_client", [{"batch": 1}, {"group": "H"}, {"group": "G", "min_pending": 1},
                           {"group": "G", "priority": 10}, {"group": "G", "priority": -1}]),
        ("overflow", [{"group": "G", "id": "x"}, {"group": "G", "min_ack_pending": -1}]),
        ("none", [{"group": "G", "min_pending": 3}, {"id": "x"}]),
    ]:
        stream = f"RC{len(out)}"
        cfg = {} if policy == "none" else {"priority_groups": ["G"], "priority_policy": policy}
        nc, _ = await setup(port, stream, 0, **cfg)
        for body in bodies:
            # One inbox per request: nats-server 2.14 answers "Not a Overflow/Pinned Client
            # Priority consumer" with a 400 but keeps the request waiting, and 408s it at
            # `expires`; on a shared inbox that late 408 was read as the next request's answer
            # whenever the next answer took longer (a loaded machine, twice in 20 runs).
            inbox = await nc.subscribe(nc.new_inbox())
            await pull(nc, stream, "c", inbox.subject, {"expires": SEC // 2, **body})
            out.append(await until_status(inbox))
            await inbox.unsubscribe()
        await nc.close()
    return out


async def config_checks(port: int) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    await js.add_stream(name="CC", subjects=["cc.>"], storage="memory")
    out = []
    for i, extra in enumerate([
        {"priority_policy": "overflow"},
        {"priority_groups": ["G"]},
        {"priority_timeout": SEC},
        {"priority_policy": "overflow", "priority_groups": ["a.b"]},
        {"priority_policy": "overflow", "priority_groups": ["0123456789abcdefg"]},
        {"priority_policy": "overflow", "priority_groups": [""]},
        {"priority_policy": "overflow", "priority_groups": ["G"], "deliver_subject": "x"},
        {"priority_policy": "prioritized", "priority_groups": ["a-b_c/d=e"], "priority_timeout": SEC},
        {"pause_until": "not a time"},
    ]):
        config = {"durable_name": f"c{i}", "ack_policy": "explicit", **extra}
        r = await api(nc, f"$JS.API.CONSUMER.CREATE.CC.c{i}", {"stream_name": "CC", "config": config})
        e = r.get("error")
        out.append([e["code"], e["err_code"]] if e else sorted(r["config"]))
    await nc.close()
    return out


async def overflow_and_prioritized(port: int) -> list:
    nc, _ = await setup(port, "OV", 3, priority_groups=["G"], priority_policy="overflow")
    inbox = await nc.subscribe("_INBOX.o")
    await pull(nc, "OV", "c", "_INBOX.o", {"batch": 1, "group": "G", "min_pending": 5, "expires": SEC // 2})
    waited = await until_status(inbox)
    await pull(nc, "OV", "c", "_INBOX.o", {"batch": 1, "group": "G", "min_pending": 3, "expires": 5 * SEC})
    served = seen(await inbox.next_msg(timeout=WAIT))
    await pull(nc, "OV", "c", "_INBOX.o", {"batch": 1, "group": "G", "min_ack_pending": 1, "expires": 5 * SEC})
    by_acks = seen(await inbox.next_msg(timeout=WAIT))
    await nc.close()

    nc, _ = await setup(port, "PR", 0, priority_groups=["G"], priority_policy="prioritized")
    js = nc.jetstream()
    low, high = await nc.subscribe("_INBOX.low"), await nc.subscribe("_INBOX.high")
    await pull(nc, "PR", "c", "_INBOX.low", {"batch": 1, "group": "G", "priority": 5, "expires": 5 * SEC})
    await pull(nc, "PR", "c", "_INBOX.high", {"batch": 1, "group": "G", "priority": 1, "expires": 5 * SEC})
    await js.publish("pr.a", b"first")
    to_high = seen(await high.next_msg(timeout=WAIT))
    await js.publish("pr.a", b"second")
    to_low = seen(await low.next_msg(timeout=WAIT))
    await nc.close()
    return [waited, served, by_acks, to_high, to_low]


async def pull_limits(port: int) -> list:
    nc, _ = await setup(port, "PL", 0, max_batch=2, max_expires=SEC, max_bytes=100)
    js = nc.jetstream()
    inbox = await nc.subscribe("_INBOX.l")
    out = []
    for body in [{"batch": 3, "expires": SEC // 2}, {"batch": 1, "expires": 2 * SEC},
                 {"batch": 1, "expires": SEC // 2, "max_bytes": 101}]:
        await pull(nc, "PL", "c", "_INBOX.l", body)
        out.append(await until_status(inbox))
    # a request without expires under max_expires: refused, or served by the next message
    await pull(nc, "PL", "c", "_INBOX.l", {"batch": 1})
    await js.publish("pl.a", b"marker")
    out.append(seen(await inbox.next_msg(timeout=WAIT)))
    await nc.close()
    return out


async def direct_batches(port: int) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    await js.add_stream(name="DB", subjects=["db.>"], storage="memory", allow_direct=True)
    for subj in ["a", "b", "a", "c", "b"]:
        await js.publish(f"db.{subj}", subj.encode())
    out = []
    for body in [{"seq": 2, "batch": 3}, {"seq": 1, "batch": 10, "next_by_subj": "db.b"},
                 {"multi_last": ["db.a", "db.b"]}, {"multi_last": ["db.>"], "up_to_seq": 3},
                 {"multi_last": ["db.>"], "batch": 1}, {"seq": 1, "batch": 2, "max_bytes": 10},
                 {"seq": 1, "batch": 2, "no_hdr": True}]:
        inbox = await nc.subscribe(nc.new_inbox())
        await nc.publish("$JS.API.DIRECT.GET.DB", json.dumps(body).encode(), reply=inbox.subject)
        got = []
        while True:
            m = await inbox.next_msg(timeout=WAIT)
            h = {getattr(k, "value", k): v for k, v in (m.headers or {}).items() if k != "Nats-Time-Stamp"}
            got.append([m.data.decode(), sorted(h.items())])
            if "Status" in h:
                break
        await inbox.unsubscribe()
        out.append(got)
    await nc.close()
    return out


# what nats-server 2.14 did in each scenario
PAUSE = [['io.nats.jetstream.api.v1.consumer_pause_response', True, '2099-01-01T00:00:00Z', True],
 ['io.nats.jetstream.advisory.v1.consumer_pause',
  True,
  '2099-01-01T00:00:00Z',
  ['consumer', 'id', 'pause_until', 'paused', 'stream', 'timestamp', 'type']],
 [('', '408', 'Request Timeout')],
 [True, True, '2099-01-01T00:00:00Z', '1'],
 [('pause_until', '0001-01-01T00:00:00Z'), ('paused', False), ('type', 'io.nats.jetstream.api.v1.consumer_pause_response')],
 False,
 ('m0', None, None),
 False,
 False]
PINNED = [['pinned_client', 120000000000, [{'group': 'G', 'pinned_ts': '0001-01-01T00:00:00Z'}]],
 ['m0', 22],
 [('', '408', 'Request Timeout')],
 [('', '423', 'Nats-Pin-Id mismatch')],
 ['m1', True],
 ['G', True, ['group', 'pinned_client_id', 'pinned_ts']],
 {'error': {'code': 400, 'description': 'Provided priority group does not exist for this consumer', 'err_code': 10160},
  'type': 'io.nats.jetstream.api.v1.consumer_unpin_response'},
 {'type': 'io.nats.jetstream.api.v1.consumer_unpin_response'},
 ['m2', True],
 [('', '423', 'Nats-Pin-Id mismatch')],
 [['io.nats.jetstream.advisory.v1.consumer_group_pinned', None, ['consumer', 'group', 'id', 'pinned_id', 'stream', 'timestamp', 'type']],
  ['io.nats.jetstream.advisory.v1.consumer_group_unpinned', 'admin', ['consumer', 'group', 'id', 'reason', 'stream', 'timestamp', 'type']],
  ['io.nats.jetstream.advisory.v1.consumer_group_pinned', None, ['consumer', 'group', 'id', 'pinned_id', 'stream', 'timestamp', 'type']]]]
REQUEST_CHECKS = [[('', '400', 'Bad Request - Priority Group missing')],
 [('', '400', 'Bad Request - Invalid Priority Group')],
 [('', '400', 'Bad Request - Not a Overflow Priority consumer')],
 [('', '400', 'Bad Request - Priority must be between 0 and 9')],
 [('', '400', 'Bad Request - Priority must be between 0 and 9')],
 [('', '400', 'Bad Request - Not a Pinned Client Priority consumer')],
 [('', '408', 'Request Timeout')],
 [('', '400', 'Bad Request - Not a Overflow Priority consumer')],
 [('', '400', 'Bad Request - Not a Pinned Client Priority consumer')]]
CONFIG_CHECKS = [[400, 10159],
 [400, 10196],
 [400, 10197],
 [400, 10162],
 [400, 10162],
 [400, 10161],
 [400, 10178],
 ['ack_policy',
  'ack_wait',
  'deliver_policy',
  'durable_name',
  'max_ack_pending',
  'max_deliver',
  'max_waiting',
  'metadata',
  'name',
  'num_replicas',
  'priority_groups',
  'priority_policy',
  'priority_timeout',
  'replay_policy'],
 [400, 10025]]
OVERFLOW = [[('', '408', 'Request Timeout')], ('m0', None, None), ('m1', None, None), ('first', None, None), ('second', None, None)]
PULL_LIMITS = [[('', '409', 'Exceeded MaxRequestBatch of 2')],
 [('', '409', 'Exceeded MaxRequestExpires of 1s')],
 [('', '409', 'Exceeded MaxRequestMaxBytes of 100')],
 ('marker', None, None)]

SCENARIOS = {
    "pause and resume": (pause_and_resume, PAUSE),
    "pinned client": (pinned, PINNED),
    "priority request checks": (request_checks, REQUEST_CHECKS),
    "priority config checks": (config_checks, CONFIG_CHECKS),
    "overflow and prioritized": (overflow_and_prioritized, OVERFLOW),
    "pull limits": (pull_limits, PULL_LIMITS),
    "direct get batches": (direct_batches, None),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_consumer_controls_match_nats_server(js_pair, name):
    ours, ref = js_pair
    scenario, expected = SCENARIOS[name]
    want = await asyncio.wait_for(scenario(ref.port), 60)
    if expected is not None:
        assert want == expected, f"nats-server 2.14 did {want!r}"
    got = await asyncio.wait_for(scenario(ours.port), 60)
    assert got == want, f"nats-server sent {want!r}"


async def paused_before_restart(port: int) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    await js.add_stream(name="PR2", subjects=["pr2.>"], storage="file")
    await js.publish("pr2.a", b"kept")
    config = {"durable_name": "c", "ack_policy": "explicit", "pause_until": FAR}
    r = await api(nc, "$JS.API.CONSUMER.CREATE.PR2.c", {"stream_name": "PR2", "config": config})
    await nc.close()
    return [r["paused"], r["config"]["pause_until"]]


async def paused_after_restart(port: int) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    info = await api(nc, "$JS.API.CONSUMER.INFO.PR2.c")
    still = [info["paused"], info["pause_remaining"] > 0, info["config"]["pause_until"]]
    inbox = await nc.subscribe("_INBOX.r")
    await pull(nc, "PR2", "c", "_INBOX.r", {"batch": 1, "expires": SEC // 2})
    held = await until_status(inbox)
    await api(nc, "$JS.API.CONSUMER.PAUSE.PR2.c", {})
    await pull(nc, "PR2", "c", "_INBOX.r", {"batch": 1, "expires": 5 * SEC})
    work = seen(await inbox.next_msg(timeout=WAIT))
    await nc.close()
    return [still, held, work]


async def test_a_pause_survives_a_restart(js_pair):
    want, got = [], []
    for server, out in zip(reversed(js_pair), (want, got)):
        out.append(await asyncio.wait_for(paused_before_restart(server.port), 30))
        server.stop()
        server.restart()
        out.append(await asyncio.wait_for(paused_after_restart(server.port), 30))
    assert want == [[True, FAR], [[True, True, FAR], [("", "408", "Request Timeout")], ("kept", None, None)]], want
    assert got == want
