"""Stream mirrors and sources (and counters added up through sources), side by side with
nats-server 2.14: each scenario runs with nats-py (raw `$JS.API` requests, nats-py has no
helpers for most of this) against the reference and then against edgebus, each on a fresh
store, and what they answer must be the same. Times and `active` durations are masked. A wait
for copied messages ends when they arrive (the copy's last sequence reaches the one awaited).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re

import nats
import pytest

from conftest import NATS_SERVER_BIN, Server

pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEBUS_SERVER_CMD") == "nats-server",
    reason="the reference compared with itself proves nothing",
)

WAIT = 10.0
REF_TEMPLATE = NATS_SERVER_BIN + " -a 127.0.0.1 -p {port} -m {http_port} -c {config} -js -sd {store_dir}"


async def api(nc, subject: str, body=None) -> dict:
    data = b"" if body is None else json.dumps(body).encode()
    return json.loads((await nc.request(subject, data, timeout=WAIT)).data)


def err(reply: dict):
    if "error" in reply:
        e = reply["error"]
        return [e["code"], e["err_code"], e["description"]]
    return reply


def masked(section):
    """A `mirror` / `sources` entry with `active` reduced to seen (>= 0) or not (-1); sources
    in a fixed order (nats-server lists them in its map's order, which varies)."""
    if isinstance(section, list):
        return sorted((masked(s) for s in section), key=lambda s: json.dumps(s, sort_keys=True))
    if section is None:
        return None
    s = dict(section)
    s["active"] = "seen" if s["active"] >= 0 else -1
    return s


async def create(nc, cfg: dict):
    r = await api(nc, f"$JS.API.STREAM.CREATE.{cfg['name']}", cfg)
    if "error" in r:
        return err(r)
    return [r["config"], masked(r.get("mirror")), masked(r.get("sources"))]


async def pub(nc, subject: str, data: bytes = b"", headers=None):
    msg = await nc.request(subject, data, headers=headers, timeout=WAIT)
    return err(json.loads(msg.data))


async def info(nc, name: str) -> dict:
    return await api(nc, f"$JS.API.STREAM.INFO.{name}")


async def arrived(nc, name: str, last_seq: int) -> None:
    """Waits until stream `name` holds sequence `last_seq` (copies arrive on their own)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        s = (await info(nc, name))["state"]
        if s["last_seq"] >= last_seq:
            return
        assert loop.time() < deadline, f"{name} stopped at {s}"
        await asyncio.sleep(0.02)


async def contents(nc, name: str) -> list:
    """[seq, subject, header lines, data] of every sequence up to the last (or the error)."""
    out = []
    for seq in range(1, (await info(nc, name))["state"]["last_seq"] + 1):
        r = await api(nc, f"$JS.API.STREAM.MSG.GET.{name}", {"seq": seq})
        if "error" in r:
            out.append([seq, err(r)])
            continue
        m = r["message"]
        hdrs = base64.b64decode(m.get("hdrs", "")).decode()
        out.append([m["seq"], m["subject"], hdrs.split("\r\n")[1:-2], base64.b64decode(m.get("data", "")).decode()])
    return out


async def state_of(nc, name: str) -> list:
    s = (await info(nc, name))["state"]
    return [s["messages"], s["first_seq"], s["last_seq"], s.get("num_deleted", 0)]


async def sourcing(nc) -> list:
    out = []
    out.append(await create(nc, {"name": "O", "subjects": ["o.>"], "storage": "memory"}))
    for i in range(5):
        out.append(await pub(nc, f"o.{i}", f"m{i}".encode(), {"Nats-Msg-Id": f"id{i}"} if i == 1 else None))
    out.append(err(await api(nc, "$JS.API.STREAM.MSG.DELETE.O", {"seq": 2})))
    out.append(await create(nc, {"name": "M", "mirror": {"name": "O"}, "storage": "memory"}))
    out.append(await create(nc, {"name": "S", "storage": "memory", "sources": [
        {"name": "O", "filter_subject": "o.3"},
        {"name": "O", "subject_transforms": [{"src": "o.4", "dest": "x.4"}]},
        {"name": "P", "opt_start_seq": 2}]}))
    out.append(await create(nc, {"name": "P", "subjects": ["p.>"], "storage": "memory"}))
    for i in range(3):
        out.append(await pub(nc, f"p.{i}", b"p"))
    await arrived(nc, "M", 5)
    await arrived(nc, "S", 4)
    out.append(await contents(nc, "M"))
    # sources interleave in no fixed order (nats-server runs one consumer each): new sequences
    # 1.., and the messages as a set
    got = await contents(nc, "S")
    out.append([[m[0] for m in got], sorted(m[1:] for m in got)])
    for name in ["M", "S"]:
        i = await info(nc, name)
        out.append([masked(i.get("mirror")), masked(i.get("sources")), await state_of(nc, name)])
    # what may not be
    bad = [
        {"name": "E", "mirror": {"name": "O"}, "subjects": ["e"]},
        {"name": "E", "mirror": {"name": "O"}, "sources": [{"name": "O"}]},
        {"name": "E", "mirror": {"name": "E"}},
        {"name": "E", "sources": [{"name": "E"}]},
        {"name": "E", "sources": [{"name": "O"}, {"name": "O"}]},
        {"name": "E", "mirror": {"name": "a.b"}},
        {"name": "E", "sources": [{"name": "a b"}]},
        {"name": "E", "mirror": {"name": "O"}, "first_seq": 5},
        {"name": "E", "mirror": {"name": "O"}, "allow_msg_counter": True},
        {"name": "E", "mirror": {"name": "O"}, "allow_atomic": True},
        {"name": "E", "mirror": {"name": "O"}, "allow_msg_schedules": True},
        {"name": "E", "sources": [{"name": "O"}], "allow_msg_schedules": True},
        {"name": "E", "mirror": {"name": "O", "filter_subject": "o.1",
                                 "subject_transforms": [{"src": "o.1", "dest": "x"}]}},
        {"name": "E", "sources": [{"name": "O", "filter_subject": "o.1",
                                   "subject_transforms": [{"src": "o.1", "dest": "x"}]}]},
        {"name": "E", "mirror": {"name": "O", "subject_transforms": [{"src": "o.*", "dest": "x"},
                                                                     {"src": "o.1", "dest": "y"}]}},
        {"name": "E", "sources": [{"name": "O", "subject_transforms": [
            {"src": "o.*", "dest": "x.{{wildcard(1)}}"}, {"src": "o.1", "dest": "y"}]}]},
        {"name": "E", "sources": [{"name": "O", "subject_transforms": [{"src": "o.*", "dest": "x.{{wildcard(3)}}"}]}]},
        {"name": "E", "mirror": {"name": "O"}, "subject_delete_marker_ttl": 2_000_000_000},
        {"name": "E", "mirror": {"name": "O"}, "max_msg_size": 10, "storage": "memory"},
    ]
    for cfg in bad:
        r = await create(nc, cfg)
        out.append(r if isinstance(r[0], int) else "created")
        if not isinstance(r[0], int):
            await api(nc, "$JS.API.STREAM.DELETE.E")
    # a mirror's direct gets follow its origin's when the origin is here
    out.append(await create(nc, {"name": "D", "subjects": ["d"], "storage": "memory", "allow_direct": True}))
    for name, origin, asked in [("MD1", "D", False), ("MD2", "O", True), ("MD3", "NONE", True)]:
        out.append(await create(nc, {"name": name, "mirror": {"name": origin}, "mirror_direct": asked,
                                     "storage": "memory"}))
    # the same again is no change (its `active` depends on heartbeat timing in nats-server)
    out.append((await create(nc, {"name": "MD1", "mirror": {"name": "D"}, "storage": "memory"}))[0])
    # a mirror's configuration stays, except that it may go
    out.append(await create(nc, {"name": "M", "mirror": {"name": "O", "filter_subject": "o.1"}, "storage": "memory"}))
    for cfg in [{"name": "M", "mirror": {"name": "O", "filter_subject": "o.1"}, "storage": "memory"},
                {"name": "M", "mirror": {"name": "O"}, "subjects": ["m"], "storage": "memory"},
                {"name": "O", "mirror": {"name": "P"}, "subjects": [], "storage": "memory"}]:
        out.append(err(await api(nc, f"$JS.API.STREAM.UPDATE.{cfg['name']}", cfg)))
    # deletes and purges on the origin stay there
    out.append(err(await api(nc, "$JS.API.STREAM.PURGE.O", {})))
    out.append(await pub(nc, "o.7", b"after purge"))
    await arrived(nc, "M", 6)
    out.append(await state_of(nc, "M"))
    # removing the mirror promotes it
    r = await api(nc, "$JS.API.STREAM.UPDATE.M", {"name": "M", "subjects": ["m.>"], "storage": "memory"})
    out.append([r.get("config", err(r)), "mirror" in r])
    out.append(await pub(nc, "m.1", b"own"))
    out.append(await pub(nc, "o.8", b"not copied"))
    out.append(await pub(nc, "m.2", b"own again"))
    out.append(await contents(nc, "M"))
    return out


async def counters(nc) -> list:
    out = []
    for n in ["C1", "C2"]:
        out.append(await create(nc, {"name": n, "subjects": [f"{n.lower()}.>"], "storage": "memory",
                                     "allow_msg_counter": True}))
    out.append(await create(nc, {"name": "AGG", "subjects": ["agg.>"], "storage": "memory", "allow_msg_counter": True,
                                 "sources": [{"name": "C1", "subject_transforms": [{"src": "c1.>", "dest": "agg.>"}]},
                                             {"name": "C2", "subject_transforms": [{"src": "c2.>", "dest": "agg.>"}]}]}))
    out.append(await create(nc, {"name": "PLAIN", "storage": "memory", "sources": [{"name": "C1"}]}))
    for s, v in [("c1.a", "5"), ("c1.a", "-1"), ("c1.b", "10")]:
        out.append(await pub(nc, s, b"", {"Nats-Incr": v}))
    await arrived(nc, "AGG", 3)
    out.append(await pub(nc, "c2.a", b"", {"Nats-Incr": "3"}))
    await arrived(nc, "AGG", 4)
    out.append(await pub(nc, "agg.a", b"", {"Nats-Incr": "100"}))
    await arrived(nc, "PLAIN", 3)
    out.append(await contents(nc, "AGG"))
    out.append(await contents(nc, "PLAIN"))
    out.append(await pub(nc, "agg.a", b"", {"Nats-Incr": "1", "Nats-Stream-Source": "X 1 > > agg.a"}))
    return out


LEVEL_4 = {"Nats-Required-Api-Level": "4"}


async def drop(nc, *names: str) -> None:
    """Deletes a scenario's streams (the servers are shared by the scenarios)."""
    for name in names:
        assert (await api(nc, f"$JS.API.STREAM.DELETE.{name}")).get("success"), name


def consumer_view(reply: dict):
    """A consumer create/info answer with times dropped and the random suffix nats-server
    gives a sourcing consumer on a limits stream (`<name>-<8 chars>`) reduced to `-*`."""
    if "error" in reply:
        return err(reply)
    text = json.dumps({k: v for k, v in reply.items() if k not in ("created", "ts")}, sort_keys=True)
    text = re.sub(r'(JS_[A-Z]+_[A-Za-z0-9]+)-[A-Za-z0-9]{8}"', r'\1-*"', text)
    view = json.loads(text)
    for part in ("delivered", "ack_floor"):
        view.get(part, {}).pop("last_active", None)
    return view


async def sourcing_consumers(nc) -> list:
    """What an origin makes of nats-server 2.14's sourcing request (a direct consumer on a
    limits stream, a durable acking by flow control on a work queue), and the flow-control
    answer that drains the work queue."""
    out = []
    out.append(await create(nc, {"name": "L", "subjects": ["l.>"], "storage": "memory"}))
    out.append(await create(nc, {"name": "W", "subjects": ["w.>"], "storage": "memory", "retention": "workqueue"}))
    for i in range(3):
        out.append(await pub(nc, f"l.{i}", b"l"))
        out.append(await pub(nc, f"w.{i}", b"w"))
    got: asyncio.Queue = asyncio.Queue()
    await nc.subscribe("dw.x", cb=got.put)
    cfg = {"name": "JS_SRC_abc", "deliver_policy": "all", "ack_policy": "none", "ack_wait": 22 * 3600 * 10**9,
           "max_deliver": 1, "idle_heartbeat": 10**9, "flow_control": True, "direct": True, "sourcing": True,
           "inactive_threshold": 10 * 10**9}
    for stream, deliver in [("L", "dl.x"), ("W", "dw.x")]:
        body = {"stream_name": stream, "config": dict(cfg, deliver_subject=deliver)}
        msg = await nc.request(f"$JS.API.CONSUMER.CREATE.{stream}", json.dumps(body).encode(), timeout=WAIT,
                               headers=LEVEL_4)
        out.append(consumer_view(json.loads(msg.data)))
    out.append(await api(nc, "$JS.API.CONSUMER.NAMES.W"))
    # the three messages, then (with a heartbeat, as they wait on acks) a flow-control request
    seen = []
    while True:
        m = await asyncio.wait_for(got.get(), WAIT)
        if m.reply.startswith("$JS.FC."):
            break
        if m.data:
            seen.append(m.subject)
    out.append(seen)
    await nc.publish(m.reply, b"", headers={"Nats-Last-Consumer": "3", "Nats-Last-Stream": "3"})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (await state_of(nc, "W"))[0] != 0:
        assert loop.time() < deadline, await state_of(nc, "W")
        await asyncio.sleep(0.02)
    out.append(await state_of(nc, "W"))
    out.append(consumer_view(await api(nc, "$JS.API.CONSUMER.INFO.W.JS_SRC_abc")))
    # the flow_control ack policy's own rules
    for extra in [{"max_deliver": 5}, {"ack_wait": 10**9}, {"idle_heartbeat": 0}]:
        c = dict({"durable_name": "fc", "ack_policy": "flow_control", "deliver_subject": "fc.x"}, **extra)
        out.append(consumer_view(await api(nc, "$JS.API.CONSUMER.CREATE.L.fc", {"stream_name": "L", "config": c})))
    await drop(nc, "L", "W")
    return out


async def until_state(nc, name: str, messages: int) -> list:
    """The stream's state once it holds `messages` (removals on the origin follow the copy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (state := await state_of(nc, name))[0] != messages:
        assert loop.time() < deadline, state
        await asyncio.sleep(0.02)
    return state


async def work_queue_drained(nc) -> list:
    """A work-queue origin sourced in the same server: what the source took is removed there
    (nats-server reads it through a durable acking by flow control), the consumer shows on
    the origin, and once the source is deleted the origin keeps what comes."""
    out = []
    out.append(await create(nc, {"name": "W", "subjects": ["w.>"], "storage": "memory", "retention": "workqueue"}))
    for i in range(6):
        out.append(await pub(nc, "w.a" if i % 2 == 0 else "w.b", str(i).encode()))
    out.append(await create(nc, {"name": "SW", "storage": "memory", "sources": [{"name": "W"}]}))
    await arrived(nc, "SW", 6)
    out.append(await until_state(nc, "W", 0))
    for i in range(6, 10):
        out.append(await pub(nc, "w.a", str(i).encode()))
    await arrived(nc, "SW", 10)
    out.append(await until_state(nc, "W", 0))
    got = await contents(nc, "SW")
    out.append([[m[0], m[1], m[3]] for m in got])
    names = await api(nc, "$JS.API.CONSUMER.NAMES.W")
    out.append([names["total"], [re.sub(r"^JS_SRC_[A-Za-z0-9]+$", "JS_SRC_*", n) for n in names["consumers"]]])
    info_w = await info(nc, "W")
    out.append(info_w["state"]["consumer_count"])
    out.append(await api(nc, "$JS.API.STREAM.DELETE.SW"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (await api(nc, "$JS.API.CONSUMER.NAMES.W"))["total"] != 0:
        assert loop.time() < deadline
        await asyncio.sleep(0.02)
    out.append(await pub(nc, "w.a", b"after"))
    out.append(await state_of(nc, "W"))
    await drop(nc, "W")
    return out


async def work_queue_filtered(nc) -> list:
    """A filtered source of a work queue: the ack removes everything from the lowest sequence
    taken to the last, also what the filter passed over in between, not what came after."""
    out = []
    out.append(await create(nc, {"name": "W", "subjects": ["w.>"], "storage": "memory", "retention": "workqueue"}))
    for i in range(6):
        out.append(await pub(nc, "w.a" if i % 2 == 0 else "w.b", str(i).encode()))
    out.append(await create(nc, {"name": "SF", "storage": "memory", "sources": [{"name": "W", "filter_subject": "w.a"}]}))
    await arrived(nc, "SF", 3)
    out.append(await until_state(nc, "W", 1))
    for i in range(6, 10):
        out.append(await pub(nc, "w.a", str(i).encode()))
    await arrived(nc, "SF", 7)
    out.append(await until_state(nc, "W", 1))
    out.append([[m[0], m[1], m[3]] for m in await contents(nc, "W") if len(m) == 4])
    await drop(nc, "SF", "W")
    return out


async def until_info(nc, name: str, ready) -> dict:
    """Stream info once `ready(info)` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not ready(i := await info(nc, name)):
        assert loop.time() < deadline, i
        await asyncio.sleep(0.02)
    return i


async def origin_missing(nc) -> list:
    """`error` in `mirror` / `sources` info while the origin cannot be read (nats-server backs
    off after failed creates, so its recovery is too slow to wait for here)."""
    out = []
    out.append(await create(nc, {"name": "ZM", "storage": "memory", "mirror": {"name": "ZO"}}))
    out.append(await create(nc, {"name": "ZS", "storage": "memory", "sources": [{"name": "ZO"}]}))
    zm = await until_info(nc, "ZM", lambda i: "error" in i["mirror"])
    zs = await until_info(nc, "ZS", lambda i: "error" in i["sources"][0])
    out.append([masked(zm["mirror"]), masked(zs["sources"])])
    await drop(nc, "ZM", "ZS")
    return out


async def direct_get(nc, subject: str, body: dict):
    """[headers without the time stamp, data] of a direct get, or the error's class."""
    try:
        m = await nc.request(subject, json.dumps(body).encode(), timeout=WAIT)
    except Exception as e:  # noqa: BLE001 - the class is what is compared
        return type(e).__name__
    return [{k: v for k, v in (m.headers or {}).items() if k != "Nats-Time-Stamp"}, m.data.decode()]


async def mirror_direct(nc) -> list:
    """A mirror of a stream with `allow_direct` inherits `mirror_direct` and answers direct
    gets addressed to its origin (also once the origin is gone), under its own name."""
    out = []
    out.append(await create(nc, {"name": "DO", "subjects": ["do.>"], "storage": "memory", "allow_direct": True}))
    out.append(await create(nc, {"name": "DM", "storage": "memory", "mirror": {"name": "DO"}}))
    for i in range(3):
        out.append(await pub(nc, "do.x", f"v{i}".encode()))
    await arrived(nc, "DM", 3)
    out.append(await api(nc, "$JS.API.STREAM.DELETE.DO"))
    out.append(await direct_get(nc, "$JS.API.DIRECT.GET.DO", {"last_by_subj": "do.x"}))
    out.append(await direct_get(nc, "$JS.API.DIRECT.GET.DO", {"seq": 2}))
    out.append(await direct_get(nc, "$JS.API.DIRECT.GET.DM", {"seq": 2}))
    await drop(nc, "DM")
    return out


async def origin_recreated(nc) -> list:
    """An origin deleted and created again under the same name: nats-server 2.14 does not
    tell (that came with API level 5), so its mirror and source pass over the new origin's
    sequences up to the last they took and go on from there."""
    out = []
    out.append(await create(nc, {"name": "RO", "subjects": ["ro.>"], "storage": "memory"}))
    out.append(await create(nc, {"name": "RM", "storage": "memory", "mirror": {"name": "RO"}}))
    out.append(await create(nc, {"name": "RS", "storage": "memory", "sources": [{"name": "RO"}]}))
    for i in range(5):
        out.append(await pub(nc, "ro.x", f"a{i}".encode()))
    await arrived(nc, "RM", 5)
    await arrived(nc, "RS", 5)
    out.append(await api(nc, "$JS.API.STREAM.DELETE.RO"))
    out.append(await create(nc, {"name": "RO", "subjects": ["ro.>"], "storage": "memory"}))
    for i in range(7):
        out.append(await pub(nc, "ro.x", f"b{i}".encode()))
    # nats-server notices the lost consumer by its health check (10 s), then re-creates it
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 4 * WAIT
    while (await state_of(nc, "RM"))[2] < 7 or (await state_of(nc, "RS"))[2] < 7:
        assert loop.time() < deadline, [await state_of(nc, "RM"), await state_of(nc, "RS")]
        await asyncio.sleep(0.1)
    out.append([m[3] for m in await contents(nc, "RM")])
    out.append([m[3] for m in await contents(nc, "RS")])
    await drop(nc, "RM", "RS", "RO")
    return out


async def next_seq(nc, stream: str, consumer: str) -> list:
    """[stream sequence, data] of the next message of a pull consumer."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, max_msgs=1)
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", b'{"batch": 1}', reply=inbox)
    m = await sub.next_msg(timeout=WAIT)
    return [int(m.reply.split(".")[-4]) if m.reply else None, m.data.decode()]


async def consumer_reset(nc) -> list:
    """`$JS.API.CONSUMER.RESET` (API level 4, what nats-server's mirror sends to a consumer it
    was given): back to the ack floor, to a sequence, and the starts it may not go below."""
    out = []
    out.append(await create(nc, {"name": "RL", "subjects": ["rl.>"], "storage": "memory"}))
    for i in range(5):
        out.append(await pub(nc, "rl.x", f"m{i + 1}".encode()))
    for name, extra in [("c", {}), ("f", {"deliver_policy": "by_start_sequence", "opt_start_seq": 3}),
                        ("n", {"deliver_policy": "new"})]:
        cfg = dict({"durable_name": name, "ack_policy": "explicit"}, **extra)
        out.append(consumer_view(await api(nc, f"$JS.API.CONSUMER.CREATE.RL.{name}", {"stream_name": "RL", "config": cfg})))
    for _ in range(3):
        out.append(await next_seq(nc, "RL", "c"))
    out.append(consumer_view(await api(nc, "$JS.API.CONSUMER.RESET.RL.c")))
    out.append(await next_seq(nc, "RL", "c"))
    out.append(consumer_view(await api(nc, "$JS.API.CONSUMER.RESET.RL.c", {"seq": 2})))
    out.append(await next_seq(nc, "RL", "c"))
    out.append(consumer_view(await api(nc, "$JS.API.CONSUMER.RESET.RL.f", {"seq": 2})))
    out.append(consumer_view(await api(nc, "$JS.API.CONSUMER.RESET.RL.f", {"seq": 4})))
    out.append(consumer_view(await api(nc, "$JS.API.CONSUMER.RESET.RL.n", {"seq": 2})))
    await drop(nc, "RL")
    return out


SCENARIOS = {"consumer reset": consumer_reset, "origin recreated": origin_recreated, "origin missing": origin_missing, "mirror direct": mirror_direct, "mirrors and sources": sourcing, "counters through sources": counters,
             "sourcing consumers": sourcing_consumers, "work queue drained by its source": work_queue_drained,
             "work queue filtered": work_queue_filtered}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ours = Server(tmp_path_factory.mktemp("ours"), jetstream=True).start()
    ref = Server(tmp_path_factory.mktemp("ref"), jetstream=True, template=REF_TEMPLATE).start()
    yield ours, ref
    ours.stop()
    ref.stop()


async def played(port: int, scenario) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    try:
        return await asyncio.wait_for(scenario(nc), 60)
    finally:
        await nc.close()


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_sourcing_matches_nats_server(pair, name):
    ours, ref = pair
    want = await played(ref.port, SCENARIOS[name])
    got = await played(ours.port, SCENARIOS[name])
    for i, (w, g) in enumerate(zip(want, got)):
        assert g == w, f"{name} step {i}: nats-server gave {w!r}"
    assert len(got) == len(want)


async def before_kill(nc) -> None:
    for cfg in [{"name": "O", "subjects": ["o.>"]}, {"name": "S", "subjects": ["s.>"], "sources": [{"name": "O"}]},
                {"name": "M", "mirror": {"name": "O", "filter_subject": "o.even"}}]:
        assert "error" not in await api(nc, f"$JS.API.STREAM.CREATE.{cfg['name']}", cfg)
    for i in range(200):
        await pub(nc, "o.even" if i % 2 == 0 else "o.odd", str(i).encode())
    await arrived(nc, "S", 200)
    await arrived(nc, "M", 199)


async def after_restart(nc) -> list:
    for i in range(200, 400):
        await pub(nc, "o.even" if i % 2 == 0 else "o.odd", str(i).encode())
    await arrived(nc, "S", 400)
    await arrived(nc, "M", 399)
    s = [m[3] for m in await contents(nc, "S")]
    m = [[x[0], x[3]] for x in await contents(nc, "M") if len(x) == 4]
    return [s == [str(i) for i in range(400)], m == [[i + 1, str(i)] for i in range(0, 400, 2)],
            await state_of(nc, "S"), await state_of(nc, "M")]


async def test_sourcing_resumes_exactly_after_sigkill(tmp_path):
    results = []
    for name, template in [("ref", REF_TEMPLATE), ("ours", None)]:
        server = Server(tmp_path / name, jetstream=True, template=template).start()
        try:
            nc = await nats.connect(server.url)
            await asyncio.wait_for(before_kill(nc), 60)
            await nc.close()
            server.kill()
            server.restart()
            nc = await nats.connect(server.url)
            results.append(await asyncio.wait_for(after_restart(nc), 60))
            await nc.close()
        finally:
            server.stop()
    want, got = results
    assert want[:2] == [True, True], want
    assert got == want, f"nats-server gave {want!r}"
