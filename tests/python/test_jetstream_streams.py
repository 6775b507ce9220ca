"""JetStream streams: create/info/update/delete, limits, dedup, expectations,
purge, message get/delete, direct get, rollup.

Runs on the shared JetStream server (`js_server`); every test has its own
stream name and subject prefix. Expected error codes are nats-server 2.14's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import nats
import pytest
from nats.js import api
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from edgehelp import js_api, nats_connect, poll, settle, wait_state


@pytest.fixture
def sname() -> str:
    """A unique stream name; subjects in the test use its lower-case form."""
    return "ST_" + uuid.uuid4().hex[:10].upper()


async def api_error(coro) -> APIError:
    """Await `coro`, expecting a JetStream API error; return it."""
    with pytest.raises(APIError) as info:
        await coro
    return info.value


# ------------------------------------------------------------ lifecycle ---

async def test_wildcard_subjects_are_captured_and_counted(js, js_nc, sname):
    p = sname.lower()
    info = await js.add_stream(name=sname, subjects=[f"{p}.in.*", f"{p}.deep.>"])
    assert info.config.name == sname
    assert info.config.subjects == [f"{p}.in.*", f"{p}.deep.>"]
    assert info.state.messages == 0 and info.state.last_seq == 0

    acks = []
    for subj in (f"{p}.in.a", f"{p}.in.b", f"{p}.deep.x.y.z", f"{p}.in.a", f"{p}.deep.q"):
        acks.append(await js.publish(subj, subj.encode()))
    assert [a.stream for a in acks] == [sname] * 5
    assert [a.seq for a in acks] == [1, 2, 3, 4, 5]

    # `*` matches exactly one token: p.in.a.b is not captured by anyone.
    with pytest.raises(NoStreamResponseError):
        await js.publish(f"{p}.in.a.b", b"lost")

    state = (await js.stream_info(sname)).state
    assert (state.messages, state.first_seq, state.last_seq) == (5, 1, 5)
    assert state.bytes > 0

    # Subject counts through the raw API.
    resp = await js_api(js_nc, f"$JS.API.STREAM.INFO.{sname}", {"subjects_filter": f"{p}.in.*"})
    assert resp["state"]["num_subjects"] == 4
    assert resp["state"]["subjects"] == {f"{p}.in.a": 2, f"{p}.in.b": 1}


async def test_update_then_names_list_and_delete(js, js_nc, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.one"])
    await js.publish(f"{p}.one", b"1")

    updated = await js.update_stream(name=sname, subjects=[f"{p}.one", f"{p}.two"],
                                     max_msgs=50, description="now with two")
    assert updated.config.subjects == [f"{p}.one", f"{p}.two"]
    assert updated.config.max_msgs == 50
    assert updated.config.description == "now with two"
    # Existing data survives an update; the new subject is captured.
    ack = await js.publish(f"{p}.two", b"2")
    assert ack.seq == 2
    info = await js.stream_info(sname)
    assert info.config.description == "now with two" and info.state.messages == 2

    # Storage type cannot change.
    err = await api_error(js.update_stream(name=sname, subjects=[f"{p}.one", f"{p}.two"],
                                           storage=api.StorageType.MEMORY))
    assert err.err_code == 10052

    # Names, filtered by subject, and the full list.
    names = await js_api(js_nc, "$JS.API.STREAM.NAMES", {"subject": f"{p}.two"})
    assert names["streams"] == [sname]
    listed = await js.streams_info()
    assert sname in [s.config.name for s in listed]

    assert await js.delete_stream(sname) is True
    err = await api_error(js.stream_info(sname))
    assert isinstance(err, NotFoundError) and err.err_code == 10059
    names = await js_api(js_nc, "$JS.API.STREAM.NAMES", {"subject": f"{p}.two"})
    assert not names.get("streams")
    with pytest.raises(NoStreamResponseError):
        await js.publish(f"{p}.one", b"gone")
    err = await api_error(js.delete_stream(sname))
    assert err.err_code == 10059


async def test_overlapping_subjects_and_name_conflicts(js, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.a.*"])
    other = sname + "_B"

    err = await api_error(js.add_stream(name=other, subjects=[f"{p}.a.x"]))
    assert (err.code, err.err_code) == (400, 10065)
    err = await api_error(js.add_stream(name=other, subjects=[f"{p}.>"]))
    assert err.err_code == 10065

    # A disjoint stream is fine, but may not be updated into the overlap.
    await js.add_stream(name=other, subjects=[f"{p}.b.*"])
    err = await api_error(js.update_stream(name=other, subjects=[f"{p}.b.*", f"{p}.a.z"]))
    assert err.err_code == 10065

    # Same name, different config.
    err = await api_error(js.add_stream(name=sname, subjects=[f"{p}.c"]))
    assert (err.code, err.err_code) == (400, 10058)
    # Same name, same config: accepted.
    again = await js.add_stream(name=sname, subjects=[f"{p}.a.*"])
    assert again.config.subjects == [f"{p}.a.*"]


# --------------------------------------------------------------- limits ---

async def test_max_msgs_discard_old_drops_the_oldest(js, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.>"], max_msgs=3)
    for i in range(7):
        await js.publish(f"{p}.m", f"v{i}".encode())
    state = (await js.stream_info(sname)).state
    assert (state.messages, state.first_seq, state.last_seq) == (3, 5, 7)
    assert (await js.get_msg(sname, 5)).data == b"v4"
    err = await api_error(js.get_msg(sname, 4))
    assert err.err_code == 10037


async def test_max_msgs_per_subject_keeps_newest_per_subject(js, js_nc, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.*"], max_msgs_per_subject=2)
    for subj, val in [("k1", "a"), ("k2", "b"), ("k1", "c"), ("k1", "d"), ("k3", "e"), ("k2", "f"), ("k2", "g")]:
        await js.publish(f"{p}.{subj}", val.encode())
    resp = await js_api(js_nc, f"$JS.API.STREAM.INFO.{sname}", {"subjects_filter": ">"})
    assert resp["state"]["subjects"] == {f"{p}.k1": 2, f"{p}.k2": 2, f"{p}.k3": 1}
    assert resp["state"]["messages"] == 5
    assert (await js.get_last_msg(sname, f"{p}.k1")).data == b"d"
    # The oldest of k1 ("a", seq 1) is gone, the one before the newest remains.
    err = await api_error(js.get_msg(sname, 1))
    assert err.err_code == 10037
    assert (await js.get_msg(sname, 3)).data == b"c"


async def test_max_bytes_discard_old_stays_under_the_limit(js, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.*"], max_bytes=1000)
    for i in range(30):
        await js.publish(f"{p}.x", bytes([65 + i % 26]) * 100)
    state = (await js.stream_info(sname)).state
    assert 0 < state.bytes <= 1000
    assert state.last_seq == 30
    assert 1 < state.first_seq <= 30
    assert state.messages == state.last_seq - state.first_seq + 1
    assert (await js.get_msg(sname, 30)).data == bytes([65 + 29 % 26]) * 100


async def test_discard_new_rejects_over_limits(js, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.*"], max_msgs=2, discard=api.DiscardPolicy.NEW)
    await js.publish(f"{p}.a", b"1")
    await js.publish(f"{p}.a", b"2")
    err = await api_error(js.publish(f"{p}.a", b"3"))
    assert (err.code, err.err_code) == (503, 10077)
    assert "maximum messages exceeded" in err.description
    state = (await js.stream_info(sname)).state
    assert (state.messages, state.last_seq) == (2, 2)
    # Room again after a purge.
    await js.purge_stream(sname)
    assert (await js.publish(f"{p}.a", b"4")).seq == 3

    bname = sname + "_B"
    await js.add_stream(name=bname, subjects=[f"{p}b.*"], max_bytes=300, discard=api.DiscardPolicy.NEW)
    await js.publish(f"{p}b.a", b"z" * 100)
    err = await api_error(js.publish(f"{p}b.a", b"z" * 250))
    assert err.err_code == 10077 and "maximum bytes exceeded" in err.description
    assert (await js.stream_info(bname)).state.messages == 1


@pytest.mark.parametrize("storage", [api.StorageType.MEMORY, api.StorageType.FILE])
async def test_memory_and_file_storage_round_trip(js, sname, storage):
    p = sname.lower()
    info = await js.add_stream(name=sname, subjects=[f"{p}.*"], storage=storage)
    assert info.config.storage == storage
    payloads = [b"", b"small", bytes(range(256)) * 64]
    for i, data in enumerate(payloads):
        await js.publish(f"{p}.s{i}", data, headers={"X-Idx": str(i)})
    for i, data in enumerate(payloads):
        msg = await js.get_msg(sname, i + 1)
        assert msg.subject == f"{p}.s{i}"
        assert (msg.data or b"") == data
        assert msg.headers and msg.headers.get("X-Idx") == str(i)
    assert (await js.stream_info(sname)).config.storage == storage


async def test_max_age_expires_messages(js, sname):
    p = sname.lower()
    info = await js.add_stream(name=sname, subjects=[f"{p}.*"], max_age=1.0)
    # Without an explicit window, the duplicate window is capped at max_age.
    assert info.config.duplicate_window == pytest.approx(1.0)
    for i in range(4):
        await js.publish(f"{p}.t", str(i).encode())
    assert (await js.stream_info(sname)).state.last_seq == 4

    state = await wait_state(js, sname, lambda s: s.messages == 0, timeout=15)
    assert state.messages == 0, f"messages never expired: {state}"
    assert state.last_seq == 4
    assert state.first_seq == 5
    # New messages continue the sequence.
    assert (await js.publish(f"{p}.t", b"later")).seq == 5


# ----------------------------------------------------- dedup, expectations ---

async def test_duplicate_window_dedups_by_msg_id(js, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.*"], duplicate_window=60)
    first = await js.publish(f"{p}.o", b"order-1", headers={"Nats-Msg-Id": "id-1"})
    assert first.seq == 1 and not first.duplicate
    second = await js.publish(f"{p}.o", b"order-2", headers={"Nats-Msg-Id": "id-2"})
    assert second.seq == 2 and not second.duplicate
    # A retry of id-1, even with a different body and subject, is a duplicate.
    again = await js.publish(f"{p}.other", b"changed", headers={"Nats-Msg-Id": "id-1"})
    assert again.duplicate is True
    assert again.seq == 1
    assert (await js.stream_info(sname)).state.messages == 2
    assert (await js.get_msg(sname, 1)).data == b"order-1"
    # Without an id nothing is deduplicated.
    assert (await js.publish(f"{p}.o", b"order-1")).seq == 3


async def test_expected_headers_guard_the_publish(js, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.*"])
    await js.publish(f"{p}.a", b"1", headers={"Nats-Msg-Id": "m1"})
    await js.publish(f"{p}.b", b"2", headers={"Nats-Msg-Id": "m2"})

    ok = await js.publish(f"{p}.a", b"3", headers={"Nats-Expected-Last-Sequence": "2"})
    assert ok.seq == 3
    err = await api_error(js.publish(f"{p}.a", b"x", headers={"Nats-Expected-Last-Sequence": "2"}))
    assert (err.code, err.err_code) == (400, 10071)
    assert err.description == "wrong last sequence: 3"

    err = await api_error(js.publish(f"{p}.a", b"x", stream="NOT_" + sname))
    assert (err.code, err.err_code) == (400, 10060)
    ack = await js.publish(f"{p}.a", b"4", stream=sname, headers={"Nats-Msg-Id": "m4"})
    assert ack.seq == 4

    # The id of the stream's last message (seq 4) is what counts.
    err = await api_error(js.publish(f"{p}.a", b"x", headers={"Nats-Expected-Last-Msg-Id": "m2"}))
    assert err.err_code == 10070
    assert err.description == "wrong last msg ID: m4"
    assert (await js.publish(f"{p}.a", b"5", headers={"Nats-Expected-Last-Msg-Id": "m4"})).seq == 5

    # Per subject: last on p.b is seq 2.
    err = await api_error(js.publish(f"{p}.b", b"x", headers={"Nats-Expected-Last-Subject-Sequence": "1"}))
    assert err.err_code == 10071
    assert (await js.publish(f"{p}.b", b"6", headers={"Nats-Expected-Last-Subject-Sequence": "2"})).seq == 6
    # 0 = "nothing on this subject yet".
    assert (await js.publish(f"{p}.c", b"7", headers={"Nats-Expected-Last-Subject-Sequence": "0"})).seq == 7
    err = await api_error(js.publish(f"{p}.c", b"x", headers={"Nats-Expected-Last-Subject-Sequence": "0"}))
    assert err.err_code == 10071
    # Rejected publishes stored nothing.
    state = (await js.stream_info(sname)).state
    assert (state.messages, state.last_seq) == (7, 7)


async def test_publish_without_a_stream_is_no_responders(js, js_nc, sname):
    with pytest.raises(NoStreamResponseError):
        await js.publish(f"{sname.lower()}.nobody.listens", b"x")
    # The raw request sees the 503 status as nats-py's NoRespondersError.
    with pytest.raises(nats.errors.NoRespondersError):
        await js_nc.request(f"{sname.lower()}.nobody", b"x", timeout=3)


# ------------------------------------------------ purge, get, delete ---

async def test_purge_all_by_subject_and_keep(js, js_nc, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.*"])
    for i in range(10):
        await js.publish(f"{p}.{'even' if i % 2 == 0 else 'odd'}", str(i).encode())

    resp = await js_api(js_nc, f"$JS.API.STREAM.PURGE.{sname}", {"filter": f"{p}.odd"})
    assert resp["success"] is True and resp["purged"] == 5
    state = (await js.stream_info(sname)).state
    assert state.messages == 5 and state.last_seq == 10
    assert (await js.get_last_msg(sname, f"{p}.even")).data == b"8"
    err = await api_error(js.get_last_msg(sname, f"{p}.odd"))
    assert err.err_code == 10037

    resp = await js_api(js_nc, f"$JS.API.STREAM.PURGE.{sname}", {"keep": 2})
    assert resp["purged"] == 3
    state = (await js.stream_info(sname)).state
    assert (state.messages, state.first_seq, state.last_seq) == (2, 7, 10)
    assert [(await js.get_msg(sname, s)).data for s in (7, 9)] == [b"6", b"8"]

    resp = await js_api(js_nc, f"$JS.API.STREAM.PURGE.{sname}")
    assert resp["purged"] == 2
    state = (await js.stream_info(sname)).state
    assert (state.messages, state.first_seq, state.last_seq) == (0, 11, 10)
    # Sequences keep counting after a purge.
    assert (await js.publish(f"{p}.odd", b"after")).seq == 11


async def test_get_msg_last_by_subject_and_delete(js, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.*"])
    await js.publish(f"{p}.a", b"a1", headers={"H": "1"})
    await js.publish(f"{p}.b", b"b1")
    await js.publish(f"{p}.a", b"a2", headers={"H": "2"})

    m = await js.get_msg(sname, 2)
    assert (m.seq, m.subject, m.data) == (2, f"{p}.b", b"b1")
    last = await js.get_last_msg(sname, f"{p}.a")
    assert (last.seq, last.data, last.headers.get("H")) == (3, b"a2", "2")
    # Next message on a subject from a sequence.
    nxt = await js.get_msg(sname, 2, subject=f"{p}.a", next=True)
    assert nxt.seq == 3

    assert await js.delete_msg(sname, 3) is True
    err = await api_error(js.get_msg(sname, 3))
    assert (err.code, err.err_code) == (404, 10037)
    # The previous message on that subject becomes the last one.
    assert (await js.get_last_msg(sname, f"{p}.a")).seq == 1
    state = (await js.stream_info(sname)).state
    assert (state.messages, state.last_seq) == (2, 3)
    err = await api_error(js.delete_msg(sname, 3))
    assert err.err_code == 10043
    err = await api_error(js.get_msg(sname, 99))
    assert err.err_code == 10037


async def test_direct_get_returns_the_raw_message(js, js_nc, sname):
    p = sname.lower()
    nc = js_nc
    await js.add_stream(name=sname, subjects=[f"{p}.*"], allow_direct=True)
    await js.publish(f"{p}.a", b"first", headers={"X-Mine": "yes"})
    await js.publish(f"{p}.b", b"second")
    await js.publish(f"{p}.a", b"third")

    msg = await nc.request(f"$JS.API.DIRECT.GET.{sname}", json.dumps({"seq": 1}).encode(), timeout=5)
    assert msg.data == b"first"
    assert msg.headers["Nats-Stream"] == sname
    assert msg.headers["Nats-Subject"] == f"{p}.a"
    assert msg.headers["Nats-Sequence"] == "1"
    assert msg.headers["X-Mine"] == "yes"
    assert "Nats-Time-Stamp" in msg.headers

    msg = await nc.request(f"$JS.API.DIRECT.GET.{sname}", json.dumps({"last_by_subj": f"{p}.a"}).encode(), timeout=5)
    assert (msg.data, msg.headers["Nats-Sequence"]) == (b"third", "3")
    # The subject-in-the-request-subject form with an empty body.
    msg = await nc.request(f"$JS.API.DIRECT.GET.{sname}.{p}.b", b"", timeout=5)
    assert (msg.data, msg.headers["Nats-Sequence"]) == (b"second", "2")

    # Missing sequence: a 404 status, not JSON.
    msg = await nc.request(f"$JS.API.DIRECT.GET.{sname}", json.dumps({"seq": 42}).encode(), timeout=5)
    assert msg.headers.get("Status") == "404"
    assert msg.data == b""

    # nats-py's direct=True path uses the same endpoint.
    raw = await js.get_msg(sname, 2, direct=True)
    assert (raw.seq, raw.data, raw.subject) == (2, b"second", f"{p}.b")

    # Without allow_direct nobody answers.
    other = sname + "_ND"
    await js.add_stream(name=other, subjects=[f"{p}nd.*"])
    await js.publish(f"{p}nd.a", b"x")
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(f"$JS.API.DIRECT.GET.{other}", json.dumps({"seq": 1}).encode(), timeout=3)


async def test_rollup_sub_replaces_the_subject_history(js, js_nc, sname):
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.*"], allow_rollup_hdrs=True)
    for v in (b"1", b"2", b"3"):
        await js.publish(f"{p}.counter", v)
    await js.publish(f"{p}.other", b"keep me")
    ack = await js.publish(f"{p}.counter", b"total=6", headers={"Nats-Rollup": "sub"})
    assert ack.seq == 5

    resp = await js_api(js_nc, f"$JS.API.STREAM.INFO.{sname}", {"subjects_filter": ">"})
    assert resp["state"]["subjects"] == {f"{p}.counter": 1, f"{p}.other": 1}
    assert resp["state"]["messages"] == 2
    assert (await js.get_last_msg(sname, f"{p}.counter")).data == b"total=6"
    assert (await js.get_msg(sname, 4)).data == b"keep me"

    # A stream without allow_rollup_hdrs refuses the header.
    other = sname + "_NR"
    await js.add_stream(name=other, subjects=[f"{p}nr.*"])
    await js.publish(f"{p}nr.x", b"1")
    err = await api_error(js.publish(f"{p}nr.x", b"2", headers={"Nats-Rollup": "sub"}))
    assert err.err_code == 10111
    assert (await js.stream_info(other)).state.messages == 1


async def test_concurrent_publishers_keep_their_own_order(js, js_server, sname):
    """Four connections publish into one stream at once without waiting for acks: the
    server handles some messages inline and queues others for the engine, and each
    publisher's messages must still be stored in the order it sent them, none lost."""
    p = sname.lower()
    await js.add_stream(name=sname, subjects=[f"{p}.>"])
    per, writers = 2000, 4
    conns = [await nats_connect(js_server.url) for _ in range(writers)]
    try:

        async def publish_all(w: int):
            nc = conns[w]
            inbox = nc.new_inbox()
            acks = asyncio.Queue()

            async def on_ack(msg):
                await acks.put(msg)

            await nc.subscribe(inbox + ".*", cb=on_ack)
            for i in range(per):
                await nc.publish(f"{p}.w{w}", str(i).encode(), reply=f"{inbox}.{i}")
            for _ in range(per):
                ack = json.loads((await asyncio.wait_for(acks.get(), 30)).data)
                assert "error" not in ack, ack

        await asyncio.gather(*(publish_all(w) for w in range(writers)))
    finally:
        for nc in conns:
            await nc.close()

    assert (await js.stream_info(sname)).state.messages == per * writers
    sub = await js.pull_subscribe(f"{p}.>", durable=None, stream=sname)
    seen: dict[str, list[int]] = {f"{p}.w{w}": [] for w in range(writers)}
    while sum(len(v) for v in seen.values()) < per * writers:
        for m in await sub.fetch(500, timeout=10):
            seen[m.subject].append(int(m.data))
            await m.ack()
    for subject, values in seen.items():
        assert values == list(range(per)), f"{subject} out of order"
