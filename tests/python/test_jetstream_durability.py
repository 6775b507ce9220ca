"""JetStream durability: file-store state across a clean restart, a SIGKILL in
the middle of a publish stream (with `sync_interval: always`), and restarts
over damaged message segment files.

Every test has its own private server (`make_server(jetstream=True)`) with its
own store dir, stopped and restarted on the same ports.

What nats-server 2.14 does with a damaged segment (`<store>/jetstream/$G/
streams/<S>/msgs/N.blk`), and so what these tests accept from both servers:
- tail cut by a few bytes: the torn last record is dropped (stream info then
  shows it as a deleted sequence), everything before it is served;
- bytes overwritten mid-segment: the records before the damage are served, the
  damaged record and (in nats-server's case) everything after it in that
  block is gone, and the stream's last sequence falls back accordingly.
Both servers must start, keep the stream, serve every intact message
unchanged, never serve a damaged message with altered content, agree with
themselves about how many messages they hold, and accept new publishes.
Edgebus must also name the damaged file in its log (EDGEBUS_ONLY_CHECKS).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import uuid
from pathlib import Path

import nats
import pytest
from nats.js import api
from nats.js.errors import APIError, NotFoundError

from edgehelp import nats_connect, poll, wait_consumer


@pytest.fixture
def sname() -> str:
    return "DU_" + uuid.uuid4().hex[:10].upper()


async def connect_js(srv):
    nc = await nats_connect(srv.url, name="durability")
    return nc, nc.jetstream(timeout=10)


def segment_files(store_dir: Path, stream: str) -> list[Path]:
    """The stream's message segment files, in block order."""
    files = [f for f in Path(store_dir).glob("**/msgs/*.blk") if f.parent.parent.name == stream]
    return sorted(files, key=lambda f: int(re.sub(r"\D", "", f.stem) or 0))


def payload(i: int) -> bytes:
    return f"record-{i:05d}|".encode() * 6


async def read_or_none(js, stream: str, seq: int):
    try:
        return await js.get_msg(stream, seq)
    except NotFoundError:
        return None


# ------------------------------------------------------- clean restart ---

async def test_file_store_state_survives_sigterm_restart(make_server, sname):
    srv = make_server(jetstream=True)
    p = sname.lower()
    nc, js = await connect_js(srv)
    await js.add_stream(name=sname, subjects=[f"{p}.*"], storage=api.StorageType.FILE,
                        duplicate_window=300, max_msgs_per_subject=100)
    for i in range(10):
        await js.publish(f"{p}.{'a' if i < 6 else 'b'}", payload(i), headers={"Nats-Msg-Id": f"before-{i}"})
    await js.delete_msg(sname, 9)
    sub = await js.pull_subscribe(f"{p}.*", durable="keeper")
    msgs = await sub.fetch(5, timeout=5)
    assert [m.metadata.sequence.stream for m in msgs] == [1, 2, 3, 4, 5]
    for m in msgs[:3]:
        await m.ack_sync()
    before = await js.consumer_info(sname, "keeper")
    assert (before.delivered.stream_seq, before.ack_floor.stream_seq, before.num_ack_pending) == (5, 3, 2)
    state_before = (await js.stream_info(sname)).state
    await nc.close()

    rc = srv.kill(signal.SIGTERM)
    assert rc is not None, "server did not exit on SIGTERM"
    srv.restart()

    nc, js = await connect_js(srv)
    try:
        info = await js.stream_info(sname)
        assert info.config.storage == api.StorageType.FILE
        assert info.config.subjects == [f"{p}.*"]
        assert info.config.duplicate_window == pytest.approx(300)
        st = info.state
        assert (st.messages, st.first_seq, st.last_seq, st.bytes) == \
            (state_before.messages, state_before.first_seq, state_before.last_seq, state_before.bytes)
        assert (st.messages, st.last_seq) == (9, 10)
        for seq in range(1, 11):
            m = await read_or_none(js, sname, seq)
            if seq == 9:
                assert m is None, "deleted message came back"
            else:
                assert m is not None and m.data == payload(seq - 1)
                assert m.headers["Nats-Msg-Id"] == f"before-{seq - 1}"
        assert (await js.get_last_msg(sname, f"{p}.a")).seq == 6
        assert (await js.get_last_msg(sname, f"{p}.b")).seq == 10

        # The consumer: delivered and ack floor as before; nothing acked is redelivered.
        ci = await js.consumer_info(sname, "keeper")
        assert ci.delivered.stream_seq == 5
        assert ci.ack_floor.stream_seq == 3
        assert ci.num_pending == 4  # 6, 7, 8, 10

        # The dedup window: a retry of a pre-restart id is still a duplicate.
        dup = await js.publish(f"{p}.a", b"retry", headers={"Nats-Msg-Id": "before-7"})
        assert dup.duplicate is True and dup.seq == 8
        fresh = await js.publish(f"{p}.a", b"new", headers={"Nats-Msg-Id": "after-1"})
        assert fresh.seq == 11 and not fresh.duplicate

        # Consuming resumes after the last delivered message (5 and 6 stay
        # pending until their 30 s ack_wait runs out).
        sub = await js.pull_subscribe_bind(durable="keeper", stream=sname)
        got = await sub.fetch(5, timeout=5)
        seqs = [m.metadata.sequence.stream for m in got]
        assert seqs == [6, 7, 8, 10, 11], seqs
        for m in got:
            await m.ack_sync()
    finally:
        await nc.close()


