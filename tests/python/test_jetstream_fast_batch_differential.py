"""Fast-ingest batches (`allow_batched`, ADR-50) side by side with nats-server 2.14. nats-py has
no helper for them, so each scenario publishes with the fast-batch reply subjects
(`<prefix>.<id>.<flow>.<ok|fail>.<seq>.<op>.$FI`) and listens on `<prefix>.<id>.>` as a client
would; what both servers send back must be the same, in order. A wait ends on an arrival: the
pub ack that ends a batch, or the flow ack a ping (op 4) always gets, never on "nothing
arrives".
"""

from __future__ import annotations

import asyncio
import json
import os

import nats
import pytest

from test_jetstream_differential import js_pair  # noqa: F401 (a fixture)
from test_jetstream_features_differential import api, err, last, same_as_nats_server, state, stream

pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEBUS_SERVER_CMD") == "nats-server",
    reason="the reference compared with itself proves nothing",
)

WAIT = 10.0
PREFIX = "_INBOX.fast"
START, APPEND, COMMIT, EOB, PING = range(5)


class Batch:
    """One fast batch as a client drives it: publishes, and the replies it got, in order."""

    def __init__(self, nc, bid: str, subject: str, flow: int = 10, gap: str = "ok"):
        self.nc, self.bid, self.subject, self.flow, self.gap = nc, bid, subject, flow, gap
        self.got: asyncio.Queue = asyncio.Queue()
        self.sub = None

    async def open(self) -> "Batch":
        async def on(m):
            await self.got.put((m.subject[len(PREFIX) + len(self.bid) + 2:], json.loads(m.data) if m.data else ""))
        self.sub = await self.nc.subscribe(f"{PREFIX}.{self.bid}.>", cb=on)
        return self

    def reply(self, seq: int, op: int) -> str:
        return f"{PREFIX}.{self.bid}.{self.flow}.{self.gap}.{seq}.{op}.$FI"

    async def send(self, subject: str, seq: int, op: int, data: bytes = b"x", headers=None) -> None:
        await self.nc.publish(subject, data, reply=self.reply(seq, op), headers=headers)

    async def until(self, done) -> list:
        """The replies up to and including the first for which `done(subject_tail, body)`."""
        out = []
        while True:
            tail, body = await asyncio.wait_for(self.got.get(), WAIT)
            out.append([tail, err(body) if isinstance(body, dict) and "error" in body and "type" not in body else body])
            if done(tail, body):
                return out

    async def ping(self, seq: int) -> list:
        """Pings and returns every reply up to the ping's own flow ack (or the batch's end)."""
        await self.send(self.subject, seq, PING, b"")
        return await self.until(lambda t, b: isinstance(b, dict) and (
            (t.endswith(f".{seq}.{PING}.$FI") and b.get("type") == "ack") or "stream" in b))

    async def ended(self) -> list:
        """Every reply up to the pub ack (or error) that ends the batch."""
        return await self.until(lambda t, b: isinstance(b, dict) and "stream" in b)


async def connect(port: int):
    return await nats.connect(f"nats://127.0.0.1:{port}")


async def flow_and_commit(port: int) -> list:
    nc = await connect(port)
    out = []
    await stream(nc, "FB", allow_batched=True)
    info = await api(nc, "$JS.API.STREAM.INFO.FB")
    out.append([info["config"].get("allow_batched"), info["config"]["metadata"].get("_nats.req.level")])
    # the captured exchange: one flow ack at the start, then the pub ack at the commit
    b = await Batch(nc, "uuid1", "fb.p").open()
    for seq in range(1, 7):
        await b.send(f"fb.{seq}", seq, START if seq == 1 else COMMIT if seq == 6 else APPEND, str(seq).encode())
    out.append(await b.ended())
    out.append(await state(nc, "FB"))
    # a small flow: acks every 2 messages; a ping answers with where the batch stands
    b = await Batch(nc, "small", "fb.s", flow=2).open()
    for seq in range(1, 10):
        await b.send("fb.s", seq, START if seq == 1 else APPEND)
    out.append(await b.ping(9))
    await b.send("fb.s", 10, EOB, b"")
    out.append(await b.ended())
    out.append(await state(nc, "FB"))
    # a flow of 0 asks for the default, a huge one is capped
    for flow in (0, 100000, 3):
        b = await Batch(nc, f"f{flow}", "fb.f", flow=flow).open()
        for seq in range(1, 8):
            await b.send("fb.f", seq, START if seq == 1 else APPEND)
        out.append(await b.ping(7))
        await b.send("fb.f", 8, COMMIT)
        out.append(await b.ended())
    # a single message that commits at once
    b = await Batch(nc, "one", "fb.one").open()
    await b.send("fb.one", 1, COMMIT, b"only")
    out.append(await b.ended())
    out.append(await last(nc, "FB", "fb.one"))
    await nc.close()
    return out


