"""Pull requests, side by side with nats-server 2.14: each scenario runs with nats-py against
the reference and against edgebus (each on a fresh store), and what the requester's inbox
receives (messages and status replies, up to a known end) must be the same, and what the
reference did is asserted too, so a change in either is caught.

The scenarios are the pull-request rules the nats.py suite showed apart:
- a `no_wait` request with `expires` waits while the consumer is empty and ends with
  `404 No Messages` after what it got (`test_fetch_no_orphan_on_timeout`);
- a request whose reply subject nobody listens on any more takes no message
  (`test_pull_subscribe_limits`);
- `max_waiting` refuses requests past it with `409 Exceeded MaxWaiting`; a request whose
  client went away still counts until the consumer is looked at again: a consumer info
  sheds it (as a delivery does, but nats-server delivers on its own goroutine, so only the
  info is a step a test can wait on); and a pull against the full queue sheds it once the
  queue was last checked over a second ago.
No step waits for "nothing arrives": every wait ends on a message or a status.
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


class Inbox:
    """A subscription whose arrivals are read as (data, status, description) up to a status."""

    def __init__(self, sub):
        self.sub = sub

    async def until_status(self) -> list[tuple]:
        got = []
        while True:
            m = await self.sub.next_msg(timeout=WAIT)
            status = (m.headers or {}).get("Status")
            got.append((m.data.decode(), status, (m.headers or {}).get("Description")))
            if status:
                return got


async def pull(nc, stream: str, consumer: str, reply: str, body: dict) -> None:
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", json.dumps(body).encode(), reply=reply)
    await nc.flush()


async def consumer(js, stream: str, name: str, **kw):
    await js.add_consumer(stream, durable_name=name, ack_policy="explicit", **kw)


async def one_shot_no_wait(port: int) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    await js.add_stream(name="NW", subjects=["nw.>"], storage="memory")
    await consumer(js, "NW", "c")
    inbox = Inbox(await nc.subscribe("_INBOX.nw"))
    await pull(nc, "NW", "c", "_INBOX.nw", {"batch": 100, "expires": 30_000_000_000, "no_wait": True})
    await js.publish("nw.a", b"hello")
    got = await inbox.until_status()
    info = await js.consumer_info("NW", "c")
    await nc.close()
    return [got, info.num_waiting, info.num_ack_pending]


async def deaf_request(port: int) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    await js.add_stream(name="DF", subjects=["df.>"], storage="memory")
    await consumer(js, "DF", "c")
    gone = await nc.subscribe("_INBOX.gone")
    await gone.unsubscribe()
    await pull(nc, "DF", "c", "_INBOX.gone", {"batch": 10, "expires": 30_000_000_000})
    await js.publish("df.a", b"kept")
    # nats-server tells its consumers of a stored message asynchronously: a busy machine can
    # answer the first info before the consumer counts it (0 pending, 0 taken)
    for _ in range(100):
        info = await js.consumer_info("DF", "c")
        if info.num_pending or info.num_ack_pending:
            break
        await asyncio.sleep(0.05)
    seen = [info.num_pending, info.num_waiting, info.num_ack_pending]
    live = await nc.subscribe("_INBOX.live")
    await pull(nc, "DF", "c", "_INBOX.live", {"batch": 1, "no_wait": True})
    got = await live.next_msg(timeout=WAIT)
    await nc.close()
    return [seen, got.data.decode()]


async def full_queue_of_a_gone_client(nc, stream: str) -> list:
    """A consumer with `max_waiting: 1` whose one waiting request belongs to a client that
    went away (after a second request was refused); returns that refusal."""
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"], storage="memory")
    await consumer(js, stream, "c", max_waiting=1)
    a = await nc.subscribe("_INBOX.a")
    b = Inbox(await nc.subscribe("_INBOX.b"))
    await pull(nc, stream, "c", "_INBOX.a", {"batch": 1, "expires": 30_000_000_000})
    await pull(nc, stream, "c", "_INBOX.b", {"batch": 1, "expires": 30_000_000_000})
    refused = await b.until_status()
    await a.unsubscribe()
    return refused


async def max_waiting(port: int) -> list:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    refused = await full_queue_of_a_gone_client(nc, "MW")
    # within the second after the refusal, the gone client's request still counts
    c = await nc.subscribe("_INBOX.c")
    await pull(nc, "MW", "c", "_INBOX.c", {"batch": 1, "expires": 30_000_000_000})
    refused_too = await Inbox(c).until_status()
    # a consumer info sheds it
    waiting = (await js.consumer_info("MW", "c")).num_waiting
    d = await nc.subscribe("_INBOX.d")
    await pull(nc, "MW", "c", "_INBOX.d", {"batch": 1, "expires": 30_000_000_000})
    await js.publish("mw.a", b"to d")
    got = await d.next_msg(timeout=WAIT)
    await nc.close()
    return [refused, refused_too, waiting, got.data.decode()]


async def max_waiting_paced(port: int) -> list:
    """A full queue is checked for gone clients at most once a second: past that second the
    next pull against it sheds the gone request and takes its place."""
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    refused = await full_queue_of_a_gone_client(nc, "MP")
    await asyncio.sleep(1.3)  # the pace under test, not a wait for an arrival
    c = await nc.subscribe("_INBOX.c")
    await pull(nc, "MP", "c", "_INBOX.c", {"batch": 1, "expires": 30_000_000_000})
    await nc.jetstream().publish("mp.a", b"to c")
    got = await c.next_msg(timeout=WAIT)
    await nc.close()
    return [refused, got.data.decode()]


SCENARIOS = {
    "no_wait with expires is one-shot": (
        one_shot_no_wait, [[("hello", None, None), ("", "404", "No Messages")], 0, 1]),
    "a request nobody listens to takes nothing": (
        deaf_request, [[1, 0, 0], "kept"]),
    "max_waiting": (
        max_waiting, [[("", "409", "Exceeded MaxWaiting")], [("", "409", "Exceeded MaxWaiting")], 0, "to d"]),
    "max_waiting checks a full queue again after a second": (
        max_waiting_paced, [[("", "409", "Exceeded MaxWaiting")], "to c"]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_pull_requests_match_nats_server(js_pair, name):
    ours, ref = js_pair
    scenario, expected = SCENARIOS[name]
    want = await asyncio.wait_for(scenario(ref.port), 30)
    assert want == expected, f"nats-server 2.14 did {want!r}"
    got = await asyncio.wait_for(scenario(ours.port), 30)
    assert got == want, f"nats-server sent {want!r}"