# ------------------------------------------------------------ crash test ---

async def test_acked_publishes_survive_sigkill_with_sync_always(make_server, sname):
    srv = make_server(start=False)  # JetStream from the config file alone
    srv.config_path.write_text(
        srv.config_path.read_text()
        + f'jetstream {{\n  store_dir: "{srv.store_dir}"\n  sync_interval: "always"\n}}\n')
    srv.start()
    p = sname.lower()
    nc, js = await connect_js(srv)
    await js.add_stream(name=sname, subjects=[f"{p}.>"], storage=api.StorageType.FILE)

    acks: dict[int, int] = {}     # message index -> acked sequence
    errors: list[str] = []
    inbox = nc.new_inbox()

    async def on_ack(msg):
        idx = int(msg.subject.rsplit(".", 1)[1])
        if msg.headers and msg.headers.get("Status"):
            errors.append(f"{idx}: status {msg.headers.get('Status')}")
            return
        body = json.loads(msg.data)
        if "error" in body:
            errors.append(f"{idx}: {body['error']}")
        else:
            acks[idx] = body["seq"]

    await nc.subscribe(f"{inbox}.*", cb=on_ack)
    await nc.flush()
    total = 200_000
    sent = 0
    pub_error: list[Exception] = []

    async def publisher():
        nonlocal sent
        try:
            for i in range(total):
                # At most 200 publishes in flight, like an async publisher's window.
                while sent - len(acks) - len(errors) >= 200:
                    if nc.is_closed:
                        return
                    await asyncio.sleep(0.001)
                await nc.publish(f"{p}.data", payload(i), reply=f"{inbox}.{i}")
                sent = i + 1
        except Exception as e:  # the connection dies with the server
            pub_error.append(e)

    task = asyncio.create_task(publisher())
    # Kill while publishes are in flight. With group commit the acks come in runs (one per
    # fsync), so right after a run everything sent may be acknowledged: wait for a moment
    # when some are not.
    assert await poll(lambda: (len(acks) >= 1500 and sent > len(acks) + len(errors)) or task.done(), timeout=60)
    assert not task.done(), f"publisher ended before the kill: {pub_error!r}"
    # what was unanswered when the kill was sent (a fast server may still ack some of it)
    in_flight_at_kill = sent - len(acks) - len(errors)
    srv.kill(signal.SIGKILL)
    await asyncio.wait_for(task, timeout=10)
    acked_at_kill = dict(acks)
    try:
        await nc.close()
    except Exception:
        pass
    assert not errors, errors[:5]
    assert len(acked_at_kill) >= 1500 and in_flight_at_kill > 0

    srv.restart()
    nc, js = await connect_js(srv)
    try:
        st = (await js.stream_info(sname)).state
        top = max(acked_at_kill.values())
        assert st.last_seq >= top, f"acked seq {top} lost; state {st}"
        # Single publisher on one connection: message i is stored at seq i+1.
        assert all(seq == i + 1 for i, seq in acked_at_kill.items())
        # No gaps: everything from 1 to last_seq is there.
        assert st.first_seq == 1
        assert st.messages == st.last_seq, f"gaps after crash: {st}"
        # Every acked message is readable with its content (checked through
        # the top 300 acked and a stride over the rest), and so is whatever
        # unacked tail made it to disk.
        check = sorted(set(list(range(max(1, top - 300), st.last_seq + 1)) + list(range(1, top + 1, 97))))
        for seq in check:
            m = await js.get_msg(sname, seq)
            assert m.data == payload(seq - 1), f"seq {seq} holds {m.data[:30]!r}"
        # And the stream takes new messages after the last one.
        assert (await js.publish(f"{p}.data", b"after")).seq == st.last_seq + 1
    finally:
        await nc.close()