async def gaps(port: int) -> list:
    nc = await connect(port)
    out = []
    await stream(nc, "GP", allow_batched=True)
    # gap mode "fail": the gap ends the batch with what it had
    b = await Batch(nc, "failing", "gp.a", gap="fail").open()
    await b.send("gp.a", 1, START)
    await b.send("gp.a", 2, APPEND)
    await b.send("gp.a", 4, APPEND)
    out.append(await b.ended())
    await b.send("gp.a", 5, APPEND)
    out.append(await b.ended())
    # gap mode "ok": reported, and the batch goes on
    b = await Batch(nc, "okgap", "gp.b").open()
    await b.send("gp.b", 1, START)
    await b.send("gp.b", 3, APPEND)
    await b.send("gp.b", 7, APPEND)
    out.append(await b.ping(7))
    await b.send("gp.b", 8, COMMIT)
    out.append(await b.ended())
    # a message sent again ends even an "ok" batch
    b = await Batch(nc, "again", "gp.c").open()
    await b.send("gp.c", 1, START)
    await b.send("gp.c", 2, APPEND)
    await b.send("gp.c", 2, APPEND)
    out.append(await b.ended())
    # a ping ahead of what arrived is a gap too
    b = await Batch(nc, "pingahead", "gp.d", gap="fail").open()
    await b.send("gp.d", 1, START)
    out.append(await b.ping(3))
    b = await Batch(nc, "pingok", "gp.d").open()
    await b.send("gp.d", 1, START)
    out.append(await b.ping(4))
    await b.send("gp.d", 5, EOB, b"")
    out.append(await b.ended())
    out.append(await state(nc, "GP"))
    await nc.close()
    return out


async def refusals(port: int) -> list:
    nc = await connect(port)
    out = []
    await stream(nc, "PL")
    await stream(nc, "RF", allow_batched=True, max_msg_size=64)

    async def answer(subject: str, reply: str, data: bytes = b"x", headers=None):
        sub = await nc.subscribe(reply)
        await nc.publish(subject, data, reply=reply, headers=headers)
        m = await sub.next_msg(timeout=WAIT)
        await sub.unsubscribe()
        return err(json.loads(m.data))

    out.append(await answer("pl.a", f"{PREFIX}.x.10.ok.1.0.$FI"))               # not enabled
    out.append(await answer("rf.a", "noprefix.10.ok.1.0.$FI"))
    for bad in [ "x.10.maybe.1.0.$FI", "x.10.ok.2.0.$FI", "x.10.ok.1.1.$FI",
                "x.10.ok.1.3.$FI", "x.10.ok.0.1.$FI", "x.10.ok.1.9.$FI"]:
        out.append(await answer("rf.a", f"{PREFIX}.{bad}"))                        # invalid pattern
    out.append(await answer("rf.a", f"{PREFIX}.{'L' * 65}.10.ok.1.0.$FI"))        # id too long
    out.append(await answer("rf.a", f"{PREFIX}.nobody.10.ok.2.1.$FI"))            # unknown batch
    out.append(await answer("rf.a", f"{PREFIX}.big.10.ok.1.0.$FI", b"y" * 65))     # too big
    out.append(await answer("rf.a", f"{PREFIX}.lvl.10.ok.1.0.$FI", b"x", {"Nats-Required-Api-Level": "99"}))
    out.append(await answer("rf.a", f"{PREFIX}.lvl.10.ok.2.1.$FI"))                # the level ended it
    out.append(await state(nc, "RF"))
    # a level we meet is accepted and not stored
    b = await Batch(nc, "lvlok", "rf.l").open()
    await b.send("rf.l", 1, COMMIT, b"l", {"Nats-Required-Api-Level": "1", "Keep": "me"})
    out.append(await b.ended())
    out.append(await last(nc, "RF", "rf.l"))
    # config rules
    c = {"name": "MB", "storage": "memory", "mirror": {"name": "RF"}, "allow_batched": True}
    out.append(err(await api(nc, "$JS.API.STREAM.CREATE.MB", c)))
    c = {"name": "PL", "subjects": ["pl.>"], "storage": "memory", "allow_batched": True}
    out.append(err(await api(nc, "$JS.API.STREAM.UPDATE.PL", c)).get("allow_batched"))
    await nc.close()
    return out


