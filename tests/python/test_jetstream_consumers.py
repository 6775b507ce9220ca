"""JetStream consumers: pull and push delivery, acks of every kind, redelivery,
deliver policies, filters, ack policies, ephemeral cleanup, max_ack_pending,
interest and work-queue retention, and a dead-letter queue built on the
MAX_DELIVERIES advisory.

Runs on the shared JetStream server (`js_server`); every test has its own
stream, subjects and consumers. Waits are polls with generous deadlines.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import nats
import pytest
from nats.js import api
from nats.js.errors import APIError, NotFoundError

from edgehelp import expect_silence, poll, settle, take, wait_consumer, wait_state

ACK_EXPLICIT = api.AckPolicy.EXPLICIT
# nats-py's fetch() raises either, depending on where the wait ended.
FETCH_TIMEOUT = (nats.errors.TimeoutError, asyncio.TimeoutError)


@pytest.fixture
def sname() -> str:
    return "CN_" + uuid.uuid4().hex[:10].upper()


async def make_stream(js, sname: str, **kw) -> str:
    """Stream `sname` on `<sname lower>.>`; returns the subject prefix."""
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.>"], **kw)
    return p


async def fill(js, subject: str, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        await js.publish(subject, f"m{i}".encode())


async def fetch_or_none(sub, batch: int = 1, timeout: float = 1.0):
    """fetch() that returns [] instead of raising on timeout."""
    try:
        return await sub.fetch(batch, timeout=timeout)
    except FETCH_TIMEOUT:
        return []


# ------------------------------------------------------------------ pull ---

async def test_durable_pull_fetch_acks_and_counters(js, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.job", 5)
    sub = await js.pull_subscribe(f"{p}.job", durable="worker")
    info = await js.consumer_info(sname, "worker")
    assert info.config.durable_name == "worker"
    assert info.config.ack_policy == ACK_EXPLICIT
    assert (info.num_pending, info.num_ack_pending, info.delivered.stream_seq) == (5, 0, 0)

    msgs = await sub.fetch(3, timeout=5)
    assert [m.data for m in msgs] == [b"m0", b"m1", b"m2"]
    assert [m.metadata.sequence.stream for m in msgs] == [1, 2, 3]
    assert [m.metadata.sequence.consumer for m in msgs] == [1, 2, 3]
    assert all(m.metadata.num_delivered == 1 for m in msgs)
    assert [m.metadata.num_pending for m in msgs] == [4, 3, 2]
    assert msgs[0].metadata.stream == sname and msgs[0].metadata.consumer == "worker"

    info = await js.consumer_info(sname, "worker")
    assert (info.num_pending, info.num_ack_pending) == (2, 3)
    assert (info.delivered.stream_seq, info.delivered.consumer_seq) == (3, 3)
    assert info.ack_floor.stream_seq == 0

    # Ack 1 and 3: the floor only moves over contiguous acks.
    await msgs[0].ack_sync()
    await msgs[2].ack_sync()
    info = await js.consumer_info(sname, "worker")
    assert info.ack_floor.stream_seq == 1
    assert info.num_ack_pending == 1
    await msgs[1].ack_sync()
    info = await js.consumer_info(sname, "worker")
    assert (info.ack_floor.stream_seq, info.ack_floor.consumer_seq) == (3, 3)
    assert info.num_ack_pending == 0

    rest = await sub.fetch(5, timeout=2)
    assert [m.data for m in rest] == [b"m3", b"m4"]
    for m in rest:
        await m.ack_sync()
    info = await js.consumer_info(sname, "worker")
    assert (info.num_pending, info.num_ack_pending, info.ack_floor.stream_seq) == (0, 0, 5)
    assert info.num_redelivered == 0


async def test_fetch_on_empty_stream_times_out_then_sees_new_data(js, sname):
    p = await make_stream(js, sname)
    sub = await js.pull_subscribe(f"{p}.>", durable="idle")
    with pytest.raises(FETCH_TIMEOUT):
        await sub.fetch(1, timeout=0.5)
    with pytest.raises(FETCH_TIMEOUT):
        await sub.fetch(4, timeout=0.5)
    await js.publish(f"{p}.late", b"finally")
    got = await sub.fetch(1, timeout=5)
    assert [m.data for m in got] == [b"finally"]
    await got[0].ack()


async def test_nak_redelivers_and_term_stops(js, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.n", 3)
    sub = await js.pull_subscribe(f"{p}.n", durable="naker")

    [first] = await sub.fetch(1, timeout=5)
    assert first.data == b"m0"
    await first.nak()
    # m0 comes back promptly (ack_wait is the default 30 s), delivered twice.
    # nats-server may hand out m1 first; order is not part of the contract.
    seen = []
    again = None
    while again is None:
        got = await fetch_or_none(sub, 1, timeout=5)
        assert got, f"naked message not redelivered; saw {seen}"
        m = got[0]
        seen.append(m.data)
        if m.data == b"m0":
            again = m
        else:
            await m.ack_sync()
    assert again.metadata.num_delivered == 2
    assert again.metadata.sequence.stream == 1
    assert again.metadata.sequence.consumer > 1
    await again.term()
    rest = await fetch_or_none(sub, 3, timeout=1)
    for m in rest:
        await m.ack_sync()
    assert sorted(seen[:-1] + [m.data for m in rest]) == [b"m1", b"m2"]

    # The terminated message is never delivered again.
    assert await fetch_or_none(sub, 1, timeout=0.5) == []
    info = await js.consumer_info(sname, "naker")
    assert info.num_ack_pending == 0
    assert info.num_redelivered == 0  # nothing is still out for a 2nd+ time
    assert info.ack_floor.stream_seq == 3


async def test_nak_with_delay_postpones_redelivery(js, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.d", 2)
    sub = await js.pull_subscribe(f"{p}.d", durable="later", config=api.ConsumerConfig(ack_wait=30))
    [m0] = await sub.fetch(1, timeout=5)
    await m0.nak(delay=3)
    # Within the delay the next message is delivered, not the naked one.
    [m1] = await sub.fetch(1, timeout=5)
    assert m1.data == b"m1"
    await m1.ack_sync()
    assert await fetch_or_none(sub, 1, timeout=0.5) == []
    # After the delay it comes back.
    got = await sub.fetch(1, timeout=15)
    assert got[0].data == b"m0" and got[0].metadata.num_delivered == 2
    await got[0].ack_sync()


async def test_in_progress_keeps_a_message_from_redelivery(js, js_nc, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.w", 1)
    sub = await js.pull_subscribe(f"{p}.w", durable="slow", config=api.ConsumerConfig(ack_wait=2))
    [m] = await sub.fetch(1, timeout=5)
    # Work for about two ack_waits, reporting progress often.
    for _ in range(16):
        await m.in_progress()
        await asyncio.sleep(0.25)
    await js_nc.flush()
    info = await js.consumer_info(sname, "slow")
    assert info.num_redelivered == 0
    assert info.delivered.consumer_seq == 1
    await m.ack_sync()
    info = await js.consumer_info(sname, "slow")
    assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 1)


async def test_unacked_message_is_redelivered_after_ack_wait(js, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.r", 1)
    sub = await js.pull_subscribe(f"{p}.r", durable="forgetful", config=api.ConsumerConfig(ack_wait=1))
    [m] = await sub.fetch(1, timeout=5)
    assert m.metadata.num_delivered == 1
    # Not acked: the server hands it out again once ack_wait has passed.
    got = await sub.fetch(1, timeout=15)
    assert got[0].data == b"m0"
    assert got[0].metadata.num_delivered == 2
    assert got[0].metadata.sequence.stream == 1
    info = await js.consumer_info(sname, "forgetful")
    assert info.num_redelivered == 1
    assert info.num_ack_pending == 1
    await got[0].ack_sync()
    info = await js.consumer_info(sname, "forgetful")
    assert (info.num_ack_pending, info.num_redelivered) == (0, 0)


async def test_max_deliver_stops_redelivery(js, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.x", 1)
    cfg = api.ConsumerConfig(ack_wait=1, max_deliver=3)
    sub = await js.pull_subscribe(f"{p}.x", durable="capped", config=cfg)
    counts = []
    while True:
        got = await fetch_or_none(sub, 1, timeout=3)
        if not got:
            break
        counts.append(got[0].metadata.num_delivered)
        assert len(counts) <= 3, f"delivered more than max_deliver: {counts}"
    assert counts == [1, 2, 3]
    info = await js.consumer_info(sname, "capped")
    assert info.num_pending == 0
    # Still in the stream (limits retention), just no longer delivered.
    assert (await js.stream_info(sname)).state.messages == 1


async def test_max_ack_pending_limits_outstanding_deliveries(js, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.q", 6)
    sub = await js.pull_subscribe(f"{p}.q", durable="narrow", config=api.ConsumerConfig(max_ack_pending=2))
    first = await sub.fetch(6, timeout=1)
    assert [m.data for m in first] == [b"m0", b"m1"]
    assert await fetch_or_none(sub, 3, timeout=0.5) == []
    info = await js.consumer_info(sname, "narrow")
    assert (info.num_ack_pending, info.num_pending) == (2, 4)
    await first[0].ack_sync()
    more = await sub.fetch(6, timeout=1)
    assert [m.data for m in more] == [b"m2"]
    for m in (first[1], more[0]):
        await m.ack_sync()
    more = await sub.fetch(6, timeout=1)
    assert [m.data for m in more] == [b"m3", b"m4"]


# ------------------------------------------------------------------ push ---

async def test_push_durable_consumer_delivers_live(js, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.ev", 2)
    got: list = []

    async def handler(msg):
        got.append(msg)
        await msg.ack()

    sub = await js.subscribe(f"{p}.ev", durable="pusher", cb=handler, manual_ack=True)
    assert await poll(lambda: len(got) >= 2, timeout=10)
    await fill(js, f"{p}.ev", 3, start=2)
    assert await poll(lambda: len(got) >= 5, timeout=10)
    assert [m.data for m in got] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert got[0].subject == f"{p}.ev"  # the stream subject, not the deliver subject

    info = await wait_consumer(js, sname, "pusher", lambda i: i.ack_floor.stream_seq == 5)
    assert info.ack_floor.stream_seq == 5
    assert info.config.deliver_subject
    assert info.push_bound is True
    await sub.unsubscribe()
    info = await wait_consumer(js, sname, "pusher", lambda i: not i.push_bound)
    assert not info.push_bound
    # Durable: still there without a subscriber.
    assert (await js.consumer_info(sname, "pusher")).num_pending == 0


async def test_push_deliver_group_shares_messages(js, js_nc, sname):
    p = await make_stream(js, sname)
    seen: dict[str, list[bytes]] = {"a": [], "b": []}

    def collector(key):
        async def handler(msg):
            seen[key].append(msg.data)
            await msg.ack()
        return handler

    sa = await js.subscribe(f"{p}.task", queue="crew", durable="crew", cb=collector("a"), manual_ack=True)
    sb = await js.subscribe(f"{p}.task", queue="crew", durable="crew", cb=collector("b"), manual_ack=True)
    await settle(js_nc)
    await fill(js, f"{p}.task", 40)
    assert await poll(lambda: len(seen["a"]) + len(seen["b"]) >= 40, timeout=10)
    together = seen["a"] + seen["b"]
    assert sorted(together) == sorted(f"m{i}".encode() for i in range(40))
    assert len(set(together)) == 40
    assert seen["a"] and seen["b"], "one member of the deliver group got everything"
    info = await js.consumer_info(sname, "crew")
    assert info.config.deliver_group == "crew"
    await sa.unsubscribe()
    await sb.unsubscribe()


# --------------------------------------------- policies, filters, acks ---

async def test_deliver_policies(js, sname):
    p = await make_stream(js, sname)
    for subj, val in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2"), ("c", "c1")]:
        await js.publish(f"{p}.{subj}", val.encode())

    async def deliveries(name, expect_max, **cfg):
        await js.add_consumer(sname, durable_name=name, ack_policy=ACK_EXPLICIT, **cfg)
        sub = await js.pull_subscribe_bind(durable=name, stream=sname)
        got = await fetch_or_none(sub, expect_max + 1, timeout=1)
        return sub, [m.data.decode() for m in got]

    _, data = await deliveries("all", 5, deliver_policy=api.DeliverPolicy.ALL)
    assert data == ["a1", "b1", "a2", "b2", "c1"]
    _, data = await deliveries("last", 1, deliver_policy=api.DeliverPolicy.LAST)
    assert data == ["c1"]
    _, data = await deliveries("seq3", 3, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=3)
    assert data == ["a2", "b2", "c1"]
    _, data = await deliveries("lps", 3, deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                               filter_subject=f"{p}.*")
    assert data == ["a2", "b2", "c1"]
    _, data = await deliveries("lps_a", 1, deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                               filter_subject=f"{p}.a")
    assert data == ["a2"]
    new_sub, data = await deliveries("new", 0, deliver_policy=api.DeliverPolicy.NEW)
    assert data == []
    await js.publish(f"{p}.b", b"b3")
    got = await new_sub.fetch(5, timeout=1)
    assert [m.data for m in got] == [b"b3"]

    # last_per_subject needs a filter.
    with pytest.raises(APIError) as err:
        await js.add_consumer(sname, durable_name="lps_nofilter", ack_policy=ACK_EXPLICIT,
                              deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)
    assert err.value.err_code == 10094


async def test_filter_subject_and_ack_policies(js, sname):
    p = await make_stream(js, sname)
    for i in range(6):
        await js.publish(f"{p}.{'red' if i % 2 else 'blue'}", f"m{i}".encode())

    # Filter + ack none: nothing to ack, nothing pending afterwards.
    await js.add_consumer(sname, durable_name="fire", ack_policy=api.AckPolicy.NONE,
                          filter_subject=f"{p}.red")
    sub = await js.pull_subscribe_bind(durable="fire", stream=sname)
    got = await sub.fetch(10, timeout=1)
    assert [m.data for m in got] == [b"m1", b"m3", b"m5"]
    assert all(m.subject == f"{p}.red" for m in got)
    info = await js.consumer_info(sname, "fire")
    assert (info.num_ack_pending, info.num_pending, info.ack_floor.stream_seq) == (0, 0, 6)

    # Ack all: acking the 3rd delivery acks the first two as well.
    await js.add_consumer(sname, durable_name="bulk", ack_policy=api.AckPolicy.ALL,
                          filter_subject=f"{p}.blue")
    sub = await js.pull_subscribe_bind(durable="bulk", stream=sname)
    got = await sub.fetch(10, timeout=1)
    assert [m.metadata.sequence.stream for m in got] == [1, 3, 5]
    info = await js.consumer_info(sname, "bulk")
    assert info.num_ack_pending == 3
    await got[1].ack_sync()
    info = await js.consumer_info(sname, "bulk")
    assert info.num_ack_pending == 1
    assert info.ack_floor.stream_seq == 3
    await got[2].ack_sync()
    info = await js.consumer_info(sname, "bulk")
    assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 5)


async def test_ephemeral_consumer_goes_away_after_inactive_threshold(js, sname):
    p = await make_stream(js, sname)
    await fill(js, f"{p}.e", 2)
    info = await js.add_consumer(sname, ack_policy=ACK_EXPLICIT, inactive_threshold=1.0)
    name = info.name
    assert name and not info.config.durable_name
    assert info.config.inactive_threshold == pytest.approx(1.0)
    assert info.num_pending == 2

    async def gone():
        try:
            await js.consumer_info(sname, name)
            return False
        except NotFoundError:
            return True

    assert await poll(gone, timeout=20, every=0.2), "ephemeral consumer was never removed"
    with pytest.raises(NotFoundError) as err:
        await js.consumer_info(sname, name)
    assert err.value.err_code == 10014
    assert (await js.stream_info(sname)).state.consumer_count == 0


async def test_consumer_delete_and_not_found(js, js_nc, sname):
    p = await make_stream(js, sname)
    await js.add_consumer(sname, durable_name="tmp", ack_policy=ACK_EXPLICIT)
    assert (await js.stream_info(sname)).state.consumer_count == 1
    assert await js.delete_consumer(sname, "tmp") is True
    with pytest.raises(NotFoundError) as err:
        await js.delete_consumer(sname, "tmp")
    assert err.value.err_code == 10014
    # A pull to a missing consumer has nobody to answer it.
    with pytest.raises(nats.errors.NoRespondersError):
        await js_nc.request(f"$JS.API.CONSUMER.MSG.NEXT.{sname}.tmp", b'{"batch":1}', timeout=3)


# ------------------------------------------------------------ retention ---

async def test_interest_retention_drops_messages_acked_by_all(js, sname):
    p = await make_stream(js, sname, retention=api.RetentionPolicy.INTEREST)
    # No consumer yet: the publish is acked but not kept.
    ack = await js.publish(f"{p}.i", b"nobody cares")
    assert ack.seq == 1
    await wait_state(js, sname, lambda s: s.messages == 0)
    assert (await js.stream_info(sname)).state.messages == 0

    s1 = await js.pull_subscribe(f"{p}.i", durable="one")
    s2 = await js.pull_subscribe(f"{p}.i", durable="two")
    await fill(js, f"{p}.i", 3)
    assert (await js.stream_info(sname)).state.messages == 3

    for m in await s1.fetch(3, timeout=2):
        await m.ack_sync()
    # "two" has not acked: everything stays.
    assert (await js.stream_info(sname)).state.messages == 3
    got = await s2.fetch(3, timeout=2)
    await got[0].ack_sync()
    state = await wait_state(js, sname, lambda s: s.messages == 2)
    assert (state.messages, state.first_seq) == (2, 3)
    for m in got[1:]:
        await m.ack_sync()
    state = await wait_state(js, sname, lambda s: s.messages == 0)
    assert state.messages == 0 and state.last_seq == 4


async def test_workqueue_retention_removes_on_ack_and_allows_one_consumer(js, sname):
    p = await make_stream(js, sname, retention=api.RetentionPolicy.WORK_QUEUE)
    await fill(js, f"{p}.wq", 4)
    sub = await js.pull_subscribe(f"{p}.>", durable="wq1")
    got = await sub.fetch(2, timeout=2)
    await got[0].ack_sync()
    await got[1].ack_sync()
    state = await wait_state(js, sname, lambda s: s.messages == 2)
    assert (state.messages, state.first_seq) == (2, 3)

    # A second consumer that overlaps the first is refused.
    with pytest.raises(APIError) as err:
        await js.add_consumer(sname, durable_name="wq2", ack_policy=ACK_EXPLICIT)
    assert err.value.err_code == 10099
    with pytest.raises(APIError) as err:
        await js.add_consumer(sname, durable_name="wq3", ack_policy=ACK_EXPLICIT, filter_subject=f"{p}.wq")
    assert err.value.err_code == 10100  # "filtered consumer not unique on workqueue stream"

    # Disjoint filtered consumers are fine once the unfiltered one is gone.
    await js.delete_consumer(sname, "wq1")
    await js.add_consumer(sname, durable_name="only_wq", ack_policy=ACK_EXPLICIT, filter_subject=f"{p}.wq")
    await js.add_consumer(sname, durable_name="only_x", ack_policy=ACK_EXPLICIT, filter_subject=f"{p}.x")
    with pytest.raises(APIError) as err:
        await js.add_consumer(sname, durable_name="dup_wq", ack_policy=ACK_EXPLICIT, filter_subject=f"{p}.wq")
    assert err.value.err_code == 10100
    # The remaining two messages go to the new consumer, then disappear.
    sub = await js.pull_subscribe_bind(durable="only_wq", stream=sname)
    rest = await sub.fetch(5, timeout=1)
    assert [m.data for m in rest] == [b"m2", b"m3"]
    for m in rest:
        await m.ack_sync()
    await wait_state(js, sname, lambda s: s.messages == 0)
    assert (await js.stream_info(sname)).state.messages == 0


# ------------------------------------------------------ dead-letter queue ---

async def test_max_deliveries_advisory_feeds_a_dead_letter_stream(js, js_nc, sname):
    p = await make_stream(js, sname)
    dlq = sname + "_DLQ"
    await js.add_stream(name=dlq, subjects=[f"dlq.{p}.>"])
    advisories: list[dict] = []
    copy_errors: list[BaseException] = []

    async def on_advisory(msg):
        # The listener: find the dead message by its stream sequence and
        # park a copy in the DLQ stream, keeping where it came from.
        try:
            adv = json.loads(msg.data)
            advisories.append(adv)
            dead = await js.get_msg(adv["stream"], adv["stream_seq"])
            await js.publish(f"dlq.{dead.subject}", dead.data, headers={
                "Dlq-Stream": adv["stream"], "Dlq-Seq": str(adv["stream_seq"]),
                "Dlq-Deliveries": str(adv["deliveries"]),
            })
        except BaseException as e:  # reported by the test below
            copy_errors.append(e)

    adv_subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{sname}.proc"
    adv_sub = await js_nc.subscribe(adv_subject, cb=on_advisory)
    await settle(js_nc)

    await js.publish(f"{p}.order", b"good-1")
    await js.publish(f"{p}.order", b"poison", headers={"Kind": "bad"})
    await js.publish(f"{p}.order", b"good-2")

    sub = await js.pull_subscribe(f"{p}.order", durable="proc",
                                  config=api.ConsumerConfig(ack_wait=1, max_deliver=2))
    processed = []

    async def dlq_holds_poison():
        for m in await fetch_or_none(sub, 3, timeout=0.5):
            if m.data == b"poison":
                await m.nak()  # the worker keeps failing on it
            else:
                processed.append(m.data)
                await m.ack()
        try:
            return (await js.stream_info(dlq)).state.messages >= 1
        except APIError:
            return False

    assert await poll(dlq_holds_poison, timeout=20, every=0.05), \
        f"DLQ stayed empty; advisories={advisories} errors={copy_errors}"
    assert not copy_errors, copy_errors
    assert sorted(processed) == [b"good-1", b"good-2"]

    [adv] = advisories
    assert adv["type"] == "io.nats.jetstream.advisory.v1.max_deliver"
    assert (adv["stream"], adv["consumer"], adv["stream_seq"], adv["deliveries"]) == (sname, "proc", 2, 2)

    parked = await js.get_msg(dlq, 1)
    assert parked.subject == f"dlq.{p}.order"
    assert parked.data == b"poison"
    assert parked.headers["Dlq-Seq"] == "2" and parked.headers["Dlq-Stream"] == sname
    assert (await js.stream_info(dlq)).state.messages == 1

    # The poison message is no longer handed out.
    assert await fetch_or_none(sub, 1, timeout=1.5) == []
    await adv_sub.unsubscribe()