# ------------------------------------------------------ damaged segments ---

async def fill_and_stop(make_server, sname: str, count: int):
    srv = make_server(jetstream=True)
    p = sname.lower()
    nc, js = await connect_js(srv)
    await js.add_stream(name=sname, subjects=[f"{p}.*"], storage=api.StorageType.FILE)
    for i in range(count):
        await js.publish(f"{p}.x", payload(i))
    await nc.close()
    assert srv.kill(signal.SIGTERM) is not None
    blks = segment_files(srv.store_dir, sname)
    assert blks, f"no segment files under {srv.store_dir}/**/msgs/*.blk"
    return srv, blks[-1]


async def check_after_damage(srv, sname: str, count: int, intact_upto: int, edgebus_only: bool, blk: Path,
                             log_offset: int):
    """Shared checks after restarting over a damaged segment."""
    nc, js = await connect_js(srv)
    try:
        st = (await js.stream_info(sname)).state
        assert st.first_seq == 1
        readable = 0
        for seq in range(1, count + 1):
            m = await read_or_none(js, sname, seq)
            if seq <= intact_upto:
                assert m is not None, f"intact message {seq} is gone; state {st}"
            if m is not None:
                readable += 1
                assert m.data == payload(seq - 1), f"seq {seq} served with altered content {m.data[:40]!r}"
        assert readable >= intact_upto
        # The server's count matches what it actually serves.
        assert st.messages == readable, f"state says {st.messages}, served {readable}"
        ack = await js.publish(f"{sname.lower()}.x", b"after repair")
        assert ack.seq == st.last_seq + 1
        assert (await js.get_msg(sname, ack.seq)).data == b"after repair"
    finally:
        await nc.close()
    if edgebus_only:
        log = srv.log_text()[log_offset:]
        assert blk.name in log, f"log does not mention {blk.name}:\n{log[-2000:]}"


async def test_truncated_segment_tail_is_recovered(make_server, sname, edgebus_only):
    count = 100
    srv, blk = await fill_and_stop(make_server, sname, count)
    size = blk.stat().st_size
    with open(blk, "r+b") as f:
        f.truncate(size - 5)
    log_offset = len(srv.log_text())
    srv.restart()
    # Everything but the torn last record is intact.
    await check_after_damage(srv, sname, count, count - 1, edgebus_only, blk, log_offset)


async def test_overwritten_bytes_mid_segment_are_detected(make_server, sname, edgebus_only):
    count = 100
    srv, blk = await fill_and_stop(make_server, sname, count)
    size = blk.stat().st_size
    offset = size * 6 // 10
    with open(blk, "r+b") as f:
        f.seek(offset)
        f.write(b"\x00\xff\x5a\xa5\x13\x37")
    log_offset = len(srv.log_text())
    srv.restart()
    # Records wholly before the damage are intact; leave a generous margin
    # for the record framing (each record here is a little over 100 bytes).
    intact = max(1, (offset * count // size) - 15)
    await check_after_damage(srv, sname, count, intact, edgebus_only, blk, log_offset)