async def message_errors(port: int) -> list:
    nc = await connect(port)
    out = []
    await stream(nc, "ME", allow_batched=True)
    # a refused message in "ok" mode is reported and skipped
    b = await Batch(nc, "okerr", "me.a").open()
    await b.send("me.a", 1, START)
    await b.send("me.a", 2, APPEND, b"x", {"Nats-Expected-Last-Sequence": "99"})
    await b.send("me.a", 3, COMMIT)
    out.append(await b.ended())
    # in "fail" mode it ends the batch
    b = await Batch(nc, "failerr", "me.b", gap="fail").open()
    await b.send("me.b", 1, START)
    await b.send("me.b", 2, APPEND, b"x", {"Nats-Expected-Last-Sequence": "99"})
    out.append(await b.ended())
    # the first message refused in "fail" mode is answered as a plain publish
    b = await Batch(nc, "firsterr", "me.c", gap="fail").open()
    await b.send("me.c", 1, START, b"x", {"Nats-Expected-Stream": "OTHER"})
    out.append(await b.ended())
    # duplicates are skipped without a word (a duplicate commit in "ok" mode is never
    # answered by 2.14.0, so it is not played here); in "fail" mode a duplicate commit commits
    b = await Batch(nc, "dups", "me.d").open()
    await b.send("me.d", 1, START, b"x", {"Nats-Msg-Id": "m1"})
    await b.send("me.d", 2, APPEND, b"x", {"Nats-Msg-Id": "m1"})
    out.append(await b.ping(2))
    await b.send("me.d", 3, COMMIT, b"y")
    out.append(await b.ended())
    b = await Batch(nc, "dupfail", "me.d", gap="fail").open()
    await b.send("me.d", 1, START, b"x", {"Nats-Msg-Id": "m2"})
    await b.send("me.d", 2, COMMIT, b"x", {"Nats-Msg-Id": "m2"})
    out.append(await b.ended())
    b = await Batch(nc, "dupone", "me.d", gap="fail").open()
    await b.send("me.d", 1, COMMIT, b"x", {"Nats-Msg-Id": "m1"})
    out.append(await b.ended())
    # two batches at once: the second one starts slow
    b1 = await Batch(nc, "first", "me.e").open()
    b2 = await Batch(nc, "second", "me.e").open()
    await b1.send("me.e", 1, START)
    out.append(await b1.ping(1))
    await b2.send("me.e", 1, START)
    out.append(await b2.ping(1))
    for seq in range(2, 6):
        await b2.send("me.e", seq, APPEND)
    out.append(await b2.ping(5))
    await b1.send("me.e", 2, EOB, b"")
    out.append(await b1.ended())
    await b2.send("me.e", 6, EOB, b"")
    out.append(await b2.ended())
    out.append(await state(nc, "ME"))
    await nc.close()
    return out


SCENARIOS = {"flow and commit": flow_and_commit, "gaps": gaps, "refusals": refusals,
             "message errors": message_errors}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_fast_batches_match_nats_server(js_pair, name):
    await same_as_nats_server(js_pair, SCENARIOS[name], name)
